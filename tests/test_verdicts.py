"""The verdicts a user reads must mean what they say (issue 9, "Done when"),
each shown end to end through ``kubemc check`` as a user runs it:

1. a handler that raises is an internal error (exit 70), never "holds";
2. a property kind an engine has no checker for is refused (exit 2);
3. a z3 counterexample to induction is "unproved" (exit 4), never exit 1;
4. a mutant named to a composition reaches the part that declares it;
5. a cover property never reached is reported (vacuous, exit 5).

Each test fails if its defect comes back: the verdict or the exit code
would change.
"""

import json

import attrs
import pytest

from kubemc.checker import components
from kubemc.checker.catalog import Component, Model
from kubemc.checker.catalog.store import RAFT_MVCC
from kubemc.checker.cli import main
from kubemc.checker.z3engine import SymbolicCheck, k_induction
from kubemc.model.store.mvcc import Mvcc
from kubemc.model.store.raft_mvcc import StateMachines
from kubemc.properties.core import COVER, Property
from kubemc.properties.symbolic import SymProperty
from tests.test_z3_engine import NEVER_SEVEN, Counter, CounterEncoding

#: the composition at bounds that explore in well under a second
SMALL = {"servers": 2, "max_term": 1, "max_log": 1}
NEVER_REACHED = Property("x_reaches_seven", "toy", COVER, "x is 7 somewhere", "this test",
                         lambda m, s: s[0] == 7)


def register(monkeypatch, name, models=(), symbolic=()):
    """A component of the test's own, named on the command line like any other."""
    monkeypatch.setitem(components.COMPONENTS, name,
                        Component(name, "a test's component", tuple(models), tuple(symbolic)))


def run(capsys, *argv):
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture
def crash_reports(tmp_path, monkeypatch):
    """Crash reports go to the test's directory, not the machine's temp."""
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


# 1 ---------------------------------------------------------------------------


def test_a_raising_handler_is_an_internal_error_not_holds(monkeypatch, capsys, crash_reports):
    def broken(*args):
        raise TypeError("a bug in the handler")

    monkeypatch.setattr(Mvcc, "_make_request", broken)
    rc, out, err = run(capsys, "check", "store", "--bound", "keys=2", "--quiet")
    assert rc == 70 and "holds" not in out
    assert err.count("\n") == 1 and "internal error (TypeError: a bug in the handler)" in err
    (report,) = crash_reports.glob("kubemc-crash-*.txt")
    assert "Traceback" in report.read_text()


def test_a_raising_handler_inside_a_composition_is_an_internal_error(monkeypatch, capsys,
                                                                      crash_reports):
    register(monkeypatch, "pair", [attrs.evolve(RAFT_MVCC, bounds={**RAFT_MVCC.bounds,
                                                                    **SMALL})])
    assert run(capsys, "check", "pair", "--quiet")[0] == 0  # the pair holds as built

    def broken(self, members, i, log, commit):  # the signature of the real apply_next
        raise TypeError("a bug in the part")

    monkeypatch.setattr(StateMachines, "apply_next", broken)
    rc, out, err = run(capsys, "check", "pair", "--quiet")
    assert rc == 70 and "internal error (TypeError: a bug in the part)" in err


# 2 ---------------------------------------------------------------------------


def test_an_unknown_property_kind_cannot_even_be_declared():
    with pytest.raises(ValueError, match="kind"):
        Property("p", "toy", "fairness", "s", "this test", lambda m, s: True)


@pytest.mark.parametrize("kind", [COVER, "eventually_always"])
def test_a_kind_the_z3_engine_has_no_checker_for_is_refused(monkeypatch, capsys, kind):
    prop = Property("x_settles", "toy", kind, "x settles", "this test", lambda m, s: True)
    check = SymbolicCheck("x_settles_induction", "toy", "counter", "x_settles", "x settles",
                          lambda mutant=None: k_induction(
                              CounterEncoding(), SymProperty(prop, lambda S: True), 1))
    register(monkeypatch, "toy", [Model("counter", Counter, {}, (NEVER_SEVEN,))], [check])
    rc, out, err = run(capsys, "check", "toy", "--engine", "z3", "--quiet")
    assert rc == 2 and err.count("\n") == 1
    assert f"cannot check {kind} property x_settles" in err and "Traceback" not in err


# 3 ---------------------------------------------------------------------------


def test_a_z3_counterexample_to_induction_is_unproved_and_never_exit_1(monkeypatch, capsys,
                                                                      tmp_path):
    check = SymbolicCheck("never_seven_3_induction", "toy", "counter", "never_seven",
                          "x is never 7 (not 3-inductive without its lemma)",
                          lambda mutant=None: k_induction(CounterEncoding(), "never_seven", 3,
                                                          lemmas=False))
    register(monkeypatch, "toy", [Model("counter", Counter, {}, (NEVER_SEVEN,))], [check])
    rc, out, _ = run(capsys, "check", "toy", "--engine", "z3", "--json",
                     "--trace-dir", str(tmp_path))
    (row,) = json.loads(out)
    assert rc == 4 and rc != 1
    assert row["verdict"] == "unproved" and row["trace"] is None
    assert "counterexample to induction" in row["detail"]
    assert not list(tmp_path.iterdir())  # no trace: there is no behaviour to show


# 4 ---------------------------------------------------------------------------


def test_a_mutant_passed_to_a_composition_reaches_its_part(capsys, tmp_path):
    machine = RAFT_MVCC.machine("apply_out_of_order")
    assert machine.mutant == "apply_out_of_order"
    assert machine.part("kv").mutant == "apply_out_of_order"   # the part carries it
    assert machine.part("raft").mutant is None
    rc, out, _ = run(capsys, "check", "store", "--mutant", "apply_out_of_order", "--engine",
                     "explore", "--json", "--trace-dir", str(tmp_path))
    (row,) = json.loads(out)
    assert rc == 1 and row["model"] == "store-raft-mvcc"
    assert row["prop"] == "applied_state_follows_log"
    assert run(capsys, "trace", "replay", row["trace"])[0] == 1


# 5 ---------------------------------------------------------------------------


def test_an_uncovered_property_is_reported_vacuous(monkeypatch, capsys):
    register(monkeypatch, "toy", [Model("counter", Counter, {}, (NEVER_SEVEN, NEVER_REACHED))])
    rc, out, _ = run(capsys, "check", "toy", "--json")
    (row,) = json.loads(out)
    assert rc == 5 and row["verdict"] == "vacuous" and row["prop"] == "x_reaches_seven"
    assert "cover never reached" in row["detail"]


def test_the_composition_cover_is_reported_when_its_bounds_cannot_reach_it(monkeypatch,
                                                                          capsys):
    # no log entries: no member ever applies a write, so agreement says nothing
    register(monkeypatch, "pair", [attrs.evolve(RAFT_MVCC, bounds={
        **RAFT_MVCC.bounds, **SMALL, "max_log": 0})])
    rc, out, _ = run(capsys, "check", "pair", "--json")
    (row,) = json.loads(out)
    assert rc == 5 and row["prop"] == "two_members_applied_a_write"

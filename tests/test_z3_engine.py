"""The z3 engine on a toy machine whose every answer is known by hand.

The toy: a counter ``x`` in ``0..7`` that steps by two (mod 8) and can jump
to any even value given as a symbolic input. From 0 only even values are
reachable, so "x is never 7" holds; it is 4-inductive but not 3-inductive
(1 -> 3 -> 5 -> 7 is a chain of three good states into a bad one), and
1-inductive with the lemma "x is even".
"""

from __future__ import annotations

import pytest
import z3

from kubemc.checker.counterexample import Counterexample
from kubemc.checker.z3engine import (
    BASE_VIOLATION, CTI, NOT_FOUND, PROVED, VACUOUS, VIOLATED, Differential,
    EncodingMismatch, _only_fd_ops, bmc, fd_safe, k_induction, replay, run_obligation,
    symbolic_checks,
)
from kubemc.model.kernel import ENVIRONMENT, SYSTEM, Machine, Mutant, Step
from kubemc.properties.core import INVARIANT, TRANSITION, Property
from kubemc.properties.symbolic import Action, Encoding, Obligation, SymProperty, Var


class Counter(Machine):
    name = "counter"
    tags = {"Add": SYSTEM, "Jump": ENVIRONMENT}
    mutants = {"odd_jump": Mutant("Jump accepts odd targets", violates="never_seven")}

    def init_states(self):
        yield (0,)

    def steps(self, state):
        yield Step("Add", ())
        for d in range(8):
            yield Step("Jump", (d,))

    def apply(self, state, step):
        (x,) = state
        if step.name == "Add":
            return ((x + 2) % 8,)
        (d,) = step.params
        if d == x or (d % 2 and self.mutant != "odd_jump"):
            return None
        return (d,)


NEVER_SEVEN = Property("never_seven", "toy", INVARIANT, "x is never 7", "this test",
                       lambda m, s: s[0] != 7)
NO_BIG_JUMP = Property("no_big_jump", "toy", TRANSITION, "x grows by at most 2", "this test",
                       lambda m, b, st, a: a[0] - b[0] <= 2)


class CounterEncoding(Encoding):
    name = "counter"

    def __init__(self, mutant=None, add=2):
        super().__init__(Counter(mutant))
        self.mutant = mutant
        self.add = add  # a wrong value makes the encoding disagree with the machine
        self.properties = {
            "never_seven": SymProperty(NEVER_SEVEN, lambda S: S["x",] != 7),
            "no_big_jump": SymProperty(NO_BIG_JUMP, lambda S, S2: S2["x",] - S["x",] <= 2),
        }
        self.lemmas = {"even": lambda S: S["x",] % 2 == 0}

    def variables(self):
        return [Var(("x",), 0, 7)]

    def build_actions(self):
        def add_effect(S, _):
            return {("x",): (S["x",] + self.add) % 8}

        def jump_guard(S, I):
            ok = I["d"] != S["x",]
            return ok if self.mutant == "odd_jump" else z3.And(ok, I["d"] % 2 == 0)
        return [
            Action("Add", (), lambda S, _: z3.BoolVal(True), add_effect),
            Action("Jump", (), jump_guard, lambda S, I: {("x",): I["d"]},
                   inputs=(Var("d", 0, 7),), to_step=lambda v: Step("Jump", (v["d"],))),
        ]

    def init(self, S):
        return S["x",] == 0

    def values(self, state):
        return {("x",): state[0]}

    def state_of(self, values):
        return (values["x",],)


def test_bmc_finds_no_counterexample_when_the_property_holds():
    r = bmc(CounterEncoding(), "never_seven", 6)
    assert r.verdict == NOT_FOUND and r.holds and r.bound == 6


def test_bmc_finds_a_shortest_replayed_counterexample_with_a_decoded_input():
    r = bmc(CounterEncoding("odd_jump"), "never_seven", 6)
    assert r.verdict == VIOLATED and not r.holds
    cex = r.counterexample
    assert cex.prop is NEVER_SEVEN
    assert [str(s) for s, _ in cex.steps] == ["Jump(7)"]
    assert cex.final == (7,)


def test_bmc_of_a_transition_property():
    r = bmc(CounterEncoding(), "no_big_jump", 3)
    assert r.verdict == VIOLATED
    (step, after), = r.counterexample.steps
    assert step.name == "Jump" and after[0] > 2


def test_k_induction_without_strengthening_needs_k_4():
    enc = CounterEncoding()
    r3 = k_induction(enc, "never_seven", 3, lemmas=False)
    assert r3.verdict == CTI
    assert r3.cti.failing == ("never_seven",)
    assert [s[0] for s in r3.cti.states] == [1, 3, 5, 7]
    assert r3.cti.replays
    assert k_induction(enc, "never_seven", 4, lemmas=False).verdict == PROVED


def test_k_induction_with_the_lemma_at_k_1():
    r = k_induction(CounterEncoding(), "never_seven", 1)
    assert r.verdict == PROVED and r.seconds >= 0
    assert "1-inductive" in r.detail


def test_a_wrong_lemma_is_a_base_case_violation_with_a_replayed_trace():
    enc = CounterEncoding()
    enc.lemmas = {"small": lambda S: S["x",] < 4}
    r = k_induction(enc, "never_seven", 3)
    assert r.verdict == BASE_VIOLATION
    assert r.counterexample.final == (4,)
    assert r.counterexample.prop.name == "lemma:small"


def test_k_induction_reports_a_reachable_violation_as_violated():
    r = k_induction(CounterEncoding("odd_jump"), "never_seven", 2)
    assert r.verdict == VIOLATED and r.counterexample.final == (7,)


def test_the_fast_solver_is_used_only_where_it_is_exact():
    # QF_FD leaves % untranslated (x % 2 == 0 ∧ x == 5 is "sat" there); the
    # counter's encoding uses %, so the engine must fall back to z3.Solver()
    assert not fd_safe(CounterEncoding())
    x = z3.Int("x")
    assert _only_fd_ops([z3.And(x >= 0, x <= 7, 2 * x + 1 == 5)])
    assert not _only_fd_ops([x % 2 == 0])
    assert not _only_fd_ops([x * x == 4])


def test_an_unsatisfiable_premise_is_vacuous_not_proved():
    enc = CounterEncoding()
    enc.lemmas = {"false": lambda S: z3.BoolVal(False)}
    enc.init = lambda S: z3.BoolVal(False)  # no initial state: base case trivially holds
    assert k_induction(enc, "never_seven", 1).verdict == VACUOUS


def test_an_encoding_that_disagrees_with_the_machine_is_caught():
    wrong = CounterEncoding(add=3)  # the machine adds 2: 0 3 6 1 4 7 symbolically
    with pytest.raises(EncodingMismatch):
        bmc(wrong, "never_seven", 6)


def test_replay_rejects_a_trace_that_does_not_violate():
    enc = CounterEncoding()
    cex = Counterexample(NEVER_SEVEN, (0,), ((Step("Add"), (2,)),))
    with pytest.raises(EncodingMismatch, match="does not violate"):
        replay(enc, cex)


def test_differential_agrees_and_detects_drift():
    good, bad = Differential(CounterEncoding()), Differential(CounterEncoding(add=3))
    m = Counter()
    for x in range(0, 8, 2):
        succ = list(m.successors((x,)))
        assert good.check((x,), succ) == []
        assert bad.check((x,), succ)  # Add(x) lands elsewhere symbolically
    jump = 1  # the Jump action has an input
    assert good.check_step((0,), jump, {"d": 4}, (4,)) == []
    assert good.check_step((0,), jump, {"d": 3}, None) == []
    assert good.check_step((0,), jump, {"d": 3}, (3,))


def test_holds_evaluates_symbolic_predicates_on_executable_states():
    enc = CounterEncoding()
    assert enc.holds(enc.lemmas["even"], (4,))
    assert not enc.holds(enc.properties["never_seven"].pred, (7,))
    assert enc.holds(enc.properties["no_big_jump"].pred, (2,), (4,))


def test_symbolic_checks_run_and_find_mutants():
    ob = Obligation("counter_never_seven", "counter", "never_seven", "x is never 7",
                    CounterEncoding, method="induction", k=1, mutant_depth=3)
    (check,) = symbolic_checks("toy", [ob])
    assert check.component == "toy" and check.mutants == ("odd_jump",)
    assert check.run().verdict == PROVED
    assert check.run("odd_jump").verdict == VIOLATED
    assert run_obligation(ob, "odd_jump").counterexample.final == (7,)


def test_the_store_catalog_lists_its_symbolic_checks():
    from kubemc.checker.components import component, model_named
    from kubemc.checker.z3engine import SymbolicCheck, run_checks
    store = component("store")
    assert model_named("election").build.name == "election"
    names = {c.name for c in store.symbolic}
    assert {"election_safety_3", "election_safety_5", "failed_txn_writes_nothing_2k",
            "txn_is_one_revision_2k"} <= names
    assert all(isinstance(c, SymbolicCheck) and c.component == "store" and c.proves
               for c in store.symbolic)
    # a mutant selects the checks it is meant to break
    results = run_checks(store.symbolic, "txn_ignores_compare")
    assert results and all(r.verdict == VIOLATED for r in results)


def test_a_result_carries_the_machine_its_trace_replays_on():
    r = bmc(CounterEncoding("odd_jump"), "never_seven", 2)
    assert isinstance(r.machine, Counter) and r.machine.mutant == "odd_jump"


def test_an_unsatisfiable_init_is_vacuous_for_bmc_and_the_base_case():
    """BMC and the base case of k-induction over no initial state would find
    nothing and call that a pass."""
    class NoInit(CounterEncoding):
        def init(self, S):
            return z3.And(S["x",] == 0, S["x",] == 1)

    assert bmc(NoInit(), "never_seven", 3).verdict == VACUOUS
    assert k_induction(NoInit(), "never_seven", 2).verdict == VACUOUS
    assert not bmc(NoInit(), "never_seven", 3).holds


def test_a_counterexample_to_induction_is_unproved_never_violated(tmp_path):
    """Exit 1 promises a trace; a CTI is no violation, and its row says
    "unproved" with exit 4, whatever the solver's states look like."""
    from kubemc.checker.run import UNPROVED
    from kubemc.checker.symbolic_run import run_symbolic
    from kubemc.checker.verdicts import exit_code
    from kubemc.checker.z3engine import SymbolicCheck

    check = SymbolicCheck("counter_3_induction", "toy", "counter", "never_seven",
                          "x is never 7 (not 3-inductive without its lemma)",
                          lambda mutant=None: k_induction(CounterEncoding(), "never_seven",
                                                          3, lemmas=False))
    component = type("Toy", (), {"name": "toy", "symbolic": (check,)})()
    (row,) = run_symbolic(component, trace_dir=tmp_path)
    assert row.verdict == UNPROVED and row.trace is None
    assert "counterexample to induction" in row.detail
    assert exit_code([row]) == 4 and not list(tmp_path.iterdir())

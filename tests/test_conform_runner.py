"""What the ``kubemc conform`` adapters share (``conformance/runner``): the
run lock that tells a live run from a dead one's leftovers, the exit code a
suite's result earns, and the ``--faults`` / ``--nemesis`` lists.

No real component is needed: the lock is an abstract Unix socket, the
results are stand-ins with the fields the adapters' results have.
"""

from __future__ import annotations

import secrets

import attrs
import pytest

from kubemc.checker.errors import HOLDS, UNDECIDED, VIOLATED, BadInput
from kubemc.conformance.runner.args import chosen_faults, fault_names
from kubemc.conformance.runner.command import verdict
from kubemc.conformance.runner.run_lock import RunLocks


def test_a_held_lock_is_live_and_a_released_one_dead():
    locks = RunLocks(f"kubemc-test-{secrets.token_hex(3)}-")
    sock = locks.hold("abc123")
    try:
        assert not locks.is_dead("abc123")
        assert locks.live() == ["abc123"]
        with pytest.raises(RuntimeError, match="run id abc123 is in use by another run"):
            locks.hold("abc123")
        assert locks.is_dead("abc124")             # another id of the same kind is free
        assert RunLocks(locks.namespace + "x").is_dead("abc123")   # another kind's lock
    finally:
        sock.close()
    assert locks.is_dead("abc123") and locks.live() == []


@attrs.define
class _Result:
    """The fields :func:`verdict` reads, as the cni (``undecided`` a bool),
    cri (a note) and etcd (the names of its undecided checks) results have them."""
    passed: bool
    failed_checks: list = attrs.field(factory=list)


@attrs.define
class _Undecidable(_Result):
    undecided: object = False


@pytest.mark.parametrize("result, code", [
    (_Result(passed=True), HOLDS),
    (_Result(passed=False, failed_checks=["linearizability"]), VIOLATED),
    (_Result(passed=False), VIOLATED),                  # not passed, not undecided: a violation
    (_Undecidable(passed=False, undecided=True), UNDECIDED),
    (_Undecidable(passed=False, undecided="UNDECIDED: the replay ran out of room"), UNDECIDED),
    (_Undecidable(passed=False, failed_checks=["cri-model"], undecided="UNDECIDED"), VIOLATED),
    (_Undecidable(passed=False, undecided=""), VIOLATED),
])
def test_the_exit_code_of_a_suite_result(result, code):
    assert verdict(result) == code


def test_fault_lists():
    known = ("kill", "pause")
    assert fault_names("--nemesis", known, "none") == ()
    assert fault_names("--nemesis", known, "pause, kill,pause") == ("pause", "kill")
    with pytest.raises(BadInput, match="--nemesis: give fault names \\(kill,pause\\) or none"):
        fault_names("--nemesis", known, " , ")
    with pytest.raises(BadInput, match="--faults: unknown fault 'restart'"):
        fault_names("--faults", known, "kill,restart")


def test_faults_default_to_none_against_a_target_the_run_did_not_start():
    def parse(text):
        return fault_names("--faults", ("kill",), text)
    assert chosen_faults(None, parse, remote=True, default=("kill",)) == ()
    assert chosen_faults(None, parse, remote=False, default=("kill",)) == ("kill",)
    assert chosen_faults("none", parse, remote=False, default=("kill",)) == ()
    assert chosen_faults("kill", parse, remote=True, default=()) == ("kill",)


def _etcd_result(*checks):
    from kubemc.conformance.adapters.etcd.suite import EtcdRunResult
    return EtcdRunResult(run_id="r", seed=1, local=True, endpoints=[], checks=list(checks))


def _check(name, violations=(), note=""):
    from kubemc.conformance.validate.violation import CheckResult, Violation
    return CheckResult(name, "statement", "source",
                       [Violation(name, m) for m in violations], note=note)


def test_an_etcd_run_whose_linearizability_search_ran_out_is_undecided(tmp_path):
    """DESIGN: undecided has its own exit code; a search that ran out of time
    showed nothing, so the run neither passes (0) nor is violated (1)."""
    from junitparser import JUnitXml, Skipped

    from kubemc.conformance.report.etcd import summary, write_junit
    undecided = _check("linearizability", note="UNDECIDED within 60s for keys ['k1']; 9 operations")
    result = _etcd_result(_check("availability"), undecided)
    assert not result.passed and result.undecided == ["linearizability"]
    assert verdict(result) == UNDECIDED
    assert summary(result).startswith("kubemc conform etcd: UNDECIDED")
    assert result.to_json()["undecided_checks"] == ["linearizability"]
    write_junit(result, tmp_path / "j.xml")
    cases = {c.name: c for suite in JUnitXml.fromfile(str(tmp_path / "j.xml")) for c in suite}
    assert isinstance(cases["linearizability"].result[0], Skipped)
    assert not cases["availability"].result
    # a failed check outranks it; a decided run passes
    failed = _etcd_result(_check("revision-monotonic", ["went back"]), undecided)
    assert verdict(failed) == VIOLATED and summary(failed).startswith("kubemc conform etcd: FAIL")
    assert verdict(_etcd_result(_check("linearizability", note="9 operations"))) == HOLDS


def test_a_maelstrom_run_out_of_check_budget_is_undecided():
    from kubemc.conformance.validate.maelstrom import (FAIL, PASS, UNDECIDED_CHECK,
                                                       MaelstromCheck, MaelstromRunResult)

    def run(*statuses):
        checks = [MaelstromCheck(f"c{i}", s, "m") for i, s in enumerate(statuses)]
        return MaelstromRunResult(None, checks, [], None, {}, 0.0)
    assert run(PASS, UNDECIDED_CHECK).exit_code == UNDECIDED
    assert run(PASS, UNDECIDED_CHECK).verdict == "UNDECIDED (c1)"
    assert run(FAIL, UNDECIDED_CHECK).exit_code == VIOLATED
    assert run(PASS, PASS).exit_code == HOLDS

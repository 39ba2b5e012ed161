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
    cri (a note) and etcd (none) results have them."""
    passed: bool
    failed_checks: list = attrs.field(factory=list)


@attrs.define
class _Undecidable(_Result):
    undecided: object = False


@pytest.mark.parametrize("result, code", [
    (_Result(passed=True), HOLDS),
    (_Result(passed=False, failed_checks=["linearizability"]), VIOLATED),
    (_Result(passed=False), VIOLATED),                  # etcd: not passed is a violation
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

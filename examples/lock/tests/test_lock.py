"""The lock component, tested the way any team tests its own component: with
kubemc installed and this distribution installed next to it, through
kubemc's API (``checker.api``) and its command line. Nothing here reaches
into kubemc's internals, and nothing in kubemc names the lock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubemc.checker import api
from kubemc.checker.cli import main
from kubemc_lock.catalog import LOCK
from kubemc_lock.machine import Lock

HERE = Path(__file__).resolve().parents[1]
COMMITTED = sorted((HERE / "traces").rglob("*.itf.json"))


def test_kubemc_finds_the_installed_component():
    assert "lock" in api.components()
    assert api.models("lock") == ["lock"]
    assert api.mutants("lock", "lock") == {"no_holder_check": "mutual_exclusion",
                                           "wake_newest": "waiters_served_in_order",
                                           "lost_wakeup": "waiters_are_served"}


def test_every_property_has_a_provenance_and_every_claim_a_mutant():
    claims = {p.name for p in LOCK.properties if p.kind != "cover"}
    assert all(p.provenance.strip() for p in LOCK.properties)
    assert claims == {m.violates for m in Lock.mutants.values()}


def test_the_correct_lock_holds_with_its_covers_reached(tmp_path):
    verdict = api.assert_holds("lock", "lock", trace_dir=tmp_path)
    assert verdict.rows[0].figures["distinct_states"] == 31
    assert list(tmp_path.iterdir()) == []


def test_the_correct_lock_holds_under_random_runs(tmp_path):
    api.assert_holds("lock", "lock", engine="hypothesis", trace_dir=tmp_path)


@pytest.mark.parametrize("engine", ["explore", "hypothesis"])
@pytest.mark.parametrize("mutant", sorted(Lock.mutants))
def test_every_mutant_is_caught(tmp_path, engine, mutant):
    verdict = api.counterexample("lock", "lock", mutant=mutant, engine=engine,
                                 trace_dir=tmp_path)
    assert verdict.prop == Lock.mutants[mutant].violates
    if mutant == "lost_wakeup":
        trace = verdict.trace()
        assert isinstance(trace.get("loop"), int), "a liveness violation is a lasso"


def test_the_lost_wakeup_is_a_lasso_stuck_with_a_waiter(tmp_path):
    verdict = api.counterexample("lock", "lock", mutant="lost_wakeup", trace_dir=tmp_path)
    trace = verdict.trace()
    last = trace["states"][-1]
    assert trace["loop"] == len(trace["states"]) - 1
    assert trace["#meta"]["loop_action"] == {"action": "stutter", "params": []}
    assert last["holders"] == {"#tup": []} and last["waiting"]["#tup"]


def test_a_committed_trace_for_every_mutant():
    named = {json.loads(p.read_text())["#meta"]["mutant"] for p in COMMITTED}
    assert named == set(Lock.mutants)


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_the_committed_traces_replay(path, capsys):
    assert main(["trace", "replay", str(path)]) == 1
    assert "is violated" in capsys.readouterr().out


def test_bounds_are_checked_before_a_machine_is_built():
    with pytest.raises(ValueError, match="clients must be a positive integer"):
        Lock(clients=0)
    with pytest.raises(api.BadInput, match="clients"):
        api.machine("lock", "lock", bounds={"clients": 10_000})

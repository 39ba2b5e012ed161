"""The informer under the engines: the correct model passes exhaustive
exploration and Hypothesis runs with three concurrent writers, a watch and
an informer; convergence is not vacuous; every seeded bug is caught.

Small bounds here keep the file quick; `kubemc check informer` runs the
documented defaults (see the README)."""

from __future__ import annotations

import pytest

from kubemc.checker import stateful, traces
from kubemc.checker.catalog.informer import INFORMER, INFORMER_RELIST, WORKQUEUE
from kubemc.checker.components import COMPONENTS
from kubemc.checker.explore import explore
from kubemc.checker.run import targeted
from kubemc.model.kernel import Machine
from kubemc.properties.core import INVARIANT, Property
from kubemc.properties.informer import synced

#: every piece on (compaction, dropped connection, resync, two workers,
#: writes to another resource) with two writes: a complete search in seconds
SMALL = {"writes": 2, "compactions": 1, "disconnects": 1, "resyncs": 1, "workers": 2}


def test_the_informer_is_registered():
    assert COMPONENTS["informer"].models == (INFORMER, INFORMER_RELIST, WORKQUEUE)
    assert {p.name for p in INFORMER.properties} == {
        "cache_converges", "cache_eventually_converges", "workqueue_exclusive",
        "workqueue_keeps_dirty_keys", "workqueue_drains",
        "workqueue_hands_out_added_keys", "fifo_keys_distinct", "fifo_deletions_collapsed",
        "fifo_sync_first", "cover_resync_queues_sync", "watch_delta_types",
        "gone_only_when_compacted"}
    # the relist model has no resync, so no resync cover; everything else
    assert {p.name for p in INFORMER_RELIST.properties} == \
        {p.name for p in INFORMER.properties} - {"cover_resync_queues_sync"}
    for model in (INFORMER, INFORMER_RELIST):
        for mutant in model.mutants.values():
            assert mutant.violates in {p.name for p in model.properties}
    # each seeded bug is carried by exactly one of the two informer models
    assert not set(INFORMER.mutants) & set(INFORMER_RELIST.mutants)


def test_the_correct_model_passes_exhaustive_search():
    outcome = explore(INFORMER.machine(**SMALL), INFORMER.properties)
    assert outcome.complete and outcome.counterexample is None
    assert outcome.stats.states > 10_000
    assert outcome.covers == {"cover_resync_queues_sync": True}


def test_the_relist_model_holds_at_its_defaults():
    """informer-relist at its catalog bounds (about 9,400 states): the only
    bounds where a delivered deletion and a relist tombstone meet."""
    outcome = explore(INFORMER_RELIST.machine(), INFORMER_RELIST.properties)
    assert outcome.complete and outcome.counterexample is None


def reachable(machine):
    seen = set(machine.init_states())
    frontier = list(seen)
    while frontier:
        nxt = []
        for s in frontier:
            for _, t in machine.successors(s):
                if t not in seen:
                    seen.add(t)
                    nxt.append(t)
        frontier = nxt
    return seen


@pytest.mark.parametrize("model, mutant",
                         [(INFORMER, m) for m in [None] + sorted(INFORMER.mutants)]
                         + [(INFORMER_RELIST, m) for m in sorted(INFORMER_RELIST.mutants)],
                         ids=lambda x: getattr(x, "name", x))
def test_the_fused_successors_are_the_steps_apply_enables(model, mutant):
    """``Informer.successors`` (the engines' fast path) proposes exactly the
    transitions of ``steps`` + ``apply`` (the reference), state by state."""
    m = model.machine(mutant, writes=2, resyncs=0)
    for state in reachable(m):
        fast = sorted((str(step), nxt) for step, nxt in m.successors(state))
        slow = sorted((str(step), nxt) for step, nxt in Machine.successors(m, state))
        assert fast == slow, state


def test_convergence_is_not_vacuous():
    """Synced states — the premise of cache_converges — are reached, also
    once every write is spent, with objects in the cache, after a compaction
    and with the watch reopened after a dropped connection."""
    m = INFORMER.machine(**SMALL)
    states = reachable(m)
    quiet = [s for s in states if synced(m, s)]
    assert len(quiet) > 1000
    done = [s for s in quiet if s[1][0] == 0]
    assert any(s[4] for s in done), "no synced state with objects once writes stop"
    assert any(s[0][1] > 0 for s in done), "no synced state after a compaction"
    assert any(s[1][2] == 0 for s in done), "no synced state after a disconnect"


@pytest.mark.parametrize("model, mutant",
                         [(INFORMER, m) for m in sorted(INFORMER.mutants)]
                         + [(INFORMER_RELIST, m) for m in sorted(INFORMER_RELIST.mutants)],
                         ids=lambda x: getattr(x, "name", x))
def test_every_mutant_is_caught_by_explore_at_the_default_bounds(model, mutant):
    machine = model.machine(mutant)
    outcome = explore(machine, targeted(model, mutant))
    cex = outcome.counterexample
    assert cex is not None, f"{mutant} escaped exhaustive search"
    assert cex.prop.name == model.mutants[mutant].violates
    # a lasso: its stem; the relist model's one bug needs 9 steps (see the catalog)
    assert (cex.loop if cex.is_lasso else len(cex.steps)) <= (8 if model is INFORMER else 9)


def test_hypothesis_runs_three_writers_a_watch_and_an_informer_and_finds_nothing():
    machine = INFORMER.hypothesis_machine()
    assert machine.config()["writers"] >= 3 and machine.config()["workers"] >= 2
    seen = {"states": 0, "synced": 0, "synced_after_writes_and_compaction": 0}

    def count(m, state):
        seen["states"] += 1
        if synced(m, state):
            seen["synced"] += 1
            if state[1][0] == 0 and state[0][1] > 0:
                seen["synced_after_writes_and_compaction"] += 1
        return True

    spy = Property("spy", "informer", INVARIANT, "counts synced states", "this test", count)
    outcome = stateful.check(machine, INFORMER.properties + (spy,), profile="ci")
    assert outcome.counterexample is None
    assert outcome.examples >= 100
    # random runs reach the premise of cache_converges, also late in a run
    assert seen["synced"] > seen["states"] // 10
    assert seen["synced_after_writes_and_compaction"] > 100


@pytest.mark.parametrize("model, mutant", [(INFORMER, "bookmark_skips_events"),
                                           (INFORMER, "gone_at_compact_revision"),
                                           (INFORMER, "watch_modified_as_added"),
                                           (INFORMER_RELIST, "fifo_keeps_both_deletions"),
                                           (WORKQUEUE, "done_forgets_dirty")],
                         ids=lambda x: getattr(x, "name", x))
def test_hypothesis_catches_a_mutant_and_its_trace_replays(model, mutant, tmp_path):
    """Seeded bugs end to end through the random engine. The others take
    Hypothesis 7 to 40 s each to find and shrink, more than this file may
    spend: `kubemc check informer --engine hypothesis --mutant NAME` catches
    every one, and tests/test_traces.py replays the committed traces."""
    machine = model.hypothesis_machine(mutant)
    outcome = stateful.check(machine, targeted(model, mutant), profile="ci")
    cex = outcome.counterexample
    assert cex is not None and cex.prop.name == model.mutants[mutant].violates
    path = traces.save(cex, tmp_path, model=model.name, machine=machine, engine="hypothesis")
    assert traces.replay(traces.load(path)).reproduced


def test_every_mutant_has_committed_traces_from_explore_and_hypothesis():
    import json
    from pathlib import Path
    committed = Path(__file__).resolve().parents[1] / "traces" / "informer"
    found = set()
    for path in committed.glob("*.itf.json"):
        meta = json.loads(path.read_text())["#meta"]
        found.add((meta["model"], meta["mutant"], meta["engine"]))
    for model in (INFORMER, INFORMER_RELIST, WORKQUEUE):
        for mutant in model.mutants:
            for engine in ("explore", "hypothesis"):
                assert (model.name, mutant, engine) in found, (model.name, mutant, engine)
    safety = {p.name for p in WORKQUEUE.properties if not p.is_liveness}
    for mutant in WORKQUEUE.mutants:  # z3 decides safety only (liveness: explore, hypothesis)
        if WORKQUEUE.mutants[mutant].violates in safety:
            assert ("workqueue", mutant, "z3") in found

"""The apiserver's machines: behaviours the issue names, played step by step;
every model passes exhaustive exploration and random runs; every seeded bug
is caught by both engines with a trace that replays."""

from __future__ import annotations

import pytest
from helpers import run

from checker import stateful, traces
from checker.catalog.apiserver import ADMISSION, LIFECYCLE, MODELS, READS, WATCH, WRITES
from checker.explore import explore
from checker.run import targeted
from model.apiserver import registry
from model.apiserver.requests import ANSWERED, GONE, WATCHING
from model.kernel import Step, UnknownMutant
from properties import apiserver as request_properties

MUTANTS = [(model, mutant) for model in MODELS for mutant in sorted(model.mutants)]


def call(c, r, *op):
    return Step("clients->apiserver.Call", (c, r, op))


def serve(c):
    return Step("apiserver->store.Serve", (c,))


def answer(state, c):
    slot = state[1][1][c]
    assert slot[0] == ANSWERED
    return slot[4]


# -- the request path ------------------------------------------------------------------


def test_only_the_apiserver_is_linked_to_the_store():
    for model in (WRITES, READS, WATCH):
        links = model.machine().talks_to()
        assert {callee for caller, callee in links if caller != "apiserver"} == {"apiserver"}
        assert ("apiserver", "store") in links
    bypass = WRITES.machine("client_writes_store_directly").talks_to()
    assert ("clients", "store") in bypass


def test_the_loser_of_a_race_gets_409_and_wins_after_reading_again():
    m = WRITES.machine()
    s = run(m, call(0, 0, "create", 0), serve(0),
             call(1, 1, "list", "unset", 0), serve(1),       # both know rv 2
             call(0, 0, "update", 0, 2), serve(0))            # writer 0 wins: rv 3
    assert answer(s, 0)[:2] == (registry.OK, 3)
    s = run(m, call(1, 0, "update", 0, 2), serve(1), state=s)
    assert answer(s, 1)[0] == registry.CONFLICT
    assert s[2][0] == 3  # the store did not move
    s = run(m, call(1, 1, "list", "unset", 0), serve(1), call(1, 0, "update", 0, 3),
             serve(1), state=s)
    assert answer(s, 1)[:2] == (registry.OK, 4)


def test_lists_unset_0_and_n_against_a_lagging_cache():
    m = READS.machine()
    s = run(m, call(0, 0, "create", 0), serve(0))
    unset = run(m, call(0, 1, "list", "unset", 0), serve(0), state=s)
    assert answer(unset, 0)[2] == 2              # quorum read: sees the write
    any_ = run(m, call(0, 1, "list", "0", 0), serve(0), state=s)
    assert answer(any_, 0)[2] == 1               # the lagging cache, allowed at "0"
    waiting = run(m, call(0, 1, "list", "N", 2), state=s)
    assert m.apply(waiting, serve(0)) is None    # "N": waits for the cache …
    caught_up = run(m, Step("apiserver->store.CatchUp", (1,)), serve(0), state=waiting)
    assert answer(caught_up, 0)[2] == 2          # … and then reads at >= N


def _watcher(state):
    return state[0][1]


def test_a_watch_from_a_compacted_revision_ends_with_410_and_relists():
    m = WATCH.machine()
    s = run(m, call(0, 0, "create", 0), serve(0), call(0, 0, "update", 0, 2), serve(0),
             Step("apiserver->store.Compact"), Step("apiserver->store.CatchUp", (0,)),
             Step("apiserver->clients.Deliver", (0,)))
    assert _watcher(s)[1] == GONE and _watcher(s)[4] == ()
    s = run(m, Step("clients->apiserver.Relist", (0,)), state=s)
    assert _watcher(s)[1:4] == (WATCHING, 3, 3)
    assert request_properties.watch_guarantees(m, s)


def test_a_dropped_watch_resumes_without_gaps_and_bookmarks_advance_it():
    m = WATCH.machine()
    s = run(m, call(0, 0, "create", 0), serve(0), Step("apiserver->store.CatchUp", (0,)),
             Step("apiserver->clients.Deliver", (0,)), Step("clients.DropWatch"),
             call(0, 0, "create", 1), serve(0), Step("apiserver->store.CatchUp", (1,)),
             Step("apiserver->store.CatchUp", (1,)),
             Step("clients->apiserver.Watch", (1,)),        # resume on the other replica
             Step("apiserver->clients.Bookmark", (1,)))
    delivered = _watcher(s)[4]
    assert [e[2] for e in delivered] == [registry.ADDED, registry.BOOKMARK]
    assert _watcher(s)[3] == 3
    assert request_properties.watch_guarantees(m, s)


def test_bad_bounds_and_unknown_mutants_are_refused():
    with pytest.raises(ValueError):
        WRITES.machine(objects=9)
    with pytest.raises(ValueError):
        READS.machine(list_modes=("sometimes",))
    with pytest.raises(UnknownMutant):
        WRITES.machine("watch_skips_compacted")  # another model's bug


# -- lifecycle and admission scenarios -----------------------------------------------------


def test_orphan_deletion_strips_references_then_releases_the_owner():
    m = LIFECYCLE.machine()
    s = next(iter(m.init_states()))
    s = run(m, Step("Delete", (0, registry.ORPHAN)), Step("GcOrphan", (1,)),
             Step("GcOrphan", (2,)), Step("GcReleaseOrphan"), state=s)
    assert registry.current(s, m.keys[0])[0] is None
    for key in m.keys[1:]:
        pod = registry.current(s, key)[0]
        assert pod is not None and pod[7] == ()  # survives, without its ownerReference


def test_foreground_deletion_waits_for_a_dependent_held_by_its_finalizer():
    m = LIFECYCLE.machine()
    protected = list(m.init_states())[1]  # the first pod carries example.com/protect
    s = run(m, Step("Delete", (0, registry.FOREGROUND)), Step("GcDeleteDependent", (1,)),
             Step("GcDeleteDependent", (2,)), state=protected)
    assert m.apply(s, Step("GcReleaseForeground")) is None  # p1 still blocks
    s = run(m, Step("RemoveFinalizer", (1,)), Step("GcReleaseForeground"), state=s)
    assert all(registry.current(s, k)[0] is None for k in m.keys)


def test_quota_is_enforced_under_concurrent_admission():
    m = ADMISSION.machine()
    s = run(m, Step("Admit", (0, "a", "small")), Step("Admit", (1, "b", "large")),
             Step("Commit", (0,)), Step("Commit", (1,)))
    # replica 1 read a stale usage, its compare failed, it re-read and retries
    assert s[1][1] != ()
    s = run(m, Step("Commit", (1,)), state=s)
    assert registry.current(s[0], "/registry/pods/team/b")[0] is None  # 403: over cpu


def test_no_pod_is_admitted_into_a_terminating_namespace():
    m = ADMISSION.machine()
    s = run(m, Step("Admit", (0, "a", "small")), Step("DeleteNamespace"), Step("Commit", (0,)))
    assert registry.current(s[0], "/registry/pods/team/a")[0] is None
    s = run(m, Step("CleanNamespace", (2,)), Step("FinalizeNamespace"), state=s)
    assert registry.current(s[0], "/registry/namespaces/team")[0] is None


# -- engines ------------------------------------------------------------------------------


#: explore bounds for the test run: the defaults, except the two largest
#: spaces, taken one revision smaller (the defaults are `kubemc check`'s).
TEST_BOUNDS = {"apiserver-writes": {"max_revision": 3}, "apiserver-admission": {"max_revision": 6}}


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_correct_models_hold_under_exhaustive_exploration(model):
    outcome = explore(model.machine(**TEST_BOUNDS.get(model.name, {})), model.properties)
    assert outcome.complete and outcome.counterexample is None
    assert outcome.stats.states > 1000


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_correct_models_hold_under_random_runs(model):
    outcome = stateful.check(model.hypothesis_machine(), model.properties, profile="ci",
                             max_examples=40)
    assert outcome.counterexample is None and outcome.examples >= 40


@pytest.mark.parametrize("model, mutant", MUTANTS, ids=lambda x: getattr(x, "name", x))
def test_every_mutant_is_caught_by_explore_with_a_replayable_trace(model, mutant, tmp_path):
    machine = model.machine(mutant)
    outcome = explore(machine, targeted(model, mutant))
    cex = outcome.counterexample
    assert cex is not None, f"{mutant} escaped exploration"
    assert cex.prop.name == model.mutants[mutant].violates
    path = traces.save(cex, tmp_path, model=model.name, machine=machine, engine="explore")
    assert traces.replay(traces.load(path)).reproduced


@pytest.mark.parametrize("model, mutant", MUTANTS, ids=lambda x: getattr(x, "name", x))
def test_every_mutant_is_caught_by_random_runs_and_shrunk(model, mutant, tmp_path):
    machine = model.hypothesis_machine(mutant)
    outcome = stateful.check(machine, targeted(model, mutant), profile="ci")
    cex = outcome.counterexample
    assert cex is not None, f"{mutant} escaped {outcome.examples} runs"
    assert cex.prop.name == model.mutants[mutant].violates
    path = traces.save(cex, tmp_path, model=model.name, machine=machine, engine="hypothesis")
    assert traces.replay(traces.load(path)).reproduced

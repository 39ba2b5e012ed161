"""The informer's parts, one rule at a time: the list/watch contract over the
MVCC store, the DeltaFIFO, the work queue — and scripted behaviours of the
whole machine, with and without each seeded bug."""

from __future__ import annotations

import pytest

from kubemc.model.informer import Informer
from kubemc.model.informer import deltafifo as F
from kubemc.model.informer import server
from kubemc.model.informer import workqueue as Q
from kubemc.model.informer.machine import CLOSED, LIST, WATCH, RelistInformer
from kubemc.model.kernel import Step, UnknownMutant
from kubemc.model.store.mvcc import INITIAL, Compact, Delete, Put, apply_all
from kubemc.properties.informer import PROPERTIES, synced

BY_NAME = {p.name: p for p in PROPERTIES}
KEYS = ("pods/a", "pods/b")


# ---------------------------------------------------------------------------
# the list/watch contract
# ---------------------------------------------------------------------------


def store_after(*requests):
    state, _ = apply_all(requests, INITIAL)
    return state


def test_list_reads_every_live_object_at_the_current_revision():
    s = store_after(Put("pods/a", "x"), Put("pods/b", "y"), Put("pods/a", "z"),
                    Delete("pods/b"), Put("configmaps/x", "q"))
    assert s[0] == 6
    assert server.objects(s, KEYS) == (("pods/a", 4, "z"),)


def test_events_come_in_revision_order_with_their_types():
    s = store_after(Put("pods/a", "x"), Put("pods/b", "y"), Put("pods/a", "z"),
                    Put("configmaps/x", "q"), Delete("pods/a"))
    seen, rv = [], 1
    while (event := server.next_event(s, KEYS, rv)) is not None:
        seen.append(event)
        rv = event[0]
    assert seen == [(2, "pods/a", server.ADDED, "x"), (3, "pods/b", server.ADDED, "y"),
                    (4, "pods/a", server.MODIFIED, "z"), (6, "pods/a", server.DELETED, "")]


def test_a_watch_is_gone_exactly_when_history_after_its_revision_is_compacted():
    s = store_after(Put("pods/a", "x"), Put("pods/a", "y"), Put("pods/a", "z"), Compact(3))
    assert s[1] == 3
    assert server.gone(s, 1)          # needs revision 2, compacted
    assert not server.gone(s, 2)      # needs revision 3: kept
    assert server.next_event(s, KEYS, 2) == (3, "pods/a", server.MODIFIED, "y")


def test_a_bookmark_closes_only_a_gap_without_events():
    s = store_after(Put("pods/a", "x"), Put("configmaps/x", "q"))
    assert server.bookmark_revision(s, KEYS, 1) is None   # the ADDED at 2 is pending
    assert server.bookmark_revision(s, KEYS, 2) == 3      # 3 is another resource's
    assert server.bookmark_revision(s, KEYS, 3) is None   # nothing newer


# ---------------------------------------------------------------------------
# the DeltaFIFO
# ---------------------------------------------------------------------------

A = "pods/a"
B = "pods/b"


def test_consecutive_deletions_collapse_and_keep_the_informative_one():
    real = (F.DELETED, 5, "", 0)
    tomb = (F.DELETED, 4, "x", 1)
    assert F.queue_action(((A, (tomb,)),), A, real) == ((A, (real,)),)
    assert F.queue_action(((A, (real,)),), A, tomb) == ((A, (real,)),)
    # other types never collapse: every change is kept, in order
    up1, up2 = (F.UPDATED, 3, "x", 0), (F.UPDATED, 4, "y", 0)
    assert F.queue_action(((A, (up1,)),), A, up2) == ((A, (up1, up2)),)


def test_a_key_keeps_its_place_in_the_queue():
    fifo = F.queue_action((), A, (F.ADDED, 2, "x", 0))
    fifo = F.queue_action(fifo, B, (F.ADDED, 3, "y", 0))
    fifo = F.queue_action(fifo, A, (F.UPDATED, 4, "z", 0))
    assert [k for k, _ in fifo] == [A, B]


def test_a_delete_nobody_knows_is_ignored():
    assert F.delete((), (), A, (F.DELETED, 3, "", 0)) == ()
    cache = ((A, 2, "x"),)
    assert F.delete((), cache, A, (F.DELETED, 3, "", 0)) == ((A, ((F.DELETED, 3, "", 0),)),)


def test_relist_queues_replaced_and_tombstones_for_what_disappeared():
    cache = ((A, 2, "x"), (B, 3, "y"))
    fifo = ((B, ((F.UPDATED, 4, "z", 0),)),)
    out = F.replace(fifo, cache, listed=())
    assert out == ((B, ((F.UPDATED, 4, "z", 0), (F.DELETED, 4, "z", 1))),
                   (A, ((F.DELETED, 2, "x", 1),)))
    out = F.replace((), cache, listed=((A, 5, "w"),))
    assert out == ((A, ((F.REPLACED, 5, "w", 0),)), (B, ((F.DELETED, 3, "y", 1),)))
    assert F.replace((), cache, listed=(), tombstones=False) == ()


def test_resync_syncs_only_keys_without_pending_deltas():
    cache = ((A, 2, "x"), (B, 3, "y"))
    fifo = ((A, ((F.UPDATED, 4, "z", 0),)),)
    assert F.resync(fifo, cache) == fifo + ((B, ((F.SYNC, 3, "y", 0),)),)


def test_popped_deltas_leave_the_last_state_in_the_cache():
    cache = ((A, 2, "x"),)
    assert F.apply_deltas(cache, A, ((F.UPDATED, 3, "y", 0), (F.DELETED, 4, "", 0))) == ()
    assert F.apply_deltas(cache, B, ((F.REPLACED, 5, "w", 0),)) == ((A, 2, "x"), (B, 5, "w"))


# ---------------------------------------------------------------------------
# the work queue
# ---------------------------------------------------------------------------


def test_add_deduplicates_and_get_hands_out_in_order():
    wq = Q.add(Q.add(Q.add(Q.empty(2), A), B), A)
    assert wq == ((A, B), (A, B), (), ("", ""), (A, B))
    wq = Q.get(wq, 1)
    assert wq == ((B,), (B,), (A,), ("", A), (B,))
    assert Q.get(wq, 1) is None  # a busy worker takes nothing


def test_a_key_added_while_processed_waits_for_done():
    wq = Q.get(Q.add(Q.empty(2), A), 0)
    wq = Q.add(wq, A)
    assert wq == ((), (A,), (A,), (A, ""), (A,))    # dirty, not queued
    assert Q.get(wq, 1) is None                     # so no second worker gets it
    wq = Q.done(wq, 0)
    assert wq == ((A,), (A,), (), ("", ""), (A,))   # queued again on Done
    assert Q.done(wq, 0) is None              # an idle worker has nothing to finish


# ---------------------------------------------------------------------------
# scripted behaviours of the machine
# ---------------------------------------------------------------------------


def run(machine, script):
    state = next(iter(machine.init_states()))
    for name, *params in script:
        nxt = machine.apply(state, Step(name, tuple(params)))
        assert nxt is not None, f"{name}{tuple(params)} not enabled in {machine.view(state)}"
        state = nxt
    return state


def holds(name, machine, state):
    return BY_NAME[name].check(machine, state)


#: create a, list, then a deletion the watch never sees: compaction past it
#: makes the watch 410, and only the relist's tombstone removes a.
MISSED_DELETE = [("Create", "c0", A), ("List",), ("Pop",), ("Delete", "c1", A),
                 ("WriteOther", "c0"), ("Compact", 4), ("Gone",), ("List",), ("Pop",)]


def test_a_deletion_missed_during_a_410_is_a_tombstone_and_the_cache_converges():
    m = Informer()
    before_relist = run(m, MISSED_DELETE[:-2])
    assert before_relist[2] == (LIST, 2) and before_relist[4] == ((A, 2, "c0"),)
    relisted = m.apply(before_relist, Step("List"))
    assert relisted[3] == ((A, ((F.DELETED, 2, "c0", 1),)),)
    final = run(m, MISSED_DELETE)
    assert synced(m, final) and final[4] == () and holds("cache_converges", m, final)


def test_relist_forgets_tombstone_keeps_the_deleted_object_forever():
    m = Informer(mutant="relist_forgets_tombstone")
    final = run(m, MISSED_DELETE[:-1])
    assert synced(m, final) and final[4] == ((A, 2, "c0"),)
    assert not holds("cache_converges", m, final)


def test_watch_resumes_after_gone_loses_the_compacted_events():
    script = [("List",), ("Create", "c0", A), ("WriteOther", "c1"), ("Compact", 3), ("Gone",)]
    good = run(Informer(), script)
    assert good[2][0] == LIST
    bad_m = Informer(mutant="watch_resumes_after_gone")
    bad = run(bad_m, script)
    assert bad[2] == (WATCH, 2) and synced(bad_m, bad)
    assert not holds("cache_converges", bad_m, bad)


def test_fifo_drops_update_leaves_a_stale_object():
    script = [("List",), ("Create", "c0", A), ("Update", "c1", A), ("Deliver",), ("Deliver",),
              ("Pop",)]
    m = Informer()
    good = run(m, script)
    assert good[4] == ((A, 3, "c1"),) and holds("cache_converges", m, good)
    bad_m = Informer(mutant="fifo_drops_update")
    bad = run(bad_m, script)
    assert bad[4] == ((A, 2, "c0"),) and not holds("cache_converges", bad_m, bad)


def test_a_bookmark_never_skips_a_pending_event():
    script = [("List",), ("Create", "c0", A), ("Bookmark",)]
    m = Informer()
    assert m.apply(run(m, script[:-1]), Step("Bookmark")) is None
    bad_m = Informer(mutant="bookmark_skips_events")
    bad = run(bad_m, script)
    assert synced(bad_m, bad) and not holds("cache_converges", bad_m, bad)


def test_a_dropped_watch_resumes_from_its_revision_without_relisting():
    m = Informer()
    state = run(m, [("List",), ("Create", "c0", A), ("Disconnect",)])
    assert state[2] == (CLOSED, 1)
    state = run(m, [("List",), ("Create", "c0", A), ("Disconnect",), ("Watch",), ("Deliver",),
                    ("Pop",)])
    assert state[2] == (WATCH, 2) and state[4] == ((A, 2, "c0"),)
    assert holds("cache_converges", m, state)


#: a key handed to worker 0, changed again (resync) while it is processed
BUSY_KEY = [("Create", "c0", A), ("List",), ("Pop",), ("Get", 0), ("Resync",), ("Pop",)]


def test_a_key_changed_while_processed_goes_to_no_second_worker():
    m = Informer()
    state = run(m, BUSY_KEY)
    assert m.apply(state, Step("Get", (1,))) is None
    state = run(m, BUSY_KEY + [("Done", 0), ("Get", 1)])
    assert state[5][3] == ("", A)
    for name in ("workqueue_exclusive", "workqueue_keeps_dirty_keys",
                 "workqueue_hands_out_added_keys"):
        assert holds(name, m, state)


def test_no_processing_set_gives_one_key_to_two_workers():
    m = Informer(mutant="no_processing_set")
    state = run(m, BUSY_KEY + [("Get", 1)])
    assert state[5][3] == (A, A) and not holds("workqueue_exclusive", m, state)


def test_done_forgets_dirty_loses_the_change():
    m = Informer(mutant="done_forgets_dirty")
    state = run(m, BUSY_KEY + [("Done", 0)])
    assert state[5] == ((), (A,), (), ("", ""), (A,))
    assert not holds("workqueue_keeps_dirty_keys", m, state)
    assert not holds("workqueue_hands_out_added_keys", m, state)


def test_a_lost_add_is_seen_only_by_the_ghost():
    """The Add of a key being processed is dropped: the queue's bookkeeping
    stays consistent (no dirty key is lost, because none was marked), but the
    key added while processed is neither queued nor held after Done."""
    m = Informer(mutant="add_while_processing_lost")
    state = run(m, BUSY_KEY)
    assert state[5][1] == () and state[5][4] == (A,)     # not dirty, but added
    state = run(m, BUSY_KEY + [("Done", 0)])
    assert state[5] == ((), (), (), ("", ""), (A,))
    assert holds("workqueue_keeps_dirty_keys", m, state)
    assert not holds("workqueue_hands_out_added_keys", m, state)


# the DeltaFIFO's and the watch's own rules, each with the seeded bug that
# breaks it (and, where the mutation run found one, the shape of the gap)


def test_a_queued_key_holds_one_place():
    script = [("List",), ("Create", "c0", A), ("Update", "c1", A), ("Deliver",), ("Deliver",)]
    m = Informer()
    good = run(m, script)
    assert [k for k, _ in good[3]] == [A] and holds("fifo_keys_distinct", m, good)
    bad_m = Informer(mutant="fifo_queues_key_twice")
    bad = run(bad_m, script)
    assert [k for k, _ in bad[3]] == [A, A] and not holds("fifo_keys_distinct", bad_m, bad)


#: a deletion the watch delivers while a Replaced is queued, then (two more
#: writes later) a compaction past the watch, a 410 and a relist that
#: tombstones the same key: the deletion and its tombstone meet
DELETE_THEN_TOMBSTONE = [("Create", "c0", A), ("List",), ("Delete", "c0", A),
                         ("Create", "c0", A), ("Delete", "c0", A), ("Deliver",),
                         ("Compact", 5), ("Gone",), ("List",)]


def test_a_delivered_deletion_and_a_relist_tombstone_collapse():
    m = RelistInformer(keys=1, writers=1, writes=4, workers=1)
    good = run(m, DELETE_THEN_TOMBSTONE)
    assert good[3] == ((A, ((F.REPLACED, 2, "c0", 0), (F.DELETED, 3, "", 0))),)
    assert holds("fifo_deletions_collapsed", m, good)
    bad_m = RelistInformer(keys=1, writers=1, writes=4, workers=1,
                           mutant="fifo_keeps_both_deletions")
    bad = run(bad_m, DELETE_THEN_TOMBSTONE)
    assert [d[0] for d in bad[3][0][1]] == [F.REPLACED, F.DELETED, F.DELETED]
    assert not holds("fifo_deletions_collapsed", bad_m, bad)
    # the Informer of the wider model does not carry this bug: its bounds
    # cannot reach it (RelistInformer does)
    with pytest.raises(UnknownMutant):
        Informer(mutant="fifo_keeps_both_deletions")


def test_resync_syncs_a_key_only_when_nothing_of_it_is_queued():
    m = Informer()
    idle = run(m, [("List",), ("Create", "c0", A), ("Deliver",), ("Pop",)])
    synced_state = m.apply(idle, Step("Resync"))
    assert synced_state[3] == ((A, ((F.SYNC, 2, "c0", 0),)),)
    assert holds("cover_resync_queues_sync", m, synced_state)
    assert holds("fifo_sync_first", m, synced_state)
    busy = [("List",), ("Create", "c0", A), ("Deliver",), ("Pop",), ("Update", "c1", A),
            ("Deliver",)]
    assert m.apply(run(m, busy), Step("Resync")) is None
    bad_m = Informer(mutant="resync_over_pending_deltas")
    bad = run(bad_m, busy + [("Resync",)])
    assert [d[0] for d in bad[3][0][1]] == [F.UPDATED, F.SYNC]
    assert not holds("fifo_sync_first", bad_m, bad)


def test_watch_events_keep_their_types_in_the_fifo():
    script = [("List",), ("Create", "c0", A), ("Update", "c1", A), ("Deliver",), ("Deliver",)]
    m = Informer()
    good = run(m, script)
    assert [d[0] for d in good[3][0][1]] == [F.ADDED, F.UPDATED]
    assert holds("watch_delta_types", m, good)
    bad_m = Informer(mutant="watch_modified_as_added")
    bad = run(bad_m, script)
    assert [d[0] for d in bad[3][0][1]] == [F.ADDED, F.ADDED]
    assert not holds("watch_delta_types", bad_m, bad)
    # ADDED and MODIFIED swapped (the mutation run's gap): the creation read
    # as a change is caught on its own
    swapped = good[:3] + (((A, ((F.UPDATED, 2, "c0", 0),)),),) + good[4:]
    assert not holds("watch_delta_types", m, swapped)


def test_a_410_answers_only_a_watch_whose_history_is_compacted():
    prop = BY_NAME["gone_only_when_compacted"]
    live = [("List",), ("Create", "c0", A)]
    m = Informer()
    assert m.apply(run(m, live), Step("Gone")) is None
    compacted = live + [("WriteOther", "c1"), ("Compact", 3)]
    before = run(m, compacted)
    assert prop.holds_on(m, before, Step("Gone"), m.apply(before, Step("Gone")))
    # compacted at 2, the watch from 1 needs the records from 2 on: all kept
    at_compact = live + [("Compact", 2)]
    assert m.apply(run(m, at_compact), Step("Gone")) is None
    bad_m = Informer(mutant="gone_at_compact_revision")
    before = run(bad_m, at_compact)
    after = bad_m.apply(before, Step("Gone"))
    assert after[2] == (LIST, 1) and not prop.holds_on(bad_m, before, Step("Gone"), after)


def test_bad_bounds_and_unknown_mutants_are_refused():
    with pytest.raises(ValueError):
        Informer(keys=0)
    with pytest.raises(ValueError):
        Informer(workers=0)
    with pytest.raises(UnknownMutant):
        Informer(mutant="nope")


def test_steps_a_machine_never_proposes_are_not_enabled():
    m = Informer()
    init = next(iter(m.init_states()))
    assert m.apply(init, Step("Create", ("c9", A))) is None
    assert m.apply(init, Step("Get", (5,))) is None
    assert m.apply(init, Step("Nope")) is None
    assert m.apply(init, Step("Update", ("c0", A))) is None  # a is absent

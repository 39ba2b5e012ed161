"""The apiserver's machines: behaviours the issue names, played step by step;
every model passes exhaustive exploration and random runs; every seeded bug
is caught by both engines with a trace that replays."""

from __future__ import annotations

import pytest
from helpers import run

from kubemc.checker import stateful, traces
from kubemc.checker.catalog.apiserver import ADMISSION, LIFECYCLE, MODELS, READS, WATCH, WRITES
from kubemc.checker.explore import explore
from kubemc.checker.run import targeted
from kubemc.model.apiserver import registry
from kubemc.model.apiserver.requests import (CLOSED, GONE, GONE_MSG, RELIST, RESUME, SERVE,
                                             WATCHES, WATCHING, answers_channel,
                                             requests_channel, watch_channel)
from kubemc.model.kernel import Step, UnknownMutant
from kubemc.properties import apiserver as request_properties

MUTANTS = [(model, mutant) for model in MODELS for mutant in sorted(model.mutants)]


def call(c, r, *op):
    return Step("clients.Send", (c, r, op))


def channel(m, state, name):
    return state[-1][0][m.channel_index[name]]


def serve(m, state, c):
    """The Serve step of writer ``c``'s request in flight."""
    (msg,) = channel(m, state, requests_channel(c))
    return Step(SERVE, (requests_channel(c), msg))


def ask(m, c, r, *op, state=None):
    """Writer ``c`` sends ``op`` to replica ``r`` and the replica serves it:
    the state with the answer in flight."""
    s = run(m, call(c, r, *op), state=state)
    return run(m, serve(m, s, c), state=s)


def answer(m, state, c):
    """The answer in flight to writer ``c``: (code, rv, read revision, items)."""
    (msg,) = channel(m, state, answers_channel(c))
    return msg[1]


def receive(m, state, c):
    (msg,) = channel(m, state, answers_channel(c))
    return run(m, Step("clients.Deliver", (answers_channel(c), msg)), state=state)


def roundtrip(m, c, r, *op, state=None):
    return receive(m, ask(m, c, r, *op, state=state), c)


def take(m, state, r):
    """The watcher takes the oldest message on replica ``r``'s stream."""
    msg = channel(m, state, watch_channel(r))[0]
    return run(m, Step("clients.Deliver", (watch_channel(r), msg)), state=state)


def stream(r):
    return Step("apiserver.Stream", (r,))


COMPACT, CLOSE = Step("apiserver->store.Compact"), Step("apiserver.CloseWatch")


def catch_up(r):
    return Step("apiserver->store.CatchUp", (r,))


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
    s = roundtrip(m, 0, 0, "create", 0)
    s = roundtrip(m, 1, 1, "list", "unset", 0, state=s)         # both know rv 2
    s = ask(m, 0, 0, "update", 0, 2, state=s)                    # writer 0 wins: rv 3
    assert answer(m, s, 0)[:2] == (registry.OK, 3)
    s = ask(m, 1, 0, "update", 0, 2, state=receive(m, s, 0))
    assert answer(m, s, 1)[0] == registry.CONFLICT
    assert s[2][0] == 3  # the store did not move
    s = roundtrip(m, 1, 1, "list", "unset", 0, state=receive(m, s, 1))
    s = ask(m, 1, 0, "update", 0, 3, state=s)
    assert answer(m, s, 1)[:2] == (registry.OK, 4)


def test_a_writer_has_one_request_in_flight_and_a_list_carries_what_it_must_observe():
    m = WRITES.machine()
    s = run(m, call(0, 0, "create", 0))
    assert m.apply(s, call(0, 0, "create", 1)) is None         # busy until answered
    s = receive(m, run(m, serve(m, s, 0), state=s), 0)
    s = run(m, call(1, 1, "list", "unset", 0), state=s)
    # writer 0's create was acknowledged (rv 2) before the list was sent
    assert channel(m, s, requests_channel(1)) == ((1, 1, ("list", "unset", 0), 2),)


def test_lists_unset_0_and_n_against_a_lagging_cache():
    m = READS.machine()
    s = roundtrip(m, 0, 0, "create", 0)
    unset = ask(m, 0, 1, "list", "unset", 0, state=s)
    assert answer(m, unset, 0)[2] == 2          # quorum read: sees the write
    any_ = ask(m, 0, 1, "list", "0", 0, state=s)
    assert answer(m, any_, 0)[2] == 1           # the lagging cache, allowed at "0"
    waiting = run(m, call(0, 1, "list", "N", 2), state=s)
    assert m.apply(waiting, serve(m, waiting, 0)) is None    # "N": waits for the cache …
    caught_up = run(m, catch_up(1), state=waiting)
    caught_up = run(m, serve(m, caught_up, 0), state=caught_up)
    assert answer(m, caught_up, 0)[2] == 2      # … and then reads at >= N


def _watcher(state):
    return state[0][1]


def _compacted_and_gone(m):
    s = roundtrip(m, 0, 0, "create", 0)
    s = roundtrip(m, 0, 0, "update", 0, 2, state=s)
    s = run(m, COMPACT, catch_up(0), stream(0), state=s)
    assert channel(m, s, watch_channel(0)) == ((GONE_MSG,),)
    return take(m, s, 0)


def test_a_watch_from_a_compacted_revision_ends_with_410_and_relists():
    m = WATCH.machine()
    s = _compacted_and_gone(m)
    assert _watcher(s)[1] == GONE and _watcher(s)[4] == ()
    s = run(m, Step("clients.Relist", (0,)),
            Step("apiserver.Deliver", (WATCHES, (RELIST, 0, 1))), state=s)
    s = take(m, s, 0)
    assert _watcher(s)[1:4] == (WATCHING, 3, 3)
    assert request_properties.watch_guarantees(m, s)


def test_410_gone_ends_only_a_watch_whose_history_is_unavailable():
    """watch_gone_only_when_history_unavailable: the 410 after a compaction
    holds it; the off-by-one mutant's 410 at the window's start does not; and
    a fresh watch whose status reads as gone (the mutation run's weak gap:
    WATCHING and GONE one value) is refused, its history being available."""
    prop = request_properties.watch_gone_only_when_history_unavailable
    m = WATCH.machine()
    s = _compacted_and_gone(m)
    assert _watcher(s)[1] == GONE and prop(m, s)
    (s0,) = m.init_states()
    assert _watcher(s0)[1] == WATCHING and prop(m, s0)
    merged = ((s0[0][0], (0, GONE) + _watcher(s0)[2:]) + s0[0][2:],) + s0[1:]
    assert not prop(m, merged)
    bad = WATCH.machine("gone_at_window_start")
    s = take(bad, run(bad, stream(0)), 0)
    assert _watcher(s)[1] == GONE and not prop(bad, s)


def test_a_closed_watch_resumes_without_gaps_and_bookmarks_advance_it():
    m = WATCH.machine()
    s = roundtrip(m, 0, 0, "create", 0)
    s = take(m, run(m, catch_up(0), stream(0), state=s), 0)
    s = run(m, CLOSE, state=s)
    assert channel(m, s, watch_channel(0)) == ((CLOSED,),)
    s = take(m, s, 0)
    s = roundtrip(m, 0, 0, "create", 1, state=s)
    s = run(m, catch_up(1), catch_up(1),
            Step("clients.Watch", (1,)),                          # resume on the other replica
            Step("apiserver.Deliver", (WATCHES, (RESUME, 1, 2))),
            Step("apiserver.Bookmark", (1,)), state=s)
    s = take(m, s, 1)
    delivered = _watcher(s)[4]
    assert [e[2] for e in delivered] == [registry.ADDED, registry.BOOKMARK]
    assert _watcher(s)[3] == 3
    assert request_properties.watch_guarantees(m, s)


def test_only_the_replica_the_watcher_asked_adds_to_its_stream():
    """A watch is one response stream from the replica it was opened on: that
    replica's bookmark is accepted, the other replica's (the mutant, and the
    gap the mutation run of docs/mutation/apiserver.md found) is not, though
    it is honest and watch_guarantees cannot tell it apart."""
    prop = request_properties.watch_stream_from_serving_replica
    before = roundtrip(WATCH.machine(), 0, 0, "create", 1)
    before = run(WATCH.machine(), catch_up(0), catch_up(1), state=before)
    assert _watcher(before)[0] == 0
    for r in (0, 1):
        m = WATCH.machine("bookmark_from_any_replica")
        s = run(m, Step("apiserver.Bookmark", (r,)), state=before)
        (msg,) = channel(m, s, watch_channel(r))
        step = Step("clients.Deliver", (watch_channel(r), msg))
        after = run(m, step, state=s)
        assert [e[2] for e in _watcher(after)[4]] == [registry.BOOKMARK]
        assert request_properties.watch_guarantees(m, after)
        assert prop(m, s, step, after) == (r == 0)
    m = WATCH.machine()
    assert m.apply(before, Step("apiserver.Bookmark", (1,))) is None


def test_a_silent_failover_of_the_watch_is_a_violation():
    """The audit's gap: the property used to take the serving replica from
    the state, so a watch moved to the other replica without a watch request
    passed. Now the replica is the one the watcher asked (its own record) and
    the sender is the channel the message came on: the failover's events are
    right (watch_guarantees holds) and the apiserver's own record names the
    replica that sent them, yet the property fails."""
    prop = request_properties.watch_stream_from_serving_replica
    m = WATCH.machine("silent_watch_failover")
    s = roundtrip(m, 0, 0, "create", 0)
    s = run(m, catch_up(1), CLOSE, state=s)
    assert s[1][1][0] == 1 and _watcher(s)[0] == 0     # served by 1; the watcher asked 0
    s = run(m, stream(1), state=s)
    (msg,) = channel(m, s, watch_channel(1))
    step = Step("clients.Deliver", (watch_channel(1), msg))
    after = run(m, step, state=s)
    assert [e[2] for e in _watcher(after)[4]] == [registry.ADDED]
    assert request_properties.watch_guarantees(m, after)
    assert not prop(m, s, step, after)
    good = WATCH.machine()
    s = run(good, catch_up(1), CLOSE, state=roundtrip(good, 0, 0, "create", 0))
    assert s[1][1][0] == -1 and channel(good, s, watch_channel(0)) == ((CLOSED,),)


def test_the_replica_asked_is_recorded_when_the_request_is_sent():
    """The audit's A16: a relist answered by the other replica, with a client
    that adopts the replica of the stream the list came on, held while the
    property skipped the list's delivery and trusted the record. Now the
    record is fixed by the request put on ``watches`` and every delivery from
    a watch stream, the list's answer included, is judged."""
    prop = request_properties.watch_stream_from_serving_replica
    for mutant, holds in ((None, True), ("relist_answered_by_other_replica", False)):
        m = WATCH.machine(mutant) if mutant else WATCH.machine()
        s = _compacted_and_gone(m)
        send = Step("clients.Relist", (0,))
        sent = run(m, send, state=s)
        assert prop(m, s, send, sent) and _watcher(sent)[0] == 0
        (request,) = channel(m, sent, WATCHES)
        s = run(m, Step("apiserver.Deliver", (WATCHES, request)), state=sent)
        r = 0 if holds else 1
        (msg,) = channel(m, s, watch_channel(r))
        step = Step("clients.Deliver", (watch_channel(r), msg))
        after = run(m, step, state=s)
        assert _watcher(after)[0] == r
        assert prop(m, s, step, after) is holds, mutant
        # a record moved by anything but a watch request is judged too
        moved = after[:0] + ((after[0][0], (1 - _watcher(s)[0],) + _watcher(s)[1:])
                             + after[0][2:],) + s[1:]
        assert not prop(m, s, Step("apiserver.Bookmark", (0,)), moved)


def test_a_watch_the_server_ends_is_seen_to_end():
    """watcher_learns_its_watch_ended: after CloseWatch the stream ends with
    CLOSED, and once the watcher has read it and sent its resume the request
    is on its way; the seeded silent close leaves a watching watcher with no
    stream, no request and no end in sight."""
    prop = request_properties.watcher_learns_its_watch_ended
    m = WATCH.machine()
    s = run(m, CLOSE)
    assert channel(m, s, watch_channel(0))[-1] == (CLOSED,) and prop(m, s)
    s = run(m, Step("clients.Watch", (1,)), state=take(m, s, 0))
    assert channel(m, s, WATCHES) and prop(m, s)
    bad = WATCH.machine("silent_close")
    s = run(bad, CLOSE)
    assert _watcher(s)[1] == WATCHING and not channel(bad, s, watch_channel(0))
    assert not prop(bad, s)


def test_a_relist_is_not_older_than_the_watchers_position():
    """relist_not_older_than_position: after 410 the watcher lists at its
    position under "not older than"; the replica answers at its cache's
    revision, at least the position. The seeded relist at the first revision
    goes back before what the watcher has seen and is judged at the receipt."""
    prop = request_properties.relist_not_older_than_position
    for mutant, holds in ((None, True), ("relist_at_first_revision", False)):
        m = WATCH.machine(mutant) if mutant else WATCH.machine()
        # the watcher sees revision 2 at replica 0, resumes at replica 1 after a
        # close, and replica 1's cache, re-listed past a compaction, ends it with 410
        s = run(m, catch_up(0), stream(0), state=roundtrip(m, 0, 0, "create", 0))
        s = roundtrip(m, 0, 0, "update", 0, 2, state=take(m, s, 0))
        s = run(m, CLOSE, state=s)
        s = run(m, Step("clients.Watch", (1,)), state=take(m, s, 0))
        s = run(m, Step("apiserver.Deliver", (WATCHES, (RESUME, 1, 2))), COMPACT, catch_up(1),
                stream(1), state=s)
        assert channel(m, s, watch_channel(1)) == ((GONE_MSG,),)
        s = run(m, Step("clients.Relist", (0,)), state=take(m, s, 1))
        (request,) = channel(m, s, WATCHES)
        assert request[0] == RELIST and request[2] == _watcher(s)[3] > 1
        step = Step("apiserver.Deliver", (WATCHES, request))
        after = run(m, step, state=s)
        assert prop(m, s, step, after) is holds, mutant


def test_a_writer_is_busy_exactly_while_one_message_of_its_is_in_flight():
    """one_request_in_flight_per_writer: busy with the request in flight,
    busy with the answer in flight, idle once it has read the answer; the
    seeded writer that ignores its busy flag puts a second request on the
    channel (a state the capacity keeps but never expands) and is judged
    there; the canonical form of a write waiting forever keeps one message."""
    prop = request_properties.one_request_in_flight_per_writer
    m = WRITES.machine()
    s = run(m, call(0, 0, "create", 0))
    assert prop(m, s) and prop(m, run(m, serve(m, s, 0), state=s))
    assert prop(m, roundtrip(m, 0, 0, "create", 0))
    bad = WRITES.machine("send_while_busy")
    s = run(bad, call(0, 0, "create", 0), call(0, 0, "delete", 0))
    assert len(channel(bad, s, requests_channel(0))) == 2 and not prop(bad, s)
    assert not bad.within_bounds(s)
    # a write past the bound waits forever; its stand-in is still one message
    small = WRITES.machine(max_revision=2)
    s = run(small, call(1, 0, "create", 1), state=roundtrip(small, 0, 0, "create", 0))
    merged = small.canonical(s)
    assert merged != s and len(channel(small, merged, requests_channel(1))) == 1
    assert prop(small, merged) and small.apply(merged, serve(small, merged, 1)) is None


def test_the_list_cover_needs_an_answered_list():
    """apiserver_cover_list_answered: reached once a list is answered, not by
    creates alone (a model whose writers never list would leave the read
    property unexercised: the mutation run's survivor of _call)."""
    m = WRITES.machine()
    s = roundtrip(m, 0, 0, "create", 0)
    assert not request_properties.some_list_answered(m, s)
    s = ask(m, 1, 1, "list", "unset", 0, state=s)
    assert request_properties.some_list_answered(m, s)


def test_each_answer_carries_the_status_code_of_its_outcome():
    """answer_codes_follow_conventions judges every answer against the store,
    with the codes restated from the API conventions: 201 for a create, 409
    for a create of an existing name or a stale update, 200 for a list, an
    update and a delete that removes, 404 for an absent object."""
    prop = request_properties.answer_codes_follow_conventions
    m = WRITES.machine()
    state = next(iter(m.init_states()))
    expected = [((0, 0, "create", 0), 201),
                ((1, 0, "create", 0), 409), ((1, 1, "list", "unset", 0), 200),
                ((0, 0, "update", 0, 2), 200), ((1, 0, "update", 0, 2), 409),
                ((0, 0, "delete", 0), 200), ((0, 0, "delete", 0), 404)]
    for (c, r, *op), code in expected:
        before = run(m, call(c, r, *op), state=state)
        step = serve(m, before, c)
        after = run(m, step, state=before)
        assert answer(m, after, c)[0] == code
        assert prop(m, before, step, after)
        state = receive(m, after, c)
    bad = WRITES.machine("create_answers_ok")
    before = run(bad, call(0, 0, "create", 0))
    step = serve(bad, before, 0)
    after = run(bad, step, state=before)
    assert answer(bad, after, 0)[0] == 200 and not prop(bad, before, step, after)


def test_each_request_is_answered_once_on_its_callers_channel():
    """each_request_answered_once_to_its_caller: a Serve of writer 1's request
    puts one answer on answers1 and nothing on answers0; the seeded bug puts it
    on answers0 and is judged at that step; a delivery answers nothing."""
    prop = request_properties.each_request_answered_once_to_its_caller
    m = WRITES.machine()
    before = run(m, call(1, 0, "create", 0))
    step = serve(m, before, 1)
    after = run(m, step, state=before)
    assert len(channel(m, after, answers_channel(1))) == 1
    assert not channel(m, after, answers_channel(0)) and prop(m, before, step, after)
    (msg,) = channel(m, after, answers_channel(1))
    delivery = Step("clients.Deliver", (answers_channel(1), msg))
    assert prop(m, after, delivery, run(m, delivery, state=after))
    bad = WRITES.machine("answer_to_other_client")
    before = run(bad, call(1, 0, "create", 0))
    step = serve(bad, before, 1)
    after = run(bad, step, state=before)
    assert channel(bad, after, answers_channel(0)) and not prop(bad, before, step, after)


def test_the_status_code_property_does_not_read_the_registrys_constants(monkeypatch):
    """The mutation run's survivor: registry.OK = 199 (every successful get,
    list and update answered 199) passed every other property, which compare
    answers with the same constant. The property states the codes itself."""
    monkeypatch.setattr(registry, "OK", 199)
    outcome = explore(WRITES.machine(max_revision=3), WRITES.properties)
    assert outcome.counterexample is not None
    assert outcome.counterexample.prop.name == "answer_codes_follow_conventions"


def test_a_link_from_the_store_to_a_client_breaks_the_structure():
    props = {p.name: p for p in request_properties.PROPERTIES}
    check = props["store_linked_only_to_apiserver"]
    m = WRITES.machine()
    assert check.holds_in(m, next(iter(m.init_states())))
    leak = WRITES.machine("store_linked_to_client")
    assert ("store", "clients") in leak.talks_to()
    assert not check.holds_in(leak, next(iter(leak.init_states())))


def test_a_list_must_answer_the_stores_snapshot_at_the_revision_it_reports():
    props = {p.name: p for p in request_properties.PROPERTIES}
    check = props["quorum_read_observes_acknowledged_writes"]
    for mutant, fine in ((None, True), ("cached_items_store_revision", False)):
        m = READS.machine(mutant)
        before = run(m, call(0, 0, "list", "unset", 0), state=roundtrip(m, 0, 0, "create", 0))
        step = serve(m, before, 0)
        after = run(m, step, state=before)
        # the mutant's answer claims revision 2 (the store's) with the empty cache's items
        assert answer(m, after, 0)[2] == 2
        assert check.holds_on(m, before, step, after) is fine


def test_the_journal_records_each_write_as_its_answer_states_it():
    m = WATCH.machine(max_revision=4)
    s = roundtrip(m, 0, 0, "create", 0)
    s = roundtrip(m, 0, 0, "update", 0, 2, state=s)
    s = roundtrip(m, 0, 0, "delete", 0, state=s)
    s = roundtrip(m, 0, 0, "delete", 0, state=s)
    key = m.keys[0]
    assert s[1][2] == ((2, key, registry.ADDED), (3, key, registry.MODIFIED),
                       (4, key, registry.DELETED))  # the 404 wrote nothing
    # and it agrees with the store's own history, read independently
    assert s[1][2] == tuple(e for rev in (2, 3, 4) for e in registry.events_at(s[2], rev))


@pytest.mark.parametrize("mutant, clause", [
    ("deliver_newest_first", "ordered"), ("resume_redelivers_last", "unique"),
    ("resume_from_cache_revision", "reliable"),
    # past the bound's last write, the skip shows as a bookmark at the
    # window's start claiming the skipped events were sent
    ("watch_skips_compacted", "bookmarkable"),
    ("bookmark_ahead_of_events", "bookmarkable")])
def test_each_watch_guarantee_has_a_mutant_that_breaks_it(mutant, clause):
    machine = WATCH.machine(mutant)
    cex = explore(machine, targeted(WATCH, mutant)).counterexample
    assert cex is not None
    assert request_properties.watch_violation(machine, cex.final) == clause


def test_bad_bounds_and_unknown_mutants_are_refused():
    with pytest.raises(ValueError):
        WRITES.machine(objects=9)
    with pytest.raises(ValueError):
        READS.machine(list_modes=("sometimes",))
    with pytest.raises(UnknownMutant):
        WRITES.machine("watch_skips_compacted")  # another model's bug


# -- lifecycle and admission scenarios -----------------------------------------------------


def test_the_deletion_properties_find_dependents_in_the_store_not_in_the_machines_keys():
    """The mutation run's gap (docs/mutation/apiserver.md): with a machine
    whose table of dependent keys names no object, the garbage collector
    finds no dependent and releases a foreground owner at once. The
    properties read every object the store holds, so they still see the two
    dependents blocking it."""
    from kubemc.properties import apiserver_lifecycle as props

    m = LIFECYCLE.machine()
    m.keys = (m.keys[0], "/registry/pods/default/none1", "/registry/pods/default/none2")
    start = next(iter(m.init_states()))
    before = run(m, Step("Delete", (0, registry.FOREGROUND)), state=start)
    step = Step("GcReleaseForeground")
    after = run(m, step, state=before)
    assert not props.foreground_waits_for_dependents(m, before, step, after)
    assert [k for k, _ in props._dependents(m, after)] == list(LIFECYCLE.machine().keys[1:])


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


def test_a_policy_change_may_replace_foreground_but_no_controller_may_clear_it():
    from kubemc.properties import apiserver_lifecycle as lp
    m = LIFECYCLE.machine()
    protected = list(m.init_states())[2]  # the owner carries example.com/protect
    s = run(m, Step("Delete", (0, registry.FOREGROUND)), state=protected)
    switch = Step("Delete", (0, registry.ORPHAN))
    assert lp.foreground_waits_for_dependents(m, s, switch, run(m, switch, state=s))
    bad = LIFECYCLE.machine("controller_clears_foreground")
    clear = Step("RemoveFinalizer", (0,))
    after = run(bad, clear, state=s)
    assert registry.current(after, m.keys[0])[0] is None  # the owner went first
    assert not lp.foreground_waits_for_dependents(bad, s, clear, after)


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


#: bounds at which ``canonical``'s merge is compared with no merge at all:
#: the models' own, one revision smaller for the two whose merged space is
#: largest without it (each item a few seconds)
CANONICAL_BOUNDS = {"apiserver-writes": {"max_revision": 3}, "apiserver-reads": {"max_revision": 3},
                    "apiserver-watch": {}}
REQUEST_PATH_CASES = [(model, mutant) for model in (WRITES, READS, WATCH)
                      for mutant in (None, *sorted(model.mutants))]


@pytest.mark.parametrize("model, mutant", REQUEST_PATH_CASES,
                         ids=lambda x: getattr(x, "name", x) or "correct")
def test_merging_writes_that_wait_forever_changes_no_verdict(model, mutant):
    """The request path's ``canonical`` merges states that differ only in
    which write waits forever past max_revision; the audit (A09) showed a
    replica reading its cache for a write could make that merge hide a
    violation (``update_checked_against_cache`` at apiserver-reads with
    revision <= 3: the old merge, which asked an initial apiserver part,
    reported it holding in 2,849 states; without the merge it is violated in
    575). Exploring without the merge (the identity in its place) must
    give the same verdict — the same property violated, or none — for the
    correct model and every seeded bug, and the merge must not add states."""
    bounds = CANONICAL_BOUNDS[model.name]
    verdicts, counts = [], []
    for merge in (True, False):
        machine = model.machine(mutant, **bounds) if mutant else model.machine(**bounds)
        if not merge:
            machine.canonical = lambda state: state  # every state its own class
        outcome = explore(machine, model.properties)
        assert outcome.complete or outcome.counterexample is not None
        cex = outcome.counterexample
        verdicts.append(cex.prop.name if cex is not None else None)
        counts.append(outcome.stats.states)
    assert verdicts[0] == verdicts[1]
    if verdicts[0] is None:
        assert counts[0] <= counts[1]

"""The apiserver's watch and the informer's server are one list/watch
contract: each machine, seen through an abstraction, refines
``model.listwatch`` in both directions (``checker.refinement``).

* apiserver (``ApiserverWatch`` at its catalog bounds: 1 writer, 2 objects,
  2 replicas, store revision <= 3, 1 compaction, one watch the server
  closes, the watcher resuming, hitting 410 Gone and re-listing): the
  request path runs on the kernel's channels, so the contract's watcher
  position is the server's end of the stream — the revision up to which the
  serving replica has *sent* — and its moves are the replica's steps: a
  stream step sending a revision's events or 410, a bookmark, the close of
  the stream, and the receipt of a watch request (a resume at the position
  the watcher asked, or a re-list at the cache's revision). The history a
  replica serves is its watch cache's — the store's records (kept as a
  ghost, since the store compacts records the cache still serves) after the
  cache's window start, up to the cache's revision — and its kept history
  starts right after the window start, so the contract's 410 is due exactly
  when the position lies below it. Event types are judged from the store's
  record versions, not from the types the caches attached.
* informer (``Informer`` at small bounds): its server's history is the MVCC
  store the machine holds; what it delivered is read from the reflector's
  resourceVersion and the delta the DeltaFIFO gained.

Direction one: every watch message a reachable state sends (events,
bookmark, 410), every resume and every re-list is one the contract allows
at the watcher's position. Direction two: wherever the contract has a next
message for the watcher (410 when gone, else the next revision's events,
else a bookmark at the newest revision), the machine can send it, possibly
after internal steps the watcher does not see.

Each seeded difference — the machines' own mutants where they exist, else a
small wrong implementation written here around the correct machine — is
reported at the step (or the state) where it parts from the contract.
"""

from __future__ import annotations

import pytest

from kubemc.checker import refinement
from kubemc.model import listwatch as lw
from kubemc.model.apiserver import registry
from kubemc.model.apiserver.requests import CLOSED as STREAM_CLOSED
from kubemc.model.apiserver.requests import (BOOKMARK, EVENTS, GONE, GONE_MSG, IDLE, LISTED, RESUME,
                                             SERVE, WATCHING, ApiserverReads, ApiserverWatch,
                                             answers_channel, watch_channel)
from kubemc.model.informer.machine import CLOSED, LIST, WATCH, Informer

# -- the apiserver -----------------------------------------------------------


def _remember(full: tuple, store) -> tuple:
    """The ghost: every record the store ever held, per key (records are
    never rewritten, only compacted away, so appending the newer ones
    suffices)."""
    out = dict(full)
    for key, hist in store[2]:
        old = out.get(key, ())
        last = old[-1][0] if old else 0
        new = tuple(r for r in hist if r[0] > last)
        if new:
            out[key] = old + new
    return tuple(sorted(out.items()))


def _remember_step(full, before, step, after):
    return full if after[2] == before[2] else _remember(full, after[2])


APISERVER_GHOST = (lambda s: _remember((), s[2]), _remember_step)


def served_history(node, r: int):
    """The history replica ``r`` serves watches from, as the contract reads
    it: ``(cache revision, window start + 1, the store's records up to the
    cache's revision)``."""
    state, full = node
    rev, window_start = state[1][0][r][0], state[1][0][r][1]
    return (rev, window_start + 1,
            tuple((k, tuple(x for x in h if x[0] <= rev)) for k, h in full))


def _sent(m, before, after) -> list:
    """``(replica, message)`` for every message a step put on a watch stream
    (one step either sends on a channel, at its tail, or takes its head)."""
    out = []
    for r in range(m.replicas):
        was, now = _stream(m, before, r), _stream(m, after, r)
        if len(now) > len(was):
            out += [(r, msg) for msg in now[len(was):]]
    return out


def _stream(m, state, r) -> tuple:
    return state[-1][0][m.channel_index[watch_channel(r)]]


def _with_stream(m, state, r, content):
    contents, left, crashes = state[-1]
    k = m.channel_index[watch_channel(r)]
    return state[:-1] + ((contents[:k] + (content,) + contents[k + 1:], left, crashes),)


class ApiserverView:
    """The abstraction of the apiserver's request path onto the contract:
    the server's end of the watch of object 0 — which replica serves it and
    up to which revision it has sent — and what each step sends on it."""

    def __init__(self, m):
        self.m = m
        self.keys = (m.watched,)

    def label(self, node, step, after):
        s, t = node[0], after[0]
        was, now = s[1][1], t[1][1]
        if step.name == "apiserver.Deliver":  # a watch request opens a stream
            return ("resume" if step.params[1][0] == RESUME else "list",) + now
        sent = _sent(self.m, s, t)
        if not sent and was == now:
            return None  # the server's end of the watch saw nothing
        if len(sent) == 1:
            r, msg = sent[0]
            if msg[0] == STREAM_CLOSED and now[0] < 0:
                return ("drop",)
            if msg[0] == GONE_MSG and now[0] < 0:
                return ("gone", r)
            if msg[0] == BOOKMARK:
                return ("bookmark", r, msg[1], now[1])
            if msg[0] == EVENTS:
                return ("events", r, msg[1], now[1])
        return ("rewritten", step.name, was, now, tuple(sent))

    def _open(self, node):
        serving, pos = node[0][1][1]
        h = served_history(node, serving)
        return serving, pos, h, lw.gone(h, pos), lw.next_batch(h, self.keys, pos)

    def _settled(self, node):
        """The watcher's status and position once it has taken what is in
        flight to it on the stream it asked for (FIFO: everything sent
        before the stream's end arrives before it)."""
        state = node[0]
        _, status, _, pos, _ = state[0][1]
        for msg in _stream(self.m, state, state[0][1][0]):
            if msg[0] == EVENTS:
                pos = msg[1][-1][0]
            elif msg[0] == BOOKMARK:
                pos = msg[1]
            elif msg[0] == LISTED:
                status, pos = WATCHING, msg[1]
            elif msg[0] in (GONE_MSG, STREAM_CLOSED):
                status = GONE if msg[0] == GONE_MSG else IDLE
        return status, pos

    def allowed(self, node):
        serving = node[0][1][1][0]
        if serving < 0:
            status, pos = self._settled(node)
            if status in (IDLE, WATCHING):  # a closed watch resumes where the watcher is
                return {("resume", r, pos) for r in range(self.m.replicas)}
            # after 410: list again; the new watch starts at the list's version
            return {("list", r, served_history(node, r)[0]) for r in range(self.m.replicas)}
        r, pos, h, gone, batch = self._open(node)
        if gone:
            return {("gone", r), ("drop",)}
        out = {("drop",)} | {("bookmark", r, b, b) for b in lw.allowed_bookmarks(h, self.keys, pos)}
        if batch:
            out.add(("events", r, tuple(e[:3] for e in batch), batch[0][0]))
        return out

    def required(self, node):
        if node[0][1][1][0] < 0:
            return [self.allowed(node)]  # resume / re-list: some replica takes it
        r, pos, h, gone, batch = self._open(node)
        if gone:
            return [{("gone", r)}]
        if batch:
            return [{("events", r, tuple(e[:3] for e in batch), batch[0][0])}]
        b = lw.bookmark_revision(h, self.keys, pos)
        return [{("bookmark", r, b, b)}] if b is not None else []


#: apiserver-watch's states as the refinement search walks them (no canonical)
STATES_WITHOUT_CANONICAL = 60_632


def check_apiserver(machine, view=None, max_states=400_000):
    view = view or ApiserverView(machine)
    return refinement.check(machine, view.label, view.allowed, view.required,
                            ghost=APISERVER_GHOST, max_states=max_states)


class Rewritten:
    """A hand-written wrong apiserver: the correct machine's transitions, with
    those ``rewrite(before, step, after)`` picks replaced (``None``: the
    transition is dropped)."""

    def __init__(self, inner, rewrite):
        self.inner, self.rewrite = inner, rewrite

    def init_states(self):
        return self.inner.init_states()

    def successors(self, state):
        for step, nxt in self.inner.successors(state):
            nxt = self.rewrite(self.inner, state, step, nxt)
            if nxt is not None:
                yield step, nxt

    def within_bounds(self, state):
        return self.inner.within_bounds(state)


def _events_sent(m, state, step, nxt):
    """The replica and the events message a Stream step sent, or None."""
    if step.name != "apiserver.Stream":
        return None
    sent = _sent(m, state, nxt)
    return sent[0] if len(sent) == 1 and sent[0][1][0] == EVENTS else None


def skips_an_event(m, state, step, nxt):
    """The stream sends the revision after the next one, skipping the next."""
    if _events_sent(m, state, step, nxt) is None:
        return nxt
    later = m.apply(nxt, step)
    more = later is not None and _events_sent(m, nxt, step, later)
    if not more:
        return nxt
    r = step.params[0]
    return _with_stream(m, later, r, _stream(m, state, r) + (more[1],))


def modified_for_version_1(m, state, step, nxt):
    """A creation is sent as MODIFIED."""
    got = _events_sent(m, state, step, nxt)
    if got is None or not any(e[2] == registry.ADDED for e in got[1][1]):
        return nxt
    r, (kind, batch) = got
    fixed = tuple((e[0], e[1], registry.MODIFIED) if e[2] == registry.ADDED else e for e in batch)
    return _with_stream(m, nxt, r, _stream(m, state, r) + ((kind, fixed),))


_SKIPPING = ApiserverWatch(objects=1, mutant="watch_skips_compacted")


def gone_one_revision_late(m, state, step, nxt):
    """410 only when the position is two or more below the window's start: at
    one below, the replica carries on from its window as if nothing were
    missing."""
    serving, pos = state[1][1]
    if step.name == "apiserver.Stream" and nxt[1][1][0] < 0 \
            and pos == state[1][0][serving][1] - 1:
        return _SKIPPING.apply(state, step)
    return nxt


class ListView:
    """The apiserver's list answers seen through the contract: a list served
    at revision R (from the store or a replica's cache) answers the live
    objects of the history at R, each at its resourceVersion. Which R a list
    may use (unset: not older than the last acknowledged write; "N": not
    older than N) is the apiserver's own read-consistency property, not part
    of this contract."""

    def __init__(self, m):
        self.m, self.keys = m, m.keys

    def label(self, node, step, after):
        if step.name != SERVE or step.params[1][2][0] != "list":
            return None
        c = step.params[1][0]
        k = self.m.channel_index[answers_channel(c)]
        was, now = node[0][-1][0][k], after[0][-1][0][k]
        if len(now) != len(was) + 1:
            return None
        answer = now[-1][1]
        return ("list", answer[1], answer[3])

    def allowed(self, node):
        state, full = node
        out = set()
        for r in range(1, state[2][0] + 1):
            h = (r, 0, tuple((k, tuple(x for x in hist if x[0] <= r)) for k, hist in full))
            out.add(("list", r, tuple((k, rv) for k, rv, _ in lw.objects(h, self.keys))))
        return out


def check_lists(machine):
    view = ListView(machine)
    return refinement.check(machine, view.label, view.allowed, ghost=APISERVER_GHOST)


# -- the informer ------------------------------------------------------------

_DELTA_TO_EVENT = {"Added": lw.ADDED, "Updated": lw.MODIFIED, "Deleted": lw.DELETED}
INFORMER_BOUNDS = dict(keys=2, writers=1, writes=3, compactions=1, disconnects=1, resyncs=0,
                       workers=1, other=True)
#: the seeded differences need no more than two writes (a creation and a
#: change, then a compaction past them): 1,949 states instead of 22,097
SEEDED_INFORMER_BOUNDS = dict(INFORMER_BOUNDS, writes=2)


def _new_deltas(fifo, fifo2) -> tuple:
    """``(key, delta)`` for every delta a step added to the DeltaFIFO (a
    deletion that replaced a queued one counts as added)."""
    before = dict(fifo)
    out = []
    for key, ds in fifo2:
        old = before.get(key, ())
        if ds == old:
            continue
        new = ds[len(old):] if ds[:len(old)] == old else ds[-1:]
        out += [(key, d) for d in new]
    return tuple(out)


class InformerView:
    """The abstraction of the informer machine onto the contract: its
    server's history is the store; its watcher is the reflector."""

    def __init__(self, m):
        self.keys = m.keys

    def label(self, s, step, t):
        (mode, rv), (mode2, rv2) = s[2], t[2]
        if (mode, rv) == (mode2, rv2):
            return None  # the reflector saw nothing
        new = _new_deltas(s[3], t[3])
        if mode == WATCH and mode2 == LIST:
            return ("gone",)
        if mode == WATCH and mode2 == CLOSED:
            return ("drop",)
        if mode == CLOSED and mode2 == WATCH:
            return ("resume", rv2)
        if mode == LIST and mode2 == WATCH:
            return ("list", rv2, tuple(sorted((k, d[1], d[2]) for k, d in new
                                              if d[0] == "Replaced")))
        if mode == mode2 == WATCH and step.name == "Bookmark" and not new:
            return ("bookmark", rv2)
        if mode == mode2 == WATCH and step.name == "Deliver":
            if not new:
                return ("ignored", rv2)  # the DeltaFIFO dropped it
            if len(new) == 1:
                key, d = new[0]
                return ("event", d[1], key, _DELTA_TO_EVENT.get(d[0], d[0]), d[2], rv2)
        return ("other", step.name, (mode, rv), (mode2, rv2), new)

    def _event_labels(self, e):
        out = {("event", e[0], e[1], e[2], e[3], e[0])}
        if e[2] == lw.DELETED:
            # client-go's DeltaFIFO ignores a deletion of a key it never knew
            out.add(("ignored", e[0]))
        return out

    def allowed(self, s):
        store, (mode, rv) = s[0], s[2]
        if mode == LIST:
            return {("list", store[0], tuple(sorted(lw.objects(store, self.keys))))}
        if mode == CLOSED:
            return {("resume", rv)}
        if lw.gone(store, rv):
            return {("gone",), ("drop",)}
        out = {("drop",)} | {("bookmark", b) for b in lw.allowed_bookmarks(store, self.keys, rv)}
        e = lw.next_event(store, self.keys, rv)
        if e is not None:
            out |= self._event_labels(e)
        return out

    def required(self, s):
        store, (mode, rv) = s[0], s[2]
        if mode != WATCH:
            return [self.allowed(s)]
        if lw.gone(store, rv):
            return [{("gone",)}]
        e = lw.next_event(store, self.keys, rv)
        if e is not None:
            return [self._event_labels(e)]
        b = lw.bookmark_revision(store, self.keys, rv)
        return [{("bookmark", b)}] if b is not None else []


def check_informer(machine, max_states=400_000):
    view = InformerView(machine)
    return refinement.check(machine, view.label, view.allowed, view.required,
                            max_states=max_states)


class InformerRewritten(Rewritten):
    pass


def informer_skips_an_event(m, state, step, nxt):
    """The server sends the event after the next one (and not the next)."""
    if step.name != "Deliver":
        return nxt
    later = m.apply(state[:2] + (nxt[2],) + state[3:], step)
    return later if later is not None else nxt


def informer_gone_late(m, state, step, nxt):
    """410 only when the position is two or more below the compact revision."""
    store, (_, rv) = state[0], state[2]
    if step.name == "Gone" and rv + 2 == store[1]:
        return None
    return nxt


# -- the tests ---------------------------------------------------------------


def _collecting(view, kinds: set):
    """``view.label``, noting the kind of every label it gives."""
    def label(node, step, after):
        seen = view.label(node, step, after)
        if seen is not None:
            kinds.add(seen[0])
        return seen
    return label


def test_apiserver_watch_refines_the_contract():
    """Both directions at the catalog's apiserver-watch bounds. Not vacuous:
    every kind of move the contract has was taken (events, bookmarks, 410,
    re-lists, drops and resumes)."""
    m = ApiserverWatch()
    view, kinds = ApiserverView(m), set()
    report = refinement.check(m, _collecting(view, kinds), view.allowed, view.required,
                              ghost=APISERVER_GHOST)
    assert report.mismatch is None, report.mismatch.describe()
    assert report.complete and report.ok
    # the catalog's apiserver-watch space before ``canonical`` merges the
    # states that differ only in which write waits forever past the bound
    # (the refinement search takes every state as it is): the ghost adds none
    assert report.states == STATES_WITHOUT_CANONICAL
    assert {"events", "bookmark", "gone", "list", "resume", "drop"} <= kinds


def test_apiserver_lists_answer_the_contracts_objects():
    """Lists at resourceVersion unset (the store), "0" and "N" (lagging
    watch caches) on 2 replicas, at apiserver-reads' bounds but revision <= 3
    (2,915 states): every answer is the contract's list at the revision it
    reports. A list labelled with the store's revision but holding a lagging
    cache's items is reported at its Serve step."""
    report = check_lists(ApiserverReads(max_revision=3))
    assert report.mismatch is None, report.mismatch.describe()
    assert report.ok and report.states > 1_000
    mm = check_lists(ApiserverReads(max_revision=3, mutant="cached_items_store_revision")).mismatch
    assert mm is not None and mm.kind == refinement.UNMATCHED_STEP
    assert mm.step.name == "apiserver->store.Serve" and mm.label[0] == "list"
    assert mm.label not in mm.context and any(c[1] == mm.label[1] for c in mm.context)


def test_informer_refines_the_contract():
    m = Informer(**INFORMER_BOUNDS)
    view, kinds = InformerView(m), set()
    report = refinement.check(m, _collecting(view, kinds), view.allowed, view.required)
    assert report.mismatch is None, report.mismatch.describe()
    assert report.ok and report.states > 1_000
    assert {"event", "bookmark", "gone", "list", "resume", "drop"} <= kinds


@pytest.mark.parametrize("mutant, kind, step", [
    ("bookmark_ahead_of_events", refinement.UNMATCHED_STEP, "apiserver.Bookmark"),
    ("watch_skips_compacted", refinement.UNMATCHED_STEP, "apiserver.Stream"),
    ("deliver_newest_first", refinement.UNMATCHED_STEP, "apiserver.Stream"),
    ("resume_redelivers_last", refinement.UNMATCHED_STEP, "apiserver.Deliver"),
    ("resume_from_cache_revision", refinement.UNMATCHED_STEP, "apiserver.Deliver"),
    ("bookmark_from_any_replica", refinement.UNMATCHED_STEP, "apiserver.Bookmark"),
    ("silent_watch_failover", refinement.UNMATCHED_STEP, "apiserver.CloseWatch"),
    ("silent_close", refinement.UNMATCHED_STEP, "apiserver.CloseWatch"),
    ("relist_at_first_revision", refinement.UNMATCHED_STEP, "apiserver.Deliver"),
])
def test_apiserver_mutants_are_reported(mutant, kind, step):
    report = check_apiserver(ApiserverWatch(mutant=mutant))
    assert report.mismatch is not None, mutant
    assert report.mismatch.kind == kind
    assert report.mismatch.step.name == step, report.mismatch.describe()
    assert step in report.mismatch.describe()


@pytest.mark.parametrize("rewrite, label_kind", [
    (skips_an_event, "events"),
    (modified_for_version_1, "events"),
    # past the last write the skip is a bookmark at the window's start
    (gone_one_revision_late, "bookmark"),
])
def test_hand_written_apiserver_differences_are_reported(rewrite, label_kind):
    m = ApiserverWatch(objects=1)  # each needs object 0 only
    report = check_apiserver(Rewritten(m, rewrite), view=ApiserverView(m))
    mm = report.mismatch
    assert mm is not None and mm.kind == refinement.UNMATCHED_STEP
    assert mm.step.name == "apiserver.Stream" and mm.label[0] == label_kind
    assert mm.label not in mm.context
    if rewrite is modified_for_version_1:
        assert any(e[2] == registry.MODIFIED for e in mm.label[2])
        assert any(c[0] == "events" and any(e[2] == registry.ADDED for e in c[2])
                   for c in mm.context)
    if rewrite is gone_one_revision_late:
        assert ("gone", mm.step.params[0]) in mm.context


def test_a_missing_move_is_reported():
    """Direction two on its own: a replica that never answers 410 (the Gone
    transition dropped, nothing sent instead) sends nothing wrong, so only
    the converse sees it — at the first state where 410 is due."""
    m = ApiserverWatch(replicas=1)

    def never_gone(inner, state, step, nxt):
        gone = any(msg[0] == GONE_MSG for _, msg in _sent(inner, state, nxt))
        return None if step.name == "apiserver.Stream" and gone else nxt

    report = check_apiserver(Rewritten(m, never_gone), view=ApiserverView(m))
    mm = report.mismatch
    assert mm is not None and mm.kind == refinement.MISSING_MOVE, mm
    assert mm.step is None and all(lab[0] == "gone" for lab in mm.label)
    assert "requires one of: ('gone'" in mm.describe()


@pytest.mark.parametrize("mutant, kind, step, label_kind", [
    ("bookmark_skips_events", refinement.UNMATCHED_STEP, "Bookmark", "bookmark"),
    ("watch_resumes_after_gone", refinement.UNMATCHED_STEP, "Gone", "other"),
    ("fifo_drops_update", refinement.UNMATCHED_STEP, "Deliver", "ignored"),
    ("watch_not_reopened", refinement.MISSING_MOVE, None, "resume"),
    ("watch_modified_as_added", refinement.UNMATCHED_STEP, "Deliver", "event"),
    ("gone_at_compact_revision", refinement.UNMATCHED_STEP, "Gone", "gone"),
])
def test_informer_mutants_are_reported(mutant, kind, step, label_kind):
    report = check_informer(Informer(**SEEDED_INFORMER_BOUNDS, mutant=mutant))
    mm = report.mismatch
    assert mm is not None and mm.kind == kind, mutant
    if step is None:
        assert mm.step is None and {lab[0] for lab in mm.label} == {label_kind}
    else:
        assert mm.step.name == step and mm.label[0] == label_kind, mm.describe()
    if mutant == "watch_modified_as_added":  # a change received as a creation
        assert mm.label[3] == lw.ADDED and ("event",) + mm.label[1:3] + (lw.MODIFIED,) \
            + mm.label[4:] in mm.context


@pytest.mark.parametrize("rewrite, kind", [
    (informer_skips_an_event, refinement.UNMATCHED_STEP),
    (informer_gone_late, refinement.MISSING_MOVE),
])
def test_hand_written_informer_differences_are_reported(rewrite, kind):
    m = Informer(**SEEDED_INFORMER_BOUNDS)
    view = InformerView(m)
    report = refinement.check(InformerRewritten(m, rewrite), view.label, view.allowed,
                              view.required)
    mm = report.mismatch
    assert mm is not None and mm.kind == kind, mm
    if kind == refinement.UNMATCHED_STEP:
        assert mm.step.name == "Deliver" and mm.label[0] == "event"
        assert not any(c[0] == "event" and c[1] == mm.label[1] for c in mm.context)
    else:
        assert {lab[0] for lab in mm.label} == {"gone"}

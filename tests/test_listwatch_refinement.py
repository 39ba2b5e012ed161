"""The apiserver's watch and the informer's server are one list/watch
contract: each machine, seen through an abstraction, refines
``model.listwatch`` in both directions (``checker.refinement``).

* apiserver (``ApiserverWatch`` at its catalog bounds: 1 writer, 2 objects,
  2 replicas, store revision <= 3, 1 compaction, the watcher of object 0
  dropping, resuming, hitting 410 Gone and re-listing): the history a
  replica serves is its watch cache's — the store's records (kept as a
  ghost, since the store compacts records the cache still serves) after the
  cache's window start, up to the cache's revision — and its kept history
  starts right after the window start, so the contract's 410 is due exactly
  when the watcher's position lies below it. Event types are judged from the
  store's record versions, not from the types the caches attached.
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
from kubemc.model.apiserver.requests import (ANSWERED, GONE, IDLE, PENDING, WATCHING,
                                             ApiserverReads, ApiserverWatch)
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


class ApiserverView:
    """The abstraction of the apiserver's request path onto the contract:
    what the watcher of object 0 was sent, and from which replica."""

    def __init__(self, m):
        self.m = m
        self.keys = (m.watched,)

    def label(self, node, step, after):
        w, v = node[0][0][1], after[0][0][1]
        if w == v:
            return None  # the watcher saw nothing: writes, catch-ups, compaction
        sender = step.params[0] if step.params else None
        if w[1] == WATCHING and v[1] == GONE:
            return ("gone", sender)
        if w[1] == WATCHING and v[1] == IDLE:
            return ("drop",)
        if w[1] == IDLE and v[1] == WATCHING:
            return ("resume", v[0], v[2], v[3], v[4] == w[4])
        if w[1] == GONE and v[1] == WATCHING:
            return ("list", v[0], v[2], v[3], v[4])
        if w[1] == v[1] == WATCHING and v[4][:len(w[4])] == w[4]:
            sent = v[4][len(w[4]):]
            if len(sent) == 1 and sent[0][2] == registry.BOOKMARK:
                return ("bookmark", sender, sent[0][0], v[3])
            return ("events", sender, sent, v[3])
        return ("rewritten", step.name, w, v)

    def _watching(self, node):
        w = node[0][0][1]
        h = served_history(node, w[0])
        return w, h, lw.gone(h, w[3]), lw.next_batch(h, self.keys, w[3])

    def allowed(self, node):
        w = node[0][0][1]
        if w[1] == IDLE:  # a dropped watch resumes at its position, anywhere
            return {("resume", r, w[2], w[3], True) for r in range(self.m.replicas)}
        if w[1] == GONE:  # list again; the new watch starts at the list's version
            return {("list", r, h[0], h[0], ())
                    for r in range(self.m.replicas) for h in [served_history(node, r)]}
        w, h, gone, batch = self._watching(node)
        r, pos = w[0], w[3]
        if gone:
            return {("gone", r), ("drop",)}
        out = {("drop",)} | {("bookmark", r, b, b) for b in lw.allowed_bookmarks(h, self.keys, pos)}
        if batch:
            out.add(("events", r, tuple(e[:3] for e in batch), batch[0][0]))
        return out

    def required(self, node):
        w = node[0][0][1]
        if w[1] != WATCHING:
            return [self.allowed(node)]  # resume / re-list: some replica takes it
        w, h, gone, batch = self._watching(node)
        r, pos = w[0], w[3]
        if gone:
            return [{("gone", r)}]
        if batch:
            return [{("events", r, tuple(e[:3] for e in batch), batch[0][0])}]
        b = lw.bookmark_revision(h, self.keys, pos)
        return [{("bookmark", r, b, b)}] if b is not None else []


def check_apiserver(machine, view=None, max_states=400_000):
    view = view or ApiserverView(machine)
    return refinement.check(machine, view.label, view.allowed, view.required,
                            ghost=APISERVER_GHOST, max_states=max_states)


def _with_watcher(state, watcher):
    return ((state[0][0], watcher),) + state[1:]


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


def _sent(before, after):
    w, v = before[0][1], after[0][1]
    if w[1] != WATCHING or v[1] != WATCHING or v[4][:len(w[4])] != w[4]:
        return ()
    return v[4][len(w[4]):]


def skips_an_event(m, state, step, nxt):
    """The watch sends the revision after the next one, skipping the next."""
    sent = _sent(state, nxt)
    if not step.name.endswith(".Deliver") or not sent:
        return nxt
    for s2, later in m.successors(nxt):
        if s2 == step and _sent(nxt, later):
            return _with_watcher(later, later[0][1][:4] + (state[0][1][4] + _sent(nxt, later),))
    return nxt


def modified_for_version_1(m, state, step, nxt):
    """A creation is sent as MODIFIED."""
    sent = _sent(state, nxt)
    if not any(e[2] == registry.ADDED for e in sent):
        return nxt
    fixed = tuple((e[0], e[1], registry.MODIFIED) if e[2] == registry.ADDED else e for e in sent)
    return _with_watcher(nxt, nxt[0][1][:4] + (state[0][1][4] + fixed,))


_SKIPPING = ApiserverWatch(objects=1, mutant="watch_skips_compacted")


def gone_one_revision_late(m, state, step, nxt):
    """410 only when the position is two or more below the window's start: at
    one below, the replica carries on from its window as if nothing were
    missing."""
    w = state[0][1]
    if nxt[0][1][1] == GONE and w[3] == state[1][0][w[0]][1] - 1:
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
        self.keys = m.keys

    def label(self, node, step, after):
        if not step.name.endswith(".Serve"):
            return None
        (c,) = step.params
        slot, done = node[0][1][1][c], after[0][1][1][c]
        if slot[0] != PENDING or slot[2][0] != "list" or done[0] != ANSWERED:
            return None
        return ("list", done[4][1], done[4][3])

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
    assert report.states == 26_168  # the catalog's apiserver-watch space: the ghost adds none
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
    ("bookmark_ahead_of_events", refinement.UNMATCHED_STEP, "apiserver->clients.Bookmark"),
    ("watch_skips_compacted", refinement.UNMATCHED_STEP, "apiserver->clients.Deliver"),
    ("deliver_newest_first", refinement.UNMATCHED_STEP, "apiserver->clients.Deliver"),
    ("resume_redelivers_last", refinement.UNMATCHED_STEP, "clients->apiserver.Watch"),
    ("resume_from_cache_revision", refinement.UNMATCHED_STEP, "clients->apiserver.Watch"),
    ("bookmark_from_any_replica", refinement.UNMATCHED_STEP, "apiserver->clients.Bookmark"),
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
    (gone_one_revision_late, "events"),
])
def test_hand_written_apiserver_differences_are_reported(rewrite, label_kind):
    m = ApiserverWatch(objects=1)  # each needs object 0 only
    report = check_apiserver(Rewritten(m, rewrite), view=ApiserverView(m))
    mm = report.mismatch
    assert mm is not None and mm.kind == refinement.UNMATCHED_STEP
    assert mm.step.name == "apiserver->clients.Deliver" and mm.label[0] == label_kind
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
        return None if nxt[0][1][1] == GONE and state[0][1][1] == WATCHING else nxt

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

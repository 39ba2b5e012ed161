"""The informer machine: writers change objects on the server while one
informer keeps a cache of them and feeds a work queue drained by workers.

Pieces, each in its own module:

* ``server`` — the list/watch contract over the etcd MVCC store;
* the **reflector** (here): list, then watch from the list's
  resourceVersion; when the connection drops, watch again from the last
  resourceVersion it saw; on 410 Gone, list again (client-go's
  ``Reflector.ListAndWatch``; Kubernetes API concepts, "410 Gone");
* ``deltafifo`` — the queue of per-key changes and the cache it feeds;
* ``workqueue`` — the controller's deduplicating queue and its workers.

The cache lags the server, and that lag is state: the reflector's
resourceVersion ``rv`` says how far the watch has read, every store record
after ``rv`` is an event still in flight, the DeltaFIFO holds events
received but not yet applied. Every interleaving of writes, deliveries,
pops, relists, compactions and disconnects is a path the engines explore.

State (plain tuples)::

    (store, budget, reflector, fifo, cache, wq)
    store     = a model.store.mvcc state
    budget    = (writes, compactions, disconnects, resyncs) still allowed
    reflector = (mode, rv)        mode: LIST (must list), WATCH, CLOSED
    fifo, cache                   see model.informer.deltafifo
    wq                            see model.informer.workqueue

Actions (parameters as they appear in traces):

* environment — ``Create(client, key)``, ``Update(client, key)``,
  ``Delete(client, key)`` on the watched resource (guarded: create needs the
  object absent, update and delete need it present; the value written is the
  client's name, so traces show who wrote what), and
  ``WriteOther(client)``: a write to another resource, which advances the
  revision without an event for this watch;
* system — ``Compact(rev)`` (the apiserver compacts periodically), ``List``,
  ``Watch`` (re-open a dropped watch from ``rv``), ``Gone`` (the server's
  410), ``Deliver`` (the next event, in revision order), ``Bookmark``,
  ``Pop`` (the informer applies a key's deltas to the cache and its event
  handler adds the key to the work queue), ``Resync``, ``Get(worker)``,
  ``Done(worker)``;
* fault — ``Disconnect``: the watch connection drops.

Bounds: ``keys`` watched objects, ``writers`` client actors, ``writes`` (in
total), ``compactions``, ``disconnects``, ``resyncs``, ``workers``, and
``other`` (whether writes to another resource exist). Budgets make the
space finite; ``Compact`` and ``Disconnect`` are ``rare`` so random runs
take them only a few times.
"""

from __future__ import annotations

from kubemc.model.informer import deltafifo as fifo_ops
from kubemc.model.informer import server
from kubemc.model.informer import workqueue as wq_ops
from kubemc.model.informer.deltafifo import ADDED, DELETED, UPDATED
from kubemc.model.kernel import ENVIRONMENT, FAULT, SYSTEM, Machine, Mutant, Step, action
from kubemc.model.store.mvcc import (
    INITIAL, Compact, Delete, Put, apply_valid, describe, history, record_at,
)

LIST, WATCH, CLOSED = "list", "watch", "closed"
KEY_NAMES = tuple(f"pods/{c}" for c in "abcdef")
OTHER_KEY = "configmaps/x"
CLIENT_NAMES = tuple(f"c{i}" for i in range(8))

B_WRITES, B_COMPACTIONS, B_DISCONNECTS, B_RESYNCS = range(4)

_LIST, _WATCH, _GONE, _DELIVER, _BOOKMARK, _DISCONNECT, _POP, _RESYNC = (
    Step(n) for n in ("List", "Watch", "Gone", "Deliver", "Bookmark", "Disconnect", "Pop",
                      "Resync"))

_WATCH_EVENT_TO_DELTA = {server.ADDED: ADDED, server.MODIFIED: UPDATED,
                         server.DELETED: DELETED}


class Informer(Machine):
    name = "informer"
    #: declared by the subclass whose bounds reach it (``RelistInformer``); its
    #: hook is in ``_List`` here
    mutant_names = frozenset({"fifo_keeps_both_deletions"})
    mutants = {
        "relist_forgets_tombstone": Mutant(
            "a relist queues Replaced for the listed objects but no "
            "DeletedFinalStateUnknown for cached or queued objects missing from the "
            "list: a deletion missed while the watch was gone stays in the cache forever",
            violates="cache_converges"),
        "watch_resumes_after_gone": Mutant(
            "on 410 Gone the reflector skips the relist and watches again from the "
            "oldest revision the server still keeps, losing the compacted events",
            violates="cache_converges"),
        "fifo_drops_update": Mutant(
            "the DeltaFIFO drops an Updated delta when the key's newest queued delta is "
            "already Added or Updated, as if the pending change covered it",
            violates="cache_converges"),
        "watch_not_reopened": Mutant(
            "after the watch connection drops the reflector never opens it again, so "
            "the cache silently stops following the server (fabric8io/kubernetes-client"
            "#2992, fixed by #3018: an exception in onClose terminated the watch for "
            "good; #6379: 'the reflector watcher stopped silently')",
            violates="cache_eventually_converges"),
        "bookmark_skips_events": Mutant(
            "the server sends a BOOKMARK at its current revision while events of the "
            "resource are still pending on the watch", violates="cache_converges"),
        "fifo_queues_key_twice": Mutant(
            "the DeltaFIFO gives a delta for a key that is already queued an entry of its "
            "own at the tail instead of appending it to the key's deltas, so the key is "
            "queued twice and its changes are popped in two batches",
            violates="fifo_keys_distinct"),
        "resync_over_pending_deltas": Mutant(
            "a resync queues Sync also for keys that have deltas queued, carrying the "
            "cache's older object behind the newer changes (the race client-go's Resync "
            "avoids by syncing only keys not already queued)",
            violates="fifo_sync_first"),
        "watch_modified_as_added": Mutant(
            "the reflector queues a MODIFIED watch event as an Added delta, so event "
            "handlers see a change of an existing object as a creation",
            violates="watch_delta_types"),
        "gone_at_compact_revision": Mutant(
            "the server answers 410 Gone to a watch whose first needed record lies exactly "
            "at the compact revision, which it still keeps (an off-by-one: a watch may "
            "start at any revision not yet compacted), so the reflector relists for nothing",
            violates="gone_only_when_compacted"),
        **wq_ops.MUTANTS,
    }

    def __init__(self, keys: int = 2, writers: int = 2, writes: int = 3,
                 compactions: int = 1, disconnects: int = 1, resyncs: int = 1,
                 workers: int = 2, other: bool = True, mutant: str | None = None):
        super().__init__(mutant)
        if not 1 <= keys <= len(KEY_NAMES):
            raise ValueError(f"informer bounds: 1 <= keys <= {len(KEY_NAMES)}")
        if not 1 <= writers <= len(CLIENT_NAMES):
            raise ValueError(f"informer bounds: 1 <= writers <= {len(CLIENT_NAMES)}")
        if min(writes, compactions, disconnects, resyncs) < 0 or workers < 1:
            raise ValueError("informer bounds: budgets must be >= 0 and workers >= 1")
        self.keys = KEY_NAMES[:keys]
        self.clients = CLIENT_NAMES[:writers]
        self.writes = writes
        self.compactions = compactions
        self.disconnects = disconnects
        self.resyncs = resyncs
        self.workers = workers
        self.other = bool(other)
        # the steps successors() proposes, built once: per watched key, the
        # create steps (enabled while it is absent) and the update and delete
        # steps (enabled while it is present), with their requests
        self._write_steps = [
            (k,
             [(Step("Create", (c, k)), Put(k, c)) for c in self.clients],
             [(Step("Update", (c, k)), Put(k, c)) for c in self.clients]
             + [(Step("Delete", (c, k)), Delete(k)) for c in self.clients])
            for k in self.keys]
        self._other_steps = [(Step("WriteOther", (c,)), Put(OTHER_KEY, c))
                             for c in self.clients] if other else []
        self._get_steps = [Step("Get", (w,)) for w in range(workers)]
        self._done_steps = [Step("Done", (w,)) for w in range(workers)]

    def config(self):
        return {"keys": len(self.keys), "writers": len(self.clients), "writes": self.writes,
                "compactions": self.compactions, "disconnects": self.disconnects,
                "resyncs": self.resyncs, "workers": self.workers, "other": self.other}

    def init_states(self):
        budget = (self.writes, self.compactions, self.disconnects, self.resyncs)
        yield (INITIAL, budget, (LIST, 0), (), (), wq_ops.empty(self.workers))

    # ------------------------------------------------------------------
    def steps(self, state):
        store, budget, (mode, rv), fifo, cache, wq = state
        if budget[B_WRITES]:
            for c in self.clients:
                for k in self.keys:
                    yield Step("Create", (c, k))
                    yield Step("Update", (c, k))
                    yield Step("Delete", (c, k))
                if self.other:
                    yield Step("WriteOther", (c,))
        if budget[B_COMPACTIONS]:
            for r in range(store[1] + 1, store[0] + 1):
                yield Step("Compact", (r,))
        if mode == LIST:
            yield Step("List")
        elif mode == CLOSED:
            yield Step("Watch")
        else:
            yield Step("Gone")
            yield Step("Deliver")
            yield Step("Bookmark")
            if budget[B_DISCONNECTS]:
                yield Step("Disconnect")
        if fifo:
            yield Step("Pop")
        if budget[B_RESYNCS] and cache:
            yield Step("Resync")
        for w in range(self.workers):
            yield Step("Get", (w,))
            yield Step("Done", (w,))

    def successors(self, state):
        """The enabled steps and their states, without proposing disabled
        ones: the explore engine's hot path (``steps`` / ``apply`` stay the
        reference, and ``tests/test_informer_check.py`` checks that both
        give the same transitions)."""
        store, budget, (mode, rv), fifo, cache, wq = state
        if budget[B_WRITES]:
            rev = store[0]
            spent = (budget[B_WRITES] - 1,) + budget[1:]
            rest = state[2:]
            for key, creates, changes in self._write_steps:
                present = record_at(history(store, key), rev) is not None
                for step, request in changes if present else creates:
                    yield step, (apply_valid(store, request)[0], spent) + rest
            for step, request in self._other_steps:
                yield step, (apply_valid(store, request)[0], spent) + rest
        if budget[B_COMPACTIONS]:
            for r in range(store[1] + 1, store[0] + 1):
                yield Step("Compact", (r,)), self._Compact(state, r)
        if mode == LIST:
            yield _LIST, self._List(state)
        elif mode == CLOSED:
            if self.mutant != "watch_not_reopened":
                yield _WATCH, self._Watch(state)
        else:
            for step, handler in ((_GONE, self._Gone), (_DELIVER, self._Deliver),
                                  (_BOOKMARK, self._Bookmark), (_DISCONNECT, self._Disconnect)):
                nxt = handler(state)
                if nxt is not None:
                    yield step, nxt
        if fifo:
            yield _POP, self._Pop(state)
        if budget[B_RESYNCS] and cache:
            nxt = self._Resync(state)
            if nxt is not None:
                yield _RESYNC, nxt
        queue, workers = wq[0], wq[3]
        for w in range(self.workers):
            if workers[w] == wq_ops.IDLE:
                if queue:
                    yield self._get_steps[w], self._Get(state, w)
            else:
                yield self._done_steps[w], self._Done(state, w)

    # -- writers -----------------------------------------------------------
    def _write(self, state, client, key, request, want_present):
        store, budget = state[0], state[1]
        if not budget[B_WRITES] or client not in self.clients:
            return None
        if key != OTHER_KEY:
            if key not in self.keys:
                return None
            present = record_at(history(store, key), store[0]) is not None
            if present != want_present:
                return None
        store, _ = apply_valid(store, request)
        budget = (budget[0] - 1,) + budget[1:]
        return (store, budget) + state[2:]

    @action("Create", tag=ENVIRONMENT)
    def _Create(self, state, client, key):
        return self._write(state, client, key, Put(key, client), False)

    @action("Update", tag=ENVIRONMENT)
    def _Update(self, state, client, key):
        return self._write(state, client, key, Put(key, client), True)

    @action("Delete", tag=ENVIRONMENT)
    def _Delete(self, state, client, key):
        return self._write(state, client, key, Delete(key), True)

    @action("WriteOther", tag=ENVIRONMENT)
    def _WriteOther(self, state, client):
        if not self.other:
            return None
        return self._write(state, client, OTHER_KEY, Put(OTHER_KEY, client), True)

    # -- the server's own steps ------------------------------------------------
    @action("Compact", tag=SYSTEM, rare=True)
    def _Compact(self, state, rev):
        store, budget = state[0], state[1]
        if not budget[B_COMPACTIONS] or not store[1] < rev <= store[0]:
            return None
        store, _ = apply_valid(store, Compact(rev))
        budget = budget[:B_COMPACTIONS] + (budget[B_COMPACTIONS] - 1,) + budget[2:]
        return (store, budget) + state[2:]

    # -- the reflector -----------------------------------------------------------
    @action("List", tag=SYSTEM)
    def _List(self, state):
        store, budget, (mode, _), fifo, cache, wq = state
        if mode != LIST:
            return None
        listed = server.objects(store, self.keys)
        fifo = fifo_ops.replace(fifo, cache, listed,
                                tombstones=self.mutant != "relist_forgets_tombstone",
                                collapse=self.mutant != "fifo_keeps_both_deletions")
        return (store, budget, (WATCH, store[0]), fifo, cache, wq)

    @action("Watch", tag=SYSTEM)
    def _Watch(self, state):
        store, budget, (mode, rv), fifo, cache, wq = state
        if mode != CLOSED or self.mutant == "watch_not_reopened":
            return None
        return (store, budget, (WATCH, rv), fifo, cache, wq)

    @action("Disconnect", tag=FAULT, rare=True)
    def _Disconnect(self, state):
        store, budget, (mode, rv), fifo, cache, wq = state
        if mode != WATCH or not budget[B_DISCONNECTS]:
            return None
        budget = budget[:B_DISCONNECTS] + (budget[B_DISCONNECTS] - 1,) + budget[3:]
        return (store, budget, (CLOSED, rv), fifo, cache, wq)

    @action("Gone", tag=SYSTEM)
    def _Gone(self, state):
        store, budget, (mode, rv), fifo, cache, wq = state
        if mode != WATCH or not (server.gone(store, rv)
                                 or (self.mutant == "gone_at_compact_revision"
                                     and rv + 1 == store[1])):
            return None
        if self.mutant == "watch_resumes_after_gone":
            return (store, budget, (WATCH, store[1] - 1), fifo, cache, wq)
        return (store, budget, (LIST, rv), fifo, cache, wq)

    @action("Deliver", tag=SYSTEM)
    def _Deliver(self, state):
        store, budget, (mode, rv), fifo, cache, wq = state
        if mode != WATCH or server.gone(store, rv):
            return None
        event = server.next_event(store, self.keys, rv)
        if event is None:
            return None
        rev, key, kind, value = event
        delta = (_WATCH_EVENT_TO_DELTA[kind], rev, value, 0)
        if self.mutant == "watch_modified_as_added" and kind == server.MODIFIED:
            delta = (ADDED,) + delta[1:]  # the seeded bug: a change read as a creation
        if self.mutant == "fifo_queues_key_twice" and fifo_ops.deltas_of(fifo, key):
            fifo = fifo + ((key, (delta,)),)  # the seeded bug: a second entry for the key
        elif kind == server.DELETED:
            fifo = fifo_ops.delete(fifo, cache, key, delta)
        elif (self.mutant == "fifo_drops_update" and kind == server.MODIFIED
              and fifo_ops.deltas_of(fifo, key)
              and fifo_ops.deltas_of(fifo, key)[-1][0] in (ADDED, UPDATED)):
            pass  # the seeded bug: the newer Updated delta is lost
        else:
            fifo = fifo_ops.queue_action(fifo, key, delta)
        return (store, budget, (WATCH, rev), fifo, cache, wq)

    @action("Bookmark", tag=SYSTEM)
    def _Bookmark(self, state):
        store, budget, (mode, rv), fifo, cache, wq = state
        if mode != WATCH or server.gone(store, rv):
            return None
        if self.mutant == "bookmark_skips_events":
            at = store[0] if store[0] > rv else None
        else:
            at = server.bookmark_revision(store, self.keys, rv)
        if at is None:
            return None
        return (store, budget, (WATCH, at), fifo, cache, wq)

    # -- the informer's processing loop ------------------------------------------
    @action("Pop", tag=SYSTEM)
    def _Pop(self, state):
        store, budget, reflector, fifo, cache, wq = state
        if not fifo:
            return None
        key, deltas = fifo[0]
        cache = fifo_ops.apply_deltas(cache, key, deltas)
        # every delta makes the event handler enqueue the key; the queue dedups
        wq = wq_ops.add(wq, key, lose_if_processing=self.mutant == "add_while_processing_lost")
        return (store, budget, reflector, fifo[1:], cache, wq)

    @action("Resync", tag=SYSTEM)
    def _Resync(self, state):
        store, budget, reflector, fifo, cache, wq = state
        if not budget[B_RESYNCS]:
            return None
        synced = fifo_ops.resync(fifo, cache,
                                 skip_pending=self.mutant != "resync_over_pending_deltas")
        if synced == fifo:
            return None  # nothing to resync: not a step worth a state
        budget = budget[:B_RESYNCS] + (budget[B_RESYNCS] - 1,)
        return (store, budget, reflector, synced, cache, wq)

    # -- the workers -------------------------------------------------------------
    @action("Get", tag=SYSTEM)
    def _Get(self, state, worker):
        if not 0 <= worker < self.workers:
            return None
        wq = wq_ops.get(state[5], worker, track=self.mutant != "no_processing_set")
        return None if wq is None else state[:5] + (wq,)

    @action("Done", tag=SYSTEM)
    def _Done(self, state, worker):
        if not 0 <= worker < self.workers:
            return None
        wq = wq_ops.done(state[5], worker, requeue=self.mutant != "done_forgets_dirty",
                         always=self.mutant == "done_requeues_always")
        return None if wq is None else state[:5] + (wq,)

    def workqueue(self, state):
        """The work queue part of a state (what its properties read)."""
        return state[5]

    # ------------------------------------------------------------------
    def view(self, state):
        store, budget, (mode, rv), fifo, cache, wq = state
        queue, dirty, processing, workers, added = wq
        return {
            "revision": store[0],
            "compact_revision": store[1],
            "server": {k: [o[1], o[2]] for k, o in
                       ((o[0], o) for o in server.objects(store, self.keys))},
            "store": describe(store)["keys"],
            "budget": {"writes": budget[0], "compactions": budget[1],
                       "disconnects": budget[2], "resyncs": budget[3]},
            "reflector": {"mode": mode, "resourceVersion": rv},
            "fifo": [[k, [_show_delta(d) for d in ds]] for k, ds in fifo],
            "cache": {k: [r, v] for k, r, v in cache},
            "workqueue": {"queue": list(queue), "dirty": list(dirty),
                          "processing": list(processing),
                          "added_since_handed_out": list(added)},
            "workers": list(workers),
        }


def _show_delta(d) -> str:
    kind = "Deleted(DeletedFinalStateUnknown)" if d[3] else d[0]
    return f"{kind}@{d[1]}={d[2]}"


class RelistInformer(Informer):
    """The informer of the catalog's ``informer-relist`` model: the same
    machine, checked at bounds narrowed to one object, one writer and one
    worker so that four writes fit (a deletion the watch delivered still
    queued when a relist tombstones it).

    Why a class of its own: a check with a seeded bug runs every model that
    carries it, and most of the informer's bugs need what these bounds leave
    out (two workers, a resync, a dropped connection), while the bug these
    bounds are for needs more writes than the ``informer`` model's: so this
    class carries that one bug (its hook is the base class's ``_List``) and
    ``Informer`` carries the rest."""

    mutants = {
        "fifo_keeps_both_deletions": Mutant(
            "a relist's DeletedFinalStateUnknown tombstone for a key whose newest queued "
            "delta is already a deletion is appended instead of collapsed into it (client-go "
            "dedupDeltas), so the key's deltas end in two deletions",
            violates="fifo_deletions_collapsed"),
    }

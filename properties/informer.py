"""Properties of the informer: the cache converges on the server's objects,
and the work queue hands a key to one worker at a time and loses none.

The server's objects are read through the MVCC store's functional core and
the list/watch contract (``model.informer.server``), never through the
machine's own steps, so a seeded bug in the informer cannot bend the
yardstick.

Convergence is stated twice. ``cache_eventually_converges`` is the liveness
property itself, ``eventually_always``: on every fair behaviour whose writes,
compactions and dropped connections stop (``properties.core``: quiet cycles,
faults bounded by the machine's budgets), the cache comes to hold exactly
the server's objects and keeps holding them. It is what catches an informer
that simply stops listening (``watch_not_reopened``): no state of such a
run is "synced", so the invariant below says nothing there.

``cache_converges`` is its safety half, an invariant over *synced* states,
kept because it judges every state rather than only where behaviours end
up, so a wrong cache is caught at the step that makes it. Its content is
what holds in the states where nothing is in flight. Those are the states where the reflector has listed
(it holds a resourceVersion ``rv``), the server still keeps every record
after ``rv`` (no 410 is due), no event of the resource lies after ``rv``,
and the DeltaFIFO is empty. In each of them the cache must equal the
server's objects — with writes still to come or not, which makes the
invariant stronger than its "once writes stop" reading, and lets
exhaustive search check it state by state. That such states are reached,
also after relists, tombstones and resyncs, is shown by the tests (the
invariant is not vacuous).
"""

from __future__ import annotations

from kubemc.model.informer import server
from kubemc.model.informer.deltafifo import ADDED, DELETED, SYNC, UPDATED
from kubemc.model.informer.machine import LIST
from kubemc.model.store.mvcc import R_MOD, R_VERSION, history
from kubemc.properties.core import EVENTUALLY_ALWAYS, INVARIANT, TRANSITION, Property, cover

_SEED = ("seeds/000: 'controllers are watch-loops continuously running and comparing the "
         "cluster's desired state (provided by object's configuration data) with its "
         "current state (obtained from etcd data store via the api server)'")
_CONCEPTS = ("Kubernetes API concepts (kubernetes.io/docs/reference/using-api/api-concepts, "
             "'Efficient detection of changes'): a watch from a list's resourceVersion "
             "delivers every later change; on 410 Gone the client clears its cache, lists "
             "again and watches from the new resourceVersion")
_DELTAFIFO = ("client-go tools/cache DeltaFIFO (pkg.go.dev/k8s.io/client-go/tools/cache): "
              "Replaced on relist, DeletedFinalStateUnknown for an object deleted while "
              "disconnected, Sync on resync; deltas of a key are processed in order")
_FIFO_DOC = ("client-go tools/cache (pkg.go.dev/k8s.io/client-go/tools/cache), DeltaFIFO: "
             "'the accumulator associated with a given object's key is ... a Deltas', the "
             "queue holds the keys in FIFO order and 'you want to process every object "
             "change (delta) at most once'")
_DEDUP = ("client-go tools/cache DeltaFIFO: re-listing and watching can deliver the same "
          "deletion twice; the two newest deltas of a key are combined when both are "
          "deletions (dedupDeltas), keeping the one with more information")
_RESYNC = ("client-go tools/cache DeltaFIFO.Resync (pkg.go.dev/k8s.io/client-go/tools/cache):"
           " 'Resync adds, with a Sync type of Delta, every object listed by f.knownObjects "
           "whose key is not already queued for processing'")
_EVENTS = ("Kubernetes API concepts (kubernetes.io/docs/reference/using-api/api-concepts, "
           "'Watch'): ADDED for a new object, MODIFIED for a change, DELETED; etcd "
           "mvccpb.KeyValue: 'version is the version of the key. A deletion resets the "
           "version to zero and any modification of the key increases its version' (a "
           "creation is version 1)")
_GONE = ("Kubernetes API concepts, 'Efficient detection of changes': 410 Gone answers a "
         "watch whose resourceVersion is older than the history the server keeps; etcd "
         "watch API (etcd.io/docs/v3.5/learning/api/): a watch may start at any revision "
         "not yet compacted")
_WORKQUEUE = ("client-go util/workqueue (pkg.go.dev/k8s.io/client-go/util/workqueue): "
              "'Stingy: a single item will not be processed multiple times concurrently, "
              "and if an item is added multiple times before it can be processed, it will "
              "only be processed once'; 'it is allowed for an item to be reenqueued while "
              "it is being processed'")


def synced(m, state) -> bool:
    """Nothing is in flight between the server and the cache."""
    store, _, (mode, rv), fifo = state[0], state[1], state[2], state[3]
    return (mode != LIST and not fifo and not server.gone(store, rv)
            and server.next_event(store, m.keys, rv) is None)


def cache_matches_server(m, state) -> bool:
    """The cache holds exactly the server's objects at their current
    resourceVersions (the goal of eventual convergence)."""
    return state[4] == server.objects(state[0], m.keys)


def cache_converges(m, state) -> bool:
    if not synced(m, state):
        return True
    return state[4] == server.objects(state[0], m.keys)


# The DeltaFIFO and watch properties read the queue (state[3]) and the MVCC
# store (state[0]) directly: each restates a documented rule of client-go's
# DeltaFIFO or of the list/watch contract over the store's records, without
# calling model.informer.deltafifo or model.informer.server.


def fifo_keys_distinct(m, state) -> bool:
    """Each key holds one place in the DeltaFIFO."""
    keys = [k for k, _ in state[3]]
    return len(keys) == len(set(keys))


def fifo_deletions_collapsed(m, state) -> bool:
    """No key's queued deltas hold two deletions in a row: each append
    combines a new deletion with a deletion before it."""
    return all(not (a[0] == DELETED and b[0] == DELETED)
               for _, ds in state[3] for a, b in zip(ds, ds[1:], strict=False))


def fifo_sync_first(m, state) -> bool:
    """A Sync delta is queued only for a key with nothing queued, and deltas
    are only ever appended: so a Sync delta is always its key's first."""
    return all(d[0] != SYNC for _, ds in state[3] for d in ds[1:])


def fifo_has_sync(m, state) -> bool:
    return any(d[0] == SYNC for _, ds in state[3] for d in ds)


def watch_delta_types(m, state) -> bool:
    """An Added delta is the object's creation (its record at that
    resourceVersion is version 1); an Updated delta a later change (version
    above 1). A record compaction has dropped says nothing."""
    store = state[0]
    for key, ds in state[3]:
        records = {rec[R_MOD]: rec[R_VERSION] for rec in history(store, key)}
        for d in ds:
            if d[0] in (ADDED, UPDATED) and d[1] in records:
                if (records[d[1]] == 1) != (d[0] == ADDED):
                    return False
    return True


def gone_only_when_compacted(m, before, step, after) -> bool:
    """A 410 Gone answers only a watch from ``rv`` whose records after ``rv``
    are not all kept: the store keeps every record from its compact revision
    on, so the watch is gone when ``rv + 1`` lies below it."""
    if step.name != "Gone":
        return True
    store, rv = before[0], before[2][1]
    return rv + 1 < store[1]


# The work queue properties read the queue through ``m.workqueue(state)``, so
# they hold of the informer (whose state contains a work queue) and of the
# work queue machine alone (``model.informer.queue_machine``) alike.


def workqueue_exclusive(m, state) -> bool:
    held = [k for k in m.workqueue(state)[3] if k]
    return len(held) == len(set(held))


def workqueue_keeps_dirty_keys(m, state) -> bool:
    queue, dirty, processing = m.workqueue(state)[:3]
    return all(k in queue or k in processing for k in dirty)


def workqueue_drained(m, state) -> bool:
    """Nothing waits in the queue and no worker holds a key."""
    queue, workers = m.workqueue(state)[0], m.workqueue(state)[3]
    return not queue and all(not k for k in workers)


def workqueue_hands_out_added_keys(m, state) -> bool:
    """Every key added since a worker last got it (the ghost ``added``,
    written by ``Add`` and ``Get`` alone) is waiting in the queue or held by
    a worker. A key held by a worker and added again must therefore be back
    in the queue the moment its worker is done with it: the state after that
    ``Done`` is where a lost add shows. Read from the queue and the workers'
    hands — what ``Get`` hands out from — not from ``dirty`` or
    ``processing``, the queue's own bookkeeping."""
    queue, _, _, workers, added = m.workqueue(state)
    return all(k in queue or k in workers for k in added)


_cover = cover("informer")

PROPERTIES = (
    Property("cache_converges", "informer", INVARIANT,
             "Whenever nothing is in flight — the reflector has listed, no 410 is due, no "
             "event of the resource is pending on the watch and the DeltaFIFO is empty — "
             "the informer's cache holds exactly the server's objects, each at its "
             "current resourceVersion (so once writes stop and events are delivered, the "
             "cache equals the server).",
             f"{_SEED}; {_CONCEPTS}; {_DELTAFIFO}", cache_converges),
    Property("cache_eventually_converges", "informer", EVENTUALLY_ALWAYS,
             "Once writes, compactions and dropped connections stop, the informer's cache "
             "eventually holds exactly the server's objects, each at its current "
             "resourceVersion, and keeps holding them (eventually-stable convergence).",
             f"{_SEED}; {_CONCEPTS}; Anvil (Sun et al., OSDI 2024) §3, eventually-stable "
             "reconciliation", cache_matches_server,
             assumption="the reflector's list and watch requests are answered (the server "
                        "is up once faults stop)"),
    Property("fifo_keys_distinct", "informer", INVARIANT,
             "The DeltaFIFO holds each key at most once: a new delta for a queued key joins "
             "that key's deltas in its place, and popping the key hands them all over.",
             _FIFO_DOC, fifo_keys_distinct),
    Property("fifo_deletions_collapsed", "informer", INVARIANT,
             "No key's queued deltas hold two deletions in a row (a watch deletion and a "
             "relist's DeletedFinalStateUnknown tombstone collapse into one).",
             _DEDUP, fifo_deletions_collapsed),
    Property("fifo_sync_first", "informer", INVARIANT,
             "A resync's Sync delta is queued only for a key with no queued deltas, so it "
             "is always the first of its key's deltas (never behind a newer change, whose "
             "object it would overwrite with the cache's older one).",
             _RESYNC, fifo_sync_first),
    _cover("cover_resync_queues_sync",
           "Some reachable state has a resync's Sync delta in the DeltaFIFO.",
           _RESYNC, fifo_has_sync),
    Property("watch_delta_types", "informer", INVARIANT,
             "A queued Added delta is its object's creation (version 1 at that "
             "resourceVersion) and an Updated delta a later change of it: the watch's "
             "ADDED and MODIFIED events keep their meaning through the reflector.",
             _EVENTS, watch_delta_types),
    Property("gone_only_when_compacted", "informer", TRANSITION,
             "The server answers a watch 410 Gone only when history the watch needs — the "
             "records after its resourceVersion — has been compacted.",
             _GONE, gone_only_when_compacted),
    Property("workqueue_exclusive", "informer", INVARIANT,
             "No key is held by two workers at once.",
             f"{_WORKQUEUE}; {_SEED}", workqueue_exclusive),
    Property("workqueue_keeps_dirty_keys", "informer", INVARIANT,
             "Every key added to the work queue and not yet handed to a worker since is "
             "queued or being processed (and then queued again on Done): no change is "
             "dropped by deduplication.",
             _WORKQUEUE, workqueue_keeps_dirty_keys),
    Property("workqueue_hands_out_added_keys", "informer", INVARIANT,
             "Every key added to the work queue since a worker last got it (ghost state "
             "kept apart from the queue's own dirty set) is queued or held by a worker: a "
             "key added while it is being processed is queued again when its worker is "
             "done, and so handed out again — no change is lost.",
             _WORKQUEUE, workqueue_hands_out_added_keys),
    Property("workqueue_drains", "informer", EVENTUALLY_ALWAYS,
             "Once no more keys are added, the work queue eventually drains — nothing "
             "waits and no worker holds a key — and stays drained: every key added is "
             "processed a finite number of times.",
             f"{_WORKQUEUE}; kubernetes/kubernetes#30629 (controllers must not hot-loop)",
             workqueue_drained,
             assumption="every worker finishes the key it holds (Done is weakly fair)"),
)

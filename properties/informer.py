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
from kubemc.model.informer.machine import LIST
from kubemc.properties.core import EVENTUALLY_ALWAYS, INVARIANT, Property

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

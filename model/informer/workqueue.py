"""The controller's work queue: keys to reconcile, handed to workers.

Semantics from client-go's ``util/workqueue`` package documentation
(pkg.go.dev/k8s.io/client-go/util/workqueue), written anew here:

* "Fair: items processed in the order in which they are added."
* "Stingy: a single item will not be processed multiple times concurrently,
  and if an item is added multiple times before it can be processed, it
  will only be processed once."
* "Multiple consumers and producers. In particular, it is allowed for an
  item to be reenqueued while it is being processed."

The three structures that give those guarantees, and their rules:

* ``dirty`` — keys that need processing; ``Add`` of a dirty key does nothing
  (deduplication);
* ``processing`` — keys a worker holds; ``Add`` of a key being processed
  only marks it dirty, so no second worker can get it;
* ``queue`` — dirty keys not being processed, in order; ``Get`` pops the
  head into ``processing`` and clears its dirty mark; ``Done`` releases it
  and, if it became dirty meanwhile, queues it again.

Representation: ``(queue, dirty, processing, workers, added)`` — ``dirty``
and ``processing`` are sorted tuples, ``workers[w]`` is the key worker ``w``
holds or ``IDLE``. ``added`` is ghost state, read by properties only and by
no step: the keys ``Add``ed since a worker last got them (``Add`` puts a key
in, ``Get`` of that key takes it out, nothing else touches it). It is what
"no added key is lost" is stated over, so that the statement does not rest
on the queue's own ``dirty`` bookkeeping: a queue that silently drops an
``Add`` leaves ``dirty`` consistent with itself, but not ``added``. (In a
correct queue ``added`` equals ``dirty``; the space does not grow.)
"""

from __future__ import annotations

from kubemc.model.kernel import Mutant

IDLE = ""

#: The work queue's seeded bugs, written once: the informer and the work
#: queue machine (``model.informer.queue_machine``) both carry them.
MUTANTS = {
    "no_processing_set": Mutant(
        "the work queue does not record which keys workers hold, so a key added "
        "while it is processed is queued and handed to a second worker",
        violates="workqueue_exclusive"),
    "done_forgets_dirty": Mutant(
        "Done releases a key without queueing it again although it was added "
        "while being processed", violates="workqueue_keeps_dirty_keys"),
    "add_while_processing_lost": Mutant(
        "an Add of a key a worker is processing (and not yet dirty) is dropped: the key "
        "is neither marked dirty nor queued, so the change is never handed out again",
        violates="workqueue_hands_out_added_keys"),
    "done_requeues_always": Mutant(
        "Done queues the key again whether or not it was added while being processed, "
        "so workers take it round and round and the queue never drains: the controller "
        "hot loop of kubernetes/kubernetes#30629 ('Controllers hotloop on unexpected API "
        "server rejections')", violates="workqueue_drains"),
}


def empty(workers: int) -> tuple:
    return ((), (), (), (IDLE,) * workers, ())


def _with(keys: tuple, key: str) -> tuple:
    return keys if key in keys else tuple(sorted(keys + (key,)))


def _without(keys: tuple, key: str) -> tuple:
    return tuple(k for k in keys if k != key)


def add(wq: tuple, key: str, lose_if_processing: bool = False) -> tuple:
    """``lose_if_processing=True`` (an add of a key being processed does
    nothing to the queue) is the hook of a seeded bug; the ghost ``added``
    records the add either way."""
    queue, dirty, processing, workers, added = wq
    added = _with(added, key)
    if key in dirty:
        return (queue, dirty, processing, workers, added)
    if key in processing:
        if lose_if_processing:
            return (queue, dirty, processing, workers, added)
        return (queue, _with(dirty, key), processing, workers, added)
    return (queue + (key,), _with(dirty, key), processing, workers, added)


def get(wq: tuple, worker: int, track: bool = True):
    """Worker ``worker`` takes the head key; None if it is busy or the queue
    is empty. ``track=False`` (the key is not entered in ``processing``) is
    the hook of a seeded bug."""
    queue, dirty, processing, workers, added = wq
    if not queue or workers[worker] != IDLE:
        return None
    key = queue[0]
    workers = workers[:worker] + (key,) + workers[worker + 1:]
    if track:
        processing = _with(processing, key)
    return (queue[1:], _without(dirty, key), processing, workers, _without(added, key))


def done(wq: tuple, worker: int, requeue: bool = True, always: bool = False):
    """Worker ``worker`` finishes its key; a key dirtied meanwhile is queued
    again (unless it already is, which only a queue without its processing
    set allows). ``requeue=False`` and ``always=True`` (the key is queued
    again, dirty or not) are the hooks of seeded bugs."""
    queue, dirty, processing, workers, added = wq
    key = workers[worker]
    if key == IDLE:
        return None
    workers = workers[:worker] + (IDLE,) + workers[worker + 1:]
    processing = _without(processing, key)
    if always:
        dirty = _with(dirty, key)
    if requeue and key in dirty and key not in queue:
        queue = queue + (key,)
    return (queue, dirty, processing, workers, added)

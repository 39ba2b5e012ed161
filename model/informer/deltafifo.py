"""The DeltaFIFO: the queue between the reflector and the cache.

Semantics from client-go's ``tools/cache/delta_fifo.go`` documentation
(pkg.go.dev/k8s.io/client-go/tools/cache#DeltaFIFO), written anew here:

* it holds, per object key, the list of changes ("Deltas") not yet
  processed, and the keys in first-in first-out order; a key is queued at
  most once, and popping it hands over all its deltas at once;
* the delta types are **Added**, **Updated**, **Deleted**, **Replaced**
  ("emitted when we encountered watch errors and had to do a relist") and
  **Sync** ("for synthetic events during a periodic resync");
* a Deleted delta appended after a Deleted one does not grow the list: the
  two collapse into one, and the one kept is the one with more information
  (a ``DeletedFinalStateUnknown`` tombstone gives way to a real deletion);
* ``Delete`` of a key that is neither queued nor known to the cache is
  ignored ("presumably, this was deleted when a relist happened");
* ``Replace(list)`` (a relist) queues Replaced for every listed object, then
  a Deleted delta carrying ``DeletedFinalStateUnknown`` for every key that is
  queued or in the cache but missing from the list — a deletion that
  happened while the watch was not looking;
* ``Resync`` queues Sync, with the cache's object, for every cached key that
  has no queued deltas.

Representation (plain tuples, hashed on the hot path)::

    fifo  = ((key, deltas), ...)         in queue order
    delta = (type, rv, value, unknown)   unknown = 1 for DeletedFinalStateUnknown
    cache = ((key, rv, value), ...)      sorted by key (the indexer)
"""

from __future__ import annotations

ADDED, UPDATED, DELETED, REPLACED, SYNC = "Added", "Updated", "Deleted", "Replaced", "Sync"
DELTA_TYPES = (ADDED, UPDATED, DELETED, REPLACED, SYNC)


def deltas_of(fifo: tuple, key: str) -> tuple:
    for k, ds in fifo:
        if k == key:
            return ds
    return ()


def cached(cache: tuple, key: str):
    """The cache's ``(key, rv, value)`` for ``key``, or None."""
    for entry in cache:
        if entry[0] == key:
            return entry
    return None


def dedup(deltas: tuple) -> tuple:
    """Collapse two trailing deletions into the more informative one."""
    if len(deltas) < 2:
        return deltas
    older, newer = deltas[-2], deltas[-1]
    if older[0] != DELETED or newer[0] != DELETED:
        return deltas
    keep = older if newer[3] else newer
    return deltas[:-2] + (keep,)


def with_deltas(fifo: tuple, key: str, deltas: tuple) -> tuple:
    """The fifo with ``key``'s deltas replaced (appended at the tail if new)."""
    out = []
    found = False
    for k, ds in fifo:
        if k == key:
            out.append((k, deltas))
            found = True
        else:
            out.append((k, ds))
    if not found:
        out.append((key, deltas))
    return tuple(out)


def queue_action(fifo: tuple, key: str, delta: tuple, collapse: bool = True) -> tuple:
    """client-go's ``queueActionLocked``: append, dedup, keep the key's place.

    ``collapse=False`` (two trailing deletions are kept) is a seeded bug's
    hook (the machine's ``fifo_keeps_both_deletions``)."""
    deltas = deltas_of(fifo, key) + (delta,)
    return with_deltas(fifo, key, dedup(deltas) if collapse else deltas)


def delete(fifo: tuple, cache: tuple, key: str, delta: tuple) -> tuple:
    """A Deleted delta from the watch, ignored for a key nobody knows."""
    if cached(cache, key) is None and not deltas_of(fifo, key):
        return fifo
    return queue_action(fifo, key, delta)


def replace(fifo: tuple, cache: tuple, listed: tuple, tombstones: bool = True,
            collapse: bool = True) -> tuple:
    """A relist: Replaced for every listed object, then tombstones for every
    queued or cached key the list no longer has.

    ``tombstones=False`` and ``collapse=False`` are seeded bugs' hooks (the
    machine's ``relist_forgets_tombstone`` and ``fifo_keeps_both_deletions``:
    a tombstone queued behind a queued deletion is the one place two
    deletions meet), kept here so the correct path and the bug differ in
    exactly one decision.
    """
    names = set()
    for key, rv, value in listed:
        names.add(key)
        fifo = queue_action(fifo, key, (REPLACED, rv, value, 0))
    if not tombstones:
        return fifo
    for key, ds in tuple(fifo):
        if key not in names:
            last = ds[-1]
            fifo = queue_action(fifo, key, (DELETED, last[1], last[2], 1), collapse)
    for key, rv, value in cache:
        if key not in names and not deltas_of(fifo, key):
            fifo = queue_action(fifo, key, (DELETED, rv, value, 1))
    return fifo


def resync(fifo: tuple, cache: tuple, skip_pending: bool = True) -> tuple:
    """Sync, with the cached object, for every cached key with no deltas.

    ``skip_pending=False`` (a key with queued deltas gets a Sync too, carrying
    the cache's older object behind them) is a seeded bug's hook (the
    machine's ``resync_over_pending_deltas``)."""
    for key, rv, value in cache:
        if not skip_pending or not deltas_of(fifo, key):
            fifo = queue_action(fifo, key, (SYNC, rv, value, 0))
    return fifo


def apply_deltas(cache: tuple, key: str, deltas: tuple) -> tuple:
    """What the informer does with a popped key (client-go's
    ``processDeltas``): Added / Updated / Replaced / Sync store the object,
    Deleted removes it; the last delta decides."""
    entry = None
    for d in deltas:
        entry = None if d[0] == DELETED else (key, d[1], d[2])
    rest = tuple(e for e in cache if e[0] != key)
    if entry is None:
        return rest
    return tuple(sorted(rest + (entry,)))

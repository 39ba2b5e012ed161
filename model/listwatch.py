"""The list/watch contract, stated once: what a list answers and which watch
message may come next, given the history a server keeps and a watcher's
position.

Why one module: list/watch is implemented twice in the models — the
informer's server (``model.informer.server``, which *is* this contract over
the MVCC store the informer machine holds) and the apiserver's replicas
(``model.apiserver.requests``: watch caches fed from the store, delivering
per-revision batches, bookmarks and 410 Gone). Nothing in the apiserver
model calls this module to decide what it sends; the refinement test
(``tests/test_listwatch_refinement.py``) judges both machines against this
one statement, in both directions, so the two are shown to be the same
behaviour rather than assumed to be.

Why it lives in ``model`` and not ``properties``: the informer's server is
this contract (the informer machine derives its server's answers from it),
and a model may import only models (docs/layers.md). The checker's
``checker.refinement`` and the test then import it from here.

The rules, each a documented guarantee:

* [AC] Kubernetes API concepts (kubernetes.io/docs/reference/using-api/
  api-concepts/, "Efficient detection of changes"): a list answers the
  collection and its ``resourceVersion``; "the client can use that
  resourceVersion to initiate a watch", and the watch then delivers every
  change *after* that version, in order. When the requested version is
  older than the history the server keeps, the server answers **410 Gone**
  and the client must "clear its local cache, perform a new list, and start
  the watch from the resourceVersion that was returned".
* [BM] the same page, "Watch bookmarks": a BOOKMARK event carries only a
  resourceVersion, telling the client that every change up to it has been
  sent, so a later restart of the watch can resume from there.
* [EW] etcd watch API (etcd.io/docs/v3.5/learning/api/, "Watch API"): events
  are delivered in revision order, a watch may start at any revision not yet
  compacted, and a watcher whose start revision is compacted is cancelled
  with the compact revision; the events of one revision come in one
  response.
* [KV] etcd ``mvccpb.KeyValue``: "version is the version of the key. A
  deletion resets the version to zero and any modification of the key
  increases its version" — so a record of version 1 is a creation (ADDED),
  a later version a change (MODIFIED), a tombstone (version 0) DELETED.

The history (``store``) has the shape of a ``model.store.mvcc`` state:
``(revision, compact_revision, ((key, records), ...))`` with records
``(mod_revision, create_revision, version, value)``, oldest first. The
server keeps every record from ``compact_revision`` on. For the informer's
server it is the MVCC store itself; for an apiserver replica it is the
history its watch cache holds (the refinement test builds it). An object's
resourceVersion is its record's ``mod_revision``; a list's resourceVersion
is the history's ``revision``.

A watch from ``rv`` needs the records from ``rv + 1`` on, so it is **gone**
exactly when ``rv + 1 < compact_revision``. While it is not gone the next
message is either the events of the least revision after ``rv`` that holds
an event of the watched keys (the watcher's position becomes that
revision), or a BOOKMARK at any revision ``b`` with ``rv < b <= revision``
and no event of the watched keys in ``(rv, b]`` (the position becomes
``b``). Writes to keys outside the watch advance the revision without an
event: that gap is what a BOOKMARK closes.
"""

from __future__ import annotations

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"

# Record fields, as in the MVCC store's records (restated, not imported: this
# module states the contract, and reading four tuple fields needs no code of
# the store's).
_MOD, _VERSION, _VALUE = 0, 2, 3


def _records(store, key) -> tuple:
    for k, hist in store[2]:
        if k == key:
            return hist
    return ()


def event_type(record) -> str:
    """[KV]: version 1 is a creation, a later version a change, version 0 a
    tombstone."""
    if not record[_VERSION]:
        return DELETED
    return ADDED if record[_VERSION] == 1 else MODIFIED


def objects(store, keys) -> tuple:
    """[AC] A consistent list of the resource: ``((key, rv, value), ...)`` for
    every live key, at the history's current revision (its resourceVersion)."""
    rev = store[0]
    out = []
    for key in keys:
        live = None
        for rec in reversed(_records(store, key)):
            if rec[_MOD] <= rev:
                live = rec if rec[_VERSION] else None
                break
        if live is not None:
            out.append((key, live[_MOD], live[_VALUE]))
    return tuple(out)


def gone(store, rv: int) -> bool:
    """[AC][EW] A watch from ``rv`` answers 410 Gone: history it needs is
    compacted."""
    return rv + 1 < store[1]


def pending(store, keys, rv: int) -> tuple:
    """Every event of the watched keys after ``rv`` up to the history's
    revision, in revision order (then key order): ``(revision, key, type,
    value)``. Only meaningful while not :func:`gone`."""
    out = []
    for key in keys:
        for rec in _records(store, key):
            if rv < rec[_MOD] <= store[0]:
                out.append((rec[_MOD], keys.index(key), key, event_type(rec), rec[_VALUE]))
    return tuple((m, k, t, v) for m, _, k, t, v in sorted(out))


def next_event(store, keys, rv: int):
    """[AC][EW] The first event after ``rv``: ``(revision, key, type, value)``,
    or None when none is pending. Only meaningful while not :func:`gone`.

    The first element of :func:`pending`, found without building it (the
    informer's explore calls this on every state)."""
    best = None
    for key in keys:
        for rec in _records(store, key):
            mod = rec[_MOD]
            if mod > rv:
                if mod <= store[0] and (best is None or mod < best[0]):
                    best = (mod, key, event_type(rec), rec[_VALUE])
                break
    return best


def next_batch(store, keys, rv: int) -> tuple:
    """[EW] The events of the least pending revision (one response), or ``()``."""
    events = pending(store, keys, rv)
    return tuple(e for e in events if e[0] == events[0][0]) if events else ()


def bookmark_allowed(store, keys, rv: int, at: int) -> bool:
    """[BM] A BOOKMARK at ``at`` is honest: it is ahead of the position, not
    past the history's revision, and no event of the watched keys lies in
    ``(rv, at]`` (everything up to ``at`` has been sent)."""
    if not rv < at <= store[0]:
        return False
    first = next_event(store, keys, rv)
    return first is None or first[0] > at


def bookmark_revision(store, keys, rv: int) -> int | None:
    """The newest revision a BOOKMARK may carry (the current revision, when it
    is newer than ``rv`` and no event lies in between), or None."""
    return store[0] if bookmark_allowed(store, keys, rv, store[0]) else None


def allowed_bookmarks(store, keys, rv: int) -> tuple:
    """Every revision a BOOKMARK from ``rv`` may carry, oldest first."""
    return tuple(b for b in range(rv + 1, store[0] + 1) if bookmark_allowed(store, keys, rv, b))

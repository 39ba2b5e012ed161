"""The server side an informer talks to: the apiserver's list/watch contract,
stated over the etcd MVCC store of ``model.store.mvcc``.

Why a contract of our own instead of the apiserver model: an informer only
ever sees what list and watch answer, so the smallest honest server is the
store plus the rules by which those two answers are derived from it. Each
rule below is a documented guarantee, not a guess:

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
  with the compact revision.

Mapping onto the store: an object is a key under a resource prefix
(``pods/a``); its resourceVersion is the key's ``mod_revision``; a list is a
read of every key of the resource at the current revision, and its
resourceVersion is that store revision. Events are the store's history
records: version 1 is ADDED, a later version MODIFIED, a tombstone DELETED.
Writes to other resources (``configmaps/x``) advance the revision without
an event for this watch: that gap is what a BOOKMARK closes.

A watch from ``rv`` needs the records at revisions ``rv + 1`` onwards; the
store keeps every record at or after its compact revision, so the watch is
**gone** exactly when ``rv + 1 < compact_revision``.
"""

from __future__ import annotations

from kubemc.model.store.mvcc import R_MOD, R_VALUE, R_VERSION, history, record_at

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"


def objects(store, keys) -> tuple:
    """A consistent list of the resource: ``((key, rv, value), ...)`` for
    every live key, at the store's current revision."""
    rev = store[0]
    out = []
    for key in keys:
        rec = record_at(history(store, key), rev)
        if rec is not None:
            out.append((key, rec[R_MOD], rec[R_VALUE]))
    return tuple(out)


def gone(store, rv: int) -> bool:
    """A watch from ``rv`` would answer 410 Gone: history it needs is
    compacted."""
    return rv + 1 < store[1]


def next_event(store, keys, rv: int):
    """The first event of the resource after ``rv``:
    ``(revision, key, type, value)``, or None when none is pending.

    Only meaningful while not :func:`gone` (the records are then all kept).
    """
    best = None
    for key in keys:
        for rec in history(store, key):
            mod = rec[R_MOD]
            if mod > rv:
                if best is None or mod < best[0]:
                    if not rec[R_VERSION]:
                        kind = DELETED
                    elif rec[R_VERSION] == 1:
                        kind = ADDED
                    else:
                        kind = MODIFIED
                    best = (mod, key, kind, rec[R_VALUE])
                break
    return best


def bookmark_revision(store, keys, rv: int) -> int | None:
    """The resourceVersion a BOOKMARK may carry: the current revision, when
    it is newer than ``rv`` and no event of the resource lies in between."""
    if store[0] <= rv or next_event(store, keys, rv) is not None:
        return None
    return store[0]

"""The apiserver's REST operations over the store: create, get, list, update,
delete — each a pure function ``(store, request…) -> (store, Status)``.

Why every write is a store transaction comparing ``mod_revision``: that is
Kubernetes' optimistic put (the storage layer's GuaranteedUpdate and Create):
the write is applied only if the key is still at the revision the apiserver
read, so two simultaneous updates are serialized by the store and the loser
gets 409 Conflict and must retry — seeds/004: "Simultaneous requests to
update a value all travel via the kube-apiserver, which then passes along the
request to etcd in a series … the kube-apiserver would reply with an error 409
to the requester." Never read-then-blind-write.

Status codes, from the Kubernetes API conventions ("HTTP Status codes",
"Concurrency Control and Consistency") and "Resource Version Semantics":

* 200 OK, 201 Created; 202 Accepted for a delete that is deferred (the object
  has finalizers, or foreground / orphan propagation adds one);
* 404 NotFound — no such object (or a kind the apiserver does not serve);
* 409 Conflict — an update or delete carrying a resourceVersion that is no
  longer the object's (the reason is "Conflict"); 409 AlreadyExists — a create
  of an existing name;
* 422 Invalid — the object fails validation; the status names the field.

An update that changes nothing is answered 200 without a write, so it does
not move the resourceVersion (the etcd3 storage layer compares the new
bytes with the stored ones and skips an identical write).

Deletion, from the garbage-collection and finalizer documentation
(kubernetes.io/docs/concepts/architecture/garbage-collection,
…/overview/working-with-objects/finalizers): deleting an object that has
finalizers only sets its deletionTimestamp; foreground propagation adds the
``foregroundDeletion`` finalizer and orphan propagation the ``orphan``
finalizer; the object is removed when an update leaves its finalizers list
empty. deletionTimestamp can never be unset.
"""

from __future__ import annotations

import attrs

from kubemc.model.apiserver import resources as res
from kubemc.model.store.mvcc import (
    EQUAL, MOD, Compare, Delete, Put, Range, Txn, apply_valid, kv_at, revision,
)

OK, CREATED, ACCEPTED = 200, 201, 202
FORBIDDEN, NOT_FOUND, CONFLICT, GONE, INVALID = 403, 404, 409, 410, 422

BACKGROUND, FOREGROUND, ORPHAN = "Background", "Foreground", "Orphan"
POLICIES = (BACKGROUND, FOREGROUND, ORPHAN)
FOREGROUND_FINALIZER, ORPHAN_FINALIZER = "foregroundDeletion", "orphan"

#: Watch event types (the apiserver's watch.EventType).
ADDED, MODIFIED, DELETED, BOOKMARK = "ADDED", "MODIFIED", "DELETED", "BOOKMARK"


@attrs.frozen(slots=True)
class Status:
    """An apiserver answer: HTTP code, reason, the resourceVersion it speaks
    of (the object's, or the store revision of a list), and the object or, for
    a 422, the invalid field."""

    code: int
    reason: str
    resource_version: int = 0
    detail: object = None

    @property
    def ok(self) -> bool:
        return self.code < 300


def current(store, key: str):
    """(object, resourceVersion) of the live object at ``key``, or (None, 0)."""
    kv = kv_at(store, key)
    if kv is None:
        return None, 0
    return res.decode(kv.value), kv.mod_revision


def get(store, key: str) -> Status:
    obj, rv = current(store, key)
    if obj is None:
        return Status(NOT_FOUND, "NotFound")
    return Status(OK, "OK", rv, obj)


def list_at(store, keys, rev: int = 0) -> Status:
    """A consistent list of ``keys`` as of store revision ``rev`` (0: current,
    the quorum read of resourceVersion unset): every key read at the same
    revision of one store value, so the items form one snapshot. The status's
    resourceVersion is the snapshot's revision."""
    at = rev if rev > 0 else revision(store)
    items = []
    for k in keys:
        kv = kv_at(store, k, at)
        if kv is not None:
            items.append((k, kv.mod_revision))
    return Status(OK, "OK", at, tuple(items))


def _cas(store, key: str, expected_mod: int, op):
    """One optimistic write: ``op`` applies only if ``key`` is still at
    ``expected_mod`` (0: absent). Returns (store, new revision or 0)."""
    txn = Txn((Compare(key, MOD, EQUAL, expected_mod),), (op,), (Range(key),))
    new, resp = apply_valid(store, txn)
    return new, (resp.revision if resp.succeeded else 0)


def _validate(obj: tuple) -> Status | None:
    """The answer refusing ``obj`` before any write — 404 for a kind the
    apiserver does not serve, 422 naming the invalid field — or None."""
    try:
        field = res.invalid_field(obj)
    except res.UnknownKind:
        return Status(NOT_FOUND, "NotFound", detail=obj[res.KIND])
    if field is not None:
        return Status(INVALID, "Invalid", detail=field)
    return None


def create(store, obj: tuple) -> tuple:
    refused = _validate(obj)
    if refused is not None:
        return store, refused
    key = res.key_of(obj)
    # the uid is derived from the revision the create is written at: revisions
    # never repeat, so neither do uids [NAMES]
    stored = res.for_create(obj, f"uid-{revision(store) + 1}")
    new, rev = _cas(store, key, 0, Put(key, res.encode(stored)))
    if not rev:
        return store, Status(CONFLICT, "AlreadyExists")
    return new, Status(CREATED, "Created", rev, stored)


def update(store, obj: tuple, resource_version: int) -> tuple:
    """Replace ``obj``'s stored object, if it is still at ``resource_version``.

    The compare is the store's, in the same transaction as the write; a stale
    resourceVersion writes nothing and answers 409 Conflict. An update that
    leaves a deleting object without finalizers removes it (a second,
    equally guarded write)."""
    refused = _validate(obj)
    if refused is not None:
        return store, refused
    key = res.key_of(obj)
    old, rv = current(store, key)
    if old is None:
        return store, Status(NOT_FOUND, "NotFound")
    stored = res.for_update(old, obj)
    # no resourceVersion in the request: an unconditional update, still
    # guarded by the version this request read
    expected = resource_version or rv
    if stored == old:
        # nothing changes: the storage layer skips the write, so the
        # resourceVersion stays (the precondition still applies)
        if expected != rv:
            return store, Status(CONFLICT, "Conflict", rv)
        return store, Status(OK, "OK", rv, old)
    new, rev = _cas(store, key, expected, Put(key, res.encode(stored)))
    if not rev:
        return store, Status(CONFLICT, "Conflict", rv)
    if stored[res.DELETING] and not stored[res.FINALIZERS]:
        new, gone = _cas(new, key, rev, Delete(key))
        return new, Status(OK, "OK", gone, None)
    return new, Status(OK, "OK", rev, stored)


def delete(store, key: str, policy: str = BACKGROUND, resource_version: int = 0) -> tuple:
    """DELETE with a propagation policy and an optional resourceVersion
    precondition (0: none — the current version is compared instead)."""
    obj, rv = current(store, key)
    if obj is None:
        return store, Status(NOT_FOUND, "NotFound")
    if resource_version and resource_version != rv:
        return store, Status(CONFLICT, "Conflict", rv)
    # the policy decides which garbage-collector finalizer the object carries:
    # a later delete with another policy replaces it (Orphan and Foreground
    # exclude each other; Background asks for neither)
    wanted = {FOREGROUND: (FOREGROUND_FINALIZER,), ORPHAN: (ORPHAN_FINALIZER,)}.get(policy, ())
    finalizers = tuple(f for f in obj[res.FINALIZERS]
                       if f not in (FOREGROUND_FINALIZER, ORPHAN_FINALIZER) or f in wanted)
    finalizers += tuple(f for f in wanted if f not in finalizers)
    if not finalizers and obj[res.FINALIZERS]:
        # a policy change that empties the list: recorded like any update that
        # empties it, then the object goes
        emptied = obj[:res.FINALIZERS] + ((), obj[res.OWNERS], 1) + obj[res.SPEC:]
        store, rv = _cas(store, key, rv, Put(key, res.encode(emptied)))
    if not finalizers:
        new, rev = _cas(store, key, rv, Delete(key))
        return new, Status(OK, "OK", rev)
    if obj[res.DELETING] and finalizers == obj[res.FINALIZERS]:
        return store, Status(ACCEPTED, "Accepted", rv, obj)  # already being deleted
    marked = obj[:res.FINALIZERS] + (finalizers, obj[res.OWNERS], 1) + obj[res.SPEC:]
    new, rev = _cas(store, key, rv, Put(key, res.encode(marked)))
    return new, Status(ACCEPTED, "Accepted", rev, marked)


def event_type(record) -> str:
    """The watch event a store record is: a tombstone is DELETED, version 1
    (a creation) ADDED, any later version MODIFIED."""
    version = record[2]
    if version == 0:
        return DELETED
    return ADDED if version == 1 else MODIFIED


def events_at(store, rev: int) -> tuple:
    """The watch events of store revision ``rev``: (rev, key, type) for every
    key written at it, in key order (etcd delivers a revision's events
    together)."""
    out = []
    for k, hist in store[2]:
        for rec in hist:
            if rec[0] == rev:
                out.append((rev, k, event_type(rec)))
    return tuple(out)

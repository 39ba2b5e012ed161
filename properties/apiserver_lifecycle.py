"""Properties of deletion (``model.apiserver.lifecycle``): finalizers and the
garbage collector's propagation policies.

They are decided from the store alone — which keys gained a tombstone in a
step, and the objects recorded before it — so a seeded bug in the machine
cannot bend them. "Removed" means the key's history gained a tombstone.
"""

from __future__ import annotations

from model.apiserver import registry
from model.apiserver import resources as res
from model.apiserver.lifecycle import blocks, refers_to
from model.store import mvcc
from properties.core import TRANSITION, Property
from properties.mvcc import appended

_FINALIZERS = ("kubernetes.io/docs/concepts/overview/working-with-objects/finalizers: "
               "deleting an object with finalizers only marks it (deletionTimestamp); "
               "'when the finalizers field is emptied, the object is deleted'; Kubernetes "
               "API conventions (metadata.finalizers)")
_GC = ("kubernetes.io/docs/concepts/architecture/garbage-collection, 'Cascading deletion' "
       "and 'Orphaned dependents'; …/overview/working-with-objects/owners-dependents "
       "(blockOwnerDeletion)")
_SEED = ("seeds/000: 'all the administrative tasks are coordinated by the kub-apiserver'; "
         "'controllers are watch-loops … in case of a mismatch corrective action is taken'")


def removed(before, after) -> list:
    """Keys whose history gained a tombstone in this step."""
    return [key for key, rec in appended(before, after).items() if not rec[mvcc.R_VERSION]]


def _last_live(hist):
    for rec in reversed(hist):
        if rec[2]:
            return res.decode(rec[3])
    return None


def never_removed_with_finalizer(m, before, step, after) -> bool:
    """An object is removed only once its finalizers list is empty: the last
    version of it the store recorded before its tombstone has no finalizers."""
    for key in removed(before, after):
        obj = _last_live(mvcc.history(after, key))
        if obj is not None and obj[res.FINALIZERS]:
            return False
    return True


def _owner(m, store):
    return registry.current(store, m.keys[0])[0]


def orphans_survive_their_owner(m, before, step, after) -> bool:
    """While the owner carries the ``orphan`` finalizer the garbage collector
    removes none of its dependents, and when the garbage collector lets such an
    owner go, no surviving pod still refers to it. (A client's later delete
    with another policy legitimately changes what happens; it is not the
    garbage collector's doing.)"""
    owner = _owner(m, before)
    if owner is None or registry.ORPHAN_FINALIZER not in owner[res.FINALIZERS]:
        return True
    if not step.name.startswith("Gc"):
        return True  # a client may change its mind (a later delete with another policy)
    uid = owner[res.UID]
    gone = removed(before, after)
    for key in gone:
        if key != m.keys[0]:
            dep = _last_live(mvcc.history(before, key))
            if dep is not None and refers_to(dep, uid):
                return False
    if m.keys[0] in gone:
        for key in m.keys[1:]:
            dep = registry.current(after, key)[0]
            if dep is not None and refers_to(dep, uid):
                return False
    return True


def foreground_waits_for_dependents(m, before, step, after) -> bool:
    """The garbage collector removes an owner deleted in the foreground
    (carrying ``foregroundDeletion``) only after every dependent that blocks
    its deletion is gone."""
    owner = _owner(m, before)
    if owner is None or registry.FOREGROUND_FINALIZER not in owner[res.FINALIZERS]:
        return True
    if m.keys[0] not in removed(before, after) or not step.name.startswith("Gc"):
        return True  # a client's later delete with another policy is not the GC's doing
    uid = owner[res.UID]
    return not any(blocks(dep, uid) for key in m.keys[1:]
                   for dep in (registry.current(after, key)[0],) if dep is not None)


_C = "apiserver"

PROPERTIES = (
    Property("never_removed_with_finalizer", _C, TRANSITION,
             "An object is never removed while a finalizer remains on it.",
             f"{_FINALIZERS}; {_SEED}", never_removed_with_finalizer),
    Property("orphans_survive_their_owner", _C, TRANSITION,
             "The dependents of an owner deleted with propagationPolicy Orphan are not "
             "deleted by the garbage collector, and lose their ownerReference before "
             "the owner goes.", _GC, orphans_survive_their_owner),
    Property("foreground_waits_for_dependents", _C, TRANSITION,
             "A foreground deletion removes the owner only after its blocking dependents "
             "are gone.", _GC, foreground_waits_for_dependents),
)

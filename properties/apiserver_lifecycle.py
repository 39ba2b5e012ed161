"""Properties of deletion (``model.apiserver.lifecycle``): finalizers and the
garbage collector's propagation policies.

They are decided from the store — which keys gained a tombstone in a step,
and the objects recorded before and after it — and from the client request a
step is (a DELETE names its object and propagation policy), never from which
actor of the machine took it, so a seeded bug in any actor is judged. The
ownerReference tests are restated here rather than imported from the machine.
"Removed" means the key's history gained a tombstone.
"""

from __future__ import annotations

from kubemc.model.apiserver import registry
from kubemc.model.apiserver import resources as res
from kubemc.model.store import mvcc
from kubemc.properties.core import EVENTUALLY_ALWAYS, TRANSITION, Property
from kubemc.properties.mvcc import appended

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


def _refers_to(obj: tuple, uid: str) -> bool:
    """``obj`` names the owner ``uid`` in its ownerReferences."""
    return any(ref[2] == uid for ref in obj[res.OWNERS])


def _blocks(obj: tuple, uid: str) -> bool:
    """``obj`` names the owner ``uid`` with blockOwnerDeletion set."""
    return any(ref[2] == uid and ref[3] for ref in obj[res.OWNERS])


def _policy_change(m, step, policy: str) -> bool:
    """The step is a client's DELETE of the owner asking for a propagation
    policy other than ``policy``: the apiserver then replaces or drops the
    garbage collector's finalizer, as the owner's deleter asked (finalizers
    documentation; the delete request names the policy)."""
    return step.name == "Delete" and tuple(step.params)[:1] == (0,) \
        and tuple(step.params)[1:] != (policy,)


def _objects(store):
    """Every object the store holds now, under whatever key: read from the
    store's own keys, not from the machine's table of the keys it acts on (a
    wrong table would hide the very objects it fails to act on)."""
    for key in mvcc.keys_of(store):
        obj = registry.current(store, key)[0]
        if obj is not None:
            yield key, obj


def _dependents(m, store):
    for key, dep in _objects(store):
        if key != m.keys[0]:
            yield key, dep


def _gc_finalizer_dropped(m, before, after, finalizer) -> tuple | None:
    """The owner (before the step) if it carried ``finalizer`` and no longer
    does after it — the finalizer was removed, or the owner itself — else
    None."""
    owner = _owner(m, before)
    if owner is None or finalizer not in owner[res.FINALIZERS]:
        return None
    now = _owner(m, after)
    if now is not None and now[res.UID] == owner[res.UID] and finalizer in now[res.FINALIZERS]:
        return None
    return owner


def orphans_survive_their_owner(m, before, step, after) -> bool:
    """Whoever acts: while the owner carries the ``orphan`` finalizer no
    dependent that refers to it is removed unless a client asked for that pod's
    deletion (it was already being deleted, or the step is the client's DELETE
    of it); and the ``orphan`` finalizer leaves the owner (or the owner goes)
    only once no surviving pod still refers to it — unless the owner's
    deleter asked for another propagation policy."""
    owner = _owner(m, before)
    if owner is None or registry.ORPHAN_FINALIZER not in owner[res.FINALIZERS]:
        return True
    uid = owner[res.UID]
    gone = removed(before, after)
    for key in gone:
        if key == m.keys[0]:
            continue
        dep = _last_live(mvcc.history(before, key))
        if dep is None or not _refers_to(dep, uid):
            continue
        named = tuple(step.params)[:1]
        asked = dep[res.DELETING] or (step.name == "Delete" and named != (0,)
                                      and m.keys[named[0]] == key)
        if not asked:
            return False
    if _gc_finalizer_dropped(m, before, after, registry.ORPHAN_FINALIZER) is not None \
            and not _policy_change(m, step, registry.ORPHAN):
        if any(_refers_to(dep, uid) for _, dep in _dependents(m, after)):
            return False
    return True


def foreground_waits_for_dependents(m, before, step, after) -> bool:
    """Whoever acts — the garbage collector, any finalizer's controller, any
    update — ``foregroundDeletion`` never leaves the owner (nor the owner the
    store) while a dependent that blocks its deletion exists; only a client's
    DELETE of the owner asking for another propagation policy may take it
    away."""
    owner = _gc_finalizer_dropped(m, before, after, registry.FOREGROUND_FINALIZER)
    if owner is None or _policy_change(m, step, registry.FOREGROUND):
        return True
    uid = owner[res.UID]
    return not any(_blocks(dep, uid) for _, dep in _dependents(m, after))


def background_dependents_collected(m, store) -> bool:
    """No object names, in its ownerReferences, an owner that no longer
    exists, unless it is itself being deleted. Read from the store alone:
    the uids of the objects that exist now against the uids the references
    name — whatever the machine's actors are."""
    objects = [o for _, o in _objects(store)]
    alive = {o[res.UID] for o in objects}
    return all(o[res.DELETING] or all(ref[2] in alive for ref in o[res.OWNERS])
               for o in objects)


_C = "apiserver"

PROPERTIES = (
    Property("never_removed_with_finalizer", _C, TRANSITION,
             "An object is never removed while a finalizer remains on it.",
             f"{_FINALIZERS}; {_SEED}", never_removed_with_finalizer),
    Property("orphans_survive_their_owner", _C, TRANSITION,
             "While an owner carries the orphan finalizer, no dependent is removed unless a "
             "client deleted it, and the finalizer (or the owner) goes only after every "
             "dependent has lost its ownerReference — whoever acts, unless the owner's "
             "deleter asks for another propagation policy.", _GC,
             orphans_survive_their_owner),
    Property("foreground_waits_for_dependents", _C, TRANSITION,
             "foregroundDeletion never leaves the owner (nor the owner the store) while a "
             "blocking dependent exists, whoever removes it, unless the owner's deleter "
             "asks for another propagation policy.", _GC, foreground_waits_for_dependents),
    Property("background_dependents_collected", _C, EVENTUALLY_ALWAYS,
             "Once clients stop deleting, every dependent whose owner no longer exists is "
             "eventually deleted (or being deleted) by the garbage collector, and stays so: "
             "no object is left naming an absent owner.",
             f"{_GC}: 'in background cascading deletion, the Kubernetes API server deletes "
             "the owner object immediately and the garbage collector controller cleans up "
             "the dependent objects in the background'; KEP/design 'garbage collection' "
             "(objects that once had an owner but no longer have one are deleted); Anvil "
             "(OSDI 2024) §3, eventually-stable reconciliation",
             background_dependents_collected,
             assumption="the garbage collector's deletes are not refused forever (a "
                        "delete at a stale resourceVersion is retried on fresh state)"),
)

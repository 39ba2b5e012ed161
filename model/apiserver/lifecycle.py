"""Deletion: finalizers, ownerReferences and the garbage collector.

One owner (a ReplicaSet) and ``dependents`` pods that name it in their
ownerReferences with blockOwnerDeletion. Clients delete objects with a
propagation policy; a finalizer's controller removes its finalizer once the
object is being deleted; the garbage collector — the apiserver side's
system actor — carries out the propagation. Every change is one apiserver
request through ``registry`` (a store txn comparing mod_revision), so the
garbage collector races the clients exactly as the real one does.

Sources (consulted, not copied): kubernetes.io/docs/concepts/architecture/
garbage-collection ("Cascading deletion": in foreground deletion the owner
gets a deletionTimestamp and the ``foregroundDeletion`` finalizer, the
garbage collector deletes the dependents, and "after the owner object
deletes all blocking dependents, the controller deletes the owner"; in
background deletion the owner is deleted at once and the dependents are
cleaned up after; orphaned dependents have their ownerReferences removed and
are left alone); …/overview/working-with-objects/finalizers (an object with
finalizers is only marked for deletion; it goes when the finalizers list is
empty); …/owners-dependents (blockOwnerDeletion).

Actions:

* ``Delete(i, policy)`` (environment) — object ``i`` (0: the owner, 1..:
  the pods) with ``Background`` / ``Foreground`` / ``Orphan`` (pods: background);
* ``RemoveFinalizer(i)`` (environment) — the controller of the custom
  finalizer ``example.com/protect`` releases a deleting object;
* ``GcOrphan(i)`` — strip the owner's reference from pod ``i`` while the owner
  carries ``orphan``; ``GcReleaseOrphan`` — then drop the ``orphan``
  finalizer; ``GcDeleteDependent(i)`` — delete pod ``i`` while the owner
  carries ``foregroundDeletion``; ``GcReleaseForeground`` — drop that
  finalizer once no blocking dependent is left; ``GcCollect(i)`` — delete pod
  ``i`` whose owner no longer exists (all system).

Bound: ``max_revision`` — a client request whose writes would take the
store past it never happens (clients may switch policies back and forth
forever, so the space needs a bound). The garbage collector's requests are
not cut by it: each removes a reference, a finalizer or an object, so they
are finite anyway, and cutting them would leave deletions half done at the
bound — states that look stuck to the liveness check although the real
collector would go on (the bound is on the environment, as
``properties.core`` has it: "faults stop" and "writes stop" are budgets). Initial states: every combination of the owner and the first pod carrying
the custom finalizer or not, so deletions with and without finalizers are
both explored.
"""

from __future__ import annotations

from kubemc.model.apiserver import registry
from kubemc.model.apiserver import resources as res
from kubemc.model.kernel import ENVIRONMENT, SYSTEM, Machine, Mutant, Step, action
from kubemc.model.store import mvcc

NAMESPACE = "default"
PROTECT = "example.com/protect"
OWNER_NAME = "rs"
#: the owner is created first, at revision 2, and a uid is derived from the
#: revision that creates the object (``registry.create``)
OWNER_UID = "uid-2"
DELETE_IGNORES_FINALIZERS = "delete_ignores_finalizers"
GC_DELETES_ORPHANS = "gc_deletes_orphans"
FOREGROUND_OWNER_FIRST = "foreground_owner_first"
CONTROLLER_CLEARS_FOREGROUND = "controller_clears_foreground"
GC_BACKGROUND_NOT_CASCADING = "gc_background_not_cascading"
CONTROLLER_CLEARS_ORPHAN = "controller_clears_orphan"


def owner_key() -> str:
    return res.key("ReplicaSet", NAMESPACE, OWNER_NAME)


def pod_key(i: int) -> str:
    return res.key("Pod", NAMESPACE, f"p{i}")


def refers_to(obj: tuple, uid: str) -> bool:
    return any(ref[2] == uid for ref in obj[res.OWNERS])


def blocks(obj: tuple, uid: str) -> bool:
    return any(ref[2] == uid and ref[3] for ref in obj[res.OWNERS])


class ApiserverLifecycle(Machine):
    """The actions are declared on their handlers (``@action``): the clients'
    ``Delete`` and ``RemoveFinalizer`` (environment) and the garbage
    collector's ``Gc*`` steps (system)."""

    name = "apiserver-lifecycle"
    mutants = {
        DELETE_IGNORES_FINALIZERS: Mutant(
            "a delete removes an object at once although it still has finalizers",
            violates="never_removed_with_finalizer"),
        GC_DELETES_ORPHANS: Mutant(
            "the garbage collector deletes the dependents of an owner deleted with "
            "propagationPolicy Orphan instead of removing their ownerReferences",
            violates="orphans_survive_their_owner"),
        FOREGROUND_OWNER_FIRST: Mutant(
            "the garbage collector drops the owner's foregroundDeletion finalizer without "
            "waiting for its blocking dependents to go",
            violates="foreground_waits_for_dependents"),
        CONTROLLER_CLEARS_FOREGROUND: Mutant(
            "the controller of the custom finalizer clears the whole finalizers list "
            "(foregroundDeletion with it) instead of removing only its own",
            violates="foreground_waits_for_dependents"),
        GC_BACKGROUND_NOT_CASCADING: Mutant(
            "the garbage collector never deletes the dependents of an owner that is "
            "already gone (deleted with propagationPolicy Background): they stay forever "
            "(kubernetes/kubernetes#44046 and #47843, fixed by #44058: 'the garbage "
            "collector didn't delete pods when a deployment was deleted with "
            "PropagationPolicy=Background')",
            violates="background_dependents_collected"),
        CONTROLLER_CLEARS_ORPHAN: Mutant(
            "the controller of the custom finalizer clears the whole finalizers list "
            "(orphan with it) instead of removing only its own",
            violates="orphans_survive_their_owner"),
    }

    def __init__(self, dependents: int = 2, max_revision: int = 10,
                 mutant: str | None = None):
        super().__init__(mutant)
        if not 1 <= dependents <= 3:
            raise ValueError("apiserver-lifecycle bounds: 1 <= dependents <= 3")
        if max_revision < dependents + 2:
            raise ValueError("apiserver-lifecycle bounds: max_revision >= dependents + 2 "
                             "(the initial objects take revisions 2 .. dependents + 2)")
        self.dependents, self.max_revision = dependents, max_revision
        self.keys = (owner_key(),) + tuple(pod_key(i) for i in range(1, dependents + 1))

    def config(self):
        return {"dependents": self.dependents, "max_revision": self.max_revision}

    def init_states(self):
        for owner_protected in (False, True):
            for pod_protected in (False, True):
                yield self._initial(owner_protected, pod_protected)

    def _initial(self, owner_protected: bool, pod_protected: bool):
        store = mvcc.INITIAL
        owner = res.make("ReplicaSet", NAMESPACE, OWNER_NAME, spec=(("replicas", 2),),
                         finalizers=(PROTECT,) if owner_protected else ())
        store, status = registry.create(store, owner)
        uid = status.detail[res.UID]
        if uid != OWNER_UID:
            raise RuntimeError(f"the owner was created with uid {uid}, not {OWNER_UID}")
        for i in range(1, self.dependents + 1):
            pod = res.make("Pod", NAMESPACE, f"p{i}", spec=(("containers", ("app",)),),
                           owners=(("ReplicaSet", OWNER_NAME, uid, 1),),
                           finalizers=(PROTECT,) if pod_protected and i == 1 else ())
            store, _ = registry.create(store, pod)
        return store

    # -- steps -------------------------------------------------------------------
    def steps(self, state):
        for policy in registry.POLICIES:
            yield Step("Delete", (0, policy))
        pods = range(1, self.dependents + 1)
        for i in pods:
            yield Step("Delete", (i, registry.BACKGROUND))
        for i in range(len(self.keys)):
            yield Step("RemoveFinalizer", (i,))
        for i in pods:
            yield Step("GcOrphan", (i,))
            yield Step("GcDeleteDependent", (i,))
            yield Step("GcCollect", (i,))
        yield Step("GcReleaseOrphan")
        yield Step("GcReleaseForeground")

    def apply(self, state, step):
        new = super().apply(state, step)
        if new is not None and self.tags[step.name] == ENVIRONMENT \
                and mvcc.revision(new) > self.max_revision:
            return None  # a client request beyond the bound never happens
        return new

    @action("Delete", tag=ENVIRONMENT)
    def _Delete(self, store, i, policy):
        if policy not in registry.POLICIES or (i and policy != registry.BACKGROUND):
            return None
        key = self.keys[i]
        obj, rv = registry.current(store, key)
        if obj is None:
            return None
        if self.mutant == DELETE_IGNORES_FINALIZERS and policy == registry.BACKGROUND:
            new, _ = mvcc.apply_request(store, mvcc.Delete(key))
            return new
        new, status = registry.delete(store, key, policy)
        return new if new is not store else None

    @action("RemoveFinalizer", tag=ENVIRONMENT)
    def _RemoveFinalizer(self, store, i):
        obj, rv = registry.current(store, self.keys[i])
        if obj is None or not obj[res.DELETING] or PROTECT not in obj[res.FINALIZERS]:
            return None  # its controller releases an object only once it is deleting
        if self.mutant in (CONTROLLER_CLEARS_FOREGROUND, CONTROLLER_CLEARS_ORPHAN):
            new, status = registry.update(store, res.replace(obj, res.FINALIZERS, ()), rv)
            return new if status.ok else None
        return self._without_finalizer(store, obj, rv, PROTECT)

    def _without_finalizer(self, store, obj, rv, finalizer):
        kept = tuple(f for f in obj[res.FINALIZERS] if f != finalizer)
        new, status = registry.update(store, res.replace(obj, res.FINALIZERS, kept), rv)
        return new if status.ok else None

    def _owner(self, store):
        return registry.current(store, self.keys[0])

    def _dependent(self, store, i):
        if not 1 <= i <= self.dependents:
            return None, 0
        obj, rv = registry.current(store, self.keys[i])
        if obj is None or not refers_to(obj, OWNER_UID):
            return None, 0
        return obj, rv

    @action("GcOrphan", tag=SYSTEM)
    def _GcOrphan(self, store, i):
        owner, _ = self._owner(store)
        if owner is None or registry.ORPHAN_FINALIZER not in owner[res.FINALIZERS]:
            return None
        dep, rv = self._dependent(store, i)
        if dep is None:
            return None
        if self.mutant == GC_DELETES_ORPHANS:
            new, status = registry.delete(store, self.keys[i])
            return new if status.ok else None
        uid = OWNER_UID
        refs = tuple(r for r in dep[res.OWNERS] if r[2] != uid)
        new, status = registry.update(store, res.replace(dep, res.OWNERS, refs), rv)
        return new if status.ok else None

    @action("GcReleaseOrphan", tag=SYSTEM)
    def _GcReleaseOrphan(self, store):
        owner, rv = self._owner(store)
        if owner is None or registry.ORPHAN_FINALIZER not in owner[res.FINALIZERS]:
            return None
        if any(self._dependent(store, i)[0] is not None
               for i in range(1, self.dependents + 1)):
            return None  # references still to strip
        return self._without_finalizer(store, owner, rv, registry.ORPHAN_FINALIZER)

    @action("GcDeleteDependent", tag=SYSTEM)
    def _GcDeleteDependent(self, store, i):
        owner, _ = self._owner(store)
        if owner is None or registry.FOREGROUND_FINALIZER not in owner[res.FINALIZERS]:
            return None
        return self._delete_dependent(store, i)

    @action("GcReleaseForeground", tag=SYSTEM)
    def _GcReleaseForeground(self, store):
        owner, rv = self._owner(store)
        if owner is None or registry.FOREGROUND_FINALIZER not in owner[res.FINALIZERS]:
            return None
        uid = OWNER_UID
        if self.mutant != FOREGROUND_OWNER_FIRST and any(
                blocks(dep, uid) for dep in self._live_pods(store)):
            return None  # blocking dependents remain (also those still deleting)
        return self._without_finalizer(store, owner, rv, registry.FOREGROUND_FINALIZER)

    @action("GcCollect", tag=SYSTEM)
    def _GcCollect(self, store, i):
        owner, _ = self._owner(store)
        if owner is not None or self.mutant == GC_BACKGROUND_NOT_CASCADING:
            return None
        return self._delete_dependent(store, i)

    def _delete_dependent(self, store, i):
        """The collector deletes dependent ``i`` in the background, at the
        version it read — unless it is gone or already being deleted."""
        dep, rv = self._dependent(store, i)
        if dep is None or dep[res.DELETING]:
            return None
        new, status = registry.delete(store, self.keys[i], registry.BACKGROUND, rv)
        return new if status.ok else None

    def _live_pods(self, store):
        for k in self.keys[1:]:
            obj, _ = registry.current(store, k)
            if obj is not None:
                yield obj

    #: the compaction below keeps step labels (see ``Machine``): liveness
    #: may use it (``tests/test_liveness.py`` checks it on reachable states)
    canonical_keeps_steps = True

    def canonical(self, state):
        """The store compacted at its current revision. Why that is sound
        here: every action reads only current objects, and every property
        reads the current objects plus what the step itself wrote — so two
        stores that differ only in superseded history behave alike. It turns
        the many orders of the same writes into one state. It changes no
        step's name or parameters, so it is sound for liveness too (a
        label-preserving bisimulation), unlike a symmetry."""
        rev = mvcc.revision(state)
        if mvcc.compact_revision(state) >= rev:
            return state
        return mvcc.apply_valid(state, mvcc.Compact(rev))[0]

    def view(self, state):
        objects = {}
        for k in self.keys:
            obj, rv = registry.current(state, k)
            objects[k] = "absent" if obj is None else {
                "resourceVersion": rv, "uid": obj[res.UID],
                "finalizers": list(obj[res.FINALIZERS]),
                "ownerReferences": [list(r) for r in obj[res.OWNERS]],
                "deletionTimestamp": bool(obj[res.DELETING])}
        return {"revision": mvcc.revision(state), "objects": objects}

"""The garbage collector as a watch loop: delete a dependent once none of
its owners exists (Background cascading deletion), and hold an owner
deleted in the Foreground until no dependent references it.

What the real controller does (kubernetes/kubernetes
``pkg/controller/garbagecollector``), kept here: it watches owners and
dependents; when an owner goes, every dependent that references it is
queued (``attemptToDelete``); a dependent is deleted only if *none* of the
owners in its ``ownerReferences`` still exists (the real one confirms with
a live lookup; here its cache cannot hold an owner the server lacks, since
owners are never created after the start); and after a restart every
object from the initial list is examined, so an owner deleted while the
collector was down still has its dependents collected.

Foreground deletion: the apiserver marks the owner (``deletionTimestamp``
and the ``foregroundDeletion`` finalizer); the collector deletes each
dependent that has no other, solid owner, removes the references to gone or
waiting owners from a dependent that still has a solid one (every reference
here has ``blockOwnerDeletion``), and deletes the owner for good once no
dependent references it. Orphaning is not modelled (the apiserver
component's ``lifecycle`` model has it).

The world: users delete owners, in the Background or the Foreground
(``DeleteOwner``, environment, budgeted).

Objects::

    (owners, o-N)     -> () | (FOREGROUND,)      the latter: waiting for dependents
    (dependents, d-N) -> (owner names, ...)       its ownerReferences
"""

from __future__ import annotations

from kubemc.model.controllers.loop import QUEUE, ControllerLoop, delete, update
from kubemc.model.kernel import ENVIRONMENT, Mutant, Step, action

OWNERS, DEPENDENTS = "owners", "dependents"
BACKGROUND, FOREGROUND = "Background", "Foreground"

LIVE_OWNER = "deletes_with_live_owner"
SKIPS_INITIAL_LIST = "skips_initial_list"
MISSES_FOREGROUND = "misses_foreground_mark"


class GarbageCollector(ControllerLoop):
    name = "garbagecollector"
    primary = DEPENDENTS
    world_budgets = ("owner_deletions",)
    mutants = {
        LIVE_OWNER: Mutant(
            "deletes a dependent as soon as one of its owners is gone, though another "
            "still exists (the misreading of 'objects that no longer have owner references' "
            "the docs corrected to 'provided that none of the owners still exist', "
            "kubernetes/website#57139)",
            violates="gc_never_deletes_with_live_owner"),
        SKIPS_INITIAL_LIST: Mutant(
            "after a restart does not examine the objects of its initial list, so a "
            "dependent whose owner was deleted while the collector was down is never "
            "collected ('GC doesn't delete already orphaned objects after startup', "
            "kubernetes/kubernetes#109748)",
            violates="gc_collects_orphans"),
        MISSES_FOREGROUND: Mutant(
            "acts on an owner only when it disappears, not when it is marked for Foreground "
            "deletion, so the owner waits for dependents nobody deletes ('use foreground "
            "cascading deletion will be stuck when garbagecontroller lost the first update "
            "event', kubernetes/kubernetes#115570)",
            violates="gc_foreground_completes"),
    }

    def __init__(self, *, owner_deletions: int = 2, crashes: int = 1, write_failures: int = 1,
                 resyncs: int = 0, max_objects: int = 4, mutant: str | None = None):
        super().__init__(crashes=crashes, write_failures=write_failures, resyncs=resyncs,
                         max_objects=max_objects, mutant=mutant,
                         owner_deletions=owner_deletions)

    # -- the cluster it starts from ---------------------------------------------
    def initial_objects(self):
        yield [((OWNERS, "o-0"), ()), ((OWNERS, "o-1"), ()),
               ((DEPENDENTS, "d-0"), ("o-0", "o-1")), ((DEPENDENTS, "d-1"), ("o-0",))]

    # -- the graph builder: who to look at when something changed ------------------
    def handle(self, cache, key, old, new):
        if key[0] == DEPENDENTS:
            # the dependent, and the owners it referenced (one may be waiting)
            return (key,) + tuple((OWNERS, o) for o in (old or ()))
        if key[0] == OWNERS:
            if new is not None and self.mutant == MISSES_FOREGROUND:
                return ()
            dependents = tuple(k for k, owners in cache.of_kind(DEPENDENTS) if key[1] in owners)
            return dependents + ((key,) if new is not None else ())
        return ()

    def _relist(self, state):
        nxt = super()._relist(state)
        if self.mutant == SKIPS_INITIAL_LIST:
            return nxt[:QUEUE] + ((),) + nxt[QUEUE + 1:]
        return self._enqueue(nxt, (k for k, _, _ in nxt[0] if k[0] == OWNERS))

    # -- attemptToDelete -------------------------------------------------------------
    def reconcile(self, cache, key, memory):
        if key not in cache:
            return (), memory
        if key[0] == OWNERS:
            waiting = cache[key] == (FOREGROUND,)
            referenced = any(key[1] in refs for _, refs in cache.of_kind(DEPENDENTS))
            done = waiting and not referenced
            return ((delete(key, cache.rv(key)),) if done else ()), memory
        refs = cache[key]
        solid = tuple(o for o in refs if cache.get((OWNERS, o)) == ())
        if self.mutant == LIVE_OWNER and len(solid) < len(refs):
            return (delete(key, cache.rv(key)),), memory
        if not solid:
            return (delete(key, cache.rv(key)),), memory
        if len(solid) < len(refs):
            # keep the dependent, drop its references to gone or waiting owners
            return (update(key, cache.rv(key), solid),), memory
        return (), memory

    def deleting(self, key, value):
        return None  # the finalizer is the collector's own: deleting it releases the owner

    # -- the world -------------------------------------------------------------------
    def world_steps(self, state):
        if self.budget_left(state, "owner_deletions"):
            for key, value in self.objects(state).of_kind(OWNERS):
                if value == ():
                    yield Step("DeleteOwner", (key[1], BACKGROUND))
                    yield Step("DeleteOwner", (key[1], FOREGROUND))

    @action("DeleteOwner", tag=ENVIRONMENT)
    def _DeleteOwner(self, state, owner, policy):
        key = (OWNERS, owner)
        server = self.objects(state)
        if (server.get(key) != () or policy not in (BACKGROUND, FOREGROUND)
                or not self.budget_left(state, "owner_deletions")):
            return None
        value = (FOREGROUND,) if policy == FOREGROUND else None
        return self.server_write(self.spend(state, "owner_deletions"), key, value)

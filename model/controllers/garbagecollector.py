"""The garbage collector as a watch loop: delete a dependent once none of
its owners exists (Background cascading deletion).

What the real controller does (kubernetes/kubernetes
``pkg/controller/garbagecollector``), kept here: it watches owners and
dependents; when an owner goes, every dependent that references it is
queued (``attemptToDelete``); a dependent is deleted only if *none* of the
owners in its ``ownerReferences`` still exists (the real one confirms with
a live lookup; here its cache cannot hold an owner the server lacks, since
owners are never created after the start); and after a restart every
object from the initial list is examined, so an owner deleted while the
collector was down still has its dependents collected.

Foreground deletion (an owner kept with the ``foregroundDeletion`` finalizer
until its blocking dependents are gone) and orphaning are not modelled here;
the apiserver component's ``lifecycle`` model has both.

The world: users delete owners (``DeleteOwner``, environment, budgeted).

Objects::

    (owners, o-N)     -> ()
    (dependents, d-N) -> (owner names, ...)       its ownerReferences
"""

from __future__ import annotations

from model.controllers.loop import QUEUE, ControllerLoop, delete
from model.kernel import ENVIRONMENT, Mutant, Step

OWNERS, DEPENDENTS = "owners", "dependents"

LIVE_OWNER = "deletes_with_live_owner"
SKIPS_INITIAL_LIST = "skips_initial_list"


class GarbageCollector(ControllerLoop):
    name = "garbagecollector"
    primary = DEPENDENTS
    tags = {**ControllerLoop.tags, "DeleteOwner": ENVIRONMENT}
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
            return (key,)
        if key[0] == OWNERS and new is None:
            return tuple(k for k, owners in cache.of_kind(DEPENDENTS) if key[1] in owners)
        return ()

    def _relist(self, state):
        nxt = super()._relist(state)
        if self.mutant == SKIPS_INITIAL_LIST:
            return nxt[:QUEUE] + ((),) + nxt[QUEUE + 1:]
        return nxt

    # -- attemptToDelete -------------------------------------------------------------
    def reconcile(self, cache, key, memory):
        if key[0] != DEPENDENTS or key not in cache:
            return (), memory
        present = [o for o in cache[key] if (OWNERS, o) in cache]
        if self.mutant == LIVE_OWNER:
            dangling = len(present) < len(cache[key])
        else:
            dangling = not present
        return ((delete(key, cache.rv(key)),) if dangling else ()), memory

    # -- the world -------------------------------------------------------------------
    def world_steps(self, state):
        if self.budget_left(state, "owner_deletions"):
            for key, _ in self.objects(state).of_kind(OWNERS):
                yield Step("DeleteOwner", (key[1],))

    def world_apply(self, state, step):
        if step.name != "DeleteOwner" or len(step.params) != 1:
            return None
        key = (OWNERS, step.params[0])
        if key not in self.objects(state) or not self.budget_left(state, "owner_deletions"):
            return None
        return self.server_write(self.spend(state, "owner_deletions"), key, None)

"""The Namespace controller: empty a namespace that is being deleted, then
release it.

What the real controller does (kubernetes/kubernetes
``pkg/controller/namespace``, ``deletion/namespaced_resources_deleter.go``),
kept here:

* a namespace being deleted has a ``deletionTimestamp`` and keeps the
  ``kubernetes`` finalizer in ``spec.finalizers``; the controller deletes
  every object in it and, while some remain, tries again (it requeues the
  namespace with an estimate of how long the rest will take);
* only when nothing is left does it remove its finalizer (the ``finalize``
  subresource) and delete the namespace again, which the apiserver then
  removes because no finalizer is left;
* objects are deleted gracefully where their kind says so: a deleted pod
  stays, terminating, until its kubelet has stopped it (``PodGone``); a
  ConfigMap goes at once.

Here the controller learns that content is gone from the watch events of
that content (the requeue-with-estimate of the real controller, made exact:
it looks again exactly when something changed). The apiserver's
NamespaceLifecycle admission plugin refuses to create objects in a
terminating namespace (docs, "Namespaces"), so once the deletion has started
the content only shrinks.

The world: a user creates objects in the namespace (``Create``,
environment, budgeted) and deletes the namespace (``DeleteNamespace``,
environment, once); the kubelet removes terminating pods (``PodGone``,
system).

Objects::

    (namespaces, ns) -> (terminating, finalizer)
    (pods, p-N)      -> (terminating,)        all objects live in ``ns``
    (configmaps, c-N) -> ()
"""

from __future__ import annotations

from kubemc.model.controllers.loop import ControllerLoop, delete, update
from kubemc.model.kernel import ENVIRONMENT, SYSTEM, Mutant, Step, action

NS = ("namespaces", "ns")
PODS, CONFIGMAPS = "pods", "configmaps"
CONTENT = (PODS, CONFIGMAPS)

TERMINATING_AS_GONE = "treats_terminating_as_gone"
FINALIZES_EARLY = "finalizes_early"
MISSES_CONTENT_EVENTS = "misses_content_events"


class NamespaceController(ControllerLoop):
    name = "namespace"
    primary = "namespaces"
    world_budgets = ("creates", "deletions")
    mutants = {
        TERMINATING_AS_GONE: Mutant(
            "ignores the deletionTimestamp of the content: releases the namespace once every "
            "object in it is marked for deletion instead of gone, so pods still terminating "
            "outlive their namespace ('Deleting a namespace sometimes leaves orphaned "
            "deployment and pods which can't be deleted', kubernetes/kubernetes#36891; "
            "kubernetes/kubernetes#49027)",
            violates="namespace_no_orphans"),
        FINALIZES_EARLY: Mutant(
            "removes the namespace's kubernetes finalizer in the same pass that deletes its "
            "content, before the content is gone: the namespace can disappear first and "
            "leave orphans (gardener/gardener#7849 fixed a controller that finalized "
            "namespaces 'after the grace period in any case', which 'could have led to "
            "orphan resources')",
            violates="namespace_finalized_only_when_empty"),
        MISSES_CONTENT_EVENTS: Mutant(
            "deletes the content once and does not look again when it goes: with a pod still "
            "terminating at that moment, nothing wakes the controller and the namespace "
            "stays in Terminating for ever ('Kubernetes namespaces stuck in terminating "
            "state', kubernetes/kubernetes#19317; kubernetes/kubernetes#60807)",
            violates="namespace_deletion_completes"),
    }

    def __init__(self, *, pods: int = 1, configmaps: int = 1, creates: int = 1,
                 deletions: int = 1, crashes: int = 1, write_failures: int = 1,
                 resyncs: int = 0, max_objects: int = 5, mutant: str | None = None):
        super().__init__(crashes=crashes, write_failures=write_failures, resyncs=resyncs,
                         max_objects=max_objects, mutant=mutant, creates=creates,
                         deletions=deletions)
        self.pods = pods
        self.configmaps = configmaps

    def config(self):
        return {"pods": self.pods, "configmaps": self.configmaps, **super().config()}

    # -- the cluster it starts from ---------------------------------------------
    def initial_objects(self):
        yield ([(NS, (False, True))]
               + [((PODS, f"p-{i}"), (False,)) for i in range(self.pods)]
               + [((CONFIGMAPS, f"c-{i}"), ()) for i in range(self.configmaps)])

    # -- the event handler -----------------------------------------------------------
    def handle(self, cache, key, old, new):
        if key == NS:
            return (NS,)
        if key[0] in CONTENT and self.mutant != MISSES_CONTENT_EVENTS:
            return (NS,)
        return ()

    # -- the reconcile -------------------------------------------------------------
    def reconcile(self, cache, key, memory):
        if key != NS or key not in cache or not cache[NS][0]:
            return (), memory
        content = [(k, v) for k in CONTENT for k, v in cache.of_kind(k)]
        live = [k for k, v in content if not _terminating(k, v)]
        if live:
            # with the version it saw: a stale view is refused (409) and
            # retried, rather than deleting what is already being deleted
            deletes = tuple(delete(k, cache.rv(k)) for k in live)
            if self.mutant == FINALIZES_EARLY and cache[NS][1]:
                return (update(NS, cache.rv(NS), (True, False)),) + deletes, memory
            return deletes, memory
        if content and self.mutant != TERMINATING_AS_GONE:
            return (), memory  # wait until the terminating objects are gone
        if cache[NS][1]:
            return (update(NS, cache.rv(NS), (True, False)), delete(NS)), memory
        return (delete(NS),), memory

    # -- deletion --------------------------------------------------------------------
    def deleting(self, key, value):
        if key[0] == PODS:
            return (True,)
        if key == NS and value[1]:
            return (True, True)  # held by its finalizer
        return None

    # -- the world -------------------------------------------------------------------
    def world_steps(self, state):
        server = self.objects(state)
        if NS in server and not server[NS][0]:
            if self.budget_left(state, "creates"):
                for kind in CONTENT:
                    yield Step("Create", (kind,))
            if self.budget_left(state, "deletions"):
                yield Step("DeleteNamespace")
        for key, (terminating,) in server.of_kind(PODS):
            if terminating:
                yield Step("PodGone", (key[1],))

    def _admitted(self, server) -> bool:
        # NamespaceLifecycle admission: no new content in a terminating (or
        # missing) namespace, and no second delete of it
        return NS in server and not server[NS][0]

    @action("Create", tag=ENVIRONMENT)
    def _Create(self, state, kind):
        server = self.objects(state)
        if not self._admitted(server) or kind not in CONTENT \
                or not self.budget_left(state, "creates"):
            return None
        name = next(f"{kind[0]}-{i}" for i in range(len(server) + 1)
                    if (kind, f"{kind[0]}-{i}") not in server)
        value = (False,) if kind == PODS else ()
        return self.server_write(self.spend(state, "creates"), (kind, name), value)

    @action("DeleteNamespace", tag=ENVIRONMENT)
    def _DeleteNamespace(self, state):
        server = self.objects(state)
        if not self._admitted(server) or not self.budget_left(state, "deletions"):
            return None
        value = (True, True) if server[NS][1] else None
        return self.server_write(self.spend(state, "deletions"), NS, value)

    @action("PodGone", tag=SYSTEM)
    def _PodGone(self, state, name):
        key = (PODS, name)
        server = self.objects(state)
        if key in server and server[key][0]:
            return self.server_write(state, key, None)
        return None


def _terminating(key, value) -> bool:
    """Only pods linger after a delete; other kinds go at once."""
    return key[0] == PODS and value[0]

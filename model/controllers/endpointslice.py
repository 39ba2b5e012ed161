"""The EndpointSlice controller: publish, for a Service, one endpoint per pod
its selector matches, with the pod's readiness as the endpoint's conditions.

What the real controller does (kubernetes/kubernetes
``pkg/controller/endpointslice``), kept here:

* it is keyed by Service; a pod event enqueues every Service whose selector
  matches the pod before or after the change (``getPodServiceMemberships``),
  a Service event enqueues that Service;
* its reconcile reads the Service and the pods from the informer cache,
  computes the endpoints, and creates the slice if its cache has none or
  updates it (with the cached resourceVersion) if it differs; a 409 or a 500
  is returned to the work queue, which requeues the Service;
* endpoint conditions (``discovery.k8s.io/v1``): ``serving`` is the pod's
  Ready condition, ``terminating`` is "the pod has a deletionTimestamp", and
  ``ready`` is serving and not terminating;
* a slice event enqueues its Service. The real controller skips events of
  slices it wrote itself (``EndpointSliceTracker``) *and* refuses to sync
  while its cache is older than its own last write (kubernetes/kubernetes
  PR 99345); this model keeps the simpler equivalent — its own write's event
  enqueues the Service, so a reconcile that ran on a cache older than that
  write runs again once the cache has it. Checking first found the
  controller that only skips its own events wrong: it compares against a
  stale slice, skips the update, and is never enqueued again (the mutant
  ``ignores_own_slice_events``). A 409 therefore always has the event that
  explains it still in flight, and that event enqueues the Service: dropping
  the 409 is harmless here, so it is not a mutant.

What is abstracted and why it is sound for the properties: one Service and
one slice (the controller's slices of a Service are independent of other
Services'; splitting into several slices of at most 100 endpoints changes
how endpoints are grouped, not which are published); pod IPs and ports are
the pod's name (the properties judge membership and conditions only).

The world around it: a user changes the Service's selector (``Select``),
creates a pod (``CreatePod``) or deletes one (``DeletePod``: graceful, the
pod gets a deletionTimestamp) — environment; the kubelet's readiness probe
flips a pod's Ready condition (``Ready`` / ``NotReady``) — environment, not
assumed to happen; the kubelet finishes a terminating pod and it disappears
(``PodGone``) — environment too, not assumed to happen: a pod stays
terminating behind a finalizer or on an unreachable node, and while it does
its endpoint must say so (``serving`` as its Ready condition, ``terminating``
true). An audit found that with ``PodGone`` a weakly fair system step every
quiet behaviour ended with the terminating pod gone, so no property ever
judged a terminating pod's endpoint conditions: a controller that dropped
``serving`` or ``terminating`` for terminating pods passed.

Objects::

    (services, svc)        -> selector label
    (pods, pN)             -> (label, ready, terminating)
    (endpointslices, svc)  -> ((pod, ready, serving, terminating), ...) sorted
"""

from __future__ import annotations

from kubemc.model.controllers.loop import ControllerLoop, create, update
from kubemc.model.kernel import ENVIRONMENT, Mutant, Step, action

SVC = ("services", "svc")
SLICE = ("endpointslices", "svc")
POD = "pods"
LABELS = ("a", "b")

KEEPS_NOT_READY = "keeps_not_ready"
KEEPS_DELETED = "keeps_deleted"
IGNORES_OWN_SLICE_EVENTS = "ignores_own_slice_events"
TERMINATING_READY = "terminating_ready"


class EndpointSliceController(ControllerLoop):
    name = "endpointslice"
    primary = "services"
    world_budgets = ("selector_changes", "creations", "deletions", "readiness_flips")
    mutants = {
        KEEPS_NOT_READY: Mutant(
            "decides whether the slice needs an update by comparing endpoints without their "
            "conditions, so a pod that only loses readiness stays listed ready "
            "(kubernetes/kubernetes#117193: endpoints stuck with a stale ready condition, "
            "'endpoints are equal, skipping update')",
            violates="endpointslice_unready_leads_to_not_ready"),
        KEEPS_DELETED: Mutant(
            "merges the computed endpoints into the existing slice and never prunes those "
            "whose pod is gone (kubernetes/kubernetes#47597: endpoint removal delayed when "
            "a pod is deleted; kubernetes/kubernetes#103804: an orphaned mirrored slice keeps "
            "IPs of deleted pods; siderolabs/talos#12802: a slice that appends and never "
            "prunes)",
            violates="endpointslice_gone_leads_to_unlisted"),
        IGNORES_OWN_SLICE_EVENTS: Mutant(
            "skips the events of slices it wrote itself but does not wait for its cache to "
            "hold its last write: a reconcile on a cache older than that write compares the "
            "pods against the stale slice, skips the update, and nothing enqueues the Service "
            "again (kubernetes/kubernetes#117193: 'gets an old version from the cache and "
            "skips the update ... never retrying again'; kubernetes/kubernetes#99345: the "
            "EndpointSlice controller made to wait for its cache to be updated)",
            violates="endpointslice_converges"),
        TERMINATING_READY: Mutant(
            "takes an endpoint's ready condition from the pod's Ready condition alone, so a "
            "terminating pod that still passes its probe is listed ready "
            "(kubernetes/kubernetes#54723: a pod in graceful termination on the ready "
            "address list)",
            violates="endpointslice_terminating_not_ready"),
    }

    def __init__(self, *, pods: int = 2, selector_changes: int = 1, creations: int = 1,
                 deletions: int = 1, readiness_flips: int = 2, crashes: int = 1,
                 write_failures: int = 1, resyncs: int = 0, max_objects: int = 6,
                 mutant: str | None = None):
        super().__init__(crashes=crashes, write_failures=write_failures, resyncs=resyncs,
                         max_objects=max_objects, mutant=mutant,
                         selector_changes=selector_changes, creations=creations,
                         deletions=deletions, readiness_flips=readiness_flips)
        self.pods = pods

    def config(self):
        return {"pods": self.pods, **super().config()}

    # -- the cluster it starts from ---------------------------------------------
    def pod_names(self):
        """Every pod name the world may use: the initial ones and one to create."""
        return tuple(f"p{i}" for i in range(self.pods + 1))

    def initial_objects(self):
        # p0 selected and Ready, p1 not selected; p<pods> may be created later
        pods = [((POD, f"p{i}"), (LABELS[i % 2], i % 2 == 0, False))
                for i in range(self.pods)]
        yield [(SVC, "a"), *pods]

    # -- the event handler ---------------------------------------------------------
    def handle(self, cache, key, old, new):
        if key[0] == POD:
            selector = cache.get(SVC)
            labels = {v[0] for v in (old, new) if v is not None}
            return (SVC,) if selector in labels else ()
        if key[0] == self.primary:
            return (key,)
        if key == SLICE and self.mutant != IGNORES_OWN_SLICE_EVENTS:
            return (SVC,)
        return ()

    # -- the reconcile -------------------------------------------------------------
    def _endpoint(self, name, pod):
        _, ready, terminating = pod
        if self.mutant == TERMINATING_READY:
            return (name, ready, ready, terminating)
        return (name, ready and not terminating, ready, terminating)

    def reconcile(self, cache, key, memory):
        if key not in cache:
            return (), memory
        selector = cache[key]
        wanted = {k[1]: self._endpoint(k[1], v) for k, v in cache.of_kind(POD)
                  if v[0] == selector}
        if SLICE not in cache:
            return (create(SLICE[0], SLICE[1], tuple(sorted(wanted.values()))),), memory
        current = cache[SLICE]
        if self.mutant == KEEPS_DELETED:
            present = {k[1] for k, _ in cache.of_kind(POD)}
            for e in current:
                if e[0] not in present:
                    wanted.setdefault(e[0], e)
        desired = tuple(sorted(wanted.values()))
        if self.mutant == KEEPS_NOT_READY:
            same = [e[0] for e in current] == [e[0] for e in desired]
        else:
            same = current == desired
        if same:
            return (), memory
        return (update(SLICE, cache.rv(SLICE), desired),), memory

    # -- the world -------------------------------------------------------------------
    def world_steps(self, state):
        server = self.objects(state)
        if SVC in server and self.budget_left(state, "selector_changes"):
            for label in LABELS:
                if label != server[SVC]:
                    yield Step("Select", (label,))
        for name in self.pod_names():
            key = (POD, name)
            if key not in server:
                if self.budget_left(state, "creations"):
                    for label in LABELS:
                        yield Step("CreatePod", (name, label))
                continue
            _, ready, terminating = server[key]
            if terminating:
                yield Step("PodGone", (name,))
            elif self.budget_left(state, "deletions"):
                yield Step("DeletePod", (name,))
            if self.budget_left(state, "readiness_flips"):
                yield Step("NotReady" if ready else "Ready", (name,))

    @action("Select", tag=ENVIRONMENT)
    def _Select(self, state, label):
        server = self.objects(state)
        if (SVC not in server or label not in LABELS or label == server[SVC]
                or not self.budget_left(state, "selector_changes")):
            return None
        return self.server_write(self.spend(state, "selector_changes"), SVC, label)

    @action("CreatePod", tag=ENVIRONMENT)
    def _CreatePod(self, state, pod, label):
        key = (POD, pod)
        if (pod not in self.pod_names() or key in self.objects(state) or label not in LABELS
                or not self.budget_left(state, "creations")):
            return None
        return self.server_write(self.spend(state, "creations"), key, (label, False, False))

    def _pod(self, state, pod):
        """The pod's key and value, or None for a pod the model or the
        server does not have."""
        key = (POD, pod)
        server = self.objects(state)
        if pod not in self.pod_names() or key not in server:
            return None
        return key, server[key]

    @action("PodGone", tag=ENVIRONMENT)
    def _PodGone(self, state, pod):
        found = self._pod(state, pod)
        if found is None or not found[1][2]:  # only a terminating pod goes
            return None
        return self.server_write(state, found[0], None)

    @action("DeletePod", tag=ENVIRONMENT)
    def _DeletePod(self, state, pod):
        found = self._pod(state, pod)
        if found is None:
            return None
        key, (label, ready, terminating) = found
        if terminating or not self.budget_left(state, "deletions"):
            return None
        return self.server_write(self.spend(state, "deletions"), key, (label, ready, True))

    @action("Ready", tag=ENVIRONMENT)
    def _Ready(self, state, pod):
        return self._flip(state, pod, ready=True)

    @action("NotReady", tag=ENVIRONMENT)
    def _NotReady(self, state, pod):
        return self._flip(state, pod, ready=False)

    def _flip(self, state, pod, *, ready: bool):
        """The pod's readiness becomes ``ready`` (a terminating pod's too)."""
        found = self._pod(state, pod)
        if found is None:
            return None
        key, (label, was, terminating) = found
        if was == ready or not self.budget_left(state, "readiness_flips"):
            return None
        return self.server_write(self.spend(state, "readiness_flips"), key,
                                 (label, ready, terminating))

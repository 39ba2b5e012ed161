"""The ReplicaSet controller: keep ``spec.replicas`` pods of a ReplicaSet
running, creating and deleting them through the apiserver.

What the real controller does (kubernetes/kubernetes
``pkg/controller/replicaset``), kept here:

* it counts the *active* pods it owns in its informer cache — pods without a
  ``deletionTimestamp`` — and creates or deletes the difference;
* **expectations** (``pkg/controller/controller_utils.go``,
  ``ControllerExpectations``): before it creates N pods it records that it
  expects N creations, and it does not act on the ReplicaSet again until its
  informer has observed them (likewise for deletions, observed when a pod
  gains a ``deletionTimestamp`` or disappears). Its cache lags its own
  writes, and without expectations it would count too few pods and create
  more;
* a failed create lowers the expectations by the pods it did not create and
  returns an error, so the work queue requeues the key (rate limited);
* pods are deleted gracefully: the delete sets ``deletionTimestamp`` and the
  kubelet removes the pod later.

The world around it: a user scales the ReplicaSet (environment, ``Scale``);
the kubelet removes a terminating pod once its containers have stopped
(``PodGone``) — environment, not assumed to happen: a pod stays terminating
on an unreachable node or behind a finalizer, and the controller must not
wait for it (it creates the replacement at once: terminating pods are not
active, ``controller.FilterActivePods``); a pod fails and is deleted by
someone else (``PodFails``, fault).

Objects::

    (replicasets, rs) -> (replicas, peak)   peak: a ghost the controller never
                                            reads — the largest replicas ever set,
                                            for the no-over-creation property
    (pods, rs-N)      -> (owner, terminating)

Memory: the expectations ``(adds, dels)`` of the one ReplicaSet, or ``()``.
"""

from __future__ import annotations

from kubemc.model.controllers.loop import (
    CREATE, ControllerLoop, Objects, create, delete,
)
from kubemc.model.kernel import ENVIRONMENT, FAULT, Mutant, Step, action

RS = ("replicasets", "rs")
POD = "pods"

NO_EXPECTATIONS = "no_expectations"
DROPS_ERROR = "drops_error"
COUNTS_TERMINATING = "counts_terminating"
IGNORES_DELETION = "ignores_deletion"


def owned_active(objects: Objects, owner: str) -> list:
    """The pods ``owner`` owns that are not terminating."""
    return sorted(k for k, (o, terminating) in objects.of_kind(POD)
                  if o == owner and not terminating)


class ReplicaSetController(ControllerLoop):
    name = "replicaset"
    primary = "replicasets"
    world_budgets = ("scales", "pod_failures")
    mutants = {
        NO_EXPECTATIONS: Mutant(
            "acts on a stale cache without expectations: pods it created but has not yet "
            "observed are counted as missing and created again (ray-project/kuberay#715, a "
            "controller with no accounting for its stale cache; kubernetes/kubernetes#129795 "
            "is the same overshoot when expectations expire)",
            violates="replicaset_no_overcreation"),
        DROPS_ERROR: Mutant(
            "drops a failed create instead of returning the error to the work queue; with "
            "no later event for the ReplicaSet it never reconciles again (the pattern the "
            "controller-runtime docs warn about: 'returning an error requeues')",
            violates="replicaset_converges"),
        COUNTS_TERMINATING: Mutant(
            "ignores deletionTimestamp: counts terminating pods as running replicas, so a "
            "failed pod that stays terminating (an unreachable node, a finalizer) is never "
            "replaced (the ReplicaSet controller filters them out, controller.FilterActivePods; "
            "kubernetes/kubernetes#32567 discusses why terminating pods are not counted)",
            violates="replicaset_converges"),
        IGNORES_DELETION: Mutant(
            "does not lower its deletion expectations when a pod gains a deletionTimestamp, "
            "only when the pod disappears (the graceful-deletion case of "
            "kubernetes/kubernetes#22270): while a pod it deleted stays terminating it waits "
            "on expectations that are never met, and a later failed pod is never replaced",
            violates="replicaset_converges"),
    }

    def __init__(self, *, replicas: int = 2, max_replicas: int = 2, scales: int = 1,
                 pod_failures: int = 1, crashes: int = 1, write_failures: int = 1,
                 resyncs: int = 0, max_objects: int = 5, mutant: str | None = None):
        if replicas > max_replicas:
            raise ValueError("replicas must not exceed max_replicas")
        super().__init__(crashes=crashes, write_failures=write_failures, resyncs=resyncs,
                         max_objects=max_objects, mutant=mutant, scales=scales,
                         pod_failures=pod_failures)
        self.replicas = replicas
        self.max_replicas = max_replicas

    def config(self):
        return {"replicas": self.replicas, "max_replicas": self.max_replicas,
                **super().config()}

    # -- the cluster it starts from ---------------------------------------------
    def initial_objects(self):
        yield [(RS, (self.replicas, self.replicas))]

    def initial_memory(self):
        return ()

    # -- the event handler and expectations --------------------------------------
    def handle(self, cache, key, old, new):
        if key[0] == POD:
            owner = (new or old)[0]
            return ((self.primary, owner),)
        return (key,)

    def observe(self, memory, key, old, new):
        if key[0] != POD or not memory:
            return memory
        adds, dels = memory
        if old is None and new is not None:
            adds -= 1
        terminating_now = new is not None and new[1] and not (old and old[1])
        if self.mutant == IGNORES_DELETION:
            if new is None and old is not None:
                dels -= 1
        elif terminating_now or (new is None and old is not None and not old[1]):
            dels -= 1
        return (max(adds, 0), max(dels, 0))

    # -- the reconcile -------------------------------------------------------------
    def reconcile(self, cache, key, memory):
        if key not in cache:
            return (), ()
        if memory and memory != (0, 0) and self.mutant != NO_EXPECTATIONS:
            return (), memory  # still waiting to observe its own writes
        replicas = cache[key][0]
        if self.mutant == COUNTS_TERMINATING:
            pods = sorted(k for k, (o, _) in cache.of_kind(POD) if o == key[1])
        else:
            pods = owned_active(cache, key[1])
        diff = replicas - len(pods)
        if diff > 0:
            writes = tuple(create(POD, f"{key[1]}-", (key[1], False), generate=True)
                           for _ in range(diff))
            return writes, (diff, 0)
        if diff < 0:
            victims = pods[diff:]  # the newest names: any choice is allowed
            return tuple(delete(k) for k in victims), (0, -diff)
        return (), (0, 0)

    def on_error(self, key, outcome, write, memory):
        if memory:
            adds, dels = memory
            # the failed write and every one after it will not be observed
            if write[0] == CREATE:
                memory = (max(adds - 1, 0), dels)
            else:
                memory = (adds, max(dels - 1, 0))
        return self.mutant != DROPS_ERROR, memory

    def _refused(self, state, outcome):
        # Expectations for the writes skipped after a failure are lowered
        # too, as the controller's slow-start batch does for skipped pods.
        key, writes = state[4]
        memory = state[5]
        for w in writes[1:]:
            if memory:
                adds, dels = memory
                memory = ((max(adds - 1, 0), dels) if w[0] == CREATE
                          else (adds, max(dels - 1, 0)))
        return super()._refused(state[:5] + (memory,) + state[6:], outcome)

    # -- deletion is graceful --------------------------------------------------------
    def deleting(self, key, value):
        return (value[0], True) if key[0] == POD else None

    # -- the world -------------------------------------------------------------------
    def world_steps(self, state):
        server = self.objects(state)
        if self.budget_left(state, "scales") and RS in server:
            for n in range(self.max_replicas + 1):
                if n != server[RS][0]:
                    yield Step("Scale", (n,))
        for key, (_, terminating) in server.of_kind(POD):
            if terminating:
                yield Step("PodGone", (key[1],))
            elif self.budget_left(state, "pod_failures"):
                yield Step("PodFails", (key[1],))

    @action("Scale", tag=ENVIRONMENT)
    def _Scale(self, state, n):
        server = self.objects(state)
        if RS not in server or not self.budget_left(state, "scales"):
            return None
        _, peak = server[RS]
        return self.server_write(self.spend(state, "scales"), RS, (n, max(peak, n)))

    # A random run that removes every terminating pod at once never meets the
    # bugs that a pod stuck terminating exposes: removal is rare.
    @action("PodGone", tag=ENVIRONMENT, rare=True)
    def _PodGone(self, state, name):
        pod = self.stored(state, POD, name)
        if pod is None or not pod[1][1]:  # only a terminating pod goes
            return None
        return self.server_write(state, pod[0], None)

    @action("PodFails", tag=FAULT)
    def _PodFails(self, state, name):
        pod = self.stored(state, POD, name)
        if pod is None:
            return None
        key, (owner, terminating) = pod
        if terminating or not self.budget_left(state, "pod_failures"):
            return None
        return self.server_write(self.spend(state, "pod_failures"), key, (owner, True))

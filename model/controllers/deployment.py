"""The Deployment controller: roll a Deployment's pods from one pod template
to another through ReplicaSets, within ``maxSurge`` and ``maxUnavailable``.

What the real controller does (kubernetes/kubernetes
``pkg/controller/deployment``, ``rolling.go`` and ``sync.go``), kept here:

* one ReplicaSet per pod template, named after the template's hash
  (``pod-template-hash``); the *new* ReplicaSet is the one whose template
  equals the Deployment's, found among **all** its ReplicaSets, scaled or
  not (``FindNewReplicaSet``) — so a rollback (the user sets the template
  back) scales the old ReplicaSet up again instead of creating another
  (Kubernetes docs, "Deployments", "Rolling Back a Deployment");
* a rolling update scales the new ReplicaSet up only while the replicas of
  all ReplicaSets stay within ``replicas + maxSurge`` (``NewRSNewReplicas``),
  and scales old ones down only by what availability allows: first their
  unavailable replicas (``cleanupUnhealthyReplicas``), then down to
  ``replicas - maxUnavailable`` available pods
  (``scaleDownOldReplicaSetsForRollingUpdate``). A scale during a rollout
  goes through the same arithmetic (the controller's proportional scaling,
  which spreads a scale over the active ReplicaSets, is not modelled: it is
  an optimisation of *which* ReplicaSet grows, and the properties below do
  not depend on it);
* availability is counted the way the ReplicaSet controller reports
  ``status.availableReplicas``: pods that are ready and not terminating
  (``controller.FilterActivePods``; kubernetes/website#31603 documents that
  terminating pods are not counted). The model reads the pods in the
  controller's informer cache instead of the ReplicaSets' status: the
  status is a function of the same pods and lags them just as a cache does.
  One departure, a fix: a ReplicaSet counts at most ``spec.replicas``
  available pods. Upstream sums ``status.availableReplicas``, which still
  includes a surplus pod the ReplicaSet controller is about to delete; the
  checker found that after a scale-down and a rollback before that deletion
  the sum lets the controller scale the other ReplicaSet down too, and
  availability falls below ``replicas - maxUnavailable`` (docs/controllers.md);
* every ReplicaSet update carries the resourceVersion the controller read
  (a stale read is a 409 Conflict) and a refused write requeues the
  Deployment;
* **ReplicaSet expectations**: after it writes ReplicaSets the controller
  waits until its informer has observed those writes before it decides
  again (the 2016 controller's "rs expectation", kubernetes/kubernetes#22270).
  A 409 protects only the ReplicaSet being written; the decision also reads
  the *other* ReplicaSets, and without expectations a decision taken on a
  cache that has not yet seen the controller's own last scale is applied:
  after a rollback midway it scales down the ReplicaSet that still carries
  the availability (the ``no_rs_expectations`` mutant; the checker's trace
  is committed). Today's upstream controller has no such guard — the
  checker finds the same interleaving against it, which we report rather
  than hide (docs/controllers.md).

The world is an abstraction of the ReplicaSet controller and the kubelet, as
SYSTEM steps (they happen by themselves, weakly fair):

* ``ReplicaSetSync(rs)`` creates one pod toward ``rs.replicas`` or deletes
  one beyond it, a not-ready pod before a ready one (the deletion order the
  ReplicaSet docs state, "Scaling a ReplicaSet"). Sound because the
  ``replicaset`` model checks, against its own cache, expectations, crashes
  and 409s, that the real loop's running pods eventually equal
  ``spec.replicas`` (``replicaset_converges``) and never exceed what was
  asked (``replicaset_no_overcreation``) — this step is that contract, one
  pod at a time, with the interleavings of all ReplicaSets kept;
* ``PodReady(pod)`` (the kubelet: containers started, readiness passed) and
  ``PodGone(pod)`` (a terminating pod's grace period ends).

The user updates the template (``Rollout(t)``: a new template or back to an
earlier one — a rollback) and scales (``Scale(n)``): environment, budgeted.
A pod's containers crash (``PodFails``): a fault, budgeted; the pod becomes
not ready, and the kubelet restarts it (``PodReady``).

Objects::

    (deployments, d)   -> (replicas, template, low, high)
                          low, high: ghosts the controller never reads — the
                          fewest and most replicas the user has ever set
    (replicasets, d-T) -> (template, replicas)
    (pods, TN)         -> (replicaset, ready, terminating, failed)
                          failed: a ghost the controller never reads — the pod
                          is not ready because of a fault, not of the control
                          plane (what the availability property forgives)

Memory: the ReplicaSets it has written and not yet observed (expectations).
"""

from __future__ import annotations

from kubemc.model.controllers.loop import (
    CREATE, INFLIGHT, MEMORY, ControllerLoop, Objects, create, update,
)
from kubemc.model.kernel import ENVIRONMENT, FAULT, SYSTEM, Mutant, Step, action

DEPLOY = ("deployments", "d")
RS = "replicasets"
POD = "pods"
TEMPLATES = "abc"

COUNTS_TERMINATING = "counts_terminating_available"
STALE_CACHE = "no_rs_expectations"
DROPS_ERROR = "drops_rs_update_error"
ROLLBACK_NEW_RS = "rollback_creates_new_rs"
NEW_RS_IGNORES_SURGE = "new_rs_ignores_surge"


def rs_name(template: str) -> str:
    """The ReplicaSet of a template: ``<deployment>-<pod-template-hash>``."""
    return f"d-{template}"


class DeploymentController(ControllerLoop):
    name = "deployment"
    primary = "deployments"
    world_budgets = ("rollouts", "scales", "pod_failures")
    mutants = {
        COUNTS_TERMINATING: Mutant(
            "counts terminating pods that are still ready as available, so it scales old "
            "ReplicaSets down while their replacements are not available (the ReplicaSet "
            "status excludes them: kubernetes/kubernetes#32567; the Deployment docs say so "
            "since kubernetes/website#31603, written for kubernetes/kubernetes#107920)",
            violates="deployment_max_unavailable"),
        STALE_CACHE: Mutant(
            "ignores maxUnavailable on a stale cache: without ReplicaSet expectations it "
            "decides before its informer has seen its own last scale, and after a rollback "
            "midway scales down the ReplicaSet that still carries the availability (the "
            "deployment controller's 'rs expectation', kubernetes/kubernetes#22270; the e2e "
            "flakes 'minUnavailable/maxSurge violated', kubernetes/kubernetes#19299, #21810, "
            "#22719)",
            violates="deployment_max_unavailable"),
        DROPS_ERROR: Mutant(
            "forgets the Deployment when a ReplicaSet update is refused (409 Conflict or a "
            "5xx) instead of returning the error to the work queue; after a 5xx no watch "
            "event follows and the rollout never completes (a 409 alone is recovered by the "
            "conflicting write's own watch event — see docs/controllers.md; the same "
            "swallowed error left a ReplicaSet short of pods for good in "
            "kubernetes/kubernetes#67662, fixed by returning it to the queue, PR #86140)",
            violates="deployment_rollout_completes"),
        ROLLBACK_NEW_RS: Mutant(
            "looks for the new ReplicaSet only among the active (scaled-up) ones, so a "
            "rollback to a template whose ReplicaSet was scaled to 0 creates a second "
            "ReplicaSet for the same template (ReplicaSet identity by template hash and its "
            "duplicates: kubernetes/community#384, kubernetes/kubernetes#29735)",
            violates="deployment_one_replicaset_per_template"),
        NEW_RS_IGNORES_SURGE: Mutant(
            "creates the new ReplicaSet of a rollout at spec.replicas at once instead of "
            "within replicas + maxSurge of what the old ReplicaSets still ask for (the sizing "
            "kubernetes/kubernetes PR #20696 gave a new ReplicaSet on creation; the e2e flakes "
            "'minUnavailable/maxSurge violated', kubernetes/kubernetes#21810, #22719)",
            violates="deployment_max_surge"),
    }

    def __init__(self, *, replicas: int = 2, max_replicas: int = 2, max_surge: int = 1,
                 max_unavailable: int = 0, templates: int = 2, rollouts: int = 2,
                 scales: int = 0, pod_failures: int = 0, crashes: int = 0,
                 write_failures: int = 0, resyncs: int = 0, max_objects: int = 9,
                 mutant: str | None = None):
        if max_surge == 0 and max_unavailable == 0:
            raise ValueError("maxSurge and maxUnavailable must not both be 0 "
                             "(the apiserver's validation rejects it)")
        if not 1 <= replicas <= max_replicas:
            raise ValueError("need 1 <= replicas <= max_replicas")
        if not 1 <= templates <= len(TEMPLATES):
            raise ValueError(f"templates must be 1..{len(TEMPLATES)}")
        super().__init__(crashes=crashes, write_failures=write_failures, resyncs=resyncs,
                         max_objects=max_objects, mutant=mutant, rollouts=rollouts,
                         scales=scales, pod_failures=pod_failures)
        self.replicas = replicas
        self.max_replicas = max_replicas
        self.max_surge = max_surge
        self.max_unavailable = max_unavailable
        self.templates = TEMPLATES[:templates]

    def config(self):
        return {"replicas": self.replicas, "max_replicas": self.max_replicas,
                "max_surge": self.max_surge, "max_unavailable": self.max_unavailable,
                "templates": len(self.templates), **super().config()}

    # -- the cluster it starts from ----------------------------------------------
    def initial_objects(self):
        """A finished rollout from the first template to the second: the first
        template's ReplicaSet is kept at 0 replicas (revision history), so a
        single template change is either a rollback (to the first) or a new
        rollout (to a third) — the bounds stay small enough to explore."""
        old, t = self.templates[0], self.templates[min(1, len(self.templates) - 1)]
        r = self.replicas
        pods = [((POD, f"{t}{i}"), (rs_name(t), True, False, False)) for i in range(r)]
        history = [((RS, rs_name(old)), (old, 0))] if old != t else []
        yield [(DEPLOY, (r, t, r, r)), ((RS, rs_name(t)), (t, r)), *history, *pods]

    # -- the event handler: every ReplicaSet and pod belongs to the one Deployment
    def handle(self, cache, key, old, new):
        return (DEPLOY,)

    # -- the reconcile ---------------------------------------------------------
    def _available(self, cache: Objects, rs: str) -> int:
        """The available pods ``rs`` keeps: ready, not terminating, and at
        most ``rs.replicas`` of them — a surplus pod is about to be deleted
        by the ReplicaSet controller (see the module text)."""
        ready = sum(1 for _, (owner, ok, terminating, _) in cache.of_kind(POD)
                    if owner == rs and ok
                    and (not terminating or self.mutant == COUNTS_TERMINATING))
        return min(ready, cache[(RS, rs)][1])

    @staticmethod
    def _scale(cache: Objects, key, template: str, replicas: int):
        return update(key, cache.rv(key), (template, replicas))

    def reconcile(self, cache, key, memory):
        if memory and self.mutant != STALE_CACHE:
            return (), memory  # still waiting to observe its own writes
        writes, memory = self._decide(cache, key, memory)
        # a generateName create's name is the server's choice: not expected
        expected = tuple(sorted({w[1] for w in writes if not (w[0] == CREATE and w[3])}))
        return writes, expected

    def observe(self, memory, key, old, new):
        return tuple(k for k in memory if k != key)

    def _refused(self, state, outcome):
        # the refused write and those after it will never be observed
        _, writes = state[INFLIGHT]
        skipped = {w[1] for w in writes}
        memory = tuple(k for k in state[MEMORY] if k not in skipped)
        return super()._refused(state[:MEMORY] + (memory,) + state[MEMORY + 1:], outcome)

    def _decide(self, cache, key, memory):
        if key not in cache:
            return (), memory
        replicas, template = cache[key][:2]
        surge, unavailable = self.max_surge, self.max_unavailable
        sets = sorted(cache.of_kind(RS))
        total = sum(v[1] for _, v in sets)
        candidates = [k for k, v in sets if v[0] == template
                      and (self.mutant != ROLLBACK_NEW_RS or v[1] > 0)]
        if not candidates:
            size = max(0, min(replicas + surge - total, replicas))
            if self.mutant == NEW_RS_IGNORES_SURGE:
                size = replicas
            if self.mutant == ROLLBACK_NEW_RS and (RS, rs_name(template)) in cache:
                return (create(RS, rs_name(template) + "-", (template, size),
                               generate=True),), memory
            return (create(RS, rs_name(template), (template, size)),), memory
        new = candidates[0]
        new_spec = cache[new][1]
        # reconcileNewReplicaSet: down to replicas, or up within the surge
        if new_spec > replicas:
            return (self._scale(cache, new, template, replicas),), memory
        up = min(replicas + surge - total, replicas - new_spec)
        if up > 0:
            return (self._scale(cache, new, template, new_spec + up),), memory
        # reconcileOldReplicaSets
        olds = [(k, v) for k, v in sets if k != new and v[1] > 0]
        if not olds:
            return (), memory
        min_available = replicas - unavailable
        new_unavailable = new_spec - self._available(cache, new[1])
        budget = total - min_available - new_unavailable
        if budget <= 0:
            return (), memory
        target = {k: v[1] for k, v in olds}
        for k, v in olds:  # cleanupUnhealthyReplicas
            cut = min(budget, v[1] - self._available(cache, k[1]))
            if cut > 0:
                target[k] -= cut
                budget -= cut
        available = sum(self._available(cache, k[1]) for k, _ in sets)
        down = available - min_available
        for k, _ in olds:  # scaleDownOldReplicaSetsForRollingUpdate
            cut = min(target[k], max(down, 0))
            target[k] -= cut
            down -= cut
        writes = tuple(self._scale(cache, k, v[0], target[k])
                       for k, v in olds if target[k] != v[1])
        return writes, memory

    def on_error(self, key, outcome, write, memory):
        return self.mutant != DROPS_ERROR, memory

    # -- the world ---------------------------------------------------------------
    def world_steps(self, state):
        server = self.objects(state)
        for key, _ in server.of_kind(RS):
            yield Step("ReplicaSetSync", (key[1],))
        for key, (_, ready, terminating, _) in server.of_kind(POD):
            if terminating:
                yield Step("PodGone", (key[1],))
            elif not ready:
                yield Step("PodReady", (key[1],))
            elif self.budget_left(state, "pod_failures"):
                yield Step("PodFails", (key[1],))
        if DEPLOY in server:
            replicas, template = server[DEPLOY][:2]
            if self.budget_left(state, "rollouts"):
                for t in self.templates:
                    if t != template:
                        yield Step("Rollout", (t,))
            if self.budget_left(state, "scales"):
                for n in range(1, self.max_replicas + 1):
                    if n != replicas:
                        yield Step("Scale", (n,))

    @action("ReplicaSetSync", tag=SYSTEM)
    def _ReplicaSetSync(self, state, rs):
        return self._rs_sync(state, self.objects(state), rs)

    @action("PodGone", tag=SYSTEM)
    def _PodGone(self, state, name):
        pod = self.stored(state, POD, name)
        if pod is None or not pod[1][2]:  # only a terminating pod goes
            return None
        return self.server_write(state, pod[0], None)

    @action("PodReady", tag=SYSTEM)
    def _PodReady(self, state, name):
        pod = self.stored(state, POD, name)
        if pod is None:
            return None
        key, (owner, ready, terminating, _) = pod
        if terminating or ready:
            return None
        return self.server_write(state, key, (owner, True, False, False))

    @action("PodFails", tag=FAULT, rare=True)
    def _PodFails(self, state, name):
        pod = self.stored(state, POD, name)
        if pod is None:
            return None
        key, (owner, ready, terminating, _) = pod
        if terminating or not ready or not self.budget_left(state, "pod_failures"):
            return None
        return self.server_write(self.spend(state, "pod_failures"), key,
                                 (owner, False, False, True))

    @action("Rollout", tag=ENVIRONMENT)
    def _Rollout(self, state, template):
        server = self.objects(state)
        if DEPLOY not in server:
            return None
        replicas, current, low, high = server[DEPLOY]
        if (template not in self.templates or template == current
                or not self.budget_left(state, "rollouts")):
            return None
        return self.server_write(self.spend(state, "rollouts"), DEPLOY,
                                 (replicas, template, low, high))

    @action("Scale", tag=ENVIRONMENT)
    def _Scale(self, state, n):
        server = self.objects(state)
        if DEPLOY not in server:
            return None
        replicas, template, low, high = server[DEPLOY]
        if (not isinstance(n, int) or not 1 <= n <= self.max_replicas
                or n == replicas or not self.budget_left(state, "scales")):
            return None
        return self.server_write(self.spend(state, "scales"), DEPLOY,
                                 (n, template, min(low, n), max(high, n)))

    def _rs_sync(self, state, server: Objects, rs: str):
        """One step of the ReplicaSet controller toward ``rs.replicas``."""
        key = (RS, rs)
        if key not in server:
            return None
        template, replicas = server[key]
        active = sorted((not ready, k) for k, (o, ready, terminating, _)
                        in server.of_kind(POD) if o == rs and not terminating)
        if len(active) < replicas:
            pod = next(f"{template}{i}" for i in range(len(server) + 1)
                       if (POD, f"{template}{i}") not in server)
            return self.server_write(state, (POD, pod), (rs, False, False, False))
        if len(active) > replicas:
            _, victim = active[-1]  # a not-ready pod first (sorted last), then the newest
            owner, ready, _, failed = server[victim]
            return self.server_write(state, victim, (owner, ready, True, failed))
        return None

"""What a Deployment promises, read off the apiserver's objects.

Kubernetes documentation, "Deployments" (kubernetes.io/docs/concepts/
workloads/controllers/deployment):

* "Deployment ensures that only a certain number of Pods are down while they
  are being updated ... at least 75% of the desired number of Pods are up
  (25% max unavailable)"; "Max Unavailable ... the maximum number of Pods
  that can be unavailable during the update process";
* "Deployment also ensures that only a certain number of Pods are created
  above the desired number of Pods"; "Max Surge ... the maximum number of
  Pods that can be created over the desired number of Pods ... the new
  ReplicaSet can be scaled up immediately when the rolling update starts,
  such that the total number of old and new Pods does not exceed 130% of
  desired Pods";
* on terminating Pods (the note added by kubernetes/website#31603):
  "Kubernetes doesn't count terminating Pods when calculating the number of
  availableReplicas, which must be between replicas - maxUnavailable and
  replicas + maxSurge. As a result, you might notice that there are more
  Pods than expected during a rollout". So neither bound counts terminating
  Pods, and *available* means ready and not terminating;
* "Rolling Back a Deployment": the Deployment is rolled back to a previous
  revision, whose ReplicaSet is scaled up again; the ``pod-template-hash``
  label "ensures that child ReplicaSets of a Deployment do not overlap".

How each is stated so that it judges the Deployment controller and nothing
else:

* **max surge** over the ReplicaSets' ``spec.replicas`` — the pods the
  Deployment controller asks for. The pods themselves follow through each
  ReplicaSet's own controller, independently: a new ReplicaSet's pod may be
  created before an old ReplicaSet's controller has marked its surplus pod
  terminating, so the *pod* count can exceed ``replicas + maxSurge`` for a
  moment in a correct cluster (the checker reaches that state; see
  ``tests/test_controllers_deployment.py``). As a transition: no step raises
  the total above ``replicas + maxSurge`` — a user's scale-down may leave it
  above for a while, and then it may only fall.
* **scales**: a user may scale while the controller acts on what it read
  before; a scale-up it decided for 2 replicas lands after the user asked
  for 1. No controller can avoid that, so the bounds are judged against the
  replicas least favourable to it among those the user has set — ghosts in
  the Deployment (``low``, ``high``) that the controller never reads: the
  surge against the most, the availability against the fewest. Without a
  scale they are exactly ``replicas``.
* **max unavailable** as a transition on the steps of the control plane
  (``system`` steps: the controllers and the kubelet): none takes an
  available pod away when that leaves fewer than ``replicas -
  maxUnavailable`` available. A pod whose containers crashed (a fault) is
  counted as if it were still available — the ghost ``failed`` flag, which
  the controller never reads — because the docs' guarantee is about the
  rollout, not about crashes: a fault may lower availability, the control
  plane may not lower it further.
* **completion** (liveness): once users and faults stop, eventually exactly
  ``replicas`` pods run, all of the Deployment's current template and all
  available, every other ReplicaSet is scaled to 0, and it stays so
  (Anvil's eventually-stable reconciliation; seeds/000).
"""

from __future__ import annotations

from kubemc.model.controllers.deployment import DEPLOY, POD, RS
from kubemc.model.kernel import SYSTEM
from kubemc.properties.core import COVER, EVENTUALLY_ALWAYS, INVARIANT, TRANSITION, Property

_DOCS = "kubernetes.io/docs/concepts/workloads/controllers/deployment"
_SURGE = (_DOCS + " 'Max Surge': 'the total number of old and new Pods does not exceed "
          "130% of desired Pods'; terminating Pods are not counted (kubernetes/website#31603)")
_UNAVAILABLE = (_DOCS + " 'Max Unavailable': 'the total number of Pods available at all "
                "times during the update is at least 70% of the desired Pods'; available = "
                "ready and not terminating (kubernetes/website#31603)")
_SEED = ("seeds/000: 'in case of a mismatch corrective action is taken in the cluster until "
         "its current state matches the desired state'; Anvil (OSDI'24) §3 eventually-stable "
         "reconciliation")


def _spec(objects) -> int:
    """Replicas the Deployment's ReplicaSets ask for, together."""
    return sum(replicas for _, (_, replicas) in objects.of_kind(RS))


def _available(objects) -> set:
    """Pods that are ready and not terminating."""
    return {k for k, (_, ready, terminating, _) in objects.of_kind(POD)
            if ready and not terminating}


def _available_or_failed(objects) -> int:
    """Available pods plus the pods a fault made unavailable."""
    return len(_available(objects)) + sum(
        1 for k, (_, ready, terminating, failed) in objects.of_kind(POD)
        if failed and not (ready and not terminating))


def max_surge(m, before, step, after) -> bool:
    a = m.objects(after)
    if DEPLOY not in a:
        return True
    grew = _spec(a) > _spec(m.objects(before))
    high = a[DEPLOY][3]  # the most replicas the user has set (a ghost)
    return not grew or _spec(a) <= high + m.max_surge


def max_unavailable(m, before, step, after) -> bool:
    if m.tag(step) != SYSTEM:
        return True
    a = m.objects(after)
    if DEPLOY not in a:
        return True
    took_one = bool(_available(m.objects(before)) - _available(a))
    low = a[DEPLOY][2]  # the fewest replicas the user has set (a ghost)
    return not took_one or _available_or_failed(a) >= low - m.max_unavailable


def one_replicaset_per_template(m, state) -> bool:
    templates = [template for _, (template, _) in m.objects(state).of_kind(RS)]
    return len(templates) == len(set(templates))


def rollout_complete(m, state) -> bool:
    objects = m.objects(state)
    if DEPLOY not in objects:
        return True
    replicas, template = objects[DEPLOY][:2]
    sets = dict(objects.of_kind(RS))
    if any(r != 0 for t, r in sets.values() if t != template):
        return False
    if sum(r for t, r in sets.values() if t == template) != replicas:
        return False
    running = [(sets[(RS, owner)][0], ready)
               for _, (owner, ready, terminating, _) in objects.of_kind(POD)
               if not terminating]
    return len(running) == replicas and all(t == template and ready for t, ready in running)


def rolling(m, state) -> bool:
    """Two ReplicaSets with running pods at once: a rollout in progress."""
    objects = m.objects(state)
    owners = {owner for _, (owner, _, terminating, _) in objects.of_kind(POD)
              if not terminating}
    return len(owners) >= 2


def rolled_back(m, state) -> bool:
    """The Deployment is back on the template it started from while another
    template's ReplicaSet exists and runs: only a rollback leads here."""
    objects = m.objects(state)
    if DEPLOY not in objects:
        return False
    template = objects[DEPLOY][1]
    sets = [v for _, v in objects.of_kind(RS)]
    return (template == m.templates[0]
            and any(t != template and r > 0 for t, r in sets))


def new_replicaset_created(m, state) -> bool:
    """A ReplicaSet exists for a template none of the initial ReplicaSets has:
    only a rollout to a new template creates one."""
    return any(t not in m.templates[:2] for _, (t, _) in m.objects(state).of_kind(RS))


def scaled_during_rollout(m, state) -> bool:
    objects = m.objects(state)
    return (DEPLOY in objects and objects[DEPLOY][0] != m.replicas
            and sum(1 for _, (_, r) in objects.of_kind(RS) if r > 0) >= 2)


def at_surge_limit(m, state) -> bool:
    objects = m.objects(state)
    return DEPLOY in objects and _spec(objects) == objects[DEPLOY][0] + m.max_surge


def at_unavailable_limit(m, state) -> bool:
    objects = m.objects(state)
    if DEPLOY not in objects or not rolling(m, state):
        return False
    return len(_available(objects)) == objects[DEPLOY][0] - m.max_unavailable


PROPERTIES = (
    Property("deployment_max_surge", "controllers", TRANSITION,
             "no step raises the replicas of the Deployment's ReplicaSets, together, above "
             "spec.replicas + maxSurge", _SURGE, max_surge),
    Property("deployment_max_unavailable", "controllers", TRANSITION,
             "no step of the control plane takes an available pod (ready, not terminating) "
             "away when that leaves fewer than spec.replicas - maxUnavailable (a pod crashed "
             "by a fault counts as available)", _UNAVAILABLE, max_unavailable),
    Property("deployment_one_replicaset_per_template", "controllers", INVARIANT,
             "no two ReplicaSets of the Deployment have the same pod template (a rollback "
             "reuses the earlier ReplicaSet)",
             _DOCS + " 'Rolling Back a Deployment' and 'Pod-template-hash label': 'ensures "
             "that child ReplicaSets of a Deployment do not overlap'",
             one_replicaset_per_template),
    Property("deployment_rollout_completes", "controllers", EVENTUALLY_ALWAYS,
             "once users and faults stop, eventually spec.replicas pods run, all of the "
             "current template and available, every other ReplicaSet is scaled to 0, and it "
             "stays so", _DOCS + " 'Complete Deployment'; " + _SEED, rollout_complete,
             assumption="a ReplicaSet update that is retried eventually wins the 409 race "
             "(the controller is the only writer of ReplicaSets' replicas here); every pod "
             "eventually passes its readiness probe and a terminating pod eventually goes "
             "(PodReady and PodGone are the kubelet's system steps, weakly fair)"),
    Property("deployment_cover_rolling", "controllers", COVER,
             "some reachable state has running pods of two ReplicaSets (a rollout midway)",
             _DOCS, rolling),
    Property("deployment_cover_rolled_back", "controllers", COVER,
             "some reachable state has the Deployment rolled back to its first template while "
             "another template's ReplicaSet still runs (a rollback midway)",
             _DOCS + " 'Rolling Back a Deployment'", rolled_back),
    Property("deployment_cover_new_replicaset", "controllers", COVER,
             "some reachable state has a ReplicaSet the controller created for a new template "
             "(the new ReplicaSet's initial size, bounded by maxSurge, is exercised)",
             _SURGE, new_replicaset_created),
    Property("deployment_cover_scaled_during_rollout", "controllers", COVER,
             "some reachable state has a scaled Deployment with two scaled-up ReplicaSets",
             _DOCS + " 'Proportional scaling'", scaled_during_rollout),
    Property("deployment_cover_surge_limit", "controllers", COVER,
             "some reachable state has the ReplicaSets at exactly replicas + maxSurge",
             _SURGE, at_surge_limit),
    Property("deployment_cover_unavailable_limit", "controllers", COVER,
             "some reachable state mid-rollout has exactly replicas - maxUnavailable "
             "available pods", _UNAVAILABLE, at_unavailable_limit),
)

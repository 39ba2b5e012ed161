"""What a ReplicaSet promises, read off the apiserver's objects.

Kubernetes documentation, "ReplicaSet" (kubernetes.io/docs/concepts/
workloads/controllers/replicaset): "A ReplicaSet's purpose is to maintain a
stable set of replica Pods running at any given time ... it is often used to
guarantee the availability of a specified number of identical Pods"; "a
ReplicaSet fulfills its purpose by creating and deleting Pods as needed to
reach the desired number". A Pod with a deletionTimestamp is on its way out
and is not one of the running replicas (API conventions, graceful deletion).

Over-creation is judged against the largest ``replicas`` the user has ever
set (a ghost field the controller never reads): between a scale-down and the
controller noticing it, more pods than the *current* replicas are expected,
but never more than the user ever asked for.
"""

from __future__ import annotations

from kubemc.model.controllers.replicaset import POD, RS
from kubemc.properties.core import COVER, EVENTUALLY_ALWAYS, INVARIANT, Property

_DOCS = ("kubernetes.io/docs/concepts/workloads/controllers/replicaset: 'A ReplicaSet's "
         "purpose is to maintain a stable set of replica Pods running at any given time'")
_SEED = ("seeds/000: 'in case of a mismatch corrective action is taken in the cluster until "
         "its current state matches the desired state'")


def _running(objects) -> int:
    """Pods owned by the ReplicaSet that are not being deleted."""
    return sum(1 for _, (owner, terminating) in objects.of_kind(POD)
               if owner == RS[1] and not terminating)


def no_overcreation(m, state) -> bool:
    objects = m.objects(state)
    if RS not in objects:
        return True
    return _running(objects) <= objects[RS][1]


def converged(m, state) -> bool:
    objects = m.objects(state)
    return RS not in objects or _running(objects) == objects[RS][0]


def some_pod_terminating(m, state) -> bool:
    return any(terminating for _, (_, terminating) in m.objects(state).of_kind(POD))


def scaled_down(m, state) -> bool:
    objects = m.objects(state)
    return RS in objects and objects[RS][0] < objects[RS][1]


PROPERTIES = (
    Property("replicaset_no_overcreation", "controllers", INVARIANT,
             "the ReplicaSet never has more running pods than the most replicas it was ever "
             "set to (no over-creation from a stale cache)",
             _DOCS + "; kubernetes/kubernetes pkg/controller/controller_utils.go "
             "ControllerExpectations exist to prevent this", no_overcreation),
    Property("replicaset_converges", "controllers", EVENTUALLY_ALWAYS,
             "once users and faults stop, the ReplicaSet's running pods eventually equal "
             "spec.replicas and stay so", _DOCS + "; " + _SEED, converged),
    Property("replicaset_cover_pod_terminating", "controllers", COVER,
             "some reachable state has a terminating pod (deletions are exercised)",
             _DOCS, some_pod_terminating),
    Property("replicaset_cover_scaled_down", "controllers", COVER,
             "some reachable state has a ReplicaSet scaled below its peak",
             _DOCS, scaled_down),
)

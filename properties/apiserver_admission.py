"""Properties of admission (``model.apiserver.admission``): quota, namespace
lifecycle, defaults. Each is decided from the objects in the store — the live
pods themselves, not the quota's own bookkeeping, which is what a bug would
get wrong."""

from __future__ import annotations

from kubemc.model.apiserver import registry
from kubemc.model.apiserver import resources as res
from kubemc.model.apiserver.admission import NAMESPACE, namespace_key, pod_key, quota_key
from kubemc.model.store import mvcc
from kubemc.properties.core import INVARIANT, TRANSITION, Property

_QUOTA = ("kubernetes.io/docs/concepts/policy/resource-quotas: the quota system tracks "
          "usage and 'if creating or updating a resource violates a quota constraint, the "
          "request will fail with HTTP status code 403 FORBIDDEN'")
_LIFECYCLE = ("Kubernetes admission controllers reference, NamespaceLifecycle: 'enforces "
              "that a Namespace that is undergoing termination cannot have new objects "
              "created in it, and ensures that requests in a non-existent Namespace are "
              "rejected'")
_DEFAULTS = ("Kubernetes admission controllers reference, DefaultTolerationSeconds "
             "(not-ready and unreachable NoExecute tolerations of 300 s); seeds/000: 'if "
             "no such data is included, the default scheduler is selected instead'")
_SEED = ("seeds/000: 'the api server intercepts restful calls from users, operators and "
         "external agents, then validates and processes them'")


def _live_pods(m, store):
    for name in m.pod_names:
        pod, _ = registry.current(store, pod_key(name))
        if pod is not None:
            yield pod


def _pods_in_namespace(store):
    """Every live pod stored under the namespace's pods prefix — found from the
    store's keys, not from the machine's list of names."""
    prefix = res.key("Pod", NAMESPACE, "")
    for key in mvcc.keys_of(store):
        if key.startswith(prefix):
            pod, _ = registry.current(store, key)
            if pod is not None:
                yield pod


def quota_never_exceeded(m, state) -> bool:
    """The pods that exist in the namespace never add up to more than the
    quota's hard limits: their number against ``pods``, the sum of their
    ``cpu`` and ``memory`` requests (pod spec fields; absent counts 0) against
    ``requests.cpu`` and ``requests.memory`` of the quota's spec.hard (a
    resource the quota does not name is not limited). Computed here from the
    objects, not with the admission plugin's own accounting helpers."""
    store = state[0]
    quota, _ = registry.current(store, quota_key())
    if quota is None:
        return True
    hard = {field: amount for field, amount in quota[res.SPEC]}
    pods = list(_pods_in_namespace(store))
    used = {"pods": len(pods), "requests.cpu": 0, "requests.memory": 0}
    for pod in pods:
        spec = {field: value for field, value in pod[res.SPEC]}
        used["requests.cpu"] += spec.get("cpu", 0)
        used["requests.memory"] += spec.get("memory", 0)
    return all(used[r] <= hard[r] for r in used if r in hard)


def namespace_admits_only_when_active(m, before, step, after) -> bool:
    """A pod comes into existence only in a namespace that exists and is not
    being terminated at that moment."""
    for name in m.pod_names:
        key = pod_key(name)
        if registry.current(before[0], key)[0] is None \
                and registry.current(after[0], key)[0] is not None:
            ns, _ = registry.current(before[0], namespace_key())
            if ns is None or ns[res.DELETING]:
                return False
    return True


def pods_are_defaulted(m, state) -> bool:
    """Every stored pod names a scheduler and tolerates not-ready and
    unreachable nodes (NoExecute), as the later components rely on."""
    return all(res.is_defaulted(pod) for pod in _live_pods(m, state[0]))


_C = "apiserver"

PROPERTIES = (
    Property("quota_never_exceeded", _C, INVARIANT,
             "Admission never lets a namespace exceed its ResourceQuota: the live pods' "
             "count and cpu / memory requests stay within the hard limits.",
             f"{_QUOTA}; {_SEED}", quota_never_exceeded),
    Property("namespace_admits_only_when_active", _C, TRANSITION,
             "An object is created only in a namespace that exists and is not terminating.",
             f"{_LIFECYCLE}; {_SEED}", namespace_admits_only_when_active),
    Property("pods_are_defaulted", _C, INVARIANT,
             "Every stored pod has spec.schedulerName and NoExecute tolerations for "
             "node.kubernetes.io/not-ready and node.kubernetes.io/unreachable.",
             _DEFAULTS, pods_are_defaulted),
)

"""Kubernetes resources as the apiserver keeps them in the store: the kinds,
the key of an object, the object value, validation, defaulting and the
generation rule. Pure functions; nothing here touches a store.

Sources (consulted, not copied):

* [CONV] Kubernetes API conventions (community repo,
  contributors/devel/sig-architecture/api-conventions.md): metadata (name,
  namespace, uid, resourceVersion, generation, labels, finalizers,
  ownerReferences, deletionTimestamp); "generation: a sequence number
  representing a specific generation of the desired state", bumped by the
  system on changes to the spec only; 422 Unprocessable Entity ("Invalid")
  with the offending field named in the status details.
* [NAMES] Kubernetes "Object Names and IDs": names of most resources are DNS
  subdomain names (at most 253 characters, lower-case alphanumerics, '-' and
  '.', starting and ending with an alphanumeric); every object gets a uid
  unique over the whole lifetime of the cluster.
* [TAINT] Kubernetes "Taints and Tolerations" and the DefaultTolerationSeconds
  admission plugin: unless a pod sets them, it gets tolerations for
  ``node.kubernetes.io/not-ready`` and ``node.kubernetes.io/unreachable`` with
  effect NoExecute and tolerationSeconds 300.
* [SCHED] seeds/000: "if no such data is included, the default scheduler is
  selected instead" — a pod without spec.schedulerName gets
  ``default-scheduler``.
* etcd storage layout of kube-apiserver: objects live under
  ``/registry/<resource>/<namespace>/<name>`` (cluster-scoped ones under
  ``/registry/<resource>/<name>``), and an object's resourceVersion is the
  ``mod_revision`` of its key — so it is never stored in the value.

The object value is a plain tuple (hashable, cheap to compare)::

    obj = (kind, namespace, name, uid, generation, labels, finalizers,
           owners, deleting, spec, status)
    labels, spec, status = ((field, value), ...)       sorted by field
    finalizers   = (name, ...)                  in order
    owners       = ((kind, name, uid, block_owner_deletion), ...)
    deleting     = 0 | 1                        deletionTimestamp set

and is written to the store as its ``repr`` (the store's values are
strings); ``decode`` is memoized, so reading the same value twice costs a
dictionary lookup.
"""

from __future__ import annotations

import ast
import re
from functools import lru_cache

#: Field positions of an object tuple.
KIND, NAMESPACE, NAME, UID, GENERATION, LABELS, FINALIZERS, OWNERS, DELETING, SPEC, STATUS = \
    range(11)

#: kind -> (resource, namespaced). The kinds the issue asks for.
RESOURCES = {
    "Namespace": ("namespaces", False),
    "Node": ("nodes", False),
    "Lease": ("leases", True),
    "Pod": ("pods", True),
    "Service": ("services", True),
    "EndpointSlice": ("endpointslices", True),
    "ReplicaSet": ("replicasets", True),
    "Deployment": ("deployments", True),
    "Job": ("jobs", True),
    "ServiceAccount": ("serviceaccounts", True),
    "Secret": ("secrets", True),
    "ConfigMap": ("configmaps", True),
    "ResourceQuota": ("resourcequotas", True),
}

DEFAULT_SCHEDULER = "default-scheduler"
NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
DEFAULT_TOLERATION_SECONDS = 300
#: (key, operator, effect, tolerationSeconds), as DefaultTolerationSeconds adds them.
DEFAULT_TOLERATIONS = ((NOT_READY, "Exists", "NoExecute", DEFAULT_TOLERATION_SECONDS),
                       (UNREACHABLE, "Exists", "NoExecute", DEFAULT_TOLERATION_SECONDS))

_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


class UnknownKind(ValueError):
    """A kind the apiserver does not serve (404 NotFound for its path)."""


def resource_of(kind: str) -> tuple[str, bool]:
    try:
        return RESOURCES[kind]
    except KeyError:
        raise UnknownKind(kind) from None


def key(kind: str, namespace: str, name: str) -> str:
    """The store key of an object (cluster-scoped kinds have no namespace)."""
    resource, namespaced = resource_of(kind)
    if namespaced:
        return f"/registry/{resource}/{namespace}/{name}"
    return f"/registry/{resource}/{name}"


def key_of(obj: tuple) -> str:
    return key(obj[KIND], obj[NAMESPACE], obj[NAME])


def make(kind: str, namespace: str, name: str, *, spec=(), labels=(), finalizers=(),
         owners=(), uid: str = "", generation: int = 0, deleting: int = 0,
         status=()) -> tuple:
    """An object as a client submits it (uid and generation are the server's)."""
    return (kind, namespace, name, uid, generation, tuple(sorted(labels)),
            tuple(finalizers), tuple(owners), deleting, tuple(sorted(spec)),
            tuple(sorted(status)))


def spec_get(obj: tuple, field: str, default=None):
    for f, v in obj[SPEC]:
        if f == field:
            return v
    return default


def with_spec(obj: tuple, field: str, value) -> tuple:
    spec = tuple(sorted([(f, v) for f, v in obj[SPEC] if f != field] + [(field, value)]))
    return obj[:SPEC] + (spec,) + obj[SPEC + 1:]


def replace(obj: tuple, index: int, value) -> tuple:
    return obj[:index] + (value,) + obj[index + 1:]


# -- the value in the store ---------------------------------------------------


def encode(obj: tuple) -> str:
    return repr(obj)


@lru_cache(maxsize=None)
def decode(value: str) -> tuple:
    return ast.literal_eval(value)


def describe(obj: tuple) -> dict:
    """An object as named fields, for traces and people."""
    def plain(v):
        return [plain(x) for x in v] if isinstance(v, tuple) else v
    out = {"kind": obj[KIND], "name": obj[NAME], "uid": obj[UID],
           "generation": obj[GENERATION], "spec": {f: plain(v) for f, v in obj[SPEC]}}
    if obj[NAMESPACE]:
        out["namespace"] = obj[NAMESPACE]
    for label, index in (("labels", LABELS), ("status", STATUS)):
        if obj[index]:
            out[label] = {f: plain(v) for f, v in obj[index]}
    if obj[FINALIZERS]:
        out["finalizers"] = list(obj[FINALIZERS])
    if obj[OWNERS]:
        out["ownerReferences"] = plain(obj[OWNERS])
    if obj[DELETING]:
        out["deletionTimestamp"] = True
    return out


# -- validation (422 Invalid, naming the field) -------------------------------


def _nonneg_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _pod(spec: dict):
    containers = spec.get("containers")
    if not containers:
        return "spec.containers"
    for res in ("cpu", "memory"):
        if res in spec and not _nonneg_int(spec[res]):
            return f"spec.containers[0].resources.requests.{res}"
    return None


def _replicas(spec: dict):
    if "replicas" in spec and not _nonneg_int(spec["replicas"]):
        return "spec.replicas"
    return None


def _job(spec: dict):
    if "completions" in spec and not _nonneg_int(spec["completions"]):
        return "spec.completions"
    return None


def _service(spec: dict):
    for port in spec.get("ports", ()):
        if not isinstance(port, int) or not 1 <= port <= 65535:
            return "spec.ports[0].port"
    return None


def _quota(spec: dict):
    for res, amount in spec.items():
        if not _nonneg_int(amount):
            return f"spec.hard[{res}]"
    return None


_SPEC_RULES = {"Pod": _pod, "ReplicaSet": _replicas, "Deployment": _replicas, "Job": _job,
               "Service": _service, "ResourceQuota": _quota}


def invalid_field(obj: tuple) -> str | None:
    """The field that makes ``obj`` invalid (a 422 names it), or None.

    Raises UnknownKind for a kind the apiserver does not serve.
    """
    _, namespaced = resource_of(obj[KIND])
    name = obj[NAME]
    if not isinstance(name, str) or not name:
        return "metadata.name"
    if len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
        return "metadata.name"
    if namespaced and not obj[NAMESPACE]:
        return "metadata.namespace"
    if not namespaced and obj[NAMESPACE]:
        return "metadata.namespace"  # cluster-scoped objects have none
    for ref in obj[OWNERS]:
        if len(ref) != 4 or ref[0] not in RESOURCES or not ref[1] or not ref[2]:
            return "metadata.ownerReferences"
    if len(set(obj[FINALIZERS])) != len(obj[FINALIZERS]):
        return "metadata.finalizers"
    rule = _SPEC_RULES.get(obj[KIND])
    return rule(dict(obj[SPEC])) if rule else None


# -- defaulting and the server-set fields -------------------------------------


def defaulted(obj: tuple) -> tuple:
    """The object with the defaults later components rely on: a pod gets
    ``schedulerName: default-scheduler`` [SCHED] and, for each of not-ready and
    unreachable it does not already tolerate, a NoExecute toleration of 300 s
    [TAINT]."""
    if obj[KIND] != "Pod":
        return obj
    if spec_get(obj, "schedulerName") is None:
        obj = with_spec(obj, "schedulerName", DEFAULT_SCHEDULER)
    tolerations = tuple(spec_get(obj, "tolerations", ()))
    have = {t[0] for t in tolerations}
    added = tuple(t for t in DEFAULT_TOLERATIONS if t[0] not in have)
    if added or spec_get(obj, "tolerations") is None:
        obj = with_spec(obj, "tolerations", tolerations + added)
    return obj


def is_defaulted(obj: tuple) -> bool:
    """What ``defaulted`` guarantees of a pod, stated independently of it."""
    if obj[KIND] != "Pod":
        return True
    if not spec_get(obj, "schedulerName"):
        return False
    tolerated = {t[0] for t in spec_get(obj, "tolerations", ()) if t[2] in ("NoExecute", "")}
    return {NOT_READY, UNREACHABLE} <= tolerated


def for_create(obj: tuple, uid: str) -> tuple:
    """The stored form of a new object: server-set uid, generation 1, no
    deletionTimestamp (a client cannot create an object being deleted)."""
    return obj[:UID] + (uid, 1) + obj[LABELS:DELETING] + (0,) + obj[SPEC:]


def next_generation(old: tuple, new: tuple) -> int:
    """[CONV] generation moves only when the desired state (spec) changes."""
    return old[GENERATION] + 1 if new[SPEC] != old[SPEC] else old[GENERATION]


def for_update(old: tuple, new: tuple) -> tuple:
    """The stored form of an update: identity (kind, namespace, name, uid) and
    deletionTimestamp are the server's; generation follows the spec."""
    return (old[KIND], old[NAMESPACE], old[NAME], old[UID], next_generation(old, new),
            new[LABELS], new[FINALIZERS], new[OWNERS], old[DELETING], new[SPEC], new[STATUS])

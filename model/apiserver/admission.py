"""Admission: namespace lifecycle, ResourceQuota and defaults, with
``replicas`` apiserver replicas admitting pod creations concurrently.

A pod create is admitted in two steps, as in the apiserver: ``Admit`` takes
the request and reads the namespace's ResourceQuota (what the quota
admission plugin reads may already be stale when it decides); ``Commit``
decides and writes. The decision is written with one store transaction that
compares the quota's and the namespace's mod_revision and the pod's absence:
if another replica charged the quota in between, the compare fails and the
request starts again from a fresh read — the quota plugin's optimistic
update of the quota status (409 on the quota, retried inside the apiserver).
Kubernetes charges the quota and creates the pod in two writes and lets the
quota controller give back the charge of a create that then fails; one
transaction is the simpler model and admits exactly the same pods.

Sources (consulted, not copied): kubernetes.io/docs/concepts/policy/
resource-quotas ("if creating or updating a resource violates a quota
constraint, the request will fail with HTTP status code 403 FORBIDDEN";
object counts and requests.cpu / requests.memory); the admission controllers
reference (NamespaceLifecycle: no new objects in a namespace that is being
terminated, and requests in a non-existent namespace are rejected;
ResourceQuota; DefaultTolerationSeconds); …/namespaces (deleting a namespace
marks it Terminating, the namespace controller deletes its content, then the
``kubernetes`` finalizer is removed and the namespace goes).

Actions: ``Admit(replica, pod, size)`` and ``DeletePod(pod)`` and
``DeleteNamespace`` (environment); ``Commit(replica)``, ``QuotaSync`` (the
quota controller recomputes usage from the live pods), ``CleanNamespace(i)``
and ``FinalizeNamespace`` (the namespace controller) (system).
"""

from __future__ import annotations

from kubemc.model.apiserver import registry
from kubemc.model.apiserver import resources as res
from kubemc.model.kernel import ENVIRONMENT, SYSTEM, Machine, Mutant, Step, action
from kubemc.model.store import mvcc
from kubemc.model.store.mvcc import EQUAL, MOD, Compare, Put, Range, Txn

NAMESPACE = "team"
QUOTA = "quota"
NAMESPACE_FINALIZER = "kubernetes"
#: pod sizes: name -> (cpu, memory) requests
SIZES = {"small": (1, 1), "large": (2, 1)}
#: the quota's hard limits: pods, requests.cpu, requests.memory
HARD = (("pods", 2), ("requests.cpu", 2), ("requests.memory", 2))
RESOURCES = ("pods", "requests.cpu", "requests.memory")
POD_NAMES = ("a", "b", "c")


def pod_key(name: str) -> str:
    return res.key("Pod", NAMESPACE, name)


def namespace_key() -> str:
    return res.key("Namespace", "", NAMESPACE)


def quota_key() -> str:
    return res.key("ResourceQuota", NAMESPACE, QUOTA)


def usage_of(pod: tuple) -> tuple:
    """What one pod counts against a quota: (pods, requests.cpu, requests.memory)."""
    return (1, res.spec_get(pod, "cpu", 0), res.spec_get(pod, "memory", 0))


def add(a: tuple, b: tuple) -> tuple:
    return tuple(x + y for x, y in zip(a, b))


def used_of(quota: tuple) -> tuple:
    status = dict(quota[res.STATUS])
    return tuple(status.get(r, 0) for r in RESOURCES)


def hard_of(quota: tuple) -> tuple:
    spec = dict(quota[res.SPEC])
    return tuple(spec[r] for r in RESOURCES)


STALE_QUOTA_COUNT = "stale_quota_count"
CREATE_IN_TERMINATING_NAMESPACE = "create_in_terminating_namespace"
NO_DEFAULT_TOLERATIONS = "no_default_tolerations"


class ApiserverAdmission(Machine):
    """The actions are declared on their handlers (``@action``); ``steps``
    interleaves each replica's admissions and commit."""

    name = "apiserver-admission"
    mutants = {
        STALE_QUOTA_COUNT: Mutant(
            "quota admission decides on the usage it read when the request arrived and "
            "writes the new usage without comparing the quota's resourceVersion, so two "
            "replicas admitting at once both pass", violates="quota_never_exceeded"),
        CREATE_IN_TERMINATING_NAMESPACE: Mutant(
            "namespace lifecycle admission checks only that the namespace exists, not "
            "that it is being terminated", violates="namespace_admits_only_when_active"),
        NO_DEFAULT_TOLERATIONS: Mutant(
            "defaulting sets schedulerName but not the not-ready / unreachable NoExecute "
            "tolerations", violates="pods_are_defaulted"),
    }

    def __init__(self, replicas: int = 2, pods: int = 3, max_revision: int = 8,
                 mutant: str | None = None):
        super().__init__(mutant)
        if not 1 <= replicas <= 3 or not 1 <= pods <= len(POD_NAMES):
            raise ValueError(f"apiserver-admission bounds: 1 <= replicas <= 3, "
                             f"1 <= pods <= {len(POD_NAMES)}")
        if max_revision < 3:
            raise ValueError("apiserver-admission bounds: max_revision >= 3")
        self.replicas, self.pods, self.max_revision = replicas, pods, max_revision
        self.pod_names = POD_NAMES[:pods]
        self.content = tuple(pod_key(n) for n in self.pod_names) + (quota_key(),)

    def config(self):
        return {"replicas": self.replicas, "pods": self.pods,
                "max_revision": self.max_revision}

    def init_states(self):
        store, _ = registry.create(mvcc.INITIAL, res.make(
            "Namespace", "", NAMESPACE, finalizers=(NAMESPACE_FINALIZER,)))
        store, _ = registry.create(store, res.make(
            "ResourceQuota", NAMESPACE, QUOTA, spec=HARD,
            status=tuple(zip(RESOURCES, (0, 0, 0)))))
        yield (store, ((),) * self.replicas)

    # -- steps ---------------------------------------------------------------
    def steps(self, state):
        for r in range(self.replicas):
            for name in self.pod_names:
                for size in SIZES:
                    yield Step("Admit", (r, name, size))
            yield Step("Commit", (r,))
        for name in self.pod_names:
            yield Step("DeletePod", (name,))
        yield Step("DeleteNamespace")
        yield Step("QuotaSync")
        for i in range(len(self.content)):
            yield Step("CleanNamespace", (i,))
        yield Step("FinalizeNamespace")

    def apply(self, state, step):
        new = super().apply(state, step)
        if new is None or mvcc.revision(new[0]) > self.max_revision:
            return None  # beyond the bound: this request never happens
        return new

    def _read_quota(self, store):
        quota, rv = registry.current(store, quota_key())
        return (rv, used_of(quota)) if quota is not None else (0, (0, 0, 0))

    @action("Admit", tag=ENVIRONMENT)
    def _Admit(self, state, r, name, size):
        store, pending = state
        if pending[r] or name not in self.pod_names or size not in SIZES:
            return None
        quota_rv, used = self._read_quota(store)
        return store, pending[:r] + ((name, size, quota_rv, used),) + pending[r + 1:]

    @action("Commit", tag=SYSTEM)
    def _Commit(self, state, r):
        store, pending = state
        if not pending[r]:
            return None
        name, size, quota_rv, used = pending[r]
        done = pending[:r] + ((),) + pending[r + 1:]
        ns, ns_rv = registry.current(store, namespace_key())
        if ns is None:
            return store, done  # 404 NotFound: no such namespace
        if ns[res.DELETING] and self.mutant != CREATE_IN_TERMINATING_NAMESPACE:
            return store, done  # 403 Forbidden: the namespace is being terminated
        cpu, memory = SIZES[size]
        pod = res.make("Pod", NAMESPACE, name,
                       spec=(("containers", ("app",)), ("cpu", cpu), ("memory", memory)))
        pod = res.defaulted(pod)
        if self.mutant == NO_DEFAULT_TOLERATIONS:
            pod = res.with_spec(pod, "tolerations", ())
        key = pod_key(name)
        stored = res.for_create(pod, f"uid-{mvcc.revision(store) + 1}")
        compares = [Compare(key, MOD, EQUAL, 0)]
        if self.mutant != CREATE_IN_TERMINATING_NAMESPACE:
            compares.append(Compare(namespace_key(), MOD, EQUAL, ns_rv))
        ops = [Put(key, res.encode(stored))]
        quota, _ = registry.current(store, quota_key())
        if quota is not None:
            charged = add(used, usage_of(stored))
            if any(u > h for u, h in zip(charged, hard_of(quota))):
                return store, done  # 403 Forbidden: exceeded quota
            if self.mutant != STALE_QUOTA_COUNT:
                compares.append(Compare(quota_key(), MOD, EQUAL, quota_rv))
            new_quota = res.replace(quota, res.STATUS, tuple(zip(RESOURCES, charged)))
            ops.append(Put(quota_key(), res.encode(new_quota)))
        txn = Txn(tuple(compares), tuple(ops), (Range(key),))
        new, resp = mvcc.apply_request(store, txn)
        if isinstance(resp, mvcc.Error):
            return None
        if resp.succeeded:
            return new, done  # 201 Created
        if registry.current(store, key)[0] is not None:
            return store, done  # 409 AlreadyExists
        # the quota or the namespace moved on: admission starts again from a
        # fresh read (the quota plugin's retry on conflict)
        quota_rv, used = self._read_quota(store)
        if (quota_rv, used) == pending[r][2:] and ns_rv == registry.current(store,
                                                                            namespace_key())[1]:
            return None
        return store, pending[:r] + ((name, size, quota_rv, used),) + pending[r + 1:]

    @action("DeletePod", tag=ENVIRONMENT)
    def _DeletePod(self, state, name):
        store, pending = state
        new, status = registry.delete(store, pod_key(name))
        return (new, pending) if status.ok else None

    @action("DeleteNamespace", tag=ENVIRONMENT, rare=True)
    def _DeleteNamespace(self, state):
        store, pending = state
        new, status = registry.delete(store, namespace_key())
        return (new, pending) if new is not store else None

    @action("QuotaSync", tag=SYSTEM)
    def _QuotaSync(self, state):
        store, pending = state
        quota, rv = registry.current(store, quota_key())
        if quota is None:
            return None
        usage = (0, 0, 0)
        for name in self.pod_names:
            pod, _ = registry.current(store, pod_key(name))
            if pod is not None:
                usage = add(usage, usage_of(pod))
        if usage == used_of(quota):
            return None
        updated = res.replace(quota, res.STATUS, tuple(zip(RESOURCES, usage)))
        new, status = registry.update(store, updated, rv)
        return (new, pending) if status.ok else None

    def _terminating(self, store):
        ns, rv = registry.current(store, namespace_key())
        return (ns, rv) if ns is not None and ns[res.DELETING] else (None, 0)

    @action("CleanNamespace", tag=SYSTEM)
    def _CleanNamespace(self, state, i):
        store, pending = state
        if self._terminating(store)[0] is None:
            return None
        new, status = registry.delete(store, self.content[i])
        return (new, pending) if status.ok else None

    @action("FinalizeNamespace", tag=SYSTEM)
    def _FinalizeNamespace(self, state):
        store, pending = state
        ns, rv = self._terminating(store)
        if ns is None or any(registry.current(store, k)[0] is not None for k in self.content):
            return None
        kept = tuple(f for f in ns[res.FINALIZERS] if f != NAMESPACE_FINALIZER)
        new, status = registry.update(store, res.replace(ns, res.FINALIZERS, kept), rv)
        return (new, pending) if status.ok else None

    def canonical(self, state):
        """The store compacted at its current revision: every action and
        property reads current objects only (see ``lifecycle``)."""
        store = state[0]
        rev = mvcc.revision(store)
        if mvcc.compact_revision(store) >= rev:
            return state
        return (mvcc.apply_valid(store, mvcc.Compact(rev))[0], state[1])

    def view(self, state):
        store, pending = state
        objects = {}
        for k in (namespace_key(),) + self.content:
            obj, rv = registry.current(store, k)
            if obj is None:
                objects[k] = "absent"
                continue
            objects[k] = {"resourceVersion": rv, "deletionTimestamp": bool(obj[res.DELETING]),
                          "spec": {f: (list(v) if isinstance(v, tuple) else v)
                                   for f, v in obj[res.SPEC] if f != "tolerations"},
                          "tolerations": [list(t) for t in res.spec_get(obj, "tolerations", ())],
                          "status": dict(obj[res.STATUS])}
        return {"revision": mvcc.revision(store), "objects": objects,
                "admitting": [list(p) if p else "idle" for p in pending]}

"""The control plane's clients of the apiserver: the scheduler and the
controllers of kube-controller-manager, each one reconcile pass as one
atomic link with the apiserver (``model.cluster.apiserver`` says why an
atomic, fresh read is sound here).

Each is a stateless part: what it knows it reads from the apiserver on
every pass, as a level-triggered controller does after a relist. Each
``*_pass`` function is ``decide(state, view, params) -> (state, writes)``
(or ``None``: nothing to do), read by ``apiserver.request``.

* **scheduler** — ``Bind(pod, node)`` for a pod not bound and not
  terminating, to a node where its Filter plugins pass: TaintToleration,
  NodeUnschedulable and NodeResourcesFit, the functions of
  ``model.scheduler.plugins`` (the ``scheduler`` component checks them
  against the scheduling documents). A node that is not Ready is filtered
  by its taint (TaintNodesByCondition: the node lifecycle controller puts
  ``node.kubernetes.io/unreachable:NoSchedule`` on it). Which feasible node
  is chosen is left open — scoring decides it in Kubernetes and every
  choice is explored here, so a property holds whatever the scores say;
  the scheduling queue, assume/bind races and preemption are the
  ``scheduler`` component's models.
* **Deployment controller** — creates the Deployment's ReplicaSet. Rollouts
  (a second ReplicaSet, maxSurge) are the ``controllers`` component's
  ``deployment`` model; here the template never changes.
* **ReplicaSet controller** — counts its active pods (no deletionTimestamp,
  ``controller.FilterActivePods``) and creates the missing ones in one
  request (its slow-start batch) or deletes the surplus. Pods are named by
  slot and slots are not reused: at most ``capacity`` pods ever exist.
* **EndpointSlice controller** — publishes one endpoint per selected pod
  that has an address, with ``serving`` = the pod's Ready condition,
  ``terminating`` = it has a deletionTimestamp, ``ready`` = serving and not
  terminating (discovery.k8s.io/v1 EndpointConditions).
* **node lifecycle controller** — ``Monitor(n)``: a node whose Lease has
  expired is marked Ready=Unknown, gets the unreachable NoSchedule and
  NoExecute taints, and its pods' Ready conditions are set False
  (``MarkPodsNotReady``), in one write; ``Evict(n)``: the taint manager
  deletes the pods of a node with the NoExecute taint once their
  toleration of it (the default 300 s) has run out — the passing of those
  300 s is the step itself (weakly fair). The grace period, the probe
  timestamps and the early-eviction properties are the ``controllers``
  component's ``nodelifecycle`` model; a node that comes back is not
  modelled here (the failure is a node that dies).
"""

from __future__ import annotations

from kubemc.model.cluster import spec
from kubemc.model.cluster.store import (
    BIND, CREATE_POD, CREATE_RS, DELETE_POD, LEASES, NODE_STATUS, NODES, POD_READY, PODS, RS,
    SLICE, SLICE_UPDATE, TRUE, UNBOUND, UNKNOWN,
)
from kubemc.model.kernel import Machine
from kubemc.model.scheduler import plugins
from kubemc.model.scheduler.objects import NO_EXECUTE


class ControlPlaneClient(Machine):
    """A stateless part: it keeps nothing between its passes."""

    tags = {}

    def __init__(self):
        super().__init__(None)

    def init_states(self):
        yield ()

    def steps(self, state):
        return ()

    def apply(self, state, step):
        return None

    def view(self, state):
        return {}


# -- the scheduler ----------------------------------------------------------------

def feasible(view, slot: int, node: int, ignore_taints=(),
             ignore_resources: bool = False) -> bool:
    """The scheduler's Filter plugins for pod ``slot`` on ``node``; taints
    whose key is in ``ignore_taints`` are not seen, and with
    ``ignore_resources`` NodeResourcesFit is skipped (seeded bugs)."""
    taints = tuple(t for t in view[NODES][node][1] if t.key not in ignore_taints)
    candidate = spec.scheduler_node(node, taints)
    pod = spec.template(slot)
    placed = [(i, spec.template(i), n, terminating)
              for i, (n, _, _, terminating) in enumerate(view[PODS]) if n != UNBOUND]
    return (plugins.taint_toleration(pod, candidate)
            and plugins.node_unschedulable(pod, candidate)
            and (ignore_resources or plugins.resources_fit(pod, node, candidate, placed)))


def bind_params(nodes: int):
    def params(joint):
        view = joint["apiserver"][0]
        for slot, (n, _, _, terminating) in enumerate(view[PODS]):
            if n == UNBOUND and not terminating:
                for node in range(nodes):
                    yield (slot, node)
    return params


def scheduler_pass(ignore_taints=(), ignore_resources: bool = False):
    def decide(state, view, params):
        slot, node = params
        pods = view[PODS]
        if not 0 <= slot < len(pods) or not 0 <= node < len(view[NODES]):
            return None
        if pods[slot][0] != UNBOUND or pods[slot][3]:
            return None
        if not feasible(view, slot, node, ignore_taints, ignore_resources):
            return None
        return state, ((BIND, slot, node),)
    return decide


# -- kube-controller-manager ------------------------------------------------------

def deployment_pass(replicas: int):
    def decide(state, view, params):
        if view[RS]:
            return None
        return state, ((CREATE_RS, replicas),)
    return decide


def replicaset_pass(capacity: int, counts_terminating: bool = False,
                    one_extra: bool = False):
    """``one_extra``: the seeded off-by-one, one pod more than missing."""

    def decide(state, view, params):
        replicas, pods = view[RS], view[PODS]
        if not replicas:
            return None
        active = [i for i, p in enumerate(pods) if counts_terminating or not p[3]]
        if len(active) < replicas:
            missing = replicas - len(active) + (1 if one_extra else 0)
            if len(pods) + missing > capacity:
                return None  # the model's bound on pod names
            return state, ((CREATE_POD,),) * missing
        if len(active) > replicas:
            # the controller deletes unscheduled pods first, then the newest
            ranked = sorted(active, key=lambda i: (pods[i][0] != UNBOUND, -i))
            return state, tuple((DELETE_POD, i) for i in ranked[:len(active) - replicas])
        return None
    return decide


def endpoints(view, ignore_conditions: bool = False,
              ready_ignores_pod_ready: bool = False) -> tuple:
    """The EndpointSlice's endpoints for the pods in ``view``; the flags are
    seeded bugs: ``ignore_conditions`` publishes every pod as ready and
    serving, ``ready_ignores_pod_ready`` sets ready = not terminating."""
    out = []
    for slot, (node, ip, ready, terminating) in enumerate(view[PODS]):
        if not ip:
            continue
        if ignore_conditions:
            out.append((slot, ip, node, True, True, False))
        elif ready_ignores_pod_ready:
            out.append((slot, ip, node, not terminating, ready, terminating))
        else:
            out.append((slot, ip, node, ready and not terminating, ready, terminating))
    return tuple(out)


def endpointslice_pass(ignore_conditions: bool = False, ready_ignores_pod_ready: bool = False):
    def decide(state, view, params):
        desired = endpoints(view, ignore_conditions, ready_ignores_pod_ready)
        if desired == view[SLICE]:
            return None
        return state, ((SLICE_UPDATE, desired),)
    return decide


def node_params(nodes: int):
    return lambda joint: ((n,) for n in range(nodes))


def monitor_pass(keeps_pods_ready: bool = False):
    """``Monitor(n)`` (module text); ``keeps_pods_ready``: the seeded bug
    that leaves the node's pods Ready (no ``POD_READY`` writes)."""

    def decide(state, view, params):
        (n,) = params
        if view[LEASES][n] or view[NODES][n][0] != TRUE:
            return None
        taints = view[NODES][n][1] + (spec.UNREACHABLE_NO_SCHEDULE,
                                      spec.UNREACHABLE_NO_EXECUTE)
        writes = [(NODE_STATUS, n, UNKNOWN, taints)]
        if not keeps_pods_ready:
            writes += [(POD_READY, i, False) for i, p in enumerate(view[PODS])
                       if p[0] == n and p[2]]
        return state, tuple(writes)

    return decide


def evict_pass(never_evicts: bool = False):
    def decide(state, view, params):
        (n,) = params
        if never_evicts:
            return None
        if not any(t.effect == NO_EXECUTE for t in view[NODES][n][1]):
            return None
        doomed = [i for i, p in enumerate(view[PODS]) if p[0] == n and not p[3]]
        if not doomed:
            return None
        return state, tuple((DELETE_POD, i) for i in doomed)
    return decide

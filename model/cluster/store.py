"""The cluster's store (etcd), abstracted as a linearizable map of objects.

Why an abstraction and why it is sound here. The ``store`` component checks
raft (Election Safety, Log Matching, Leader Completeness, State Machine
Safety) and etcd's MVCC semantics on its own machines, and ``kubemc conform
etcd`` checks a real etcd's histories for linearizability; raft's safety
proof is what makes a replicated log behave as one sequential state machine.
What the rest of the cluster can observe of the store is therefore a single
map whose every transaction takes effect atomically, in one total order
consistent with real time — which is what this part is: its state is the
map, and :func:`commit` applies one transaction. Revisions are left out:
in this model every reader reads the current map (see
``model.cluster.apiserver``), no client compares resourceVersions, and a
counter that only grows would make every infinite behaviour look like an
unbounded path instead of the cycle it is (``model.controllers.loop``
renumbers its versions for the same reason). Optimistic concurrency,
watches from a revision and compaction are checked where they matter: the
``apiserver``, ``informer`` and ``controllers`` components.

The map (plain tuples, so a joint state hashes fast)::

    (replicaset, nodes, leases, pods, slice)
    replicaset = 0 before the Deployment controller created it, else its replicas
    nodes[n]   = (ready, taints)        ready: "True" or "Unknown";
                                        taints: tuple of scheduler Taints
    leases[n]  = True while node n's Lease is being renewed, False once expired
    pods[i]    = (node, ip, ready, terminating)
                 node -1: not bound; ip 0: no address reported yet
    slice      = ((slot, ip, node, ready, serving, terminating), ...)
                 the Service's EndpointSlice, in slot order

A pod is named by its slot (``spec.pod_name``); pods are never removed here:
the only pods deleted are those of a dead node, and they stay terminating
(the kubelet that would confirm their end is gone).

The part takes no step of its own: every change comes through the
apiserver's ``Commit`` link.
"""

from __future__ import annotations

from kubemc.model.cluster import spec
from kubemc.model.kernel import Machine
from kubemc.model.network.addr import show

RS, NODES, LEASES, PODS, SLICE = range(5)
UNBOUND = -1
TRUE, UNKNOWN = "True", "Unknown"

#: write operations a request carries (plain tuples, shown in traces)
CREATE_RS, CREATE_POD, BIND, STATUS, SLICE_UPDATE = (
    "create-replicaset", "create-pod", "bind", "status", "update-slice")
NODE_STATUS, POD_READY, DELETE_POD, LEASE = "node-status", "pod-ready", "delete-pod", "lease"


def initial(nodes: int) -> tuple:
    return (0, tuple((TRUE, spec.initial_taints(n)) for n in range(nodes)),
            (True,) * nodes, (), ())


def commit(objects: tuple, writes: tuple) -> tuple | None:
    """One transaction: every write applied, in order, or none (``None``)
    when one of them names an object that is not there or, for a binding,
    a pod already bound — the apiserver's 404 and 409."""
    rs, nodes, leases, pods, eps = objects
    pods = list(pods)
    nodes = list(nodes)
    leases = list(leases)
    for w in writes:
        op = w[0]
        if op == CREATE_RS:
            if rs:
                return None
            rs = w[1]
        elif op == CREATE_POD:
            pods.append((UNBOUND, 0, False, False))
        elif op == BIND:
            _, slot, node = w
            if not 0 <= slot < len(pods) or pods[slot][0] != UNBOUND:
                return None
            pods[slot] = (node,) + pods[slot][1:]
        elif op == STATUS:
            _, slot, ip, ready = w
            if not 0 <= slot < len(pods):
                return None
            node, _, _, terminating = pods[slot]
            pods[slot] = (node, ip, ready, terminating)
        elif op == POD_READY:
            _, slot, ready = w
            pods[slot] = pods[slot][:2] + (ready,) + pods[slot][3:]
        elif op == DELETE_POD:
            _, slot = w
            pods[slot] = pods[slot][:3] + (True,)
        elif op == SLICE_UPDATE:
            eps = w[1]
        elif op == NODE_STATUS:
            _, n, ready, taints = w
            nodes[n] = (ready, taints)
        elif op == LEASE:
            _, n, renewed = w
            leases[n] = renewed
        else:
            raise ValueError(f"unknown write {w!r}")
    return (rs, tuple(nodes), tuple(leases), tuple(pods), eps)


class Store(Machine):
    """etcd as the cluster sees it: one linearizable map (module text)."""

    name = "store"
    tags = {}

    def __init__(self, nodes: int):
        super().__init__(None)
        self.nodes = nodes

    def init_states(self):
        yield initial(self.nodes)

    def steps(self, state):
        return ()

    def apply(self, state, step):
        return None

    def view(self, state):
        rs, nodes, leases, pods, eps = state
        return {"replicaset": rs,
                "nodes": [[ready, [f"{t.key}:{t.effect}" for t in taints]]
                          for ready, taints in nodes],
                "leases": ["renewed" if r else "expired" for r in leases],
                "pods": [[spec.pod_name(i), spec.node_name(n) if n >= 0 else "-",
                          _show(ip), ready, terminating]
                         for i, (n, ip, ready, terminating) in enumerate(pods)],
                "endpointslice": [[spec.pod_name(s), _show(ip), ready, serving, terminating]
                                  for s, ip, _, ready, serving, terminating in eps]}


def _show(ip: int) -> str:
    return show(ip) if ip else "-"

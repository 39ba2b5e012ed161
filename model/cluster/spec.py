"""The cluster the end-to-end model runs: what never changes during a run.

The single-master topology of the seeds (000: "single-master and
multi-worker installation"): one master that runs the control plane and,
as kubeadm provisions it, a kubelet and a kube-proxy of its own, carrying
the ``node-role.kubernetes.io/control-plane:NoSchedule`` taint ("Apps
shouldn't run on Masters", seeds/002) — plus ``workers`` worker nodes. On
it a user has created one Deployment of ``replicas`` pods and one ClusterIP
Service selecting them (the question of issue 15: "I create a Deployment
behind a Service").

Numbers: a worker's allocatable cpu holds exactly two pods of the
template, and the master has room but its taint forbids it. So
NodeResourcesFit is the only filter refusing a node only when a Ready
worker already holds two pods and a third is pending — with three
replicas and no failure; at the defaults (two replicas, one failure) that
never happens, since a dead worker's pods count against the dead (and
tainted) worker, not the survivor
(docs/cluster.md, "What is not modelled").

Node ``0`` is the master, ``1 .. workers`` are the workers.
"""

from __future__ import annotations

from kubemc.model.network import addr
from kubemc.model.network.dataplane import TCP
from kubemc.model.scheduler.objects import (
    NO_EXECUTE, NO_SCHEDULE, Node, Pod, Resources, Taint, Toleration,
)

MASTER = 0
CLUSTER_CIDR = addr.cidr("10.244.0.0/16")
SERVICE_CIDR = addr.cidr("10.96.0.0/12")

#: the Service: a ClusterIP in front of the Deployment's pods
SERVICE_NAME = "web"
CLUSTER_IP = SERVICE_CIDR[0] + 10          # 10.96.0.10
SERVICE_PORT = 80
TARGET_PORT = 8080
PROTOCOL = TCP

CONTROL_PLANE_TAINT = Taint("node-role.kubernetes.io/control-plane", "", NO_SCHEDULE)
#: what the node lifecycle controller puts on a node whose kubelet stopped
#: renewing its Lease (TaintNodesByCondition and taint-based eviction:
#: kubernetes.io/docs/reference/labels-annotations-taints)
UNREACHABLE_NO_SCHEDULE = Taint("node.kubernetes.io/unreachable", "", NO_SCHEDULE)
UNREACHABLE_NO_EXECUTE = Taint("node.kubernetes.io/unreachable", "", NO_EXECUTE)

#: the tolerations the DefaultTolerationSeconds admission plugin adds to
#: every pod: not-ready and unreachable, NoExecute, for 300 s — so a pod of
#: a dead node is evicted 300 s after the taint (the model lets that time
#: pass as one step of the node lifecycle controller)
DEFAULT_TOLERATIONS = (
    Toleration("node.kubernetes.io/not-ready", "Exists", "", NO_EXECUTE),
    Toleration("node.kubernetes.io/unreachable", "Exists", "", NO_EXECUTE),
)
#: the Deployment's pod template as the scheduler reads it
POD_REQUEST = Resources(cpu=500, memory=256 * 2**20)
WORKER_ALLOCATABLE = Resources(cpu=1000, memory=4 * 2**30)
MASTER_ALLOCATABLE = Resources(cpu=4000, memory=8 * 2**30)


def node_name(n: int) -> str:
    return "master" if n == MASTER else f"worker-{n}"


def node_ip(n: int) -> int:
    return addr.ip("192.168.0.10") + n


def pod_cidr(n: int):
    """The node's podCIDR, as the node IPAM controller carves it."""
    return addr.subnet(CLUSTER_CIDR, 24, n)


def pod_name(slot: int) -> str:
    return f"web-{slot}"


def template(slot: int) -> Pod:
    """Pod ``slot`` of the Deployment, as the scheduler's plugins read it."""
    return Pod(pod_name(slot), containers=(POD_REQUEST,), labels=(("app", "web"),),
               tolerations=DEFAULT_TOLERATIONS)


def initial_taints(n: int) -> tuple:
    return (CONTROL_PLANE_TAINT,) if n == MASTER else ()


def allocatable(n: int) -> Resources:
    return MASTER_ALLOCATABLE if n == MASTER else WORKER_ALLOCATABLE


def scheduler_node(n: int, taints: tuple) -> Node:
    return Node(node_name(n), allocatable(n), taints=taints)

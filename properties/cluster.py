"""End-to-end properties of the whole cluster (``model.cluster``): the
question of issue 15 — "I create a Deployment behind a Service: do its pods
come up on nodes that fit, become reachable without NAT, and come back after
a node dies?" — asked of the composition of every component.

Each property is stated on what the cluster holds and what the wire does,
never through the code it judges: the scheduling filters are restated here
from the Kubernetes scheduling documents (not ``model.scheduler.plugins``,
which the scheduler part uses); readiness is read from the pods the store
holds *and* the sandboxes the runtimes run; reachability is judged by the
network model's forwarding function (``model.network.forward``, the one
definition of where a packet goes) on the wire the state projects to, and
judged on the address the receiving pod sees; "no route to a dead node"
is judged by address (the dead node's podCIDR), not by the EndpointSlice
controller's conditions.
"""

from __future__ import annotations

import functools
import ipaddress

from kubemc.model.cluster import spec
from kubemc.model.cluster.store import NODES, PODS, SLICE, TRUE, UNBOUND
from kubemc.model.cri import runtime as cri
from kubemc.model.network.addr import contains, show_cidr
from kubemc.model.network.forward import DELIVERED, Packet, forward
from kubemc.model.scheduler.objects import NO_EXECUTE, NO_SCHEDULE
from kubemc.properties.core import (
    COVER, EVENTUALLY_ALWAYS, INVARIANT, LEADS_TO, TRANSITION, Property,
)

C = "cluster"
SEEDS_NO_NAT = ("seeds/000: 'pods are expected to be able to communicate with all other "
                "pods in a cluster, all this without the implmentation of network address "
                "translation (nat)'; seeds/004: 'all IPs involved (nodes and pods) are "
                "routable without NAT'")


# -- reading the state (layout only) ----------------------------------------------

def _container_runs(m, s, node: int, slot: int) -> bool:
    """The CRI state of ``node``'s runtime has pod ``slot``'s sandbox ready
    and a container running in it (api.proto: SANDBOX_READY,
    CONTAINER_RUNNING)."""
    sandboxes, containers = m.part_state(s, f"runtime-{spec.node_name(node)}")[2]
    ready = {sb[0] for sb in sandboxes
             if sb[1] == spec.pod_name(slot) and sb[3] == cri.READY}
    return any(c[1] in ready and c[4] == cri.RUNNING for c in containers)


def _ready_pods(m, s) -> dict:
    """slot -> (node, ip) of the pods that are Ready and not terminating in the
    store, on a live node whose runtime runs them — its container running,
    the pod's network at that address."""
    alive, sandboxes = m.alive(s), m.sandboxes(s)
    out = {}
    for slot, (node, ip, ready, terminating) in enumerate(m.objects(s)[PODS]):
        if node != UNBOUND and ready and not terminating and alive[node] \
                and (slot, ip) in sandboxes[node] and _container_runs(m, s, node, slot):
            out[slot] = (node, ip)
    return out


def _dead(m, s) -> list[int]:
    return [n for n, up in enumerate(m.alive(s)) if not up]


# -- N Ready replicas -------------------------------------------------------------

def replicas_ready(m, s) -> bool:
    return len(_ready_pods(m, s)) == m.replicas


# -- the scheduling filters, restated ----------------------------------------------

def _tolerated(taint, tolerations) -> bool:
    """docs/concepts/scheduling-eviction/taint-and-toleration: 'A toleration
    "matches" a taint if the keys are the same and the effects are the same,
    and: the operator is Exists (in which case no value should be specified),
    or the operator is Equal and the values should be equal'; 'An empty key
    with operator Exists matches all keys, values and effects'; 'An empty
    effect matches all effects with key'."""
    for tol in tolerations:
        key_ok = tol.key == taint.key or (tol.key == "" and tol.operator == "Exists")
        effect_ok = tol.effect == "" or tol.effect == taint.effect
        value_ok = tol.operator == "Exists" or tol.value == taint.value
        if key_ok and effect_ok and value_ok:
            return True
    return False


def node_fits(objects, slot: int, node: int) -> bool:
    """Every filter of the scheduling documents, for the Deployment's pod
    ``slot`` on ``node`` in the store's map ``objects``: the node is Ready;
    every NoSchedule and NoExecute taint is tolerated; the requests of the
    pods already bound there (terminating ones too: they hold their
    resources until they are gone) plus this one fit its allocatable, and
    the node has room for one more pod (110, the default maxPods)."""
    ready, taints = objects[NODES][node]
    if ready != TRUE:
        return False
    pod = spec.template(slot)
    if not all(_tolerated(t, pod.tolerations) for t in taints
               if t.effect in (NO_SCHEDULE, NO_EXECUTE)):
        return False
    here = [i for i, p in enumerate(objects[PODS]) if p[0] == node and i != slot]
    cpu = sum(sum(c.cpu for c in spec.template(i).containers) for i in here)
    mem = sum(sum(c.memory for c in spec.template(i).containers) for i in here)
    cap = spec.allocatable(node)
    need_cpu = cpu + sum(c.cpu for c in pod.containers)
    need_mem = mem + sum(c.memory for c in pod.containers)
    return need_cpu <= cap.cpu and need_mem <= cap.memory and len(here) + 1 <= 110


def bound_to_fitting_node(m, before, step, after) -> bool:
    old, new = m.objects(before)[PODS], m.objects(after)[PODS]
    for slot, p in enumerate(new):
        was = old[slot][0] if slot < len(old) else UNBOUND
        if p[0] != UNBOUND and was == UNBOUND and not node_fits(m.objects(before), slot, p[0]):
            return False
    return True


# -- reachability through the ClusterIP, without NAT -------------------------------

def _sources(m, s):
    """(address, node it enters at, pod slot or None): every live node and
    every pod a live node runs."""
    alive, sandboxes = m.alive(s), m.sandboxes(s)
    for n in range(m.nodes):
        if alive[n]:
            yield spec.node_ip(n), n, None
            for slot, ip in sandboxes[n]:
                yield ip, n, slot


_REACHABLE: dict = {}


def service_reachable_without_nat(m, s) -> bool:
    """Memoised on what it reads (the wire and the Ready pods): many states
    share them. See :func:`reachable_on_wire`."""
    ready = frozenset(spec.pod_name(slot) for slot in _ready_pods(m, s))
    key = (m.mutant, m.nodes, m.alive(s), m.synced_slices(s), m.sandboxes(s), ready)
    verdict = _REACHABLE.get(key)
    if verdict is None:
        if len(_REACHABLE) > 100_000:
            _REACHABLE.clear()
        verdict = _REACHABLE[key] = reachable_on_wire(m, s, ready)
    return verdict


def reachable_on_wire(m, s, ready) -> bool:
    """From every source, the first packet to ClusterIP:port is delivered —
    whatever backend the rules pick — to a Ready pod on its target port,
    and that pod sees the packet's own source address. The one exception is
    hairpin traffic (a pod reaching itself through its Service), which
    kube-proxy masquerades so that the reply comes back through the node:
    each KUBE-SEP chain marks packets from its own endpoint's address for
    masquerade (kubernetes.io/docs/tasks/debug/debug-application/
    debug-service, "A Pod fails to reach itself via the Service IP", on
    hairpin mode)."""
    if not ready:
        return False
    dp = m.dataplane(s)
    for src, node, slot in _sources(m, s):
        pkt = Packet(src, spec.CLUSTER_IP, spec.SERVICE_PORT, spec.PROTOCOL, node)
        outcomes = [(p, o) for p, o in forward(dp, pkt) if p > 0]
        if not outcomes:
            return False
        for _, o in outcomes:
            if o.kind != DELIVERED or o.pod not in ready or o.port != spec.TARGET_PORT:
                return False
            hairpin = slot is not None and o.pod == spec.pod_name(slot)
            if o.src != src and not hairpin:
                return False
    return True


# -- a dead node ---------------------------------------------------------------------

def dead_node_has_live_pods(m, s) -> bool:
    dead = _dead(m, s)
    return any(p[0] in dead and not p[3] for p in m.objects(s)[PODS])


def dead_node_pods_replaced(m, s) -> bool:
    return not dead_node_has_live_pods(m, s) and replicas_ready(m, s)


def no_routes_to_dead_node(m, s) -> bool:
    """No live node's kube-proxy rules send the Service's traffic to an
    address of a dead node's podCIDR."""
    dead = [spec.pod_cidr(n) for n in _dead(m, s)]
    if not dead:
        return True
    dp = m.dataplane(s)
    for n, up in enumerate(m.alive(s)):
        if not up:
            continue
        for rule in dp.nodes[n].rules.services:
            if any(contains(block, b.ip) for b in rule.backends for block in dead):
                return False
    return True


def unreachable_node_pods_not_ready(m, s) -> bool:
    """The node documents: a node's Ready condition is Unknown "if the node
    controller has not heard from the node in the last
    node-monitor-grace-period"; a pod's Ready condition says it can serve
    traffic, and nothing the control plane cannot hear from can be said to
    serve. So no pod bound to a node whose Ready condition is not True is
    Ready — the node controller's write that marks the node is the write
    that marks its pods NotReady, so that Services stop sending them
    traffic without waiting for the taint-based eviction (300 s)."""
    objects = m.objects(s)
    nodes = objects[NODES]
    return all(not ready for node, _, ready, _ in objects[PODS]
               if node != UNBOUND and nodes[node][0] != TRUE)


# -- the EndpointSlice says what the pods say ------------------------------------------

def slice_conditions_follow_pods(m, before, step, after) -> bool:
    """Whenever the EndpointSlice is written, each endpoint is one of the
    Service's pods and its conditions are the EndpointConditions API's
    (discovery.k8s.io/v1) of that pod at that moment: ``serving`` is the
    pod's Ready condition ("serving is identical to ready except that it is
    set regardless of the terminating state of endpoints"); ``terminating``
    is whether the pod is being deleted (has a deletionTimestamp);
    ``ready`` is serving and not terminating ("ready should never be
    'true' for terminating endpoints"); the address and nodeName are the
    pod's."""
    objects = m.objects(after)
    if objects[SLICE] == m.objects(before)[SLICE]:
        return True
    pods = objects[PODS]
    for slot, ip, node, ready, serving, terminating in objects[SLICE]:
        if not 0 <= slot < len(pods):
            return False
        pod_node, pod_ip, pod_ready, pod_terminating = pods[slot]
        if ip != pod_ip or node != pod_node:
            return False
        if serving != pod_ready or terminating != pod_terminating:
            return False
        if ready != (pod_ready and not pod_terminating):
            return False
    return True


# -- pods run where they are bound, and no more of them than asked for -------------------

def pods_run_only_where_bound(m, s) -> bool:
    """PodSpec.nodeName: once it is set, "the kubelet for this node becomes
    responsible for the lifecycle of this pod" — that node's and no other's.
    So every sandbox a live node's runtime runs is of a pod the store binds
    to that node."""
    pods = m.objects(s)[PODS]
    for n, up in enumerate(m.alive(s)):
        if up:
            for slot, _ in m.sandboxes(s)[n]:
                if not 0 <= slot < len(pods) or pods[slot][0] != n:
                    return False
    return True


def no_surplus_replicas(m, s) -> bool:
    """ReplicaSet: it "fulfills its purpose by creating and deleting Pods as
    needed to reach the desired number" — it never creates Pods beyond it:
    at most N of its pods are active (not being deleted) at any time."""
    return sum(1 for p in m.objects(s)[PODS] if not p[3]) <= m.replicas


# -- pod addresses come from their node's podCIDR -----------------------------------------

#: kube-controller-manager ``--node-cidr-mask-size-ipv4``: "Mask size for IPv4
#: node cidr in dual-stack cluster. Default: 24" (``--node-cidr-mask-size``
#: for a single-stack one, the same default)
NODE_CIDR_MASK_SIZE = 24


@functools.cache
def node_pod_cidr(node: int) -> tuple[int, int]:
    """Node ``node``'s podCIDR as ``(network address, netmask)``: the node
    IPAM controller (``--allocate-node-cidrs``) gives each node, as it
    registers, the next free block of ``--node-cidr-mask-size`` bits out of
    ``--cluster-cidr`` — the model's nodes register in index order, the
    master first. Carved here with Python's ``ipaddress``, not with the
    model's own ``spec.pod_cidr``."""
    cluster = ipaddress.IPv4Network(show_cidr(spec.CLUSTER_CIDR))
    for i, block in enumerate(cluster.subnets(new_prefix=NODE_CIDR_MASK_SIZE)):
        if i == node:
            return int(block.network_address), int(block.netmask)
    raise ValueError(f"the cluster CIDR has no podCIDR for node {node}")


def _in_pod_cidr(node: int, address: int) -> bool:
    base, netmask = node_pod_cidr(node)
    return address & netmask == base


def pod_addresses_in_node_pod_cidr(m, s) -> bool:
    """Node.spec.podCIDR "represents the pod IP range assigned to the node",
    and the node's CNI plugin hands its pods addresses from that range
    (host-local IPAM "allocates IPv4 and IPv6 addresses out of a specified
    address range"): every sandbox a node's runtime runs, and every pod
    address the store holds, lies in the podCIDR of the node it is on — so
    pods on different nodes never share an address, and the routes between
    nodes, which go by podCIDR, lead to the pod."""
    for n, sandboxes in enumerate(m.sandboxes(s)):
        if not all(_in_pod_cidr(n, address) for _, address in sandboxes):
            return False
    return all(_in_pod_cidr(node, address) for node, address, _, _ in m.objects(s)[PODS]
               if node != UNBOUND and address)


# -- only the apiserver talks to the store --------------------------------------------

def store_linked_only_to_apiserver(m, s) -> bool:
    return all({caller, callee} == {"apiserver", "store"}
               for caller, callee in m.talks_to() if "store" in (caller, callee))


def only_apiserver_changes_store(m, before, step, after) -> bool:
    if m.objects(before) == m.objects(after):
        return True
    return step.name.startswith("apiserver->store.")


# -- covers ------------------------------------------------------------------------------

def pod_evicted(m, s) -> bool:
    dead = _dead(m, s)
    return any(p[0] in dead and p[3] for p in m.objects(s)[PODS])


def replacement_ready_on_other_worker(m, s) -> bool:
    if not _dead(m, s):
        return False
    return any(slot >= m.replicas and node != spec.MASTER
               for slot, (node, _) in _ready_pods(m, s).items())


def routes_to_two_ready_pods_after_failure(m, s) -> bool:
    """A worker is dead, and every live node's rules send the Service to two
    Ready pods."""
    if not _dead(m, s):
        return False
    ready_ips = {ip for _, ip in _ready_pods(m, s).values()}
    dp = m.dataplane(s)
    for n, up in enumerate(m.alive(s)):
        if up:
            ips = {b.ip for rule in dp.nodes[n].rules.services for b in rule.backends}
            if len(ips) != 2 or not ips <= ready_ips:
                return False
    return True


REPLICAS_READY = Property(
    "e2e_replicas_ready", C, EVENTUALLY_ALWAYS,
    "a Deployment of N replicas eventually has, and keeps, N pods Ready and not "
    "terminating, running on live nodes",
    "seeds/000: controllers 'comparing the cluster's desired state ... with its current "
    "state ... corrective action is taken in the cluster until its current state matches "
    "the desired state'; kubernetes.io/docs/concepts/workloads/controllers/replicaset: 'A "
    "ReplicaSet's purpose is to maintain a stable set of replica Pods running at any given "
    "time'",
    replicas_ready,
    assumption="a dead worker stays dead; the survivors have room for the replicas")

POD_ON_FITTING_NODE = Property(
    "e2e_pod_on_fitting_node", C, TRANSITION,
    "every pod is bound to a node that, when it was bound, was Ready, had every "
    "NoSchedule/NoExecute taint tolerated by the pod, and had room for its requests",
    "kubernetes.io/docs/concepts/scheduling-eviction/kube-scheduler ('nodes that meet the "
    "scheduling requirements for a Pod are called feasible nodes'), taint-and-toleration "
    "('NoSchedule: no new Pods will be scheduled on the tainted node unless they have a "
    "matching toleration'), resource requests ('the scheduler ensures that, for each "
    "resource type, the sum of the resource requests of the scheduled containers is less "
    "than the capacity of the node'); node-role.kubernetes.io/control-plane and "
    "node.kubernetes.io/unreachable (well-known taints); seeds/002: 'Apps shouldn't run on "
    "Masters'",
    bound_to_fitting_node)

SERVICE_REACHABLE = Property(
    "e2e_service_reachable_without_nat", C, EVENTUALLY_ALWAYS,
    "eventually and from then on, a packet from every pod and every node to the Service's "
    "ClusterIP:port is delivered to a Ready backend pod that sees the packet's own source "
    "address (hairpin traffic to oneself excepted)",
    SEEDS_NO_NAT + "; kubernetes.io/docs/concepts/services-networking: 'pods can "
    "communicate with all other pods on any other node without NAT', 'agents on a node "
    "(e.g. system daemons, kubelet) can communicate with all pods on that node'; "
    "virtual-ips: kube-proxy sends ClusterIP traffic to a ready endpoint",
    service_reachable_without_nat)

DEAD_NODE_PODS_REPLACED = Property(
    "e2e_dead_node_pods_replaced", C, LEADS_TO,
    "when a worker is dead and pods bound to it are not terminating, eventually every pod "
    "of a dead node is evicted (terminating) and N Ready pods run on live nodes",
    "seeds/004: 'If the kube-apiserver cannot communicate with the kubelet on a node ... "
    "the NodeStatus will change from ready'; kubernetes.io/docs/concepts/"
    "scheduling-eviction/taint-and-toleration#taint-based-evictions: the node controller "
    "taints an unreachable node node.kubernetes.io/unreachable:NoExecute and pods that do "
    "not tolerate it (beyond their tolerationSeconds) are evicted; replicaset: 'maintain a "
    "stable set of replica Pods'",
    dead_node_pods_replaced, trigger=dead_node_has_live_pods,
    assumption="a dead worker stays dead; the default 300 s toleration runs out")

NO_ROUTES_TO_DEAD_NODE = Property(
    "e2e_no_routes_to_dead_node", C, EVENTUALLY_ALWAYS,
    "eventually and from then on, no live node's kube-proxy sends the Service's traffic to "
    "an address of a dead node",
    "kubernetes.io/docs/concepts/services-networking/endpoint-slices#conditions ('ready' "
    "maps to the Pod's Ready condition; the node controller sets it False on an "
    "unreachable node); virtual-ips: kube-proxy only sends traffic to ready endpoints; "
    "seeds/000: kube-proxy is 'responsible for dynamic updates and maintenance of all "
    "networking rules on the node'",
    no_routes_to_dead_node)

STORE_LINKED_ONLY_TO_APISERVER = Property(
    "e2e_store_linked_only_to_apiserver", C, INVARIANT,
    "in the whole cluster's composition, every link with the store joins it to the "
    "apiserver: no other component reads or writes etcd",
    "seeds/000: 'the api server is the ony master plane component to talk to the etcd data "
    "store, both to read from and to save kubernetes cluster state information'; seeds/004: "
    "kube-apiserver 'is the only connection to the etcd database'",
    store_linked_only_to_apiserver)

ONLY_APISERVER_CHANGES_STORE = Property(
    "e2e_only_apiserver_changes_store", C, TRANSITION,
    "every step that changes the store is the apiserver's commit",
    "seeds/000 (as above); seeds/003: 'During processing, it reads the current state from "
    "etcd and updates etcd after the request finishes execution'",
    only_apiserver_changes_store)

UNREACHABLE_NODE_PODS_NOT_READY = Property(
    "e2e_unreachable_node_pods_not_ready", C, INVARIANT,
    "no pod bound to a node whose Ready condition is not True is Ready: the node "
    "controller takes an unreachable node's pods out of service when it marks the node, "
    "not only when it evicts them",
    "kubernetes.io/docs/concepts/architecture/nodes (node conditions): Ready is 'Unknown "
    "if the node controller has not heard from the node in the last "
    "node-monitor-grace-period'; pod-lifecycle (pod conditions): Ready means the Pod can "
    "serve traffic, 'If a Node dies, the Pods running on (or scheduled to run on) that "
    "node are marked for deletion' after a timeout; taint-and-toleration#"
    "taint-based-evictions (the 300 s default toleration before the eviction)",
    unreachable_node_pods_not_ready)

SLICE_CONDITIONS_FOLLOW_PODS = Property(
    "e2e_slice_conditions_follow_pods", C, TRANSITION,
    "whenever the EndpointSlice is written, each endpoint has its pod's address and node, "
    "serving = the pod's Ready condition, terminating = the pod has a deletionTimestamp, "
    "and ready = serving and not terminating",
    "kubernetes.io/docs/concepts/services-networking/endpoint-slices#conditions and the "
    "discovery.k8s.io/v1 EndpointConditions API: 'ready indicates that this endpoint is "
    "prepared to receive traffic'; 'For compatibility reasons, ready should never be "
    "\"true\" for terminating endpoints'; 'serving is identical to ready except that it is "
    "set regardless of the terminating state of endpoints'; 'terminating indicates that "
    "this endpoint is terminating'",
    slice_conditions_follow_pods)

PODS_RUN_ONLY_WHERE_BOUND = Property(
    "e2e_pods_run_only_where_bound", C, INVARIANT,
    "every pod sandbox a live node's runtime runs is of a pod bound to that node",
    "kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node#nodename and the "
    "PodSpec API, nodeName: 'Once this field is set, the kubelet for this node becomes "
    "responsible for the lifecycle of this pod'; pod-lifecycle: 'Once a Pod has been "
    "scheduled and is bound to a node, Kubernetes tries to run that Pod on the node'",
    pods_run_only_where_bound)

NO_SURPLUS_REPLICAS = Property(
    "e2e_no_surplus_replicas", C, INVARIANT,
    "at no time are more than N pods of the Deployment's ReplicaSet active (not "
    "terminating)",
    "kubernetes.io/docs/concepts/workloads/controllers/replicaset: 'A ReplicaSet then "
    "fulfills its purpose by creating and deleting Pods as needed to reach the desired "
    "number'",
    no_surplus_replicas)

POD_ADDRESSES_IN_NODE_POD_CIDR = Property(
    "e2e_pod_addresses_in_node_pod_cidr", C, INVARIANT,
    "every pod's address — the sandbox's in its node's runtime, and the one the store "
    "holds — lies in the podCIDR of the node it runs on, that node's /24 of the cluster "
    "CIDR",
    "kubernetes.io/docs/reference/kubernetes-api/cluster-resources/node-v1: spec.podCIDR "
    "'represents the pod IP range assigned to the node'; kube-controller-manager reference: "
    "--cluster-cidr 'CIDR Range for Pods in cluster', --allocate-node-cidrs 'Should CIDRs "
    "for Pods be allocated and set on the cloud provider', --node-cidr-mask-size-ipv4 "
    "'Default: 24'; cni.dev host-local IPAM: 'allocates IPv4 and IPv6 addresses out of a "
    "specified address range'; seeds/000: 'pods are expected to be able to communicate "
    "with all other pods in a cluster'",
    pod_addresses_in_node_pod_cidr)

COVER_POD_EVICTED = Property(
    "e2e_cover_pod_evicted", C, COVER, "a pod of a dead worker is evicted (terminating)",
    "issue 15: 'come back after a node dies'", pod_evicted)

COVER_REPLACEMENT_READY = Property(
    "e2e_cover_replacement_ready_on_other_worker", C, COVER,
    "after a worker died, a replacement pod is Ready on another worker",
    "issue 15: 'come back after a node dies'", replacement_ready_on_other_worker)

COVER_ROUTES_TO_TWO = Property(
    "e2e_cover_service_routes_to_two_ready_pods", C, COVER,
    "after a worker died, every live node's kube-proxy routes the Service to two Ready pods",
    "issue 15: 'become reachable without NAT, and come back after a node dies'",
    routes_to_two_ready_pods_after_failure)

PROPERTIES = (REPLICAS_READY, POD_ON_FITTING_NODE, SERVICE_REACHABLE, DEAD_NODE_PODS_REPLACED,
              NO_ROUTES_TO_DEAD_NODE, STORE_LINKED_ONLY_TO_APISERVER,
              ONLY_APISERVER_CHANGES_STORE, UNREACHABLE_NODE_PODS_NOT_READY,
              SLICE_CONDITIONS_FOLLOW_PODS, PODS_RUN_ONLY_WHERE_BOUND, NO_SURPLUS_REPLICAS,
              POD_ADDRESSES_IN_NODE_POD_CIDR, COVER_POD_EVICTED, COVER_REPLACEMENT_READY,
              COVER_ROUTES_TO_TWO)

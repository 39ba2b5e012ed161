"""Properties of CNI pod networking, over ``model.cni.machine`` states.

Every reachability property asks :func:`model.network.forward.forward` —
the one definition of forwarding — about the dataplane the state has built
(``machine.dataplane(state)``), so what is checked here is exactly what the
Z3 encoding (``properties.symbolic.network``) proves for symbolic packets.
"""

from __future__ import annotations

from itertools import combinations

from kubemc.model.cni import machine as cni
from kubemc.model.network import addr
from kubemc.model.network.dataplane import TCP
from kubemc.model.network.forward import DELIVERED, Packet, forward
from kubemc.properties.core import INVARIANT, TRANSITION, Property, cover

_NO_NAT = ("seeds/000: 'pods are expected to be able to communicate with all other pods "
           "in a cluster, all this without the implmentation of network address "
           "translation (nat), this is a fundamental requirement'; seeds/004: 'All pods "
           "can communicate with each other across nodes. All nodes can communicate with "
           "all pods. No Network Address Translation (NAT).'")
_IP_PER_POD = ("seeds/003: 'each Pod receives an IP address (model called IP-per-Pod)'; "
               "seeds/004: 'There is only one IP address per Pod'")
_PAUSE = ("seeds/000: 'a special pause container is initialized by the container runtime "
          "for the sole purpose to create a network namespace for the pod. all additional "
          "containers ... will share the pause container's network namespace so that they "
          "can all talk to each other via localhost'")
_PODCIDR = ("Kubernetes node IPAM (kube-controller-manager --allocate-node-cidrs, "
            "Node.spec.podCIDR): each node gets its own block of the cluster CIDR; with "
            "host-local over the node's podCIDR (seeds/004 'CNI Network Configuration File') "
            "addresses are unique on a host, and disjoint blocks make them unique in the "
            "cluster")
_HOST_LOCAL = ("cni.dev/plugins/current/ipam/host-local: 'rangeStart ... Defaults to \".2\" "
               "IP inside of the \"subnet\" block'; 'gateway ... Defaults to \".1\" IP inside "
               "of the \"subnet\" block'; 'The allocation strategy is loosely round-robin "
               "within each range set' (the plugin's store keeps the last reserved IP of "
               "each range and the next allocation starts after it, wrapping to rangeStart); "
               "containernetworking/cni#194 'host-local ipam should allocate round-robin ips' "
               "and #298 ('the wraparound behavior' of the round-robin search): a refused "
               "ADD means no address of the range is free")
_DEL = ("CNI SPEC.md DEL: 'Plugins should generally complete a DEL action without error even "
        "if some resources are missing' and must release what ADD allocated; host-local "
        "stores one reservation per container ID and interface")

#: the port a reachability probe uses (any port: no rule matches pod addresses)
PROBE_PORT = 8080


def podcidrs_disjoint(m, state) -> bool:
    dp = m.dataplane(state)
    blocks = [n.pod_cidr for n in dp.nodes if n.pod_cidr is not None]
    return _memo(dp, "disjoint", lambda: not any(
        addr.overlaps(a, b) for a, b in combinations(blocks, 2)))


def pod_ip_unique(m, state) -> bool:
    ips = [p.ip for p in m.dataplane(state).pods]
    return len(ips) == len(set(ips))


def pod_ip_in_node_podcidr(m, state) -> bool:
    dp = m.dataplane(state)
    return _memo(dp, "in_podcidr", lambda: all(
        dp.nodes[p.node].pod_cidr is not None
        and addr.contains(dp.nodes[p.node].pod_cidr, p.ip) for p in dp.pods))


def no_address_leak_after_del(m, state) -> bool:
    """Every host-local reservation belongs to the current sandbox of its pod,
    and that sandbox has not been torn down (running, or crashed with the
    cleanup's DEL still to come)."""
    pods = state[2]
    for store in state[3]:
        for _, container, _ in store[1]:
            p, attempt = divmod(container, 16)
            phase, current, _, _ = pods[p]
            if attempt != current or phase not in (cni.RUNNING, cni.DEAD):
                return False
    return True


def containers_share_pod_ip(m, state) -> bool:
    """Every started container of a running pod is in the pause container's
    network namespace: it has the pod's one IP and reaches its siblings on
    localhost."""
    for p, (phase, attempt, _, containers) in enumerate(state[2]):
        if phase == cni.RUNNING:
            sandbox = cni.container_id(p, attempt) + 1
            if any(ns not in (0, sandbox) for ns in containers):
                return False
    return True


def _reaches_unchanged(dp, src: int, node: int, pod) -> bool:
    out = forward(dp, Packet(src, pod.ip, PROBE_PORT, TCP, node))
    return len(out) == 1 and out[0][1].kind == DELIVERED and out[0][1].pod == pod.name \
        and out[0][1].src == src


def _memo(dp, name, compute) -> bool:
    """A verdict that depends on the dataplane alone, kept on it: the machine
    hands out one dataplane object per distinct network."""
    cache = dp.__dict__.setdefault("_verdicts", {})
    if name not in cache:
        cache[name] = compute()
    return cache[name]


def pod_to_pod_without_nat(m, state) -> bool:
    dp = m.dataplane(state)
    return _memo(dp, "pod_to_pod", lambda: all(
        _reaches_unchanged(dp, a.ip, a.node, b) for a in dp.pods for b in dp.pods if a is not b))


def node_to_pod_without_nat(m, state) -> bool:
    dp = m.dataplane(state)
    return _memo(dp, "node_to_pod", lambda: all(
        _reaches_unchanged(dp, n.ip, n.index, b) for n in dp.nodes for b in dp.pods))


def violating_pair(dp):
    """A (source, ingress node, pod) whose packet is not delivered unchanged,
    or None — used to report a concrete packet."""
    for a in dp.pods:
        for b in dp.pods:
            if a is not b and not _reaches_unchanged(dp, a.ip, a.node, b):
                return a.ip, a.node, b
    for n in dp.nodes:
        for b in dp.pods:
            if not _reaches_unchanged(dp, n.ip, n.index, b):
                return n.ip, n.index, b
    return None


def add_takes_next_free_address(m, before, step, after) -> bool:
    """A CNI ADD of pod p either hands out, from its node's host-local range,
    the first address after the store's last reserved one (wrapping to
    rangeStart) that no container holds, and remembers it as the last
    reserved — or, when no address of the range is free, is refused and
    changes nothing. An ADD refused while an address is free (an allocator
    that stops at rangeEnd instead of wrapping) breaks it as much as a
    wrong address does.

    The range is restated from the plugin's documented defaults, not read
    from the model's configuration: gateway ``.1`` of the node's podCIDR,
    rangeStart ``.2``, and rangeEnd the ``addresses``-th address from
    rangeStart (the bound's meaning). The node is the one whose bridge the
    pod's address is delivered to in the network after the step; for a
    refused ADD, the node the machine places the pod on (placement is the
    scheduler's, fixed by the model, not what is judged here)."""
    if step.name != "CniAdd":
        return True
    p = step.params[0]
    pod = next((x for x in m.dataplane(after).pods if x.name == f"pod-{p}"), None)
    node = m.node_of(p) if pod is None else pod.node
    block = m.dataplane(before).nodes[node].pod_cidr
    if block is None:    # no podCIDR, no range: nothing can be handed out
        return pod is None and after == before
    start, end = block[0] + 2, block[0] + 1 + m.addresses
    last, reservations = before[3][node]
    held = {a for a, _, _ in reservations}
    if pod is None:      # refused: only a full range may refuse, and nothing changes
        return all(a in held for a in range(start, end + 1)) and after[3] == before[3]
    first = last + 1 if start <= last <= end else start
    order = [start + (first - start + k) % (end - start + 1) for k in range(end - start + 1)]
    expected = next((a for a in order if a not in held), None)
    return pod.ip == expected and after[3][pod.node][0] == expected \
        and any(a == expected for a, _, _ in after[3][pod.node][1])


# -- covers: the bounds reach what the invariants speak of ---------------------------
#
# Each invariant above is judged only in the states the bounds reach. These
# covers make sure those states include the ones the invariants are about —
# without them a model whose pods never start, whose sandboxes never crash or
# whose pods never come back would satisfy every invariant vacuously (the
# mutation run of docs/mutation/cni.md found such models).

def containers_started_in_sandbox(m, state) -> bool:
    """Some pod has its address and every app container started."""
    return any(phase == cni.RUNNING and all(containers)
               for phase, _, _, containers in state[2])


def crashed_sandbox_holds_address(m, state) -> bool:
    """Some pod's sandbox has crashed while host-local still holds the
    address of that sandbox's container: the cleanup's DEL is still to come."""
    held = {c for store in state[3] for _, c, _ in store[1]}
    return any(phase == cni.DEAD and cni.container_id(p, attempt) in held
               for p, (phase, attempt, _, _) in enumerate(state[2]))


def running_in_sandbox(k: int):
    """The cover "some pod has its address in its ``k``-th sandbox or a later
    one": ``k - 1`` earlier sandboxes of that pod were torn down (deleted, or
    crashed and cleaned up) and ADD ran again each time."""
    def check(m, state) -> bool:
        return any(phase == cni.RUNNING and attempt >= k - 1
                   for phase, attempt, _, _ in state[2])
    check.__name__ = f"pod_running_in_sandbox_{k}"
    return check


def add_wrapped_around(m, state) -> bool:
    """Some node's host-local store holds an address above its last reserved
    one. Before any wrap-around every address handed out is at or below the
    last reserved (each ADD reserves after it), so this state is reached only
    by an ADD that wrapped around to rangeStart while a later address was
    still held — the ADD ``add_takes_next_free_address`` must see judged."""
    return any(a > last for last, reservations in state[3] for a, _, _ in reservations)


def pods_running_on_every_node(m, state) -> bool:
    """A pod with an address on every node at once: pod-to-pod traffic
    between every pair of nodes is judged."""
    dp = m.dataplane(state)
    return {p.node for p in dp.pods} == {n.index for n in dp.nodes}


def podcidr_allocated_after_restart(m, state) -> bool:
    """The IPAM controller has restarted, a node holds a podCIDR and another
    still waits for one: an allocation after a restart is to come, with a
    block already taken."""
    return state[4][2] < m.restarts and any(c >= 0 for c in state[1]) \
        and any(c < 0 for c in state[1])


_cover = cover("cni")
_COVER_SOURCE = ("seeds/000 (pause container, pod-to-pod communication across nodes); seeds/004 "
                 "(CNI ADD / DEL, host-local); " + _DEL)

PROPERTIES = (
    Property("podcidrs_disjoint", "cni", INVARIANT,
             "no two nodes' podCIDRs overlap", _PODCIDR, podcidrs_disjoint),
    Property("pod_ip_unique", "cni", INVARIANT,
             "no two pods with an address hold the same IP, cluster-wide",
             _IP_PER_POD, pod_ip_unique),
    Property("pod_ip_in_node_podcidr", "cni", INVARIANT,
             "every pod's IP lies in its node's podCIDR", _PODCIDR, pod_ip_in_node_podcidr),
    Property("no_address_leak_after_del", "cni", INVARIANT,
             "every reserved address belongs to a live sandbox: DEL (also after a crash) "
             "frees it", _DEL, no_address_leak_after_del),
    Property("containers_share_pod_ip", "cni", INVARIANT,
             "every container of a pod shares the pause container's network namespace "
             "(one IP, localhost between them)", _PAUSE, containers_share_pod_ip),
    Property("pod_to_pod_without_nat", "cni", INVARIANT,
             "every pod reaches every other pod, on any node, with its source address "
             "unchanged", _NO_NAT, pod_to_pod_without_nat),
    Property("node_to_pod_without_nat", "cni", INVARIANT,
             "every node reaches every pod with its source address unchanged",
             _NO_NAT, node_to_pod_without_nat),
    Property("add_takes_next_free_address", "cni", TRANSITION,
             "a CNI ADD hands out the first free address after the node's last reserved "
             "one in its host-local range (gateway .1, rangeStart .2, wrapping round-robin "
             "to rangeStart) and records it as the last reserved; it is refused, changing "
             "nothing, only when no address of the range is free", _HOST_LOCAL,
             add_takes_next_free_address),
    _cover("cni_cover_containers_started",
           "some pod runs with every app container started in its sandbox's network "
           "namespace (containers_share_pod_ip judges started containers)", _PAUSE,
           containers_started_in_sandbox),
    _cover("cni_cover_crashed_sandbox_holds_address",
           "some sandbox crashes while its address is still reserved (the cleanup's DEL "
           "is judged by no_address_leak_after_del)", _DEL, crashed_sandbox_holds_address),
    _cover("cni_cover_pod_running_again",
           "some pod runs again in a new sandbox after its first was torn down (an "
           "address is released and allocated again)", _COVER_SOURCE, running_in_sandbox(2)),
    _cover("cni_cover_pod_running_in_third_sandbox",
           "some pod runs in its third sandbox (at the defaults: after one deletion and one "
           "crash whose cleanup ran — the kubelet recreates a pod's sandbox after either)",
           _COVER_SOURCE, running_in_sandbox(3)),
    _cover("cni_cover_pods_running_on_every_node",
           "pods have addresses on every node at once (reachability is judged between "
           "every pair of nodes)", _NO_NAT, pods_running_on_every_node),
    _cover("cni_cover_podcidr_allocated_after_restart",
           "the node IPAM controller restarts between two podCIDR allocations "
           "(podcidrs_disjoint judges what it hands out after a restart)", _PODCIDR,
           podcidr_allocated_after_restart),
    _cover("cni_cover_add_wrapped_around",
           "some ADD wraps around to rangeStart while a later address of the range is "
           "still held (add_takes_next_free_address judges the wrapped allocation)",
           _HOST_LOCAL, add_wrapped_around),
)

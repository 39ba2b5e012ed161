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

_REFUSAL = ("host-local's error on a full range, 'no IP addresses available in range set' "
            "(containernetworking/plugins host-local): the ADD fails and reserves nothing; "
            "CNI SPEC.md ADD: 'A runtime should not call ADD twice (without an intervening "
            "DEL) for the same (CNI_CONTAINERID, CNI_IFNAME) tuple' — tearing a sandbox down "
            "is the runtime's own step with its DEL (StopPodSandbox), not part of the ADD")
_OWNER = ("CNI SPEC.md ADD: an attachment is the (CNI_CONTAINERID, CNI_IFNAME) tuple; "
          "host-local README: 'dataDir ... maintaining state, e.g. which IPs have been "
          "allocated to which containers', its store reserving each IP for an ID and an "
          "interface name (Reserve(id, ifname, ip, rangeID)); a pod's interface is eth0 "
          "(containerd CRI: defaultIfName \"the default network interface for the pods\"; "
          "the kubelet's CNI plugin: DefaultInterfaceName = \"eth0\")")
_LAST_RESERVED = ("host-local README: 'The allocation strategy is loosely round-robin within "
                  "each range set'; its store keeps the last reserved IP per range "
                  "(LastReservedIP(rangeID), the file last_reserved_ip.<range>), written when "
                  "an IP is reserved for a container; a release is by container ID and "
                  "interface (ReleaseByID(id, ifname)) and names no range; "
                  "containernetworking/cni#194 and #237: round-robin so that recently "
                  "released addresses are not handed straight out again")
#: the interface name every pod's attachment uses (see _OWNER)
_POD_IFNAME = "eth0"

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


def _range(m, state, node):
    """The node's host-local range, restated from the plugin's documented
    defaults rather than read from the model's configuration: gateway ``.1``
    of the node's podCIDR, rangeStart ``.2``, rangeEnd the ``addresses``-th
    address from rangeStart (the bound's meaning). None without a podCIDR."""
    block = m.dataplane(state).nodes[node].pod_cidr
    if block is None:
        return None
    return block[0] + 2, block[0] + 1 + m.addresses


def _owner(state, p):
    """Who host-local must record as holding pod ``p``'s address: the CNI
    attachment, (CNI_CONTAINERID, CNI_IFNAME) — the pod's current sandbox and
    the interface every runtime asks for in a pod, ``eth0``."""
    return cni.container_id(p, state[2][p][1]), _POD_IFNAME


def add_takes_next_free_address(m, before, step, after) -> bool:
    """A CNI ADD of pod p either hands out, from its node's host-local range,
    the first address after the store's last reserved one (wrapping to
    rangeStart) that no container holds, reserves it for the pod's
    attachment (its sandbox's container ID, interface ``eth0``), records it
    as the last reserved, and changes nothing else of the store — or, when
    no address of the range is free, is refused and changes nothing at all:
    not the store, not the pod's sandbox, no other part of the state. An ADD
    refused while an address is free (an allocator that stops at rangeEnd
    instead of wrapping) breaks it as much as a wrong address does.

    The pod's node is the model's fixed placement (``node_of``: where a pod
    runs is the scheduler's decision, not what is judged here); the range is
    :func:`_range`'s restatement. The address handed out is read from the
    pod (the ADD's result), the reservation and last reserved address from
    the node's store; :func:`last_reserved_moves_only_on_add` makes sure no
    other step moves the latter, so ``before``'s is the last address handed
    out."""
    if step.name != "CniAdd":
        return True
    p = step.params[0]
    node = m.node_of(p)
    phase, _, ip, _ = after[2][p]
    rng = _range(m, before, node)
    # the state but its last element, the ghost record of the last Probe,
    # which every step clears (no Probe is ever proposed by the search)
    unchanged = after[:5] == before[:5]
    if rng is None:      # no podCIDR, no range: nothing can be handed out
        return unchanged
    start, end = rng
    last, reservations = before[3][node]
    held = {a for a, _, _ in reservations}
    if phase != cni.RUNNING:     # refused: only a full range may refuse, and nothing changes
        return all(a in held for a in range(start, end + 1)) and unchanged
    first = last + 1 if start <= last <= end else start
    order = [start + (first - start + k) % (end - start + 1) for k in range(end - start + 1)]
    expected = next((a for a in order if a not in held), None)
    got_last, got = after[3][node]
    _, attempt, _, containers = before[2][p]
    # handed out: the pod gets the address in the same sandbox, the node's
    # store one reservation and its last reserved address, nothing else moves
    return ip == expected and got_last == expected \
        and sorted(got) == sorted(reservations + ((expected,) + _owner(before, p),)) \
        and after[2][p] == (cni.RUNNING, attempt, expected, containers) \
        and _others(after, p, node) == _others(before, p, node)


def _others(state, p, node):
    """Everything of the state an ADD of pod ``p`` on ``node`` leaves alone."""
    used, cidr, pods, stores, budget = state[:5]
    return used, cidr, pods[:p] + pods[p + 1:], stores[:node] + stores[node + 1:], budget


def last_reserved_moves_only_on_add(m, before, step, after) -> bool:
    """A node's host-local last reserved address changes only on an ADD that
    hands out an address on that node, and then to that address. host-local
    records the last reserved IP of each range when it reserves an address
    (its store's Reserve/LastReservedIP, per range ID); releasing (DEL, by
    container ID and interface) names no range and moves nothing. With
    :func:`add_takes_next_free_address`, which reads the last reserved
    address before each ADD, this makes it — by induction along every run —
    the last address that node handed out, so neither property trusts a
    store the model writes: a DEL that moved it (``del_moves_last_reserved``)
    is caught at the DEL, whatever the next ADD then hands out.

    Which ADD handed an address out is read from the pods (a pod waiting
    for its address before the step, holding one after), not the store."""
    granted = {}
    if step.name == "CniAdd":
        p = step.params[0]
        if before[2][p][0] == cni.NETNS and after[2][p][0] == cni.RUNNING:
            granted[m.node_of(p)] = after[2][p][2]
    return all(after[3][n][0] == granted.get(n, before[3][n][0]) for n in range(len(before[3])))


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


def _adds(m, state):
    """Each CNI ADD the machine offers in ``state``, with the state it leads
    to: the steps the search takes from ``state`` (every reached state is
    expanded), so a cover over them is a cover over transitions."""
    for step in m.steps(state):
        if step.name == "CniAdd":
            yield step.params[0], m.apply(state, step)


def add_wrapped_around(m, state) -> bool:
    """An ADD leaving this state hands out an address below its node's last
    reserved one: it searched past rangeEnd and wrapped around to
    rangeStart — the ADD ``add_takes_next_free_address`` must see judged.
    Defined on the step (the address handed out against the last reserved
    address before it), not on a state's store, where a DEL that lowered the
    last reserved address would pass for a wrap."""
    for p, after in _adds(m, state):
        phase, _, ip, _ = after[2][p]
        if phase == cni.RUNNING and ip < state[3][m.node_of(p)][0]:
            return True
    return False


def add_refused_on_full_range(m, state) -> bool:
    """An ADD leaving this state is refused (the pod still waits for its
    address after it) while every address of its node's range is held: the
    refusal ``add_takes_next_free_address`` judges, reached by the bounds."""
    for p, after in _adds(m, state):
        rng = _range(m, state, m.node_of(p))
        held = {a for a, _, _ in state[3][m.node_of(p)][1]}
        if after[2][p][0] != cni.RUNNING and rng is not None \
                and all(a in held for a in range(rng[0], rng[1] + 1)):
            return True
    return False


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
             "to rangeStart), reserves it for the pod's (container ID, eth0) and records it "
             "as the last reserved; it is refused, changing nothing at all (the store, the "
             "pod's sandbox, the rest of the state), only when no address of the range is "
             "free", " ".join((_HOST_LOCAL, _OWNER, _REFUSAL)), add_takes_next_free_address),
    Property("last_reserved_moves_only_on_add", "cni", TRANSITION,
             "a node's host-local last reserved address changes only on an ADD that hands "
             "out an address on that node, to that address (never on a DEL, a refusal or "
             "any other step)", _LAST_RESERVED, last_reserved_moves_only_on_add),
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
           "some ADD hands out an address below its node's last reserved one: it wrapped "
           "around to rangeStart (add_takes_next_free_address judges the wrapped "
           "allocation)", _HOST_LOCAL, add_wrapped_around),
)

#: An ADD refused on a full range. Not in PROPERTIES: at the cni model's
#: defaults no node has more pods than addresses, so it is never reached
#: there; the cni-full-range model is built to reach it.
ADD_REFUSED_ON_FULL_RANGE = _cover(
    "cni_cover_add_refused_on_full_range",
    "some ADD is refused because every address of its node's range is held "
    "(add_takes_next_free_address judges the refusal: it must change nothing)",
    _REFUSAL, add_refused_on_full_range)

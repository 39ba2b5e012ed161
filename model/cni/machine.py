"""CNI pod networking on a small cluster, as one state machine.

What is modelled (seeds/000 "container-to-container communication inside
pods" and "pod-to-pod communication across nodes"; seeds/004 "CNI Network
Configuration File" and "Pod-to-Pod Communication"):

* the node IPAM controller gives each node a podCIDR out of the cluster
  CIDR (10.22.0.0/16, the seeds' subnet; /24 per node, kube-controller-
  manager's default ``--node-cidr-mask-size``). Its set of used blocks lives
  in memory: after a restart it must re-occupy the blocks nodes already hold
  (the range allocator does so from the Node objects when it starts);
* per node, the bridge plugin (bridge ``cni0``) with host-local IPAM over the
  node's podCIDR: gateway ``.1``, ``rangeStart`` ``.2``, ``rangeEnd`` a few
  addresses on (the ``addresses`` bound — a small range makes the round-robin
  wrap-around reachable). An ADD host-local refuses (no free address) is a
  step that changes nothing: the sandbox keeps waiting for an address;
* pod sandboxes: the runtime starts the pause container, which creates the
  pod's network namespace; CNI ADD gives it the pod's address; every app
  container joins that namespace (one IP per pod, localhost between its
  containers); a sandbox is stopped (CNI DEL) when the pod is deleted, or
  crashes — between ADD and DEL — and the kubelet's cleanup then runs DEL,
  which must release the address even though the sandbox is gone;
* routes: flat, every node routes each node's podCIDR to that node (or
  through an overlay with ``overlay=True``), programmed as podCIDRs are
  assigned.

Pod ``p`` runs on node ``p % nodes`` (placement is the scheduler's business,
not the network's; fixing it keeps the state space small).

State (plain tuples; see ``model.kernel``)::

    (controller_used, cidr, pods, stores, budget, probe)

``controller_used``: sorted subnet indices the controller believes taken;
``cidr[n]``: node n's subnet index or -1; ``pods[p]`` =
``(phase, attempt, ip, containers)`` with ``containers[c]`` the network
namespace container c joined (0: not started); ``stores[n]``: node n's
host-local store; ``budget`` = (deletions, crashes, restarts) left;
``probe``: the last Probe's packet and outcome (ghost state, see Probe).

A container ID is ``pod * 16 + attempt``; the sandbox's network namespace is
``container ID + 1``.
"""

from __future__ import annotations

from kubemc.model.cni import hostlocal
from kubemc.model.kernel import ENVIRONMENT, FAULT, SYSTEM, Machine, Mutant, Step, action
from kubemc.model.network import addr
from kubemc.model.network.dataplane import Bridge, Dataplane, Node, Pod, flat_routes
from kubemc.model.network.forward import forward, probe_packet, probe_record

NONE, NETNS, RUNNING, DEAD = 0, 1, 2, 3
PHASES = ("none", "netns", "running", "crashed")
IFNAME = "eth0"
CLUSTER_CIDR = addr.cidr("10.22.0.0/16")
NODE_MASK = 24
SEED_SUBNET = addr.cidr("10.22.0.0/16")   # seeds/004's host-local "subnet"


def node_ip(n: int) -> int:
    return addr.ip("192.168.0.10") + n


def container_id(pod: int, attempt: int) -> int:
    return pod * 16 + attempt


BRIDGE_IPMASQ = "bridge_ipmasq"
RESTART_FORGETS_CIDRS = "restart_forgets_cidrs"
MISSING_ROUTE = "missing_route"
IPAM_REUSES_HELD_ADDRESS = "ipam_reuses_held_address"
SEED_SUBNET_ON_EVERY_NODE = "seed_subnet_on_every_node"
DEL_SKIPPED_AFTER_CRASH = "del_skipped_after_crash"
CONTAINER_OWN_NETNS = "container_own_netns"
IPAM_FIRST_FIT = "ipam_first_fit"
IPAM_NO_WRAP = "ipam_no_wrap"
DEL_MOVES_LAST_RESERVED = "del_moves_last_reserved"
REFUSAL_RESETS_LAST_RESERVED = "refusal_resets_last_reserved"
REFUSAL_TEARS_DOWN_SANDBOX = "refusal_tears_down_sandbox"


class Cni(Machine):
    """The actions are declared on their handlers (``@action``); ``steps`` is
    written out (it proposes pod actions by the pod's phase, pod by pod)."""

    name = "cni"
    mutants = {
        BRIDGE_IPMASQ: Mutant(
            "the bridge plugin runs with the seeds' ipMasq: true over per-node podCIDRs: "
            "pod traffic to another node leaves with the node's address",
            violates="pod_to_pod_without_nat"),
        RESTART_FORGETS_CIDRS: Mutant(
            "the node IPAM controller restarts with an empty allocation map and hands out "
            "a podCIDR a node already holds (overlapping podCIDRs)",
            violates="podcidrs_disjoint"),
        MISSING_ROUTE: Mutant(
            "the first node's route table lacks the route to the last node's podCIDR",
            violates="node_to_pod_without_nat"),
        IPAM_REUSES_HELD_ADDRESS: Mutant(
            "host-local takes the address after the last reserved one without checking "
            "the store, handing out an address still held",
            violates="pod_ip_unique"),
        SEED_SUBNET_ON_EVERY_NODE: Mutant(
            "every node's host-local range is the seeds' whole 10.22.0.0/16 instead of "
            "the node's podCIDR",
            violates="pod_ip_in_node_podcidr"),
        DEL_SKIPPED_AFTER_CRASH: Mutant(
            "the kubelet's cleanup of a crashed sandbox skips CNI DEL: the address stays "
            "reserved for a container that no longer exists",
            violates="no_address_leak_after_del"),
        CONTAINER_OWN_NETNS: Mutant(
            "the pod's last app container is started in a network namespace of its own "
            "instead of the pause container's",
            violates="containers_share_pod_ip"),
        IPAM_FIRST_FIT: Mutant(
            "host-local searches its range from rangeStart on every ADD (first fit) instead "
            "of after the last reserved address: an address DEL just freed is handed "
            "straight out again",
            violates="add_takes_next_free_address"),
        IPAM_NO_WRAP: Mutant(
            "host-local searches only from after the last reserved address to rangeEnd, "
            "never wrapping around to rangeStart: once rangeEnd has been handed out, an "
            "ADD is refused although addresses freed before it are free again",
            violates="add_takes_next_free_address"),
        DEL_MOVES_LAST_RESERVED: Mutant(
            "host-local's DEL records the address it releases as the last reserved one, "
            "so the next ADD searches after the freed address instead of after the last "
            "one handed out",
            violates="last_reserved_moves_only_on_add"),
        REFUSAL_RESETS_LAST_RESERVED: Mutant(
            "an ADD refused on a full range writes the store back with the last reserved "
            "address forgotten (the next search starts from rangeStart)",
            violates="add_takes_next_free_address"),
        REFUSAL_TEARS_DOWN_SANDBOX: Mutant(
            "an ADD refused on a full range also tears the pod's sandbox down: the pod "
            "goes back to waiting for a sandbox",
            violates="add_takes_next_free_address"),
    }

    def __init__(self, nodes=3, pods=4, containers=2, addresses=2, deletions=1, crashes=1,
                 restarts=1, overlay=False, mutant=None):
        super().__init__(mutant)
        if not (1 <= nodes <= 16 and 0 <= pods <= 16 and 1 <= containers <= 4
                and 1 <= addresses <= 200):
            raise ValueError("need 1-16 nodes, 0-16 pods, 1-4 containers, 1-200 addresses")
        self.nodes, self.pods, self.containers = nodes, pods, containers
        self.addresses, self.deletions, self.crashes = addresses, deletions, crashes
        self.restarts, self.overlay = restarts, bool(overlay)
        self._dataplanes: dict = {}

    def config(self):
        return {"nodes": self.nodes, "pods": self.pods, "containers": self.containers,
                "addresses": self.addresses, "deletions": self.deletions,
                "crashes": self.crashes, "restarts": self.restarts, "overlay": self.overlay}

    # -- configuration derived from the state --------------------------------
    def node_of(self, pod: int) -> int:
        return pod % self.nodes

    def pod_cidr(self, index: int):
        return None if index < 0 else addr.subnet(CLUSTER_CIDR, NODE_MASK, index)

    def ipam_range(self, node_cidr) -> hostlocal.Range:
        """The host-local range the node's CNI config names."""
        subnet = SEED_SUBNET if self.mutant == SEED_SUBNET_ON_EVERY_NODE else node_cidr
        gateway = subnet[0] + 1
        return hostlocal.Range(subnet, gateway + 1, gateway + self.addresses, gateway)

    # -- the machine ----------------------------------------------------------
    def init_states(self):
        pods = tuple((NONE, 0, 0, (0,) * self.containers) for _ in range(self.pods))
        yield ((), (-1,) * self.nodes, pods, (hostlocal.EMPTY,) * self.nodes,
               (self.deletions, self.crashes, self.restarts), ())

    def steps(self, state):
        used, cidr, pods, stores, budget, _ = state
        for n in range(self.nodes):
            if cidr[n] < 0:
                yield Step("AllocateCidr", (n,))
        if budget[2] > 0:
            yield Step("RestartController", ())
        for p, (phase, _, _, containers) in enumerate(pods):
            if phase == NONE:
                yield Step("RunPodSandbox", (p,))
            elif phase == NETNS:
                yield Step("CniAdd", (p,))
            elif phase == DEAD:
                yield Step("CleanupSandbox", (p,))
            if phase == RUNNING and not containers[0]:
                yield Step("StartContainers", (p,))
            if phase in (NETNS, RUNNING):
                if budget[0] > 0:
                    yield Step("StopPodSandbox", (p,))
                if budget[1] > 0:
                    yield Step("SandboxCrash", (p,))

    # -- the actions: each declared once, on its handler ------------------------
    @action("AllocateCidr", tag=SYSTEM)
    def allocate_cidr(self, state, n):
        used, cidr, pods, stores, budget, _ = state
        if cidr[n] >= 0:
            return None
        taken = set(used)
        index = next(i for i in range(1 << (NODE_MASK - CLUSTER_CIDR[1])) if i not in taken)
        return (tuple(sorted(taken | {index})), _put(cidr, n, index), pods, stores, budget, ())

    @action("RestartController", tag=FAULT, rare=True)
    def restart_controller(self, state):
        used, cidr, pods, stores, budget, _ = state
        if budget[2] <= 0:
            return None
        rebuilt = () if self.mutant == RESTART_FORGETS_CIDRS else \
            tuple(sorted({c for c in cidr if c >= 0}))
        return (rebuilt, cidr, pods, stores, (budget[0], budget[1], budget[2] - 1), ())

    @action("Probe", tag=ENVIRONMENT)
    def probe(self, state, *params):
        return self._probe(state, params)

    def _pod(self, state, p):
        """Pod ``p``'s entry, its node and sandbox id, and the entry a new
        sandbox starts from; None for a pod the bounds do not have."""
        if not 0 <= p < self.pods:
            return None
        phase, attempt, ip, containers = state[2][p]
        fresh = (NONE, attempt + 1, 0, (0,) * self.containers)
        return phase, attempt, ip, containers, self.node_of(p), container_id(p, attempt), fresh

    @action("RunPodSandbox", tag=ENVIRONMENT)
    def run_pod_sandbox(self, state, p):
        used, cidr, pods, stores, budget, _ = state
        pod = self._pod(state, p)
        if pod is None:
            return None
        phase, attempt, _, containers, n, _, _ = pod
        if phase != NONE or cidr[n] < 0:
            return None    # the kubelet waits for the node's podCIDR
        return (used, cidr, _put(pods, p, (NETNS, attempt, 0, containers)), stores, budget, ())

    @action("CniAdd", tag=SYSTEM)
    def cni_add(self, state, p):
        used, cidr, pods, stores, budget, _ = state
        pod = self._pod(state, p)
        if pod is None:
            return None
        phase, attempt, _, containers, n, cid, _ = pod
        if phase != NETNS:
            return None
        rng = self.ipam_range(self.pod_cidr(cidr[n]))
        store, result = hostlocal.allocate(
            stores[n], rng, cid, IFNAME,
            check_held=self.mutant != IPAM_REUSES_HELD_ADDRESS,
            round_robin=self.mutant != IPAM_FIRST_FIT, wrap=self.mutant != IPAM_NO_WRAP)
        if isinstance(result, str):
            # ADD failed: nothing changes and the sandbox waits for an
            # address (the kubelet retries). A step, not a disabled action,
            # so that a refusal is a transition the properties can judge.
            if self.mutant == REFUSAL_RESETS_LAST_RESERVED:
                stores = _put(stores, n, (0, stores[n][1]))
            elif self.mutant == REFUSAL_TEARS_DOWN_SANDBOX:
                # the same attempt: a new one per refusal would never end
                pods = _put(pods, p, (NONE, attempt, 0, (0,) * self.containers))
            return (used, cidr, pods, stores, budget, ())
        return (used, cidr, _put(pods, p, (RUNNING, attempt, result, containers)),
                _put(stores, n, store), budget, ())

    @action("StartContainers", tag=ENVIRONMENT)
    def start_containers(self, state, p):
        used, cidr, pods, stores, budget, _ = state
        pod = self._pod(state, p)
        if pod is None:
            return None
        phase, attempt, ip, containers, _, cid, _ = pod
        if phase != RUNNING or containers[0]:
            return None
        # each app container joins the pause container's namespace
        # (the mutant gives the last one a namespace of its own)
        joined = tuple(cid + 1 for _ in range(self.containers))
        if self.mutant == CONTAINER_OWN_NETNS:
            joined = joined[:-1] + (1000 + cid,)
        return (used, cidr, _put(pods, p, (phase, attempt, ip, joined)), stores, budget, ())

    @action("StopPodSandbox", tag=ENVIRONMENT)
    def stop_pod_sandbox(self, state, p):
        used, cidr, pods, stores, budget, _ = state
        pod = self._pod(state, p)
        if pod is None:
            return None
        phase, _, _, _, n, cid, fresh = pod
        if phase not in (NETNS, RUNNING) or budget[0] <= 0:
            return None
        store = hostlocal.release(stores[n], cid, IFNAME,
                                  move_last=self.mutant == DEL_MOVES_LAST_RESERVED)
        return (used, cidr, _put(pods, p, fresh), _put(stores, n, store),
                (budget[0] - 1, budget[1], budget[2]), ())

    @action("SandboxCrash", tag=FAULT, rare=True)
    def sandbox_crash(self, state, p):
        used, cidr, pods, stores, budget, _ = state
        pod = self._pod(state, p)
        if pod is None:
            return None
        phase, attempt, _, _, _, _, _ = pod
        if phase not in (NETNS, RUNNING) or budget[1] <= 0:
            return None
        return (used, cidr, _put(pods, p, (DEAD, attempt, 0, (0,) * self.containers)),
                stores, (budget[0], budget[1] - 1, budget[2]), ())

    @action("CleanupSandbox", tag=SYSTEM)
    def cleanup_sandbox(self, state, p):
        used, cidr, pods, stores, budget, _ = state
        pod = self._pod(state, p)
        if pod is None:
            return None
        phase, _, _, _, n, cid, fresh = pod
        if phase != DEAD:
            return None
        store = stores[n] if self.mutant == DEL_SKIPPED_AFTER_CRASH else \
            hostlocal.release(stores[n], cid, IFNAME,
                              move_last=self.mutant == DEL_MOVES_LAST_RESERVED)
        return (used, cidr, _put(pods, p, fresh), _put(stores, n, store), budget, ())

    def _probe(self, state, params):
        """``Probe(src, dst, port, proto, node)`` (addresses as dotted quads) sends one packet through the
        state's dataplane and records where it went. It changes nothing but
        this ghost record and is never proposed by ``steps``: it exists so a
        counterexample packet found by Z3 is part of a replayable trace."""
        pkt = probe_packet(params, self.nodes)
        if pkt is None:
            return None
        outcomes = forward(self.dataplane(state), pkt)
        return state[:5] + (probe_record(pkt, outcomes),)

    # -- projection ----------------------------------------------------------------
    def dataplane(self, state) -> Dataplane:
        """The network this state has built. Cached by what determines it —
        podCIDRs and running pods' addresses — because thousands of states
        (budgets, sandboxes without an address, stores) build the same one,
        and properties may memoize their verdict on it."""
        _, cidr, pods, _, _, _ = state
        key = (cidr, tuple((p, ip) for p, (phase, _, ip, _) in enumerate(pods)
                           if phase == RUNNING))
        dp = self._dataplanes.get(key)
        if dp is not None:
            return dp
        if len(self._dataplanes) > 100_000:
            self._dataplanes.clear()
        blocks = [self.pod_cidr(c) for c in cidr]
        nodes = []
        for n in range(self.nodes):
            routes = flat_routes(n, blocks, self.overlay)
            if self.mutant == MISSING_ROUTE and n == 0:
                routes = tuple(r for r in routes if r.via != self.nodes - 1)
            bridge = None
            if blocks[n] is not None:
                rng = self.ipam_range(blocks[n])
                bridge = Bridge("cni0", rng.subnet, rng.gateway,
                                ip_masq=self.mutant == BRIDGE_IPMASQ)
            nodes.append(Node(n, f"node-{n}", node_ip(n), blocks[n], bridge, routes))
        running = tuple(Pod(f"pod-{p}", self.node_of(p), ip)
                        for p, (phase, _, ip, _) in enumerate(pods) if phase == RUNNING)
        dp = Dataplane(CLUSTER_CIDR, tuple(nodes), running)
        self._dataplanes[key] = dp
        return dp

    def view(self, state):
        used, cidr, pods, stores, budget, probe = state
        return {
            "controller_used": [addr.show_cidr(self.pod_cidr(i)) for i in used],
            "pod_cidr": [addr.show_cidr(self.pod_cidr(c)) if c >= 0 else "-" for c in cidr],
            "pods": [(PHASES[ph], att, addr.show(ip) if ip else "-", cs)
                     for ph, att, ip, cs in pods],
            "ipam": [(addr.show(last) if last else "-",
                      tuple((addr.show(a), c, i) for a, c, i in res)) for last, res in stores],
            "budget": {"deletions": budget[0], "crashes": budget[1], "restarts": budget[2]},
            "probe": probe,
        }


def _put(t: tuple, i: int, v) -> tuple:
    return t[:i] + (v,) + t[i + 1:]

"""Generated clusters at Kubernetes' documented scale limits.

kubernetes.io/docs/setup/best-practices/cluster-large: "No more than 5,000
nodes; No more than 150,000 total pods"; the scalability thresholds of
sig-scalability (kubernetes/community sig-scalability/configs-and-limits/
thresholds.md) give 10,000 Services per cluster. ``generate`` builds such a
cluster as a :class:`~model.network.dataplane.Dataplane` — the same types the
CNI and kube-proxy machines project to — with what those machines would have
built: podCIDRs carved in order, host-local handing out ``.2, .3, …`` on each
node, flat routes, and every node's kube-proxy rules compiled in sync with
the API by ``model.proxy.rules``.

Sharing: every node's route table has the same content (each podCIDR to its
node), and every in-sync node's rules are compiled from the same API state,
so the generator builds each once and every node refers to that one tuple —
150,000 pods and 10,000 Services cost memory once, not 5,000 times. A
seeded bug that makes one node differ gives that node its own object.

Two variants make a generated cluster less kind to the prover (``kubemc
bench network`` reports both):

* ``churn=k`` — pods have come and gone: host-local handed addresses out in
  order and every k-th one has been freed again, so a node's pods hold
  several runs of consecutive addresses (``churn=3``: 30 pods in 15 runs of
  two) instead of one. The Z3 encoding takes pods as intervals of
  consecutive addresses, so this multiplies its intervals by 15.
* ``per_node_rules=True`` — every node's kube-proxy rules are compiled for
  that node (``compile_rules(..., node)``) into an object of its own, as each
  node's kube-proxy does, instead of every node sharing node 0's
  compilation. Each node's rules are then proved apart.

Which endpoints are interesting: every 11th Service has a not-ready first
endpoint, every 97th has only terminating endpoints that still serve (the
KEP-1669 fallback), every 101st has none (REJECT).

NodePorts: every 5th Service is a NodePort, numbered in order from the
default ``--service-node-port-range`` 30000-32767 until the range is used up
(later Services have none). A NodePort is unique across the cluster
(kubernetes.io/blog/2023/05/11/nodeport-dynamic-and-static-allocation: "The
value of nodePort that you manually assign must be unique across the whole
cluster. Attempting to create a Service of type: NodePort where you
explicitly specify a node port that was already allocated results in an
error"), so a generated cluster in which two Services share one is not a
cluster the API could hold: ``generate`` checks it and raises, rather than
hand the prover a network no apiserver would have admitted.
"""

from __future__ import annotations

from kubemc.model.network import addr
from kubemc.model.network.dataplane import (PROTOCOLS, Bridge, Dataplane, EndpointEntry, Node, Pod,
                                     Route, Service)
from kubemc.model.cni.machine import BRIDGE_IPMASQ, MISSING_ROUTE
from kubemc.model.kernel import check_mutant_names
from kubemc.model.proxy.rules import (NOT_READY_ENDPOINT_IN_RULES, PROBABILITY_OFF_BY_ONE,
                                      PROBABILITY_ONE_TOO_MANY, compile_rules)

CLUSTER_CIDR = addr.cidr("10.128.0.0/9")      # 32,768 /24 podCIDRs
SERVICE_CIDR = addr.cidr("10.96.0.0/12")
NODE_NETWORK = addr.ip("172.16.0.10")
#: kube-apiserver's default --service-node-port-range
NODE_PORT_RANGE = (30000, 32767)
#: the cni and proxy machines' mutants a generated network can carry (their
#: declared constants; ``generate``'s comparisons are checked against them)
_RULE_MUTANTS = (NOT_READY_ENDPOINT_IN_RULES, PROBABILITY_OFF_BY_ONE, PROBABILITY_ONE_TOO_MANY)
MUTANTS = (BRIDGE_IPMASQ, MISSING_ROUTE) + _RULE_MUTANTS


def offsets(pods_per_node: int, churn: int = 0) -> list[int]:
    """The host offsets (from rangeStart .2) of a node's pods: consecutive,
    or with every ``churn``-th address freed again."""
    if churn < 2:
        return list(range(pods_per_node))
    out, o = [], 0
    while len(out) < pods_per_node:
        if o % churn != churn - 1:
            out.append(o)
        o += 1
    return out


def generate(nodes: int, pods_per_node: int = 30, services_per_node: int = 2,
             endpoints_per_service: int = 3, mutant: str | None = None, churn: int = 0,
             per_node_rules: bool = False) -> Dataplane:
    if mutant is not None and mutant not in MUTANTS:
        raise ValueError(f"generate knows the mutants {', '.join(MUTANTS)}, not {mutant!r}")
    host = offsets(pods_per_node, churn) if pods_per_node >= 1 else []
    if not host or 2 + host[-1] > 251:
        raise ValueError("a /24 podCIDR holds at most 250 pods after gateway and rangeStart "
                         "(fewer when churn leaves holes)")
    blocks = [addr.subnet(CLUSTER_CIDR, 24, n) for n in range(nodes)]
    table = tuple(Route(b, n) for n, b in enumerate(blocks))
    pods = tuple(Pod(f"pod-{n}-{i}", n, blocks[n][0] + 2 + o)
                 for n in range(nodes) for i, o in enumerate(host))
    services = tuple(_service(k, pods, endpoints_per_service)
                     for k in range(nodes * services_per_node))
    check_node_ports(services)
    rule_mutant = mutant if mutant in _RULE_MUTANTS else None
    shared = None if per_node_rules else compile_rules(CLUSTER_CIDR, services, 0, rule_mutant)
    masq = mutant == BRIDGE_IPMASQ
    out = []
    for n, b in enumerate(blocks):
        routes = table
        if mutant == MISSING_ROUTE and n == 0:
            routes = table[:-1]
        rules = shared if shared is not None else compile_rules(CLUSTER_CIDR, services, n,
                                                                rule_mutant)
        out.append(Node(n, f"node-{n}", NODE_NETWORK + n, b, Bridge("cni0", b, b[0] + 1, masq),
                        routes, rules))
    return Dataplane(CLUSTER_CIDR, tuple(out), pods, services)


def node_port(k: int) -> int:
    """Service ``k``'s NodePort, 0 for none: every 5th Service, in order
    through the range while it lasts."""
    low, high = NODE_PORT_RANGE
    return low + k // 5 if k % 5 == 0 and low + k // 5 <= high else 0


def check_node_ports(services) -> None:
    """Raise ValueError if two Services share a NodePort or one lies outside
    the range: a generator bug (see the module text), said with both names."""
    low, high = NODE_PORT_RANGE
    owner: dict[int, str] = {}
    for svc in services:
        port = svc.node_port
        if not port:
            continue
        if not low <= port <= high:
            raise ValueError(f"generate: {svc.name} has NodePort {port}, outside the "
                             f"range {low}-{high}")
        if port in owner:
            raise ValueError(f"generate: NodePort {port} is given to both {owner[port]} and "
                             f"{svc.name}; a NodePort is unique across the cluster")
        owner[port] = svc.name


def _service(k: int, pods, per: int) -> Service:
    total = len(pods)
    entries = []
    if k % 101 != 0:
        for i in range(per):
            pod = pods[(k * 7919 + i * 104729) % total]
            ready = not (k % 11 == 0 and i == 0) and k % 97 != 0
            terminating = k % 97 == 0
            entries.append(EndpointEntry(pod.name, pod.ip, ready, ready or terminating,
                                         terminating, pod.node))
    return Service(f"svc-{k}", SERVICE_CIDR[0] + 1 + k, 80 + k % 1000, PROTOCOLS[k % 3],
                   8000 + k % 1000, node_port(k), k % 7 == 0, False, tuple(entries))


check_mutant_names((generate,), MUTANTS, "model.network.generate")

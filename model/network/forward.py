"""Where a packet goes: the single definition of forwarding.

``forward(dataplane, packet)`` follows a packet from the node where it
enters (from a pod on that node's bridge, from the node itself, or from
outside on the node's interface) through the node's kube-proxy rules, its
route table, other nodes, and a bridge, to the pod that receives it. It
returns a *distribution*: ``((probability, PacketFate), …)`` — deterministic
for pod-to-pod traffic, a choice among endpoints for traffic to a Service.

The steps, in the order netfilter and the kernel apply them:

1. nat PREROUTING / OUTPUT → KUBE-SERVICES: the first Service whose virtual
   IP, port and protocol match — or whose NodePort matches a packet to one
   of the node's own addresses (``--dst-type LOCAL``) — takes the packet. No
   endpoints: REJECT. Otherwise KUBE-SVC picks a backend (statistic rules,
   or the one ClientIP affinity remembers) and KUBE-SEP DNATs to it.
   KUBE-MARK-MASQ marks the packet when kube-proxy masquerades: traffic to a
   ClusterIP from outside the cluster CIDR, any NodePort traffic
   (externalTrafficPolicy Cluster), and hairpin traffic (a pod reaching
   itself through its Service).
2. routing: longest-prefix match in the node's table; the node's own podCIDR
   goes out of its bridge, another node's to that node (directly or in an
   overlay tunnel: either way the inner packet is unchanged).
3. POSTROUTING on the way out of a node: a marked packet is masqueraded to
   the node's address; the bridge plugin's ``ipMasq`` masquerades packets
   from its subnet to destinations outside it.
4. the bridge delivers to the pod holding the destination address on that
   node, or the packet is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction

import attrs

from kubemc.model.network.addr import contains, ip, show
from kubemc.model.network.dataplane import Dataplane, Node, ServiceRule

DELIVERED, REJECTED, DROPPED = "delivered", "rejected", "dropped"
ONE = Fraction(1)


@attrs.frozen(slots=True)
class Packet:
    """The first packet of a connection, entering the network at ``node``."""

    src: int
    dst: int
    port: int
    proto: str
    node: int

    def __str__(self) -> str:
        return f"{show(self.src)} -> {show(self.dst)}:{self.port}/{self.proto} at node {self.node}"


@attrs.frozen(slots=True)
class PacketFate:
    """What became of a packet: delivered to ``pod`` at ``ip:port`` with the
    source address the receiver sees (``src``), rejected, or dropped."""

    kind: str
    pod: str | None
    ip: int
    port: int
    src: int
    reason: str = ""


def lookup(routes, dst: int):
    """Longest-prefix match; ``None`` when no route covers ``dst``."""
    best = None
    for r in routes:
        base, plen = r.dst
        if plen == 0 or (dst >> (32 - plen)) == (base >> (32 - plen)):
            if best is None or plen > best.dst[1]:
                best = r
    return best


def service_rule(node: Node, pkt: Packet) -> tuple[ServiceRule | None, bool]:
    """KUBE-SERVICES: the rule that takes the packet, and whether it came in
    through a NodePort (KUBE-NODEPORTS is the chain's last rule)."""
    for rule in node.rules.services:
        if rule.vip == pkt.dst and rule.port == pkt.port and rule.proto == pkt.proto:
            return rule, False
    if pkt.dst in node.local_addresses():
        for rule in node.rules.services:
            if rule.node_port and rule.node_port == pkt.port and rule.proto == pkt.proto:
                return rule, True
    return None, False


def backend_choices(rule: ServiceRule, client: int, recent: Mapping | None):
    """KUBE-SVC: ``(probability, backend)`` for each backend. Rule i is
    reached when rules 0..i-1 missed, so it is chosen with its own
    probability times the product of the earlier misses. With ClientIP
    affinity, a client the ``recent`` table remembers goes to its backend
    (the ``-m recent --rcheck`` rules precede the statistic ones)."""
    if rule.affinity and recent:
        remembered = recent.get((rule.service, client))
        for b in rule.sticky:
            if b.ip == remembered:
                return ((ONE, b),)
    out = []
    miss = ONE
    for b in rule.backends:
        out.append((miss * b.probability, b))
        miss *= 1 - b.probability
    return tuple(out)


def forward(dp: Dataplane, pkt: Packet, recent: Mapping | None = None) -> tuple:
    node = dp.nodes[pkt.node]
    rule, via_node_port = service_rule(node, pkt)
    if rule is None:
        return ((ONE, route(dp, node, pkt.src, pkt.dst, pkt.port, False)),)
    if not rule.backends:
        return ((ONE, PacketFate(REJECTED, None, pkt.dst, pkt.port, pkt.src,
                              f"service {rule.service} has no endpoints")),)
    masq = via_node_port or not contains(node.rules.cluster_cidr, pkt.src)
    merged: dict = {}
    choices = backend_choices(rule, pkt.src, recent)
    for p, b in choices:
        if p == 0:
            continue
        hairpin = b.ip == pkt.src
        out = route(dp, node, pkt.src, b.ip, b.port, masq or hairpin)
        merged[out] = merged.get(out, 0) + p
    rest = 1 - sum(p for p, _ in choices)
    if rest > 0:
        # no statistic rule matched: the packet returns from KUBE-SVC with
        # its destination untranslated and is routed as it is
        out = route(dp, node, pkt.src, pkt.dst, pkt.port, masq)
        merged[out] = merged.get(out, 0) + rest
    return tuple((p, o) for o, p in merged.items())


def route(dp: Dataplane, ingress: Node, src: int, dst: int, port: int, masq: bool) -> PacketFate:
    """Steps 2-4 for a packet (after any DNAT) leaving ``ingress``."""
    cur = ingress
    visited = set()
    while True:
        if cur.index in visited:
            return PacketFate(DROPPED, None, dst, port, src, "routing loop")
        visited.add(cur.index)
        r = lookup(cur.routes, dst)
        if r is None:
            return PacketFate(DROPPED, None, dst, port, src,
                           f"{cur.name} has no route to the destination")
        if cur is ingress and masq:
            src = cur.ip
        elif cur.bridge is not None and cur.bridge.ip_masq \
                and contains(cur.bridge.subnet, src) and not contains(cur.bridge.subnet, dst):
            src = cur.ip
        if r.via == cur.index:
            pod = dp.pod_index.get((cur.index, dst))
            if pod is None:
                return PacketFate(DROPPED, None, dst, port, src,
                               f"no pod holds the address on {cur.name}'s bridge")
            return PacketFate(DELIVERED, pod.name, dst, port, src)
        cur = dp.nodes[r.via]


def probe_packet(params, nodes: int) -> Packet | None:
    """The packet of a ``Probe(src, dst, port, proto, node)`` step, its
    addresses written as dotted quads; None (the step is not enabled) when
    ``node`` is none of the ``nodes`` nodes. A malformed address raises: the
    machine never proposes one, and a recorded step is screened by
    ``trace replay`` before it gets here, so an error here is a bug to see,
    not a disabled step."""
    src, dst, port, proto, node = params
    if not 0 <= node < nodes:
        return None
    return Packet(ip(src), ip(dst), port, proto, node)


def probe_record(pkt: Packet, outcomes) -> tuple:
    """What a probe step records in its machine's state: the packet as the
    step writes it, then each outcome's probability, kind, pod and source."""
    return (show(pkt.src), show(pkt.dst), pkt.port, pkt.proto, pkt.node) + tuple(
        (str(p), o.kind, o.pod or "-", show(o.src)) for p, o in outcomes)


def delivered_to(outcomes) -> dict:
    """pod name -> total probability of being delivered there."""
    out: dict = {}
    for p, o in outcomes:
        if o.kind == DELIVERED:
            out[o.pod] = out.get(o.pod, 0) + p
    return out


__all__ = ["DELIVERED", "DROPPED", "ONE", "PacketFate", "Packet", "REJECTED", "backend_choices",
           "delivered_to", "forward", "lookup", "probe_packet", "probe_record", "route",
           "service_rule"]

"""Properties of kube-proxy's Service forwarding, over ``model.proxy.machine``
states. They speak of nodes whose rules are in sync with the API (a node's
rules lag the API; during the lag anything the old rules say is allowed),
and they ask the one forwarding function, ``model.network.forward``.

Which endpoints a Service *should* send traffic to is decided here, from the
EndpointSlices the API holds — not by the rule compiler under test: the
ready ones, or, when none is ready, the serving ones that are terminating
(KEP-1669).
"""

from __future__ import annotations

from fractions import Fraction

from kubemc.model.network.forward import DELIVERED, REJECTED, Packet, forward
from kubemc.model.proxy.cluster import (EXTERNAL_CLIENT, GONE, READY, TERMINATING,
                                        TERMINATING_SERVING)
from kubemc.properties.core import COVER, INVARIANT, Property

_SEED = ("seeds/000: 'the kube-proxy is responsible for tcp, udp and sctp stream forwarding "
         "or round robin forwarding across a set of pod backends, and it implements "
         "forwarding rules defined by users through service api objects'")
_READY = ("Kubernetes EndpointSlice conditions (discovery.k8s.io/v1): 'ready' indicates the "
          "endpoint is ready to receive traffic; kube-proxy forwards to ready endpoints, "
          "falling back to serving terminating ones when none is ready (KEP-1669)")
_RANDOM = ("kubernetes.io/docs/reference/networking/virtual-ips (iptables proxy mode): "
           "kube-proxy selects a backend at random; KUBE-SVC rule i of n carries "
           "'-m statistic --mode random --probability 1/(n-i)' and the last rule none, so "
           "each of the n endpoints is chosen with probability 1/n; iptables-extensions(8), "
           "statistic: '--probability p: set the probability for a packet to be randomly "
           "matched'")
_SOURCE_IP = ("kubernetes.io/docs/tutorials/services/source-ip: 'Packets sent to ClusterIP from "
              "within the cluster are never source NAT'd if you're running kube-proxy in "
              "iptables mode'; 'Packets sent to Services with Type=NodePort are source NAT'd "
              "by default'; kube-proxy reference, --cluster-cidr: 'traffic sent to a Service "
              "cluster IP from outside this range will be masqueraded'")
_NODEPORT = ("kubernetes.io/docs/concepts/services-networking/service (type NodePort): 'each "
             "node proxies that port (the same port number on every Node) into your "
             "Service'")



def usable_endpoints(service) -> tuple:
    ready = tuple(e for e in service.endpoints if e.ready)
    return ready or tuple(e for e in service.endpoints if e.serving and e.terminating)


def sources(dp, node) -> list[int]:
    """Who may send to a Service through ``node``: a pod on it, the node
    itself, a client outside the cluster."""
    out = [p.ip for p in dp.pods if p.node == node.index][:1]
    return out + [node.ip, EXTERNAL_CLIENT]


def wrong_delivery(dp, node, svc, src, recent=None):
    """The outcome that breaks "reaches only usable endpoints" for one packet
    to the Service's virtual IP (with the node's ClientIP-affinity table
    ``recent``), or None."""
    usable = {e.pod for e in usable_endpoints(svc)}
    for p, o in forward(dp, Packet(src, svc.vip, svc.port, svc.proto, node.index), recent):
        if p <= 0:
            continue
        if not usable:
            if o.kind != REJECTED:
                return o
        elif o.kind != DELIVERED or o.pod not in usable or o.port != svc.target_port:
            return o
    return None


class _Same:
    """A key part equal only to itself: a node's rule set, compared by
    identity (the machine hands out one object per compiled rule set; one
    compiled anew is merely a memo miss). The key holds the object, so its
    identity is never reused while the verdict is remembered."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other) -> bool:
        return isinstance(other, _Same) and other.obj is self.obj


def _on_synced_nodes(m, state, name, node_holds) -> bool:
    """``node_holds(dp, node, recent)`` for every in-sync node of ``state``.

    Each node's verdict is a function of what it reads — the node's own
    rules (a packet meets kube-proxy's rules only where it enters), every
    node's address, podCIDR, bridge and routes, the pods, the API's Services,
    and the node's affinity memory — so it is remembered under exactly that:
    the thousands of states that differ only in budgets or in which *other*
    nodes lag ask the same question. The key is that content, not a summary
    of the state, so a changed model cannot make two different networks
    share a verdict."""
    dp = m.dataplane(state)
    memo = m.__dict__.setdefault("_proxy_verdicts", {})
    if len(memo) > 200_000:
        memo.clear()
    network = (tuple((nd.ip, nd.pod_cidr, nd.bridge, nd.routes) for nd in dp.nodes),
               dp.cluster_cidr, dp.pods, dp.services)
    for n in m.synced_nodes(state):
        recent = m.recent_table(state, n)
        key = (name, n, _Same(dp.nodes[n].rules), network, tuple(sorted(recent.items())))
        verdict = memo.get(key)
        if verdict is None:
            verdict = memo[key] = bool(node_holds(dp, dp.nodes[n], recent))
        if not verdict:
            return False
    return True


def service_reaches_only_usable_endpoints(m, state) -> bool:
    return _on_synced_nodes(m, state, "usable", lambda dp, node, recent: not any(
        wrong_delivery(dp, node, svc, src, recent) is not None
        for svc in dp.services for src in sources(dp, node)))


def wrong_source(dp, node, svc, src, recent=None):
    """The delivered outcome of a connection from ``src`` to the Service
    through ``node`` whose source address breaks the documented masquerade
    rules, or None.

    What the endpoint sees as the source (kubernetes.io/docs/tutorials/
    services/source-ip): to a ClusterIP, a pod's connection keeps the pod's
    address ("Packets sent to ClusterIP from within the cluster are never
    source NAT'd if you're running kube-proxy in iptables mode"); a
    connection from outside the cluster's pod network — the node itself, a
    client outside the cluster — arrives from the node that took it
    (kube-proxy --cluster-cidr: "traffic sent to a Service cluster IP from
    outside this range will be masqueraded"); so does a pod that reaches
    itself through the Service (the hairpin, which kube-proxy's KUBE-SEP
    chain marks for masquerade), and everything through a NodePort ("Packets
    sent to Services with Type=NodePort are source NAT'd by default"). A pod
    is told apart by its address being a pod's, not by the cluster CIDR the
    rules were compiled with."""
    pods = {p.ip for p in dp.pods}
    packets = [(Packet(src, svc.vip, svc.port, svc.proto, node.index), False)]
    if svc.node_port:
        packets.append((Packet(src, node.ip, svc.node_port, svc.proto, node.index), True))
    for pkt, via_node_port in packets:
        for p, o in forward(dp, pkt, recent):
            if p <= 0 or o.kind != DELIVERED:
                continue
            keeps = src in pods and not via_node_port and o.ip != src
            if o.src != (src if keeps else node.ip):
                return o
    return None


def service_source_address(m, state) -> bool:
    return _on_synced_nodes(m, state, "source", lambda dp, node, recent: not any(
        wrong_source(dp, node, svc, src, recent) is not None
        for svc in dp.services for src in sources(dp, node)))


def chain_distribution(rule) -> dict:
    """Backend address -> the probability that the KUBE-SVC chain of ``rule``
    jumps to it, and ``None`` -> the probability that no rule matches.

    The semantics, restated from iptables rather than taken from the rule
    compiler or ``forward``: the chain's rules are tried in order and the
    first that matches wins; a rule with ``-m statistic --mode random
    --probability p`` matches with probability ``p``, drawn afresh for each
    rule; a rule without it (``p`` = 1) always matches. So rule ``i`` is
    taken with ``p_i`` times the product of ``1 - p_j`` over the rules
    before it. Exact rationals (``Fraction``)."""
    out: dict = {}
    miss = Fraction(1)
    for b in rule.backends:
        p = Fraction(b.probability)
        out[b.ip] = out.get(b.ip, Fraction(0)) + miss * p
        miss *= 1 - p
    out[None] = miss
    return out


def skewed_endpoint(dp, node, svc):
    """``(endpoint, probability it is chosen)`` for a usable endpoint of
    ``svc`` that ``node``'s chain does not choose with probability exactly
    1/n (n usable endpoints), or None."""
    usable = usable_endpoints(svc)
    if not usable:
        return None
    rule = next((r for r in node.rules.services if r.service == svc.name), None)
    share = chain_distribution(rule) if rule is not None else {}
    want = Fraction(1, len(usable))
    return next(((e, share.get(e.ip, Fraction(0))) for e in usable
                 if share.get(e.ip, Fraction(0)) != want), None)


def unchosen_endpoint(dp, node, svc):
    """A usable endpoint not chosen with probability exactly 1/n, or None."""
    bad = skewed_endpoint(dp, node, svc)
    return None if bad is None else bad[0]


def ready_endpoints_all_chosen(m, state) -> bool:
    return _on_synced_nodes(m, state, "chosen", lambda dp, node, recent: all(
        skewed_endpoint(dp, node, svc) is None for svc in dp.services))


def nodeport_unanswered(dp, node, svc, recent=None) -> bool:
    if not svc.node_port or not usable_endpoints(svc):
        return False
    out = forward(dp, Packet(EXTERNAL_CLIENT, node.ip, svc.node_port, svc.proto, node.index),
                  recent)
    usable = {e.pod for e in usable_endpoints(svc)}
    return sum(p for p, o in out if o.kind == DELIVERED and o.pod in usable) != 1


def nodeport_on_every_node(m, state) -> bool:
    return _on_synced_nodes(m, state, "nodeport", lambda dp, node, recent: not any(
        nodeport_unanswered(dp, node, svc, recent) for svc in dp.services))


def slice_mismatch(dp, conditions):
    """The first Service whose EndpointSlice entries differ from what the API
    says of the pods it selects, as ``(service, expected, listed)``, or None.

    Restated from the EndpointSlice API (discovery.k8s.io/v1): a Service's
    slices list one endpoint per existing pod its selector matches (the
    scenario's selector, ``model.proxy.cluster``: pod p belongs to Service s
    when p and s have the same parity), at the pod's address on the pod's
    node; ``terminating`` is set for a pod being deleted; ``serving`` says
    the pod passes its readiness probe "regardless of the terminating
    state"; ``ready`` is serving and not terminating — "ready should never be
    'true' for terminating endpoints, except when the normal readiness
    behavior is being explicitly overridden, for example when the associated
    Service has set the publishNotReadyAddresses flag", which makes every
    endpoint ready and serving."""
    pods = {p.name: p for p in dp.pods}
    for s, svc in enumerate(dp.services):
        want = set()
        for p, cond in enumerate(conditions):
            if cond == GONE or p % 2 != s % 2:
                continue
            pod = pods.get(f"pod-{p}")
            if pod is None:
                return svc.name, f"pod-{p} exists but holds no address", ()
            probe_passes = cond in (READY, TERMINATING_SERVING)
            terminating = cond in (TERMINATING, TERMINATING_SERVING)
            override = svc.publish_not_ready
            want.add((pod.name, pod.ip, pod.node, override or (probe_passes and not terminating),
                      override or probe_passes, terminating))
        listed = {(e.pod, e.ip, e.node, e.ready, e.serving, e.terminating) for e in svc.endpoints}
        if listed != want or len(svc.endpoints) != len(listed):
            return svc.name, sorted(want), sorted(listed)
    return None


def endpoint_slices_follow_pods(m, state) -> bool:
    return slice_mismatch(m.dataplane(state), state[0]) is None


# -- covers: the bounds reach what the invariants speak of ---------------------------
#
# The invariants above speak only of nodes whose rules are in sync; these make
# sure the in-sync states include the cases they single out (the mutation run
# of docs/mutation/proxy.md found a model that never deletes a pod passing
# every invariant).

def reject_on_synced_node(m, state) -> bool:
    """A node is in sync while a Service has no usable endpoint (REJECT)."""
    return bool(m.synced_nodes(state)) and any(
        not usable_endpoints(svc) for svc in m.dataplane(state).services)


def terminating_fallback_on_synced_node(m, state) -> bool:
    """A node is in sync while a Service has no ready endpoint but a serving
    terminating one (the KEP-1669 fallback)."""
    return bool(m.synced_nodes(state)) and any(
        not any(e.ready for e in svc.endpoints) and usable_endpoints(svc)
        for svc in m.dataplane(state).services)


def deleted_pod_on_synced_node(m, state) -> bool:
    """A pod is gone from the API and some node's rules already say so, while
    another node still lags."""
    return GONE in state[0] and 0 < len(m.synced_nodes(state)) < m.nodes


def affinity_outlives_endpoint(m, state) -> bool:
    """Node 0 is in sync and remembers the external client at a backend that
    is no longer a usable endpoint of its Service."""
    if 0 not in m.synced_nodes(state):
        return False
    services = {svc.name: svc for svc in m.dataplane(state).services}
    return any(ip not in {e.ip for e in usable_endpoints(services[name])}
               for (name, _), ip in m.recent_table(state, 0).items())


_SLICES = ("Kubernetes EndpointSlice API (discovery.k8s.io/v1, EndpointConditions): 'ready "
           "should never be \"true\" for terminating endpoints, except when the normal "
           "readiness behavior is being explicitly overridden, for example when the associated "
           "Service has set the publishNotReadyAddresses flag'; 'serving is identical to ready "
           "except that it is set regardless of the terminating state of endpoints'; "
           "'terminating indicates that this endpoint is terminating'")


PROPERTIES = (
    Property("service_reaches_only_usable_endpoints", "proxy", INVARIANT,
             "on a node whose rules are in sync, a connection to a Service's virtual IP "
             "and port reaches only its ready endpoints (serving terminating ones when "
             "none is ready), and is rejected when there are none",
             f"{_SEED}; {_READY}", service_reaches_only_usable_endpoints),
    Property("ready_endpoints_all_chosen", "proxy", INVARIANT,
             "on a node whose rules are in sync, each of the n usable endpoints of a "
             "Service (ready ones, else serving terminating ones) is chosen by the "
             "Service's KUBE-SVC chain with probability exactly 1/n (so nothing falls "
             "through the chain)", f"{_SEED}; {_RANDOM}",
             ready_endpoints_all_chosen),
    Property("service_source_address", "proxy", INVARIANT,
             "on a node whose rules are in sync, a pod's connection to a ClusterIP reaches "
             "the endpoint with the pod's own address as source (unless the pod reaches "
             "itself); a connection from outside the pod network, a hairpin and any "
             "NodePort connection arrive with the address of the node that took them",
             _SOURCE_IP, service_source_address),
    Property("nodeport_on_every_node", "proxy", INVARIANT,
             "a NodePort Service with endpoints answers on every node whose rules are in "
             "sync", _NODEPORT, nodeport_on_every_node),
    Property("endpoint_slices_follow_pods", "proxy", INVARIANT,
             "every Service's EndpointSlice lists exactly the existing pods it selects, at "
             "their addresses and nodes, with ready (serving and not terminating, or "
             "publishNotReadyAddresses), serving (the readiness probe passes) and "
             "terminating (the pod is being deleted) as the API says of each pod",
             _SLICES, endpoint_slices_follow_pods),
    Property("proxy_cover_reject_on_synced_node", "proxy", COVER,
             "a node is in sync while a Service has no usable endpoint (its REJECT rule is "
             "judged)", _READY, reject_on_synced_node),
    Property("proxy_cover_terminating_fallback", "proxy", COVER,
             "a node is in sync while a Service has no ready endpoint but a serving "
             "terminating one (the fallback is judged)", _READY,
             terminating_fallback_on_synced_node),
    Property("proxy_cover_deleted_pod_on_synced_node", "proxy", COVER,
             "a pod is deleted, one node's rules already follow and another's lag", _SEED,
             deleted_pod_on_synced_node),
    Property("proxy_cover_affinity_outlives_endpoint", "proxy", COVER,
             "node 0 is in sync and its affinity memory names a backend that is no longer a "
             "usable endpoint (the stale-affinity case is judged)", _READY,
             affinity_outlives_endpoint),
)

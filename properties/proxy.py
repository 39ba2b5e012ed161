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
from kubemc.model.proxy.cluster import EXTERNAL_CLIENT
from kubemc.properties.core import INVARIANT, Property

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


def service_reaches_only_usable_endpoints(m, state) -> bool:
    dp = m.dataplane(state)
    for n in m.synced_nodes(state):
        node, recent = dp.nodes[n], m.recent_table(state, n)
        for svc in dp.services:
            for src in sources(dp, node):
                if wrong_delivery(dp, node, svc, src, recent) is not None:
                    return False
    return True


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
    dp = m.dataplane(state)
    return all(skewed_endpoint(dp, dp.nodes[n], svc) is None
               for n in m.synced_nodes(state) for svc in dp.services)


def nodeport_unanswered(dp, node, svc, recent=None) -> bool:
    if not svc.node_port or not usable_endpoints(svc):
        return False
    out = forward(dp, Packet(EXTERNAL_CLIENT, node.ip, svc.node_port, svc.proto, node.index),
                  recent)
    usable = {e.pod for e in usable_endpoints(svc)}
    return sum(p for p, o in out if o.kind == DELIVERED and o.pod in usable) != 1


def nodeport_on_every_node(m, state) -> bool:
    dp = m.dataplane(state)
    return not any(nodeport_unanswered(dp, dp.nodes[n], svc, m.recent_table(state, n))
                   for n in m.synced_nodes(state) for svc in dp.services)


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
    Property("nodeport_on_every_node", "proxy", INVARIANT,
             "a NodePort Service with endpoints answers on every node whose rules are in "
             "sync", _NODEPORT, nodeport_on_every_node),
)

"""The forwarding function: addresses, routes, masquerade, kube-proxy chains."""

from fractions import Fraction

import pytest

from kubemc.model.network import addr
from kubemc.model.network.dataplane import (Backend, Bridge, Dataplane, Node, Pod, Route, Rules,
                                     ServiceRule, flat_routes)
from kubemc.model.network.forward import (DELIVERED, DROPPED, REJECTED, Packet, backend_choices,
                                   delivered_to, forward, lookup)

CLUSTER = addr.cidr("10.22.0.0/16")
A, B = addr.cidr("10.22.0.0/24"), addr.cidr("10.22.1.0/24")
VIP = addr.ip("10.96.0.10")
OUTSIDE = addr.ip("203.0.113.7")


def cluster(masq=False, overlay=False, services=(), drop_route=False):
    blocks = [A, B]
    nodes = []
    for n, b in enumerate(blocks):
        routes = flat_routes(n, blocks, overlay)
        if drop_route and n == 0:
            routes = routes[:1]
        nodes.append(Node(n, f"node-{n}", addr.ip("192.168.0.10") + n, b,
                          Bridge("cni0", b, b[0] + 1, masq), routes,
                          Rules(CLUSTER, tuple(services))))
    pods = (Pod("a", 0, A[0] + 2), Pod("a2", 0, A[0] + 3), Pod("b", 1, B[0] + 2))
    return Dataplane(CLUSTER, tuple(nodes), pods)


def test_addresses_and_cidrs():
    assert addr.show(addr.ip("10.22.0.1")) == "10.22.0.1"
    assert addr.cidr("10.22.0.0/16") == (addr.ip("10.22.0.0"), 16)
    assert addr.contains(CLUSTER, A[0] + 5) and not addr.contains(A, B[0])
    assert addr.overlaps(CLUSTER, A) and not addr.overlaps(A, B)
    assert addr.subnet(CLUSTER, 24, 1) == B
    with pytest.raises(ValueError):
        addr.cidr("10.22.0.1/16")
    with pytest.raises(ValueError):
        addr.ip("10.22.0")


def test_longest_prefix_wins_and_ties_go_to_the_first_route():
    routes = (Route(CLUSTER, 5), Route(A, 1), Route(A, 2))
    assert lookup(routes, A[0] + 9).via == 1
    assert lookup(routes, B[0] + 9).via == 5
    assert lookup(routes, addr.ip("8.8.8.8")) is None


@pytest.mark.parametrize("overlay", [False, True])
def test_pod_to_pod_across_nodes_keeps_the_source(overlay):
    dp = cluster(overlay=overlay)
    [(p, o)] = forward(dp, Packet(A[0] + 2, B[0] + 2, 80, "TCP", 0))
    assert p == 1 and o.kind == DELIVERED and o.pod == "b" and o.src == A[0] + 2


def test_bridge_ipmasq_masquerades_traffic_leaving_its_subnet_only():
    dp = cluster(masq=True)
    [(_, across)] = forward(dp, Packet(A[0] + 2, B[0] + 2, 80, "TCP", 0))
    assert across.kind == DELIVERED and across.src == dp.nodes[0].ip
    [(_, local)] = forward(dp, Packet(A[0] + 2, A[0] + 3, 80, "TCP", 0))
    assert local.pod == "a2" and local.src == A[0] + 2


def test_a_missing_route_or_address_drops():
    dp = cluster(drop_route=True)
    [(_, o)] = forward(dp, Packet(dp.nodes[0].ip, B[0] + 2, 80, "TCP", 0))
    assert o.kind == DROPPED and "no route" in o.reason
    [(_, o)] = forward(cluster(), Packet(A[0] + 2, B[0] + 77, 80, "TCP", 0))
    assert o.kind == DROPPED and "no pod" in o.reason


def _svc(backends, node_port=0, affinity=False):
    n = len(backends)
    chain = tuple(Backend(ip, 8080, Fraction(1, n - i)) for i, ip in enumerate(backends))
    return ServiceRule("web", VIP, 80, "TCP", node_port, chain, affinity,
                       chain if affinity else ())


def test_statistic_rules_give_each_endpoint_one_nth():
    dp = cluster(services=[_svc([A[0] + 2, A[0] + 3, B[0] + 2])])
    out = forward(dp, Packet(A[0] + 2, VIP, 80, "TCP", 1))
    assert delivered_to(out) == {"a": Fraction(1, 3), "a2": Fraction(1, 3), "b": Fraction(1, 3)}
    assert all(o.port == 8080 for _, o in out)
    # no match on another port or protocol: the VIP is not routed
    [(_, o)] = forward(dp, Packet(A[0] + 2, VIP, 81, "TCP", 1))
    assert o.kind == DROPPED


def test_masquerade_only_where_kube_proxy_does_it():
    dp = cluster(services=[_svc([B[0] + 2], node_port=30080)])
    [(_, inside)] = forward(dp, Packet(A[0] + 2, VIP, 80, "TCP", 0))
    assert inside.src == A[0] + 2                        # pod to ClusterIP: no NAT of the source
    [(_, outside)] = forward(dp, Packet(OUTSIDE, VIP, 80, "TCP", 0))
    assert outside.src == dp.nodes[0].ip                 # from outside the cluster CIDR
    [(_, nodeport)] = forward(dp, Packet(OUTSIDE, dp.nodes[0].ip, 30080, "TCP", 0))
    assert nodeport.pod == "b" and nodeport.src == dp.nodes[0].ip
    [(_, hairpin)] = forward(dp, Packet(B[0] + 2, VIP, 80, "TCP", 1))
    assert hairpin.pod == "b" and hairpin.src == dp.nodes[1].ip


def test_no_endpoints_is_a_reject():
    dp = cluster(services=[_svc([])])
    [(_, o)] = forward(dp, Packet(A[0] + 2, VIP, 80, "TCP", 0))
    assert o.kind == REJECTED


def test_client_ip_affinity_returns_to_the_remembered_backend():
    rule = _svc([A[0] + 2, B[0] + 2], affinity=True)
    assert backend_choices(rule, OUTSIDE, {("web", OUTSIDE): B[0] + 2})[0][1].ip == B[0] + 2
    # a remembered backend no longer in the chain: back to the statistic rules
    assert len(backend_choices(rule, OUTSIDE, {("web", OUTSIDE): 1})) == 2
    dp = cluster(services=[rule])
    out = forward(dp, Packet(OUTSIDE, VIP, 80, "TCP", 0), recent={("web", OUTSIDE): A[0] + 2})
    assert delivered_to(out) == {"a": 1}


def test_a_chain_that_can_miss_leaves_the_rest_untranslated():
    rule = ServiceRule("web", VIP, 80, "TCP", 0,
                       (Backend(B[0] + 2, 8080, Fraction(1, 2)),), False)
    out = dict((o.kind, p) for p, o in forward(cluster(services=[rule]),
                                                Packet(A[0] + 2, VIP, 80, "TCP", 0)))
    assert out == {DELIVERED: Fraction(1, 2), DROPPED: Fraction(1, 2)}

"""kube-proxy rules and the proxy machine: properties hold, every mutant is caught."""

from fractions import Fraction

import attrs
import pytest

from kubemc.checker.catalog.network import PROXY_MODEL
from kubemc.checker.explore import explore
from kubemc.checker.run import targeted
from kubemc.checker.stateful import check as stateful_check
from kubemc.model.kernel import Step
from kubemc.model.network.dataplane import EndpointEntry, Service
from kubemc.model.proxy import cluster
from kubemc.model.proxy.machine import Proxy
from kubemc.model.proxy.rules import compile_rules, probability, usable
from kubemc.properties.proxy import PROPERTIES, usable_endpoints


def entry(name, ready, serving, terminating):
    return EndpointEntry(name, hash(name) & 0xFFFF, ready, serving, terminating, 0)


def test_statistic_probabilities_make_every_endpoint_one_nth():
    for n in range(1, 7):
        miss, chosen = Fraction(1), []
        for i in range(n):
            chosen.append(miss * probability(i, n))
            miss *= 1 - probability(i, n)
        assert chosen == [Fraction(1, n)] * n and miss == 0


def test_terminating_serving_endpoints_are_used_only_when_none_is_ready():
    ready, term = entry("r", True, True, False), entry("t", False, True, True)
    gone = entry("x", False, False, True)
    assert usable((ready, term, gone)) == (ready,)
    assert usable((term, gone)) == (term,)
    assert usable((gone,)) == ()
    svc = Service("s", 1, 80, "TCP", 8080, endpoints=(term, gone))
    assert usable_endpoints(svc) == (term,)          # the oracle agrees (KEP-1669)


def test_publish_not_ready_addresses_marks_every_endpoint_ready():
    conditions = (cluster.NOT_READY,) * 4
    pnra = cluster.service_spec(2)
    assert pnra.publish_not_ready
    assert all(e.ready for e in cluster.slice_entries(pnra, 2, conditions, 3))
    plain = cluster.service_spec(0)
    assert not any(e.ready for e in cluster.slice_entries(plain, 0, conditions, 3))


def test_no_endpoints_compiles_to_a_reject_rule():
    svc = cluster.api_services(1, (cluster.GONE,) * 4, 3)
    [rule] = compile_rules(cluster.CLUSTER_CIDR, svc, 0).services
    assert rule.backends == ()


def test_rules_lag_until_the_node_syncs():
    m = Proxy()
    s = next(iter(m.init_states()))
    s = m.apply(s, Step("BecomeUnready", (0,)))
    assert m.synced_nodes(s) == []
    assert m.apply(s, Step("Sync", (1,)))[1][1] == s[0]
    # nothing is claimed of stale nodes
    assert all(p.check(m, s) for p in PROPERTIES if p.kind == "invariant")


def test_client_ip_affinity_returns_the_client_to_its_backend_until_it_leaves():
    m = Proxy(connections=2)
    s = next(iter(m.init_states()))
    s = m.apply(s, Step("Connect", (0, "10.22.0.2")))          # pod-0 serves svc-0
    assert s[4] == ((0, cluster.pod_ip(0, 3)),)
    assert m.apply(s, Step("Connect", (0, "10.22.2.2"))) is None   # sticks to pod-0
    dp = m.dataplane(s)
    from kubemc.model.network.forward import Packet, delivered_to, forward
    client = Packet(cluster.EXTERNAL_CLIENT, dp.services[0].vip, 80, "TCP", 0)
    assert delivered_to(forward(dp, client, m.recent_table(s, 0))) == {"pod-0": 1}
    for step in (Step("BecomeUnready", (0,)), Step("Sync", (0,))):
        s = m.apply(s, step)
    # pod-0's chain and affinity rule are gone: the client goes to pod-2
    dp = m.dataplane(s)
    assert delivered_to(forward(dp, client, m.recent_table(s, 0))) == {"pod-2": 1}
    assert all(p.check(m, s) for p in PROPERTIES if p.kind == "invariant")


def test_the_correct_model_holds_with_three_services():
    out = explore(Proxy(services=3, events=1), PROPERTIES)
    assert out.complete and out.counterexample is None and out.stats.states > 400


@pytest.mark.parametrize("mutant", sorted(Proxy.mutants))
def test_every_mutant_is_caught(mutant):
    out = explore(PROXY_MODEL.machine(mutant), targeted(PROXY_MODEL, mutant))
    assert out.counterexample is not None
    assert out.counterexample.prop.name == Proxy.mutants[mutant].violates
    found = stateful_check(PROXY_MODEL.hypothesis_machine(mutant), targeted(PROXY_MODEL, mutant),
                           max_examples=50)
    assert found.counterexample is not None


def test_an_uneven_chain_that_still_chooses_everyone_is_caught():
    """1/(n-i+1) with an unconditional last rule: every endpoint has positive
    probability (the old positive-probability check passed), but two
    endpoints get 1/3 and 2/3 — the exact-distribution property fails."""
    from kubemc.properties.proxy import chain_distribution, ready_endpoints_all_chosen
    services = cluster.api_services(2, (cluster.READY,) * 4, 3)
    rules = compile_rules(cluster.CLUSTER_CIDR, services, 0, "probability_one_too_many")
    share = chain_distribution(rules.services[0])
    assert sorted(share[b.ip] for b in rules.services[0].backends) == [Fraction(1, 3),
                                                                       Fraction(2, 3)]
    assert share[None] == 0
    m = Proxy(mutant="probability_one_too_many")
    assert not ready_endpoints_all_chosen(m, next(iter(m.init_states())))
    assert ready_endpoints_all_chosen(Proxy(), next(iter(Proxy().init_states())))


def test_the_chain_semantics_are_restated_not_borrowed():
    """On the correct rules the property's own reading of the chain gives
    each endpoint 1/n and leaves nothing over."""
    from kubemc.properties.proxy import chain_distribution
    services = cluster.api_services(4, (cluster.READY,) * 8, 3)
    for rule in compile_rules(cluster.CLUSTER_CIDR, services, 0).services:
        share = chain_distribution(rule)
        assert share[None] == 0
        assert all(share[b.ip] == Fraction(1, len(rule.backends)) for b in rule.backends)


COVERS = [p for p in PROPERTIES if p.kind == "cover"]


class _Without(Proxy):
    """A proxy machine that never takes some of its actions (what a model
    looks like when a step silently stops being offered)."""

    def __init__(self, actions, **bounds):
        super().__init__(**bounds)
        self.actions = actions

    def steps(self, state):
        return (s for s in super().steps(state) if s.name not in self.actions)


def test_every_cover_is_reached_at_the_catalog_bounds():
    out = explore(PROXY_MODEL.machine(None), COVERS)
    assert out.complete and len(out.covers) == 4 and all(out.covers.values()), out.covers


@pytest.mark.parametrize("actions, cover", [
    ({"DeletePod"}, "proxy_cover_deleted_pod_on_synced_node"),
    ({"Connect"}, "proxy_cover_affinity_outlives_endpoint"),
    ({"Terminate"}, "proxy_cover_terminating_fallback"),
    ({"BecomeUnready", "Terminate"}, "proxy_cover_reject_on_synced_node"),
])
def test_a_model_that_never_takes_an_action_leaves_a_cover_unreached(actions, cover):
    out = explore(_Without(actions, **PROXY_MODEL.bounds), PROPERTIES)
    assert out.complete and out.counterexample is None
    assert not out.covers[cover]


def test_a_pod_reaches_a_cluster_ip_with_its_own_address_and_outsiders_through_the_node():
    """kubernetes.io/docs/tutorials/services/source-ip: no SNAT for pod to
    ClusterIP in iptables mode; NodePort and off-cluster clients are SNATed."""
    from kubemc.model.network.forward import Packet, forward
    from kubemc.properties.proxy import service_source_address, wrong_source
    m = Proxy()
    s = next(iter(m.init_states()))
    dp = m.dataplane(s)
    node, svc0, svc1 = dp.nodes[0], dp.services[0], dp.services[1]
    pod1 = cluster.pod_ip(1, 3)                      # on node 1, not a backend of svc-0
    for _, o in forward(dp, Packet(pod1, svc0.vip, svc0.port, svc0.proto, 1)):
        assert o.src == pod1
    outside = Packet(cluster.EXTERNAL_CLIENT, node.ip, svc1.node_port, svc1.proto, 0)
    for _, o in forward(dp, outside):
        assert o.src == node.ip
    assert all(wrong_source(dp, nd, svc, src) is None for nd in dp.nodes
               for svc in dp.services for src in (pod1, nd.ip, cluster.EXTERNAL_CLIENT))
    assert service_source_address(m, s)
    # rules compiled as if every source were a pod: the outside client keeps its address
    blind = attrs.evolve(dp, nodes=tuple(attrs.evolve(nd, rules=attrs.evolve(nd.rules,
                                                                              cluster_cidr=(0, 0)))
                                         for nd in dp.nodes))
    bad = wrong_source(blind, blind.nodes[0], svc0, cluster.EXTERNAL_CLIENT)
    assert bad is not None and bad.src == cluster.EXTERNAL_CLIENT


def test_endpoint_slices_are_judged_against_the_pods_conditions():
    from kubemc.properties.proxy import endpoint_slices_follow_pods, slice_mismatch
    m = Proxy(services=3)
    s = next(iter(m.init_states()))
    for step in (Step("Terminate", (0,)), Step("BecomeUnready", (1,))):
        s = m.apply(s, step)
    assert endpoint_slices_follow_pods(m, s)
    dp = m.dataplane(s)
    # a terminating pod listed as ready (publishNotReadyAddresses is off for svc-0)
    entries = tuple(attrs.evolve(e, ready=True) for e in dp.services[0].endpoints)
    wrong = attrs.evolve(dp, services=(attrs.evolve(dp.services[0], endpoints=entries),)
                         + dp.services[1:])
    assert slice_mismatch(wrong, s[0])[0] == "svc-0"
    # a selected pod missing from the slice
    short = attrs.evolve(dp, services=(attrs.evolve(dp.services[0], endpoints=entries[1:]),)
                         + dp.services[1:])
    assert slice_mismatch(short, s[0]) is not None

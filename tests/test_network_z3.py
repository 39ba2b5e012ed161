"""The Z3 encoding of forwarding, kept in step with ``forward``: verdicts on
reachable model states and on random packets agree with the executable
properties; seeded bugs are caught at scale; the catalog's checks write
replayable traces that end with the solver's packet."""

import random
from functools import partial

import pytest

from kubemc.checker.catalog.network import CNI, PROXY
from kubemc.checker.cli import main
from kubemc.checker.reach import prove
from kubemc.checker.z3engine import PROVED, VIOLATED, run_checks
from kubemc.model.cni.machine import Cni
from kubemc.model.network.forward import DELIVERED, Packet, forward
from kubemc.model.network.generate import MUTANTS, generate
from kubemc.model.proxy.machine import Proxy
from kubemc.properties import cni as cni_props
from kubemc.properties import proxy as proxy_props
from kubemc.properties.symbolic import network_reach
from kubemc.properties.symbolic.network import NetworkEncoding, rule_groups


def distinct_states(machine, key, limit):
    """Reachable states with distinct dataplane keys, breadth-first."""
    seen, keys, frontier, out = set(), set(), list(machine.init_states()), []
    while frontier and len(out) < limit:
        nxt = []
        for s in frontier:
            k = key(machine, s)
            if k not in keys:
                keys.add(k)
                out.append(s)
            for _, t in machine.successors(s):
                if t not in seen:
                    seen.add(t)
                    nxt.append(t)
        frontier = nxt
    return out[:limit]


def unique_endpoints(dp):
    keys = [(p.node, p.ip) for p in dp.pods]
    return len(keys) == len(set(keys))


@pytest.mark.parametrize("mutant", [None, "bridge_ipmasq", "missing_route",
                                    "restart_forgets_cidrs", "seed_subnet_on_every_node"])
def test_no_nat_verdicts_agree_with_the_executable_properties(mutant):
    m = Cni(nodes=3, pods=3, deletions=1, crashes=0, restarts=1, mutant=mutant)
    checked = 0
    for s in distinct_states(m, network_reach.cni_key, 60):
        dp = m.dataplane(s)
        if not unique_endpoints(dp):   # a pod *is* its (node, address) to the network
            continue
        enc = NetworkEncoding(dp)
        assert enc.no_nat("pods").holds == cni_props.pod_to_pod_without_nat(m, s), s
        assert enc.no_nat("nodes").holds == cni_props.node_to_pod_without_nat(m, s), s
        checked += 1
    assert checked >= 20


@pytest.mark.parametrize("mutant", [None] + sorted(Proxy.mutants))
def test_service_verdicts_agree_with_the_executable_properties(mutant):
    m = Proxy(events=2, mutant=mutant)
    props = {"cluster_ip": proxy_props.service_reaches_only_usable_endpoints,
             "node_port": proxy_props.nodeport_on_every_node,
             "chosen": proxy_props.ready_endpoints_all_chosen}
    states = distinct_states(m, network_reach.proxy_key, 40)
    for mode, prop in props.items():
        for s in states:
            z3_holds = all(v.holds for v in network_reach.proxy_queries(m, s, mode))
            assert z3_holds == prop(m, s), (mode, s)


@pytest.mark.parametrize("mutant", [None, "bridge_ipmasq", "missing_route"])
def test_random_packets_agree_with_forward(mutant):
    dp = generate(6, pods_per_node=4, services_per_node=1, mutant=mutant)
    enc = NetworkEncoding(dp)
    rng = random.Random(7)
    for _ in range(40):
        dst = rng.choice(dp.pods)
        if rng.random() < 0.5:
            src = rng.choice(dp.pods)
            if src is dst:
                continue
            pkt, which = Packet(src.ip, dst.ip, rng.randrange(65536), "TCP", src.node), "pods"
        else:
            node = rng.choice(dp.nodes)
            pkt, which = Packet(node.ip, dst.ip, rng.randrange(65536), "UDP", node.index), "nodes"
        out = forward(dp, pkt)
        unchanged = len(out) == 1 and out[0][1].kind == DELIVERED \
            and out[0][1].pod == dst.name and out[0][1].src == pkt.src
        assert enc.no_nat(which, packet=pkt).holds == unchanged, pkt


def test_random_service_packets_agree_with_forward():
    dp = generate(6, pods_per_node=4, services_per_node=4, mutant="not_ready_endpoint_in_rules")
    enc = NetworkEncoding(dp)
    nodes = list(range(6))
    rng = random.Random(3)
    for svc in rng.sample(dp.services, 12):
        node = rng.randrange(6)
        pkt = Packet(rng.choice(dp.pods).ip, svc.vip, svc.port, svc.proto, node)
        usable = {e.pod for e in proxy_props.usable_endpoints(svc)}
        out = forward(dp, pkt)
        right = all(o.kind == DELIVERED and o.pod in usable for p, o in out if p > 0) \
            if usable else all(o.kind == "rejected" for _, o in out)
        assert enc.services(nodes, "cluster_ip", packet=pkt).holds == right, svc.name


@pytest.mark.parametrize("mutant", (None,) + MUTANTS)
def test_generated_clusters_are_proved_and_every_seeded_bug_is_caught(mutant):
    dp = generate(30, mutant=mutant)
    enc = NetworkEncoding(dp)
    verdicts = [enc.no_nat("pods"), enc.no_nat("nodes")]
    for group in rule_groups(dp, range(30)):
        verdicts += [enc.services(group, m) for m in ("cluster_ip", "node_port", "chosen")]
    failed = {v.query for v in verdicts if not v.holds}
    expected = {None: set(), "bridge_ipmasq": {"no_nat[pods]"},
                "missing_route": {"no_nat[pods]", "no_nat[nodes]"},
                "not_ready_endpoint_in_rules": {"services[cluster_ip]"},
                "probability_off_by_one": {"services[chosen]"},
                "probability_one_too_many": {"services[chosen]"}}[mutant]
    assert expected <= failed and (mutant is not None or not failed)
    for v in verdicts:
        assert v.holds or v.packet is not None


@pytest.mark.parametrize("component, mutant", [
    (CNI, "bridge_ipmasq"), (CNI, "missing_route"), (PROXY, "not_ready_endpoint_in_rules"),
    (PROXY, "probability_off_by_one"), (PROXY, "probability_one_too_many"),
    (PROXY, "nodeport_only_on_endpoint_nodes"),
    (PROXY, "stale_affinity_rules")])
def test_catalog_checks_catch_mutants_with_a_probe_at_the_end(component, mutant):
    [result] = run_checks(component.symbolic, mutant)
    assert result.verdict == VIOLATED
    cex = result.counterexample
    assert cex.steps[-1][0].name == "Probe"
    assert not cex.prop.check(result.machine, cex.final)
    # the trace replays on the machine step by step
    state = cex.init
    for step, expected in cex.steps:
        state = result.machine.apply(state, step)
        assert state == expected


@pytest.mark.parametrize("mode", ["cluster_ip", "node_port", "chosen"])
def test_every_reachable_proxy_dataplane_is_proved_at_small_bounds(mode):
    out = prove(Proxy(events=1),
                partial(network_reach.proxy_queries, mode=mode),
                network_reach.proxy_key)
    assert out.verdict == PROVED and out.dataplanes > 10


def test_every_reachable_cni_dataplane_is_proved_at_small_bounds():
    out = prove(Cni(nodes=2, pods=3, restarts=0, crashes=1),
                partial(network_reach.cni_queries, which="pods"),
                network_reach.cni_key)
    assert out.verdict == PROVED and out.dataplanes > 10


def test_z3_mutant_run_through_the_cli_writes_a_replayable_trace(tmp_path, capsys):
    assert main(["check", "proxy", "--engine", "z3", "--mutant", "probability_off_by_one",
                 "--trace-dir", str(tmp_path), "--quiet"]) == 1
    [trace] = tmp_path.glob("*.itf.json")
    capsys.readouterr()
    assert main(["trace", "replay", str(trace)]) == 1
    assert "is violated" in capsys.readouterr().out


def test_a_chain_whose_rules_can_all_miss_is_caught_with_its_packet():
    import attrs
    from fractions import Fraction
    dp = generate(3, pods_per_node=3, services_per_node=2)
    rules = dp.nodes[0].rules
    k = next(i for i, r in enumerate(rules.services) if len(r.backends) >= 2)
    halves = tuple(attrs.evolve(b, probability=Fraction(1, 2))
                   for b in rules.services[k].backends)
    broken = attrs.evolve(rules, services=rules.services[:k] + (
        attrs.evolve(rules.services[k], backends=halves),) + rules.services[k + 1:])
    dp = attrs.evolve(dp, nodes=tuple(attrs.evolve(n, rules=broken) for n in dp.nodes))
    v = NetworkEncoding(dp).services([0, 1, 2], "cluster_ip")
    assert not v.holds and v.packet.dst == rules.services[k].vip
    assert any(o.kind == "dropped" for _, o in forward(dp, v.packet))


def test_the_bench_proves_a_small_generated_cluster():
    from kubemc.checker.bench_network import prove_cluster
    lines = []
    figures = prove_cluster(20, lines.append)
    assert figures["verdict"] == "proved" and figures["pods"] == 600
    assert figures["services"] == 40 and "20 nodes" in lines[0]


def test_the_bench_reports_fragmented_addresses_and_per_node_rules():
    from kubemc.checker.bench_network import prove_cluster
    from kubemc.properties.symbolic.network import intervals
    dp = generate(4, pods_per_node=30, services_per_node=2, churn=3)
    assert len(intervals(dp.pods)) == 4 * 15        # every third address freed
    assert len({(p.node, p.ip) for p in dp.pods}) == 120
    lines = []
    frag = prove_cluster(12, lines.append, churn=3)
    assert frag["verdict"] == "proved" and frag["pod_intervals"] == 12 * 15
    assert "fragmented" in lines[0] and "180 address intervals" in lines[0]
    own = prove_cluster(6, lines.append, per_node_rules=True)
    assert own["verdict"] == "proved" and own["rule_objects"] == 6


@pytest.mark.parametrize("mutant", ["missing_route", "not_ready_endpoint_in_rules",
                                    "probability_one_too_many"])
def test_fragmented_and_per_node_clusters_still_catch_seeded_bugs(mutant):
    dp = generate(8, pods_per_node=9, services_per_node=2, mutant=mutant, churn=3,
                  per_node_rules=True)
    enc = NetworkEncoding(dp)
    verdicts = [enc.no_nat("pods")]
    for group in rule_groups(dp, range(8)):
        verdicts += [enc.services(group, m) for m in ("cluster_ip", "chosen")]
    assert any(not v.holds for v in verdicts)


def test_random_packets_agree_with_forward_on_fragmented_pods():
    dp = generate(5, pods_per_node=12, services_per_node=1, churn=3)
    enc = NetworkEncoding(dp)
    rng = random.Random(11)
    blocks = [n.pod_cidr[0] for n in dp.nodes]
    for _ in range(40):
        src = rng.choice(dp.pods)
        node = rng.randrange(5)
        dst = blocks[node] + rng.randrange(2, 24)       # a pod's address or a freed one
        pkt = Packet(src.ip, dst, 80, "TCP", src.node)
        out = forward(dp, pkt)
        target = dp.pod_index.get((node, dst))
        unchanged = target is not None and len(out) == 1 and out[0][1].kind == DELIVERED \
            and out[0][1].src == pkt.src and out[0][1].pod == target.name
        if target is None or target is src:
            continue      # the query speaks of pod addresses only
        assert enc.no_nat("pods", packet=pkt).holds == unchanged, pkt

"""``model.network.generate``: the clusters ``kubemc bench network`` proves
hold NodePorts the API could hold — each unique across the cluster, inside
the default range — and a generator that repeats one is stopped."""

from collections import Counter

import pytest

from kubemc.checker.bench_network import PODS_PER_NODE, SERVICES_PER_NODE, SIZES
from kubemc.model.network import generate as gen
from kubemc.model.network.dataplane import Service


def _repeated(ports):
    return sorted(p for p, n in Counter(p for p in ports if p).items() if n > 1)


def test_the_largest_bench_cluster_has_unique_node_ports_in_range():
    """5,000 nodes, 10,000 Services: 2,000 NodePorts, no two alike, all in
    30000-32767 (counted here, not by the generator's own check)."""
    dp = gen.generate(max(SIZES), PODS_PER_NODE, SERVICES_PER_NODE)
    ports = [s.node_port for s in dp.services if s.node_port]
    assert len(dp.services) == max(SIZES) * SERVICES_PER_NODE
    assert len(ports) == len(dp.services) // 5 and not _repeated(ports)
    assert all(30000 <= p <= 32767 for p in ports)


@pytest.mark.parametrize("services", [n * SERVICES_PER_NODE for n in SIZES] + [20_000])
def test_node_ports_stay_unique_past_the_range(services):
    """Every bench size, and more Services than the range has NodePorts for
    (13,840 Services use it up): the rest get none rather than a repeat."""
    ports = [gen.node_port(k) for k in range(services)]
    assert not _repeated(ports) and all(p == 0 or 30000 <= p <= 32767 for p in ports)
    assert sum(1 for p in ports if p) == min((services + 4) // 5, 2768)


def _svc(name, node_port):
    return Service(name, 1, 80, "TCP", 8080, node_port)


def test_a_repeated_or_out_of_range_node_port_is_refused():
    gen.check_node_ports([_svc("svc-a", 30001), _svc("svc-b", 0), _svc("svc-c", 30002)])
    with pytest.raises(ValueError, match="NodePort 30001 is given to both svc-a and svc-c"):
        gen.check_node_ports([_svc("svc-a", 30001), _svc("svc-b", 0), _svc("svc-c", 30001)])
    with pytest.raises(ValueError, match="svc-a has NodePort 32768, outside the range"):
        gen.check_node_ports([_svc("svc-a", 32768)])


def test_generate_stops_a_generator_that_repeats_a_node_port(monkeypatch):
    """The check runs inside ``generate``: a numbering that repeats a port
    never reaches the prover."""
    monkeypatch.setattr(gen, "node_port", lambda k: 30000 if k % 5 == 0 else 0)
    with pytest.raises(ValueError, match="NodePort 30000 is given to both svc-0 and svc-5"):
        gen.generate(3, pods_per_node=2, services_per_node=4)

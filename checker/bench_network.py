"""``kubemc bench network``: Z3 proofs of no-NAT reachability and Service
correctness for generated clusters at 100, 1,000 and 5,000 nodes — 30 pods
and 2 Services per node, so the largest is Kubernetes' documented limit of
5,000 nodes and 150,000 pods with 10,000 Services. Figures are printed,
never asserted; a proof that fails makes the benchmark fail (timing a broken
network means nothing).

What each size costs: generating the dataplane (``model.network.generate``),
then five queries on one symbolic packet each — pod→pod and node→pod without
NAT, and, on the nodes' shared kube-proxy rules, ClusterIP and NodePort
traffic reaching only usable endpoints (with every backend delivered) and
every usable endpoint chosen with positive probability.
"""

from __future__ import annotations

import time

from model.network.generate import generate
from properties.symbolic.network import NetworkEncoding, rule_groups

SIZES = (100, 1_000, 5_000)
PODS_PER_NODE = 30
SERVICES_PER_NODE = 2


def prove_cluster(nodes: int, progress=lambda line: None) -> dict:
    start = time.perf_counter()
    dp = generate(nodes, PODS_PER_NODE, SERVICES_PER_NODE)
    generated = time.perf_counter() - start
    enc = NetworkEncoding(dp)
    mark = time.perf_counter()
    verdicts = [enc.no_nat("pods"), enc.no_nat("nodes")]
    no_nat = time.perf_counter() - mark
    mark = time.perf_counter()
    for group in rule_groups(dp, range(nodes)):
        verdicts += [enc.services(group, mode) for mode in ("cluster_ip", "node_port", "chosen")]
    service = time.perf_counter() - mark
    total = time.perf_counter() - start
    failed = [v for v in verdicts if not v.holds]
    if failed:
        raise RuntimeError(f"{nodes} nodes: {failed[0].query} {failed[0].verdict}: "
                           f"{failed[0].detail}")
    progress(f"  {nodes:,} nodes, {len(dp.pods):,} pods, {len(dp.services):,} services: "
             f"generated {generated:.1f} s, no-NAT {no_nat:.1f} s, services {service:.1f} s")
    return {"pods": len(dp.pods), "services": len(dp.services),
            "generate_seconds": round(generated, 2), "no_nat_seconds": round(no_nat, 2),
            "service_seconds": round(service, 2), "total_seconds": round(total, 2),
            "verdict": "proved"}


def network(progress) -> dict:
    out = {"pods_per_node": PODS_PER_NODE, "services_per_node": SERVICES_PER_NODE,
           "processes": 1}
    for n in SIZES:
        for k, v in prove_cluster(n, progress).items():
            out[f"nodes_{n}_{k}"] = v
    return out

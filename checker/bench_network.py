"""``kubemc bench network``: Z3 proofs of no-NAT reachability and Service
correctness for generated clusters at 100, 1,000 and 5,000 nodes — 30 pods
and 2 Services per node, so the largest is Kubernetes' documented limit of
5,000 nodes and 150,000 pods with 10,000 Services. Figures are printed,
never asserted; a proof that fails makes the benchmark fail (timing a broken
network means nothing).

What each size costs: generating the dataplane (``model.network.generate``),
then five queries on one symbolic packet each — pod→pod and node→pod without
NAT, and, on the nodes' kube-proxy rules, ClusterIP and NodePort traffic
reaching only usable endpoints (with every backend delivered) and every
usable endpoint chosen with probability exactly 1/n.

What the figures do and do not cover, stated in the output too:

* pods enter the encoding as *intervals* of consecutive addresses per node.
  In the ``consecutive`` variant host-local has handed out ``.2, .3, …`` and
  nothing was freed, so each node's 30 pods are one interval — the kindest
  case. The ``fragmented`` variant churns pods (every third address freed,
  ``generate(churn=3)``): 15 intervals per node, 75,000 at 5,000 nodes.
* in both, every node shares one rules object — node 0's compilation, which
  in iptables mode with externalTrafficPolicy Cluster has the same content
  as every other node's — so the Service queries run once for all nodes.
  The ``per-node rules`` variant compiles each node's rules for that node
  into an object of its own and proves each apart; that costs a set of
  queries per node and is run at 100 nodes only (at 5,000 it would be
  5,000 times the shared figure).
"""

from __future__ import annotations

import time

from kubemc.model.network.generate import generate
from kubemc.properties.symbolic.network import NetworkEncoding, intervals, rule_groups

SIZES = (100, 1_000, 5_000)
PODS_PER_NODE = 30
SERVICES_PER_NODE = 2
#: every CHURN-th address freed in the fragmented variant
CHURN = 3
PER_NODE_SIZES = (100,)
NOTE = ("pods enter the z3 encoding as intervals of consecutive addresses per node; "
        "'consecutive': one interval per node (nothing freed); 'fragmented': every "
        f"{CHURN}rd address freed, {PODS_PER_NODE // 2} intervals per node; both share node "
        "0's rules object across nodes; 'per-node rules': each node's own compilation, "
        "proved apart")


def prove_cluster(nodes: int, progress=lambda line: None, churn: int = 0,
                  per_node_rules: bool = False) -> dict:
    start = time.perf_counter()
    dp = generate(nodes, PODS_PER_NODE, SERVICES_PER_NODE, churn=churn,
                  per_node_rules=per_node_rules)
    generated = time.perf_counter() - start
    enc = NetworkEncoding(dp)
    mark = time.perf_counter()
    verdicts = [enc.no_nat("pods"), enc.no_nat("nodes")]
    no_nat = time.perf_counter() - mark
    mark = time.perf_counter()
    groups = rule_groups(dp, range(nodes))
    for group in groups:
        verdicts += [enc.services(group, mode) for mode in ("cluster_ip", "node_port", "chosen")]
    service = time.perf_counter() - mark
    total = time.perf_counter() - start
    failed = [v for v in verdicts if not v.holds]
    if failed:
        raise RuntimeError(f"{nodes} nodes: {failed[0].query} {failed[0].verdict}: "
                           f"{failed[0].detail}")
    runs = len(intervals(dp.pods))
    variant = "per-node rules" if per_node_rules else "fragmented" if churn else "consecutive"
    progress(f"  {variant}: {nodes:,} nodes, {len(dp.pods):,} pods in {runs:,} address "
             f"intervals, {len(dp.services):,} services, {len(groups):,} rule "
             f"object{'s' if len(groups) != 1 else ''}: generated {generated:.1f} s, "
             f"no-NAT {no_nat:.1f} s, services {service:.1f} s, total {total:.1f} s")
    return {"pods": len(dp.pods), "services": len(dp.services), "pod_intervals": runs,
            "rule_objects": len(groups),
            "generate_seconds": round(generated, 2), "no_nat_seconds": round(no_nat, 2),
            "service_seconds": round(service, 2), "total_seconds": round(total, 2),
            "verdict": "proved"}


def network(progress) -> dict:
    out = {"pods_per_node": PODS_PER_NODE, "services_per_node": SERVICES_PER_NODE,
           "processes": 1, "note": NOTE}
    progress(f"  ({NOTE})")
    for n in SIZES:
        for k, v in prove_cluster(n, progress).items():
            out[f"nodes_{n}_{k}"] = v
    for n in SIZES:
        for k, v in prove_cluster(n, progress, churn=CHURN).items():
            out[f"fragmented_nodes_{n}_{k}"] = v
    for n in PER_NODE_SIZES:
        for k, v in prove_cluster(n, progress, per_node_rules=True).items():
            out[f"per_node_rules_nodes_{n}_{k}"] = v
    return out

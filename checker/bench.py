"""``kubemc bench NAME``: performance figures, printed, never asserted.

Each benchmark is a function ``run(progress) -> dict`` of named figures,
found by name and imported only when asked for (a benchmark of the
conformance runner should not make ``kubemc bench explore-store`` import
network code). ``progress`` is a callable taking one line of text.

The checker's own benchmarks are listed here; the conformance runner's
register themselves in ``pyproject.toml`` (entry point group ``kubemc.bench``),
since ``checker`` may not import conformance (``docs/layers.md``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from kubemc.checker.errors import BadInput
from kubemc.checker.plugins import BENCH, registered

BENCHMARKS = {
    "explore-store": ("kubemc.checker.benchmarks", "explore_store",
                      "exhaustive exploration of the store at a fixed bound, one process"),
    "liveness": ("kubemc.checker.benchmarks", "liveness",
                 "fair-cycle detection against the safety search: informer and raft"),
    "kernel-state": ("kubemc.checker.benchmarks", "kernel_state",
                     "cost of hashing candidate state representations"),
    "network": ("kubemc.checker.bench_network", "network",
                "Z3 proofs of no-NAT reachability and Service correctness at 100, 1,000 and "
                "5,000 nodes"),
    "explore-parallel": ("kubemc.checker.bench_parallel", "explore_parallel",
                         "explore partitioned over 1 and 2 processes and 1 and 2 Ray actors "
                         "(a loopback head) against one process: states/s, speed-up, memory"),
    "simulate": ("kubemc.checker.bench_simulate", "simulate",
                 "simulate's visited states/s against explore's distinct states/s on three "
                 "models at the same bounds, and each one's peak memory"),
    "scheduler": ("kubemc.checker.bench_scheduler", "scheduler",
                  "Z3 feasibility oracle: one pod and batches of 10 and 50 at 5,000 nodes / "
                  "150,000 pods"),
    "cluster": ("kubemc.checker.bench_cluster", "cluster",
                "explore of the whole cluster end to end from one replica to the defaults "
                "(two replicas, a worker dying), hypothesis ci on it, peak memory"),
    "cluster-dns": ("kubemc.checker.bench_cluster_dns", "cluster_dns",
                    "explore of the DNS addon's model at its defaults and each budget raised "
                    "by one, hypothesis ci on it and its mutants, peak memory"),
    "cluster-ha": ("kubemc.checker.bench_cluster_ha", "cluster_ha",
                   "explore of the HA topologies (stacked and external etcd) at their defaults "
                   "and at two elected components, hypothesis ci on both, peak memory"),
}


def names() -> list[str]:
    """Every benchmark ``kubemc bench`` knows: the checker's, then the registered ones."""
    return [*BENCHMARKS, *(n for n in registered(BENCH) if n not in BENCHMARKS)]


def benchmark(name: str) -> Callable:
    if name in BENCHMARKS:
        module, func, _ = BENCHMARKS[name]
        return getattr(importlib.import_module(module), func)
    entry = registered(BENCH).get(name)
    if entry is None:
        raise BadInput(f"unknown benchmark {name!r} (known: {', '.join(sorted(names()))})")
    return entry.load()

"""``kubemc bench NAME``: performance figures, printed, never asserted.

Each benchmark is a function ``run(progress) -> dict`` of named figures,
found here by name and imported only when asked for (a benchmark of the
conformance runner should not make ``kubemc bench explore-store`` import
network code). ``progress`` is a callable taking one line of text.
"""

from __future__ import annotations

import importlib

from checker.errors import BadInput

BENCHMARKS = {
    "explore-store": ("checker.benchmarks", "explore_store",
                      "exhaustive exploration of the store at a fixed bound, one process"),
    "liveness": ("checker.benchmarks", "liveness",
                 "fair-cycle detection against the safety search: informer and raft"),
    "kernel-state": ("checker.benchmarks", "kernel_state",
                     "cost of hashing candidate state representations"),
    "linearizability": ("conformance.bench", "linearizability",
                        "linearizability checking of the histories in shared/data"),
    "network": ("checker.bench_network", "network",
                "Z3 proofs of no-NAT reachability and Service correctness at 100, 1,000 and "
                "5,000 nodes"),
    "scheduler": ("checker.bench_scheduler", "scheduler",
                  "Z3 feasibility oracle: one pod and batches of 10 and 50 at 5,000 nodes / "
                  "150,000 pods"),
    "conform-etcd": ("conformance.bench", "conform_etcd",
                     "operations per second against a local etcd cluster, and checking time"),
    "conform-proxy": ("conformance.proxy.bench", "conform_proxy",
                      "conform proxy's Z3 proof time and peak memory for dumps of 1,000 and "
                      "10,000 Services"),
    "conform-cri": ("conformance.bench_cri", "conform_cri",
                    "CRI calls per second against a private containerd, the model replay's time "
                    "and memory"),
    "conform-cni": ("conformance.bench_cni", "conform_cni",
                    "CNI plugin calls per second, the runner's overhead over raw calls, peak memory"),
}


def benchmark(name: str):
    try:
        module, func, _ = BENCHMARKS[name]
    except KeyError:
        raise BadInput(f"unknown benchmark {name!r} (known: {', '.join(sorted(BENCHMARKS))})") from None
    return getattr(importlib.import_module(module), func)

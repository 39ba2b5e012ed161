"""``kubemc bench explore-parallel``: the partitioned search against one
process on one model large enough to matter — raft at its default bounds
but terms ≤ 2 (336,361 distinct states, depth 47, server symmetry) — at 1
and 2 worker processes, and on a local Ray head on loopback at 1 and 2
actors. Figures are printed, never asserted; a run whose state count
differs from one process's fails the benchmark (a fast wrong answer means
nothing).

Per run: wall seconds (workers started to verdict), distinct states per
second, speed-up over one process, the coordinator's and the largest
worker's peak resident memory, and CPU seconds — all processes', and the
busiest worker's. The one-process CPU time over the busiest worker's is
the speed-up the run would show with a free core per worker (barrier waits
aside): unlike wall time, it does not depend on what else the machine
runs; for Ray, the overhead over the process
version at the same count (the object store and remote calls instead of
pipes; the actors' start is counted apart). Each run is a forked child, so
its peak memory is its own. The machine's load average is part of the
output: on a shared machine the speed-up is a lower bound.

Also measured, because fingerprints must agree across processes and
machines: Python's ``hash`` of a state (kept, with a fixed
``PYTHONHASHSEED`` for Ray actors) against a stable digest of it
(``blake2b`` of its pickle), per state of this model.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import resource
import time
import timeit
from typing import Any

from kubemc.checker.benchmarks import _forked
from kubemc.checker.catalog.store import RAFT
from kubemc.checker.explore import explore
from kubemc.checker.shard import ModelSpec

BOUNDS: dict[str, Any] = {"max_term": 2}
COUNTS = (1, 2)


def _peak_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _one_process() -> dict:
    machine = RAFT.machine(**BOUNDS)
    start, cpu = time.perf_counter(), time.process_time()
    outcome = explore(machine, RAFT.properties)
    return {"states": outcome.stats.states, "seconds": time.perf_counter() - start,
            "cpu_seconds": time.process_time() - cpu,
            "coordinator_mib": _peak_mib(), "worker_mib": 0.0,
            "verdict": outcome.counterexample is None and outcome.complete}


def _partitioned(count: int, ray_address: str | None) -> dict:
    from kubemc.checker import parallel

    spec = ModelSpec.of("store", "raft", None, BOUNDS, RAFT.properties)
    machine = RAFT.machine(**BOUNDS)
    begin = time.perf_counter()
    if ray_address is None:
        pool_of = parallel.process_pool
    else:
        from kubemc.checker.ray_search import actor_pool

        pool_of = actor_pool(ray_address)
    with pool_of(spec, count) as pool:
        started, cpu = time.perf_counter(), time.process_time()
        before = pool.usage()
        outcome = parallel.search(machine, RAFT.properties, pool)
        seconds = time.perf_counter() - started
        after = pool.usage()
    worker_cpu = [a[1] - b[1] for a, b in zip(after, before, strict=True)]
    return {"states": outcome.stats.states, "seconds": seconds,
            "startup_seconds": started - begin, "coordinator_mib": _peak_mib(),
            "worker_mib": max(a[0] for a in after),
            "cpu_seconds": time.process_time() - cpu + sum(worker_cpu),
            "busiest_worker_cpu_seconds": max(worker_cpu),
            "verdict": outcome.counterexample is None and outcome.complete}


def _fingerprint_cost() -> dict:
    """ns per state: hash() against blake2b(pickle) on 20,000 raft states."""
    from kubemc.checker.explore import Explorer

    states: list = []

    def keep(state) -> None:
        states.append(state)

    Explorer(RAFT.machine(**BOUNDS), (), max_states=20_000, visit=keep).run()
    n = len(states)
    hashed = timeit.timeit(lambda: [hash(s) for s in states], number=3) / 3 / n
    digest = timeit.timeit(
        lambda: [hashlib.blake2b(pickle.dumps(s, 5), digest_size=8).digest() for s in states],
        number=3) / 3 / n
    return {"hash_ns": round(hashed * 1e9), "stable_digest_ns": round(digest * 1e9)}


def explore_parallel(progress) -> dict:
    from kubemc.checker.ray_local import local_head

    out: dict = {"model": "store/raft, " + ", ".join(
        f"{k}={v}" for k, v in RAFT.machine(**BOUNDS).config().items()),
        "cpus": os.cpu_count(),
        "load_average_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg())}
    progress("  one process …")
    base = _forked(_one_process)
    _check(base, base, "one process")
    out.update({"one_process_states": base["states"],
                "one_process_seconds": round(base["seconds"], 2),
                "one_process_cpu_seconds": round(base["cpu_seconds"], 2),
                "one_process_states_per_second": round(base["states"] / base["seconds"]),
                "one_process_peak_mib": base["coordinator_mib"]})
    runs: dict[tuple, dict] = {}
    for count in COUNTS:
        progress(f"  {count} worker process(es) …")
        runs["processes", count] = _forked(_partitioned, count, None)
    progress("  starting a local Ray head on loopback …")
    with local_head(cpus=max(COUNTS)) as head:
        for count in COUNTS:
            progress(f"  {count} Ray actor(s) …")
            runs["ray", count] = _forked(_partitioned, count, head.address)
    for (kind, count), run in runs.items():
        _check(base, run, f"{kind} x{count}")
        name = f"{kind}_{count}"
        out.update({f"{name}_seconds": round(run["seconds"], 2),
                    f"{name}_startup_seconds": round(run["startup_seconds"], 2),
                    f"{name}_states_per_second": round(run["states"] / run["seconds"]),
                    f"{name}_speedup_over_one_process": round(base["seconds"] / run["seconds"],
                                                              2),
                    f"{name}_cpu_seconds": round(run["cpu_seconds"], 2),
                    f"{name}_busiest_worker_cpu_seconds": round(
                        run["busiest_worker_cpu_seconds"], 2),
                    f"{name}_speedup_bound_on_free_cores": round(
                        base["cpu_seconds"] / run["busiest_worker_cpu_seconds"], 2),
                    f"{name}_coordinator_peak_mib": run["coordinator_mib"],
                    f"{name}_largest_worker_peak_mib": run["worker_mib"]})
    for count in COUNTS:
        out[f"ray_{count}_overhead_over_processes"] = round(
            runs["ray", count]["seconds"] / runs["processes", count]["seconds"], 2)
    progress("  fingerprint cost …")
    out.update(_fingerprint_cost())
    out["load_average_at_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return out


def _check(base: dict, run: dict, what: str) -> None:
    if run["states"] != base["states"] or not run["verdict"]:
        raise RuntimeError(f"{what} found {run['states']:,} states (one process: "
                           f"{base['states']:,}) or a violation: the benchmark means nothing")

"""Benchmarks of the checker itself (``kubemc bench explore-store``,
``kubemc bench kernel-state``). They print figures; nothing asserts on time.
"""

from __future__ import annotations

import time
import timeit

from kubemc.checker.catalog.store import RAFT
from kubemc.checker.explore import explore
from kubemc.model.store.raft import Raft

#: The fixed bound of ``bench explore-store``: the default bound of
#: ``kubemc check store`` (3 servers, terms ≤ 3, one entry per log, one
#: message in flight, server symmetry), so the figure is the one users see.
EXPLORE_STORE_BOUND = dict(RAFT.bounds)


def explore_store(progress) -> dict:
    machine = Raft(**EXPLORE_STORE_BOUND)
    last = [0.0]

    def report(stats):
        if stats.seconds - last[0] >= 5:
            last[0] = stats.seconds
            progress(f"  {stats.states:,} states, depth {stats.depth}, {stats.rate:,.0f}/s")

    outcome = explore(machine, RAFT.properties, progress=report)
    st = outcome.stats
    if outcome.counterexample is not None:
        raise RuntimeError(f"the store violated {outcome.counterexample.prop.name}: "
                           "a benchmark of a broken model means nothing")
    return {
        "bound": ", ".join(f"{k}={v}" for k, v in machine.config().items()),
        "processes": 1,
        "distinct_states": st.states,
        "transitions": st.transitions,
        "depth": st.depth,
        "complete": outcome.complete,
        "seconds": round(st.seconds, 2),
        "distinct_states_per_second": round(st.rate),
    }


def kernel_state(progress) -> dict:
    """Why states are nested tuples: building, hashing and comparing one
    Raft-shaped state in three representations — what the explore loop does
    for every successor (a fresh object each time, so no cached hash helps)."""
    import attrs

    @attrs.frozen(slots=True)
    class Server:
        term: int
        role: int
        voted: int
        log: tuple
        commit: int

    log = ((1, 0), (2, 0))
    bag = (((0, 0, 1, 2, 1, 2), 1),)
    builders = {
        "tuple": lambda t: (tuple((t, 1, 0, log, 1) for _ in range(3)), bag),
        "attrs": lambda t: (tuple(Server(t, 1, 0, log, 1) for _ in range(3)), bag),
        "frozenset_of_items": lambda t: (
            tuple(frozenset((("t", t), ("r", 1), ("v", 0), ("l", log), ("c", 1)))
                  for _ in range(3)), bag),
    }
    n = 100_000
    out = {}
    for name, make in builders.items():
        reference = make(2)
        seconds = timeit.timeit(lambda: _touch(make(2), reference), number=n)
        out[f"{name}_ns_per_build_hash_compare"] = round(seconds / n * 1e9)
        progress(f"  {name}: {out[f'{name}_ns_per_build_hash_compare']} ns")
    return out


def _touch(state, reference):
    return hash(state), state == reference


# ---------------------------------------------------------------------------
# liveness
# ---------------------------------------------------------------------------

#: ``bench liveness``: the informer at its default bounds (cache convergence)
#: and raft at a bound small enough for a graph of concrete states (symmetry
#: is off for liveness, so the graph is up to servers! times the safety
#: search's), with "eventually always some leader" — which fair elections
#: need not reach (split votes), so it measures finding a lasso too.
LIVENESS_RAFT_BOUND = {"servers": 3, "max_term": 2, "max_log": 1, "max_messages": 1,
                       "symmetry": True}


def liveness(progress) -> dict:
    """Fair-cycle detection against the safety search on the same model:
    states, seconds and peak memory of each, each phase in a forked process
    so its peak resident memory is its own."""
    from kubemc.checker.catalog.informer import INFORMER
    from kubemc.model.store.raft import LEADER, ROLE
    from kubemc.properties.core import EVENTUALLY_ALWAYS, Property

    leader = Property("some_leader", "store", EVENTUALLY_ALWAYS,
                      "eventually some server is leader and one stays leader",
                      "Raft paper §5.2 (elections), for the benchmark only",
                      lambda m, s: any(x[ROLE] == LEADER for x in s[0]))
    cases = [
        ("informer", lambda: INFORMER.machine(), INFORMER.properties),
        ("raft", lambda: Raft(**LIVENESS_RAFT_BOUND), RAFT.properties + (leader,)),
    ]
    out = {}
    for name, make, props in cases:
        safety = [p for p in props if not p.is_liveness]
        live = [p for p in props if p.is_liveness]
        progress(f"  {name}: safety search …")
        s = _forked(_safety_phase, make, safety)
        progress(f"  {name}: {s['states']:,} states in {s['seconds']} s; liveness graph …")
        lv = _forked(_liveness_phase, make, live)
        progress(f"  {name}: {lv['states']:,} states, {lv['edges']:,} edges, "
                 f"{lv['build_seconds'] + lv['cycle_seconds']:.1f} s; as kubemc check runs it …")
        both = _forked(_check_phase, make, props)
        out.update({
            f"{name}_bound": ", ".join(f"{k}={v}" for k, v in make().config().items()),
            f"{name}_safety_states": s["states"],
            f"{name}_safety_seconds": s["seconds"],
            f"{name}_safety_cpu_seconds": s["cpu_seconds"],
            f"{name}_safety_peak_mib": s["peak_mib"],
            f"{name}_liveness_states": lv["states"],
            f"{name}_liveness_edges": lv["edges"],
            f"{name}_liveness_graph_mib": lv["graph_mib"],
            f"{name}_liveness_build_seconds": lv["build_seconds"],
            f"{name}_liveness_cycle_seconds": lv["cycle_seconds"],
            f"{name}_liveness_cpu_seconds": lv["cpu_seconds"],
            f"{name}_liveness_peak_mib": lv["peak_mib"],
            f"{name}_liveness_verdict": lv["verdict"],
            f"{name}_liveness_cpu_vs_safety": round(
                lv["cpu_seconds"] / max(s["cpu_seconds"], 1e-9), 2),
            f"{name}_check_single_search": both["single_search"],
            f"{name}_check_cpu_seconds": both["cpu_seconds"],
            f"{name}_check_peak_mib": both["peak_mib"],
        })
    return out


def _peak_mib() -> float:
    import resource
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _safety_phase(make, props) -> dict:
    cpu = time.process_time()
    outcome = explore(make(), props)
    return {"states": outcome.stats.states, "seconds": round(outcome.stats.seconds, 2),
            "cpu_seconds": round(time.process_time() - cpu, 2), "peak_mib": _peak_mib()}


def _check_phase(make, props) -> dict:
    """Safety, covers and liveness as ``kubemc check`` runs them: one graph
    search when liveness may use the machine's canonical form, two otherwise."""
    cpu = time.process_time()
    outcome = explore(make(), props)
    return {"single_search": bool(outcome.liveness.get("liveness_single_search")),
            "cpu_seconds": round(time.process_time() - cpu, 2), "peak_mib": _peak_mib()}


def _liveness_phase(make, props) -> dict:
    from kubemc.checker import liveness as live
    cpu = time.process_time()
    out = live.check(make(), props)
    cpu = round(time.process_time() - cpu, 2)
    f = out.figures
    verdict = ("violated (lasso)" if out.counterexample is not None
               else "undecided" if out.undecided else "holds")
    return {"states": f["liveness_states"], "edges": f["liveness_edges"],
            "graph_mib": round(f["liveness_graph_bytes"] / 2 ** 20, 1),
            "build_seconds": f["liveness_build_seconds"],
            "cycle_seconds": f["liveness_cycle_seconds"], "cpu_seconds": cpu,
            "peak_mib": _peak_mib(),
            "verdict": verdict}


def _forked(phase, *args) -> dict:
    """Run ``phase(*args)`` in a forked child and return its figures."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    results = ctx.SimpleQueue()
    child = ctx.Process(target=lambda: results.put(phase(*args)))
    child.start()
    figures = results.get()
    child.join()
    return figures

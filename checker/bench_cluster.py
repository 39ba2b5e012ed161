"""``kubemc bench cluster``: what checking the whole cluster end to end costs.

Figures for the ``cluster`` model (``model.cluster``): explore with every
property (liveness included) at one replica (the fast test's bounds), with
two replicas and no failure, and at the catalog's defaults (two replicas,
one worker dying) — distinct states, transitions, depth, wall and CPU
seconds, and the process's peak resident set (``ru_maxrss``) after each —
then the hypothesis engine's ``ci`` profile on the correct model. Nothing is
asserted; wall times depend on what else the machine runs, the CPU seconds
less so.
"""

from __future__ import annotations

import resource
import time

from kubemc.checker import stateful
from kubemc.checker.catalog.cluster import END_TO_END
from kubemc.checker.explore import explore

(CLUSTER,) = END_TO_END
#: from the fast test's bounds up to the defaults
BOUNDS = ({"replicas": 1}, {"failures": 0}, {})


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _explore(bounds: dict) -> dict:
    machine = CLUSTER.machine(**bounds)
    cpu = time.process_time()
    outcome = explore(machine, CLUSTER.properties)
    if outcome.counterexample is not None:
        raise RuntimeError(f"the cluster violated {outcome.counterexample.prop.name}: "
                           "a benchmark of a broken model means nothing")
    st = outcome.stats
    return {"bounds": ", ".join(f"{k}={v}" for k, v in machine.config().items()),
            "distinct_states": st.states, "transitions": st.transitions, "depth": st.depth,
            "seconds": round(st.seconds, 2),
            "cpu_seconds": round(time.process_time() - cpu, 2),
            "liveness_cycle_seconds": outcome.liveness.get("liveness_cycle_seconds"),
            "peak_rss_mb": _peak_mb()}


def cluster(progress) -> dict:
    figures: dict = {"explore": []}
    for bounds in BOUNDS:
        progress(f"  explore {bounds or 'default bounds'}")
        figures["explore"].append(_explore(bounds))
    progress("  hypothesis ci, correct model")
    start, cpu = time.perf_counter(), time.process_time()
    outcome = stateful.check(CLUSTER.hypothesis_machine(), CLUSTER.properties, profile="ci")
    figures["hypothesis_ci"] = {"runs": outcome.examples,
                                "seconds": round(time.perf_counter() - start, 2),
                                "cpu_seconds": round(time.process_time() - cpu, 2),
                                "violation": outcome.counterexample is not None}
    figures["peak_rss_mb"] = _peak_mb()
    return figures

"""``kubemc bench cluster-ha``: what checking the HA topologies costs.

For each topology model (``cluster-ha-stacked``, ``cluster-ha-external``):
explore with every property (liveness and covers included) at the catalog's
defaults (one elected component), and the external one at two
components with the smaller bound of the projection test (safety
properties); then the hypothesis engine's ``ci`` profile
on the correct model at its random-run bounds (both components). Distinct
states, transitions, depth, wall and CPU seconds, and the process's peak
resident set (``ru_maxrss``) after each. Nothing is asserted: wall times
depend on what else the machine runs, CPU seconds less so.
"""

from __future__ import annotations

import resource
import time

from kubemc.checker import stateful
from kubemc.checker.catalog.cluster import HA_EXTERNAL, TOPOLOGIES
from kubemc.checker.explore import explore
from kubemc.properties.core import INVARIANT, TRANSITION

#: the two-component bound of tests/test_cluster_ha.py::test_one_component_stands_for_both
TWO_COMPONENTS = {"masters": 2, "components": 2, "crashes": 1, "restarts": 0,
                  "lease_duration": 2, "renew_deadline": 1}


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _explore(model, bounds: dict, safety_only: bool = False) -> dict:
    machine = model.machine(**bounds)
    properties = [p for p in model.properties
                  if not safety_only or p.kind in (INVARIANT, TRANSITION)]
    cpu = time.process_time()
    outcome = explore(machine, properties)
    if outcome.counterexample is not None:
        raise RuntimeError(f"{model.name} violated {outcome.counterexample.prop.name}: "
                           "a benchmark of a broken model means nothing")
    st = outcome.stats
    return {"model": model.name,
            "bounds": ", ".join(f"{k}={v}" for k, v in machine.config().items()),
            "properties": "safety" if safety_only else "all",
            "distinct_states": st.states, "transitions": st.transitions, "depth": st.depth,
            "seconds": round(st.seconds, 2),
            "cpu_seconds": round(time.process_time() - cpu, 2),
            "peak_rss_mb": _peak_mb()}


def cluster_ha(progress) -> dict:
    figures: dict = {"explore": [], "hypothesis_ci": []}
    for model in TOPOLOGIES:
        progress(f"  explore {model.name} at its defaults")
        figures["explore"].append(_explore(model, {}))
    # two stacked masters lose the store with one crash (the docs' minimum
    # is three): the small two-component bound is the external topology's
    progress(f"  explore {HA_EXTERNAL.name}, two components, safety properties")
    figures["explore"].append(_explore(HA_EXTERNAL, TWO_COMPONENTS, safety_only=True))
    for model in TOPOLOGIES:
        progress(f"  hypothesis ci, {model.name}")
        start, cpu = time.perf_counter(), time.process_time()
        outcome = stateful.check(model.hypothesis_machine(), model.properties, profile="ci")
        figures["hypothesis_ci"].append({
            "model": model.name, "runs": outcome.examples,
            "seconds": round(time.perf_counter() - start, 2),
            "cpu_seconds": round(time.process_time() - cpu, 2),
            "violation": outcome.counterexample is not None})
    figures["peak_rss_mb"] = _peak_mb()
    return figures

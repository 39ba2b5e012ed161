"""``kubemc bench cluster-dns``: what checking the DNS addon's model costs.

Figures, for the catalog's default bounds and for each budget raised by one
(how the state space grows with users' writes and dropped watches): distinct
states, transitions, depth and seconds of explore with every property
(liveness included), then the seconds of the hypothesis engine's ``ci``
profile on the correct model and on each mutant, and the process's peak
resident set (``ru_maxrss``) after each phase. Nothing is asserted; times
depend on what else the machine is running.
"""

from __future__ import annotations

import resource
import time

from kubemc.checker import stateful
from kubemc.checker.catalog.cluster import DNS_ADDON
from kubemc.checker.explore import explore
from kubemc.checker.run import targeted

#: one budget raised by one over the defaults, each on its own
GROWTH = ({"deletes": 2}, {"watch_drops": 2}, {"updates": 2})


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _explore(bounds: dict) -> dict:
    machine = DNS_ADDON.machine(**bounds)
    outcome = explore(machine, DNS_ADDON.properties)
    if outcome.counterexample is not None:
        raise RuntimeError(f"the DNS addon violated {outcome.counterexample.prop.name}: "
                           "a benchmark of a broken model means nothing")
    st = outcome.stats
    return {"bounds": ", ".join(f"{k}={v}" for k, v in machine.config().items()),
            "distinct_states": st.states, "transitions": st.transitions, "depth": st.depth,
            "seconds": round(st.seconds, 2), "peak_rss_mb": _peak_mb()}


def cluster_dns(progress) -> dict:
    figures: dict = {"explore": []}
    for bounds in ({}, *GROWTH):
        progress(f"  explore {bounds or 'default bounds'}")
        figures["explore"].append(_explore(bounds))
    hypothesis = {}
    for mutant in (None, *sorted(DNS_ADDON.mutants)):
        progress(f"  hypothesis ci {mutant or 'correct model'}")
        start = time.perf_counter()
        outcome = stateful.check(DNS_ADDON.hypothesis_machine(mutant),
                                 targeted(DNS_ADDON, mutant), profile="ci")
        hypothesis[mutant or "correct"] = {
            "seconds": round(time.perf_counter() - start, 2),
            "violation": outcome.counterexample is not None}
    figures["hypothesis_ci"] = hypothesis
    figures["peak_rss_mb"] = _peak_mb()
    return figures

"""``kubemc bench simulate``: the simulate engine's speed against explore's on
the same models at the same bounds, and each one's peak memory.

What is compared: explore's *distinct* states per second (each state is
found once, fingerprinted and queued) against simulate's *visited* states
per second (a state per step, revisits included, one path in memory), with
the distinct states the walks saw beside it. Both check every property of
the model, as ``kubemc check`` does (liveness too: explore's graph search,
simulate's convergence phase after each walk). Each phase runs in a forked
child so its peak resident memory is its own. Figures are printed, never
asserted; a violation on the correct model fails the benchmark.
"""

from __future__ import annotations

#: (component, model) pairs benchmarked, at the catalog's explore bounds
CASES = (("store", "mvcc"), ("cri", "cri"), ("kubelet", "kubelet"))
#: seconds of walking per model
WALK_SECONDS = 10.0
SEED = 1


def simulate(progress) -> dict:
    from kubemc.checker.benchmarks import _forked

    out = {"walk_seconds_per_model": WALK_SECONDS, "seed": SEED}
    for comp, name in CASES:
        progress(f"  {comp}/{name}: explore …")
        ex = _forked(_explore_phase, comp, name)
        progress(f"  {comp}/{name}: {ex['distinct_states']:,} states in {ex['seconds']} s; "
                 "simulate …")
        sim = _forked(_simulate_phase, comp, name)
        progress(f"  {comp}/{name}: {sim['steps']:,} steps in {sim['seconds']} s")
        out.update({
            f"{name}_bound": ex["bound"],
            f"{name}_explore_distinct_states": ex["distinct_states"],
            f"{name}_explore_seconds": ex["seconds"],
            f"{name}_explore_states_per_second": ex["states_per_second"],
            f"{name}_explore_peak_mib": ex["peak_mib"],
            f"{name}_simulate_walks": sim["walks"],
            f"{name}_simulate_steps": sim["steps"],
            f"{name}_simulate_distinct_states": sim["distinct_states"],
            f"{name}_simulate_states_per_second": sim["states_per_second"],
            f"{name}_simulate_peak_mib": sim["peak_mib"],
            f"{name}_simulate_vs_explore_rate": round(
                sim["states_per_second"] / max(ex["states_per_second"], 1), 2),
        })
    return out


def _model(comp: str, name: str):
    from kubemc.checker.components import component

    return next(m for m in component(comp).models if m.name == name)


def _explore_phase(comp: str, name: str) -> dict:
    from kubemc.checker.benchmarks import _peak_mib
    from kubemc.checker.explore import explore

    model = _model(comp, name)
    machine = model.machine()
    outcome = explore(machine, model.properties)
    if outcome.counterexample is not None:
        raise RuntimeError(f"{name} violated {outcome.counterexample.prop.name}: a benchmark "
                           "of a broken model means nothing")
    st = outcome.stats
    seconds = st.seconds + outcome.liveness.get("liveness_build_seconds", 0) \
        + outcome.liveness.get("liveness_cycle_seconds", 0)
    return {"bound": ", ".join(f"{k}={v}" for k, v in machine.config().items()),
            "distinct_states": st.states, "seconds": round(seconds, 2),
            "states_per_second": round(st.states / seconds) if seconds else 0,
            "peak_mib": _peak_mib()}


def _simulate_phase(comp: str, name: str) -> dict:
    from kubemc.checker import simulate as engine
    from kubemc.checker.benchmarks import _peak_mib

    model = _model(comp, name)
    outcome = engine.simulate(model.machine(), model.properties, seed=SEED,
                              budget=engine.Budget(seconds=WALK_SECONDS))
    if outcome.counterexample is not None:
        raise RuntimeError(f"{name} violated {outcome.counterexample.prop.name}: a benchmark "
                           "of a broken model means nothing")
    st = outcome.stats
    return {"walks": st.walks, "steps": st.steps, "distinct_states": st.distinct,
            "seconds": round(st.seconds, 2), "states_per_second": round(st.rate),
            "peak_mib": _peak_mib()}

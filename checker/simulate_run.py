"""One model under the simulate engine, as a row of ``kubemc check``.

Why a module apart from ``checker.run``: the verdicts of random walks differ
from the other engines' in one way that matters to a CI script — nothing
they did not violate is shown to hold exhaustively, so an unreached cover is
*undecided* (exit 4), not vacuous, and a liveness property is never said to
hold. This module turns a ``checker.simulate.SimulationOutcome`` into that row, its
trace and the command that reproduces the trace.
"""

from __future__ import annotations

import shlex

from kubemc.checker import simulate, traces
from kubemc.checker.result import HOLDS, UNDECIDED, VACUOUS, VIOLATED, Result


def reproduce(command: str, seed: int, walk: int, depth: int) -> str:
    """The command that repeats exactly the walks up to the violating one:
    every choice comes from one seeded generator, so ``--walks`` = the
    violating walk replaces whatever budget (``--time``) found it."""
    return command + " " + shlex.join(["--seed", str(seed), "--walks", str(walk),
                                       "--depth", str(depth)])


def figures_of(outcome: simulate.SimulationOutcome, machine, budget: simulate.Budget,
               props=()) -> dict:
    st, cov = outcome.stats, outcome.coverage
    figures = {"walks": st.walks, "steps": st.steps, "distinct_states": st.distinct,
               "states_per_second": round(st.rate), "depth": budget.depth,
               "seed": outcome.seed, "stopped_by": outcome.stopped,
               "bounds": machine.config(),
               "actions_taken": sorted(cov.actions),
               "actions_never_taken": sorted(set(machine.tags) - cov.actions),
               "premises_reached": sorted(cov.premises),
               "premises_never_reached": sorted({p.name for p in props} - cov.premises)}
    if outcome.covers:
        figures["covers_reached"] = sorted(n for n, hit in outcome.covers.items() if hit)
        figures["covers_never_reached"] = sorted(n for n, hit in outcome.covers.items()
                                                 if not hit)
    if outcome.liveness:
        figures["fair_steps"] = st.fair_steps
        figures["convergence"] = outcome.liveness
    return figures


def verdict(comp, model, machine, outcome: simulate.SimulationOutcome, figures: dict,
            path=None, describe=None) -> Result:
    """The row: violated (with ``path``), else undecided when the walks
    missed a mutant, a cover, or there is liveness to decide, else holds
    (no violation on the walks). ``describe`` words a lasso as the other
    engines' rows do (``checker.run`` passes its own, so this module does
    not import its caller)."""
    st = outcome.stats
    row = dict(component=comp.name, model=model.name, engine="simulate",
               seconds=st.seconds, mutant=machine.mutant, figures=figures)
    cex = outcome.counterexample
    if cex is not None:
        if not cex.prop.is_liveness:
            shape = f"shrunk counterexample: {len(cex.steps)} steps"
        elif cex.is_lasso and describe is not None:
            shape = describe(cex)
        else:
            shape = f"{cex.note or 'a liveness violation'} ({len(cex.steps)} steps)"
        return Result(verdict=VIOLATED, prop=cex.prop.name, trace=str(path) if path else None,
                      detail=f"on walk {outcome.walk} of seed {outcome.seed}; {shape}", **row)
    if outcome.stopped == simulate.NO_INITIAL_STATE:
        return Result(verdict=VACUOUS, detail="the model has no initial state at these bounds: "
                      "nothing was checked", **row)
    walked = f"{st.walks:,} walks of up to {figures['depth']} steps (seed {outcome.seed})"
    if st.walks == 0:
        return Result(verdict=UNDECIDED, detail=f"no walk fitted in the time budget "
                      f"(seed {outcome.seed}): give more --time", **row)
    if machine.mutant is not None:
        return Result(verdict=UNDECIDED, detail=f"{walked} did not reach the bug; try more "
                      "--walks or --time, another --seed, or --engine explore", **row)
    missed = figures.get("covers_never_reached", [])
    if missed:
        return Result(verdict=UNDECIDED, prop=missed[0],
                      detail=f"cover not reached on {walked}: {', '.join(missed)} "
                      "(random walks are not exhaustive: undecided, not vacuous)", **row)
    if outcome.liveness:
        names = sorted(outcome.liveness)
        return Result(verdict=UNDECIDED, prop=names[0],
                      detail=f"no violation on {walked}; liveness not decided by random "
                      f"walks: {', '.join(names)} (try --engine explore)", **row)
    return Result(verdict=HOLDS, detail=f"no violation on {walked}", **row)


def run_simulate(comp, model, machine, props, trace_dir, command: str, seed: int | None,
                 budget: simulate.Budget, progress=None, describe=None) -> Result:
    """``seed``: None draws a fresh one (``checker.run.check`` draws one for
    all the models of a command, so its rows share it)."""
    seed = simulate.fresh_seed() if seed is None else seed
    label = f"simulate {model.name} (seed {seed})"
    report = (lambda s: progress(simulate.progress_line(label, s))) if progress else None
    outcome = simulate.simulate(machine, props, seed=seed, budget=budget, progress=report)
    figures = figures_of(outcome, machine, budget, props)
    path = None
    if outcome.counterexample is not None:
        path = traces.save(outcome.counterexample, trace_dir, model=model.name,
                           machine=machine, engine="simulate", seed=seed,
                           command=reproduce(command, seed, outcome.walk or outcome.stats.walks,
                                             budget.depth))
    return verdict(comp, model, machine, outcome, figures, path, describe)

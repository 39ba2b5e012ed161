"""``kubemc check`` as a library call: which models to run, with which engine,
and what each run concluded. The CLI and the tests call the same function.
"""

from __future__ import annotations

import contextlib
import shlex
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from kubemc.checker import explore as explore_engine
from kubemc.checker import simulate as simulate_engine
from kubemc.checker import itf, stateful, traces
from kubemc.checker.components import COMPONENTS, Component, Model, component
from kubemc.checker.errors import BadInput
from kubemc.checker.result import (  # noqa: F401 (re-exported: ``from checker.run import Result``)
    HOLDS,
    INCOMPLETE,
    UNDECIDED,
    UNPROVED,
    VACUOUS,
    VIOLATED,
    Result,
)
from kubemc.model.kernel import UnknownMutant

ENGINES = ("explore", "hypothesis", "z3")
#: engines ``check`` runs when named, beyond the three ``--engine all`` runs:
#: random walks decide no property, so they are asked for by name
ON_REQUEST = ("simulate",)


def _command(comp: str, engine: str, mutant, bounds, seed, profile) -> str:
    words = ["kubemc", "check", comp, "--engine", engine]
    if mutant:
        words += ["--mutant", mutant]
    for k, v in (bounds or {}).items():
        words += ["--bound", f"{k}={_show_bound(v)}"]
    if engine == "hypothesis":
        words += ["--profile", profile]
        if seed is not None:
            words += ["--seed", str(seed)]
    return shlex.join(words)


def _show_bound(v) -> str:
    if isinstance(v, (tuple, list)):
        return ",".join(map(str, v))
    return str(v).lower() if isinstance(v, bool) else str(v)


def parse_bound(text: str) -> tuple[str, Any]:
    """``key=value`` from the command line: ints, true/false, or a comma list."""
    if "=" not in text:
        raise BadInput(f"--bound {text!r}: expected KEY=VALUE, e.g. --bound max_term=3")
    key, value = text.split("=", 1)
    if value.lstrip("-").isdigit():
        return key, int(value)
    if value.lower() in ("true", "false"):
        return key, value.lower() == "true"
    if "," in value or value == "":
        return key, tuple(v for v in value.split(",") if v)
    return key, (value,) if key == "faults" else value


def select(names: Sequence[str], mutant: str | None) -> list[tuple[Component, Model]]:
    comps = [component(n) for n in names] if names else list(COMPONENTS.values())
    chosen = [(c, m) for c in comps for m in c.models
              if mutant is None or mutant in m.mutants]
    if mutant is not None and not chosen:
        known = sorted(x for c in comps for m in c.models for x in m.mutants)
        raise BadInput(f"no model of {', '.join(c.name for c in comps)} carries mutant "
                       f"{mutant!r} (known: {', '.join(known)})")
    return chosen


def build(model: Model, mutant, bounds, for_engine: str):
    bounds = model.check_bounds(bounds or {})
    try:
        if for_engine == "hypothesis" and not bounds:
            return model.hypothesis_machine(mutant)
        return model.machine(mutant, **(bounds or {}))
    except UnknownMutant as exc:
        raise BadInput(str(exc)) from None
    except (TypeError, ValueError) as exc:
        raise BadInput(f"bad bounds for {model.name}: {exc}") from None


def check(names: Sequence[str] = (), *, engines: Sequence[str] = ("explore",),
          mutant: str | None = None, bounds: dict | None = None, profile: str = "ci",
          seed: int | None = None, trace_dir: Path = Path("kubemc-traces"),
          max_states: int | None = None,
          progress: Callable[[str], None] | None = None,
          symbolic: Callable[..., list[Result]] | None = None,
          simulation: simulate_engine.Budget | None = None,
          parallel=None) -> list[Result]:
    """``simulation``: the simulate engine's budget (default ``Budget()``);
    ``parallel``: a ``checker.parallel.Parallel`` to spread explore over
    worker processes or a Ray cluster (``--workers``, ``--ray``)."""
    results: list[Result] = []
    for engine in engines:
        if engine not in ENGINES + ON_REQUEST:
            raise BadInput(f"unknown engine {engine!r} (known: "
                           f"{', '.join(ENGINES + ON_REQUEST)}, all)")
    if "simulate" in engines and seed is None:
        seed = simulate_engine.fresh_seed()  # recorded in every row and trace
    pairs = select(names, mutant)
    if bounds:
        # --bound applies to the models that have those bounds
        pairs = [(c, m) for c, m in pairs if set(bounds) <= _bound_names(m)]
        if not pairs:
            raise BadInput(f"no selected model has the bounds {', '.join(sorted(bounds))}")
    for _, model in pairs:
        model.check_bounds(bounds or {})  # every bound refused before any model runs
    if parallel is not None:
        parallel.validate()  # a bad --ray address before any model runs
    if list(engines) == ["z3"] and names and mutant is None:
        bare = without_z3(pairs)
        if bare:
            raise BadInput(f"the z3 engine has no encoding for {', '.join(bare)}: check "
                           f"{'it' if len(bare) == 1 else 'them'} with --engine explore or "
                           f"hypothesis (z3 checks: {', '.join(_z3_components())})")
    for engine in engines:
        if engine == "z3":
            if symbolic is None:
                from kubemc.checker.symbolic_run import run_symbolic as symbolic
            comps = {c.name: c for c, _ in pairs}
            for comp in comps.values():
                if not comp.symbolic:
                    continue
                with _unwritten_trace(results, comp):
                    results += symbolic(comp, mutant=mutant, trace_dir=trace_dir)
            continue
        for comp, model in pairs:
            # random walks, like random runs, get the catalog's slack bounds
            machine = build(model, mutant, bounds,
                            "hypothesis" if engine == "simulate" else engine)
            command = _command(comp.name, engine, mutant, bounds, seed, profile)
            props = targeted(model, mutant)
            with _unwritten_trace(results, comp):
                if engine == "simulate":
                    from kubemc.checker.simulate_run import run_simulate

                    results.append(run_simulate(comp, model, machine, props, trace_dir,
                                                command, seed, simulation or
                                                simulate_engine.Budget(), progress, _shape))
                elif engine == "explore":
                    results.append(_explore(comp, model, machine, props, trace_dir, command,
                                            max_states, progress, parallel, bounds))
                else:
                    results.append(_hypothesis(comp, model, machine, props, trace_dir,
                                               command, profile, seed, progress))
    return results


def without_z3(pairs) -> list[str]:
    """The selected components the z3 engine has no encoding for: an empty z3 run
    must not read as a proof, so the CLI names them and a z3-only run refuses."""
    return sorted({c.name for c, _ in pairs if not c.symbolic})


def _z3_components() -> list[str]:
    from kubemc.checker.components import COMPONENTS

    return sorted(n for n, c in COMPONENTS.items() if c.symbolic)


@contextlib.contextmanager
def _unwritten_trace(results: list, comp: Component):
    """A violation found whose trace could not be written (a full disk, a
    directory removed mid-run) is still a result: its row says what was
    violated, that no trace exists and why, and the run goes on."""
    try:
        yield
    except itf.TraceNotWritten as exc:
        meta = exc.meta
        results.append(Result(
            comp.name, str(meta.get("model", "?")), str(meta.get("engine", "?")), VIOLATED,
            0.0, None if meta.get("mutant") in (None, "none") else meta["mutant"],
            meta.get("property"), None, {},
            f"a {meta.get('length', '?')}-step counterexample; NO trace was written: {exc}",
            trace_error=str(exc)))


def targeted(model: Model, mutant: str | None):
    """The properties a run checks: all of them, or with a mutant the one it is
    meant to violate — so the trace shows that this property has teeth, not
    that some stronger property fails first."""
    if mutant is None:
        return model.properties
    target = model.mutants[mutant].violates
    return tuple(p for p in model.properties if p.name == target)


def _bound_names(model: Model) -> set:
    extra = {k for b in model.mutant_bounds.values() for k in b}
    return set(model.bounds) | set(model.hypothesis_bounds) | extra


def _explore(comp, model, machine, props, trace_dir, command, max_states, progress,
             parallel=None, bounds=None) -> Result:
    from kubemc.checker.progress import explore_line

    label = f"explore {model.name}"
    report = (lambda s: progress(explore_line(label, s))) if progress else None
    if parallel is None:
        outcome = explore_engine.explore(machine, props, max_states=max_states,
                                         progress=report)
    else:
        outcome = parallel.explore(comp.name, model, machine, props, mutant=machine.mutant,
                                   bounds=bounds, max_states=max_states, progress=report)
    st = outcome.stats
    figures = {"distinct_states": st.states, "transitions": st.transitions,
               "depth": st.depth, "states_per_second": round(st.rate),
               "bounds": machine.config()}
    if outcome.covers:
        figures["covers_reached"] = sorted(n for n, hit in outcome.covers.items() if hit)
    figures.update(outcome.liveness)
    seconds = st.seconds + outcome.liveness.get("liveness_build_seconds", 0) \
        + outcome.liveness.get("liveness_cycle_seconds", 0)
    if outcome.counterexample is not None:
        cex = outcome.counterexample
        path = traces.save(cex, trace_dir, model=model.name, machine=machine,
                           engine="explore", seed=None, command=command)
        return Result(comp.name, model.name, "explore", VIOLATED, seconds, machine.mutant,
                      cex.prop.name, str(path), figures, _shape(cex))
    if not outcome.complete:
        return Result(comp.name, model.name, "explore", INCOMPLETE, seconds, machine.mutant,
                      None, None, figures, f"stopped at --max-states {max_states}")
    missed = sorted(n for n, hit in outcome.covers.items() if not hit)
    if missed:
        return Result(comp.name, model.name, "explore", VACUOUS, seconds, machine.mutant,
                      missed[0], None, figures,
                      f"cover never reached at these bounds: {', '.join(missed)}")
    if outcome.undecided:
        return Result(comp.name, model.name, "explore", INCOMPLETE, seconds, machine.mutant,
                      outcome.undecided[0], None, figures,
                      f"liveness undecided for {', '.join(outcome.undecided)}: "
                      f"{outcome.liveness.get('liveness_truncated_states', 0):,} states "
                      "outside the bounds were not expanded and a violation could "
                      "continue through them")
    return Result(comp.name, model.name, "explore", HOLDS, seconds, machine.mutant,
                  None, None, figures, "")


def _shape(cex) -> str:
    if not cex.is_lasso:
        return f"shortest counterexample: {len(cex.steps)} steps"
    if cex.closing is None:
        return (f"lasso: a stem of {len(cex.steps)} steps to a state where no system step "
                "is enabled and the goal is not met; it stays there forever")
    return (f"lasso: a stem of {cex.loop} steps, then a fair quiet cycle of "
            f"{len(cex.steps) - cex.loop + 1} steps repeated forever")


def _hypothesis(comp, model, machine, props, trace_dir, command, profile, seed,
                progress) -> Result:
    if progress:
        progress(f"hypothesis {model.name}: profile {profile} …")
    start = time.perf_counter()
    outcome = stateful.check(machine, props, profile=profile, seed=seed)
    seconds = time.perf_counter() - start
    figures = {"examples": outcome.examples, "profile": profile, "bounds": machine.config()}
    if outcome.convergence:
        figures["convergence"] = outcome.convergence
    if outcome.counterexample is not None:
        cex = outcome.counterexample
        path = traces.save(cex, trace_dir, model=model.name, machine=machine,
                           engine="hypothesis", seed=seed if seed is not None else "derandomized",
                           command=command)
        detail = f"shrunk counterexample: {len(cex.steps)} steps"
        if cex.prop.is_liveness:
            detail = _shape(cex) if cex.is_lasso else f"{cex.note} ({len(cex.steps)} steps)"
        return Result(comp.name, model.name, "hypothesis", VIOLATED, seconds, machine.mutant,
                      cex.prop.name, str(path), figures, detail)
    if machine.mutant is not None:
        # Random runs that miss a seeded bug prove nothing about it.
        return Result(comp.name, model.name, "hypothesis", INCOMPLETE, seconds, machine.mutant,
                      figures=figures,
                      detail=f"{outcome.examples} random runs did not reach the bug; try "
                             "--profile deep, another --seed, or --engine explore")
    unseen = _unjudged(outcome.convergence)
    if unseen:
        return Result(comp.name, model.name, "hypothesis", INCOMPLETE, seconds, machine.mutant,
                      unseen[0][0], None, figures,
                      "; ".join(f"{name}: {why}" for name, why in unseen))
    return Result(comp.name, model.name, "hypothesis", HOLDS, seconds, machine.mutant,
                  figures=figures)


def _unjudged(tallies: dict) -> list[tuple[str, str]]:
    """Liveness properties the convergence phase said nothing about: the goal
    never reached, or (leads-to) the trigger never seen, in any run."""
    out = []
    for name, t in tallies.items():
        if t["runs"] == t["out of bounds"]:
            out.append((name, f"all {t['runs']} convergence runs left the bounds"))
        elif not t["reached"]:
            seen = "the trigger never held" if not t["triggered"] else "the goal was never reached"
            out.append((name, f"{seen} in {t['runs']} convergence runs"))
    return out


def check_model(comp: Component, model: Model, engine: str, *, mutant: str | None = None,
                bounds: dict | None = None, props: Sequence[str] | None = None,
                profile: str = "ci", seed: int | None = None,
                trace_dir: Path = Path("kubemc-traces"), max_states: int | None = None,
                progress: Callable[[str], None] | None = None) -> list[Result]:
    """One (component, model, engine) of :func:`check`, and only the
    properties named in ``props`` when given: the unit a pytest item and
    ``checker.api`` run. The rows are those ``check`` gives for this model —
    one for explore and hypothesis, one per symbolic check of this model for
    z3 (whose encodings have fixed bounds, so ``bounds`` is refused there)."""
    if engine not in ENGINES:
        raise BadInput(f"unknown engine {engine!r} (known: {', '.join(ENGINES)})")
    if mutant is not None and mutant not in model.mutants:
        raise BadInput(f"model {model.name} carries no mutant {mutant!r} "
                       f"(its mutants: {', '.join(sorted(model.mutants)) or 'none'})")
    chosen = targeted(model, mutant)
    if props is not None:
        known = {p.name for p in model.properties}
        unknown = sorted(set(props) - known)
        if unknown:
            raise BadInput(f"model {model.name} has no property {unknown[0]!r} "
                           f"(its properties: {', '.join(sorted(known))})")
        chosen = tuple(p for p in chosen if p.name in set(props))
        if not chosen:
            raise BadInput(f"mutant {mutant} is meant to violate "
                           f"{model.mutants[mutant].violates}, which is not among "
                           f"{', '.join(props)}")
    results: list[Result] = []
    if engine == "z3":
        if bounds:
            raise BadInput("the z3 engine's encodings have fixed bounds: drop the bounds")
        checks = tuple(c for c in comp.symbolic if c.model == model.name
                       and (props is None or c.prop in set(props)))
        if not checks:
            raise BadInput(f"no symbolic check of {comp.name} speaks of model {model.name}")
        from kubemc.checker.symbolic_run import run_symbolic

        with _unwritten_trace(results, comp):
            results += run_symbolic(attrs.evolve(comp, symbolic=checks), mutant=mutant,
                                    trace_dir=trace_dir)
        return results
    machine = build(model, mutant, bounds, engine)
    command = _command(comp.name, engine, mutant, bounds, seed, profile)
    with _unwritten_trace(results, comp):
        if engine == "explore":
            results.append(_explore(comp, model, machine, chosen, trace_dir, command,
                                    max_states, progress))
        else:
            results.append(_hypothesis(comp, model, machine, chosen, trace_dir, command,
                                       profile, seed, progress))
    return results

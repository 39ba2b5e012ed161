"""``kubemc swarm``'s options and its report: one line per run (what it was
given, what it did, what it covered), then per model what no run covered.
The work is ``checker.swarm``'s."""

from __future__ import annotations

import json
from pathlib import Path

from kubemc.checker.check_options import positive, seconds
from kubemc.checker.errors import BadInput


def add_arguments(p) -> None:
    from kubemc.checker.swarm import RUN_WALKS, RUNS_PER_MODEL

    p.description = ("Many differently seeded and bounded random-walk runs (the simulate "
                     "engine) in parallel processes, each reporting its coverage; the "
                     "summary names the actions and covers no run reached.")
    p.add_argument("components", nargs="*", metavar="COMPONENT",
                   help="components whose models to run (default: all)")
    p.add_argument("--jobs", type=positive, metavar="N",
                   help="parallel processes (default: the CPUs this process may use)")
    p.add_argument("--runs", type=positive, metavar="K",
                   help=f"runs in all (default: {RUNS_PER_MODEL} per model, at least --jobs)")
    p.add_argument("--time", type=seconds, metavar="S",
                   help="the swarm's time budget: each run gets its share of S seconds "
                   f"(default: no budget, {RUN_WALKS} walks per run)")
    p.add_argument("--seed", type=int, help="the seed every run's seed and bounds are drawn "
                   "from (default: a fresh one, printed)")
    p.add_argument("--mutant", metavar="NAME", help="run the models that carry this seeded "
                   "bug, against the property it violates")
    p.add_argument("--trace-dir", default="kubemc-traces", metavar="DIR",
                   help="where counterexample traces are written (default: kubemc-traces)")
    p.add_argument("--json", action="store_true", help="print the runs and totals as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress line")


def run(args) -> int:
    from kubemc.checker.itf import writable_directory
    from kubemc.checker.progress import ProgressLine
    from kubemc.checker.swarm import exit_code, swarm

    try:
        trace_dir = writable_directory(Path(args.trace_dir))
    except BadInput as exc:
        raise BadInput(f"--trace-dir {exc}") from None
    with ProgressLine(enabled=not args.quiet and not args.json) as line:
        outcome = swarm(args.components, runs=args.runs, jobs=args.jobs, seed=args.seed,
                        seconds=args.time, mutant=args.mutant, trace_dir=trace_dir,
                        progress=line.update)
    if args.json:
        print(json.dumps(as_json(outcome), indent=1))
    else:
        print(report(outcome))
    return exit_code(outcome)


def as_json(outcome) -> dict:
    import attrs

    return {"seed": outcome.seed, "jobs": outcome.jobs, "seconds": round(outcome.seconds, 2),
            "runs": [{"plan": {**attrs.asdict(p), "bounds": dict(p.bounds)},
                      "result": r.as_json()}
                     for p, r in zip(outcome.plans, outcome.results, strict=True)],
            "totals": [attrs.asdict(t) for t in outcome.totals]}


def report(outcome) -> str:
    runs = len(outcome.plans)
    lines = [f"swarm: {runs} runs on {outcome.jobs} processes, seed {outcome.seed}, "
             f"{outcome.seconds:.1f} s"]
    for p, r in zip(outcome.plans, outcome.results, strict=True):
        lines.append(_run_line(p, r))
    lines.append("")
    for t in outcome.totals:
        head = f"{t.component}/{t.model}: {t.verdict.upper()} — {t.detail}; {t.runs} runs, " \
               f"{t.steps:,} steps"
        lines.append(head)
        lines.append(f"  actions never taken: {', '.join(t.actions_never_taken) or 'none'}")
        lines.append(f"  covers never reached: {', '.join(t.covers_never_reached) or 'none'}")
        if t.premises_never_reached:
            lines.append("  properties whose premise no run reached: "
                         + ", ".join(t.premises_never_reached))
        for index, prop, trace in t.violations:
            lines.append(f"  run {index} violated {prop}: "
                         + (f"trace {trace}\n  replay: kubemc trace replay {trace}"
                            if trace else "NO trace written"))
    return "\n".join(lines)


def _run_line(p, r) -> str:
    f = r.figures
    changed = ", ".join(f"{k}={v}" for k, v in p.bounds if k in p.changed) or "catalog bounds"
    taken = len(f.get("actions_taken", ()))
    actions = taken + len(f.get("actions_never_taken", ()))
    covers = f.get("covers_reached", [])
    all_covers = len(covers) + len(f.get("covers_never_reached", []))
    head = (f"run {p.index} {p.component}/{p.model} seed {p.seed} depth {p.depth} "
            f"({changed}): ")
    verdict = f"VIOLATED {r.prop}" if r.verdict == "violated" else r.verdict
    return (head + f"{verdict} — {f.get('walks', 0):,} walks, {f.get('steps', 0):,} steps, "
            f"{f.get('distinct_states', 0):,} distinct, {f.get('states_per_second', 0):,} "
            f"states/s; actions {taken}/{actions}, covers {len(covers)}/{all_covers}, "
            f"premises {len(f.get('premises_reached', ()))}/"
            f"{len(f.get('premises_reached', ())) + len(f.get('premises_never_reached', ()))}")

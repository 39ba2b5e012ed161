"""The ``kubemc`` command: argument parsing and printing, nothing else.

Every subcommand calls a library function the tests call too. Exit codes
(DESIGN.md, ``checker.errors``): 0 everything holds, 1 a property was violated
and a trace was written, 2 bad usage or input (one line, no traceback), 3 the
environment lacks something, 4 undecided, 5 vacuous, 70 an internal error (one
line naming the file that holds the traceback; never 1).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kubemc.checker.check_options import positive
from kubemc.checker.command import Parser, run_command
from kubemc.checker.errors import HOLDS, BadInput
from kubemc.checker.plugins import COMMANDS as REGISTERED_COMMANDS
from kubemc.checker.plugins import REINSTALL, registered
from kubemc.checker.replay_output import print_replay


def build_parser() -> Parser:
    p = Parser(prog="kubemc", description="A model checker and conformance suite for the "
               "Kubernetes architecture.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    c = sub.add_parser("check", help="check components' properties with an engine",
                       description="Check the properties of components. With --mutant, "
                       "check a seeded bug: exit 1 and a trace when it is caught.")
    c.add_argument("components", nargs="*", metavar="COMPONENT",
                   help="components to check (default: all; see `kubemc properties`)")
    c.add_argument("--engine", default="explore",
                   choices=["explore", "hypothesis", "z3", "all", "simulate"],
                   help="explore (default), hypothesis, z3, all three, or simulate: "
                   "random walks for models too large to exhaust (docs/simulate.md)")
    c.add_argument("--mutant", metavar="NAME", help="check a seeded bug (see `kubemc mutants`)")
    c.add_argument("--bound", action="append", default=[], metavar="KEY=VALUE",
                   help="override a bound, e.g. --bound max_term=4 (repeatable)")
    c.add_argument("--profile", choices=["ci", "deep"],
                   help="hypothesis profile (default ci: bounded and derandomized)")
    c.add_argument("--seed", type=int, help="hypothesis seed (default: derandomized); "
                   "simulate seed (default: a fresh one, printed and recorded in the trace)")
    c.add_argument("--max-states", type=positive, metavar="N",
                   help="stop exploring after N distinct states (verdict: undecided, exit 4)")
    c.add_argument("--trace-dir", default="kubemc-traces", metavar="DIR",
                   help="where counterexample traces are written (default: kubemc-traces)")
    c.add_argument("--json", action="store_true", help="print results as JSON")
    c.add_argument("--quiet", action="store_true", help="no progress line")
    from kubemc.checker.simulate_cli import add_budget_arguments
    add_budget_arguments(c)
    from kubemc.checker import parallel_cli
    parallel_cli.add_arguments(c)

    sub.add_parser("properties", help="list every property with its provenance") \
        .add_argument("--json", action="store_true")
    sub.add_parser("mutants", help="list every seeded bug and the property it violates") \
        .add_argument("--json", action="store_true")

    t = sub.add_parser("trace", help="show, replay or view a counterexample trace (ITF JSON)")
    tsub = t.add_subparsers(dest="trace_command", required=True, parser_class=Parser)
    tsub.add_parser("show", help="print a trace step by step, showing what changed") \
        .add_argument("file")
    r = tsub.add_parser("replay", help="re-execute a trace against the model: exit 1 when "
                        "the violation reproduces, 0 when it no longer does")
    r.add_argument("file")
    r.add_argument("--json", action="store_true")
    v = tsub.add_parser("view", help="write the trace as one self-contained HTML page of "
                        "swimlanes (opens offline; step with the arrow keys)")
    v.add_argument("file")
    v.add_argument("--out", metavar="FILE.html", help="the page to write, which must not "
                   "exist (default: the trace's name with .html, in the current directory)")
    pr = tsub.add_parser("promote", help="move a new trace into DIR/<component>/<mutant or "
                         "property>.itf.json once it replays and violates what it says")
    pr.add_argument("file")
    pr.add_argument("--traces-dir", default="traces", metavar="DIR",
                    help="the committed traces (default: traces)")
    pr.add_argument("--force", action="store_true", help="replace an existing trace there")

    # audit, check-history, conform: the conformance layer's commands, registered
    # as entry points (checker.plugins) because checker may not import it
    commands = registered(REGISTERED_COMMANDS)
    if not commands:
        p.hint = REINSTALL
    for name, entry in commands.items():
        module = entry.load()
        rp = sub.add_parser(name, help=module.HELP)
        module.add_arguments(rp)
        rp.set_defaults(registered_run=module.run)

    cc = sub.add_parser("check-controller", help="check your own reconcile function as a "
                        "controller: stale caches, 409s, crashes, edits (docs/check-controller.md)")
    from kubemc.checker.check_controller import add_arguments as add_check_controller_arguments
    add_check_controller_arguments(cc)

    sw = sub.add_parser("swarm", help="many differently bounded and seeded random-walk "
                        "runs in parallel, each reporting its coverage (docs/simulate.md)")
    from kubemc.checker.swarm_cli import add_arguments as add_swarm_arguments
    add_swarm_arguments(sw)

    b = sub.add_parser("bench", help="performance figures (never asserted in tests)")
    from kubemc.checker.bench import names as benchmark_names
    b.add_argument("name", help="one of: " + ", ".join(benchmark_names()))
    b.add_argument("--json", action="store_true")
    return p


# ---------------------------------------------------------------------------


def cmd_check(args) -> int:
    from kubemc.checker import parallel_cli
    from kubemc.checker.check_options import refuse_inapplicable
    from kubemc.checker.itf import writable_directory
    from kubemc.checker.progress import ProgressLine
    from kubemc.checker.run import check, parse_bound, select, without_z3
    from kubemc.checker.simulate_cli import budget_of
    from kubemc.checker.verdicts import exit_code

    bounds = dict(parse_bound(b) for b in args.bound)
    engines = ["explore", "hypothesis", "z3"] if args.engine == "all" else [args.engine]
    refuse_inapplicable(engines, {"--seed": args.seed is not None,
                                  "--profile": args.profile is not None,
                                  "--max-states": args.max_states is not None,
                                  "--bound": bool(args.bound),
                                  "--walks": args.walks is not None,
                                  "--depth": args.depth is not None,
                                  "--time": args.time is not None,
                                  **parallel_cli.given(args)})
    try:
        trace_dir = writable_directory(Path(args.trace_dir))
    except BadInput as exc:
        raise BadInput(f"--trace-dir {exc}") from None
    with ProgressLine(enabled=not args.quiet and not args.json) as line:
        results = check(args.components, engines=engines, mutant=args.mutant, bounds=bounds,
                        profile=args.profile or "ci", seed=args.seed, trace_dir=trace_dir,
                        max_states=args.max_states, progress=line.update,
                        simulation=budget_of(args), parallel=parallel_cli.parallel_of(args))
    if args.json:
        print(json.dumps([r.as_json() for r in results], indent=1))
    else:
        for r in results:
            print(_summary(r))
    if "z3" in engines and not args.mutant:
        bare = without_z3(select(args.components, None))
        if bare:
            print(f"kubemc: the z3 engine has no encoding for {', '.join(bare)}: "
                  f"not checked by z3", file=sys.stderr)
    parallel_cli.note_liveness(results)
    unwritten = [r for r in results if r.trace_error]
    if unwritten:
        print(f"kubemc: {len(unwritten)} violation(s) found, printed above, but NO trace "
              f"written: {unwritten[0].trace_error}", file=sys.stderr)
    # Exit 1 means "a property was violated and a trace was written" and
    # nothing else: a search that stopped early (--max-states, random runs
    # that missed a mutant) says UNDECIDED and exits 4, so a script that
    # expects a seeded bug to be caught cannot be fooled by a miss.
    return exit_code(results)


def _summary(r) -> str:
    head = f"{r.component}/{r.model} [{r.engine}]"
    if r.mutant:
        head += f" mutant {r.mutant}"
    if r.trace_error:
        return f"{head}: VIOLATED {r.prop} — {r.detail}"
    f = r.figures
    if r.engine == "simulate":
        from kubemc.checker.simulate_cli import figures_line
        figures = figures_line(r)
    elif r.engine == "explore":
        figures = (f"{f['distinct_states']:,} distinct states, depth {f['depth']}, "
                   f"{r.seconds:.1f} s, {f['states_per_second']:,} states/s")
    elif r.engine == "hypothesis":
        figures = f"{f['examples']} runs ({f['profile']} profile), {r.seconds:.1f} s"
        for name, t in f.get("convergence", {}).items():
            figures += (f"; {name}: goal reached after {t['reached']} of {t['runs']} "
                        "convergence phases")
    else:
        figures = f"{r.seconds:.1f} s, {r.detail}"
        if r.verdict == "violated":
            return (f"{head}: VIOLATED {r.prop} — {figures}\n"
                    f"  trace: {r.trace}\n  replay: kubemc trace replay {r.trace}")
    if r.verdict == "violated" and not r.trace:
        return f"{head}: VIOLATED {r.prop} — {figures}; {r.detail}"
    if r.verdict == "violated":
        return (f"{head}: VIOLATED {r.prop} — {figures}; {r.detail}\n"
                f"  trace: {r.trace}\n  replay: kubemc trace replay {r.trace}")
    if r.verdict != "holds":
        return f"{head}: {r.verdict.upper()} — {figures}; {r.detail}"
    return f"{head}: holds — {figures}"


def cmd_properties(args) -> int:
    from kubemc.checker.components import COMPONENTS

    rows = [(c.name, p) for c in COMPONENTS.values() for p in c.properties()]
    if args.json:
        print(json.dumps([{"component": c, "name": p.name, "kind": p.kind,
                           "statement": p.statement, "provenance": p.provenance,
                           "fairness": p.fairness}
                          for c, p in rows], indent=1))
        return HOLDS
    for c, p in rows:
        print(f"{c}/{p.name} ({p.kind})\n  {p.statement}\n  source: {p.provenance}"
              + (f"\n  fairness: {p.fairness}" if p.fairness else ""))
    return HOLDS


def cmd_mutants(args) -> int:
    from kubemc.checker.components import COMPONENTS

    rows = [(c.name, m.name, name, mut) for c in COMPONENTS.values() for m in c.models
            for name, mut in m.mutants.items()]
    if args.json:
        print(json.dumps([{"component": c, "model": m, "name": n, "violates": mu.violates,
                           "description": mu.description} for c, m, n, mu in rows], indent=1))
        return HOLDS
    for c, m, n, mu in rows:
        print(f"{n}  ({c}/{m}, violates {mu.violates})\n  {mu.description}")
    return HOLDS


def cmd_trace(args) -> int:
    from kubemc.checker import traces

    if args.trace_command == "view":
        from kubemc.checker.trace_view import view

        print(f"wrote {view(args.file, args.out)}")
        return HOLDS
    if args.trace_command == "promote":
        from kubemc.checker.trace_promote import promote

        print(promote(args.file, args.traces_dir, force=args.force).summary())
        return HOLDS
    trace = traces.load(args.file)
    if args.trace_command == "show":
        print(traces.show(trace))
        return HOLDS
    from kubemc.checker.check_controller import replay_elsewhere
    replay_elsewhere(trace, args.file)  # a user's controller is replayed with its code
    result = traces.replay(trace, source=args.file)
    return print_replay(result, getattr(args, "json", False), "the model")


def cmd_bench(args) -> int:
    from kubemc.checker.bench import benchmark

    run = benchmark(args.name)
    figures = run(lambda line: print(line, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps({"benchmark": args.name, **figures}, indent=1))
    else:
        print(f"benchmark {args.name}")
        for k, v in figures.items():
            print(f"  {k}: {v:,}" if isinstance(v, int) and not isinstance(v, bool)
                  else f"  {k}: {v}")
    return HOLDS


COMMANDS = {"check": cmd_check, "properties": cmd_properties, "mutants": cmd_mutants,
            "trace": cmd_trace, "bench": cmd_bench}


def cmd_check_controller(args) -> int:
    from kubemc.checker.check_controller import run

    return run(args)


COMMANDS["check-controller"] = cmd_check_controller


def cmd_swarm(args) -> int:
    from kubemc.checker.swarm_cli import run

    return run(args)


COMMANDS["swarm"] = cmd_swarm


def main(argv: list[str] | None = None) -> int:
    def body() -> int:
        args = build_parser().parse_args(argv)
        command = COMMANDS.get(args.command) or args.registered_run
        return command(args)

    return run_command(body, argv)


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()

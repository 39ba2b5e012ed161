"""The ``kubemc`` command: argument parsing and printing, nothing else.

Every subcommand calls a library function the tests call too. Exit codes
(DESIGN.md, ``checker.errors``): 0 everything holds, 1 a property was violated
and a trace was written, 2 bad usage or input (one line, no traceback), 3 the
environment lacks something, 4 undecided, 5 vacuous, 70 an internal error (one
line naming the file that holds the traceback; never 1).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from checker.check_options import positive
from checker.errors import HOLDS, INTERNAL_ERROR, VIOLATED, BadInput, KubemcError


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message):
        raise BadInput(f"{message} (see {self.prog} --help)")


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
                   choices=["explore", "hypothesis", "z3", "all"])
    c.add_argument("--mutant", metavar="NAME", help="check a seeded bug (see `kubemc mutants`)")
    c.add_argument("--bound", action="append", default=[], metavar="KEY=VALUE",
                   help="override a bound, e.g. --bound max_term=4 (repeatable)")
    c.add_argument("--profile", choices=["ci", "deep"],
                   help="hypothesis profile (default ci: bounded and derandomized)")
    c.add_argument("--seed", type=int, help="hypothesis seed (default: derandomized)")
    c.add_argument("--max-states", type=positive, metavar="N",
                   help="stop exploring after N distinct states (verdict: undecided, exit 4)")
    c.add_argument("--trace-dir", default="kubemc-traces", metavar="DIR",
                   help="where counterexample traces are written (default: kubemc-traces)")
    c.add_argument("--json", action="store_true", help="print results as JSON")
    c.add_argument("--quiet", action="store_true", help="no progress line")

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

    h = sub.add_parser("check-history", help="check a history for linearizability "
                       "(Jepsen/Knossos EDN logs, porcupine EDN, kubemc JSONL)")
    h.add_argument("file")
    h.add_argument("--json", action="store_true")
    from conformance.checkhistory import add_budget_arguments
    add_budget_arguments(h)

    f = sub.add_parser("conform", help="validate a real implementation against the model")
    fsub = f.add_subparsers(dest="target", required=True, parser_class=Parser)
    from conformance.cli import TARGETS, target_module
    for name, (_, summary) in TARGETS.items():
        tp = fsub.add_parser(name, help=summary, description=summary)
        target_module(name).add_arguments(tp)

    a = sub.add_parser("audit", help="judge a real cluster's state with the models")
    asub = a.add_subparsers(dest="audit_target", required=True, parser_class=Parser)
    au = asub.add_parser("scheduling", help="placements in `kubectl get nodes,pods -A -o json` "
                         "output (files or directories; add events to judge schedulerName)")
    au.add_argument("files", nargs="+", metavar="FILE")
    au.add_argument("--json", action="store_true")
    au.add_argument("--report", default="kubemc-audit-scheduling.json", metavar="FILE",
                    help="where findings are written (default: kubemc-audit-scheduling.json)")

    cc = sub.add_parser("check-controller", help="check your own reconcile function as a "
                        "controller: stale caches, 409s, crashes, edits (docs/check-controller.md)")
    from checker.check_controller import add_arguments as add_check_controller_arguments
    add_check_controller_arguments(cc)

    b = sub.add_parser("bench", help="performance figures (never asserted in tests)")
    from checker.bench import BENCHMARKS
    b.add_argument("name", help="one of: " + ", ".join(BENCHMARKS))
    b.add_argument("--json", action="store_true")
    return p


# ---------------------------------------------------------------------------


def cmd_check(args) -> int:
    from checker.check_options import refuse_inapplicable
    from checker.itf import writable_directory
    from checker.progress import ProgressLine
    from checker.run import check, parse_bound, select, without_z3
    from checker.verdicts import exit_code

    bounds = dict(parse_bound(b) for b in args.bound)
    engines = ["explore", "hypothesis", "z3"] if args.engine == "all" else [args.engine]
    refuse_inapplicable(engines, {"--seed": args.seed is not None,
                                  "--profile": args.profile is not None,
                                  "--max-states": args.max_states is not None,
                                  "--bound": bool(args.bound)})
    try:
        trace_dir = writable_directory(Path(args.trace_dir))
    except BadInput as exc:
        raise BadInput(f"--trace-dir {exc}") from None
    with ProgressLine(enabled=not args.quiet and not args.json) as line:
        results = check(args.components, engines=engines, mutant=args.mutant, bounds=bounds,
                        profile=args.profile or "ci", seed=args.seed, trace_dir=trace_dir,
                        max_states=args.max_states, progress=line.update)
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
    if r.engine == "explore":
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
    from checker.components import COMPONENTS

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
    from checker.components import COMPONENTS

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
    from checker import traces

    if args.trace_command == "view":
        from checker.trace_view import view

        print(f"wrote {view(args.file, args.out)}")
        return HOLDS
    trace = traces.load(args.file)
    if args.trace_command == "show":
        print(traces.show(trace))
        return HOLDS
    from checker.check_controller import replay_elsewhere
    replay_elsewhere(trace, args.file)  # a user's controller is replayed with its code
    result = traces.replay(trace, source=args.file)
    return print_replay(result, getattr(args, "json", False), "the model")


def print_replay(result, as_json: bool, what: str) -> int:
    """Print a replay's outcome (``what`` names what may have changed since the
    trace was written) and return its exit code: 1 when it reproduces."""
    if as_json:
        print(json.dumps({"reproduced": result.reproduced, "message": result.message,
                          "steps_replayed": result.steps_replayed,
                          "diverged_at": list(result.divergences)}))
    else:
        print(result.message)
        if result.divergences:
            print(f"note: the states differ from the recorded ones at steps "
                  f"{', '.join(map(str, result.divergences))} ({what} changed since "
                  "the trace was written)")
    return VIOLATED if result.reproduced else HOLDS


def cmd_check_history(args) -> int:
    from conformance.checkhistory import run

    return run(args.file, as_json=args.json, budget=args.budget, max_memory=args.max_memory)


def cmd_conform(args) -> int:
    from conformance.cli import target_module

    return target_module(args.target).run(args)


def cmd_audit(args) -> int:
    from conformance.audit.scheduling import run

    return run(args.files, as_json=args.json, report=args.report)


def cmd_bench(args) -> int:
    from checker.bench import benchmark

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
            "trace": cmd_trace, "check-history": cmd_check_history, "conform": cmd_conform,
            "bench": cmd_bench, "audit": cmd_audit}


def cmd_check_controller(args) -> int:
    from checker.check_controller import run

    return run(args)


COMMANDS["check-controller"] = cmd_check_controller


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except KubemcError as exc:
        print(f"kubemc: {' '.join(str(exc).splitlines())}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("kubemc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return HOLDS
    except Exception as exc:  # a bug in kubemc: never exit 1, never a bare traceback
        from checker.crash import report

        print(report(exc, argv), file=sys.stderr)
        return INTERNAL_ERROR


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()

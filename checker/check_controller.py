"""``kubemc check-controller MODULE:FUNCTION``: a user's own reconcile
function under the model checker (docs/check-controller.md).

The function is loaded (``checker.usercode``), wrapped as a controller on
the watch loop (``model.controllers.usercontroller``) and checked by the
same engines and verdicts as ``kubemc check``: ``reconcile_does_not_raise``,
``eventually_reconciled``, the user's ``--invariant`` and ``--goal``
predicates (``properties.controllers.usercontroller``); the code becomes a
model in ``checker.controller_model``. A violation is a trace
(``kubemc trace show``), exit 1. An exception the user's reconcile raises
while being checked is such a violation: it is a finding about their code
and comes with the behaviour that leads to it. Code that cannot be loaded or
called, or that returns something other than requests, is bad input: one
line, exit 2.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from kubemc.checker.errors import BadInput

#: The name traces of this command carry as their model (as
#: ``properties.controllers.usercontroller.COMPONENT``; a test keeps them
#: equal). Said here so that building the CLI's parser, which every
#: ``kubemc`` command does, imports none of the engines.
COMPONENT = "check-controller"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="MODULE:FUNCTION",
                   help="the reconcile function: a .py file or dotted module, a colon, its "
                   "name (e.g. examples/operators/replicas_ok.py:reconcile)")
    p.add_argument("--resource", metavar="KIND",
                   help="the kind of the desired object reconcile is handed (e.g. ConfigMap; "
                   "default: RESOURCE in the reconcile's module)")
    p.add_argument("--owns", metavar="KIND",
                   help="the kind of the children it creates, updates and deletes (e.g. Pod; "
                   "default: OWNS in the reconcile's module)")
    p.add_argument("--desired", metavar="[MODULE:]NAME",
                   help="the desired object's versions: a list of dicts (the object as "
                   "created, then each edit a user applies), or a function returning one; "
                   "default: DESIRED in the reconcile's module")
    p.add_argument("--children", metavar="[MODULE:]NAME",
                   help="children the cluster starts with (a list of --owns dicts: left over "
                   "from an earlier version, or made by hand); default: CHILDREN in the "
                   "reconcile's module, if it has one, else none")
    p.add_argument("--world", metavar="[MODULE:]FUNCTION",
                   help="world(child) -> the versions other components (a kubelet, a user) may "
                   "turn a child into, e.g. its status set to Failed; default: WORLD in the "
                   "reconcile's module, if it has one, else none")
    p.add_argument("--invariant", action="append", default=[], metavar="[MODULE:]PRED",
                   help="a predicate PRED(desired, children) -> bool that must hold in every "
                   "state of the apiserver (repeatable; a bare name is looked up in the "
                   "reconcile's module; INVARIANTS there are checked too)")
    p.add_argument("--goal", action="append", default=[], metavar="[MODULE:]PRED",
                   help="a predicate PRED(desired, children) -> bool that, once edits and "
                   "faults stop, must eventually hold and keep holding (repeatable; GOALS in "
                   "the reconcile's module are checked too)")
    p.add_argument("--engine", default="explore", choices=["explore", "hypothesis"])
    p.add_argument("--bound", action="append", default=[], metavar="KEY=VALUE",
                   help="crashes, write_failures, resyncs, child_deletions, edits, "
                   "world_changes (with a world), max_objects (repeatable)")
    p.add_argument("--max-states", type=_positive, metavar="N",
                   help="stop exploring after N distinct states (verdict: undecided, exit 4)")
    p.add_argument("--profile", choices=["ci", "deep"], help="hypothesis profile (default ci)")
    p.add_argument("--seed", type=int, help="hypothesis seed (default: derandomized)")
    p.add_argument("--trace-dir", default="kubemc-traces", metavar="DIR",
                   help="where counterexample traces are written (default: kubemc-traces)")
    p.add_argument("--replay", metavar="TRACE",
                   help="re-execute a trace this command wrote against the code named here: "
                   "exit 1 when the violation still reproduces, 0 when it no longer does")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress line")


def _positive(text: str) -> int:
    from kubemc.checker.check_options import positive

    return positive(text)


def check_controller(target: str, *, resource: str | None = None, owns: str | None = None,
                     invariants: Sequence[str] = (), desired: str | None = None,
                     children: str | None = None, goals: Sequence[str] = (),
                     world: str | None = None,
                     bounds: dict | None = None, engine: str = "explore",
                     trace_dir: Path = Path("kubemc-traces"), max_states: int | None = None,
                     profile: str = "ci", seed: int | None = None,
                     progress: Callable[[str], None] | None = None) -> "kubemc.checker.run.Result":
    """Check the reconcile function ``target`` names; the tests call this too."""
    from kubemc.checker import run as runner
    from kubemc.checker.catalog import Component
    from kubemc.checker.controller_model import user_model
    from kubemc.model.controllers.usercontroller import BadReconcile

    if engine not in ("explore", "hypothesis"):
        raise BadInput(f"unknown engine {engine!r} (known: explore, hypothesis)")
    model, resource, owns = user_model(target, resource, owns, invariants, desired, children,
                                       goals, world)
    props = model.properties
    try:
        given = model.check_bounds(bounds or {})
        machine = (model.hypothesis_machine() if engine == "hypothesis" and not given
                   else model.machine(**given))
        comp = Component(COMPONENT, "a user's reconcile function", (model,))
        command = _command(target, resource, owns, invariants, desired, children, goals,
                           world, given, engine, profile, seed)
        results: list = []
        with runner._unwritten_trace(results, comp):
            if engine == "explore":
                results.append(runner._explore(comp, model, machine, props, trace_dir,
                                               command, max_states, progress))
            else:
                results.append(runner._hypothesis(comp, model, machine, props, trace_dir,
                                                  command, profile, seed, progress))
    except BadReconcile as exc:
        raise BadInput(str(exc)) from None
    return results[0]


def _command(target, resource, owns, invariants, desired, children, goals, world, bounds,
             engine, profile, seed) -> str:
    words = ["kubemc", "check-controller", target, "--resource", resource, "--owns", owns]
    for spec in invariants:
        words += ["--invariant", spec]
    for spec in goals:
        words += ["--goal", spec]
    if desired:
        words += ["--desired", desired]
    if children:
        words += ["--children", children]
    if world:
        words += ["--world", world]
    for key, value in bounds.items():
        words += ["--bound", f"{key}={value}"]
    words += ["--engine", engine]
    if engine == "hypothesis":
        words += ["--profile", profile] + (["--seed", str(seed)] if seed is not None else [])
    return shlex.join(words)


# ---------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------


def run(args) -> int:
    from kubemc.checker.check_options import refuse_inapplicable
    from kubemc.checker.itf import writable_directory
    from kubemc.checker.progress import ProgressLine
    from kubemc.checker.verdicts import exit_code

    if args.replay is not None:
        return _replay(args)
    refuse_inapplicable([args.engine], {"--seed": args.seed is not None,
                                        "--profile": args.profile is not None,
                                        "--max-states": args.max_states is not None})
    from kubemc.checker.run import parse_bound

    bounds = dict(parse_bound(b) for b in args.bound)
    try:
        trace_dir = writable_directory(Path(args.trace_dir))
    except BadInput as exc:
        raise BadInput(f"--trace-dir {exc}") from None
    with ProgressLine(enabled=not args.quiet and not args.json) as line:
        result = check_controller(args.target, resource=args.resource, owns=args.owns,
                                  invariants=args.invariant, desired=args.desired,
                                  children=args.children, goals=args.goal,
                                  world=args.world,
                                  bounds=bounds, engine=args.engine, trace_dir=trace_dir,
                                  max_states=args.max_states, profile=args.profile or "ci",
                                  seed=args.seed, progress=line.update)
    if args.json:
        print(json.dumps({"target": args.target, **result.as_json()}, indent=1))
    else:
        print(summary(args.target, result))
    if result.trace_error:
        print(f"kubemc: a violation was found, printed above, but NO trace was written: "
              f"{result.trace_error}", file=sys.stderr)
    return exit_code([result])


def _replay(args) -> int:
    from kubemc.checker.controller_replay import replay
    from kubemc.checker.errors import HOLDS, VIOLATED

    if args.bound or args.seed is not None or args.profile or args.max_states:
        raise BadInput("--replay takes its bounds from the trace: drop --bound, --seed, "
                       "--profile and --max-states")
    from kubemc.checker.controller_model import user_model

    model, _, _ = user_model(args.target, args.resource, args.owns, args.invariant,
                             args.desired, args.children, args.goal, args.world)
    from kubemc.checker.replay_output import print_replay

    return print_replay(replay(model, args.replay), args.json, "the code")


def replay_elsewhere(trace: dict, source: str) -> None:
    """``kubemc trace replay`` of a trace this command wrote: its code is the
    user's, which a trace file must not get to import by naming it, so the
    user names it again (the trace's command says how)."""
    meta = trace.get("#meta")
    if not isinstance(meta, dict) or meta.get("model") != COMPONENT:
        return
    command = meta.get("command") if isinstance(meta.get("command"), str) else ""
    try:
        words = shlex.split(command) if command.startswith("kubemc check-controller ") else []
    except ValueError:  # unbalanced quotes: a damaged trace
        words = []
    # what --replay takes from the trace itself, each option with its value
    dropped = {"--engine", "--bound", "--profile", "--seed"}
    words = [w for i, w in enumerate(words)
             if w not in dropped and (i == 0 or words[i - 1] not in dropped)]
    again = shlex.join(words + ["--replay", source]) if words else \
        f"kubemc check-controller MODULE:FUNCTION --resource KIND --owns KIND --replay {source}"
    raise BadInput(f"{source} is a trace of a user's controller; replay it against that code: "
                   f"{again}")


def summary(target: str, r) -> str:
    """What a person reads after a check: the verdict, the figures, the trace."""
    f = r.figures
    head = f"check-controller {target} [{r.engine}]"
    if r.engine == "explore":
        figures = (f"{f.get('distinct_states', 0):,} distinct states, depth {f.get('depth', 0)}, "
                   f"{r.seconds:.1f} s")
    else:
        figures = f"{f.get('examples', 0)} random runs ({f.get('profile')} profile), " \
                  f"{r.seconds:.1f} s"
    bounds = " ".join(f"{k}={v}" for k, v in f.get("bounds", {}).items())
    lines = []
    if r.verdict == "violated":
        lines.append(f"{head}: VIOLATED {r.prop} — {figures}; {r.detail}")
        if r.trace:
            lines += [f"  trace: {r.trace}", f"  read it: kubemc trace show {r.trace}"]
    elif r.verdict == "holds":
        lines.append(f"{head}: holds — {figures}")
    else:
        lines.append(f"{head}: {r.verdict.upper()} — {figures}; {r.detail}")
        if "outside the bounds" in r.detail:
            lines.append("  the cluster grew past max_objects: a controller that keeps creating, "
                         "or bounds too tight (--bound max_objects=N)")
    lines.append(f"  bounds: {bounds}")
    return "\n".join(lines)

"""``kubemc conform maelstrom --bin CMD``: arguments, verdict, reports.

The run itself is :func:`conformance.adapters.maelstrom.run.run`; this module judges
what it observed (:func:`judge`, which tests call too) and reports it: a human
summary on stdout (or ``--json``), JUnit XML with ``--junit FILE``, and files
under ``--out``: ``history.jsonl`` (the history, Jepsen-style, model
``register``), ``report.json`` (the ``--json`` document), each node's stderr,
and on a violation, through :func:`conformance.report.write_violation`,
``violations/linearizable.jsonl`` (the smallest failing window: see
:func:`shrink`) and ``violations/linearizable.itf.json`` (the same window as
an ITF trace). Reports reuse :mod:`conformance.report` (JUnit, JSON files,
the progress line); the human summary is this target's own.

Verdict: the run passes when every check passes —

``init``          every node answered ``init`` with ``init_ok``;
``protocol``      nothing on stdout but well-formed, correctly addressed
                  messages, and every reply answers a request, once, with the
                  right type;
``nodes-up``      no node exited before the run ended;
``availability``  at least one operation succeeded (an empty history shows
                  nothing);
``linearizable``  the history is linearizable, key by key, as a register.

Exit codes (DESIGN.md): 0 every check passed; 1 a check failed (a
linearizability violation writes the window and the trace; an undecided
check, out of ``--check-budget``, fails too: nothing was shown); 2 bad usage,
or a command that cannot be executed, or an ``--out`` that already holds
files, or a ``--junit`` that is a directory or exists (both refused before
the run); 3 an environment problem; 130 on Ctrl-C, 143 on SIGTERM, 129 on
SIGHUP (:mod:`conformance.runner.signals`; after every node process and
every process a node started is gone).
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import shlex
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import attrs

from kubemc.checker.errors import HOLDS, VIOLATED, BadInput, KubemcError
from kubemc.conformance.runner.args import finite_float
from kubemc.conformance.history import INFO, Operation
from kubemc.conformance.linearizability import (LINEARIZABLE, NOT_LINEARIZABLE, Failure, Result,
                                                check)
from kubemc.conformance.model.register import NIL, Register, freeze
from kubemc.conformance.report import ProgressLine, write_json_atomic, write_violation
from kubemc.conformance.report.outputs import check_new_file, check_out_dir, make_out_dir
from kubemc.conformance.adapters.maelstrom import run as maelstrom
from kubemc.conformance.adapters.maelstrom.run import Config, Outcome
from kubemc.conformance.runner.signals import Interrupted, exit_code

PROTOCOL_KINDS = ("garbage", "unknown-src", "unknown-dest")
PASS, FAIL, SKIP = "pass", "fail", "skip"


#: ``kubemc conform --help``'s line for this target
HELP = "any program speaking the Maelstrom protocol"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Run N copies of a program speaking the Maelstrom protocol on a "
                          "simulated network with partitions, drive the lin-kv workload, and "
                          "check the history is linearizable.")
    parser.add_argument("--bin", required=True, metavar="CMD",
                        help="the command that starts one node, split like a shell command "
                             "line, e.g. --bin 'python3 my_node.py --flag'")
    parser.add_argument("--nodes", type=int, default=3, metavar="N",
                        help="number of nodes, n0..n(N-1) (default 3)")
    parser.add_argument("--time-limit", type=finite_float("--time-limit"), default=30.0, metavar="S",
                        help="seconds from start to the end of the workload (default 30)")
    parser.add_argument("--rate", type=finite_float("--rate"), default=50.0, metavar="R",
                        help="requests per second, all clients together (default 50)")
    parser.add_argument("--concurrency", type=int, default=0, metavar="C",
                        help="clients c1..cC, one request outstanding each (default 2 per node)")
    parser.add_argument("--nemesis", choices=("partition", "none"), default="partition",
                        help="partition: random halves, cut and healed in turn (default)")
    parser.add_argument("--nemesis-interval", type=finite_float("--nemesis-interval"), default=0.0, metavar="S",
                        help="seconds healed, then seconds partitioned (default: time limit / 6, "
                             "within 0.5..10)")
    parser.add_argument("--latency", type=finite_float("--latency"), default=5.0, metavar="MS",
                        help="mean network delay in milliseconds, exponential (default 5)")
    parser.add_argument("--timeout", type=finite_float("--timeout"), default=1.0, metavar="S",
                        help="seconds a client waits for a reply; then the outcome is unknown "
                             "(default 1)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the schedule: delays, partitions, operations (default random)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="a new or empty directory for the history, node logs and results "
                             "(default kubemc-out/maelstrom/TIMESTAMP)")
    parser.add_argument("--check-budget", type=finite_float("--check-budget"), default=60.0, metavar="S",
                        help="seconds the linearizability check may take (default 60)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--junit", type=Path, default=None, metavar="FILE",
                        help="also write the result as JUnit XML (a new file)")


def config_from_args(args: argparse.Namespace) -> Config:
    """The run's configuration; every path checked before anything starts."""
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2 ** 31)
    out = args.out
    if out is None:
        out = Path("kubemc-out") / "maelstrom" / time.strftime("%Y%m%dT%H%M%S")
        out = _fresh_dir(out)
    cfg = Config(command=tuple(maelstrom.parse_command(args.bin)), out=out, nodes=args.nodes,
                 time_limit=args.time_limit, rate=args.rate, concurrency=args.concurrency,
                 nemesis=args.nemesis, nemesis_interval=args.nemesis_interval,
                 latency_ms=args.latency, timeout=args.timeout, seed=seed)
    if args.check_budget <= 0:
        raise BadInput(f"--check-budget must be positive, not {args.check_budget}")
    check_out_dir(out)
    if args.junit is not None:
        check_new_file(args.junit, "--junit")
    make_out_dir(out)
    return cfg


def _fresh_dir(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists():
        candidate = path.with_name(f"{path.name}-{n}")
        n += 1
    return candidate


# ---------------------------------------------------------------------------
# judging
# ---------------------------------------------------------------------------


@attrs.define
class Check:
    name: str
    status: str          # pass | fail | skip
    message: str
    details: list[str] = attrs.Factory(list)

    def to_json(self) -> dict:
        return {"name": self.name, "status": self.status, "message": self.message,
                "details": self.details}


@attrs.define
class Judgement:
    outcome: Outcome
    checks: list[Check]
    operations: list[Operation]
    linearizability: Result | None
    files: dict[str, str]
    check_seconds: float
    window: Window | None = None

    @property
    def passed(self) -> bool:
        return all(c.status != FAIL for c in self.checks)

    @property
    def exit_code(self) -> int:
        return HOLDS if self.passed else VIOLATED

    @property
    def verdict(self) -> str:
        if self.passed:
            return "PASS"
        failed = [c.name for c in self.checks if c.status == FAIL]
        return "FAIL (" + ", ".join(failed) + ")"

    def op_counts(self) -> dict:
        by_status = Counter(op.status for op in self.operations)
        by_f = Counter((op.f, op.status) for op in self.operations)
        return {"total": len(self.operations), "ok": by_status["ok"], "fail": by_status["fail"],
                "info": by_status[INFO],
                "by_f": {f: {s: by_f[(f, s)] for s in ("ok", "fail", INFO)}
                         for f in ("read", "write", "cas")}}


def _examples(outcome: Outcome, kinds) -> list[str]:
    return [f"{p.at:6.2f} s  {p.detail}" for p in outcome.problems if p.kind in kinds]


def judge(outcome: Outcome, budget: float | None = 60.0) -> Judgement:
    """Check what a run observed; write the failing window and trace under ``out``."""
    cfg = outcome.config
    ops = outcome.recorder.operations()
    counts = outcome.problem_counts
    checks: list[Check] = []
    files = {"out": str(cfg.out), "history": str(cfg.out / maelstrom.HISTORY)}

    missing = [n for n in outcome.nodes if not n.init_ok]
    init_ok = not missing
    if init_ok:
        checks.append(Check("init", PASS, f"{len(outcome.nodes)}/{len(outcome.nodes)} nodes "
                            "answered init_ok"))
    else:
        why = []
        for n in missing:
            if n.crashed:
                why.append(f"{n.id} exited (status {n.exit_status}) before answering init")
            else:
                why.append(next((p.detail for p in outcome.problems
                                 if p.kind == "init" and p.node == n.id),
                                f"{n.id} did not answer init"))
        checks.append(Check("init", FAIL, f"{len(missing)}/{len(outcome.nodes)} nodes did not "
                            f"complete the init handshake: {why[0]}", why))

    bad = {k: counts.get(k, 0) for k in PROTOCOL_KINDS if counts.get(k, 0)}
    if bad:
        summary = ", ".join(f"{v} {k}" for k, v in bad.items())
        first = next(p for p in outcome.problems if p.kind in bad)
        checks.append(Check("protocol", FAIL, f"{sum(bad.values())} protocol errors ({summary}); "
                            f"first: {first.detail}", _examples(outcome, bad)))
    else:
        checks.append(Check("protocol", PASS, "every stdout line was a well-formed, correctly "
                            "addressed message"))

    if counts.get("exited"):
        first = next(p for p in outcome.problems if p.kind == "exited")
        checks.append(Check("nodes-up", FAIL, f"{counts['exited']} node(s) exited during the "
                            f"run; first: {first.detail}", _examples(outcome, ("exited",))))
    else:
        checks.append(Check("nodes-up", PASS, "no node exited before the end of the run"))

    lin = window = None
    t0 = time.perf_counter()
    n_ok = sum(1 for op in ops if op.status == "ok")
    if not init_ok:
        checks.append(Check("availability", SKIP, "no workload: the init handshake failed"))
        checks.append(Check("linearizable", SKIP, "no workload: the init handshake failed"))
    else:
        if n_ok:
            checks.append(Check("availability", PASS, f"{n_ok} of {len(ops)} operations "
                                "succeeded"))
        else:
            checks.append(Check("availability", FAIL, f"none of {len(ops)} operations "
                                "succeeded: every request failed or went unanswered, so the "
                                "history shows nothing"))
        lin = check(ops, "register", budget=budget)
        keys = len({op.key for op in ops})
        if lin.verdict == LINEARIZABLE:
            checks.append(Check("linearizable", PASS, f"{len(ops)} operations on {keys} keys "
                                f"are linearizable"))
        elif lin.verdict == NOT_LINEARIZABLE:
            window = shrink(lin.failure)
            files.update(_write_violation(outcome, window))
            checks.append(Check("linearizable", FAIL, window.failure.message,
                                window_lines(window, outcome, ops)))
        else:
            checks.append(Check("linearizable", FAIL, f"undecided: {len(lin.unknown_keys)} of "
                                f"{keys} keys not checked within --check-budget {budget:g} s "
                                "(raise it)"))
    return Judgement(outcome, checks, ops, lin, files, time.perf_counter() - t0, window)


@attrs.frozen
class Window:
    """The smallest failing window of a non-linearizable history.

    ``ops`` (in call order) are not linearizable by themselves, and their
    failure implies the whole history's. ``from_any`` says the window was cut
    from the front: it fails whatever value the key held when it began.
    ``failure`` is the checker's account of the window (culprit and longest
    linearization) from ``initial``, the starting value that explains most.
    """

    key: Any
    ops: tuple[Operation, ...]
    failure: Failure
    from_any: bool
    initial: Any
    prefix_ops: int            # operations in the checker's failing prefix

    @property
    def culprit(self) -> Operation | None:
        return self.failure.culprit


class _Fresh:
    """A value no operation mentions: what any such initial value looks like."""

    def __repr__(self):
        return "?"


class _RegisterFrom(Register):
    """The register, starting from a given value instead of nil."""

    def __init__(self, initial):
        self._initial = initial

    def init(self):
        return self._initial


def _may_change(op: Operation) -> bool:
    return op.f in ("write", "cas") and op.status != "fail"


def _observer(op: Operation) -> bool:
    return (op.f == "read" and op.status == "ok") or (op.f == "cas" and op.status == "fail")


def _initial_values(ops) -> list:
    seen = {NIL}
    for op in ops:
        for v in (op.input if op.f == "cas" and isinstance(op.input, list) else [op.input]):
            seen.add(freeze(v))
        if op.f == "read" and op.status == "ok":
            seen.add(freeze(op.output))
    return sorted(seen, key=repr) + [_Fresh()]


def _failures(ops, from_any: bool, deadline: float | None = None) -> list[Failure] | None:
    """The failures of ``ops`` from every candidate initial value, or None if one
    linearizes (or if ``deadline``, a ``time.monotonic()`` instant, passes first)."""
    starts = _initial_values(ops) if from_any else [NIL]
    found = []
    for v in starts:
        budget = None if deadline is None else deadline - time.monotonic()
        if budget is not None and budget <= 0:
            return None
        result = check(ops, _RegisterFrom(v), budget=budget)
        if result.verdict != NOT_LINEARIZABLE:
            return None
        found.append(result.failure)
    return found


def shrink(failure: Failure, budget: float = 10.0) -> Window:
    """Cut the checker's failing prefix down to the smallest window that still fails.

    ``failure.ops`` is the shortest failing *prefix* of one key's history (the
    cut at the first return no linearization explains); two sound reductions
    follow, each kept only if what remains is still not linearizable:

    1. *front cut*: drop the longest run of early operations that all
       returned before the rest began, keeping those of its writes and cas
       whose outcome is unknown (they may take effect at any later time),
       provided what is kept fails from **every** initial value (nil, each
       value it mentions, and one it does not: all others look alike to it).
       Sound: in any linearization of the whole, the dropped operations come
       before the rest, and the unknown ones that land among them may as
       well never happen — so the kept part would linearize from the value
       the dropped part left;
    2. *observations*: drop, latest first, operations that change nothing
       (``ok`` reads, ``fail``ed cas): they only constrain, so if the rest
       still fails, so did the whole. Operations that may change the value
       are never dropped (that could invent a violation).

    ``budget`` seconds bound the search: when they run out, the smallest
    window found so far is the answer.
    """
    deadline = time.monotonic() + budget
    ops = list(failure.ops)
    culprit = failure.culprit
    best, from_any = ops, False
    pos = ops.index(culprit) if culprit in ops else len(ops) - 1
    for k in range(pos, 0, -1):
        head, rest = ops[:k], ops[k:]
        begin = min(op.call for op in rest)
        if any(_may_change(op) and op.ret is not None and op.ret >= begin for op in head):
            continue
        carried = [op for op in head if _may_change(op) and op.ret is None]
        trial = sorted(carried + rest, key=lambda op: op.call)
        if _failures(trial, True, deadline) is not None:
            best, from_any = trial, True
            break
    for op in reversed(list(best)):
        if op is culprit or not _observer(op):
            continue
        trial = [o for o in best if o is not op]
        if _failures(trial, from_any, deadline) is not None:
            best = trial
    found = _failures(best, from_any, time.monotonic() + budget)
    if found is None:                 # out of time: the checker's own window stands
        best, from_any, found = ops, False, [failure]
    # From each initial value the search fails at some culprit's return; nothing
    # invoked after the latest of those returns is needed.
    cut = max(f.culprit.ret for f in found)
    best = [op for op in best if op.call <= cut]
    chosen = max(found, key=lambda f: len(f.linearization))
    initial = chosen.states[0] if chosen.states else None
    return Window(failure.key, tuple(best), chosen, from_any, initial, len(failure.ops))


def _rel(outcome: Outcome, t: int | None) -> float | None:
    """A history time (monotonic ns) as seconds since the nodes started."""
    return None if t is None else (t - outcome.t0_ns) / 1e9


def _show(v: Any) -> str:
    return "nil" if v is None or v is NIL else repr(v)


def window_lines(w: Window, outcome: Outcome, ops: list[Operation] = ()) -> list[str]:
    """The window, one operation per line; ``ops``, the whole history's operations,
    tell an operation still running at the cut from one whose outcome is unknown."""
    final = {op.index: op.status for op in ops}
    lines = []
    if w.from_any:
        lines.append("(the key may hold any value when the window begins)")
    for op in w.ops:
        start, end = _rel(outcome, op.call), _rel(outcome, op.ret)
        span = f"{start:7.3f}–{end:7.3f} s" if end is not None else f"{start:7.3f}–    ?   s"
        if op.f == "cas" and isinstance(op.input, list):
            arg = f" {_show(op.input[0])}→{_show(op.input[1])}"
        elif op.f == "write":
            arg = f" {_show(op.input)}"
        else:
            arg = ""
        res = {"ok": f"ok {_show(op.output)}" if op.f == "read" else "ok",
               "fail": "fail", INFO: "unknown"}[op.status]
        if op.status == INFO and final.get(op.index, INFO) != INFO:
            res = "still running when the window closes"
        mark = "   ← no linearization explains this" if op is w.culprit else ""
        lines.append(f"{span}  process {op.process:<3} {op.f}{arg} → {res}{mark}")
    return lines


@attrs.frozen
class _Violation:
    """What :func:`conformance.report.write_violation` and ``write_junit`` expect."""

    check: str
    message: str
    ops: tuple
    window: tuple


def _write_violation(outcome: Outcome, w: Window) -> dict[str, str]:
    cfg = outcome.config
    v = _Violation("linearizable", w.failure.message, tuple(w.ops), tuple(w.ops))
    meta = {"model": "register", "target": "maelstrom", "key": w.key,
            "initial": "any" if w.from_any else "nil", "seed": cfg.seed,
            "command": reproduce_command(cfg),
            "culprit": None if w.culprit is None else w.culprit.to_json(),
            "linearization": [w.failure.ops[i].to_json() for i in w.failure.linearization],
            "note": "the smallest failing window of history.jsonl: these operations alone are "
                    "not linearizable" + (" from any initial value" if w.from_any else "")}
    files = write_violation(cfg.out, v, meta)
    return {"window": files["window_jsonl"], "trace": files["window_itf"]}


def reproduce_command(cfg: Config) -> str:
    return shlex.join(["kubemc", "conform", "maelstrom", "--bin", shlex.join(cfg.command),
                       "--nodes", str(cfg.nodes), "--time-limit", f"{cfg.time_limit:g}",
                       "--rate", f"{cfg.rate:g}", "--concurrency", str(cfg.clients),
                       "--nemesis", cfg.nemesis, "--seed", str(cfg.seed)])


# ---------------------------------------------------------------------------
# reports
# ---------------------------------------------------------------------------


def to_json(j: Judgement) -> dict:
    o = j.outcome
    return {
        "target": "maelstrom", "workload": "lin-kv",
        "verdict": "pass" if j.passed else "fail", "exit_code": j.exit_code,
        "config": o.config.to_json(), "reproduce": reproduce_command(o.config),
        "checks": [c.to_json() for c in j.checks],
        "operations": j.op_counts(),
        "partitions": o.partitions,
        "messages": o.messages,
        "elapsed_seconds": round(o.elapsed, 3),
        "workload_seconds": round(o.workload_seconds, 3),
        "check_seconds": round(j.check_seconds, 3),
        "nodes": [n.report() for n in o.nodes],
        "problems": {"kinds": maelstrom.PROBLEM_KINDS, "counts": dict(o.problem_counts),
                     "examples": [p.to_json() for p in o.problems]},
        "notes": o.notes,
        "linearizability": None if j.linearizability is None else j.linearizability.to_json(),
        "window": None if j.window is None else {
            "key": j.window.key, "initial": "any" if j.window.from_any else "nil",
            "message": j.window.failure.message,
            "culprit": None if j.window.culprit is None else j.window.culprit.index,
            "ops": [op.to_json() for op in j.window.ops]},
        "files": j.files,
    }


def summary_lines(j: Judgement) -> list[str]:
    o, cfg = j.outcome, j.outcome.config
    c = j.op_counts()
    lines = [f"kubemc conform maelstrom --bin {shlex.quote(shlex.join(cfg.command))}",
             f"  {cfg.nodes} nodes, {cfg.clients} clients, rate {cfg.rate:g}/s, "
             f"time limit {cfg.time_limit:g} s, nemesis {cfg.nemesis}, seed {cfg.seed}"]
    per_f = ", ".join(f"{f} {v['ok']}/{v['fail']}/{v[INFO]}" for f, v in c["by_f"].items())
    lines.append(f"  operations  {c['total']}: ok {c['ok']}, fail {c['fail']}, "
                 f"unknown {c['info']}   (ok/fail/unknown: {per_f})")
    parts = ", ".join(f"{' '.join(p['sides'][0])} | {' '.join(p['sides'][1])} "
                      f"{p['start']:.1f}–{(p['end'] if p['end'] is not None else 0):.1f} s"
                      for p in o.partitions[:4])
    more = f", … ({len(o.partitions) - 4} more)" if len(o.partitions) > 4 else ""
    lines.append(f"  partitions  {len(o.partitions)}" + (f": {parts}{more}" if parts else ""))
    m = o.messages
    lines.append(f"  messages    {m.get('sent', 0)} sent, {m.get('dropped', 0)} dropped by "
                 f"partitions, {m.get('undeliverable', 0)} to exited nodes")
    lines.append(f"  elapsed     {o.elapsed:.1f} s (workload {o.workload_seconds:.1f} s), "
                 f"check {j.check_seconds:.2f} s")
    for n in o.notes:
        lines.append(f"  note        {n}")
    for chk in j.checks:
        lines.append(f"  {chk.status.upper():4}  {chk.name:<13} {chk.message}")
        shown = chk.details if chk.name == "linearizable" else chk.details[:5]
        if chk.status == FAIL and chk.details and not (chk.name == "init" and len(chk.details) == 1):
            if chk.name == "linearizable" and j.window is not None:
                lines.append(f"        smallest failing window: {len(j.window.ops)} operations "
                             f"on key {j.window.key} (of the {j.window.prefix_ops} up to the "
                             "violation):")
            for d in shown:
                lines.append(f"          {d}")
    for name in ("history", "window", "trace"):
        if name in j.files:
            lines.append(f"  {name + ':':<11} {j.files[name]}")
    if not j.passed:
        for n in o.nodes:
            tail = n.stderr_tail(2)
            if tail and (n.crashed or not n.init_ok):
                lines.append(f"  {n.id} stderr: " + " ⏎ ".join(tail))
        lines.append(f"  reproduce:  {reproduce_command(cfg)}")
    lines.append(f"verdict: {j.verdict}")
    return lines


# What each check holds the program to, and where that comes from (JUnit and --json).
STATEMENTS = {
    "init": ("every node answers init {node_id, node_ids} with init_ok",
             "Maelstrom doc/protocol.md, Initialization"),
    "protocol": ("stdout carries only {src, dest, body} messages with the node's own src, to "
                 "known nodes; every reply answers one request, once, with the right type",
                 "Maelstrom doc/protocol.md, Messages and Message Bodies; doc/workloads.md, lin-kv"),
    "nodes-up": ("no node exits before the run ends", "Maelstrom: a node process that exits "
                 "fails the test"),
    "availability": ("at least one operation succeeds", "kubemc: an empty history shows nothing"),
    "linearizable": ("every operation takes effect atomically between its request and its "
                     "reply; each key is a read/write/cas register",
                     "Herlihy & Wing, TOPLAS 1990; Maelstrom doc/workloads.md, lin-kv"),
}


@attrs.frozen
class _JUnitCheck:
    name: str
    ok: bool
    seconds: float
    violations: list
    statement: str
    source: str


@attrs.frozen
class _JUnitRun:
    """A :class:`Judgement` in the shape :func:`conformance.report.write_junit` reads."""

    run_id: str
    seed: int
    operations: int
    ops_per_second: float
    fault_count: int
    duration: float
    check_seconds: float
    checks: list


def write_junit(j: Judgement, path: Path) -> None:
    from kubemc.conformance.report import write_junit as write

    o = j.outcome
    checks = []
    for c in j.checks:
        if c.status == SKIP:          # not run: neither passed nor failed
            continue
        violations = []
        if c.status == FAIL:
            window = tuple(j.window.ops) if c.name == "linearizable" and j.window else ()
            violations = [_Violation(c.name, c.message, window, window)]
        statement, source = STATEMENTS[c.name]
        seconds = j.check_seconds if c.name == "linearizable" else 0.0
        checks.append(_JUnitCheck(c.name, c.status == PASS, seconds, violations, statement,
                                  source))
    n = len(j.operations)
    run = _JUnitRun(o.config.out.name, o.config.seed, n,
                    n / o.workload_seconds if o.workload_seconds else 0.0, len(o.partitions),
                    o.elapsed, j.check_seconds, checks)
    write(run, path, target="maelstrom")


class _Progress(ProgressLine):
    """The runner's status line (ops, partitions, elapsed) on stderr: redrawn in place
    on a terminal, every 5 s in a log."""

    def __init__(self, limit: float):
        super().__init__(limit, every=5.0)
        self._last_print = time.monotonic()    # the first line after 5 s, not at once
        self.text = ""

    def line(self, ops, faults, watch_events, extra=""):
        return extra

    def __call__(self, text: str) -> None:
        self.text = text
        self.update(0, 0, 0, extra=text)

    def close(self, show_last: bool = True) -> None:
        live = self._live is not None
        if live and not show_last:
            from rich.text import Text
            self._live.update(Text(""))
        super().close()
        if not live and show_last and self.text:
            self.message(self.text)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    progress = _Progress(cfg.time_limit)
    try:
        outcome = maelstrom.run(cfg, progress=progress)
    except (KeyboardInterrupt, Interrupted) as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        progress.close(show_last=False)
        print(f"kubemc conform maelstrom: interrupted by {signal.Signals(signum).name}; every "
              f"node process was stopped (partial history: {cfg.out / maelstrom.HISTORY})",
              file=sys.stderr)
        return exit_code(signum)
    except KubemcError:
        progress.close(show_last=False)
        raise
    progress.close()
    judgement = judge(outcome, budget=args.check_budget)
    result = to_json(judgement)
    write_json_atomic(cfg.out / "report.json", result)
    if args.junit is not None:
        write_junit(judgement, args.junit)
    if args.json:
        print(json.dumps(result, indent=1, default=str))
    else:
        from rich.console import Console

        console = Console(highlight=False)
        for line in summary_lines(judgement):
            style = None
            if line.startswith("  FAIL") or line.startswith("verdict: FAIL"):
                style = "bold red"
            elif line.startswith("verdict: PASS"):
                style = "bold green"
            console.print(line, style=style, markup=False, soft_wrap=True)
    return judgement.exit_code


def main(argv: list[str] | None = None) -> int:
    """``python -m conformance.adapters.maelstrom.cli ARGS`` is ``kubemc conform maelstrom
    ARGS``: the same usage errors, exit codes and crash reports."""
    from kubemc.conformance.cli import main_of

    return main_of("maelstrom", sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())

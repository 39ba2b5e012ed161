"""The checks of a Maelstrom run, and its verdict.

The run passes when every check passes —

``init``          every node answered ``init`` with ``init_ok``;
``protocol``      nothing on stdout but well-formed, correctly addressed
                  messages, and every reply answers a request, once, with the
                  right type;
``nodes-up``      no node exited before the run ended;
``availability``  at least one operation succeeded (an empty history shows
                  nothing);
``linearizable``  the history is linearizable, key by key, as a register;
                  a violation is cut to its smallest failing window
                  (:mod:`conformance.validate.window`). A check out of
                  ``--check-budget`` is *undecided*: not a pass (nothing was
                  shown) and not a violation (nothing was found), so the run
                  exits 4, as every undecided verdict does (DESIGN), unless
                  another check failed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import attrs

from kubemc.checker.errors import HOLDS, UNDECIDED, VIOLATED
from kubemc.conformance.adapters.maelstrom.run import HISTORY, MaelstromObservation
from kubemc.conformance.history import INFO, Operation
from kubemc.conformance.linearizability import (LINEARIZABLE, NOT_LINEARIZABLE,
                                                LinearizabilityOutcome, check)
from kubemc.conformance.model.register import NIL, Register
from kubemc.conformance.validate.window import Window, smallest_window

PROTOCOL_KINDS = ("garbage", "unknown-src", "unknown-dest")
PASS, FAIL, SKIP, UNDECIDED_CHECK = "pass", "fail", "skip", "undecided"

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




@attrs.define
class MaelstromCheck:
    name: str
    status: str          # pass | fail | skip | undecided
    message: str
    details: list[str] = attrs.Factory(list)

    def to_json(self) -> dict:
        return {"name": self.name, "status": self.status, "message": self.message,
                "details": self.details}


@attrs.define
class MaelstromRunResult:
    outcome: MaelstromObservation
    checks: list[MaelstromCheck]
    operations: list[Operation]
    linearizability: LinearizabilityOutcome | None
    files: dict[str, str]
    check_seconds: float
    window: Window | None = None

    @property
    def passed(self) -> bool:
        return all(c.status in (PASS, SKIP) for c in self.checks)

    @property
    def exit_code(self) -> int:
        if self.passed:
            return HOLDS
        return VIOLATED if any(c.status == FAIL for c in self.checks) else UNDECIDED

    @property
    def verdict(self) -> str:
        if self.passed:
            return "PASS"
        failed = [c.name for c in self.checks if c.status == FAIL]
        if failed:
            return "FAIL (" + ", ".join(failed) + ")"
        undecided = [c.name for c in self.checks if c.status == UNDECIDED_CHECK]
        return "UNDECIDED (" + ", ".join(undecided) + ")"

    def op_counts(self) -> dict:
        by_status = Counter(op.status for op in self.operations)
        by_f = Counter((op.f, op.status) for op in self.operations)
        return {"total": len(self.operations), "ok": by_status["ok"], "fail": by_status["fail"],
                "info": by_status[INFO],
                "by_f": {f: {s: by_f[(f, s)] for s in ("ok", "fail", INFO)}
                         for f in ("read", "write", "cas")}}




def _examples(outcome: MaelstromObservation, kinds) -> list[str]:
    return [f"{p.at:6.2f} s  {p.detail}" for p in outcome.problems if p.kind in kinds]


def judge(outcome: MaelstromObservation, budget: float | None = 60.0) -> MaelstromRunResult:
    """Check what a run observed (the report writes the failing window's files:
    :func:`conformance.report.maelstrom.write_violation`)."""
    cfg = outcome.config
    ops = outcome.recorder.operations()
    counts = outcome.problem_counts
    checks: list[MaelstromCheck] = []

    def add(name: str, status: str, message: str, details=()) -> None:
        checks.append(MaelstromCheck(name, status, message, list(details)))

    files = {"out": str(cfg.out), "history": str(cfg.out / HISTORY)}

    missing = [n for n in outcome.nodes if not n.init_ok]
    init_ok = not missing
    if init_ok:
        add("init", PASS, f"{len(outcome.nodes)}/{len(outcome.nodes)} nodes "
            "answered init_ok")
    else:
        why = []
        for n in missing:
            if n.crashed:
                why.append(f"{n.id} exited (status {n.exit_status}) before answering init")
            else:
                why.append(next((p.detail for p in outcome.problems
                                 if p.kind == "init" and p.node == n.id),
                                f"{n.id} did not answer init"))
        add("init", FAIL, f"{len(missing)}/{len(outcome.nodes)} nodes did not "
            f"complete the init handshake: {why[0]}", why)

    bad = {k: counts.get(k, 0) for k in PROTOCOL_KINDS if counts.get(k, 0)}
    if bad:
        summary = ", ".join(f"{v} {k}" for k, v in bad.items())
        first = next(p for p in outcome.problems if p.kind in bad)
        add("protocol", FAIL, f"{sum(bad.values())} protocol errors ({summary}); "
            f"first: {first.detail}", _examples(outcome, bad))
    else:
        add("protocol", PASS, "every stdout line was a well-formed, correctly "
            "addressed message")

    if counts.get("exited"):
        first = next(p for p in outcome.problems if p.kind == "exited")
        add("nodes-up", FAIL, f"{counts['exited']} node(s) exited during the "
            f"run; first: {first.detail}", _examples(outcome, ("exited",)))
    else:
        add("nodes-up", PASS, "no node exited before the end of the run")

    lin = window = None
    t0 = time.perf_counter()
    n_ok = sum(1 for op in ops if op.status == "ok")
    if not init_ok:
        add("availability", SKIP, "no workload: the init handshake failed")
        add("linearizable", SKIP, "no workload: the init handshake failed")
    else:
        if n_ok:
            add("availability", PASS, f"{n_ok} of {len(ops)} operations "
                "succeeded")
        else:
            add("availability", FAIL, f"none of {len(ops)} operations "
                "succeeded: every request failed or went unanswered, so the "
                "history shows nothing")
        lin = check(ops, "register", budget=budget)
        keys = len({op.key for op in ops})
        if lin.verdict == LINEARIZABLE:
            add("linearizable", PASS, f"{len(ops)} operations on {keys} keys "
                f"are linearizable")
        elif lin.verdict == NOT_LINEARIZABLE and lin.failure is not None:
            window = smallest_window(lin.failure, Register())
            add("linearizable", FAIL, window.failure.message,
                window_lines(window, outcome, ops))
        else:
            add("linearizable", UNDECIDED_CHECK, f"{len(lin.unknown_keys)} of "
                f"{keys} keys not checked within --check-budget {budget:g} s "
                "(raise it)")
    return MaelstromRunResult(outcome, checks, ops, lin, files, time.perf_counter() - t0, window)




def _rel(outcome: MaelstromObservation, t: int | None) -> float | None:
    """A history time (monotonic ns) as seconds since the nodes started."""
    return None if t is None else (t - outcome.t0_ns) / 1e9


def _show(v: Any) -> str:
    return "nil" if v is None or v is NIL else repr(v)


def window_lines(w: Window, outcome: MaelstromObservation,
                 ops: Sequence[Operation] = ()) -> list[str]:
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

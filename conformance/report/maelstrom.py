"""Reports of ``kubemc conform maelstrom``: the ``--json`` document, the
human summary, JUnit XML, and the failing window's files.

Files under ``--out``: ``history.jsonl`` (the history, Jepsen-style, model
``register``), ``report.json`` (the ``--json`` document), each node's stderr,
and on a violation ``violations/linearizable.jsonl`` (the smallest failing
window, :mod:`conformance.validate.window`) and
``violations/linearizable.itf.json`` (the same window as an ITF trace). The
JUnit XML and the window files are written by the writers every target
shares (:mod:`conformance.report.junit`, :mod:`conformance.report.files`).
"""

from __future__ import annotations

import shlex
from pathlib import Path

import attrs

from kubemc.conformance.adapters.maelstrom.config import Config
from kubemc.conformance.adapters.maelstrom.protocol import PROBLEM_KINDS
from kubemc.conformance.adapters.maelstrom.run import MaelstromObservation
from kubemc.conformance.history import INFO
from kubemc.conformance.report.files import write_violation as write_window_files
from kubemc.conformance.report.junit import write_checks_junit
from kubemc.conformance.report.summary import describe_op
from kubemc.conformance.validate.maelstrom import (FAIL, SKIP, STATEMENTS, UNDECIDED_CHECK,
                                                   MaelstromRunResult)
from kubemc.conformance.validate.violation import UNDECIDED_NOTE, CheckResult
from kubemc.conformance.validate.window import Window


@attrs.frozen
class _Violation:
    """A violation in the shape the shared writers read (window files, JUnit)."""

    check: str
    message: str
    ops: tuple
    window: tuple


def write_violation(outcome: MaelstromObservation, w: Window) -> dict[str, str]:
    """``violations/linearizable.jsonl`` and ``.itf.json``: the window and its trace."""
    cfg = outcome.config
    v = _Violation("linearizable", w.failure.message, tuple(w.ops), tuple(w.ops))
    meta = {"model": "register", "target": "maelstrom", "key": w.key,
            "initial": "any" if w.from_any else "nil", "seed": cfg.seed,
            "command": reproduce_command(cfg),
            "culprit": None if w.culprit is None else w.culprit.to_json(),
            "linearization": [w.failure.ops[i].to_json() for i in w.failure.linearization],
            "note": "the smallest failing window of history.jsonl: these operations alone are "
                    "not linearizable" + (" from any initial value" if w.from_any else "")}
    files = write_window_files(cfg.out, v, meta)
    return {"window": files["window_jsonl"], "trace": files["window_itf"]}


def reproduce_command(cfg: Config) -> str:
    return shlex.join(["kubemc", "conform", "maelstrom", "--bin", shlex.join(cfg.command),
                       "--nodes", str(cfg.nodes), "--time-limit", f"{cfg.time_limit:g}",
                       "--rate", f"{cfg.rate:g}", "--concurrency", str(cfg.clients),
                       "--nemesis", cfg.nemesis, "--seed", str(cfg.seed)])


# ---------------------------------------------------------------------------
# reports
# ---------------------------------------------------------------------------




def to_json(j: MaelstromRunResult) -> dict:
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
        "problems": {"kinds": PROBLEM_KINDS, "counts": dict(o.problem_counts),
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


def summary_lines(j: MaelstromRunResult) -> list[str]:
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
        lone_init = chk.name == "init" and len(chk.details) == 1
        if chk.status == FAIL and chk.details and not lone_init:
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
        for node in o.nodes:
            tail = node.stderr_tail(2)
            if tail and (node.crashed or not node.init_ok):
                lines.append(f"  {node.id} stderr: " + " ⏎ ".join(tail))
        lines.append(f"  reproduce:  {reproduce_command(cfg)}")
    lines.append(f"verdict: {j.verdict}")
    return lines




def write_junit(j: MaelstromRunResult, path: Path) -> None:
    """The JUnit XML every target writes: one test case per check run (a
    skipped check neither passed nor failed, and is left out)."""
    o = j.outcome
    checks = []
    for c in j.checks:
        if c.status == SKIP:
            continue
        violations = []
        if c.status == FAIL:
            window = tuple(j.window.ops) if c.name == "linearizable" and j.window else ()
            violations = [_Violation(c.name, c.message, window, window)]
        statement, source = STATEMENTS[c.name]
        seconds = j.check_seconds if c.name == "linearizable" else 0.0
        note = f"{UNDECIDED_NOTE}: {c.message}" if c.status == UNDECIDED_CHECK else ""
        checks.append(CheckResult(c.name, statement, source, violations, seconds, note=note))
    n = len(j.operations)
    props = (("run_id", o.config.out.name), ("seed", o.config.seed), ("operations", n),
             ("ops_per_second", f"{(n / o.workload_seconds if o.workload_seconds else 0.0):.1f}"),
             ("faults", len(o.partitions)), ("duration_seconds", f"{o.elapsed:.1f}"),
             ("check_seconds", f"{j.check_seconds:.2f}"))
    write_checks_junit(path, "maelstrom", props, checks,
                       lambda v: [describe_op(op) for op in list(v.window)[:20]])

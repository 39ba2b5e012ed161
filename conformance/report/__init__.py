"""Reports of a conformance run: a human summary, JSON, JUnit XML, the
violation files, and the live progress line.

Files a run writes into its output directory (always when a check fails;
also on success when ``--out`` is given):

``history.jsonl``           every event of the run (:mod:`conformance.history`
                            format; the ``#meta`` line says how it was made)
``kv-history.jsonl``        exactly what the linearizability checker was given
                            (model ``etcd-kv``): ``kubemc check-history`` reads it
``report.json``             the ``--json`` document
``violations/CHECK.jsonl``  per failed check: the smallest failing window, as
                            history events (invoke / completion lines)
``violations/CHECK.itf.json``  the same window as an ITF trace, one state per
                            operation, for ITF viewers and ``kubemc trace show``
``etcd-m*.log``             the local cluster's member logs

Every file is created exclusively (:mod:`conformance.report.outputs`): a run
writes into a new or empty directory, never overwrites a file and never
removes one it did not create.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from kubemc.checker import itf
from kubemc.conformance.history import Event, Operation
from kubemc.conformance.report.outputs import create_exclusive, create_fresh, make_out_dir


def ops_to_events(ops) -> list[Event]:
    """Operations back to invoke / completion events, in time order (an
    ``info`` operation gets only its invocation: pending at the end reads as info)."""
    evs = []
    for op in ops:
        evs.append((op.call, 0, Event("invoke", op.process, op.f, op.key, op.input, op.call, None)))
        if op.status != "info":
            evs.append((op.ret, 1, Event(op.status, op.process, op.f, op.key, op.output, op.ret, None)))
    evs.sort(key=lambda t: (t[0], t[1]))
    return [Event(e.type, e.process, e.f, e.key, e.value, e.time, i) for i, (_, _, e) in enumerate(evs)]


def _plain(v):
    """A JSON value ITF can encode (no floats, no nulls inside lists)."""
    if isinstance(v, float):
        return str(v)
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items() if x is not None}
    if isinstance(v, (list, tuple)):
        return [_plain(x) if x is not None else "null" for x in v]
    return "null" if v is None else v


def jsonl_writer(events, meta: dict | None = None):
    """A ``write(fh)`` for :func:`conformance.report.outputs.create_exclusive`:
    the history format of :mod:`conformance.history`, one event per line."""
    def write(fh):
        if meta:
            fh.write(json.dumps({"#meta": meta}, separators=(",", ":"), default=str) + "\n")
        for ev in events:
            fh.write(json.dumps(ev.to_json(), separators=(",", ":"), default=str) + "\n")
    return write


def json_writer(doc):
    def write(fh):
        json.dump(doc, fh, indent=1, default=str)
        fh.write("\n")
    return write


def write_violation(out_dir: Path, violation, meta: dict) -> dict:
    """Write one violation's window (JSONL + ITF) under fresh names; return the paths."""
    window = list(violation.window) or list(violation.ops)
    views = [{"op": _plain(op.to_json())} for op in window]
    actions = [(op.f, (op.process, op.key or "", op.status)) for op in window]
    config = {"target": meta.get("target", "etcd"), "run_id": meta.get("run_id", ""),
              "clients": meta.get("clients", 0), "nemesis": ",".join(meta.get("nemesis") or ()) or "none"}
    trace = itf.build({"property": violation.check, "kind": "history", "description": violation.message,
                       "model": "etcd", "engine": "conform-etcd", "seed": meta.get("seed"),
                       "config": config, "command": meta.get("command", "")}, views, actions)
    return write_window(out_dir, violation, window, meta, trace)


def write_window(out_dir: Path, violation, window: list, meta: dict, trace: dict) -> dict:
    """``violations/CHECK.jsonl`` (``window`` as history events) and
    ``violations/CHECK.itf.json`` (``trace``) under fresh names sharing one
    stem; return the paths.

    Why one function: every target names, places and pairs its violation
    files the same way; only the ITF states a target shows differ.
    """
    vdir = Path(out_dir) / "violations"
    vdir.mkdir(parents=True, exist_ok=True)
    jsonl = create_fresh(vdir, violation.check, ".jsonl",
                         jsonl_writer(ops_to_events(window), {**meta, "check": violation.check,
                                                              "message": violation.message}))
    itf_path = create_fresh(vdir, jsonl.name[: -len(".jsonl")], ".itf.json", json_writer(trace))
    return {"window_jsonl": str(jsonl), "window_itf": str(itf_path)}


def write_json_atomic(path: Path, doc: dict) -> None:
    """Write a new JSON file; FileExistsError rather than overwrite one."""
    create_exclusive(path, json_writer(doc))


def start_outputs(result, out_dir: Path, recorder, meta: dict, *, default: bool) -> Path:
    """Create the output directory and write ``history.jsonl`` into it;
    note both on ``result`` (``out_dir``, ``history_path``).

    ``default``: ``out_dir`` is the run's own ``./kubemc-out/…`` directory,
    which must be new (the run id is in its name); a ``--out`` directory was
    checked empty before the run, and may since hold the run's own files
    (an etcd cluster's logs).
    """
    if default:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        out_dir.mkdir()
    else:
        make_out_dir(out_dir)
    result.out_dir = str(out_dir)
    hist = create_exclusive(out_dir / "history.jsonl", jsonl_writer(recorder.events(), meta))
    result.history_path = str(hist)
    return out_dir


# --- human summary ------------------------------------------------------------------


def _describe_op(op: Operation) -> str:
    out = op.output
    if isinstance(out, dict) and "responses" in out and op.f == "watch":
        out = f"{len(out['responses'])} responses, end: {out.get('end')}"
    text = f"p{op.process} {op.f} {op.key or ''} {json.dumps(op.input, default=str)[:80]} -> {op.status} " \
           f"{json.dumps(out, default=str)[:120] if not isinstance(out, str) else out}"
    return text


def summary(result) -> str:
    """The human summary of a :class:`conformance.adapters.etcd.suite.RunResult`."""
    r = result
    lines = []
    verdict = "PASS" if r.passed else "FAIL"
    faults = ", ".join(f"{k} {v}" for k, v in r.faults.items()) or "none"
    lines.append(f"kubemc conform etcd: {verdict}  (run {r.run_id}, seed {r.seed}, "
                 f"{'local 3-member cluster' if r.local else ','.join(r.endpoints)})")
    lines.append(f"  operations  {r.operations} in {r.duration:.1f}s = {r.ops_per_second:.0f} ops/s  "
                 f"(ok {r.ok}, fail {r.fail}, unknown {r.info}); watch: {r.watch_streams} streams, "
                 f"{r.watch_events} events")
    lines.append(f"  faults      {r.fault_count} injected ({faults})")
    lines.append(f"  checking    {r.check_seconds:.2f}s")
    for c in r.checks:
        mark = "ok  " if c.ok else "FAIL"
        undecided = " (UNDECIDED)" if c.note.startswith("UNDECIDED") else ""
        lines.append(f"    {mark} {c.name:<20} {c.seconds:7.3f}s  {c.checked:>7} checked{undecided}")
    for c in r.checks:
        for v in c.violations:
            lines.extend(violation_lines(c, v))
            lines.append(f"    proof ({len(v.ops)} operations), window of {len(v.window)} operations:")
            for op in list(v.window)[:12] or list(v.ops)[:12]:
                lines.append("      " + _describe_op(op))
            if len(v.window) > 12:
                lines.append(f"      … {len(v.window) - 12} more in the window file")
    if r.problems:
        lines.append("")
        for p in r.problems:
            lines.append(f"  note: {p}")
    lines.extend(file_lines(r))
    return "\n".join(lines)


def violation_lines(check, violation) -> list[str]:
    """The head of a violation in a human summary (every target's reads alike)."""
    return ["", f"  violation of {violation.check}: {violation.message}",
            f"    property: {check.statement}", f"    source:   {check.source}"]


def file_lines(result) -> list[str]:
    """The files a run wrote, closing its human summary; none without an
    output directory."""
    r = result
    if not r.out_dir:
        return []
    return ["", f"  history: {r.history_path}" if r.history_path else f"  output: {r.out_dir}",
            *(f"  window:  {path}" for path in r.violation_files)]


# --- JUnit -------------------------------------------------------------------------------


def write_junit(result, path: str | os.PathLike, target: str = "etcd") -> None:
    """One test case per check, in a suite named after the target (junitparser)."""
    r = result
    props = (("run_id", r.run_id), ("seed", r.seed), ("operations", r.operations),
             ("ops_per_second", f"{r.ops_per_second:.1f}"), ("faults", r.fault_count),
             ("duration_seconds", f"{r.duration:.1f}"), ("check_seconds", f"{r.check_seconds:.2f}"))
    write_checks_junit(path, target, props, r.checks,
                       lambda v: [_describe_op(op) for op in list(v.window)[:20]])


def write_checks_junit(path: str | os.PathLike, target: str, props, checks, window) -> None:
    """The JUnit XML of a run: suite ``kubemc conform TARGET`` with
    ``props`` (name, value pairs), one test case per check; a failed one
    carries every violation, each with the lines ``window(violation)`` gives.

    Why one function: CI reads every target's report the same way; a target
    says only which figures it has and how it shows an operation.
    """
    from junitparser import Failure, JUnitXml, Properties, Property, TestCase, TestSuite

    suite = TestSuite(f"kubemc conform {target}")
    properties = Properties()
    for name, value in props:
        properties.add_property(Property(name, str(value)))
    suite.append(properties)
    for c in checks:
        case = TestCase(c.name, classname=f"conform.{target}", time=round(c.seconds, 4))
        if not c.ok:
            first = c.violations[0]
            fail = Failure(first.message[:500], type_=c.name)
            body = [f"property: {c.statement}", f"source: {c.source}"]
            for v in c.violations:
                body.append(f"- {v.message}")
                body.extend("    " + line for line in window(v))
            fail.text = "\n".join(body)
            case.result = [fail]
        suite.add_testcase(case)
    xml = JUnitXml()
    xml.add_testsuite(suite)
    write_junit_xml(xml, path)


def write_junit_xml(xml, path: str | os.PathLike) -> None:
    """A junitparser document into a new file (never over an existing one)."""
    def write(fh):
        fh.write(xml.tostring())
    create_exclusive(path, write, binary=True)


# --- progress line ---------------------------------------------------------------------


class ProgressLine:
    """``ops 12034 (405/s) | faults 7 | watch events 5102 | 31s / 60s``.

    On a terminal, a live line redrawn in place (rich); elsewhere (CI logs)
    the same line printed every ``every`` seconds. Goes to stderr, so that
    ``--json`` output on stdout stays clean.
    """

    def __init__(self, limit: float, enabled: bool = True, every: float = 10.0):
        self.limit = limit
        self.enabled = enabled
        self.every = every
        self.t0 = time.monotonic()
        self._last_print = 0.0
        self._live = None
        if enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.live import Live
            self._live = Live("", console=Console(stderr=True), refresh_per_second=4, transient=False)
            self._live.start()

    def start(self) -> None:
        """Traffic begins: elapsed time counts from here."""
        self.t0 = time.monotonic()
        self._last_print = 0.0

    def line(self, ops: int, faults: int, watch_events: int, extra: str = "") -> str:
        el = time.monotonic() - self.t0
        rate = ops / el if el > 0 else 0.0
        text = (f"ops {ops} ({rate:.0f}/s) | faults {faults} | watch events {watch_events} | "
                f"{el:.0f}s / {self.limit:.0f}s")
        return text + (f" | {extra}" if extra else "")

    def update(self, ops: int, faults: int, watch_events: int, extra: str = "") -> None:
        if not self.enabled:
            return
        text = self.line(ops, faults, watch_events, extra)
        if self._live is not None:
            from rich.text import Text
            self._live.update(Text(text))
        elif time.monotonic() - self._last_print >= self.every:
            self._last_print = time.monotonic()
            print(text, file=sys.stderr, flush=True)

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self._live is not None:
            self._live.console.print(text)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

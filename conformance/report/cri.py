"""Reports of a CRI conformance run: the human summary, JUnit XML, and the
violation files (the failing window as history events and as an ITF trace).

Files in the output directory (always when a check fails; also on success
with ``--out``): ``history.jsonl`` (every call and fault, the ``#meta`` line
says how the run was made), ``report.json`` (the ``--json`` document),
``violations/cri-model.jsonl`` and ``violations/cri-model.itf.json`` (the
window: the failing call and the earlier calls on the objects it concerns).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from kubemc.checker import itf
from kubemc.conformance.report.files import plain, write_window
from kubemc.conformance.report.junit import write_checks_junit
from kubemc.conformance.report.summary import file_lines, violation_lines


def _request(op) -> dict:
    return {k: v for k, v in (op.input or {}).items() if k != "kubemc"} if isinstance(op.input,
                                                                                      dict) else {}


def describe(op) -> str:
    """One line for a call or a fault."""
    target = (op.key or "")[:12]
    if op.process < 0:
        return f"fault {op.f} {target} -> {op.status} {json.dumps(op.output, default=str)[:80]}"
    req = _request(op)
    extra = ""
    if op.f == "StopContainer":
        extra = f" timeout={req.get('timeout', 0)}"
    if op.f in ("CreateContainer", "RunPodSandbox"):
        meta = (req.get("config") or {}).get("metadata") or {}
        extra = f" {meta.get('name')}#{meta.get('attempt', 0)}"
        if op.f == "CreateContainer":
            extra += f" ({(op.input.get('kubemc') or {}).get('script', '')})"
    out = op.output
    if op.status == "ok" and isinstance(out, dict):
        if "status" in out:
            st = out["status"]
            out = f"{st.get('state')}" + (f" exit {st.get('exit_code')}"
                                           if st.get("state") == "CONTAINER_EXITED" else "")
        elif "items" in out or "containers" in out:
            items = out.get("items", out.get("containers", []))
            out = "[" + ", ".join(f"{i.get('id', '')[:12]} {i.get('state')}" for i in items) + "]"
        else:
            out = json.dumps(out, default=str)[:90]
    elif isinstance(out, dict):
        out = f"{out.get('code')}: {out.get('message', '')[:90]}"
    return f"{op.f}({target}){extra} -> {op.status} {out}"


def progress_line(calls: int, faults: int, seconds: float, limit: float) -> str:
    """``calls 412 (27/s) | faults 2 | 15s / 60s``."""
    rate = calls / seconds if seconds > 0 else 0.0
    return f"calls {calls} ({rate:.0f}/s) | faults {faults} | {seconds:.0f}s / {limit:.0f}s"


def write_violation(out_dir: Path, violation, meta: dict) -> dict:
    window = list(violation.window)
    model = (violation.detail or {}).get("model_view", {})
    empty = {"sandboxes": {}, "containers": {}}
    views = [{"call": op.f, "target": op.key or "", "request": plain(_request(op)),
              "outcome": op.status, "answer": plain(op.output),
              # one model state the history allows after the call (before it, for the failing one)
              "model": plain(model.get(op.index, empty))} for op in window]
    actions = [(op.f, (op.key or "", op.status)) for op in window]
    trace = itf.build({"property": violation.check, "kind": "history", "description": violation.message,
                       "model": "cri", "engine": "conform-cri", "seed": meta.get("seed"),
                       "config": {"target": "cri", "run_id": meta.get("run_id", ""),
                                  "faults": ",".join(meta.get("faults") or ()) or "none"},
                       "command": meta.get("command", "")}, views, actions)
    return write_window(out_dir, violation, window, meta, trace)


def summary(r) -> str:
    """The human summary of a :class:`conformance.adapters.cri.suite.CriRunResult`."""
    verdict = "PASS" if r.passed else ("FAIL" if r.violations else "UNDECIDED")
    lines = [f"kubemc conform cri: {verdict}  (run {r.run_id}, seed {r.seed}, "
             f"{'private containerd' if r.local else r.endpoint}: {r.runtime})"]
    faults = ", ".join(f"{k} {v}" for k, v in sorted(r.faults.items())) or "none"
    lines.append(f"  calls       {r.calls} in {r.duration:.1f}s = {r.calls_per_second:.1f} calls/s "
                 f"(ok {r.ok}, error {r.fail}, unknown {r.info})")
    lines.append(f"  faults      {r.fault_count} injected ({faults})")
    lines.append(f"  checking    {r.check_seconds:.2f}s")
    for c in r.checks:
        lines.append(f"    {'ok  ' if c.ok else 'FAIL'} {c.name:<14} {c.seconds:7.3f}s  {c.checked:>6} "
                     f"checked  {c.note}")
    from kubemc.conformance.validate.cri import DIVERGENCES
    for name, n in sorted(r.divergences.items()):
        lines.append(f"  divergence  {name} ({n} calls): {DIVERGENCES[name]} — reported, not failed "
                     "(--strict fails on it)")
    for c in r.checks:
        for v in c.violations:
            lines.extend(violation_lines(c, v))
            if v.window:
                lines.append(f"    window ({len(v.window)} operations, the failing call last):")
                for op in list(v.window)[-15:]:
                    lines.append("      " + describe(op))
    for p in r.problems:
        lines.append(f"  note: {p}")
    lines.extend(file_lines(r))
    return "\n".join(lines)


def write_junit(r, path: str | os.PathLike) -> None:
    props = (("run_id", r.run_id), ("seed", r.seed), ("runtime", r.runtime),
             ("calls", r.calls), ("calls_per_second", f"{r.calls_per_second:.1f}"),
             ("faults", r.fault_count),
             ("divergences", ",".join(f"{k}={v}" for k, v in sorted(r.divergences.items()))),
             ("duration_seconds", f"{r.duration:.1f}"),
             ("check_seconds", f"{r.check_seconds:.2f}"))
    write_checks_junit(path, "cri", props, r.checks,
                       lambda v: [describe(op) for op in list(v.window)[-20:]])

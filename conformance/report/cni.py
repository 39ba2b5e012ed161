"""Reports of ``kubemc conform cni``: the human summary and the violation files.

Why a module apart from the etcd runner's: a CNI run's operations are plugin
executions, link snapshots and probes, not KV requests, and a reader of a
violation wants to see the plugin's stdin and stdout. The JSON report,
JUnit XML (:func:`conformance.report.junit.write_checks_junit`) and the history file
keep the shared formats.

``violations/CHECK.jsonl`` and ``violations/CHECK.itf.json`` hold, per failed
check, its first violation's window: the operations of the container
involved (or the probe), as history events and as an ITF trace with one
state per operation (``kubemc trace show`` prints it).
"""

from __future__ import annotations

import json
from pathlib import Path

from kubemc.checker import itf
from kubemc.conformance.report.files import plain, write_window
from kubemc.conformance.report.summary import file_lines

SHOW_PER_CHECK = 5


def describe(op) -> str:
    """One line for an operation of a CNI history."""
    inp = op.input if isinstance(op.input, dict) else {}
    out = op.output if isinstance(op.output, dict) else {}
    if op.f == "probe":
        return (f"probe {inp.get('proto')} {inp.get('sender')} {inp.get('src')} -> "
                f"{inp.get('receiver')} {inp.get('dst')}: delivered to {out.get('delivered_to')}, "
                f"source seen {out.get('seen_src')} {out.get('error') or ''}").rstrip()
    if op.f == "store":
        return f"store node {inp.get('node')} ({inp.get('label')}): {out.get('reservations')}"
    if op.f == "links":
        return (f"links after DEL of {op.key}: sandbox {out.get('pod_links')}, node veths "
                f"{[n for n, _ in out.get('node_links', [])]}")
    ips = [i.get("address") for i in (out.get("result") or {}).get("ips", [])] \
        if isinstance(out.get("result"), dict) else []
    tail = f" -> {', '.join(ips)}" if ips else ""
    err = f" error: {out.get('error')}" if out.get("error") else ""
    return (f"{op.f} {op.key or ''} node {inp.get('node')} pod {inp.get('pod')} "
            f"({inp.get('purpose')}) {op.status}{tail}{err}")


def summary(result) -> str:
    r = result
    verdict = "PASS" if r.passed else ("UNDECIDED" if r.undecided else "FAIL")
    lines = [f"kubemc conform cni: {verdict}  (run {r.run_id}, plugin {r.plugin}, cniVersion "
             f"{r.cni_version}, {r.nodes} nodes, {r.pods} pods)",
             f"  plugin calls {r.invocations} in {r.duration:.1f}s ({r.plugin_seconds:.1f}s inside "
             f"plugins); packets {r.probes}; checking {r.check_seconds:.2f}s"]
    if not r.complete:
        lines.append("  the plan did not complete within --time-limit: UNDECIDED unless a check failed")
    for c in r.checks:
        mark = "ok  " if c.ok else "FAIL"
        note = f"  ({c.note})" if c.note else ""
        lines.append(f"    {mark} {c.name:<20} {c.checked:>6} checked{note}")
    for c in r.checks:
        if not c.violations:
            continue
        lines.append("")
        lines.append(f"  violation of {c.name} ({len(c.violations)}): {c.statement}")
        lines.append(f"    source: {c.source}")
        for v in c.violations[:SHOW_PER_CHECK]:
            lines.append(f"    - {v.message}")
        if len(c.violations) > SHOW_PER_CHECK:
            lines.append(f"    … {len(c.violations) - SHOW_PER_CHECK} more in report.json")
        first = c.violations[0]
        if first.window:
            lines.append(f"    window of the first ({len(first.window)} operations):")
            lines.extend("      " + describe(op) for op in list(first.window)[:10])
    from kubemc.conformance.validate.cni_protocol import DIVERGENCES
    for name, n in sorted(r.divergences.items()):
        lines.append(f"  divergence  {name} ({n}): {DIVERGENCES[name]} — "
                     + ("failed under --strict" if r.strict else
                        "reported, not failed (--strict fails on it)"))
    for p in r.problems:
        lines.append(f"  note: {p}")
    lines.extend(file_lines(r))
    return "\n".join(lines)


def write_junit(r, path) -> None:
    """The shared JUnit XML, with the documented divergences as properties:
    ``divergences`` (name=count, …) and, per divergence seen, its reference."""
    from kubemc.conformance.report.summary import describe_op
    from kubemc.conformance.report.junit import write_checks_junit
    from kubemc.conformance.validate.cni_protocol import DIVERGENCES
    divs = sorted(r.divergences.items())
    props = [("run_id", r.run_id), ("seed", r.seed), ("operations", r.operations),
             ("ops_per_second", f"{r.ops_per_second:.1f}"), ("faults", r.fault_count),
             ("divergences", ",".join(f"{k}={v}" for k, v in divs)),
             *((f"divergence.{k}", DIVERGENCES[k]) for k, _ in divs),
             ("duration_seconds", f"{r.duration:.1f}"), ("check_seconds", f"{r.check_seconds:.2f}")]
    write_checks_junit(path, "cni", props, r.checks,
                       lambda v: [describe_op(op) for op in list(v.window)[:20]])


def write_violation(out_dir: Path, violation, meta: dict) -> dict:
    """One violation's window as JSON lines and as an ITF trace, under fresh names."""
    window = list(violation.window) or list(violation.ops)
    views = [{"op": describe(op), "detail": plain(json.loads(json.dumps(op.to_json(), default=str)))}
             for op in window]
    actions = [(op.f, (op.process, op.key or "", op.status)) for op in window]
    config = {"target": "cni", "run_id": meta.get("run_id", ""), "plugin": meta.get("plugin", ""),
              "cniVersion": meta.get("cniVersion", "")}
    trace = itf.build({"property": violation.check, "kind": "history",
                       "description": violation.message, "model": "cni", "engine": "conform-cni",
                       "config": config, "command": meta.get("command", "")}, views, actions)
    return write_window(out_dir, violation, window, meta, trace)

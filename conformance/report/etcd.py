"""Reports of ``kubemc conform etcd``: the human summary, JUnit XML and the
progress line. The violation files are written by
:func:`conformance.report.files.write_violation`.
"""

from __future__ import annotations

import os

from kubemc.conformance.report.junit import write_checks_junit
from kubemc.conformance.report.summary import describe_op, file_lines, violation_lines


def summary(result) -> str:
    """The human summary of a :class:`conformance.adapters.etcd.suite.EtcdRunResult`."""
    r = result
    lines = []
    verdict = "PASS" if r.passed else ("FAIL" if r.failed_checks else "UNDECIDED")
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
        undecided = " (UNDECIDED)" if c.undecided else ""
        lines.append(f"    {mark} {c.name:<20} {c.seconds:7.3f}s  {c.checked:>7} checked{undecided}")
    for c in r.checks:
        for v in c.violations:
            lines.extend(violation_lines(c, v))
            lines.append(f"    proof ({len(v.ops)} operations), window of {len(v.window)} operations:")
            for op in list(v.window)[:12] or list(v.ops)[:12]:
                lines.append("      " + describe_op(op))
            if len(v.window) > 12:
                lines.append(f"      … {len(v.window) - 12} more in the window file")
    if r.problems:
        lines.append("")
        for p in r.problems:
            lines.append(f"  note: {p}")
    lines.extend(file_lines(r))
    return "\n".join(lines)


def progress_line(ops: int, faults: int, watch_events: int, seconds: float, limit: float) -> str:
    """``ops 12034 (405/s) | faults 7 | watch events 5102 | 31s / 60s``."""
    rate = ops / seconds if seconds > 0 else 0.0
    return (f"ops {ops} ({rate:.0f}/s) | faults {faults} | watch events {watch_events} | "
            f"{seconds:.0f}s / {limit:.0f}s")


def write_junit(result, path: str | os.PathLike) -> None:
    """One test case per check, in a suite named after the target (junitparser)."""
    r = result
    props = (("run_id", r.run_id), ("seed", r.seed), ("operations", r.operations),
             ("ops_per_second", f"{r.ops_per_second:.1f}"), ("faults", r.fault_count),
             ("duration_seconds", f"{r.duration:.1f}"), ("check_seconds", f"{r.check_seconds:.2f}"))
    write_checks_junit(path, "etcd", props, r.checks,
                       lambda v: [describe_op(op) for op in list(v.window)[:20]])

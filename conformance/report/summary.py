"""The parts of a human summary every adapter's report shares: one line per
operation, the head of a violation and the closing list of files.

Why shared: a reader of any ``kubemc conform`` report finds the property, its
source and the files in the same words and places.
"""

from __future__ import annotations

import json

from kubemc.conformance.history import Operation


def describe_op(op: Operation) -> str:
    """One line for an operation of a key-value history (etcd, Maelstrom; CNI's JUnit)."""
    out = op.output
    if isinstance(out, dict) and "responses" in out and op.f == "watch":
        out = f"{len(out['responses'])} responses, end: {out.get('end')}"
    text = f"p{op.process} {op.f} {op.key or ''} {json.dumps(op.input, default=str)[:80]} -> {op.status} " \
           f"{json.dumps(out, default=str)[:120] if not isinstance(out, str) else out}"
    return text


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

"""``kubemc check-history FILE``: is a recorded history linearizable?

The file may be kubemc's JSON lines, a Jepsen operation log, or Jepsen/Knossos
EDN (recognised by content, :mod:`conformance.importers`); the sequential
specification is the one the file names in ``#meta`` or the one its operations
imply. Prints ``linearizable`` (exit 0) or ``not linearizable`` with the
smallest failing window as a table (exit 1); ``--json`` prints the same as one
JSON object. A malformed file raises :class:`~checker.errors.BadInput` (exit 2).
With a time budget the verdict may be ``unknown``: that is not a pass, and
exits 1 as well (nothing was shown to hold).
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

from checker.errors import HOLDS, VIOLATED
from conformance.importers import load
from conformance.linearizability import LINEARIZABLE, NOT_LINEARIZABLE, Failure, Result, check
from conformance.model import spec as spec_named

#: rows of the window table: every operation of the window the partial
#: linearization left out, and this many of the last ones it did linearize
CONTEXT = 8


def _fmt(v) -> str:
    if v is None:
        return "nil"
    return json.dumps(v, separators=(",", ":")) if not isinstance(v, str) else repr(v)


def _cell(v, width=36) -> str:
    s = _fmt(v) if not isinstance(v, str) or v in ("-", "") else v
    return s if len(s) <= width else s[: width - 1] + "…"


def window_table(failure: Failure, t0: int = 0) -> list[str]:
    """The failing window as text rows: the operations that matter, in call order."""
    ops = failure.ops
    order = {i: n for n, i in enumerate(failure.linearization)}
    tail = set(failure.linearization[-CONTEXT:])
    shown = [i for i in range(len(ops)) if i not in order or i in tail]
    keyed = len({op.key for op in ops}) > 1   # a key column only when it tells something
    rows = [("op", "process") + (("key",) if keyed else ()) +
            ("f", "input", "output", "status", "call", "return", "lin", "state after")]
    for i in shown:
        op = ops[i]
        mark = " <- culprit" if op is failure.culprit else ""
        lin = order.get(i)
        state = failure.states[lin + 1] if lin is not None and lin + 1 < len(failure.states) else "-"
        rows.append((str(op.index if op.index is not None else i), str(op.process)) +
                    ((_cell(op.key),) if keyed else ()) +
                    (op.f, _cell(op.input), _cell(op.output if op.status != "info" else "?"),
                     op.status, str(op.call - t0), "-" if op.ret is None else str(op.ret - t0),
                     "-" if lin is None else str(lin + 1),
                     (_cell(state, 40) if state != "-" else "-") + mark))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    hidden = len(ops) - len(shown)
    if hidden:
        lines.append(f"({hidden} earlier operations of the window linearize without conflict: not shown)")
    return lines


def report(result: Result, path: str = "", t0: int = 0) -> list[str]:
    lines = [result.verdict]
    lines.append(f"  {path}: model {result.model}, {result.operations} operations in "
                 f"{result.partitions} partition(s), checked in {result.elapsed:.3f} s")
    if result.verdict == NOT_LINEARIZABLE:
        f = result.failure
        lines.append(f"  {f.message}")
        if not f.states:  # a violation across partitions: just the operations involved
            lines.append("  the operations involved:")
        else:
            key = "the only object" if f.key is None else f"key {f.key!r}"
            lines.append(f"  smallest failing window: {key}, the first {len(f.ops)} operations "
                         f"(by call); a longest linearization of them covers "
                         f"{len(f.linearization)} (column lin: its order, '?' output: unknown)")
            lines.append(f"  model state at the end of that linearization: "
                         f"{_fmt(f.states[-1]) if f.states else '-'}")
        lines += ["    " + row for row in window_table(f, t0)]
    elif result.verdict != LINEARIZABLE:
        keys = ", ".join(map(repr, result.unknown_keys[:5]))
        lines.append(f"  the time budget ran out before partition(s) {keys} were decided")
    return lines


def run(path: str, as_json: bool = False, out: TextIO = sys.stdout,
        budget: float | None = None, model: str | None = None) -> int:
    """Check the history in ``path``; print the verdict; return the exit code."""
    history = load(path, model=model)
    spec = spec_named(history.model)  # BadInput if the model is unknown
    result = check(history.operations(), spec, budget=budget)
    if as_json:
        doc = {"path": str(path), "format": history.format, **result.to_json()}
        out.write(json.dumps(doc, default=str) + "\n")
    else:
        t0 = min(ev.time for ev in history.events)
        out.write("\n".join(report(result, str(path), t0)) + "\n")
    return HOLDS if result.verdict == LINEARIZABLE else VIOLATED


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m conformance.checkhistory FILE [--json]``)."""
    import argparse

    from checker.errors import KubemcError

    parser = argparse.ArgumentParser(prog="kubemc check-history", description=__doc__.split("\n")[0])
    parser.add_argument("file")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--budget", type=float, default=None, help="seconds; verdict 'unknown' after")
    parser.add_argument("--model", default=None, help="sequential specification (default: inferred)")
    args = parser.parse_args(argv)
    try:
        return run(args.file, args.json, budget=args.budget, model=args.model)
    except KubemcError as e:
        print(f"kubemc: {e}", file=sys.stderr)
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())

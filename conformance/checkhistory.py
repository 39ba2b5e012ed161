"""``kubemc check-history FILE``: is a recorded history linearizable?

The file may be kubemc's JSON lines, a Jepsen operation log, or Jepsen/Knossos
EDN (recognised by content, :mod:`conformance.importers`); the sequential
specification is the one the file names in ``#meta`` or the one its operations
imply. Prints ``linearizable`` (exit 0) or ``not linearizable`` with the
smallest failing window as a table (exit 1); ``--json`` prints the same as one
JSON object. A malformed file raises :class:`~checker.errors.BadInput` (exit 2).
The search has a time and a memory budget (``--budget`` seconds, ``--max-memory``
megabytes; :mod:`conformance.budget`): when one runs out first, the verdict is
``unknown`` and the exit code :data:`~checker.errors.UNDECIDED` (4) — neither
a pass nor a violation, since nothing was shown either way.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TextIO

from kubemc.checker.errors import HOLDS, UNDECIDED, VIOLATED
from kubemc.conformance.budget import DEFAULT_MEGABYTES, DEFAULT_SECONDS, Budget
from kubemc.conformance.importers import load
from kubemc.conformance.linearizability import (LINEARIZABLE, NOT_LINEARIZABLE, Failure,
                                                LinearizabilityOutcome, check)
from kubemc.conformance.model.specs import spec as spec_named

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


def report(result: LinearizabilityOutcome, path: str = "", t0: int = 0) -> list[str]:
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
        keys = ", ".join("the only object" if k is None else repr(k) for k in result.unknown_keys[:5])
        more = f" (and {len(result.unknown_keys) - 5} more)" if len(result.unknown_keys) > 5 else ""
        which = result.undecided or "time"
        option = "--budget SECONDS" if which == "time" else "--max-memory MB"
        lines.append(f"  the {which} budget ran out before partition(s) {keys}{more} were decided: "
                     f"nothing was shown either way; give it more with {option}")
    return lines


def run(path: str, as_json: bool = False, out: TextIO | None = None,
        budget: float | None = DEFAULT_SECONDS, model: str | None = None,
        max_memory: float | None = DEFAULT_MEGABYTES) -> int:
    """Check the history in ``path``; print the verdict (to ``out``, default the
    ``sys.stdout`` of the moment); return the exit code."""
    out = sys.stdout if out is None else out
    Budget(budget, max_memory)  # bad limits are bad input before anything is read
    started = time.monotonic()
    history = load(path, model=model)
    spec = spec_named(history.model)  # BadInput if the model is unknown
    if budget is not None:  # the budget is the whole run's, reading included
        budget = max(0.0, budget - (time.monotonic() - started))
    result = check(history.operations(), spec, budget=budget, max_memory=max_memory)
    if as_json:
        doc = {"path": str(path), "format": history.format, **result.to_json()}
        out.write(json.dumps(doc, default=str) + "\n")
    else:
        t0 = min(ev.time for ev in history.events)
        out.write("\n".join(report(result, str(path), t0)) + "\n")
    return {LINEARIZABLE: HOLDS, NOT_LINEARIZABLE: VIOLATED}.get(result.verdict, UNDECIDED)


def add_budget_arguments(parser) -> None:
    """``--budget`` and ``--max-memory``, shared by ``kubemc check-history`` and this module."""
    parser.add_argument("--budget", type=float, default=DEFAULT_SECONDS, metavar="SECONDS",
                        help=f"search time before the verdict is 'unknown', exit 4 "
                             f"(default {DEFAULT_SECONDS:.0f})")
    parser.add_argument("--max-memory", type=float, default=DEFAULT_MEGABYTES, metavar="MB",
                        help=f"resident memory before the verdict is 'unknown', exit 4 "
                             f"(default {DEFAULT_MEGABYTES})")


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m conformance.checkhistory FILE [--json]``)."""
    import argparse

    from kubemc.checker.errors import KubemcError

    parser = argparse.ArgumentParser(prog="kubemc check-history",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("file")
    parser.add_argument("--json", action="store_true")
    add_budget_arguments(parser)
    parser.add_argument("--model", default=None, help="sequential specification (default: inferred)")
    args = parser.parse_args(argv)
    try:
        return run(args.file, args.json, budget=args.budget, model=args.model,
                   max_memory=args.max_memory)
    except KubemcError as e:
        print(f"kubemc: {e}", file=sys.stderr)
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())

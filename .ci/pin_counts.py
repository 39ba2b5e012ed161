#!/usr/bin/env python3
"""Pinned state counts: every built-in model explored at its catalog defaults.

Why pin them: a change to a machine, a property or the explorer that alters
how many states a model reaches is either a deliberate change of the model
or a bug (a lost interleaving, a broken symmetry, a fused ``successors``
that drifted from ``steps`` + ``apply``). A verdict that stays "holds" does
not show the difference; the count does. ``tests/test_catalog_pinned.py``
compares every model with ``tests/data/pinned_counts.json``, and this
script is the one command that measures and (with ``--update``) rewrites
that file:

    python3 .ci/pin_counts.py            # measure, compare, exit 1 on a change
    python3 .ci/pin_counts.py --update   # measure and rewrite the pin file
    python3 .ci/pin_counts.py raft mvcc  # only these models

Either way it prints a table, one row per model: the pinned figures
(before), the measured ones (after), and whether they are the same — the
table a change's closing note shows. ``--update`` rewrites only the rows
measured, and drops pinned models the catalog no longer has only when the
whole catalog was measured. Nothing is written for a model whose verdict is
not "holds": a failing model is a bug to fix, not a count to pin.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

#: the pin file, relative to the repository root
PIN_FILE = ROOT / "tests" / "data" / "pinned_counts.json"
#: the figures pinned per model (the Result row's figures, plus the verdict)
FIGURES = ("distinct_states", "transitions", "depth")
#: the command that regenerates the pin file, for messages
UPDATE = "python3 .ci/pin_counts.py --update"


def models() -> dict:
    """Every model of this repository's own components, by model name, in
    listing order: ``{name: (component, model)}``. Installed components
    (entry points of other distributions) are not ours to pin."""
    from kubemc.checker.components import BUILT_IN, COMPONENTS

    out = {}
    for comp_name in BUILT_IN:
        comp = COMPONENTS[comp_name]
        for model in comp.models:
            out[model.name] = (comp, model)
    return out


def measure(comp, model) -> dict:
    """One model explored at its defaults with all its properties, as the
    ``kubemc check COMPONENT`` row reports it. Traces of an unexpected
    violation go to a temporary directory, never into the tree."""
    from kubemc.checker.run import check_model

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as traces:
        (row,) = check_model(comp, model, "explore", trace_dir=Path(traces))
    out = {"component": comp.name, "verdict": row.verdict}
    out.update({k: row.figures.get(k) for k in FIGURES})
    out["covers_reached"] = list(row.figures.get("covers_reached", []))
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out


def pinned_row(measured: dict) -> dict:
    """What the pin file keeps of a measurement: no seconds (they vary)."""
    return {k: measured[k] for k in ("component", "verdict") + FIGURES}


def figures(row: dict) -> dict:
    """What must stay the same: the verdict and the counts (a model moved
    to another component, or a faster run, is no change)."""
    return {k: row[k] for k in ("verdict",) + FIGURES}


def read(path: Path = PIN_FILE) -> dict:
    if not path.exists():
        return {}
    return json.loads(path.read_text())["models"]


def write(pins: dict, path: Path = PIN_FILE) -> None:
    body = {"regenerate": UPDATE,
            "why": "explore at the catalog defaults; see .ci/pin_counts.py",
            "models": {k: pins[k] for k in sorted(pins)}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=1) + "\n")


def show(row: dict | None) -> str:
    if row is None:
        return "-"
    return f"{row['verdict']} {row['distinct_states']}/{row['transitions']}/{row['depth']}"


def table(before: dict, after: dict) -> list[str]:
    """One line per model of either side: before, after, same?"""
    names = list(after) + sorted(set(before) - set(after))
    width = max([len(n) for n in names] + [5])
    lines = [f"{'model':<{width}}  {'before (verdict states/transitions/depth)':<44}  "
             f"{'after':<32}  same?"]
    for name in names:
        b, a = before.get(name), after.get(name)
        same = "yes" if b is not None and a is not None and figures(a) == figures(b) \
            else ("NEW" if b is None else ("GONE" if a is None else "NO"))
        lines.append(f"{name:<{width}}  {show(b):<44}  {show(a):<32}  {same}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", help="model names (default: every model)")
    parser.add_argument("--update", action="store_true", help="rewrite the pin file")
    parser.add_argument("--file", type=Path, default=PIN_FILE, help="the pin file")
    args = parser.parse_args(argv)
    catalog = models()
    unknown = sorted(set(args.models) - set(catalog))
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)} (known: {', '.join(catalog)})")
    chosen = args.models or list(catalog)
    before = read(args.file)
    after: dict = {}
    for name in chosen:
        comp, model = catalog[name]
        after[name] = measure(comp, model)
        print(f"  {name}: {show(after[name])} in {after[name]['seconds']}s", flush=True)
    shown = {k: v for k, v in before.items() if not args.models or k in chosen}
    print("\n".join(table(shown, after)))
    failing = sorted(n for n, row in after.items() if row["verdict"] != "holds")
    changed = sorted(n for n in after if n not in before
                     or figures(after[n]) != figures(before[n]))
    gone = sorted(set(before) - set(catalog))
    if args.update:
        pins = dict(before)
        pins.update({n: pinned_row(r) for n, r in after.items() if n not in failing})
        if not args.models:
            for name in gone:
                del pins[name]
        write(pins, args.file)
        print(f"wrote {len(pins)} models to {args.file.name}"
              + (f"; changed or new: {', '.join(changed)}" if changed else "; no change"))
    if failing:
        print(f"NOT PINNED, verdict is not 'holds': {', '.join(failing)}", file=sys.stderr)
        return 1
    if not args.update and (changed or gone):
        print(f"differs from the pin file: {', '.join(changed + gone)}; if the change is "
              f"meant, run {UPDATE} and show the table above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

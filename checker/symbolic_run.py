"""``kubemc check --engine z3``: run a component's symbolic checks and turn
their results into the same ``Result`` rows (and traces) as the other engines.

``checker.run`` calls this module; this module imports the rows from
``checker.result``, never from ``run``, so the two do not import each other.
"""

from __future__ import annotations

from pathlib import Path

from kubemc.checker import traces
from kubemc.checker.errors import BadInput
from kubemc.checker.result import HOLDS, UNDECIDED, UNPROVED, Result
from kubemc.checker.result import VACUOUS as SAID_NOTHING
from kubemc.checker.result import VIOLATED as BROKEN
from kubemc.checker.z3engine import BASE_VIOLATION, CTI, VACUOUS, run_checks


def run_symbolic(comp, *, mutant=None, trace_dir=Path("kubemc-traces")) -> list:
    rows = []
    for check, result in zip(_selected(comp.symbolic, mutant), run_checks(comp.symbolic, mutant)):
        figures = {"method": result.method, "bound": result.bound, "verdict": result.verdict}
        if result.counterexample is not None:
            command = f"kubemc check {comp.name} --engine z3" + (
                f" --mutant {mutant}" if mutant else "")
            path = traces.save(result.counterexample, trace_dir, model=check.model,
                               machine=result.machine, engine="z3", command=command)
            rows.append(Result(comp.name, check.model, "z3", BROKEN, result.seconds, mutant,
                               result.prop, str(path), figures,
                               result.summary()))
            continue
        verdict = _verdict(result, mutant)
        rows.append(Result(comp.name, check.model, "z3", verdict, result.seconds, mutant,
                           result.prop, None, figures, result.summary()))
    if mutant is not None and not rows:
        covered = sorted({m for c in comp.symbolic for m in c.mutants})
        raise BadInput(f"no symbolic check of {comp.name} covers mutant {mutant!r} "
                       f"(z3 covers: {', '.join(covered)})")
    return rows


def _verdict(result, mutant) -> str:
    """A solver result without a trace is never "violated" (exit 1 promises
    a trace): a counterexample to induction, or a lemma a reachable state
    breaks, leaves the claim *unproved*; no initial state makes it *vacuous*;
    a solver that gave up, or a bounded search that did not reach the asked-for
    mutant, leaves it *undecided*."""
    if result.holds:
        return HOLDS if mutant is None else UNDECIDED
    if result.verdict == VACUOUS:
        return SAID_NOTHING
    if result.verdict in (CTI, BASE_VIOLATION):
        return UNPROVED
    return UNDECIDED


def _selected(checks, mutant):
    return list(checks) if mutant is None else [c for c in checks if mutant in c.mutants]

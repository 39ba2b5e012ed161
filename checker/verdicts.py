"""From the rows of a ``kubemc check`` run to its one exit code
(``checker.errors`` holds the table).

Several models and engines report in one run, so their outcomes are ranked:
a violation with a trace comes first (a script that sees 1 can open the
trace); then a violation whose trace could not be written (3: the machine
lacks somewhere to write, and the bug is still printed); then a vacuous check
(5: it said nothing, the bounds are wrong); then an undecided one (4: a
budget ran out or random runs missed the mutant); all holding is 0.
"""

from __future__ import annotations

from collections.abc import Iterable

from kubemc.checker.errors import HOLDS, MISSING_ENVIRONMENT, UNDECIDED, VACUOUS, VIOLATED

RANK = (VIOLATED, MISSING_ENVIRONMENT, VACUOUS, UNDECIDED, HOLDS)


def code_of(result) -> int:
    """One row's exit code. A row that says "violated" but carries no trace
    and no failed write is a claim without evidence (a solver that could
    not prove a property): undecided, never 1."""
    if result.verdict == "violated":
        if result.trace:
            return VIOLATED
        return MISSING_ENVIRONMENT if getattr(result, "trace_error", "") else UNDECIDED
    return {"holds": HOLDS, "vacuous": VACUOUS}.get(result.verdict, UNDECIDED)


def exit_code(results: Iterable) -> int:
    codes = {code_of(r) for r in results}
    return next((c for c in RANK if c in codes), HOLDS)

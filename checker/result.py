"""What one check concluded: the ``Result`` row every engine returns and the
names of its verdicts.

Why a module of its own: ``checker.run`` chooses and runs the engines, and
the engines' adapters (``checker.symbolic_run`` for z3) build rows too. With
the row defined in ``run``, ``run`` and ``symbolic_run`` imported each other;
here, below both, the imports go one way (``docs/layers.md``). ``checker.run``
still re-exports every name, so ``from checker.run import Result`` works.
The exit code of a run of rows is ``checker.verdicts``' business.
"""

from __future__ import annotations

from typing import Any

import attrs

#: UNDECIDED: a budget ran out (--max-states) or random runs missed the mutant (exit 4)
HOLDS, VIOLATED, UNDECIDED = "holds", "violated", "undecided"
INCOMPLETE = UNDECIDED  # the former name
#: the check said nothing: a cover property was never reached at complete
#: exploration, or a z3 encoding has no initial state (exit 5)
VACUOUS = "vacuous"
#: z3 could not prove a claim: a counterexample to induction (exit 4)
UNPROVED = "unproved"


@attrs.frozen
class Result:
    component: str
    model: str
    engine: str
    verdict: str
    seconds: float
    mutant: str | None = None
    prop: str | None = None
    trace: str | None = None
    figures: dict = attrs.field(factory=dict)
    detail: str = ""
    #: why the violation's trace could not be written (the verdict stands)
    trace_error: str = ""

    def as_json(self) -> dict[str, Any]:
        return attrs.asdict(self)

"""What a failed check reports, and what a check concluded: the two shapes
every adapter's checks share (etcd, CRI, CNI), so that the reports, the JSON
document and JUnit read them alike.

A :class:`Violation` names its check, says what went wrong in one sentence,
and carries the operations that prove it (``ops``) and the smallest window of
the history around them (``window``). A :class:`CheckResult` is one check's
verdict over a run: its statement and source, its violations, what it looked
at and how long it took.

A check that ran out of its budget before it could decide (a search that hit
its time limit, a solver that answered *unknown*) has no violation and a
note that starts with :data:`UNDECIDED_NOTE`: it is neither a pass — nothing
was shown — nor a violation (DESIGN: undecided has its own exit code).
"""

from __future__ import annotations

import attrs

#: how a check's note starts when the check could not decide
UNDECIDED_NOTE = "UNDECIDED"


@attrs.frozen
class Violation:
    check: str
    message: str
    ops: tuple = ()          # the operations that prove it
    window: tuple = ()       # the smallest failing window around them
    detail: dict = attrs.field(factory=dict)

    def to_json(self) -> dict:
        return {"check": self.check, "message": self.message,
                "ops": [op.to_json() for op in self.ops],
                "window": [op.to_json() for op in self.window], "detail": self.detail}


@attrs.define
class CheckResult:
    name: str
    statement: str
    source: str
    violations: list = attrs.field(factory=list)
    seconds: float = 0.0
    checked: int = 0          # how many items the check looked at
    note: str = ""

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def undecided(self) -> bool:
        """No violation was found, but the check did not finish looking."""
        return not self.violations and self.note.startswith(UNDECIDED_NOTE)

    def to_json(self) -> dict:
        return {"name": self.name, "ok": self.ok, "undecided": self.undecided,
                "statement": self.statement, "source": self.source,
                "checked": self.checked, "seconds": round(self.seconds, 4), "note": self.note,
                "violations": [v.to_json() for v in self.violations]}

"""What every ``kubemc conform`` runner's result says of its checks.

Why a mixin: the etcd, CRI and CNI results differ in their figures and in
when a run passes, but each holds ``checks`` (:class:`CheckResult` objects)
and lists the failed ones and their violations the same way, for the
reports, the JSON document and the tests.
"""

from __future__ import annotations


class CheckedRun:
    """``violations`` and ``failed_checks`` of a result with a ``checks`` list
    (no state of its own: it adds no slot to an attrs class)."""

    __slots__ = ()

    @property
    def violations(self) -> list:
        return [v for c in self.checks for v in c.violations]

    @property
    def failed_checks(self) -> list[str]:
        return [c.name for c in self.checks if not c.ok]

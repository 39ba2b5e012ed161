"""Time and memory budgets for searches that may not end: the linearizability check.

Deciding linearizability is NP-complete, so a check is given a budget and
answers *unknown* when it runs out — never a pass and never a violation. A
:class:`Budget` is the user's limits (``kubemc check-history --budget S
--max-memory MB``); :meth:`Budget.start` turns it into a :class:`Meter` that
the search polls every few thousand steps, cheap enough for the hot loop (one
clock read; the resident set size read from ``/proc/self/statm``, or
``getrusage``'s peak where there is no ``/proc``).
"""

from __future__ import annotations

import os
import resource
import time

import attrs

from kubemc.checker.errors import BadInput

#: seconds a ``check-history`` run may search by default
DEFAULT_SECONDS = 300.0
#: megabytes of resident memory a ``check-history`` run may use by default
DEFAULT_MEGABYTES = 2048
#: the smallest memory budget that leaves room for the interpreter itself
MIN_MEGABYTES = 64

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int:
    """The process's resident set size now (its peak where ``/proc`` is missing)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@attrs.frozen(slots=True)
class Budget:
    """Limits of one check: ``seconds`` of wall clock, ``megabytes`` of resident memory.

    ``None`` means unlimited. Both are validated here, before anything is
    allocated, so a bad value is one line of bad input (exit 2).
    """

    seconds: float | None = DEFAULT_SECONDS
    megabytes: float | None = DEFAULT_MEGABYTES

    def __attrs_post_init__(self):
        s, m = self.seconds, self.megabytes
        if s is not None and not (isinstance(s, (int, float)) and 0 <= s < float("inf")):
            raise BadInput(f"--budget must be a finite number of seconds, at least 0, not {s!r}")
        if m is not None and not (isinstance(m, (int, float)) and MIN_MEGABYTES <= m < float("inf")):
            raise BadInput(f"--max-memory must be a number of megabytes of at least {MIN_MEGABYTES}, "
                           f"not {m!r}")

    def start(self) -> Meter:
        return Meter(self)


UNLIMITED = Budget(None, None)


class Meter:
    """A running budget: :meth:`exceeded` says which limit ran out, if any.

    ``cache_entries`` is how many memo entries a search may keep before it
    drops its cache (a quarter of the memory budget at ~200 bytes an entry):
    dropping a cache costs time, never correctness, and keeps the hard limit
    for what nothing else can free.
    """

    __slots__ = ("deadline", "max_bytes", "cache_entries")

    ENTRY_BYTES = 200

    def __init__(self, budget: Budget):
        self.deadline = None if budget.seconds is None else time.monotonic() + budget.seconds
        self.max_bytes = None if budget.megabytes is None else int(budget.megabytes * 2 ** 20)
        self.cache_entries = (1 << 62) if self.max_bytes is None else \
            max(10_000, self.max_bytes // 4 // self.ENTRY_BYTES)

    def exceeded(self) -> str | None:
        """``"time"``, ``"memory"`` or ``None``."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            return "time"
        if self.max_bytes is not None and resident_bytes() > self.max_bytes:
            return "memory"
        return None

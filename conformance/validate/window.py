"""The smallest failing window of a non-linearizable history: what a reader
needs to see, cut from what the checker found.

The linearizability checker (:func:`conformance.linearizability.check`)
reports the shortest failing *prefix* of one partition (a key): the history
cut at the culprit's return, the earliest cut no linearization explains. That
prefix is usually mostly irrelevant past — every write since the run began.
:func:`smallest_window` cuts it down, for every adapter and every sequential
specification, with two sound reductions, each kept only if what remains is
still not linearizable:

1. *front cut*: drop the longest run of early operations that all returned
   before the rest began, keeping those of its state changes whose outcome
   is unknown (they may take effect at any later time), provided what is
   kept fails from **every** state it could begin in
   (:meth:`conformance.model.spec.Spec.starts_from_any_state`: for the
   register nil, each value the window mentions and one it does not; for
   etcd a key about which nothing is known). Sound: in any linearization of
   the whole, the dropped operations come before the rest, and the unknown
   ones that land among them may as well never happen — so the kept part
   would linearize from the state the dropped part left;
2. *observations*: drop, latest first, operations that change nothing (a
   successful read, a failed compare): they only constrain, so if the rest
   still fails, so did the whole. Operations that may change the state are
   never dropped (that could invent a violation).

Finally nothing invoked after the latest culprit's return (over the
starting states tried) is needed, and is cut.

Why one minimizer: etcd's, Maelstrom's and the checker's windows used to be
three searches with three soundness arguments; a reader of any report now
sees a window cut by the same rules.
"""

from __future__ import annotations

import time
from typing import Any

import attrs

from kubemc.conformance.history import Operation
from kubemc.conformance.linearizability import NOT_LINEARIZABLE, Failure, check
from kubemc.conformance.model.spec import Spec


@attrs.frozen
class Window:
    """The smallest failing window of a non-linearizable history.

    ``ops`` (in call order) are not linearizable by themselves, and their
    failure implies the whole history's. ``from_any`` says the window was cut
    from the front: it fails whatever state the key was in when it began.
    ``failure`` is the checker's account of the window (culprit and longest
    linearization) from ``initial``, the starting state that explains most.
    ``prefix_ops`` counts the operations of the checker's failing prefix.
    """

    key: Any
    ops: tuple[Operation, ...]
    failure: Failure
    from_any: bool
    initial: Any
    prefix_ops: int

    @property
    def culprit(self) -> Operation | None:
        return self.failure.culprit


def observation(spec: Spec, op: Operation) -> bool:
    """``op`` changes nothing and only constrains: a successful read, a failed compare."""
    return spec.is_pure(op) or (op.f in spec.read_only and op.status == "ok")


def may_change(spec: Spec, op: Operation) -> bool:
    """``op`` may have changed the state (it did not fail and is no read)."""
    return op.status != "fail" and op.f not in spec.read_only and not observation(spec, op)


def failures(ops: list[Operation], spec: Spec, from_any: bool,
             deadline: float | None = None) -> list[Failure] | None:
    """The failures of ``ops`` from ``spec``'s initial state or, with ``from_any``,
    from every state they may begin in; ``None`` if one linearizes, if the
    specification knows no such states, or if ``deadline`` (a
    ``time.monotonic()`` instant) passes first."""
    starts = spec.starts_from_any_state(ops) if from_any else [spec]
    if not starts:
        return None
    found = []
    for start in starts:
        budget = None if deadline is None else deadline - time.monotonic()
        if budget is not None and budget <= 0:
            return None
        result = check(ops, start, budget=budget)
        if result.verdict != NOT_LINEARIZABLE or result.failure is None:
            return None
        found.append(result.failure)
    return found


def smallest_window(failure: Failure, spec: Spec, budget: float = 10.0) -> Window:
    """Cut the checker's failing prefix (``failure`` of ``spec``) down to the
    smallest window that still fails (see the module documentation).

    ``budget`` seconds bound the search: when they run out, the smallest
    window found so far is the answer, and at worst the checker's own.
    """
    deadline = time.monotonic() + budget
    ops = list(failure.ops)
    culprit = failure.culprit
    best, from_any = ops, False
    pos = ops.index(culprit) if culprit in ops else len(ops) - 1
    for k in range(pos, 0, -1):
        head, rest = ops[:k], ops[k:]
        begin = min(op.call for op in rest)
        if any(may_change(spec, op) and op.ret is not None and op.ret >= begin for op in head):
            continue
        carried = [op for op in head if may_change(spec, op) and op.ret is None]
        trial = sorted(carried + rest, key=lambda op: op.call)
        if failures(trial, spec, True, deadline) is not None:
            best, from_any = trial, True
            break
    for op in reversed(list(best)):
        if op is culprit or not observation(spec, op):
            continue
        trial = [o for o in best if o is not op]
        if failures(trial, spec, from_any, deadline) is not None:
            best = trial
    found = failures(best, spec, from_any, time.monotonic() + budget)
    if found is None:                 # out of time: the checker's own window stands
        best, from_any, found = ops, False, [failure]
    # From each starting state the search fails at some culprit's return; nothing
    # invoked after the latest of those returns is needed.
    returns = [f.culprit.ret for f in found if f.culprit is not None and f.culprit.ret is not None]
    if returns:
        cut = max(returns)
        best = [op for op in best if op.call <= cut]
    chosen = max(found, key=lambda f: len(f.linearization))
    initial = chosen.states[0] if chosen.states else None
    return Window(failure.key, tuple(best), chosen, from_any, initial, len(failure.ops))

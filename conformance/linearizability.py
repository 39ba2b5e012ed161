"""Linearizability checking of a recorded history against a sequential specification.

A history is linearizable (Herlihy & Wing, TOPLAS 1990) when every operation
can be given a point between its call and its return at which it takes effect
atomically, such that the operations, in the order of those points, are a run
of the sequential specification producing the outputs the history recorded.
Deciding it is NP-complete (Gibbons & Korach, SIAM J. Comput. 1997), so the
checker is a search, made fast by the following, in order of importance:

1. **P-compositionality** (Horn & Kroening, "Faster linearizability checking
   via P-compositionality", FORTE 2015): the history is split by the object an
   operation acts on (:meth:`Spec.partition_key`) and each part is checked
   alone — sound and complete by Herlihy and Wing's locality theorem.
2. **The Wing & Gong search with Lowe's memoization** (Wing & Gong, "Testing
   and verifying concurrent objects", JPDC 1993; Lowe, "Testing for
   linearizability", CCPE 2017): call and return events sit in one list
   ordered by time; the search repeatedly linearizes some operation whose call
   comes before the first remaining return (removing both of its events from
   the list), and backtracks when it meets a return whose operation it has not
   linearized. A configuration is the set of linearized operations (a bitset,
   a Python int) and the specification state; each is explored once, which is
   what keeps the search polynomial on most real histories.
3. **Unknown outcomes** (``info``): such an operation may take effect at any
   time after its call or never. It gets no return event at all (return = +∞):
   the search may linearize it whenever it likes and need never do so — the
   search succeeds as soon as every operation with a known outcome is
   linearized. (Taking effect "never" and "after everything else" are the same
   to every observer.) An ``info`` read changes nothing and observed nothing,
   so it is dropped, as is a ``fail`` (it did not happen). Unknown outcomes are
   what makes real histories hard — each pending one multiplies the
   configurations — so the search treats them with care (each rule keeps it
   exhaustive):

   - they are tried only when no known-outcome candidate leads anywhere, and
     then newest first (the one a blocked read saw most likely just happened);
   - *subsumption*: the memo maps (known-outcome bitset, state) to the sets of
     info operations it was reached with; a configuration reached with a
     superset of one already seen is pruned (it can do nothing more);
   - *twins*: info operations with the same transition are interchangeable,
     and linearized oldest first;
   - one that would not change the state is not placed there;
   - :meth:`Spec.simplify` decides some up front where values are unique (an
     unknown write a read saw took effect before that read returned).

4. **Pure operations** (reads; failed compares): an operation that never
   changes the state and can be linearized now can always go first, so once
   it has been, its alternatives at that point are not tried.
5. A hot loop without objects: operations are compiled once into transition
   closures (:meth:`Spec.prepare`, cached per state when a specification's
   transitions are costly) and the event list is arrays of ints, unlinked and
   relinked in place (Knuth's dancing links).

**The smallest failing window.** Linearizability is prefix-closed: cut a
history at a time ``t`` (operations invoked later dropped, those still running
made ``info``) and the cuts of a linearizable history are linearizable. The
window reported is the earliest failing cut of the failing partition — the
culprit is the operation whose return makes it fail — with a longest partial
linearization of it (for the trace). The search provides most of it: every
backtrack is blocked by a return event, and the cut just before the latest
such event over the whole (memoized, hence complete) search has a
linearization, the path that reached it. The cut *at* it usually fails, and
:func:`_smallest_window` checks that, moving later by binary search in the rare
case it does not (an operation running at that point whose final outcome the
search used, but the cut may not: a cas that will fail could still succeed).

Where a specification sees across partitions (etcd's global revision), its
:meth:`Spec.global_violation` runs first.
"""

from __future__ import annotations

import time as _time
from collections.abc import Hashable, Sequence
from typing import Any

import attrs

from checker.errors import BadInput
from conformance.history import Event, Operation, pair
from conformance.model import Spec, spec as spec_named

LINEARIZABLE, NOT_LINEARIZABLE, UNKNOWN = "linearizable", "not linearizable", "unknown"


@attrs.frozen
class Failure:
    """Where a history stops being linearizable.

    ``ops`` is the minimal failing prefix of partition ``key``: the history cut
    at the culprit's return (its operations in call order, those still running
    then as ``info``) — the shortest cut with no linearization; the cut just
    before it has one. ``culprit`` is the operation whose return makes it fail.
    ``linearization`` is a longest partial linearization of the window
    (indexes into ``ops``, in linearization order) and ``states`` the
    specification states along it (``states[0]`` initial, as
    :meth:`Spec.describe` gives them). For a violation found across
    partitions (``global_violation``), ``key`` is ``None``, ``ops`` the
    operations involved and the linearization empty.
    """

    key: Any
    ops: tuple[Operation, ...]
    culprit: Operation | None
    linearization: tuple[int, ...]
    states: tuple
    message: str

    def to_json(self) -> dict:
        return {"key": self.key, "message": self.message,
                "culprit": None if self.culprit is None else self.ops.index(self.culprit),
                "ops": [op.to_json() for op in self.ops],
                "linearization": list(self.linearization), "states": list(self.states)}


@attrs.frozen
class Result:
    verdict: str
    model: str
    operations: int
    partitions: int
    elapsed: float
    explored: int = 0
    failure: Failure | None = None
    unknown_keys: tuple = ()

    @property
    def ok(self) -> bool | None:
        return {LINEARIZABLE: True, NOT_LINEARIZABLE: False}.get(self.verdict)

    def to_json(self) -> dict:
        return {"verdict": self.verdict, "linearizable": self.ok, "model": self.model,
                "operations": self.operations, "partitions": self.partitions,
                "elapsed_seconds": round(self.elapsed, 6), "explored": self.explored,
                "unknown_partitions": list(self.unknown_keys),
                "failure": None if self.failure is None else self.failure.to_json()}


class _OutOfTime(Exception):
    pass


_CHECK_EVERY = 2048  # search steps between two reads of the clock


def _memoized(fn):
    """A transition that computes each state's successor once (it is a pure function)."""
    cache: dict = {}
    get = cache.get
    missing = cache  # a sentinel no state equals

    def transition(state):
        ns = get(state, missing)
        if ns is missing:
            ns = cache[state] = fn(state)
        return ns
    return transition


def _search(ops: Sequence[Operation], spec: Spec, deadline: float | None):
    """Wing–Gong–Lowe search over one partition's operations (sorted by call).

    Returns ``(linearizable, blocked, path, steps)``: ``blocked`` is the index
    in ``ops`` of the culprit (the operation whose return was the latest
    blocking event) and ``path`` the linearization (indexes into ``ops``) that
    reached it; both ``None`` when linearizable.
    """
    # Compile the operations; drop those that neither act nor observe.
    fns: list = []
    kept: list[int] = []
    pure: list[bool] = []
    memoize = spec.memoize_transitions
    for i, op in enumerate(ops):
        fn = spec.prepare(op)
        if fn is not None:
            fns.append(_memoized(fn) if memoize else fn)
            kept.append(i)
            pure.append(spec.is_pure(op))
    n = len(fns)
    # Events: (time, 0 = call / 1 = return, op). At equal times calls come first,
    # so operations that merely touch are concurrent (the permissive reading).
    evs = []
    must = 0
    has_ret_of = [False] * n
    for j, i in enumerate(kept):
        op = ops[i]
        evs.append((op.call, 0, j))
        if op.ret is not None:  # ok, or a fail the spec keeps as an observation
            evs.append((op.ret, 1, j))
            has_ret_of[j] = True
            must += 1
    if must == 0:
        return True, None, None, 0
    evs.sort()
    # Two linked lists over the entries (ids 1..E, in time order): list A holds
    # the calls and returns of known-outcome operations (head 0, tail E+1),
    # list B the calls of info operations (head E+2, tail E+3). The candidates
    # of a configuration are the calls in A before A's first remaining return,
    # tried first, then the calls in B before that return, newest first: an
    # info operation is linearized only when nothing else will do, and then
    # most likely the one the blocked operation saw took effect just before
    # it; older ones most often never took effect, or long ago. (Orders only:
    # the search stays exhaustive.)
    E = len(evs)
    tail_a, head_b, tail_b = E + 1, E + 2, E + 3
    nxt = [0] * (E + 4)
    prv = [0] * (E + 4)
    is_call = [False] * (E + 4)
    op_of = [0] * (E + 4)
    ret_entry = [0] * n        # entry id of op j's return, 0 = none
    last_a = 0
    b_calls = []
    for pos, (_, kind, j) in enumerate(evs, 1):
        op_of[pos] = j
        if kind == 0:
            is_call[pos] = True
        else:
            ret_entry[j] = pos
        if kind == 1 or has_ret_of[j]:
            nxt[last_a], prv[pos], last_a = pos, last_a, pos
        else:
            b_calls.append(pos)
    nxt[last_a], prv[tail_a] = tail_a, last_a
    last_b = head_b
    for pos in reversed(b_calls):   # newest first (see below)
        nxt[last_b], prv[pos], last_b = pos, last_b, pos
    nxt[last_b], prv[tail_b] = tail_b, last_b
    has_ret = has_ret_of
    # Known-outcome and info operations are numbered apart: a configuration is
    # (known bits, state) -> the info bitsets it was reached with.
    bit = [0] * n
    nk = ni = 0
    for j in range(n):
        if has_ret[j]:
            bit[j] = 1 << nk
            nk += 1
        else:
            bit[j] = 1 << ni
            ni += 1

    # Twins: info operations with the same transition (same f and input) are
    # interchangeable, so they are linearized oldest first: rank[j] is op j's
    # place among its twins (in call order), taken[c] how many of class c are
    # linearized. (An older twin is available wherever a younger one is.)
    twin = [0] * n
    rank = [0] * n
    classes: dict = {}
    for j in range(n):
        if not has_ret[j]:
            c = classes.setdefault(spec.twin_key(ops[kept[j]]), len(classes))
            twin[j] = c
    taken = [0] * max(1, len(classes))
    seen_in = [0] * max(1, len(classes))
    for j in range(n):
        if not has_ret[j]:
            rank[j] = seen_in[twin[j]]
            seen_in[twin[j]] += 1

    state = spec.init()
    lok = linfo = 0
    done = 0
    memo: dict = {}
    memo_get = memo.get
    stack: list = []           # (call entry, previous state, forced, block)
    push, pop = stack.append, stack.pop
    best_pos = 0
    best_path: list[int] = []
    steps = 0
    budget = _CHECK_EVERY
    e = nxt[0]
    block = 0                  # A's first remaining return, while scanning B
    while True:
        if block == 0:
            if not is_call[e]:
                # A's first remaining return: now the info calls that precede it.
                block = e
                e = nxt[head_b]
                continue
        elif e > block:
            if e != tail_b:          # an info call after the block: not yet
                e = nxt[e]
                continue
        if block == 0 or e < block:  # a candidate
            j = op_of[e]
            ns = None if block and rank[j] != taken[twin[j]] else fns[j](state)
            if ns is not None and block and ns == state:
                ns = None  # an info op that changes nothing here: no reason to place it here
            if ns is not None:
                if has_ret[j]:
                    k = (lok | bit[j], ns)
                    ninfo = linfo
                else:
                    k = (lok, ns)
                    ninfo = linfo | bit[j]
                seen = memo_get(k)
                if seen is None:
                    memo[k] = [ninfo]
                    fresh = True
                else:
                    # Subsumption: a configuration reached with a subset of these
                    # info operations linearized can do everything this one can.
                    for m in seen:
                        if not m & ~ninfo:
                            fresh = False
                            break
                    else:
                        seen.append(ninfo)
                        fresh = True
                if fresh:
                    push((e, state, pure[j], block))
                    state = ns
                    # unlink the call entry and (if any) the return entry
                    p, q = prv[e], nxt[e]
                    nxt[p] = q
                    prv[q] = p
                    if has_ret[j]:
                        lok |= bit[j]
                        done += 1
                        if done == must:
                            return True, None, None, steps
                        r = ret_entry[j]
                        p, q = prv[r], nxt[r]
                        nxt[p] = q
                        prv[q] = p
                    else:
                        linfo = ninfo
                        taken[twin[j]] += 1
                    e = nxt[0]
                    block = 0
                    continue
            e = nxt[e]
        else:
            # Nothing left to try before the return at ``block``: backtrack.
            steps += 1
            budget -= 1
            if budget == 0:
                budget = _CHECK_EVERY
                if deadline is not None and _time.monotonic() > deadline:
                    raise _OutOfTime
            if block > best_pos:
                best_pos = block
                best_path = [op_of[s[0]] for s in stack]
            while True:
                if not stack:
                    culprit = kept[op_of[best_pos]]
                    return False, culprit, [kept[j] for j in best_path], steps
                e, state, forced, block = pop()
                j = op_of[e]
                if has_ret[j]:
                    lok ^= bit[j]
                    done -= 1
                    r = ret_entry[j]
                    nxt[prv[r]] = r
                    prv[nxt[r]] = r
                else:
                    linfo ^= bit[j]
                    taken[twin[j]] -= 1
                nxt[prv[e]] = e
                prv[nxt[e]] = e
                # A pure operation (one that never changes the state) that could
                # go first can always go first: if that failed, so do its siblings.
                if not forced:
                    break
            e = nxt[e]


def cut(ops: Sequence[Operation], t: int) -> list[Operation]:
    """The history as it stood at time ``t``: operations invoked later are absent, and
    those not yet complete are ``info`` (their outcome was not known yet)."""
    out = []
    for op in ops:
        if op.call > t:
            continue
        if op.ret is not None and op.ret > t:
            op = attrs.evolve(op, output=None, ret=None, status="info")
        out.append(op)
    return out


def _smallest_window(key, ops: Sequence[Operation], spec: Spec, culprit: int, path: list[int],
                     deadline: float | None) -> Failure:
    """The shortest failing cut of a partition whose search failed at ``culprit``.

    The search's latest blocking return bounds the answer from below: the cut
    just before it has a linearization (the path that reached it). But the
    search judged operations still running at that point by their final
    outcomes, while a cut may only assume what was known then — a cas that
    will fail could still have succeeded — so the cut at that return may yet be
    linearizable. The first failing cut is found among the later returns by
    binary search (cuts are monotone: a linearizable cut's earlier cuts are
    linearizable); usually the first candidate already fails.
    """
    rets = sorted({op.ret for op in ops if op.ret is not None and op.ret >= ops[culprit].ret
                   and spec.prepare(op) is not None})
    found: dict[int, tuple] = {}

    def fails(i: int) -> bool:
        window = cut(ops, rets[i])
        ok, c, p, _ = _search(window, spec, deadline)
        if not ok:
            found[i] = (window, c, p)
        return not ok

    note = ""
    try:
        if fails(0):
            lo = hi = 0
        else:
            lo, hi = 0, len(rets) - 1          # cut(rets[lo]) holds, cut(rets[hi]) fails
            if hi not in found and not fails(hi):
                raise AssertionError("the whole partition failed but its last cut holds")
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if fails(mid):
                    hi = mid
                else:
                    lo = mid
        window, c, p = found[hi]
        t = rets[hi]
        if window[c].ret != t:  # the culprit is the operation whose return makes it fail
            c = next(i for i, op in enumerate(window) if op.ret == t)
    except _OutOfTime:
        window, c, p = list(ops), culprit, path
        note = " (the time budget ran out before the window was minimized)"
    lin = tuple(p)
    states = [spec.init()]
    for i in p:
        states.append(spec.step(states[-1], window[i]))
    op = window[c]
    where = "" if key is None else f"key {key!r}: "
    msg = (f"{where}no linearization explains {op.f} by process {op.process} "
           f"returning {op.output!r} (with the {len(window) - 1} operations invoked before it "
           f"returned){note}")
    return Failure(key, tuple(window), op, lin, tuple(spec.describe(s) for s in states), msg)


def check(ops: Sequence[Operation], spec: Spec | str, budget: float | None = None) -> Result:
    """Check operations against a specification (an instance or a name in ``SPECS``).

    ``budget`` (seconds) bounds the whole check; partitions it does not finish
    make the verdict ``unknown`` unless another partition is found not
    linearizable. When several partitions fail, the failure reported is the
    one whose culprit returned first (the smallest failing window).
    """
    t0 = _time.perf_counter()
    deadline = None if budget is None else _time.monotonic() + budget
    if isinstance(spec, str):
        spec = spec_named(spec)
    ops = list(ops)
    for op in ops:
        why = spec.validate(op)
        if why is not None:
            raise BadInput(f"operation {op.index if op.index is not None else ops.index(op)}: {why}")
    parts: dict[Hashable, list[Operation]] = {}
    for op in ops:
        parts.setdefault(spec.partition_key(op), []).append(op)

    def result(verdict, failure=None, unknown=(), explored=0):
        return Result(verdict, spec.name, len(ops), len(parts), _time.perf_counter() - t0,
                      explored, failure, tuple(unknown))

    g = spec.global_violation(ops)
    if g is not None:
        message, culprits = g
        return result(NOT_LINEARIZABLE, Failure(None, tuple(culprits), culprits[-1], (), (), message))
    failures: list[Failure] = []
    unknown: list = []
    explored = 0
    # Small partitions first: cheap verdicts before a budget runs out.
    for key, part in sorted(parts.items(), key=lambda kv: len(kv[1])):
        part.sort(key=lambda op: (op.call, op.index if op.index is not None else 0))
        part = spec.simplify(part)
        try:
            ok, culprit, path, steps = _search(part, spec, deadline)
        except _OutOfTime:
            unknown.append(key)
            continue
        explored += steps
        if not ok:
            failures.append(_smallest_window(key, part, spec, culprit, path, deadline))
    if failures:
        first = min(failures, key=lambda f: f.culprit.ret)
        return result(NOT_LINEARIZABLE, first, unknown, explored)
    if unknown:
        return result(UNKNOWN, None, unknown, explored)
    return result(LINEARIZABLE, None, (), explored)


def check_events(events: Sequence[Event], spec: Spec | str, budget: float | None = None) -> Result:
    return check(pair(events), spec, budget)


def check_history(history, budget: float | None = None) -> Result:
    """Check a :class:`conformance.importers.History` against the model it names."""
    return check(history.operations(), history.model, budget)

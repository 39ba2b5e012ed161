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
   linearized. A configuration is the set of linearized operations and the
   specification state; each is explored once, which is what keeps the
   search polynomial on most real histories. The set is named compactly —
   the rank of its first open return and a bitset of what is linearized
   beyond it, i.e. of operations in flight (:func:`_search_in`) — so a cache
   entry costs the same in a history of 100 operations or of 100,000, where
   a bitset over the partition (Lowe's, porcupine's) makes the cache grow as
   entries × history. The cache forgets what lies thousands of returns
   behind the frontier, and is dropped when it outgrows its share of the
   memory budget: both cost time at most, never a verdict.
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

   - two candidate orders, a portfolio (:func:`_search`): first after every
     known-outcome candidate, newest first (the one a blocked read saw most
     likely just happened), then — if that wanders — in call order among the
     others, as porcupine places them;
   - *subsumption*: the cache maps (configuration, state) to the sets of
     info operations it was reached with; a configuration reached with a
     superset of one already seen is pruned (it can do nothing more);
   - *just in time*, where a model shows it complete
     (:attr:`Spec.info_just_in_time`, the register): one is placed only right
     before an operation it enables; with a model's ``guards`` (what each
     operation needs of the state and sets it to) the classes are indexed by
     the value they set, so only those setting a value a blocked candidate
     needs — directly or through a chain of unknown compares — are looked at,
     not every class at every step;
   - *twins*: info operations with the same transition are interchangeable,
     and linearized oldest first;
   - one that would not change the state is not placed there;
   - :meth:`Spec.simplify` decides some up front where values are unique (an
     unknown write a read saw took effect before that read returned), and
     :meth:`Spec.compile` may merge values no operation can tell apart.

   A search may still not end in reasonable time: it has a time and a
   memory budget (:mod:`conformance.budget`), and a partition it does not
   decide within them makes the verdict ``unknown`` — never a pass.

4. **Dead ends** (with ``guards``): a configuration whose candidate needs a
   value the state does not hold and that no operation left may set (the
   register's values are unique: once overwritten, gone) has no
   linearization; it is left at once instead of at the next blocking return.
   Only a cut: the first failing cut is still found by :func:`_first_failing_cut`.
5. **Pure operations** (reads; failed compares): an operation that never
   changes the state and can be linearized now can always go first, so once
   it can be, it is that configuration's only candidate.
6. A hot loop without objects: operations are compiled once into transition
   closures (:meth:`Spec.prepare`, cached per state when a specification's
   transitions are costly) and the event list is arrays of ints, unlinked and
   relinked in place (Knuth's dancing links).

**The first failing cut.** Linearizability is prefix-closed: cut a
history at a time ``t`` (operations invoked later dropped, those still running
made ``info``) and the cuts of a linearizable history are linearizable. The
window reported is the earliest failing cut of the failing partition — the
culprit is the operation whose return makes it fail — with a longest partial
linearization of it (for the trace). The search provides most of it: every
backtrack is blocked by a return event, and the cut just before the latest
such event over the whole (memoized, hence complete) search has a
linearization, the path that reached it. The cut *at* it usually fails, and
:func:`_first_failing_cut` checks that, moving later by binary search in the rare
case it does not (an operation running at that point whose final outcome the
search used, but the cut may not: a cas that will fail could still succeed).
That cut is the checker's account of the failure (:class:`Failure`), not yet
what a reader should see: :func:`conformance.validate.window.smallest_window`
cuts it down to the smallest failing window.

Where a specification sees across partitions (etcd's global revision), its
:meth:`Spec.global_violation` runs first.
"""

from __future__ import annotations

import time as _time
from collections.abc import Hashable, Sequence
from typing import Any

import attrs

from kubemc.checker.errors import BadInput
from kubemc.conformance.budget import Budget, Meter
from kubemc.conformance.history import Event, Operation, pair
from kubemc.conformance.model.spec import Spec
from kubemc.conformance.model.specs import spec as spec_named

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
class LinearizabilityOutcome:
    """What a linearizability check concluded: the verdict, its figures, and
    the failure (or the partitions left undecided)."""

    verdict: str
    model: str
    operations: int
    partitions: int
    elapsed: float
    explored: int = 0
    failure: Failure | None = None
    unknown_keys: tuple = ()
    #: why the verdict is ``unknown``: the budget that ran out ("time", "memory")
    undecided: str = ""

    @property
    def ok(self) -> bool | None:
        return {LINEARIZABLE: True, NOT_LINEARIZABLE: False}.get(self.verdict)

    def to_json(self) -> dict:
        return {"verdict": self.verdict, "linearizable": self.ok, "model": self.model,
                "operations": self.operations, "partitions": self.partitions,
                "elapsed_seconds": round(self.elapsed, 6), "explored": self.explored,
                "unknown_partitions": list(self.unknown_keys), "budget_exhausted": self.undecided or None,
                "failure": None if self.failure is None else self.failure.to_json()}


class _OutOfBudget(Exception):
    """The search ran out of its time or memory budget (``args[0]``: which)."""


_CHECK_EVERY = 1024
#: seconds each further partition may search once one is known not linearizable
AFTER_FAILURE = 1.0  # search steps between two looks at the budget


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


#: cache entries before the first look for ones far behind the search's frontier
FORGET_AT = 1 << 17
#: how far behind (in returns) a configuration is forgotten
FORGET_BEHIND = 2000


def _forget_behind(memo: dict, floor: int, limit: int) -> int:
    """Drop the cache entries of configurations whose first open return ranks below
    ``floor``, and return the next size at which to look again.

    A depth-first search through a long history rarely backtracks thousands of
    returns, so what lies that far behind its frontier is dead weight; should it
    ever go back there, it explores again (a cache, never a verdict). The limit
    doubles when little could be dropped, so the cost stays amortized O(1).
    """
    for key in [key for key in memo if key[0] < floor]:
        del memo[key]
    return limit * 2 if len(memo) >= limit // 2 else limit


def _enables(cands, j, state, ns, fns, known) -> bool:
    """Placing info op ``j`` (``state`` → ``ns``) lets another candidate do what it could not."""
    for c in cands:
        if c != j:
            f = fns[c]
            if known[c]:
                if f(state) is None and f(ns) is not None:
                    return True
            elif f(state) == state and f(ns) != ns:
                return True
    return False


def _search(ops: Sequence[Operation], spec: Spec, meter: Meter | None):
    """:func:`_search_in` with two orders of unknown outcomes, a portfolio.

    Placing ``info`` operations last, newest first, decides the Jepsen etcd
    histories in milliseconds; placing them in call order among the others
    (porcupine's order: an unknown outcome returns at +∞) decides histories
    with many of them where the other order wanders. The first order gets
    half a backtrack per operation; then the second takes over. Both are
    exhaustive, so the verdict does not depend on which decides.
    """
    found = _portfolio(ops, spec, meter, True)
    if not found[0] and spec.info_just_in_time and getattr(spec, "guards", None) is not None:
        # Dead ends cut early leave the latest blocking return (the culprit the
        # first failing cut starts from) too early: a search without them finds it.
        found = _portfolio(ops, spec, meter, False)
    return found


def _portfolio(ops, spec, meter, dead_ends: bool):
    if all(op.ret is not None for op in ops):
        return _search_in(ops, spec, meter, False, None, dead_ends)
    try:
        return _search_in(ops, spec, meter, False, len(ops) // 2 + 1000, dead_ends)
    except _OutOfSteps:
        return _search_in(ops, spec, meter, True, None, dead_ends)


class _OutOfSteps(Exception):
    pass


def _search_in(ops: Sequence[Operation], spec: Spec, meter: Meter | None, eager: bool,
               max_steps: int | None, dead_ends: bool = True):
    """The Wing–Gong search with Lowe's memoization (Lowe, "Testing for linearizability",
    CCPE 2017; the algorithm porcupine implements) over one partition's
    operations, sorted by call.

    Returns ``(linearizable, blocked, path, steps)``: ``blocked`` is the index
    in ``ops`` of the culprit (the operation whose return was the latest
    blocking event) and ``path`` the linearization (indexes into ``ops``) that
    reached it; both ``None`` when linearizable. Raises :class:`_OutOfBudget`
    when ``meter`` runs out.

    **A configuration's name is small.** Lowe and porcupine key the cache by
    the set of linearized operations as a bitset over the whole partition,
    which makes every entry as wide as the history (n entries of n bits: 2 GB
    for 100k operations of one register). But the set has a shape: let R be
    the earliest return of a known-outcome operation not yet linearized — then
    every operation that returned before R is linearized, and every one
    linearized was called before R. So the set is ``k`` (R's rank among the
    returns) and ``rel``, the linearized operations returning after R, as a
    bitset relative to ``k``: operations running at R's time, at most one
    per client. The cache key is ``(k, rel, state)`` — canonical, so
    memoization loses nothing — and the cache grows with the configurations
    visited, not with their width.

    **Unknown outcomes** (``info``) have no return: they may be linearized at
    any point after their call, or never. Those with the same transition
    (:meth:`Spec.twin_key`) are interchangeable and taken oldest first, so
    the candidates of a configuration are at most one per class, and one that
    would not change the state is never placed. The cache maps ``(k, rel,
    state)`` to the info sets it was reached with; a configuration reached
    with a superset of one already explored is pruned (subsumption): it can
    do nothing the other could not.

    **Pure operations** (a read, a failed compare) that can be linearized now
    can always go first, so when one can, it is the configuration's only
    candidate.

    The cache is only a cache: when it outgrows its share of the memory
    budget it is dropped, which costs time but keeps the search exhaustive.
    """
    n_all = len(ops)
    compiled = spec.compile(ops)
    fns: list = []
    kept: list[int] = []
    pure: list[bool] = []
    twins: list = []
    memoize = spec.memoize_transitions
    for i in range(n_all):
        fn, twin = compiled[i]
        if fn is not None:
            fns.append(_memoized(fn) if memoize else fn)
            kept.append(i)
            pure.append(spec.is_pure(ops[i]))
            twins.append(twin)
    n = len(fns)
    # Events: (time, 0 = call / 1 = return, op). At equal times calls come first,
    # so operations that merely touch are concurrent (the permissive reading).
    evs = []
    known = [False] * n
    for j, i in enumerate(kept):
        op = ops[i]
        evs.append((op.call, 0, j))
        if op.ret is not None:  # ok, or a fail the spec keeps as an observation
            evs.append((op.ret, 1, j))
            known[j] = True
    must = sum(known)
    if must == 0:
        return True, None, None, 0
    evs.sort()
    # One doubly linked list (ids 1..E in time order, head 0, tail E+1) of the
    # calls and returns of known-outcome operations, unlinked and relinked in
    # place (Knuth's dancing links). Info operations are not in it: their call
    # entry ids only say whether they were called before a return.
    E = len(evs)
    tail = E + 1
    nxt = [0] * (E + 2)
    prv = [0] * (E + 2)
    is_call = [False] * (E + 2)
    op_of = [0] * (E + 2)
    call_entry = [0] * n
    ret_entry = [0] * n
    rank = [0] * n             # a known op's place among the returns
    last = 0
    r = 0
    for pos, (_, kind, j) in enumerate(evs, 1):
        op_of[pos] = j
        if kind == 0:
            is_call[pos] = True
            call_entry[j] = pos
            if not known[j]:
                continue
        else:
            ret_entry[j] = pos
            rank[j] = r
            r += 1
        nxt[last], prv[pos], last = pos, last, pos
    nxt[last], prv[tail] = tail, last
    del evs
    # Info operations: twin classes, each a list in call order; ibit numbers them.
    ibit = [0] * n
    cls_of = [0] * n
    classes: dict = {}
    members: list[list[int]] = []
    ni = 0
    for j in range(n):
        if not known[j]:
            c = classes.get(twins[j])
            if c is None:
                c = classes[twins[j]] = len(members)
                members.append([])
            cls_of[j] = c
            members[c].append(j)
            ibit[j] = 1 << ni
            ni += 1
    taken = [0] * len(members)
    n_cls = len(members)
    jit = spec.info_just_in_time
    # A model's ``guards`` (the register's): what each operation needs of the
    # state and sets it to, (pre, post). They index the info classes by the
    # value they set, and tell a dead end early (see ``candidates``).
    guards = getattr(spec, "guards", None) if jit else None
    gd: list = []
    by_post: dict = {}
    cpre: list = []
    cpost: list = []
    by_pre: dict = {}
    uncond: list = []
    left: dict = {}            # value -> operations not yet placed that may set it
    if guards is not None:
        g_all = guards(ops)
        gd = [g_all[i] for i in kept]
        for g in gd:
            if g is not None and g[1] is not None:
                left[g[1]] = left.get(g[1], 0) + 1
        for c, m in enumerate(members):
            pre, post = gd[m[0]]
            cpre.append(pre)
            cpost.append(post)
            by_post.setdefault(post, []).append(c)
            if pre is None:
                uncond.append(c)
            else:
                by_pre.setdefault(pre, []).append(c)
    sets = [g[1] if g is not None else None for g in gd]

    def scan(out, e):
        """Every eligible info class's oldest member (just in time: those that enable)."""
        info = []
        for c in range(n_cls):
            m = members[c]
            t = taken[c]
            if t < len(m) and call_entry[m[t]] < e:
                info.append(m[t])
        if jit and info:
            full = out + info
            keep = []
            for j in info:
                ns = fns[j](state)
                if ns != state and _enables(full, j, state, ns, fns, known):
                    keep.append(j)
            info = keep
        return info

    def indexed(out, e):
        """:func:`scan` through the index: the same classes, minus those that only
        enable an info write (which would overwrite them: never needed)."""
        targets = []
        anychange = False
        for c in out:
            if fns[c](state) is None:
                g = gd[c]
                if g is None:          # a blocked failed compare: any change enables it
                    anychange = True
                else:
                    targets.append(g[0])
        info = []
        if anychange:
            for c in by_pre.get(state, uncond) if not uncond else uncond + by_pre.get(state, []):
                m = members[c]
                t = taken[c]
                if t < len(m) and call_entry[m[t]] < e and cpost[c] != state:
                    info.append(m[t])
        wanted = set(targets)
        while targets:
            for c in by_post.get(targets.pop(), ()):
                m = members[c]
                t = taken[c]
                if t < len(m) and call_entry[m[t]] < e:
                    pre = cpre[c]
                    if pre is None or pre == state:
                        if not anychange:   # else already offered
                            info.append(m[t])
                    elif pre not in wanted:   # an info compare that needs ``pre`` first
                        wanted.add(pre)
                        targets.append(pre)
        return info

    find_info = indexed if guards is not None and n_cls else scan

    def candidates():
        """The configuration's candidates, and its first remaining return."""
        out = []
        e = nxt[0]
        while is_call[e]:
            out.append(op_of[e])
            e = nxt[e]
        if dead_ends and guards is not None:
            # A dead end: a candidate needs a value the state does not hold and
            # no operation left can set (the register's values are unique).
            for c in out:
                g = gd[c]
                if g is not None:
                    v = g[0]
                    if v is not None and v != state and not left.get(v):
                        return [], e
        if n_cls:
            info = find_info(out, e)
            if info:
                if eager:
                    out = sorted(out + info, key=call_entry.__getitem__)
                else:
                    info.sort(reverse=True)   # newest first: most likely what a blocked op saw
                    out += info
        return out, e

    state = spec.init()
    k = rel = linfo = 0
    done = 0
    memo: dict = {}
    memo_get = memo.get
    cache_limit = meter.cache_entries if meter is not None else (1 << 62)
    soft_limit = min(cache_limit, FORGET_AT)
    # (candidate position, op, state, k, rel, linfo, the entry below): each
    # entry names the one below it, so the path to any point is kept in O(1)
    stack: list = []
    push, pop = stack.append, stack.pop
    best_pos = 0
    best_top = None            # the stack's top entry when best_pos was reached
    steps = 0
    budget = _CHECK_EVERY
    cands, block = candidates()
    pos = 0
    while True:
        budget -= 1
        if budget == 0:
            budget = _CHECK_EVERY
            if meter is not None:
                why = meter.exceeded()
                if why is not None:
                    raise _OutOfBudget(why)
        descended = False
        while pos < len(cands):
            j = cands[pos]
            pos += 1
            ns = fns[j](state)
            if ns is None:
                continue
            if known[j]:
                rj = rank[j]
                if rj == k:
                    y = rel | 1
                    t = (~y & (y + 1)).bit_length() - 1   # trailing ones
                    nk, nrel = k + t, y >> t
                else:
                    nk, nrel = k, rel | (1 << (rj - k))
                ninfo = linfo
            else:
                if ns == state:
                    continue   # changes nothing here: no reason to place it here
                nk, nrel = k, rel
                ninfo = linfo | ibit[j]
            key = (nk, nrel, ns)
            seen = memo_get(key)
            if seen is None:
                if len(memo) >= soft_limit:
                    soft_limit = _forget_behind(memo, k - FORGET_BEHIND, soft_limit)
                    if len(memo) >= cache_limit:
                        memo.clear()
                memo[key] = ninfo
                fresh = True
            elif type(seen) is int:
                if seen & ~ninfo:
                    memo[key] = [seen, ninfo]
                    fresh = True
                else:
                    fresh = False
            else:
                # Subsumption: reached before with a subset of these info operations.
                for m in seen:
                    if not m & ~ninfo:
                        fresh = False
                        break
                else:
                    seen.append(ninfo)
                    fresh = True
            if pure[j]:
                pos = len(cands)   # it decides this configuration alone
            if not fresh:
                continue
            push((pos, j, state, k, rel, linfo, stack[-1] if stack else None))
            state, k, rel, linfo = ns, nk, nrel, ninfo
            if sets:
                v = sets[j]
                if v is not None:
                    left[v] -= 1
            ce = call_entry[j]
            if known[j]:
                p, q = prv[ce], nxt[ce]
                nxt[p] = q
                prv[q] = p
                done += 1
                if done == must:
                    return True, None, None, steps
                re = ret_entry[j]
                p, q = prv[re], nxt[re]
                nxt[p] = q
                prv[q] = p
            else:
                taken[cls_of[j]] += 1
            descended = True
            break
        if descended:
            cands, block = candidates()
            pos = 0
            continue
        # Nothing left to try before the return at ``block``: backtrack.
        steps += 1
        if steps == max_steps:
            raise _OutOfSteps
        if block > best_pos:
            best_pos = block
            best_top = stack[-1] if stack else None
        if not stack:
            culprit = kept[op_of[best_pos]]
            path = []
            while best_top is not None:
                path.append(kept[best_top[1]])
                best_top = best_top[6]
            return False, culprit, path[::-1], steps
        pos, j, state, k, rel, linfo, _ = pop()
        if sets:
            v = sets[j]
            if v is not None:
                left[v] += 1
        if known[j]:
            done -= 1
            re = ret_entry[j]
            nxt[prv[re]] = re
            prv[nxt[re]] = re
            ce = call_entry[j]
            nxt[prv[ce]] = ce
            prv[nxt[ce]] = ce
        else:
            taken[cls_of[j]] -= 1
        cands, block = candidates()


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


def _first_failing_cut(key, ops: Sequence[Operation], spec: Spec, culprit: int,
                       path: list[int], meter: Meter | None) -> Failure:
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
        ok, c, p, _ = _portfolio(window, spec, meter, False)
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
    except _OutOfBudget as e:
        window, c, p = list(ops), culprit, path
        note = f" (the {e.args[0]} budget ran out before the window was minimized)"
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


def check(ops: Sequence[Operation], spec: Spec | str, budget: float | None = None,
          max_memory: float | None = None) -> LinearizabilityOutcome:
    """Check operations against a specification (an instance or a name in ``SPECS``).

    ``budget`` (seconds) and ``max_memory`` (megabytes of resident memory)
    bound the whole check (``None``: unlimited); partitions they do not let it
    finish make the verdict ``unknown`` unless another partition is found not
    linearizable. When several partitions fail, the failure reported is the
    one whose culprit returned first (the earliest failing cut).
    """
    t0 = _time.perf_counter()
    meter = None if budget is None and max_memory is None else Budget(budget, max_memory).start()
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

    def result(verdict, failure=None, unknown=(), explored=0, why=""):
        return LinearizabilityOutcome(verdict, spec.name, len(ops), len(parts),
                                      _time.perf_counter() - t0, explored, failure,
                                      tuple(unknown), why)

    g = spec.global_violation(ops)
    if g is not None:
        message, culprits = g
        return result(NOT_LINEARIZABLE, Failure(None, tuple(culprits), culprits[-1], (), (), message))
    failures: list[Failure] = []
    unknown: list = []
    why = ""
    explored = 0
    # Small partitions first: cheap verdicts before a budget runs out. Once one
    # fails the verdict is known; the others only compete for the earliest
    # window, each for at most AFTER_FAILURE seconds (porcupine stops at once).
    for key, part in sorted(parts.items(), key=lambda kv: len(kv[1])):
        part.sort(key=lambda op: (op.call, op.index if op.index is not None else 0))
        part = spec.simplify(part)
        m = meter
        if failures:
            m = Budget(AFTER_FAILURE, max_memory).start()
            if meter is not None and meter.deadline is not None:
                m.deadline = min(m.deadline, meter.deadline)
        try:
            ok, culprit, path, steps = _search(part, spec, m)
        except _OutOfBudget as e:
            unknown.append(key)
            why = why or e.args[0]
            continue
        explored += steps
        if not ok:
            failures.append(_first_failing_cut(key, part, spec, culprit, path, m))
    if failures:
        first = min(failures, key=lambda f: f.culprit.ret)
        return result(NOT_LINEARIZABLE, first, unknown, explored)
    if unknown:
        return result(UNKNOWN, None, unknown, explored, why)
    return result(LINEARIZABLE, None, (), explored)


def check_events(events: Sequence[Event], spec: Spec | str, budget: float | None = None,
                 max_memory: float | None = None) -> LinearizabilityOutcome:
    return check(pair(events), spec, budget, max_memory)


def check_history(history, budget: float | None = None,
                  max_memory: float | None = None) -> LinearizabilityOutcome:
    """Check a :class:`conformance.importers.History` against the model it names."""
    return check(history.operations(), history.model, budget, max_memory)

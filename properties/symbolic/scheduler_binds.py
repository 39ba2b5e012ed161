"""Every bind a scheduler model reaches, judged by the Z3 feasibility oracle.

Why: the explore and hypothesis engines judge a bind with the filter table of
``properties.scheduler``; this is the same question put to the solver —
"may pod p go to node n, against the pods on nodes and the Bindings in
flight?" — asked of the oracle (``scheduler_feasibility``) restricted to n.
It is the z3 engine's view of ``sched_bound_node_passes_filters``: explore
enumerates the reachable states (the scheduler's queue and caches are not a
natural SMT encoding), Z3 decides each distinct bind. A bind the oracle
refuses is reported with the path that reaches it, shortest first (breadth
first), and the caller replays it on the machine against the table, so a
violation has two independent witnesses.
"""

from __future__ import annotations

import time
from collections import deque

import attrs

from model.scheduler.machine import NODE, SERVER
from properties.scheduler import at_bind, newly_bound
from properties.symbolic.scheduler_feasibility import Snapshot


@attrs.frozen(slots=True)
class Outcome:
    """``failed`` is None when every bind passed; else ``(pod, node)`` of the
    first bind the oracle refused, reached from ``init`` by ``steps``."""

    states: int
    binds: int
    questions: int
    seconds: float
    init: object = None
    steps: tuple = ()
    failed: tuple | None = None


def judge_binds(machine, *, max_states: int = 2_000_000) -> Outcome:
    start = time.perf_counter()
    parent: dict = {}
    frontier = deque()
    for init in machine.init_states():
        if init not in parent:
            parent[init] = None
            frontier.append(init)
    memo: dict = {}
    binds = 0
    while frontier and len(parent) <= max_states:
        state = frontier.popleft()
        for step, nxt in machine.successors(state):
            for p in newly_bound(state, nxt):
                binds += 1
                n = nxt[SERVER][p][NODE]
                placed = tuple(at_bind(machine, state, p))
                key = (p, n, placed)
                ok = memo.get(key)
                if ok is None:
                    ok = Snapshot(machine.nodes, placed).feasible(
                        [machine.pods[p]], within=frozenset({n})).feasible
                    memo[key] = ok
                if not ok:
                    init, steps = _path(parent, state)
                    return Outcome(len(parent), binds, len(memo), time.perf_counter() - start,
                                   init, steps + ((step, nxt),), (p, n))
            if nxt not in parent:
                parent[nxt] = (state, step)
                frontier.append(nxt)
    return Outcome(len(parent), binds, len(memo), time.perf_counter() - start)


def _path(parent, state):
    steps = []
    while parent[state] is not None:
        prev, step = parent[state]
        steps.append((step, state))
        state = prev
    return state, tuple(reversed(steps))


__all__ = ["Outcome", "judge_binds"]

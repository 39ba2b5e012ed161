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

This module asks the question of one transition (:func:`binds`); the walk
over every transition is explore's, with a visitor (``checker.binds``):
properties do not search.
"""

from __future__ import annotations

from collections.abc import Iterator

from kubemc.model.scheduler.machine import NODE, SERVER
from kubemc.properties.scheduler import at_bind, newly_bound
from kubemc.properties.symbolic.scheduler_feasibility import Snapshot


def binds(machine, state, nxt, memo: dict) -> Iterator[tuple[int, int, bool]]:
    """``(pod, node, feasible)`` for each pod the step from ``state`` to ``nxt``
    binds, asked lazily, in order: may the oracle, restricted to that node,
    place the pod against the pods at the bind? ``memo`` remembers each
    distinct question's answer (its size is the number of questions)."""
    for p in newly_bound(state, nxt):
        n = nxt[SERVER][p][NODE]
        placed = tuple(at_bind(machine, state, p))
        key = (p, n, placed)
        ok = memo.get(key)
        if ok is None:
            ok = Snapshot(machine.nodes, placed).feasible(
                [machine.pods[p]], within=frozenset({n})).feasible
            memo[key] = ok
        yield p, n, ok


__all__ = ["binds"]

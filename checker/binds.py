"""Every bind a scheduler model reaches, judged by the Z3 feasibility oracle
(``properties.symbolic.scheduler_binds``): explore walks every transition
with its step visitor, and the oracle is asked about each bind a step makes.

Why here and not beside the question: the walk is explore's, and
``properties`` may not import ``checker`` (docs/layers.md).
"""

from __future__ import annotations

import time

import attrs

from kubemc.checker.explore import Explorer
from kubemc.properties.symbolic.scheduler_binds import binds


@attrs.frozen(slots=True)
class BindsOutcome:
    """``failed`` is None when every bind passed; else ``(pod, node)`` of the
    first bind the oracle refused, reached from ``init`` by ``steps``."""

    states: int
    binds: int
    questions: int
    seconds: float
    init: object = None
    steps: tuple = ()
    failed: tuple | None = None


def judge_binds(machine, *, max_states: int = 2_000_000) -> BindsOutcome:
    """Ask the oracle about every bind of every reachable transition, breadth
    first; stop at the first it refuses, with a shortest path to it."""
    start = time.perf_counter()
    memo: dict = {}
    count = [0]
    refused: list = []

    def visit_step(state, step, nxt) -> bool:
        for p, n, ok in binds(machine, state, nxt, memo):
            count[0] += 1
            if not ok:
                refused.append((state, step, nxt, (p, n)))
                return True
        return False

    explorer = Explorer(machine, (), max_states=max_states, visit_step=visit_step)
    outcome = explorer.run()
    if refused:
        state, step, nxt, failed = refused[0]
        init, steps = explorer.path_to(state)
        return BindsOutcome(outcome.stats.states, count[0], len(memo), time.perf_counter() - start,
                       init, steps + ((step, nxt),), failed)
    return BindsOutcome(outcome.stats.states, count[0], len(memo), time.perf_counter() - start)

"""The hypothesis engine's convergence phase: from the end of a random run,
let environment and faults stop and run the system's own steps fairly, and
judge a liveness property on where that leads.

Why round-robin by "least recently taken": it is the simplest scheduler
under which every system step that stays enabled is taken within a bounded
number of steps (weak fairness made concrete), and it is deterministic, so a
failing run replays. The run ends in one of three ways:

* **quiescent** — no system step is enabled: the behaviour stutters there
  forever, a lasso (``checker.lasso``) the property is judged on exactly;
* **cycle** — the run comes back to a state it visited, and the steps in
  between form a fair cycle (``lasso.unfairness`` finds nothing): a lasso
  again, judged exactly; a revisit whose cycle is not fair is run through;
* **bound** — ``bound`` fair steps were taken without either: bounded
  evidence only. The goal counts as reached when it holds from some point
  to the end of the run (``EVENTUALLY_ALWAYS``), somewhere in the run
  (``ALWAYS_EVENTUALLY``), or after the last trigger (``LEADS_TO``); a
  failure says "did not converge within N fair steps".

A step that would leave the bounds ends the run as **out of bounds**: it is
neither a pass nor a failure, and is counted as such.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from checker import lasso
from model.kernel import SYSTEM, Machine, State
from properties.core import ALWAYS_EVENTUALLY, EVENTUALLY_ALWAYS, LEADS_TO, Property

QUIESCENT, CYCLE, BOUND, OUT_OF_BOUNDS = "quiescent", "cycle", "bound", "out of bounds"
#: fair steps a convergence phase takes at most
BOUND_STEPS = 200


@attrs.frozen
class FairRun:
    states: tuple        # from the start state on
    steps: tuple         # steps[k] leads from states[k] to states[k + 1]
    end: str
    loop: int | None = None   # CYCLE: index of the state the run came back to
    closing: object = None    # CYCLE: the step from the last state back to it


def fair_run(machine: Machine, start: State, bound: int = BOUND_STEPS) -> FairRun:
    within = machine.within_bounds
    states, steps = [start], []
    last_taken: dict = {}
    seen = {start: 0}
    state = start
    for clock in range(bound):
        enabled = [(step, t) for step, t in machine.successors(state)
                   if machine.tag(step) == SYSTEM]
        if not enabled:
            return FairRun(tuple(states), tuple(steps), QUIESCENT)
        step, nxt = min(enabled, key=lambda st: last_taken.get(st[0], -1))
        if not within(nxt):
            return FairRun(tuple(states), tuple(steps), OUT_OF_BOUNDS)
        last_taken[step] = clock
        steps.append(step)
        states.append(nxt)
        state = nxt
        j = seen.get(nxt)
        seen[nxt] = len(states) - 1
        if j is not None and not lasso.unfairness(machine, states[j:-1], steps[j:]):
            # states[j..] is a fair cycle: drop the repeated last state
            return FairRun(tuple(states[:-1]), tuple(steps[:-1]), CYCLE, j, steps[-1])
    return FairRun(tuple(states), tuple(steps), BOUND)


def reached(machine: Machine, prop: Property, states: Sequence[State], start: int) -> bool:
    """At a BOUND end: did the run from index ``start`` reach the goal?"""
    holds = [prop.holds_in(machine, s) for s in states]
    if prop.kind == EVENTUALLY_ALWAYS:
        return holds[-1]
    if prop.kind == ALWAYS_EVENTUALLY:
        return any(holds[start:])
    if prop.kind == LEADS_TO:
        tail = len(states)
        while tail > 0 and not holds[tail - 1]:
            tail -= 1
        return not any(prop.trigger(machine, s) for s in states[tail:])
    raise ValueError(f"{prop.name} is not a liveness property")

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

A failure is shrunk by deleting steps of the random prefix (``shrink``):
the fair run after a shorter prefix goes elsewhere, so each candidate is
judged afresh, never patched.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from kubemc.checker import lasso
from kubemc.checker.counterexample import Counterexample
from kubemc.model.kernel import SYSTEM, Machine, State
from kubemc.properties.core import ALWAYS_EVENTUALLY, EVENTUALLY_ALWAYS, LEADS_TO, Property

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


@attrs.frozen
class Judged:
    """One convergence phase judged for one property."""

    run: FairRun
    reached: bool        # the goal was reached (for leads-to: after a trigger)
    triggered: bool      # leads-to: the trigger held somewhere
    counterexample: Counterexample | None


def judge(machine: Machine, prop: Property, init: State, prefix: Sequence,
          run: FairRun | None = None, bound: int = BOUND_STEPS) -> Judged:
    """Run (or take) the convergence phase after ``prefix`` (pairs of step
    and state from ``init``) and judge ``prop`` on it."""
    end = prefix[-1][1] if prefix else init
    run = run if run is not None else fair_run(machine, end, bound)
    states = [init] + [s for _, s in prefix] + list(run.states[1:])
    start = len(prefix)
    triggered = prop.kind == LEADS_TO and any(prop.trigger(machine, s) for s in states)
    if run.end == OUT_OF_BOUNDS:
        return Judged(run, False, triggered, None)
    if run.end == BOUND:
        ok = reached(machine, prop, states, start)
        loop = None
    else:
        loop = len(states) - 1 if run.end == QUIESCENT else start + run.loop
        ok = not lasso.violates(machine, prop, states, loop)
    hit = ok and (prop.kind != LEADS_TO or triggered)
    if ok:
        return Judged(run, hit, triggered, None)
    steps = tuple(prefix) + tuple(zip(run.steps, run.states[1:]))
    if loop is None:
        cex = Counterexample(prop, init, steps, note=f"did not converge within "
                             f"{len(run.steps)} fair steps after environment and faults "
                             "stopped")
    else:
        cex = Counterexample(prop, init, steps, loop=loop, closing=run.closing)
    return Judged(run, False, triggered, cex)


def shrink(machine: Machine, prop: Property, init: State, prefix: Sequence,
           bound: int = BOUND_STEPS) -> Counterexample | None:
    """The failing convergence phase after the shortest prefix found by
    deleting prefix steps one at a time (kept when every remaining step is
    still enabled and within bounds, and the phase after it still fails):
    1-minimal in the prefix, as ``checker.shrink`` is for safety."""
    steps = [step for step, _ in prefix]
    best = judge(machine, prop, init, prefix, bound=bound).counterexample
    changed = True
    while changed and best is not None:
        changed = False
        for k in range(len(steps)):
            trial = steps[:k] + steps[k + 1:]
            replayed = _replay(machine, init, trial)
            if replayed is None:
                continue
            found = judge(machine, prop, init, replayed, bound=bound).counterexample
            if found is not None:
                steps, best, changed = trial, found, True
                break
    return best


def _replay(machine: Machine, init: State, steps: Sequence) -> list | None:
    state, out = init, []
    for step in steps:
        nxt = machine.apply(state, step)
        if nxt is None or not machine.within_bounds(nxt):
            return None
        out.append((step, nxt))
        state = nxt
    return out

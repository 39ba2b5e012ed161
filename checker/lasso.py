"""Judging one lasso on concrete states: does it return to its loop state,
is its cycle quiet and fair, and does it violate the liveness property?

This is the yardstick the other liveness code is measured against, so it is
written straight from the definitions in ``properties.core`` and shares no
code with the graph search of ``checker.liveness``: it re-executes the
machine on concrete states and asks ``successors`` what is enabled. ``trace
replay`` uses it to confirm a lasso, the hypothesis engine to confirm the
cycles its convergence phase runs into, and the tests to check every lasso
the graph search reports.

A lasso is ``states[0..n]`` with ``steps[k]`` leading from ``states[k]`` to
``states[k+1]``, the index ``loop`` of the first state of the cycle, and
``closing``: the step from ``states[n]`` back to ``states[loop]`` — or
``None`` when the behaviour stutters in ``states[n]`` forever (ADR-015's
``loop`` names the state the last one loops back to; stuttering is the
``loop == n`` case with no step). Stuttering is fair exactly where no system
step is enabled: the same rule as every other cycle, with nothing taken.
"Returns" means the very state, or — for a machine whose ``canonical``
keeps step labels (a bisimulation, ``Machine.canonical_keeps_steps``) — a
state with the same representative, from which the same steps repeat.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from kubemc.model.kernel import SYSTEM, Machine, State, Step
from kubemc.properties.core import ALWAYS_EVENTUALLY, EVENTUALLY_ALWAYS, LEADS_TO, Property


@attrs.frozen(slots=True)
class Judgement:
    returns: bool
    quiet: bool
    fair: bool
    violated: bool
    reason: str

    @property
    def confirmed(self) -> bool:
        return self.returns and self.quiet and self.fair and self.violated


def enabled_system_steps(machine: Machine, state: State) -> set[Step]:
    """The system step instances (name and parameters) enabled in ``state``."""
    return {step for step, _ in machine.successors(state) if machine.tag(step) == SYSTEM}


def unfairness(machine: Machine, cycle_states: Sequence[State],
               cycle_steps: Sequence[Step]) -> str:
    """Why the cycle is not fair, or "" when it is. Weak fairness: a system
    step enabled in every state of the cycle is taken on it; strong
    fairness: a system step of an action in ``machine.strongly_fair``
    enabled in some state of the cycle is taken on it."""
    taken = set(cycle_steps)
    enabled = [enabled_system_steps(machine, s) for s in cycle_states]
    always = set.intersection(*enabled) if enabled else set()
    missed = sorted(map(str, always - taken))
    if missed:
        return f"weakly fair step {missed[0]} is enabled throughout the cycle but never taken"
    strong = machine.strongly_fair
    for steps in enabled:
        for step in steps:
            if step.name in strong and step not in taken:
                return (f"strongly fair step {step} is enabled on the cycle but never "
                        "taken")
    return ""


def violates(machine: Machine, prop: Property, states: Sequence[State], loop: int) -> bool:
    """The infinite behaviour ``states[:loop]`` then ``states[loop:]`` forever
    violates ``prop``."""
    holds = [prop.holds_in(machine, s) for s in states]
    if prop.kind == EVENTUALLY_ALWAYS:   # <>[]P fails: ¬P infinitely often
        return not all(holds[loop:])
    if prop.kind == ALWAYS_EVENTUALLY:   # []<>P fails: eventually never P
        return not any(holds[loop:])
    if prop.kind == LEADS_TO:            # P ~> Q fails: P at some i, never Q from i on
        if any(holds[loop:]):
            return False
        first_bad_tail = len(states)
        while first_bad_tail > 0 and not holds[first_bad_tail - 1]:
            first_bad_tail -= 1
        return any(prop.trigger(machine, s) for s in states[first_bad_tail:])
    raise ValueError(f"{prop.name} is not a liveness property ({prop.kind})")


def judge(machine: Machine, prop: Property, states: Sequence[State],
          steps: Sequence[Step], loop: int, closing: Step | None) -> Judgement:
    n = len(states) - 1
    if len(steps) != n or not 0 <= loop <= n:
        return Judgement(False, False, False, False, "malformed lasso")
    cycle_states = list(states[loop:])
    cycle_steps = list(steps[loop:]) + ([closing] if closing is not None else [])
    if closing is None:
        returns = loop == n
        why = "" if returns else "stuttering lasso whose loop is not its last state"
    else:
        back = machine.apply(states[n], closing)
        returns = back is not None and (back == states[loop] or (
            machine.canonical_keeps_steps
            and machine.canonical(back) == machine.canonical(states[loop])))
        why = "" if returns else f"the closing step {closing} does not return to the loop state"
    loud = [s for s in cycle_steps if machine.tag(s) != SYSTEM]
    quiet = not loud
    if loud:
        why = why or f"the cycle takes {machine.tag(loud[0])} step {loud[0]}: it is not quiet"
    unfair = unfairness(machine, cycle_states, cycle_steps)
    why = why or unfair
    bad = violates(machine, prop, states, loop)
    if not bad:
        why = why or f"{prop.name} holds on this behaviour"
    return Judgement(returns, quiet, not unfair, bad, why)

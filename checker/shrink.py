"""Shrink a counterexample by deleting steps (Zeller & Hildebrandt's ddmin,
"Simplifying and Isolating Failure-Inducing Input", IEEE TSE 2002).

Why not leave it to Hypothesis: its shrinker works on the sequence of random
choices, and in a state machine deleting one step shifts the meaning of every
later choice (the third enabled step is another step once the state
differs), so it often stalls at traces two or three times longer than
needed — and takes most of a run's time doing so. Deleting concrete steps
and re-executing the rest is what a person would do by hand: a deletion is
kept when every remaining step is still enabled, stays within the bounds,
and the behaviour still violates the same property. The result is
1-minimal: removing any single step loses the violation.
"""

from __future__ import annotations

from collections.abc import Sequence

from kubemc.checker.counterexample import Counterexample
from kubemc.model.kernel import Machine, Step
from kubemc.properties.core import INVARIANT


def violating_prefix(machine: Machine, cex: Counterexample,
                     steps: Sequence[Step]) -> Counterexample | None:
    """Re-execute ``steps`` from ``cex.init``; the counterexample ending at the
    first violation of ``cex.prop``, or None if a step is disabled or leaves
    the bounds, or the property never fails."""
    prop = cex.prop
    state = cex.init
    if prop.kind == INVARIANT and not prop.check(machine, state):
        return Counterexample(prop, state, ())
    taken = []
    for step in steps:
        nxt = machine.apply(state, step)
        if nxt is None or not machine.within_bounds(nxt):
            return None
        taken.append((step, nxt))
        if prop.kind == INVARIANT:
            broken = not prop.check(machine, nxt)
        else:
            broken = not prop.check(machine, state, step, nxt)
        if broken:
            return Counterexample(prop, cex.init, tuple(taken))
        state = nxt
    return None


def shrink(machine: Machine, cex: Counterexample) -> Counterexample:
    """The shortest behaviour ddmin reaches from ``cex`` by deleting steps."""
    best = cex
    chunk = max(1, len(best.steps) // 2)
    while True:
        start, improved = 0, False
        while start < len(best.steps):
            steps = [s for s, _ in best.steps]
            candidate = violating_prefix(machine, best, steps[:start] + steps[start + chunk:])
            if candidate is not None and len(candidate.steps) < len(best.steps):
                best, improved = candidate, True
            else:
                start += chunk
        if chunk == 1 and not improved:
            return best
        chunk = max(1, chunk // 2) if not improved else chunk

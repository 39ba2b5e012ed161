"""Every fused ``successors`` equals the generic one (issue 9).

Why: the engines call only ``successors``; ``steps`` + ``apply`` are what
traces replay through, what the hypothesis engine draws from and what a
reader of a model reads. A machine that overrides ``successors`` for speed
(Raft, the informer, the kubelet, the compositions, ...) states the same
transition relation twice, and the two can drift apart silently: explore
would then check a relation nobody wrote down, and a trace found by explore
could fail to replay. So for every model of the catalog whose machine class
overrides it, on every state of a breadth-first search at the default
bounds (the first :data:`BFS_STATES`), plus the states along seeded random
walks (to reach deep states a short BFS of a big model never sees), the
fused successors must equal the kernel's ``Machine.successors(m, s)`` as a
multiset of (step, next state). Each mutant is checked at its own bounds
with fewer states: a mutant changes the handlers both paths share, and a
fused path that forgets the mutant's branch is exactly the drift sought.

Only states within the bounds are compared: the explorer never asks for
the successors of any other state.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from kubemc.checker.components import BUILT_IN, COMPONENTS
from kubemc.model.kernel import Machine, Step

#: states of the breadth-first search compared per model at its defaults
BFS_STATES = 2000
#: and per (model, mutant) at the mutant's bounds
MUTANT_STATES = 300
#: seeded random walks added to each search, and their length
WALKS, WALK_STEPS = 10, 60


def fused(model) -> bool:
    """The model's machine overrides the kernel's generic ``successors``."""
    return type(model.machine()).successors is not Machine.successors


FUSED = [m for c in BUILT_IN for m in COMPONENTS[c].models if fused(m)]
CASES = [pytest.param(m, None, BFS_STATES, id=m.name) for m in FUSED] + [
    pytest.param(m, mutant, MUTANT_STATES, id=f"{m.name}[{mutant}]")
    for m in FUSED for mutant in sorted(m.mutants)]


def difference(machine, state) -> str | None:
    """None when the fused and generic successors of ``state`` agree as
    multisets of (step, next state); else what differs, for a person."""
    fast = Counter(machine.successors(state))
    slow = Counter(Machine.successors(machine, state))
    if fast == slow:
        return None
    only_fast = sorted(map(str, (fast - slow).elements()))[:5]
    only_slow = sorted(map(str, (slow - fast).elements()))[:5]
    return (f"fused successors differ from steps + apply in state {state!r}:\n"
            f"  only fused: {only_fast}\n  only generic: {only_slow}")


def sample(machine, limit: int, seed: int = 9) -> tuple[list, bool]:
    """Up to ``limit`` distinct states within the bounds, breadth-first from
    the initial states, then those along :data:`WALKS` seeded random walks;
    and whether the search took every reachable state within the bounds
    (a mutant's bounds can be that small). The search follows the generic
    successors, so a state the fused path forgets to offer is still seen."""
    within = machine.within_bounds
    init = list(machine.init_states())
    seen, order, frontier = set(init), [], list(init)
    while frontier and len(order) < limit:
        nxt = []
        for s in frontier:
            if not within(s):
                continue
            order.append(s)
            if len(order) >= limit:
                break
            for _, t in Machine.successors(machine, s):
                if t not in seen:
                    seen.add(t)
                    nxt.append(t)
        frontier = nxt
    exhausted = not frontier and len(order) < limit
    rng = random.Random(seed)
    for _ in range(WALKS):
        s = rng.choice(init)
        for _ in range(WALK_STEPS):
            if not within(s):
                break
            if s not in seen:
                seen.add(s)
                order.append(s)
            succ = list(Machine.successors(machine, s))
            if not succ:
                break
            s = rng.choice(succ)[1]
    return order, exhausted


def test_the_fused_models_are_found():
    """The selection is not empty and holds the machines known to fuse, so
    this module cannot pass by checking nothing."""
    names = {m.name for m in FUSED}
    assert {"raft", "informer", "kubelet", "access"} <= names, names


@pytest.mark.parametrize("model, mutant, limit", CASES)
def test_fused_successors_equal_the_generic_ones(model, mutant, limit):
    machine = model.machine(mutant)
    states, exhausted = sample(machine, limit)
    assert exhausted or len(states) >= limit, f"only {len(states)} states sampled"
    for s in states:
        problem = difference(machine, s)
        assert problem is None, problem


def test_a_drifted_fused_successors_is_caught():
    """The comparison has teeth: a Raft whose fused path drops its last
    successor, or relabels a step, differs on the first state with any."""
    from kubemc.checker.catalog.store import RAFT

    base = type(RAFT.machine())

    class Drops(base):
        def successors(self, state):
            out = list(super().successors(state))
            return iter(out[:-1])

    class Relabels(base):
        def successors(self, state):
            for step, t in super().successors(state):
                yield Step(step.name, step.params + (0,)), t

    for cls in (Drops, Relabels):
        m = RAFT.machine()
        m.__class__ = cls
        states, _ = sample(m, 50)
        problems = [p for p in map(lambda s: difference(m, s), states) if p]
        assert problems, f"{cls.__name__}: no difference found"
        assert "only generic" in problems[0]

"""Helpers the test files share: driving a machine step by step, the states
the explore engine reaches, and the differential checks that keep a z3
encoding in step with its executable machine.

The test files import it as ``helpers``, the way they import ``conftest``:
pytest puts this folder on the import path.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubemc.checker.explore import explore
from kubemc.checker.z3engine import Differential
from kubemc.properties.core import INVARIANT, Property


def run(machine, *steps, state=None):
    """Apply ``steps`` in order from the machine's initial state (or from
    ``state``); every one must be enabled."""
    state = next(iter(machine.init_states())) if state is None else state
    for step in steps:
        nxt = machine.apply(state, step)
        assert nxt is not None, f"{step} is not enabled"
        state = nxt
    return state


def reachable(machine, limit=None):
    """Reachable states, in breadth-first order, as the explore engine visits
    them (a property that records every state it is asked about): the first
    ``limit``, or with no limit all of them."""
    seen = []
    spy = Property("record", machine.name, INVARIANT, "records states", "this test",
                   lambda m, s: seen.append(s) or True)
    outcome = explore(machine, [spy], max_states=limit)
    assert limit is not None or outcome.complete
    return seen


def random_walk(machine, choices):
    """The states of a run from the initial state that takes, at each step,
    successor ``choice % n`` of the ``n`` enabled; it ends early where no
    step is enabled."""
    (state,) = machine.init_states()
    states = [state]
    for c in choices:
        succ = list(machine.successors(state))
        if not succ:
            break
        state = succ[c % len(succ)][1]
        states.append(state)
    return states


def assert_encoding_agrees_on_reachable_states(encoding, limit, first, spread):
    """In the first ``first`` states the machine reaches and in about
    ``spread`` more spread over the rest (up to ``limit``), the encoding's
    successors are the machine's. Returns the states reached."""
    machine = encoding.machine
    diff = Differential(encoding)
    states = reachable(machine, limit)
    for state in states[:first] + states[first::max(1, len(states) // spread)]:
        assert diff.check(state, list(machine.successors(state))) == []
    return states


def assert_encoding_agrees_on_random_walks(encoding, examples, min_steps, max_steps, last=1):
    """In the last ``last`` states of ``examples`` random walks (derandomized)
    of ``min_steps`` to ``max_steps`` steps, the encoding's successors are
    the machine's."""
    machine = encoding.machine
    diff = Differential(encoding)

    @settings(max_examples=examples, derandomize=True, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(st.integers(0, 10_000), min_size=min_steps, max_size=max_steps))
    def walk(choices):
        for state in random_walk(machine, choices)[-last:]:
            assert diff.check(state, list(machine.successors(state))) == []
    walk()

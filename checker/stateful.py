"""The hypothesis engine: any kernel machine as a Hypothesis
``RuleBasedStateMachine``.

Why derive it instead of writing one per component: the machine already says
what the steps are, so a hand-written state machine could only drift from it.
Each action name becomes a rule (so Hypothesis prints a failing run as a
sequence of named actions), invariant properties become ``@invariant``
checks, transition properties are checked on every step, and Hypothesis
shrinks a failing run to a minimal one, which we write as a trace.

Profiles: ``ci`` is derandomized and bounded, so a CI run is reproducible and
its time predictable; ``deep`` runs many more and longer random behaviours.
"""

from __future__ import annotations

import time

import attrs
import hypothesis
from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky
from hypothesis.stateful import (RuleBasedStateMachine, get_state_machine_test, initialize,
                                 invariant, precondition, rule)

from checker.counterexample import Counterexample
from model.kernel import Machine
from properties.core import INVARIANT, TRANSITION

PROFILES = {
    "ci": dict(max_examples=300, stateful_step_count=60, derandomize=True),
    "deep": dict(max_examples=4000, stateful_step_count=120, derandomize=False),
}


class PropertyViolated(AssertionError):
    def __init__(self, prop):
        super().__init__(f"{prop.name} violated: {prop.statement}")
        self.prop = prop


@attrs.frozen
class StatefulOutcome:
    examples: int
    seconds: float
    counterexample: Counterexample | None = None


def state_machine_class(machine: Machine, properties, record: dict, max_rare: int = 4):
    """Build the RuleBasedStateMachine class for ``machine``.

    ``record`` receives the last failing behaviour: Hypothesis runs the
    shrunk example last, so what is left there after the run is the minimal
    counterexample.
    """
    invariants = [p for p in properties if p.kind == INVARIANT]
    transitions = [p for p in properties if p.kind == TRANSITION]
    inits = list(machine.init_states())
    counter = {"examples": 0}
    within = machine.within_bounds
    rare = sorted(machine.rare)

    class Derived(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.state = None
            self.init = None
            self.trace = []
            self._succ_for = None
            self._succ = {}
            counter["examples"] += 1

        @initialize(index=st.integers(0, len(inits) - 1),
                    budget=st.fixed_dictionaries({a: st.integers(0, max_rare) for a in rare}))
        def start(self, index, budget):
            self.state = self.init = inits[index]
            self.budget = dict(budget)
            self.trace = []
            self._check_invariants()

        def enabled(self):
            """Enabled steps by action name, cached for the current state."""
            if self._succ_for is not self.state:
                # A random run must not wander out of the bounds and stall
                # there, so a step that would leave them is not offered.
                table = {}
                for step, nxt in machine.successors(self.state):
                    if within(nxt):
                        table.setdefault(step.name, []).append((step, nxt))
                self._succ, self._succ_for = table, self.state
            return self._succ

        def take(self, name, data):
            if name in self.budget:
                self.budget[name] -= 1
            choices = self.enabled()[name]
            step = data.draw(st.sampled_from([c[0] for c in choices]), label=name)
            nxt = next(t for s, t in choices if s == step)
            before = self.state
            self.state = nxt
            self.trace.append((step, nxt))
            for p in transitions:
                if not p.check(machine, before, step, nxt):
                    self._fail(p)
            self._check_invariants()

        def _check_invariants(self):
            for p in invariants:
                if not p.check(machine, self.state):
                    self._fail(p)

        def _fail(self, prop):
            record["cex"] = Counterexample(prop, self.init, tuple(self.trace))
            raise PropertyViolated(prop)

        @invariant()
        def started(self):
            assert self.state is not None

        @precondition(lambda self: self.state is not None
                      and not any(self.allowed(a) for a in machine.tags))
        @rule()
        def stutter(self):
            """Enabled only in a deadlock, so such a run ends quietly."""

        def allowed(self, action):
            if self.state is None or action not in self.enabled():
                return False
            return self.budget.get(action, 1) > 0

    for action in sorted(machine.tags):
        def make(action):
            @precondition(lambda self: self.allowed(action))
            @rule(data=st.data())
            def fire(self, data):
                self.take(action, data)
            fire.__name__ = action
            return fire
        setattr(Derived, action, make(action))
    Derived.__name__ = f"{type(machine).__name__}StateMachine"
    return Derived, counter


def check(machine: Machine, properties, *, profile: str = "ci", seed: int | None = None,
          max_examples: int | None = None) -> StatefulOutcome:
    record: dict = {}
    cls, counter = state_machine_class(machine, properties, record)
    options = dict(PROFILES[profile])
    if max_examples is not None:
        options["max_examples"] = max_examples
    if seed is not None:
        options["derandomize"] = False
    config = settings(deadline=None, database=None, print_blob=False,
                      verbosity=Verbosity.quiet,
                      suppress_health_check=list(HealthCheck),
                      phases=[Phase.generate, Phase.shrink], **options)
    test = get_state_machine_test(cls, settings=config)
    if seed is not None:
        test = hypothesis.seed(seed)(test)
    start = time.perf_counter()
    try:
        test()
    except (PropertyViolated, Flaky):
        return StatefulOutcome(counter["examples"], time.perf_counter() - start, record.get("cex"))
    return StatefulOutcome(counter["examples"], time.perf_counter() - start, None)

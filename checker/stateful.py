"""The hypothesis engine: any kernel machine as a Hypothesis
``RuleBasedStateMachine``.

Why derive it instead of writing one per component: the machine already says
what the steps are, so a hand-written state machine could only drift from it.
One rule takes a step: it draws an enabled action (rare ones seldom, see
``Derived.step``) and then its parameters; properties are checked after
every step. A failing run is shrunk by deleting steps (``checker.shrink``)
to a 1-minimal one, which we write as a trace.

Liveness properties get a convergence phase at the end of every run
(``checker.convergence``): environment and faults stop, system steps run
fairly, and the property is judged on the lasso or the bounded run that
results. How often the goal was reached (and, for leads-to, how often the
trigger held) is counted, so a phase that never saw its goal or trigger
says so instead of passing vacuously. A liveness failure is shrunk by
deleting steps of its random prefix, each candidate judged by a fresh fair
run (``convergence.shrink``); its trace is a lasso when the run ended
quiescent or in a fair cycle, else a finite trace that "did not converge
within N fair steps".

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

from kubemc.checker import convergence
from kubemc.checker.counterexample import Counterexample
from kubemc.checker.shrink import shrink
from kubemc.model.kernel import Machine
from kubemc.properties.core import INVARIANT, TRANSITION

PROFILES = {
    "ci": dict(max_examples=300, stateful_step_count=60, derandomize=True),
    "deep": dict(max_examples=4000, stateful_step_count=150, derandomize=False),
}


#: A rare action is taken at most this many times in one run ...
MAX_RARE = 8
#: ... and, while a common action is enabled, with probability 1/RARE_ODDS.
#: Measured on the store's deepest bug (figure8_commit, 38 steps): one odds
#: in 10 found it in 0.03% of random runs, one in 20 in 0.14%.
RARE_ODDS = 20


class PropertyViolated(AssertionError):
    def __init__(self, prop):
        super().__init__(f"{prop.name} violated: {prop.statement}")
        self.prop = prop


@attrs.frozen
class StatefulOutcome:
    examples: int
    seconds: float
    counterexample: Counterexample | None = None
    #: per liveness property: convergence runs, how they ended, goal reached
    convergence: dict = attrs.field(factory=dict)


def state_machine_class(machine: Machine, properties, record: dict, max_rare: int = MAX_RARE):
    """Build the RuleBasedStateMachine class for ``machine``.

    ``record`` receives the last failing behaviour: Hypothesis runs the
    shrunk example last, so what is left there after the run is the minimal
    counterexample.
    """
    invariants = [p for p in properties if p.kind == INVARIANT]
    transitions = [p for p in properties if p.kind == TRANSITION]
    liveness = [p for p in properties if p.is_liveness]
    inits = list(machine.init_states())
    counter = {"examples": 0, "convergence": {
        p.name: {"runs": 0, "reached": 0, "triggered": 0, **{e: 0 for e in (
            convergence.QUIESCENT, convergence.CYCLE, convergence.BOUND,
            convergence.OUT_OF_BOUNDS)}} for p in liveness}}
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

        @initialize(index=st.integers(0, len(inits) - 1))
        def start(self, index):
            self.state = self.init = inits[index]
            self.budget = dict.fromkeys(rare, max_rare)
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
            self.failed = True
            raise PropertyViolated(prop)

        def teardown(self):
            if self.state is None or getattr(self, "failed", False) or not liveness:
                return
            run = convergence.fair_run(machine, self.state)
            for p in liveness:
                judged = convergence.judge(machine, p, self.init, self.trace, run)
                tally = counter["convergence"][p.name]
                tally["runs"] += 1
                tally[run.end] += 1
                tally["triggered"] += judged.triggered
                tally["reached"] += judged.reached
                if judged.counterexample is not None:
                    record["cex"] = judged.counterexample
                    record["prefix"] = (self.init, tuple(self.trace))
                    self.failed = True
                    raise PropertyViolated(p)

        @invariant()
        def started(self):
            assert self.state is not None

        @precondition(lambda self: self.state is not None)
        @rule(data=st.data())
        def step(self, data):
            """One step of the machine: usually a common action, rarely a rare one.

            Why one rule and not a rule per action: Hypothesis picks among
            enabled rules uniformly, so a timeout or a crash would be taken as
            often as a message delivery, and a run would spend its steps
            restarting elections that never finish. Here a rare action is
            taken with probability 1/RARE_ODDS while a common one is enabled
            (QuickCheck's ``frequency``), on top of its per-run budget.
            """
            table = self.enabled()
            common = [a for a in table if a not in self.budget]
            rare = [a for a in table if self.budget.get(a, 0) > 0]
            if not common and not rare:
                return  # deadlock: the run ends quietly
            if rare and (not common or data.draw(st.integers(0, RARE_ODDS - 1),
                                                  label="rare?") == 0):
                name = data.draw(st.sampled_from(sorted(rare)), label="rare action")
            else:
                name = data.draw(st.sampled_from(sorted(common)), label="action")
            self.take(name, data)

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
                      # generation only: a failure is shrunk by deleting
                      # steps (checker.shrink), which beats shrinking the
                      # choice sequence for state machines, in length and time
                      phases=[Phase.generate], report_multiple_bugs=False,
                      **options)
    test = get_state_machine_test(cls, settings=config)
    if seed is not None:
        test = hypothesis.seed(seed)(test)
    start = time.perf_counter()
    try:
        test()
    except (PropertyViolated, Flaky):
        found = record.get("cex")
        examples = counter["examples"]
        if found is not None and found.prop.is_liveness:
            init, prefix = record["prefix"]
            found = convergence.shrink(machine, found.prop, init, prefix) or found
        elif found is not None:
            found = shrink(machine, found)
        return StatefulOutcome(examples, time.perf_counter() - start, found,
                               counter["convergence"])
    return StatefulOutcome(counter["examples"], time.perf_counter() - start, None,
                           counter["convergence"])

"""The simulate engine: long random walks with the property checks of explore.

Why: exhaustive search stops where the state space outgrows memory; a random
walk needs memory for one path only, so it goes as deep and as wide as the
bounds allow, at the speed of ``machine.successors`` (TLC's ``-simulate``
mode makes the same trade). What it cannot do is prove anything: a property
not violated on the walks taken is not shown to hold, so a cover the walks
never reached is *undecided* (not vacuous, as it would be after an
exhaustive search), and a liveness property is never reported as holding.

A walk starts in an initial state (chosen at random when there are several)
and takes up to ``depth`` steps, each chosen uniformly among the enabled
successors that stay within the machine's bounds (a walk must not wander
out of them and stall there: the hypothesis engine makes the same choice,
and the shrinker keeps traces within them). It ends early where no step is
enabled. Invariants are checked in every state, transition properties on
every step taken, covers in every state — as ``checker.explore`` does.

Why a walk does not always compute every successor: where a machine keeps
the kernel's generic ``successors`` (``steps`` then ``apply`` each), a step
is drawn among the proposed ones and applied alone, drawing again without
it when it is disabled or leaves the bounds — the same uniform choice among
the enabled successors, without applying the steps not taken (2 to 5 times
faster on mvcc, cri, the ReplicaSet controller). A machine that overrides
``successors`` with a fused generator gets that generator, as explore does.

Liveness: after every walk, a convergence phase (``checker.convergence``,
as the hypothesis engine runs after every random run) stops environment
and faults and runs system steps fairly; a lasso or a run that does not
converge is a violation with a trace. A phase that converged proves
nothing about other behaviours, so liveness properties stay undecided.

Reproducibility: one ``random.Random(seed)`` draws every choice of every
walk in order, so the same seed, depth, bounds and properties give the same
walks; a violation on walk k reproduces with ``--walks k`` whatever budget
found it (``--time`` included). The seed goes into the trace's ``#meta``.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable, Sequence

import attrs

from kubemc.checker import convergence
from kubemc.checker.counterexample import Counterexample
from kubemc.checker.explore import mark_covers
from kubemc.checker.shrink import shrink
from kubemc.model.kernel import Machine
from kubemc.properties.core import COVER, INVARIANT, LEADS_TO, TRANSITION, Property

#: steps per walk when ``--depth`` is not given (TLC's simulation default)
DEFAULT_DEPTH = 100
#: walks when neither ``--walks`` nor ``--time`` is given
DEFAULT_WALKS = 1000
#: why no walk was taken: the bounds leave the model without an initial state
NO_INITIAL_STATE = "no initial state"


def fresh_seed() -> int:
    """A seed for a run that was given none: printed and recorded, so the
    run can be repeated; different each time, so repeated runs look at
    different walks."""
    return secrets.randbits(32)


@attrs.frozen(slots=True)
class Budget:
    """How much to walk: ``walks`` walks of at most ``depth`` steps, or
    until ``seconds`` have passed — whichever comes first. With neither
    walks nor seconds, ``DEFAULT_WALKS`` walks."""

    depth: int = DEFAULT_DEPTH
    walks: int | None = None
    seconds: float | None = None

    @property
    def walk_limit(self) -> int | None:
        if self.walks is None and self.seconds is None:
            return DEFAULT_WALKS
        return self.walks


@attrs.frozen(slots=True)
class Stats:
    walks: int
    #: steps taken on the walks (each visits one state); the convergence
    #: phases' fair steps are counted apart
    steps: int
    #: distinct states visited (by fingerprint: ``hash(state)``)
    distinct: int
    seconds: float
    fair_steps: int = 0

    @property
    def rate(self) -> float:
        """States visited per second: one per step and one per walk start."""
        return (self.steps + self.walks) / self.seconds if self.seconds > 0 else 0.0


@attrs.frozen(slots=True)
class Coverage:
    """What the walks exercised: the swarm's per-run report.

    ``premises``: the properties whose premise was reached — an invariant
    checked in some state, a transition property evaluated on some step, a
    leads-to whose trigger held, another liveness property judged by some
    convergence phase; a cover is reached when it held."""

    actions: frozenset = frozenset()
    covers: frozenset = frozenset()
    premises: frozenset = frozenset()


@attrs.frozen
class SimulationOutcome:
    stats: Stats
    seed: int
    counterexample: Counterexample | None = None
    #: the 1-based walk on which the violation happened
    walk: int | None = None
    #: per cover property: reached on some walk
    covers: dict = attrs.field(factory=dict)
    coverage: Coverage = Coverage()
    #: liveness properties: convergence phases, goal reached, trigger seen
    liveness: dict = attrs.field(factory=dict)
    #: why the walks stopped: "walks", "time", "violation" or NO_INITIAL_STATE
    stopped: str = "walks"


def progress_line(label: str, stats: Stats) -> str:
    return (f"{label}: {stats.walks:,} walks  {stats.steps:,} steps  "
            f"{stats.distinct:,} distinct states  {stats.rate:,.0f} states/s  "
            f"{stats.seconds:.0f} s")


class Simulator:
    """Random walks over one machine against a set of properties."""

    def __init__(self, machine: Machine, properties: Sequence[Property], *, seed: int,
                 budget: Budget = Budget(),
                 progress: Callable[[Stats], None] | None = None,
                 progress_every: float = 1.0):
        self.machine = machine
        self.invariants = [p for p in properties if p.kind == INVARIANT]
        self.transitions = [p for p in properties if p.kind == TRANSITION]
        self.covers = [p for p in properties if p.kind == COVER]
        self.liveness = [p for p in properties if p.is_liveness]
        self.seed = seed
        self.budget = budget
        self.progress = progress
        self.progress_every = progress_every

    def run(self) -> SimulationOutcome:
        m = self.machine
        rng = random.Random(self.seed)
        randrange = rng.randrange
        choose = chooser(m, randrange)
        invariants = [(p, p.check) for p in self.invariants]
        transitions = [(p, p.check) for p in self.transitions]
        covers = [(p, p.check) for p in self.covers]
        reached = {p.name: False for p in self.covers}
        actions: set[str] = set()
        tallies = {p.name: {"runs": 0, "reached": 0, "triggered": 0} for p in self.liveness}
        inits = list(m.init_states())
        seen: set[int] = set()
        depth = self.budget.depth
        walk_limit = self.budget.walk_limit
        start = time.perf_counter()
        deadline = start + self.budget.seconds if self.budget.seconds is not None else None
        next_report = start + self.progress_every
        walks = steps = fair_steps = 0
        stopped = "walks" if inits else NO_INITIAL_STATE

        def stats() -> Stats:
            return Stats(walks, steps, len(seen), time.perf_counter() - start, fair_steps)

        def violated(prop, init, path) -> SimulationOutcome:
            cex = Counterexample(prop, init, tuple(path))
            if not prop.is_liveness:
                cex = shrink(m, cex)
            return self._outcome(stats(), cex, walks, reached, actions, tallies, "violation")

        while inits and (walk_limit is None or walks < walk_limit):
            if deadline is not None and time.perf_counter() >= deadline:
                stopped = "time"
                break
            walks += 1
            init = state = inits[randrange(len(inits))] if len(inits) > 1 else inits[0]
            path: list = []
            seen.add(hash(state))
            for p, check in invariants:
                if not check(m, state):
                    return violated(p, init, path)
            if covers:
                covers = mark_covers(m, state, covers, reached)
            for _ in range(depth):
                chosen = choose(state)
                if chosen is None:
                    break  # no step enabled within the bounds: the walk ends
                step, nxt = chosen
                steps += 1
                path.append((step, nxt))
                actions.add(step.name)
                for p, check in transitions:
                    if not check(m, state, step, nxt):
                        return violated(p, init, path)
                state = nxt
                seen.add(hash(state))
                for p, check in invariants:
                    if not check(m, state):
                        return violated(p, init, path)
                if covers:
                    covers = mark_covers(m, state, covers, reached)
            if self.liveness:
                run = convergence.fair_run(m, state)
                fair_steps += len(run.steps)
                for p in self.liveness:
                    judged = convergence.judge(m, p, init, path, run)
                    tally = tallies[p.name]
                    tally["runs"] += 1
                    tally["reached"] += judged.reached
                    tally["triggered"] += judged.triggered
                    if judged.counterexample is not None:
                        cex = convergence.shrink(m, p, init, path) or judged.counterexample
                        return self._outcome(stats(), cex, walks, reached, actions, tallies,
                                             "violation")
            if self.progress is not None:
                now = time.perf_counter()
                if now >= next_report:
                    next_report = now + self.progress_every
                    self.progress(stats())
        return self._outcome(stats(), None, None, reached, actions, tallies, stopped)

    def _outcome(self, stats, cex, walk, reached, actions, tallies, stopped) -> SimulationOutcome:
        premises = set()
        if stats.walks:
            premises |= {p.name for p in self.invariants}
        if stats.steps:
            premises |= {p.name for p in self.transitions}
        for p in self.liveness:
            t = tallies[p.name]
            if (t["triggered"] if p.kind == LEADS_TO else t["runs"]):
                premises.add(p.name)
        hit = frozenset(n for n, ok in reached.items() if ok)
        coverage = Coverage(frozenset(actions), hit, frozenset(premises) | hit)
        return SimulationOutcome(stats, self.seed, cex, walk if cex is not None else None,
                       dict(reached), coverage, tallies, stopped)


def chooser(m: Machine, randrange: Callable[[int], int]):
    """``choose(state)``: a step and its successor drawn uniformly among the
    enabled successors within the bounds, or None where there is none.

    Rejection without replacement: draw, and when the draw is disabled or
    leaves the bounds, draw again among the rest — each enabled successor is
    equally likely to be the first accepted. With the kernel's generic
    ``successors`` the draw is over proposed steps, applying only those
    drawn; a machine's fused ``successors`` is used whole."""
    within, apply, steps_of, successors = m.within_bounds, m.apply, m.steps, m.successors

    def one_step(state):
        proposed = list(steps_of(state))
        while proposed:
            i = randrange(len(proposed))
            step = proposed[i]
            nxt = apply(state, step)
            if nxt is not None and within(nxt):
                return step, nxt
            proposed[i] = proposed[-1]
            proposed.pop()
        return None

    def fused(state):
        succ = list(successors(state))
        while succ:
            i = randrange(len(succ))
            if within(succ[i][1]):
                return succ[i]
            succ[i] = succ[-1]
            succ.pop()
        return None

    return one_step if type(m).successors is Machine.successors else fused


def simulate(machine: Machine, properties: Sequence[Property], *, seed: int,
             **kwargs) -> SimulationOutcome:
    return Simulator(machine, properties, seed=seed, **kwargs).run()

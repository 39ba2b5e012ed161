"""Exhaustive breadth-first exploration.

Why breadth-first: the first violation found is at the smallest depth, so the
counterexample is a shortest one — the trace people read is as short as the
bug allows.

Why fingerprints: the visited set keeps ``hash(canonical state)`` (a 64-bit
int) and its parent's fingerprint, not the states themselves; only the
current frontier holds states. A collision between two distinct states of a
run of N states has probability about N²/2⁶⁵ (TLC makes the same trade). The
counterexample is rebuilt afterwards by re-executing the machine along the
recorded fingerprints, which also turns symmetry representatives back into
one concrete, replayable behaviour.

Covers are judged in the same search: a cover is reached when some
discovered state satisfies it (``ExploreOutcome.covers``). A *visitor* sees every
discovered state too, in the same order, and may stop the search: the z3
engine's proofs over every reachable dataplane (``checker.reach``) walk the
states this way instead of with a search of their own. Liveness properties are
judged by ``checker.liveness`` on a recorded graph. When liveness may use the
machine's canonical form (it is the identity, or keeps step labels) that
graph search *is* the safety search — one search; otherwise (a symmetry)
safety is searched on representatives first and liveness on concrete
states after (why: see that module).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import attrs

from kubemc.model.kernel import Machine, State, Step
from kubemc.checker.counterexample import Counterexample
from kubemc.checker.errors import INTERNAL_ERROR, KubemcError
from kubemc.properties.core import COVER, INVARIANT, LIVENESS_KINDS, TRANSITION, Property


class SymmetryError(KubemcError):
    """A counterexample found on symmetry representatives that no concrete
    behaviour reproduces: the machine's ``canonical`` is at fault (a model
    bug, or a seeded mutant that breaks the symmetry), not the user's input.
    One line, exit 70 (an internal error, never 1: there is no trace)."""

    exit_code = INTERNAL_ERROR


@attrs.frozen
class Stats:
    states: int
    transitions: int
    depth: int
    queue: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.states / self.seconds if self.seconds > 0 else 0.0


@attrs.frozen
class ExploreOutcome:
    stats: Stats
    complete: bool  # every reachable state within bounds was expanded
    counterexample: Counterexample | None = None
    #: per cover property: reached in some explored state
    covers: dict = attrs.field(factory=dict)
    #: liveness properties not violated, but a violation could continue
    #: through a state outside the bounds (or the search was cut short)
    undecided: tuple = ()
    #: the liveness search's figures (states, edges, bytes, seconds)
    liveness: dict = attrs.field(factory=dict)


class Explorer:
    """One breadth-first run over one machine and a set of properties."""

    def __init__(self, machine: Machine, properties: Sequence[Property], *,
                 max_depth: int | None = None, max_states: int | None = None,
                 progress: Callable[[Stats], None] | None = None,
                 progress_every: float = 1.0,
                 visit: Callable[[State], bool | None] | None = None,
                 visit_step: Callable[[State, Step, State], bool | None] | None = None):
        """``visit(state)`` is called once for each distinct state the safety
        search discovers (canonical, past the invariants), initial states
        first, then breadth-first in discovery order; ``visit_step(state,
        step, successor)`` for every transition of every state expanded, in
        the same order, before the successor is recorded. A visitor returning
        True stops the search (the outcome is then incomplete).
        ``path_to(state)`` gives a discovered state's shortest path (with a
        symmetry, to a concrete state of its class). Liveness searches do not
        visit."""
        self.machine = machine
        self.invariants = [p for p in properties if p.kind == INVARIANT]
        self.transitions = [p for p in properties if p.kind == TRANSITION]
        self.covers = [p for p in properties if p.kind == COVER]
        self.liveness = [p for p in properties if p.kind in LIVENESS_KINDS]
        self.max_depth = max_depth
        self.max_states = max_states
        self.progress = progress
        self.progress_every = progress_every
        self.visit = visit
        self.visit_step = visit_step
        #: fingerprint -> its parent's (None for an initial state), of the last run
        self.parent: dict[int, int | None] = {}

    def run(self) -> ExploreOutcome:
        if self.liveness and (self.machine.canonical_keeps_steps
                              or type(self.machine).canonical is Machine.canonical):
            return self._run_with_graph()
        return self._run()

    def _run_with_graph(self) -> ExploreOutcome:
        """Safety, covers and liveness in one graph search."""
        from kubemc.checker import liveness

        m = self.machine
        report = None
        if self.progress is not None:
            report = lambda n, e, sec: self.progress(Stats(n, e, 0, 0, sec))  # noqa: E731
        safety = liveness.Safety(self.invariants, self.transitions, self.covers)
        g, complete = liveness.build(m, self.liveness, max_states=self.max_states,
                                     progress=report, progress_every=self.progress_every,
                                     safety=safety)
        depth, v = 0, len(g) - 1
        while v >= 0 and g.parent[v] >= 0:  # BFS: the last state found is the deepest
            depth, v = depth + 1, g.parent[v]
        stats = Stats(len(g), g.edges, depth, 0, g.seconds)
        if safety.violation is not None:
            prop, i, step = safety.violation
            chain, parent = [], {}
            while i >= 0:
                chain.append(g.fps[i])
                i = g.parent[i]
            for child, up in zip(chain, chain[1:] + [None]):
                parent[child] = up
            out = self._violated(prop, parent, chain[0], step, time.perf_counter() - g.seconds,
                                 depth, g.edges, 0)
            return attrs.evolve(out, stats=stats, covers=safety.reached)
        if not complete:
            return ExploreOutcome(stats, False, covers=safety.reached,
                           undecided=tuple(p.name for p in self.liveness))
        live = liveness.decide(m, g, self.liveness, complete)
        return ExploreOutcome(stats, complete, live.counterexample, safety.reached, live.undecided,
                       {**live.figures, "liveness_build_seconds": 0.0,
                        "liveness_single_search": True})

    def _run(self) -> ExploreOutcome:
        m = self.machine
        canonical = m.canonical
        within = m.within_bounds
        successors = m.successors
        invariants = [(p, p.check) for p in self.invariants]
        transitions = [(p, p.check) for p in self.transitions]
        uncovered = [(p, p.check) for p in self.covers]
        reached: dict[str, bool] = {p.name: False for p in self.covers}
        visit, visit_step = self.visit, self.visit_step
        parent = self.parent = {}
        start = time.perf_counter()
        transitions_seen = 0
        frontier: list[State] = []

        for s in m.init_states():
            c = canonical(s)
            fp = hash(c)
            if fp in parent:
                continue
            parent[fp] = None
            for p, check in invariants:
                if not check(m, c):
                    return self._violated(p, parent, fp, None, start, 0, 0, 0)
            if uncovered:
                uncovered = mark_covers(m, c, uncovered, reached)
            frontier.append(c)
            if visit is not None and visit(c):
                return self._stopped(parent, start, 0, 0, len(frontier), reached)

        depth = 0
        next_report = start + self.progress_every
        complete = True
        while frontier:
            if self.max_depth is not None and depth >= self.max_depth:
                complete = False
                break
            depth += 1
            next_frontier: list[State] = []
            for s in frontier:
                if not within(s):
                    continue
                fp_s = hash(s)
                for step, t in successors(s):
                    transitions_seen += 1
                    for p, check in transitions:
                        if not check(m, s, step, t):
                            return self._violated(p, parent, fp_s, step, start, depth,
                                                  transitions_seen, len(next_frontier))
                    if visit_step is not None and visit_step(s, step, t):
                        return self._stopped(parent, start, depth, transitions_seen,
                                             len(next_frontier), reached)
                    c = canonical(t)
                    fp = hash(c)
                    if fp in parent:
                        continue
                    parent[fp] = fp_s
                    for p, check in invariants:
                        if not check(m, c):
                            return self._violated(p, parent, fp, None, start, depth,
                                                  transitions_seen, len(next_frontier))
                    if uncovered:
                        uncovered = mark_covers(m, c, uncovered, reached)
                    next_frontier.append(c)
                    if visit is not None and visit(c):
                        return self._stopped(parent, start, depth, transitions_seen,
                                             len(next_frontier), reached)
                if self.progress is not None:
                    now = time.perf_counter()
                    if now >= next_report:
                        next_report = now + self.progress_every
                        self.progress(Stats(len(parent), transitions_seen, depth,
                                            len(next_frontier), now - start))
                if self.max_states is not None and len(parent) >= self.max_states:
                    complete = False
                    next_frontier = []
                    break
            frontier = next_frontier
        # the last level expanded produced no new state unless we stopped early
        reached_depth = depth if (frontier or not complete) else max(depth - 1, 0)
        stats = Stats(len(parent), transitions_seen, reached_depth, len(frontier),
                      time.perf_counter() - start)
        if not self.liveness:
            return ExploreOutcome(stats, complete, covers=reached)
        if not complete:  # a cut-short safety search decides no liveness property
            return ExploreOutcome(stats, complete, covers=reached,
                           undecided=tuple(p.name for p in self.liveness))
        from kubemc.checker import liveness
        live = liveness.check(m, self.liveness, max_states=self.max_states)
        return ExploreOutcome(stats, complete, live.counterexample, reached, live.undecided,
                              live.figures)

    # ------------------------------------------------------------------
    def path_to(self, state: State) -> tuple[State, tuple]:
        """``(init, ((step, state), …))``: a shortest path of concrete states
        to ``state`` (a state the last run discovered), re-executed along the
        recorded fingerprints."""
        chain = []
        cur: int | None = hash(self.machine.canonical(state))
        while cur is not None:
            chain.append(cur)
            cur = self.parent[cur]
        chain.reverse()
        init, steps = self._rebuild(chain)
        return init, tuple(steps)

    def _stopped(self, parent, start, depth, transitions, queue, reached) -> ExploreOutcome:
        """The visitor stopped the search."""
        stats = Stats(len(parent), transitions, depth, queue, time.perf_counter() - start)
        return ExploreOutcome(stats, False, covers=reached)

    def _violated(self, prop, parent, fp, step, start, depth, transitions, queue):
        stats = Stats(len(parent), transitions, depth, queue, time.perf_counter() - start)
        chain = []
        cur: int | None = fp
        while cur is not None:
            chain.append(cur)
            cur = parent[cur]
        chain.reverse()
        init, steps = self._rebuild(chain)
        if step is not None:  # a transition property failed on one more step
            before = steps[-1][1] if steps else init
            steps.append((step, self.machine.apply(before, step)))
            # the violating successor came from the canonical state; re-find it
            # from the concrete one so the trace replays exactly
            if self.machine.canonical(before) != before:
                steps[-1] = self._refind_transition(before, prop)
        return ExploreOutcome(stats, False, Counterexample(prop, init, tuple(steps)))

    def _rebuild(self, chain: list[int]):
        """A concrete path whose states' canonical fingerprints are ``chain``.

        Depth-first with backtracking: several successors of one state may
        share the next fingerprint, and the first one need not be where the
        rest of the chain continues when ``canonical`` returns a member of a
        class but not always the same one. With a canonical form (one
        representative per class) and a true symmetry of the steps the first
        choice always continues, so the backtracking costs nothing there.
        When no path exists the machine's ``canonical`` is not a symmetry of
        its steps, or not a canonical form: the recorded representatives
        cannot be met by any concrete behaviour, so the verdict itself may be
        wrong; :class:`SymmetryError` says so."""
        m = self.machine
        last = len(chain) - 1
        dead: set[tuple[int, State]] = set()  # (position, state): no way on from there

        def matching(state, k):
            target = chain[k + 1]
            for step, t in m.successors(state):
                if hash(m.canonical(t)) == target and (k + 1, t) not in dead:
                    yield step, t

        for init in m.init_states():
            if hash(m.canonical(init)) != chain[0]:
                continue
            if last == 0:
                return init, []
            path: list[tuple[Step, State]] = []
            stack = [matching(init, 0)]
            while stack:
                k = len(path)
                nxt = next(stack[-1], None)
                if nxt is None:
                    stack.pop()
                    if path:
                        dead.add((k, path.pop()[1]))
                    continue
                path.append(nxt)
                if k + 1 == last:
                    return init, path
                stack.append(matching(nxt[1], k + 1))
            dead.add((0, init))
        raise SymmetryError(
            f"could not rebuild the counterexample: no behaviour of {m.name} meets the states "
            f"the search recorded, so {type(m).__name__}.canonical() is not a symmetry of its "
            f"steps or does not give one representative per class, and the verdict may be "
            f"wrong; run with symmetry off (--bound symmetry=false) and report it")

    def _refind_transition(self, before, prop):
        for step, t in self.machine.successors(before):
            if not prop.check(self.machine, before, step, t):
                return (step, t)
        raise RuntimeError("transition violation did not reproduce on the concrete state")


def mark_covers(m, state, uncovered, reached):
    """Mark the covers ``state`` satisfies; the ones still to reach."""
    left = []
    for p, check in uncovered:
        if check(m, state):
            reached[p.name] = True
        else:
            left.append((p, check))
    return left


def explore(machine: Machine, properties: Sequence[Property], **kwargs) -> ExploreOutcome:
    return Explorer(machine, properties, **kwargs).run()

"""Liveness by fair-cycle detection on the explored graph.

What is decided (the semantics are ``properties.core``'s): a liveness
property fails when some infinite behaviour is a *lasso* — a stem from an
initial state, then a cycle repeated forever — whose cycle is **quiet** (only
``system`` steps: environment and faults have stopped, after at most what the
machine's budgets allow in the stem) and **fair** (every system step
instance enabled in every cycle state is taken on it; every step of a
``strongly_fair`` action enabled in some cycle state is taken on it), and
which violates the property. A state in which no system step is enabled is
a lasso by itself: the behaviour stutters there forever, which is fair and
quiet.

How (the anchors are TLC's liveness checker and the Emerson–Lei algorithm
for fairness constraints, as in Clarke, Grumberg & Peled, *Model Checking*,
§6.7): one breadth-first search records the graph — state fingerprints,
BFS parents, and every edge with its step and tag — in flat integer arrays
(``array('i')``: 8 bytes an edge, see ``Graph.nbytes``); Tarjan's algorithm
(iterative: no recursion limit) decomposes the system edges into strongly
connected components; a component is fair as a whole or not at all for weak
fairness (a sub-cycle has *more* continuously enabled steps and *fewer*
taken ones), while for strong fairness the states that enable a strongly
fair step the component never takes are removed and what is left is
decomposed again (Emerson–Lei). Every fair cycle lies in one of the
components left, so:

* ``EVENTUALLY_ALWAYS(P)`` fails iff a fair component has a ¬P state, or a
  stuck state is ¬P;
* ``ALWAYS_EVENTUALLY(P)`` fails iff the ¬P states alone hold a fair
  component (fairness still judged on every step enabled, also those leaving
  ¬P), or a stuck state is ¬P;
* ``LEADS_TO(T, Q)`` fails iff a reachable T∧¬Q state reaches, through ¬Q
  states, a fair component of ¬Q states or a stuck ¬Q state.

The counterexample is a lasso: the shortest stem (BFS parents) to the
cycle's entry, then a cycle through the component that takes one edge of
every step the component takes, visits a state where each step it never
takes is disabled (so the cycle is fair, not only the component) and, for
``EVENTUALLY_ALWAYS``, a ¬P state. It is rebuilt by re-executing the machine
step by step, so it replays exactly.

Bounds: states outside ``within_bounds`` are recorded but not expanded, so
nothing is known of their future. They are never taken for stuck states,
and a step into one counts as enabled (a cycle that ignores it is not
fair). A violation is therefore never reported because of them; but one
could continue through them, so a property found not violated while such
states exist is *undecided*, not holding (``Verdict.undecided``).

Symmetry: the graph is built on concrete states (identity), not on the
machine's ``canonical``, unless the machine declares
``canonical_keeps_steps``. Liveness under symmetry reduction is unsound in
general — a step's parameters name the very processes a permutation swaps,
so "the same step is taken on the cycle" is not preserved by the quotient
(tlaplus/tlaplus#59, and PR#972 on TLC's parallel liveness missing
violations). A canonical form that keeps step labels (a state and its
representative enable the same steps, leading to states with one
representative: a label-preserving bisimulation, e.g. the apiserver
lifecycle model's compaction of superseded history) preserves fairness and
every property that reads only what the representative keeps, so it is
used; the tests check the declaration on the model's reachable states. The
graph build is a second search when a model has liveness properties
(``kubemc bench liveness`` measures both).
"""

from __future__ import annotations

import time
from array import array
from collections import deque
from collections.abc import Callable, Sequence

import attrs

from kubemc.checker.counterexample import Counterexample
from kubemc.model.kernel import SYSTEM, Machine, Step
from kubemc.properties.core import EVENTUALLY_ALWAYS, LEADS_TO, Property


class Graph:
    """The explored state graph in flat arrays, indexed by state id (BFS
    discovery order, so a smaller id is never deeper). Edges of state ``i``
    are ``dst[off[i]:off[i+1]]`` with step labels ``lab[...]``."""

    __slots__ = ("fps", "parent", "expanded", "off", "dst", "lab", "labels", "label_ids",
                 "system", "strong", "holds", "truncated", "seconds")

    def __init__(self):
        self.fps = array("q")
        self.parent = array("i")
        self.expanded = bytearray()
        self.off = array("q")
        self.dst = array("i")
        self.lab = array("i")
        self.labels: list[Step] = []
        self.label_ids: dict[Step, int] = {}
        self.system = bytearray()    # per label: a system step
        self.strong = bytearray()    # per label: a system step of a strongly fair action
        self.holds: dict[str, bytearray] = {}  # per predicate name, per state
        self.truncated = 0
        self.seconds = 0.0

    def __len__(self) -> int:
        return len(self.fps)

    @property
    def edges(self) -> int:
        return len(self.dst)

    def nbytes(self) -> int:
        """Bytes held by the graph's arrays (the fingerprint -> id map used
        while building is freed after the search)."""
        arrays = (self.fps, self.parent, self.off, self.dst, self.lab)
        return (sum(a.itemsize * len(a) for a in arrays) + len(self.expanded)
                + sum(len(b) for b in self.holds.values()))

    def out(self, i: int) -> range:
        return range(self.off[i], self.off[i + 1])

    def system_out(self, i: int):
        dst, lab, system = self.dst, self.lab, self.system
        for e in range(self.off[i], self.off[i + 1]):
            if system[lab[e]]:
                yield e, dst[e], lab[e]


def representative(machine: Machine):
    """The canonical form liveness may use: the machine's own when it keeps
    step labels, else the identity (see the module text on symmetry)."""
    if machine.canonical_keeps_steps:
        return machine.canonical
    return lambda state: state


def _predicates(props: Sequence[Property]):
    """(key, function(machine, state)) for every state predicate the
    properties need: the goal, and the trigger of a leads-to."""
    out = []
    for p in props:
        out.append((p.name, p.check))
        if p.kind == LEADS_TO:
            out.append((p.name + "#trigger", p.trigger))
    return out


@attrs.define
class Safety:
    """What the graph search checks on the way when it is also the safety
    search (``explore`` does this when liveness may use the machine's own
    canonical form: one search instead of two). ``violation`` receives
    ``(property, state id, step or None)``: the state that breaks an
    invariant, or the state a transition property fails on leaving."""

    invariants: Sequence[Property] = ()
    transitions: Sequence[Property] = ()
    covers: Sequence[Property] = ()
    reached: dict = attrs.field(factory=dict)
    violation: tuple | None = None


class _Stop(Exception):
    pass


def build(machine: Machine, props: Sequence[Property], *,
          max_states: int | None = None,
          progress: Callable[[int, int, float], None] | None = None,
          progress_every: float = 1.0, safety: Safety | None = None) -> tuple[Graph, bool]:
    """Breadth-first search on concrete states recording the whole graph.
    Returns the graph and whether it is complete (not cut by max_states or
    a safety violation)."""
    g = Graph()
    start = time.perf_counter()
    preds = _predicates(props)
    for key, _ in preds:
        g.holds[key] = bytearray()
    holds = [(g.holds[k], f) for k, f in preds]
    strong = machine.strongly_fair
    canonical = representative(machine)
    ids: dict[int, int] = {}
    frontier: list = []
    invariants = [(p, p.check) for p in safety.invariants] if safety else []
    transitions = [(p, p.check) for p in safety.transitions] if safety else []
    uncovered = [(p, p.check) for p in safety.covers] if safety else []
    if safety:
        safety.reached.update({p.name: False for p in safety.covers})

    def discover(state, parent: int) -> int:
        nonlocal uncovered
        state = canonical(state)
        fp = hash(state)
        i = ids.get(fp)
        if i is not None:
            return i
        i = len(g.fps)
        ids[fp] = i
        g.fps.append(fp)
        g.parent.append(parent)
        for bits, f in holds:
            bits.append(1 if f(machine, state) else 0)
        frontier.append(state)
        for p, check in invariants:
            if not check(machine, state):
                safety.violation = (p, i, None)
                raise _Stop
        if uncovered:
            left = []
            for p, check in uncovered:
                if check(machine, state):
                    safety.reached[p.name] = True
                else:
                    left.append((p, check))
            uncovered = left
        return i

    try:
        complete = _search(machine, g, discover, frontier, transitions, safety, strong,
                           max_states, progress, progress_every, start)
    except _Stop:
        complete = False
    # states discovered but never expanded (cut short) have no edges
    while len(g.off) < len(g.fps):
        g.off.append(len(g.dst))
        g.expanded.append(0)
    g.off.append(len(g.dst))
    g.seconds = time.perf_counter() - start
    return g, complete


def _search(machine, g, discover, frontier, transitions, safety, strong, max_states,
            progress, progress_every, start) -> bool:
    for s in machine.init_states():
        discover(s, -1)
    within, successors, tag = machine.within_bounds, machine.successors, machine.tag
    label_ids, dst, lab, off, expanded = g.label_ids, g.dst, g.lab, g.off, g.expanded
    next_report = start + progress_every
    complete = True
    head = 0
    while head < len(frontier):
        s = frontier[head]
        frontier[head] = None  # the state itself is not kept once expanded
        i = head
        head += 1
        off.append(len(dst))
        if not within(s):
            expanded.append(0)
            g.truncated += 1
            continue
        expanded.append(1)
        for step, t in successors(s):
            for p, check in transitions:
                if not check(machine, s, step, t):
                    safety.violation = (p, i, step)
                    raise _Stop
            l = label_ids.get(step)
            if l is None:
                l = label_ids[step] = len(g.labels)
                g.labels.append(step)
                is_system = tag(step) == SYSTEM
                g.system.append(is_system)
                g.strong.append(is_system and step.name in strong)
            dst.append(discover(t, i))
            lab.append(l)
        if progress is not None:
            now = time.perf_counter()
            if now >= next_report:
                next_report = now + progress_every
                progress(len(g.fps), len(dst), now - start)
        if max_states is not None and len(g.fps) >= max_states:
            complete = False
            break
    return complete


# ---------------------------------------------------------------------------
# strongly connected components
# ---------------------------------------------------------------------------


class Tarjan:
    """Tarjan's algorithm with an explicit stack, over the system edges
    between allowed states. Scratch arrays are sized once and reset only
    where a run touched them, so decomposing many small sub-components
    costs what they contain."""

    def __init__(self, g: Graph):
        self.g = g
        n = len(g)
        self.index = array("i", [-1]) * n
        self.low = array("i", [0]) * n
        self.on = bytearray(n)

    def components(self, roots, allowed: bytearray) -> list[list[int]]:
        """The non-trivial components (a cycle exists in each) reachable
        from ``roots`` through allowed states."""
        g = self.g
        off, dst, lab, system = g.off, g.dst, g.lab, g.system
        index, low, on = self.index, self.low, self.on
        counter, stack, found, touched = 0, [], [], []
        for r in roots:
            if not allowed[r] or index[r] >= 0:
                continue
            index[r] = low[r] = counter
            counter += 1
            touched.append(r)
            stack.append(r)
            on[r] = 1
            work = [[r, off[r]]]
            while work:
                frame = work[-1]
                v, e = frame
                end = off[v + 1]
                descended = False
                while e < end:
                    w = dst[e]
                    ok = system[lab[e]] and allowed[w]
                    e += 1
                    if not ok:
                        continue
                    if index[w] < 0:
                        frame[1] = e
                        index[w] = low[w] = counter
                        counter += 1
                        touched.append(w)
                        stack.append(w)
                        on[w] = 1
                        work.append([w, off[w]])
                        descended = True
                        break
                    if on[w] and index[w] < low[v]:
                        low[v] = index[w]
                if descended:
                    continue
                work.pop()
                if work:
                    u = work[-1][0]
                    if low[v] < low[u]:
                        low[u] = low[v]
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on[w] = 0
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1 or any(d == v for _, d, _ in g.system_out(v)):
                        found.append(comp)
        for t in touched:
            index[t] = -1
        return found


def _enabled(g: Graph, v: int) -> set[int]:
    return {l for _, _, l in g.system_out(v)}


def fair_components(g: Graph, tarjan: Tarjan, comps: list[list[int]],
                    scratch: bytearray) -> list[list[int]]:
    """The maximal fair sub-components of ``comps`` (Emerson–Lei): drop a
    component that misses a weakly fair step; cut from it the states that
    enable a strongly fair step it never takes and decompose the rest."""
    fair = []
    work = list(comps)
    while work:
        comp = work.pop()
        members = set(comp)
        taken, enabled_anywhere = set(), set()
        always = None
        for v in comp:
            en = set()
            for _, w, l in g.system_out(v):
                en.add(l)
                if w in members:
                    taken.add(l)
            enabled_anywhere |= en
            always = en if always is None else always & en
        strong_missed = {l for l in enabled_anywhere if g.strong[l]} - taken
        if strong_missed:
            keep = [v for v in comp if not (_enabled(g, v) & strong_missed)]
            for v in keep:
                scratch[v] = 1
            work += tarjan.components(keep, scratch)
            for v in keep:
                scratch[v] = 0
            continue
        if always - taken:
            continue  # a weakly fair step enabled throughout is never taken
        fair.append(comp)
    return fair


# ---------------------------------------------------------------------------
# the search per property
# ---------------------------------------------------------------------------


@attrs.frozen
class Lasso:
    """A lasso in graph terms: the stem's state ids (initial .. entry) and
    the cycle's edges from the entry back to it (empty: stutter)."""

    stem: tuple
    cycle: tuple


@attrs.frozen
class Verdict:
    prop: Property
    lasso: Lasso | None
    undecided: bool = False


def _mask(g: Graph, pred) -> bytearray:
    return bytearray(1 if g.expanded[i] and pred(i) else 0 for i in range(len(g)))


def _stuck(g: Graph, allowed: bytearray) -> list[int]:
    """Expanded allowed states in which no system step is enabled."""
    return [v for v in range(len(g)) if allowed[v]
            and not any(True for _ in g.system_out(v))]


def _chain(g: Graph, v: int) -> tuple:
    out = []
    while v >= 0:
        out.append(v)
        v = g.parent[v]
    return tuple(reversed(out))


def _bfs_path(g: Graph, src: int, goal, inside, system_only=True) -> list[int] | None:
    """Edges of a shortest path from ``src`` to a state satisfying ``goal``
    through states ``inside`` (src itself counts if it is a goal)."""
    if goal(src):
        return []
    prev = {src: None}
    queue = deque([src])
    while queue:
        v = queue.popleft()
        for e in g.out(v):
            w = g.dst[e]
            if w in prev or not inside(w) or (system_only and not g.system[g.lab[e]]):
                continue
            prev[w] = e
            if goal(w):
                path = []
                while prev[w] is not None:
                    e2 = prev[w]
                    path.append(e2)
                    w = _src(g, e2)
                return list(reversed(path))
            queue.append(w)
    return None


def _reaching(g: Graph, targets, inside) -> set[int]:
    """States ``inside`` from which a path through states ``inside`` (any
    step: a stem may take environment and fault steps) reaches a target."""
    n = len(g)
    count = array("i", [0]) * (n + 1)
    for w in g.dst:
        count[w + 1] += 1
    for i in range(n):
        count[i + 1] += count[i]
    rev = array("i", [0]) * len(g.dst)
    fill = array("i", count)
    for v in range(n):
        for e in g.out(v):
            w = g.dst[e]
            rev[fill[w]] = v
            fill[w] += 1
    seen = {t for t in targets if inside(t)}
    queue = deque(seen)
    while queue:
        w = queue.popleft()
        for k in range(count[w], count[w + 1]):
            v = rev[k]
            if v not in seen and inside(v):
                seen.add(v)
                queue.append(v)
    return seen


def _src(g: Graph, e: int) -> int:
    """The state an edge leaves (binary search in the offsets)."""
    lo, hi = 0, len(g.off) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if g.off[mid] <= e:
            lo = mid
        else:
            hi = mid - 1
    while g.off[lo + 1] <= e:  # states without edges share an offset
        lo += 1
    return lo


def fair_cycle(g: Graph, comp: list[int], entry: int, visit: int | None = None) -> tuple:
    """Edges of a cycle from ``entry`` back to it inside the fair component
    ``comp`` that is fair itself: it takes one edge of every step the
    component takes, passes a state where each step the component never
    takes is disabled, and passes ``visit`` if given."""
    members = set(comp)
    inside = members.__contains__
    internal: dict[int, int] = {}
    for v in comp:
        for e, w, l in g.system_out(v):
            if w in members and l not in internal:
                internal[l] = e
    path: list[int] = []
    cur = entry

    def go(goal):
        nonlocal cur
        step = _bfs_path(g, cur, goal, inside)
        if step is None:  # pragma: no cover - a component is strongly connected
            raise RuntimeError("fair component is not strongly connected")
        path.extend(step)
        if step:
            cur = g.dst[step[-1]]

    if visit is not None:
        go(lambda v: v == visit)
    for l, e in internal.items():
        if any(g.lab[x] == l for x in path):
            continue  # already taken on the way
        src = _src(g, e)
        go(lambda v, src=src: v == src)
        path.append(e)
        cur = g.dst[e]
    visited = {entry} | {g.dst[e] for e in path}
    never = {l for v in comp for l in _enabled(g, v)} - set(internal)
    for l in sorted(never):
        if all(l in _enabled(g, v) for v in visited):
            go(lambda v, l=l: l not in _enabled(g, v))
            visited.add(cur)
    go(lambda v: v == entry and (path or any(d == entry for _, d, _ in g.system_out(entry))))
    if not path:  # a one-state component: its self-loops
        path = [e for e, d, _ in g.system_out(entry) if d == entry][:1]
    return tuple(path)


def check_property(g: Graph, prop: Property, tarjan: Tarjan, full: list[list[int]],
                   scratch: bytearray) -> Verdict:
    goal = g.holds[prop.name]
    if prop.kind == EVENTUALLY_ALWAYS:
        allowed = g.expanded
        comps = full
    else:
        allowed = _mask(g, lambda i: not goal[i])
        comps = []
        for c in full:
            roots = [v for v in c if allowed[v]]
            if roots:
                comps += tarjan.components(roots, allowed)
    fair = fair_components(g, tarjan, comps, scratch)
    stuck = _stuck(g, allowed)
    # targets: state -> (component or None for stuttering)
    if prop.kind == EVENTUALLY_ALWAYS:
        fair = [c for c in fair if any(not goal[v] for v in c)]
        stuck = [v for v in stuck if not goal[v]]
    target: dict[int, list[int] | None] = {v: None for v in stuck}
    for c in fair:
        for v in c:
            target[v] = c
    lasso = None
    if prop.kind == LEADS_TO:
        trig = g.holds[prop.name + "#trigger"]
        back = _reaching(g, target, lambda w: not goal[w])
        starts = [i for i in sorted(back) if trig[i]]
        if starts:  # ids are BFS order: the smallest has the shortest stem
            s = starts[0]
            path = _bfs_path(g, s, target.__contains__, lambda w: not goal[w],
                             system_only=False)
            entry = g.dst[path[-1]] if path else s
            stem = _chain(g, s) + tuple(g.dst[e] for e in path)
            lasso = _lasso(g, stem, target[entry], entry, None)
    elif target:
        entry = min(target)
        comp = target[entry]
        witness = None
        if prop.kind == EVENTUALLY_ALWAYS and comp is not None:
            witness = min(v for v in comp if not goal[v])
        lasso = _lasso(g, _chain(g, entry), comp, entry, witness)
    undecided = lasso is None and g.truncated > 0
    return Verdict(prop, lasso, undecided)


def _lasso(g, stem, comp, entry, witness) -> Lasso:
    cycle = () if comp is None else fair_cycle(g, comp, entry, witness)
    return Lasso(tuple(stem), cycle)


# ---------------------------------------------------------------------------
# from graph ids back to concrete states
# ---------------------------------------------------------------------------


def rebuild(machine: Machine, g: Graph, prop: Property, lasso: Lasso) -> Counterexample:
    """Re-execute the lasso on the machine: the stem by fingerprints, the
    cycle by its recorded steps (the step taken matters for fairness)."""
    canonical = representative(machine)
    init = next(s for s in machine.init_states()
                if hash(canonical(s)) == g.fps[lasso.stem[0]])
    state, states, steps = init, [init], []
    for target in lasso.stem[1:]:
        for step, t in machine.successors(state):
            if hash(canonical(t)) == g.fps[target]:
                break
        else:  # pragma: no cover - only on a fingerprint collision
            raise RuntimeError("could not rebuild the lasso's stem (fingerprint collision?)")
        steps.append(step)
        states.append(t)
        state = t
    loop = len(steps)
    cycle_steps = []
    for e in lasso.cycle:
        step = g.labels[g.lab[e]]
        t = machine.apply(state, step)
        if t is None or hash(canonical(t)) != g.fps[g.dst[e]]:  # pragma: no cover
            raise RuntimeError("could not rebuild the lasso's cycle")
        cycle_steps.append(step)
        states.append(t)
        state = t
    closing = None
    if cycle_steps:
        closing = cycle_steps.pop()
        states.pop()
    pairs = tuple(zip(steps + cycle_steps, states[1:]))
    return Counterexample(prop, init, pairs, loop=loop, closing=closing)


@attrs.frozen
class LivenessOutcome:
    counterexample: Counterexample | None
    undecided: tuple  # names of properties a truncated state leaves open
    figures: dict


def check(machine: Machine, props: Sequence[Property], *, max_states: int | None = None,
          progress: Callable[[int, int, float], None] | None = None) -> LivenessOutcome:
    """Build the graph and judge every liveness property on it; the first
    violated one (in the given order) gives the counterexample."""
    g, complete = build(machine, props, max_states=max_states, progress=progress)
    return decide(machine, g, props, complete)


def decide(machine: Machine, g: Graph, props: Sequence[Property],
           complete: bool) -> LivenessOutcome:
    """Judge every liveness property on a built graph."""
    start = time.perf_counter()
    tarjan = Tarjan(g)
    full = tarjan.components(range(len(g)), g.expanded)
    scratch = bytearray(len(g))
    verdicts = [check_property(g, p, tarjan, full, scratch) for p in props]
    seconds = time.perf_counter() - start
    figures = {"liveness_states": len(g), "liveness_edges": g.edges,
               "liveness_graph_bytes": g.nbytes(), "liveness_truncated_states": g.truncated,
               "liveness_components": len(full),
               "liveness_build_seconds": round(g.seconds, 3),
               "liveness_cycle_seconds": round(seconds, 3)}
    bad = next((v for v in verdicts if v.lasso is not None), None)
    cex = rebuild(machine, g, bad.prop, bad.lasso) if bad is not None else None
    undecided = tuple(v.prop.name for v in verdicts if v.undecided or not complete)
    return LivenessOutcome(cex, () if cex is not None else undecided, figures)

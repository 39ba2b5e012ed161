"""Liveness: the fair-cycle search is sound and complete on small hand-made
graphs (checked against a brute force over state sets, written from the
definition), lassos replay through ``kubemc trace replay``, the hypothesis
convergence phase counts what it reached and fails on a machine that does
not converge, and the informer and garbage-collection properties hold on the
correct models and fail, as lassos, on their mutants."""

from __future__ import annotations

import itertools
import json
import random
import types

import pytest

from kubemc.checker import convergence, lasso, liveness, stateful, traces
from kubemc.checker.cli import main
from kubemc.checker.explore import explore
from kubemc.model.kernel import ENVIRONMENT, FAULT, SYSTEM, Machine, Step
from kubemc.properties.core import (ALWAYS_EVENTUALLY, COVER, EVENTUALLY_ALWAYS, LEADS_TO,
                             Property)


class Graph(Machine):
    """A machine given by its edges ``(src, action, dst, tag)``: every state
    an int, every action without parameters — a state graph drawn by hand."""

    name = "graph"

    def __init__(self, edges, init=(0,), strong=(), outside=(), mutant=None):
        super().__init__(None)
        self.edges = tuple(tuple(e) for e in edges)
        self.init = tuple(init)
        self.tags = {name: tag for _, name, _, tag in self.edges}
        self.strongly_fair = frozenset(strong)
        self.outside = frozenset(outside)

    def config(self):
        return {}

    def init_states(self):
        return self.init

    def steps(self, state):
        return [Step(name) for src, name, _, _ in self.edges if src == state]

    def apply(self, state, step):
        return next((dst for src, name, dst, _ in self.edges
                     if src == state and name == step.name and not step.params), None)

    def within_bounds(self, state):
        return state not in self.outside


def prop(kind, goal, trigger=None, name="goal"):
    return Property(name, "graph", kind, f"{kind} of {sorted(goal)}", "hand-made",
                    lambda m, s: s in goal,
                    trigger=None if trigger is None else (lambda m, s: s in trigger))


def lasso_of(machine, p):
    out = liveness.check(machine, [p])
    return out.counterexample, out


def confirmed(machine, cex):
    return lasso.judge(machine, cex.prop, cex.states, [s for s, _ in cex.steps], cex.loop,
                       cex.closing)


S, E, F = SYSTEM, ENVIRONMENT, FAULT


# ---------------------------------------------------------------------------
# hand-made graphs
# ---------------------------------------------------------------------------


def test_a_fair_cycle_that_misses_the_goal_is_a_lasso():
    # c (to the goal) is enabled in 1 only: a cycle 0 -> 1 -> 0 never taking
    # it is weakly fair, so <>[]goal fails
    m = Graph([(0, "a", 1, S), (1, "b", 0, S), (1, "c", 2, S), (2, "d", 2, S)])
    cex, _ = lasso_of(m, prop(EVENTUALLY_ALWAYS, {2}))
    assert cex is not None and cex.loop == 0 and cex.closing == Step("b")
    assert [s for _, s in cex.steps] == [1]
    assert confirmed(m, cex).confirmed


def test_an_unfair_cycle_is_not_reported():
    # c is enabled in both states of the cycle and never taken on it
    m = Graph([(0, "a", 1, S), (1, "b", 0, S), (1, "c", 2, S), (0, "c", 2, S),
               (2, "d", 2, S)])
    cex, out = lasso_of(m, prop(EVENTUALLY_ALWAYS, {2}))
    assert cex is None and out.undecided == ()
    # ... and the judge agrees that the cycle is unfair
    verdict = lasso.judge(m, prop(EVENTUALLY_ALWAYS, {2}), [0, 1], [Step("a")], 0, Step("b"))
    assert verdict.violated and not verdict.fair and "c" in verdict.reason


@pytest.mark.parametrize("tag", [E, F])
def test_a_cycle_through_an_environment_or_fault_step_is_not_reported(tag):
    # the only way to avoid the goal forever is to repeat the loud step x
    m = Graph([(0, "x", 1, tag), (1, "b", 0, S), (0, "c", 2, S), (2, "d", 2, S)])
    cex, _ = lasso_of(m, prop(EVENTUALLY_ALWAYS, {2}))
    assert cex is None
    verdict = lasso.judge(m, prop(EVENTUALLY_ALWAYS, {2}), [0, 1], [Step("x")], 0,
                          Step("b"))
    assert not verdict.quiet


def test_strong_fairness_is_respected_and_sub_components_still_found():
    edges = [(0, "a", 1, S), (1, "b", 0, S), (1, "c", 2, S), (2, "d", 2, S)]
    assert lasso_of(Graph(edges), prop(EVENTUALLY_ALWAYS, {2}))[0] is not None
    # c is enabled infinitely often on the cycle: strong fairness takes it
    assert lasso_of(Graph(edges, strong={"c"}), prop(EVENTUALLY_ALWAYS, {2}))[0] is None
    # a second cycle 0 -> 3 -> 0 avoids the state enabling c: still a violation,
    # found by cutting state 1 out of the component (Emerson-Lei)
    more = edges + [(0, "e", 3, S), (3, "f", 0, S)]
    m = Graph(more, strong={"c"})
    cex, _ = lasso_of(m, prop(EVENTUALLY_ALWAYS, {2}))
    assert cex is not None and 1 not in cex.states
    assert confirmed(m, cex).confirmed


def test_a_stuck_state_missing_the_goal_is_a_stuttering_lasso():
    m = Graph([(0, "a", 1, S), (0, "env", 0, E)])
    p = prop(EVENTUALLY_ALWAYS, {0})
    cex, _ = lasso_of(m, p)
    assert cex.states == [0, 1] and cex.loop == 1 and cex.closing is None
    assert confirmed(m, cex).confirmed
    # the same state with a system step still enabled is not stuck
    busy = Graph([(0, "a", 1, S), (1, "b", 0, S), (0, "c", 0, S)])
    assert lasso_of(busy, prop(EVENTUALLY_ALWAYS, {0, 1}))[0] is None


def test_a_state_outside_the_bounds_is_not_a_deadlock_and_leaves_the_verdict_open():
    m = Graph([(0, "a", 1, S)], outside={1})
    p = prop(EVENTUALLY_ALWAYS, {0})
    cex, out = lasso_of(m, p)
    assert cex is None and out.undecided == ("goal",)
    assert out.figures["liveness_truncated_states"] == 1
    outcome = explore(m, [p])
    assert outcome.counterexample is None and outcome.undecided == ("goal",)


def test_always_eventually_needs_a_fair_cycle_of_bad_states_only():
    # 0 <-> 1 both bad, 1 -> 2 good; c from 1 only: []<>{2} fails
    m = Graph([(0, "a", 1, S), (1, "b", 0, S), (1, "c", 2, S), (2, "d", 0, S)])
    cex, _ = lasso_of(m, prop(ALWAYS_EVENTUALLY, {2}))
    assert cex is not None and 2 not in cex.states[cex.loop:]
    assert confirmed(m, cex).confirmed
    # the good state on the only cycle: holds
    ring = Graph([(0, "a", 1, S), (1, "b", 2, S), (2, "c", 0, S)])
    assert lasso_of(ring, prop(ALWAYS_EVENTUALLY, {2}))[0] is None


def test_leads_to_found_and_not_found():
    # 1 is the trigger; from 1 the system may go on to 3 (stuck, not Q)
    bad = Graph([(0, "a", 1, S), (1, "b", 3, S), (1, "x", 2, E), (2, "s", 2, S)])
    p = prop(LEADS_TO, {2}, trigger={1})
    cex, _ = lasso_of(bad, p)
    assert cex is not None and 1 in cex.states and cex.final == 3
    assert confirmed(bad, cex).confirmed
    good = Graph([(0, "a", 1, S), (1, "b", 2, S), (2, "s", 2, S)])
    assert lasso_of(good, p)[0] is None
    # a trigger never reached leads nowhere: holds
    assert lasso_of(bad, prop(LEADS_TO, {2}, trigger={9}))[0] is None


def brute_force_violated(m: Graph, goal: set, kind: str) -> bool:
    """Straight from the definition: some reachable set V of states is
    strongly connected by its internal system steps and fair when every one
    of them is taken (no weakly fair step enabled throughout V is left out,
    no strongly fair step enabled in V is), and violates the property; or a
    reachable state enables no system step and violates it by stuttering."""
    reach, todo = set(m.init), list(m.init)
    while todo:
        s = todo.pop()
        if s in m.outside:
            continue
        for _, t in m.successors(s):
            if t not in reach:
                reach.add(t)
                todo.append(t)
    inside = [s for s in reach if s not in m.outside]
    sys_out = {s: {(st, t) for st, t in m.successors(s) if m.tag(st) == S} for s in inside}
    allowed = [s for s in inside if kind == EVENTUALLY_ALWAYS or s not in goal]
    for s in allowed:
        if not sys_out[s] and s not in goal:
            return True
    for r in range(1, len(allowed) + 1):
        for vs in itertools.combinations(allowed, r):
            V = set(vs)
            internal = {(s, st, t) for s in V for st, t in sys_out[s] if t in V}
            if not internal:
                continue
            if not all(_reaches(s, t, internal) for s in V for t in V):
                continue
            taken = {st for _, st, _ in internal}
            enabled = [{st for st, _ in sys_out[s]} for s in V]
            if set.intersection(*enabled) - taken:
                continue
            if any(st.name in m.strongly_fair and st not in taken for en in enabled
                   for st in en):
                continue
            if kind == ALWAYS_EVENTUALLY or V - goal:
                return True
    return False


def _reaches(a, b, internal):
    seen, todo = {a}, [a]
    while todo:
        s = todo.pop()
        for x, _, t in internal:
            if x == s and t not in seen:
                seen.add(t)
                todo.append(t)
    return b in seen and (a != b or any(x == a for x, _, _ in internal))


@pytest.mark.parametrize("seed", range(60))
def test_the_search_agrees_with_the_brute_force_on_random_graphs(seed):
    rnd = random.Random(seed)
    n = rnd.randint(2, 5)
    names = "abcd"
    edges = []
    for s in range(n):
        for name in rnd.sample(names, rnd.randint(0, 3)):
            tag = rnd.choice([S, S, S, E, F])
            edges.append((s, name + ("" if tag == S else tag[0]), rnd.randrange(n), tag))
    strong = set(rnd.sample(names, rnd.randint(0, 2)))
    outside = {s for s in range(1, n) if rnd.random() < 0.15}
    m = Graph(edges, strong=strong, outside=outside)
    goal = {s for s in range(n) if rnd.random() < 0.5}
    for kind in (EVENTUALLY_ALWAYS, ALWAYS_EVENTUALLY):
        cex, out = lasso_of(m, prop(kind, goal))
        expected = brute_force_violated(m, goal, kind)
        assert (cex is not None) == expected, (kind, edges, goal, strong, outside)
        if cex is not None:
            assert confirmed(m, cex).confirmed
        elif outside & set(range(n)) and out.figures["liveness_truncated_states"]:
            assert out.undecided


# ---------------------------------------------------------------------------
# traces: written with loop, shown, replayed through the CLI
# ---------------------------------------------------------------------------


@pytest.fixture
def graph_catalog(monkeypatch):
    """Make ``trace replay`` find the hand-made machine under the name
    ``graph`` (the catalog holds only the real components)."""
    registry = {}

    def install(machine, props):
        registry["model"] = types.SimpleNamespace(
            name="graph", build=lambda mutant=None, **_: machine,
            check_bounds=lambda config: dict(config))
        registry["props"] = list(props)

    monkeypatch.setattr(traces, "model_named", lambda name: registry["model"])
    monkeypatch.setattr(traces, "component_of", lambda model: types.SimpleNamespace(
        name="graph"))
    monkeypatch.setattr(traces, "all_properties", lambda: registry["props"])
    return install


CASES = {
    "cycle": (lambda: Graph([(0, "a", 1, S), (1, "b", 0, S), (1, "c", 2, S)]),
              lambda: prop(EVENTUALLY_ALWAYS, {2})),
    "self-loop": (lambda: Graph([(0, "a", 0, S), (0, "x", 2, E)]),
                  lambda: prop(EVENTUALLY_ALWAYS, {2})),
    "stutter": (lambda: Graph([(0, "a", 1, S)]), lambda: prop(ALWAYS_EVENTUALLY, {0})),
    "leads-to": (lambda: Graph([(0, "a", 1, S), (1, "b", 3, S), (1, "x", 2, E)]),
                 lambda: prop(LEADS_TO, {2}, trigger={1})),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_lasso_is_written_with_its_loop_and_replays_with_exit_1(
        case, tmp_path, graph_catalog, capsys):
    make, make_prop = CASES[case]
    m, p = make(), make_prop()
    graph_catalog(m, [p])
    cex = liveness.check(m, [p]).counterexample
    path = traces.save(cex, tmp_path, model="graph", machine=m, engine="explore")
    trace = json.loads(path.read_text())
    assert trace["loop"] == cex.loop
    assert trace["#meta"]["loop_action"]["action"] == (
        "stutter" if cex.closing is None else cex.closing.name)
    assert main(["trace", "replay", str(path)]) == 1
    assert "is quiet and fair" in capsys.readouterr().out
    assert main(["trace", "show", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "A lasso" in shown and "the loop begins here" in shown


def test_a_lasso_that_is_not_fair_does_not_reproduce(tmp_path, graph_catalog, capsys):
    m = Graph([(0, "a", 1, S), (1, "b", 0, S), (1, "c", 2, S), (0, "c", 2, S)])
    p = prop(EVENTUALLY_ALWAYS, {2})
    graph_catalog(m, [p])
    from kubemc.checker.counterexample import Counterexample
    unfair = Counterexample(p, 0, ((Step("a"), 1),), loop=0, closing=Step("b"))
    path = traces.save(unfair, tmp_path, model="graph", machine=m, engine="explore")
    assert main(["trace", "replay", str(path)]) == 0
    assert "never taken" in capsys.readouterr().out
    # a closing step that does not return to the loop state
    trace = json.loads(path.read_text())
    trace["#meta"]["loop_action"] = {"action": "c", "params": []}
    assert not traces.replay(trace).reproduced


# ---------------------------------------------------------------------------
# the hypothesis engine's convergence phase
# ---------------------------------------------------------------------------


class Counter(Machine):
    """Users set a target (environment); the controller steps the value
    towards it (system). ``mutant`` "overshoots" steps past it and back
    forever; "runs_away" counts up without end."""

    name = "counter"
    tags = {"Set": ENVIRONMENT, "Step": SYSTEM}
    from kubemc.model.kernel import Mutant as _M
    mutants = {"overshoots": _M("steps past the target and back", "converges"),
               "runs_away": _M("counts up forever", "converges")}

    def init_states(self):
        return [(0, 0)]

    def steps(self, state):
        yield from (Step("Set", (t,)) for t in range(3))
        yield Step("Step")

    def apply(self, state, step):
        value, target = state
        if step.name == "Set":
            return (value, step.params[0]) if step.params[0] != target else None
        if self.mutant == "runs_away":
            return (value + 1, target)
        if self.mutant == "overshoots" and value in (target, target + 1):
            return (target + 1 if value == target else target, target)
        if value == target:
            return None
        return (value + (1 if value < target else -1), target)


CONVERGES = Property("converges", "counter", EVENTUALLY_ALWAYS, "value reaches target",
                     "hand-made", lambda m, s: s[0] == s[1])


def test_the_convergence_phase_counts_what_it_reached():
    out = stateful.check(Counter(), [CONVERGES], max_examples=30)
    assert out.counterexample is None
    tally = out.convergence["converges"]
    assert tally["runs"] >= 30 and tally["reached"] == tally["runs"]
    assert tally[convergence.QUIESCENT] == tally["runs"]


def test_the_convergence_phase_fails_with_a_lasso_on_a_livelock():
    m = Counter("overshoots")
    out = stateful.check(m, [CONVERGES], max_examples=30)
    cex = out.counterexample
    assert cex is not None and cex.is_lasso and cex.closing == Step("Step")
    assert confirmed(m, cex).confirmed


def test_the_convergence_phase_fails_a_run_that_never_settles():
    m = Counter("runs_away")
    cex = stateful.check(m, [CONVERGES], max_examples=10).counterexample
    assert cex is not None and not cex.is_lasso
    assert f"within {convergence.BOUND_STEPS} fair steps" in cex.note


def test_a_leads_to_never_triggered_is_reported_not_passed():
    from kubemc.checker.run import _unjudged
    never = Property("never", "counter", LEADS_TO, "s", "p", lambda m, s: True,
                     trigger=lambda m, s: s[0] > 99)
    out = stateful.check(Counter(), [never], max_examples=10)
    assert out.counterexample is None and out.convergence["never"]["triggered"] == 0
    assert _unjudged(out.convergence) == [("never", "the trigger never held in "
                                           f"{out.convergence['never']['runs']} "
                                           "convergence runs")]


# ---------------------------------------------------------------------------
# covers
# ---------------------------------------------------------------------------


def test_covers_are_reported_and_one_never_reached_is_vacuous(tmp_path):
    from kubemc.checker import run
    m = Graph([(0, "a", 1, S)])
    hit = Property("hit", "graph", COVER, "s", "p", lambda m, s: s == 1)
    miss = Property("miss", "graph", COVER, "s", "p", lambda m, s: s == 7)
    outcome = explore(m, [hit, miss])
    assert outcome.covers == {"hit": True, "miss": False}
    named = types.SimpleNamespace(name="graph")
    result = run._explore(named, named, m, [hit, miss], tmp_path, "", None, None)
    assert result.verdict == run.VACUOUS and result.prop == "miss"
    assert run._explore(named, named, m, [hit], tmp_path, "", None, None).verdict == run.HOLDS


# ---------------------------------------------------------------------------
# symmetry, and the properties of the real models
# ---------------------------------------------------------------------------


def test_symmetry_is_off_for_liveness_and_a_label_keeping_canonical_is_used():
    from kubemc.checker.catalog.apiserver import LIFECYCLE
    from kubemc.checker.catalog.store import RAFT
    raft = RAFT.machine()
    state = next(iter(raft.init_states()))
    assert not raft.canonical_keeps_steps
    assert liveness.representative(raft)(state) is state
    lifecycle = LIFECYCLE.machine()
    assert liveness.representative(lifecycle) == lifecycle.canonical


def test_the_lifecycle_canonical_form_keeps_step_labels():
    """The declaration ``canonical_keeps_steps`` checked on every reachable
    state of a small bound: a state and its representative enable the same
    steps, to states with the same representative."""
    from kubemc.checker.catalog.apiserver import LIFECYCLE
    m = LIFECYCLE.machine(dependents=1, max_revision=7)
    seen, todo, compacted = set(), list(m.init_states()), 0
    while todo:
        s = todo.pop()
        if s in seen:
            continue
        seen.add(s)
        c = m.canonical(s)
        compacted += c != s
        mine = {(st, m.canonical(t)) for st, t in m.successors(s)}
        assert mine == {(st, m.canonical(t)) for st, t in m.successors(c)}
        todo += [t for _, t in m.successors(s)]
    assert compacted > 100  # the check is not vacuous


@pytest.mark.parametrize("mutant", [None, "watch_not_reopened"])
def test_informer_cache_convergence(mutant):
    from kubemc.checker.catalog.informer import INFORMER
    m = INFORMER.machine(mutant, writes=2, resyncs=0, workers=1)
    p = next(p for p in INFORMER.properties if p.name == "cache_eventually_converges")
    outcome = explore(m, [p])
    if mutant is None:
        assert outcome.complete and outcome.counterexample is None and not outcome.undecided
        assert outcome.liveness["liveness_states"] > 1000
    else:
        cex = outcome.counterexample
        assert cex.is_lasso and confirmed(m, cex).confirmed


@pytest.mark.parametrize("mutant", [None, "gc_background_not_cascading"])
def test_background_dependents_are_collected(mutant):
    from kubemc.checker.catalog.apiserver import LIFECYCLE
    m = LIFECYCLE.machine(mutant, dependents=1, max_revision=8)
    p = next(p for p in LIFECYCLE.properties if p.name == "background_dependents_collected")
    outcome = explore(m, [p])
    if mutant is None:
        assert outcome.counterexample is None and not outcome.undecided
    else:
        cex = outcome.counterexample
        assert cex.is_lasso and confirmed(m, cex).confirmed
        assert cex.steps[0][0] == Step("Delete", (0, "Background"))


def test_the_z3_engine_refuses_a_liveness_property_in_one_line():
    from kubemc.checker.errors import BadInput
    from kubemc.checker.z3engine import _sym_property
    from kubemc.properties.symbolic import SymProperty
    sp = SymProperty(CONVERGES, lambda s: True)
    with pytest.raises(BadInput, match="cannot check eventually_always property converges"):
        _sym_property(None, sp)


def test_no_engine_is_asked_for_a_liveness_mutant_it_cannot_check(capsys):
    # z3 has no check covering the informer's liveness mutant: one line, exit 2
    assert main(["check", "informer", "--engine", "z3", "--mutant",
                 "watch_not_reopened"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "watch_not_reopened" in err


def test_the_resource_version_race_livelock_needs_strong_fairness_to_rule_out():
    """Anvil's livelock: writer W reads (Reread), another writer's update makes
    W's resourceVersion stale (OtherWrite), W's Write is enabled only while
    its read is fresh. Weak fairness allows losing every race; listing the
    write in ``strongly_fair`` (the assumption "retries eventually win")
    rules the lasso out."""
    edges = [("stale", "Reread", "fresh", S), ("fresh", "OtherWrite", "stale", S),
             ("fresh", "Write", "written", S), ("written", "OtherWrite", "written", S)]
    written = prop(EVENTUALLY_ALWAYS, {"written"})
    weak = Graph(edges, init=("stale",))
    cex, _ = lasso_of(weak, written)
    assert cex is not None and set(cex.states) == {"stale", "fresh"}
    assert confirmed(weak, cex).confirmed
    assert lasso_of(Graph(edges, init=("stale",), strong={"Write"}), written)[0] is None


@pytest.mark.parametrize("mutant", [None, "watch_not_reopened", "fifo_drops_update"])
def test_one_graph_search_decides_as_the_two_separate_searches(mutant):
    """Where liveness may use the machine's canonical form, explore records
    the graph in its safety search; the verdicts, the state counts and the
    counterexamples' lengths are those of a safety search followed by a
    separate liveness search."""
    from kubemc.checker.catalog.informer import INFORMER
    from kubemc.checker.explore import Explorer
    m = INFORMER.machine(mutant, writes=2, resyncs=0, workers=1)
    props = INFORMER.properties
    one = explore(m, props)
    assert one.liveness.get("liveness_single_search") or one.counterexample is not None
    safe = Explorer(m, [p for p in props if not p.is_liveness])._run()
    if safe.counterexample is not None:
        assert one.counterexample.prop == safe.counterexample.prop
        assert len(one.counterexample.steps) == len(safe.counterexample.steps)
        return
    apart = liveness.check(m, [p for p in props if p.is_liveness])
    assert one.stats.states == safe.stats.states == apart.figures["liveness_states"]
    assert (one.counterexample is None) == (apart.counterexample is None)
    if apart.counterexample is not None:
        assert len(one.counterexample.steps) == len(apart.counterexample.steps)


def test_a_leads_to_that_holds_counts_its_triggers_and_answers():
    answered = Property("answered", "counter", LEADS_TO, "a target set is reached",
                        "hand-made", lambda m, s: s[0] == s[1],
                        trigger=lambda m, s: s[0] != s[1])
    out = stateful.check(Counter(), [answered], max_examples=30)
    tally = out.convergence["answered"]
    assert out.counterexample is None
    assert 0 < tally["triggered"] == tally["reached"] <= tally["runs"]

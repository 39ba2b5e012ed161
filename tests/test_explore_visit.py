"""explore's visitor hooks (``Explorer(visit=..., visit_step=...)``,
``path_to``) and the z3 network proofs that walk with them
(``checker.reach``): the visitors see what the search counts, in
breadth-first order, and can stop it; a visited state's path replays; a
remembered walk answers as a fresh one does."""

from __future__ import annotations

from functools import partial

from kubemc.checker import reach
from kubemc.checker.explore import Explorer
from kubemc.model.proxy.machine import Proxy
from kubemc.properties.symbolic import network_reach


def reference_depths(machine) -> dict:
    """Every state a breadth-first search discovers (those beyond the bounds
    too, unexpanded), with its depth: a search of its own, for comparison."""
    depth = {s: 0 for s in machine.init_states()}
    frontier = list(depth)
    while frontier:
        nxt = []
        for s in frontier:
            if not machine.within_bounds(s):
                continue
            for _, t in machine.successors(s):
                if t not in depth:
                    depth[t] = depth[s] + 1
                    nxt.append(t)
        frontier = nxt
    return depth


def test_the_visitor_sees_each_discovered_state_once_breadth_first():
    machine = Proxy(events=1)
    seen = []
    outcome = Explorer(machine, (), visit=seen.append).run()
    depth = reference_depths(machine)
    assert outcome.complete
    assert len(seen) == len(set(seen)) == outcome.stats.states == len(depth)
    assert set(seen) == set(depth)
    order = [depth[s] for s in seen]
    assert order == sorted(order) and order[-1] == outcome.stats.depth


def test_a_visitor_returning_true_stops_the_search():
    seen = []

    def visit(state):
        seen.append(state)
        return len(seen) == 7

    outcome = Explorer(Proxy(events=1), (), visit=visit).run()
    assert len(seen) == 7 and not outcome.complete


def test_the_step_visitor_sees_every_transition_of_every_expanded_state():
    machine = Proxy(events=1)
    steps = []
    outcome = Explorer(machine, (), visit_step=lambda s, step, t: steps.append((s, step, t))
                       ).run()
    depth = reference_depths(machine)
    expected = [(s, step, t) for s in depth if machine.within_bounds(s)
                for step, t in machine.successors(s)]
    assert len(steps) == outcome.stats.transitions == len(expected)
    assert set(steps) == set(expected)
    order = [depth[s] for s, _, _ in steps]
    assert order == sorted(order)

    stop_at = steps[40]
    seen = []

    def visit_step(s, step, t):
        seen.append((s, step, t))
        return (s, step, t) == stop_at

    stopped = Explorer(machine, (), visit_step=visit_step).run()
    assert seen == steps[:41] and not stopped.complete


def test_path_to_replays_a_shortest_path_to_a_visited_state():
    machine = Proxy(events=1)
    seen = []
    explorer = Explorer(machine, (), visit=seen.append)
    explorer.run()
    depth = reference_depths(machine)
    for state in seen[::50]:
        init, steps = explorer.path_to(state)
        assert init in set(machine.init_states())
        cur = init
        for step, after in steps:
            cur = machine.apply(cur, step)
            assert cur == after
        assert cur == state and len(steps) == depth[state]


def test_a_remembered_walk_finds_the_violation_a_fresh_walk_finds():
    """Several proofs walk one machine: the first walks and is remembered,
    the next answer from its walk. They must answer as a fresh walk does."""
    queries = partial(network_reach.proxy_queries, mode="cluster_ip")
    key = network_reach.proxy_key

    def nothing_to_prove(machine, state):
        return []

    for mutant in (None, "not_ready_endpoint_in_rules"):
        reach._CACHE.clear()
        fresh = reach.prove(Proxy(events=1, mutant=mutant), queries, key)
        reach._CACHE.clear()
        walked = reach.prove(Proxy(events=1, mutant=mutant), nothing_to_prove, key)
        assert walked.verdict == "proved" and reach._CACHE  # the walk is remembered
        remembered = reach.prove(Proxy(events=1, mutant=mutant), queries, key)
        assert (remembered.verdict, remembered.states, remembered.dataplanes,
                remembered.init, remembered.steps) == \
            (fresh.verdict, fresh.states, fresh.dataplanes, fresh.init, fresh.steps)
    assert fresh.verdict == "violated" and fresh.steps[-1][0].name == "Probe"

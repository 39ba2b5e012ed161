"""kube-scheduler: each of the four models holds with its covers reached,
every mutant is caught by explore and by hypothesis on the property it is
meant to violate (the liveness ones with a lasso), the properties can fail
on states that break them, and the races Kubernetes itself leaves open are
found where the catalog's bounds leave them out."""

import pytest

from checker.catalog.scheduler import BINDING, MODELS, PLACEMENT, PREEMPTION, SPREAD, VICTIMS
from checker.explore import explore
from controller_checks import assert_caught_by_explore, assert_caught_by_hypothesis, assert_holds
from helpers import run
from model.kernel import Step
from model.scheduler.machine import NODE, SCHEDS, SERVER, PlacementScheduler
from properties import scheduler as props

CASES = [(model, mutant) for model in MODELS for mutant in sorted(model.mutants)]
IDS = [mutant for _, mutant in CASES]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_the_correct_scheduler_holds_with_every_cover_reached(model):
    outcome = assert_holds(model)
    assert outcome.stats.states > 50


@pytest.mark.parametrize("model, mutant", CASES, ids=IDS)
def test_each_mutant_is_caught_by_explore(model, mutant, tmp_path):
    cex = assert_caught_by_explore(model, mutant, tmp_path)
    liveness = model.mutants[mutant].violates == "sched_feasible_pod_eventually_bound"
    assert (cex.loop is not None) == liveness  # a liveness bug is shown as a lasso


@pytest.mark.parametrize("model, mutant", CASES, ids=IDS)
def test_each_mutant_is_caught_by_hypothesis(model, mutant, tmp_path):
    assert_caught_by_hypothesis(model, mutant, tmp_path)


def test_every_property_has_a_mutant_or_is_a_cover():
    from properties.core import COVER
    targeted = {m.violates for model in MODELS for m in model.mutants.values()}
    props_ = {p.name for model in MODELS for p in model.properties if p.kind != COVER}
    assert props_ <= targeted, props_ - targeted


def test_a_scheduler_takes_only_the_pods_that_name_it():
    machine = PlacementScheduler()
    (state,) = machine.init_states()
    # p3 names the custom scheduler: only it may schedule p3, and vice versa
    assert machine.apply(state, Step("Schedule", (0, 3, 2))) is None
    assert machine.apply(state, Step("Schedule", (1, 0, 0))) is None
    state = run(machine, Step("Schedule", (1, 3, 2)), Step("Bind", (1, 3)), state=state)
    assert state[SERVER][3][:2] == (2, "custom-scheduler")
    assert props.bound_by_named_scheduler(machine, state)
    assert props.custom_scheduler_bound(machine, state)


def test_a_bound_pod_leaves_the_queue_once_its_binding_is_observed():
    machine = PlacementScheduler()
    state = run(machine, Step("Schedule", (0, 0, 0)), Step("Bind", (0, 0)))
    default = state[SCHEDS][0]
    assert default[3] == ((0, 0, 1),)            # assumed, bound, not yet observed
    state = run(machine, Step("Deliver", (0,)), state=state)
    assert state[SCHEDS][0][3] == ()             # confirmed: the informer shows it
    assert machine.apply(state, Step("Bind", (0, 0))) is None


def test_the_properties_fail_on_states_that_break_them():
    machine = PlacementScheduler()
    (state,) = machine.init_states()
    server = list(state[SERVER])
    # p1 (1500m) and p2 (500m) on n1 (1500m): over-committed
    server[1] = (1, "default-scheduler", 0, -1, -1)
    server[2] = (1, "default-scheduler", 0, -1, -1)
    full = (tuple(server),) + state[1:]
    assert not props.within_allocatable(machine, full)
    # p3 bound by the default scheduler although it names the custom one
    server[3] = (2, "default-scheduler", 0, -1, -1)
    assert not props.bound_by_named_scheduler(machine, (tuple(server),) + state[1:])
    # p0 (no toleration) bound to the tainted n1: the table names the filter
    assert props.failing_filters(machine, machine.pods[0], 1, []) == ["TaintToleration"]
    # a pod moved from one node to another: bound twice
    moved = list(full[SERVER])
    moved[1] = (0,) + moved[1][1:]
    assert not props.bound_at_most_once(machine, full, None, (tuple(moved),) + state[1:])
    # p0 pending and feasible on n0 in the initial state
    assert props.feasible_pending(machine, state)


def test_preemption_records_who_preempted_and_the_nominated_node():
    machine = PREEMPTION.machine()
    state = run(machine, Step("Unschedulable", (0, 2)))
    p0, p2 = state[SERVER][0], state[SERVER][2]
    assert p0[2] == 1 and p0[4] == 2             # p0 terminating, preempted by p2
    assert p2[3] == 0                            # p2 nominated to n0
    assert props.preempts_lower_only(machine, state)
    # p3 may not preempt p1 (equal priority), nor take p2's nominated room
    state = run(machine, Step("Unschedulable", (0, 3)), state=state)
    assert state[SERVER][1][2] == 0


def test_a_failed_bind_after_a_later_placement_breaks_the_spread_as_in_kubernetes():
    """Why the spread model has no failed binds, crashes or deletions: p is
    assumed in zone a, r is placed in zone b beside it, then p's bind fails
    (or its scheduler crashes, or a user deletes p) — r's bind exceeds
    maxSkew. Kubernetes decides the spread on a snapshot too, and documents
    no guarantee once pods are removed."""
    for bounds, cause in (({"bind_failures": 1}, "BindFails"), ({"crashes": 1}, "Crash"),
                          ({"deletions": 1}, "DeletePod")):
        machine = SPREAD.machine(**bounds)
        cex = explore(machine, [props.SPREAD_WITHIN_MAX_SKEW]).counterexample
        assert cex is not None, bounds
        assert cause in {step.name for step, _ in cex.steps}


def test_binding_model_reaches_a_409_from_a_binding_left_on_the_wire():
    machine = BINDING.machine()
    state = run(machine, Step("Schedule", (0, 1, 1)), Step("Crash", (0,)), Step("Relist", (0,)),
                Step("Schedule", (0, 1, 2)), Step("OrphanBind", (0,)), Step("Bind", (0, 1)))
    assert state[SERVER][1][NODE] == 1 and props.some_bind_conflict(machine, state)
    assert props.no_leaked_reservation(machine, state)


@pytest.mark.parametrize("mutant, rule", [
    ("preemption_without_nomination", "not nominated"),
    ("preemption_counts_terminating_victims", "no room"),
    ("preempts_every_lower_priority_pod", "victim spared"),
    ("preemption_reprieves_lowest_first", "lower pod would do"),
    ("preemption_picks_worst_node", "better node"),
])
def test_each_victim_rule_is_broken_by_its_own_mutant(mutant, rule):
    """The preemption property has five clauses; each victim mutant breaks a
    different one on the pending pod's first cycle, and the correct
    scheduler breaks none: evicting a1 alone, on n0, nominated there."""
    correct = VICTIMS.machine()
    (state,) = correct.init_states()
    step = Step("Unschedulable", (0, 5))
    after = correct.apply(state, step)
    assert props.preemptions(correct, state, after) == [(5, frozenset({0}), 0)]
    assert props.preemption_fault(correct, state, after) is None
    machine = VICTIMS.machine(mutant)
    assert props.preemption_fault(machine, state, machine.apply(state, step)) == rule


def test_the_design_proposals_example_preempts_only_the_priority_2_pod():
    """kubernetes/community pod-preemption.md: capacity 10, a priority-10 pod
    asking 5, running {p0: 3, p1: 1, p2: 5, p3: 1} — 'scheduler will preempt
    the priority 2 pod only'. The plugin does, and the property accepts that
    and rejects the other minimal-looking choices."""
    from model.scheduler.objects import Node, Pod, Resources as R
    from model.scheduler.plugins import Plugins
    nodes = (Node("n", R(10, 0)),)
    pods = tuple(Pod(f"p{i}", containers=(R(r, 0),), priority=i)
                 for i, r in enumerate((3, 1, 5, 1))) + (Pod("new", (R(5, 0),), priority=10),)
    placed = [(i, pods[i], 0, False) for i in range(4)]
    assert Plugins().preemption(pods[4], nodes, placed) == (0, (2,))

    class Cluster:
        pass
    m = Cluster()
    m.nodes, m.pods = nodes, pods
    before = ((tuple((0, "default-scheduler", 0, -1, -1) for _ in range(4))
               + ((-1, "", 0, -1, -1),)), (), (), (0, 0, 0, 0))

    def judged(victims):
        server = list(before[SERVER])
        for v in victims:
            server[v] = (0, "default-scheduler", 1, -1, 4)
        server[4] = (-1, "", 0, 0, -1)
        return props.preemption_fault(m, before, (tuple(server),) + before[1:])
    assert judged({2}) is None
    assert judged({0, 1}) == "no room"              # 3 + 1 freed: 4 < 5
    assert judged({0, 1, 2}) == "victim spared"
    assert judged({0, 3}) == "no room"


def test_preempting_again_before_the_victims_are_gone_spares_nobody():
    """The victims a preemptor already chose count as gone: preempting again
    while a1 terminates (the mutant) evicts b2, which it would not need."""
    machine = VICTIMS.machine("preempts_again_while_victims_terminate")
    first = run(machine, Step("Unschedulable", (0, 5)), Step("Deliver", (0,)))
    again = machine.apply(first, Step("Unschedulable", (0, 5)))
    assert props.preemptions(machine, first, again) == [(5, frozenset({1}), 0)]
    assert props.preemption_fault(machine, first, again) == "victim spared"
    correct = VICTIMS.machine()
    first = run(correct, Step("Unschedulable", (0, 5)), Step("Deliver", (0,)))
    again = correct.apply(first, Step("Unschedulable", (0, 5)))
    assert props.preemptions(correct, first, again) == []

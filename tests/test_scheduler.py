"""kube-scheduler: each of the models holds with its covers reached,
every mutant is caught by explore and by hypothesis on the property it is
meant to violate (the liveness ones with a lasso), the properties can fail
on states that break them, and the races Kubernetes itself leaves open are
found where the catalog's bounds leave them out."""

from pathlib import Path

import pytest

from kubemc.checker import traces
from kubemc.checker.catalog.scheduler import (
    BINDING, MODELS, PLACEMENT, PREEMPTION, SPREAD, VICTIMS, VICTIMS_RANK,
)
from kubemc.checker.explore import explore
from controller_checks import assert_caught_by_explore, assert_caught_by_hypothesis, assert_holds
from helpers import run
from kubemc.model.kernel import Step
from kubemc.model.scheduler.machine import (
    LIVE, NODE, NOMINATED, PHASE, PREEMPTED_BY, SCHEDS, SERVER, TERMINATING, PlacementScheduler,
)
from kubemc.properties import scheduler as props

CASES = [(model, mutant) for model in MODELS for mutant in sorted(model.mutants)]
IDS = [mutant for _, mutant in CASES]
TRACES = Path(__file__).resolve().parents[1] / "traces" / "scheduler"


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
    from kubemc.properties.core import COVER
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


def test_the_running_pod_preempted_cover_needs_a_pod_the_cluster_started_with():
    """sched_cover_running_pod_preempted: p0 runs on n0 from the start and is
    preempted by p2. A pod the scheduler placed itself does not count, so a
    scenario that starts p0 pending (the mutation run's survivors of
    scenarios.preemption) never reaches the cover."""
    machine = PREEMPTION.machine()
    (start,) = machine.init_states()
    assert not props.running_pod_preempted(machine, start)
    assert props.running_pod_preempted(machine, run(machine, Step("Unschedulable", (0, 2))))
    machine.bound = {1: (1, False)}                  # p0 no longer among the running pods
    assert not props.running_pod_preempted(machine, run(machine, Step("Unschedulable", (0, 2)),
                                                        state=start))


def test_the_backoff_cover_needs_the_bind_failure_fault():
    """sched_cover_backoff: the placement model's one failed bind sends its
    pod to backoff. With the fault's budget spent before the run begins (the
    second mutation sample's survivor of init_states), no bind ever fails
    and the cover is never reached."""
    machine = PLACEMENT.machine()
    (start,) = machine.init_states()
    assert not props.some_backoff(machine, start)
    out = explore(PLACEMENT.machine(bind_failures=0), [props.COVER_BACKOFF])
    assert out.complete and out.covers == {"sched_cover_backoff": False}
    out = explore(PLACEMENT.machine(), [props.COVER_BACKOFF])
    assert out.covers == {"sched_cover_backoff": True}


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


def test_a_binding_sent_before_a_crash_stays_in_flight_only_until_it_is_answered():
    """The cover sched_cover_binding_outlives_crash: a crash with p1's Binding
    unanswered leaves it on the wire for an unbound pod; a crash after the
    bind was answered leaves nothing in flight. A crash that dropped the
    Binding it had sent (or orphaned the answered ones instead) never reaches
    the cover."""
    machine = BINDING.machine()
    state = run(machine, Step("Schedule", (0, 1, 1)), Step("Crash", (0,)))
    assert props.binding_outlives_crash(machine, state)
    state = run(machine, Step("OrphanBind", (0,)), state=state)
    assert state[SERVER][1][NODE] == 1 and not props.binding_outlives_crash(machine, state)
    state = run(machine, Step("Schedule", (0, 1, 1)), Step("Bind", (0, 1)), Step("Crash", (0,)))
    assert state[SERVER][1][NODE] == 1 and not props.binding_outlives_crash(machine, state)


@pytest.mark.parametrize("model, mutant", CASES, ids=IDS)
@pytest.mark.parametrize("engine", ["explore", "hypothesis"])
def test_each_mutant_has_a_committed_trace_that_still_reproduces(model, mutant, engine):
    """The traces in traces/scheduler/ are this model's: each mutant's trace
    of each engine replays on the machine as it is now and the property it
    names is still violated at its end."""
    target = model.mutants[mutant].violates
    path = TRACES / f"{model.name}-{target}-{engine}-{mutant}.itf.json"
    assert path.exists(), path.name
    trace = traces.load(path)
    assert trace["#meta"]["mutant"] == mutant and trace["#meta"]["property"] == target
    replay = traces.replay(trace)
    assert replay.reproduced, replay.message


@pytest.mark.parametrize("mutant, rule", [
    ("preemption_without_nomination", "not nominated"),
    ("preemption_counts_terminating_victims", "no room"),
    ("preempts_every_lower_priority_pod", "victim spared"),
    ("preemption_evicts_unlabelled_pods", "victim spared"),
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


def test_pods_evicted_without_naming_the_preemptor_are_victims_too():
    """The audit's defect D5: victims were read off the pods naming their
    preemptor, so a preemption that also deleted b2 and c3 without naming
    anybody was judged on {a1} alone and held. The evictions are now read off
    the state change: a1, b2 and c3 all go from live to terminating in the
    step, so all three are p's victims, and two could be spared."""
    machine = VICTIMS.machine("preemption_evicts_unlabelled_pods")
    (state,) = machine.init_states()
    step = Step("Unschedulable", (0, 5))
    after = machine.apply(state, step)
    server = after[SERVER]
    assert [server[q][PHASE] for q in (0, 1, 2)] == [TERMINATING] * 3
    assert [server[q][PREEMPTED_BY] for q in (0, 1, 2)] == [5, -1, -1]
    assert props.evictions(machine, state, step, after) == {0, 1, 2}
    assert props.preemptions(machine, state, after, step) == [(5, frozenset({0, 1, 2}), 0)]
    assert props.preemption_fault(machine, state, after, step) == "victim spared"
    assert not props.preemption_minimal_lowest(machine, state, step, after)


def test_a_users_delete_is_no_eviction_and_an_eviction_needs_a_preemptor():
    """A user's DeletePod (an environment step) ends a live pod without the
    scheduler: not a victim. The same change made by a system step that
    nominates nobody is an eviction for nothing ('no preemptor'), and so is
    an unnamed eviction in a step with two preemptors (it cannot be charged
    to either)."""
    machine = VICTIMS.machine(deletions=1)
    (state,) = machine.init_states()
    delete = Step("DeletePod", (1,))
    after = machine.apply(state, delete)
    assert after[SERVER][1][PHASE] == TERMINATING
    assert props.evictions(machine, state, delete, after) == set()
    assert props.preemptions(machine, state, after, delete) == []
    assert props.preemption_minimal_lowest(machine, state, delete, after)
    system = Step("Unschedulable", (0, 5))
    assert props.evictions(machine, state, system, after) == {1}
    assert props.preemption_fault(machine, state, after, system) == "no preemptor"
    # two pending pods of priority 10 both nominated to n0 in one step, p0
    # evicted naming neither
    machine = PREEMPTION.machine()
    (state,) = machine.init_states()
    server = list(state[SERVER])
    assert server[0][PHASE] == LIVE
    server[0] = server[0][:PHASE] + (TERMINATING,) + server[0][PHASE + 1:]
    for p in (2, 3):
        server[p] = server[p][:NOMINATED] + (0,) + server[p][NOMINATED + 1:]
    after = (tuple(server),) + state[1:]
    assert props.preemptions(machine, state, after, system) == [(-1, frozenset({0}), -1)]
    assert props.preemption_fault(machine, state, after, system) == "no preemptor"


@pytest.mark.parametrize("mutant", ["preemption_ranks_by_victim_count",
                                    "preemption_ranks_by_priority_sum"])
def test_the_node_is_ranked_by_its_victims_highest_priority_first(mutant):
    """The audit's defect D6: in scheduler-victims the node ranking could be
    replaced by the victims' number or priority sum unnoticed. In
    scheduler-victims-rank q (1000m, priority 10) may evict x2 and y4 on n0
    (highest 4, sum 6, two pods) or z5 on n1 (highest 5, sum 5, one pod):
    the correct scheduler takes n0, each of the two rankings n1, which the
    property's 'better node' clause refuses."""
    correct = VICTIMS_RANK.machine()
    (state,) = correct.init_states()
    step = Step("Unschedulable", (0, 3))
    after = correct.apply(state, step)
    assert props.preemptions(correct, state, after, step) == [(3, frozenset({0, 1}), 0)]
    assert props.preemption_fault(correct, state, after, step) is None
    machine = VICTIMS_RANK.machine(mutant)
    after = machine.apply(state, step)
    assert props.preemptions(machine, state, after, step) == [(3, frozenset({2}), 1)]
    assert props.preemption_fault(machine, state, after, step) == "better node"


def test_an_init_container_above_the_app_containers_decides_the_victims():
    """KEP-753: a pod's request is the larger of its init containers' peak
    and what runs after them. q's init container asks 1000m, its app
    container 500m, so on n0 it needs x2 and y4 gone; a scheduler that leaves
    the init peak out (the mutant, and the gap the mutation run of
    docs/mutation/scheduler.md found) evicts x2 alone, and the property sees
    that q does not fit beside y4."""
    correct = VICTIMS_RANK.machine()
    (state,) = correct.init_states()
    assert props.pod_request(correct.pods[3])["cpu"] == 1000
    assert sum(r.cpu for r in correct.pods[3].containers) == 500
    step = Step("Unschedulable", (0, 3))
    after = correct.apply(state, step)
    assert props.preemptions(correct, state, after, step) == [(3, frozenset({0, 1}), 0)]
    machine = VICTIMS_RANK.machine("request_ignores_init_peak")
    after = machine.apply(state, step)
    assert props.preemptions(machine, state, after, step) == [(3, frozenset({0}), 0)]
    assert props.preemption_fault(machine, state, after, step) is not None
    assert not props.preemption_minimal_lowest(machine, state, step, after)


def test_the_design_proposals_example_preempts_only_the_priority_2_pod():
    """kubernetes/community pod-preemption.md: capacity 10, a priority-10 pod
    asking 5, running {p0: 3, p1: 1, p2: 5, p3: 1} — 'scheduler will preempt
    the priority 2 pod only'. The plugin does, and the property accepts that
    and rejects the other minimal-looking choices."""
    from kubemc.model.scheduler.objects import Node, Pod, Resources as R
    from kubemc.model.scheduler.plugins import Plugins
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

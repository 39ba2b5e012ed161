"""The cloud-controller-manager's route and service controllers against a
cloud API that lags and fails (``model.controllers.cloud``)."""

from __future__ import annotations

import inspect

import pytest
from controller_checks import assert_caught_by_explore, assert_caught_by_hypothesis, assert_holds
from helpers import run

from kubemc.checker.catalog.controllers import CLOUDNODE, CLOUDROUTE, CLOUDSERVICE
from kubemc.checker.explore import explore
from kubemc.model.controllers.cloud import CLOUD
from kubemc.model.controllers.cloudnode import NodeController
from kubemc.model.controllers.cloudroute import SYNC, RouteController
from kubemc.model.controllers.cloudservice import ServiceController
from kubemc.model.kernel import Step
from kubemc.properties.controllers import cloudnode as node_props
from kubemc.properties.controllers import cloudroute as route_props
from kubemc.properties.controllers import cloudservice as service_props

CASES = [(CLOUDROUTE, m) for m in sorted(CLOUDROUTE.mutants)] + \
        [(CLOUDSERVICE, m) for m in sorted(CLOUDSERVICE.mutants)] + \
        [(CLOUDNODE, m) for m in sorted(CLOUDNODE.mutants)]
LIVENESS_MUTANTS = {"drops_cloud_error", "keeps_gone_nodes", "swallows_route_error"}


def _prop(props, name):
    return next(p for p in props.PROPERTIES if p.name == name)


@pytest.mark.parametrize("model", [CLOUDROUTE, CLOUDSERVICE], ids=lambda m: m.name)
def test_the_correct_controller_passes_at_the_default_bounds(model):
    outcome = assert_holds(model)
    assert outcome.stats.states > 500


def test_the_correct_node_controller_passes_at_the_default_bounds():
    """Two node names: a relaunch under one name while the other lags."""
    assert assert_holds(CLOUDNODE).stats.states > 20_000


def test_the_correct_node_controller_passes_with_one_node_and_more_faults():
    assert_holds(CLOUDNODE, nodes=1, launches=2, terminations=1, crashes=2, write_failures=2)


def test_the_correct_route_controller_passes_with_both_nodes_at_the_start():
    assert_holds(CLOUDROUTE, initial_nodes=2, node_changes=1, crashes=0)


@pytest.mark.parametrize("model, mutant", CASES, ids=lambda x: getattr(x, "name", x))
def test_each_mutant_is_caught_by_explore(model, mutant, tmp_path):
    cex = assert_caught_by_explore(model, mutant, tmp_path)
    assert (cex.loop is not None) == (mutant in LIVENESS_MUTANTS)


@pytest.mark.parametrize("model, mutant", CASES, ids=lambda x: getattr(x, "name", x))
def test_each_mutant_is_caught_by_hypothesis(model, mutant, tmp_path):
    assert_caught_by_hypothesis(model, mutant, tmp_path)


def test_the_route_leak_is_also_a_liveness_violation_with_a_lasso():
    """The liveness property alone catches the event-driven route controller:
    the stale route is never deleted, and the run stutters there."""
    machine = CLOUDROUTE.machine("event_driven_deletes")
    cex = explore(machine, [_prop(route_props, "cloudroute_converges")]).counterexample
    assert cex is not None and cex.loop is not None
    last = cex.steps[-1][1] if cex.steps else cex.init
    assert not route_props.routes_match_nodes(machine, last)


# -- the cloud's lag and failures, step by step -----------------------------------

def test_a_route_call_is_accepted_and_visible_only_when_the_cloud_completes_it():
    m = RouteController()
    state = run(m, Step("Reconcile", SYNC), Step("Write"))
    shown, ops = state[CLOUD]
    assert shown == () and ops == ((("route", "n0"), "10.244.0.0/24"),)
    assert not route_props.routes_match_nodes(m, state)   # not converged yet
    assert state[4] == ()  # the reconcile waits for the operation
    state = run(m, Step("CloudCompletes", ("route", "n0")), state=state)
    assert state[CLOUD][0] == ((("route", "n0"), "10.244.0.0/24"),)
    assert SYNC in state[3]  # the completion wakes the controller
    state = run(m, Step("Reconcile", SYNC), state=state)
    assert route_props.routes_match_nodes(m, state)
    assert not any(m.tag(s) == "system" for s, _ in m.successors(state))


def test_a_failed_call_is_retried_and_the_cloud_survives_a_crash():
    m = RouteController()
    state = run(m, Step("Reconcile", SYNC), Step("WriteFails"))
    assert state[CLOUD] == ((), ()) and SYNC in state[3]
    state = run(m, Step("Reconcile", SYNC), Step("Write"), Step("Crash"), state=state)
    assert state[CLOUD][1]  # the accepted operation outlives the controller
    assert m.apply(state, Step("CloudCompletes", ("route", "n9"))) is None


def test_the_orphan_route_property_judges_the_cloud_not_the_cache():
    """A quiet end with a route for a node the apiserver no longer holds is
    a violation even if the controller's cache still lists the node."""
    m = RouteController(node_changes=1)
    state = run(m, Step("Reconcile", SYNC), Step("Write"),
                Step("CloudCompletes", ("route", "n0")), Step("Reconcile", SYNC))
    assert route_props.no_route_for_gone_node(m, state)
    gone = run(m, Step("NodeLeaves", ("n0",)), state=state)
    # hand-made: the controller never hears of it (no event, nothing queued)
    stale = gone[:1] + ((),) + gone[2:]
    assert not route_props.no_route_for_gone_node(m, stale)
    assert route_props.orphan_route_exists(m, stale)


def test_the_finalizer_keeps_a_deleted_service_until_its_lb_is_gone():
    m = ServiceController(node_changes=0)
    svc = ("services", "s0")
    state = run(m, Step("Reconcile", svc), Step("Write"), Step("Deliver"),
                Step("Reconcile", svc), Step("Write"),
                Step("CloudCompletes", ("lb", "s0")), Step("Reconcile", svc),
                Step("Write"), Step("Write"))
    assert service_props.lb_matches_services(m, state)
    state = run(m, Step("DeleteService", ("s0",)), state=state)
    assert m.objects(state)[svc] == (True, True, True)      # terminating, kept
    assert service_props.no_leaked_lb(m, state)
    assert not service_props.lb_matches_services(m, state)
    # without the finalizer the same LB would be a leak
    forced = (tuple(o for o in state[0] if o[0] != svc),) + state[1:]
    assert not service_props.no_leaked_lb(m, forced)


def test_the_service_goal_is_not_met_by_an_lb_with_the_wrong_targets():
    m = ServiceController()
    svc = ("services", "s0")
    state = run(m, Step("Reconcile", svc), Step("Write"), Step("Deliver"),
                Step("Reconcile", svc), Step("Write"),
                Step("CloudCompletes", ("lb", "s0")), Step("Reconcile", svc),
                Step("Write"), Step("Write"), Step("Deliver"), Step("NodeJoins", ("n1",)))
    assert m.objects(state)[svc] == (True, True, False)
    assert not service_props.lb_matches_services(m, state)  # n1 is not a target yet


def test_a_lagging_instance_keeps_its_node_until_the_grace_period_ends():
    m = NodeController(nodes=1)
    node = ("nodes", "n0")
    state = run(m, Step("Launch", ("n0",)), Step("Register", ("n0",)), Step("Deliver"),
                Step("Reconcile", node))
    assert state[4] == () and node in m.objects(state)   # waits: nothing to delete
    assert m.apply(state, Step("GraceExpires", ("n0",))) is None  # lag < grace
    assert node_props.registered_before_shown(m, state)
    state = run(m, Step("CloudCompletes", ("instance", "n0")), Step("Reconcile", node),
                Step("Write"), state=state)
    assert m.objects(state)[node][:2] == (True, "10.0.0.10")
    # the mutant deletes in the same situation, and the transition property sees it
    bad = NodeController(nodes=1, mutant="deletes_lagging")
    before = run(bad, Step("Launch", ("n0",)), Step("Register", ("n0",)), Step("Deliver"),
                 Step("Reconcile", node))
    after = run(bad, Step("Write"), state=before)
    assert node not in bad.objects(after)
    assert not node_props.never_deletes_live_instance(bad, before, Step("Write"), after)


def test_a_node_whose_instance_is_gone_is_deleted_after_the_grace_period():
    m = NodeController(nodes=1)
    node = ("nodes", "n0")
    state = run(m, Step("Launch", ("n0",)), Step("CloudCompletes", ("instance", "n0")),
                Step("Register", ("n0",)), Step("GraceExpires", ("n0",)),
                Step("Terminate", ("n0",)), Step("CloudCompletes", ("instance", "n0")))
    assert node_props.gone_instance_with_node(m, state)
    assert not node_props.nodes_match_instances(m, state)
    for _ in range(20):  # the quiet phase: system steps only, first enabled each time
        succ = [(s, n) for s, n in m.successors(state) if m.tag(s) == "system"]
        if not succ:
            break
        state = succ[0][1]
    assert node not in m.objects(state) and node_props.nodes_match_instances(m, state)


@pytest.mark.parametrize("model", [CLOUDROUTE, CLOUDSERVICE, CLOUDNODE], ids=lambda m: m.name)
def test_apply_refuses_steps_it_would_not_propose(model):
    """The shrinker and replay call ``apply`` with arbitrary steps: each
    action these models add (the cloud's, the world's, and the cloud-aware
    Reconcile) with foreign parameters of its shape is refused (None); with
    another number of parameters it is a bug in whatever built the step,
    raised (the kernel's rule for declared actions), never read as a
    disabled step. (The loop's parameterless actions are the harness's.)"""
    from helpers import reachable

    from kubemc.model.controllers.loop import LOOP_ACTIONS
    machine = model.machine(crashes=0, write_failures=0)
    junk = [(), ("x",), ("n9",), ("s9",), ("route", "n9"), ("lb", "s9"),
            ("instance", "n9"), ("services", "s9"), ("routes", "other"), (1, 2, 3)]
    refused = raised = 0
    for state in reachable(machine, limit=300)[::10]:
        proposed = {(s.name, tuple(s.params)) for s in machine.steps(state)}
        for name in set(machine.tags) - (LOOP_ACTIONS - {"Reconcile"}):
            handler = getattr(machine, machine.actions[name].attr)
            arity = len(inspect.signature(handler).parameters) - 1  # after the state
            for params in junk:
                if (name, params) in proposed:
                    continue
                if len(params) != arity:
                    with pytest.raises(TypeError, match=f"takes {arity}"):
                        machine.apply(state, Step(name, params))
                    raised += 1
                    continue
                assert machine.apply(state, Step(name, params)) is None, (name, params)
                refused += 1
    assert refused and raised


def test_ingress_is_published_only_once_the_cloud_shows_the_load_balancer():
    """The ingress property reads the cloud, not the controller: the correct
    controller publishes after the LB is provisioned; the mutant publishes
    while the create is only accepted, and the property sees it."""
    svc = ("services", "s0")
    m = ServiceController(node_changes=0)
    state = run(m, Step("Reconcile", svc), Step("Write"), Step("Deliver"),
                Step("Reconcile", svc), Step("Write"))
    assert m.objects(state)[svc] == (True, False, False) and state[CLOUD][1]  # pending
    state = run(m, Step("CloudCompletes", ("lb", "s0")), Step("Reconcile", svc),
                Step("Write"), Step("Write"), state=state)
    assert m.objects(state)[svc] == (True, True, False)
    assert service_props.ingress_only_for_provisioned_lb(m, state)
    bad = ServiceController(node_changes=0, mutant="publishes_ingress_early")
    early = run(bad, Step("Reconcile", svc), Step("Write"), Step("Deliver"),
                Step("Reconcile", svc), Step("Write"))
    assert bad.objects(early)[svc] == (True, True, False) and not early[CLOUD][0]
    assert not service_props.ingress_only_for_provisioned_lb(bad, early)


def test_a_trace_shows_a_cloud_call_as_a_cloud_call():
    """The loop's ``describe`` reads any request as an apiserver write; the
    cloud loop's view says what a call asks of the cloud."""
    svc = ("services", "s0")
    m = ServiceController()
    state = run(m, Step("Reconcile", svc), Step("Write"), Step("Deliver"),
                Step("Reconcile", svc))
    assert m.view(state)["inflight"] == ["cloud: ensure lb/s0 = ('n0',)",
                                         "update services/s0 if rv=2 to (True, True, False)"]
    deleting = run(m, Step("Write"), Step("CloudCompletes", ("lb", "s0")),
                   Step("Reconcile", svc), Step("Write"), Step("Write"),
                   Step("DeleteService", ("s0",)), Step("Deliver"), Step("Deliver"),
                   Step("Reconcile", svc), state=state)
    assert m.view(deleting)["inflight"][0] == "cloud: delete lb/s0"

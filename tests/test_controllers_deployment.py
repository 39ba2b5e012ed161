"""The Deployment controller: a rolling update stays within maxSurge and
maxUnavailable, a rollback reuses the earlier ReplicaSet, and the rollout
completes once users and faults stop."""

import pytest

from kubemc.checker.catalog.controllers import DEPLOYMENT
from kubemc.checker.explore import explore
from controller_checks import assert_caught_by_explore, assert_caught_by_hypothesis, assert_holds
from helpers import reachable, run
from kubemc.model.controllers.deployment import DEPLOY, POD, RS, DeploymentController
from kubemc.model.controllers.loop import SERVER
from kubemc.model.kernel import Step
from kubemc.properties.controllers import deployment as props
from kubemc.properties.core import INVARIANT, Property

MUTANTS = sorted(DEPLOYMENT.mutants)
SMALL = {"replicas": 1, "max_replicas": 1, "rollouts": 2, "scales": 0, "templates": 2}


def test_the_correct_controller_passes_with_a_rollout_there_and_back():
    # one replica, two templates: the rollback midway and both bounds are
    # reached; a scale is not, nor a new ReplicaSet (no third template)
    assert_holds(DEPLOYMENT, unreached=("deployment_cover_scaled_during_rollout",
                                        "deployment_cover_new_replicaset"), **SMALL)


def test_the_correct_controller_passes_at_the_default_bounds():
    outcome = assert_holds(DEPLOYMENT)
    assert outcome.stats.states > 10_000  # a rollback and a scale interleave with both syncs


@pytest.mark.parametrize("mutant", MUTANTS)
def test_each_mutant_is_caught_by_explore(mutant, tmp_path):
    cex = assert_caught_by_explore(DEPLOYMENT, mutant, tmp_path)
    # the liveness mutant's counterexample is a lasso
    assert (cex.loop is not None) == (mutant == "drops_rs_update_error")


# the two max_unavailable mutants need a rollout there and back timed against
# the ReplicaSet syncs: the ci profile misses them (kubemc check --profile deep)
CI_CAUGHT = ["drops_rs_update_error", "new_rs_ignores_surge", "rollback_creates_new_rs"]


@pytest.mark.parametrize("mutant", CI_CAUGHT)
def test_each_mutant_is_caught_by_hypothesis(mutant, tmp_path):
    assert_caught_by_hypothesis(DEPLOYMENT, mutant, tmp_path)


def _with(state, key, value):
    """``state`` with one server object replaced (a hand-made state)."""
    server = tuple(sorted([o for o in state[SERVER] if o[0] != key] + [(key, 1, value)]))
    return (server,) + state[SERVER + 1:]


def test_the_properties_can_fail_on_states_that_break_them():
    m = DeploymentController()
    start = next(iter(m.init_states()))
    assert props.rollout_complete(m, start)
    # two ReplicaSets for one template
    twin = _with(start, (RS, "d-b-0"), ("b", 0))
    assert not props.one_replicaset_per_template(m, twin)
    # the old template's ReplicaSet still asks for a pod: not complete
    assert not props.rollout_complete(m, _with(start, (RS, "d-a"), ("a", 1)))
    # a pod not ready: not complete
    assert not props.rollout_complete(m, _with(start, (POD, "b0"), ("d-b", False, False, False)))
    # raising the ReplicaSets to replicas + maxSurge + 1 breaks the surge bound
    over = _with(start, (RS, "d-a"), ("a", 2))
    assert not props.max_surge(m, start, Step("Write"), over)
    assert props.max_surge(m, over, Step("Write"), start)  # falling is fine
    # a system step that makes an available pod terminating, leaving 1 < 2 - 0
    gone = _with(start, (POD, "b0"), ("d-b", True, True, False))
    assert not props.max_unavailable(m, start, Step("ReplicaSetSync", ("d-b",)), gone)
    # ... but a fault may, and a pod the fault crashed is forgiven afterwards
    crashed = _with(start, (POD, "b0"), ("d-b", False, False, True))
    assert props.max_unavailable(m, start, Step("PodFails", ("b0",)), crashed)
    assert props.max_unavailable(m, crashed, Step("PodReady", ("b1",)), crashed)


def test_a_trivially_true_property_would_let_a_mutant_through():
    # the same run, judged by the real property and by one that cannot fail
    # (the same first 5,000 states: the mutant's whole space is millions)
    machine = DEPLOYMENT.machine("rollback_creates_new_rs", **SMALL)
    real = [p for p in DEPLOYMENT.properties
            if p.name == "deployment_one_replicaset_per_template"]
    assert explore(machine, real, max_states=5_000).counterexample is not None
    trivial = [Property("trivial", "controllers", INVARIANT, "x", "x", lambda m, s: True)]
    assert explore(machine, trivial, max_states=5_000).counterexample is None


def test_a_rollback_scales_the_old_replicaset_up_instead_of_creating_one():
    m = DeploymentController(**SMALL)
    state = run(m, Step("Rollout", ("a",)), Step("Deliver"), Step("Reconcile", DEPLOY))
    key, writes = state[4]
    assert writes == (("update", (RS, "d-a"), 1, ("a", 1)),)  # d-a reused, scaled 0 -> 1


def test_pods_may_exceed_replicas_plus_surge_while_replicasets_do_not():
    """Why the surge property counts ReplicaSet replicas: the new
    ReplicaSet's controller may create a pod before the old one's controller
    deletes its surplus, in a correct cluster (docs/controllers.md)."""
    m = DeploymentController(replicas=2, rollouts=1, scales=0)

    def active(state):
        return sum(1 for _, (_, _, terminating, _) in m.objects(state).of_kind(POD)
                   if not terminating)
    states = reachable(m)
    assert any(active(s) > m.replicas + m.max_surge for s in states)
    assert all(props._spec(m.objects(s)) <= m.replicas + m.max_surge for s in states)

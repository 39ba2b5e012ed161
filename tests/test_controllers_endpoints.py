"""The EndpointSlice controller (``model.controllers.endpointslice``): the
correct controller passes with every cover reached, each mutant is caught by
both engines, and the properties judge the apiserver's slice, not the
controller's cache."""

from __future__ import annotations

import pytest
from controller_checks import assert_caught_by_explore, assert_caught_by_hypothesis, assert_holds
from helpers import run

from kubemc.checker.catalog.controllers import ENDPOINTSLICE
from kubemc.checker.run import targeted
from kubemc.model.controllers.endpointslice import SLICE, EndpointSliceController
from kubemc.model.kernel import Step
from kubemc.properties.controllers import endpointslice as props

LIVENESS_MUTANTS = {"keeps_not_ready", "keeps_deleted", "ignores_own_slice_events"}
#: the rest are found by the ci profile; this one needs a pod created and
#: changed while the controller's own write is in flight: deep finds it
DEEP = {"ignores_own_slice_events"}


def test_the_correct_controller_passes_with_a_crash_and_a_failed_write():
    outcome = assert_holds(ENDPOINTSLICE, crashes=1, write_failures=1, readiness_flips=1,
                           deletions=1, selector_changes=1)
    assert outcome.stats.states > 30_000


def test_the_correct_controller_passes_when_a_pod_is_created():
    """The bounds at which ignores_own_slice_events is caught."""
    assert_holds(ENDPOINTSLICE, pods=1, creations=1, crashes=0, write_failures=0,
                 readiness_flips=1, deletions=1, selector_changes=0,
                 unreached=("endpointslice_cover_reselected",))


@pytest.mark.parametrize("mutant", sorted(ENDPOINTSLICE.mutants))
def test_each_mutant_is_caught_by_explore(mutant, tmp_path):
    cex = assert_caught_by_explore(ENDPOINTSLICE, mutant, tmp_path)
    assert (cex.loop is not None) == (mutant in LIVENESS_MUTANTS)


@pytest.mark.parametrize("mutant", sorted(set(ENDPOINTSLICE.mutants) - DEEP))
def test_each_mutant_is_caught_by_hypothesis(mutant, tmp_path):
    """The deep one's hypothesis trace is committed and replayed by
    tests/test_traces.py; running the deep profile here costs over a minute."""
    assert_caught_by_hypothesis(ENDPOINTSLICE, mutant, tmp_path)


def test_a_reconcile_on_a_cache_older_than_its_own_write_is_run_again():
    """What ignores_own_slice_events gets wrong, step by step: the slice write
    for a new pod lands, the pod is gone before the controller's cache holds
    that write, the reconcile on the stale cache sees nothing to do; only the
    write's own event brings the Service back to the queue."""
    steps = [Step("Reconcile", ("services", "svc")), Step("Write"), Step("Deliver"),
             Step("CreatePod", ("p1", "a")), Step("Deliver"),
             Step("Reconcile", ("services", "svc")), Step("DeletePod", ("p1",)),
             Step("Deliver"), Step("PodGone", ("p1",)), Step("Deliver"), Step("Write"),
             Step("Reconcile", ("services", "svc")), Step("Deliver")]
    for mutant, healed in ((None, True), ("ignores_own_slice_events", False)):
        m = EndpointSliceController(pods=1, crashes=0, write_failures=0, mutant=mutant)
        s = run(m, *steps)
        assert [e[0] for e in m.objects(s)[SLICE]] == ["p0", "p1"]  # p1 is gone
        assert not props.matches_pods(m, s) and props.some_gone_listed(m, s)
        assert (("services", "svc") in s[3]) == healed
        if healed:
            s = run(m, Step("Reconcile", ("services", "svc")), Step("Write"), state=s)
            assert props.matches_pods(m, s)


def test_the_properties_judge_the_server_not_the_cache():
    """A slice the server holds with a not-Ready pod listed ready fails the
    convergence goal and triggers the leads-to, whatever the cache says."""
    m = EndpointSliceController(crashes=0, write_failures=0)
    s = run(m, Step("Reconcile", ("services", "svc")), Step("Write"), Step("Deliver"))
    assert props.matches_pods(m, s) and props.no_stale_ready(m, s)
    assert m.objects(s)[SLICE] == (("p0", True, True, False),)
    s = run(m, Step("NotReady", ("p0",)), state=s)
    assert not props.matches_pods(m, s)
    assert props.some_stale_ready(m, s) and not props.no_stale_ready(m, s)
    s = run(m, Step("Deliver"), Step("Reconcile", ("services", "svc")), Step("Write"), state=s)
    assert props.matches_pods(m, s) and props.no_stale_ready(m, s)


def test_a_property_made_trivially_true_no_longer_catches_its_mutant():
    """The teeth test: replace the leads-to's goal by 'true' and explore
    finds nothing in the mutant that the real goal catches."""
    from kubemc.checker.explore import explore

    m = ENDPOINTSLICE.machine("keeps_deleted", crashes=0, write_failures=0)
    real = targeted(ENDPOINTSLICE, "keeps_deleted")
    assert explore(m, real).counterexample is not None
    blunt = [p if p.kind != "leads_to" else
             type(p)(p.name, p.component, p.kind, p.statement, p.provenance,
                     lambda _m, _s: True, trigger=p.trigger)
             for p in real]
    assert explore(m, blunt).counterexample is None


def test_disabled_world_steps_are_refused():
    m = EndpointSliceController()
    s = next(iter(m.init_states()))
    for step in [Step("PodGone", ("p0",)), Step("Select", ("a",)), Step("Select", ("c",)),
                 Step("Ready", ("p0",)), Step("NotReady", ("p1",)), Step("CreatePod", ("p0", "a")),
                 Step("DeletePod", ("p9",)), Step("Write"), Step("Deliver")]:
        assert m.apply(s, step) is None, step


class _DropsTerminatingConditions(EndpointSliceController):
    """An audit's mutation: a terminating pod's endpoint loses ``serving`` and
    ``terminating`` (it reads as a plain not-ready endpoint)."""

    def _endpoint(self, name, pod):
        _, ready, terminating = pod
        return (name, ready and not terminating, ready and not terminating, False)


def test_a_terminating_pods_endpoint_conditions_are_judged():
    """A pod stays terminating as long as it likes (``PodGone`` is the
    environment's): when it was a weakly fair system step, every quiet
    behaviour ended with the pod gone and no property ever judged a
    terminating pod's ``serving`` / ``terminating`` conditions — this
    mutation passed. Now convergence catches it."""
    from kubemc.checker.explore import explore

    assert EndpointSliceController.tags["PodGone"] == "environment"
    m = _DropsTerminatingConditions(**ENDPOINTSLICE.bounds)
    converges = [p for p in ENDPOINTSLICE.properties if p.name == "endpointslice_converges"]
    cex = explore(m, converges).counterexample
    assert cex is not None and cex.loop is not None
    slice_ = m.objects(cex.final)[SLICE]
    pods = dict(m.objects(cex.final).of_kind("pods"))
    assert any(pods[("pods", e[0])][2] for e in slice_)  # a terminating pod, listed wrongly

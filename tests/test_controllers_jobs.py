"""The Job controller: counts every finished pod once, across restarts;
keeps at most parallelism pods active; fails after backoffLimit; finishes."""

import pytest

from kubemc.checker.catalog.controllers import JOB
from controller_checks import assert_caught_by_explore, assert_caught_by_hypothesis, assert_holds
from helpers import run
from kubemc.model.controllers.job import JOB as JOB_KEY, JobController
from kubemc.model.controllers.loop import SERVER
from kubemc.model.kernel import Step
from kubemc.properties.controllers import job as props

MUTANTS = sorted(JOB.mutants)


def test_the_correct_controller_passes_at_the_default_bounds():
    outcome = assert_holds(JOB)
    assert outcome.stats.states > 1000  # crashes, failures and restarts interleave


def test_the_correct_controller_passes_with_one_completion_and_a_retry():
    # one pod at a time: no running pod is left to delete when the Job fails
    assert_holds(JOB, unreached=("job_cover_counted_then_removed",), completions=1,
                 parallelism=1, backoff_limit=1, pod_failures=2, max_objects=4)


@pytest.mark.parametrize("mutant", MUTANTS)
def test_each_mutant_is_caught_by_explore(mutant, tmp_path):
    cex = assert_caught_by_explore(JOB, mutant, tmp_path)
    # the liveness mutant's counterexample is a lasso
    assert (cex.loop is not None) == (mutant == "leaves_finalizers")


@pytest.mark.parametrize("mutant", MUTANTS)
def test_each_mutant_is_caught_by_hypothesis(mutant, tmp_path):
    assert_caught_by_hypothesis(JOB, mutant, tmp_path)


def _created_and_succeeded(machine):
    """The controller creates two pods; the kubelet runs one to success."""
    state = run(machine, Step("Reconcile", JOB_KEY), Step("Write"), Step("Write"))
    return run(machine, Step("PodSucceeds", ("job-0",)), state=state)


def _with_job_status(state, **fields):
    """``state`` with the Job's status fields replaced on the server (a
    hand-made state no controller reached)."""
    names = ("completions", "parallelism", "backoff_limit", "succeeded", "failed",
             "uncounted", "finished")
    server = []
    for key, rv, value in state[SERVER]:
        if key == JOB_KEY:
            value = tuple(fields.get(n, v) for n, v in zip(names, value))
        server.append((key, rv, value))
    return (tuple(server),) + state[SERVER + 1:]


def test_the_properties_can_fail_on_states_that_break_them():
    machine = JobController()
    state = _created_and_succeeded(machine)
    # one real success: counting it once is fine, twice is not
    assert props.counts_each_completion_once(machine, _with_job_status(state, succeeded=1))
    assert not props.counts_each_completion_once(machine, _with_job_status(state, succeeded=2))
    assert not props.counts_each_completion_once(
        machine, _with_job_status(state, succeeded=1, uncounted=(("job-0", "Succeeded"),)))
    assert not props.succeeded_within_completions(machine, _with_job_status(state, succeeded=3))
    # not finished, and a pod still runs: the goal does not hold
    assert not props.finished_for_good(machine, state)
    assert not props.finished_for_good(machine, _with_job_status(state, finished="Complete"))
    # one failed pod with backoffLimit 0, yet Complete
    failed = run(machine, Step("PodFails", ("job-1",)), state=state)
    assert not props.backoff_limit_respected(machine, _with_job_status(failed, finished="Complete"))
    assert props.backoff_limit_respected(machine, _with_job_status(failed, finished="Failed"))


def test_steps_that_are_not_enabled_are_refused():
    machine = JobController()
    (state,) = machine.init_states()
    for step in (Step("PodSucceeds", ("job-0",)), Step("PodGone", ("job-0",)),
                 Step("PodFails", ("job-9",)), Step("Nope")):
        assert machine.apply(state, step) is None
    # a step of another shape is a bug in whatever built it, not a disabled step
    with pytest.raises(TypeError, match="takes 1"):
        machine.apply(state, Step("PodFails", ()))

"""What a Job promises, read off the apiserver's objects (and, for how many
pods really succeeded, the kubelet's ghost count).

Kubernetes documentation, "Jobs" (kubernetes.io/docs/concepts/workloads/
controllers/job):

* "A Job creates one or more Pods and will continue to retry execution of
  the Pods until a specified number of them successfully terminate. As pods
  successfully complete, the Job tracks the successful completions. When a
  specified number of successful completions is reached, the task (ie, Job)
  is complete."
* ".spec.parallelism ... the actual number of pods running in steady state
  will be less than this number if .spec.completions - .status.successful <
  .spec.parallelism" — never more than parallelism active pods.
* "set .spec.backoffLimit to specify the number of retries before considering
  a Job as failed ... Once .spec.backoffLimit has been reached the Job will
  be marked as failed and any running Pods will be terminated."
* "The control plane keeps track of the Pods that belong to any Job and
  notices if any such Pod is removed from the API server. To do that, the
  Job controller creates Pods with the finalizer
  batch.kubernetes.io/job-tracking. The controller removes the finalizer
  only after the Pod has been accounted for in the Job status."

KEP-2307 ("Job tracking without lingering Pods") adds that a finished pod is
counted exactly once, across controller restarts. The yardstick for "once"
is not the Job's own status but the number of pods the kubelet saw succeed
(:meth:`JobController.real_successes`, a ghost the controller never reads).

Active pod: phase Running and no deletionTimestamp (the Job API's
``status.active`` excludes terminating pods, KEP-3939).
"""

from __future__ import annotations

from kubemc.model.controllers.job import (
    COMPLETE, FAILED, FAILED_JOB, JOB, POD, RUNNING, SUCCEEDED,
)
from kubemc.properties.core import COVER, EVENTUALLY_ALWAYS, INVARIANT, Property

_DOCS = "kubernetes.io/docs/concepts/workloads/controllers/job"
_KEP = ("KEP-2307 'Job tracking without lingering Pods' (kubernetes/enhancements "
        "keps/sig-apps/2307)")


def _job(m, state):
    """The Job's fields by name, read from the server."""
    spec_status = m.objects(state).get(JOB)
    if spec_status is None:
        return None
    names = ("completions", "parallelism", "backoff_limit", "succeeded", "failed",
             "uncounted", "finished")
    return dict(zip(names, spec_status))


def _pods(m, state):
    return [value for _, value in m.objects(state).of_kind(POD)]


def _active(pods) -> int:
    return sum(1 for phase, _, terminating in pods if phase == RUNNING and not terminating)


def succeeded_within_completions(m, state) -> bool:
    job = _job(m, state)
    return job is None or job["succeeded"] <= job["completions"]


def counts_each_completion_once(m, state) -> bool:
    """Counted plus listed-as-uncounted successes never exceed the pods that
    really succeeded: a success counted twice, or one that never happened,
    makes the left side larger."""
    job = _job(m, state)
    if job is None:
        return True
    listed = sum(1 for _, phase in job["uncounted"] if phase == SUCCEEDED)
    return job["succeeded"] + listed <= m.real_successes(state)


def active_within_parallelism(m, state) -> bool:
    job = _job(m, state)
    return job is None or _active(_pods(m, state)) <= job["parallelism"]


def backoff_limit_respected(m, state) -> bool:
    """A Job more of whose pods failed than backoffLimit allows is not
    marked Complete."""
    job = _job(m, state)
    if job is None or job["finished"] != COMPLETE:
        return True
    failed = sum(1 for phase, _, _ in _pods(m, state) if phase == FAILED)
    return failed <= job["backoff_limit"]


def finished_for_good(m, state) -> bool:
    """The Job's final state: marked Complete with exactly ``completions``
    counted successes, or marked Failed after more than backoffLimit pod
    failures; no pod still running; no pod left holding the tracking
    finalizer."""
    job = _job(m, state)
    if job is None:
        return True
    pods = _pods(m, state)
    if _active(pods) or any(finalizer for _, finalizer, _ in pods):
        return False
    if job["finished"] == COMPLETE:
        return job["succeeded"] == job["completions"] == m.real_successes(state)
    if job["finished"] == FAILED_JOB:
        return job["failed"] > job["backoff_limit"]
    return False


def cover_complete(m, state) -> bool:
    job = _job(m, state)
    return job is not None and job["finished"] == COMPLETE


def cover_failed(m, state) -> bool:
    job = _job(m, state)
    return job is not None and job["finished"] == FAILED_JOB


def cover_listed_with_finalizer(m, state) -> bool:
    """A pod listed in uncountedTerminatedPods still holds its finalizer —
    the window in which a crash tests the counting protocol."""
    job = _job(m, state)
    if job is None:
        return False
    listed = {name for name, _ in job["uncounted"]}
    return any(key[1] in listed and value[1] for key, value in m.objects(state).of_kind(POD))


def cover_counted_then_removed(m, state) -> bool:
    """A success was counted and its pod is gone from the server: the
    ghost, not the pods, is what remembers it."""
    job = _job(m, state)
    if job is None or not job["succeeded"]:
        return False
    present = sum(1 for phase, _, _ in _pods(m, state) if phase == SUCCEEDED)
    return present < m.real_successes(state)


PROPERTIES = (
    Property("job_succeeded_within_completions", "controllers", INVARIANT,
             "a Job's status.succeeded never exceeds spec.completions",
             _DOCS + ": 'When a specified number of successful completions is reached, the "
             "task (ie, Job) is complete'", succeeded_within_completions),
    Property("job_counts_each_completion_once", "controllers", INVARIANT,
             "status.succeeded plus the successes listed in uncountedTerminatedPods never "
             "exceed the pods that really succeeded: no completion is counted twice",
             _KEP + "; " + _DOCS + ": 'The controller removes the finalizer only after the "
             "Pod has been accounted for in the Job status'", counts_each_completion_once),
    Property("job_active_within_parallelism", "controllers", INVARIANT,
             "a Job never has more active pods (running, not terminating) than "
             "spec.parallelism",
             _DOCS + ": '.spec.parallelism ... the actual number of pods running in steady "
             "state will be less than this number if .spec.completions - .status.successful "
             "< .spec.parallelism'", active_within_parallelism),
    Property("job_backoff_limit_respected", "controllers", INVARIANT,
             "a Job with more failed pods than spec.backoffLimit is never marked Complete",
             _DOCS + ": 'Once .spec.backoffLimit has been reached the Job will be marked as "
             "failed and any running Pods will be terminated'", backoff_limit_respected),
    Property("job_finishes", "controllers", EVENTUALLY_ALWAYS,
             "once pod failures and faults stop, the Job is eventually Complete with exactly "
             "spec.completions successes counted, or Failed after more than backoffLimit "
             "failures, with no pod running and none holding the tracking finalizer, and "
             "stays so",
             _DOCS + ": 'will continue to retry execution of the Pods until a specified "
             "number of them successfully terminate'; " + _KEP + " (no lingering pods)",
             finished_for_good,
             assumption="every pod's workload terminates (the kubelet's PodSucceeds is a "
                        "weakly fair step)"),
    Property("job_cover_complete", "controllers", COVER,
             "some reachable state has the Job marked Complete", _DOCS, cover_complete),
    Property("job_cover_failed", "controllers", COVER,
             "some reachable state has the Job marked Failed", _DOCS, cover_failed),
    Property("job_cover_listed_with_finalizer", "controllers", COVER,
             "some reachable state has a pod listed in uncountedTerminatedPods that still "
             "holds its finalizer (the window a crash tests)", _KEP,
             cover_listed_with_finalizer),
    Property("job_cover_counted_then_removed", "controllers", COVER,
             "some reachable state has a counted success whose pod is gone from the server",
             _KEP, cover_counted_then_removed),
)

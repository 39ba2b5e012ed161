"""The Job controller: run pods until ``completions`` of them succeed, at most
``parallelism`` at a time, and give up after more than ``backoffLimit``
failures — counting every finished pod exactly once.

What the real controller does (kubernetes/kubernetes ``pkg/controller/job``,
with job tracking by finalizers, KEP-2307, on by default since 1.26), kept
here:

* every pod it creates carries the finalizer
  ``batch.kubernetes.io/job-tracking``, so a finished pod cannot disappear
  before the controller has counted it;
* counting is a three-step protocol through the Job's status, which is what
  makes "counted exactly once" survive a restart: (1) the UID of a finished
  pod that still has the finalizer is added to
  ``status.uncountedTerminatedPods``; (2) the finalizer is removed from the
  pods listed there; (3) listed pods whose finalizer is gone move from the
  list to ``status.succeeded`` / ``status.failed``. A controller that crashes
  between any two steps finds its progress in the Job's status, never in
  memory;
* **expectations** for pod creations, as the ReplicaSet controller has
  (``ControllerExpectations``): it does not create again until its informer
  has observed the pods it created;
* it wants ``min(parallelism, completions - succeeded)`` active pods (active:
  not finished and not terminating); it marks the Job ``Complete`` when
  ``succeeded`` reaches ``completions`` and ``Failed`` when ``failed``
  exceeds ``backoffLimit``, deleting the pods still running; and it removes
  the finalizer of pods deleted after that, without counting them (KEP-2307,
  "User deleted Pods").

Each step of the protocol is a separate reconcile: the loop plans its writes
from the cache with the resourceVersions it holds, and the Job's status is
rewritten by each step, so the next step waits for the watch event of the
previous one (client-go controllers wait the same way for their informer).

The world: the kubelet runs each pod's workload to completion (``PodSucceeds``:
a system step of another component, weakly fair — a Job's workload is
assumed to terminate), a pod fails (``PodFails``: a fault, budgeted), and a
terminating pod whose finalizers are gone is removed once its containers
stop (``PodGone``).

Objects::

    (jobs, job) -> (completions, parallelism, backoff_limit,      the spec
                    succeeded, failed, uncounted, finished)       the status
                   uncounted: sorted ((pod name, SUCCEEDED|FAILED), ...)
                   finished:  "" | COMPLETE | FAILED_JOB
    (pods, job-N) -> (phase, finalizer, terminating)
                   phase: RUNNING | SUCCEEDED | FAILED

Memory: the creations expected but not yet observed (an int), or ``()``.
"""

from __future__ import annotations

from kubemc.model.controllers.loop import (
    CREATE, INFLIGHT, MEMORY, SPENT, ControllerLoop, create, delete, update,
)
from kubemc.model.kernel import FAULT, SYSTEM, Mutant, Step, action

JOB = ("jobs", "job")
POD = "pods"
RUNNING, SUCCEEDED, FAILED = "Running", "Succeeded", "Failed"
COMPLETE, FAILED_JOB = "Complete", "Failed"

# indexes into a Job's value
COMPLETIONS, PARALLELISM, BACKOFF, N_SUCCEEDED, N_FAILED, UNCOUNTED, FINISHED = range(7)

DOUBLE_COUNT = "double_count_after_restart"
IGNORES_BACKOFF = "ignores_backoff_limit"
OVERCREATES = "overcreates_on_stale_cache"
LEAVES_FINALIZERS = "leaves_finalizers"
IGNORES_REMAINING = "ignores_remaining_completions"


class JobController(ControllerLoop):
    name = "job"
    primary = "jobs"
    #: ``successes`` is not a bound but a ghost: the kubelet's count of pods
    #: that really succeeded, kept with the world's counters because a pod
    #: that succeeded may be removed from the server after it is counted. The
    #: controller never reads it; the properties judge its counts against it.
    world_budgets = ("pod_failures", "successes")
    mutants = {
        DOUBLE_COUNT: Mutant(
            "counts a finished pod straight into status.succeeded and then removes its "
            "tracking finalizer, without recording it in status.uncountedTerminatedPods "
            "first: a crash or a failed request between the two writes leaves a counted pod "
            "with its finalizer, and the restarted controller counts it again (the failure "
            "KEP-2307's uncounted list exists for, kubernetes/enhancements#2308; a pod "
            "counted more than once: kubernetes/kubernetes#105200)",
            violates="job_counts_each_completion_once"),
        IGNORES_BACKOFF: Mutant(
            "never checks backoffLimit: replaces failed pods until enough succeed and marks "
            "the Job Complete ('Job is continuously creating failed pods, not respecting "
            "backoffLimit', kubernetes/kubernetes#63135; kubernetes/kubernetes#62382)",
            violates="job_backoff_limit_respected"),
        OVERCREATES: Mutant(
            "creates pods without expectations: pods it created but its cache has not shown "
            "yet are counted as missing and created again, beyond parallelism (the Job "
            "controller's expectations guard this; 'Job somehow made 84k pods', "
            "kubernetes/kubernetes#27997)",
            violates="job_active_within_parallelism"),
        IGNORES_REMAINING: Mutant(
            "sizes the pods it runs by parallelism alone, not by the completions still "
            "missing: with one completion left it keeps two pods running, both succeed, and "
            "status.succeeded passes spec.completions (the Jobs docs: 'the actual number of "
            "pods running in parallel will not exceed the number of remaining completions'; "
            "kubernetes/kubernetes#99963 fixed the same blind spot when removing pods)",
            violates="job_succeeded_within_completions"),
        LEAVES_FINALIZERS: Mutant(
            "stops syncing a Job once it is finished, so the pods it deleted when the Job "
            "failed keep the tracking finalizer and stay terminating for ever ('Fix job "
            "tracking leaving pods with finalizers', kubernetes/kubernetes#109486; "
            "kubernetes/kubernetes#109429)",
            violates="job_finishes"),
    }

    def __init__(self, *, completions: int = 2, parallelism: int = 2, backoff_limit: int = 0,
                 pod_failures: int = 1, crashes: int = 1, write_failures: int = 1,
                 resyncs: int = 0, max_objects: int = 5, mutant: str | None = None):
        if completions < 1 or parallelism < 1 or backoff_limit < 0:
            raise ValueError("completions and parallelism must be >= 1, backoff_limit >= 0")
        super().__init__(crashes=crashes, write_failures=write_failures, resyncs=resyncs,
                         max_objects=max_objects, mutant=mutant, pod_failures=pod_failures,
                         successes=max_objects)
        self.completions = completions
        self.parallelism = parallelism
        self.backoff_limit = backoff_limit

    def config(self):
        bounds = {k: v for k, v in super().config().items() if k != "successes"}
        return {"completions": self.completions, "parallelism": self.parallelism,
                "backoff_limit": self.backoff_limit, **bounds}

    def real_successes(self, state) -> int:
        """The ghost: how many of the Job's pods the kubelet saw succeed."""
        return state[SPENT][self.budget_names.index("successes")]

    # -- the cluster it starts from ---------------------------------------------
    def initial_objects(self):
        yield [(JOB, (self.completions, self.parallelism, self.backoff_limit,
                      0, 0, (), ""))]

    # -- the event handler and expectations --------------------------------------
    def handle(self, cache, key, old, new):
        return (JOB,) if key[0] == POD or key == JOB else ()

    def observe(self, memory, key, old, new):
        if key[0] == POD and old is None and new is not None and memory:
            return max(memory - 1, 0)
        return memory

    # -- the reconcile -------------------------------------------------------------
    def reconcile(self, cache, key, memory):
        if key != JOB or key not in cache:
            return (), memory
        job = cache[JOB]
        if job[FINISHED] and self.mutant == LEAVES_FINALIZERS:
            return (), memory
        pods = dict(cache.of_kind(POD))
        writes = self._account(cache, job, pods)
        if writes is not None:
            return writes, memory
        if job[FINISHED]:
            return self._release(cache, pods), memory
        if memory and self.mutant != OVERCREATES:
            return (), memory  # still waiting to observe its own creations
        return self._manage(cache, job, pods, memory)

    def _account(self, cache, job, pods):
        """Steps (1)-(3) of the counting protocol; None when nothing is left
        to count."""
        listed = {name for name, _ in job[UNCOUNTED]}
        finished = sorted((k[1], v[0]) for k, v in pods.items()
                          if v[0] != RUNNING and v[1] and k[1] not in listed)
        if finished and self.mutant == DOUBLE_COUNT:
            succ = sum(1 for _, phase in finished if phase == SUCCEEDED)
            status = job[:N_SUCCEEDED] + (job[N_SUCCEEDED] + succ,
                                          job[N_FAILED] + len(finished) - succ) + job[UNCOUNTED:]
            return ((update(JOB, cache.rv(JOB), status),)
                    + self._unfinalize(cache, pods, [n for n, _ in finished]))
        if finished:
            uncounted = tuple(sorted(job[UNCOUNTED] + tuple(finished)))
            status = job[:UNCOUNTED] + (uncounted,) + job[UNCOUNTED + 1:]
            return ((update(JOB, cache.rv(JOB), status),)
                    + self._unfinalize(cache, pods, [n for n, _ in uncounted]))
        pending = self._unfinalize(cache, pods, sorted(listed))
        if pending:
            return pending
        if job[UNCOUNTED]:
            succ = sum(1 for _, phase in job[UNCOUNTED] if phase == SUCCEEDED)
            status = job[:N_SUCCEEDED] + (job[N_SUCCEEDED] + succ,
                                          job[N_FAILED] + len(job[UNCOUNTED]) - succ, (),
                                          job[FINISHED])
            return (update(JOB, cache.rv(JOB), status),)
        return None

    @staticmethod
    def _unfinalize(cache, pods, names):
        out = []
        for name in names:
            key = (POD, name)
            if key in pods and pods[key][1]:
                phase, _, terminating = pods[key]
                out.append(update(key, cache.rv(key), (phase, False, terminating)))
        return tuple(out)

    def _release(self, cache, pods):
        """A finished Job: delete what still runs, and let deleted pods go."""
        writes = []
        for key, (phase, finalizer, terminating) in sorted(pods.items()):
            if phase == RUNNING and not terminating:
                writes.append(delete(key))
            elif terminating and finalizer:
                writes.append(update(key, cache.rv(key), (phase, False, True)))
        return tuple(writes)

    def _manage(self, cache, job, pods, memory):
        completions, parallelism, limit, succeeded, failed = job[:UNCOUNTED]
        if failed > limit and self.mutant != IGNORES_BACKOFF:
            return (update(JOB, cache.rv(JOB), job[:FINISHED] + (FAILED_JOB,)),), memory
        if succeeded >= completions:
            return (update(JOB, cache.rv(JOB), job[:FINISHED] + (COMPLETE,)),), memory
        active = sum(1 for phase, _, terminating in pods.values()
                     if phase == RUNNING and not terminating)
        want = (parallelism if self.mutant == IGNORES_REMAINING
                else min(parallelism, completions - succeeded))
        if active >= want:
            return (), memory
        diff = want - active
        writes = tuple(create(POD, "job-", (RUNNING, True, False), generate=True)
                       for _ in range(diff))
        return writes, diff

    def _refused(self, state, outcome):
        # the refused create and the creates after it will never be observed
        _, writes = state[INFLIGHT]
        memory = state[MEMORY]
        if memory:
            memory = max(memory - sum(1 for w in writes if w[0] == CREATE), 0)
        return super()._refused(state[:MEMORY] + (memory,) + state[MEMORY + 1:], outcome)

    # -- deletion is graceful --------------------------------------------------------
    def deleting(self, key, value):
        return value[:2] + (True,) if key[0] == POD else None

    # -- the world -------------------------------------------------------------------
    def world_steps(self, state):
        for key, (phase, finalizer, terminating) in self.objects(state).of_kind(POD):
            if terminating:
                if not finalizer:
                    yield Step("PodGone", (key[1],))
            elif phase == RUNNING:
                yield Step("PodSucceeds", (key[1],))
                if self.budget_left(state, "pod_failures"):
                    yield Step("PodFails", (key[1],))

    @action("PodGone", tag=SYSTEM)
    def _PodGone(self, state, name):
        pod = self.stored(state, POD, name)
        if pod is None:
            return None
        key, (_, finalizer, terminating) = pod
        return self.server_write(state, key, None) if terminating and not finalizer else None

    # A pod runs for much longer than a reconcile takes: random runs let pods
    # finish seldom (rare), or every pod would finish before the controller acts.
    @action("PodSucceeds", tag=SYSTEM, rare=True)
    def _PodSucceeds(self, state, name):
        pod = self.stored(state, POD, name)
        if pod is None:
            return None
        key, (phase, finalizer, terminating) = pod
        if terminating or phase != RUNNING:
            return None
        return self.server_write(self.spend(state, "successes"), key,
                                 (SUCCEEDED, finalizer, False))

    @action("PodFails", tag=FAULT, rare=True)
    def _PodFails(self, state, name):
        pod = self.stored(state, POD, name)
        if pod is None:
            return None
        key, (phase, finalizer, terminating) = pod
        if terminating or phase != RUNNING or not self.budget_left(state, "pod_failures"):
            return None
        return self.server_write(self.spend(state, "pod_failures"), key,
                                 (FAILED, finalizer, False))

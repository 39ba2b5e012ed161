"""The kubelet's pod worker driving a CRI runtime to one pod's spec.

The seeds: the kubelet "receives pod definitions, primarily from the
apiserver, and drives the container runtime to run the pod's containers,
monitoring their health"; it reaches the runtime through the CRI. Here the
runtime is ``model.cri.runtime`` itself — every runtime effect is an answer
of ``call`` — and the apiserver is the pod object the kubelet reads (its
deletion) and writes (its status).

What the pod worker does, each a ``system`` step (one CRI call or one write,
so a kubelet restart can fall between any two of them):

* ``Admit`` — node admission: the pod fits the node's allocatable resources
  and its node affinity (abstracted to the spec's ``fits``) or is rejected,
  and then Failed without a sandbox;
* ``RunSandbox`` — RunPodSandbox first; nothing else before it is ready;
* init containers in spec order, each ``Create`` + ``Start``ed only when the
  one before has exited 0 (a regular one) or is running and *started* (a
  sidecar: its startup probe succeeded); a failed init container is restarted
  (back-off) unless restartPolicy is Never, which fails the pod;
* then app containers; exited ones are restarted by restartPolicy
  (Always: any exit; OnFailure: non-zero; Never: none); sidecars are
  restarted whenever they exit, and stopped once every app has finished;
* ``Backoff(i)`` — waiting out CrashLoopBackOff before a restart; the delay
  is an abstract counter (``level``: 10 s doubling, capped at 300 s), reset
  when the container has run 10 minutes (``RanLong``, the clock's step);
* ``Kill(i)`` — a liveness probe failed or the runtime lost the container
  (CONTAINER_UNKNOWN): StopContainer, then the restart rule applies;
* deletion: ``PreStop(i)`` runs the hook (it takes one abstract second of
  the grace period), ``Stop(i)`` sends StopContainer with what is left of
  the grace period (at least ``MIN_GRACE``), app and init containers before
  sidecars; then ``StopSandbox``, ``Finalize`` (the pod object is removed
  from the apiserver) and ``GarbageCollect`` (RemovePodSandbox of a pod the
  apiserver no longer has); a Succeeded or Failed pod gets its sidecars and
  sandbox stopped too;
* ``WriteStatus`` — phase (Pending / Running / Succeeded / Failed, by the
  pod-lifecycle rules) and the Ready condition, written when they changed; a
  terminal phase is never rewritten;
* ``RenewLease`` — the node Lease heartbeat, when the clock made it stale;
* ``Relist`` — after a kubelet restart (which loses all its memory: known
  ids, back-off, probe results, preStop done), ListPodSandbox and
  ListContainers rebuild its view: the pod's sandbox and, per container
  name, the newest container are *adopted*, never created again;
* ``Adopt`` — a container the runtime lists that the kubelet never heard
  of (its CreateContainer answer was lost) is adopted before any decision:
  the pod worker syncs only on a runtime status newer than its last sync.

The world (``environment`` steps, each with a budget so "users and faults
stop" is a bound): a container's process exits with 0 or 1 (``Exit``),
probes report (``Probe``: startup succeeded, readiness up or down, liveness
failed), a container runs 10 minutes (``RanLong``), a user deletes the pod
(``Delete``), the Lease goes stale (``LeaseTick``); faults: the kubelet
restarts (``KubeletRestart``), the runtime restarts (``RuntimeRestart``,
losing the state of one running container or none), the answer to a
CreateContainer the runtime applied is lost (``CreateAnswerLost``).

Abstractions and why they keep the properties' meaning: time is a set of
events (a back-off elapsed, ten minutes ran, a preStop second passed, the
Lease aged), because every property is about order and counts of events,
not durations; probes are their results, because only results reach the
kubelet; PLEG is folded into each step (the worker reads the runtime's
status of the containers it knows), because the relist delay only delays.

State (plain tuples)::

    (pod, runtime, kubelet, world)
    pod     = (phase, ready, deleting), or None once removed from the apiserver
    runtime = model.cri.runtime state
    kubelet = None while restarting (until Relist), else (admitted, sandbox, conts)
              admitted None / True / False; sandbox: known sandbox id or -1
              conts[i] = (cid, level, waited, seen, kill, prestopped)
    world   = (spent, stale, probes, streak, slept, elapsed)
              spent: the budgets used (``BUDGETS``); stale: the Lease is stale
              probes[i]: what the probes say of container i's current run:
                0 not started (startup probe pending), 1 started, 2 ready
              streak[i]: exits of i since it last ran 10 minutes (a ghost)
              slept[i]: the back-off slept before i's pending restart (a ghost)
              elapsed: grace seconds used by preStop hooks since deletion

A kubelet step's parameters are the CRI request it sends — ``Create(i,
sandbox, attempt)``, ``Start(i, container)``, ``Stop(i, container,
timeout)``, ``Kill(i, container, timeout)`` — so properties judge what went
over the wire from the step itself, and the state carries no record of it.
"""

from __future__ import annotations

from kubemc.model.cri import runtime as rt
from kubemc.model.kernel import ENVIRONMENT, FAULT, SYSTEM, Machine, Mutant, Step, action
from kubemc.model.kubelet import spec as sp

PENDING, RUNNING_PHASE, SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"
TERMINAL = (SUCCEEDED, FAILED)
POD, RUNTIME, KUBELET, WORLD = range(4)
SPENT, STALE, PROBES, STREAK, SLEPT, ELAPSED = range(6)
CID, LEVEL, WAITED, SEEN, KILL, PRESTOPPED = range(6)
BUDGETS = ("exits", "probe_failures", "long_runs", "deletes", "kubelet_restarts",
           "runtime_restarts", "lease_ticks", "lost_answers")
UID = "pod"
#: the back-off level whose delay reaches the cap (10 * 2**5 > 300)
MAX_LEVEL = 5
LIVE = (rt.CREATED, rt.RUNNING, rt.UNKNOWN)

# -- mutants ----------------------------------------------------------------------
APPS_DURING_INIT = "apps_during_init"
ONFAILURE_RESTARTS_SUCCESS = "onfailure_restarts_success"
NEVER_POLICY_RESTARTS = "never_policy_restarts"
READY_IGNORES_PROBE = "ready_ignores_probe"
LEAKS_SANDBOX = "leaks_sandbox"
RESTART_NO_ADOPT = "restart_no_adopt"
BACKOFF_NEVER_RESETS = "backoff_never_resets"
KILL_WITHOUT_GRACE = "kill_without_grace"
CONTAINERS_BEFORE_SANDBOX = "containers_before_sandbox"
RESTART_STOPS_HEARTBEAT = "restart_stops_heartbeat"
SUCCEEDED_EARLY = "succeeded_early"
RUNS_REJECTED_POD = "runs_rejected_pod"
SIDECAR_NOT_RESTARTED = "sidecar_not_restarted"
BACKOFF_UNCAPPED = "backoff_uncapped"
IGNORES_STARTUP_PROBE = "ignores_startup_probe"
SIDECAR_WAITS_FOR_READY = "sidecar_waits_for_ready"
SANDBOX_STOPPED_FIRST = "sandbox_stopped_first"


class Kubelet(Machine):
    """The actions are declared on their handlers (``@action``): the pod
    worker's (``system``, ``_do_*``) and the world's (``_world_*``). ``steps``
    is written, not derived: the worker's steps are its ``plan``, one decision
    across actions in an order, and a worker step is enabled only when
    planned, which ``apply`` checks before the handler runs (the guard is the
    plan, written once); every step's next state then passes ``_observe``."""

    name = "kubelet"
    mutants = {
        APPS_DURING_INIT: Mutant(
            "app containers are started while an init container has not yet succeeded "
            "(the init-containers docs: 'each init container must complete successfully "
            "before the next one starts')", violates="kubelet_init_order"),
        ONFAILURE_RESTARTS_SUCCESS: Mutant(
            "the pod worker keeps syncing a pod written Succeeded and, under restartPolicy "
            "OnFailure, restarts an app container that exited 0 as under Always",
            violates="kubelet_terminal_pod_runs_nothing"),
        NEVER_POLICY_RESTARTS: Mutant(
            "under restartPolicy Never a failed app container is restarted",
            violates="kubelet_restart_policy"),
        READY_IGNORES_PROBE: Mutant(
            "the Ready condition counts running containers and ignores the readiness probe's "
            "failure", violates="kubelet_ready_only_when_containers_ready"),
        LEAKS_SANDBOX: Mutant(
            "the kubelet's garbage collector never removes the sandbox of a pod the "
            "apiserver no longer has", violates="kubelet_deleted_pod_cleaned"),
        RESTART_NO_ADOPT: Mutant(
            "the kubelet adopts no container it did not create in this life: after a restart "
            "the relist takes the sandbox but not its containers (and a container whose "
            "CreateContainer answer was lost stays unknown), so it creates a second one",
            violates="kubelet_no_duplicate_containers"),
        BACKOFF_NEVER_RESETS: Mutant(
            "the back-off is not reset after a container ran 10 minutes",
            violates="kubelet_backoff"),
        IGNORES_STARTUP_PROBE: Mutant(
            "the next init container starts as soon as the sidecar runs, before its startup "
            "probe succeeded (the sidecar docs: only once 'the kubelet has set the started "
            "status for that init container to true')", violates="kubelet_init_order"),
        BACKOFF_UNCAPPED: Mutant(
            "the back-off keeps doubling past the five-minute cap (320 s after six crashes)",
            violates="kubelet_backoff"),
        KILL_WITHOUT_GRACE: Mutant(
            "a deleted pod's containers are stopped with timeout 0 (killed at once)",
            violates="kubelet_grace_period"),
        CONTAINERS_BEFORE_SANDBOX: Mutant(
            "containers are created without waiting for the pod's sandbox",
            violates="kubelet_sandbox_first"),
        RESTART_STOPS_HEARTBEAT: Mutant(
            "the Lease heartbeat loop is not started again after a kubelet restart",
            violates="kubelet_lease_renewed"),
        SUCCEEDED_EARLY: Mutant(
            "the phase is Succeeded as soon as one app container exited 0",
            violates="kubelet_phase_rules"),
        RUNS_REJECTED_POD: Mutant(
            "admission is not checked: a pod that does not fit the node is run",
            violates="kubelet_rejected_pod_not_run"),
        SIDECAR_NOT_RESTARTED: Mutant(
            "a sidecar that exits after the init phase is not restarted (treated as a "
            "regular init container)", violates="kubelet_sidecar_kept_running"),
        SANDBOX_STOPPED_FIRST: Mutant(
            "a deleted or finished pod's sandbox is stopped at once, its running containers "
            "killed with it (no StopContainer with the grace period, no preStop hook)",
            violates="kubelet_sandbox_stopped_last"),
    }
    #: declared by the ``kubelet-never`` model's machine (its sidecar has no startup
    #: probe, so started and ready differ there; checker/catalog/kubelet.py)
    mutant_names = frozenset({SIDECAR_WAITS_FOR_READY})

    def __init__(self, *, sidecar: bool = True, init: bool = True, apps: int = 2,
                 restart_policy: str = sp.ON_FAILURE, grace: int = 3, fits: bool = True,
                 exits: int = 3, probe_failures: int = 1, long_runs: int = 1,
                 deletes: int = 1, kubelet_restarts: int = 1, runtime_restarts: int = 1,
                 lease_ticks: int = 0, lost_answers: int = 0, sidecar_probe: str = "startup",
                 mutant: str | None = None):
        super().__init__(mutant)
        self.pod = sp.pod(sidecar=sidecar, init=init, apps=apps,
                          restart_policy=restart_policy, grace=grace, fits=fits,
                          sidecar_probe=sidecar_probe)
        self.sidecar_probe = sidecar_probe
        self.limits = (exits, probe_failures, long_runs, deletes, kubelet_restarts,
                       runtime_restarts, lease_ticks, lost_answers)
        self.n = len(self.pod.containers)
        # the declared handlers, bound once: the fused successors' dispatch
        self._handlers = {n: getattr(self, a.attr) for n, a in self.actions.items()}

    def config(self):
        p = self.pod
        return {"sidecar": any(c.kind == sp.SIDECAR for c in p.containers),
                "init": any(c.kind == sp.INIT for c in p.containers),
                "apps": len(p.index(sp.APP)), "restart_policy": p.restart_policy,
                "grace": p.grace, "fits": p.fits, "sidecar_probe": self.sidecar_probe,
                **dict(zip(BUDGETS, self.limits))}

    # -- helpers -------------------------------------------------------------------
    def init_states(self):
        n = self.n
        conts = ((-1, 0, False, 0, False, False),) * n
        world = ((0,) * len(BUDGETS), False, (0,) * n, (0,) * n, (0,) * n, 0)
        yield ((PENDING, False, False), rt.INITIAL, (None, -1, conts), world)

    def within_bounds(self, state) -> bool:
        """Every restart follows the end of a run: an exit, a liveness kill, a
        container the runtime lost, a lost answer, or a sidecar stopped once the
        apps are done. A container past that many attempts is a restart loop of
        the model's own making: it is not expanded, so explore reports the
        search incomplete instead of running on."""
        exits, probes, _, _, _, runtime_restarts, _, lost = self.limits
        return all(c[3] <= exits + probes + runtime_restarts + lost + 1
                   for c in state[RUNTIME][1])

    def _left(self, state, budget) -> bool:
        i = BUDGETS.index(budget)
        return state[WORLD][SPENT][i] < self.limits[i]

    @staticmethod
    def _spend(world, budget):
        i = BUDGETS.index(budget)
        spent = world[SPENT]
        return (spent[:i] + (spent[i] + 1,) + spent[i + 1:],) + world[1:]

    def latest(self, runtime, i):
        """The newest container of spec container ``i`` in the runtime."""
        name = self.pod.containers[i].name
        mine = [c for c in runtime[1] if c[2] == name]
        return max(mine, key=lambda c: c[3]) if mine else None

    @staticmethod
    def seen_view(runtime, kubelet, i):
        """The runtime's status of the container the kubelet knows for ``i``."""
        cid = kubelet[2][i][CID]
        return rt.container(runtime, cid) if cid >= 0 else None

    @staticmethod
    def views(runtime, kubelet) -> list:
        """``seen_view`` of every container at once (ContainerStatus of each)."""
        index = {c[0]: c for c in runtime[1]}
        return [index.get(c[CID]) for c in kubelet[2]]

    def _initial_probe(self, i) -> int:
        c = self.pod.containers[i]
        if c.startup:
            return 0
        return 1 if c.readiness else 2

    # -- what the pod worker wants to do ---------------------------------------------
    def plan(self, state) -> list:
        pod, runtime, k, world = state
        if k is None:
            return [Step("Relist")]
        out = []
        restarted = world[SPENT][BUDGETS.index("kubelet_restarts")] > 0
        if world[STALE] and not (self.mutant == RESTART_STOPS_HEARTBEAT and restarted):
            out.append(Step("RenewLease"))
        admitted, sid, conts = k
        if self.mutant != RESTART_NO_ADOPT and self._unknown(runtime, k):
            return out + [Step("Adopt")]     # the pod cache first (see ``_do_Adopt``)
        sandbox = rt.sandbox(runtime, sid) if sid >= 0 else None
        if pod is None:
            if sandbox is not None and self.mutant != LEAKS_SANDBOX:
                out.append(Step("GarbageCollect", (sid,)))
            return out
        views = self.views(runtime, k)
        status = self.status(state, views)
        if status != pod[:2] and not (pod[0] in TERMINAL and status[0] != pod[0]):
            out.append(Step("WriteStatus"))
        if admitted is None:
            if pod[0] not in TERMINAL and not pod[2]:
                out.append(Step("Admit"))
            elif pod[2] and sandbox is None:
                out.append(Step("Finalize"))
            return out
        resyncs_terminal = (self.mutant == ONFAILURE_RESTARTS_SUCCESS and pod[0] in TERMINAL
                            and not pod[2])
        if (pod[2] or pod[0] in TERMINAL or not admitted) and not resyncs_terminal:
            out += self._terminate(pod, sid, sandbox, conts, views, world[ELAPSED])
            return out
        if sandbox is None or sandbox[3] != rt.READY:
            if sid < 0:
                out.append(Step("RunSandbox"))
            if self.mutant != CONTAINERS_BEFORE_SANDBOX:
                return out
        out += self._sync(conts, views, sid)
        return out

    def _restart_allowed(self, i, c, syncing=False) -> bool:
        """restartPolicy (pod-lifecycle docs) for an exited container ``c``;
        ``syncing``: asked by the restart decision itself (where two mutants
        go wrong), not by the phase or the decision that the apps are done."""
        kind = self.pod.containers[i].kind
        policy = self.pod.restart_policy
        failed = c[5] != 0
        if kind == sp.SIDECAR:
            return True
        if kind == sp.INIT:
            return failed and policy != sp.NEVER
        if policy == sp.ALWAYS:
            return True
        if policy == sp.ON_FAILURE:
            return failed or (syncing and self.mutant == ONFAILURE_RESTARTS_SUCCESS)
        return failed and syncing and self.mutant == NEVER_POLICY_RESTARTS

    def _act(self, i, c, conts, sid) -> list:
        """The next step for container ``i`` whose known container is ``c``.
        A step's parameters are the CRI request it sends (sandbox and attempt,
        container id, stop timeout): the wire, as properties judge it."""
        if c is None:
            return [Step("Create", (i, sid, 0))]
        if c[4] == rt.CREATED:
            return [Step("Start", (i, c[0]))]
        if c[4] == rt.UNKNOWN or (c[4] == rt.RUNNING and conts[i][KILL]):
            return [Step("Kill", (i, c[0], self.pod.grace))]
        if c[4] == rt.EXITED and self._restart_allowed(i, c, syncing=True):
            if conts[i][WAITED]:
                return [Step("Create", (i, sid, c[3] + 1))]
            return [Step("Backoff", (i,))]
        return []

    def _sync(self, conts, views, sid) -> list:
        out = []
        apps = self.pod.index(sp.APP)
        finished = all(views[i] is not None and views[i][4] == rt.EXITED
                       and not self._restart_allowed(i, views[i]) for i in apps)
        init_failed = any(self.pod.containers[i].kind == sp.INIT and views[i] is not None
                          and views[i][4] == rt.EXITED and views[i][5] != 0
                          and not self._restart_allowed(i, views[i]) for i in range(self.n))
        inits_done = self._init_phase_over(views, conts)
        if not inits_done and not init_failed:
            i = self._first_pending(views, conts)
            out += self._act(i, views[i], conts, sid)
        for i in self.pod.index(sp.SIDECAR):
            c = views[i]
            if finished or init_failed:
                # every app is done: sidecars are stopped (sidecar docs)
                if c is not None and c[4] in (rt.RUNNING, rt.UNKNOWN):
                    out.append(Step("Stop", (i, c[0], self.pod.grace)))
            elif inits_done and not (self.mutant == SIDECAR_NOT_RESTARTED
                                     and c is not None and c[4] == rt.EXITED):
                out += self._act(i, c, conts, sid)       # kept running
        if inits_done or self.mutant == APPS_DURING_INIT:
            for i in apps:
                out += self._act(i, views[i], conts, sid)
        return [s for j, s in enumerate(out) if s not in out[:j]]

    def _terminate(self, pod, sid, sandbox, conts, views, elapsed) -> list:
        out = []
        timeout = self.pod.grace
        if pod[2]:      # deleted: what is left of the grace period after preStop hooks
            left = self.pod.grace - elapsed
            timeout = left if left > 0 else sp.MIN_GRACE
            if self.mutant == KILL_WITHOUT_GRACE:
                timeout = 0
        live = [i for i in range(self.n)
                if views[i] is not None and views[i][4] in (rt.RUNNING, rt.UNKNOWN)]
        mains = [i for i in live if self.pod.containers[i].kind != sp.SIDECAR]
        for i in (mains or live):
            spec = self.pod.containers[i]
            if pod[2] and spec.pre_stop and not conts[i][PRESTOPPED] \
                    and views[i][4] == rt.RUNNING:
                out.append(Step("PreStop", (i,)))
            else:
                out.append(Step("Stop", (i, views[i][0], timeout)))
        if self.mutant == SANDBOX_STOPPED_FIRST:
            out, live = [], []          # no container stopped first: the sandbox stop kills
        if not live:
            if sandbox is not None and sandbox[3] == rt.READY:
                out.append(Step("StopSandbox", (sid,)))
            elif pod[2]:
                out.append(Step("Finalize"))
        return out

    # -- status: what the kubelet writes back ---------------------------------------------
    def status(self, state, views=None) -> tuple:
        """(phase, ready) by the pod-lifecycle rules, from the kubelet's view."""
        pod, runtime, k, world = state
        admitted, sid, conts = k
        if admitted is False:
            return (FAILED, False)
        if views is None:
            views = self.views(runtime, k)
        containers = self.pod.containers
        policy = self.pod.restart_policy
        for i, spec in enumerate(containers):
            c = views[i]
            if spec.kind == sp.INIT and c is not None and c[4] == rt.EXITED and c[5] != 0 \
                    and policy == sp.NEVER:
                return (FAILED, False) if self._none_running(views) else (pod[0], False)
        inits_done = self._init_phase_over(views, conts)
        apps = [views[i] for i in self.pod.index(sp.APP)]
        if not inits_done or any(c is None for c in apps):
            phase = PENDING
        elif self.mutant == SUCCEEDED_EARLY and any(c[4] == rt.EXITED and c[5] == 0
                                                   for c in apps):
            phase = SUCCEEDED
        elif any(c[4] in LIVE for c in apps) or policy == sp.ALWAYS:
            phase = RUNNING_PHASE
        elif policy == sp.ON_FAILURE:
            phase = SUCCEEDED if all(c[5] == 0 for c in apps) else RUNNING_PHASE
        else:
            phase = FAILED if any(c[5] != 0 for c in apps) else SUCCEEDED
        if phase in TERMINAL and not self._none_running(views) \
                and self.mutant != SUCCEEDED_EARLY:
            phase = RUNNING_PHASE            # sidecars are still being stopped
        if pod[0] in TERMINAL:
            phase = pod[0]
        ready = phase == RUNNING_PHASE and not pod[2] and all(
            views[i] is not None and views[i][4] == rt.RUNNING
            and (conts[i][SEEN] == 2
                 or (self.mutant == READY_IGNORES_PROBE and conts[i][SEEN] >= 1))
            for i, s in enumerate(containers) if s.kind != sp.INIT)
        return (phase, ready)

    def _first_pending(self, views, conts):
        """The first container of the init list not yet done: a regular init
        container that has not exited 0, a sidecar not running with its
        startup probe passed; None when there is none."""
        for i, spec in enumerate(self.pod.containers):
            c = views[i]
            if spec.kind == sp.APP:
                return None
            if spec.kind == sp.INIT and c is not None and c[4] == rt.EXITED and c[5] == 0:
                continue
            if spec.kind == sp.SIDECAR and c is not None and c[4] == rt.RUNNING \
                    and (conts[i][SEEN] >= 1 or self.mutant == IGNORES_STARTUP_PROBE):
                if self.mutant == SIDECAR_WAITS_FOR_READY:
                    if conts[i][SEEN] < 2:      # started is not enough: it waits for ready
                        return i
                continue
            return i
        return None

    def _init_phase_over(self, views, conts) -> bool:
        """The init phase is over once any app container exists (as the kubelet
        decides it: a sidecar restarting later does not reopen it), or when
        every container of the init list is done."""
        if any(views[i] is not None for i in self.pod.index(sp.APP)):
            return True
        return self._first_pending(views, conts) is None

    @staticmethod
    def _none_running(views) -> bool:
        return not any(c is not None and c[4] in (rt.RUNNING, rt.UNKNOWN) for c in views)

    # -- the machine ------------------------------------------------------------------------
    def successors(self, state):
        # the plan is computed once per state here (``apply`` recomputes it as
        # the guard of a step it is handed from elsewhere: replay, shrinking);
        # the world's steps go through ``apply`` itself, which costs nothing
        # more for them, so the exhaustive search runs the dispatch that
        # replay and random runs use (a broken one would otherwise show only
        # there, where no cover is judged)
        handlers = self._handlers
        for step in self.plan(state):
            nxt = handlers[step.name](state, *step.params)
            if nxt is not None:
                yield step, self._observe(state, nxt)
        for step in self._world_steps(state):
            nxt = self.apply(state, step)
            if nxt is not None:
                yield step, nxt

    def steps(self, state):
        yield from self.plan(state)
        yield from self._world_steps(state)

    def _world_steps(self, state):
        pod, runtime, k, world = state
        for i, spec in enumerate(self.pod.containers):
            c = self.latest(runtime, i)
            if c is None or c[4] != rt.RUNNING:
                continue
            if self._left(state, "exits"):
                yield Step("Exit", (i, 0))
                yield Step("Exit", (i, 1))
            if spec.startup and self._reports_started(world, k, i, c):
                yield Step("Probe", (i, "started"))
            if spec.readiness and self._reports_ready(world, k, i, c):
                yield Step("Probe", (i, "ready"))
            if self._left(state, "probe_failures"):
                if spec.readiness and world[PROBES][i] == 2:
                    yield Step("Probe", (i, "unready"))
                if spec.liveness:
                    yield Step("Probe", (i, "liveness"))
            if self._left(state, "long_runs") and world[STREAK][i] > 0:
                yield Step("RanLong", (i,))
        if pod is not None and not pod[2] and self._left(state, "deletes"):
            yield Step("Delete")
        if not world[STALE] and self._left(state, "lease_ticks"):
            yield Step("LeaseTick")
        if self._left(state, "kubelet_restarts"):
            yield Step("KubeletRestart")
        if self._left(state, "lost_answers") and k is not None:
            for step in self.plan(state):
                if step.name == "Create":
                    yield Step("CreateAnswerLost", step.params)
        if self._left(state, "runtime_restarts"):
            yield Step("RuntimeRestart", (-1,))
            for c in runtime[1]:
                if c[4] == rt.RUNNING:
                    yield Step("RuntimeRestart", (c[0],))

    def apply(self, state, step):
        """The kernel's dispatch to the declared handler, after the pod
        worker's guard — its plan — for a ``system`` step, and followed by
        ``_observe``."""
        declared = self.actions.get(step.name)
        if declared is not None and declared.tag == SYSTEM and step not in self.plan(state):
            return None
        nxt = super().apply(state, step)
        return None if nxt is None else self._observe(state, nxt)

    def _observe(self, before, after):
        """The world's ghost: count each run of a container that ends."""
        if before[RUNTIME] is after[RUNTIME] or before[RUNTIME][1] == after[RUNTIME][1]:
            return after
        old = {c[0]: c for c in before[RUNTIME][1]}
        streak = list(after[WORLD][STREAK])
        names = [c.name for c in self.pod.containers]
        changed = False
        for c in after[RUNTIME][1]:
            o = old.get(c[0])
            if o is not None and o[4] in (rt.CREATED, rt.RUNNING) \
                    and c[4] in (rt.EXITED, rt.UNKNOWN):
                i = names.index(c[2])
                streak[i] += 1
                changed = True
        if not changed:
            return after
        world = after[WORLD][:STREAK] + (tuple(streak),) + after[WORLD][STREAK + 1:]
        return after[:WORLD] + (world,)

    # -- kubelet steps ----------------------------------------------------------------------
    @staticmethod
    def _call(state, method, request):
        runtime, answer = rt.call(state[RUNTIME], method, request)
        return runtime, answer, state[WORLD]

    @staticmethod
    def _set(state, *, pod=None, runtime=None, kubelet=None, world=None, drop_pod=False):
        return (None if drop_pod else (state[POD] if pod is None else pod),
                state[RUNTIME] if runtime is None else runtime,
                state[KUBELET] if kubelet is None else kubelet,
                state[WORLD] if world is None else world)

    @staticmethod
    def _cont(kubelet, i, **fields):
        c = list(kubelet[2][i])
        for key, value in fields.items():
            c[_FIELDS[key]] = value
        conts = kubelet[2][:i] + (tuple(c),) + kubelet[2][i + 1:]
        return kubelet[:2] + (conts,)

    @action("Admit", tag=SYSTEM)
    def _do_Admit(self, state):
        admitted = self.pod.fits or self.mutant == RUNS_REJECTED_POD
        return self._set(state, kubelet=(admitted,) + state[KUBELET][1:])

    @action("RunSandbox", tag=SYSTEM)
    def _do_RunSandbox(self, state):
        req = {"config": {"metadata": {"uid": UID, "attempt": 0}}}
        runtime, answer, world = self._call(state, "RunPodSandbox", req)
        k = state[KUBELET]
        if rt.ok(answer):
            k = (k[0], int(answer["pod_sandbox_id"])) + k[2:]
        return self._set(state, runtime=runtime, kubelet=k, world=world)

    @action("Create", tag=SYSTEM)
    def _do_Create(self, state, i, sid, attempt):
        k = state[KUBELET]
        old = self.seen_view(state[RUNTIME], k, i)
        req = {"pod_sandbox_id": str(sid), "config": {"metadata": {
            "name": self.pod.containers[i].name, "attempt": attempt}}}
        runtime, answer = rt.call(state[RUNTIME], "CreateContainer", req)
        if not rt.ok(answer):
            return state
        if old is not None:
            # the container GC keeps one dead container per name; it runs after the
            # create, so the new container never takes the id of the one it replaces
            runtime, _ = rt.call(runtime, "RemoveContainer", {"container_id": str(old[0])})
        level = k[2][i][LEVEL]
        if old is not None:
            level = min(level + 1, MAX_LEVEL)
        k = self._cont(k, i, cid=int(answer["container_id"]), level=level, waited=False,
                       seen=0, kill=False, prestopped=False)
        world = state[WORLD]
        slept = world[SLEPT][:i] + (0,) + world[SLEPT][i + 1:]
        world = world[:SLEPT] + (slept,) + world[SLEPT + 1:]
        return self._set(state, runtime=runtime, kubelet=k, world=world)

    @action("Start", tag=SYSTEM)
    def _do_Start(self, state, i, cid):
        k = state[KUBELET]
        runtime, answer, world = self._call(state, "StartContainer", {"container_id": str(cid)})
        if rt.ok(answer):
            first = self._initial_probe(i)
            k = self._cont(k, i, seen=first)
            probes = world[PROBES][:i] + (first,) + world[PROBES][i + 1:]
            world = world[:PROBES] + (probes,) + world[PROBES + 1:]
        return self._set(state, runtime=runtime, kubelet=k, world=world)

    @action("Backoff", tag=SYSTEM)
    def _do_Backoff(self, state, i):
        k = state[KUBELET]
        world = state[WORLD]
        level = k[2][i][LEVEL]
        delay = sp.backoff_delay(level)
        if self.mutant == BACKOFF_UNCAPPED:
            delay = sp.BACKOFF_INITIAL * 2 ** level
        slept = world[SLEPT][:i] + (delay,) + world[SLEPT][i + 1:]
        world = world[:SLEPT] + (slept,) + world[SLEPT + 1:]
        return self._set(state, kubelet=self._cont(k, i, waited=True), world=world)

    @action("Stop", tag=SYSTEM)
    @action("Kill", tag=SYSTEM)
    def _do_Stop(self, state, i, cid, timeout):
        runtime, _, world = self._call(state, "StopContainer",
                                       {"container_id": str(cid), "timeout": timeout})
        return self._set(state, runtime=runtime,
                         kubelet=self._cont(state[KUBELET], i, kill=False), world=world)

    @action("PreStop", tag=SYSTEM)
    def _do_PreStop(self, state, i):
        world = state[WORLD]
        world = world[:ELAPSED] + (world[ELAPSED] + 1,) + world[ELAPSED + 1:]
        return self._set(state, kubelet=self._cont(state[KUBELET], i, prestopped=True),
                         world=world)

    @action("StopSandbox", tag=SYSTEM)
    def _do_StopSandbox(self, state, sid):
        runtime, _, world = self._call(state, "StopPodSandbox", {"pod_sandbox_id": str(sid)})
        return self._set(state, runtime=runtime, world=world)

    @action("Finalize", tag=SYSTEM)
    def _do_Finalize(self, state):
        return self._set(state, drop_pod=True)

    @action("GarbageCollect", tag=SYSTEM)
    def _do_GarbageCollect(self, state, sid):
        k = state[KUBELET]
        runtime, _, world = self._call(state, "RemovePodSandbox", {"pod_sandbox_id": str(sid)})
        conts = tuple((-1,) + c[1:] for c in k[2])
        return self._set(state, runtime=runtime, kubelet=(k[0], -1, conts), world=world)

    @action("WriteStatus", tag=SYSTEM)
    def _do_WriteStatus(self, state):
        phase, ready = self.status(state)
        return self._set(state, pod=(phase, ready, state[POD][2]))

    @action("RenewLease", tag=SYSTEM)
    def _do_RenewLease(self, state):
        return self._set(state, world=state[WORLD][:STALE] + (False,) + state[WORLD][STALE + 1:])

    @action("Relist", tag=SYSTEM)
    def _do_Relist(self, state):
        runtime = state[RUNTIME]
        _, listed = rt.call(runtime, "ListPodSandbox", {})
        mine = [s for s in listed["items"] if s["metadata"]["uid"] == UID]
        sid = max((int(s["id"]) for s in mine), default=-1)
        _, listed = rt.call(runtime, "ListContainers", {})
        newest = {}
        for c in listed["containers"]:
            key = c["metadata"]["name"]
            if key not in newest or c["metadata"]["attempt"] > newest[key][1]:
                newest[key] = (int(c["id"]), c["metadata"]["attempt"], c["state"])
        conts = []
        for i, spec in enumerate(self.pod.containers):
            found = newest.get(spec.name)
            if found is None or self.mutant == RESTART_NO_ADOPT:
                conts.append((-1, 0, False, 0, False, False))
                continue
            # probe results are not kept across restarts: a startup probe must
            # succeed again, readiness starts as failure (the kubelet itself treats
            # a container started before it as started: docs/kubelet.md, "noticed")
            seen = 0 if spec.startup else 1 if spec.readiness else 2
            conts.append((found[0], 0, False, seen, False, False))
        admitted = True if sid >= 0 else None
        return self._set(state, kubelet=(admitted, sid, tuple(conts)))

    def _unknown(self, runtime, k) -> dict:
        """Spec index -> the newest container of that name the kubelet does
        not know, when it is newer than the one it knows."""
        out = {}
        for i in range(self.n):
            c = self.latest(runtime, i)
            if c is None or c[0] == k[2][i][CID]:
                continue
            known = rt.container(runtime, k[2][i][CID]) if k[2][i][CID] >= 0 else None
            if known is None or c[3] > known[3]:
                out[i] = c
        return out

    @action("Adopt", tag=SYSTEM)
    def _do_Adopt(self, state):
        """The pod worker syncs only on a pod status newer than its last sync
        (the kubelet's pod cache, ``GetNewerThan``): a container the runtime
        holds that the kubelet did not hear of — a CreateContainer whose
        answer was lost — is adopted before anything else is decided."""
        k = state[KUBELET]
        for i, c in self._unknown(state[RUNTIME], k).items():
            spec = self.pod.containers[i]
            seen = 0 if spec.startup else 1 if spec.readiness else 2
            k = self._cont(k, i, cid=c[0], waited=False, seen=seen if c[4] == rt.RUNNING else 0,
                           kill=False, prestopped=False)
        return self._set(state, kubelet=k)

    # -- the world's steps ---------------------------------------------------------------------
    def _running_latest(self, state, i):
        if not 0 <= i < self.n:
            return None
        c = self.latest(state[RUNTIME], i)
        return c if c is not None and c[4] == rt.RUNNING else None

    @action("Exit", tag=ENVIRONMENT)
    def _world_Exit(self, state, i, code):
        c = self._running_latest(state, i)
        if c is None or code not in (0, 1) or not self._left(state, "exits"):
            return None
        runtime = rt.fault(state[RUNTIME], "ContainerDied",
                           {"container_id": c[0], "exit_code": code})
        return self._set(state, runtime=runtime, world=self._spend(state[WORLD], "exits"))

    @action("Probe", tag=ENVIRONMENT)
    def _world_Probe(self, state, i, outcome):
        c = self._running_latest(state, i)
        if c is None:
            return None
        spec, world, k = self.pod.containers[i], state[WORLD], state[KUBELET]
        now = world[PROBES][i]
        if outcome == "started" and spec.startup and self._reports_started(world, k, i, c):
            new = now or (1 if spec.readiness else 2)
        elif outcome == "ready" and spec.readiness and self._reports_ready(world, k, i, c):
            new = 2
        elif outcome == "unready" and spec.readiness and now == 2 \
                and self._left(state, "probe_failures"):
            new, world = 1, self._spend(world, "probe_failures")
        elif outcome == "liveness" and spec.liveness and self._left(state, "probe_failures"):
            world = self._spend(world, "probe_failures")
            if k is not None and k[2][i][CID] == c[0]:
                k = self._cont(k, i, kill=True)
            return self._set(state, kubelet=k, world=world)
        else:
            return None
        world = world[:PROBES] + (world[PROBES][:i] + (new,) + world[PROBES][i + 1:],) \
            + world[PROBES + 1:]
        if k is not None and k[2][i][CID] == c[0]:
            k = self._cont(k, i, seen=new)
        return self._set(state, kubelet=k, world=world)

    @staticmethod
    def _reports_started(world, k, i, c) -> bool:
        """A startup probe succeeds once per run, and again for a restarted kubelet."""
        if world[PROBES][i] == 0:
            return True
        return k is not None and k[2][i][CID] == c[0] and k[2][i][SEEN] == 0

    @staticmethod
    def _reports_ready(world, k, i, c) -> bool:
        """A readiness probe succeeds for a started container that is not ready,
        or reports again to a restarted kubelet that has not heard it yet."""
        if world[PROBES][i] == 1:
            return True
        return world[PROBES][i] == 2 and k is not None and k[2][i][CID] == c[0] \
            and k[2][i][SEEN] != 2

    @action("RanLong", tag=ENVIRONMENT)
    def _world_RanLong(self, state, i):
        c = self._running_latest(state, i)
        world = state[WORLD]
        if c is None or not self._left(state, "long_runs") or world[STREAK][i] == 0:
            return None
        world = self._spend(world, "long_runs")
        world = world[:STREAK] + (world[STREAK][:i] + (0,) + world[STREAK][i + 1:],) \
            + world[STREAK + 1:]
        k = state[KUBELET]
        if k is not None and self.mutant != BACKOFF_NEVER_RESETS:
            k = self._cont(k, i, level=0)
        return self._set(state, kubelet=k, world=world)

    @action("Delete", tag=ENVIRONMENT, rare=True)
    def _world_Delete(self, state):
        pod = state[POD]
        if pod is None or pod[2] or not self._left(state, "deletes"):
            return None
        return self._set(state, pod=pod[:2] + (True,),
                         world=self._spend(state[WORLD], "deletes"))

    @action("LeaseTick", tag=ENVIRONMENT, rare=True)
    def _world_LeaseTick(self, state):
        world = state[WORLD]
        if world[STALE] or not self._left(state, "lease_ticks"):
            return None
        world = self._spend(world, "lease_ticks")
        return self._set(state, world=world[:STALE] + (True,) + world[STALE + 1:])

    @action("CreateAnswerLost", tag=FAULT, rare=True)
    def _world_CreateAnswerLost(self, state, i, sid, attempt):
        """The kubelet's CreateContainer timed out after the runtime applied it
        (``runtime.timed_out``): the runtime holds the container, the kubelet
        never learnt its id."""
        if not self._left(state, "lost_answers") or state[KUBELET] is None \
                or Step("Create", (i, sid, attempt)) not in self.plan(state):
            return None
        nxt = self._do_Create(state, i, sid, attempt)
        if nxt is state:
            return None
        return (nxt[POD], nxt[RUNTIME], state[KUBELET], self._spend(nxt[WORLD], "lost_answers"))

    @action("KubeletRestart", tag=FAULT, rare=True)
    def _world_KubeletRestart(self, state):
        if not self._left(state, "kubelet_restarts"):
            return None
        world = self._spend(state[WORLD], "kubelet_restarts")
        return (state[POD], state[RUNTIME], None, world)

    @action("RuntimeRestart", tag=FAULT, rare=True)
    def _world_RuntimeRestart(self, state, lost):
        if not self._left(state, "runtime_restarts"):
            return None
        if lost >= 0:
            c = rt.container(state[RUNTIME], lost)
            if c is None or c[4] != rt.RUNNING:
                return None
        runtime = rt.fault(state[RUNTIME], "RuntimeRestart",
                           {"lost": () if lost < 0 else (lost,)})
        return self._set(state, runtime=runtime,
                         world=self._spend(state[WORLD], "runtime_restarts"))

    # -- display -----------------------------------------------------------------------------
    def view(self, state):
        pod, runtime, k, world = state
        names = [c.name for c in self.pod.containers]
        return {
            "pod": {"phase": pod[0], "ready": pod[1], "deleting": pod[2]} if pod else "removed",
            "sandboxes": {str(s[0]): f"{s[3]}{'' if s[4] else ' (netns released)'}"
                          for s in runtime[0]},
            "containers": {str(c[0]): f"{c[2]}#{c[3]} {c[4]}"
                           + (f" exit {c[5]}" if c[4] == rt.EXITED else "")
                           for c in runtime[1]},
            "kubelet": "restarting" if k is None else {
                "admitted": str(k[0]), "sandbox": k[1],
                **{names[i]: {"id": c[CID], "backoff_level": c[LEVEL], "waited": c[WAITED],
                              "probe": c[SEEN], "kill": c[KILL], "prestop_done": c[PRESTOPPED]}
                   for i, c in enumerate(k[2])}},
            "lease_stale": world[STALE],
            "probes": dict(zip(names, world[PROBES])),
            "streak": dict(zip(names, world[STREAK])),
            "slept": dict(zip(names, world[SLEPT])),
            "grace_elapsed": world[ELAPSED],
            "spent": dict(zip(BUDGETS, world[SPENT])),
        }


_FIELDS = {"cid": CID, "level": LEVEL, "waited": WAITED, "seen": SEEN, "kill": KILL,
           "prestopped": PRESTOPPED}

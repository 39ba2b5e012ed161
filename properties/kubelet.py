"""What the kubelet promises, read off the ``kubelet`` machine's states
(``model.kubelet.machine``): the pod object, the runtime's sandboxes and
containers, the world's ghosts (probe outcomes, exits since the last long
run, back-off slept, grace used) and the CRI request a step sends (its
parameters).

Each property is restated from the Kubernetes documentation (pod lifecycle,
init containers, sidecar containers, node heartbeats), the CRI API and the
seeds; none calls the kubelet's decisions (``plan``, ``status``) it judges.
"""

from __future__ import annotations

from kubemc.properties.core import COVER, INVARIANT, LEADS_TO, TRANSITION, Property

_DOCS = "kubernetes.io/docs/concepts/workloads/pods/"
_SANDBOX = ("seeds/000: 'a special pause container is initialized by the container runtime "
            "for the sole purpose to create a network namespace for the pod. all additional "
            "containers ... will share the pause container's network namespace'; CRI api.proto "
            "CreateContainer 'creates a new container in specified PodSandbox'")
_INIT = (_DOCS + "init-containers: 'Init containers always run to completion. Each init "
         "container must complete successfully before the next one starts'; 'Init "
         "containers must ... complete before app containers can be started' (seeds/000); "
         + _DOCS + "sidecar-containers: 'After a sidecar-style init container is running (the "
         "kubelet has set the started status for that init container to true), the kubelet "
         "then starts the next init container'")
_POLICY = (_DOCS + "pod-lifecycle#restart-policy: 'Always: Automatically restarts the "
           "container after any termination. OnFailure: Only restarts the container if it "
           "exits with an error (non-zero exit status). Never: Does not automatically restart "
           "the terminated container'; init-containers: 'If a Pod's init container fails, the "
           "kubelet repeatedly restarts that init container until it succeeds. However, if the "
           "Pod has a restartPolicy of Never, and an init container fails ... Kubernetes treats "
           "the overall Pod as failed'; sidecar-containers: restartable init containers are "
           "restarted whenever they exit")
_PHASE = (_DOCS + "pod-lifecycle#pod-phase: 'Pending ... one or more of the containers has not "
          "been set up and made ready to run'; 'Running: ... All containers have been "
          "created'; 'Succeeded: All containers in the Pod have terminated in success, and "
          "will not be restarted'; 'Failed: All containers in the Pod have terminated, and at "
          "least one container has terminated in failure'")
_READY = (_DOCS + "pod-lifecycle#pod-conditions: 'ContainersReady: all containers in the Pod "
          "are ready'; 'Ready: the Pod is able to serve requests'; readinessProbe: 'If the "
          "readiness probe fails, the EndpointSlice controller removes the Pod's IP address' "
          "(a container with a failing readiness probe is not ready); a sidecar's readiness "
          "counts toward the Pod's (sidecar-containers)")
_DELETE = (_DOCS + "pod-lifecycle#pod-termination: 'the kubelet ... attempts graceful "
           "shutdown ... Once the grace period has expired, the KILL signal is sent to any "
           "remaining processes, and the Pod is then deleted from the API Server'; CRI "
           "api.proto RemovePodSandbox 'removes the sandbox. If there are any running "
           "containers in the sandbox, they must be forcibly terminated and removed'")
_GRACE = (_DOCS + "pod-lifecycle#pod-termination: 'If one of the Pod's containers has defined "
          "a preStop hook ... the kubelet runs that hook inside of the container'; 'The "
          "kubelet triggers the container runtime to send a TERM signal'; 'Once the grace "
          "period has expired, the KILL signal is sent'; if the preStop hook outlives the "
          "grace period 'the kubelet requests a small, one-off grace period extension of 2 "
          "seconds'; CRI StopContainer 'The runtime must forcibly kill the container after "
          "the grace period is reached'")
_BACKOFF = (_DOCS + "pod-lifecycle#restart-policy: 'the kubelet restarts them with an "
            "exponential backoff delay (10s, 20s, 40s, …), that is capped at 300 seconds (5 "
            "minutes). Once a container has executed for 10 minutes without any problems, the "
            "kubelet resets the restart backoff timer for that container'")
_DUP = ("issue 12: 'a kubelet restart that rebuilds its view from ListPodSandbox / "
        "ListContainers' — a pod runs one instance of each container it names "
        "(kubernetes.io/docs/concepts/workloads/pods: container names are unique in a Pod; "
        "CRI ContainerMetadata.attempt numbers the restarts of that one container)")
_LEASE = ("kubernetes.io/docs/concepts/architecture/nodes#node-heartbeats: 'Lease objects ... "
          "The kubelet creates and then updates its Lease object every 10 seconds'; seeds: a "
          "node that stops reaching the control plane is marked not ready through its "
          "NodeLease")
_STARTED = (_DOCS + "sidecar-containers: 'After a sidecar-style init container is running "
            "(the kubelet has set the started status for that init container to true), the "
            "kubelet then starts the next init container'; pod-lifecycle#container-probes: "
            "startupProbe '... If a container does not provide a startup probe, the default "
            "state is Success' — a sidecar without one counts as started as soon as it runs, and "
            "its readiness probe is not waited for")
_FIRST_LIFE = (_DOCS + "pod-lifecycle#container-probes: readinessProbe '... If a container "
               "does not provide a readiness probe, the default state is Success' — a "
               "container without probes is ready once it runs, without a kubelet restart")
_LAST = (_DOCS + "pod-lifecycle#pod-termination: 'the kubelet triggers the container runtime "
         "to send a TERM signal to process 1 inside each container'; 'When the grace period "
         "expires ... The container runtime sends SIGKILL to any processes still running in any "
         "container in the Pod. The kubelet also cleans up a hidden pause container if that "
         "container runtime uses one' — the sandbox (pause container) goes last, after every "
         "container of the pod was stopped; CRI api.proto StopPodSandbox 'If there are any "
         "running containers in the sandbox, they must be forcibly terminated' is the runtime's "
         "safety net, not the kubelet's way to stop them")
_INIT_NEVER = (_DOCS + "init-containers: 'if the Pod has a restartPolicy of Never, and an init "
               "container fails during startup of that Pod, Kubernetes treats the overall Pod as "
               "failed'")
_LIVENESS_PROBE = (_DOCS + "pod-lifecycle#container-probes: livenessProbe 'Indicates whether "
                    "the container is running. If the liveness probe fails, the kubelet kills "
                    "the container, and the container is subjected to its restart policy'")
_MUTATION = ("; added when mutation testing (docs/mutation/kubelet.md) found no property or "
             "cover that saw this")
_ADMIT = ("kubernetes.io/docs/concepts/scheduling-eviction/node-pressure-eviction and "
          "'kubelet admission': the kubelet re-checks that the pod fits the node (resources, "
          "node affinity) before running it and rejects it otherwise (the pod is Failed, "
          "reason OutOfcpu / NodeAffinity); a rejected pod never gets a sandbox")

SANDBOX_READY = "SANDBOX_READY"
CREATED, RUNNING, EXITED, UNKNOWN = (
    "CONTAINER_CREATED", "CONTAINER_RUNNING", "CONTAINER_EXITED", "CONTAINER_UNKNOWN")
LIVE = (CREATED, RUNNING, UNKNOWN)
TERMINAL = ("Succeeded", "Failed")
POD, RUNTIME, KUBELET, WORLD = range(4)
SPENT, STALE, PROBES, STREAK, SLEPT, ELAPSED = range(6)


# -- reading a state ------------------------------------------------------------------------
def _names(m) -> list:
    return [c.name for c in m.pod.containers]


def _kinds(m) -> list:
    return [c.kind for c in m.pod.containers]


def _of(runtime, name) -> list:
    return [c for c in runtime[1] if c[2] == name]


def _newest(runtime, name):
    mine = _of(runtime, name)
    return max(mine, key=lambda c: c[3]) if mine else None


def _sandbox(runtime, sid):
    return next((s for s in runtime[0] if s[0] == sid), None)


def _container(runtime, cid):
    return next((c for c in runtime[1] if c[0] == cid), None)


def _started(before, after) -> list:
    """Containers that became RUNNING on this step."""
    old = {c[0]: c[4] for c in before[RUNTIME][1]}
    return [c for c in after[RUNTIME][1] if c[4] == RUNNING and old.get(c[0]) != RUNNING]


def _created(before, after) -> list:
    old = {c[0]: c for c in before[RUNTIME][1]}
    return [c for c in after[RUNTIME][1] if old.get(c[0]) is None or old[c[0]][2:4] != c[2:4]]


# -- the properties ---------------------------------------------------------------------------
def sandbox_first(m, before, step, after) -> bool:
    """CreateContainer names a ready sandbox; StartContainer a container in one."""
    runtime = before[RUNTIME]
    if step.name == "Create":
        s = _sandbox(runtime, step.params[1])
        return s is not None and s[3] == SANDBOX_READY
    if step.name == "Start":
        c = _container(runtime, step.params[1])
        s = c and _sandbox(runtime, c[1])
        return s is not None and s[3] == SANDBOX_READY
    return True


def init_order(m, before, step, after) -> bool:
    """The first create or start (attempt 0) of a container of the init list
    needs every regular init container before it exited 0 and every sidecar
    before it running with its startup probe passed; that of an app container
    needs every regular init container exited 0 and, unless an app container
    already exists (the init phase is over: the kubelet then keeps sidecars
    running but does not wait for them), every sidecar running and started."""
    names, kinds = _names(m), _kinds(m)
    runtime, probes = before[RUNTIME], before[WORLD][PROBES]
    app_exists = any(kinds[names.index(c[2])] == "app" for c in runtime[1])
    for c in _created(before, after) + _started(before, after):
        if c[3] != 0:
            continue                  # a restart: the restart policy governs it
        j = names.index(c[2])
        for i in range(j if kinds[j] != "app" else len(names)):
            mine = _of(runtime, names[i])
            if kinds[i] == "init" and not any(x[4] == EXITED and x[5] == 0 for x in mine):
                return False
            if kinds[i] == "sidecar" and not (kinds[j] == "app" and app_exists) \
                    and not any(x[4] == RUNNING and probes[i] >= 1 for x in mine):
                return False
    return True


def _may_restart(m, kind, exit_code) -> bool:
    policy = m.pod.restart_policy
    if kind == "sidecar":
        return True
    if kind == "init":
        return exit_code != 0 and policy != "Never"
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def restart_policy(m, before, step, after) -> bool:
    names, kinds = _names(m), _kinds(m)
    for c in _created(before, after):
        if c[3] == 0:
            continue
        prev = [o for o in _of(before[RUNTIME], c[2]) if o[3] == c[3] - 1]
        if not prev or prev[0][4] != EXITED:
            return False             # a restart replaces an exited container
        if not _may_restart(m, kinds[names.index(c[2])], prev[0][5]):
            return False
    return True


def terminal_pod_runs_nothing(m, before, step, after) -> bool:
    pod = before[POD]
    if pod is None or pod[0] not in TERMINAL:
        return True
    if _started(before, after) or _created(before, after):
        return False
    return after[POD] is None or after[POD][0] == pod[0]


def ready_only_when_containers_ready(m, before, step, after) -> bool:
    if step.name != "WriteStatus" or after[POD] is None or not after[POD][1]:
        return True
    runtime, probes = after[RUNTIME], after[WORLD][PROBES]
    for i, (name, kind) in enumerate(zip(_names(m), _kinds(m))):
        if kind == "init":
            continue
        c = _newest(runtime, name)
        if c is None or c[4] != RUNNING or probes[i] != 2:
            return False
    return True


def cleaned(m, state) -> bool:
    return state[POD] is None and not state[RUNTIME][0] and not state[RUNTIME][1]


def deleted(m, state) -> bool:
    return state[POD] is None or state[POD][2]


def no_duplicate_containers(m, state) -> bool:
    live = [c[2] for c in state[RUNTIME][1] if c[4] in LIVE]
    return len(live) == len(set(live))


def sandbox_stopped_last(m, before, step, after) -> bool:
    """StopPodSandbox (``StopSandbox``) and RemovePodSandbox (``GarbageCollect``)
    name a sandbox in which no container runs or may run (UNKNOWN)."""
    if step.name not in ("StopSandbox", "GarbageCollect"):
        return True
    sid = step.params[0]
    return not any(c[1] == sid and c[4] in (RUNNING, UNKNOWN) for c in before[RUNTIME][1])


def grace_period(m, before, step, after) -> bool:
    if step.name != "Stop" or before[POD] is None or not before[POD][2]:
        return True
    timeout = step.params[2]
    return timeout >= m.pod.grace - before[WORLD][ELAPSED]


def expected_backoff(exits: int) -> int:
    """The documented delay before the restart after the ``exits``-th
    consecutive exit: 10 s, doubling, capped at 300 s."""
    return min(10 * 2 ** (max(exits, 1) - 1), 300)


def backoff(m, before, step, after) -> bool:
    names = _names(m)
    world = before[WORLD]
    for c in _created(before, after):
        if c[3] == 0:
            continue
        i = names.index(c[2])
        if world[SLEPT][i] > expected_backoff(world[STREAK][i]):
            return False
    return True


def lease_stale(m, state) -> bool:
    return state[WORLD][STALE]


def phase_rules(m, before, step, after) -> bool:
    if step.name != "WriteStatus" or after[POD] is None:
        return True
    phase, runtime = after[POD][0], after[RUNTIME]
    names, kinds = _names(m), _kinds(m)
    newest = [_newest(runtime, n) for n in names]
    anything_running = any(c[4] in (RUNNING, UNKNOWN) for c in runtime[1])
    if phase == "Succeeded":
        return not anything_running and all(
            newest[i] is not None and newest[i][4] == EXITED and newest[i][5] == 0
            for i, k in enumerate(kinds) if k == "app")
    if phase == "Failed":
        return not anything_running and (not m.pod.fits or any(
            c is not None and c[4] == EXITED and c[5] != 0 for c in newest))
    if phase == "Running":
        return bool(runtime[0]) and all(newest[i] is not None
                                        for i, k in enumerate(kinds) if k == "app")
    return True


def rejected_pod_not_run(m, state) -> bool:
    return m.pod.fits or not state[RUNTIME][0]


def _sidecar_down(m, state) -> bool:
    pod, runtime = state[POD], state[RUNTIME]
    if pod is None or pod[2] or pod[0] in TERMINAL:
        return False
    names, kinds = _names(m), _kinds(m)
    apps_live = any(_newest(runtime, n) is not None and _newest(runtime, n)[4] in LIVE
                    for n, k in zip(names, kinds) if k == "app")
    if not apps_live:
        return False
    return any(_newest(runtime, n) is not None and _newest(runtime, n)[4] in (EXITED, UNKNOWN)
               for n, k in zip(names, kinds) if k == "sidecar")


def _sidecar_up_or_done(m, state) -> bool:
    return not _sidecar_down(m, state)


def _waits_after_started_sidecar(m, state) -> bool:
    """A sidecar without a startup probe runs (so it is started: the default
    state is Success), the pod is neither deleted nor terminal, and the
    container after it in the init list was never created. (A
    sidecar *with* a startup probe is left out: after a kubelet restart the
    model's kubelet waits for that probe again — docs/kubelet.md, "Noticed".)"""
    pod, runtime = state[POD], state[RUNTIME]
    if pod is None or pod[2] or pod[0] in TERMINAL:
        return False
    names, specs = _names(m), m.pod.containers
    for i, spec in enumerate(specs[:-1]):
        if spec.kind != "sidecar" or spec.startup:
            continue
        c = _newest(runtime, names[i])
        if c is not None and c[4] == RUNNING and not _of(runtime, names[i + 1]):
            return True
    return False


def _next_before_sidecar_ready(m, state) -> bool:
    """The container after a sidecar exists while the sidecar's first run is
    running, started and not (yet) ready."""
    names, kinds, probes = _names(m), _kinds(m), state[WORLD][PROBES]
    runtime = state[RUNTIME]
    return any(kind == "sidecar" and probes[i] == 1 and _of(runtime, names[i + 1])
               and any(c[3] == 0 and c[4] == RUNNING for c in _of(runtime, names[i]))
               for i, kind in enumerate(kinds[:-1]))


# -- covers --------------------------------------------------------------------------------------
def _some_restart(m, state) -> bool:
    return any(c[3] > 0 for c in state[RUNTIME][1])


def _adopted(m, state) -> bool:
    k = state[KUBELET]
    restarted = state[WORLD][SPENT][4] > 0
    return restarted and k is not None and any(
        (c := _container(state[RUNTIME], cont[0])) is not None and c[4] == RUNNING
        for cont in k[2] if cont[0] >= 0)


_P = "kubelet"
SAFETY = (
    Property("kubelet_sandbox_first", _P, TRANSITION,
             "the kubelet creates and starts containers only in a sandbox that is ready",
             _SANDBOX, sandbox_first),
    Property("kubelet_init_order", _P, TRANSITION,
             "a container is first created and started only after every regular init "
             "container before it exited 0 and every sidecar before it is running and "
             "started; the first app container only after all of them", _INIT, init_order),
    Property("kubelet_restart_policy", _P, TRANSITION,
             "a container is restarted (a new attempt created) only after it exited and only "
             "as restartPolicy and its kind allow", _POLICY, restart_policy),
    Property("kubelet_terminal_pod_runs_nothing", _P, TRANSITION,
             "once a pod is written Succeeded or Failed no container of it is created or "
             "started again and its phase never changes", _PHASE + "; " + _POLICY,
             terminal_pod_runs_nothing),
    Property("kubelet_ready_only_when_containers_ready", _P, TRANSITION,
             "when the kubelet writes Ready, every app and sidecar container is running and "
             "its probes say ready", _READY, ready_only_when_containers_ready),
    Property("kubelet_no_duplicate_containers", _P, INVARIANT,
             "the runtime never holds two live containers for one container name of the pod "
             "(a kubelet restart adopts, never duplicates)", _DUP, no_duplicate_containers),
    Property("kubelet_grace_period", _P, TRANSITION,
             "a deleted pod's containers are stopped with a timeout no shorter than what is "
             "left of the grace period after preStop hooks", _GRACE, grace_period),
    Property("kubelet_backoff", _P, TRANSITION,
             "a restart waits no longer than the documented back-off for the container's "
             "consecutive exits since it last ran 10 minutes (10 s doubling, 300 s cap)",
             _BACKOFF, backoff),
    Property("kubelet_phase_rules", _P, TRANSITION,
             "a written phase is true of the runtime: Succeeded only when every app container "
             "exited 0 and nothing runs, Failed only when nothing runs and something failed "
             "or admission rejected the pod, Running only when every app container exists",
             _PHASE, phase_rules),
    Property("kubelet_rejected_pod_not_run", _P, INVARIANT,
             "a pod the node's admission rejects never gets a sandbox", _ADMIT,
             rejected_pod_not_run),
    Property("kubelet_sandbox_stopped_last", _P, TRANSITION,
             "the kubelet stops or removes a pod's sandbox only once no container in it runs "
             "(each was stopped first, with its grace period)", _LAST + _MUTATION,
             sandbox_stopped_last),
)

LIVENESS = (
    Property("kubelet_deleted_pod_cleaned", _P, LEADS_TO,
             "a deleted pod eventually has no container and no sandbox left, and is removed "
             "from the apiserver", _DELETE, cleaned, trigger=deleted),
    Property("kubelet_lease_renewed", _P, LEADS_TO,
             "a stale node Lease is eventually renewed", _LEASE,
             lambda m, s: not lease_stale(m, s), trigger=lease_stale),
    Property("kubelet_sidecar_kept_running", _P, LEADS_TO,
             "while app containers run, an exited sidecar is eventually running again",
             _POLICY, _sidecar_up_or_done, trigger=_sidecar_down),
)

#: checked where the sidecar has no startup probe (``kubelet-never``)
NEXT_AFTER_SIDECAR = Property(
    "kubelet_next_after_started_sidecar", _P, LEADS_TO,
    "once a sidecar without a startup probe runs, the next container of the init list is "
    "eventually created (the kubelet waits for started, not for ready) — unless the pod is "
    "deleted or done", _STARTED + _MUTATION,
    lambda m, s: not _waits_after_started_sidecar(m, s), trigger=_waits_after_started_sidecar)

COVERS = (
    Property("kubelet_cover_ready", _P, COVER, "the pod is written Ready", _READY,
             lambda m, s: s[POD] is not None and s[POD][1]),
    Property("kubelet_cover_restart", _P, COVER, "some container was restarted", _POLICY,
             _some_restart),
    Property("kubelet_cover_adopted", _P, COVER,
             "after a kubelet restart the kubelet knows a running container it adopted",
             _DUP, _adopted),
    Property("kubelet_cover_unknown", _P, COVER,
             "a runtime restart lost a container's state", _DUP,
             lambda m, s: any(c[4] == UNKNOWN for c in s[RUNTIME][1])),
    Property("kubelet_cover_removed", _P, COVER, "a deleted pod was removed", _DELETE,
             lambda m, s: s[POD] is None),
    Property("kubelet_cover_liveness_kill", _P, COVER,
             "a liveness probe failed and the kubelet has the container to kill (the "
             "kubelet's kill mark, field 4 of its per-container memory)",
             _LIVENESS_PROBE + _MUTATION,
             lambda m, s: s[KUBELET] is not None and any(c[4] for c in s[KUBELET][2])),
    Property("kubelet_cover_ready_first_life", _P, COVER,
             "the pod is written Ready before any kubelet restart (app1 has no readiness "
             "probe: it counts as ready because it runs)", _FIRST_LIFE + _MUTATION,
             lambda m, s: s[POD] is not None and s[POD][1] and s[WORLD][SPENT][4] == 0),
)

CRASHLOOP_COVERS = (
    Property("kubelet_cover_succeeded", _P, COVER, "the pod is written Succeeded", _PHASE,
             lambda m, s: s[POD] is not None and s[POD][0] == "Succeeded"),
    Property("kubelet_cover_crashloop", _P, COVER,
             "a restart waited a doubled back-off (20 s)", _BACKOFF,
             lambda m, s: any(x >= 20 for x in s[WORLD][SLEPT])),
    Property("kubelet_cover_backoff_reset", _P, COVER,
             "a container ran 10 minutes after a restart", _BACKOFF,
             lambda m, s: s[WORLD][SPENT][2] > 0),
)

NEVER_COVERS = (
    Property("kubelet_cover_failed", _P, COVER,
             "the pod is written Failed (restartPolicy Never: a container failed)",
             _PHASE + "; " + _POLICY + _MUTATION,
             lambda m, s: s[POD] is not None and s[POD][0] == "Failed"),
    Property("kubelet_cover_failed_in_init", _P, COVER,
             "the pod is written Failed before any app container was created (an init "
             "container failed under restartPolicy Never)", _INIT_NEVER + _MUTATION,
             lambda m, s: s[POD] is not None and s[POD][0] == "Failed" and not any(
                 c[2] == spec.name for c in s[RUNTIME][1] for spec in m.pod.containers
                 if spec.kind == "app")),
    Property("kubelet_cover_next_before_sidecar_ready", _P, COVER,
             "the container after the sidecar is created while the sidecar runs, started but "
             "not ready", _STARTED + _MUTATION, _next_before_sidecar_ready),
)

LEASE_COVERS = (
    Property("kubelet_cover_stale_lease", _P, COVER, "the node Lease went stale", _LEASE,
             lease_stale),
)

PROPERTIES = SAFETY + LIVENESS + COVERS
DELETED_CLEANED, LEASE_RENEWED, SIDECAR_KEPT = LIVENESS

"""What the CRI runtime service promises, read off the ``cri`` machine's
states (``model.cri.machine``): the runtime's sandboxes and containers and
the last call's answer.

Each property is restated from ``k8s.io/cri-api`` ``pkg/apis/runtime/v1/
api.proto`` (its RuntimeService comments and ContainerState enum) and the
seeds, and judged from the state tuples directly — never through
``model.cri.runtime.call``, whose answers they judge.
"""

from __future__ import annotations

from kubemc.properties.core import COVER, INVARIANT, TRANSITION, Property

_API = "k8s.io/cri-api pkg/apis/runtime/v1/api.proto, RuntimeService: "
_STOP = (_API + "StopPodSandbox 'stops any running process that is part of the sandbox and "
         "reclaims network resources (e.g., IP addresses) allocated to the sandbox. If there "
         "are any running containers in the sandbox, they must be forcibly terminated'")
_RUN = (_API + "RunPodSandbox 'Runtimes must ensure the sandbox is in the ready state on "
        "success'; seeds/000: 'a special pause container is initialized by the container "
        "runtime for the sole purpose to create a network namespace for the pod'")
_IDEM = (_API + "StopPodSandbox 'This call is idempotent, and must not return an error if all "
         "relevant resources have already been reclaimed ... multiple StopPodSandbox calls "
         "are expected'; RemovePodSandbox '... must not return an error if the sandbox has "
         "already been removed'; StopContainer '... if the container has already been "
         "stopped'; RemoveContainer '... if the container has already been removed'")
_LIFE = (_API + "enum ContainerState CONTAINER_CREATED, CONTAINER_RUNNING, CONTAINER_EXITED, "
         "CONTAINER_UNKNOWN; ContainerMetadata.attempt 'Attempt number of creating the "
         "container' — a restart is a new container with the next attempt, so a container's "
         "state only moves forward: created, running, exited (unknown when the runtime "
         "lost track, then exited)")
_EXIT = (_API + "ContainerStatus.exit_code 'Exit code of the container. Only required when "
         "finished_at != 0'; Kubernetes pod lifecycle docs: the kubelet decides restarts "
         "under restartPolicy OnFailure from whether the container 'exits with an error' — "
         "an exited container's exit code is a fact that must not change")

_REMOVE_C = (_API + "RemoveContainer 'removes the container. If the container is running, "
             "the container must be forcibly removed. This call is idempotent, and must not "
             "return an error if the container has already been removed'")
_REMOVE_S = (_API + "RemovePodSandbox 'removes the sandbox. If there are any running "
             "containers in the sandbox, they must be forcibly terminated and removed'")
_STOPPED = (_API + "StopPodSandbox 'stops any running process that is part of the sandbox "
            "and reclaims network resources (e.g., IP addresses) allocated to the sandbox'; "
            "RunPodSandbox 'Runtimes must ensure the sandbox is in the ready state on success' "
            "— readiness is the running sandbox with its network (enum PodSandboxState "
            "SANDBOX_READY / SANDBOX_NOTREADY), so a stopped sandbox reads SANDBOX_NOTREADY")
_AUDIT = ("; added after an independent audit found that no other property caught a "
          "runtime breaking this")

SANDBOX_READY, SANDBOX_NOTREADY = "SANDBOX_READY", "SANDBOX_NOTREADY"
CREATED, RUNNING, EXITED, UNKNOWN = (
    "CONTAINER_CREATED", "CONTAINER_RUNNING", "CONTAINER_EXITED", "CONTAINER_UNKNOWN")

#: where each container state may go in one step (api.proto's lifecycle)
FORWARD = {CREATED: {CREATED, RUNNING, UNKNOWN}, RUNNING: {RUNNING, EXITED, UNKNOWN},
           EXITED: {EXITED}, UNKNOWN: {UNKNOWN, EXITED}}


def _sandboxes(state) -> dict:
    return {s[0]: s for s in state[0][0]}


def _containers(state) -> dict:
    return {c[0]: c for c in state[0][1]}


def no_running_outside_ready_sandbox(m, state) -> bool:
    sandboxes = _sandboxes(state)
    return all(c[1] in sandboxes and sandboxes[c[1]][3] == SANDBOX_READY
               for c in state[0][1] if c[4] == RUNNING)


def sandbox_netns_matches_state(m, state) -> bool:
    """READY holds its namespace; NOTREADY has given it back."""
    return all(s[4] == (s[3] == SANDBOX_READY) for s in state[0][0])


def _documented_idempotent(before, method, params) -> bool:
    """The call meets a situation api.proto says must answer OK."""
    if method in ("StopPodSandbox", "RemovePodSandbox"):
        s = _sandboxes(before).get(params[0])
        return s is None or (method == "StopPodSandbox" and s[3] == SANDBOX_NOTREADY)
    if method in ("StopContainer", "RemoveContainer"):
        c = _containers(before).get(params[0])
        if method == "RemoveContainer":
            return c is None
        return c is not None and c[4] == EXITED   # a *stopped* one, not a removed one
    return False


def idempotent_answers(m, before, step, after) -> bool:
    if not _documented_idempotent(before, step.name, tuple(step.params)):
        return True
    return bool(after[1]) and after[1][2] == "OK"


def container_lifecycle(m, before, step, after) -> bool:
    old, new = _containers(before), _containers(after)
    for cid, c in new.items():
        if cid not in old:
            if c[4] != CREATED:
                return False
            continue
        o = old[cid]
        if o[1:4] != c[1:4] or c[4] not in FORWARD[o[4]]:
            return False
    return True


def exit_code_kept(m, before, step, after) -> bool:
    new = _containers(after)
    return all(new[cid][4] != EXITED or new[cid][5] == c[5]
               for cid, c in _containers(before).items()
               if c[4] == EXITED and cid in new)


def _answered_ok(after) -> bool:
    return bool(after[1]) and after[1][2] == "OK"


def _id_param(step):
    """The object id a Stop/Remove step names (the model's ids are non-negative
    integers; a request may carry them as decimal strings)."""
    params = tuple(step.params)
    value = params[0] if params else None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return value


def remove_container_removes(m, before, step, after) -> bool:
    """RemoveContainer answers OK and the container is gone, whatever state it
    was in (running included: 'must be forcibly removed'; absent: idempotent)."""
    if step.name != "RemoveContainer":
        return True
    return _answered_ok(after) and _id_param(step) not in _containers(after)


def remove_sandbox_removes_containers(m, before, step, after) -> bool:
    """RemovePodSandbox of a sandbox answers OK, the sandbox is gone, and so is
    every container that was running in it (terminated *and removed*). A
    container whose state the runtime lost (UNKNOWN) may be running, so it
    counts as running. api.proto says nothing of containers already exited or
    never started there; they are not judged."""
    if step.name != "RemovePodSandbox":
        return True
    sid = _id_param(step)
    if sid not in _sandboxes(before):
        return True                       # the absent case: cri_idempotent_answers
    if not _answered_ok(after) or sid in _sandboxes(after):
        return False
    left = _containers(after)
    return not any(c[1] == sid and c[4] in (RUNNING, UNKNOWN) and cid in left
                   for cid, c in _containers(before).items())


def stop_sandbox_makes_it_not_ready(m, before, step, after) -> bool:
    """StopPodSandbox of a sandbox that exists answers OK and leaves it
    SANDBOX_NOTREADY (its processes stopped, its network reclaimed)."""
    if step.name != "StopPodSandbox":
        return True
    sid = _id_param(step)
    if sid not in _sandboxes(before):
        return True                       # the absent case: cri_idempotent_answers
    now = _sandboxes(after).get(sid)
    return _answered_ok(after) and now is not None and now[3] == SANDBOX_NOTREADY


def _some_container(state, wanted) -> bool:
    return any(c[4] == wanted for c in state[0][1])


PROPERTIES = (
    Property("cri_no_running_outside_ready_sandbox", "cri", INVARIANT,
             "every running container belongs to a sandbox that exists and is ready",
             _STOP + "; " + _RUN, no_running_outside_ready_sandbox),
    Property("cri_stopped_sandbox_releases_netns", "cri", INVARIANT,
             "a ready sandbox holds its network namespace and a stopped one has released it",
             _STOP + "; " + _RUN, sandbox_netns_matches_state),
    Property("cri_idempotent_answers", "cri", TRANSITION,
             "StopPodSandbox of a stopped or removed sandbox, RemovePodSandbox and "
             "RemoveContainer of what is gone, StopContainer of an exited container all "
             "answer OK", _IDEM, idempotent_answers),
    Property("cri_container_lifecycle", "cri", TRANSITION,
             "a container is created CREATED, keeps its sandbox, name and attempt, and its "
             "state only moves forward (never back to CREATED or RUNNING once exited)",
             _LIFE, container_lifecycle),
    Property("cri_exit_code_kept", "cri", TRANSITION,
             "an exited container keeps its exit code for as long as it exists, across "
             "runtime restarts", _EXIT, exit_code_kept),
    Property("cri_remove_container_removes", "cri", TRANSITION,
             "RemoveContainer answers OK and the container is gone afterwards, whether it "
             "was created, running, exited, unknown or already removed",
             _REMOVE_C + _AUDIT, remove_container_removes),
    Property("cri_remove_sandbox_removes_containers", "cri", TRANSITION,
             "RemovePodSandbox of an existing sandbox answers OK, the sandbox is gone, and no "
             "container that was running (or unknown) in it is left behind",
             _REMOVE_S + _AUDIT, remove_sandbox_removes_containers),
    Property("cri_stop_sandbox_makes_it_not_ready", "cri", TRANSITION,
             "StopPodSandbox of an existing sandbox answers OK and leaves it SANDBOX_NOTREADY",
             _STOPPED + _AUDIT, stop_sandbox_makes_it_not_ready),
    Property("cri_cover_running", "cri", COVER, "some container runs", _LIFE,
             lambda m, s: _some_container(s, RUNNING)),
    Property("cri_cover_failed_exit", "cri", COVER,
             "some container exited with a non-zero code", _EXIT,
             lambda m, s: any(c[4] == EXITED and c[5] != 0 for c in s[0][1])),
    Property("cri_cover_stopped_sandbox", "cri", COVER, "some sandbox is stopped", _STOP,
             lambda m, s: any(x[3] == SANDBOX_NOTREADY for x in s[0][0])),
    Property("cri_cover_unknown", "cri", COVER,
             "some container's state was lost in a runtime restart", _LIFE,
             lambda m, s: _some_container(s, UNKNOWN)),
)

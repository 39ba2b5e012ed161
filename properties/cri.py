"""What the CRI runtime service promises, read off the ``cri`` machine's
states (``model.cri.machine``): the runtime's sandboxes and containers and
the last call's answer.

Each property is restated from ``k8s.io/cri-api`` ``pkg/apis/runtime/v1/
api.proto`` (its RuntimeService comments and ContainerState enum) and the
seeds, and judged from the state tuples directly — never through
``model.cri.runtime.call``, whose answers they judge.
"""

from __future__ import annotations

import json
from collections.abc import Callable

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
_READ = (_API + "PodSandboxStatus 'returns the status of the PodSandbox. If the PodSandbox is "
         "not present, returns an error'; ContainerStatus 'returns status of the container. "
         "If the container is not present, returns an error'; ListPodSandbox 'returns a list "
         "of PodSandboxes', ListContainers 'lists all containers by filters'; "
         "PodSandboxFilter / ContainerFilter: 'All those fields are combined with \'AND\'' "
         "(id, state, pod_sandbox_id); PodSandboxStatus (id, metadata, state, network), "
         "ContainerStatus (id, metadata, state, exit_code 'Only required when finished_at != "
         "0'), Container (id, pod_sandbox_id, metadata, state); the four calls change nothing")
_FRAME = (_API + "each call's comment names what it acts on — RunPodSandbox 'creates and "
          "starts a pod-level sandbox' (RunPodSandboxResponse.pod_sandbox_id 'ID of the "
          "PodSandbox to run'), CreateContainer 'creates a new container in specified "
          "PodSandbox' (CreateContainerResponse.container_id 'ID of the created container'), "
          "StartContainer / StopContainer / RemoveContainer the container_id given, "
          "StopPodSandbox / RemovePodSandbox the sandbox and the containers in it; nothing "
          "else is theirs to change. Faults: a container's process exiting changes that "
          "container; a runtime restart keeps every sandbox and container (containerd's "
          "shims keep the processes running while the daemon restarts) except those whose "
          "state it lost, which read CONTAINER_UNKNOWN")
_KILLED = (_API + "StopContainer 'The runtime must forcibly kill the container after the "
           "grace period is reached'; StopPodSandbox / RemovePodSandbox: running containers "
           "'must be forcibly terminated'; a process killed by signal N exits with status "
           "128 + N (POSIX wait status as shells report it, bash manual 'Exit Status': 'When a "
           "command terminates on a fatal signal N, bash uses the value of 128+N'), so a "
           "SIGKILLed container reads exit code 137 — never 0, which would read as success "
           "(ContainerStatus.exit_code; the kubelet's OnFailure decision)")
_MUTATION = ("; added when mutation testing (docs/mutation/cri.md) found that no step of the "
             "cri model sent a read-only call, so no property saw an answer's content")
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


def _sandbox_describes(msg, s, *, status: bool) -> bool:
    """A PodSandbox (list item) or PodSandboxStatus message tells sandbox ``s``:
    its id, metadata and state; a status also its network — held by a ready
    sandbox, given back by a stopped one (the model's netns flag)."""
    meta = msg.get("metadata") or {}
    same = (msg.get("id") == str(s[0]) and meta.get("uid") == s[1]
            and meta.get("attempt") == s[2] and msg.get("state") == s[3])
    return same and (not status or (msg.get("network") or {}).get("namespace") == s[4])


def _container_describes(msg, c, *, status: bool) -> bool:
    """A Container (list item) tells container ``c``: id, its sandbox, metadata
    and state; a ContainerStatus: id, metadata, state and, once exited, the
    exit code."""
    meta = msg.get("metadata") or {}
    same = (msg.get("id") == str(c[0]) and meta.get("name") == c[2]
            and meta.get("attempt") == c[3] and msg.get("state") == c[4])
    if status:
        return same and (c[4] != EXITED or msg.get("exit_code") == c[5])
    return same and msg.get("pod_sandbox_id") == str(c[1])


def _matches(obj, field, value, state_at, sandbox_at=None) -> bool:
    """Whether ``obj`` passes the one-field filter the step sent."""
    if field == "id":
        return obj[0] == value
    if field == "state":
        return obj[state_at] == value
    if field == "pod_sandbox_id":
        return sandbox_at is not None and obj[sandbox_at] == value
    return True                           # no filter: everything


def read_answers_describe_state(m, before, step, after) -> bool:
    """A read-only call changes nothing; a status answers the object it names
    (an error when it is absent); a list answers exactly the objects the
    filter selects, each described as it is."""
    if step.name not in ("PodSandboxStatus", "ContainerStatus", "ListPodSandbox",
                         "ListContainers"):
        return True
    if after[0] != before[0] or not after[1] or after[1][0] != step.name:
        return False
    code, body = after[1][2], after[1][3] if len(after[1]) > 3 else ""
    params = tuple(step.params)
    sandboxes, containers = _sandboxes(before), _containers(before)
    if step.name in ("PodSandboxStatus", "ContainerStatus"):
        objs = sandboxes if step.name == "PodSandboxStatus" else containers
        obj = objs.get(params[0])
        if obj is None:
            return code != "OK"
        if code != "OK" or not body:
            return False
        msg = json.loads(body).get("status") or {}
        if step.name == "PodSandboxStatus":
            return _sandbox_describes(msg, obj, status=True)
        return _container_describes(msg, obj, status=True)
    if code != "OK" or not body:
        return False
    field, value = params
    describes: Callable[..., bool]
    if step.name == "ListPodSandbox":
        items = json.loads(body).get("items")
        wanted = [s for s in sandboxes.values() if _matches(s, field, value, 3)]
        describes = _sandbox_describes
    else:
        items = json.loads(body).get("containers")
        wanted = [c for c in containers.values() if _matches(c, field, value, 4, 1)]
        describes = _container_describes
    if not isinstance(items, list) or len(items) != len(wanted):
        return False
    by_id = {str(o[0]): o for o in wanted}
    return len({i.get("id") for i in items}) == len(items) and all(
        i.get("id") in by_id and describes(i, by_id[i.get("id")], status=False) for i in items)


def _answered_id(after, field):
    """The id an OK answer hands out (``pod_sandbox_id`` / ``container_id``)."""
    body = after[1][3] if len(after[1]) > 3 else ""
    value = json.loads(body).get(field) if body else None
    return int(value) if isinstance(value, str) and value.isdigit() else None


def change_only_what_they_name(m, before, step, after) -> bool:
    """Every object the step does not name is as it was, and nothing appears
    but the one object a create answers (new, as requested); a runtime restart
    that lost a created or running container leaves it CONTAINER_UNKNOWN."""
    name, params = step.name, tuple(step.params)
    old_s, new_s = _sandboxes(before), _sandboxes(after)
    old_c, new_c = _containers(before), _containers(after)
    may_s: set = set()
    may_c: set = set()
    if name == "RunPodSandbox" and _answered_ok(after):
        sid = _answered_id(after, "pod_sandbox_id")
        s = new_s.get(sid)
        if sid in old_s or s is None or s[1:4] != params + (SANDBOX_READY,):
            return False
        may_s = {sid}
    elif name in ("StopPodSandbox", "RemovePodSandbox"):
        sid = _id_param(step)
        may_s = {sid}
        may_c = {cid for cid, c in old_c.items() if c[1] == sid}
    elif name == "CreateContainer" and _answered_ok(after):
        cid = _answered_id(after, "container_id")
        c = new_c.get(cid)
        if cid in old_c or c is None or c[1:4] != params:
            return False
        may_c = {cid}
    elif name in ("StartContainer", "StopContainer", "RemoveContainer", "ContainerDied"):
        may_c = {_id_param(step)}
    elif name == "RuntimeRestart" and params[0] >= 0:
        lost = params[0]
        if lost in old_c and old_c[lost][4] in (CREATED, RUNNING) \
                and (lost not in new_c or new_c[lost][4] != UNKNOWN):
            return False
        may_c = {lost}
    return (all(new_s.get(i) == s for i, s in old_s.items() if i not in may_s)
            and all(i in old_s or i in may_s for i in new_s)
            and all(new_c.get(i) == c for i, c in old_c.items() if i not in may_c)
            and all(i in old_c or i in may_c for i in new_c))


def killed_container_exits_137(m, before, step, after) -> bool:
    """A stop (StopContainer, StopPodSandbox, RemovePodSandbox that leaves it)
    turns a running or unknown container into an exited one with code 137
    (the model's client sends no SIGTERM outcome: the grace period runs out)."""
    if step.name not in ("StopContainer", "StopPodSandbox", "RemovePodSandbox"):
        return True
    new = _containers(after)
    return all(new[cid][5] == 137 for cid, c in _containers(before).items()
               if c[4] in (RUNNING, UNKNOWN) and cid in new and new[cid][4] == EXITED)


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
    Property("cri_read_answers_describe_state", "cri", TRANSITION,
             "PodSandboxStatus, ContainerStatus, ListPodSandbox and ListContainers change "
             "nothing; a status answers the object it names as it is (an error when it is "
             "absent); a list answers exactly the objects its filter selects, each as it is",
             _READ + _MUTATION, read_answers_describe_state),
    Property("cri_calls_change_only_what_they_name", "cri", TRANSITION,
             "a call or fault changes only the objects it names (a sandbox call: the sandbox "
             "and its containers); RunPodSandbox and CreateContainer add exactly the new object "
             "they answer the id of, as requested; a runtime restart leaves the container it "
             "lost CONTAINER_UNKNOWN", _FRAME + _MUTATION, change_only_what_they_name),
    Property("cri_killed_container_exits_137", "cri", TRANSITION,
             "a running (or unknown) container that a stop kills exits with 137 (128 + "
             "SIGKILL), never 0", _KILLED + _MUTATION, killed_container_exits_137),
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

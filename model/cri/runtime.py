"""The CRI v1 runtime service as a pure transition function: the oracle.

The seeds: the kubelet reaches the container runtime through the Container
Runtime Interface (protocol buffers over gRPC; the kubelet the client, a CRI
shim the server); when a pod starts, "a special pause container is
initialized by the container runtime for the sole purpose to create a
network namespace for the pod", shared by all its containers. The calls and
their documented answers are those of ``k8s.io/cri-api``
``pkg/apis/runtime/v1/api.proto`` (service ``RuntimeService``); the quoted
comments below are from that file.

Stable interface (the conformance runner depends on it)
-------------------------------------------------------

``call(state, method, request, *, mutant=None) -> (new_state, answer)``
    ``method`` is a CRI method name (``METHODS``); ``request`` a dict shaped
    like the proto request message (field names as in api.proto, nested
    messages as dicts); ``answer`` is either a dict shaped like the proto
    response message or a :class:`CriError` (a gRPC status code and a
    message). Pure: the state is an immutable tuple, nothing else changes.
    Unknown methods and malformed requests raise ``ValueError``.

``fault(state, name, params) -> new_state | None``
    What happens to a runtime without a call (``FAULTS``): a container's
    process exits by itself (``ContainerDied``: ``container_id``,
    ``exit_code``), the runtime daemon restarts (``RuntimeRestart``:
    ``lost``, the ids of containers whose state it could not recover, which
    become CONTAINER_UNKNOWN; every other container and sandbox survives, as
    containerd's shims keep the processes alive). ``None``: not possible in
    that state.

``timed_out(state, method, request) -> tuple of states``
    A call whose answer the client never received (DEADLINE_EXCEEDED on the
    client side): the runtime may or may not have applied it, so both states
    are possible afterwards.

``INITIAL`` is the empty runtime. Ids are the model's own: the lowest
non-negative integer no object holds, answered as decimal strings
(``"0"``, ``"1"``); a runner maps a real runtime's ids onto them in the order
the objects were created. Requests accept either form; an id that is not
the model's is simply absent.

Answers, call by call (api.proto wording quoted)
-------------------------------------------------

* ``RunPodSandbox`` — "creates and starts a pod-level sandbox. Runtimes must
  ensure the sandbox is in the ready state on success": a new sandbox,
  SANDBOX_READY, holding a network namespace. A second sandbox with the same
  metadata (uid, attempt) while the first exists is refused ALREADY_EXISTS
  (containerd and CRI-O reserve the sandbox name; api.proto is silent, so a
  runner may accept any error code there).
* ``StopPodSandbox`` — "stops any running process that is part of the sandbox
  and reclaims network resources ... If there are any running containers in
  the sandbox, they must be forcibly terminated. **This call is idempotent,
  and must not return an error if all relevant resources have already been
  reclaimed** ... multiple StopPodSandbox calls are expected": running (and
  unknown) containers become EXITED with 137 (SIGKILL), the sandbox
  SANDBOX_NOTREADY without its network namespace; a second stop, and a stop
  of a sandbox that no longer exists (whose resources are all reclaimed),
  answer OK. (containerd's CRI plugin looks the sandbox up first and may
  answer NotFound for an id it never knew or has removed: a divergence a
  runner should report, not hide.)
* ``RemovePodSandbox`` — "If there are any running containers in the
  sandbox, they must be forcibly terminated and removed. **This call is
  idempotent, and must not return an error if the sandbox has already been
  removed**": the sandbox and all its containers are gone; absent: OK.
* ``PodSandboxStatus`` — "If the PodSandbox is not present, returns an
  error": NOT_FOUND.
* ``ListPodSandbox`` — the sandboxes matching ``filter`` (``id``, ``state``).
* ``CreateContainer`` — "creates a new container in specified PodSandbox":
  CONTAINER_CREATED, exit code 0, ``metadata.attempt`` as given (the
  kubelet's restart count). An absent sandbox is NOT_FOUND; a sandbox that is
  not ready FAILED_PRECONDITION (a container there would have no network
  namespace; api.proto is silent, so a runner may accept any error); a
  second live container with the same name and attempt in the sandbox
  ALREADY_EXISTS (the runtimes reserve container names).
* ``StartContainer`` — CREATED -> RUNNING. Absent: NOT_FOUND; a container
  that is not CREATED, or whose sandbox is not ready: FAILED_PRECONDITION. A
  container is started at most once: the kubelet restarts a container by
  creating a new one with the next attempt number.
* ``StopContainer`` — "stops a running container with a grace period (i.e.,
  timeout). **This call is idempotent, and must not return an error if the
  container has already been stopped.** The runtime must forcibly kill the
  container after the grace period is reached": RUNNING or UNKNOWN ->
  EXITED; the exit code is the request's ``exit_code`` if the runner knows
  how its process reacts to SIGTERM (a model-only field), else 137 (killed
  when the timeout ran out). EXITED or CREATED: OK, unchanged. Absent:
  NOT_FOUND (the idempotence api.proto promises is for a *stopped*
  container, not a removed one).
* ``RemoveContainer`` — "If the container is running, the container must be
  forcibly removed. **This call is idempotent, and must not return an error
  if the container has already been removed**": gone; absent: OK.
* ``ContainerStatus`` — "If the container is not present, returns an error":
  NOT_FOUND; else ``status`` with ``id``, ``metadata`` (name, attempt),
  ``state`` and ``exit_code``.
* ``ListContainers`` — the containers matching ``filter`` (``id``,
  ``pod_sandbox_id``, ``state``).

``IDEMPOTENT`` lists the (method, situation) pairs api.proto documents as
idempotent, for a runner to read; the ``cri`` component's
``cri_idempotent_answers`` property restates them from api.proto itself and
judges the answers from the state, never from this code.

State (plain tuples, hashed by the engines)::

    (sandboxes, containers)
    sandboxes  = ((id, uid, attempt, state, netns), ...)   sorted by id
                 state: READY / NOTREADY; netns: the namespace is still held
    containers = ((id, sandbox_id, name, attempt, state, exit_code), ...)
                 state: CREATED / RUNNING / EXITED / UNKNOWN
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

# -- states, named as api.proto's enums ---------------------------------------------
READY, NOTREADY = "SANDBOX_READY", "SANDBOX_NOTREADY"
CREATED, RUNNING, EXITED, UNKNOWN = (
    "CONTAINER_CREATED", "CONTAINER_RUNNING", "CONTAINER_EXITED", "CONTAINER_UNKNOWN")
#: exit code of a process killed with SIGKILL (128 + 9), what a forced stop leaves
KILLED = 137

# -- gRPC status codes the model answers --------------------------------------------
NOT_FOUND = "NOT_FOUND"
ALREADY_EXISTS = "ALREADY_EXISTS"
FAILED_PRECONDITION = "FAILED_PRECONDITION"
DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"

METHODS = ("RunPodSandbox", "StopPodSandbox", "RemovePodSandbox", "PodSandboxStatus",
           "ListPodSandbox", "CreateContainer", "StartContainer", "StopContainer",
           "RemoveContainer", "ContainerStatus", "ListContainers")
#: the calls that never change the state
READ_ONLY = frozenset({"PodSandboxStatus", "ListPodSandbox", "ContainerStatus",
                       "ListContainers"})
FAULTS = ("ContainerDied", "RuntimeRestart")

#: (method, situation) that api.proto documents as idempotent: answered OK.
#: Situations: "stopped" (the sandbox is not ready / the container exited),
#: "absent" (the object does not exist).
IDEMPOTENT = frozenset({
    ("StopPodSandbox", "stopped"),     # "must not return an error if all relevant
    ("StopPodSandbox", "absent"),      #  resources have already been reclaimed"
    ("RemovePodSandbox", "absent"),    # "... if the sandbox has already been removed"
    ("StopContainer", "stopped"),      # "... if the container has already been stopped"
    ("RemoveContainer", "absent"),     # "... if the container has already been removed"
})

INITIAL = ((), ())

# -- mutants: seeded bugs of a runtime, for the cri machine -------------------------
STOP_LEAVES_CONTAINERS = "stop_sandbox_leaves_containers"
START_IN_STOPPED_SANDBOX = "start_in_stopped_sandbox"
STOP_KEEPS_NETNS = "stop_sandbox_keeps_netns"
REMOVE_ABSENT_IS_ERROR = "remove_absent_is_error"
SECOND_STOP_FAILS = "second_stop_fails"
RESTARTS_EXITED = "start_restarts_exited_container"
RESTART_FORGETS_EXIT_CODE = "restart_forgets_exit_code"
REMOVE_REFUSES_RUNNING = "remove_refuses_running"
REMOVE_SANDBOX_KEEPS_CONTAINERS = "remove_sandbox_keeps_containers"
STOP_SANDBOX_STAYS_READY = "stop_sandbox_stays_ready"
LIST_IGNORES_SANDBOX_FILTER = "list_ignores_sandbox_filter"
STATUS_STALE_STATE = "container_status_stale_state"
RUN_REUSES_SANDBOX_ID = "run_sandbox_reuses_id"
STOP_KILL_EXITS_ZERO = "stop_kill_exits_zero"


@attrs.frozen(slots=True)
class CriError:
    """A refused call: the gRPC status code and a message for people."""

    code: str
    message: str = ""


# -- reading the state ----------------------------------------------------------------
def _id(value) -> int | None:
    """A model id from a request (int or decimal string); None when the
    value cannot be one of the model's ids (it is then absent)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def sandbox(state, sid) -> tuple | None:
    sid = _id(sid)
    return next((s for s in state[0] if s[0] == sid), None)


def container(state, cid) -> tuple | None:
    cid = _id(cid)
    return next((c for c in state[1] if c[0] == cid), None)


def containers_of(state, sid: int) -> tuple:
    return tuple(c for c in state[1] if c[1] == sid)


def _free(objs) -> int:
    used = {o[0] for o in objs}
    return next(i for i in range(len(used) + 1) if i not in used)


def _replace(objs, new) -> tuple:
    return tuple(sorted([o for o in objs if o[0] != new[0]] + [new]))


def _without(objs, oid) -> tuple:
    return tuple(o for o in objs if o[0] != oid)


def _kill(c, exit_code=KILLED):
    """A live (running or unknown) container forcibly stopped."""
    if c[4] in (RUNNING, UNKNOWN):
        return c[:4] + (EXITED, exit_code)
    return c


# -- how objects are answered -----------------------------------------------------------
def sandbox_message(s) -> dict:
    return {"id": str(s[0]), "metadata": {"uid": s[1], "attempt": s[2]}, "state": s[3],
            "network": {"namespace": s[4]}}


def container_message(c) -> dict:
    return {"id": str(c[0]), "pod_sandbox_id": str(c[1]),
            "metadata": {"name": c[2], "attempt": c[3]}, "state": c[4], "exit_code": c[5]}


def _metadata(request: Mapping, *keys) -> tuple:
    meta = request.get("config", {}).get("metadata", {})
    try:
        return tuple(meta[k] for k in keys)
    except (KeyError, TypeError):
        raise ValueError(f"request needs config.metadata.{'/'.join(keys)}") from None


def _filtered(items, flt: Mapping | None, fields) -> list:
    flt = flt or {}
    out = []
    for item in items:
        if "id" in flt and flt["id"] not in (None, "") and _id(flt["id"]) != item[0]:
            continue
        want = (flt.get("state") or {}).get("state")
        if want is not None and item[fields["state"]] != want:
            continue
        if "pod_sandbox_id" in flt and flt["pod_sandbox_id"] not in (None, "") \
                and "sandbox" in fields and _id(flt["pod_sandbox_id"]) != item[fields["sandbox"]]:
            continue
        out.append(item)
    return out


# -- the calls ----------------------------------------------------------------------------
def call(state, method: str, request: Mapping, *, mutant: str | None = None):
    """Answer one CRI call: ``(new_state, response dict or CriError)``.

    See the module text for each call's rule and its api.proto source.
    ``mutant`` selects a seeded bug (the ``cri`` machine's; None is the
    runtime api.proto describes)."""
    try:
        handler = _CALLS[method]
    except KeyError:
        raise ValueError(f"unknown CRI method {method!r} (known: {', '.join(METHODS)})") \
            from None
    return handler(state, request or {}, mutant)


def _run_pod_sandbox(state, request, mutant):
    uid, attempt = _metadata(request, "uid", "attempt")
    if any(s[1] == uid and s[2] == attempt for s in state[0]):
        return state, CriError(ALREADY_EXISTS, f"sandbox {uid}/{attempt} exists")
    sid = _free(state[0])
    if mutant == RUN_REUSES_SANDBOX_ID:
        sid = 0
    s = (sid, uid, attempt, READY, True)
    return (_replace(state[0], s), state[1]), {"pod_sandbox_id": str(sid)}


def _stop_pod_sandbox(state, request, mutant):
    s = sandbox(state, request.get("pod_sandbox_id"))
    if s is None:
        if mutant == REMOVE_ABSENT_IS_ERROR:
            return state, CriError(NOT_FOUND, "no such sandbox")
        return state, {}
    if s[3] == NOTREADY and mutant == SECOND_STOP_FAILS:
        return state, CriError(FAILED_PRECONDITION, "sandbox already stopped")
    containers = state[1]
    if mutant != STOP_LEAVES_CONTAINERS:
        containers = tuple(_kill(c) if c[1] == s[0] else c for c in containers)
    if mutant == STOP_SANDBOX_STAYS_READY:
        return (state[0], containers), {}
    netns = mutant == STOP_KEEPS_NETNS and s[4]
    return (_replace(state[0], s[:3] + (NOTREADY, netns)), containers), {}


def _remove_pod_sandbox(state, request, mutant):
    s = sandbox(state, request.get("pod_sandbox_id"))
    if s is None:
        if mutant == REMOVE_ABSENT_IS_ERROR:
            return state, CriError(NOT_FOUND, "no such sandbox")
        return state, {}
    if mutant == REMOVE_SANDBOX_KEEPS_CONTAINERS:
        # its containers are killed but left behind, as EXITED orphans
        return (_without(state[0], s[0]),
                tuple(_kill(c) if c[1] == s[0] else c for c in state[1])), {}
    return (_without(state[0], s[0]), tuple(c for c in state[1] if c[1] != s[0])), {}


def _pod_sandbox_status(state, request, mutant):
    s = sandbox(state, request.get("pod_sandbox_id"))
    if s is None:
        return state, CriError(NOT_FOUND, "no such sandbox")
    return state, {"status": sandbox_message(s)}


def _list_pod_sandbox(state, request, mutant):
    items = _filtered(state[0], request.get("filter"), {"state": 3})
    return state, {"items": [sandbox_message(s) for s in items]}


def _create_container(state, request, mutant):
    s = sandbox(state, request.get("pod_sandbox_id"))
    name, attempt = _metadata(request, "name", "attempt")
    if s is None:
        return state, CriError(NOT_FOUND, "no such sandbox")
    if s[3] != READY and mutant != START_IN_STOPPED_SANDBOX:
        return state, CriError(FAILED_PRECONDITION, "sandbox is not ready")
    if any(c[1] == s[0] and c[2] == name and c[3] == attempt for c in state[1]):
        return state, CriError(ALREADY_EXISTS, f"container {name}/{attempt} exists")
    cid = _free(state[1])
    c = (cid, s[0], name, attempt, CREATED, 0)
    return (state[0], _replace(state[1], c)), {"container_id": str(cid)}


def _start_container(state, request, mutant):
    c = container(state, request.get("container_id"))
    if c is None:
        return state, CriError(NOT_FOUND, "no such container")
    restartable = mutant == RESTARTS_EXITED and c[4] == EXITED
    if c[4] != CREATED and not restartable:
        return state, CriError(FAILED_PRECONDITION, f"container is {c[4]}")
    s = sandbox(state, c[1])
    if (s is None or s[3] != READY) and mutant != START_IN_STOPPED_SANDBOX:
        return state, CriError(FAILED_PRECONDITION, "sandbox is not ready")
    return (state[0], _replace(state[1], c[:4] + (RUNNING, 0))), {}


def _stop_container(state, request, mutant):
    c = container(state, request.get("container_id"))
    timeout = request.get("timeout", 0)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 0:
        raise ValueError("StopContainer needs a non-negative integer timeout")
    if c is None:
        return state, CriError(NOT_FOUND, "no such container")
    code = request.get("exit_code", KILLED)
    if mutant == STOP_KILL_EXITS_ZERO:
        code = 0
    return (state[0], _replace(state[1], _kill(c, code))), {}


def _remove_container(state, request, mutant):
    c = container(state, request.get("container_id"))
    if c is None:
        if mutant == REMOVE_ABSENT_IS_ERROR:
            return state, CriError(NOT_FOUND, "no such container")
        return state, {}
    if c[4] == RUNNING and mutant == REMOVE_REFUSES_RUNNING:
        return state, CriError(FAILED_PRECONDITION, "container is running: stop it first")
    return (state[0], _without(state[1], c[0])), {}


def _container_status(state, request, mutant):
    c = container(state, request.get("container_id"))
    if c is None:
        return state, CriError(NOT_FOUND, "no such container")
    if mutant == STATUS_STALE_STATE and c[4] == EXITED:
        c = c[:4] + (RUNNING, 0)
    return state, {"status": container_message(c)}


def _list_containers(state, request, mutant):
    if mutant == LIST_IGNORES_SANDBOX_FILTER:
        request = {"filter": {k: v for k, v in (request.get("filter") or {}).items()
                              if k != "pod_sandbox_id"}}
    items = _filtered(state[1], request.get("filter"), {"state": 4, "sandbox": 1})
    return state, {"containers": [container_message(c) for c in items]}


_CALLS = {
    "RunPodSandbox": _run_pod_sandbox, "StopPodSandbox": _stop_pod_sandbox,
    "RemovePodSandbox": _remove_pod_sandbox, "PodSandboxStatus": _pod_sandbox_status,
    "ListPodSandbox": _list_pod_sandbox, "CreateContainer": _create_container,
    "StartContainer": _start_container, "StopContainer": _stop_container,
    "RemoveContainer": _remove_container, "ContainerStatus": _container_status,
    "ListContainers": _list_containers,
}


# -- faults and timeouts ---------------------------------------------------------------------
def fault(state, name: str, params: Mapping, *, mutant: str | None = None):
    """A runtime event that is not a call (see the module text); None when
    it cannot happen in ``state``."""
    if name == "ContainerDied":
        c = container(state, params.get("container_id"))
        if c is None or c[4] != RUNNING:
            return None
        return (state[0], _replace(state[1], c[:4] + (EXITED, int(params["exit_code"]))))
    if name == "RuntimeRestart":
        lost = {_id(i) for i in params.get("lost", ())}
        containers = []
        for c in state[1]:
            if c[0] in lost and c[4] in (CREATED, RUNNING):
                c = c[:4] + (UNKNOWN, 0)
            elif mutant == RESTART_FORGETS_EXIT_CODE and c[4] == EXITED:
                c = c[:5] + (0,)
            containers.append(c)
        return (state[0], tuple(containers))
    raise ValueError(f"unknown runtime fault {name!r} (known: {', '.join(FAULTS)})")


def timed_out(state, method: str, request: Mapping) -> tuple:
    """The states possible after a call whose answer was lost: not applied,
    or applied (the runtime finished it after the client gave up)."""
    applied, _ = call(state, method, request)
    return (state,) if applied == state else (state, applied)


def ok(answer) -> bool:
    return not isinstance(answer, CriError)


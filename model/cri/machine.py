"""The runtime service under every sequence of calls and faults.

Why a machine around ``model.cri.runtime.call``: the oracle answers one call;
whether its answers compose into a runtime that keeps its promises (no
container runs outside a ready sandbox, a stopped sandbox has given back its
network namespace, a container is started at most once, idempotent calls
answer OK) is a property of every reachable state, which only exhaustive
exploration of call sequences shows. A client (environment) may send any
call with any id — including ids that are stale or were never handed out —
and the runtime suffers faults: a container's process exits by itself, the
runtime daemon restarts (losing the state of one container or none).

The client also sends the read-only calls (PodSandboxStatus, ContainerStatus,
ListPodSandbox and ListContainers, unfiltered and by each filter field):
the kubelet's relist and every status it reports rest on their answers.

State: ``(runtime, last)``; ``last`` is the most recent call and its answer
as ``(method, params, code, body)`` with code ``"OK"`` or the gRPC code and
body the response message as JSON text (``""`` for an error), or ``()``
before any call and after a fault. Keeping it lets transition properties
judge answers; the search forgets it (``canonical``), so it costs no states.

Bounds: ``uids`` pods, container ``names`` per sandbox, ``attempts`` values
of metadata.attempt, at most ``max_sandboxes`` sandboxes and
``max_containers`` containers at once (larger creates are not proposed).
"""

from __future__ import annotations

import json

from kubemc.model.cri import runtime as rt
from kubemc.model.kernel import ENVIRONMENT, FAULT, Machine, Mutant, Step, action

OK = "OK"
NAMES = ("a", "b", "c")
STOP_TIMEOUT = 10

_CALLS = ("RunPodSandbox", "StopPodSandbox", "RemovePodSandbox", "CreateContainer",
          "StartContainer", "StopContainer", "RemoveContainer")
#: the read-only calls a client (the kubelet's relist, crictl) sends; their
#: answers are what ``cri_read_answers_describe_state`` judges
_READS = ("PodSandboxStatus", "ContainerStatus", "ListPodSandbox", "ListContainers")
#: the list filters sent, as step parameters ``(field, value)``: none, or one
#: field of api.proto's PodSandboxFilter / ContainerFilter (values per state)
NO_FILTER = ("", "")


def request(method: str, params: tuple) -> dict:
    """The proto-shaped request a step's parameters stand for."""
    if method == "RunPodSandbox":
        uid, attempt = params
        return {"config": {"metadata": {"uid": uid, "attempt": attempt}}}
    if method in ("StopPodSandbox", "RemovePodSandbox", "PodSandboxStatus"):
        return {"pod_sandbox_id": str(params[0])}
    if method in ("ListPodSandbox", "ListContainers"):
        field, value = params
        if field == "state":
            return {"filter": {"state": {"state": value}}}
        return {"filter": {field: str(value)} if field else {}}
    if method == "CreateContainer":
        sid, name, attempt = params
        return {"pod_sandbox_id": str(sid),
                "config": {"metadata": {"name": name, "attempt": attempt}}}
    if method == "StopContainer":
        return {"container_id": str(params[0]), "timeout": STOP_TIMEOUT}
    return {"container_id": str(params[0])}


class CriRuntime(Machine):
    """The actions are declared on their handlers (``@action``): every call
    goes through ``model.cri.runtime``, whose mutant comparisons are checked
    against these mutants (``mutant_helpers``)."""

    name = "cri"
    mutant_helpers = (rt,)
    mutants = {
        rt.STOP_LEAVES_CONTAINERS: Mutant(
            "StopPodSandbox stops the sandbox but leaves its containers running "
            "(api.proto: 'If there are any running containers in the sandbox, they must be "
            "forcibly terminated')", violates="cri_no_running_outside_ready_sandbox"),
        rt.START_IN_STOPPED_SANDBOX: Mutant(
            "CreateContainer and StartContainer do not check that the sandbox is ready: a "
            "container runs in a sandbox whose network namespace is gone",
            violates="cri_no_running_outside_ready_sandbox"),
        rt.STOP_KEEPS_NETNS: Mutant(
            "StopPodSandbox marks the sandbox not ready but keeps its network namespace "
            "(api.proto: StopPodSandbox 'reclaims network resources (e.g., IP addresses)')",
            violates="cri_stopped_sandbox_releases_netns"),
        rt.REMOVE_ABSENT_IS_ERROR: Mutant(
            "removing (or stopping) what no longer exists answers NOT_FOUND (api.proto: "
            "'This call is idempotent, and must not return an error if ... already been "
            "removed')", violates="cri_idempotent_answers"),
        rt.SECOND_STOP_FAILS: Mutant(
            "a second StopPodSandbox answers an error (api.proto: 'multiple StopPodSandbox "
            "calls are expected')", violates="cri_idempotent_answers"),
        rt.RESTARTS_EXITED: Mutant(
            "StartContainer runs an exited container again instead of refusing (the kubelet "
            "restarts by creating a new container with the next attempt)",
            violates="cri_container_lifecycle"),
        rt.RESTART_FORGETS_EXIT_CODE: Mutant(
            "a runtime restart reloads exited containers with exit code 0, so a failed "
            "container reads as succeeded (the kubelet would not restart it under OnFailure)",
            violates="cri_exit_code_kept"),
        rt.REMOVE_REFUSES_RUNNING: Mutant(
            "RemoveContainer refuses a running container, as `docker rm` without -f does "
            "(api.proto: 'If the container is running, the container must be forcibly "
            "removed')", violates="cri_remove_container_removes"),
        rt.REMOVE_SANDBOX_KEEPS_CONTAINERS: Mutant(
            "RemovePodSandbox removes the sandbox but only kills its containers, leaving them "
            "behind as exited orphans (api.proto: 'If there are any running containers in the "
            "sandbox, they must be forcibly terminated and removed')",
            violates="cri_remove_sandbox_removes_containers"),
        rt.STOP_SANDBOX_STAYS_READY: Mutant(
            "StopPodSandbox kills the sandbox's containers and answers OK but leaves the "
            "sandbox SANDBOX_READY with its network namespace (api.proto: StopPodSandbox "
            "'stops any running process that is part of the sandbox and reclaims network "
            "resources')", violates="cri_stop_sandbox_makes_it_not_ready"),
        rt.RUN_REUSES_SANDBOX_ID: Mutant(
            "RunPodSandbox hands out the id of a sandbox that exists, which the new sandbox "
            "then replaces (api.proto: RunPodSandbox 'creates and starts a pod-level sandbox', "
            "returning its id — the sandbox that was there is gone without a RemovePodSandbox)",
            violates="cri_calls_change_only_what_they_name"),
        rt.STOP_KILL_EXITS_ZERO: Mutant(
            "StopContainer kills a running container at the end of its grace period but "
            "records exit code 0, so a killed container reads as succeeded (the kubelet would "
            "not restart it under OnFailure, and the pod could be written Succeeded)",
            violates="cri_killed_container_exits_137"),
        rt.LIST_IGNORES_SANDBOX_FILTER: Mutant(
            "ListContainers ignores the pod_sandbox_id filter and answers the containers of "
            "every sandbox (a kubelet relisting one pod would adopt another pod's containers)",
            violates="cri_read_answers_describe_state"),
        rt.STATUS_STALE_STATE: Mutant(
            "ContainerStatus answers an exited container as still CONTAINER_RUNNING (the "
            "kubelet would never see it exit and never restart it)",
            violates="cri_read_answers_describe_state"),
    }

    def __init__(self, *, uids: int = 1, names: int = 1, attempts: int = 2,
                 max_sandboxes: int = 2, max_containers: int = 2, mutant: str | None = None):
        super().__init__(mutant)
        if not 1 <= names <= len(NAMES):
            raise ValueError(f"names must be 1..{len(NAMES)}")
        self.uids, self.names, self.attempts = uids, names, attempts
        self.max_sandboxes, self.max_containers = max_sandboxes, max_containers

    def config(self):
        return {"uids": self.uids, "names": self.names, "attempts": self.attempts,
                "max_sandboxes": self.max_sandboxes, "max_containers": self.max_containers}

    def init_states(self):
        yield (rt.INITIAL, ())

    def steps(self, state):
        runtime = state[0]
        sids, cids = range(self.max_sandboxes), range(self.max_containers)
        if len(runtime[0]) < self.max_sandboxes:
            for uid in range(self.uids):
                for attempt in range(self.attempts):
                    yield Step("RunPodSandbox", (uid, attempt))
        for sid in sids:
            yield Step("StopPodSandbox", (sid,))
            yield Step("RemovePodSandbox", (sid,))
        if len(runtime[1]) < self.max_containers:
            for s in runtime[0]:
                for name in NAMES[:self.names]:
                    for attempt in range(self.attempts):
                        yield Step("CreateContainer", (s[0], name, attempt))
        for cid in cids:
            yield Step("StartContainer", (cid,))
            yield Step("StopContainer", (cid,))
            yield Step("RemoveContainer", (cid,))
        for c in runtime[1]:
            if c[4] == rt.RUNNING:
                yield Step("ContainerDied", (c[0], 0))
                yield Step("ContainerDied", (c[0], 1))
        yield Step("RuntimeRestart", (-1,))
        for c in runtime[1]:
            if c[4] in (rt.CREATED, rt.RUNNING):
                yield Step("RuntimeRestart", (c[0],))
        yield from self._reads()

    def _reads(self):
        """Every read-only call, in every state: the status of each id (absent
        ones too) and the lists, unfiltered and by each field of the filter."""
        sids, cids = range(self.max_sandboxes), range(self.max_containers)
        for sid in sids:
            yield Step("PodSandboxStatus", (sid,))
        for cid in cids:
            yield Step("ContainerStatus", (cid,))
        yield Step("ListPodSandbox", NO_FILTER)
        for sid in sids:
            yield Step("ListPodSandbox", ("id", sid))
        for state in (rt.READY, rt.NOTREADY):
            yield Step("ListPodSandbox", ("state", state))
        yield Step("ListContainers", NO_FILTER)
        for cid in cids:
            yield Step("ListContainers", ("id", cid))
        for sid in sids:
            yield Step("ListContainers", ("pod_sandbox_id", sid))
        for state in (rt.CREATED, rt.RUNNING, rt.EXITED, rt.UNKNOWN):
            yield Step("ListContainers", ("state", state))

    # -- the actions: the kubelet's calls (environment) and the runtime's faults
    @action("ContainerDied", tag=FAULT)
    def container_died(self, state, cid, exit_code):
        nxt = rt.fault(state[0], "ContainerDied", {"container_id": cid, "exit_code": exit_code},
                       mutant=self.mutant)
        return None if nxt is None else (nxt, ())

    @action("RuntimeRestart", tag=FAULT, rare=True)
    def runtime_restart(self, state, lost):
        lost = () if lost < 0 else (lost,)
        return (rt.fault(state[0], "RuntimeRestart", {"lost": lost}, mutant=self.mutant), ())

    def _call(self, state, method, params):
        """One call through the runtime, its answer kept in ``last``."""
        nxt, answer = rt.call(state[0], method, request(method, params), mutant=self.mutant)
        code = OK if rt.ok(answer) else answer.code
        # the answer itself, as JSON text: the ids a create hands out, what a read tells
        body = json.dumps(answer, sort_keys=True) if code == OK else ""
        return (nxt, (method, params, code, body))

    @action("RunPodSandbox", tag=ENVIRONMENT)
    def run_pod_sandbox(self, state, uid, attempt):
        return self._call(state, "RunPodSandbox", (uid, attempt))

    @action("StopPodSandbox", tag=ENVIRONMENT)
    def stop_pod_sandbox(self, state, sid):
        return self._call(state, "StopPodSandbox", (sid,))

    @action("RemovePodSandbox", tag=ENVIRONMENT)
    def remove_pod_sandbox(self, state, sid):
        return self._call(state, "RemovePodSandbox", (sid,))

    @action("CreateContainer", tag=ENVIRONMENT)
    def create_container(self, state, sid, name, attempt):
        return self._call(state, "CreateContainer", (sid, name, attempt))

    @action("StartContainer", tag=ENVIRONMENT)
    def start_container(self, state, cid):
        return self._call(state, "StartContainer", (cid,))

    @action("StopContainer", tag=ENVIRONMENT)
    def stop_container(self, state, cid):
        return self._call(state, "StopContainer", (cid,))

    @action("RemoveContainer", tag=ENVIRONMENT)
    def remove_container(self, state, cid):
        return self._call(state, "RemoveContainer", (cid,))

    @action("PodSandboxStatus", tag=ENVIRONMENT)
    def pod_sandbox_status(self, state, sid):
        return self._call(state, "PodSandboxStatus", (sid,))

    @action("ContainerStatus", tag=ENVIRONMENT)
    def container_status(self, state, cid):
        return self._call(state, "ContainerStatus", (cid,))

    @action("ListPodSandbox", tag=ENVIRONMENT)
    def list_pod_sandbox(self, state, field, value):
        return self._call(state, "ListPodSandbox", (field, value))

    @action("ListContainers", tag=ENVIRONMENT)
    def list_containers(self, state, field, value):
        return self._call(state, "ListContainers", (field, value))

    def canonical(self, state):
        """The runtime alone: ``last`` is forgotten. Why that is sound: no
        step's guard or effect reads ``last``, and no invariant or cover reads
        it — only transition properties do, and they are handed the step's
        own ``after`` state before it is reduced. Two states with one runtime
        therefore have the same futures with the same labels (a bisimulation),
        so the search keeps one of them; it is what keeps the answers ``last``
        carries (a read-only call's above all) from multiplying the states."""
        return state if not state[1] else (state[0], ())

    def view(self, state):
        runtime, last = state
        return {
            "sandboxes": {str(s[0]): {"uid": s[1], "attempt": s[2], "state": s[3],
                                      "netns": s[4]} for s in runtime[0]},
            "containers": {str(c[0]): {"sandbox": c[1], "name": c[2], "attempt": c[3],
                                       "state": c[4], "exit_code": c[5]} for c in runtime[1]},
            # a read shows its answer; a change shows in the runtime itself
            "last": f"{last[0]}{last[1]} -> {last[2]}"
            + (f" {last[3]}" if last[0] in _READS and last[3:] else "") if last else "",
        }

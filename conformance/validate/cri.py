"""Checks on a recorded CRI history: the replay through the CRI model, and
whether the run did any work.

``cri-model``
    Every answer the runtime gave is one the model
    (:func:`model.cri.runtime.call`) allows, given the calls before it and the
    events the client cannot see: containers exiting by themselves, killed
    from outside, the runtime restarting. The replay keeps the *set* of model
    states the history so far allows (each with its map from the runtime's
    ids to the model's) and, call by call:

    * before a call, lets the containers it concerns die (the model's
      ``ContainerDied`` fault) — but only with an exit code their script can
      give (recorded by the workload: ``kubemc.exits``; 137 once a kill was
      injected), and only as far as the answer needs: a status showing
      EXITED where the model says RUNNING forces the death with the code
      shown; a list showing it EXITED lets it die with the *set* of its
      codes. An exit code nobody has seen yet stays such a set in the model
      state (the model stores the code and never reads it), and the next
      status that shows one settles it — so unobserved codes never
      multiply the states;
    * asks the model, for each state, what it answers; keeps the states whose
      answer agrees with the runtime's: both errors (api.proto fixes no
      error codes for these calls), or both OK with the same content — the
      new id (which binds the runtime's id to the model's), the state, the
      exit code, name and attempt, the listed ids and states;
    * a call whose outcome is unknown (``info``) keeps both possibilities
      (:func:`model.cri.runtime.timed_out`); a runtime restart fault keeps
      the states with no container lost and with each single one lost
      (``RuntimeRestart``); a container a stop ended (StopContainer,
      StopPodSandbox) may show the model's 137, the script's own codes (it
      may have exited by itself just before, or while the runtime had lost
      track of it: UNKNOWN) and, after a grace period, the codes SIGTERM
      leaves the script.

    When no state is left, the call is a violation: the runtime answered
    what no sequence of allowed events explains. Its window (:func:`window`)
    is the history of the objects the answer depends on in the model, from
    their creation, with the faults in between — as calls and as an ITF trace.

    Three *documented divergences* of containerd 1.6 from the model are told
    apart, counted and reported (:data:`DIVERGENCES`); they fail the run
    only under ``strict`` (the runner's ``--strict``):

    * ``stop-removed-sandbox`` — api.proto says StopPodSandbox "must not
      return an error if all relevant resources have already been
      reclaimed"; containerd answers NotFound for a sandbox it has removed.
    * ``start-error-exits`` — a StartContainer refused because the sandbox
      is not ready leaves the container CONTAINER_EXITED with exit code 128
      (reason ``StartError``) in containerd; the model leaves it CREATED
      (api.proto says nothing about what a failed start leaves).
    * ``restart-exit-unknown`` — a container that exits while containerd is
      down (or restarting) may be reported CONTAINER_EXITED with exit code
      255, reason ``Unknown``: the exit code was lost. The model either keeps
      the code or, for a container the restart lost, says CONTAINER_UNKNOWN.

``cri-coverage``
    The run did work: every one of the model's eleven calls answered OK at
    least once; containers exited 0 and non-zero; a StopContainer with a
    grace period succeeded; each fault asked for was injected; at least
    ``min_calls`` calls answered. A run that did nothing does not pass.
"""

from __future__ import annotations

import itertools
import time

import attrs

from kubemc.conformance.history import Operation
from kubemc.conformance.validate.violation import CheckResult, Violation
from kubemc.model.cri import runtime as m

FAULT_PROCESS = -1
MAX_CANDIDATES = 20_000
DIVERGENCE_STOP_REMOVED = "stop-removed-sandbox"
DIVERGENCE_START_ERROR = "start-error-exits"
DIVERGENCE_RESTART_EXIT = "restart-exit-unknown"
#: exit code containerd reports for a container whose exit it could not recover (its unknownExitCode)
UNKNOWN_EXIT_CODE = 255
#: exit code containerd gives a container whose start failed (its errorStartExitCode)
START_ERROR_CODE = 128
DIVERGENCES = {
    DIVERGENCE_STOP_REMOVED: "StopPodSandbox of a removed sandbox answered an error; api.proto: "
                             "'must not return an error if all relevant resources have already "
                             "been reclaimed'",
    DIVERGENCE_START_ERROR: "a StartContainer refused in a sandbox that is not ready left the "
                            "container EXITED 128 (StartError); the model leaves it CREATED",
    DIVERGENCE_RESTART_EXIT: "a container that exited around a runtime restart was reported EXITED "
                             "255 (reason Unknown): its exit code was lost; the model keeps it, or "
                             "calls the container UNKNOWN",
}
API_PROTO = "k8s.io/cri-api pkg/apis/runtime/v1/api.proto, service RuntimeService"

STATEMENTS = {
    "cri-model": ("every answer of the runtime is one the CRI model allows after the calls and "
                  "runtime events before it", f"{API_PROTO}; model/cri/runtime.py"),
    "cri-coverage": ("the run exercised every runtime call with success, container exits 0 and "
                     "non-zero, a graceful stop, and each requested fault",
                     "kubemc: a conformance run that did no work does not pass"),
}


@attrs.frozen(slots=True)
class Candidate:
    """One model state the history allows, with the runtime's ids bound to the model's."""

    state: tuple
    sandboxes: tuple = ()      # ((real id, model id), ...) sorted
    containers: tuple = ()

    def model_id(self, kind: str, real: str | None) -> str:
        table = dict(self.sandboxes if kind == "sandbox" else self.containers)
        mid = table.get(real)
        return str(mid) if mid is not None else f"absent:{real}"

    def real_ids(self, kind: str) -> dict[int, str]:
        return {mid: real for real, mid in (self.sandboxes if kind == "sandbox" else self.containers)}

    def bind(self, kind: str, real: str, mid: int) -> Candidate | None:
        """Bind a new object's runtime id to the model's, or None when the runtime handed out an
        id that still names a live object: api.proto's ids name one sandbox or container each, so
        a second create answering it is the violation, not whatever call shows the mix-up later."""
        bound = dict(self.sandboxes if kind == "sandbox" else self.containers)
        if real in bound:
            return None
        pairs = tuple(sorted({**bound, real: mid}.items()))
        return attrs.evolve(self, **({"sandboxes": pairs} if kind == "sandbox" else {"containers": pairs}))

    def settle(self) -> Candidate:
        """Forget bindings of objects the model no longer holds (the model reuses ids)."""
        live_s = {s[0] for s in self.state[0]}
        live_c = {c[0] for c in self.state[1]}
        return Candidate(self.state, tuple(p for p in self.sandboxes if p[1] in live_s),
                         tuple(p for p in self.containers if p[1] in live_c))


@attrs.frozen(slots=True)
class Replay:
    """What the replay found."""

    violations: tuple
    divergences: tuple          # (divergence name, operation) the replay tolerated
    checked: int                # calls judged
    max_candidates: int
    undecided: str = ""


class _Scripts:
    """What the workload recorded about each container's process (by real id)."""

    def __init__(self, strict: bool = False):
        self.exits: dict[str, set] = {}
        self.term: dict[str, set] = {}
        self.strict = strict
        #: containers that lived through a runtime restart (their exit code may be lost)
        self.restarted: set[str] = set()

    def learn(self, op: Operation):
        if op.f == "CreateContainer" and op.status == "ok" and isinstance(op.output, dict):
            info = (op.input or {}).get("kubemc") or {}
            cid = op.output.get("container_id")
            self.exits[cid] = set(info.get("exits", ()))
            self.term[cid] = set(info.get("term", ())) | {m.KILLED}
        if op.process == FAULT_PROCESS and op.f == "kill" and op.status == "ok":
            self.exits.setdefault(op.key, set()).add(m.KILLED)
        if op.process == FAULT_PROCESS and op.f in ("restart", "restart-racing") and op.status == "ok" \
                and not self.strict:
            for cid, codes in self.exits.items():
                codes.add(UNKNOWN_EXIT_CODE)
                self.restarted.add(cid)

    def death_codes(self, real: str) -> set:
        return self.exits.get(real, set())


# --- translating a recorded call into the model's request -------------------------------


def _model_requests(cand: Candidate, op: Operation, scripts: _Scripts) -> list[dict]:
    req = op.input or {}
    f = op.f
    if f == "RunPodSandbox":
        meta = req["config"]["metadata"]
        return [{"config": {"metadata": {"uid": meta.get("uid", ""), "attempt": meta.get("attempt", 0)}}}]
    if f in ("StopPodSandbox", "RemovePodSandbox", "PodSandboxStatus"):
        return [{"pod_sandbox_id": cand.model_id("sandbox", req.get("pod_sandbox_id"))}]
    if f == "CreateContainer":
        meta = req["config"]["metadata"]
        return [{"pod_sandbox_id": cand.model_id("sandbox", req.get("pod_sandbox_id")),
                 "config": {"metadata": {"name": meta.get("name", ""), "attempt": meta.get("attempt", 0)}}}]
    if f == "StopContainer":
        # the exit code is settled by :func:`_widen_stopped` after the call
        return [{"container_id": cand.model_id("container", req.get("container_id")),
                 "timeout": int(req.get("timeout", 0))}]
    if f in ("StartContainer", "RemoveContainer", "ContainerStatus"):
        return [{"container_id": cand.model_id("container", req.get("container_id"))}]
    if f in ("ListPodSandbox", "ListContainers"):
        # the label selector is the run's own: every object of the model carries it
        flt = (req.get("filter") or {})
        out = {}
        if flt.get("id"):
            out["id"] = cand.model_id("sandbox" if f == "ListPodSandbox" else "container", flt["id"])
        if flt.get("pod_sandbox_id"):
            out["pod_sandbox_id"] = cand.model_id("sandbox", flt["pod_sandbox_id"])
        if flt.get("state"):
            out["state"] = flt["state"]
        return [{"filter": out}]
    raise ValueError(f"the CRI model has no call {f!r}")


# --- deaths the answer may need -------------------------------------------------------------


def _running(cand: Candidate, mids) -> list[tuple[int, str]]:
    real = cand.real_ids("container")
    return [(c[0], real.get(c[0], "")) for c in cand.state[1] if c[0] in mids and c[4] == m.RUNNING]


def _with_deaths(cand: Candidate, op: Operation, scripts: _Scripts) -> list[Candidate]:
    """The candidate, and the candidate after the deaths this call's answer may need."""
    req, out, f = op.input or {}, op.output if isinstance(op.output, dict) else {}, op.f
    state = cand.state
    choices: list[list] = []        # per container: [None (alive), code, code, ...]
    if f == "ContainerStatus" and op.status == "ok":
        st = out.get("status") or {}
        mid = m._id(cand.model_id("container", req.get("container_id")))
        for cm, real in _running(cand, {mid}):
            if st.get("state") == m.EXITED:
                code = int(st.get("exit_code", 0))
                choices.append([(cm, code)] if code in scripts.death_codes(real) else [])
    elif f == "ListContainers" and op.status == "ok":
        shown = {i.get("id"): i.get("state") for i in out.get("containers", [])}
        real = cand.real_ids("container")
        flt = _model_requests(cand, op, scripts)[0]["filter"]
        only_running = (flt.get("state") or {}).get("state") == m.RUNNING
        for c in state[1]:
            if c[4] != m.RUNNING or c[0] not in real:
                continue
            gone = (only_running and real[c[0]] not in shown
                    and flt.get("id") in (None, str(c[0])) and flt.get("pod_sandbox_id") in (None, str(c[1])))
            if shown.get(real[c[0]]) == m.EXITED or gone:
                # it died since the model last heard of it (a RUNNING-only list no longer
                # shows it), with one of its codes: which one, a later status will say
                codes = scripts.death_codes(real[c[0]])
                choices.append([(c[0], frozenset(codes))] if codes else [])
    if not choices:
        return [cand]
    out_cands = []
    for combo in itertools.product(*choices):
        s = state
        for cm, code in combo:
            s = _died(s, cm, code)
        out_cands.append(attrs.evolve(cand, state=s))
    return out_cands


def _died(state, mid: int, code):
    """The model's ContainerDied, with ``code`` an exit code or the frozenset of
    codes it may be (settled when a status shows it)."""
    if isinstance(code, int):
        return m.fault(state, "ContainerDied", {"container_id": str(mid), "exit_code": code})
    s = m.fault(state, "ContainerDied", {"container_id": str(mid), "exit_code": 0})
    return _set_code(s, mid, code)


def _set_code(state, mid: int, code):
    return (state[0], tuple(c[:5] + (code,) if c[0] == mid else c for c in state[1]))


def _widen_stopped(before: tuple, after: tuple, op: Operation, cand: Candidate, scripts: _Scripts):
    """After a stop: every container it stopped (RUNNING or UNKNOWN before, EXITED
    now) may show, besides the model's 137, the codes SIGTERM leaves its script
    (StopContainer with a grace period) and the script's own codes (it may have
    exited by itself just before, or while the runtime had lost track of it)."""
    was = {c[0]: c[4] for c in before[1]}
    real = cand.real_ids("container")
    timeout = int((op.input or {}).get("timeout", 0))
    state = after
    for c in after[1]:
        if c[4] == m.EXITED and was.get(c[0]) in (m.RUNNING, m.UNKNOWN):
            cid = real.get(c[0], "")
            codes = {c[5]} | scripts.death_codes(cid)
            if op.f == "StopContainer" and timeout > 0:
                codes |= scripts.term.get(cid, set())
            if len(codes) > 1:
                state = _set_code(state, c[0], frozenset(codes))
    return state


# --- does the model's answer agree with the runtime's? -------------------------------------


def _agrees(cand: Candidate, op: Operation, answer) -> Candidate | None:
    """The candidate (with new bindings) if ``answer`` is what the runtime said, else None."""
    if op.status == "fail":
        return cand if not m.ok(answer) else None
    if not m.ok(answer):
        return None
    out = op.output if isinstance(op.output, dict) else {}
    f = op.f
    if f == "RunPodSandbox":
        return cand.bind("sandbox", out.get("pod_sandbox_id", ""), int(answer["pod_sandbox_id"]))
    if f == "CreateContainer":
        return cand.bind("container", out.get("container_id", ""), int(answer["container_id"]))
    if f == "PodSandboxStatus":
        a, o = answer["status"], out.get("status") or {}
        same = (a["state"] == o.get("state") and a["metadata"]["uid"] == (o.get("metadata") or {}).get("uid")
                and a["metadata"]["attempt"] == (o.get("metadata") or {}).get("attempt", 0))
        return cand if same else None
    if f == "ContainerStatus":
        a, o = answer["status"], out.get("status") or {}
        meta = o.get("metadata") or {}
        same = (a["state"] == o.get("state") and a["metadata"]["name"] == meta.get("name")
                and a["metadata"]["attempt"] == meta.get("attempt", 0))
        if not same or a["state"] != m.EXITED:
            return cand if same else None
        shown, code = int(o.get("exit_code", 0)), a["exit_code"]
        if isinstance(code, frozenset):          # one of several: now we know which
            return attrs.evolve(cand, state=_set_code(cand.state, int(a["id"]), shown)) \
                if shown in code else None
        return cand if code == shown else None
    if f in ("ListPodSandbox", "ListContainers"):
        kind, field = ("sandbox", "items") if f == "ListPodSandbox" else ("container", "containers")
        real_of = cand.real_ids(kind)
        model_items = {}
        unbound_model = []
        for item in answer[field]:
            real = real_of.get(int(item["id"]))
            if real is None:
                unbound_model.append(item["state"])
            else:
                model_items[real] = item["state"]
        shown = {i.get("id"): i.get("state") for i in out.get(field, [])}
        bound_shown = {k: v for k, v in shown.items() if k in model_items}
        unbound_shown = sorted(v for k, v in shown.items() if k not in model_items)
        return cand if bound_shown == model_items and unbound_shown == sorted(unbound_model) else None
    return cand       # Stop*, Remove*, StartContainer: an empty OK


# --- the replay ---------------------------------------------------------------------------------


def replay(ops: list[Operation], strict: bool = False) -> Replay:
    """Judge a sequential CRI history against the model (see the module text)."""
    scripts = _Scripts(strict)
    cands = {Candidate(m.INITIAL)}
    violations, divergences = [], []
    checked, peak = 0, 1
    trail: dict = {}            # op index -> one model state the history allows after it
    started_error = False
    for pos, op in enumerate(ops):
        scripts.learn(op)
        if op.process == FAULT_PROCESS:
            if op.f in ("restart", "restart-racing") and op.status == "ok":
                nxt = set()
                for c in cands:
                    live = [x[0] for x in c.state[1] if x[4] in (m.CREATED, m.RUNNING)]
                    for lost in [()] + [(str(i),) for i in live]:
                        nxt.add(attrs.evolve(c, state=m.fault(c.state, "RuntimeRestart", {"lost": lost})))
                cands = nxt
                trail[op.index] = min(cands, key=repr)
            continue
        if op.f == "Version" or op.f not in m.METHODS:
            continue
        checked += 1
        nxt = set()
        for cand in cands:
            for c2 in _with_deaths(cand, op, scripts):
                for req in _model_requests(c2, op, scripts):
                    if op.status == "info":
                        nxt.update(attrs.evolve(c2, state=s).settle()
                                   for s in m.timed_out(c2.state, op.f, req))
                        continue
                    new_state, answer = m.call(c2.state, op.f, req)
                    if op.f in ("StopContainer", "StopPodSandbox") and m.ok(answer):
                        new_state = _widen_stopped(c2.state, new_state, op, c2, scripts)
                    agreed = _agrees(attrs.evolve(c2, state=new_state), op, answer)
                    if agreed is not None:
                        nxt.add(agreed.settle())
                        if not strict and (exited := _start_error(agreed, op, req)) is not None:
                            nxt.add(exited)
                            started_error = True
        if started_error:
            divergences.append((DIVERGENCE_START_ERROR, op))
            started_error = False
        if not nxt and _is_stop_removed(cands, op):
            divergences.append((DIVERGENCE_STOP_REMOVED, op))
            if not strict:
                continue
        if not nxt:
            violations.append(_violation(ops, pos, cands, scripts, strict, trail))
            break
        cands = nxt
        trail[op.index] = min(cands, key=repr)
        peak = max(peak, len(cands))
        if _restart_exit(op, scripts):
            divergences.append((DIVERGENCE_RESTART_EXIT, op))
        if len(cands) > MAX_CANDIDATES:
            return Replay(tuple(violations), tuple(divergences), checked, peak,
                          f"UNDECIDED: more than {MAX_CANDIDATES} model states fit the history at "
                          f"operation {op.index}")
    return Replay(tuple(violations), tuple(divergences), checked, peak)


def _restart_exit(op: Operation, scripts: _Scripts) -> bool:
    """A status that shows the exit code lost across a restart (255, which the
    container's own script cannot give)."""
    if op.f != "ContainerStatus" or op.status != "ok":
        return False
    st = (op.output or {}).get("status") or {}
    cid = (op.input or {}).get("container_id")
    return (st.get("state") == m.EXITED and int(st.get("exit_code", 0)) == UNKNOWN_EXIT_CODE
            and cid in scripts.restarted)


def _start_error(cand: Candidate, op: Operation, req: dict) -> Candidate | None:
    """For a StartContainer refused while the container is CREATED in a
    sandbox that is not ready: the candidate with the container EXITED 128,
    as containerd leaves it (the divergence ``start-error-exits``)."""
    if op.f != "StartContainer" or op.status != "fail":
        return None
    c = m.container(cand.state, req.get("container_id"))
    if c is None or c[4] != m.CREATED:
        return None
    s = m.sandbox(cand.state, c[1])
    if s is not None and s[3] == m.READY:
        return None
    containers = tuple(sorted([x for x in cand.state[1] if x[0] != c[0]]
                              + [c[:4] + (m.EXITED, START_ERROR_CODE)]))
    return attrs.evolve(cand, state=(cand.state[0], containers))


def _is_stop_removed(cands, op: Operation) -> bool:
    """StopPodSandbox answered with an error for a sandbox every candidate says is gone."""
    if op.f != "StopPodSandbox" or op.status != "fail":
        return False
    sid = (op.input or {}).get("pod_sandbox_id")
    return all(m.sandbox(c.state, c.model_id("sandbox", sid)) is None for c in cands)


def _expected(cands, op: Operation, scripts: _Scripts) -> list:
    """What the model would have answered (from each candidate; a few, for the report)."""
    seen = []
    for cand in sorted(cands, key=repr)[:20]:
        for c2 in dict.fromkeys([cand, *_with_deaths(cand, op, scripts)]):
            for req in _model_requests(c2, op, scripts):
                _, answer = m.call(c2.state, op.f, req)
                kind = "sandbox" if op.f == "ListPodSandbox" else "container"
                real_of = {str(k): v for k, v in c2.real_ids(kind).items()}
                text = (f"error {answer.code}" if not m.ok(answer)
                        else _shown(op.f, answer, real_of if "List" in op.f else None))
                if text not in seen:
                    seen.append(text)
    return seen[:4]


def _objects(op: Operation, ops: list[Operation], focus: set | None = None) -> set:
    """The real ids of the objects the operation's answer depends on in the
    model: a container and its sandbox; a sandbox; for CreateContainer the
    sandbox and its containers (names are reserved per sandbox); for
    RunPodSandbox the sandboxes with the same pod uid; for a list, the
    ``focus`` (the objects whose listing differs) or else every listed one."""
    req = op.input or {}
    owner = {}
    for o in ops:
        if o.f == "CreateContainer" and o.status == "ok" and isinstance(o.output, dict):
            owner[o.output.get("container_id")] = (o.input or {}).get("pod_sandbox_id")
    ids: set = set()
    if op.f == "CreateContainer":
        ids.add(req.get("pod_sandbox_id"))
        ids |= {c for c, s in owner.items() if s == req.get("pod_sandbox_id")}
    elif op.f == "RunPodSandbox":
        uid = ((req.get("config") or {}).get("metadata") or {}).get("uid")
        ids |= {(o.output or {}).get("pod_sandbox_id") for o in ops
                if o.f == "RunPodSandbox" and o.status == "ok"
                and (((o.input or {}).get("config") or {}).get("metadata") or {}).get("uid") == uid}
    elif "container_id" in req:
        ids |= {req["container_id"], owner.get(req["container_id"])}
    elif "pod_sandbox_id" in req:
        ids.add(req["pod_sandbox_id"])
    elif op.f in ("ListPodSandbox", "ListContainers"):
        listed = {i.get("id") for i in (op.output or {}).get("items", []) +
                  (op.output or {}).get("containers", [])} if isinstance(op.output, dict) else set()
        ids |= focus if focus else listed
        ids |= {owner.get(i) for i in list(ids)}
    ids.discard(None)
    return ids


def window(ops: list[Operation], pos: int, focus: set | None = None) -> list[Operation]:
    """The failing call and every earlier operation on the objects its answer
    depends on (:func:`_objects`), from the first of them, with the faults
    that could touch them (runtime restarts, kills of those containers)."""
    bad = ops[pos]
    ids = _objects(bad, ops[: pos + 1], focus)
    first = next((i for i, o in enumerate(ops[:pos]) if _touches(o, ids)), pos)
    out = []
    for o in ops[first: pos + 1]:
        if o.process == FAULT_PROCESS and (o.f in ("restart", "restart-racing") or o.key in ids):
            out.append(o)
        elif _touches(o, ids) or o is bad:
            out.append(o)
    return out


def _list_focus(cands, op: Operation) -> set:
    """For a list the model cannot explain: the real ids whose listing differs
    from the model's (one candidate's view), or nothing when it cannot tell."""
    if not cands or op.status != "ok" or not isinstance(op.output, dict):
        return set()
    cand = min(cands, key=repr)
    kind, field = ("sandbox", "items") if op.f == "ListPodSandbox" else ("container", "containers")
    real_of = cand.real_ids(kind)
    shown = {i.get("id"): i.get("state") for i in op.output.get(field, [])}
    state_pos = 3 if kind == "sandbox" else 4
    model = {real_of.get(x[0]): x[state_pos] for x in cand.state[0 if kind == "sandbox" else 1]
             if x[0] in real_of}
    flt = (op.input or {}).get("filter") or {}
    want = (flt.get("state") or {}).get("state")
    diff = {i for i in set(shown) | set(model)
            if shown.get(i) != model.get(i) and not (i not in shown and want and model.get(i) != want)}
    return diff


def _touches(o: Operation, ids: set) -> bool:
    req = o.input if isinstance(o.input, dict) else {}
    out = o.output if isinstance(o.output, dict) else {}
    if o.f == "CreateContainer":          # the creation of one of the objects, not of a sibling
        return out.get("container_id") in ids
    return bool({req.get("pod_sandbox_id"), req.get("container_id"), out.get("pod_sandbox_id"),
                 out.get("container_id"), o.key} & ids)


def _shown(f: str, out, real_of=None) -> str:
    """An answer, short: states and exit codes, ids cut to 12 characters
    (``real_of`` maps the model's ids to the runtime's)."""
    if not isinstance(out, dict):
        return str(out)
    def rid(i):
        i = str(i)
        return (real_of or {}).get(i, f"model#{i}" if real_of is not None else i)[:12]
    if "status" in out:
        st = out["status"]
        return f"{st.get('state')}" + (f" exit {_code(st.get('exit_code'))}" if st.get("state") == m.EXITED else "")
    if "items" in out or "containers" in out:
        items = out.get("items", out.get("containers", []))
        return "[" + ", ".join(f"{rid(i.get('id', ''))} {i.get('state')}" for i in items) + "]"
    if "pod_sandbox_id" in out or "container_id" in out:
        return "OK, a new id"
    return "OK"


def render(cand: Candidate) -> dict:
    """A model state for people: objects under the runtime's ids (12 characters;
    ``model#N`` for one whose id the runtime never told)."""
    rs, rc = cand.real_ids("sandbox"), cand.real_ids("container")
    return {"sandboxes": {rs.get(sb[0], f"model#{sb[0]}")[:12]: sb[3] for sb in cand.state[0]},
            "containers": {rc.get(c[0], f"model#{c[0]}")[:12]:
                           c[4] + (f" exit {_code(c[5])}" if c[4] == m.EXITED else "")
                           for c in cand.state[1]}}


def _code(code) -> str:
    return "|".join(str(x) for x in sorted(code)) if isinstance(code, frozenset) else str(code)


def _violation(ops, pos, cands, scripts, strict, trail=None) -> Violation:
    op = ops[pos]
    shown = (f"error {op.output.get('code')} ({op.output.get('message', '')[:100]})"
             if op.status == "fail" else _shown(op.f, op.output))
    target = (op.input or {}).get("container_id") or (op.input or {}).get("pod_sandbox_id") or ""
    expected = _expected(cands, op, scripts)
    what = (f"{op.f}({target[:12]}) answered {shown}; the model allows only "
            f"{' or '.join(expected) or 'nothing'} here")
    if op.f == "StopPodSandbox" and strict and _is_stop_removed(cands, op):
        what += f" (the divergence {DIVERGENCE_STOP_REMOVED}, refused under --strict)"
    win = tuple(window(ops, pos, _list_focus(cands, op) if "List" in op.f else None))
    model_view = {o.index: render(trail[o.index]) for o in win if trail and o.index in trail}
    if cands:
        model_view[op.index] = render(min(cands, key=repr))    # before the call no state explains
    return Violation("cri-model", what, ops=(op,), window=win,
                     detail={"operation": op.index, "model_answers": expected,
                             "model_states": len(cands), "model_view": model_view})


# --- the checks ---------------------------------------------------------------------------------


def check_model(ops: list[Operation], strict: bool = False) -> tuple[CheckResult, Replay]:
    t = time.perf_counter()
    r = replay(ops, strict=strict)
    statement, source = STATEMENTS["cri-model"]
    res = CheckResult("cri-model", statement, source, list(r.violations), checked=r.checked)
    notes = [f"peak {r.max_candidates} model states"]
    for name in DIVERGENCES:
        n = sum(1 for d, _ in r.divergences if d == name)
        if n:
            notes.append(f"{n} calls with the documented divergence {name}")
    if r.undecided:          # not a violation, not a pass: the runner exits 4
        notes.insert(0, r.undecided)
    res.note = "; ".join(notes)
    res.seconds = time.perf_counter() - t
    return res, r


CALLS = m.METHODS


def check_coverage(ops: list[Operation], faults_wanted: tuple[str, ...] = (),
                   min_calls: int = 1) -> CheckResult:
    t = time.perf_counter()
    statement, source = STATEMENTS["cri-coverage"]
    res = CheckResult("cri-coverage", statement, source)
    calls = [o for o in ops if o.process != FAULT_PROCESS]
    ok = [o for o in calls if o.status == "ok"]
    missing = [f for f in CALLS if not any(o.f == f for o in ok)]
    exit_codes = {int((o.output.get("status") or {}).get("exit_code", 0)) for o in ok
                  if o.f == "ContainerStatus" and (o.output.get("status") or {}).get("state") == m.EXITED}
    graceful = any(o.f == "StopContainer" and int((o.input or {}).get("timeout", 0)) > 0 for o in ok)
    injected = {o.f for o in ops if o.process == FAULT_PROCESS and o.status == "ok"}
    problems = []
    if len(ok) < min_calls:
        problems.append(f"only {len(ok)} calls answered OK (at least {min_calls} required)")
    if missing:
        problems.append(f"never answered OK: {', '.join(missing)}")
    if 0 not in exit_codes:
        problems.append("no container was seen exiting with 0")
    if not exit_codes - {0}:
        problems.append("no container was seen exiting non-zero")
    if not graceful:
        problems.append("no StopContainer with a grace period succeeded")
    for f in faults_wanted:
        if f not in injected:
            problems.append(f"the fault {f!r} was never injected")
    for p in problems:
        res.violations.append(Violation("cri-coverage", f"the run did not do enough work: {p}"))
    res.checked = len(calls)
    res.note = (f"{len(ok)} ok of {len(calls)} calls; exit codes seen {sorted(exit_codes)}; "
                f"faults {sorted(injected) or 'none'}")
    res.seconds = time.perf_counter() - t
    return res

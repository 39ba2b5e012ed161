"""The CRI workload: one client driving a runtime through the lifecycles the
model has, and recording every call.

Why one sequential client: the kubelet drives a pod's sandbox and containers
one call at a time, and a sequential history is judged by replaying it
through the model call by call (:mod:`conformance.validate.cri`) — exact,
with no linearization search. Concurrency is still there: containers run,
exit and get killed while the client works, the runtime restarts between
calls, and the checker must explain every answer by those events.

What the client does (a seeded ``random.Random``; the runtime decides the
timing), drawn step by step:

* run sandboxes (at most ``max_pods`` at once), stop them (again, and once
  removed), remove them (ready ones too: the CRI says running containers are
  then forcibly terminated and removed);
* create containers in ready — and sometimes stopped — sandboxes, with a
  script that exits by itself with 0 or non-zero, serves until SIGTERM and
  then exits 0, or ignores SIGTERM (so StopContainer's timeout runs out and
  the runtime must SIGKILL it); start them (again, too);
* stop containers with a timeout of 0, 1 or 2 s; remove them (again, too);
* restart a container the kubelet's way: remove the exited one, create the
  next attempt, start it;
* read: PodSandboxStatus, ContainerStatus, ListPodSandbox, ListContainers —
  also for ids that were removed (the runtime must say NOT_FOUND); lists
  always filtered by the run's label, sometimes also by id, sandbox or state;
* faults (:mod:`conformance.failpoint.cri`) every few seconds.

It begins with a *prologue*, one pod's whole lifecycle (containers that exit
0 and 3, one served and stopped with a grace period, statuses, lists), so
that even a short run covers every call; at the end (``drain``) every
sandbox of the run is stopped and removed and both lists are read: the
model says they must be empty.

Recording (:mod:`conformance.history` events, process 0 for calls, -1 for
faults): ``f`` is the CRI method, ``key`` the real id the call targets (or
``None``), the invoke value the request as sent — field names as in
api.proto, except that CreateContainer's copy of the sandbox config is left
out — plus ``"kubemc"``: what the workload knows of a new container's
script (``exits``: the codes it can exit with by itself; ``term``: the codes
SIGTERM can leave) and of a stop (nothing). A completion is ``ok`` with the
response (plain JSON, enum names), ``fail`` with ``{"code", "message"}``, or
``info`` with the same when the outcome is unknown (a timeout, a lost
connection).
"""

from __future__ import annotations

import random
import time

from kubemc.conformance.failpoint import cri as faults
from kubemc.conformance.history import Recorder
from kubemc.conformance.adapters.cri.runtime import INFO, OK, CriClient, container_config, sandbox_config

CLIENT = 0
#: workload container scripts: name -> (script, exits by itself, exits on SIGTERM)
SCRIPTS = {
    "exit0": ("sleep 0.{d}; exit 0", (0,), (143,)),
    "exit1": ("sleep 0.{d}; exit 1", (1,), (143,)),
    "exit3": ("sleep 0.{d}; exit 3", (3,), (143,)),
    "serve": ("trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done", (), (0, 143)),
    "stubborn": ("trap '' TERM; while :; do sleep 1 & wait $!; done", (), (143,)),
}
# (a SIGTERM that arrives before the shell has set its trap kills it: 143)
KILLED = 137


class Workload:
    """Drives ``client`` for ``time_limit`` seconds; ``runtime`` (a
    :class:`conformance.adapters.cri.runtime.LocalContainerd`) is needed for faults."""

    def __init__(self, client: CriClient, recorder: Recorder, run_id: str, *, seed: int = 0,
                 time_limit: float = 30.0, faults_enabled: tuple[str, ...] = (), runtime=None,
                 cgroup_parent: str = "", max_pods: int = 3, fault_every: tuple[float, float] = (3.0, 7.0),
                 progress=lambda calls, faults, elapsed: None):
        self.c = client
        self.rec = recorder
        self.run_id = run_id
        self.rng = random.Random(f"{seed}/cri")
        self.time_limit = time_limit
        self.faults_enabled = faults_enabled if runtime is not None else ()
        self.runtime = runtime
        self.cgroup_parent = cgroup_parent
        self.max_pods = max_pods
        self.fault_every = fault_every
        self.progress = progress
        self.pods: dict[str, dict] = {}          # real sandbox id -> what we believe
        self.ctrs: dict[str, dict] = {}          # real container id -> what we believe
        self.pod_seq = 0
        self.calls = 0
        self.fault_counts: dict[str, int] = {}
        #: when a container that exits by itself (within 0.9 s) was last started, or one killed
        self.last_exit_start = 0.0

    # --- one call -----------------------------------------------------------------

    def call(self, method: str, key: str | None, request: dict, *, sent: dict | None = None,
             kubemc: dict | None = None, timeout: float | None = None):
        """Send ``sent`` (default ``request``); record ``request`` (+ ``kubemc``)."""
        recorded = dict(request)
        if kubemc:
            recorded["kubemc"] = kubemc
        token = self.rec.invoke(CLIENT, method, key, recorded)
        status, value = OK, None
        try:
            status, value = self.c.call(method, deadline=timeout, **(sent if sent is not None else request))
        finally:
            if value is None:                      # interrupted: outcome unknown
                self.rec.complete(token, INFO, {"code": "CANCELLED", "message": "interrupted"})
        self.rec.complete(token, status, value)
        self.calls += 1
        return status, value

    # --- the steps ------------------------------------------------------------------

    def run_pod(self):
        name = f"p{self.pod_seq}"
        self.pod_seq += 1
        cfg = sandbox_config(self.run_id, name, self.cgroup_parent)
        st, out = self.call("RunPodSandbox", None, {"config": cfg}, timeout=60)
        if st == OK:
            self.pods[out["pod_sandbox_id"]] = {"name": name, "config": cfg, "ready": True,
                                               "removed": False, "next": {}}

    def _live_pods(self, ready: bool | None = None):
        return [sid for sid, p in self.pods.items() if not p["removed"]
                and (ready is None or p["ready"] == ready)]

    def _pick(self, items):
        return self.rng.choice(items) if items else None

    def create(self, sid: str | None = None, name: str | None = None):
        if sid is None:
            ready = self._live_pods(True)
            # sometimes a stopped sandbox: the runtime must refuse
            sid = self._pick(ready if ready and self.rng.random() < 0.9 else self._live_pods())
        if sid is None:
            return None
        pod = self.pods[sid]
        name = name or self.rng.choice("abc")
        attempt = pod["next"].get(name, 0)
        kind = self.rng.choice(sorted(SCRIPTS))
        script, exits, term = SCRIPTS[kind]
        script = script.replace("{d}", str(self.rng.randint(1, 9)))
        cfg = container_config(self.run_id, name, script, attempt)
        st, out = self.call("CreateContainer", sid, {"pod_sandbox_id": sid, "config": cfg},
                            sent={"pod_sandbox_id": sid, "config": cfg, "sandbox_config": pod["config"]},
                            kubemc={"script": kind, "exits": list(exits), "term": list(term)},
                            timeout=30)
        if st == OK:
            pod["next"][name] = attempt + 1
            cid = out["container_id"]
            self.ctrs[cid] = {"sandbox": sid, "name": name, "attempt": attempt, "kind": kind,
                              "started": False, "removed": False}
            return cid
        return None

    def start(self, cid: str | None = None):
        if cid is None:
            fresh = [c for c, v in self.ctrs.items() if not v["removed"] and not v["started"]]
            cid = self._pick(fresh if fresh and self.rng.random() < 0.85 else list(self.ctrs))
        if cid is None:
            return
        st, _ = self.call("StartContainer", cid, {"container_id": cid}, timeout=30)
        if st == OK:
            self.ctrs[cid]["started"] = True
            if self.ctrs[cid]["kind"].startswith("exit"):
                self.last_exit_start = time.monotonic()

    def stop_container(self):
        live = [c for c, v in self.ctrs.items() if not v["removed"]]
        cid = self._pick(live if live and self.rng.random() < 0.9 else list(self.ctrs))
        if cid is None:
            return
        timeout = self.rng.choice((0, 0, 1, 2))
        self.call("StopContainer", cid, {"container_id": cid, "timeout": timeout}, timeout=timeout + 30)

    def remove_container(self):
        cid = self._pick(list(self.ctrs))
        if cid is None:
            return
        st, _ = self.call("RemoveContainer", cid, {"container_id": cid}, timeout=30)
        if st == OK:
            self.ctrs[cid]["removed"] = True

    def restart_container(self):
        """The kubelet's restart: remove the exited container, create the next attempt, start it."""
        done = [c for c, v in self.ctrs.items() if v["started"] and not v["removed"]
                and not self.pods[v["sandbox"]]["removed"]]
        cid = self._pick(done)
        if cid is None:
            return
        v = self.ctrs[cid]
        st, out = self.call("ContainerStatus", cid, {"container_id": cid})
        if st != OK or out.get("status", {}).get("state") != "CONTAINER_EXITED":
            return
        st, _ = self.call("RemoveContainer", cid, {"container_id": cid}, timeout=30)
        if st == OK:
            v["removed"] = True
            new = self.create(v["sandbox"], v["name"])
            if new is not None:
                self.start(new)

    def stop_pod(self):
        sid = self._pick(self._live_pods() if self.rng.random() < 0.85 else list(self.pods))
        if sid is None:
            return
        st, _ = self.call("StopPodSandbox", sid, {"pod_sandbox_id": sid}, timeout=60)
        if st == OK:
            self.pods[sid]["ready"] = False

    def remove_pod(self):
        live = self._live_pods()
        sid = self._pick([s for s in live if not self.pods[s]["ready"]] or live
                         if self.rng.random() < 0.9 else list(self.pods))
        if sid is None:
            return
        st, _ = self.call("RemovePodSandbox", sid, {"pod_sandbox_id": sid}, timeout=60)
        if st == OK:
            self.pods[sid]["removed"] = True
            for v in self.ctrs.values():
                if v["sandbox"] == sid:
                    v["removed"] = True

    def read(self):
        r = self.rng.random()
        if r < 0.3 and self.ctrs:
            live = [c for c, v in self.ctrs.items() if not v["removed"]]
            cid = self._pick(live if live and self.rng.random() < 0.85 else list(self.ctrs))
            self.call("ContainerStatus", cid, {"container_id": cid})
        elif r < 0.55 and self.pods:
            live = self._live_pods()
            sid = self._pick(live if live and self.rng.random() < 0.85 else list(self.pods))
            self.call("PodSandboxStatus", sid, {"pod_sandbox_id": sid})
        elif r < 0.8:
            flt = {"label_selector": {"kubemc.run": self.run_id}}
            k = self.rng.random()
            if k < 0.2 and self.pods:
                flt["pod_sandbox_id"] = self._pick(list(self.pods))
            elif k < 0.35:
                flt["state"] = {"state": self.rng.choice(("CONTAINER_CREATED", "CONTAINER_RUNNING",
                                                          "CONTAINER_EXITED"))}
            elif k < 0.45 and self.ctrs:
                flt["id"] = self._pick(list(self.ctrs))
            self.call("ListContainers", None, {"filter": flt})
        else:
            flt = {"label_selector": {"kubemc.run": self.run_id}}
            k = self.rng.random()
            if k < 0.25:
                flt["state"] = {"state": self.rng.choice(("SANDBOX_READY", "SANDBOX_NOTREADY"))}
            elif k < 0.4 and self.pods:
                flt["id"] = self._pick(list(self.pods))
            self.call("ListPodSandbox", None, {"filter": flt})

    def step(self):
        live = self._live_pods()
        if len(live) < self.max_pods and (not live or self.rng.random() < 0.25):
            return self.run_pod()
        r = self.rng.random()
        for bound, act in ((0.16, self.create), (0.30, self.start), (0.38, self.stop_container),
                           (0.45, self.remove_container), (0.52, self.restart_container),
                           (0.57, self.stop_pod), (0.62, self.remove_pod)):
            if r < bound:
                return act()
        return self.read()

    # --- faults ---------------------------------------------------------------------

    def fault(self, name: str):
        if name == "kill":
            running = [c for c, v in self.ctrs.items() if v["started"] and not v["removed"]
                       and v["kind"] in ("serve", "stubborn")]
            cid = self._pick(running)
            if cid is None:
                return False           # nothing to kill yet: try again soon
            token = self.rec.invoke(faults.FAULT_PROCESS, "kill", cid, {"container_id": cid})
            st, val = faults.kill_container(self.runtime, cid)
            self.last_exit_start = time.monotonic()
        else:
            quiet = name == "restart"
            if quiet:                      # nothing about to exit while containerd is away
                time.sleep(max(0.0, self.last_exit_start + 1.0 - time.monotonic()))
            token = self.rec.invoke(faults.FAULT_PROCESS, name, None, {})
            st, val = faults.restart_runtime(self.runtime, quiet=quiet)
            self.c.close()
            self.c = type(self.c)(self.runtime.socket, timeout=self.c.timeout)
        self.rec.complete(token, st, val)
        if st == OK:
            self.fault_counts[name] = self.fault_counts.get(name, 0) + 1
        return True

    # --- the run ----------------------------------------------------------------------

    def prologue(self):
        """One pod's whole lifecycle first, so that even a short run has seen
        every call answer, exits 0 and non-zero, and a graceful stop."""
        self.run_pod()
        sid = next(iter(self.pods), None)
        if sid is None:
            return
        made = []
        for name, kind in (("a", "exit0"), ("b", "exit3"), ("c", "serve")):
            script, exits, term = SCRIPTS[kind]
            cfg = container_config(self.run_id, name, script.replace("{d}", "2"), 0)
            st, out = self.call("CreateContainer", sid, {"pod_sandbox_id": sid, "config": cfg},
                                sent={"pod_sandbox_id": sid, "config": cfg,
                                      "sandbox_config": self.pods[sid]["config"]},
                                kubemc={"script": kind, "exits": list(exits), "term": list(term)},
                                timeout=30)
            if st == OK:
                self.pods[sid]["next"][name] = 1
                self.ctrs[out["container_id"]] = {"sandbox": sid, "name": name, "attempt": 0,
                                                  "kind": kind, "started": False, "removed": False}
                made.append(out["container_id"])
        for cid in made:
            self.start(cid)
        time.sleep(0.6)                              # the exit scripts end after 0.2 s
        for cid in made:
            self.call("ContainerStatus", cid, {"container_id": cid})
        if made:
            self.call("StopContainer", made[-1], {"container_id": made[-1], "timeout": 1}, timeout=31)
            self.call("ContainerStatus", made[-1], {"container_id": made[-1]})
            self.call("RemoveContainer", made[0], {"container_id": made[0]}, timeout=30)
            self.ctrs[made[0]]["removed"] = True
        flt = {"filter": {"label_selector": {"kubemc.run": self.run_id}}}
        self.call("ListContainers", None, flt)
        self.call("ListPodSandbox", None, flt)
        self.call("PodSandboxStatus", sid, {"pod_sandbox_id": sid})

    def run(self) -> float:
        """The prologue and then random steps for ``time_limit`` seconds, then
        :meth:`drain`; returns the traffic seconds."""
        t0 = time.monotonic()
        self.call("Version", None, {"version": "v1"})
        self.prologue()
        next_fault = t0 + self.rng.uniform(*self.fault_every)
        order = list(self.faults_enabled)
        self.rng.shuffle(order)
        k, last_report = 0, t0
        while time.monotonic() - t0 < self.time_limit:
            self.step()
            now = time.monotonic()
            if order and now >= next_fault:
                if self.fault(order[k % len(order)]):
                    k += 1
                    next_fault = now + self.rng.uniform(*self.fault_every)
                else:
                    next_fault = now + 0.5
            if now - last_report >= 0.5:
                last_report = now
                if self.runtime is not None:
                    self.runtime.reap()     # shims that exited with their sandbox
                self.progress(self.calls, sum(self.fault_counts.values()), now - t0)
        traffic = time.monotonic() - t0
        self.drain()
        return traffic

    def drain(self):
        """Stop and remove every sandbox of the run, then read both lists (both must be empty)."""
        flt = {"filter": {"label_selector": {"kubemc.run": self.run_id}}}
        st, out = self.call("ListPodSandbox", None, flt)
        ids = [i["id"] for i in out.get("items", [])] if st == OK else []
        for sid in dict.fromkeys([*ids, *self._live_pods()]):
            self.call("StopPodSandbox", sid, {"pod_sandbox_id": sid}, timeout=60)
            st, _ = self.call("RemovePodSandbox", sid, {"pod_sandbox_id": sid}, timeout=60)
            if st == OK and sid in self.pods:
                self.pods[sid]["removed"] = True
        self.call("ListPodSandbox", None, flt)
        self.call("ListContainers", None, flt)

"""The CRI target: a private containerd started for one run, or an existing
runtime's socket, and a gRPC client that turns every call into a history
outcome.

Local containerd layout (one run, everything under one temporary directory
``kmc<run id>-cri-…``)::

    config.toml          CRI plugin on, sandbox image = the local busybox image
    containerd.sock      the gRPC socket (and .ttrpc beside it)
    root/  state/        containerd's root and state directories
    runc/                runc's state root (the shim's ``Root`` option)
    cni/                 an empty CNI configuration directory (see below)
    image.tar            the OCI archive of :mod:`conformance.adapters.cri.image`
    containerd.log

Why pods use the node's network namespace (``NamespaceMode NODE``): the CRI
plugin of containerd 1.6 insists that a pod network comes from a CNI plugin
that gives an ``eth0`` an address; the only way to that on this machine
would add bridges, veths and addresses to the host, which the run would
then have to own and remove. The runtime service's state machine —
sandboxes, containers, their states, exit codes and the order of calls — is
the same either way; PID and IPC namespaces are still the pod's.

Why ``restrict_oom_score_adj``: the CRI plugin gives the sandbox container an
OOM score adjustment of -998, which an unprivileged container (like CI's)
may not set; restricted, it keeps the caller's own.

Clean-up (:meth:`LocalContainerd.stop`, idempotent, from ``finally``, from
``atexit`` and on SIGTERM/SIGHUP): every sandbox stopped and removed through
the CRI while containerd answers; containerd stopped; every remaining
process of the run — shims, container processes — killed
(:class:`conformance.runner.proctree.ProcessTree`: the runner is the shims'
subreaper); every mount under the run's directory detached; the run's
cgroups removed; the shims' sockets in containerd's fixed socket directory
removed; the directory removed.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from kubemc.checker.errors import BadInput, MissingEnvironment
from kubemc.conformance.adapters.cri import cleanup as cri_cleanup, image as cri_image
from kubemc.conformance.adapters.cri import proto as pb
from kubemc.conformance.runner.proctree import ProcessTree

#: outcomes of a call, as the history records them
OK, FAIL, INFO = "ok", "fail", "info"
#: gRPC codes after which a call may or may not have taken effect
UNKNOWN_OUTCOME = ("DEADLINE_EXCEEDED", "UNAVAILABLE", "CANCELLED")
SHIM_SOCKET_DIR = cri_cleanup.SHIM_SOCKET_DIR
RUN_DIRS = (SHIM_SOCKET_DIR, "/run/containerd/fifo", "/run/containerd/runc/k8s.io",
            "/run/containerd/runc", "/run/containerd")

_live: set = set()
_live_lock = threading.Lock()


def new_run_id() -> str:
    return os.urandom(3).hex()


def parse_endpoint(text: str) -> str:
    """``unix:///PATH`` → the socket path; BadInput otherwise."""
    m = re.fullmatch(r"unix://(/[^\0]+)", text or "")
    if not m:
        raise BadInput(f"--endpoint: {text!r} is not a socket address like unix:///run/containerd/containerd.sock")
    path = m.group(1)
    if len(path.encode()) > 107:
        raise BadInput(f"--endpoint: {path}: a Unix socket path may have at most 107 bytes")
    return path


def require_local_environment() -> dict[str, str]:
    """Paths of what a local run needs; MissingEnvironment with the fix otherwise."""
    if os.geteuid() != 0:
        raise MissingEnvironment("a local containerd needs root: run as root "
                                 "(or give --endpoint of a running CRI runtime)")
    found, missing = {}, []
    for tool, pkg in (("containerd", "containerd"), ("ctr", "containerd"),
                      ("containerd-shim-runc-v2", "containerd"), ("runc", "runc")):
        path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin")
        if path is None:
            missing.append(f"{tool} (apt-get install {pkg})")
        found[tool] = path
    if missing:
        raise MissingEnvironment("the local CRI runtime needs " + ", ".join(missing) +
                                 " (or give --endpoint of a running CRI runtime)")
    found["busybox"] = cri_image.find_busybox()
    return found


def _config(d: str) -> str:
    """containerd's configuration: everything under ``d``; no TCP, no metrics."""
    return f"""version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{cri_image.IMAGE}"
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "{{snapshotter}}"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "{d}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni"
    conf_dir = "{d}/cni"
"""


def _atexit_stop():
    with _live_lock:
        runs = list(_live)
    for r in runs:
        with contextlib.suppress(Exception):
            r.stop()


atexit.register(_atexit_stop)


class LocalContainerd:
    """A private containerd for one run. Use as a context manager::

        with LocalContainerd() as rt:
            client = CriClient(rt.socket)
            ...
            rt.restart()            # the runtime-restart fault
    """

    def __init__(self, run_id: str | None = None, snapshotter: str | None = None, log=lambda m: None):
        self.run_id = run_id or new_run_id()
        self.tools = require_local_environment()
        self.dir = ""
        self.proc: subprocess.Popen | None = None
        self.tree: ProcessTree | None = None
        self.snapshotter = snapshotter
        self.log = log
        self.restarts = 0
        self._stopped = False
        self._lock = None
        #: what the start removed of runs killed before (one line each)
        self.reaped: list[str] = []
        self._shim_sockets: set[str] = set()
        #: containerd's fixed directories (deepest first): removed at the end when empty
        #: and no containerd runs (they may come from a parallel run that ended first)
        self._run_dirs_before = {p: os.path.isdir(p) for p in RUN_DIRS}

    # --- paths -------------------------------------------------------------------

    @property
    def socket(self) -> str:
        return os.path.join(self.dir, "containerd.sock")

    @property
    def cgroup_parent(self) -> str:
        """The cgroup (below each hierarchy's root) every pod of the run goes under."""
        return f"/kmc{self.run_id}"

    # --- lifecycle ------------------------------------------------------------------

    def __enter__(self) -> LocalContainerd:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self._lock = cri_cleanup.LOCKS.hold(self.run_id)
        self.reaped = cri_cleanup.remove_leftovers()
        with _live_lock:
            _live.add(self)
        self.tree = ProcessTree().__enter__()
        self.dir = tempfile.mkdtemp(prefix=f"kmc{self.run_id}-cri-")
        os.mkdir(os.path.join(self.dir, "cni"))
        archive = os.path.join(self.dir, "image.tar")
        with open(archive, "wb") as fh:
            fh.write(cri_image.archive(self.tools["busybox"]))
        order = [self.snapshotter] if self.snapshotter else ["overlayfs", "native"]
        last = ""
        for snap in order:
            with open(os.path.join(self.dir, "config.toml"), "w", encoding="utf-8") as fh:
                fh.write(_config(self.dir).replace("{snapshotter}", snap))
            self._spawn()
            try:
                cri_image.import_image(self.socket, archive)
                if self._probe():
                    self.snapshotter = snap
                    self.log(f"containerd {self.version()} up with snapshotter {snap}")
                    return
                last = f"snapshotter {snap}: a probe sandbox would not run"
            except RuntimeError as exc:
                last = f"snapshotter {snap}: {exc}"
            self._kill_containerd()
        raise MissingEnvironment(f"containerd could not run a container here ({last}); see "
                                 f"{os.path.join(self.dir, 'containerd.log')}")

    def _spawn(self) -> None:
        logf = open(os.path.join(self.dir, "containerd.log"), "ab")
        try:
            self.proc = subprocess.Popen([self.tools["containerd"], "--config",
                                          os.path.join(self.dir, "config.toml")],
                                         stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                         start_new_session=True)
        finally:
            logf.close()
        self.tree.add(self.proc.pid)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise MissingEnvironment(f"containerd exited at start (status {self.proc.returncode}); "
                                         f"see {os.path.join(self.dir, 'containerd.log')}")
            if os.path.exists(self.socket):
                try:
                    CriClient(self.socket).version(timeout=2)
                    return
                except Exception:
                    pass
            time.sleep(0.05)
        raise MissingEnvironment("containerd did not answer on its socket within 30 s; see "
                                 f"{os.path.join(self.dir, 'containerd.log')}")

    def _probe(self) -> bool:
        """Run and remove one sandbox: does this snapshotter work here?"""
        c = CriClient(self.socket)
        try:
            st, out = c.run_sandbox(sandbox_config(self.run_id, "probe", self.cgroup_parent))
            if st != OK:
                self.log(f"probe sandbox: {out}")
                return False
            c.call("StopPodSandbox", pod_sandbox_id=out)
            c.call("RemovePodSandbox", pod_sandbox_id=out)
            return True
        finally:
            c.close()

    def version(self) -> str:
        c = CriClient(self.socket)
        try:
            v = c.version()
            return f"{v['runtime_name']} {v['runtime_version']} (CRI {v['runtime_api_version']})"
        finally:
            c.close()

    def _kill_containerd(self, sig=signal.SIGKILL) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            self.proc.wait(timeout=10)

    def restart(self, sig=signal.SIGKILL, wait_recovered: bool = True) -> float:
        """The runtime-restart fault: containerd killed (shims and containers
        live on) and started again on the same root and state; returns the
        seconds it was unavailable. containerd answers calls before its CRI
        plugin has recovered its state; ``wait_recovered`` waits until the
        plugin says it has (its log line "Start streaming server")."""
        t = time.monotonic()
        log = os.path.join(self.dir, "containerd.log")
        offset = os.path.getsize(log) if os.path.exists(log) else 0
        self._kill_containerd(sig)
        self._spawn()
        self.restarts += 1
        deadline = time.monotonic() + 30
        while wait_recovered and time.monotonic() < deadline:
            with open(log, "rb") as fh:
                fh.seek(offset)
                if b'msg="Start streaming server"' in fh.read():
                    break
            time.sleep(0.02)
        return time.monotonic() - t

    def container_pid(self, container_id: str) -> int | None:
        """The container's init process, from runc's state (ours: its root is in the run's dir)."""
        path = os.path.join(self.dir, "runc", "k8s.io", container_id, "state.json")
        try:
            with open(path, encoding="utf-8") as fh:
                pid = json.load(fh).get("init_process_pid")
        except (OSError, ValueError):
            return None
        return pid if isinstance(pid, int) and pid > 0 else None

    def _zombie_children(self) -> set[int]:
        """Exited children of the runner that it did not start before the run:
        shims that exited after their sandbox went and that, as subreaper, we
        inherited."""
        me, before = os.getpid(), (self.tree.before if self.tree else set())
        out = set()
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in before:
                continue
            with contextlib.suppress(OSError, IndexError):
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    fields = fh.read().rsplit(b")", 1)[1].split()
                if fields[0] == b"Z" and int(fields[1]) == me:
                    out.add(int(entry))
        return out

    def reap(self) -> None:
        """Collect shims that exited (a run calls this now and then)."""
        cri_cleanup.reap(self._zombie_children(), timeout=0)

    def shim_pids(self) -> list[int]:
        out = []
        for pid in (self.tree.members() if self.tree else ()):
            with contextlib.suppress(OSError):
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    argv = fh.read().split(b"\0")
                if argv and argv[0].endswith(b"containerd-shim-runc-v2"):
                    out.append(pid)
        return out

    def stop(self, keep_log: str | None = None) -> list[str]:
        """Remove everything the run created; returns what could not be removed
        (normally nothing). Idempotent. ``keep_log``: a file to copy
        containerd's log into first."""
        if self._stopped:
            return []
        self._stopped = True
        problems: list[str] = []
        try:
            if self.proc is not None and self.proc.poll() is None:
                self._remove_all_pods(problems)
                self._shim_sockets |= cri_cleanup.socket_paths(self.shim_pids())
                self._kill_containerd(signal.SIGTERM)
            if self.tree is not None:
                self._shim_sockets |= cri_cleanup.socket_paths(self.shim_pids())
                members = self.tree.members()
                left = self.tree.kill_all(timeout=10)
                self.tree.__exit__(None, None, None)
                cri_cleanup.reap(members | self._zombie_children())
                if left:
                    problems.append(f"processes still alive: {left}")
            if self.dir:
                left = cri_cleanup.umount_all(self.dir)
                if left:
                    problems.append(f"mounts left: {left}")
            problems.extend(f"cgroup left: {c}" for c in
                            cri_cleanup.remove_cgroups(self.cgroup_parent.strip("/")))
            cri_cleanup.remove_shim_sockets(self._shim_sockets)
            if not cri_cleanup.other_live_runs(self.run_id) and not cri_cleanup.containerd_running():
                # nobody uses containerd's fixed directories now (a parallel run's shim
                # could be about to put its socket there): the empty ones go
                for path, existed in self._run_dirs_before.items():
                    with contextlib.suppress(OSError):
                        os.rmdir(path)       # only if empty
            if self.dir:
                if keep_log:
                    with contextlib.suppress(OSError):
                        shutil.copyfile(os.path.join(self.dir, "containerd.log"), keep_log)
                shutil.rmtree(self.dir, ignore_errors=True)
                if os.path.exists(self.dir):
                    problems.append(f"directory left: {self.dir}")
        finally:
            with _live_lock:
                _live.discard(self)
            if self._lock is not None:
                self._lock.close()          # last: the run has removed what it could
                self._lock = None
        return problems

    def _remove_all_pods(self, problems: list[str], budget: float = 20.0) -> None:
        """Stop and remove every sandbox through the CRI, for at most ``budget``
        seconds (a runtime that hangs is then cleaned up by force)."""
        c = CriClient(self.socket, timeout=5)
        deadline = time.monotonic() + budget
        try:
            st, items = c.call("ListPodSandbox")
            for item in (items.get("items", []) if st == OK else []):
                if time.monotonic() > deadline:
                    problems.append("orderly removal through the CRI took too long; the rest was killed")
                    break
                sid = item["id"]
                c.call("StopPodSandbox", pod_sandbox_id=sid)
                st2, out = c.call("RemovePodSandbox", pod_sandbox_id=sid)
                if st2 != OK:
                    problems.append(f"sandbox {sid[:12]}: remove: {out}")
        except Exception as exc:   # containerd misbehaving: the kill below still cleans up
            problems.append(f"orderly removal through the CRI failed: {exc}")
        finally:
            c.close()

# --- the client ------------------------------------------------------------------


def sandbox_config(run_id: str, name: str, cgroup_parent: str = "", attempt: int = 0) -> dict:
    """A pod's sandbox configuration: node network (see the module's docstring),
    the pod's own PID and IPC namespaces, the run's label."""
    linux = {"security_context": {"namespace_options": {"network": "NODE", "pid": "POD", "ipc": "POD"}}}
    if cgroup_parent:
        linux["cgroup_parent"] = cgroup_parent
    return {"metadata": {"name": name, "uid": f"kmc{run_id}-{name}", "namespace": f"kmc{run_id}",
                         "attempt": attempt},
            "labels": {"kubemc.run": run_id}, "linux": linux}


def container_config(run_id: str, name: str, script: str, attempt: int = 0) -> dict:
    return {"metadata": {"name": name, "attempt": attempt}, "image": {"image": cri_image.IMAGE},
            "command": ["/bin/sh", "-c", script], "labels": {"kubemc.run": run_id}}


class CriClient:
    """One gRPC channel to a CRI runtime; every call returns ``(outcome, value)``:

    * ``("ok", response)`` — the response as plain JSON values (enum names);
    * ``("fail", {"code": C, "message": M})`` — the runtime answered with an
      error: the call did not take effect;
    * ``("info", {"code": C, "message": M})`` — a timeout or a lost
      connection: it may or may not have taken effect.
    """

    def __init__(self, socket_path: str, timeout: float = 10.0):
        import grpc
        self._grpc = grpc
        self.timeout = timeout
        self.channel = grpc.insecure_channel(f"unix://{socket_path}",
                                             options=[("grpc.enable_retries", 0)])
        self.stub = pb.RuntimeStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def call(self, method: str, deadline: float | None = None, **fields):
        """``fields`` are the request's (api.proto names); ``deadline`` the
        seconds to wait for the answer (default: the client's timeout)."""
        req = pb.new(pb.METHODS[method][0], **fields)
        try:
            resp = self.stub.call(method, req, timeout=self.timeout if deadline is None else deadline)
        except self._grpc.RpcError as exc:
            code = exc.code().name if exc.code() else "UNKNOWN"
            err = {"code": code, "message": (exc.details() or "")[:300]}
            return (INFO if code in UNKNOWN_OUTCOME else FAIL), err
        return OK, pb.to_dict(resp)

    def version(self, timeout: float | None = None) -> dict:
        st, out = self.call("Version", deadline=timeout)
        if st != OK:
            raise ConnectionError(f"Version: {out['code']}: {out['message']}")
        return out

    def run_sandbox(self, config: dict, timeout: float | None = None):
        st, out = self.call("RunPodSandbox", deadline=timeout or 60, config=config)
        return (st, out.get("pod_sandbox_id", "")) if st == OK else (st, out)


def check_endpoint(path: str) -> str:
    """The runtime at an ``--endpoint`` socket answers Version; MissingEnvironment otherwise."""
    if not os.path.exists(path):
        raise MissingEnvironment(f"--endpoint unix://{path}: no such socket; start the runtime, "
                                 "or leave --endpoint out to start a private containerd")
    s = socket.socket(socket.AF_UNIX)
    try:
        s.settimeout(2)
        s.connect(path)
    except OSError as exc:
        raise MissingEnvironment(f"--endpoint unix://{path}: cannot connect: {exc.strerror or exc}") from None
    finally:
        s.close()
    c = CriClient(path)
    try:
        v = c.version(timeout=5)
        try:
            has_image = bool((pb.image_status(c.channel, cri_image.IMAGE, 10).get("image") or {}).get("id"))
        except c._grpc.RpcError as exc:
            raise MissingEnvironment(f"--endpoint unix://{path}: ImageStatus failed: "
                                     f"{exc.details() or exc.code()}") from None
    except ConnectionError as exc:
        raise MissingEnvironment(f"--endpoint unix://{path}: does not answer the CRI v1 runtime "
                                 f"service ({exc})") from None
    finally:
        c.close()
    if not has_image:
        # without it every CreateContainer fails, and a run would prove nothing
        raise MissingEnvironment(f"--endpoint unix://{path}: the image {cri_image.IMAGE} is missing; "
                                 f"import it with `python3 -m conformance.adapters.cri.image "
                                 f"unix://{path}` (containerd; it runs `ctr images import`)")
    return f"{v['runtime_name']} {v['runtime_version']} (CRI {v['runtime_api_version']})"

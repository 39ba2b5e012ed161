"""The etcd target: a local 3-member cluster with fault handles, or an existing one.

Local cluster layout (one run)::

    host netns                       kmc<id>n0        kmc<id>n1        kmc<id>n2
    bridge kmc<id>br  10.251.0.B+1   etcd @ B+2       etcd @ B+3       etcd @ B+4
        |-- veth kmc<id>h0 ---------- eth0
        |-- veth kmc<id>h1 --------------------------- eth0
        |-- veth kmc<id>h2 -------------------------------------------- eth0

Each member runs the installed ``etcd`` binary inside its own network
namespace, so a partition is a pair of iptables DROP rules *inside* one
namespace (nothing is added to the host's tables), a kill is SIGKILL to one
process and a pause is SIGSTOP. The workload runs in the host namespace and
reaches the members through the bridge's address.

Addresses: every run uses the private block 10.251.0.0/24 and nothing else.
Runs on one machine (pytest-xdist workers) share it by taking one /29 *slot*
each (32 slots: bridge .8k+1, members .8k+2…), chosen under a machine-wide
lock (an abstract Unix socket name) by looking at which addresses the host
already carries, so parallel runs never collide and no route overlaps
another run's.

Names: everything a run creates is named ``kmc<run id>…`` (run id: 6 hex
digits) so that it can be told apart from other runs' and removed by name.
:meth:`LocalCluster.stop` is idempotent and removes, in order: processes,
namespaces (which takes the member veths and their iptables rules with them),
the bridge, the host FORWARD rule if one was needed, the temporary directory.
It runs from ``finally`` blocks, from ``atexit``, and from the SIGTERM/SIGHUP
handler that :func:`conformance.runner.signals.signals_raise` installs; nothing
survives a run except after SIGKILL of the runner itself — and what such a
run leaves, the next local run finds by its prefix and removes
(:mod:`conformance.adapters.etcd.leftovers`; listed in :attr:`LocalCluster.reaped`).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence

from kubemc.checker.errors import BadInput, MissingEnvironment
from kubemc.conformance.adapters.etcd import leftovers as etcd_leftovers
from kubemc.conformance.adapters.etcd.client import ClientError, EtcdClient

SUBNET_PREFIX = "10.251.0."       # the one /24 this target ever sends to
SLOT_SIZE, SLOTS = 8, 32
CLIENT_PORT, PEER_PORT = 2379, 2380
INSTALL_HINT = "install it with `apt-get install etcd-server`"

_live: set[LocalCluster] = set()
_live_lock = threading.Lock()


def new_run_id() -> str:
    return os.urandom(3).hex()


def _run(*argv: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def require_local_environment(need_iptables: bool = True) -> str:
    """The etcd binary's path; MissingEnvironment with the fix otherwise."""
    etcd = shutil.which("etcd")
    if etcd is None:
        raise MissingEnvironment(f"the etcd binary is not installed: {INSTALL_HINT} "
                                 "(or give --endpoints of a running cluster)")
    if os.geteuid() != 0:
        raise MissingEnvironment("the local etcd cluster runs its members in network namespaces, "
                                 "which needs root: run as root (or give --endpoints of a running cluster)")
    if shutil.which("ip") is None:
        raise MissingEnvironment("the `ip` command is missing: install it with `apt-get install iproute2`")
    if need_iptables and shutil.which("iptables") is None:
        raise MissingEnvironment("the partition fault needs iptables: install it with `apt-get install iptables`")
    return etcd


@contextlib.contextmanager
def _slot_lock(timeout: float = 60.0):
    """A machine-wide mutex for choosing an address slot: a Unix socket bound
    to an abstract name (nothing on disk to clean up, released by the kernel
    if the holder dies)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                sock.bind("\0kmc-etcd-address-slots")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("another kubemc run holds the address-slot lock for too long") from None
                time.sleep(0.05)
        yield
    finally:
        sock.close()


def parse_endpoints(text: str) -> list[str]:
    """``URL,URL,...`` → list; BadInput naming the first bad one."""
    out = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        if not re.fullmatch(r"https?://[^/\s:]+(:\d{1,5})?/?", item):
            raise BadInput(f"--endpoints: {item!r} is not a URL like http://127.0.0.1:2379")
        if item.startswith("https"):
            raise BadInput(f"--endpoints: {item!r}: only plain http endpoints are supported")
        out.append(item.rstrip("/"))
    if not out:
        raise BadInput("--endpoints: give at least one URL, like http://127.0.0.1:2379")
    return out


class Member:
    def __init__(self, index: int, name: str, netns: str, ip: str, data_dir: str, log_path: str):
        self.index, self.name, self.netns, self.ip = index, name, netns, ip
        self.data_dir, self.log_path = data_dir, log_path
        self.proc: subprocess.Popen | None = None
        self.paused = False
        self.partitioned = False
        self.member_id = 0

    @property
    def client_url(self) -> str:
        return f"http://{self.ip}:{CLIENT_PORT}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.ip}:{PEER_PORT}"


class LocalCluster:
    """A 3-member etcd cluster in network namespaces, with fault handles.

    Use as a context manager, or call :meth:`start` and (always) :meth:`stop`.
    """

    def __init__(self, size: int = 3, run_id: str | None = None, *,
                 progress_notify_interval: str = "1s", heartbeat_ms: int = 50, election_ms: int = 750,
                 snapshot_count: int = 10000, keep_dir: str | None = None):
        if not 1 <= size <= SLOT_SIZE - 2:
            raise BadInput(f"cluster size must be 1..{SLOT_SIZE - 2}, not {size}")
        self.size = size
        self.run_id = run_id or new_run_id()
        self.prefix = f"kmc{self.run_id}"
        self.progress_notify_interval = progress_notify_interval
        self.heartbeat_ms, self.election_ms, self.snapshot_count = heartbeat_ms, election_ms, snapshot_count
        self.keep_dir = keep_dir            # copy member logs here on stop
        self.etcd = ""
        self.bridge = f"{self.prefix}br"
        self.tmpdir: str | None = None
        self.slot: int | None = None
        self.members: list[Member] = []
        self.forward_rule: list[str] | None = None
        self._created_netns: list[str] = []
        self._bridge_created = False
        self._stopped = False
        self._lock = threading.RLock()
        self._run_lock = None
        self.reaped: list[str] = []       # what killed runs had left, removed at start

    # --- lifecycle -------------------------------------------------------------

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def endpoints(self) -> list[str]:
        return [m.client_url for m in self.members]

    def start(self, timeout: float = 30.0) -> None:
        self.etcd = require_local_environment(need_iptables=False)
        with _live_lock:
            _live.add(self)
        try:
            self._run_lock = etcd_leftovers.LOCKS.hold(self.run_id)   # before anything is created
            self.reaped = etcd_leftovers.remove_leftovers()
            self.tmpdir = tempfile.mkdtemp(prefix=f"{self.prefix}-etcd-")
            self._network()
            for m in self.members:
                self._spawn(m)
            self.wait_healthy(timeout)
            for m in self.members:
                m.member_id = EtcdClient(m.client_url, timeout=2).status()["member_id"]
        except BaseException:
            self.stop()
            raise

    def _network(self) -> None:
        with _slot_lock():
            used = set(re.findall(r"inet (10\.251\.0\.\d+)/", _run("ip", "-o", "-4", "addr", "show").stdout))
            free = [s for s in range(SLOTS)
                    if not any(f"{SUBNET_PREFIX}{s * SLOT_SIZE + i}" in used for i in range(SLOT_SIZE))]
            if not free:
                raise MissingEnvironment("all 32 address slots of 10.251.0.0/24 are taken by other runs "
                                         "(leftover kmc* bridges? `ip -br link | grep kmc`)")
            self.slot = free[0]
            base = self.slot * SLOT_SIZE
            _run("ip", "link", "add", self.bridge, "type", "bridge")
            self._bridge_created = True
            _run("ip", "addr", "add", f"{SUBNET_PREFIX}{base + 1}/29", "dev", self.bridge)
            _run("ip", "link", "set", self.bridge, "up")
        base = self.slot * SLOT_SIZE
        for i in range(self.size):
            ns, host_if, peer_if = f"{self.prefix}n{i}", f"{self.prefix}h{i}", f"{self.prefix}p{i}"
            _run("ip", "netns", "add", ns)
            self._created_netns.append(ns)
            _run("ip", "link", "add", host_if, "type", "veth", "peer", "name", peer_if, "netns", ns)
            _run("ip", "link", "set", host_if, "master", self.bridge, "up")
            ip = f"{SUBNET_PREFIX}{base + 2 + i}"
            nsexec = ("ip", "netns", "exec", ns)
            _run(*nsexec, "ip", "link", "set", "lo", "up")
            _run(*nsexec, "ip", "link", "set", peer_if, "name", "eth0")
            _run(*nsexec, "ip", "addr", "add", f"{ip}/29", "dev", "eth0")
            _run(*nsexec, "ip", "link", "set", "eth0", "up")
            d = os.path.join(self.tmpdir, f"m{i}")
            os.makedirs(d)
            self.members.append(Member(i, f"{self.prefix}-m{i}", ns, ip, os.path.join(d, "data"),
                                       os.path.join(d, "etcd.log")))
        # Bridged frames go through the host's FORWARD chain when
        # br_netfilter is loaded; a host whose FORWARD policy drops them
        # (Docker sets DROP) would partition the members from each other.
        if self._bridge_netfilter() and shutil.which("iptables") \
                and "-P FORWARD ACCEPT" not in _run("iptables", "-w", "-S", "FORWARD").stdout:
            rule = ["FORWARD", "-i", self.bridge, "-o", self.bridge, "-m", "comment",
                    "--comment", self.prefix, "-j", "ACCEPT"]
            _run("iptables", "-w", "-I", *rule)
            self.forward_rule = rule

    @staticmethod
    def _bridge_netfilter() -> bool:
        try:
            with open("/proc/sys/net/bridge/bridge-nf-call-iptables") as f:
                return f.read().strip() == "1"
        except OSError:
            return False

    def _argv(self, m: Member) -> list[str]:
        cluster = ",".join(f"{x.name}={x.peer_url}" for x in self.members)
        return ["ip", "netns", "exec", m.netns, self.etcd,
                "--name", m.name, "--data-dir", m.data_dir,
                "--listen-client-urls", m.client_url, "--advertise-client-urls", m.client_url,
                "--listen-peer-urls", m.peer_url, "--initial-advertise-peer-urls", m.peer_url,
                "--initial-cluster", cluster, "--initial-cluster-state", "new",
                "--initial-cluster-token", self.prefix,
                "--heartbeat-interval", str(self.heartbeat_ms), "--election-timeout", str(self.election_ms),
                "--snapshot-count", str(self.snapshot_count),
                "--experimental-watch-progress-notify-interval", self.progress_notify_interval,
                "--logger", "zap", "--log-outputs", "stderr"]

    def _spawn(self, m: Member) -> None:
        # `ip netns exec` enters the namespace and execs etcd: the pid is etcd's.
        # A new session keeps a terminal's Ctrl-C away from etcd: the runner
        # is the one that stops it, after it has stopped its clients.
        with open(m.log_path, "ab") as log:
            m.proc = subprocess.Popen(self._argv(m), stdin=subprocess.DEVNULL, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        m.paused = False

    def wait_healthy(self, timeout: float = 30.0, members: Sequence[Member] | None = None) -> None:
        deadline = time.monotonic() + timeout
        pending = list(members if members is not None else self.members)
        clients = {m.index: EtcdClient(m.client_url, timeout=1.0) for m in pending}
        try:
            while pending:
                for m in list(pending):
                    if m.proc is not None and m.proc.poll() is not None:
                        raise RuntimeError(f"etcd member {m.name} exited with {m.proc.returncode}; "
                                           f"log: {self._tail(m)}")
                    if clients[m.index].healthy():
                        pending.remove(m)
                if pending:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"etcd members {[m.name for m in pending]} not healthy "
                                           f"after {timeout:.0f}s; log: {self._tail(pending[0])}")
                    time.sleep(0.1)
        finally:
            for c in clients.values():
                c.close()

    @staticmethod
    def _tail(m: Member, n: int = 600) -> str:
        try:
            with open(m.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - n))
                return f.read().decode(errors="replace").replace("\n", " | ")
        except OSError:
            return "(no log)"

    def stop(self) -> list[str]:
        """Remove everything this cluster created. Idempotent; returns the
        problems met (each step is attempted regardless of the others)."""
        with self._lock:
            problems: list[str] = []
            for m in self.members:
                p = m.proc
                if p is not None and p.poll() is None:
                    try:
                        os.kill(p.pid, signal.SIGCONT)
                        p.kill()
                        p.wait(timeout=10)
                    except (OSError, subprocess.TimeoutExpired) as exc:
                        problems.append(f"stop {m.name}: {exc}")
            for ns in list(self._created_netns):
                # A socket still closing (FIN_WAIT, LAST_ACK …) keeps a
                # namespace alive after `ip netns del`, and with it the
                # veth pair; kill such sockets, and delete the host end of
                # the pair (which takes the other end with it) by name.
                _run("ip", "netns", "exec", ns, "ss", "-K", "-a", "-t", check=False)
                host_if = f"{self.prefix}h{ns[len(self.prefix) + 1:]}"
                _run("ip", "link", "del", host_if, check=False)
                r = _run("ip", "netns", "del", ns, check=False)
                if r.returncode == 0 or ns not in _run("ip", "netns", "list", check=False).stdout:
                    self._created_netns.remove(ns)
                else:
                    problems.append(f"ip netns del {ns}: {r.stderr.strip()}")
            if self._bridge_created:
                r = _run("ip", "link", "del", self.bridge, check=False)
                if r.returncode == 0 or "Cannot find device" in r.stderr:
                    self._bridge_created = False
                else:
                    problems.append(f"ip link del {self.bridge}: {r.stderr.strip()}")
            if self.forward_rule is not None:
                r = _run("iptables", "-w", "-D", *self.forward_rule, check=False)
                if r.returncode == 0 or "does a matching rule exist" in r.stderr or "Bad rule" in r.stderr:
                    self.forward_rule = None
                else:
                    problems.append(f"iptables -D {' '.join(self.forward_rule)}: {r.stderr.strip()}")
            if self.tmpdir is not None:
                if self.keep_dir:
                    with contextlib.suppress(OSError):
                        os.makedirs(self.keep_dir, exist_ok=True)
                        for m in self.members:     # never over an existing file
                            if os.path.exists(m.log_path):
                                dst = os.path.join(self.keep_dir, f"etcd-m{m.index}.log")
                                with open(m.log_path, "rb") as src, open(dst, "xb") as out:
                                    shutil.copyfileobj(src, out)
                shutil.rmtree(self.tmpdir, ignore_errors=True)
                if not os.path.exists(self.tmpdir):
                    self.tmpdir = None
                else:
                    problems.append(f"rm -r {self.tmpdir} failed")
            self._stopped = True
            if self._run_lock is not None:
                self._run_lock.close()     # what failed to go, a later run removes
                self._run_lock = None
            with _live_lock:
                _live.discard(self)
            return problems

    # --- observations ------------------------------------------------------------

    def leader(self) -> Member | None:
        """The member that the live members agree leads, or None."""
        for m in self.members:
            if m.paused or m.partitioned or m.proc is None or m.proc.poll() is not None:
                continue
            c = EtcdClient(m.client_url, timeout=0.5, connect_timeout=0.3)
            try:
                lead = c.status()["leader"]
            except ClientError:
                continue
            finally:
                c.close()
            for x in self.members:
                if x.member_id == lead:
                    return x
        return None

    # --- faults ------------------------------------------------------------------

    def kill(self, m: Member) -> None:
        if m.proc is not None and m.proc.poll() is None:
            m.proc.kill()
            m.proc.wait(timeout=10)

    def restart(self, m: Member) -> None:
        with self._lock:
            if self._stopped:
                return
            if m.proc is None or m.proc.poll() is not None:
                self._spawn(m)

    def pause(self, m: Member) -> None:
        if m.proc is not None and m.proc.poll() is None:
            os.kill(m.proc.pid, signal.SIGSTOP)
            m.paused = True

    def resume(self, m: Member) -> None:
        if m.proc is not None and m.proc.poll() is None:
            os.kill(m.proc.pid, signal.SIGCONT)
        m.paused = False

    def partition(self, m: Member) -> None:
        """Cut ``m`` off from the other members (clients still reach it):
        DROP rules in m's own namespace, both directions."""
        others = [x.ip for x in self.members if x is not m]
        nsexec = ("ip", "netns", "exec", m.netns, "iptables", "-w")
        for ip in others:
            _run(*nsexec, "-A", "INPUT", "-s", ip, "-j", "DROP")
            _run(*nsexec, "-A", "OUTPUT", "-d", ip, "-j", "DROP")
        m.partitioned = True

    def heal(self, m: Member) -> None:
        nsexec = ("ip", "netns", "exec", m.netns, "iptables", "-w")
        _run(*nsexec, "-F", "INPUT", check=False)
        _run(*nsexec, "-F", "OUTPUT", check=False)
        m.partitioned = False

    def member_by_endpoint(self, endpoint: str) -> Member | None:
        return next((m for m in self.members if m.client_url == endpoint), None)

    def random_member(self, rng: random.Random) -> Member:
        return rng.choice(self.members)


def _cleanup_all() -> None:
    with _live_lock:
        live = list(_live)
    for c in live:
        c.stop()


atexit.register(_cleanup_all)

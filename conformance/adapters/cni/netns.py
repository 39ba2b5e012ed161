"""Network namespaces for ``kubemc conform cni``: simulated nodes, pods, and
entering a namespace from one thread.

Layout of one run (``kcni<id>`` is the run's prefix, six hex digits)::

    kcni<id>-u          the "physical" network: bridge ``fabric``
      n0 ─────────────── eth0 192.168.0.10/24   kcni<id>-n0  (node 0)
      n1 ─────────────── eth0 192.168.0.11/24   kcni<id>-n1  (node 1) …
    kcni<id>-p<k>       a pod sandbox: an empty namespace, as a pause
                        container's; the plugin puts its interface there

Why nothing is created in the host's namespace: a veth is created *inside*
the underlay namespace with its peer moved straight into the node's, so the
host's link table never sees a name of ours, parallel runs (pytest-xdist)
cannot collide on link names, and deleting a namespace takes its links,
bridge, routes and iptables rules with it. Node addresses are the CNI
model's (``model.cni.machine.node_ip``); they live only inside the run's
namespaces, so two runs may use the same ones.

Entering a namespace (:func:`entered`): ``setns(2)`` with ``CLONE_NEWNET``
moves only the calling *thread*; a process forked from that thread starts
there, and a socket created there stays there after the thread returns.
So plugins run inside a node's namespace without ``nsenter`` (one exec less
per call: ``kubemc bench conform-cni`` measures it), and the prober's sockets
are made in pod namespaces from the runner's own process.

Leftovers: a run holds its lock (:mod:`conformance.runner.run_lock`) while it
lives; namespaces of a prefix whose lock can be taken belong to a dead
(SIGKILLed) run and are removed by the next run, with its store directory
(:func:`reap_leftovers`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import socket
import subprocess
import threading

from kubemc.checker.errors import MissingEnvironment
from kubemc.conformance.runner import run_lock

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"
PREFIX_RE = re.compile(r"^kcni([0-9a-f]{6})-")
_libc = ctypes.CDLL(None, use_errno=True)


def new_run_id() -> str:
    return os.urandom(3).hex()


def require_environment() -> None:
    """Root and iproute2: MissingEnvironment (exit 3) with the fix otherwise."""
    if os.geteuid() != 0:
        raise MissingEnvironment("conform cni creates network namespaces, which needs root: "
                                 "run it as root")
    if shutil.which("ip") is None:
        raise MissingEnvironment("the `ip` command is not on PATH: apt-get install iproute2 "
                                 "(or add /usr/sbin to PATH)")


def ns_path(name: str) -> str:
    return os.path.join(NETNS_DIR, name)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def entered(path: str):
    """Run the block with this thread in the network namespace at ``path``;
    always back in the thread's own namespace afterwards."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(path, os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(home)


def ip(*args: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess:
    proc = subprocess.run(("ip", *args), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def list_netns() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def links(netns: str) -> list[str]:
    """Link names in a namespace (``ip -o link``), without the ``@peer`` suffix."""
    out = ip("-n", netns, "-o", "link", "show").stdout
    names = []
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) > 1:
            names.append(parts[1].strip().split("@")[0])
    return names


#: a cni run's lock (the name it has had since before the locks were shared)
LOCKS = run_lock.RunLocks("kubemc-run-kcni")


def hold_run_lock(run_id: str) -> socket.socket:
    return LOCKS.hold(run_id)


TMP_PREFIX = "kubemc-cni-"
TMP_RE = re.compile(r"^kubemc-cni-([0-9a-f]{6})-")


def reap_leftovers() -> list[str]:
    """Remove the namespaces, their processes and the store directories of runs
    that died without cleaning up (SIGKILL); return what was removed (the
    report lists it)."""
    return run_lock.reap(LOCKS, PREFIX_RE, TMP_RE)


class Topology:
    """The namespaces of one run, created in order and removed in reverse.

    :meth:`close` is idempotent and safe from ``finally`` and signal paths:
    it deletes every namespace this object created (which removes their
    links, bridges, routes and iptables rules) and reports what it could not.
    """

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.prefix = f"kcni{run_id}"
        self.created: list[str] = []
        self._lock = threading.Lock()
        self.underlay = f"{self.prefix}-u"

    def _add_ns(self, name: str) -> str:
        with self._lock:      # recorded first: a signal right after `ip netns add` leaks nothing
            self.created.append(name)
        ip("netns", "add", name)
        ip("-n", name, "link", "set", "lo", "up")
        return name

    def node_name(self, n: int) -> str:
        return f"{self.prefix}-n{n}"

    def pod_name(self, key: str) -> str:
        return f"{self.prefix}-{key}"

    def build_nodes(self, node_ips: list[str], mask: int, routes: list[list[tuple[str, str]]]) -> None:
        """The underlay and one namespace per node with its address, IP
        forwarding on, and ``routes[n]`` = [(podCIDR, via node address)]."""
        self._add_ns(self.underlay)
        ip("-n", self.underlay, "link", "add", "fabric", "type", "bridge")
        ip("-n", self.underlay, "link", "set", "fabric", "up")
        for n, address in enumerate(node_ips):
            ns = self._add_ns(self.node_name(n))
            ip("-n", self.underlay, "link", "add", f"n{n}", "type", "veth",
               "peer", "name", "eth0", "netns", ns)
            ip("-n", self.underlay, "link", "set", f"n{n}", "master", "fabric", "up")
            ip("-n", ns, "addr", "add", f"{address}/{mask}", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            # a node forwards between its pods and the network (kubeadm's
            # preflight demands net.ipv4.ip_forward=1 of every node)
            with entered(ns_path(ns)), open("/proc/sys/net/ipv4/ip_forward", "w") as fh:
                fh.write("1")
        for n, table in enumerate(routes):
            for dst, via in table:
                ip("-n", self.node_name(n), "route", "add", dst, "via", via)

    def add_pod(self, key: str) -> str:
        """A new pod sandbox namespace; returns its path (the CNI_NETNS)."""
        return ns_path(self._add_ns(self.pod_name(key)))

    def remove(self, name: str) -> None:
        """Delete one namespace now (a pod deleted, a sandbox crashed)."""
        if name in list_netns():
            ip("netns", "del", name, check=False)
        with self._lock:
            if name in self.created and name not in list_netns():
                self.created.remove(name)

    def close(self) -> list[str]:
        """Call once no process of the run is left (an ``ip netns add`` that a
        signal interrupted inside ``Popen`` would otherwise create its
        namespace after this ran): deletes what was recorded and anything
        else carrying the run's prefix."""
        problems = []
        with self._lock:
            names = list(reversed(self.created))
        names += [n for n in list_netns() if n.startswith(f"{self.prefix}-") and n not in names]
        for name in names:
            r = ip("netns", "del", name, check=False) if name in list_netns() else None
            if r is not None and r.returncode != 0 and name in list_netns():
                problems.append(f"ip netns del {name}: {r.stderr.strip()}")
            else:
                with self._lock:
                    if name in self.created:
                        self.created.remove(name)
        return problems

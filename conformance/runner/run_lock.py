"""Runs that leave things behind tell live runs from dead ones by a lock.

A runner killed with SIGKILL runs no ``finally``: its network namespaces (with
their veths, routes and rules), the processes inside them, its containerd,
its temporary directory stay. Each run therefore holds an abstract Unix
socket named after it for as long as it lives — the kernel releases it
however the process ends — and the next run removes what belongs to runs
whose lock is free, leaving a run that is still going (in parallel, say)
alone.

Why one module: every adapter that creates things on the machine (etcd,
cri, cni, proxy) needs the same three answers — take my lock, is that run
dead, which runs live — and a second copy of the binding rules (abstract
name, close-on-exec so that a child never keeps a dead run's lock, the
message of a clash) could drift from the first. What each adapter leaves and
how it is removed stays in the adapter; :func:`reap` is the common case of
namespaces and temporary directories.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile

import attrs

NETNS_DIR = "/run/netns"


@attrs.frozen
class RunLocks:
    """The locks of one kind of run: run ``id`` holds the abstract socket
    ``<namespace><id>`` (one namespace per adapter, so that run ids drawn
    independently by two adapters never meet)."""

    namespace: str

    def hold(self, run_id: str) -> socket.socket:
        """Take the lock of ``run_id``; close the socket to release it early.
        Python's sockets are not inherited across ``exec``: the processes a
        run starts never hold its lock after it died."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(f"\0{self.namespace}{run_id}")
        except OSError:
            sock.close()
            raise RuntimeError(f"run id {run_id} is in use by another run") from None
        return sock

    def is_dead(self, run_id: str) -> bool:
        """Whether nothing holds the lock of ``run_id`` (taken and given back)."""
        try:
            self.hold(run_id).close()
        except RuntimeError:
            return False
        return True

    def live(self) -> list[str]:
        """Ids of the runs holding a lock of this kind now (``/proc/net/unix``
        lists an abstract name as ``@name``)."""
        out = []
        marker = "@" + self.namespace
        with contextlib.suppress(OSError), open("/proc/net/unix", encoding="utf-8") as fh:
            for line in fh:
                name = line.split()[-1] if line.split() else ""
                if name.startswith(marker):
                    out.append(name[len(marker):])
        return out


def reap(locks: RunLocks, netns: re.Pattern, tmp: re.Pattern) -> list[str]:
    """Remove the namespaces and temporary directories of dead runs; return
    what was removed. Group 1 of each pattern is a run's id in ``locks``. The
    processes in such a namespace are killed first: a process keeps a
    namespace alive after ``ip netns del`` removed its name."""
    removed = []
    try:
        names = sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        names = []
    for name in names:
        m = netns.match(name)
        if not (m and locks.is_dead(m.group(1))):
            continue
        pids = subprocess.run(("ip", "netns", "pids", name), capture_output=True,
                              text=True, timeout=20).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
                removed.append(f"process {pid}")
            except (ProcessLookupError, ValueError):
                pass
        if subprocess.run(("ip", "netns", "del", name), capture_output=True,
                          timeout=20).returncode == 0:
            removed.append(f"netns {name}")
    root = tempfile.gettempdir()
    for name in os.listdir(root):
        m = tmp.match(name)
        if m and locks.is_dead(m.group(1)) and os.path.isdir(os.path.join(root, name)):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
            removed.append(f"directory {name} in the temporary directory")
    return removed

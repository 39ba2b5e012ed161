"""Runs that leave namespaces behind tell live runs from dead ones by a lock.

A runner killed with SIGKILL runs no ``finally``: its network namespaces (with
their veths, routes and rules), the processes inside them and its temporary
directory stay. Each run therefore holds an abstract Unix socket named after
it for as long as it lives — the kernel releases it however the process ends
— and the next run removes what belongs to runs whose lock is free, leaving a
run that is still going (in parallel, say) alone.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile

NETNS_DIR = "/run/netns"


def hold(name: str) -> socket.socket:
    """Take the lock of run ``name`` (close the socket to release it early)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(f"\0kubemc-run-{name}")
    except OSError:
        sock.close()
        raise RuntimeError(f"run {name} is in use by another run") from None
    return sock


def is_dead(name: str) -> bool:
    try:
        hold(name).close()
        return True
    except RuntimeError:
        return False


def reap(prefix: str, netns: re.Pattern, tmp: re.Pattern) -> list[str]:
    """Remove the namespaces and temporary directories of dead runs; return
    what was removed. Group 1 of each pattern is a run's id: its lock is
    ``prefix`` + id, the name given to :func:`hold`. The
    processes in such a namespace are killed first: a process keeps a
    namespace alive after ``ip netns del`` removed its name."""
    removed = []
    try:
        names = sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        names = []
    for name in names:
        m = netns.match(name)
        if not (m and is_dead(prefix + m.group(1))):
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
        if m and is_dead(prefix + m.group(1)) and os.path.isdir(os.path.join(root, name)):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
            removed.append(f"directory {name} in the temporary directory")
    return removed

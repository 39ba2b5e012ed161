"""Removing what a CRI run leaves on the machine: mounts, cgroups, shim
sockets, zombies — and, at the next start, what a runner killed with
SIGKILL could not remove itself.

Why a leftover sweep: a runner that is SIGKILLed (or loses its machine)
runs no ``finally``: its containerd and shims — each in a session of its
own — keep running, with their containers, overlay mounts, cgroups and the
run's directory. Everything a run creates is named after its run id
(``kmc<id>-cri-…`` directory, cgroup ``/kmc<id>``), so the next run finds it.

Telling a dead run from a live one (tests run side by side): a live run
holds a *run lock*, a Unix socket bound to the abstract name
``kmc-cri-run-<id>`` (:class:`conformance.runner.run_lock.RunLocks`), from
before it creates anything until it has removed everything; the kernel
releases the name when the process dies, however it dies. A directory
whose lock can be taken belongs to a dead run.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import re
import shutil
import signal
import tempfile
import time

from kubemc.conformance.runner import proctree
from kubemc.conformance.runner.run_lock import RunLocks

CGROUP_ROOT = "/sys/fs/cgroup"
SHIM_SOCKET_DIR = "/run/containerd/s"
DIR_PATTERN = re.compile(r"kmc([0-9a-f]{6})-cri-")


#: a CRI run's lock, held by :class:`conformance.adapters.cri.runtime.LocalContainerd`
LOCKS = RunLocks("kmc-cri-run-")


def other_live_runs(run_id: str) -> list[str]:
    """Run ids of the other live CRI runs on this machine."""
    return [r for r in LOCKS.live() if r != run_id]


def containerd_running() -> bool:
    """Whether any containerd or shim process lives on the machine (zombies,
    which only wait for their parent to collect them, do not count)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError), open(f"/proc/{entry}/stat", "rb") as fh:
                head, rest = fh.read().rsplit(b")", 1)
                if head.split(b"(", 1)[1].startswith(b"containerd") and rest.split()[0] not in (b"Z", b"X"):
                    return True
    return False


def mounts_under(prefix: str) -> list[str]:
    """Mount points at or below ``prefix`` (from /proc/self/mountinfo), deepest first."""
    out = []
    with contextlib.suppress(OSError), open("/proc/self/mountinfo", encoding="utf-8",
                                             errors="replace") as fh:
        for line in fh:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix.rstrip("/") + "/"):
                out.append(point)
    return sorted(set(out), key=lambda p: -p.count("/"))


def umount_all(prefix: str) -> list[str]:
    """Detach every mount under ``prefix``; returns those still there."""
    libc = ctypes.CDLL(None, use_errno=True)
    MNT_DETACH = 2
    for point in mounts_under(prefix):
        libc.umount2(point.encode(), MNT_DETACH)
    return mounts_under(prefix)


def socket_paths(pids) -> set[str]:
    """Paths of the Unix sockets the processes ``pids`` hold."""
    inodes = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:["):
                        inodes.add(link[8:-1])
    paths = set()
    with contextlib.suppress(OSError), open("/proc/net/unix", encoding="utf-8") as fh:
        next(fh, None)
        for line in fh:
            parts = line.split()
            if len(parts) >= 8 and parts[6] in inodes and parts[7].startswith("/"):
                paths.add(parts[7])
    return paths


def remove_shim_sockets(paths) -> None:
    """Unlink the shims' sockets in containerd's fixed socket directory (and only there)."""
    for path in paths:
        if path.startswith(SHIM_SOCKET_DIR + "/"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def reap(pids, timeout: float = 2.0) -> None:
    """Collect the exit status of killed processes that are our children (the
    shims we adopted as subreaper), so that no zombie outlives the run."""
    deadline = time.monotonic() + timeout
    todo = set(pids)
    while todo:
        for pid in list(todo):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                todo.discard(pid)        # not ours, or already collected
                continue
            if done:
                todo.discard(pid)
        if not todo or time.monotonic() >= deadline:
            return
        time.sleep(0.01)


def cgroup_pids(name: str) -> set[int]:
    """Processes in the cgroup ``/name`` (and below) of any hierarchy."""
    pids = set()
    for path in glob.glob(os.path.join(CGROUP_ROOT, "*", name, "**", "cgroup.procs"), recursive=True):
        with contextlib.suppress(OSError, ValueError), open(path, encoding="utf-8") as fh:
            pids.update(int(x) for x in fh.read().split())
    return pids


def remove_cgroups(name: str) -> list[str]:
    """Remove the cgroup ``/name`` from every hierarchy; returns those left."""
    left = []
    with contextlib.suppress(OSError):
        for hier in os.listdir(CGROUP_ROOT):
            top = os.path.join(CGROUP_ROOT, hier, name)
            if not os.path.isdir(top):
                continue
            for dirpath, _, _ in sorted(os.walk(top), key=lambda t: -t[0].count("/")):
                for _ in range(50):
                    try:
                        os.rmdir(dirpath)
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        time.sleep(0.02)     # the last task is leaving
            if os.path.isdir(top):
                left.append(top)
    return left


#: how long a dead run's processes get to go before they are reported left
KILL_SECONDS = 10.0


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a process that still runs (a zombie has exited: only
    its parent's wait is missing, and it holds no mount or socket)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _processes_naming(text: str) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/cmdline", "rb") as fh:
                if text.encode() in fh.read():
                    found.add(int(entry))
    return found


def remove_leftovers() -> list[str]:
    """Remove what dead CRI runs left; one line per dead run saying what went
    (and what could not, to be removed by hand as root)."""
    report = []
    for path in sorted(glob.glob(os.path.join(tempfile.gettempdir(), "kmc*-cri-*"))):
        m = DIR_PATTERN.match(os.path.basename(path))
        if not m or not os.path.isdir(path):
            continue
        run_id = m.group(1)
        if not LOCKS.is_dead(run_id):
            continue                                   # a live run
        procs = _processes_naming(path)                # containerd and its shims
        procs |= proctree.descendants(procs) | cgroup_pids(f"kmc{run_id}")
        sockets = socket_paths(procs)
        seen = set(procs)
        # Until none is left, not a fixed number of rounds: on a loaded
        # machine a killed shim can take a second to go, and one still
        # running may start another (runc) in the meantime.
        deadline = time.monotonic() + KILL_SECONDS
        while procs and time.monotonic() < deadline:
            for pid in procs:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
            procs = ({p for p in procs | _processes_naming(path) if _alive(p)}
                     | cgroup_pids(f"kmc{run_id}"))
            seen |= procs
        remove_shim_sockets(sockets)
        failed = umount_all(path) + remove_cgroups(f"kmc{run_id}")
        shutil.rmtree(path, ignore_errors=True)
        if os.path.exists(path):
            failed.append(path)
        failed += [f"process {pid}" for pid in sorted(procs)]
        line = f"removed leftovers of killed CRI run {run_id}: {len(seen)} processes, its mounts, " \
               f"cgroups and {path}"
        if failed:
            line += f"; could not remove {', '.join(failed)} (remove them by hand as root)"
        report.append(line)
    return report

"""Every descendant of the processes a runner starts, found and killed.

Why a process group is not enough: a node's child that calls ``setsid()``
(a daemon, a ``start_new_session=True`` subprocess) leaves the group, and
``killpg`` no longer reaches it; a child that double-forks is not even a
descendant of the node any more once its parent exits — Linux reparents it
to init, where a ``ppid`` walk cannot find it.

What is done instead (Linux, ``prctl(2)``): the runner makes itself a
*child subreaper* (``PR_SET_CHILD_SUBREAPER``) for the length of the run, so
every orphan among its descendants is reparented to the runner rather than
to init. A :class:`ProcessTree` then finds, at any moment, everything a run
started: the descendants of the node processes (by walking ``/proc``'s parent
links), plus the runner's *adopted* children — children of the runner that
it did not start itself and that did not exist before the run. It kills them
with SIGKILL, repeatedly, until none is left, and reaps the adopted ones
(they are the runner's children now: nobody else will).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time

PR_SET_CHILD_SUBREAPER = 36        # linux/prctl.h
PR_GET_CHILD_SUBREAPER = 37


def _prctl(option: int, arg: int) -> int:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, arg, 0, 0, 0)
    except (OSError, AttributeError):
        return -1


def is_subreaper() -> bool:
    flag = ctypes.c_int(0)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    return bool(flag.value)


def parents() -> dict[int, int]:
    """pid -> parent pid of every live, non-zombie process (one ``/proc`` scan)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] in (b"Z", b"X"):
            continue
        out[int(entry)] = int(fields[1])
    return out


def descendants(roots, table: dict[int, int] | None = None) -> set[int]:
    """Every live descendant of ``roots`` (the roots themselves excluded)."""
    table = parents() if table is None else table
    children: dict[int, list[int]] = {}
    for pid, ppid in table.items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    todo = list(roots)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


class ProcessTree:
    """What one run started. Use as a context manager around the run::

        with ProcessTree() as tree:
            ... start nodes ..., tree.add(pid)
            ...
            tree.kill_all()          # also done on exit
    """

    def __init__(self):
        self.me = os.getpid()
        self.roots: set[int] = set()
        self.before: set[int] = set()
        self._was_subreaper = False
        self.subreaper = False

    def __enter__(self) -> ProcessTree:
        self.before = {p for p, pp in parents().items() if pp == self.me}
        self._was_subreaper = is_subreaper()
        self.subreaper = self._was_subreaper or _prctl(PR_SET_CHILD_SUBREAPER, 1) == 0
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.kill_all()
        finally:
            if self.subreaper and not self._was_subreaper:
                _prctl(PR_SET_CHILD_SUBREAPER, 0)

    def add(self, pid: int) -> None:
        """A process the runner started (a node): it and all below it go at the end."""
        self.roots.add(pid)

    def members(self) -> set[int]:
        """Live processes of this run: descendants of the roots, and orphans
        the runner adopted (and theirs). The roots themselves are included."""
        table = parents()
        adopted = {p for p, pp in table.items()
                   if pp == self.me and p not in self.before and p not in self.roots}
        live_roots = {p for p in self.roots if p in table}
        return live_roots | adopted | descendants(live_roots | adopted, table)

    def kill_all(self, timeout: float = 5.0) -> list[int]:
        """SIGKILL every member until none is left; returns the pids that
        still lived after ``timeout`` seconds (normally none)."""
        deadline = time.monotonic() + timeout
        while True:
            left = self.members()
            for pid in left:
                _kill(pid)
            for pid in left - self.roots:
                _reap(pid)          # adopted orphans are ours to reap; others' reaping fails harmlessly
            if not left or time.monotonic() > deadline:
                return sorted(left)
            time.sleep(0.02)

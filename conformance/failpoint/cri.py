"""Faults against a CRI runtime, as the model's fault transitions name them.

``kill``
    A running workload container's process is killed from outside the
    runtime (SIGKILL to its init process, found in runc's state): the
    model's ``ContainerDied`` with exit code 137, at some moment after the
    signal — the runtime notices asynchronously.
``restart``
    The runtime daemon is killed (SIGKILL) and started again on the same
    root and state; shims and containers live on: the model's
    ``RuntimeRestart``. No call is in flight while it happens (the workload
    is one sequential client), so it shows only in what later calls answer.
    A *quiet* restart: no container is about to exit when containerd goes
    down (the workload waits a second after starting a container that exits
    by itself), and the next call waits until the CRI plugin has recovered.
``restart-racing``
    The same without the waiting: containers exit while containerd
    recovers. containerd 1.6 then loses exit events — a container stays
    RUNNING after its process is gone, and a stop of it hangs — the race of
    containerd issue #10390 (fixed upstream by pull request #11579, in
    2.0/2.1, not in Debian's 1.6): a run with this fault finds it, in some
    runs and not others. Opt-in for that reason (``--faults kill,restart-racing``).

Each fault is recorded as one operation of process ``-1``: ``kill`` with
``{"container_id": real id}``, ``restart`` / ``restart-racing`` with ``{}``; ``ok`` once done
(with ``{"down_seconds": S}`` for a restart), ``fail`` when it could not be
done (the container was already gone).

Both need the runner's own containerd (:class:`conformance.adapters.cri.runtime.LocalContainerd`):
with ``--endpoint`` no fault is injected.
"""

from __future__ import annotations

import contextlib
import os
import signal

from kubemc.conformance.runner.args import fault_names

FAULTS = ("kill", "restart", "restart-racing")
RESTARTS = ("restart", "restart-racing")
FAULT_PROCESS = -1


def parse_faults(text: str) -> tuple[str, ...]:
    """``kill,restart`` | ``none`` → tuple (BadInput for an unknown name)."""
    return fault_names("--faults", FAULTS, text)


def kill_container(runtime, container_id: str) -> tuple[str, dict]:
    """SIGKILL the container's init process; ``(outcome, value)`` for the history."""
    pid = runtime.container_pid(container_id)
    if pid is None or not _in_container(pid, container_id):
        # runc's state outlives the process, and its pid may have been reused:
        # only a process in the container's own cgroup is killed
        return "fail", {"error": "no live process (the container has already exited)"}
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return "fail", {"error": "no live process (the container has already exited)"}
    return "ok", {"pid": pid}


def _in_container(pid: int, container_id: str) -> bool:
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8") as fh:
            return container_id in fh.read()
    except OSError:
        return False


def restart_runtime(runtime, quiet: bool = True) -> tuple[str, dict]:
    with contextlib.suppress(Exception):
        runtime.reap()
    down = runtime.restart(signal.SIGKILL, wait_recovered=quiet)
    return "ok", {"down_seconds": round(down, 3), "quiet": quiet}

"""A throwaway one-node Ray cluster on loopback, for the tests and
``kubemc bench explore-parallel``.

``ray start --head`` runs in a session of its own, bound to 127.0.0.1 with
every port chosen free (two heads at once — a pytest-xdist run — do not
collide), in its own temporary directory, and told that this machine is a
one-node cluster (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``: otherwise Ray
replaces 127.0.0.1 by the host's routable address and listens there). On
leaving, that session's processes — and only those — are terminated, then
killed: ``ray stop`` would stop every Ray head on the machine, other runs'
included.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import attrs

from kubemc.checker.errors import MissingEnvironment

#: Ray's AF_UNIX sockets live under the temp dir, and a socket path holds at
#: most 107 bytes: a longer directory is replaced by a short one of our own
MAX_TEMP_DIR = 40
LOCAL_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
PORT_FLAGS = ("--ray-client-server-port", "--dashboard-port", "--node-manager-port",
              "--object-manager-port", "--dashboard-agent-listen-port",
              "--dashboard-agent-grpc-port", "--metrics-export-port",
              "--runtime-env-agent-port")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session_processes(sid: int) -> list[int]:
    """Live processes of session ``sid`` (Linux /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid and fields[0] != "Z":
                out.append(int(entry))
    return out


def end_session(sid: int) -> list[int]:
    """SIGTERM, then SIGKILL, every process of session ``sid``; the ones left."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        for pid in session_processes(sid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while session_processes(sid) and time.monotonic() < deadline:
            time.sleep(0.2)
    return session_processes(sid)


@attrs.frozen(slots=True)
class LocalHead:
    """A running local head: its address, and the session its processes
    (the head's and every worker's the raylet starts) belong to."""

    address: str
    session: int

    def processes(self) -> list[int]:
        return session_processes(self.session)


@contextlib.contextmanager
def local_head(temp_dir: str | None = None, cpus: int = 2, start_timeout: float = 180):
    """Yield a :class:`LocalHead` at ``127.0.0.1:PORT`` with ``cpus`` CPUs."""
    if shutil.which("ray") is None:
        raise MissingEnvironment("the `ray` command is missing: pip install 'kubemc[ray]'")
    own_temp = None
    if temp_dir is None or len(temp_dir) > MAX_TEMP_DIR:
        temp_dir = own_temp = tempfile.mkdtemp(prefix="kubemc-ray-")
    port = free_port()
    command = ["ray", "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
               "--include-dashboard=false", f"--num-cpus={cpus}", f"--temp-dir={temp_dir}",
               "--disable-usage-stats", *(f"{flag}={free_port()}" for flag in PORT_FLAGS)]
    start = subprocess.Popen(command, env={**os.environ, **LOCAL_ONLY},
                             start_new_session=True, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    sid = start.pid
    left: list[int] = []
    try:
        out, _ = start.communicate(timeout=start_timeout)
        if start.returncode != 0:
            raise MissingEnvironment("ray start failed: "
                                     + " ".join(out.strip().splitlines()[-3:])[:300])
        yield LocalHead(f"127.0.0.1:{port}", sid)
    finally:
        if start.poll() is None:
            start.kill()
        left = end_session(sid)
        if own_temp is not None:
            shutil.rmtree(own_temp, ignore_errors=True)
    if left:
        raise RuntimeError(f"Ray processes {left} outlived the local head's teardown")

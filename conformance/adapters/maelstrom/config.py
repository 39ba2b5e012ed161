"""A Maelstrom run's configuration: the node command, and every number
checked before anything starts (one line and exit 2 for a bad one).
"""

from __future__ import annotations

import math
import os
import shlex
import shutil
from pathlib import Path

import attrs

from kubemc.checker.errors import BadInput


def parse_command(cmd: str) -> list[str]:
    """Split ``--bin`` like a shell would and check the program can be executed.

    Raises :class:`BadInput` with one line saying what is wrong.
    """
    try:
        argv = shlex.split(cmd)
    except ValueError as e:
        raise BadInput(f"--bin {cmd!r}: cannot split it into words like a shell would ({e})") from None
    if not argv:
        raise BadInput("--bin is empty: give the command that starts one node, "
                       "e.g. --bin 'python3 my_node.py'")
    prog = argv[0]
    if "/" not in prog:
        found = shutil.which(prog)
        if found is None:
            raise BadInput(f"--bin: {prog!r} is not a program on PATH")
        return argv
    path = Path(prog)
    if not path.exists():
        raise BadInput(f"--bin: {prog}: no such file")
    if path.is_dir():
        raise BadInput(f"--bin: {prog} is a directory, not a program")
    if not os.access(path, os.X_OK):
        raise BadInput(f"--bin: {prog} is not executable (chmod +x it, or name its "
                       f"interpreter: --bin 'python3 {prog}')")
    return argv


@attrs.frozen
class Config:
    command: tuple[str, ...]
    out: Path
    nodes: int = 3
    time_limit: float = 30.0
    rate: float = 50.0
    concurrency: int = 0                 # 0: two clients per node
    nemesis: str = "partition"           # "partition" | "none"
    nemesis_interval: float = 0.0        # 0: time_limit / 6, within [0.5, 10] s
    latency_ms: float = 5.0
    timeout: float = 1.0                 # per request
    init_timeout: float = 0.0            # 0: half the time limit, within [2, 10] s
    seed: int = 0
    keys: int = 3                        # keys in use at a time
    per_key_limit: int = 40
    values: int = 5                      # values are 0 .. values-1

    def __attrs_post_init__(self):
        if not self.command:
            raise BadInput("--bin is empty")
        for name, value in (("--time-limit", self.time_limit), ("--rate", self.rate),
                            ("--nemesis-interval", self.nemesis_interval),
                            ("--latency", self.latency_ms), ("--timeout", self.timeout),
                            ("init timeout", self.init_timeout)):
            if not math.isfinite(value):
                raise BadInput(f"{name} must be a finite number, not {value}: a run must end")
        checks = [
            (self.nodes >= 1, f"--nodes must be at least 1, not {self.nodes}"),
            (self.nodes <= 64, f"--nodes {self.nodes} is more than this runner supports (64)"),
            (self.time_limit > 0, f"--time-limit must be positive, not {self.time_limit}"),
            (self.rate > 0, f"--rate must be positive, not {self.rate}"),
            (self.concurrency >= 0, f"--concurrency must be positive, not {self.concurrency}"),
            (self.nemesis in ("partition", "none"),
             f"--nemesis must be 'partition' or 'none', not {self.nemesis!r}"),
            (self.nemesis_interval >= 0, "--nemesis-interval must be positive"),
            (self.latency_ms >= 0, f"--latency must be 0 or more, not {self.latency_ms}"),
            (self.timeout > 0, f"--timeout must be positive, not {self.timeout}"),
            (self.keys >= 1 and self.per_key_limit >= 1 and self.values >= 1,
             "keys, per-key limit and values must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise BadInput(message)

    @property
    def clients(self) -> int:
        return self.concurrency or 2 * self.nodes

    @property
    def partition_interval(self) -> float:
        return self.nemesis_interval or max(0.5, min(10.0, self.time_limit / 6))

    @property
    def init_wait(self) -> float:
        return self.init_timeout or max(2.0, min(10.0, self.time_limit / 2))

    def node_ids(self) -> list[str]:
        return [f"n{i}" for i in range(self.nodes)]

    def to_json(self) -> dict:
        return {"command": shlex.join(self.command), "nodes": self.nodes,
                "time_limit": self.time_limit, "rate": self.rate, "concurrency": self.clients,
                "nemesis": self.nemesis, "nemesis_interval": self.partition_interval,
                "latency_ms": self.latency_ms, "timeout": self.timeout,
                "init_timeout": self.init_wait, "seed": self.seed, "keys": self.keys,
                "per_key_limit": self.per_key_limit, "out": str(self.out)}


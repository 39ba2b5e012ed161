"""``kubemc conform maelstrom``: run any program that speaks the Maelstrom protocol.

What it does: starts N copies of a command (the *nodes* ``n0 … n(N-1)``),
puts a simulated network between them, drives the lin-kv workload from
client nodes ``c1 … cK``, injects partitions, records the history with
:class:`conformance.history.Recorder`, and judges it (linearizability of a
register per key, plus the protocol itself).

The protocol (Maelstrom's ``doc/protocol.md``; lin-kv in ``doc/workloads.md``,
both at https://github.com/jepsen-io/maelstrom):

* a node reads one JSON message per line on stdin and writes one per line on
  stdout; a message is ``{"src", "dest", "body"}`` and a body has a string
  ``type``, an optional integer ``msg_id`` and, in a reply, ``in_reply_to``;
  stdout carries nothing else (logs go to stderr);
* the runner first sends ``init {node_id, node_ids}`` and awaits ``init_ok``;
* lin-kv: ``read {key}`` → ``read_ok {value}``, ``write {key, value}`` →
  ``write_ok``, ``cas {key, from, to}`` → ``cas_ok``; ``cas`` answers error 20
  when the key does not exist and 22 when ``from`` does not match;
* ``error {code, text}``: codes 0–999 are Maelstrom's, each *definite* (the
  operation did not and never will happen) or *indefinite* (it may have
  happened, may happen later); custom codes are indefinite (see
  :data:`ERRORS`).

Decisions, written down:

* **How a reply becomes a history event.** A reply of the matching type is
  ``ok``; a definite error is ``fail``; an indefinite error, a timeout, a
  reply of the wrong shape, or a node that exits with the request
  outstanding is ``info`` (unknown). Two refinements, both forced by the
  register model (:mod:`conformance.model.register`): a ``read`` answered
  with error 20 (key-does-not-exist) is an ``ok`` read of nil, which is
  exactly what the model's nil means and lets the checker catch a store that
  forgets keys; and a failed ``cas`` means "the compare did not hold" there,
  so only errors 20 and 22 make a cas ``fail`` — a cas refused with another
  definite error (11, 14, 30, …) did not happen but observed nothing, and is
  recorded ``info``, which is always sound. After an ``info`` the client
  takes a fresh process number (process + concurrency), as Jepsen does: its
  old request may still be in flight.
* **The network.** Every message goes through the runner: it is parsed,
  checked, and delivered after an exponentially distributed delay (mean
  ``latency_ms``; messages can overtake each other). A partition splits the
  nodes into two random halves and drops every node-to-node message between
  them, checked when a message is sent and again when it is delivered.
  Client-to-node traffic is never partitioned (as in Maelstrom, where the
  partition nemesis cuts the nodes' network, not the clients').
* **The workload.** ``concurrency`` clients, each with one request
  outstanding, each bound to node ``n((i-1) mod N)`` while that node lives;
  they wait a random pause between requests so that all together issue about
  ``rate`` requests per second. Requests are read, write and cas in equal
  parts on small integer values; each key takes at most ``per_key_limit``
  operations and is then retired for a fresh one, which keeps every key's
  sub-history small enough to check exactly (Jepsen's independent keys).
* **What the program is held to — no more than Maelstrom holds it to.**
  Each rule was checked against Maelstrom's ``doc/protocol.md`` and its code
  (``src/maelstrom/net.clj``, ``process.clj``, ``client.clj``, ``db.clj``):

  - every node answers ``init`` with ``init_ok`` (``db.clj`` fails the test
    otherwise);
  - every stdout line is a JSON object with string ``src`` and ``dest`` and a
    ``body`` (``process.clj`` ``parse-msg`` throws on anything else; the body
    of a node-to-node message may be any JSON, as the ``Message`` schema of
    ``net.clj`` says);
  - ``src`` and ``dest`` name a known node or client (``net.clj``
    ``validate-msg`` asserts exactly this): a node may re-send a client's
    message to another node with ``src`` unchanged — Maelstrom's own demo
    Raft forwards requests to its leader so — and the receiver answers the
    client directly. Such relays, and a ``src`` naming someone who never sent
    the node anything, are counted in a note, never failed;
  - no node exits before the run ends (``process.clj`` reports a crashed
    node at teardown).

  Maelstrom's client ignores a reply that answers none of its outstanding
  requests (``client.clj``, ``sync-client-recv!``), and records a reply of
  the wrong shape as an unknown outcome; kubemc does both, and counts them in
  a note. Beyond the protocol, kubemc asks that at least one operation
  succeeds (a store that never answers is not shown correct by an empty
  history; Maelstrom's ``availability`` option, off by default for lin-kv,
  is the same kind of check). Two resource bounds are kubemc's own: a stdout
  line longer than ``MAX_LINE`` is a protocol error, and a node's stderr is
  kept up to ``MAX_STDERR`` bytes (the rest is read and dropped, and noted).
* **Time and cleanup.** The time limit counts from the moment the nodes are
  started. Nodes that have not answered ``init`` within ``init_timeout``
  end the run. After the limit, clients wait at most ``timeout`` for the
  replies outstanding; then every node's stdin is closed, its process group
  gets SIGTERM and, half a second later, SIGKILL; then every remaining
  descendant — also one that left the group with ``setsid`` or double-forked
  — gets SIGKILL (:mod:`conformance.runner.proctree`: the runner is a child
  subreaper for the run) — on success, on failure, on an exception, on
  Ctrl-C and on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import shlex
import shutil
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import attrs

from kubemc.checker.errors import BadInput
from kubemc.conformance.history import FAIL, INFO, OK, Recorder
from kubemc.conformance.runner.proctree import ProcessTree

# code -> (name, definite); Maelstrom doc/protocol.md, "Errors".
ERRORS: dict[int, tuple[str, bool]] = {
    0: ("timeout", False),
    1: ("node-not-found", True),
    10: ("not-supported", True),
    11: ("temporarily-unavailable", True),
    12: ("malformed-request", True),
    13: ("crash", False),
    14: ("abort", True),
    20: ("key-does-not-exist", True),
    21: ("key-already-exists", True),
    22: ("precondition-failed", True),
    30: ("txn-conflict", True),
}
KEY_DOES_NOT_EXIST, PRECONDITION_FAILED = 20, 22

MAX_LINE = 1 << 20            # a longer stdout line is a protocol error
MAX_STDERR = 8 << 20          # bytes of a node's stderr kept on disk; the rest is dropped
MAX_BACKLOG = 8 << 20         # bytes queued for a node that does not read its stdin
HISTORY = "history.jsonl"
ADMIN = "c0"                  # the runner's own client id, used for init
EXAMPLES_PER_KIND = 5

# Problems that fail the run, by kind, with the sentence that explains each.
PROBLEM_KINDS = {
    "init": "did not complete the init handshake",
    "exited": "exited before the end of the run",
    "garbage": "wrote a line on stdout that is not a Maelstrom message",
    "unknown-src": "sent a message whose src names no node or client",
    "unknown-dest": "sent a message to a node or client that does not exist",
}

# What Maelstrom accepts but a reader may want to know: counted, shown as notes.
NOTE_KINDS = {
    "relayed": "messages re-sent with another node's or client's src (Maelstrom allows this)",
    "unheard-src": "messages whose src names a node or client that never sent the node anything",
    "unexpected-reply": "replies that answer none of the client's outstanding requests "
                        "(ignored, as Maelstrom's client ignores them)",
    "bad-reply": "replies of the wrong type or shape (recorded as unknown outcomes, as "
                 "Maelstrom records them)",
}


def error_info(code: Any) -> tuple[str, bool]:
    """(name, definite) for an error code; unknown and custom codes are indefinite."""
    if isinstance(code, int) and not isinstance(code, bool) and code in ERRORS:
        return ERRORS[code]
    return (f"error-{code}", False)


def classify(f: str, request: dict, reply: dict | None) -> tuple[str, Any, str | None]:
    """How one lin-kv reply becomes a history completion.

    Returns ``(type, value, problem)``: ``type`` is ``ok``/``fail``/``info``,
    ``value`` is the completion's value in the register model's shapes
    (read: the value; write: the value written; cas: ``[from, to]``), and
    ``problem`` is a description when the reply breaks the protocol.
    ``reply`` is ``None`` for a timeout.
    """
    if reply is None:
        return INFO, None, None
    kind = reply.get("type")
    if kind == "error":
        code = reply.get("code")
        if not isinstance(code, int) or isinstance(code, bool):
            return INFO, None, f"error reply without an integer code: {_short(reply)}"
        name, definite = error_info(code)
        if f == "read" and code == KEY_DOES_NOT_EXIST:
            return OK, None, None
        if f == "cas" and code not in (KEY_DOES_NOT_EXIST, PRECONDITION_FAILED):
            # The register model reads a failed cas as "the compare did not
            # hold"; a cas refused for another reason did not happen either,
            # but claimed nothing about the value: unknown is the sound record.
            definite = False
        if definite:   # the history format wants [from, to] for a cas, whatever its outcome
            value = [request["from"], request["to"]] if f == "cas" else {"error": code,
                                                                          "name": name}
            return FAIL, value, None
        return INFO, {"error": code, "name": name}, None
    if kind == f"{f}_ok":
        if f == "read":
            if "value" not in reply:
                return INFO, None, f"read_ok without a value: {_short(reply)}"
            return OK, reply["value"], None
        if f == "write":
            return OK, request["value"], None
        return OK, [request["from"], request["to"]], None
    return INFO, None, f"{f} answered with {kind!r}: {_short(reply)}"


def _short(obj: Any, limit: int = 160) -> str:
    text = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


@attrs.define
class Problem:
    kind: str
    node: str | None
    at: float                  # seconds since the nodes were started
    detail: str

    def to_json(self) -> dict:
        return {"kind": self.kind, "node": self.node, "at": round(self.at, 3),
                "detail": self.detail}


@attrs.define(eq=False)
class Node:
    id: str
    proc: Any = None                 # asyncio.subprocess.Process
    pid: int | None = None
    stderr_path: Path | None = None
    init_ok: bool = False
    init_at: float | None = None
    exit_status: int | None = None
    exit_at: float | None = None
    lines_out: int = 0
    messages_in: int = 0
    last_out_at: float | None = None
    backlog_dropped: int = 0
    stderr_bytes: int = 0            # written by the node, kept or not
    heard_from: set = attrs.Factory(set)   # srcs of the messages delivered to the node
    stopping: bool = False
    crashed: bool = False            # exited on its own, before the run ended

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.exit_status is None

    def stderr_tail(self, lines: int = 3) -> list[str]:
        try:
            with open(self.stderr_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - 4096))
                text = fh.read().decode("utf-8", "replace")
        except (OSError, TypeError):
            return []
        return [ln for ln in text.splitlines() if ln.strip()][-lines:]

    def report(self) -> dict:
        return {"id": self.id, "pid": self.pid, "init_ok": self.init_ok,
                "exit_status": self.exit_status,
                "exited_at": None if self.exit_at is None else round(self.exit_at, 3),
                "lines_out": self.lines_out, "messages_in": self.messages_in,
                "stdin_backlog_dropped": self.backlog_dropped,
                "stderr_bytes": self.stderr_bytes,
                "stderr": str(self.stderr_path) if self.stderr_path else None,
                "stderr_tail": self.stderr_tail()}


@attrs.define(eq=False)
class _Pending:
    future: asyncio.Future
    target: str


@attrs.define(eq=False)
class _Client:
    id: str
    index: int                       # 1-based
    process: int
    home: str
    next_msg_id: int = 0
    pending: dict = attrs.Factory(dict)          # msg_id -> _Pending
    timed_out: set = attrs.Factory(set)
    answered: set = attrs.Factory(set)


class _Keys:
    """Keys in use: ``count`` at a time, each retired after ``limit`` operations."""

    def __init__(self, count: int, limit: int):
        self.limit = limit
        self.active = list(range(count))
        self.used = Counter()
        self.next = count

    def pick(self, rng: random.Random) -> int:
        i = rng.randrange(len(self.active))
        key = self.active[i]
        self.used[key] += 1
        if self.used[key] >= self.limit:
            self.active[i] = self.next
            self.next += 1
        return key


@attrs.define
class Outcome:
    """Everything a run observed; :mod:`conformance.adapters.maelstrom.cli` judges and reports it."""

    config: Config
    recorder: Recorder
    nodes: list[Node]
    problems: list[Problem]
    problem_counts: dict[str, int]
    notes: list[str]
    partitions: list[dict]
    started: float                   # wall clock (time.time()) when the nodes started
    t0_ns: int = 0                   # the same instant on the history's clock (monotonic ns)
    elapsed: float = 0.0             # seconds, nodes started → last node gone
    workload_seconds: float = 0.0
    messages: dict = attrs.Factory(dict)
    late_replies: int = 0
    interrupted: bool = False

    @property
    def pids(self) -> list[int]:
        return [n.pid for n in self.nodes if n.pid is not None]


class _Runner:
    def __init__(self, cfg: Config, recorder: Recorder, progress):
        self.cfg = cfg
        self.rec = recorder
        self.progress = progress
        self.rng = random.Random(cfg.seed)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.t0 = 0.0
        self.nodes = {nid: Node(nid) for nid in cfg.node_ids()}
        self.clients: dict[str, _Client] = {}
        self.problems: list[Problem] = []
        self.problem_counts: Counter = Counter()
        self.observations: Counter = Counter()     # NOTE_KINDS -> count
        self.observation_examples: dict[str, str] = {}
        self.notes: list[str] = []
        self.partition: dict[str, int] | None = None
        self.partitions: list[dict] = []
        self.keys = _Keys(cfg.keys, cfg.per_key_limit)
        self.deadline = 0.0
        self.stopping = False
        self.workload_started: float | None = None
        self.workload_ended: float | None = None
        self.stats = Counter()
        self.late_replies = 0
        self.init_msg_ids: dict[str, int] = {}
        self.tasks: list[asyncio.Task] = []
        self.all_dead = asyncio.Event()
        self.terminated: int | None = None       # the stop signal that arrived, if any
        self.tree = ProcessTree()

    # -- time and problems -------------------------------------------------

    def now(self) -> float:
        return self.loop.time() - self.t0

    def problem(self, kind: str, node: str | None, detail: str) -> None:
        self.problem_counts[kind] += 1
        if sum(1 for p in self.problems if p.kind == kind) < EXAMPLES_PER_KIND:
            self.problems.append(Problem(kind, node, self.now(), detail))

    def observe(self, kind: str, detail: str) -> None:
        """Something Maelstrom accepts, counted for a note (:data:`NOTE_KINDS`)."""
        self.observations[kind] += 1
        self.observation_examples.setdefault(kind, detail)

    def observation_notes(self) -> list[str]:
        return [f"{n} {NOTE_KINDS[k]}; first: {self.observation_examples[k]}"
                for k, n in self.observations.items()]

    # -- processes ------------------------------------------------------------

    async def spawn(self) -> None:
        self.cfg.out.mkdir(parents=True, exist_ok=True)
        for node in self.nodes.values():
            try:
                node.proc = await asyncio.create_subprocess_exec(
                    *self.cfg.command, stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                    start_new_session=True, limit=MAX_LINE)
            except OSError as e:
                raise BadInput(f"--bin {shlex.join(self.cfg.command)}: cannot execute it: "
                               f"{e.strerror or e}") from None
            node.pid = node.proc.pid
            self.tree.add(node.pid)
            _LIVE_GROUPS.add(node.pid)
            node.stderr_path = self.cfg.out / f"{node.id}.stderr.log"

    async def keep_stderr(self, node: Node) -> None:
        """Copy the node's stderr to its log, up to :data:`MAX_STDERR` bytes; read
        and drop the rest, so that a node that floods stderr neither fills the
        disk nor blocks on a full pipe."""
        reader = node.proc.stderr
        # created exclusively: the output directory was checked empty before the run
        with open(node.stderr_path, "xb") as log:
            while True:
                chunk = await reader.read(1 << 16)
                if not chunk:
                    break
                kept = max(0, min(len(chunk), MAX_STDERR - node.stderr_bytes))
                if kept:
                    log.write(chunk[:kept])
                    log.flush()
                node.stderr_bytes += len(chunk)
            if node.stderr_bytes > MAX_STDERR:
                log.write(f"\n[kubemc: stderr cut at {MAX_STDERR} bytes; "
                          f"{node.stderr_bytes - MAX_STDERR} more were dropped]\n".encode())

    async def watch(self, node: Node) -> None:
        status = await node.proc.wait()
        node.exit_status, node.exit_at = status, self.now()
        if not node.stopping:
            node.crashed = True
            how = (f"was killed by signal {-status}" if status < 0 else f"exited with status {status}")
            phase = "before answering init" if not node.init_ok else f"at {node.exit_at:.1f} s"
            tail = node.stderr_tail(1)
            self.problem("exited", node.id, f"{node.id} {how} {phase}"
                         + (f"; its stderr ends: {tail[-1]!r}" if tail else ""))
        for client in self.clients.values():
            for p in client.pending.values():
                if p.target == node.id and not p.future.done():
                    p.future.set_result({"type": "__exited__"})
        if not any(n.alive for n in self.nodes.values()):
            self.all_dead.set()

    async def read(self, node: Node) -> None:
        reader = node.proc.stdout
        count = 0
        while True:
            try:
                line = await reader.readline()
            except ValueError:
                node.lines_out += 1
                self.problem("garbage", node.id, f"{node.id} wrote a line longer than "
                             f"{MAX_LINE} bytes")
                continue
            if not line:
                return
            node.lines_out += 1
            node.last_out_at = self.now()
            try:
                self.on_line(node, line)
            except Exception as e:  # noqa: BLE001 - one bad line must not end the reader
                self.problem("garbage", node.id, f"{node.id} wrote a line the runner could not "
                             f"handle ({type(e).__name__}: {_short(str(e))}): "
                             f"{_short(line.decode('utf-8', 'replace'))!r}")
            count += 1
            if count % 32 == 0:
                await asyncio.sleep(0)       # a node that floods stdout must not starve the clock

    async def stop_nodes(self) -> None:
        live = [n for n in self.nodes.values() if n.proc is not None]
        for n in live:
            n.stopping = True
            try:
                if n.proc.stdin is not None and not n.proc.stdin.is_closing():
                    n.proc.stdin.close()
            except Exception:  # noqa: BLE001 — a broken pipe is fine here
                pass
        for n in live:
            _killpg(n.pid, signal.SIGTERM)
        waits = [asyncio.ensure_future(n.proc.wait()) for n in live if n.exit_status is None]
        if waits:
            await asyncio.wait(waits, timeout=0.5)
        for n in live:
            _killpg(n.pid, signal.SIGKILL)
        # what left the group (setsid, double fork) is still a descendant, or
        # an orphan the runner adopted as subreaper: kill it too
        left = await self.loop.run_in_executor(None, self.tree.kill_all)
        if left:
            self.notes.append(f"processes {left} started by the nodes survived SIGKILL")
        waits = [w for w in waits if not w.done()]
        if waits:
            await asyncio.wait(waits, timeout=2.0)
        for n in live:
            _LIVE_GROUPS.discard(n.pid)

    # -- the network ---------------------------------------------------------

    def delay(self) -> float:
        mean = self.cfg.latency_ms / 1000.0
        if mean <= 0:
            return 0.0
        return min(self.rng.expovariate(1.0 / mean), 10 * mean)

    def blocked(self, src: str, dest: str) -> bool:
        p = self.partition
        return p is not None and src in p and dest in p and p[src] != p[dest]

    def send(self, src: str, dest: str, data: bytes) -> None:
        """Put a message on the wire; ``dest`` is a node. Partitions judge the
        message's ``src`` and ``dest``, as Maelstrom's network does (a
        receiver drops what comes from a source it is cut off from)."""
        if self.blocked(src, dest):
            self.stats["dropped"] += 1
            return
        self.stats["sent"] += 1
        self.loop.call_later(self.delay(), self.deliver, src, dest, data)

    def deliver(self, src: str, dest: str, data: bytes) -> None:
        node = self.nodes[dest]
        if self.blocked(src, dest):
            self.stats["dropped"] += 1
            return
        self.write(node, data, src)

    def write(self, node: Node, data: bytes, src: str | None = None) -> None:
        stdin = node.proc.stdin if node.proc is not None else None
        if not node.alive or node.stopping or stdin is None or stdin.is_closing():
            self.stats["undeliverable"] += 1
            return
        if stdin.transport.get_write_buffer_size() > MAX_BACKLOG:
            node.backlog_dropped += 1
            self.stats["undeliverable"] += 1
            return
        try:
            stdin.write(data)
            node.messages_in += 1
            if src is not None:
                node.heard_from.add(src)
        except (BrokenPipeError, ConnectionResetError, RuntimeError):
            self.stats["undeliverable"] += 1

    def on_line(self, node: Node, raw: bytes) -> None:
        text = raw.strip()
        if not text:
            return
        try:
            msg = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            self.problem("garbage", node.id, f"{node.id} wrote {_short(text.decode('utf-8', 'replace'))!r}")
            return
        except RecursionError:
            self.problem("garbage", node.id, f"{node.id} wrote JSON nested too deeply to read "
                         f"({len(text)} bytes): {_short(text.decode('utf-8', 'replace'))!r}")
            return
        if not (isinstance(msg, dict) and isinstance(msg.get("src"), str)
                and isinstance(msg.get("dest"), str) and "body" in msg):
            self.problem("garbage", node.id, f"{node.id} wrote {_short(msg)}, not a message "
                         "{\"src\", \"dest\", \"body\"}")
            return
        src, dest, body = msg["src"], msg["dest"], msg["body"]
        if not self.known(src):
            self.problem("unknown-src", node.id, f"{node.id} sent a message with src {src!r}, "
                         f"which names no node or client: {_short(msg)}")
            return
        if not self.known(dest):
            self.problem("unknown-dest", node.id, f"{node.id} sent a message to {dest!r}: "
                         f"{_short(msg)}")
            return
        if src != node.id:
            self.observe("relayed", f"{node.id} sent {_short(msg, 120)}")
            if src not in node.heard_from:
                self.observe("unheard-src", f"{node.id} sent {_short(msg, 120)}")
        if dest in self.nodes:
            self.send(src, dest, text + b"\n")
        elif not isinstance(body, dict) or not isinstance(body.get("type"), str):
            self.observe("bad-reply", f"{node.id} sent {dest} {_short(body)}")
        elif dest == ADMIN:
            self.on_admin_reply(node, body)
        else:
            self.stats["sent"] += 1
            self.loop.call_later(self.delay(), self.on_client_reply, self.clients[dest], node, body)

    def known(self, name: str) -> bool:
        """A node or a client of this run (Maelstrom's ``validate-msg``)."""
        return name in self.nodes or name == ADMIN or name in self.clients

    # -- init ------------------------------------------------------------------

    def on_admin_reply(self, node: Node, body: dict) -> None:
        expected = self.init_msg_ids.get(node.id)
        if body.get("in_reply_to") != expected or expected is None or node.init_ok:
            self.observe("unexpected-reply", f"{node.id} sent {ADMIN} {_short(body)}")
            return
        if body["type"] != "init_ok":
            self.problem("init", node.id, f"{node.id} answered init with {_short(body)}")
            self.init_msg_ids[node.id] = None
            return
        node.init_ok, node.init_at = True, self.now()

    async def init(self) -> bool:
        ids = self.cfg.node_ids()
        for i, node in enumerate(self.nodes.values()):
            self.init_msg_ids[node.id] = i + 1
            body = {"type": "init", "msg_id": i + 1, "node_id": node.id, "node_ids": ids}
            self.write(node, _encode(ADMIN, node.id, body), ADMIN)
        limit = self.loop.time() + self.cfg.init_wait
        while self.loop.time() < limit:
            waiting = [n for n in self.nodes.values() if not n.init_ok]
            if not waiting or all(not n.alive or self.init_msg_ids.get(n.id) is None
                                  for n in waiting):
                break
            await asyncio.sleep(0.01)
        for n in self.nodes.values():
            if not n.init_ok and n.alive and self.init_msg_ids.get(n.id) is not None:
                self.problem("init", n.id, f"{n.id} did not answer init within "
                             f"{self.cfg.init_wait:g} s")
        return all(n.init_ok for n in self.nodes.values())

    # -- clients -----------------------------------------------------------------

    def target(self, client: _Client) -> str | None:
        if self.nodes[client.home].alive:
            return client.home
        alive = [nid for nid, n in self.nodes.items() if n.alive]
        return alive[client.index % len(alive)] if alive else None

    def on_client_reply(self, client: _Client, node: Node, body: dict) -> None:
        irt = body.get("in_reply_to")
        pending = client.pending.get(irt) if isinstance(irt, int) else None
        if pending is not None and not pending.future.done():
            pending.future.set_result(body)
        elif irt in client.timed_out:
            self.late_replies += 1
        elif irt in client.answered:
            self.observe("unexpected-reply", f"{node.id} answered {client.id}'s request "
                         f"{irt} a second time: {_short(body)}")
        else:
            self.observe("unexpected-reply", f"{node.id} sent {client.id} {_short(body)}")

    def next_op(self, rng: random.Random) -> tuple[str, int, Any, dict]:
        key = self.keys.pick(rng)
        f = rng.choice(("read", "write", "cas"))
        if f == "read":
            return f, key, None, {"type": "read", "key": key}
        if f == "write":
            v = rng.randrange(self.cfg.values)
            return f, key, v, {"type": "write", "key": key, "value": v}
        a, b = rng.randrange(self.cfg.values), rng.randrange(self.cfg.values)
        return f, key, [a, b], {"type": "cas", "key": key, "from": a, "to": b}

    async def client(self, client: _Client) -> None:
        rng = random.Random(f"{self.cfg.seed}/{client.id}")
        gap = self.cfg.clients / self.cfg.rate
        due = self.loop.time()
        while not self.stopping:
            # Pauses are counted from the previous *scheduled* start, so the time a
            # request takes comes out of the pause (the rate holds while latency
            # stays below the gap), but a slow request never causes a burst.
            due = max(due + rng.uniform(0, 2 * gap), self.loop.time())
            if due >= self.deadline:
                return
            await asyncio.sleep(due - self.loop.time())
            target = self.target(client)
            if target is None or self.stopping:
                return
            f, key, value, body = self.next_op(rng)
            client.next_msg_id += 1
            mid = client.next_msg_id
            body["msg_id"] = mid
            token = self.rec.invoke(client.process, f, str(key), value)
            fut = self.loop.create_future()
            client.pending[mid] = _Pending(fut, target)
            self.stats["sent"] += 1
            self.loop.call_later(self.delay(), self.write, self.nodes[target],
                                 _encode(client.id, target, body), client.id)
            done, _ = await asyncio.wait([fut], timeout=self.cfg.timeout)
            del client.pending[mid]
            reply = fut.result() if done else None
            if reply is None:
                client.timed_out.add(mid)
            else:
                client.answered.add(mid)
            if reply is not None and reply.get("type") == "__exited__":
                typ, val, issue = INFO, None, None
            else:
                typ, val, issue = classify(f, body, reply)
            if issue:
                self.observe("bad-reply", f"{target}: {issue}")
            self.rec.complete(token, typ, val)
            self.stats[typ] += 1
            if typ == INFO:
                client.process += self.cfg.clients

    # -- nemesis -----------------------------------------------------------------

    async def nemesis(self) -> None:
        if self.cfg.nemesis != "partition":
            return
        if self.cfg.nodes < 2:
            self.notes.append("no partitions: a single node has no one to be cut off from")
            return
        rng = random.Random(f"{self.cfg.seed}/nemesis")
        interval = self.cfg.partition_interval
        ids = self.cfg.node_ids()
        try:
            while True:
                await asyncio.sleep(interval)
                if self.loop.time() + 0.1 >= self.deadline or self.stopping:
                    return
                order = ids[:]
                rng.shuffle(order)
                half = len(order) // 2
                sides = [sorted(order[:half]), sorted(order[half:])]
                self.partition = {n: 0 for n in sides[0]} | {n: 1 for n in sides[1]}
                record = {"start": round(self.now(), 3), "end": None, "sides": sides}
                self.partitions.append(record)
                await asyncio.sleep(min(interval, max(0.0, self.deadline - self.loop.time())))
                self.partition = None
                record["end"] = round(self.now(), 3)
        finally:
            if self.partition is not None:
                self.partition = None
                if self.partitions and self.partitions[-1]["end"] is None:
                    self.partitions[-1]["end"] = round(self.now(), 3)

    # -- progress ------------------------------------------------------------------

    def progress_line(self) -> str:
        s = self.stats
        ops = s[OK] + s[FAIL] + s[INFO]
        part = f"partitions {len(self.partitions)}"
        if self.partition:
            sides = [[n for n, side in self.partition.items() if side == k] for k in (0, 1)]
            part += f" (now {' '.join(sides[0])} | {' '.join(sides[1])})"
        alive = sum(1 for n in self.nodes.values() if n.alive)
        up = "done" if self.stopping else f"nodes up {alive}/{self.cfg.nodes}"
        return (f"maelstrom lin-kv · ops {ops} (ok {s[OK]}, fail {s[FAIL]}, info {s[INFO]}) · "
                f"{part} · {up} · {self.now():.1f}/{self.cfg.time_limit:g} s")

    async def show_progress(self) -> None:
        while True:
            self.progress(self.progress_line())
            await asyncio.sleep(0.25)

    # -- the run -------------------------------------------------------------------

    async def main(self, outcome: Outcome) -> None:
        self.loop = asyncio.get_running_loop()
        self.t0 = self.loop.time()
        outcome.t0_ns = int(self.t0 * 1e9)   # asyncio's clock is time.monotonic
        main_task = asyncio.current_task()

        def terminate(signum):
            self.terminated = signum
            main_task.cancel()

        for signum in (signal.SIGTERM, signal.SIGHUP):
            try:   # they stop a run as Ctrl-C does (asyncio.run handles SIGINT)
                self.loop.add_signal_handler(signum, terminate, signum)
            except (ValueError, RuntimeError, NotImplementedError):
                pass                     # not the main thread: no signal handling there
        self.deadline = self.t0 + self.cfg.time_limit
        ticker = None
        try:
            await self.spawn()
            for node in self.nodes.values():
                self.tasks.append(asyncio.create_task(self.read(node)))
                self.tasks.append(asyncio.create_task(self.watch(node)))
                self.tasks.append(asyncio.create_task(self.keep_stderr(node)))
            if self.progress is not None:
                ticker = asyncio.create_task(self.show_progress())
                self.tasks.append(ticker)
            if await self.init():
                await self.workload()
        finally:
            self.stopping = True
            if ticker is not None:
                ticker.cancel()
            await self.stop_nodes()
            # the readers end at EOF once the nodes are gone; a moment for the rest
            if self.tasks:
                await asyncio.wait(self.tasks, timeout=1.0)
            for t in self.tasks:
                t.cancel()
            for t, res in zip(self.tasks, await asyncio.gather(*self.tasks, return_exceptions=True)):
                if isinstance(res, Exception):
                    self.notes.append(f"runner task {t.get_coro().__qualname__} failed: "
                                      f"{type(res).__name__}: {res}")
            outcome.elapsed = self.now()
            if self.progress is not None:
                self.progress(self.progress_line())

    async def workload(self) -> None:
        for i in range(1, self.cfg.clients + 1):
            home = self.cfg.node_ids()[(i - 1) % self.cfg.nodes]
            self.clients[f"c{i}"] = _Client(f"c{i}", i, i - 1, home)
        self.workload_started = self.now()
        clients = [asyncio.create_task(self.client(c)) for c in self.clients.values()]
        nemesis = asyncio.create_task(self.nemesis())
        dead = asyncio.create_task(self.all_dead.wait())
        try:
            # run until the time limit, or until every node has exited
            await asyncio.wait([dead], timeout=max(0.0, self.deadline - self.loop.time()))
            if self.all_dead.is_set():
                self.notes.append(f"every node had exited at {self.now():.1f} s: the workload "
                                  "stopped early")
            self.stopping = True
            # outstanding requests have at most `timeout` left
            await asyncio.wait(clients, timeout=self.cfg.timeout + 0.5)
        finally:
            self.stopping = True
            self.workload_ended = self.now()
            for t in (*clients, nemesis, dead):
                t.cancel()
            await asyncio.gather(*clients, nemesis, dead, return_exceptions=True)


def _encode(src: str, dest: str, body: dict) -> bytes:
    return json.dumps({"src": src, "dest": dest, "body": body},
                      separators=(",", ":")).encode() + b"\n"


# Process groups started and not yet known to be gone: a last-resort cleanup
# (e.g. a second Ctrl-C during shutdown) kills them synchronously.
_LIVE_GROUPS: set[int] = set()


def _killpg(pgid: int | None, sig: int) -> None:
    if pgid is None:
        return
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def kill_leftovers(tree: ProcessTree | None = None) -> None:
    for pgid in list(_LIVE_GROUPS):
        _killpg(pgid, signal.SIGKILL)
        _LIVE_GROUPS.discard(pgid)
    if tree is not None:
        tree.kill_all()


def run(cfg: Config, progress=None) -> Outcome:
    """Run the nodes, the workload and the nemesis; return what was observed.

    ``progress``, if given, is called a few times a second with a one-line
    status. Raises :class:`BadInput` when the command cannot be executed,
    ``KeyboardInterrupt`` on Ctrl-C and :class:`conformance.runner.signals.Interrupted`
    on SIGTERM or SIGHUP — in every case after every process started here,
    and every process those started, is gone. The history is not judged here: see
    :func:`conformance.adapters.maelstrom.cli.judge`.
    """
    recorder = Recorder(meta={"model": "register", "target": "maelstrom",
                              "workload": "lin-kv", "seed": cfg.seed,
                              "command": shlex.join(cfg.command)})
    runner = _Runner(cfg, recorder, progress)
    outcome = Outcome(cfg, recorder, list(runner.nodes.values()), runner.problems,
                      runner.problem_counts, runner.notes, runner.partitions, time.time())
    from kubemc.conformance.runner.signals import Interrupted

    try:
        with runner.tree:
            try:
                asyncio.run(runner.main(outcome))
            finally:
                kill_leftovers(runner.tree)
    except asyncio.CancelledError:
        if runner.terminated is None:
            raise
        outcome.interrupted = True
        raise Interrupted(runner.terminated) from None
    except KeyboardInterrupt:
        outcome.interrupted = True
        raise
    finally:
        try:
            if cfg.out.is_dir() and not (cfg.out / HISTORY).exists():
                recorder.write_jsonl(cfg.out / HISTORY)
        except OSError:
            pass
        outcome.problem_counts = dict(runner.problem_counts)
        outcome.notes.extend(runner.observation_notes())
        outcome.late_replies = runner.late_replies
        outcome.messages = {k: runner.stats[k] for k in ("sent", "dropped", "undeliverable")}
        if runner.workload_started is not None:
            outcome.workload_seconds = (runner.workload_ended or outcome.elapsed) - runner.workload_started
        for n in outcome.nodes:
            if n.stderr_bytes > MAX_STDERR:
                outcome.notes.append(f"{n.id} wrote {n.stderr_bytes} bytes on stderr: the first "
                                     f"{MAX_STDERR} are in {n.stderr_path}, the rest was dropped")
            if n.backlog_dropped:
                outcome.notes.append(f"{n.id} stopped reading its stdin: {n.backlog_dropped} "
                                     "messages to it were dropped")
        if runner.late_replies:
            outcome.notes.append(f"{runner.late_replies} replies arrived after their request "
                                 f"had timed out ({cfg.timeout:g} s)")
    return outcome

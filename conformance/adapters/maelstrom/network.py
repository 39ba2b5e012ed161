"""The nodes of a Maelstrom run and the simulated network between them.

Every message goes through the runner: it is parsed, checked, and delivered
after an exponentially distributed delay (mean ``latency_ms``; messages can
overtake each other). A partition (set by :mod:`conformance.failpoint.maelstrom`)
drops every node-to-node message between its two sides, checked when a
message is sent and again when it is delivered. Client-to-node traffic is
never partitioned (as in Maelstrom, where the partition nemesis cuts the
nodes' network, not the clients').

What a node is held to — no more than Maelstrom holds it to — is decided
here: a line that is not a message, or names no known node or client, is a
*problem* (:data:`PROBLEM_KINDS`, it fails the run); what Maelstrom accepts
but a reader may want to know (relayed messages, replies answering nothing)
is an *observation*, counted in a note (:data:`NOTE_KINDS`). The network
knows nothing of the workload: messages to a client go to a
:class:`ClientSide` (:mod:`conformance.traffic.maelstrom`).

Processes: each node is a process group; stopping closes its stdin, sends
SIGTERM, then SIGKILL, then kills every remaining descendant — also one that
left the group with ``setsid`` or double-forked
(:mod:`conformance.runner.proctree`: the runner is a child subreaper).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shlex
import signal
from collections import Counter
from pathlib import Path
from typing import Any, Protocol

import attrs

from kubemc.checker.errors import BadInput
from kubemc.conformance.adapters.maelstrom.config import Config
from kubemc.conformance.adapters.maelstrom.protocol import (ADMIN, MAX_LINE, NOTE_KINDS, encode,
                                                            short)
from kubemc.conformance.runner.proctree import ProcessTree

MAX_STDERR = 8 << 20          # bytes of a node's stderr kept on disk; the rest is dropped
MAX_BACKLOG = 8 << 20         # bytes queued for a node that does not read its stdin
EXAMPLES_PER_KIND = 5


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



class ClientSide(Protocol):
    """Where the network hands what is addressed to a client (the workload)."""

    def on_reply(self, client_id: str, node: Node, body: dict) -> None: ...

    def on_node_exit(self, node_id: str) -> None: ...


class Network:
    """The nodes, their processes, and the simulated network between them."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.t0 = 0.0
        self.nodes = {nid: Node(nid) for nid in cfg.node_ids()}
        self.clients: dict[str, Any] = {}          # client id -> the workload's client
        self.client_side: ClientSide | None = None
        self.problems: list[Problem] = []
        self.problem_counts: Counter = Counter()
        self.observations: Counter = Counter()     # NOTE_KINDS -> count
        self.observation_examples: dict[str, str] = {}
        self.notes: list[str] = []
        #: node -> side while a partition is in force (:mod:`conformance.failpoint.maelstrom`)
        self.partition: dict[str, int] | None = None
        self.partitions: list[dict] = []
        self.deadline = 0.0
        self.stopping = False
        self.stats: Counter = Counter()
        self.init_msg_ids: dict[str, int | None] = {}
        self.all_dead = asyncio.Event()
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
            how = (f"was killed by signal {-status}" if status < 0
                   else f"exited with status {status}")
            phase = "before answering init" if not node.init_ok else f"at {node.exit_at:.1f} s"
            tail = node.stderr_tail(1)
            self.problem("exited", node.id, f"{node.id} {how} {phase}"
                         + (f"; its stderr ends: {tail[-1]!r}" if tail else ""))
        if self.client_side is not None:
            self.client_side.on_node_exit(node.id)
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
                             f"handle ({type(e).__name__}: {short(str(e))}): "
                             f"{short(line.decode('utf-8', 'replace'))!r}")
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
            self.problem("garbage", node.id,
                         f"{node.id} wrote {short(text.decode('utf-8', 'replace'))!r}")
            return
        except RecursionError:
            self.problem("garbage", node.id, f"{node.id} wrote JSON nested too deeply to read "
                         f"({len(text)} bytes): {short(text.decode('utf-8', 'replace'))!r}")
            return
        if not (isinstance(msg, dict) and isinstance(msg.get("src"), str)
                and isinstance(msg.get("dest"), str) and "body" in msg):
            self.problem("garbage", node.id, f"{node.id} wrote {short(msg)}, not a message "
                         "{\"src\", \"dest\", \"body\"}")
            return
        src, dest, body = msg["src"], msg["dest"], msg["body"]
        if not self.known(src):
            self.problem("unknown-src", node.id, f"{node.id} sent a message with src {src!r}, "
                         f"which names no node or client: {short(msg)}")
            return
        if not self.known(dest):
            self.problem("unknown-dest", node.id, f"{node.id} sent a message to {dest!r}: "
                         f"{short(msg)}")
            return
        if src != node.id:
            self.observe("relayed", f"{node.id} sent {short(msg, 120)}")
            if src not in node.heard_from:
                self.observe("unheard-src", f"{node.id} sent {short(msg, 120)}")
        if dest in self.nodes:
            self.send(src, dest, text + b"\n")
        elif not isinstance(body, dict) or not isinstance(body.get("type"), str):
            self.observe("bad-reply", f"{node.id} sent {dest} {short(body)}")
        elif dest == ADMIN:
            self.on_admin_reply(node, body)
        else:
            self.stats["sent"] += 1
            self.loop.call_later(self.delay(), self.client_side.on_reply, dest, node, body)

    def known(self, name: str) -> bool:
        """A node or a client of this run (Maelstrom's ``validate-msg``)."""
        return name in self.nodes or name == ADMIN or name in self.clients

    # -- init ------------------------------------------------------------------

    def on_admin_reply(self, node: Node, body: dict) -> None:
        expected = self.init_msg_ids.get(node.id)
        if body.get("in_reply_to") != expected or expected is None or node.init_ok:
            self.observe("unexpected-reply", f"{node.id} sent {ADMIN} {short(body)}")
            return
        if body["type"] != "init_ok":
            self.problem("init", node.id, f"{node.id} answered init with {short(body)}")
            self.init_msg_ids[node.id] = None
            return
        node.init_ok, node.init_at = True, self.now()

    async def init(self) -> bool:
        ids = self.cfg.node_ids()
        for i, node in enumerate(self.nodes.values()):
            self.init_msg_ids[node.id] = i + 1
            body = {"type": "init", "msg_id": i + 1, "node_id": node.id, "node_ids": ids}
            self.write(node, encode(ADMIN, node.id, body), ADMIN)
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


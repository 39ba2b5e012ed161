"""``kubemc conform maelstrom``: run any program that speaks the Maelstrom protocol.

What it does: starts N copies of a command (the *nodes* ``n0 … n(N-1)``),
puts a simulated network between them, drives the lin-kv workload from
client nodes ``c1 … cK``, injects partitions, records the history with
:class:`conformance.history.Recorder`, and judges it (linearizability of a
register per key, plus the protocol itself).

The run is split the way etcd's runner is: the protocol
(:mod:`.protocol`), the nodes and the simulated network (:mod:`.network`),
the lin-kv workload (:mod:`conformance.traffic.maelstrom`), the partitions
(:mod:`conformance.failpoint.maelstrom`), the checks
(:mod:`conformance.validate.maelstrom`) and the reports
(:mod:`conformance.report.maelstrom`); this module starts, runs and stops
them, and keeps what was observed (:class:`MaelstromObservation`).

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
import shlex
import signal
import time

import attrs

from kubemc.conformance.adapters.maelstrom.config import Config
from kubemc.conformance.adapters.maelstrom.network import (MAX_STDERR, Network, Node, Problem,
                                                           kill_leftovers)
from kubemc.conformance.failpoint.maelstrom import partitions
from kubemc.conformance.history import FAIL, INFO, OK, Recorder
from kubemc.conformance.runner.signals import Interrupted
from kubemc.conformance.traffic.maelstrom import LinKv

HISTORY = "history.jsonl"


@attrs.define
class MaelstromObservation:
    """Everything a run observed; :func:`conformance.validate.maelstrom.judge`
    judges it and :mod:`conformance.report.maelstrom` reports it."""

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



def progress_line(net: Network) -> str:
    """``maelstrom lin-kv · ops 812 (ok 700, fail 90, info 22) · partitions 3 · …``"""
    s = net.stats
    ops = s[OK] + s[FAIL] + s[INFO]
    part = f"partitions {len(net.partitions)}"
    if net.partition:
        sides = [[n for n, side in net.partition.items() if side == k] for k in (0, 1)]
        part += f" (now {' '.join(sides[0])} | {' '.join(sides[1])})"
    alive = sum(1 for n in net.nodes.values() if n.alive)
    up = "done" if net.stopping else f"nodes up {alive}/{net.cfg.nodes}"
    return (f"maelstrom lin-kv · ops {ops} (ok {s[OK]}, fail {s[FAIL]}, info {s[INFO]}) · "
            f"{part} · {up} · {net.now():.1f}/{net.cfg.time_limit:g} s")


class _Run:
    """One run's tasks: the node readers, the workload, the nemesis, the progress."""

    def __init__(self, cfg: Config, recorder: Recorder, progress):
        self.cfg = cfg
        self.net = Network(cfg)
        self.workload = LinKv(self.net, recorder)
        self.progress = progress
        self.tasks: list[asyncio.Task] = []
        self.terminated: int | None = None       # the stop signal that arrived, if any
        self.workload_started: float | None = None
        self.workload_ended: float | None = None

    async def show_progress(self) -> None:
        while True:
            self.progress(progress_line(self.net))
            await asyncio.sleep(0.25)

    async def main(self, observed: MaelstromObservation) -> None:
        net = self.net
        net.loop = asyncio.get_running_loop()
        net.t0 = net.loop.time()
        observed.t0_ns = int(net.t0 * 1e9)   # asyncio's clock is time.monotonic
        main_task = asyncio.current_task()

        def terminate(signum):
            self.terminated = signum
            main_task.cancel()

        for signum in (signal.SIGTERM, signal.SIGHUP):
            try:   # they stop a run as Ctrl-C does (asyncio.run handles SIGINT)
                net.loop.add_signal_handler(signum, terminate, signum)
            except (ValueError, RuntimeError, NotImplementedError):
                pass                     # not the main thread: no signal handling there
        net.deadline = net.t0 + self.cfg.time_limit
        ticker = None
        try:
            await net.spawn()
            for node in net.nodes.values():
                self.tasks.append(asyncio.create_task(net.read(node)))
                self.tasks.append(asyncio.create_task(net.watch(node)))
                self.tasks.append(asyncio.create_task(net.keep_stderr(node)))
            if self.progress is not None:
                ticker = asyncio.create_task(self.show_progress())
                self.tasks.append(ticker)
            if await net.init():
                await self.drive()
        finally:
            net.stopping = True
            if ticker is not None:
                ticker.cancel()
            await net.stop_nodes()
            # the readers end at EOF once the nodes are gone; a moment for the rest
            if self.tasks:
                await asyncio.wait(self.tasks, timeout=1.0)
            for t in self.tasks:
                t.cancel()
            results = await asyncio.gather(*self.tasks, return_exceptions=True)
            for t, res in zip(self.tasks, results):
                if isinstance(res, Exception):
                    net.notes.append(f"runner task {t.get_coro().__qualname__} failed: "
                                     f"{type(res).__name__}: {res}")
            observed.elapsed = net.now()
            if self.progress is not None:
                self.progress(progress_line(net))

    async def drive(self) -> None:
        """The workload and the nemesis, until the time limit or until every node has exited."""
        net = self.net
        self.workload_started = net.now()
        clients = self.workload.start()
        nemesis = asyncio.create_task(partitions(net))
        dead = asyncio.create_task(net.all_dead.wait())
        try:
            await asyncio.wait([dead], timeout=max(0.0, net.deadline - net.loop.time()))
            if net.all_dead.is_set():
                net.notes.append(f"every node had exited at {net.now():.1f} s: the workload "
                                 "stopped early")
            net.stopping = True
            # outstanding requests have at most `timeout` left
            await asyncio.wait(clients, timeout=self.cfg.timeout + 0.5)
        finally:
            net.stopping = True
            self.workload_ended = net.now()
            for t in (*clients, nemesis, dead):
                t.cancel()
            await asyncio.gather(*clients, nemesis, dead, return_exceptions=True)


def run(cfg: Config, progress=None) -> MaelstromObservation:
    """Run the nodes, the workload and the nemesis; return what was observed.

    ``progress``, if given, is called a few times a second with a one-line
    status. Raises :class:`BadInput` when the command cannot be executed,
    ``KeyboardInterrupt`` on Ctrl-C and :class:`conformance.runner.signals.Interrupted`
    on SIGTERM or SIGHUP — in every case after every process started here,
    and every process those started, is gone. The history is not judged here: see
    :func:`conformance.validate.maelstrom.judge`.
    """
    recorder = Recorder(meta={"model": "register", "target": "maelstrom",
                              "workload": "lin-kv", "seed": cfg.seed,
                              "command": shlex.join(cfg.command)})
    runner = _Run(cfg, recorder, progress)
    net = runner.net
    observed = MaelstromObservation(cfg, recorder, list(net.nodes.values()), net.problems,
                                    net.problem_counts, net.notes, net.partitions, time.time())
    try:
        with net.tree:
            try:
                asyncio.run(runner.main(observed))
            finally:
                kill_leftovers(net.tree)
    except asyncio.CancelledError:
        if runner.terminated is None:
            raise
        observed.interrupted = True
        raise Interrupted(runner.terminated) from None
    except KeyboardInterrupt:
        observed.interrupted = True
        raise
    finally:
        try:
            if cfg.out.is_dir() and not (cfg.out / HISTORY).exists():
                recorder.write_jsonl(cfg.out / HISTORY)
        except OSError:
            pass
        observed.problem_counts = dict(net.problem_counts)
        observed.notes.extend(net.observation_notes())
        observed.late_replies = runner.workload.late_replies
        observed.messages = {k: net.stats[k] for k in ("sent", "dropped", "undeliverable")}
        if runner.workload_started is not None:
            observed.workload_seconds = ((runner.workload_ended or observed.elapsed)
                                         - runner.workload_started)
        for n in observed.nodes:
            if n.stderr_bytes > MAX_STDERR:
                observed.notes.append(f"{n.id} wrote {n.stderr_bytes} bytes on stderr: the first "
                                      f"{MAX_STDERR} are in {n.stderr_path}, the rest was dropped")
            if n.backlog_dropped:
                observed.notes.append(f"{n.id} stopped reading its stdin: {n.backlog_dropped} "
                                      "messages to it were dropped")
        if runner.workload.late_replies:
            observed.notes.append(f"{runner.workload.late_replies} replies arrived after their "
                                  f"request had timed out ({cfg.timeout:g} s)")
    return observed

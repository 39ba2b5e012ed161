"""Exhaustive exploration partitioned across worker processes (``kubemc
check --workers N``), and the coordinator that Ray actors share
(``checker.ray_search``).

The algorithm is the one of TLC's multi-worker mode and of distributed
explicit-state checkers such as DiVinE: the state space is partitioned by
fingerprint (``fingerprint mod W``), each worker owns its shard of the seen
set and of the frontier, and successors travel to their owner in batches.
The search is level-synchronous — a barrier after each breadth-first level
— which is what keeps counterexamples shortest: a violation found at
level ``d`` is reported only once every shorter behaviour has been
checked. What a worker does in a level is ``checker.shard``'s; this module
runs the levels, detects termination (a level with no new state),
violations and ``--max-states``, and turns the result into the
``checker.explore.ExploreOutcome`` one process gives.

What is guaranteed, against one process on the same model and bounds:

* the same distinct-state count, transitions, depth and covers on a
  complete search;
* the same verdict, and on a violation *the same counterexample*: the
  same property, the same steps and states (each new state keeps its
  smallest path key, which rebuilds the one-process search tree; see
  ``checker.shard``), rebuilt and replayed by the same code
  (``Explorer._violated``);
* ``--max-states N`` is checked between levels: each worker keeps at most
  its share of the states left to N, and the search stops (undecided)
  once N are reached or a worker had to drop one — at most N + W - 1
  states, where one process stops a little past N;
* liveness properties are judged after a complete parallel safety search,
  by ``checker.liveness``'s cycle detection in the coordinator, on the
  graph the workers recorded (their states, predicate bits and edges,
  gathered and numbered as one process numbers them: the same graph, so
  the same verdict and lasso; ``liveness_search: graph gathered from the
  workers``). When the search's canonical form is a symmetry liveness may
  not use, the workers record nothing and the one-process graph search on
  concrete states judges them instead (``liveness_search: one process``,
  and a line on stderr). The cycle detection itself is not partitioned.

Fingerprints must agree between workers. Worker processes are forked from
the coordinator, so they share its string-hash seed; Ray actors are
started with a fixed ``PYTHONHASHSEED``. Every worker hashes a probe value
at start and a disagreement is refused (a node on another Python).

Cleanup: workers are child processes that ignore SIGINT (the coordinator
decides), die with the coordinator (``PR_SET_PDEATHSIG``), read an
end-of-file on their pipe as "stop", and are stopped, then terminated,
then killed by the coordinator on success, violation, error, Ctrl-C and
SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Sequence

import attrs

from kubemc.checker.explore import Explorer, ExploreOutcome, Stats
from kubemc.checker.shard import KEY_WIDTH, ModelSpec, ShardWorker, gathers_graph, path_of
from kubemc.model.kernel import Machine
from kubemc.properties.core import LIVENESS_KINDS, Property


#: what a row's figures say when its liveness properties were judged by the
#: one-process graph search after the parallel safety search
LIVENESS_IN_ONE_PROCESS = "one process"
#: ... and when they were judged on the graph the workers recorded
LIVENESS_ON_GATHERED_GRAPH = "graph gathered from the workers"


class WorkerFailed(RuntimeError):
    """A worker raised: its traceback is the message (an internal error)."""


# ---------------------------------------------------------------------------
# the coordinator
# ---------------------------------------------------------------------------


def search(machine: Machine, props: Sequence[Property], pool, *,
           max_states: int | None = None,
           progress: Callable[[Stats], None] | None = None) -> ExploreOutcome:
    """Run the partitioned search on ``pool`` (workers already started on
    the model's spec) and judge what one process judges. ``machine`` is the
    coordinator's own copy, used only to rebuild a counterexample and for
    liveness."""
    start = time.perf_counter()
    count = pool.count
    reports = pool.start()
    probes = {r.fingerprint for r in reports}
    if len(probes) > 1:
        from kubemc.checker.errors import MissingEnvironment

        raise MissingEnvironment("the workers' fingerprints disagree (another Python or "
                                 "PYTHONHASHSEED on some node): run every node on the same "
                                 "Python and kubemc")
    transitions, depth, complete = 0, 0, True
    violation = _first(reports)
    while violation is None:
        states = sum(r.states for r in reports)
        queue = sum(r.frontier for r in reports)
        if progress is not None:
            progress(Stats(states, transitions, depth, queue, time.perf_counter() - start))
        if queue == 0:
            break
        if max_states is not None and states >= max_states:
            complete = False
            break
        budget = None
        if max_states is not None:
            budget = -(-(max_states - states) // count)
        expanded = pool.expand()
        transitions += sum(r.transitions for r in expanded)
        depth += 1
        reports = pool.absorb(budget)
        violation = _first(list(expanded) + list(reports))
        if violation is None and any(r.cut for r in reports):
            # states were dropped: nothing after this level would be exhaustive
            complete = False
            break
    states = sum(r.states for r in reports)
    queue = sum(r.frontier for r in reports)
    if violation is None and complete and queue == 0:
        depth = max(depth - 1, 0)  # the last level expanded found nothing new
    covers = {p.name: p.name in set().union(*(r.covers for r in reports))
              for p in props if p.kind == "cover"}
    explorer = Explorer(machine, props)
    # the row's figures (``ExploreOutcome.liveness`` is merged into them) say how it ran
    how = {"parallel_backend": pool.kind, "parallel_workers": count}
    if violation is not None:
        out = _violated(explorer, violation, start, depth, transitions, queue)
        return attrs.evolve(out, stats=Stats(states, transitions, depth, queue,
                                             time.perf_counter() - start), covers=covers,
                            liveness=how)
    stats = Stats(states, transitions, depth, queue, time.perf_counter() - start)
    liveness = [p for p in props if p.kind in LIVENESS_KINDS]
    if not liveness:
        return ExploreOutcome(stats, complete, covers=covers, liveness=how)
    if not complete:
        return ExploreOutcome(stats, complete, covers=covers,
                       undecided=tuple(p.name for p in liveness), liveness=how)
    from kubemc.checker import liveness as live_engine

    if gathers_graph(machine, props):
        graph = gather_graph(machine, liveness, pool.graph_parts())
        live = live_engine.decide(machine, graph, liveness, complete)
        return ExploreOutcome(stats, complete, live.counterexample, covers, live.undecided,
                       {**live.figures, **how, "liveness_search": LIVENESS_ON_GATHERED_GRAPH})
    live = live_engine.check(machine, liveness, max_states=max_states)
    return ExploreOutcome(stats, complete, live.counterexample, covers, live.undecided,
                   {**live.figures, **how, "liveness_search": LIVENESS_IN_ONE_PROCESS})


def gather_graph(machine: Machine, liveness: Sequence[Property], parts):
    """The one-process search's graph (``checker.liveness.Graph``) from the
    shards' parts: states numbered in breadth-first discovery order (by
    depth, then key), parents from keys, edges in successor order, labels
    numbered in order of first use — the same numbering as one process, so
    ``liveness.decide`` finds the same lasso. Fingerprints are the
    coordinator's own, computed from keys when the lasso is rebuilt
    (:class:`_LocalFingerprints`)."""
    from kubemc.checker import liveness as live_engine
    from kubemc.model.kernel import SYSTEM

    start = time.perf_counter()
    g = live_engine.Graph()
    names = [k for k, _ in live_engine._predicates(liveness)]
    for name in names:
        g.holds[name] = bytearray()
    nodes = sorted((n for part in parts for n in part[0]), key=lambda n: (len(n[0]), n[0]))
    ids: dict[int, int] = {}
    by_key: dict[bytes, int] = {}
    for i, (key, fp, bits) in enumerate(nodes):
        ids[fp] = i
        by_key[key] = i
        g.parent.append(by_key[key[:-KEY_WIDTH]] if len(key) > KEY_WIDTH else -1)
        for name, bit in zip(names, bits, strict=True):
            g.holds[name].append(bit)
    del by_key
    expansions = [part[1:] for part in parts]
    owner = {fp: fp % len(parts) for _, fp, _ in nodes}
    strong = machine.strongly_fair
    for key, fp, _ in nodes:
        g.off.append(len(g.dst))
        ranges, targets, numbers, labels = expansions[owner[fp]]
        edges = ranges[key]
        if edges is None:
            g.expanded.append(0)
            g.truncated += 1
            continue
        g.expanded.append(1)
        for e in range(*edges):
            dst, step = targets[e], labels[numbers[e]]
            label = g.label_ids.get(step)
            if label is None:
                label = g.label_ids[step] = len(g.labels)
                g.labels.append(step)
                is_system = machine.tag(step) == SYSTEM
                g.system.append(is_system)
                g.strong.append(is_system and step.name in strong)
            g.dst.append(ids[dst])
            g.lab.append(label)
    g.off.append(len(g.dst))
    g.fps = _LocalFingerprints(machine, [key for key, _, _ in nodes])
    g.seconds = time.perf_counter() - start
    return g


class _LocalFingerprints:
    """``Graph.fps`` in the coordinator's hash: state ``i``'s fingerprint,
    computed when asked (only the lasso's states are) by walking its key
    on the coordinator's machine — a worker's hash may have another seed."""

    itemsize = 8

    def __init__(self, machine: Machine, keys: list[bytes]):
        self.machine, self.keys = machine, keys

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i: int) -> int:
        from kubemc.checker.liveness import representative

        m = self.machine
        canonical = representative(m)
        path = path_of(self.keys[i])
        state = canonical(next(s for j, s in enumerate(m.init_states()) if j == path[0]))
        for n in path[1:]:
            state = canonical(_nth(m.successors(state), n)[1])
        return hash(state)


def _first(reports):
    events = [r.violation for r in reports if r.violation is not None]
    return min(events, key=lambda e: e.order()) if events else None


def _violated(explorer: Explorer, event, start, depth, transitions, queue) -> ExploreOutcome:
    """The counterexample of ``event``, as one process rebuilds it: walk the
    event's key on the coordinator's machine to get the chain of
    fingerprints (hashed here, so they agree with the rebuild's), then
    ``Explorer._violated``."""
    m = explorer.machine
    path = path_of(event.key)
    prop = next(p for p in explorer.invariants + explorer.transitions
                if p.name == event.prop)
    step = None
    if event.kind == 0:  # a transition: the last index is the step taken
        path, last = path[:-1], path[-1]
    inits = list(m.init_states())
    state = m.canonical(inits[path[0]])
    chain = [hash(state)]
    for i in path[1:]:
        _, t = _nth(m.successors(state), i)
        state = m.canonical(t)
        chain.append(hash(state))
    if event.kind == 0:
        step, _ = _nth(m.successors(state), last)
    ups: list[int | None] = [None, *chain[:-1]]
    parent = dict(zip(chain, ups, strict=True))
    return explorer._violated(prop, parent, chain[-1], step, start, depth, transitions, queue)


def _nth(iterable, n):
    for i, item in enumerate(iterable):
        if i == n:
            return item
    raise RuntimeError("a worker's path does not replay on the coordinator's machine")


# ---------------------------------------------------------------------------
# worker processes on this machine
# ---------------------------------------------------------------------------


class ProcessPool:
    """``count`` forked worker processes, one pipe each. The coordinator
    relays the pickled batches between them as bytes (it never unpickles
    them)."""

    def __init__(self, spec: ModelSpec, count: int):
        import multiprocessing

        self.count = count
        self.kind = "processes"
        ctx = multiprocessing.get_context("fork")
        self.pipes, self.procs = [], []
        for i in range(count):
            here, there = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(there, spec, i, count),
                               name=f"kubemc-shard-{i}", daemon=True)
            proc.start()
            there.close()
            self.pipes.append(here)
            self.procs.append(proc)

    def _all(self, calls) -> list:
        for pipe, call in zip(self.pipes, calls, strict=True):
            pipe.send(call)
        out = []
        for i, pipe in enumerate(self.pipes):
            try:
                status, value = pipe.recv()
            except EOFError:
                raise WorkerFailed(f"worker {i} died (exit code "
                                   f"{self.procs[i].exitcode})") from None
            if status != "ok":
                raise WorkerFailed(f"worker {i} failed:\n{value}")
            out.append(value)
        return out

    def start(self):
        return self._all([("start", ())] * self.count)

    def expand(self):
        answers = self._all([("expand", ())] * self.count)
        self._batches = [batches for batches, _ in answers]
        return [report for _, report in answers]

    def absorb(self, budget):
        calls = [("absorb", ([self._batches[i][j] for i in range(self.count)], budget))
                 for j in range(self.count)]
        self._batches = None
        return self._all(calls)

    def usage(self) -> list[tuple[float, float]]:
        """Each worker's peak resident memory (MiB) and CPU seconds."""
        return self._all([("usage", ())] * self.count)

    def graph_parts(self) -> list:
        return self._all([("graph_part", ())] * self.count)

    def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError, ValueError):
                pipe.send(("stop", ()))
            pipe.close()
        deadline = time.monotonic() + 2
        for proc in self.procs:
            proc.join(max(0.0, deadline - time.monotonic()))
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(1)
            if proc.is_alive():
                proc.kill()
                proc.join()


def _serve(conn, spec: ModelSpec, index: int, count: int) -> None:
    """A worker process: answer the coordinator's calls until told to stop
    or its pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    try:
        worker = ShardWorker(spec, index, count)
    except BaseException:  # noqa: BLE001 - reported to the coordinator
        worker, failure = None, traceback.format_exc()
    while True:
        try:
            op, args = conn.recv()
        except (EOFError, OSError):
            return
        if op == "stop":
            return
        try:
            if worker is None:
                raise WorkerFailed(failure)
            conn.send(("ok", getattr(worker, op)(*args)))
        except BaseException:  # noqa: BLE001 - reported to the coordinator
            conn.send(("error", traceback.format_exc()))


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when the coordinator dies, even
    by SIGKILL (nothing else can clean up then)."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)


@contextlib.contextmanager
def terminated_on_sigterm():
    """SIGTERM raises KeyboardInterrupt in the coordinator while the block
    runs, so the same cleanup runs as on Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        # None: the handler was not installed from Python (Ray's, in C)
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


@contextlib.contextmanager
def process_pool(spec: ModelSpec, count: int):
    pool = None
    with terminated_on_sigterm():
        try:
            pool = ProcessPool(spec, count)
            yield pool
        finally:
            if pool is not None:
                pool.close()


def explore(spec: ModelSpec, machine: Machine, props: Sequence[Property], *,
            workers: int, ray_address: str | None = None, max_states: int | None = None,
            progress: Callable[[Stats], None] | None = None) -> ExploreOutcome:
    """The parallel search on ``workers`` processes here, or on ``workers``
    Ray actors of the cluster at ``ray_address``."""
    if ray_address is not None:
        from kubemc.checker.ray_search import actor_pool

        pool_of = actor_pool(ray_address)
    else:
        pool_of = process_pool
        workers = workers or os.cpu_count() or 1
    with pool_of(spec, workers) as pool:
        return search(machine, props, pool, max_states=max_states, progress=progress)


@attrs.frozen(slots=True)
class Parallel:
    """How ``kubemc check`` spreads the explore engine: ``workers`` processes
    here, or ``workers`` actors on the Ray cluster at ``ray_address`` (its CPU
    count when ``workers`` is None)."""

    workers: int | None = None
    ray_address: str | None = None

    def validate(self) -> None:
        """Refuse, before any work, what can be refused: a malformed Ray
        address (exit 2), no Ray or no cluster there (exit 3)."""
        if self.ray_address is not None:
            from kubemc.checker.ray_search import validate

            validate(self.ray_address)

    @property
    def backend(self) -> str:
        return "ray" if self.ray_address is not None else "processes"

    def explore(self, component: str, model, machine: Machine, props: Sequence[Property], *,
                mutant: str | None, bounds, max_states: int | None = None,
                progress: Callable[[Stats], None] | None = None) -> ExploreOutcome:
        spec = ModelSpec.of(component, model.name, mutant, bounds, props)
        return explore(spec, machine, props, workers=self.workers or 0,
                       ray_address=self.ray_address, max_states=max_states,
                       progress=progress)

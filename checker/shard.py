"""One worker of the partitioned breadth-first search: the shard of the
state space it owns, and the two halves of a level.

The search (``checker.parallel``) is level-synchronous. A state belongs to
worker ``fingerprint mod W``; each worker keeps the fingerprints it owns
(its shard of the seen set) and the frontier of its shard. A level is two
calls:

* :meth:`ShardWorker.expand` expands the worker's frontier, checks every
  transition property on every step, and sorts the successors by owner:
  one batch per other worker (pickled once, so a relay never unpickles
  it), its own kept in memory;
* :meth:`ShardWorker.absorb` takes the batches sent to it, keeps the states
  not seen before, checks the invariants and covers on them, and makes them
  its next frontier.

Why every state carries a *key* — the path of successor indices from an
initial state (two bytes an index, so bytes compare as the paths do): the
one-process search (``checker.explore``) keeps, for each new state, the
first way it was found, and that first way is the smallest path in this
order (a level is expanded in the order it was discovered, each state's
successors in the machine's order). Keeping the smallest key per new
state therefore rebuilds the one-process search tree exactly: the same
parent for every state, the same first violation (the smallest key of a
violating event), and so the same counterexample. The key also replaces
the parent pointer: the seen set holds bare fingerprints, and the
coordinator rebuilds a trace by walking the path on its own machine, so no
fingerprint ever crosses a process boundary to be compared with one
computed elsewhere except between the workers themselves.

Workers build their machine from a :class:`ModelSpec` through the catalog
— never a pickled machine (machines may hold lambdas).
"""

from __future__ import annotations

import pickle
from array import array
from collections.abc import Mapping
from typing import Any

import attrs

from kubemc.checker.liveness import _predicates
from kubemc.model.kernel import Step
from kubemc.properties.core import COVER, INVARIANT, TRANSITION

#: bytes per index of a key: a machine may offer at most 65,536 successors
#: from one state (and as many initial states)
KEY_WIDTH = 2
KEY_LIMIT = 1 << (8 * KEY_WIDTH)
#: a violation found while expanding (a transition) sorts before the
#: invariant violation of the state the same step discovers, as in the
#: one-process search, which checks the step before it looks at the state
TRANSITION_EVENT, INVARIANT_EVENT = 0, 1
#: what every worker hashes at start: the coordinator compares the answers,
#: so workers whose fingerprints disagree (another PYTHONHASHSEED, another
#: Python) are refused before they partition anything
FINGERPRINT_PROBE = ("kubemc", "fingerprint probe", 1, (2, "three"))


def gathers_graph(machine, props) -> bool:
    """Whether the workers record the graph for the coordinator to judge
    liveness on: there is a liveness property, and the canonical form the
    search uses is the one liveness may use (the identity, or one that keeps
    step labels — ``checker.liveness`` on symmetry). Otherwise liveness is
    judged by the one-process graph search on concrete states."""
    from kubemc.model.kernel import Machine

    return any(p.is_liveness for p in props) and (
        machine.canonical_keeps_steps or type(machine).canonical is Machine.canonical)


class KeyOverflow(RuntimeError):
    """A state with more successors than a key index holds."""


def index_bytes(i: int) -> bytes:
    if i >= KEY_LIMIT:
        raise KeyOverflow(f"a state with more than {KEY_LIMIT:,} successors (or initial "
                          "states): the parallel search cannot number them; run without "
                          "--workers")
    return i.to_bytes(KEY_WIDTH, "big")


#: every index's bytes, made once: the hot loop appends ``INDEX[i]``
INDEX = tuple(i.to_bytes(KEY_WIDTH, "big") for i in range(KEY_LIMIT))


def encode(batch: list) -> bytes:
    """A batch as bytes. Pickle, not marshal: measured on raft's batches
    both load equally fast, and pickle's memo makes a batch a third smaller
    (states share sub-tuples), which matters when it crosses a network."""
    return pickle.dumps(batch, protocol=5)


def decode(blob: bytes) -> list:
    return pickle.loads(blob)


def path_of(key: bytes) -> list[int]:
    """A key as the list of indices it encodes (initial state first)."""
    return [int.from_bytes(key[i:i + KEY_WIDTH], "big") for i in range(0, len(key), KEY_WIDTH)]


@attrs.frozen(slots=True)
class ModelSpec:
    """What a worker needs to build the same machine as the coordinator:
    names in the catalog and plain values, cheap to pickle, the same on
    every machine of a cluster."""

    component: str
    model: str
    mutant: str | None
    bounds: tuple  # of (name, value), the user's overrides
    properties: tuple  # names of the properties checked

    @classmethod
    def of(cls, component: str, model: str, mutant: str | None,
           bounds: Mapping[str, Any] | None, properties) -> ModelSpec:
        return cls(component, model, mutant, tuple(sorted((bounds or {}).items())),
                   tuple(p.name for p in properties))

    def build(self):
        """The machine and the properties, from the catalog."""
        from kubemc.checker.components import component

        model = next(m for m in component(self.component).models if m.name == self.model)
        machine = model.machine(self.mutant, **model.check_bounds(dict(self.bounds)))
        wanted = set(self.properties)
        return machine, tuple(p for p in model.properties if p.name in wanted)


@attrs.frozen(slots=True)
class Event:
    """A violation a worker saw: the key of the step or state, which kind
    sorts first on a tie, and the property."""

    key: bytes
    kind: int
    prop: str

    def order(self):
        return (self.key, self.kind)


@attrs.frozen(slots=True)
class LevelReport:
    """What a worker tells the coordinator after a half-level."""

    states: int  # states the worker owns
    frontier: int  # states in its next frontier
    transitions: int = 0
    violation: Event | None = None
    covers: frozenset = frozenset()  # cover properties reached so far
    fingerprint: int = 0  # hash(FINGERPRINT_PROBE) in this worker
    #: new states dropped by ``--max-states``' budget: the search is cut short
    cut: int = 0


class ShardWorker:
    """The worker's state and the two halves of a level (see the module
    text). The same class runs in a child process and as a Ray actor."""

    def __init__(self, spec: ModelSpec, index: int, count: int):
        self.machine, props = spec.build()
        self.index, self.count = index, count
        self.invariants = [(p.name, p.check) for p in props if p.kind == INVARIANT]
        self.transitions = [(p.name, p.check) for p in props if p.kind == TRANSITION]
        self.uncovered = [(p.name, p.check) for p in props if p.kind == COVER]
        self.reached: set[str] = set()
        #: the fingerprints this worker owns and has settled, and those of
        #: other workers' states it has sent them (their owner has them from
        #: the end of that level: sending one again would cost a pickle and
        #: a transfer to be dropped — half of raft's successors are such)
        self.seen: set[int] = set()
        self.owned = 0
        self.frontier: list[tuple[bytes, Any]] = []
        self.own: dict[int, tuple[bytes, Any]] = {}
        #: the graph this shard saw, for liveness (see ``graph_part``)
        self.recording = gathers_graph(self.machine, props)
        self.predicates = _predicates([p for p in props if p.is_liveness])
        self.nodes: list[tuple[bytes, int, bytes]] = []  # key, fingerprint, predicate bits
        # key -> (first, end) of its edges in the two flat arrays; None: not expanded
        self.expansions: dict[bytes, tuple[int, int] | None] = {}
        self.edge_targets = array("q")  # an edge's target fingerprint
        self.edge_labels = array("i")  # its step's number in ``labels``
        self.labels: dict[Step, int] = {}

    def start(self) -> LevelReport:
        """Level 0: the initial states this worker owns, deduplicated as
        the one-process search does (the first of a fingerprint wins)."""
        m, count, me = self.machine, self.count, self.index
        pending: dict[int, tuple[bytes, Any]] = {}
        for i, s in enumerate(m.init_states()):
            c = m.canonical(s)
            fp = hash(c)
            if fp % count == me and fp not in pending:
                pending[fp] = (index_bytes(i), c)
        report = self._settle(pending, budget=None)
        return attrs.evolve(report, fingerprint=hash(FINGERPRINT_PROBE))

    def expand(self) -> tuple[list[bytes], LevelReport]:
        """Expand the frontier: check transition properties, and sort the
        successors by owner. Returns one batch per worker (empty for this
        one, whose states stay here) and the report."""
        m = self.machine
        canonical, within, successors = m.canonical, m.within_bounds, m.successors
        transitions = self.transitions
        count, me, seen = self.count, self.index, self.seen
        out: list[dict[int, tuple[bytes, Any]]] = [{} for _ in range(count)]
        mine = out[me]
        index = INDEX
        edges = 0
        violation = None
        for key, s in self.frontier:
            if not within(s):
                if self.recording:
                    self.expansions[key] = None
                continue
            first = len(self.edge_targets)
            for i, (step, t) in enumerate(successors(s)):
                if i >= KEY_LIMIT:  # checked, not caught: an IndexError is the machine's
                    raise KeyOverflow(f"a state with more than {KEY_LIMIT:,} successors: the "
                                      "parallel search cannot number them; run without "
                                      "--workers")
                edges += 1
                for name, check in transitions:
                    if not check(m, s, step, t):
                        # every later step of this worker has a larger key
                        violation = Event(key + index[i], TRANSITION_EVENT, name)
                        break
                if violation is not None:
                    break
                c = canonical(t)
                fp = hash(c)
                if self.recording:
                    self.edge_targets.append(fp)
                    self.edge_labels.append(self.labels.setdefault(step, len(self.labels)))
                batch = out[fp % count]
                # the frontier is in key order: the first way found is the smallest
                if fp in batch or fp in seen:
                    continue
                batch[fp] = (key + index[i], c)
            if self.recording:
                self.expansions[key] = (first, len(self.edge_targets))
            if violation is not None:
                break
        self.frontier = []
        self.own = mine
        for j in range(count):
            if j != me:
                # sent once, seen by its owner from the end of this level: never resent
                self.seen.update(out[j])
        batches = [b"" if j == me else encode(list(out[j].items())) for j in range(count)]
        return batches, LevelReport(self.owned, 0, edges, violation, frozenset(self.reached))

    def absorb(self, batches, budget: int | None = None) -> LevelReport:
        """Take the states other workers found for this shard: keep the
        smallest key of each new fingerprint, then settle them in key
        order. ``budget`` caps the new states kept (``--max-states``)."""
        pending, seen = self.own, self.seen
        self.own = {}
        for blob in batches:
            if not blob:
                continue
            for fp, entry in decode(blob):
                if fp in seen:
                    continue
                mine = pending.get(fp)
                if mine is None or entry[0] < mine[0]:
                    pending[fp] = entry
        return self._settle(pending, budget)

    def graph_part(self) -> tuple:
        """What this shard saw of the state graph: its states (key,
        fingerprint, the liveness predicates' bits); each one's edges, in
        successor order, as a range of the flat arrays of target
        fingerprints and label numbers (None for a state outside the
        bounds: not expanded); and its labels, in order of first use."""
        labels = sorted(self.labels, key=self.labels.__getitem__)
        return self.nodes, self.expansions, self.edge_targets, self.edge_labels, labels

    def usage(self) -> tuple[float, float]:
        """This worker's peak resident memory (MiB) and CPU seconds so far
        (``kubemc bench explore-parallel`` reads them)."""
        import resource

        r = resource.getrusage(resource.RUSAGE_SELF)
        return round(r.ru_maxrss / 1024, 1), r.ru_utime + r.ru_stime

    def _settle(self, pending: dict, budget: int | None) -> LevelReport:
        """Make ``pending`` seen and the next frontier, in key order;
        check invariants (the first violation in key order) and covers."""
        m = self.machine
        items = sorted(pending.items(), key=lambda kv: kv[1][0])
        cut = 0
        if budget is not None and len(items) > max(budget, 0):
            cut = len(items) - max(budget, 0)
            items = items[:max(budget, 0)]
        violation = None
        invariants = self.invariants
        frontier = []
        for fp, (key, c) in items:
            self.seen.add(fp)
            self.owned += 1
            frontier.append((key, c))
            if self.recording:
                self.nodes.append((key, fp, bytes(1 if f(m, c) else 0
                                                  for _, f in self.predicates)))
            if violation is None and invariants:
                bad = next((n for n, check in invariants if not check(m, c)), None)
                if bad is not None:
                    violation = Event(key, INVARIANT_EVENT, bad)
            if self.uncovered:
                left = []
                for name, check in self.uncovered:
                    if check(m, c):
                        self.reached.add(name)
                    else:
                        left.append((name, check))
                self.uncovered = left
        self.frontier = frontier
        return LevelReport(self.owned, len(frontier), 0, violation,
                           frozenset(self.reached), cut=cut)

"""The watch loop every controller runs, as one machine a controller fills in.

The seeds (000): "controllers are watch-loops continuously running and
comparing the cluster's desired state (provided by object's configuration
data) with its current state (obtained from etcd data store via the api
server). in case of a mismatch corrective action is taken in the cluster
until its current state matches the desired state". A controller here sees
the cluster only the way a real one does:

* **through an informer cache that lags** the apiserver: every write to the
  server becomes a watch event in flight; ``Deliver`` applies the oldest one
  to the cache and lets the controller's event handler enqueue keys
  (client-go's shared informer and its ``ResourceEventHandler``);
* **through a deduplicating work queue**: ``Reconcile(key)`` takes a queued
  key — any of them, so every order of processing is explored — and calls the
  controller's ``reconcile`` with the cache, never the server;
* **through write requests** the apiserver may refuse: the writes a reconcile
  returns are sent one at a time (``Write``), each judged by the server as the
  apiserver does — an update or delete carrying a resourceVersion that is no
  longer current is a 409 Conflict, a create of an existing name is a 409
  AlreadyExists, a missing object a 404 — and a refused write ends that
  reconcile and hands the error to the controller (``on_error``: requeue, as
  client-go's ``AddRateLimited`` does, unless a mutant drops it);
* **faults**, each with a budget so that "faults stop" is a bound: the
  controller manager crashes and restarts (``Crash``: cache, queue, in-flight
  writes and in-memory state are lost; ``Relist`` rebuilds the cache from the
  server and enqueues every primary object), and the apiserver fails a write
  transiently (``WriteFails``: a 500 or a timeout before the write applied).

What the abstraction keeps and why it is sound for the properties checked:
the apiserver here is a map of objects with resourceVersions, optimistic
concurrency and one ordered watch — the contract the ``apiserver`` component's
``writes`` and ``watch`` models check against the store (no lost update;
watch events ordered, unique, complete across relists). Controllers are
judged on what the server holds, so a controller bug cannot hide behind its
own cache.

Why resourceVersions are renumbered after every step: the apiserver and the
controllers only compare resourceVersions (equal, older, newer), never read
their values, so replacing them by their ranks is a bisimulation. Without
it a controller that keeps writing would never revisit a state, and a
livelock would look like an unbounded path rather than the cycle it is.

State (plain tuples, so the engines can hash it cheaply)::

    (server, events, cache, queue, inflight, memory, spent)
    server   = ((key, rv, value), ...) sorted by key; key = (kind, name)
    events   = ((rv, key, value or None), ...) in revision order, undelivered
    cache    = like server, or None after a crash until Relist
    queue    = sorted tuple of queued keys
    inflight = (key, (write, ...)) of the running reconcile, or ()
    memory   = the controller's in-memory state (e.g. expectations)
    spent    = how much of each budget in ``BUDGETS`` (+ the world's) is used

A concrete controller subclasses :class:`ControllerLoop` and defines
``initial_objects``, ``handle`` (the event handler), ``reconcile``, and the
other components' actions it needs (the kubelet marking a pod Ready, a user
scaling a ReplicaSet): each declared once, by ``@action`` on its handler,
and proposed by ``world_steps``. Every action — the loop's and the world's —
is declared where its guard and effect are written; the kernel derives the
tags, rarity and dispatch from the declarations, and the loop ranks the
resourceVersions of every next state again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar

from kubemc.model.kernel import FAULT, SYSTEM, Machine, State, Step, action

Key = tuple  # (kind, name)

#: Write requests a reconcile returns (plain tuples, shown in traces).
CREATE, UPDATE, DELETE = "create", "update", "delete"

#: Outcomes of a write, as the apiserver answers them.
OK, CONFLICT, NOT_FOUND, UNAVAILABLE = "ok", "409", "404", "500"

#: Budgets every loop has; a controller adds its own in ``world_budgets``.
BUDGETS = ("crashes", "write_failures", "resyncs")

SERVER, EVENTS, CACHE, QUEUE, INFLIGHT, MEMORY, SPENT = range(7)


def create(kind: str, name: str, value, *, generate: bool = False) -> tuple:
    """Create ``kind/name``; with ``generate``, ``name`` is a prefix and the
    server picks a free name (``metadata.generateName``), so two creates never
    collide — the ReplicaSet and Job controllers name their pods this way."""
    return (CREATE, (kind, name), value, generate)


def update(key: Key, rv: int, value) -> tuple:
    """Replace ``key``'s value if its resourceVersion is still ``rv``."""
    return (UPDATE, key, rv, value)


def delete(key: Key, rv: int | None = None) -> tuple:
    """Delete ``key``; with ``rv``, only if it is still that version
    (a delete precondition, ``metav1.Preconditions.ResourceVersion``)."""
    return (DELETE, key, rv)


def describe(write: tuple) -> str:
    """A write request as people read it in a trace."""
    op, (kind, name) = write[0], write[1]
    if op == CREATE:
        return f"create {kind}/{name}{'*' if write[3] else ''} = {write[2]}"
    if op == UPDATE:
        return f"update {kind}/{name} if rv={write[2]} to {write[3]}"
    return f"delete {kind}/{name}" + (f" if rv={write[2]}" if write[2] is not None else "")


class Objects(Mapping):
    """A read-only view of a server or cache tuple: key -> value, plus
    ``rv(key)`` and ``of_kind(kind)``. What ``reconcile`` receives."""

    __slots__ = ("_items", "_index")

    def __init__(self, items: tuple):
        self._items = items
        self._index = {k: (rv, v) for k, rv, v in items}

    def __getitem__(self, key):
        return self._index[key][1]

    # ``in`` and ``get`` straight from the index: every step asks them, and
    # Mapping's versions go through ``__getitem__`` and a KeyError on a miss
    def __contains__(self, key):
        return key in self._index

    def get(self, key, default=None):
        entry = self._index.get(key)
        return default if entry is None else entry[1]

    def __iter__(self):
        return (k for k, _, _ in self._items)

    def __len__(self):
        return len(self._items)

    def rv(self, key) -> int:
        return self._index[key][0]

    def of_kind(self, kind: str) -> list[tuple[Key, Any]]:
        return [(k, v) for k, _, v in self._items if k[0] == kind]


def _put(objs: tuple, key, rv, value) -> tuple:
    rest = tuple(o for o in objs if o[0] != key)
    if value is None:
        return rest
    return tuple(sorted(rest + ((key, rv, value),)))


def _renumber(state: tuple) -> tuple:
    """Replace resourceVersions by their ranks (see the module docstring)."""
    server, events, cache, queue, inflight, memory, spent = state
    seen = {rv for _, rv, _ in server} | {rv for rv, _, _ in events}
    if cache is not None:
        seen |= {rv for _, rv, _ in cache}
    for w in inflight[1] if inflight else ():
        if w[0] == UPDATE or (w[0] == DELETE and w[2] is not None):
            seen.add(w[2])
    # resourceVersions are positive ints: they are their own ranks exactly
    # when they are 1..n, the common case, decided without sorting them
    if not seen or max(seen) == len(seen):
        return state
    rank = {rv: i + 1 for i, rv in enumerate(sorted(seen))}
    server = tuple((k, rank[rv], v) for k, rv, v in server)
    events = tuple((rank[rv], k, v) for rv, k, v in events)
    if cache is not None:
        cache = tuple((k, rank[rv], v) for k, rv, v in cache)
    if inflight:
        ws = []
        for w in inflight[1]:
            if w[0] == UPDATE:
                w = (UPDATE, w[1], rank[w[2]], w[3])
            elif w[0] == DELETE and w[2] is not None:
                w = (DELETE, w[1], rank[w[2]])
            ws.append(w)
        inflight = (inflight[0], tuple(ws))
    return (server, events, cache, queue, inflight, memory, spent)


class ControllerLoop(Machine):
    """A controller's watch loop against an apiserver; see the module text.

    Subclasses set ``name``, ``primary`` (the kind whose objects are queued
    on a relist or resync), ``mutants``, declare their world actions with
    ``@action`` on the handlers (each returns the next state, or None when
    its guard is false; the loop renumbers it), propose them in
    ``world_steps``, and define the hooks below. Bounds every loop takes:
    ``crashes``, ``write_failures``, ``resyncs`` (budgets) and ``max_objects``
    (a state constraint: a controller that creates without end is stopped
    there, as the bounds of every model stop a search).
    """

    primary: ClassVar[str] = ""
    #: budgets of the world's actions, in the order ``spent`` keeps them
    world_budgets: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, crashes: int = 0, write_failures: int = 0, resyncs: int = 0,
                 max_objects: int = 8, mutant: str | None = None, **world: int):
        super().__init__(mutant)
        self.limits = {"crashes": crashes, "write_failures": write_failures,
                       "resyncs": resyncs, **world}
        unknown = set(world) - set(self.world_budgets)
        if unknown:
            raise ValueError(f"unknown bounds {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(BUDGETS + self.world_budgets)}, max_objects)")
        self.budget_names = BUDGETS + self.world_budgets
        self.max_objects = max_objects

    def config(self) -> dict[str, Any]:
        return {"max_objects": self.max_objects,
                **{k: self.limits.get(k, 0) for k in self.budget_names}}

    # -- hooks a controller defines ------------------------------------------
    def initial_objects(self) -> Iterable[Iterable[tuple[Key, Any]]]:
        """Each initial cluster: (key, value) pairs the server starts with."""
        raise NotImplementedError

    def initial_memory(self):
        return ()

    def handle(self, cache: Objects, key: Key, old, new) -> Iterable[Key]:
        """The event handler: which keys to enqueue when ``key`` changed from
        ``old`` to ``new`` (either may be None). Default: the key itself if
        it is of the primary kind."""
        return (key,) if key[0] == self.primary else ()

    def observe(self, memory, key: Key, old, new):
        """Update in-memory state on a delivered event (expectations)."""
        return memory

    def reconcile(self, cache: Objects, key: Key, memory) -> tuple[tuple, Any]:
        """The writes that move the cluster toward ``key``'s desired state, as
        seen in ``cache``, and the new in-memory state."""
        raise NotImplementedError

    def on_error(self, key: Key, outcome: str, write: tuple, memory) -> tuple[bool, Any]:
        """A write was refused: requeue ``key``? (client-go requeues with
        rate limiting.) Returns (requeue, new memory)."""
        return True, memory

    def deleting(self, key: Key, value):
        """What a delete request leaves of ``key``: None removes it at once;
        a value marks it terminating, as the apiserver does for an object
        with a grace period or finalizers (it sets ``deletionTimestamp`` and
        another component removes it later)."""
        return None

    def world_steps(self, state: State) -> Iterator[Step]:
        """The world's steps to propose in ``state``, after the loop's (an
        order across actions: the handlers are the world's ``@action``s)."""
        return iter(())

    # -- helpers for the world's actions ---------------------------------------
    def budget_left(self, state, name: str) -> bool:
        return state[SPENT][self.budget_names.index(name)] < self.limits.get(name, 0)

    def spend(self, state, name: str) -> tuple:
        i = self.budget_names.index(name)
        spent = state[SPENT]
        return state[:SPENT] + (spent[:i] + (spent[i] + 1,) + spent[i + 1:],) + state[SPENT + 1:]

    def stored(self, state, kind: str, name) -> tuple | None:
        """``(key, value)`` of the server's ``kind/name``, or None when the
        server has no such object (the first guard of many world steps)."""
        key = (kind, name)
        server = self.objects(state)
        return (key, server[key]) if key in server else None

    def server_write(self, state, key: Key, value) -> tuple:
        """Another component writes ``key`` through the apiserver (a new
        resourceVersion and a watch event); ``value`` None deletes."""
        rv = 1 + max((r for _, r, _ in state[SERVER]), default=0)
        rv = max(rv, 1 + max((r for r, _, _ in state[EVENTS]), default=0))
        server = _put(state[SERVER], key, rv, value)
        events = state[EVENTS] + ((rv, key, value),)
        return (server, events) + state[CACHE:]

    @staticmethod
    def objects(state) -> Objects:
        """The server's objects: what properties judge."""
        return Objects(state[SERVER])

    # -- the machine -----------------------------------------------------------
    def init_states(self):
        spent = (0,) * len(self.budget_names)
        for cluster in self.initial_objects():
            server = tuple(sorted((k, 1, v) for k, v in cluster))
            queue = tuple(sorted(k for k, _, _ in server if k[0] == self.primary))
            yield (server, (), server, queue, (), self.initial_memory(), spent)

    def within_bounds(self, state) -> bool:
        return len(state[SERVER]) <= self.max_objects

    def steps(self, state):
        if state[EVENTS] and state[CACHE] is not None:
            yield Step("Deliver")
        if state[CACHE] is None:
            yield Step("Relist")
        elif not state[INFLIGHT]:
            for key in state[QUEUE]:
                yield Step("Reconcile", (key[0], key[1]))
        if state[INFLIGHT]:
            yield Step("Write")
            if self.budget_left(state, "write_failures"):
                yield Step("WriteFails")
        if state[CACHE] is not None and self.budget_left(state, "resyncs"):
            yield Step("Resync")
        if self.budget_left(state, "crashes"):
            yield Step("Crash")
        yield from self.world_steps(state)

    def apply(self, state, step):
        """The declared handler's next state, its resourceVersions ranked
        again (see the module text): every step ends so, the loop's own and
        the world's."""
        nxt = super().apply(state, step)
        return None if nxt is None else self.renumbered(nxt)

    @staticmethod
    def renumbered(state: tuple) -> tuple:
        """``state`` with its resourceVersions ranked again. A subclass that
        adds fields after the loop's seven (a cloud) overrides it to keep
        them; the loop's own steps carry them along."""
        return _renumber(state)

    # -- the loop's own steps ----------------------------------------------------
    # Each handler is called also with steps ``steps`` did not propose (by the
    # shrinker and by trace replay), so each checks its own guard. Every one
    # keeps the fields a subclass adds after the loop's seven (a cloud).
    @action("Deliver", tag=SYSTEM)
    def _Deliver(self, state):
        if not state[EVENTS] or state[CACHE] is None:
            return None
        return self._deliver(state)

    @action("Relist", tag=SYSTEM)
    def _Relist(self, state):
        return self._relist(state) if state[CACHE] is None else None

    @action("Reconcile", tag=SYSTEM)
    def _Reconcile(self, state, kind, name):
        key = (kind, name)
        if state[CACHE] is None or state[INFLIGHT] or key not in state[QUEUE]:
            return None
        return self._reconcile(state, key)

    @action("Write", tag=SYSTEM)
    def _Write(self, state):
        return self._write(state) if state[INFLIGHT] else None

    @action("WriteFails", tag=FAULT, rare=True)
    def _WriteFails(self, state):
        if not state[INFLIGHT] or not self.budget_left(state, "write_failures"):
            return None
        return self._refused(self.spend(state, "write_failures"), UNAVAILABLE)

    @action("Resync", tag=SYSTEM, rare=True)
    def _Resync(self, state):
        if state[CACHE] is None or not self.budget_left(state, "resyncs"):
            return None
        nxt = self.spend(state, "resyncs")
        return self._enqueue(nxt, (k for k, _, _ in nxt[CACHE] if k[0] == self.primary))

    @action("Crash", tag=FAULT, rare=True)
    def _Crash(self, state):
        if not self.budget_left(state, "crashes"):
            return None
        nxt = self.spend(state, "crashes")
        return (nxt[SERVER], (), None, (), (), self.initial_memory(),
                nxt[SPENT]) + nxt[SPENT + 1:]

    @staticmethod
    def _enqueue(state, keys) -> tuple:
        queue = tuple(sorted(set(state[QUEUE]).union(keys)))
        return state[:QUEUE] + (queue,) + state[QUEUE + 1:]

    def _deliver(self, state):
        (rv, key, new), events = state[EVENTS][0], state[EVENTS][1:]
        cache = state[CACHE]
        old = Objects(cache).get(key)
        cache = _put(cache, key, rv, new)
        memory = self.observe(state[MEMORY], key, old, new)
        nxt = (state[SERVER], events, cache, state[QUEUE], state[INFLIGHT], memory,
               state[SPENT]) + state[SPENT + 1:]
        return self._enqueue(nxt, self.handle(Objects(cache), key, old, new))

    def _relist(self, state):
        # A list is a consistent snapshot of the server; the watch resumes
        # from its resourceVersion, so events before it are not delivered.
        server = state[SERVER]
        queue = tuple(sorted(k for k, _, _ in server if k[0] == self.primary))
        return (server, (), server, queue, (), state[MEMORY], state[SPENT]) + state[SPENT + 1:]

    def _reconcile(self, state, key):
        queue = tuple(k for k in state[QUEUE] if k != key)
        writes, memory = self.reconcile(Objects(state[CACHE]), key, state[MEMORY])
        inflight = (key, tuple(writes)) if writes else ()
        return state[:QUEUE] + (queue, inflight, memory) + state[SPENT:]

    def _write(self, state):
        key, writes = state[INFLIGHT]
        write, rest = writes[0], writes[1:]
        server = Objects(state[SERVER])
        op, target = write[0], write[1]
        if op == CREATE:
            if write[3]:
                target = (target[0], next(f"{target[1]}{i}" for i in range(len(server) + 1)
                                          if (target[0], f"{target[1]}{i}") not in server))
            elif target in server:
                return self._refused(state, CONFLICT)
            value = write[2]
        elif op == UPDATE:
            if target not in server:
                return self._refused(state, NOT_FOUND)
            if server.rv(target) != write[2]:
                return self._refused(state, CONFLICT)
            value = write[3]
        else:
            if target not in server:
                return self._refused(state, NOT_FOUND)
            if write[2] is not None and server.rv(target) != write[2]:
                return self._refused(state, CONFLICT)
            value = self.deleting(target, server[target])
        nxt = self.server_write(state, target, value)
        inflight = (key, rest) if rest else ()
        return nxt[:INFLIGHT] + (inflight,) + nxt[INFLIGHT + 1:]

    def _refused(self, state, outcome):
        key, writes = state[INFLIGHT]
        requeue, memory = self.on_error(key, outcome, writes[0], state[MEMORY])
        nxt = state[:INFLIGHT] + ((), memory) + state[SPENT:]
        return self._enqueue(nxt, (key,)) if requeue else nxt

    # -- display -------------------------------------------------------------------
    def view(self, state):
        # ITF has no null: a deletion event shows as "deleted", and a cache
        # lost in a crash as empty with ``listed`` false.
        def show(objs):
            return {f"{k[0]}/{k[1]}": (rv, v) for k, rv, v in objs or ()}
        return {
            "server": show(state[SERVER]),
            "events": [(rv, f"{k[0]}/{k[1]}", "deleted" if v is None else v)
                       for rv, k, v in state[EVENTS]],
            "listed": state[CACHE] is not None,
            "cache": show(state[CACHE]),
            "queue": [f"{k[0]}/{k[1]}" for k in state[QUEUE]],
            "inflight": [describe(w) for w in (state[INFLIGHT][1] if state[INFLIGHT] else ())],
            "memory": state[MEMORY],
            "spent": dict(zip(self.budget_names, state[SPENT])),
        }


#: the loop's own actions (a controller's others are its world's)
LOOP_ACTIONS = frozenset(ControllerLoop.actions)

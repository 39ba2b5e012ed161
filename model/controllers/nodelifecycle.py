"""The node lifecycle controller with its taint-based eviction: a node whose
kubelet stops renewing its Lease is marked NodeReady=Unknown after the grace
period, gets the ``node.kubernetes.io/unreachable:NoExecute`` taint, and its
pods are evicted — at once if they do not tolerate the taint, after their
``tolerationSeconds`` if they do, never if they tolerate it without a limit.

What the real controllers do (kubernetes/kubernetes
``pkg/controller/nodelifecycle`` and ``pkg/controller/tainteviction``), kept here:

* **health from Lease observations**: the controller records when *it*
  observed the node's Lease change (its ``probeTimestamp``), and a node
  whose Lease it has not seen renewed for longer than
  ``node-monitor-grace-period`` is marked Ready=Unknown; on the next pass the
  NoExecute taint is added (two writes, as in ``monitorNodeHealth`` then
  ``doNoExecuteTaintingPass``); a node seen renewing again is marked Ready
  and untainted;
* **a restarted controller starts every grace period afresh** (it sets the
  probe timestamp of every node to "now" on its first observation), so a
  controller-manager failover does not evict a cluster's pods;
* **the taint manager** times a tolerating pod's eviction from when it sees
  the taint (never earlier than the taint's ``timeAdded``) and evicts by
  deleting the pod (graceful: it stays terminating, its node cannot confirm).

Time is discrete: ``Tick`` (a system step) advances every clock by one
tick. It is taken only when the controller is idle (no watch event in
flight, empty queue, no write pending) and every connected kubelet has
renewed its Lease in this tick — the modelling assumption that the
controller's latency and the renew interval are well below the grace period
(the defaults: renew every 10 s, grace 40–50 s, a 5 s monitor period).
Ticks also enqueue every node: the controller's periodic health check.
Clocks saturate at ``max(grace, tolerationSeconds) + 1`` ticks: no decision
distinguishes older ages, so the state space is finite and time never stops.

The world: the kubelet renews its node's Lease once a tick (``Renew``,
system) unless the node is cut off (``Partition``, a fault); the network
heals (``Heal``, environment: not assumed). A ghost object
``(~world, w)`` in the server, which the controller never reads (it is not
in its cache), records per node: cut off now, ever cut off, renewed in this
tick, how many ticks the server has held the unreachable taint — the ghost
clock the no-early-eviction property is judged by — how many ticks have
passed since the kubelet last renewed its Lease (``silent``), and whether it
has been silent for longer than the grace period since the server last
turned the node Ready (``overdue``) — what the no-early-Unknown property is
judged by: the controller may decide on a silence and its write land just
after the kubelet is heard again, which no controller can avoid.

Objects::

    (nodes, nN)   -> (ready, tainted)            ready: "True" or "Unknown"
    (leases, nN)  -> "kubelet"                   every renewal is a write
    (pods, name)  -> (node, toleration, terminating)
                     toleration: NONE, FOREVER, or tolerationSeconds (int)

Memory: per node ``(probe_age, taint_timer)``: ticks since the controller saw
the Lease renewed, and ticks since it saw the taint (None: no taint).
"""

from __future__ import annotations

from kubemc.model.controllers.loop import (
    CACHE, EVENTS, INFLIGHT, MEMORY, QUEUE, SERVER, ControllerLoop, Objects, _put, delete,
    update,
)
from kubemc.model.kernel import ENVIRONMENT, FAULT, SYSTEM, Mutant, Step, action

NODE, LEASE, POD = "nodes", "leases", "pods"
WORLD = ("~world", "w")
NONE, FOREVER = "none", "forever"
TRUE, UNKNOWN = "True", "Unknown"

EVICTS_ON_FIRST_MISS = "evicts_on_first_missed_heartbeat"
IGNORES_TOLERATION_SECONDS = "ignores_toleration_seconds"
NEVER_REMOVES_TAINT = "never_removes_taint"
KEEPS_UNKNOWN = "keeps_unknown_after_recovery"
NO_NOEXECUTE_TAINT = "no_noexecute_taint"
MARKS_AT_GRACE = "marks_unknown_at_grace"


class NodeLifecycleController(ControllerLoop):
    name = "nodelifecycle"
    primary = NODE
    world_budgets = ("partitions", "heals")
    mutants = {
        EVICTS_ON_FIRST_MISS: Mutant(
            "treats the first missed heartbeat as a dead node: it marks the node Unknown "
            "and taints it as soon as one Lease renewal is not observed, without waiting "
            "for node-monitor-grace-period, and the pods of a healthy node are evicted "
            "(kubernetes/kubernetes#32510: NodeNotReady after a controller-manager failover "
            "deleted all pods; kubernetes/kubernetes#8335: evicting too eagerly on a "
            "partition or a busy kubelet)",
            violates="nodelifecycle_healthy_node_untouched"),
        IGNORES_TOLERATION_SECONDS: Mutant(
            "evicts a pod that tolerates the taint for tolerationSeconds at once, as if it "
            "had no toleration (the taint manager schedules each pod's eviction from its "
            "tolerationSeconds; kubernetes/kubernetes#102993 and PR #109226 are bugs where "
            "the scheduled time disagrees with the pod's tolerationSeconds — there, an "
            "updated one; no upstream report of this exact bug was found)",
            violates="nodelifecycle_no_early_eviction"),
        NEVER_REMOVES_TAINT: Mutant(
            "marks a node Ready again when its heartbeats resume but leaves the unreachable "
            "taint, so the node stays tainted forever (kubernetes/kubernetes#80968: pods "
            "of a node that was briefly Unknown never recover; kubernetes/kubernetes#67733: "
            "'if the node gets recovered, the taint should be removed')",
            violates="nodelifecycle_recovered_leads_to_untainted"),
        KEEPS_UNKNOWN: Mutant(
            "lifts the unreachable taint when heartbeats resume but never sets the Ready "
            "condition back to True: the node looks healthy to the taint manager and stays "
            "NotReady for the scheduler and every other reader of its status for ever "
            "(the condition is the node controller's to restore once the Lease is renewed, "
            "Kubernetes docs 'Node status', 'Heartbeats')",
            violates="nodelifecycle_converges"),
        NO_NOEXECUTE_TAINT: Mutant(
            "marks an unreachable node Unknown but never adds the NoExecute taint, so its "
            "pods are never evicted (kubernetes/kubernetes#101674 and #77981: no "
            "node.kubernetes.io/unreachable:NoExecute taint on a NotReady node)",
            violates="nodelifecycle_unreachable_leads_to_eviction"),
        MARKS_AT_GRACE: Mutant(
            "marks a node Unknown once its Lease has gone unrenewed for the grace period "
            "itself rather than for longer (an off-by-one at the edge the upstream check "
            "states as now.After(probeTimestamp + gracePeriod)), so a kubelet whose renewals "
            "are merely late is declared dead (kubernetes/kubernetes#121793: renewals delayed "
            "by about the 40 s grace period flap nodes NotReady; #113081: a node marked "
            "Unknown while its kubelet still renews)",
            violates="nodelifecycle_no_early_unknown"),
    }

    def __init__(self, *, nodes: int = 1, grace: int = 2, toleration_seconds: int = 1,
                 forever_pod: bool = True, partitions: int = 1, heals: int = 1,
                 crashes: int = 1, write_failures: int = 1, resyncs: int = 0,
                 max_objects: int = 16, mutant: str | None = None):
        if grace < 2:
            raise ValueError("grace must be at least 2 ticks: one missed renewal is not a "
                             "dead node (the renew interval is one tick)")
        super().__init__(crashes=crashes, write_failures=write_failures, resyncs=resyncs,
                         max_objects=max_objects, mutant=mutant, partitions=partitions,
                         heals=heals)
        self.nodes = nodes
        self.grace = grace
        self.toleration_seconds = toleration_seconds
        self.forever_pod = bool(forever_pod)
        #: the age past which no decision changes: clocks saturate there
        self.saturate = max(grace, toleration_seconds) + 1

    def config(self):
        return {"nodes": self.nodes, "grace": self.grace,
                "toleration_seconds": self.toleration_seconds,
                "forever_pod": self.forever_pod, **super().config()}

    # -- the cluster it starts from ---------------------------------------------
    def node_names(self):
        return tuple(f"n{i}" for i in range(self.nodes))

    def initial_objects(self):
        objs = [(WORLD, ((False,) * self.nodes, (False,) * self.nodes,
                         (True,) * self.nodes, (None,) * self.nodes, (0,) * self.nodes,
                         (False,) * self.nodes))]
        for n in self.node_names():
            objs += [((NODE, n), (TRUE, False)), ((LEASE, n), "kubelet"),
                     ((POD, f"{n}-plain"), (n, NONE, False)),
                     ((POD, f"{n}-tolerant"), (n, self.toleration_seconds, False))]
            if self.forever_pod:
                objs.append(((POD, f"{n}-forever"), (n, FOREVER, False)))
        yield objs

    def initial_memory(self):
        # a (re)started controller has just "observed" every node
        return ((0, None),) * self.nodes

    def init_states(self):
        for state in super().init_states():
            yield self._hide_world(state)

    def _relist(self, state):
        return self._hide_world(super()._relist(state))

    @staticmethod
    def _hide_world(state):
        """The ghost is the model's, not the apiserver's: no cache holds it."""
        cache = tuple(o for o in state[CACHE] if o[0] != WORLD)
        return state[:CACHE] + (cache,) + state[CACHE + 1:]

    # -- the event handler ---------------------------------------------------------
    def handle(self, cache, key, old, new):
        if key[0] == NODE:
            return (key,)
        if key[0] == POD:
            return ((NODE, (new or old)[0]),)
        return ()

    def observe(self, memory, key, old, new):
        if key[0] != LEASE or new is None:
            return memory
        i = self.node_names().index(key[1])
        return memory[:i] + ((0, memory[i][1]),) + memory[i + 1:]

    # -- the reconcile -------------------------------------------------------------
    def reconcile(self, cache, key, memory):
        if key not in cache:
            return (), memory
        i = self.node_names().index(key[1])
        probe, timer = memory[i]
        ready, tainted = cache[key]
        limit = self.grace + 1
        if self.mutant == EVICTS_ON_FIRST_MISS:
            limit = 1
        elif self.mutant == MARKS_AT_GRACE:
            limit = self.grace
        if probe >= limit:  # no renewal observed for longer than the grace period
            add_taint = ready == UNKNOWN and self.mutant != NO_NOEXECUTE_TAINT
            desired = (UNKNOWN, tainted or add_taint)
        else:
            desired = (UNKNOWN if self.mutant == KEEPS_UNKNOWN and ready == UNKNOWN else TRUE,
                       tainted if self.mutant == NEVER_REMOVES_TAINT else False)
        if desired != (ready, tainted):
            return (update(key, cache.rv(key), desired),), memory
        # the taint manager
        timer = (timer if timer is not None else 0) if tainted else None
        memory = memory[:i] + ((probe, timer),) + memory[i + 1:]
        if not tainted:
            return (), memory
        writes = []
        for pod_key, (node, toleration, terminating) in cache.of_kind(POD):
            if node != key[1] or terminating or toleration == FOREVER:
                continue
            if (toleration == NONE or timer >= toleration
                    or self.mutant == IGNORES_TOLERATION_SECONDS):
                writes.append(delete(pod_key))
        return tuple(writes), memory

    def deleting(self, key, value):
        return (value[0], value[1], True) if key[0] == POD else None

    # -- the world -------------------------------------------------------------------
    def _world(self, state):
        return self.objects(state)[WORLD]

    def _set_world(self, state, world):
        server = state[SERVER]
        rv = next(r for k, r, _ in server if k == WORLD)
        return (_put(server, WORLD, rv, world),) + state[SERVER + 1:]

    def _idle(self, state) -> bool:
        return (state[CACHE] is not None and not state[EVENTS] and not state[QUEUE]
                and not state[INFLIGHT])

    def world_steps(self, state):
        cut, renewed = self._world(state)[0], self._world(state)[2]
        if self._idle(state) and all(c or r for c, r in zip(cut, renewed)):
            yield Step("Tick")
        for i, n in enumerate(self.node_names()):
            if not cut[i] and not renewed[i]:
                yield Step("Renew", (n,))
            if cut[i] and self.budget_left(state, "heals"):
                yield Step("Heal", (n,))
            if not cut[i] and self.budget_left(state, "partitions"):
                yield Step("Partition", (n,))

    @action("Tick", tag=SYSTEM)
    def _Tick(self, state):
        cut, ever, renewed, ages, silent, overdue = self._world(state)
        if not self._idle(state) or not all(c or r for c, r in zip(cut, renewed)):
            return None
        names = self.node_names()
        top = self.saturate
        ages = tuple(None if a is None else min(a + 1, top) for a in ages)
        silent = tuple(min(q + 1, top) for q in silent)
        overdue = tuple(o or q > self.grace for o, q in zip(overdue, silent))
        memory = tuple((min(p + 1, top), None if t is None else min(t + 1, top))
                       for p, t in state[MEMORY])
        nxt = self._set_world(state, (cut, ever, (False,) * len(names), ages, silent,
                                      overdue))
        nxt = nxt[:MEMORY] + (memory,) + nxt[MEMORY + 1:]
        return self._enqueue(nxt, ((NODE, n) for n in names))

    @action("Renew", tag=SYSTEM)
    def _Renew(self, state, n):
        if n not in self.node_names():
            return None
        i = self.node_names().index(n)
        cut, ever, renewed, ages, silent, overdue = self._world(state)
        if cut[i] or renewed[i]:
            return None
        nxt = self.server_write(state, (LEASE, n), "kubelet")
        return self._set_world(nxt, (cut, ever, _at(renewed, i, True), ages,
                                     _at(silent, i, 0), overdue))

    @action("Partition", tag=FAULT)
    def _Partition(self, state, n):
        if n not in self.node_names():
            return None
        i = self.node_names().index(n)
        cut, ever, renewed, ages, silent, overdue = self._world(state)
        if cut[i] or not self.budget_left(state, "partitions"):
            return None
        nxt = self.spend(state, "partitions")
        return self._set_world(nxt, (_at(cut, i, True), _at(ever, i, True), renewed, ages,
                                     silent, overdue))

    @action("Heal", tag=ENVIRONMENT)
    def _Heal(self, state, n):
        if n not in self.node_names():
            return None
        i = self.node_names().index(n)
        cut, ever, renewed, ages, silent, overdue = self._world(state)
        if not cut[i] or not self.budget_left(state, "heals"):
            return None
        return self._set_world(self.spend(state, "heals"),
                               (_at(cut, i, False), ever, renewed, ages, silent, overdue))

    # -- the ghost taint clock follows the server after every step --------------------
    def apply(self, state, step):
        nxt = super().apply(state, step)
        if nxt is None:
            return None
        server = Objects(nxt[SERVER])
        cut, ever, renewed, ages, silent, overdue = server[WORLD]
        names = self.node_names()
        fresh = tuple((a if a is not None else 0) if server[(NODE, n)][1] else None
                      for a, n in zip(ages, names))
        # the server turned a node Ready again: a new silence starts counting
        before = Objects(state[SERVER])
        cleared = tuple(o and not (server[(NODE, n)][0] == TRUE
                                   and before[(NODE, n)][0] != TRUE)
                        for o, n in zip(overdue, names))
        if fresh == ages and cleared == overdue:
            return nxt
        return self._set_world(nxt, (cut, ever, renewed, fresh, silent, cleared))


def _at(values: tuple, i: int, value) -> tuple:
    """``values`` with its ``i``-th element replaced."""
    return values[:i] + (value,) + values[i + 1:]

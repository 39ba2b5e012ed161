"""kube-scheduler's scheduling and binding cycles, for several schedulers.

Why a machine of its own rather than a ``ControllerLoop`` subclass
(``model.controllers.loop``): that loop reconciles one key at a time from a
deduplicating work queue and writes with resourceVersion preconditions. The
scheduler's queue is not a work queue: a pod sits in one of three sub-queues
(active, backoff, unschedulable) and moves between them on *other* objects'
events; its scheduling cycle and its binding cycle are separate steps with
the assume cache between them; and its one write, the Binding, is judged by
"is the pod already bound", not by a resourceVersion. What is kept from the
loop is its discipline: the scheduler sees the cluster only through an
informer that lags, writes only through the apiserver, and crashes with a
budget.

What is modelled (kubernetes.io/docs/concepts/scheduling-eviction/
scheduling-framework and kube-scheduler):

* **the queue** per scheduler, per pod: ``A`` active, ``B`` backoff, ``U``
  unschedulable, ``S`` assumed and binding, ``-`` not queued. ``Schedule``
  takes an active pod through Filter and Score and Reserve (assume it on the
  chosen node in the scheduler's cache), ``Unschedulable`` when no node
  passes: PostFilter (preemption) runs and the pod goes to ``U``;
  ``BackoffDone`` moves ``B`` to ``A``; an informer event that can make a pod
  schedulable (a pod bound, terminating or gone) moves every ``U`` pod to
  ``A``; ``Flush`` is the periodic flush of the unschedulable sub-queue;
* **the binding cycle**, asynchronous: ``Bind`` sends the Binding; the
  apiserver refuses it with a 409 if the pod is already bound or being
  deleted; a refused or failed bind (``BindFails``, a 500: a fault with a
  budget) *forgets* the assumed pod and puts it in backoff;
* **informers that lag**: the apiserver's pod changes reach each scheduler's
  cache by ``Deliver``, oldest changed pod first, the pod's current value
  (a watch's events for one key coalesce in the cache); a bound pod is
  removed from the queue when its binding is observed and its assumption is
  then confirmed;
* **which scheduler**: a scheduler queues only the pods whose
  ``spec.schedulerName`` names it, the empty name meaning the default one
  (the seeds' sentence);
* **preemption**: victims are deleted through the apiserver (they turn
  terminating, recording who preempted them — upstream's DisruptionTarget
  condition) and the preemptor's ``status.nominatedNodeName`` is set; other
  pods of no higher priority leave room for nominated pods when they filter;
  a pod whose nominated node still has its victims terminating does not
  preempt again;
* **the world**: the kubelet removes a terminating pod (``Gone``, a system
  step: no finalizers here); a user deletes a bound pod (``DeletePod``,
  environment, with a budget); a scheduler crashes (``Crash``, fault): its
  cache, queue and assumptions are lost, but a Binding already on the wire
  still reaches the apiserver (``OrphanBind``) — after the restarted
  scheduler's ``Relist`` it is a source of the 409 on bind.

What is abstracted and why it is sound for the properties: nodes never
change during a run (the properties are judged per bind against the
apiserver's pods, and node changes would only add races the real scheduler
also leaves to the kubelet); time is abstracted into the nondeterministic
order of steps (backoff durations, the flush period); Permit and volume
binding are left out; the choice among equal top scores is
nondeterministic, as upstream's random pick is. HA leader election is the
subclass ``HAScheduler`` below (two replicas of one scheduler and a Lease);
the other models run one replica per scheduler.

State (plain tuples)::

    (server, scheds, orphans, spent)
    server  = per pod (node, bound_by, phase, nominated, preempted_by)
              node -1 = unbound; phase LIVE / TERMINATING / GONE
    scheds  = per scheduler (cache, events, queue, assumed)
              cache   = a copy of server as last observed, or None (crashed)
              events  = pod indices whose change is not yet delivered
              queue   = a string, one character per pod (A B U S -)
              assumed = sorted (pod, node, status): status SENDING (bind not
                        yet answered), BOUND (awaiting the informer), or
                        LEAKED (a mutant kept it after a failure)
    orphans = sorted (pod, node, scheduler) Bindings sent by a crashed scheduler
    spent   = (crashes, bind_failures, deletions, conflicts) — the last a
              ghost counter (capped at 1) for the "409 happens" cover
"""

from __future__ import annotations

from kubemc.model.kernel import ENVIRONMENT, FAULT, SYSTEM, Machine, Mutant, Step, action
from kubemc.model.scheduler.objects import DEFAULT_SCHEDULER, InitContainer, Pod, Resources
from kubemc.model.scheduler.plugins import Plugins, effective_request
from kubemc.model.scheduler.scenarios import SCENARIOS

LIVE, TERMINATING, GONE = 0, 1, 2
SENDING, BOUND, LEAKED = 0, 1, 2
NODE, BY, PHASE, NOMINATED, PREEMPTED_BY = range(5)
CACHE, EVENTS, QUEUE, ASSUMED = range(4)
SERVER, SCHEDS, ORPHANS, SPENT = range(4)
BUDGETS = ("crashes", "bind_failures", "deletions")
CONFLICTS = 3


# -- the mutants' variants of the effective request ------------------------------

def summed_request(pod: Pod) -> Resources:
    """init containers summed with the app containers instead of maxed."""
    total = pod.overhead
    for c in pod.init_containers:
        total = total + c.requests
    for r in pod.containers:
        total = total + r
    return total


def without_init_peak(pod: Pod) -> Resources:
    """sum(sidecars) + sum(app containers): KEP-753's init-container term
    ``max_i InitContainerUse(i)`` left out, so an init container that
    requests more than everything that runs after it is not reserved."""
    total = pod.overhead
    for c in pod.init_containers:
        if c.sidecar:
            total = total + c.requests
    for r in pod.containers:
        total = total + r
    return total


def sidecars_as_init_request(pod: Pod) -> Resources:
    """max(sum(app containers), max(each init container)): sidecars treated as
    plain init containers, the rule kubernetes/kubernetes#127868 reports."""
    apps = Resources()
    for r in pod.containers:
        apps = apps + r
    peak = Resources()
    for c in pod.init_containers:
        peak = peak.max(c.requests)
    return apps.max(peak) + pod.overhead


INIT_SUMMED = "init_requests_summed"
SIDECAR_MAX = "sidecar_request_max"
IGNORES_TAINT = "ignores_noschedule_taint"
STALE_NODE_VIEW = "stale_node_view"
BINDS_OTHERS = "binds_other_schedulers_pods"
PREEMPTS_EQUAL = "preempts_equal_priority"
SPREAD_TERMINATING = "spread_counts_terminating"
SPREAD_WRONG_KEY = "spread_wrong_topology_key"
NEVER_FORGETS = "never_forgets_failed_bind"
KEEPS_ON_CONFLICT = "keeps_assumed_on_conflict"
BIND_OVERWRITES = "bind_overwrites_bound_pod"
PREEMPTS_ALL_LOWER = "preempts_every_lower_priority_pod"
REPRIEVES_LOWEST = "preemption_reprieves_lowest_first"
WORST_NODE = "preemption_picks_worst_node"
TERMINATING_VICTIMS = "preemption_counts_terminating_victims"
NO_NOMINATION = "preemption_without_nomination"
REPREEMPTS = "preempts_again_while_victims_terminate"
EVICTS_UNLABELLED = "preemption_evicts_unlabelled_pods"
RANKS_BY_COUNT = "preemption_ranks_by_victim_count"
RANKS_BY_SUM = "preemption_ranks_by_priority_sum"
IGNORES_INIT_PEAK = "request_ignores_init_peak"

ALL_MUTANTS = {
    INIT_SUMMED: Mutant(
        "NodeResourcesFit sums init-container requests with the app containers instead of "
        "taking the larger (docs: 'the highest of any particular resource request ... on all "
        "init containers is the effective init request'): a pod that fits looks too large "
        "and stays pending forever (a lasso)",
        violates="sched_feasible_pod_eventually_bound"),
    SIDECAR_MAX: Mutant(
        "the pod's request computed as max(app containers, each init container), sidecars "
        "counted like init containers instead of added to the app containers: a node is "
        "over-committed (kubernetes/kubernetes#127868)",
        violates="sched_node_within_allocatable"),
    IGNORES_TAINT: Mutant(
        "TaintToleration ignores NoSchedule taints: a pod without a toleration is bound to a "
        "tainted node (docs/concepts/scheduling-eviction/taint-and-toleration)",
        violates="sched_bound_node_passes_filters"),
    STALE_NODE_VIEW: Mutant(
        "filters against the informer's view of the node without the pods it has assumed: "
        "before its own bind is observed the node's last slot looks free and is booked twice "
        "(kubernetes/kubernetes#5336, 'it uses stale information about A ... It should assume "
        "all bindings it makes'; the multi-scheduler form is #60469)",
        violates="sched_node_within_allocatable"),
    BINDS_OTHERS: Mutant(
        "a scheduler queues every pending pod, whatever its spec.schedulerName names, and "
        "binds pods meant for the other scheduler (the multiple-schedulers proposal, "
        "kubernetes/kubernetes#17197: 'one pod must NOT be claimed by more than one "
        "scheduler')",
        violates="sched_bound_by_named_scheduler"),
    PREEMPTS_EQUAL: Mutant(
        "preemption takes pods of equal priority as victims (priority <= instead of <); the "
        "docs say preemption 'must not happen when ... the pending Pods have equal or lower "
        "priority than the victims'; a wrong-victim bug of the same family is "
        "kubernetes/kubernetes#129136",
        violates="sched_preemption_lower_priority_only"),
    SPREAD_TERMINATING: Mutant(
        "PodTopologySpread counts terminating pods: the global minimum is inflated and a pod "
        "lands where the skew exceeds maxSkew once they are gone (kubernetes/kubernetes#86037, "
        "fixed by #87845)",
        violates="sched_spread_within_max_skew"),
    SPREAD_WRONG_KEY: Mutant(
        "PodTopologySpread counts domains by kubernetes.io/hostname whatever the constraint's "
        "topologyKey: a zone constraint is enforced per node and the zones' skew exceeds "
        "maxSkew (no upstream bug found; the seeded form of a wrong-key bug)",
        violates="sched_spread_within_max_skew"),
    NEVER_FORGETS: Mutant(
        "a failed bind does not forget the assumed pod: its reservation stays in the cache, "
        "the node looks full and the pod waits forever (kubernetes/kubernetes#28883, "
        "'Scheduler cache corruption in case of failed bindings')",
        violates="sched_feasible_pod_eventually_bound"),
    KEEPS_ON_CONFLICT: Mutant(
        "a bind refused with a 409 does not forget the assumed pod: the reservation leaks on "
        "a node the pod is not on (the double-assume of kubernetes/kubernetes#26043)",
        violates="sched_no_leaked_reservation"),
    BIND_OVERWRITES: Mutant(
        "the apiserver's Binding does not refuse a pod that is already bound ('pod ... is "
        "already assigned to node', a 409): a second bind moves a bound pod to another node "
        "(no upstream bug; the check the 409 exists for)",
        violates="sched_bound_at_most_once"),
    PREEMPTS_ALL_LOWER: Mutant(
        "preemption evicts every lower-priority pod of the chosen node, with no reprieve: "
        "pods whose removal the preemptor does not need are killed (design proposal "
        "pod-preemption: 'Scheduler will try to minimize the number of preempted pods')",
        violates="sched_preemption_minimal_lowest_victims"),
    REPRIEVES_LOWEST: Mutant(
        "the reprieve runs lowest priority first, so the lowest pods are kept and a "
        "higher-priority one is evicted in their place (design proposal: 'scheduler considers "
        "the lowest priority pods for preemption first')",
        violates="sched_preemption_minimal_lowest_victims"),
    WORST_NODE: Mutant(
        "the node ranking is reversed: the node whose victims have the highest priority is "
        "chosen (design proposal and community PR #1228: the most significant metric is the "
        "highest priority of the victims, the lowest wins)",
        violates="sched_preemption_minimal_lowest_victims"),
    TERMINATING_VICTIMS: Mutant(
        "pods already terminating are taken as preemption candidates: their request is "
        "counted as freed, a node where they still hold it is nominated and nothing is "
        "evicted there, so the preemptor does not fit once its victims are gone "
        "(seeded; related: kubernetes/kubernetes#104266, telling preemption victims from other "
        "terminating pods)",
        violates="sched_preemption_minimal_lowest_victims"),
    NO_NOMINATION: Mutant(
        "preemption evicts the victims but does not record the preemptor's "
        "status.nominatedNodeName (docs, pod-priority-preemption: 'When Pod P preempts one or "
        "more Pods on Node N, nominatedNodeName field of Pod P's status is set to the name of "
        "Node N')",
        violates="sched_preemption_minimal_lowest_victims"),
    REPREEMPTS: Mutant(
        "a preemptor whose victims are still terminating on its nominated node preempts "
        "again, evicting pods it would not need once they are gone (upstream's "
        "PodEligibleToPreemptOthers refuses this; kubernetes/kubernetes#104266)",
        violates="sched_preemption_minimal_lowest_victims"),
    EVICTS_UNLABELLED: Mutant(
        "besides the victims it records, preemption deletes every other live lower-priority "
        "pod of the chosen node without naming the preemptor (no DisruptionTarget "
        "condition): pods evicted for nothing, which a property reading only the recorded "
        "victims would not see (design proposal: 'Scheduler will try to minimize the "
        "number of preempted pods'; found by audit)",
        violates="sched_preemption_minimal_lowest_victims"),
    RANKS_BY_COUNT: Mutant(
        "preemption picks the node with the fewest victims, whatever their priorities: a "
        "node where one higher-priority pod must go beats one where two lower-priority pods "
        "would do (kubernetes/community#1228: 'the most significant metric is the highest "
        "priority of victims'; the victim count is only a later tie-break)",
        violates="sched_preemption_minimal_lowest_victims"),
    RANKS_BY_SUM: Mutant(
        "preemption picks the node with the smallest sum of victim priorities, skipping the "
        "highest victim priority: two pods of priority 2 and 4 (sum 6) are spared for one "
        "of priority 5 (kubernetes/community#1228: the highest priority first, the sum "
        "only to break its ties)",
        violates="sched_preemption_minimal_lowest_victims"),
    IGNORES_INIT_PEAK: Mutant(
        "the pod's request computed as its sidecars plus its app containers, the init "
        "containers' peak left out (KEP-753: max(max_i InitContainerUse(i), sum(sidecars) + "
        "sum(containers))): a pod whose init container needs more than its app containers "
        "preempts too few victims, and does not fit once they are gone",
        violates="sched_preemption_minimal_lowest_victims"),
}


class Scheduler(Machine):
    """Schedulers over one scenario of ``model.scheduler.scenarios``; see the
    module text. Subclasses name the scenario and the mutants it shows."""

    name = "scheduler"
    scenario = "placement"
    mutants = {}
    #: the code of every scenario is here; each subclass declares its mutants
    mutant_names = frozenset(ALL_MUTANTS)

    def __init__(self, *, crashes: int = 0, bind_failures: int = 0, deletions: int = 0,
                 mutant: str | None = None):
        super().__init__(mutant)
        self.limits = (crashes, bind_failures, deletions)
        self.schedulers, self.nodes, self.pods, self.bound = SCENARIOS[self.scenario]()
        request = {INIT_SUMMED: summed_request,
                   SIDECAR_MAX: sidecars_as_init_request,
                   IGNORES_INIT_PEAK: without_init_peak}.get(mutant, effective_request)
        self.plugins = Plugins(request=request, honor_taints=mutant != IGNORES_TAINT,
                               spread_counts_terminating=mutant == SPREAD_TERMINATING,
                               spread_key="kubernetes.io/hostname"
                               if mutant == SPREAD_WRONG_KEY else None,
                               reprieve={PREEMPTS_ALL_LOWER: "none",
                                         REPRIEVES_LOWEST: "lowest_first"}.get(
                                   mutant, "highest_first"),
                               victims_include_terminating=mutant == TERMINATING_VICTIMS,
                               worst_node=mutant == WORST_NODE,
                               rank={RANKS_BY_COUNT: "count",
                                     RANKS_BY_SUM: "sum"}.get(mutant, "priority"))
        self.lower = (lambda v, p: v <= p) if mutant == PREEMPTS_EQUAL else (lambda v, p: v < p)
        self._cycles: dict = {}

    def config(self):
        # the scenario is the model's (its class), not a bound
        return dict(zip(BUDGETS, self.limits))

    # -- helpers ------------------------------------------------------------------
    def responsible(self, s: int, p: int) -> bool:
        return self.mutant == BINDS_OTHERS or self.pods[p].scheduler == self.schedulers[s]

    def budget_left(self, state, i: int) -> bool:
        return state[SPENT][i] < self.limits[i]

    @staticmethod
    def _spend(state, i: int, cap: int | None = None):
        spent = list(state[SPENT])
        spent[i] = spent[i] + 1 if cap is None else min(spent[i] + 1, cap)
        return state[:SPENT] + (tuple(spent),) + state[SPENT + 1:]

    def _write(self, state, p: int, entry) -> tuple:
        """The apiserver changes pod ``p``: a watch event for every informer."""
        server = state[SERVER][:p] + (entry,) + state[SERVER][p + 1:]
        scheds = tuple(sc if sc[CACHE] is None or p in sc[EVENTS]
                       else sc[:EVENTS] + (sc[EVENTS] + (p,),) + sc[EVENTS + 1:]
                       for sc in state[SCHEDS])
        return (server, scheds) + state[ORPHANS:]

    @staticmethod
    def _set_sched(state, s: int, sc) -> tuple:
        scheds = state[SCHEDS][:s] + (sc,) + state[SCHEDS][s + 1:]
        return (state[SERVER], scheds) + state[ORPHANS:]

    @staticmethod
    def _queue(sc, p: int, c: str):
        q = sc[QUEUE]
        return sc[:QUEUE] + (q[:p] + c + q[p + 1:],) + sc[QUEUE + 1:]

    def snapshot(self, sc, p: int) -> list:
        """What scheduler ``sc`` filters pod ``p`` against: the bound pods of
        its cache, the pods it assumed, and the nominated pods of no lower
        priority (``(index, Pod, node, terminating)``)."""
        cache, pods = sc[CACHE], self.pods
        placed = [(q, pods[q], e[NODE], e[PHASE] == TERMINATING)
                  for q, e in enumerate(cache) if e[NODE] >= 0 and e[PHASE] != GONE]
        if self.mutant != STALE_NODE_VIEW:
            placed += [(q, pods[q], n, False) for q, n, _ in sc[ASSUMED]
                       if cache[q][NODE] != n]
        prio = pods[p].priority
        placed += [(q, pods[q], e[NOMINATED], False) for q, e in enumerate(cache)
                   if q != p and e[NODE] < 0 and e[PHASE] == LIVE and e[NOMINATED] >= 0
                   and pods[q].priority >= prio]
        return placed

    def cycle(self, sc, p: int):
        """The scheduling cycle's outcome for pod ``p``: the best nodes, or
        ``[]`` and the preemption (node, victims) or None."""
        key = (sc[CACHE], sc[ASSUMED], p)
        out = self._cycles.get(key)
        if out is None:
            placed = self.snapshot(sc, p)
            best = self.plugins.best(self.pods[p], self.nodes, placed)
            out = (best, None if best else self._preemption(sc, p, placed))
            if len(self._cycles) > 200_000:
                self._cycles.clear()
            self._cycles[key] = out
        return out

    def _preemption(self, sc, p: int, placed):
        cache, pod = sc[CACHE], self.pods[p]
        nominated = cache[p][NOMINATED]
        if nominated >= 0 and self.mutant != REPREEMPTS and \
                any(e[NODE] == nominated and e[PHASE] == TERMINATING
                    and self.pods[q].priority < pod.priority for q, e in enumerate(cache)):
            return None  # its victims are still on their way out
        return self.plugins.preemption(pod, self.nodes, placed, self.lower)

    # -- the machine ---------------------------------------------------------------
    def init_states(self):
        server = []
        for p, pod in enumerate(self.pods):
            if p in self.bound:
                node, terminating = self.bound[p]
                server.append((node, pod.scheduler, TERMINATING if terminating else LIVE, -1, -1))
            else:
                server.append((-1, "", LIVE, -1, -1))
        server = tuple(server)
        scheds = tuple((server, (), self._initial_queue(s, server), ())
                       for s in range(len(self.schedulers)))
        yield (server, scheds, (), (0, 0, 0, 0))

    def _initial_queue(self, s, server) -> str:
        return "".join("A" if e[NODE] < 0 and e[PHASE] == LIVE and self.responsible(s, p)
                       else "-" for p, e in enumerate(server))

    def steps(self, state):
        for s, sc in enumerate(state[SCHEDS]):
            if sc[CACHE] is None:
                yield Step("Relist", (s,))
                continue
            if sc[EVENTS]:
                yield Step("Deliver", (s,))
            for p, c in enumerate(sc[QUEUE]):
                if c == "A":
                    best, _ = self.cycle(sc, p)
                    for n in best:
                        yield Step("Schedule", (s, p, n))
                    if not best:
                        yield Step("Unschedulable", (s, p))
                elif c == "B":
                    yield Step("BackoffDone", (s, p))
            if "U" in sc[QUEUE]:
                yield Step("Flush", (s,))
            for p, _, status in sc[ASSUMED]:
                if status == SENDING:
                    yield Step("Bind", (s, p))
                    if self.budget_left(state, 1):
                        yield Step("BindFails", (s, p))
            if self.budget_left(state, 0):
                yield Step("Crash", (s,))
        for i in range(len(state[ORPHANS])):
            yield Step("OrphanBind", (i,))
        for p, e in enumerate(state[SERVER]):
            if e[PHASE] == TERMINATING:
                yield Step("Gone", (p,))
            elif e[PHASE] == LIVE and e[NODE] >= 0 and self.budget_left(state, 2):
                yield Step("DeletePod", (p,))

    # -- the scheduler's steps -------------------------------------------------------
    @action("Relist", tag=SYSTEM)
    def _Relist(self, state, s):
        if state[SCHEDS][s][CACHE] is not None:
            return None
        server = state[SERVER]
        return self._set_sched(state, s, (server, (), self._initial_queue(s, server), ()))

    @action("Deliver", tag=SYSTEM)
    def _Deliver(self, state, s):
        sc = state[SCHEDS][s]
        if sc[CACHE] is None or not sc[EVENTS]:
            return None
        p, events = sc[EVENTS][0], sc[EVENTS][1:]
        old, new = sc[CACHE][p], state[SERVER][p]
        cache = sc[CACHE][:p] + (new,) + sc[CACHE][p + 1:]
        assumed = sc[ASSUMED]
        if new[NODE] >= 0 or new[PHASE] == GONE:
            # the binding (or the deletion) is observed: the assumption is
            # confirmed or dropped — unless its bind is still being sent
            assumed = tuple(a for a in assumed if a[0] != p or a[2] == SENDING
                            or (a[2] == LEAKED and new[PHASE] != GONE))
        queue = sc[QUEUE]
        if (new[NODE] >= 0 or new[PHASE] != LIVE) and queue[p] in "ABU":
            queue = queue[:p] + "-" + queue[p + 1:]
        freed = (new[NODE] != old[NODE] and new[NODE] >= 0) or new[PHASE] != old[PHASE]
        if freed:
            queue = queue.replace("U", "A")
        return self._set_sched(state, s, (cache, events, queue, assumed))

    @action("Schedule", tag=SYSTEM)
    def _Schedule(self, state, s, p, n):
        sc = state[SCHEDS][s]
        if sc[CACHE] is None or sc[QUEUE][p] != "A" or n not in self.cycle(sc, p)[0]:
            return None
        sc = self._queue(sc, p, "S")
        sc = sc[:ASSUMED] + (tuple(sorted(sc[ASSUMED] + ((p, n, SENDING),))),)
        return self._set_sched(state, s, sc)

    @action("Unschedulable", tag=SYSTEM)
    def _Unschedulable(self, state, s, p):
        sc = state[SCHEDS][s]
        if sc[CACHE] is None or sc[QUEUE][p] != "A":
            return None
        best, preemption = self.cycle(sc, p)
        if best:
            return None
        sc = self._queue(sc, p, "U")
        if preemption is not None:
            # the scheduler's nominator records the nomination at once, so
            # its next cycles leave room for the preemptor (upstream's
            # AddNominatedPod), before the informer shows it
            node, victims = preemption
            e = sc[CACHE][p]
            cache = sc[CACHE][:p] + (e[:NOMINATED] + (node,) + e[NOMINATED + 1:],) \
                + sc[CACHE][p + 1:]
            sc = (cache,) + sc[CACHE + 1:]
        nxt = self._set_sched(state, s, sc)
        if preemption is not None:
            for v in victims:
                e = nxt[SERVER][v]
                if e[PHASE] == LIVE:
                    nxt = self._write(nxt, v, (e[NODE], e[BY], TERMINATING, e[NOMINATED], p))
            if self.mutant == EVICTS_UNLABELLED:
                for v, e in enumerate(nxt[SERVER]):
                    if e[NODE] == node and e[PHASE] == LIVE and \
                            self.pods[v].priority < self.pods[p].priority:
                        nxt = self._write(nxt, v, e[:PHASE] + (TERMINATING,) + e[PHASE + 1:])
            e = nxt[SERVER][p]
            if e[NOMINATED] != node and self.mutant != NO_NOMINATION:
                nxt = self._write(nxt, p, e[:NOMINATED] + (node,) + e[NOMINATED + 1:])
        return nxt

    @action("BackoffDone", tag=SYSTEM)
    def _BackoffDone(self, state, s, p):
        sc = state[SCHEDS][s]
        if sc[CACHE] is None or sc[QUEUE][p] != "B":
            return None
        return self._set_sched(state, s, self._queue(sc, p, "A"))

    @action("Flush", tag=SYSTEM)
    def _Flush(self, state, s):
        sc = state[SCHEDS][s]
        if sc[CACHE] is None or "U" not in sc[QUEUE]:
            return None
        return self._set_sched(state, s, sc[:QUEUE] + (sc[QUEUE].replace("U", "A"),)
                               + sc[QUEUE + 1:])

    def _sending(self, sc, p):
        return next((a for a in sc[ASSUMED] if a[0] == p and a[2] == SENDING), None)

    def _apiserver_bind(self, state, p, n, by):
        """The Binding subresource: 409 if the pod is already bound or being
        deleted; otherwise nodeName is set (and the nomination cleared)."""
        e = state[SERVER][p]
        if e[PHASE] != LIVE or (e[NODE] >= 0 and self.mutant != BIND_OVERWRITES):
            return state, False
        return self._write(state, p, (n, by, LIVE, -1, e[PREEMPTED_BY])), True

    @action("Bind", tag=SYSTEM)
    def _Bind(self, state, s, p):
        sc = state[SCHEDS][s]
        entry = None if sc[CACHE] is None else self._sending(sc, p)
        if entry is None:
            return None
        nxt, ok = self._apiserver_bind(state, p, entry[1], self.schedulers[s])
        sc = nxt[SCHEDS][s]
        rest = tuple(a for a in sc[ASSUMED] if a != entry)
        if ok:
            sc = sc[:ASSUMED] + (tuple(sorted(rest + ((p, entry[1], BOUND),))),)
            return self._set_sched(nxt, s, self._queue(sc, p, "-"))
        nxt = self._spend(nxt, CONFLICTS, cap=1)
        keep = self.mutant == KEEPS_ON_CONFLICT
        return self._failed(nxt, s, p, entry, rest, keep)

    @action("BindFails", tag=FAULT, rare=True)
    def _BindFails(self, state, s, p):
        sc = state[SCHEDS][s]
        entry = None if sc[CACHE] is None else self._sending(sc, p)
        if entry is None or not self.budget_left(state, 1):
            return None
        rest = tuple(a for a in sc[ASSUMED] if a != entry)
        return self._failed(self._spend(state, 1), s, p, entry, rest,
                            self.mutant == NEVER_FORGETS)

    def _failed(self, state, s, p, entry, rest, keep):
        """A refused or failed bind: ForgetPod (unless a mutant keeps it) and
        back to the queue through backoff."""
        sc = state[SCHEDS][s]
        if keep:
            rest = tuple(sorted(rest + ((p, entry[1], LEAKED),)))
        sc = sc[:ASSUMED] + (rest,)
        e = sc[CACHE][p]
        back = "B" if e[NODE] < 0 and e[PHASE] == LIVE else "-"
        return self._set_sched(state, s, self._queue(sc, p, back))

    @action("Crash", tag=FAULT, rare=True)
    def _Crash(self, state, s):
        if not self.budget_left(state, 0):
            return None
        sc = state[SCHEDS][s]
        if sc[CACHE] is None:
            return None
        orphans = tuple(sorted(state[ORPHANS] + tuple(
            (p, n, s) for p, n, status in sc[ASSUMED] if status == SENDING)))
        nxt = self._set_sched(state, s, (None, (), "-" * len(self.pods), ()))
        return self._spend(nxt[:ORPHANS] + (orphans,) + nxt[SPENT:], 0)

    # -- the world's steps -----------------------------------------------------------------
    @action("OrphanBind", tag=SYSTEM)
    def _OrphanBind(self, state, i):
        if i >= len(state[ORPHANS]):
            return None
        p, n, s = state[ORPHANS][i]
        orphans = state[ORPHANS][:i] + state[ORPHANS][i + 1:]
        nxt, _ = self._apiserver_bind(state, p, n, self.schedulers[s])
        return nxt[:ORPHANS] + (orphans,) + nxt[SPENT:]

    @action("Gone", tag=SYSTEM)
    def _Gone(self, state, p):
        e = state[SERVER][p]
        if e[PHASE] != TERMINATING:
            return None
        return self._write(state, p, e[:PHASE] + (GONE,) + e[PHASE + 1:])

    @action("DeletePod", tag=ENVIRONMENT, rare=True)
    def _DeletePod(self, state, p):
        e = state[SERVER][p]
        if e[PHASE] != LIVE or e[NODE] < 0 or not self.budget_left(state, 2):
            return None
        return self._spend(self._write(state, p, e[:PHASE] + (TERMINATING,) + e[PHASE + 1:]), 2)

    # -- display -----------------------------------------------------------------------------
    def view(self, state):
        phases = ("live", "terminating", "gone")
        statuses = ("sending", "bound", "leaked")
        nodes = [n.name for n in self.nodes]
        names = [p.name for p in self.pods]

        def node(i):
            return nodes[i] if i >= 0 else ""

        def pods(entries):
            return {names[p]: {"node": node(e[NODE]), "bound_by": e[BY], "phase": phases[e[PHASE]],
                               "nominated": node(e[NOMINATED]),
                               "preempted_by": names[e[PREEMPTED_BY]] if e[PREEMPTED_BY] >= 0
                               else ""}
                    for p, e in enumerate(entries or ())}
        out = {"server": pods(state[SERVER])}
        for s, sc in enumerate(state[SCHEDS]):
            out[self.schedulers[s]] = {
                "listed": sc[CACHE] is not None,
                "cache": pods(sc[CACHE]),
                "events": [names[p] for p in sc[EVENTS]],
                "queue": {names[p]: c for p, c in enumerate(sc[QUEUE]) if c != "-"},
                "assumed": [(names[p], nodes[n], statuses[st]) for p, n, st in sc[ASSUMED]],
            }
        out["orphan_binds"] = [(names[p], nodes[n], self.schedulers[s])
                               for p, n, s in state[ORPHANS]]
        out["spent"] = dict(zip(BUDGETS + ("conflicts",), state[SPENT]))
        return out


def _with(scenario: str, *mutants: str):
    return {"scenario": scenario, "mutants": {m: ALL_MUTANTS[m] for m in mutants}}


class PlacementScheduler(Scheduler):
    """Two schedulers, the filters, the effective request, the assume cache."""
    name = "scheduler"
    scenario = "placement"
    mutants = _with("placement", INIT_SUMMED, SIDECAR_MAX, IGNORES_TAINT, STALE_NODE_VIEW,
                    BINDS_OTHERS)["mutants"]


class PreemptionScheduler(Scheduler):
    """Priority and preemption."""
    name = "scheduler-preemption"
    scenario = "preemption"
    mutants = _with("preemption", PREEMPTS_EQUAL)["mutants"]


class VictimsScheduler(Scheduler):
    """Which pods preemption evicts and on which node: several lower-priority
    pods per node, a terminating one, one right answer."""
    name = "scheduler-victims"
    scenario = "victims"
    mutants = _with("victims", PREEMPTS_ALL_LOWER, REPRIEVES_LOWEST, WORST_NODE,
                    TERMINATING_VICTIMS, NO_NOMINATION, REPREEMPTS, EVICTS_UNLABELLED)["mutants"]


class VictimsRankScheduler(Scheduler):
    """Which node preemption picks when the nodes' victims differ in highest
    priority, priority sum and number, each pointing to another node."""
    name = "scheduler-victims-rank"
    scenario = "victims_rank"
    mutants = _with("victims_rank", RANKS_BY_COUNT, RANKS_BY_SUM, IGNORES_INIT_PEAK)["mutants"]


class SpreadScheduler(Scheduler):
    """Topology spread over zones with a terminating pod."""
    name = "scheduler-spread"
    scenario = "spread"
    mutants = _with("spread", SPREAD_TERMINATING, SPREAD_WRONG_KEY)["mutants"]


class BindingScheduler(Scheduler):
    """Bind failures, a crash with a Binding on the wire, 409s. The crash is
    what this model is about, so random runs take it as often as any step
    (the budget still bounds it)."""
    name = "scheduler-binding"
    scenario = "binding"
    rare = frozenset({"BindFails", "DeletePod"})
    mutants = _with("binding", NEVER_FORGETS, KEEPS_ON_CONFLICT, BIND_OVERWRITES)["mutants"]


# -- HA: two replicas and leader election on a Lease ------------------------------------------

LEASE, ELECT = 4, 5
#: ticks: leaseDurationSeconds (candidates wait this long after the last renew
#: before taking the lease) and renewDeadline (a leader that has not renewed
#: for this long stops leading); client-go requires renewDeadline < leaseDuration
LEASE_DURATION, RENEW_DEADLINE = 3, 2
#: the steps only a leader takes: kube-scheduler runs its scheduling loop in
#: OnStartedLeading
LEADER_ONLY = frozenset({"Schedule", "Unschedulable", "Bind", "BindFails", "BackoffDone",
                         "Flush"})
SCHEDULES_WITHOUT_LEASE = "schedules_without_lease"
UPDATES_WITHOUT_PRECONDITION = "lease_update_without_precondition"
WAITS_FOR_RELEASE = "never_takes_expired_lease"
CRASH_KEEPS_IDENTITY = "crash_keeps_identity"

HA_MUTANTS = {
    SCHEDULES_WITHOUT_LEASE: Mutant(
        "a replica runs scheduling cycles and binds without holding the Lease (leader election "
        "bypassed, as with --leader-elect=false on two replicas): the standby binds pods too",
        violates="sched_binds_only_by_lease_holder"),
    UPDATES_WITHOUT_PRECONDITION: Mutant(
        "the Lease is updated without its resourceVersion precondition (a blind write instead "
        "of client-go's Update of the object it read): two candidates that read a free or "
        "expired Lease both 'win', the second overwriting a lease renewed a moment ago",
        violates="sched_lease_taken_only_when_expired"),
    WAITS_FOR_RELEASE: Mutant(
        "a candidate never takes a Lease another identity holds, even once it has not been "
        "renewed for leaseDurationSeconds: after the leader crashes (its restart is a new "
        "identity) nobody schedules again",
        violates="sched_feasible_pod_eventually_bound"),
    CRASH_KEEPS_IDENTITY: Mutant(
        "a replica restarted after a crash comes back under the crashed process's identity, "
        "so it finds the Lease still naming 'itself' and leads again without waiting for it "
        "to expire",
        violates="sched_restart_is_a_new_identity"),
}


class HAScheduler(Scheduler):
    """Two replicas of the default scheduler and a coordination.k8s.io Lease,
    as kube-scheduler runs with ``--leader-elect`` (the default) through
    client-go's leaderelection. State: the base state plus

    * ``lease`` = ``(holder, incarnation, age, handed_over)`` — the Lease at
      the apiserver: holderIdentity (a replica and the incarnation of its
      process, -1 none) and the ticks since its renewTime (capped at
      ``LEASE_DURATION``); ``handed_over`` is a ghost bit for the takeover
      cover, set when a write replaces one holder by another;
    * ``elect`` = per replica ``(incarnation, seen, lead)``: ``seen`` is the
      Lease as the replica last read it, ``(holder, incarnation, expired,
      fresh)`` or ``()``; ``fresh`` is False once the Lease was written after
      the read — exactly when its resourceVersion no longer matches, which
      keeps the state finite where a counter would not; ``lead`` is the
      ticks left before the replica's renewDeadline (0: not leading).

    ``ReadLease`` is client-go's Get, ``WriteLease`` its Update with the read
    object's resourceVersion (409 if stale); a candidate writes only if the
    Lease is free, its own, or was expired when read. ``Tick`` is time: every
    Lease ages and every leader's deadline nears. A live leader renews before
    its deadline (Tick waits for it: renewDeadline and retryPeriod are chosen
    so that a healthy leader does); one that cannot (another identity holds
    the Lease) stops leading, and kube-scheduler then exits and restarts
    (modelled as a restart without a crash budget, same identity). A crash
    (the fault) gives the replica a new identity on restart, as
    kube-scheduler's hostname_uuid does.
    """

    name = "scheduler-ha"
    scenario = "ha"
    rare = frozenset({"BindFails", "DeletePod"})
    mutants = HA_MUTANTS

    def init_states(self):
        for base in super().init_states():
            yield base + ((-1, 0, LEASE_DURATION, 0), tuple((0, (), 0) for _ in self.schedulers))

    def leading(self, state, s) -> bool:
        return state[ELECT][s][2] > 0

    def _gated(self, state, name, s) -> bool:
        return (name in LEADER_ONLY and self.mutant != SCHEDULES_WITHOUT_LEASE
                and not self.leading(state, s))

    def steps(self, state):
        for step in super().steps(state):
            if not self._gated(state, step.name, step.params[0] if step.params else -1) \
                    or step.name not in LEADER_ONLY:
                yield step
        for s, sc in enumerate(state[SCHEDS]):
            if sc[CACHE] is not None:
                yield Step("WriteLease" if state[ELECT][s][1] else "ReadLease", (s,))
        if self._time_may_pass(state):
            yield Step("Tick", ())

    def apply(self, state, step):
        if step.name in LEADER_ONLY and self._gated(state, step.name, step.params[0]):
            return None
        return super().apply(state, step)

    @staticmethod
    def _set_elect(state, s, entry):
        elect = state[ELECT][:s] + (entry,) + state[ELECT][s + 1:]
        return state[:ELECT] + (elect,) + state[ELECT + 1:]

    def _time_may_pass(self, state) -> bool:
        holder, inc, age, _ = state[LEASE]
        if age >= LEASE_DURATION and not any(e[2] for e in state[ELECT]):
            return False  # nothing left to age
        # a live leader that holds the Lease renews before its deadline
        return not any(sc[CACHE] is not None and e[2] == 1 and (s, e[0]) == (holder, inc)
                       for s, (sc, e) in enumerate(zip(state[SCHEDS], state[ELECT])))

    @action("ReadLease", tag=SYSTEM)
    def _ReadLease(self, state, s):
        if state[SCHEDS][s][CACHE] is None or state[ELECT][s][1]:
            return None
        holder, inc, age, _ = state[LEASE]
        e = state[ELECT][s]
        return self._set_elect(state, s, (e[0], (holder, inc, age >= LEASE_DURATION, True), e[2]))

    @action("WriteLease", tag=SYSTEM)
    def _WriteLease(self, state, s):
        e = state[ELECT][s]
        if state[SCHEDS][s][CACHE] is None or not e[1]:
            return None
        holder, hinc, expired, fresh = e[1]
        cleared = self._set_elect(state, s, (e[0], (), e[2]))
        other = holder >= 0 and (holder, hinc) != (s, e[0])
        if other and (not expired or self.mutant == WAITS_FOR_RELEASE):
            return cleared          # held by another, not expired: retry later
        if not fresh and self.mutant != UPDATES_WITHOUT_PRECONDITION:
            return cleared          # 409: the resourceVersion read is stale
        old = state[LEASE]
        handed = int(old[3] or (old[0] >= 0 and old[:2] != (s, e[0])))
        nxt = cleared[:LEASE] + ((s, e[0], 0, handed),) + cleared[LEASE + 1:]
        elect = tuple((i, seen[:3] + (False,) if seen and r != s else seen, lead)
                      for r, (i, seen, lead) in enumerate(nxt[ELECT]))
        elect = elect[:s] + ((e[0], (), RENEW_DEADLINE),) + elect[s + 1:]
        return nxt[:ELECT] + (elect,)

    @action("Tick", tag=SYSTEM)
    def _Tick(self, state):
        if not self._time_may_pass(state):
            return None
        holder, inc, age, handed = state[LEASE]
        nxt = state[:LEASE] + ((holder, inc, min(age + 1, LEASE_DURATION), handed),) \
            + state[LEASE + 1:]
        for s, (i, seen, lead) in enumerate(state[ELECT]):
            if lead == 1:
                nxt = self._down(nxt, s)           # OnStoppedLeading: the process exits
            nxt = self._set_elect(nxt, s, (i, () if lead == 1 else seen, max(lead - 1, 0)))
        return nxt

    def _down(self, state, s):
        """The replica's process ends: cache, queue and assumptions lost, a
        Binding already sent still on the wire."""
        sc = state[SCHEDS][s]
        if sc[CACHE] is None:
            return state
        orphans = tuple(sorted(state[ORPHANS] + tuple(
            (p, n, s) for p, n, status in sc[ASSUMED] if status == SENDING)))
        nxt = self._set_sched(state, s, (None, (), "-" * len(self.pods), ()))
        return nxt[:ORPHANS] + (orphans,) + nxt[ORPHANS + 1:]

    def _Crash(self, state, s):
        nxt = super()._Crash(state, s)
        if nxt is None:
            return None
        i = state[ELECT][s][0]
        fresh = i if self.mutant == CRASH_KEEPS_IDENTITY else i + 1
        return self._set_elect(nxt, s, (fresh, (), 0))

    def view(self, state):
        out = super().view(state)
        # both replicas carry the default scheduler's name: show them apart
        for s in range(len(self.schedulers)):
            out.pop(self.schedulers[s], None)
        for s in range(len(self.schedulers)):
            out[f"replica-{s}"] = self._replica_view(state, s)
        holder, inc, age, handed = state[LEASE]
        out["lease"] = {"holder": f"replica-{holder}_{inc}" if holder >= 0 else "",
                        "ticks_since_renew": age, "handed_over": bool(handed)}
        return out

    def _replica_view(self, state, s):
        i, seen, lead = state[ELECT][s]
        sc = state[SCHEDS][s]
        nodes = [n.name for n in self.nodes]
        names = [p.name for p in self.pods]
        statuses = ("sending", "bound", "leaked")
        return {
            "identity": f"replica-{s}_{i}", "leading_ticks_left": lead,
            "read_lease": {"holder": f"replica-{seen[0]}_{seen[1]}" if seen[0] >= 0 else "",
                           "expired": seen[2], "resourceVersion_current": seen[3]}
            if seen else {},
            "listed": sc[CACHE] is not None,
            "events": [names[p] for p in sc[EVENTS]],
            "queue": {names[p]: c for p, c in enumerate(sc[QUEUE]) if c != "-"},
            "assumed": [(names[p], nodes[n], statuses[st]) for p, n, st in sc[ASSUMED]],
        }


__all__ = ["HAScheduler", "Scheduler", "PlacementScheduler", "PreemptionScheduler",
           "SpreadScheduler", "VictimsScheduler", "VictimsRankScheduler", "BindingScheduler",
           "ALL_MUTANTS", "InitContainer", "DEFAULT_SCHEDULER"]

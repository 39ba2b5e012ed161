"""What kube-scheduler promises, read off the pods the apiserver holds.

Every filter the scheduler applies is restated here as a row of
:data:`FILTERS`, from the documentation's wording, over the apiserver's
pods — never by calling ``model.scheduler.plugins``, so that a property
cannot inherit the bug it is meant to catch (the audit of issue 11 found
properties that restated the implementation and could not fail). The
effective request is computed here as the peak of a pod's *timeline* (what
runs at each moment of its start-up), the docs' explanation, rather than
the KEP's closed formula the plugin uses; ``tests/test_scheduler_plugins``
checks the two agree on random pods.

Sources: kubernetes.io/docs/concepts/scheduling-eviction/ (kube-scheduler,
taint-and-toleration, assign-pod-node, topology-spread-constraints,
pod-priority-preemption, scheduling-framework), docs/concepts/workloads/
pods/sidecar-containers and init-containers, KEP-753, and the seeds.
"""

from __future__ import annotations

from itertools import combinations

from kubemc.model.scheduler.machine import (
    ASSUMED, CACHE, CONFLICTS, ELECT, GONE, LEASE, LEASE_DURATION, LIVE, NODE, NOMINATED,
    ORPHANS, PHASE, PREEMPTED_BY, QUEUE, SCHEDS, SENDING, SERVER, SPENT, TERMINATING,
)
from kubemc.model.scheduler.objects import DEFAULT_SCHEDULER, HOSTNAME
from kubemc.model.kernel import ENVIRONMENT
from kubemc.properties.core import COVER, INVARIANT, LEADS_TO, TRANSITION, Property

_DOCS = "kubernetes.io/docs/concepts/scheduling-eviction/"
_SEED = ("seeds: 'the kube-scheduler assigns new workload objects, such as pods, to nodes ... "
         "deciding from the cluster's current state ... and the new object's requirements'")
RESOURCES = ("cpu", "memory")


# -- the apiserver's pods --------------------------------------------------------------

def on_nodes(m, server, skip=None) -> list:
    """``(index, Pod, node, terminating)`` of every pod the apiserver holds on
    a node (a terminating pod is still there until the kubelet removes it)."""
    return [(p, m.pods[p], e[NODE], e[PHASE] == TERMINATING) for p, e in enumerate(server)
            if e[NODE] >= 0 and e[PHASE] != GONE and p != skip]


def at_bind(m, state, skip) -> list:
    """The pods a bind of pod ``skip`` is judged against: those the apiserver
    holds on nodes, and those whose Binding is on its way to the apiserver
    (assumed and not yet answered, or sent by a scheduler that crashed).

    Why the Bindings in flight count: the scheduling framework binds
    asynchronously, so binds complete in any order; a bind judged without the
    one sent before it would see a spread that the scheduler never chose
    (kube-scheduler decides on its assumed pods: scheduling-framework,
    'Reserve'). A Binding in flight is a request the apiserver is about to
    judge, not a belief of the scheduler: it is in the state as a request."""
    pods = on_nodes(m, state[SERVER], skip)
    flying = {(p, n) for sched in state[SCHEDS] if sched[CACHE] is not None
              for p, n, status in sched[ASSUMED] if status == SENDING}
    flying |= {(p, n) for p, n, _ in state[ORPHANS]}
    pods += [(p, m.pods[p], n, False) for p, n in sorted(flying)
             if p != skip and state[SERVER][p][NODE] < 0 and state[SERVER][p][PHASE] == LIVE]
    return pods


def pod_request(pod) -> dict:
    """The pod's request per resource: the peak of what runs at each moment of
    its life — each init container in turn beside the sidecars started before
    it, then every sidecar beside every app container — plus the overhead
    (docs/concepts/workloads/pods/sidecar-containers, 'Resource sharing within
    containers'; KEP-753)."""
    inits = pod.init_containers
    out = {}
    for res in RESOURCES:
        def amount(r):
            return getattr(r, res)
        moments = [sum(amount(s.requests) for s in inits[:i] if s.sidecar) + amount(c.requests)
                   for i, c in enumerate(inits)]
        moments.append(sum(amount(s.requests) for s in inits if s.sidecar)
                       + sum(amount(r) for r in pod.containers))
        out[res] = max(moments) + amount(pod.overhead)
    return out


def _labels(node) -> dict:
    return {HOSTNAME: node.name, **dict(node.labels)}


def _selects(selector, labels) -> bool:
    return set(selector) <= set(labels)


def _tolerated(pod, key, value, effect) -> bool:
    """taint-and-toleration: 'A toleration "matches" a taint if the keys are
    the same and the effects are the same, and: the operator is Exists (in
    which case no value should be specified), or the operator is Equal and
    the values should be equal'; 'An empty key with operator Exists matches
    all keys, values and effects'; an empty effect matches all effects."""
    for t in pod.tolerations:
        effect_ok = t.effect in ("", effect)
        if t.operator == "Exists" and t.key == "" and effect_ok:
            return True
        if t.key == key and effect_ok and (t.operator == "Exists" or t.value == value):
            return True
    return False


# -- the filter table: one row per plugin, each from the docs' wording -------------------

def _unschedulable(m, pod, n, others):
    """NodeUnschedulable: a cordoned node takes only pods tolerating
    node.kubernetes.io/unschedulable:NoSchedule."""
    node = m.nodes[n]
    return not node.unschedulable or _tolerated(
        pod, "node.kubernetes.io/unschedulable", "", "NoSchedule")


_OPERATORS = {
    "In": lambda labels, r: r.key in labels and labels[r.key] in r.values,
    "NotIn": lambda labels, r: labels.get(r.key) not in r.values,
    "Exists": lambda labels, r: r.key in labels,
    "DoesNotExist": lambda labels, r: r.key not in labels,
}


def _node_affinity(m, pod, n, others):
    """NodeAffinity: 'the node must have each of the indicated key-value pairs
    as labels' (nodeSelector), and with requiredDuringScheduling terms 'the
    pod can be scheduled onto a node if one of the specified terms can be
    satisfied' — a term when all its expressions are."""
    labels = _labels(m.nodes[n])
    if not _selects(pod.node_selector, labels.items()):
        return False
    return not pod.affinity or any(
        all(_OPERATORS[r.operator](labels, r) for r in term) for term in pod.affinity)


def _taints(m, pod, n, others):
    """TaintToleration: NoSchedule — 'no pod will be able to schedule onto the
    node unless it has a matching toleration'; NoExecute also repels."""
    return all(_tolerated(pod, t.key, t.value, t.effect) for t in m.nodes[n].taints
               if t.effect in ("NoSchedule", "NoExecute"))


def _ports(m, pod, n, others):
    """NodePorts: two pods on one node cannot use the same hostPort."""
    taken = [port for _, other, at, _ in others if at == n for port in other.host_ports]
    return all(port not in taken for port in pod.host_ports)


def _fit(m, pod, n, others):
    """NodeResourcesFit: 'the scheduler ensures that, for each resource type,
    the sum of the resource requests of the scheduled containers is less than
    the capacity of the node'; and no more pods than the node allows."""
    node = m.nodes[n]
    here = [other for _, other, at, _ in others if at == n] + [pod]
    if len(here) > node.max_pods:
        return False
    return all(sum(pod_request(p)[res] for p in here) <= getattr(node.allocatable, res)
               for res in RESOURCES)


def _domains(m, pod, key) -> dict:
    """Nodes eligible for a spread constraint: those matching the pod's node
    selector and affinity (nodeAffinityPolicy: Honor) and labelled ``key``."""
    return {n: _labels(node)[key] for n, node in enumerate(m.nodes)
            if key in _labels(node) and _node_affinity(m, pod, n, ())}


def skew_after(m, pod, n, others, constraint) -> int | None:
    """The skew of ``constraint`` with ``pod`` on node ``n``: matching pods
    (not terminating: kubernetes/kubernetes#87845) in n's domain, ``pod``
    included, minus the fewest in any domain. None: n is not in a domain."""
    domains = _domains(m, pod, constraint.topology_key)
    if n not in domains:
        return None
    count = {value: 0 for value in domains.values()}
    for _, other, at, terminating in list(others) + [(None, pod, n, False)]:
        if at in domains and not terminating and _selects(constraint.selector, other.labels):
            count[domains[at]] += 1
    return count[domains[n]] - min(count.values())


def _spread(m, pod, n, others):
    """PodTopologySpread, DoNotSchedule: 'maxSkew ... is the maximum permitted
    difference between the number of matching pods in the target topology
    and the global minimum'; a node without the topology key is not a
    candidate."""
    for c in pod.spread:
        if c.when_unsatisfiable != "DoNotSchedule":
            continue
        skew = skew_after(m, pod, n, others, c)
        if skew is None or skew > c.max_skew:
            return False
    return True


def _anti_affinity(m, pod, n, others):
    """InterPodAffinity, required anti-affinity: the pod does not go into a
    topology domain that already runs a pod its terms select, nor into one
    whose pods' terms select it."""
    here = _labels(m.nodes[n])

    def same_domain(at, key):
        there = _labels(m.nodes[at])
        return key in here and key in there and here[key] == there[key]
    for _, other, at, _ in others:
        if any(same_domain(at, t.topology_key) and _selects(t.selector, other.labels)
               for t in pod.anti_affinity):
            return False
        if any(same_domain(at, t.topology_key) and _selects(t.selector, pod.labels)
               for t in other.anti_affinity):
            return False
    return True


#: plugin name -> predicate(machine, pod, node index, pods on nodes)
FILTERS = {
    "NodeUnschedulable": _unschedulable,
    "NodeAffinity": _node_affinity,
    "TaintToleration": _taints,
    "NodePorts": _ports,
    "NodeResourcesFit": _fit,
    "PodTopologySpread": _spread,
    "InterPodAffinity": _anti_affinity,
}


def failing_filters(m, pod, n, others) -> list[str]:
    return [name for name, passes in FILTERS.items() if not passes(m, pod, n, others)]


def newly_bound(before, after):
    """Pods the step bound: unbound before, on a node after."""
    return [p for p, (b, a) in enumerate(zip(before[SERVER], after[SERVER]))
            if b[NODE] < 0 <= a[NODE]]


# -- the properties ---------------------------------------------------------------------------

def bound_node_passes_filters(m, before, step, after) -> bool:
    return all(not failing_filters(m, m.pods[p], after[SERVER][p][NODE], at_bind(m, before, p))
               for p in newly_bound(before, after))


def within_allocatable(m, state) -> bool:
    pods = on_nodes(m, state[SERVER])
    for n, node in enumerate(m.nodes):
        here = [pod for _, pod, at, _ in pods if at == n]
        if len(here) > node.max_pods:
            return False
        for res in RESOURCES:
            if sum(pod_request(p)[res] for p in here) > getattr(node.allocatable, res):
                return False
    return True


def bound_by_named_scheduler(m, state) -> bool:
    return all(e[1] == (m.pods[p].scheduler_name or DEFAULT_SCHEDULER)
               for p, e in enumerate(state[SERVER]) if e[NODE] >= 0)


def bound_at_most_once(m, before, step, after) -> bool:
    return all(b[NODE] < 0 or a[NODE] == b[NODE]
               for b, a in zip(before[SERVER], after[SERVER]))


def preempts_lower_only(m, state) -> bool:
    return all(m.pods[p].priority < m.pods[e[PREEMPTED_BY]].priority
               for p, e in enumerate(state[SERVER]) if e[PREEMPTED_BY] >= 0)


def evictions(m, before, step, after) -> set:
    """The pods the step takes from running: live before, no longer live
    after — read off the state change, not off any record of who preempted
    them. A user's delete (an ``environment`` step of the kernel) evicts
    nobody on the scheduler's behalf, so it counts for nothing; any other
    step that ends a live pod does, whatever it records."""
    if step is not None and getattr(m, "tags", {}).get(step.name) == ENVIRONMENT:
        return set()
    return {q for q, (b, a) in enumerate(zip(before[SERVER], after[SERVER]))
            if b[PHASE] == LIVE and a[PHASE] != LIVE}


def preemptions(m, before, after, step=None) -> list:
    """The preemptions a step performs, as ``(preemptor, victims, node)``.

    The victims are the step's evictions (:func:`evictions`). A preemptor is
    a pod an evicted pod names as its preemptor (upstream's DisruptionTarget
    condition), or a pending pod the step gives a new nominatedNodeName (a
    preemption with no victims, if nobody names it). An evicted pod that
    names nobody is a victim of the step's preemptor when the step has
    exactly one; otherwise it was evicted for no preemption at all, reported
    as preemptor -1. ``node`` is the preemptor's nominatedNodeName after the
    step (-1: none recorded)."""
    sb, sa = before[SERVER], after[SERVER]
    victims: dict = {}
    unnamed = set()
    for q in evictions(m, before, step, after):
        if sa[q][PREEMPTED_BY] >= 0:
            victims.setdefault(sa[q][PREEMPTED_BY], set()).add(q)
        else:
            unnamed.add(q)
    for p, (b, a) in enumerate(zip(sb, sa)):
        if a[NODE] < 0 and a[NOMINATED] >= 0 and a[NOMINATED] != b[NOMINATED]:
            victims.setdefault(p, set())
    if unnamed and len(victims) == 1:
        victims[next(iter(victims))] |= unnamed
    elif unnamed:
        return [(-1, frozenset(unnamed), -1)]
    return [(p, frozenset(v), sa[p][NOMINATED]) for p, v in sorted(victims.items())]


def _fits_without(m, pod, n, others, removed) -> bool:
    return not failing_filters(m, pod, n, [o for o in others if o[0] not in removed])


def _cheapest_highest_victim(m, pod, n, others):
    """The lowest possible 'highest victim priority' on node ``n``: over every
    non-empty set of live lower-priority pods of ``n`` whose removal lets the
    pod pass every filter there (brute force; None if no set does)."""
    lower = [q for q, other, at, terminating in others
             if at == n and not terminating and other.priority < pod.priority]
    best = None
    for size in range(1, len(lower) + 1):
        for chosen in combinations(lower, size):
            if _fits_without(m, pod, n, others, set(chosen)):
                top = max(m.pods[q].priority for q in chosen)
                best = top if best is None else min(best, top)
    return best


def preemption_fault(m, before, after, step=None) -> str | None:
    """Which rule a preemption of the step breaks, or None. Every pod the
    step takes from running, other than by a user's delete, is a victim
    (:func:`preemptions`), whether or not it names its preemptor. Each
    preemption is judged against the pods the apiserver holds on nodes
    before the step (terminating ones still hold their requests) with the
    filter table:

    * ``no preemptor``: every evicted pod is the victim of a preemption (a
      step that evicts pods naming nobody, with no single preemptor to
      charge them to, evicts them for nothing);
    * ``not nominated``: the victims are on the node recorded as the
      preemptor's nominatedNodeName;
    * ``no room``: removing them lets the preemptor pass every filter there;
    * ``victim spared``: none of them could be spared;
    * ``lower pod would do``: none could be swapped for one lower-priority
      pod of that node;
    * ``better node``: no node offers victims whose highest priority is lower.

    Pods the preemptor already preempted and that are still terminating are
    counted as gone, so preempting again before they are (evicting more than
    the first preemption needed) breaks ``victim spared``.

    ``victim spared`` and ``lower pod would do`` are claimed where removing
    pods can only help the preemptor (resources, pod count, ports,
    anti-affinity): a spread constraint can make a removal hurt, and the
    models that check this property have none on their preemptors.
    """
    for p, victims, n in preemptions(m, before, after, step):
        if p < 0:
            return "no preemptor"
        pod = m.pods[p]
        # the pods P already preempted count as gone: the scheduler judges a
        # preemptor 'as if the preemption victims are already gone' (design
        # proposal, 'Preemption mechanics')
        server = before[SERVER]
        others = [o for o in at_bind(m, before, p)
                  if not (o[3] and server[o[0]][PREEMPTED_BY] == p)]
        where = {q: at for q, _, at, _ in others}
        if n < 0 or any(where.get(v) != n for v in victims):
            return "not nominated"
        if not victims or not _fits_without(m, pod, n, others, victims):
            return "no room"
        for v in victims:
            if _fits_without(m, pod, n, others, victims - {v}):
                return "victim spared"
        for v in victims:
            for u, other, at, terminating in others:
                if at == n and u not in victims and not terminating and \
                        other.priority < m.pods[v].priority and \
                        _fits_without(m, pod, n, others, (victims - {v}) | {u}):
                    return "lower pod would do"
        top = max(m.pods[v].priority for v in victims)
        cheapest = [c for c in (_cheapest_highest_victim(m, pod, k, others)
                                for k in range(len(m.nodes))) if c is not None]
        if cheapest and top > min(cheapest):
            return "better node"
    return None


def preemption_minimal_lowest(m, before, step, after) -> bool:
    return preemption_fault(m, before, after, step) is None


def spread_within_max_skew(m, before, step, after) -> bool:
    for p in newly_bound(before, after):
        pod, n = m.pods[p], after[SERVER][p][NODE]
        for c in pod.spread:
            if c.when_unsatisfiable == "DoNotSchedule":
                skew = skew_after(m, pod, n, at_bind(m, before, p), c)
                if skew is None or skew > c.max_skew:
                    return False
    return True


def no_leaked_reservation(m, state) -> bool:
    for sched in state[SCHEDS]:
        if sched[CACHE] is None:
            continue
        for p, n, _ in sched[ASSUMED]:
            binding = sched[QUEUE][p] == "S"
            if not binding and state[SERVER][p][NODE] != n:
                return False
    return True


def feasible_pending(m, state) -> bool:
    """Some pending pod, named for a running scheduler, has a node on which
    every filter of the table passes against the apiserver's pods."""
    server = state[SERVER]
    for p, e in enumerate(server):
        pod = m.pods[p]
        if e[NODE] >= 0 or e[PHASE] != LIVE or \
                (pod.scheduler_name or DEFAULT_SCHEDULER) not in m.schedulers:
            continue
        others = on_nodes(m, server, p)
        if any(not failing_filters(m, pod, n, others) for n in range(len(m.nodes))):
            return True
    return False


def no_feasible_pending(m, state) -> bool:
    return not feasible_pending(m, state)


def some_preemption(m, state) -> bool:
    return any(e[PREEMPTED_BY] >= 0 for e in state[SERVER])


def running_pod_preempted(m, state) -> bool:
    """A pod the cluster started with on a node (``m.bound``, the scenario's
    running pods) is preempted: preemption evicts pods already running, not
    only ones the scheduler has just placed."""
    return any(e[PREEMPTED_BY] >= 0 and p in m.bound for p, e in enumerate(state[SERVER]))


def some_bind_conflict(m, state) -> bool:
    return state[SPENT][CONFLICTS] > 0


def some_backoff(m, state) -> bool:
    """Some pod waits in a scheduler's backoff queue: its scheduling attempt
    failed after the pod was placed (the bind did not go through)."""
    return any(s[CACHE] is not None and "B" in s[QUEUE] for s in state[SCHEDS])


def some_unschedulable(m, state) -> bool:
    return any(s[CACHE] is not None and "U" in s[QUEUE] for s in state[SCHEDS])


def spread_pod_bound_beside_terminating(m, state) -> bool:
    """A pod with a spread constraint is bound while a pod its constraint
    selects is terminating: the case the spread must not count."""
    server = state[SERVER]
    for p, e in enumerate(server):
        if e[NODE] < 0 or not m.pods[p].spread:
            continue
        for c in m.pods[p].spread:
            if any(f[PHASE] == TERMINATING and _selects(c.selector, m.pods[q].labels)
                   for q, f in enumerate(server)):
                return True
    return False


def binding_outlives_crash(m, state) -> bool:
    """A Binding sent by a scheduler that has since crashed is still on its
    way to the apiserver, for a pod the apiserver has not bound: the crash
    ends the process, not the request already sent (the race of a Binding
    landing after a restart or a takeover needs it)."""
    return any(state[SERVER][p][NODE] < 0 for p, _, _ in state[ORPHANS])


def custom_scheduler_bound(m, state) -> bool:
    return any(e[NODE] >= 0 and e[1] != DEFAULT_SCHEDULER for e in state[SERVER])


# -- HA: the Lease (coordination.k8s.io/v1) at the apiserver ------------------------------------
#
# The Lease is read as the apiserver holds it: holderIdentity and the ticks
# since renewTime; "expired" is leaseDurationSeconds or more since renewTime,
# the API reference's meaning of leaseDurationSeconds ("duration that
# candidates for a lease need to wait to force acquire it").

def _lease_expired(lease) -> bool:
    return lease[2] >= LEASE_DURATION


def lease_taken_only_when_expired(m, before, step, after) -> bool:
    """Who holds the Lease changes from one identity to another only when the
    Lease was expired: a free Lease may be taken, a held one only after its
    holder stopped renewing for leaseDurationSeconds."""
    b, a = before[LEASE], after[LEASE]
    if b[0] < 0 or a[:2] == b[:2]:
        return True
    return _lease_expired(b)


def binds_only_by_lease_holder(m, before, step, after) -> bool:
    """A replica issues a Binding only while the Lease at the apiserver names
    it (its current process) as holder and is not expired. A Binding sent
    before a crash that arrives later is judged where it was issued, not
    where it arrives: see ``orphan_bind_after_takeover``."""
    if step is None or step.name != "Bind":
        return True
    r = step.params[0]
    lease = before[LEASE]
    return lease[:2] == (r, before[ELECT][r][0]) and not _lease_expired(lease)


def restart_is_a_new_identity(m, before, step, after) -> bool:
    """A replica's process that comes back after a crash runs under a
    leader-election identity none of that replica's processes had: the
    identity of the process is the incarnation in ``elect`` (rendered
    ``replica-<r>_<incarnation>``), and incarnations only grow."""
    if step is None or step.name != "Crash":
        return True
    r = step.params[0]
    return after[ELECT][r][0] > before[ELECT][r][0]


def some_takeover(m, state) -> bool:
    """The Lease passed from one holder to another (a ghost bit the machine
    sets when a write changes a set holderIdentity)."""
    return state[LEASE][3] > 0


BOUND_NODE_PASSES_FILTERS = Property(
    "sched_bound_node_passes_filters", "scheduler", TRANSITION,
    "a pod is bound only to a node on which every filter of the table (NodeUnschedulable, "
    "NodeAffinity, TaintToleration, NodePorts, NodeResourcesFit, PodTopologySpread, "
    "InterPodAffinity) passes against the pods the apiserver holds on nodes at the bind and "
    "the Bindings already sent and not yet answered (binds complete in any order)",
    _DOCS + "kube-scheduler: 'nodes that meet the scheduling requirements for a Pod are called "
    "feasible nodes'; each row cites its page; " + _SEED, bound_node_passes_filters)
NODE_WITHIN_ALLOCATABLE = Property(
    "sched_node_within_allocatable", "scheduler", INVARIANT,
    "the requests of the pods bound to a node (terminating ones included, they still run) "
    "never exceed its allocatable, nor their number its pod capacity",
    _DOCS + "../configuration/manage-resources-containers: 'the scheduler ensures that, for "
    "each resource type, the sum of the resource requests of the scheduled containers is less "
    "than the capacity of the node'; KEP-753 for the effective request", within_allocatable)
BOUND_BY_NAMED_SCHEDULER = Property(
    "sched_bound_by_named_scheduler", "scheduler", INVARIANT,
    "a bound pod was bound by the scheduler its spec.schedulerName names, or by the default "
    "scheduler when it names none",
    "seeds: 'the object's configuration data should include the name of the custom scheduler "
    "expected to make the scheduling decision for that particular object; if no such data is "
    "included, the default scheduler is selected instead'", bound_by_named_scheduler)
BOUND_AT_MOST_ONCE = Property(
    "sched_bound_at_most_once", "scheduler", TRANSITION,
    "a pod's node, once set, never changes: a pod is bound at most once",
    "kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1#create-binding-pod-v1; "
    "the apiserver refuses a Binding of a bound pod ('is already assigned to node', 409); "
    "spec.nodeName is immutable once set", bound_at_most_once)
PREEMPTS_LOWER_ONLY = Property(
    "sched_preemption_lower_priority_only", "scheduler", INVARIANT,
    "every pod preempted was of strictly lower priority than the pod that preempted it",
    _DOCS + "pod-priority-preemption: 'Preemption logic tries to find a node where removal of "
    "one or more Pods with lower priority than P would enable P to be scheduled'; 'preemption "
    "must not happen when ... the pending Pods have equal or lower priority than the victims'",
    preempts_lower_only)
PREEMPTION_MINIMAL_LOWEST = Property(
    "sched_preemption_minimal_lowest_victims", "scheduler", TRANSITION,
    "every pod a step takes from running (live before, terminating or gone after), other than "
    "by a user's delete, is a victim of a preemption, whether or not it names its preemptor; "
    "when a pod P preempts, judged by the filter table against the pods the apiserver holds on "
    "nodes: P's nominatedNodeName is set to the node N its victims are on; once the victims are "
    "gone P passes every filter on N (pods already terminating still hold their requests, "
    "except those P itself preempted earlier, which count as gone); no "
    "victim could be spared; no victim could be swapped for one lower-priority pod of N; and "
    "no node has a set of lower-priority pods whose removal makes room and whose highest "
    "priority is lower than that of P's victims",
    _DOCS + "pod-priority-preemption: 'When Pod P preempts one or more Pods on Node N, "
    "nominatedNodeName field of Pod P's status is set to the name of Node N'; 'Preemption "
    "logic tries to find a node where removal of one or more Pods with lower priority than P "
    "would enable P to be scheduled'; kubernetes/community design-proposals/scheduling/"
    "pod-preemption.md, 'Preemption order': 'Scheduler starts from the lowest priority and "
    "considers enough pods that should be preempted', 'Scheduler will try to minimize the "
    "number of preempted pods'; kubernetes/community#1228: in choosing the node 'the most "
    "significant metric is the highest priority of victims'; 'Preemption mechanics': feasibility "
    "is evaluated 'as if the preemption victims are already gone' (PDBs are not modelled)",
    preemption_minimal_lowest)
SPREAD_WITHIN_MAX_SKEW = Property(
    "sched_spread_within_max_skew", "scheduler", TRANSITION,
    "after every bind of a pod with a DoNotSchedule spread constraint, the matching pods in its "
    "domain exceed the fewest in any domain by at most maxSkew",
    _DOCS + "topology-spread-constraints: 'maxSkew describes the degree to which Pods may be "
    "unevenly distributed ... the maximum permitted difference between the number of matching "
    "Pods in the target topology and the global minimum'", spread_within_max_skew)
NO_LEAKED_RESERVATION = Property(
    "sched_no_leaked_reservation", "scheduler", INVARIANT,
    "a pod assumed in a scheduler's cache is either still in its binding cycle or bound on the "
    "apiserver to the node it was assumed on: a failed or refused bind is forgotten",
    _DOCS + "scheduling-framework: 'Unreserve ... is called if a reserved Pod is rejected "
    "... should clean up the state associated with the reserved Pod'; kubernetes/kubernetes#28883",
    no_leaked_reservation)
FEASIBLE_POD_EVENTUALLY_BOUND = Property(
    "sched_feasible_pod_eventually_bound", "scheduler", LEADS_TO,
    "whenever a pending pod could be placed (some node passes every filter of the table "
    "against the apiserver's pods), eventually no pending pod can: every placeable one was bound",
    _DOCS + "kube-scheduler: 'kube-scheduler selects an optimal node to run newly created or "
    "not yet scheduled (unscheduled) pods'; " + _SEED,
    no_feasible_pending, trigger=feasible_pending,
    assumption="the kubelet eventually removes a terminating pod (Gone is a system step)")

LEASE_TAKEN_ONLY_WHEN_EXPIRED = Property(
    "sched_lease_taken_only_when_expired", "scheduler", TRANSITION,
    "the Lease's holderIdentity changes from one holder to another only if the Lease had not "
    "been renewed for leaseDurationSeconds: at any time the apiserver's Lease has at most one "
    "unexpired holder, and nobody takes it from a holder that renews in time",
    "kubernetes.io/docs/concepts/architecture/leases ('Leases ... ensure that only one instance "
    "of a component is running at any given time'); coordination.k8s.io/v1 LeaseSpec: "
    "leaseDurationSeconds 'is duration that candidates for a lease need to wait to force "
    "acquire it'; client-go tools/leaderelection (Update with the resourceVersion read)",
    lease_taken_only_when_expired)
BINDS_ONLY_BY_LEASE_HOLDER = Property(
    "sched_binds_only_by_lease_holder", "scheduler", TRANSITION,
    "a replica issues a Binding only while the apiserver's Lease names that replica's process "
    "as holder and is unexpired (checked where the Binding is issued; one sent before a crash "
    "may still arrive after a takeover — client-go's documented caveat, pinned by a test)",
    "kube-scheduler --leader-elect: 'Start a leader election client and gain leadership before "
    "executing the main loop'; issue 11 item 1 ('only the leader schedules'); client-go "
    "leaderelection: 'does not guarantee that only one client is acting as a leader (a.k.a. "
    "fencing)'", binds_only_by_lease_holder)
RESTART_IS_A_NEW_IDENTITY = Property(
    "sched_restart_is_a_new_identity", "scheduler", TRANSITION,
    "a scheduler replica restarted after a crash is a new leader-election candidate: its "
    "identity is one no earlier process of it had, so it cannot renew the Lease its crashed "
    "process held and takes it over only once it expired, like any other candidate",
    "client-go tools/leaderelection ResourceLockConfig: 'Identity is the unique string "
    "identifying a lease holder across all participants in an election'; kube-scheduler "
    "builds it from the hostname and a UUID made at process start (hostname_uuid, as the "
    "Lease's holderIdentity shows); kubernetes.io/docs/concepts/architecture/leases",
    restart_is_a_new_identity)
COVER_TAKEOVER = Property(
    "sched_cover_lease_takeover", "scheduler", COVER,
    "the Lease is held by a new process after the first holder's (a failover)",
    "kubernetes.io/docs/concepts/architecture/leases", some_takeover)

COVER_PREEMPTION = Property(
    "sched_cover_preemption", "scheduler", COVER, "some pod is preempted",
    _DOCS + "pod-priority-preemption", some_preemption)
COVER_RUNNING_POD_PREEMPTED = Property(
    "sched_cover_running_pod_preempted", "scheduler", COVER,
    "a pod that was running on its node when the run began is preempted",
    _DOCS + "pod-priority-preemption: 'the scheduler tries to preempt (evict) lower priority "
    "Pods to make scheduling of the pending Pod possible'", running_pod_preempted)
COVER_BIND_CONFLICT = Property(
    "sched_cover_bind_conflict", "scheduler", COVER,
    "some bind is refused with a 409 (the pod was already bound)",
    "the Binding subresource's 409", some_bind_conflict)
COVER_BACKOFF = Property(
    "sched_cover_backoff", "scheduler", COVER,
    "some pod whose bind failed waits in the backoff queue (the bind-failure fault is "
    "exercised, not only declared)",
    _DOCS + "scheduling-framework: 'Unreserve ... is called if a reserved Pod is rejected' "
    "(a failed bind); kubernetes/community contributors/devel/sig-scheduling/"
    "scheduler_queues.md: a pod whose scheduling attempt failed waits in backoffQ",
    some_backoff)
COVER_UNSCHEDULABLE = Property(
    "sched_cover_unschedulable", "scheduler", COVER,
    "some pod waits in the unschedulable sub-queue", _DOCS + "scheduling-framework",
    some_unschedulable)
COVER_SPREAD_BESIDE_TERMINATING = Property(
    "sched_cover_spread_beside_terminating", "scheduler", COVER,
    "a pod with a spread constraint is bound while a pod it selects is terminating",
    "kubernetes/kubernetes#87845 (terminating pods are not counted)",
    spread_pod_bound_beside_terminating)
COVER_BINDING_OUTLIVES_CRASH = Property(
    "sched_cover_binding_outlives_crash", "scheduler", COVER,
    "a Binding sent by a scheduler that then crashed is still in flight for a pod the "
    "apiserver has not yet bound",
    "client-go tools/leaderelection: it 'does not guarantee that only one client is acting as "
    "a leader (a.k.a. fencing)' — a request sent before the process ended may still arrive; "
    "kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1#create-binding-pod-v1",
    binding_outlives_crash)
COVER_CUSTOM_BINDS = Property(
    "sched_cover_custom_scheduler_binds", "scheduler", COVER,
    "the custom scheduler binds a pod", "seeds: 'additional custom schedulers are also "
    "supported'", custom_scheduler_bound)

_SAFETY = (BOUND_NODE_PASSES_FILTERS, NODE_WITHIN_ALLOCATABLE, BOUND_AT_MOST_ONCE)
PLACEMENT = _SAFETY + (BOUND_BY_NAMED_SCHEDULER, NO_LEAKED_RESERVATION,
                       FEASIBLE_POD_EVENTUALLY_BOUND, COVER_CUSTOM_BINDS, COVER_UNSCHEDULABLE,
                       COVER_BACKOFF)
PREEMPTION = _SAFETY + (PREEMPTS_LOWER_ONLY, PREEMPTION_MINIMAL_LOWEST,
                        FEASIBLE_POD_EVENTUALLY_BOUND, COVER_PREEMPTION, COVER_UNSCHEDULABLE,
                        COVER_RUNNING_POD_PREEMPTED)
VICTIMS = _SAFETY + (PREEMPTS_LOWER_ONLY, PREEMPTION_MINIMAL_LOWEST,
                     FEASIBLE_POD_EVENTUALLY_BOUND, COVER_PREEMPTION)
SPREAD = _SAFETY + (SPREAD_WITHIN_MAX_SKEW, FEASIBLE_POD_EVENTUALLY_BOUND,
                    COVER_SPREAD_BESIDE_TERMINATING)
BINDING = _SAFETY + (NO_LEAKED_RESERVATION, FEASIBLE_POD_EVENTUALLY_BOUND, COVER_BIND_CONFLICT,
                     COVER_BINDING_OUTLIVES_CRASH)
HA = _SAFETY + (BOUND_BY_NAMED_SCHEDULER, LEASE_TAKEN_ONLY_WHEN_EXPIRED,
                BINDS_ONLY_BY_LEASE_HOLDER, RESTART_IS_A_NEW_IDENTITY,
                FEASIBLE_POD_EVENTUALLY_BOUND, COVER_TAKEOVER, COVER_BINDING_OUTLIVES_CRASH)

"""The Filter and Score plugins of kube-scheduler and the preemption's victim
selection, as pure functions over ``model.scheduler.objects``.

Each plugin is restated from the Kubernetes scheduling documentation
(kubernetes.io/docs/reference/scheduling/config#scheduling-plugins and the
pages cited per function), not translated from upstream Go. They read:

* ``nodes`` — the tuple of Nodes (a node is named by its index);
* ``placed`` — the pods the scheduler believes are on nodes, as tuples
  ``(index, Pod, node_index, terminating)``: bound pods from its informer,
  the pods it has assumed, and the nominated pods it must leave room for.

Why one :class:`Plugins` value carries the swappable pieces: the machine's
seeded bugs (wrong effective request, a spread that counts terminating pods
or uses the wrong key, an ignored taint) are variants of one plugin each;
the correct profile is ``Plugins()``. The properties never call this module
(``properties.scheduler`` restates every filter on its own).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from kubemc.model.scheduler.objects import (
    NO_EXECUTE, NO_SCHEDULE, UNSCHEDULABLE_TAINT, Node, Pod, Resources, Taint, matches,
)


# -- the effective request (KEP-753) ---------------------------------------------

def effective_request(pod: Pod) -> Resources:
    """KEP-753 "Resources calculation for scheduling and pod admission":
    ``max(max_i InitContainerUse(i), sum(sidecars) + sum(containers)) +
    overhead`` with ``InitContainerUse(i) = sum(sidecars declared before i)
    + request(i)`` — sidecars keep running while later init containers run."""
    sidecars, init_peak = Resources(), Resources()
    for c in pod.init_containers:
        init_peak = init_peak.max(sidecars + c.requests)
        if c.sidecar:
            sidecars = sidecars + c.requests
    apps = Resources()
    for r in pod.containers:
        apps = apps + r
    return init_peak.max(sidecars + apps) + pod.overhead


# -- filters -----------------------------------------------------------------------

def tolerates(pod: Pod, taint: Taint) -> bool:
    """docs/concepts/scheduling-eviction/taint-and-toleration: a toleration
    matches a taint if the keys and effects are the same and the operator is
    Exists, or Equal with equal values; an empty key with Exists matches every
    key, an empty effect every effect."""
    for t in pod.tolerations:
        if t.effect and t.effect != taint.effect:
            continue
        if t.operator == "Exists" and (not t.key or t.key == taint.key):
            return True
        if t.operator == "Equal" and t.key == taint.key and t.value == taint.value:
            return True
    return False


def node_unschedulable(pod: Pod, node: Node) -> bool:
    """NodeUnschedulable: 'filters out nodes that have .spec.unschedulable set
    to true', unless the pod tolerates the unschedulable taint."""
    return not node.unschedulable or tolerates(pod, Taint(UNSCHEDULABLE_TAINT, "", NO_SCHEDULE))


def node_affinity(pod: Pod, node: Node) -> bool:
    """NodeAffinity (required) and nodeSelector: every nodeSelector pair is a
    label of the node, and if required terms are given, one term has all its
    expressions satisfied (docs/concepts/scheduling-eviction/assign-pod-node)."""
    labels = node.all_labels
    if not all(labels.get(k) == v for k, v in pod.node_selector):
        return False
    if not pod.affinity:
        return True

    def holds(req):
        if req.operator == "In":
            return labels.get(req.key) in req.values
        if req.operator == "NotIn":
            return labels.get(req.key) not in req.values
        if req.operator == "Exists":
            return req.key in labels
        return req.key not in labels  # DoesNotExist
    return any(all(holds(r) for r in term) for term in pod.affinity)


def taint_toleration(pod: Pod, node: Node, honor: bool = True) -> bool:
    """TaintToleration: a node with a NoSchedule or NoExecute taint the pod
    does not tolerate is filtered out (PreferNoSchedule only scores)."""
    if not honor:
        return True
    return all(tolerates(pod, t) for t in node.taints if t.effect in (NO_SCHEDULE, NO_EXECUTE))


def on_node(placed, node_index):
    return [e for e in placed if e[2] == node_index]


def node_ports(pod: Pod, node_index: int, placed) -> bool:
    """NodePorts: 'checks if a node has free ports for the requested Pod ports'."""
    used = {port for _, p, _, _ in on_node(placed, node_index) for port in p.host_ports}
    return not used.intersection(pod.host_ports)


def requested(node_index: int, placed, request=effective_request) -> Resources:
    total = Resources()
    for _, p, _, _ in on_node(placed, node_index):
        total = total + request(p)
    return total


def resources_fit(pod: Pod, node_index: int, node: Node, placed,
                  request=effective_request) -> bool:
    """NodeResourcesFit: the pod's request plus what the node's pods request
    fits the node's allocatable, and the node has room for one more pod.
    Terminating pods still hold their resources (kubernetes/kubernetes#87621)."""
    need = requested(node_index, placed, request) + request(pod)
    alloc = node.allocatable
    return (need.cpu <= alloc.cpu and need.memory <= alloc.memory
            and len(on_node(placed, node_index)) + 1 <= node.max_pods)


def spread_domains(pod: Pod, nodes, key: str) -> dict:
    """The domains of a constraint: values of ``key`` on the nodes that pass
    the pod's nodeAffinity/nodeSelector (nodeAffinityPolicy Honor, the
    default) and carry the key."""
    return {i: n.all_labels[key] for i, n in enumerate(nodes)
            if key in n.all_labels and node_affinity(pod, n)}


def pod_topology_spread(pod: Pod, node_index: int, nodes, placed, *,
                        count_terminating: bool = False, key_override: str | None = None) -> bool:
    """PodTopologySpread with whenUnsatisfiable DoNotSchedule
    (docs/concepts/scheduling-eviction/topology-spread-constraints): placing
    the pod must keep 'the number of matching pods in the target topology'
    minus 'the global minimum' at most maxSkew; terminating pods are not
    counted (kubernetes/kubernetes#87845); a node without the key fails."""
    for c in pod.spread:
        if c.when_unsatisfiable != "DoNotSchedule":
            continue
        key = key_override or c.topology_key
        domains = spread_domains(pod, nodes, key)
        if node_index not in domains:
            return False
        counts = dict.fromkeys(domains.values(), 0)
        for _, p, n, terminating in placed:
            if (terminating and not count_terminating) or n not in domains:
                continue
            if matches(c.selector, p.labels):
                counts[domains[n]] += 1
        self_match = 1 if matches(c.selector, pod.labels) else 0
        if counts[domains[node_index]] + self_match - min(counts.values()) > c.max_skew:
            return False
    return True


def inter_pod_anti_affinity(pod: Pod, node_index: int, nodes, placed) -> bool:
    """InterPodAffinity, required anti-affinity, both ways (docs/concepts/
    scheduling-eviction/assign-pod-node#inter-pod-affinity-and-anti-affinity):
    no pod in the candidate node's topology domain matches one of the pod's
    terms, and no pod there has a term the incoming pod matches."""
    here = nodes[node_index].all_labels
    for _, other, n, _ in placed:
        there = nodes[n].all_labels
        for term in pod.anti_affinity:
            if term.topology_key in here and here.get(term.topology_key) == \
                    there.get(term.topology_key) and matches(term.selector, other.labels):
                return False
        for term in other.anti_affinity:
            if term.topology_key in here and here.get(term.topology_key) == \
                    there.get(term.topology_key) and matches(term.selector, pod.labels):
                return False
    return True


def least_allocated(pod: Pod, node_index: int, node: Node, placed,
                    request=effective_request) -> int:
    """NodeResourcesFit's LeastAllocated score: per resource
    ``(allocatable - requested) * 100 / allocatable`` after placing the pod,
    averaged over cpu and memory (a resource the node does not offer is left
    out)."""
    need = requested(node_index, placed, request) + request(pod)
    parts = [(a - r) * 100 // a for a, r in ((node.allocatable.cpu, need.cpu),
                                             (node.allocatable.memory, need.memory)) if a > 0]
    return sum(parts) // len(parts) if parts else 0


@attrs.frozen
class Plugins:
    """A profile: the filters, the score and the variants a mutant swaps."""

    request: Callable[[Pod], Resources] = effective_request
    honor_taints: bool = True
    spread_counts_terminating: bool = False
    spread_key: str | None = None
    #: preemption variants the victim mutants swap: reprieve order
    #: ("highest_first" is upstream's; "lowest_first" and "none" are bugs),
    #: terminating pods taken as candidates, the node ranking reversed, the
    #: node ranked by something else than its victims' highest priority
    #: ("priority" is upstream's; "sum" and "count" are bugs)
    reprieve: str = "highest_first"
    victims_include_terminating: bool = False
    worst_node: bool = False
    rank: str = "priority"

    def passes(self, pod: Pod, node_index: int, nodes, placed) -> bool:
        node = nodes[node_index]
        return (node_unschedulable(pod, node) and node_affinity(pod, node)
                and taint_toleration(pod, node, self.honor_taints)
                and node_ports(pod, node_index, placed)
                and resources_fit(pod, node_index, node, placed, self.request)
                and pod_topology_spread(pod, node_index, nodes, placed,
                                        count_terminating=self.spread_counts_terminating,
                                        key_override=self.spread_key)
                and inter_pod_anti_affinity(pod, node_index, nodes, placed))

    def feasible(self, pod: Pod, nodes, placed) -> list[int]:
        return [i for i in range(len(nodes)) if self.passes(pod, i, nodes, placed)]

    def best(self, pod: Pod, nodes, placed) -> list[int]:
        """The feasible nodes of highest score: upstream picks one of them at
        random, so every one is a possible choice."""
        feasible = self.feasible(pod, nodes, placed)
        if not feasible:
            return []
        scores = {i: least_allocated(pod, i, nodes[i], placed, self.request) for i in feasible}
        top = max(scores.values())
        return [i for i in feasible if scores[i] == top]

    # -- PostFilter: preemption ------------------------------------------------------

    def victims_on(self, pod: Pod, node_index: int, nodes, placed, lower) -> tuple | None:
        """docs/concepts/scheduling-eviction/pod-priority-preemption: remove
        every live pod of lower priority from the node; if the pod then fits,
        add them back one by one, highest priority first, as long as it still
        fits — those left out are the victims. None: the node cannot help."""
        candidates = [e for e in on_node(placed, node_index)
                      if (self.victims_include_terminating or not e[3])
                      and lower(e[1].priority, pod.priority)]
        if not candidates:
            return None
        ids = {e[0] for e in candidates}
        rest = [e for e in placed if e[0] not in ids or e[2] != node_index]
        if not self.passes(pod, node_index, nodes, rest):
            return None
        if self.reprieve == "none":
            return tuple(sorted(ids))
        sign = 1 if self.reprieve == "lowest_first" else -1
        victims = []
        for e in sorted(candidates, key=lambda e: (sign * e[1].priority, e[0])):
            if self.passes(pod, node_index, nodes, rest + [e]):
                rest.append(e)
            else:
                victims.append(e)
        return tuple(sorted(e[0] for e in victims)) or None

    def preemption(self, pod: Pod, nodes, placed, lower=lambda v, p: v < p):
        """The node and victims preemption picks, or None: among nodes where
        removing victims helps, the lowest highest-victim priority, then the
        smallest sum of victim priorities, then the fewest victims, then the
        first node (upstream's pickOneNodeForPreemption, PDBs left out)."""
        best = None
        prio = {e[0]: e[1].priority for e in placed}
        for i in range(len(nodes)):
            victims = self.victims_on(pod, i, nodes, placed, lower)
            if victims is None:
                continue
            ps = [prio[v] for v in victims]
            rank = {"priority": (max(ps, default=-1), sum(ps), len(ps), i),
                    "sum": (sum(ps), len(ps), i), "count": (len(ps), i)}[self.rank]
            if self.worst_node:
                rank = tuple(-r for r in rank)
            if best is None or rank < best[0]:
                best = (rank, i, victims)
        return None if best is None else (best[1], best[2])

"""What node health and taint-based eviction promise, read off the
apiserver's objects and the model's ghost clock.

Kubernetes documentation:

* "Nodes", Node heartbeats: "Heartbeats, sent by Kubernetes nodes, help your
  cluster determine the availability of each node, and to take action when
  failures are detected"; the node controller "checks the state of each node
  every --node-monitor-period"; if a node is unreachable (its Lease not
  renewed within ``--node-monitor-grace-period``) "the node controller
  updates the Ready condition in the Node's .status to Unknown", and "the
  node controller adds taints corresponding to node problems like node
  unreachable or not ready".
* "Taints and Tolerations", taint based evictions: a NoExecute taint means
  "pods that do not tolerate the taint are evicted immediately"; "pods that
  tolerate the taint and that specify tolerationSeconds ... remain bound for
  the specified amount of time" after the taint is added; "pods that
  tolerate the taint without specifying tolerationSeconds remain bound
  forever"; the ``node.kubernetes.io/unreachable`` taint is the one the node
  controller adds, "and removes them when the condition clears" (Node
  conditions and taints).
* seeds/000: the kube-controller-manager "runs controllers responsible to act
  when nodes become unavailable".

Each property reads the Node, Pod objects and the ghost ``(~world, w)`` —
whether the node's kubelet is cut off, was ever cut off, and how many ticks
the server has held the taint — never the controller's cache or memory.
"""

from __future__ import annotations

from kubemc.model.controllers.nodelifecycle import FOREVER, NODE, NONE, POD, TRUE, UNKNOWN, WORLD
from kubemc.properties.core import (COVER, EVENTUALLY_ALWAYS, INVARIANT, LEADS_TO, TRANSITION,
                                    Property)

_HEARTBEATS = ("kubernetes.io/docs/concepts/architecture/nodes, Node heartbeats and node "
               "controller: a node not heard from within --node-monitor-grace-period gets "
               "Ready=Unknown and the node.kubernetes.io/unreachable taint")
_TAINTS = ("kubernetes.io/docs/concepts/scheduling-eviction/taint-and-toleration, taint based "
           "evictions: pods that do not tolerate a NoExecute taint 'are evicted immediately'; "
           "with tolerationSeconds they 'remain bound for the specified amount of time'; "
           "without it 'remain bound forever'")
_CLEARS = ("kubernetes.io/docs/concepts/scheduling-eviction/taint-and-toleration: the node "
           "controller adds the condition taints 'and removes them when the condition clears'")
_SEED = ("seeds/000: the kube-controller-manager 'runs controllers responsible to act when "
         "nodes become unavailable'")


def _nodes(objects):
    """(name, ready, tainted, cut off now, ever cut off, ticks tainted) per node."""
    cut, ever, _renewed, ages = objects[WORLD][:4]
    out = []
    for i, (key, (ready, tainted)) in enumerate(sorted(objects.of_kind(NODE))):
        out.append((key[1], ready, tainted, cut[i], ever[i], ages[i]))
    return out


def _pods_on(objects, node):
    return [(k[1], tol, terminating) for k, (n, tol, terminating) in objects.of_kind(POD)
            if n == node]


def no_early_eviction(m, before, step, after) -> bool:
    """A pod evicted on this step was on a node the server held the taint on
    for at least as long as the pod tolerates it."""
    b, a = m.objects(before), m.objects(after)
    tainted = {n: (t, age) for n, _r, t, _c, _e, age in _nodes(b)}
    for key, (node, toleration, terminating) in b.of_kind(POD):
        if terminating:
            continue
        now = a.get(key)
        if now is not None and not now[2]:
            continue  # still running
        has_taint, age = tainted.get(node, (False, None))
        if not has_taint or toleration == FOREVER:
            return False
        if toleration != NONE and (age is None or age < toleration):
            return False
    return True


def no_early_unknown(m, before, step, after) -> bool:
    """A node turned Ready=Unknown on this step has a kubelet that has gone
    without renewing its Lease for longer than the grace period since the node
    was last Ready (the ghost ``overdue``, kept from ticks since the kubelet's
    last renewal; the controller's write may land just after a renewal)."""
    b, a = m.objects(before), m.objects(after)
    overdue = a[WORLD][5]
    for i, (key, (ready, _tainted)) in enumerate(sorted(a.of_kind(NODE))):
        was = b.get(key)
        if ready == UNKNOWN and was is not None and was[0] != UNKNOWN and not overdue[i]:
            return False
    return True


def healthy_node_untouched(m, state) -> bool:
    """A node whose kubelet was never cut off is Ready, untainted, and keeps its pods."""
    objects = m.objects(state)
    for name, ready, tainted, _cut, ever, _age in _nodes(objects):
        if ever:
            continue
        if ready != TRUE or tainted:
            return False
        if any(terminating for _, _, terminating in _pods_on(objects, name)):
            return False
    return True


def _unreachable_handled(objects, name, ready, tainted) -> bool:
    return (ready == UNKNOWN and tainted
            and all(terminating or tol == FOREVER
                    for _, tol, terminating in _pods_on(objects, name)))


def some_node_cut(m, state) -> bool:
    return any(cut for _, _, _, cut, _, _ in _nodes(m.objects(state)))


def cut_nodes_handled(m, state) -> bool:
    """Every cut-off node is Unknown, tainted, and has lost every pod that does not
    tolerate the taint forever."""
    objects = m.objects(state)
    return all(not cut or _unreachable_handled(objects, name, ready, tainted)
               for name, ready, tainted, cut, _, _ in _nodes(objects))


def some_connected_node_marked(m, state) -> bool:
    return any(not cut and (tainted or ready != TRUE)
               for _, ready, tainted, cut, _, _ in _nodes(m.objects(state)))


def connected_nodes_clear(m, state) -> bool:
    return not some_connected_node_marked(m, state)


def converged(m, state) -> bool:
    return cut_nodes_handled(m, state) and connected_nodes_clear(m, state)


def some_node_tainted(m, state) -> bool:
    return any(tainted for _, _, tainted, _, _, _ in _nodes(m.objects(state)))


def tolerant_pod_evicted(m, state) -> bool:
    return any(terminating and tol not in (NONE, FOREVER)
               for _, (_, tol, terminating) in m.objects(state).of_kind(POD))


def forever_pod_stays_on_tainted_node(m, state) -> bool:
    objects = m.objects(state)
    return any(tainted and any(tol == FOREVER and not terminating
                               for _, tol, terminating in _pods_on(objects, name))
               and ages is not None and ages >= m.saturate
               for name, _, tainted, _, _, ages in _nodes(objects))


def recovered_after_taint(m, state) -> bool:
    """A node was cut off, evicted from, and is Ready and untainted again."""
    objects = m.objects(state)
    return any(ever and not cut and ready == TRUE and not tainted
               and any(terminating for _, _, terminating in _pods_on(objects, name))
               for name, ready, tainted, cut, ever, _ in _nodes(objects))


_ASSUMES = ("time advances (Tick is a system step, weakly fair): the model's controller "
            "latency and renew interval are below one tick")

PROPERTIES = (
    Property("nodelifecycle_no_early_eviction", "controllers", TRANSITION,
             "a pod is evicted only from a node the apiserver holds the unreachable NoExecute "
             "taint on, and not before that taint has been there for the pod's "
             "tolerationSeconds (never, if it tolerates the taint without a limit)",
             _TAINTS + "; issue 10: 'no eviction before tolerationSeconds has passed since "
             "the taint'", no_early_eviction),
    Property("nodelifecycle_no_early_unknown", "controllers", TRANSITION,
             "a node is marked Ready=Unknown only when its kubelet has not renewed its Lease "
             "for longer than node-monitor-grace-period since the node was last Ready (judged "
             "on a ghost clock of ticks since the last renewal, which the controller never "
             "reads)",
             _HEARTBEATS + "; kube-controller-manager reference, --node-monitor-grace-period: "
             "'Amount of time which we allow running Node to be unresponsive before marking "
             "it unhealthy'", no_early_unknown),
    Property("nodelifecycle_healthy_node_untouched", "controllers", INVARIANT,
             "a node whose kubelet has never been cut off (it renews its Lease every tick, "
             "more often than the grace period) stays Ready, untainted, and keeps its pods",
             _HEARTBEATS, healthy_node_untouched),
    Property("nodelifecycle_unreachable_leads_to_eviction", "controllers", LEADS_TO,
             "a node whose heartbeats stop is eventually Unknown, tainted, and rid of every "
             "pod that does not tolerate the taint forever — unless its heartbeats resume",
             _HEARTBEATS + "; " + _TAINTS + "; " + _SEED,
             lambda m, s: cut_nodes_handled(m, s) or not some_node_cut(m, s),
             trigger=some_node_cut, assumption=_ASSUMES),
    Property("nodelifecycle_recovered_leads_to_untainted", "controllers", LEADS_TO,
             "a node whose heartbeats resume eventually is Ready and loses the unreachable "
             "taint (unless it is cut off again)", _CLEARS,
             connected_nodes_clear, trigger=some_connected_node_marked, assumption=_ASSUMES),
    Property("nodelifecycle_converges", "controllers", EVENTUALLY_ALWAYS,
             "once faults and the network stop changing, every cut-off node is eventually "
             "Unknown, tainted and evicted, every connected node Ready and untainted, and so "
             "it stays", _HEARTBEATS + "; " + _CLEARS + "; " + _SEED, converged,
             assumption=_ASSUMES),
    Property("nodelifecycle_cover_tainted", "controllers", COVER,
             "some reachable state has a node with the unreachable taint", _HEARTBEATS,
             some_node_tainted),
    Property("nodelifecycle_cover_tolerant_evicted", "controllers", COVER,
             "some reachable state has a pod with tolerationSeconds evicted", _TAINTS,
             tolerant_pod_evicted),
    Property("nodelifecycle_cover_forever_stays", "controllers", COVER,
             "some reachable state keeps a pod that tolerates the taint forever on a node "
             "tainted for longer than every other limit", _TAINTS,
             forever_pod_stays_on_tainted_node),
    Property("nodelifecycle_cover_recovered", "controllers", COVER,
             "some reachable state has a node that was cut off, lost pods, and is Ready and "
             "untainted again", _CLEARS, recovered_after_taint),
)

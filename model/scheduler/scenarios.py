"""The clusters the catalog checks the scheduler on.

Why several small clusters rather than one large one: every property needs a
cluster that reaches what it talks about (a preemption, a bind that loses a
409, a spread over zones) and every mutant a cluster where it shows; the
product of all of them is far beyond exhaustive search, while each alone is
small (docs/scheduler.md gives the state counts). Each is a function of no
arguments returning ``(schedulers, nodes, pods, bound)``: the running
schedulers' names, the Nodes, the Pods, and the pods the cluster starts with
on a node — ``{pod_index: (node_index, terminating)}``, bound by the
scheduler the pod names.
"""

from __future__ import annotations

from kubemc.model.scheduler.objects import (
    DEFAULT_SCHEDULER, ZONE, InitContainer, Node, Pod, Resources as R, SpreadConstraint, Taint,
    Toleration,
)

CUSTOM = "custom-scheduler"


def placement():
    """Two schedulers and the filters. The custom scheduler has a dedicated
    node (a label its pods select and a taint only they tolerate), the
    documented way to run a second scheduler beside the default one: two
    schedulers placing onto the same node race, and Kubernetes leaves the
    loser to the kubelet's admission (kubernetes/kubernetes#60469,
    #106419) — a race this model does not claim to exclude.

    n0 1500m zone a; n1 1500m zone b, tainted gpu=true:NoSchedule; n2 1000m,
    the custom pool. p0: an init container of 1000m before an app container
    of 1000m (effective 1000m); p1: a 500m sidecar and a 1000m app (1500m),
    selects n1; p2: 500m, tolerates gpu; p3: the custom scheduler's, 500m."""
    gpu = Toleration("gpu", "Equal", "true", "NoSchedule")
    nodes = (
        Node("n0", R(1500, 0), labels=((ZONE, "a"),)),
        Node("n1", R(1500, 0), labels=((ZONE, "b"), ("gpu", "true")),
             taints=(Taint("gpu", "true", "NoSchedule"),)),
        Node("n2", R(1000, 0), labels=(("pool", "custom"),),
             taints=(Taint("dedicated", "custom", "NoSchedule"),)),
    )
    pods = (
        Pod("p0", containers=(R(1000, 0),), init_containers=(InitContainer(R(1000, 0)),)),
        Pod("p1", containers=(R(1000, 0),), init_containers=(InitContainer(R(500, 0), True),),
            tolerations=(gpu,), node_selector=(("gpu", "true"),)),
        Pod("p2", containers=(R(500, 0),), tolerations=(gpu,)),
        Pod("p3", containers=(R(500, 0),), scheduler_name=CUSTOM,
            node_selector=(("pool", "custom"),),
            tolerations=(Toleration("dedicated", "Equal", "custom", "NoSchedule"),)),
    )
    return (DEFAULT_SCHEDULER, CUSTOM), nodes, pods, {}


def preemption():
    """Priority and preemption. n0 and n1 hold 1000m each, full: p0
    (priority 0) on n0, p1 (priority 10) on n1. p2 and p3, priority 10 and
    1000m each, are pending: one may preempt p0, nobody may preempt p1."""
    nodes = (Node("n0", R(1000, 0)), Node("n1", R(1000, 0)))
    pods = (
        Pod("p0", containers=(R(1000, 0),), priority=0),
        Pod("p1", containers=(R(1000, 0),), priority=10),
        Pod("p2", containers=(R(1000, 0),), priority=10),
        Pod("p3", containers=(R(1000, 0),), priority=10),
    )
    return (DEFAULT_SCHEDULER,), nodes, pods, {0: (0, False), 1: (1, False)}


def victims():
    """Which victims and which node preemption picks. n0 (1500m) is full with
    a1, b2, c3 (500m each, priorities 1, 2, 3); n1 (1000m) is full with d5
    (500m, priority 5) and t0 (500m, priority 0, already terminating). The
    pending p (500m, priority 10) fits nowhere. Evicting a1 alone makes room
    on n0 (highest victim priority 1); on n1 it takes d5 (priority 5), since
    t0 is on its way out anyway and still holds its request. So the docs'
    rules give exactly one answer, n0 and {a1}, and each wrong rule another:
    every lower pod ({a1, b2, c3}), the higher ones first ({c3}), the worse
    node (n1, {d5}), or t0 counted as a victim (n1, none evicted)."""
    nodes = (Node("n0", R(1500, 0)), Node("n1", R(1000, 0)))
    half = (R(500, 0),)
    pods = (
        Pod("a1", containers=half, priority=1),
        Pod("b2", containers=half, priority=2),
        Pod("c3", containers=half, priority=3),
        Pod("d5", containers=half, priority=5),
        Pod("t0", containers=half, priority=0),
        Pod("p", containers=half, priority=10),
    )
    bound = {0: (0, False), 1: (0, False), 2: (0, False), 3: (1, False), 4: (1, True)}
    return (DEFAULT_SCHEDULER,), nodes, pods, bound


def victims_rank():
    """How preemption ranks the nodes. n0 and n1 (1000m each) are full: x2
    and y4 (500m, priorities 2 and 4) on n0, z5 (1000m, priority 5) on n1.
    The pending q (priority 10) requests 1000m through its init container
    (its app container requests 500m; KEP-753: the init peak counts), so it
    needs both of n0's pods gone (highest victim priority 4, sum 6, two
    victims) or n1's one (priority 5, sum 5, one victim). The highest victim
    priority decides: n0, {x2, y4}; ranking the nodes by the victims' number
    or by their priorities' sum picks n1, and a request without the init peak
    (500m) evicts x2 alone, after which q does not fit."""
    nodes = (Node("n0", R(1000, 0)), Node("n1", R(1000, 0)))
    half = (R(500, 0),)
    pods = (
        Pod("x2", containers=half, priority=2),
        Pod("y4", containers=half, priority=4),
        Pod("z5", containers=(R(1000, 0),), priority=5),
        Pod("q", containers=half, init_containers=(InitContainer(R(1000, 0)),), priority=10),
    )
    return (DEFAULT_SCHEDULER,), nodes, pods, {0: (0, False), 1: (0, False), 2: (1, False)}


def spread():
    """Topology spread over zones: zone a = {n0}, zone b = {n1, n2}. t, a
    pod of app=web, is terminating on n0; q (app=web) runs on n1. p and r
    (app=web) spread with maxSkew 1 over zones, DoNotSchedule: p must go to
    zone a, since terminating pods do not count."""
    web = (("app", "web"),)
    constraint = (SpreadConstraint(1, ZONE, web),)
    nodes = (
        Node("n0", R(2000, 0), labels=((ZONE, "a"),)),
        Node("n1", R(2000, 0), labels=((ZONE, "b"),)),
        Node("n2", R(2000, 0), labels=((ZONE, "b"),)),
    )
    pods = (
        Pod("t", containers=(R(500, 0),), labels=web),
        Pod("q", containers=(R(500, 0),), labels=web),
        Pod("p", containers=(R(500, 0),), labels=web, spread=constraint),
        Pod("r", containers=(R(500, 0),), labels=web, spread=constraint),
    )
    return (DEFAULT_SCHEDULER,), nodes, pods, {0: (0, True), 1: (1, False)}


def binding():
    """Binding: the assume cache, bind failures and 409s. n0 (1000m,
    disk=ssd) fits exactly p0, which selects it; n1 and n2 (2000m) have room
    for everything else. p1 (500m) may go to n1 or n2."""
    nodes = (
        Node("n0", R(1000, 0), labels=(("disk", "ssd"),)),
        Node("n1", R(2000, 0)),
        Node("n2", R(2000, 0)),
    )
    pods = (
        Pod("p0", containers=(R(1000, 0),), node_selector=(("disk", "ssd"),)),
        Pod("p1", containers=(R(500, 0),)),
    )
    return (DEFAULT_SCHEDULER,), nodes, pods, {}


def ha():
    """HA: two replicas of the default scheduler (kube-scheduler's
    --leader-elect, the default) contend for one Lease. n0 and n1 (1000m)
    both have room for p0 (500m), so two replicas that both scheduled it
    would pick different nodes. One pod: what the model is about is who
    binds, not where (two pods and a crash are 259,064 states)."""
    nodes = (Node("n0", R(1000, 0)), Node("n1", R(1000, 0)))
    pods = (Pod("p0", containers=(R(500, 0),)),)
    return (DEFAULT_SCHEDULER, DEFAULT_SCHEDULER), nodes, pods, {}


SCENARIOS = {f.__name__: f for f in (placement, preemption, victims, victims_rank, spread,
                                     binding, ha)}

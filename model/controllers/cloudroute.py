"""The cloud-controller-manager's route controller: a route in the cloud for
every node's podCIDR, and none for a node that is gone.

What the real controller does (kubernetes/cloud-provider
``controllers/route``, ``reconcileNodeRoutes``), kept here: it is not keyed
by one object — on every sync it lists the nodes (from its informer) and
the routes (from the cloud), creates a route for each node whose podCIDR has
none, and deletes every route the cluster does not account for. The sync
runs periodically and on node events; here, on node events, on completion
of its own cloud operations, and after a relist (``always_queued``) — the
periodic timer only adds runs that find nothing to do.

The world: nodes join (with their podCIDR, allocated by the node IPAM
controller before — a node here carries its podCIDR from the start) and
leave (``NodeJoins`` / ``NodeLeaves``, environment, budgeted together as
``node_changes``).

Objects: ``(nodes, nI) -> podCIDR``. Cloud: ``(route, nI) -> podCIDR``.
Memory: for the mutant only, the nodes whose deletion it has seen.
"""

from __future__ import annotations

from kubemc.model.controllers.cloud import NODE, NodeChurnLoop, call
from kubemc.model.kernel import Mutant

ROUTE = "route"
SYNC = ("routes", "sync")

EVENT_DRIVEN_DELETES = "event_driven_deletes"
SWALLOWS_ROUTE_ERROR = "swallows_route_error"


def pod_cidr(node: str) -> str:
    return f"10.244.{node[1:]}.0/24"


class RouteController(NodeChurnLoop):
    name = "cloudroute"
    primary = "routes"
    always_queued = (SYNC,)
    world_budgets = ("node_changes",)
    mutants = {
        EVENT_DRIVEN_DELETES: Mutant(
            "deletes a route only when it sees its node's deletion event, instead of "
            "comparing the cloud's routes with the nodes on every sync: a node deleted "
            "while the controller was down (or whose deletion it lost in a crash) keeps its "
            "route forever — the stale-route bug of event-driven route agents "
            "(flannel-io/flannel#2554, antrea-io/antrea#36; the service controller's "
            "kubernetes/kubernetes#53451 is the same loss across a restart)",
            violates="cloudroute_no_route_for_gone_node"),
        SWALLOWS_ROUTE_ERROR: Mutant(
            "takes a failed route call for a success and does not sync again: the route "
            "is missing until some node changes (kubernetes-sigs/cloud-provider-azure#11003: "
            "a failed route-table update returned success to the route controller)",
            violates="cloudroute_converges"),
    }

    def __init__(self, *, nodes: int = 2, initial_nodes: int = 1, node_changes: int = 2,
                 crashes: int = 1, write_failures: int = 1, resyncs: int = 0,
                 max_objects: int = 4, mutant: str | None = None):
        super().__init__(crashes=crashes, write_failures=write_failures, resyncs=resyncs,
                         max_objects=max_objects, mutant=mutant, node_changes=node_changes)
        self.nodes = tuple(f"n{i}" for i in range(nodes))
        self.initial_nodes = initial_nodes

    def config(self):
        return {"nodes": len(self.nodes), "initial_nodes": self.initial_nodes,
                **super().config()}

    def initial_objects(self):
        yield [((NODE, n), pod_cidr(n)) for n in self.nodes[:self.initial_nodes]]

    def cloud_key(self, resource):
        return SYNC

    # -- the event handler -------------------------------------------------------
    def handle(self, cache, key, old, new):
        return (SYNC,) if key[0] == NODE else ()

    def observe(self, memory, key, old, new):
        if self.mutant == EVENT_DRIVEN_DELETES and key[0] == NODE and new is None:
            return tuple(sorted(set(memory) | {key[1]}))
        return memory

    # -- the sync ------------------------------------------------------------------
    def reconcile_cloud(self, cache, cloud, key, memory):
        want = {(ROUTE, k[1]): cidr for k, cidr in cache.of_kind(NODE)}
        have = {r: v for r, v in cloud.items() if r[0] == ROUTE}
        calls = [call(r, cidr) for r, cidr in sorted(want.items()) if have.get(r) != cidr]
        if self.mutant == EVENT_DRIVEN_DELETES:
            stale = [r for r in sorted(have) if r not in want and r[1] in memory]
            memory = ()
        else:
            stale = [r for r in sorted(have) if r not in want]
        return tuple(calls + [call(r, None) for r in stale]), memory

    def on_error(self, key, outcome, write, memory):
        return self.mutant != SWALLOWS_ROUTE_ERROR, memory

    # -- the world: nodes join and leave (NodeChurnLoop) ------------------------------
    def joined(self, n):
        return pod_cidr(n)

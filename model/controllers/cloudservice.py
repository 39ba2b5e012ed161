"""The cloud-controller-manager's service controller: a Service of type
LoadBalancer gets a cloud load balancer whose targets are the cluster's
nodes, and its ``status.loadBalancer.ingress``; a deleted Service's load
balancer is deleted before the Service goes.

What the real controller does (kubernetes/cloud-provider
``controllers/service``), kept here:

* **the finalizer first** (KEP-980, "Finalizer Protection for Service
  LoadBalancers"): before it creates anything in the cloud it adds
  ``service.kubernetes.io/load-balancer-cleanup`` to the Service, so a
  deletion only marks the Service terminating and waits for it;
* ``EnsureLoadBalancer(service, nodes)`` — idempotent: creates or updates
  the load balancer so that its targets are the nodes — then writes
  ``status.loadBalancer.ingress``;
* on a terminating Service: ``EnsureLoadBalancerDeleted``, and only once it
  has succeeded, removes the finalizer (the apiserver then removes the
  Service);
* node events re-sync every LoadBalancer Service (``nodeSyncLoop``);
* a failed cloud call is returned to the work queue and retried.

The world: the user deletes the Service (``DeleteService``, environment,
budget ``deletes``); nodes join and leave (``NodeJoins`` / ``NodeLeaves``,
budget ``node_changes``).

Objects::

    (services, s0) -> (finalizer, ingress, terminating)   all Services are LoadBalancer
    (nodes, nI)    -> True

Cloud: ``(lb, s0) -> (target node names, ...)``.

The apiserver's finalizer rule (API conventions, "Finalizers"): a delete of
an object with a finalizer only sets its deletionTimestamp; an update that
removes the last finalizer of a terminating object removes the object.
``server_write`` applies the second half, ``deleting`` the first.
"""

from __future__ import annotations

from kubemc.model.controllers.cloud import CALL, NODE, NodeChurnLoop, call
from kubemc.model.controllers.loop import update
from kubemc.model.kernel import ENVIRONMENT, Mutant, Step, action

SERVICE = "services"
LB = "lb"

FINALIZER_FIRST = "finalizer_first"
DROPS_CLOUD_ERROR = "drops_cloud_error"
PUBLISHES_INGRESS_EARLY = "publishes_ingress_early"


class ServiceController(NodeChurnLoop):
    name = "cloudservice"
    primary = SERVICE
    world_budgets = ("deletes", "node_changes")
    mutants = {
        FINALIZER_FIRST: Mutant(
            "removes the load-balancer-cleanup finalizer before the load balancer is "
            "deleted: the Service disappears at once, and a failed or lost delete call (a "
            "cloud error, a controller restart) leaks the load balancer — the leak the "
            "finalizer was introduced to prevent (kubernetes/kubernetes#53451, "
            "kubernetes/kubernetes#78124; finalizer: kubernetes/kubernetes#54569, "
            "kubernetes/enhancements#992)",
            violates="cloudservice_no_leaked_lb"),
        DROPS_CLOUD_ERROR: Mutant(
            "drops a failed cloud call instead of returning the error to the work queue: "
            "the load balancer keeps its old targets until some other event comes "
            "(kubernetes/kubernetes#131729, kubernetes/cloud-provider#75: an "
            "UpdateLoadBalancer error overwritten, the Service not requeued)",
            violates="cloudservice_converges"),
        PUBLISHES_INGRESS_EARLY: Mutant(
            "writes status.loadBalancer.ingress before EnsureLoadBalancer has provisioned the "
            "load balancer: clients and DNS are handed an address that does not exist yet "
            "(the docs: 'information about the provisioned load balancer is published in "
            ".status.loadBalancer'; digitalocean/digitalocean-cloud-controller-manager#22 "
            "waits for the balancer to be active before writing the Service's IP)",
            violates="cloudservice_ingress_only_for_provisioned_lb"),
    }

    def __init__(self, *, services: int = 1, nodes: int = 2, initial_nodes: int = 1,
                 deletes: int = 1, node_changes: int = 1, crashes: int = 1,
                 write_failures: int = 1, resyncs: int = 0, max_objects: int = 4,
                 mutant: str | None = None):
        super().__init__(crashes=crashes, write_failures=write_failures, resyncs=resyncs,
                         max_objects=max_objects, mutant=mutant, deletes=deletes,
                         node_changes=node_changes)
        self.services = tuple(f"s{i}" for i in range(services))
        self.nodes = tuple(f"n{i}" for i in range(nodes))
        self.initial_nodes = initial_nodes

    def config(self):
        return {"services": len(self.services), "nodes": len(self.nodes),
                "initial_nodes": self.initial_nodes, **super().config()}

    def initial_objects(self):
        yield ([((SERVICE, s), (False, False, False)) for s in self.services]
               + [((NODE, n), True) for n in self.nodes[:self.initial_nodes]])

    def cloud_key(self, resource):
        return (SERVICE, resource[1])

    # -- the apiserver's finalizer rule -----------------------------------------
    def deleting(self, key, value):
        if key[0] == SERVICE and value[0]:
            return (value[0], value[1], True)
        return None

    def server_write(self, state, key, value):
        if key[0] == SERVICE and value is not None and value[2] and not value[0]:
            value = None  # the last finalizer of a terminating object is gone
        return super().server_write(state, key, value)

    # -- the event handler -------------------------------------------------------
    def handle(self, cache, key, old, new):
        if key[0] == NODE:
            return tuple(k for k, _ in cache.of_kind(SERVICE))
        return (key,)

    # -- the reconcile -------------------------------------------------------------
    def reconcile_cloud(self, cache, cloud, key, memory):
        if key not in cache:
            return (), memory
        finalizer, ingress, terminating = cache[key]
        rv = cache.rv(key)
        lb = (LB, key[1])
        if terminating:
            remove = update(key, rv, (False, ingress, True))
            if self.mutant == FINALIZER_FIRST:
                return (remove, call(lb, None)), memory
            return (call(lb, None), remove), memory
        if not finalizer:
            return (update(key, rv, (True, ingress, False)),), memory
        targets = tuple(sorted(k[1] for k, _ in cache.of_kind(NODE)))
        writes = (call(lb, targets),)
        if not ingress:
            publish = update(key, rv, (True, True, False))
            writes = ((publish,) + writes if self.mutant == PUBLISHES_INGRESS_EARLY
                      else writes + (publish,))
        return writes, memory

    def on_error(self, key, outcome, write, memory):
        return not (self.mutant == DROPS_CLOUD_ERROR and write[0] == CALL), memory

    # -- the world: a user deletes a Service; nodes join and leave (NodeChurnLoop) --------
    def world_steps(self, state):
        server = self.objects(state)
        if self.budget_left(state, "deletes"):
            for s in self.services:
                if (SERVICE, s) in server and not server[(SERVICE, s)][2]:
                    yield Step("DeleteService", (s,))
        yield from super().world_steps(state)

    @action("DeleteService", tag=ENVIRONMENT)
    def _DeleteService(self, state, s):
        server = self.objects(state)
        key = (SERVICE, s)
        if key not in server or server[key][2] or not self.budget_left(state, "deletes"):
            return None
        return self.server_write(self.spend(state, "deletes"), key,
                                 self.deleting(key, server[key]))

    def joined(self, n):
        return True

"""The cloud-controller-manager's node controllers: initialize each Node from
its cloud instance, and delete Nodes whose instance is gone.

What the real controllers do (kubernetes/cloud-provider
``controllers/node`` and ``controllers/nodelifecycle``), kept here:

* the kubelet of a cloud node registers it with the taint
  ``node.cloudprovider.kubernetes.io/uninitialized``; the cloud node
  controller reads the instance from the cloud, sets the Node's addresses
  and removes the taint in one update (the taint keeps pods off a node whose
  addresses are unknown). While the instance cannot be read it retries;
* the cloud node lifecycle controller deletes a Node whose instance no
  longer exists — but not within a grace period after the Node was
  created: a cloud's instance API is eventually consistent, and an instance
  just launched may not show yet (kubernetes/kubernetes#58334, #81636; the
  grace period was proposed for the controller in kubernetes/kubernetes#127424
  and kubernetes/cloud-provider-aws#1024, both closed unmerged, and shipped
  provider-side in kubernetes-sigs/cloud-provider-azure#10605,
  ``nodeInstanceNotFoundGracePeriodInSeconds``). Time is one flag per Node, ``aged``, set by
  ``GraceExpires`` — a system step (time passes), enabled only once the
  cloud shows the Node's instance. That is the assumption under which a
  grace period is sound at all: the cloud's lag is shorter than the grace
  period. Setting the flag is an apiserver write here (a watch event the
  controller sees), where the real controller compares the Node's
  creationTimestamp with its clock; the only cost is one more event.

The world: an instance is launched (``Launch``, environment, budget
``launches``) — the cloud accepts it and shows it later (``CloudCompletes``);
its kubelet registers the Node as soon as it boots, possibly before the
cloud shows the instance (``Register``, environment); an instance is
terminated (``Terminate``, environment, budget ``terminations``), again
shown only once the cloud completes it. Launch and terminate are the
cloud's own state changes, so they are operations on the cloud slot, not
apiserver writes.

Objects: ``(nodes, nI) -> (initialized, address, aged)``, initialized meaning
the uninitialized taint is gone and the address set. Cloud: ``(instance, nI) -> address``.
"""

from __future__ import annotations

from kubemc.model.controllers.cloud import CLOUD, CloudLoop, pending, visible
from kubemc.model.controllers.loop import delete, update
from kubemc.model.kernel import ENVIRONMENT, SYSTEM, Mutant, Step, action

NODE = "nodes"
INSTANCE = "instance"

#: the world's actions, proposed for each node in this order after the cloud's
WORLD = ("Launch", "Register", "Terminate", "GraceExpires")

DELETES_LAGGING = "deletes_lagging"
KEEPS_GONE_NODES = "keeps_gone_nodes"


def address(node: str) -> str:
    return f"10.0.0.{10 + int(node[1:])}"


class NodeController(CloudLoop):
    name = "cloudnode"
    primary = NODE
    world_budgets = ("launches", "terminations")
    mutants = {
        DELETES_LAGGING: Mutant(
            "deletes every Node whose instance the cloud does not show, including a Node "
            "just registered whose instance is only lagging in the cloud's eventually "
            "consistent API (kubernetes/kubernetes#81636, kubernetes/kubernetes#58334; the "
            "grace period against it: kubernetes/kubernetes#127424 and "
            "kubernetes/cloud-provider-aws#1024, closed unmerged, "
            "kubernetes-sigs/cloud-provider-azure#10605, merged)",
            violates="cloudnode_never_deletes_live_instance"),
        KEEPS_GONE_NODES: Mutant(
            "treats a missing instance as an error and never deletes its Node "
            "(kubernetes-sigs/cloud-provider-azure#1390: InstanceExists reported an error "
            "for a not-found instance; outscale/cloud-provider-osc#83: old nodes are not "
            "deleted)",
            violates="cloudnode_converges"),
    }

    def __init__(self, *, nodes: int = 2, launches: int = 2, terminations: int = 1,
                 crashes: int = 1, write_failures: int = 1, resyncs: int = 0,
                 max_objects: int = 3, mutant: str | None = None):
        super().__init__(crashes=crashes, write_failures=write_failures, resyncs=resyncs,
                         max_objects=max_objects, mutant=mutant, launches=launches,
                         terminations=terminations)
        self.nodes = tuple(f"n{i}" for i in range(nodes))

    def config(self):
        return {"nodes": len(self.nodes), **super().config()}

    def initial_objects(self):
        yield []

    def cloud_key(self, resource):
        return (NODE, resource[1])

    # -- the reconcile -------------------------------------------------------------
    def reconcile_cloud(self, cache, cloud, key, memory):
        if key not in cache:
            return (), memory
        initialized, _, aged = cache[key]
        instance = cloud.get((INSTANCE, key[1]))
        if instance is None:
            if self.mutant == KEEPS_GONE_NODES:
                return (), memory
            if aged or self.mutant == DELETES_LAGGING:
                return (delete(key, cache.rv(key)),), memory
            return (), memory  # not shown yet: the launch's completion wakes us
        if not initialized:
            return (update(key, cache.rv(key), (True, instance, aged)),), memory
        return (), memory

    # -- the world: the cloud's instances and the kubelets ------------------------------
    def steps(self, state):
        yield from super().steps(state)
        for n in self.nodes:  # the world's steps that read the cloud
            for name in WORLD:
                yield Step(name, (n,))

    def _node(self, state, n):
        """The cloud, the node's instance and what the cloud shows and has
        pending; None for a node the model does not have."""
        if n not in self.nodes:
            return None
        cloud = state[CLOUD]
        return cloud, (INSTANCE, n), visible(cloud), pending(cloud)

    @action("Launch", tag=ENVIRONMENT)
    def _Launch(self, state, n):
        seen = self._node(state, n)
        if seen is None:
            return None
        cloud, resource, shown, ops = seen
        if resource in shown or resource in ops or (NODE, n) in self.objects(state) \
                or not self.budget_left(state, "launches"):
            return None
        core = self.spend(state[:CLOUD], "launches")
        return core + ((cloud[0], tuple(sorted(cloud[1] + ((resource, address(n)),)))),)

    @action("Register", tag=ENVIRONMENT)
    def _Register(self, state, n):
        seen = self._node(state, n)
        if seen is None:
            return None
        _, resource, shown, ops = seen
        alive = ops.get(resource) is not None if resource in ops else resource in shown
        if (NODE, n) in self.objects(state) or not alive:
            return None
        return self.server_write(state, (NODE, n), (False, None, False))

    @action("GraceExpires", tag=SYSTEM)
    def _GraceExpires(self, state, n):
        seen = self._node(state, n)
        if seen is None:
            return None
        _, resource, _, ops = seen
        node = self.objects(state).get((NODE, n))
        if node is None or node[2] or (resource in ops and ops[resource] is not None):
            return None
        return self.server_write(state, (NODE, n), node[:2] + (True,))

    @action("Terminate", tag=ENVIRONMENT)
    def _Terminate(self, state, n):
        seen = self._node(state, n)
        if seen is None:
            return None
        cloud, resource, shown, ops = seen
        if resource not in shown or resource in ops \
                or not self.budget_left(state, "terminations"):
            return None
        core = self.spend(state[:CLOUD], "terminations")
        return core + ((cloud[0], tuple(sorted(cloud[1] + ((resource, None),)))),)

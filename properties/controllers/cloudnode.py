"""What the cloud node controllers promise, read off the apiserver's Nodes and
the cloud's instances.

Kubernetes documentation, "Cloud Controller Manager": "The node controller
is responsible for updating Node objects when new servers are created in
your cloud infrastructure ... annotating and labelling the Node object ...
obtaining the node's hostname and network addresses ... verifying the
node's health. In case a node becomes unresponsive, this controller checks
with your cloud provider's API to see if the server has been deactivated /
deleted / terminated. If the node has been deleted from the cloud, the
controller deletes the Node object from your Kubernetes cluster."
"Well-Known Labels, Annotations and Taints":
``node.cloudprovider.kubernetes.io/uninitialized`` — "the kubelet sets this
taint ... until a controller from the cloud-controller-manager initializes
this node, and then removes the taint."
"""

from __future__ import annotations

from kubemc.model.controllers.cloudnode import INSTANCE, NODE
from kubemc.properties.controllers.cloud import accepted, resources
from kubemc.properties.core import COVER, EVENTUALLY_ALWAYS, TRANSITION, Property

_DOCS = ("kubernetes.io/docs/concepts/architecture/cloud-controller: 'If the node has been "
         "deleted from the cloud, the controller deletes the Node object'; "
         "kubernetes.io/docs/reference/labels-annotations-taints: "
         "node.cloudprovider.kubernetes.io/uninitialized")


def _alive(m, state) -> set:
    """Instances that exist or are being launched (a termination accepted
    but not done still counts as existing)."""
    shown, ops = resources(m, state, INSTANCE), accepted(m, state, INSTANCE)
    return {n for n in set(shown) | set(ops) if n in shown or ops.get(n) is not None}


def _nodes(m, state) -> dict:
    return {k[1]: v for k, v in m.objects(state).of_kind(NODE)}


def never_deletes_live_instance(m, before, step, after) -> bool:
    """No step removes a Node whose instance exists or is being launched."""
    removed = set(_nodes(m, before)) - set(_nodes(m, after))
    return not (removed & _alive(m, before))


def nodes_match_instances(m, state) -> bool:
    """Every Node has a shown instance, its address, and no uninitialized
    taint; no Node is left for an instance that is gone; no operation is
    outstanding in the cloud."""
    if accepted(m, state, INSTANCE):
        return False
    shown = resources(m, state, INSTANCE)
    return all(n in shown and initialized and addr == shown[n]
               for n, (initialized, addr, _) in _nodes(m, state).items())


def registered_before_shown(m, state) -> bool:
    shown = resources(m, state, INSTANCE)
    return any(n not in shown for n in _nodes(m, state))


def gone_instance_with_node(m, state) -> bool:
    shown, ops = resources(m, state, INSTANCE), accepted(m, state, INSTANCE)
    return any(n not in shown and n not in ops for n in _nodes(m, state))


PROPERTIES = (
    Property("cloudnode_converges", "controllers", EVENTUALLY_ALWAYS,
             "once instances stop being launched and terminated and faults stop, every Node "
             "eventually is initialized (taint removed, address from its instance), Nodes "
             "whose instance is gone are deleted, and it stays so", _DOCS,
             nodes_match_instances,
             assumption="the cloud completes every operation it accepted, and its lag is "
                        "shorter than the grace period (GraceExpires is enabled only once the "
                        "instance is shown)"),
    Property("cloudnode_never_deletes_live_instance", "controllers", TRANSITION,
             "no step deletes a Node whose cloud instance exists or is being launched",
             _DOCS + "; kubernetes/kubernetes#81636 and #58334 (a Node deleted because the "
             "cloud did not show its new instance yet); the grace period against it: "
             "kubernetes/kubernetes#127424 (instanceExistsGracePeriod, closed unmerged), "
             "kubernetes-sigs/cloud-provider-azure#10605 (merged)",
             never_deletes_live_instance),
    Property("cloudnode_cover_registered_before_shown", "controllers", COVER,
             "some reachable state has a Node whose instance the cloud does not show yet "
             "(the lag the grace period guards against)", _DOCS, registered_before_shown),
    Property("cloudnode_cover_gone_instance", "controllers", COVER,
             "some reachable state has a Node whose instance is gone (deletion is needed)",
             _DOCS, gone_instance_with_node),
)

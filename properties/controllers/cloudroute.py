"""What the route controller promises, read off the apiserver's nodes and the
cloud's routes.

Kubernetes documentation, "Cloud Controller Manager" (kubernetes.io/docs/
concepts/architecture/cloud-controller): "The route controller is
responsible for configuring routes in the cloud appropriately so that
containers on different nodes in your Kubernetes cluster can communicate
with each other." The seeds: the cloud-controller-manager's controllers
"manage load balancing and routing". A node's pods are reached through the
route for its ``spec.podCIDR``; a route whose node is gone points at nothing
(or, once the CIDR is reused, at the wrong node).
"""

from __future__ import annotations

from kubemc.model.controllers.cloudroute import NODE, ROUTE
from kubemc.properties.controllers.cloud import accepted, quiet_end, resources
from kubemc.properties.core import COVER, EVENTUALLY_ALWAYS, INVARIANT, Property

_DOCS = ("kubernetes.io/docs/concepts/architecture/cloud-controller: 'The route controller "
         "is responsible for configuring routes in the cloud appropriately so that "
         "containers on different nodes ... can communicate'")
_SEED = "seeds: the cloud-controller-manager's controllers 'manage load balancing and routing'"


def _wanted(m, state) -> dict:
    return {k[1]: cidr for k, cidr in m.objects(state).of_kind(NODE)}


def routes_match_nodes(m, state) -> bool:
    """The cloud's routes are exactly one per node, to its podCIDR, and the
    cloud has nothing left to do."""
    return resources(m, state, ROUTE) == _wanted(m, state) and not accepted(m, state, ROUTE)


def no_route_for_gone_node(m, state) -> bool:
    """Where the quiet phase ends (no system step enabled), no route in the
    cloud names a node the apiserver does not hold."""
    if not quiet_end(m, state):
        return True
    nodes = _wanted(m, state)
    return all(n in nodes for n in resources(m, state, ROUTE))


def orphan_route_exists(m, state) -> bool:
    nodes = _wanted(m, state)
    return any(n not in nodes for n in resources(m, state, ROUTE))


def route_pending(m, state) -> bool:
    return bool(accepted(m, state, ROUTE))


PROPERTIES = (
    Property("cloudroute_converges", "controllers", EVENTUALLY_ALWAYS,
             "once nodes stop changing and faults stop, the cloud's routes eventually are "
             "exactly one per node to its podCIDR, with no operation outstanding, and stay so",
             _DOCS + "; " + _SEED,
             routes_match_nodes,
             assumption="the cloud completes every operation it accepted (CloudCompletes is "
                        "a weakly fair system step)"),
    Property("cloudroute_no_route_for_gone_node", "controllers", INVARIANT,
             "in every reachable state where no system step is enabled (the controller and "
             "the cloud are done), no cloud route names a node the apiserver does not hold",
             _DOCS + "; a route to a deleted node's podCIDR misroutes once the CIDR is reused",
             no_route_for_gone_node),
    Property("cloudroute_cover_orphan_route", "controllers", COVER,
             "some reachable state has a route for a node that has left (deletion is "
             "exercised)", _DOCS, orphan_route_exists),
    Property("cloudroute_cover_pending", "controllers", COVER,
             "some reachable state has a route operation accepted but not yet visible (the "
             "cloud's lag is exercised)", _DOCS, route_pending),
)

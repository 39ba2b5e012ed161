"""What the service controller promises, read off the apiserver's Services
and nodes and the cloud's load balancers.

Kubernetes documentation, "Cloud Controller Manager": "The Service
controller ... interacts with your cloud provider's API to set up load
balancers and other infrastructure components when you declare a Service
resource that requires them." "Service" (type LoadBalancer): "the cloud
provider ... provisions a load balancer for the Service ... Information
about the provisioned load balancer is published in the Service's
.status.loadBalancer field"; the load balancer's targets are the cluster's
nodes (traffic goes to a node port). "Create an External Load Balancer",
"Garbage collecting load balancers": the finalizer
``service.kubernetes.io/load-balancer-cleanup`` makes sure "the Service
resource is not fully deleted until the correlating load balancer resources
are also deleted" (KEP-980).
"""

from __future__ import annotations

from kubemc.model.controllers.cloudservice import LB, NODE, SERVICE
from kubemc.properties.controllers.cloud import accepted, resources
from kubemc.properties.core import COVER, EVENTUALLY_ALWAYS, INVARIANT, Property

_DOCS = ("kubernetes.io/docs/concepts/architecture/cloud-controller: 'The Service "
         "controller ... interacts with your cloud provider's API to set up load balancers'; "
         "kubernetes.io/docs/concepts/services-networking/service/#loadbalancer")
_PUBLISHED = ("kubernetes.io/docs/concepts/services-networking/service/#loadbalancer: 'The "
              "actual creation of the load balancer happens asynchronously, and information "
              "about the provisioned balancer is published in the Service's "
              ".status.loadBalancer field'")
_CLEANUP = ("kubernetes.io/docs/tasks/access-application-cluster/create-external-load-"
            "balancer/#garbage-collecting-load-balancers: 'the Service resource is not fully "
            "deleted until the correlating load balancer resources are also deleted' "
            "(KEP-980, finalizer service.kubernetes.io/load-balancer-cleanup)")


def _services(m, state) -> dict:
    return {k[1]: v for k, v in m.objects(state).of_kind(SERVICE)}


def _nodes(m, state) -> tuple:
    return tuple(sorted(k[1] for k, _ in m.objects(state).of_kind(NODE)))


def no_leaked_lb(m, state) -> bool:
    """Every load balancer in the cloud — shown, or accepted for creation —
    belongs to a Service the apiserver still holds."""
    services = _services(m, state)
    shown = resources(m, state, LB)
    creating = {s for s, v in accepted(m, state, LB).items() if v is not None}
    return all(s in services for s in set(shown) | creating)


def ingress_only_for_provisioned_lb(m, state) -> bool:
    """A Service that is not being deleted publishes status.loadBalancer.ingress
    only while the cloud shows its load balancer (an accepted, not yet done
    operation is not a provisioned load balancer)."""
    shown = resources(m, state, LB)
    return all(s in shown for s, (_, ingress, terminating) in _services(m, state).items()
               if ingress and not terminating)


def lb_matches_services(m, state) -> bool:
    """Each Service has its load balancer, targeting exactly the nodes, its
    ingress published and the cleanup finalizer set, no Service is left
    terminating, no other load balancer exists, and nothing is pending."""
    services, nodes = _services(m, state), _nodes(m, state)
    if accepted(m, state, LB):
        return False
    if any(terminating for _, _, terminating in services.values()):
        return False
    if any(not (finalizer and ingress) for finalizer, ingress, _ in services.values()):
        return False
    return resources(m, state, LB) == {s: nodes for s in services}


def lb_with_ingress(m, state) -> bool:
    services = _services(m, state)
    return any(v[1] for v in services.values()) and bool(resources(m, state, LB))


def deleting_with_lb(m, state) -> bool:
    services, shown = _services(m, state), resources(m, state, LB)
    return any(v[2] and s in shown for s, v in services.items())


PROPERTIES = (
    Property("cloudservice_converges", "controllers", EVENTUALLY_ALWAYS,
             "once users, nodes and faults stop, every LoadBalancer Service eventually has a "
             "cloud load balancer targeting exactly the nodes, its status.loadBalancer.ingress "
             "and the cleanup finalizer; deleted Services and their load balancers are gone; "
             "and it stays so", _DOCS,
             lb_matches_services,
             assumption="the cloud completes every operation it accepted (CloudCompletes is "
                        "a weakly fair system step)"),
    Property("cloudservice_no_leaked_lb", "controllers", INVARIANT,
             "never a load balancer in the cloud (or one being created) whose Service the "
             "apiserver no longer holds: the Service and its finalizer go only after the "
             "load balancer", _CLEANUP, no_leaked_lb),
    Property("cloudservice_ingress_only_for_provisioned_lb", "controllers", INVARIANT,
             "a Service not being deleted never has status.loadBalancer.ingress published "
             "while the cloud does not show its load balancer", _PUBLISHED,
             ingress_only_for_provisioned_lb),
    Property("cloudservice_cover_ingress", "controllers", COVER,
             "some reachable state has a load balancer and its ingress published",
             _DOCS, lb_with_ingress),
    Property("cloudservice_cover_deleting_with_lb", "controllers", COVER,
             "some reachable state has a terminating Service whose load balancer still "
             "exists (the finalizer is exercised)", _CLEANUP, deleting_with_lb),
)

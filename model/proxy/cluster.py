"""The fixed cluster the kube-proxy model runs on, and the EndpointSlice
controller's view of it.

The pod network here is correct by construction (the CNI model checks it):
pod ``p`` runs on node ``p % nodes`` with address ``10.22.<node>.<2 + p //
nodes>``; routes are flat. What changes is the API: pods become ready,
unready, terminating, deleted; and what each node's kube-proxy has synced.

Services (``services`` of them) cycle through the protocols kube-proxy
forwards (seeds/000: "tcp, udp and sctp stream forwarding"): Service ``s``
uses TCP, UDP, SCTP for ``s % 3`` = 0, 1, 2, is a NodePort when ``s`` is odd,
has ClientIP session affinity when ``s % 3 == 0`` and publishNotReadyAddresses
when ``s % 3 == 2``. It selects the pods ``p`` with ``p % 2 == s % 2``.
"""

from __future__ import annotations

from kubemc.model.network import addr
from kubemc.model.network.dataplane import PROTOCOLS, EndpointEntry, Pod, Service

CLUSTER_CIDR = addr.cidr("10.22.0.0/16")
SERVICE_CIDR = addr.cidr("10.96.0.0/12")
#: a client outside the cluster (TEST-NET-3, RFC 5737); it reaches Services
#: through the first node
EXTERNAL_CLIENT = addr.ip("203.0.113.7")

#: the seeded bug of the EndpointSlice controller (the proxy machine declares it;
#: ``Proxy.mutant_helpers`` has the kernel check the name compared below)
TERMINATING_ENDPOINT_READY = "terminating_endpoint_ready"

#: a pod's condition as the API holds it (at most one of these at a time)
GONE, READY, NOT_READY, TERMINATING_SERVING, TERMINATING = range(5)
CONDITIONS = ("gone", "ready", "not-ready", "terminating-serving", "terminating")


def node_ip(n: int) -> int:
    return addr.ip("192.168.0.10") + n


def pod_ip(p: int, nodes: int) -> int:
    return addr.subnet(CLUSTER_CIDR, 24, p % nodes)[0] + 2 + p // nodes


def pod_name(p: int) -> str:
    return f"pod-{p}"


def service_spec(s: int) -> Service:
    """Service ``s`` without its endpoints."""
    return Service(name=f"svc-{s}", vip=SERVICE_CIDR[0] + 10 + s, port=80 + s,
                   proto=PROTOCOLS[s % 3], target_port=8080 + s,
                   node_port=30000 + s if s % 2 else 0, affinity=s % 3 == 0,
                   publish_not_ready=s % 3 == 2)


def selects(s: int, p: int) -> bool:
    return p % 2 == s % 2


def slice_entries(spec: Service, s: int, conditions, nodes: int, mutant=None) -> tuple:
    """The EndpointSlice controller: one entry per selected pod that exists,
    with ready / serving / terminating (discovery.k8s.io/v1
    EndpointConditions). publishNotReadyAddresses marks every entry ready
    ("any agent which deals with endpoints for this Service should disregard
    any indications of ready/not-ready", Service API reference)."""
    out = []
    for p, cond in enumerate(conditions):
        if cond == GONE or not selects(s, p):
            continue
        serving = cond in (READY, TERMINATING_SERVING)
        terminating = cond in (TERMINATING_SERVING, TERMINATING)
        ready = spec.publish_not_ready or cond == READY
        if mutant == TERMINATING_ENDPOINT_READY:
            ready = ready or cond == TERMINATING_SERVING
        out.append(EndpointEntry(pod_name(p), pod_ip(p, nodes), ready,
                                 serving or spec.publish_not_ready, terminating, p % nodes))
    return tuple(out)


def api_services(services: int, conditions, nodes: int, mutant=None) -> tuple:
    out = []
    for s in range(services):
        spec = service_spec(s)
        out.append(Service(spec.name, spec.vip, spec.port, spec.proto, spec.target_port,
                           spec.node_port, spec.affinity, spec.publish_not_ready,
                           slice_entries(spec, s, conditions, nodes, mutant)))
    return tuple(out)


def running_pods(conditions, nodes: int) -> tuple:
    """Pods that still hold their address (terminating pods do, until gone)."""
    return tuple(Pod(pod_name(p), p % nodes, pod_ip(p, nodes))
                 for p, c in enumerate(conditions) if c != GONE)

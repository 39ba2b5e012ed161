"""The dataplane: what a model state of the CNI or kube-proxy machine
projects to, and what a generated cluster at scale is made of.

Why a separate value layer: the machines keep compact tuples for speed, but
the question every property asks — "where does this packet go?" — needs
nodes, bridges, routes, pods and rule chains by name. Both machines, the
cluster generator and the Z3 encoding speak these types, so
:func:`model.network.forward.forward` is the single oracle of forwarding.

Kubernetes facts the fields carry:

* every node has a podCIDR carved from the cluster CIDR by the node IPAM
  controller; the CNI bridge plugin (seeds/004: bridge ``cni0``, host-local
  IPAM) serves that block on the node, its gateway address on the bridge;
* routes are per node: with flat routing each node routes every other
  node's podCIDR to that node (seeds/004: "all IPs involved (nodes and pods)
  are routable without NAT ... at the physical network infrastructure ... or
  with a software defined overlay"); an overlay route encapsulates, leaving
  the inner packet unchanged;
* kube-proxy's iptables rules per node: KUBE-SERVICES matches a Service's
  virtual IP, port and protocol (or a NodePort on a local address) and jumps
  to KUBE-SVC-…, whose rules pick endpoint i of n with ``statistic mode
  random probability 1/(n-i)`` and jump to KUBE-SEP-…, which DNATs to the
  endpoint (kubernetes.io/docs/reference/networking/virtual-ips, iptables
  proxy mode; pkg/proxy/iptables/proxier.go).
"""

from __future__ import annotations

from fractions import Fraction
from functools import cached_property

import attrs

from kubemc.model.network.addr import Cidr

TCP, UDP, SCTP = "TCP", "UDP", "SCTP"
PROTOCOLS = (TCP, UDP, SCTP)


@attrs.frozen(slots=True)
class Route:
    """``dst`` is reached through node ``via`` (the node's own index means:
    out of its bridge). ``overlay`` routes encapsulate node to node."""

    dst: Cidr
    via: int
    overlay: bool = False


@attrs.frozen(slots=True)
class Bridge:
    """The bridge plugin's bridge on one node: the host-local range's subnet,
    the gateway address it holds, and the plugin's ``ipMasq`` setting (which
    masquerades traffic *from* ``subnet`` to destinations outside it)."""

    name: str
    subnet: Cidr
    gateway: int
    ip_masq: bool = False


@attrs.frozen(slots=True)
class Backend:
    """One KUBE-SEP rule of a KUBE-SVC chain: DNAT to ``ip:port``, reached
    when the chain's earlier statistic rules missed and this one hit with
    ``probability``."""

    ip: int
    port: int
    probability: Fraction


@attrs.frozen(slots=True)
class ServiceRule:
    """A Service as one node's kube-proxy programmed it. ``backends`` empty
    means the Service has no endpoints: kube-proxy installs a REJECT.
    ``sticky``: the backends whose KUBE-SEP chain has a ClientIP-affinity
    rule (``-m recent --rcheck``) — the backends themselves, when kube-proxy
    gets it right."""

    service: str
    vip: int
    port: int
    proto: str
    node_port: int
    backends: tuple
    affinity: bool = False
    sticky: tuple = ()


@attrs.frozen(slots=True)
class Rules:
    """One node's kube-proxy rules: the KUBE-SERVICES chain, in order, and the
    cluster CIDR kube-proxy was given (traffic to a ClusterIP from outside it
    is marked for masquerade)."""

    cluster_cidr: Cidr
    services: tuple = ()


NO_RULES = Rules((0, 0), ())


@attrs.frozen(slots=True)
class Node:
    index: int
    name: str
    ip: int
    pod_cidr: Cidr | None
    bridge: Bridge | None
    routes: tuple
    rules: Rules = NO_RULES

    def local_addresses(self) -> tuple:
        """What ``-m addrtype --dst-type LOCAL`` matches: the node's address
        and its bridge's gateway address."""
        return (self.ip,) if self.bridge is None else (self.ip, self.bridge.gateway)


@attrs.frozen(slots=True)
class Pod:
    """A pod whose sandbox has its address (CNI ADD succeeded)."""

    name: str
    node: int
    ip: int


@attrs.frozen(slots=True)
class EndpointEntry:
    """One endpoint of an EndpointSlice with its conditions
    (discovery.k8s.io/v1 EndpointConditions: ready, serving, terminating)."""

    pod: str
    ip: int
    ready: bool
    serving: bool
    terminating: bool
    node: int = -1


@attrs.frozen(slots=True)
class Service:
    """A Service as the API holds it, with its EndpointSlice entries (the
    slice controller already applied publishNotReadyAddresses: such a
    Service's endpoints are all marked ready)."""

    name: str
    vip: int
    port: int
    proto: str
    target_port: int
    node_port: int = 0
    affinity: bool = False
    publish_not_ready: bool = False
    endpoints: tuple = ()


@attrs.frozen(slots=False)
class Dataplane:
    cluster_cidr: Cidr
    nodes: tuple
    pods: tuple
    services: tuple = ()

    @cached_property
    def pod_index(self) -> dict:
        """(node, ip) -> the pod the node's bridge delivers that address to
        (the first one, should two pods wrongly share an address)."""
        out = {}
        for p in self.pods:
            out.setdefault((p.node, p.ip), p)
        return out


def flat_routes(index: int, pod_cidrs, overlay: bool = False) -> tuple:
    """Node ``index``'s table with flat routing: every node's podCIDR to that
    node (its own to its bridge). ``pod_cidrs[n]`` is ``None`` for a node that
    has none yet."""
    return tuple(Route(c, n, overlay and n != index)
                 for n, c in enumerate(pod_cidrs) if c is not None)


__all__ = ["Backend", "Bridge", "Dataplane", "EndpointEntry", "NO_RULES", "Node", "PROTOCOLS",
           "Pod", "Route", "Rules", "SCTP", "Service", "ServiceRule", "TCP", "UDP",
           "flat_routes"]

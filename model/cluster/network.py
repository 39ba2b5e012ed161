"""What the cluster's state projects to on the wire: a
``model.network.dataplane.Dataplane``, the input of the network model's one
forwarding function (``model.network.forward``).

* nodes: every node has its podCIDR from the cluster CIDR, the bridge
  plugin's ``cni0`` serving it (gateway ``.1``, no ``ipMasq``: pod traffic
  leaves its node unchanged, seeds/004 "No Network Address Translation"),
  and flat routes to every other node's podCIDR — the routing the ``cni``
  component checks, fixed here because nodes do not join or leave;
* pods: the sandboxes the runtimes of *live* nodes run, at the addresses
  their CNI ADD gave them. A dead node's pods are gone from the wire, so a
  packet routed to them is dropped;
* rules: each node's kube-proxy rules, compiled by ``model.proxy.rules``
  from the EndpointSlice that node's kube-proxy last synced — traffic from
  outside the cluster CIDR to the ClusterIP is marked for masquerade, as
  kube-proxy does given ``--cluster-cidr``. The seeded bug
  ``proxy_masquerade_all`` is kube-proxy's ``--masquerade-all``: every
  packet to a ClusterIP is SNATed.
"""

from __future__ import annotations

from kubemc.model.cluster import spec
from kubemc.model.network.dataplane import Bridge, Dataplane, EndpointEntry, Node, Pod, Service
from kubemc.model.network.dataplane import flat_routes
from kubemc.model.proxy.rules import compile_rules

#: a cluster CIDR that holds no address kube-proxy could see: with it,
#: every source is "outside the cluster" and masqueraded (--masquerade-all)
MATCHES_NOTHING = (0xFFFFFFFF, 32)


def service(snapshot) -> Service:
    """The Service with the endpoints of one EndpointSlice snapshot."""
    entries = tuple(EndpointEntry(spec.pod_name(slot), ip, ready, serving, terminating, node)
                    for slot, ip, node, ready, serving, terminating in snapshot)
    return Service(spec.SERVICE_NAME, spec.CLUSTER_IP, spec.SERVICE_PORT, spec.PROTOCOL,
                   spec.TARGET_PORT, endpoints=entries)


def rules(snapshot, node: int, masquerade_all: bool = False):
    cidr = MATCHES_NOTHING if masquerade_all else spec.CLUSTER_CIDR
    return compile_rules(cidr, (service(snapshot),), node)


def dataplane(nodes: int, alive, snapshots, sandboxes, masquerade_all: bool = False):
    """``alive[n]``: node n is up; ``snapshots[n]``: the slice node n's
    kube-proxy synced; ``sandboxes[n]``: ``(slot, ip)`` its runtime runs."""
    blocks = [spec.pod_cidr(n) for n in range(nodes)]
    wire = tuple(
        Node(n, spec.node_name(n), spec.node_ip(n), blocks[n],
             Bridge("cni0", blocks[n], blocks[n][0] + 1), flat_routes(n, blocks),
             rules(snapshots[n], n, masquerade_all))
        for n in range(nodes))
    pods = tuple(Pod(spec.pod_name(slot), n, ip)
                 for n in range(nodes) if alive[n] for slot, ip in sandboxes[n])
    return Dataplane(spec.CLUSTER_CIDR, wire, pods)

"""kube-proxy's iptables mode: from Services and EndpointSlices to one node's
rules (the ``syncProxyRules`` of pkg/proxy/iptables/proxier.go, reduced to
what decides where a connection goes).

* Which endpoints: the ready ones; when a Service has none, the serving
  endpoints that are terminating (KEP-1669 "Proxy Terminating Endpoints":
  traffic falls back to terminating endpoints that are still serving rather
  than being dropped). No usable endpoint: a REJECT rule for the Service.
* KUBE-SVC-… chain: for endpoints 0..n-1, rule i jumps to KUBE-SEP-i with
  ``-m statistic --mode random --probability 1/(n-i)`` and the last rule
  jumps unconditionally — so each endpoint is picked with probability 1/n
  (kubernetes.io/docs/reference/networking/virtual-ips: "kube-proxy ...
  selects a backend at random").
* NodePort Services get a KUBE-NODEPORTS rule on every node: with
  externalTrafficPolicy Cluster, any node forwards to any endpoint (and
  masquerades, see ``model.network.forward``).
* ClientIP session affinity: ``-m recent`` rules that send a client back to
  the endpoint it used before.

The seeded bugs of the proxy model live here (``mutant``).
"""

from __future__ import annotations

from fractions import Fraction

from kubemc.model.network.dataplane import Backend, Rules, ServiceRule

#: the seeded bugs (the proxy machine declares them; the kernel checks every
#: name compared below against its declarations: ``Proxy.mutant_helpers``)
STALE_AFFINITY_RULES = "stale_affinity_rules"
NOT_READY_ENDPOINT_IN_RULES = "not_ready_endpoint_in_rules"
PROBABILITY_OFF_BY_ONE = "probability_off_by_one"
PROBABILITY_ONE_TOO_MANY = "probability_one_too_many"
NODEPORT_ONLY_ON_ENDPOINT_NODES = "nodeport_only_on_endpoint_nodes"
CLUSTER_CIDR_EVERYTHING = "cluster_cidr_everything"


def usable(entries, mutant=None) -> tuple:
    if mutant == NOT_READY_ENDPOINT_IN_RULES:
        return tuple(entries)
    ready = tuple(e for e in entries if e.ready)
    return ready or tuple(e for e in entries if e.serving and e.terminating)


def probability(i: int, n: int, mutant=None) -> Fraction:
    """The statistic rule of endpoint i of n (the last rule matches always)."""
    if mutant == PROBABILITY_OFF_BY_ONE:
        return Fraction(1, max(1, n - i - 1))
    if mutant == PROBABILITY_ONE_TOO_MANY:
        return Fraction(1) if i == n - 1 else Fraction(1, n - i + 1)
    return Fraction(1, n - i)


def compile_rules(cluster_cidr, services, node: int, mutant=None) -> Rules:
    out = []
    for svc in services:
        eps = usable(svc.endpoints, mutant)
        n = len(eps)
        backends = tuple(Backend(e.ip, svc.target_port, probability(i, n, mutant))
                         for i, e in enumerate(eps))
        node_port = svc.node_port
        if mutant == NODEPORT_ONLY_ON_ENDPOINT_NODES and not any(e.node == node for e in eps):
            node_port = 0
        sticky = backends if svc.affinity else ()
        if svc.affinity and mutant == STALE_AFFINITY_RULES:
            # the affinity rules of endpoints that left the chain stay behind
            sticky = backends + tuple(Backend(e.ip, svc.target_port, Fraction(0))
                                      for e in svc.endpoints if e not in eps)
        out.append(ServiceRule(svc.name, svc.vip, svc.port, svc.proto, node_port, backends,
                               svc.affinity, sticky))
    if mutant == CLUSTER_CIDR_EVERYTHING:
        # kube-proxy given 0.0.0.0/0 as --cluster-cidr: every source looks like a pod
        cluster_cidr = (0, 0)
    return Rules(cluster_cidr, tuple(out))

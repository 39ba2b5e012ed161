"""The cluster network: CNI pod networking (``cni``) and kube-proxy's Service
forwarding (``proxy``), each with its Z3 proofs over every dataplane the
machine reaches (``checker.reach``)."""

from __future__ import annotations

from functools import partial

from kubemc.checker import reach
from kubemc.checker.catalog import Component, Model
from kubemc.checker.counterexample import Counterexample
from kubemc.checker.z3engine import PROVED, VIOLATED, Z3Outcome, SymbolicCheck, confirm
from kubemc.model.cni.machine import Cni
from kubemc.model.proxy.machine import Proxy
from kubemc.properties import cni as cni_properties
from kubemc.properties import proxy as proxy_properties
from kubemc.properties.symbolic import network_reach

CNI_MODEL = Model(
    name="cni",
    build=Cni,
    # 3 nodes, 4 pods (two on the first node), 2 containers per pod, 2
    # addresses per node range, one pod deletion, one sandbox crash, one
    # controller restart: 305,146 distinct states, 482 distinct dataplanes
    # (properties are memoized per dataplane, so this is about 13 s).
    bounds={"nodes": 3, "pods": 4, "containers": 2, "addresses": 2, "deletions": 1,
            "crashes": 1, "restarts": 1, "overlay": False},
    properties=cni_properties.PROPERTIES,
    hypothesis_bounds={"deletions": 3, "crashes": 2, "restarts": 1},
)

CNI_FULL_RANGE_MODEL = Model(
    name="cni-full-range",
    build=Cni,
    # One address per node range, two pods on node 0 (pods 0 and 2), one
    # on node 1: the second pod of node 0 waits while the first holds the
    # range, so host-local refuses ADDs here (at `cni`'s defaults no node
    # has more pods than addresses and no ADD is ever refused). 5,496
    # distinct states, about half a second. The wrap-around cover is left
    # out: with one address nothing lies below the last reserved one.
    bounds={"nodes": 2, "pods": 3, "containers": 1, "addresses": 1, "deletions": 1,
            "crashes": 1, "restarts": 1, "overlay": False},
    properties=tuple(p for p in cni_properties.PROPERTIES
                     if p.name != "cni_cover_add_wrapped_around")
    + (cni_properties.ADD_REFUSED_ON_FULL_RANGE,),
    hypothesis_bounds={"deletions": 3, "crashes": 2},
)

PROXY_MODEL = Model(
    name="proxy",
    build=Proxy,
    # 3 nodes, 4 pods, 2 Services (a ClusterIP over TCP with ClientIP
    # affinity, a NodePort over UDP), two condition changes, one pod
    # deletion, one connection of the external client that affinity
    # remembers, every node's sync lagging: 15,618 distinct states.
    bounds={"nodes": 3, "pods": 4, "services": 2, "events": 2, "deletions": 1,
            "connections": 1},
    properties=proxy_properties.PROPERTIES,
    hypothesis_bounds={"services": 4, "events": 8, "deletions": 2, "connections": 3},
)


def _reach_check(name, component, model, prop, proves, queries, key,
                 claim="proved for every packet"):
    """A SymbolicCheck that proves ``prop`` over every dataplane ``model``
    reaches, or — given a mutant — finds the shallowest failing state and
    the solver's packet, replayed on the executable machine."""
    target = next(p for p in model.properties if p.name == prop)
    mutants = tuple(n for n, m in model.mutants.items() if m.violates == prop)

    def run(mutant=None, *, timeout_ms=None):
        machine = model.machine(mutant)
        out = reach.prove(machine, queries, key)
        if out.verdict == "proved":
            # explore enumerates the dataplanes, z3 proves each for every
            # packet: an SMT check per dataplane, not a bounded unrolling
            return Z3Outcome(name, prop, "smt", PROVED, out.dataplanes, out.seconds,
                          detail=f"{out.dataplanes:,} distinct dataplanes of {out.states:,} "
                                 f"reachable states {claim}", machine=machine)
        cex = Counterexample(target, out.init, out.steps)
        confirm(machine, cex, f"{name} (packet {out.failed.packet})")
        return Z3Outcome(name, prop, "smt", VIOLATED, len(cex.steps), out.seconds,
                         counterexample=cex,
                         detail=f"packet {out.failed.packet}: {out.failed.detail}",
                         machine=machine)

    return SymbolicCheck(name, component, model.name, prop, proves, run, mutants)


CNI = Component(
    "cni",
    "pod networking: node IPAM, host-local IPAM, pause-container sandboxes, bridge, routes",
    (CNI_MODEL, CNI_FULL_RANGE_MODEL),
    symbolic=(
        _reach_check("cni:pod_to_pod_z3", "cni", CNI_MODEL, "pod_to_pod_without_nat",
                     "every pod reaches every pod unchanged, for every packet, in every "
                     "reachable dataplane", partial(network_reach.cni_queries, which="pods"),
                     network_reach.cni_key),
        _reach_check("cni:node_to_pod_z3", "cni", CNI_MODEL, "node_to_pod_without_nat",
                     "every node reaches every pod unchanged, for every packet, in every "
                     "reachable dataplane", partial(network_reach.cni_queries, which="nodes"),
                     network_reach.cni_key),
    ))

PROXY = Component(
    "proxy",
    "kube-proxy (iptables mode): Services, EndpointSlices, per-node rules synced with a lag",
    (PROXY_MODEL,),
    symbolic=(
        _reach_check("proxy:cluster_ip_z3", "proxy", PROXY_MODEL,
                     "service_reaches_only_usable_endpoints",
                     "a connection to any Service VIP reaches only usable endpoints, on every "
                     "in-sync node of every reachable state",
                     partial(network_reach.proxy_queries, mode="cluster_ip"),
                     network_reach.proxy_key),
        _reach_check("proxy:node_port_z3", "proxy", PROXY_MODEL, "nodeport_on_every_node",
                     "a NodePort answers with a usable endpoint on every in-sync node",
                     partial(network_reach.proxy_queries, mode="node_port"),
                     network_reach.proxy_key),
        _reach_check("proxy:chosen_z3", "proxy", PROXY_MODEL, "ready_endpoints_all_chosen",
                     "each of a Service's n usable endpoints is chosen by its KUBE-SVC chain "
                     "with probability exactly 1/n (exact rationals), on every in-sync node",
                     partial(network_reach.proxy_queries, mode="chosen"),
                     network_reach.proxy_key,
                     claim="proved: every usable endpoint has probability exactly 1/n"),
    ))

#: what ``checker.components`` finds in this module: it declares two components
COMPONENTS = (CNI, PROXY)

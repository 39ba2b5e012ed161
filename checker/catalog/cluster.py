"""The whole cluster (issue 15): the components composed through the
apiserver, as the seeds describe one system — a control plane (apiserver,
scheduler, controller managers, etcd) and worker nodes (kubelet, container
runtime, kube-proxy, CNI), in the seeds' topologies, plus the DNS addon.

Three groups of models, each kept in its own section below:

* ``END_TO_END`` — the single-master topology running a Deployment behind a
  Service, with a node failure (``model.cluster``);
* ``TOPOLOGIES`` — the HA topologies and the leader election of the
  scheduler and the controller manager on Leases;
* ``DNS`` — the cluster DNS addon kept in step with Services by a watch.
"""

from __future__ import annotations

from kubemc.checker.catalog import Component, Model
from kubemc.model.cluster.dns import ClusterDns
from kubemc.model.cluster.ha import ExternalControlPlane, StackedControlPlane
from kubemc.model.cluster.leader import LEASE_DURATION, RENEW_DEADLINE
from kubemc.model.cluster.machine import Cluster
from kubemc.properties import cluster as e2e_props
from kubemc.properties import cluster_dns as dns_props
from kubemc.properties import cluster_topology as topology_props

# -- end to end -------------------------------------------------------------
#: the single-master cluster: 2 workers, a Deployment of 2 behind a ClusterIP
#: Service, one worker dying (docs/cluster.md: state counts, time, memory).
#: Each mutant is found at the smallest bounds that show it: one replica
#: (a few thousand states) except where a second pod is the point.
_ONE_REPLICA = {"replicas": 1}
END_TO_END: tuple[Model, ...] = (
    Model(
        name="cluster",
        build=Cluster,
        bounds={"workers": 2, "replicas": 2, "failures": 1},
        properties=e2e_props.PROPERTIES,
        mutant_bounds={
            "scheduler_ignores_control_plane_taint": _ONE_REPLICA,
            "scheduler_ignores_unreachable_taint": _ONE_REPLICA,
            "nodelifecycle_never_evicts": _ONE_REPLICA,
            "endpoints_ignore_pod_conditions": _ONE_REPLICA,
            # pod to pod needs two pods; no failure needed
            "proxy_masquerade_all": {"failures": 0},
            "replicaset_counts_terminating": _ONE_REPLICA,
            "kubelet_never_ready": {"replicas": 1, "failures": 0},
            "kubelet_reads_store": _ONE_REPLICA,
            "scheduler_binds_through_store": _ONE_REPLICA,
            # resources alone refuse a node only with three pods and nobody
            # dying: at the defaults no pod is pending while a Ready worker is full
            "scheduler_ignores_resources": {"replicas": 3, "failures": 0},
            "nodelifecycle_keeps_pods_ready": _ONE_REPLICA,
            "endpoints_ready_ignores_pod_ready": _ONE_REPLICA,
            "kubelet_runs_every_pod": _ONE_REPLICA,
            "replicaset_creates_one_extra": _ONE_REPLICA,
            "ipam_subnet_is_cluster_cidr": _ONE_REPLICA,
        },
        ceilings={"workers": 3, "replicas": 3, "failures": 2},
    ),
)

# -- topologies and leader election ------------------------------------------
#: Explore checks one elected component (kube-scheduler) per run: the two
#: Leases share only the hosts and the store, so each component's behaviours
#: are exactly those of the one-component model (tests/test_cluster_ha.py
#: checks this projection exhaustively at a smaller bound), and their product
#: is the square of it (tens of millions of states). Random runs take both.
#: docs/cluster-topologies.md has the state counts, time and memory.
#: Lease duration and renew deadline in ticks (the scheduler HA model's), and
#: how far master-2's clock runs ahead: bounds, so --bound can vary them.
_TIMING = {"lease_duration": LEASE_DURATION, "renew_deadline": RENEW_DEADLINE, "skew": 2}
_HA_CEILINGS = {"masters": 5, "components": 2, "crashes": 4, "restarts": 4,
                "lease_duration": 6, "renew_deadline": 5, "skew": 4}
HA_STACKED = Model(
    name="cluster-ha-stacked",
    build=StackedControlPlane,
    # 3 masters with their etcd members, 2 crashes, 1 restart: 59,573 states
    bounds={"masters": 3, "components": 1, "crashes": 2, "restarts": 1, **_TIMING},
    properties=topology_props.STACKED,
    hypothesis_bounds={"components": 2},
    ceilings=_HA_CEILINGS,
)
HA_EXTERNAL = Model(
    name="cluster-ha-external",
    build=ExternalControlPlane,
    # 3 masters and 3 etcd hosts, 2 crashes: 45,398 states
    bounds={"masters": 3, "components": 1, "crashes": 2, "restarts": 0, **_TIMING},
    properties=topology_props.EXTERNAL,
    hypothesis_bounds={"components": 2, "restarts": 1},
    ceilings=_HA_CEILINGS,
)
TOPOLOGIES: tuple[Model, ...] = (HA_STACKED, HA_EXTERNAL)

# -- the DNS addon -------------------------------------------------------------
DNS_ADDON = Model(
    name="cluster-dns",
    build=ClusterDns,
    # Service "a" (dual-stack, a named and an unnamed port) at the start; one
    # create (of "b", or "a" again), one update (ports or dual-stack), one
    # delete, one dropped watch: 9,804 states, about 3 s
    bounds={"creates": 1, "updates": 1, "deletes": 1, "watch_drops": 1},
    properties=dns_props.PROPERTIES,
    hypothesis_bounds={"creates": 2, "updates": 2, "deletes": 2, "watch_drops": 1},
)

DNS: tuple[Model, ...] = (DNS_ADDON,)

COMPONENT = Component(
    name="cluster",
    summary="the whole cluster composed through the apiserver: end to end, "
            "HA topologies with leader election, the DNS addon",
    models=END_TO_END + TOPOLOGIES + DNS,
)

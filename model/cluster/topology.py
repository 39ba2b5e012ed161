"""The seeds' cluster topologies as named configurations: which hosts exist
and which components each runs. Plain data, so that any model of the
cluster (the HA control plane of ``model.cluster.ha``, the end-to-end
model) is built from the same placement rather than from its own idea of it.

What the seeds say, and what each configuration here takes from them:

* a master runs the control plane — "a master node runs the following
  control plane components: api server, scheduler, controller manager, data
  store" — and also "container runtime, node agent, proxy": every master
  here runs a kubelet and a kube-proxy as well;
* the seeds list the installations "single-master and multi-worker",
  "single master with single-node etcd", "multi-master and multi-worker",
  "multi-master with multi-node etcd", and say etcd is "Stacked: on master
  node" or "External: on dedicated host"; "kubeadm, by default, provision
  stacked etcd master nodes, where the data store runs alongside and shares
  resources with other control plane components on the same master node",
  and "the bootstrapping process can be configured for an external etcd
  topology, where the data store is provisioned on a dedicated separate
  host"; "for production, multi-master HA is a must have (3 to 5 masters)".

The two HA layouts follow kubernetes.io "Options for Highly Available
Topology" (docs/setup/production-environment/tools/kubeadm/ha-topology):

* **stacked etcd** — "each control plane node runs an instance of the
  kube-apiserver, kube-scheduler, and kube-controller-manager"; "each
  control plane node creates a local etcd member and this etcd member
  communicates only with the kube-apiserver of this node"; "if one node goes
  down, both an etcd member and a control plane instance are lost"; "run a
  minimum of three stacked control plane nodes";
* **external etcd** — the same control plane nodes, but "etcd members run on
  separate hosts, and each etcd host communicates with the kube-apiserver of
  each control plane node"; "losing a control plane instance or an etcd
  member has less impact"; "a minimum of three hosts for control plane nodes
  and three hosts for etcd nodes".

Who an apiserver talks to is data too (``Topology.etcd_peers``): in the
stacked layout its local member only, in the external one every member.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

APISERVER = "kube-apiserver"
SCHEDULER = "kube-scheduler"
CONTROLLER_MANAGER = "kube-controller-manager"
ETCD = "etcd"
KUBELET = "kubelet"
KUBE_PROXY = "kube-proxy"
CONTAINER_RUNTIME = "container-runtime"

#: what every node runs, master or worker (the seeds' worker node components;
#: "in addition, the master node runs: container runtime, node agent, proxy")
NODE_AGENTS = (CONTAINER_RUNTIME, KUBELET, KUBE_PROXY)
#: the control plane of a master, etcd aside
CONTROL_PLANE = (APISERVER, SCHEDULER, CONTROLLER_MANAGER)
#: the components that run as elected replicas on Leases (--leader-elect)
ELECTED = (SCHEDULER, CONTROLLER_MANAGER)

MASTER, WORKER, ETCD_HOST = "master", "worker", "etcd"


@attrs.frozen(slots=True)
class Host:
    """One machine: its name, its kind (master, worker, dedicated etcd host)
    and the components it runs."""

    name: str
    kind: str
    components: tuple[str, ...]

    def runs(self, component: str) -> bool:
        return component in self.components


@attrs.frozen(slots=True)
class Topology:
    """A named configuration: its hosts, in a fixed order (models index
    hosts by position), and the seed sentence it stands for."""

    name: str
    hosts: tuple[Host, ...]
    source: str

    def indices(self, component: str) -> tuple[int, ...]:
        """The positions of the hosts that run ``component``."""
        return tuple(i for i, h in enumerate(self.hosts) if h.runs(component))

    @property
    def masters(self) -> tuple[int, ...]:
        return tuple(i for i, h in enumerate(self.hosts) if h.kind == MASTER)

    @property
    def etcd_members(self) -> tuple[int, ...]:
        """The hosts of the etcd members, one member per host."""
        return self.indices(ETCD)

    @property
    def quorum(self) -> int:
        """Members needed for the store to serve: a majority (Raft; etcd's
        FAQ: a cluster of n members tolerates (n-1)/2 failures)."""
        return len(self.etcd_members) // 2 + 1

    def etcd_peers(self, apiserver_host: int) -> tuple[int, ...]:
        """The etcd members an apiserver talks to: its local one in the
        stacked layout ('communicates only with the kube-apiserver of this
        node'), every member when etcd is external or single."""
        local = self.hosts[apiserver_host].runs(ETCD)
        return (apiserver_host,) if local and len(self.etcd_members) > 1 \
            else self.etcd_members

    def host_names(self) -> tuple[str, ...]:
        return tuple(h.name for h in self.hosts)


def _master(i: int, with_etcd: bool) -> Host:
    extra = (ETCD,) if with_etcd else ()
    return Host(f"master-{i}", MASTER, CONTROL_PLANE + extra + NODE_AGENTS)


def _workers(n: int) -> tuple[Host, ...]:
    return tuple(Host(f"worker-{i}", WORKER, NODE_AGENTS) for i in range(n))


def single_master(workers: int = 1) -> Topology:
    """One master running the whole control plane and the only etcd member
    (the seeds' 'single master with single-node etcd'), plus workers."""
    return Topology("single-master", (_master(0, True),) + _workers(workers),
                    "seeds: 'single-master and multi-worker installation'; 'single master with "
                    "single-node etcd, and multi-worker installation'")


def ha_stacked(masters: int = 3, workers: int = 1) -> Topology:
    """``masters`` control plane nodes, each with its local etcd member."""
    return Topology("ha-stacked",
                    tuple(_master(i, True) for i in range(masters)) + _workers(workers),
                    "seeds: 'multi-master and multi-worker installation'; etcd 'Stacked: on "
                    "master node'; kubernetes.io Options for Highly Available Topology, "
                    "stacked etcd topology")


def ha_external(masters: int = 3, etcd_hosts: int = 3, workers: int = 1) -> Topology:
    """``masters`` control plane nodes without etcd, and ``etcd_hosts``
    dedicated hosts each running one etcd member."""
    etcd = tuple(Host(f"etcd-{i}", ETCD_HOST, (ETCD,)) for i in range(etcd_hosts))
    return Topology("ha-external",
                    tuple(_master(i, False) for i in range(masters)) + etcd + _workers(workers),
                    "seeds: 'multi-master with multi-node etcd, and multi-worker installation'; "
                    "etcd 'External: on dedicated host'; kubernetes.io Options for Highly "
                    "Available Topology, external etcd topology")


#: the named configurations, by name, each with its defaults
BUILDERS: dict[str, Callable[..., Topology]] = {
    "single-master": single_master, "ha-stacked": ha_stacked, "ha-external": ha_external}


def named(name: str, **sizes) -> Topology:
    """The topology called ``name``; ValueError naming the known ones."""
    try:
        build = BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown topology {name!r} (known: {', '.join(BUILDERS)})") from None
    return build(**sizes)


__all__ = ["Host", "Topology", "named", "single_master", "ha_stacked", "ha_external",
           "BUILDERS", "APISERVER", "SCHEDULER", "CONTROLLER_MANAGER", "ETCD", "KUBELET",
           "KUBE_PROXY", "CONTAINER_RUNTIME", "ELECTED", "MASTER", "WORKER", "ETCD_HOST"]

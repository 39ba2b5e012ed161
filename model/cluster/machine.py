"""The whole cluster as one kernel ``Composition``: the single-master
topology running a Deployment behind a Service, with a node failure.

Parts, in the joint state's order (``Cluster.index`` maps names to
positions): ``store``, ``apiserver``, ``scheduler``, the four controllers,
then for every node ``kubelet-<node>``, ``runtime-<node>``,
``kube-proxy-<node>``, and last the ``nemesis``. Links — the only way
parts affect each other:

* ``apiserver->store.Commit`` — the one link with the store;
* ``<client>->apiserver.<pass>`` — the scheduler's ``Bind``, each
  controller's pass, each kubelet's and each kube-proxy's ``Sync``;
* ``apiserver->kubelet-<node>.LeaseExpires`` — a dead kubelet's Lease runs
  out (``model.cluster.apiserver``);
* ``kubelet-<node>->runtime-<node>.RunPodSandbox`` — the node-local CRI;
* ``nemesis->kubelet-<worker>.Kill`` — the fault: a worker dies.

So every link between Kubernetes components has the apiserver at one end,
except a kubelet's with its own runtime, and only the apiserver is linked
to the store: ``properties.cluster`` checks both on the composition itself.

Each part's own module says which abstraction it uses and why it is sound
for the properties checked; docs/cluster.md collects them.

The seeded bugs are chosen by ``mutant`` and wired into the part they
belong to (``Cluster.mutants`` names the property each violates).
"""

from __future__ import annotations

from kubemc.model.cluster import apiserver, controlplane, network, node, spec
from kubemc.model.cluster.store import PODS, Store, commit
from kubemc.model.kernel import SYSTEM, Composition, Link, Machine, Mutant, Step, UnknownMutant

MUTANTS = {
    "scheduler_ignores_control_plane_taint": Mutant(
        "the scheduler does not see the control-plane NoSchedule taint: Deployment pods "
        "land on the master", violates="e2e_pod_on_fitting_node"),
    "scheduler_ignores_unreachable_taint": Mutant(
        "the scheduler does not see the node.kubernetes.io/unreachable taint: a "
        "replacement pod is bound to the dead, NotReady worker",
        violates="e2e_pod_on_fitting_node"),
    "nodelifecycle_never_evicts": Mutant(
        "the taint manager never evicts the pods of a node with the unreachable NoExecute "
        "taint", violates="e2e_dead_node_pods_replaced"),
    "endpoints_ignore_pod_conditions": Mutant(
        "the EndpointSlice controller publishes every pod that has an address as ready, "
        "whatever its Ready condition and deletionTimestamp say: the dead node's pods stay "
        "in the Service", violates="e2e_no_routes_to_dead_node"),
    "proxy_masquerade_all": Mutant(
        "kube-proxy SNATs every packet sent to a ClusterIP (--masquerade-all): pods see "
        "the node's address instead of their client's",
        violates="e2e_service_reachable_without_nat"),
    "replicaset_counts_terminating": Mutant(
        "the ReplicaSet controller counts terminating pods as active: the dead node's "
        "evicted pods are never replaced", violates="e2e_replicas_ready"),
    "kubelet_never_ready": Mutant(
        "the kubelet reports its pods' status with Ready=False even when their containers "
        "run", violates="e2e_replicas_ready"),
    "kubelet_reads_store": Mutant(
        "the kubelets of the workers learn their pods by reading etcd directly instead of "
        "asking the apiserver", violates="e2e_store_linked_only_to_apiserver"),
    "scheduler_binds_through_store": Mutant(
        "the scheduler writes its bindings into etcd directly, bypassing the apiserver",
        violates="e2e_only_apiserver_changes_store"),
    "scheduler_ignores_resources": Mutant(
        "the scheduler skips NodeResourcesFit: a third pod is bound to a worker whose "
        "allocatable cpu holds two", violates="e2e_pod_on_fitting_node"),
    "nodelifecycle_keeps_pods_ready": Mutant(
        "the node lifecycle controller marks an unreachable node Unknown and taints it but "
        "leaves its pods Ready: the Service keeps sending traffic to the dead node until the "
        "300 s eviction", violates="e2e_unreachable_node_pods_not_ready"),
    "endpoints_ready_ignores_pod_ready": Mutant(
        "the EndpointSlice controller sets an endpoint's ready to 'not terminating', "
        "ignoring the pod's Ready condition", violates="e2e_slice_conditions_follow_pods"),
    "kubelet_runs_every_pod": Mutant(
        "the kubelet watches pods without the spec.nodeName field selector: it runs every "
        "bound pod, other nodes' too, and reports status only for its own",
        violates="e2e_pods_run_only_where_bound"),
    "replicaset_creates_one_extra": Mutant(
        "the ReplicaSet controller creates one pod more than are missing "
        "(replicas - active + 1)", violates="e2e_no_surplus_replicas"),
    "ipam_subnet_is_cluster_cidr": Mutant(
        "every node's CNI config gives host-local the whole cluster CIDR as its subnet "
        "instead of the node's podCIDR: a worker's first pod gets 10.244.0.2, an address of "
        "the master's podCIDR (and the first pod of every node the same one)",
        violates="e2e_pod_addresses_in_node_pod_cidr"),
}


class Cluster(Composition):
    """The single-master cluster (module text): ``workers`` workers, one
    Deployment of ``replicas`` pods behind a ClusterIP Service, at most
    ``failures`` workers dying."""

    mutants = MUTANTS

    def __init__(self, workers: int = 2, replicas: int = 2, failures: int = 1,
                 mutant: str | None = None):
        if mutant is not None and mutant not in MUTANTS:
            raise UnknownMutant(f"cluster has no mutant {mutant!r} "
                                f"(known: {', '.join(sorted(MUTANTS))})")
        if not (1 <= workers <= 3 and 1 <= replicas <= 3 and 0 <= failures < workers):
            raise ValueError("need 1-3 workers, 1-3 replicas, and fewer failures than "
                             "workers (a worker must survive)")
        per_worker = spec.WORKER_ALLOCATABLE.cpu // spec.POD_REQUEST.cpu
        if (workers - failures) * per_worker < replicas:
            raise ValueError(f"{replicas} replicas do not fit on the {workers - failures} "
                             f"worker(s) left after {failures} failure(s) ({per_worker} pods "
                             "each): the Deployment could never be whole again; add a worker "
                             "or lower the replicas")
        self.workers, self.replicas, self.failures = workers, replicas, failures
        self.nodes = workers + 1
        #: pods ever created: the replicas, and a replacement for each pod of a dead worker
        self.capacity = replicas * (failures + 1)
        parts, links = self._wiring(mutant)
        super().__init__(parts, links, mutant)
        self._cache: dict = {}
        names = [spec.node_name(n) for n in range(self.nodes)]
        self._kubelets = tuple(self.index[f"kubelet-{n}"] for n in names)
        self._runtimes = tuple(self.index[f"runtime-{n}"] for n in names)
        self._proxies = tuple(self.index[f"kube-proxy-{n}"] for n in names)
        self._names = tuple(n for n, _ in self.parts)
        self._wired = tuple((link, f"{link.caller}->{link.callee}.{link.name}",
                             self.index[link.caller], self.index[link.callee])
                            for link in self.links)

    # -- wiring ---------------------------------------------------------------------
    def _wiring(self, mutant):
        parts: list[tuple[str, Machine]] = [("store", Store(self.nodes)),
                                            ("apiserver", apiserver.APIServer(self.nodes))]
        links: list[Link] = [apiserver.COMMIT]
        ignore = {"scheduler_ignores_control_plane_taint": (spec.CONTROL_PLANE_TAINT.key,),
                  "scheduler_ignores_unreachable_taint":
                      (spec.UNREACHABLE_NO_SCHEDULE.key,)}.get(mutant, ())
        clients = [
            ("scheduler", "Bind",
             controlplane.scheduler_pass(ignore, mutant == "scheduler_ignores_resources"),
             controlplane.bind_params(self.nodes)),
            ("deployment-controller", "Sync", controlplane.deployment_pass(self.replicas),
             _once),
            ("replicaset-controller", "Sync",
             controlplane.replicaset_pass(self.capacity,
                                          mutant == "replicaset_counts_terminating",
                                          mutant == "replicaset_creates_one_extra"), _once),
            ("endpointslice-controller", "Sync",
             controlplane.endpointslice_pass(mutant == "endpoints_ignore_pod_conditions",
                                             mutant == "endpoints_ready_ignores_pod_ready"),
             _once),
        ]
        for name, action, decide, params in clients:
            parts.append((name, controlplane.ControlPlaneClient()))
            links.append(apiserver.request(action, name, decide, params))
        parts.append(("nodelifecycle-controller",
                      controlplane.ControlPlaneClient()))
        links.append(apiserver.request("Monitor", "nodelifecycle-controller",
                                       controlplane.monitor_pass(
                                           mutant == "nodelifecycle_keeps_pods_ready"),
                                       controlplane.node_params(self.nodes)))
        links.append(apiserver.request(
            "Evict", "nodelifecycle-controller",
            controlplane.evict_pass(mutant == "nodelifecycle_never_evicts"),
            controlplane.node_params(self.nodes)))
        for n in range(self.nodes):
            kubelet, proxy = node.Kubelet(n), node.KubeProxy(n)
            runtime = node.Runtime(n, mutant == "ipam_subnet_is_cluster_cidr")
            parts += [(kubelet.label, kubelet), (runtime.label, runtime), (proxy.label, proxy)]
            if mutant == "kubelet_reads_store" and n != spec.MASTER:
                links.append(_kubelet_reads_store(kubelet.label, n))
            links.append(apiserver.request(
                "Sync", kubelet.label,
                node.kubelet_sync(n, mutant == "kubelet_never_ready",
                                  mutant == "kubelet_runs_every_pod"),
                _once))
            links.append(Link("RunPodSandbox", kubelet.label, runtime.label,
                              node.run_params(kubelet.label), node.run_pod_sandbox(runtime)))
            links.append(apiserver.request("Sync", proxy.label, node.proxy_sync, _once))
            links.append(apiserver.lease_expiry(n, kubelet.label, node.alive))
        parts.append(("nemesis", node.Nemesis(self.failures)))
        for n in range(1, self.nodes):
            links.append(node.kill_link(f"kubelet-{spec.node_name(n)}"))
        if mutant == "scheduler_binds_through_store":
            links.append(_scheduler_binds_through_store(self.nodes))
        return parts, links

    def config(self):
        return {"workers": self.workers, "replicas": self.replicas, "failures": self.failures}

    def successors(self, state):
        """``Composition.successors`` fused for this composition — no part
        takes a step of its own, there is no channel and no crash budget,
        so every step is a link's: the same steps in the same order (a test
        compares the two on every reachable state of the one-replica
        model), without looking each link up by name again (profiling put
        that lookup first)."""
        named = dict(zip(self._names, state, strict=True))
        for link, label, ci, ki in self._wired:
            fire = link.fire
            for params in link.params(named):
                out = fire(state[ci], state[ki], params)
                if out is not None:
                    nxt = list(state)
                    nxt[ci], nxt[ki] = out
                    yield Step(label, params), tuple(nxt)

    # -- what properties read (the layout, not a judgement) ----------------------------
    def objects(self, state) -> tuple:
        """The store's map (``model.cluster.store``)."""
        return state[self.index["store"]]

    def part_state(self, state, name: str):
        return state[self.index[name]]

    def alive(self, state) -> tuple:
        return tuple(state[i][node.ALIVE] for i in self._kubelets)

    def synced_slices(self, state) -> tuple:
        return tuple(state[i] for i in self._proxies)

    def sandboxes(self, state) -> tuple:
        return tuple(state[i][0] for i in self._runtimes)

    def dataplane(self, state):
        """The wire this state projects to (``model.cluster.network``), memoised:
        many states share one wire."""
        key = (self.alive(state), self.synced_slices(state), self.sandboxes(state))
        dp = self._cache.get(key)
        if dp is None:
            if len(self._cache) > 50_000:
                self._cache.clear()
            dp = network.dataplane(self.nodes, *key,
                                   masquerade_all=self.mutant == "proxy_masquerade_all")
            self._cache[key] = dp
        return dp


def _once(joint):
    return ((),)


def _kubelet_reads_store(kubelet: str, n: int) -> Link:
    """The seeded bypass: a kubelet learns its pods from etcd itself."""

    def fire(kubelet_state, objects, params):
        is_alive, known = kubelet_state
        have = {s for s, _, _ in known}
        learned = tuple((slot, 0, False) for slot, p in enumerate(objects[PODS])
                        if p[0] == n and not p[3] and slot not in have)
        if not is_alive or not learned:
            return None
        return (is_alive, tuple(sorted(known + learned))), objects

    return Link("Watch", kubelet, "store", _once, fire, SYSTEM)


def _scheduler_binds_through_store(nodes: int) -> Link:
    """The seeded bypass: the scheduler writes a binding into etcd itself."""
    decide = controlplane.scheduler_pass()

    def params(joint):
        for slot, p in enumerate(joint["store"][PODS]):
            if p[0] == -1 and not p[3]:
                for n in range(nodes):
                    yield (slot, n)

    def fire(mine, objects, p):
        out = decide(mine, objects, p)
        if out is None:
            return None
        return mine, commit(objects, out[1])

    return Link("Bind", "scheduler", "store", params, fire, SYSTEM)


__all__ = ["Cluster", "MUTANTS"]

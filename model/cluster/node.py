"""The agents of every node — kubelet, container runtime with its CNI
plugin, kube-proxy — and the nemesis that kills a worker.

* **kubelet** ``(alive, pods)``, ``pods`` = sorted ``(slot, ip, reported)``
  of the pods bound to its node that it has learned. ``Sync`` (a link with
  the apiserver) is its sync loop: it learns the pods bound to its node and
  reports the status of those whose sandbox runs — their address and
  Ready=True (a container that runs passes its readiness probe: probes,
  restarts and the container lifecycle are the ``kubelet`` component's
  models). ``RunPodSandbox`` (a link with its own runtime: the CRI is
  node-local, seeds/000: the kubelet "interacts with the container runtime
  on the node") starts a learned pod. A dead kubelet takes no step.
  Terminating pods on a live node do not occur in this scenario (only a
  dead node's pods are deleted), so stopping a pod is not modelled here.
* **runtime** ``(sandboxes, ipam, cri)``: the pods it runs, ``(slot, ip)``,
  its CNI plugin's host-local store, and the CRI runtime service's own
  state. ``RunPodSandbox`` is the kubelet's pod worker starting a pod, as
  one step: the CRI calls ``RunPodSandbox``, ``CreateContainer`` and
  ``StartContainer`` answered by ``model.cri.runtime.call`` — the runtime
  service's transition function, the oracle the ``cri`` component and
  ``kubemc conform cri`` check — and the sandbox's network set up as the
  runtime does inside RunPodSandbox, by the CNI ADD of the bridge plugin
  with host-local IPAM: the address is ``model.cni.hostlocal.allocate``'s,
  from the node's podCIDR (host-local's specification, checked with the
  bridge plugin in the ``cni`` component). One step rather than four: the
  kubelet's own ordering of these calls (sandbox first, init containers,
  restarts, lost answers) is the ``kubelet`` component's model.
  The bridge and the routes between nodes are set up when a node joins and
  do not change (``model.cluster.network``).
* **kube-proxy** — its state is the EndpointSlice it last programmed its
  rules from; ``Sync`` (a link with the apiserver) catches up with the
  slice the apiserver holds. Its rules are ``model.proxy.rules``'
  compilation of it (the ``proxy`` component checks them). A dead node's
  kube-proxy may still sync: nothing it programs is ever used, since no
  packet enters or reaches a dead node (``model.cluster.network``).
* **nemesis** — not a Kubernetes component: the fault injector, with a
  budget of node failures. ``Kill`` (a link with a worker's kubelet, tagged
  fault) is the worker dying: the kubelet stops, and with it the node's
  pods (they leave the dataplane) and its Lease renewals.
"""

from __future__ import annotations

from kubemc.model.cluster import spec
from kubemc.model.cluster.store import PODS, SLICE, STATUS, UNBOUND
from kubemc.model.cni import hostlocal
from kubemc.model.cri import runtime as cri
from kubemc.model.kernel import FAULT, Link, Machine
from kubemc.model.network.addr import show

ALIVE, KNOWN = range(2)


class _Part(Machine):
    """A part whose every step is a link."""

    tags = {}

    def steps(self, state):
        return ()

    def apply(self, state, step):
        return None


class Kubelet(_Part):
    def __init__(self, node: int):
        super().__init__(None)
        self.node = node
        self.label = f"kubelet-{spec.node_name(node)}"

    def init_states(self):
        yield (True, ())

    def view(self, state):
        alive, pods = state
        return {"alive": alive,
                "pods": [[spec.pod_name(s), show(ip) if ip else "-",
                          "reported" if reported else "not reported"]
                         for s, ip, reported in pods]}


def alive(kubelet_state) -> bool:
    return kubelet_state[ALIVE]


def kubelet_sync(node: int, never_ready: bool = False, runs_every_pod: bool = False):
    """The kubelet's sync loop against the apiserver (module text).
    ``runs_every_pod`` is a seeded bug: the kubelet watches pods without the
    ``spec.nodeName`` field selector, learns (and so runs) every bound pod,
    and reports status only for its own."""

    def decide(state, view, params):
        is_alive, known = state
        if not is_alive:
            return None
        pods_in_view = view[PODS]
        have = {s for s, _, _ in known}
        learned = [(slot, 0, False) for slot, (n, _, _, terminating) in enumerate(pods_in_view)
                   if (n == node or (runs_every_pod and n != UNBOUND))
                   and not terminating and slot not in have]
        writes, pods = [], []
        for slot, ip, reported in known:
            if runs_every_pod and pods_in_view[slot][0] != node:
                pods.append((slot, ip, reported))  # not its own: no status report
                continue
            if ip and not reported:
                writes.append((STATUS, slot, ip, not never_ready))
                reported = True
            pods.append((slot, ip, reported))
        return (is_alive, tuple(sorted(pods + learned))), tuple(writes)

    return decide


class Runtime(_Part):
    """``cluster_wide_range`` is a seeded bug: the node's CNI config gives
    host-local the whole cluster CIDR as its subnet (one config copied to
    every node, like the seeds' bridge example with its one ``"subnet"``)
    instead of the node's podCIDR."""

    def __init__(self, node: int, cluster_wide_range: bool = False):
        super().__init__(None)
        self.node = node
        self.label = f"runtime-{spec.node_name(node)}"
        block = spec.CLUSTER_CIDR if cluster_wide_range else spec.pod_cidr(node)
        self.range = hostlocal.Range(block, block[0] + 2, block[0] + 254, block[0] + 1)

    def init_states(self):
        yield ((), hostlocal.EMPTY, cri.INITIAL)

    def view(self, state):
        sandboxes, _, service = state
        return {"sandboxes": [[spec.pod_name(s), show(ip)] for s, ip in sandboxes],
                "containers": [[spec.pod_name(int(c[2][4:])) if c[2].startswith("app-")
                                else c[2], c[4]] for c in service[1]]}


def start_pod(service, slot: int):
    """The CRI calls that start pod ``slot``: its sandbox, then its one
    container, created and started. The new CRI state, or None when the
    runtime refuses one of them (not reached: each pod starts once)."""
    service, answer = cri.call(service, "RunPodSandbox", {
        "config": {"metadata": {"name": spec.pod_name(slot), "uid": spec.pod_name(slot),
                                "namespace": "default", "attempt": 0}}})
    if not cri.ok(answer):
        return None
    sandbox_id = answer["pod_sandbox_id"]
    service, answer = cri.call(service, "CreateContainer", {
        "pod_sandbox_id": sandbox_id,
        "config": {"metadata": {"name": f"app-{slot}", "attempt": 0}}})
    if not cri.ok(answer):
        return None
    service, answer = cri.call(service, "StartContainer",
                               {"container_id": answer["container_id"]})
    return service if cri.ok(answer) else None


def running(runtime_state, slot: int) -> bool:
    """Pod ``slot``'s container runs in this runtime, in a ready sandbox."""
    service = runtime_state[2]
    ready = {sb[0] for sb in service[0] if sb[1] == spec.pod_name(slot) and sb[3] == cri.READY}
    return any(c[1] in ready and c[4] == cri.RUNNING for c in service[1])


def run_params(kubelet: str):
    return lambda joint: ((s,) for s, ip, _ in joint[kubelet][KNOWN] if not ip)


def run_pod_sandbox(runtime: Runtime):
    """``RunPodSandbox(slot)``: the kubelet asks its runtime to start a pod;
    the runtime's CNI ADD gives it an address from the node's podCIDR."""

    def fire(kubelet_state, runtime_state, params):
        (slot,) = params
        is_alive, known = kubelet_state
        entry = next((k for k in known if k[0] == slot), None)
        if not is_alive or entry is None or entry[1]:
            return None
        sandboxes, ipam, service = runtime_state
        service = start_pod(service, slot)
        ipam, ip = hostlocal.allocate(ipam, runtime.range, slot, "eth0")
        if service is None or isinstance(ip, str):
            return None  # refused, or the range is full: not reached at these bounds
        known = tuple(sorted(k for k in known if k[0] != slot) + [(slot, ip, False)])
        return (is_alive, known), (tuple(sorted(sandboxes + ((slot, ip),))), ipam, service)

    return fire


class KubeProxy(_Part):
    def __init__(self, node: int):
        super().__init__(None)
        self.node = node
        self.label = f"kube-proxy-{spec.node_name(node)}"

    def init_states(self):
        yield ()

    def view(self, state):
        return {"programmed": [spec.pod_name(e[0]) + (" ready" if e[3] else " not-ready")
                               for e in state]}


def proxy_sync(state, view, params):
    if view[SLICE] == state:
        return None
    return view[SLICE], ()


class Nemesis(_Part):
    def __init__(self, failures: int):
        super().__init__(None)
        self.failures = failures

    def init_states(self):
        yield self.failures

    def view(self, state):
        return {"failures_left": state}


def kill_link(kubelet: str) -> Link:
    def fire(budget, kubelet_state, params):
        if budget <= 0 or params or not kubelet_state[ALIVE]:
            return None
        return budget - 1, (False, kubelet_state[KNOWN])

    return Link("Kill", "nemesis", kubelet, lambda joint: ((),), fire, FAULT)

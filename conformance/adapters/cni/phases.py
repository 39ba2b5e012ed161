"""The phases of a ``conform cni`` run: what each step of the model's plan
does to the real plugin, and what it records for the checks.

:class:`Run` holds one run's mutable state — the namespaces
(:class:`conformance.adapters.cni.netns.Topology`), one
:class:`conformance.adapters.cni.execute.Executor` per node, the model state
along the plan (:class:`conformance.traffic.cni.ModelRun`), every pod's
container and last ADD result — and has one method per phase of
:func:`conformance.traffic.cni.plan`. Every plugin execution, link snapshot,
store snapshot and probe goes into the history recorder in the shapes
:mod:`conformance.validate.cni` documents; nothing here judges them.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from kubemc.conformance.history import Recorder
from kubemc.conformance.adapters.cni import conf as cni_conf
from kubemc.conformance.adapters.cni.execute import Attempt, Executor
from kubemc.conformance.adapters.cni.netns import Topology, ip, links, list_netns, ns_path
from kubemc.conformance.adapters.cni.probe import PORT, Observation, Probe, Prober
from kubemc.conformance.traffic.cni import ModelRun, model_for
from kubemc.conformance.validate.cni_ipam import addresses
from kubemc.model.cni.machine import node_ip
from kubemc.model.kernel import Step
from kubemc.model.network import addr
from kubemc.model.network.dataplane import Pod

if TYPE_CHECKING:      # the options live with run_suite, which imports this module
    from kubemc.conformance.adapters.cni.suite import SuiteOptions

IFNAME = "eth0"


@attrs.define
class PodRun:
    pod: int
    node: int
    container: str = ""
    netns_name: str = ""
    result: dict | None = None
    added: bool = False


class Run:
    """One run's mutable state; the phases are its methods."""

    def __init__(self, opts: SuiteOptions, conflist: dict, dirs: list[str], run_id: str,
                 tmp: str, recorder: Recorder, say):
        self.opts, self.conflist, self.dirs, self.run_id = opts, conflist, dirs, run_id
        self.tmp, self.rec, self.say = tmp, recorder, say
        self.topo = Topology(run_id)
        self.prober: Prober | None = None
        self.model = ModelRun(model_for(opts.nodes, opts.pods, opts.deletions, opts.crashes))
        self.execs: list[Executor] = []
        self.pods = {p: PodRun(p, p % opts.nodes) for p in range(opts.pods)}
        self.invocations = 0
        self.plugin_seconds = 0.0
        self.probes = 0
        self.dataplane = None
        self._lock = threading.Lock()
        self._probe_seq = 0

    # -- recording -------------------------------------------------------------------
    def _attempt(self, process: int, command: str, container: str, node: int, pod, netns: str,
                 purpose: str, fn, observe=None) -> Attempt:
        tok = self.rec.invoke(process, command, container or None,
                              {"node": node, "pod": pod, "netns": netns, "ifname": IFNAME,
                               "purpose": purpose})
        a: Attempt = fn()
        with self._lock:
            self.invocations += len(a.calls)
            self.plugin_seconds += sum(c.seconds for c in a.calls)
        out = {"calls": [{**c.to_json(), "stdin": c.stdin} for c in a.calls],
               "result": a.result, "error": a.error_text()}
        if observe is not None:
            out.update(observe(a))
        self.rec.complete(tok, "ok" if a.ok else "fail", out)
        return a

    def _store(self, node: int, label: str) -> None:
        if not cni_conf.uses_host_local(self.conflist):
            return
        d = Path(self.tmp) / f"n{node}" / self.conflist["name"]
        held = {}
        if d.is_dir():
            for f in d.iterdir():
                try:
                    addr.ip(f.name)
                except ValueError:
                    continue
                held[f.name] = f.read_text(errors="replace").splitlines()[0].strip() \
                    if f.stat().st_size else ""
        model = sorted(addr.show(a) for a, _, _ in self.model.state[3][node][1])
        tok = self.rec.invoke(100 + node, "store", None, {"node": node, "label": label,
                                                          "model": model})
        self.rec.complete(tok, "ok", {"reservations": held})

    def _links(self, pr: PodRun) -> None:
        node_ns = self.topo.node_name(pr.node)
        pod_links = links(pr.netns_name) if pr.netns_name in list_netns() else None
        veths = ip("-n", node_ns, "-o", "link", "show", "type", "veth").stdout
        node_links = [[line.split(":", 2)[1].strip().split("@")[0], "veth"]
                      for line in veths.splitlines() if line.count(":") >= 2]
        tok = self.rec.invoke(pr.pod, "links", pr.container,
                              {"node": pr.node, "pod": pr.pod, "netns": ns_path(pr.netns_name)})
        self.rec.complete(tok, "ok", {"pod_links": pod_links, "node_links": node_links})

    # -- phases ------------------------------------------------------------------------
    def cidrs(self) -> None:
        n_nodes = self.opts.nodes
        for n in range(n_nodes):
            self.model.step("AllocateCidr", n)
        dp = self.model.machine.dataplane(self.model.state)
        routes = [[(addr.show_cidr(r.dst), addr.show(node_ip(r.via))) for r in node.routes
                   if r.via != node.index] for node in dp.nodes]
        self.topo.build_nodes([addr.show(node_ip(n)) for n in range(n_nodes)], 24, routes)
        for n in range(n_nodes):
            conf = cni_conf.for_node(self.conflist, self.model.pod_cidr(n), str(Path(self.tmp) / f"n{n}"))
            self.execs.append(Executor(conf, self.dirs, ns_path(self.topo.node_name(n))))
        ex = self.execs[0]
        for t in dict.fromkeys(p["type"] for p in self.conflist["plugins"]):
            self._attempt(100, "VERSION", "", 0, None, "", "version", lambda t=t: ex.version(t))
        if cni_conf.declares_status_gc(self.conflist):
            for n, e in enumerate(self.execs):
                self._attempt(100 + n, "STATUS", "", n, None, "", "status", e.status)

    def _sandbox(self, pr: PodRun) -> None:
        self.model.step("RunPodSandbox", pr.pod)
        attempt = self.model.attempt(pr.pod)
        pr.container = f"kcni{self.run_id}-p{pr.pod}a{attempt}"
        pr.netns_name = self.topo.pod_name(f"p{pr.pod}a{attempt}")
        self.topo.add_pod(f"p{pr.pod}a{attempt}")

    def _add(self, pr: PodRun) -> None:
        ex = self.execs[pr.node]
        path = ns_path(pr.netns_name)
        a = self._attempt(pr.pod, "ADD", pr.container, pr.node, pr.pod, path, "add",
                          lambda: ex.add(pr.container, path, IFNAME, self._args(pr)))
        pr.added, pr.result = a.ok, a.result

    def _check(self, pr: PodRun) -> None:
        if not pr.added:
            return
        ex = self.execs[pr.node]
        path = ns_path(pr.netns_name)
        self._attempt(pr.pod, "CHECK", pr.container, pr.node, pr.pod, path, "check",
                      lambda: ex.check(pr.container, path, IFNAME, pr.result, self._args(pr))
                      or Attempt("CHECK", pr.container, (), None),
                      observe=lambda a: {} if a.ok else {"host_macs": self._host_macs(pr)})

    def _host_macs(self, pr: PodRun) -> dict:
        """The MAC each node-side interface of ``pr``'s ADD result (those
        without ``sandbox``: the bridge, the host veth) has now, read in the
        node's namespace right after a failed CHECK; ``None`` for one that is
        gone. What tells the divergence ``bridge-mac-changed`` from a CHECK
        that failed for another reason (:mod:`conformance.validate.cni_protocol`)."""
        import json
        import subprocess
        ifs = pr.result.get("interfaces") if isinstance(pr.result, dict) else None
        names = [i["name"] for i in (ifs if isinstance(ifs, list) else [])
                 if isinstance(i, dict) and isinstance(i.get("name"), str) and not i.get("sandbox")]
        macs = {}
        for name in names:
            try:
                out = ip("-n", self.topo.node_name(pr.node), "-j", "link", "show", "dev", name,
                         check=False)
                doc = json.loads(out.stdout) if out.returncode == 0 and out.stdout.strip() else []
            except (json.JSONDecodeError, subprocess.TimeoutExpired):
                doc = []
            first = doc[0] if isinstance(doc, list) and doc and isinstance(doc[0], dict) else {}
            macs[name] = first.get("address")
        return macs

    def _args(self, pr: PodRun) -> str:
        # CONVENTIONS.md: the Kubernetes runtimes' CNI_ARGS
        return f"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-{pr.pod}"

    def _delete(self, pr: PodRun, purpose: str, observe: bool = True) -> None:
        ex = self.execs[pr.node]
        path = ns_path(pr.netns_name)
        self._attempt(pr.pod, "DEL", pr.container, pr.node, pr.pod, path, purpose,
                      lambda: ex.delete(pr.container, path, IFNAME, pr.result, self._args(pr)))
        if observe:
            self._links(pr)
        self._attempt(pr.pod, "DEL", pr.container, pr.node, pr.pod, path, "repeat",
                      lambda: ex.delete(pr.container, path, IFNAME, pr.result, self._args(pr)))

    def _model_adds(self, prs) -> None:
        """The model's CniAdd for pods the plugin added. Concurrent ADDs were
        serialized by the plugin (host-local takes a lock); the model takes
        them in an order that gives each pod the address the plugin gave it,
        when there is one — greedily: the pod whose address is the model's
        next allocation goes next — so that later deletions free the same
        address in both. When none fits, pod order, and ipam-matches-model
        shows the difference."""
        left = list(prs)
        machine = self.model.machine
        while left:
            pick = left[0]
            for pr in left:
                nxt = machine.apply(self.model.state, Step("CniAdd", (pr.pod,)))
                got = addresses(pr.result)
                if nxt is not None and got and addr.show(nxt[2][pr.pod][2]) == got[0]:
                    pick = pr
                    break
            self.model.step("CniAdd", pick.pod)
            left.remove(pick)

    def add(self, pods, concurrent: bool) -> None:
        prs = [self.pods[p] for p in pods]
        for pr in prs:
            self._sandbox(pr)
        if concurrent:
            with ThreadPoolExecutor(len(prs)) as pool:
                list(pool.map(self._add, prs))
        else:
            for pr in prs:
                self._add(pr)
        self._model_adds([pr for pr in prs if pr.added])
        for pr in prs:
            self._check(pr)
            if not pr.added:   # "A delete must still be executed even if the add fails"
                self._delete(pr, "delete", observe=False)
                self.model.step("StopPodSandbox", pr.pod)
                self.topo.remove(pr.netns_name)
        for n in sorted({pr.node for pr in prs}):
            self._store(n, f"after ADD of pods {', '.join(str(p) for p in pods)}")

    def del_unknown(self) -> None:
        for n, ex in enumerate(self.execs):
            key = f"ghost{n}"
            path = self.topo.add_pod(key)
            container = f"kcni{self.run_id}-{key}"
            self._attempt(100 + n, "DEL", container, n, None, path, "unknown",
                          lambda: ex.delete(container, path, IFNAME, None))
            self.topo.remove(self.topo.pod_name(key))
            self._store(n, "after DEL of a container never added")

    def delete(self, p: int) -> None:
        pr = self.pods[p]
        if pr.added:
            self._delete(pr, "delete")
            self.model.step("StopPodSandbox", p)
            self.topo.remove(pr.netns_name)
            pr.added, pr.result = False, None
        self.add((p,), False)

    def crash(self, p: int) -> None:
        pr = self.pods[p]
        if pr.added:
            self.model.step("SandboxCrash", p)
            self.topo.remove(pr.netns_name)          # the sandbox vanishes under the plugin
            # not observed after: the kernel destroys the gone namespace's veth
            # pair asynchronously (netns cleanup runs from a work queue, seconds
            # on a loaded machine), and it is the kernel's to remove, not the plugin's
            self._delete(pr, "after-crash", observe=False)
            self.model.step("CleanupSandbox", p)
            pr.added, pr.result = False, None
        self.add((p,), False)

    def probe(self) -> None:
        live = [pr for pr in self.pods.values() if pr.added]
        prober = self.prober = Prober(timeout=self.opts.probe_timeout)
        for pr in live:
            prober.listen(f"pod-{pr.pod}", ns_path(pr.netns_name))
        prober.start()
        probes = []
        first = {}
        for pr in live:
            ips = addresses(pr.result)
            if ips:
                first[pr.pod] = ips[0]
        # a live pod whose ADD gave it no address is still a sender and a receiver:
        # Kubernetes gives every pod an address, so nothing sent to it arrives
        # (recorded as lost, not skipped) and what it sends is judged by where it lands
        for proto in ("TCP", "UDP"):
            for src in live:
                for dst in live:
                    if src is dst:
                        continue
                    probes.append(self._probe(proto, f"pod-{src.pod}", ns_path(src.netns_name),
                                              first.get(src.pod), False, src.node, dst,
                                              first.get(dst.pod)))
            for n in range(self.opts.nodes):
                for dst in live:
                    probes.append(self._probe(proto, f"node-{n}", ns_path(self.topo.node_name(n)),
                                              addr.show(node_ip(n)), True, n, dst, first.get(dst.pod)))
        self.say(f"probing: {len(probes)} packets")

        def one(args):
            i, pb = args
            tok = self.rec.invoke(10_000 + i, "probe", pb.token, {
                "proto": pb.proto, "sender": pb.sender, "src": pb.src_ip, "src_node": pb.src_node,
                "receiver": pb.receiver, "dst": pb.dst, "port": PORT})
            if pb.dst is None:      # nowhere to send it: lost
                obs = Observation(pb, None, None, f"{pb.receiver} has no address (its ADD result "
                                  "lists none): nothing can reach it")
            else:
                obs = prober.send(pb)
            self.rec.complete(tok, "ok", {"delivered_to": obs.delivered_to,
                                          "seen_src": obs.seen_src, "error": obs.error})

        pool = ThreadPoolExecutor(16)
        try:
            list(pool.map(one, enumerate(probes)))
        finally:    # on Ctrl-C / SIGTERM: probes not yet started are dropped, not waited for
            pool.shutdown(wait=True, cancel_futures=True)
        self.probes = len(probes)
        self.dataplane = self._model_dataplane(first)
        prober.close()
        self.prober = None

    def _probe(self, proto, sender, netns, src_ip, bind, node, dst: PodRun, dst_ip) -> Probe:
        with self._lock:
            self._probe_seq += 1
            token = f"kcni{self.run_id}-{self._probe_seq}"
        return Probe(token, proto, sender, netns, src_ip, bind, node, f"pod-{dst.pod}", dst_ip)

    def _model_dataplane(self, first: dict):
        """The model's dataplane for this state, with the addresses the plugin
        really returned and the bridge's ipMasq as configured."""
        dp = self.model.machine.dataplane(self.model.state)
        masq = any(p.get("ipMasq") for p in self.conflist["plugins"])
        nodes = tuple(attrs.evolve(n, bridge=attrs.evolve(n.bridge, ip_masq=masq))
                      if n.bridge is not None else n for n in dp.nodes)
        pods = tuple(Pod(f"pod-{p}", self.pods[p].node, addr.ip(a)) for p, a in sorted(first.items()))
        return type(dp)(dp.cluster_cidr, nodes, pods, dp.services)

    def teardown(self, pods) -> None:
        for p in pods:
            pr = self.pods[p]
            if pr.added:
                self._delete(pr, "teardown")
                self.model.step("StopPodSandbox", p)
                self.topo.remove(pr.netns_name)
                pr.added, pr.result = False, None
        for n in range(self.opts.nodes):
            self._store(n, "after teardown")
        if cni_conf.declares_status_gc(self.conflist) and self.conflist.get("disableGC") is not True:
            for n, e in enumerate(self.execs):
                self._attempt(100 + n, "GC", "", n, None, "", "gc", lambda e=e: e.gc([]))

    def close(self) -> list[str]:
        problems = []
        if self.prober is not None:
            self.prober.close()
        problems += self.topo.close()
        return problems

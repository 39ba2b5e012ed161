"""``kubemc conform cni`` as a library call: build nodes, run the model's
plan against the plugin, probe, tear down, check, report.

:func:`run_suite` is what the CLI, the benchmark and the tests call::

    result = run_suite(SuiteOptions(nodes=3, pods=12))
    result.passed, result.checks, result.out_dir

Everything the run creates — namespaces (with their links, bridges, routes
and iptables rules), host-local's store directory, plugin processes,
sockets — is removed in a ``finally``, also on Ctrl-C and on SIGTERM /
SIGHUP (:func:`conformance.target.signals.signals_raise` turns those into an
exception there); a plugin still running is killed through
:class:`conformance.target.proctree.ProcessTree`. What a SIGKILLed run leaves
the next run removes (:func:`conformance.target.cni_netns.reap_leftovers`).
"""

from __future__ import annotations

import shlex
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs

from checker.errors import BadInput
from conformance.history import Recorder
from conformance.report.outputs import check_out_dir, create_exclusive, make_out_dir
from conformance.target import cni_conf
from conformance.target.cni_exec import Attempt, Executor
from conformance.target.cni_netns import (TMP_PREFIX, Topology, hold_run_lock, ip, links,
                                          list_netns, new_run_id, ns_path, reap_leftovers,
                                          require_environment)
from conformance.target.cni_probe import PORT, Probe, Prober
from conformance.target.proctree import ProcessTree
from conformance.target.signals import signals_raise
from conformance.traffic.cni import MAX_NODES, MAX_PODS, ModelRun, model_for, plan
from conformance.validate.cni import CniHistory, run_checks
from model.cni.machine import node_ip
from model.network import addr

IFNAME = "eth0"


@attrs.define
class SuiteOptions:
    plugin: str | None = None
    conf: str | None = None
    nodes: int = 3
    pods: int = 12
    deletions: int = 2
    crashes: int = 1
    time_limit: float = 300.0
    probe_timeout: float = 0.5
    out: str | None = None
    progress: bool = True
    command: str = ""
    run_id: str | None = None

    def validate(self) -> None:
        if not 1 <= self.nodes <= MAX_NODES:
            raise BadInput(f"--nodes must be between 1 and {MAX_NODES}, not {self.nodes}")
        if not 1 <= self.pods <= MAX_PODS:
            raise BadInput(f"--pods must be between 1 and {MAX_PODS} (the CNI model's bound), "
                           f"not {self.pods}")
        if not self.time_limit > 0:
            raise BadInput(f"--time-limit must be a positive number of seconds, not {self.time_limit}")
        if self.out is not None:
            check_out_dir(self.out)


@attrs.define
class RunResult:
    run_id: str
    plugin: str
    cni_version: str
    nodes: int
    pods: int
    duration: float = 0.0
    invocations: int = 0             # plugin executions (each plugin of a chain counts)
    plugin_seconds: float = 0.0
    probes: int = 0
    complete: bool = False
    checks: list = attrs.field(factory=list)
    check_seconds: float = 0.0
    out_dir: str | None = None
    history_path: str | None = None
    violation_files: list = attrs.field(factory=list)
    problems: list = attrs.field(factory=list)
    seed: int = 0
    fault_count: int = 0

    @property
    def operations(self) -> int:
        return self.invocations

    @property
    def ops_per_second(self) -> float:
        return self.invocations / self.duration if self.duration else 0.0

    @property
    def violations(self) -> list:
        return [v for c in self.checks for v in c.violations]

    @property
    def failed_checks(self) -> list[str]:
        return [c.name for c in self.checks if not c.ok]

    @property
    def passed(self) -> bool:
        return self.complete and all(c.ok for c in self.checks)

    @property
    def undecided(self) -> bool:
        return not self.complete and all(c.ok for c in self.checks)

    def to_json(self) -> dict:
        return {"target": "cni", "passed": self.passed, "undecided": self.undecided,
                "run_id": self.run_id, "plugin": self.plugin, "cniVersion": self.cni_version,
                "nodes": self.nodes, "pods": self.pods, "complete": self.complete,
                "duration_seconds": round(self.duration, 3), "invocations": self.invocations,
                "invocations_per_second": round(self.ops_per_second, 1),
                "plugin_seconds": round(self.plugin_seconds, 3), "probes": self.probes,
                "check_seconds": round(self.check_seconds, 3), "failed_checks": self.failed_checks,
                "checks": [c.to_json() for c in self.checks], "out_dir": self.out_dir,
                "history": self.history_path, "violation_files": self.violation_files,
                "problems": self.problems}


@attrs.define
class PodRun:
    pod: int
    node: int
    container: str = ""
    netns_name: str = ""
    result: dict | None = None
    added: bool = False


class _Run:
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
                 purpose: str, fn) -> Attempt:
        tok = self.rec.invoke(process, command, container or None,
                              {"node": node, "pod": pod, "netns": netns, "ifname": IFNAME,
                               "purpose": purpose})
        a: Attempt = fn()
        with self._lock:
            self.invocations += len(a.calls)
            self.plugin_seconds += sum(c.seconds for c in a.calls)
        self.rec.complete(tok, "ok" if a.ok else "fail", {
            "calls": [{**c.to_json(), "stdin": c.stdin} for c in a.calls],
            "result": a.result, "error": a.error_text()})
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
        tok = self.rec.invoke(100 + node, "store", None, {"node": node, "label": label})
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
        if a.ok:
            self.model.step("CniAdd", pr.pod)

    def _check(self, pr: PodRun) -> None:
        if not pr.added:
            return
        ex = self.execs[pr.node]
        path = ns_path(pr.netns_name)
        self._attempt(pr.pod, "CHECK", pr.container, pr.node, pr.pod, path, "check",
                      lambda: ex.check(pr.container, path, IFNAME, pr.result, self._args(pr))
                      or Attempt("CHECK", pr.container, (), None))

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
            from conformance.validate.cni_ipam import addresses
            ips = addresses(pr.result)
            if ips:
                first[pr.pod] = ips[0]
        for proto in ("TCP", "UDP"):
            for src in live:
                for dst in live:
                    if src is dst or src.pod not in first or dst.pod not in first:
                        continue
                    probes.append(self._probe(proto, f"pod-{src.pod}", ns_path(src.netns_name),
                                              first[src.pod], False, src.node, dst, first[dst.pod]))
            for n in range(self.opts.nodes):
                for dst in live:
                    if dst.pod in first:
                        probes.append(self._probe(proto, f"node-{n}",
                                                  ns_path(self.topo.node_name(n)),
                                                  addr.show(node_ip(n)), True, n, dst, first[dst.pod]))
        self.say(f"probing: {len(probes)} packets")

        def one(args):
            i, pb = args
            tok = self.rec.invoke(10_000 + i, "probe", pb.token, {
                "proto": pb.proto, "sender": pb.sender, "src": pb.src_ip, "src_node": pb.src_node,
                "receiver": pb.receiver, "dst": pb.dst, "port": PORT})
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
        from model.network.dataplane import Pod
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


def run_suite(opts: SuiteOptions) -> RunResult:
    opts.validate()
    conflist = cni_conf.load(opts.conf) if opts.conf else cni_conf.default_conflist()
    extra = None
    if opts.plugin:
        conflist, extra = cni_conf.with_plugin(conflist, opts.plugin)
    dirs = cni_conf.search_path(extra)
    cni_conf.resolve(conflist, dirs, explicit=bool(opts.plugin))
    require_environment()
    run_id = opts.run_id or new_run_id()
    say = (lambda m: print(m, file=sys.stderr, flush=True)) if opts.progress else (lambda m: None)
    say(f"conform cni: run {run_id}, plugin {conflist['plugins'][0]['type']}, "
        f"{opts.nodes} nodes, {opts.pods} pods")
    meta = {"target": "cni", "run_id": run_id, "cniVersion": conflist["cniVersion"],
            "conflist": conflist, "plugin": conflist["plugins"][0]["type"],
            "host_local": cni_conf.uses_host_local(conflist), "ifname": IFNAME,
            "command": opts.command or "kubemc conform cni", "nodes": []}
    result = RunResult(run_id, meta["plugin"], conflist["cniVersion"], opts.nodes, opts.pods)
    recorder = Recorder(meta=meta)
    lock = hold_run_lock(run_id)
    run = None
    tmp = None
    t0 = time.monotonic()
    try:
        result.problems.extend(f"removed a dead run's {x}" for x in reap_leftovers())
        tmp = tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{run_id}-")
        with ProcessTree() as tree, signals_raise():
            try:
                run = _Run(opts, conflist, dirs, run_id, tmp, recorder, say)
                deadline = t0 + opts.time_limit
                phases = plan(opts.nodes, opts.pods, opts.deletions, opts.crashes)
                for i, ph in enumerate(phases):
                    if time.monotonic() > deadline:
                        say(f"--time-limit reached before phase {ph.kind}: stopping")
                        break
                    say(f"phase {i + 1}/{len(phases)}: {ph.kind} {list(ph.pods) or ''}")
                    if ph.kind == "cidrs":
                        run.cidrs()
                        meta["nodes"] = [{"index": n, "name": run.topo.node_name(n),
                                          "ip": addr.show(node_ip(n)),
                                          "pod_cidr": addr.show_cidr(run.model.pod_cidr(n))}
                                         for n in range(opts.nodes)]
                    elif ph.kind == "add":
                        run.add(ph.pods, ph.concurrent)
                    elif ph.kind == "del-unknown":
                        run.del_unknown()
                    elif ph.kind == "delete":
                        run.delete(ph.pods[0])
                    elif ph.kind == "crash":
                        run.crash(ph.pods[0])
                    elif ph.kind == "probe":
                        run.probe()
                    elif ph.kind == "teardown":
                        run.teardown(ph.pods)
                else:
                    result.complete = True
            finally:
                # processes first: a plugin or an `ip` that a signal orphaned inside
                # Popen could otherwise create a link or namespace after the cleanup
                left = tree.kill_all()
                if left:
                    result.problems.append(f"cleanup: processes that would not die {left}")
                if run is not None:
                    result.problems.extend(f"cleanup: {p}" for p in run.close())
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        lock.close()
    result.duration = time.monotonic() - t0
    result.invocations, result.plugin_seconds = run.invocations, run.plugin_seconds
    result.probes = run.probes
    t1 = time.perf_counter()
    history = CniHistory(recorder.operations(), meta, run.dataplane, result.complete)
    result.checks = run_checks(history)
    result.check_seconds = time.perf_counter() - t1
    _write_outputs(opts, result, recorder, meta)
    return result


def _write_outputs(opts: SuiteOptions, result: RunResult, recorder: Recorder, meta: dict) -> None:
    from conformance.report import jsonl_writer, write_json_atomic
    from conformance.report.cni import write_violation

    if not (opts.out or not result.passed):
        return
    out_dir = Path(opts.out) if opts.out else Path.cwd() / "kubemc-out" / f"conform-cni-{result.run_id}"
    if opts.out is None:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        out_dir.mkdir()
    else:
        make_out_dir(out_dir)
    result.out_dir = str(out_dir)
    hist = create_exclusive(out_dir / "history.jsonl", jsonl_writer(recorder.events(), meta))
    result.history_path = str(hist)
    for c in result.checks:     # the first violation of each failed check: its window and trace
        if c.violations:
            result.violation_files.extend(write_violation(out_dir, c.violations[0], meta).values())
    write_json_atomic(out_dir / "report.json", result.to_json())


def command_line(argv=None) -> str:
    return " ".join(shlex.quote(a) for a in (argv if argv is not None else ["kubemc", *sys.argv[1:]]))

"""``kubemc conform cni`` as a library call: build nodes, run the model's
plan against the plugin, probe, tear down, check, report.

:func:`run_suite` is what the CLI, the benchmark and the tests call::

    result = run_suite(SuiteOptions(nodes=3, pods=12))
    result.passed, result.checks, result.out_dir

Everything the run creates — namespaces (with their links, bridges, routes
and iptables rules), host-local's store directory, plugin processes,
sockets — is removed in a ``finally``, also on Ctrl-C and on SIGTERM /
SIGHUP (:func:`conformance.runner.signals.signals_raise` turns those into an
exception there); a plugin still running is killed through
:class:`conformance.runner.proctree.ProcessTree`. What a SIGKILLed run leaves
the next run removes (:func:`conformance.adapters.cni.netns.reap_leftovers`).
"""

from __future__ import annotations

import shutil
import tempfile
import time

import attrs

from kubemc.checker.progress import ProgressLine
from kubemc.checker.errors import BadInput
from kubemc.conformance.history import Recorder
from kubemc.conformance.report.outputs import check_out_dir, run_out_dir
from kubemc.conformance.adapters.cni import conf as cni_conf
from kubemc.conformance.adapters.cni.netns import (TMP_PREFIX, hold_run_lock, new_run_id,
                                                 reap_leftovers,
                                          require_environment)
from kubemc.conformance.adapters.cni.phases import IFNAME, Run
from kubemc.conformance.runner.proctree import ProcessTree
from kubemc.conformance.runner.checked_run import CheckedRun
from kubemc.conformance.runner.signals import signals_raise
from kubemc.conformance.traffic.cni import MAX_NODES, MAX_PODS, plan
from kubemc.conformance.validate.cni import CniHistory, run_checks
from kubemc.conformance.validate.cni_protocol import divergences
from kubemc.model.cni.machine import node_ip
from kubemc.model.network import addr



@attrs.define
class SuiteOptions:
    plugin: str | None = None
    conf: str | None = None
    nodes: int = 3
    pods: int = 12
    deletions: int = 2
    crashes: int = 1
    time_limit: float = 300.0
    probe_timeout: float = 1.0
    out: str | None = None
    progress: bool = True
    command: str = ""
    run_id: str | None = None
    strict: bool = False            # documented divergences fail the run too

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
class CniRunResult(CheckedRun):
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
    divergences: dict = attrs.field(factory=dict)   # documented divergence -> occurrences
    strict: bool = False                            # --strict: divergences are violations

    @property
    def operations(self) -> int:
        return self.invocations

    @property
    def ops_per_second(self) -> float:
        return self.invocations / self.duration if self.duration else 0.0

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
                "problems": self.problems, "divergences": self.divergences_json(), "strict": self.strict}

    def divergences_json(self) -> dict:
        from kubemc.conformance.validate.cni_protocol import DIVERGENCES
        return {name: {"count": n, "reference": DIVERGENCES[name]}
                for name, n in sorted(self.divergences.items())}


def run_suite(opts: SuiteOptions) -> CniRunResult:
    opts.validate()
    conflist = cni_conf.load(opts.conf) if opts.conf else cni_conf.default_conflist()
    extra = None
    if opts.plugin:
        conflist, extra = cni_conf.with_plugin(conflist, opts.plugin)
    dirs = cni_conf.search_path(extra)
    cni_conf.resolve(conflist, dirs, explicit=bool(opts.plugin))
    require_environment()
    run_id = opts.run_id or new_run_id()
    say = ProgressLine(enabled=opts.progress).message     # phases, one line each
    say(f"conform cni: run {run_id}, plugin {conflist['plugins'][0]['type']}, "
        f"{opts.nodes} nodes, {opts.pods} pods")
    meta = {"target": "cni", "run_id": run_id, "cniVersion": conflist["cniVersion"],
            "conflist": conflist, "plugin": conflist["plugins"][0]["type"],
            "host_local": cni_conf.uses_host_local(conflist), "ifname": IFNAME,
            "command": opts.command or "kubemc conform cni", "nodes": []}
    result = CniRunResult(run_id, meta["plugin"], conflist["cniVersion"], opts.nodes, opts.pods,
                       strict=opts.strict)
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
                run = Run(opts, conflist, dirs, run_id, tmp, recorder, say)
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
    history = CniHistory(recorder.operations(), meta, run.dataplane, result.complete,
                         strict=opts.strict)
    result.checks = run_checks(history)
    for name, _ in divergences(history):
        result.divergences[name] = result.divergences.get(name, 0) + 1
    result.check_seconds = time.perf_counter() - t1
    _write_outputs(opts, result, recorder, meta)
    return result


def _write_outputs(opts: SuiteOptions, result: CniRunResult, recorder: Recorder,
                   meta: dict) -> None:
    from kubemc.conformance.report.files import start_outputs, write_json_atomic
    from kubemc.conformance.report.cni import write_violation

    if not (opts.out or not result.passed):
        return
    out_dir = run_out_dir(opts.out, "cni", result.run_id)
    start_outputs(result, out_dir, recorder, meta, default=opts.out is None)
    for c in result.checks:     # the first violation of each failed check: its window and trace
        if c.violations:
            result.violation_files.extend(write_violation(out_dir, c.violations[0], meta).values())
    write_json_atomic(out_dir / "report.json", result.to_json())

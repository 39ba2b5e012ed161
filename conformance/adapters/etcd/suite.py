"""``kubemc conform etcd`` as a library call: start, drive, break, check, report.

:func:`run_suite` is what the CLI, the benchmark and the tests call::

    result = run_suite(SuiteOptions(time_limit=10, nemesis=("kill",)))
    result.passed, result.operations, result.checks, result.out_dir

Phases: (1) the target — a :class:`LocalCluster` (or ``endpoints``);
(2) the workload and the nemesis run for ``time_limit`` seconds; (3) the
nemesis heals everything and the *recovery phase* begins: the KV clients go
on until ``clients`` more requests have succeeded, for at most
``recovery_seconds`` (the ``availability`` check needs one); then the KV
clients stop, the watchers run on until they have seen the last revision;
(4) the cluster is torn down (in a ``finally``: also on errors and Ctrl-C);
(5) the checks run on the history; (6) reports and files, each created
exclusively in a new or empty output directory
(:mod:`conformance.report.outputs`).
"""

from __future__ import annotations

import os
import time

import attrs

from kubemc.checker.errors import BadInput, MissingEnvironment
from kubemc.conformance.failpoint.etcd import Nemesis
from kubemc.conformance.history import Recorder
from kubemc.checker.progress import ProgressLine
from kubemc.conformance.adapters.etcd.client import ClientError, EtcdClient, Malformed
from kubemc.conformance.adapters.etcd.cluster import (LocalCluster, new_run_id,
                                                      require_local_environment)
from kubemc.conformance.report.etcd import progress_line
from kubemc.conformance.report.files import (jsonl_writer, ops_to_events, start_outputs,
                                             write_json_atomic, write_violation)
from kubemc.conformance.report.outputs import check_out_dir, create_exclusive, run_out_dir
from kubemc.conformance.runner.checked_run import CheckedRun
from kubemc.conformance.runner.signals import signals_raise
from kubemc.conformance.traffic.etcd import RECOVERY_PROCESS, Config, Workload
from kubemc.conformance.validate.availability import DEFAULT_MIN_OK
from kubemc.conformance.validate.etcd import run_checks
from kubemc.conformance.validate.etcd_history import EtcdHistory
from kubemc.conformance.validate.linearizable import kv_operations


@attrs.define
class SuiteOptions:
    endpoints: list | None = None     # None: start a local cluster
    time_limit: float = 60.0
    clients: int = 8
    watchers: int = 2
    keys: int = 8
    rate: float = 0.0
    nemesis: tuple = ("kill", "pause", "partition")
    seed: int = 0
    out: str | None = None            # output directory; None: only on violation
    progress: bool = True
    command: str = ""                 # the command line, for the reproduction note
    run_id: str | None = None
    min_ok: int = DEFAULT_MIN_OK      # KV operations that must succeed (availability)
    recovery_seconds: float = 10.0    # the longest the recovery phase may last

    def validate(self) -> None:
        if not (self.time_limit > 0):
            raise BadInput(f"--time-limit must be a positive number of seconds, not {self.time_limit}")
        if not 1 <= self.clients <= 256:
            raise BadInput(f"--clients must be between 1 and 256, not {self.clients}")
        if self.rate < 0:
            raise BadInput(f"--rate must be >= 0 (0: as fast as the clients go), not {self.rate}")
        if self.min_ok < 0:
            raise BadInput(f"--min-ok must be 0 or more, not {self.min_ok}")
        if self.out is not None:
            check_out_dir(self.out)
        if self.endpoints and self.nemesis:
            raise BadInput("--nemesis needs the local cluster (it kills, pauses and partitions members); "
                           "with --endpoints use --nemesis none")


@attrs.define
class EtcdRunResult(CheckedRun):
    run_id: str
    seed: int
    local: bool
    endpoints: list
    duration: float = 0.0
    cpu_seconds: float = 0.0          # CPU time the run got (:func:`_cpu_seconds`), checks excluded
    ok: int = 0
    fail: int = 0
    info: int = 0
    watch_streams: int = 0
    watch_events: int = 0
    watch_failures: int = 0
    faults: dict = attrs.field(factory=dict)
    checks: list = attrs.field(factory=list)
    check_seconds: float = 0.0
    out_dir: str | None = None
    history_path: str | None = None
    violation_files: list = attrs.field(factory=list)
    problems: list = attrs.field(factory=list)

    @property
    def operations(self) -> int:
        return self.ok + self.fail + self.info

    @property
    def ops_per_second(self) -> float:
        return self.operations / self.duration if self.duration else 0.0

    @property
    def ops_per_cpu_second(self) -> float:
        """Operations per CPU second the run got. Unlike ops/s it does not fall
        when other work on the machine takes the CPU away from the run: a
        starved run makes fewer operations, but gets fewer CPU seconds too."""
        return self.operations / self.cpu_seconds if self.cpu_seconds else 0.0

    @property
    def fault_count(self) -> int:
        return sum(self.faults.values())

    @property
    def undecided(self) -> list[str]:
        """The checks that ran out of their budget undecided (linearizability's
        search): the run does not pass, and exits 4 unless a check failed."""
        return [c.name for c in self.checks if c.undecided]

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.checks) and not self.undecided

    def to_json(self) -> dict:
        return {"target": "etcd", "passed": self.passed, "run_id": self.run_id, "seed": self.seed,
                "local_cluster": self.local, "endpoints": self.endpoints,
                "duration_seconds": round(self.duration, 3), "operations": self.operations,
                "ok": self.ok, "fail": self.fail, "info": self.info,
                "ops_per_second": round(self.ops_per_second, 1),
                "cpu_seconds": round(self.cpu_seconds, 3),
                "ops_per_cpu_second": round(self.ops_per_cpu_second, 1),
                "watch_streams": self.watch_streams, "watch_events": self.watch_events,
                "watch_failures": self.watch_failures,
                "faults": self.faults, "faults_injected": self.fault_count,
                "check_seconds": round(self.check_seconds, 3),
                "failed_checks": self.failed_checks, "undecided_checks": self.undecided,
                "checks": [c.to_json() for c in self.checks],
                "out_dir": self.out_dir, "history": self.history_path,
                "violation_files": self.violation_files, "problems": self.problems}


def _reachable(endpoints: list[str]) -> None:
    """At least one endpoint answers etcd's status call as etcd does."""
    garbage = []
    for ep in endpoints:
        c = EtcdClient(ep, timeout=3.0, connect_timeout=2.0)
        try:
            c.status()
            return
        except Malformed as exc:
            garbage.append(str(exc))
        except ClientError:
            continue
        finally:
            c.close()
    if garbage:
        raise MissingEnvironment(f"no etcd at {', '.join(endpoints)}: it answers, but not as etcd's "
                                 f"v3 JSON gateway does ({garbage[0]}); point --endpoints at etcd "
                                 "client URLs")
    raise MissingEnvironment(f"no etcd answers at {', '.join(endpoints)} "
                             "(start the cluster, or drop --endpoints to start a local one)")


def _cpu_seconds() -> float:
    """User and system CPU time of this process — every thread: the clients,
    watchers and nemesis — and of the children it has waited for: the local
    members (``ip netns exec`` execs etcd, so each is a child, waited for when
    the nemesis kills it and when the cluster stops) and the ``ip`` and
    ``iptables`` commands. A remote cluster's (``--endpoints``) is not here."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _recover(workload: Workload, recorder: Recorder, want: int, limit: float) -> None:
    """The recovery phase: traffic goes on, faults healed, until ``want``
    requests have succeeded or ``limit`` seconds have passed; recorded as one
    ``recover`` operation spanning it."""
    start_ok = workload.stats.ok
    tok = recorder.invoke(RECOVERY_PROCESS, "recover", None, {"want_ok": want, "limit_seconds": limit})
    deadline = time.monotonic() + limit
    while workload.stats.ok - start_ok < want and time.monotonic() < deadline:
        time.sleep(0.05)
    recorder.complete(tok, "ok", {"ok": workload.stats.ok - start_ok})


def run_suite(opts: SuiteOptions, *, cluster_hook=None) -> EtcdRunResult:
    """Run the suite. ``cluster_hook(cluster) -> endpoints`` lets a caller
    (the known-bad targets in the tests) put something between the clients
    and a local cluster; it is called once the cluster is healthy, and may
    return an object with ``close()`` as a second value to be closed first."""
    opts.validate()
    run_id = opts.run_id or new_run_id()
    local = not opts.endpoints
    if local:
        require_local_environment(need_iptables="partition" in opts.nemesis)
    result = EtcdRunResult(run_id, opts.seed, local, list(opts.endpoints or []))
    out_dir = run_out_dir(opts.out, "etcd", run_id)
    prefix = f"/kmc/{run_id}/"
    cfg = Config(clients=opts.clients, watchers=opts.watchers, keys=opts.keys, rate=opts.rate,
                 seed=opts.seed, prefix=prefix)
    meta = {"target": "etcd", "run_id": run_id, "seed": opts.seed, "clients": opts.clients,
            "min_ok": opts.min_ok,
            "keys": cfg.key_names, "prefix": prefix, "exclusive": local, "kv_model": "etcd-kv",
            "nemesis": list(opts.nemesis), "time_limit": opts.time_limit,
            "command": opts.command or f"kubemc conform etcd --seed {opts.seed}"}
    recorder = Recorder(meta=meta)
    progress = ProgressLine(enabled=opts.progress, transient=False).open()
    cluster = LocalCluster(run_id=run_id, keep_dir=None) if local else None
    workload = nemesis = front = None
    cpu0 = _cpu_seconds()
    try:
        with signals_raise():
            try:
                if local:
                    progress.message(f"starting a 3-member etcd cluster (run {run_id})")
                    cluster.start()
                    result.problems.extend(cluster.reaped)
                    endpoints = cluster.endpoints
                    if cluster_hook is not None:
                        hooked = cluster_hook(cluster)
                        endpoints, front = hooked if isinstance(hooked, tuple) else (hooked, None)
                    result.endpoints = list(endpoints)
                else:
                    endpoints = list(opts.endpoints)
                    _reachable(endpoints)
                workload = Workload(endpoints, recorder, cfg, on_error=progress.message)
                nemesis = Nemesis(cluster, tuple(opts.nemesis), recorder, opts.seed,
                                  log=progress.message if os.environ.get("KUBEMC_DEBUG") else (lambda m: None)) \
                    if local else None
                t0 = time.monotonic()
                workload.start()
                if nemesis:
                    nemesis.start()
                deadline = t0 + opts.time_limit
                while time.monotonic() < deadline:
                    time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))
                    progress.update(progress_line(workload.stats.operations,
                                                  nemesis.count if nemesis else 0,
                                                  workload.stats.watch_events,
                                                  time.monotonic() - t0, opts.time_limit))
                if nemesis:
                    nemesis.stop()
                progress.message("recovery: faults healed, waiting for requests to succeed")
                _recover(workload, recorder, max(1, opts.clients), opts.recovery_seconds)
                result.duration = time.monotonic() - t0
                workload.stop_kv()
                workload.drain_watches(timeout=5.0, settle=1.6 if local else 0.0)
            finally:
                if nemesis is not None:
                    nemesis.stop(timeout=5.0)
                if workload is not None:
                    workload.stop()
                if front is not None:
                    front.close()
                if cluster is not None:
                    if opts.out:
                        cluster.keep_dir = str(out_dir)
                    problems = cluster.stop()
                    result.problems.extend(f"cleanup: {p}" for p in problems)
                result.cpu_seconds = _cpu_seconds() - cpu0
    finally:
        progress.close()
    st = workload.stats
    result.ok, result.fail, result.info = st.ok, st.fail, st.info
    result.watch_streams, result.watch_events = st.watch_streams, st.watch_events
    result.watch_failures = st.watch_failures
    result.faults = dict(nemesis.injected) if nemesis else {}
    result.problems.extend(workload.errors)
    if nemesis:
        result.problems.extend(nemesis.problems)

    t1 = time.perf_counter()
    history = EtcdHistory(recorder.operations(), meta)
    result.checks = run_checks(history)
    result.check_seconds = time.perf_counter() - t1

    if opts.out or not result.passed:
        start_outputs(result, out_dir, recorder, meta, default=opts.out is None)
        create_exclusive(out_dir / "kv-history.jsonl",
                         jsonl_writer(ops_to_events(kv_operations(history)), {**meta, "model": "etcd-kv"}))
        for v in result.violations:
            files = write_violation(out_dir, v, meta)
            result.violation_files.extend(files.values())
        write_json_atomic(out_dir / "report.json", result.to_json())
    return result

"""``kubemc conform cri`` as a library call: start, drive, break, check, report.

:func:`run_suite` is what the CLI, the benchmark and the tests call::

    result = run_suite(CriOptions(time_limit=10, faults=("kill",)))
    result.passed, result.calls, result.checks, result.out_dir

Phases: (1) the target — a private :class:`LocalContainerd`, or the runtime
at ``endpoint``; (2) the workload (:mod:`conformance.traffic.cri`) and its
faults for ``time_limit`` seconds, then the drain (every sandbox of the run
stopped and removed); (3) the runtime torn down, in a ``finally`` — also on
errors, Ctrl-C and SIGTERM (:func:`conformance.runner.signals.signals_raise`);
(4) the checks (:mod:`conformance.validate.cri`) on the history; (5) reports
and files, each created exclusively in a new or empty output directory.

``front(runtime_socket) -> (socket, closeable)`` lets a caller put something
between the client and the runtime (the known-bad proxies of the tests).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time

import attrs

from kubemc.checker.errors import BadInput
from kubemc.conformance.history import Recorder
from kubemc.checker.progress import ProgressLine
from kubemc.conformance.report.files import start_outputs, write_json_atomic
from kubemc.conformance.report.cri import progress_line, write_violation
from kubemc.conformance.report.outputs import check_out_dir, create_exclusive, run_out_dir
from kubemc.conformance.adapters.cri.runtime import (CriClient, LocalContainerd, check_endpoint,
                                                    new_run_id)
from kubemc.conformance.runner.checked_run import CheckedRun
from kubemc.conformance.runner.signals import signals_raise
from kubemc.conformance.traffic.cri import Workload
from kubemc.conformance.validate.cri import check_coverage, check_model


@attrs.define
class CriOptions:
    endpoint: str | None = None       # a socket path; None: a private containerd
    time_limit: float = 30.0
    faults: tuple = ("kill", "restart")
    seed: int = 0
    max_pods: int = 3
    strict: bool = False
    min_calls: int = 50
    out: str | None = None
    progress: bool = True
    command: str = ""
    run_id: str | None = None

    def validate(self) -> None:
        if not self.time_limit > 0:
            raise BadInput(f"--time-limit must be a positive number of seconds, not {self.time_limit}")
        if self.endpoint and self.faults:
            raise BadInput("--faults needs the private containerd (it kills container processes and "
                           "restarts the runtime); with --endpoint use --faults none")
        if self.out is not None:
            check_out_dir(self.out)


@attrs.define
class CriRunResult(CheckedRun):
    run_id: str
    seed: int
    local: bool
    endpoint: str
    runtime: str = ""
    duration: float = 0.0
    ok: int = 0
    fail: int = 0
    info: int = 0
    faults: dict = attrs.field(factory=dict)
    checks: list = attrs.field(factory=list)
    check_seconds: float = 0.0
    divergences: dict = attrs.field(factory=dict)   # documented divergence -> calls
    undecided: str = ""                              # the replay ran out of room (exit 4)
    out_dir: str | None = None
    history_path: str | None = None
    violation_files: list = attrs.field(factory=list)
    problems: list = attrs.field(factory=list)

    @property
    def calls(self) -> int:
        return self.ok + self.fail + self.info

    @property
    def calls_per_second(self) -> float:
        return self.calls / self.duration if self.duration else 0.0

    @property
    def fault_count(self) -> int:
        return sum(self.faults.values())

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.checks) and bool(self.checks) and not self.undecided

    def to_json(self) -> dict:
        return {"target": "cri", "passed": self.passed, "run_id": self.run_id, "seed": self.seed,
                "local_runtime": self.local, "endpoint": self.endpoint, "runtime": self.runtime,
                "duration_seconds": round(self.duration, 3), "calls": self.calls,
                "ok": self.ok, "fail": self.fail, "info": self.info,
                "calls_per_second": round(self.calls_per_second, 1),
                "faults": self.faults, "faults_injected": self.fault_count,
                "divergences": self.divergences, "undecided": self.undecided,
                "check_seconds": round(self.check_seconds, 3), "failed_checks": self.failed_checks,
                "checks": [c.to_json() for c in self.checks], "out_dir": self.out_dir,
                "history": self.history_path, "violation_files": self.violation_files,
                "problems": self.problems}


def run_suite(opts: CriOptions, *, front=None) -> CriRunResult:
    opts.validate()
    run_id = opts.run_id or new_run_id()
    local = opts.endpoint is None
    result = CriRunResult(run_id, opts.seed, local, opts.endpoint or "")
    out_dir = run_out_dir(opts.out, "cri", run_id)
    meta = {"target": "cri", "run_id": run_id, "seed": opts.seed, "faults": list(opts.faults),
            "time_limit": opts.time_limit, "strict": opts.strict, "max_pods": opts.max_pods,
            "command": opts.command or f"kubemc conform cri --seed {opts.seed}"}
    recorder = Recorder(meta=meta)
    progress = ProgressLine(enabled=opts.progress, transient=False).open()
    runtime = workload = shim = None
    kept_log = None
    try:
        with signals_raise():
            try:
                if local:
                    progress.message(f"starting a private containerd (run {run_id})")
                    runtime = LocalContainerd(run_id, log=progress.message)
                    runtime.start()
                    result.problems.extend(runtime.reaped)
                    socket_path = runtime.socket
                    result.runtime = runtime.version()
                else:
                    socket_path = opts.endpoint
                    result.runtime = check_endpoint(socket_path)
                if front is not None:
                    socket_path, shim = front(socket_path)
                result.endpoint = f"unix://{socket_path}"
                client = CriClient(socket_path, timeout=30)
                workload = Workload(
                    client, recorder, run_id, seed=opts.seed, time_limit=opts.time_limit,
                    faults_enabled=tuple(opts.faults), runtime=runtime,
                    cgroup_parent=runtime.cgroup_parent if runtime else "", max_pods=opts.max_pods,
                    progress=lambda calls, faults, el: progress.update(
                        progress_line(calls, faults, el, opts.time_limit)))
                result.duration = workload.run()
                workload.c.close()
            finally:
                if shim is not None:
                    shim.close()
                if runtime is not None:
                    fd, kept_log = tempfile.mkstemp(prefix=f"kmc{run_id}-containerd-", suffix=".log")
                    os.close(fd)
                    problems = runtime.stop(keep_log=kept_log)
                    result.problems.extend(f"cleanup: {p}" for p in problems)
    except BaseException:
        if kept_log:                       # interrupted: no report will read it
            with contextlib.suppress(OSError):
                os.unlink(kept_log)
        raise
    finally:
        progress.close()
    try:
        return _check_and_report(opts, result, recorder, workload, meta, out_dir, kept_log)
    finally:
        if kept_log:
            with contextlib.suppress(OSError):
                os.unlink(kept_log)


def _check_and_report(opts, result, recorder, workload, meta, out_dir, kept_log):
    local = result.local
    ops = recorder.operations()
    calls = [o for o in ops if o.process >= 0]
    result.ok = sum(o.status == "ok" for o in calls)
    result.fail = sum(o.status == "fail" for o in calls)
    result.info = sum(o.status == "info" for o in calls)
    result.faults = dict(workload.fault_counts) if workload else {}

    t = time.perf_counter()
    model_check, replay = check_model(ops, strict=opts.strict)
    result.undecided = replay.undecided
    for name, _ in replay.divergences:
        result.divergences[name] = result.divergences.get(name, 0) + 1
    result.checks = [model_check, check_coverage(ops, tuple(opts.faults) if local else (), opts.min_calls)]
    result.check_seconds = time.perf_counter() - t

    if opts.out or not result.passed:
        start_outputs(result, out_dir, recorder, meta, default=opts.out is None)
        for v in result.violations:
            if v.window:
                result.violation_files.extend(write_violation(out_dir, v, meta).values())
        if kept_log and os.path.getsize(kept_log):
            with open(kept_log, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
            create_exclusive(out_dir / "containerd.log", lambda out: out.write(text))
        write_json_atomic(out_dir / "report.json", result.to_json())
    return result

"""Benchmarks of the conformance runner (``kubemc bench NAME``; see ``checker.bench``).

Each is ``fn(progress) -> dict`` of figures; ``progress`` takes one line of text.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from kubemc.checker.errors import MissingEnvironment


class WrongVerdict(AssertionError):
    """The checker disagreed with a history's established verdict: a bug, not a slow run."""


def data_dir() -> Path:
    """``shared/data`` beside the repository (where the CI checks it out)."""
    d = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not (d / "README.md").is_file():
        raise MissingEnvironment(f"the shared history data is missing: expected {d}/README.md "
                                 f"(check out shared/ beside the repository)")
    return d


def expected_verdicts(d: Path) -> dict[str, bool]:
    """File name -> linearizable, from the table in ``README.md`` and the ``-ok``/``-bad`` names."""
    table = re.findall(r"^\|\s*(\S+\.log)\s*\|\s*(true|false)\s*\|", (d / "README.md").read_text(),
                       re.MULTILINE)
    verdicts = {name: v == "true" for name, v in table}
    for f in (d / "porcupine-kv").glob("*.txt"):
        verdicts[f.name] = f.stem.endswith("-ok")
    return verdicts


def linearizability(progress: Callable[[str], None] = print, repeat: int = 3) -> dict:
    """Check every history in ``shared/data``; raise :class:`WrongVerdict` on a wrong verdict.

    Times are per file, the best of ``repeat`` runs (one core, one process),
    for checking only; parsing is reported apart. Then the generated
    histories of :func:`generated`, each in a process of its own.
    """
    from kubemc.conformance.importers import load
    from kubemc.conformance.linearizability import check
    from kubemc.conformance.model.specs import spec

    d = data_dir()
    want = expected_verdicts(d)
    figures: dict = {}
    wrong: list[str] = []
    for group, pattern, label in (("etcd", "jepsen-etcd/*.log", "etcd"),
                                  ("kv", "porcupine-kv/*.txt", "kv")):
        files = sorted(d.glob(pattern))
        total = parse = 0.0
        slowest, slowest_file, explored = 0.0, "", 0
        for f in files:
            t = time.perf_counter()
            h = load(f)
            ops = h.operations()
            parse += time.perf_counter() - t
            sp = spec(h.model)
            best = float("inf")
            for _ in range(max(1, repeat)):
                t = time.perf_counter()
                r = check(ops, sp)
                best = min(best, time.perf_counter() - t)
            total += best
            explored += r.explored
            if best > slowest:
                slowest, slowest_file = best, f.name
            if f.name not in want:
                raise WrongVerdict(f"{f.name}: no expected verdict in {d / 'README.md'}")
            if r.ok is not want[f.name]:
                wrong.append(f"{f.name}: checker says {r.verdict}, expected "
                             f"{'linearizable' if want[f.name] else 'not linearizable'}")
        figures[f"{label}_histories"] = len(files)
        figures[f"{label}_seconds"] = round(total, 4)
        figures[f"{label}_parse_seconds"] = round(parse, 4)
        figures[f"{label}_max_seconds"] = round(slowest, 4)
        figures[f"{label}_max_file"] = slowest_file
        figures[f"{label}_backtracks"] = explored
        progress(f"{group}: {len(files)} histories checked in {total:.3f} s "
                 f"(slowest {slowest_file} {slowest:.3f} s; parsing {parse:.3f} s)")
    if wrong:
        raise WrongVerdict("; ".join(wrong))
    figures.update(generated(progress))
    return figures


#: the generated histories: (operations, with a violation, share of info operations)
GENERATED = [(n, bad, info) for n in (10_000, 100_000) for bad in (False, True)
             for info in (0.0, 0.01, 0.05)]
#: seconds each generated history may take (``--budget``): beyond it the verdict is unknown
GENERATED_BUDGET = 120.0


def _measure(path: Path, budget: float) -> tuple[str, float, float]:
    """``kubemc check-history`` on ``path`` in a process of its own: its verdict, wall
    seconds and peak resident memory (MB, from ``wait4``'s rusage of that process alone)."""
    import json
    import os
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryFile() as out:
        t = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "kubemc.conformance.checkhistory",
                                 str(path), "--json",
                                 "--budget", str(budget)], stdout=out, stderr=subprocess.DEVNULL,
                                cwd=Path(__file__).resolve().parents[1])
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - t
        out.seek(0)
        try:
            verdict = json.loads(out.read() or b"{}").get("verdict", f"exit {proc.returncode}")
        except ValueError:
            verdict = f"exit {proc.returncode}"
    return verdict, seconds, usage.ru_maxrss / 1024


def generated(progress: Callable[[str], None] = print, budget: float = GENERATED_BUDGET) -> dict:
    """Register histories of 50 clients (:mod:`conformance.histgen`), 10k and 100k
    operations, with and without a violation, 0 %, 1 % and 5 % ``info``: each
    checked by ``kubemc check-history`` in a process of its own, for its
    seconds (parsing included) and peak memory. A history made linearizable
    found not linearizable, or the reverse, is a :class:`WrongVerdict`;
    *unknown* (the budget ran out) is a figure, not an error.
    """
    import tempfile

    from kubemc.conformance.histgen import register_history
    from kubemc.conformance.linearizability import LINEARIZABLE, NOT_LINEARIZABLE

    figures: dict = {}
    wrong = []
    with tempfile.TemporaryDirectory(prefix="kubemc-bench-") as d:
        for n, bad, info in GENERATED:
            name = f"register_{n // 1000}k_{'bad' if bad else 'ok'}_info{round(info * 100)}"
            path = Path(d) / f"{name}.log"
            path.write_text("\n".join(register_history(n, 50, info, bad, seed=1)) + "\n")
            verdict, seconds, peak = _measure(path, budget)
            figures[f"{name}_verdict"] = verdict
            figures[f"{name}_seconds"] = round(seconds, 2)
            figures[f"{name}_peak_mb"] = round(peak, 1)
            progress(f"{name}: {verdict} in {seconds:.1f} s, peak {peak:.0f} MB")
            if verdict == (LINEARIZABLE if bad else NOT_LINEARIZABLE) or verdict.startswith("exit"):
                wrong.append(f"{name}: {verdict}")
    if wrong:
        raise WrongVerdict("generated histories: " + "; ".join(wrong))
    return figures


def conform_etcd(progress: Callable[[str], None] = print, time_limit: float = 60.0) -> dict:
    """``kubemc conform etcd`` as it runs by default — local 3-member cluster,
    8 clients, kill / pause / partition faults, ``time_limit`` seconds — and
    its figures: operations and operations per second (all KV requests, ok,
    failed and unknown), the CPU seconds the run got and operations per CPU
    second (what ``tests/test_conform_etcd.py``'s floor scales with), faults
    injected, watch events, and the time each check took. Needs root and
    the ``etcd`` binary (MissingEnvironment else).
    """
    from kubemc.conformance.adapters.etcd.suite import SuiteOptions, run_suite

    progress(f"conform-etcd: {time_limit:.0f} s against a local 3-member cluster with kill, pause "
             f"and partition faults")
    t = time.perf_counter()
    r = run_suite(SuiteOptions(time_limit=time_limit, progress=False,
                               command="kubemc bench conform-etcd"))
    wall = time.perf_counter() - t
    figures = {
        "passed": r.passed, "failed_checks": r.failed_checks,
        "operations": r.operations, "ok": r.ok, "fail": r.fail, "unknown": r.info,
        "traffic_seconds": round(r.duration, 2), "ops_per_second": round(r.ops_per_second, 1),
        "cpu_seconds": round(r.cpu_seconds, 2),
        "ops_per_cpu_second": round(r.ops_per_cpu_second, 1),
        "faults_injected": r.fault_count, **{f"faults_{k}": v for k, v in r.faults.items()},
        "watch_streams": r.watch_streams, "watch_events": r.watch_events,
        "check_seconds": round(r.check_seconds, 3),
        **{f"check_{c.name}_seconds": round(c.seconds, 4) for c in r.checks},
        "wall_seconds": round(wall, 2),
    }
    progress(f"conform-etcd: {r.operations} operations in {r.duration:.1f} s = {r.ops_per_second:.0f} ops/s, "
             f"{r.fault_count} faults, checked in {r.check_seconds:.2f} s: "
             f"{'pass' if r.passed else 'FAIL ' + ', '.join(r.failed_checks)}")
    return figures

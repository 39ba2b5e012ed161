"""``kubemc bench conform-cri``: what a CRI conformance run costs.

Figures: CRI calls per second against a private containerd (the default
run: both faults), the time the replay through the CRI model takes and its
peak Python memory (``tracemalloc``, a second replay of the recorded
history, the first one being the run's own), and the process's peak
resident memory. Printed, never asserted.
"""

from __future__ import annotations

import resource
import tempfile
import time
import tracemalloc
from collections.abc import Callable


def conform_cri(progress: Callable[[str], None] = print, time_limit: float = 60.0) -> dict:
    from kubemc.conformance.history import pair, read_jsonl
    from kubemc.conformance.adapters.cri.suite import CriOptions, run_suite
    from kubemc.conformance.validate.cri import replay

    progress(f"conform-cri: {time_limit:.0f} s against a private containerd with kill and restart faults")
    with tempfile.TemporaryDirectory(prefix="kubemc-bench-cri-") as out:
        t = time.perf_counter()
        r = run_suite(CriOptions(time_limit=time_limit, progress=False, out=out,
                                 command="kubemc bench conform-cri"))
        wall = time.perf_counter() - t
        ops = pair(read_jsonl(r.history_path))
    tracemalloc.start()
    t = time.perf_counter()
    again = replay(ops)
    replay_seconds = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    figures = {
        "passed": r.passed, "failed_checks": r.failed_checks, "runtime": r.runtime,
        "calls": r.calls, "ok": r.ok, "error": r.fail, "unknown": r.info,
        "traffic_seconds": round(r.duration, 2), "calls_per_second": round(r.calls_per_second, 1),
        "faults_injected": r.fault_count, **{f"faults_{k}": v for k, v in sorted(r.faults.items())},
        "divergences": r.divergences,
        "check_seconds": round(r.check_seconds, 3),
        **{f"check_{c.name}_seconds": round(c.seconds, 4) for c in r.checks},
        "replay_calls_judged": again.checked, "replay_peak_model_states": again.max_candidates,
        "replay_seconds": round(replay_seconds, 3),
        "replay_peak_python_mb": round(peak / 2**20, 2),
        "process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "wall_seconds": round(wall, 2),
    }
    progress(f"conform-cri: {r.calls} calls in {r.duration:.1f} s = {r.calls_per_second:.1f} calls/s, "
             f"{r.fault_count} faults, checked in {r.check_seconds:.3f} s: "
             f"{'pass' if r.passed else 'FAIL ' + ', '.join(r.failed_checks)}")
    return figures

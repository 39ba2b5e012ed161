"""``kubemc bench conform-cni``: plugin invocations per second, the runner's
overhead over raw plugin calls, and peak memory.

What is compared (one simulated node, ``PAIRS`` containers, ADD then DEL of
each, the real bridge + host-local plugins):

* **raw** — the least a runtime can do: the thread enters the node's
  namespace once and ``subprocess.run``s the plugin with the spec's
  environment and the configuration on stdin, nothing else;
* **runner** — the same calls through ``conform cni``'s own path: the
  :class:`conformance.adapters.cni.execute.Executor` (namespace entered per call,
  configuration derived per Section 3), the history recorder, and the store
  and link snapshots the checks read are left out (they are per phase, not
  per call).

Both give DEL the ADD's result as ``prevResult``. Rounds alternate which of
the two goes first, and the best round of each is kept, so a busy machine
and warm-up favour neither. Then one whole default run (3 nodes, 12
pods, probes, checks) gives the end-to-end rate. Peak memory: the largest
resident set of this process, the runner (``ru_maxrss``). A plugin's own
memory is not reported: ``RUSAGE_CHILDREN`` also counts the runner's pages
in every child between fork and exec, so it would only repeat the runner's.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable

PAIRS = 20
ROUNDS = 4


def conform_cni(progress: Callable[[str], None] = print) -> dict:
    from kubemc.conformance.history import Recorder
    from kubemc.conformance.adapters.cni import conf as cni_conf
    from kubemc.conformance.adapters.cni.execute import Executor
    from kubemc.conformance.adapters.cni.netns import (TMP_PREFIX, Topology, entered, hold_run_lock,
                                              new_run_id, ns_path, require_environment)
    from kubemc.conformance.adapters.cni.suite import SuiteOptions, run_suite
    from kubemc.model.network import addr

    require_environment()
    conflist = cni_conf.default_conflist()
    dirs = cni_conf.search_path()
    cni_conf.resolve(conflist, dirs, explicit=False)
    run_id = new_run_id()
    lock = hold_run_lock(run_id)        # a live run: no concurrent run reaps its namespaces
    tmp = tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{run_id}-")
    topo = Topology(run_id)
    raw_best = runner_best = float("inf")
    try:
        topo.build_nodes(["192.168.0.10"], 24, [[]])
        conf = cni_conf.for_node(conflist, addr.cidr("10.22.0.0/24"), os.path.join(tmp, "n0"))
        node = ns_path(topo.node_name(0))
        ex = Executor(conf, dirs, node)
        bridge = ex.find("bridge")
        base = ex.derive(conf["plugins"][0], None)

        def raw_round(rnd: int) -> float:
            pods = [(f"bench{rnd}r{i}", topo.add_pod(f"r{rnd}x{i}")) for i in range(PAIRS)]
            t = time.perf_counter()
            with entered(node):
                for cid, path in pods:
                    prev = None
                    for cmd in ("ADD", "DEL"):
                        env = {"CNI_COMMAND": cmd, "CNI_CONTAINERID": cid, "CNI_NETNS": path,
                               "CNI_IFNAME": "eth0", "CNI_PATH": os.pathsep.join(dirs),
                               "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin")}
                        stdin = dict(base, prevResult=prev) if prev else base
                        out = subprocess.run([bridge], input=json.dumps(stdin).encode(), env=env,
                                             capture_output=True, check=True).stdout
                        prev = json.loads(out) if cmd == "ADD" else None
            return time.perf_counter() - t

        def runner_round(rnd: int) -> float:
            pods = [(f"bench{rnd}w{i}", topo.add_pod(f"w{rnd}x{i}")) for i in range(PAIRS)]
            rec = Recorder()
            t = time.perf_counter()
            for cid, path in pods:
                tok = rec.invoke(0, "ADD", cid, {"netns": path})
                a = ex.add(cid, path, "eth0")
                rec.complete(tok, "ok" if a.ok else "fail", {"calls": [c.to_json() for c in a.calls]})
                tok = rec.invoke(0, "DEL", cid, {"netns": path})
                d = ex.delete(cid, path, "eth0", a.result)
                rec.complete(tok, "ok" if d.ok else "fail", {"calls": [c.to_json() for c in d.calls]})
                if not (a.ok and d.ok):
                    raise RuntimeError(f"the bridge plugin failed in the benchmark: {a.error_text()}"
                                       f"{d.error_text()}")
            return time.perf_counter() - t

        for rnd in range(ROUNDS):
            # alternate which goes first, so warm-up and load drift favour neither
            if rnd % 2 == 0:
                raw, runner = raw_round(rnd), runner_round(rnd)
            else:
                runner, raw = runner_round(rnd), raw_round(rnd)
            raw_best, runner_best = min(raw_best, raw), min(runner_best, runner)
            progress(f"round {rnd + 1}: raw {2 * PAIRS / raw:.0f} calls/s, runner "
                     f"{2 * PAIRS / runner:.0f} calls/s")
    finally:
        topo.close()
        shutil.rmtree(tmp, ignore_errors=True)
        lock.close()
    progress("a whole default run: 3 nodes, 12 pods, probes and checks")
    r = run_suite(SuiteOptions(progress=False))
    if not r.passed:
        raise RuntimeError(f"the default run failed ({', '.join(r.failed_checks)}): "
                           "fix that before reading figures")
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    calls = 2 * PAIRS
    return {
        "raw_calls_per_second": round(calls / raw_best, 1),
        "runner_calls_per_second": round(calls / runner_best, 1),
        "runner_overhead_ratio": round(runner_best / raw_best, 3),
        "overhead_goal": "at most 2.0",
        "raw_ms_per_call": round(1000 * raw_best / calls, 2),
        "runner_ms_per_call": round(1000 * runner_best / calls, 2),
        "full_run_seconds": round(r.duration, 2),
        "full_run_invocations": r.invocations,
        "full_run_invocations_per_second": round(r.ops_per_second, 1),
        "full_run_seconds_inside_plugins": round(r.plugin_seconds, 2),
        "full_run_packets": r.probes,
        "full_run_check_seconds": round(r.check_seconds, 3),
        "peak_rss_runner_mb": round(self_mb, 1),
    }

"""``kubemc bench scheduler``: the Z3 feasibility oracle at Kubernetes'
documented limits ("Considerations for large clusters": no more than 5,000
nodes and 150,000 pods in total).

The cluster is generated, seeded, so every run asks the same questions: 5
zones, 10% of nodes a GPU pool tainted ``gpu=true:NoSchedule``, 1% cordoned,
30 pods per node on average from 500 apps, a tenth of them with hostname
anti-affinity and a tenth with a zone spread constraint. Figures: seconds
per single-pod question (several kinds: plain, tolerating the GPU taint and
selecting the pool, required zone affinity, zone spread, hostname spread,
anti-affinity, a host port), batch questions (a Deployment's 10 and 50
replicas with zone spread and hostname anti-affinity, placed together; each
witness is then replayed pod by pod through the executable plugins, and the
batch of 10 is asked again without merging interchangeable nodes, for
comparison), and memory:
the process's peak resident set (``ru_maxrss``, which includes Z3's heap)
after building the snapshot and after the questions. Nothing is asserted.
"""

from __future__ import annotations

import random
import resource
import statistics
import time

from kubemc.model.scheduler.objects import (
    HOSTNAME, ZONE, AntiAffinityTerm, Node, Pod, Requirement, Resources as R, SpreadConstraint,
    Taint, Toleration,
)
from kubemc.model.scheduler.plugins import Plugins
from kubemc.properties.symbolic.scheduler_feasibility import Snapshot

NODES, PODS, ZONES, APPS = 5_000, 150_000, 5, 500
GIB = 1 << 30


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def cluster(seed: int = 11, nodes: int = NODES, pods: int = PODS):
    rng = random.Random(seed)
    ns = []
    for i in range(nodes):
        gpu = i % 10 == 0
        ns.append(Node(f"node-{i}", R(64_000, 256 * GIB), max_pods=110,
                       labels=((ZONE, f"zone-{i % ZONES}"),) + ((("gpu", "true"),) if gpu else ()),
                       taints=(Taint("gpu", "true", "NoSchedule"),) if gpu else (),
                       unschedulable=i % 100 == 57))
    placed = []
    for q in range(pods):
        app = (("app", f"app-{q % APPS}"),)
        kind = q % 10
        placed.append((q, Pod(f"pod-{q}", containers=(R(rng.choice((250, 500, 1000, 1500)),
                                                        rng.choice((1, 2, 4)) * GIB),),
                              labels=app,
                              anti_affinity=(AntiAffinityTerm(HOSTNAME, app),) if kind == 1 else (),
                              spread=(SpreadConstraint(2, ZONE, app),) if kind == 2 else ()),
                       rng.randrange(nodes), q % 97 == 0))
    return ns, placed


def questions():
    web = (("app", "app-7"),)
    small = (R(500, GIB),)
    gpu = Toleration("gpu", "Equal", "true", "NoSchedule")
    return {
        "plain": Pod("q-plain", small),
        "gpu_pool": Pod("q-gpu", (R(4000, 16 * GIB),), tolerations=(gpu,),
                        node_selector=(("gpu", "true"),)),
        "zone_affinity": Pod("q-zone", small, affinity=((Requirement(ZONE, "In",
                                                                     ("zone-1", "zone-3")),),)),
        "zone_spread": Pod("q-spread", small, labels=web,
                           spread=(SpreadConstraint(1, ZONE, web),)),
        "hostname_spread": Pod("q-hspread", small, labels=web,
                               spread=(SpreadConstraint(1, HOSTNAME, web),)),
        "anti_affinity": Pod("q-anti", small, labels=web,
                             anti_affinity=(AntiAffinityTerm(HOSTNAME, web),)),
        "host_port": Pod("q-port", small, host_ports=(8080,)),
        "too_big": Pod("q-big", (R(80_000, GIB),)),
    }


def batch(size: int):
    app = (("app", "batch-web"),)
    return [Pod(f"b-{k}", (R(1000, 2 * GIB),), labels=app,
                spread=(SpreadConstraint(1, ZONE, app),),
                anti_affinity=(AntiAffinityTerm(HOSTNAME, app),)) for k in range(size)]


def verified(ns, placed, pods, placement) -> bool:
    """The oracle's witness applied pod by pod through the executable plugins
    (``Plugins().passes`` against every placed pod): an answer is counted
    only if the plugins accept it."""
    placed = list(placed)
    for k, (pod, n) in enumerate(zip(pods, placement)):
        if not Plugins().passes(pod, n, ns, placed):
            return False
        placed.append((len(placed) + k, pod, n, False))
    return True


def scheduler(progress, batch_sizes=(10, 50), unmerged=(10,)) -> dict:
    start_mb = _peak_mb()
    t0 = time.perf_counter()
    ns, placed = cluster()
    snap = Snapshot(ns, placed)
    build = time.perf_counter() - t0
    built_mb = _peak_mb()
    progress(f"  snapshot of {len(ns):,} nodes and {len(placed):,} pods in {build:.1f} s, "
             f"peak RSS {built_mb} MB")
    out = {"nodes": len(ns), "pods": len(placed), "snapshot_build_seconds": round(build, 2),
           "peak_rss_mb_after_snapshot": built_mb, "peak_rss_mb_before": start_mb}
    times = []
    for name, pod in questions().items():
        answer = snap.feasible([pod])
        times.append(answer.seconds)
        where = ns[answer.placement[0]].name if answer.feasible else "none"
        progress(f"  {name}: {'feasible on ' + where if answer.feasible else 'infeasible'}, "
                 f"{answer.seconds:.3f} s ({answer.solver_seconds:.3f} s in Z3, "
                 f"{answer.variables:,} variables)")
        out[f"single_{name}_seconds"] = round(answer.seconds, 3)
        out[f"single_{name}_feasible"] = answer.feasible
    out["single_median_seconds"] = round(statistics.median(times), 3)
    out["single_max_seconds"] = round(max(times), 3)
    for size in batch_sizes:
        pods = batch(size)
        answer = snap.feasible(pods)
        t0 = time.perf_counter()
        ok = answer.feasible and verified(ns, placed, pods, answer.placement)
        check = time.perf_counter() - t0
        progress(f"  batch of {size}: {'feasible' if answer.feasible else 'infeasible'}, "
                 f"{answer.seconds:.2f} s ({answer.solver_seconds:.2f} s in Z3, "
                 f"{answer.variables:,} variables over {answer.classes:,} node classes), "
                 f"witness {'accepted' if ok else 'REJECTED'} by the plugins in {check:.1f} s, "
                 f"peak RSS {_peak_mb()} MB")
        out[f"batch_{size}_seconds"] = round(answer.seconds, 2)
        out[f"batch_{size}_solver_seconds"] = round(answer.solver_seconds, 2)
        out[f"batch_{size}_variables"] = answer.variables
        out[f"batch_{size}_node_classes"] = answer.classes
        out[f"batch_{size}_feasible"] = answer.feasible
        out[f"batch_{size}_witness_accepted_by_plugins"] = ok
        out[f"batch_{size}_seconds_per_pod"] = round(answer.seconds / size, 3)
    out["peak_rss_mb"] = _peak_mb()
    # the same question without merging interchangeable nodes, for comparison
    # (last: it needs far more memory, which would mask the figures above)
    for size in unmerged:
        answer = snap.feasible(batch(size), collapse=False)
        progress(f"  batch of {size}, one variable per (pod, node): "
                 f"{'feasible' if answer.feasible else 'infeasible'}, {answer.seconds:.2f} s "
                 f"({answer.solver_seconds:.2f} s in Z3, {answer.variables:,} variables), "
                 f"peak RSS {_peak_mb()} MB")
        out[f"batch_{size}_unmerged_seconds"] = round(answer.seconds, 2)
        out[f"batch_{size}_unmerged_solver_seconds"] = round(answer.solver_seconds, 2)
        out[f"batch_{size}_unmerged_variables"] = answer.variables
        out[f"batch_{size}_unmerged_feasible"] = answer.feasible
    out["peak_rss_mb_with_unmerged"] = _peak_mb()
    return out

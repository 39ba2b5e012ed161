"""The partitioned search (``kubemc check --workers N``) against one process.

What is covered, per component of the catalog (small models or bounds, so
the file stays near a minute): a model whose state count, transitions,
depth, covers and verdict at 2 workers equal one process's (liveness
models included: the graph gathered from the workers has the one-process
graph's states, edges and components), and a mutant whose counterexample
at 2 workers is the one-process one — the same property and length, the
same steps and states, lassos included — and replays; liveness judged
by the one-process fallback when no graph is gathered. Then the CLI (rows
and traces of the same shape, options refused with other engines),
--max-states, a disagreeing fingerprint, a failing worker, and cleanup on
SIGTERM and Ctrl-C. The models at their
full default bounds are not compared here (raft alone is minutes):
``kubemc bench explore-parallel`` compares one at scale.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from kubemc.checker import parallel, traces
from kubemc.checker.components import COMPONENTS, component
from kubemc.checker.errors import MissingEnvironment
from kubemc.checker.explore import explore
from kubemc.checker.run import targeted
from kubemc.checker.shard import LevelReport, ModelSpec

WORKERS = 2

#: (component, model, bounds): one complete search per component
COUNTS = [
    ("store", "mvcc", {}),
    ("store", "raft", {"max_term": 1}),  # server symmetry
    ("cni", "cni", {"nodes": 2, "pods": 2}),
    ("proxy", "proxy", {"nodes": 2, "pods": 2}),
    ("apiserver", "access", {}),
    ("informer", "workqueue", {}),  # eventually_always: the graph gathered from the workers
    ("controllers", "namespace", {}),  # leads_to
    ("scheduler", "scheduler-binding", {}),
    ("cri", "cri", {"attempts": 1}),  # covers
    ("kubelet", "kubelet-lease", {}),
    ("cluster", "cluster-dns", {"watch_drops": 0}),
]

#: (component, model, mutant): a counterexample per component
MUTANTS = [
    ("store", "raft", "double_vote"),  # 10 steps through server symmetry
    ("store", "mvcc", "compact_drops_live_key"),  # a transition property
    ("cni", "cni", "ipam_reuses_held_address"),
    ("proxy", "proxy", "stale_affinity_rules"),
    ("apiserver", "apiserver-writes", "update_without_rv_compare"),
    ("apiserver", "apiserver-watch", "watch_skips_compacted"),
    ("informer", "informer", "bookmark_skips_events"),
    ("informer", "workqueue", "done_requeues_always"),  # a lasso on the gathered graph
    ("controllers", "replicaset", "drops_error"),  # a lasso
    ("controllers", "namespace", "misses_content_events"),  # leads_to
    ("controllers", "namespace", "treats_terminating_as_gone"),
    ("controllers", "deployment", "no_rs_expectations"),
    ("scheduler", "scheduler-binding", "keeps_assumed_on_conflict"),
    ("cri", "cri", "start_restarts_exited_container"),
    ("kubelet", "kubelet", "backoff_uncapped"),  # 27 steps
    ("cluster", "cluster", "scheduler_ignores_unreachable_taint"),
]


def _model(comp, name):
    return next(m for m in component(comp).models if m.name == name)


def _both(comp, name, mutant=None, bounds=None, **kwargs):
    model = _model(comp, name)
    props = targeted(model, mutant)
    one = explore(model.machine(mutant, **(bounds or {})), props, **kwargs)
    spec = ModelSpec.of(comp, name, mutant, bounds, props)
    many = parallel.explore(spec, model.machine(mutant, **(bounds or {})), props,
                            workers=WORKERS, **kwargs)
    return one, many


def test_every_component_is_covered():
    covered = {c for c, _, _ in COUNTS}
    assert covered == set(COMPONENTS), "a component without a parallel count test"
    assert {c for c, _, _ in MUTANTS} == set(COMPONENTS), "a component without a mutant"


@pytest.mark.parametrize("comp,name,bounds", COUNTS,
                         ids=[f"{c}-{n}" for c, n, _ in COUNTS])
def test_same_state_count_as_one_process(comp, name, bounds):
    one, many = _both(comp, name, bounds=bounds)
    assert one.complete and many.complete
    assert one.stats.states > 1
    assert (many.stats.states, many.stats.transitions, many.stats.depth) == \
        (one.stats.states, one.stats.transitions, one.stats.depth)
    assert many.covers == one.covers
    assert many.undecided == one.undecided
    assert (many.counterexample is None) == (one.counterexample is None)
    assert many.liveness["parallel_workers"] == WORKERS
    if any(p.is_liveness for p in _model(comp, name).properties):
        # the graph the workers recorded is the one the one-process search builds
        assert many.liveness["liveness_search"] == parallel.LIVENESS_ON_GATHERED_GRAPH
        for figure in ("liveness_states", "liveness_edges", "liveness_components",
                       "liveness_truncated_states"):
            assert many.liveness[figure] == one.liveness[figure], figure


@pytest.mark.parametrize("comp,name,mutant", MUTANTS, ids=[m for _, _, m in MUTANTS])
def test_same_counterexample_as_one_process(comp, name, mutant, tmp_path):
    one, many = _both(comp, name, mutant)
    a, b = one.counterexample, many.counterexample
    assert a is not None and b is not None
    assert b.prop.name == a.prop.name == _model(comp, name).mutants[mutant].violates
    assert len(b.steps) == len(a.steps)
    # the guarantee is stronger than the length: the very same behaviour
    assert (b.init, b.steps, b.loop, b.closing) == (a.init, a.steps, a.loop, a.closing)
    machine = _model(comp, name).machine(mutant)
    path = traces.save(b, tmp_path, model=name, machine=machine, engine="explore",
                       seed=None, command=f"kubemc check {comp} --mutant {mutant}")
    replay = traces.replay(traces.load(path), source=str(path))
    assert replay.reproduced, replay.message


def test_liveness_without_a_gathered_graph_is_judged_by_one_process(monkeypatch):
    """A symmetry that does not keep step labels may not be used by liveness:
    then the one-process graph search judges it, and the row says so."""
    for where in ("kubemc.checker.parallel.gathers_graph", "kubemc.checker.shard.gathers_graph"):
        monkeypatch.setattr(where, lambda machine, props: False)
    one, many = _both("controllers", "namespace", "misses_content_events")
    assert many.liveness["liveness_search"] == parallel.LIVENESS_IN_ONE_PROCESS
    a, b = one.counterexample, many.counterexample
    assert (b.init, b.steps, b.loop, b.closing) == (a.init, a.steps, a.loop, a.closing)


def test_max_states_is_undecided_near_the_budget():
    one, many = _both("store", "mvcc", max_states=1000)
    assert not one.complete and not many.complete
    # the parallel search stops at the end of a level, each worker within its share
    assert many.stats.states <= 1000 + WORKERS - 1
    assert many.counterexample is None and many.stats.states > 100


class _Disagreeing:
    """A pool whose workers hash the probe differently (another seed)."""

    count, kind = 2, "fake"

    def start(self):
        return [LevelReport(1, 1, fingerprint=1), LevelReport(1, 1, fingerprint=2)]


def test_workers_whose_fingerprints_disagree_are_refused():
    model = _model("store", "mvcc")
    with pytest.raises(MissingEnvironment, match="fingerprints disagree"):
        parallel.search(model.machine(), model.properties, _Disagreeing())


def _boom(*args, **kwargs):
    raise ZeroDivisionError("a bug in a model")


def test_a_failing_worker_is_an_error_and_leaves_no_process(monkeypatch):
    model = _model("store", "mvcc")
    spec = ModelSpec.of("store", "mvcc", None, {}, model.properties)
    # the forked workers inherit the patched method
    monkeypatch.setattr("kubemc.checker.shard.ShardWorker.expand", _boom)
    with pytest.raises(parallel.WorkerFailed, match="ZeroDivisionError"):
        parallel.explore(spec, model.machine(), model.properties, workers=WORKERS)
    assert _live_children(os.getpid()) == []


def _live_children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry))
    return out


# ---------------------------------------------------------------------------
# the CLI
# ---------------------------------------------------------------------------


def _kubemc(*args, cwd):
    return subprocess.run([sys.executable, "-m", "kubemc.checker.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.getcwd()})


def test_cli_rows_and_traces_have_the_one_process_shape(tmp_path):
    args = ["check", "scheduler", "--mutant", "keeps_assumed_on_conflict", "--json", "--quiet"]
    one = _kubemc(*args, "--trace-dir", "one", cwd=tmp_path)
    many = _kubemc(*args, "--trace-dir", "many", "--workers", "2", cwd=tmp_path)
    assert one.returncode == many.returncode == 1, many.stderr
    rows_one, rows_many = json.loads(one.stdout), json.loads(many.stdout)
    assert len(rows_one) == len(rows_many) == 1
    a, b = rows_one[0], rows_many[0]
    assert set(b) == set(a)
    assert b["figures"]["parallel_workers"] == 2
    assert set(b["figures"]) - set(a["figures"]) == {"parallel_workers", "parallel_backend"}
    for key in ("verdict", "prop", "detail", "model"):
        assert b[key] == a[key]
    ta, tb = (json.loads((tmp_path / r["trace"]).read_text()) for r in (a, b))
    assert tb["states"] == ta["states"]
    assert tb["#meta"]["command"] == ta["#meta"]["command"]  # one process repeats it


@pytest.mark.parametrize("engine", ["hypothesis", "z3", "simulate"])
def test_workers_and_ray_are_refused_with_other_engines(engine, capsys):
    from kubemc.checker.cli import main

    for option in (["--workers", "2"], ["--ray", "127.0.0.1:6379"]):
        assert main(["check", "store", "--engine", engine, *option]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and option[0] in err and "applies to --engine explore" in err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_interrupted_run_leaves_no_worker(sig, tmp_path):
    """raft at its defaults runs for a minute: interrupt it mid-search."""
    proc = subprocess.Popen([sys.executable, "-m", "kubemc.checker.cli", "check", "store",
                             "--workers", "2", "--quiet"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        deadline = time.monotonic() + 60
        while len(_live_children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        workers = _live_children(proc.pid)
        assert len(workers) == 2, "the workers never started"
        time.sleep(1)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "interrupted" in err
    for pid in workers:
        assert not os.path.exists(f"/proc/{pid}") or _state(pid) == "Z"


def _state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]

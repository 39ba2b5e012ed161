"""``kubemc swarm``: differently seeded and bounded simulate runs in
parallel processes. Each run reports its coverage and the totals name what
no run covered; a seeded bug is caught with a trace that replays; runs are
drawn within the catalog's ceilings; no worker outlives the run, whether it
ends, is interrupted (Ctrl-C) or terminated (SIGTERM)."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kubemc.checker import swarm
from kubemc.checker.cli import main
from kubemc.checker.components import component
from kubemc.checker.run import select


def test_every_run_reports_its_coverage_and_the_totals_what_no_run_covered(tmp_path,
                                                                          capsys):
    rc = main(["swarm", "cri", "--runs", "3", "--jobs", "2", "--seed", "4", "--time", "3",
               "--quiet", "--json", "--trace-dir", str(tmp_path)])
    out = json.loads(capsys.readouterr().out)
    machine = component("cri").models[0].machine()
    assert len(out["runs"]) == 3 and out["seed"] == 4 and out["jobs"] == 2
    seeds = {run["plan"]["seed"] for run in out["runs"]}
    assert len(seeds) == 3
    for run in out["runs"]:
        f = run["result"]["figures"]
        assert f["walks"] >= 1 and f["steps"] >= 1 and f["seed"] == run["plan"]["seed"]
        assert set(f["actions_taken"]) | set(f["actions_never_taken"]) == set(machine.tags)
        assert f["actions_taken"] and f["premises_reached"]
        assert f["depth"] == run["plan"]["depth"]
        assert run["result"]["verdict"] in ("holds", "undecided")
    (total,) = out["totals"]
    taken = set().union(*(r["result"]["figures"]["actions_taken"] for r in out["runs"]))
    assert set(total["actions_never_taken"]) == set(machine.tags) - taken
    reached = set().union(*(r["result"]["figures"]["covers_reached"] for r in out["runs"]))
    covers = {p.name for p in component("cri").models[0].properties if p.kind == "cover"}
    assert set(total["covers_never_reached"]) == covers - reached
    assert rc == (0 if total["verdict"] == "holds" else 4)


def test_the_report_names_actions_never_taken_and_covers_never_reached(tmp_path, capsys):
    rc = main(["swarm", "informer", "--runs", "3", "--jobs", "2", "--seed", "1", "--time", "2",
               "--quiet", "--trace-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 4, "liveness is never decided by random walks"
    assert out.startswith("swarm: 3 runs on 2 processes, seed 1")
    assert "run 1 informer/informer seed " in out and "run 2 informer/informer-relist" in out
    assert "run 3 informer/workqueue" in out
    assert out.count("  actions never taken: ") == 3
    assert out.count("  covers never reached: ") == 3
    assert "liveness not decided by random walks" in out


def test_a_mutant_is_caught_and_its_trace_replays(tmp_path, capsys):
    rc = main(["swarm", "kubelet", "--mutant", "never_policy_restarts", "--runs", "3",
               "--jobs", "2", "--seed", "1", "--quiet", "--json",
               "--trace-dir", str(tmp_path)])
    out = json.loads(capsys.readouterr().out)
    assert rc == 1
    (total,) = out["totals"]
    assert total["verdict"] == "violated" and total["violations"]
    for index, prop, trace in total["violations"]:
        assert prop == "kubelet_restart_policy"
        meta = json.loads(Path(trace).read_text())["#meta"]
        plan = out["runs"][index - 1]["plan"]
        assert meta["engine"] == "simulate" and meta["seed"] == plan["seed"]
        assert f"--depth {plan['depth']}" in meta["command"]
        assert main(["trace", "replay", trace]) == 1
        # the recorded command repeats that run alone, and writes the same walk
        again = tmp_path / f"again-{index}"
        words = shlex.split(meta["command"])
        assert main([*words[1:], "--quiet", "--trace-dir", str(again)]) == 1
        (repeated,) = again.iterdir()
        assert json.loads(repeated.read_text())["states"] == \
            json.loads(Path(trace).read_text())["states"]


def test_runs_are_drawn_within_the_ceilings_and_the_same_seed_draws_the_same_runs():
    pairs = select(["store", "controllers"], None)
    plans = swarm.plan(pairs, 40, 9, None, None, 2)
    assert plans == swarm.plan(pairs, 40, 9, None, None, 2)
    assert plans != swarm.plan(pairs, 40, 10, None, None, 2)
    models = {m.name: m for _, m in pairs}
    for p in plans[:len(pairs)]:  # the anchors: catalog bounds, default depth
        assert p.changed == () and p.depth == swarm.simulate.DEFAULT_DEPTH
    assert any(p.changed for p in plans[len(pairs):])
    for p in plans:
        model = models[p.model]
        assert model.check_bounds(dict(p.bounds)) == dict(p.bounds)
        assert p.depth in swarm.DEPTHS and p.walks == swarm.RUN_WALKS


def test_a_budget_the_catalog_switches_off_somewhere_may_be_drawn_0_a_count_never():
    pairs = select(["kubelet", "store"], None)
    plans = swarm.plan(pairs, 60, 2, None, None, 2)
    drawn = [dict(p.bounds) for p in plans[len(pairs):]]
    assert any(b.get("deletes") == 0 for b in drawn)  # kubelet-lease has deletes=0
    assert all(b.get("servers", 1) >= 1 for b in drawn)  # no model has 0 servers


def test_a_time_budget_is_shared_among_the_runs():
    pairs = select(["cri"], None)
    plans = swarm.plan(pairs, 4, 1, None, 10.0, 2)
    assert {p.seconds for p in plans} == {5.0} and {p.walks for p in plans} == {None}


@pytest.mark.parametrize("argv, message", [
    (["store", "--runs", "1"], "--runs 1 is fewer than the "),
    (["store", "--runs", "0"], "0 is not a positive count"),
    (["store", "--jobs", "many"], "'many' is not a whole number"),
    (["store", "--time", "-1"], "-1 is not a positive, finite number"),
    (["nosuch"], "unknown component 'nosuch'"),
    (["store", "--mutant", "nosuch"], "carries mutant 'nosuch'"),
])
def test_bad_options_are_one_line_and_exit_2(argv, message, capsys):
    assert main(["swarm", "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def _children(pid: int) -> set[int]:
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.add(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("how, code", [("ctrl-c", 130), ("sigterm", 143), ("sigkill", -9)])
def test_an_interrupted_swarm_leaves_no_worker(how, code, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "kubemc.checker.cli", "swarm", "informer",
                             "--runs", "8", "--jobs", "2", "--time", "120", "--quiet",
                             "--trace-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        workers = set()
        while len(workers) < 2 and time.monotonic() < deadline:
            workers = _children(proc.pid)
            time.sleep(0.1)
        assert len(workers) == 2, "the swarm's two workers never started"
        time.sleep(0.5)  # let them get into their runs
        if how == "ctrl-c":  # a terminal's Ctrl-C: SIGINT to the whole process group
            os.killpg(proc.pid, signal.SIGINT)
        elif how == "sigterm":
            proc.send_signal(signal.SIGTERM)
        else:  # no cleanup runs in the parent: the workers are sent SIGTERM as it dies
            proc.kill()
        _, err = proc.communicate(timeout=30)
        deadline = time.monotonic() + 10
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    survivors = [w for w in workers if _alive(w)]
    for w in survivors:  # so a failure here leaves nothing running either
        os.kill(w, signal.SIGKILL)
    assert proc.returncode == code, err.decode()
    assert "Traceback" not in err.decode()
    assert not survivors

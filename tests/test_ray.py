"""``kubemc check --ray`` on a real Ray cluster: a local head on loopback.

The fixture starts one with ``checker.ray_local.local_head`` (every port
free, its own temporary directory, only 127.0.0.1; in teardown its own
processes ended — and only those — and a process left fails the test).
Under CI=true a missing Ray fails the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import conftest
from kubemc.checker.components import component
from kubemc.checker.explore import explore
from kubemc.checker.ray_local import free_port, local_head
from kubemc.checker.run import targeted


def _require_ray():
    try:
        import ray  # noqa: F401
        found = shutil.which("ray") is not None
    except ImportError:
        found = False
    conftest.require(found, "Ray", "pip install 'kubemc[ray]' (or -e '.[test]')")


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    """A fresh one-node Ray cluster on loopback (2 CPUs), its temporary
    directory under pytest's."""
    _require_ray()
    with local_head(str(tmp_path_factory.mktemp("ray")), cpus=2) as head:
        yield head


def _kubemc(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "kubemc.checker.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": os.getcwd(), **(env or {})})


def test_ray_search_holds_with_the_one_process_count(ray_head, tmp_path):
    out = _kubemc("check", "store", "--bound", "max_revision=5", "--ray", ray_head.address,
                  "--workers", "2", "--json", "--quiet", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)
    model = next(m for m in component("store").models if m.name == "mvcc")
    one = explore(model.machine(), model.properties)
    assert row["model"] == "mvcc" and row["verdict"] == "holds"
    assert row["figures"]["parallel_backend"] == "ray"
    assert row["figures"]["parallel_workers"] == 2
    assert (row["figures"]["distinct_states"], row["figures"]["transitions"],
            row["figures"]["depth"]) == (one.stats.states, one.stats.transitions,
                                         one.stats.depth)


@pytest.mark.parametrize("comp,mutant,extra,model_name,bounds", [
    # --bound max_log picks raft (the election model shares the mutant, not the bound)
    ("store", "double_vote", ["--bound", "max_log=1"], "raft", {"max_log": 1}),
    # a leads_to lasso, judged on the graph gathered from the actors
    ("controllers", "misses_content_events", [], "namespace", {}),
])
def test_ray_search_finds_the_one_process_counterexample(ray_head, tmp_path, comp, mutant,
                                                          extra, model_name, bounds):
    out = _kubemc("check", comp, "--mutant", mutant, *extra, "--json", "--quiet", "--ray",
                  ray_head.address, "--workers", "2", "--trace-dir", "ray", cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    (row,) = json.loads(out.stdout)
    assert row["model"] == model_name and row["figures"]["parallel_backend"] == "ray"
    model = next(m for m in component(comp).models if m.name == model_name)
    cex = explore(model.machine(mutant, **bounds), targeted(model, mutant)).counterexample
    assert row["prop"] == cex.prop.name == model.mutants[mutant].violates
    trace = json.loads((tmp_path / row["trace"]).read_text())
    assert len(trace["states"]) == len(cex.steps) + 1
    assert [s["#meta"].get("action") for s in trace["states"][1:]] == \
        [step.name for step, _ in cex.steps]
    assert trace.get("loop") == cex.loop
    replay = _kubemc("trace", "replay", row["trace"], cwd=tmp_path)
    assert replay.returncode == 1, replay.stdout + replay.stderr


def _actors(head) -> list[int]:
    """The head's actor processes (Ray titles them after the class); only
    this head's, as another test may run its own."""
    out = []
    for pid in head.processes():
        with contextlib.suppress(OSError):
            if b"RayShard" in Path(f"/proc/{pid}/cmdline").read_bytes():
                out.append(pid)
    return out


def test_sigterm_mid_search_ends_the_actors(ray_head, tmp_path):
    """raft at its defaults runs for minutes: SIGTERM it once its actors run."""
    proc = subprocess.Popen([sys.executable, "-m", "kubemc.checker.cli", "check", "store", "--ray",
                             ray_head.address, "--workers", "2", "--quiet"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        deadline = time.monotonic() + 120
        while not _actors(ray_head) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _actors(ray_head), "the actors never started"
        time.sleep(2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and err.strip() == "kubemc: interrupted"
    deadline = time.monotonic() + 30
    while _actors(ray_head) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _actors(ray_head) == []


def test_unreachable_address_is_one_line_and_exit_3(tmp_path):
    _require_ray()
    out = _kubemc("check", "store", "--ray", f"127.0.0.1:{free_port()}", cwd=tmp_path)
    assert out.returncode == 3
    assert out.stderr.count("\n") == 1 and "no Ray cluster answers" in out.stderr


@pytest.mark.parametrize("address", ["nowhere", "127.0.0.1:", "host:99999", ":6379",
                                     "a b:1"])
def test_malformed_address_is_exit_2(address, capsys):
    from kubemc.checker.cli import main

    assert main(["check", "store", "--ray", address]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expected HOST:PORT" in err


def test_ray_not_installed_names_the_extra(tmp_path):
    fake = tmp_path / "noray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no ray here')\n")
    out = _kubemc("check", "store", "--ray", "127.0.0.1:6379", cwd=tmp_path,
                  env={"PYTHONPATH": f"{fake.parent}{os.pathsep}{os.getcwd()}"})
    assert out.returncode == 3
    assert out.stderr.count("\n") == 1 and "pip install 'kubemc[ray]'" in out.stderr

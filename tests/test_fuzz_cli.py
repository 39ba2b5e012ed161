"""Fuzzing the CLI entry points that read input: ``trace show``, ``trace
replay`` and ``check --bound``. Whatever the input, a run ends within a time
limit, with an exit code of the table (``checker.errors``), at most one line
on stderr, and never a traceback.

Runs are in-process through ``checker.cli.main`` (fast); a few end-to-end
cases go through a subprocess, as a user would.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubemc.checker.cli import main
from kubemc.checker.components import COMPONENTS

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = [ROOT / "traces" / "store" / "mvcc-revision_monotonic-explore-delete_keeps_revision.itf.json",
           ROOT / "traces" / "store" / "raft-log_matching-explore-no_consistency_check.itf.json",
           ROOT / "traces" / "informer" / "workqueue-workqueue_exclusive-explore-no_processing_set.itf.json",
           ROOT / "traces" / "cni" / "cni-node_to_pod_without_nat-z3-missing_route.itf.json"]
#: not a performance figure: a run that has not ended by then is wedged
LIMIT_SECONDS = 60
FUZZ = settings(max_examples=40, derandomize=True, deadline=None,
                suppress_health_check=list(HealthCheck))


class Wedged(BaseException):
    """Raised by the alarm; a BaseException so that the CLI's catch-all for
    internal errors cannot swallow it."""


def run_cli(argv, capsys, allowed):
    """Run the CLI in-process; assert the contract; return (code, out, err)."""
    def wedged(signum, frame):
        raise Wedged(f"kubemc {' '.join(argv)} ran past {LIMIT_SECONDS} s")
    previous = signal.signal(signal.SIGALRM, wedged)
    signal.alarm(LIMIT_SECONDS)
    try:
        code = main(argv)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    out, err = capsys.readouterr()
    assert code in allowed, (argv, code, err)
    assert "Traceback" not in err and "Traceback" not in out
    assert err.count("\n") <= 1, err
    if code == 2:
        assert err.startswith("kubemc: ") and err.endswith("\n")
    return code, out, err


# --- random bytes ----------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=2000))
def test_random_bytes_as_a_trace(tmp_path_factory, capsys, data):
    path = tmp_path_factory.mktemp("bytes") / "t.itf.json"
    path.write_bytes(data)
    for command in ("show", "replay"):
        run_cli(["trace", command, str(path)], capsys, {2})


# --- mutated valid traces ---------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10 ** 20, 10 ** 20) | st.text(max_size=8)
    | st.sampled_from([{"#bigint": "x"}, {"#map": [[1]]}, {"#set": 3}, {"#tup": None},
                       {"#bigint": "9" * 2000}, {"#unserializable": 1}]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["#tup", "#set", "#map", "#meta", "action", "params", "a", "b"]),
        inner, max_size=3),
    max_leaves=12)


def _places(node, path=()):
    """Every (container path, key) in a JSON document."""
    items = node.items() if isinstance(node, dict) else \
        enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        yield path, key
        yield from _places(child, path + (key,))


@st.composite
def mutated_traces(draw):
    trace = json.loads(draw(st.sampled_from(SAMPLES)).read_text())
    for _ in range(draw(st.integers(1, 3))):
        places = list(_places(trace))
        path, key = places[draw(st.integers(0, len(places) - 1))]
        node = trace
        for k in path:
            node = node[k]
        if draw(st.booleans()) and isinstance(node, dict):
            del node[key]
        else:
            node[key] = draw(json_values)
    return trace


@FUZZ
@given(trace=mutated_traces())
def test_mutated_traces_shown_and_replayed(tmp_path_factory, capsys, trace):
    path = tmp_path_factory.mktemp("mutated") / "t.itf.json"
    path.write_text(json.dumps(trace))
    run_cli(["trace", "show", str(path)], capsys, {0, 2})
    # 0: replayed, the violation no longer reproduces; 1: it does
    run_cli(["trace", "replay", str(path)], capsys, {0, 1, 2})


# --- random --bound values ----------------------------------------------------

BOUND_NAMES = sorted({k for c in COMPONENTS.values() for m in c.models
                      for k in m._reference()} | {"nope"})
bound_values = st.one_of(
    st.integers(-5, 60).map(str), st.integers(-10 ** 40, 10 ** 40).map(str),
    st.sampled_from(["true", "false", "", ",", "1e23", "inf", "nan", "0x10", "3.5",
                     "Restart", "Restart,DropMessage", "a,b,c,d,e,f,g,h,i,j,k,l,m,n"]),
    st.text(alphabet="0123456789-,=aez.", max_size=12))


@settings(FUZZ, max_examples=30)
@given(key=st.sampled_from(BOUND_NAMES), value=bound_values)
def test_random_bounds_to_check(tmp_path_factory, capsys, key, value):
    trace_dir = tmp_path_factory.mktemp("traces")
    # --max-states keeps an accepted bound's run short; 4 is that verdict
    run_cli(["check", "--bound", f"{key}={value}", "--max-states", "20", "--quiet",
             "--trace-dir", str(trace_dir)], capsys, {0, 1, 2, 4, 5})


def test_every_model_builds_and_steps_at_its_ceilings(tmp_path, capsys):
    """The ceilings are what the fuzz test may reach: at each one alone, a
    model is refused by its own checks (exit 2) or runs. ``check COMPONENT
    --bound KEY=TOP`` runs every model of the component that has KEY, so
    models sharing a bound and its ceiling ask for the very same run: each
    distinct command runs once (issue 9)."""
    from kubemc.checker.bounds import ceiling
    commands = {}
    for comp in COMPONENTS.values():
        for model in comp.models:
            for key, values in model._reference().items():
                if isinstance(values[0], int) and not isinstance(values[0], bool):
                    top = ceiling(key, values, model.ceilings)
                    commands[(comp.name, key, top)] = None
    assert commands
    for name, key, top in commands:
        run_cli(["check", name, "--bound", f"{key}={top}",
                 "--max-states", "20", "--quiet", "--trace-dir", str(tmp_path)],
                capsys, {0, 1, 2, 4, 5})


# --- end to end, as a user runs it ------------------------------------------


@pytest.mark.parametrize("argv, message", [
    (["check", "store", "--bound", "servers=40"], "servers=40 is outside 0..12"),
    (["check", "store", "--bound", "max_term=1e23"], "max_term takes a whole number"),
    (["trace", "replay", "x" * 5000], "cannot read"),
])
def test_end_to_end_one_line_and_exit_2(argv, message):
    proc = subprocess.run([sys.executable, "-m", "kubemc.checker.cli", *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=LIMIT_SECONDS)
    assert proc.returncode == 2
    assert message in proc.stderr and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr


def test_end_to_end_random_bytes(tmp_path):
    path = tmp_path / "noise.itf.json"
    path.write_bytes(bytes(range(256)) * 4)
    proc = subprocess.run([sys.executable, "-m", "kubemc.checker.cli", "trace", "replay",
                           str(path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=LIMIT_SECONDS)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "not UTF-8 text" in proc.stderr

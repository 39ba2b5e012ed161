"""ITF traces: the format, show, and replay of every committed counterexample."""

import json
from pathlib import Path

import pytest

from checker import itf, traces
from checker.cli import main
from checker.catalog.store import RAFT
from checker.explore import explore

COMMITTED = sorted((Path(__file__).resolve().parents[1] / "traces").rglob("*.itf.json"))


def test_values_round_trip_through_itf():
    value = {"a": (1, (2, 3)), "b": frozenset({1, 2}), "c": [True, "x"], "d": 2 ** 70}
    encoded = itf.encode(value)
    assert encoded["a"] == {"#tup": [1, {"#tup": [2, 3]}]}
    assert encoded["b"] == {"#set": [1, 2]}
    assert encoded["d"] == {"#bigint": str(2 ** 70)}
    assert itf.decode(json.loads(json.dumps(encoded))) == {
        "a": (1, (2, 3)), "b": frozenset({1, 2}), "c": (True, "x"), "d": 2 ** 70}
    assert itf.encode({1: "x"}) == {"#map": [[1, "x"]]}


def test_a_fresh_counterexample_is_written_shown_and_replayed(tmp_path):
    machine = RAFT.machine("double_vote")
    cex = explore(machine, RAFT.properties).counterexample
    path = traces.save(cex, tmp_path, model="raft", machine=machine, engine="explore",
                       command="kubemc check store --mutant double_vote")
    trace = json.loads(path.read_text())
    assert trace["#meta"]["format"] == "ITF"
    assert trace["#meta"]["property"] == "election_safety"
    assert trace["states"][1]["#meta"]["action"] == cex.steps[0][0].name
    assert set(trace["vars"]) == set(trace["states"][0]) - {"#meta"}
    text = traces.show(trace)
    assert "Step 1: Timeout" in text and "→" in text
    assert traces.replay(trace).reproduced
    # never overwrite: a second save goes to a new name
    again = traces.save(cex, tmp_path, model="raft", machine=machine, engine="explore")
    assert again != path and path.exists()


def test_replay_without_the_mutant_no_longer_reproduces(tmp_path):
    machine = RAFT.machine("double_vote")
    cex = explore(machine, RAFT.properties).counterexample
    trace = traces.to_itf(cex, model="raft", machine=machine, engine="explore")
    trace["#meta"]["mutant"] = "none"
    result = traces.replay(trace)
    assert not result.reproduced and "no longer reproduces" in result.message


def test_committed_traces_exist_for_every_mutant():
    from checker.components import COMPONENTS
    mutants = {m for c in COMPONENTS.values() for model in c.models for m in model.mutants}
    named = {json.loads(p.read_text())["#meta"]["mutant"] for p in COMMITTED}
    assert mutants <= named, f"no committed trace for {sorted(mutants - named)}"


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_committed_trace_replays_and_reproduces(path, capsys):
    assert main(["trace", "replay", str(path)]) == 1
    assert "is violated" in capsys.readouterr().out
    assert main(["trace", "show", str(path)]) == 0


@pytest.mark.parametrize("content, message", [
    ("not json", "not JSON"),
    ('{"states": 3}', "not an ITF trace"),
    ('{"vars": [], "states": [{}], "#meta": {}}', "not a kubemc trace"),
    ('{"vars": [], "states": [{}], "#meta": {"model": "nope", "property": "x"}}',
     "does not have"),
])
def test_bad_trace_files_are_one_line_and_exit_2(tmp_path, capsys, content, message):
    f = tmp_path / "t.itf.json"
    f.write_text(content)
    assert main(["trace", "replay", str(f)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_missing_trace_file(capsys):
    assert main(["trace", "show", "/nonexistent/trace.itf.json"]) == 2
    assert "no such file" in capsys.readouterr().err

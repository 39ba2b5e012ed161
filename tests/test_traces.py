"""ITF traces: the format, show, and replay of every committed counterexample."""

import json
from pathlib import Path

import pytest

from kubemc.checker import itf, traces
from kubemc.checker.cli import main
from kubemc.checker.catalog.store import RAFT
from kubemc.checker.explore import explore

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
    from kubemc.checker.components import COMPONENTS
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


# --- traces as input: each bad one is one line and exit 2 -------------------

VALID = Path(__file__).resolve().parents[1] / "traces" / "store" / \
    "mvcc-revision_monotonic-explore-delete_keeps_revision.itf.json"


def _edit(path, change):
    trace = json.loads(VALID.read_text())
    change(trace)
    path.write_text(json.dumps(trace))
    return path


def _set(*keys_and_value):
    *keys, last, value = keys_and_value

    def change(trace):
        node = trace
        for key in keys:
            node = node[key]
        node[last] = value
    return change


@pytest.mark.parametrize("change, message", [
    (_set("states", []), "'states' is empty"),
    (_set("states", 1, "#meta", "action", "Nope"), "Nope is not an action of mvcc"),
    (_set("states", 1, "#meta", "action", 7), "the action is an integer"),
    (_set("states", 1, "#meta", "params", [{"k": [1]}, 3]), "parameters of the wrong type"),
    (_set("states", 1, "#meta", "params", ["a"]), "parameters of the wrong type or number"),
    (_set("states", 1, "#meta", "params", 5), "'params' is an integer, not a list"),
    (_set("states", 1, "#meta", "params", [{"#set": [{"a": 1}]}]), "#set element"),
    (_set("#meta", "a string"), "'#meta' is a string, not an object"),
    (_set("states", 1, "#meta", "a string"), "state 1: '#meta' is a string"),
    (_set("#meta", "config", {"#map": [[1]]}), "not an object of bounds"),
    (_set("#meta", "config", "keys", {"#map": [[1]]}), "#map entry 0 is not a [key, value]"),
    (_set("#meta", "config", "keys", {"#map": 5}), "#map holds an integer, not a list"),
    (_set("#meta", "config", "keys", {"#bigint": "12a"}), "#bigint holds '12a'"),
    (_set("#meta", "config", "keys", {"#bigint": "9" * 5000}), "a #bigint of 5,000 digits"),
    (_set("#meta", "config", "keys", {"#tup": [1], "x": 2}), "#tup with other keys"),
    (_set("#meta", "config", "max_revision", 10 ** 12), "max_revision=1000000000000 is outside"),
    (_set("#meta", "config", "keys", "many"), "keys takes a whole number"),
    (_set("#meta", "config", "nope", 1), "mvcc has no bound 'nope'"),
    (_set("#meta", "model", 5), "#meta 'model' is not a string"),
    (_set("vars", [1]), "vars[0] is an integer"),
    (_set("loop", 99), "'loop' is 99, not the index of a state"),
    (_set("states", 1, "revision", None), "null is not an ITF value"),
])
def test_malformed_traces_are_one_line_and_exit_2(tmp_path, capsys, change, message):
    path = _edit(tmp_path / "t.itf.json", change)
    assert main(["trace", "replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("content, message", [
    ("[" * 100_000 + "]" * 100_000, "nested deeper than 100 levels"),
    ('{"vars": [], "states": [' + "[" * 500 + "]" * 500 + "]}", "nested deeper"),
    ('{"vars": [], "states": [{"x": ' + "9" * 50_000 + "}]}", "an integer of 50,000 digits"),
    ('{"vars": [], "states": [{"x": 1.5}]}', "1.5 is not an integer"),
    ('{"vars": [], "states": [{"x": NaN}]}', "NaN is not an ITF value"),
    (b"\xff\xfe\x00garbage", "not UTF-8 text"),
])
def test_hostile_files_are_one_line_and_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "t.itf.json"
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    for command in ("show", "replay"):
        assert main(["trace", command, str(path)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1


def test_a_symlink_loop_and_an_over_long_name_are_one_line_and_exit_2(tmp_path, capsys):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    for name, message in ((str(loop), "cannot read"),
                          (str(tmp_path / ("x" * 5000)), "cannot read")):
        assert main(["trace", "show", name]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and len(err) < 400


def test_show_reads_a_trace_of_another_tool_without_kubemc_fields(tmp_path, capsys):
    path = tmp_path / "apalache.itf.json"
    path.write_text(json.dumps({"#meta": {"format": "ITF", "varTypes": {"x": "Int"}},
                                "vars": ["x"], "states": [{"x": {"#bigint": "1"}},
                                                          {"x": {"#bigint": "2"}}]}))
    assert main(["trace", "show", str(path)]) == 0
    assert "x: 1 → 2" in capsys.readouterr().out


def test_two_writers_of_one_name_never_overwrite_each_other(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    name = tmp_path / "same.itf.json"
    with ThreadPoolExecutor(8) as pool:
        written = list(pool.map(lambda n: itf.write(name, {"n": n}), range(16)))
    assert len(set(written)) == 16
    assert sorted(json.loads(p.read_text())["n"] for p in written) == list(range(16))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)


def test_exclusive_writes_without_hard_links_still_never_overwrite(tmp_path, monkeypatch):
    """A file system without hard links (vfat): the copy path keeps names exclusive."""
    import errno
    import os

    import pytest

    from kubemc.checker import itf

    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    first = itf.write_text(tmp_path / "t.itf.json", "one")
    second = itf.write_text(tmp_path / "t.itf.json", "two")
    assert (first.name, second.name) == ("t.itf.json", "t-1.itf.json")
    assert first.read_text() == "one" and second.read_text() == "two"
    with pytest.raises(FileExistsError):
        itf.write_text(tmp_path / "t.itf.json", "three", series=False)
    assert first.read_text() == "one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t-1.itf.json", "t.itf.json"]

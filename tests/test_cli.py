"""The CLI's contract: exit codes, one-line errors, and the listing commands."""

import json

import pytest

from checker.cli import main


@pytest.mark.parametrize("argv, message", [
    (["check", "nosuch"], "unknown component 'nosuch'"),
    (["check", "store", "--mutant", "nosuch"], "carries mutant 'nosuch'"),
    (["check", "store", "--bound", "max_term"], "expected KEY=VALUE"),
    (["check", "store", "--bound", "bogus=1"], "no selected model has the bounds bogus"),
    (["check", "store", "--engine", "tlc"], "invalid choice"),
    (["bench", "nosuch"], "unknown benchmark"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_usage_is_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_bound_value_is_reported_not_raised(capsys):
    assert main(["check", "store", "--bound", "servers=0", "--quiet"]) == 2
    assert "bad bounds for raft" in capsys.readouterr().err


def test_properties_have_provenance_and_every_one_a_mutant(capsys):
    assert main(["properties", "--json"]) == 0
    props = json.loads(capsys.readouterr().out)
    assert all(p["provenance"] and p["statement"] for p in props)
    assert main(["mutants", "--json"]) == 0
    mutants = json.loads(capsys.readouterr().out)
    violated = {m["violates"] for m in mutants}
    missing = {p["name"] for p in props} - violated
    assert not missing, f"properties without a mutant: {sorted(missing)}"


def test_a_mutant_run_exits_1_and_writes_a_replayable_trace(tmp_path, capsys):
    rc = main(["check", "store", "--mutant", "double_vote", "--quiet", "--json",
               "--trace-dir", str(tmp_path), "--engine", "explore"])
    assert rc == 1
    results = json.loads(capsys.readouterr().out)
    assert {r["verdict"] for r in results} == {"violated"}
    for r in results:
        assert main(["trace", "replay", r["trace"]]) == 1


def test_the_mvcc_model_holds_through_the_cli(capsys):
    assert main(["check", "store", "--bound", "keys=2", "--quiet"]) == 0
    assert "store/mvcc [explore]: holds" in capsys.readouterr().out

"""The CLI's contract: exit codes, one-line errors, and the listing commands."""

import json

import pytest

from kubemc.checker.cli import main


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
    # A cover's teeth is being unreached: explore reports an unreached cover
    # as vacuous (tests/test_liveness.py), and every model's default run
    # reaches its covers. Every other property needs a seeded bug.
    missing = {p["name"] for p in props if p["kind"] != "cover"} - violated
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


# --- the one exit-code table (checker.errors) -----------------------------


def test_a_search_stopped_early_is_undecided_exit_4(capsys):
    assert main(["check", "store", "--max-states", "30", "--quiet"]) == 4
    out = capsys.readouterr().out
    assert "UNDECIDED" in out and "stopped at --max-states 30" in out


def test_random_runs_that_miss_the_mutant_are_undecided_exit_4(tmp_path, capsys, monkeypatch):
    from kubemc.checker import stateful

    # what a miss looks like (test_stateful runs a real one); the CLI's part
    # is the verdict and the exit code
    monkeypatch.setattr(stateful, "check",
                        lambda *a, **k: stateful.StatefulOutcome(examples=3, seconds=0.0))
    rc = main(["check", "store", "--engine", "hypothesis", "--mutant", "figure8_commit",
               "--quiet", "--trace-dir", str(tmp_path)])
    assert rc == 4
    assert "UNDECIDED" in capsys.readouterr().out and not list(tmp_path.iterdir())


def test_an_internal_error_is_exit_70_and_one_line_naming_the_traceback(monkeypatch, capsys):
    from kubemc.checker import run as checker_run

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")
    monkeypatch.setattr(checker_run, "check", broken)
    assert main(["check", "store", "--quiet"]) == 70
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error (ZeroDivisionError: a bug)" in err
    report = err.split("report it with ")[1].split(",")[0]
    text = open(report).read()
    assert "Traceback" in text and "ZeroDivisionError" in text
    import os
    os.unlink(report)


@pytest.mark.parametrize("argv, message", [
    (["--bound", "servers=40"], "raft: servers=40 is outside 0..12"),
    (["--bound", "max_term=1e23"], "max_term takes a whole number from 0 to 48, not '1e23'"),
    (["--bound", "max_term=-1"], "max_term=-1 is outside 0..48"),
    (["--bound", "symmetry=3"], "symmetry is true or false"),
    (["--engine", "explore", "--seed", "3"], "--seed applies to --engine hypothesis"),
    (["--engine", "explore", "--profile", "deep"], "--profile applies to --engine hypothesis"),
    (["--engine", "hypothesis", "--max-states", "5"], "--max-states applies to --engine explore"),
    (["--engine", "z3", "--bound", "max_term=2"], "--bound applies to --engine explore or hypothesis"),
    (["--max-states", "-5"], "-5 is not a positive count"),
    (["--max-states", "0"], "0 is not a positive count"),
])
def test_bounds_and_options_refused_before_any_work(argv, message, capsys):
    assert main(["check", "store", "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_options_for_one_of_the_engines_of_all_are_accepted():
    from kubemc.checker.check_options import refuse_inapplicable

    refuse_inapplicable(["explore", "hypothesis", "z3"],
                        {"--seed": True, "--max-states": True, "--bound": True,
                         "--profile": True})


def test_a_trace_dir_that_is_a_file_is_refused_before_the_run(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("keep me")
    for trace_dir in (target, target / "below"):
        assert main(["check", "store", "--mutant", "double_vote", "--engine", "explore",
                     "--quiet", "--trace-dir", str(trace_dir)]) == 2
        err = capsys.readouterr().err
        assert "--trace-dir" in err and "not a directory" in err and err.count("\n") == 1
    assert target.read_text() == "keep me"


def test_a_read_only_trace_dir_is_refused(tmp_path, capsys, monkeypatch):
    import os
    # root writes anywhere, so the permission check is what is tested
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    assert main(["check", "store", "--mutant", "double_vote", "--engine", "explore",
                 "--quiet", "--trace-dir", str(tmp_path)]) == 2
    assert "is not writable" in capsys.readouterr().err


def test_a_trace_that_cannot_be_written_still_prints_the_violation(tmp_path, capsys,
                                                                   monkeypatch):
    import errno
    import os

    def full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, "link", full)
    rc = main(["check", "store", "--mutant", "double_vote", "--engine", "explore",
               "--quiet", "--trace-dir", str(tmp_path)])
    assert rc == 3  # not 1: no trace was written
    captured = capsys.readouterr()
    assert "VIOLATED election_safety" in captured.out and "NO trace was written" in captured.out
    assert "No space left on device" in captured.err and captured.err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone too


def test_the_exit_code_ranks_outcomes():
    from kubemc.checker.run import Result
    from kubemc.checker.verdicts import exit_code

    def row(verdict, trace=None, trace_error=""):
        return Result("c", "m", "explore", verdict, 0.0, trace=trace, trace_error=trace_error)
    assert exit_code([row("holds")]) == 0
    assert exit_code([row("holds"), row("undecided")]) == 4
    assert exit_code([row("undecided"), row("vacuous")]) == 5
    assert exit_code([row("vacuous"), row("violated", trace_error="full")]) == 3
    assert exit_code([row("violated", trace_error="full"), row("violated", "t.itf.json")]) == 1
    # a violation claimed with no trace and no failed write is no evidence: never 1
    assert exit_code([row("violated")]) == 4


def test_z3_alone_on_a_component_without_an_encoding_is_refused(capsys):
    """An empty z3 run must not read as a proof (it printed nothing and exited 0)."""
    assert main(["check", "cri", "--engine", "z3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no encoding for cri" in err and "--engine explore" in err

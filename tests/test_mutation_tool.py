"""tools/mutate.py: each operator makes the change it names, seeded bugs are
left alone, sampling is deterministic, and one real mutant of the cri model
is killed by explore in a private copy that is removed afterwards."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("kubemc_mutate", ROOT / "tools" / "mutate.py")
mutate = importlib.util.module_from_spec(_spec)
sys.modules["kubemc_mutate"] = mutate
_spec.loader.exec_module(mutate)

SNIPPET = '''\
def f(xs, n):
    """Docstring."""
    total = 0
    total = n
    head, n = xs
    if n == 0 and xs:
        return xs[1]
    while total < 3:
        total += 1
    return [x for x in xs if x in (1, 2)]
'''


def changes(operator: str, source: str = SNIPPET) -> set[tuple[str, str]]:
    return {(s.original, s.replacement) for s in mutate.sites_of("m.py", source, [operator])}


def test_delete_replaces_a_statement_with_pass_but_not_a_first_binding():
    got = changes("delete")
    assert ("total = n", "pass") in got
    assert ("total += 1", "pass") in got
    # `total = 0` first binds `total`: deleting it only makes a NameError
    assert not any(orig == "total = 0" for orig, _ in got)
    # nor one that first binds any of its names (`head`), though `n` is bound
    assert not any(orig == "head, n = xs" for orig, _ in got)
    assert not any("Docstring" in orig for orig, _ in got)


def test_compare_swaps_each_operator():
    got = changes("compare")
    assert {("n == 0", "n != 0"), ("total < 3", "total <= 3"),
            ("x in (1, 2)", "x not in (1, 2)")} <= got


def test_boolop_and_negate():
    assert ("n == 0 and xs", "n == 0 or xs") in changes("boolop")
    negated = changes("negate")
    assert ("n == 0 and xs", "not (n == 0 and xs)") in negated
    assert ("total < 3", "not total < 3") in negated
    assert ("x in (1, 2)", "not x in (1, 2)") in negated


def test_constant_index_and_return():
    constants = changes("constant")
    assert {("0", "1"), ("0", "-1"), ("3", "4"), ("3", "2")} <= constants
    # a subscript's constant is the index operator's, not the constant one's
    assert ("1", "2") in changes("index") and ("1", "0") in changes("index")
    assert ("return xs[1]", "return None") in changes("return")


def test_every_site_applies_to_a_module_that_still_parses():
    sites = mutate.sites_of("m.py", SNIPPET)
    assert {s.operator for s in sites} == set(mutate.OPERATORS)
    for site in sites:
        ast.parse(site.apply(SNIPPET))
        assert site.diff(SNIPPET).startswith("--- a/m.py")


def test_code_only_a_seeded_bug_runs_is_never_mutated():
    source = '''\
def step(self, s):
    if self.mutant == "skip_check":
        return s + 1
    if self.mutant != "keep":
        s = s - 1
    else:
        s = s * 7
    return s
'''
    sites = mutate.sites_of("m.py", source)
    touched = {s.original for s in sites}
    assert "return s + 1" not in touched and "1" in {s.original for s in sites
                                                      if s.line == 5}
    assert "s = s * 7" not in touched and "7" not in touched
    assert not any("mutant" in s.original and s.operator in ("compare", "negate")
                   for s in sites)
    # nor is the seeded bug's `if` deleted whole: without the bug it does nothing
    # (the store's second sample drew such a mutant, equivalent by construction)
    assert not any(s.operator == "delete" and s.original.startswith("if self.mutant")
                   for s in sites if s.line == 2)
    # an `if` with an else that runs without the bug is still deleted
    assert any(s.operator == "delete" and s.line == 4 for s in sites)


def test_sampling_is_deterministic_and_depends_on_the_seed():
    sites = mutate.component_sites("cri")
    first = [s.id for s in mutate.sample(sites, 10, 7, "cri")]
    assert first == [s.id for s in mutate.sample(sites, 10, 7, "cri")]
    assert first != [s.id for s in mutate.sample(sites, 10, 8, "cri")]
    assert len(set(first)) == 10
    assert len(mutate.sample(sites, None, 7, "cri")) == len(sites)


def test_exit_codes_classify():
    assert [mutate.classify(c) for c in (0, 1, 4, 5, 70, None, 2)] == [
        "survived", "killed", "undecided", "vacuous", "crashed", "timeout", "error"]


@pytest.mark.parametrize("argv, said", [
    (["nosuch"], "unknown component 'nosuch'"),
    (["cri", "--sample", "0"], "--sample must be at least 1"),
    (["cri", "--operators", "flip"], "unknown operator flip"),
])
def test_bad_input_is_one_line_and_exit_2(argv, said, capsys):
    assert mutate.main(argv) == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1


def test_a_planted_mutant_of_cri_is_killed_in_a_private_copy_then_removed():
    site = next(s for s in mutate.component_sites("cri", operators=["boolop"])
                if s.original == "s is None or s[3] != READY")
    with mutate.Workspace(ROOT) as ws:
        outcome = mutate.run_mutant(ws, "cri", site, ["explore"], timeout=120)
        restored = (ws.copy / site.path).read_text()
        tmp = ws.tmp
    assert outcome.outcome == "killed" and outcome.engine == "explore"
    assert outcome.exits == {"explore": 1}
    # the outcome names what failed, read from `kubemc check --json`
    assert outcome.properties == ["cri/cri_no_running_outside_ready_sandbox"]
    assert outcome.message.startswith(
        "explore: cri violates cri_no_running_outside_ready_sandbox (shortest counterexample")
    assert site.original in restored and not tmp.exists()
    table = mutate.table([outcome], ["cri"])
    assert table[0]["killed"] == 1 and table[0]["kill_rate"] == 100.0


def test_a_signal_stops_the_run_and_removes_the_copy(tmp_path):
    """SIGINT sent to a run started in the background (SIGINT ignored, as a
    shell's background job has it) still stops it, and the copy is gone."""
    import os
    import signal
    import subprocess
    import time

    env = dict(os.environ, TMPDIR=str(tmp_path))
    proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / "mutate.py"), "cri",
                             "--sample", "1", "--engines", "explore"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    deadline = time.monotonic() + 20
    while not list(tmp_path.glob("kubemc-mutate-*/repo/model")):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "interrupted" in err
    assert not list(tmp_path.glob("kubemc-mutate-*"))


def test_display_functions_and_the_check_controller_harness_are_not_mutated():
    source = "def view(self, s):\n    return s[0] + 1\n\ndef step(s):\n    return s[0] + 1\n"
    assert {s.line for s in mutate.sites_of("m.py", source)} == {5}
    assert "model/controllers/usercontroller.py" not in mutate.component_files("controllers")
    assert "model/controllers/frozen.py" not in mutate.component_files("controllers")
    assert "model/controllers/replicaset.py" in mutate.component_files("controllers")


def _report(site, source: str, outcome: str = "survived") -> dict:
    from dataclasses import asdict
    return {"meta": {}, "table": [], "mutants": [
        {"site": asdict(site), "component": "cri", "outcome": outcome, "engine": None,
         "exits": {}, "seconds": 0.0, "message": "", "diff": site.diff(source)}]}


def test_recheck_finds_a_survivor_again_after_code_above_it_moved(tmp_path):
    """--recheck locates an old report's mutant by its text, not its line: a
    line inserted above moves it, and it is still found (and only it)."""
    import json

    path = "model/cri/machine.py"
    source = (ROOT / path).read_text()
    site = next(s for s in mutate.sites_of(path, source, ["compare"]))
    (tmp_path / "model" / "cri").mkdir(parents=True)
    moved = "# a new line above\n" + source
    (tmp_path / path).write_text(moved)
    report = tmp_path / "r.json"
    report.write_text(json.dumps(_report(site, source)))
    chosen, gone = mutate.relocate(report, tmp_path)
    assert gone == [] and len(chosen["cri"]) == 1
    (found,) = chosen["cri"]
    assert found.line == site.line + 1 and found.apply(moved) == "# a new line above\n" + \
        site.apply(source)
    # a detected mutant is not checked again
    report.write_text(json.dumps(_report(site, source, outcome="killed")))
    assert mutate.relocate(report, tmp_path) == ({}, [])


def test_recheck_reports_a_mutant_whose_code_is_gone(tmp_path):
    import json

    path = "model/cri/machine.py"
    source = (ROOT / path).read_text()
    site = next(s for s in mutate.sites_of(path, source, ["compare"]))
    (tmp_path / "model" / "cri").mkdir(parents=True)
    (tmp_path / path).write_text(source.replace(site.original, "True"))
    report = tmp_path / "r.json"
    report.write_text(json.dumps(_report(site, source)))
    chosen, gone = mutate.relocate(report, tmp_path)
    assert chosen == {} and gone == [json.loads(report.read_text())["mutants"][0]["site"]]


def test_recheck_refuses_a_file_that_is_no_report(tmp_path, capsys):
    bad = tmp_path / "r.json"
    bad.write_text("[1, 2]")
    assert mutate.main(["--recheck", str(bad)]) == 2
    assert mutate.main(["--recheck", str(bad), "cri"]) == 2
    assert mutate.main([]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all(line.startswith("mutate: ") for line in err)


def _row(model, verdict, prop, detail=""):
    return {"component": "store", "model": model, "engine": "explore", "verdict": verdict,
            "prop": prop, "detail": detail}


def test_a_finding_names_the_property_and_engine_from_the_json_rows():
    import json

    rows = [_row("raft", "holds", None), _row("election", "violated", "counted_votes",
                                                "shortest counterexample: 5 steps"),
            _row("mvcc", "violated", "range_answer")]
    got = mutate.finding("hypothesis", 1, json.dumps(rows), "")
    assert got.engine == "hypothesis"
    assert got.properties == ("election/counted_votes", "mvcc/range_answer")
    assert got.message == ("hypothesis: election violates counted_votes (shortest "
                           "counterexample: 5 steps); also mvcc/range_answer")
    # exit 5: the cover never reached, not the rows that held
    vacuous = [_row("raft", "holds", None), _row("raft", "vacuous", "leader_elected")]
    got = mutate.finding("explore", 5, json.dumps(vacuous), "")
    assert got.properties == ("raft/leader_elected",)
    assert got.message == "explore: raft never reaches leader_elected"


def test_a_crash_or_output_that_is_no_json_keeps_the_checks_own_words():
    import json

    crash = "kubemc: internal error in election step Timeout(0): see crash-1.txt"
    got = mutate.finding("explore", 70, "", "Traceback is in the file\n" + crash)
    assert got.properties == () and got.message.endswith(crash)
    got = mutate.finding("z3", 2, "not json", "kubemc: bad bound")
    assert got.properties == () and got.message == "z3: not json / kubemc: bad bound"
    # rows that do not match the exit code do not invent a property
    assert mutate.finding("explore", 1, json.dumps([_row("raft", "holds", None)]),
                          "").properties == ()


def _args(argv, report=None):
    args = mutate.parse(argv if report is None else ["--recheck", str(report), *argv])
    mutate.validate(args)
    return args


def test_recheck_keeps_the_reports_timeout_engines_and_baseline(tmp_path):
    import json

    report = tmp_path / "r.json"
    source = (ROOT / "model/cri/machine.py").read_text()
    site = next(s for s in mutate.sites_of("model/cri/machine.py", source, ["compare"]))
    body = _report(site, source)
    body["meta"] = {"timeout": 900.0, "engines": ["explore", "z3"], "baseline": False,
                    "seed": 2029}
    report.write_text(json.dumps(body))
    args = _args([], report)
    assert (args.timeout, args.engines, args.baseline, args.seed) == (
        900.0, ["explore", "z3"], False, 2029)
    assert sorted(args.from_report) == ["baseline", "engines", "seed", "timeout"]
    # the command line wins over the report
    args = _args(["--timeout", "120", "--engines", "explore", "--baseline"], report)
    assert (args.timeout, args.engines, args.baseline) == (120.0, ["explore"], True)
    assert args.from_report == ["seed"]
    # a report of an older tool (no baseline recorded) and a fresh run: defaults
    body["meta"] = {"timeout": 300}
    report.write_text(json.dumps(body))
    args = _args([], report)
    assert (args.timeout, args.engines, args.baseline) == (
        300.0, ["explore", "hypothesis", "z3"], True)
    args = _args(["cri"])
    assert (args.timeout, args.baseline, args.seed, args.from_report) == (600.0, True, 0, [])


def test_recheck_refuses_a_report_whose_settings_are_not_the_tools(tmp_path, capsys):
    import json

    source = (ROOT / "model/cri/machine.py").read_text()
    site = next(s for s in mutate.sites_of("model/cri/machine.py", source, ["compare"]))
    body = _report(site, source)
    body["meta"] = {"timeout": "soon"}
    report = tmp_path / "r.json"
    report.write_text(json.dumps(body))
    assert mutate.main(["--recheck", str(report)]) == 2
    err = capsys.readouterr().err
    assert "meta.timeout is 'soon'" in err and err.count("\n") == 1
    # ... unless the command line gives it
    assert _args(["--timeout", "60"], report).timeout == 60.0

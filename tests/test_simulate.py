"""The simulate engine (``kubemc check --engine simulate``): random walks with
explore's property checks. What a verdict of random walks may say (holds:
no violation on the walks; an unreached cover or any liveness property:
undecided, exit 4), that every component's seeded bug is caught with a
trace that replays, that a seed reproduces its trace, and that its options
are refused with other engines."""

import json
import os
import shlex
import subprocess
import sys

import pytest

from kubemc.checker import simulate
from kubemc.checker.cli import main
from kubemc.checker.components import component
from kubemc.checker.run import check, targeted

#: one seeded bug per component that random walks reach within a few walks
#: (a scan of every mutant at seed 1: these are caught in under a second)
QUICK_MUTANTS = [
    ("store", "txn_ignores_compare"),
    ("cni", "restart_forgets_cidrs"),
    ("proxy", "stale_affinity_rules"),
    ("apiserver", "update_echoes_resource_version"),
    ("informer", "fifo_drops_update"),
    ("controllers", "no_expectations"),
    ("scheduler", "sidecar_request_max"),
    ("cri", "stop_sandbox_leaves_containers"),
    ("kubelet", "never_policy_restarts"),
]


def _run(argv, capsys):
    rc = main(["check", *argv, "--engine", "simulate", "--quiet", "--json"])
    return rc, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("comp, mutant", QUICK_MUTANTS)
def test_a_mutant_of_every_component_is_caught_with_a_replaying_trace(comp, mutant, tmp_path,
                                                                      capsys):
    rc, rows = _run([comp, "--mutant", mutant, "--seed", "1", "--walks", "200",
                     "--trace-dir", str(tmp_path)], capsys)
    assert rc == 1
    caught = [r for r in rows if r["verdict"] == "violated"]
    assert caught, rows
    for row in caught:
        trace = json.loads(open(row["trace"]).read())
        meta = trace["#meta"]
        assert meta["engine"] == "simulate" and meta["seed"] == 1
        assert "--seed 1 --walks" in meta["command"] and "--engine simulate" in meta["command"]
        assert main(["trace", "replay", row["trace"]]) == 1


def test_a_liveness_bug_is_caught_as_a_lasso_that_replays(tmp_path, capsys):
    rc, rows = _run(["informer", "--mutant", "watch_not_reopened", "--seed", "1",
                     "--walks", "50", "--trace-dir", str(tmp_path)], capsys)
    assert rc == 1
    (row,) = [r for r in rows if r["verdict"] == "violated"]
    assert row["detail"].startswith("on walk ") and "lasso" in row["detail"]
    assert "loop" in json.loads(open(row["trace"]).read())
    assert main(["trace", "replay", row["trace"]]) == 1


def test_the_correct_model_holds_when_no_cover_or_liveness_is_left_open(capsys):
    rc, rows = _run(["cri", "--seed", "1", "--walks", "150"], capsys)
    (row,) = rows
    assert (rc, row["verdict"]) == (0, "holds")
    f = row["figures"]
    assert f["walks"] == 150 and f["steps"] > 0 and f["distinct_states"] > 1
    assert f["states_per_second"] > 0 and f["seed"] == 1
    assert f["covers_never_reached"] == [] and f["covers_reached"]
    assert row["detail"].startswith("no violation on 150 walks")


def test_an_unreached_cover_is_undecided_not_vacuous(capsys):
    rc, rows = _run(["cri", "--seed", "1", "--walks", "5", "--depth", "1"], capsys)
    (row,) = rows
    assert (rc, row["verdict"]) == (4, "undecided")
    assert "cover not reached" in row["detail"] and "not vacuous" in row["detail"]
    assert row["prop"] in row["figures"]["covers_never_reached"]


def test_liveness_is_never_reported_as_holding(capsys):
    rc, rows = _run(["informer", "--seed", "2", "--walks", "30"], capsys)
    assert rc == 4
    for row in rows:
        assert row["verdict"] == "undecided"
        assert "liveness not decided by random walks" in row["detail"]
        assert row["figures"]["convergence"], "the convergence phases are counted"


def test_a_missed_mutant_is_undecided(tmp_path, capsys):
    rc, rows = _run(["store", "--mutant", "figure8_commit", "--seed", "1", "--walks", "3",
                     "--trace-dir", str(tmp_path)], capsys)
    assert rc == 4 and {r["verdict"] for r in rows} == {"undecided"}
    assert "did not reach the bug" in rows[0]["detail"] and not list(tmp_path.iterdir())


def test_the_same_seed_gives_the_same_trace_and_the_recorded_command_repeats_it(tmp_path):
    """In two fresh processes with different string hashing, as a user would
    run the command the trace records."""
    def run(directory, argv):
        env = dict(os.environ, PYTHONHASHSEED=str(len(directory.name)))
        subprocess.run([sys.executable, "-m", "kubemc.checker.cli", *argv, "--quiet",
                        "--trace-dir", str(directory)], env=env, check=False,
                        capture_output=True, timeout=120)
        (path,) = directory.iterdir()
        return path

    first = run(tmp_path / "a", ["check", "kubelet", "--engine", "simulate", "--mutant",
                                 "never_policy_restarts", "--seed", "11", "--time", "30"])
    again = run(tmp_path / "bb", ["check", "kubelet", "--engine", "simulate", "--mutant",
                                  "never_policy_restarts", "--seed", "11", "--time", "30"])
    assert first.read_text() == again.read_text()
    command = shlex.split(json.loads(first.read_text())["#meta"]["command"])
    assert command[:2] == ["kubemc", "check"] and "--time" not in command
    repeated = run(tmp_path / "ccc", command[1:])
    assert json.loads(repeated.read_text())["states"] == json.loads(first.read_text())["states"]


def test_another_seed_takes_other_walks():
    model = component("store").models[0]
    machine = model.hypothesis_machine()
    outs = [simulate.simulate(machine, model.properties, seed=s,
                              budget=simulate.Budget(walks=5, depth=30)) for s in (1, 2)]
    assert outs[0].stats.steps == 150 == outs[1].stats.steps
    assert outs[0].coverage != outs[1].coverage or outs[0].stats != outs[1].stats


def test_no_seed_draws_one_and_records_it(capsys):
    rows = check(["cri"], engines=["simulate"], simulation=simulate.Budget(walks=2, depth=3))
    assert isinstance(rows[0].figures["seed"], int)


def test_a_time_budget_stops_the_walks():
    model = component("cri").models[0]
    out = simulate.simulate(model.machine(), model.properties, seed=3,
                            budget=simulate.Budget(seconds=0.2))
    assert out.stopped == "time" and out.stats.walks >= 1 and out.counterexample is None


def test_the_progress_line_reports_walks_steps_distinct_states_and_rate():
    model = component("store").models[0]
    lines = []
    simulate.simulate(model.machine(), model.properties, seed=1,
                      budget=simulate.Budget(walks=20, depth=50),
                      progress=lambda st: lines.append(simulate.progress_line("simulate raft",
                                                                              st)),
                      progress_every=0.0)
    assert len(lines) == 20
    assert lines[-1].startswith("simulate raft: 20 walks ")
    assert "distinct states" in lines[-1] and "states/s" in lines[-1]


def test_coverage_names_the_actions_taken_and_never_taken():
    model = component("cri").models[0]
    machine = model.machine()
    out = simulate.simulate(machine, targeted(model, None), seed=1,
                            budget=simulate.Budget(walks=3, depth=2))
    assert out.coverage.actions and out.coverage.actions < set(machine.tags)
    assert {p.name for p in model.properties if p.kind == "invariant"} <= out.coverage.premises


@pytest.mark.parametrize("argv, message", [
    (["--engine", "explore", "--walks", "3"], "--walks applies to --engine simulate, not explore"),
    (["--engine", "hypothesis", "--depth", "3"], "--depth applies to --engine simulate"),
    (["--engine", "all", "--time", "3"], "--time applies to --engine simulate"),
    (["--engine", "simulate", "--max-states", "3"], "--max-states applies to --engine explore"),
    (["--engine", "simulate", "--profile", "deep"], "--profile applies to --engine hypothesis"),
    (["--engine", "simulate", "--walks", "0"], "0 is not a positive count"),
    (["--engine", "simulate", "--depth", "x"], "'x' is not a whole number"),
    (["--engine", "simulate", "--time", "0"], "0 is not a positive, finite number"),
    (["--engine", "simulate", "--time", "inf"], "inf is not a positive, finite number"),
    (["--engine", "simulate", "--time", "soon"], "'soon' is not a number of seconds"),
])
def test_bad_options_are_one_line_and_exit_2(argv, message, capsys):
    assert main(["check", "store", "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_the_seed_is_still_refused_with_explore(capsys):
    assert main(["check", "store", "--engine", "explore", "--seed", "3", "--quiet"]) == 2
    assert "--seed applies to --engine hypothesis or simulate" in capsys.readouterr().err


def test_a_model_without_an_initial_state_is_vacuous_not_holding():
    from types import SimpleNamespace

    from kubemc.checker import simulate_run
    from kubemc.model.kernel import Machine

    class Empty(Machine):
        name = "empty"

        def init_states(self):
            return []

    machine = Empty()
    out = simulate.simulate(machine, [], seed=1, budget=simulate.Budget(walks=3))
    assert out.stopped == simulate.NO_INITIAL_STATE and out.stats.walks == 0
    figures = simulate_run.figures_of(out, machine, simulate.Budget(walks=3))
    row = simulate_run.verdict(SimpleNamespace(name="test"), SimpleNamespace(name="empty"),
                               machine, out, figures)
    assert row.verdict == "vacuous" and "no initial state" in row.detail


def test_a_step_is_drawn_uniformly_among_the_enabled_successors_within_the_bounds():
    """Four proposed steps: one disabled, one leaving the bounds, two enabled
    — each of the two is drawn about half the time, on both draw paths."""
    import random
    from collections import Counter

    from kubemc.model.kernel import Machine, Step

    class Four(Machine):
        name = "four"

        def init_states(self):
            return [0]

        def steps(self, state):
            return [Step("A"), Step("Off"), Step("Far"), Step("B")]

        def apply(self, state, step):
            return {"A": 1, "B": 2, "Far": 99}.get(step.name)

        def within_bounds(self, state):
            return state < 10

    class FourFused(Four):
        def successors(self, state):
            return super().successors(state)

    for machine in (Four(), FourFused()):
        choose = simulate.chooser(machine, random.Random(5).randrange)
        counts = Counter(choose(0)[0].name for _ in range(4000))
        assert set(counts) == {"A", "B"}
        assert abs(counts["A"] - 2000) < 200, counts

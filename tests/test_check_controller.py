"""``kubemc check-controller``: a user's reconcile function under the model
checker (docs/check-controller.md).

The two example operators are the acceptance test: the correct one holds at
the default bounds, the stale-read one is caught with a trace whose steps
say what happened. Then every way a user's code can be wrong: a bug while
checking (an exception, a hot loop, a broken invariant) is exit 1 with a
trace; code that cannot be loaded or called, or answers garbage, is exit 2
and one line.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from kubemc.checker.check_controller import check_controller
from kubemc.checker.cli import main
from kubemc.checker.errors import BadInput
from kubemc.checker.explore import explore
from kubemc.model.controllers.frozen import FrozenDict, NotJsonLike, freeze, thaw
from kubemc.model.controllers.loop import CACHE, SERVER, Objects
from kubemc.model.controllers.usercontroller import UserController
from kubemc.model.kernel import Step
from kubemc.properties.controllers.usercontroller import properties
from kubemc.properties.core import COVER, Property

ROOT = Path(__file__).resolve().parent.parent
OK = str(ROOT / "examples" / "operators" / "replicas_ok.py")
STALE = str(ROOT / "examples" / "operators" / "replicas_stale.py")
KINDS = ["--resource", "ConfigMap", "--owns", "Pod"]


def cli(capsys, *argv):
    rc = main(["check-controller", *argv, *KINDS, "--quiet"])
    out = capsys.readouterr()
    return rc, out.out, out.err


def module(tmp_path, text: str, name: str = "user_operator.py") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


HEADER = """
from kubemc.model.controllers.requests import Create, Delete, Update
DESIRED = [{"metadata": {"name": "web"}, "data": {"replicas": "2"}},
           {"metadata": {"name": "web"}, "data": {"replicas": "0"}}]
"""


# --- the two example operators ---------------------------------------------------


def test_the_correct_example_holds_at_the_default_bounds(tmp_path, capsys):
    rc, out, err = cli(capsys, f"{OK}:reconcile", "--invariant", "never_more_pods_than_asked",
                       "--trace-dir", str(tmp_path), "--json")
    assert rc == 0, err
    result = json.loads(out)
    assert result["verdict"] == "holds"
    # the whole space at the defaults: every fault once, the one edit
    assert result["figures"]["distinct_states"] > 5_000
    assert result["figures"]["bounds"] == {"max_objects": 6, "crashes": 1,
                                           "write_failures": 1, "resyncs": 1, "edits": 1,
                                           "child_deletions": 1}
    assert result["figures"]["liveness_truncated_states"] == 0
    assert not list(tmp_path.iterdir())


def test_the_defaults_reach_what_makes_a_controller_hard(tmp_path):
    """The explored space holds the situations the example must survive: a
    reconcile on a cache that lags the server, a create refused (the name
    exists: 409; or a transient 500), an update refused (a stale
    resourceVersion: 409), a crash with requests unsent, and the edit of the
    desired object."""
    from kubemc.checker.usercode import function

    reconcile, _, mod = function(f"{OK}:reconcile", 2, "reconcile(desired, children)")
    m = UserController(reconcile, resource="ConfigMap", owns="Pod", desired=mod.DESIRED,
                       crashes=1, write_failures=1, resyncs=1, child_deletions=1)

    def stale(m, s):
        return s[CACHE] is not None and s[CACHE] != s[SERVER] and bool(s[4])


    def edited(m, s):
        return Objects(s[SERVER])[("ConfigMap", "web")] == m.versions[1]

    seen = {"409 on create": False, "409 on update": False, "404 on delete": False,
            "crash with requests unsent": False}

    def spy(m, before, step, after):
        if step.name == "Write":
            write, server = before[4][1][0], Objects(before[SERVER])
            if write[0] == "create" and not write[3] and write[1] in server:
                seen["409 on create"] = True
            if write[0] == "update" and write[1] in server and server.rv(write[1]) != write[2]:
                seen["409 on update"] = True
            if write[0] == "delete" and write[1] not in server:
                seen["404 on delete"] = True
        if step.name == "Crash" and before[4] and len(before[4][1]) > 0:
            seen["crash with requests unsent"] = True
        return True

    covers = [Property(n, "check-controller", COVER, n, "test", f) for n, f in
              (("stale", stale), ("edited", edited))]
    from kubemc.properties.core import TRANSITION
    outcome = explore(m, covers + [Property("spy", "check-controller", TRANSITION, "spy",
                                            "test", spy)])
    assert outcome.complete and outcome.counterexample is None
    assert outcome.covers == {"stale": True, "edited": True}
    assert all(seen.values()), seen


def test_the_stale_read_example_is_caught_with_a_trace_a_reader_can_follow(tmp_path, capsys):
    rc, out, err = cli(capsys, f"{STALE}:reconcile", "--invariant",
                       "never_more_pods_than_asked", "--trace-dir", str(tmp_path))
    assert rc == 1, err
    assert "VIOLATED never_more_pods_than_asked" in out
    assert "shortest counterexample: 6 steps" in out
    (trace,) = tmp_path.iterdir()
    assert f"kubemc trace show {trace}" in out
    assert main(["trace", "show", str(trace)]) == 0
    shown = capsys.readouterr().out
    # the story: two creates sent, the first one's event delivered, the
    # second create lands, and a reconcile on the lagging cache (one pod of
    # two) creates a third
    steps = [line for line in shown.splitlines() if line.startswith("Step ")]
    assert steps == ["Step 1: Reconcile(ConfigMap, web)", "Step 2: Write()", "Step 3: Deliver()",
                     "Step 4: Write()", "Step 5: Reconcile(ConfigMap, web)", "Step 6: Write()"]
    assert "Never more pods than the most replicas the ConfigMap is ever set to" in shown
    assert "requests +create Pod/web-* (generateName)" in shown
    assert 'server +Pod/web-2 {"metadata": {"generateName": "web-"}' in shown
    assert "reproduce kubemc check-controller" in shown


def test_hypothesis_finds_the_stale_read_too(tmp_path, capsys):
    rc, out, err = cli(capsys, f"{STALE}:reconcile", "--invariant", "never_more_pods_than_asked",
                       "--engine", "hypothesis", "--trace-dir", str(tmp_path))
    assert rc == 1, err
    (trace,) = tmp_path.iterdir()
    assert main(["trace", "show", str(trace)]) == 0
    assert "server +Pod/web-2" in capsys.readouterr().out
    # `trace replay` says the command that replays it; that command reproduces it
    assert main(["trace", "replay", str(trace)]) == 2
    hint = capsys.readouterr().err.split("replay it against that code: ", 1)[1].strip()
    import shlex
    assert main(shlex.split(hint)[1:]) == 1
    assert "never_more_pods_than_asked is violated" in capsys.readouterr().out


# --- findings about the user's code: exit 1 with a trace ------------------------------


def test_a_reconcile_that_raises_is_a_violation_with_its_trace(tmp_path, capsys):
    path = module(tmp_path, HEADER + """
def reconcile(cm, pods):
    want = int(cm["data"]["replicas"])
    batch = 4 // want          # ZeroDivisionError once scaled to 0
    names = {p["metadata"]["name"] for p in pods}
    return [Create({"metadata": {"name": f"web-{i}"}}) for i in range(want)
            if f"web-{i}" not in names][:batch]
""")
    traces = tmp_path / "traces"
    rc, out, err = cli(capsys, f"{path}:reconcile", "--trace-dir", str(traces))
    assert rc == 1, err
    assert "VIOLATED reconcile_does_not_raise" in out
    (trace,) = traces.iterdir()
    assert main(["trace", "show", str(trace)]) == 0
    shown = capsys.readouterr().out
    assert "Step 1: Edit(1)" in shown
    assert ("raised:  → ZeroDivisionError: integer division or modulo by zero "
            "(at user_operator.py:8 in reconcile)") in shown
    assert str(tmp_path) not in json.dumps(json.loads(trace.read_text())["states"])


def test_a_user_invariant_that_fails_is_a_violation(tmp_path, capsys):
    path = module(tmp_path, """
def at_most_one_pod(config_map, pods):
    '''Never two pods at once.'''
    return len(pods) <= 1
""", "spec.py")
    rc, out, err = cli(capsys, f"{OK}:reconcile", "--invariant", f"{path}:at_most_one_pod",
                       "--trace-dir", str(tmp_path / "t"))
    assert rc == 1, err
    assert "VIOLATED at_most_one_pod" in out and "shortest counterexample: 3 steps" in out


def test_a_controller_that_never_settles_is_a_lasso(tmp_path, capsys):
    path = module(tmp_path, HEADER + """
def reconcile(cm, pods):
    if not pods:
        return [Create({"metadata": {"name": "web-0"}, "spec": {"n": 0}})]
    pod = pods[0]
    pod["spec"]["n"] = 1 - pod["spec"]["n"]   # flips a field on every pass
    return [Update(pod)]
""")
    rc, out, err = cli(capsys, f"{path}:reconcile", "--trace-dir", str(tmp_path / "t"))
    assert rc == 1, err
    assert "VIOLATED eventually_reconciled" in out and "fair quiet cycle" in out
    (trace,) = (tmp_path / "t").iterdir()
    assert main(["trace", "show", str(trace)]) == 0
    assert "and the loop repeats" in capsys.readouterr().out


def test_an_update_that_changes_nothing_is_no_write_and_counts_as_settled(tmp_path, capsys):
    path = module(tmp_path, HEADER + """
def reconcile(cm, pods):
    if not pods:
        return [Create({"metadata": {"name": "web-0"}, "spec": {"n": 1}})]
    return [Update(pod) for pod in pods]     # always sends what is already there
""")
    rc, out, err = cli(capsys, f"{path}:reconcile", "--trace-dir", str(tmp_path / "t"))
    assert rc == 0, out + err


# --- bad input: one line, exit 2 ----------------------------------------------------------


@pytest.mark.parametrize("text, target, message", [
    ("def reconcile(a, b)\n    return []\n", "{p}:reconcile", "does not import: SyntaxError"),
    ("raise RuntimeError('no cluster here')\n", "{p}:reconcile",
     "does not import: RuntimeError: no cluster here"),
    (HEADER, "{p}:reconcile", "has no 'reconcile' (it defines: Create, DESIRED, Delete, Update)"),
    (HEADER + "reconcile = 3\n", "{p}:reconcile", "is not a function reconcile(desired, children)"),
    (HEADER + "def reconcile(cm):\n    return []\n", "{p}:reconcile",
     "must take 2 arguments, reconcile(desired, children); it is reconcile(cm)"),
    ("def reconcile(cm, pods):\n    return []\n", "{p}:reconcile", "defines no DESIRED"),
    (HEADER, "{p}", "expected MODULE:FUNCTION"),
    (HEADER, "{d}/nosuch.py:reconcile", "no file"),
    (HEADER, "no_such_operator_module:reconcile", "no module named 'no_such_operator_module'"),
    (HEADER + "def reconcile(cm, pods):\n    return 'create web-0'\n", "{p}:reconcile",
     "returned 'create web-0' (str); expected a list of Create/Update/Delete requests"),
    (HEADER + "def reconcile(cm, pods):\n    return [{'op': 'scale'}]\n", "{p}:reconcile",
     "request 0 is a dict with op 'scale'"),
    (HEADER + "def reconcile(cm, pods):\n    return [Create({'metadata': {}})]\n",
     "{p}:reconcile", "metadata.name must be a non-empty string"),
    (HEADER + "def reconcile(cm, pods):\n    return [Create({'metadata': {'name': 'a'}, "
              "'spec': {1, 2}})]\n", "{p}:reconcile", "which a Kubernetes object cannot hold"),
    (HEADER + "def reconcile(cm, pods):\n    return [Delete('x', resource_version='99')]\n",
     "{p}:reconcile", "resourceVersion '99', which is not one reconcile was handed"),
    (HEADER + "def reconcile(cm, pods):\n    return [Create({'kind': 'Secret', "
              "'metadata': {'name': 's'}})]\n", "{p}:reconcile", "creates a Secret"),
    (HEADER + "def reconcile(cm, pods):\n    return [Create({'metadata': {'name': 's', "
              "'resourceVersion': '1'}})]\n", "{p}:reconcile",
     "creates s with metadata.resourceVersion set"),
    (HEADER + "import random\ndef reconcile(cm, pods):\n"
              "    return [Delete('x')] if random.random() < 0.5 else []\n",
     "{p}:reconcile", "is not deterministic"),
])
def test_bad_user_code_is_one_line_and_exit_2(tmp_path, capsys, text, target, message):
    path = module(tmp_path, text)
    if "is not deterministic" in message:
        import random
        random.seed(3)  # the coin flips, and so the test, are the same every run
    argv = [target.format(p=path, d=tmp_path), "--trace-dir", str(tmp_path / "t")]
    rc, out, err = cli(capsys, *argv)
    assert rc == 2, out + err
    assert message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("predicate, message", [
    ("def inv(cm, pods):\n    return pods[3]['x']\n", "invariant inv raised IndexError"),
    ("def inv(cm, pods):\n    return len(pods)\n", "invariant inv returned 0 (int)"),
    ("def inv(cm):\n    return True\n", "must take 2 arguments"),
])
def test_a_broken_invariant_is_one_line_and_exit_2(tmp_path, capsys, predicate, message):
    path = module(tmp_path, predicate, "inv.py")
    rc, out, err = cli(capsys, f"{OK}:reconcile", "--invariant", f"{path}:inv",
                       "--trace-dir", str(tmp_path / "t"))
    assert rc == 2 and message in err and err.count("\n") == 1, out + err


@pytest.mark.parametrize("argv, message", [
    (["--bound", "edits=2"], "edits=2: the desired object lists 2 version(s), so at most 1"),
    (["--bound", "crashes=99"], "crashes=99 is outside 0..8"),
    (["--bound", "bogus=1"], "has no bound 'bogus'"),
    (["--seed", "3"], "--seed applies to --engine hypothesis"),
    (["--desired", "NOPE"], "has no 'NOPE'"),
])
def test_bad_options_are_one_line_and_exit_2(capsys, argv, message):
    rc, out, err = cli(capsys, f"{OK}:reconcile", *argv)
    assert rc == 2 and message in err and err.count("\n") == 1, out + err


def test_kinds_must_look_like_kinds(capsys):
    assert main(["check-controller", f"{OK}:reconcile", "--resource", "config map",
                 "--owns", "Pod"]) == 2
    assert "a kind is a name like ConfigMap" in capsys.readouterr().err


# --- loading: a dotted module name, versions given elsewhere ------------------------------


def test_a_dotted_module_name_and_desired_versions_from_a_function(tmp_path, monkeypatch,
                                                                     capsys):
    module(tmp_path, """
from kubemc.model.controllers.requests import Create

def versions():
    return [{"metadata": {"name": "db"}, "spec": {"size": 1}}]

def reconcile(db, volumes):
    if volumes:
        return []
    return [{"op": "create", "object": {"metadata": {"name": "db-data"}}}]
""", "my_db_operator.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    rc = main(["check-controller", "my_db_operator:reconcile", "--resource", "Database",
               "--owns", "PersistentVolumeClaim", "--desired", "versions", "--quiet",
               "--trace-dir", str(tmp_path / "t")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "check-controller my_db_operator:reconcile [explore]: holds" in out


def test_the_library_call_returns_the_result(tmp_path):
    result = check_controller(f"{STALE}:reconcile", resource="ConfigMap", owns="Pod",
                              invariants=["never_more_pods_than_asked"], trace_dir=tmp_path)
    assert result.verdict == "violated" and result.prop == "never_more_pods_than_asked"
    with pytest.raises(BadInput, match="--owns 'pod'"):
        check_controller(f"{OK}:reconcile", resource="ConfigMap", owns="pod")


# --- the pieces -------------------------------------------------------------------------


def test_frozen_values_hash_compare_and_thaw_to_fresh_copies():
    obj = {"spec": {"containers": [{"image": "a"}]}, "n": 1}
    frozen = freeze(obj)
    assert hash(frozen) == hash(freeze({"n": 1, "spec": {"containers": [{"image": "a"}]}}))
    assert frozen != tuple(frozen)  # a dict is not a list of pairs
    assert FrozenDict((("a", 1),)) != (("a", 1),)
    copy = thaw(frozen)
    assert copy == obj
    copy["spec"]["containers"][0]["image"] = "b"
    assert thaw(frozen) == obj
    with pytest.raises(NotJsonLike):
        freeze({"a": object()})
    with pytest.raises(NotJsonLike):
        freeze({1: "x"})
    with pytest.raises(NotJsonLike):
        freeze({"x": float("nan")})
    # JSON's true is not 1, though Python's True == 1
    assert freeze({"ready": True}) != freeze({"ready": 1})
    assert thaw(freeze([True, False, 1])) == [True, False, 1]
    assert type(thaw(freeze(True))) is bool


def test_a_mutating_reconcile_cannot_change_the_state(tmp_path):
    seen = []

    def reconcile(cm, pods):
        cm["data"]["replicas"] = "99"    # mutates what it was handed
        seen.append(cm)
        return []

    m = UserController(reconcile, resource="ConfigMap", owns="Pod",
                       desired=[{"metadata": {"name": "web"}, "data": {"replicas": "1"}}])
    (s0,) = m.init_states()
    s1 = m.apply(s0, Step("Reconcile", ("ConfigMap", "web")))
    assert Objects(s1[SERVER])[("ConfigMap", "web")] == freeze({"data": {"replicas": "1"}})
    assert seen[0]["metadata"] == {"name": "web", "resourceVersion": "1"}


def test_an_edit_keeps_the_status_the_controller_wrote():
    def reconcile(cm, pods):
        if cm.get("status") == {"seen": cm["data"]["v"]}:
            return []
        cm["status"] = {"seen": cm["data"]["v"]}
        return [{"op": "update", "object": cm}]

    m = UserController(reconcile, resource="ConfigMap", owns="Pod", crashes=0,
                       write_failures=0, resyncs=0, child_deletions=0,
                       desired=[{"metadata": {"name": "c"}, "data": {"v": "1"}},
                                {"metadata": {"name": "c"}, "data": {"v": "2"}}])
    (s,) = m.init_states()
    for step in (Step("Reconcile", ("ConfigMap", "c")), Step("Write"), Step("Edit", (1,))):
        s = m.apply(s, step)
    assert thaw(Objects(s[SERVER])[("ConfigMap", "c")]) == {"data": {"v": "2"},
                                                            "status": {"seen": "1"}}
    outcome = explore(m, properties())
    assert outcome.complete and outcome.counterexample is None


# --- replay ------------------------------------------------------------------------------


def test_a_trace_replays_against_the_code_named_again(tmp_path, capsys):
    rc, out, _ = cli(capsys, f"{STALE}:reconcile", "--invariant", "never_more_pods_than_asked",
                     "--trace-dir", str(tmp_path))
    (trace,) = tmp_path.iterdir()
    # the stale-read code: the violation reproduces, every state as recorded
    rc, out, err = cli(capsys, f"{STALE}:reconcile", "--invariant", "never_more_pods_than_asked",
                       "--replay", str(trace))
    assert rc == 1, err
    assert out.startswith("all 6 steps replayed; never_more_pods_than_asked is violated")
    assert "differ" not in out
    # the fixed code (deterministic names): the same steps no longer make a duplicate
    rc, out, err = cli(capsys, f"{OK}:reconcile", "--invariant", "never_more_pods_than_asked",
                       "--replay", str(trace))
    assert rc == 0, err
    assert "holds: the violation no longer reproduces" in out
    # the trace names code; `trace replay` does not import it, it says how to replay
    assert main(["trace", "replay", str(trace)]) == 2
    err = capsys.readouterr().err
    assert "is a trace of a user's controller" in err and "--replay" in err
    assert err.count("\n") == 1
    # the property the trace refutes must be checked
    bare = module(tmp_path, HEADER + "def reconcile(cm, pods):\n    return []\n", "bare.py")
    rc, out, err = cli(capsys, f"{bare}:reconcile", "--replay", str(trace))
    assert rc == 2 and "pass --invariant never_more_pods_than_asked" in err


def test_a_lasso_and_a_raise_replay(tmp_path, capsys):
    flip = module(tmp_path, HEADER + """
def reconcile(cm, pods):
    if not pods:
        return [Create({"metadata": {"name": "web-0"}, "spec": {"n": 0}})]
    pod = pods[0]
    pod["spec"]["n"] = 1 - pod["spec"]["n"]
    return [Update(pod)]
""", "flip.py")
    raises = module(tmp_path, HEADER + """
def reconcile(cm, pods):
    return [] if int(cm["data"]["replicas"]) else [Delete(pods[0]["metadata"]["name"])]
""", "raises.py")
    for path, prop in ((flip, "eventually_reconciled"), (raises, "reconcile_does_not_raise")):
        traces = tmp_path / prop
        assert cli(capsys, f"{path}:reconcile", "--trace-dir", str(traces))[0] == 1
        (trace,) = traces.iterdir()
        rc, out, err = cli(capsys, f"{path}:reconcile", "--replay", str(trace))
        assert rc == 1 and prop in out, out + err


def test_a_search_cut_short_is_undecided(tmp_path, capsys):
    rc, out, _ = cli(capsys, f"{OK}:reconcile", "--max-states", "50",
                     "--trace-dir", str(tmp_path))
    assert rc == 4 and "UNDECIDED" in out


def test_the_trace_in_the_docs_is_what_kubemc_prints(tmp_path, capsys, monkeypatch):
    """docs/check-controller.md shows the stale example's trace verbatim; if
    the model or the display changes, the docs must change with it."""
    monkeypatch.chdir(ROOT)
    # as the docs run it: kinds and invariant from the module
    rc = main(["check-controller", "examples/operators/replicas_stale.py:reconcile",
               "--trace-dir", str(tmp_path), "--quiet"])
    assert rc == 1
    capsys.readouterr()
    (trace,) = tmp_path.iterdir()
    assert main(["trace", "show", str(trace)]) == 0
    shown = capsys.readouterr().out.rstrip("\n")
    assert shown in (ROOT / "docs" / "check-controller.md").read_text()


def test_kinds_and_invariants_may_be_said_in_the_module(tmp_path, capsys):
    # the examples say RESOURCE, OWNS and INVARIANTS: the bare command is enough
    assert main(["check-controller", f"{OK}:reconcile", "--quiet", "--trace-dir",
                 str(tmp_path)]) == 0
    assert main(["check-controller", f"{STALE}:reconcile", "--quiet", "--trace-dir",
                 str(tmp_path)]) == 1
    assert "VIOLATED never_more_pods_than_asked" in capsys.readouterr().out
    # the same invariant named again is checked once
    assert main(["check-controller", f"{STALE}:reconcile", "--invariant",
                 "never_more_pods_than_asked", "--quiet", "--trace-dir", str(tmp_path)]) == 1
    capsys.readouterr()


@pytest.mark.parametrize("text, argv, message", [
    (HEADER + "def reconcile(cm, pods):\n    return []\n", ["--owns", "Pod"],
     "give --resource KIND (or define RESOURCE = 'KIND' in"),
    (HEADER + "RESOURCE = 'ConfigMap'\ndef reconcile(cm, pods):\n    return []\n", [],
     "give --owns KIND (or define OWNS = 'KIND' in"),
    (HEADER + "RESOURCE, OWNS = 'config', 'Pod'\ndef reconcile(cm, pods):\n    return []\n", [],
     "--resource 'config': a kind is a name like ConfigMap"),
    (HEADER + "RESOURCE, OWNS = 'ConfigMap', 'Pod'\nINVARIANTS = 'inv'\n"
              "def reconcile(cm, pods):\n    return []\n", [],
     "INVARIANTS must be a list of predicate names"),
    (HEADER + "RESOURCE, OWNS = 'ConfigMap', 'Pod'\nINVARIANTS = ['nope']\n"
              "def reconcile(cm, pods):\n    return []\n", [], "has no 'nope'"),
])
def test_module_defaults_that_do_not_fit_are_one_line(tmp_path, capsys, text, argv, message):
    path = module(tmp_path, text)
    rc = main(["check-controller", f"{path}:reconcile", *argv, "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and err.count("\n") == 1, err


def test_two_invariants_of_one_name_are_refused(tmp_path, capsys):
    path = module(tmp_path, "def never_more_pods_than_asked(cm, pods):\n    return True\n",
                  "other.py")
    rc = main(["check-controller", f"{OK}:reconcile", "--invariant",
               f"{path}:never_more_pods_than_asked", "--quiet"])
    assert rc == 2 and "two predicates are named never_more_pods_than_asked" in \
        capsys.readouterr().err


def test_end_to_end_as_a_user_runs_it(tmp_path):
    """The real entry point in a fresh process: the bare command on the
    stale example exits 1 and prints where the trace is; bad code is one line."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "kubemc.checker.cli", "check-controller",
                           "examples/operators/replicas_stale.py:reconcile", "--quiet",
                           "--trace-dir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "VIOLATED never_more_pods_than_asked" in proc.stdout and not proc.stderr
    proc = subprocess.run([sys.executable, "-m", "kubemc.checker.cli", "check-controller",
                           "examples/operators/replicas_stale.py:nosuch"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "has no 'nosuch'" in proc.stderr and "Traceback" not in proc.stderr


def test_children_the_cluster_starts_with(tmp_path, capsys):
    """A pod left over from an earlier version: the correct example creates
    its two pods before it deletes the stray one, so for a moment there are
    three — its own invariant catches it in 3 steps."""
    path = module(tmp_path, 'LEFTOVER = [{"metadata": {"name": "web-7"}, '
                            '"spec": {"image": "nginx:1.24"}}]\n', "leftover.py")
    rc, out, err = cli(capsys, f"{OK}:reconcile", "--children", f"{path}:LEFTOVER",
                       "--trace-dir", str(tmp_path / "t"))
    assert rc == 1, err
    assert "VIOLATED never_more_pods_than_asked" in out and "3 steps" in out
    (trace,) = (tmp_path / "t").iterdir()
    assert main(["trace", "show", str(trace)]) == 0
    shown = capsys.readouterr().out
    assert 'Pod/web-7 {"spec": {"image": "nginx:1.24"}}' in shown.split("Step 1")[0]
    assert "--children" in shown  # the reproducing command names them


@pytest.mark.parametrize("text, argv, message", [
    ("LEFTOVER = {'metadata': {'name': 'a'}}\n", [], "must be a list of Pod dicts"),
    ("LEFTOVER = [{'kind': 'Secret', 'metadata': {'name': 'a'}}]\n", [],
     "initial child 0 is a 'Secret', not a Pod"),
    ("LEFTOVER = [{'metadata': {'name': 'a'}}, {'metadata': {'name': 'a'}}]\n", [],
     "two initial children have one name"),
    ("LEFTOVER = [{'spec': {}}]\n", [], "initial child 0 has no metadata dict"),
    ("LEFTOVER = [{'metadata': {'name': 'a'}}]\n", ["--bound", "max_objects=1"],
     "max_objects=1 is below the 2 objects the cluster starts with"),
])
def test_bad_children_are_one_line(tmp_path, capsys, text, argv, message):
    path = module(tmp_path, text, "leftover.py")
    rc, out, err = cli(capsys, f"{OK}:reconcile", "--children", f"{path}:LEFTOVER", *argv)
    assert rc == 2 and message in err and err.count("\n") == 1, out + err


GOAL = '''
def pods_run_the_image(config_map, pods):
    """Every pod runs the image the ConfigMap names."""
    return all(p["spec"]["image"] == config_map["data"]["image"] for p in pods)
'''


def test_a_goal_is_convergence_in_the_users_words(tmp_path, capsys):
    """A goal is eventually-always: the correct example reaches "the pods run
    the image the ConfigMap names" once edits stop; a reconcile that forgets
    to roll the image still settles (it asks for nothing) but misses the
    goal, a lasso."""
    spec = module(tmp_path, GOAL, "goals.py")
    rc, out, err = cli(capsys, f"{OK}:reconcile", "--goal", f"{spec}:pods_run_the_image",
                       "--trace-dir", str(tmp_path / "t"))
    assert rc == 0, out + err
    lazy = module(tmp_path, GOAL + """
RESOURCE, OWNS = "ConfigMap", "Pod"
DESIRED = [{"metadata": {"name": "web"}, "data": {"replicas": "1", "image": "a"}},
           {"metadata": {"name": "web"}, "data": {"replicas": "1", "image": "b"}}]
GOALS = ["pods_run_the_image"]

def reconcile(config_map, pods):
    if pods:
        return []          # never rolls the image
    return [{"op": "create", "object": {"metadata": {"name": "web-0"},
                                        "spec": {"image": config_map["data"]["image"]}}}]
""", "lazy.py")
    rc = main(["check-controller", f"{lazy}:reconcile", "--quiet", "--trace-dir",
               str(tmp_path / "u")])
    out = capsys.readouterr().out
    assert rc == 1 and "VIOLATED pods_run_the_image" in out and "lasso" in out, out
    (trace,) = (tmp_path / "u").iterdir()
    assert main(["trace", "show", str(trace)]) == 0
    shown = capsys.readouterr().out
    assert "once edits and faults stop, eventually always: Every pod runs the image" in shown
    assert ": Edit(1)" in shown
    # a name used as an invariant and as a goal is refused
    rc = main(["check-controller", f"{lazy}:reconcile", "--invariant", "pods_run_the_image",
               "--quiet"])
    assert rc == 2 and "as an invariant and as a goal" in capsys.readouterr().err


def test_the_examples_goal_has_teeth(tmp_path, capsys):
    """The correct example without its image roll settles with old pods: its
    goal (pods_match_the_config_map) catches it, a lasso that stutters."""
    text = Path(OK).read_text()
    roll = "            requests.append(Update(pod))  # carries the resourceVersion it read\n"
    assert roll in text
    path = module(tmp_path, text.replace(roll, "            pass\n"), "no_roll.py")
    rc = main(["check-controller", f"{path}:reconcile", "--quiet", "--trace-dir",
               str(tmp_path / "t")])
    out = capsys.readouterr().out
    assert rc == 1 and "VIOLATED pods_match_the_config_map" in out
    assert "no system step is enabled and the goal is not met" in out


FAILING_PODS = '''
from kubemc.model.controllers.requests import Create, Delete
RESOURCE, OWNS = "ConfigMap", "Pod"
DESIRED = [{"metadata": {"name": "web"}, "data": {"replicas": "1"}}]
GOALS = ["one_healthy_pod"]

def failed(pod):
    return pod.get("status", {}).get("phase") == "Failed"

def WORLD(pod):
    """The kubelet: a pod that runs may fail."""
    return [] if failed(pod) else [{**pod, "status": {"phase": "Failed"}}]

def one_healthy_pod(config_map, pods):
    """Exactly one pod, and it has not failed."""
    return len(pods) == 1 and not failed(pods[0])
'''


def test_a_world_function_lets_children_change_under_the_controller(tmp_path, capsys):
    """Other components write children too (a kubelet marks a pod Failed):
    a controller that replaces failed pods reaches its goal, one that
    ignores them settles with a failed pod — a lasso whose stem shows the
    ChildChanged step."""
    replaces = module(tmp_path, FAILING_PODS + '''
def reconcile(config_map, pods):
    if not pods:
        return [Create({"metadata": {"name": "web-0"}, "spec": {}})]
    return [Delete(p["metadata"]["name"]) for p in pods if failed(p)]
''', "replaces.py")
    rc = main(["check-controller", f"{replaces}:reconcile", "--quiet", "--json",
               "--trace-dir", str(tmp_path / "t")])
    result = json.loads(capsys.readouterr().out)
    assert rc == 0 and result["figures"]["bounds"]["world_changes"] == 1, result
    ignores = module(tmp_path, FAILING_PODS + '''
def reconcile(config_map, pods):
    if not pods:
        return [Create({"metadata": {"name": "web-0"}, "spec": {}})]
    return []
''', "ignores.py")
    rc = main(["check-controller", f"{ignores}:reconcile", "--quiet",
               "--trace-dir", str(tmp_path / "u")])
    assert rc == 1 and "VIOLATED one_healthy_pod" in capsys.readouterr().out
    (trace,) = (tmp_path / "u").iterdir()
    assert main(["trace", "show", str(trace)]) == 0
    shown = capsys.readouterr().out
    assert "ChildChanged(web-0, 0)" in shown and '"status": {"phase": "Failed"}' in shown
    rc, out, err = cli(capsys, f"{ignores}:reconcile", "--replay", str(trace))
    assert rc == 1, out + err
    # without a world there is no such bound
    rc, out, err = cli(capsys, f"{OK}:reconcile", "--bound", "world_changes=1")
    assert rc == 2 and "has no bound 'world_changes'" in err


@pytest.mark.parametrize("world, message", [
    ("def WORLD(pod):\n    return {'status': {}}\n", "returned dict; expected a list"),
    ("def WORLD(pod):\n    return [{'metadata': {'name': 'other'}}]\n",
     "names 'other': another component changes a child, it does not rename it"),
    ("def WORLD(pod):\n    return [pod['nope']]\n", "raised KeyError"),
    ("def WORLD(pod, extra):\n    return []\n", "must take 1 argument,"),
    ("WORLD = 3\n", "is not a function world(child)"),
])
def test_a_broken_world_is_one_line(tmp_path, capsys, world, message):
    path = module(tmp_path, HEADER + world + '''
def reconcile(cm, pods):
    return [] if pods else [Create({"metadata": {"name": "web-0"}})]
''')
    rc, out, err = cli(capsys, f"{path}:reconcile", "--trace-dir", str(tmp_path / "t"))
    assert rc == 2 and message in err and err.count("\n") == 1, out + err


def test_a_controller_that_keeps_creating_is_undecided_not_passed(tmp_path, capsys):
    path = module(tmp_path, HEADER + """
def reconcile(cm, pods):
    return [Create({"metadata": {"generateName": "p-"}})]   # one more, every time
""")
    rc, out, err = cli(capsys, f"{path}:reconcile", "--bound", "crashes=0", "--bound",
                       "write_failures=0", "--bound", "child_deletions=0", "--bound", "edits=0",
                       "--trace-dir", str(tmp_path / "t"))
    assert rc == 4, out + err
    assert "UNDECIDED" in out and "the cluster grew past max_objects" in out


def test_a_request_refused_for_ever_is_a_lasso(tmp_path, capsys):
    """A create of a name that exists is refused (409) and retried for ever:
    the queue never drains, eventually_reconciled fails on a cycle."""
    path = module(tmp_path, HEADER + """
def reconcile(cm, pods):
    return [Create({"metadata": {"name": "web-0"}})]   # whether or not it exists
""")
    rc, out, err = cli(capsys, f"{path}:reconcile", "--bound", "crashes=0", "--bound",
                       "write_failures=0", "--trace-dir", str(tmp_path / "t"))
    assert rc == 1 and "VIOLATED eventually_reconciled" in out and "cycle" in out, out + err


def test_the_trace_model_name_is_said_once_in_two_places():
    """kubemc.checker.check_controller names it without importing the properties,
    so that building the CLI parser stays cheap; the two must agree."""
    import kubemc.checker.check_controller as command
    from kubemc.properties.controllers import usercontroller

    assert command.COMPONENT == usercontroller.COMPONENT == "check-controller"

"""The pytest plugin and ``checker.api``, as a user's project meets them:
pytest run on a sample project (pytester), with ``-n 2``, ``--junitxml``,
``-k``, ``-m``, a mutant, a budget that runs out, and bad input.

Every run loads the plugin as ``-p no:kubemc -p checker.pytest_plugin``:
where kubemc is installed with its entry point the first switches that
copy off, so the plugin is loaded once either way. Models and bounds are
the small ones (mvcc: about a second), so the module costs about 25 s of
CPU; runs with ``-n 2`` go through a subprocess, as a CI job would. The
sample project's module names differ from this suite's: in-process runs
share ``sys.modules`` with it.
"""

from __future__ import annotations

import importlib
import os
import re
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import kubemc.checker as checker
from kubemc.checker import api, traces

pytest_plugins = ["pytester"]

PLUGIN = ("-p", "no:kubemc", "-p", "kubemc.checker.pytest_plugin")
#: a user's own suite, which must keep running beside the models
USER_TEST = """
def test_the_users_own_code():
    assert 1 + 1 == 2
"""


@pytest.fixture
def project(pytester, monkeypatch):
    """A sample project in an unrelated directory; subprocesses import this
    checkout's packages whether or not they are installed here."""
    pytester.makepyfile(test_user=USER_TEST)
    root = str(Path(checker.__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH", "")) if p))
    return pytester


def test_without_kubemc_the_plugin_adds_nothing_and_imports_nothing(project):
    project.makepyfile(test_cost="""
        import sys

        def test_no_kubemc_machinery_was_imported(pytestconfig):
            loaded = [m for m in ("kubemc.checker.api", "kubemc.checker.pytest_items",
                                  "kubemc.checker.run", "z3")
                      if m in sys.modules]
            assert loaded == []
            assert pytestconfig.pluginmanager.get_plugin("kubemc-items") is None
            assert pytestconfig.pluginmanager.get_plugin("kubemc.checker.pytest_plugin") is not None
    """)
    result = project.runpytest_subprocess(*PLUGIN, "-v")
    result.assert_outcomes(passed=2)
    assert "kubemc::" not in result.stdout.str()
    assert "kubemc:" not in result.stdout.str()  # no report header either


def test_store_models_run_beside_the_users_tests_with_xdist_and_junit(project):
    result = project.runpytest_subprocess(*PLUGIN, "--kubemc", "store",
                                          "-k", "mvcc and not raft or user",
                                          "-n", "2", "--junitxml", "r.xml")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*kubemc: 6 model checks of store*", "*2 workers [[]2 items[]]*"])
    cases = {(c.get("classname"), c.get("name")): c
             for c in ET.parse(project.path / "r.xml").iter("testcase")}
    assert set(cases) == {("test_user", "test_the_users_own_code"),
                          ("kubemc.store", "mvcc[explore]")}
    props = {p.get("name"): p.get("value")
             for p in cases["kubemc.store", "mvcc[explore]"].iter("property")}
    assert props["kubemc.verdict"] == "holds"
    assert int(props["kubemc.distinct_states"]) == 4302  # mvcc's default bounds (README)
    assert set(props["kubemc.properties"].split(",")) == set(api.properties("store", "mvcc"))


def test_a_mutant_fails_with_the_trace_in_the_report_also_through_xdist(project):
    result = project.runpytest_subprocess(*PLUGIN, "--kubemc", "store", "--kubemc-mutant",
                                          "delete_keeps_revision", "-n", "2", "-ra",
                                          "--junitxml", "r.xml")
    result.assert_outcomes(passed=1, failed=1)
    name = "mvcc-revision_monotonic-explore-delete_keeps_revision.itf.json"
    result.stdout.fnmatch_lines([
        "*store/mvcc [[]explore[]] mutant delete_keeps_revision: VIOLATED revision_monotonic*",
        "Step 1: Put(*)",
        "Step 2: Delete(*)",
        f"trace:  kubemc-traces/{name}",
        f"replay: kubemc trace replay kubemc-traces/{name}",
        "FAILED kubemc::store::mvcc[[]explore-delete_keeps_revision[]] - VIOLATED*",
    ])
    # the steps in the report are the written trace's, and it replays
    trace = traces.load(project.path / "kubemc-traces" / name)
    assert traces.show(trace) in result.stdout.str()
    assert traces.replay(trace).reproduced
    case = next(c for c in ET.parse(project.path / "r.xml").iter("testcase")
                if c.get("classname") == "kubemc.store")
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["kubemc.trace"] == f"kubemc-traces/{name}"
    assert props["kubemc.verdict"] == "violated"
    failure = next(ET.parse(project.path / "r.xml").iter("failure"))
    assert failure.get("message") == f"VIOLATED revision_monotonic (trace kubemc-traces/{name})"
    assert "Step 2: Delete(a)" in failure.text


def test_k_selects_by_property_and_m_by_engine_without_running_anything(project):
    result = project.runpytest(*PLUGIN, "--kubemc", "store", "-k", "revision_monotonic",
                               "--collect-only", "-q")
    result.stdout.fnmatch_lines(["kubemc::store::mvcc[[]explore[]]",
                                 "1/7 tests collected (6 deselected)*"])
    result = project.runpytest(*PLUGIN, "--kubemc=store", "--kubemc-engine", "all",
                               "-m", "kubemc(engine='z3')", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["kubemc::store::mvcc[[]z3[]]", "kubemc::store::election[[]z3[]]",
                                 "2/* tests collected (* deselected)*"])


def test_an_undecided_check_fails_with_its_reason(project):
    result = project.runpytest(*PLUGIN, "--kubemc", "store", "-k", "mvcc and not raft",
                               "--kubemc-max-states", "30", "-ra")
    result.assert_outcomes(failed=1, deselected=6)
    result.stdout.fnmatch_lines(["*store/mvcc [[]explore[]]: UNDECIDED — stopped at*30*",
                                 "FAILED kubemc::store::mvcc[[]explore[]] - UNDECIDED*"])
    assert not (project.path / "kubemc-traces").exists()


def test_last_failed_reruns_only_the_model_that_failed(project):
    args = (*PLUGIN, "--kubemc", "store", "-k", "mvcc and not raft", "--kubemc-engine", "explore",
            "--kubemc-engine", "z3", "--kubemc-max-states", "30")
    project.runpytest(*args).assert_outcomes(passed=1, failed=1, deselected=7)
    result = project.runpytest(*args, "--lf", "-v")
    result.assert_outcomes(failed=1, deselected=8)
    result.stdout.fnmatch_lines(["kubemc::store::mvcc[[]explore[]] FAILED*"])


@pytest.mark.parametrize("args, message", [
    (("--kubemc", "nosuch"), "--kubemc: unknown component 'nosuch'"),
    (("--kubemc", "store", "--kubemc-mutant", "nosuch"), "carries mutant 'nosuch'"),
    (("--kubemc", "store", "--kubemc-bound", "keys=999"), "keys=999 is outside 0..12"),
    (("--kubemc", "store", "--kubemc-seed", "3"),
     "--kubemc-seed applies to --kubemc-engine hypothesis, not explore"),
    (("--kubemc", "store", "--kubemc-trace-dir", "test_user.py"), "is a file"),
    (("--kubemc", "store", "test_user.py"), "'test_user.py' is a path, not a component"),
    (("--kubemc", "store", "--kubemc-engine", "z3", "--kubemc-mutant", "double_vote",
      "--kubemc-bound", "servers=3"), "--kubemc-bound applies to --kubemc-engine explore or"),
])
def test_bad_input_is_one_line_before_any_work(project, args, message):
    result = project.runpytest(*PLUGIN, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert len(errors) == 1 and message in errors[0], result.stderr.str()
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_the_api_examples_of_the_docs_pass_as_written(project):
    text = (Path(checker.__file__).resolve().parents[1] / "docs" / "pytest.md").read_text()
    example = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S)
                   if "from kubemc.checker import api" in b)
    project.makepyfile(test_docs=example)
    result = project.runpytest("-p", "no:kubemc", "test_docs.py", "-v")
    result.assert_outcomes(passed=7)  # four tests and double_vote in three store models
    result.stdout.fnmatch_lines(["*test_every_model_catches_double_vote?store-raft-explore-"
                                 "double_vote? PASSED*"])


def test_assert_holds_on_a_mutant_fails_with_the_trace_steps(project):
    project.makepyfile(test_sample_api="""
        from kubemc.checker import api

        def test_a_mutant_fails_assert_holds(tmp_path):
            api.assert_holds("store", "mvcc", mutant="put_keeps_mod_revision",
                             trace_dir=tmp_path)
    """)
    result = project.runpytest("-p", "no:kubemc", "test_sample_api.py", "-ra")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*KubemcAssertionError: store/mvcc [[]explore[]] mutant put_keeps_mod_revision: "
        "VIOLATED mod_revision_is_write_revision*",
        "*Step 2: Put(a, *)",
        "*replay: kubemc trace replay *mvcc-mod_revision_is_write_revision-explore-"
        "put_keeps_mod_revision.itf.json",
        "FAILED test_sample_api.py::test_a_mutant_fails_assert_holds*",
    ])


def test_the_entry_point_names_this_plugin():
    pyproject = tomllib.loads((Path(checker.__file__).parents[1] / "pyproject.toml")
                              .read_text())
    assert pyproject["project"]["entry-points"]["pytest11"] == {
        "kubemc": "kubemc.checker.pytest_plugin"}
    plugin = importlib.import_module("kubemc.checker.pytest_plugin")
    assert callable(getattr(plugin, "pytest_addoption", None))

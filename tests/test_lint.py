"""ruff and mypy against their baselines (.ci/lint_baseline.py,
docs/layers.md): a file's count of a rule may only shrink.

The check runs both tools on the tree; the planted-error tests run them on
one small file each, to show that a new error is seen, counted and reported.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_script():
    script = ROOT / ".ci" / "lint_baseline.py"
    spec = importlib.util.spec_from_file_location("lint_baseline", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lint = _load_script()


@pytest.mark.parametrize("tool", ["ruff", "mypy"])
def test_no_count_grows_above_its_baseline(tool):
    findings = lint.ruff_findings() if tool == "ruff" else lint.mypy_findings()
    verdict = lint.compare(lint.read_baseline(lint.BASELINES[tool]), lint.counts(findings))
    text = lint.report(tool, verdict, findings)
    assert verdict.ok, text
    if verdict.shrunk:
        warnings.warn(text, stacklevel=1)


def test_a_planted_ruff_error_is_reported_over_a_baseline_of_its_file(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text("import os\n\n\ndef f(x=[]):\n    return x\n")
    findings = lint.ruff_findings(["planted.py"], root=tmp_path)
    assert {(f.file, f.code) for f in findings} == {("planted.py", "F401"),
                                                     ("planted.py", "B006")}
    baseline = Counter({("planted.py", "B006"): 1})  # the old error, already counted
    verdict = lint.compare(baseline, lint.counts(findings))
    assert not verdict.ok
    assert list(verdict.grown) == [("planted.py", "F401")]
    text = lint.report("ruff", verdict, findings)
    assert "planted.py F401: 1 error(s), baseline 0" in text
    assert "planted.py:1:8: F401" in text


def test_a_planted_mypy_error_is_reported(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text("count: int = 'three'\n")
    findings = lint.mypy_findings(["planted.py"], root=tmp_path, cache_dir=tmp_path / "cache")
    assert [(f.file, f.code) for f in findings] == [("planted.py", "assignment")]
    verdict = lint.compare(Counter(), lint.counts(findings))
    text = lint.report("mypy", verdict, findings)
    assert not verdict.ok
    assert "planted.py:1: Incompatible types in assignment" in text


def test_a_count_that_shrinks_passes_and_says_to_lower_the_baseline():
    baseline = Counter({("a.py", "E501"): 3, ("b.py", "F401"): 1})
    verdict = lint.compare(baseline, Counter({("a.py", "E501"): 2}))
    assert verdict.ok
    assert verdict.shrunk == {("a.py", "E501"): (3, 2), ("b.py", "F401"): (1, 0)}
    assert lint.UPDATE in lint.report("ruff", verdict, [])


def test_a_new_file_or_rule_starts_from_zero():
    baseline = Counter({("a.py", "E501"): 3})
    verdict = lint.compare(baseline, Counter({("a.py", "E501"): 3, ("a.py", "B006"): 1,
                                              ("new.py", "E501"): 1}))
    assert set(verdict.grown) == {("a.py", "B006"), ("new.py", "E501")}


def test_the_baseline_file_round_trips(tmp_path):
    counts = Counter({("checker/cli.py", "E501"): 2, ("model/kernel.py", "arg-type"): 1})
    path = tmp_path / "baseline.txt"
    lint.write_baseline(path, "mypy", counts)
    assert lint.read_baseline(path) == counts
    assert path.read_text().startswith("# mypy errors per file and error code")


def test_a_tool_that_cannot_run_is_a_failure_not_zero_findings(tmp_path):
    bad = tmp_path / "pyproject.toml"
    bad.write_text("[tool.ruff]\nline-length = 'long'\n")
    with pytest.raises(lint.ToolFailed, match="ruff failed"):
        lint.ruff_findings(["."], root=tmp_path, config=bad)


def test_mypy_that_cannot_check_is_a_failure_not_zero_findings(tmp_path):
    with pytest.raises(lint.ToolFailed, match="mypy failed"):
        lint.mypy_findings(["no_such_package"], root=tmp_path, cache_dir=tmp_path / "cache")

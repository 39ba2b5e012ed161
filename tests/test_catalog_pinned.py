"""Every model of the catalog holds at its defaults, with pinned state counts
(issue 9).

One test item per model (ids are model names, so ``pytest -n`` spreads
them): ``kubemc check``'s explore row at the catalog's default bounds must
say "holds", reach every cover, and report exactly the distinct states,
transitions and depth pinned in ``tests/data/pinned_counts.json``.

Why pin counts and not only verdicts: a lost interleaving, a symmetry that
merges too much or a fused ``successors`` that drifted still "holds" — on
fewer states. A count that moves is either a deliberate change of the model
(then ``python3 .ci/pin_counts.py --update`` rewrites the pins and prints
the before/after table for the change's note) or a bug this test caught.
A model missing from the pin file fails with that command; a pinned model
the catalog no longer has fails too, so the file cannot rot.

Cost: every model is explored once at its defaults, a few CPU minutes in
all, raft (2.3 million states) the largest. None is marked slow: no other
test explores raft, informer or cni at their defaults, so this is the only
place their default counts are checked, and the suite runs slow tests in CI
anyway. The cluster's and the kubelet's own test files leave their
default-bounds exploration to this test too (issue 9: they explored the very
same machine again, 28 and 12 CPU seconds, for less than is required here).
How a count is measured lives in ``.ci/pin_counts.py``, shared with the
script so that the test and the pins cannot measure differently.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from kubemc.properties.core import COVER

ROOT = Path(__file__).resolve().parents[1]


def _load_script():
    script = ROOT / ".ci" / "pin_counts.py"
    spec = importlib.util.spec_from_file_location("pin_counts", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pins = _load_script()
#: another pin file (a doctored one, to see this test fail) may be named here
PIN_FILE = Path(os.environ.get("KUBEMC_PIN_FILE", pins.PIN_FILE))
CATALOG = pins.models()
PINNED = pins.read(PIN_FILE)


def judge(name: str, pinned: dict, catalog: dict, measure) -> dict:
    """Fail unless model ``name`` is in both the catalog and ``pinned`` and
    its measurement (``measure(component, model)``) holds, reaches every
    cover and matches the pinned figures. Returns the measurement."""
    if name not in catalog:
        pytest.fail(f"model {name} is pinned but the catalog no longer has it: "
                    f"run {pins.UPDATE} (it drops models gone from the catalog)")
    if name not in pinned:
        pytest.fail(f"model {name} has no pinned counts: run {pins.UPDATE} {name} "
                    "and commit tests/data/pinned_counts.json")
    comp, model = catalog[name]
    got = measure(comp, model)
    assert got["verdict"] == "holds", f"{name}: explore at the defaults says {got['verdict']}"
    covers = {p.name for p in model.properties if p.kind == COVER}
    missed = sorted(covers - set(got["covers_reached"]))
    assert not missed, f"{name}: covers never reached at the defaults: {', '.join(missed)}"
    want = pins.figures(pinned[name])
    have = pins.figures(got)
    if have != want:
        pytest.fail(f"{name}: explore at the defaults found {have}, pinned {want}. If the "
                    f"model changed on purpose, run {pins.UPDATE} {name} and show its "
                    "before/after table; otherwise this is a bug", pytrace=False)
    return got


@pytest.mark.parametrize("name", list(CATALOG) + sorted(set(PINNED) - set(CATALOG)))
def test_model_holds_with_its_pinned_counts(name):
    judge(name, PINNED, CATALOG, pins.measure)


# -- the check has teeth: a wrong, missing or stale pin fails -------------------

SMALL = "scheduler-preemption"  # 73 states: cheap to measure for real


def _doctored(tmp_path, change) -> dict:
    """The real pins, changed by ``change``, written to and read back from a
    pin file in ``tmp_path`` as the test would read it via KUBEMC_PIN_FILE."""
    doctored = {k: dict(v) for k, v in PINNED.items()}
    change(doctored)
    path = tmp_path / "pinned_counts.json"
    pins.write(doctored, path)
    return pins.read(path)


def test_a_wrong_count_fails_with_both_numbers(tmp_path):
    def off_by_one(p):
        p[SMALL]["distinct_states"] += 1

    doctored = _doctored(tmp_path, off_by_one)
    with pytest.raises(pytest.fail.Exception) as failed:
        judge(SMALL, doctored, CATALOG, pins.measure)
    right = PINNED[SMALL]["distinct_states"]
    assert f"'distinct_states': {right}" in str(failed.value)
    assert f"'distinct_states': {right + 1}" in str(failed.value)
    assert pins.UPDATE in str(failed.value)


def test_a_missing_and_a_stale_pin_fail(tmp_path):
    def drop_and_invent(p):
        del p[SMALL]
        p["no-such-model"] = dict(PINNED[next(iter(PINNED))])

    doctored = _doctored(tmp_path, drop_and_invent)
    for name, words in ((SMALL, "no pinned counts"), ("no-such-model", "no longer")):
        with pytest.raises(pytest.fail.Exception, match=words):
            judge(name, doctored, CATALOG, pins.measure)


def test_a_verdict_other_than_holds_fails():
    def violated(comp, model):
        return {**pins.measure(comp, model), "verdict": "violated"}

    with pytest.raises(AssertionError, match="says violated"):
        judge(SMALL, PINNED, CATALOG, violated)


def test_the_script_reports_a_change_and_exits_nonzero(tmp_path, capsys):
    """``.ci/pin_counts.py`` without --update compares, prints the table
    and fails on a change; with --update it rewrites the row."""
    path = tmp_path / "pins.json"
    pins.write({SMALL: {**PINNED[SMALL], "transitions": 1}}, path)
    assert pins.main([SMALL, "--file", str(path)]) == 1
    out = capsys.readouterr().out
    assert "NO" in out.splitlines()[-1] and SMALL in out
    assert pins.main([SMALL, "--file", str(path), "--update"]) == 0
    assert pins.read(path)[SMALL] == PINNED[SMALL]

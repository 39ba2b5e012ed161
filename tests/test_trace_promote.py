"""``kubemc trace promote``: a new trace moves into traces/<component>/ only
once it replays and violates what it says, never over an existing trace
unless asked, and the user's file is never lost on the way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubemc.checker import traces
from kubemc.checker.errors import BadInput
from kubemc.checker.trace_promote import promote, stem

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "traces" / "store" / \
    "mvcc-revision_monotonic-explore-delete_keeps_revision.itf.json"


def _smallest_lasso() -> Path:
    """The smallest committed liveness trace (a lasso: it has a ``loop``)."""
    lassos = [p for p in (ROOT / "traces").rglob("*.itf.json")
              if "loop" in json.loads(p.read_text())]
    assert lassos, "no committed lasso trace to promote"
    return min(lassos, key=lambda p: p.stat().st_size)


def _new_trace(tmp_path: Path, original: Path = COMMITTED, edit=None) -> Path:
    """A fresh trace in a scratch directory, as `kubemc check` leaves one."""
    work = tmp_path / "kubemc-traces"
    work.mkdir(exist_ok=True)
    path = work / original.name
    trace = json.loads(original.read_text())
    if edit:
        edit(trace)
    path.write_text(json.dumps(trace, indent=1) + "\n")
    return path


def _files(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


def test_a_trace_moves_to_its_component_and_mutant(tmp_path):
    source = _new_trace(tmp_path)
    text = source.read_text()
    done = promote(source, tmp_path / "traces")
    target = tmp_path / "traces" / "store" / "delete_keeps_revision.itf.json"
    assert done.target == target and not done.replaced
    assert target.read_text() == text and not source.exists()
    assert traces.replay(traces.load(target)).reproduced
    assert "is violated" in done.summary() and "removed" in done.summary()
    assert _files(tmp_path / "traces") == ["store/delete_keeps_revision.itf.json"]


def test_a_lasso_is_promoted_too(tmp_path):
    lasso = _smallest_lasso()
    source = _new_trace(tmp_path, lasso)
    done = promote(source, tmp_path / "traces")
    assert done.target.parent.name == lasso.parent.name
    assert done.target.name == json.loads(lasso.read_text())["#meta"]["mutant"] + ".itf.json"
    assert json.loads(done.target.read_text())["loop"] is not None


def test_the_component_comes_from_the_catalog_not_the_trace(tmp_path):
    def lie(trace):
        trace["#meta"]["component"] = "scheduler"
    done = promote(_new_trace(tmp_path, edit=lie), tmp_path / "traces")
    assert done.target.parent.name == "store"


def test_an_existing_trace_is_not_overwritten(tmp_path):
    first = promote(_new_trace(tmp_path), tmp_path / "traces").target
    before = first.read_bytes()
    second = _new_trace(tmp_path)
    with pytest.raises(BadInput, match="delete_keeps_revision.itf.json exists: keep it, "
                       "or pass --force"):
        promote(second, tmp_path / "traces")
    assert first.read_bytes() == before and second.exists()


def test_force_replaces_an_existing_trace_atomically(tmp_path):
    target = tmp_path / "traces" / "store" / "delete_keeps_revision.itf.json"
    target.parent.mkdir(parents=True)
    target.write_text("an older trace\n")
    source = _new_trace(tmp_path)
    text = source.read_text()
    done = promote(source, tmp_path / "traces", force=True)
    assert done.replaced and target.read_text() == text and not source.exists()
    assert done.summary().startswith("replaced ")
    assert _files(target.parent) == ["delete_keeps_revision.itf.json"]  # no temporary left


def test_a_trace_that_no_longer_reproduces_is_refused_and_kept(tmp_path):
    def fixed(trace):
        trace["#meta"]["mutant"] = "none"
    source = _new_trace(tmp_path, edit=fixed)
    with pytest.raises(BadInput, match="does not reproduce .*only a trace that violates "
                       "what it says is promoted"):
        promote(source, tmp_path / "traces")
    assert source.exists() and not (tmp_path / "traces").exists()


def test_a_trace_whose_states_differ_from_the_model_is_refused(tmp_path):
    def edited(trace):
        var = trace["vars"][0]
        trace["states"][1][var] = {"#tup": [12345]}
    source = _new_trace(tmp_path, edit=edited)
    with pytest.raises(BadInput, match="recorded states differ from the model's at steps 1"):
        promote(source, tmp_path / "traces")
    assert source.exists() and not (tmp_path / "traces").exists()


def test_a_trace_in_its_place_is_not_promoted_onto_itself(tmp_path):
    target = promote(_new_trace(tmp_path), tmp_path / "traces").target
    with pytest.raises(BadInput, match="already in its place"):
        promote(target, tmp_path / "traces", force=True)
    assert target.exists()


@pytest.mark.parametrize("content, message", [
    ("not json", "not JSON"),
    ('{"vars": [], "states": [{}], "#meta": {"model": "nope", "property": "x"}}',
     "names model 'nope', which this kubemc does not have"),
])
def test_bad_input_is_refused(tmp_path, content, message):
    source = tmp_path / "t.itf.json"
    source.write_text(content)
    with pytest.raises(BadInput, match=message):
        promote(source, tmp_path / "traces")
    assert source.read_text() == content


def test_a_trace_of_the_correct_model_is_named_after_its_property():
    assert stem({"#meta": {"mutant": "none", "property": "log_matching"}}) == "log_matching"
    assert stem({"#meta": {"mutant": "figure8_commit", "property": "x"}}) == "figure8_commit"
    with pytest.raises(BadInput, match="cannot name a file"):
        stem({"#meta": {"mutant": "../../etc", "property": "x"}})


def test_an_unwritable_target_keeps_the_source(tmp_path):
    source = _new_trace(tmp_path)
    blocker = tmp_path / "traces"
    blocker.write_text("a file where the directory should be\n")
    with pytest.raises(BadInput, match="cannot write .*--traces-dir"):
        promote(source, blocker)
    assert source.exists()


# --- the command ----------------------------------------------------------------


def test_the_command_promotes_and_says_where(tmp_path, capsys):
    from kubemc.checker.cli import main

    source = _new_trace(tmp_path)
    traces_dir = tmp_path / "traces"
    assert main(["trace", "promote", str(source), "--traces-dir", str(traces_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("promoted ") and "store/delete_keeps_revision.itf.json" in out
    assert (traces_dir / "store" / "delete_keeps_revision.itf.json").exists()


def test_the_command_refuses_an_existing_trace_in_one_line_unless_forced(tmp_path, capsys):
    from kubemc.checker.cli import main

    traces_dir = tmp_path / "traces"
    assert main(["trace", "promote", str(_new_trace(tmp_path)),
                 "--traces-dir", str(traces_dir)]) == 0
    capsys.readouterr()
    second = _new_trace(tmp_path)
    assert main(["trace", "promote", str(second), "--traces-dir", str(traces_dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists" in err and "--force" in err
    assert second.exists()
    assert main(["trace", "promote", str(second), "--traces-dir", str(traces_dir),
                 "--force"]) == 0
    assert capsys.readouterr().out.startswith("replaced ") and not second.exists()


def test_a_mutant_s_trace_must_show_the_property_it_is_meant_to_violate(tmp_path):
    def other(trace):
        trace["#meta"]["property"] = "version_counts_modifications"
    source = _new_trace(tmp_path, edit=other)
    with pytest.raises(BadInput, match="mutant delete_keeps_revision is meant to violate "
                       "revision_monotonic, but the trace shows version_counts_modifications"):
        promote(source, tmp_path / "traces")
    assert source.exists() and not (tmp_path / "traces").exists()

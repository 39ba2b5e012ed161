"""``checker.api`` on its own: names refused in one line, and the verdict of a
model whose engine gives several rows (z3) is the worst of them."""

from __future__ import annotations

import pytest

from kubemc.checker import api, run


def test_bad_names_are_refused_in_one_line():
    with pytest.raises(api.BadInput, match="component store has no model 'nosuch'"):
        api.check("store", "nosuch")
    with pytest.raises(api.BadInput, match="unknown engine 'tlc'"):
        api.check("store", "mvcc", engine="tlc")
    with pytest.raises(api.BadInput, match="has no property 'nosuch'"):
        api.check("store", "mvcc", props=["nosuch"])
    with pytest.raises(api.BadInput, match="fixed bounds"):
        api.check("store", "mvcc", engine="z3", bounds={"keys": 2})
    with pytest.raises(api.BadInput, match="carries no mutant 'double_vote'"):
        api.check("store", "mvcc", mutant="double_vote")
    with pytest.raises(api.BadInput, match="keys=99 is outside"):
        api.machine("store", "mvcc", bounds={"keys": 99})


def test_z3_rows_of_one_model_all_hold(tmp_path):
    verdict = api.assert_holds("store", "mvcc", engine="z3", trace_dir=tmp_path)
    assert len(verdict.rows) == 4 and {r.verdict for r in verdict.rows} == {"holds"}


def test_one_unproved_row_makes_the_model_unproved(monkeypatch, tmp_path):
    # what z3 answers when an invariant is not inductive (test_z3_engine runs
    # a real one); the API's part is that one such row decides the verdict
    rows = [run.Result("store", "mvcc", "z3", run.HOLDS, 0.1, prop="a", detail="a proved"),
            run.Result("store", "mvcc", "z3", run.UNPROVED, 0.2, prop="b",
                       detail="b: counterexample to induction")]
    monkeypatch.setattr(run, "check_model", lambda *a, **k: rows)
    verdict = api.check("store", "mvcc", engine="z3", trace_dir=tmp_path)
    assert verdict.verdict == "unproved" and verdict.prop == "b" and not verdict.holds
    with pytest.raises(api.KubemcAssertionError,
                       match=r"(?s)UNPROVED b .*unproved: b: counterexample to induction"):
        api.assert_holds("store", "mvcc", engine="z3", trace_dir=tmp_path)
    with pytest.raises(api.KubemcAssertionError, match="expected a counterexample"):
        api.counterexample("store", "mvcc", engine="z3", trace_dir=tmp_path)


def test_a_run_that_gave_no_row_is_not_a_pass(monkeypatch, tmp_path):
    monkeypatch.setattr(run, "check_model", lambda *a, **k: [])
    verdict = api.check("store", "mvcc", trace_dir=tmp_path)
    assert verdict.verdict == "undecided" and not verdict.holds


def test_cases_list_without_building(monkeypatch):
    from kubemc.checker.catalog import Model

    def refuse(*a, **k):
        raise AssertionError("cases() built a machine")

    monkeypatch.setattr(Model, "machine", refuse)
    cases = api.cases(["store"], engines=["explore", "z3"])
    assert [c.id for c in cases] == ["store-raft-explore", "store-mvcc-explore",
                                     "store-election-explore",
                                     "store-election-reelection-explore",
                                     "store-store-raft-mvcc-explore",
                                     "store-store-raft-mvcc-progress-explore", "store-mvcc-z3",
                                     "store-election-z3"]

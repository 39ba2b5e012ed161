"""The etcd MVCC store: the functional core's semantics request by request, a
differential test against a naive snapshot-per-revision store, exhaustive
exploration of the machine, and every seeded bug caught."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubemc.checker.explore import explore
from kubemc.model.kernel import Step, UnknownMutant
from kubemc.model.store.mvcc import (
    COMPACTED, CREATE, DUPLICATE_KEY, EMPTY_KEY, EQUAL, FUTURE_REVISION, GREATER,
    INITIAL, INVALID_REQUEST, LESS, MOD, NOT_EQUAL, VALUE, VERSION, Compact, CompactResponse,
    Compare, Delete, DeleteResponse, Error, KeyValue, Mvcc, Put, PutResponse, Range,
    RangeResponse, Txn, TxnResponse, apply_all, apply_request, compact_revision, kv_at,
    read, revision,
)
from kubemc.properties.core import COVER, INVARIANT
from kubemc.properties.mvcc import PROPERTIES

BY_NAME = {p.name: p for p in PROPERTIES}


def run(*requests, state=INITIAL):
    return apply_all(requests, state)


def get(state, key, rev=0):
    return apply_request(state, Range(key, rev))[1]


# ---------------------------------------------------------------------------
# revisions, versions, tombstones
# ---------------------------------------------------------------------------


def test_empty_store_is_at_revision_1_and_the_first_write_makes_it_2():
    assert revision(INITIAL) == 1 and compact_revision(INITIAL) == 0
    assert get(INITIAL, "a") == RangeResponse(1, ())
    s, [r] = run(Put("a", "x"))
    assert r == PutResponse(2)
    assert get(s, "a") == RangeResponse(2, (KeyValue("a", 2, 2, 1, "x"),))


def test_put_bumps_version_and_mod_revision_keeps_create_revision():
    s, rs = run(Put("a", "x"), Put("b", "y"), Put("a", "x"))
    assert [r.revision for r in rs] == [2, 3, 4]
    assert kv_at(s, "a") == KeyValue("a", 2, 4, 2, "x")
    assert kv_at(s, "b") == KeyValue("b", 3, 3, 1, "y")


def test_delete_writes_a_tombstone_and_recreation_starts_over():
    s, rs = run(Put("a", "x"), Put("a", "y"), Delete("a"), Put("a", "z"))
    assert rs[2] == DeleteResponse(4, 1)
    assert get(s, "a", 4) == RangeResponse(5, ())
    assert get(s, "a", 3) == RangeResponse(5, (KeyValue("a", 2, 3, 2, "y"),))
    assert kv_at(s, "a") == KeyValue("a", 5, 5, 1, "z")


def test_a_delete_that_deletes_nothing_keeps_the_revision():
    s, [r] = run(Delete("a"))
    assert r == DeleteResponse(1, 0) and s == INITIAL
    s, rs = run(Put("a", "x"), Delete("a"), Delete("a"))
    assert rs[2] == DeleteResponse(3, 0) and revision(s) == 3


def test_put_of_the_same_value_is_still_a_write():
    s, rs = run(Put("a", "x"), Put("a", "x"))
    assert rs[1] == PutResponse(3)
    assert kv_at(s, "a") == KeyValue("a", 2, 3, 2, "x")


# ---------------------------------------------------------------------------
# range errors and compaction
# ---------------------------------------------------------------------------


def test_range_at_a_future_revision_fails():
    s, _ = run(Put("a", "x"))
    assert get(s, "a", 3) == Error(FUTURE_REVISION)
    assert get(s, "a", 2) == RangeResponse(2, (KeyValue("a", 2, 2, 1, "x"),))
    assert get(s, "a", 1) == RangeResponse(2, ())
    assert get(s, "a", -5) == get(s, "a", 0)  # revision <= 0 means current


def test_compaction_errors_and_reads_below_the_compaction_revision():
    s, rs = run(Put("a", "x"), Put("a", "y"), Put("a", "z"), Compact(3))
    assert rs[3] == CompactResponse(4) and revision(s) == 4  # compaction writes nothing
    assert compact_revision(s) == 3
    assert get(s, "a", 2) == Error(COMPACTED)
    assert get(s, "a", 3) == RangeResponse(4, (KeyValue("a", 2, 3, 2, "y"),))
    assert get(s, "a", 5) == Error(FUTURE_REVISION)
    for bad, err in ((Compact(3), COMPACTED), (Compact(2), COMPACTED),
                     (Compact(5), FUTURE_REVISION)):
        t, r = apply_request(s, bad)
        assert r == Error(err) and t == s
    t, r = apply_request(s, Compact(4))  # compacting at the current revision is allowed
    assert r == CompactResponse(4) and compact_revision(t) == 4
    assert get(t, "a", 4) == RangeResponse(4, (KeyValue("a", 2, 4, 3, "z"),))


def test_compaction_keeps_live_keys_and_drops_old_tombstones():
    s, _ = run(Put("a", "x"), Put("b", "y"), Delete("b"), Put("c", "z"))
    t, _ = apply_request(s, Compact(5))
    assert kv_at(t, "a") == KeyValue("a", 2, 2, 1, "x")  # untouched since revision 2
    assert dict(t[2]).get("b") is None                    # tombstone at 4 < 5: gone
    u, _ = apply_request(s, Compact(4))
    assert dict(u[2])["b"] == ((4, 0, 0, ""),)            # tombstone at 4 = 4: kept
    for rev in range(4, 6):
        for key in "abc":
            assert read(u, key, rev) == read(s, key, rev)


# ---------------------------------------------------------------------------
# txn
# ---------------------------------------------------------------------------


def test_a_txn_is_one_revision_however_many_writes_it_carries():
    s, [r] = run(Txn((), (Put("a", "x"), Put("b", "x"), Delete("c"), Range("a"))))
    assert r == TxnResponse(2, True, (PutResponse(2), PutResponse(2), DeleteResponse(2, 0),
                                      RangeResponse(2, (KeyValue("a", 2, 2, 1, "x"),))))
    assert kv_at(s, "a").mod_revision == kv_at(s, "b").mod_revision == revision(s) == 2


def test_a_txn_that_only_reads_or_deletes_nothing_keeps_the_revision():
    s, [r] = run(Txn((), (Range("a"), Delete("a"))))
    assert s == INITIAL and r.revision == 1 and r.succeeded


def test_txn_compares_on_a_missing_key():
    def holds(*compares):
        return apply_request(INITIAL, Txn(compares))[1].succeeded

    assert holds(Compare("a", MOD, EQUAL, 0))
    assert holds(Compare("a", VERSION, EQUAL, 0))
    assert holds(Compare("a", CREATE, LESS, 1))
    assert not holds(Compare("a", MOD, GREATER, 0))
    # etcd: a VALUE compare on a missing key is false whatever the operator
    assert not holds(Compare("a", VALUE, EQUAL, ""))
    assert not holds(Compare("a", VALUE, NOT_EQUAL, "x"))
    assert not holds(Compare("a", VALUE, LESS, "zzz"))


def test_txn_compares_on_a_present_key():
    s, _ = run(Put("a", "x"), Put("a", "y"))
    assert kv_at(s, "a") == KeyValue("a", 2, 3, 2, "y")

    def holds(c):
        return apply_request(s, Txn((c,)))[1].succeeded

    assert holds(Compare("a", MOD, EQUAL, 3)) and not holds(Compare("a", MOD, EQUAL, 2))
    assert holds(Compare("a", VERSION, GREATER, 1)) and not holds(Compare("a", VERSION, LESS, 2))
    assert holds(Compare("a", CREATE, EQUAL, 2)) and holds(Compare("a", CREATE, NOT_EQUAL, 3))
    assert holds(Compare("a", VALUE, EQUAL, "y")) and holds(Compare("a", VALUE, GREATER, "x"))
    # every compare must hold
    assert not apply_request(s, Txn((Compare("a", MOD, EQUAL, 3),
                                     Compare("a", VALUE, EQUAL, "x"))))[1].succeeded


def test_optimistic_put_of_the_apiserver():
    def update(state, rev, value):
        return apply_request(state, Txn((Compare("a", MOD, EQUAL, rev),),
                                         (Put("a", value),), (Range("a"),)))

    s, r = update(INITIAL, 0, "x")  # create: key must be absent
    assert r.succeeded and r.revision == 2
    t, r = update(s, 0, "y")        # second create loses
    assert not r.succeeded and t == s
    assert r.responses == (RangeResponse(2, (KeyValue("a", 2, 2, 1, "x"),)),)
    t, r = update(s, 2, "y")        # update at the revision read
    assert r.succeeded and kv_at(t, "a") == KeyValue("a", 2, 3, 2, "y")
    u, r = update(t, 2, "z")        # stale revision: conflict, nothing written
    assert not r.succeeded and u == t


def test_range_inside_a_txn_sees_earlier_writes_of_the_txn():
    s, _ = run(Put("a", "x"))
    _, r = apply_request(s, Txn((), (Range("a"), Put("a", "y"), Range("a"), Range("a", 2))))
    assert r.responses == (RangeResponse(2, (KeyValue("a", 2, 2, 1, "x"),)),
                           PutResponse(3),
                           RangeResponse(3, (KeyValue("a", 2, 3, 2, "y"),)),
                           RangeResponse(3, (KeyValue("a", 2, 2, 1, "x"),)))


def test_duplicate_keys_in_a_txn_branch_are_refused():
    for ops in ((Put("a", "x"), Put("a", "y")), (Put("a", "x"), Delete("a"))):
        for txn in (Txn((), ops), Txn((), (), ops)):  # either branch
            s, r = apply_request(INITIAL, txn)
            assert r == Error(DUPLICATE_KEY) and s == INITIAL
    s, r = apply_request(INITIAL, Txn((), (Delete("a"), Delete("a"))))
    assert r.succeeded


def test_a_bad_range_in_the_branch_taken_fails_the_whole_txn():
    s, _ = run(Put("a", "x"), Put("a", "y"), Compact(3))
    for rev, err in ((9, FUTURE_REVISION), (2, COMPACTED)):
        t, r = apply_request(s, Txn((), (Put("b", "x"), Range("a", rev))))
        assert r == Error(err) and t == s
        # in the branch not taken, it does not matter
        t, r = apply_request(s, Txn((), (Put("b", "x"),), (Range("a", rev),)))
        assert r.succeeded and revision(t) == 4


def test_invalid_requests_are_responses_not_exceptions():
    cases = [
        (Put("", "x"), EMPTY_KEY), (Range(""), EMPTY_KEY), (Delete(""), EMPTY_KEY),
        (Put("a", 3), INVALID_REQUEST), (Range("a", "1"), INVALID_REQUEST),
        (Compact("1"), INVALID_REQUEST), ("not a request", INVALID_REQUEST),
        (Txn((Compare("a", VALUE, EQUAL, 3),)), INVALID_REQUEST),
        (Txn((Compare("a", MOD, EQUAL, "3"),)), INVALID_REQUEST),
        (Txn((Compare("a", "LEASE", EQUAL, 0),)), INVALID_REQUEST),
        (Txn((Compare("a", MOD, "<=", 0),)), INVALID_REQUEST),
        (Txn((), (Txn(),)), INVALID_REQUEST),
        (Txn((Compare("", MOD, EQUAL, 0),)), EMPTY_KEY),
    ]
    for request, err in cases:
        assert apply_request(INITIAL, request) == (INITIAL, Error(err)), request


# ---------------------------------------------------------------------------
# differential: the core against a naive store that keeps a full snapshot per
# revision and never forgets
# ---------------------------------------------------------------------------

KEYS = ("a", "b", "c")
VALUES = ("x", "y")

ops_st = st.one_of(
    st.builds(Put, st.sampled_from(KEYS), st.sampled_from(VALUES)),
    st.builds(Delete, st.sampled_from(KEYS)),
)
compare_st = st.one_of(
    st.builds(Compare, st.sampled_from(KEYS), st.sampled_from((MOD, VERSION, CREATE)),
              st.sampled_from((EQUAL, NOT_EQUAL, LESS, GREATER)), st.integers(0, 6)),
    st.builds(Compare, st.sampled_from(KEYS), st.just(VALUE),
              st.sampled_from((EQUAL, NOT_EQUAL, LESS, GREATER)), st.sampled_from(VALUES)),
)
request_st = st.one_of(
    ops_st,
    st.builds(Txn, st.lists(compare_st, max_size=2), st.lists(ops_st, max_size=3),
              st.lists(ops_st, max_size=2)),
    st.builds(Compact, st.integers(0, 12)),
)


class Naive:
    """Snapshots[rev] is the whole key space at rev: {key: KeyValue}."""

    def __init__(self):
        self.snapshots = {1: {}}
        self.rev = 1
        self.compacted = 0

    def compare(self, c):
        kv = self.snapshots[self.rev].get(c.key)
        if kv is None and c.target == VALUE:
            return False
        actual = {MOD: "mod_revision", VERSION: "version", CREATE: "create_revision",
                  VALUE: "value"}[c.target]
        actual = getattr(kv, actual) if kv else 0
        return {EQUAL: actual == c.operand, NOT_EQUAL: actual != c.operand,
                LESS: actual < c.operand, GREATER: actual > c.operand}[c.op]

    def apply(self, req):
        if isinstance(req, Compact):
            if self.compacted < req.revision <= self.rev:
                self.compacted = req.revision
            return
        if isinstance(req, Txn):
            for branch in (req.success, req.failure):
                written = [op.key for op in branch if isinstance(op, Put)]
                deleted = {op.key for op in branch if isinstance(op, Delete)}
                if len(set(written)) < len(written) or set(written) & deleted:
                    return  # refused, whichever branch would run
            ops = req.success if all(map(self.compare, req.compares)) else req.failure
        else:
            ops = [req]
        snap = dict(self.snapshots[self.rev])
        new = self.rev + 1
        changed = False
        for op in ops:
            old = snap.get(op.key)
            if isinstance(op, Put):
                snap[op.key] = (
                    KeyValue(op.key, old.create_revision, new, old.version + 1, op.value)
                    if old else KeyValue(op.key, new, new, 1, op.value))
                changed = True
            elif old is not None:
                del snap[op.key]
                changed = True
        if changed:
            self.rev = new
            self.snapshots[new] = snap


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(request_st, max_size=12))
def test_core_agrees_with_a_naive_snapshot_store(requests):
    state, naive = INITIAL, Naive()
    for req in requests:
        state, _ = apply_request(state, req)
        naive.apply(req)
        assert (revision(state), compact_revision(state)) == (naive.rev, naive.compacted)
        for rev in range(0, naive.rev + 2):
            for key in KEYS:
                got = read(state, key, rev)
                if rev > naive.rev:
                    assert got == FUTURE_REVISION
                elif 0 < rev < naive.compacted:
                    assert got == COMPACTED
                else:
                    assert got == naive.snapshots[rev or naive.rev].get(key)


@settings(max_examples=100, deadline=None)
@given(st.lists(request_st, max_size=8), st.one_of(request_st, st.integers(), st.text()))
def test_apply_request_is_total_and_deterministic(requests, last):
    state, _ = apply_all(requests)
    out1 = apply_request(state, last)
    out2 = apply_request(state, last)
    assert out1 == out2
    new, resp = out1
    hash(new)
    if isinstance(resp, Error):
        assert new == state


# ---------------------------------------------------------------------------
# the machine
# ---------------------------------------------------------------------------

#: Measured: keys=2, values=2, max_revision=5 reaches 4302 distinct states.
DEFAULT_STATES_FLOOR = 4000


def test_machine_explores_completely_and_keeps_every_property():
    outcome = explore(Mvcc(), PROPERTIES)
    assert outcome.counterexample is None
    assert outcome.complete
    assert outcome.stats.states > DEFAULT_STATES_FLOOR


@pytest.mark.parametrize("mutant", sorted(Mvcc.mutants))
def test_every_mutant_is_caught(mutant):
    outcome = explore(Mvcc(mutant=mutant), PROPERTIES)
    ce = outcome.counterexample
    assert ce is not None, f"{mutant} was not caught"
    assert ce.prop.name == Mvcc.mutants[mutant].violates
    # the trace replays on the mutant and the violation is on its last step
    m = Mvcc(mutant=mutant)
    state = ce.init
    for step, nxt in ce.steps:
        assert m.apply(state, step) == nxt
        before, state = state, nxt
    # … and that step breaks the mutant's property only, so the verdict does
    # not depend on the order properties are checked in
    failing = {p.name for p in PROPERTIES
               if p.kind != COVER and not _holds(p, m, before, ce.steps[-1][0], state)}
    assert failing == {Mvcc.mutants[mutant].violates}
    # and the unmutated machine does not take that behaviour to a violation
    good = Mvcc()
    state = ce.init
    for step, _ in ce.steps:
        before, state = state, good.apply(state, step)
        assert _holds(ce.prop, good, before, step, state)


def _holds(prop, m, before, step, after) -> bool:
    """A transition property on the step, an invariant on the state it reaches."""
    if prop.kind == INVARIANT:
        return prop.holds_in(m, after)
    return prop.holds_on(m, before, step, after)


def test_every_mutant_names_a_property_of_the_catalog():
    assert {m.violates for m in Mvcc.mutants.values()} <= set(BY_NAME)
    # every property but a cover has a seeded bug (a cover has no counterexample)
    assert {p.name for p in PROPERTIES if p.kind != COVER} <= {
        m.violates for m in Mvcc.mutants.values()}
    assert all(p.component == "store" and p.provenance for p in PROPERTIES)


def test_range_revisions_answer_judges_the_edges_of_the_revision_window():
    prop = BY_NAME["range_revisions_answer"]
    m = Mvcc()
    s, _ = run(Put("a", "x"), Put("a", "y"), Delete("a"), Compact(3))
    assert prop.check(m, INITIAL) and prop.check(m, s)
    # a compaction revision past the current one leaves no revision to read
    assert not prop.check(m, (revision(s), revision(s) + 1, s[2]))
    # the seeded bug makes such a store: compacting at the current revision
    good = m.apply(INITIAL, Step("Compact", (1,)))
    assert compact_revision(good) == 1 and prop.check(m, good)
    bad = Mvcc(mutant="compaction_off_by_one")
    worse = bad.apply(INITIAL, Step("Compact", (1,)))
    assert compact_revision(worse) == 2 and not prop.check(bad, worse)


def test_machine_steps_issue_the_documented_requests():
    m = Mvcc(keys=2, values=2, max_revision=4)
    s = m.apply(INITIAL, Step("Put", ("a", "x")))
    assert s == apply_request(INITIAL, Put("a", "x"))[0]
    steps = list(m.steps(s))
    assert Step("Txn", ("cas", "a", 2, "y")) in steps     # the revision just read
    assert Step("Txn", ("cas", "b", 0, "x")) in steps     # create of an absent key
    assert Step("Txn", ("cad", "a", 0)) in steps
    assert Step("Compact", (2,)) in steps and Step("Compact", (3,)) not in steps
    assert m.request(Step("Txn", ("cas", "a", 2, "y"))) == Txn(
        (Compare("a", MOD, EQUAL, 2),), (Put("a", "y"),), (Range("a"),))
    put_all = m.request(Step("Txn", ("put_all", "y")))
    assert put_all.compares == (Compare("a", VALUE, NOT_EQUAL, "y"),)
    assert put_all.success == (Put("a", "y"), Put("b", "y"))
    # a write past max_revision is disabled, a failed txn is a self-loop
    full = apply_all([Put("a", "x")] * 3)[0]
    assert revision(full) == 4
    assert m.apply(full, Step("Put", ("a", "y"))) is None
    assert m.apply(full, Step("Txn", ("cas", "a", 2, "y"))) == full
    # a step the machine never proposes is not silently "disabled" by apply (a
    # raising handler would then read as holds): trace replay screens it as bad input
    from kubemc.checker.errors import BadInput
    from kubemc.checker.traces import apply_proposed

    for foreign in (Step("Nope", ()), Step("Put", ("z", "x")), Step("Put", ("a", "w")),
                    Step("Put", ("a",)), Step("Txn", ("cas", "a")), Step("Txn", ()),
                    Step("Compact", ("1",))):
        with pytest.raises(BadInput):
            apply_proposed(m, full, foreign)
    with pytest.raises(ValueError):
        m.apply(full, Step("Nope", ()))
    assert m.view(full)["revision"] == 4


def test_bad_bounds_and_unknown_mutants_are_refused():
    with pytest.raises(ValueError):
        Mvcc(keys=0)
    with pytest.raises(ValueError):
        Mvcc(max_revision=0)
    with pytest.raises(UnknownMutant):
        Mvcc(mutant="nope")


def test_the_catalog_checks_mvcc_at_the_bounds_measured_here():
    from kubemc.checker.components import component, model_named

    model = model_named("mvcc")
    assert model in component("store").models
    assert model.machine().config() == Mvcc().config()  # the run measured above
    assert model.properties == PROPERTIES
    assert set(model.mutants) == set(Mvcc.mutants)


def test_a_range_in_a_txn_is_refused_at_the_window_edges_as_a_plain_range():
    """range_revisions_answer observes ranges through a txn too: a txn path
    that let a Range above the current revision through (the second mutation
    sample's survivor of _range_error) breaks it in the initial state."""
    import kubemc.model.store.mvcc as mvcc_module

    prop = BY_NAME["range_revisions_answer"]
    m = Mvcc()
    (init,) = m.init_states()
    assert prop.holds_in(m, init)
    original = mvcc_module._range_error
    try:
        mvcc_module._range_error = lambda state, ops: None  # no txn range is ever refused
        assert not prop.holds_in(m, init)
    finally:
        mvcc_module._range_error = original


def test_the_multi_key_txn_cover_needs_a_txn():
    """mvcc_cover_multi_key_txn: only a txn writes two keys at one revision,
    so without the Txn action (the second sample's survivor that issued no
    txn) the cover is never reached."""
    cover = BY_NAME["mvcc_cover_multi_key_txn"]
    assert cover.kind == COVER
    out = explore(Mvcc(), [cover])
    assert out.covers == {"mvcc_cover_multi_key_txn": True}

    class NoTxn(Mvcc):
        def txn(self, state, *params):
            return None

    out = explore(NoTxn(), [cover])
    assert out.complete and out.covers == {"mvcc_cover_multi_key_txn": False}

"""etcd txn semantics in Z3: the two encodings of ``properties.symbolic.mvcc_txn``
against the executable store, the proofs, and the ``txn_ignores_compare``
mutant caught with a counterexample that replays on ``Mvcc``.

Differential tests: the machine encoding (``MvccEncoding``) against
``Mvcc.successors`` on reachable states and random walks; the general txn
encoding (``TxnEncoding``) against the functional core ``apply_request`` on
Hypothesis-generated stores (reachable *and* arbitrary well-formed ones) and
Hypothesis-generated txns.
"""

from __future__ import annotations

import pytest
import z3
from helpers import (
    assert_encoding_agrees_on_random_walks, assert_encoding_agrees_on_reachable_states,
    reachable,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubemc.checker.explore import explore
from kubemc.checker.z3engine import CTI, PROVED, VIOLATED, Differential, k_induction, run_obligation
from kubemc.model.kernel import UnknownMutant
from kubemc.model.store.mvcc import (
    CREATE, EQUAL, GREATER, INITIAL, LESS, MOD, NOT_EQUAL, VALUE, VERSION, Compact, Compare,
    Delete, Mvcc, Put, Range, Txn, apply_request,
)
from kubemc.properties.mvcc import failed_txn_writes_nothing
from kubemc.properties.symbolic.mvcc_txn import (
    FAILED_TXN_WRITES_NOTHING, OBLIGATIONS, TXN_IS_ONE_REVISION, MvccEncoding, TxnEncoding,
)

SETTINGS = settings(max_examples=60, derandomize=True, deadline=None,
                    suppress_health_check=list(HealthCheck))


# ---------------------------------------------------------------------------
# the machine encoding
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("mutant", [None, "txn_ignores_compare"])
def test_machine_encoding_differential_on_reachable_states(mutant):
    enc = MvccEncoding(2, 2, 5, mutant)
    states = assert_encoding_agrees_on_reachable_states(enc, 5000, first=15, spread=30)
    assert len(states) > 1000


def test_machine_encoding_differential_on_random_walks():
    enc = MvccEncoding(3, 2, 6)
    assert_encoding_agrees_on_random_walks(enc, examples=10, min_steps=3, max_steps=20)


def test_other_mutants_are_refused_by_name():
    with pytest.raises(ValueError, match="does not model"):
        MvccEncoding(2, 2, 5, "delete_keeps_revision")
    with pytest.raises(UnknownMutant):
        MvccEncoding(2, 2, 5, "no_such_bug")


# ---------------------------------------------------------------------------
# the general txn encoding vs the functional core
# ---------------------------------------------------------------------------

KEYS, VALUES, R = ("a", "b"), ("x", "y"), 5
TXN_ENC = TxnEncoding(2, 2, R)


def compares():
    numeric = st.builds(Compare, st.sampled_from(KEYS), st.sampled_from([MOD, VERSION, CREATE]),
                        st.sampled_from([EQUAL, NOT_EQUAL, LESS, GREATER]),
                        st.integers(-1, R + 1))
    value = st.builds(Compare, st.sampled_from(KEYS), st.just(VALUE),
                      st.sampled_from([EQUAL, NOT_EQUAL, LESS, GREATER]),
                      st.sampled_from(("",) + VALUES))
    return st.one_of(numeric, value)


def ops():
    return st.one_of(st.builds(Put, st.sampled_from(KEYS), st.sampled_from(VALUES)),
                     st.builds(Delete, st.sampled_from(KEYS)),
                     st.builds(Range, st.sampled_from(KEYS), st.integers(-1, R + 1)))


def txns():
    return st.builds(Txn, st.lists(compares(), max_size=2), st.lists(ops(), max_size=2),
                     st.lists(ops(), max_size=2))


@st.composite
def reachable_stores(draw):
    """Stores the core reaches from INITIAL (puts, deletes, txns, compactions)."""
    state = INITIAL
    for _ in range(draw(st.integers(0, 6))):
        req = draw(st.one_of(txns(), ops(), st.builds(Compact, st.integers(1, R))))
        nxt, _ = apply_request(state, req)
        if nxt[0] <= R:
            state = nxt
    return state


@st.composite
def wellformed_stores(draw):
    """Any store the encoding's domain admits: histories need not be ones a
    run could produce — the proofs are over all of them."""
    rev = draw(st.integers(1, R))
    compact = draw(st.integers(0, rev))
    keys = []
    for key in KEYS:
        slots = draw(st.sets(st.integers(2, rev), max_size=3)) if rev >= 2 else set()
        hist = []
        for r in sorted(slots):
            if draw(st.booleans()):
                hist.append((r, 0, 0, ""))
            else:
                hist.append((r, draw(st.integers(2, r)), draw(st.integers(1, R)),
                             draw(st.sampled_from(VALUES))))
        if hist:
            keys.append((key, tuple(hist)))
    return (rev, compact, tuple(keys))


def _agree(state, txn):
    diff = _agree.diff
    new, _ = apply_request(state, txn)
    expected = None if new[0] > R else new
    assert diff.check_step(state, 0, TXN_ENC.request_values(txn), expected) == []


_agree.diff = Differential(TXN_ENC)


@SETTINGS
@given(reachable_stores(), txns())
def test_txn_encoding_agrees_with_apply_request_on_reachable_stores(state, txn):
    _agree(state, txn)


@SETTINGS
@given(wellformed_stores(), txns())
def test_txn_encoding_agrees_with_apply_request_on_any_wellformed_store(state, txn):
    _agree(state, txn)


def test_the_machines_txns_are_instances_of_the_general_txn():
    m = Mvcc(2, 2, 5)
    for state in reachable(m, 400)[::20]:
        for step in m.steps(state):
            if step.name == "Txn":
                _agree(state, m.request(step))


def test_symbolic_properties_agree_with_executable_ones():
    enc, m = MvccEncoding(2, 2, 5), Mvcc(2, 2, 5)
    for state in reachable(m, 600)[::25]:
        for step, nxt in m.successors(state):
            if step.name != "Txn":
                continue
            assert TXN_IS_ONE_REVISION.check(m, state, step, nxt)
            assert failed_txn_writes_nothing(m, state, step, nxt)
    # the executable twin holds on every transition of the machine
    out = explore(Mvcc(2, 2, 5), [TXN_IS_ONE_REVISION])
    assert out.complete and out.counterexample is None
    # the symbolic transition predicate agrees with the executable one
    sym = enc.properties["failed_txn_writes_nothing"]
    assert sym.prop is FAILED_TXN_WRITES_NOTHING


# ---------------------------------------------------------------------------
# proofs and the mutant
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("ob", OBLIGATIONS, ids=[ob.name for ob in OBLIGATIONS])
def test_txn_obligations_are_proved_for_every_store_and_txn(ob):
    result = run_obligation(ob)
    print(f"\n{result.summary()}")
    assert result.verdict == PROVED, result.summary()


def test_txn_ignores_compare_is_caught_and_replays_on_mvcc():
    ob = next(o for o in OBLIGATIONS if o.prop == "failed_txn_writes_nothing")
    result = run_obligation(ob, "txn_ignores_compare")
    assert result.verdict == VIOLATED, result.summary()
    cex = result.counterexample
    assert cex.prop is FAILED_TXN_WRITES_NOTHING
    m = Mvcc(2, 2, 5, "txn_ignores_compare")
    state = cex.init
    assert state == INITIAL
    for step, expected in cex.steps:
        before, state = state, m.apply(state, step)
        assert state == expected
    assert cex.steps[-1][0].name == "Txn"
    assert not FAILED_TXN_WRITES_NOTHING.check(m, before, cex.steps[-1][0], state)
    # the same steps are harmless on the correct machine
    ok = Mvcc(2, 2, 5)
    state = INITIAL
    for step, _ in cex.steps:
        before, state = state, ok.apply(state, step)
    assert FAILED_TXN_WRITES_NOTHING.check(ok, before, cex.steps[-1][0], state)


class IgnoresCompare(TxnEncoding):
    """A broken encoding: always takes the success branch."""

    def _outcome(self, S, I):
        ok, invalid, br = self.request_parts(S, I)
        puts, deletes, range_error = br["success"]
        effect, wrote = self.write_effect(S, puts, deletes)
        error = z3.Or(invalid, range_error)
        return effect, z3.And(z3.Not(error), wrote), error


class RevisionPerKey(TxnEncoding):
    """A broken encoding: a txn advances the revision once per key it writes."""

    def write_effect(self, S, puts, deletes):
        effect, wrote = super().write_effect(S, puts, deletes)
        written = [z3.If(z3.Or(puts[k][0] if k in puts else z3.BoolVal(False),
                               deletes.get(k, z3.BoolVal(False))), 1, 0)
                   for k in range(self.K)]
        effect["rev",] = z3.If(wrote, S["rev",] + z3.Sum(written), S["rev",])
        return effect, wrote


@pytest.mark.parametrize("broken,prop", [(IgnoresCompare, "failed_txn_writes_nothing"),
                                         (RevisionPerKey, "txn_is_one_revision")])
def test_a_broken_txn_semantics_fails_the_proof(broken, prop):
    result = k_induction(broken(2, 2, 5), prop, 1, lemmas=False)
    assert result.verdict == CTI, result.summary()
    assert prop in result.cti.failing
    # the decoded step is a real txn, and the real store disagrees with the broken one
    state, step = result.cti.states[0], result.cti.steps[0]
    assert isinstance(step.params[0], Txn)
    assert not result.cti.replays


def test_the_z3_counterexample_is_an_itf_trace_that_kubemc_replays():
    from kubemc.checker import traces
    ob = next(o for o in OBLIGATIONS if o.prop == "failed_txn_writes_nothing")
    result = run_obligation(ob, "txn_ignores_compare")
    machine = Mvcc(2, 2, 5, "txn_ignores_compare")
    trace = traces.to_itf(result.counterexample, model="mvcc", machine=machine, engine="z3")
    replayed = traces.replay(trace)
    assert replayed.reproduced and replayed.divergences == (), replayed.message

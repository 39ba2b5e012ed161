"""The ReplicaSet's convergence proof by ranking function
(``properties.symbolic.controllers``).

The differential tests keep the counter abstraction in step with
``model.controllers.replicaset`` on every reachable state (the space is
small enough to take all of it): the bijection round-trips, every executable
step is a symbolic step with the same name, and Z3 finds no symbolic
successor that is not an executable one. The proof tests show that the
obligations pass and that each can fail: a mutant breaks the invariant, a
ranking that misses a component is refuted, and the end-state property is
not true of every state.
"""

from __future__ import annotations

import pytest
import z3
from helpers import reachable

from kubemc.checker.catalog.controllers import COMPONENT
from kubemc.checker.z3engine import PROVED, VIOLATED, Differential, bmc, k_induction
from kubemc.model.kernel import SYSTEM
from kubemc.properties.symbolic.controllers import (
    QUIET_END_CONVERGED, ReplicaSetEncoding, check_ranking,
)


@pytest.mark.parametrize("mutant, bounds", [
    (None, {}), (None, {"replicas": 3, "crashes": 2, "write_failures": 2, "max_objects": 5}),
    ("drops_error", {}),
    # without expectations the controller over-creates and then deletes, which
    # the counter abstraction does not represent: checked where it does not
    # get there (one replica, no resync)
    ("no_expectations", {"replicas": 1, "resyncs": 0})])
def test_the_encoding_agrees_with_the_machine_on_every_reachable_state(mutant, bounds):
    enc = ReplicaSetEncoding(mutant=mutant, **bounds)
    diff = Differential(enc)
    states = reachable(enc.machine)
    assert len(states) > 10
    for state in states:
        assert enc.state_of(enc.values(state)) == state
        assert diff.check(state, list(enc.machine.successors(state))) == []


def test_the_invariant_holds_on_every_reachable_state_and_the_end_property_matches():
    enc = ReplicaSetEncoding(replicas=3, crashes=2, write_failures=2)
    states = reachable(enc.machine)
    ends = 0
    for state in states:
        for name, lemma in enc.lemmas.items():
            assert enc.holds(lemma, state), f"{name} fails in {state}"
        assert QUIET_END_CONVERGED.holds_in(enc.machine, state)
        assert enc.holds(enc.end_converged, state)
        quiet_end = not any(enc.machine.tag(s) == SYSTEM
                            for s, _ in enc.machine.successors(state))
        assert enc.holds(enc.system_enabled, state) == (not quiet_end)
        ends += quiet_end
    assert ends > 0  # the property speaks of states that occur


@pytest.mark.parametrize("bounds", [{}, {"replicas": 3, "crashes": 2, "write_failures": 2,
                                         "max_objects": 6}])
def test_the_invariant_is_inductive_and_the_rank_decreases(bounds):
    enc = ReplicaSetEncoding(**bounds)
    assert k_induction(enc, QUIET_END_CONVERGED.name, 1).verdict == PROVED
    assert check_ranking(enc)[0] == PROVED


def test_the_rank_decreases_along_every_quiet_run_of_the_machine():
    """The proof's claim, checked by execution: each system step from a
    reachable state lowers the rank tuple."""
    enc = ReplicaSetEncoding()
    S = enc.declare("r_")

    def rank(state):
        values = enc.values(state)
        subst = [(S[var.key], var.literal(values[var.key])) for var in enc.vars()]
        return [z3.simplify(z3.substitute(c, *subst)).as_long() for c in enc.rank(S)]

    steps = 0
    for state in reachable(enc.machine):
        before = rank(state)
        assert min(before) >= 0
        for step, after in enc.machine.successors(state):
            if enc.machine.tag(step) == SYSTEM:
                assert rank(after) < before, (state, step)
                steps += 1
    assert steps > 50


def test_a_ranking_without_the_queue_component_is_refuted():
    """The check can fail: drop the last component (the queued key) and a
    Reconcile that only dequeues no longer decreases anything."""
    enc = ReplicaSetEncoding()
    full = enc.rank
    enc.rank = lambda S: full(S)[:-1]
    verdict, detail = check_ranking(enc)
    assert verdict == VIOLATED and "Reconcile" in detail


def test_drops_error_breaks_the_proof_with_a_replayed_dead_end():
    enc = ReplicaSetEncoding(mutant="drops_error")
    result = bmc(enc, QUIET_END_CONVERGED.name, 6)
    assert result.verdict == VIOLATED
    cex = result.counterexample
    # the resync is spent first: a dead end needs no system step left
    assert [s.name for s, _ in cex.steps] == ["Resync", "Reconcile", "WriteFails"]
    last = cex.steps[-1][1]
    assert not any(enc.machine.tag(s) == SYSTEM for s, _ in enc.machine.successors(last))
    # and the induction of the correct machine's invariant fails for the mutant
    assert k_induction(enc, QUIET_END_CONVERGED.name, 1).verdict != PROVED


def test_the_component_runs_the_proof_and_the_mutant():
    (check,) = [c for c in COMPONENT.symbolic if c.name == "replicaset_converges_by_ranking"]
    proved = check.run()
    assert proved.verdict == PROVED and proved.method == "ranking"
    broken = check.run("drops_error")
    assert broken.verdict == VIOLATED and broken.counterexample is not None


def test_the_proof_states_its_scope_where_the_user_reads_the_verdict():
    (check,) = [c for c in COMPONENT.symbolic if c.name == "replicaset_converges_by_ranking"]
    detail = check.run().detail
    for words in ("replicas=2 fixed (no Scale)", "no pod failures or deletions",
                  "1 crash", "1 failed write", "1 resync"):
        assert words in detail, detail
    assert "no Scale" in check.proves and "no pod failures" in check.proves


def test_the_ranking_ranges_over_every_system_action_of_the_machine():
    """A system action the ranking check does not list would escape it."""
    from kubemc.properties.symbolic.controllers import SYSTEM_ACTIONS
    enc = ReplicaSetEncoding()
    system = {name for name, tag in enc.machine.tags.items() if tag == SYSTEM}
    assert set(SYSTEM_ACTIONS) == system
    assert set(SYSTEM_ACTIONS) <= {a.name for a in enc.actions()}


def test_the_differential_test_fails_for_an_encoding_with_a_wrong_effect():
    """The check can fail: a Deliver that forgets to queue the ReplicaSet
    (the event handler's effect) disagrees with the machine."""
    from kubemc.properties.symbolic import Action
    enc = ReplicaSetEncoding()
    build = enc.build_actions

    def wrong():
        return [Action(a.name, a.params, a.guard,
                       lambda S, I: {"e": S["e"] - 1, "xa": S["xa"]})
                if a.name == "Deliver" else a for a in build()]
    enc.build_actions, enc._actions = wrong, None
    diff = Differential(enc)
    assert any(diff.check(state, list(enc.machine.successors(state)))
               for state in reachable(enc.machine))


def test_the_z3_mutant_trace_is_a_lasso_that_kubemc_replays(tmp_path):
    """The BMC dead end of drops_error is written as the stuttering lasso of
    ``replicaset_converges`` (a property of the replicaset model), so that
    ``kubemc trace replay`` re-executes and confirms it."""
    from kubemc.checker import traces
    (check,) = [c for c in COMPONENT.symbolic if c.name == "replicaset_converges_by_ranking"]
    broken = check.run("drops_error")
    cex = broken.counterexample
    assert broken.prop == cex.prop.name == "replicaset_converges"
    assert cex.loop == len(cex.steps) and cex.closing is None
    path = traces.save(cex, tmp_path, model="replicaset", machine=broken.machine, engine="z3")
    replay = traces.replay(traces.load(path))
    assert replay.reproduced and "stuttering" in replay.message, replay.message

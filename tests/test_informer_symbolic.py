"""The work queue machine, its Z3 encoding, and the induction proofs.

The differential tests keep ``properties.symbolic.workqueue`` in step with
``model.informer.queue_machine``: on every reachable state (the space is
small enough to take all of it), every executable step is a symbolic step
with the same name, and Z3 finds no symbolic successor that is not an
executable one — for the correct machine and for each seeded bug.
"""

from __future__ import annotations

import pytest
from helpers import reachable

from kubemc.checker.catalog.informer import WORKQUEUE
from kubemc.checker.z3engine import PROVED, VIOLATED, Differential, bmc, k_induction, run_obligation
from kubemc.model.informer.queue_machine import WorkQueue
from kubemc.model.kernel import Step
from kubemc.properties.symbolic.workqueue import OBLIGATIONS, WorkQueueEncoding


@pytest.mark.parametrize("mutant", [None, "no_processing_set", "done_forgets_dirty",
                                    "add_while_processing_lost"])
def test_the_encoding_agrees_with_the_machine_on_every_reachable_state(mutant):
    enc = WorkQueueEncoding(3, 2, mutant)
    diff = Differential(enc)
    states = reachable(enc.machine)
    assert len(states) > 50
    for state in states:
        assert enc.state_of(enc.values(state)) == state
        assert diff.check(state, list(enc.machine.successors(state))) == []


def test_the_lemmas_hold_on_every_reachable_state_of_the_correct_machine():
    enc = WorkQueueEncoding(3, 3)
    for state in reachable(enc.machine):
        for name, lemma in enc.lemmas.items():
            assert enc.holds(lemma, state), f"{name} fails in {state}"


def test_the_strengthening_is_not_a_tautology():
    """Without the processing set, reachable states leave the lemma that
    ties held keys to it (and then exclusivity fails)."""
    enc = WorkQueueEncoding(2, 2, "no_processing_set")
    states = reachable(enc.machine)
    assert any(not enc.holds(enc.held_is_processing, s) for s in states)
    assert any(not enc.holds(enc.exclusive, s) for s in states)


@pytest.mark.parametrize("ob", OBLIGATIONS, ids=lambda ob: ob.name)
def test_the_guarantees_are_proved_by_induction(ob):
    result = run_obligation(ob)
    assert result.verdict == PROVED, result.summary()


@pytest.mark.parametrize("mutant, prop", [
    ("no_processing_set", "workqueue_exclusive"),
    ("done_forgets_dirty", "workqueue_keeps_dirty_keys"),
    ("done_forgets_dirty", "workqueue_hands_out_added_keys"),
    ("add_while_processing_lost", "workqueue_hands_out_added_keys")])
def test_bmc_finds_each_bug_and_the_trace_replays_on_the_machine(mutant, prop):
    enc = WorkQueueEncoding(3, 3, mutant)
    result = bmc(enc, prop, 6)
    assert result.verdict == VIOLATED
    cex = result.counterexample
    assert len(cex.steps) == 4 and cex.prop.name == prop
    state = cex.init
    for step, after in cex.steps:
        state = enc.machine.apply(state, step)
        assert state == after
    assert not cex.prop.check(enc.machine, state)
    # and the correct machine proves what the mutant breaks
    assert k_induction(WorkQueueEncoding(3, 3), prop, 1).verdict == PROVED


def test_the_machine_refuses_what_it_never_proposes():
    m = WorkQueue(2, 2)
    (init,) = m.init_states()
    assert m.apply(init, Step("Add", ("pods/z",))) is None
    assert m.apply(init, Step("Get", (2,))) is None
    assert m.apply(init, Step("Done", (0,))) is None
    once = m.apply(init, Step("Add", ("pods/a",)))
    assert m.apply(once, Step("Add", ("pods/a",))) is None  # no change: not a step
    assert WORKQUEUE.machine().config() == {"keys": 3, "workers": 3}


def test_a_lost_add_keeps_the_bookkeeping_consistent_but_not_the_ghost():
    """The lost add is invisible to the queue's own bookkeeping — dirty keys
    stay queued or processing in every reachable state — and only the ghost
    property sees it."""
    from kubemc.properties import informer as props
    enc = WorkQueueEncoding(2, 2, "add_while_processing_lost")
    states = reachable(enc.machine)
    assert all(props.workqueue_keeps_dirty_keys(enc.machine, s) for s in states)
    assert any(not props.workqueue_hands_out_added_keys(enc.machine, s) for s in states)
    assert all(props.workqueue_hands_out_added_keys(WorkQueue(2, 2), s)
               for s in reachable(WorkQueue(2, 2)))

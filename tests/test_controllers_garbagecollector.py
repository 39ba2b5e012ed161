"""The garbage collector: dependents go once none of their owners exists —
never while one does — including owners deleted while it was down."""

import pytest

from kubemc.checker.catalog.controllers import GARBAGECOLLECTOR
from controller_checks import assert_caught_by_explore, assert_caught_by_hypothesis, assert_holds
from helpers import run
from kubemc.model.controllers.garbagecollector import GarbageCollector
from kubemc.model.kernel import Step
from kubemc.properties.controllers import garbagecollector as props

MUTANTS = sorted(GARBAGECOLLECTOR.mutants)


def test_the_correct_collector_passes_at_the_default_bounds():
    assert_holds(GARBAGECOLLECTOR)


def test_the_correct_collector_passes_with_more_faults():
    assert_holds(GARBAGECOLLECTOR, owner_deletions=1, crashes=2, write_failures=2, resyncs=1)


@pytest.mark.parametrize("mutant", MUTANTS)
def test_each_mutant_is_caught_by_explore(mutant, tmp_path):
    cex = assert_caught_by_explore(GARBAGECOLLECTOR, mutant, tmp_path)
    assert (cex.loop is not None) == (mutant != "deletes_with_live_owner")


@pytest.mark.parametrize("mutant", MUTANTS)
def test_each_mutant_is_caught_by_hypothesis(mutant, tmp_path):
    assert_caught_by_hypothesis(GARBAGECOLLECTOR, mutant, tmp_path)


def test_a_foreground_owner_waits_for_its_dependents():
    machine = GarbageCollector()
    waiting = run(machine, Step("DeleteOwner", ("o-0", "Foreground")))
    assert props.foreground_pending(machine, waiting)
    assert props.cover_waiting_with_dependent(machine, waiting)
    # o-0 is not solid: d-1 (owned by o-0 alone) may go, d-0 keeps o-1
    assert not props.no_orphans(machine, waiting)


def test_the_properties_can_fail():
    machine = GarbageCollector()
    (start,) = machine.init_states()
    assert props.no_orphans(machine, start)
    one_gone = run(machine, Step("DeleteOwner", ("o-0", "Background")))
    # d-1's only owner is gone: an orphan; d-0 still has o-1
    assert not props.no_orphans(machine, one_gone)
    assert props.cover_one_owner_left(machine, one_gone)
    # removing d-0 by hand while o-1 lives is a violation; removing d-1 is not
    def without(state, name):
        return (tuple(o for o in state[0] if o[0] != ("dependents", name)),) + state[1:]
    step = Step("Write")
    assert not props.never_deletes_with_live_owner(machine, one_gone, step,
                                                   without(one_gone, "d-0"))
    assert props.never_deletes_with_live_owner(machine, one_gone, step,
                                               without(one_gone, "d-1"))

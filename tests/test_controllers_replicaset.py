"""The ReplicaSet controller: the correct model holds every property at its
documented bounds (covers reached, liveness judged on a complete graph);
each seeded bug is caught, the liveness ones as lassos; the properties are
not trivially true."""

from __future__ import annotations

import pytest

from kubemc.checker import stateful
from kubemc.checker.catalog.controllers import REPLICASET
from kubemc.checker.explore import explore
from kubemc.checker.run import HOLDS, VIOLATED, check
from kubemc.model.controllers.replicaset import POD, RS, ReplicaSetController
from kubemc.model.kernel import Step
from kubemc.properties.controllers import replicaset as props

LIVENESS_MUTANTS = ("drops_error", "counts_terminating", "ignores_deletion")


def test_the_correct_controller_holds_every_property_at_the_defaults(tmp_path):
    (result,) = [r for r in check(["controllers"], trace_dir=tmp_path)
                 if r.model == "replicaset"]
    assert result.verdict == HOLDS, result
    assert result.figures["distinct_states"] > 10_000


@pytest.mark.parametrize("mutant", ("no_expectations",) + LIVENESS_MUTANTS)
def test_every_mutant_is_caught_by_explore(tmp_path, mutant):
    (result,) = check(["controllers"], mutant=mutant, trace_dir=tmp_path)
    assert result.verdict == VIOLATED
    assert result.prop == ReplicaSetController.mutants[mutant].violates
    if mutant in LIVENESS_MUTANTS:
        assert "lasso" in result.detail


@pytest.mark.parametrize("mutant", ("no_expectations", "drops_error", "counts_terminating"))
def test_hypothesis_catches_the_mutants_it_reaches(mutant):
    machine = REPLICASET.hypothesis_machine(mutant)
    target = [p for p in REPLICASET.properties
              if p.name == ReplicaSetController.mutants[mutant].violates]
    outcome = stateful.check(machine, target, profile="ci")
    assert outcome.counterexample is not None


def test_no_expectations_overcreates_from_a_stale_cache():
    """The shortest over-creation: two creates, one observed, a second
    reconcile counts one pod and creates a third."""
    machine = REPLICASET.machine("no_expectations")
    cex = explore(machine, [props.PROPERTIES[0]]).counterexample
    assert [s.name for s, _ in cex.steps] == [
        "Reconcile", "Write", "Deliver", "Write", "Reconcile", "Write"]
    server = machine.objects(cex.final)
    assert sum(1 for k, _ in server.of_kind(POD)) == 3 and server[RS] == (2, 2)


def test_the_properties_are_not_trivially_true():
    """Unconverged and over-peak states exist, so the predicates can fail."""
    m = ReplicaSetController()
    start = next(iter(m.init_states()))
    assert not props.converged(m, start)              # 0 pods, 2 wanted
    overfull = m.server_write(start, (POD, "x0"), ("rs", False))
    overfull = m.server_write(overfull, (POD, "x1"), ("rs", False))
    overfull = m.server_write(overfull, (POD, "x2"), ("rs", False))
    assert not props.no_overcreation(m, overfull)
    assert props.converged(m, m.server_write(m.server_write(start, (POD, "a"), ("rs", False)),
                                             (POD, "b"), ("rs", False)))


def test_a_step_that_is_not_enabled_is_refused():
    m = ReplicaSetController()
    start = next(iter(m.init_states()))
    for step in (Step("Deliver"), Step("Write"), Step("Relist"), Step("PodGone", ("rs-0",)),
                 Step("Reconcile", ("replicasets", "other"))):
        assert m.apply(start, step) is None

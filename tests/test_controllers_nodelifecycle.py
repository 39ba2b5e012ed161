"""The node lifecycle controller and its taint manager
(``model.controllers.nodelifecycle``): the correct controller passes with
every cover reached, each mutant is caught by both engines, and the
properties judge the apiserver's objects and the ghost clock."""

from __future__ import annotations

import pytest
from controller_checks import assert_caught_by_explore, assert_caught_by_hypothesis, assert_holds
from helpers import run

from kubemc.checker import stateful
from kubemc.checker.catalog.controllers import NODELIFECYCLE
from kubemc.checker.run import targeted
from kubemc.checker.explore import explore
from kubemc.model.controllers.nodelifecycle import WORLD, NodeLifecycleController
from kubemc.model.kernel import Step
from kubemc.properties.controllers import nodelifecycle as props

LIVENESS_MUTANTS = {"never_removes_taint", "no_noexecute_taint", "keeps_unknown_after_recovery"}


def test_the_correct_controller_passes_at_the_default_bounds():
    assert assert_holds(NODELIFECYCLE).stats.states > 5_000


def test_the_correct_controller_passes_with_a_longer_grace_and_toleration():
    assert_holds(NODELIFECYCLE, grace=3, toleration_seconds=2, partitions=1, heals=1)


@pytest.mark.parametrize("mutant", sorted(NODELIFECYCLE.mutants))
def test_each_mutant_is_caught_by_explore(mutant, tmp_path):
    cex = assert_caught_by_explore(NODELIFECYCLE, mutant, tmp_path)
    assert (cex.loop is not None) == (mutant in LIVENESS_MUTANTS)


@pytest.mark.parametrize("mutant", sorted(set(NODELIFECYCLE.mutants) - {"no_noexecute_taint"}))
def test_each_mutant_is_caught_by_hypothesis(mutant, tmp_path):
    assert_caught_by_hypothesis(NODELIFECYCLE, mutant, tmp_path)


def test_no_noexecute_taint_is_caught_by_hypothesis_when_heals_are_scarce():
    """With as many heals as partitions most random runs end healed, and the
    leads-to's trigger is gone before the convergence phase."""
    machine = NODELIFECYCLE.machine("no_noexecute_taint", partitions=3, heals=1, crashes=2,
                                    write_failures=2, resyncs=1)
    cex = stateful.check(machine, targeted(NODELIFECYCLE, "no_noexecute_taint")).counterexample
    assert cex is not None and cex.loop is not None


def _tainted_after_partition(m):
    steps = [Step("Reconcile", ("nodes", "n0")), Step("Partition", ("n0",))]
    for _ in range(m.grace + 1):
        steps += [Step("Tick"), Step("Reconcile", ("nodes", "n0"))]
    steps += [Step("Write"), Step("Deliver"), Step("Reconcile", ("nodes", "n0")),
              Step("Write"), Step("Deliver")]
    return run(m, *steps)


def test_the_taint_comes_after_the_grace_period_and_the_tolerant_pod_waits():
    m = NodeLifecycleController(crashes=0, write_failures=0)
    s = _tainted_after_partition(m)
    assert m.objects(s)[("nodes", "n0")] == ("Unknown", True)
    assert props.some_node_tainted(m, s)
    s = run(m, Step("Reconcile", ("nodes", "n0")), Step("Write"), state=s)  # the plain pod
    pods = m.objects(s)
    assert pods[("pods", "n0-plain")][2] and not pods[("pods", "n0-tolerant")][2]
    assert m.apply(s, Step("Tick")) is None  # the eviction's event is in flight
    s = run(m, Step("Deliver"), Step("Reconcile", ("nodes", "n0")), state=s)
    assert s[4] == ()  # the tolerant pod is not evicted before a tick
    s = run(m, Step("Tick"), Step("Reconcile", ("nodes", "n0")), Step("Write"), state=s)
    assert m.objects(s)[("pods", "n0-tolerant")][2]
    assert not m.objects(s)[("pods", "n0-forever")][2]


def test_the_early_eviction_property_judges_the_ghost_clock_not_the_controller():
    """The same eviction write is early at taint age 0 and on time at 1: the
    property reads the server's taint age, whatever the controller thinks."""
    m = NodeLifecycleController(crashes=0, write_failures=0, mutant="ignores_toleration_seconds")
    s = _tainted_after_partition(m)
    s = run(m, Step("Reconcile", ("nodes", "n0")), state=s)
    after = run(m, Step("Write"), Step("Write"), state=s)
    assert not props.no_early_eviction(m, s, Step("Write"), after)
    trivial = [p for p in targeted(NODELIFECYCLE, "ignores_toleration_seconds")]
    assert any(p.name == "nodelifecycle_no_early_eviction" for p in trivial)


def test_a_healthy_node_is_never_touched_and_the_first_miss_mutant_touches_it():
    for mutant, touched in ((None, False), ("evicts_on_first_missed_heartbeat", True)):
        m = NodeLifecycleController(crashes=0, write_failures=0, mutant=mutant)
        s = run(m, Step("Reconcile", ("nodes", "n0")), Step("Tick"),
                Step("Reconcile", ("nodes", "n0")))
        assert bool(s[4]) == touched
        if touched:
            s = run(m, Step("Write"), state=s)
            assert not props.healthy_node_untouched(m, s)


def test_disabled_world_steps_are_refused():
    m = NodeLifecycleController()
    s = next(iter(m.init_states()))
    for step in [Step("Heal", ("n0",)), Step("Renew", ("n0",)), Step("Partition", ("n9",)),
                 Step("Write"), Step("Relist")]:
        assert m.apply(s, step) is None, step
    # a step of another shape is a bug in whatever built it, not a disabled step
    with pytest.raises(TypeError, match="takes 0"):
        m.apply(s, Step("Tick", (1,)))
    assert m.apply(run(m, Step("Reconcile", ("nodes", "n0"))), Step("Tick")) is not None


def test_marking_unknown_is_judged_on_the_silence_not_on_when_the_write_lands():
    """The correct controller decides on a silence longer than the grace
    period, and its write may land just after the healed kubelet renewed:
    that is not early (the ghost ``overdue`` remembers the silence). The
    off-by-one controller marks a node silent for exactly the grace period:
    that is early, and only ``nodelifecycle_no_early_unknown`` says so."""
    m = NodeLifecycleController(crashes=0, write_failures=0)
    s = run(m, Step("Reconcile", ("nodes", "n0")), Step("Tick"),
            Step("Reconcile", ("nodes", "n0")), Step("Partition", ("n0",)))
    for _ in range(m.grace):
        s = run(m, Step("Tick"), Step("Reconcile", ("nodes", "n0")), state=s)
    s = run(m, Step("Heal", ("n0",)), Step("Renew", ("n0",)), state=s)
    after = run(m, Step("Write"), state=s)
    assert m.objects(after)[("nodes", "n0")][0] == "Unknown"
    assert m.objects(after)[WORLD][4] == (0,)  # heard again just now
    assert props.no_early_unknown(m, s, Step("Write"), after)

    early = NodeLifecycleController(crashes=0, write_failures=0,
                                    mutant="marks_unknown_at_grace")
    s = run(early, Step("Reconcile", ("nodes", "n0")), Step("Partition", ("n0",)))
    for _ in range(early.grace):
        s = run(early, Step("Tick"), Step("Reconcile", ("nodes", "n0")), state=s)
    after = run(early, Step("Write"), state=s)
    assert early.objects(after)[("nodes", "n0")][0] == "Unknown"
    assert not props.no_early_unknown(early, s, Step("Write"), after)
    others = [p for p in NODELIFECYCLE.properties
              if p.name != "nodelifecycle_no_early_unknown"]
    assert explore(NODELIFECYCLE.machine("marks_unknown_at_grace"), others).counterexample is None

"""kube-scheduler HA (issue 11 item 1): two replicas and leader election on
a Lease. The catalog-wide checks (the correct model holds with its cover
reached, each mutant caught by both engines with a replaying trace) run in
tests/test_scheduler.py over every model, this one included; here: the
Lease's own mechanics step by step, the properties failing on transitions
that break them, and the fencing gap client-go documents, found by the
checker and pinned."""

from kubemc.checker.catalog.scheduler import HA
from kubemc.checker.explore import explore
from helpers import run
from kubemc.model.kernel import Step
from kubemc.model.scheduler.machine import (
    ELECT, LEASE, LEASE_DURATION, NODE, ORPHANS, SCHEDS, SERVER, HAScheduler,
)
from kubemc.properties import scheduler as props
from kubemc.properties.core import TRANSITION, Property

READ0, READ1 = Step("ReadLease", (0,)), Step("ReadLease", (1,))
WRITE0, WRITE1 = Step("WriteLease", (0,)), Step("WriteLease", (1,))
TICK = Step("Tick", ())


def test_two_candidates_read_a_free_lease_and_the_second_write_is_a_409():
    machine = HA.machine()
    state = run(machine, READ0, READ1, WRITE0)
    assert state[LEASE][:3] == (0, 0, 0)            # replica 0's process holds it
    assert state[ELECT][1][1][3] is False           # replica 1's read is stale now
    state = run(machine, WRITE1, state=state)
    assert state[LEASE][:2] == (0, 0)               # the 409: nothing changed hands
    assert state[ELECT][1][2] == 0                  # replica 1 is not leading
    # the standby runs no scheduling cycle; the leader does
    assert machine.apply(state, Step("Schedule", (1, 0, 0))) is None
    state = run(machine, Step("Schedule", (0, 0, 0)), Step("Bind", (0, 0)), state=state)
    assert state[SERVER][0][NODE] == 0


def test_a_leader_renews_before_its_deadline_and_the_lease_changes_hands_only_after_expiry():
    machine = HA.machine()
    state = run(machine, READ0, WRITE0, TICK)
    # the leader's renewDeadline is one tick away: time waits for its renewal
    assert machine.apply(state, TICK) is None
    state = run(machine, READ0, WRITE0, state=state)
    assert state[LEASE][2] == 0 and state[ELECT][0][2] == 2
    # after a crash, the standby takes the lease only once it has expired
    state = run(machine, Step("Crash", (0,)), state=state)
    for _ in range(LEASE_DURATION):
        state = run(machine, READ1, WRITE1, state=state)
        assert state[LEASE][0] == 0                 # still the crashed process's
        state = run(machine, TICK, state=state)
    state = run(machine, READ1, WRITE1, state=state)
    assert state[LEASE][0] == 1 and props.some_takeover(machine, state)
    # the restarted replica 0 is a new process: the old lease is not its own
    state = run(machine, Step("Relist", (0,)), READ0, WRITE0, state=state)
    assert state[LEASE][:2] == (1, 0)


def test_the_lease_properties_fail_on_transitions_that_break_them():
    machine = HA.machine()
    held = run(machine, READ0, WRITE0)
    stolen = held[:LEASE] + ((1, 0, 0, 1),) + held[LEASE + 1:]
    assert not props.lease_taken_only_when_expired(machine, held, None, stolen)
    expired = held[:LEASE] + ((0, 0, LEASE_DURATION, 0),) + held[LEASE + 1:]
    assert props.lease_taken_only_when_expired(machine, expired, None, stolen)
    # a Bind by replica 1 while replica 0 holds the lease; by 0 once expired
    assert not props.binds_only_by_lease_holder(machine, held, Step("Bind", (1, 0)), held)
    assert props.binds_only_by_lease_holder(machine, held, Step("Bind", (0, 0)), held)
    assert not props.binds_only_by_lease_holder(machine, expired, Step("Bind", (0, 0)), expired)


def _accepted_from_a_non_holder(m, before, step, after):
    """Every Binding the apiserver accepts comes from the replica the Lease
    names — the stronger claim leader election alone does not give."""
    if step.name != "OrphanBind" or not props.newly_bound(before, after):
        return True
    return before[LEASE][0] == before[ORPHANS][step.params[0]][2]


def test_finding_a_binding_sent_before_a_crash_lands_after_the_takeover():
    """client-go leaderelection: 'This implementation does not guarantee that
    only one client is acting as a leader (a.k.a. fencing)'. The checker
    finds it: the crashed leader's Binding arrives after the standby took the
    Lease. What keeps the pod bound once is the Binding's 409, not the Lease:
    the standby's own bind of the same pod is refused."""
    machine = HA.machine()
    stronger = Property("accepted_only_from_holder", "scheduler", TRANSITION, "finding",
                        "client-go leaderelection package doc", _accepted_from_a_non_holder)
    cex = explore(machine, [stronger]).counterexample
    assert cex is not None
    names = [step.name for step, _ in cex.steps]
    assert "Crash" in names and names[-1] == "OrphanBind"
    # the same race, spelled out, ends in the 409 and the pod bound once
    state = run(machine, READ0, WRITE0, Step("Schedule", (0, 0, 0)), Step("Crash", (0,)),
                *[TICK] * LEASE_DURATION, READ1, WRITE1, Step("Schedule", (1, 0, 1)),
                Step("OrphanBind", (0,)))
    assert state[SERVER][0][NODE] == 0 and state[LEASE][0] == 1
    state = run(machine, Step("Bind", (1, 0)), state=state)
    assert state[SERVER][0][NODE] == 0 and props.some_bind_conflict(machine, state)
    assert state[SCHEDS][1][3] == ()                 # the refused assumption is forgotten


def test_without_a_crash_one_replica_binds_everything():
    machine = HA.machine(crashes=0)
    outcome = explore(machine, HA.properties)
    assert outcome.counterexample is None and outcome.complete
    assert not outcome.covers["sched_cover_lease_takeover"]
    assert isinstance(machine, HAScheduler)

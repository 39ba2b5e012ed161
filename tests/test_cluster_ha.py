"""The seeds' topologies and leader election of kube-scheduler and
kube-controller-manager on Leases (issue 15 item 2): each HA model holds
with its covers reached, each mutant is caught by explore and hypothesis on
the property it is meant to violate (the liveness one with a lasso) with a
committed trace that replays, the election mutants are caught on the other
topology too, one component stands for both, and the election's own
mechanics step by step."""

from pathlib import Path

import pytest

from kubemc.checker import stateful, traces
from kubemc.checker.catalog.cluster import HA_STACKED, TOPOLOGIES
from kubemc.checker.errors import BadInput
from kubemc.checker.explore import explore
from kubemc.checker.run import build
from controller_checks import assert_caught_by_explore, assert_caught_by_hypothesis, assert_holds
from helpers import run
from kubemc.model.cluster import topology as topo
from kubemc.model.cluster.ha import (
    BLIND_UPDATE, FIRST_TAKE_COUNTED, GHOSTS, INCARNATIONS, LEASE, MEMBERS, NEVER_RETRIES,
    PAST_DEADLINE, QUORUM_OF_ALL, RENEW_TIME_EXPIRY, ROLES, UP, HAControlPlane,
    StackedControlPlane,
)
from kubemc.model.kernel import Step
from kubemc.properties import cluster_topology as props
from kubemc.properties.core import COVER, INVARIANT, LEADS_TO, TRANSITION, Property

CASES = [(model, mutant) for model in TOPOLOGIES for mutant in sorted(model.mutants)]
IDS = [mutant for _, mutant in CASES]
TRACES = Path(__file__).resolve().parents[1] / "traces" / "cluster"


def get(m):
    return Step("Get", (0, m))


def update(m):
    return Step("Update", (0, m))


def act(m):
    return Step("Act", (0, m))


TICK = Step("Tick", ())


# -- the topologies ----------------------------------------------------------------------

def test_the_topologies_place_components_as_the_seeds_and_docs_say():
    single = topo.named("single-master")
    (master,) = single.masters
    for component in (topo.APISERVER, topo.SCHEDULER, topo.CONTROLLER_MANAGER, topo.ETCD,
                      topo.KUBELET, topo.KUBE_PROXY):
        assert single.hosts[master].runs(component), component
    assert single.etcd_members == (master,) and single.quorum == 1

    stacked = topo.named("ha-stacked")
    assert stacked.masters == (0, 1, 2) and stacked.etcd_members == (0, 1, 2)
    assert stacked.quorum == 2
    # each member talks only to its own node's apiserver
    assert [stacked.etcd_peers(m) for m in stacked.masters] == [(0,), (1,), (2,)]
    assert all(stacked.hosts[m].runs(topo.KUBELET) and stacked.hosts[m].runs(topo.KUBE_PROXY)
               for m in stacked.masters)

    external = topo.named("ha-external")
    assert external.masters == (0, 1, 2) and external.etcd_members == (3, 4, 5)
    assert not any(external.hosts[m].runs(topo.ETCD) for m in external.masters)
    assert all(external.etcd_peers(m) == (3, 4, 5) for m in external.masters)
    assert external.hosts[3].components == (topo.ETCD,)
    workers = [h for h in external.hosts if h.kind == topo.WORKER]
    assert workers and not any(h.runs(topo.APISERVER) or h.runs(topo.ETCD) for h in workers)


def test_an_unknown_topology_or_bound_is_refused_in_one_line():
    with pytest.raises(ValueError, match="known: single-master, ha-stacked, ha-external"):
        topo.named("ha-stacked-twice")
    with pytest.raises(ValueError, match="unknown topology"):
        HAControlPlane(topology="mesh")
    with pytest.raises(BadInput, match="components"):
        build(HA_STACKED, None, {"components": 3}, "explore")
    with pytest.raises(BadInput, match="renew_deadline"):
        build(HA_STACKED, None, {"renew_deadline": 3}, "explore")


# -- the catalog's checks ---------------------------------------------------------------------

@pytest.mark.parametrize("model", TOPOLOGIES, ids=lambda m: m.name)
def test_the_correct_control_plane_holds_with_every_cover_reached(model):
    outcome = assert_holds(model)
    assert outcome.stats.states > 10_000


@pytest.mark.parametrize("model", TOPOLOGIES, ids=lambda m: m.name)
def test_random_runs_of_both_components_hold_and_every_leaderless_run_is_led_again(model):
    """Hypothesis at the catalog's random-run bounds — kube-scheduler and
    kube-controller-manager together on three masters — finds no violation,
    and every run's convergence phase, started with some component unled,
    ends with every component led again in a fair cycle."""
    machine = model.hypothesis_machine()
    assert machine.config()["components"] == 2
    outcome = stateful.check(machine, model.properties, profile="ci")
    assert outcome.counterexample is None and outcome.examples >= 300
    runs = outcome.convergence[props.EVENTUALLY_LED.name]
    assert runs["triggered"] == runs["reached"] == runs["runs"] == outcome.examples


@pytest.mark.parametrize("model, mutant", CASES, ids=IDS)
def test_each_mutant_is_caught_by_explore(model, mutant, tmp_path):
    cex = assert_caught_by_explore(model, mutant, tmp_path)
    liveness = model.mutants[mutant].violates == props.EVENTUALLY_LED.name
    assert (cex.loop is not None) == liveness  # a liveness bug is shown as a lasso


@pytest.mark.parametrize("model, mutant", CASES, ids=IDS)
def test_each_mutant_is_caught_by_hypothesis(model, mutant, tmp_path):
    assert_caught_by_hypothesis(model, mutant, tmp_path)


def test_every_property_has_a_mutant_or_is_a_cover():
    targeted = {m.violates for model in TOPOLOGIES for m in model.mutants.values()}
    names = {p.name for model in TOPOLOGIES for p in model.properties if p.kind != COVER}
    assert names and names <= targeted, names - targeted


@pytest.mark.parametrize("model, mutant", CASES, ids=IDS)
@pytest.mark.parametrize("engine", ["explore", "hypothesis"])
def test_each_mutant_has_a_committed_trace_that_still_reproduces(model, mutant, engine):
    target = model.mutants[mutant].violates
    path = TRACES / f"{model.name}-{target}-{engine}-{mutant}.itf.json"
    assert path.exists(), path.name
    trace = traces.load(path)
    assert trace["#meta"]["mutant"] == mutant and trace["#meta"]["property"] == target
    replay = traces.replay(trace)
    assert replay.reproduced, replay.message


@pytest.mark.parametrize("topology, mutant", [
    ("ha-external", RENEW_TIME_EXPIRY), ("ha-external", BLIND_UPDATE),
    ("ha-external", QUORUM_OF_ALL), ("ha-stacked", PAST_DEADLINE),
    ("ha-stacked", NEVER_RETRIES),
])
def test_the_election_mutants_are_caught_on_the_other_topology_too(topology, mutant):
    """The catalog checks each mutant on one topology; the election does not
    depend on where etcd runs, and the checker finds each on the other."""
    machine = HAControlPlane(topology=topology, components=1, crashes=1, restarts=0,
                             mutant=mutant)
    target = next(p for p in props.STACKED if p.name == machine.mutants[mutant].violates)
    cex = explore(machine, [target]).counterexample
    assert cex is not None and cex.prop is target
    assert (cex.loop is not None) == (target.kind == LEADS_TO)


def _component_view(state, r):
    """The state as one component's election sees it: hosts, members,
    identities, that component's Lease and candidates, the fault budgets."""
    return state[:ROLES] + ((state[ROLES][r],),) + state[ROLES + 1:GHOSTS]


def test_one_component_stands_for_both():
    """Why explore checks one elected component: the scheduler's and the
    controller manager's Leases share only the hosts, the clock and the
    store, so every reachable state of the two-component model, seen from
    either component, is a reachable state of the one-component model and
    back. Checked exhaustively at a bound where the product is small (2
    masters, external etcd, 1 crash, lease 2 ticks), where the two
    components together also hold every safety property. (Liveness carries
    over too: each component's steps are its own, so fairness is judged per
    component; the liveness search of the product is left out for its time.)"""
    small = dict(topology="ha-external", masters=2, crashes=1, restarts=0,
                 lease_duration=2, renew_deadline=1)
    both, one = [], []
    record = lambda seen: Property("record", "cluster", INVARIANT, "records", "this test",  # noqa: E731
                                   lambda m, s: seen.append(s) or True)
    checked = [p for p in props.EXTERNAL if p.kind in (INVARIANT, TRANSITION)]
    outcome = explore(HAControlPlane(components=2, **small), checked + [record(both)])
    assert outcome.counterexample is None and outcome.complete and not outcome.undecided
    assert explore(HAControlPlane(components=1, **small), [record(one)]).complete
    alone = {_component_view(s, 0) for s in one}
    assert len(both) > 10 * len(alone)
    for r in (0, 1):
        assert {_component_view(s, r) for s in both} == alone


# -- the election step by step ------------------------------------------------------------------

def test_a_free_lease_read_by_two_is_won_by_one_and_the_other_gets_a_409():
    machine = HAControlPlane(components=1)
    state = run(machine, get(0), get(1), update(0))
    assert state[ROLES][0][LEASE] == (0, 0, 0)
    assert machine.apply(state, act(1)) is None          # the standby does not act
    state = run(machine, update(1), act(0), state=state)
    assert state[ROLES][0][LEASE][:2] == (0, 0)           # the 409 changed nothing
    assert props.some_lease_conflict(machine, state)


def test_a_candidate_waits_a_lease_duration_of_its_own_observation_despite_a_skewed_clock():
    """master-2's clock runs two ticks ahead; it read the Lease one tick
    after master-0 renewed it. By renewTime on its own clock the Lease is
    expired; by its own observation it is not, and it waits."""
    machine = HAControlPlane(components=1)
    assert machine.timing.offset(2) == 2 and machine.timing.offset(0) == 0
    state = run(machine, get(0), update(0), TICK, get(2))
    assert machine.apply(state, update(2)) is None
    skewed = HAControlPlane(components=1, mutant=RENEW_TIME_EXPIRY)
    early = run(skewed, get(0), update(0), TICK, get(2), update(2))
    assert early[ROLES][0][LEASE][:2] == (2, 0)
    assert not props.one_active_leader(skewed, early, act(0), early)   # master-0 still acts
    # the correct candidate takes over only after the leader stopped renewing
    state = run(machine, Step("Crash", (0,)), state=state)
    for _ in range(machine.timing.lease_duration):
        assert machine.apply(state, update(2)) is None
        state = run(machine, TICK, state=state)
    state = run(machine, update(2), act(2), state=state)
    assert state[ROLES][0][LEASE][:2] == (2, 0) and props.some_handover(machine, state)


def test_a_leader_that_misses_its_renew_deadline_stops_acting():
    machine = HAControlPlane(components=1)
    state = run(machine, get(0), update(0), TICK, TICK)
    assert machine.apply(state, act(0)) is None
    state = run(machine, update(0), act(0), state=state)  # its own Lease: it renews
    assert state[ROLES][0][LEASE] == (0, 0, 0)


def test_a_crash_takes_the_local_etcd_member_only_in_the_stacked_topology():
    stacked = HAControlPlane(topology="ha-stacked", components=1, crashes=2)
    state = run(stacked, Step("Crash", (0,)))
    assert state[UP][0] == 0 and state[MEMBERS] == (0, 1, 1)
    assert state[INCARNATIONS][0] == 1 and stacked.serves(state, 1)
    state = run(stacked, Step("Crash", (1,)), state=state)
    assert not stacked.serves(state, 2)
    assert props.two_masters_down_store_lost(stacked, state)

    external = HAControlPlane(topology="ha-external", components=1, crashes=2)
    state = run(external, Step("Crash", (0,)), Step("Crash", (1,)))
    assert state[MEMBERS] == (1, 1, 1) and external.serves(state, 2)
    state = run(external, Step("Restart", (0,)), state=state)
    assert state[INCARNATIONS][0] == 1                   # a new process, a new identity


def test_the_properties_fail_on_steps_and_states_that_break_them():
    machine = HAControlPlane(components=1)
    held = run(machine, get(0), update(0))
    assert props.one_active_leader(machine, held, act(0), held)
    assert not props.one_active_leader(machine, held, act(1), held)
    expired = held[:ROLES] + ((((0, 0, 3),) + held[ROLES][0][1:],),) + held[ROLES + 1:]
    assert not props.one_active_leader(machine, expired, act(0), expired)
    # a read through the apiserver with two of three stacked masters down
    down = ((1, 0, 0),) + held[1:]
    assert not props.served_only_with_quorum(machine, down, get(0), down)
    assert props.some_component_unled(machine, run(machine))
    assert not props.every_component_led_or_store_lost(machine, run(machine))
    assert props.every_component_led_or_store_lost(machine, down)
    assert not props.serves_with_one_host_down(
        HAControlPlane(components=1, mutant=QUORUM_OF_ALL), run(machine, Step("Crash", (1,))))
    assert held[GHOSTS] == (0, 0)


def test_a_leader_past_its_deadline_writes_beside_the_new_one():
    """The takeover form of acts_past_renew_deadline: master-0 misses its
    renewals, master-1 watches the record unchanged for a lease duration
    and takes the Lease, and master-0, which never gave up, writes."""
    machine = HAControlPlane(components=1, mutant=PAST_DEADLINE)
    state = run(machine, get(0), update(0), get(1), TICK, TICK, TICK, update(1))
    assert state[ROLES][0][LEASE][:2] == (1, 0)
    nxt = machine.apply(state, act(0))
    assert nxt is not None and not props.one_active_leader(machine, state, act(0), nxt)
    correct = HAControlPlane(components=1)
    state = run(correct, get(0), update(0), get(1), TICK, TICK, TICK, update(1))
    assert correct.apply(state, act(0)) is None           # it stopped at its deadline


def test_the_single_master_topology_elects_its_one_candidate_and_has_no_failover():
    """The single master runs both elected components and the only etcd
    member: its candidates lead, and its crash takes the store with it, so
    there is nobody to fail over to — and nothing to wait for."""
    machine = HAControlPlane(topology="single-master", masters=1, crashes=1, restarts=1)
    checked = [p for p in props.STACKED if p.kind != COVER]
    outcome = explore(machine, checked + [props.COVER_CRASH])
    assert outcome.counterexample is None and outcome.complete and not outcome.undecided
    assert outcome.covers[props.COVER_CRASH.name]
    state = run(machine, get(0), update(0), Step("Get", (1, 0)), Step("Update", (1, 0)),
                act(0), Step("Act", (1, 0)), Step("Crash", (0,)))
    assert not machine.serves(state, 0) and props.every_component_led_or_store_lost(machine, state)
    with pytest.raises(ValueError, match="masters=1"):
        HAControlPlane(topology="single-master", masters=3)


# -- what the mutation run of docs/mutation/cluster.md found ---------------------------------------

def test_lease_transitions_count_only_a_change_of_holder():
    """The first take of the free Lease creates it with leaseTransitions 0;
    the holder renewing changes nothing; another process taking it over
    counts — and the mutant that counts the first take is caught at once."""
    machine = HAControlPlane(components=1)
    first = run(machine, get(0), update(0))
    assert first[GHOSTS][0] == 0
    assert props.transitions_count_holder_changes(machine, run(machine, get(0)), update(0), first)
    renewed = run(machine, TICK, update(0), state=first)
    assert renewed[ROLES][0][LEASE][:2] == (0, 0) and renewed[GHOSTS][0] == 0
    before = run(machine, get(1), Step("Crash", (0,)), TICK, TICK, TICK, state=first)
    after = run(machine, update(1), state=before)
    assert after[ROLES][0][LEASE][:2] == (1, 0) and props.some_handover(machine, after)
    assert props.transitions_count_holder_changes(machine, before, update(1), after)
    # a witness that turns on without a change of holder, or stays off with one, is refused
    unmarked = after[:GHOSTS] + ((0, after[GHOSTS][1]),)
    assert not props.transitions_count_holder_changes(machine, before, update(1), unmarked)
    counted = HAControlPlane(components=1, mutant=FIRST_TAKE_COUNTED)
    start = run(counted, get(0))
    wrong = run(counted, update(0), state=start)
    assert wrong[GHOSTS][0] == 1
    assert not props.transitions_count_holder_changes(counted, start, update(0), wrong)


def test_the_leader_write_cover_is_reached_only_if_leaders_write():
    """Without a leader-only write, ``cluster_one_active_leader_per_component``
    judges no step at all and holds for nothing: the cover fails that
    machine (a mutation that dropped ``Act`` from the steps survived before
    it), and the correct one reaches it."""

    class NeverWrites(StackedControlPlane):
        def steps(self, state):
            return (s for s in super().steps(state) if s.name != "Act")

    checked = [props.ONE_ACTIVE_LEADER, props.COVER_LEADER_WRITE]
    silent = explore(NeverWrites(components=1, crashes=0, restarts=0), checked)
    assert silent.counterexample is None and not silent.covers[props.COVER_LEADER_WRITE.name]
    correct = explore(StackedControlPlane(components=1, crashes=0, restarts=0), checked)
    assert correct.counterexample is None and correct.covers[props.COVER_LEADER_WRITE.name]

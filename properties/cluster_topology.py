"""Properties of the HA control plane (``model.cluster.ha``): leader election
of kube-scheduler and kube-controller-manager on Leases, and the store's
quorum in the seeds' topologies.

Each is judged from what the apiserver and the hosts show — the step a
process took (a Lease read or write, a leader-only write), the Lease record
at the apiserver, which hosts are up and where the topology puts the etcd
members — never from a candidate's own belief that it leads, and never
through the election's own rules (``model.cluster.leader``).
"""

from __future__ import annotations

from kubemc.model.cluster.ha import GHOSTS, INCARNATIONS, LEASE, ROLES, SPENT, UP
from kubemc.model.cluster.topology import MASTER
from kubemc.properties.core import COVER, INVARIANT, LEADS_TO, TRANSITION, Property

_C = "cluster"
_LEASES = ("kubernetes.io/docs/concepts/architecture/leases: 'Kubernetes also uses Leases to "
           "ensure only one instance of a component is running at any given time. This is used "
           "by control plane components like kube-controller-manager and kube-scheduler in HA "
           "configurations, where only one instance of the component should be actively running "
           "while the other instances are on stand-by'")
_LEASE_SPEC = ("coordination.k8s.io/v1 LeaseSpec: leaseDurationSeconds 'is duration that "
               "candidates for a lease need to wait to force acquire it'")
_HA_TOPOLOGY = ("kubernetes.io/docs/setup/production-environment/tools/kubeadm/ha-topology "
                "(Options for Highly Available Topology)")
_STACKED = (_HA_TOPOLOGY + ", stacked: 'each control plane node creates a local etcd member'; "
            "'if one node goes down, both an etcd member and a control plane instance are lost'")
_EXTERNAL = (_HA_TOPOLOGY + ", external: 'etcd members run on separate hosts'; 'losing a control "
             "plane instance or an etcd member has less impact'")
_QUORUM = ("etcd FAQ: 'a cluster of n members can tolerate (n-1)/2 failures' (a majority of "
           "members must agree: Raft); seeds: 'the api server is the only master plane component "
           "to talk to the etcd data store'")

# -- what the hosts and the topology say ---------------------------------------------


def _host_up(state, h) -> bool:
    return state[UP][h] == 1


def majority_of_members_on_live_hosts(m, state) -> bool:
    """More than half of the topology's etcd members sit on hosts that are
    up (read off the topology's placement, not the machine's member bits)."""
    hosts = [h for h, host in enumerate(m.topology.hosts) if "etcd" in host.components]
    return 2 * sum(_host_up(state, h) for h in hosts) > len(hosts)


def _masters(m):
    return [h for h, host in enumerate(m.topology.hosts) if host.kind == MASTER]


def _masters_down(m, state) -> int:
    return sum(not _host_up(state, h) for h in _masters(m))


def _live_process(state, master, incarnation) -> bool:
    """The process is still running: its host is up and it has not been
    replaced by a restart (a restart is a new identity)."""
    return master >= 0 and _host_up(state, master) and state[INCARNATIONS][master] == incarnation


# -- at most one active leader per component ----------------------------------------


def one_active_leader(m, before, step, after) -> bool:
    """A leader-only write comes from the process the component's Lease
    names, while the Lease is unexpired by the apiserver's clock."""
    if step is None or step.name != "Act":
        return True
    component, master = step.params
    holder, incarnation, age = before[ROLES][component][LEASE]
    return (holder, incarnation) == (master, before[INCARNATIONS][master]) \
        and age < m.timing.lease_duration


# -- every component eventually led again ---------------------------------------------


def some_component_unled(m, state) -> bool:
    """Some component's Lease names no running process: nobody took it
    yet, or its holder crashed."""
    return any(not _live_process(state, lease[0], lease[1])
               for lease, _ in state[ROLES])


def every_component_led_or_store_lost(m, state) -> bool:
    """Every component's Lease names a running process — or the store has
    lost its quorum (then nobody can be elected). Not "and is unexpired":
    time passes freely between retries, so a fair run may keep one Lease
    expired whenever another was just renewed; a running holder renews its
    own Lease whatever its age, and the safety property judges its writes."""
    if not majority_of_members_on_live_hosts(m, state):
        return True
    return all(_live_process(state, lease[0], lease[1]) for lease, _ in state[ROLES])


# -- the store and the topology ----------------------------------------------------------

_THROUGH_THE_APISERVER = ("Get", "Update", "Act")


def served_only_with_quorum(m, before, step, after) -> bool:
    """A Lease read or write, or a leader's write, goes through only while a
    majority of the etcd members' hosts are up."""
    if step is None or step.name not in _THROUGH_THE_APISERVER:
        return True
    return majority_of_members_on_live_hosts(m, before)


def serves_with_one_host_down(m, state) -> bool:
    """With at most one host down, every live master's apiserver is served."""
    if sum(not u for u in state[UP]) > 1:
        return True
    return all(m.serves(state, h) for h in _masters(m) if _host_up(state, h))


# -- leaseTransitions ---------------------------------------------------------------------------


def _holder(lease) -> tuple | None:
    """The holderIdentity a Lease record names (master and process
    incarnation), or None while the Lease names nobody (not created yet)."""
    return (lease[0], lease[1]) if lease[0] >= 0 else None


def transitions_count_holder_changes(m, before, step, after) -> bool:
    """LeaseSpec.leaseTransitions, as the model keeps it: whether some Lease's
    count is above 0 (capped at 1, over every component's Lease). It starts
    at 0 when the Lease is first written (no holder replaced), goes up
    exactly when a write replaces the holderIdentity a Lease names by
    another, and never goes down."""
    was, now = before[GHOSTS][0], after[GHOSTS][0]
    if was:
        return now == 1
    replaced = any(_holder(b[LEASE]) is not None and _holder(b[LEASE]) != _holder(a[LEASE])
                   for b, a in zip(before[ROLES], after[ROLES], strict=True))
    return bool(now) == replaced


# -- covers ----------------------------------------------------------------------------------


def some_handover(m, state) -> bool:
    """Some Lease's leaseTransitions is above 0 (what
    ``cluster_lease_transitions_count_holder_changes`` keeps honest)."""
    return state[GHOSTS][0] == 1


def leader_write_taken(m, state) -> bool:
    """A leader-only write goes through from this state: some step the
    machine takes from it is an ``Act``. Read off the steps, not the states:
    the write changes nothing this model keeps (what leaders write is the
    other models' concern), so no state shows it — and without it
    ``cluster_one_active_leader_per_component`` judges no step at all."""
    return any(step.name == "Act" for step, _ in m.successors(state))


def some_lease_conflict(m, state) -> bool:
    return state[GHOSTS][1] == 1


def some_master_crashed(m, state) -> bool:
    return state[SPENT][0] > 0 and _masters_down(m, state) > 0


def one_master_down_store_serves(m, state) -> bool:
    return _masters_down(m, state) == 1 and any(
        m.serves(state, h) for h in _masters(m) if _host_up(state, h))


def two_masters_down_store_lost(m, state) -> bool:
    return _masters_down(m, state) == 2 and not any(
        m.serves(state, h) for h in _masters(m) if _host_up(state, h))


def two_masters_down_store_serves(m, state) -> bool:
    return _masters_down(m, state) == 2 and any(
        m.serves(state, h) for h in _masters(m) if _host_up(state, h))


ONE_ACTIVE_LEADER = Property(
    "cluster_one_active_leader_per_component", _C, TRANSITION,
    "a leader-only write of kube-scheduler or kube-controller-manager is made only by the "
    "process the component's Lease at the apiserver names as holder, while that Lease was "
    "renewed less than leaseDurationSeconds ago by the apiserver's clock; the Lease names one "
    "holder at a time, so at most one scheduler and at most one controller manager act at a time",
    _LEASES + "; kube-scheduler / kube-controller-manager --leader-elect: 'Start a leader "
    "election client and gain leadership before executing the main loop'; " + _LEASE_SPEC
    + "; issue 15: 'at most one scheduler and one controller manager act at a time'",
    one_active_leader)
EVENTUALLY_LED = Property(
    "cluster_component_eventually_led", _C, LEADS_TO,
    "whenever a component's Lease names no running process (none elected yet, or its leader "
    "crashed), eventually every component's Lease names a running process — unless a "
    "majority of the etcd members' hosts is down",
    _LEASES + "; seeds: 'Replicas exist in the cluster with sync'd control plane components - "
    "Minimize downtime'; 'in production environments, the control plane usually runs across "
    "multiple computers ... providing fault-tolerance and high availability'; " + _LEASE_SPEC,
    every_component_led_or_store_lost, trigger=some_component_unled,
    assumption="a crashed host may stay down (restarts are faults); candidates on live "
               "masters keep retrying (retryPeriod)")
SERVED_ONLY_WITH_QUORUM = Property(
    "cluster_store_serves_only_with_quorum", _C, TRANSITION,
    "a Lease read or write, or a leader-only write, goes through the apiserver only while a "
    "majority of the topology's etcd members sit on hosts that are up — a stacked master's "
    "crash takes its local member down with it, an external topology loses a member only "
    "with an etcd host",
    _STACKED + "; " + _EXTERNAL + "; " + _QUORUM, served_only_with_quorum)
SURVIVES_ONE_HOST_DOWN = Property(
    "cluster_store_survives_one_host_down", _C, INVARIANT,
    "with at most one host down (a master, or in the external topology an etcd host), every "
    "running master's apiserver is served by the store: three members tolerate one failure",
    _STACKED + "; 'run a minimum of three stacked control plane nodes'; " + _EXTERNAL
    + "; 'a minimum of three hosts for control plane nodes and three hosts for etcd nodes'; "
    + _QUORUM, serves_with_one_host_down)

LEASE_TRANSITIONS = Property(
    "cluster_lease_transitions_count_holder_changes", _C, TRANSITION,
    "a Lease's leaseTransitions (in the model: whether some Lease's count is above 0) is 0 "
    "when the Lease is first taken, goes up exactly when a write replaces the holder "
    "identity it names by another process's, and never goes down — so the failover cover, "
    "which reads it, is reached only by a failover",
    "coordination.k8s.io/v1 LeaseSpec: 'leaseTransitions is the number of transitions of a "
    "lease between holders', 'holderIdentity contains the identity of the holder of a "
    "current lease'; " + _LEASES, transitions_count_holder_changes)

COVER_HANDOVER = Property(
    "cluster_cover_lease_handover", _C, COVER,
    "a Lease passes from one holder to another (a failover)", _LEASES, some_handover)
COVER_LEADER_WRITE = Property(
    "cluster_cover_leader_write", _C, COVER,
    "a leader-only write of an elected component goes through the apiserver",
    _LEASES + "; --leader-elect: 'gain leadership before executing the main loop'",
    leader_write_taken)
COVER_CONFLICT = Property(
    "cluster_cover_lease_conflict", _C, COVER,
    "a candidate's Update of a Lease is refused with a 409 (its resourceVersion was stale)",
    "seeds: 'the second request would no longer have the same version number, in which case "
    "the kube-apiserver would reply with an error 409 to the requester'", some_lease_conflict)
COVER_CRASH = Property(
    "cluster_cover_master_crash", _C, COVER, "a master crashed and is down", _HA_TOPOLOGY,
    some_master_crashed)
COVER_ONE_DOWN_SERVES = Property(
    "cluster_cover_one_master_down_store_serves", _C, COVER,
    "one master is down and the store still serves the others", _HA_TOPOLOGY + "; " + _QUORUM,
    one_master_down_store_serves)
COVER_STACKED_TWO_DOWN_LOST = Property(
    "cluster_cover_stacked_two_masters_down_store_lost", _C, COVER,
    "stacked: two of three masters are down and the store serves nobody (two members lost)",
    _STACKED, two_masters_down_store_lost)
COVER_EXTERNAL_TWO_DOWN_SERVES = Property(
    "cluster_cover_external_two_masters_down_store_serves", _C, COVER,
    "external: two of three masters are down and the store still serves the third",
    _EXTERNAL, two_masters_down_store_serves)

_COMMON = (ONE_ACTIVE_LEADER, EVENTUALLY_LED, SERVED_ONLY_WITH_QUORUM, SURVIVES_ONE_HOST_DOWN,
           LEASE_TRANSITIONS, COVER_HANDOVER, COVER_LEADER_WRITE, COVER_CONFLICT, COVER_CRASH,
           COVER_ONE_DOWN_SERVES)
#: the stacked model's properties
STACKED = _COMMON + (COVER_STACKED_TWO_DOWN_LOST,)
#: the external model's properties
EXTERNAL = _COMMON + (COVER_EXTERNAL_TWO_DOWN_SERVES,)

__all__ = ["STACKED", "EXTERNAL", "ONE_ACTIVE_LEADER", "EVENTUALLY_LED",
           "SERVED_ONLY_WITH_QUORUM", "SURVIVES_ONE_HOST_DOWN", "LEASE_TRANSITIONS",
           "COVER_LEADER_WRITE",
           "majority_of_members_on_live_hosts"]

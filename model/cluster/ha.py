"""An HA control plane over one of the seeds' topologies: on every master a
kube-scheduler and a kube-controller-manager candidate, each component
electing its leader on its own Lease held by the apiserver
(``model.cluster.leader``), the store answering only with a quorum of its
etcd members, masters and etcd hosts crashing and restarting.

Which etcd member goes down with which host is the topology's placement
(``model.cluster.topology``): in the stacked layout a master's crash takes
its local member with it, in the external layout only an etcd host's does.
An apiserver reaches the store when the members it talks to include a live
one and a majority of all members is up (Raft: no quorum, no read or write
— the apiserver's reads of a Lease are quorum reads too).

Steps, per elected component ``r`` and master ``m`` (``system``):

* ``Get(r, m)``, ``Update(r, m)`` — client-go's tryAcquireOrRenew, split so
  that another write can fall between the read and the write (the 409);
* ``Act(r, m)`` — a leader-only write: what the component does once it
  believes it leads (kube-scheduler binds, kube-controller-manager
  reconciles). It goes through the apiserver, so it needs the store. What
  is written is left to the other models; that the write happens, by whom
  and when, is what the election is judged on;
* ``Tick()`` — one tick of the discrete clock, for every host at once.
  Time passes freely between retries, so a leader may miss its renewal (a
  slow apiserver, a long retry): that is how a leader loses its Lease here.

Faults, each with a budget: ``Crash(h)`` (a host goes down with everything
it runs; a master's processes restart later with a new identity, as
hostname_uuid identities do) and ``Restart(h)``.

What is abstracted: the other components' work (``Act``); network
partitions (a crash is the only way to lose a member or a candidate); the
process pause a real leader can suffer between its deadline check and its
write (client-go: "does not guarantee that only one client is acting as a
leader (a.k.a. fencing)") — here a leader's timers fire on the tick they
are due. A leader that gives up at its deadline keeps its identity and may
renew its own Lease if nobody took it (kube-scheduler would exit and come
back as a new identity: only later, never earlier, than here).

State (plain tuples)::

    (up, members, incarnations, roles, spent, ghosts)
    up           = per host 1/0, in the topology's host order
    members      = per etcd member 1/0 (the machine's own bookkeeping of
                   which members run; the topology says which should)
    incarnations = per master, the process generation (its identity)
    roles        = per elected component, (lease, candidates) — see leader
    spent        = (crashes, restarts)
    ghosts       = (handed_over, conflicted): a write replaced one holder by
                   another (some Lease's leaseTransitions is above 0, capped
                   at 1); an Update got a 409 — for the covers only
"""

from __future__ import annotations

from typing import ClassVar

from kubemc.model.cluster import leader
from kubemc.model.cluster.leader import FREE, LEASE_DURATION, RENEW_DEADLINE, Rules, Timing
from kubemc.model.cluster.topology import ELECTED, ha_external, ha_stacked, single_master
from kubemc.model.kernel import FAULT, SYSTEM, Machine, Mutant, Step, action

UP, MEMBERS, INCARNATIONS, ROLES, SPENT, GHOSTS = range(6)
LEASE, CANDIDATES = 0, 1

RENEW_TIME_EXPIRY = "expiry_from_renew_time"
BLIND_UPDATE = "blind_lease_update"
PAST_DEADLINE = "acts_past_renew_deadline"
NEVER_RETRIES = "candidate_never_retries"
KEEPS_MEMBER = "stacked_crash_keeps_etcd_member"
QUORUM_OF_ALL = "quorum_counts_every_member"
FIRST_TAKE_COUNTED = "transition_counted_on_first_take"

MUTANTS = {
    RENEW_TIME_EXPIRY: Mutant(
        "a candidate judges the Lease expired from the holder's renewTime read on its own "
        "clock instead of from when it observed the record change: with its clock ahead it "
        "takes the Lease while the holder, still inside its renew deadline, keeps acting — "
        "two active leaders after an expiry seen early on one clock (late on the other)",
        violates="cluster_one_active_leader_per_component"),
    BLIND_UPDATE: Mutant(
        "the Lease is written without the resourceVersion read (a blind write instead of "
        "client-go's Update of the object it read): two candidates that read a free or "
        "expired Lease both win, the first still believing it leads",
        violates="cluster_one_active_leader_per_component"),
    PAST_DEADLINE: Mutant(
        "a leader that cannot renew within renewDeadline keeps acting: its Lease expires "
        "and is taken while it still writes",
        violates="cluster_one_active_leader_per_component"),
    NEVER_RETRIES: Mutant(
        "a candidate that finds the Lease held by another stops trying (no retryPeriod "
        "loop): once the leader crashes nobody takes its place",
        violates="cluster_component_eventually_led"),
    KEEPS_MEMBER: Mutant(
        "the stacked topology modelled with a master's crash leaving its local etcd member "
        "up: the store keeps serving after the second master crash, on one member of three",
        violates="cluster_store_serves_only_with_quorum"),
    QUORUM_OF_ALL: Mutant(
        "the store is modelled as needing every etcd member rather than a majority: one "
        "crashed master (stacked) or etcd host (external) stops the whole control plane",
        violates="cluster_store_survives_one_host_down"),
    FIRST_TAKE_COUNTED: Mutant(
        "the Lease's leaseTransitions is counted up when the free Lease is first taken (no "
        "holder replaced): the failover cover is then reached by the first election alone",
        violates="cluster_lease_transitions_count_holder_changes"),
}

_RULES = {
    None: Rules(),
    RENEW_TIME_EXPIRY: Rules(expiry_from_renew_time=True),
    BLIND_UPDATE: Rules(blind_update=True),
    PAST_DEADLINE: Rules(ignores_renew_deadline=True),
    NEVER_RETRIES: Rules(never_retries=True),
    KEEPS_MEMBER: Rules(),
    QUORUM_OF_ALL: Rules(),
    FIRST_TAKE_COUNTED: Rules(),
}


def build_topology(name: str, masters: int):
    """The HA model's hosts: masters and etcd hosts (workers run no elected
    component and hold no etcd member, so they are left out)."""
    if name == "single-master":
        if masters != 1:
            raise ValueError("the single-master topology has masters=1")
        return single_master(workers=0)
    if name == "ha-stacked":
        return ha_stacked(masters=masters, workers=0)
    if name == "ha-external":
        return ha_external(masters=masters, workers=0)
    raise ValueError(f"unknown topology {name!r} (known: single-master, ha-stacked, "
                     "ha-external)")


class HAControlPlane(Machine):
    """N masters, each running a candidate of every elected component, over
    a topology's etcd members. See the module text. The subclasses below fix
    the topology and carry the mutants checked on it."""

    name = "cluster-ha"
    #: the topology a subclass fixes (then it is not a bound)
    fixed_topology: ClassVar[str | None] = None
    mutants = MUTANTS

    def __init__(self, topology: str = "ha-stacked", masters: int = 3, components: int = 2,
                 crashes: int = 1, restarts: int = 1, lease_duration: int = LEASE_DURATION,
                 renew_deadline: int = RENEW_DEADLINE, skew: int = 2, mutant: str | None = None):
        super().__init__(mutant)
        if not 1 <= components <= len(ELECTED):
            raise ValueError(f"components is 1 (kube-scheduler) or 2 (and "
                             f"kube-controller-manager), not {components}")
        if masters < 1:
            raise ValueError("masters must be at least 1")
        if mutant == KEEPS_MEMBER and topology != "ha-stacked":
            raise ValueError(f"mutant {KEEPS_MEMBER} is a stacked-topology mutant")
        self.topology = build_topology(topology, masters)
        self.masters = masters
        self.components = ELECTED[:components]
        self.crashes, self.restarts = crashes, restarts
        # the last master's clock runs ``skew`` ticks ahead of the others
        self.timing = Timing(lease_duration, renew_deadline,
                             tuple(skew if m == masters - 1 else 0 for m in range(masters)))
        self.skew = skew
        self.rules = _RULES[mutant]
        # ages past the lease duration matter only to a judge of renewTime
        self.age_cap = lease_duration + (skew if self.rules.expiry_from_renew_time else 0)
        self.member_hosts = self.topology.etcd_members
        self.member_of = {h: i for i, h in enumerate(self.member_hosts)}
        self.peers = {m: tuple(self.member_of[h] for h in self.topology.etcd_peers(m))
                      for m in range(masters)}

    def config(self):
        topology = {} if self.fixed_topology else {"topology": self.topology.name}
        return {**topology, "masters": self.masters,
                "components": len(self.components), "crashes": self.crashes,
                "restarts": self.restarts, "lease_duration": self.timing.lease_duration,
                "renew_deadline": self.timing.renew_deadline, "skew": self.skew}

    def init_states(self):
        hosts = len(self.topology.hosts)
        role = leader.initial(self.masters, self.age_cap)
        yield ((1,) * hosts, (1,) * len(self.member_hosts), (0,) * self.masters,
               (role,) * len(self.components), (0, 0), (0, 0))

    # -- the store -------------------------------------------------------------
    def serves(self, state, master: int) -> bool:
        """Whether master's apiserver gets answers from the store: the host
        is up, one of the members it talks to runs, and a majority runs."""
        members = state[MEMBERS]
        needed = len(members) if self.mutant == QUORUM_OF_ALL else self.topology.quorum
        return (state[UP][master] == 1 and any(members[i] for i in self.peers[master])
                and sum(members) >= needed)

    # -- steps -------------------------------------------------------------------
    def steps(self, state):
        for r in range(len(self.components)):
            for m in range(self.masters):
                yield Step("Get", (r, m))
                yield Step("Update", (r, m))
                yield Step("Act", (r, m))
        yield Step("Tick", ())
        for h in range(len(self.topology.hosts)):
            yield Step("Crash", (h,))
            yield Step("Restart", (h,))

    def _role_step_ok(self, state, r, m) -> bool:
        return (0 <= r < len(self.components) and 0 <= m < self.masters
                and self.serves(state, m))

    @staticmethod
    def _set_role(state, r, role):
        roles = state[ROLES]
        return state[:ROLES] + (roles[:r] + (role,) + roles[r + 1:],) + state[ROLES + 1:]

    @action("Get", tag=SYSTEM)
    def _get(self, state, r, m):
        if not self._role_step_ok(state, r, m):
            return None
        role = leader.get(state[ROLES][r], m, self.rules)
        return None if role is None else self._set_role(state, r, role)

    @action("Update", tag=SYSTEM)
    def _update(self, state, r, m):
        if not self._role_step_ok(state, r, m):
            return None
        role = state[ROLES][r]
        out = leader.update(role, m, state[INCARNATIONS][m], self.timing, self.rules)
        if out is None:
            return None
        new, outcome = out
        handed, conflicted = state[GHOSTS]
        if outcome == "conflict":
            if conflicted:
                return None
            return state[:GHOSTS] + ((handed, 1),)
        old = role[LEASE]
        if old[0] != FREE and old[:2] != new[LEASE][:2]:
            handed = 1
        if self.mutant == FIRST_TAKE_COUNTED and old[:2] != new[LEASE][:2]:
            handed = 1
        nxt = self._set_role(state, r, new)
        return nxt[:GHOSTS] + ((handed, conflicted),)

    @action("Act", tag=SYSTEM)
    def _act(self, state, r, m):
        if not self._role_step_ok(state, r, m) or not leader.leading(state[ROLES][r], m):
            return None
        return state            # the write is the step itself; its content is not modelled

    @action("Tick", tag=SYSTEM)
    def _tick(self, state):
        live = tuple(state[UP][m] == 1 for m in range(self.masters))
        roles = tuple(leader.tick(role, live, self.timing, self.rules, self.age_cap)
                      for role in state[ROLES])
        if roles == state[ROLES]:
            return None
        return state[:ROLES] + (roles,) + state[ROLES + 1:]

    @action("Crash", tag=FAULT, rare=True)
    def _crash(self, state, h):
        crashes, restarts = state[SPENT]
        if not 0 <= h < len(state[UP]) or not state[UP][h] or crashes >= self.crashes:
            return None
        up = state[UP][:h] + (0,) + state[UP][h + 1:]
        members, incs, roles = state[MEMBERS], state[INCARNATIONS], state[ROLES]
        is_master = h < self.masters
        if h in self.member_of and not (is_master and self.mutant == KEEPS_MEMBER):
            i = self.member_of[h]
            members = members[:i] + (0,) + members[i + 1:]
        if is_master:
            incs = incs[:h] + (incs[h] + 1,) + incs[h + 1:]
            roles = tuple(leader.crashed(role, h) for role in roles)
        return (up, members, incs, roles, (crashes + 1, restarts), state[GHOSTS])

    @action("Restart", tag=FAULT, rare=True)
    def _restart(self, state, h):
        crashes, restarts = state[SPENT]
        if not 0 <= h < len(state[UP]) or state[UP][h] or restarts >= self.restarts:
            return None
        up = state[UP][:h] + (1,) + state[UP][h + 1:]
        members = state[MEMBERS]
        if h in self.member_of:
            i = self.member_of[h]
            members = members[:i] + (1,) + members[i + 1:]
        return (up, members) + state[INCARNATIONS:SPENT] + ((crashes, restarts + 1),
                                                             state[GHOSTS])

    # -- display -------------------------------------------------------------------
    def identity(self, master: int, incarnation: int) -> str:
        return f"{self.topology.hosts[master].name}_{incarnation}" if master != FREE else ""

    def view(self, state):
        names = self.topology.host_names()
        out = {
            "hosts_up": {n: bool(u) for n, u in zip(names, state[UP], strict=True)},
            "etcd_members_up": {names[h]: bool(state[MEMBERS][i])
                                for i, h in enumerate(self.member_hosts)},
            "identities": [self.identity(m, i) for m, i in enumerate(state[INCARNATIONS])],
        }
        # one variable per Lease and per candidate, so a trace shows the one that changed
        for r, component in enumerate(self.components):
            lease, cands = state[ROLES][r]
            out[f"{component}.lease"] = {"holder": self.identity(lease[0], lease[1]),
                                         "ticks_since_renew": lease[2]}
            for m, c in enumerate(cands):
                out[f"{component}@{names[m]}"] = self._candidate_view(c)
        out["spent"] = {"crashes": state[SPENT][0], "restarts": state[SPENT][1]}
        out["handed_over"], out["lease_conflict"] = (bool(g) for g in state[GHOSTS])
        return out

    def _candidate_view(self, cand):
        seen, observed_age, lead = cand
        read = {}
        if seen:
            read = {"holder": self.identity(seen[0], seen[1]),
                    "resourceVersion_current": seen[2]}
        return {"read": read, "ticks_since_observed": observed_age,
                "leading_ticks_left": lead, "gave_up": lead == leader.GAVE_UP}


def _only(*names):
    return {n: MUTANTS[n] for n in names}


class StackedControlPlane(HAControlPlane):
    """The stacked-etcd topology: a local etcd member on every master."""

    name = "cluster-ha-stacked"
    fixed_topology = "ha-stacked"
    mutants = _only(RENEW_TIME_EXPIRY, BLIND_UPDATE, KEEPS_MEMBER, QUORUM_OF_ALL,
                    FIRST_TAKE_COUNTED)

    def __init__(self, masters: int = 3, components: int = 2, crashes: int = 2,
                 restarts: int = 1, lease_duration: int = LEASE_DURATION,
                 renew_deadline: int = RENEW_DEADLINE, skew: int = 2,
                 mutant: str | None = None):
        super().__init__("ha-stacked", masters, components, crashes, restarts,
                         lease_duration, renew_deadline, skew, mutant)


class ExternalControlPlane(HAControlPlane):
    """The external-etcd topology: etcd members on hosts of their own."""

    name = "cluster-ha-external"
    fixed_topology = "ha-external"
    mutants = _only(PAST_DEADLINE, NEVER_RETRIES)

    def __init__(self, masters: int = 3, components: int = 2, crashes: int = 2,
                 restarts: int = 0, lease_duration: int = LEASE_DURATION,
                 renew_deadline: int = RENEW_DEADLINE, skew: int = 2,
                 mutant: str | None = None):
        super().__init__("ha-external", masters, components, crashes, restarts,
                         lease_duration, renew_deadline, skew, mutant)


__all__ = ["HAControlPlane", "StackedControlPlane", "ExternalControlPlane", "MUTANTS",
           "build_topology", "UP", "MEMBERS", "INCARNATIONS", "ROLES", "SPENT", "GHOSTS", "LEASE",
           "CANDIDATES"]

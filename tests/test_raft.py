"""The Raft machine: handler semantics, exhaustive checks, symmetry, mutants."""

import pytest

from kubemc.checker.catalog.store import RAFT
from kubemc.checker.run import targeted
from kubemc.checker.explore import explore
from kubemc.model.kernel import Step
from kubemc.model.store.raft import (AEQ, AER, FOLLOWER, LEADER, RVQ, RVR, Raft,
                              bag_add, bag_remove)
from kubemc.properties import raft as props


def state_after(machine, *steps):
    (state,) = machine.init_states()
    for step in steps:
        nxt = machine.apply(state, step)
        assert nxt is not None, f"{step} not enabled"
        state = nxt
    return state


def test_bag_keeps_counts_and_order():
    bag = bag_add(bag_add(bag_add((), (2, 0)), (1, 0)), (2, 0))
    assert bag == (((1, 0), 1), ((2, 0), 2))
    assert bag_remove(bag, (2, 0)) == (((1, 0), 1), ((2, 0), 1))
    assert bag_remove(bag_remove(bag, (1, 0)), (9,)) == (((2, 0), 2),)


def test_an_election_then_replication_commits_an_entry():
    m = Raft(servers=3, max_term=2, max_log=1, max_messages=4)
    rvq = (RVQ, 0, 1, 1, 0, 0)
    s = state_after(m, Step("Timeout", (0,)), Step("RequestVote", (0, 1)),
                    Step("Receive", (rvq,)),   # UpdateTerm: the message stays
                    Step("Receive", (rvq,)),   # grant
                    Step("Receive", ((RVR, 1, 0, 1, True),)),
                    Step("BecomeLeader", (0,)), Step("ClientRequest", (0, 0)))
    assert s[0][0][1] == LEADER and s[0][0][3] == ((1, 0),)
    assert s[0][0][7] == (1, 1, 1)  # nextIndex: the log was empty when elected
    s = m.apply(s, Step("AppendEntries", (0, 1)))
    aeq1 = (AEQ, 0, 1, 1, 0, 0, ((1, 0),), 0)
    s = m.apply(s, Step("Receive", (aeq1,)))  # append, message kept
    s = m.apply(s, Step("Receive", (aeq1,)))  # acknowledge
    s = m.apply(s, Step("Receive", ((AER, 1, 0, 1, True, 1),)))
    s = m.apply(s, Step("AdvanceCommitIndex", (0,)))
    assert s[0][0][4] == 1
    assert all(p.check(m, s) for p in props.PROPERTIES if p.kind == "invariant")


def test_a_server_votes_once_per_term():
    m = Raft(servers=3, max_term=2, max_messages=4)
    s = state_after(m, Step("Timeout", (0,)), Step("Timeout", (1,)),
                    Step("RequestVote", (0, 2)), Step("Receive", ((RVQ, 0, 2, 1, 0, 0),)),
                    Step("Receive", ((RVQ, 0, 2, 1, 0, 0),)),
                    Step("RequestVote", (1, 2)), Step("Receive", ((RVQ, 1, 2, 1, 0, 0),)))
    assert ((RVR, 2, 1, 1, False), 1) in s[1]
    assert s[0][2][2] == 0


def test_a_candidate_steps_down_on_append_entries_of_its_term():
    m = Raft(servers=3, max_term=2, max_messages=4)
    s = state_after(m, Step("Timeout", (1,)))
    servers = list(s[0])
    servers[0] = (1, LEADER, 0, (), 0, 1, 3, (1, 1, 1), (0, 0, 0))
    s = (tuple(servers), ((((AEQ, 0, 1, 1, 0, 0, (), 0)), 1),))
    s = m.apply(s, Step("Receive", ((AEQ, 0, 1, 1, 0, 0, (), 0),)))
    assert s[0][1][1] == FOLLOWER


def test_restart_keeps_term_vote_and_log_and_forgets_the_rest():
    m = Raft(servers=3, max_term=2)
    s = state_after(m, Step("Timeout", (0,)), Step("Restart", (0,)))
    assert s[0][0] == (1, FOLLOWER, 0, (), 0, 0, 0, (), ())
    assert Raft(servers=3, faults=()).apply(s, Step("Restart", (0,))) is None


def test_candidate_restarted_is_reached_only_through_a_restart():
    m = Raft(servers=3, max_term=2, max_messages=4)
    candidate = state_after(m, Step("Timeout", (0,)))
    assert not props.candidate_restarted(m, candidate)
    assert props.candidate_restarted(m, m.apply(candidate, Step("Restart", (0,))))
    # a candidate that steps down to the leader of its term keeps its vote for
    # itself too, but that term has a leader: no restart is needed to get there
    s = state_after(m, Step("Timeout", (1,)))
    servers = list(s[0])
    servers[0] = (1, LEADER, 0, (), 0, 1, 3, (1, 1, 1), (0, 0, 0))
    aeq = (AEQ, 0, 1, 1, 0, 0, (), 0)
    s = m.apply((tuple(servers), ((aeq, 1),)), Step("Receive", (aeq,)))
    assert s[0][1][1] == FOLLOWER and s[0][1][2] == 1
    assert not props.candidate_restarted(m, s)
    # ... until that leader restarts
    assert props.candidate_restarted(m, m.apply(s, Step("Restart", (0,))))


def test_the_covers_are_reached_at_one_term_and_restart_is_what_reaches_one():
    bound = dict(servers=3, max_term=1, max_log=0, max_messages=1, symmetry=True)
    covers = [props.LEADER_ELECTED, props.CANDIDATE_RESTARTED]
    out = explore(Raft(**bound), covers)
    assert out.complete and out.covers == {"leader_elected": True, "candidate_restarted": True}
    out = explore(Raft(**bound, faults=()), covers)
    assert out.covers == {"leader_elected": True, "candidate_restarted": False}
    # a cover's teeth is being unreached (covers carry no seeded mutant: an
    # unreached cover has no counterexample to commit as a trace): with no
    # message in flight allowed, no vote is ever counted and nobody leads
    out = explore(Raft(**{**bound, "max_messages": 0}), covers)
    assert out.complete and out.covers == {"leader_elected": False,
                                           "candidate_restarted": True}


def test_counted_votes_were_granted_on_the_election_machine():
    from kubemc.checker.catalog.store import ELECTION
    from kubemc.model.store.election import Election

    prop = props.COUNTED_VOTES_WERE_GRANTED
    out = explore(ELECTION.machine(None), ELECTION.properties)
    assert out.complete and out.counterexample is None and out.covers == {"leader_elected": True}
    m = Election(3, 1)
    (init,) = m.init_states()
    assert prop.check(m, init)
    # a vote counted with no granted response behind it: server 1 counts 0's
    # vote at term 0, and server 0 its own without having voted for itself
    assert not prop.check(m, (((0, FOLLOWER, -1, 1),) * 3, 0))
    # the seeded bug counts a refused answer as a vote
    bad = ELECTION.machine("count_refused_votes")
    cex = explore(bad, targeted(ELECTION, "count_refused_votes")).counterexample
    assert cex is not None and cex.prop.name == "counted_votes_were_granted"
    assert cex.steps[-1][0].name == "HandleRequestVoteResponse"


def test_steps_and_fused_successors_agree():
    m = Raft(servers=3, max_term=2, max_log=1, max_messages=2)
    out = explore(m, [], max_states=3000)
    frontier = [next(iter(m.init_states()))]
    seen = 0
    while frontier and seen < 300:
        s = frontier.pop()
        fused = set(m.successors(s))
        generic = {(st, t) for st in m.steps(s) if (t := m.apply(s, st)) is not None}
        assert fused == generic
        frontier.extend(t for _, t in fused)
        seen += 1
    assert out.stats.states >= 3000


def test_small_bound_holds_completely_with_and_without_symmetry():
    bound = dict(servers=3, max_term=2, max_log=0, max_messages=1, faults=("Restart",))
    plain = explore(Raft(**bound), props.PROPERTIES)
    sym = explore(Raft(**bound, symmetry=True), props.PROPERTIES)
    assert plain.complete and plain.counterexample is None
    assert sym.complete and sym.counterexample is None
    assert sym.stats.states < plain.stats.states / 3


def test_symmetry_representative_is_in_the_orbit():
    m = Raft(servers=3, max_term=2, max_messages=3, symmetry=True)
    s = state_after(Raft(servers=3, max_term=2, max_messages=3),
                    Step("Timeout", (0,)), Step("RequestVote", (0, 2)))
    c = m.canonical(s)
    assert c != s
    orbit = {m.permute(s, p) for p in ([0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0],
                                       [2, 0, 1], [2, 1, 0])}
    assert c in orbit


@pytest.mark.parametrize("mutant", sorted(Raft.mutants))
def test_every_raft_mutant_is_caught_by_explore(mutant):
    machine = RAFT.machine(mutant)
    out = explore(machine, targeted(RAFT, mutant))
    assert out.counterexample is not None, f"{mutant} escaped at {machine.config()}"
    assert out.counterexample.prop.name == Raft.mutants[mutant].violates

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


def test_a_second_election_leaves_the_old_terms_votes_behind():
    """The audit's stale-vote bug (a Timeout that keeps the counted votes of
    the previous term) changes nothing at `election`'s one term: at term 0
    nobody has counted a vote, so its Timeout is the correct one. The
    catalog's `election-reelection` (server 0 stands in terms 1 and 2, the
    others vote) reaches it, and counted_votes_were_granted sees it."""
    from kubemc.checker import stateful
    from kubemc.checker.catalog.store import ELECTION, ELECTION_REELECTION

    mutant = "timeout_keeps_votes"
    assert ELECTION_REELECTION.bounds == {"servers": 3, "max_term": 2, "candidates": 1}
    good = explore(ELECTION_REELECTION.machine(None), ELECTION_REELECTION.properties)
    assert good.complete and good.counterexample is None
    assert good.covers == {"leader_elected": True, "candidate_stood_again": True}
    # invisible at one term: the same states as the correct model, and it holds
    one_term = explore(ELECTION.machine(mutant), ELECTION.properties)
    assert one_term.counterexample is None and one_term.stats.states == 10105
    # caught in the second election, by explore at the catalog's bounds ...
    cex = explore(ELECTION_REELECTION.machine(mutant),
                  targeted(ELECTION_REELECTION, mutant)).counterexample
    assert cex is not None and cex.prop.name == "counted_votes_were_granted"
    assert [s[0].name for s in cex.steps][-2:] == ["HandleRequestVoteResponse", "Timeout"]
    # ... and by random runs at both models' hypothesis bounds
    for model in (ELECTION, ELECTION_REELECTION):
        runs = stateful.check(model.hypothesis_machine(mutant), targeted(model, mutant),
                              profile="ci")
        assert runs.counterexample is not None, model.name
        assert runs.counterexample.prop.name == "counted_votes_were_granted"


def test_the_stood_again_cover_needs_a_second_term_and_a_granted_vote():
    from kubemc.checker.catalog.store import ELECTION_REELECTION
    from kubemc.model.store.election import CANDIDATE, RESPONSE, Election

    cover = props.CANDIDATE_STOOD_AGAIN
    m = Election(3, 2, candidates=1)
    granted = m.message_bit((RESPONSE, 1, 0, 1, True))
    refused = m.message_bit((RESPONSE, 1, 0, 1, False))
    second = ((2, CANDIDATE, 0, 1), (1, FOLLOWER, 0, 0), (0, FOLLOWER, -1, 0))
    assert cover.check(m, (second, granted))
    assert not cover.check(m, (second, refused))          # nobody granted it a vote
    assert not cover.check(m, (((1, CANDIDATE, 0, 1),) + second[1:], granted))  # same term
    # at one term it is never reached: the model must keep its second term
    out = explore(ELECTION_REELECTION.machine(None, max_term=1), [cover])
    assert out.complete and out.covers == {"candidate_stood_again": False}
    # only server 0 stands: the others never time out
    with pytest.raises(ValueError):
        Election(3, 2, candidates=4)
    assert Election(3, 2, candidates=1).config() == {"servers": 3, "max_term": 2,
                                                     "candidates": 1}
    assert Election(3, 1).config() == {"servers": 3, "max_term": 1}


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


def test_a_stale_append_entries_response_is_taken_off_the_network():
    """raft.tla's Receive takes every message: an AppendEntries response of
    an older term (DropStaleResponse) or reaching a server that no longer
    leads is discarded. The seeded bug leaves it in flight for good."""
    good = Raft(servers=3, max_term=3, max_messages=2)
    bad = Raft(servers=3, max_term=3, max_messages=2, mutant="stale_response_kept")
    prop = props.MESSAGES_RECEIVABLE
    s = state_after(good, Step("Timeout", (0,)), Step("Timeout", (1,)))
    stale = (AER, 2, 0, 1, True, 0)  # a term-1 answer to server 0, now a candidate
    s = (s[0], bag_add(s[1], stale))
    for m in (good, bad):
        s2 = m.apply(s, Step("Timeout", (0,)))  # server 0 moves on to term 2
        assert s2[0][0][0] == 2
        if m is good:
            assert prop.check(m, s2)
            after = m.apply(s2, Step("Receive", (stale,)))
            assert after == (s2[0], bag_remove(s2[1], stale))  # only the message goes
        else:
            assert m.apply(s2, Step("Receive", (stale,))) is None
            assert not prop.check(m, s2)


def test_the_kept_stale_response_is_caught_with_and_without_symmetry():
    """With symmetry (the catalog's bounds) the counterexample is rebuilt
    through the representatives the search recorded: it once stopped with
    "could not rebuild the counterexample", when raft's canonical left
    servers tied on their key in index order. Both searches give a shortest
    trace, so of one length; random runs catch it too."""
    from kubemc.checker import stateful

    mutant = "stale_response_kept"
    machine = RAFT.machine(mutant)
    assert machine.symmetry
    sym = explore(machine, targeted(RAFT, mutant)).counterexample
    plain = explore(Raft(**{**machine.config(), "symmetry": False}, mutant=mutant),
                    targeted(RAFT, mutant)).counterexample
    assert sym.prop.name == plain.prop.name == "messages_receivable"
    assert len(sym.steps) == len(plain.steps) == 9
    state = sym.init
    for step, after in sym.steps:  # the rebuilt trace replays step by step
        assert machine.apply(state, step) == after
        state = after
    assert not props.MESSAGES_RECEIVABLE.check(machine, state)
    runs = stateful.check(RAFT.hypothesis_machine(mutant), targeted(RAFT, mutant), profile="ci")
    assert runs.counterexample is not None
    assert runs.counterexample.prop.name == "messages_receivable"

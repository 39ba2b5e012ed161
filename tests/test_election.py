"""The election machine's one-vote-per-term invariant and the bug it sees: a
server that grants a request of an older term than its own."""

import pytest

from kubemc.checker import stateful
from kubemc.checker.catalog.store import ELECTION, ELECTION_REELECTION
from kubemc.checker.explore import explore
from kubemc.checker.run import targeted
from kubemc.model.store.election import (
    CANDIDATE, FOLLOWER, NOBODY, REQUEST, RESPONSE, Election,
)
from kubemc.properties import raft as props

PROP = props.ONE_GRANT_PER_TERM


def test_one_grant_per_term_judges_what_was_granted():
    m = Election(3, 2, candidates=2)
    (init,) = m.init_states()
    assert PROP.check(m, init)
    to_1 = m.message_bit((RESPONSE, 2, 1, 1, True))
    to_0 = m.message_bit((RESPONSE, 2, 0, 1, True))
    idle = (FOLLOWER, NOBODY, 0)
    servers = ((1, CANDIDATE, 0, 1), (1, CANDIDATE, 1, 2), (2, *idle))
    # one granted response per voter and term: holds, whatever votedFor says now
    assert PROP.check(m, (servers, to_1))
    # two granted responses of term 1 from server 2: violated, though server 2
    # has moved on to term 2 and its votedFor no longer speaks of term 1
    assert not PROP.check(m, (servers, to_1 | to_0))
    # a refused answer is no vote
    assert PROP.check(m, (servers, to_1 | m.message_bit((RESPONSE, 2, 0, 1, False))))
    # a server that stood in term 1 (its RequestVote of term 1 was sent) voted
    # for itself there: a grant to another candidate of term 1 is a second vote
    stood = m.message_bit((REQUEST, 1, 0, 1))
    voter_1 = ((1, CANDIDATE, 0, 1), (2, *idle), (2, *idle))
    granted_by_1 = m.message_bit((RESPONSE, 1, 0, 1, True))
    assert PROP.check(m, (voter_1, granted_by_1))
    assert not PROP.check(m, (voter_1, granted_by_1 | stood))
    # in its current term: a candidate (or a server counting its own vote)
    # that granted another, or a votedFor naming another than its grant
    assert not PROP.check(m, (((1, CANDIDATE, 0, 1), (1, CANDIDATE, 1, 2), (1, *idle)),
                              granted_by_1))
    assert not PROP.check(m, (((1, CANDIDATE, 0, 1), (1, FOLLOWER, 2, 0), (1, *idle)),
                              granted_by_1))


@pytest.mark.parametrize("model", [ELECTION, ELECTION_REELECTION], ids=lambda m: m.name)
def test_the_correct_models_hold_it(model):
    assert PROP in model.properties
    out = explore(model.machine(None), model.properties)
    assert out.complete and out.counterexample is None


def test_a_stale_grant_is_a_second_vote_in_an_old_term():
    """The audit's E2: a voter grants a request of a term older than its own
    and answers at that term. One term (`election`) has no older term to
    grant, and one candidate (`election-reelection`'s defaults) no second
    candidate to vote for; the mutant's bounds add the second candidate."""
    mutant = "grant_stale_term"
    assert Election.mutants[mutant].violates == "one_grant_per_term"
    assert ELECTION_REELECTION.mutant_bounds[mutant] == {"candidates": 2}
    # invisible at one term: the same states as the correct model
    one_term = explore(ELECTION.machine(mutant), ELECTION.properties)
    assert one_term.complete and one_term.counterexample is None
    assert one_term.stats.states == 10105
    # and at one candidate
    one_candidate = explore(ELECTION_REELECTION.machine(mutant, candidates=1),
                            ELECTION_REELECTION.properties)
    assert one_candidate.complete and one_candidate.counterexample is None
    # caught by explore with a second candidate, 8 steps: server 1 stands in
    # term 1, moves on to term 2, then grants server 0's request of term 1
    cex = explore(ELECTION_REELECTION.machine(mutant), ELECTION_REELECTION.properties
                  ).counterexample
    assert cex is not None and cex.prop.name == "one_grant_per_term"
    assert cex.steps[-1][0].name == "HandleRequestVoteRequest"
    assert len(cex.steps) == 8
    # and by random runs at both models' hypothesis bounds
    for model in (ELECTION, ELECTION_REELECTION):
        runs = stateful.check(model.hypothesis_machine(mutant), targeted(model, mutant),
                              profile="ci")
        assert runs.counterexample is not None, model.name
        assert runs.counterexample.prop.name == "one_grant_per_term"


@pytest.mark.parametrize("mutant, prop, steps, at_one_term", [
    # E1: two candidates of one term each lead on their own vote
    ("self_vote_counted_twice", "election_safety", 4, True),
    # E6: a restarted candidate grants a second candidate of its term
    ("restart_forgets_vote", "one_grant_per_term", 6, True),
    # E4: needs a newer term another server started, so two terms
    ("step_down_keeps_votes", "counted_votes_were_granted", 5, False),
])
def test_the_audits_other_election_bugs_are_caught(mutant, prop, steps, at_one_term):
    assert Election.mutants[mutant].violates == prop
    assert ELECTION_REELECTION.mutant_bounds[mutant] == {"candidates": 2}
    # election-reelection's one candidate cannot show them
    one_candidate = explore(ELECTION_REELECTION.machine(mutant, candidates=1),
                            ELECTION_REELECTION.properties)
    assert one_candidate.complete and one_candidate.counterexample is None
    # with the second candidate of the mutant's bounds, explore's shortest counterexample
    cex = explore(ELECTION_REELECTION.machine(mutant), targeted(ELECTION_REELECTION, mutant)
                  ).counterexample
    assert cex is not None and cex.prop.name == prop and len(cex.steps) == steps
    # election's one term, at its defaults
    one_term = explore(ELECTION.machine(mutant), targeted(ELECTION, mutant))
    assert (one_term.counterexample is not None) == at_one_term
    if not at_one_term:
        assert one_term.complete and one_term.stats.states == 10105
    for model in (ELECTION, ELECTION_REELECTION):
        runs = stateful.check(model.hypothesis_machine(mutant), targeted(model, mutant),
                              profile="ci")
        assert runs.counterexample is not None, model.name
        assert runs.counterexample.prop.name == prop


def test_the_z3_engine_finds_a_self_vote_counted_twice():
    """The store's z3 checks speak of election_safety, so they cover every
    mutant that violates it: the encoding carries this one too, and its BMC
    counterexample (one term, 3 servers) replays on the machine."""
    from helpers import assert_encoding_agrees_on_reachable_states

    from kubemc.checker.z3engine import VIOLATED, run_obligation
    from kubemc.properties.symbolic.election import (
        ELECTION_SAFETY, OBLIGATIONS, ElectionEncoding,
    )

    mutant = "self_vote_counted_twice"
    assert_encoding_agrees_on_reachable_states(ElectionEncoding(3, 1, mutant), 1500,
                                               first=20, spread=30)
    result = run_obligation(OBLIGATIONS[0], mutant)
    assert result.verdict == VIOLATED, result.summary()
    cex = result.counterexample
    assert cex.prop.name == "election_safety" and len(cex.steps) == 4
    machine = Election(3, 1, mutant)
    state = cex.init
    for step, expected in cex.steps:
        state = machine.apply(state, step)
        assert state == expected
    assert not ELECTION_SAFETY.check(machine, state)

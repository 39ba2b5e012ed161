"""The election machine, its Z3 encoding, and the Election Safety proofs.

The differential tests keep ``properties.symbolic.election`` in step with
``model.store.election``: on reachable states (from the explore engine) and
on random walks (Hypothesis), every executable step is a symbolic step with
the same name, and Z3 finds no symbolic successor that is not an executable
one.
"""

from __future__ import annotations

import itertools

import pytest
from helpers import (
    assert_encoding_agrees_on_random_walks, assert_encoding_agrees_on_reachable_states,
    reachable, run,
)

from kubemc.checker.explore import explore
from kubemc.checker.z3engine import (
    CTI, NOT_FOUND, PROVED, VIOLATED, bmc, k_induction, run_obligation,
)
from kubemc.model.kernel import Step
from kubemc.model.store.election import LEADER, NOBODY, REQUEST, RESPONSE, Election
from kubemc.properties.symbolic.election import ELECTION_SAFETY, OBLIGATIONS, ElectionEncoding


# ---------------------------------------------------------------------------
# the executable machine
# ---------------------------------------------------------------------------


def test_an_election_by_request_and_response():
    m = Election(3, 2)
    s = run(m, Step("Timeout", (0,)), Step("RequestVote", (0, 1)),
            Step("UpdateTerm", (1, 1)), Step("HandleRequestVoteRequest", (1, 0, 1, True)),
            Step("HandleRequestVoteResponse", (0, 1)), Step("BecomeLeader", (0,)))
    servers, sent = s
    assert servers[0] == (1, LEADER, 0, 0b011)
    assert servers[1][2] == 0
    assert {(REQUEST, 0, 1, 1), (RESPONSE, 1, 0, 1, True)} == set(m.messages(sent))
    # a monotone set: receiving again changes nothing, so it is not a step
    assert m.apply(s, Step("HandleRequestVoteRequest", (1, 0, 1, True))) is None
    assert m.view(s)["state"][0] == "Leader"


def test_a_voter_refuses_a_second_candidate_unless_mutated():
    steps = [Step("Timeout", (0,)), Step("Timeout", (1,)),
             Step("RequestVote", (0, 2)), Step("RequestVote", (1, 2)),
             Step("UpdateTerm", (2, 1)), Step("HandleRequestVoteRequest", (2, 0, 1, True)),
             Step("HandleRequestVoteRequest", (2, 1, 1, True))]
    servers, sent = run(Election(3, 1), *steps)
    assert servers[2][2] == 0 and (RESPONSE, 2, 1, 1, False) in Election(3, 1).messages(sent)
    servers, sent = run(Election(3, 1, "double_vote"), *steps)
    assert servers[2][2] == 1


def test_log_ok_is_a_nondeterministic_input():
    m = Election(3, 1)
    s = run(m, Step("Timeout", (0,)), Step("RequestVote", (0, 1)), Step("UpdateTerm", (1, 1)))
    refused = m.apply(s, Step("HandleRequestVoteRequest", (1, 0, 1, False)))
    granted = m.apply(s, Step("HandleRequestVoteRequest", (1, 0, 1, True)))
    assert refused[0][1][2] == NOBODY and granted[0][1][2] == 0


def test_exhaustive_exploration_at_one_term():
    out = explore(Election(3, 1), [ELECTION_SAFETY])
    assert out.complete and out.counterexample is None
    assert out.stats.states > 5000
    bad = explore(Election(3, 1, "double_vote"), [ELECTION_SAFETY])
    assert bad.counterexample is not None and len(bad.counterexample.steps) == 10


# ---------------------------------------------------------------------------
# differential: encoding vs machine
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("servers,max_term,mutant", [
    (3, 1, None), (3, 2, None), (3, 1, "double_vote"), (4, 2, None)])
def test_differential_on_reachable_states(servers, max_term, mutant):
    enc = ElectionEncoding(servers, max_term, mutant)
    assert_encoding_agrees_on_reachable_states(enc, 1500, first=20, spread=30)


@pytest.mark.parametrize("servers,max_term,mutant", [(3, 3, None), (5, 2, "double_vote")])
def test_differential_on_random_walks(servers, max_term, mutant):
    enc = ElectionEncoding(servers, max_term, mutant)
    assert_encoding_agrees_on_random_walks(enc, examples=12, min_steps=5, max_steps=30,
                                           last=4)


def test_symbolic_property_and_lemmas_agree_with_the_machine():
    enc = ElectionEncoding(3, 2)
    sym = enc.properties["election_safety"].pred
    states = reachable(enc.machine, 3000)[::15]
    for state in states:
        assert enc.holds(sym, state) == ELECTION_SAFETY.check(enc.machine, state)
        for name, lemma in enc.lemmas.items():
            assert enc.holds(lemma, state), f"lemma {name} fails in reachable {state}"
    # and on the mutant, the symbolic property sees the violation too
    mutant = ElectionEncoding(3, 1, "double_vote")
    cex = explore(mutant.machine, [ELECTION_SAFETY]).counterexample
    assert not mutant.holds(mutant.properties["election_safety"].pred, cex.final)


# ---------------------------------------------------------------------------
# proofs and mutants
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("ob", OBLIGATIONS, ids=[ob.name for ob in OBLIGATIONS])
def test_election_safety_is_proved_by_induction(ob):
    result = run_obligation(ob)
    print(f"\n{result.summary()}")
    assert result.verdict == PROVED, result.summary()


def test_the_proof_does_not_depend_on_the_fast_solver():
    result = k_induction(ElectionEncoding(3, 3), "election_safety", 1, logic=None)
    assert result.verdict == PROVED


def test_double_vote_gives_two_leaders_in_one_term_replayed_on_the_machine():
    result = run_obligation(OBLIGATIONS[0], "double_vote")
    assert result.verdict == VIOLATED, result.summary()
    cex = result.counterexample
    assert cex.prop is ELECTION_SAFETY and len(cex.steps) == 10  # shortest
    # replay independently of the engine
    machine = Election(3, 1, "double_vote")
    state = cex.init
    assert state in list(machine.init_states())
    for step, expected in cex.steps:
        state = machine.apply(state, step)
        assert state == expected
    leaders = [s for s in state[0] if s[1] == LEADER]
    assert len(leaders) == 2 and leaders[0][0] == leaders[1][0]
    assert not ELECTION_SAFETY.check(machine, state)


def test_bmc_finds_nothing_without_the_mutant():
    assert bmc(ElectionEncoding(3, 1), "election_safety", 10).verdict == NOT_FOUND


@pytest.mark.parametrize("dropped", ["one_grant_per_term", "grant_matches_vote",
                                     "granted_were_granted", "self_vote",
                                     "leader_has_quorum"])
def test_each_lemma_is_needed_a_weaker_strengthening_has_a_cti(dropped):
    enc = ElectionEncoding(3, 2)
    enc.lemmas = {n: f for n, f in enc.lemmas.items() if n != dropped}
    result = k_induction(enc, "election_safety", 1)
    assert result.verdict == CTI, result.summary()
    cti = result.cti
    assert cti.failing and cti.replays  # the step is a real step of the machine
    assert Election(3, 2).apply(cti.states[0], cti.steps[0]) == cti.states[1]


def test_a_wrong_lemma_gives_a_counterexample_to_induction():
    enc = ElectionEncoding(3, 2)
    # "no candidate ever holds two votes" is false: induction breaks on it
    enc.lemmas = dict(enc.lemmas, at_most_one_vote=lambda S: _at_most_one_vote(enc, S))
    result = k_induction(enc, "election_safety", 1)
    assert result.verdict == CTI and result.cti.failing == ("at_most_one_vote",)


def _at_most_one_vote(enc, S):
    import z3
    return z3.And([z3.Not(z3.And(S["granted", c, a], S["granted", c, b]))
                   for c in range(enc.n)
                   for a, b in itertools.combinations(range(enc.n), 2)])


def test_the_z3_counterexample_is_an_itf_trace_that_kubemc_replays():
    from kubemc.checker import traces
    result = run_obligation(OBLIGATIONS[0], "double_vote")
    machine = Election(3, 1, "double_vote")
    trace = traces.to_itf(result.counterexample, model="election", machine=machine,
                          engine="z3", command="kubemc check store --engine z3 "
                                                "--mutant double_vote")
    replayed = traces.replay(trace)
    assert replayed.reproduced and replayed.steps_replayed == 10, replayed.message
    assert replayed.divergences == ()

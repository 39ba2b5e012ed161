"""Raft × MVCC (model/store/raft_mvcc.py): the log carries MVCC requests and
every member applies the committed ones to its own store."""

from pathlib import Path

import pytest

from kubemc.checker import stateful, traces
from kubemc.checker.catalog.store import RAFT_MVCC, RAFT_MVCC_PROGRESS
from kubemc.checker.explore import explore
from kubemc.checker.run import targeted
from kubemc.model.kernel import Step
from kubemc.model.store import mvcc
from kubemc.model.store.raft import COMMIT, LEADER, LOG, ROLE, bag_size
from kubemc.model.store.raft_mvcc import (COMMANDS, RaftMvcc, RaftMvccProgress, apply_entries,
                                          request)
from kubemc.properties import raft_mvcc as props

BY_NAME = {p.name: p for p in props.PROPERTIES}


def test_the_log_carries_mvcc_requests():
    assert request(0) == mvcc.Put("a", "x") and request(1) == mvcc.Put("a", "y")
    assert len({request(c) for c in range(len(COMMANDS))}) == len(COMMANDS)


@pytest.mark.parametrize("bounds", [
    dict(servers=3, max_term=1, max_log=1, symmetry=True),
    dict(servers=2, max_term=2, max_log=2),
], ids=["3-servers-1-term", "2-servers-2-terms-2-entries"])
def test_the_correct_composition_holds_and_reaches_its_cover(bounds):
    out = explore(RAFT_MVCC.machine(**bounds), RAFT_MVCC.properties)
    assert out.complete and out.counterexample is None
    assert out.covers == {"two_members_applied_a_write": True}


def test_a_member_applies_only_what_its_server_knows_committed():
    m = RaftMvcc(servers=2, max_term=1, max_log=1)
    (s,) = m.init_states()
    for step in [Step("raft.Timeout", (0,)), Step("raft.RequestVote", (0, 1))]:
        s = m.apply(s, step)
    rvq = s[0][1][0][0]
    s = m.apply(m.apply(s, Step("raft.Receive", (rvq,))), Step("raft.Receive", (rvq,)))
    s = m.apply(s, Step("raft.Receive", (s[0][1][0][0],)))
    s = m.apply(s, Step("raft.BecomeLeader", (0,)))
    s = m.apply(s, Step("raft.ClientRequest", (0, 1)))
    assert s[0][0][0][ROLE] == LEADER and s[0][0][0][COMMIT] == 0
    assert m.apply(s, Step("raft->kv.Apply", (0,))) is None  # in the log, not committed
    buggy = RaftMvcc(servers=2, max_term=1, max_log=1, mutant="apply_uncommitted")
    applied = buggy.apply(s, Step("raft->kv.Apply", (0,)))
    assert applied[1][0][0] == 1 and mvcc.read(applied[1][0][1], "a").value == "y"


@pytest.mark.parametrize("mutant", sorted(RaftMvcc.mutants))
def test_every_mutant_is_caught_by_explore(mutant):
    machine = RAFT_MVCC.machine(mutant)
    assert machine.part("kv").mutant == mutant  # the composition passed it on
    out = explore(machine, targeted(RAFT_MVCC, mutant))
    cex = out.counterexample
    assert cex is not None, f"{mutant} escaped at {machine.config()}"
    assert cex.prop.name == RaftMvcc.mutants[mutant].violates


@pytest.mark.parametrize("mutant", sorted(RaftMvcc.mutants))
def test_every_mutant_is_caught_by_hypothesis(mutant):
    machine = RAFT_MVCC.hypothesis_machine(mutant)
    outcome = stateful.check(machine, targeted(RAFT_MVCC, mutant), profile="ci")
    cex = outcome.counterexample
    assert cex is not None, f"{mutant} escaped {outcome.examples} random runs"
    assert cex.prop.name == RaftMvcc.mutants[mutant].violates


def test_a_raft_mutant_given_to_the_composition_reaches_raft_and_breaks_agreement():
    """raft's own seeded bug, named to the composite, is carried to the raft
    part: a leader that commits on a bare half lets two members apply
    different requests at one revision."""
    machine = RaftMvcc(servers=3, max_term=2, max_log=1, symmetry=True,
                       mutant="quorum_off_by_one")
    assert machine.part("raft").mutant == "quorum_off_by_one"
    assert machine.part("raft").commit_quorum == 1 and machine.part("kv").mutant is None
    out = explore(machine, [BY_NAME["mvcc_states_agree"]])
    assert out.counterexample is not None
    assert out.counterexample.prop.name == "mvcc_states_agree"


def test_symmetry_keeps_a_state_in_its_orbit_and_shrinks_the_space():
    bounds = dict(servers=3, max_term=1, max_log=0)
    plain = explore(RaftMvcc(**bounds), [])
    sym = explore(RaftMvcc(**bounds, symmetry=True), [])
    assert plain.complete and sym.complete
    assert sym.stats.states < plain.stats.states / 1.5  # 2,088 against 3,905
    m = RaftMvcc(**bounds, symmetry=True)
    (s,) = m.init_states()
    s = m.apply(s, Step("raft.Timeout", (0,)))
    s = m.apply(s, Step("raft.RequestVote", (0, 1)))
    c = m.canonical(s)
    raft = m.part("raft")
    orbit = {(raft.permute(s[0], p), tuple(s[1][p.index(k)] for k in range(3)))
             for p in ([0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0])}
    assert c != s and c in orbit


def test_unknown_mutant_and_bad_bounds_are_refused():
    from kubemc.model.kernel import UnknownMutant
    with pytest.raises(UnknownMutant):
        RaftMvcc(mutant="nope")
    with pytest.raises(ValueError, match="commands"):
        RaftMvcc(commands=len(COMMANDS) + 1)


# -- progress: store-raft-mvcc-progress -----------------------------------------------

TRACES = Path(__file__).resolve().parents[1] / "traces" / "store"


def test_the_progress_model_holds_with_its_liveness_property_decided():
    """At its defaults the liveness check finishes (no state left outside the
    bounds: the message bound is a budget of the steps there) and holds, the
    two invariants hold and the cover is reached."""
    out = explore(RAFT_MVCC_PROGRESS.machine(), RAFT_MVCC_PROGRESS.properties)
    assert {p.name for p in RAFT_MVCC_PROGRESS.properties} == {
        "mvcc_states_agree", "applied_state_follows_log", "two_members_applied_a_write",
        "committed_entries_applied"}
    assert out.complete and out.counterexample is None and out.undecided == ()
    assert out.covers == {"two_members_applied_a_write": True}


def test_the_progress_models_message_bound_disables_sends_past_it():
    m = RAFT_MVCC_PROGRESS.machine(max_messages=1)
    (s,) = m.init_states()
    s = m.apply(m.apply(s, Step("raft.Timeout", (0,))), Step("raft.RequestVote", (0, 1)))
    assert bag_size(s[0][1]) == 1
    # RaftMvcc lets a second message out, to a state outside its bounds
    plain = RaftMvcc(servers=2, max_term=1, max_log=2, max_messages=1)
    beyond = plain.apply(s, Step("raft.Timeout", (1,)))
    beyond = plain.apply(beyond, Step("raft.RequestVote", (1, 0)))
    assert beyond is not None and not plain.within_bounds(beyond)
    # the progress model disables that step, in apply and in successors alike
    t = m.apply(s, Step("raft.Timeout", (1,)))
    assert m.apply(t, Step("raft.RequestVote", (1, 0))) is None
    assert all(bag_size(nxt[0][1]) <= 1 and m.within_bounds(nxt)
               for _, nxt in m.successors(t))


def test_committed_entries_applied_fails_while_a_member_lags_its_commit_index():
    m = RaftMvccProgress(servers=2, max_term=1, max_log=2)
    (s,) = m.init_states()
    assert props.committed_entries_applied(m, s)
    servers, bag = s[0]
    log = ((1, 0), (1, 1))
    server = servers[0][:LOG] + (log, 2) + servers[0][COMMIT + 1:]
    lagging = (((server, servers[1]), bag), ((1, apply_entries(log[:1])), s[1][1]))
    assert props.applied_state_follows_log(m, lagging)      # a prefix: the invariants pass
    assert not props.committed_entries_applied(m, lagging)
    caught_up = m.apply(lagging, Step("raft->kv.Apply", (0,)))
    assert caught_up[1][0] == (2, apply_entries(log))
    assert props.committed_entries_applied(m, caught_up)
    stalled = RaftMvccProgress(servers=2, max_term=1, max_log=2, mutant="apply_stalls")
    assert stalled.apply(lagging, Step("raft->kv.Apply", (0,))) is None
    # a commit index past the end of the log counts up to the log's end
    short = (((server[:LOG] + (log[:1], 2) + server[COMMIT + 1:], servers[1]), bag),
             lagging[1])
    assert props.committed_entries_applied(m, short)


def test_apply_stalls_is_the_progress_models_and_caught_by_explore_as_a_lasso():
    assert set(RAFT_MVCC_PROGRESS.mutants) == {"apply_stalls"}
    assert "apply_stalls" not in RAFT_MVCC.mutants
    machine = RAFT_MVCC_PROGRESS.machine("apply_stalls")
    assert machine.part("kv").mutant == "apply_stalls"
    out = explore(machine, targeted(RAFT_MVCC_PROGRESS, "apply_stalls"))
    cex = out.counterexample
    assert cex is not None and cex.prop.name == "committed_entries_applied"
    assert cex.loop is not None


def test_apply_stalls_is_caught_by_hypothesis():
    machine = RAFT_MVCC_PROGRESS.hypothesis_machine("apply_stalls")
    outcome = stateful.check(machine, targeted(RAFT_MVCC_PROGRESS, "apply_stalls"),
                             profile="ci")
    cex = outcome.counterexample
    assert cex is not None and cex.prop.name == "committed_entries_applied"


@pytest.mark.parametrize("engine", ["explore", "hypothesis"])
def test_apply_stalls_has_a_committed_lasso_trace_that_reproduces(engine):
    path = TRACES / (f"{RAFT_MVCC_PROGRESS.name}-committed_entries_applied-{engine}"
                     "-apply_stalls.itf.json")
    trace = traces.load(path)
    assert trace["#meta"]["mutant"] == "apply_stalls" and "loop" in trace
    replay = traces.replay(trace)
    assert replay.reproduced, replay.message

"""The store: raft log replication with an etcd-style MVCC key-value state
machine on top, the two composed (the log carries MVCC requests), and the
election sub-protocol the z3 engine proves."""

from __future__ import annotations

from kubemc.checker.catalog import Component, Model
from kubemc.checker.z3engine import symbolic_checks
from kubemc.model.store.election import Election
from kubemc.model.store.mvcc import Mvcc
from kubemc.model.store.raft import Raft
from kubemc.model.store.raft_mvcc import RaftMvcc, RaftMvccProgress
from kubemc.properties import mvcc as mvcc_properties
from kubemc.properties import raft as raft_properties
from kubemc.properties import raft_mvcc as raft_mvcc_properties
from kubemc.properties.symbolic import election as election_symbolic
from kubemc.properties.symbolic import mvcc_txn as mvcc_symbolic

RAFT = Model(
    name="raft",
    build=Raft,
    # 3 servers, terms 1..3, one entry per log, one message in flight,
    # server symmetry on: about 2.0 million distinct states (see README).
    bounds={"servers": 3, "max_term": 3, "max_log": 1, "max_messages": 1, "symmetry": True},
    properties=raft_properties.PROPERTIES,
    # Random runs need slack: a term wasted on a split vote must not end the
    # run, so terms go to 12; two messages in flight keep delivery orderly.
    hypothesis_bounds={"max_term": 12, "max_log": 2, "max_messages": 2, "symmetry": False},
    # Message loss and duplication play no part in these two bugs; switching
    # them off keeps the deeper searches they need to about a minute.
    mutant_bounds={
        "figure8_commit": {"max_term": 4, "faults": ("Restart",)},
        "no_consistency_check": {"max_log": 2, "faults": ("Restart",)},
    },
)

MVCC = Model(
    name="mvcc",
    build=Mvcc,
    # 2 keys, 2 values, revisions up to 5 (four writes after the initial
    # revision 1, compactions in between): 4,302 distinct states, ~87,000
    # transitions, about a second. Every mutant is caught at these bounds.
    bounds={"keys": 2, "values": 2, "max_revision": 5},
    properties=mvcc_properties.PROPERTIES,
    hypothesis_bounds={"keys": 3, "values": 3, "max_revision": 12},
)

ELECTION = Model(
    name="election",
    build=Election,
    # one term, 3 servers: 10,105 states, complete in under a second (two
    # terms exceed three million). Election Safety at 3 and 5 servers and
    # four terms is proved by the store's `symbolic` checks (z3 engine).
    bounds={"servers": 3, "max_term": 1},
    # Election Safety; the votes counted (Ongaro's lemma, on the reachable
    # states); a cover: an election that can never end holds both
    properties=election_symbolic.PROPERTIES + (raft_properties.COUNTED_VOTES_WERE_GRANTED,
                                               raft_properties.ONE_GRANT_PER_TERM,
                                               raft_properties.LEADER_ELECTED),
    hypothesis_bounds={"max_term": 3},
)

ELECTION_REELECTION = Model(
    name="election-reelection",
    build=Election,
    # A second election: one candidate (server 0) standing in terms 1 and 2
    # while the other two vote, 3,657 states in under a second. `election`'s
    # one term never sees a candidate time out after counting votes (at
    # term 0 nobody has any), so a Timeout that keeps the old term's votes
    # passed it; three candidates over two terms exceed three million states.
    bounds={"servers": 3, "max_term": 2, "candidates": 1},
    properties=election_symbolic.PROPERTIES + (raft_properties.COUNTED_VOTES_WERE_GRANTED,
                                               raft_properties.ONE_GRANT_PER_TERM,
                                               raft_properties.LEADER_ELECTED,
                                               raft_properties.CANDIDATE_STOOD_AGAIN),
    hypothesis_bounds={"max_term": 4},
    # a second vote in one term needs a second candidate (the search stops
    # at the shortest counterexample, long before two candidates' 728,000 states)
    # A stale grant needs a voter that has moved on to a newer term than a
    # candidate's request, a vote forgotten by a restart a second candidate
    # to give it to, a step-down a newer term some other server started, a
    # second leader of a term a second candidate: each needs two candidates
    # (each search stops within 3,000 states).
    mutant_bounds={mutant: {"candidates": 2}
                   for mutant in ("double_vote", "grant_stale_term", "restart_forgets_vote",
                                  "self_vote_counted_twice", "step_down_keeps_votes")},
)

RAFT_MVCC = Model(
    name="store-raft-mvcc",
    build=RaftMvcc,
    # 3 servers, two terms, one entry per log carrying one of two MVCC
    # requests, one message in flight, server symmetry: 226,016 distinct
    # states, 30-40 s; apply_uncommitted is caught there in 16 steps.
    bounds={"servers": 3, "max_term": 2, "max_log": 1, "max_messages": 1, "commands": 2,
            "symmetry": True},
    properties=raft_mvcc_properties.PROPERTIES,
    # random runs: spare terms and messages, two entries per log
    hypothesis_bounds={"max_term": 6, "max_log": 2, "max_messages": 2, "symmetry": False},
    # two committed entries to apply in the wrong order: two entries per log,
    # and two servers in one term already commit them (869 states to the bug)
    mutant_bounds={"apply_out_of_order": {"servers": 2, "max_term": 1, "max_log": 2}},
)

RAFT_MVCC_PROGRESS = Model(
    name="store-raft-mvcc-progress",
    build=RaftMvccProgress,
    # the same composition checked for progress (committed_entries_applied,
    # a liveness property): 2 servers, one term, two entries per log, one
    # message in flight as a budget of the steps (RaftMvccProgress), so no
    # state lies outside the bounds and the liveness check is decided: 1,257
    # states, 0.1 s. At store-raft-mvcc's defaults it is undecided.
    bounds={"servers": 2, "max_term": 1, "max_log": 2},
    properties=raft_mvcc_properties.PROGRESS,
    # random runs: spare terms and messages
    hypothesis_bounds={"max_term": 4, "max_messages": 2},
)

COMPONENT = Component(
    "store",
    "raft log replication with an etcd-style MVCC key-value state machine",
    (RAFT, MVCC, ELECTION, ELECTION_REELECTION, RAFT_MVCC, RAFT_MVCC_PROGRESS),
    symbolic=symbolic_checks("store", election_symbolic.OBLIGATIONS
                             + mvcc_symbolic.OBLIGATIONS))

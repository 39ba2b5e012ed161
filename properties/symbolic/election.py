"""Election Safety of ``model.store.election``, proved by induction with Z3.

The encoding mirrors :class:`model.store.election.Election` action for
action (the differential tests in ``tests/test_symbolic_election.py`` keep
the two in step). Variables, for servers ``i`` and terms ``1 <= t <= T``
(``T`` = ``max_term``):

* ``term[i]`` in ``[0, T]``, ``role[i]`` in ``{0 Follower, 1 Candidate, 2
  Leader}``, ``voted[i]`` in ``[-1, n-1]`` (-1 is nobody);
* ``granted[i][j]``: ``i`` has counted ``j``'s vote in its current term;
* ``rvq[s][d][t]``: the RequestVote request ``s -> d`` of term ``t`` was sent;
  ``rvr[s][d][t][g]``: the response ``s -> d`` of term ``t`` with
  ``voteGranted = g`` was sent (messages are a monotone set, see
  ``model.store.election``).

Election Safety ("at most one leader can be elected in a given term", Raft
paper Figure 3) is not inductive on its own: a state with two candidates of
the same term, each holding a quorum of *recorded* votes, satisfies it and
has a successor that violates it. The strengthening below rules such states
out. Its conjuncts (``LEMMAS``), for every voter ``v``, candidates ``c``,
``c1 != c2`` and term ``t``:

1. ``one_grant_per_term`` — no voter has sent granted responses to two
   different candidates in the same term: ``¬(rvr[v][c1][t][⊤] ∧
   rvr[v][c2][t][⊤])``;
2. ``grant_matches_vote`` — a granted response of term ``t`` implies the
   voter has reached term ``t``, and while it is still in ``t`` its
   ``votedFor`` is that candidate: ``rvr[v][c][t][⊤] → term[v] ≥ t ∧
   (term[v] = t → voted[v] = c)``;
3. ``granted_were_granted`` — a vote a server counts (other than its own)
   is backed by a granted response of the counting server's current term:
   ``granted[c][v] → ∃t. term[c] = t ∧ rvr[v][c][t][⊤]`` (``v ≠ c``);
4. ``self_vote`` — a server that counts its own vote voted for itself:
   ``granted[c][c] → voted[c] = c``;
5. ``leader_has_quorum`` — ``role[c] = Leader → |granted[c]| ≥ ⌊n/2⌋+1``.

Why they suffice: two leaders ``c1 != c2`` of one term ``t`` hold quorums
(5), and any two quorums of ``n`` servers intersect (``2(⌊n/2⌋+1) > n``;
stated to Z3 as pseudo-Boolean cardinality constraints, so it is Z3 that
does the counting). A shared voter ``v`` outside ``{c1, c2}`` sent granted
responses of term ``t`` to both (3), contradicting (1); if ``v`` is ``c1``,
then ``voted[c1] = c1`` (4) while its granted response to ``c2`` forces
``voted[c1] = c2`` (2 and 3, ``term[c1] = t``) — a contradiction. Each
lemma is preserved by every action; (2) is where "a server votes at most
once per term" lives, and it is exactly what the ``double_vote`` mutant
breaks.

These are the classic inductive invariants of voting-based leader election:
Ongaro's safety proof of Raft (Ongaro, "Consensus: Bridging Theory and
Practice", PhD thesis, Stanford 2014, Appendix B: ElectionSafety via
votesGranted ⊆ quorum and one vote per term), the Ivy and mypyvy models of
leader election (Padon et al., PLDI 2016; Padon et al., "Paxos made EPR",
OOPSLA 2017: ``vote_msg`` / ``voted`` / ``votes ⊆ vote_msg`` / "a leader's
votes form a quorum"), and the machine-inferred invariants of the
``consensus_epr`` benchmark in Schultz, Dardik & Tripakis, "Plain and
Simple Inductive Invariant Inference for Distributed Protocols in TLA+"
(FMCAD 2022). They are restated here for Raft's terms, written afresh.

Bounds: the proofs (:data:`OBLIGATIONS`) are for 3 and for 5 servers with
``max_term = 4`` — four terms of elections, in every interleaving,
from every state satisfying the strengthening (not just the reachable ones),
which covers far more than exhaustive search can reach (3 servers at
``max_term = 2`` already has more than three million states).
"""

from __future__ import annotations

import itertools

import z3

from kubemc.model.store.election import (
    CANDIDATE, FOLLOWER, LEADER, NOBODY, REQUEST, RESPONSE, Election,
)
from kubemc.properties import raft as raft_properties
from kubemc.properties.symbolic import Action, Encoding, Obligation, SymProperty, Var, count

#: The executable property: the election machine lays its servers out as raft
#: does (``state[0]`` the servers, term and role at the same positions), so
#: Raft's own Election Safety predicate is the one checked — one property,
#: one name, for both machines.
ELECTION_SAFETY = next(p for p in raft_properties.PROPERTIES if p.name == "election_safety")
PROPERTIES = (ELECTION_SAFETY,)


class ElectionEncoding(Encoding):
    name = "election"

    def __init__(self, servers: int = 3, max_term: int = 4, mutant: str | None = None):
        super().__init__(Election(servers, max_term, mutant))
        self.n = servers
        self.T = max_term
        self.mutant = mutant
        self.properties = {"election_safety": SymProperty(ELECTION_SAFETY, self.election_safety)}
        self.lemmas = {
            "one_grant_per_term": self.one_grant_per_term,
            "grant_matches_vote": self.grant_matches_vote,
            "granted_were_granted": self.granted_were_granted,
            "self_vote": self.self_vote,
            "leader_has_quorum": self.leader_has_quorum,
        }

    # -- shape ----------------------------------------------------------------
    def _pairs(self):
        return [(s, d) for s in range(self.n) for d in range(self.n) if s != d]

    def _terms(self):
        return range(1, self.T + 1)

    def variables(self):
        n, T = self.n, self.T
        out = []
        for i in range(n):
            out += [Var(("term", i), 0, T), Var(("role", i), 0, 2),
                    Var(("voted", i), NOBODY, n - 1)]
            out += [Var(("granted", i, j)) for j in range(n)]
        for s, d in self._pairs():
            for t in self._terms():
                out += [Var(("rvq", s, d, t)), Var(("rvr", s, d, t, False)),
                        Var(("rvr", s, d, t, True))]
        return out

    def init(self, S):
        n = self.n
        conds = []
        for i in range(n):
            conds += [S["term", i] == 0, S["role", i] == FOLLOWER, S["voted", i] == NOBODY]
            conds += [z3.Not(S["granted", i, j]) for j in range(n)]
        for s, d in self._pairs():
            for t in self._terms():
                conds += [z3.Not(S["rvq", s, d, t]), z3.Not(S["rvr", s, d, t, False]),
                          z3.Not(S["rvr", s, d, t, True])]
        return z3.And(conds)

    # -- actions ------------------------------------------------------------------
    def build_actions(self):
        n, T = self.n, self.T
        acts = []
        for i in range(n):
            acts.append(Action("Timeout", (i,), *self._timeout(i)))
            acts.append(Action("BecomeLeader", (i,), *self._become_leader(i)))
            acts.append(Action("Restart", (i,), *self._restart(i)))
            for t in self._terms():
                acts.append(Action("UpdateTerm", (i, t), *self._update_term(i, t)))
            for j in range(n):
                if j == i:
                    continue
                acts.append(Action("RequestVote", (i, j), *self._request_vote(i, j)))
                acts.append(Action("HandleRequestVoteResponse", (i, j),
                                   *self._handle_response(i, j)))
                for t in self._terms():
                    for ok in (False, True):
                        acts.append(Action("HandleRequestVoteRequest", (i, j, t, ok),
                                           *self._handle_request(i, j, t, ok)))
        return acts

    def _timeout(self, i):
        def guard(S, _):
            return z3.And(S["role", i] != LEADER, S["term", i] < self.T)

        def effect(S, _):
            out = {("term", i): S["term", i] + 1, ("role", i): z3.IntVal(CANDIDATE),
                   ("voted", i): z3.IntVal(i)}
            for j in range(self.n):
                out["granted", i, j] = z3.BoolVal(j == i)
            return out
        return guard, effect

    def _request_vote(self, i, j):
        def guard(S, _):
            return S["role", i] == CANDIDATE

        def effect(S, _):
            return {("rvq", i, j, t): z3.Or(S["rvq", i, j, t], S["term", i] == t)
                    for t in self._terms()}
        return guard, effect

    def _update_term(self, i, t):
        def guard(S, _):
            sent = []
            for s in range(self.n):
                if s != i:
                    sent += [S["rvq", s, i, t], S["rvr", s, i, t, False],
                             S["rvr", s, i, t, True]]
            return z3.And(S["term", i] < t, z3.Or(sent))

        def effect(S, _):
            out = {("term", i): z3.IntVal(t), ("role", i): z3.IntVal(FOLLOWER),
                   ("voted", i): z3.IntVal(NOBODY)}
            for j in range(self.n):
                out["granted", i, j] = z3.BoolVal(False)
            return out
        return guard, effect

    def _grant(self, S, i, j, t, ok):
        if not ok:
            return z3.BoolVal(False)
        free = z3.Or(S["voted", i] == NOBODY, S["voted", i] == j)
        if self.mutant == "double_vote":
            free = z3.BoolVal(True)
        return z3.And(S["term", i] == t, free)

    def _handle_request(self, i, j, t, ok):
        def guard(S, _):
            return z3.And(S["rvq", j, i, t], t <= S["term", i])

        def effect(S, _):
            grant = self._grant(S, i, j, t, ok)
            out = {("voted", i): z3.If(grant, z3.IntVal(j), S["voted", i])}
            for u in self._terms():
                out["rvr", i, j, u, True] = z3.Or(S["rvr", i, j, u, True],
                                                  z3.And(S["term", i] == u, grant))
                out["rvr", i, j, u, False] = z3.Or(S["rvr", i, j, u, False],
                                                   z3.And(S["term", i] == u, z3.Not(grant)))
            return out
        return guard, effect

    def _handle_response(self, i, j):
        def guard(S, _):
            got = [z3.And(S["term", i] == t, S["rvr", j, i, t, True]) for t in self._terms()]
            return z3.And(S["role", i] == CANDIDATE, z3.Or(got))

        def effect(S, _):
            return {("granted", i, j): z3.BoolVal(True)}
        return guard, effect

    def _become_leader(self, i):
        def guard(S, _):
            if self.mutant == "self_vote_counted_twice":  # its own vote counted twice
                votes = [S["granted", i, j] for j in range(self.n)] + [S["granted", i, i]]
                return z3.And(S["role", i] == CANDIDATE, count(votes, self.machine.quorum))
            return z3.And(S["role", i] == CANDIDATE, self._quorum(S, i))

        def effect(S, _):
            return {("role", i): z3.IntVal(LEADER)}
        return guard, effect

    def _restart(self, i):
        def guard(S, _):
            return z3.BoolVal(True)

        def effect(S, _):
            out = {("role", i): z3.IntVal(FOLLOWER)}
            for j in range(self.n):
                out["granted", i, j] = z3.BoolVal(False)
            return out
        return guard, effect

    def _quorum(self, S, i):
        return count([S["granted", i, j] for j in range(self.n)], self.machine.quorum)

    # -- the property and the strengthening ----------------------------------
    def election_safety(self, S):
        return z3.And([
            z3.Not(z3.And(S["role", a] == LEADER, S["role", b] == LEADER,
                          S["term", a] == S["term", b]))
            for a, b in itertools.combinations(range(self.n), 2)])

    def one_grant_per_term(self, S):
        conds = []
        for v in range(self.n):
            others = [c for c in range(self.n) if c != v]
            for c1, c2 in itertools.combinations(others, 2):
                for t in self._terms():
                    conds.append(z3.Not(z3.And(S["rvr", v, c1, t, True],
                                               S["rvr", v, c2, t, True])))
        return z3.And(conds)

    def grant_matches_vote(self, S):
        conds = []
        for v, c in self._pairs():
            for t in self._terms():
                conds.append(z3.Implies(
                    S["rvr", v, c, t, True],
                    z3.And(S["term", v] >= t,
                           z3.Implies(S["term", v] == t, S["voted", v] == c))))
        return z3.And(conds)

    def granted_were_granted(self, S):
        conds = []
        for v, c in self._pairs():
            backed = z3.Or([z3.And(S["term", c] == t, S["rvr", v, c, t, True])
                            for t in self._terms()])
            conds.append(z3.Implies(S["granted", c, v], backed))
        return z3.And(conds)

    def self_vote(self, S):
        return z3.And([z3.Implies(S["granted", c, c], S["voted", c] == c)
                       for c in range(self.n)])

    def leader_has_quorum(self, S):
        return z3.And([z3.Implies(S["role", c] == LEADER, self._quorum(S, c))
                       for c in range(self.n)])

    # -- executable <-> symbolic ----------------------------------------------
    def values(self, state):
        servers, sent = state
        m = self.machine
        out = {}
        for i, (term, role, voted, granted) in enumerate(servers):
            out["term", i], out["role", i], out["voted", i] = term, role, voted
            for j in range(self.n):
                out["granted", i, j] = bool(granted >> j & 1)
        for s, d in self._pairs():
            for t in self._terms():
                out["rvq", s, d, t] = bool(sent & m.message_bit((REQUEST, s, d, t)))
                for g in (False, True):
                    out["rvr", s, d, t, g] = bool(sent & m.message_bit((RESPONSE, s, d, t, g)))
        return out

    def state_of(self, values):
        m = self.machine
        servers = []
        for i in range(self.n):
            granted = sum(1 << j for j in range(self.n) if values["granted", i, j])
            servers.append((values["term", i], values["role", i], values["voted", i], granted))
        sent = 0
        for s, d in self._pairs():
            for t in self._terms():
                if values["rvq", s, d, t]:
                    sent |= m.message_bit((REQUEST, s, d, t))
                for g in (False, True):
                    if values["rvr", s, d, t, g]:
                        sent |= m.message_bit((RESPONSE, s, d, t, g))
        return (tuple(servers), sent)


#: The bounds of the proofs (and of the mutant's BMC run).
PROOF_TERMS = 4

OBLIGATIONS = tuple(
    Obligation(
        name=f"election_safety_{n}",
        model="election",
        prop="election_safety",
        proves=(f"Election Safety holds in every reachable state of the election protocol "
                f"with {n} servers and terms up to {PROOF_TERMS} (1-induction with the "
                f"strengthening of properties.symbolic.election)"),
        encoding=lambda mutant=None, n=n: ElectionEncoding(n, PROOF_TERMS, mutant),
        method="induction", k=1,
        # two candidates, each: timeout, ask, be granted, count, lead — 10 steps
        mutant_depth=10,
        # the mutant's shortest counterexample needs one term and 3 servers
        mutant_encoding=lambda mutant=None: ElectionEncoding(3, 1, mutant),
    )
    for n in (3, 5))

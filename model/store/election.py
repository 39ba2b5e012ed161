"""Raft leader election on its own: the sub-protocol Election Safety speaks of.

This is the election part of ``model.store.raft`` (Raft paper, Ongaro &
Ousterhout, USENIX ATC 2014, §5.2 and Figure 2; its TLA+ specification
raft.tla, Ongaro 2014, actions Timeout, RequestVote, BecomeLeader,
UpdateTerm, HandleRequestVoteRequest, HandleRequestVoteResponse, Restart),
cut down to what a symbolic proof can carry: no log, no AppendEntries.

Actions (``steps``), with ``i`` the server acting:

* ``Timeout(i)`` — a follower or candidate starts an election: term + 1,
  candidate, and it votes for itself (the paper's rule; raft.tla instead
  sends itself a RequestVote);
* ``RequestVote(i, j)`` — candidate ``i`` sends ``j`` a RequestVote request
  for its current term;
* ``UpdateTerm(i, t)`` — ``i`` has been sent a message (of any kind) of a
  term ``t`` newer than its own: it adopts ``t``, becomes follower and
  forgets its vote (raft.tla's UpdateTerm; the message stays to be handled);
* ``HandleRequestVoteRequest(i, j, t, log_ok)`` — ``i`` answers candidate
  ``j``'s request of term ``t <= term(i)``. It grants when ``t`` is its
  term, it has not voted for someone else in that term, and ``log_ok``;
* ``HandleRequestVoteResponse(i, j)`` — candidate ``i`` counts ``j``'s
  granted response of its current term (stale and negative responses change
  nothing, so they are not steps);
* ``BecomeLeader(i)`` — a candidate holding a quorum of votes leads;
* ``Restart(i)`` — fault: ``i`` loses its volatile state (role, votes
  received) and keeps its persistent state (term, votedFor).

**The up-to-date log check is a nondeterministic input.** The election
machine has no logs, so whether the candidate's log is at least as
up-to-date as the voter's (paper §5.4.1) is the step parameter ``log_ok``:
every step is offered with both values. Every outcome of the real check is
one of these two, so the machine over-approximates Raft's voting decisions;
Election Safety holds for every choice, which is the point — it does not
depend on logs at all (the paper's argument in §5.2 uses only one vote per
server per term and quorum intersection).

**Messages are a monotone set of sent messages.** A send adds a message to
the set; nothing ever removes one, and receiving does not consume it. A
message in the set can therefore be received any number of times, or never,
in any order — which subsumes loss, duplication and reordering without
DuplicateMessage / DropMessage actions or a bag bound. This is the standard
abstraction of the Ivy and mypyvy protocol models (Padon et al., "Ivy:
safety verification by interactive generalization", PLDI 2016; Feldman et
al., "Inferring inductive invariants from phase structures", CAV 2019), and
it is sound for safety with respect to raft.tla's bag: every raft.tla
behaviour of these actions maps to one here (a duplicate is a second
receipt, a drop is never receiving). Because every message carries a term
at most ``max_term``, the set is finite and so is the state space — no
message bound is needed.

**No stutter steps.** A step whose result equals the state (re-sending a
message already in the set, re-answering an answered request) is disabled,
as in ``model.store.raft``; the symbolic encoding
(``properties.symbolic.election``) says the same with ``S' != S``.

State: ``(servers, sent)``:

* ``servers[i] = (term, role, voted_for, granted)``: ``role`` is FOLLOWER /
  CANDIDATE / LEADER, ``voted_for`` a server or ``NOBODY``, ``granted`` the
  bitmask of servers whose vote ``i`` has counted in its current term. The
  first two fields sit where ``model.store.raft`` has them.
* ``sent`` is an int bitmask over the finite universe of messages
  (:meth:`Election.message_bit`): cheap to hash, and a set union is ``|``.
  ``view`` spells the messages out.

Bounds: ``servers``, ``max_term`` (a server times out only below it) and
``candidates`` (only servers ``0 .. candidates-1`` ever time out and stand
for election; default: all of them). Why ``candidates``: a bug of a second
election (a candidate that keeps its previous term's counted votes) needs
two terms, and two terms with three candidates exceed three million states;
one candidate standing twice while the others vote is 3,657 states, and is
the path such a bug takes (the catalog's ``election-reelection``). The
Raft paper, §5.2: "each candidate will time out and start a new election by
incrementing its term and initiating another round of RequestVote RPCs",
and "To begin an election, a follower increments its current term and
transitions to candidate state. It then votes for itself" — the votes of
the previous term are not carried over (raft.tla's Timeout: votesGranted
emptied). Most seeded bugs need two candidates (a second vote or a second
leader in one term, a newer term to step down to): ``election-reelection``
checks those with ``candidates=2`` as their ``mutant_bounds``, where each
search stops within 3,000 states. Symmetry reduction is not offered: the
state space is small at the bounds the exhaustive engine runs, and the
proofs are symbolic.
"""

from __future__ import annotations

from kubemc.model.kernel import FAULT, SYSTEM, Machine, Mutant, Step, action

FOLLOWER, CANDIDATE, LEADER = 0, 1, 2
ROLE_NAMES = ("Follower", "Candidate", "Leader")
NOBODY = -1

# server tuple fields
TERM, ROLE, VOTED, GRANTED = range(4)

# message kinds
REQUEST, RESPONSE = "RequestVoteRequest", "RequestVoteResponse"


DOUBLE_VOTE = "double_vote"
COUNT_REFUSED_VOTES = "count_refused_votes"
TIMEOUT_KEEPS_VOTES = "timeout_keeps_votes"
GRANT_STALE_TERM = "grant_stale_term"
STEP_DOWN_KEEPS_VOTES = "step_down_keeps_votes"
RESTART_FORGETS_VOTE = "restart_forgets_vote"
SELF_VOTE_COUNTED_TWICE = "self_vote_counted_twice"


class Election(Machine):
    """The actions are declared on their handlers (``@action``); ``steps``
    is written out because it interleaves them per server, the order every
    engine has always seen. Elections and crashes are ``rare``: random runs
    take them sparingly (hypothesis engine)."""

    name = "election"
    mutants = {
        DOUBLE_VOTE: Mutant(
            "a server grants its vote to a second candidate in the same term",
            violates="election_safety"),
        COUNT_REFUSED_VOTES: Mutant(
            "a candidate counts the vote of a server that answered its RequestVote, "
            "whether the answer granted the vote or refused it",
            violates="counted_votes_were_granted"),
        TIMEOUT_KEEPS_VOTES: Mutant(
            "a candidate that times out and starts a new election keeps the votes it "
            "counted in its previous term",
            violates="counted_votes_were_granted"),
        GRANT_STALE_TERM: Mutant(
            "a server grants a RequestVote request of an older term than its own (the "
            "request's term t <= its term, not t == its term) and answers it at that term",
            violates="one_grant_per_term"),
        STEP_DOWN_KEEPS_VOTES: Mutant(
            "a server that adopts a newer term (UpdateTerm) and steps down keeps the votes "
            "it counted in its old term",
            violates="counted_votes_were_granted"),
        RESTART_FORGETS_VOTE: Mutant(
            "a restarting server forgets votedFor, as if it were volatile state",
            violates="one_grant_per_term"),
        SELF_VOTE_COUNTED_TWICE: Mutant(
            "a candidate counts its own vote twice towards the quorum it needs to lead",
            violates="election_safety"),
    }

    def __init__(self, servers: int = 3, max_term: int = 2, mutant: str | None = None, *,
                 candidates: int | None = None):
        super().__init__(mutant)
        candidates = servers if candidates is None else candidates
        if servers < 1 or max_term < 1 or not 1 <= candidates <= servers:
            raise ValueError("election bounds must be positive, with 1 <= candidates "
                             "<= servers")
        self.n = servers
        self.max_term = max_term
        self.candidates = candidates
        self.quorum = servers // 2 + 1
        self._popcount = [bin(m).count("1") for m in range(1 << servers)]
        self._free_any = mutant == DOUBLE_VOTE
        # the message universe, in a fixed order: message -> bit
        universe = []
        for t in range(1, max_term + 1):
            for src in range(servers):
                for dst in range(servers):
                    if src != dst:
                        universe.append((REQUEST, src, dst, t))
                        universe.append((RESPONSE, src, dst, t, False))
                        universe.append((RESPONSE, src, dst, t, True))
        self.universe = tuple(universe)
        self._bit = {m: 1 << k for k, m in enumerate(universe)}
        # messages addressed to server i of term t, as one mask: UpdateTerm's guard
        self._to = {(i, t): 0 for i in range(servers) for t in range(1, max_term + 1)}
        for m, bit in self._bit.items():
            self._to[(m[2], m[3])] |= bit

    def config(self):
        # candidates only when it cuts: the bounds every earlier trace and
        # figure recorded stay as they were
        more = {"candidates": self.candidates} if self.candidates < self.n else {}
        return {"servers": self.n, "max_term": self.max_term, **more}

    # -- messages ----------------------------------------------------------
    def message_bit(self, msg: tuple) -> int:
        """The bit of ``msg`` in ``sent``: ``(REQUEST, src, dst, term)`` or
        ``(RESPONSE, src, dst, term, granted)``."""
        return self._bit[msg]

    def messages(self, sent: int) -> list[tuple]:
        """The messages of a ``sent`` mask, in universe order."""
        return [m for m in self.universe if sent & self._bit[m]]

    # ------------------------------------------------------------------
    def init_states(self):
        yield (((0, FOLLOWER, NOBODY, 0),) * self.n, 0)

    def steps(self, state):
        n, T = self.n, self.max_term
        for i in range(n):
            yield Step("Timeout", (i,))
            yield Step("BecomeLeader", (i,))
            yield Step("Restart", (i,))
            for t in range(1, T + 1):
                yield Step("UpdateTerm", (i, t))
            for j in range(n):
                if j == i:
                    continue
                yield Step("RequestVote", (i, j))
                yield Step("HandleRequestVoteResponse", (i, j))
                for t in range(1, T + 1):
                    yield Step("HandleRequestVoteRequest", (i, j, t, False))
                    yield Step("HandleRequestVoteRequest", (i, j, t, True))

    def apply(self, state, step):
        """The declared handler's next state; a step that changes nothing is
        not enabled."""
        nxt = super().apply(state, step)
        if nxt is None or nxt == state:
            return None
        return nxt

    # -- actions ----------------------------------------------------------
    @staticmethod
    def _put(servers, i, server):
        return servers[:i] + (server,) + servers[i + 1:]

    @action("Timeout", tag=SYSTEM, rare=True)
    def timeout(self, state, i):
        servers, sent = state
        term, role, _, granted = servers[i]
        if role == LEADER or term >= self.max_term or i >= self.candidates:
            return None
        votes = 1 << i
        if self.mutant == TIMEOUT_KEEPS_VOTES:
            votes |= granted
        return (self._put(servers, i, (term + 1, CANDIDATE, i, votes)), sent)

    @action("RequestVote", tag=SYSTEM)
    def request_vote(self, state, i, j):
        servers, sent = state
        term, role, _, _ = servers[i]
        if role != CANDIDATE or i == j:
            return None
        return (servers, sent | self._bit.get((REQUEST, i, j, term), 0))

    @action("UpdateTerm", tag=SYSTEM)
    def update_term(self, state, i, t):
        servers, sent = state
        if t <= servers[i][TERM] or not sent & self._to.get((i, t), 0):
            return None
        kept = servers[i][GRANTED] if self.mutant == STEP_DOWN_KEEPS_VOTES else 0
        return (self._put(servers, i, (t, FOLLOWER, NOBODY, kept)), sent)

    @action("HandleRequestVoteRequest", tag=SYSTEM)
    def handle_request(self, state, i, j, t, log_ok):
        servers, sent = state
        term, role, voted, granted = servers[i]
        if i == j or t > term or not sent & self._bit.get((REQUEST, j, i, t), 0):
            return None
        free = voted == NOBODY or voted == j or self._free_any
        current = t == term or self.mutant == GRANT_STALE_TERM
        grant = current and bool(log_ok) and free
        if grant:
            servers = self._put(servers, i, (term, role, j, granted))
        # the answer carries the voter's term; the mutant answers a stale grant at t
        at = t if grant and self.mutant == GRANT_STALE_TERM else term
        return (servers, sent | self._bit[(RESPONSE, i, j, at, grant)])

    @action("HandleRequestVoteResponse", tag=SYSTEM)
    def handle_response(self, state, i, j):
        servers, sent = state
        term, role, voted, granted = servers[i]
        if role != CANDIDATE or i == j or term == 0:
            return None
        answers = self._bit[(RESPONSE, j, i, term, True)]
        if self.mutant == COUNT_REFUSED_VOTES:
            answers |= self._bit[(RESPONSE, j, i, term, False)]
        if not sent & answers:
            return None
        return (self._put(servers, i, (term, role, voted, granted | 1 << j)), sent)

    @action("BecomeLeader", tag=SYSTEM)
    def become_leader(self, state, i):
        servers, sent = state
        term, role, voted, granted = servers[i]
        votes = self._popcount[granted]
        if self.mutant == SELF_VOTE_COUNTED_TWICE:
            votes += granted >> i & 1
        if role != CANDIDATE or votes < self.quorum:
            return None
        return (self._put(servers, i, (term, LEADER, voted, granted)), sent)

    @action("Restart", tag=FAULT, rare=True)
    def restart(self, state, i):
        servers, sent = state
        term, _, voted, _ = servers[i]
        if self.mutant == RESTART_FORGETS_VOTE:
            voted = NOBODY
        return (self._put(servers, i, (term, FOLLOWER, voted, 0)), sent)

    # -- display ----------------------------------------------------------
    def view(self, state):
        servers, sent = state
        n = self.n
        return {
            "currentTerm": [s[TERM] for s in servers],
            "state": [ROLE_NAMES[s[ROLE]] for s in servers],
            "votedFor": [s[VOTED] for s in servers],
            "votesGranted": [frozenset(k for k in range(n) if s[GRANTED] >> k & 1)
                             for s in servers],
            "messages": [_describe(m) for m in self.messages(sent)],
        }


def _describe(m: tuple) -> dict:
    out = {"type": m[0], "src": m[1], "dst": m[2], "term": m[3]}
    if m[0] == RESPONSE:
        out["voteGranted"] = m[4]
    return out

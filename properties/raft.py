"""Raft safety (Raft paper, Figure 3), stated over ``model.store.raft`` states."""

from __future__ import annotations

from kubemc.model.store.election import GRANTED as COUNTED
from kubemc.model.store.election import NOBODY, REQUEST, RESPONSE
from kubemc.model.kernel import Step
from kubemc.model.store.raft import CANDIDATE, COMMIT, FOLLOWER, LEADER, LOG, ROLE, TERM, VOTED
from kubemc.properties.core import COVER, INVARIANT, TRANSITION, Property

_PAPER = "Raft paper (Ongaro & Ousterhout, USENIX ATC 2014), Figure 3"
_SEED = ("seeds/000: 'etcd is a strongly consitent, distributed key-value data-store "
         "used to persist a kubernetes clusters state'")


def election_safety(m, state) -> bool:
    seen = set()
    for s in state[0]:
        if s[ROLE] == LEADER:
            if s[TERM] in seen:
                return False
            seen.add(s[TERM])
    return True


def leader_append_only(m, before, step, after) -> bool:
    for b, a in zip(before[0], after[0]):
        if b[ROLE] == LEADER and a[ROLE] == LEADER and a[TERM] == b[TERM]:
            if a[LOG][:len(b[LOG])] != b[LOG]:
                return False
    return True


def log_matching(m, state) -> bool:
    servers = state[0]
    for x in range(len(servers)):
        lx = servers[x][LOG]
        for y in range(x + 1, len(servers)):
            ly = servers[y][LOG]
            for k in range(min(len(lx), len(ly)) - 1, -1, -1):
                if lx[k][0] == ly[k][0]:
                    if lx[:k + 1] != ly[:k + 1]:
                        return False
                    break  # equal prefixes up to k cover every shorter index
    return True


def leader_completeness(m, state) -> bool:
    servers = state[0]
    for leader in servers:
        if leader[ROLE] != LEADER:
            continue
        for s in servers:
            c = s[COMMIT]
            if c and s[TERM] <= leader[TERM] and leader[LOG][:c] != s[LOG][:c]:
                return False
    return True


def state_machine_safety(m, state) -> bool:
    servers = state[0]
    for x in range(len(servers)):
        sx = servers[x]
        for y in range(x + 1, len(servers)):
            sy = servers[y]
            c = min(sx[COMMIT], sy[COMMIT])
            if c and sx[LOG][:c] != sy[LOG][:c]:
                return False
    return True


def messages_receivable(m, state) -> bool:
    """Every message in flight can be received: the step Receive(msg) is
    enabled and changes the state (the message is handled, answered or
    discarded; UpdateTerm first when it carries a newer term). Asked of the
    machine's step relation, as any enabledness is: what is judged is that
    no message is left that nothing will ever take off the network."""
    for msg, _ in state[1]:
        after = m.apply(state, Step("Receive", (msg,)))
        if after is None or after == state:
            return False
    return True


def leader_elected(m, state) -> bool:
    """Some server leads: the safety properties above are judged on states
    with a leader, not only on elections that never end."""
    return any(s[ROLE] == LEADER for s in state[0])


def candidate_restarted(m, state) -> bool:
    """A server that voted for itself in its term is a follower again while
    no server leads that term and none has reached a later one.

    Only a restart gets there: a candidate becomes a follower otherwise on a
    newer term (UpdateTerm, which also forgets its vote) or on AppendEntries
    from a leader of its term, and that leader leads until it sees a newer
    term or restarts itself."""
    servers = state[0]
    newest = max(s[TERM] for s in servers)
    for i, s in enumerate(servers):
        if s[ROLE] == FOLLOWER and s[VOTED] == i and s[TERM] == newest and not any(
                o[ROLE] == LEADER and o[TERM] == s[TERM] for o in servers):
            return True
    return False


def counted_votes_were_granted(m, state) -> bool:
    """Over ``model.store.election`` states: every vote a server has counted
    in its current term was given to it in that term (lemmas 3 and 4 of
    ``properties.symbolic.election``, checked here on the executable
    machine's reachable states)."""
    servers, sent = state
    for c, s in enumerate(servers):
        term, voted, counted = s[TERM], s[VOTED], s[3]
        for v in range(len(servers)):
            if not counted >> v & 1:
                continue
            if v == c:
                if voted != c:
                    return False  # its own vote, but it did not vote for itself
            elif term < 1 or not sent & m.message_bit((RESPONSE, v, c, term, True)):
                return False  # no granted response of its term from v
    return True


def candidate_stood_again(m, state) -> bool:
    """Over ``model.store.election`` states: a candidate stands in a later
    term than one in which a peer granted it its vote — it timed out after
    votes of its earlier election could be counted, the step where votes of
    that earlier term must be left behind."""
    servers, sent = state
    for c, s in enumerate(servers):
        if s[ROLE] != CANDIDATE:
            continue
        for v in range(len(servers)):
            for t in range(1, s[TERM]):
                if v != c and sent & m.message_bit((RESPONSE, v, c, t, True)):
                    return True
    return False


def one_grant_per_term(m, state) -> bool:
    """Over ``model.store.election`` states: for every server ``v`` and term
    ``t``, the candidates ``v`` is seen to have voted for in ``t`` are at most
    one. A vote is seen in what ``v`` did, not in how the model decides:

    * a granted RequestVote response ``v -> c`` of term ``t`` is a vote for
      ``c`` in ``t`` (Figure 2: the response carries the voter's
      ``currentTerm``; "voteGranted: true means candidate received vote");
    * a RequestVote request ``v -> *`` of term ``t`` means ``v`` stood in
      ``t``, and so voted for itself (§5.2: "It then votes for itself and
      issues RequestVote RPCs");
    * while ``v``'s current term is ``t``: being a candidate or leader, or
      counting its own vote, is a vote for itself, and its persistent
      ``votedFor`` names the candidate it voted for ("candidateId that
      received vote in current term").

    Sent messages are never removed (the machine's monotone set), so the
    granted responses are a complete record of the votes given to others;
    the state fields only add the current term's own vote."""
    servers, sent = state
    n = len(servers)
    for v, s in enumerate(servers):
        for t in range(1, m.max_term + 1):
            votes = {c for c in range(n)
                     if c != v and sent & m.message_bit((RESPONSE, v, c, t, True))}
            if any(sent & m.message_bit((REQUEST, v, d, t)) for d in range(n) if d != v):
                votes.add(v)
            if s[TERM] == t:
                if s[ROLE] != FOLLOWER or s[COUNTED] >> v & 1:
                    votes.add(v)
                if s[VOTED] != NOBODY:
                    votes.add(s[VOTED])
            if len(votes) > 1:
                return False
    return True


_TLA = "raft.tla (Ongaro 2014)"
LEADER_ELECTED = Property(
    "leader_elected", "store", COVER,
    "Some server becomes leader (a candidate gathers the votes of a majority).",
    f"Raft paper §5.2: 'A candidate wins an election if it receives votes from a majority of "
    f"the servers in the full cluster for the same term'; {_TLA}, BecomeLeader",
    leader_elected)
COUNTED_VOTES_WERE_GRANTED = Property(
    "counted_votes_were_granted", "store", INVARIANT,
    "A vote a server counts in its current term was given to it in that term: its own, "
    "when it voted for itself, or a granted RequestVote response of that term addressed "
    "to it.",
    f"Raft paper, Figure 2, RequestVote RPC ('voteGranted: true means candidate received "
    f"vote') and Rules for Servers ('If votes received from majority of servers: become "
    f"leader'); {_TLA}, HandleRequestVoteResponse (votesGranted grows only by the source "
    f"of a granted response of currentTerm) and Timeout (votesGranted emptied); Ongaro, "
    f"'Consensus: Bridging Theory and Practice' (PhD thesis, 2014), Appendix B",
    counted_votes_were_granted)
CANDIDATE_STOOD_AGAIN = Property(
    "candidate_stood_again", "store", COVER,
    "A candidate that was granted a peer's vote in one term stands again in a later term "
    "(the second election, where the earlier term's counted votes must not be carried over, "
    "is explored).",
    "Raft paper §5.2: 'each candidate will time out and start a new election by incrementing "
    "its term and initiating another round of RequestVote RPCs'; 'To begin an election, a "
    "follower increments its current term and transitions to candidate state. It then votes "
    f"for itself'; {_TLA}, Timeout (votesGranted' emptied)",
    candidate_stood_again)
ONE_GRANT_PER_TERM = Property(
    "one_grant_per_term", "store", INVARIANT,
    "Each server votes for at most one candidate in a given term: its granted RequestVote "
    "responses of a term, its own candidacy in that term (a candidate votes for itself) and, "
    "while the term is its current one, its votedFor name one candidate at most.",
    "Raft paper §5.2: 'Each server will vote for at most one candidate in a given term, on a "
    "first-come-first-served basis'; Figure 2, RequestVote RPC ('term: currentTerm', "
    "'voteGranted: true means candidate received vote') and persistent state votedFor "
    f"('candidateId that received vote in current term'); {_TLA}, votedFor and "
    "HandleRequestVoteRequest; lemma 1 of properties.symbolic.election, with the "
    "candidate's own vote added",
    one_grant_per_term)
CANDIDATE_RESTARTED = Property(
    "candidate_restarted", "store", COVER,
    "A candidate restarts before its election ends: it comes back a follower that keeps its "
    "term and its vote for itself (the crash fault is exercised, not only declared).",
    f"Raft paper, Figure 2: currentTerm, votedFor and log[] are 'persistent state on all "
    f"servers (updated on stable storage before responding to RPCs)', the rest volatile; "
    f"{_TLA}, Restart: state' = Follower, votesResponded' and votesGranted' empty, "
    f"commitIndex' = 0, UNCHANGED currentTerm, votedFor, log",
    candidate_restarted)


MESSAGES_RECEIVABLE = Property(
    "messages_receivable", "store", INVARIANT,
    "Every message in flight can be received by its destination: whatever its type and "
    "term, a step takes it (handles it, answers it or discards it), so no message stays "
    "on the network that no server will ever consume.",
    f"{_TLA}, Receive: each message type is covered whatever the receiver's state — "
    f"UpdateTerm for a newer term, DropStaleResponse ('Responses with stale terms are "
    f"ignored': a RequestVote or AppendEntries response of an older term is discarded), "
    f"HandleRequestVoteRequest, HandleRequestVoteResponse, HandleAppendEntriesRequest, "
    f"HandleAppendEntriesResponse (each ending in Discard(m) or Reply); Raft paper §5.1: "
    f"'If a server receives a request with a stale term number, it rejects the request' "
    f"and Figure 2, 'Rules for Servers'",
    messages_receivable)


PROPERTIES = (
    Property("election_safety", "store", INVARIANT,
             "At most one leader can be elected in a given term.",
             f"{_PAPER}: Election Safety", election_safety),
    Property("leader_append_only", "store", TRANSITION,
             "A leader never overwrites or deletes entries in its log; it only appends.",
             f"{_PAPER}: Leader Append-Only", leader_append_only),
    Property("log_matching", "store", INVARIANT,
             "If two logs contain an entry with the same index and term, the logs are "
             "identical in all entries up through that index.",
             f"{_PAPER}: Log Matching", log_matching),
    Property("leader_completeness", "store", INVARIANT,
             "An entry a server knows to be committed is in the log of every leader whose "
             "term is at least that server's term.",
             f"{_PAPER}: Leader Completeness; {_SEED}", leader_completeness),
    Property("state_machine_safety", "store", INVARIANT,
             "No two servers apply different entries at the same log index.",
             f"{_PAPER}: State Machine Safety; {_SEED}", state_machine_safety),
    MESSAGES_RECEIVABLE,
    LEADER_ELECTED,
    CANDIDATE_RESTARTED,
)

"""Raft log replication, as the Raft paper and its TLA+ specification
(raft.tla, Ongaro 2014) model it.

Actions follow raft.tla's ``Next``: Restart, Timeout, RequestVote,
BecomeLeader, ClientRequest, AdvanceCommitIndex, AppendEntries, Receive
(UpdateTerm, the four request/response handlers, DropStaleResponse),
DuplicateMessage and DropMessage. Messages live in a bag, so they can be
delayed, reordered, duplicated and lost.

Deliberate differences from raft.tla, each of which removes states that no
property can tell apart:

* a candidate votes for itself when it times out (the paper's rule) instead
  of sending itself a RequestVote message;
* ``nextIndex`` / ``matchIndex`` exist only while a server leads (raft.tla
  keeps stale values that nothing reads until BecomeLeader resets them);
* ``voterLog`` and the other proof-only history variables are left out;
  Leader Completeness is stated on the state itself (see
  ``properties.store``);
* a step that would not change the state (AdvanceCommitIndex with nothing new
  to commit) is disabled rather than a stutter.

The state is a tuple ``(servers, messages)``:

* ``servers[i] = (term, role, voted_for, log, commit, responded, granted,
  next_index, match_index)`` where ``role`` is FOLLOWER / CANDIDATE / LEADER,
  ``voted_for`` is a server index or ``NOBODY``, ``log`` is a tuple of
  ``(term, command)`` entries (index 1 is ``log[0]``), ``responded`` and
  ``granted`` are bitmasks of servers, and the two index tuples are ``()``
  unless the server leads;
* ``messages`` is a sorted tuple of ``(message, copies)``; a message is a
  tuple whose first field is its kind (see the ``RVQ``... constants).

Commands are indexes into ``self.commands``: the MVCC requests this store
replicates (``model.store.mvcc``) — the log carries them, the state machine
applies them once committed.
"""

from __future__ import annotations

from itertools import permutations, product

from kubemc.model.kernel import ENVIRONMENT, FAULT, SYSTEM, Machine, Mutant, Step, action

FOLLOWER, CANDIDATE, LEADER = 0, 1, 2
ROLE_NAMES = ("Follower", "Candidate", "Leader")
NOBODY = -1

# message kinds
RVQ, RVR, AEQ, AER = 0, 1, 2, 3
KIND_NAMES = ("RequestVoteRequest", "RequestVoteResponse",
              "AppendEntriesRequest", "AppendEntriesResponse")

#: The fault actions; a bound may switch some off to focus a search.
FAULTS = ("Restart", "DuplicateMessage", "DropMessage")

# server tuple fields
TERM, ROLE, VOTED, LOG, COMMIT, RESPONDED, GRANTED, NEXT, MATCH = range(9)


def bag_add(bag: tuple, msg: tuple) -> tuple:
    """Return the bag with one more copy of msg (the bag stays sorted)."""
    out = []
    added = False
    for m, n in bag:
        if not added:
            if m == msg:
                out.append((m, n + 1))
                added = True
                continue
            if msg < m:
                out.append((msg, 1))
                added = True
        out.append((m, n))
    if not added:
        out.append((msg, 1))
    return tuple(out)


def bag_remove(bag: tuple, msg: tuple) -> tuple:
    """Return the bag with one copy of msg fewer."""
    out = []
    for m, n in bag:
        if m == msg:
            if n > 1:
                out.append((m, n - 1))
        else:
            out.append((m, n))
    return tuple(out)


def bag_size(bag: tuple) -> int:
    return sum(n for _, n in bag)


def last_term(log: tuple) -> int:
    return log[-1][0] if log else 0


FIGURE8_COMMIT = "figure8_commit"
DOUBLE_VOTE = "double_vote"
NO_CONSISTENCY_CHECK = "no_consistency_check"
QUORUM_OFF_BY_ONE = "quorum_off_by_one"
LEADER_OVERWRITES = "leader_overwrites"
STALE_RESPONSE_KEPT = "stale_response_kept"


class Raft(Machine):
    """The actions are declared on their handlers (``@action``); ``steps``
    is written out (it interleaves them per server) and ``successors`` is
    the fused hot path. Elections, crashes and message faults are ``rare``."""

    name = "raft"
    mutants = {
        FIGURE8_COMMIT: Mutant(
            "a leader commits an entry from an earlier term as soon as a majority "
            "stores it (the Raft paper's Figure 8)", violates="leader_completeness"),
        DOUBLE_VOTE: Mutant(
            "a server grants its vote to a second candidate in the same term",
            violates="election_safety"),
        NO_CONSISTENCY_CHECK: Mutant(
            "AppendEntries is accepted without checking the term of the previous entry",
            violates="log_matching"),
        QUORUM_OFF_BY_ONE: Mutant(
            "a leader counts a bare half of the servers as a majority (n // 2 instead of "
            "n // 2 + 1) when it advances its commit index", violates="state_machine_safety"),
        LEADER_OVERWRITES: Mutant(
            "a leader overwrites its own last entry with a new client request "
            "once its log is full", violates="leader_append_only"),
        STALE_RESPONSE_KEPT: Mutant(
            "an AppendEntries response of an older term (or one reaching a server that no "
            "longer leads) is never taken off the network: no step receives it",
            violates="messages_receivable"),
    }

    def __init__(self, servers: int = 3, max_term: int = 2, max_log: int = 1,
                 max_messages: int = 2, commands: int = 1,
                 symmetry: bool = False, faults: tuple = FAULTS,
                 mutant: str | None = None):
        super().__init__(mutant)
        if servers < 1 or max_term < 1 or max_log < 0 or max_messages < 0 or commands < 1:
            raise ValueError("raft bounds must be positive")
        self.n = servers
        self.max_term = max_term
        self.max_log = max_log
        self.max_messages = max_messages
        self.commands = commands
        self.symmetry = symmetry
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown fault actions {sorted(unknown)} (known: {', '.join(FAULTS)})")
        self.faults = tuple(f for f in FAULTS if f in faults)
        self._restart = "Restart" in self.faults
        self._duplicate = "DuplicateMessage" in self.faults
        self._drop = "DropMessage" in self.faults
        self.quorum = servers // 2 + 1
        self.commit_quorum = servers // 2 if mutant == QUORUM_OFF_BY_ONE else self.quorum
        self.everyone = (1 << servers) - 1
        self._popcount = [bin(m).count("1") for m in range(1 << servers)]
        self._renamings: dict = {}  # permute's tables, per renaming

    def config(self):
        return {"servers": self.n, "max_term": self.max_term, "max_log": self.max_log,
                "max_messages": self.max_messages, "commands": self.commands,
                "symmetry": self.symmetry, "faults": list(self.faults)}

    # ------------------------------------------------------------------
    def init_states(self):
        server = (0, FOLLOWER, NOBODY, (), 0, 0, 0, (), ())
        yield ((server,) * self.n, ())

    def within_bounds(self, state):
        return bag_size(state[1]) <= self.max_messages

    def steps(self, state):
        # successors() below is the fused hot path; steps()/apply() exist for
        # replay, hypothesis and anyone who wants to drive one step by hand.
        servers, bag = state
        n = self.n
        for i in range(n):
            yield Step("Restart", (i,))
            yield Step("Timeout", (i,))
            yield Step("BecomeLeader", (i,))
            yield Step("AdvanceCommitIndex", (i,))
            for v in range(self.commands):
                yield Step("ClientRequest", (i, v))
            for j in range(n):
                if i != j:
                    yield Step("RequestVote", (i, j))
                    yield Step("AppendEntries", (i, j))
        for m, _ in bag:
            yield Step("Receive", (m,))
            yield Step("DuplicateMessage", (m,))
            yield Step("DropMessage", (m,))

    def apply(self, state, step):
        if step.name in FAULTS and step.name not in self.faults:
            return None  # a fault this instance was built without
        return super().apply(state, step)

    @action("Receive", tag=SYSTEM)
    def deliver(self, state, m):
        if not any(x == m for x, _ in state[1]):
            return None  # only a message in flight can be received
        return self.receive(state, m)

    @action("DuplicateMessage", tag=FAULT, rare=True)
    def duplicate(self, state, m):
        if not any(x == m for x, _ in state[1]):
            return None
        return (state[0], bag_add(state[1], m))

    @action("DropMessage", tag=FAULT, rare=True)
    def drop(self, state, m):
        if not any(x == m for x, _ in state[1]):
            return None
        return (state[0], bag_remove(state[1], m))

    def successors(self, state):
        servers, bag = state
        n = self.n
        for i in range(n):
            s = servers[i]
            role = s[ROLE]
            if self._restart:
                nxt = self.restart(state, i)
                if nxt is not None:
                    yield Step("Restart", (i,)), nxt
            if role != LEADER:
                nxt = self.timeout(state, i)
                if nxt is not None:
                    yield Step("Timeout", (i,)), nxt
            if role == CANDIDATE:
                nxt = self.become_leader(state, i)
                if nxt is not None:
                    yield Step("BecomeLeader", (i,)), nxt
                for j in range(n):
                    if j != i:
                        nxt = self.request_vote(state, i, j)
                        if nxt is not None:
                            yield Step("RequestVote", (i, j)), nxt
            elif role == LEADER:
                for v in range(self.commands):
                    nxt = self.client_request(state, i, v)
                    if nxt is not None:
                        yield Step("ClientRequest", (i, v)), nxt
                nxt = self.advance_commit_index(state, i)
                if nxt is not None:
                    yield Step("AdvanceCommitIndex", (i,)), nxt
                for j in range(n):
                    if j != i:
                        nxt = self.append_entries(state, i, j)
                        if nxt is not None:
                            yield Step("AppendEntries", (i, j)), nxt
        for m, _ in bag:
            nxt = self.receive(state, m)
            if nxt is not None:
                yield Step("Receive", (m,)), nxt
            if self._duplicate:
                yield Step("DuplicateMessage", (m,)), (servers, bag_add(bag, m))
            if self._drop:
                yield Step("DropMessage", (m,)), (servers, bag_remove(bag, m))

    # -- helpers ---------------------------------------------------------
    @staticmethod
    def _put(servers, i, server):
        return servers[:i] + (server,) + servers[i + 1:]

    # -- actions ----------------------------------------------------------
    @action("Restart", tag=FAULT, rare=True)
    def restart(self, state, i):
        servers, bag = state
        s = servers[i]
        new = (s[TERM], FOLLOWER, s[VOTED], s[LOG], 0, 0, 0, (), ())
        if new == s:
            return None
        return (self._put(servers, i, new), bag)

    @action("Timeout", tag=SYSTEM, rare=True)
    def timeout(self, state, i):
        servers, bag = state
        s = servers[i]
        if s[ROLE] == LEADER or s[TERM] >= self.max_term:
            return None
        me = 1 << i
        new = (s[TERM] + 1, CANDIDATE, i, s[LOG], s[COMMIT], me, me, (), ())
        return (self._put(servers, i, new), bag)

    @action("RequestVote", tag=SYSTEM)
    def request_vote(self, state, i, j):
        servers, bag = state
        s = servers[i]
        if s[ROLE] != CANDIDATE or i == j or s[RESPONDED] >> j & 1:
            return None
        log = s[LOG]
        msg = (RVQ, i, j, s[TERM], last_term(log), len(log))
        return (servers, bag_add(bag, msg))

    @action("BecomeLeader", tag=SYSTEM)
    def become_leader(self, state, i):
        servers, bag = state
        s = servers[i]
        if s[ROLE] != CANDIDATE or self._popcount[s[GRANTED]] < self.quorum:
            return None
        n = self.n
        new = (s[TERM], LEADER, s[VOTED], s[LOG], s[COMMIT], s[RESPONDED], s[GRANTED],
               (len(s[LOG]) + 1,) * n, (0,) * n)
        return (self._put(servers, i, new), bag)

    @action("ClientRequest", tag=ENVIRONMENT)
    def client_request(self, state, i, v):
        servers, bag = state
        s = servers[i]
        if s[ROLE] != LEADER:
            return None
        log = s[LOG]
        if len(log) >= self.max_log:
            if self.mutant != LEADER_OVERWRITES or not log or log[-1] == (s[TERM], v):
                return None
            log = log[:-1]
        new = s[:LOG] + (log + ((s[TERM], v),),) + s[LOG + 1:]
        return (self._put(servers, i, new), bag)

    @action("AdvanceCommitIndex", tag=SYSTEM)
    def advance_commit_index(self, state, i):
        servers, bag = state
        s = servers[i]
        if s[ROLE] != LEADER:
            return None
        log, match = s[LOG], s[MATCH]
        new_commit = s[COMMIT]
        for index in range(len(log), s[COMMIT], -1):
            votes = 1 + sum(1 for k in range(self.n) if k != i and match[k] >= index)
            if votes >= self.commit_quorum:
                if log[index - 1][0] == s[TERM] or self.mutant == FIGURE8_COMMIT:
                    new_commit = index
                break
        if new_commit == s[COMMIT]:
            return None
        new = s[:COMMIT] + (new_commit,) + s[COMMIT + 1:]
        return (self._put(servers, i, new), bag)

    @action("AppendEntries", tag=SYSTEM)
    def append_entries(self, state, i, j):
        servers, bag = state
        s = servers[i]
        if s[ROLE] != LEADER or i == j:
            return None
        log = s[LOG]
        prev = s[NEXT][j] - 1
        prev_term = log[prev - 1][0] if prev > 0 else 0
        entries = log[prev:prev + 1]
        commit = min(s[COMMIT], prev + len(entries))
        msg = (AEQ, i, j, s[TERM], prev, prev_term, entries, commit)
        return (servers, bag_add(bag, msg))

    def receive(self, state, m):
        servers, bag = state
        kind, src, dst, mterm = m[0], m[1], m[2], m[3]
        s = servers[dst]
        term = s[TERM]
        if mterm > term:  # UpdateTerm: the message stays to be handled next
            new = (mterm, FOLLOWER, NOBODY, s[LOG], s[COMMIT], 0, 0, (), ())
            return (self._put(servers, dst, new), bag)
        rest = bag_remove(bag, m)
        if kind == RVQ:
            log = s[LOG]
            mlast_term, mlast_index = m[4], m[5]
            lt = last_term(log)
            log_ok = mlast_term > lt or (mlast_term == lt and mlast_index >= len(log))
            free = s[VOTED] == NOBODY or s[VOTED] == src or self.mutant == DOUBLE_VOTE
            grant = mterm == term and log_ok and free
            if grant:
                s = s[:VOTED] + (src,) + s[VOTED + 1:]
                servers = self._put(servers, dst, s)
            return (servers, bag_add(rest, (RVR, dst, src, term, grant)))
        if kind == RVR:
            if mterm < term:  # DropStaleResponse
                return (servers, rest)
            bit = 1 << src
            granted = s[GRANTED] | bit if m[4] else s[GRANTED]
            new = s[:RESPONDED] + (s[RESPONDED] | bit, granted) + s[GRANTED + 1:]
            if new == s:
                return (servers, rest)
            return (self._put(servers, dst, new), rest)
        if kind == AEQ:
            return self._handle_append_entries(servers, bag, rest, m, s)
        # AER
        if mterm < term or s[ROLE] != LEADER:  # DropStaleResponse, or no longer leading
            if self.mutant == STALE_RESPONSE_KEPT:
                return None
            return (servers, rest)
        nxt, match = list(s[NEXT]), list(s[MATCH])
        if m[4]:
            nxt[src] = m[5] + 1
            match[src] = m[5]
        else:
            nxt[src] = max(nxt[src] - 1, 1)
        new = s[:NEXT] + (tuple(nxt), tuple(match))
        return (self._put(servers, dst, new), rest)

    def _handle_append_entries(self, servers, bag, rest, m, s):
        _, src, dst, mterm, prev, prev_term, entries, mcommit = m
        term, log = s[TERM], s[LOG]
        if self.mutant == NO_CONSISTENCY_CHECK:
            log_ok = prev <= len(log)
        else:
            log_ok = prev == 0 or (prev <= len(log) and log[prev - 1][0] == prev_term)
        if mterm < term or (s[ROLE] == FOLLOWER and not log_ok):
            return (servers, bag_add(rest, (AER, dst, src, term, False, 0)))
        if s[ROLE] == CANDIDATE:  # a leader exists for this term: step down
            new = (term, FOLLOWER) + s[VOTED:RESPONDED] + (0, 0, (), ())
            return (self._put(servers, dst, new), bag)
        if s[ROLE] == LEADER:  # cannot happen with Election Safety; ignore
            return (servers, rest)
        index = prev + 1
        if not entries or (len(log) >= index and log[index - 1][0] == entries[0][0]):
            new = s[:COMMIT] + (mcommit,) + s[COMMIT + 1:]
            reply = (AER, dst, src, term, True, prev + len(entries))
            return (self._put(servers, dst, new), bag_add(rest, reply))
        if len(log) >= index:  # conflict: drop the last entry, keep the message
            new = s[:LOG] + (log[:-1],) + s[LOG + 1:]
            return (self._put(servers, dst, new), bag)
        # len(log) == prev: append, keep the message to acknowledge next
        new = s[:LOG] + (log + entries,) + s[LOG + 1:]
        return (self._put(servers, dst, new), bag)

    # -- symmetry -----------------------------------------------------------
    def canonical(self, state):
        """One representative per class of states equal up to renaming the
        servers: the least (as a tuple) of the renamings that sort the
        servers by everything about them that names no other server.

        Servers that tie on that key are tried in every order, so the result
        does not depend on which member of the class it is given. Sorting
        alone, ties left in index order, gave a member of the class but not
        always the same one: the search stayed sound, but a counterexample
        rebuilt through another member of a class could fail to meet the
        recorded representative (a raft counterexample of 9 steps through
        two followers tied on their key did)."""
        if not self.symmetry:
            return state
        pop = self._popcount
        keys = [(s[TERM], s[ROLE], s[LOG], s[COMMIT], s[VOTED] == NOBODY, s[VOTED] == i,
                 pop[s[RESPONDED]], pop[s[GRANTED]],
                 tuple(sorted(s[NEXT])), tuple(sorted(s[MATCH])))
                for i, s in enumerate(state[0])]
        if len(set(keys)) == self.n:  # no ties: the one sorting renaming
            order = sorted(range(self.n), key=keys.__getitem__)
            if order == list(range(self.n)):
                return state
            return self.permute(state, invert(order))
        return self.least_renaming(state, keys)

    def least_renaming(self, state, keys):
        """The least renaming of ``state`` that sorts the servers by ``keys``
        (one orbit-invariant key per server): ties in every order."""
        best = None
        for perm in sorting_renamings(keys):
            if perm is None:
                return state  # sorted already, no ties
            renamed = self.permute(state, perm)
            if best is None or renamed < best:
                best = renamed
        return best

    def permute(self, state, perm):
        """Rename server i to perm[i] everywhere in the state."""
        servers, bag = state
        key = tuple(perm)
        tables = self._renamings.get(key)
        if tables is None:  # the inverse and every bitmask renamed, once per renaming
            inverse = [0] * self.n
            for old, new in enumerate(perm):
                inverse[new] = old
            masks = []
            for bits in range(1 << self.n):
                out = 0
                for old in range(self.n):
                    if bits >> old & 1:
                        out |= 1 << perm[old]
                masks.append(out)
            tables = self._renamings[key] = (tuple(inverse), tuple(masks))
        inverse, mask = tables
        new_servers = []
        for new in range(self.n):
            s = servers[inverse[new]]
            voted = perm[s[VOTED]] if s[VOTED] != NOBODY else NOBODY
            nxt = tuple(s[NEXT][k] for k in inverse) if s[NEXT] else ()
            match = tuple(s[MATCH][k] for k in inverse) if s[MATCH] else ()
            new_servers.append((s[TERM], s[ROLE], voted, s[LOG], s[COMMIT],
                                mask[s[RESPONDED]], mask[s[GRANTED]], nxt, match))
        new_bag = sorted(((m[0], perm[m[1]], perm[m[2]]) + m[3:], c) for m, c in bag)
        return (tuple(new_servers), tuple(new_bag))

    # -- display ----------------------------------------------------------------
    def view(self, state):
        servers, bag = state
        return {
            "currentTerm": [s[TERM] for s in servers],
            "state": [ROLE_NAMES[s[ROLE]] for s in servers],
            "votedFor": [s[VOTED] for s in servers],
            "log": [[list(e) for e in s[LOG]] for s in servers],
            "commitIndex": [s[COMMIT] for s in servers],
            "votesResponded": [_members(s[RESPONDED], self.n) for s in servers],
            "votesGranted": [_members(s[GRANTED], self.n) for s in servers],
            "nextIndex": [list(s[NEXT]) for s in servers],
            "matchIndex": [list(s[MATCH]) for s in servers],
            "messages": [[describe_message(m), c] for m, c in bag],
        }


def _members(bits: int, n: int) -> frozenset:
    return frozenset(i for i in range(n) if bits >> i & 1)


def _local_key(s):
    # Everything about a server that does not name another server (a
    # renaming leaves it unchanged); the rest is settled by trying ties.
    return (s[TERM], s[ROLE], s[LOG], s[COMMIT], s[VOTED] == NOBODY,
            bin(s[RESPONDED]).count("1"), bin(s[GRANTED]).count("1"),
            tuple(sorted(s[NEXT])), tuple(sorted(s[MATCH])))


def sorting_renamings(keys):
    """Every renaming ``perm`` (``perm[old] = new``) that sorts the servers
    by ``keys``: one per order of each group of tied servers. Just ``None``
    when the servers are sorted already and no two tie (the common case: no
    renaming to do)."""
    n = len(keys)
    order = sorted(range(n), key=keys.__getitem__)
    groups, start = [], 0
    for k in range(1, n + 1):
        if k == n or keys[order[k]] != keys[order[start]]:
            if k - start > 1:
                groups.append((start, k))
            start = k
    if not groups:
        yield None if order == list(range(n)) else invert(order)
        return
    for picked in product(*(permutations(order[a:b]) for a, b in groups)):
        out = list(order)
        for (a, b), seq in zip(groups, picked, strict=True):
            out[a:b] = seq
        yield invert(out)


def invert(order):
    """``order[new] = old`` as ``perm[old] = new``."""
    perm = [0] * len(order)
    for new, old in enumerate(order):
        perm[old] = new
    return perm


def describe_message(m: tuple) -> dict:
    kind = m[0]
    out = {"type": KIND_NAMES[kind], "src": m[1], "dst": m[2], "term": m[3]}
    if kind == RVQ:
        out.update(lastLogTerm=m[4], lastLogIndex=m[5])
    elif kind == RVR:
        out.update(voteGranted=m[4])
    elif kind == AEQ:
        out.update(prevLogIndex=m[4], prevLogTerm=m[5],
                   entries=[list(e) for e in m[6]], commitIndex=m[7])
    else:
        out.update(success=m[4], matchIndex=m[5])
    return out

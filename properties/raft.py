"""Raft safety (Raft paper, Figure 3), stated over ``model.store.raft`` states."""

from __future__ import annotations

from kubemc.model.store.raft import COMMIT, LEADER, LOG, ROLE, TERM
from kubemc.properties.core import INVARIANT, TRANSITION, Property

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
)

"""Raft × MVCC: what the replicated log promises the members' key-value
stores, stated over ``model.store.raft_mvcc`` states ``(raft, members)``
where ``members[i] = (applied, store)``.

Both invariants are stated on what a client can observe or what the Raft
paper defines, not on how the model applies entries: reads (the MVCC
oracle's ``read``) and the log itself.
"""

from __future__ import annotations

from kubemc.model.store import mvcc
from kubemc.model.store.raft import COMMIT, LOG
from kubemc.model.store.raft_mvcc import request
from kubemc.properties.core import COVER, EVENTUALLY_ALWAYS, INVARIANT, Property

_SMS = ("Raft paper (Ongaro & Ousterhout, USENIX ATC 2014), §5.4.3 and Figure 3, State "
        "Machine Safety: 'if a server has applied a log entry at a given index to its state "
        "machine, no other server will ever apply a different log entry for the same index'")
_ETCD = ("etcd API guarantees (etcd.io/docs/v3.5/learning/api_guarantees/), 'Strict "
         "serializability': KV operations occur in a total order, implied through revision; "
         "'Revision': an operation that modifies the store is assigned a single increasing "
         "revision")
_APPLY = ("Raft paper, Figure 2, 'Rules for Servers': 'If commitIndex > lastApplied: "
          "increment lastApplied, apply log[lastApplied] to state machine' (entries are "
          "applied one by one in log order, and only committed ones, which §5.4 shows are "
          "never removed from a log)")
_PROGRESS = ("Raft paper, Figure 2, 'Rules for Servers — All Servers': 'If commitIndex > "
             "lastApplied: increment lastApplied, apply log[lastApplied] to state machine "
             "(§5.3)'; etcd API guarantees (etcd.io/docs/v3.3/learning/api_guarantees/), "
             "'Operation completed': 'An etcd operation is considered complete when it is "
             "committed through consensus, and therefore \"executed\" -- permanently "
             "stored -- by the etcd storage engine'; etcd glossary (etcd.io/docs/v3.3/learning/"
             "glossary/), 'Cluster': 'Cluster receives proposals from members, commits them "
             "and apply to local store'")
_SEED = ("seeds/000: 'etcd is a strongly consitent, distributed key-value data-store used to "
         "persist a kubernetes clusters state'")


def _keys(*stores) -> set:
    return {k for s in stores for k in mvcc.keys_of(s)}


def mvcc_states_agree(m, state) -> bool:
    """For two members and every revision both stores have reached, every
    key reads the same on both."""
    members = state[1]
    for x in range(len(members)):
        sx = members[x][1]
        for y in range(x + 1, len(members)):
            sy = members[y][1]
            shared = min(mvcc.revision(sx), mvcc.revision(sy))
            floor = max(mvcc.compact_revision(sx), mvcc.compact_revision(sy), 1)
            for key in _keys(sx, sy):
                for rev in range(floor, shared + 1):
                    if mvcc.read(sx, key, rev) != mvcc.read(sy, key, rev):
                        return False
    return True


def applied_state_follows_log(m, state) -> bool:
    """Each member's store is the empty store with the requests of the first
    ``applied`` entries of its own log applied in log order."""
    servers = state[0][0]
    for server, (applied, store) in zip(servers, state[1], strict=True):
        log = server[LOG]
        if applied > len(log):
            return False
        expected, _ = mvcc.apply_all([request(command) for _, command in log[:applied]])
        if expected != store:
            return False
    return True


def committed_entries_applied(m, state) -> bool:
    """Every member has applied every entry its own server knows committed
    (a commit index past the end of its log counts up to the log's end)."""
    for server, (applied, _store) in zip(state[0][0], state[1], strict=True):
        if applied < min(server[COMMIT], len(server[LOG])):
            return False
    return True


def two_members_applied_a_write(m, state) -> bool:
    """Two members have applied a write: their stores share a revision past
    the empty store's, so agreement is judged on something."""
    return sum(1 for _, store in state[1] if mvcc.revision(store) >= 2) >= 2


PROPERTIES = (
    Property("mvcc_states_agree", "store", INVARIANT,
             "No two members' MVCC stores disagree at a revision both have applied: every "
             "key reads the same on both at every such revision.",
             f"{_SMS}; {_ETCD}; {_SEED}", mvcc_states_agree),
    Property("applied_state_follows_log", "store", INVARIANT,
             "Each member's MVCC store is the result of applying, in log order from the empty "
             "store, the requests of a prefix of its log: the entries up to its last applied "
             "index, which stay in its log.",
             f"{_APPLY}; {_SMS}", applied_state_follows_log),
    Property("two_members_applied_a_write", "store", COVER,
             "Two members have applied the same revision of a write (the agreement above is "
             "judged on a shared, non-empty history).",
             f"{_SMS}: the situation it speaks of", two_members_applied_a_write),
)

#: Progress: a liveness property, judged only at the small bounds of the
#: ``store-raft-mvcc-progress`` model — at ``store-raft-mvcc``'s defaults the
#: liveness check does not finish (undecided: states outside the bounds not
#: expanded), so it is not among ``PROPERTIES``.
COMMITTED_APPLIED = Property(
    "committed_entries_applied", "store", EVENTUALLY_ALWAYS,
    "Once clients and faults stop, every member eventually applies every entry its server "
    "knows committed, and stays caught up.",
    _PROGRESS, committed_entries_applied,
    assumption="the Apply link is weakly fair (a member's state machine keeps applying)")

PROGRESS = PROPERTIES + (COMMITTED_APPLIED,)

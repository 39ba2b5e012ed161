"""Properties of the etcd MVCC store, stated over ``model.store.mvcc`` states.

Every check reads states through the functional core's read functions
(``revision``, ``history``, ``read``, ``compares_hold``), which carry no
mutant: a seeded bug in the machine cannot bend the yardstick.

"A step writes" means: it appends a record to some key's history (a put or a
tombstone). That is the seed's own definition of a change — "new data is
written to the data store only by appending to it" — and it is decided from
the two states, not from what the step claims to be.
"""

from __future__ import annotations

from kubemc.model.store.mvcc import (
    COMPACTED, FUTURE_REVISION, R_CREATE, R_MOD, R_VERSION, Error, Range, Txn, apply_request,
    compact_revision, compares_hold, history, keys_of, read, revision, validate,
)
from kubemc.properties.core import COVER, INVARIANT, TRANSITION, Property

_SEED = ("seeds/000: 'new data is written to the data store only by appending to it, "
         "data is never replaced in the data store. obsolete data compacted periodically "
         "to minimize the size of the data store.'")
_GUARANTEES = ("etcd API guarantees (etcd.io/docs/v3.5/learning/api_guarantees): an "
               "operation that modifies the store is assigned a single increasing "
               "revision; a txn modifying several keys is assigned only one")
_DATA_MODEL = ("etcd data model (etcd.io/docs/v3.5/learning/data_model): each atomic "
               "mutative operation creates a new revision; data held by previous "
               "revisions remains unchanged; compaction sheds superseded versions")
_KEYVALUE = ("etcd mvccpb.KeyValue (api/mvccpb/kv.proto): create_revision is the revision "
             "of last creation, mod_revision of last modification; 'a deletion resets "
             "the version to zero and any modification of the key increases its version'")
_RANGE = ("etcd v3 API (etcd.io/docs/v3.5/learning/api, rpc.proto RangeRequest.revision): "
          "'the point-in-time of the key-value store to use for the range. If revision is "
          "less or equal to zero, the range is over the newest key-value store. If the "
          "revision has been compacted, ErrCompacted is returned'; etcd's mvcc errors "
          "ErrCompacted ('required revision has been compacted') and ErrFutureRev ('required "
          "revision is a future revision'); Compact: 'compacts the event history in the etcd "
          "key-value store' up to a revision that must not be a future one")
_TXN = ("etcd v3 API (etcd.io/docs/v3.5/learning/api, rpc.proto TxnRequest): if every "
        "compare holds the success requests are applied, otherwise the failure requests")


def appended(before, after) -> dict:
    """key -> the record a step appended to that key's history (one at most:
    a txn may not write a key twice)."""
    out = {}
    old = dict(before[2])
    for key, hist in after[2]:
        prev = old.get(key, ())
        if hist and hist[-1] not in prev:
            out[key] = hist[-1]
    return out


def _all_keys(before, after):
    return {k for k, _ in before[2]} | {k for k, _ in after[2]}


def revision_monotonic(m, before, step, after) -> bool:
    rb, ra = revision(before), revision(after)
    if appended(before, after):
        return ra == rb + 1
    return ra == rb


def mod_revision_is_write_revision(m, before, step, after) -> bool:
    written = appended(before, after)
    if not written:
        return True
    rev = revision(after)
    for key in _all_keys(before, after):
        rec = written.get(key)
        if rec is not None:
            if rec[R_MOD] != rev:
                return False
        else:
            hb, ha = history(before, key), history(after, key)
            if (hb[-1][R_MOD] if hb else 0) != (ha[-1][R_MOD] if ha else 0):
                return False
    return True


def compaction_preserves_reads(m, before, step, after) -> bool:
    if after == before:
        return True
    if appended(before, after):
        return True  # a write; revision_monotonic & co. speak of it
    lo, hi = compact_revision(after), revision(before)
    if lo < compact_revision(before) or revision(after) != hi:
        return False
    keys = _all_keys(before, after)
    for rev in range(max(lo, 1), hi + 1):
        for key in keys:
            if read(before, key, rev) != read(after, key, rev):
                return False
    return True


def failed_txn_writes_nothing(m, before, step, after) -> bool:
    if step.name != "Txn":
        return True
    txn = m.request(step)
    if compares_hold(before, txn.compares):
        return True
    if after == before and all(isinstance(op, Range) for op in txn.failure):
        return True  # the common case, decided without re-running the txn
    if validate(txn):
        return after == before  # a refused request changes nothing
    # only the failure branch runs: exactly what running it alone does …
    expected, _ = apply_request(before, Txn((), txn.failure, ()))
    # … which, for a read-only branch, is nothing at all
    return after == expected


def version_counts_modifications(m, before, step, after) -> bool:
    for key, rec in appended(before, after).items():
        if not rec[R_VERSION]:
            continue  # a tombstone: version reset to 0
        old = history(before, key)
        last = old[-1] if old else None
        if last is not None and last[R_VERSION]:
            if rec[R_VERSION] != last[R_VERSION] + 1 or rec[R_CREATE] != last[R_CREATE]:
                return False
        elif rec[R_VERSION] != 1 or rec[R_CREATE] != rec[R_MOD]:
            return False
    return True


def range_revisions_answer(m, state) -> bool:
    """Ranges at the edges of the revision window answer as the API says.

    Stated with constants and the state's two revisions only: ``read`` is the
    observation (what Range answers), never the yardstick."""
    current, compacted = revision(state), compact_revision(state)
    for key in set(getattr(m, "keys", ())) | set(keys_of(state)):
        if read(state, key, current + 1) != FUTURE_REVISION:
            return False
        if compacted > 1 and read(state, key, compacted - 1) != COMPACTED:
            return False
        for rev in range(max(compacted, 1), current + 1):
            if isinstance(read(state, key, rev), str):
                return False  # an error where the window says an answer
        newest = read(state, key, 0)
        if isinstance(newest, str) or newest != read(state, key, current):
            return False  # the newest store always answers, at the current revision
        # a Range inside a txn is refused the same way, and the whole txn with it
        edges = [(current + 1, FUTURE_REVISION)]
        edges += [(compacted - 1, COMPACTED)] if compacted > 1 else []
        for rev, error in edges:
            ops: tuple = (Range(key, rev),)
            if apply_request(state, Txn((), ops, ()))[1] != Error(error):
                return False
    return True


def multi_key_txn_written(m, state) -> bool:
    """Two keys were last modified at one revision: only a txn writes several
    keys in one revision, so a txn of the model's family was applied."""
    seen: set[int] = set()
    for key in keys_of(state):
        mods = {rec[R_MOD] for rec in history(state, key)}
        if seen & mods:
            return True
        seen |= mods
    return False


PROPERTIES = (
    Property("revision_monotonic", "store", TRANSITION,
             "The store revision never decreases; a step that writes (appends a put or a "
             "tombstone, to any number of keys) advances it by exactly one, any other "
             "step leaves it unchanged.",
             f"{_GUARANTEES}; {_DATA_MODEL}; {_SEED}", revision_monotonic),
    Property("mod_revision_is_write_revision", "store", TRANSITION,
             "After a write, every key it wrote has mod_revision equal to the new store "
             "revision, and every other key keeps its mod_revision.",
             f"{_KEYVALUE}; {_GUARANTEES}", mod_revision_is_write_revision),
    Property("compaction_preserves_reads", "store", TRANSITION,
             "A step that writes nothing (a compaction, a failed or read-only txn) changes "
             "no read: for every key and every revision from the (new) compaction revision "
             "to the current one, range answers as before; the compaction revision never "
             "decreases.",
             f"{_DATA_MODEL}; {_SEED}", compaction_preserves_reads),
    Property("failed_txn_writes_nothing", "store", TRANSITION,
             "A txn whose compares are false in the pre-state applies only its failure "
             "branch; with a read-only failure branch it writes nothing and leaves the "
             "revision unchanged.",
             f"{_TXN}; {_GUARANTEES}", failed_txn_writes_nothing),
    Property("version_counts_modifications", "store", TRANSITION,
             "A key's version is 1 when it is created (create_revision = that revision) "
             "and grows by one with each put, keeping its create_revision; a delete resets "
             "it, so a re-created key starts again at 1.",
             f"{_KEYVALUE}", version_counts_modifications),
    Property("range_revisions_answer", "store", INVARIANT,
             "A range above the current revision is refused as a future revision and one "
             "below the compaction revision as compacted; at every revision from the "
             "compaction revision (at least 1) to the current one it answers (a key or "
             "nothing); revision 0 reads the newest store, which always answers, as at the "
             "current revision. A txn holding a Range at a future or compacted revision is "
             "refused with the same error.",
             f"{_RANGE}; {_TXN} (a RequestOp may be a request_range); {_DATA_MODEL}",
             range_revisions_answer),
    Property("mvcc_cover_multi_key_txn", "store", COVER,
             "A txn writes two keys at one revision (the txn family is exercised, so the "
             "txn properties judge real txns).",
             f"{_DATA_MODEL}; {_TXN}", multi_key_txn_written),
)

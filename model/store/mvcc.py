"""The etcd v3 multi-version key-value store: the state machine that the Raft
log's committed entries are applied to.

Two layers:

1. **The functional core** — an immutable store value and
   ``apply_request(state, request) -> (state, response)``. It is THE oracle
   of kubemc: the machine below, the linearizability checker and the
   conformance runner all call it, so it is total (every input gives a
   response; errors are responses, never exceptions), deterministic, and has
   no knob that changes its semantics. Seeded bugs live in the machine, never
   here.
2. **The machine** ``Mvcc`` — clients issuing Put / Delete / Txn / Compact
   requests against one store, for the explore and hypothesis engines.

Semantics and where they come from
----------------------------------
Sources (all consulted, none copied):

* [DM] etcd "Data model" (etcd.io/docs/v3.5/learning/data_model/): "When the
  store is created, the initial revision is 1. Each atomic mutative operation
  (e.g., a transaction operation may contain multiple operations) creates a
  new revision on the key space. All data held by previous revisions remains
  unchanged." — and compaction "sheds the oldest versions of superseded data".
* [AG] etcd "API guarantees" (etcd.io/docs/v3.5/learning/api_guarantees/):
  an operation that modifies the store is assigned a single increasing
  revision; a txn modifying several keys gets one revision.
* [KV] etcd's ``mvccpb.KeyValue`` (api/mvccpb/kv.proto): ``create_revision``
  is the revision of last creation, ``mod_revision`` of last modification,
  "version is the version of the key. A deletion resets the version to zero
  and any modification of the key increases its version".
* [RPC] etcd's ``rpc.proto`` / v3 API guide (etcd.io/docs/v3.5/learning/api/):
  Range with ``revision <= 0`` reads the current revision; Compare targets
  VERSION / CREATE / MOD / VALUE with EQUAL / NOT_EQUAL / LESS / GREATER; a
  txn applies ``success`` if every compare holds, else ``failure``; a txn may
  not modify the same key twice ("duplicate key given in txn request").
* The behaviour of etcd's server where the documents are silent (mvcc store,
  txn apply, v3rpc request checks), read to pin down the edge cases below.

Decisions, each matching etcd unless said otherwise:

* **Revision.** An empty store is at revision 1 [DM]; the first write makes it
  2. A request that changes nothing — a delete of a missing key, a txn whose
  branch only reads or deletes missing keys, any error — leaves the revision
  alone; a request that writes (however many keys) advances it by exactly 1.
* **Keys.** ``version`` is 1 on creation and +1 per put; a delete writes a
  tombstone (version 0) at the new revision; a re-created key starts again at
  version 1 with ``create_revision`` = the re-creating revision [KV].
* **Range(key, revision).** ``revision <= 0`` means current. Above the current
  revision: error ``FUTURE_REVISION``; below the compaction revision: error
  ``COMPACTED`` (reading *at* the compaction revision works). Otherwise the
  key as of that revision, or nothing. The response header revision is always
  the current store revision.
* **Compact(rev).** ``rev`` must be > the previous compaction revision (else
  ``COMPACTED``) and <= the current revision (else ``FUTURE_REVISION``);
  errors change nothing. A compaction does not advance the revision. It drops
  every record superseded at or before ``rev`` and every tombstone older than
  ``rev``, so every read at a revision >= ``rev`` answers as before. The
  compaction revision starts at 0 ("never compacted"; etcd keeps -1, which is
  indistinguishable except that etcd accepts ``Compact(0)`` once on a fresh
  store while this model answers ``COMPACTED``).
* **Txn.** Requests are validated first: a branch that puts the same key
  twice, or puts and deletes the same key, is rejected with
  ``DUPLICATE_KEY`` (both branches are checked, as etcd's v3rpc layer does;
  deleting a key twice is allowed). The compares are evaluated on the
  pre-state. The ranges of the branch taken are then checked against the
  pre-state (``FUTURE_REVISION`` / ``COMPACTED``: the whole txn fails and
  nothing is written). Ops run in order; all writes carry the one new
  revision; a ``Range(key, 0)`` after a write in the same txn sees it.
* **Compare on a missing key.** Its version, create and mod revisions are 0.
  A VALUE compare on a missing key is *false whatever the operator*: etcd's
  ``applyCompare`` special-cases it ("nil == empty string in grpc; no way to
  represent missing value"), so ``value(k) != "x"`` does not hold for a
  missing ``k``. (Treating the missing value as "" would make that compare
  true; real etcd says false, and the oracle follows real etcd.)
* **Scope.** Single keys only: no range_end / prefix, no leases, no
  prev_kv, no nested txns, no watch (watch has its own model).

State representation (plain tuples; equal stores have equal tuples)::

    state   = (revision, compact_revision, keys)
    keys    = ((key, history), ...)      sorted by key, no empty history
    history = (record, ...)              ascending mod_revision
    record  = (mod_revision, create_revision, version, value)
              a tombstone is (mod_revision, 0, 0, "")
"""

from __future__ import annotations

from typing import Any, Union

import attrs

from kubemc.model.kernel import ENVIRONMENT, Machine, Mutant, Step, action

# ---------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------

#: Compare targets (etcd ``Compare.CompareTarget``).
VERSION, CREATE, MOD, VALUE = "VERSION", "CREATE", "MOD", "VALUE"
TARGETS = (VERSION, CREATE, MOD, VALUE)
#: Compare operators (etcd ``Compare.CompareResult``).
EQUAL, NOT_EQUAL, LESS, GREATER = "=", "!=", "<", ">"
OPERATORS = (EQUAL, NOT_EQUAL, LESS, GREATER)

#: Error kinds (etcd: ErrCompacted, ErrFutureRev, ErrGRPCDuplicateKey,
#: ErrGRPCEmptyKey; INVALID_REQUEST covers anything etcd's API cannot express).
COMPACTED = "compacted"
FUTURE_REVISION = "future revision"
DUPLICATE_KEY = "duplicate key"
EMPTY_KEY = "empty key"
INVALID_REQUEST = "invalid request"


@attrs.frozen(slots=True)
class Put:
    key: str
    value: str


@attrs.frozen(slots=True)
class Delete:
    key: str


@attrs.frozen(slots=True)
class Range:
    """Read one key; ``revision <= 0`` reads the current revision."""

    key: str
    revision: int = 0


@attrs.frozen(slots=True)
class Compare:
    """``target(key) op operand``; operand is a str for VALUE, else an int.

    Values compare by code point, which is the order etcd's byte-wise
    comparison gives their UTF-8 encodings.
    """

    key: str
    target: str
    op: str
    operand: Any


@attrs.frozen(slots=True)
class Txn:
    compares: tuple = attrs.field(default=(), converter=tuple)
    success: tuple = attrs.field(default=(), converter=tuple)
    failure: tuple = attrs.field(default=(), converter=tuple)


@attrs.frozen(slots=True)
class Compact:
    revision: int


Request = Union[Put, Delete, Range, Txn, Compact]

# ---------------------------------------------------------------------------
# Responses (``revision`` is the response header's store revision)
# ---------------------------------------------------------------------------


@attrs.frozen(slots=True)
class KeyValue:
    key: str
    create_revision: int
    mod_revision: int
    version: int
    value: str


@attrs.frozen(slots=True)
class PutResponse:
    revision: int


@attrs.frozen(slots=True)
class DeleteResponse:
    revision: int
    deleted: int


@attrs.frozen(slots=True)
class RangeResponse:
    revision: int
    kvs: tuple  # of KeyValue: () or one


@attrs.frozen(slots=True)
class TxnResponse:
    """``responses`` holds one response per op of the branch taken; an op's
    ``revision`` is the store revision as that op saw it inside the txn.
    Compare implementations on the top-level ``revision``."""

    revision: int
    succeeded: bool
    responses: tuple


@attrs.frozen(slots=True)
class CompactResponse:
    revision: int


@attrs.frozen(slots=True)
class Error:
    """A request the store refused; the state is unchanged."""

    error: str


Response = Union[PutResponse, DeleteResponse, RangeResponse, TxnResponse,
                 CompactResponse, Error]

# ---------------------------------------------------------------------------
# The store value
# ---------------------------------------------------------------------------

#: Record fields.
R_MOD, R_CREATE, R_VERSION, R_VALUE = range(4)

State = tuple  # (revision, compact_revision, ((key, history), ...))

#: The empty store: revision 1 [DM], never compacted.
INITIAL: State = (1, 0, ())


def initial_state() -> State:
    return INITIAL


def revision(state: State) -> int:
    return state[0]


def compact_revision(state: State) -> int:
    return state[1]


def history(state: State, key: str) -> tuple:
    """The retained records of ``key``, oldest first (``()`` if none)."""
    for k, h in state[2]:
        if k == key:
            return h
    return ()


def keys_of(state: State) -> tuple:
    return tuple(k for k, _ in state[2])


def record_at(hist: tuple, rev: int):
    """The live record of a history as of ``rev``, or None (absent/deleted)."""
    for rec in reversed(hist):
        if rec[R_MOD] <= rev:
            return rec if rec[R_VERSION] else None
    return None


def kv_at(state: State, key: str, rev: int = 0) -> KeyValue | None:
    """``key`` as of ``rev`` (<= 0: current), without range's error checks."""
    if rev <= 0:
        rev = state[0]
    rec = record_at(history(state, key), rev)
    if rec is None:
        return None
    return KeyValue(key, rec[R_CREATE], rec[R_MOD], rec[R_VERSION], rec[R_VALUE])


def read(state: State, key: str, rev: int = 0):
    """What Range(key, rev) answers: a KeyValue, None, or an error string."""
    current, compacted = state[0], state[1]
    if rev <= 0:
        rev = current
    if rev > current:
        return FUTURE_REVISION
    if rev < compacted:
        return COMPACTED
    rec = record_at(history(state, key), rev)
    if rec is None:
        return None
    return KeyValue(key, rec[R_CREATE], rec[R_MOD], rec[R_VERSION], rec[R_VALUE])


def compare_holds(state: State, c: Compare) -> bool:
    """etcd's compare semantics on the current revision (see module doc)."""
    rec = record_at(history(state, c.key), state[0])
    if c.target == VALUE:
        if rec is None:
            return False  # etcd: a VALUE compare on a missing key always fails
        actual = rec[R_VALUE]
    elif rec is None:
        actual = 0
    elif c.target == VERSION:
        actual = rec[R_VERSION]
    elif c.target == CREATE:
        actual = rec[R_CREATE]
    else:
        actual = rec[R_MOD]
    op, x = c.op, c.operand
    if op == EQUAL:
        return actual == x
    if op == NOT_EQUAL:
        return actual != x
    if op == LESS:
        return actual < x
    return actual > x


def compares_hold(state: State, compares) -> bool:
    return all(compare_holds(state, c) for c in compares)


# -- validation ---------------------------------------------------------------


def _key_error(key) -> str | None:
    if not isinstance(key, str):
        return INVALID_REQUEST
    return EMPTY_KEY if key == "" else None


def _int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _op_error(op) -> str | None:
    if isinstance(op, Put):
        return _key_error(op.key) or (None if isinstance(op.value, str) else INVALID_REQUEST)
    if isinstance(op, Delete):
        return _key_error(op.key)
    if isinstance(op, Range):
        return _key_error(op.key) or (None if _int(op.revision) else INVALID_REQUEST)
    return INVALID_REQUEST  # nested txns and anything else


def _branch_error(ops) -> str | None:
    puts, deletes = set(), set()
    for op in ops:
        err = _op_error(op)
        if err:
            return err
        if isinstance(op, Put):
            if op.key in puts:
                return DUPLICATE_KEY
            puts.add(op.key)
        elif isinstance(op, Delete):
            deletes.add(op.key)
    return DUPLICATE_KEY if puts & deletes else None


def validate(request) -> str | None:
    """The error etcd's API layer answers before applying, or None."""
    if isinstance(request, (Put, Delete, Range)):
        return _op_error(request)
    if isinstance(request, Compact):
        return None if _int(request.revision) else INVALID_REQUEST
    if isinstance(request, Txn):
        for c in request.compares:
            if not isinstance(c, Compare):
                return INVALID_REQUEST
            err = _key_error(c.key)
            if err:
                return err
            if c.target not in TARGETS or c.op not in OPERATORS:
                return INVALID_REQUEST
            if (isinstance(c.operand, str)) != (c.target == VALUE):
                return INVALID_REQUEST
            if c.target != VALUE and not _int(c.operand):
                return INVALID_REQUEST
        return _branch_error(request.success) or _branch_error(request.failure)
    return INVALID_REQUEST


# -- writes ----------------------------------------------------------------------


def _with_history(keys: tuple, key: str, hist: tuple) -> tuple:
    out = []
    placed = False
    for k, h in keys:
        if not placed and key <= k:
            placed = True
            if key == k:
                if hist:
                    out.append((key, hist))
                continue
            if hist:
                out.append((key, hist))
        out.append((k, h))
    if not placed and hist:
        out.append((key, hist))
    return tuple(out)


def _history_in(keys: tuple, key: str) -> tuple:
    for k, h in keys:
        if k == key:
            return h
    return ()


def put_record(hist: tuple, rev: int, value: str) -> tuple:
    """The record a put at ``rev`` appends to ``hist``."""
    last = hist[-1] if hist else None
    if last is not None and last[R_VERSION]:
        return (rev, last[R_CREATE], last[R_VERSION] + 1, value)
    return (rev, rev, 1, value)


def compact_history(hist: tuple, rev: int) -> tuple:
    """Drop what no read at a revision >= ``rev`` can see."""
    keep_from = None
    for i in range(len(hist) - 1, -1, -1):
        if hist[i][R_MOD] <= rev:
            keep_from = i
            break
    if keep_from is None:
        return hist
    kept = hist[keep_from:]
    first = kept[0]
    # etcd keeps a tombstone at exactly the compaction revision (its watchers
    # still get that DELETE event) and drops older ones.
    if not first[R_VERSION] and first[R_MOD] < rev:
        kept = kept[1:]
    return kept


def _apply_ops(state: State, ops) -> tuple[State, tuple]:
    """Run validated ops in order with one shared write revision."""
    rev, compacted, keys = state
    new_rev = rev + 1
    wrote = False
    responses = []
    for op in ops:
        if isinstance(op, Put):
            hist = _history_in(keys, op.key)
            keys = _with_history(keys, op.key, hist + (put_record(hist, new_rev, op.value),))
            wrote = True
            responses.append(PutResponse(new_rev))
        elif isinstance(op, Delete):
            hist = _history_in(keys, op.key)
            if hist and hist[-1][R_VERSION]:
                keys = _with_history(keys, op.key, hist + ((new_rev, 0, 0, ""),))
                wrote = True
                responses.append(DeleteResponse(new_rev, 1))
            else:
                responses.append(DeleteResponse(new_rev if wrote else rev, 0))
        else:  # Range
            seen = new_rev if wrote else rev
            at = op.revision if op.revision > 0 else seen
            rec = record_at(_history_in(keys, op.key), at)
            kvs = () if rec is None else (
                KeyValue(op.key, rec[R_CREATE], rec[R_MOD], rec[R_VERSION], rec[R_VALUE]),)
            responses.append(RangeResponse(seen, kvs))
    return ((new_rev if wrote else rev), compacted, keys), tuple(responses)


def _range_error(state: State, ops) -> str | None:
    for op in ops:
        if isinstance(op, Range) and op.revision > 0:
            if op.revision > state[0]:
                return FUTURE_REVISION
            if op.revision < state[1]:
                return COMPACTED
    return None


def apply_request(state: State, request) -> tuple[State, Response]:
    """Apply one request to the store: the new state and the response.

    Total and deterministic: an invalid or refused request answers an
    ``Error`` and returns ``state`` itself.
    """
    err = validate(request)
    if err:
        return state, Error(err)
    return apply_valid(state, request)


def apply_valid(state: State, request) -> tuple[State, Response]:
    """``apply_request`` for a request already known to pass ``validate``
    (callers that apply one request many times validate it once)."""
    if isinstance(request, Range):
        got = read(state, request.key, request.revision)
        if isinstance(got, str):
            return state, Error(got)
        return state, RangeResponse(state[0], () if got is None else (got,))
    if isinstance(request, (Put, Delete)):
        new, (resp,) = _apply_ops(state, (request,))
        return new, resp
    if isinstance(request, Txn):
        ok = compares_hold(state, request.compares)
        ops = request.success if ok else request.failure
        err = _range_error(state, ops)
        if err:
            return state, Error(err)
        new, responses = _apply_ops(state, ops)
        return new, TxnResponse(new[0], ok, responses)
    # Compact
    rev, compacted, keys = state
    at = request.revision
    if at <= compacted:
        return state, Error(COMPACTED)
    if at > rev:
        return state, Error(FUTURE_REVISION)
    kept = []
    for k, h in keys:
        h = compact_history(h, at)
        if h:
            kept.append((k, h))
    return (rev, at, tuple(kept)), CompactResponse(rev)


def apply_all(requests, state: State = INITIAL) -> tuple[State, list]:
    """Apply requests in order; the final state and every response."""
    responses = []
    for r in requests:
        state, resp = apply_request(state, r)
        responses.append(resp)
    return state, responses


def describe(state: State) -> dict:
    """The store as plain named data (traces, people)."""
    return {
        "revision": state[0],
        "compact_revision": state[1],
        "keys": {k: [{"mod_revision": r[R_MOD], "create_revision": r[R_CREATE],
                      "version": r[R_VERSION], "value": r[R_VALUE],
                      "tombstone": r[R_VERSION] == 0} for r in h]
                 for k, h in state[2]},
    }


# ---------------------------------------------------------------------------
# The machine
# ---------------------------------------------------------------------------

KEY_NAMES = "abcdefgh"
VALUE_NAMES = "xyzuvw"

TXN_IGNORES_COMPARE = "txn_ignores_compare"
DELETE_KEEPS_REVISION = "delete_keeps_revision"
PUT_KEEPS_MOD_REVISION = "put_keeps_mod_revision"
COMPACT_DROPS_LIVE_KEY = "compact_drops_live_key"
DELETE_KEEPS_VERSION = "delete_keeps_version"
COMPACTION_OFF_BY_ONE = "compaction_off_by_one"


class Mvcc(Machine):
    """Clients issuing requests to one etcd MVCC store (every action is an
    ``environment`` request; the store itself takes no steps).

    Actions, with step parameters as they appear in traces:

    * ``Put(key, value)`` and ``Delete(key)`` for every key and value;
    * ``Txn(...)``, one of a small fixed family built from the bounds:

      - ``("cas", k, r, v)``: If(mod_revision(k) = r) Then(put(k, v))
        Else(range(k)) — the optimistic-concurrency write of the apiserver
        (GuaranteedUpdate; r = 0 is its Create: "key absent");
      - ``("cad", k, r)``: If(mod_revision(k) = r) Then(delete(k))
        Else(range(k)) — the apiserver's preconditioned delete;
      - ``("put_all", v)``: If(value(k0) != v) Then(put(k, v) for every key)
        Else(range(k) for every key) — one revision for several writes, and a
        VALUE compare, which is false while k0 is missing;

      ``r`` ranges over 0 and every mod_revision in k's retained history:
      the revisions a client can have read, current or stale;
    * ``Compact(rev)`` for every rev from 1 to the current revision (those at
      or below the compaction revision answer an error and change nothing).

    Requests that change nothing (failed or read-only txns, deletes of
    missing keys, refused compactions) are kept as self-loops: transition
    properties about them are checked on those steps. Range is a read and
    not an action; properties evaluate reads as functions of the state.

    Bounds: ``keys`` (named a, b, …), ``values`` (x, y, …), and
    ``max_revision``: a write that would take the revision past it is
    disabled (non-writing requests stay enabled), so the space is finite.
    The defaults — 2 keys, 2 values, max_revision 5 (four writes after the
    initial revision 1, with any compactions in between) — give 4,302
    distinct states and about 87,000 transitions, explored in about a second;
    max_revision 6 gives 28,068 states in about 7 s.
    """

    name = "mvcc"
    mutants = {
        TXN_IGNORES_COMPARE: Mutant(
            "a txn applies its success branch without evaluating its compares",
            violates="failed_txn_writes_nothing"),
        DELETE_KEEPS_REVISION: Mutant(
            "a Delete that removes a key does not advance the store revision: its "
            "tombstone is stamped with the current one", violates="revision_monotonic"),
        PUT_KEEPS_MOD_REVISION: Mutant(
            "a Put to an existing key keeps the key's previous mod_revision",
            violates="mod_revision_is_write_revision"),
        COMPACT_DROPS_LIVE_KEY: Mutant(
            "compaction discards a key whose last modification is older than the "
            "compaction revision, although it is still live",
            violates="compaction_preserves_reads"),
        DELETE_KEEPS_VERSION: Mutant(
            "a key re-created after a delete continues its old version count "
            "instead of starting again at 1", violates="version_counts_modifications"),
        COMPACTION_OFF_BY_ONE: Mutant(
            "a compaction records the revision after the one asked for as the compaction "
            "revision, so compacting at the current revision leaves no revision to read",
            violates="range_revisions_answer"),
    }

    def __init__(self, keys: int = 2, values: int = 2, max_revision: int = 5,
                 mutant: str | None = None):
        super().__init__(mutant)
        if not 1 <= keys <= len(KEY_NAMES) or not 1 <= values <= len(VALUE_NAMES):
            raise ValueError(f"mvcc bounds: 1 <= keys <= {len(KEY_NAMES)}, "
                             f"1 <= values <= {len(VALUE_NAMES)}")
        if max_revision < 1:
            raise ValueError("mvcc bounds: max_revision must be >= 1")
        self.keys = tuple(KEY_NAMES[:keys])
        self.values = tuple(VALUE_NAMES[:values])
        self.max_revision = max_revision
        self._requests: dict[tuple, Request] = {}
        self._puts = [(k, v) for k in self.keys for v in self.values]
        self._deletes = [(k,) for k in self.keys]

    def config(self):
        return {"keys": len(self.keys), "values": len(self.values),
                "max_revision": self.max_revision}

    def init_states(self):
        yield INITIAL

    # -- the parameters each action proposes (the kernel derives steps) --------
    def every_put(self, state):
        return self._puts

    def every_delete(self, state):
        return self._deletes

    def every_txn(self, state):
        out = []
        for k in self.keys:
            revs = sorted({0} | {rec[R_MOD] for rec in history(state, k)})
            for r in revs:
                out.extend(("cas", k, r, v) for v in self.values)
                out.append(("cad", k, r))
        out.extend(("put_all", v) for v in self.values)
        return out

    def every_compaction(self, state):
        return [(r,) for r in range(1, state[0] + 1)]

    # -- the actions: every one a client's request to the store ---------------
    @action("Put", tag=ENVIRONMENT, params=every_put)
    def put(self, state, key, value):
        return self._issue(state, self.request_of("Put", (key, value)))

    @action("Delete", tag=ENVIRONMENT, params=every_delete)
    def delete(self, state, key):
        return self._issue(state, self.request_of("Delete", (key,)))

    @action("Txn", tag=ENVIRONMENT, params=every_txn)
    def txn(self, state, *params):
        """``params`` is one of the txn family's shapes (class text)."""
        return self._issue(state, self.request_of("Txn", params))

    @action("Compact", tag=ENVIRONMENT, params=every_compaction)
    def compact(self, state, revision):
        return self._issue(state, self.request_of("Compact", (revision,)))

    def apply(self, state, step):
        """The declared handler's next state. A step of no action of this
        machine is an error, not a disabled step: every step is a request,
        and trace replay screens foreign steps before they get here."""
        if step.name not in self.actions:
            raise ValueError(f"mvcc has no action {step.name!r}")
        return super().apply(state, step)

    def request(self, step: Step) -> Request:
        """The core request a step of this machine issues (never mutated)."""
        return self.request_of(step.name, step.params)

    def request_of(self, name: str, params: tuple) -> Request:
        key = (name,) + params
        req = self._requests.get(key)
        if req is None:
            req = self._requests[key] = self._build_request(name, params)
        return req

    def _build_request(self, name, p) -> Request:
        req = self._make_request(name, p)
        ops = req.success if isinstance(req, Txn) else () if isinstance(req, Compact) else (req,)
        if validate(req) or any(
                op.key not in self.keys or (isinstance(op, Put) and op.value not in self.values)
                for op in ops):
            raise ValueError(f"{name}{p} is not a step of this mvcc machine")
        return req

    def _make_request(self, name, p) -> Request:
        if name == "Put":
            return Put(p[0], p[1])
        if name == "Delete":
            return Delete(p[0])
        if name == "Compact":
            return Compact(p[0])
        if name != "Txn":
            raise ValueError(f"mvcc has no action {name!r}")
        kind = p[0]
        if kind == "cas":
            k, r, v = p[1:]
            return Txn((Compare(k, MOD, EQUAL, r),), (Put(k, v),), (Range(k),))
        if kind == "cad":
            k, r = p[1:]
            return Txn((Compare(k, MOD, EQUAL, r),), (Delete(k),), (Range(k),))
        if kind == "put_all":
            (v,) = p[1:]
            return Txn((Compare(self.keys[0], VALUE, NOT_EQUAL, v),),
                       tuple(Put(k, v) for k in self.keys),
                       tuple(Range(k) for k in self.keys))
        raise ValueError(f"mvcc has no txn {kind!r}")

    def _issue(self, state, req):
        # no guard: the machine's own steps always parse, and a recorded step is
        # screened by `trace replay` first, so an error here is a bug to surface
        mutant = self.mutant
        if mutant == TXN_IGNORES_COMPARE and isinstance(req, Txn):
            req = Txn((), req.success, req.failure)
        new, _ = apply_valid(state, req)
        if new[0] > self.max_revision:
            return None
        if mutant is not None and new is not state:
            new = self._mutate(state, req, new)
        return new

    # -- seeded bugs (the core stays correct; bugs perturb its result) --------
    def _mutate(self, before, req, after):
        mutant = self.mutant
        if mutant == DELETE_KEEPS_REVISION:
            if isinstance(req, Delete) and after[0] == before[0] + 1:
                hist = history(after, req.key)
                tomb = (before[0],) + hist[-1][1:]
                return (before[0], after[1],
                        _with_history(after[2], req.key, hist[:-1] + (tomb,)))
        elif mutant == PUT_KEEPS_MOD_REVISION:
            if isinstance(req, Put):
                old = history(before, req.key)
                if old and old[-1][R_VERSION]:
                    hist = history(after, req.key)
                    rec = (old[-1][R_MOD],) + hist[-1][1:]
                    return after[:2] + (_with_history(after[2], req.key, hist[:-1] + (rec,)),)
        elif mutant == COMPACT_DROPS_LIVE_KEY:
            if isinstance(req, Compact):
                at = req.revision
                kept = tuple((k, h) for k, h in after[2] if h[-1][R_MOD] >= at)
                return after[:2] + (kept,)
        elif mutant == COMPACTION_OFF_BY_ONE:
            if isinstance(req, Compact):
                return (after[0], req.revision + 1, after[2])
        elif mutant == DELETE_KEEPS_VERSION:
            if isinstance(req, Put):
                old = history(before, req.key)
                if len(old) >= 2 and not old[-1][R_VERSION] and old[-2][R_VERSION]:
                    hist = history(after, req.key)
                    rec = hist[-1][:R_VERSION] + (old[-2][R_VERSION] + 1,) + hist[-1][R_VALUE:]
                    return after[:2] + (_with_history(after[2], req.key, hist[:-1] + (rec,)),)
        return after

    def view(self, state):
        return describe(state)

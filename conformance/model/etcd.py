"""etcd's key-value API, one key at a time, with revisions — delegating to the MVCC oracle.

What a request does is decided by ``model.store.mvcc.apply_request``, kubemc's
one model of etcd's store (semantics and sources are documented there): this
module adds only what checking a *history* needs on top of it, namely
per-key partitioning and unknowns. Operation shapes are in
:mod:`conformance.history`; each maps to one oracle request (``put`` → ``Put``,
``get`` → ``Range``, ``delete`` → ``Delete``, ``txn`` → ``Txn`` with ``compare``
targets ``value | mod_rev | version | create_rev``).

**Per key.** Checking one key at a time (P-compositionality) needs a state
that does not mention other keys, and the store's revision does. The per-key
state keeps, instead of the global counter, ``floor``: a lower bound of the
store revision at the current point of this key's linearization (the largest
revision its operations have revealed). Each step runs the oracle on a
one-key store whose revision is moved to where the operation says it was: a
write reported at revision ``R`` is applied to the store at ``R - 1`` (so it
needs ``R > floor``: other keys' writes account for the gap), a read reported
at header revision ``R`` at ``R`` (needs ``R >= floor``). Writes are thereby
linearized in revision order only, which prunes the search hard. Whether
revisions respect real time *across* keys — which no single key can see — is
:meth:`EtcdKV.global_violation`: one sweep, "if A returns before B is invoked,
``rev(A) <= rev(B)``, strictly if B writes; no two writes share a revision"
(etcd API guarantees: revisions are a total order of writes consistent with
linearizability).

**Unknowns** are never held against a target. A write whose revision is
unknown (``info``, or no ``rev`` in its output) runs at ``floor + 1``, the
least revision it can have, and the mod/create revisions it stamps are then
unknown (``None``) until a ``get`` reveals them. An ``info`` txn whose compare
cannot be decided (it compares an unknown field) takes the branch that writes:
the other branch only reads, and a read-only effect is the same as the
operation never taking effect, which the checker always allows; if both
branches write, the key becomes wholly unknown. A wholly unknown key (``value``
is :data:`UNKNOWN`, also the starting state for checking a window of a history
from an unknown point) becomes known again through a ``get`` that reports it,
a ``put`` (value known) or a ``delete`` (absent).

State: ``(value, version, create_rev, mod_rev, floor)`` — ``value`` ``None`` for
an absent key, :data:`UNKNOWN` for a wholly unknown one; numeric fields ``None``
when unknown.
"""

from __future__ import annotations

from typing import Any

import attrs

from kubemc.conformance.history import Operation
from kubemc.conformance.model.spec import Spec
from kubemc.model.store import mvcc


class _Unknown:
    __slots__ = ()

    def __repr__(self):
        return "?"

    def __reduce__(self):
        return "UNKNOWN"


UNKNOWN = _Unknown()

#: an absent key in a fresh store (etcd's revision starts at 1)
ABSENT = (None, 0, 0, 0, 1)

TARGETS = {"value": mvcc.VALUE, "mod_rev": mvcc.MOD, "version": mvcc.VERSION,
           "create_rev": mvcc.CREATE}
OPERATORS = {"=": mvcc.EQUAL, "==": mvcc.EQUAL, "!=": mvcc.NOT_EQUAL, "<": mvcc.LESS,
             ">": mvcc.GREATER}
_FIELD = {mvcc.VALUE: 0, mvcc.VERSION: 1, mvcc.CREATE: 2, mvcc.MOD: 3}

# Placeholders for unknown numeric fields inside the one-key store handed to
# the oracle: negative (no etcd revision or version is), and far enough below
# zero that a version placeholder stays negative after the oracle adds one.
_REV_PH = -1
_VERSION_PH = -(10 ** 9)
R_MOD, R_CREATE, R_VERSION, R_VALUE = mvcc.R_MOD, mvcc.R_CREATE, mvcc.R_VERSION, mvcc.R_VALUE


def _rev(out) -> int | None:
    if isinstance(out, dict):
        r = out.get("rev")
        if isinstance(r, int) and not isinstance(r, bool):
            return r
    return None


_NUMERIC = ("rev", "mod_rev", "version", "create_rev", "deleted")


def _output_problem(f: str, out, depth: int = 0) -> str | None:
    """Why an ok output is not of the shape :mod:`conformance.history` gives, or ``None``.

    Fields may be absent or ``null`` (unobserved); present ones must have their
    type — a revision that is a string is bad input, never a wrong answer.
    """
    if out is None:
        return None
    if not isinstance(out, dict):
        return f"the output of an ok {f} must be a JSON object, not {out!r:.60}"
    for name in _NUMERIC:
        v = out.get(name)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
            return f"{name} in the output of {f} must be an integer, not {v!r:.60}"
    v = out.get("value")
    if v is not None and not isinstance(v, str):
        return f"value in the output of {f} must be a string or null, not {v!r:.60}"
    v = out.get("succeeded")
    if v is not None and not isinstance(v, bool):
        return f"succeeded in the output of {f} must be true or false, not {v!r:.60}"
    responses = out.get("responses")
    if responses is not None:
        if depth or not isinstance(responses, list):
            return f"responses in the output of {f} must be a list of response objects"
        for r in responses:
            why = _output_problem(f, r, depth + 1)
            if why is not None:
                return why
    return None


def _known(x) -> int | None:
    return None if x is None or x < 0 else x


# ---------------------------------------------------------------------------
# Operations as oracle requests
# ---------------------------------------------------------------------------


class _Bad(ValueError):
    pass


def _branch(key: str, reqs) -> tuple:
    if reqs is None:
        return ()
    if not isinstance(reqs, list):
        raise _Bad(f"a txn branch is a list of requests, not {reqs!r}")
    out = []
    for q in reqs:
        if not isinstance(q, list) or not q:
            raise _Bad(f"a txn request is [\"put\", V], [\"get\"] or [\"delete\"], not {q!r}")
        if q[0] == "put" and len(q) == 2 and isinstance(q[1], str):
            out.append(mvcc.Put(key, q[1]))
        elif q[0] == "get" and len(q) == 1:
            out.append(mvcc.Range(key))
        elif q[0] == "delete" and len(q) == 1:
            out.append(mvcc.Delete(key))
        else:
            raise _Bad(f"a txn request is [\"put\", V], [\"get\"] or [\"delete\"], not {q!r}")
    return tuple(out)


def _compares(key: str, compare) -> tuple:
    if isinstance(compare, list) and compare and isinstance(compare[0], list):
        triples = compare
    else:
        triples = [compare]
    out = []
    for c in triples:
        if not (isinstance(c, list) and len(c) == 3 and c[0] in TARGETS and c[1] in OPERATORS):
            raise _Bad(f"a compare is [TARGET, OP, X] with TARGET one of {', '.join(TARGETS)} and "
                       f"OP one of {', '.join(OPERATORS)}, not {c!r}")
        out.append(mvcc.Compare(key, TARGETS[c[0]], OPERATORS[c[1]], c[2]))
    return tuple(out)


def request(op: Operation):
    """The oracle request an etcd-kv operation makes (``_Bad`` if it has no such shape)."""
    key = op.key
    if not isinstance(key, str) or not key:
        raise _Bad("an etcd-kv operation needs a non-empty string key")
    if op.f == "put":
        if not isinstance(op.input, str):
            raise _Bad(f"put writes a string, not {op.input!r}")
        return mvcc.Put(key, op.input)
    if op.f == "get":
        return mvcc.Range(key)
    if op.f == "delete":
        return mvcc.Delete(key)
    if op.f == "txn":
        inp = op.input
        if not isinstance(inp, dict) or "compare" not in inp:
            raise _Bad(f"txn expects {{\"compare\": [TARGET, OP, X], \"success\": [...], "
                       f"\"failure\": [...]}}, not {inp!r}")
        return mvcc.Txn(_compares(key, inp["compare"]), _branch(key, inp.get("success")),
                        _branch(key, inp.get("failure")))
    raise _Bad(f"etcd-kv has no operation {op.f!r}")


def _writes(reqs, live: bool = True) -> bool:
    """Does a branch write (a put, or a delete of a live key)? ``live``: the key exists before."""
    for q in reqs:
        if isinstance(q, mvcc.Put):
            return True
        if isinstance(q, mvcc.Delete) and live:
            return True
    return False


# ---------------------------------------------------------------------------
# Matching responses against what the history recorded
# ---------------------------------------------------------------------------


def _observe(kvs: tuple, obs, learn: bool):
    """Does a range response agree with an observed get output?

    Returns ``None`` if not, else the fields the observation reveals that the
    model did not know (``{}`` when nothing new), or ``False`` when ``learn``
    is off and the model's value of an observed field is unknown (that is not
    a disagreement: nothing is compared).
    """
    if not isinstance(obs, dict):
        return {}
    kv = kvs[0] if kvs else None
    learned = {}
    if "value" in obs:
        v = obs["value"]
        if (kv is None) != (v is None) or (kv is not None and kv.value != v):
            return None
    for name, attr in (("mod_rev", "mod_revision"), ("create_rev", "create_revision"),
                       ("version", "version")):
        x = obs.get(name)
        if x is None:
            continue
        have = 0 if kv is None else getattr(kv, attr)
        if have < 0:  # unknown: for revisions, -have is a lower bound
            if attr != "version" and have != _REV_PH and x < -have:
                return None
            learned[name] = x
        elif have != x:
            return None
    return learned


class EtcdKV(Spec):
    """The ``etcd-kv`` specification (see the module documentation)."""

    name = "etcd-kv"
    ops = frozenset({"get", "put", "delete", "txn"})
    read_only = frozenset({"get"})
    memoize_transitions = True

    def init(self):
        return ABSENT

    def starts_from_any_state(self, ops: list[Operation]) -> list[Spec]:
        """One specification: the key starts :data:`UNKNOWN` (any value, any revision)."""
        return [_FromUnknown()]

    def is_pure(self, op: Operation) -> bool:
        return False  # a get narrows the floor and may reveal unknown fields

    def validate(self, op: Operation):
        why = super().validate(op)
        if why is not None:
            return why
        try:
            req = request(op)
        except _Bad as e:
            return str(e)
        if op.status == "ok":
            why = _output_problem(op.f, op.output)
            if why is not None:
                return why
        err = mvcc.validate(req)
        return None if err is None else f"etcd refuses this {op.f}: {err}"

    def describe(self, state):
        value, version, create, mod, floor = state
        if value is UNKNOWN:
            return {"value": "?", "version": "?", "create_rev": "?", "mod_rev": "?",
                    "revision_at_least": floor}
        q = lambda x: "?" if x is None else f">={-x}" if x < 0 else x  # noqa: E731
        return {"value": value, "version": q(version), "create_rev": q(create),
                "mod_rev": q(mod), "revision_at_least": floor}

    # -- the transition -----------------------------------------------------------
    def step(self, state, op: Operation):
        if op.status == "fail":
            return state
        if op.status == "info" and op.f == "get":
            return state
        return self._step(state, request(op), op.output if op.status == "ok" else None,
                          op.status == "ok")

    def prepare(self, op: Operation):
        if op.status == "fail" or (op.status == "info" and op.f == "get"):
            return None
        req = request(op)
        known = op.status == "ok"
        out = op.output if known else None
        step = self._step
        return lambda s: step(s, req, out, known)

    def _step(self, state, req, out, known: bool):
        if state[0] is UNKNOWN:
            return self._step_unknown(state, req, out, known)
        if isinstance(req, mvcc.Txn) and any(_unknown_target(state, c) for c in req.compares):
            holds = _decide_by_bounds(state, req)
            if holds is not None:
                return self._apply(state, mvcc.Txn((), req.success if holds else req.failure, ()),
                                   out, known, holds)
            # The compare reads a field the history has not revealed: the branch is
            # what the output says; else, for an info txn, the branch that writes
            # (see the module doc); else either, whichever the responses allow.
            said = out.get("succeeded") if known and isinstance(out, dict) else None
            if said is not None:
                branches = [bool(said)]
            elif not known:
                if _writes(req.success) and _writes(req.failure):
                    return (UNKNOWN, None, None, None, state[4])
                branches = [_writes(req.success)]
            else:
                branches = [True, False]
            results = []
            for ok in branches:
                r = self._apply(state, mvcc.Txn((), req.success if ok else req.failure, ()),
                                out, known, ok)
                if r is not None and r not in results:
                    results.append(r)
            if len(results) <= 1:
                return results[0] if results else None
            return (UNKNOWN, None, None, None, min(r[4] for r in results))
        return self._apply(state, req, out, known, None)

    def _apply(self, state, req, out, known: bool, decided: bool | None):
        """Run the oracle on the one-key store; ``decided``: the txn's branch, fixed by
        the caller (``req`` is then a compare-free txn running that branch)."""
        value, version, create, mod, floor = state
        key = req.key if not isinstance(req, mvcc.Txn) else _txn_key(req)
        if value is None:
            keys = ()
        else:
            rec = (_REV_PH if mod is None else mod, _REV_PH if create is None else create,
                   _VERSION_PH if version is None else version, value)  # bounds stay negative
            keys = ((key, (rec,)),)
        r = _rev(out) if known else None
        if isinstance(req, mvcc.Txn):
            writes = _writes(req.success, value is not None) if not req.compares else None
        else:
            writes = isinstance(req, mvcc.Put) or (isinstance(req, mvcc.Delete) and value is not None)
        if writes is None:  # a decidable txn: which branch runs depends on the compares
            holds = mvcc.compares_hold((floor, 0, keys), req.compares)
            writes = _writes(req.success if holds else req.failure, value is not None)
        # Move the one-key store to the revision the operation reports.
        if r is None:
            at = floor
        elif writes:
            if r <= floor:
                return None
            at = r - 1
        else:
            if r < floor:
                return None
            at = r
        new, resp = mvcc.apply_valid((at, 0, keys), req)
        if isinstance(resp, mvcc.Error):
            return None
        learned = {}
        if known and isinstance(out, dict):
            if isinstance(resp, mvcc.RangeResponse):
                learned = _observe(resp.kvs, out, True)
                if learned is None:
                    return None
            elif isinstance(resp, mvcc.DeleteResponse):
                d = out.get("deleted")
                if d is not None and d != resp.deleted:
                    return None
            elif isinstance(resp, mvcc.TxnResponse):
                if decided is None:
                    s = out.get("succeeded")
                    if s is not None and bool(s) != resp.succeeded:
                        return None
                branch = req.success if (resp.succeeded if decided is None else True) else req.failure
                got = out.get("responses")
                if isinstance(got, list):
                    pure = not _writes(branch)
                    for q, rr, obs in zip(branch, resp.responses, got):
                        if isinstance(q, mvcc.Range):
                            more = _observe(rr.kvs, obs, pure)
                            if more is None:
                                return None
                            if pure:
                                learned.update(more)
                        elif isinstance(q, mvcc.Delete) and isinstance(obs, dict):
                            d = obs.get("deleted")
                            if d is not None and d != rr.deleted:
                                return None
        # Back to the per-key state.
        hist = mvcc.history(new, key)
        rec = hist[-1] if hist else None
        fresh = new[0] if (r is None and writes) else None   # an unknown revision
        if rec is None or rec[R_VERSION] == 0:
            nvalue, nversion, ncreate, nmod = None, 0, 0, 0
        else:
            nvalue = rec[R_VALUE]
            nversion = _known(rec[R_VERSION])
            ncreate = -fresh if rec[R_CREATE] == fresh else rec[R_CREATE]
            nmod = -fresh if rec[R_MOD] == fresh else rec[R_MOD]
        nfloor = new[0] if r is not None or writes else floor
        if learned:
            nmod = learned.get("mod_rev", nmod)
            ncreate = learned.get("create_rev", ncreate)
            nversion = learned.get("version", nversion)
            top = max(nmod if nmod and nmod > 0 else 0, ncreate if ncreate and ncreate > 0 else 0)
            if r is not None and top > r:
                return None  # a revision from the future of the read
            nfloor = max(nfloor, top)
        return (nvalue, nversion, ncreate, nmod, nfloor)

    def _step_unknown(self, state, req, out, known: bool):
        """A step from a wholly unknown key: only what the operation itself reveals."""
        floor = state[4]
        r = _rev(out) if known else None
        if isinstance(req, mvcc.Range):
            if r is not None:
                if r < floor:
                    return None
                floor = r
            if known and isinstance(out, dict) and "value" in out:
                v = out["value"]
                if v is None:
                    return (None, 0, 0, 0, floor)
                return (v, out.get("version"), out.get("create_rev"), out.get("mod_rev"), floor)
            return (UNKNOWN, None, None, None, floor)
        if isinstance(req, mvcc.Put):
            if r is not None:
                if r <= floor:
                    return None
                return (req.value, None, None, r, r)
            return (req.value, None, None, -(floor + 1), floor + 1)
        if isinstance(req, mvcc.Delete):
            d = out.get("deleted") if known and isinstance(out, dict) else None
            if r is not None:
                if r < floor or (d and r == floor):
                    return None
                floor = r
            return (None, 0, 0, 0, floor)
        # A txn: the branch is what the output says; else, for an info txn, the one
        # that writes; else nothing more is known (but the revision).
        if known and isinstance(out, dict) and "succeeded" in out:
            branch = req.success if out["succeeded"] else req.failure
        elif known:
            if r is not None:
                if r < floor:
                    return None
                floor = r
            return (UNKNOWN, None, None, None, floor)
        elif not _writes(req.failure):
            branch = req.success
        elif not _writes(req.success):
            branch = req.failure
        else:
            return state
        if r is not None:
            if r < floor or (_writes(branch) and r == floor):
                return None
        s = (UNKNOWN, None, None, None, floor)
        got = out.get("responses") if known and isinstance(out, dict) else None
        for i, q in enumerate(branch):
            obs = got[i] if isinstance(got, list) and i < len(got) else None
            if isinstance(q, mvcc.Range):
                if s[0] is UNKNOWN:
                    if isinstance(obs, dict) and "value" in obs:
                        v = obs["value"]
                        s = ((None, 0, 0, 0, s[4]) if v is None else
                             (v, obs.get("version"), obs.get("create_rev"), obs.get("mod_rev"), s[4]))
            elif isinstance(q, mvcc.Put):
                s = (q.value, None, None, r, s[4])  # version, creation: unknown
            else:
                s = (None, 0, 0, 0, s[4])
        if r is not None:
            s = s[:4] + (max(r, s[4]),)
        return s

    # -- unknown writes that reads saw -----------------------------------------------
    def simplify(self, ops):
        """Resolve unknown writes that some read saw, when written values are unique.

        An ``info`` put (or an ``info`` txn whose success branch puts) of a value
        no other operation writes, returned by some ``get`` (or a txn's read),
        certainly took effect before that read returned: it becomes a write
        with a known outcome (revision still unknown) that returns then — as
        etcd's robustness tests treat the writes their reads and watches saw.
        It can then no longer be placed anywhere later, nor left out, which is
        what makes histories with many unknown outcomes tractable.
        """
        def puts(op):
            if op.f == "put":
                return [op.input]
            if op.f == "txn" and isinstance(op.input, dict):
                return [q[1] for b in ("success", "failure") for q in op.input.get(b) or ()
                        if isinstance(q, list) and len(q) == 2 and q[0] == "put"]
            return []

        written = [v for op in ops if op.status != "fail" for v in puts(op)]
        if not written or len(set(map(repr, written))) != len(written):
            return ops
        first_seen: dict = {}
        for op in ops:
            if op.status != "ok" or not isinstance(op.output, dict):
                continue
            seen = []
            if op.f == "get":
                seen.append(op.output.get("value"))
            elif op.f == "txn" and isinstance(op.output.get("responses"), list):
                seen += [r.get("value") for r in op.output["responses"] if isinstance(r, dict)]
            for v in seen:
                if isinstance(v, str) and (v not in first_seen or op.ret < first_seen[v]):
                    first_seen[v] = op.ret
        out = []
        for op in ops:
            if op.status == "info":
                vs = puts(op) if op.f == "put" else (
                    [q[1] for q in (op.input.get("success") or ())
                     if isinstance(q, list) and len(q) == 2 and q[0] == "put"]
                    if op.f == "txn" and isinstance(op.input, dict) else [])
                t = min((first_seen[v] for v in vs if v in first_seen), default=None)
                if t is not None and t > op.call:
                    op = attrs.evolve(op, status="ok", ret=t,
                                      output={} if op.f == "put" else {"succeeded": True})
            out.append(op)
        return out

    # -- across keys ---------------------------------------------------------------
    @staticmethod
    def _writes_op(op: Operation) -> bool:
        if op.f == "put":
            return True
        out = op.output if isinstance(op.output, dict) else {}
        if op.f == "delete":
            return bool(out.get("deleted"))
        if op.f == "txn":
            inp = op.input if isinstance(op.input, dict) else {}
            reqs = inp.get("success" if out.get("succeeded") else "failure") or []
            return any(q and q[0] == "put" or (q and q[0] == "delete" and _deleted(out, i))
                       for i, q in enumerate(reqs))
        return False

    def global_violation(self, ops):
        """Revisions against real time, across all keys (one sort and one sweep)."""
        known = [(op, _rev(op.output), self._writes_op(op)) for op in ops
                 if op.status == "ok" and _rev(op.output) is not None]
        seen: dict[int, Operation] = {}
        for op, r, w in known:
            if w:
                if r in seen:
                    return (f"two writes share revision {r}", [seen[r], op])
                seen[r] = op
        by_ret = sorted(known, key=lambda t: t[0].ret)
        j, best, best_op = 0, -1, None
        for op, r, w in sorted(known, key=lambda t: t[0].call):
            while j < len(by_ret) and by_ret[j][0].ret < op.call:
                if by_ret[j][1] > best:
                    best, best_op = by_ret[j][1], by_ret[j][0]
                j += 1
            if r < best or (w and r == best):
                return (f"revision {r} of this {op.f} is not after revision {best}, which "
                        f"completed before it began", [best_op, op])
        return None


def _deleted(out: dict, i: int) -> bool:
    got = out.get("responses")
    if isinstance(got, list) and i < len(got) and isinstance(got[i], dict):
        return bool(got[i].get("deleted", False))
    return False  # unknown: not counted as a write (the check only relaxes)


def _txn_key(req) -> str:
    for q in req.compares + req.success + req.failure:
        return q.key
    return ""


def _unknown_target(state, c) -> bool:
    value = state[0]
    if value is None:
        return False  # an absent key: every target is known (0, or a failing VALUE compare)
    x = state[_FIELD[c.target]]
    return x is None or x is UNKNOWN or (c.target != mvcc.VALUE and x < 0)


def _decide_by_bounds(state, req) -> bool | None:
    """Whether a txn's compares hold, when every unknown revision they read is
    decided by its lower bound (a revision stamped by a write of unknown
    revision is at least the floor it was written at, plus one); else None."""
    store = None
    for c in req.compares:
        x = state[_FIELD[c.target]]
        if not _unknown_target(state, c):
            if store is None:
                value, version, create, mod, floor = state
                rec = (mod if mod is not None and mod >= 0 else _REV_PH,
                       create if create is not None and create >= 0 else _REV_PH,
                       version if version is not None else _VERSION_PH, value)
                store = (floor, 0, ((c.key, (rec,)),) if value is not None else ())
            holds = mvcc.compare_holds(store, c)
        elif c.target in (mvcc.MOD, mvcc.CREATE) and x is not None and x < 0 \
                and isinstance(c.operand, int):
            low, v = -x, c.operand
            if c.op == mvcc.EQUAL and v < low:
                holds = False
            elif c.op == mvcc.NOT_EQUAL and v < low:
                holds = True
            elif c.op == mvcc.LESS and v <= low:
                holds = False
            elif c.op == mvcc.GREATER and v < low:
                holds = True
            else:
                return None
        else:
            return None
        if not holds:
            return False
    return True


def mvcc_oracle() -> Any:
    """The oracle this specification delegates to."""
    return mvcc.apply_request


class _FromUnknown(EtcdKV):
    """etcd-kv starting from a state about which nothing is known (a window
    cut from the middle of a history; revisions across keys are not its
    concern)."""

    def init(self):
        return (UNKNOWN, None, None, None, 0)

    def global_violation(self, ops):
        return None

"""etcd transactions, symbolically: what a txn does to an MVCC store, for all
stores and all txns of a bounded shape.

Two encodings of ``model.store.mvcc`` share one symbolic store:

* :class:`TxnEncoding` — *one* action, ``Txn``, whose request is symbolic:
  up to ``compares`` compares (any key, target MOD / VERSION / CREATE /
  VALUE, operator = / != / < /  >, any operand) and ``success`` / ``failure``
  branches of up to ``ops`` operations each (Put, Delete, Range at any
  revision). Its semantics is that of the functional core
  ``model.store.mvcc.apply_request`` (validation, compare evaluation, branch
  choice, range errors, one shared write revision), and a decoded step
  replays with ``apply_request``. The obligations below are proved over it
  from *every* well-formed store of the bounds — not only reachable ones;
* :class:`MvccEncoding` — the :class:`~model.store.mvcc.Mvcc` machine action
  for action (Put, Delete, its Txn family ``cas`` / ``cad`` / ``put_all``,
  Compact), with its ``txn_ignores_compare`` mutant: BMC from the initial
  store finds the mutant's counterexample, which replays on ``Mvcc``.

The symbolic store. With revisions bounded by ``R = max_revision`` and
every record of a key carrying its own ``mod_revision``, a key's history is
a function from revision to "record or nothing": variables
``present[k][r]``, ``create[k][r]``, ``version[k][r]``, ``value[k][r]`` for
keys ``k`` and revisions ``2 <= r <= R`` (the empty store is at revision 1
and the first write makes it 2), plus ``rev`` and ``compact``. Values are
encoded by their rank in string order (``0`` is ``""``, the tombstone's),
so VALUE compares with ``<`` / ``>`` keep etcd's byte-string order. The
*domain* is the well-formedness of the state tuple: ``1 <= rev <= R``,
``0 <= compact <= rev``, no record above ``rev``, tombstones are
``(r, 0, 0, "")``, live records have ``1 <= version`` and ``2 <= create <= r``,
absent slots are all zero (so states and assignments are in bijection).

What is proved (:data:`OBLIGATIONS`, 2 keys and 3 keys, 2 values, revisions
up to 5, two compares and two operations per branch). "Every txn" means:
every such shape, every key, target and operator, integer operands from -1
to ``max(R, V) + 1`` (every value a version / create / mod revision can
take, and one beyond on each side: any other integer compares like one of
those), VALUE operands ``""`` and the value set, Put values from the value
set, Range revisions from -1 to ``R + 1`` (current, every stored revision,
the future):

* ``failed_txn_writes_nothing`` — when the compares are false in the
  pre-state, no key that the failure branch does not write changes, and a
  txn whose failure branch writes nothing (only ranges, or nothing) leaves
  the store exactly as it was: etcd's "if every compare holds apply success,
  otherwise failure" (rpc.proto TxnRequest; etcd v3 API guide);
* ``txn_is_one_revision`` — a txn advances the revision by exactly one when
  it writes (however many keys) and not at all otherwise; every record it
  appends carries that one new revision; and no record of an older revision
  changes (etcd API guarantees: a txn is assigned a single revision; data
  model: data of previous revisions remains unchanged).

Both are *step* obligations: 1-induction with no strengthening, i.e. the
claim holds on every step from every state of the domain. Their statements
are independent of how the encoding computes the step (they speak of state
variables and of the request's branches only), so a wrong encoding would
fail them — the differential tests show the encoding is right.
"""

from __future__ import annotations

import z3

from kubemc.model.store.mvcc import (
    CREATE, EQUAL, GREATER, INITIAL, KEY_NAMES, LESS, MOD, NOT_EQUAL, R_CREATE, R_MOD,
    R_VALUE, R_VERSION, VALUE, VALUE_NAMES, VERSION, Compare, Delete, Mvcc, Put, Range, Txn,
    apply_request, history, revision,
)
from kubemc.model.kernel import Step
from kubemc.properties import mvcc as mvcc_properties
from kubemc.properties.core import TRANSITION, Property
from kubemc.properties.symbolic import Action, Encoding, Obligation, SymProperty, Var

TARGETS = (MOD, VERSION, CREATE, VALUE)
OPERATORS = (EQUAL, NOT_EQUAL, LESS, GREATER)
NONE, PUT, DELETE, RANGE = range(4)

FAILED_TXN_WRITES_NOTHING = next(p for p in mvcc_properties.PROPERTIES
                                 if p.name == "failed_txn_writes_nothing")


def _txn_of(m, step) -> Txn | None:
    if step.name != "Txn":
        return None
    p = step.params
    if p and isinstance(p[0], Txn):
        return p[0]
    return m.request(step)


def txn_is_one_revision(m, before, step, after) -> bool:
    """Executable twin of the symbolic ``txn_is_one_revision``."""
    if _txn_of(m, step) is None:
        return True
    appended = mvcc_properties.appended(before, after)
    rb, ra = revision(before), revision(after)
    if ra != (rb + 1 if appended else rb):
        return False
    if any(rec[R_MOD] != ra for rec in appended.values()):
        return False
    keys = {k for k, _ in before[2]} | {k for k, _ in after[2]}
    for k in keys:
        hb, ha = history(before, k), history(after, k)
        if ha[:len(hb)] != hb:
            return False
    return True


TXN_IS_ONE_REVISION = Property(
    "txn_is_one_revision", "store", TRANSITION,
    "A txn advances the store revision by exactly one if it writes (any number of keys) "
    "and leaves it unchanged otherwise; every record it appends carries the new "
    "revision; no record of an earlier revision changes.",
    "etcd API guarantees (etcd.io/docs/v3.5/learning/api_guarantees): a txn modifying "
    "several keys is assigned a single revision; etcd data model "
    "(etcd.io/docs/v3.5/learning/data_model): data held by previous revisions remains "
    "unchanged", txn_is_one_revision)

PROPERTIES = (TXN_IS_ONE_REVISION,)


class _Store(Encoding):
    """The symbolic store shared by both encodings (see the module doc)."""

    stutters = True  # Mvcc keeps requests that change nothing as self-loops

    def __init__(self, machine, keys: int, values: int, max_revision: int):
        super().__init__(machine)
        self.K = keys
        self.keys = tuple(KEY_NAMES[:keys])
        self.value_names = tuple(VALUE_NAMES[:values])
        # rank in string order, 1-based; 0 is "" (tombstones, empty operand)
        self.ordered = ("",) + tuple(sorted(self.value_names))
        self.rank = {v: i for i, v in enumerate(self.ordered)}
        self.V = values
        self.R = max_revision
        self.slots = range(2, max_revision + 1)

    # -- variables and domain ------------------------------------------------
    def variables(self):
        R = self.R
        out = [Var(("rev",), 1, R), Var(("compact",), 0, R)]
        for k in range(self.K):
            for r in self.slots:
                out += [Var(("present", k, r)), Var(("create", k, r), 0, R),
                        Var(("version", k, r), 0, R), Var(("value", k, r), 0, self.V)]
        return out

    def domain(self, S):
        conds = [super().domain(S), S["compact",] <= S["rev",]]
        for k in range(self.K):
            for r in self.slots:
                p, c = S["present", k, r], S["create", k, r]
                ver, val = S["version", k, r], S["value", k, r]
                conds += [
                    z3.Implies(p, r <= S["rev",]),
                    z3.Implies(z3.Not(p), z3.And(c == 0, ver == 0, val == 0)),
                    z3.Implies(z3.And(p, ver == 0), z3.And(c == 0, val == 0)),
                    z3.Implies(z3.And(p, ver >= 1), z3.And(val >= 1, c >= 2, c <= r)),
                ]
        return z3.And(conds)

    def init(self, S):
        conds = [S["rev",] == INITIAL[0], S["compact",] == INITIAL[1]]
        conds += [z3.Not(S["present", k, r]) for k in range(self.K) for r in self.slots]
        return z3.And(conds)

    # -- reading the store ------------------------------------------------------
    def current(self, S, k):
        """The last record of key k: (exists, live, mod, create, version, value).
        Every record is at or below ``rev`` (domain), so the last one is the
        one a read at the current revision sees."""
        exists = z3.BoolVal(False)
        mod, create, version, value = (z3.IntVal(0),) * 4
        for r in self.slots:
            p = S["present", k, r]
            exists = z3.Or(exists, p)
            mod = z3.If(p, z3.IntVal(r), mod)
            create = z3.If(p, S["create", k, r], create)
            version = z3.If(p, S["version", k, r], version)
            value = z3.If(p, S["value", k, r], value)
        live = z3.And(exists, version >= 1)
        return exists, live, mod, create, version, value

    def compare_holds(self, S, key, target, op, operand):
        """etcd's compare on the current revision; ``key`` / ``target`` /
        ``op`` may be symbolic (ints) or concrete (python ints)."""
        cur = [self.current(S, k) for k in range(self.K)]

        def pick(i):
            out = cur[self.K - 1][i]
            for k in range(self.K - 2, -1, -1):
                out = z3.If(key == k, cur[k][i], out)
            return out
        live = pick(1)
        actual = {MOD: z3.If(live, pick(2), 0), CREATE: z3.If(live, pick(3), 0),
                  VERSION: z3.If(live, pick(4), 0), VALUE: pick(5)}

        def cmp(a):
            return {EQUAL: a == operand, NOT_EQUAL: a != operand,
                    LESS: a < operand, GREATER: a > operand}

        out = z3.BoolVal(False)
        for ti, t in enumerate(TARGETS):
            for oi, o in enumerate(OPERATORS):
                holds = cmp(actual[t])[o]
                if t == VALUE:  # etcd: a VALUE compare on a missing key is false
                    holds = z3.And(live, holds)
                out = z3.If(z3.And(target == ti, op == oi), holds, out)
        return out

    # -- writing the store ----------------------------------------------------------
    def write_effect(self, S, puts, deletes):
        """The effect of one write revision: ``puts[k] = (cond, value rank)``,
        ``deletes[k] = cond`` (a delete writes only if the key is live).
        Returns (effect, wrote)."""
        new_rev = S["rev",] + 1
        effect = {}
        wrote_any = []
        for k in range(self.K):
            _, live, _, create, version, _ = self.current(S, k)
            put_c, put_v = puts.get(k, (z3.BoolVal(False), z3.IntVal(0)))
            del_c = z3.And(deletes.get(k, z3.BoolVal(False)), live, z3.Not(put_c))
            writes = z3.Or(put_c, del_c)
            wrote_any.append(writes)
            new_create = z3.If(put_c, z3.If(live, create, new_rev), 0)
            new_version = z3.If(put_c, z3.If(live, version + 1, 1), 0)
            new_value = z3.If(put_c, put_v, 0)
            for r in self.slots:
                here = z3.And(writes, new_rev == r)
                effect["present", k, r] = z3.Or(S["present", k, r], here)
                effect["create", k, r] = z3.If(here, new_create, S["create", k, r])
                effect["version", k, r] = z3.If(here, new_version, S["version", k, r])
                effect["value", k, r] = z3.If(here, new_value, S["value", k, r])
        wrote = z3.Or(wrote_any)
        effect["rev",] = z3.If(wrote, new_rev, S["rev",])
        return effect, wrote

    @staticmethod
    def gated(S, cond, effect):
        """``effect`` when ``cond`` holds, else no change."""
        return {key: z3.If(cond, value, S[key]) for key, value in effect.items()}

    # -- executable <-> symbolic ----------------------------------------------------
    def values(self, state):
        rev, compact, keys = state
        out = {("rev",): rev, ("compact",): compact}
        for k in range(self.K):
            for r in self.slots:
                out["present", k, r] = False
                out["create", k, r] = out["version", k, r] = out["value", k, r] = 0
        index = {name: k for k, name in enumerate(self.keys)}
        for name, hist in keys:
            k = index[name]
            for rec in hist:
                r = rec[R_MOD]
                out["present", k, r] = True
                out["create", k, r] = rec[R_CREATE]
                out["version", k, r] = rec[R_VERSION]
                out["value", k, r] = self.rank[rec[R_VALUE]]
        return out

    def state_of(self, values):
        keys = []
        for k, name in enumerate(self.keys):
            hist = tuple((r, values["create", k, r], values["version", k, r],
                          self.ordered[values["value", k, r]])
                         for r in self.slots if values["present", k, r])
            if hist:
                keys.append((name, hist))
        return (values["rev",], values["compact",], tuple(keys))


# ---------------------------------------------------------------------------
# The general txn
# ---------------------------------------------------------------------------


class TxnEncoding(_Store):
    """One symbolic Txn from any well-formed store (see the module doc)."""

    name = "mvcc-txn"

    def __init__(self, keys: int = 2, values: int = 2, max_revision: int = 5,
                 compares: int = 2, ops: int = 2):
        super().__init__(None, keys, values, max_revision)
        self.C = compares
        self.B = ops
        self.properties = {
            "failed_txn_writes_nothing": SymProperty(FAILED_TXN_WRITES_NOTHING,
                                                     self.failed_txn_writes_nothing),
            "txn_is_one_revision": SymProperty(TXN_IS_ONE_REVISION, self.txn_is_one_revision),
        }
        self.lemmas = {}

    def config(self):
        return {"keys": self.K, "values": self.V, "max_revision": self.R,
                "compares": self.C, "ops": self.B}

    def apply(self, state, step):
        """Replay with the functional core; a step past ``max_revision`` is
        disabled, as in the machine."""
        new, _ = apply_request(state, step.params[0])
        return None if new[0] > self.R else new

    # -- the request as inputs ----------------------------------------------------
    def inputs(self):
        K, R, V = self.K, self.R, self.V
        out = []
        for i in range(self.C):
            out += [Var(("cmp", i, "used")), Var(("cmp", i, "key"), 0, K - 1),
                    Var(("cmp", i, "target"), 0, 3), Var(("cmp", i, "op"), 0, 3),
                    # every operand that can answer differently: below, at and
                    # above each possible actual value
                    Var(("cmp", i, "operand"), -1, max(R, V) + 1)]
        for b in ("success", "failure"):
            for j in range(self.B):
                out += [Var((b, j, "kind"), 0, 3), Var((b, j, "key"), 0, K - 1),
                        Var((b, j, "value"), 1, V), Var((b, j, "rev"), -1, R + 1)]
        return tuple(out)

    def build_actions(self):
        return [Action("Txn", (), self._guard, self._effect, self.inputs(), self._to_step)]

    def _branch(self, I, b):
        return [(I[b, j, "kind"], I[b, j, "key"], I[b, j, "value"], I[b, j, "rev"])
                for j in range(self.B)]

    def request_parts(self, S, I):
        """(compares hold, request invalid, per-branch puts/deletes/range error)."""
        ok = z3.And([z3.Implies(I["cmp", i, "used"], self.compare_holds(
            S, I["cmp", i, "key"], I["cmp", i, "target"], I["cmp", i, "op"],
            I["cmp", i, "operand"])) for i in range(self.C)])
        invalid = []
        branches = {}
        for b in ("success", "failure"):
            ops = self._branch(I, b)
            for x in range(len(ops)):
                for y in range(x + 1, len(ops)):
                    kx, keyx = ops[x][0], ops[x][1]
                    ky, keyy = ops[y][0], ops[y][1]
                    clash = z3.Or(z3.And(kx == PUT, ky == PUT),
                                  z3.And(kx == PUT, ky == DELETE),
                                  z3.And(kx == DELETE, ky == PUT))
                    invalid.append(z3.And(clash, keyx == keyy))
            puts, deletes = {}, {}
            for k in range(self.K):
                put_c, put_v = z3.BoolVal(False), z3.IntVal(0)
                for kind, key, value, _ in ops:
                    hit = z3.And(kind == PUT, key == k)
                    put_v = z3.If(hit, value, put_v)
                    put_c = z3.Or(put_c, hit)
                puts[k] = (put_c, put_v)
                deletes[k] = z3.Or([z3.And(kind == DELETE, key == k)
                                    for kind, key, _, _ in ops])
            range_error = z3.Or([
                z3.And(kind == RANGE, rev > 0,
                       z3.Or(rev > S["rev",], rev < S["compact",]))
                for kind, _, _, rev in ops])
            branches[b] = (puts, deletes, range_error)
        return ok, z3.Or(invalid), branches

    def _outcome(self, S, I):
        ok, invalid, br = self.request_parts(S, I)
        puts = {k: (z3.If(ok, br["success"][0][k][0], br["failure"][0][k][0]),
                    z3.If(ok, br["success"][0][k][1], br["failure"][0][k][1]))
                for k in range(self.K)}
        deletes = {k: z3.If(ok, br["success"][1][k], br["failure"][1][k])
                   for k in range(self.K)}
        error = z3.Or(invalid, z3.If(ok, br["success"][2], br["failure"][2]))
        effect, wrote = self.write_effect(S, puts, deletes)
        return effect, z3.And(z3.Not(error), wrote), error

    def _guard(self, S, I):
        conds = []
        for i in range(self.C):  # a VALUE operand is a value rank (or "")
            conds.append(z3.Implies(I["cmp", i, "target"] == TARGETS.index(VALUE),
                                    z3.And(I["cmp", i, "operand"] >= 0,
                                           I["cmp", i, "operand"] <= self.V)))
        _, writes, _ = self._outcome(S, I)
        conds.append(z3.Implies(writes, S["rev",] + 1 <= self.R))
        return z3.And(conds)

    def _effect(self, S, I):
        effect, _, error = self._outcome(S, I)
        return self.gated(S, z3.Not(error), effect)

    def _to_step(self, v):
        compares = []
        for i in range(self.C):
            if not v["cmp", i, "used"]:
                continue
            target = TARGETS[v["cmp", i, "target"]]
            operand = v["cmp", i, "operand"]
            if target == VALUE:
                operand = self.ordered[operand]
            compares.append(Compare(self.keys[v["cmp", i, "key"]], target,
                                    OPERATORS[v["cmp", i, "op"]], operand))
        branches = []
        for b in ("success", "failure"):
            ops = []
            for j in range(self.B):
                kind, key = v[b, j, "kind"], self.keys[v[b, j, "key"]]
                if kind == PUT:
                    ops.append(Put(key, self.ordered[v[b, j, "value"]]))
                elif kind == DELETE:
                    ops.append(Delete(key))
                elif kind == RANGE:
                    ops.append(Range(key, v[b, j, "rev"]))
            branches.append(tuple(ops))
        return Step("Txn", (Txn(tuple(compares), branches[0], branches[1]),))

    def request_values(self, txn: Txn) -> dict:
        """The input assignment of a concrete txn of this encoding's shape
        (inputs the txn does not use are left out: any value will do)."""
        if len(txn.compares) > self.C or max(len(txn.success), len(txn.failure)) > self.B:
            raise ValueError("txn larger than the encoding's bounds")
        key = {name: k for k, name in enumerate(self.keys)}
        out = {}
        for i in range(self.C):
            out["cmp", i, "used"] = i < len(txn.compares)
            if i < len(txn.compares):
                c = txn.compares[i]
                out["cmp", i, "key"] = key[c.key]
                out["cmp", i, "target"] = TARGETS.index(c.target)
                out["cmp", i, "op"] = OPERATORS.index(c.op)
                out["cmp", i, "operand"] = self.rank[c.operand] if c.target == VALUE \
                    else c.operand
        for b, ops in (("success", txn.success), ("failure", txn.failure)):
            for j in range(self.B):
                op = ops[j] if j < len(ops) else None
                if op is None:
                    out[b, j, "kind"] = NONE
                    continue
                out[b, j, "key"] = key[op.key]
                if isinstance(op, Put):
                    out[b, j, "kind"], out[b, j, "value"] = PUT, self.rank[op.value]
                elif isinstance(op, Delete):
                    out[b, j, "kind"] = DELETE
                else:
                    out[b, j, "kind"], out[b, j, "rev"] = RANGE, op.revision
        return out

    # -- the properties -------------------------------------------------------------
    def _key_unchanged(self, S, S2, k):
        return z3.And([S[name, k, r] == S2[name, k, r]
                       for name in ("present", "create", "version", "value")
                       for r in self.slots])

    def failed_txn_writes_nothing(self, S, S2):
        I = self.inputs_of(S2, 0)
        ok, _, br = self.request_parts(S, I)
        puts, deletes, _ = br["failure"]
        conds = []
        for k in range(self.K):
            failure_writes_k = z3.Or(puts[k][0], deletes[k])
            conds.append(z3.Implies(z3.Not(failure_writes_k), self._key_unchanged(S, S2, k)))
        read_only = z3.Not(z3.Or([z3.Or(puts[k][0], deletes[k]) for k in range(self.K)]))
        conds.append(z3.Implies(read_only, self.same(S, S2)))
        return z3.Implies(z3.Not(ok), z3.And(conds))

    def txn_is_one_revision(self, S, S2):
        appended = []
        conds = [S2["compact",] == S["compact",]]
        for k in range(self.K):
            for r in self.slots:
                new = z3.And(S2["present", k, r], z3.Not(S["present", k, r]))
                appended.append(new)
                conds.append(z3.Implies(new, S2["rev",] == r))
                old = r <= S["rev",]
                conds.append(z3.Implies(old, z3.And(
                    [S[name, k, r] == S2[name, k, r]
                     for name in ("present", "create", "version", "value")])))
        wrote = z3.Or(appended)
        conds.append(S2["rev",] == z3.If(wrote, S["rev",] + 1, S["rev",]))
        return z3.And(conds)


# ---------------------------------------------------------------------------
# The Mvcc machine, action for action
# ---------------------------------------------------------------------------


class MvccEncoding(_Store):
    """:class:`~model.store.mvcc.Mvcc` as a transition relation. Of the
    machine's mutants it models ``txn_ignores_compare`` only."""

    name = "mvcc"
    MUTANTS = ("txn_ignores_compare",)

    def __init__(self, keys: int = 2, values: int = 2, max_revision: int = 5,
                 mutant: str | None = None):
        machine = Mvcc(keys, values, max_revision, mutant)  # UnknownMutant first
        if mutant is not None and mutant not in self.MUTANTS:
            raise ValueError(f"the symbolic mvcc encoding does not model mutant {mutant!r} "
                             f"(it models: {', '.join(self.MUTANTS)})")
        super().__init__(machine, keys, values, max_revision)
        self.mutant = mutant
        self.properties = {
            "failed_txn_writes_nothing": SymProperty(FAILED_TXN_WRITES_NOTHING,
                                                     self.failed_txn_writes_nothing),
        }
        self.lemmas = {}

    def build_actions(self):
        acts = []
        K, R = self.K, self.R
        for k, name in enumerate(self.keys):
            for v in self.value_names:
                acts.append(self._write_action("Put", (name, v), {k: self.rank[v]}, {}))
        for k, name in enumerate(self.keys):
            acts.append(self._write_action("Delete", (name,), {}, {k: True}))
        for k, name in enumerate(self.keys):
            for r in range(R + 1):
                has_r = (lambda S, k=k, r=r: z3.BoolVal(True)) if r == 0 else \
                    (lambda S, k=k, r=r: S["present", k, r] if r in self.slots
                     else z3.BoolVal(False))
                cmp = (lambda S, k=k, r=r: self.compare_holds(
                    S, k, TARGETS.index(MOD), OPERATORS.index(EQUAL), r))
                for v in self.value_names:
                    acts.append(self._txn_action(("cas", name, r, v), has_r, cmp,
                                                 {k: self.rank[v]}, {}))
                acts.append(self._txn_action(("cad", name, r), has_r, cmp, {}, {k: True}))
        for v in self.value_names:
            cmp = (lambda S, v=v: self.compare_holds(
                S, 0, TARGETS.index(VALUE), OPERATORS.index(NOT_EQUAL), self.rank[v]))
            acts.append(self._txn_action(("put_all", v), lambda S: z3.BoolVal(True), cmp,
                                         {k: self.rank[v] for k in range(K)}, {}))
        for c in range(1, R + 1):
            acts.append(Action("Compact", (c,), *self._compact(c)))
        return acts

    def _writes(self, S, put_ranks, delete_keys):
        puts = {k: (z3.BoolVal(True), z3.IntVal(v)) for k, v in put_ranks.items()}
        deletes = {k: z3.BoolVal(True) for k in delete_keys}
        return self.write_effect(S, puts, deletes)

    def _write_action(self, name, params, put_ranks, delete_keys):
        def guard(S, _):
            _, wrote = self._writes(S, put_ranks, delete_keys)
            return z3.Implies(wrote, S["rev",] + 1 <= self.R)

        def effect(S, _):
            return self._writes(S, put_ranks, delete_keys)[0]
        return Action(name, params, guard, effect)

    def _txn_action(self, params, enabled, compare, put_ranks, delete_keys):
        """A txn whose failure branch only reads at the current revision."""
        ignore = self.mutant == "txn_ignores_compare"

        def ok(S):
            return z3.BoolVal(True) if ignore else compare(S)

        def guard(S, _):
            _, wrote = self._writes(S, put_ranks, delete_keys)
            return z3.And(enabled(S), z3.Implies(z3.And(ok(S), wrote),
                                                 S["rev",] + 1 <= self.R))

        def effect(S, _):
            return self.gated(S, ok(S), self._writes(S, put_ranks, delete_keys)[0])
        return Action("Txn", params, guard, effect)

    def _compact(self, c):
        def guard(S, _):
            return c <= S["rev",]

        def effect(S, _):
            go = c > S["compact",]
            out = {("compact",): z3.If(go, c, S["compact",])}
            for k in range(self.K):
                for r in self.slots:
                    p = S["present", k, r]
                    later = [S["present", k, s] for s in self.slots if r < s <= c]
                    last_at_or_below = z3.And(r <= c, z3.Not(z3.Or(later)) if later
                                              else z3.BoolVal(True))
                    old_tombstone = z3.And(S["version", k, r] == 0, r < c)
                    keep = z3.And(p, z3.Or(r > c, z3.And(last_at_or_below,
                                                         z3.Not(old_tombstone))))
                    drop = z3.And(go, p, z3.Not(keep))
                    out["present", k, r] = z3.And(p, z3.Not(drop))
                    for name in ("create", "version", "value"):
                        out[name, k, r] = z3.If(drop, 0, S[name, k, r])
            return out
        return guard, effect

    # -- the property ------------------------------------------------------------
    def failed_txn_writes_nothing(self, S, S2):
        """Every Txn of the machine has a read-only failure branch at the
        current revision, so "only the failure branch runs" is "nothing
        changes"."""
        conds = []
        for k, a in enumerate(self.actions()):
            if a.name != "Txn":
                continue
            compare = self._compare_of(a)
            conds.append(z3.Implies(z3.And(S2.action == k, z3.Not(compare(S))),
                                    self.same(S, S2)))
        return z3.And(conds)

    def _compare_of(self, action):
        kind = action.params[0]
        if kind in ("cas", "cad"):
            k, r = self.keys.index(action.params[1]), action.params[2]
            return lambda S: self.compare_holds(S, k, TARGETS.index(MOD),
                                                OPERATORS.index(EQUAL), r)
        v = action.params[1]
        return lambda S: self.compare_holds(S, 0, TARGETS.index(VALUE),
                                            OPERATORS.index(NOT_EQUAL), self.rank[v])


#: The bounds of the proofs.
PROOF_BOUNDS = ({"keys": 2, "values": 2, "max_revision": 5},
                {"keys": 3, "values": 2, "max_revision": 5})


def _obligations():
    out = []
    for b in PROOF_BOUNDS:
        shape = f"{b['keys']} keys, {b['values']} values, revisions up to {b['max_revision']}"
        tag = f"{b['keys']}k"
        out.append(Obligation(
            name=f"failed_txn_writes_nothing_{tag}", model="mvcc",
            prop="failed_txn_writes_nothing",
            proves=(f"from every well-formed store ({shape}), every txn of up to two compares "
                    "(MOD/VERSION/CREATE/VALUE) and two ops per branch whose compares fail "
                    "changes no key its failure branch does not write, and nothing at all "
                    "if that branch is read-only"),
            encoding=lambda mutant=None, b=b: _txn_encoding(b, mutant),
            method="step",
            mutant_depth=4,
            mutant_encoding=lambda mutant=None, b=b: MvccEncoding(
                b["keys"], b["values"], b["max_revision"], mutant)))
        out.append(Obligation(
            name=f"txn_is_one_revision_{tag}", model="mvcc", prop="txn_is_one_revision",
            proves=(f"from every well-formed store ({shape}), every such txn advances the "
                    "revision by exactly one if it writes and not at all otherwise, writes "
                    "all its records at that revision, and changes no older record"),
            encoding=lambda mutant=None, b=b: _txn_encoding(b, mutant),
            method="step"))
    return tuple(out)


def _txn_encoding(bounds, mutant):
    if mutant is not None:
        raise ValueError("the general txn encoding is the functional core, which has no "
                         "mutants; mutants run on the Mvcc machine encoding")
    return TxnEncoding(**bounds)


OBLIGATIONS = _obligations()

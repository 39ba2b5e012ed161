"""The apiserver's update rule as a transition relation: bounded model
checking of "no acknowledged update is lost" over every interleaving of the
clients of ``model.apiserver.conflict``, and its k-induction proof.

The symbolic state mirrors :class:`~model.apiserver.conflict.Conflict`
variable for variable. Only one key is ever written and never deleted, so
the MVCC store is determined by its revision and the value written at each
revision: the record at revision ``r`` is ``(r, 2, r - 1, value_r)`` (mod,
create, version, value), created at revision 2 with value "0". Hence the
variables

* ``rev`` in [2, R] and ``value[r]`` for 3 <= r <= R (0 above ``rev``);
* per client ``reading[c]``, ``seen_rev[c]``, ``seen_value[c]`` (0 when idle);
* the ghost log: ``acks`` in [0, R - 2] and, per slot i, ``ack_client[i]``,
  ``ack_base[i]``, ``ack_written[i]`` (0 beyond ``acks``).

The object's mod_revision is the store revision (nothing else is written),
so the update's compare ``mod_revision = seen`` is ``rev = seen_rev[c]``;
the mutant ``blind_update`` drops it. The differential tests
(``tests/test_symbolic_apiserver.py``) hold this reading of the store to the
executable machine, which runs the real ``apply_request``.

Two checks use the encoding: the BMC of every interleaving of two clients
up to ``BMC_DEPTH`` steps (``no_lost_update_bmc``, built in the catalog, as
BMC is not an Obligation method), and an :class:`Obligation` that
proves the property for every reachable state by 1-induction, strengthened
by three lemmas — the revision counts the acknowledged writes, the i-th
acknowledged write created revision 3 + i, and a reading client's version
is between the creation and the current revision. The mutant's BMC finds
the two-client lost update (read, read, update, update) and the engine
replays it on the machine.
"""

from __future__ import annotations

import z3

from kubemc.model.apiserver.conflict import CREATED_REVISION, CREATED_STORE, KEY, Conflict
from kubemc.properties.apiserver_access import ACKNOWLEDGED_UPDATES_NOT_LOST
from kubemc.properties.symbolic import Action, Encoding, Obligation, SymProperty, Var

C0 = CREATED_REVISION  # the object's creation revision (2)


class ConflictEncoding(Encoding):
    name = "conflict"

    def __init__(self, clients: int = 2, max_revision: int = 6, mutant: str | None = None):
        super().__init__(Conflict(clients, max_revision, mutant))
        self.N, self.R = clients, max_revision
        self.mutant = mutant
        self.slots = max_revision - C0          # at most this many acknowledged writes
        self.revs = range(C0 + 1, max_revision + 1)
        self.properties = {"acknowledged_updates_not_lost": SymProperty(
            ACKNOWLEDGED_UPDATES_NOT_LOST, self.not_lost)}
        self.lemmas = {
            "revision_counts_acks": lambda S: S["rev",] == C0 + S["acks",],
            "ack_i_wrote_revision_3_plus_i": lambda S: z3.And(
                [z3.Implies(i < S["acks",], S["ack_written", i] == C0 + 1 + i)
                 for i in range(self.slots)]),
            "seen_revision_is_past": lambda S: z3.And(
                [z3.Implies(S["reading", c], z3.And(S["seen_rev", c] >= C0,
                                                    S["seen_rev", c] <= S["rev",]))
                 for c in range(self.N)]),
        }

    # -- variables and the state bijection --------------------------------------
    def variables(self):
        R, N = self.R, self.N
        out = [Var(("rev",), C0, R)] + [Var(("value", r), 0, R) for r in self.revs]
        for c in range(N):
            out += [Var(("reading", c)), Var(("seen_rev", c), 0, R),
                    Var(("seen_value", c), 0, R)]
        out.append(Var(("acks",), 0, self.slots))
        for i in range(self.slots):
            out += [Var(("ack_client", i), 0, N - 1), Var(("ack_base", i), 0, R),
                    Var(("ack_written", i), 0, R)]
        return out

    def domain(self, S):
        """Ranges, plus the canonical zeros of unused slots (the bijection)."""
        conds = [super().domain(S)]
        conds += [z3.Implies(r > S["rev",], S["value", r] == 0) for r in self.revs]
        for c in range(self.N):
            conds.append(z3.Implies(z3.Not(S["reading", c]),
                                    z3.And(S["seen_rev", c] == 0, S["seen_value", c] == 0)))
        for i in range(self.slots):
            conds.append(z3.Implies(i >= S["acks",], z3.And(
                S["ack_client", i] == 0, S["ack_base", i] == 0, S["ack_written", i] == 0)))
        return z3.And(conds)

    def values(self, state):
        store, clients, acks = state
        (_, history), = store[2]
        out = {("rev",): store[0]}
        written = {rec[0]: int(rec[3]) for rec in history}
        for r in self.revs:
            out["value", r] = written.get(r, 0)
        for c, (reading, seen_rev, seen_value) in enumerate(clients):
            out["reading", c] = bool(reading)
            out["seen_rev", c], out["seen_value", c] = seen_rev, seen_value
        out["acks",] = len(acks)
        for i in range(self.slots):
            client, base, wrote = acks[i] if i < len(acks) else (0, 0, 0)
            out["ack_client", i], out["ack_base", i], out["ack_written", i] = client, base, wrote
        return out

    def state_of(self, v):
        rev = v["rev",]
        history = CREATED_STORE[2][0][1] + tuple(
            (r, C0, r - C0 + 1, str(v["value", r])) for r in self.revs if r <= rev)
        store = (rev, 0, ((KEY, history),))
        clients = tuple((int(v["reading", c]), v["seen_rev", c], v["seen_value", c])
                        for c in range(self.N))
        acks = tuple((v["ack_client", i], v["ack_base", i], v["ack_written", i])
                     for i in range(v["acks",]))
        return (store, clients, acks)

    def init(self, S):
        return self.equals(S, next(iter(self.machine.init_states())))

    # -- actions -----------------------------------------------------------------
    def current_value(self, S):
        value = z3.IntVal(0)  # the creation's "0" at revision 2
        for r in self.revs:
            value = z3.If(S["rev",] == r, S["value", r], value)
        return value

    def build_actions(self):
        acts = []
        for c in range(self.N):
            acts.append(Action("Read", (c,), *self._read(c)))
            acts.append(Action("Update", (c,), *self._update(c)))
        return acts

    def _read(self, c):
        def guard(S, _):
            return z3.Not(S["reading", c])

        def effect(S, _):
            return {("reading", c): z3.BoolVal(True), ("seen_rev", c): S["rev",],
                    ("seen_value", c): self.current_value(S)}
        return guard, effect

    def written(self, S, c):
        """Whether client c's update is written: the compare on mod_revision
        holds (always, for the blind mutant)."""
        if self.mutant == "blind_update":
            return z3.BoolVal(True)
        return S["rev",] == S["seen_rev", c]

    def _update(self, c):
        def guard(S, _):
            return z3.And(S["reading", c],
                          z3.Implies(self.written(S, c), S["rev",] + 1 <= self.R))

        def effect(S, _):
            ok, rev, n = self.written(S, c), S["rev",], S["acks",]
            out = {("reading", c): z3.BoolVal(False), ("seen_rev", c): z3.IntVal(0),
                   ("seen_value", c): z3.IntVal(0),
                   ("rev",): z3.If(ok, rev + 1, rev), ("acks",): z3.If(ok, n + 1, n)}
            for r in self.revs:
                out["value", r] = z3.If(z3.And(ok, rev + 1 == r), S["seen_value", c] + 1,
                                        S["value", r])
            for i in range(self.slots):
                here = z3.And(ok, n == i)
                out["ack_client", i] = z3.If(here, c, S["ack_client", i])
                out["ack_base", i] = z3.If(here, S["seen_rev", c], S["ack_base", i])
                out["ack_written", i] = z3.If(here, rev + 1, S["ack_written", i])
            return out
        return guard, effect

    # -- the property --------------------------------------------------------------
    def not_lost(self, S):
        conds = []
        for i in range(self.slots):
            expected = z3.IntVal(C0) if i == 0 else S["ack_written", i - 1]
            conds.append(z3.Implies(i < S["acks",], S["ack_base", i] == expected))
        return z3.And(conds)


#: The bounds of the z3 checks: BMC of every behaviour of two clients (the
#: issue's interleavings) up to 20 steps — five rounds of read, read,
#: update, update, so every write race and conflict of up to four
#: acknowledged writes — and the k-induction proof for three clients, where
#: depth no longer matters.
BMC_BOUNDS = {"clients": 2, "max_revision": 6}
BMC_DEPTH = 20
PROOF_BOUNDS = {"clients": 3, "max_revision": 7}


def encoding(mutant=None, bounds=None):
    return ConflictEncoding(**(bounds or PROOF_BOUNDS), mutant=mutant)


OBLIGATIONS = (
    Obligation(
        name="no_lost_update_induction", model="conflict",
        prop="acknowledged_updates_not_lost",
        proves=("for 3 clients and up to 5 acknowledged writes, every reachable state of the "
                "optimistic update rule (read, then compare-mod_revision-and-put) has no lost "
                "update: the property with three lemmas is 1-inductive"),
        encoding=lambda mutant=None: encoding(mutant),
        method="induction", k=1, mutant_depth=6,
        mutant_encoding=lambda mutant=None: encoding(mutant, BMC_BOUNDS)),
)

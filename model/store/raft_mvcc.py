"""Raft composed with MVCC: the replicated log carries etcd requests, and each
member applies the committed ones to its own MVCC store.

Why compose them: the store's two models each check one half of a promise —
raft that the members agree on a committed log, MVCC that one store answers
as etcd does. What a client relies on is the pair: every member's key-value
store is the same function of the same requests in the same order, so a
read at revision r says the same on every member. That holds only if each
member applies committed entries, in log order, and nothing else; this
model checks that seam.

Parts (``model.kernel.Composition``):

* ``raft`` — ``model.store.raft.Raft`` unchanged. Its command ``v`` (the
  second parameter of ``ClientRequest``) is the MVCC request
  ``COMMANDS[v]``: the log carries MVCC requests by their index, as
  raft.py's docstring says it does.
* ``kv`` — the members' state machines (:class:`StateMachines`): per member,
  ``(applied, store)`` — the index of the last entry it applied (Raft's
  ``lastApplied``) and its MVCC store (``model.store.mvcc``'s functional
  core, the oracle itself). The seeded bugs of applying live here, so a
  mutant named to the composition reaches this part.

One link, ``raft->kv.Apply(i)``: member ``i``'s state machine applies the
next entry its server knows to be committed (Raft paper, Figure 2, "Rules
for Servers — All Servers: If commitIndex > lastApplied: increment
lastApplied, apply log[lastApplied] to state machine"). It is a link, not a
channel: a server's state machine reads its own log in its own process; no
network lies between them, so no loss or reordering can happen there.

A restart (raft's ``Restart`` fault, off by default) keeps the member's
store and ``applied``: etcd's backend is durable and persists the index of
the last applied entry with it (its "consistent index").

Bounds: raft's (``servers``, ``max_term``, ``max_log``, ``max_messages``,
``faults``), ``commands`` (how many of ``COMMANDS`` clients may send) and
``symmetry`` (servers are interchangeable: a state and its server
permutations are one).
"""

from __future__ import annotations

from kubemc.model.kernel import Composition, Link, Machine, Mutant, Step
from kubemc.model.store import mvcc
from kubemc.model.store.raft import (
    COMMIT,
    LOG,
    MATCH,
    NEXT,
    NOBODY,
    RESPONDED,
    VOTED,
    Raft,
    bag_size,
    invert,
    sorting_renamings,
)

#: The MVCC requests a raft log entry can carry, by command index: two
#: different values for one key (so two orders or two histories differ in
#: what a read returns), a delete, and the apiserver's create-if-absent txn.
COMMANDS = (Step("Put", ("a", "x")), Step("Put", ("a", "y")), Step("Delete", ("a",)),
            Step("Txn", ("cas", "a", 0, "x")))

_REQUESTS = mvcc.Mvcc(keys=1, values=2)


def request(command: int):
    """The MVCC request that raft command ``command`` carries."""
    return _REQUESTS.request(COMMANDS[command])


def apply_entries(entries, store=mvcc.INITIAL):
    """The store after applying the requests of ``entries`` ((term, command)
    pairs) in order, from ``store``."""
    for _, command in entries:
        store, _ = mvcc.apply_request(store, request(command))
    return store


APPLY_UNCOMMITTED = "apply_uncommitted"
APPLY_OUT_OF_ORDER = "apply_out_of_order"
APPLY_STALLS = "apply_stalls"


class StateMachines(Machine):
    """The members' MVCC state machines. The part takes no step of its own
    (it declares no action): it applies entries when its link fires, with
    :meth:`apply_next`."""

    name = "kv"
    tags = {}
    mutants = {
        APPLY_UNCOMMITTED: Mutant(
            "a member applies the entries of its log as soon as it has them, without "
            "waiting for them to be committed", violates="mvcc_states_agree"),
        APPLY_OUT_OF_ORDER: Mutant(
            "a member with two committed entries to apply applies the later one first "
            "(a batch of committed entries applied in reverse)",
            violates="applied_state_follows_log"),
        APPLY_STALLS: Mutant(
            "a member applies nothing after its first entry: committed entries wait "
            "forever behind it", violates="committed_entries_applied"),
    }

    def __init__(self, servers: int = 3, mutant: str | None = None):
        super().__init__(mutant)
        self.n = servers

    def config(self):
        return {"servers": self.n}

    def init_states(self):
        yield ((0, mvcc.INITIAL),) * self.n

    def steps(self, state):
        return ()

    def apply(self, state, step):
        return None

    def apply_next(self, members: tuple, i: int, log: tuple, commit: int):
        """Member ``i`` applies its next committed entry; None if it has none."""
        applied, store = members[i]
        ready = len(log) if self.mutant == APPLY_UNCOMMITTED else min(commit, len(log))
        if applied >= ready or (self.mutant == APPLY_STALLS and applied >= 1):
            return None
        batch = log[applied:applied + 1]
        if self.mutant == APPLY_OUT_OF_ORDER and ready - applied >= 2:
            batch = (log[applied + 1], log[applied])
        member = (applied + len(batch), apply_entries(batch, store))
        return members[:i] + (member,) + members[i + 1:]

    def view(self, state):
        return {"applied": [a for a, _ in state],
                "store": [mvcc.describe(s) for _, s in state]}


class RaftMvcc(Composition):
    """Raft's members each applying the committed log to their own MVCC store
    (see the module docstring)."""

    name = "store-raft-mvcc"
    #: the seeded bugs the catalog checks this model against: the state
    #: machines' safety bugs (raft's own mutants pass through the composition
    #: too, but are checked on the raft model; ``apply_stalls``, a liveness
    #: bug, is checked on :class:`RaftMvccProgress`)
    mutants = {k: v for k, v in StateMachines.mutants.items()
               if k in (APPLY_UNCOMMITTED, APPLY_OUT_OF_ORDER)}

    def __init__(self, servers: int = 3, max_term: int = 2, max_log: int = 1,
                 max_messages: int = 1, commands: int = 2, symmetry: bool = False,
                 faults: tuple = (), mutant: str | None = None):
        if not 1 <= commands <= len(COMMANDS):
            raise ValueError(f"{self.name} bounds: 1 <= commands <= {len(COMMANDS)}")
        self.bounds = {"servers": servers, "max_term": max_term, "max_log": max_log,
                       "max_messages": max_messages, "commands": commands,
                       "symmetry": bool(symmetry), "faults": tuple(faults)}
        raft = Raft(servers, max_term, max_log, max_messages, commands, faults=tuple(faults))
        super().__init__([("raft", raft), ("kv", StateMachines(servers))],
                         [Link("Apply", "raft", "kv", self._apply_params, self._apply)],
                         mutant)
        self.name = type(self).name
        self.symmetry = bool(symmetry)
        self._members = tuple((i,) for i in range(servers))

    def config(self):
        return {**self.bounds, "faults": list(self.bounds["faults"])}

    def _apply_params(self, joint):
        return self._members

    def _apply(self, raft_state, members, params):
        (i,) = params
        server = raft_state[0][i]
        out = self.part("kv").apply_next(members, i, server[LOG], server[COMMIT])
        return None if out is None else (raft_state, out)

    # -- symmetry: servers are interchangeable ---------------------------------
    def canonical(self, state):
        """The least renaming of the servers that sorts them by what names no
        other server (raft's key and the member's store), ties tried in
        every order: one representative per class (see ``Raft.canonical``)."""
        if not self.symmetry:
            return state
        (servers, bag), members = state
        raft = self.part("raft")
        best = None
        keys = [(_local_key(s), m) for s, m in zip(servers, members, strict=True)]
        for perm in sorting_renamings(keys):
            if perm is None:
                return state
            order = invert(perm)
            renamed = (raft.permute(state[0], perm), tuple(members[old] for old in order))
            if best is None or renamed < best:
                best = renamed
        return best


class RaftMvccProgress(RaftMvcc):
    """The same composition, checked for progress: every member eventually
    applies every entry its server knows committed (a liveness property).

    One difference from :class:`RaftMvcc`: the message bound is a budget in
    the steps, not a state constraint. A step that would put more than
    ``max_messages`` messages in flight is disabled (``apply`` returns None,
    ``successors`` leaves it out) instead of leading to a state outside the
    bounds that is kept but not expanded. A liveness check cannot decide a
    property while such states exist (a violation could continue through
    them: docs/liveness.md, "Bounds"), and raft always has another message to
    send, so with the constraint every bound was undecided. Blocking a send
    only removes behaviours, and on every cycle where a member lags its
    commit index, its ``Apply`` is enabled throughout (``applied`` never
    decreases, so no cycle applies anything, and a committed entry never
    leaves a log): the blocked sends cannot make a correct model fail the
    property, and ``apply_stalls`` (the seeded bug the catalog checks this
    model against) is a lag no send can repair.
    """

    name = "store-raft-mvcc-progress"
    mutants = {APPLY_STALLS: StateMachines.mutants[APPLY_STALLS]}

    def _fits(self, state) -> bool:
        return bag_size(state[0][1]) <= self.bounds["max_messages"]

    def within_bounds(self, state):
        return True

    def apply(self, state, step):
        nxt = super().apply(state, step)
        return nxt if nxt is not None and self._fits(nxt) else None

    def successors(self, state):
        for step, nxt in super().successors(state):
            if self._fits(nxt):
                yield step, nxt


def _local_key(s):
    # everything about a server that does not name another server
    return s[:VOTED] + (s[VOTED] == NOBODY,) + s[LOG:RESPONDED] + (bool(s[NEXT]), bool(s[MATCH]))

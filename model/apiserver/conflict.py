"""The apiserver's update rule, on its own: clients that read an object and
write it back through the store's compare-and-swap.

seeds/004: "Simultaneous requests to update a value all travel via the
kube-apiserver, which then passes along the request to etcd in a series. The
first request would update the database. The second request would no longer
have the same version number, in which case the kube-apiserver would reply
with an error 409 to the requester. There is no logic past that response on
the server side, meaning the client needs to expect this and act upon the
denial to update."

The "version number" is the object's resourceVersion, which the apiserver
takes from etcd's ``mod_revision`` (Kubernetes API conventions, "Concurrency
Control and Consistency"), and the check is one etcd transaction: If
``mod_revision(key) = <the version the client read>`` Then put Else range —
exactly the ``cas`` txn of ``model.store.mvcc``. This machine reuses that
module's functional core (``apply_request``) for every store access, so the
rule is checked against the same MVCC semantics the store component is.

Each client updates a counter: it reads the object, then asks for the value
it read plus one, conditional on the version it read. A conflict (409) sends
it back to reading. A ghost log records every acknowledged update as
``(client, base, written)``: the version the client read and the revision its
write created. ``properties.apiserver_access`` states "no acknowledged
update is lost" over that log; the mutant ``blind_update`` writes without
the compare, which is what a client doing a PUT without a resourceVersion
(or a server ignoring it) gets.

State ``(store, clients, acks)``:

* ``store`` — an MVCC store (``model.store.mvcc`` state) holding one key,
  :data:`KEY`, created with value ``"0"`` at revision 2 before any client
  acts;
* ``clients`` — per client ``(reading, seen_revision, seen_value)``; an idle
  client is ``(0, 0, 0)``;
* ``acks`` — the ghost log, in the order the store applied the writes.

Bounds: ``clients`` and ``max_revision`` (a write that would take the store
past it is disabled; reads and conflicts stay enabled).
"""

from __future__ import annotations

from kubemc.model.kernel import ENVIRONMENT, Machine, Mutant, Step, action
from kubemc.model.store.mvcc import (
    EQUAL, INITIAL, MOD, Compare, Put, PutResponse, Range, RangeResponse, Txn, TxnResponse,
    apply_request, kv_at,
)

#: The object the clients contend on, under the apiserver's etcd key layout.
KEY = "/registry/configmaps/default/counter"
#: The store before any client acts: the object exists, value "0", revision 2.
CREATED_STORE, _ = apply_request(INITIAL, Put(KEY, "0"))
CREATED_REVISION = CREATED_STORE[0]
IDLE = (0, 0, 0)


def update_request(seen_revision: int, seen_value: int) -> Txn:
    """The apiserver's guarded update: write iff nobody wrote since the read."""
    return Txn((Compare(KEY, MOD, EQUAL, seen_revision),),
               (Put(KEY, str(seen_value + 1)),), (Range(KEY),))


BLIND_UPDATE = "blind_update"


class Conflict(Machine):
    """Clients contending on one object through optimistic concurrency. The
    actions are declared on their handlers; ``steps`` interleaves them per
    client."""

    name = "conflict"
    mutants = {
        BLIND_UPDATE: Mutant(
            "an update is written without comparing the version the client read with "
            "the object's current mod_revision", violates="acknowledged_updates_not_lost"),
    }

    def __init__(self, clients: int = 2, max_revision: int = 6, mutant: str | None = None):
        super().__init__(mutant)
        if clients < 1 or max_revision < CREATED_REVISION:
            raise ValueError(f"conflict bounds: clients >= 1, "
                             f"max_revision >= {CREATED_REVISION}")
        self.clients = clients
        self.max_revision = max_revision

    def config(self):
        return {"clients": self.clients, "max_revision": self.max_revision}

    def init_states(self):
        yield (CREATED_STORE, (IDLE,) * self.clients, ())

    def steps(self, state):
        for c in range(self.clients):
            yield Step("Read", (c,))
            yield Step("Update", (c,))

    def _client(self, state, c):
        """Client ``c``'s entry; None for a client the bounds do not have."""
        if not (isinstance(c, int) and 0 <= c < self.clients):
            return None
        return state[1][c]

    @action("Read", tag=ENVIRONMENT)
    def read(self, state, c):
        store, clients, acks = state
        client = self._client(state, c)
        if client is None or client[0]:
            return None
        _, resp = apply_request(store, Range(KEY))
        assert isinstance(resp, RangeResponse) and resp.kvs  # the object is never deleted
        kv = resp.kvs[0]
        return (store, _with(clients, c, (1, kv.mod_revision, int(kv.value))), acks)

    @action("Update", tag=ENVIRONMENT)
    def update(self, state, c):
        store, clients, acks = state
        client = self._client(state, c)
        if client is None or not client[0]:
            return None
        _, seen_revision, seen_value = client
        if self.mutant == BLIND_UPDATE:
            request = Put(KEY, str(seen_value + 1))
        else:
            request = update_request(seen_revision, seen_value)
        new_store, resp = apply_request(store, request)
        written = isinstance(resp, PutResponse) or (isinstance(resp, TxnResponse)
                                                     and resp.succeeded)
        if not written:  # 409 Conflict: the client must read again
            return (store, _with(clients, c, IDLE), acks)
        if new_store[0] > self.max_revision:
            return None
        return (new_store, _with(clients, c, IDLE), acks + ((c, seen_revision, new_store[0]),))

    def view(self, state):
        store, clients, acks = state
        kv = kv_at(store, KEY)
        return {
            "revision": store[0],
            "object": {"mod_revision": kv.mod_revision, "value": kv.value},
            "clients": [{"reading": bool(r), "seen_revision": sr, "seen_value": sv}
                        for r, sr, sv in clients],
            "acknowledged": [{"client": c, "base": b, "written": w} for c, b, w in acks],
        }


def _with(clients: tuple, c: int, value: tuple) -> tuple:
    return clients[:c] + (value,) + clients[c + 1:]


__all__ = ["CREATED_REVISION", "CREATED_STORE", "Conflict", "KEY", "update_request"]

"""The apiserver of the cluster model: the one door to the store.

Every other component reaches the cluster's state through a link with this
part, and only this part has a link with the store (seeds/000: "the api
server is the ony master plane component to talk to the etcd data store,
both to read from and to save kubernetes cluster state information") — the
composition makes that checkable (``properties.cluster``).

State: ``(view, pending)``. ``view`` is the apiserver's watch cache of the
store's map; ``pending`` is ``()`` or the one request being served,
``(client, writes)``. A client's link reads ``view`` and, when its
decision writes, leaves the writes in ``pending``; the ``Commit`` link
applies them to the store as one transaction and refreshes the cache from
the store in the same step. The apiserver serves one request at a time: a
client's link is enabled only while nothing is pending.

Why this abstraction is sound for the properties checked here:

* **reads are atomic and fresh** — ``view`` equals the store whenever no
  request is pending (the ``Commit`` link keeps them equal; a test checks
  it on every reachable state), so a controller "reading the server
  through an atomic list" sees a linearizable snapshot. Real controllers
  read a lagging informer cache and write with resourceVersion
  preconditions; the ``informer`` component checks the cache (delta FIFO,
  relists, resync) and the ``controllers`` component checks each controller
  against a lagging cache, 409 Conflicts, crashes and failed writes. The
  end-to-end properties here are about where pods run and where packets go
  once the control loops have done their work, which a lagging read only
  delays: every controller modelled here is level-triggered (it acts on
  the state it reads, not on the events it saw), so a late read leads to
  the same writes later;
* **a request is one transaction** — the apiserver answers a request whole
  or refuses it (404, 409 on a second binding), as ``store.commit`` does.

What the apiserver also does here: it hosts the Lease clock. A node whose
kubelet has stopped renewing its Lease is noticed by the ``LeaseExpires``
link with that kubelet (seeds/004: "If the kube-apiserver cannot
communicate with the kubelet on a node for 5 minutes ... the NodeStatus will
change from ready"), which writes the Lease expired. It fires only for a
kubelet that is dead — the failure detector is accurate, the assumption the
``controllers`` component's node lifecycle model makes too (a live kubelet
renews well within the grace period; that model checks the grace period,
the probe timestamps and the taint timing) — and it is a system step
(weakly fair: time passes).
"""

from __future__ import annotations

from collections.abc import Callable

from kubemc.model.cluster import spec, store
from kubemc.model.kernel import SYSTEM, Link, Machine
from kubemc.model.scheduler.objects import Taint

VIEW, PENDING = range(2)
IDLE = ()


class APIServer(Machine):
    name = "apiserver"
    tags = {}

    def __init__(self, nodes: int):
        super().__init__(None)
        self.nodes = nodes

    def init_states(self):
        yield (store.initial(self.nodes), IDLE)

    def steps(self, state):
        return ()

    def apply(self, state, step):
        return None

    def view(self, state):
        _, pending = state
        if not pending:
            return {"serving": "-"}
        return {"serving": [pending[0], [[_shown(x) for x in w] for w in pending[1]]]}


def _shown(value):
    """A write's argument as people read it: taints as ``key:effect``, an
    EndpointSlice as its endpoints' names and conditions."""
    if isinstance(value, tuple) and value and isinstance(value[0], Taint):
        return [f"{t.key}:{t.effect}" for t in value]
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):
        return [[spec.pod_name(e[0]), "ready" if e[3] else "not ready",
                 "serving" if e[4] else "not serving",
                 "terminating" if e[5] else "not terminating"] for e in value]
    return value


#: ``decide(caller_state, view, params) -> (caller_state, writes) | None``
Decide = Callable[[object, tuple, tuple], object]


def request(name: str, caller: str, decide: Decide, params, tag: str = SYSTEM) -> Link:
    """A client's link: it reads the apiserver's view and either changes only
    its own state (a read: a watch, a list) or leaves writes to commit. A
    link that would change nothing is not enabled."""

    def fire(mine, api, p):
        if api[PENDING]:
            return None
        out = decide(mine, api[VIEW], p)
        if out is None:
            return None
        new, writes = out
        if writes:
            return new, (api[VIEW], (caller, tuple(writes)))
        if new == mine:
            return None
        return new, api

    return Link(name, caller, "apiserver", params, fire, tag)


def _commit(api, objects, params):
    if not api[PENDING] or params:
        return None
    changed = store.commit(objects, api[PENDING][1])
    if changed is None:  # refused whole: the client gets its 404 / 409
        return (api[VIEW], IDLE), objects
    return (changed, IDLE), changed


#: the apiserver applies the request it serves to the store, as one transaction
COMMIT = Link("Commit", "apiserver", "store", lambda joint: ((),), _commit)


def lease_expiry(node: int, kubelet: str, alive: Callable[[object], bool]) -> Link:
    """The Lease of ``node`` expires once its kubelet is dead (module text)."""

    def fire(api, kubelet_state, p):
        if api[PENDING] or p or alive(kubelet_state) or not api[VIEW][store.LEASES][node]:
            return None
        return (api[VIEW], ("lease-clock", ((store.LEASE, node, False),))), kubelet_state

    return Link("LeaseExpires", "apiserver", kubelet, lambda joint: ((),), fire)

"""A small cloud API, and the watch loop of a cloud-controller-manager
controller that calls it.

The seeds (cloud-controller-manager): its controllers "manage load balancing
and routing" — they call the cloud provider's API (routes, load balancers,
instances) to make the cloud match the cluster. The cloud here is a map of
resources, ``("route", node)`` or ``("lb", service)`` to a value, with two
behaviours real cloud APIs have and controllers must survive:

* **lag**: a call that changes something is *accepted*, not done — it
  becomes a pending operation (a GCE operation, an ELB being provisioned)
  that the cloud completes later (``CloudCompletes``, a system step: the
  cloud eventually finishes what it accepted). Until then a read does not
  show it. One operation per resource is pending at most: a later call on
  the same resource supersedes the earlier one (last writer wins, as with
  the providers' idempotent ``Ensure...`` calls);
* **failure**: a call can fail (``WriteFails``, the loop's fault for any
  request in flight, with its budget) — the controller's ``on_error``
  decides whether to retry.

How a controller calls it: ``reconcile`` returns, among its apiserver
writes, cloud calls ``call(resource, value)`` (``value`` None deletes). A
call whose effect is already visible, with nothing pending on the resource,
succeeds at once and the next request of the reconcile is sent; any other
call is accepted as a pending operation and the reconcile stops there — it
waits, as the real controllers block on the operation, and the cloud's
completion enqueues the controller's key again (``cloud_key``). Reads are
``reconcile``'s ``cloud`` argument: the visible resources only.

Where the cloud's state lives, and why: in an eighth slot of the state,
after the loop's seven. Not in the apiserver (the cloud is not an API
object: it must not reach the informer cache, and a controller must not
read it through a watch), and not in the controller's ``memory`` slot
(memory is lost on ``Crash``, the cloud is not). :class:`CloudLoop` owns the
slot; the loop's steps change only the first seven and carry the rest, so
its other users see no difference.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from kubemc.model.controllers.loop import (
    CACHE, INFLIGHT, MEMORY, QUEUE, ControllerLoop, Objects, _renumber,
)
from kubemc.model.kernel import ENVIRONMENT, SYSTEM, Step, action

CLOUD = 7
#: the kind of the Nodes a :class:`NodeChurnLoop`'s world adds and removes
NODE = "nodes"
#: the first element of a cloud call in a reconcile's list of requests
CALL = "cloud"


def call(resource: tuple, value) -> tuple:
    """Ask the cloud to make ``resource`` have ``value`` (None: delete it)."""
    return (CALL, resource, value)


def describe_call(request: tuple) -> str:
    """A cloud call as people read it in a trace."""
    _, (kind, name), value = request
    return f"cloud: delete {kind}/{name}" if value is None \
        else f"cloud: ensure {kind}/{name} = {value}"


def visible(cloud) -> dict:
    """What a read of the cloud returns: resource -> value."""
    return dict(cloud[0])


def pending(cloud) -> dict:
    """Accepted operations not yet done: resource -> value it will have."""
    return dict(cloud[1])


def _set(items: tuple, resource, value, present: bool) -> tuple:
    rest = tuple(i for i in items if i[0] != resource)
    return tuple(sorted(rest + ((resource, value),))) if present else rest


class CloudLoop(ControllerLoop):
    """A :class:`ControllerLoop` with a cloud (see the module text).

    A controller defines ``reconcile_cloud(cache, cloud, key, memory)``
    instead of ``reconcile``, ``cloud_key(resource)`` (the key a completed
    operation enqueues), and optionally ``initial_cloud`` and
    ``always_queued`` (keys enqueued at start and on every relist: the
    periodic full sync of controllers that are not keyed by one object).
    """

    always_queued: ClassVar[tuple] = ()

    # -- hooks -----------------------------------------------------------------
    def initial_cloud(self) -> tuple:
        """(visible resources, pending operations), each a sorted tuple of
        (resource, value) pairs."""
        return ((), ())

    def reconcile_cloud(self, cache: Objects, cloud: dict, key, memory) -> tuple[tuple, Any]:
        raise NotImplementedError

    def cloud_key(self, resource: tuple):
        raise NotImplementedError

    def reconcile(self, cache, key, memory):  # pragma: no cover - CloudLoop calls reconcile_cloud
        raise TypeError("a CloudLoop reconciles with reconcile_cloud")

    @staticmethod
    def cloud(state) -> tuple:
        """The cloud's state: what properties judge, with ``objects``."""
        return state[CLOUD]

    # -- the machine -------------------------------------------------------------
    def init_states(self):
        for core in super().init_states():
            yield self._enqueue(core, self.always_queued) + (self.initial_cloud(),)

    def _relist(self, state):
        return self._enqueue(super()._relist(state), self.always_queued)

    def steps(self, state) -> Iterator[Step]:
        yield from super().steps(state[:CLOUD])
        for resource, _ in state[CLOUD][1]:
            yield Step("CloudCompletes", resource)

    @action("CloudCompletes", tag=SYSTEM)
    def _CloudCompletes(self, state, kind, name):
        return self._complete(state[:CLOUD], state[CLOUD], (kind, name))

    @staticmethod
    def renumbered(state):
        # the cloud holds no resourceVersion
        return _renumber(state[:CLOUD]) + (state[CLOUD],)

    def _reconcile(self, state, key):
        # the cloud-aware reconcile: the controller also reads the cloud
        return self._reconcile_cloud(state[:CLOUD], state[CLOUD], key)

    def _write(self, state):
        if state[INFLIGHT][1][0][0] == CALL:
            return self._call(state[:CLOUD], state[CLOUD])
        return super()._write(state)

    def _complete(self, core, cloud, resource):
        ops = pending(cloud)
        if resource not in ops:
            return None
        value = ops[resource]
        shown = _set(cloud[0], resource, value, value is not None)
        cloud = (shown, _set(cloud[1], resource, None, False))
        if core[CACHE] is not None:  # the controller waiting on it is woken
            core = self._enqueue(core, (self.cloud_key(resource),))
        return core + (cloud,)

    def _reconcile_cloud(self, core, cloud, key):
        queue = tuple(k for k in core[QUEUE] if k != key)
        writes, memory = self.reconcile_cloud(Objects(core[CACHE]), visible(cloud), key,
                                              core[MEMORY])
        inflight = (key, tuple(writes)) if writes else ()
        return core[:QUEUE] + (queue, inflight, memory) + core[MEMORY + 1:] + (cloud,)

    def _call(self, core, cloud):
        key, writes = core[INFLIGHT]
        (_, resource, value), rest = writes[0], writes[1:]
        done = visible(cloud).get(resource) == value and resource not in pending(cloud)
        if done:
            inflight = (key, rest) if rest else ()
            return core[:INFLIGHT] + (inflight,) + core[INFLIGHT + 1:] + (cloud,)
        cloud = (cloud[0], _set(cloud[1], resource, value, True))
        return core[:INFLIGHT] + ((),) + core[INFLIGHT + 1:] + (cloud,)

    # -- display -------------------------------------------------------------------
    def view(self, state):
        out = super().view(state[:CLOUD])
        # the loop's ``describe`` knows apiserver writes only: a cloud call
        # would read as "delete ... if rv=..."; say what it asks of the cloud
        inflight = state[INFLIGHT][1] if state[INFLIGHT] else ()
        out["inflight"] = [describe_call(w) if w[0] == CALL else line
                           for w, line in zip(inflight, out["inflight"])]
        show = lambda items: {f"{r[0]}/{r[1]}": v for r, v in items}  # noqa: E731
        out["cloud"] = show(state[CLOUD][0])
        out["cloud_pending"] = show(state[CLOUD][1])
        return out


class NodeChurnLoop(CloudLoop):
    """A :class:`CloudLoop` whose world adds and removes Nodes, which the
    controller follows into the cloud (routes, load-balancer targets):
    ``NodeJoins(n)`` creates Node ``n`` with the value ``joined(n)``, and
    ``NodeLeaves(n)`` deletes it — environment steps over ``nodes``, within
    the budget ``node_changes``."""

    nodes: tuple = ()  # the node names, set by the subclass

    def joined(self, n: str) -> Any:
        """The value of Node ``n`` when it joins."""
        raise NotImplementedError

    def world_steps(self, state) -> Iterator[Step]:
        if not self.budget_left(state, "node_changes"):
            return
        server = self.objects(state)
        for n in self.nodes:
            yield Step("NodeLeaves" if (NODE, n) in server else "NodeJoins", (n,))

    @action("NodeJoins", tag=ENVIRONMENT)
    def _NodeJoins(self, state, n):
        return self._node_change(state, n, joins=True)

    @action("NodeLeaves", tag=ENVIRONMENT)
    def _NodeLeaves(self, state, n):
        return self._node_change(state, n, joins=False)

    def _node_change(self, state, n, *, joins: bool):
        if n not in self.nodes or not self.budget_left(state, "node_changes"):
            return None
        key = (NODE, n)
        present = key in self.objects(state)
        if present == joins:
            return None
        return self.server_write(self.spend(state, "node_changes"), key,
                                 None if present else self.joined(n))

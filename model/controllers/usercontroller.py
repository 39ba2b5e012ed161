"""A user's own reconcile function run as a controller on the watch loop
(``model.controllers.loop``), for ``kubemc check-controller``.

The user writes ``reconcile(desired, children) -> [requests]``
(``model.controllers.requests``); this machine runs it the way a controller
manager would: on what a lagging informer cache holds, from a deduplicating
work queue, sending the requests one at a time to an apiserver that answers
409 and 404, while the controller may crash and restart between any two
requests, a write may fail transiently, the cache may be resynced, a user
edits the desired object through its listed versions, someone else deletes
a child, and — when the user gives a ``world`` function — other components
change children (a kubelet marking a pod Failed). Every interleaving of
those is explored by the engines.

One desired object: it is the ``--resource`` object named in the versions
the user lists, and every ``--owns`` object is its child (in a cluster they
would be told apart by ownerReferences; here there is nothing else to own
them). The desired object is never deleted. An edit replaces the desired
object's content but keeps its ``status``, as ``kubectl apply`` of a spec
does on a resource with a status subresource.

What the user's function is handed is rebuilt from the frozen state on every
call (fresh dicts), and its answer is remembered per input: the function
must be deterministic, and the first time an input is met it is called twice
and the answers compared, so a function that reads a clock or a random
number is refused rather than making the search inconsistent.

An exception raised by the user's function is not ours to hide and not a
crash of kubemc: the Reconcile step that raised leads to a state that
records the exception, from which nothing else happens, and the property
``reconcile_does_not_raise`` (``properties.controllers.usercontroller``)
reports the shortest way there as a trace. Garbage returned instead of
requests is bad input: :class:`BadReconcile`, one line.

State: the loop's, with ``memory`` either ``()`` or ``("raised", text)``;
``spent`` counts edits (which version of the desired object is current),
deleted children and the world's changes after the loop's own budgets.
"""

from __future__ import annotations

import json
import os
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kubemc.model.controllers.frozen import FrozenDict, NotJsonLike, freeze, thaw
from kubemc.model.controllers.loop import (
    CACHE, EVENTS, INFLIGHT, MEMORY, NOT_FOUND, QUEUE, SERVER, SPENT, UPDATE, ControllerLoop,
    Objects, update,
)
from kubemc.model.controllers.requests import REPLACE, BadRequest, to_writes
from kubemc.model.kernel import ENVIRONMENT, FAULT, Step, action

RAISED = "raised"


class BadReconcile(ValueError):
    """The user's function or desired objects are not usable: one line."""


def desired_versions(versions: Any, resource: str) -> tuple[str, tuple]:
    """(name, frozen contents) of the desired object's versions, checked:
    a non-empty list of dicts that all name the same object."""
    if isinstance(versions, Mapping):
        versions = [versions]
    if isinstance(versions, (str, bytes)) or not isinstance(versions, Sequence) or not versions:
        raise BadReconcile("the desired object's versions must be a non-empty list of dicts "
                           f"(the {resource} object, then each edit a user applies to it)")
    named = [_content(obj, resource, f"desired version {i}") for i, obj in enumerate(versions)]
    names = {name for name, _ in named}
    if len(names) != 1 or not isinstance(next(iter(names)), str) or not next(iter(names)):
        raise BadReconcile("every desired version must carry the same metadata.name "
                           f"(found {sorted(map(str, names))})")
    return next(iter(names)), tuple(content for _, content in named)


def initial_children(children: Any, owns: str) -> tuple:
    """((name, frozen content), ...) of the children the cluster starts with
    (left over from an earlier version of the controller, or made by hand)."""
    if isinstance(children, (str, bytes, Mapping)) or not isinstance(children, Sequence):
        raise BadReconcile(f"the initial children must be a list of {owns} dicts")
    named = [_content(obj, owns, f"initial child {i}") for i, obj in enumerate(children)]
    for i, (name, _) in enumerate(named):
        if not isinstance(name, str) or not name:
            raise BadReconcile(f"initial child {i} has no metadata.name")
    if len({name for name, _ in named}) != len(named):
        raise BadReconcile("two initial children have one name")
    return tuple(sorted(named))


def _content(obj: Any, kind: str, where: str) -> tuple:
    """(metadata.name, frozen content without kind, name and resourceVersion)."""
    if not isinstance(obj, Mapping):
        raise BadReconcile(f"{where} is a {type(obj).__name__}, not a dict")
    body = dict(obj)
    got = body.pop("kind", kind)
    if got != kind:
        raise BadReconcile(f"{where} is a {got!r}, not a {kind}")
    meta = body.pop("metadata", None)
    if not isinstance(meta, Mapping):
        raise BadReconcile(f"{where} has no metadata dict naming it")
    meta = dict(meta)
    name = meta.pop("name", None)
    meta.pop("resourceVersion", None)
    if meta:
        body["metadata"] = meta
    try:
        return name, freeze(body, where)
    except NotJsonLike as exc:
        raise BadReconcile(str(exc)) from None


def as_object(kind: str, name: str, rv: int, value: FrozenDict) -> dict:
    """The Kubernetes-shaped dict a user's function is handed."""
    body = thaw(value)
    meta = {"name": name, "resourceVersion": str(rv), **(body.pop("metadata", None) or {})}
    return {"kind": kind, "metadata": meta, **body}


def show(kind: str, name: str, rv: int | None, value) -> str:
    """One object on one line, for traces."""
    head = f"{kind}/{name}" + (f" rv={rv}" if rv is not None else "")
    if value is None:
        return f"{head} deleted"
    return f"{head} {_json(value)}"


class UserController(ControllerLoop):
    """The user's reconcile function on the watch loop; see the module text."""

    name = "check-controller"
    world_budgets = ("edits", "child_deletions", "world_changes")
    mutants: Mapping = {}

    def __init__(self, reconcile: Callable, *, resource: str, owns: str, desired: Any,
                 children: Any = (), label: str = "reconcile", crashes: int = 1,
                 write_failures: int = 1,
                 resyncs: int = 0, edits: int | None = None, child_deletions: int = 1,
                 world: Callable | None = None, world_changes: int = 0,
                 max_objects: int = 6, mutant: str | None = None):
        if resource == owns:
            raise BadReconcile(f"--resource and --owns are both {resource}: a controller "
                               "owns objects of another kind than the one it reconciles")
        name, versions = desired_versions(desired, resource)
        most = len(versions) - 1
        edits = most if edits is None else edits
        if not 0 <= edits <= most:
            raise BadReconcile(f"edits={edits}: the desired object lists {len(versions)} "
                               f"version(s), so at most {most} edit(s)")
        kids = initial_children(children, owns)
        if 1 + len(kids) > max_objects:
            raise BadReconcile(f"max_objects={max_objects} is below the {1 + len(kids)} "
                               "objects the cluster starts with")
        super().__init__(crashes=crashes, write_failures=write_failures, resyncs=resyncs,
                         max_objects=max_objects, mutant=mutant, edits=edits,
                         child_deletions=child_deletions, world_changes=world_changes)
        self.children = kids
        self.world = world
        self._world_answers: dict = {}
        self.user = reconcile
        self.label = label
        self.primary = resource
        self.owns = owns
        self.key = (resource, name)
        self.versions = versions
        self._answers: dict = {}

    # -- the user's function ----------------------------------------------------------
    def decide(self, objects: Objects) -> tuple:
        """``("ok", writes)`` or ``("raised", text)``: what the user's function
        answers when the controller sees ``objects``."""
        if self.key not in objects:
            return ("ok", ())
        children = tuple((k[1], objects.rv(k), v) for k, v in objects.of_kind(self.owns))
        memo = (objects.rv(self.key), objects[self.key], children)
        known = self._answers.get(memo)
        if known is None:
            first, second = self._call(memo), self._call(memo)
            if _comparable(first) != _comparable(second):
                raise BadReconcile(
                    f"{self.label} is not deterministic: handed the same desired object and "
                    f"children twice, it answered {_brief(first)} then {_brief(second)}; "
                    "it must depend on its arguments only (no clock, randomness or global "
                    "state)")
            known = self._answers[memo] = first
        return known

    def _call(self, memo) -> tuple:
        rv, value, children = memo
        desired = as_object(self.primary, self.key[1], rv, value)
        kids = [as_object(self.owns, n, r, v) for n, r, v in children]
        try:
            result = self.user(desired, kids)
            if not isinstance(result, (list, tuple)) and hasattr(result, "__next__"):
                result = list(result)  # a generator of requests
        except (Exception, SystemExit) as exc:  # the user's bug: a finding, with its trace
            return (RAISED, _raised(exc))
        versions = frozenset((rv,) + tuple(r for _, r, _ in children))
        try:
            return ("ok", to_writes(result, resource=self.primary, owns=self.owns,
                                    versions=versions))
        except BadRequest as exc:
            raise BadReconcile(f"{self.label} {exc} (handed {self.primary}/{self.key[1]} "
                               f"and {len(kids)} {self.owns} object(s))") from None

    def changes(self, name: str, rv: int, value) -> tuple:
        """The versions the user's ``world`` function says other components
        may turn child ``name`` into (deterministic, as reconcile must be)."""
        memo = (name, rv, value)
        known = self._world_answers.get(memo)
        if known is None:
            first, second = self._world_call(memo), self._world_call(memo)
            if first != second:
                raise BadReconcile(f"the world function is not deterministic: handed "
                                   f"{self.owns}/{name} twice, it answered differently")
            known = self._world_answers[memo] = first
        return known

    def _world_call(self, memo) -> tuple:
        name, rv, value = memo
        where = f"world({self.owns}/{name})"
        try:
            result = self.world(as_object(self.owns, name, rv, value))
        except Exception as exc:
            raise BadReconcile(f"{where} raised {_raised(exc)}") from None
        if isinstance(result, (str, bytes, Mapping)) or not isinstance(result, (list, tuple)):
            raise BadReconcile(f"{where} returned {type(result).__name__}; expected a list of "
                               f"the {self.owns} versions other components may write")
        out = []
        for i, obj in enumerate(result):
            if isinstance(obj, Mapping) and isinstance(obj.get("metadata"), Mapping) \
                    and "name" not in obj["metadata"]:
                obj = {**obj, "metadata": {**obj["metadata"], "name": name}}
            got, content = _content(obj, self.owns, f"{where} version {i}")
            if got != name:
                raise BadReconcile(f"{where} version {i} names {got!r}: another component "
                                   "changes a child, it does not rename it")
            if content != value and content not in out:
                out.append(content)
        return tuple(out)

    def wants_nothing(self, state) -> bool:
        """The user's function, handed the server's objects, asks for no
        change: nothing, or only updates to what the objects already are
        (which the apiserver answers without a write)."""
        server = Objects(state[SERVER])
        answer = self.decide(server)
        return answer[0] == "ok" and all(_unchanging(w, server) for w in answer[1])

    # -- the loop's hooks ---------------------------------------------------------------
    def initial_objects(self):
        yield [(self.key, self.versions[0])] + [((self.owns, n), c) for n, c in self.children]

    def handle(self, cache, key, old, new):
        return (self.key,) if key[0] in (self.primary, self.owns) else ()

    def reconcile(self, cache, key, memory):
        if key != self.key:
            return (), memory
        answer = self.decide(cache)
        if answer[0] == RAISED:
            return (), answer
        return answer[1], memory

    def _write(self, state):
        key, writes = state[INFLIGHT]
        write = writes[0]
        server = Objects(state[SERVER])
        if write[0] == REPLACE:  # an update without resourceVersion: the current one
            if write[1] not in server:
                return self._refused(state, NOT_FOUND)
            write = update(write[1], server.rv(write[1]), write[2])
            state = state[:INFLIGHT] + ((key, (write,) + writes[1:]),) + state[INFLIGHT + 1:]
        if _unchanging(write, server):
            # An update that changes nothing is answered without a write: no
            # new resourceVersion, no watch event (the apiserver's etcd3
            # store, GuaranteedUpdate, skips the write of an unchanged object).
            inflight = (key, writes[1:]) if writes[1:] else ()
            return state[:INFLIGHT] + (inflight,) + state[INFLIGHT + 1:]
        return super()._write(state)

    # -- the world: a user editing the desired object, a child deleted by someone else ----
    def steps(self, state):
        if state[MEMORY]:
            return  # the reconcile raised: the controller is stopped there
        yield from super().steps(state)

    def apply(self, state, step):
        if state[MEMORY]:
            return None
        return super().apply(state, step)

    def world_steps(self, state):
        done = state[SPENT][self.budget_names.index("edits")]
        if self.budget_left(state, "edits"):
            yield Step("Edit", (done + 1,))
        if self.budget_left(state, "child_deletions"):
            for key, _ in self.objects(state).of_kind(self.owns):
                yield Step("DeleteChild", (key[1],))
        if self.world is not None and self.budget_left(state, "world_changes"):
            server = self.objects(state)
            for key, value in server.of_kind(self.owns):
                for i in range(len(self.changes(key[1], server.rv(key), value))):
                    yield Step("ChildChanged", (key[1], i))

    @action("Edit", tag=ENVIRONMENT)
    def _Edit(self, state, version):
        server = self.objects(state)
        done = state[SPENT][self.budget_names.index("edits")]
        if version != done + 1 or not self.budget_left(state, "edits") \
                or self.key not in server:
            return None
        value = self.versions[done + 1]
        status = server[self.key].get("status")
        if status is not None:
            value = FrozenDict(sorted([(k, v) for k, v in value if k != "status"]
                                      + [("status", status)]))
        return self.server_write(self.spend(state, "edits"), self.key, value)

    @action("DeleteChild", tag=FAULT, rare=True)
    def _DeleteChild(self, state, name):
        key = (self.owns, name)
        if key not in self.objects(state) or not self.budget_left(state, "child_deletions"):
            return None
        return self.server_write(self.spend(state, "child_deletions"), key, None)

    @action("ChildChanged", tag=ENVIRONMENT)
    def _ChildChanged(self, state, name, i):
        if self.world is None or not self.budget_left(state, "world_changes"):
            return None
        server = self.objects(state)
        key = (self.owns, name)
        if key not in server or not isinstance(i, int):
            return None
        versions = self.changes(key[1], server.rv(key), server[key])
        if not 0 <= i < len(versions):
            return None
        return self.server_write(self.spend(state, "world_changes"), key, versions[i])

    def config(self):
        config = super().config()
        if self.world is None:  # no world function: the budget means nothing
            config.pop("world_changes")
        return config

    # -- display ---------------------------------------------------------------------------
    def view(self, state):
        # resourceVersions are left out: they are renumbered after every step
        # (model.controllers.loop), so printed they would seem to change on
        # steps that change nothing. What they decide is shown instead: a
        # cached copy that is no longer the server's is marked stale, and so
        # is a request whose resourceVersion precondition can no longer hold.
        server = Objects(state[SERVER])

        def cached(k, rv, v):
            line = show(k[0], k[1], None, v)
            if k not in server:
                return line + "  (stale: gone from the server)"
            return line + ("  (stale)" if server.rv(k) != rv else "")

        memory = state[MEMORY]
        cache = state[CACHE]
        return {
            "server": [show(k[0], k[1], None, v) for k, _, v in state[SERVER]],
            "cache": [cached(k, rv, v) for k, rv, v in cache] if cache is not None else [],
            "listed": cache is not None,
            "lag": _lag(server, cache),
            "events": [show(k[0], k[1], None, v) for _, k, v in state[EVENTS]],
            "queue": [f"{k[0]}/{k[1]}" for k in state[QUEUE]],
            "requests": _pending(state[INFLIGHT][1] if state[INFLIGHT] else (), server),
            "raised": memory[1] if memory else "",
            "spent": {k: n for k, n in zip(self.budget_names, state[SPENT])
                      if k != "world_changes" or self.world is not None},
        }


def _lag(server: Objects, cache: tuple | None) -> list[str]:
    """How the controller's view differs from the server, said in words."""
    if cache is None:
        return ["the cache was lost in a crash: the controller relists"]
    seen = Objects(cache)
    out = []
    for key in sorted(set(server) | set(seen)):
        name = f"{key[0]}/{key[1]}"
        if key not in seen:
            out.append(f"{name} is on the server, not yet in the cache")
        elif key not in server:
            out.append(f"{name} is deleted, the cache still has it")
        elif server.rv(key) != seen.rv(key):
            out.append(f"{name} changed on the server, the cache has an older version")
    return out


def _unchanging(write: tuple, server: Objects) -> bool:
    """An update the apiserver would answer without a write."""
    if write[0] not in (UPDATE, REPLACE) or write[1] not in server:
        return False
    value = write[3] if write[0] == UPDATE else write[2]
    current = write[0] == REPLACE or server.rv(write[1]) == write[2]
    return current and server[write[1]] == value


def _pending(writes: tuple, server: Objects) -> list[str]:
    """The requests not yet sent, first the next one; each says how many
    follow it, so a trace shows exactly which one a Write sent."""
    n = len(writes)
    return [_describe(w, server) + (f" (then {n - 1 - i} more)" if i < n - 1 else "")
            for i, w in enumerate(writes)]


def _describe(write: tuple, server: Objects | None = None) -> str:
    """A request in flight as people read it in a trace."""
    op, (kind, name) = write[0], write[1]
    if op == REPLACE:
        return f"update {kind}/{name} (any version) to {_json(write[2])}"
    if op == "create":
        named = f"{name}* (generateName)" if write[3] else name
        return f"create {kind}/{named} {_json(write[2])}"
    rv = write[2]
    if rv is None:
        return f"delete {kind}/{name}"
    held = "" if server is None or (write[1] in server and server.rv(write[1]) == rv) \
        else ", which it no longer is: 409 ahead"
    guard = f"if still the version read{held}"
    if op == "update":
        return f"update {kind}/{name} {guard}, to {_json(write[3])}"
    return f"delete {kind}/{name} {guard}"


def _json(value) -> str:
    return json.dumps(thaw(value), sort_keys=True)


def _raised(exc: BaseException) -> str:
    """The exception and where in the user's code it was raised (the file's
    name only: a trace must not carry a path of the machine it ran on)."""
    text = f"{type(exc).__name__}: {exc}".strip()
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        text += f" (at {os.path.basename(last.filename)}:{last.lineno} in {last.name})"
    return text


def _comparable(answer: tuple) -> tuple:
    """An answer with an exception's message dropped (it may hold an object's
    id); its type and place must agree."""
    if answer[0] == RAISED:
        return (RAISED, answer[1].partition(":")[0], answer[1].rsplit("(at ", 1)[-1])
    return answer


def _brief(answer: tuple) -> str:
    if answer[0] == RAISED:
        return f"an exception ({answer[1][:80]})"
    shown = "; ".join(_describe(w) for w in answer[1])
    return f"{len(answer[1])} request(s) [{shown[:120]}]"

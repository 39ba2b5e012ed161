"""The requests a user's reconcile function returns, for
``kubemc check-controller`` (docs/check-controller.md).

A reconcile function is ``reconcile(desired, children) -> list of requests``:
``desired`` is the object of ``--resource`` kind as the controller's informer
cache holds it, ``children`` the objects of ``--owns`` kind in that cache (a
list sorted by name), each a Kubernetes-shaped dict::

    {"kind": "Pod", "metadata": {"name": "web-0", "resourceVersion": "4", ...}, ...}

It returns what it wants the apiserver to do, as these value types or as
plain dicts of the same shape::

    Create({"metadata": {"name": "web-0"}, "spec": {...}})   # {"op": "create", "object": ...}
    Create({"metadata": {"generateName": "web-"}, ...})      # the server picks the name
    Update(obj)   # with metadata.resourceVersion: 409 if stale; {"op": "update", "object": ...}
    Update(obj)   # without it: an unconditional update
    Delete("web-1"), Delete("web-1", resource_version="4")   # {"op": "delete", "name": "web-1"}

Requests are sent one at a time, in order, as client-go sends them; the
first one the apiserver refuses (409 Conflict, 404 Not Found, a transient
500) ends the reconcile and requeues the key, as returning an error from a
controller-runtime ``Reconcile`` does.

Why the resourceVersion must be one ``reconcile`` was handed: "Resource
versions must be passed unmodified back to the server"
(kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions;
before Kubernetes 1.35 and KEP-5504 they were also opaque, compared only for
equality), so a client can only send back one it read.

Why the function must be deterministic: the checker runs it on the same
inputs many times and explores every interleaving around it; an answer that
depends on a clock, a random number or module-level state is not a function
of what the controller saw, and is refused (exit 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from kubemc.model.controllers.frozen import NotJsonLike, freeze
from kubemc.model.controllers.loop import CREATE, DELETE, UPDATE, create, delete, update

#: an update without a resourceVersion: applied to whatever version is current
REPLACE = "replace"


class BadRequest(ValueError):
    """A reconcile returned something that is not a list of requests."""


@attrs.frozen(slots=True)
class Create:
    """Create ``object`` (named by ``metadata.name``, or by
    ``metadata.generateName``: a prefix the server completes with a free
    suffix). A create of a name that exists is a 409 AlreadyExists."""

    object: Mapping


@attrs.frozen(slots=True)
class Update:
    """Replace the object named by ``object["metadata"]["name"]``; with
    ``metadata.resourceVersion``, only if that is still the current one
    (else 409 Conflict)."""

    object: Mapping


@attrs.frozen(slots=True)
class Delete:
    """Delete ``name`` (of the owned kind unless ``kind`` says otherwise);
    with ``resource_version``, only if that is still the current one
    (``metav1.Preconditions``)."""

    name: str
    resource_version: str | None = None
    kind: str | None = None


def to_writes(result: Any, *, resource: str, owns: str, versions: frozenset) -> tuple:
    """The loop's write tuples (``model.controllers.loop``) for what a
    reconcile returned; ``versions`` are the resourceVersions it was handed.
    Raises :class:`BadRequest` with one line saying what is wrong."""
    if isinstance(result, (str, bytes, Mapping)) or not _iterable(result):
        raise BadRequest(f"returned {_short(result)} ({type(result).__name__}); expected a "
                         "list of Create/Update/Delete requests (or [] when nothing is to "
                         "be done)")
    writes = []
    for i, request in enumerate(result):
        where = f"request {i}"
        if isinstance(request, Mapping):
            request = _from_dict(request, where)
        if isinstance(request, Create):
            kind, name, generate, rv, value = _object(request.object, where, owns)
            if kind != owns:
                raise BadRequest(f"{where} creates a {kind}: a controller checked with "
                                 f"--owns {owns} creates only {owns} objects")
            if rv is not None:
                # k8s.io/apiserver/pkg/storage/errors.go, errResourceVersionSetOnCreate
                raise BadRequest(f"{where} creates {name} with metadata.resourceVersion set; "
                                 "the apiserver refuses it ('resourceVersion should not be "
                                 "set on objects to be created'): drop it")
            writes.append(create(kind, name, value, generate=generate))
        elif isinstance(request, Update):
            kind, name, generate, rv, value = _object(request.object, where, owns)
            if generate:
                raise BadRequest(f"{where} updates an object without metadata.name")
            if kind not in (resource, owns):
                raise BadRequest(f"{where} updates a {kind}: only {resource} and {owns} "
                                 "objects are in this check")
            if rv is None:
                writes.append((REPLACE, (kind, name), value))
            else:
                writes.append(update((kind, name), _known(rv, versions, where), value))
        elif isinstance(request, Delete):
            kind = request.kind or owns
            if kind != owns:
                raise BadRequest(f"{where} deletes a {kind}: only the owned {owns} objects "
                                 "may be deleted")
            if not isinstance(request.name, str) or not request.name:
                raise BadRequest(f"{where}: Delete needs a name, got {_short(request.name)}")
            rv = request.resource_version
            writes.append(delete((kind, request.name),
                                 None if rv is None else _known(rv, versions, where)))
        else:
            raise BadRequest(f"{where} is {_short(request)} ({type(request).__name__}); "
                             "expected Create, Update or Delete from "
                             "kubemc.model.controllers.requests, or a dict with 'op'")
    return tuple(writes)


def _from_dict(request: Mapping, where: str):
    op = request.get("op")
    if op in ("create", "update"):
        if "object" not in request:
            raise BadRequest(f"{where}: an {op!r} request needs 'object'")
        return (Create if op == "create" else Update)(request["object"])
    if op == "delete":
        return Delete(request.get("name"), request.get("resourceVersion"), request.get("kind"))
    raise BadRequest(f"{where} is a dict with op {_short(op)}; expected 'create', 'update' "
                     "or 'delete'")


def _object(obj: Any, where: str, owns: str):
    """(kind, name or prefix, generated?, resourceVersion or None, stored value)."""
    if not isinstance(obj, Mapping):
        raise BadRequest(f"{where}: the object is {_short(obj)}, not a dict")
    body = dict(obj)
    kind = body.pop("kind", None) or owns
    meta = body.pop("metadata", None)
    if not isinstance(meta, Mapping):
        raise BadRequest(f"{where}: the object has no metadata dict (metadata.name or "
                         "metadata.generateName names it)")
    meta = dict(meta)
    name = meta.pop("name", None)
    rv = meta.pop("resourceVersion", None)
    generate = False
    if name is None and isinstance(meta.get("generateName"), str) and meta["generateName"]:
        name, generate = meta["generateName"], True
    if not isinstance(name, str) or not name:
        raise BadRequest(f"{where}: metadata.name must be a non-empty string, "
                         f"got {_short(name)}")
    if meta:
        body["metadata"] = meta
    try:
        value = freeze(body, "the object")
    except NotJsonLike as exc:
        raise BadRequest(f"{where}: {exc}") from None
    return kind, name, generate, rv, value


def _known(rv: Any, versions: frozenset, where: str) -> int:
    text = str(rv) if isinstance(rv, (str, int)) and not isinstance(rv, bool) else None
    if text is None or not text.isdigit() or int(text) not in versions:
        raise BadRequest(f"{where} carries resourceVersion {_short(rv)}, which is not one "
                         "reconcile was handed: send back the resourceVersion you read "
                         "(they are opaque), or none for an unconditional update")
    return int(text)


def _iterable(value: Any) -> bool:
    try:
        iter(value)
    except TypeError:
        return False
    return True


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


__all__ = ["Create", "Update", "Delete", "BadRequest", "to_writes", "REPLACE",
           "CREATE", "UPDATE", "DELETE"]

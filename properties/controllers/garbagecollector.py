"""What the garbage collector promises, read off the apiserver's objects.

Kubernetes documentation, "Garbage Collection" (kubernetes.io/docs/concepts/
architecture/garbage-collection) and "Owners and Dependents": owner
references let "the control plane ... clean up related resources before
deleting an object"; in Background cascading deletion "the Kubernetes API
server deletes the owner object immediately and the garbage collector
controller ... cleans up the dependent objects in the background". An
object with several owners is collected only when none of them exists
(the docs' wording as corrected in kubernetes/website#57139: "provided that
none of the owners still exist"). Foreground cascading deletion: "the
owner object first enters a deletion in progress state ... the controller
deletes the dependents ... After deleting all the dependent objects, the
controller deletes the owner object" — an owner is *solid* when it exists
and is not waiting so; a dependent that still has a solid owner is kept.
"""

from __future__ import annotations

from kubemc.model.controllers.garbagecollector import DEPENDENTS, OWNERS
from kubemc.properties.core import COVER, EVENTUALLY_ALWAYS, LEADS_TO, TRANSITION, Property

_DOCS = ("kubernetes.io/docs/concepts/architecture/garbage-collection: Background cascading "
         "deletion — the garbage collector 'cleans up the dependent objects in the "
         "background'")


def _owners(objects) -> set:
    """Owners that exist and are not waiting for a Foreground deletion."""
    return {key[1] for key, value in objects.of_kind(OWNERS) if not value}


def _waiting(objects) -> set:
    return {key[1] for key, value in objects.of_kind(OWNERS) if value}


def never_deletes_with_live_owner(m, before, step, after) -> bool:
    """A dependent that disappears on a step had no owner left after it."""
    was, now = m.objects(before), m.objects(after)
    alive = _owners(now)
    return all(not (set(refs) & alive)
               for key, refs in was.of_kind(DEPENDENTS) if key not in now)


def no_orphans(m, state) -> bool:
    objects = m.objects(state)
    alive = _owners(objects)
    return all(set(refs) & alive for _, refs in objects.of_kind(DEPENDENTS))


def cover_one_owner_left(m, state) -> bool:
    objects = m.objects(state)
    alive = _owners(objects)
    return any(set(refs) & alive and not set(refs) <= alive
               for _, refs in objects.of_kind(DEPENDENTS))


def cover_orphan(m, state) -> bool:
    return not no_orphans(m, state)


def foreground_pending(m, state) -> bool:
    return bool(_waiting(m.objects(state)))


def foreground_done(m, state) -> bool:
    return not foreground_pending(m, state)


def cover_waiting_with_dependent(m, state) -> bool:
    """An owner waits in the Foreground while a dependent still references it."""
    objects = m.objects(state)
    waiting = _waiting(objects)
    return any(set(refs) & waiting for _, refs in objects.of_kind(DEPENDENTS))


PROPERTIES = (
    Property("gc_never_deletes_with_live_owner", "controllers", TRANSITION,
             "a dependent is never deleted while one of its owners still exists",
             _DOCS + "; kubernetes/website#57139", never_deletes_with_live_owner),
    Property("gc_collects_orphans", "controllers", EVENTUALLY_ALWAYS,
             "once users and faults stop, every dependent left has an existing owner (the "
             "ones whose owners are all gone are collected), and this stays so",
             _DOCS, no_orphans),
    Property("gc_foreground_completes", "controllers", LEADS_TO,
             "an owner deleted in the Foreground is eventually gone, its dependents deleted "
             "or no longer referencing it",
             "kubernetes.io/docs/concepts/architecture/garbage-collection: 'After deleting all "
             "the dependent objects, the controller deletes the owner object'",
             foreground_done, trigger=foreground_pending),
    Property("gc_cover_waiting_with_dependent", "controllers", COVER,
             "some reachable state has an owner waiting in the Foreground for a dependent",
             _DOCS, cover_waiting_with_dependent),
    Property("gc_cover_one_owner_left", "controllers", COVER,
             "some reachable state has a dependent with one owner gone and one left",
             _DOCS, cover_one_owner_left),
    Property("gc_cover_orphan", "controllers", COVER,
             "some reachable state has a dependent none of whose owners exists", _DOCS,
             cover_orphan),
)

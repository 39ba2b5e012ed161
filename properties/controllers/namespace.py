"""What deleting a namespace promises, read off the apiserver's objects.

Kubernetes documentation, "Namespaces" (kubernetes.io/docs/concepts/
overview/working-with-objects/namespaces) and "Share a Cluster with
Namespaces" (kubernetes.io/docs/tasks/administer-cluster/namespaces):
"Deleting a namespace deletes everything under the namespace", and a
namespace being deleted is in phase ``Terminating`` until then. API
conventions on finalizers (kubernetes.io/docs/concepts/overview/
working-with-objects/finalizers): "When you tell Kubernetes to delete an
object that has finalizers specified for it, the Kubernetes API marks the
object for deletion by populating .metadata.deletionTimestamp ... the
controller ... removes the finalizer ... When the finalizers field is empty,
an object with a deletionTimestamp field set is automatically deleted";
the namespace's own finalizer is ``kubernetes``, and the finalizer exists so
that the namespace outlives its content. An object is *gone* when the
server no longer holds it — an object with a deletionTimestamp still
exists (graceful deletion).

Every object of the model lives in the one namespace, so "content" is every
object that is not the namespace.
"""

from __future__ import annotations

from kubemc.model.controllers.namespace import NS
from kubemc.properties.core import COVER, INVARIANT, LEADS_TO, Property

_DOCS = ("kubernetes.io/docs/tasks/administer-cluster/namespaces: 'Deleting a namespace "
         "deletes everything under the namespace'")
_FINALIZERS = ("kubernetes.io/docs/concepts/overview/working-with-objects/finalizers: "
               "'When the finalizers field is empty, an object with a deletionTimestamp "
               "field set is automatically deleted'")


def _content(objects) -> list:
    return [key for key in objects if key != NS]


def no_orphans(m, state) -> bool:
    objects = m.objects(state)
    return NS in objects or not _content(objects)


def finalized_only_when_empty(m, state) -> bool:
    """The ``kubernetes`` finalizer is off a terminating namespace only when
    nothing is left in it."""
    objects = m.objects(state)
    if NS not in objects:
        return True
    terminating, finalizer = objects[NS]
    return not terminating or finalizer or not _content(objects)


def terminating(m, state) -> bool:
    objects = m.objects(state)
    return NS in objects and objects[NS][0]


def gone(m, state) -> bool:
    return NS not in m.objects(state)


def cover_waiting_for_content(m, state) -> bool:
    """Terminating, with content still marked for deletion but present."""
    objects = m.objects(state)
    return terminating(m, state) and any(
        key[0] == "pods" and value[0] for key, value in objects.items() if key != NS)


def cover_created_before_deletion(m, state) -> bool:
    """Terminating, with more content than the namespace started with: a
    user's creation raced the deletion."""
    return terminating(m, state) and len(_content(m.objects(state))) > m.pods + m.configmaps


PROPERTIES = (
    Property("namespace_no_orphans", "controllers", INVARIANT,
             "no object outlives its namespace: once the namespace is gone, nothing is left "
             "in it", _DOCS + "; orphans: kubernetes/kubernetes#49027", no_orphans),
    Property("namespace_finalized_only_when_empty", "controllers", INVARIANT,
             "the kubernetes finalizer leaves a terminating namespace only when nothing is "
             "left in it", _FINALIZERS + "; " + _DOCS, finalized_only_when_empty),
    Property("namespace_deletion_completes", "controllers", LEADS_TO,
             "a namespace marked for deletion is eventually gone",
             _DOCS + "; " + _FINALIZERS, gone, trigger=terminating,
             assumption="the kubelet eventually removes a terminating pod (PodGone is a "
                        "weakly fair step)"),
    Property("namespace_cover_waiting_for_content", "controllers", COVER,
             "some reachable state has a terminating namespace that still holds a "
             "terminating pod", _DOCS, cover_waiting_for_content),
    Property("namespace_cover_created_before_deletion", "controllers", COVER,
             "some reachable state has a terminating namespace holding an object a user "
             "created after the start", _DOCS, cover_created_before_deletion),
    Property("namespace_cover_gone", "controllers", COVER,
             "some reachable state has the namespace gone", _DOCS, gone),
)

"""What a Service's EndpointSlice promises, read off the apiserver's objects.

Kubernetes documentation, "EndpointSlices" (kubernetes.io/docs/concepts/
services-networking/endpoint-slices): "the control plane automatically
creates EndpointSlices for any Kubernetes Service that has a selector
specified. These EndpointSlices include references to all the Pods that
match the Service selector." Conditions: "ready is a condition that maps to
a Pod's Ready condition. A running Pod with the Ready condition set to True
should have this EndpointSlice condition also set to true. For compatibility
reasons, ready is NEVER true when a Pod is terminating"; "serving is
identical to the ready condition, except it does not account for
terminating states"; "terminating ... For Pods, this is any Pod that has a
deletion timestamp set." The seeds name the Endpoints controller's job:
"Populates the Endpoints object (that is, joins Services & Pods)" (seeds/002).

The properties are written from those sentences, pod by pod and endpoint by
endpoint, over ``ControllerLoop.objects`` (what the apiserver holds), never
from the controller's cache or its own endpoint computation. A slice cannot
follow a pod instantly — the controller's cache lags — so "endpoints never
list a pod that is not Ready" is a leads-to: a stale ready endpoint is
eventually corrected once users and faults stop.
"""

from __future__ import annotations

from kubemc.model.controllers.endpointslice import POD, SLICE, SVC
from kubemc.properties.core import COVER, EVENTUALLY_ALWAYS, INVARIANT, LEADS_TO, Property

_DOCS = ("kubernetes.io/docs/concepts/services-networking/endpoint-slices: 'These "
         "EndpointSlices include references to all the Pods that match the Service selector'")
_CONDITIONS = ("kubernetes.io/docs/concepts/services-networking/endpoint-slices, Conditions: "
               "'ready is NEVER true when a Pod is terminating'; 'serving ... does not account "
               "for terminating states'; terminating: 'any Pod that has a deletion timestamp'")
_SEED = ("seeds/000: 'in case of a mismatch corrective action is taken in the cluster until "
         "its current state matches the desired state'; seeds/002: 'Endpoints controller: "
         "Populates the Endpoints object (that is, joins Services & Pods)'")


def _listed(objects) -> tuple:
    """The slice's endpoints as (pod, ready, serving, terminating), or () without a slice."""
    return objects.get(SLICE, ())


def _pod(objects, name):
    return objects.get((POD, name))


def _selected(objects, pod) -> bool:
    return pod is not None and SVC in objects and pod[0] == objects[SVC]


def _stale_ready(objects) -> list:
    """Endpoints listed ready whose pod is not a selected, Ready, non-terminating pod."""
    out = []
    for name, ready, _serving, _terminating in _listed(objects):
        pod = _pod(objects, name)
        fit = _selected(objects, pod) and pod[1] and not pod[2]
        if ready and not fit:
            out.append(name)
    return out


def _gone(objects) -> list:
    """Endpoints whose pod no longer exists."""
    return [e[0] for e in _listed(objects) if _pod(objects, e[0]) is None]


def matches_pods(m, state) -> bool:
    """The slice lists exactly the selected pods, each with its pod's conditions."""
    objects = m.objects(state)
    if SVC not in objects:
        return True
    if SLICE not in objects:
        return False
    listed = {}
    for name, ready, serving, terminating in objects[SLICE]:
        if name in listed:
            return False  # one endpoint per pod
        listed[name] = (ready, serving, terminating)
    for key, pod in objects.of_kind(POD):
        if _selected(objects, pod) != (key[1] in listed):
            return False
    for name, (ready, serving, terminating) in listed.items():
        pod = _pod(objects, name)
        if pod is None:
            return False
        _label, pod_ready, pod_terminating = pod
        if serving != pod_ready or terminating != pod_terminating:
            return False
        if ready != (pod_ready and not pod_terminating):
            return False
    return True


def terminating_not_ready(m, state) -> bool:
    return all(not (ready and terminating)
               for _, ready, _, terminating in _listed(m.objects(state)))


def some_stale_ready(m, state) -> bool:
    return bool(_stale_ready(m.objects(state)))


def no_stale_ready(m, state) -> bool:
    return not _stale_ready(m.objects(state))


def some_gone_listed(m, state) -> bool:
    return bool(_gone(m.objects(state)))


def no_gone_listed(m, state) -> bool:
    return not _gone(m.objects(state))


def ready_listed(m, state) -> bool:
    return any(e[1] for e in _listed(m.objects(state)))


def terminating_listed(m, state) -> bool:
    return any(e[3] for e in _listed(m.objects(state)))


def reselected_pod_listed(m, state) -> bool:
    """The selector was changed and the slice lists a pod only the new selector matches."""
    objects = m.objects(state)
    return (objects.get(SVC) == "b"
            and any(_pod(objects, e[0]) and _pod(objects, e[0])[0] == "b"
                    for e in _listed(objects)))


_ASSUMES = ("a 409 on the slice is retried from a fresher cache: the controller is the "
            "slice's only writer, so the retry after its cache has caught up wins (weak "
            "fairness of Deliver suffices)")

PROPERTIES = (
    Property("endpointslice_converges", "controllers", EVENTUALLY_ALWAYS,
             "once users and faults stop, the Service's EndpointSlice eventually lists "
             "exactly the pods its selector matches, each with its pod's ready, serving and "
             "terminating conditions, and stays so", _DOCS + "; " + _CONDITIONS + "; " + _SEED,
             matches_pods, assumption=_ASSUMES),
    Property("endpointslice_unready_leads_to_not_ready", "controllers", LEADS_TO,
             "an endpoint listed ready whose pod is not Ready (not ready, terminating, gone "
             "or no longer selected) is eventually listed not ready or removed",
             _CONDITIONS + "; issue 10: 'endpoints never list a pod that is not Ready once "
             "converged'", no_stale_ready, trigger=some_stale_ready, assumption=_ASSUMES),
    Property("endpointslice_gone_leads_to_unlisted", "controllers", LEADS_TO,
             "an endpoint whose pod no longer exists is eventually removed from the slice",
             _DOCS, no_gone_listed, trigger=some_gone_listed, assumption=_ASSUMES),
    Property("endpointslice_terminating_not_ready", "controllers", INVARIANT,
             "no endpoint is ever listed both ready and terminating", _CONDITIONS,
             terminating_not_ready),
    Property("endpointslice_cover_ready_listed", "controllers", COVER,
             "some reachable slice lists a ready endpoint", _DOCS, ready_listed),
    Property("endpointslice_cover_terminating_listed", "controllers", COVER,
             "some reachable slice lists a terminating endpoint", _CONDITIONS,
             terminating_listed),
    Property("endpointslice_cover_stale_ready", "controllers", COVER,
             "some reachable state lists ready a pod that is not Ready (the leads-to's "
             "trigger occurs)", _CONDITIONS, some_stale_ready),
    Property("endpointslice_cover_gone_listed", "controllers", COVER,
             "some reachable state lists a pod that is gone (the leads-to's trigger occurs)",
             _DOCS, some_gone_listed),
    Property("endpointslice_cover_reselected", "controllers", COVER,
             "some reachable slice lists a pod that only a changed selector matches",
             _DOCS, reselected_pod_listed),
)

"""What ``kubemc check-controller`` checks of a user's reconcile function
(``model.controllers.usercontroller``), read off the apiserver's objects.

* ``reconcile_does_not_raise`` — an exception escaping reconcile is a bug
  the controller manager would log and retry forever; here it is reported
  with the shortest behaviour that leads to it.
* ``eventually_reconciled`` — eventually-stable reconciliation, stated
  without trusting the controller's own view: once edits and faults stop,
  the cluster eventually reaches, and stays in, a state where nothing is in
  flight (no watch event undelivered, no key queued, no request unsent) and
  the user's reconcile, handed the *apiserver's* objects rather than its
  cache, asks for no change (nothing, or only updates that would leave an
  object as it is, which the apiserver answers without a write). A
  controller that keeps writing (a hot loop) and one that keeps asking for
  what the apiserver refuses (a create of a name that exists) fail it.
* the user's own invariants: ``predicate(desired, children) -> bool`` over
  the apiserver's objects, in every reachable state;
* the user's own goals: such a predicate that, once edits and faults stop,
  eventually holds and keeps holding (what "converged" means to them, e.g.
  "two pods, all running the image the ConfigMap names").
"""

from __future__ import annotations

from collections.abc import Callable

from kubemc.model.controllers.loop import CACHE, EVENTS, INFLIGHT, MEMORY, QUEUE, SERVER, Objects
from kubemc.model.controllers.usercontroller import BadReconcile, as_object, show
from kubemc.properties.core import EVENTUALLY_ALWAYS, INVARIANT, Property

COMPONENT = "check-controller"

_SEED = ("seeds/000: 'in case of a mismatch corrective action is taken in the cluster until "
         "its current state matches the desired state'")
_ANVIL = ("eventually-stable reconciliation as Anvil states it (Sun et al., OSDI 2024, §3): "
          "once the desired state stops changing and faults stop, the controller reaches "
          "the desired state and stays there")


def does_not_raise(m, state) -> bool:
    return not state[MEMORY]


def quiet(state) -> bool:
    """Nothing in flight: every event delivered, no key queued, no request unsent."""
    return (state[CACHE] is not None and not state[EVENTS] and not state[QUEUE]
            and not state[INFLIGHT])


def reconciled(m, state) -> bool:
    return quiet(state) and not state[MEMORY] and m.wants_nothing(state)


def properties(invariants: tuple[tuple[str, Callable], ...] = (),
               goals: tuple[tuple[str, Callable], ...] = ()) -> tuple[Property, ...]:
    """The built-in properties, one invariant per user invariant and one
    eventually-always property per user goal, each given as (name shown to
    the user, predicate)."""
    props = [
        Property("reconcile_does_not_raise", COMPONENT, INVARIANT,
                 "reconcile never raises an exception, whatever stale view it is handed",
                 "a controller-runtime Reconcile that panics or errors is retried for ever "
                 "(controller-runtime docs: 'returning an error requeues'); kubemc reports it "
                 "with the behaviour that leads to it", does_not_raise),
        Property("eventually_reconciled", COMPONENT, EVENTUALLY_ALWAYS,
                 "once edits and faults stop, eventually always: nothing is in flight (no "
                 "watch event, queued key or unsent request) and reconcile, handed the "
                 "apiserver's own objects, asks for no change",
                 _SEED + "; " + _ANVIL, reconciled),
    ]
    for label, predicate in invariants:
        props.append(Property(label, COMPONENT, INVARIANT, _statement(label, predicate),
                              f"the user's predicate {label}", _judge(label, predicate)))
    for label, predicate in goals:
        props.append(Property(label, COMPONENT, EVENTUALLY_ALWAYS,
                              "once edits and faults stop, eventually always: "
                              + _statement(label, predicate, "goal"),
                              f"the user's predicate {label}; " + _ANVIL,
                              _judge(label, predicate, "goal")))
    return tuple(props)


def _statement(label: str, predicate: Callable, role: str = "invariant") -> str:
    """The predicate's docstring (its first paragraph), which says in the
    user's words what must hold; or a generic sentence."""
    doc = " ".join((getattr(predicate, "__doc__", None) or "").strip().split("\n\n")[0].split())
    if doc:
        return doc
    if role == "goal":
        return f"{label}(desired, children) holds of the apiserver's objects"
    return f"{label}(desired, children) holds in every reachable state of the apiserver's objects"


def _judge(label: str, predicate: Callable, role: str = "invariant") -> Callable:
    """The user's predicate over the server's objects, as a property check.
    A predicate that raises or answers other than True/False is bad input."""

    def check(m, state) -> bool:
        objects = Objects(state[SERVER])
        if m.key not in objects:
            return True
        desired = as_object(m.primary, m.key[1], objects.rv(m.key), objects[m.key])
        children = [as_object(m.owns, k[1], objects.rv(k), v)
                    for k, v in objects.of_kind(m.owns)]
        try:
            verdict = predicate(desired, children)
        except Exception as exc:
            raise BadReconcile(
                f"{role} {label} raised {type(exc).__name__}: {exc} on "
                f"{show(m.primary, m.key[1], objects.rv(m.key), objects[m.key])} and "
                f"{len(children)} {m.owns} object(s): fix the predicate") from None
        if not isinstance(verdict, bool):
            raise BadReconcile(f"{role} {label} returned {verdict!r:.60} "
                               f"({type(verdict).__name__}); it must return True or False")
        return verdict

    return check

"""What a property is: a name, the machine it speaks of, a kind, a statement,
where it comes from, and the predicate that decides it.

Kinds:

* ``INVARIANT`` — ``check(machine, state) -> bool`` holds in every reachable state;
* ``TRANSITION`` — ``check(machine, before, step, after) -> bool`` holds on
  every reachable step;
* ``COVER`` — ``check(machine, state) -> bool`` holds in *some* reachable
  state. A cover shows that the bounds reach what the other properties talk
  about ("a 409 happens", "a pod is evicted"); a cover never reached fails
  the check, because an invariant over states that never occur says nothing.
* liveness, judged on infinite behaviours (lassos):

  - ``EVENTUALLY_ALWAYS`` — ``check`` is a goal every fair behaviour reaches
    and then keeps (``<>[]P``: eventually-stable reconciliation);
  - ``LEADS_TO`` — whenever ``trigger`` holds, ``check`` holds then or later
    (``P ~> Q``);
  - ``ALWAYS_EVENTUALLY`` — ``check`` holds infinitely often (``[]<>P``).

Fairness, the same for every liveness property (DESIGN.md, "Engines"): a
behaviour counts only if it is *fair* and *quiet*. Fair: every ``system``
step (an action with its parameters) that is enabled in every state of the
behaviour's cycle is taken on it (weak fairness), and every action a machine
lists in ``Machine.strongly_fair`` that is enabled in some state of the
cycle is taken on it (strong fairness). Quiet: the cycle takes no
``environment`` and no ``fault`` step — the desired state has stopped
changing and faults have stopped, after at most as many as the machine's
bounds allow in the stem. A state in which no ``system`` step is enabled
(environment and fault steps may be) ends a quiet behaviour: it stutters
there forever, a lasso whose loop is that one state, and it violates
``EVENTUALLY_ALWAYS(P)`` where ¬P holds in it. A state outside the
machine's ``within_bounds`` is not expanded, so it is neither a deadlock
nor part of a cycle: nothing is concluded from it. This is how Anvil states eventually-stable
reconciliation (Sun et al., OSDI 2024, "Anvil: Verifying Liveness of Cluster
Management Controllers", §3), and it makes "faults stop" a bound rather than
a special case per model. What a property assumes beyond that (e.g. "a
writer that retries eventually wins the 409 race") is said in its
``assumption`` and, where the machine can express it, made strong fairness.

Provenance is mandatory: a property without a source is an opinion. It names
a seed file and the sentence it formalizes, or an external specification.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

INVARIANT = "invariant"
TRANSITION = "transition"
COVER = "cover"
EVENTUALLY_ALWAYS = "eventually_always"
LEADS_TO = "leads_to"
ALWAYS_EVENTUALLY = "always_eventually"
LIVENESS_KINDS = (EVENTUALLY_ALWAYS, LEADS_TO, ALWAYS_EVENTUALLY)
SAFETY_KINDS = (INVARIANT, TRANSITION)
KINDS = SAFETY_KINDS + (COVER,) + LIVENESS_KINDS
#: the fairness every liveness property is judged under (see the module text)
FAIRNESS = ("weak fairness of system steps, strong fairness of the machine's "
            "strongly_fair actions; environment and faults stop")


def _nonempty(instance, attribute, value):
    if not value or not value.strip():
        raise ValueError(f"property {attribute.name} must not be empty")


@attrs.frozen(slots=True)
class Property:
    name: str = attrs.field(validator=_nonempty)
    component: str = attrs.field(validator=_nonempty)
    kind: str = attrs.field(validator=attrs.validators.in_(KINDS))
    statement: str = attrs.field(validator=_nonempty)
    provenance: str = attrs.field(validator=_nonempty)
    check: Callable = attrs.field(repr=False)
    #: ``LEADS_TO`` only: the state predicate P of ``P ~> Q`` (``check`` is Q)
    trigger: Callable | None = attrs.field(default=None, repr=False, kw_only=True)
    #: liveness only: what the property assumes beyond ``FAIRNESS``
    assumption: str = attrs.field(default="", kw_only=True)

    def __attrs_post_init__(self):
        if (self.kind == LEADS_TO) != (self.trigger is not None):
            raise ValueError(f"property {self.name}: a trigger is given exactly "
                             "for leads_to properties")

    @property
    def is_liveness(self) -> bool:
        return self.kind in LIVENESS_KINDS

    @property
    def fairness(self) -> str:
        """How the property is judged, for ``kubemc properties``."""
        if not self.is_liveness:
            return ""
        return FAIRNESS + (f"; assumes {self.assumption}" if self.assumption else "")

    def holds_in(self, machine, state) -> bool:
        return bool(self.check(machine, state))

    def holds_on(self, machine, before, step, after) -> bool:
        return bool(self.check(machine, before, step, after))


def cover(component: str) -> Callable[[str, str, str, Callable], Property]:
    """``cover(component)(name, statement, provenance, check)``: a cover of
    ``component``. A model's covers are many and alike — a state predicate
    and what the bounds must reach — so the component and the kind are said
    once per module instead of once per cover."""
    def make(name: str, statement: str, provenance: str, check: Callable) -> Property:
        return Property(name, component, COVER, statement, provenance, check)
    return make

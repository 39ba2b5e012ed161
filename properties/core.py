"""What a property is: a name, the machine it speaks of, a kind, a statement,
where it comes from, and the predicate that decides it.

Kinds:

* ``INVARIANT`` — ``check(machine, state) -> bool`` holds in every reachable state;
* ``TRANSITION`` — ``check(machine, before, step, after) -> bool`` holds on
  every reachable step;
* ``LIVENESS`` — ``check(machine, state) -> bool`` is a goal that every fair
  behaviour reaches and keeps (``eventually always``); fairness is weak
  fairness of the machine's ``system`` steps.

Provenance is mandatory: a property without a source is an opinion. It names
a seed file and the sentence it formalizes, or an external specification.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

INVARIANT = "invariant"
TRANSITION = "transition"
LIVENESS = "liveness"
KINDS = (INVARIANT, TRANSITION, LIVENESS)


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

    def holds_in(self, machine, state) -> bool:
        return bool(self.check(machine, state))

    def holds_on(self, machine, before, step, after) -> bool:
        return bool(self.check(machine, before, step, after))

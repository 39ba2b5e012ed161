"""What a catalog entry is made of: a :class:`Model` (a machine factory with its
default bounds and properties) and a :class:`Component` (what a user names on
the command line: one or more models plus the z3 engine's obligations).

Each component has one module in this package that builds its
``COMPONENT`` (or ``COMPONENTS``, for a module that declares several);
``checker.components`` finds them (pkgutil), with the components installed
distributions register under the entry-point group ``kubemc.components``. A
new component adds a module here, or a distribution of its own
(``examples/lock``), and touches nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from kubemc.checker.z3engine import SymbolicCheck
from kubemc.model.kernel import Machine
from kubemc.properties.core import Property


@attrs.frozen
class Model:
    """One machine to check: how to build it, at which bounds, against what.

    ``bounds`` are the documented defaults of ``kubemc check``;
    ``hypothesis_bounds`` may be larger (random runs go deeper than
    exhaustive search can); ``mutant_bounds`` names, per mutant, the bounds at
    which its shortest counterexample exists when they differ from the
    defaults (a mutant that needs four terms is not visible at two).
    """

    name: str
    build: Callable[..., Machine]
    bounds: Mapping[str, Any]
    properties: tuple[Property, ...]
    hypothesis_bounds: Mapping[str, Any] = attrs.field(factory=dict)
    mutant_bounds: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    #: The largest value a bound may take (for a list bound: how many names
    #: it may hold), checked by :meth:`check_bounds` before a machine is
    #: built. A bound not named here gets the default rule: four times the
    #: largest value the catalog itself uses for it (at least 4). Why a
    #: ceiling at all: a bound sizes every state, so `servers=40` or
    #: `max_term=10**23` exhausts memory long before any verdict, and a trace
    #: file's ``#meta`` can name such bounds as easily as a command line.
    ceilings: Mapping[str, int] = attrs.field(factory=dict)

    def machine(self, mutant: str | None = None, **overrides) -> Machine:
        bounds = dict(self.bounds)
        if mutant is not None:
            bounds.update(self.mutant_bounds.get(mutant, {}))
        bounds.update(overrides)
        return self.build(mutant=mutant, **bounds)

    def hypothesis_machine(self, mutant: str | None = None) -> Machine:
        """The machine random runs explore: the hypothesis bounds override
        the mutant's explore bounds too, because a random run needs slack
        (spare terms, spare messages) that a shortest counterexample does not."""
        bounds = dict(self.bounds)
        if mutant is not None:
            bounds.update(self.mutant_bounds.get(mutant, {}))
        bounds.update(self.hypothesis_bounds)
        return self.build(mutant=mutant, **bounds)

    @property
    def mutants(self):
        return self.build.mutants

    def check_bounds(self, bounds: Mapping[str, Any]) -> dict[str, Any]:
        """``bounds`` checked against each bound's type and ceiling, with a
        single name given for a list bound made a one-name list. Raises
        BadInput naming the bound, its ceiling and what to do; nothing is
        allocated before this passes."""
        from kubemc.checker.bounds import checked

        return checked(self.name, bounds, self._reference(), self.ceilings)

    def _reference(self) -> dict[str, list]:
        """Every value the catalog gives each bound: defaults, hypothesis and
        mutant bounds, and the default machine's full configuration (which
        also names the bounds the catalog leaves at the machine's default)."""
        reference: dict[str, list] = {}
        sources = [self.bounds, self.hypothesis_bounds, *self.mutant_bounds.values(),
                   self.machine().config()]
        for source in sources:
            for key, value in source.items():
                reference.setdefault(key, []).append(value)
        return reference


@attrs.frozen
class Component:
    name: str
    summary: str
    models: tuple[Model, ...]
    #: the z3 engine's proof obligations (``checker.z3engine.SymbolicCheck``)
    symbolic: tuple[SymbolicCheck, ...] = ()

    def properties(self) -> list[Property]:
        """Each property once, though several models may check it (the
        election model checks raft's Election Safety)."""
        seen: dict[str, Property] = {}
        for model in self.models:
            for prop in model.properties:
                seen.setdefault(prop.name, prop)
        return list(seen.values())

    def model_with_mutant(self, mutant: str) -> Model | None:
        return next((m for m in self.models if mutant in m.mutants), None)

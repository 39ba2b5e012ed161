"""The catalog of checkable components: which machines make up each one, the
bounds they are checked at by default, and the properties they must keep.

A component (``store``, later ``apiserver``, ``cni`` …) is what a user names
on the command line; it is made of one or more *models*, each a machine
factory with its default bounds and properties. Engines iterate over models;
the CLI only looks names up here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from checker.z3engine import SymbolicCheck, symbolic_checks
from checker.errors import BadInput
from model.kernel import Machine
from model.store.election import Election
from model.store.mvcc import Mvcc
from model.store.raft import Raft
from properties import mvcc as mvcc_properties
from properties import raft as raft_properties
from properties.core import Property
from properties.symbolic import election as election_symbolic
from properties.symbolic import mvcc_txn as mvcc_symbolic


class UnknownName(BadInput, LookupError):
    """A component, mutant or property name the catalog does not know."""


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

    def machine(self, mutant: str | None = None, **overrides) -> Machine:
        bounds = dict(self.bounds)
        if mutant is not None:
            bounds.update(self.mutant_bounds.get(mutant, {}))
        bounds.update(overrides)
        return self.build(mutant=mutant, **bounds)

    def hypothesis_machine(self, mutant: str | None = None) -> Machine:
        bounds = {**self.bounds, **self.hypothesis_bounds}
        if mutant is not None:
            bounds.update(self.mutant_bounds.get(mutant, {}))
        return self.build(mutant=mutant, **bounds)

    @property
    def mutants(self):
        return self.build.mutants


@attrs.frozen
class Component:
    name: str
    summary: str
    models: tuple[Model, ...]
    #: the z3 engine's proof obligations (``checker.z3engine.SymbolicCheck``)
    symbolic: tuple[SymbolicCheck, ...] = ()

    def properties(self) -> list[Property]:
        return [p for m in self.models for p in m.properties]

    def model_with_mutant(self, mutant: str) -> Model | None:
        return next((m for m in self.models if mutant in m.mutants), None)


RAFT = Model(
    name="raft",
    build=Raft,
    # 3 servers, terms 1..3, one entry per log, one message in flight,
    # server symmetry on: about 2.3 million distinct states (see README).
    bounds={"servers": 3, "max_term": 3, "max_log": 1, "max_messages": 1, "symmetry": True},
    properties=raft_properties.PROPERTIES,
    hypothesis_bounds={"max_term": 4, "max_log": 2, "max_messages": 3, "symmetry": False},
    # Message loss and duplication play no part in these two bugs; switching
    # them off keeps the deeper searches they need to about a minute.
    mutant_bounds={
        "figure8_commit": {"max_term": 4, "faults": ("Restart",)},
        "no_consistency_check": {"max_log": 2, "faults": ("Restart",)},
    },
)

MVCC = Model(
    name="mvcc",
    build=Mvcc,
    # 2 keys, 2 values, revisions up to 5 (four writes after the initial
    # revision 1, compactions in between): 4,302 distinct states, ~87,000
    # transitions, about a second. Every mutant is caught at these bounds.
    bounds={"keys": 2, "values": 2, "max_revision": 5},
    properties=mvcc_properties.PROPERTIES,
    hypothesis_bounds={"keys": 3, "values": 3, "max_revision": 12},
)

ELECTION = Model(
    name="election",
    build=Election,
    # one term, 3 servers: 10,105 states, complete in under a second (two
    # terms exceed three million). Election Safety at 3 and 5 servers and
    # four terms is proved by the store's `symbolic` checks (z3 engine).
    bounds={"servers": 3, "max_term": 1},
    properties=election_symbolic.PROPERTIES,
    hypothesis_bounds={"max_term": 3},
)

COMPONENTS: dict[str, Component] = {
    "store": Component(
        "store",
        "raft log replication with an etcd-style MVCC key-value state machine",
        (RAFT, MVCC, ELECTION),
        symbolic=symbolic_checks("store", election_symbolic.OBLIGATIONS
                                 + mvcc_symbolic.OBLIGATIONS)),
}


def component(name: str) -> Component:
    try:
        return COMPONENTS[name]
    except KeyError:
        raise UnknownName(f"unknown component {name!r} "
                          f"(known: {', '.join(sorted(COMPONENTS))})") from None


def find_mutant(name: str) -> tuple[Component, Model]:
    for comp in COMPONENTS.values():
        model = comp.model_with_mutant(name)
        if model is not None:
            return comp, model
    known = sorted(m for c in COMPONENTS.values() for mod in c.models for m in mod.mutants)
    raise UnknownName(f"unknown mutant {name!r} (known: {', '.join(known)})")


def all_properties() -> list[Property]:
    return [p for c in COMPONENTS.values() for p in c.properties()]


def component_of(model: Model) -> Component:
    return next(c for c in COMPONENTS.values() if model in c.models)


def model_named(name: str) -> Model:
    for comp in COMPONENTS.values():
        for model in comp.models:
            if model.name == name:
                return model
    raise UnknownName(f"unknown model {name!r}")

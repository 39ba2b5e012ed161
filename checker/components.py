"""The registry of checkable components and the lookups the CLI and engines
use. A component is what a user names on the command line (``store``, later
``apiserver``, ``cni`` …); each is built in its own module of
``checker.catalog``, and this module only collects them.
"""

from __future__ import annotations

from checker.catalog import Component, Model
from checker.catalog import store
from checker.catalog import network
from checker.catalog import apiserver
from checker.catalog import informer
from checker.catalog import controllers
from checker.catalog import scheduler
from checker.catalog import cri
from checker.catalog import kubelet
from checker.errors import BadInput
from properties.core import Property

__all__ = ["COMPONENTS", "Component", "Model", "UnknownName", "component",
           "find_mutant", "all_properties", "component_of", "model_named"]


class UnknownName(BadInput, LookupError):
    """A component, mutant or property name the catalog does not know."""


COMPONENTS: dict[str, Component] = {
    c.name: c for c in (
        store.COMPONENT,
        network.CNI, network.PROXY,
        apiserver.COMPONENT,
        informer.COMPONENT,
        controllers.COMPONENT,
        scheduler.COMPONENT,
        cri.COMPONENT,
        kubelet.COMPONENT,
    )
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

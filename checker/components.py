"""The registry of checkable components, found rather than listed, and the
lookups the CLI and engines use.

A component is what a user names on the command line (``store``,
``apiserver``, ``cni`` …). Two places declare components, and this module
keeps no list of either:

* **built-ins** — every module of the ``checker.catalog`` package that
  defines ``COMPONENT`` (or ``COMPONENTS``, a tuple, for a module that
  declares several: ``network`` declares ``cni`` and ``proxy``), found with
  :mod:`pkgutil`. A module that defines neither is a helper of the others
  (``apiserver_access``) and contributes nothing.
* **installed** — every entry point of the group ``kubemc.components``
  (:data:`ENTRY_POINT_GROUP`) of an installed distribution, each naming a
  :class:`~checker.catalog.Component` (``examples/lock/pyproject.toml``
  registers one). So a component written outside this repository is added
  by installing it, without touching kubemc.

Why a broken declaration stops kubemc instead of being skipped: a catalog
module that does not import, or two components with one name, would
otherwise make ``kubemc check`` report "holds" over fewer components than
the user has — a silently missing component reads as a passing one. Both
raise :class:`CatalogError`, which the CLI reports as an internal error
(exit 70) naming the module or distribution at fault.

The order of the listing (``kubemc check``, ``properties``, ``mutants``):
the built-ins in :data:`LISTING_ORDER`, the order the architecture is read
in — the store first, the node last — then any built-in not named there,
then the installed components, each group by name. ``LISTING_ORDER`` is an
order only, not a registry: a component missing from it is still found.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from importlib import metadata
from types import ModuleType

import attrs

import kubemc.checker.catalog as checker_catalog
from kubemc.checker.catalog import Component, Model
from kubemc.checker.errors import BadInput
from kubemc.properties.core import Property

__all__ = ["COMPONENTS", "SOURCES", "BUILT_IN", "Component", "Model", "UnknownName",
           "CatalogError", "Found", "ENTRY_POINT_GROUP", "LISTING_ORDER", "discover",
           "built_in", "installed", "component", "find_mutant", "all_properties",
           "component_of", "model_named"]

#: the entry-point group through which a distribution adds components
ENTRY_POINT_GROUP = "kubemc.components"

#: the order in which built-in components are listed (see the module text)
LISTING_ORDER = ("store", "cni", "proxy", "apiserver", "informer", "controllers",
                 "scheduler", "cri", "kubelet", "cluster")


class UnknownName(BadInput, LookupError):
    """A component, mutant or property name the catalog does not know."""


class CatalogError(RuntimeError):
    """The catalog cannot be assembled: a declaration is broken. A bug of the
    code that declares the component, not of the user's input, so it is
    not a :class:`~checker.errors.KubemcError`: the CLI reports it as an
    internal error whose one line names the module or distribution."""


@attrs.frozen(slots=True)
class Found:
    """A component and where it was declared, so that an error can name
    the declaration a user must fix."""

    component: Component
    #: ``module checker.catalog.store`` or ``entry point lock =
    #: kubemc_lock.catalog:COMPONENT of kubemc-lock 0.1.0``
    source: str
    built_in: bool


def built_in(package: ModuleType = checker_catalog) -> list[Found]:
    """The components the modules of ``package`` declare, in module order."""
    found: list[Found] = []
    prefix = package.__name__ + "."
    for info in sorted(pkgutil.iter_modules(package.__path__, prefix), key=lambda i: i.name):
        try:
            module = importlib.import_module(info.name)
        except Exception as exc:
            raise CatalogError(f"catalog module {info.name} does not import "
                               f"({type(exc).__name__}: {exc}): fix it, or move it out of "
                               f"{package.__name__}") from exc
        for comp in declared(module):
            found.append(Found(comp, f"module {info.name}", True))
    return found


def declared(module: ModuleType) -> tuple[Component, ...]:
    """What a catalog module declares: ``COMPONENT``, ``COMPONENTS``, both or
    neither; anything else under those names is a broken declaration."""
    out: list[Component] = []
    if hasattr(module, "COMPONENT"):
        out.append(module.COMPONENT)
    many = getattr(module, "COMPONENTS", ())
    if not isinstance(many, (tuple, list)):
        raise CatalogError(f"{module.__name__}.COMPONENTS is a {type(many).__name__}, "
                           "not a tuple of Component")
    out += [c for c in many if not any(c is o for o in out)]
    for comp in out:
        if not isinstance(comp, Component):
            raise CatalogError(f"{module.__name__} declares an object of type "
                               f"{type(comp).__name__} as a component: COMPONENT must be "
                               "a kubemc.checker.catalog.Component")
    return tuple(out)


def installed(entry_points: Iterable[metadata.EntryPoint] | None = None) -> list[Found]:
    """The components installed distributions register under
    :data:`ENTRY_POINT_GROUP`, by entry-point name. Each entry point names a
    Component whose name is the entry point's (``lock = pkg.catalog:COMPONENT``)."""
    if entry_points is None:
        entry_points = metadata.entry_points(group=ENTRY_POINT_GROUP)
    found: list[Found] = []
    for ep in sorted(entry_points, key=lambda e: (e.name, e.value)):
        source = _entry_point_source(ep)
        try:
            comp = ep.load()
        except Exception as exc:
            raise CatalogError(f"{source} does not load ({type(exc).__name__}: {exc}): "
                               "fix or uninstall that distribution") from exc
        if not isinstance(comp, Component):
            raise CatalogError(f"{source} names an object of type {type(comp).__name__}, "
                               "not a kubemc.checker.catalog.Component")
        if comp.name != ep.name:
            raise CatalogError(f"{source} names component {comp.name!r}: the entry point "
                               "must carry the component's name")
        found.append(Found(comp, source, False))
    return found


def _entry_point_source(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    owner = f" of {dist.metadata['Name']} {dist.version}" if dist is not None else ""
    return f"entry point {ep.name} = {ep.value}{owner} (group {ENTRY_POINT_GROUP})"


def discover(package: ModuleType = checker_catalog,
             entry_points: Iterable[metadata.EntryPoint] | None = None) -> dict[str, Found]:
    """Every component, by name, in listing order. Two declarations of one
    name are refused, naming both."""
    by_name: dict[str, Found] = {}
    for found in built_in(package) + installed(entry_points):
        name = found.component.name
        other = by_name.get(name)
        if other is not None and other.component is not found.component:
            raise CatalogError(f"two components are named {name!r}: one from "
                               f"{other.source}, one from {found.source}; rename one")
        by_name.setdefault(name, found)
    return dict(sorted(by_name.items(), key=lambda item: _listing_key(item[1])))


def _listing_key(found: Found) -> tuple:
    name = found.component.name
    if not found.built_in:
        return (2, 0, name)
    if name in LISTING_ORDER:
        return (0, LISTING_ORDER.index(name), name)
    return (1, 0, name)


_FOUND = discover()
#: every component by name, in listing order
COMPONENTS: dict[str, Component] = {name: f.component for name, f in _FOUND.items()}
#: where each component was declared (see :class:`Found`)
SOURCES: dict[str, str] = {name: f.source for name, f in _FOUND.items()}
#: the components of this repository's catalog (not of installed distributions)
BUILT_IN: tuple[str, ...] = tuple(name for name, f in _FOUND.items() if f.built_in)


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

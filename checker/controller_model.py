"""A user's reconcile code as a catalog Model: loaded (``checker.usercode``),
its options resolved against the module's own defaults (``RESOURCE``,
``OWNS``, ``DESIRED``, ``CHILDREN``, ``WORLD``, ``INVARIANTS``, ``GOALS``),
and wrapped so that the engines build ``UserController`` machines from it
with the bounds of ``kubemc check-controller``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence

from kubemc.checker.catalog import Model
from kubemc.checker.errors import BadInput
from kubemc.model.controllers.usercontroller import BadReconcile, UserController
from kubemc.properties.controllers.usercontroller import COMPONENT, properties

#: Default bounds: every fault once, every listed edit of the desired object.
#: The correct example's whole state space at these bounds: 7,656 states, about 1 s.
BOUNDS = {"crashes": 1, "write_failures": 1, "resyncs": 1, "child_deletions": 1,
          "max_objects": 6}
#: Random runs go deeper: more of every fault.
HYPOTHESIS_BOUNDS = {"crashes": 3, "write_failures": 3, "resyncs": 2, "child_deletions": 2,
                     "max_objects": 8}
#: A bound past these would make one state (max_objects) or the run too big.
CEILINGS = {"crashes": 8, "write_failures": 8, "resyncs": 8, "child_deletions": 8,
            "max_objects": 32, "edits": 16, "world_changes": 8}

_KIND = re.compile(r"[A-Z][A-Za-z0-9]*\Z")


def user_model(target: str, resource: str | None, owns: str | None,
               invariants: Sequence[str], desired: str | None,
               children: str | None = None, goals: Sequence[str] = (),
               world: str | None = None) -> tuple[Model, str, str]:
    """The user's code loaded and checked, as a catalog Model whose machine
    runs it and whose properties are the built-in ones and the user's; with
    the two kinds, from the options or else the module's ``RESOURCE`` and
    ``OWNS``. The module's ``INVARIANTS`` and ``GOALS`` (names or functions
    of it) are checked as well as every ``--invariant`` and ``--goal``."""
    from kubemc.checker import usercode

    for option, kind in (("--resource", resource), ("--owns", owns)):
        if kind is not None:
            _kind(option, kind)
    reconcile, label, module = usercode.function(target, 2, "reconcile(desired, children)")
    module_label = label.rpartition(":")[0]
    resource = resource or _kind("--resource", _default(module, module_label, "RESOURCE"))
    owns = owns or _kind("--owns", _default(module, module_label, "OWNS"))
    versions = _value(desired, module, module_label, "DESIRED", "--desired",
                      "a list of the desired object's versions (the object as created, then "
                      "each edit a user applies)")
    kids = _value(children, module, module_label, "CHILDREN", "--children", "") \
        if children is not None or hasattr(module, "CHILDREN") else ()
    chosen: dict[str, Callable] = {}

    def predicates(attribute: str, given: Sequence[str]) -> tuple:
        out = {}
        for spec in [*_module_names(module, module_label, attribute), *given]:
            fn, lab, _ = usercode.function(spec, 2, "predicate(desired, children) -> bool",
                                           module, module_label)
            name = lab.rpartition(":")[2]
            if chosen.setdefault(name, fn) is not fn:
                raise BadInput(f"two predicates are named {name}: rename one")
            out[name] = fn  # the same function named twice is checked once
        return tuple(out.items())

    checked = predicates("INVARIANTS", invariants)
    wanted = predicates("GOALS", goals)
    both = {n for n, _ in checked} & {n for n, _ in wanted}
    if both:
        raise BadInput(f"{', '.join(sorted(both))} is given as an invariant and as a goal: "
                       "one property, one kind")
    props = properties(checked, wanted)
    others = None
    if world is not None or hasattr(module, "WORLD"):
        others = usercode.function(world or "WORLD", 1, "world(child) -> [child versions]",
                                   module, module_label)[0]
    build = functools.partial(_build, reconcile, resource=resource, owns=owns,
                              desired=versions, children=kids, world=others, label=label)
    # room for what the controller creates beyond the children it starts with
    bounds = {**BOUNDS, "max_objects": max(BOUNDS["max_objects"], len(kids) + 4)}
    deeper = {**HYPOTHESIS_BOUNDS,
              "max_objects": max(HYPOTHESIS_BOUNDS["max_objects"], len(kids) + 6)}
    if others is not None:
        bounds["world_changes"], deeper["world_changes"] = 1, 2
    return (Model(name=COMPONENT, build=build, bounds=bounds, properties=props,
                  hypothesis_bounds=deeper, ceilings=CEILINGS), resource, owns)


def _kind(option: str, kind) -> str:
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise BadInput(f"{option} {kind!r}: a kind is a name like ConfigMap or Pod")
    return kind


def _default(module, module_label: str, name: str):
    if not hasattr(module, name):
        option = "--resource" if name == "RESOURCE" else "--owns"
        raise BadInput(f"give {option} KIND (or define {name} = 'KIND' in {module_label})")
    return getattr(module, name)


def _module_names(module, module_label: str, attribute: str) -> list[str]:
    """The names in the module's ``INVARIANTS`` or ``GOALS``: strings, or
    its functions."""
    names = getattr(module, attribute, ())
    if isinstance(names, (str, bytes)) or not isinstance(names, (list, tuple)):
        raise BadInput(f"{module_label}: {attribute} must be a list of predicate names")
    out = []
    for item in names:
        name = item if isinstance(item, str) else getattr(item, "__name__", None)
        if not isinstance(name, str) or (not isinstance(item, str)
                                         and getattr(module, name, None) is not item):
            raise BadInput(f"{module_label}: {attribute} holds {item!r:.60}, neither a name "
                           "nor a function of the module")
        out.append(name)
    return out


def _build(reconcile, **kwargs) -> UserController:
    kwargs.pop("mutant", None)  # the catalog's Model passes it; a user's code has none
    try:
        return UserController(reconcile, **kwargs)
    except TypeError as exc:
        raise BadReconcile(f"bad bounds: {exc}") from None


def _value(spec: str | None, module, module_label: str, default: str, option: str,
           what: str):
    """The list ``spec`` names (``MODULE:NAME``, ``NAME`` in the reconcile's
    module, or the module's ``default``), called first if it is a function."""
    from kubemc.checker import usercode

    if spec is None:
        if not hasattr(module, default):
            raise BadInput(f"{module_label} defines no {default}: give {option} NAME, {what}")
        value, label = getattr(module, default), f"{module_label}:{default}"
    elif ":" in spec:
        path, name = usercode.split(spec, "MODULE:NAME")
        value, label = usercode.attribute(usercode.load_module(path), path, name), spec
    else:
        value, label = usercode.attribute(module, module_label, spec), f"{module_label}:{spec}"
    if callable(value):
        try:
            value = value()
        except Exception as exc:
            raise BadInput(f"{label}() raised {type(exc).__name__}: {exc}") from None
    return value

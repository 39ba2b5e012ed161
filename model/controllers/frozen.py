"""JSON-like user data (dicts, lists, strings, numbers) in a hashable form
that a state may hold, and back.

Why: a user's reconcile function reads and returns Kubernetes-shaped dicts,
while every engine hashes and compares states (``model.kernel``). A dict is
stored as a :class:`FrozenDict` — its items sorted by key —, a list as a
tuple and a boolean as a :class:`Flag`; :func:`thaw` gives back fresh dicts
and lists on every call, so user code that mutates what it was handed cannot
change a state behind the engines' back.
"""

from __future__ import annotations

import math
from typing import Any

#: leaf types JSON (and so a Kubernetes object) has
_LEAVES = (str, int, float, bool, type(None))


class NotJsonLike(ValueError):
    """A value holds something a Kubernetes object cannot (a set, an object,
    a dict key that is not a string)."""


class FrozenDict(tuple):
    """A dict frozen as its sorted ``(key, value)`` items.

    Equal only to another FrozenDict (a list of pairs is not a dict), with a
    hash that differs from the plain tuple's for the same reason."""

    __slots__ = ()

    def __eq__(self, other):
        return type(other) is FrozenDict and tuple.__eq__(self, other)

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash(("FrozenDict", tuple(self)))

    def get(self, key: str, default=None):
        for k, v in self:
            if k == key:
                return v
        return default


class Flag:
    """A JSON boolean in a state. Why not ``bool``: Python's ``True == 1``
    would make ``{"ready": true}`` and ``{"ready": 1}`` one state."""

    __slots__ = ("value",)

    def __init__(self, value: bool):
        self.value = value

    def __eq__(self, other):
        return type(other) is Flag and other.value is self.value

    def __hash__(self):
        return hash(("Flag", self.value))

    def __repr__(self):
        return "true" if self.value else "false"


TRUE, FALSE = Flag(True), Flag(False)


def freeze(value: Any, where: str = "value") -> Any:
    """``value`` (dicts with string keys, lists, JSON leaves) made hashable."""
    if isinstance(value, bool):
        return TRUE if value else FALSE
    if isinstance(value, float) and not math.isfinite(value):
        raise NotJsonLike(f"{where} is {value}, which JSON (and so a Kubernetes object) "
                          "cannot hold")
    if isinstance(value, _LEAVES):
        return value
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, str):
                raise NotJsonLike(f"{where} has a key {k!r} that is not a string")
        return FrozenDict(sorted((k, freeze(v, f"{where}.{k}")) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v, f"{where}[{i}]") for i, v in enumerate(value))
    raise NotJsonLike(f"{where} is a {type(value).__name__} ({_short(value)}), "
                      "which a Kubernetes object cannot hold (dicts, lists, strings, "
                      "numbers, booleans and null only)")


def thaw(value: Any) -> Any:
    """A fresh, mutable copy of a frozen value."""
    if isinstance(value, FrozenDict):
        return {k: thaw(v) for k, v in value}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    if isinstance(value, Flag):
        return value.value
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"

"""What changed between two states of an ITF trace, part by part.

The trace viewer highlights, for every step, the parts of the state that the
step changed. A whole-variable "before → after" hides the one field that
moved inside a record of twenty, so the diff descends: records and ``#map``s
key by key, sequences and tuples of the same length index by index, and
collections that grew or shrank (sets, message bags, event lists) as the
elements that came and went. Values are read in their ITF form, never
decoded, so a trace from another tool diffs as well as one of ours.
"""

from __future__ import annotations

import json
from typing import Any

#: how deep the diff descends before it reports a whole sub-value as changed
MAX_DEPTH = 12


def fmt(value: Any) -> str:
    """An ITF value as a reader writes it: ``(a, b)`` for tuples, ``{a, b}``
    for sets, ``{k ↦ v}`` for maps, ``{field: v}`` for records."""
    if isinstance(value, dict):
        if len(value) == 1 and "#tup" in value and isinstance(value["#tup"], list):
            return "(" + ", ".join(fmt(v) for v in value["#tup"]) + ")"
        if len(value) == 1 and "#set" in value and isinstance(value["#set"], list):
            return "{" + ", ".join(fmt(v) for v in value["#set"]) + "}"
        if len(value) == 1 and "#map" in value and isinstance(value["#map"], list):
            return "{" + ", ".join(f"{fmt(k)} ↦ {fmt(v)}" for k, v in _pairs(value)) + "}"
        if len(value) == 1 and "#bigint" in value:
            return str(value["#bigint"])
        if len(value) == 1 and "#unserializable" in value:
            return str(value["#unserializable"])
        return "{" + ", ".join(f"{k}: {fmt(v)}" for k, v in value.items() if k != "#meta") + "}"
    if isinstance(value, list):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "—"
    if value == "":
        return '""'        # an empty name must not read as nothing at all
    return str(value)


def _pairs(value: dict) -> list:
    return [p for p in value["#map"] if isinstance(p, list) and len(p) == 2]


def _key(value: Any) -> str:
    """A canonical text of a value: equal values, equal keys."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _tag(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1:
        tag = next(iter(value))
        if tag in ("#tup", "#set", "#map") and isinstance(value[tag], list):
            return tag
    return None


class Change:
    """One changed part: ``path`` names it from the variable down
    (``log[2]``, ``server.pods/a``, ``votesGranted[0] +1``); ``before`` and
    ``after`` are formatted text, ``None`` when the part came or went."""

    __slots__ = ("path", "before", "after")

    def __init__(self, path: str, before: str | None, after: str | None):
        self.path, self.before, self.after = path, before, after

    def __repr__(self) -> str:
        return f"Change({self.path!r}, {self.before!r}, {self.after!r})"

    @property
    def text(self) -> str:
        if self.before is None:
            return f"{self.path} + {self.after}"
        if self.after is None:
            return f"{self.path} − {self.before}"
        return f"{self.path}: {self.before} → {self.after}"


def diff(name: str, before: Any, after: Any, depth: int = 0, *,
         bag: bool = False) -> list[Change]:
    """The changed parts of variable ``name`` between two states (empty when
    equal). ``before`` is ``None`` for a variable that did not exist.
    ``bag``: the variable is a collection whose positions mean nothing (a
    network of messages in flight), so it changes by elements coming and
    going even when its length stays the same."""
    if _key(before) == _key(after):
        return []
    if before is None:
        return [Change(name, None, fmt(after))]
    if bag and isinstance(before, list) and isinstance(after, list):
        return _came_and_went(name, before, after)
    if bag and _tag(before) == _tag(after) and _tag(before) is not None:
        return _came_and_went(name, before[_tag(before)], after[_tag(after)])
    if depth >= MAX_DEPTH:
        return [Change(name, fmt(before), fmt(after))]
    tb, ta = _tag(before), _tag(after)
    if tb is not None and tb == ta:
        if tb == "#tup" and len(before["#tup"]) == len(after["#tup"]):
            return _indexed(name, before["#tup"], after["#tup"], depth)
        if tb == "#map":
            return _keyed(name, {_key(k): (k, v) for k, v in _pairs(before)},
                          {_key(k): (k, v) for k, v in _pairs(after)}, depth, brackets=True)
        return _came_and_went(name, before[tb], after[tb])
    if isinstance(before, list) and isinstance(after, list):
        if len(before) == len(after):
            return _indexed(name, before, after, depth)
        return _came_and_went(name, before, after)
    if isinstance(before, dict) and isinstance(after, dict) and tb is None and ta is None:
        return _keyed(name, {k: (k, v) for k, v in before.items() if k != "#meta"},
                      {k: (k, v) for k, v in after.items() if k != "#meta"}, depth,
                      brackets=False)
    return [Change(name, fmt(before), fmt(after))]


def _indexed(name, before, after, depth) -> list[Change]:
    out = []
    for i, (b, a) in enumerate(zip(before, after)):
        out += diff(f"{name}[{i}]", b, a, depth + 1)
    return out


def _keyed(name, before: dict, after: dict, depth: int, brackets: bool) -> list[Change]:
    out = []
    for key in list(before) + [k for k in after if k not in before]:
        label = fmt(before.get(key, after.get(key))[0])
        path = f"{name}[{label}]" if brackets else f"{name}.{label}"
        if key not in after:
            out.append(Change(path, fmt(before[key][1]), None))
        elif key not in before:
            out.append(Change(path, None, fmt(after[key][1])))
        else:
            out += diff(path, before[key][1], after[key][1], depth + 1)
    return out


def _came_and_went(name, before: list, after: list) -> list[Change]:
    """Elements removed and added, as multisets: a message sent twice and
    delivered once leaves one copy."""
    remaining = {}
    for v in after:
        remaining.setdefault(_key(v), []).append(v)
    gone = []
    for v in before:
        bucket = remaining.get(_key(v))
        if bucket:
            bucket.pop()
        else:
            gone.append(v)
    have = {}
    for v in before:
        have[_key(v)] = have.get(_key(v), 0) + 1
    new = []
    for v in after:
        k = _key(v)
        if have.get(k, 0):
            have[k] -= 1
        else:
            new.append(v)
    out = [Change(name, fmt(v), None) for v in gone] + [Change(name, None, fmt(v)) for v in new]
    return out or [Change(name, fmt(before), fmt(after))]

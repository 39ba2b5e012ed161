"""Bounds checked before a machine is built: type and ceiling of each one.

A model's bounds size every state it has, so a bound past reason does not
fail, it allocates until the machine runs out of memory (``servers=40``), or
never returns (``max_term=1e23``). The same bounds come from the command line
(``--bound``) and from a trace's ``#meta`` (``trace replay``), so both are
checked here, against the type the catalog gives the bound and a ceiling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kubemc.checker.errors import BadInput

#: The default ceiling of a bound is this many times the largest value the
#: catalog uses for it: room to explore beyond the defaults, no room to wedge.
FACTOR = 4
#: ...and never below this, so a bound whose catalog values are 0 or 1 can grow.
FLOOR = 4


def ceiling(key: str, values: Sequence[Any], ceilings: Mapping[str, int]) -> int:
    """The stated ceiling of ``key``, or the default rule over the catalog's
    values for it (integers, or the sizes of list bounds)."""
    if key in ceilings:
        return ceilings[key]
    sizes = [v if _is_int(v) else size(v) for v in values]
    return max(FLOOR, FACTOR * max(sizes, default=0))


def checked(model: str, bounds: Mapping[str, Any], reference: Mapping[str, Sequence[Any]],
            ceilings: Mapping[str, int]) -> dict[str, Any]:
    """``bounds`` with each value checked against the type of the catalog's
    values for that bound (``reference``) and against its ceiling."""
    out = {}
    for key, value in bounds.items():
        if key not in reference:
            raise BadInput(f"{model} has no bound {_show(key)} "
                           f"(its bounds: {', '.join(sorted(reference))})")
        values = reference[key]
        example = values[0]
        if isinstance(example, bool):
            if not isinstance(value, bool):
                raise BadInput(f"{model}: {key} is true or false, not {_show(value)}")
        elif _is_int(example):
            value = _whole(model, key, value, ceiling(key, values, ceilings))
        elif isinstance(example, (tuple, list)):
            value = _names(model, key, value, ceiling(key, values, ceilings))
        elif not isinstance(value, type(example)):
            raise BadInput(f"{model}: {key} takes a value like {_show(example)}, "
                           f"not {_show(value)}")
        out[key] = value
    return out


def _whole(model: str, key: str, value: Any, top: int) -> int:
    if not _is_int(value):
        raise BadInput(f"{model}: {key} takes a whole number from 0 to {top}, "
                       f"not {_show(value)}")
    if not 0 <= value <= top:
        raise BadInput(f"{model}: {key}={_show(value)} is outside 0..{top} (its ceiling: "
                       "past it one state alone could exhaust memory)")
    return value


def _names(model: str, key: str, value: Any, top: int) -> tuple:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, (tuple, list)):
        raise BadInput(f"{model}: {key} takes a comma-separated list, not {_show(value)}")
    n = size(value)
    if n > top:
        raise BadInput(f"{model}: {key} holds {n:,} items, above its ceiling of {top}")
    return tuple(value)


def size(value: Any) -> int:
    """How many items a nested list bound holds, counted without recursion
    limits (a trace may nest it deeply)."""
    count, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, (tuple, list, frozenset, set)):
            stack.extend(item)
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        else:
            count += 1
    return count


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _show(value: Any) -> str:
    text = repr(value) if not _is_int(value) or abs(value) < 10 ** 30 \
        else f"an integer of {len(str(abs(value)))} digits"
    return text if len(text) <= 60 else text[:57] + "…"

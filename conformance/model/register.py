"""A single read/write/compare-and-set register (Jepsen's ``cas-register``).

Operations (shapes in :mod:`conformance.history`): ``read`` → the value,
``write v``, ``cas [from, to]``. The register starts nil. A ``cas`` that
completes ``fail`` is read as etcd reports it — "Compare failed": the
operation observed a value other than ``from`` and changed nothing. This is
the reading under which the Jepsen etcd histories in ``shared/data`` get the
verdicts established for them; a cas failing for any other reason would be
recorded ``info`` (unknown) by a careful client, which is always sound.
"""

from __future__ import annotations

from typing import Any

from conformance.history import Operation
from conformance.model import Spec


class _Nil:
    """The register's value before any write (JSON ``null``)."""

    __slots__ = ()

    def __repr__(self):
        return "nil"

    def __reduce__(self):
        return "NIL"


NIL = _Nil()


def freeze(v: Any):
    """A JSON value as a hashable state component (``null`` → :data:`NIL`)."""
    if v is None:
        return NIL
    if isinstance(v, list):
        return tuple(freeze(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, freeze(x)) for k, x in v.items()))
    return v


def _cas_args(value):
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return freeze(value[0]), freeze(value[1])
    return None


class Register(Spec):
    name = "register"
    ops = frozenset({"read", "write", "cas"})
    read_only = frozenset({"read"})

    def init(self):
        return NIL

    def validate(self, op: Operation):
        why = super().validate(op)
        if why is None and op.f == "cas" and _cas_args(op.input) is None:
            why = f"cas expects [from, to], not {op.input!r}"
        return why

    def is_pure(self, op: Operation) -> bool:
        return (op.f == "read" and op.status == "ok") or (op.f == "cas" and op.status == "fail")

    def step(self, state, op: Operation):
        f, status = op.f, op.status
        if f == "read":
            if status == "ok":
                return state if state == freeze(op.output) else None
            return state
        if f == "write":
            if status == "fail":
                return state
            return freeze(op.input)
        if f == "cas":
            old, new = _cas_args(op.input)
            if status == "ok":
                return new if state == old else None
            if status == "fail":
                return state if state != old else None
            return new if state == old else state
        return None

    def prepare(self, op: Operation):
        f, status = op.f, op.status
        if status == "fail" and f != "cas":
            return None
        if f == "read":
            if status != "ok":
                return None
            want = freeze(op.output)
            return lambda s: s if s == want else None
        if f == "write":
            v = freeze(op.input)
            return lambda s: v
        if f == "cas":
            old, new = _cas_args(op.input)
            if status == "ok":
                return lambda s: new if s == old else None
            if status == "fail":
                return lambda s: s if s != old else None
            return lambda s: new if s == old else s
        return super().prepare(op)

    def describe(self, state):
        return None if state is NIL else state

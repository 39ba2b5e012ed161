"""A map of string keys to string values with get / put / append.

The model of the key-value histories of the porcupine checker's test data
(Athalye, porcupine, ``kv`` model): a missing key reads as ``""``, ``put``
replaces, ``append`` concatenates. Keys are independent objects, so the
checker partitions by key and the state of one partition is one string.
"""

from __future__ import annotations

from conformance.history import Operation
from conformance.model import Spec


def _s(v) -> str:
    return "" if v is None else str(v)


class KV(Spec):
    name = "kv"
    ops = frozenset({"get", "put", "append"})
    read_only = frozenset({"get"})

    def init(self):
        return ""

    def step(self, state, op: Operation):
        f, status = op.f, op.status
        if status == "fail":
            return state
        if f == "get":
            if status == "ok":
                return state if state == _s(op.output) else None
            return state
        if f == "put":
            return _s(op.input)
        if f == "append":
            return state + _s(op.input)
        return None

    def prepare(self, op: Operation):
        f, status = op.f, op.status
        if status == "fail" or (status == "info" and f == "get"):
            return None
        if f == "get":
            want = _s(op.output)
            return lambda s: s if s == want else None
        v = _s(op.input)
        if f == "put":
            return lambda s: v
        if f == "append":
            return lambda s: s + v
        return super().prepare(op)

"""A map of string keys to string values with get / put / append.

The model of the key-value histories of the porcupine checker's test data
(Athalye, porcupine, ``kv`` model): a missing key reads as ``""``, ``put``
replaces, ``append`` concatenates. Keys are independent objects, so the
checker partitions by key and the state of one partition is one string.
"""

from __future__ import annotations

import attrs

from kubemc.conformance.history import Operation
from kubemc.conformance.model.spec import Spec


def _delimited(values) -> bool:
    if not values or any(len(v) < 2 for v in values):
        return False
    a, b = values[0][0], values[0][-1]
    return a != b and all(v[0] == a and v[-1] == b and a not in v[1:-1] and b not in v[1:-1]
                          for v in values)


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

    def simplify(self, ops):
        """Decide unknown writes up front where written values are unique.

        A write nobody saw — no ``get`` output contains its value — is dropped:
        had it taken effect, every ``get`` until the next ``put`` would contain
        it, so it was overwritten unseen or came last, and removing it changes
        no observation. (Containment is by substring, which can only keep a
        write that might have been seen, never drop one that was.) And when the
        values are *delimited* — all of the form ``a…b`` with ``a`` and ``b``
        found nowhere inside any value, like porcupine's ``"x 0 1 y"`` — a value
        found in a ``get`` output can only be that write's doing, so an unknown
        write somebody saw took effect before the first ``get`` that saw it
        returned: it becomes a write with a known outcome returning then.
        """
        written = [_s(op.input) for op in ops if op.f in ("put", "append") and op.status != "fail"]
        if len(set(written)) != len(written):
            return ops
        seen = [(op.ret, _s(op.output)) for op in ops if op.f == "get" and op.status == "ok"]
        seen.sort()
        delimited = _delimited(written)
        out = []
        for op in ops:
            if op.status == "info" and op.f in ("put", "append"):
                v = _s(op.input)
                first = next((t for t, got in seen if v in got), None)
                if first is None:
                    continue
                if delimited and first > op.call:
                    op = attrs.evolve(op, status="ok", ret=first, output=v)
            out.append(op)
        return out

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

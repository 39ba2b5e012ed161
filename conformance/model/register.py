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

import attrs

from kubemc.conformance.history import Operation
from kubemc.conformance.model.spec import Spec


class _Nil:
    """The register's value before any write (JSON ``null``)."""

    __slots__ = ()

    def __repr__(self):
        return "nil"

    def __reduce__(self):
        return "NIL"


NIL = _Nil()


class _Unseen:
    """Every written value no read or compare ever saw (see :meth:`Register.compile`)."""

    __slots__ = ()

    def __repr__(self):
        return "unseen"

    def __reduce__(self):
        return "UNSEEN"


UNSEEN = _Unseen()


def freeze(v: Any):
    """A JSON value as a hashable state component (``null`` → :data:`NIL`)."""
    if v is None:
        return NIL
    if isinstance(v, list):
        return tuple(freeze(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, freeze(x)) for k, x in v.items()))
    return v


def _written(op: Operation):
    """The value ``op`` may write (frozen), or ``None`` if it writes none."""
    if op.f == "write" and op.status != "fail":
        return freeze(op.input)
    if op.f == "cas" and op.status != "fail" and _cas_args(op.input) is not None:
        return _cas_args(op.input)[1]
    return None


def _cas_args(value):
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return freeze(value[0]), freeze(value[1])
    return None


class Register(Spec):
    name = "register"
    ops = frozenset({"read", "write", "cas"})
    read_only = frozenset({"read"})
    #: Just-in-time placement of unknown outcomes is complete for a register:
    #: take a linearization and an ``info`` operation x that changes the state
    #: s, followed by y. If y could also follow from s: a pure y (read, failed
    #: cas) commutes with x; a write y overwrites x, so x can be dropped; an ok
    #: cas y needs one state and x changed it, so it cannot be enabled at both;
    #: an ``info`` y either depends on x or ignores its state (then drop y, a
    #: no-op) or overwrites it (drop x). Moving x later or dropping it keeps a
    #: linearization (x has no return), so some linearization places every x
    #: right before an operation it enables — the only places the search tries.
    info_just_in_time = True

    def init(self):
        return NIL

    def starts_from_any_state(self, ops: list[Operation]) -> list[Spec]:
        """The register from each of :func:`initial_values`."""
        return [_RegisterFrom(v) for v in initial_values(ops)]

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

    def simplify(self, ops):
        """Decide unknown writes up front where a written value is unique and was seen.

        A value written by one operation only (a write, or a cas's new value),
        other than nil, that a read returned or a successful cas compared
        against can only be there because that operation took effect — so an
        ``info`` write or cas whose value was seen took effect before the first
        such observation returned: it becomes one with a known outcome
        returning then (exactly the histories' linearizations: sound and
        complete). Jepsen and etcd's robustness tests decide unknown writes
        the same way where values are unique.
        """
        writers: dict = {}
        for op in ops:
            v = _written(op)
            if v is not None:
                writers[v] = writers.get(v, 0) + 1
        first: dict = {}
        for op in ops:
            if op.status != "ok":
                continue
            if op.f == "read":
                v = freeze(op.output)
            elif op.f == "cas" and _cas_args(op.input) is not None:
                v = _cas_args(op.input)[0]
            else:
                continue
            if op.ret < first.get(v, op.ret + 1):
                first[v] = op.ret
        out = []
        for op in ops:
            if op.status == "info":
                v = _written(op)
                t = first.get(v)
                if v is not None and v is not NIL and writers[v] == 1 and t is not None \
                        and t > op.call:
                    op = attrs.evolve(op, status="ok", ret=t, output=op.input)
            out.append(op)
        return out

    def compile(self, ops):
        """Transitions over an abstraction of the values: the unobserved ones are one value.

        Only a read's output and a cas's expected value are ever compared with
        the register; a value written but never among those (never seen) can
        only ever make such a comparison false, exactly as any other unseen
        value would. So all unseen values are one value here, :data:`UNSEEN` —
        an exact abstraction (every order of operations is a linearization
        with it iff it is one without), which makes unknown writes of unseen
        values twins, and states fewer.
        """
        value = self._abstraction(ops)
        out = []
        for op in ops:
            fn = self._transition(op, value)
            twin = None
            if op.ret is None and fn is not None:
                twin = (op.f, value(op.input)) if op.f == "write" else \
                    (op.f, _cas_args(op.input)[0], value(_cas_args(op.input)[1]))
            out.append((fn, twin))
        return out

    @staticmethod
    def _abstraction(ops):
        """The value map of :meth:`compile`: a value no read or compare saw is :data:`UNSEEN`."""
        seen = {NIL}
        for op in ops:
            if op.f == "read" and op.status == "ok":
                seen.add(freeze(op.output))
            elif op.f == "cas" and _cas_args(op.input) is not None:
                seen.add(_cas_args(op.input)[0])

        def value(v):
            v = freeze(v)
            return v if v in seen else UNSEEN
        return value

    def guards(self, ops):
        """What each operation's transition of :meth:`compile` (aligned with it) asks of
        the state and sets it to, for the checker's value index: ``(pre, post)``.

        The operation is possible where the register holds ``pre`` (``None``:
        anywhere) and sets it to ``post`` there (``None``: leaves it); an
        ``info`` compare, possible anywhere, leaves the register elsewhere (its
        ``pre`` is where it takes effect). ``None`` for a failed cas (possible
        wherever the register does *not* hold one value) and for operations
        :meth:`compile` drops.
        """
        value = self._abstraction(ops)
        out = []
        for op in ops:
            g = None
            f, status = op.f, op.status
            if status != "fail":
                if f == "write":
                    g = (None, value(op.input))
                elif f == "cas":
                    g = (_cas_args(op.input)[0], value(op.input[1]))
                elif f == "read" and status == "ok":
                    g = (freeze(op.output), None)
            out.append(g)
        return out

    def prepare(self, op: Operation):
        return self._transition(op, freeze)

    def _transition(self, op: Operation, value):
        f, status = op.f, op.status
        if status == "fail" and f != "cas":
            return None
        if f == "read":
            if status != "ok":
                return None
            want = freeze(op.output)
            return lambda s: s if s == want else None
        if f == "write":
            v = value(op.input)
            return lambda s: v
        if f == "cas":
            old, new = _cas_args(op.input)
            new = value(op.input[1])
            if status == "ok":
                return lambda s: new if s == old else None
            if status == "fail":
                return lambda s: s if s != old else None
            return lambda s: new if s == old else s
        return Spec.prepare(self, op)

    def describe(self, state):
        return None if state is NIL else state


class _Fresh:
    """A value no operation mentions: what any such initial value looks like."""

    def __repr__(self):
        return "?"


class _RegisterFrom(Register):
    """The register, starting from a given value instead of nil."""

    def __init__(self, initial):
        self._initial = initial

    def init(self):
        return self._initial


def initial_values(ops) -> list:
    """Nil, every value ``ops`` mention, and one they do not: the starting values
    that behave differently for them (any other looks like the fresh one)."""
    seen = {NIL}
    for op in ops:
        for v in (op.input if op.f == "cas" and isinstance(op.input, list) else [op.input]):
            seen.add(freeze(v))
        if op.f == "read" and op.status == "ok":
            seen.add(freeze(op.output))
    return sorted(seen, key=repr) + [_Fresh()]

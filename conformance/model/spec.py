"""Sequential specifications that histories are checked against.

A specification is the sequential object a linearizable history must be
explainable by (Herlihy & Wing, "Linearizability: a correctness condition for
concurrent objects", TOPLAS 1990). Each is a :class:`Spec`:

``init()``
    the initial state (hashable, cheap to hash: the checker memoizes on it);
``step(state, op)``
    the state after ``op`` takes effect from ``state`` with the output the
    history recorded, or ``None`` if that output is impossible from ``state``.
    For an ``info`` operation the output is unknown, and ``step`` accepts any;
``partition_key(op)``
    the object ``op`` acts on. Histories are checked one object at a time:
    a history is linearizable iff each object's sub-history is (Herlihy and
    Wing's locality; Horn and Kroening, "Faster linearizability checking via
    P-compositionality", FORTE 2015);
``prepare(op)`` / ``compile(ops)``
    the checker's hot path: ``op``'s transition as a function of the state
    alone (``step`` with the operation's fields bound once), or ``None`` when
    the operation has no effect and observed nothing — a ``fail`` (Jepsen: it
    definitely did not happen), or an ``info`` read (it may have happened, but
    a read changes nothing and its result is unknown).

Specifications are registered by name in
:data:`conformance.model.specs.SPECS`; a JSONL history names its model in
``#meta``, other formats are recognised by their operations
(:func:`conformance.importers.infer_model`).

Each specification module defines one subclass; :mod:`conformance.model.specs`
names them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from typing import Any

from kubemc.conformance.history import Operation

State = Hashable
Transition = Callable[[State], "State | None"]


class Spec:
    """Base class: override ``init`` and ``step``; ``prepare`` for speed."""

    name = ""
    #: operation names that never change the state (their ``info`` form is dropped)
    read_only: frozenset[str] = frozenset()
    #: operation names this model knows
    ops: frozenset[str] = frozenset()
    #: the checker caches each operation's transition per state (worth it when a
    #: transition costs more than a dict lookup, as running the MVCC oracle does)
    memoize_transitions = False
    #: an ``info`` operation need only be placed right before an operation it
    #: enables (see :class:`conformance.model.register.Register`); a model sets
    #: this only with the argument that no linearization is lost
    info_just_in_time = False

    def init(self) -> State:
        raise NotImplementedError

    def step(self, state: State, op: Operation) -> State | None:
        raise NotImplementedError

    def partition_key(self, op: Operation) -> Hashable:
        return op.key

    def prepare(self, op: Operation) -> Transition | None:
        if op.status == "fail" or (op.status == "info" and op.f in self.read_only):
            return None
        step = self.step
        return lambda state: step(state, op)

    def compile(self, ops: list[Operation]) -> list[tuple[Transition | None, Hashable]]:
        """One partition's operations as ``(transition, twin key)`` pairs for the search.

        The default is :meth:`prepare` and :meth:`twin_key` of each operation;
        a model overrides it when seeing the whole partition lets it abstract
        what no operation can tell apart (the register's unobserved values).
        """
        return [(self.prepare(op), self.twin_key(op) if op.ret is None else None) for op in ops]

    def is_pure(self, op: Operation) -> bool:
        """``op`` never changes the state where it is possible (a read, a failed compare).

        The checker linearizes such an operation as soon as it is possible and
        tries no alternative to it (moving it earlier breaks no linearization):
        answer ``True`` only if that holds for every state.
        """
        return op.status == "ok" and op.f in self.read_only

    def twin_key(self, op: Operation) -> Hashable:
        """A key equal for two ``info`` operations of a partition only if their
        transitions are the same function (the checker then uses the older first).

        The default, ``f`` and the input, fits every model whose transition of
        an ``info`` operation depends on nothing else.
        """
        return (op.f, json.dumps(op.input, sort_keys=True, default=repr))

    def validate(self, op: Operation) -> str | None:
        """Why ``op`` is not an operation of this model, or ``None`` if it is."""
        if op.f not in self.ops:
            return f"{self.name} has no operation {op.f!r} (known: {', '.join(sorted(self.ops))})"
        return None

    def describe(self, state: State) -> Any:
        """The state as a JSON-able value, for reports and traces."""
        return state

    def simplify(self, ops: list[Operation]) -> list[Operation]:
        """One partition's operations, made cheaper to search without changing the verdict.

        The search is exponential in the number of ``info`` operations pending
        at once (each may take effect at any later point, or never). Where
        written values are unique, a model can often decide part of that up
        front — as etcd's robustness tests and Jepsen do — e.g. an unknown write
        whose value some read returned certainly took effect before that read
        returned. The default changes nothing. An override must keep exactly
        the linearizations' existence (sound and complete).
        """
        return ops

    def starts_from_any_state(self, ops: list[Operation]) -> list[Spec]:
        """Specifications that together stand for every state ``ops`` may begin in.

        A failing window cut from the middle of a history
        (:mod:`conformance.validate.window`) is judged from each, and kept
        only if it fails from all: then it fails whatever came before it. The
        default is none, and such a model's windows are never cut at the front.
        """
        return []

    def global_violation(self, ops: list[Operation]):
        """A violation visible across partitions, or ``None``.

        The default has none; ``etcd-kv`` checks that its global revisions
        respect real time (see :mod:`conformance.model.etcd`). Returns a pair
        ``(message, [operations])``.
        """
        return None

"""Refinement by simulation: every step of a machine, seen through an
abstraction, is a step its specification allows or a stutter — and,
conversely, every move the specification requires is one the machine can
make (after stuttering internal steps).

Why a check of its own: an invariant judges states and a transition property
judges one step against a rule written for that machine. A refinement check
judges a machine against a *specification shared with other machines*, so
two independent implementations of one contract (the apiserver's watch and
the informer's server, ``model.listwatch``) are shown to have the same
behaviours rather than each being checked against a restatement of its own.

How: a breadth-first search over the machine's reachable states (its own
``init_states`` and ``successors``, at whatever bounds it was built with).
Three functions, written by the caller, describe the abstraction:

* ``label(before, step, after)`` — what the step is as the specification
  sees it (a hashable label), or ``None`` for a stutter: a step the
  specification does not observe (a write, a cache catching up, a pop);
* ``allowed(state)`` — every label the specification allows from the
  abstraction of ``state``;
* ``required(state)`` — the specification's moves the machine must be able
  to make from ``state``: groups of labels, each group met when the machine
  offers at least one of its labels from ``state`` or from a state reached
  from it by stutters only.

Direction one (every step is allowed) is checked on every transition as the
search meets it, so the mismatch reported is at the smallest depth and its
path is a shortest one. Direction two (every required move is offered) needs
the whole stutter graph, so it is checked after the search, in breadth-first
order, when the search was complete.

A ``ghost`` — ``(init(state), update(ghost, before, step, after))`` — adds
observational state the abstraction needs and the machine does not keep
(the apiserver test keeps every store record ever written, since the store
compacts records its watch caches still serve). The search then runs over
``(state, ghost)`` pairs, and ``label``, ``allowed`` and ``required`` see
those pairs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable
from typing import Any

import attrs

from kubemc.model.kernel import Step

#: the two ways a refinement fails
UNMATCHED_STEP = "unmatched step"
MISSING_MOVE = "missing move"


@attrs.frozen
class Mismatch:
    """The first place the machine and its specification part."""

    kind: str  # UNMATCHED_STEP or MISSING_MOVE
    path: tuple  # the steps from an initial state to ``state``
    state: Any
    #: the machine's step not allowed (UNMATCHED_STEP), or None
    step: Step | None
    #: the step's label (UNMATCHED_STEP), or the group of the specification's
    #: moves none of which is offered (MISSING_MOVE)
    label: Any
    #: what the specification allows there (UNMATCHED_STEP), or what the
    #: machine offers there and after its stutters (MISSING_MOVE)
    context: tuple

    def describe(self) -> str:
        lines = [f"{self.kind} after {len(self.path)} step(s):"]
        lines += [f"  {i + 1}. {s}" for i, s in enumerate(self.path)]
        if self.kind == UNMATCHED_STEP:
            lines.append(f"  then {self.step}, seen as {self.label!r}")
            lines.append("  the specification allows only: "
                         + (", ".join(map(repr, self.context)) or "nothing"))
        else:
            lines.append("  the specification requires one of: "
                         + ", ".join(map(repr, self.label)))
            lines.append("  the machine offers (directly or after stutters): "
                         + (", ".join(map(repr, self.context)) or "nothing"))
        return "\n".join(lines)


@attrs.frozen
class Report:
    states: int
    transitions: int
    seconds: float
    #: every reachable state was expanded (direction two is checked only then)
    complete: bool
    mismatch: Mismatch | None = None

    @property
    def ok(self) -> bool:
        return self.complete and self.mismatch is None


def check(machine, label: Callable[[Any, Step, Any], Hashable | None],
          allowed: Callable[[Any], Iterable[Hashable]],
          required: Callable[[Any], Iterable[Iterable[Hashable]]] | None = None, *,
          ghost: tuple[Callable, Callable] | None = None,
          max_states: int | None = None) -> Report:
    """Search ``machine`` (anything with ``init_states()`` and
    ``successors(state)``) and judge it against the specification the three
    functions describe (see the module docstring). Returns at the first
    mismatch."""
    t0 = time.monotonic()
    init: Callable | None = None
    update: Callable = _keep
    if ghost is not None:
        init, update = ghost
    ids: dict = {}
    nodes: list = []
    parent: list[tuple[int, Step] | None] = []
    stutters: list[list[int]] = []
    offered: list[set] = []
    needs: list[tuple] = []
    transitions = 0

    def add(node, via) -> int:
        i = ids.get(node)
        if i is None:
            i = ids[node] = len(nodes)
            nodes.append(node)
            parent.append(via)
            stutters.append([])
            offered.append(set())
        return i

    def path_to(i: int) -> tuple:
        steps = []
        via = parent[i]
        while via is not None:
            i, s = via
            steps.append(s)
            via = parent[i]
        return tuple(reversed(steps))

    def report(complete, mismatch=None) -> Report:
        return Report(len(nodes), transitions, time.monotonic() - t0, complete, mismatch)

    for s in machine.init_states():
        add((s, init(s)) if init is not None else s, None)
    i = 0
    complete = True
    while i < len(nodes):
        if max_states is not None and len(nodes) > max_states:
            complete = False
            break
        node = nodes[i]
        state = node[0] if init is not None else node
        permitted = None
        needs.append(tuple(frozenset(g) for g in required(node)) if required else ())
        for step, nxt in machine.successors(state):
            transitions += 1
            nxt_node = (nxt, update(node[1], state, step, nxt)) if init is not None else nxt
            seen = label(node, step, nxt_node)
            j = add(nxt_node, (i, step))
            if seen is None:
                stutters[i].append(j)
                continue
            if permitted is None:
                permitted = frozenset(allowed(node))
            if seen not in permitted:
                return report(False, Mismatch(UNMATCHED_STEP, path_to(i), state, step, seen,
                                              tuple(sorted(permitted, key=repr))))
            offered[i].add(seen)
        i += 1
    if not complete:
        return report(False)
    for i, groups in enumerate(needs):
        for group in groups:
            if group & offered[i]:
                continue
            reach = _offered_after_stutters(i, stutters, offered)
            if not group & reach:
                node = nodes[i]
                state = node[0] if init is not None else node
                return report(True, Mismatch(MISSING_MOVE, path_to(i), state, None,
                                             tuple(sorted(group, key=repr)),
                                             tuple(sorted(reach, key=repr))))
    return report(True)


def _keep(ghost, *_):
    """The ghost update of a search without a ghost (never called)."""
    return ghost


def _offered_after_stutters(start: int, stutters: list, offered: list) -> set:
    """Every label offered from ``start`` or from a state it reaches by
    stutters alone."""
    seen, todo, out = {start}, [start], set()
    while todo:
        i = todo.pop()
        out |= offered[i]
        for j in stutters[i]:
            if j not in seen:
                seen.add(j)
                todo.append(j)
    return out

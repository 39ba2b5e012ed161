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

How: the explore engine's breadth-first search over the machine's reachable
states (its own ``init_states`` and ``successors``, at whatever bounds it was
built with), walked through its visitor hooks — searching is explore's
(docs/layers.md); this module keeps only what is asked of each state and
step. Three functions, written by the caller, describe the abstraction:

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

from collections.abc import Callable, Hashable, Iterable
from typing import Any

import attrs

from kubemc.checker.explore import Explorer
from kubemc.model.kernel import Machine, Step

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


class _Searched(Machine):
    """The machine as the explorer searches it: its own states, or ``(state,
    ghost)`` pairs when the abstraction needs a ghost. No symmetry (the
    identity ``canonical``): a label is read from the very states it names."""

    name = "refinement"

    def __init__(self, inner, ghost):
        super().__init__(None)
        self.inner, self.ghost = inner, ghost

    def init_states(self):
        for s in self.inner.init_states():
            yield s if self.ghost is None else (s, self.ghost[0](s))

    def successors(self, state):
        if self.ghost is None:
            yield from self.inner.successors(state)
            return
        s, g = state
        update = self.ghost[1]
        for step, t in self.inner.successors(s):
            yield step, (t, update(g, s, step, t))

    def within_bounds(self, state):
        within = getattr(self.inner, "within_bounds", None)
        return within is None or within(state if self.ghost is None else state[0])


def check(machine, label: Callable[[Any, Step, Any], Hashable | None],
          allowed: Callable[[Any], Iterable[Hashable]],
          required: Callable[[Any], Iterable[Iterable[Hashable]]] | None = None, *,
          ghost: tuple[Callable, Callable] | None = None,
          max_states: int | None = None) -> Report:
    """Search ``machine`` (anything with ``init_states()`` and
    ``successors(state)``) with the explore engine's visitor hooks and judge
    it against the specification the three functions describe (see the
    module docstring). Returns at the first mismatch."""
    searched = _Searched(machine, ghost)
    offered: dict[int, set] = {}
    stutters: dict[int, list[int]] = {}
    needs: list[tuple[Any, tuple]] = []
    found: list[Mismatch] = []
    permitted: list = [None, frozenset()]  # (fingerprint, allowed) of the state expanded
    expanded: list = [None, 0]  # (state, fingerprint) of the state expanded

    def inner(node):
        return node if ghost is None else node[0]

    def path(node) -> tuple:
        return tuple(step for step, _ in explorer.path_to(node)[1])

    def visit(node):
        if required is not None:
            groups = tuple(frozenset(g) for g in required(node))
            if groups:
                needs.append((node, groups))
        return False

    def visit_step(node, step, nxt):
        seen = label(node, step, nxt)
        if expanded[0] is not node:  # the explorer hands over one state's steps in a row
            expanded[:] = [node, hash(node)]
        fp = expanded[1]
        if seen is None:
            stutters.setdefault(fp, []).append(hash(nxt))
            return False
        if permitted[0] != fp:
            permitted[:] = [fp, frozenset(allowed(node))]
        if seen not in permitted[1]:
            found.append(Mismatch(UNMATCHED_STEP, path(node), inner(node), step, seen,
                                  tuple(sorted(permitted[1], key=repr))))
            return True
        offered.setdefault(fp, set()).add(seen)
        return False

    explorer = Explorer(searched, [], max_states=max_states, visit=visit, visit_step=visit_step)
    outcome = explorer.run()
    stats = outcome.stats

    def report(complete, mismatch=None) -> Report:
        return Report(stats.states, stats.transitions, stats.seconds, complete, mismatch)

    if found:
        return report(False, found[0])
    if not outcome.complete:
        return report(False)
    for node, groups in needs:
        fp = hash(node)
        for group in groups:
            if group & offered.get(fp, set()):
                continue
            reach = _offered_after_stutters(fp, stutters, offered)
            if not group & reach:
                return report(True, Mismatch(MISSING_MOVE, path(node), inner(node), None,
                                             tuple(sorted(group, key=repr)),
                                             tuple(sorted(reach, key=repr))))
    return report(True)


def _offered_after_stutters(start: int, stutters: dict, offered: dict) -> set:
    """Every label offered from ``start`` or from a state it reaches by
    stutters alone (states by fingerprint)."""
    seen, todo, out = {start}, [start], set()
    while todo:
        i = todo.pop()
        out |= offered.get(i, set())
        for j in stutters.get(i, ()):
            if j not in seen:
                seen.add(j)
                todo.append(j)
    return out

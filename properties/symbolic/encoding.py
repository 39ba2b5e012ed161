"""Symbolic encodings: a machine's states and transition relation as Z3 formulas.

The z3 engine (``checker.z3engine``) runs bounded model checking and
k-induction over an :class:`Encoding`; every component that wants symbolic
checks (the store today; apiserver, CNI, kube-proxy later) writes one
``Encoding`` subclass per machine, next to its properties, and lists what it
proves as :class:`Obligation` records. This module holds only the interface
and the machinery shared by all encodings; it imports ``model`` and nothing
of ``checker`` (DESIGN.md: imports go one way).

How an encoding is written
--------------------------
A symbolic state is a :class:`SymState`: a dict from *keys* (tuples such as
``("term", 2)``) to Z3 constants. An encoding declares

* ``variables()`` — the state variables, each a :class:`Var` (a Bool, or an
  Int with an inclusive range: the range is the encoding's *domain*, the
  type invariant every engine assumes of every state);
* ``actions()`` — grounded :class:`Action` instances, one per executable
  :class:`~model.kernel.Step` (``Timeout(0)``, ``Timeout(1)``, …). An action
  has a guard and an *effect*: the new value of each variable it changes
  (everything else is unchanged). An action may also have symbolic
  *inputs* (a txn's compares, say) when grounding them all would be absurd;
  :meth:`Action.to_step` turns their values in a model back into a Step;
* ``init(S)``, ``properties`` (name -> :class:`SymProperty`, each mirroring
  an executable :class:`~properties.core.Property`) and ``lemmas`` (the named
  conjuncts of the inductive strengthening);
* ``values(state)`` / ``state_of(values)`` — the bijection between
  executable states and variable assignments (on the domain);
* optionally ``domain(S)``, extended with the well-formedness of the state
  representation when ranges alone do not capture it (the MVCC store's
  "no record above the current revision"), and ``apply(state, step)`` when
  decoded steps replay on something other than ``machine.apply``.

From these the base class derives everything the engine needs: ``declare``,
``domain``, ``trans`` (a disjunction over actions, selected by an integer
*action selector* carried by the successor state so a model decodes into a
named Step), ``strengthening``, ``decode``, ``decode_step``, ``equals`` (a
state as a formula) and ``holds`` (evaluate any symbolic predicate on an
executable state — which is how the differential tests compare the two
worlds, and how lemmas become executable checks).

The transition relation is built once per pair of states as a *functional
update*: each variable's next value is a case split on the selector over
the actions that write it, defaulting to its old value. That keeps the
formula linear in (actions + variables) instead of their product.

Stutter steps. Most machines disable a step that changes nothing
(``model.store.raft``, ``model.store.election``); their encodings keep the
default ``stutters = False`` and ``trans`` adds ``S' != S``. A machine that
keeps such steps as self-loops (``model.store.mvcc``) sets ``stutters =
True``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import z3

from kubemc.model.kernel import Machine, State, Step
from kubemc.properties.core import Property

Key = tuple


@attrs.frozen
class Var:
    """A state variable: a Bool (``lo is None``) or an Int in ``[lo, hi]``."""

    key: Key
    lo: int | None = None
    hi: int | None = None

    @property
    def is_bool(self) -> bool:
        return self.lo is None

    def const(self, name: str):
        return z3.Bool(name) if self.is_bool else z3.Int(name)

    def in_domain(self, expr):
        if self.is_bool:
            return z3.BoolVal(True)
        return z3.And(expr >= self.lo, expr <= self.hi)

    def literal(self, value):
        return z3.BoolVal(bool(value)) if self.is_bool else z3.IntVal(int(value))


class SymState(dict):
    """State variables by key, plus the selector and inputs of the step that
    led *into* this state (unused on an initial state)."""

    def __init__(self, prefix: str, values: Mapping[Key, Any], action, inputs):
        super().__init__(values)
        self.prefix = prefix
        self.action = action          # z3 Int: index into Encoding.actions()
        self.inputs = inputs          # {(action index, input key): z3 const}


@attrs.frozen
class Action:
    """One grounded action instance.

    ``guard(S, I)`` and ``effect(S, I)`` receive the current state and the
    action's inputs ``I`` (input key -> z3 const; empty for most actions);
    ``effect`` returns {variable key: new value} for the variables it writes.
    ``to_step(values)`` builds the Step from the inputs' values in a model;
    by default ``Step(name, params)``.
    """

    name: str
    params: tuple
    guard: Callable
    effect: Callable
    inputs: tuple[Var, ...] = ()
    to_step: Callable[[Mapping[Key, Any]], Step] | None = None

    def step(self, values: Mapping[Key, Any] | None = None) -> Step:
        if self.to_step is not None:
            return self.to_step(values or {})
        return Step(self.name, self.params)


@attrs.frozen
class SymProperty:
    """The symbolic twin of an executable property.

    ``pred(S)`` for an invariant; ``pred(S, S2)`` for a transition property
    (the step is ``S2.action`` and its inputs). ``prop`` is the executable
    :class:`~properties.core.Property` a counterexample is reported against,
    and the one the engine re-checks on the replayed trace.
    """

    prop: Property
    pred: Callable

    @property
    def name(self) -> str:
        return self.prop.name

    @property
    def kind(self) -> str:
        return self.prop.kind


@attrs.frozen
class Obligation:
    """Something an encoding proves, as the catalog lists it.

    ``method`` is ``"induction"`` (k-induction of an invariant with the
    encoding's lemmas, ``k`` = ``k``) or ``"step"`` (a transition property
    proved for every step from every state of the domain: 1-induction with
    no strengthening). ``mutant_depth`` bounds the BMC run that must find a
    counterexample when a mutant of the machine is named.
    """

    name: str
    model: str
    prop: str
    proves: str
    encoding: Callable[..., "Encoding"]  # encoding(mutant=None) -> Encoding
    method: str = "induction"
    k: int = 1
    mutant_depth: int = 12
    mutant_encoding: Callable[..., "Encoding"] | None = None


class Encoding:
    """Base class of every symbolic encoding (see the module docstring)."""

    #: the model / machine name the encoding mirrors (catalog, traces)
    name: str = ""
    #: True when the machine keeps steps that change nothing as self-loops
    stutters: bool = False
    #: the Z3 logic engines ask for: "QF_FD" (finite domains: Bools and
    #: bounded Ints, bit-blasted to SAT) is an order of magnitude faster than
    #: the default solver on these unrollings; None means z3.Solver()
    logic: str | None = "QF_FD"

    def __init__(self, machine: Machine | None):
        self.machine = machine
        self._actions: list[Action] | None = None
        self._vars: list[Var] | None = None
        self._eval: tuple | None = None
        self._formulas: dict = {}
        self._index: dict | None = None

    # -- what every encoding defines -----------------------------------------
    def variables(self) -> Sequence[Var]:
        raise NotImplementedError

    def build_actions(self) -> Sequence[Action]:
        raise NotImplementedError

    def init(self, S: SymState):
        raise NotImplementedError

    def values(self, state: State) -> Mapping[Key, Any]:
        raise NotImplementedError

    def state_of(self, values: Mapping[Key, Any]) -> State:
        raise NotImplementedError

    #: name -> SymProperty (set per instance, in ``__init__``)
    properties: Mapping[str, SymProperty] = {}
    #: name -> (S -> BoolRef): the named conjuncts of the inductive
    #: strengthening (set per instance; empty for "step" obligations)
    lemmas: Mapping[str, Callable] = {}

    def apply(self, state: State, step: Step) -> State | None:
        """The executable step a decoded Step is replayed with."""
        return self.machine.apply(state, step)

    # -- derived ----------------------------------------------------------------
    def vars(self) -> list[Var]:
        if self._vars is None:
            self._vars = list(self.variables())
        return self._vars

    def actions(self) -> list[Action]:
        if self._actions is None:
            self._actions = list(self.build_actions())
        return self._actions

    def declare(self, prefix: str) -> SymState:
        values = {v.key: v.const(prefix + _name(v.key)) for v in self.vars()}
        inputs = {}
        for k, a in enumerate(self.actions()):
            for inp in a.inputs:
                inputs[(k, inp.key)] = inp.const(f"{prefix}in{k}_{_name(inp.key)}")
        return SymState(prefix, values, z3.Int(prefix + "action"), inputs)

    def domain(self, S: SymState):
        """The type invariant: every variable in its declared range."""
        return z3.And([v.in_domain(S[v.key]) for v in self.vars() if not v.is_bool])

    def strengthening(self, S: SymState):
        return z3.And([lemma(S) for lemma in self.lemmas.values()])

    def inputs_of(self, S2: SymState, k: int) -> dict:
        return {inp.key: S2.inputs[(k, inp.key)] for inp in self.actions()[k].inputs}

    def guard(self, S: SymState, S2: SymState, k: int):
        """Action k is enabled in S with the inputs S2 carries."""
        return self.actions()[k].guard(S, self.inputs_of(S2, k))

    def trans(self, S: SymState, S2: SymState):
        """One step from S to S2, by the action S2.action selects."""
        sel = S2.action
        actions = self.actions()
        updates: dict[Key, list] = {}
        enabled = []
        for k, a in enumerate(actions):
            enabled.append(z3.And(sel == k, self.guard(S, S2, k)))
            for key, value in a.effect(S, self.inputs_of(S2, k)).items():
                updates.setdefault(key, []).append((k, value))
        conds = [sel >= 0, sel < len(actions), z3.Or(enabled)]
        # every input in its range, selected or not: finite-domain solvers
        # need a bound on every integer
        conds += [inp.in_domain(S2.inputs[(k, inp.key)])
                  for k, a in enumerate(actions) for inp in a.inputs if not inp.is_bool]
        for v in self.vars():
            nxt = S[v.key]
            for k, value in reversed(updates.get(v.key, [])):
                nxt = z3.If(sel == k, value, nxt)
            conds.append(S2[v.key] == nxt)
        if not self.stutters:
            conds.append(z3.Not(self.same(S, S2)))
        return z3.And(conds)

    def same(self, S: SymState, S2: SymState):
        return z3.And([S[v.key] == S2[v.key] for v in self.vars()])

    def equals(self, S: SymState, state: State):
        """S is the executable ``state``."""
        vals = self.values(state)
        return z3.And([S[v.key] == v.literal(vals[v.key]) for v in self.vars()])

    def decode(self, model: z3.ModelRef, S: SymState) -> State:
        return self.state_of({v.key: _py(model.eval(S[v.key], model_completion=True))
                              for v in self.vars()})

    def decode_step(self, model: z3.ModelRef, S: SymState, S2: SymState) -> Step:
        k = model.eval(S2.action, model_completion=True).as_long()
        a = self.actions()[k]
        values = {inp.key: _py(model.eval(S2.inputs[(k, inp.key)], model_completion=True))
                  for inp in a.inputs}
        return a.step(values)

    def action_index(self, step: Step) -> int | None:
        """The grounded action of an executable step, if it has no inputs."""
        if self._index is None:
            self._index = {(a.name, a.params): k for k, a in enumerate(self.actions())
                           if not a.inputs}
        return self._index.get((step.name, tuple(step.params)))

    # -- evaluation on executable states ----------------------------------------
    def holds(self, pred: Callable, *states: State) -> bool:
        """Evaluate a symbolic predicate on executable state(s) by substitution.

        For two states the predicate gets (S, S2) with S2.action unconstrained
        — so only use it for predicates that do not read the step.
        """
        syms = self._eval_states(len(states))
        subst = []
        for S, state in zip(syms, states):
            vals = self.values(state)
            subst += [(S[v.key], v.literal(vals[v.key])) for v in self.vars()]
        cache = self._formulas
        key = (id(pred), len(states))
        if key not in cache:
            cache[key] = (pred, pred(*syms))  # keep pred alive: its id stays unique
        out = z3.simplify(z3.substitute(cache[key][1], *subst))
        if z3.is_true(out):
            return True
        if z3.is_false(out):
            return False
        raise ValueError(f"predicate does not evaluate to a constant: {out}")

    def _eval_states(self, n: int):
        if self._eval is None or len(self._eval) < n:
            self._eval = tuple(self.declare(f"__eval{i}_") for i in range(max(n, 2)))
            self._formulas.clear()  # cached formulas speak of the old constants
        return self._eval[:n]


def _name(key: Key) -> str:
    return "_".join(str(x) for x in key)


def _py(value):
    if z3.is_true(value):
        return True
    if z3.is_false(value):
        return False
    return value.as_long()


def count(bools: Sequence, at_least: int):
    """At least ``at_least`` of ``bools`` hold (a pseudo-Boolean constraint)."""
    return z3.PbGe([(b, 1) for b in bools], at_least)


__all__ = ["Action", "Encoding", "Key", "Obligation", "SymProperty", "SymState", "Var",
           "count"]

"""The z3 engine: bounded model checking and k-induction over symbolic encodings.

An encoding (``properties.symbolic.Encoding``) gives a machine's states and
transition relation as Z3 formulas. This module runs the two classic
procedures over it:

* :func:`bmc` — unroll the transition relation from the initial states one
  step at a time (Biere, Cimatti, Clarke & Zhu, "Symbolic model checking
  without BDDs", TACAS 1999) and ask Z3 for a violation at each depth, so
  the first counterexample found is a shortest one;
* :func:`k_induction` — the base case (no violation in the first ``k``
  states, by BMC) and the inductive step (``k`` consecutive states that
  satisfy the property and the strengthening are followed by one that does
  too) of Sheeran, Singh & Stålmarck, "Checking safety properties using
  induction and a SAT-solver" (FMCAD 2000). With ``k = 1`` and the
  encoding's lemmas this is the familiar "the invariant is inductive" check
  of TLAPS / Ivy proofs. A model of the negated step is a
  *counterexample to induction* (CTI): states, possibly unreachable, in
  which the claimed invariant holds and from which one step breaks it —
  reported with the names of the conjuncts that break.

Trust but verify: every counterexample from the initial states is decoded
into executable states and Steps, and replayed on the executable machine
(``apply`` of each step must give exactly the decoded next state; the last
state must violate the executable property). A disagreement raises
:class:`EncodingMismatch` — it means the encoding and the machine have
drifted apart, and no verdict can be trusted until they agree again.

:class:`SymbolicCheck` is what the catalog lists and ``kubemc check --engine
z3`` runs: a named proof obligation with a ``run(mutant=None)``. Without a
mutant it proves; with one it runs BMC on the mutant encoding and must find
a counterexample.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import z3

from kubemc.checker.counterexample import Counterexample
from kubemc.properties.core import INVARIANT, TRANSITION, Property
from kubemc.properties.symbolic import Encoding, Obligation, SymProperty

#: verdicts
PROVED = "proved"                  # k-induction: base case and step hold
VIOLATED = "violated"              # a reachable state violates the property
BASE_VIOLATION = "base-case violation"  # a reachable state violates a lemma
CTI = "counterexample to induction"
NOT_FOUND = "no counterexample"    # bmc: none up to the depth
UNKNOWN = "unknown"                # the solver gave up (timeout, incompleteness)
VACUOUS = "vacuous"                # no initial state, or an unsatisfiable inductive premise


class EncodingMismatch(AssertionError):
    """A decoded symbolic trace does not replay on the executable machine."""


@attrs.frozen
class InductionCounterexample:
    """States ``s0 … sk`` and the steps between them, decoded from a model of
    the inductive step: the claimed invariant holds in ``s0 … s(k-1)``, the
    ``failing`` conjuncts (the property's name and/or lemma names) are false
    in ``sk``. ``replays`` says whether the machine's own ``apply`` agrees
    with each decoded step (it should, on any state of the domain)."""

    states: tuple
    steps: tuple
    failing: tuple[str, ...]
    replays: bool


@attrs.frozen
class Z3Outcome:
    check: str
    prop: str
    method: str           # "bmc" | "k-induction" | "smt" (a constraint problem)
    verdict: str
    bound: int            # bmc depth reached, or k
    seconds: float
    counterexample: Counterexample | None = None
    cti: InductionCounterexample | None = None
    detail: str = ""
    #: the executable machine the encoding mirrors (bounds and mutant as run):
    #: what a trace of ``counterexample`` is written and replayed against
    machine: Any = attrs.field(default=None, repr=False, eq=False)

    @property
    def holds(self) -> bool:
        return self.verdict in (PROVED, NOT_FOUND)

    def summary(self) -> str:
        bound = {"bmc": "depth", "k-induction": "k"}.get(
            self.method, "steps" if self.counterexample is not None else "instances")
        head = f"{self.check}: {self.prop} {self.verdict} ({self.method}, " \
               f"{bound}={self.bound}, {self.seconds:.2f}s)"
        return head + (f": {self.detail}" if self.detail else "")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _solver(timeout_ms: int | None, logic: str | None):
    s = z3.SolverFor(logic) if logic else z3.Solver()
    if timeout_ms:
        s.set("timeout", timeout_ms)
    return s


def _logic(encoding: Encoding, logic):
    """The logic to ask for: the encoding's, unless its formulas use an
    operation the finite-domain solver does not translate."""
    if logic != "auto":
        return logic
    if encoding.logic == "QF_FD" and not fd_safe(encoding):
        return None
    return encoding.logic


# Z3's QF_FD solver bit-blasts bounded integers, but an operation it does not
# translate is left as an unconstrained term — silently: with x in [0, 7],
# ``x % 2 == 0 ∧ x == 5`` is *sat* under QF_FD (seen with z3-solver 5.4). So the fast
# solver is used only on formulas built from the operations below, which it
# translates exactly (linear arithmetic over bounded ints, cardinality
# constraints, Boolean structure); anything else goes to z3.Solver().
_FD_OPS = {
    z3.Z3_OP_TRUE, z3.Z3_OP_FALSE, z3.Z3_OP_EQ, z3.Z3_OP_DISTINCT, z3.Z3_OP_ITE,
    z3.Z3_OP_AND, z3.Z3_OP_OR, z3.Z3_OP_IFF, z3.Z3_OP_XOR, z3.Z3_OP_NOT, z3.Z3_OP_IMPLIES,
    z3.Z3_OP_ANUM, z3.Z3_OP_LE, z3.Z3_OP_GE, z3.Z3_OP_LT, z3.Z3_OP_GT, z3.Z3_OP_ADD,
    z3.Z3_OP_SUB, z3.Z3_OP_UMINUS, z3.Z3_OP_PB_GE, z3.Z3_OP_PB_LE, z3.Z3_OP_PB_EQ,
    z3.Z3_OP_PB_AT_MOST, z3.Z3_OP_PB_AT_LEAST, z3.Z3_OP_UNINTERPRETED,
}


def fd_safe(encoding: Encoding) -> bool:
    """Whether every formula of the encoding stays within ``_FD_OPS``
    (multiplication only by a numeral; uninterpreted symbols only as
    constants). Computed once per encoding instance."""
    cached = getattr(encoding, "_fd_safe", None)
    if cached is not None:
        return cached
    S, S2 = encoding.declare("fdA_"), encoding.declare("fdB_")
    roots = [encoding.init(S), encoding.domain(S), encoding.trans(S, S2)]
    roots += [lemma(S) for lemma in encoding.lemmas.values()]
    for sp in encoding.properties.values():
        roots.append(sp.pred(S) if sp.kind == INVARIANT else sp.pred(S, S2))
    ok = _only_fd_ops(roots)
    encoding._fd_safe = ok
    return ok


def _only_fd_ops(roots) -> bool:
    seen = set()
    stack = list(roots)
    while stack:
        e = stack.pop()
        i = e.get_id()
        if i in seen:
            continue
        seen.add(i)
        if z3.is_quantifier(e) or not z3.is_app(e):
            return False
        kind = e.decl().kind()
        children = e.children()
        if kind == z3.Z3_OP_MUL:
            if sum(1 for c in children if not z3.is_int_value(c)) > 1:
                return False
        elif kind not in _FD_OPS:
            return False
        elif kind == z3.Z3_OP_UNINTERPRETED and children:
            return False
        if not (z3.is_bool(e) or z3.is_int(e)):
            return False
        stack.extend(children)
    return True


def _retry_unknown(run, logic):
    """Run with the fast finite-domain solver; if it answers unknown for a
    reason other than the time limit, run again with the general solver."""
    result = run(logic)
    if result.verdict == UNKNOWN and logic and "timeout" not in result.detail \
            and "canceled" not in result.detail:
        result = run(None)
    return result


def _sym_property(encoding: Encoding, prop: str | SymProperty) -> SymProperty:
    if isinstance(prop, SymProperty):
        return _checkable(prop)
    try:
        return _checkable(encoding.properties[prop])
    except KeyError:
        raise KeyError(f"{encoding.name} has no symbolic property {prop!r} "
                       f"(known: {', '.join(sorted(encoding.properties))})") from None


def _checkable(sp: SymProperty) -> SymProperty:
    """BMC and k-induction decide invariants and transition properties only:
    any other kind (liveness, covers) is refused in one line rather than read
    as a transition property (``checker.liveness`` decides liveness)."""
    if sp.kind not in (INVARIANT, TRANSITION):
        from kubemc.checker.errors import BadInput
        raise BadInput(f"the z3 engine cannot check {sp.kind} property {sp.name}: it has "
                       "no checker for that kind; use --engine explore or hypothesis")
    return sp


def _holds_at(sp: SymProperty, states: Sequence, i: int):
    """The property on state i (invariant) or on the step into state i."""
    if sp.kind == INVARIANT:
        return sp.pred(states[i])
    if i == 0:
        return z3.BoolVal(True)
    return sp.pred(states[i - 1], states[i])


def _result(encoding, name, sp, method, verdict, bound, seconds, **kw) -> Z3Outcome:
    return Z3Outcome(name, sp.name, method, verdict, bound, seconds, machine=encoding.machine, **kw)


def _lemma_property(encoding: Encoding, name: str) -> Property:
    """An executable stand-in for a lemma, so a base-case violation of the
    strengthening can be reported and replayed like any counterexample."""
    lemma = encoding.lemmas[name]
    return Property(f"lemma:{name}", getattr(encoding.machine, "name", encoding.name) or "-",
                    INVARIANT, f"strengthening lemma {name} of the {encoding.name} encoding",
                    f"properties.symbolic ({type(encoding).__module__})",
                    lambda m, s: encoding.holds(lemma, s))


def decode_trace(encoding: Encoding, model, states) -> tuple:
    """The executable states and steps of a model of an unrolling."""
    decoded = [encoding.decode(model, S) for S in states]
    steps = [encoding.decode_step(model, states[i], states[i + 1])
             for i in range(len(states) - 1)]
    return decoded, steps


def replay(encoding: Encoding, cex: Counterexample) -> None:
    """Re-execute a counterexample decoded from ``encoding`` on the executable
    machine; raise :class:`EncodingMismatch` on any disagreement."""
    confirm(encoding.machine, cex, encoding.name, apply=encoding.apply)


def confirm(machine, cex: Counterexample, name: str, *, apply=None) -> None:
    """Trust but verify any solver's counterexample: the initial state must be
    one of the machine's, every step must give exactly the recorded state, and
    the last step must violate the property on the machine. Every z3 check
    calls this before it reports a violation, so a verdict never rests on the
    encoding alone."""
    apply = apply or machine.apply
    if machine is not None and hasattr(machine, "init_states"):
        inits = list(machine.init_states())
        if cex.init not in inits:
            raise EncodingMismatch(f"{name}: decoded initial state {cex.init!r} "
                                   "is not an initial state of the machine")
    cur = cex.init
    for n, (step, expected) in enumerate(cex.steps, 1):
        got = apply(cur, step)
        if got != expected:
            raise EncodingMismatch(
                f"{name}: step {n} {step} from {cur!r} gives {got!r} on the "
                f"machine but {expected!r} in the encoding")
        cur = got
    prop = cex.prop
    if prop.kind == INVARIANT:  # lemma stand-ins are invariants too
        ok = prop.check(machine, cur)
    else:
        before = cex.steps[-2][1] if len(cex.steps) > 1 else cex.init
        ok = prop.check(machine, before, cex.steps[-1][0], cur) if cex.steps else True
    if ok:
        raise EncodingMismatch(f"{name}: the replayed trace does not violate "
                               f"{prop.name} on the machine")


# ---------------------------------------------------------------------------
# BMC
# ---------------------------------------------------------------------------


_NO_INIT = ("no initial state satisfies init and the domain: a search from them would "
            "pass without looking at anything")


def _bmc_search(encoding: Encoding, bad: Callable, depth: int, timeout_ms, logic,
                prefix="b"):
    """Shortest i <= depth with init ∧ trans^i ∧ bad(states, i); returns
    (i, model, states) or (None, reason, depth reached)."""
    s = _solver(timeout_ms, logic)
    states = [encoding.declare(f"{prefix}0_")]
    s.add(encoding.domain(states[0]), encoding.init(states[0]))
    # vacuity: with no initial state, "no counterexample" would mean nothing
    if s.check() == z3.unsat:
        return None, VACUOUS, 0
    for i in range(depth + 1):
        if i > 0:
            states.append(encoding.declare(f"{prefix}{i}_"))
            s.add(encoding.domain(states[i]), encoding.trans(states[i - 1], states[i]))
        s.push()
        s.add(bad(states, i))
        r = s.check()
        if r == z3.sat:
            return i, s.model(), states[:i + 1]
        if r == z3.unknown:
            return None, s.reason_unknown() or "unknown", i
        s.pop()
    return None, None, depth


def bmc(encoding: Encoding, prop: str | SymProperty, depth: int, *,
        check: str | None = None, timeout_ms: int | None = None,
        logic: str | None = "auto") -> Z3Outcome:
    """Bounded model checking of ``prop`` from the initial states, up to
    ``depth`` steps. On a violation the Z3Outcome carries a replayed
    Counterexample (a shortest one)."""
    return _retry_unknown(lambda lg: _bmc(encoding, prop, depth, check, timeout_ms, lg),
                          _logic(encoding, logic))


def _bmc(encoding, prop, depth, check, timeout_ms, logic) -> Z3Outcome:
    sp = _sym_property(encoding, prop)
    start = time.perf_counter()
    found, model, states = _bmc_search(
        encoding, lambda st, i: z3.Not(_holds_at(sp, st, i)), depth, timeout_ms, logic)
    seconds = time.perf_counter() - start
    name = check or f"{encoding.name}:{sp.name}"
    if model == VACUOUS:
        return _result(encoding, name, sp, "bmc", VACUOUS, 0, seconds, detail=_NO_INIT)
    if found is None:
        if model is not None:
            return _result(encoding, name, sp, "bmc", UNKNOWN, states, seconds, detail=str(model))
        return _result(encoding, name, sp, "bmc", NOT_FOUND, depth, seconds,
                       detail=f"no violation within {depth} steps of an initial state")
    decoded, steps = decode_trace(encoding, model, states)
    cex = Counterexample(sp.prop, decoded[0], tuple(zip(steps, decoded[1:])))
    replay(encoding, cex)
    return _result(encoding, name, sp, "bmc", VIOLATED, found, seconds, counterexample=cex,
                   detail=f"counterexample of {found} steps, replayed on the machine")


# ---------------------------------------------------------------------------
# k-induction
# ---------------------------------------------------------------------------


def k_induction(encoding: Encoding, prop: str | SymProperty, k: int = 1, *,
                lemmas: bool = True, simple_path: bool = False,
                check: str | None = None, timeout_ms: int | None = None,
                logic: str | None = "auto") -> Z3Outcome:
    """Prove ``prop`` by k-induction, strengthened by the encoding's lemmas
    (``lemmas=False``: by the property alone).

    Base case: BMC of the property and every lemma to depth ``k - 1``. A
    violation of the property is a real counterexample (VIOLATED); of a
    lemma only, a sign the strengthening is wrong (BASE_VIOLATION, with the
    trace). Inductive step: ``k`` states satisfying domain, property and
    lemmas, linked by ``trans``, followed by a state where one of them
    fails; UNSAT proves the claim. ``simple_path`` adds pairwise distinctness
    of the k+1 states (makes k-induction complete for finite systems, at a
    quadratic cost).
    """
    if k < 1:
        raise ValueError("k-induction needs k >= 1")
    return _retry_unknown(
        lambda lg: _k_induction(encoding, prop, k, lemmas, simple_path, check, timeout_ms, lg),
        _logic(encoding, logic))


def _k_induction(encoding, prop, k, lemmas, simple_path, check, timeout_ms, logic) -> Z3Outcome:
    sp = _sym_property(encoding, prop)
    name = check or f"{encoding.name}:{sp.name}"
    named = {sp.name: (lambda st, i: _holds_at(sp, st, i))}
    if lemmas:
        for lname, lemma in encoding.lemmas.items():
            named[lname] = (lambda st, i, lemma=lemma: lemma(st[i]))
    start = time.perf_counter()

    # base case: the property first (a real violation is what matters),
    # then the lemmas (a violation there only shows the strengthening wrong)
    def bad(st, i):
        return z3.Not(z3.And([c(st, i) for c in named.values()]))
    for attempt, goal in (("property", named[sp.name]), ("lemmas", None)):
        if goal is None and len(named) == 1:
            break
        test = (lambda st, i, goal=goal: z3.Not(goal(st, i))) if goal else bad
        found, model, states = _bmc_search(encoding, test, k - 1, timeout_ms, logic,
                                           prefix="base")
        if model == VACUOUS:
            return _result(encoding, name, sp, "k-induction", VACUOUS, k,
                           time.perf_counter() - start, detail=_NO_INIT)
        if found is not None:
            decoded, steps = decode_trace(encoding, model, states)
            failing = [n for n, c in named.items()
                       if z3.is_false(model.eval(c(states, found), model_completion=True))]
            if sp.name in failing:
                cex = Counterexample(sp.prop, decoded[0], tuple(zip(steps, decoded[1:])))
                verdict = VIOLATED
            else:
                cex = Counterexample(_lemma_property(encoding, failing[0]), decoded[0],
                                     tuple(zip(steps, decoded[1:])))
                verdict = BASE_VIOLATION
            replay(encoding, cex)
            return _result(encoding, name, sp, "k-induction", verdict, k,
                           time.perf_counter() - start, counterexample=cex,
                           detail=f"base case: {', '.join(failing)} fail after {found} steps")
        if model is not None:
            return _result(encoding, name, sp, "k-induction", UNKNOWN, k,
                           time.perf_counter() - start, detail=f"base case ({attempt}): {model}")

    # inductive step
    s = _solver(timeout_ms, logic)
    st = [encoding.declare(f"ind{i}_") for i in range(k + 1)]
    for i in range(k + 1):
        s.add(encoding.domain(st[i]))
        if i > 0:
            s.add(encoding.trans(st[i - 1], st[i]))
    for i in range(k):
        s.add(z3.And([c(st, i) for c in named.values()]))
    if simple_path:
        for a in range(k + 1):
            for b in range(a + 1, k + 1):
                s.add(z3.Not(encoding.same(st[a], st[b])))
    # vacuity: the premise alone must have a model, or "proved" means nothing
    premise = s.check()
    if premise != z3.sat:
        verdict = UNKNOWN if premise == z3.unknown else VACUOUS
        return _result(encoding, name, sp, "k-induction", verdict, k,
                       time.perf_counter() - start,
                       detail="inductive step: no k steps satisfy the premise at all "
                              "(the transition relation or the lemmas are unsatisfiable)")
    s.add(bad(st, k))
    r = s.check()
    seconds = time.perf_counter() - start
    if r == z3.unsat:
        what = "property and lemmas are" if lemmas and encoding.lemmas else "property is"
        return _result(encoding, name, sp, "k-induction", PROVED, k, seconds,
                       detail=f"{what} {k}-inductive; base case holds")
    if r == z3.unknown:
        return _result(encoding, name, sp, "k-induction", UNKNOWN, k, seconds,
                       detail=f"inductive step: {s.reason_unknown()}")
    model = s.model()
    decoded, steps = decode_trace(encoding, model, st)
    failing = tuple(n for n, c in named.items()
                    if z3.is_false(model.eval(c(st, k), model_completion=True)))
    replays = all(_safe_apply(encoding, decoded[i], steps[i]) == decoded[i + 1]
                  for i in range(k))
    cti = InductionCounterexample(tuple(decoded), tuple(steps), failing, replays)
    return _result(encoding, name, sp, "k-induction", CTI, k, seconds, cti=cti,
                   detail=f"step {steps[-1]} breaks {', '.join(failing)}")


def _safe_apply(encoding, state, step):
    try:
        return encoding.apply(state, step)
    except Exception:  # an unreachable CTI state the machine cannot represent
        return None


# ---------------------------------------------------------------------------
# The catalog's view: named checks
# ---------------------------------------------------------------------------


@attrs.frozen
class SymbolicCheck:
    """One symbolic check of a component, as ``kubemc`` lists and runs it."""

    name: str
    component: str
    model: str
    prop: str
    proves: str
    run: Callable[..., Z3Outcome] = attrs.field(repr=False)  # run(mutant=None)
    mutants: tuple[str, ...] = ()  # the machine's mutants that violate prop


def run_obligation(ob: Obligation, mutant: str | None = None, *,
                   timeout_ms: int | None = None) -> Z3Outcome:
    """Prove an obligation, or — given a mutant — find its counterexample."""
    if mutant is None:
        enc = ob.encoding()
        if ob.method == "induction":
            return k_induction(enc, ob.prop, ob.k, check=ob.name, timeout_ms=timeout_ms)
        if ob.method == "step":
            return k_induction(enc, ob.prop, 1, lemmas=False, check=ob.name,
                               timeout_ms=timeout_ms)
        raise ValueError(f"{ob.name}: unknown method {ob.method!r}")
    factory = ob.mutant_encoding or ob.encoding
    enc = factory(mutant=mutant)  # UnknownMutant for a name the machine lacks
    return bmc(enc, ob.prop, ob.mutant_depth, check=f"{ob.name}[{mutant}]",
               timeout_ms=timeout_ms)


def symbolic_checks(component: str, obligations: Sequence[Obligation]) -> tuple:
    """The SymbolicCheck records of a component's obligations."""
    out = []
    for ob in obligations:
        mutants = ()
        machine_cls = _machine_class(ob)
        if machine_cls is not None:
            mutants = tuple(n for n, m in machine_cls.mutants.items() if m.violates == ob.prop)

        def run(mutant=None, *, timeout_ms=None, ob=ob):
            return run_obligation(ob, mutant, timeout_ms=timeout_ms)
        out.append(SymbolicCheck(ob.name, component, ob.model, ob.prop, ob.proves, run,
                                 mutants))
    return tuple(out)


def run_checks(checks: Sequence[SymbolicCheck], mutant: str | None = None) -> list[Z3Outcome]:
    """Run a component's symbolic checks: all of them as proofs, or — given a
    mutant — the ones whose property that mutant is meant to violate (each
    must then come back VIOLATED with a replayed counterexample)."""
    if mutant is None:
        return [c.run() for c in checks]
    return [c.run(mutant) for c in checks if mutant in c.mutants]


def _machine_class(ob: Obligation):
    """The machine class whose mutants an obligation's BMC runs on (building
    an encoding builds no formula: actions are made on first use)."""
    machine = (ob.mutant_encoding or ob.encoding)().machine
    return None if machine is None else type(machine)





# ---------------------------------------------------------------------------
# Differential checking: the encoding against the executable machine
# ---------------------------------------------------------------------------


class Differential:
    """Compare an encoding's transition relation with executable successors,
    one state at a time (the tests of every encoding use this).

    ``check(state, successors)`` returns a list of disagreements (empty when
    the two agree): an executable successor that ``trans`` does not allow
    (with the selector fixed to the step's action when the step is a
    grounded action, so the *named* step must match too), or a symbolic
    successor of ``state`` that is none of the executable ones.
    """

    def __init__(self, encoding: Encoding, logic: str | None = "auto"):
        self.encoding = encoding
        self.S = encoding.declare("dS_")
        self.S2 = encoding.declare("dT_")
        self.solver = _solver(None, _logic(encoding, logic))
        self.solver.add(encoding.domain(self.S), encoding.domain(self.S2),
                        encoding.trans(self.S, self.S2))

    def check(self, state, successors) -> list[str]:
        enc, S, S2, s = self.encoding, self.S, self.S2, self.solver
        problems = []
        s.push()
        s.add(enc.equals(S, state))
        targets = []
        for step, nxt in successors:
            target = enc.equals(S2, nxt)
            targets.append(target)
            k = enc.action_index(step)
            s.push()
            s.add(target)
            if k is not None:
                s.add(S2.action == k)
            r = s.check()
            if r == z3.unknown:
                raise RuntimeError(f"solver gave up: {s.reason_unknown()}")
            if r == z3.unsat:
                problems.append(f"from {state!r}: executable step {step} -> {nxt!r} "
                                "is not a symbolic step")
            s.pop()
        s.push()
        s.add(z3.Not(z3.Or(targets)) if targets else z3.BoolVal(True))
        r = s.check()
        if r == z3.unknown:
            raise RuntimeError(f"solver gave up: {s.reason_unknown()}")
        if r == z3.sat:
            model = s.model()
            extra = enc.decode(model, S2)
            step = enc.decode_step(model, S, S2)
            problems.append(f"from {state!r}: symbolic step {step} -> {extra!r} "
                            "is not an executable step")
        s.pop()
        s.pop()
        return problems

    def check_step(self, state, k: int, inputs, expected) -> list[str]:
        """Action ``k`` with the given input values from ``state``: exactly
        ``expected`` (``None``: the action must be disabled). For actions
        with symbolic inputs, where successors cannot be enumerated."""
        enc, S, S2, s = self.encoding, self.S, self.S2, self.solver
        a = enc.actions()[k]
        by_key = {inp.key: inp for inp in a.inputs}
        fixed = [S2.inputs[(k, key)] == by_key[key].literal(v) for key, v in inputs.items()]
        s.push()
        s.add(enc.equals(S, state), S2.action == k, *fixed)
        problems = []
        if expected is None:
            if s.check() != z3.unsat:
                problems.append(f"from {state!r}: {a.name} {inputs} is disabled on the "
                                f"machine but enabled symbolically")
        else:
            s.push()
            s.add(enc.equals(S2, expected))
            if s.check() != z3.sat:
                problems.append(f"from {state!r}: {a.name} {inputs} -> {expected!r} on the "
                                "machine is not a symbolic step")
            s.pop()
            s.add(z3.Not(enc.equals(S2, expected)))
            if s.check() != z3.unsat:
                other = enc.decode(s.model(), S2)
                problems.append(f"from {state!r}: {a.name} {inputs} -> {other!r} "
                                f"symbolically, {expected!r} on the machine")
        s.pop()
        return problems


__all__ = ["BASE_VIOLATION", "CTI", "Differential", "EncodingMismatch",
           "InductionCounterexample", "NOT_FOUND", "PROVED", "Z3Outcome", "SymbolicCheck",
           "UNKNOWN", "VACUOUS", "VIOLATED",
           "bmc", "decode_trace", "fd_safe", "k_induction", "replay", "run_checks",
           "run_obligation", "symbolic_checks"]

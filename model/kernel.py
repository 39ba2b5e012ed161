"""How a component is written as an executable state machine.

A machine is its initial states, the steps it can take from a state, and a
next-state function — nothing more (the shape of Stateright's ``Model``).
Properties live in the ``properties`` package and engines in ``checker``; a
machine knows neither.

Why states are plain nested tuples of ints and strings: every engine hashes
and compares millions of them, and ``hash`` of a small tuple is the cheapest
fingerprint CPython offers (``kubemc bench kernel-state`` measures tuples
against attrs instances and dicts). Machines that want named fields expose
them through :meth:`Machine.view`, which is used for traces and display only,
never on the hot path.

Worked example — a lock that clients acquire and release, with a mutant that
forgets to check the holder. Each action is declared once, on its handler:
its name, its tag, and which parameters to propose in a state; the kernel
derives ``tags``, ``steps`` and ``apply`` from the declarations, and checks,
when the class is created, that the mutant names the code compares with are
declared (a typo in one fails the import instead of never firing)::

    NO_HOLDER_CHECK = "no_holder_check"

    class Lock(Machine):
        name = "lock"
        mutants = {NO_HOLDER_CHECK: Mutant(
            "Acquire succeeds while another client holds the lock",
            violates="mutual_exclusion")}

        def __init__(self, clients=2, mutant=None):
            super().__init__(mutant)
            self.clients = clients

        def config(self):
            return {"clients": self.clients}

        def init_states(self):
            yield ()                               # nobody holds the lock

        def every_client(self, state):
            return [(c,) for c in range(self.clients)]

        @action("Acquire", tag=ENVIRONMENT, params=every_client)
        def acquire(self, state, c):
            if state and self.mutant != NO_HOLDER_CHECK:
                return None                        # guard: lock is taken
            return tuple(sorted(set(state) | {c}))

        @action("Release", tag=ENVIRONMENT, params=every_client)
        def release(self, state, c):
            if c not in state:
                return None
            return tuple(h for h in state if h != c)

The property ``mutual_exclusion`` would then be ``len(state) <= 1``; the test
suite runs exactly this machine (``tests/test_kernel.py``).
"""

from __future__ import annotations

import dis
import inspect
import sys
import types

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import attrs

from kubemc.model import channels as ch

State = Hashable

#: A step the component takes by itself; assumed weakly fair for liveness.
SYSTEM = "system"
#: A request from a user or client.
ENVIRONMENT = "environment"
#: Crash, restart, message loss or duplication, partition, stale read.
FAULT = "fault"
TAGS = (SYSTEM, ENVIRONMENT, FAULT)


@attrs.frozen(slots=True)
class Step:
    """One action instance: the action's name and its parameters."""

    name: str
    params: tuple = attrs.field(default=(), converter=tuple)

    def __str__(self) -> str:
        return f"{self.name}({', '.join(map(str, self.params))})"


@attrs.frozen(slots=True)
class Mutant:
    """A seeded bug: what it does and which property it is meant to violate."""

    description: str
    violates: str


class UnknownMutant(ValueError):
    """The user named a mutant the machine does not carry — or the machine's
    code compares ``self.mutant`` with a name it does not declare (a typo
    that would otherwise never fire), raised when the class is created."""


@attrs.frozen(slots=True)
class Action:
    """One action of a machine, as its handler's :func:`action` declares it.

    ``attr`` is the handler's attribute name: ``apply`` looks it up on the
    instance when it dispatches, so a subclass that overrides the method
    (decorated or not) takes over the action.
    """

    name: str
    tag: str
    rare: bool
    strongly_fair: bool
    params: Callable[..., Iterable[tuple]] | None
    attr: str


def action(name: str, *, tag: str, rare: bool = False, strongly_fair: bool = False,
           params: Callable[..., Iterable[tuple]] | None = None):
    """Declare the decorated method the handler of action ``name``.

    The handler is ``handler(self, state, *params)`` and returns the next
    state, or ``None`` when its guard is false; a step with another number
    of parameters is not the machine's (unless the handler takes ``*params``:
    an action whose steps differ in shape). The declaration is the only
    place the action is named: the kernel derives ``tags``, ``rare``,
    ``strongly_fair``, the dispatch of ``apply`` and — when every action has
    ``params`` — ``steps`` from it.

    ``tag`` is SYSTEM, ENVIRONMENT or FAULT. ``rare`` marks an action random
    runs should take seldom (a timeout, a crash, a lost message): the
    hypothesis engine takes a rare action with odds 1/RARE_ODDS while a
    common one is enabled, at most MAX_RARE times a run
    (``checker.stateful``); taken as often as the rest, such steps drown the
    progress a bug needs. Exhaustive search (explore) ignores rarity, and
    ``simulate`` draws uniformly among enabled successors so that a seed
    replays the same walks. ``strongly_fair`` assumes the action strongly
    fair for liveness (see ``Machine.strongly_fair``). ``params(self,
    state)`` enumerates the parameter tuples proposed in ``state``; without
    it the machine writes ``steps`` itself.

    Decorators stack: one handler may serve several actions (the step's name
    tells it nothing, so such actions differ in their parameters or share
    their effect).
    """
    if tag not in TAGS:
        raise ValueError(f"action {name!r}: tag must be one of {', '.join(TAGS)}, not {tag!r}")
    if not isinstance(name, str) or not name or "." in name:
        raise ValueError(f"action name must be a non-empty string without '.', not {name!r}")

    def declare(handler):
        declared = getattr(handler, "_kubemc_actions", ())
        # decorators apply bottom-up: prepend, so the actions read top-down
        handler._kubemc_actions = ((name, tag, bool(rare), bool(strongly_fair), params),
                                   ) + declared
        return handler
    return declare


class Machine:
    """Base class of every component.

    Subclasses set ``name`` and ``mutants``, implement ``init_states`` and
    declare each action once, with :func:`action` on its handler; the kernel
    derives ``tags``, ``rare``, ``strongly_fair``, ``apply`` (dispatch to
    the handler, ``None`` for a step of another name or shape) and, when
    every action enumerates its parameters, ``steps``. A machine whose
    proposals need more than per-action enumerators (an order across
    actions, a shared guard) writes ``steps`` itself; every ``Step("Name",
    ...)`` literal in the class must then name a declared action, which the
    kernel checks when the class is created. ``steps`` may propose steps
    whose guard is false: the handler returns ``None`` for those, so a guard
    is written once, where the effect is.

    The older form — a ``tags`` dict, ``steps`` and ``apply`` written by
    hand — still works, for machines outside kubemc that use it.

    Mutant names are checked when the class is created: every name compared
    with ``self.mutant`` (or with a ``mutant`` variable: ``==``, ``!=``,
    ``in``, ``not in``; a string, a constant, or a tuple of them) in the
    class's own methods, and in the pure helpers it lists in
    ``mutant_helpers``, must be one of its ``mutants``, of its bases', or of
    ``mutant_names`` — so a typo fails at import instead of never firing.
    A composition's names may also be its parts'; those are checked when it
    is built.
    """

    name: ClassVar[str] = ""
    tags: ClassVar[Mapping[str, str]] = {}
    mutants: ClassVar[Mapping[str, Mutant]] = {}
    #: Actions a random run should take seldom (timeouts, crashes, message
    #: loss): taken as often as the rest they drown the progress a bug needs.
    #: The hypothesis engine takes them with low odds and a per-run budget.
    rare: ClassVar[frozenset] = frozenset()
    #: Actions assumed *strongly* fair for liveness: taken eventually if
    #: enabled infinitely often (not just continuously). For a step that a
    #: race can disable again and again, e.g. a write that loses a 409 to
    #: another writer and is retried. Every other ``system`` action is
    #: weakly fair; ``environment`` and ``fault`` actions are not fair.
    strongly_fair: ClassVar[frozenset] = frozenset()
    #: True when ``canonical`` keeps step labels: a state and its canonical
    #: form enable the same steps (names and parameters), each leading to
    #: states of one canonical form. Only then may liveness checking use it
    #: (``checker.liveness``); a symmetry, which permutes parameters, does not.
    canonical_keeps_steps: ClassVar[bool] = False
    #: The declared actions by name, in declaration order (base classes
    #: first); empty for a machine written in the older form.
    actions: ClassVar[Mapping[str, Action]] = types.MappingProxyType({})
    #: Mutant names the class's code may compare with beyond its own
    #: ``mutants``: those a family's subclasses declare (a base holding the
    #: code of every scenario), for instance.
    mutant_names: ClassVar[frozenset] = frozenset()
    #: Pure functions (or modules: each function of theirs with a ``mutant``
    #: parameter) that take ``mutant=`` from this machine: their names are
    #: checked against its mutants as its own methods are.
    mutant_helpers: ClassVar[tuple] = ()
    _dispatch: ClassVar[Mapping[str, tuple[str, int]]] = {}
    #: names compared with the mutant that only a built composition can check
    _pending_mutant_names: ClassVar[Mapping[str, str]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _derive_actions(cls)
        _check_mutant_names(cls)

    def __init__(self, mutant: str | None = None):
        if mutant is not None and mutant not in self.mutants:
            known = ", ".join(sorted(self.mutants)) or "none"
            raise UnknownMutant(
                f"{self.name} has no mutant {mutant!r} (known: {known})")
        self.mutant = mutant

    # -- what every machine defines -------------------------------------
    def config(self) -> dict[str, Any]:
        """The bounds this instance was built with (recorded in traces)."""
        return {}

    def init_states(self) -> Iterable[State]:
        raise NotImplementedError

    def steps(self, state: State) -> Iterable[Step]:
        """Every declared action with each parameter tuple its ``params``
        proposes, in declaration order."""
        if not self.actions:
            raise NotImplementedError
        for a in self.actions.values():
            for params in a.params(self, state):  # type: ignore[misc]
                yield Step(a.name, params)

    def apply(self, state: State, step: Step) -> Any:
        """Dispatch to the declared handler; ``None`` for a step of another
        name (not one of this machine's). A declared action given the wrong
        number of parameters is a bug in whatever built the step, raised
        rather than read as a disabled step (which would prune the search
        and let the check say "holds"); a hand-edited trace is checked
        against the proposed steps by ``trace replay`` before it gets here.
        An exception inside a handler is a bug and propagates too. (Typed
        ``Any``, as a hand-written ``apply`` is: each machine's states are
        tuples of its own shape, which a caller that knows the machine
        indexes.)"""
        if not self.actions:
            raise NotImplementedError
        entry = self._dispatch.get(step.name)
        if entry is None:
            return None
        if entry[1] >= 0 and len(step.params) != entry[1]:
            raise TypeError(f"{type(self).__name__}: step {step} has {len(step.params)} "
                            f"parameter(s); the action {step.name} takes {entry[1]}")
        return getattr(self, entry[0])(state, *step.params)

    # -- what a machine may refine ---------------------------------------
    def successors(self, state: State) -> Iterator[tuple[Step, State]]:
        """Every enabled step and the state it leads to.

        Engines call only this; a machine may override it with a fused
        generator when profiling shows the generic loop is the bottleneck.
        """
        apply = self.apply
        for step in self.steps(state):
            nxt = apply(state, step)
            if nxt is not None:
                yield step, nxt

    def within_bounds(self, state: State) -> bool:
        """State constraint: states outside it are kept but not expanded."""
        return True

    def canonical(self, state: State) -> State:
        """A representative of the state's symmetry class (identity: none).

        It must give the *same* representative for every member of a class
        (a canonical form, not just some member of the orbit), and members of
        one class must have successors of the same classes (a symmetry of
        the steps, or a bisimulation): explore records representatives and
        rebuilds a counterexample by re-walking concrete states to them,
        which a member-dependent choice can miss (``checker.explore``
        then stops with a ``SymmetryError``; ``tests/test_explore_symmetry.py``
        checks the catalog's machines).
        """
        return state

    def view(self, state: State) -> Mapping[str, Any]:
        """The state as named variables, for traces and for people."""
        return {"state": state}

    def tag(self, step: Step) -> str:
        return self.tags[step.name]


# ---------------------------------------------------------------------------
# What the kernel derives from a class when it is created
# ---------------------------------------------------------------------------


def _derive_actions(cls) -> None:
    """``actions``, ``tags``, ``rare``, ``strongly_fair`` and the dispatch
    table from the :func:`action` declarations of the class and its bases
    (a subclass may redeclare an action); nothing for a machine written in
    the older form. A ``tags``/``rare``/``strongly_fair`` written in the
    class body may add undeclared names (a composition's step names) but
    may not contradict a declaration."""
    table: dict[str, Action] = {}
    own: set[str] = set()
    for klass in reversed(cls.__mro__):
        own = set()
        for attr, member in vars(klass).items():
            for name, tag, rare, strong, params in getattr(member, "_kubemc_actions", ()):
                if name in own:
                    raise TypeError(f"{klass.__qualname__}: action {name!r} is declared twice")
                own.add(name)
                table[name] = Action(name, tag, rare, strong, params, attr)
    if not table:
        return
    where = cls.__qualname__
    body = vars(cls)
    tags: dict[str, str] = {}
    for base in reversed(cls.__bases__):
        tags.update(getattr(base, "tags", {}))
    for name, tag in body.get("tags", {}).items():
        if name in table and table[name].tag != tag:
            raise TypeError(f"{where}: tags says {name} is {tag}, its @action says "
                            f"{table[name].tag}")
        tags[name] = tag
    tags.update((name, a.tag) for name, a in table.items())
    cls.tags = tags
    for field in ("rare", "strongly_fair"):
        if field in body:
            # written in the class body: the class's whole set, with the
            # actions this class itself declares so (a subclass may take
            # back a base's rarity: a scheduler whose crashes are common)
            written = set(body[field])
            declared = {n for n in own if getattr(table[n], field)}
            contradicted = sorted(n for n in written if n in own and n not in declared)
            if contradicted:
                raise TypeError(f"{where}: {field} names {contradicted[0]}, whose @action "
                                f"does not say {field}=True")
            setattr(cls, field, frozenset(written | declared))
        else:
            declared = {name for name, a in table.items() if getattr(a, field)}
            written = set().union(*(getattr(b, field, ()) for b in cls.__bases__))
            setattr(cls, field, frozenset((written - set(table)) | declared))
    dispatch = {}
    for name, a in table.items():
        handler = getattr(cls, a.attr)
        if not callable(handler) or not hasattr(handler, "__code__"):
            raise TypeError(f"{where}: the handler of {name} is not a plain method")
        varargs = handler.__code__.co_flags & inspect.CO_VARARGS
        dispatch[name] = (a.attr, -1 if varargs else arity(handler))
    cls.actions = types.MappingProxyType(table)
    cls._dispatch = types.MappingProxyType(dispatch)
    if cls.steps is Machine.steps:
        bare = [name for name, a in table.items() if a.params is None]
        if bare:
            raise TypeError(f"{where}: action {bare[0]} has no params enumerator, and the "
                            "class does not write steps(): give @action(..., params=...) or "
                            "write steps()")
    for fn in _own_functions(cls):
        for name, line in _step_literals(fn):
            if name not in tags:
                raise TypeError(f"{where}.{fn.__name__} (line {line}) proposes Step({name!r}), "
                                f"which is not an action of {cls.__name__} "
                                f"(declared: {', '.join(table)})")


def _check_mutant_names(cls) -> None:
    """Every mutant name the class's own methods and ``mutant_helpers``
    compare with must be declared (see :class:`Machine`); a composition's
    names its parts may declare are left for ``Composition.__init__``."""
    compared: dict[str, str] = {}
    for fn in (*_own_functions(cls), *_helper_functions(vars(cls).get("mutant_helpers", ()))):
        for name, line in _mutant_comparisons(fn):
            compared.setdefault(name, f"{fn.__qualname__} (line {line})")
    if not compared:
        return
    known: set[str] = set()
    for klass in cls.__mro__:
        known |= set(vars(klass).get("mutants", ())) | set(vars(klass).get("mutant_names", ()))
    unknown = {n: w for n, w in compared.items() if n not in known}
    if not unknown:
        return
    if getattr(cls, "_parts_declare_mutants", False):
        cls._pending_mutant_names = {**cls._pending_mutant_names, **unknown}
        return
    raise UnknownMutant(_undeclared(cls.__qualname__, unknown, known))


def check_mutant_names(helpers: Iterable, declared: Iterable[str], where: str) -> None:
    """Check a module's pure helpers as a machine's ``mutant_helpers`` are:
    every name they compare ``mutant`` with must be in ``declared``. For
    helpers no single machine owns (a generator of large networks that
    several components' mutants reach): call it at the module's end, so a
    typo fails the import."""
    known = set(declared)
    unknown: dict[str, str] = {}
    for fn in _helper_functions(helpers):
        for name, line in _mutant_comparisons(fn):
            if name not in known:
                unknown.setdefault(name, f"{fn.__qualname__} (line {line})")
    if unknown:
        raise UnknownMutant(_undeclared(where, unknown, known))


def _undeclared(where: str, unknown: Mapping[str, str], known) -> str:
    name, at = next(iter(unknown.items()))
    return (f"{at} compares the mutant with {name!r}, which {where} does not declare "
            f"(declared: {', '.join(sorted(known)) or 'none'})")


def _own_functions(cls) -> list:
    out: list = []
    for member in vars(cls).values():
        if isinstance(member, (staticmethod, classmethod)):
            member = member.__func__
        if isinstance(member, property):
            out.extend(f for f in (member.fget, member.fset) if f is not None)
        elif isinstance(member, types.FunctionType):
            out.append(member)
    return out


def _helper_functions(helpers) -> list:
    out: list = []
    for h in helpers:
        if isinstance(h, types.ModuleType):
            out.extend(f for f in vars(h).values() if isinstance(f, types.FunctionType)
                       and f.__module__ == h.__name__ and "mutant" in inspect.signature(
                           f).parameters)
        elif isinstance(h, types.FunctionType):
            out.append(h)
        else:
            raise TypeError(f"mutant_helpers holds functions and modules, not {h!r}")
    return out


def _codes(code: types.CodeType) -> Iterator[types.CodeType]:
    """A function's code and the code nested in it (lambdas, comprehensions)."""
    yield code
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            yield from _codes(c)


def _line(code: types.CodeType, offset: int) -> int:
    for start, end, line in code.co_lines():
        if start <= offset < end and line is not None:
            return line
    return code.co_firstlineno


# How the operands of a comparison are read from bytecode (CPython 3.11+):
# a few loads are followed on a small stack, anything else empties it, so a
# comparison is judged only when both its operands are plain loads — a name,
# a constant, ``x.mutant``, a dotted constant, a tuple of those. Bytecode is
# read rather than source because it is there for every function and costs
# nothing to get; parsing the source of every model at each import did not.
_PY = sys.version_info[:2]
_ATTR_SHIFT = 1 if _PY >= (3, 12) else 0
_CMP_SHIFT = 5 if _PY >= (3, 13) else 4 if _PY >= (3, 12) else 0
_MUTANT = ("mutant",)   # a load of ``mutant`` or ``<anything>.mutant``
_MISSING = object()


def _loads(code: types.CodeType, scope: Mapping[str, Any]):
    """(offset, opname, operands) of every comparison (``==``, ``!=``,
    ``in``, ``not in``) and of every ``Step(<literal>`` call; an operand is
    ``_MUTANT``, ``("v", value)`` for a constant or a global's value, or
    None when it is anything else."""
    stack: list = []
    previous = None
    for offset, op, arg in dis._unpack_opargs(code.co_code):  # type: ignore[attr-defined]
        name = dis.opname[op]
        if name in ("CACHE", "EXTENDED_ARG", "NOP"):
            continue
        loaded = None
        if name == "LOAD_CONST":
            value = code.co_consts[arg]
            if previous == "Step" and isinstance(value, str):
                yield offset, "Step", value
            stack.append(("v", value))
        elif name.startswith("LOAD_FAST") or name in ("LOAD_DEREF", "LOAD_CLOSURE"):
            pair = "LOAD_FAST" in name[len("LOAD_FAST"):]
            for index in ((arg >> 4, arg & 15) if pair else (arg,)):
                var = code._varname_from_oparg(index)  # type: ignore[attr-defined]
                stack.append(_MUTANT if var == "mutant" else None)
        elif name in ("LOAD_GLOBAL", "LOAD_NAME"):
            loaded = code.co_names[arg >> 1 if name == "LOAD_GLOBAL" else arg]
            if name == "LOAD_GLOBAL" and arg & 1:
                stack.clear()   # a call follows: NULL + callable
            else:
                value = scope.get(loaded, _MISSING)
                stack.append(("v", value) if value is not _MISSING else None)
        elif name == "LOAD_ATTR":
            loaded = code.co_names[arg >> _ATTR_SHIFT]
            top = stack.pop() if stack else None
            if _ATTR_SHIFT and arg & 1:
                stack.clear()   # a method load: a call follows
            elif loaded == "mutant":
                stack.append(_MUTANT)
            elif top is not None and top is not _MUTANT:
                value = getattr(top[1], loaded, _MISSING)
                stack.append(("v", value) if value is not _MISSING else None)
            else:
                stack.append(None)
        elif name in ("BUILD_TUPLE", "BUILD_LIST", "BUILD_SET") and 0 < arg <= len(stack):
            items = stack[-arg:]
            del stack[-arg:]
            ok = all(i is not None and i is not _MUTANT for i in items)
            stack.append(("v", tuple(i[1] for i in items)) if ok else None)
        elif name in ("COMPARE_OP", "CONTAINS_OP") and len(stack) >= 2:
            right, left = stack.pop(), stack.pop()
            kind = dis.cmp_op[arg >> _CMP_SHIFT] if name == "COMPARE_OP" else "in"
            if kind in ("==", "!=", "in"):
                yield offset, kind, (left, right)
            stack.append(None)
        else:
            stack.clear()
        previous = loaded


def _names_of(operand) -> list[str]:
    if operand is None or operand is _MUTANT:
        return []
    value = operand[1]
    if isinstance(value, str):
        return [value]
    if isinstance(value, (tuple, list, set, frozenset)) and all(isinstance(v, str)
                                                                 for v in value):
        return list(value)
    return []


def _mutant_comparisons(fn) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    for code in _codes(fn.__code__):
        if "mutant" not in code.co_names and "mutant" not in code.co_varnames \
                and "mutant" not in code.co_freevars and "mutant" not in code.co_cellvars:
            continue
        for offset, kind, operands in _loads(code, fn.__globals__):
            if kind == "Step":
                continue
            left, right = operands
            pairs = [(left, right)] if kind == "in" else [(left, right), (right, left)]
            for this, other in pairs:
                if this is _MUTANT and other is not _MUTANT:
                    found.extend((n, _line(code, offset)) for n in _names_of(other))
    return found


def _step_literals(fn) -> list[tuple[str, int]]:
    return [(value, _line(code, offset)) for code in _codes(fn.__code__)
            if "Step" in code.co_names
            for offset, kind, value in _loads(code, fn.__globals__) if kind == "Step"]


# ---------------------------------------------------------------------------
# Composition
# ---------------------------------------------------------------------------


@attrs.frozen(slots=True)
class Link:
    """A synchronous exchange between two components of a composition.

    ``fire(caller_state, callee_state, params)`` returns the pair of next
    states, or ``None`` when the exchange is not enabled; ``params(joint)``
    proposes the parameters. Links and channels are the only ways components
    of a composition affect each other, so "who talks to whom" is exactly the
    set of links and channels — which makes claims like "only the apiserver
    talks to the store" checkable by inspecting a composition rather than
    assumed. A link suits an exchange inside one process (a server applying
    its own log); between processes, a channel says what the network may do.
    """

    name: str
    caller: str
    callee: str
    params: Any  # Callable[[Mapping[str, State]], Iterable[tuple]]
    fire: Any    # Callable[[State, State, tuple], tuple[State, State] | None]
    tag: str = SYSTEM
    #: Channels (of which the caller is the receiver) whose messages this
    #: link consumes: one step per deliverable message, with parameters
    #: ``(channel, message)`` as a delivery has, and ``params`` unused. A
    #: server that answers a request by calling a linearizable callee (an
    #: apiserver replica and its store) takes the message, makes the call
    #: and sends the answer in one step: receiving is a right mover and
    #: sending a left mover (Lipton's reduction), so fusing them with the
    #: call loses no behaviour a part could observe, and saves the
    #: intermediate states. Those channels get no ``Deliver`` step.
    receives: tuple[str, ...] = ()


#: the step a composition adds to a part that receives on a channel
DELIVER = "Deliver"
#: the steps a composition adds to a part with a crash budget
CRASH, RECOVER = "Crash", "Recover"


class Composition(Machine):
    """The interleaving product of named machines, their links and channels.

    A joint state is a tuple of component states in the order given; a
    composition with channels or crash budgets appends one more element, the
    network ``(contents, faults_left, crashes)``: per channel its content
    (``model.channels``) and its (loss, duplication, reordering) budgets
    left, per part with a crash budget ``(crashes_left, down)``. Without
    channels and crashes the joint state is exactly the parts' states, as
    it always was.

    Step names: a step of one component is ``"<component>.<action>"``; a
    link step ``"<caller>-><callee>.<link>"`` (with parameters ``(channel,
    message)`` for a link that receives, ``Link.receives``); the delivery of a message
    ``"<receiver>.Deliver"`` with parameters ``(channel, message)``; a
    network fault ``"<channel>.Lose"``, ``".Duplicate"``, ``".Reorder"``; a
    crash ``"<part>.Crash"`` and the restart after it ``"<part>.Recover"``.

    Parts that use channels: a handler sends by returning
    ``model.channels.Sent(next_state, ((channel, message), ...))`` instead
    of the next state (a link's ``fire`` may return one for either end); a
    receiver defines ``receive(state, channel, message)`` returning the next
    state (or ``Sent``), or None when it cannot take the message now (it
    stays in flight). A part with a crash budget
    defines ``after_crash(state)``: the state a crash leaves — what the part
    keeps (its disk), everything else back to where it starts. A part that is
    down takes no step, receives nothing and takes part in no link; messages
    sent to it wait in flight. ``Recover`` is a ``system`` step (a supervisor
    restarts a crashed process), so fairness brings a crashed part back.

    Mutants: the composite's ``mutants`` are its own (the class's, for bugs
    in its links) and every part's. A mutant named when the composition is
    built goes to the one part that declares it, rebuilt with it as
    ``type(part)(**part.config(), mutant=name)`` (a part's ``config()`` names
    its constructor's bounds, as trace replay already requires); a name two
    parts declare (two copies of one machine) is not among the composite's
    mutants and is refused when named, since no one could say which part it
    means. An unknown name raises ``UnknownMutant``, as for any machine. A
    part built with a mutant makes it the composite's; a composition runs
    one mutant at a time.
    """

    #: names compared with the mutant may be the parts' (checked when built)
    _parts_declare_mutants: ClassVar[bool] = True

    def __init__(self, parts: Sequence[tuple[str, Machine]],
                 links: Sequence[Link] = (), mutant: str | None = None, *,
                 channels: Sequence[Any] = (), crashes: Mapping[str, int] | None = None):
        parts = tuple(parts)
        self.index = {n: i for i, (n, _) in enumerate(parts)}
        self.mutants, owner, ambiguous = _collect_mutants(type(self).mutants, parts)
        carried = [(n, m.mutant) for n, m in parts if m.mutant is not None]
        if carried:
            if len(carried) > 1 or mutant not in (None, carried[0][1]):
                named = [f"{n}: {x}" for n, x in carried] + ([f"composition: {mutant}"]
                                                             if mutant else [])
                raise ValueError(f"a composition runs one mutant at a time, not "
                                 f"{', '.join(named)}")
            mutant = carried[0][1]  # a part built with a bug: the composite carries it
        if mutant in ambiguous:
            parts_named = " and ".join(ambiguous[mutant])
            raise UnknownMutant(f"mutant {mutant!r} is declared by {parts_named}: a "
                                "composition cannot tell which part it means")
        if mutant is not None and mutant in owner:
            i = self.index[owner[mutant]]
            parts = parts[:i] + ((owner[mutant], _with_mutant(owner[mutant], parts[i][1],
                                                                mutant)),) + parts[i + 1:]
        self.parts = parts
        self.links = tuple(links)
        for link in self.links:
            for end in (link.caller, link.callee):
                if end not in self.index:
                    raise ValueError(f"link {link.name} names unknown component {end}")
        self.channels = tuple(channels)
        self.channel_index = {c.name: k for k, c in enumerate(self.channels)}
        #: channels a link consumes (no Deliver step of their own)
        self.consumed = frozenset(name for link in self.links for name in link.receives)
        self.crashable = tuple(sorted((crashes or {}).items(), key=lambda kv: self.index.get(
            kv[0], -1)))
        self.crash_index = {n: k for k, (n, _) in enumerate(self.crashable)}
        self._check_network()
        self.net = bool(self.channels or self.crashable)
        self.name = "+".join(n for n, _ in self.parts)
        self.tags = {}
        rare, strong = set(type(self).rare), set(type(self).strongly_fair)
        for n, m in self.parts:
            for action, tag in m.tags.items():
                self.tags[f"{n}.{action}"] = tag
            rare |= {f"{n}.{a}" for a in m.rare}
            strong |= {f"{n}.{a}" for a in m.strongly_fair}
        for link in self.links:
            self.tags[f"{link.caller}->{link.callee}.{link.name}"] = link.tag
        for c in self.channels:
            self.tags[f"{c.receiver}.{DELIVER}"] = SYSTEM
            for kind, budget in zip(ch.FAULT_KINDS, c.budgets, strict=True):
                if budget:
                    self.tags[f"{c.name}.{kind}"] = FAULT
                    rare.add(f"{c.name}.{kind}")
        for n, _ in self.crashable:
            self.tags[f"{n}.{CRASH}"] = FAULT
            self.tags[f"{n}.{RECOVER}"] = SYSTEM
            rare.add(f"{n}.{CRASH}")
        self.rare = frozenset(rare)
        self.strongly_fair = frozenset(strong)
        pending = {n: w for n, w in type(self)._pending_mutant_names.items()
                   if n not in self.mutants}
        if pending:
            raise UnknownMutant(_undeclared(type(self).__qualname__, pending, self.mutants))
        super().__init__(mutant)

    def _check_network(self):
        for c in self.channels:
            for end in (c.sender, c.receiver):
                if end not in self.index:
                    raise ValueError(f"channel {c.name} names unknown component {end}")
            if c.name in self.index:
                raise ValueError(f"channel {c.name} has the name of a component")
            if c.name not in self.consumed \
                    and not callable(getattr(self.part(c.receiver), "receive", None)):
                raise ValueError(f"channel {c.name}: its receiver {c.receiver} defines no "
                                 "receive(state, channel, message)")
        if len(self.channel_index) != len(self.channels):
            raise ValueError("two channels have the same name")
        for link in self.links:
            for name in link.receives:
                k = self.channel_index.get(name)
                if k is None or self.channels[k].receiver != link.caller:
                    raise ValueError(f"link {link.name} receives on {name!r}, which is not a "
                                     f"channel into its caller {link.caller}")
        for n, budget in self.crashable:
            if n not in self.index:
                raise ValueError(f"a crash budget names unknown component {n}")
            if not isinstance(budget, int) or isinstance(budget, bool) or budget < 0:
                raise ValueError(f"the crash budget of {n} must be a whole number >= 0")
            if not callable(getattr(self.part(n), "after_crash", None)):
                raise ValueError(f"{n} has a crash budget but defines no after_crash(state): "
                                 "what it keeps and what it loses when it crashes")
        reserved = {c.receiver: {DELIVER} for c in self.channels}
        for n, _ in self.crashable:
            reserved.setdefault(n, set()).update((CRASH, RECOVER))
        for n, names in reserved.items():
            clash = names & set(self.part(n).tags)
            if clash:
                raise ValueError(f"{n} has its own action {sorted(clash)[0]}, a name the "
                                 "composition gives its network steps")

    def part(self, name: str) -> Machine:
        """The component named ``name`` (with the mutant, if it carries one)."""
        return self.parts[self.index[name]][1]

    def talks_to(self) -> set[tuple[str, str]]:
        """The (caller, callee) pairs that some link connects, and the
        (sender, receiver) pairs of every channel."""
        return ({(link.caller, link.callee) for link in self.links}
                | {(c.sender, c.receiver) for c in self.channels})

    def config(self):
        return {n: m.config() for n, m in self.parts}

    def init_states(self):
        joint = [()]
        for _, m in self.parts:
            joint = [j + (s,) for j in joint for s in m.init_states()]
        if self.net:
            net = (tuple(ch.EMPTY for _ in self.channels),
                   tuple(c.budgets for c in self.channels),
                   tuple((budget, False) for _, budget in self.crashable))
            joint = [j + (net,) for j in joint]
        return joint

    def _down(self, state) -> frozenset:
        if not self.crashable:
            return frozenset()
        crashes = state[-1][2]
        return frozenset(self.index[n] for k, (n, _) in enumerate(self.crashable)
                         if crashes[k][1])

    def steps(self, state):
        down = self._down(state)
        for i, (n, m) in enumerate(self.parts):
            if i in down:
                continue
            for s in m.steps(state[i]):
                yield Step(f"{n}.{s.name}", s.params)
        yield from self._other_steps(state, down)

    def successors(self, state):
        """The parts' own (possibly fused) successors, then links and the
        network: the same steps, in the same order, as ``steps``."""
        down = self._down(state)
        for i, (n, m) in enumerate(self.parts):
            if i in down:
                continue
            for s, sub in m.successors(state[i]):
                nxt = self._settle(state, i, n, sub)
                yield Step(f"{n}.{s.name}", s.params), nxt
        for step in self._other_steps(state, down):
            nxt = self.apply(state, step)
            if nxt is not None:
                yield step, nxt

    def _other_steps(self, state, down):
        named = {n: state[i] for i, (n, _) in enumerate(self.parts)}
        for link in self.links:
            if down and (self.index[link.caller] in down or self.index[link.callee] in down):
                continue
            name = f"{link.caller}->{link.callee}.{link.name}"
            if link.receives:
                contents = state[-1][0]
                for channel in link.receives:
                    k = self.channel_index[channel]
                    for msg in ch.deliverable(self.channels[k].semantics, contents[k]):
                        yield Step(name, (channel, msg))
                continue
            for params in link.params(named):
                yield Step(name, params)
        if not self.net:
            return
        contents, left, crashes = state[-1]
        consumed = self.consumed
        for k, c in enumerate(self.channels):
            content = contents[k]
            if self.index[c.receiver] not in down and c.name not in consumed:
                for msg in ch.deliverable(c.semantics, content):
                    yield Step(f"{c.receiver}.{DELIVER}", (c.name, msg))
            for kind, budget in zip(ch.FAULT_KINDS, left[k], strict=True):
                if budget:
                    for params in ch.fault_params(c.semantics, content, kind):
                        yield Step(f"{c.name}.{kind}", params)
        for k, (n, _) in enumerate(self.crashable):
            crashes_left, is_down = crashes[k]
            if is_down:
                yield Step(f"{n}.{RECOVER}")
            elif crashes_left:
                yield Step(f"{n}.{CRASH}")

    def apply(self, state, step):
        head, dot, action = step.name.partition(".")
        if not dot:
            return None
        if "->" in head:
            caller, _, callee = head.partition("->")
            link = next((x for x in self.links if x.caller == caller and x.callee == callee
                         and x.name == action), None)
            if link is None:
                return None
            ci, ki = self.index[caller], self.index[callee]
            if self.crashable:
                down = self._down(state)
                if ci in down or ki in down:
                    return None
            if link.receives:
                state = self._consume(state, link, step.params)
                if state is None:
                    return None
            out = link.fire(state[ci], state[ki], step.params)
            if out is None:
                return None
            if type(out[0]) is not ch.Sent and type(out[1]) is not ch.Sent:
                nxt = list(state)
                nxt[ci], nxt[ki] = out
                return tuple(nxt)
            return self._settle(self._settle(state, ci, caller, out[0]), ki, callee, out[1])
        if self.net and head in self.channel_index:
            return self._fault(state, self.channel_index[head], action, step.params)
        i = self.index[head]
        if self.net:
            if action == DELIVER and self.channels:
                return self._deliver(state, i, head, step.params)
            if head in self.crash_index and action in (CRASH, RECOVER):
                return self._crash(state, i, head, action, step.params)
            if i in self._down(state):
                return None
        sub = self.parts[i][1].apply(state[i], Step(action, step.params))
        if sub is None:
            return None
        return self._settle(state, i, head, sub)

    # -- the network ----------------------------------------------------------
    def _settle(self, state, i, name, sub):
        """The joint state after part ``i`` moved to ``sub`` (a state, or a
        ``Sent`` whose messages go into their channels)."""
        if type(sub) is not ch.Sent:
            return state[:i] + (sub,) + state[i + 1:]
        if not self.net:
            raise ValueError(f"{name} sent messages, but the composition has no channels")
        contents, left, crashes = state[-1]
        contents = list(contents)
        for channel_name, msg in sub.messages:
            k = self.channel_index.get(channel_name)
            if k is None or self.channels[k].sender != name:
                raise ValueError(f"{name} sent on {channel_name!r}, which is not one of its "
                                 "outgoing channels")
            contents[k] = ch.send(self.channels[k].semantics, contents[k], msg)
        return state[:i] + (sub.state,) + state[i + 1:-1] + ((tuple(contents), left, crashes),)

    def _consume(self, state, link, params):
        """The joint state with the message a receiving link names taken
        out of its channel, or None if it is not deliverable now."""
        if len(params) != 2 or params[0] not in link.receives:
            return None
        k = self.channel_index[params[0]]
        contents, left, crashes = state[-1]
        rest = ch.deliver(self.channels[k].semantics, contents[k], params[1])
        if rest is None:
            return None
        return state[:-1] + ((contents[:k] + (rest,) + contents[k + 1:], left, crashes),)

    def _deliver(self, state, i, name, params):
        if len(params) != 2 or params[0] not in self.channel_index or i in self._down(state):
            return None
        k = self.channel_index[params[0]]
        c = self.channels[k]
        if c.receiver != name or c.name in self.consumed:
            return None
        contents, left, crashes = state[-1]
        rest = ch.deliver(c.semantics, contents[k], params[1])
        if rest is None:
            return None
        sub = self.parts[i][1].receive(state[i], c.name, params[1])
        if sub is None:
            return None
        net = (contents[:k] + (rest,) + contents[k + 1:], left, crashes)
        return self._settle(state[:-1] + (net,), i, name, sub)

    def _fault(self, state, k, kind, params):
        if kind not in ch.FAULT_KINDS:
            return None
        which = ch.FAULT_KINDS.index(kind)
        contents, left, crashes = state[-1]
        if not left[k][which]:
            return None
        out = ch.fault(self.channels[k].semantics, contents[k], kind, params)
        if out is None:
            return None
        budgets = left[k][:which] + (left[k][which] - 1,) + left[k][which + 1:]
        net = (contents[:k] + (out,) + contents[k + 1:], left[:k] + (budgets,) + left[k + 1:],
               crashes)
        return state[:-1] + (net,)

    def _crash(self, state, i, name, action, params):
        if params:
            return None
        contents, left, crashes = state[-1]
        k = self.crash_index[name]
        crashes_left, is_down = crashes[k]
        if action == CRASH:
            if is_down or not crashes_left:
                return None
            sub = self.parts[i][1].after_crash(state[i])
            entry = (crashes_left - 1, True)
        else:
            if not is_down:
                return None
            sub, entry = state[i], (crashes_left, False)
        net = (contents, left, crashes[:k] + (entry,) + crashes[k + 1:])
        return state[:i] + (sub,) + state[i + 1:-1] + (net,)

    def within_bounds(self, state):
        if not all(m.within_bounds(state[i]) for i, (_, m) in enumerate(self.parts)):
            return False
        if self.channels:
            size = ch.size
            contents = state[-1][0]
            return all(size(c.semantics, contents[k]) <= c.capacity
                       for k, c in enumerate(self.channels))
        return True

    def view(self, state):
        out = {}
        for i, (n, m) in enumerate(self.parts):
            for k, v in m.view(state[i]).items():
                out[f"{n}.{k}"] = v
        if self.net:
            describe = ch.describe
            contents, left, crashes = state[-1]
            for k, c in enumerate(self.channels):
                out[f"net.{c.name}"] = describe(c.semantics, contents[k])
            if self.channels:
                out["net.faults_left"] = {
                    c.name: {"loss": lost, "duplication": dup, "reordering": swap}
                    for c, (lost, dup, swap) in zip(self.channels, left, strict=True)}
            if self.crashable:
                out["net.crashes"] = {n: {"crashes_left": c, "down": d}
                                      for (n, _), (c, d) in zip(self.crashable, crashes,
                                                                strict=True)}
        return out

    def tag(self, step):
        return self.tags[step.name]


def _collect_mutants(own: Mapping[str, Mutant], parts) -> tuple[dict, dict, dict]:
    """The composite's mutants (its own and those found in exactly one
    part), for each part's mutant the part that declares it, and the names
    two or more parts declare (two copies of one machine) with those parts:
    such a name is refused when named, since no one could say which part
    it means."""
    declared: dict[str, list[str]] = {}
    found: dict[str, Mutant] = {}
    for n, m in parts:
        for name, mut in m.mutants.items():
            declared.setdefault(name, []).append(n)
            found[name] = mut
    owner = {name: ns[0] for name, ns in declared.items() if len(ns) == 1}
    ambiguous = {name: ns for name, ns in declared.items() if len(ns) > 1 and name not in own}
    for name in owner:
        if name in own and own[name] != found[name]:
            raise ValueError(f"mutant {name!r} is declared by the composition and, "
                             f"differently, by its part {owner[name]}")
    return {**own, **{name: found[name] for name in owner}}, owner, ambiguous


def _with_mutant(name: str, part: Machine, mutant: str) -> Machine:
    if part.mutant == mutant:
        return part
    config = part.config()
    try:  # the signature is checked, not the call: a TypeError inside __init__ is a bug
        inspect.signature(type(part)).bind(**config, mutant=mutant)
    except TypeError as exc:
        raise ValueError(f"part {name} cannot be rebuilt with mutant {mutant!r} from its "
                         f"config(): {exc}") from None
    return type(part)(**config, mutant=mutant)


def arity(handler) -> int:
    """How many step parameters a handler ``(self, state, *params)`` takes:
    a step of another shape is not one of the machine's (apply returns None),
    while an exception *inside* a handler is a bug and propagates, so it
    surfaces as an internal error instead of silently disabling the step."""
    code = handler.__code__
    return code.co_argcount - 2

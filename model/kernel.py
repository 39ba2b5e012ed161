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
forgets to check the holder::

    class Lock(Machine):
        name = "lock"
        tags = {"Acquire": ENVIRONMENT, "Release": ENVIRONMENT}
        mutants = {"no_holder_check": Mutant(
            "Acquire succeeds while another client holds the lock",
            violates="mutual_exclusion")}

        def __init__(self, clients=2, mutant=None):
            super().__init__(mutant)
            self.clients = clients

        def config(self):
            return {"clients": self.clients}

        def init_states(self):
            yield ()                               # nobody holds the lock

        def steps(self, state):
            for c in range(self.clients):
                yield Step("Acquire", (c,))
                yield Step("Release", (c,))

        def apply(self, state, step):
            (c,) = step.params
            if step.name == "Acquire":
                if state and not self.mutant == "no_holder_check":
                    return None                    # guard: lock is taken
                return tuple(sorted(set(state) | {c}))
            if c not in state:
                return None
            return tuple(h for h in state if h != c)

The property ``mutual_exclusion`` would then be ``len(state) <= 1``; the test
suite runs exactly this machine (``tests/test_kernel.py``).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import attrs

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
    """The user named a mutant the machine does not carry."""


class Machine:
    """Base class of every component.

    Subclasses set ``name``, ``tags`` (action name -> SYSTEM / ENVIRONMENT /
    FAULT) and ``mutants``, and implement ``init_states``, ``steps`` and
    ``apply``. ``steps`` may propose steps whose guard is false: ``apply``
    returns ``None`` for those, so a guard is written once, where the effect is.
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
        raise NotImplementedError

    def apply(self, state: State, step: Step) -> State | None:
        raise NotImplementedError

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

        Any function that returns a member of the state's orbit under the
        symmetry group is sound; the closer it comes to one representative
        per orbit, the more it saves.
        """
        return state

    def view(self, state: State) -> Mapping[str, Any]:
        """The state as named variables, for traces and for people."""
        return {"state": state}

    def tag(self, step: Step) -> str:
        return self.tags[step.name]


# ---------------------------------------------------------------------------
# Composition
# ---------------------------------------------------------------------------


@attrs.frozen(slots=True)
class Link:
    """A synchronous exchange between two components of a composition.

    ``fire(caller_state, callee_state, params)`` returns the pair of next
    states, or ``None`` when the exchange is not enabled; ``params(joint)``
    proposes the parameters. Links are the only way components of a
    composition affect each other, so "who talks to whom" is exactly the set
    of links — which makes claims like "only the apiserver talks to the
    store" checkable by inspecting a composition rather than assumed.
    """

    name: str
    caller: str
    callee: str
    params: Any  # Callable[[Mapping[str, State]], Iterable[tuple]]
    fire: Any    # Callable[[State, State, tuple], tuple[State, State] | None]
    tag: str = SYSTEM


class Composition(Machine):
    """The interleaving product of named machines plus their links.

    A joint state is a tuple of component states in the order given. A step
    of one component is named ``"<component>.<action>"``; a link step is
    named ``"<caller>-><callee>.<link>"``.
    """

    def __init__(self, parts: Sequence[tuple[str, Machine]],
                 links: Sequence[Link] = (), mutant: str | None = None):
        self.parts = tuple(parts)
        self.index = {n: i for i, (n, _) in enumerate(self.parts)}
        self.links = tuple(links)
        for link in self.links:
            for end in (link.caller, link.callee):
                if end not in self.index:
                    raise ValueError(f"link {link.name} names unknown component {end}")
        self.name = "+".join(n for n, _ in self.parts)
        self.tags = {}
        for n, m in self.parts:
            for action, tag in m.tags.items():
                self.tags[f"{n}.{action}"] = tag
        for link in self.links:
            self.tags[f"{link.caller}->{link.callee}.{link.name}"] = link.tag
        super().__init__(None)

    def talks_to(self) -> set[tuple[str, str]]:
        """The (caller, callee) pairs that some link connects."""
        return {(link.caller, link.callee) for link in self.links}

    def config(self):
        return {n: m.config() for n, m in self.parts}

    def init_states(self):
        joint = [()]
        for _, m in self.parts:
            joint = [j + (s,) for j in joint for s in m.init_states()]
        return joint

    def _split(self, step: Step):
        head, action = step.name.split(".", 1)
        return head, action

    def steps(self, state):
        for i, (n, m) in enumerate(self.parts):
            for s in m.steps(state[i]):
                yield Step(f"{n}.{s.name}", s.params)
        named = {n: state[i] for i, (n, _) in enumerate(self.parts)}
        for link in self.links:
            for params in link.params(named):
                yield Step(f"{link.caller}->{link.callee}.{link.name}", params)

    def apply(self, state, step):
        head, action = self._split(step)
        if "->" in head:
            caller, callee = head.split("->")
            link = next(l for l in self.links
                        if l.caller == caller and l.callee == callee and l.name == action)
            ci, ki = self.index[caller], self.index[callee]
            out = link.fire(state[ci], state[ki], step.params)
            if out is None:
                return None
            nxt = list(state)
            nxt[ci], nxt[ki] = out
            return tuple(nxt)
        i = self.index[head]
        sub = self.parts[i][1].apply(state[i], Step(action, step.params))
        if sub is None:
            return None
        return state[:i] + (sub,) + state[i + 1:]

    def within_bounds(self, state):
        return all(m.within_bounds(state[i]) for i, (_, m) in enumerate(self.parts))

    def view(self, state):
        out = {}
        for i, (n, m) in enumerate(self.parts):
            for k, v in m.view(state[i]).items():
                out[f"{n}.{k}"] = v
        return out

    def tag(self, step):
        return self.tags[step.name]


def arity(handler) -> int:
    """How many step parameters a handler ``(self, state, *params)`` takes:
    a step of another shape is not one of the machine's (apply returns None),
    while an exception *inside* a handler is a bug and propagates, so it
    surfaces as an internal error instead of silently disabling the step."""
    code = handler.__code__
    return code.co_argcount - 2

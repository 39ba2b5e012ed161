"""Actions declared once (``@action``) and mutant names checked when a class
is created (``model/kernel.py``).

Why: an action used to be named in up to seven places per model (``tags``,
``rare``, ``steps``, ``apply``'s dispatch, the handler's name ...), and a
mutant was a string compared inside model code, where a typo silently never
fires — the mutant then "survives" every engine and reads as a weak
property. These tests pin the kernel's derivations and show each typo
failing at class creation, on the kernel docstring's own Lock.
"""

from __future__ import annotations

import types
from collections import deque

import pytest

from kubemc.model.kernel import (ENVIRONMENT, FAULT, SYSTEM, Composition, Machine, Mutant, Step,
                                 UnknownMutant, action)
from test_kernel import docstring_example


def test_the_docstring_lock_derives_tags_steps_and_dispatch():
    lock_class = docstring_example()
    assert lock_class.tags == {"Acquire": ENVIRONMENT, "Release": ENVIRONMENT}
    assert list(lock_class.actions) == ["Acquire", "Release"]
    assert lock_class.rare == frozenset()
    lock = lock_class(clients=2)
    assert list(lock.steps(())) == [Step("Acquire", (0,)), Step("Acquire", (1,)),
                                    Step("Release", (0,)), Step("Release", (1,))]
    assert lock.apply((), Step("Acquire", (1,))) == (1,)
    assert lock.apply((1,), Step("Acquire", (0,))) is None          # the guard
    with pytest.raises(TypeError, match="takes 1"):                   # a bug, not a disabled step
        lock.apply((), Step("Acquire", (0, 1)))
    assert lock.apply((), Step("Steal", (0,))) is None              # not an action
    assert lock.tag(Step("Release", (0,))) == ENVIRONMENT


def test_a_typo_in_a_mutant_name_fails_when_the_class_is_created():
    with pytest.raises(UnknownMutant, match=r"acquire \(line \d+\) compares the mutant with "
                                            r"'no_holder_chek'"):
        docstring_example(("self.mutant != NO_HOLDER_CHECK", "self.mutant != 'no_holder_chek'"))
    # a constant bound to a misspelt name is caught the same way ...
    with pytest.raises(UnknownMutant, match="no_holder_chek"):
        docstring_example(('NO_HOLDER_CHECK = "no_holder_check"',
                           'NO_HOLDER_CHECK = "no_holder_check"\nTYPO = "no_holder_chek"'),
                          ("self.mutant != NO_HOLDER_CHECK", "self.mutant != TYPO"))
    # ... and a name in a tuple, with ``in``
    with pytest.raises(UnknownMutant, match="nope"):
        docstring_example(("self.mutant != NO_HOLDER_CHECK",
                           "self.mutant not in (NO_HOLDER_CHECK, 'nope')"))


def test_a_step_of_an_undeclared_action_fails_when_the_class_is_created():
    with pytest.raises(TypeError, match="proposes Step\\('Aquire'\\)"):
        class Bad(Machine):
            @action("Acquire", tag=ENVIRONMENT)
            def acquire(self, state, c):
                return state

            def steps(self, state):
                yield Step("Aquire", (0,))


def test_an_action_without_params_needs_a_written_steps():
    with pytest.raises(TypeError, match="no params enumerator"):
        class Bad(Machine):
            @action("Tick", tag=SYSTEM)
            def tick(self, state):
                return state


def test_rarity_and_fairness_are_derived_and_a_subclass_may_redeclare():
    class Base(Machine):
        mutants = {"m": Mutant("x", violates="p")}

        @action("Work", tag=SYSTEM, strongly_fair=True, params=lambda self, s: [()])
        def work(self, state):
            return state + 1 if state < 2 else None

        @action("Crash", tag=FAULT, rare=True, params=lambda self, s: [()])
        def crash(self, state):
            return 0 if self.mutant != "m" else None

    assert Base.tags == {"Work": SYSTEM, "Crash": FAULT}
    assert Base.rare == {"Crash"} and Base.strongly_fair == {"Work"}

    class Calm(Base):
        @action("Crash", tag=FAULT, params=lambda self, s: [()])
        def crash(self, state):
            return None

    assert Calm.rare == frozenset() and Calm.tags["Crash"] == FAULT

    class Common(Base):  # a set written in the class body is the class's whole set
        rare = frozenset()

    assert Common.rare == frozenset() and Common.tags == Base.tags
    assert Calm().apply(1, Step("Crash")) is None and Base().apply(1, Step("Crash")) == 0

    with pytest.raises(TypeError, match="tags says Work is environment"):
        class Contradicts(Base):
            tags = {"Work": ENVIRONMENT}


def test_pure_helpers_are_checked_against_the_machine_that_lists_them():
    def rule(x, mutant=None):
        return x + (mutant == "off_by_one")

    helpers = types.ModuleType("helpers")
    helpers.rule = rule
    rule.__module__ = "helpers"

    with pytest.raises(UnknownMutant, match=r"rule \(line \d+\) compares the mutant with "
                                            r"'off_by_one'"):
        class Uses(Machine):
            mutants = {"off_by_on": Mutant("x", violates="p")}
            mutant_helpers = (helpers,)  # a module: each function with a mutant parameter

    class Fine(Machine):
        mutants = {"off_by_one": Mutant("x", violates="p")}
        mutant_helpers = (rule,)


def test_a_module_of_helpers_no_machine_owns_checks_itself():
    """``model.network.generate`` calls it at its end: its comparisons name the
    cni and proxy machines' declared constants."""
    from kubemc.model.kernel import check_mutant_names
    from kubemc.model.network import generate

    def rule(x, mutant=None):
        return x + (mutant == "missing_rout")

    check_mutant_names((generate.generate,), generate.MUTANTS, "generate")
    with pytest.raises(UnknownMutant, match="'missing_rout', which generate does not declare"):
        check_mutant_names((rule,), generate.MUTANTS, "generate")


def test_a_composition_may_compare_its_parts_mutants_checked_when_built():
    lock_class = docstring_example()

    class Pair(Composition):
        def __init__(self, mutant=None):
            super().__init__([("a", lock_class(1))], mutant=mutant)

        def watch(self):
            return self.mutant == "no_holder_check"

    Pair()

    class Typo(Composition):
        def __init__(self, mutant=None):
            super().__init__([("a", lock_class(1))], mutant=mutant)

        def watch(self):
            return self.mutant == "no_holder_chek"

    with pytest.raises(UnknownMutant, match="no_holder_chek"):
        Typo()


def test_the_older_form_still_works():
    class Counter(Machine):
        tags = {"Inc": SYSTEM}
        rare = frozenset({"Inc"})

        def init_states(self):
            yield 0

        def steps(self, state):
            yield Step("Inc")

        def apply(self, state, step):
            return state + 1 if state < 3 else None

    assert Counter.actions == {} and Counter.rare == {"Inc"}
    assert [s for s, _ in Counter().successors(0)] == [Step("Inc")]


def _declared_step_names_hold(machine, limit: int) -> None:
    seen = set(machine.init_states())
    queue = deque(seen)
    while queue and len(seen) < limit:
        state = queue.popleft()
        for step in machine.steps(state):
            assert step.name in machine.actions, (
                f"{machine.name}: steps() proposes {step.name}, not a declared action")
        for _, nxt in machine.successors(state):
            if nxt not in seen and machine.within_bounds(nxt):
                seen.add(nxt)
                queue.append(nxt)


def _declaring_models():
    from kubemc.checker.components import BUILT_IN, COMPONENTS
    return [pytest.param(m, id=m.name) for c in BUILT_IN for m in COMPONENTS[c].models
            if type(m.machine()).actions]


@pytest.mark.parametrize("model", _declaring_models())
def test_every_step_a_converted_machine_proposes_is_declared(model):
    """A machine that writes ``steps`` itself may build names the class-time
    check cannot read (not a literal): on the first states of a search, each
    proposed name must be a declared action (else apply would silently
    return None for it)."""
    _declared_step_names_hold(model.machine(), 300)

"""The kernel's worked example (model/kernel.py docstring), run for real."""

import textwrap

import pytest

from kubemc.checker.explore import explore
from kubemc.model import kernel
from kubemc.model.kernel import (ENVIRONMENT, SYSTEM, Composition, Link, Machine, Mutant, Step,
                                 UnknownMutant, action)
from kubemc.properties.core import INVARIANT, Property


def docstring_example(*replacements):
    """The Lock machine exactly as model/kernel.py's docstring writes it: the
    test runs the documented text, so the two cannot drift apart.

    The kernel's checks at class creation (mutant names, step names) read
    bytecode, so they judge this text as they judge an imported module.
    ``replacements`` ((old, new) pairs) plant a change."""
    doc = kernel.__doc__
    code = doc[doc.index("    NO_HOLDER_CHECK = "):doc.index("The property ``mutual_exclusion``")]
    code = textwrap.dedent(code)
    for old, new in replacements:
        assert old in code
        code = code.replace(old, new)
    namespace = {"Machine": Machine, "Mutant": Mutant, "Step": Step, "ENVIRONMENT": ENVIRONMENT,
                 "action": action, "__name__": "kernel_docstring"}
    exec(compile(code, "<kernel docstring>", "exec"), namespace)
    return namespace["Lock"]


Lock = docstring_example()


MUTEX = Property("mutual_exclusion", "lock", INVARIANT, "At most one client holds the lock.",
                 "test fixture", lambda m, s: len(s) <= 1)


def test_correct_lock_holds_everywhere():
    out = explore(Lock(clients=3), [MUTEX])
    assert out.counterexample is None and out.complete
    assert out.stats.states == 4  # free, or held by one of three clients


def test_mutant_is_caught_with_shortest_trace():
    out = explore(Lock(clients=3, mutant="no_holder_check"), [MUTEX])
    cex = out.counterexample
    assert cex is not None and cex.prop.name == "mutual_exclusion"
    assert [s.name for s, _ in cex.steps] == ["Acquire", "Acquire"]


def test_unknown_mutant_is_refused_by_name():
    with pytest.raises(UnknownMutant, match="no_holder_check"):
        Lock(mutant="nope")


def test_step_params_are_tuples_and_print_like_calls():
    assert Step("Receive", [1, 2]).params == (1, 2)
    assert str(Step("Receive", (1, 2))) == "Receive(1, 2)"


def test_composition_interleaves_parts_and_fires_links():
    def params(joint):
        return [()] if joint["a"] and not joint["b"] else []

    def hand_over(a, b, _):
        return ((), (a[0],))

    comp = Composition([("a", Lock(1)), ("b", Lock(1))],
                       links=[Link("handover", "a", "b", params, hand_over, SYSTEM)])
    assert comp.talks_to() == {("a", "b")}
    assert comp.tags["a->b.handover"] == SYSTEM
    out = explore(comp, [])
    assert out.complete and out.stats.states == 4
    (init,) = comp.init_states()
    held = comp.apply(init, Step("a.Acquire", (0,)))
    assert held == ((0,), ())
    assert comp.apply(held, Step("a->b.handover", ())) == ((), (0,))
    assert comp.view(held) == {"a.state": (0,), "b.state": ()}


def test_link_to_an_unknown_component_is_an_error():
    with pytest.raises(ValueError, match="unknown component"):
        Composition([("a", Lock(1))], links=[Link("x", "a", "zz", None, None)])


def test_a_raising_handler_is_an_error_not_a_disabled_step(monkeypatch):
    """A handler that raises by mistake must not read as "step not enabled":
    that pruned a 6,595-state model to 4 states reported as holding."""
    import pytest

    from kubemc.checker.catalog.apiserver import COMPONENT
    from kubemc.checker.explore import explore

    model = next(m for m in COMPONENT.models if m.name == "apiserver-lifecycle")
    machine = model.machine()

    def broken(self, store, i, policy):  # the signature of the real ``_Delete``
        raise TypeError("a bug in the handler")

    monkeypatch.setattr(type(machine), "_Delete", broken)
    with pytest.raises(TypeError):
        explore(machine, model.properties)


def test_a_raising_request_parser_or_packet_parser_is_an_error_not_a_disabled_step(monkeypatch):
    """The store's and the network models' step parsing no longer turns an error
    into "not enabled" (which would prune the search and report holds)."""
    import pytest

    import kubemc.model.network.forward as forward
    from kubemc.checker.catalog.network import CNI
    from kubemc.checker.catalog.store import MVCC
    from kubemc.checker.explore import explore
    from kubemc.model.store.mvcc import Mvcc

    def broken(*args):
        raise TypeError("a bug in the parser")

    with monkeypatch.context() as m:
        m.setattr(Mvcc, "_make_request", broken)
        with pytest.raises(TypeError):
            explore(MVCC.machine(), MVCC.properties)
    # a Probe is never enumerated (the z3 engine and traces choose packets): apply one
    machine = CNI.models[0].machine()
    state = next(iter(machine.init_states()))
    probe = Step("Probe", ("10.22.0.2", "10.22.1.2", 80, "tcp", 0))
    machine.apply(state, probe)                     # well-formed: applies without error
    monkeypatch.setattr(forward, "ip", broken)
    with pytest.raises(TypeError):
        machine.apply(state, probe)

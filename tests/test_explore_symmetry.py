"""Symmetry reduction and the counterexample rebuild.

The search records canonical fingerprints; the rebuild re-walks concrete
states from an initial one, at each step a successor whose canonical
fingerprint is the next recorded one. That meets the recorded states only
when ``canonical`` gives one representative per class *and* is a symmetry of
the steps (members of a class have successors of the same classes). Raft's
``canonical`` once sorted the servers by a key and left ties in index order:
a member of the class, but not always the same one, and a 9-step raft
counterexample could not be rebuilt. The tests below pin both conditions for
every catalog model whose ``canonical`` is not the identity, for the correct
model and every seeded mutant, and the engine's answer when they fail.
"""

from __future__ import annotations

from collections import Counter
from itertools import permutations

import pytest

from kubemc.checker import components
from kubemc.checker.errors import INTERNAL_ERROR
from kubemc.checker.explore import Explorer, SymmetryError, explore
from kubemc.model.kernel import Machine, Step
from kubemc.properties.core import INVARIANT, Property


class Pair(Machine):
    """Two interchangeable slots ``(x, y)``: Inc raises x, Mark sets y, Pass
    hands the mark to the other slot. Swapping the slots is a symmetry of
    every step. ``canonical`` puts the slot with the smaller ``key`` first."""

    name = "pair"

    def __init__(self, key):
        super().__init__(None)
        self.key = key

    def init_states(self):
        yield ((0, 0), (0, 0))

    def successors(self, s):
        for i in range(2):
            x, y = s[i]
            if x < 2:
                yield Step("Inc", (i,)), _put(s, i, (x + 1, y))
            if y < 1:
                yield Step("Mark", (i,)), _put(s, i, (x, 1))
            o = s[1 - i]
            if y == 1 and o[1] == 0:
                yield Step("Pass", (i,)), _put(_put(s, i, (x, 0)), 1 - i, (o[0], 1))

    def canonical(self, s):
        return s if self.key(s[0]) <= self.key(s[1]) else (s[1], s[0])


def _put(s, i, v):
    return s[:i] + (v,) + s[i + 1:]


def _reached(orbit):
    return Property("not_reached", "test", INVARIANT, "the orbit is never reached", "test",
                    lambda m, s: s not in orbit)


BAD = ((0, 1), (1, 1))
ORBIT = {BAD, (BAD[1], BAD[0])}


def _replays(machine, cex):
    state = cex.init
    for step, after in cex.steps:
        assert (step, after) in set(machine.successors(state))
        state = after
    return state


def test_a_canonical_form_rebuilds_a_replayable_counterexample():
    machine = Pair(key=lambda slot: slot)  # the whole slot: one representative per class
    out = explore(machine, [_reached(ORBIT)])
    assert out.counterexample is not None
    assert _replays(machine, out.counterexample) in ORBIT


def test_a_representative_that_depends_on_the_member_is_reported_plainly():
    # Sorting by y alone leaves slots tied on y in index order: a member of
    # the class, not always the same one. The search still finds the orbit,
    # but no concrete behaviour meets the recorded representatives. It used
    # to stop with "could not rebuild the counterexample (fingerprint
    # collision?)", a RuntimeError: now one line that names the cause and
    # the way out, exit 70 (never 1: there is no trace).
    machine = Pair(key=lambda slot: slot[1])
    with pytest.raises(SymmetryError) as err:
        explore(machine, [_reached(ORBIT)])
    message = str(err.value)
    assert "canonical() is not a symmetry of its steps" in message
    assert "symmetry=false" in message and "\n" not in message
    assert err.value.exit_code == INTERNAL_ERROR


def test_the_rebuild_backtracks_past_a_dead_end():
    # The first successor with the next recorded fingerprint leads nowhere;
    # the second continues. The rebuild must not stop at the first.
    class DeadEnd(Machine):
        name = "dead-end"

        def init_states(self):
            yield "init"

        def successors(self, s):
            return {"init": [(Step("A", ()), "a1"), (Step("B", ()), "a2")],
                    "a2": [(Step("C", ()), "bad")]}.get(s, [])

        def canonical(self, s):
            return "a2" if s == "a1" else s  # merges a state with no way on

    out = explore(DeadEnd(None), [_reached({"bad"})])
    assert [step.name for step, _ in out.counterexample.steps] == ["B", "C"]


# ---------------------------------------------------------------------------
# every catalog model whose canonical is not the identity
# ---------------------------------------------------------------------------

def _symmetric_models():
    for comp in components.COMPONENTS.values():
        for model in comp.models:
            cls = model.build if isinstance(model.build, type) else None
            if cls is not None and cls.canonical is not Machine.canonical:
                yield model


_CASES = [(model, mutant) for model in _symmetric_models()
          for mutant in (None, *sorted(model.machine(None).mutants))]
#: concrete successors sampled per model and mutant (the first the search
#: generates): enough for a second or two each
SAMPLE = 120


def _sample(machine):
    seen: list = []
    Explorer(machine, [], max_states=SAMPLE,
             visit_step=lambda s, step, t: seen.append(t) or len(seen) >= SAMPLE).run()
    return seen


def _others(machine, state):
    """Other members of the state's class: its renamings when the machine
    has them (``permute``), and its canonical form."""
    yield machine.canonical(state)
    if not getattr(machine, "symmetry", False):
        return  # built without its symmetry: canonical is the identity
    if hasattr(machine, "permute") and getattr(machine, "n", 0):
        for perm in permutations(range(machine.n)):
            yield machine.permute(state, list(perm))
    elif hasattr(machine, "part") and hasattr(machine.part("raft"), "permute"):
        raft = machine.part("raft")
        for perm in permutations(range(raft.n)):
            order = [0] * raft.n
            for old, new in enumerate(perm):
                order[new] = old
            yield (raft.permute(state[0], list(perm)), tuple(state[1][o] for o in order))


def _classes_after(machine, state):
    return Counter(machine.canonical(t) for _, t in machine.successors(state))


@pytest.mark.parametrize("model,mutant", _CASES,
                         ids=[f"{m.name}-{mu or 'correct'}" for m, mu in _CASES])
def test_canonical_is_one_representative_and_a_symmetry_of_the_steps(model, mutant):
    machine = model.machine(mutant)
    states = _sample(machine)
    assert len(states) == SAMPLE
    for s in states:
        c = machine.canonical(s)
        after = _classes_after(machine, s)
        for other in _others(machine, s):
            assert machine.canonical(other) == c, (s, other)
            assert _classes_after(machine, other) == after, (s, other)


def test_the_command_line_reports_it_in_one_line_with_exit_70(capsys):
    from kubemc.checker.command import run_command

    def body():
        explore(Pair(key=lambda slot: slot[1]), [_reached(ORBIT)])
        return 0

    assert run_command(body, []) == INTERNAL_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "symmetry=false" in err and "Traceback" not in err

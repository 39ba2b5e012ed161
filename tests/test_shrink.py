"""Step-deletion shrinking: shorter, still violating, 1-minimal, and never
a behaviour the machine cannot take."""

from kubemc.checker.counterexample import Counterexample
from kubemc.checker.shrink import shrink, violating_prefix
from kubemc.model.kernel import Step
from tests.test_kernel import MUTEX, Lock


def behaviour(machine, steps):
    state = init = next(iter(machine.init_states()))
    taken = []
    for step in steps:
        state = machine.apply(state, step)
        assert state is not None, f"{step} is not enabled"
        taken.append((step, state))
    return Counterexample(MUTEX, init, tuple(taken))


def test_padding_is_removed_and_the_violation_kept():
    lock = Lock(clients=3, mutant="no_holder_check")
    padded = [Step("Acquire", (2,)), Step("Release", (2,)), Step("Acquire", (0,)),
              Step("Release", (0,)), Step("Acquire", (1,)), Step("Acquire", (0,))]
    cex = behaviour(lock, padded)
    assert not MUTEX.check(lock, cex.final)
    small = shrink(lock, cex)
    kept = [s for s, _ in small.steps]
    assert len(kept) == 2 and all(s.name == "Acquire" for s in kept)
    remaining = iter(padded)
    assert all(s in remaining for s in kept), "not a subsequence of the original"
    assert not MUTEX.check(lock, small.final)


def test_the_result_is_one_minimal():
    lock = Lock(clients=3, mutant="no_holder_check")
    cex = behaviour(lock, [Step("Acquire", (0,)), Step("Release", (0,)), Step("Acquire", (2,)),
                           Step("Acquire", (1,))])
    small = shrink(lock, cex)
    steps = [s for s, _ in small.steps]
    for i in range(len(steps)):
        assert violating_prefix(lock, small, steps[:i] + steps[i + 1:]) is None


def test_a_deletion_that_disables_a_later_step_is_rejected():
    lock = Lock(clients=2)  # correct model: Release(0) needs Acquire(0) first
    cex = behaviour(lock, [Step("Acquire", (0,)), Step("Release", (0,))])
    assert violating_prefix(lock, cex, [Step("Release", (0,))]) is None

"""A lock with a waiting queue: the kernel docstring's ``Lock`` grown into a
component a real system has — clients that find the lock taken wait in line,
and a release hands the lock to the first waiter by waking it.

Why the wake-up is a step of its own: that is how a lock is built on a
condition variable or a futex — the releaser signals, and the woken waiter
takes the lock when it runs. The step in between is where the classic bugs
live (a signal that is lost, the wrong waiter woken), so the model keeps it.

A state is ``(holders, waiting, signalled)``, all ints, as the kernel asks:

* ``holders`` — the clients holding the lock, sorted (at most one, unless a
  mutant lets a second in);
* ``waiting`` — the clients waiting, in the order they asked;
* ``signalled`` — 1 when the lock is free and its first waiter has been
  woken but has not yet taken it.

Actions: ``Acquire(c)`` (environment: a client asks), ``Release(c)`` (system:
the holder leaves its critical section — assumed to, so weakly fair) and
``Wake(c)`` (system: the signalled waiter ``c`` takes the lock).
"""

from __future__ import annotations

from kubemc.model.kernel import ENVIRONMENT, SYSTEM, Machine, Mutant, Step


class Lock(Machine):
    name = "lock"
    tags = {"Acquire": ENVIRONMENT, "Release": SYSTEM, "Wake": SYSTEM}
    mutants = {
        "no_holder_check": Mutant(
            "Acquire grants the lock whenever nobody waits, without checking that "
            "nobody holds it (the kernel docstring's mutant)",
            violates="mutual_exclusion"),
        "wake_newest": Mutant(
            "Release wakes the most recent waiter instead of the first (a stack where "
            "a queue belongs)",
            violates="waiters_served_in_order"),
        "lost_wakeup": Mutant(
            "Release frees the lock without signalling the first waiter, who sleeps on "
            "(the lost wake-up of monitors and condition variables)",
            violates="waiters_are_served"),
    }

    def __init__(self, clients: int = 3, mutant: str | None = None):
        super().__init__(mutant)
        if not isinstance(clients, int) or isinstance(clients, bool) or clients < 1:
            raise ValueError(f"clients must be a positive integer, not {clients!r}")
        self.clients = clients

    def config(self):
        return {"clients": self.clients}

    def init_states(self):
        yield ((), (), 0)                          # free, nobody waits

    def steps(self, state):
        holders, waiting, signalled = state
        for c in range(self.clients):
            yield Step("Acquire", (c,))
        for c in holders:
            yield Step("Release", (c,))
        if signalled and waiting:
            yield Step("Wake", (self.woken(waiting),))

    def woken(self, waiting: tuple) -> int:
        """The waiter a release wakes: the first in line (the mutant: the last)."""
        return waiting[-1] if self.mutant == "wake_newest" else waiting[0]

    def apply(self, state, step):
        holders, waiting, signalled = state
        (c,) = step.params
        if step.name == "Acquire":
            if c in holders or c in waiting:
                return None                        # guard: c already holds or waits
            free = not holders or self.mutant == "no_holder_check"
            if free and not waiting and not signalled:
                return (tuple(sorted(holders + (c,))), waiting, 0)
            return (holders, waiting + (c,), signalled)
        if step.name == "Release":
            if c not in holders:
                return None
            rest = tuple(h for h in holders if h != c)
            wake = int(bool(waiting) and not rest and self.mutant != "lost_wakeup")
            return (rest, waiting, wake)
        if step.name == "Wake":
            if not signalled or not waiting or c != self.woken(waiting):
                return None                        # guard: only the signalled waiter
            return (tuple(sorted(holders + (c,))), tuple(w for w in waiting if w != c), 0)
        return None

    def view(self, state):
        holders, waiting, signalled = state
        return {"holders": holders, "waiting": waiting, "signalled": bool(signalled)}

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

from kubemc.model.kernel import ENVIRONMENT, SYSTEM, Machine, Mutant, action

#: the seeded bugs, as constants: the kernel checks, when the class is
#: created, that every name the code compares ``self.mutant`` with is declared
NO_HOLDER_CHECK = "no_holder_check"
WAKE_NEWEST = "wake_newest"
LOST_WAKEUP = "lost_wakeup"


class Lock(Machine):
    name = "lock"
    mutants = {
        NO_HOLDER_CHECK: Mutant(
            "Acquire grants the lock whenever nobody waits, without checking that "
            "nobody holds it (the kernel docstring's mutant)",
            violates="mutual_exclusion"),
        WAKE_NEWEST: Mutant(
            "Release wakes the most recent waiter instead of the first (a stack where "
            "a queue belongs)",
            violates="waiters_served_in_order"),
        LOST_WAKEUP: Mutant(
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

    # -- which parameters each action proposes in a state ---------------------
    def every_client(self, state):
        return [(c,) for c in range(self.clients)]

    def each_holder(self, state):
        return [(c,) for c in state[0]]

    def the_woken(self, state):
        _, waiting, signalled = state
        return [(self.woken(waiting),)] if signalled and waiting else []

    def woken(self, waiting: tuple) -> int:
        """The waiter a release wakes: the first in line (the mutant: the last)."""
        return waiting[-1] if self.mutant == WAKE_NEWEST else waiting[0]

    # -- the actions: each declared once, on its handler ----------------------
    @action("Acquire", tag=ENVIRONMENT, params=every_client)
    def acquire(self, state, c):
        """A client asks (the environment: never assumed to happen)."""
        holders, waiting, signalled = state
        if c in holders or c in waiting:
            return None                            # guard: c already holds or waits
        free = not holders or self.mutant == NO_HOLDER_CHECK
        if free and not waiting and not signalled:
            return (tuple(sorted(holders + (c,))), waiting, 0)
        return (holders, waiting + (c,), signalled)

    @action("Release", tag=SYSTEM, params=each_holder)
    def release(self, state, c):
        """The holder leaves its critical section: system, so weakly fair —
        which is what lets "every waiter is served" be true at all."""
        holders, waiting, _ = state
        if c not in holders:
            return None
        rest = tuple(h for h in holders if h != c)
        wake = int(bool(waiting) and not rest and self.mutant != LOST_WAKEUP)
        return (rest, waiting, wake)

    @action("Wake", tag=SYSTEM, params=the_woken)
    def wake(self, state, c):
        """The signalled waiter takes the lock."""
        holders, waiting, signalled = state
        if not signalled or not waiting or c != self.woken(waiting):
            return None                            # guard: only the signalled waiter
        return (tuple(sorted(holders + (c,))), tuple(w for w in waiting if w != c), 0)

    def view(self, state):
        holders, waiting, signalled = state
        return {"holders": holders, "waiting": waiting, "signalled": bool(signalled)}

"""What the lock promises, each with where the promise comes from, judged
from the ``lock`` machine's states (``kubemc_lock.machine``)."""

from __future__ import annotations

from kubemc.properties.core import COVER, EVENTUALLY_ALWAYS, INVARIANT, TRANSITION, Property

COMPONENT = "lock"


def _one_holder(machine, state) -> bool:
    holders, _, _ = state
    return len(holders) <= 1


def _in_order(machine, before, step, after) -> bool:
    _, waiting, _ = before
    _, still, _ = after
    if len(still) >= len(waiting):
        return True                                # nobody left the line
    return still == waiting[1:]


def _nobody_waits(machine, state) -> bool:
    _, waiting, _ = state
    return not waiting


MUTUAL_EXCLUSION = Property(
    "mutual_exclusion", COMPONENT, INVARIANT,
    "At most one client holds the lock.",
    "model/kernel.py's worked example (the lock and its mutual_exclusion); Dijkstra, "
    "'Solution of a problem in concurrent programming control', CACM 8(9), 1965: at any "
    "moment at most one of the computers is engaged in its critical section",
    _one_holder)

WAITERS_SERVED_IN_ORDER = Property(
    "waiters_served_in_order", COMPONENT, TRANSITION,
    "A client leaves the waiting line only from its head, and the others keep their order: "
    "first come, first served.",
    "Lamport, 'A New Solution of Dijkstra's Concurrent Programming Problem', CACM 17(8), "
    "1974 (the bakery algorithm): first-come-first-served — a process that starts waiting "
    "before another enters its critical section first",
    _in_order)

WAITERS_ARE_SERVED = Property(
    "waiters_are_served", COMPONENT, EVENTUALLY_ALWAYS,
    "Once clients stop asking, every waiting client is eventually given the lock: nobody "
    "waits forever.",
    "Herlihy & Shavit, The Art of Multiprocessor Programming, §2.3: a lock is "
    "starvation-free when every thread that attempts to acquire it eventually succeeds; "
    "the lost wake-up it guards against: Lampson & Redell, 'Experience with Processes and "
    "Monitors in Mesa', CACM 23(2), 1980",
    _nobody_waits,
    assumption="a holder leaves its critical section (Release is a system step)")

CONTENTION = Property(
    "contention_reached", COMPONENT, COVER,
    "Some client waits while another holds the lock (the bounds reach contention).",
    "what the three properties above speak of: without contention the waiting line is "
    "always empty and they hold vacuously",
    lambda machine, state: bool(state[0]) and bool(state[1]))

HANDOVER = Property(
    "handover_reached", COMPONENT, COVER,
    "A release wakes a waiter (the bounds reach a hand-over).",
    "Lampson & Redell 1980: a monitor's signal hands the resource to a waiting process — "
    "the step waiters_served_in_order and waiters_are_served judge",
    lambda machine, state: bool(state[2]))

PROPERTIES = (MUTUAL_EXCLUSION, WAITERS_SERVED_IN_ORDER, WAITERS_ARE_SERVED, CONTENTION,
              HANDOVER)

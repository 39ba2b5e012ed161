"""client-go leader election on one Lease, as pure functions over one
role's state (the scheduler's Lease, or the controller manager's): who the
apiserver's Lease names, and what each candidate last read, when, and
whether it believes it leads. ``model.cluster.ha`` runs one of these per
elected component over a topology's masters, with crashes and the store's
quorum around it.

What client-go's ``tools/leaderelection`` does, and how it is kept here:

* **tryAcquireOrRenew** is a Get then an Update of the Lease. ``get``: the
  candidate reads the record; if it differs from the one it observed before
  it records it and restarts its *own* clock on it (``observedTime``: "A
  client observes timestamps captured locally to infer the state of the
  leader election" — the package doc). ``update``: a candidate writes only
  if the Lease is free, its own, or it has observed the same record for
  ``leaseDurationSeconds`` by its own clock; the Update carries the read
  object's resourceVersion, so a write that lost the race gets a 409;
* **renewDeadline**: a leader that has not renewed for ``renew_deadline``
  ticks stops leading (kube-scheduler and kube-controller-manager then
  exit); client-go requires ``renewDeadline < leaseDuration``, which is what
  leaves no overlap: a candidate's observedTime is no earlier than the
  holder's last renew, so by the time it may take the Lease the old holder
  has stopped;
* **retryPeriod** is the interleaving itself: any candidate may retry (Get,
  Update) at any point between two ticks.

Representation (plain tuples; ticks are the model's discrete clock):

* ``lease = (holder, incarnation, age)`` — holderIdentity as a master and
  the incarnation of its process (-1: the Lease is free), and the ticks
  since renewTime by the apiserver's clock, capped;
* ``candidate = (seen, observed_age, lead)`` per master — ``seen`` is the
  record last read, ``(holder, incarnation, fresh)`` or ``()``, ``fresh``
  being False once the Lease was written after the read (exactly when the
  read resourceVersion is stale: a bit where a counter would be unbounded);
  ``observed_age`` the ticks since the candidate observed that record
  (capped at the lease duration); ``lead`` the ticks left before its renew
  deadline (0: not leading; ``GAVE_UP``: a mutant's candidate that stopped
  trying).

Why not the scheduler's ``HAScheduler`` Lease: that one is woven into the
scheduler's own state and judges expiry at the read from the Lease's age
at the apiserver — the same as observedTime with one clock and reads that
see every write, which cannot express the clock-skew bug class this model
is for; making it do so would change its state counts. The abstraction
(Get/Update split, a freshness bit for the resourceVersion, ticks capped at
the lease duration, 3 and 2 ticks) is the same, so the two agree where
they overlap.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

# the scheduler's HA model's durations, so the two Lease models keep one timing
from kubemc.model.scheduler.machine import LEASE_DURATION, RENEW_DEADLINE

FREE = -1
#: a candidate that stopped retrying (only the ``never_retries`` mutant)
GAVE_UP = -1
NO_CANDIDATE = ((), 0, 0)


@attrs.frozen(slots=True)
class Timing:
    """The election's durations in ticks and the masters' clock offsets.

    ``skew`` is each master's clock offset from the apiserver's, in ticks:
    what a renewTime written by one master reads as on another's clock.
    The correct election never compares another host's timestamp with its
    own clock, so skew changes nothing for it; the renewTime mutant does.
    """

    lease_duration: int = LEASE_DURATION
    renew_deadline: int = RENEW_DEADLINE
    skew: tuple[int, ...] = ()

    def __attrs_post_init__(self):
        if not 0 < self.renew_deadline < self.lease_duration:
            raise ValueError("client-go requires 0 < renew_deadline < lease_duration "
                             f"(got {self.renew_deadline} and {self.lease_duration})")

    def offset(self, master: int) -> int:
        return self.skew[master] if master < len(self.skew) else 0


@attrs.frozen(slots=True)
class Rules:
    """Which of client-go's rules hold: each flag is a seeded bug."""

    #: expiry judged from the holder's renewTime on the candidate's clock
    expiry_from_renew_time: bool = False
    #: the Update is sent without the read resourceVersion (a blind write)
    blind_update: bool = False
    #: the leader never gives up at renewDeadline
    ignores_renew_deadline: bool = False
    #: a candidate that finds the Lease held by another stops trying
    never_retries: bool = False


def initial(masters: int, age_cap: int) -> tuple:
    """A free Lease (no holder yet, nothing to wait for) and no candidate
    has read it."""
    return (FREE, 0, age_cap), tuple(NO_CANDIDATE for _ in range(masters))


def leading(role, master: int) -> bool:
    return role[1][master][2] > 0


def _with(role, master: int, cand) -> tuple:
    cands = role[1]
    return role[0], cands[:master] + (cand,) + cands[master + 1:]


def get(role, master: int, rules: Rules):
    """The candidate's Get: record the Lease if it changed since the last
    read (and restart its own observed clock); None when nothing changes."""
    lease, cands = role
    seen, _, lead = cands[master]
    if lead == GAVE_UP:
        return None
    if seen and seen[2]:
        return None                     # the same record: nothing new observed
    record = (lease[0], lease[1], True)
    if rules.never_retries and lease[0] != FREE and lead == 0 and lease[0] != master:
        return _with(role, master, ((), 0, GAVE_UP))
    return _with(role, master, (record, 0, lead))


def may_take(role, master: int, incarnation: int, timing: Timing, rules: Rules) -> bool:
    """client-go's check before the Update: the Lease read is free, the
    candidate's own, or expired — by the candidate's own observation
    (correct) or by the holder's renewTime on its clock (the mutant)."""
    lease, cands = role
    seen, observed_age, _ = cands[master]
    holder, hinc = seen[0], seen[1]
    if holder == FREE or (holder, hinc) == (master, incarnation):
        return True
    if rules.expiry_from_renew_time:
        # renewTime was written on the holder's clock and is read on ours;
        # assumes the Lease read is the current one (age is the apiserver's)
        return lease[2] + timing.offset(master) - timing.offset(holder) >= timing.lease_duration
    return observed_age >= timing.lease_duration


def update(role, master: int, incarnation: int, timing: Timing, rules: Rules):
    """The candidate's Update of the Lease it read. Returns ``(role,
    outcome)`` with outcome ``"written"`` / ``"conflict"`` (a 409), or None
    when the candidate does not send it (nothing read, or held by another
    and not expired) or nothing would change."""
    lease, cands = role
    seen, _, lead = cands[master]
    if not seen or lead == GAVE_UP:
        return None
    if not may_take(role, master, incarnation, timing, rules):
        return None
    if not seen[2] and not rules.blind_update:
        return role, "conflict"          # 409: the read resourceVersion is stale
    new_lease = (master, incarnation, 0)
    mine = ((master, incarnation, True), 0, timing.renew_deadline)
    if new_lease == lease and cands[master] == mine:
        return None                     # a renew in the same tick changes nothing
    stale = tuple(((c[0][0], c[0][1], False) if c[0] else (), c[1], c[2])
                  for c in cands)
    stale = stale[:master] + (mine,) + stale[master + 1:]
    return (new_lease, stale), "written"


def tick(role, live: Sequence[bool], timing: Timing, rules: Rules, age_cap: int):
    """One tick of time: the Lease ages at the apiserver, every live
    candidate's observation ages, and a leader nears its renew deadline —
    reaching it, it stops leading."""
    lease, cands = role
    new_lease = (lease[0], lease[1], min(lease[2] + 1, age_cap))
    out = []
    for m, (seen, observed_age, lead) in enumerate(cands):
        if not live[m]:
            out.append((seen, observed_age, lead))
            continue
        if seen:
            observed_age = min(observed_age + 1, timing.lease_duration)
        if lead > 0:
            lead = max(lead - 1, 1) if rules.ignores_renew_deadline else lead - 1
        out.append((seen, observed_age, lead))
    return new_lease, tuple(out)


def crashed(role, master: int) -> tuple:
    """The master's process is gone: it reads, observes and leads nothing."""
    return _with(role, master, NO_CANDIDATE)


__all__ = ["LEASE_DURATION", "RENEW_DEADLINE", "FREE", "GAVE_UP", "Timing", "Rules", "initial",
           "leading", "get", "may_take", "update", "tick", "crashed"]

"""The etcd nemesis: faults injected into a local cluster on a seeded schedule.

Faults (each one at a time, then healed, then a quiet spell — so the cluster
always regains a quorum and the run measures recovery as well as safety; the
kinds come in rounds of a seeded permutation, so each appears once per round,
and the target — leader or a follower — is a seeded coin):

``kill``
    SIGKILL one member (the leader or a follower), keep it down a moment,
    restart it on the same data directory, wait until it answers /health;
``pause``
    SIGSTOP one member (leader or follower), SIGCONT it later: a process that
    stops responding without dying (a GC pause, a stuck disk) — the other
    members elect a new leader while the old one still believes it leads;
``partition``
    cut one member off from the other members with iptables DROP rules in
    its own network namespace (both directions); clients can still reach it,
    so it keeps receiving requests it cannot commit; heal by flushing them.

Each fault is recorded in the history as one operation of process -1: invoked
when injected (``{"member": name, "role": "leader" | "follower"}``), completed
``ok`` when healed — the window in which it was in force.
"""

from __future__ import annotations

import random
import threading

from kubemc.conformance.runner.args import fault_names
from kubemc.conformance.history import Recorder

FAULTS = ("kill", "pause", "partition")
NEMESIS_PROCESS = -1


def parse_faults(text: str) -> tuple[str, ...]:
    """``kill,pause,partition`` | ``none`` → tuple (BadInput for an unknown name)."""
    return fault_names("--nemesis", FAULTS, text)


class Nemesis:
    """Runs faults against a :class:`conformance.adapters.etcd.cluster.LocalCluster`."""

    def __init__(self, cluster, faults: tuple[str, ...], recorder: Recorder, seed: int = 0, *,
                 quiet: tuple[float, float] = (1.5, 3.0), hold: tuple[float, float] = (1.5, 3.5),
                 log=lambda msg: None):
        self.cluster = cluster
        self.faults = faults
        self.rec = recorder
        self.rng = random.Random(f"{seed}/nemesis")
        self.quiet, self.hold = quiet, hold
        self.log = log
        self.injected: dict[str, int] = {f: 0 for f in faults}
        self.problems: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._active: tuple | None = None     # (fault, member) in force
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        return sum(self.injected.values())

    def start(self) -> None:
        if not self.faults:
            return
        self._thread = threading.Thread(target=self._run, name="kmc-nemesis", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop injecting, heal whatever is in force, and wait for members to be healthy."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.heal_all()

    def heal_all(self) -> None:
        """Idempotent: resume, reconnect and restart every member."""
        c = self.cluster
        for m in c.members:
            try:
                if m.paused:
                    c.resume(m)
                if m.partitioned:
                    c.heal(m)
                if m.proc is None or m.proc.poll() is not None:
                    c.restart(m)
            except Exception as exc:  # noqa: BLE001 - healing must go on for the others
                self.problems.append(f"heal {m.name}: {exc}")

    def _run(self) -> None:
        order: list[str] = []
        while not self._stop.wait(self.rng.uniform(*self.quiet)):
            # rounds of a seeded permutation: every kind of fault comes up
            # once per round, so even a short run exercises all of them
            if not order:
                order = list(self.faults)
                self.rng.shuffle(order)
            fault = order.pop()
            want_leader = self.rng.random() < 0.5
            try:
                self._inject(fault, want_leader)
            except Exception as exc:  # noqa: BLE001 - record and keep the run going
                self.problems.append(f"{fault}: {type(exc).__name__}: {exc}")
                self.log(f"nemesis: {fault} failed: {exc}")
                self.heal_all()

    def _target(self, want_leader: bool):
        c = self.cluster
        leader = c.leader()
        if want_leader and leader is not None:
            return leader, "leader"
        followers = [m for m in c.members if m is not leader]
        return self.rng.choice(followers), ("follower" if leader is not None else "unknown")

    def _inject(self, fault: str, want_leader: bool) -> None:
        c = self.cluster
        m, role = self._target(want_leader)
        tok = self.rec.invoke(NEMESIS_PROCESS, fault, None, {"member": m.name, "role": role})
        hold = self.rng.uniform(*self.hold)
        self.log(f"nemesis: {fault} {role} {m.name} for {hold:.1f}s")
        try:
            if fault == "kill":
                c.kill(m)
                self.injected[fault] += 1
                self._stop.wait(hold)
                c.restart(m)
                try:
                    c.wait_healthy(20.0, [m])
                except RuntimeError as exc:
                    self.problems.append(f"{m.name} did not recover after kill: {exc}")
            elif fault == "pause":
                c.pause(m)
                self.injected[fault] += 1
                self._stop.wait(hold)
                c.resume(m)
            elif fault == "partition":
                c.partition(m)
                self.injected[fault] += 1
                self._stop.wait(hold)
                c.heal(m)
        finally:
            self.rec.complete(tok, "ok", {"member": m.name, "held_seconds": round(hold, 2)})

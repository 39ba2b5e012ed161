"""Generated register histories for benchmarking the linearizability checker.

``kubemc bench linearizability`` needs histories larger and more concurrent
than the shared data: many clients on one register (the case P-compositionality
cannot split), with and without a violation, with a share of operations whose
outcome is unknown. They are written as Jepsen operation logs — the format of
the Jepsen etcd histories — so other checkers (porcupine's Jepsen parser) read
the very same files.

The simulation is a real register: each operation takes effect at one instant
between its invocation and its completion, chosen by a seeded random schedule,
so the history is linearizable by construction. Written values are unique (a
counter), as Jepsen's and etcd's robustness workloads make them. A client
whose operation ends ``:info`` (a timeout) took effect or not, at random, and
continues under a fresh process number, as Jepsen's clients do. The violation
is a stale read, certain by construction: a read late in the history returns
a value whose write was followed, in real time, by another completed write
before the read was invoked — with unique values it can never be read again.
"""

from __future__ import annotations

import random

_LINE = "INFO  jepsen.util - {p}\t:{t}\t:{f}\t{v}"


def _edn(v) -> str:
    if v is None:
        return "nil"
    if isinstance(v, list):
        return "[" + " ".join(map(_edn, v)) + "]"
    return str(v)


def register_history(n_ops: int, clients: int = 50, info: float = 0.0, violation: bool = False,
                     seed: int = 0, concurrency: float = 5.0) -> list[str]:
    """A Jepsen log (lines) of ``n_ops`` operations of ``clients`` clients on one register.

    ``info`` is the share of operations that end ``:info``; ``violation`` plants
    one stale read near the end (see the module doc). ``concurrency`` is the
    mean number of operations in flight: clients think between operations, as
    Jepsen's do (its etcd histories have five clients in flight). With every
    client always busy, fifty operations overlap each one, and neither this
    checker nor porcupine decides 10k operations of one register in minutes.
    """
    rng = random.Random(seed)
    # a picked idle client starts an operation with probability ``start``; a busy
    # one needs two picks to finish, so the busy share b solves b/2 = (1-b)·start
    share = min(0.99, concurrency / clients)
    start = share / (2 * (1 - share))
    events: list[list] = []           # [process, type, f, value], in history order
    value = None
    counter = 0
    procs = list(range(clients))
    next_proc = clients
    slots: list = [None] * clients   # [f, input, applied, output, crash, event index]
    issued = 0
    writes: list[tuple[int, int, int]] = []   # (value, invoke event, completion event)
    reads: list[tuple[int, int]] = []         # (invoke event, completion event) of ok reads
    busy: list[int] = []
    while issued < n_ops or busy:
        c = rng.randrange(clients) if issued < n_ops else rng.choice(busy)
        s = slots[c]
        if s is None:
            if issued >= n_ops or rng.random() >= start:
                continue
            issued += 1
            r = rng.random()
            if r < 0.5:
                f, inp = "read", None
            elif r < 0.8:
                counter += 1
                f, inp = "write", counter
            else:
                counter += 1
                f, inp = "cas", [value if value is not None and rng.random() < 0.7
                                 else rng.randint(1, max(1, counter)), counter]
            crash = rng.random() < info
            slots[c] = [f, inp, False, None, crash, len(events)]
            busy.append(c)
            events.append([procs[c], "invoke", f, inp])
        elif not s[2]:
            s[2] = True
            f, inp = s[0], s[1]
            if s[4] and rng.random() < 0.5:
                continue                 # a timed-out operation that never took effect
            if f == "read":
                s[3] = value
            elif f == "write":
                value = s[3] = inp
            elif value == inp[0]:
                value, s[3] = inp[1], True
            else:
                s[3] = False
        else:
            f, inp, _, out, crash, inv = s
            slots[c] = None
            busy.remove(c)
            if crash:
                events.append([procs[c], "info", f, ":timed-out"])
                procs[c] = next_proc
                next_proc += 1
                continue
            if f == "read":
                events.append([procs[c], "ok", f, out])
                reads.append((inv, len(events) - 1))
            elif f == "write":
                events.append([procs[c], "ok", f, inp])
                writes.append((inp, inv, len(events) - 1))
            else:
                events.append([procs[c], "ok" if out else "fail", f, inp])
                if out:
                    writes.append((inp[1], inv, len(events) - 1))
    if violation:
        _plant_stale_read(events, writes, reads)
    return [_LINE.format(p=p, t=t, f=f, v=_edn(v)) for p, t, f, v in events]


def _plant_stale_read(events, writes, reads) -> None:
    """Make a read near the end return a value overwritten before it began."""
    for inv, done in reversed(reads[: max(1, len(reads) * 9 // 10)]):
        # a write W, then a write W2 invoked after W completed and completed
        # before the read was invoked: W's value is gone for good
        gone = [w for w in writes if w[2] < inv]
        for k in range(len(gone) - 1, 0, -1):
            w2 = gone[k]
            old = next((w for w in reversed(gone[:k]) if w[2] < w2[1]), None)
            if old is not None:
                events[done][3] = old[0]
                return
    raise ValueError("history too short to plant a stale read")

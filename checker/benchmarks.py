"""Benchmarks of the checker itself (``kubemc bench explore-store``,
``kubemc bench kernel-state``). They print figures; nothing asserts on time.
"""

from __future__ import annotations

import timeit

from checker.catalog.store import RAFT
from checker.explore import explore
from model.store.raft import Raft

#: The fixed bound of ``bench explore-store``: the default bound of
#: ``kubemc check store`` (3 servers, terms ≤ 3, one entry per log, one
#: message in flight, server symmetry), so the figure is the one users see.
EXPLORE_STORE_BOUND = dict(RAFT.bounds)


def explore_store(progress) -> dict:
    machine = Raft(**EXPLORE_STORE_BOUND)
    last = [0.0]

    def report(stats):
        if stats.seconds - last[0] >= 5:
            last[0] = stats.seconds
            progress(f"  {stats.states:,} states, depth {stats.depth}, {stats.rate:,.0f}/s")

    outcome = explore(machine, RAFT.properties, progress=report)
    st = outcome.stats
    if outcome.counterexample is not None:
        raise RuntimeError(f"the store violated {outcome.counterexample.prop.name}: "
                           "a benchmark of a broken model means nothing")
    return {
        "bound": ", ".join(f"{k}={v}" for k, v in machine.config().items()),
        "processes": 1,
        "distinct_states": st.states,
        "transitions": st.transitions,
        "depth": st.depth,
        "complete": outcome.complete,
        "seconds": round(st.seconds, 2),
        "distinct_states_per_second": round(st.rate),
    }


def kernel_state(progress) -> dict:
    """Why states are nested tuples: building, hashing and comparing one
    Raft-shaped state in three representations — what the explore loop does
    for every successor (a fresh object each time, so no cached hash helps)."""
    import attrs

    @attrs.frozen(slots=True)
    class Server:
        term: int
        role: int
        voted: int
        log: tuple
        commit: int

    log = ((1, 0), (2, 0))
    bag = (((0, 0, 1, 2, 1, 2), 1),)
    builders = {
        "tuple": lambda t: (tuple((t, 1, 0, log, 1) for _ in range(3)), bag),
        "attrs": lambda t: (tuple(Server(t, 1, 0, log, 1) for _ in range(3)), bag),
        "frozenset_of_items": lambda t: (
            tuple(frozenset((("t", t), ("r", 1), ("v", 0), ("l", log), ("c", 1)))
                  for _ in range(3)), bag),
    }
    n = 100_000
    out = {}
    for name, make in builders.items():
        reference = make(2)
        seconds = timeit.timeit(lambda: _touch(make(2), reference), number=n)
        out[f"{name}_ns_per_build_hash_compare"] = round(seconds / n * 1e9)
        progress(f"  {name}: {out[f'{name}_ns_per_build_hash_compare']} ns")
    return out


def _touch(state, reference):
    return hash(state), state == reference

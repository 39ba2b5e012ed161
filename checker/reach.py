"""Z3 proofs over every dataplane a network machine reaches, walked by explore.

The CNI and kube-proxy machines reach many states that build the same
network (a sandbox that has no address yet, a budget spent, a probe
recorded: none of it changes a packet's fate). So explore walks the states
(breadth-first, with its fingerprints) and its visitor projects each to a
*key* that determines the dataplane's forwarding
(``properties.symbolic.network_reach``: ``cni_key``, ``proxy_key``); each
distinct key is proved once with the encodings of
``properties.symbolic.network``. Breadth-first order makes the first failing
state a shallowest one: its path, followed by a ``Probe`` of the solver's
packet, is the counterexample trace.

Why here and not beside the encodings: the walk is explore's, and
``properties`` may not import ``checker`` (docs/layers.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

import attrs

from kubemc.checker.explore import Explorer
from kubemc.model.kernel import Step
from kubemc.model.network.addr import show
from kubemc.properties.symbolic.network import Verdict


@attrs.frozen
class ReachProof:
    verdict: str                  # "proved" | "violated"
    states: int                   # reachable states walked (on a violation: dataplanes)
    dataplanes: int               # distinct dataplanes proved
    depth: int
    seconds: float
    init: object = None           # on a violation: the path to the failing state
    steps: tuple = ()             # ((Step, state), …) ending with the Probe
    failed: Verdict | None = None


@attrs.frozen
class Representatives:
    """One reachable state per distinct dataplane key, in breadth-first
    order, each with a function giving the path that reaches it."""

    states: int
    depth: int
    seconds: float
    found: tuple   # ((state, path), …): path() -> (init, ((step, state), …))


_CACHE: dict = {}


def prove(machine, queries: Callable, key: Callable, max_states: int | None = None
          ) -> ReachProof:
    """Prove the queries on every distinct reachable dataplane; on the first
    (shallowest) failure, the path there and a Probe of the solver's packet.

    The complete walk is remembered per (machine class, bounds, mutant, key):
    the proofs of several properties walk the same states, and the walk costs
    more than the proofs. A walk stopped early (a violation found) is not."""
    start = time.perf_counter()
    ident = (type(machine).__name__, repr(sorted(machine.config().items())), machine.mutant,
             getattr(key, "__name__", repr(key)), max_states)
    walk = _CACHE.get(ident)
    if walk is not None:
        for n, (state, path) in enumerate(walk.found, 1):
            failed = _first_failure(machine, queries, state)
            if failed is not None:
                return _violated(machine, state, path, failed, n, start)
        return ReachProof("proved", walk.states, len(walk.found), walk.depth,
                          time.perf_counter() - start)

    keys: set = set()
    found: list = []
    failure: list = []

    def visit(state) -> bool:
        k = key(machine, state)
        if k in keys:
            return False
        keys.add(k)
        found.append((state, partial(explorer.path_to, state)))
        failed = _first_failure(machine, queries, state)
        if failed is not None:
            failure.append(failed)
            return True  # stop: this is a shallowest failing dataplane
        return False

    explorer = Explorer(machine, (), max_states=max_states, visit=visit)
    outcome = explorer.run()
    if failure:
        state, path = found[-1]
        return _violated(machine, state, path, failure[0], len(found), start)
    walk = Representatives(outcome.stats.states, outcome.stats.depth, outcome.stats.seconds,
                           tuple(found))
    _CACHE.clear()          # keep one walk: they are large
    _CACHE[ident] = walk
    return ReachProof("proved", walk.states, len(walk.found), walk.depth,
                      time.perf_counter() - start)


def _first_failure(machine, queries: Callable, state) -> Verdict | None:
    return next((v for v in queries(machine, state) if not v.holds), None)


def _violated(machine, state, path, failed: Verdict, n: int, start: float) -> ReachProof:
    init, steps = path()
    pkt = failed.packet
    assert pkt is not None, "a failed proof names the packet that fails it"
    params = (show(pkt.src), show(pkt.dst), pkt.port, pkt.proto, pkt.node)
    # Step's params go through attrs' converter=tuple, whose type mypy cannot solve
    probe = Step("Probe", params)  # type: ignore[arg-type]
    return ReachProof("violated", n, n, len(steps), time.perf_counter() - start,
                      init, steps + ((probe, machine.apply(state, probe)),), failed)

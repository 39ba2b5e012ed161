"""Z3 proofs over every dataplane a network machine reaches.

The CNI and kube-proxy machines reach many states that build the same
network (a sandbox that has no address yet, a budget spent, a probe
recorded: none of it changes a packet's fate). So the states are enumerated
breadth-first, projected to a *key* that determines the dataplane's
forwarding (:func:`cni_key`, :func:`proxy_key`), and each distinct key is proved once with
the encodings of ``properties.symbolic.network``. Breadth-first order makes
the first failing state a shallowest one: its path, followed by a ``Probe``
of the solver's packet, is the counterexample trace.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import attrs

from model.cni.machine import RUNNING
from model.kernel import Step
from model.network.addr import show
from properties.symbolic.network import NetworkEncoding, Verdict, rule_groups


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


def cni_queries(machine, state, which: str) -> list[Verdict]:
    enc = NetworkEncoding(machine.dataplane(state))
    return [enc.no_nat(which)]


def proxy_queries(machine, state, mode: str) -> list[Verdict]:
    """Service correctness on the in-sync nodes of ``state``, one query per
    group of nodes sharing a rule set and an affinity memory. A group's
    verdict depends only on the API state (its rules are compiled from it;
    pods and Services are read from it), its members and their memory — not
    on the other nodes — so it is remembered under that key: states that
    differ in which *other* nodes are in sync ask nothing new."""
    synced = machine.synced_nodes(state)
    if not synced:
        return []
    dp = machine.dataplane(state)
    memo = machine.__dict__.setdefault("_z3_verdicts", {})
    enc = None
    out = []
    for group in rule_groups(dp, synced):
        # nodes of one rule set with different affinity memories are asked apart
        by_memory: dict = {}
        for n in group:
            table = machine.recent_table(state, n)
            by_memory.setdefault(tuple(sorted(table.items())), (table, []))[1].append(n)
        for items, (table, members) in by_memory.items():
            key = (mode, state[0], tuple(members), items)
            if key not in memo:
                enc = enc or NetworkEncoding(dp)
                memo[key] = enc.services(members, mode, recent=table)
            out.append(memo[key])
    return out


def cni_key(machine, state):
    """What decides forwarding in a CNI state: podCIDRs and running pods'
    (node, address) — the routes, bridges and masquerade follow from them."""
    pods = tuple((p, ip) for p, (phase, _, ip, _) in enumerate(state[2]) if phase == RUNNING)
    return (state[1], pods)


def proxy_key(machine, state):
    """What decides Service forwarding on the in-sync nodes: the API state,
    which nodes are in sync (their rules are compiled from it), and node 0's
    ClientIP-affinity memory."""
    return (state[0], tuple(machine.synced_nodes(state)), state[4])


@attrs.frozen
class Representatives:
    """One reachable state per distinct dataplane key, in breadth-first
    order, each with the path that reaches it."""

    states: int
    depth: int
    seconds: float
    found: tuple   # ((state, init, path), …)


_CACHE: dict = {}


def representatives(machine, key: Callable, max_states: int | None = None):
    """Yield ``(state, init, path)`` for one reachable state per distinct
    dataplane key, breadth-first, each with the path that reaches it; the
    last item yielded is the walk's :class:`Representatives` summary.

    The complete walk is remembered per (machine class, bounds, mutant, key):
    the proofs of several properties walk the same states, and the walk costs
    more than the proofs. A walk abandoned early (a violation found) is not."""
    ident = (type(machine).__name__, repr(sorted(machine.config().items())), machine.mutant,
             getattr(key, "__name__", repr(key)), max_states)
    if ident in _CACHE:
        yield from _CACHE[ident].found
        yield _CACHE[ident]
        return
    start = time.perf_counter()
    parent: dict = {}
    keys: set = set()
    found = []
    frontier = []
    for s in machine.init_states():
        if s not in parent:
            parent[s] = None
            frontier.append(s)
    depth = 0
    while True:
        for s in frontier:
            k = key(machine, s)
            if k not in keys:
                keys.add(k)
                init, path = _path(parent, s)
                found.append((s, init, path))
                yield found[-1]
        nxt = []
        for s in frontier:
            if not machine.within_bounds(s):
                continue
            for step, t in machine.successors(s):
                if t not in parent:
                    parent[t] = (s, step)
                    nxt.append(t)
        if not nxt or (max_states is not None and len(parent) >= max_states):
            break
        frontier = nxt
        depth += 1
    out = Representatives(len(parent), depth, time.perf_counter() - start, tuple(found))
    _CACHE.clear()          # keep one walk: they are large
    _CACHE[ident] = out
    yield out


def _path(parent, state):
    path = []
    cur = state
    while parent[cur] is not None:
        prev, step = parent[cur]
        path.append((step, cur))
        cur = prev
    path.reverse()
    return cur, tuple(path)


def prove(machine, queries: Callable, key: Callable, max_states: int | None = None
          ) -> ReachProof:
    """Prove the queries on every distinct reachable dataplane; on the first
    (shallowest) failure, the path there and a Probe of the solver's packet."""
    start = time.perf_counter()
    n = 0
    for item in representatives(machine, key, max_states):
        if isinstance(item, Representatives):
            return ReachProof("proved", item.states, len(item.found), item.depth,
                              time.perf_counter() - start)
        state, init, path = item
        n += 1
        for v in queries(machine, state):
            if not v.holds:
                pkt = v.packet
                probe = Step("Probe", (show(pkt.src), show(pkt.dst), pkt.port, pkt.proto,
                                       pkt.node))
                return ReachProof("violated", n, n, len(path), time.perf_counter() - start,
                                  init, path + ((probe, machine.apply(state, probe)),), v)
    raise AssertionError("the walk ends with its summary")

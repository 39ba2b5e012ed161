"""What the Z3 proofs over every reachable dataplane ask of each state.

The CNI and kube-proxy machines reach many states that build the same
network (a sandbox that has no address yet, a budget spent, a probe
recorded: none of it changes a packet's fate). So each state is projected
to a *key* that determines the dataplane's forwarding (:func:`cni_key`,
:func:`proxy_key`), and each distinct key is proved once with the queries
here (:func:`cni_queries`, :func:`proxy_queries`), the encodings of
``properties.symbolic.network``. The walk over the reachable states is
explore's, with a visitor (``checker.reach``): properties do not search.
"""

from __future__ import annotations

from kubemc.model.cni.machine import RUNNING
from kubemc.properties.symbolic.network import NetworkEncoding, Verdict, rule_groups


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

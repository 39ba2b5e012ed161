"""The Maelstrom run's nemesis: network partitions between the nodes.

Every ``interval`` seconds (``--nemesis-interval``; by default a sixth of the
time limit, within 0.5..10 s) the nodes are split into two random halves for
``interval`` seconds, then healed for as long, until the workload ends. While
a partition is in force the network
(:mod:`conformance.adapters.maelstrom.network`) drops every node-to-node
message between the halves; clients are never cut off (as in Maelstrom). Each
partition is recorded with its start, end and sides for the report.
"""

from __future__ import annotations

import asyncio
import random

from kubemc.conformance.adapters.maelstrom.network import Network


async def partitions(net: Network) -> None:
    """Cut and heal ``net`` in turn until its deadline (``--nemesis partition``)."""
    cfg = net.cfg
    if cfg.nemesis != "partition":
        return
    if cfg.nodes < 2:
        net.notes.append("no partitions: a single node has no one to be cut off from")
        return
    rng = random.Random(f"{cfg.seed}/nemesis")
    interval = cfg.partition_interval
    ids = cfg.node_ids()
    loop = net.loop
    try:
        while True:
            await asyncio.sleep(interval)
            if loop.time() + 0.1 >= net.deadline or net.stopping:
                return
            order = ids[:]
            rng.shuffle(order)
            half = len(order) // 2
            sides = [sorted(order[:half]), sorted(order[half:])]
            net.partition = {n: 0 for n in sides[0]} | {n: 1 for n in sides[1]}
            record = {"start": round(net.now(), 3), "end": None, "sides": sides}
            net.partitions.append(record)
            await asyncio.sleep(min(interval, max(0.0, net.deadline - loop.time())))
            net.partition = None
            record["end"] = round(net.now(), 3)
    finally:
        if net.partition is not None:
            net.partition = None
            if net.partitions and net.partitions[-1]["end"] is None:
                net.partitions[-1]["end"] = round(net.now(), 3)

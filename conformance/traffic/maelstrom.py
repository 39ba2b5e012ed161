"""The Maelstrom lin-kv workload: clients that drive the nodes and record
every operation.

``concurrency`` clients, each with one request outstanding, each bound to
node ``n((i-1) mod N)`` while that node lives; they wait a random pause
between requests so that all together issue about ``rate`` requests per
second. Requests are read, write and cas in equal parts on small integer
values; each key takes at most ``per_key_limit`` operations and is then
retired for a fresh one, which keeps every key's sub-history small enough to
check exactly (Jepsen's independent keys). After an ``info`` (unknown)
outcome the client takes a fresh process number (process + concurrency), as
Jepsen does: its old request may still be in flight.

Why apart from the network (:mod:`conformance.adapters.maelstrom.network`):
the network holds any program to the protocol; what is asked of it, and how
each answer is recorded (:func:`conformance.adapters.maelstrom.protocol.classify`),
is the workload's.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import attrs

from kubemc.conformance.adapters.maelstrom.network import Network, Node
from kubemc.conformance.adapters.maelstrom.protocol import classify, encode, short
from kubemc.conformance.history import INFO, Recorder


@attrs.define(eq=False)
class Pending:
    """A request waiting for its reply."""

    future: asyncio.Future
    target: str


@attrs.define(eq=False)
class Client:
    id: str
    index: int                       # 1-based
    process: int
    home: str
    next_msg_id: int = 0
    pending: dict = attrs.Factory(dict)          # msg_id -> Pending
    timed_out: set = attrs.Factory(set)
    answered: set = attrs.Factory(set)


class Keys:
    """Keys in use: ``count`` at a time, each retired after ``limit`` operations."""

    def __init__(self, count: int, limit: int):
        self.limit = limit
        self.active = list(range(count))
        self.used: Counter = Counter()
        self.next = count

    def pick(self, rng: random.Random) -> int:
        i = rng.randrange(len(self.active))
        key = self.active[i]
        self.used[key] += 1
        if self.used[key] >= self.limit:
            self.active[i] = self.next
            self.next += 1
        return key


class LinKv:
    """The lin-kv clients of one run, recording into ``recorder``; the
    network hands them their replies (:meth:`on_reply`) and the news of a
    node's exit (:meth:`on_node_exit`)."""

    def __init__(self, net: Network, recorder: Recorder):
        self.net = net
        self.cfg = net.cfg
        self.rec = recorder
        self.keys = Keys(net.cfg.keys, net.cfg.per_key_limit)
        self.clients: dict[str, Client] = {}
        self.late_replies = 0
        net.clients = self.clients
        net.client_side = self

    def start(self) -> list[asyncio.Task]:
        """Create the clients and start them; their tasks end by the deadline."""
        for i in range(1, self.cfg.clients + 1):
            home = self.cfg.node_ids()[(i - 1) % self.cfg.nodes]
            self.clients[f"c{i}"] = Client(f"c{i}", i, i - 1, home)
        return [asyncio.create_task(self.client(c)) for c in self.clients.values()]

    def target(self, client: Client) -> str | None:
        nodes = self.net.nodes
        if nodes[client.home].alive:
            return client.home
        alive = [nid for nid, n in nodes.items() if n.alive]
        return alive[client.index % len(alive)] if alive else None

    def on_reply(self, client_id: str, node: Node, body: dict) -> None:
        client = self.clients[client_id]
        irt = body.get("in_reply_to")
        pending = client.pending.get(irt) if isinstance(irt, int) else None
        if pending is not None and not pending.future.done():
            pending.future.set_result(body)
        elif irt in client.timed_out:
            self.late_replies += 1
        elif irt in client.answered:
            self.net.observe("unexpected-reply", f"{node.id} answered {client.id}'s request "
                             f"{irt} a second time: {short(body)}")
        else:
            self.net.observe("unexpected-reply", f"{node.id} sent {client.id} {short(body)}")

    def on_node_exit(self, node_id: str) -> None:
        """Requests outstanding at a node that exited have an unknown outcome."""
        for client in self.clients.values():
            for p in client.pending.values():
                if p.target == node_id and not p.future.done():
                    p.future.set_result({"type": "__exited__"})

    def next_op(self, rng: random.Random) -> tuple[str, int, Any, dict]:
        key = self.keys.pick(rng)
        f = rng.choice(("read", "write", "cas"))
        if f == "read":
            return f, key, None, {"type": "read", "key": key}
        if f == "write":
            v = rng.randrange(self.cfg.values)
            return f, key, v, {"type": "write", "key": key, "value": v}
        a, b = rng.randrange(self.cfg.values), rng.randrange(self.cfg.values)
        return f, key, [a, b], {"type": "cas", "key": key, "from": a, "to": b}

    async def client(self, client: Client) -> None:
        net, loop = self.net, self.net.loop
        rng = random.Random(f"{self.cfg.seed}/{client.id}")
        gap = self.cfg.clients / self.cfg.rate
        due = loop.time()
        while not net.stopping:
            # Pauses are counted from the previous *scheduled* start, so the time a
            # request takes comes out of the pause (the rate holds while latency
            # stays below the gap), but a slow request never causes a burst.
            due = max(due + rng.uniform(0, 2 * gap), loop.time())
            if due >= net.deadline:
                return
            await asyncio.sleep(due - loop.time())
            target = self.target(client)
            if target is None or net.stopping:
                return
            f, key, value, body = self.next_op(rng)
            client.next_msg_id += 1
            mid = client.next_msg_id
            body["msg_id"] = mid
            token = self.rec.invoke(client.process, f, str(key), value)
            fut = loop.create_future()
            client.pending[mid] = Pending(fut, target)
            net.stats["sent"] += 1
            loop.call_later(net.delay(), net.write, net.nodes[target],
                            encode(client.id, target, body), client.id)
            done, _ = await asyncio.wait([fut], timeout=self.cfg.timeout)
            del client.pending[mid]
            reply = fut.result() if done else None
            if reply is None:
                client.timed_out.add(mid)
            else:
                client.answered.add(mid)
            if reply is not None and reply.get("type") == "__exited__":
                typ, val, issue = INFO, None, None
            else:
                typ, val, issue = classify(f, body, reply)
            if issue:
                net.observe("bad-reply", f"{target}: {issue}")
            self.rec.complete(token, typ, val)
            net.stats[typ] += 1
            if typ == INFO:
                client.process += self.cfg.clients

#!/usr/bin/env python3
"""A FAULTY lin-kv node: reads are served from a local replica updated asynchronously.

It is the example the conformance runner must reject::

    kubemc conform maelstrom --bin "python3 conformance/adapters/maelstrom/nodes/replica_kv.py"

Protocol: as in ``leader_kv.py`` (Maelstrom's ``init`` handshake and lin-kv
``read``/``write``/``cas`` requests, one JSON message per line).

Design, and why it is NOT linearizable: writes and compare-and-sets go to the
first node of ``node_ids`` (the leader), which applies them to its map,
answers, and only then tells every other node the new value (``replicate``),
without waiting for anyone. Every node answers reads from its own copy. A
client may therefore see its write acknowledged, and another client may then
read the old value from a node the ``replicate`` message has not reached yet;
while the network is partitioned the ``replicate`` messages are simply lost,
and a replica stays stale until the next write of that key. Either way a read
that begins after a write finished returns a value older than that write: a
stale read, which linearizability forbids (Herlihy & Wing, 1990: every
operation takes effect at one instant between its invocation and its reply).
"""

import json
import sys


def main() -> None:
    node_id = None
    node_ids = []
    leader = None
    replica = {}      # this node's copy; the leader's copy is the authoritative map
    pending = {}      # forward msg_id -> (client, client msg_id)
    next_id = 0

    def send(dest, body):
        sys.stdout.write(json.dumps({"src": node_id, "dest": dest, "body": body}) + "\n")
        sys.stdout.flush()

    def new_id():
        nonlocal next_id
        next_id += 1
        return next_id

    def read(req):
        key = json.dumps(req.get("key"), sort_keys=True)
        if key not in replica:
            return {"type": "error", "code": 20, "text": "key does not exist"}
        return {"type": "read_ok", "value": replica[key]}

    def update(req):
        """On the leader: apply a write or cas, then replicate it asynchronously."""
        key = json.dumps(req.get("key"), sort_keys=True)
        if req["type"] == "write":
            replica[key] = req.get("value")
            reply = {"type": "write_ok"}
        elif key not in replica:
            return {"type": "error", "code": 20, "text": "key does not exist"}
        elif replica[key] != req.get("from"):
            return {"type": "error", "code": 22, "text": "precondition failed"}
        else:
            replica[key] = req.get("to")
            reply = {"type": "cas_ok"}
        return reply

    def replicate(req):
        key = json.dumps(req.get("key"), sort_keys=True)
        for peer in node_ids:
            if peer != node_id:
                send(peer, {"type": "replicate", "key": key, "value": replica[key]})

    for line in sys.stdin:
        msg = json.loads(line)
        src, body = msg["src"], msg["body"]
        kind = body.get("type")
        if kind == "init":
            node_id, node_ids = body["node_id"], body["node_ids"]
            leader = node_ids[0]
            send(src, {"type": "init_ok", "msg_id": new_id(), "in_reply_to": body["msg_id"]})
        elif kind == "read":                          # the bug: a local, possibly stale read
            send(src, dict(read(body), msg_id=new_id(), in_reply_to=body["msg_id"]))
        elif kind in ("write", "cas"):
            if node_id == leader:
                reply = update(body)
                send(src, dict(reply, msg_id=new_id(), in_reply_to=body["msg_id"]))
                if reply["type"] != "error":
                    replicate(body)                   # after the reply: asynchronous
            else:
                fid = new_id()
                pending[fid] = (src, body["msg_id"])
                send(leader, {"type": "forward", "msg_id": fid, "request": body})
        elif kind == "forward":
            reply = update(body["request"])
            send(src, {"type": "forward_ok", "msg_id": new_id(),
                       "in_reply_to": body["msg_id"], "reply": reply})
            if reply["type"] != "error":
                replicate(body["request"])
        elif kind == "forward_ok":
            client = pending.pop(body["in_reply_to"], None)
            if client is not None:
                send(client[0], dict(body["reply"], msg_id=new_id(), in_reply_to=client[1]))
        elif kind == "replicate":
            replica[body["key"]] = body["value"]
        else:
            print(f"{node_id}: ignoring {kind!r}", file=sys.stderr)


if __name__ == "__main__":
    try:
        main()
    except (BrokenPipeError, KeyboardInterrupt):
        pass

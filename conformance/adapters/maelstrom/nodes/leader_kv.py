#!/usr/bin/env python3
"""A CORRECT lin-kv node: every request is served by one fixed leader.

Run it under the conformance runner (it is also a readable example of a
Maelstrom node, with nothing but the standard library)::

    kubemc conform maelstrom --bin "python3 conformance/adapters/maelstrom/nodes/leader_kv.py"

Protocol (Maelstrom, doc/protocol.md and doc/workloads.md "lin-kv"): one JSON
message per line on stdin and stdout, ``{"src", "dest", "body"}``; the first
message is ``init`` (``node_id``, ``node_ids``), answered with ``init_ok``; the
workload sends ``read {key}``, ``write {key, value}`` and ``cas {key, from,
to}``, answered with ``read_ok {value}``, ``write_ok``, ``cas_ok``, or
``error {code, text}`` (20 key-does-not-exist, 22 precondition-failed).

Design, and why it is linearizable: the first node of ``node_ids`` is the
leader and holds the only copy of the map. A node that receives a client
request forwards it to the leader (``forward``); the leader applies it to its
map in the order it reads its stdin, one at a time, and answers
(``forward_ok``) with the body the client should get; the first node relays
that body to the client. Each operation therefore takes effect at one instant,
on one map, between the client's request and its reply: that instant is its
linearization point. A forward or its answer that the network drops (a
partition) leaves the client without a reply: the client times out and
records the outcome as unknown, which linearizability allows, since the
operation may or may not have taken effect. The price is availability: a
node cut off from the leader serves nothing.
"""

import json
import sys


def apply(store: dict, req: dict) -> dict:
    """Apply one lin-kv request to ``store``, the leader's map; return the reply body."""
    kind, key = req.get("type"), req.get("key")
    key = json.dumps(key, sort_keys=True)   # keys may be any JSON value
    if kind == "read":
        if key not in store:
            return {"type": "error", "code": 20, "text": "key does not exist"}
        return {"type": "read_ok", "value": store[key]}
    if kind == "write":
        store[key] = req.get("value")
        return {"type": "write_ok"}
    if kind == "cas":
        if key not in store:
            return {"type": "error", "code": 20, "text": "key does not exist"}
        if store[key] != req.get("from"):
            return {"type": "error", "code": 22,
                    "text": f"expected {req.get('from')!r}, found {store[key]!r}"}
        store[key] = req.get("to")
        return {"type": "cas_ok"}
    return {"type": "error", "code": 10, "text": f"unsupported request {kind!r}"}


def main(stdin=sys.stdin) -> None:
    node_id = None
    leader = None
    store = {}        # the leader's map; empty on every other node
    pending = {}      # forward msg_id -> (client, client msg_id)
    next_id = 0

    def send(dest, body):
        sys.stdout.write(json.dumps({"src": node_id, "dest": dest, "body": body}) + "\n")
        sys.stdout.flush()

    def new_id():
        nonlocal next_id
        next_id += 1
        return next_id

    for line in stdin:
        msg = json.loads(line)
        src, body = msg["src"], msg["body"]
        kind = body.get("type")
        if kind == "init":
            node_id, leader = body["node_id"], body["node_ids"][0]
            send(src, {"type": "init_ok", "msg_id": new_id(), "in_reply_to": body["msg_id"]})
        elif kind in ("read", "write", "cas"):
            if node_id == leader:
                reply = apply(store, body)
                send(src, dict(reply, msg_id=new_id(), in_reply_to=body["msg_id"]))
            else:
                fid = new_id()
                pending[fid] = (src, body["msg_id"])
                send(leader, {"type": "forward", "msg_id": fid, "request": body})
        elif kind == "forward":                      # we are the leader
            reply = apply(store, body["request"])
            send(src, {"type": "forward_ok", "msg_id": new_id(),
                       "in_reply_to": body["msg_id"], "reply": reply})
        elif kind == "forward_ok":                   # relay the leader's answer
            client = pending.pop(body["in_reply_to"], None)
            if client is not None:
                send(client[0], dict(body["reply"], msg_id=new_id(), in_reply_to=client[1]))
        else:
            print(f"{node_id}: ignoring {kind!r}", file=sys.stderr)


if __name__ == "__main__":
    try:
        main()
    except (BrokenPipeError, KeyboardInterrupt):
        pass

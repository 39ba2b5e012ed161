#!/usr/bin/env python3
"""A CORRECT lin-kv node that relays requests the way Maelstrom's Raft tutorial does.

::

    kubemc conform maelstrom --bin "python3 conformance/adapters/maelstrom/nodes/relay_kv.py"

The first node of ``node_ids`` is the leader and holds the only copy of the
map, which it serves with ``leader_kv.py``'s ``apply``. The difference is how a request reaches it: a
node that is not the leader puts the client's message back on the network
*unchanged* except for ``dest`` — ``src`` still names the client — and the
leader, seeing a request from the client, answers the client directly.
Maelstrom's network allows this, since it checks only that ``src`` and
``dest`` name known nodes or clients (``validate-msg`` in
``src/maelstrom/net.clj``); its demo Raft in Python forwards so. The runner
must accept it and note it.

``--spoof-src=NAME`` breaks the protocol on purpose: relayed messages carry
``src`` NAME instead of the client's, and when NAME names no node or client
the runner must report every such message.
``--marker=TOKEN`` is ignored (tests find leftover processes by it).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from leader_kv import apply  # noqa: E402 - the same map, the same answers


def main(stdin=sys.stdin, spoof=None) -> None:
    node_id = leader = None
    store = {}

    def emit(msg):
        sys.stdout.write(json.dumps(msg) + "\n")
        sys.stdout.flush()

    for line in stdin:
        msg = json.loads(line)
        body = msg["body"]
        kind = body.get("type")
        if kind == "init":
            node_id, leader = body["node_id"], body["node_ids"][0]
            emit({"src": node_id, "dest": msg["src"],
                  "body": {"type": "init_ok", "in_reply_to": body["msg_id"]}})
        elif kind in ("read", "write", "cas"):
            if node_id == leader:
                reply = dict(apply(store, body), in_reply_to=body["msg_id"])
                emit({"src": node_id, "dest": msg["src"], "body": reply})
            else:                          # relay: the client's message, src unchanged
                emit(dict(msg, dest=leader, src=spoof or msg["src"]))


if __name__ == "__main__":
    spoof = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--spoof-src=")), None)
    try:
        main(spoof=spoof)
    except (BrokenPipeError, KeyboardInterrupt):
        pass

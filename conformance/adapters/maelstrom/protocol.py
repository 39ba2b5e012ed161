"""The Maelstrom protocol as kubemc speaks it: messages, error codes, and how
a lin-kv reply becomes a history completion.

From Maelstrom's ``doc/protocol.md`` (lin-kv in ``doc/workloads.md``, both at
https://github.com/jepsen-io/maelstrom):

* a node reads one JSON message per line on stdin and writes one per line on
  stdout; a message is ``{"src", "dest", "body"}`` and a body has a string
  ``type``, an optional integer ``msg_id`` and, in a reply, ``in_reply_to``;
  stdout carries nothing else (logs go to stderr);
* the runner first sends ``init {node_id, node_ids}`` and awaits ``init_ok``;
* lin-kv: ``read {key}`` → ``read_ok {value}``, ``write {key, value}`` →
  ``write_ok``, ``cas {key, from, to}`` → ``cas_ok``; ``cas`` answers error 20
  when the key does not exist and 22 when ``from`` does not match;
* ``error {code, text}``: codes 0–999 are Maelstrom's, each *definite* (the
  operation did not and never will happen) or *indefinite* (it may have
  happened, may happen later); custom codes are indefinite (see
  :data:`ERRORS`).

How a reply becomes a history event is decided in :func:`classify` (the
module :mod:`conformance.adapters.maelstrom.run` says why).
"""

from __future__ import annotations

import json
from typing import Any

from kubemc.conformance.history import FAIL, INFO, OK

# code -> (name, definite); Maelstrom doc/protocol.md, "Errors".
ERRORS: dict[int, tuple[str, bool]] = {
    0: ("timeout", False),
    1: ("node-not-found", True),
    10: ("not-supported", True),
    11: ("temporarily-unavailable", True),
    12: ("malformed-request", True),
    13: ("crash", False),
    14: ("abort", True),
    20: ("key-does-not-exist", True),
    21: ("key-already-exists", True),
    22: ("precondition-failed", True),
    30: ("txn-conflict", True),
}
KEY_DOES_NOT_EXIST, PRECONDITION_FAILED = 20, 22


MAX_LINE = 1 << 20            # a longer stdout line is a protocol error
ADMIN = "c0"                  # the runner's own client id, used for init

# Problems that fail the run, by kind, with the sentence that explains each.
PROBLEM_KINDS = {
    "init": "did not complete the init handshake",
    "exited": "exited before the end of the run",
    "garbage": "wrote a line on stdout that is not a Maelstrom message",
    "unknown-src": "sent a message whose src names no node or client",
    "unknown-dest": "sent a message to a node or client that does not exist",
}

# What Maelstrom accepts but a reader may want to know: counted, shown as notes.
NOTE_KINDS = {
    "relayed": "messages re-sent with another node's or client's src (Maelstrom allows this)",
    "unheard-src": "messages whose src names a node or client that never sent the node anything",
    "unexpected-reply": "replies that answer none of the client's outstanding requests "
                        "(ignored, as Maelstrom's client ignores them)",
    "bad-reply": "replies of the wrong type or shape (recorded as unknown outcomes, as "
                 "Maelstrom records them)",
}



def error_info(code: Any) -> tuple[str, bool]:
    """(name, definite) for an error code; unknown and custom codes are indefinite."""
    if isinstance(code, int) and not isinstance(code, bool) and code in ERRORS:
        return ERRORS[code]
    return (f"error-{code}", False)


def classify(f: str, request: dict, reply: dict | None) -> tuple[str, Any, str | None]:
    """How one lin-kv reply becomes a history completion.

    Returns ``(type, value, problem)``: ``type`` is ``ok``/``fail``/``info``,
    ``value`` is the completion's value in the register model's shapes
    (read: the value; write: the value written; cas: ``[from, to]``), and
    ``problem`` is a description when the reply breaks the protocol.
    ``reply`` is ``None`` for a timeout.
    """
    if reply is None:
        return INFO, None, None
    kind = reply.get("type")
    if kind == "error":
        code = reply.get("code")
        if not isinstance(code, int) or isinstance(code, bool):
            return INFO, None, f"error reply without an integer code: {short(reply)}"
        name, definite = error_info(code)
        if f == "read" and code == KEY_DOES_NOT_EXIST:
            return OK, None, None
        if f == "cas" and code not in (KEY_DOES_NOT_EXIST, PRECONDITION_FAILED):
            # The register model reads a failed cas as "the compare did not
            # hold"; a cas refused for another reason did not happen either,
            # but claimed nothing about the value: unknown is the sound record.
            definite = False
        if definite:   # the history format wants [from, to] for a cas, whatever its outcome
            value = [request["from"], request["to"]] if f == "cas" else {"error": code,
                                                                          "name": name}
            return FAIL, value, None
        return INFO, {"error": code, "name": name}, None
    if kind == f"{f}_ok":
        if f == "read":
            if "value" not in reply:
                return INFO, None, f"read_ok without a value: {short(reply)}"
            return OK, reply["value"], None
        if f == "write":
            return OK, request["value"], None
        return OK, [request["from"], request["to"]], None
    return INFO, None, f"{f} answered with {kind!r}: {short(reply)}"


def short(obj: Any, limit: int = 160) -> str:
    text = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"




def encode(src: str, dest: str, body: dict) -> bytes:
    return json.dumps({"src": src, "dest": dest, "body": body},
                      separators=(",", ":")).encode() + b"\n"


"""Swimlanes of a trace: which component or server each step belongs to, and
which messages travel between them.

A trace records states and actions, not lanes, so the lanes are derived from
the shape of the state. The first rule that applies wins:

1. **history** — a conformance window (``#meta`` kind ``history``): one lane
   per client process, the first parameter of every operation (where that
   is not a number, as in the CRI runner's windows, per object the call
   targets).
2. **components** — a composition (every variable is ``component.variable``,
   as ``model.kernel.Composition`` names them): one lane per component. An
   action ``caller->callee.Link`` is an event on the caller with an arrow to
   the callee; ``component.Action`` is an event on its component.
3. **servers** — variables that are sequences of a fixed length N in every
   state, where the model's bounds (``#meta`` config) count N servers,
   nodes, pods, clients, replicas, workers, writers, services or namespaces:
   one lane per index of each such count (``server 0``, ``node 2``), fed by
   those variables' elements. Every other variable is a lane of its own.
4. **variables** — otherwise every state variable is a lane (a single
   machine: its parts — apiserver objects, watch events, informer cache,
   work queue — are the places where things happen).

Messages: a variable holding records with ``src`` and ``dst`` fields (Raft's
``messages``, as a list or a bag of ``[message, count]`` pairs), whose
``src`` and ``dst`` name lanes, is the network rather than a lane: a message
that appears is sent, and one that disappears is delivered; each is an arrow
from its sender's lane at the sending step to its receiver's lane at the
delivering step, and one never delivered is drawn to the end, "in flight".

A step is an event on the lanes whose part of the state it changed (plus the
endpoints of the messages it sent or delivered). Its home — where its action
is written — is the caller of a link, the process of an operation, the lane
its first integer parameter names among those (``server 1``, ``replica-1``),
or else the first of them.
A step that changed nothing sits on its named lane, or the first lane.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

#: words in a model's bounds that count entities one lane each
ENTITY_COUNTS = ("servers", "nodes", "pods", "clients", "replicas", "workers",
                 "writers", "services", "namespaces")


class Lanes:
    """The lanes of one trace, and which lanes each variable feeds.

    ``names`` in display order; ``rule`` is the rule that made them;
    ``parts(state)`` maps every lane to the state's part that belongs to it,
    so comparing parts of two states says which lanes a step touched;
    ``network`` names the message variables drawn as arrows.
    """

    def __init__(self, rule: str, names: list[str], parts, network: list[str],
                 lane_of_endpoint):
        self.rule = rule
        self.names = names
        self.parts = parts
        self.network = network
        self.lane_of_endpoint = lane_of_endpoint


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def action_of(state: dict) -> tuple[str, list]:
    meta = state.get("#meta") if isinstance(state.get("#meta"), dict) else {}
    name = meta.get("action")
    params = meta.get("params")
    return (name if isinstance(name, str) else "?",
            params if isinstance(params, list) else [])


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _values(state: dict, variables: list[str]) -> dict:
    return {v: state.get(v) for v in variables}


def derive(trace: dict) -> Lanes:
    """The lanes of ``trace`` by the rules of this module's docstring."""
    meta = trace.get("#meta") if isinstance(trace.get("#meta"), dict) else {}
    variables = [v for v in trace["vars"]]
    states = trace["states"]
    if meta.get("kind") == "history":
        return _history(states, variables)
    if variables and all("." in v and not v.startswith(".") for v in variables):
        return _components(variables)
    return _servers_or_variables(meta, states, variables)


def history_lane(state: dict) -> str:
    """The lane of one operation of a history: its first parameter, the
    client process (``process 3``) where it is a number, else what the call
    targets (the CRI runner's container or sandbox id)."""
    _, params = action_of(state)
    p = params[0] if params else None
    if _int(p) is not None:
        return f"process {p}"
    return str(p) if p not in (None, "") else "(no target)"


def _history(states, variables) -> Lanes:
    processes = []
    for s in states:
        if history_lane(s) not in processes:
            processes.append(history_lane(s))

    def parts(state):
        return {history_lane(state): _key(_values(state, variables))}
    return Lanes("history", processes, parts, [], lambda e: None)


def _components(variables) -> Lanes:
    names = []
    for v in variables:
        c = v.split(".", 1)[0]
        if c not in names:
            names.append(c)

    def parts(state):
        out = {c: [] for c in names}
        for v in variables:
            out[v.split(".", 1)[0]].append(state.get(v))
        return {c: _key(p) for c, p in out.items()}
    return Lanes("components", names, parts, [], lambda e: e if e in names else None)


def _fixed_length(states, variable) -> int | None:
    lengths = {len(s.get(variable)) if isinstance(s.get(variable), list) else None
               for s in states}
    if len(lengths) == 1:
        n = lengths.pop()
        return n if n and n >= 2 else None
    return None


def _count_for(variable: str, n: int, config: dict) -> str | None:
    """The entity count of the bounds that ``variable``'s length is: the one
    named like the variable, else the only one of that size."""
    counts = {k: _int(v) for k, v in config.items() if k in ENTITY_COUNTS}
    if counts.get(variable) == n:
        return variable
    same = [k for k, v in counts.items() if v == n]
    return same[0] if len(same) == 1 else None


def _servers_or_variables(meta, states, variables) -> Lanes:
    config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    indexed: dict[str, str] = {}
    for v in variables:
        n = _fixed_length(states, v)
        count = _count_for(v, n, config) if n else None
        if count:
            indexed[v] = count
    families: dict[str, int] = {}
    for v, count in indexed.items():
        families.setdefault(count, config[count])

    def lane(count: str, i: int) -> str:
        return f"{count[:-1] if count.endswith('s') else count} {i}"

    indexed_names = [lane(c, i) for c, n in families.items() for i in range(n)]
    network = [v for v in variables if v not in indexed and indexed_names
               and _is_network(states, v)]
    plain = [v for v in variables if v not in indexed and v not in network]
    names = indexed_names + plain
    only = next(iter(families)) if len(families) == 1 else None

    def endpoint(e):
        i = _int(e)
        if only is not None and i is not None and 0 <= i < families[only]:
            return lane(only, i)
        return e if isinstance(e, str) and e in names else None

    def parts(state):
        out = {name: [] for name in names}
        for v, count in indexed.items():
            for i, element in enumerate(state.get(v) or []):
                out[lane(count, i)].append(element)
        for v in plain:
            out[v].append(state.get(v))
        return {name: _key(p) for name, p in out.items()}
    return Lanes("servers" if indexed else "variables", names, parts, network, endpoint)


# ---------------------------------------------------------------------------
# messages
# ---------------------------------------------------------------------------


def _is_message(value: Any) -> bool:
    return isinstance(value, dict) and "src" in value and "dst" in value


def _elements(value: Any) -> list:
    if isinstance(value, dict) and len(value) == 1 and isinstance(
            value.get("#set", value.get("#tup")), list):
        return value.get("#set", value.get("#tup"))
    return value if isinstance(value, list) else []


def messages_in(value: Any) -> Counter:
    """The messages in a network variable, as a multiset of their canonical
    text: a list or set of messages, or a bag of ``[message, count]``."""
    bag = Counter()
    for e in _elements(value):
        if _is_message(e):
            bag[_key(e)] += 1
        else:
            pair = _elements(e)
            if len(pair) == 2 and _is_message(pair[0]) and _int(pair[1]) is not None:
                bag[_key(pair[0])] += max(pair[1], 0)
    return bag


def _is_network(states, variable) -> bool:
    return any(messages_in(s.get(variable)) for s in states)


class Arrow:
    """A message or a call: from ``src`` lane at row ``sent`` to ``dst``
    lane at row ``received`` (``None``: still in flight at the end)."""

    __slots__ = ("src", "dst", "sent", "received", "label")

    def __init__(self, src, dst, sent, received, label):
        self.src, self.dst, self.sent, self.received, self.label = src, dst, sent, received, label

    def __repr__(self):
        return f"Arrow({self.src}→{self.dst}, {self.sent}→{self.received}, {self.label!r})"


class Event:
    """Step ``row``: its action, its home lane and every lane it touched."""

    __slots__ = ("row", "action", "params", "home", "touched")

    def __init__(self, row, action, params, home, touched):
        self.row, self.action, self.params, self.home, self.touched = \
            row, action, params, home, touched


def layout(trace: dict, lanes: Lanes) -> tuple[list[Event], list[Arrow]]:
    """The events of every step and the arrows between lanes."""
    states = trace["states"]
    events: list[Event] = []
    arrows: list[Arrow] = []
    pending: dict[str, list] = {}
    previous_parts = None
    previous_bag = Counter()
    for row, state in enumerate(states):
        action, params = action_of(state)
        parts = lanes.parts(state)
        bag = Counter()
        for v in lanes.network:
            bag += messages_in(state.get(v))
        if previous_parts is None or lanes.rule == "history":
            touched = []          # an operation touches its own process: its home
        else:
            touched = [n for n in lanes.names if parts.get(n) != previous_parts.get(n)]
        endpoints = []
        if previous_parts is not None:
            for text, count in (bag - previous_bag).items():
                m = json.loads(text)
                src, dst = lanes.lane_of_endpoint(m["src"]), lanes.lane_of_endpoint(m["dst"])
                for _ in range(count):
                    pending.setdefault(text, []).append((row, src, dst))
                endpoints.append(src)
            for text, count in (previous_bag - bag).items():
                m = json.loads(text)
                for _ in range(count):
                    queue = pending.get(text)
                    sent, src, dst = queue.pop(0) if queue else (
                        0, lanes.lane_of_endpoint(m["src"]), lanes.lane_of_endpoint(m["dst"]))
                    if src and dst:
                        arrows.append(Arrow(src, dst, sent, row, _label(m)))
                    endpoints.append(dst)
        for e in endpoints:
            if e and e not in touched:
                touched.append(e)
        home = _home(state, action, params, touched, lanes)
        if home and home not in touched:
            touched.insert(0, home)
        if row > 0 or action != "Init":
            events.append(Event(row, action, params, home, touched))
            callee = _callee(action, lanes)
            if callee and home and callee != home:
                arrows.append(Arrow(home, callee, row, row, action.split(".", 1)[-1]))
        previous_parts, previous_bag = parts, bag
    for text, queue in pending.items():
        m = json.loads(text)
        for sent, src, dst in queue:
            if src and dst:
                arrows.append(Arrow(src, dst, sent, None, _label(m)))
    return events, arrows


def _label(message: dict) -> str:
    kind = message.get("type") or message.get("mtype") or message.get("kind")
    return str(kind) if kind is not None else "message"


def _callee(action: str, lanes: Lanes) -> str | None:
    head = action.split(".", 1)[0]
    if lanes.rule == "components" and "->" in head:
        callee = head.split("->", 1)[1]
        return callee if callee in lanes.names else None
    return None


def _home(state: dict, action: str, params: list, touched: list[str],
          lanes: Lanes) -> str | None:
    if lanes.rule == "history":
        return history_lane(state)
    if lanes.rule == "components":
        head = action.split(".", 1)[0].split("->", 1)[0]
        if head in lanes.names:
            return head
    first = next((p for p in params if _int(p) is not None), None)
    named = lanes.lane_of_endpoint(first) if first is not None else None
    if named is None and params and isinstance(params[0], str) and params[0] in lanes.names:
        named = params[0]
    if named is None and first is not None:
        # a lane named with that number: the scheduler's `replica-0`
        numbered = [t for t in touched if re.search(rf"[-_ ]{first}$", t)]
        named = numbered[0] if len(numbered) == 1 else None
    if named and (named in touched or not touched):
        return named
    if touched:
        return touched[0]
    return lanes.names[0] if lanes.names else None

"""A recorded etcd run, indexed for the checks: the KV operations, the watch
streams decoded, the faults, and every write known to have happened at each
revision (acknowledged, or delivered by a watch).

Why one index: every etcd check asks the same questions of the history (what
was written at revision R, which watch covers key K, which unknown writes a
watch proved), and answering them once keeps each check short.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from kubemc.conformance.history import Operation

#: operations the KV clients issue
KV_FS = frozenset({"get", "put", "delete", "txn", "range", "compact"})
WRITE_FS = frozenset({"put", "delete", "txn"})
FAULT_FS = frozenset({"kill", "pause", "partition"})
#: the recovery phase and crashed workload threads (:mod:`conformance.traffic.etcd`)
RECOVER_F, CRASH_F = "recover", "crash"
WINDOW_LIMIT = 400


def wrote(op: Operation) -> bool:
    """Whether an ``ok`` KV operation created a revision."""
    out = op.output if isinstance(op.output, dict) else {}
    if op.f == "put":
        return True
    if op.f == "delete":
        return bool(out.get("deleted"))
    if op.f == "txn":
        return bool(out.get("succeeded"))
    return False


def written_value(op: Operation):
    """(type, value) that a write operation writes if it takes effect."""
    if op.f == "put":
        return "put", op.input
    if op.f == "delete":
        return "delete", None
    if op.f == "txn" and isinstance(op.input, dict):
        for req in op.input.get("success") or ():
            if req and req[0] == "put":
                return "put", req[1]
    return None


def in_range(key: str, start: str, end: str | None) -> bool:
    if end is None:
        return key == start
    if end == "\0":
        return key >= start
    return start <= key < end


@attrs.define
class Stream:
    """One watch stream (a ``watch`` operation), decoded."""

    op: Operation
    chain: int
    start: int                # requested start revision (0 = from now)
    resume: bool
    key: str
    range_end: str | None
    endpoint: str
    responses: list           # the recorded response dicts
    end: str
    events: list              # (response index, rev, type, key, value)
    first_rev: int            # lowest revision the stream is answerable for

    def covers(self, key: str) -> bool:
        return in_range(key, self.key, self.range_end)


def _stream(op: Operation) -> Stream:
    inp = op.input if isinstance(op.input, dict) else {}
    out = op.output if isinstance(op.output, dict) else {}
    responses = list(out.get("responses") or ())
    events = []
    for i, r in enumerate(responses):
        for e in r.get("events") or ():
            events.append((i, int(e[3]), e[0], e[1], e[2]))
    start = int(inp.get("start_revision") or 0)
    if start:
        first = start
    else:
        created = next((r for r in responses if r.get("created")), None)
        first = (int(created["rev"]) + 1) if created and created.get("rev") else (events[0][1] if events else 0)
    return Stream(op, int(inp.get("chain", 0)), start, bool(inp.get("resume")), inp.get("key", ""),
                  inp.get("range_end"), inp.get("endpoint", ""), responses, out.get("end", ""), events, first)


class EtcdHistory:
    """A recorded run, indexed for the checks.

    ``writes[rev]`` — what is known to have been written at ``rev``, each a
    tuple ``(type, key, value, source)`` where source is the acknowledging
    operation or ``"watch"``: the union of acknowledged writes and of every
    event any watch delivered. ``resolved[op.index] = (rev, t)`` for ``info``
    writes whose unique value a watch delivered: the write happened, at
    ``rev``, before time ``t``.
    """

    def __init__(self, ops: Iterable[Operation], meta: dict | None = None):
        self.meta = dict(meta or {})
        self.ops = sorted(ops, key=lambda o: (o.call, o.index if o.index is not None else 0))
        self.kv = [o for o in self.ops if o.f in KV_FS]
        self.streams = [_stream(o) for o in self.ops if o.f == "watch" and o.status == "ok"]
        self.faults = [o for o in self.ops if o.f in FAULT_FS]
        self.writes: dict[int, list] = {}
        self.write_ops_by_value: dict[tuple, Operation] = {}
        for op in self.kv:
            if op.f in WRITE_FS:
                wv = written_value(op)
                if wv is not None and wv[0] == "put":
                    self.write_ops_by_value[(op.key, wv[1])] = op
            if op.status == "ok" and op.f in WRITE_FS and wrote(op):
                rev = op.output.get("rev") if isinstance(op.output, dict) else None
                wv = written_value(op)
                if isinstance(rev, int) and wv is not None:
                    self.writes.setdefault(rev, []).append((wv[0], op.key, wv[1], op))
        self.resolved: dict[int, tuple[int, int]] = {}
        for s in self.streams:
            for i, rev, typ, key, value in s.events:
                known = self.writes.setdefault(rev, [])
                if not any(k == key and t == typ for t, k, _, _ in known):
                    known.append((typ, key, value, "watch"))
                if typ == "put":
                    w = self.write_ops_by_value.get((key, value))
                    if w is not None and w.status == "info" and w.index not in self.resolved:
                        self.resolved[w.index] = (rev, int(s.responses[i]["t"]))

    def events_in(self, lo: int, hi: int, stream: Stream) -> list[tuple]:
        """Known writes with lo <= rev <= hi on keys the stream watches, by revision."""
        out = []
        for rev in range(lo, hi + 1):
            for typ, key, value, _ in self.writes.get(rev, ()):
                if stream.covers(key):
                    out.append((rev, typ, key, value))
        return out

    def window(self, involved: Iterable[Operation], keys: Iterable | None = None,
               limit: int = WINDOW_LIMIT) -> tuple:
        """``involved`` plus the KV operations overlapping their time span, on
        ``keys`` (all keys if None; ranges over many keys only if involved),
        and the faults in force; at most ``limit``."""
        involved = [o for o in involved if o is not None]
        if not involved:
            return ()
        lo = min(o.call for o in involved)
        hi = max((o.ret if o.ret is not None else o.call) for o in involved)
        keys = None if keys is None else set(keys)
        chosen = {id(o) for o in involved}
        out = []
        for o in self.ops:
            if o.call > hi:
                break
            ret = o.ret if o.ret is not None else float("inf")
            if ret < lo:
                continue
            if id(o) in chosen or o.f in FAULT_FS or (o.f != "watch" and (keys is None or o.key in keys)):
                out.append(o)
        if len(out) > limit:
            keep = [o for o in out if id(o) in chosen]
            rest = [o for o in out if id(o) not in chosen][: max(0, limit - len(keep))]
            out = sorted(keep + rest, key=lambda o: o.call)
        return tuple(out)

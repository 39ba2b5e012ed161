"""Linearizability of the KV operations, with etcd's revisions.

The search itself is :func:`conformance.linearizability.check` against the
``etcd-kv`` sequential specification (:mod:`conformance.model.etcd`), key by
key. This module decides what it is given:

* ``get``, ``put``, ``delete``, ``txn`` as recorded;
* each ``range`` at the current revision becomes one ``get`` per key of the
  run (absent keys read as absent), all with the range's times and header
  revision and each under a process number of its own (from
  :data:`SYNTHETIC_PROCESS`; ``index`` still names the range): a range is
  linearizable only if each key's read is;
* an ``info`` write whose unique value some watch delivered at revision R is
  known to have happened, at R, before the watch received it: it is given
  ``ok``, revision R, and that receipt time as its return (sound: the write
  certainly took effect by then; it only narrows the search);
* ranges at a past revision, compactions, watches and faults are left to the
  other checks.

The smallest failing window: the checker reports the shortest failing prefix
of a key's history, which :func:`conformance.validate.window.smallest_window`
cuts down — from the front, taking the key's state there as unknown (any
value, any revision), and by dropping reads that still leave it failing.
"""

from __future__ import annotations

import attrs

from kubemc.conformance.history import Operation
from kubemc.conformance.linearizability import NOT_LINEARIZABLE, UNKNOWN, check as lin_check
from kubemc.conformance.model.etcd import EtcdKV
from kubemc.conformance.validate.etcd_history import WRITE_FS, EtcdHistory, in_range
from kubemc.conformance.validate.violation import Violation
from kubemc.conformance.validate.window import smallest_window

STATEMENT = ("KV operations (get, put, delete, optimistic-put txn, range) take effect atomically at "
             "one instant between call and return, in an order etcd's sequential MVCC semantics "
             "explain, with revisions that respect real time")
SOURCE = ("etcd API guarantees, KV APIs, 'Strict serializability' and 'Linearizability' "
          "(https://etcd.io/docs/v3.5/learning/api_guarantees/); Herlihy & Wing, TOPLAS 1990")

#: seconds the search may take before the verdict is "undecided"
BUDGET = 300.0
#: seconds the smallest failing window may take to cut
WINDOW_BUDGET = 20.0
#: process numbers of the per-key reads a range is split into (``index`` still
#: names the range they come from)
SYNTHETIC_PROCESS = 10_000_000


def _resolved_output(op: Operation, rev: int):
    if op.f == "put":
        return {"rev": rev}
    return {"rev": rev, "succeeded": True, "responses": [{"rev": rev}]}


def kv_operations(h: EtcdHistory) -> list[Operation]:
    """The operations handed to the linearizability checker (see module doc)."""
    keys = set(h.meta.get("keys") or ())
    keys |= {op.key for op in h.kv if op.key is not None}
    out: list[Operation] = []
    synthetic = SYNTHETIC_PROCESS
    for op in h.kv:
        if op.f in ("get", "put", "delete", "txn"):
            if op.status == "info" and op.f in WRITE_FS and op.index in h.resolved:
                rev, t = h.resolved[op.index]
                op = attrs.evolve(op, status="ok", ret=max(t, op.call), output=_resolved_output(op, rev))
            out.append(op)
        elif op.f == "range" and op.status == "ok" and isinstance(op.input, dict) \
                and not op.input.get("revision"):
            start, end = op.input.get("key", ""), op.input.get("range_end")
            got = {kv[0]: kv for kv in op.output.get("kvs") or ()}
            rev = op.output.get("rev")
            for key in sorted(k for k in keys if in_range(k, start, end)):
                kv = got.get(key)
                value = ({"rev": rev, "value": kv[1], "mod_rev": kv[2], "create_rev": kv[3],
                          "version": kv[4]} if kv else
                         {"rev": rev, "value": None, "mod_rev": 0, "version": 0, "create_rev": 0})
                # a process of its own: the gets of one range run concurrently
                out.append(Operation(synthetic, "get", key, None, value, op.call, op.ret, "ok", op.index))
                synthetic += 1
    return out


def check(h: EtcdHistory):
    ops = kv_operations(h)
    res = lin_check(ops, "etcd-kv", budget=BUDGET)
    note = (f"{res.operations} operations in {res.partitions} keys, {res.explored} backtracks, "
            f"{len(h.resolved)} unknown writes resolved by watches")
    if res.verdict == UNKNOWN:
        return [], len(ops), (f"UNDECIDED within {BUDGET:.0f}s for keys {list(res.unknown_keys)}; " + note)
    if res.verdict != NOT_LINEARIZABLE:
        return [], len(ops), note
    f = res.failure
    by_index = {op.index: op for op in h.ops}
    if f.key is None:
        # a cross-key revision violation (EtcdKV.global_violation)
        involved = [by_index.get(o.index, o) for o in f.ops]
        keys = {o.key for o in involved}
        return ([Violation("linearizability", f.message, tuple(involved), h.window(involved, keys),
                           {"kind": "revision order"})], len(ops), note)
    cut = smallest_window(f, EtcdKV(), budget=WINDOW_BUDGET)
    window = cut.ops
    culprit = f.culprit
    start = "an unknown starting state" if cut.from_any else "the start of the run"
    message = (f"key {f.key!r}: no order of operations explains {culprit.f} by process "
               f"{culprit.process} returning {culprit.output!r}; smallest failing window: "
               f"{len(window)} operations from {start}")
    return ([Violation("linearizability", message, (culprit,), tuple(window),
                       {"key": f.key, "prefix_length": len(f.ops),
                        "longest_partial_linearization": [f.ops[i].index for i in f.linearization],
                        "states": list(f.states)[-5:]})], len(ops), note)

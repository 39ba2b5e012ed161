"""Revisions increase: per client, and across acknowledged writes.

etcd's API guarantees: "An etcd operation that modifies the key value store
is assigned a single increasing revision", and the KV API is strictly
serializable, so the header revision of any answer is at least every
revision that was acknowledged before the request was sent. Two views:

* **per client** — one client thread issues one request at a time; the header
  revisions it is answered must never go down (whichever member answers),
  and a write must get a revision above every one it has seen;
* **across acknowledged writes** — no two writes get the same revision, and
  if an operation was acknowledged before another was sent, the later one's
  revision is not lower (strictly higher if it writes).

The history's header revision of a range at a past revision is the current
revision, as etcd answers, so ranges count like any read.
"""

from __future__ import annotations

from kubemc.conformance.validate.etcd_history import EtcdHistory, wrote
from kubemc.conformance.validate.violation import Violation

STATEMENT = ("each client sees header revisions that never decrease and a new revision for every "
             "write; acknowledged writes have distinct revisions that follow real-time order")
SOURCE = ("etcd API guarantees, 'Revision' and 'Strict serializability' "
          "(https://etcd.io/docs/v3.5/learning/api_guarantees/)")


def _rev(op):
    out = op.output if isinstance(op.output, dict) else None
    r = out.get("rev") if out else None
    return r if isinstance(r, int) and not isinstance(r, bool) else None


def check(h: EtcdHistory):
    clients = int(h.meta.get("clients") or 0)
    acked = [(op, _rev(op), op.f in ("put", "delete", "txn") and wrote(op))
             for op in h.kv if op.status == "ok" and _rev(op) is not None]
    violations: list[Violation] = []

    # per client (process numbers of one client thread are i, i + clients, ...)
    last: dict[int, tuple] = {}
    for op, r, w in acked:                          # h.kv is in call order
        c = op.process % clients if clients and op.process < 1_000_000 else op.process
        prev = last.get(c)
        if prev is not None:
            prev_op, prev_max = prev
            if r < prev_max or (w and r == prev_max):
                violations.append(Violation(
                    "revision-monotonic",
                    f"client {c}: {op.f} {op.key or ''} answered revision {r} after the same client had "
                    f"been answered revision {prev_max} ({prev_op.f} {prev_op.key or ''})",
                    (prev_op, op), h.window((prev_op, op), {prev_op.key, op.key}),
                    {"client": c, "before": prev_max, "after": r}))
                if len(violations) >= 5:
                    break
                last[c] = (op, max(prev_max, r))
                continue
        if prev is None or r >= prev[1]:
            last[c] = (op, r)

    # distinct revisions for writes
    seen: dict[int, object] = {}
    for op, r, w in acked:
        if w:
            if r in seen:
                other = seen[r]
                violations.append(Violation(
                    "revision-monotonic", f"two acknowledged writes got the same revision {r}: "
                    f"{other.f} {other.key} and {op.f} {op.key}",
                    (other, op), h.window((other, op), {other.key, op.key})))
                break
            seen[r] = op

    # real time: acknowledged before sent => revision not lower (higher for a write)
    by_ret = sorted(acked, key=lambda t: t[0].ret)
    j, best, best_op = 0, -1, None
    for op, r, w in acked:
        while j < len(by_ret) and by_ret[j][0].ret < op.call:
            if by_ret[j][1] > best:
                best, best_op = by_ret[j][1], by_ret[j][0]
            j += 1
        if best_op is not None and (r < best or (w and r == best)):
            violations.append(Violation(
                "revision-monotonic",
                f"{op.f} {op.key or ''} was answered revision {r}, but {best_op.f} {best_op.key or ''} "
                f"had been acknowledged with revision {best} before it was sent",
                (best_op, op), h.window((best_op, op), {best_op.key, op.key}),
                {"acknowledged": best, "later": r}))
            break
    return violations, len(acked), ""

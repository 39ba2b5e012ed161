"""No lost update under optimistic concurrency.

Kubernetes writes every object with etcd's compare-and-swap transaction
(``GuaranteedUpdate``: "if mod_revision(key) == the revision I read, put, else
read again"). Its whole point is that no update is lost: a read-modify-write
cycle can only succeed if nobody wrote the key since the read. So, for every
optimistic put that *succeeded* at revision R after comparing
``mod_revision == M``:

* no write to the same key is known at a revision strictly between M and R
  (that write would be overwritten without having been seen), and
* for M = 0 (create if absent): the key's last known write before R, if
  any, is a delete.

"Known writes" are acknowledged writes plus every event a watch delivered,
and every key version a read returned, so writes whose acknowledgement was
lost count too. A failed compare must
also be right: if the txn failed but the read in its failure branch shows
``mod_revision == M`` (a value nobody wrote since), the compare was wrongly
evaluated.
"""

from __future__ import annotations

import bisect

from kubemc.conformance.validate.etcd_history import EtcdHistory
from kubemc.conformance.validate.violation import Violation

STATEMENT = ("an optimistic put (txn: if mod_revision is the one read, put) succeeds only if no other "
             "write to the key happened since that revision")
SOURCE = ("etcd API reference, Txn and Compare (https://etcd.io/docs/v3.5/learning/api/#transaction); "
          "Kubernetes API concepts, 'Resource versions' and optimistic concurrency "
          "(https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions)")


def _observed(h: EtcdHistory):
    """(key, mod_revision, op) for every key version an ok read returned."""
    for op in h.kv:
        if op.status != "ok" or not isinstance(op.output, dict):
            continue
        if op.f == "get" and op.output.get("mod_rev"):
            yield op.key, op.output["mod_rev"], op
        elif op.f == "txn" and not op.output.get("succeeded"):
            for resp in op.output.get("responses") or ():
                if isinstance(resp, dict) and resp.get("mod_rev"):
                    yield op.key, resp["mod_rev"], op
        elif op.f == "range":
            for kv in op.output.get("kvs") or ():
                yield kv[0], kv[2], op


def check(h: EtcdHistory):
    # per key: sorted revisions of known writes, with what wrote them
    per_key: dict[str, list[tuple[int, str, object]]] = {}
    for rev, items in h.writes.items():
        for typ, key, value, source in items:
            per_key.setdefault(key, []).append((rev, typ, source))
    # a read that returns mod_revision M proves a write of the key at M
    known = {(k, rev) for k, lst in per_key.items() for rev, _, _ in lst}
    for key, rev, op in _observed(h):
        if (key, rev) not in known:
            known.add((key, rev))
            per_key.setdefault(key, []).append((rev, "put", op))
    for lst in per_key.values():
        lst.sort(key=lambda t: t[0])
    revs_of = {k: [t[0] for t in v] for k, v in per_key.items()}

    violations: list[Violation] = []
    checked = 0
    for op in h.kv:
        if op.f != "txn" or op.status != "ok" or not isinstance(op.input, dict):
            continue
        cmp = op.input.get("compare") or []
        if len(cmp) != 3 or cmp[0] != "mod_rev" or cmp[1] not in ("=", "=="):
            continue
        m = int(cmp[2])
        out = op.output
        r = out.get("rev")
        checked += 1
        if not out.get("succeeded"):
            resp = (out.get("responses") or [{}])[0] or {}
            seen = resp.get("mod_rev")
            if isinstance(seen, int) and seen == m and not (m == 0 and resp.get("value") is not None):
                violations.append(Violation(
                    "no-lost-update",
                    f"txn on {op.key} compared mod_revision == {m} and failed, yet its failure branch "
                    f"read mod_revision {seen}", (op,), h.window((op,), {op.key}),
                    {"compare_mod_revision": m, "read_mod_revision": seen}))
            continue
        if not isinstance(r, int) or m == 0:
            continue                  # creates (M = 0) are checked below
        writes, revs = per_key.get(op.key, []), revs_of.get(op.key, [])
        lo = bisect.bisect_right(revs, m)
        hi = bisect.bisect_left(revs, r)
        between = writes[lo:hi]
        if between:
            rev, typ, source = between[0]
            who = (f"{source.f} by process {source.process}" if not isinstance(source, str)
                   else "a write that a watch delivered")
            base = next((src for rv, _, src in writes[:lo] if rv == m and not isinstance(src, str)), None)
            involved = [o for o in (base, source, op) if o is not None and not isinstance(o, str)]
            violations.append(Violation(
                "no-lost-update",
                f"lost update on {op.key}: a txn compared mod_revision == {m} and succeeded at "
                f"revision {r}, but {who} had written the key at revision {rev} in between — "
                f"that update was overwritten unseen",
                tuple(involved), h.window(involved, {op.key}),
                {"compare_mod_revision": m, "txn_revision": r, "overwritten_revision": rev,
                 "writes_between": [w[0] for w in between][:20]}))
        if len(violations) >= 10:
            break
    # M == 0 (create): the last write before R must be a delete (or none).
    # Deletes carry no unique value, so one whose outcome is unknown and that
    # no watch saw cannot be placed: keys with one are given the benefit.
    maybe_deleted: dict[str, int] = {}
    for op in h.kv:
        if op.f == "delete" and op.status == "info":
            maybe_deleted[op.key] = min(op.call, maybe_deleted.get(op.key, op.call))
    for op in h.kv:
        if len(violations) >= 10:
            break
        if op.f != "txn" or op.status != "ok" or not op.output.get("succeeded"):
            continue
        cmp = (op.input or {}).get("compare") or []
        if len(cmp) != 3 or cmp[0] != "mod_rev" or int(cmp[2]) != 0:
            continue
        r = op.output.get("rev")
        if op.key in maybe_deleted and maybe_deleted[op.key] < op.ret:
            continue                  # a delete of unknown outcome may explain it
        writes, revs = per_key.get(op.key, []), revs_of.get(op.key, [])
        i = bisect.bisect_left(revs, r) if isinstance(r, int) else 0
        if i > 0 and writes[i - 1][1] != "delete":
            rev, typ, source = writes[i - 1]
            involved = [op] + ([source] if not isinstance(source, str) else [])
            violations.append(Violation(
                "no-lost-update",
                f"lost update on {op.key}: a txn required the key to be absent (mod_revision == 0) "
                f"and succeeded at revision {r}, but the key had been written at revision {rev} "
                f"and not deleted since",
                tuple(involved), h.window(involved, {op.key}),
                {"compare_mod_revision": 0, "txn_revision": r, "overwritten_revision": rev}))
    return violations, checked, ""

"""Reads below a compaction fail with the compacted error, and only those.

etcd's API guarantees: "Both KV and Watch APIs allow access to not only the
latest versions of keys, but also previous versions are accessible within a
continuous history window, limited by a compaction operation." The MVCC model
(:func:`model.store.mvcc.read`) fixes the edge: a range at revision
``r < C`` after ``Compact(C)`` answers ``COMPACTED``; ``r == C`` still reads.

Checked on the history:

* a range at a past revision ``r`` that was sent after a ``compact C`` with
  ``r < C`` was acknowledged must fail with "required revision has been
  compacted" — answering it means the compacted history came back;
* on a cluster that only this run writes to (the local cluster), a range
  that fails as compacted must have a reason: some compaction above ``r``
  was sent before the range returned; and a watch cancelled as compacted
  must name a compaction revision above its start that the run asked for.
"""

from __future__ import annotations

from kubemc.model.store import mvcc
from kubemc.conformance.validate.etcd_history import EtcdHistory
from kubemc.conformance.validate.violation import Violation

STATEMENT = ("a range at a revision below a completed compaction fails with the compacted error, "
             "and only revisions below some compaction are reported compacted")
SOURCE = ("etcd API guarantees, 'APIs to consider' and KV history window "
          "(https://etcd.io/docs/v3.5/learning/api_guarantees/); etcd data model, compaction "
          "(https://etcd.io/docs/v3.5/learning/data_model/); model.store.mvcc.read")


def _below(rev: int, compacted: int) -> bool:
    """Whether the MVCC model answers COMPACTED for a read at ``rev``."""
    state = (max(rev, compacted) + 1, compacted, ())
    return mvcc.read(state, "k", rev) == mvcc.COMPACTED


def check(h: EtcdHistory):
    exclusive = bool(h.meta.get("exclusive"))
    compactions = [op for op in h.kv if op.f == "compact" and isinstance(op.input, dict)]
    done = sorted((op.ret, op.input["revision"], op) for op in compactions if op.status == "ok")
    sent = sorted((op.call, op.input["revision"], op) for op in compactions if op.status != "fail")
    reads = [op for op in h.kv if op.f == "range" and isinstance(op.input, dict)
             and op.input.get("revision") and op.status in ("ok", "fail")]
    violations: list[Violation] = []
    for op in reads:
        r = op.input["revision"]
        # the highest compaction acknowledged before this read was sent
        best = None
        for ret, c, cop in done:
            if ret >= op.call:
                break
            if best is None or c > best[0]:
                best = (c, cop)
        out = op.output if isinstance(op.output, dict) else {}
        if op.status == "ok" and best is not None and _below(r, best[0]):
            violations.append(Violation(
                "compaction",
                f"range of {op.input.get('key')} at revision {r} succeeded although compaction to "
                f"revision {best[0]} had completed before it was sent",
                (best[1], op), h.window((best[1], op), {op.input.get("key")}),
                {"read_revision": r, "compaction_revision": best[0]}))
        elif op.status == "fail" and out.get("compacted") and exclusive:
            reason = any(c > r and call < op.ret for call, c, _ in sent)
            if not reason:
                violations.append(Violation(
                    "compaction",
                    f"range at revision {r} failed as compacted, but no compaction above revision {r} "
                    f"had been requested", (op,), h.window((op,), {op.input.get("key")}),
                    {"read_revision": r}))
        if len(violations) >= 10:
            break
    if exclusive:
        for s in h.streams:
            for resp in s.responses:
                c = resp.get("compact_revision")
                if resp.get("canceled") and c:
                    if s.start and c <= s.start:
                        violations.append(Violation(
                            "compaction",
                            f"watch from revision {s.start} cancelled as compacted at revision {c}, "
                            f"which is not above its start", (s.op,), h.window((s.op,))))
                    elif not any(rev == c and call < s.op.ret for call, rev, _ in sent):
                        violations.append(Violation(
                            "compaction",
                            f"watch from revision {s.start} cancelled as compacted at revision {c}, "
                            f"a compaction nobody requested", (s.op,), h.window((s.op,))))
    return violations, len(reads), f"{len(done)} compactions, {len(reads)} reads at past revisions"

"""The etcd conformance checks on small hand-written histories: each passes a
correct history and names the right violation in a wrong one. No etcd needed.
"""

from __future__ import annotations

import json

import pytest

from kubemc.conformance.history import Operation, read_jsonl
from kubemc.conformance.report.etcd import summary, write_junit
from kubemc.conformance.report.files import ops_to_events, write_violation
from kubemc.conformance.validate.etcd import check_names, run_checks
from kubemc.conformance.validate.etcd_history import EtcdHistory
from kubemc.conformance.linearizability import check as check_linearizable
from kubemc.conformance.model.etcd import EtcdKV
from kubemc.conformance.validate.linearizable import kv_operations
from kubemc.conformance.validate.window import smallest_window

P = "/kmc/t/"
K = P + "k0"
K1 = P + "k1"
END = "/kmc/t0"
META = {"keys": [K, K1], "clients": 4, "exclusive": True}


class H:
    """A tiny history builder: ops with explicit call / return times."""

    def __init__(self):
        self.ops: list[Operation] = []

    def op(self, process, f, key, inp, out, call, ret, status="ok"):
        self.ops.append(Operation(process, f, key, inp, out, call, None if status == "info" else ret,
                                  status, len(self.ops)))
        return self.ops[-1]

    def put(self, p, key, value, rev, call, ret, status="ok"):
        return self.op(p, "put", key, value, {"rev": rev} if status == "ok" else None, call, ret, status)

    def get(self, p, key, value, mod, rev, call, ret, version=1, create=None):
        out = ({"rev": rev, "value": value, "mod_rev": mod, "version": version,
                "create_rev": create if create is not None else mod} if value is not None else
               {"rev": rev, "value": None, "mod_rev": 0, "version": 0, "create_rev": 0})
        return self.op(p, "get", key, None, out, call, ret)

    def delete(self, p, key, rev, deleted, call, ret):
        return self.op(p, "delete", key, None, {"rev": rev, "deleted": deleted}, call, ret)

    def cas(self, p, key, expect, value, rev, ok, call, ret, read=None):
        inp = {"compare": ["mod_rev", "=", expect], "success": [["put", value]], "failure": [["get"]]}
        out = {"rev": rev, "succeeded": ok, "responses": [{"rev": rev}] if ok else [read or {}]}
        return self.op(p, "txn", key, inp, out, call, ret)

    def range_at(self, p, key, at, call, ret, ok=True, compacted=False, rev=100):
        inp = {"key": key, "range_end": None, "revision": at}
        if ok:
            return self.op(p, "range", None, inp, {"rev": rev, "kvs": []}, call, ret)
        return self.op(p, "range", None, inp, {"error": "compacted", "compacted": compacted}, call, ret, "fail")

    def compact(self, p, at, call, ret, rev=None):
        return self.op(p, "compact", None, {"revision": at}, {"rev": rev or at}, call, ret)

    def watch(self, start, responses, call, ret, chain=0, resume=False):
        inp = {"chain": chain, "key": P, "range_end": END, "start_revision": start, "endpoint": "x",
               "resume": resume}
        rs = []
        for i, r in enumerate(responses):
            if r == "created":
                rs.append({"t": call + i, "rev": 1, "events": [], "created": True})
            elif isinstance(r, int):              # a progress notification
                rs.append({"t": call + i, "rev": r, "events": [], "progress": True})
            else:                                 # a list of (rev, key, value | None)
                rs.append({"t": call + i, "rev": max(e[0] for e in r),
                           "events": [["put" if v is not None else "delete", k, v or "", rev, rev, 1]
                                      for rev, k, v in r]})
        return self.op(2_000_000 + chain, "watch", None, inp, {"responses": rs, "end": "closed"}, call, ret)

    def run(self, only=None):
        h = EtcdHistory(self.ops, META)
        return {r.name: r for r in run_checks(h, only)}, h


def writes():
    """Five acknowledged writes at revisions 2..6 on k0 / k1, sequential."""
    b = H()
    b.put(0, K, "a", 2, 10, 11)
    b.put(1, K1, "b", 3, 12, 13)
    b.put(0, K, "c", 4, 14, 15)
    b.delete(1, K1, 5, 1, 16, 17)
    b.put(2, K, "d", 6, 18, 19)
    return b


def failed(results):
    return sorted(n for n, r in results.items() if not r.ok)


def test_correct_history_passes_every_check():
    b = writes()
    b.get(3, K, "d", 6, 6, 20, 21, version=3, create=2)
    b.cas(2, K, 6, "e", 7, True, 22, 23)
    b.cas(3, K, 6, "f", 7, False, 24, 25, read={"value": "e", "mod_rev": 7, "version": 4, "create_rev": 2})
    b.compact(9, 3, 26, 27, rev=7)
    b.range_at(3, K, 4, 28, 29, ok=True, rev=7)
    b.range_at(3, K, 2, 30, 31, ok=False, compacted=True)
    b.watch(2, ["created", [(2, K, "a")], [(3, K1, "b"), (4, K, "c")], [(5, K1, None)], [(6, K, "d")], 6,
                [(7, K, "e")]], 9, 40)
    results, _ = b.run()
    assert failed(results) == []
    assert set(results) == set(check_names())


def test_linearizability_catches_a_stale_read_with_a_small_window():
    b = writes()
    b.get(3, K, "a", 2, 6, 20, 21)              # after "d" was acknowledged, reads "a"
    results, _ = b.run(["linearizability"])
    (v,) = results["linearizability"].violations
    assert v.check == "linearizability"
    assert len(v.window) <= 3
    assert any(op.f == "get" for op in v.window)


def test_linearizability_range_is_checked_per_key():
    b = writes()
    b.op(3, "range", None, {"key": P, "range_end": END, "revision": 0},
         {"rev": 6, "kvs": [[K, "c", 4, 2, 2]]}, 20, 21)      # k0 was "d" by then
    results, h = b.run(["linearizability"])
    assert not results["linearizability"].ok
    gets = [op for op in kv_operations(h) if op.f == "get"]
    assert {op.key for op in gets} == {K, K1}


def test_linearizability_resolves_unknown_writes_seen_by_a_watch():
    b = H()
    b.put(0, K, "a", 2, 10, 11)
    b.put(1, K, "x", None, 12, None, status="info")   # unknown outcome
    b.get(2, K, "x", 3, 3, 20, 21, version=2, create=2)
    b.watch(2, ["created", [(2, K, "a")], [(3, K, "x")]], 5, 30)
    results, h = b.run(["linearizability"])
    assert results["linearizability"].ok
    assert h.resolved == {1: (3, 7)}


def test_revisions_going_backwards_for_one_client():
    b = writes()
    b.get(0, K, "c", 4, 4, 20, 21, version=2, create=2)   # client 0 saw 6? no: saw 4 after writing 4
    b.op(0, "range", None, {"key": P, "range_end": END, "revision": 0}, {"rev": 3, "kvs": []}, 22, 23)
    results, _ = b.run(["revision-monotonic"])
    msgs = [v.message for v in results["revision-monotonic"].violations]
    assert any("client 0" in m and "revision 3" in m for m in msgs)


def test_two_writes_with_one_revision():
    b = writes()
    b.put(3, K1, "z", 6, 20, 21)
    results, _ = b.run(["revision-monotonic"])
    assert any("same revision 6" in v.message for v in results["revision-monotonic"].violations)


def test_lost_update_is_named():
    b = writes()
    b.cas(3, K, 4, "lost", 7, True, 20, 21)       # compared 4, but "d" was written at 6
    results, _ = b.run(["no-lost-update"])
    (v,) = results["no-lost-update"].violations
    assert "revision 6" in v.message and "compared mod_revision == 4" in v.message
    assert {op.index for op in v.ops} >= {2, 4, 5}  # the base write, the lost one, the txn


def test_create_over_a_live_key_is_a_lost_update_but_not_after_a_delete():
    b = writes()
    b.cas(3, K, 0, "new", 7, True, 20, 21)        # k0 exists (written at 6)
    b.cas(3, K1, 0, "new", 8, True, 22, 23)       # k1 was deleted at 5: fine
    results, _ = b.run(["no-lost-update"])
    (v,) = results["no-lost-update"].violations
    assert v.ops[0].key == K and "absent" in v.message


def test_read_below_a_completed_compaction_must_fail():
    b = writes()
    b.compact(9, 5, 20, 21, rev=6)
    b.range_at(3, K, 4, 22, 23, ok=True)          # below 5, after the compaction returned
    b.range_at(3, K, 5, 24, 25, ok=True)          # at the compaction revision: fine
    b.range_at(3, K, 3, 19, 26, ok=True)          # concurrent with it: fine
    results, _ = b.run(["compaction"])
    (v,) = results["compaction"].violations
    assert "revision 4" in v.message and "compaction to revision 5" in v.message


def test_spurious_compacted_error():
    b = writes()
    b.range_at(3, K, 4, 22, 23, ok=False, compacted=True)
    results, _ = b.run(["compaction"])
    assert "no compaction" in results["compaction"].violations[0].message


@pytest.mark.parametrize("responses,check", [
    (["created", [(2, K, "a")], [(4, K, "c")], [(3, K1, "b")]], "watch-ordered"),
    (["created", [(2, K, "a"), (3, K1, "b")], [(3, K1, "b"), (4, K, "c")]], "watch-unique"),
    (["created", [(2, K, "a"), (3, K1, "b")], [(4, K, "c")], [(6, K, "d")]], "watch-reliable"),
    (["created", [(3, K1, "b")], [(4, K, "c")]], "watch-resumable"),
    (["created", [(2, K, "a")], 4, [(3, K1, "b"), (4, K, "c")]], "watch-bookmarkable"),
    (["created", [(2, K, "a")], [(3, K1, "b")], [(4, K, "zzz")]], "watch-matches-kv"),
])
def test_each_watch_guarantee_has_teeth(responses, check):
    b = writes()
    b.watch(2, responses, 9, 40)
    results, _ = b.run()
    assert check in failed(results), failed(results)
    v = results[check].violations[0]
    assert v.message.startswith("watch stream")
    assert v.window and v.window[0].f in ("watch", "put", "delete")


def test_atomic_split_revision():
    b = H()
    b.put(0, K, "a", 2, 10, 11)
    # a multi-key revision (as a txn writing two keys would make), split in two responses
    b.watch(2, ["created", [(2, K, "a")], [(3, K, "x")], [(3, K1, "y")]], 12, 40)
    b.watch(2, ["created", [(2, K, "a")], [(3, K, "x"), (3, K1, "y")]], 12, 40, chain=1)
    results, _ = b.run(["watch-atomic"])
    (v,) = results["watch-atomic"].violations
    assert "split" in v.message and "chain 0" in v.message


def test_smallest_window_cuts_the_irrelevant_prefix():
    b = H()
    t = 0
    for i in range(50):                 # a long correct prefix on k0
        b.put(0, K, f"v{i}", i + 2, t, t + 1)
        t += 2
    b.get(1, K, "v10", 12, 51, t, t + 1)   # stale
    results, h = b.run(["linearizability"])
    (v,) = results["linearizability"].violations
    assert len(v.window) <= 3, [op.to_json() for op in v.window]
    part = [op for op in kv_operations(h) if op.key == K]
    failure = check_linearizable(part, "etcd-kv").failure
    assert len(smallest_window(failure, EtcdKV()).ops) == len(v.window)


def test_reports_and_files(tmp_path):
    b = writes()
    b.cas(3, K, 4, "lost", 7, True, 20, 21)
    results, h = b.run()
    violation = results["no-lost-update"].violations[0]
    files = write_violation(tmp_path, violation, {"seed": 3})
    events = read_jsonl(files["window_jsonl"])
    assert {e.type for e in events} <= {"invoke", "ok"}
    trace = json.loads(open(files["window_itf"]).read())
    assert trace["#meta"]["property"] == "no-lost-update" and len(trace["states"]) == len(violation.window)
    assert len(ops_to_events(violation.window)) == 2 * len(violation.window)

    from kubemc.conformance.adapters.etcd.suite import EtcdRunResult
    r = EtcdRunResult("abc123", 3, True, [], duration=2.0, ok=10, checks=list(results.values()))
    text = summary(r)
    assert "FAIL" in text and "violation of no-lost-update" in text and "source:" in text
    junit = tmp_path / "j.xml"
    write_junit(r, junit)
    xml = junit.read_text()
    assert 'name="no-lost-update"' in xml and "<failure" in xml
    doc = r.to_json()
    assert "no-lost-update" in doc["failed_checks"] and doc["passed"] is False

"""``kubemc conform etcd`` end to end: the issue's acceptance.

* Real etcd passes the default suite — 60 s, local 3-member cluster, kill,
  pause and partition faults — with at least 10,000 operations.
* Every known-bad target (:mod:`conformance.failpoint.etcd_proxy` in front of
  one member) fails, by the check that guards the broken guarantee, with a
  report naming it, a window, and the history on disk.
* ``--endpoints`` drives an existing cluster.

Root and the ``etcd`` binary are needed; without them these skip, except
under ``CI=true`` where that is a failure (DESIGN.md: never silently skipped).
Figures (operations, ops/s, check time) are printed, never asserted beyond
the acceptance floor; ``kubemc bench conform-etcd`` measures them.
"""

from __future__ import annotations

import json

import pytest
from conftest import require_real_etcd

from kubemc.conformance.history import read_jsonl
from kubemc.conformance.report.etcd import summary
from kubemc.conformance.adapters.etcd import cli as etcd_cli
from kubemc.conformance.adapters.etcd.cluster import LocalCluster
from kubemc.conformance.adapters.etcd.suite import SuiteOptions, run_suite
from kubemc.conformance.failpoint.etcd_proxy import EXPECTED_CHECK, MODES, FaultyProxy

pytestmark = pytest.mark.real


@pytest.fixture(autouse=True)
def _real():
    require_real_etcd()


@pytest.mark.timeout(400)
def test_real_etcd_passes_60s_with_kill_pause_partition(tmp_path, capsys):
    junit = tmp_path / "junit.xml"
    code = etcd_cli.main(["--out", str(tmp_path / "out"), "--junit", str(junit), "--json"])
    out, err = capsys.readouterr()
    doc = json.loads(out)
    with capsys.disabled():
        print(f"\nconform etcd 60 s: {doc['operations']} operations, {doc['ops_per_second']} ops/s, "
              f"faults {doc['faults']}, watch events {doc['watch_events']}, "
              f"check {doc['check_seconds']} s")
    assert code == 0, (doc["failed_checks"], [c for c in doc["checks"] if not c["ok"]][:1])
    assert doc["passed"] and doc["failed_checks"] == []
    assert doc["operations"] >= 10_000
    assert doc["duration_seconds"] >= 60
    assert all(doc["faults"].get(f, 0) >= 1 for f in ("kill", "pause", "partition")), doc["faults"]
    assert all(c["checked"] > 0 for c in doc["checks"]), [c["name"] for c in doc["checks"] if not c["checked"]]
    assert "UNDECIDED" not in json.dumps([c["note"] for c in doc["checks"]])
    assert junit.exists() and 'failures="0"' in junit.read_text()
    assert (tmp_path / "out" / "history.jsonl").exists()
    assert not doc["problems"], doc["problems"]


@pytest.mark.timeout(200)
@pytest.mark.parametrize("mode", MODES)
def test_known_bad_target_fails_by_the_right_check(mode, tmp_path):
    proxies = []

    def front(cluster: LocalCluster):
        px = FaultyProxy(cluster.endpoints[0], mode, seed=1)
        proxies.append(px)
        return [px.start(), *cluster.endpoints[1:]], px

    r = run_suite(SuiteOptions(time_limit=10, nemesis=(), seed=1, progress=False, out=str(tmp_path)),
                  cluster_hook=front)
    assert proxies and proxies[0].tampered > 0, "the proxy never broke anything"
    expected = EXPECTED_CHECK[mode]
    assert not r.passed
    assert expected in r.failed_checks, (mode, r.failed_checks)
    v = next(v for v in r.violations if v.check == expected)
    assert v.message and v.window, v
    text = summary(r)
    assert f"violation of {expected}:" in text and "FAIL" in text.splitlines()[0]
    # the history and the window are on disk, readable
    assert len(read_jsonl(tmp_path / "history.jsonl")) > 1000
    assert any(f.endswith(f"{expected}.jsonl") for f in r.violation_files)
    window = read_jsonl(next(f for f in r.violation_files if f.endswith(f"{expected}.jsonl")))
    assert window
    report = json.loads((tmp_path / "report.json").read_text())
    assert expected in report["failed_checks"]


@pytest.mark.timeout(200)
def test_existing_cluster_through_endpoints():
    with LocalCluster() as c:
        r = run_suite(SuiteOptions(endpoints=c.endpoints, time_limit=5, nemesis=(), progress=False))
    assert r.passed, r.failed_checks
    assert r.operations > 500 and r.fault_count == 0 and not r.local

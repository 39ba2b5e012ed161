"""``kubemc conform proxy --live``: the dumps applied with iptables-restore
inside network namespaces the run creates, real TCP and UDP packets, and
the live answer compared with the symbolic one — and nothing left behind,
also when the run is interrupted.

Needs root, ``ip`` and ``iptables-restore`` (``require``: skipped locally
without them, a failure under CI=true).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from kubemc.checker.cli import main
from conftest import require

pytestmark = pytest.mark.real

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "proxy"


@pytest.fixture(autouse=True)
def _real():
    missing = [what for ok, what in ((os.geteuid() == 0, "root (network namespaces)"),
                                     (shutil.which("ip"), "ip (apt-get install iproute2)"),
                                     (shutil.which("iptables-restore"),
                                      "iptables-restore (apt-get install iptables)")) if not ok]
    require(not missing, "conform proxy --live needs " + ", ".join(missing),
            "run the README's test command as root")


def live(capsys, tmp_path, name, samples=12):
    code = main(["conform", "proxy", "--iptables-save", str(DATA / f"{name}.iptables-save"),
                 "--objects", str(DATA / "objects.json"), "--cluster-cidr", "10.244.0.0/16",
                 "--live", "--samples", str(samples), "--json", "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    doc = json.loads(out)
    prefix = doc["live"]["prefix"]
    assert not _namespaces(prefix)
    return code, doc


def _namespaces(prefix):
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(prefix)]


def _start_long_live_run():
    """A live run of the good dump long enough to be interrupted: its process and prefix."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubemc.conformance.adapters.proxy.cli", "--iptables-save",
         str(DATA / "good.iptables-save"), "--objects", str(DATA / "objects.json"),
         "--cluster-cidr", "10.244.0.0/16", "--live", "--samples", "10000"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    if "live run kp" not in line:
        proc.kill()
        proc.wait()
        raise AssertionError(line + proc.stderr.read())
    return proc, line.split("live run ")[1].split(":")[0]


def _netns_inodes(prefix):
    """The inode of each namespace of the run (what /proc/PID/ns/net names)."""
    out = {}
    for name in _namespaces(prefix):
        try:
            out[name] = os.stat(f"/run/netns/{name}").st_ino
        except OSError:
            pass
    return out


def _processes_in(inodes):
    """Processes whose network namespace is one of ``inodes`` (a namespace
    outlives its name while a process holds it: a leak shows here)."""
    want = {f"net:[{i}]" for i in inodes}
    found = []
    for ns in glob.glob("/proc/[0-9]*/ns/net"):
        try:
            if os.readlink(ns) in want:
                found.append(ns.split("/")[2])
        except OSError:
            continue
    return found


def _processes(prefix):
    return _processes_in(_netns_inodes(prefix).values())


def _agreement(doc):
    live_check = next(c for c in doc["checks"] if c["name"] == "live")
    n = live_check["checked"]
    assert n > 0
    assert live_check["note"] == f"live agrees with the symbolic verdict on {n} of {n} probed addresses"
    return live_check


def test_the_correct_dump_passes_live_and_agrees_everywhere(capsys, tmp_path):
    code, doc = live(capsys, tmp_path, "good")
    assert code == 0 and doc["passed"]
    check = _agreement(doc)
    assert check["ok"]
    probes = doc["live"]["probes"]
    # every Service port was probed; answers came from endpoints, with the
    # client's own address seen from a pod and the node's when masqueraded
    web = [p for p in probes if p["service"] == "shop/web:http" and p["client"] == "pod"][0]
    assert set(web["observed"]) == {f"10.244.{a}:8080 10.244.255.254"
                                    for a in ("1.5", "1.6", "2.7")}
    outside = [p for p in probes if p["service"] == "shop/web:http" and p["client"] == "outside"]
    assert all(k.endswith(" 203.0.113.10") for p in outside for k in p["observed"])
    assert {p["packet"]["dport"] for p in outside} == {80, 30080}
    empty = [p for p in probes if p["service"] == "shop/empty:http"]
    assert empty and all(set(p["observed"]) == {"refused"} for p in empty)
    dns = [p for p in probes if p["service"] == "kube-system/kube-dns:dns"]
    assert dns and all(p["packet"]["proto"] == "UDP" and p["conforms"] for p in dns)


def test_a_stale_endpoint_is_seen_live_where_the_proof_saw_it(capsys, tmp_path):
    code, doc = live(capsys, tmp_path, "stale-endpoint")
    assert code == 1
    check = _agreement(doc)
    assert not check["ok"]
    stale = [f for f in check["findings"] if "10.244.2.99:8443" in f["message"]]
    # the rule the live answer came from: the dump's DNAT to the stale address
    assert stale and all("DNAT --to-destination 10.244.2.99:8443" in f["rule"] for f in stale)
    symbolic = next(c for c in doc["checks"] if c["name"] == "cluster_ip_endpoints")
    assert not symbolic["ok"]


def test_an_off_by_one_probability_is_measured_live(capsys, tmp_path):
    # 20 samples per endpoint: a missing third is then far past the
    # Bonferroni-corrected threshold (chi-square ~30 on 2 degrees of freedom)
    code, doc = live(capsys, tmp_path, "probability-off-by-one", samples=20)
    assert code == 1
    check = _agreement(doc)
    assert not check["ok"]
    failing = {f["service"] for f in check["findings"]}
    assert "shop/web:http" in failing


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_live_run_leaves_nothing(signum, code):
    proc, prefix = _start_long_live_run()
    try:
        deadline = time.monotonic() + 120
        # wait until the pod client's prober is sending: every namespace, server
        # and client exists
        inodes: dict = {}
        while time.monotonic() < deadline and proc.poll() is None:
            inodes = _netns_inodes(prefix)
            client = inodes.get(prefix + "c")
            if client and _processes_in([client]):
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read()
        assert len(inodes) >= 5 and _processes_in(inodes.values())
        proc.send_signal(signum)
        rc = proc.wait(timeout=60)
        err = proc.stderr.read()
        assert rc == code, err
        assert "removed" in err and "Traceback" not in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not _namespaces(prefix)
    assert not _processes_in(inodes.values())
    assert not glob.glob(os.path.join(tempfile.gettempdir(), f"kubemc-{prefix}-*"))


def test_a_killed_runs_leftovers_are_removed_by_the_next_run():
    """SIGKILL runs no ``finally``: the next live run (its sweep) removes what it left,
    and leaves a run that is still going alone."""
    from kubemc.conformance.adapters.proxy.live import reap_leftovers

    proc, prefix = _start_long_live_run()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(_namespaces(prefix)) < 5:
            time.sleep(0.2)
        assert len(_namespaces(prefix)) >= 5
        assert not any(prefix in r for r in reap_leftovers())    # alive: not touched
        assert len(_namespaces(prefix)) >= 5
        while time.monotonic() < deadline and not _processes_in(_netns_inodes(prefix).values()):
            time.sleep(0.2)
        inodes = _netns_inodes(prefix)
        assert _processes_in(inodes.values())
        proc.kill()
        proc.wait()
        time.sleep(0.5)
        assert _namespaces(prefix), "SIGKILL should have left namespaces behind"
        removed = reap_leftovers()
        assert any(prefix in r for r in removed), removed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not _namespaces(prefix)
    time.sleep(0.5)
    assert not _processes_in(inodes.values())
    assert not glob.glob(os.path.join(tempfile.gettempdir(), f"kubemc-{prefix}-*"))

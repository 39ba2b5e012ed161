"""The local etcd cluster: it starts, answers, takes each fault, and leaves
nothing behind — after a clean stop, after an error, and after SIGINT or
SIGTERM to a running ``kubemc conform etcd``.

These need root and the ``etcd`` binary. Without them they skip — except
under ``CI=true``, where a missing real component is a failure (DESIGN.md).
"""

from __future__ import annotations

import glob
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import pytest
from conftest import require_real_etcd

from kubemc.conformance.adapters.etcd.cluster import LocalCluster
from kubemc.conformance.adapters.etcd.client import (ClientError, EtcdClient, Indeterminate,
                                                   Unavailable)

pytestmark = pytest.mark.real


def require_real() -> None:
    require_real_etcd()


@pytest.fixture(autouse=True)
def _real():
    require_real()


def eventually(action, seconds: float = 20):
    """``action()`` once the cluster has settled: after a member is killed or
    cut off, the others may need an election before they answer, and on a
    loaded machine that can take longer than one request's timeout."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return action()
        except (ClientError, AssertionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def leftovers(run_id: str) -> list[str]:
    """Everything on the machine still named after a run."""
    tag = f"kmc{run_id}"
    found = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found += [f"netns {line.split()[0]}" for line in netns.splitlines() if tag in line]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    found += [f"link {m}" for m in re.findall(r"^\d+: ([^:@]+)", links, re.M) if tag in m]
    rules = subprocess.run(["iptables", "-w", "-S"], capture_output=True, text=True).stdout
    found += [f"iptables {line}" for line in rules.splitlines() if tag in line]
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if tag in cmd and "pytest" not in cmd and str(os.getpid()) != pid:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                        found.append(f"process {pid}: {cmd[:80]}")
    found += [f"dir {d}" for d in glob.glob(os.path.join(tempfile.gettempdir(), f"{tag}-*"))]
    return found


def test_cluster_starts_serves_takes_faults_and_leaves_nothing():
    c = LocalCluster()
    run_id = c.run_id
    try:
        c.start()
        assert len(c.endpoints) == 3 and all(ep.startswith("http://10.251.0.") for ep in c.endpoints)
        cl = [EtcdClient(ep, timeout=3) for ep in c.endpoints]
        rev = eventually(lambda: cl[0].put("/t/a", "1"))
        assert eventually(lambda: cl[1].get("/t/a"))[1].value == "1"
        assert eventually(lambda: cl[2].get("/t/a"))[0] >= rev
        leader = c.leader()
        assert leader is not None

        # kill: the member stops answering; restart: it catches up
        victim = c.members[1]
        c.kill(victim)
        with pytest.raises((Unavailable, Indeterminate)):
            EtcdClient(victim.client_url, timeout=1).get("/t/a")
        eventually(lambda: cl[0].put("/t/a", "2"))
        c.restart(victim)
        c.wait_healthy(20, [victim])

        def caught_up(member):
            assert EtcdClient(member.client_url, timeout=3).get("/t/a")[1].value == "2"
        eventually(lambda: caught_up(victim))

        # partition: the cut member cannot serve a linearizable read; heal: it can
        cut = c.members[2]
        c.partition(cut)
        with pytest.raises((Indeterminate, Exception)):
            EtcdClient(cut.client_url, timeout=2).get("/t/a")
        c.heal(cut)
        eventually(lambda: caught_up(cut))

        # pause: a stopped member answers nothing; resumed, it does
        c.pause(c.members[0])
        with pytest.raises(Indeterminate):
            EtcdClient(c.members[0].client_url, timeout=1).get("/t/a")
        c.resume(c.members[0])
        c.wait_healthy(20)
    finally:
        problems = c.stop()
    assert problems == []
    assert c.stop() == []                 # idempotent
    assert leftovers(run_id) == []


def test_failed_start_cleans_up(monkeypatch):
    c = LocalCluster()

    def broken(self, m):
        raise RuntimeError("boom")

    monkeypatch.setattr(LocalCluster, "_spawn", broken)
    with pytest.raises(RuntimeError, match="boom"):
        c.start()
    assert leftovers(c.run_id) == []


def test_parallel_clusters_do_not_collide():
    a, b = LocalCluster(), LocalCluster()
    try:
        a.start()
        b.start()
        assert a.slot != b.slot and not set(a.endpoints) & set(b.endpoints)
        eventually(lambda: EtcdClient(a.endpoints[0]).put("/x", "a"))
        eventually(lambda: EtcdClient(b.endpoints[0]).put("/x", "b"))
        assert eventually(lambda: EtcdClient(a.endpoints[1]).get("/x"))[1].value == "a"
    finally:
        a.stop()
        b.stop()
    assert leftovers(a.run_id) == [] and leftovers(b.run_id) == []


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_run_removes_everything(sig, code, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "kubemc.conformance.adapters.etcd.cli",
                             "--time-limit", "60",
                             "--seed", "7", "--out", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        line = proc.stderr.readline()
        m = re.search(r"\(run ([0-9a-f]{6})\)", line)
        assert m, line
        run_id = m.group(1)
        deadline = time.monotonic() + 30
        while "ops " not in proc.stderr.readline():   # traffic is flowing
            assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(6)                                 # let the nemesis get a fault in
        proc.send_signal(sig)
        assert proc.wait(timeout=60) == code
        assert leftovers(run_id) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_leftovers_of_a_sigkilled_run_are_found_and_removed(tmp_path):
    """SIGKILL leaves everything behind; the next run removes it by the run's
    prefix (and says so), and never touches a live run's."""
    from kubemc.conformance.adapters.etcd import leftovers as etcd_leftovers

    proc = subprocess.Popen([sys.executable, "-m", "kubemc.conformance.adapters.etcd.cli",
                             "--time-limit", "60",
                             "--nemesis", "pause", "--out", str(tmp_path / "out")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        m = re.search(r"\(run ([0-9a-f]{6})\)", proc.stderr.readline())
        assert m
        run_id = m.group(1)
        deadline = time.monotonic() + 30
        while "ops " not in proc.stderr.readline():   # the cluster is up, traffic flowing
            assert time.monotonic() < deadline and proc.poll() is None
        with LocalCluster(size=1) as live:            # a live run, whose things must stay
            assert run_id in etcd_leftovers.find()
            assert not any(run_id in line for line in etcd_leftovers.remove_leftovers()), \
                "a live run's cluster was removed"
            proc.kill()
            proc.wait()
            left = leftovers(run_id)
            assert any(x.startswith("netns") for x in left), left
            report = etcd_leftovers.remove_leftovers()
            assert any(f"killed run {run_id}" in line and "netns" in line for line in report), report
            assert leftovers(run_id) == []
            assert run_id not in etcd_leftovers.find()
            assert live.run_id in etcd_leftovers.find()   # the live one kept everything
            assert EtcdClient(live.endpoints[0], timeout=2).healthy()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        etcd_leftovers.remove_leftovers()

"""``kubemc conform cri``: the checker on its own, then against a real containerd.

Without a runtime (fast): the CRI messages' field numbers on the wire, the
image archive, the replay of hand-written histories through the CRI model
(a correct one passes; a stale status, a forgotten stop, an impossible exit
code each fail with a window), the documented divergences, bad arguments.

Against a real containerd (marked ``real``; root, containerd, runc and
busybox-static needed — skipped locally without them, a failure under
``CI=true``): the default run with both faults passes for 60 s; each
known-bad runtime (:mod:`conformance.failpoint.cri_proxy`) fails by the
model check with a window on disk; ``--endpoint`` drives an existing
runtime; SIGINT and SIGTERM in the middle of a run leave no process, mount,
cgroup or directory behind.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pytest
from conftest import require

from kubemc.checker.cli import main as kubemc
from kubemc.conformance.history import Operation, read_jsonl
from kubemc.conformance.adapters.cri import cleanup as cri_cleanup, image as cri_image
from kubemc.conformance.adapters.cri import proto as pb
from kubemc.conformance.validate.cri import check_coverage, check_model, replay

ROOT = Path(__file__).resolve().parent.parent


# --- without a runtime ------------------------------------------------------------------------


def test_messages_use_api_proto_field_numbers():
    # StopContainerRequest: container_id = 1 (string), timeout = 2 (int64)
    assert pb.new("StopContainerRequest", container_id="x", timeout=2).SerializeToString() == b"\n\x01x\x10\x02"
    # ContainerStatus.exit_code = 7, state = 3 (enum): a response as a runtime sends it
    wire = bytes([0x0a, 0x04]) + bytes([0x18, 0x02, 0x38, 0x03])      # status{state=EXITED, exit_code=3}
    d = pb.to_dict(pb.decode("ContainerStatus", "response", wire))
    assert d["status"]["state"] == "CONTAINER_EXITED" and d["status"]["exit_code"] == 3
    # a field we did not declare is skipped, not an error
    unknown = wire[:1] + bytes([wire[1] + 3]) + wire[2:] + bytes([0xa0, 0x01, 0x07])   # field 20 = 7
    assert pb.to_dict(pb.decode("ContainerStatus", "response", unknown))["status"]["exit_code"] == 3


def test_image_archive_is_an_oci_layout_holding_busybox():
    busybox = cri_image.BUSYBOX_PATHS[0]
    require(os.path.exists(busybox) and cri_image._static(busybox), "busybox-static",
            "apt-get install busybox-static")
    data = cri_image.archive(busybox)
    assert data == cri_image.archive(busybox), "the archive is not deterministic"
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        names = tf.getnames()
        index = json.load(tf.extractfile("index.json"))
        assert "oci-layout" in names
        manifest_digest = index["manifests"][0]["digest"].split(":")[1]
        manifest = json.load(tf.extractfile(f"blobs/sha256/{manifest_digest}"))
        layer = tf.extractfile(f"blobs/sha256/{manifest['layers'][0]['digest'].split(':')[1]}").read()
    assert index["manifests"][0]["annotations"]["io.containerd.image.name"] == cri_image.IMAGE
    with tarfile.open(fileobj=io.BytesIO(layer)) as lt:
        assert lt.getmember("bin/busybox").size == os.path.getsize(busybox)
        assert lt.getmember("bin/sh").issym()
    # a dynamically linked binary is told apart from the static busybox
    assert not cri_image._static(shutil.which("ls"))       # Debian's coreutils: dynamic
    assert not cri_image._static(__file__)                  # not an ELF at all


class H:
    """A hand-written sequential history, as the workload records one."""

    def __init__(self):
        self.ops: list[Operation] = []

    def add(self, f, key, req, status, out, process=0):
        t = len(self.ops) * 2
        self.ops.append(Operation(process, f, key, req, out, t, t + 1, status, len(self.ops)))
        return self

    def run(self, sid, name="p0"):
        cfg = {"metadata": {"name": name, "uid": f"u-{name}", "namespace": "n", "attempt": 0}}
        return self.add("RunPodSandbox", None, {"config": cfg}, "ok", {"pod_sandbox_id": sid})

    def create(self, sid, cid, name="a", script="serve", exits=(), term=(0, 143)):
        cfg = {"metadata": {"name": name, "attempt": 0}}
        return self.add("CreateContainer", sid, {"pod_sandbox_id": sid, "config": cfg,
                                                 "kubemc": {"script": script, "exits": list(exits),
                                                            "term": list(term)}},
                        "ok", {"container_id": cid})

    def cstatus(self, cid, state, code=0, name="a"):
        return self.add("ContainerStatus", cid, {"container_id": cid}, "ok",
                        {"status": {"id": cid, "state": state, "exit_code": code,
                                    "metadata": {"name": name, "attempt": 0}}})

    def call(self, f, key, status="ok", out=None, **req):
        return self.add(f, key, req, status, out if out is not None else {})


def _lifecycle() -> H:
    h = H().run("S1").create("S1", "C1", exits=(3,), script="exit3", term=(143,))
    h.call("StartContainer", "C1", container_id="C1").cstatus("C1", "CONTAINER_RUNNING")
    h.cstatus("C1", "CONTAINER_EXITED", 3)                       # it exited by itself, with its code
    h.call("StopContainer", "C1", container_id="C1", timeout=1)   # idempotent on an exited container
    h.create("S1", "C2", name="b").call("StartContainer", "C2", container_id="C2")
    h.call("StopContainer", "C2", container_id="C2", timeout=2).cstatus("C2", "CONTAINER_EXITED", 0, "b")
    h.call("StartContainer", "C2", "fail", {"code": "UNKNOWN", "message": "exited"}, container_id="C2")
    h.call("StopPodSandbox", "S1", pod_sandbox_id="S1").call("StopPodSandbox", "S1", pod_sandbox_id="S1")
    h.call("PodSandboxStatus", "S1", out={"status": {"id": "S1", "state": "SANDBOX_NOTREADY",
                                                     "metadata": {"uid": "u-p0", "attempt": 0}}},
           pod_sandbox_id="S1")
    h.call("RemovePodSandbox", "S1", pod_sandbox_id="S1").call("RemovePodSandbox", "S1", pod_sandbox_id="S1")
    h.call("RemoveContainer", "C1", container_id="C1")
    h.call("ContainerStatus", "C2", "fail", {"code": "NOT_FOUND", "message": "gone"}, container_id="C2")
    h.call("ListPodSandbox", None, out={"items": []}, filter={})
    h.call("ListContainers", None, out={"containers": []}, filter={})
    return h


def test_a_correct_history_replays():
    r = replay(_lifecycle().ops)
    assert not r.violations and not r.undecided and r.checked == len(_lifecycle().ops)


def test_a_stale_status_is_a_violation_with_its_window():
    other = H().run("S9", "p9").create("S9", "C9", name="z")      # another pod, not concerned
    ops = other.ops + _lifecycle().ops
    ops = [Operation(*[getattr(o, f) for f in ("process", "f", "key", "input", "output")],
                     2 * i, 2 * i + 1, o.status, i) for i, o in enumerate(ops)]
    k = next(i for i, o in enumerate(ops) if o.f == "StopContainer" and o.key == "C2") + 1
    stale = H().cstatus("C2", "CONTAINER_RUNNING", 0, "b").ops[0]           # after the stop: RUNNING
    ops[k] = Operation(*[getattr(stale, f) for f in ("process", "f", "key", "input", "output")],
                       2 * k, 2 * k + 1, "ok", k)
    res, r = check_model(ops)
    assert not res.ok
    v = res.violations[0]
    assert v.message.startswith("ContainerStatus(C2) answered CONTAINER_RUNNING")
    assert "CONTAINER_EXITED exit 0" in v.message or "CONTAINER_EXITED exit 143" in v.message
    assert v.window[-1].index == k and any(op.f == "StopContainer" for op in v.window)
    assert not any("S9" in (op.key, (op.input or {}).get("pod_sandbox_id")) or op.key == "C9"
                   for op in v.window)       # only the objects concerned
    assert v.window[0].f == "RunPodSandbox"
    # the window is a history of its own: replayed alone, from an empty runtime, it fails too
    assert replay(list(v.window)).violations
    assert len(v.window) < len([o for o in ops[: k + 1] if o.key in ("S1", "C1", "C2", None)])


def test_an_exit_code_the_script_cannot_give_is_a_violation():
    h = H().run("S1").create("S1", "C1", exits=(3,), script="exit3", term=(143,))
    h.call("StartContainer", "C1", container_id="C1").cstatus("C1", "CONTAINER_EXITED", 5)
    res, _ = check_model(h.ops)
    assert not res.ok and "exit 5" in res.violations[0].message
    # killed from outside: 137 becomes possible
    h = H().run("S1").create("S1", "C1").call("StartContainer", "C1", container_id="C1")
    h.add("kill", "C1", {"container_id": "C1"}, "ok", {"pid": 1}, process=-1)
    h.cstatus("C1", "CONTAINER_EXITED", 137)
    assert check_model(h.ops)[0].ok


def test_filtered_lists_are_judged_by_the_model_filter():
    h = H().run("S1").create("S1", "C1", exits=(1,), script="exit1", term=(143,))
    h.call("StartContainer", "C1", container_id="C1").run("S2", "p2").create("S2", "C2", name="b")
    lst = lambda flt, items: h.call("ListContainers", None, out={"containers": [
        {"id": i, "state": st} for i, st in items]}, filter=flt)
    lst({"pod_sandbox_id": "S2"}, [("C2", "CONTAINER_CREATED")])
    lst({"pod_sandbox_id": "GONE"}, [])
    lst({"state": {"state": "CONTAINER_RUNNING"}}, [])          # C1 exited by itself meanwhile
    h.cstatus("C1", "CONTAINER_EXITED", 1)
    h.call("ListPodSandbox", None, out={"items": [{"id": "S2", "state": "SANDBOX_READY"}]},
           filter={"id": "S2"})
    assert check_model(h.ops)[0].ok
    bad = H().run("S1").create("S1", "C1").call("StartContainer", "C1", container_id="C1")
    bad.call("ListContainers", None, out={"containers": []}, filter={"state": {"state": "CONTAINER_RUNNING"}})
    res, _ = check_model(bad.ops)                # a serving container cannot vanish from the list
    assert not res.ok and "ListContainers" in res.violations[0].message


def test_an_id_handed_out_twice_is_a_violation_at_the_second_create():
    h = H().run("S1").create("S1", "C1", name="a").create("S1", "C1", name="b")
    res, _ = check_model(h.ops)
    assert not res.ok and res.violations[0].message.startswith("CreateContainer")
    assert check_model(H().run("S1").create("S1", "C1", name="a").create("S1", "C2", name="b").ops)[0].ok


def test_a_dropped_sandbox_stop_is_a_violation():
    h = H().run("S1").create("S1", "C1").call("StartContainer", "C1", container_id="C1")
    h.call("StopPodSandbox", "S1", pod_sandbox_id="S1").cstatus("C1", "CONTAINER_RUNNING")
    res, _ = check_model(h.ops)
    assert not res.ok and "CONTAINER_EXITED exit 137" in res.violations[0].message


def test_documented_divergences_are_reported_and_fail_only_when_strict():
    h = H().run("S1").call("StopPodSandbox", "S1", pod_sandbox_id="S1")
    h.create("S1", "C1")
    h.ops[-1] = Operation(0, "CreateContainer", "S1", h.ops[-1].input, {"code": "NOT_FOUND"}, 4, 5, "fail", 2)
    h.call("RemovePodSandbox", "S1", pod_sandbox_id="S1")
    h.call("StopPodSandbox", "S1", "fail", {"code": "NOT_FOUND", "message": "not found"}, pod_sandbox_id="S1")
    r = replay(h.ops)
    assert not r.violations and [d for d, _ in r.divergences] == ["stop-removed-sandbox"]
    strict = replay(h.ops, strict=True)
    assert strict.violations and "stop-removed-sandbox" in strict.violations[0].message
    # containerd's failed start in a stopped sandbox leaves the container EXITED 128
    h = H().run("S1").create("S1", "C1").call("StopPodSandbox", "S1", pod_sandbox_id="S1")
    h.call("StartContainer", "C1", "fail", {"code": "UNKNOWN", "message": "sandbox not running"},
           container_id="C1").cstatus("C1", "CONTAINER_EXITED", 128)
    assert not replay(h.ops).violations
    assert replay(h.ops, strict=True).violations


def test_a_replay_that_outgrows_its_room_is_undecided(monkeypatch):
    import kubemc.conformance.validate.cri as v
    h = H().run("S1").create("S1", "C1").call("StartContainer", "C1", container_id="C1")
    h.create("S1", "C2", name="b").add("restart", None, {}, "ok", {"down_seconds": 0.1}, process=-1)
    h.cstatus("C1", "CONTAINER_RUNNING")
    assert not replay(h.ops).undecided
    monkeypatch.setattr(v, "MAX_CANDIDATES", 1)       # a restart may lose either container
    r = replay(h.ops)
    assert r.undecided.startswith("UNDECIDED") and not r.violations


def test_an_exit_code_lost_in_a_restart_is_a_divergence():
    h = H().run("S1").create("S1", "C1", exits=(3,), script="exit3", term=(143,))
    h.call("StartContainer", "C1", container_id="C1")
    h.add("restart", None, {}, "ok", {"down_seconds": 0.3}, process=-1)
    h.cstatus("C1", "CONTAINER_EXITED", 255)          # containerd: reason Unknown
    r = replay(h.ops)
    assert not r.violations and [d for d, _ in r.divergences] == ["restart-exit-unknown"]
    assert replay(h.ops, strict=True).violations
    h.ops.pop(-2)                                       # no restart: 255 is just wrong
    h.ops[-1] = Operation(*[getattr(h.ops[-1], f) for f in ("process", "f", "key", "input", "output",
                                                          "call", "ret", "status")], len(h.ops) - 1)
    assert replay(h.ops).violations


def test_a_lost_container_may_turn_out_to_have_exited_by_itself():
    h = H().run("S1").create("S1", "C1", exits=(3,), script="exit3", term=(143,))
    h.call("StartContainer", "C1", container_id="C1")
    h.add("restart", None, {}, "ok", {"down_seconds": 0.3}, process=-1)
    h.cstatus("C1", "CONTAINER_UNKNOWN")                     # the restart lost it
    h.call("StopContainer", "C1", container_id="C1", timeout=0)
    h.cstatus("C1", "CONTAINER_EXITED", 3)                   # containerd: it had exited with 3
    assert not replay(h.ops).violations
    h.ops[-1] = H().cstatus("C1", "CONTAINER_EXITED", 4).ops[0]
    h.ops[-1] = Operation(*[getattr(h.ops[-1], f) for f in ("process", "f", "key", "input", "output")],
                          99, 100, "ok", len(h.ops) - 1)
    assert replay(h.ops).violations                          # but not with a code it cannot give


def test_coverage_refuses_a_run_that_did_nothing():
    res = check_coverage(H().call("Version", None, out={"version": "0.1.0"}).ops, ("kill",), 1)
    assert not res.ok
    text = " ".join(v.message for v in res.violations)
    assert "never answered OK: RunPodSandbox" in text and "'kill' was never injected" in text


@pytest.mark.parametrize("argv, code, words", [
    (["--endpoint", "tcp://127.0.0.1:1"], 2, "is not a socket address"),
    (["--faults", "explode"], 2, "unknown fault"),
    (["--endpoint", "unix:///nonexistent/kubemc.sock", "--faults", "kill"], 2, "--faults needs"),
    (["--time-limit", "nan"], 2, "finite"),
    (["--endpoint", "unix:///nonexistent/kubemc.sock"], 3, "no such socket"),
])
def test_bad_arguments_are_one_line(argv, code, words, capsys):
    assert kubemc(["conform", "cri", *argv]) == code
    err = capsys.readouterr().err.strip()
    assert words in err and "Traceback" not in err


def test_a_local_runtime_without_root_is_a_missing_environment(monkeypatch, capsys):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert kubemc(["conform", "cri", "--time-limit", "1"]) == 3
    err = capsys.readouterr().err
    assert "needs root" in err and "--endpoint" in err and "Traceback" not in err


# --- against a real containerd ------------------------------------------------------------------


def require_real_cri() -> None:
    missing = []
    if os.geteuid() != 0:
        missing.append("root")
    for tool in ("containerd", "ctr", "containerd-shim-runc-v2"):
        if shutil.which(tool) is None:
            missing.append(f"{tool} (apt-get install containerd)")
    if shutil.which("runc") is None and not os.path.exists("/usr/sbin/runc"):
        missing.append("runc (apt-get install runc)")
    if not any(os.path.exists(p) and cri_image._static(p) for p in cri_image.BUSYBOX_PATHS):
        missing.append("a static busybox (apt-get install busybox-static)")
    require(not missing, "needs " + ", ".join(missing), "run the README's test command as root")


def leftovers(run_id: str) -> list[str]:
    """Anything of run ``run_id`` still on the machine."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if f"kmc{run_id}-cri-".encode() in fh.read():
                        found.append(f"process {entry}")
            except OSError:
                pass
    with open("/proc/self/mountinfo") as fh:
        found += [f"mount {line.split()[4]}" for line in fh if f"kmc{run_id}-cri-" in line]
    found += [f"dir {p}" for p in Path(tempfile.gettempdir()).glob(f"kmc{run_id}-cri-*")]
    found += [f"cgroup {p}" for p in Path("/sys/fs/cgroup").glob(f"*/kmc{run_id}")]
    return found


@pytest.mark.real
@pytest.mark.timeout(240)
def test_real_containerd_passes_60s_with_faults(tmp_path, capsys):
    require_real_cri()
    junit = tmp_path / "junit.xml"
    code = kubemc(["conform", "cri", "--time-limit", "60", "--out", str(tmp_path / "out"),
                   "--junit", str(junit), "--json"])
    out, err = capsys.readouterr()
    doc = json.loads(out)
    with capsys.disabled():
        print(f"\nconform cri 60 s: {doc['calls']} calls, {doc['calls_per_second']} calls/s, "
              f"faults {doc['faults']}, divergences {doc['divergences']}, check {doc['check_seconds']} s")
    assert code == 0, [c for c in doc["checks"] if not c["ok"]]
    assert doc["passed"] and doc["duration_seconds"] >= 60 and doc["calls"] >= 500
    assert doc["faults"].get("kill", 0) >= 1 and doc["faults"].get("restart", 0) >= 1
    assert all(c["checked"] > 0 for c in doc["checks"])
    assert 'failures="0"' in junit.read_text()
    assert not doc["problems"], doc["problems"]
    assert leftovers(doc["run_id"]) == []
    # the same history under --strict: containerd 1.6's divergences from the model are real
    ops = __import__("kubemc.conformance.history",
                     fromlist=["pair"]).pair(read_jsonl(doc["history"]))
    strict, _ = check_model(ops, strict=True)
    assert doc["divergences"] and not strict.ok


@pytest.mark.real
@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", ["stale-status", "drop-sandbox-stop"])
def test_known_bad_runtime_fails(mode, tmp_path):
    require_real_cri()
    from kubemc.conformance.failpoint.cri_proxy import CriProxy
    from kubemc.conformance.report.cri import summary
    from kubemc.conformance.adapters.cri.suite import CriOptions, run_suite

    proxies = []

    def front(sock):
        px = CriProxy(sock, mode)
        proxies.append(px)
        return px.start(), px

    r = run_suite(CriOptions(time_limit=10, faults=(), seed=1, progress=False, out=str(tmp_path)), front=front)
    assert proxies[0].tampered > 0, "the proxy never broke anything"
    assert not r.passed and "cri-model" in r.failed_checks
    v = next(v for v in r.violations if v.check == "cri-model")
    assert v.window and "the model allows only" in v.message
    text = summary(r)
    assert text.startswith("kubemc conform cri: FAIL") and "violation of cri-model" in text
    assert (tmp_path / "violations" / "cri-model.jsonl").exists()
    trace = json.loads((tmp_path / "violations" / "cri-model.itf.json").read_text())
    assert trace["#meta"]["property"] == "cri-model" and trace["states"]
    assert leftovers(r.run_id) == []


@pytest.mark.real
@pytest.mark.timeout(120)
def test_existing_runtime_through_endpoint(tmp_path):
    require_real_cri()
    from kubemc.conformance.adapters.cri.runtime import LocalContainerd
    from kubemc.conformance.adapters.cri.suite import CriOptions, run_suite

    with LocalContainerd(snapshotter="native") as rt:      # the fallback snapshotter works too
        assert rt.snapshotter == "native"
        # without the run's image the endpoint is refused before the run (exit 3) …
        subprocess.run(["ctr", "--address", rt.socket, "-n", "k8s.io", "images", "rm", cri_image.IMAGE],
                       check=True, capture_output=True)
        assert kubemc(["conform", "cri", "--endpoint", f"unix://{rt.socket}"]) == 3
        # … and the helper the message names puts it back
        assert cri_image.main([f"unix://{rt.socket}"]) == 0
        r = run_suite(CriOptions(endpoint=rt.socket, faults=(), time_limit=10, progress=False,
                                 min_calls=20, out=str(tmp_path)))
    assert r.passed, [v.message for v in r.violations]
    assert r.calls > 50 and not r.local and r.fault_count == 0
    assert leftovers(rt.run_id) == []


@pytest.mark.real
@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_run_leaves_nothing(sig, code, tmp_path):
    require_real_cri()
    proc = subprocess.Popen([sys.executable, "-m", "kubemc.conformance.adapters.cri.cli",
                             "--time-limit", "60",
                             "--out", str(tmp_path / "out")], cwd=ROOT, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    run_id, lines = None, []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        lines.append(line)
        if (m := re.search(r"run ([0-9a-f]{6})", line)):
            run_id = m.group(1)
        if "up with snapshotter" in line:
            break
    assert run_id, lines
    time.sleep(4)                   # sandboxes and containers are running now
    assert any(p.startswith("process") for p in leftovers(run_id)), "nothing was running to clean up"
    proc.send_signal(sig)
    rest = proc.communicate(timeout=60)[1]
    assert proc.returncode == code, (lines, rest)
    assert leftovers(run_id) == []


@pytest.mark.real
@pytest.mark.timeout(120)
def test_a_killed_runners_leftovers_are_removed_by_the_next_run(tmp_path):
    """SIGKILL runs no ``finally``: containerd, shims, containers, mounts and the
    directory stay — until the next run finds them by their run id."""
    require_real_cri()
    from kubemc.conformance.adapters.cri.runtime import LocalContainerd

    proc = subprocess.Popen([sys.executable, "-m", "kubemc.conformance.adapters.cri.cli",
                             "--time-limit", "60",
                             "--faults", "none", "--out", str(tmp_path / "out")], cwd=ROOT,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    run_id = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if (m := re.search(r"run ([0-9a-f]{6})", line)):
            run_id = m.group(1)
        if "up with snapshotter" in line or not line:
            break
    assert run_id
    time.sleep(4)
    proc.kill()
    proc.wait(timeout=10)
    left = leftovers(run_id)
    assert any(x.startswith("mount") for x in left) and any(x.startswith("dir") for x in left), left
    with LocalContainerd() as rt:
        # this start sweeps them (or a parallel test's start already has: CI runs two workers)
        assert leftovers(run_id) == [], rt.reaped
    assert not any(run_id in o for o in cri_cleanup.other_live_runs("")), "the dead run's lock is held"

"""``kubemc conform maelstrom``: the runner against programs that are right, wrong and broken.

The node programs live in ``conformance/adapters/maelstrom/nodes``: ``leader_kv``
(linearizable), ``replica_kv`` (stale reads from asynchronously updated
replicas) and ``misbehave`` (crash, hang, garbage, no init, early exit). Every
run here lasts a few seconds; the issue's acceptance runs (30 s each, with
partitions) are marked ``slow``. Each test that starts nodes also checks,
through ``/proc``, that no process it started is left — the nodes carry a
unique ``--marker=`` argument for that.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubemc.checker.errors import BadInput
from kubemc.conformance.history import FAIL, INFO, OK, Operation, Recorder, read_jsonl
from kubemc.conformance.linearizability import NOT_LINEARIZABLE, check, check_events
from kubemc.conformance.adapters.maelstrom import run as maelstrom
from kubemc.conformance.adapters.maelstrom.config import Config, parse_command
from kubemc.conformance.adapters.maelstrom.protocol import classify, error_info
from kubemc.conformance.model.register import Register
from kubemc.conformance.validate.maelstrom import judge
from kubemc.conformance.validate.window import failures, smallest_window

ROOT = Path(__file__).resolve().parent.parent
NODES = ROOT / "conformance" / "adapters" / "maelstrom" / "nodes"
CORRECT = NODES / "leader_kv.py"
FAULTY = NODES / "replica_kv.py"
MISBEHAVE = NODES / "misbehave.py"
RELAY = NODES / "relay_kv.py"
GRACE = 2.5          # seconds past time limit + request timeout a run may take to end


# -- helpers -------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"            # a zombie has exited; only its parent's bookkeeping is left


def _marked(marker: str) -> list[int]:
    """Live processes whose command line carries ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read()
        except OSError:
            continue
        if marker.encode() in cmdline and _alive(int(entry)):
            found.append(int(entry))
    return found


def assert_no_leftovers(marker: str, pids=()) -> None:
    deadline = time.monotonic() + 2.0        # SIGKILL is delivered at once; death takes a moment
    while True:
        left = _marked(marker) + [p for p in pids if _alive(p)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not left, f"processes left behind: {left}"


def node_command(program: Path, *args: str) -> tuple[str, tuple[str, ...]]:
    marker = f"kubemc-test-{uuid.uuid4().hex[:12]}"
    return marker, (sys.executable, str(program), *args, f"--marker={marker}")


def run_nodes(program: Path, tmp_path: Path, *args: str, **cfg):
    marker, command = node_command(program, *args)
    cfg.setdefault("time_limit", 4.0)
    cfg.setdefault("seed", 1)
    config = Config(command=command, out=tmp_path / "out", **cfg)
    t0 = time.monotonic()
    outcome = maelstrom.run(config)
    wall = time.monotonic() - t0
    assert wall <= config.time_limit + config.timeout + GRACE, f"run took {wall:.1f} s"
    assert outcome.pids and len(outcome.pids) == config.nodes
    assert_no_leftovers(marker, outcome.pids)
    return outcome, judge(outcome, budget=30)


KUBEMC = [sys.executable, "-m", "kubemc.checker.cli", "conform",
          "maelstrom"]   # `kubemc conform maelstrom`


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*KUBEMC, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def statuses(judgement) -> dict[str, str]:
    return {c.name: c.status for c in judgement.checks}


# -- the protocol's error codes and how replies become history events --------------------


def test_error_codes_follow_the_maelstrom_table():
    indefinite = {0, 13}
    definite = {1, 10, 11, 12, 14, 20, 21, 22, 30}
    for code in indefinite | definite:
        assert error_info(code)[1] == (code in definite), code
    assert error_info(13) == ("crash", False) and error_info(14) == ("abort", True)
    assert error_info(1000)[1] is False          # custom codes are indefinite
    assert error_info("11")[1] is False          # not an integer: nothing is known


def test_replies_become_ok_fail_or_info():
    read, write = {"type": "read", "key": 1}, {"type": "write", "key": 1, "value": 3}
    cas = {"type": "cas", "key": 1, "from": 2, "to": 4}
    assert classify("read", read, {"type": "read_ok", "value": 7})[:2] == (OK, 7)
    assert classify("read", read, {"type": "error", "code": 20})[:2] == (OK, None)
    assert classify("write", write, {"type": "write_ok"})[:2] == (OK, 3)
    assert classify("cas", cas, {"type": "cas_ok"})[:2] == (OK, [2, 4])
    assert classify("cas", cas, {"type": "error", "code": 22})[0] == FAIL
    assert classify("cas", cas, {"type": "error", "code": 20})[0] == FAIL
    assert classify("write", write, {"type": "error", "code": 11})[0] == FAIL
    # a cas refused for another reason observed nothing: the register model would read
    # "fail" as "the compare did not hold", so it is recorded as unknown
    assert classify("cas", cas, {"type": "error", "code": 11})[0] == INFO
    for reply in (None, {"type": "error", "code": 0}, {"type": "error", "code": 13},
                  {"type": "error", "code": 1234}):
        typ, _, problem = classify("write", write, reply)
        assert typ == INFO and problem is None
    for bad in ({"type": "write_ok"}, {"type": "read_ok"}, {"type": "error"}):
        typ, _, problem = classify("read", read, bad)
        assert typ == INFO and problem


# -- the smallest failing window ------------------------------------------------------------


def test_window_is_cut_to_the_operations_that_fail_alone():
    clock = iter(range(0, 10_000, 10))
    rec = Recorder(clock=lambda: next(clock))
    for process, f, value, out in [(0, "write", 1, 1), (1, "read", None, 1), (0, "write", 2, 2),
                                   (1, "read", None, 2), (0, "write", 3, 3),
                                   (1, "read", None, 2)]:     # the last read is stale
        token = rec.invoke(process, f, "k", value)
        rec.complete(token, OK, out)
    result = check(rec.operations(), "register")
    assert result.verdict == NOT_LINEARIZABLE
    window = smallest_window(result.failure, Register())
    assert [(op.f, op.input, op.output) for op in window.ops] == [("write", 3, 3),
                                                                  ("read", None, 2)]
    assert window.from_any and window.culprit.output == 2


@st.composite
def histories(draw):
    """Small one-key register histories, often not linearizable: random intervals,
    values and outcomes (``info`` ones with no return)."""
    ops = []
    for index in range(draw(st.integers(2, 8))):
        call = draw(st.integers(0, 40))
        ret = call + draw(st.integers(1, 15))
        f = draw(st.sampled_from(["read", "write", "cas"]))
        status = draw(st.sampled_from([OK, OK, OK, FAIL, INFO] if f == "cas" else [OK, OK, INFO]))
        v = draw(st.integers(0, 2))
        value = {"read": None, "write": v, "cas": [v, draw(st.integers(0, 2))]}[f]
        out = draw(st.sampled_from([None, 0, 1, 2])) if f == "read" else value
        ops.append(Operation(index, f, "k", value, None if status == INFO else out, call,
                             None if status == INFO else ret, status, index))
    return ops


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(histories())
def test_window_fails_alone_and_comes_from_the_history(ops):
    result = check(ops, "register")
    if result.verdict != NOT_LINEARIZABLE:
        return
    window = smallest_window(result.failure, Register())
    # the window's operations are the history's (those running when it fails: unknown)
    by_index = {op.index: op for op in ops}
    for op in window.ops:
        orig = by_index[op.index]
        # or an unknown write the register decided (its unique value was seen,
        # so it took effect: ``Register.simplify``), returning when first seen
        decided = (orig.status == INFO and op.status == OK and op.ret is not None
                   and attrs.evolve(orig, status=OK, output=orig.input, ret=op.ret) == op)
        assert op == orig or decided or (
            op.status == INFO and attrs.evolve(orig, output=None, ret=None, status=INFO) == op)
    assert window.culprit is not None and window.culprit.status in (OK, FAIL)
    # what the window claims: not linearizable from nil, or from any value if cut
    assert failures(list(window.ops), Register(), window.from_any) is not None
    # only observations (ok reads, failed cas) and whole early runs are ever dropped
    kept = {op.index for op in window.ops}
    dropped = [op for op in ops if op.index not in kept]
    if not window.from_any:
        assert all(op.call > window.culprit.ret or (op.f == "read" and op.status in (OK, INFO))
                   or (op.f == "cas" and op.status == FAIL) for op in dropped)


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("cmd, words", [
    ("", "empty"), ("   ", "empty"), ("python3 'unclosed", "split"),
    ("/nonexistent/node --x", "no such file"), ("no-such-program-kubemc", "not a program on PATH"),
    ("/", "directory"),
])
def test_unusable_commands_are_bad_input(cmd, words):
    with pytest.raises(BadInput, match=words):
        parse_command(cmd)


def test_cli_rejects_a_command_it_cannot_execute_in_one_line(tmp_path):
    script = tmp_path / "node.py"
    script.write_text("print('hi')\n")                      # not executable
    garbage = tmp_path / "node.bin"
    garbage.write_bytes(b"\x7fELF not really")
    garbage.chmod(0o755)                                    # executable, but no format
    for cmd, words in [(str(script), "not executable"), (str(garbage), "cannot execute"),
                       ("no-such-program-kubemc", "not a program on PATH")]:
        r = cli("--bin", cmd, "--time-limit", "2", "--out", str(tmp_path / "out"))
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0] and "Traceback" not in r.stderr
    r = cli("--bin", f"{sys.executable} {CORRECT}", "--nodes", "0", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "--nodes" in r.stderr


# -- verdicts --------------------------------------------------------------------------------------


def test_correct_nodes_are_linearizable_under_partitions(tmp_path):
    outcome, j = run_nodes(CORRECT, tmp_path, time_limit=6, nemesis_interval=1.0, seed=5)
    assert j.exit_code == 0, "\n".join(c.message for c in j.checks)
    assert all(s == "pass" for s in statuses(j).values())
    assert j.linearizability.verdict == "linearizable"
    assert len(outcome.partitions) >= 2 and outcome.messages["dropped"] > 0
    counts = j.op_counts()
    assert counts["ok"] >= 50 and counts["total"] == counts["ok"] + counts["fail"] + counts["info"]
    # the history on disk says the same, and `kubemc check-history` can read it
    events = read_jsonl(outcome.config.out / "history.jsonl")
    assert len(events) == len(outcome.recorder.events())
    assert check_events(events, "register").verdict == "linearizable"


def test_faulty_nodes_are_caught_with_a_window_json_and_junit(tmp_path):
    marker, command = node_command(FAULTY)
    out, junit = tmp_path / "out", tmp_path / "junit.xml"
    t0 = time.monotonic()
    r = cli("--bin", " ".join(command), "--time-limit", "8", "--nemesis-interval", "1",
            "--timeout", "0.25", "--rate", "80", "--seed", "2", "--out", str(out),
            "--json", "--junit", str(junit))
    # the run itself keeps to its limit; the wall clock adds the interpreter's
    # start and the check, which a loaded machine slows (a generous bound: a hang)
    assert time.monotonic() - t0 < 8 + 0.25 + GRACE + 60
    assert_no_leftovers(marker)
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    doc = json.loads(r.stdout)
    assert doc["elapsed_seconds"] < 8 + 0.25 + GRACE
    checks = {c["name"]: c for c in doc["checks"]}
    assert checks["linearizable"]["status"] == "fail"
    assert all(checks[n]["status"] == "pass" for n in ("init", "protocol", "nodes-up"))
    assert doc["linearizability"]["verdict"] == "not linearizable"
    assert doc["partitions"] and doc["operations"]["ok"] > 0
    # the smallest failing window: a file of its own, not linearizable by itself
    window = doc["window"]
    assert 2 <= len(window["ops"]) <= len(doc["linearizability"]["failure"]["ops"])
    events = read_jsonl(doc["files"]["window"])
    assert check_events(events, "register").verdict == "not linearizable"
    assert Path(doc["files"]["trace"]).is_file()
    assert json.loads((out / "report.json").read_text())["verdict"] == "fail"
    from junitparser import JUnitXml

    suite = next(iter(JUnitXml.fromfile(str(junit))))
    cases = {case.name: case for case in suite}
    assert suite.name == "kubemc conform maelstrom"
    assert not cases["linearizable"].is_passed and cases["init"].is_passed


# -- robustness: whatever the program does, the run is reported and ends on time --------------


@pytest.mark.parametrize("mode, failed, words", [
    ("crash", {"nodes-up"}, "exited with status 3"),
    ("hang", {"availability"}, "none of"),
    ("garbage", {"protocol", "availability"}, "garbage"),
    ("noinit", {"init"}, "did not answer init"),
    ("exit", {"init", "nodes-up"}, "exited (status 0) before answering init"),
    ("escape", {"availability"}, "none of"),
    ("deep", {"protocol", "availability"}, "nested too deeply"),
])
def test_broken_programs_are_reported_and_cleaned_up(tmp_path, mode, failed, words):
    outcome, j = run_nodes(MISBEHAVE, tmp_path, mode)
    st = statuses(j)
    assert {name for name, s in st.items() if s == "fail"} == failed, st
    assert j.exit_code == 1
    messages = " ".join(c.message + " " + " ".join(c.details) for c in j.checks)
    assert words in messages
    if mode == "crash":       # the survivors stayed correct
        assert st["linearizable"] == "pass" and outcome.nodes[-1].exit_status == 3
    if mode == "garbage":
        assert outcome.problem_counts["garbage"] > 0 and outcome.problem_counts["unknown-src"] > 0
    if mode in ("noinit", "exit"):
        assert st["linearizable"] == "skip" and not outcome.recorder.events()
    if mode == "deep":        # the reader lived on: every request's answer was reported
        assert outcome.problem_counts["garbage"] >= 2


def test_a_flood_on_stderr_is_cut_at_the_cap(tmp_path):
    outcome, j = run_nodes(MISBEHAVE, tmp_path, "flood", time_limit=3, nemesis="none")
    assert j.exit_code == 0, [c.message for c in j.checks]
    for n in outcome.nodes:
        size = n.stderr_path.stat().st_size
        assert size <= maelstrom.MAX_STDERR + 200, size
    flooded = [n for n in outcome.nodes if n.stderr_bytes > maelstrom.MAX_STDERR]
    assert flooded and any("the rest was dropped" in note for note in outcome.notes)
    assert "stderr cut" in flooded[0].stderr_path.read_text()[-200:]


@pytest.mark.parametrize("args, words", [
    (["--timeout", "inf"], "--timeout must be a finite number"),
    (["--time-limit", "nan"], "--time-limit must be a finite number"),
    (["--check-budget", "inf"], "--check-budget must be a finite number"),
])
def test_infinite_numbers_are_refused(args, words, tmp_path):
    r = cli("--bin", f"{sys.executable} {CORRECT}", "--out", str(tmp_path / "o"), *args)
    assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()


def test_output_paths_are_refused_before_the_run(tmp_path):
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("someone else's\n")
    t0 = time.monotonic()
    r = cli("--bin", f"{sys.executable} {CORRECT}", "--time-limit", "120", "--out", str(used))
    assert r.returncode == 2 and "already holds files" in r.stderr, r.stderr
    assert (used / "notes.txt").read_text() == "someone else's\n" and len(list(used.iterdir())) == 1
    r = cli("--bin", f"{sys.executable} {CORRECT}", "--time-limit", "120",
            "--out", str(tmp_path / "new"), "--junit", str(tmp_path))
    assert r.returncode == 2 and "is a directory" in r.stderr, r.stderr
    # either run would take 120 s: far under that, both were refused before running
    assert time.monotonic() - t0 < 100, "refused only after a run"
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_run_and_every_process(tmp_path, sig, code):
    marker, command = node_command(MISBEHAVE, "hang")
    proc = subprocess.Popen([*KUBEMC, "--bin", " ".join(command), "--time-limit", "60",
                             "--out", str(tmp_path / "out")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        # the nodes and each hung node's child: 3 + 3 processes, plus the runner itself
        while len(_marked(marker)) < 7 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_marked(marker)) >= 4, "the nodes never started"
        time.sleep(0.5)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    assert "interrupted" in err and "Traceback" not in err
    assert_no_leftovers(marker)


# -- no stricter than Maelstrom: relayed requests pass, spoofed senders do not ------------------


def test_relaying_a_clients_message_with_its_src_is_accepted(tmp_path):
    outcome, j = run_nodes(RELAY, tmp_path, time_limit=5, nemesis_interval=1.0, seed=3)
    assert j.exit_code == 0, "\n".join(c.message for c in j.checks)
    assert all(s == "pass" for s in statuses(j).values()), statuses(j)
    assert j.op_counts()["ok"] >= 30
    assert any("re-sent with another node's or client's src" in n for n in outcome.notes), \
        outcome.notes
    # each relayed src is a client that did send the relaying node its request
    assert not any("never sent the node anything" in n for n in outcome.notes), outcome.notes


def test_a_src_naming_nobody_is_a_protocol_error(tmp_path):
    outcome, j = run_nodes(RELAY, tmp_path, "--spoof-src=c999", time_limit=3)
    assert statuses(j)["protocol"] == "fail" and j.exit_code == 1
    assert outcome.problem_counts["unknown-src"] > 0
    protocol = next(c for c in j.checks if c.name == "protocol")
    assert "'c999'" in protocol.message and "names no node or client" in protocol.message


# -- acceptance: 30 s each with partitions, the right verdict for both ----------------------


@pytest.mark.slow
def test_acceptance_thirty_seconds_correct_and_faulty(tmp_path):
    runs = {}
    for name, program in (("correct", CORRECT), ("faulty", FAULTY)):
        marker, command = node_command(program)
        out = tmp_path / name
        p = subprocess.Popen([*KUBEMC, "--bin", " ".join(command), "--time-limit", "30",
                              "--nemesis", "partition", "--seed", "30", "--out", str(out),
                              "--json"],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        runs[name] = (p, marker, time.monotonic())
    docs = {}
    for name, (p, marker, t0) in runs.items():
        out, err = p.communicate(timeout=120)
        wall = time.monotonic() - t0
        assert_no_leftovers(marker)
        docs[name] = (p.returncode, json.loads(out), wall, err)
    rc, doc, wall, err = docs["correct"]
    assert rc == 0, err[-2000:]
    assert doc["linearizability"]["verdict"] == "linearizable"
    assert len(doc["partitions"]) >= 2 and doc["operations"]["ok"] > 300
    assert doc["elapsed_seconds"] <= 30 + 1 + GRACE
    rc, doc, wall, err = docs["faulty"]
    assert rc == 1, err[-2000:]
    assert doc["linearizability"]["verdict"] == "not linearizable"
    assert [c["name"] for c in doc["checks"] if c["status"] == "fail"] == ["linearizable"]
    assert doc["elapsed_seconds"] <= 30 + 1 + GRACE

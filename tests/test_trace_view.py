"""`kubemc trace view`: every trace kubemc writes becomes a page of swimlanes.

The page's behaviour in a real browser is tested in test_trace_view_browser.py;
here, what the page says: lanes, arrows, diffs, the lasso, the header, and
that bad input is one line and exit 2, and no file is ever overwritten.
"""

import html
import json
import re
import tomllib
from pathlib import Path

import pytest

from kubemc.checker import trace_lanes, traces
from kubemc.checker.cli import main
from kubemc.checker.trace_diff import diff
from kubemc.checker.trace_view import default_out, render

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = sorted((ROOT / "traces").rglob("*.itf.json"))
RAFT = ROOT / "traces/store/raft-leader_completeness-explore-figure8_commit.itf.json"
WRITES = ROOT / "traces/apiserver/apiserver-writes-no_lost_update-explore-update_without_rv_compare.itf.json"
LASSO = ROOT / "traces/controllers/nodelifecycle-nodelifecycle_converges-explore-keeps_unknown_after_recovery.itf.json"
Z3 = ROOT / "traces/store/election-election_safety-z3-double_vote.itf.json"

# anything a page could fetch: a src or href attribute, a CSS url(), an import
FETCH = re.compile(r"""\b(?:src|href)\s*=|url\(\s*['"]?(?!#)|@import|\bfetch\(|XMLHttpRequest""")


def test_there_are_committed_traces_of_every_engine():
    engines = {json.loads(p.read_text())["#meta"].get("engine") for p in COMMITTED}
    assert {"explore", "hypothesis", "z3"} <= engines
    assert any("loop" in json.loads(p.read_text()) for p in COMMITTED)


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_renders_every_committed_trace(path):
    trace = traces.load(path)
    page = render(trace, source=path.name)
    n = len(trace["states"])
    # one clickable row and one diff section per state, and no more
    assert len(re.findall(r'<rect class="row" id="row-\d+"', page)) == n
    assert len(re.findall(r'<section class="step" id="step-\d+"', page)) == n
    # one event per step (an initial state is not a step; a conformance
    # window's first operation is)
    initial = trace["states"][0]["#meta"].get("action") == "Init"
    assert page.count('<g class="event"') == n - initial
    assert f'data-steps="{n}"' in page
    meta = trace["#meta"]
    assert f"<h1>{html.escape(meta['property'])} violated</h1>" in page
    if meta.get("command") not in (None, "", "none"):
        assert html.escape(meta["command"]) in page
    assert ('class="loopband"' in page) == ("loop" in trace)
    assert not FETCH.search(page), "the page must fetch nothing"
    assert "__" + "SVG__" not in page and "__" + "STEPS__" not in page


def test_raft_servers_are_lanes_and_messages_are_arrows():
    trace = traces.load(RAFT)
    lanes = trace_lanes.derive(trace)
    assert lanes.rule == "servers"
    assert lanes.names == ["server 0", "server 1", "server 2"]
    assert lanes.network == ["messages"]
    events, arrows = trace_lanes.layout(trace, lanes)
    # step 2 is RequestVote(0, 1): server 0 sends a RequestVoteRequest to
    # server 1, which consumes it at step 4 (step 3 only updates its term)
    assert (events[1].action, events[1].home) == ("RequestVote", "server 0")
    first = arrows[0]
    assert (first.src, first.dst, first.sent, first.received, first.label) == \
        ("server 0", "server 1", 2, 4, "RequestVoteRequest")
    # every arrow goes forward in time between two server lanes
    assert all(a.received is None or a.received > a.sent for a in arrows)
    assert {a.label for a in arrows} >= {"RequestVoteResponse", "AppendEntriesRequest"}


def test_composition_components_are_lanes_and_links_are_calls():
    trace = traces.load(WRITES)
    lanes = trace_lanes.derive(trace)
    # the request path runs on channels: their contents are the lane "net"
    assert (lanes.rule, lanes.names) == ("components", ["clients", "apiserver", "store", "net"])
    events, arrows = trace_lanes.layout(trace, lanes)
    assert events[0].action == "clients.Send" and events[0].home == "clients"
    serve = next(e for e in events if e.action == "apiserver->store.Serve")
    assert serve.home == "apiserver"
    assert (arrows[0].src, arrows[0].dst, arrows[0].sent, arrows[0].received) == \
        ("apiserver", "store", serve.row, serve.row)


def test_a_single_machine_has_a_lane_per_variable_and_the_lasso_is_marked():
    trace = traces.load(LASSO)
    lanes = trace_lanes.derive(trace)
    assert lanes.rule == "variables" and lanes.names == trace["vars"]
    events, _ = trace_lanes.layout(trace, lanes)
    deliver = next(e for e in events if e.action == "Deliver")
    # Deliver moves a watch event from the apiserver's events into the cache
    assert {"events", "cache"} <= set(deliver.touched)
    page = render(trace, source=LASSO.name)
    assert "states 13..16 repeat forever" in page
    assert "goes back to state 13" in page       # the closing Deliver() step
    assert "the loop begins here" in page


def test_the_changed_parts_are_named():
    trace = traces.load(RAFT)
    s = trace["states"]
    changes = [c.text for v in trace["vars"] for c in diff(v, s[0][v], s[1][v])]
    # Timeout(0): server 0 becomes a candidate in term 1 and votes for itself
    assert "currentTerm[0]: 0 → 1" in changes
    assert "state[0]: Follower → Candidate" in changes
    assert "votedFor[0]: -1 → 0" in changes
    assert "votesGranted[0] + 0" in changes
    assert len(changes) == 5                 # and votesResponded[0] + 0
    # a network is a bag: a message replaced by its answer is one gone, one new
    bag = diff("messages", s[3]["messages"], s[4]["messages"], bag=True)
    assert [c.before is None for c in bag] == [False, True]


def test_z3_trace_renders_with_servers():
    trace = traces.load(Z3)
    assert trace["#meta"]["engine"] == "z3"
    lanes = trace_lanes.derive(trace)
    assert lanes.names == ["server 0", "server 1", "server 2"]
    page = render(trace, source=Z3.name)
    assert "election_safety violated" in page and ">z3<" in page


def conformance_trace(tmp_path) -> Path:
    """A conformance window, written by the runners' own code from a history
    with a stale read (the kind `kubemc conform etcd` writes on a violation)."""
    from kubemc.conformance.history import Operation
    from kubemc.conformance.report.files import write_violation
    from kubemc.conformance.validate.etcd import run_checks
    from kubemc.conformance.validate.etcd_history import EtcdHistory

    key, other = "/kmc/t/k0", "/kmc/t/k1"
    ops = []

    def op(process, f, k, inp, out, call, ret):
        ops.append(Operation(process, f, k, inp, out, call, ret, "ok", len(ops)))

    op(0, "put", key, "a", {"rev": 2}, 10, 11)
    op(1, "put", other, "b", {"rev": 3}, 12, 13)
    op(0, "put", key, "c", {"rev": 4}, 14, 15)
    op(3, "get", key, None, {"rev": 4, "value": "a", "mod_rev": 2, "version": 1,
                             "create_rev": 2}, 20, 21)
    history = EtcdHistory(ops, {"keys": [key, other], "clients": 4, "exclusive": True})
    (result,) = run_checks(history, ["linearizability"])
    (violation,) = result.violations
    files = write_violation(tmp_path / "run", violation,
                            {"seed": 3, "command": "kubemc conform etcd --seed 3"})
    return Path(files["window_itf"])


def test_renders_a_conformance_window(tmp_path):
    path = conformance_trace(tmp_path)
    trace = traces.load(path)
    lanes = trace_lanes.derive(trace)
    assert lanes.rule == "history"
    processes = {f"process {s['#meta']['params'][0]}" for s in trace["states"]}
    assert set(lanes.names) == processes and "process 3" in processes
    events, _ = trace_lanes.layout(trace, lanes)
    # every operation is an event on its process, the first one included
    assert len(events) == len(trace["states"])
    assert all(e.home == f"process {e.params[0]}" and e.touched == [e.home] for e in events)
    out = tmp_path / "window.html"
    assert main(["trace", "view", str(path), "--out", str(out)]) == 0
    page = out.read_text()
    assert "linearizability violated" in page and "kubemc conform etcd --seed 3" in page
    # operations are shown whole, not as a diff of the one before
    assert "<h3>operation</h3>" in page and "<h3>changed" not in page


def test_cli_writes_beside_nothing_and_never_overwrites(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["trace", "view", str(RAFT)]) == 0
    first = default_out(RAFT)
    assert first.name == "raft-leader_completeness-explore-figure8_commit.html"
    assert capsys.readouterr().out.strip() == f"wrote {first}"
    before = first.read_bytes()
    # no --out: the next free name of the series, as kubemc check does for traces
    assert main(["trace", "view", str(RAFT)]) == 0
    assert capsys.readouterr().out.strip() == \
        "wrote raft-leader_completeness-explore-figure8_commit-1.html"
    # --out names a file that exists: refused, the file untouched
    mine = tmp_path / "mine.html"
    mine.write_text("my notes")
    assert main(["trace", "view", str(RAFT), "--out", str(mine)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists" in err and "never overwrites" in err
    assert mine.read_text() == "my notes" and first.read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file is left behind"


@pytest.mark.parametrize("content, says", [
    (None, "no such file"),
    ("{", "not JSON"),
    ('{"a": 1}', "not an ITF trace"),
    ('{"vars": [], "states": []}', "'states' is empty"),
    ('{"vars": ["x"], "states": [{"x": 1.5}]}', "not an integer"),
    ('{"vars": ["x"], "states": [{"x": 1}], "loop": 4}', "'loop'"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, content, says):
    path = tmp_path / "t.itf.json"
    if content is not None:
        path.write_text(content)
    out = tmp_path / "page.html"
    assert main(["trace", "view", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kubemc: ") and err.count("\n") == 1 and says in err
    assert "Traceback" not in err and not out.exists()


def test_out_in_a_missing_directory_is_refused(tmp_path, capsys):
    assert main(["trace", "view", str(RAFT), "--out", str(tmp_path / "no/such/p.html")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_a_trace_from_another_tool_renders():
    """ITF without kubemc's #meta (as Apalache writes it): lanes per variable."""
    trace = {"vars": ["x", "y"], "states": [{"x": 0, "y": {"#set": []}},
                                            {"x": 1, "y": {"#set": [1]}}]}
    page = render(trace, source="apalache.itf.json")
    assert "<h1>trace apalache.itf.json</h1>" in page
    assert "x: 0 → 1" not in page and "<code>x</code> <del>0</del> → <ins>1</ins>" in page


def test_the_template_ships_with_the_package():
    """Non-editable installs read the template with importlib.resources: it
    must be package data."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "trace_view.html" in config["tool"]["setuptools"]["package-data"]["kubemc.checker"]
    assert (ROOT / "checker/trace_view.html").is_file()


# ---------------------------------------------------------------------------
# any well-formed ITF trace renders: random shapes, not only kubemc's own
# ---------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from kubemc.checker import itf  # noqa: E402

_names = st.sampled_from(["src", "dst", "type", "x", "<script>", "a.b", "0"])
_scalars = st.one_of(st.integers(-3, 3), st.booleans(),
                     st.sampled_from(["", "a", "</script><b>", "server 0", "0"]))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.builds(lambda v: {"#tup": v}, st.lists(inner, max_size=3)),
    st.builds(lambda v: {"#set": v}, st.lists(inner, max_size=3)),
    st.builds(lambda v: {"#map": [[k, x] for k, x in v]},
              st.lists(st.tuples(inner, inner), max_size=2)),
    st.dictionaries(_names, inner, max_size=3)), max_leaves=8)


@st.composite
def _traces(draw):
    variables = draw(st.lists(st.sampled_from(
        ["messages", "log", "c.x", "c.y", "d.z", "op", "server", "votes"]),
        min_size=0, max_size=4, unique=True))
    n = draw(st.integers(1, 5))
    states = []
    for k in range(n):
        state = {v: draw(_values) for v in variables}
        state["#meta"] = {"index": k, "action": draw(st.sampled_from(
            ["Init", "Step", "c->d.Call", "c.Local", "put", "->."])),
            "params": draw(st.lists(_values, max_size=2))}
        states.append(state)
    trace = {"vars": variables, "states": states,
             "#meta": {"property": "p", "kind": draw(st.sampled_from(
                 ["invariant", "history", "leads_to"])), "command": "kubemc check",
                 "config": draw(st.dictionaries(st.sampled_from(
                     ["servers", "nodes", "pods", "max_term"]), st.integers(0, 4), max_size=3)),
                 "loop_action": draw(st.sampled_from(
                     [{"action": "stutter", "params": []}, {"action": "Back", "params": [1]}]))}}
    if draw(st.booleans()):
        trace["loop"] = draw(st.integers(0, n - 1))
    return trace


@settings(max_examples=60, derandomize=True, deadline=None,
          suppress_health_check=list(HealthCheck))
@given(_traces())
def test_any_well_formed_trace_renders(trace):
    itf.check_trace(trace, "generated")
    page = render(trace, source="generated.itf.json")
    n = len(trace["states"])
    assert len(re.findall(r'<section class="step" id="step-\d+"', page)) == n
    assert "</script><b>" not in page.split("<script>")[0]   # every text is escaped
    assert not FETCH.search(page)


def test_as_a_user_runs_it(tmp_path):
    """End to end in a process of its own: the template is found as package
    data, the page is written, and a second run refuses to overwrite it."""
    import os
    import subprocess
    import sys

    out = tmp_path / "figure8.html"
    argv = [sys.executable, "-m", "kubemc.checker.cli", "trace", "view", str(RAFT), "--out",
            str(out)]
    first = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=120,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert (first.returncode, first.stdout, first.stderr) == (0, f"wrote {out}\n", "")
    assert out.read_text().startswith("<!DOCTYPE html>")
    again = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=120,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert again.returncode == 2 and again.stdout == ""
    assert again.stderr.startswith("kubemc: --out ") and again.stderr.count("\n") == 1


def _window(rows):
    from kubemc.conformance.history import Operation

    return [Operation(p, f, key, inp, out, 10 * i, 10 * i + 5, status, i)
            for i, (p, f, key, inp, out, status) in enumerate(rows)]


def test_renders_the_cni_and_cri_runners_windows(tmp_path):
    """The CNI and CRI runners write their windows with their own report
    code (other values per state, CRI's first parameter a container id, not
    a process): they open too, one lane per process or per target."""
    from types import SimpleNamespace

    from kubemc.conformance.report import cni, cri

    cni_ops = _window([
        (0, "add", "c1", {"node": 0, "pod": "a", "purpose": "pod"},
         {"result": {"ips": [{"address": "10.1.0.2/24"}]}}, "ok"),
        (1, "add", "c2", {"node": 0, "pod": "b", "purpose": "pod"},
         {"result": {"ips": [{"address": "10.1.0.2/24"}]}}, "ok")])
    cri_ops = _window([
        (0, "RunPodSandbox", "sb1", {"config": {"metadata": {"name": "p"}}}, {"id": "sb1"}, "ok"),
        (0, "CreateContainer", "ct1", {"config": {"metadata": {"name": "c"}}}, {"id": "ct1"}, "ok"),
        (0, "StartContainer", "ct1", {}, {}, "ok"),
        (0, "StopPodSandbox", "sb1", {}, {}, "ok")])
    written = [
        cni.write_violation(tmp_path / "cni", SimpleNamespace(
            check="unique-addresses", message="two pods hold 10.1.0.2", window=cni_ops,
            ops=cni_ops, detail=None), {"command": "kubemc conform cni"}),
        cri.write_violation(tmp_path / "cri", SimpleNamespace(
            check="model", message="a container outlived its sandbox", window=cri_ops,
            ops=cri_ops, detail={}), {"command": "kubemc conform cri --seed 1"})]
    lanes_of = []
    for files in written:
        trace = traces.load(files["window_itf"])
        lanes = trace_lanes.derive(trace)
        events, _ = trace_lanes.layout(trace, lanes)
        assert lanes.rule == "history" and len(events) == len(trace["states"])
        lanes_of.append(lanes.names)
        page = render(trace, source=Path(files["window_itf"]).name)
        assert f'data-steps="{len(trace["states"])}"' in page and not FETCH.search(page)
    assert lanes_of == [["process 0", "process 1"], ["sb1", "ct1"]]


def test_a_step_sits_on_the_lane_its_number_names():
    """Scheduler HA: `Bind(0, 0)` changes the apiserver's objects and both
    replicas' caches, and it is replica 0 that binds."""
    path = ROOT / "traces/scheduler/scheduler-ha-sched_binds_only_by_lease_holder-explore-schedules_without_lease.itf.json"
    trace = traces.load(path)
    lanes = trace_lanes.derive(trace)
    events, _ = trace_lanes.layout(trace, lanes)
    bind = next(e for e in events if e.action == "Bind")
    assert bind.params[0] == 0 and bind.home == "replica-0"
    assert set(bind.touched) == {"server", "replica-0", "replica-1"}

"""Histories: the recorder, the JSONL format, the importers and their errors."""

from __future__ import annotations

import json
import threading

import edn_format
import pytest

from conftest import SHARED_DATA
from kubemc.checker.errors import BadInput
from kubemc.conformance.history import (Event, Operation, Recorder, pair, read_jsonl, read_meta,
                                        write_jsonl)
from kubemc.conformance.importers import (
    EDN, JEPSEN_LOG, JSONL, _from_edn_format, _json_value, detect_format, infer_model, load,
    parse_edn,
)

DATA = SHARED_DATA


def fake_clock():
    t = [0]

    def clock():
        t[0] += 10
        return t[0]
    return clock


# ---------------------------------------------------------------------------
# Recorder and pairing
# ---------------------------------------------------------------------------


def test_recorder_pairs_invocations_with_completions():
    rec = Recorder(clock=fake_clock())
    a = rec.invoke(0, "write", None, 1)
    b = rec.invoke(1, "read", None)
    rec.complete(b, "ok", 1)
    rec.complete(a, "ok", 1)
    c = rec.invoke(0, "cas", None, [1, 2])
    rec.complete(c, "fail", [1, 2])
    rec.invoke(2, "write", None, 3)          # never completes: info
    evs = rec.events()
    assert [e.type for e in evs] == ["invoke", "invoke", "ok", "ok", "invoke", "fail", "invoke"]
    assert [e.index for e in evs] == list(range(7))
    assert all(x.time < y.time for x, y in zip(evs, evs[1:]))
    ops = rec.operations()
    assert ops == [
        Operation(0, "write", None, 1, 1, 10, 40, "ok", 0),
        Operation(1, "read", None, None, 1, 20, 30, "ok", 1),
        Operation(0, "cas", None, [1, 2], [1, 2], 50, 60, "fail", 4),
        Operation(2, "write", None, 3, None, 70, None, "info", 6),
    ]


def test_recorder_refuses_misuse():
    rec = Recorder()
    t = rec.invoke(0, "read", None)
    with pytest.raises(ValueError):
        rec.invoke(0, "read", None)
    with pytest.raises(ValueError):
        rec.complete(t, "done", None)
    rec.complete(t, "info")
    with pytest.raises(ValueError):
        rec.complete(t, "ok", 1)
    rec.invoke(0, "read", None)  # the process may go on after its completion


def test_recorder_is_thread_safe():
    rec = Recorder()

    def client(p):
        for i in range(200):
            tok = rec.invoke(p, "write", None, i)
            rec.complete(tok, "ok", i)

    threads = [threading.Thread(target=client, args=(p,)) for p in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    evs = rec.events()
    assert len(evs) == 1600 and [e.index for e in evs] == list(range(1600))
    assert all(x.time <= y.time for x, y in zip(evs, evs[1:]))
    ops = rec.operations()
    assert len(ops) == 800 and all(op.status == "ok" and op.input == op.output for op in ops)


def test_jsonl_round_trip_is_atomic_and_keeps_meta(tmp_path):
    rec = Recorder(clock=fake_clock(), meta={"model": "etcd-kv", "seed": 7})
    t = rec.invoke(3, "put", "k", "v")
    rec.complete(t, "ok", {"rev": 2})
    t = rec.invoke(4, "txn", "k", {"compare": ["mod_rev", "=", 2], "success": [["put", "w"]],
                                   "failure": [["get"]]})
    rec.complete(t, "info")
    path = tmp_path / "h.jsonl"
    path.write_text("old content\n")
    rec.write_jsonl(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.jsonl"]   # no temp file left
    assert read_jsonl(path) == rec.events()
    assert read_meta(path) == {"model": "etcd-kv", "seed": 7}
    assert pair(read_jsonl(path)) == rec.operations()
    h = load(path)
    assert h.format == JSONL and h.model == "etcd-kv" and list(h.events) == rec.events()


def test_write_jsonl_leaves_the_old_file_if_writing_fails(tmp_path):
    path = tmp_path / "h.jsonl"
    write_jsonl(path, [Event("invoke", 0, "read", None, None, 1, 0)])
    before = path.read_text()
    with pytest.raises(TypeError):
        write_jsonl(path, [Event("invoke", 0, "write", None, object(), 1, 0)])
    assert path.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.jsonl"]


def test_pair_rejects_inconsistent_event_streams():
    inv = Event("invoke", 0, "read", None, None, 1, 0)
    with pytest.raises(BadInput, match="no pending invocation"):
        pair([Event("ok", 0, "read", None, 1, 1, 0)])
    with pytest.raises(BadInput, match="still pending"):
        pair([inv, Event("invoke", 0, "read", None, None, 2, 1)])
    with pytest.raises(BadInput, match="completed write"):
        pair([inv, Event("ok", 0, "write", None, 1, 2, 1)])
    assert pair([inv]) == [Operation(0, "read", None, None, None, 1, None, "info", 0)]


# ---------------------------------------------------------------------------
# Malformed files: one line naming the file and the line
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("text, line, what", [
    ('{"type": "invoke", "process": 0, "f": "read", "time": 1}\nnot json\n', 2, "not valid JSON"),
    ('{"type": "invoke", "process": 0, "time": 1}\n', 1, "lacks the field 'f'"),
    ('{"type": "begin", "process": 0, "f": "read"}\n', 1, "event type"),
    ('{"type": "ok", "process": "x", "f": "read"}\n', 1, "process must be an integer"),
    ('{"type": "ok", "process": 1, "f": "read", "time": "soon"}\n', 1, "time must be"),
    ('{"#meta": {}}\n[1, 2]\n', 2, "expected a JSON object"),
])
def test_malformed_jsonl_names_file_and_line(tmp_path, text, line, what):
    p = tmp_path / "bad.jsonl"
    p.write_text(text)
    with pytest.raises(BadInput) as e:
        load(p)
    msg = str(e.value)
    assert f"{p}:{line}" in msg and what in msg and "\n" not in msg


@pytest.mark.parametrize("text, line", [
    ("INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\t:read\n", 2),
    ("INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\t:read\t[1 2\n", 2),
    ("INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:done\t:read\t1\n", 2),
    ("INFO  jepsen.util - 0\t:invoke\t:read\tnil\n\nsomething else\n", 3),
    ('{:process 0, :type :invoke, :f :get, :key "1", :value nil}\n{:process 0 :type :ok\n', 2),
    ('{:process 0, :type :invoke, :f :get, :key "1", :value nil}\n[1 2]\n', 2),
    ('{:process 0, :type :invoke, :f :get, :key "1", :value nil}\n{:process 0, :f :get}\n', 2),
    ('{:process 0, :type :invoke, :f :get, :value nil}\n{:process 0, :type :ok, :f :get, :value #{1 2}\n', 2),
])
def test_malformed_jepsen_and_edn_name_file_and_line(tmp_path, text, line):
    p = tmp_path / "bad.txt"
    p.write_text(text)
    with pytest.raises(BadInput) as e:
        load(p)
    assert f"{p}:{line}:" in str(e.value) and "\n" not in str(e.value)


def test_unreadable_and_unknown_files_are_bad_input(tmp_path):
    with pytest.raises(BadInput, match="cannot read"):
        load(tmp_path / "missing.jsonl")
    (tmp_path / "empty").write_text("\n\n")
    with pytest.raises(BadInput, match="empty history"):
        load(tmp_path / "empty")
    (tmp_path / "prose").write_text("hello world\n")
    with pytest.raises(BadInput, match="not a history"):
        load(tmp_path / "prose")
    (tmp_path / "binary").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(BadInput, match="UTF-8"):
        load(tmp_path / "binary")


# ---------------------------------------------------------------------------
# Importers
# ---------------------------------------------------------------------------


@pytest.mark.usefixtures("shared_data")
def test_formats_are_detected_by_content():
    assert detect_format(DATA / "jepsen-etcd" / "etcd_000.log") == JEPSEN_LOG
    assert detect_format(DATA / "porcupine-kv" / "c01-ok.txt") == EDN


@pytest.mark.usefixtures("shared_data")
def test_jepsen_log_import():
    h = load(DATA / "jepsen-etcd" / "etcd_000.log")
    assert h.model == "register" and h.format == JEPSEN_LOG
    assert h.events[0] == Event("invoke", 0, "read", None, None, 0, 0)
    assert h.events[18] == Event("invoke", 2, "cas", None, [3, 0], 18, 18)
    ops = h.operations()
    assert {op.status for op in ops} == {"ok", "fail", "info"}
    info = [op for op in ops if op.status == "info"]
    assert all(op.ret is None and op.output is None for op in info)


@pytest.mark.usefixtures("shared_data")
def test_porcupine_edn_import():
    h = load(DATA / "porcupine-kv" / "c10-ok.txt")
    assert h.model == "kv" and h.format == EDN
    assert h.events[0] == Event("invoke", 9, "append", "0", "x 9 0 y", 0, 0)
    assert len(h.operations()) * 2 == len(h.events)


def test_knossos_edn_vector_with_times_and_a_nemesis(tmp_path):
    p = tmp_path / "history.edn"
    p.write_text("""[{:type :invoke, :f :write, :value 1, :process 0, :time 100}
 {:type :info, :f :start, :value nil, :process :nemesis, :time 150}
 {:type :ok, :f :write, :value 1, :process 0, :time 200}
 {:type :invoke, :f :read, :value nil, :process 1, :time 300}
 {:type :ok, :f :read, :value 1, :process 1, :time 400}]""")
    h = load(p)
    assert h.model == "register"
    assert h.operations() == [Operation(0, "write", None, 1, 1, 100, 200, "ok", 0),
                              Operation(1, "read", None, None, 1, 300, 400, "ok", 2)]


def _edn_reference(text):
    return _json_value(_from_edn_format(edn_format.loads(text)))


@pytest.mark.parametrize("text", [
    '{:process 0, :type :invoke, :f :get, :key "7", :value nil}',
    '{:a [1 -2 +3] :b (true false nil) :c {:d "x y"}}',
    r'{:s "quote \" and \\ and \n newline" :k :ns/kw}',
    '[3 0]', 'nil', ':timed-out', '-17',
    '{:f :cas :value [1.5 2]}',               # floats: the reference reader
    '{:v #{1 2} :t #inst "1985-04-12T23:20:50.52Z"}',   # sets and tags: the reference reader
])
def test_fast_edn_reader_agrees_with_edn_format(text):
    assert _json_value(parse_edn(text, "x:1")) == _edn_reference(text)


@pytest.mark.usefixtures("shared_data")
def test_fast_edn_reader_agrees_on_stored_histories():
    files = [DATA / "porcupine-kv" / "c01-ok.txt", DATA / "porcupine-kv" / "c01-bad.txt"]
    for f in files:
        for line in f.read_text().splitlines():
            assert _json_value(parse_edn(line, "x")) == _edn_reference(line)
    values = {line.rsplit("\t", 1)[1] for line in (DATA / "jepsen-etcd" / "etcd_000.log").read_text().splitlines()}
    for v in values:
        assert _json_value(parse_edn(v, "x")) == _edn_reference(v)


def test_model_inference():
    ev = lambda f, v=None, t="invoke": Event(t, 0, f, "k", v, 0, 0)  # noqa: E731
    assert infer_model([ev("read"), ev("cas", [1, 2])]) == "register"
    assert infer_model([ev("get"), ev("append", "x")]) == "kv"
    assert infer_model([ev("get"), ev("put", "x")]) == "kv"
    assert infer_model([ev("get"), ev("put", {"rev": 3}, "ok")]) == "etcd-kv"
    assert infer_model([ev("delete")]) == "etcd-kv"
    assert infer_model([ev("read")], {"model": "kv"}) == "kv"


@pytest.mark.usefixtures("shared_data")
def test_data_directory_is_present():
    # The CI checks shared/ out beside the repository: missing data is a failure there
    # (require_shared_data), a skip saying how to get it elsewhere.
    assert (DATA / "README.md").is_file(), f"missing {DATA}"
    assert len(list((DATA / "jepsen-etcd").glob("*.log"))) == 50
    assert len(list((DATA / "porcupine-kv").glob("*.txt"))) == 4
    json.dumps([e.to_json() for e in load(DATA / "jepsen-etcd" / "etcd_001.log").events])


# ---------------------------------------------------------------------------
# Issue 13's hostile histories: each is one line of bad input (exit 2), never
# a traceback or an exit code that reads as a verdict
# ---------------------------------------------------------------------------

_INV = '{"type": "invoke", "process": 0, "f": "read", "value": null, "time": 1}\n'
_OK = '{"type": "ok", "process": 0, "f": "read", "value": null, "time": 2}\n'
_PUT = ('{"type": "invoke", "process": 0, "f": "put", "key": "k", "value": "v", "time": 1}\n'
        '{"type": "ok", "process": 0, "f": "put", "key": "k", "value": {"rev": "5"}, "time": 2}\n')


@pytest.mark.parametrize("name, text, message", [
    ("meta-list.jsonl", '{"#meta": [1, 2]}\n' + _INV + _OK, "#meta must be a JSON object, not list"),
    ("meta-string.jsonl", '{"#meta": "register"}\n' + _INV, "#meta must be a JSON object, not str"),
    ("meta-model.jsonl", '{"#meta": {"model": 5}}\n' + _INV, "#meta model must be the name"),
    ("rev-string.jsonl", '{"#meta": {"model": "etcd-kv"}}\n' + _PUT,
     "rev in the output of put must be an integer, not '5'"),
    ("deep.jsonl", '{"type": "invoke", "process": 0, "f": "read", "value": ' + "[" * 50000
     + "]" * 50000 + "}\n", "JSON nested too deeply"),
    ("deep-but-parsable.jsonl", _INV.replace("null", "[" * 500 + "]" * 500), "nested deeper than 64"),
    ("deep.edn", "{:process 0, :type :invoke, :f :read, :value " + "[" * 50000 + "]" * 50000 + "}\n",
     "EDN nested too deeply"),
    ("deep.log", "INFO  jepsen.util - 0\t:invoke\t:write\t" + "[" * 50000 + "]" * 50000 + "\n",
     "EDN nested too deeply"),
    ("bigint.jsonl", _INV.replace('"time": 1', '"time": ' + "9" * 5000), "not valid JSON (Exceeds"),
    ("bigint.edn", "{:process 0, :type :invoke, :f :write, :value " + "9" * 5000 + "}\n",
     "an integer in this EDN is too long"),
    ("bigint.log", "INFO  jepsen.util - 0\t:invoke\t:write\t" + "9" * 5000 + "\n",
     "an integer in this EDN is too long"),
    ("nan.jsonl", _INV.replace("null", "NaN"), "NaN is not a JSON number"),
])
def test_hostile_histories_are_one_line_of_bad_input(tmp_path, capsys, name, text, message):
    from test_fuzz_cli import run_cli

    p = tmp_path / name
    p.write_text(text)
    _, _, err = run_cli(["check-history", str(p)], capsys, {2})
    assert message in err


def test_random_bytes_are_bad_input(tmp_path, capsys):
    from test_fuzz_cli import run_cli

    p = tmp_path / "random"
    p.write_bytes(bytes(range(256)) * 8)
    assert "not UTF-8 text" in run_cli(["check-history", str(p)], capsys, {2})[2]


def test_jepsen_log_with_runs_of_spaces_is_read(tmp_path):
    p = tmp_path / "spaces.log"
    p.write_text("INFO  jepsen.util - 0  :invoke   :write 1\n"
                 "INFO  jepsen.util - 0\t :ok :write\t1\n"
                 "INFO jepsen.util  -  1 :invoke :read nil\n"
                 "2017-01-01 INFO  jepsen.util - 1 :ok :read    1   \n")
    h = load(p)
    assert h.format == JEPSEN_LOG and [e.value for e in h.events] == [1, 1, None, 1]
    assert [(e.process, e.type, e.f) for e in h.events] == [
        (0, "invoke", "write"), (0, "ok", "write"), (1, "invoke", "read"), (1, "ok", "read")]

"""Fuzzing every history parser through ``kubemc check-history``: kubemc JSON
lines, Jepsen operation logs, porcupine's EDN lines and Knossos EDN vectors.

Whatever the bytes, a run ends within a time limit, with an exit code of the
table (``checker.errors``: 0, 1, 2 or 4 here — never 70, never a crash read as
a violation), at most one line on stderr and never a traceback. The inputs
are random bytes and mutations of valid histories (the shared data and
histories written here), including the hostile values of issue 13: deep
nesting, integers thousands of digits long, non-object ``#meta``, revisions
that are strings. And one property of the Jepsen reader: the whitespace
between a log line's fields may be any run of spaces and tabs (as Jepsen's and
porcupine's readers take it) without changing the verdict.
"""

from __future__ import annotations

import itertools
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from conftest import SHARED_DATA
from test_fuzz_cli import FUZZ, run_cli

from kubemc.checker.errors import BAD_INPUT, HOLDS, UNDECIDED, VIOLATED
from kubemc.conformance.history import Event, write_jsonl

DATA = SHARED_DATA
ALLOWED = {HOLDS, VIOLATED, BAD_INPUT, UNDECIDED}
#: each run's search budget; the wall-clock limit is run_cli's
BUDGET = ["--budget", "3", "--max-memory", "512"]


def _jsonl(events, meta) -> str:
    lines = [json.dumps({"#meta": meta})] if meta else []
    lines += [json.dumps(e.to_json()) for e in events]
    return "\n".join(lines) + "\n"


def _samples() -> dict[str, str]:
    """Small valid histories of every format (heads of the shared data, and JSONL)."""
    head = lambda p, n: "".join(p.read_text().splitlines(keepends=True)[:n])  # noqa: E731
    register = [Event("invoke", 0, "write", None, 1, 1, 0), Event("ok", 0, "write", None, 1, 2, 1),
                Event("invoke", 1, "cas", None, [1, 2], 3, 2), Event("invoke", 0, "read", None, None, 4, 3),
                Event("ok", 0, "read", None, 2, 5, 4), Event("info", 1, "cas", None, None, 6, 5)]
    etcd = [Event("invoke", 0, "put", "k", "v", 1, 0), Event("ok", 0, "put", "k", {"rev": 2}, 2, 1),
            Event("invoke", 0, "get", "k", None, 3, 2),
            Event("ok", 0, "get", "k", {"rev": 2, "value": "v", "mod_rev": 2, "version": 1,
                                        "create_rev": 2}, 4, 3)]
    stored = {} if not (DATA / "README.md").is_file() else {   # else the tests skip
        "etcd.log": head(DATA / "jepsen-etcd" / "etcd_000.log", 40),
        "kv.txt": head(DATA / "porcupine-kv" / "c01-ok.txt", 40),
    }
    return {
        **stored,
        "register.jsonl": _jsonl(register, {"model": "register"}),
        "etcd.jsonl": _jsonl(etcd, {"model": "etcd-kv"}),
        "knossos.edn": "[{:process 0, :type :invoke, :f :write, :value 1, :time 1}\n"
                       " {:process 0, :type :ok, :f :write, :value 1, :time 2}\n"
                       " {:process :nemesis, :type :info, :f :start, :value nil}\n"
                       " {:process 1, :type :invoke, :f :read, :value nil, :time 3}\n"
                       " {:process 1, :type :ok, :f :read, :value 1, :time 4}]\n",
    }


SAMPLES = _samples()
HOSTILE = ["[" * 5000 + "]" * 5000, "9" * 5000, "-" + "7" * 4400, "NaN", "Infinity", "1e999",
           '"5"', "[]", "{}", "null", "nil", "true", "-1", '"#meta"', '{"#meta": [1]}',
           '{"#meta": "x"}', "{:a", "#{1 2}", "\\u0000", "\x00", "\ud800"[:0] + "\u2028", ":", "\t"]


@st.composite
def mutated(draw):
    """A sample history with a few edits: cuts, insertions, hostile tokens, shuffled lines."""
    name = draw(st.sampled_from(sorted(SAMPLES)))
    text = SAMPLES[name]
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["cut", "insert", "token", "lines", "hostile-line"]))
        i = draw(st.integers(0, len(text)))
        if kind == "cut":
            text = text[:i] + text[i + draw(st.integers(1, 40)):]
        elif kind == "insert":
            text = text[:i] + draw(st.text(max_size=12)) + text[i:]
        elif kind == "token":
            # replace one number, keyword, string or nil with something hostile
            tokens = list(re.finditer(r'-?\d+|:[\w-]+|"[^"\n]*"|nil|null', text))
            if tokens:
                m = draw(st.sampled_from(tokens))
                text = text[:m.start()] + draw(st.sampled_from(HOSTILE)) + text[m.end():]
        elif kind == "lines":
            lines = text.splitlines(keepends=True)
            text = "".join(draw(st.permutations(lines))[:draw(st.integers(0, len(lines)))])
        else:
            lines = text.splitlines(keepends=True)
            j = draw(st.integers(0, len(lines)))
            lines.insert(j, draw(st.sampled_from(HOSTILE)) + "\n")
            text = "".join(lines)
    return name, text


@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes_are_bad_input_never_a_crash(tmp_path_factory, capsys, data):
    p = tmp_path_factory.mktemp("fuzz") / "history"
    p.write_bytes(data)
    run_cli(["check-history", str(p), *BUDGET], capsys, ALLOWED)


@pytest.mark.usefixtures("shared_data")
@FUZZ
@given(mutated())
def test_mutated_histories_end_with_a_verdict_or_one_line(tmp_path_factory, capsys, sample):
    name, text = sample
    p = tmp_path_factory.mktemp("fuzz") / name
    p.write_text(text, encoding="utf-8", errors="surrogatepass")
    run_cli(["check-history", str(p), *BUDGET], capsys, ALLOWED)
    run_cli(["check-history", str(p), "--json", *BUDGET], capsys, ALLOWED)


@pytest.mark.usefixtures("shared_data")
@pytest.mark.parametrize("name", ["etcd_000.log", "etcd_002.log"])
@settings(FUZZ, max_examples=8)
@given(gaps=st.lists(st.text(alphabet=" \t", min_size=1, max_size=4), min_size=1, max_size=7))
def test_jepsen_fields_may_be_separated_by_any_whitespace(tmp_path_factory, capsys, name, gaps):
    original = (DATA / "jepsen-etcd" / name).read_text()
    cycle = itertools.cycle(gaps)
    respaced = re.sub(r"\t", lambda m: next(cycle), original)
    d = tmp_path_factory.mktemp("ws")
    (d / "a.log").write_text(original)
    (d / "b.log").write_text(respaced)
    want, _, _ = run_cli(["check-history", str(d / "a.log")], capsys, {HOLDS, VIOLATED})
    assert run_cli(["check-history", str(d / "b.log")], capsys, {want})[0] == want


@pytest.mark.usefixtures("shared_data")
def test_the_jsonl_sample_is_valid_to_begin_with(tmp_path, capsys):
    """The mutations start from histories that are read (else the fuzzing proves little)."""
    for name, text in SAMPLES.items():
        p = tmp_path / name
        p.write_text(text)
        code, out, _ = run_cli(["check-history", str(p)], capsys, {HOLDS, VIOLATED})
        assert "linearizable" in out
    write_jsonl(tmp_path / "w.jsonl", [Event("invoke", 0, "read", None, None, 1, 0)])
    assert run_cli(["check-history", str(tmp_path / "w.jsonl")], capsys, {HOLDS})[0] == HOLDS

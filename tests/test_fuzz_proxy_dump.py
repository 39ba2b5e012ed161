"""Fuzzing what ``kubemc conform proxy`` reads: an ``iptables-save`` dump
and the kubectl JSON. Whatever the input, a run ends with an exit code of
the table — 2 with one line ``kubemc: FILE:LINE: what`` for a malformed
dump — and never a traceback. Mutations start from the real dump in
``tests/data/proxy`` (house style: tests/test_fuzz_cli.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubemc.checker.cli import main
from kubemc.checker.errors import BadInput
from kubemc.conformance.proxy.dump import parse

DATA = Path(__file__).parent / "data" / "proxy"
GOOD = (DATA / "good.iptables-save").read_text().splitlines()
FUZZ = settings(max_examples=25, derandomize=True, deadline=None,
                suppress_health_check=list(HealthCheck))
WORDS = ["-A", "-j", "-m", "!", "-d", "-s", "-p", "tcp", "udp", "--dport", "80", "statistic",
         "--mode", "random", "--probability", "0.5", "DNAT", "--to-destination", "10.0.0.1:80",
         "MARK", "--set-xmark", "0x4000/0x4000", "mark", "--mark", "KUBE-SERVICES", "RETURN",
         "REJECT", "COMMIT", "*nat", ":X", "-", "[0:0]", '"', "comment", "--comment", "1.5",
         "10.96.0.0/33", "addrtype", "--dst-type", "LOCAL", "recent", "--rcheck", "--name"]


def run(capsys, argv, allowed):
    code = main(argv)
    out, err = capsys.readouterr()
    assert code in allowed, (code, err)
    assert "Traceback" not in out + err
    if code == 2:
        assert err.startswith("kubemc: ") and err.count("\n") == 1, err
    return code, err


@FUZZ
@given(data=st.binary(max_size=3000))
def test_random_bytes_as_a_dump(tmp_path_factory, capsys, data):
    path = tmp_path_factory.mktemp("d") / "dump"
    path.write_bytes(data)
    run(capsys, ["conform", "proxy", "--iptables-save", str(path), "--objects",
                 str(DATA / "objects.json"), "--cluster-cidr", "10.244.0.0/16"], {0, 1, 2})


@FUZZ
@given(line=st.integers(0, len(GOOD) - 1),
       edit=st.lists(st.sampled_from(WORDS) | st.text(max_size=6), min_size=0, max_size=6),
       mode=st.sampled_from(["replace", "insert", "append-words", "drop"]))
def test_mutated_real_dump(tmp_path_factory, capsys, line, edit, mode):
    lines = list(GOOD)
    if mode == "replace":
        lines[line] = " ".join(edit)
    elif mode == "insert":
        lines.insert(line, " ".join(edit))
    elif mode == "append-words":
        lines[line] = lines[line] + " " + " ".join(edit)
    else:
        del lines[line]
    text = "\n".join(lines) + "\n"
    try:
        parse(text, "dump")
    except BadInput as exc:
        # a malformed dump names the file and a line of it
        where = str(exc).split(":")
        assert where[0] == "dump" and where[1].isdigit() and 1 <= int(where[1]) <= len(lines) + 1
    path = tmp_path_factory.mktemp("m") / "dump"
    path.write_text(text)
    run(capsys, ["conform", "proxy", "--iptables-save", str(path), "--objects",
                 str(DATA / "objects.json"), "--cluster-cidr", "10.244.0.0/16",
                 "--out", str(tmp_path_factory.mktemp("o") / "out")], {0, 1, 2})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 70000) | st.text(max_size=12)
    | st.sampled_from(["10.96.0.1", "None", "Service", "EndpointSlice", "TCP", "IPv4"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["kind", "items", "metadata", "spec", "ports", "endpoints", "name",
                         "namespace", "clusterIP", "port", "protocol", "addresses",
                         "conditions", "labels", "type", "nodePort"]), inner, max_size=5),
    max_leaves=30)


@FUZZ
@given(doc=json_values, path=st.lists(st.sampled_from(["items", 0, 1, "spec", "ports", 0,
                                                       "endpoints", "metadata"]), max_size=4))
def test_mutated_objects(tmp_path_factory, capsys, doc, path):
    real = json.loads((DATA / "objects.json").read_text())
    node = real
    for key in path[:-1]:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            break
    try:
        node[path[-1]] = doc if path else None
    except (KeyError, IndexError, TypeError):
        real = doc
    obj = tmp_path_factory.mktemp("j") / "objects.json"
    obj.write_text(json.dumps(real))
    run(capsys, ["conform", "proxy", "--iptables-save", str(DATA / "good.iptables-save"),
                 "--objects", str(obj), "--cluster-cidr", "10.244.0.0/16",
                 "--out", str(tmp_path_factory.mktemp("o") / "out")], {0, 1, 2})

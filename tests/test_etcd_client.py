"""The pieces of ``kubemc conform etcd`` that need no etcd: the gateway
encoding, argument checking and the exit codes of bad input / missing
environment.
"""

from __future__ import annotations

import json

import pytest
import requests

from kubemc.checker.errors import BadInput, MissingEnvironment
from kubemc.conformance.failpoint.etcd import parse_faults
from kubemc.conformance.adapters.etcd import cluster as etcd_target
from kubemc.conformance.adapters.etcd import cli as etcd_cli
from kubemc.conformance.adapters.etcd.cluster import parse_endpoints
from kubemc.conformance.adapters.etcd.client import (
    KV,
    EtcdError,
    WatchResponse,
    _error,
    _never_sent,
    b64,
    prefix_end,
    unb64,
)


def test_base64_round_trip_and_prefix_end():
    assert unb64(b64("/kmc/é/k1")) == "/kmc/é/k1"
    assert unb64(None) == "" and unb64("") == ""
    assert prefix_end("/kmc/ab/") == "/kmc/ab0"
    assert prefix_end("a") == "b"


def test_gateway_defaults_are_filled_in():
    # the gateway leaves out fields at their default: version 0, type PUT, false
    kv = KV.parse({"key": b64("k"), "mod_revision": "7"})
    assert kv == KV("k", "", 0, 7, 0)
    created = WatchResponse.parse({"header": {"revision": "6"}, "created": True})
    assert created.created and not created.progress_notify and created.revision == 6
    progress = WatchResponse.parse({"header": {"revision": "9"}})
    assert progress.progress_notify and progress.revision == 9
    events = WatchResponse.parse({"header": {"revision": "9"}, "events": [
        {"kv": {"key": b64("a"), "mod_revision": "8", "create_revision": "8", "version": "1",
                "value": b64("x")}},
        {"type": "DELETE", "kv": {"key": b64("b"), "mod_revision": "9"}}]})
    assert [(e.type, e.kv.key, e.revision) for e in events.events] == [("put", "a", 8), ("delete", "b", 9)]
    assert not events.progress_notify
    cancel = WatchResponse.parse({"header": {}, "canceled": True, "compact_revision": "3"})
    assert cancel.canceled and cancel.compact_revision == 3 and not cancel.progress_notify


def test_errors_are_classified():
    r = requests.Response()
    r.status_code = 400
    r._content = json.dumps({"error": "etcdserver: mvcc: required revision has been compacted",
                             "message": "etcdserver: mvcc: required revision has been compacted",
                             "code": 11}).encode()
    e = _error(r)
    assert isinstance(e, EtcdError) and e.compacted and not e.future_revision and e.code == 11
    r._content = b"not json"
    assert _error(r).message == "not json"
    refused = requests.ConnectionError("HTTPConnectionPool: Max retries exceeded (Caused by "
                                       "NewConnectionError('Failed to establish a new connection: "
                                       "[Errno 111] Connection refused'))")
    assert _never_sent(refused)
    assert _never_sent(requests.ConnectTimeout("x"))
    assert not _never_sent(requests.ReadTimeout("x"))
    assert not _never_sent(requests.ConnectionError("Connection aborted: RemoteDisconnected"))


def test_endpoint_and_fault_parsing():
    assert parse_endpoints("http://127.0.0.1:2379, http://10.0.0.1:2379/") == [
        "http://127.0.0.1:2379", "http://10.0.0.1:2379"]
    for bad in ("", "127.0.0.1:2379", "http://", "ftp://x:1", "https://x:1"):
        with pytest.raises(BadInput):
            parse_endpoints(bad)
    assert parse_faults("none") == ()
    assert parse_faults("kill,pause,kill") == ("kill", "pause")
    for bad in ("", "kill,boom", "none,kill"):
        with pytest.raises(BadInput):
            parse_faults(bad)


@pytest.mark.parametrize("argv,needle", [
    (["--time-limit", "0"], "--time-limit"),
    (["--time-limit", "abc"], "--time-limit"),
    (["--clients", "0"], "--clients"),
    (["--rate", "-1"], "--rate"),
    (["--seed", "x"], "--seed"),
    (["--nemesis", "explode"], "unknown fault"),
    (["--endpoints", "localhost"], "not a URL"),
    (["--endpoints", "http://127.0.0.1:2379", "--nemesis", "kill"], "--nemesis none"),
    (["--bogus"], "unrecognized"),
    (["--junit", "/nonexistent-dir/j.xml", "--endpoints", "http://127.0.0.1:2379"], "does not exist"),
])
def test_bad_input_is_one_line_and_exit_2(argv, needle, capsys):
    assert etcd_cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and "Traceback" not in err


def test_missing_etcd_is_exit_3_with_the_fix(monkeypatch, capsys):
    monkeypatch.setattr(etcd_target.shutil, "which", lambda name: None)
    assert etcd_cli.main(["--time-limit", "1"]) == 3
    err = capsys.readouterr().err.strip()
    assert "apt-get install etcd-server" in err and "\n" not in err


def test_not_root_is_exit_3(monkeypatch, capsys):
    monkeypatch.setattr(etcd_target.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(etcd_target.os, "geteuid", lambda: 1000)
    assert etcd_cli.main(["--time-limit", "1"]) == 3
    assert "root" in capsys.readouterr().err


def test_unreachable_endpoint_is_exit_3(capsys):
    # port 1 on loopback: nothing listens there
    assert etcd_cli.main(["--endpoints", "http://127.0.0.1:1", "--time-limit", "1"]) == 3
    assert "no etcd answers" in capsys.readouterr().err


def test_require_local_environment_messages(monkeypatch):
    monkeypatch.setattr(etcd_target.shutil, "which", lambda name: None if name == "etcd" else "/x")
    with pytest.raises(MissingEnvironment, match="etcd-server"):
        etcd_target.require_local_environment()
    monkeypatch.setattr(etcd_target.shutil, "which", lambda name: None if name == "iptables" else "/x")
    monkeypatch.setattr(etcd_target.os, "geteuid", lambda: 0)
    with pytest.raises(MissingEnvironment, match="apt-get install iptables"):
        etcd_target.require_local_environment(need_iptables=True)
    etcd_target.require_local_environment(need_iptables=False)

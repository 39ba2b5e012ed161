"""A conformance run cannot pass by doing nothing.

* an endpoint that answers garbage: the run fails clearly — before the run
  when even etcd's status call gets garbage (exit 3), by the
  ``availability`` check when only the KV answers are garbage (exit 1) —
  with no crashed client and watchers that back off;
* an etcd killed in the middle of the run fails ``availability`` (it never
  recovered), while the same run with etcd left alone passes it.

The garbage server is a tiny HTTP server of the test's own on loopback. The
killed etcd is one real member on loopback ports (the ``etcd`` binary is
needed: skipped without it, a failure under ``CI=true``).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import require

from kubemc.conformance.adapters.etcd import cli as etcd_cli
from kubemc.conformance.adapters.etcd.client import EtcdClient
from kubemc.conformance.adapters.etcd.suite import SuiteOptions, run_suite

STATUS_OK = {"header": {"member_id": "1", "revision": "5", "raft_term": "2"}, "leader": "1"}


class Garbage(BaseHTTPRequestHandler):
    """Answers 200 with JSON that is not what etcd sends (``kv`` mode: only
    the status call is answered as etcd would)."""

    mode = "all"

    def do_POST(self):  # noqa: N802 - the http.server name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/v3/maintenance/status" and self.mode == "kv":
            body = json.dumps(STATUS_OK).encode()
        elif self.path == "/v3/watch":
            body = b'{"result": {"header": "nonsense", "events": 7}}\n'
        else:
            body = b'{"header": {"revision": "not a number"}, "kvs": "nope"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def garbage_server():
    servers = []

    def start(mode):
        handler = type("Handler", (Garbage,), {"mode": mode})
        srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def test_an_endpoint_answering_garbage_is_refused_before_the_run(garbage_server, capsys, tmp_path):
    url = garbage_server("all")
    code = etcd_cli.main(["--endpoints", url, "--time-limit", "2", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 3, err
    assert "answers, but not as etcd" in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err and "PASS" not in err


def test_kv_answers_of_garbage_fail_availability_without_a_crash(garbage_server, capsys, tmp_path):
    url = garbage_server("kv")
    code = etcd_cli.main(["--endpoints", url, "--time-limit", "2", "--out", str(tmp_path / "o"),
                          "--json"])
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert code == 1 and not doc["passed"], err
    assert "availability" in doc["failed_checks"]
    assert doc["ok"] == 0 and doc["operations"] > 0
    assert not any("crashed" in p for p in doc["problems"]), doc["problems"]
    availability = next(c for c in doc["checks"] if c["name"] == "availability")
    assert "0 of" in availability["violations"][0]["message"]
    # watchers back off: a handful of attempts per second, not thousands
    assert 0 < doc["watch_failures"] < 200, doc["watch_failures"]
    assert (tmp_path / "o" / "history.jsonl").is_file()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def single_etcd():
    etcd = shutil.which("etcd")
    require(etcd is not None, "the etcd binary", "apt-get install etcd-server")
    data = tempfile.mkdtemp(prefix="kmc-test-etcd-")
    client, peer = _free_port(), _free_port()
    url = f"http://127.0.0.1:{client}"
    proc = subprocess.Popen(
        [etcd, "--name", "solo", "--data-dir", f"{data}/data",
         "--listen-client-urls", url, "--advertise-client-urls", url,
         "--listen-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-cluster", f"solo=http://127.0.0.1:{peer}",
         "--experimental-watch-progress-notify-interval", "1s"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        c = EtcdClient(url, timeout=1.0)
        deadline = time.monotonic() + 30
        while not c.healthy():
            assert proc.poll() is None and time.monotonic() < deadline, "etcd did not start"
            time.sleep(0.1)
        c.close()
        yield url, proc
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(data, ignore_errors=True)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kill", [False, True])
def test_an_etcd_killed_mid_run_fails_availability(single_etcd, kill, tmp_path):
    url, proc = single_etcd
    if kill:
        threading.Timer(2.0, proc.kill).start()
    r = run_suite(SuiteOptions(endpoints=[url], time_limit=4, nemesis=(), progress=False,
                               recovery_seconds=2.0, out=str(tmp_path / "out")))
    if not kill:
        assert r.passed, r.failed_checks
        assert r.ok > 100
        return
    assert not r.passed and "availability" in r.failed_checks, r.failed_checks
    assert r.ok > 0, "etcd served nothing before it was killed"
    message = next(v.message for v in r.violations if v.check == "availability")
    assert "did not recover" in message

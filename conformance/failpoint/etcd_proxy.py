"""Known-bad etcd targets: an HTTP proxy in front of one member's gateway
that breaks one guarantee on purpose, to show that each check has teeth.

Modes (:data:`MODES`), and the check that must catch each:

``stale-read``            answers a range from a cache up to ``stale_seconds``
                          old (a follower serving reads without ReadIndex)
                          → ``linearizability``
``drop-compare``          strips a txn's compares, so it always takes the
                          success branch (an optimistic put that never fails)
                          → ``no-lost-update``
``drop-watch-events``     drops some events from watch responses
                          → ``watch-reliable``
``reorder-watch-events``  swaps some watch responses with the next one
                          → ``watch-ordered``

The proxy listens on 127.0.0.1 (an ephemeral port), forwards to one member
over a kept-alive session per handler thread, and streams watch responses
chunk by chunk. It is a test fixture, not a product: no TLS, no auth.
"""

from __future__ import annotations

import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from kubemc.conformance.adapters.etcd.client import new_session

MODES = ("stale-read", "drop-compare", "drop-watch-events", "reorder-watch-events")
#: the check each mode must trip
EXPECTED_CHECK = {"stale-read": "linearizability", "drop-compare": "no-lost-update",
                  "drop-watch-events": "watch-reliable", "reorder-watch-events": "watch-ordered"}


class FaultyProxy:
    def __init__(self, upstream: str, mode: str, seed: int = 0, stale_seconds: float = 2.0,
                 drop_probability: float = 0.2, reorder_probability: float = 0.3):
        if mode not in MODES:
            raise ValueError(f"unknown faulty proxy mode {mode!r} (known: {', '.join(MODES)})")
        self.upstream = upstream.rstrip("/")
        self.mode = mode
        self.stale_seconds = stale_seconds
        self.drop_p, self.reorder_p = drop_probability, reorder_probability
        self.rng = random.Random(f"{seed}/proxy")
        self.rng_lock = threading.Lock()
        self.cache: dict[bytes, tuple[float, int, bytes]] = {}
        self.cache_lock = threading.Lock()
        self.local = threading.local()
        self.tampered = 0
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> str:
        proxy = self

        class Handler(_Handler):
            pass

        Handler.proxy = proxy
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                       name="kmc-faulty-proxy", daemon=True)
        self.thread.start()
        return self.url

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    # --- helpers ------------------------------------------------------------------------

    def session(self) -> requests.Session:
        s = getattr(self.local, "session", None)
        if s is None:
            s = self.local.session = new_session()
        return s

    def chance(self, p: float) -> bool:
        with self.rng_lock:
            return self.rng.random() < p


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy: FaultyProxy

    def log_message(self, fmt, *args):  # quiet
        pass

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _reply(self, status: int, body: bytes, content_type="application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._forward(b"", method="GET")

    def do_POST(self):
        body = self._body()
        p = self.proxy
        if self.path.startswith("/v3/watch"):
            return self._watch(body)
        if p.mode == "stale-read" and self.path == "/v3/kv/range":
            try:
                revision = json.loads(body or b"{}").get("revision")
            except ValueError:
                revision = None
            if not revision:
                now = time.monotonic()
                with p.cache_lock:
                    hit = p.cache.get(body)
                if hit is not None and now - hit[0] < p.stale_seconds:
                    p.tampered += 1
                    return self._reply(hit[1], hit[2])
                status, data = self._forward(body, send=False)
                if status == 200:
                    with p.cache_lock:
                        p.cache[body] = (now, status, data)
                return self._reply(status, data)
        if p.mode == "drop-compare" and self.path == "/v3/kv/txn":
            try:
                req = json.loads(body)
                if req.get("compare"):
                    req["compare"] = []
                    body = json.dumps(req).encode()
                    p.tampered += 1
            except ValueError:
                pass
        self._forward(body)

    def _forward(self, body: bytes, method="POST", send=True):
        p = self.proxy
        try:
            r = p.session().request(method, p.upstream + self.path, data=body or None,
                                    headers={"Content-Type": "application/json"}, timeout=(1.0, 10.0))
            status, data = r.status_code, r.content
        except requests.RequestException as exc:
            status, data = 502, json.dumps({"error": str(exc), "message": str(exc), "code": 14}).encode()
        if send:
            self._reply(status, data)
        return status, data

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _watch(self, body: bytes) -> None:
        p = self.proxy
        sess = new_session()
        try:
            up = sess.post(p.upstream + self.path, data=body, stream=True, timeout=(1.0, 30.0))
        except requests.RequestException as exc:
            sess.close()
            return self._reply(502, json.dumps({"error": str(exc), "code": 14}).encode())
        held: bytes | None = None
        try:
            self.send_response(up.status_code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for line in up.iter_lines(chunk_size=65536):
                if not line:
                    continue
                out = line
                try:
                    msg = json.loads(line)
                    events = msg.get("result", {}).get("events") or []
                except ValueError:
                    events = []
                if events and p.mode == "drop-watch-events":
                    kept = [e for e in events if not p.chance(p.drop_p)]
                    if len(kept) != len(events):
                        p.tampered += 1
                        if not kept:
                            continue
                        msg["result"]["events"] = kept
                        out = json.dumps(msg).encode()
                if events and p.mode == "reorder-watch-events":
                    if held is None and p.chance(p.reorder_p):
                        held = out          # send it after the next response with events
                        continue
                    if held is not None:
                        self._chunk(out + b"\n")
                        out, held = held, None
                        p.tampered += 1
                self._chunk(out + b"\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (OSError, requests.RequestException):
            pass
        finally:
            up.close()
            sess.close()
            self.close_connection = True

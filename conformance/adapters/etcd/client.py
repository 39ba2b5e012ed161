"""A small client of etcd's v3 API through its JSON gRPC gateway (HTTP/1.1).

Why the gateway and not gRPC: it needs nothing but ``requests``, and every
etcd since 3.3 serves it on the client port (``/v3/kv/range`` …). Keys and
values travel base64-encoded; int64 fields come back as JSON strings; fields
holding their default value (0, false, PUT) are left out by the gateway's
marshaller, so every accessor here supplies the default.

One :class:`EtcdClient` per thread: it owns a ``requests.Session`` and so a
kept-alive connection to its endpoint (a fresh TCP connection per request
costs more than the request). Nothing here retries: the caller decides what a
failure means (a write that timed out may still have been applied).

Errors:

* :class:`EtcdError` — etcd answered with a gRPC error (``code``, ``message``);
  :meth:`EtcdError.compacted` / :meth:`EtcdError.future_revision` name the two
  that the checkers care about;
* :class:`Unavailable` — the request was never sent (connection refused, or
  connect timeout): it certainly had no effect;
* :class:`Indeterminate` — sent, but no answer (read timeout, connection reset):
  a write may or may not have taken effect;
* :class:`Malformed` — an :class:`Indeterminate` whose answer came but is not
  what etcd's gateway sends (not JSON, or fields missing or of the wrong
  type): whatever answers is not etcd, and a write's outcome is unknown.
  Every accessor parses inside :func:`_parsing`, so a garbage answer is this
  error, never a ``KeyError`` or ``ValueError`` that kills a client thread.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
from collections.abc import Iterator

import attrs
import requests

#: gRPC status codes that appear in etcd's answers.
OUT_OF_RANGE = 11
COMPACTED_MESSAGE = "mvcc: required revision has been compacted"
FUTURE_REV_MESSAGE = "mvcc: required revision is a future revision"


class ClientError(Exception):
    """Base of everything this client raises."""


class EtcdError(ClientError):
    """etcd answered, with an error status."""

    def __init__(self, code: int, message: str, http_status: int):
        super().__init__(f"{message} (grpc code {code}, http {http_status})")
        self.code, self.message, self.http_status = code, message, http_status

    @property
    def compacted(self) -> bool:
        return COMPACTED_MESSAGE in self.message

    @property
    def future_revision(self) -> bool:
        return FUTURE_REV_MESSAGE in self.message


class Unavailable(ClientError):
    """The request never reached etcd (refused / connect timeout): no effect."""


class Indeterminate(ClientError):
    """The request may have reached etcd, and no answer came back."""


class Malformed(Indeterminate):
    """An answer came, but not one etcd sends."""


@contextlib.contextmanager
def _parsing(endpoint: str, what: str, answer):
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise Malformed(f"{endpoint}: {what}: not an etcd answer ({type(exc).__name__}: "
                        f"{str(exc)[:60]}): {json.dumps(answer, default=str)[:80]}") from None


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def unb64(s: str | None) -> str:
    return base64.b64decode(s).decode() if s else ""


def prefix_end(prefix: str) -> str:
    """The ``range_end`` that makes [prefix, end) cover every key with the prefix."""
    b = bytearray(prefix.encode())
    while b:
        if b[-1] < 0xFF:
            b[-1] += 1
            return bytes(b).decode("latin-1")
        b.pop()
    return "\0"


@attrs.frozen(slots=True)
class KV:
    key: str
    value: str
    create_revision: int
    mod_revision: int
    version: int

    @classmethod
    def parse(cls, d: dict) -> KV:
        return cls(unb64(d.get("key")), unb64(d.get("value")), int(d.get("create_revision", 0)),
                   int(d.get("mod_revision", 0)), int(d.get("version", 0)))

    def to_json(self) -> dict:
        return {"key": self.key, "value": self.value, "create_revision": self.create_revision,
                "mod_revision": self.mod_revision, "version": self.version}


@attrs.frozen(slots=True)
class Event:
    """One watch event: ``type`` is "put" or "delete"; for a delete, ``kv``
    carries the key and the deletion's ``mod_revision``."""

    type: str
    kv: KV

    @property
    def revision(self) -> int:
        return self.kv.mod_revision

    def to_json(self) -> dict:
        return {"type": self.type, "key": self.kv.key, "value": self.kv.value,
                "mod_revision": self.kv.mod_revision, "create_revision": self.kv.create_revision,
                "version": self.kv.version}


@attrs.frozen(slots=True)
class WatchResponse:
    revision: int             # header.revision
    watch_id: int
    created: bool
    canceled: bool
    compact_revision: int
    cancel_reason: str
    events: tuple             # of Event

    @property
    def progress_notify(self) -> bool:
        """A progress notification: no events, not a create / cancel answer."""
        return not self.events and not self.created and not self.canceled

    @classmethod
    def parse(cls, d: dict) -> WatchResponse:
        events = tuple(Event("delete" if e.get("type") == "DELETE" else "put", KV.parse(e.get("kv", {})))
                       for e in d.get("events", ()))
        return cls(int(d.get("header", {}).get("revision", 0)), int(d.get("watch_id", 0)),
                   bool(d.get("created")), bool(d.get("canceled")),
                   int(d.get("compact_revision", 0)), d.get("cancel_reason", ""), events)


def _error(resp: requests.Response) -> EtcdError:
    try:
        body = resp.json()
        message = str(body.get("message") or body.get("error") or resp.text)
        code = int(body.get("code", 0))
    except (ValueError, TypeError, AttributeError):
        message, code = (resp.text.strip() or str(resp.reason))[:200], 0
    return EtcdError(code, message, resp.status_code)


def _never_sent(exc: requests.RequestException) -> bool:
    """Whether a requests failure proves the request was not sent."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.ReadTimeout):
        text = repr(exc)
        return "NewConnectionError" in text or "Connection refused" in text
    return False


def new_session() -> requests.Session:
    """A session that talks to the endpoint and nothing else.

    ``trust_env`` off: an ``HTTP_PROXY`` in the environment must never route
    a run's traffic off the machine, and reading the environment and
    ``~/.netrc`` on every request halves the request rate (measured: 310 vs
    590 linearizable gets/s from one thread).
    """
    s = requests.Session()
    s.trust_env = False
    s.headers["Content-Type"] = "application/json"
    return s


class EtcdClient:
    """Unary KV calls against one endpoint (``http://host:port``)."""

    def __init__(self, endpoint: str, timeout: float = 2.0, connect_timeout: float = 0.5):
        self.endpoint = endpoint.rstrip("/")
        self.timeout = (connect_timeout, timeout)
        self.session = new_session()

    def close(self) -> None:
        self.session.close()

    def call(self, path: str, body: dict) -> dict:
        try:
            resp = self.session.post(self.endpoint + path, data=json.dumps(body).encode(), timeout=self.timeout)
        except requests.RequestException as exc:
            if _never_sent(exc):
                raise Unavailable(f"{self.endpoint}: {type(exc).__name__}") from exc
            raise Indeterminate(f"{self.endpoint}: {type(exc).__name__}") from exc
        if resp.status_code != 200:
            raise _error(resp)
        try:
            out = resp.json()
        except (ValueError, RecursionError):
            raise Malformed(f"{self.endpoint}: unparsable answer {resp.text[:80]!r}") from None
        if not isinstance(out, dict):
            raise Malformed(f"{self.endpoint}: answer is not a JSON object: {resp.text[:80]!r}")
        return out

    # --- KV -----------------------------------------------------------------

    def put(self, key: str, value: str) -> int:
        """Put; returns the revision the put created."""
        out = self.call("/v3/kv/put", {"key": b64(key), "value": b64(value)})
        with _parsing(self.endpoint, "put", out):
            return int(out["header"]["revision"])

    def range(self, key: str, range_end: str | None = None, revision: int = 0,
              limit: int = 0) -> tuple[int, list[KV]]:
        """Linearizable range; returns (header revision, kvs). ``revision`` > 0
        reads the store as of that revision (fails once compacted)."""
        body: dict = {"key": b64(key)}
        if range_end is not None:
            body["range_end"] = b64(range_end)
        if revision:
            body["revision"] = revision
        if limit:
            body["limit"] = limit
        out = self.call("/v3/kv/range", body)
        with _parsing(self.endpoint, "range", out):
            return int(out["header"]["revision"]), [KV.parse(kv) for kv in out.get("kvs", ())]

    def get(self, key: str, revision: int = 0) -> tuple[int, KV | None]:
        rev, kvs = self.range(key, revision=revision)
        return rev, (kvs[0] if kvs else None)

    def delete(self, key: str) -> tuple[int, int]:
        """Delete one key; returns (header revision, number deleted). When
        nothing was deleted the revision is the current one, not a new one."""
        out = self.call("/v3/kv/deleterange", {"key": b64(key)})
        with _parsing(self.endpoint, "delete", out):
            return int(out["header"]["revision"]), int(out.get("deleted", 0))

    def put_if_mod_revision(self, key: str, value: str, mod_revision: int) -> tuple[int, bool, KV | None]:
        """Optimistic put, Kubernetes' GuaranteedUpdate: a txn that puts if
        the key's mod_revision is ``mod_revision`` (0: the key does not exist),
        else reads the key. Returns (header revision, succeeded, kv read on
        failure)."""
        k = b64(key)
        out = self.call("/v3/kv/txn", {
            "compare": [{"key": k, "target": "MOD", "result": "EQUAL", "mod_revision": mod_revision}],
            "success": [{"request_put": {"key": k, "value": b64(value)}}],
            "failure": [{"request_range": {"key": k}}],
        })
        with _parsing(self.endpoint, "txn", out):
            rev = int(out["header"]["revision"])
            if out.get("succeeded"):
                return rev, True, None
            kvs = []
            for r in out.get("responses", ()):
                kvs.extend(r.get("response_range", {}).get("kvs", ()))
            return rev, False, (KV.parse(kvs[0]) if kvs else None)

    def compact(self, revision: int) -> int:
        out = self.call("/v3/kv/compaction", {"revision": revision})
        with _parsing(self.endpoint, "compact", out):
            return int(out["header"]["revision"])

    # --- cluster ------------------------------------------------------------

    def status(self) -> dict:
        """Maintenance status: ``member_id`` of the answering member, ``leader``."""
        out = self.call("/v3/maintenance/status", {})
        with _parsing(self.endpoint, "status", out):
            return {"member_id": int(out["header"]["member_id"]), "leader": int(out.get("leader", 0)),
                    "revision": int(out["header"]["revision"]),
                    "raft_term": int(out.get("raftTerm", 0))}

    def healthy(self) -> bool:
        try:
            r = self.session.get(self.endpoint + "/health", timeout=self.timeout)
            return r.status_code == 200 and r.json().get("health") in ("true", True)
        except (requests.RequestException, ValueError):
            return False

    # --- watch --------------------------------------------------------------

    def watch(self, key: str, range_end: str | None = None, start_revision: int = 0,
              progress_notify: bool = True, read_timeout: float = 3.0) -> WatchStream:
        return WatchStream(self.endpoint, key, range_end, start_revision, progress_notify, read_timeout)


class WatchStream:
    """One watch over its own HTTP connection.

    The gateway maps the bidirectional Watch RPC onto one POST: the body is
    the create request, the answer a chunked stream of newline-delimited
    ``{"result": WatchResponse}`` objects. Iterating yields
    :class:`WatchResponse` objects; it ends (raises :class:`Indeterminate`)
    when the stream breaks or stays silent longer than ``read_timeout``
    (with progress notifications on, silence means a sick member). ``close``
    may be called from any thread.
    """

    def __init__(self, endpoint, key, range_end, start_revision, progress_notify, read_timeout):
        create: dict = {"key": b64(key), "progress_notify": progress_notify}
        if range_end is not None:
            create["range_end"] = b64(range_end)
        if start_revision:
            create["start_revision"] = start_revision
        self.session = new_session()
        self.endpoint = endpoint
        self._closed = threading.Event()
        try:
            self.resp = self.session.post(endpoint.rstrip("/") + "/v3/watch",
                                          data=json.dumps({"create_request": create}),
                                          stream=True, timeout=(0.5, read_timeout))
        except requests.RequestException as exc:
            self.session.close()
            if _never_sent(exc):
                raise Unavailable(f"{endpoint}: {type(exc).__name__}") from exc
            raise Indeterminate(f"{endpoint}: {type(exc).__name__}") from exc
        if self.resp.status_code != 200:
            err = _error(self.resp)
            self.close()
            raise err

    def __iter__(self) -> Iterator[WatchResponse]:
        try:
            for line in self.resp.iter_lines(chunk_size=65536):
                if not line:
                    continue
                msg = json.loads(line)
                with _parsing(self.endpoint, "watch", msg):
                    if "result" not in msg:
                        err = msg.get("error", msg)
                        raise EtcdError(int(err.get("code", 0)), str(err.get("message", err)), 200)
                    response = WatchResponse.parse(msg["result"])
                yield response
        except Malformed:
            if self._closed.is_set():
                return
            raise
        except (requests.RequestException, ValueError, AttributeError, OSError, RecursionError) as exc:
            if self._closed.is_set():
                return
            raise Indeterminate(f"watch stream broke: {type(exc).__name__}") from exc
        if not self._closed.is_set():
            raise Indeterminate("watch stream ended")

    def close(self) -> None:
        self._closed.set()
        try:
            self.resp.close()
        except Exception:  # noqa: BLE001 - closing a broken stream may fail any way
            pass
        self.session.close()

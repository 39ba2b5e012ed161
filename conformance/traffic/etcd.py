"""The etcd workload: what the clients do, and how each outcome is recorded.

Shape (after etcd's tests/robustness traffic, written from its description):

* ``clients`` KV client threads, each with exactly one request outstanding,
  each bound to one endpoint over a kept-alive HTTP session (moving to the
  next endpoint when its member stops answering). Each draws its operations
  from its own ``random.Random(seed, client)``, so a seed fixes every
  client's sequence of choices (not the interleaving, which the target decides).
* The mix, over a small set of keys (contention is what finds bugs):
  ``get`` (linearizable single-key range), ``put``, ``delete``, the
  *optimistic put* of Kubernetes' GuaranteedUpdate (a txn: if the key's
  mod_revision is the one this client last saw, put, else read the key — and
  remember what it read for next time), ``range`` over every key of the run,
  and ``range`` of one key at a past revision (which fails once compacted).
* ``watchers`` watch threads: each keeps a chain of watch streams over the
  run's key prefix with progress notifications on; a stream lasts a few
  seconds, or until it breaks, and the next resumes from the last revision
  received (events or progress notifications) + 1 — etcd's "resumable".
  Sometimes a chain starts over from a random recent revision instead.
* one compactor: every ``compact_interval`` seconds it compacts to the
  revision it saw at its previous tick, so the history keeps a window of a
  few seconds below which reads must fail.

Recording (shapes of ``etcd-kv`` in :mod:`conformance.history`; the rest are
ours, read by :mod:`conformance.validate`):

* ``get`` / ``put`` / ``delete`` / ``txn`` on ``key`` — the etcd-kv shapes;
* ``range``: key ``None``; invoke ``{"key", "range_end", "revision"}``; ok
  ``{"rev": R, "kvs": [[key, value, mod_rev, create_rev, version], ...]}``;
* ``compact``: invoke ``{"revision": C}``; ok ``{"rev": R}``;
* ``watch``: one operation per stream. Invoke ``{"chain", "key",
  "range_end", "start_revision", "endpoint", "resume"}`` (``resume``: this
  stream continues the chain's previous one); ok ``{"responses": [...],
  "end": why}``, each response ``{"t": ns, "rev": header revision,
  "events": [[type, key, value, mod_rev, create_rev, version], ...]}`` plus
  ``"progress": true`` for a progress notification, ``"created"``,
  ``"canceled"`` and ``"compact_revision"`` when set;
* faults (see :mod:`conformance.failpoint.etcd`): process ``-1``;
* ``recover``: process ``-2``, the recovery phase (see
  :meth:`Workload.recover`); ok ``{"ok": N}``, the requests that succeeded in it;
* ``crash``: a client, watcher or compactor thread that died of an exception
  (a bug, or answers nothing like etcd's): invoke ``{"thread"}``, ``info``
  with the error. Any such operation fails the ``availability`` check.

Back-off: a client whose request did not succeed, and a watcher whose stream
could not be opened or broke, wait before the next attempt — 20 ms (watchers
50 ms) doubling up to 0.5 s (watchers 2 s), with jitter, reset by the next
success — so an endpoint that refuses or answers garbage is not hammered (a
watcher without back-off once reconnected 15,756 times in 5 s).

What counts as an outcome: an answer is ``ok``; an error from etcd that
proves nothing happened (``compacted``, ``future revision``), a refused
connection, or any failed read is ``fail``; a write that timed out or got any
other error is ``info`` — it may still take effect — and the client takes a
fresh process number (Jepsen's rule: a process with an unknown outcome
pending never issues again). Reads never need ``info``: a read changes nothing.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import attrs

from kubemc.conformance.history import Recorder
from kubemc.conformance.adapters.etcd.client import (
    EtcdClient,
    EtcdError,
    Indeterminate,
    Unavailable,
    WatchStream,
    prefix_end,
)

#: process numbers: KV clients take ``i + k * clients``; these are apart
COMPACTOR_PROCESS = 1_000_000
WATCH_PROCESS = 2_000_000
NEMESIS_PROCESS = -1
RECOVERY_PROCESS = -2
CRASH_PROCESS = 3_000_000

#: operation mix (weights)
MIX = (("get", 30), ("put", 15), ("txn", 25), ("delete", 6), ("range", 14), ("range_at", 10))


@attrs.define
class Config:
    clients: int = 8
    watchers: int = 2
    keys: int = 8
    rate: float = 0.0                 # total KV requests per second; 0 = as fast as possible
    seed: int = 0
    prefix: str = "/kmc/"
    timeout: float = 1.5              # KV request timeout (s)
    compact_interval: float = 2.0     # s; 0 disables compaction
    compact_lag: int = 2              # compact to the revision seen this many ticks ago
    watch_stream_seconds: tuple = (2.0, 6.0)
    watch_read_timeout: float = 4.0

    @property
    def key_names(self) -> list[str]:
        return [f"{self.prefix}k{i}" for i in range(self.keys)]


@attrs.define
class Stats:
    ok: int = 0
    fail: int = 0
    info: int = 0
    watch_streams: int = 0
    watch_events: int = 0
    watch_failures: int = 0       # streams that could not be opened, or broke
    crashes: int = 0
    lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)

    @property
    def operations(self) -> int:
        return self.ok + self.fail + self.info

    def count(self, status: str) -> None:
        with self.lock:
            setattr(self, status, getattr(self, status) + 1)


def _kv(kv) -> dict:
    return {"value": kv.value, "mod_rev": kv.mod_revision, "version": kv.version,
            "create_rev": kv.create_revision}


ABSENT_KV = {"value": None, "mod_rev": 0, "version": 0, "create_rev": 0}


def _error_out(exc: Exception) -> dict:
    out = {"error": str(exc)[:200]}
    if isinstance(exc, EtcdError):
        if exc.compacted:
            out["compacted"] = True
        if exc.future_revision:
            out["future_revision"] = True
    return out


class Backoff:
    """Exponential back-off with full jitter (Brooker, "Exponential Backoff And
    Jitter", AWS Architecture Blog, 2015): waits grow from ``first`` to ``cap``."""

    def __init__(self, rng: random.Random, first: float, cap: float):
        self.rng, self.first, self.cap = rng, first, cap
        self.current = 0.0

    def reset(self) -> None:
        self.current = 0.0

    def next(self) -> float:
        self.current = self.first if not self.current else min(self.cap, 2 * self.current)
        return self.rng.uniform(self.current / 2, self.current)


class Workload:
    """Runs the clients, watchers and compactor until :meth:`stop`."""

    def __init__(self, endpoints: list[str], recorder: Recorder, config: Config,
                 on_error: Callable[[str], None] | None = None):
        if not endpoints:
            raise ValueError("no endpoints")
        self.endpoints = list(endpoints)
        self.rec = recorder
        self.cfg = config
        self.stats = Stats()
        self.keys = config.key_names
        self.range_end = prefix_end(config.prefix)
        self._stop_kv = threading.Event()
        self._stop_watch = threading.Event()
        self._threads: list[threading.Thread] = []
        self._watch_threads: list[threading.Thread] = []
        self._streams: set[WatchStream] = set()
        self._streams_lock = threading.Lock()
        self.max_revision = 1             # the highest header revision any client saw
        self._rev_lock = threading.Lock()
        self.on_error = on_error or (lambda msg: None)
        self.errors: list[str] = []
        self._watch_progress: dict[int, int] = {}   # chain -> highest revision received

    # --- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        for i in range(self.cfg.clients):
            self._spawn(self._client, i, f"kmc-client-{i}", self._threads)
        if self.cfg.compact_interval > 0:
            self._spawn(self._compactor, None, "kmc-compactor", self._threads)
        for w in range(self.cfg.watchers):
            self._spawn(self._watcher, w, f"kmc-watcher-{w}", self._watch_threads)

    def _spawn(self, fn, arg, name, into) -> None:
        def body():
            try:
                fn(arg) if arg is not None else fn()
            except Exception as exc:  # noqa: BLE001 - recorded: it fails the availability check
                msg = f"{name} crashed: {type(exc).__name__}: {exc}"
                self.errors.append(msg)
                self.on_error(msg)
                with self.stats.lock:
                    self.stats.crashes += 1
                    process = CRASH_PROCESS + self.stats.crashes
                tok = self.rec.invoke(process, "crash", None, {"thread": name})
                self.rec.complete(tok, "info", {"error": msg[:300]})
        t = threading.Thread(target=body, name=name, daemon=True)
        into.append(t)
        t.start()

    def stop_kv(self, timeout: float = 10.0) -> None:
        """Stop the KV clients and the compactor (each finishes its request)."""
        self._stop_kv.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def drain_watches(self, timeout: float = 5.0, settle: float = 0.0) -> None:
        """Let watchers run until each has seen the last revision (or timeout),
        then ``settle`` seconds more: with writes stopped, that is when etcd
        sends progress notifications (it sends one only after an interval
        without events), which the bookmarkable check needs."""
        target = self.max_revision
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not all(
                r >= target for r in self._watch_progress.values()):
            time.sleep(0.1)
        if settle > 0:
            self._stop_watch.wait(settle)

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_kv(timeout)
        self._stop_watch.set()
        with self._streams_lock:
            streams = list(self._streams)
        for s in streams:
            s.close()
        deadline = time.monotonic() + timeout
        for t in self._watch_threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def _saw(self, rev: int) -> None:
        if rev > self.max_revision:
            with self._rev_lock:
                if rev > self.max_revision:
                    self.max_revision = rev

    # --- KV clients ----------------------------------------------------------------

    def _client(self, i: int) -> None:
        cfg = self.cfg
        rng = random.Random(f"{cfg.seed}/client/{i}")
        names = [n for n, _ in MIX]
        weights = [w for _, w in MIX]
        process = i
        endpoint = i % len(self.endpoints)
        client = EtcdClient(self.endpoints[endpoint], timeout=cfg.timeout)
        seen_mod: dict[str, int] = {}        # last mod_revision this client saw per key
        seen_revs: list[int] = [1]            # recent header revisions, for range_at
        seq = 0
        backoff = Backoff(rng, 0.02, 0.5)
        period = cfg.clients / cfg.rate if cfg.rate > 0 else 0.0
        next_at = time.monotonic()
        try:
            while not self._stop_kv.is_set():
                if period:
                    next_at += period
                    delay = next_at - time.monotonic()
                    if delay > 0:
                        if self._stop_kv.wait(delay):
                            break
                    else:
                        next_at = time.monotonic()
                f = rng.choices(names, weights)[0]
                key = rng.choice(self.keys)
                seq += 1
                value = f"{i}.{seq}"
                status, rev = self._one(client, process, f, key, value, rng, seen_mod, seen_revs)
                if rev:
                    self._saw(rev)
                    if len(seen_revs) >= 64:
                        del seen_revs[:32]
                    seen_revs.append(rev)
                if status == "info":
                    process += cfg.clients
                if status == "ok":
                    backoff.reset()
                elif status != "fail-definite":
                    # the member may be down, paused or cut off: try the next one, after a pause
                    client.close()
                    endpoint = (endpoint + 1) % len(self.endpoints)
                    client = EtcdClient(self.endpoints[endpoint], timeout=cfg.timeout)
                    if self._stop_kv.wait(backoff.next()):
                        break
        finally:
            client.close()

    def _one(self, client: EtcdClient, process: int, f: str, key: str, value: str,
             rng: random.Random, seen_mod: dict, seen_revs: list) -> tuple[str, int]:
        """Issue and record one operation; returns (status, header revision)."""
        rec = self.rec
        write = f in ("put", "delete", "txn")
        if f == "get":
            tok = rec.invoke(process, "get", key, None)
        elif f == "put":
            tok = rec.invoke(process, "put", key, value)
        elif f == "delete":
            tok = rec.invoke(process, "delete", key, None)
        elif f == "txn":
            expect = seen_mod.get(key, 0)
            tok = rec.invoke(process, "txn", key, {"compare": ["mod_rev", "=", expect],
                                                    "success": [["put", value]], "failure": [["get"]]})
        elif f == "range":
            tok = rec.invoke(process, "range", None, {"key": self.cfg.prefix, "range_end": self.range_end,
                                                      "revision": 0})
        else:  # range_at: one key at a recent past revision
            hi = seen_revs[-1]
            at = rng.randint(max(1, hi - 2000), hi)
            tok = rec.invoke(process, "range", None, {"key": key, "range_end": None, "revision": at})
        try:
            if f == "get":
                rev, kv = client.get(key)
                out = {"rev": rev, **(_kv(kv) if kv else ABSENT_KV)}
                if kv:
                    seen_mod[key] = kv.mod_revision
                else:
                    seen_mod[key] = 0
            elif f == "put":
                rev = client.put(key, value)
                out = {"rev": rev}
                seen_mod[key] = rev
            elif f == "delete":
                rev, deleted = client.delete(key)
                out = {"rev": rev, "deleted": deleted}
                seen_mod[key] = 0
            elif f == "txn":
                rev, ok, kv = client.put_if_mod_revision(key, value, expect)
                if ok:
                    out = {"rev": rev, "succeeded": True, "responses": [{"rev": rev}]}
                    seen_mod[key] = rev
                else:
                    got = _kv(kv) if kv else ABSENT_KV
                    out = {"rev": rev, "succeeded": False, "responses": [got]}
                    seen_mod[key] = got["mod_rev"]
            else:
                if f == "range":
                    rev, kvs = client.range(self.cfg.prefix, self.range_end)
                else:
                    rev, kvs = client.range(key, revision=at)
                out = {"rev": rev, "kvs": [[kv.key, kv.value, kv.mod_revision, kv.create_revision, kv.version]
                                           for kv in kvs]}
        except EtcdError as exc:
            definite = exc.compacted or exc.future_revision
            status = "fail" if (definite or not write) else "info"
            rec.complete(tok, status, _error_out(exc))
            self.stats.count(status)
            return ("fail-definite" if definite else status), 0
        except Unavailable as exc:
            rec.complete(tok, "fail", _error_out(exc))
            self.stats.count("fail")
            return "fail", 0
        except Indeterminate as exc:
            status = "info" if write else "fail"
            rec.complete(tok, status, _error_out(exc))
            self.stats.count(status)
            return status, 0
        rec.complete(tok, "ok", out)
        self.stats.count("ok")
        return "ok", out["rev"]

    # --- compactor -------------------------------------------------------------------

    def _compactor(self) -> None:
        cfg = self.cfg
        process = COMPACTOR_PROCESS
        endpoint = 0
        client = EtcdClient(self.endpoints[endpoint], timeout=cfg.timeout)
        seen: list[int] = []
        try:
            while not self._stop_kv.wait(cfg.compact_interval):
                seen.append(self.max_revision)
                if len(seen) <= cfg.compact_lag:
                    continue
                target = seen.pop(0)
                if target <= 1:
                    continue
                tok = self.rec.invoke(process, "compact", None, {"revision": target})
                try:
                    rev = client.compact(target)
                except EtcdError as exc:
                    definite = exc.compacted or exc.future_revision
                    self.rec.complete(tok, "fail" if definite else "info", _error_out(exc))
                    if not definite:
                        process += 1
                except Unavailable as exc:
                    self.rec.complete(tok, "fail", _error_out(exc))
                except Indeterminate as exc:
                    self.rec.complete(tok, "info", _error_out(exc))
                    process += 1
                else:
                    self.rec.complete(tok, "ok", {"rev": rev})
                    continue
                client.close()
                endpoint = (endpoint + 1) % len(self.endpoints)
                client = EtcdClient(self.endpoints[endpoint], timeout=cfg.timeout)
        finally:
            client.close()

    # --- watchers ------------------------------------------------------------------------

    def _watcher(self, w: int) -> None:
        cfg = self.cfg
        rng = random.Random(f"{cfg.seed}/watcher/{w}")
        process = WATCH_PROCESS + w
        endpoint = w % len(self.endpoints)
        resume_from = 0          # 0: start afresh
        backoff = Backoff(rng, 0.05, 2.0)
        self._watch_progress[w] = 0
        while not self._stop_watch.is_set():
            if resume_from:
                start, resume = resume_from, True
            else:
                # afresh: from the current revision, or from a recent past one
                hi = self.max_revision
                start, resume = (rng.randint(max(1, hi - 100), hi) if rng.random() < 0.7 else 0), False
            inp = {"chain": w, "key": self.cfg.prefix, "range_end": self.range_end,
                   "start_revision": start, "endpoint": self.endpoints[endpoint], "resume": resume}
            tok = self.rec.invoke(process, "watch", None, inp)
            responses: list[dict] = []
            end = "closed"
            last = start - 1 if start else 0
            try:
                stream = WatchStream(self.endpoints[endpoint], self.cfg.prefix, self.range_end, start,
                                     True, cfg.watch_read_timeout)
            except (EtcdError, Unavailable, Indeterminate) as exc:
                self.rec.complete(tok, "fail", _error_out(exc))
                with self.stats.lock:
                    self.stats.watch_failures += 1
                endpoint = (endpoint + 1) % len(self.endpoints)
                if self._stop_watch.wait(backoff.next()):
                    break
                continue
            with self._streams_lock:
                self._streams.add(stream)
            until = time.monotonic() + rng.uniform(*cfg.watch_stream_seconds)
            broke = False
            try:
                for r in stream:
                    item = {"t": time.monotonic_ns(), "rev": r.revision,
                            "events": [[e.type, e.kv.key, e.kv.value, e.kv.mod_revision,
                                        e.kv.create_revision, e.kv.version] for e in r.events]}
                    if r.progress_notify:
                        item["progress"] = True
                    if r.created:
                        item["created"] = True
                    if r.canceled:
                        item["canceled"] = True
                        item["reason"] = r.cancel_reason
                    if r.compact_revision:
                        item["compact_revision"] = r.compact_revision
                    responses.append(item)
                    if r.events:
                        last = max(last, r.events[-1].revision)
                        with self.stats.lock:
                            self.stats.watch_events += len(r.events)
                    elif r.progress_notify and r.revision:
                        last = max(last, r.revision)
                    if last:
                        self._watch_progress[w] = max(self._watch_progress[w], last)
                    if r.canceled:
                        end = "canceled"
                        break
                    if time.monotonic() > until or self._stop_watch.is_set():
                        break
            except (EtcdError, Indeterminate) as exc:
                end = f"broken: {exc}"[:200]
                broke = True
            finally:
                with self._streams_lock:
                    self._streams.discard(stream)
                stream.close()
            self.rec.complete(tok, "ok", {"responses": responses, "end": end})
            with self.stats.lock:
                self.stats.watch_streams += 1
            if end == "canceled":
                resume_from = 0          # compacted away (or refused): start afresh
            elif rng.random() < 0.15 and not broke:
                resume_from = 0          # sometimes a fresh chain
            else:
                resume_from = last + 1 if last else (start or 0)
            # a stream that carried something beyond its "created" answer was a success
            if any(not r.get("created") for r in responses):
                backoff.reset()
            if broke:
                with self.stats.lock:
                    self.stats.watch_failures += 1
                endpoint = (endpoint + 1) % len(self.endpoints)
                if self._stop_watch.wait(backoff.next()):
                    break

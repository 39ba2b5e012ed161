"""Histories: what concurrent clients did to a target, as events and operations.

Every conformance target records its run with a :class:`Recorder` and every
checker reads it back with :func:`read_jsonl` / :func:`pair`. The format is
Jepsen's (Kingsbury, "Jepsen: knossos" history model): each operation is an
``invoke`` event followed, in the same process, by exactly one completion:

``ok``
    the operation took effect, and ``value`` is what it returned;
``fail``
    the operation definitely did not take effect (``value`` says why);
``info``
    the outcome is unknown (a timeout, a crashed client): the operation may or
    may not have taken effect, at any time after it was invoked. A process
    whose operation ended ``info`` should issue nothing more under the same
    process number (Jepsen gives the client a fresh process number).

The file format is JSON lines, one event per line::

    {"type": "invoke", "process": 0, "f": "put", "key": "k", "value": "x", "time": 12, "index": 0}

``time`` is a monotonic clock in nanoseconds (only its order matters) and
``index`` the event's position in the history. An optional first line
``{"#meta": {...}}`` carries metadata, e.g. ``{"#meta": {"model": "etcd-kv"}}``
(the sequential specification to check against; see ``conformance.model``).

Value shapes, per model (``key`` is ``null`` for the single register):

register (``model: "register"``; Jepsen's cas-register)
    ``read``: invoke ``null``, ok = the value read (``null`` for nil);
    ``write``: invoke and ok = the value written;
    ``cas``: invoke and completion = ``[from, to]``; ``ok`` means swapped, and
    ``fail`` means the compare did not hold (etcd's "Compare failed": the op
    observed a value other than ``from``, and changed nothing).

kv (``model: "kv"``; the porcupine key-value histories)
    ``get``: invoke ``null``, ok = the value (``""`` for a missing key);
    ``put`` / ``append``: invoke and ok = the string written / appended.

etcd-kv (``model: "etcd-kv"``; one etcd key per ``key``, revisions where known;
the semantics are the MVCC oracle's, ``model.store.mvcc``)
    ``put``: invoke = the value (a string); ok = ``{"rev": R}``, R the header
    revision of the response (which is the key's new mod revision);
    ``get``: invoke ``null``; ok = ``{"rev": R, "value": V, "mod_rev": M,
    "version": N, "create_rev": C}``, V ``null`` when the key does not exist
    (then M, N, C are 0);
    ``delete``: invoke ``null``; ok = ``{"rev": R, "deleted": D}`` (D = 0 or 1);
    ``txn``: a single-key transaction. Invoke = ``{"compare": [TARGET, OP, X],
    "success": [REQ, ...], "failure": [REQ, ...]}`` with TARGET one of
    ``"value" | "mod_rev" | "version" | "create_rev"``, OP one of
    ``"=" | "!=" | "<" | ">"`` (etcd's Compare; ``compare`` may also be a list of
    such triples, all of which must hold), and each REQ ``["put", V]``,
    ``["get"]`` or ``["delete"]`` on the same key; ok = ``{"rev": R,
    "succeeded": B, "responses": [RESP, ...]}``, one RESP per REQ of the branch
    taken, in the ``put`` / ``get`` / ``delete`` output shapes above.
    Every field of an ok output is optional: what is absent is not checked
    (``rev`` absent: the revision is unknown; ``succeeded`` absent: either
    branch). Kubernetes' optimistic update is ``{"compare": ["mod_rev", "=",
    M], "success": [["put", V]], "failure": [["get"]]}``.

Fields that a target cannot fill in are ``null``; checkers treat a missing
optional field as unobserved, never as a wrong answer.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time as _time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs

from kubemc.checker.errors import BadInput

INVOKE, OK, FAIL, INFO = "invoke", "ok", "fail", "info"
TYPES = (INVOKE, OK, FAIL, INFO)
COMPLETIONS = (OK, FAIL, INFO)


@attrs.frozen(slots=True)
class Event:
    """One line of a history: an invocation or a completion."""

    type: str
    process: int
    f: str
    key: str | None
    value: Any
    time: int
    index: int | None = None

    def to_json(self) -> dict:
        return {"type": self.type, "process": self.process, "f": self.f, "key": self.key,
                "value": self.value, "time": self.time, "index": self.index}


@attrs.frozen(slots=True)
class Operation:
    """An invocation paired with its completion.

    ``call`` and ``ret`` are the times of the two events; ``ret`` is ``None``
    when ``status`` is ``info`` (the operation may take effect at any time
    after ``call``: read it as +infinity). ``output`` is the completion's value
    (``None`` for ``info``). ``index`` is the position of the invocation event
    in the history it came from, a stable name for the operation.
    """

    process: int
    f: str
    key: str | None
    input: Any
    output: Any
    call: int
    ret: int | None
    status: str
    index: int | None = None

    def to_json(self) -> dict:
        return {"process": self.process, "f": self.f, "key": self.key, "input": self.input,
                "output": self.output, "call": self.call, "ret": self.ret,
                "status": self.status, "index": self.index}


class Recorder:
    """Thread-safe history recorder shared by a workload's client threads.

    ``token = rec.invoke(process, f, key, value)`` before sending a request,
    ``rec.complete(token, "ok" | "fail" | "info", value)`` after. The clock is
    read under the lock, so event order, ``index`` order and ``time`` order
    agree. Operations still pending when the history is read come out as
    ``info`` (their outcome is unknown).
    """

    def __init__(self, clock: Callable[[], int] = _time.monotonic_ns, meta: dict | None = None):
        self._clock = clock
        self._lock = threading.Lock()
        self._events: list[Event] = []
        self._pending: dict[int, Event] = {}   # token -> invoke event
        self._busy: set[int] = set()            # processes with a pending invoke
        self.meta = dict(meta) if meta else {}

    def invoke(self, process: int, f: str, key: str | None, value: Any = None) -> int:
        with self._lock:
            if process in self._busy:
                raise ValueError(f"process {process} already has an operation in flight")
            token = len(self._events)
            ev = Event(INVOKE, process, f, key, value, self._clock(), token)
            self._events.append(ev)
            self._pending[token] = ev
            self._busy.add(process)
            return token

    def complete(self, token: int, type: str, value: Any = None) -> None:
        if type not in COMPLETIONS:
            raise ValueError(f"completion type must be one of {COMPLETIONS}, not {type!r}")
        with self._lock:
            try:
                inv = self._pending.pop(token)
            except KeyError:
                raise ValueError(f"token {token} is not a pending operation") from None
            self._busy.discard(inv.process)
            self._events.append(Event(type, inv.process, inv.f, inv.key, value, self._clock(),
                                      len(self._events)))

    def events(self) -> list[Event]:
        with self._lock:
            return list(self._events)

    def operations(self) -> list[Operation]:
        return pair(self.events())

    def write_jsonl(self, path: str | os.PathLike) -> None:
        write_jsonl(path, self.events(), meta=self.meta or None)


def write_jsonl(path: str | os.PathLike, events: Iterable[Event], meta: dict | None = None) -> None:
    """Write events as JSON lines, atomically (temp file in the same directory, then rename)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            if meta:
                fh.write(json.dumps({"#meta": meta}, separators=(",", ":")) + "\n")
            for ev in events:
                fh.write(json.dumps(ev.to_json(), separators=(",", ":")) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _bad(path, lineno: int, what: str) -> BadInput:
    return BadInput(f"{path}:{lineno}: {what}")


def event_from_json(obj: Any, path="<history>", lineno: int = 0, index: int = 0) -> Event:
    """Validate one decoded JSON object as an Event (BadInput naming file and line if not)."""
    if not isinstance(obj, dict):
        raise _bad(path, lineno, "expected a JSON object per line")
    try:
        typ, process, f = obj["type"], obj["process"], obj["f"]
    except KeyError as e:
        raise _bad(path, lineno, f"event lacks the field {e.args[0]!r}") from None
    if typ not in TYPES:
        raise _bad(path, lineno, f"event type must be one of {', '.join(TYPES)}, not {typ!r}")
    if not isinstance(process, int) or isinstance(process, bool):
        raise _bad(path, lineno, f"process must be an integer, not {process!r}")
    if not isinstance(f, str):
        raise _bad(path, lineno, f"f must be a string, not {f!r}")
    key = obj.get("key")
    if key is not None and not isinstance(key, str):
        check_depth(key, f"{path}:{lineno}")
        key = json.dumps(key, sort_keys=True)  # structured keys: a canonical string
    t = obj.get("time", index)
    if not isinstance(t, int) or isinstance(t, bool):
        raise _bad(path, lineno, f"time must be an integer (ns), not {t!r}")
    idx = obj.get("index", index)
    if not isinstance(idx, int) or isinstance(idx, bool):
        idx = index
    value = obj.get("value")
    check_depth(value, f"{path}:{lineno}")
    return Event(typ, process, f, key, value, t, idx)


#: how deeply an operation's value may nest (real histories: two or three levels);
#: checked before anything recursive touches it
MAX_DEPTH = 64


def check_depth(value: Any, where) -> None:
    """BadInput if ``value`` nests lists and objects deeper than :data:`MAX_DEPTH`."""
    todo = [(value, 0)]
    while todo:
        v, d = todo.pop()
        if isinstance(v, (list, dict)):
            if d >= MAX_DEPTH:
                raise BadInput(f"{where}: a value nested deeper than {MAX_DEPTH} levels; "
                               f"operation values are flat in every history kubemc reads")
            todo.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def loads(line: str, path, lineno: int) -> Any:
    """One line of JSON, strictly (RFC 8259: no NaN or Infinity), or BadInput naming the line.

    Every way a hostile line can break the decoder is bad input, never a
    crash: nesting deeper than the interpreter's stack, integers longer than
    Python converts (``sys.get_int_max_str_digits``), malformed text.
    """
    try:
        return json.loads(line, parse_constant=_no_constant)
    except RecursionError:
        raise _bad(path, lineno, "JSON nested too deeply") from None
    except ValueError as e:
        why = getattr(e, "msg", None) or str(e).split(":")[0]
        raise _bad(path, lineno, f"not valid JSON ({why})") from None


def read_meta(path: str | os.PathLike) -> dict:
    """The ``#meta`` object of a JSONL history, or ``{}``; BadInput if it is not an object."""
    try:
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    obj = loads(line, path, lineno)
                    if not isinstance(obj, dict) or "#meta" not in obj:
                        return {}
                    meta = obj["#meta"]
                    if not isinstance(meta, dict):
                        raise _bad(path, lineno, f"#meta must be a JSON object, not "
                                                 f"{type(meta).__name__}")
                    if "model" in meta and not isinstance(meta["model"], str):
                        raise _bad(path, lineno, f"#meta model must be the name of a "
                                                 f"specification, not {meta['model']!r:.60}")
                    return meta
    except (OSError, UnicodeDecodeError):
        return {}   # read_jsonl says what is wrong with the file
    return {}


def read_jsonl(path: str | os.PathLike) -> list[Event]:
    """Read a JSONL history written by :class:`Recorder` (BadInput if malformed)."""
    try:
        fh = open(path, encoding="utf-8")
    except OSError as e:
        raise BadInput(f"{path}: cannot read history: {e.strerror or e}") from None
    events: list[Event] = []
    with fh:
        try:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                obj = loads(line, path, lineno)
                if isinstance(obj, dict) and "#meta" in obj:
                    continue
                events.append(event_from_json(obj, path, lineno, len(events)))
        except UnicodeDecodeError:
            raise BadInput(f"{path}: not UTF-8 text") from None
    return events


def pair(events: Iterable[Event], source: str = "history") -> list[Operation]:
    """Pair each invocation with the next completion of the same process.

    Returns operations in invocation order. An invocation without a
    completion becomes ``info`` (unknown outcome). A completion without a
    pending invocation, or a second invocation while one is pending, is bad
    input. ``ret`` is ``None`` for ``info`` operations.
    """
    ops: list[Operation | None] = []
    pending: dict[int, tuple[int, Event]] = {}
    for pos, ev in enumerate(events):
        where = f"{source}: event {ev.index if ev.index is not None else pos}"
        if ev.type == INVOKE:
            if ev.process in pending:
                raise BadInput(f"{where}: process {ev.process} invokes {ev.f} while its "
                               f"previous operation is still pending")
            pending[ev.process] = (len(ops), ev)
            ops.append(None)
        elif ev.type in COMPLETIONS:
            try:
                slot, inv = pending.pop(ev.process)
            except KeyError:
                raise BadInput(f"{where}: {ev.type} for process {ev.process} with no pending "
                               f"invocation") from None
            if ev.f != inv.f:
                raise BadInput(f"{where}: process {ev.process} invoked {inv.f} but completed {ev.f}")
            if ev.time < inv.time:
                raise BadInput(f"{where}: completion time precedes invocation time")
            if ev.type == INFO:
                ops[slot] = Operation(inv.process, inv.f, inv.key, inv.value, None, inv.time, None,
                                      INFO, inv.index)
            else:
                ops[slot] = Operation(inv.process, inv.f, inv.key, inv.value, ev.value, inv.time,
                                      ev.time, ev.type, inv.index)
        else:
            raise BadInput(f"{where}: unknown event type {ev.type!r}")
    for slot, inv in pending.values():
        ops[slot] = Operation(inv.process, inv.f, inv.key, inv.value, None, inv.time, None, INFO,
                              inv.index)
    return ops  # type: ignore[return-value]

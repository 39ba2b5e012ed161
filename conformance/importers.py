"""Reading histories recorded by other tools, and recognising formats by content.

Three formats, told apart by what the file contains (never by its name):

``jsonl``
    kubemc's own format (:mod:`conformance.history`): one JSON object per line.
``jepsen-log``
    the log lines Jepsen's ``jepsen.util`` logger writes for every operation, as
    in A. Horn's and porcupine's etcd test data::

        INFO  jepsen.util - 3<TAB>:invoke<TAB>:cas<TAB>[3 0]

    i.e. process, ``:type``, ``:f`` and an EDN value, separated by tabs or
    runs of spaces (any whitespace, as Jepsen's and porcupine's readers). Every
    non-blank line must be such a line. Events get ``time`` = their line order.
``edn``
    Jepsen / Knossos histories as EDN maps ``{:process 0, :type :invoke, :f
    :read, :value nil}`` (optionally ``:key`` and ``:time``), either one map
    per line (the porcupine key-value histories) or one EDN vector or list of
    maps. Operations of the ``:nemesis`` (any non-integer process) are not
    client operations and are skipped.

EDN is parsed with ``edn_format`` (the reference reader). Because that reader
is slow (≈0.4 ms per line), the flat maps of real histories go first through
a small reader for the EDN subset they use (maps, vectors, lists, strings,
integers, keywords, nil, booleans); anything outside that subset — tags,
floats, characters, sets — falls back to ``edn_format``. ``tests`` check that
both readers agree on every stored history.

A malformed file raises :class:`~checker.errors.BadInput` with one line naming
the file and the line number.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence, Set
from typing import Any

import attrs
import edn_format

from kubemc.checker.errors import BadInput
from kubemc.conformance.history import (
    TYPES, Event, Operation, check_depth, pair, read_jsonl, read_meta,
)

JSONL, JEPSEN_LOG, EDN = "jsonl", "jepsen-log", "edn"
FORMATS = (JSONL, JEPSEN_LOG, EDN)


@attrs.frozen
class History:
    """A loaded history: its events, where it came from, and which model it speaks."""

    path: str
    format: str
    events: tuple[Event, ...]
    model: str  # a name in conformance.model.specs.SPECS
    meta: dict = attrs.field(factory=dict)

    def operations(self) -> list[Operation]:
        return pair(self.events, source=self.path)


# ---------------------------------------------------------------------------
# Format detection
# ---------------------------------------------------------------------------

# Fields separated by any whitespace, as Jepsen's own log readers and
# porcupine's parser take them (real logs have tabs or runs of spaces).
_JEPSEN_LINE = re.compile(r"^.*?jepsen\.util\s+-\s+(\S+)\s+:(\w+)\s+:([\w\-?!]+)\s+(\S.*?)\s*$")


def _first_line(path) -> tuple[int, str] | None:
    try:
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    return lineno, line.strip()
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not UTF-8 text") from None
    except OSError as e:
        raise BadInput(f"{path}: cannot read history: {e.strerror or e}") from None
    return None


def detect_format(path: str | os.PathLike) -> str:
    """``jsonl``, ``jepsen-log`` or ``edn``, from the first non-blank line."""
    first = _first_line(path)
    if first is None:
        raise BadInput(f"{path}: empty history")
    lineno, line = first
    if _JEPSEN_LINE.match(line):
        return JEPSEN_LOG
    if line.startswith("{\"") or line.startswith("{ \""):
        return JSONL
    if line[0] in "{[(":
        return EDN
    raise BadInput(f"{path}:{lineno}: not a history kubemc knows (expected kubemc JSON lines, "
                   f"a Jepsen log, or Jepsen/Knossos EDN)")


# ---------------------------------------------------------------------------
# A fast reader for the EDN subset of real histories
# ---------------------------------------------------------------------------


class _Unsupported(Exception):
    """Outside the fast subset: let edn_format read it."""


class _TooLong(Exception):
    """An integer literal longer than Python converts (``sys.get_int_max_str_digits``)."""


_TOKEN = re.compile(r"""
    [\s,]*(?:
      (?P<open>[\[{(]) | (?P<close>[\]})]) |
      (?P<str>"(?:[^"\\]|\\.)*") |
      (?P<int>[-+]?\d+(?![\w.])) |
      (?P<kw>:[^\s,\[\]{}()"]+) |
      (?P<sym>[A-Za-z*!_?$%&=<>/.][^\s,\[\]{}()"]*) |
      (?P<end>$)
    )""", re.VERBOSE)

_CLOSE = {"[": "]", "(": ")", "{": "}"}
_SYMS = {"nil": None, "true": True, "false": False}


class Keyword(str):
    """An EDN keyword read by the fast reader: the name as a str, ``:`` dropped."""

    __slots__ = ()


def _fast_edn(text: str) -> Any:
    pos = 0
    match = _TOKEN.match

    def value():
        nonlocal pos
        m = match(text, pos)
        if m is None:
            raise _Unsupported
        pos = m.end()
        kind = m.lastgroup
        if kind == "int":
            try:
                return int(m.group(kind))
            except ValueError:   # longer than Python converts
                raise _TooLong from None
        if kind == "str":
            s = m.group(kind)
            if "\\" in s:
                try:
                    return json.loads(s)
                except ValueError:
                    raise _Unsupported from None
            return s[1:-1]
        if kind == "kw":
            return Keyword(m.group(kind)[1:])
        if kind == "sym":
            try:
                return _SYMS[m.group(kind)]
            except KeyError:
                raise _Unsupported from None
        if kind == "open":
            opener = m.group(kind)
            items = []
            closer = _CLOSE[opener]
            while True:
                m2 = match(text, pos)
                if m2 is None:
                    raise _Unsupported
                if m2.lastgroup == "close":
                    if m2.group("close") != closer:
                        raise _Unsupported
                    pos = m2.end()
                    break
                if m2.lastgroup == "end":
                    raise _Unsupported
                items.append(value())
            if opener == "{":
                if len(items) % 2:
                    raise _Unsupported
                it = iter(items)
                try:
                    return dict(zip(it, it))
                except TypeError:  # unhashable key
                    raise _Unsupported from None
            return items
        raise _Unsupported

    v = value()
    m = match(text, pos)
    if m is None or m.lastgroup != "end":
        raise _Unsupported
    return v


def _from_edn_format(v: Any) -> Any:
    """edn_format's values as plain Python (keywords become :class:`Keyword`)."""
    if isinstance(v, edn_format.Keyword):
        return Keyword(v.name)
    if isinstance(v, edn_format.Symbol):
        return Keyword(str(v))
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, Mapping):
        return {_hashable(_from_edn_format(k)): _from_edn_format(x) for k, x in v.items()}
    if isinstance(v, (Sequence, Set)):   # vectors, lists, sets (in the reader's order)
        return [_from_edn_format(x) for x in v]
    return str(v)


def _hashable(v):
    return json.dumps(v, sort_keys=True) if isinstance(v, (list, dict)) else v


def parse_edn(text: str, where: str) -> Any:
    """One EDN value as plain Python; BadInput (naming ``where``) if malformed."""
    try:
        return _fast_edn(text)
    except _Unsupported:
        pass
    except _TooLong:
        raise BadInput(f"{where}: an integer in this EDN is too long "
                       f"(more than {sys.get_int_max_str_digits()} digits)") from None
    except RecursionError:
        raise BadInput(f"{where}: EDN nested too deeply") from None
    try:
        return _from_edn_format(edn_format.loads(text))
    except Exception as e:  # edn_format raises its own and ply's errors
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise BadInput(f"{where}: malformed EDN ({msg})") from None


def _json_value(v: Any) -> Any:
    """EDN values made JSON-able: keywords as their names, maps with string keys."""
    if isinstance(v, Keyword):
        return str(v)
    if isinstance(v, dict):
        return {str(k) if isinstance(k, str) else json.dumps(k): _json_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_json_value(x) for x in v]
    return v


# ---------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------


def read_jepsen_log(path: str | os.PathLike) -> list[Event]:
    events: list[Event] = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            m = _JEPSEN_LINE.match(line)
            if m is None:
                raise BadInput(f"{path}:{lineno}: not a Jepsen operation log line "
                               f"('... jepsen.util - PROCESS :TYPE :F VALUE', fields separated "
                               f"by whitespace)")
            proc, typ, f, raw = m.groups()
            try:
                process = int(proc)
            except ValueError:
                continue  # :nemesis and other non-client processes
            if typ not in TYPES:
                raise BadInput(f"{path}:{lineno}: unknown operation type :{typ}")
            value = _json_value(parse_edn(raw, f"{path}:{lineno}")) if raw else None
            check_depth(value, f"{path}:{lineno}")
            n = len(events)
            events.append(Event(typ, process, f, None, value, n, n))
    return events


def _edn_event(obj: Any, where: str, n: int) -> Event | None:
    if not isinstance(obj, dict):
        raise BadInput(f"{where}: expected an EDN map per operation event")
    get = obj.get
    process, typ, f = get("process"), get("type"), get("f")
    if typ is None or f is None or "process" not in obj:
        missing = [k for k in ("process", "type", "f") if get(k) is None]
        raise BadInput(f"{where}: event lacks {', '.join(':' + k for k in missing)}")
    if not isinstance(process, int) or isinstance(process, bool):
        return None  # the nemesis
    typ, f = str(typ), str(f)
    if typ not in TYPES:
        raise BadInput(f"{where}: unknown operation type :{typ}")
    key = get("key")
    if key is not None:
        check_depth(key, where)
        key = _json_value(key)
        if not isinstance(key, str):
            key = json.dumps(key, sort_keys=True)
    t = get("time", n)
    if not isinstance(t, int) or isinstance(t, bool):
        raise BadInput(f"{where}: :time must be an integer, not {t!r}")
    value = _json_value(get("value"))
    check_depth(value, where)
    return Event(typ, process, f, key, value, t, n)


def read_edn(path: str | os.PathLike) -> list[Event]:
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    events: list[Event] = []
    stripped = text.lstrip()
    if stripped[:1] in "[(":
        # One collection of maps (a Knossos history file).
        whole = parse_edn(text, f"{path}:1")
        if not isinstance(whole, list):
            raise BadInput(f"{path}:1: expected a vector of operation maps")
        for i, obj in enumerate(whole):
            ev = _edn_event(obj, f"{path}: operation {i + 1}", len(events))
            if ev is not None:
                events.append(ev)
        return events
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        where = f"{path}:{lineno}"
        ev = _edn_event(parse_edn(line, where), where, len(events))
        if ev is not None:
            events.append(ev)
    return events


# ---------------------------------------------------------------------------
# Loading, with the model inferred from the operations
# ---------------------------------------------------------------------------


def infer_model(events: Iterable[Event], meta: dict | None = None) -> str:
    """The sequential specification a history speaks, from ``#meta`` or its operations.

    ``read/write/cas`` → ``register``; ``append`` or plain ``get/put`` → ``kv``;
    ``delete``, ``txn`` or outputs carrying etcd revisions → ``etcd-kv``.
    """
    if meta and isinstance(meta.get("model"), str):
        return meta["model"]
    fs: set[str] = set()
    dict_outputs = False
    for ev in events:
        fs.add(ev.f)
        if ev.type == "ok" and isinstance(ev.value, dict):
            dict_outputs = True
    if fs and fs <= {"read", "write", "cas"}:
        return "register"
    if fs & {"delete", "txn"} or (dict_outputs and fs <= {"get", "put", "delete", "txn"}):
        return "etcd-kv"
    if fs and fs <= {"get", "put", "append"}:
        return "kv"
    return "unknown"


def load(path: str | os.PathLike, model: str | None = None) -> History:
    """Read any supported history; BadInput for unreadable or malformed files."""
    path = os.fspath(path)
    fmt = detect_format(path)
    meta: dict = {}
    try:
        if fmt == JSONL:
            meta = read_meta(path)
            events = read_jsonl(path)
        elif fmt == JEPSEN_LOG:
            events = read_jepsen_log(path)
        else:
            events = read_edn(path)
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not UTF-8 text") from None
    except OSError as e:
        raise BadInput(f"{path}: cannot read history: {e.strerror or e}") from None
    if not events:
        raise BadInput(f"{path}: the history has no client operations")
    name = model or infer_model(events, meta)
    return History(path, fmt, tuple(events), name, meta)

"""Counterexample traces in the Informal Trace Format (ITF).

ITF is Apalache's JSON trace format (ADR-015,
https://apalache-mc.org/docs/adr/015adr-trace.html): a top-level ``#meta``
object, ``vars`` (the variable names), ``states`` (one object per state,
mapping every variable to a value) and an optional ``loop`` index for lassos.
Values are JSON booleans, strings and numbers, arrays for sequences, objects
for records, and the tagged forms ``{"#tup": [...]}``, ``{"#set": [...]}``,
``{"#map": [[k, v], ...]}`` and ``{"#bigint": "123"}`` (integers outside
JavaScript's safe range). Writing ITF means any ITF viewer opens our traces.

What kubemc adds, all inside ``#meta`` so viewers ignore it: at the top, the
property, engine, seed, model, bounds, mutant and the exact command that
reproduces the trace; on each state, the action and its parameters that led
to it. That is enough for ``kubemc trace replay`` to rebuild the machine and
re-execute the behaviour step by step.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kubemc.checker.errors import MISSING_ENVIRONMENT, BadInput, KubemcError

FORMAT_URL = "https://apalache-mc.org/docs/adr/015adr-trace.html"
_SAFE = 2 ** 53 - 1


def encode(value: Any) -> Any:
    """A Python value as an ITF value."""
    if isinstance(value, bool) or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if -_SAFE <= value <= _SAFE else {"#bigint": str(value)}
    if isinstance(value, tuple):
        return {"#tup": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return {"#set": [encode(v) for v in sorted(value, key=_order)]}
    if isinstance(value, Mapping):
        if all(isinstance(k, str) and not k.startswith("#") for k in value):
            return {k: encode(v) for k, v in value.items()}
        return {"#map": [[encode(k), encode(v)] for k, v in
                         sorted(value.items(), key=lambda kv: _order(kv[0]))]}
    if value is None:
        return {"#unserializable": "None"}
    raise TypeError(f"cannot write {type(value).__name__} to ITF: {value!r}")


def decode(value: Any) -> Any:
    """An ITF value as a Python value (sequences become tuples). ``value``
    must have passed :func:`check_value`; a record inside a set or as a map
    key has no hashable Python form and is refused with BadInput."""
    if isinstance(value, list):
        return tuple(decode(v) for v in value)
    if isinstance(value, dict):
        if "#tup" in value:
            return tuple(decode(v) for v in value["#tup"])
        try:
            if "#set" in value:
                return frozenset(decode(v) for v in value["#set"])
            if "#map" in value:
                return {decode(k): decode(v) for k, v in value["#map"]}
        except TypeError:
            raise BadInput("a #set element or #map key is a record or a map, which "
                           "kubemc's models never use as one") from None
        if "#bigint" in value:
            return int(value["#bigint"])
        if "#unserializable" in value:
            return None if value["#unserializable"] == "None" else value["#unserializable"]
        return {k: decode(v) for k, v in value.items() if k != "#meta"}
    return value


def _order(v):
    return (type(v).__name__, repr(v))


def build(meta: Mapping[str, Any], views: list[Mapping[str, Any]],
          actions: list[tuple[str, tuple]], loop: int | None = None) -> dict:
    """Assemble a trace: ``actions[k]`` is the step that led to ``views[k]``
    (``actions[0]`` is the initial state's pseudo-action ``("Init", ())``)."""
    if len(views) != len(actions):
        raise ValueError("one action per state")
    variables = list(views[0].keys()) if views else []
    states = []
    for index, (view, (name, params)) in enumerate(zip(views, actions)):
        state = {"#meta": {"index": index, "action": name,
                           "params": [encode(p) for p in params]}}
        state.update({k: encode(view[k]) for k in variables})
        states.append(state)
    top = {"#meta": {"format": "ITF", "format-description": FORMAT_URL,
                     "source": "kubemc", **meta},
           "vars": variables, "states": states}
    if loop is not None:
        top["loop"] = loop
    return top


def write(path: Path, trace: dict) -> Path:
    """Write ``trace`` atomically and exclusively; return the path written.

    Atomically: a reader never sees half a trace, because the text goes to a
    unique temporary file first. Exclusively: the final name is created with
    ``os.link``, which fails when the name exists, so two runs writing into
    one directory at once never overwrite each other; the loser takes the
    next free name (``stem-1.itf.json``, ``stem-2.itf.json`` …). A check
    for a free name followed by a rename would race.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_text(path, json.dumps(trace, indent=1) + "\n")
    except OSError as exc:
        raise TraceNotWritten(path.parent, exc, trace) from None


def write_text(path: Path, text: str, *, series: bool = True) -> Path:
    """Write ``text`` to a new file in ``path``'s (existing) directory,
    atomically and exclusively as :func:`write` does; return the path written.
    ``series``: take the next free name of ``path``'s series when it is taken;
    otherwise a taken name raises FileExistsError. Never overwrites."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:100]}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        return _link_fresh(Path(tmp), path, series)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


_TAKEN_NAMES = 10_000


def _link_fresh(tmp: Path, path: Path, series: bool) -> Path:
    """Give ``tmp`` the first free name of ``path``'s series (or ``path`` alone)."""
    for candidate in _candidates(path, series):
        try:
            os.link(tmp, candidate)
            return candidate
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
            # A file system without hard links (vfat, some FUSE mounts):
            # O_EXCL keeps the name exclusive; the copy is not atomic there.
            return _copy_exclusive(tmp, candidate, series)
    raise FileExistsError(errno.EEXIST, f"{path.name} is taken" if not series else
                          f"{_TAKEN_NAMES} names like {path.name} are taken")


def _copy_exclusive(tmp: Path, path: Path, series: bool) -> Path:
    data = tmp.read_bytes()
    for candidate in _candidates(path, series):
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return candidate
    raise FileExistsError(errno.EEXIST, f"{path.name} is taken" if not series else
                          f"{_TAKEN_NAMES} names like {path.name} are taken")


def _candidates(path: Path, series: bool):
    return _series(path) if series else (path,)


def _series(path: Path):
    """``path``, then ``stem-1.ext``, ``stem-2.ext`` … (``.itf.json`` is one
    extension)."""
    name = path.name
    ext = ".itf.json" if name.endswith(".itf.json") else path.suffix
    stem = name[: len(name) - len(ext)] if ext else name
    yield path
    for n in range(1, _TAKEN_NAMES):
        yield path.with_name(f"{stem}-{n}{ext}")


def fresh_path(directory: Path, stem: str) -> Path:
    """The first name of the series that is free now: a good first guess
    for :func:`write`, which takes the next one if another run wins the race."""
    directory = Path(directory)
    return next(p for p in _series(directory / f"{stem}.itf.json") if not p.exists())


class TraceNotWritten(KubemcError):
    """A trace could not be written (the directory vanished, the disk is
    full, the file system is read-only): the machine lacks somewhere to write."""

    exit_code = MISSING_ENVIRONMENT

    def __init__(self, directory: Path, exc: OSError, trace: Mapping[str, Any]):
        #: the trace's ``#meta``: what was found, for a result that says so
        self.meta = trace.get("#meta", {})
        reason = exc.strerror or str(exc)
        hint = ("free some space or name another directory with --trace-dir"
                if exc.errno in (errno.ENOSPC, errno.EDQUOT)
                else "name a writable directory with --trace-dir")
        super().__init__(f"cannot write a trace into {shown(directory)}: {reason}; {hint}")


def writable_directory(directory: Path) -> Path:
    """Refuse, before any work is done, a trace directory that cannot be
    written: a file, or a directory (or the nearest existing parent of a
    missing one) without write permission. Nothing is created here; a run
    whose properties hold leaves no directory behind."""
    directory = Path(directory)
    probe = directory
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        what = "is a file" if probe == directory else f"lies under {shown(probe)}, a file"
        raise BadInput(f"{shown(directory)} {what}, not a directory: name a directory "
                       "(it is created when a trace is written)")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise BadInput(f"{shown(probe)} is not writable: name a writable directory")
    return directory


# ---------------------------------------------------------------------------
# reading: every check is made before the trace is used, and anything wrong
# is one BadInput line that names the place
# ---------------------------------------------------------------------------

#: Committed traces are at most ~130 kB and nest 15 deep; these ceilings are
#: far above what any kubemc run writes and far below what hurts.
MAX_BYTES = 64 * 2 ** 20
MAX_DEPTH = 100
#: An integer beyond this many digits is no state of a bounded model, and
#: converting longer digit strings costs quadratic time.
MAX_DIGITS = 1000
TAGS = ("#tup", "#set", "#map", "#bigint", "#unserializable")
_INTEGER = re.compile(r"-?[0-9]+")


def shown(path: Path | str) -> str:
    """A file name fit for a one-line message: control characters escaped,
    an over-long name shortened in the middle."""
    text = str(path).encode("unicode_escape", "backslashreplace").decode("ascii")
    return text if len(text) <= 160 else f"{text[:80]}…{text[-70:]}"


def read(path: str | Path) -> dict:
    """Load a trace and check it is well-formed ITF; anything wrong is one
    BadInput line."""
    source = shown(path)
    trace = parse(_read_text(Path(path), source), source)
    check_trace(trace, source)
    return trace


def _read_text(path: Path, source: str) -> str:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise BadInput(f"{source}: no such file") from None
    except OSError as exc:  # a directory, no permission, a symlink loop, a name too long
        raise BadInput(f"{source}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise BadInput(f"{source}: larger than {MAX_BYTES // 2 ** 20} MiB: not a trace "
                       "kubemc can read")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{source}: not UTF-8 text (byte {exc.start}): not an ITF trace") \
            from None


class _Refused(ValueError):
    pass


def _parse_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_DIGITS:
        raise _Refused(f"an integer of {len(digits.lstrip('-')):,} digits "
                       f"(at most {MAX_DIGITS} are read)")
    return int(digits)


def _parse_float(text: str):
    raise _Refused(f"the number {text[:40]} is not an integer (ITF numbers are integers)")


def _parse_constant(text: str):
    raise _Refused(f"{text} is not an ITF value")


def parse(text: str, source: str) -> Any:
    """JSON text as Python values, refusing what no trace holds: fractions,
    NaN, integers thousands of digits long, nesting deeper than MAX_DEPTH."""
    try:
        value = json.loads(text, parse_int=_parse_int, parse_float=_parse_float,
                           parse_constant=_parse_constant)
    except _Refused as exc:
        raise BadInput(f"{source}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise BadInput(f"{source}: not JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise BadInput(f"{source}: JSON nested deeper than {MAX_DEPTH} levels") from None
    _check_depth(value, source)
    return value


def _check_depth(value: Any, source: str) -> None:
    """Iteratively, so a deep document cannot exhaust the stack here."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadInput(f"{source}: JSON nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def check_trace(trace: Any, source: str) -> None:
    """The shape ADR-015 gives a trace, and every state value well-formed."""
    if not isinstance(trace, dict) or not isinstance(trace.get("states"), list) \
            or not isinstance(trace.get("vars"), list):
        raise BadInput(f"{source}: not an ITF trace (needs 'vars' and 'states')")
    if "#meta" in trace and not isinstance(trace["#meta"], dict):
        raise BadInput(f"{source}: '#meta' is {_kind(trace['#meta'])}, not an object")
    for i, name in enumerate(trace["vars"]):
        if not isinstance(name, str):
            raise BadInput(f"{source}: vars[{i}] is {_kind(name)}, not a variable name")
    states = trace["states"]
    if not states:
        raise BadInput(f"{source}: 'states' is empty: a trace starts with its initial state")
    for i, state in enumerate(states):
        if not isinstance(state, dict):
            raise BadInput(f"{source}: state {i} is not an object")
        meta = state.get("#meta", {})
        if not isinstance(meta, dict):
            raise BadInput(f"{source}: state {i}: '#meta' is {_kind(meta)}, not an object")
        if not isinstance(meta.get("action", ""), str):
            raise BadInput(f"{source}: state {i}: the action is {_kind(meta['action'])}, "
                           "not a name")
        params = meta.get("params", [])
        if not isinstance(params, list):
            raise BadInput(f"{source}: state {i}: 'params' is {_kind(params)}, not a list")
        for k, p in enumerate(params):
            check_value(p, f"{source}: state {i}, parameter {k}")
        for name, value in state.items():
            if name != "#meta":
                check_value(value, f"{source}: state {i}, variable {shown(name)!r}")
    loop = trace.get("loop")
    if loop is not None and (not isinstance(loop, int) or isinstance(loop, bool)
                             or not 0 <= loop < len(states)):
        raise BadInput(f"{source}: 'loop' is {shown(repr(loop))}, not the index of a state "
                       f"(0 to {len(states) - 1})")


def check_value(value: Any, where: str) -> None:
    """An ITF value: raise BadInput naming ``where`` when it is not one.
    Recursion is safe: :func:`parse` bounded the depth."""
    if isinstance(value, (bool, str, int)):
        return
    if isinstance(value, list):
        for i, v in enumerate(value):
            check_value(v, where)
        return
    if not isinstance(value, dict):
        raise BadInput(f"{where}: {_kind(value)} is not an ITF value")
    tags = [k for k in value if k in TAGS]
    if not tags:
        for k, v in value.items():
            if k != "#meta":
                check_value(v, where)
        return
    if len(value) != 1:
        raise BadInput(f"{where}: {tags[0]} with other keys ({', '.join(map(repr, value))})")
    tag, body = tags[0], value[tags[0]]
    if tag in ("#tup", "#set", "#map") and not isinstance(body, list):
        raise BadInput(f"{where}: {tag} holds {_kind(body)}, not a list")
    if tag == "#map":
        for i, pair in enumerate(body):
            if not (isinstance(pair, list) and len(pair) == 2):
                raise BadInput(f"{where}: #map entry {i} is not a [key, value] pair")
            check_value(pair[0], where)
            check_value(pair[1], where)
    elif tag in ("#tup", "#set"):
        for v in body:
            check_value(v, where)
    elif tag == "#bigint":
        if not (isinstance(body, str) and _INTEGER.fullmatch(body)):
            raise BadInput(f"{where}: #bigint holds {shown(repr(body))[:60]}, not a decimal "
                           "integer")
        if len(body.lstrip("-")) > MAX_DIGITS:
            raise BadInput(f"{where}: a #bigint of {len(body.lstrip('-')):,} digits "
                           f"(at most {MAX_DIGITS} are read)")
    elif not isinstance(body, str):
        raise BadInput(f"{where}: #unserializable holds {_kind(body)}, not a string")


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             int: "an integer", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)

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

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from checker.errors import BadInput

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
    """An ITF value as a hashable Python value (sequences become tuples)."""
    if isinstance(value, list):
        return tuple(decode(v) for v in value)
    if isinstance(value, dict):
        if "#tup" in value:
            return tuple(decode(v) for v in value["#tup"])
        if "#set" in value:
            return frozenset(decode(v) for v in value["#set"])
        if "#map" in value:
            return {decode(k): decode(v) for k, v in value["#map"]}
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
    """Write atomically: a reader never sees half a trace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(trace, fh, indent=1)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def fresh_path(directory: Path, stem: str) -> Path:
    """A path in directory that names no existing file: never overwrite."""
    directory = Path(directory)
    candidate = directory / f"{stem}.itf.json"
    n = 1
    while candidate.exists():
        candidate = directory / f"{stem}-{n}.itf.json"
        n += 1
    return candidate


def read(path: str | Path) -> dict:
    """Load and shape-check a trace; anything wrong is one BadInput line."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read: {exc}") from None
    try:
        trace = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path}: not JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(trace, dict) or not isinstance(trace.get("states"), list) \
            or not isinstance(trace.get("vars"), list):
        raise BadInput(f"{path}: not an ITF trace (needs 'vars' and 'states')")
    for i, s in enumerate(trace["states"]):
        if not isinstance(s, dict):
            raise BadInput(f"{path}: state {i} is not an object")
    return trace

"""The files a conformance run writes: the history, the report, and each
violation's window as history events and as an ITF trace.

Files a run writes into its output directory (always when a check fails;
also on success when ``--out`` is given):

``history.jsonl``           every event of the run (:mod:`conformance.history`
                            format; the ``#meta`` line says how it was made)
``kv-history.jsonl``        exactly what the linearizability checker was given
                            (model ``etcd-kv``): ``kubemc check-history`` reads it
``report.json``             the ``--json`` document
``violations/CHECK.jsonl``  per failed check: the smallest failing window, as
                            history events (invoke / completion lines)
``violations/CHECK.itf.json``  the same window as an ITF trace, one state per
                            operation, for ITF viewers and ``kubemc trace show``
``etcd-m*.log``             the local cluster's member logs

Every file is created exclusively (:mod:`conformance.report.outputs`): a run
writes into a new or empty directory, never overwrites a file and never
removes one it did not create.
"""

from __future__ import annotations

import json
from pathlib import Path

from kubemc.checker import itf
from kubemc.conformance.history import Event
from kubemc.conformance.report.outputs import create_exclusive, create_fresh, make_out_dir


def ops_to_events(ops) -> list[Event]:
    """Operations back to invoke / completion events, in time order (an
    ``info`` operation gets only its invocation: pending at the end reads as info)."""
    evs = []
    for op in ops:
        evs.append((op.call, 0, Event("invoke", op.process, op.f, op.key, op.input, op.call, None)))
        if op.status != "info":
            evs.append((op.ret, 1, Event(op.status, op.process, op.f, op.key, op.output, op.ret, None)))
    evs.sort(key=lambda t: (t[0], t[1]))
    return [Event(e.type, e.process, e.f, e.key, e.value, e.time, i) for i, (_, _, e) in enumerate(evs)]


def plain(v):
    """A JSON value ITF can encode (no floats, no nulls inside lists)."""
    if isinstance(v, float):
        return str(v)
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items() if x is not None}
    if isinstance(v, (list, tuple)):
        return [plain(x) if x is not None else "null" for x in v]
    return "null" if v is None else v


def jsonl_writer(events, meta: dict | None = None):
    """A ``write(fh)`` for :func:`conformance.report.outputs.create_exclusive`:
    the history format of :mod:`conformance.history`, one event per line."""
    def write(fh):
        if meta:
            fh.write(json.dumps({"#meta": meta}, separators=(",", ":"), default=str) + "\n")
        for ev in events:
            fh.write(json.dumps(ev.to_json(), separators=(",", ":"), default=str) + "\n")
    return write


def json_writer(doc):
    def write(fh):
        json.dump(doc, fh, indent=1, default=str)
        fh.write("\n")
    return write


def write_violation(out_dir: Path, violation, meta: dict) -> dict:
    """Write one violation's window (JSONL + ITF) under fresh names; return the paths.

    The ITF states are the window's operations. The trace's ``#meta`` names
    ``model: etcd`` and ``engine: conform-etcd`` for every target that writes
    operation windows this way (etcd, Maelstrom): the labels the first of them
    gave, kept because trace readers know them.
    """
    window = list(violation.window) or list(violation.ops)
    views = [{"op": plain(op.to_json())} for op in window]
    actions = [(op.f, (op.process, op.key or "", op.status)) for op in window]
    config = {"target": meta.get("target", "etcd"), "run_id": meta.get("run_id", ""),
              "clients": meta.get("clients", 0), "nemesis": ",".join(meta.get("nemesis") or ()) or "none"}
    trace = itf.build({"property": violation.check, "kind": "history", "description": violation.message,
                       "model": "etcd", "engine": "conform-etcd", "seed": meta.get("seed"),
                       "config": config, "command": meta.get("command", "")}, views, actions)
    return write_window(out_dir, violation, window, meta, trace)



def write_window(out_dir: Path, violation, window: list, meta: dict, trace: dict) -> dict:
    """``violations/CHECK.jsonl`` (``window`` as history events) and
    ``violations/CHECK.itf.json`` (``trace``) under fresh names sharing one
    stem; return the paths.

    Why one function: every target names, places and pairs its violation
    files the same way; only the ITF states a target shows differ.
    """
    vdir = Path(out_dir) / "violations"
    vdir.mkdir(parents=True, exist_ok=True)
    jsonl = create_fresh(vdir, violation.check, ".jsonl",
                         jsonl_writer(ops_to_events(window), {**meta, "check": violation.check,
                                                              "message": violation.message}))
    itf_path = create_fresh(vdir, jsonl.name[: -len(".jsonl")], ".itf.json", json_writer(trace))
    return {"window_jsonl": str(jsonl), "window_itf": str(itf_path)}


def write_json_atomic(path: Path, doc: dict) -> None:
    """Write a new JSON file; FileExistsError rather than overwrite one."""
    create_exclusive(path, json_writer(doc))


def start_outputs(result, out_dir: Path, recorder, meta: dict, *, default: bool) -> Path:
    """Create the output directory and write ``history.jsonl`` into it;
    note both on ``result`` (``out_dir``, ``history_path``).

    ``default``: ``out_dir`` is the run's own ``./kubemc-out/…`` directory,
    which must be new (the run id is in its name); a ``--out`` directory was
    checked empty before the run, and may since hold the run's own files
    (an etcd cluster's logs).
    """
    if default:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        out_dir.mkdir()
    else:
        make_out_dir(out_dir)
    result.out_dir = str(out_dir)
    hist = create_exclusive(out_dir / "history.jsonl", jsonl_writer(recorder.events(), meta))
    result.history_path = str(hist)
    return out_dir

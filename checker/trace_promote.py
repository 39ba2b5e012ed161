"""``kubemc trace promote FILE``: move a new counterexample into the committed
traces, ``traces/<component>/<mutant or property>.itf.json``.

Why a command and not ``mv``: a committed trace is a test — the suite
replays every one and expects it to reproduce — so a trace is promoted only
after it has been shown to replay on the model as it is now and to violate
the property its ``#meta`` names, with every recorded state still the
model's. Its place is derived, not chosen: the component comes from the
catalog (the model's component, not a field the trace may get wrong) and
the name from the mutant, or from the property for a trace of the correct
model. The ``.itf.json`` ending is kept so ITF viewers and the suite's
glob find it.

Nothing is lost: an existing trace is never overwritten unless ``--force``
says so; the new file is written atomically (a temporary file in the
target directory, then a hard link, or a rename with ``--force``), and the
source is removed only once its copy is on disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import attrs

from kubemc.checker import itf, traces
from kubemc.checker.components import UnknownName, component_of, model_named
from kubemc.checker.errors import BadInput


@attrs.frozen(slots=True)
class Promoted:
    source: Path
    target: Path
    replaced: bool
    #: what the replay said (``trace replay``'s message)
    replay: str
    #: "removed", or why the source could not be removed
    source_note: str = "removed"

    def summary(self) -> str:
        verb = "replaced" if self.replaced else "promoted"
        return (f"{verb} {itf.shown(self.target)} with {itf.shown(self.source)} "
                f"({self.source_note}): {self.replay}")


def promote(source: str | Path, traces_dir: str | Path = "traces", *,
            force: bool = False) -> Promoted:
    """Validate the trace at ``source``, move it to its place under
    ``traces_dir`` and return what was done. Raises BadInput, with one line
    saying why and what to do, when the trace does not replay, does not
    violate what it says, or would overwrite a trace without ``force``."""
    source = Path(source)
    shown = itf.shown(source)
    trace = traces.load(source)
    target = Path(traces_dir) / component_name(trace, shown) / f"{stem(trace)}.itf.json"
    if target.exists() and target.resolve() == source.resolve():
        raise BadInput(f"{shown} is already in its place: nothing to promote")
    if target.exists() and not force:
        raise BadInput(f"{itf.shown(target)} exists: keep it, or pass --force to replace it "
                       f"with {shown}")
    _check_mutant_target(trace, shown)
    result = traces.replay(trace, source=shown)
    if not result.reproduced:
        raise BadInput(f"{shown} does not reproduce ({result.message}): only a trace that "
                       "violates what it says is promoted; regenerate it with the command "
                       "in its #meta")
    if result.divergences:
        raise BadInput(f"{shown} replays, but its recorded states differ from the model's "
                       f"at steps {', '.join(map(str, result.divergences))}: regenerate it "
                       "with the command in its #meta")
    replaced = _write(target, json.dumps(trace, indent=1) + "\n", force=force)
    try:
        source.unlink()
        note = "removed"
    except OSError as exc:  # the copy is in place; the user removes the source
        note = f"not removed: {exc.strerror or exc}"
    return Promoted(source, target, replaced, result.message, note)


def component_name(trace: dict, source: str) -> str:
    """The component of the trace's model, as the catalog says."""
    name = (trace.get("#meta") or {}).get("model")
    if not isinstance(name, str):
        raise BadInput(f"{source}: #meta names no model: not a kubemc trace")
    try:
        return component_of(model_named(name)).name
    except UnknownName:
        raise BadInput(f"{source}: names model {name!r}, which this kubemc does not "
                       "have") from None


def _check_mutant_target(trace: dict, source: str) -> None:
    """A trace filed under a mutant's name must show the property that mutant
    is declared to violate: that is what its committed trace stands for."""
    meta = trace.get("#meta") or {}
    mutant = meta.get("mutant")
    if mutant in (None, "none"):
        return
    declared = model_named(meta["model"]).mutants.get(mutant)
    if declared is None:
        raise BadInput(f"{source}: names mutant {itf.shown(str(mutant))!r}, which model "
                       f"{meta['model']} does not carry")
    if declared.violates != meta.get("property"):
        raise BadInput(f"{source}: mutant {mutant} is meant to violate {declared.violates}, "
                       f"but the trace shows {meta.get('property')}: promote a trace of "
                       f"`kubemc check --mutant {mutant}`, which checks that property")


def stem(trace: dict) -> str:
    """The file name a promoted trace takes: its mutant's, or, for a trace
    of the correct model, its property's."""
    meta = trace.get("#meta") or {}
    mutant = meta.get("mutant")
    name = mutant if mutant not in (None, "none") else meta.get("property")
    if not isinstance(name, str) or not name or os.sep in name or name.startswith("."):
        raise BadInput(f"#meta mutant/property {itf.shown(str(name))!r} cannot name a file")
    return name


def _write(target: Path, text: str, *, force: bool) -> bool:
    """Write ``text`` at ``target`` atomically; without ``force`` only if the
    name is free (checked by the link itself, so a race cannot overwrite).
    Returns whether a file was replaced."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if not force:
            itf.write_text(target, text, series=False)
            return False
        existed = target.exists()
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                   dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return existed
    except FileExistsError:
        raise BadInput(f"{itf.shown(target)} exists: keep it, or pass --force to "
                       "replace it") from None
    except OSError as exc:
        raise BadInput(f"cannot write {itf.shown(target)}: {exc.strerror or exc}; "
                       "name a writable directory with --traces-dir") from None

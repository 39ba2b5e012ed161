"""Where a run writes: paths checked before the run, files created exclusively.

Rules every runner follows (a run may take minutes; a bad path must not be
found after them, and a run must never destroy what it did not make):

* :func:`check_out_dir` — ``--out DIR`` is refused up front (exit 2) when it
  is a file, or a directory that already holds anything: the run would mix
  its files with someone else's, and could not tell them apart afterwards.
  A missing or empty directory is fine.
* :func:`check_new_file` — ``--junit FILE`` is refused up front when it is a
  directory, already exists, or its directory is missing.
* :func:`create_exclusive` — every file is written under a unique temporary
  name in its own directory (never the working directory, never ``/``),
  then *linked* into place, which fails if the name is taken: nothing is ever
  overwritten, and the temporary name is removed on every path, also on an
  exception or an interrupt.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from kubemc.checker.errors import BadInput


def check_out_dir(path: str | os.PathLike, flag: str = "--out") -> Path:
    """The output directory, checked: absent (created later) or empty."""
    p = Path(path)
    try:
        if p.is_symlink() and not p.exists():
            raise BadInput(f"{flag} {p}: a dangling symbolic link; remove it or choose another directory")
        if p.exists():
            if not p.is_dir():
                raise BadInput(f"{flag} {p}: exists and is not a directory; choose a new directory")
            if any(p.iterdir()):
                raise BadInput(f"{flag} {p}: already holds files; a run writes only into a new or "
                               "empty directory (choose another, or move the old files away)")
            if not os.access(p, os.W_OK | os.X_OK):
                raise BadInput(f"{flag} {p}: not writable")
        else:
            parent = _existing_parent(p)
            if not os.access(parent, os.W_OK | os.X_OK):
                raise BadInput(f"{flag} {p}: cannot create it: {parent} is not writable")
    except OSError as exc:
        raise BadInput(f"{flag} {p}: {exc.strerror or exc}") from None
    return p


def run_out_dir(out: str | None, target: str, run_id: str) -> Path:
    """Where a run of ``kubemc conform TARGET`` writes: ``--out``, or else a
    new ``./kubemc-out/conform-TARGET-RUNID`` (the run id makes it new)."""
    return Path(out) if out else Path.cwd() / "kubemc-out" / f"conform-{target}-{run_id}"


def dated_out_dir(target: str) -> Path:
    """Where a run with no run id (maelstrom, proxy) writes without ``--out``:
    ``./kubemc-out/TARGET/<date>T<time>``, or ``-1``, ``-2`` … after it, the
    first free name (two runs in one second)."""
    return fresh_name(Path("kubemc-out") / target, time.strftime("%Y%m%dT%H%M%S"), "")


def make_out_dir(path: Path, flag: str = "--out") -> Path:
    """Create the checked directory (or accept it empty, as checked)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"{flag} {path}: cannot create it: {exc.strerror or exc}") from None
    return path


def check_new_file(path: str | os.PathLike, flag: str) -> Path:
    """A file the run will create: not a directory, not there yet, in a
    writable directory that exists."""
    p = Path(path)
    try:
        if p.is_dir():
            raise BadInput(f"{flag} {p}: is a directory; give a file name, e.g. {p / 'report.xml'}")
        if p.exists() or p.is_symlink():
            raise BadInput(f"{flag} {p}: already exists; a run never overwrites a file "
                           "(remove it, or choose another name)")
        parent = p.parent if str(p.parent) else Path(".")
        if not parent.is_dir():
            raise BadInput(f"{flag} {p}: directory {parent} does not exist")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise BadInput(f"{flag} {p}: directory {parent} is not writable")
    except OSError as exc:
        raise BadInput(f"{flag} {p}: {exc.strerror or exc}") from None
    return p


def _existing_parent(p: Path) -> Path:
    q = p.absolute().parent
    while not q.exists():
        q = q.parent
    return q


def create_exclusive(path: str | os.PathLike, write: Callable[[IO], None], *,
                     binary: bool = False) -> Path:
    """Write a new file at ``path`` through ``write(fh)``; FileExistsError if
    the name is taken. Readers never see half a file: the content goes to a
    unique temporary name beside it first."""
    path = Path(path)
    directory = path.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)          # atomic, and refuses an existing name
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return path


def fresh_name(directory: Path, stem: str, suffix: str) -> Path:
    """``directory/stem{suffix}``, or ``stem-1``, ``stem-2`` … the first free
    one (a hint: :func:`create_exclusive` is what guarantees no overwrite)."""
    candidate, n = directory / f"{stem}{suffix}", 1
    while candidate.exists():
        candidate = directory / f"{stem}-{n}{suffix}"
        n += 1
    return candidate


def create_fresh(directory: Path, stem: str, suffix: str, write: Callable[[IO], None]) -> Path:
    """Like :func:`create_exclusive` under the first free ``stem[-n]suffix``
    name; two runs racing for one name each end with a file of their own."""
    for _ in range(1000):
        try:
            return create_exclusive(fresh_name(directory, stem, suffix), write)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free name for {stem}{suffix} in {directory}")

"""What the CLI does with an exception nobody expected: a bug in kubemc.

It must not look like a finding (exit 1 means "violated, trace written"), and
a traceback on the terminal is noise to a user and useless to a CI log
reader who cannot reproduce it. So the traceback goes to a report file of its
own — created exclusively under a fresh name, so two crashes never write
into one file and no existing file is touched — and the user gets one line
that names the file and says what to do with it.
"""

from __future__ import annotations

import sys
import tempfile
import traceback

from kubemc.checker.itf import shown


def report(exc: BaseException, argv: list[str] | None = None) -> str:
    """Write the traceback of ``exc`` to a fresh file; return the one line
    to print."""
    what = f"{type(exc).__name__}: {_first_line(exc)}"
    try:
        fd, path = tempfile.mkstemp(prefix="kubemc-crash-", suffix=".txt")
        with open(fd, "w") as fh:
            fh.write(f"kubemc {' '.join(sys.argv[:1] + list(argv or sys.argv[1:]))}\n\n")
            traceback.print_exception(exc, file=fh)
    except OSError as err:
        return (f"kubemc: internal error ({shown(what)}); the traceback could not be "
                f"written ({err.strerror or err}); please report this with the command")
    return (f"kubemc: internal error ({shown(what)}); this is a bug in kubemc, not in "
            f"the model: please report it with {path}, which holds the traceback")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else ""
    return line if len(line) <= 120 else line[:119] + "…"

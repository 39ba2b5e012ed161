"""How every kubemc command meets the user: usage errors as one line and
exit 2, and the exit-code contract (``checker.errors``) for whatever the
command raises.

Why a module of its own, below the CLI: ``kubemc`` (``checker.cli``) and the
stand-alone ``python -m kubemc.conformance.adapters.X.cli`` entry points must answer
alike, and the conformance layer may not import the CLI that sits above it
(``docs/layers.md``). Both build on this.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from kubemc.checker.errors import HOLDS, INTERNAL_ERROR, BadInput, KubemcError


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2.

    ``hint`` (optional) is appended to every usage error of this parser: the
    CLI uses it to say what to do when its registered subcommands are missing.
    """

    hint = ""

    def error(self, message):
        hint = f"; {self.hint}" if self.hint else ""
        raise BadInput(f"{message} (see {self.prog} --help){hint}")


def run_command(body: Callable[[], int], argv: list[str] | None = None) -> int:
    """Run ``body`` (parsing included) and return its exit code, turning what
    it raises into the code DESIGN.md fixes: a ``KubemcError`` is its one-line
    message and code, an interrupt 130, a closed pipe 0, and anything else a
    bug: one line naming the file that holds the traceback, exit 70 (never 1).
    ``argv`` is recorded in that file."""
    try:
        return body()
    except KubemcError as exc:
        print(f"kubemc: {' '.join(str(exc).splitlines())}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("kubemc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return HOLDS
    except Exception as exc:  # a bug in kubemc: never exit 1, never a bare traceback
        from kubemc.checker.crash import report

        print(report(exc, argv), file=sys.stderr)
        return INTERNAL_ERROR

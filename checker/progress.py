"""The live progress line of long runs, on stderr: ``kubemc check``'s
explore and swarm runs, and every ``kubemc conform`` run.

On a terminal it is one line rewritten in place (rich's ``Live``); in a CI
log, where rewriting makes noise, it is a plain line every ``every`` seconds.
It goes to stderr so that ``--json`` on stdout stays clean.

Why one class for the checker and the conformance runners: both promise the
same thing (rewritten on a terminal, throttled in a log, silent with
``--quiet`` or ``--json``), and each caller only composes its own text.
"""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.live import Live
from rich.text import Text


class ProgressLine:
    """``update(text)`` shows the current line; ``message(text)`` prints a
    line that stays (a phase, a warning) above it.

    ``transient``: the live line disappears when closed (the checker's: a
    summary follows) or stays (a conformance run's last figures).
    ``quiet_start``: in a log, the first line waits ``every`` seconds (a
    short run prints none). Use it as a context manager, or call
    :meth:`open` and :meth:`close`.
    """

    def __init__(self, enabled: bool = True, every: float = 10.0, *, transient: bool = True,
                 quiet_start: bool = False):
        self.enabled = enabled
        self.console = Console(stderr=True)
        self.interactive = enabled and self.console.is_terminal
        self.every = every
        self.transient = transient
        self.last = ""                 # the latest text given to update()
        self._live: Live | None = None
        self._last = time.monotonic() if quiet_start else 0.0

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()

    def open(self) -> ProgressLine:
        if self.interactive and self._live is None:
            self._live = Live(Text(""), console=self.console, transient=self.transient,
                              refresh_per_second=4)
            self._live.start()
        return self

    def update(self, line: str) -> None:
        if not self.enabled:
            return
        self.last = line
        if self._live is not None:
            self._live.update(Text(line))
            return
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            print(line, file=sys.stderr, flush=True)

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self._live is not None:
            self._live.console.print(text)
        else:
            print(text, file=sys.stderr, flush=True)

    def clear(self) -> None:
        """Blank the live line (before closing, when its figures would mislead)."""
        if self._live is not None:
            self._live.update(Text(""))

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def explore_line(label: str, stats) -> str:
    return (f"{label}: {stats.states:,} distinct states  depth {stats.depth}  "
            f"queue {stats.queue:,}  {stats.rate:,.0f} states/s  {stats.seconds:.0f} s")

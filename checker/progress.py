"""The live progress line of long runs, on stderr.

On a terminal it is one line rewritten in place (rich's ``Live``); in a CI
log, where rewriting makes noise, it is a plain line every ``every`` seconds.
"""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.live import Live
from rich.text import Text


class ProgressLine:
    def __init__(self, enabled: bool = True, every: float = 10.0):
        self.enabled = enabled
        self.console = Console(stderr=True)
        self.interactive = enabled and self.console.is_terminal
        self.every = every
        self._live = None
        self._last = 0.0

    def __enter__(self):
        if self.interactive:
            self._live = Live(Text(""), console=self.console, transient=True,
                              refresh_per_second=4)
            self._live.__enter__()
        return self

    def __exit__(self, *exc):
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    def update(self, line: str) -> None:
        if not self.enabled:
            return
        if self._live is not None:
            self._live.update(Text(line))
            return
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            print(line, file=sys.stderr, flush=True)


def explore_line(label: str, stats) -> str:
    return (f"{label}: {stats.states:,} distinct states  depth {stats.depth}  "
            f"queue {stats.queue:,}  {stats.rate:,.0f} states/s  {stats.seconds:.0f} s")

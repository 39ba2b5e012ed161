"""One signal -> exit code mapping for every conformance runner.

A runner stopped by a signal removes what it created, then exits with the
shell's convention, 128 + the signal's number, the same in every runner:

=========  ====  ==================================================
signal     code  how it arrives
=========  ====  ==================================================
SIGINT     130   Ctrl-C; Python raises ``KeyboardInterrupt``
SIGTERM    143   ``kill``, a CI job's timeout, ``docker stop``
SIGHUP     129   the terminal went away
=========  ====  ==================================================

Why one table: a CI script that stops a run and reads its exit status must
not have to know which target it ran (the etcd and Maelstrom runners once
answered SIGTERM with 143 and 130).
"""

from __future__ import annotations

import contextlib
import signal
import threading

#: the signals a runner turns into an orderly stop, with their exit codes
HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def exit_code(signum: int) -> int:
    """128 + the signal number: 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP."""
    return 128 + int(signum)


class Interrupted(BaseException):
    """A stop signal arrived: unwind through every ``finally``, then exit
    with :func:`exit_code` of :attr:`signum`. A ``BaseException`` so that no
    ``except Exception`` in a worker swallows it."""

    def __init__(self, signum: int):
        self.signum = signal.Signals(signum)
        super().__init__(self.signum.name)

    @property
    def exit_code(self) -> int:
        return exit_code(self.signum)


@contextlib.contextmanager
def signals_raise():
    """Turn SIGTERM and SIGHUP into :class:`Interrupted` in the main thread, so
    that the ``finally`` blocks that remove processes and namespaces run
    (SIGINT already raises ``KeyboardInterrupt``). Only the main thread can
    install handlers; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Interrupted(signum)

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)

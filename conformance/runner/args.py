"""Argument types and options shared by the ``kubemc conform`` targets.

Why every number is checked finite here, in argparse: ``--timeout inf`` or
``--time-limit nan`` parse as floats, pass every ``> 0`` test, and give a run
that never ends; refused at parse time, the user gets one line and exit 2.
"""

from __future__ import annotations

import argparse
import math

from kubemc.checker.errors import BadInput


def finite_float(name: str):
    """A finite number (range checks are the target's configuration's job)."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, not {text!r}") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"{name} must be a finite number, not {text!r}: "
                                             "a run must end")
        return v
    return parse


def positive_float(name: str):
    """A finite number of seconds > 0."""
    finite = finite_float(name)

    def parse(text: str) -> float:
        v = finite(text)
        if not v > 0:
            raise argparse.ArgumentTypeError(f"{name} must be positive, not {text!r}")
        return v
    return parse


def int_range(name: str, lo: int, hi: int):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, not {text!r}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{name} must be between {lo} and {hi}, not {v}")
        return v
    return parse


def add_seed_argument(parser: argparse.ArgumentParser) -> None:
    """``--seed``, for the targets whose workload and faults are drawn at random."""
    parser.add_argument("--seed", type=int_range("--seed", 0, 2**63 - 1), default=0, metavar="N",
                        help="seed of the workload and fault schedule (default 0)")


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """``--out``, ``--junit`` and ``--json``: a run's files and report are
    the same on every target that runs a suite (etcd, cri, cni)."""
    parser.add_argument("--out", metavar="DIR",
                        help="a new or empty directory for history, report and windows "
                             "(default: ./kubemc-out/… on violation only)")
    parser.add_argument("--junit", metavar="FILE", help="write a JUnit XML report (a new file)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")


def fault_names(flag: str, known: tuple[str, ...], text: str) -> tuple[str, ...]:
    """``a,b`` | ``none`` → the faults named, in order, each once; BadInput
    (one line, exit 2) for an empty list or a name not in ``known``."""
    names = [s.strip() for s in text.split(",") if s.strip()]
    if names == ["none"]:
        return ()
    if not names:
        raise BadInput(f"{flag}: give fault names ({','.join(known)}) or none")
    for n in names:
        if n not in known:
            raise BadInput(f"{flag}: unknown fault {n!r} (known: {', '.join(known)}, or none)")
    return tuple(dict.fromkeys(names))


def chosen_faults(text: str | None, parse, remote: bool, default: tuple) -> tuple:
    """The faults of ``--faults`` / ``--nemesis``: ``parse(text)`` when given;
    else none against a target the run did not start (``--endpoint(s)``: it
    is not the run's to kill or partition), ``default`` against its own."""
    if text is not None:
        return parse(text)
    return () if remote else default

"""Argument types shared by the ``kubemc conform`` targets.

Why every number is checked finite here, in argparse: ``--timeout inf`` or
``--time-limit nan`` parse as floats, pass every ``> 0`` test, and give a run
that never ends; refused at parse time, the user gets one line and exit 2.
"""

from __future__ import annotations

import argparse
import math


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

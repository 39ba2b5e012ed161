"""Which options of ``kubemc check`` apply to which engine.

An option the chosen engines do not read is refused, not ignored: a user who
writes ``--seed 7`` with the explore engine believes the run depends on it,
and a CI job that passes ``--max-states`` to hypothesis believes it is
bounded. Refusing says so before any work is done.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence

from kubemc.checker.errors import BadInput

#: option -> the engines that read it
APPLIES: Mapping[str, frozenset] = {
    "--seed": frozenset({"hypothesis", "simulate"}),
    "--profile": frozenset({"hypothesis"}),
    "--max-states": frozenset({"explore"}),
    "--bound": frozenset({"explore", "hypothesis", "simulate"}),
    "--walks": frozenset({"simulate"}),
    "--depth": frozenset({"simulate"}),
    "--time": frozenset({"simulate"}),
    "--workers": frozenset({"explore"}),
    "--ray": frozenset({"explore"}),
}


def refuse_inapplicable(engines: Sequence[str], given: Mapping[str, bool]) -> None:
    """``given`` maps an option to whether the user gave it."""
    for option, used in given.items():
        readers = APPLIES[option]
        if used and not readers & set(engines):
            raise BadInput(f"{option} applies to --engine {' or '.join(sorted(readers))}, not "
                           f"{', '.join(engines)}: drop it or choose an engine that uses it")


def positive(text: str) -> int:
    """argparse type of a count: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive count: give at least 1")
    return value


def seconds(text: str) -> float:
    """argparse type of a time budget: a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text[:40]} is not a positive, finite number "
                                         "of seconds") from None
    return value

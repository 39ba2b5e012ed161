"""``kubemc check-history FILE``: its arguments and its call into
:func:`conformance.checkhistory.run`, registered with the CLI in
``pyproject.toml`` (entry point group ``kubemc.commands``) because the CLI in
``checker`` may not import conformance (``docs/layers.md``).
"""

from __future__ import annotations

from kubemc.conformance.checkhistory import add_budget_arguments
from kubemc.conformance.checkhistory import run as check_history

HELP = ("check a history for linearizability (Jepsen/Knossos EDN logs, porcupine EDN, "
        "kubemc JSONL)")


def add_arguments(parser) -> None:
    parser.add_argument("file")
    parser.add_argument("--json", action="store_true")
    add_budget_arguments(parser)


def run(args) -> int:
    return check_history(args.file, as_json=args.json, budget=args.budget,
                         max_memory=args.max_memory)

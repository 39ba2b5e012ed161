"""``kubemc conform TARGET``: the command that validates a real
implementation against the model, one subcommand per registered target.

This module is registered in ``pyproject.toml`` (entry point group
``kubemc.commands``), and each target registers itself there too (group
``kubemc.conform``): a target module defines ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int`` (an exit code as DESIGN.md fixes them). So the CLI in
``checker`` never imports conformance (``docs/layers.md``), and adding a
target is one module and one line of ``pyproject.toml``.
"""

from __future__ import annotations

import sys
from types import ModuleType

from kubemc.checker.command import Parser, run_command
from kubemc.checker.errors import MissingEnvironment
from kubemc.checker.plugins import CONFORM, REINSTALL, registered

HELP = "validate a real implementation against the model"


def add_arguments(parser) -> None:
    targets = registered(CONFORM)
    sub = parser.add_subparsers(dest="target", required=True, parser_class=type(parser))
    for name, entry in targets.items():
        module = entry.load()
        target = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(target)


def run(args) -> int:
    return target_module(args.target).run(args)


def target_module(name: str) -> ModuleType:
    """The module of target ``name`` (``kubemc conform NAME``)."""
    try:
        return registered(CONFORM)[name].load()
    except KeyError:
        raise MissingEnvironment(f"no conform target {name!r} is registered; {REINSTALL}") \
            from None


def main_of(name: str, module: ModuleType, argv: list[str] | None = None) -> int:
    """``python -m kubemc.conformance.adapters.NAME.cli ARGS`` for target ``module``,
    answering exactly as ``kubemc conform NAME ARGS`` does (usage errors, exit
    codes, crash reports) without the CLI, which sits above this layer."""
    argv = sys.argv[1:] if argv is None else list(argv)

    def body() -> int:
        parser = Parser(prog=f"kubemc conform {name}", description=module.HELP)
        module.add_arguments(parser)
        return module.run(parser.parse_args(argv))

    return run_command(body, ["conform", name, *argv])

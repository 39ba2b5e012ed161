"""The subcommands and benchmarks that the layer above registers with the CLI.

Imports run one way (``docs/layers.md``): ``conformance`` may import
``checker``, never the reverse. Yet ``kubemc conform etcd``, ``kubemc audit``,
``kubemc check-history`` and ``kubemc bench conform-etcd`` are conformance's
code behind the one ``kubemc`` command. So conformance registers them in
``pyproject.toml`` as entry points, and the CLI finds them here through the
installed package's metadata, without naming a conformance module:

``kubemc.commands``
    a top-level subcommand: a module with ``HELP`` (one line for
    ``kubemc --help``), ``add_arguments(parser)`` and ``run(args) -> int``
``kubemc.conform``
    a ``kubemc conform TARGET``: a module with the same three names
``kubemc.bench``
    a ``kubemc bench NAME``: a function ``run(progress) -> dict``

The metadata is written by ``pip install``: after changing an entry point,
run ``python3 -m pip install -e .`` again.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

COMMANDS, CONFORM, BENCH = "kubemc.commands", "kubemc.conform", "kubemc.bench"

#: what to do when a group is empty: kubemc not installed, or installed before
#: the group's entry points existed
REINSTALL = ("kubemc's registered subcommands are missing from the installed metadata: "
             "install kubemc with `python3 -m pip install -e .` from its source tree")


def registered(group: str) -> dict[str, EntryPoint]:
    """The entry points of ``group``, by name, in name order (entry-point
    metadata keeps no declaration order, so the order is the name's)."""
    return {ep.name: ep for ep in sorted(entry_points(group=group), key=lambda ep: ep.name)}

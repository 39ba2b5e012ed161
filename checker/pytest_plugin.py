"""The pytest plugin, as pytest loads it: ``pytest --kubemc [COMPONENT ...]``.

Installing kubemc registers this module under the ``pytest11`` entry point
``kubemc``, so it is imported by *every* pytest run in that environment —
also runs that never ask for it. That is why it only declares options here
and imports nothing of kubemc's: without ``--kubemc`` it registers no hook
that runs during collection or tests and costs one small import. With
``--kubemc`` the items, the options' checks and the engines come from
``checker.pytest_items``. ``-p no:kubemc`` switches it off entirely.
"""

from __future__ import annotations

import pytest

ENGINE_CHOICES = ("explore", "hypothesis", "z3", "all")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kubemc", "kubemc: the models as test items")
    group.addoption("--kubemc", nargs="*", metavar="COMPONENT", default=None,
                    help="check kubemc's models of these components (none named: all), "
                         "one test item per (component, model, engine); put it after "
                         "the paths, or write --kubemc=store,apiserver")
    group.addoption("--kubemc-engine", action="append", choices=ENGINE_CHOICES,
                    metavar="ENGINE", help="explore (default), hypothesis, z3 or all; "
                                           "repeatable")
    group.addoption("--kubemc-mutant", metavar="NAME",
                    help="check a seeded bug: its items fail with the trace "
                         "(see `kubemc mutants`)")
    group.addoption("--kubemc-bound", action="append", default=[], metavar="KEY=VALUE",
                    help="override a bound of the models that have it (repeatable)")
    group.addoption("--kubemc-max-states", type=int, metavar="N",
                    help="stop exploring after N states (the item fails as UNDECIDED)")
    group.addoption("--kubemc-profile", choices=("ci", "deep"),
                    help="hypothesis profile (default ci: bounded, derandomized)")
    group.addoption("--kubemc-seed", type=int, metavar="N", help="hypothesis seed")
    group.addoption("--kubemc-trace-dir", default="kubemc-traces", metavar="DIR",
                    help="where counterexample traces are written, relative to the "
                         "directory pytest was started in (default: kubemc-traces)")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("kubemc", None) is None:
        return
    from kubemc.checker.pytest_items import ModelItems

    config.pluginmanager.register(ModelItems.from_config(config), "kubemc-items")

"""Checks every controller's test file runs on its catalog model: the
correct controller passes with every cover reached, and each mutant is
caught by both engines on the property it is meant to violate, with a trace
that replays. Shared so that each controller's tests state only what is
particular to it.
"""

from __future__ import annotations

from kubemc.checker import stateful, traces
from kubemc.checker.explore import explore
from kubemc.checker.run import targeted
from kubemc.properties.core import COVER


def assert_holds(model, unreached=(), **bounds):
    """The correct controller at ``bounds`` (default: the catalog's): no
    violation, a complete search, liveness decided, and every cover reached
    except those named in ``unreached`` (which must then be unreached: small
    bounds that do reach them belong in another test)."""
    machine = model.machine(**bounds)
    outcome = explore(machine, model.properties)
    assert outcome.counterexample is None, outcome.counterexample
    assert outcome.complete and not outcome.undecided
    covers = [p.name for p in model.properties if p.kind == COVER]
    assert covers and all(outcome.covers[c] == (c not in unreached) for c in covers), \
        outcome.covers
    return outcome


def assert_caught_by_explore(model, mutant, tmp_path):
    machine = model.machine(mutant)
    cex = explore(machine, targeted(model, mutant)).counterexample
    assert cex is not None, f"explore missed {mutant}"
    assert cex.prop.name == model.mutants[mutant].violates
    _replays(cex, model, machine, "explore", tmp_path)
    return cex


def assert_caught_by_hypothesis(model, mutant, tmp_path, profile="ci"):
    machine = model.hypothesis_machine(mutant)
    outcome = stateful.check(machine, targeted(model, mutant), profile=profile)
    cex = outcome.counterexample
    assert cex is not None, f"{mutant} escaped {outcome.examples} random runs"
    assert cex.prop.name == model.mutants[mutant].violates
    _replays(cex, model, machine, "hypothesis", tmp_path)
    return cex


def _replays(cex, model, machine, engine, tmp_path):
    path = traces.save(cex, tmp_path, model=model.name, machine=machine, engine=engine)
    assert traces.replay(traces.load(path)).reproduced

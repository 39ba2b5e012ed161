"""The Namespace controller: a namespace being deleted is emptied, then
released, then gone — never before its content."""

import pytest

from kubemc.checker.catalog.controllers import NAMESPACE
from kubemc.checker.explore import explore
from controller_checks import assert_caught_by_explore, assert_caught_by_hypothesis, assert_holds
from helpers import run
from kubemc.model.controllers.namespace import NS, NamespaceController
from kubemc.model.kernel import Step
from kubemc.properties.controllers import namespace as props

MUTANTS = sorted(NAMESPACE.mutants)


def test_the_correct_controller_passes_at_the_default_bounds():
    assert_holds(NAMESPACE)


def test_the_correct_controller_passes_with_two_pods_and_no_faults():
    assert_holds(NAMESPACE, pods=2, configmaps=0, crashes=0, write_failures=0)


@pytest.mark.parametrize("mutant", MUTANTS)
def test_each_mutant_is_caught_by_explore(mutant, tmp_path):
    cex = assert_caught_by_explore(NAMESPACE, mutant, tmp_path)
    assert (cex.loop is not None) == (mutant == "misses_content_events")


@pytest.mark.parametrize("mutant", MUTANTS)
def test_each_mutant_is_caught_by_hypothesis(mutant, tmp_path):
    assert_caught_by_hypothesis(NAMESPACE, mutant, tmp_path)


def test_releasing_early_also_breaks_the_finalizer_property():
    prop = next(p for p in props.PROPERTIES if p.name == "namespace_finalized_only_when_empty")
    cex = explore(NAMESPACE.machine("treats_terminating_as_gone"), [prop]).counterexample
    assert cex is not None and cex.prop is prop


def test_the_properties_can_fail_on_states_that_break_them():
    machine = NamespaceController()
    deleted = run(machine, Step("DeleteNamespace"))
    assert props.terminating(machine, deleted) and not props.gone(machine, deleted)
    # the namespace removed from the server by hand while a pod remains
    server = tuple(o for o in deleted[0] if o[0] != NS)
    orphaned = (server,) + deleted[1:]
    assert not props.no_orphans(machine, orphaned)
    released = (tuple((k, rv, (True, False) if k == NS else v) for k, rv, v in deleted[0]),) \
        + deleted[1:]
    assert not props.finalized_only_when_empty(machine, released)
    assert props.no_orphans(machine, deleted) and props.finalized_only_when_empty(machine, deleted)


def test_no_creation_in_a_terminating_namespace():
    machine = NamespaceController(creates=2)
    deleted = run(machine, Step("DeleteNamespace"))
    assert machine.apply(deleted, Step("Create", ("pods",))) is None
    assert machine.apply(deleted, Step("DeleteNamespace")) is None
    assert machine.apply(deleted, Step("Create", ("secrets",))) is None

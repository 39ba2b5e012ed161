"""The ServiceAccount and token controllers: every namespace gets its
default account and every account its token, restored after deletion, and
no token outlives its account."""

import pytest

from kubemc.checker.catalog.controllers import SERVICEACCOUNT
from controller_checks import assert_caught_by_explore, assert_caught_by_hypothesis, assert_holds
from helpers import run
from kubemc.model.controllers.serviceaccount import ServiceAccountControllers
from kubemc.model.kernel import Step
from kubemc.properties.controllers import serviceaccount as props

MUTANTS = sorted(SERVICEACCOUNT.mutants)


def test_the_correct_controllers_pass_with_a_user_account():
    # the catalog's default bounds take about 15 s and run in `kubemc check`;
    # here the bounds of the orphan-token mutant, where every cover but the
    # second namespace's is reached
    assert_holds(SERVICEACCOUNT, unreached=("serviceaccount_cover_new_namespace",),
                 namespace_creates=0, account_creates=1, max_objects=5)


def test_the_correct_controllers_pass_for_a_new_namespace_without_faults():
    assert_holds(SERVICEACCOUNT, crashes=0, max_objects=6)


@pytest.mark.parametrize("mutant", MUTANTS)
def test_each_mutant_is_caught_by_explore_as_a_lasso(mutant, tmp_path):
    cex = assert_caught_by_explore(SERVICEACCOUNT, mutant, tmp_path)
    assert cex.loop is not None


@pytest.mark.parametrize("mutant", MUTANTS)
def test_each_mutant_is_caught_by_hypothesis(mutant, tmp_path):
    assert_caught_by_hypothesis(SERVICEACCOUNT, mutant, tmp_path)


def test_the_goals_do_not_hold_before_the_controllers_act():
    machine = ServiceAccountControllers()
    (start,) = machine.init_states()
    # a namespace without its default account: not the desired state
    assert not props.default_and_token_present(machine, start)
    served = run(machine, Step("Reconcile", ("namespaces", "ns-0")), Step("Write"),
                 Step("Deliver"), Step("Reconcile", ("serviceaccounts", "ns-0/default")),
                 Step("Write"))
    assert props.default_and_token_present(machine, served)
    deleted = run(machine, Step("DeleteAccount", ("ns-0/default",)), state=served)
    assert not props.default_and_token_present(machine, deleted)
    assert not props.no_orphan_tokens(machine, deleted)
    assert props.cover_default_missing(machine, deleted)

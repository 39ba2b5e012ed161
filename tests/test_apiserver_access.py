"""The apiserver's access models: RBAC semantics of ``authorize`` (cases from
the Kubernetes RBAC reference), the ServiceAccount and token controllers,
the ``access`` and ``conflict`` machines under explore and hypothesis, and
their mutants caught with shortest, replayable counterexamples."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import reachable, run

from kubemc.checker import stateful
from kubemc.checker.catalog.apiserver_access import ACCESS, CONFLICT
from kubemc.checker.explore import explore
from kubemc.checker.run import targeted
from kubemc.model.apiserver.access import (
    CLUSTER_ROLE, CLUSTER_ROLE_BINDING, DEFAULT_POLICY, FORBIDDEN, NOT_FOUND, OK, ROLE,
    ROLE_BINDING, SERVICE_ACCOUNT, TOKEN_SECRET, UNAUTHORIZED, USER, Access, authorize,
    check_policy, service_account, user,
)
from kubemc.model.apiserver.conflict import CREATED_REVISION, Conflict
from kubemc.model.kernel import Step, UnknownMutant
from kubemc.properties.apiserver_access import (
    DEFAULT_POLICY_INTENT, acknowledged_updates_not_lost, intended_read, rules_allow_read,
    secret_read_authorized, some_update_acknowledged,
)

READ = (("get", "list", "watch"), ("secrets",), ())


def policy(roles, bindings):
    check_policy((roles, bindings))
    return (roles, bindings)


def rb(ns, ref, *subjects, name="b"):
    return (ROLE_BINDING, ns, name, ref, subjects)


def crb(ref, *subjects, name="c"):
    return (CLUSTER_ROLE_BINDING, "", name, ref, subjects)


SA_A = (SERVICE_ACCOUNT, "default", "a")
ALICE = (USER, "alice", "")


# ---------------------------------------------------------------------------
# authorize: the RBAC reference, case by case
# ---------------------------------------------------------------------------


def test_deny_by_default():
    assert not authorize(((), ()), user("alice"), "get", "secrets", "a", "db")


def test_a_rolebinding_grants_only_in_its_own_namespace():
    p = policy(((ROLE, "a", "reader", (READ,)),), (rb("a", (ROLE, "reader"), SA_A),))
    me = service_account("a")
    assert authorize(p, me, "get", "secrets", "a", "db")
    assert not authorize(p, me, "get", "secrets", "b", "db")
    assert not authorize(p, service_account("b"), "get", "secrets", "a", "db")


def test_a_clusterrole_bound_by_a_rolebinding_applies_only_in_that_namespace():
    p = policy(((CLUSTER_ROLE, "", "reader", (READ,)),), (rb("b", (CLUSTER_ROLE, "reader"),
                                                              ALICE),))
    assert authorize(p, user("alice"), "list", "secrets", "b")
    assert not authorize(p, user("alice"), "list", "secrets", "a")


def test_a_clusterrolebinding_grants_everywhere():
    p = policy(((CLUSTER_ROLE, "", "reader", (READ,)),), (crb((CLUSTER_ROLE, "reader"), ALICE),))
    assert all(authorize(p, user("alice"), "watch", "secrets", ns) for ns in ("a", "b", "z"))


def test_a_rolebinding_resolves_roles_of_its_own_namespace_only():
    p = policy(((ROLE, "a", "reader", (READ,)),), (rb("b", (ROLE, "reader"), ALICE),))
    assert not authorize(p, user("alice"), "get", "secrets", "b", "db")
    assert not authorize(p, user("alice"), "get", "secrets", "a", "db")


def test_permissions_are_additive():
    only_get = (("get",), ("secrets",), ())
    only_list = (("list",), ("secrets",), ())
    p = policy(((ROLE, "a", "g", (only_get,)), (ROLE, "a", "l", (only_list,))),
               (rb("a", (ROLE, "g"), ALICE), rb("a", (ROLE, "l"), ALICE, name="b2")))
    assert authorize(p, user("alice"), "get", "secrets", "a", "x")
    assert authorize(p, user("alice"), "list", "secrets", "a")
    assert not authorize(p, user("alice"), "watch", "secrets", "a")


def test_resource_names_restrict_gets_and_never_match_a_collection():
    named = (("get", "list"), ("secrets",), ("db",))
    p = policy(((ROLE, "a", "db", (named,)),), (rb("a", (ROLE, "db"), ALICE),))
    assert authorize(p, user("alice"), "get", "secrets", "a", "db")
    assert not authorize(p, user("alice"), "get", "secrets", "a", "other")
    assert not authorize(p, user("alice"), "list", "secrets", "a")


def test_wildcards_and_other_resources():
    everything = (("*",), ("*",), ())
    pods = (("get",), ("pods",), ())
    p = policy(((CLUSTER_ROLE, "", "all", (everything,)), (ROLE, "a", "pods", (pods,))),
               (crb((CLUSTER_ROLE, "all"), ALICE), rb("a", (ROLE, "pods"), SA_A)))
    assert authorize(p, user("alice"), "delete", "secrets", "q", "x")
    assert authorize(p, service_account("a"), "get", "pods", "a", "p")
    assert not authorize(p, service_account("a"), "get", "secrets", "a", "p")


def test_a_serviceaccount_subject_names_one_namespace():
    p = policy(((CLUSTER_ROLE, "", "r", (READ,)),), (crb((CLUSTER_ROLE, "r"), SA_A),))
    assert authorize(p, service_account("a"), "get", "secrets", "b", "db")
    assert not authorize(p, service_account("b"), "get", "secrets", "b", "db")
    assert not authorize(p, user("default"), "get", "secrets", "b", "db")


@pytest.mark.parametrize("bad, message", [
    (((), (crb((ROLE, "r"), ALICE),)), "can only reference a ClusterRole"),
    ((((ROLE, "", "r", (READ,)),), ()), "a Role has a namespace"),
    (((), ((ROLE_BINDING, "", "b", (ROLE, "r"), (ALICE,)),)), "a RoleBinding has a namespace"),
    (((), (rb("a", (ROLE, "r"), ("ServiceAccount", "default", "")),)), "bad subject"),
    ("nonsense", "documented shape"),
])
def test_rule_sets_the_api_rejects(bad, message):
    with pytest.raises(ValueError, match=message):
        check_policy(bad)


# ---------------------------------------------------------------------------
# the access machine: controllers, authentication, answers
# ---------------------------------------------------------------------------


def test_controllers_create_an_account_then_its_token_in_new_namespaces():
    m = Access()
    (s0,) = m.init_states()
    assert m.apply(s0, Step("CreateServiceAccount", ("team-a",))) is None  # no namespace yet
    s = run(m, Step("CreateNamespace", ("team-a",)))
    assert m.apply(s, Step("CreateToken", ("team-a",))) is None  # no account yet
    s = run(m, Step("CreateNamespace", ("team-a",)), Step("CreateServiceAccount", ("team-a",)),
            Step("CreateToken", ("team-a",)))
    assert m.existing_secrets(s[0], "team-a") == (TOKEN_SECRET,)
    assert m.tag(Step("CreateToken", ("team-a",))) == "system"


def test_a_token_authenticates_only_once_issued_and_answers_follow_rbac():
    m = Access()
    get_db = Step("Get", ("token:team-a", "team-a", "db"))
    s = run(m, Step("CreateNamespace", ("team-a",)), get_db)
    assert s[1][0] == UNAUTHORIZED
    prefix = (Step("CreateNamespace", ("team-a",)), Step("CreateServiceAccount", ("team-a",)),
              Step("CreateToken", ("team-a",)))
    assert run(m, *prefix, get_db)[1][0] == NOT_FOUND
    s = run(m, *prefix, Step("CreateSecret", ("team-a", "db")), get_db)
    assert s[1] == (OK, service_account("team-a"), "get", "team-a", ("db",))
    s = run(m, *prefix, Step("CreateSecret", ("team-a", "db")),
            Step("List", ("token:team-a", "team-a")))
    assert s[1][4] == ("db", TOKEN_SECRET)
    s = run(m, *prefix, Step("Get", ("user:alice", "team-a", TOKEN_SECRET)))
    assert s[1][0] == FORBIDDEN


def test_bad_bounds_are_refused():
    with pytest.raises(ValueError, match="not 'default-token'"):
        Access(secrets=(TOKEN_SECRET,))
    with pytest.raises(ValueError, match="system:"):
        Access(users=("system:admin",))
    with pytest.raises(UnknownMutant):
        Access(mutant="no_such_bug")
    with pytest.raises(ValueError, match="max_revision"):
        Conflict(2, 1)


def test_the_correct_access_model_discloses_secrets_and_only_allowed_ones():
    machine = ACCESS.machine()
    outcome = explore(machine, ACCESS.properties)
    assert outcome.complete and outcome.counterexample is None
    assert outcome.stats.states > 1000
    disclosed = {(s[1][1], s[1][3], n) for s in reachable(machine) if s[1] and s[1][0] == OK
                 for n in s[1][4]}
    # the property is not vacuous: secrets are read, across namespaces too
    assert (user("ops"), "team-a", TOKEN_SECRET) in disclosed
    assert (service_account("team-a"), "team-b", "db") in disclosed  # via team-b's binding
    assert (user("alice"), "team-b", "db") in disclosed
    assert not any(who == user("alice") and ns == "team-a" for who, ns, _ in disclosed)
    assert not any(who == service_account("team-b") for who, _, _ in disclosed)


def test_the_reference_is_stated_independently_of_the_machine():
    for identity in (user("alice"), user("ops"), service_account("team-a"),
                     service_account("team-b")):
        for ns in ("team-a", "team-b"):
            for verb, name in (("get", "db"), ("get", TOKEN_SECRET), ("list", ""),
                               ("watch", "")):
                assert rules_allow_read(DEFAULT_POLICY, identity, verb, ns, name or "db") == \
                    authorize(DEFAULT_POLICY, identity, verb, "secrets", ns, name)


def test_the_property_does_not_use_the_models_matchers():
    import kubemc.properties.apiserver_access as prop
    source = Path(prop.__file__).read_text()
    assert "from model.apiserver.access" not in source
    assert "import model.apiserver.access" not in source
    # a User subject stands for its name, a ServiceAccount subject for
    # system:serviceaccount:<ns>:<name> (the Kubernetes authenticator's names)
    p = policy(((ROLE, "a", "r", (READ,)),), (rb("a", (ROLE, "r"), SA_A),))
    assert rules_allow_read(p, service_account("a"), "get", "a", "x")
    assert not rules_allow_read(p, service_account("b"), "get", "a", "x")
    assert not rules_allow_read(p, user("default"), "get", "a", "x")


def test_resource_names_never_open_a_collection_and_the_mutant_does():
    named = (("get", "list", "watch"), ("secrets",), ("db",))
    p = policy(((CLUSTER_ROLE, "", "db", (named,)),), (rb("b", (CLUSTER_ROLE, "db"), ALICE),))
    loose = Access(policy=p, mutant="resource_names_match_collections")
    for verb in ("list", "watch"):
        assert not authorize(p, user("alice"), verb, "secrets", "b")
        assert not rules_allow_read(p, user("alice"), verb, "b", "db")
        assert loose._authorize(p, user("alice"), verb, "secrets", "b")
    assert loose._authorize(p, user("alice"), "get", "secrets", "b", "db")
    assert not loose._authorize(p, user("alice"), "get", "secrets", "b", "other")
    assert not loose._authorize(p, user("alice"), "list", "secrets", "a")


def test_the_default_intent_is_what_the_default_rule_set_grants():
    identities = (user("alice"), user("ops"), user("bob"), service_account("team-a"),
                  service_account("team-b"), service_account("team-c"))
    for identity in identities:
        for ns in ("team-a", "team-b", "team-c"):
            for verb, name in (("get", "db"), ("get", TOKEN_SECRET), ("list", ""),
                               ("watch", "")):
                assert intended_read(DEFAULT_POLICY_INTENT, identity, verb, ns, name) == \
                    authorize(DEFAULT_POLICY, identity, verb, "secrets", ns, name)


def test_the_correct_conflict_model_passes_and_acknowledges_updates():
    machine = CONFLICT.machine()
    outcome = explore(machine, CONFLICT.properties)
    assert outcome.complete and outcome.counterexample is None
    assert outcome.stats.states > 10_000
    states = reachable(machine)
    assert max(len(s[2]) for s in states) == machine.max_revision - CREATED_REVISION
    # a conflict happens: a client that read is sent back to reading unacknowledged
    (s0,) = machine.init_states()
    s = run(machine, Step("Read", (0,)), Step("Read", (1,)), Step("Update", (0,)),
            Step("Update", (1,)))
    assert [a[0] for a in s[2]] == [0] and s[1][1] == (0, 0, 0)


# ---------------------------------------------------------------------------
# the mutants, caught
# ---------------------------------------------------------------------------

MUTANTS = [(ACCESS, "rolebinding_ignores_namespace", secret_read_authorized, 3),
           (ACCESS, "resource_names_match_collections", secret_read_authorized, 3),
           (CONFLICT, "blind_update", acknowledged_updates_not_lost, 4)]


def case_id(x):
    return getattr(x, "name", x) if not callable(x) or hasattr(x, "name") else x.__name__


def replays(machine, cex, check) -> bool:
    state = cex.init
    for step, expected in cex.steps:
        state = machine.apply(state, step)
        assert state == expected
    return not check(machine, state)


@pytest.mark.parametrize("model, mutant, check, length", MUTANTS, ids=case_id)
def test_explore_finds_the_shortest_counterexample(model, mutant, check, length):
    machine = model.machine(mutant)
    cex = explore(machine, targeted(model, mutant)).counterexample
    assert cex is not None and cex.prop.name == model.mutants[mutant].violates
    assert len(cex.steps) == length
    assert replays(machine, cex, check)


@pytest.mark.parametrize("model, mutant, check, length", MUTANTS, ids=case_id)
def test_hypothesis_catches_the_mutant(model, mutant, check, length):
    machine = model.hypothesis_machine(mutant)
    outcome = stateful.check(machine, targeted(model, mutant), profile="ci")
    cex = outcome.counterexample
    assert cex is not None, f"{mutant} escaped {outcome.examples} runs"
    assert len(cex.steps) >= length
    assert replays(machine, cex, check)


@pytest.mark.parametrize("model", [ACCESS, CONFLICT], ids=lambda m: m.name)
def test_hypothesis_passes_the_correct_models(model):
    outcome = stateful.check(model.hypothesis_machine(), model.properties, profile="ci",
                             max_examples=40)
    assert outcome.counterexample is None and outcome.examples >= 40


def test_a_token_controller_that_never_issues_leaves_the_token_cover_unreached(monkeypatch):
    """The shared decision of the token controller (model/controllers/accounts.py)
    has teeth here too: with no token ever issued, no request is answered for
    a ServiceAccount, and the cover says so."""
    from kubemc.checker.catalog.apiserver_access import ACCESS
    from kubemc.checker.explore import explore
    from kubemc.model.apiserver import access

    assert explore(ACCESS.machine(), ACCESS.properties).covers[
        "access_cover_token_answered"]
    monkeypatch.setattr(access, "wants_token", lambda *args: False)
    outcome = explore(ACCESS.machine(), ACCESS.properties)
    assert outcome.covers["access_cover_token_answered"] is False


def test_a_read_that_never_happens_leaves_the_update_cover_unreached(monkeypatch):
    """conflict_cover_update_acknowledged: reached in the correct model; with
    no client ever reading (the mutation run's survivor of Conflict.read, under
    which acknowledged_updates_not_lost held with nothing to judge) it is
    unreached."""
    from kubemc.model.apiserver import conflict

    outcome = explore(CONFLICT.machine(), CONFLICT.properties)
    assert outcome.covers["conflict_cover_update_acknowledged"] is True
    (s0,) = CONFLICT.machine().init_states()
    assert not some_update_acknowledged(None, s0)
    original = conflict._with
    # a read leaves the client idle: nothing is ever read, so nothing sent
    monkeypatch.setattr(conflict, "_with",
                        lambda clients, c, value: clients if value[0] else
                        original(clients, c, value))
    outcome = explore(CONFLICT.machine(), CONFLICT.properties)
    assert outcome.counterexample is None
    assert outcome.covers["conflict_cover_update_acknowledged"] is False

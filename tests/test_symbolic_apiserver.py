"""The apiserver's z3 checks: the update rule's encoding against the
executable ``conflict`` machine (differential), its BMC and k-induction, the
``blind_update`` mutant's lost update found and replayed; the RBAC encoding
against ``authorize`` on generated rule sets (differential), the default
rule set proved equal to its separately written intent for all names, the
authorizer's mutants' counterexamples decoded into ``access`` behaviours
that replay and are written as traces, and the check's teeth: seeded bad
rule sets and broken matchers in the encoding are caught, never proved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import z3
from helpers import (
    assert_encoding_agrees_on_random_walks, assert_encoding_agrees_on_reachable_states,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubemc.checker import traces
from kubemc.checker.cli import main
from kubemc.checker.catalog.apiserver_access import CHECKS, OBLIGATIONS
from kubemc.checker.z3engine import (
    CTI, NOT_FOUND, PROVED, VIOLATED, k_induction, run_obligation,
)
from kubemc.model.apiserver.access import (
    CLUSTER_ROLE, CLUSTER_ROLE_BINDING, DEFAULT_POLICY, OK, ROLE, ROLE_BINDING, SERVICE_ACCOUNT,
    USER, Access, authorize,
)
from kubemc.model.kernel import UnknownMutant
from kubemc.properties.apiserver_access import (
    DEFAULT_POLICY_INTENT, intended_read, rules_allow_read, secret_read_authorized,
)
from kubemc.properties.symbolic.apiserver_conflict import (
    BMC_BOUNDS, BMC_DEPTH, PROOF_BOUNDS, ConflictEncoding,
)
from kubemc.properties.symbolic.apiserver_rbac import SHAPE, RbacEncoding, check_rules

CHECK = {c.name: c for c in CHECKS}


# ---------------------------------------------------------------------------
# the update rule
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("bounds", [BMC_BOUNDS, PROOF_BOUNDS], ids=["bmc", "proof"])
@pytest.mark.parametrize("mutant", [None, "blind_update"])
def test_conflict_encoding_differential_on_reachable_states(bounds, mutant):
    enc = ConflictEncoding(**bounds, mutant=mutant)
    states = assert_encoding_agrees_on_reachable_states(enc, 20_000, first=10, spread=25)
    assert len(states) > 200


def test_conflict_encoding_differential_on_random_walks():
    enc = ConflictEncoding(clients=3, max_revision=9)
    assert_encoding_agrees_on_random_walks(enc, examples=10, min_steps=3, max_steps=25)


def test_bmc_finds_no_lost_update_in_any_interleaving():
    result = CHECK["no_lost_update_bmc"].run()
    assert result.verdict == NOT_FOUND and result.bound == BMC_DEPTH


def test_the_update_rule_is_proved_by_induction_and_needs_its_lemmas():
    (ob,) = OBLIGATIONS
    assert run_obligation(ob).verdict == PROVED
    # without the strengthening the bare property is not inductive: the
    # proof above rests on the lemmas, not on a vacuous transition relation
    assert k_induction(ob.encoding(), ob.prop, 1, lemmas=False).verdict == CTI


def test_blind_update_lost_update_is_found_by_bmc_and_replays():
    (ob,) = OBLIGATIONS
    result = run_obligation(ob, "blind_update")  # the engine replays it on the machine
    assert result.verdict == VIOLATED
    steps = [str(s) for s, _ in result.counterexample.steps]
    assert len(steps) == 4 and sorted(steps) == ["Read(0)", "Read(1)", "Update(0)",
                                                 "Update(1)"]
    assert steps.index("Update(0)") > steps.index("Read(1)") or \
        steps.index("Update(1)") > steps.index("Read(0)")
    assert CHECK["no_lost_update_bmc"].run("blind_update").verdict == VIOLATED


# ---------------------------------------------------------------------------
# the rule set
# ---------------------------------------------------------------------------

NAMESPACES = ("a", "b", "c")
NAMES = ("default", "db", "x")
VERB_SETS = [("get",), ("list",), ("watch",), ("*",), ("get", "list", "watch"), ("create",)]
RESOURCE_SETS = [("secrets",), ("*",), ("pods",), ("pods", "secrets")]


def subjects():
    return st.one_of(st.builds(lambda n: (USER, n, ""), st.sampled_from(NAMES)),
                     st.builds(lambda n, ns: (SERVICE_ACCOUNT, n, ns), st.sampled_from(NAMES),
                               st.sampled_from(NAMESPACES)))


def rules():
    return st.tuples(st.sampled_from(VERB_SETS), st.sampled_from(RESOURCE_SETS),
                     st.one_of(st.just(()), st.tuples(st.sampled_from(NAMES))))


@st.composite
def policies(draw):
    roles = []
    for _ in range(draw(st.integers(0, 3))):
        cluster = draw(st.booleans())
        roles.append((CLUSTER_ROLE if cluster else ROLE,
                      "" if cluster else draw(st.sampled_from(NAMESPACES)),
                      draw(st.sampled_from(("r1", "r2"))),
                      tuple(draw(st.lists(rules(), max_size=2)))))
    bindings = []
    for b in range(draw(st.integers(0, 3))):
        cluster = draw(st.booleans())
        ref = (CLUSTER_ROLE if cluster or draw(st.booleans()) else ROLE,
               draw(st.sampled_from(("r1", "r2"))))
        bindings.append((CLUSTER_ROLE_BINDING if cluster else ROLE_BINDING,
                         "" if cluster else draw(st.sampled_from(NAMESPACES)), f"b{b}", ref,
                         tuple(draw(st.lists(subjects(), min_size=1, max_size=2)))))
    return (tuple(roles), tuple(bindings))


def identities():
    return st.one_of(st.builds(lambda n: (USER, n), st.sampled_from(NAMES)),
                     st.builds(lambda ns, n: (SERVICE_ACCOUNT, ns, n),
                               st.sampled_from(NAMESPACES), st.sampled_from(NAMES)))


@st.composite
def cases(draw):
    """A rule set and a request. Random ones are almost always denied, so
    half the cases are aimed: a role with a rule covering the request, bound
    to the requester by a binding of random kind and namespace — which the
    correct authorizer grants or denies by scope, and the mutant grants."""
    policy = draw(policies())
    identity = draw(identities())
    verb = draw(st.sampled_from(("get", "list", "watch")))
    ns, name = draw(st.sampled_from(NAMESPACES)), draw(st.sampled_from(NAMES))
    if draw(st.booleans()):
        roles, bindings = policy
        cluster_role = draw(st.booleans())
        cluster_binding = cluster_role and draw(st.booleans())
        binding_ns = "" if cluster_binding else draw(st.sampled_from(NAMESPACES))
        rule = (draw(st.sampled_from([(verb,), ("*",), ("get", "list", "watch")])),
                draw(st.sampled_from([("secrets",), ("*",)])),
                draw(st.sampled_from([(), (name,)])))
        role = (CLUSTER_ROLE if cluster_role else ROLE, "" if cluster_role else binding_ns,
                "aimed", (rule,))
        subject = (USER, identity[1], "") if identity[0] == USER else \
            (SERVICE_ACCOUNT, identity[2], identity[1])
        binding = (CLUSTER_ROLE_BINDING if cluster_binding else ROLE_BINDING, binding_ns,
                   "aimed", (role[0], "aimed"), (subject,))
        policy = (roles[:2] + (role,), bindings[:2] + (binding,))
    return policy, identity, verb, ns, name if verb == "get" else ""


RBAC_MUTANTS = ["rolebinding_ignores_namespace", "resource_names_match_collections"]
ENCODINGS = {m: RbacEncoding(3, 2, 3, 2, m) for m in [None] + RBAC_MUTANTS}


@pytest.mark.parametrize("mutant", [None] + RBAC_MUTANTS)
def test_rbac_encoding_decides_like_the_executable_authorizer(mutant):
    enc = ENCODINGS[mutant]
    decide = authorize if mutant is None else Access(mutant=mutant)._authorize
    outcomes = set()

    @settings(max_examples=80, derandomize=True, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(cases())
    def same(case):
        policy, identity, verb, ns, name = case
        expected = decide(policy, identity, verb, "secrets", ns, name)
        assert enc.decide(policy, identity, verb, ns, name) == expected
        outcomes.add((expected, authorize(policy, identity, verb, "secrets", ns, name)))
    same()
    # both answers were exercised, and for the mutant the cases where it
    # differs from the correct authorizer (a grant the rules do not give)
    assert {o[0] for o in outcomes} == {True, False}
    assert ((True, False) in outcomes) == (mutant is not None)


def test_the_property_restates_rbac_as_authorize_decides_it():
    """The property's own matchers (written from the Kubernetes docs) and the
    model's agree on generated rule sets — two statements, one semantics."""
    @settings(max_examples=150, derandomize=True, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(cases())
    def same(case):
        policy, identity, verb, ns, name = case
        assert rules_allow_read(policy, identity, verb, ns, name) == \
            authorize(policy, identity, verb, "secrets", ns, name)
    same()


def test_the_default_rule_set_is_proved_equal_to_its_intent_for_all_names():
    result = CHECK["rbac_secret_scope"].run()
    assert result.verdict == PROVED, result.summary()
    assert "exactly when its intent" in result.detail


@pytest.mark.parametrize("mutant", RBAC_MUTANTS)
def test_a_broken_authorizer_yields_a_replayable_read_beyond_the_intent(mutant, tmp_path):
    result = CHECK["rbac_secret_scope"].run(mutant)
    assert result.verdict == VIOLATED
    cex, machine = result.counterexample, result.machine
    assert machine.policy == DEFAULT_POLICY and machine.mutant == mutant
    final = cex.final
    status, identity, verb, namespace, disclosed = final[1]
    assert status == OK and disclosed and not secret_read_authorized(machine, final)
    # a read the intent does not allow, and the correct authorizer refuses
    assert not any(intended_read(DEFAULT_POLICY_INTENT, identity, verb, namespace, n)
                   for n in disclosed)
    assert not authorize(machine.policy, identity, verb, "secrets", namespace,
                         disclosed[0] if verb == "get" else "")
    if mutant == "rolebinding_ignores_namespace":
        # a namespace's account reading another namespace's Secret
        assert identity[0] == SERVICE_ACCOUNT and identity[1] != namespace
    else:
        assert verb in ("list", "watch")
    # the same rule set on the correct machine answers 403
    correct = Access(**machine.config())
    state = cex.init
    for step, _ in cex.steps:
        state = correct.apply(state, step)
    assert state[1][0] == "403"
    # and it is a trace: written with its machine's bounds, decodable
    path = traces.save(cex, tmp_path, model="access", machine=machine, engine="z3",
                       command=f"kubemc check apiserver --engine z3 --mutant {mutant}")
    meta = json.loads(path.read_text())["#meta"]
    assert meta["mutant"] == mutant
    assert meta["property"] == "secret_read_authorized"


def _with_binding(*extra, subjects_of=None):
    roles, bindings = DEFAULT_POLICY
    if subjects_of is not None:
        name, subject = subjects_of
        bindings = tuple(b[:4] + (b[4] + (subject,),) if b[2] == name else b for b in bindings)
    return (roles, bindings + extra)


#: Rule sets with one seeded mistake each, checked against the default
#: rule set's intent: the check must find the read the mistake opens.
BAD_RULE_SETS = {
    # a ClusterRoleBinding where team-b's RoleBinding was meant
    "clusterrolebinding_for_a_shared_secret": _with_binding(
        (CLUSTER_ROLE_BINDING, "", "db-viewers-everywhere", (CLUSTER_ROLE, "db-viewer"),
         ((USER, "alice", ""),))),
    # team-b's account added to team-a's reader binding
    "foreign_account_in_a_rolebinding": _with_binding(
        subjects_of=("app-reads-secrets", (SERVICE_ACCOUNT, "default", "team-b"))),
    # cluster-admin bound in team-b to team-a's account
    "admin_role_bound_into_another_namespace": _with_binding(
        (ROLE_BINDING, "team-b", "app-admin", (CLUSTER_ROLE, "cluster-admin"),
         ((SERVICE_ACCOUNT, "default", "team-a"),))),
}


@pytest.mark.parametrize("name", list(BAD_RULE_SETS))
def test_a_rule_set_that_exceeds_its_intent_is_caught(name):
    bad = BAD_RULE_SETS[name]
    out = check_rules(policy=bad)
    assert out.verdict == VIOLATED, out.detail
    identity, verb, namespace, secret = out.request
    # the correct authorizer grants it (the rule set's mistake, not the
    # encoding's) and the intent does not allow it
    assert authorize(bad, identity, verb, "secrets", namespace, secret)
    assert not intended_read(DEFAULT_POLICY_INTENT, identity, verb, namespace, secret)


class _SubjectIgnoresAccountNamespace(RbacEncoding):
    def subject_matches(self, v, b, k):
        S = v["subject", b, k]
        return z3.And(S["used"], S["sa"] == v["id_sa"], S["name"] == v["id_name"])


class _EveryRuleMatches(RbacEncoding):
    def rule_matches(self, v, r, j):
        return v["rule", r, j]["used"]


class _RoleRefIgnoresNamespace(RbacEncoding):
    def references(self, v, b, r):
        B, R = v["binding", b], v["role", r]
        return z3.And(R["used"], R["cluster"] == B["ref_cluster"], R["name"] == B["ref_name"])


class _NoScope(RbacEncoding):
    def in_force(self, v, b):
        return z3.BoolVal(True)


class _AnySubject(RbacEncoding):
    def names_identity(self, v, b):
        return z3.BoolVal(True)


@pytest.mark.parametrize("broken", [_SubjectIgnoresAccountNamespace, _EveryRuleMatches,
                                    _RoleRefIgnoresNamespace, _NoScope, _AnySubject],
                         ids=lambda c: c.__name__.strip("_"))
def test_breaking_a_matcher_of_the_encoding_fails_the_check(broken):
    """The claim is not a tautology of the encoding: with any matcher of the
    symbolic authorizer broken, the check finds a read beyond the intent."""
    out = check_rules(encoding=broken(**SHAPE))
    assert out.verdict == VIOLATED, out.detail
    identity, verb, namespace, secret = out.request
    assert not authorize(DEFAULT_POLICY, identity, verb, "secrets", namespace, secret)
    assert not intended_read(DEFAULT_POLICY_INTENT, identity, verb, namespace, secret)


def test_an_intent_the_rule_set_does_not_grant_is_reported_vacuous():
    intent = DEFAULT_POLICY_INTENT + ((("User", "alice"), ("list",), "team-a", ()),)
    out = check_rules(intent=intent)
    assert out.verdict == "vacuous"
    assert out.request == ((USER, "alice"), "list", "team-a", "")


def test_rbac_encoding_refuses_unknown_mutants_and_oversized_policies():
    with pytest.raises(UnknownMutant):
        RbacEncoding(mutant="no_such_bug")
    enc = RbacEncoding(1, 1, 1, 1)
    big = (((ROLE, "a", "r", ((("get",), ("secrets",), ()),) * 2),), ())
    with pytest.raises(ValueError, match="shape"):
        enc.decide(big, (USER, "x"), "get", "a", "db")
    with pytest.raises(ValueError, match="shape"):
        check_rules(roles=1, rules=1, bindings=1, subjects=1)


def test_a_larger_shape_is_proved_too():
    assert check_rules(roles=5, rules=3, bindings=6, subjects=3).verdict == PROVED


# ---------------------------------------------------------------------------
# through the CLI, and the committed traces
# ---------------------------------------------------------------------------

TRACES = Path(__file__).resolve().parents[1] / "traces" / "apiserver"


@pytest.mark.parametrize("mutant", RBAC_MUTANTS + ["blind_update"])
def test_kubemc_check_z3_catches_the_mutant_and_the_trace_replays(mutant, tmp_path, capsys):
    assert main(["check", "apiserver", "--engine", "z3", "--mutant", mutant,
                 "--trace-dir", str(tmp_path), "--quiet"]) == 1
    (path,) = tmp_path.glob("*.itf.json")
    assert main(["trace", "replay", str(path)]) == 1
    assert "is violated" in capsys.readouterr().out


@pytest.mark.parametrize("mutant", RBAC_MUTANTS + ["blind_update"])
def test_each_mutant_has_a_committed_trace_from_every_engine(mutant):
    engines = {json.loads(p.read_text())["#meta"]["engine"]
               for p in TRACES.glob("*.itf.json")
               if json.loads(p.read_text())["#meta"]["mutant"] == mutant}
    assert engines >= {"explore", "hypothesis", "z3"}

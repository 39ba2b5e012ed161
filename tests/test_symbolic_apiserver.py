"""The apiserver's z3 checks: the update rule's encoding against the
executable ``conflict`` machine (differential), its BMC and k-induction, the
``blind_update`` mutant's lost update found and replayed; the RBAC encoding
against ``authorize`` on generated rule sets (differential), its proof for
all names, and the ``rolebinding_ignores_namespace`` counterexample decoded
into an ``access`` behaviour that replays and is written as a trace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import (
    assert_encoding_agrees_on_random_walks, assert_encoding_agrees_on_reachable_states,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checker import traces
from checker.cli import main
from checker.catalog.apiserver_access import CHECKS, OBLIGATIONS
from checker.z3engine import (
    CTI, NOT_FOUND, PROVED, VIOLATED, k_induction, run_obligation,
)
from model.apiserver.access import (
    CLUSTER_ROLE, CLUSTER_ROLE_BINDING, OK, ROLE, ROLE_BINDING, SERVICE_ACCOUNT, USER, Access,
    authorize,
)
from model.kernel import UnknownMutant
from properties.apiserver_access import secret_read_authorized
from properties.symbolic.apiserver_conflict import (
    BMC_BOUNDS, BMC_DEPTH, PROOF_BOUNDS, ConflictEncoding,
)
from properties.symbolic.apiserver_rbac import RbacEncoding, check_rules

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


ENCODINGS = {None: RbacEncoding(3, 2, 3, 2),
             "rolebinding_ignores_namespace": RbacEncoding(3, 2, 3, 2,
                                                           "rolebinding_ignores_namespace")}


@pytest.mark.parametrize("mutant", [None, "rolebinding_ignores_namespace"])
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
    # differs from the correct authorizer (a grant out of scope)
    assert {o[0] for o in outcomes} == {True, False}
    assert ((True, False) in outcomes) == (mutant is not None)


def test_rbac_rule_set_is_proved_for_all_names():
    result = CHECK["rbac_secret_scope"].run()
    assert result.verdict == PROVED, result.summary()


def test_namespace_blind_matcher_yields_a_replayable_cross_namespace_read(tmp_path):
    result = CHECK["rbac_secret_scope"].run("rolebinding_ignores_namespace")
    assert result.verdict == VIOLATED
    cex, machine = result.counterexample, result.machine
    final = cex.final
    status, identity, verb, namespace, disclosed = final[1]
    assert status == OK and disclosed and not secret_read_authorized(machine, final)
    # the grant came from a RoleBinding of another namespace
    granting = [b for b in machine.policy[1] if b[0] == ROLE_BINDING]
    assert granting and all(b[1] != namespace for b in granting)
    assert not authorize(machine.policy, identity, verb, "secrets", namespace,
                         disclosed[0] if verb == "get" else "")
    # the same rule set on the correct machine answers 403
    correct = Access(**machine.config())
    state = cex.init
    for step, _ in cex.steps:
        state = correct.apply(state, step)
    assert state[1][0] == "403"
    # and it is a trace: written with its machine's bounds, decodable
    path = traces.save(cex, tmp_path, model="access", machine=machine, engine="z3",
                       command="kubemc check apiserver --engine z3 --mutant "
                               "rolebinding_ignores_namespace")
    meta = json.loads(path.read_text())["#meta"]
    assert meta["mutant"] == "rolebinding_ignores_namespace"
    assert meta["property"] == "secret_read_authorized"


def test_rbac_encoding_refuses_unknown_mutants_and_oversized_policies():
    with pytest.raises(UnknownMutant):
        RbacEncoding(mutant="no_such_bug")
    enc = RbacEncoding(1, 1, 1, 1)
    big = (((ROLE, "a", "r", ((("get",), ("secrets",), ()),) * 2),), ())
    with pytest.raises(ValueError, match="shape"):
        enc.decide(big, (USER, "x"), "get", "a", "db")


def test_a_larger_shape_is_proved_too():
    assert check_rules(roles=5, rules=3, bindings=6, subjects=3).verdict == PROVED


# ---------------------------------------------------------------------------
# through the CLI, and the committed traces
# ---------------------------------------------------------------------------

TRACES = Path(__file__).resolve().parents[1] / "traces" / "apiserver"


@pytest.mark.parametrize("mutant", ["rolebinding_ignores_namespace", "blind_update"])
def test_kubemc_check_z3_catches_the_mutant_and_the_trace_replays(mutant, tmp_path, capsys):
    assert main(["check", "apiserver", "--engine", "z3", "--mutant", mutant,
                 "--trace-dir", str(tmp_path), "--quiet"]) == 1
    (path,) = tmp_path.glob("*.itf.json")
    assert main(["trace", "replay", str(path)]) == 1
    assert "is violated" in capsys.readouterr().out


@pytest.mark.parametrize("mutant", ["rolebinding_ignores_namespace", "blind_update"])
def test_each_mutant_has_a_committed_trace_from_every_engine(mutant):
    engines = {json.loads(p.read_text())["#meta"]["engine"]
               for p in TRACES.glob("*.itf.json")
               if json.loads(p.read_text())["#meta"]["mutant"] == mutant}
    assert engines >= {"explore", "hypothesis", "z3"}

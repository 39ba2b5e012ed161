"""The RBAC rule set, symbolically: for the model's rule set, with every
caller, namespace and Secret name symbolic, the authorizer grants a read of
a Secret exactly when an intent written separately says it may.

This is a constraint problem, not a transition system: nothing happens in
sequence, the question is about one decision over all requests at once, so
it does not go through BMC or k-induction. What is symbolic:

* namespaces and names (of Secrets, users, accounts) are values of two
  uninterpreted sorts, ``Namespace`` and ``Name``; the names the rule set
  and the intent mention are distinct constants, every other value is any
  name at all, so the result holds *for all names* — including namespaces
  the rule set never mentions, and equal names in different namespaces,
  which is where a namespace bug hides;
* the request: an identity (a user of any name, or a ServiceAccount of any
  name in any namespace), a read verb (get with a name; list or watch of
  the collection), a namespace.

:class:`RbacEncoding` encodes rule sets of a bounded shape and
:meth:`RbacEncoding.authorize` is ``model.apiserver.access.authorize``
written as a formula, matcher for matcher (subject, roleRef resolution,
rule, and the binding's scope) — with a mutant's matcher when a mutant is
named. The differential test (``tests/test_symbolic_apiserver.py``) decides
generated concrete rule sets both ways and requires the same answer.

The yardstick is not that encoding: it is an *intent* — a table, per rule
set, of which caller may read which Secrets where
(``properties.apiserver_access.DEFAULT_POLICY_INTENT``), turned into a
formula by :func:`permitted` without any RBAC matcher. :func:`check_rules`
fixes the symbolic rule set to a concrete one and asks z3 for a request the
authorizer grants and the intent does not; unsatisfiability is the proof.
It then asks the converse (a request the intent allows and the authorizer
refuses): unsatisfiable too, or the intent is not the rule set's and the
verdict is ``vacuous``. For a mutant, a model of the first question is a
concrete request, turned into an ``access`` machine with that rule set and
mutant plus the steps that make the request possible (the namespaces, the
account and its token from the controllers, the Secret) — a behaviour the
engine replays on the machine, where the apiserver's answer must break
``secret_read_authorized``.
"""

from __future__ import annotations

import time

import attrs
import z3

from kubemc.model.apiserver.access import (
    CLUSTER_ROLE, CLUSTER_ROLE_BINDING, DEFAULT_ACCOUNT, DEFAULT_POLICY, READ_VERBS, ROLE,
    ROLE_BINDING, SECRETS, SERVICE_ACCOUNT, USER, WILDCARD, Access,
)
from kubemc.model.kernel import Step
from kubemc.properties.apiserver_access import ANYWHERE, DEFAULT_POLICY_INTENT

NAMESPACE = z3.DeclareSort("Namespace")
NAME = z3.DeclareSort("Name")
#: The one Name the access machine's accounts have ("default"): a
#: counterexample is asked to use it so that the controllers can create it.
DEFAULT = z3.Const("default", NAME)

PROVED, VIOLATED, UNKNOWN, VACUOUS = "proved", "violated", "unknown", "vacuous"


@attrs.frozen
class RbacOutcome:
    """What the check gave: a proof, or a request decoded from a model."""

    verdict: str
    seconds: float
    detail: str = ""
    policy: tuple | None = None
    request: tuple | None = None        # (identity, verb, namespace, name)
    machine: Access | None = None       # built with the checked rule set and mutant
    init: tuple | None = None
    steps: tuple = ()                   # of (Step, state), replayed on ``machine``


class RbacEncoding:
    """A symbolic rule set and request of a bounded shape (see module doc)."""

    MUTANTS = ("rolebinding_ignores_namespace", "resource_names_match_collections")

    def __init__(self, roles: int = 3, rules: int = 2, bindings: int = 3, subjects: int = 2,
                 mutant: str | None = None):
        Access(mutant=mutant)  # UnknownMutant for a name the machine lacks
        self.shape = {"roles": roles, "rules": rules, "bindings": bindings,
                      "subjects": subjects}
        self.mutant = mutant
        self.v = self.declare("")
        self._decision = None

    # -- the variables -------------------------------------------------------------
    def declare(self, p: str) -> dict:
        s = self.shape
        v = {"verb": z3.Int(p + "req_verb"), "ns": z3.Const(p + "req_ns", NAMESPACE),
             "name": z3.Const(p + "req_name", NAME), "id_sa": z3.Bool(p + "id_sa"),
             "id_name": z3.Const(p + "id_name", NAME),
             "id_ns": z3.Const(p + "id_ns", NAMESPACE)}
        for r in range(s["roles"]):
            q = f"{p}role{r}_"
            v["role", r] = {"used": z3.Bool(q + "used"), "cluster": z3.Bool(q + "cluster"),
                            "ns": z3.Const(q + "ns", NAMESPACE),
                            "name": z3.Const(q + "name", NAME)}
            for j in range(s["rules"]):
                q2 = f"{q}rule{j}_"
                v["rule", r, j] = {k: z3.Bool(q2 + k) for k in (
                    "used", "get", "list", "watch", "any_verb", "secrets", "any_resource",
                    "has_name")}
                v["rule", r, j]["rname"] = z3.Const(q2 + "rname", NAME)
        for b in range(s["bindings"]):
            q = f"{p}binding{b}_"
            v["binding", b] = {"used": z3.Bool(q + "used"), "cluster": z3.Bool(q + "cluster"),
                               "ns": z3.Const(q + "ns", NAMESPACE),
                               "ref_cluster": z3.Bool(q + "ref_cluster"),
                               "ref_name": z3.Const(q + "ref_name", NAME)}
            for k in range(s["subjects"]):
                q2 = f"{q}subject{k}_"
                v["subject", b, k] = {"used": z3.Bool(q2 + "used"), "sa": z3.Bool(q2 + "sa"),
                                      "name": z3.Const(q2 + "name", NAME),
                                      "ns": z3.Const(q2 + "ns", NAMESPACE)}
        return v

    def well_formed(self, v):
        """What the API accepts: a read verb; a ClusterRoleBinding references a
        ClusterRole (``check_policy``)."""
        conds = [v["verb"] >= 0, v["verb"] < len(READ_VERBS)]
        for b in range(self.shape["bindings"]):
            B = v["binding", b]
            conds.append(z3.Implies(B["cluster"], B["ref_cluster"]))
        return z3.And(conds)

    # -- the authorizer, matcher for matcher --------------------------------------
    def subject_matches(self, v, b, k):
        S = v["subject", b, k]
        return z3.And(S["used"], S["sa"] == v["id_sa"], S["name"] == v["id_name"],
                      z3.Implies(S["sa"], S["ns"] == v["id_ns"]))

    def names_identity(self, v, b):
        return z3.Or([self.subject_matches(v, b, k) for k in range(self.shape["subjects"])])

    def references(self, v, b, r):
        """roleRef resolution: a ClusterRole by name, or a Role by name in the
        RoleBinding's own namespace."""
        B, R = v["binding", b], v["role", r]
        return z3.And(R["used"], R["cluster"] == B["ref_cluster"], R["name"] == B["ref_name"],
                      z3.Or(R["cluster"], z3.And(z3.Not(B["cluster"]), R["ns"] == B["ns"])))

    def rule_matches(self, v, r, j):
        U = v["rule", r, j]
        verb = v["verb"]
        verb_ok = z3.Or(U["any_verb"], z3.And(verb == 0, U["get"]),
                        z3.And(verb == 1, U["list"]), z3.And(verb == 2, U["watch"]))
        named = z3.And(verb == 0, U["rname"] == v["name"])  # only a get has a name
        if self.mutant == "resource_names_match_collections":
            named = z3.Or(named, verb != 0)
        return z3.And(U["used"], verb_ok, z3.Or(U["secrets"], U["any_resource"]),
                      z3.Or(z3.Not(U["has_name"]), named))

    def grants(self, v, b):
        """``binding_grants``: names the identity and resolves to a covering rule."""
        s = self.shape
        return z3.And(self.names_identity(v, b), z3.Or([
            z3.And(self.references(v, b, r),
                   z3.Or([self.rule_matches(v, r, j) for j in range(s["rules"])]))
            for r in range(s["roles"])]))

    def in_force(self, v, b):
        """``binding_applies``: the scope rule."""
        B = v["binding", b]
        return z3.Or(B["cluster"], B["ns"] == v["ns"])

    def authorize(self, v):
        scope = (lambda b: z3.BoolVal(True)) if self.mutant == "rolebinding_ignores_namespace" \
            else (lambda b: self.in_force(v, b))
        return z3.Or([z3.And(v["binding", b]["used"], scope(b), self.grants(v, b))
                      for b in range(self.shape["bindings"])])

    # -- concrete values in, concrete values out -------------------------------------
    def equals(self, v, policy, identity, verb, namespace, name=""):
        """Constraints fixing the symbolic rule set and request to concrete
        ones (names become distinct constants); raises ValueError when the
        policy does not fit the shape."""
        consts: dict = {}
        return z3.And(self.policy_equals(v, policy, consts),
                      request_equals(v, identity, verb, namespace, name, consts),
                      distinct(consts))

    def policy_equals(self, v, policy, consts: dict):
        """Constraints fixing the symbolic rule set to a concrete one, its
        names the constants of ``consts`` (filled in)."""
        roles, bindings = policy
        s = self.shape
        if len(roles) > s["roles"] or len(bindings) > s["bindings"] or \
                any(len(r[3]) > s["rules"] for r in roles) or \
                any(len(b[4]) > s["subjects"] for b in bindings) or \
                any(len(rule[2]) > 1 for r in roles for rule in r[3]):
            raise ValueError("policy larger than the encoding's shape")

        def ns(x):
            return ns_const(x, consts)

        def nm(x):
            return name_const(x, consts)
        c = []
        for r in range(s["roles"]):
            R = v["role", r]
            if r >= len(roles):
                c.append(z3.Not(R["used"]))
                continue
            kind, rns, rname, rules = roles[r]
            c += [R["used"], R["cluster"] == (kind == CLUSTER_ROLE), R["name"] == nm(rname)]
            if kind == ROLE:
                c.append(R["ns"] == ns(rns))
            for j in range(s["rules"]):
                U = v["rule", r, j]
                if j >= len(rules):
                    c.append(z3.Not(U["used"]))
                    continue
                verbs, resources, names = rules[j]
                c += [U["used"], U["get"] == ("get" in verbs), U["list"] == ("list" in verbs),
                      U["watch"] == ("watch" in verbs), U["any_verb"] == (WILDCARD in verbs),
                      U["secrets"] == (SECRETS in resources),
                      U["any_resource"] == (WILDCARD in resources),
                      U["has_name"] == bool(names)]
                if names:
                    c.append(U["rname"] == nm(names[0]))
        for b in range(s["bindings"]):
            B = v["binding", b]
            if b >= len(bindings):
                c.append(z3.Not(B["used"]))
                continue
            kind, bns, _, (ref_kind, ref_name), subjects = bindings[b]
            c += [B["used"], B["cluster"] == (kind == CLUSTER_ROLE_BINDING),
                  B["ref_cluster"] == (ref_kind == CLUSTER_ROLE), B["ref_name"] == nm(ref_name)]
            if kind == ROLE_BINDING:
                c.append(B["ns"] == ns(bns))
            for k in range(s["subjects"]):
                S = v["subject", b, k]
                if k >= len(subjects):
                    c.append(z3.Not(S["used"]))
                    continue
                s_kind, s_name, s_ns = subjects[k]
                c += [S["used"], S["sa"] == (s_kind == SERVICE_ACCOUNT), S["name"] == nm(s_name)]
                if s_kind == SERVICE_ACCOUNT:
                    c.append(S["ns"] == ns(s_ns))
        return z3.And(c)

    def decide(self, policy, identity, verb, namespace, name="") -> bool:
        """The symbolic authorizer's answer on one concrete rule set and
        request (the differential test compares it with ``authorize``)."""
        if self._decision is None:
            self._decision = (self.well_formed(self.v), self.authorize(self.v))
        well_formed, granted = self._decision
        s = z3.Solver()
        s.add(well_formed, self.equals(self.v, policy, identity, verb, namespace, name))
        s.push()
        s.add(granted)
        can_grant = s.check() == z3.sat
        s.pop()
        s.add(z3.Not(granted))
        can_deny = s.check() == z3.sat
        if can_grant == can_deny:
            raise AssertionError(f"the request is not determined by the concrete values "
                                 f"(grant {can_grant}, deny {can_deny})")
        return can_grant

    def replayable(self, v):
        """A request the access machine can issue: by a user, or by a
        namespace's default account (the only accounts its controller makes)."""
        return z3.Or(z3.Not(v["id_sa"]), v["id_name"] == DEFAULT)


def ns_const(x: str, consts: dict):
    return consts.setdefault(("ns", x), z3.Const(f"c_ns_{x}", NAMESPACE))


def name_const(x: str, consts: dict):
    if x == DEFAULT_ACCOUNT:
        return consts.setdefault(("name", x), DEFAULT)
    return consts.setdefault(("name", x), z3.Const(f"c_name_{x}", NAME))


def distinct(consts: dict):
    """Different names in the concrete values are different values."""
    c = []
    for sort in ("ns", "name"):
        xs = [x for key, x in consts.items() if key[0] == sort]
        if len(xs) > 1:
            c.append(z3.Distinct(xs))
    return z3.And(c)


def request_equals(v, identity, verb, namespace, name, consts: dict):
    """Constraints fixing the symbolic request to a concrete one."""
    c = [v["verb"] == READ_VERBS.index(verb), v["ns"] == ns_const(namespace, consts),
         v["id_sa"] == (identity[0] == SERVICE_ACCOUNT)]
    if verb == "get":
        c.append(v["name"] == name_const(name, consts))
    if identity[0] == SERVICE_ACCOUNT:
        c += [v["id_ns"] == ns_const(identity[1], consts),
              v["id_name"] == name_const(identity[2], consts)]
    else:
        c.append(v["id_name"] == name_const(identity[1], consts))
    return z3.And(c)


# ---------------------------------------------------------------------------
# The yardstick: the intent, with no RBAC matcher in it
# ---------------------------------------------------------------------------


def permitted(v, intent, consts: dict):
    """The intent as a formula over the symbolic request: some entry names
    exactly this caller, lists the verb, is for this namespace (or
    ``ANYWHERE``) and, when it lists Secret names, the request is a get of
    one of them (a list or watch discloses every Secret of the namespace, so
    an entry restricted to names never allows one)."""
    cases = []
    for identity, verbs, namespace, names in intent:
        c = [v["id_sa"] == (identity[0] == SERVICE_ACCOUNT)]
        if identity[0] == SERVICE_ACCOUNT:
            c += [v["id_ns"] == ns_const(identity[1], consts),
                  v["id_name"] == name_const(identity[2], consts)]
        else:
            c.append(v["id_name"] == name_const(identity[1], consts))
        c.append(z3.Or([v["verb"] == READ_VERBS.index(x) for x in verbs]))
        if namespace != ANYWHERE:
            c.append(v["ns"] == ns_const(namespace, consts))
        if names:
            c += [v["verb"] == READ_VERBS.index("get"),
                  z3.Or([v["name"] == name_const(n, consts) for n in names])]
        cases.append(z3.And(c))
    return z3.Or(cases)


def decode_request(v, model: z3.ModelRef, consts: dict) -> tuple:
    """The request of a model, ``(identity, verb, namespace, name)``: a value
    equal to a constant gets that constant's name, any other a fresh
    readable one (``ns-0``, ``secret-0``, ``user-0``)."""
    def ev(x):
        return str(model.eval(x, model_completion=True))
    known = {(sort, ev(c)): x for (sort, x), c in consts.items()}
    fresh: dict = {}

    def text(sort, x, kind):
        key = (sort, ev(x))
        if key not in known:
            n = sum(1 for k in fresh if k[0] == kind)
            known[key] = fresh[kind, key] = f"{kind}-{n}"
        return known[key]

    verb = READ_VERBS[int(ev(v["verb"]))]
    namespace = text("ns", v["ns"], "ns")
    name = text("name", v["name"], "secret") if verb == "get" else ""
    if z3.is_true(model.eval(v["id_sa"], model_completion=True)):
        identity = (SERVICE_ACCOUNT, text("ns", v["id_ns"], "ns"),
                    text("name", v["id_name"], "account"))
    else:
        identity = (USER, text("name", v["id_name"], "user"))
    return identity, verb, namespace, name


def behaviour(policy, request, namespaces, mutant):
    """The access machine for a rule set and mutant, and the steps that issue the
    request: create the namespaces it needs, let the controllers create the
    account and its token, create the Secret, then ask."""
    identity, verb, namespace, name = request
    secret = name or "secret-listed"
    users = (identity[1],) if identity[0] == USER else ()
    machine = Access(namespaces=namespaces, secrets=(secret,), users=users, policy=policy,
                     mutant=mutant)
    steps = [Step("CreateNamespace", (namespace,))]
    if identity[0] == SERVICE_ACCOUNT:
        home = identity[1]
        if home != namespace:
            steps.append(Step("CreateNamespace", (home,)))
        steps += [Step("CreateServiceAccount", (home,)), Step("CreateToken", (home,))]
        credential = f"token:{home}"
    else:
        credential = f"user:{identity[1]}"
    steps.append(Step("CreateSecret", (namespace, secret)))
    if verb == "get":
        steps.append(Step("Get", (credential, namespace, name)))
    else:
        steps.append(Step(verb.capitalize(), (credential, namespace)))
    return machine, tuple(steps)


def check_rules(mutant: str | None = None, *, policy=DEFAULT_POLICY,
                intent=DEFAULT_POLICY_INTENT, encoding: RbacEncoding | None = None,
                timeout_ms: int | None = None, **shape) -> RbacOutcome:
    """Prove that ``policy`` grants a Secret read exactly when ``intent``
    allows it, for every request and all names — or find (for a mutant:
    must find) a request it grants beyond the intent, decoded into an access
    machine and a behaviour of it (not yet replayed: the caller replays).
    ``encoding`` replaces the encoding (the tests break a matcher with it)."""
    enc = encoding or RbacEncoding(mutant=mutant, **(shape or SHAPE))
    v = enc.v
    start = time.perf_counter()
    consts: dict = {}
    fixed = enc.policy_equals(v, policy, consts)
    allowed = permitted(v, intent, consts)
    granted = enc.authorize(v)
    base = (enc.well_formed(v), fixed, distinct(consts))
    if mutant is None:
        s = z3.Solver()
    else:
        # a request the machine can issue, preferably the seeds' case of a
        # namespace's account reaching into another namespace
        s = z3.Optimize()
        s.add(enc.replayable(v))
        s.add_soft(z3.And(v["id_sa"], v["id_ns"] != v["ns"]), weight=5)
    if timeout_ms:
        s.set("timeout", timeout_ms)
    s.add(*base, granted, z3.Not(allowed))
    r = s.check()
    if r == z3.unknown:
        return RbacOutcome(UNKNOWN, time.perf_counter() - start, s.reason_unknown())
    if r == z3.unsat:
        converse = z3.Solver()
        if timeout_ms:
            converse.set("timeout", timeout_ms)
        converse.add(*base, allowed, z3.Not(granted))
        rc = converse.check()
        seconds = time.perf_counter() - start
        if rc == z3.unsat:
            return RbacOutcome(PROVED, seconds,
                               f"for every caller, every get/list/watch, every namespace and "
                               f"Secret name, the rule set ({len(policy[0])} roles, "
                               f"{len(policy[1])} bindings) grants a read exactly when its "
                               f"intent ({len(intent)} entries) allows it")
        if rc == z3.unknown:
            return RbacOutcome(UNKNOWN, seconds, converse.reason_unknown())
        request = decode_request(v, converse.model(), consts)
        return RbacOutcome(VACUOUS, seconds, f"the intent allows {request} but the rule set "
                           "refuses it: the intent is not this rule set's", policy, request)
    seconds = time.perf_counter() - start
    request = decode_request(v, s.model(), consts)
    identity, verb, namespace, name = request
    namespaces = tuple(dict.fromkeys(
        (namespace,) + ((identity[1],) if identity[0] == SERVICE_ACCOUNT else ())))
    machine, steps = behaviour(policy, request, namespaces, mutant)
    (init,) = machine.init_states()
    state, trail = init, []
    for step in steps:
        nxt = machine.apply(state, step)
        if nxt is None:
            return RbacOutcome(VIOLATED, seconds, f"decoded step {step} is not enabled on the "
                               "access machine", policy, request, machine, init, tuple(trail))
        trail.append((step, nxt))
        state = nxt
    return RbacOutcome(VIOLATED, seconds,
                       f"{verb} secrets {namespace}/{name or '*'} granted to {identity}, "
                       "which the intent does not allow", policy, request, machine,
                       init, tuple(trail))


#: The encoding's shape: room for the default rule set and a few bindings more.
SHAPE = {"roles": 4, "rules": 3, "bindings": 6, "subjects": 3}

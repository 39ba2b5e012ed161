"""The RBAC rule set, symbolically: for every rule set of a bounded shape and
every request, with every name and namespace symbolic, the authorizer never
grants a Secret across namespaces.

This is a constraint problem, not a transition system: nothing happens in
sequence, the question is about one decision over all policies at once, so
it does not go through BMC or k-induction. What is symbolic:

* namespaces and names (of Secrets, users, accounts, roles) are values of
  two uninterpreted sorts, ``Namespace`` and ``Name``: Z3 considers every
  interpretation, so a proof holds *for all names* — including equal names
  in different namespaces, which is where a namespace bug hides;
* the rule set: up to ``roles`` Roles/ClusterRoles of up to ``rules`` rules
  each (verbs get / list / watch / "*", resources secrets / "*" or others,
  at most one resourceName) and up to ``bindings`` RoleBindings /
  ClusterRoleBindings of up to ``subjects`` subjects (User or
  ServiceAccount), each binding referencing a role by kind and name;
* the request: an identity (a user, or a ServiceAccount of a namespace), a
  read verb (get with a name; list or watch of the collection), a namespace.

:meth:`RbacEncoding.authorize` is ``model.apiserver.access.authorize``
written as a formula, matcher for matcher (subject, roleRef resolution,
rule, and the binding's scope) — with the ``rolebinding_ignores_namespace``
mutant's matcher when that mutant is named. The differential test
(``tests/test_symbolic_apiserver.py``) decides generated concrete rule sets
both ways and requires the same answer.

The claim (:meth:`RbacEncoding.claim`): if the authorizer grants a read of
a Secret in namespace A, then some binding naming the identity is a
ClusterRoleBinding or a RoleBinding *in A*. In particular a ServiceAccount
of namespace B never reads A's Secrets through a RoleBinding of B.
Unsatisfiability of its negation is the proof. For a mutant, a model of the
negation is decoded into a concrete rule set and request, and into an
``access`` machine built with that rule set plus the steps that make the
request possible (the namespaces, the account and its token from the
controllers, the Secret) — a behaviour the engine replays on the machine,
where the apiserver's answer must break ``secret_read_authorized``.
"""

from __future__ import annotations

import time

import attrs
import z3

from model.apiserver.access import (
    CLUSTER_ROLE, CLUSTER_ROLE_BINDING, DEFAULT_ACCOUNT, READ_VERBS, ROLE, ROLE_BINDING,
    SECRETS, SERVICE_ACCOUNT, USER, WILDCARD, Access,
)
from model.kernel import Step

NAMESPACE = z3.DeclareSort("Namespace")
NAME = z3.DeclareSort("Name")
#: The one Name the access machine's accounts have ("default"): a
#: counterexample is asked to use it so that the controllers can create it.
DEFAULT = z3.Const("default", NAME)

PROVED, VIOLATED, UNKNOWN = "proved", "violated", "unknown"


@attrs.frozen
class RbacOutcome:
    """What solving the claim gave: a proof, or a decoded counterexample."""

    verdict: str
    seconds: float
    detail: str = ""
    policy: tuple | None = None
    request: tuple | None = None        # (identity, verb, namespace, name)
    machine: Access | None = None       # built with the decoded rule set
    init: tuple | None = None
    steps: tuple = ()                   # of (Step, state), replayed on ``machine``


class RbacEncoding:
    """A symbolic rule set and request of a bounded shape (see module doc)."""

    MUTANTS = ("rolebinding_ignores_namespace",)

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
        scope = (lambda b: z3.BoolVal(True)) if self.mutant else (lambda b: self.in_force(v, b))
        return z3.Or([z3.And(v["binding", b]["used"], scope(b), self.grants(v, b))
                      for b in range(self.shape["bindings"])])

    # -- the claim ------------------------------------------------------------------
    def claim(self, v):
        """A granted Secret read in namespace A comes from a binding naming the
        identity that is a ClusterRoleBinding or lives in A."""
        backed = z3.Or([z3.And(v["binding", b]["used"],
                               z3.Or(v["binding", b]["cluster"], v["binding", b]["ns"] == v["ns"]),
                               self.names_identity(v, b))
                        for b in range(self.shape["bindings"])])
        return z3.Implies(self.authorize(v), backed)

    # -- concrete values in, concrete values out -------------------------------------
    def equals(self, v, policy, identity, verb, namespace, name=""):
        """Constraints fixing the symbolic rule set and request to concrete
        ones (names become distinct constants); raises ValueError when the
        policy does not fit the shape."""
        roles, bindings = policy
        s = self.shape
        if len(roles) > s["roles"] or len(bindings) > s["bindings"] or \
                any(len(r[3]) > s["rules"] for r in roles) or \
                any(len(b[4]) > s["subjects"] for b in bindings) or \
                any(len(rule[2]) > 1 for r in roles for rule in r[3]):
            raise ValueError("policy larger than the encoding's shape")
        consts: dict = {}

        def ns(x):
            return consts.setdefault(("ns", x), z3.Const(f"c_ns_{x}", NAMESPACE))

        def nm(x):
            if x == DEFAULT_ACCOUNT:
                return DEFAULT
            return consts.setdefault(("name", x), z3.Const(f"c_name_{x}", NAME))
        c = [v["verb"] == READ_VERBS.index(verb), v["ns"] == ns(namespace),
             v["id_sa"] == (identity[0] == SERVICE_ACCOUNT)]
        if verb == "get":
            c.append(v["name"] == nm(name))
        if identity[0] == SERVICE_ACCOUNT:
            c += [v["id_ns"] == ns(identity[1]), v["id_name"] == nm(identity[2])]
        else:
            c.append(v["id_name"] == nm(identity[1]))
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
        names = [x for key, x in consts.items() if key[0] == "name"] + [DEFAULT]
        spaces = [x for key, x in consts.items() if key[0] == "ns"]
        if len(names) > 1:
            c.append(z3.Distinct(names))
        if len(spaces) > 1:
            c.append(z3.Distinct(spaces))
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

    def decode(self, model: z3.ModelRef):
        """The rule set and request of a model, with readable names."""
        v = self.v
        names: dict = {}
        spaces: dict = {}
        counters: dict = {}

        def ev(x):
            return model.eval(x, model_completion=True)

        # a model's values of an uninterpreted sort print as distinct
        # literals ("Name!val!0"): their text identifies them
        def ns(x):
            key = str(ev(x))
            if key not in spaces:
                spaces[key] = f"ns-{len(spaces)}"
            return spaces[key]

        default = str(ev(DEFAULT))

        def nm(x, kind):
            key = str(ev(x))
            if key == default:
                return DEFAULT_ACCOUNT
            if key not in names:
                counters[kind] = counters.get(kind, -1) + 1
                names[key] = f"{kind}-{counters[kind]}"
            return names[key]

        def true(x):
            return z3.is_true(ev(x))

        verb = READ_VERBS[ev(v["verb"]).as_long()]
        namespace = ns(v["ns"])
        name = nm(v["name"], "secret") if verb == "get" else ""
        if true(v["id_sa"]):
            identity = (SERVICE_ACCOUNT, ns(v["id_ns"]), nm(v["id_name"], "account"))
        else:
            identity = (USER, nm(v["id_name"], "user"))
        roles = []
        for r in range(self.shape["roles"]):
            R = v["role", r]
            if not true(R["used"]):
                continue
            rules = []
            for j in range(self.shape["rules"]):
                U = v["rule", r, j]
                if not true(U["used"]):
                    continue
                verbs = tuple(x for x in READ_VERBS if true(U[x]))
                verbs += (WILDCARD,) if true(U["any_verb"]) else ()
                resources = ((SECRETS,) if true(U["secrets"]) else ()) + \
                    ((WILDCARD,) if true(U["any_resource"]) else ())
                rnames = (nm(U["rname"], "secret"),) if true(U["has_name"]) else ()
                rules.append((verbs or ("create",), resources or ("configmaps",), rnames))
            cluster = true(R["cluster"])
            roles.append((CLUSTER_ROLE if cluster else ROLE, "" if cluster else ns(R["ns"]),
                          nm(R["name"], "role"), tuple(rules)))
        bindings = []
        for b in range(self.shape["bindings"]):
            B = v["binding", b]
            if not true(B["used"]):
                continue
            subjects = []
            for k in range(self.shape["subjects"]):
                S = v["subject", b, k]
                if not true(S["used"]):
                    continue
                if true(S["sa"]):
                    subjects.append((SERVICE_ACCOUNT, nm(S["name"], "account"), ns(S["ns"])))
                else:
                    subjects.append((USER, nm(S["name"], "user"), ""))
            cluster = true(B["cluster"])
            bindings.append((CLUSTER_ROLE_BINDING if cluster else ROLE_BINDING,
                             "" if cluster else ns(B["ns"]), f"binding-{b}",
                             (CLUSTER_ROLE if true(B["ref_cluster"]) else ROLE,
                              nm(B["ref_name"], "role")), tuple(subjects)))
        policy = (tuple(roles), tuple(bindings))
        return policy, (identity, verb, namespace, name), tuple(spaces.values())

    def replayable(self, v):
        """A request the access machine can issue: by a user, or by a
        namespace's default account (the only accounts its controller makes)."""
        return z3.Or(z3.Not(v["id_sa"]), v["id_name"] == DEFAULT)


def behaviour(policy, request, namespaces, mutant):
    """The access machine for a decoded rule set, and the steps that issue the
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


def check_rules(mutant: str | None = None, *, timeout_ms: int | None = None,
                **shape) -> RbacOutcome:
    """Prove the claim for every rule set and request of the shape, or find
    (for a mutant: must find) a counterexample, decoded into an access
    machine and a behaviour of it (not yet replayed: the caller replays)."""
    enc = RbacEncoding(mutant=mutant, **shape)
    start = time.perf_counter()
    if mutant is None:
        s = z3.Solver()
    else:
        # a counterexample people read: as few roles, rules, bindings and
        # subjects as the bug needs, and preferably the seeds' case of a
        # namespace's account reaching into another namespace
        s = z3.Optimize()
        s.add(enc.replayable(enc.v))
        for key, slot in enc.v.items():
            if isinstance(slot, dict):
                s.add_soft(z3.Not(slot["used"]), weight=10)
        s.add_soft(z3.And(enc.v["id_sa"], enc.v["id_ns"] != enc.v["ns"]), weight=5)
    if timeout_ms:
        s.set("timeout", timeout_ms)
    s.add(enc.well_formed(enc.v), z3.Not(enc.claim(enc.v)))
    r = s.check()
    seconds = time.perf_counter() - start
    shape_text = ", ".join(f"{k} {n}" for k, n in enc.shape.items())
    if r == z3.unsat:
        return RbacOutcome(PROVED, seconds,
                           f"no rule set ({shape_text}) and no request, for all names and "
                           "namespaces, grants a Secret read outside the binding's scope")
    if r == z3.unknown:
        return RbacOutcome(UNKNOWN, seconds, s.reason_unknown())
    policy, request, spaces = enc.decode(s.model())
    namespaces = tuple(dict.fromkeys((request[2],) + spaces))
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
    identity, verb, namespace, name = request
    return RbacOutcome(VIOLATED, seconds,
                       f"{verb} secrets {namespace}/{name or '*'} granted to "
                       f"{identity} by a binding out of its scope", policy, request, machine,
                       init, tuple(trail))


#: The shape the catalog proves: 4 roles of 3 rules, 4 bindings of 3 subjects.
SHAPE = {"roles": 4, "rules": 3, "bindings": 4, "subjects": 3}

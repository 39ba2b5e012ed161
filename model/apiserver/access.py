"""Who may read a Secret: identities, the ServiceAccount and token
controllers, and role-based authorization (RBAC) as a pure function.

The seeds name the pieces: the controller manager runs controllers "to
create endpoints, service accounts, and api access tokens" (seeds/000), the
"Service Account & Token controllers: Create default accounts and API access
tokens for new namespaces" (seeds/002), and etcd stores "configMaps, secrets
etc." (seeds/000) behind the apiserver, which "intercepts restful calls from
users, operators and external agents, then validates and processes them"
(seeds/000). Which caller may read which Secret is decided by the rule set;
its semantics are those of the Kubernetes RBAC reference ("Using RBAC
Authorization", kubernetes.io/docs/reference/access-authn-authz/rbac) and of
the rbac.authorization.k8s.io/v1 API reference:

* "Permissions are purely additive (there are no "deny" rules)": a request is
  allowed when *some* binding allows it, and refused when none does (deny
  by default).
* "A Role always sets permissions within a particular namespace";
  a ClusterRole is not namespaced.
* "A RoleBinding grants permissions within a specific namespace whereas a
  ClusterRoleBinding grants that access cluster-wide"; a RoleBinding "may
  reference any Role in the same namespace", or a ClusterRole, whose
  permissions then apply only inside the RoleBinding's namespace; a
  ClusterRoleBinding references ClusterRoles only (the API rejects anything
  else, and so does :func:`check_policy`).
* A PolicyRule's verbs, resources and resourceNames: "'*' represents all"
  verbs / resources; resourceNames "is an optional white list of names that
  the rule applies to. An empty set means that everything is allowed". A
  request without a name (list, watch of a collection) therefore matches
  only rules without resourceNames (RBAC's fieldSelector refinement is not
  modelled).
* Subjects: a User by name, a ServiceAccount by namespace and name; a
  ServiceAccount authenticates as ``system:serviceaccount:<ns>:<name>``.
  Group subjects and API groups are not modelled (every resource here is in
  the core group).

Two layers, as in ``model.store.mvcc``: the pure functions
(:func:`authorize` and the matchers it is made of), which carry no bug and
no knob, and the machine :class:`Access`, whose seeded bug perturbs how it
*uses* them.

Value shapes (plain tuples, so they can be bounds recorded in a trace)::

    identity = ("User", name) | ("ServiceAccount", namespace, name)
    rule     = (verbs, resources, resource_names)          tuples of str
    role     = (kind, namespace, name, rules)              kind Role | ClusterRole
                                                           namespace "" for a ClusterRole
    subject  = ("User", name, "") | ("ServiceAccount", name, namespace)
    binding  = (kind, namespace, name, (role_kind, role_name), subjects)
                                                           kind RoleBinding | ClusterRoleBinding
                                                           namespace "" for a ClusterRoleBinding
    policy   = (roles, bindings)
"""

from __future__ import annotations

from kubemc.model.controllers.accounts import wants_default_account, wants_token
from kubemc.model.kernel import ENVIRONMENT, SYSTEM, Machine, Mutant, Step, action

USER, SERVICE_ACCOUNT = "User", "ServiceAccount"
ROLE, CLUSTER_ROLE = "Role", "ClusterRole"
ROLE_BINDING, CLUSTER_ROLE_BINDING = "RoleBinding", "ClusterRoleBinding"
WILDCARD = "*"
SECRETS = "secrets"
#: The verbs that disclose a Secret's data to the caller.
READ_VERBS = ("get", "list", "watch")
#: The account the ServiceAccount controller creates in every namespace.
DEFAULT_ACCOUNT = "default"
#: The Secret holding that account's API access token (the token controller's
#: output; reading it lets the reader act as the account).
TOKEN_SECRET = "default-token"


# ---------------------------------------------------------------------------
# Identities
# ---------------------------------------------------------------------------


def user(name: str) -> tuple:
    return (USER, name)


def service_account(namespace: str, name: str = DEFAULT_ACCOUNT) -> tuple:
    return (SERVICE_ACCOUNT, namespace, name)


def username(identity: tuple) -> str:
    """The name the apiserver authenticates an identity as."""
    if identity[0] == SERVICE_ACCOUNT:
        return f"system:serviceaccount:{identity[1]}:{identity[2]}"
    return identity[1]


# ---------------------------------------------------------------------------
# The rule set, as pure functions
# ---------------------------------------------------------------------------


def rule_matches(rule: tuple, verb: str, resource: str, name: str) -> bool:
    """A PolicyRule covers the request; ``name`` is "" for a collection."""
    verbs, resources, names = rule
    if verb not in verbs and WILDCARD not in verbs:
        return False
    if resource not in resources and WILDCARD not in resources:
        return False
    return not names or name in names


def subject_matches(subject: tuple, identity: tuple) -> bool:
    kind, name, namespace = subject
    if kind == USER:
        return identity == (USER, name)
    return identity == (SERVICE_ACCOUNT, namespace, name)


def binding_applies(binding: tuple, namespace: str) -> bool:
    """The scope rule: a ClusterRoleBinding grants in every namespace, a
    RoleBinding only in its own."""
    return binding[0] == CLUSTER_ROLE_BINDING or binding[1] == namespace


def referenced_roles(policy: tuple, binding: tuple):
    """The roles a binding's roleRef resolves to: a Role of the binding's own
    namespace, or a ClusterRole (an unresolved reference grants nothing)."""
    ref_kind, ref_name = binding[3]
    for role in policy[0]:
        if role[0] != ref_kind or role[2] != ref_name:
            continue
        if ref_kind == ROLE and (binding[0] != ROLE_BINDING or role[1] != binding[1]):
            continue
        yield role


def binding_grants(policy: tuple, binding: tuple, identity: tuple, verb: str,
                   resource: str, name: str) -> bool:
    """The binding names the identity and its role has a rule covering the
    request — everything about the binding except where it applies."""
    if not any(subject_matches(s, identity) for s in binding[4]):
        return False
    return any(rule_matches(rule, verb, resource, name)
               for role in referenced_roles(policy, binding) for rule in role[3])


def authorize(policy: tuple, identity: tuple, verb: str, resource: str, namespace: str,
              name: str = "") -> bool:
    """RBAC's decision for one request: allowed iff some binding that applies
    in the request's namespace grants it (additive, deny by default)."""
    return any(binding_applies(b, namespace)
               and binding_grants(policy, b, identity, verb, resource, name)
               for b in policy[1])


def check_policy(policy) -> None:
    """Reject a rule set the Kubernetes API would not accept, with one line."""
    try:
        roles, bindings = policy
        for kind, namespace, name, rules in roles:
            if kind not in (ROLE, CLUSTER_ROLE):
                raise ValueError(f"role {name!r}: kind must be Role or ClusterRole")
            if (kind == ROLE) != bool(namespace):
                raise ValueError(f"role {name!r}: a Role has a namespace, a ClusterRole none")
            for verbs, resources, names in rules:
                if not verbs or not resources:
                    raise ValueError(f"role {name!r}: a rule needs verbs and resources")
        for kind, namespace, name, (ref_kind, ref_name), subjects in bindings:
            if kind not in (ROLE_BINDING, CLUSTER_ROLE_BINDING):
                raise ValueError(f"binding {name!r}: kind must be RoleBinding or "
                                 "ClusterRoleBinding")
            if (kind == ROLE_BINDING) != bool(namespace):
                raise ValueError(f"binding {name!r}: a RoleBinding has a namespace, "
                                 "a ClusterRoleBinding none")
            if kind == CLUSTER_ROLE_BINDING and ref_kind != CLUSTER_ROLE:
                raise ValueError(f"binding {name!r}: a ClusterRoleBinding can only "
                                 "reference a ClusterRole")
            for s_kind, s_name, s_namespace in subjects:
                if s_kind not in (USER, SERVICE_ACCOUNT) or \
                        (s_kind == SERVICE_ACCOUNT) != bool(s_namespace):
                    raise ValueError(f"binding {name!r}: bad subject {s_kind}/{s_name}")
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ValueError) and str(exc).startswith(("role", "binding")):
            raise
        raise ValueError("policy must be (roles, bindings) of the documented shape") from None


#: The default rule set of the ``access`` model: one grant of each shape a
#: real cluster has, so the namespace scope is exercised both ways.
DEFAULT_POLICY = (
    (
        (ROLE, "team-a", "secret-reader", ((READ_VERBS, (SECRETS,), ()),)),
        # written with every read verb, as people do; its resourceNames make
        # it grant a get of "db" only — a list or watch carries no name
        (CLUSTER_ROLE, "", "db-viewer", ((READ_VERBS, (SECRETS,), ("db",)),)),
        (CLUSTER_ROLE, "", "cluster-admin", (((WILDCARD,), (WILDCARD,), ()),)),
    ),
    (
        # team-a's own account reads team-a's secrets
        (ROLE_BINDING, "team-a", "app-reads-secrets", (ROLE, "secret-reader"),
         ((SERVICE_ACCOUNT, DEFAULT_ACCOUNT, "team-a"),)),
        # a ClusterRole granted through a RoleBinding: only inside team-b, and
        # to a subject of another namespace — legitimate, and not a leak
        (ROLE_BINDING, "team-b", "db-viewers", (CLUSTER_ROLE, "db-viewer"),
         ((USER, "alice", ""), (SERVICE_ACCOUNT, DEFAULT_ACCOUNT, "team-a"))),
        (CLUSTER_ROLE_BINDING, "", "ops-admin", (CLUSTER_ROLE, "cluster-admin"),
         ((USER, "ops", ""),)),
        # team-b's binding for its own account, made before team-b's Role of
        # that name: the roleRef resolves in team-b only, so it grants
        # nothing (team-a's "secret-reader" is another Role)
        (ROLE_BINDING, "team-b", "app-reads-secrets", (ROLE, "secret-reader"),
         ((SERVICE_ACCOUNT, DEFAULT_ACCOUNT, "team-b"),)),
    ),
)


# ---------------------------------------------------------------------------
# The machine
# ---------------------------------------------------------------------------

#: Indices into a namespace's state.
N_CREATED, N_ACCOUNT, N_TOKEN = 0, 1, 2
#: Response statuses (HTTP codes, as the apiserver answers them).
OK, UNAUTHORIZED, FORBIDDEN, NOT_FOUND = "200", "401", "403", "404"


ROLEBINDING_IGNORES_NAMESPACE = "rolebinding_ignores_namespace"
RESOURCE_NAMES_MATCH_COLLECTIONS = "resource_names_match_collections"


class Access(Machine):
    """Namespaces, the ServiceAccount and token controllers, Secrets, and
    callers reading Secrets through the apiserver's authorizer.

    State ``(namespaces, last)``:

    * ``namespaces`` — per configured namespace, in order,
      ``(created, account, token, secret_1, …)`` as 0/1: whether it exists,
      whether the ServiceAccount controller has created its ``default``
      account, whether the token controller has created that account's token
      Secret (``default-token``), and which of the configured Secrets exist;
    * ``last`` — a ghost the property reads: the apiserver's answer to the
      request that led to this state, ``(status, identity, verb, namespace,
      names)`` with ``names`` the Secrets whose data it disclosed (sorted);
      ``()`` after any other step. (Keeping only the latest answer, rather
      than every answer so far, keeps the space small: each disclosure is
      checked in the state it leads to.)

    Actions:

    * ``CreateNamespace(ns)``, ``CreateSecret(ns, name)`` — environment;
    * ``CreateServiceAccount(ns)`` — system: the ServiceAccount controller,
      for a namespace without its default account;
    * ``CreateToken(ns)`` — system: the token controller, for an account
      without a token;

      both guards are the shared decisions of ``model.controllers.accounts``
      (:func:`wants_default_account`, :func:`wants_token`), which the
      ``serviceaccount`` watch loop's reconcile calls too; that loop's third
      decision (delete an orphan token) has no step here, as no account is
      ever deleted in this model;
    * ``Get(credential, ns, name)``, ``List(credential, ns)``,
      ``Watch(credential, ns)`` — environment: every request carries a
      credential, ``user:<name>`` (a user the cluster's authenticator knows)
      or ``token:<ns>`` (the default account's token of ``ns``, which
      authenticates only once the token controller has issued it). The
      apiserver authenticates (401), authorizes with :func:`authorize` (403),
      then answers (404 for a missing Secret). A list or watch discloses
      every Secret of the namespace (a watch's initial ADDED events).

    Bounds: ``namespaces``, ``secrets`` (names created by users in any
    namespace, besides the token Secrets), ``users``, and ``policy`` (the
    rule set, fixed for a run). Every answer is a state, so the space is
    finite without a further bound.
    """

    name = "access"
    mutants = {
        ROLEBINDING_IGNORES_NAMESPACE: Mutant(
            "the authorizer matches a RoleBinding's grants in every namespace, as if it "
            "were a ClusterRoleBinding", violates="secret_read_authorized"),
        RESOURCE_NAMES_MATCH_COLLECTIONS: Mutant(
            "the rule matcher applies resourceNames only to requests that carry a name, so a "
            "rule restricted to named Secrets also grants list and watch of the whole "
            "namespace", violates="secret_read_authorized"),
    }

    def __init__(self, namespaces=("team-a", "team-b"), secrets=("db",),
                 users=("alice", "ops"), policy=DEFAULT_POLICY, mutant: str | None = None):
        super().__init__(mutant)
        # one name on the command line (--bound users=alice) is a str
        self.namespaces, self.secrets, self.users = (
            (x,) if isinstance(x, str) else tuple(x) for x in (namespaces, secrets, users))
        check_policy(policy)
        self.policy = policy
        if not self.namespaces or len(set(self.namespaces)) != len(self.namespaces):
            raise ValueError("access bounds: namespaces must be distinct and at least one")
        if TOKEN_SECRET in self.secrets or len(set(self.secrets)) != len(self.secrets):
            raise ValueError(f"access bounds: secrets must be distinct and not "
                             f"{TOKEN_SECRET!r} (the token controller's)")
        if any(u.startswith("system:") for u in self.users):
            raise ValueError("access bounds: user names may not start with 'system:'")
        self.credentials = tuple(f"user:{u}" for u in self.users) + \
            tuple(f"token:{ns}" for ns in self.namespaces)
        self._ns = {ns: i for i, ns in enumerate(self.namespaces)}
        self._secret = {s: N_TOKEN + 1 + i for i, s in enumerate(self.secrets)}
        self._authorize = {None: authorize,
                           ROLEBINDING_IGNORES_NAMESPACE: self._authorize_any_namespace,
                           RESOURCE_NAMES_MATCH_COLLECTIONS: self._authorize_names_loosely,
                           }[mutant]
        self._successors: dict = {}

    def config(self):
        return {"namespaces": self.namespaces, "secrets": self.secrets, "users": self.users,
                "policy": self.policy}

    def init_states(self):
        yield (tuple((0,) * (3 + len(self.secrets)) for _ in self.namespaces), ())

    # -- the seeded bug ------------------------------------------------------------
    def _authorize_any_namespace(self, policy, identity, verb, resource, namespace, name=""):
        """rolebinding_ignores_namespace: the binding's scope is never checked."""
        return any(binding_grants(policy, b, identity, verb, resource, name)
                   for b in policy[1])

    def _authorize_names_loosely(self, policy, identity, verb, resource, namespace, name=""):
        """resource_names_match_collections: a request without a name passes
        every resourceNames restriction."""
        def matches(rule):
            verbs, resources, _ = rule
            return rule_matches((verbs, resources, ()) if not name else rule,
                                verb, resource, name)
        return any(binding_applies(b, namespace)
                   and any(subject_matches(s, identity) for s in b[4])
                   and any(matches(rule) for role in referenced_roles(policy, b)
                           for rule in role[3])
                   for b in policy[1])

    # -- steps ---------------------------------------------------------------------
    def steps(self, state):
        for ns in self.namespaces:
            yield Step("CreateNamespace", (ns,))
            yield Step("CreateServiceAccount", (ns,))
            yield Step("CreateToken", (ns,))
            for s in self.secrets:
                yield Step("CreateSecret", (ns, s))
        for cred in self.credentials:
            for ns in self.namespaces:
                for s in self.secrets + (TOKEN_SECRET,):
                    yield Step("Get", (cred, ns, s))
                yield Step("List", (cred, ns))
                yield Step("Watch", (cred, ns))

    # -- the actions: each declared once, on its handler ------------------------
    @action("CreateNamespace", tag=ENVIRONMENT)
    def create_namespace(self, state, ns):
        i = self._ns.get(ns)
        if i is None or state[0][i][N_CREATED]:
            return None
        return self._set(state, i, N_CREATED)

    @action("CreateServiceAccount", tag=SYSTEM)
    def create_service_account(self, state, ns):
        i = self._ns.get(ns)
        if i is None or not wants_default_account(state[0][i][N_CREATED], state[0][i][N_ACCOUNT]):
            return None
        return self._set(state, i, N_ACCOUNT)

    @action("CreateToken", tag=SYSTEM)
    def create_token(self, state, ns):
        i = self._ns.get(ns)
        if i is None or not wants_token(state[0][i][N_ACCOUNT], state[0][i][N_TOKEN]):
            return None
        return self._set(state, i, N_TOKEN)

    @action("CreateSecret", tag=ENVIRONMENT)
    def create_secret(self, state, ns, name):
        i = self._ns.get(ns)
        if i is None:
            return None
        slot = self._secret.get(name)
        if slot is None or not state[0][i][N_CREATED] or state[0][i][slot]:
            return None
        return self._set(state, i, slot)

    @action("Get", tag=ENVIRONMENT)
    def get_secret(self, state, credential, ns, name):
        return self._request(state, "get", (credential, ns, name))

    @action("List", tag=ENVIRONMENT)
    def list_secrets(self, state, credential, ns):
        return self._request(state, "list", (credential, ns))

    @action("Watch", tag=ENVIRONMENT)
    def watch_secrets(self, state, credential, ns):
        return self._request(state, "watch", (credential, ns))

    def _request(self, state, verb, p):
        if self._ns.get(p[1]) is None:
            return None
        return (state[0], self._answer(state[0], verb, p))

    def _set(self, state, i, field):
        namespaces = state[0]
        ns_state = namespaces[i][:field] + (1,) + namespaces[i][field + 1:]
        return (namespaces[:i] + (ns_state,) + namespaces[i + 1:], ())

    def successors(self, state):
        """The generic loop, memoized per ``namespaces``: no step reads
        ``last`` (it is what the step into this state disclosed), and the
        rule set is fixed for a run, so the successors of a namespaces value
        never change. Random runs revisit the same few dozen of them."""
        namespaces = state[0]
        out = self._successors.get(namespaces)
        if out is None:
            out = tuple(Machine.successors(self, (namespaces, ())))
            self._successors[namespaces] = out
        return iter(out)

    def authenticate(self, namespaces, credential: str):
        """The identity a credential proves, or None (401)."""
        kind, _, who = credential.partition(":")
        if kind == "user" and who in self.users:
            return user(who)
        if kind == "token" and who in self._ns and namespaces[self._ns[who]][N_TOKEN]:
            return service_account(who)
        return None

    def existing_secrets(self, namespaces, namespace: str) -> tuple:
        ns_state = namespaces[self._ns[namespace]]
        names = [s for s, slot in self._secret.items() if ns_state[slot]]
        if ns_state[N_TOKEN]:
            names.append(TOKEN_SECRET)
        return tuple(sorted(names))

    def _answer(self, namespaces, verb, p):
        credential, namespace = p[0], p[1]
        wanted = p[2] if verb == "get" else ""
        if verb == "get" and wanted not in self._secret and wanted != TOKEN_SECRET:
            return None
        identity = self.authenticate(namespaces, credential)
        if identity is None:
            return (UNAUTHORIZED, (), verb, namespace, ())
        if not self._authorize(self.policy, identity, verb, SECRETS, namespace, wanted):
            return (FORBIDDEN, identity, verb, namespace, ())
        present = self.existing_secrets(namespaces, namespace)
        if verb == "get":
            if wanted not in present:
                return (NOT_FOUND, identity, verb, namespace, ())
            return (OK, identity, verb, namespace, (wanted,))
        return (OK, identity, verb, namespace, present)

    def view(self, state):
        namespaces, last = state
        out = {}  # one variable per namespace, so a trace shows which one changed
        for ns, s in zip(self.namespaces, namespaces):
            out[f"namespace/{ns}"] = {
                "created": bool(s[N_CREATED]), "service_account": bool(s[N_ACCOUNT]),
                "token": bool(s[N_TOKEN]),
                "secrets": frozenset(self.existing_secrets(namespaces, ns))}
        if last:
            status, identity, verb, namespace, names = last
            answer = {"status": status, "user": username(identity) if identity else "",
                      "verb": verb, "namespace": namespace, "disclosed": list(names)}
        else:
            answer = {"status": "", "user": "", "verb": "", "namespace": "", "disclosed": []}
        out["last_response"] = answer
        return out

"""Properties of the apiserver's access models: who may read a Secret
(``model.apiserver.access``) and the optimistic update rule
(``model.apiserver.conflict``).

Both are stated over ghost state the machines keep for them — the
apiserver's last answer, the log of acknowledged updates — and decided by
the semantics restated here from the Kubernetes documentation, never with
the model's functions or with what the machine under test did: a seeded bug
in a machine's matchers cannot bend its own yardstick.
"""

from __future__ import annotations

from kubemc.model.apiserver.conflict import CREATED_REVISION
from kubemc.properties.core import COVER, INVARIANT, Property

#: The core-group resource name of Secrets, and the answer that discloses
#: them (HTTP 200): values of the Kubernetes API, not of the model.
SECRETS, OK = "secrets", "200"

_RBAC = ("Kubernetes RBAC reference (kubernetes.io/docs/reference/access-authn-authz/rbac): "
         "'Permissions are purely additive (there are no \"deny\" rules)'; 'A RoleBinding "
         "grants permissions within a specific namespace whereas a ClusterRoleBinding grants "
         "that access cluster-wide'; a ClusterRole referenced by a RoleBinding applies only "
         "in the RoleBinding's namespace; PolicyRule resourceNames: 'An empty set means that "
         "everything is allowed'; 'If you restrict list or watch by resourceName, clients must "
         "include a metadata.name field selector'; service accounts authenticate as "
         "'system:serviceaccount:(NAMESPACE):(SERVICEACCOUNT)'")
_SEED_SECRETS = ("seeds/000: 'etcd is also used to store configuration details such as "
                 "subnets, configMaps, secrets etc.'; seeds/002: 'Service Account & Token "
                 "controllers: Create default accounts and API access tokens for new "
                 "namespaces'; seeds/000: the api server 'intercepts restful calls from users, "
                 "operators and external agents, then validates and processes them'")
_SEED_409 = ("seeds/004: 'The first request would update the database. The second request "
             "would no longer have the same version number, in which case the kube-apiserver "
             "would reply with an error 409 to the requester.'")
_CONVENTIONS = ("Kubernetes API conventions, 'Concurrency Control and Consistency': an update "
                "carrying a resourceVersion that is no longer current is rejected with 409 "
                "Conflict, the resourceVersion being etcd's mod_revision")


# ---------------------------------------------------------------------------
# Secrets are read only as the rules allow
# ---------------------------------------------------------------------------


# The RBAC semantics, restated from the Kubernetes documentation (not from
# model.apiserver.access, whose matchers are what is under test). The value
# shapes are the model's documented tuples.


def _username(identity) -> str:
    """The name the authenticator gives a caller: a user's own name; for a
    ServiceAccount "system:serviceaccount:<namespace>:<name>" (Kubernetes
    'Managing Service Accounts' / 'Authenticating': service accounts
    "authenticate with the username system:serviceaccount:(NAMESPACE):(SERVICEACCOUNT)")."""
    if identity[0] == "ServiceAccount":
        return f"system:serviceaccount:{identity[1]}:{identity[2]}"
    return identity[1]


def _subject_username(subject) -> str:
    """A binding subject, as the username it stands for (RBAC reference,
    'Referring to subjects': a ServiceAccount subject is written with its
    name and namespace and stands for system:serviceaccount:<ns>:<name>)."""
    kind, name, namespace = subject
    return f"system:serviceaccount:{namespace}:{name}" if kind == "ServiceAccount" else name


def _rules_granted(policy, identity):
    """Every (namespace or None, rule) the rule set gives ``identity``, None
    meaning every namespace: for each binding whose subjects name the
    caller, the rules of the role its roleRef names — a ClusterRole by name,
    or a Role by name *in the binding's namespace* ("A RoleBinding may
    reference any Role in the same namespace"; a ClusterRoleBinding's roleRef
    is a ClusterRole) — in force where the binding is: a RoleBinding only in
    its namespace, a ClusterRoleBinding everywhere."""
    me = _username(identity)
    by_key = {(kind, namespace, name): rules for kind, namespace, name, rules in policy[0]}
    for kind, namespace, _, (ref_kind, ref_name), subjects in policy[1]:
        if me not in {_subject_username(s) for s in subjects}:
            continue
        where = None if kind == "ClusterRoleBinding" else namespace
        home = "" if ref_kind == "ClusterRole" else namespace
        for rule in by_key.get((ref_kind, home, ref_name), ()):
            yield where, rule


def _rule_covers_read(rule, verb: str, name: str) -> bool:
    """A PolicyRule covers a read of Secret ``name`` with ``verb``: the verb
    and the resource are listed or "*" ("'*' represents all"), and either
    the rule has no resourceNames ("An empty set means that everything is
    allowed") or the request is a get of one of them: a list or watch of the
    collection carries no name ("If you restrict list or watch by
    resourceName, clients must include a metadata.name field selector in
    their list or watch request that matches the specified resourceName in
    order to be authorized"; field selectors are not modelled)."""
    verbs, resources, resource_names = rule
    if not ({verb, "*"} & set(verbs)) or not ({SECRETS, "*"} & set(resources)):
        return False
    if not resource_names:
        return True
    return verb == "get" and name in resource_names


def rules_allow_read(policy, identity, verb: str, namespace: str, name: str) -> bool:
    """Whether the rule set lets ``identity`` read Secret ``namespace/name``
    with ``verb``: permissions are additive, so some rule granted to the
    caller must be in force in ``namespace`` and cover the read."""
    return any(where in (None, namespace) and _rule_covers_read(rule, verb, name)
               for where, rule in _rules_granted(policy, identity))


# ---------------------------------------------------------------------------
# What the default rule set is meant to allow (the z3 check's yardstick)
# ---------------------------------------------------------------------------

#: An intent entry's namespace when it holds in every namespace.
ANYWHERE = "*"
_ALL_READS = ("get", "list", "watch")

#: Who the default rule set of ``model.apiserver.access`` is *meant* to let
#: read which Secrets, written as a table of plain facts — no RBAC matcher,
#: no binding — so that the z3 check (``rbac_secret_scope``) compares the
#: rule set's grants against something other than their own encoding.
#: Entries: ``(identity, verbs, namespace or ANYWHERE, names or ())``; an
#: entry with names allows only a get of those Secrets. Everything not
#: listed is forbidden: in particular no ServiceAccount other than team-a's
#: ``default`` reads anything, team-a's account reads outside team-a only
#: team-b's ``db`` by name, and only ops reads in namespaces the rule set
#: never mentions.
DEFAULT_POLICY_INTENT = (
    # the cluster's operator administers every namespace
    (("User", "ops"), _ALL_READS, ANYWHERE, ()),
    # team-a's workload reads its own namespace's Secrets
    (("ServiceAccount", "team-a", "default"), _ALL_READS, "team-a", ()),
    # team-b shares its database credentials, by name, with alice and with
    # team-a's workload
    (("ServiceAccount", "team-a", "default"), ("get",), "team-b", ("db",)),
    (("User", "alice"), ("get",), "team-b", ("db",)),
)


def intended_read(intent, identity, verb: str, namespace: str, name: str) -> bool:
    """Whether ``intent`` lets ``identity`` read ``namespace/name`` with
    ``verb`` (``name`` ignored for a list or watch, which discloses the
    whole namespace)."""
    return any(who == tuple(identity) and verb in verbs and where in (ANYWHERE, namespace)
               and (not names or (verb == "get" and name in names))
               for who, verbs, where, names in intent)


def secret_read_authorized(m, state) -> bool:
    last = state[1]
    if not last or last[0] != OK:
        return True
    _, identity, verb, namespace, names = last
    return all(rules_allow_read(m.policy, identity, verb, namespace, n) for n in names)


SECRET_READ_AUTHORIZED = Property(
    "secret_read_authorized", "apiserver", INVARIANT,
    "No identity reads a Secret the rules do not allow: every Secret the apiserver discloses "
    "(get, list, watch) is one a binding naming the caller grants, a RoleBinding only within "
    "its own namespace, a ClusterRoleBinding anywhere, resourceNames only on a get.",
    f"{_SEED_SECRETS}; {_RBAC}", secret_read_authorized)


# ---------------------------------------------------------------------------
# No acknowledged update is lost
# ---------------------------------------------------------------------------


def acknowledged_updates_not_lost(m, state) -> bool:
    """Every acknowledged update was computed from the version it replaced:
    its base is the revision the previous acknowledged write created (the
    object's creation for the first). The clients are the object's only
    writers, so the previous acknowledged write is the version it replaced;
    a base older than that means a write the client never saw was
    overwritten — a lost update."""
    expected = CREATED_REVISION
    for _, base, written in state[2]:
        if base != expected:
            return False
        expected = written
    return True


ACKNOWLEDGED_UPDATES_NOT_LOST = Property(
    "acknowledged_updates_not_lost", "apiserver", INVARIANT,
    "No acknowledged update is lost: each acknowledged update was based on the version it "
    "replaced, so no client's acknowledged write is overwritten by a write that never saw it.",
    f"{_SEED_409}; {_CONVENTIONS}", acknowledged_updates_not_lost)

def some_update_acknowledged(m, state) -> bool:
    """Some client's update has been acknowledged (the ghost log holds an
    entry): without one, ``acknowledged_updates_not_lost`` has nothing to
    judge."""
    return bool(state[2])


UPDATE_ACKNOWLEDGED = Property(
    "conflict_cover_update_acknowledged", "apiserver", COVER,
    "Some client's update is acknowledged in the conflict model: clients read the object and "
    "write it back, so the lost-update property is judged on real writes, not vacuously",
    f"{_SEED_409}; {_CONVENTIONS}", some_update_acknowledged)


def token_answered(m, state) -> bool:
    """The last request came with a ServiceAccount's token and was answered."""
    last = state[1]
    # an identity is ("ServiceAccount", namespace, name) for a token's bearer
    return bool(last) and last[0] == OK and bool(last[1]) and last[1][0] == "ServiceAccount"


TOKEN_ANSWERED = Property(
    "access_cover_token_answered", "apiserver", COVER,
    "Some request authenticated by a ServiceAccount's token is answered: the ServiceAccount "
    "and token controllers issue tokens at these bounds, so the authorization property is "
    "also judged for service accounts",
    "seeds/002: 'Service Account & Token controllers: Create default accounts and API access "
    "tokens for new namespaces'", token_answered)

ACCESS_PROPERTIES = (SECRET_READ_AUTHORIZED, TOKEN_ANSWERED)
CONFLICT_PROPERTIES = (ACKNOWLEDGED_UPDATES_NOT_LOST, UPDATE_ACKNOWLEDGED)
PROPERTIES = ACCESS_PROPERTIES + CONFLICT_PROPERTIES

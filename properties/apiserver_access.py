"""Properties of the apiserver's access models: who may read a Secret
(``model.apiserver.access``) and the optimistic update rule
(``model.apiserver.conflict``).

Both are stated over ghost state the machines keep for them — the
apiserver's last answer, the log of acknowledged updates — and decided with
the pure functions of the model, never with what the machine under test
did: a seeded bug in a machine cannot bend its own yardstick.
"""

from __future__ import annotations

from model.apiserver.access import (
    CLUSTER_ROLE_BINDING, OK, SECRETS, referenced_roles, rule_matches, subject_matches,
)
from model.apiserver.conflict import CREATED_REVISION
from properties.core import INVARIANT, Property

_RBAC = ("Kubernetes RBAC reference (kubernetes.io/docs/reference/access-authn-authz/rbac): "
         "'Permissions are purely additive (there are no \"deny\" rules)'; 'A RoleBinding "
         "grants permissions within a specific namespace whereas a ClusterRoleBinding grants "
         "that access cluster-wide'; a ClusterRole referenced by a RoleBinding applies only "
         "in the RoleBinding's namespace; PolicyRule resourceNames: 'An empty set means that "
         "everything is allowed'")
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


def rules_allow_read(policy, identity, verb: str, namespace: str, name: str) -> bool:
    """Whether the rule set lets ``identity`` read Secret ``namespace/name``
    with ``verb`` — stated from the bindings' side: some binding names the
    identity, is in force in that namespace (a ClusterRoleBinding anywhere,
    a RoleBinding in its own namespace only), and resolves to a rule that
    covers the request. A collection read (list, watch) has no name, so only
    rules without resourceNames cover it."""
    requested = name if verb == "get" else ""
    for binding in policy[1]:
        in_force = binding[0] == CLUSTER_ROLE_BINDING or binding[1] == namespace
        if not in_force or not any(subject_matches(s, identity) for s in binding[4]):
            continue
        for role in referenced_roles(policy, binding):
            if any(rule_matches(rule, verb, SECRETS, requested) for rule in role[3]):
                return True
    return False


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
    "its own namespace, a ClusterRoleBinding anywhere.",
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

ACCESS_PROPERTIES = (SECRET_READ_AUTHORIZED,)
CONFLICT_PROPERTIES = (ACKNOWLEDGED_UPDATES_NOT_LOST,)
PROPERTIES = ACCESS_PROPERTIES + CONFLICT_PROPERTIES

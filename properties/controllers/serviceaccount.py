"""What the ServiceAccount and token controllers promise, read off the
apiserver's objects.

The seeds (002): "Service Account & Token controllers: Create default
accounts and API access tokens for new namespaces". Kubernetes
documentation, "Service Accounts" (kubernetes.io/docs/concepts/security/
service-accounts): "Each namespace has at least one ServiceAccount: the
default ServiceAccount resource, called default ... If you delete the
default ServiceAccount object in a namespace, the control plane replaces it
with a new one." "Managing Service Accounts" (kubernetes.io/docs/reference/
access-authn-authz/service-accounts-admin), the legacy TokenController:
"observes ServiceAccount creation and creates a corresponding ServiceAccount
token Secret to allow API access; watches ServiceAccount deletion and
deletes all corresponding ServiceAccount token Secrets".

A token Secret names the account it belongs to; whether that account
exists is read from the server, never from a controller's cache.
"""

from __future__ import annotations

from kubemc.model.apiserver.access import DEFAULT_ACCOUNT
from kubemc.model.controllers.serviceaccount import ACCOUNTS, NAMESPACES, SECRETS
from kubemc.properties.core import COVER, EVENTUALLY_ALWAYS, Property

_SEED = ("seeds/002: 'Service Account & Token controllers: Create default accounts and API "
         "access tokens for new namespaces'")
_DOCS = ("kubernetes.io/docs/concepts/security/service-accounts: 'If you delete the default "
         "ServiceAccount object in a namespace, the control plane replaces it with a new one'")
_TOKENS = ("kubernetes.io/docs/reference/access-authn-authz/service-accounts-admin: the "
           "TokenController 'watches ServiceAccount deletion and deletes all corresponding "
           "ServiceAccount token Secrets'")


def _accounts(objects) -> set:
    return {key[1] for key, _ in objects.of_kind(ACCOUNTS)}


def _token_owners(objects) -> list:
    return [value[0] for _, value in objects.of_kind(SECRETS)]


def default_and_token_present(m, state) -> bool:
    objects = m.objects(state)
    accounts = _accounts(objects)
    owners = set(_token_owners(objects))
    every_ns = all(f"{key[1]}/{DEFAULT_ACCOUNT}" in accounts
                   for key, _ in objects.of_kind(NAMESPACES))
    return every_ns and accounts <= owners


def no_orphan_tokens(m, state) -> bool:
    objects = m.objects(state)
    accounts = _accounts(objects)
    return all(owner in accounts for owner in _token_owners(objects))


def cover_default_missing(m, state) -> bool:
    """An existing namespace whose default account was deleted after it had
    been created (its token is still there)."""
    objects = m.objects(state)
    accounts = _accounts(objects)
    return any(owner.endswith("/" + DEFAULT_ACCOUNT) and owner not in accounts
               for owner in _token_owners(objects))


def cover_orphan_token(m, state) -> bool:
    return not no_orphan_tokens(m, state)


def cover_second_namespace_served(m, state) -> bool:
    """A namespace created by a user got its default account and token."""
    objects = m.objects(state)
    owners = set(_token_owners(objects))
    return any(key[1] != "ns-0" and f"{key[1]}/{DEFAULT_ACCOUNT}" in owners
               for key, _ in objects.of_kind(NAMESPACES))


PROPERTIES = (
    Property("serviceaccount_default_and_token_present", "controllers", EVENTUALLY_ALWAYS,
             "once users and faults stop, every namespace eventually has its default "
             "ServiceAccount and every ServiceAccount a token Secret, and keeps them",
             _SEED + "; " + _DOCS, default_and_token_present),
    Property("serviceaccount_no_orphan_tokens", "controllers", EVENTUALLY_ALWAYS,
             "once users and faults stop, every token Secret eventually belongs to an "
             "existing ServiceAccount, and keeps doing so", _TOKENS, no_orphan_tokens),
    Property("serviceaccount_cover_default_deleted", "controllers", COVER,
             "some reachable state has a default account deleted after its token was issued",
             _DOCS, cover_default_missing),
    Property("serviceaccount_cover_orphan_token", "controllers", COVER,
             "some reachable state has a token Secret whose account is gone", _TOKENS,
             cover_orphan_token),
    Property("serviceaccount_cover_new_namespace", "controllers", COVER,
             "some reachable state has a user-created namespace with its default account's "
             "token", _SEED, cover_second_namespace_served),
)

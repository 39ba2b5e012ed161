"""The desired-state decisions of the ServiceAccount and token controllers,
as pure functions of what a controller observes about one namespace.

One piece of code used by two models: the watch loop
:class:`model.controllers.serviceaccount.ServiceAccountControllers` calls
them from its reconcile (on its informer cache), and the ``access`` model
(:class:`model.apiserver.access.Access`) calls them as the guards of its
atomic system steps ``CreateServiceAccount`` and ``CreateToken`` (on its
per-namespace flags). A bug seeded here shows in both.

What the two share and what they do not:

* :func:`wants_default_account` and :func:`wants_token` are used by both;
* :func:`token_is_orphan` only by the watch loop: the ``access`` model has
  no account deletion, so no token Secret ever outlives its account there;
* the ``access`` model has only the ``default`` account of each namespace
  (the watch loop also has a user-created ``app`` account, which gets a
  token by the same :func:`wants_token`).

Kept free of model imports (``model.apiserver.access`` imports this
module, and ``model.controllers.serviceaccount`` imports both).
"""

from __future__ import annotations


def wants_default_account(namespace_exists, has_default_account) -> bool:
    """The ServiceAccount controller: a namespace that exists and lacks its
    ``default`` account gets one created."""
    return bool(namespace_exists) and not has_default_account


def wants_token(account_exists, has_token) -> bool:
    """The token controller: an account that exists and has no token
    Secret gets one created."""
    return bool(account_exists) and not has_token


def token_is_orphan(account_exists) -> bool:
    """The token controller: a token Secret whose account no longer exists
    is deleted."""
    return not account_exists

"""The ServiceAccount and token controllers: every namespace has its
``default`` ServiceAccount, every ServiceAccount its API token Secret, and
no token Secret outlives its account.

What the real controllers do (kubernetes/kubernetes
``pkg/controller/serviceaccount``: ``serviceaccounts_controller.go`` and
the legacy ``tokens_controller.go``), kept here:

* the ServiceAccount controller watches namespaces and ServiceAccounts; for
  a namespace (added, or whose ``default`` account was deleted) it creates
  the ``default`` account if its cache lacks it, and takes AlreadyExists as
  success;
* the token controller watches ServiceAccounts and Secrets; it creates a
  token Secret for an account that has none, and deletes the token Secrets
  of an account that no longer exists (also when it sees such a Secret).

The decisions themselves (create the ``default`` account? create a token?
delete an orphan token?) are the pure functions of
``model.controllers.accounts``, which the ``access`` model's
``CreateServiceAccount`` / ``CreateToken`` guards call too.

Both run in one kube-controller-manager; here they share one watch and one
work queue, and a reconcile dispatches on the key's kind (a namespace key is
the ServiceAccount controller's, an account or Secret key the token
controller's). This serializes their reconciles, which the real processes
do not; the properties are about what the server ends up holding, which
each reconcile moves towards independently of the other's order.

The world: a user creates a namespace (``CreateNamespace``), creates an
extra account ``app`` (``CreateAccount``) and deletes an account
(``DeleteAccount``) — all environment steps, budgeted.

Objects (names carry the namespace: ``<ns>/<name>``)::

    (namespaces, ns-N)                -> ()
    (serviceaccounts, ns-N/<name>)    -> ()
    (secrets, ns-N/<name>-token)      -> (account,)   account: "ns-N/<name>"
"""

from __future__ import annotations

from kubemc.model.apiserver.access import DEFAULT_ACCOUNT
from kubemc.model.controllers.accounts import token_is_orphan, wants_default_account, wants_token
from kubemc.model.controllers.loop import CONFLICT, ControllerLoop, create, delete
from kubemc.model.kernel import ENVIRONMENT, Mutant, Step, action

NAMESPACES, ACCOUNTS, SECRETS = "namespaces", "serviceaccounts", "secrets"
APP_ACCOUNT = "app"

NO_RESTORE = "no_restore_after_delete"
KEEPS_ORPHAN_TOKENS = "keeps_orphan_tokens"


def token_name(account: str) -> str:
    """The token Secret the token controller names after ``ns/account``."""
    return f"{account}-token"


class ServiceAccountControllers(ControllerLoop):
    name = "serviceaccount"
    primary = NAMESPACES
    world_budgets = ("namespace_creates", "account_creates", "account_deletions")
    mutants = {
        NO_RESTORE: Mutant(
            "the ServiceAccount controller acts only when a namespace is added or changed, "
            "not when its default account is deleted, so a deleted default account never "
            "comes back ('Default ServiceAccount and Token not created when a namespace is "
            "re-created', kubernetes/kubernetes#46652; gardener/gardener#55)",
            violates="serviceaccount_default_and_token_present"),
        KEEPS_ORPHAN_TOKENS: Mutant(
            "the token controller creates tokens but never deletes the token Secret of a "
            "deleted account ('Secrets of type kubernetes.io/service-account-token are not "
            "garbage collected', kubernetes/kubernetes#84642)",
            violates="serviceaccount_no_orphan_tokens"),
    }

    def __init__(self, *, namespaces: int = 1, namespace_creates: int = 1,
                 account_creates: int = 1, account_deletions: int = 1, crashes: int = 1,
                 write_failures: int = 1, resyncs: int = 0, max_objects: int = 7,
                 mutant: str | None = None):
        super().__init__(crashes=crashes, write_failures=write_failures, resyncs=resyncs,
                         max_objects=max_objects, mutant=mutant,
                         namespace_creates=namespace_creates, account_creates=account_creates,
                         account_deletions=account_deletions)
        self.namespaces = namespaces

    def config(self):
        return {"namespaces": self.namespaces, **super().config()}

    # -- the cluster it starts from ---------------------------------------------
    def initial_objects(self):
        yield [((NAMESPACES, f"ns-{i}"), ()) for i in range(self.namespaces)]

    # -- the event handlers of both controllers ---------------------------------------
    def handle(self, cache, key, old, new):
        kind, name = key
        if kind == NAMESPACES:
            return (key,)
        if kind == ACCOUNTS:
            ns, account = name.split("/")
            keys = [key]  # the token controller
            if account == DEFAULT_ACCOUNT and not (self.mutant == NO_RESTORE and new is None):
                keys.append((NAMESPACES, ns))  # the ServiceAccount controller
            return tuple(keys)
        if kind == SECRETS:
            return ((ACCOUNTS, (new or old)[0]), key)
        return ()

    def _relist(self, state):
        # both controllers' informers list again: every account and Secret
        # is an add event for the token controller
        nxt = super()._relist(state)
        return self._enqueue(nxt, (k for k, _, _ in nxt[0] if k[0] in (ACCOUNTS, SECRETS)))

    # -- the reconciles ---------------------------------------------------------------
    def reconcile(self, cache, key, memory):
        kind, name = key
        # the decisions are model.controllers.accounts' (shared with the
        # access model's CreateServiceAccount / CreateToken guards)
        if kind == NAMESPACES:
            account = (ACCOUNTS, f"{name}/{DEFAULT_ACCOUNT}")
            if wants_default_account(key in cache, account in cache):
                return (create(ACCOUNTS, account[1], ()),), memory
            return (), memory
        if kind == ACCOUNTS:
            secret = (SECRETS, token_name(name))
            if wants_token(key in cache, secret in cache):
                return (create(SECRETS, secret[1], (name,)),), memory
            if token_is_orphan(key in cache):
                return self._orphans(cache, name), memory
            return (), memory
        if kind == SECRETS and key in cache:
            owner = cache[key][0]
            if token_is_orphan((ACCOUNTS, owner) in cache):
                return self._orphans(cache, owner), memory
        return (), memory

    def _orphans(self, cache, account):
        if self.mutant == KEEPS_ORPHAN_TOKENS:
            return ()
        return tuple(delete(k, cache.rv(k)) for k, (owner,) in cache.of_kind(SECRETS)
                     if owner == account)

    def on_error(self, key, outcome, write, memory):
        # AlreadyExists on a create means the object is there: done
        return not (outcome == CONFLICT and write[0] == "create"), memory

    # -- the world -------------------------------------------------------------------
    def world_steps(self, state):
        server = self.objects(state)
        names = [k[1] for k, _ in server.of_kind(NAMESPACES)]
        if self.budget_left(state, "namespace_creates"):
            yield Step("CreateNamespace")
        if self.budget_left(state, "account_creates"):
            for ns in names:
                yield Step("CreateAccount", (ns,))
        if self.budget_left(state, "account_deletions"):
            for key, _ in server.of_kind(ACCOUNTS):
                yield Step("DeleteAccount", (key[1],))

    @action("CreateNamespace", tag=ENVIRONMENT)
    def _CreateNamespace(self, state):
        if not self.budget_left(state, "namespace_creates"):
            return None
        server = self.objects(state)
        name = next(f"ns-{i}" for i in range(len(server) + 1)
                    if (NAMESPACES, f"ns-{i}") not in server)
        return self.server_write(self.spend(state, "namespace_creates"), (NAMESPACES, name), ())

    @action("CreateAccount", tag=ENVIRONMENT)
    def _CreateAccount(self, state, ns):
        server = self.objects(state)
        key = (ACCOUNTS, f"{ns}/{APP_ACCOUNT}")
        if ((NAMESPACES, ns) not in server or key in server
                or not self.budget_left(state, "account_creates")):
            return None
        return self.server_write(self.spend(state, "account_creates"), key, ())

    @action("DeleteAccount", tag=ENVIRONMENT)
    def _DeleteAccount(self, state, account):
        key = (ACCOUNTS, account)
        if key not in self.objects(state) or not self.budget_left(state, "account_deletions"):
            return None
        return self.server_write(self.spend(state, "account_deletions"), key, None)

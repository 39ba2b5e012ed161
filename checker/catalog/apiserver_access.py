"""The apiserver's access models: identities, ServiceAccount and token
controllers, role-based authorization, and the z3 checks of the optimistic
update rule and of the rule set. ``checker.catalog.apiserver`` adds them to
the apiserver component: ``MODELS`` to its models, ``OBLIGATIONS`` (for
``symbolic_checks``) and ready ``CHECKS`` (``SymbolicCheck`` objects) to its
symbolic checks.

Two of the z3 checks are not BMC/k-induction obligations of an encoding, so
they are built here as ready :class:`~checker.z3engine.SymbolicCheck`
objects:

* ``no_lost_update_bmc`` — BMC of every interleaving of two clients up to a
  depth (a bounded check, so its verdict is "no counterexample");
* ``rbac_secret_scope`` — a constraint problem over every request and all
  names for the default rule set (``properties.symbolic.apiserver_rbac``):
  the rule set grants a Secret read exactly when the separately written
  intent (``properties.apiserver_access.DEFAULT_POLICY_INTENT``) allows it.
  Its counterexample for a mutant of the authorizer
  (``rolebinding_ignores_namespace``, ``resource_names_match_collections``)
  is decoded into an ``access`` machine with that mutant and a behaviour of
  it, which is replayed here before it is reported: every step must be
  enabled and the last state must break ``secret_read_authorized`` on the
  machine, or the run fails with ``EncodingMismatch``.
"""

from __future__ import annotations

from kubemc.checker.catalog import Model
from kubemc.checker.counterexample import Counterexample
from kubemc.checker.z3engine import (
    PROVED, UNKNOWN, VACUOUS, VIOLATED, EncodingMismatch, Z3Outcome, SymbolicCheck, bmc, confirm,
)
from kubemc.model.apiserver.access import Access
from kubemc.model.apiserver.conflict import Conflict
from kubemc.properties.apiserver_access import (
    ACCESS_PROPERTIES, CONFLICT_PROPERTIES, SECRET_READ_AUTHORIZED,
)
from kubemc.properties.symbolic import apiserver_conflict as conflict_symbolic
from kubemc.properties.symbolic import apiserver_rbac as rbac_symbolic

ACCESS = Model(
    name="access",
    build=Access,
    # two namespaces, one user Secret name, two users, the default rule set
    # (a Role and RoleBinding in team-a, a ClusterRole bound by a RoleBinding
    # in team-b, a ClusterRoleBinding, a RoleBinding in team-b whose Role
    # does not exist): 1,208 distinct states, 41,300
    # transitions, depth 9, a tenth of a second.
    bounds={"namespaces": ("team-a", "team-b"), "secrets": ("db",), "users": ("alice", "ops")},
    properties=ACCESS_PROPERTIES,
    hypothesis_bounds={"namespaces": ("team-a", "team-b", "team-c")},
)

CONFLICT = Model(
    name="conflict",
    build=Conflict,
    # three clients, up to five acknowledged writes: 14,138 distinct states,
    # depth 13, under a second. Random runs: two clients with up to ten
    # writes (a hypothesis run costs the same ~10 s whatever the bounds).
    bounds={"clients": 3, "max_revision": 7},
    properties=CONFLICT_PROPERTIES,
    hypothesis_bounds={"clients": 2, "max_revision": 12},
)

MODELS = (ACCESS, CONFLICT)
OBLIGATIONS = conflict_symbolic.OBLIGATIONS


# ---------------------------------------------------------------------------
# BMC of the update rule
# ---------------------------------------------------------------------------

_BMC_PROVES = (f"every interleaving of {conflict_symbolic.BMC_BOUNDS['clients']} clients "
               f"(reads, guarded updates, conflicts) of up to {conflict_symbolic.BMC_DEPTH} "
               "steps loses no acknowledged update")


def _run_bmc(mutant: str | None = None, *, timeout_ms: int | None = None) -> Z3Outcome:
    enc = conflict_symbolic.encoding(mutant, conflict_symbolic.BMC_BOUNDS)
    return bmc(enc, "acknowledged_updates_not_lost", conflict_symbolic.BMC_DEPTH,
               check="no_lost_update_bmc" + (f"[{mutant}]" if mutant else ""),
               timeout_ms=timeout_ms)


# ---------------------------------------------------------------------------
# The rule set, for all names
# ---------------------------------------------------------------------------

_SHAPE = rbac_symbolic.SHAPE
_RBAC_PROVES = ("for the default rule set, every caller (a user or a ServiceAccount of any "
                "name and namespace), every get/list/watch of a Secret, every namespace and "
                "Secret name (uninterpreted sorts): a read is granted exactly when the rule "
                "set's separately written intent allows it — no account reads another "
                "namespace's Secrets unless the intent names it, and resourceNames never "
                "open a list or watch")


def _run_rbac(mutant: str | None = None, *, timeout_ms: int | None = None) -> Z3Outcome:
    name = "rbac_secret_scope" + (f"[{mutant}]" if mutant else "")
    prop = SECRET_READ_AUTHORIZED.name
    out = rbac_symbolic.check_rules(mutant, timeout_ms=timeout_ms, **_SHAPE)
    bound = len(out.policy[1]) if out.policy else len(rbac_symbolic.DEFAULT_POLICY[1])
    verdict = {rbac_symbolic.PROVED: PROVED, rbac_symbolic.UNKNOWN: UNKNOWN,
               rbac_symbolic.VACUOUS: VACUOUS}.get(out.verdict)
    if verdict is not None:
        return Z3Outcome(name, prop, "smt", verdict, bound, out.seconds, detail=out.detail,
                      machine=Access(mutant=mutant))
    if mutant is None:
        # the correct authorizer grants beyond the intent: the rule set (or
        # its intent) is wrong, and the machine's property — which follows
        # the rules — cannot show it, so there is no trace to replay
        return Z3Outcome(name, prop, "smt", VIOLATED, bound, out.seconds,
                      detail=f"the default rule set exceeds its intent: {out.detail}")
    cex = Counterexample(SECRET_READ_AUTHORIZED, out.init, out.steps)
    if not out.steps:
        raise EncodingMismatch(f"rbac: the solver's request decoded to no behaviour ({out.detail})")
    confirm(out.machine, cex, "rbac")
    return Z3Outcome(name, prop, "smt", VIOLATED, len(cex.steps), out.seconds, counterexample=cex,
                  machine=out.machine,
                  detail=f"{out.detail}; {len(cex.steps)} steps, replayed on the machine")


CHECKS = (
    SymbolicCheck("no_lost_update_bmc", "apiserver", "conflict",
                  "acknowledged_updates_not_lost", _BMC_PROVES, _run_bmc),
    SymbolicCheck("rbac_secret_scope", "apiserver", "access", SECRET_READ_AUTHORIZED.name,
                  _RBAC_PROVES, _run_rbac,
                  ("rolebinding_ignores_namespace", "resource_names_match_collections")),
)

__all__ = ["ACCESS", "CHECKS", "CONFLICT", "MODELS", "OBLIGATIONS"]

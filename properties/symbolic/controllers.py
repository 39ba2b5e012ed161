"""A liveness proof by ranking function: the ReplicaSet controller converges.

What is proved, with Z3, for :class:`model.controllers.replicaset.
ReplicaSetController` at the bounds of :class:`ReplicaSetEncoding` (fixed
``replicas``, controller crashes and failed writes as faults, budgeted
resyncs, no scaling and no pod failures — the create path under stale caches
and expectations):

1. **an invariant** ``Inv`` (the lemmas below and the property
   ``replicaset_quiet_end_converged``), by 1-induction over *every* step —
   system, environment and fault — so it holds in every reachable state,
   whatever faults happened before the quiet phase;
2. **a ranking function** ``V`` into ``N^6`` under the lexicographic order,
   ``(resyncs left, replicas - server pods - in-flight creates, in-flight
   creates, cache lost, undelivered events, key queued)``: every *system*
   step — including a resync, which adds work but spends its budget — from a
   state of ``Inv`` strictly decreases it, and ``Inv`` keeps every component
   non-negative. So every quiet behaviour (no environment, no fault step) is
   finite: it ends in a state where no system step is enabled, which
   stutters forever (``properties.core``: a quiet behaviour ends there);
3. in such a state the ReplicaSet has ``replicas`` running pods — which is
   the invariant ``replicaset_quiet_end_converged`` of (1).

Together: if users and faults stop, the cluster reaches the desired state
and stays there — ``replicaset_converges`` (``<>[]P``). The proof needs no
fairness *among* actions, because *every* system step makes progress; it
needs only that a run does not stop while some system step is enabled,
which the weak fairness of ``properties.core`` implies (a run that stutters
where a system step stays enabled is not fair). Why a ranking function and
not a search: it covers every quiet run from every state of ``Inv``, not
only those the bounds of ``explore`` reach.

**Scope — what the proof does not say** (``SCOPE``, printed with the
verdict): it is for fixed ``spec.replicas`` (no ``Scale``), no pod failures
and no deletions, and the budgets of the encoding it is run at (by default
2 replicas, 1 crash, 1 failed write, 1 resync); scaling, pod failures and
the delete path are judged by explore's fair-cycle search instead.

The property that judges the end of the quiet phase is stated independently
of the controller: "no step the machine tags ``system`` is enabled" (read
off ``Machine.successors``) implies "the apiserver holds ``spec.replicas``
pods of the ReplicaSet without a deletionTimestamp" (the ReplicaSet docs'
desired state). The mutant ``drops_error`` breaks it: a failed create
dropped instead of requeued leaves a state with no work and too few pods —
BMC finds it in three steps and replays it on the executable machine.
Such a dead end *is* a violation of ``replicaset_converges``: a quiet
behaviour stutters there forever (``properties.core``). ``as_lasso`` writes
it as that lasso (loop = its last state), so the trace names a property of
the ``replicaset`` model and ``kubemc trace replay`` confirms it.

The encoding is a *counter abstraction* that is exact on this configuration:
with no deletions, pods are named ``rs-0``, ``rs-1`` … in creation order
(``generateName`` picks the first free name) and carry resourceVersions
2, 3 … after renumbering; the cache holds the first ``sa - e`` of them and
the events in flight create the last ``e``. So a state is determined by the
counters, ``values``/``state_of`` are a bijection on the reachable states,
and ``tests/test_controllers_z3.py`` checks the two transition relations
against each other on reachable states of the machine (``Differential``).
"""

from __future__ import annotations

import z3

from kubemc.model.controllers.loop import create
from kubemc.model.controllers.replicaset import (
    DROPS_ERROR, NO_EXPECTATIONS, POD, RS, ReplicaSetController,
)
from kubemc.model.kernel import SYSTEM
from kubemc.properties.core import INVARIANT, Property
from kubemc.properties.symbolic import Action, Encoding, SymProperty, Var

RS_KEY = RS
POD_VALUE = (RS[1], False)
CREATE_POD = create(POD, f"{RS[1]}-", POD_VALUE, generate=True)


def _running(machine, state) -> int:
    return sum(1 for _, (owner, terminating) in machine.objects(state).of_kind(POD)
               if owner == RS[1] and not terminating)


def quiet_end_converged(machine, state) -> bool:
    """Where no system step is enabled (a quiet behaviour ends and stutters),
    the ReplicaSet runs ``spec.replicas`` pods."""
    objects = machine.objects(state)
    if RS not in objects:
        return True
    if any(machine.tag(step) == SYSTEM for step, _ in machine.successors(state)):
        return True
    return _running(machine, state) == objects[RS][0]


QUIET_END_CONVERGED = Property(
    "replicaset_quiet_end_converged", "controllers", INVARIANT,
    "in every reachable state where no system step is enabled, the apiserver holds "
    "spec.replicas running pods of the ReplicaSet",
    "kubernetes.io/docs/concepts/workloads/controllers/replicaset ('A ReplicaSet ... "
    "creating and deleting Pods as needed to reach the desired number'); Anvil (OSDI'24) "
    "§3 eventually-stable reconciliation: a quiet run that stops must stop converged",
    quiet_end_converged)

#: verdicts of :func:`check_ranking` (the z3 engine's words for them)
PROVED, VIOLATED, UNKNOWN = "proved", "violated", "unknown"

SYSTEM_ACTIONS = ("Deliver", "Relist", "Reconcile", "Write", "Resync")


class ReplicaSetEncoding(Encoding):
    """Counters of :class:`ReplicaSetController` with fixed replicas (see the
    module text). Variables: ``sa`` pods on the server, ``e`` undelivered
    create events, ``nocache`` (crashed, not yet relisted), ``q`` the
    ReplicaSet queued, ``ia`` creates in flight, ``mem``/``xa`` the
    expectations (set? / adds still expected), ``cr``/``wf`` faults spent."""

    name = "replicaset"

    def __init__(self, replicas: int = 2, crashes: int = 1, write_failures: int = 1,
                 resyncs: int = 1, max_objects: int = 5, mutant: str | None = None):
        super().__init__(ReplicaSetController(
            replicas=replicas, max_replicas=replicas, scales=0, pod_failures=0,
            crashes=crashes, write_failures=write_failures, resyncs=resyncs,
            max_objects=max_objects, mutant=mutant))
        self.R, self.C, self.W, self.N = replicas, crashes, write_failures, max_objects
        self.Z = resyncs
        self.mutant = mutant
        self.properties = {QUIET_END_CONVERGED.name: SymProperty(QUIET_END_CONVERGED,
                                                                 self.end_converged)}
        self.lemmas = {
            "never_more_than_replicas_planned": lambda S: S["sa"] + S["ia"] <= self.R,
            "expectations_count_pending_creates":
                lambda S: z3.Implies(S["mem"], S["xa"] == S["ia"] + S["e"]),
            "no_expectations_no_pending":
                lambda S: z3.Implies(z3.Not(S["mem"]), z3.And(S["e"] == 0, S["ia"] == 0)),
            "idle_means_converged": self.idle_means_converged,
        }

    # -- shape -------------------------------------------------------------------
    def variables(self):
        n = self.N
        return [Var("sa", 0, n), Var("e", 0, n), Var("nocache"), Var("q"),
                Var("ia", 0, n), Var("mem"), Var("xa", 0, n),
                Var("cr", 0, self.C), Var("wf", 0, self.W), Var("rs", 0, self.Z)]

    def domain(self, S):
        # representation: the cache holds a prefix of the pods; a crash
        # clears events, queue and in-flight writes; no memory, no adds
        return z3.And(super().domain(S), S["e"] <= S["sa"],
                      z3.Implies(S["nocache"], z3.And(S["e"] == 0, S["ia"] == 0,
                                                      z3.Not(S["q"]))),
                      z3.Implies(z3.Not(S["mem"]), S["xa"] == 0))

    def init(self, S):
        return z3.And(S["sa"] == 0, S["e"] == 0, z3.Not(S["nocache"]), S["q"], S["ia"] == 0,
                      z3.Not(S["mem"]), S["xa"] == 0, S["cr"] == 0, S["wf"] == 0,
                      S["rs"] == 0)

    # -- actions -----------------------------------------------------------------
    def build_actions(self):
        return [
            Action("Deliver", (), lambda S, I: z3.And(z3.Not(S["nocache"]), S["e"] > 0),
                   self._deliver),
            Action("Relist", (), lambda S, I: S["nocache"],
                   lambda S, I: {"nocache": z3.BoolVal(False), "q": z3.BoolVal(True)}),
            Action("Reconcile", RS_KEY,
                   lambda S, I: z3.And(z3.Not(S["nocache"]), S["ia"] == 0, S["q"],
                                       S["sa"] - S["e"] <= self.R),
                   self._reconcile),
            Action("Write", (), lambda S, I: z3.And(S["ia"] > 0, S["sa"] < self.N),
                   lambda S, I: {"ia": S["ia"] - 1, "sa": S["sa"] + 1, "e": S["e"] + 1}),
            Action("Resync", (), lambda S, I: z3.And(z3.Not(S["nocache"]), S["rs"] < self.Z),
                   lambda S, I: {"rs": S["rs"] + 1, "q": z3.BoolVal(True)}),
            Action("WriteFails", (), lambda S, I: z3.And(S["ia"] > 0, S["wf"] < self.W),
                   self._write_fails),
            Action("Crash", (), lambda S, I: S["cr"] < self.C,
                   lambda S, I: {"cr": S["cr"] + 1, "nocache": z3.BoolVal(True),
                                 "e": z3.IntVal(0), "q": z3.BoolVal(False),
                                 "ia": z3.IntVal(0), "mem": z3.BoolVal(False),
                                 "xa": z3.IntVal(0)}),
        ]

    def _deliver(self, S, I):
        # the oldest event creates a pod: the handler queues its owner and
        # the expectations observe one add
        return {"e": S["e"] - 1, "q": z3.BoolVal(True),
                "xa": z3.If(z3.And(S["mem"], S["xa"] > 0), S["xa"] - 1, S["xa"])}

    def _reconcile(self, S, I):
        waiting = z3.And(S["mem"], S["xa"] != 0)
        if self.mutant == NO_EXPECTATIONS:
            waiting = z3.BoolVal(False)
        diff = self.R - (S["sa"] - S["e"])
        return {"q": z3.BoolVal(False),
                "ia": z3.If(waiting, S["ia"], diff),
                "mem": z3.Or(S["mem"], z3.Not(waiting)),
                "xa": z3.If(waiting, S["xa"], diff)}

    def _write_fails(self, S, I):
        # the failed create and the ones after it will never be observed
        xa = S["xa"] - S["ia"]
        return {"wf": S["wf"] + 1, "ia": z3.IntVal(0),
                "xa": z3.If(xa > 0, xa, 0),
                "q": S["q"] if self.mutant == DROPS_ERROR else z3.BoolVal(True)}

    # -- what is proved ----------------------------------------------------------
    def system_enabled(self, S):
        return z3.Or([a.guard(S, {}) for a in self.actions() if a.name in SYSTEM_ACTIONS])

    def end_converged(self, S):
        return z3.Implies(z3.Not(self.system_enabled(S)), S["sa"] == self.R)

    def idle_means_converged(self, S):
        idle = z3.And(z3.Not(S["nocache"]), z3.Not(S["q"]), S["ia"] == 0, S["e"] == 0)
        return z3.Implies(idle, S["sa"] == self.R)

    def rank(self, S) -> list:
        """The ranking function, most significant component first."""
        return [self.Z - S["rs"], self.R - S["sa"] - S["ia"], S["ia"],
                z3.If(S["nocache"], 1, 0), S["e"], z3.If(S["q"], 1, 0)]

    # -- executable <-> symbolic ---------------------------------------------------
    def values(self, state):
        server, events, cache, queue, inflight, memory, spent = state
        sa = sum(1 for k, _, _ in server if k[0] == POD)
        return {"sa": sa, "e": len(events), "nocache": cache is None, "q": RS in queue,
                "ia": len(inflight[1]) if inflight else 0, "mem": memory != (),
                "xa": memory[0] if memory else 0, "cr": spent[0], "wf": spent[1],
                "rs": spent[2]}

    def state_of(self, v):
        sa, e = v["sa"], v["e"]
        pods = [((POD, f"{RS[1]}-{i}"), i + 2, POD_VALUE) for i in range(sa)]
        rs = (RS, 1, (self.R, self.R))
        server = tuple(sorted(pods + [rs]))
        events = tuple((rv, k, val) for k, rv, val in pods[sa - e:])
        cache = None if v["nocache"] else tuple(sorted(pods[:sa - e] + [rs]))
        inflight = (RS, (CREATE_POD,) * v["ia"]) if v["ia"] else ()
        memory = (v["xa"], 0) if v["mem"] else ()
        return (server, events, cache, (RS,) if v["q"] else (), inflight, memory,
                (v["cr"], v["wf"], v["rs"], 0, 0))


def _lex_less(a: list, b: list):
    """a < b in the lexicographic order of equal-length integer tuples."""
    out = z3.BoolVal(False)
    for x, y in reversed(list(zip(a, b))):
        out = z3.Or(x < y, z3.And(x == y, out))
    return out


def check_ranking(enc: ReplicaSetEncoding, *, timeout_ms: int | None = None):
    """Every system step from a state of the invariant (domain, lemmas and
    the property) decreases ``enc.rank`` lexicographically, and the rank is
    non-negative there. Returns (verdict, detail): ``PROVED``, or
    ``VIOLATED`` with the decoded state and step that do not decrease it."""
    S, S2 = enc.declare("rkA_"), enc.declare("rkB_")
    system = [k for k, a in enumerate(enc.actions()) if a.name in SYSTEM_ACTIONS]
    inv = z3.And(enc.domain(S), enc.strengthening(S), enc.end_converged(S))
    solver = z3.Solver()
    if timeout_ms:
        solver.set("timeout", timeout_ms)
    solver.add(inv, enc.domain(S2), enc.trans(S, S2), z3.Or([S2.action == k for k in system]))
    negative = z3.Or([c < 0 for c in enc.rank(S)])
    solver.add(z3.Or(negative, z3.Not(_lex_less(enc.rank(S2), enc.rank(S)))))
    answer = solver.check()
    if answer == z3.unsat:
        return PROVED, "every system step decreases the rank; " + scope(enc)
    if answer == z3.unknown:
        return UNKNOWN, solver.reason_unknown()
    model = solver.model()
    before = enc.decode(model, S)
    step = enc.decode_step(model, S, S2)
    return VIOLATED, f"from {before!r}, {step} does not decrease the rank"


def scope(enc: ReplicaSetEncoding) -> str:
    """What the proof assumes, in the words a user reads next to its verdict."""
    return (f"scope: replicas={enc.R} fixed (no Scale), no pod failures or deletions, "
            f"at most {enc.C} crash(es), {enc.W} failed write(s), {enc.Z} resync(s); "
            "assumes a run does not stop while a system step is enabled")


SCOPE = scope(ReplicaSetEncoding())


def as_lasso(result):
    """A ``Z3Outcome`` whose counterexample ends in a quiet dead end (no
    system step enabled, fewer than ``spec.replicas`` pods), rewritten as the
    stuttering lasso of ``replicaset_converges`` it is — a property of the
    ``replicaset`` model, so that ``kubemc trace replay`` can re-execute and
    judge it (``checker.lasso``). Anything else is returned unchanged."""
    import attrs

    from kubemc.properties.controllers.replicaset import PROPERTIES as RS_PROPERTIES

    cex, machine = result.counterexample, result.machine
    if cex is None or machine is None:
        return result
    converges = next(p for p in RS_PROPERTIES if p.name == "replicaset_converges")
    end = cex.final
    if converges.holds_in(machine, end) or any(machine.tag(s) == SYSTEM
                                               for s, _ in machine.successors(end)):
        return result
    lasso = attrs.evolve(cex, prop=converges, loop=len(cex.steps), closing=None)
    return attrs.evolve(result, prop=converges.name, counterexample=lasso,
                        detail=(result.detail + "; " if result.detail else "")
                        + f"the dead end violates {QUIET_END_CONVERGED.name}, written as a "
                          "stuttering lasso of replicaset_converges")


PROVES = ("once users and faults stop, the ReplicaSet's running pods reach spec.replicas "
          "and stay: an inductive invariant over every step, and a lexicographic ranking "
          "function that every quiet system step decreases (" + SCOPE + ")")

__all__ = ["PROVES", "QUIET_END_CONVERGED", "SCOPE", "ReplicaSetEncoding", "as_lasso",
           "check_ranking", "scope"]

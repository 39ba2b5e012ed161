"""The work queue's guarantees, proved by induction with Z3.

The encoding mirrors :class:`model.informer.queue_machine.WorkQueue` action
for action (``tests/test_informer_symbolic.py`` keeps the two in step, on
every reachable state). Variables, for keys ``k`` and workers ``w``:

* ``pos[k]`` in ``[0, K]``: 0 when ``k`` is not queued, else its 1-based
  place in the queue (the queued keys' places are exactly ``1..n``);
* ``dirty[k]``, ``proc[k]``: ``k`` is in the dirty set / processing set;
* ``held[w]`` in ``[-1, K-1]``: the key worker ``w`` holds (-1: idle);
* ``added[k]``: the ghost — ``k`` was added since a worker last got it.

Actions: ``Add(k)`` (enabled when it changes the state: ``k`` is not dirty,
or not yet in the ghost; an add that changes nothing is not a step of the
machine), ``Get(w)`` (the head key, the one at place 1, goes to idle worker
``w``; the others move up one place) and ``Done(w)``.

What is proved (:data:`OBLIGATIONS`, 3 keys and 3 workers, and 4 and 4), from
every state satisfying the strengthening — not only the reachable ones:

* ``workqueue_exclusive`` — no key is held by two workers;
* ``workqueue_keeps_dirty_keys`` — every dirty key is queued or processed;
* ``workqueue_hands_out_added_keys`` — every key added since a worker last
  got it is queued or held by a worker (so one added while it is processed
  is queued again on ``Done``).

None is inductive alone. The strengthening (``LEMMAS``):

1. ``held_is_processing`` — a key a worker holds is in the processing set;
2. ``queued_is_dirty_and_idle`` — a queued key is dirty and not processing;
3. ``processing_is_held`` — a key in the processing set is held by some
   worker;
4. ``one_worker_per_key`` — exclusivity itself, so that the proof of
   ``keeps_dirty_keys`` may use it (the two are inductive together);
5. ``added_is_dirty`` — the ghost equals the dirty set (both are set by
   ``Add`` and cleared by ``Get`` of the key), and
   ``dirty_is_queued_or_processing`` — ``keeps_dirty_keys`` itself: with
   (3) they give ``hands_out_added_keys``.

Why they suffice: ``Get`` hands out a queued key, which is not processing
(2) and so held by no worker (1): exclusivity is kept. ``Done`` releases a
key that no other worker holds (exclusivity), so removing it from the
processing set keeps (1) and (3), and re-queues it if it is dirty, which
keeps ``keeps_dirty_keys``; ``Add`` of a processed key only marks it dirty
(it is processing, so covered), of any other key queues it. These are
client-go's own comments on its ``Type`` (util/workqueue/queue.go: "dirty
defines all of the items that need to be processed"; "things in queue are
also in dirty and not in processing"; "processing: things that are
currently being processed are in the processing set"), stated as formulas.

The seeded bugs are found by BMC from the empty queue: ``no_processing_set``,
``done_forgets_dirty`` and ``add_while_processing_lost`` in four steps each.
"""

from __future__ import annotations

import z3

from kubemc.model.informer import workqueue as wq_ops
from kubemc.model.informer.queue_machine import WorkQueue
from kubemc.properties import informer as informer_properties
from kubemc.properties.symbolic import Action, Encoding, Obligation, SymProperty, Var

EXCLUSIVE = next(p for p in informer_properties.PROPERTIES if p.name == "workqueue_exclusive")
KEEPS_DIRTY = next(p for p in informer_properties.PROPERTIES
                   if p.name == "workqueue_keeps_dirty_keys")
HANDS_OUT = next(p for p in informer_properties.PROPERTIES
                 if p.name == "workqueue_hands_out_added_keys")
IDLE = -1


class WorkQueueEncoding(Encoding):
    name = "workqueue"

    def __init__(self, keys: int = 3, workers: int = 3, mutant: str | None = None):
        super().__init__(WorkQueue(keys, workers, mutant))
        self.K = keys
        self.W = workers
        self.mutant = mutant
        self.names = self.machine.keys
        self.properties = {
            EXCLUSIVE.name: SymProperty(EXCLUSIVE, self.exclusive),
            KEEPS_DIRTY.name: SymProperty(KEEPS_DIRTY, self.keeps_dirty),
            HANDS_OUT.name: SymProperty(HANDS_OUT, self.hands_out),
        }
        self.lemmas = {
            "held_is_processing": self.held_is_processing,
            "queued_is_dirty_and_idle": self.queued_is_dirty_and_idle,
            "processing_is_held": self.processing_is_held,
            "one_worker_per_key": self.exclusive,
            "added_is_dirty": self.added_is_dirty,
            "dirty_is_queued_or_processing": self.keeps_dirty,
        }

    # -- shape ------------------------------------------------------------------
    def variables(self):
        out = []
        for k in range(self.K):
            out += [Var(("pos", k), 0, self.K), Var(("dirty", k)), Var(("proc", k)),
                    Var(("added", k))]
        out += [Var(("held", w), IDLE, self.K - 1) for w in range(self.W)]
        return out

    def queued(self, S):
        """How many keys are queued."""
        return z3.Sum([z3.If(S["pos", k] > 0, 1, 0) for k in range(self.K)])

    def domain(self, S):
        n = self.queued(S)
        conds = [super().domain(S)]
        for k in range(self.K):
            conds.append(S["pos", k] <= n)
            for j in range(k + 1, self.K):
                conds.append(z3.Implies(S["pos", k] > 0, S["pos", k] != S["pos", j]))
        return z3.And(conds)

    def init(self, S):
        conds = []
        for k in range(self.K):
            conds += [S["pos", k] == 0, z3.Not(S["dirty", k]), z3.Not(S["proc", k]),
                      z3.Not(S["added", k])]
        conds += [S["held", w] == IDLE for w in range(self.W)]
        return z3.And(conds)

    # -- actions ------------------------------------------------------------------
    def build_actions(self):
        out = []
        for k in range(self.K):
            out.append(Action("Add", (self.names[k],),
                              lambda S, I, k=k: self._add_changes(S, k),
                              lambda S, I, k=k: self._add(S, k)))
        for w in range(self.W):
            out.append(Action("Get", (w,),
                              lambda S, I, w=w: z3.And(S["held", w] == IDLE,
                                                       self.queued(S) > 0),
                              lambda S, I, w=w: self._get(S, w)))
            out.append(Action("Done", (w,),
                              lambda S, I, w=w: S["held", w] != IDLE,
                              lambda S, I, w=w: self._done(S, w)))
        return out

    def _lost(self, S, k):
        """The add is lost (the seeded bug): the key is processing."""
        if self.mutant == "add_while_processing_lost":
            return S["proc", k]
        return z3.BoolVal(False)

    def _add_changes(self, S, k):
        """An add changes the state unless the key is dirty (or its add is
        lost) and the ghost already holds it."""
        return z3.Or(z3.Not(S["added", k]),
                     z3.And(z3.Not(S["dirty", k]), z3.Not(self._lost(S, k))))

    def _add(self, S, k):
        keep = z3.Or(S["dirty", k], self._lost(S, k))
        return {("added", k): z3.BoolVal(True),
                ("dirty", k): z3.Or(S["dirty", k], z3.Not(self._lost(S, k))),
                ("pos", k): z3.If(z3.Or(keep, S["proc", k]), S["pos", k],
                                  self.queued(S) + 1)}

    def _get(self, S, w):
        head = z3.IntVal(IDLE)
        for k in range(self.K):
            head = z3.If(S["pos", k] == 1, k, head)
        effect = {("held", w): head}
        for k in range(self.K):
            first = S["pos", k] == 1
            effect["pos", k] = z3.If(S["pos", k] > 0, S["pos", k] - 1, 0)
            effect["dirty", k] = z3.And(S["dirty", k], z3.Not(first))
            effect["added", k] = z3.And(S["added", k], z3.Not(first))
            if self.mutant != "no_processing_set":
                effect["proc", k] = z3.Or(S["proc", k], first)
        return effect

    def _done(self, S, w):
        effect = {("held", w): z3.IntVal(IDLE)}
        n = self.queued(S)
        for k in range(self.K):
            mine = S["held", w] == k
            effect["proc", k] = z3.And(S["proc", k], z3.Not(mine))
            if self.mutant != "done_forgets_dirty":
                again = z3.And(mine, S["dirty", k], S["pos", k] == 0)
                effect["pos", k] = z3.If(again, n + 1, S["pos", k])
        return effect

    # -- properties and lemmas -----------------------------------------------------
    def exclusive(self, S):
        return z3.And([z3.Or(S["held", a] == IDLE, S["held", a] != S["held", b])
                       for a in range(self.W) for b in range(a + 1, self.W)])

    def keeps_dirty(self, S):
        return z3.And([z3.Implies(S["dirty", k], z3.Or(S["pos", k] > 0, S["proc", k]))
                       for k in range(self.K)])

    def hands_out(self, S):
        return z3.And([z3.Implies(S["added", k], z3.Or([S["pos", k] > 0] +
                                                       [S["held", w] == k
                                                        for w in range(self.W)]))
                       for k in range(self.K)])

    def added_is_dirty(self, S):
        return z3.And([S["added", k] == S["dirty", k] for k in range(self.K)])

    def held_is_processing(self, S):
        return z3.And([z3.Implies(S["held", w] == k, S["proc", k])
                       for w in range(self.W) for k in range(self.K)])

    def queued_is_dirty_and_idle(self, S):
        return z3.And([z3.Implies(S["pos", k] > 0, z3.And(S["dirty", k], z3.Not(S["proc", k])))
                       for k in range(self.K)])

    def processing_is_held(self, S):
        return z3.And([z3.Implies(S["proc", k], z3.Or([S["held", w] == k
                                                         for w in range(self.W)]))
                       for k in range(self.K)])

    # -- executable <-> symbolic -------------------------------------------------------
    def values(self, state):
        queue, dirty, processing, workers, added = state
        out = {}
        for k, name in enumerate(self.names):
            out["pos", k] = queue.index(name) + 1 if name in queue else 0
            out["dirty", k] = name in dirty
            out["proc", k] = name in processing
            out["added", k] = name in added
        for w, name in enumerate(workers):
            out["held", w] = IDLE if name == wq_ops.IDLE else self.names.index(name)
        return out

    def state_of(self, values):
        names = self.names
        queued = sorted((values["pos", k], names[k]) for k in range(self.K)
                        if values["pos", k] > 0)
        return (tuple(n for _, n in queued),
                tuple(names[k] for k in range(self.K) if values["dirty", k]),
                tuple(names[k] for k in range(self.K) if values["proc", k]),
                tuple(wq_ops.IDLE if values["held", w] == IDLE else names[values["held", w]]
                      for w in range(self.W)),
                tuple(names[k] for k in range(self.K) if values["added", k]))


def _encoding(keys: int, workers: int):
    def build(mutant: str | None = None) -> WorkQueueEncoding:
        return WorkQueueEncoding(keys, workers, mutant)
    return build


OBLIGATIONS = tuple(
    Obligation(f"{prop}_{n}x{n}", "workqueue", prop,
               f"{statement} — {n} keys, {n} workers, every interleaving, by induction "
               "from every state of the strengthening",
               _encoding(n, n), method="induction", k=1, mutant_depth=6)
    for n in (3, 4)
    for prop, statement in (
        (EXCLUSIVE.name, "no key is held by two workers"),
        (KEEPS_DIRTY.name, "every dirty key is queued or being processed"),
        (HANDS_OUT.name, "every key added since a worker last got it is queued or held "
                         "by a worker (ghost state), so it is handed out again"),
    )
)

"""The work queue on its own: event handlers adding keys, workers getting
and finishing them.

Why a machine of its own when the informer already contains a work queue:
the queue's guarantees (no key on two workers, no added key lost) do not
depend on where the adds come from, so this machine lets them be checked
for *any* sequence of adds — and it is small enough for the z3 engine to
prove them by induction (``properties.symbolic.workqueue``), which the whole
informer is not. It runs the same functions as the informer
(``model.informer.workqueue``) and carries the same seeded bugs.

State: the work queue tuple ``(queue, dirty, processing, workers, added)``
(``added`` is ghost state: keys added since a worker last got them).
Actions: ``Add(key)`` (environment: an event handler's notification),
``Get(worker)`` and ``Done(worker)`` (system). An ``Add`` that changes
nothing (the key is already dirty) is disabled rather than a self-loop.
Bounds: ``keys`` and ``workers``; the space is finite without budgets.
"""

from __future__ import annotations

from kubemc.model.informer import workqueue as wq_ops
from kubemc.model.informer.machine import KEY_NAMES
from kubemc.model.kernel import ENVIRONMENT, SYSTEM, Machine, Step, action


class WorkQueue(Machine):
    """The actions are declared on their handlers (``@action``); ``steps``
    interleaves each worker's ``Get`` and ``Done``."""

    name = "workqueue"
    mutants = wq_ops.MUTANTS

    def __init__(self, keys: int = 2, workers: int = 2, mutant: str | None = None):
        super().__init__(mutant)
        if not 1 <= keys <= len(KEY_NAMES) or workers < 1:
            raise ValueError(f"workqueue bounds: 1 <= keys <= {len(KEY_NAMES)}, workers >= 1")
        self.keys = KEY_NAMES[:keys]
        self.workers = workers

    def config(self):
        return {"keys": len(self.keys), "workers": self.workers}

    def init_states(self):
        yield wq_ops.empty(self.workers)

    def workqueue(self, state):
        """The work queue part of a state (the whole state, here)."""
        return state

    def steps(self, state):
        for k in self.keys:
            yield Step("Add", (k,))
        for w in range(self.workers):
            yield Step("Get", (w,))
            yield Step("Done", (w,))

    @action("Add", tag=ENVIRONMENT)
    def add(self, state, key):
        if key not in self.keys:
            return None
        nxt = wq_ops.add(state, key, lose_if_processing=self.mutant == "add_while_processing_lost")
        return None if nxt == state else nxt

    @action("Get", tag=SYSTEM)
    def get(self, state, worker):
        if worker not in range(self.workers):
            return None
        return wq_ops.get(state, worker, track=self.mutant != "no_processing_set")

    @action("Done", tag=SYSTEM)
    def done(self, state, worker):
        if worker not in range(self.workers):
            return None
        return wq_ops.done(state, worker, requeue=self.mutant != "done_forgets_dirty",
                           always=self.mutant == "done_requeues_always")

    def view(self, state):
        queue, dirty, processing, workers, added = state
        return {"queue": list(queue), "dirty": list(dirty), "processing": list(processing),
                "workers": list(workers), "added_since_handed_out": list(added)}

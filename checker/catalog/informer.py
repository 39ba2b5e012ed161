"""The informer: a reflector listing and watching the server into a
DeltaFIFO and a cache, periodic resync, and a work queue drained by
workers — the client side that controllers read through.

Three models: ``informer``, the whole pipeline with the server it talks
to; ``informer-relist``, the same machine narrowed to one object and one
writer so that four writes fit (a deletion delivered by the watch and then
a relist's tombstone for it: the only way two deletions meet in the
DeltaFIFO); and ``workqueue``, the work queue alone under any sequence of
adds, which is small enough for the z3 engine to prove its guarantees by
induction."""

from __future__ import annotations

from kubemc.checker.catalog import Component, Model
from kubemc.checker.z3engine import symbolic_checks
from kubemc.model.informer import Informer
from kubemc.model.informer.machine import RelistInformer
from kubemc.model.informer.queue_machine import WorkQueue
from kubemc.properties import informer as informer_properties
from kubemc.properties.symbolic import workqueue as workqueue_symbolic

INFORMER = Model(
    name="informer",
    build=Informer,
    # 2 writer clients, 2 watched objects, 3 writes between them (plus writes
    # to another resource), one compaction, one dropped connection, one
    # resync, 2 workers: 629,638 distinct states, depth 18, about 10 s of one
    # core for safety alone; cache_eventually_converges is decided on the
    # same search's graph (2.6 million edges; see `kubemc bench liveness`).
    # Every mutant is caught at these bounds (in at most 8 steps; the
    # liveness mutants as lassos: watch_not_reopened stuck after 4 steps,
    # done_requeues_always a 7-step stem and a 4-step cycle).
    bounds={"keys": 2, "writers": 2, "writes": 3, "compactions": 1, "disconnects": 1,
            "resyncs": 1, "workers": 2, "other": True},
    properties=informer_properties.PROPERTIES,
    # random runs go deeper: 3 writer clients, 8 writes, 3 workers, more faults
    hypothesis_bounds={"writers": 3, "writes": 8, "compactions": 2, "disconnects": 2,
                       "resyncs": 3, "workers": 3},
)

INFORMER_RELIST = Model(
    name="informer-relist",
    build=RelistInformer,
    # one object, one writer, 4 writes (plus writes to another resource), one
    # compaction, no dropped connection, no resync, one worker: 9,391
    # distinct states, about 1 s with the liveness search. It reaches what
    # the wider ``informer`` bounds (3 writes) cannot: a watch deletion still
    # queued when a 410 and a relist tombstone the same object (9 steps).
    bounds={"keys": 1, "writers": 1, "writes": 4, "compactions": 1, "disconnects": 0,
            "resyncs": 0, "workers": 1, "other": True},
    # no resync here, so the resync cover is the ``informer`` model's alone;
    # it carries the one seeded bug these bounds are for (RelistInformer):
    # fifo_keeps_both_deletions, 9 steps (explore), ~60 runs (hypothesis)
    properties=tuple(p for p in informer_properties.PROPERTIES
                     if p.name != "cover_resync_queues_sync"),
    hypothesis_bounds={"writes": 6, "compactions": 2, "disconnects": 1, "resyncs": 1},
)

WORKQUEUE = Model(
    name="workqueue",
    build=WorkQueue,
    # every interleaving of adds, gets and dones of 3 keys on 3 workers: 298
    # distinct states (the z3 engine proves 3x3 and 4x4 by induction)
    bounds={"keys": 3, "workers": 3},
    properties=tuple(p for p in informer_properties.PROPERTIES
                     if p.name.startswith("workqueue_")),
    hypothesis_bounds={"keys": 4, "workers": 4},
)

COMPONENT = Component(
    "informer",
    "the client side of controllers: reflector (list/watch, relist on 410), DeltaFIFO, "
    "cache, resync and a deduplicating work queue",
    (INFORMER, INFORMER_RELIST, WORKQUEUE),
    symbolic=symbolic_checks("informer", workqueue_symbolic.OBLIGATIONS),
)

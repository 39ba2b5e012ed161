"""The apiserver: resources in the store under optimistic concurrency, reads
at the three resourceVersion semantics, watches, deletion with finalizers and
the garbage collector, and admission — split into focused models, each at
small bounds of its own, rather than one product too large to explore; plus
the access models and z3 checks of ``checker.catalog.apiserver_access``.

No model explores two writers, two objects, two replicas, one compaction and
one watcher at once, and interleavings across models are not explored: two
writers race only in ``apiserver-writes`` (quorum lists, no caches, no
watcher), lagging caches serve lists only in ``apiserver-reads`` (one writer),
and the watcher and the compaction live only in ``apiserver-watch`` (one
writer); docs/apiserver.md lists which model covers which part.
"""

from __future__ import annotations

from kubemc.checker.catalog import Component, Model, apiserver_access
from kubemc.checker.z3engine import symbolic_checks
from kubemc.model.apiserver.admission import ApiserverAdmission
from kubemc.model.apiserver.lifecycle import ApiserverLifecycle
from kubemc.model.apiserver.requests import ApiserverReads, ApiserverWatch, ApiserverWrites
from kubemc.properties import apiserver as request_properties
from kubemc.properties import apiserver_admission as admission_properties
from kubemc.properties import apiserver_lifecycle as lifecycle_properties

_REQUEST_PATH = request_properties.PROPERTIES

WRITES = Model(
    name="apiserver-writes",
    build=ApiserverWrites,
    # 2 writers, 2 objects, 2 replicas, quorum lists, store revisions <= 4
    # (three writes): 44,366 distinct states (46,444 before the request path
    # ran on channels), 2-3 s in one process.
    bounds={"clients": 2, "objects": 2, "replicas": 2, "max_revision": 4,
            "list_modes": ("unset",)},
    properties=_REQUEST_PATH + (request_properties.COVER_LIST_ANSWERED,),
    hypothesis_bounds={"max_revision": 8},
)

READS = Model(
    name="apiserver-reads",
    build=ApiserverReads,
    # 1 writer listing at unset / "0" / "N", 2 objects, 2 replicas with
    # lagging caches, revisions <= 4: 23,461 states (23,969 before the
    # channels), 1-1.5 s.
    bounds={"clients": 1, "objects": 2, "replicas": 2, "max_revision": 4,
            "list_modes": ("unset", "0", "N")},
    properties=_REQUEST_PATH + (request_properties.COVER_LIST_ANSWERED,),
    hypothesis_bounds={"clients": 2, "max_revision": 5},
)

WATCH = Model(
    name="apiserver-watch",
    build=ApiserverWatch,
    # 1 writer, the watcher of object 0, 2 objects, 2 replicas, one
    # compaction, one watch the server closes, revisions <= 3: 47,792 states
    # (26,168 before the request path ran on channels: a message in flight
    # is a state of its own), 2.5-4 s.
    bounds={"clients": 1, "objects": 2, "replicas": 2, "max_revision": 3, "compactions": 1,
            "watcher": True, "list_modes": (), "closes": 1},
    properties=_REQUEST_PATH,
    hypothesis_bounds={"max_revision": 7},
)

LIFECYCLE = Model(
    name="apiserver-lifecycle",
    build=ApiserverLifecycle,
    # an owner and 2 dependents, client requests up to store revision 12
    # (up to eight after the three creations; the garbage collector's own
    # requests may go past it, so no deletion is left half done at the bound —
    # 6,595 states before that, 7,545 now), histories compacted in the
    # fingerprint (also for liveness: the compaction keeps step labels):
    # about a second, the liveness check in the same search.
    bounds={"dependents": 2, "max_revision": 12},
    properties=lifecycle_properties.PROPERTIES,
    hypothesis_bounds={"dependents": 3, "max_revision": 16},
)

ADMISSION = Model(
    name="apiserver-admission",
    build=ApiserverAdmission,
    # 2 replicas admitting, 2 pod names, one namespace with a quota of 2 pods,
    # 2 cpu, 2 memory, revisions <= 8: 21,616 states, 2-3.5 s.
    bounds={"replicas": 2, "pods": 2, "max_revision": 8},
    properties=admission_properties.PROPERTIES,
    hypothesis_bounds={"pods": 3, "max_revision": 9},
)

MODELS = (WRITES, READS, WATCH, LIFECYCLE, ADMISSION)
#: this half of the component has no z3 obligations of its own: the optimistic
#: update rule's proofs are the access half's (``conflict``)
OBLIGATIONS: tuple = ()

COMPONENT = Component(
    "apiserver",
    "resources under optimistic concurrency, list/watch semantics, finalizers and "
    "garbage collection, admission, and access control, over the store",
    MODELS + apiserver_access.MODELS,
    symbolic=symbolic_checks("apiserver", OBLIGATIONS + apiserver_access.OBLIGATIONS)
    + apiserver_access.CHECKS)

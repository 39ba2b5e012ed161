"""The controllers of kube-controller-manager and cloud-controller-manager,
each a watch loop (``model.controllers.loop``) against the apiserver, with
its desired state stated in ``properties.controllers``.

One model per controller: the controllers do not talk to each other, only
to the apiserver, so each is checked against the apiserver and the other
components it depends on (kubelets, users, a cloud API) as its world.
"""

from __future__ import annotations

from checker.catalog import Component, Model
from model.controllers.job import JobController
from model.controllers.replicaset import ReplicaSetController
from properties.controllers import job as job_properties
from properties.controllers import replicaset as replicaset_properties

REPLICASET = Model(
    name="replicaset",
    build=ReplicaSetController,
    # 2 replicas (scalable 0..2 once), one pod failure, one controller crash,
    # one failed write, at most 5 objects.
    bounds={"replicas": 2, "max_replicas": 2, "scales": 1, "pod_failures": 1,
            "crashes": 1, "write_failures": 1, "max_objects": 5},
    properties=replicaset_properties.PROPERTIES,
    hypothesis_bounds={"max_replicas": 3, "scales": 3, "pod_failures": 2, "crashes": 2,
                       "write_failures": 2, "resyncs": 2, "max_objects": 7},
)

JOB = Model(
    name="job",
    build=JobController,
    # completions 2, parallelism 2, backoffLimit 0, one pod failure, one
    # controller crash, one failed write, at most 5 objects: 9,198 states,
    # about 1.5 s with the liveness search.
    bounds={"completions": 2, "parallelism": 2, "backoff_limit": 0, "pod_failures": 1,
            "crashes": 1, "write_failures": 1, "max_objects": 5},
    properties=job_properties.PROPERTIES,
    hypothesis_bounds={"completions": 2, "parallelism": 2, "backoff_limit": 0,
                       "pod_failures": 2, "crashes": 2, "write_failures": 2, "resyncs": 2,
                       "max_objects": 7},
)

MODELS = (
    REPLICASET,
    JOB,
)

COMPONENT = Component(
    "controllers",
    "kube-controller-manager and cloud-controller-manager: watch loops over informer "
    "caches and a work queue, writing through the apiserver",
    MODELS,
)

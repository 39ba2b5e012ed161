"""The controllers of kube-controller-manager and cloud-controller-manager,
each a watch loop (``model.controllers.loop``) against the apiserver, with
its desired state stated in ``properties.controllers``.

One model per controller: the controllers do not talk to each other, only
to the apiserver, so each is checked against the apiserver and the other
components it depends on (kubelets, users, a cloud API) as its world.
"""

from __future__ import annotations

from kubemc.checker.catalog import Component, Model
from kubemc.model.controllers.endpointslice import EndpointSliceController
from kubemc.model.controllers.garbagecollector import GarbageCollector
from kubemc.model.controllers.job import JobController
from kubemc.model.controllers.namespace import NamespaceController
from kubemc.model.controllers.serviceaccount import ServiceAccountControllers
from kubemc.model.controllers.nodelifecycle import NodeLifecycleController
from kubemc.model.controllers.replicaset import ReplicaSetController
from kubemc.model.controllers.deployment import DeploymentController
from kubemc.properties.controllers import deployment as deployment_properties
from kubemc.model.controllers.cloudroute import RouteController
from kubemc.model.controllers.cloudnode import NodeController
from kubemc.model.controllers.cloudservice import ServiceController
from kubemc.properties.controllers import cloudroute as cloudroute_properties
from kubemc.properties.controllers import cloudnode as cloudnode_properties
from kubemc.properties.controllers import cloudservice as cloudservice_properties
from kubemc.properties.controllers import endpointslice as endpointslice_properties
from kubemc.properties.controllers import garbagecollector as garbagecollector_properties
from kubemc.properties.controllers import job as job_properties
from kubemc.properties.controllers import namespace as namespace_properties
from kubemc.properties.controllers import serviceaccount as serviceaccount_properties
from kubemc.properties.controllers import nodelifecycle as nodelifecycle_properties
from kubemc.properties.controllers import replicaset as replicaset_properties

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

ENDPOINTSLICE = Model(
    name="endpointslice",
    build=EndpointSliceController,
    # two pods (p0 selected and Ready, p1 not), one selector change, one pod
    # deletion, one readiness flip, one controller crash, one failed write:
    # 40,096 states, about 8 s and 4 s more for the liveness search. A pod
    # creation as well (pods=1, creations=1, no faults): 96,048 states, 21 s.
    bounds={"pods": 2, "selector_changes": 1, "creations": 0, "deletions": 1,
            "readiness_flips": 1, "crashes": 1, "write_failures": 1, "max_objects": 6},
    properties=endpointslice_properties.PROPERTIES,
    mutant_bounds={"ignores_own_slice_events": {"pods": 1, "creations": 1, "crashes": 0,
                                                "write_failures": 0, "selector_changes": 0}},
    hypothesis_bounds={"creations": 1, "readiness_flips": 3, "selector_changes": 2,
                       "crashes": 2, "write_failures": 2, "resyncs": 1},
)

NODELIFECYCLE = Model(
    name="nodelifecycle",
    build=NodeLifecycleController,
    # one node with three pods (no toleration, tolerationSeconds 1, tolerates
    # forever), grace period 2 ticks, two partitions and two heals, one
    # controller crash, one failed write: 9,373 states, about 3 s with liveness
    bounds={"nodes": 1, "grace": 2, "toleration_seconds": 1, "partitions": 2, "heals": 2,
            "crashes": 1, "write_failures": 1},
    properties=nodelifecycle_properties.PROPERTIES,
    hypothesis_bounds={"partitions": 3, "heals": 3, "crashes": 2, "write_failures": 2,
                       "resyncs": 1},
)

CLOUDROUTE = Model(
    name="cloudroute",
    build=RouteController,
    # 3 node names (one node at start), 3 joins/leaves, one controller crash,
    # one failed cloud call, at most 4 objects: 10,756 states, about 2.5 s.
    bounds={"nodes": 3, "initial_nodes": 1, "node_changes": 3, "crashes": 1,
            "write_failures": 1, "max_objects": 4},
    properties=cloudroute_properties.PROPERTIES,
    hypothesis_bounds={"nodes": 4, "node_changes": 5, "crashes": 2, "write_failures": 2,
                       "resyncs": 1, "max_objects": 5},
)

DEPLOYMENT = Model(
    name="deployment",
    build=DeploymentController,
    # 2 replicas, maxSurge 1, maxUnavailable 0, from a finished rollout a -> b
    # with a's ReplicaSet kept at 0; one template change (a rollback to a, or a
    # new template c, whose ReplicaSet the controller creates) and one scale
    # (to 1) by the user; no faults; at most 12 objects.
    # 114,477 states, ~26 s with liveness on this 2-core machine (with two
    # templates, 57,208 states, the new-ReplicaSet path was never taken).
    bounds={"replicas": 2, "max_replicas": 2, "max_surge": 1, "max_unavailable": 0,
            "templates": 3, "rollouts": 1, "scales": 1, "max_objects": 12},
    properties=deployment_properties.PROPERTIES,
    # random runs: a rollout there and back, a scale, a crashed pod, a failed write
    hypothesis_bounds={"rollouts": 2, "scales": 1, "pod_failures": 1, "write_failures": 1},
    # a rollout there and back (rollouts=2) is what these two mutants need:
    # 1,871 and 503 states to the violation
    # the dropped 5xx needs no third template nor a scale: 689 states (with
    # the defaults' three templates and a scale, the complete graph a lasso
    # search needs passed a million states)
    mutant_bounds={"drops_rs_update_error": {"write_failures": 1, "templates": 2, "scales": 0},
                   "counts_terminating_available": {"rollouts": 2, "scales": 0},
                   "no_rs_expectations": {"rollouts": 2, "scales": 0}},
)

CLOUDSERVICE = Model(
    name="cloudservice",
    build=ServiceController,
    # one LoadBalancer Service, 2 node names (one node at start), one user
    # delete, 2 node joins/leaves, one controller crash, one failed call, at
    # most 4 objects: 17,226 states, about 3.5 s.
    bounds={"services": 1, "nodes": 2, "initial_nodes": 1, "deletes": 1, "node_changes": 2,
            "crashes": 1, "write_failures": 1, "max_objects": 4},
    properties=cloudservice_properties.PROPERTIES,
    hypothesis_bounds={"services": 2, "nodes": 3, "node_changes": 3, "deletes": 2,
                       "crashes": 2, "write_failures": 2, "resyncs": 1, "max_objects": 6},
)

CLOUDNODE = Model(
    name="cloudnode",
    build=NodeController,
    # 2 instances launched (of 2 node names), one terminated, one controller
    # crash, one failed write, at most 3 objects: 28,703 states, about 11 s
    # with the liveness search. keeps_gone_nodes needs only one node name.
    bounds={"nodes": 2, "launches": 2, "terminations": 1, "crashes": 1,
            "write_failures": 1, "max_objects": 3},
    properties=cloudnode_properties.PROPERTIES,
    mutant_bounds={"keeps_gone_nodes": {"nodes": 1}},
    hypothesis_bounds={"nodes": 3, "launches": 4, "terminations": 2, "crashes": 2,
                       "write_failures": 2, "max_objects": 4},
)

NAMESPACE = Model(
    name="namespace",
    build=NamespaceController,
    # a namespace holding a pod and a ConfigMap, one user creation, one
    # deletion of the namespace, one crash, one failed write, at most 5
    # objects: 1,817 states, under a second with the liveness search.
    bounds={"pods": 1, "configmaps": 1, "creates": 1, "deletions": 1, "crashes": 1,
            "write_failures": 1, "max_objects": 5},
    properties=namespace_properties.PROPERTIES,
    hypothesis_bounds={"pods": 2, "creates": 3, "crashes": 2, "write_failures": 2,
                       "resyncs": 2, "max_objects": 8},
)

SERVICEACCOUNT = Model(
    name="serviceaccount",
    build=ServiceAccountControllers,
    # one namespace and one a user creates, one deletion of an account, one
    # crash, at most 6 objects: 34,747 states, about 15 s with the liveness
    # search. The orphan-token mutant needs an account that is not restored
    # (a user's ``app`` account): its bounds create one instead of a namespace.
    bounds={"namespaces": 1, "namespace_creates": 1, "account_creates": 0,
            "account_deletions": 1, "crashes": 1, "write_failures": 0, "max_objects": 6},
    properties=serviceaccount_properties.PROPERTIES,
    mutant_bounds={"keeps_orphan_tokens": {"namespace_creates": 0, "account_creates": 1,
                                           "max_objects": 5},
                   "no_restore_after_delete": {"namespace_creates": 0, "max_objects": 4}},
    hypothesis_bounds={"namespace_creates": 1, "account_creates": 1, "account_deletions": 2,
                       "crashes": 2, "write_failures": 1, "max_objects": 9},
)

GARBAGECOLLECTOR = Model(
    name="garbagecollector",
    build=GarbageCollector,
    # two owners, a dependent of both and a dependent of one, two owner
    # deletions (Background or Foreground), one crash, one failed write:
    # 10,981 states, about 4 s with the liveness search.
    bounds={"owner_deletions": 2, "crashes": 1, "write_failures": 1, "max_objects": 4},
    properties=garbagecollector_properties.PROPERTIES,
    # no resyncs and one crash in random runs: a resync (a system step the
    # convergence phase takes) or a later crash's relist would wake the
    # collector that misses_foreground_mark leaves asleep; explore's tests
    # cover more faults
    hypothesis_bounds={"crashes": 1, "write_failures": 1},
)

MODELS = (
    REPLICASET,
    DEPLOYMENT,
    CLOUDROUTE,
    CLOUDSERVICE,
    CLOUDNODE,
    JOB,
    NAMESPACE,
    SERVICEACCOUNT,
    GARBAGECOLLECTOR,
    ENDPOINTSLICE,
    NODELIFECYCLE,
)

def _ranking(mutant=None, *, timeout_ms=None):
    """The ReplicaSet's convergence proof (``properties.symbolic.controllers``):
    the invariant by 1-induction, then the ranking function by one SMT query;
    given a mutant, BMC must find a quiet dead end and replay it."""
    import time

    from kubemc.checker.z3engine import PROVED, Z3Outcome, bmc, k_induction
    from kubemc.properties.symbolic import controllers as ranking

    name = "replicaset_converges_by_ranking"
    if mutant is not None:
        return ranking.as_lasso(bmc(ranking.ReplicaSetEncoding(mutant=mutant),
                                    ranking.QUIET_END_CONVERGED.name, 6,
                                    check=f"{name}[{mutant}]", timeout_ms=timeout_ms))
    start, enc = time.perf_counter(), ranking.ReplicaSetEncoding()
    result = k_induction(enc, ranking.QUIET_END_CONVERGED.name, 1, check=name,
                         timeout_ms=timeout_ms)
    if result.verdict != PROVED:
        return result
    verdict, detail = ranking.check_ranking(enc, timeout_ms=timeout_ms)
    return Z3Outcome(name, "replicaset_converges", "ranking", verdict, 1,
                  time.perf_counter() - start, detail="invariant inductive; " + detail,
                  machine=enc.machine)


def _symbolic():
    from kubemc.checker.z3engine import SymbolicCheck
    from kubemc.properties.symbolic.controllers import PROVES

    return (SymbolicCheck("replicaset_converges_by_ranking", "controllers", "replicaset",
                          "replicaset_converges", PROVES, _ranking, mutants=("drops_error",)),)


COMPONENT = Component(
    "controllers",
    "kube-controller-manager and cloud-controller-manager: watch loops over informer "
    "caches and a work queue, writing through the apiserver",
    MODELS,
    symbolic=_symbolic(),
)

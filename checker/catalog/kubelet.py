"""The kubelet (``model.kubelet``): one pod's worker driving the CRI runtime
model, checked against the pod-lifecycle, init-container and sidecar
documents (``properties.kubelet``).

Four models of one machine, each a pod and a set of events that reach what
a group of properties talks about — together they are far beyond one
exhaustive search (docs/kubelet.md has the state counts): ``kubelet``, the
full pod (a sidecar, an init container, two app containers) under one
kubelet restart, one runtime restart, an exit, a probe failure and a
deletion; ``kubelet-crashloop``, one container crashing three times and
running ten minutes, one CreateContainer answer lost (back-off, restart
policy, completion, adoption without a restart); ``kubelet-lease``,
the node Lease going stale around a kubelet restart; ``kubelet-never``,
restartPolicy Never with a sidecar that has a readiness probe and no
startup probe (the pod's Never phase; started is not ready).
"""

from __future__ import annotations

from kubemc.checker.catalog import Component, Model
from kubemc.model.kernel import Mutant
from kubemc.model.kubelet import machine as km
from kubemc.model.kubelet.machine import Kubelet
from kubemc.properties import kubelet as props

_FULL_POD = {"sidecar": True, "init": True, "apps": 2, "restart_policy": "OnFailure",
             "grace": 3, "fits": True}
_CRASHLOOP = {"sidecar": False, "init": True, "apps": 1, "exits": 3, "probe_failures": 0,
              "long_runs": 1, "deletes": 1, "kubelet_restarts": 0, "runtime_restarts": 0,
              "lease_ticks": 0, "lost_answers": 1}
#: restartPolicy Never (the phase's Never branch, an init failure failing the pod) with a
#: sidecar that has a readiness probe and no startup probe, so "started" and "ready" differ
#: and survive a kubelet restart differently (docs/mutation/kubelet.md found both unreached)
_NEVER = {"sidecar": True, "sidecar_probe": "readiness", "init": True, "apps": 1,
          "restart_policy": "Never", "exits": 2, "probe_failures": 0, "long_runs": 0,
          "deletes": 0, "kubelet_restarts": 1, "runtime_restarts": 0, "lease_ticks": 0,
          "lost_answers": 0}
_LEASE = {"sidecar": False, "init": False, "apps": 1, "exits": 0, "probe_failures": 0,
          "long_runs": 0, "deletes": 0, "kubelet_restarts": 1, "runtime_restarts": 0,
          "lease_ticks": 2}

class _Variant(Kubelet):
    """The same machine at other bounds, carrying no mutants of its own: a
    ``--mutant`` run goes to the ``kubelet`` model, which names the bounds
    each mutant is reached at."""

    mutants = {}


class _Never(Kubelet):
    """The machine at ``_NEVER``'s pod, carrying the one mutant only a sidecar
    without a startup probe shows (the ``kubelet`` model's sidecar has one)."""

    mutants = {
        km.SIDECAR_WAITS_FOR_READY: Mutant(
            "the next init container waits for the sidecar to be ready rather than started "
            "(the sidecar docs: the kubelet starts the next init container once the sidecar's "
            "started status is true; without a startup probe that is as soon as it runs)",
            violates="kubelet_next_after_started_sidecar"),
    }


KUBELET = Model(
    name="kubelet",
    build=Kubelet,
    bounds={**_FULL_POD, "exits": 1, "probe_failures": 1, "long_runs": 0, "deletes": 1,
            "kubelet_restarts": 1, "runtime_restarts": 1, "lease_ticks": 0},
    properties=props.PROPERTIES,
    # random runs: the Lease too; every other bound as explore's, since a
    # hypothesis bound would override the small bounds each mutant is
    # reached at (kubelet-crashloop and kubelet-lease go deeper)
    hypothesis_bounds={"lease_ticks": 1},
    mutant_bounds={
        "never_policy_restarts": {"restart_policy": "Never", "sidecar": False, "init": False,
                                  "apps": 1, "exits": 1, "probe_failures": 0, "deletes": 0,
                                  "kubelet_restarts": 0, "runtime_restarts": 0},
        # the two completion mutants at a pod of app containers alone: random runs
        # spend the full pod's exits on the sidecar and the init container first
        "onfailure_restarts_success": {"sidecar": False, "init": False, "apps": 1,
                                       "exits": 1, "probe_failures": 0, "deletes": 0,
                                       "kubelet_restarts": 0, "runtime_restarts": 0},
        "succeeded_early": {"sidecar": False, "init": False, "exits": 1,
                            "probe_failures": 0, "deletes": 0, "kubelet_restarts": 0,
                            "runtime_restarts": 0},
        "sidecar_not_restarted": {"init": False, "apps": 1, "exits": 1, "probe_failures": 0,
                                  "deletes": 0, "kubelet_restarts": 0, "runtime_restarts": 0},
        "runs_rejected_pod": {"fits": False},
        "ready_ignores_probe": {"sidecar": False, "init": False, "apps": 1, "exits": 0,
                                "probe_failures": 1, "deletes": 0, "kubelet_restarts": 0,
                                "runtime_restarts": 0},
        # the lasso needs the complete graph: at the defaults 100,650 states, here a few
        "leaks_sandbox": {"exits": 0, "probe_failures": 0, "kubelet_restarts": 0,
                          "runtime_restarts": 0},
        "backoff_never_resets": _CRASHLOOP,
        # six consecutive crashes of one container reach the 300 s cap
        "backoff_uncapped": {"sidecar": False, "init": False, "apps": 1,
                             "restart_policy": "Always", "exits": 6, "probe_failures": 0,
                             "long_runs": 0, "deletes": 0, "kubelet_restarts": 0,
                             "runtime_restarts": 0},
        "restart_stops_heartbeat": _LEASE,
        # a deletion alone reaches it
        "sandbox_stopped_first": {"exits": 0, "probe_failures": 0, "kubelet_restarts": 0,
                                  "runtime_restarts": 0},
    },
)

CRASHLOOP = Model(
    name="kubelet-crashloop",
    build=_Variant,
    bounds={**_FULL_POD, **_CRASHLOOP},
    # no sidecar and no Lease ticks here: those liveness properties are the
    # other models' (a trigger that never holds leaves random runs undecided)
    properties=props.SAFETY + (props.DELETED_CLEANED,) + props.CRASHLOOP_COVERS,
    hypothesis_bounds={"exits": 5, "long_runs": 2, "kubelet_restarts": 1},
)

LEASE = Model(
    name="kubelet-lease",
    build=_Variant,
    bounds={**_FULL_POD, **_LEASE},
    properties=props.SAFETY + (props.LEASE_RENEWED,) + props.LEASE_COVERS,
    hypothesis_bounds={"lease_ticks": 4, "kubelet_restarts": 2},
)

NEVER = Model(
    name="kubelet-never",
    build=_Never,
    bounds={**_FULL_POD, **_NEVER},
    # deletion is the other models' (kubelet_deleted_pod_cleaned): none here
    properties=props.SAFETY + (props.NEXT_AFTER_SIDECAR,) + props.NEVER_COVERS
    + (props.CRASHLOOP_COVERS[0],),
    hypothesis_bounds={"exits": 3, "probe_failures": 1},
)

COMPONENT = Component(
    "kubelet",
    "the kubelet's pod worker over the CRI runtime model: admission, sandbox first, init "
    "containers in order, sidecars kept running, restartPolicy and CrashLoopBackOff, "
    "probes and Ready, graceful termination, phase and status, Lease heartbeats, restarts "
    "that adopt",
    (KUBELET, CRASHLOOP, LEASE, NEVER),
)

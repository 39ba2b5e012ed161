"""kube-scheduler: seven models of one machine (``model.scheduler.machine``),
each a small cluster that reaches what a group of properties talks about —
the product of all of them is far beyond exhaustive search (docs/scheduler.md
has the state counts and why the split is sound: the properties are per pod
and per node, and each model keeps every mechanism a property depends on).
Together: 3 nodes, 4 pods, 2 schedulers, one preemption, one crash with a
Binding on the wire, one failed bind; (``scheduler-victims``) a preemption
where the choice of victims and node matters; (``scheduler-victims-rank``)
one where the nodes' victims differ in highest priority, priority sum and
number; and (``scheduler-ha``) two
replicas electing a leader on a Lease, one of them crashing. The z3 engine
judges every bind of each model with the feasibility oracle.
"""

from __future__ import annotations

from kubemc.checker.catalog import Component, Model
from kubemc.checker.counterexample import Counterexample
from kubemc.checker.z3engine import PROVED, VIOLATED, Z3Outcome, SymbolicCheck, confirm
from kubemc.model.scheduler.machine import (
    BindingScheduler, HAScheduler, PlacementScheduler, PreemptionScheduler, SpreadScheduler,
    VictimsRankScheduler, VictimsScheduler,
)
from kubemc.properties import scheduler as props

PLACEMENT = Model(
    name="scheduler",
    build=PlacementScheduler,
    # 3 nodes, 4 pods, the default and a custom scheduler, one failed bind
    bounds={"crashes": 0, "bind_failures": 1, "deletions": 0},
    properties=props.PLACEMENT,
    hypothesis_bounds={"bind_failures": 2, "deletions": 1},
)

PREEMPTION = Model(
    name="scheduler-preemption",
    build=PreemptionScheduler,
    # 2 full nodes, 2 pending pods of priority 10, one victim of priority 0
    bounds={"crashes": 0, "bind_failures": 0, "deletions": 0},
    properties=props.PREEMPTION,
    hypothesis_bounds={"bind_failures": 1},
)

VICTIMS = Model(
    name="scheduler-victims",
    build=VictimsScheduler,
    # 2 full nodes (three lower-priority pods on n0; one live and one
    # terminating on n1), 1 pending pod of priority 10: which victims, where
    bounds={"crashes": 0, "bind_failures": 0, "deletions": 0},
    properties=props.VICTIMS,
    hypothesis_bounds={"bind_failures": 1},
)

VICTIMS_RANK = Model(
    name="scheduler-victims-rank",
    build=VictimsRankScheduler,
    # 2 full nodes: two lower-priority pods on n0 (priorities 2 and 4), one
    # on n1 (priority 5); 1 pending pod of priority 10: how the node is ranked
    bounds={"crashes": 0, "bind_failures": 0, "deletions": 0},
    properties=props.VICTIMS,
    hypothesis_bounds={"bind_failures": 1},
)

SPREAD = Model(
    name="scheduler-spread",
    build=SpreadScheduler,
    # 3 nodes in 2 zones, a terminating and a running pod, 2 spread pods.
    # No failed bind and no crash: the spread is decided on assumed pods, so
    # a bind that fails, or a crash that leaves a Binding on the wire, after
    # a later pod was placed beside the assumption leaves the skew above
    # maxSkew — in Kubernetes too; tests/test_scheduler.py shows the checker
    # finds both.
    bounds={"crashes": 0, "bind_failures": 0, "deletions": 0},
    properties=props.SPREAD,
)

BINDING = Model(
    name="scheduler-binding",
    build=BindingScheduler,
    # 3 nodes, 2 pods, one crash (a Binding may still be on the wire), one failed bind
    bounds={"crashes": 1, "bind_failures": 1, "deletions": 0},
    properties=props.BINDING,
    hypothesis_bounds={"crashes": 1, "bind_failures": 2, "deletions": 1},
)

HA = Model(
    name="scheduler-ha",
    build=HAScheduler,
    # 2 replicas of the default scheduler and a Lease, 2 nodes, 1 pod, one
    # crash (of the leader or the standby, a Binding possibly on the wire)
    bounds={"crashes": 1, "bind_failures": 0, "deletions": 0},
    properties=props.HA,
    hypothesis_bounds={"crashes": 2, "bind_failures": 1},
)

MODELS = (PLACEMENT, PREEMPTION, VICTIMS, VICTIMS_RANK, SPREAD, BINDING, HA)

_BINDS_PROVES = ("every bind the model reaches goes to a node the Z3 feasibility oracle accepts "
                 "for the pod against the pods on nodes and the Bindings in flight")
#: the mutants whose wrong binds the oracle refuses (tests/test_scheduler_z3.py)
_ORACLE_CATCHES = {
    "scheduler": ("sidecar_request_max", "ignores_noschedule_taint", "stale_node_view",
                  "binds_other_schedulers_pods"),
    "scheduler-spread": ("spread_counts_terminating", "spread_wrong_topology_key"),
    "scheduler-victims-rank": ("request_ignores_init_peak",),
}


def _binds_check(model: Model) -> SymbolicCheck:
    """``sched_bound_node_passes_filters`` with the oracle as judge: explore
    enumerates the states, Z3 decides each distinct bind; a refused bind is
    replayed on the machine, where the filter table must refuse it too."""
    from kubemc.checker.binds import judge_binds

    name = f"{model.name}:binds_feasible_z3"
    target = props.BOUND_NODE_PASSES_FILTERS

    def run(mutant=None, *, timeout_ms=None):
        machine = model.machine(mutant)
        out = judge_binds(machine)
        if out.failed is None:
            return Z3Outcome(name, target.name, "smt", PROVED, out.binds, out.seconds,
                          detail=f"{out.binds:,} binds ({out.questions:,} distinct oracle "
                                 f"questions) in {out.states:,} reachable states",
                          machine=machine)
        cex = Counterexample(target, out.init, out.steps)
        confirm(machine, cex, name)
        pod, node = out.failed
        return Z3Outcome(name, target.name, "smt", VIOLATED, len(cex.steps), out.seconds,
                      counterexample=cex, machine=machine,
                      detail=f"the oracle finds no room for {machine.pods[pod].name} on "
                             f"{machine.nodes[node].name}")

    return SymbolicCheck(name, "scheduler", model.name, target.name, _BINDS_PROVES, run,
                         _ORACLE_CATCHES.get(model.name, ()))

COMPONENT = Component(
    "scheduler",
    "kube-scheduler: scheduling queue, filter and score plugins, preemption, the assume "
    "cache and asynchronous binding, a default and a custom scheduler, two replicas "
    "electing a leader on a Lease",
    MODELS,
    symbolic=tuple(_binds_check(m) for m in MODELS),
)

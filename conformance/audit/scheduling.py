"""``kubemc audit scheduling FILE...``: the placements of a real cluster,
judged with the scheduler model's filters and the Z3 feasibility oracle.

Four kinds of finding, each with what a user needs to act on it:

* ``filter``: a bound pod whose node fails a filter — NodeAffinity and
  nodeSelector, TaintToleration (NoSchedule, NoExecute), NodePorts and
  required anti-affinity against the node's other pods. The node is judged
  *as the snapshot shows it*: labels, taints changed after the bind show
  here too (Kubernetes ignores them "during execution"), and the report
  says so. NodeUnschedulable is not judged for bound pods: cordoning is
  meant to leave running pods in place. The spread is judged only when a
  pod is placed (the oracle), not after the fact: it depends on the order
  of binds, which a snapshot does not hold;
* ``overcommit``: a node whose pods (not Succeeded/Failed) request more cpu,
  memory or pods than it has allocatable (KEP-753 effective requests);
* ``pending_feasible``: a pending pod for which the oracle finds a node
  passing every modelled filter — named. Volume binding, required pod
  affinity, DRA and scheduling gates are not modelled, so such a pod may
  still be rightly pending for one of them: the report lists the pod's
  scheduling gates when it has some;
* ``wrong_scheduler``: a pod bound by a scheduler other than the one its
  ``spec.schedulerName`` names. How: the Scheduled events in the input
  (``kubectl get events -A -o json``, given as another file) name the
  profile that bound each pod; without events, this is not judged and the
  summary says so. Events expire (an hour by default), so only recent
  binds can be judged. Mirror pods (static pods) are skipped: no scheduler
  places them.

Exit codes: 0 no finding, 1 findings (and the report file written), 2 bad
input in one line.
"""

from __future__ import annotations

import json
from pathlib import Path

from kubemc.checker.errors import HOLDS, VIOLATED, BadInput
from kubemc.conformance.audit.snapshot import FINISHED, ClusterSnapshot, load
from kubemc.model.scheduler.objects import DEFAULT_SCHEDULER, NO_EXECUTE, NO_SCHEDULE
from kubemc.model.scheduler.plugins import (
    effective_request, inter_pod_anti_affinity, node_affinity, node_ports, tolerates,
)
from kubemc.properties.symbolic.scheduler_feasibility import Snapshot

DEFAULT_REPORT = "kubemc-audit-scheduling.json"


def _placed(snap: ClusterSnapshot):
    index = {n.name: i for i, n in enumerate(snap.nodes)}
    placed = [(k, r.pod, index[r.node], r.terminating) for k, r in enumerate(snap.pods)
              if r.node in index and r.phase not in FINISHED]
    return index, placed


def filter_findings(snap: ClusterSnapshot, index, placed) -> list[dict]:
    out = []
    for k, r in enumerate(snap.pods):
        if not r.node or r.mirror or r.phase in FINISHED or r.node not in index:
            continue
        i, pod = index[r.node], r.pod
        node = snap.nodes[i]
        others = [e for e in placed if e[0] != k]
        failed = []
        if not node_affinity(pod, node):
            failed.append("NodeAffinity")
        untolerated = [f"{t.key}={t.value}:{t.effect}" for t in node.taints
                       if t.effect in (NO_SCHEDULE, NO_EXECUTE) and not tolerates(pod, t)]
        if untolerated:
            failed.append("TaintToleration (" + ", ".join(untolerated) + ")")
        if not node_ports(pod, i, others):
            failed.append(f"NodePorts {list(pod.host_ports)}")
        if not inter_pod_anti_affinity(pod, i, snap.nodes, others):
            failed.append("InterPodAffinity (required anti-affinity)")
        if failed:
            out.append({"kind": "filter", "pod": pod.name, "node": node.name, "filters": failed,
                        "note": "judged against the node as the snapshot shows it"})
    return out


def overcommit_findings(snap: ClusterSnapshot, placed) -> list[dict]:
    cpu, mem, count = {}, {}, {}
    for _, pod, i, _ in placed:
        r = effective_request(pod)
        cpu[i] = cpu.get(i, 0) + r.cpu
        mem[i] = mem.get(i, 0) + r.memory
        count[i] = count.get(i, 0) + 1
    out = []
    for i, node in enumerate(snap.nodes):
        over = {}
        if cpu.get(i, 0) > node.allocatable.cpu:
            over["cpu_millicores"] = [cpu[i], node.allocatable.cpu]
        if mem.get(i, 0) > node.allocatable.memory:
            over["memory_bytes"] = [mem[i], node.allocatable.memory]
        if count.get(i, 0) > node.max_pods:
            over["pods"] = [count[i], node.max_pods]
        if over:
            out.append({"kind": "overcommit", "node": node.name,
                        "requested_vs_allocatable": over})
    return out


def pending_findings(snap: ClusterSnapshot, placed) -> list[dict]:
    pending = [r for r in snap.pods if not r.node and r.phase == "Pending" and not r.terminating]
    if not pending or not snap.nodes:
        return []
    oracle, out = Snapshot(snap.nodes, placed), []
    for r in pending:
        answer = oracle.feasible([r.pod])
        if answer.feasible:
            out.append({"kind": "pending_feasible", "pod": r.pod.name,
                        "scheduler": r.pod.scheduler,
                        "feasible_node": snap.nodes[answer.placement[0]].name,
                        "notes": list(r.notes)})
    return out


def scheduler_findings(snap: ClusterSnapshot) -> list[dict]:
    out = []
    for r in snap.pods:
        by = snap.scheduled_by.get(r.pod.name)
        if r.node and by and not r.mirror and by != r.pod.scheduler:
            out.append({"kind": "wrong_scheduler", "pod": r.pod.name, "node": r.node,
                        "names": r.pod.scheduler, "bound_by": by,
                        "evidence": "Scheduled event's reporting component"})
    return out


def audit(paths) -> dict:
    snap = load(paths)
    index, placed = _placed(snap)
    findings = (filter_findings(snap, index, placed) + overcommit_findings(snap, placed)
                + pending_findings(snap, placed) + scheduler_findings(snap))
    unknown_nodes = sorted({r.node for r in snap.pods if r.node and r.node not in index})
    return {
        "files": list(snap.sources),
        "nodes": len(snap.nodes), "pods": len(snap.pods),
        "bound": sum(1 for r in snap.pods if r.node),
        "scheduled_events": len(snap.scheduled_by),
        "ignored_items": snap.ignored,
        "findings": findings,
        "limitations": ([] if snap.scheduled_by else
                        ["no Scheduled events in the input: which scheduler bound each pod "
                         "is not judged (add `kubectl get events -A -o json`)"])
        + ([f"pods bound to nodes not in the snapshot: {', '.join(unknown_nodes[:5])}"]
           if unknown_nodes else [])
        + [f"{r.pod.name}: {n}" for r in snap.pods for n in r.notes],
    }


def _line(f: dict) -> str:
    if f["kind"] == "filter":
        return f"  bound pod {f['pod']} on {f['node']} fails {'; '.join(f['filters'])}"
    if f["kind"] == "overcommit":
        parts = ", ".join(f"{k} {a:,} > {b:,}" for k, (a, b) in
                          f["requested_vs_allocatable"].items())
        return f"  node {f['node']} over-committed: {parts}"
    if f["kind"] == "pending_feasible":
        return (f"  pending pod {f['pod']} ({f['scheduler']}) fits node "
                f"{f['feasible_node']}")
    return (f"  pod {f['pod']} names {f['names']} but was bound by {f['bound_by']} "
            f"(on {f['node']})")


def run(paths, *, as_json: bool = False, report: str = DEFAULT_REPORT) -> int:
    result = audit(paths)
    findings = result["findings"]
    if findings:
        try:
            Path(report).write_text(json.dumps(result, indent=1))
        except OSError as exc:
            raise BadInput(f"--report {report}: cannot write ({exc.strerror})") from None
    if as_json:
        print(json.dumps(result, indent=1))
    else:
        print(f"audit scheduling: {result['nodes']} nodes, {result['pods']} pods "
              f"({result['bound']} bound), {result['scheduled_events']} Scheduled events")
        for f in findings:
            print(_line(f))
        for note in result["limitations"]:
            print(f"  note: {note}")
        print(f"{len(findings)} finding(s)" + (f"; report: {report}" if findings else ""))
    return VIOLATED if findings else HOLDS


__all__ = ["audit", "run", "DEFAULT_SCHEDULER"]

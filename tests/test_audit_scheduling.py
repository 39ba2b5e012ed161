"""``kubemc audit scheduling``: right findings on snapshots shaped like
``kubectl get nodes,pods -A -o json`` (one clean, one broken per finding),
bad input in one line with exit 2, quantities by the documented grammar,
and a fuzz of the reader (random bytes and mutated valid snapshots).
"""

from __future__ import annotations

import copy
import json
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from kubemc.checker.cli import main
from kubemc.conformance.audit.scheduling import audit
from kubemc.conformance.quantity import QuantityError, milli, parse, whole

DATA = Path(__file__).parent / "data" / "scheduling"
ZONE = "topology.kubernetes.io/zone"


def node(name, cpu="4", memory="16Gi", zone="a", taints=(), unschedulable=False, extra=None):
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": "812",
                         "labels": {"kubernetes.io/hostname": name, ZONE: zone,
                                    "kubernetes.io/os": "linux", **(extra or {})},
                         "managedFields": [{"manager": "kubelet", "operation": "Update"}]},
            "spec": {"podCIDR": "10.244.1.0/24", "taints": list(taints),
                     **({"unschedulable": True} if unschedulable else {})},
            "status": {"capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
                       "allocatable": {"cpu": cpu, "memory": memory, "pods": "110",
                                       "ephemeral-storage": "95551679124"},
                       "conditions": [{"type": "Ready", "status": "True"}],
                       "nodeInfo": {"kubeletVersion": "v1.31.0"}}}


def pod(name, node_name="", cpu="500m", memory="1Gi", ns="default", labels=None, phase=None,
        scheduler=None, **spec):
    body = {"containers": [{"name": "app", "image": "nginx:1.27",
                            "resources": {"requests": {"cpu": cpu, "memory": memory},
                                          "limits": {"memory": memory}},
                            "ports": [{"containerPort": 80, "protocol": "TCP"}]}],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
            "schedulerName": scheduler or "default-scheduler", "priority": 0,
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                             "effect": "NoExecute", "tolerationSeconds": 300}], **spec}
    if node_name:
        body["nodeName"] = node_name
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}",
                         "labels": labels or {"app": name.rsplit("-", 1)[0]},
                         "ownerReferences": [{"kind": "ReplicaSet", "name": "rs"}]},
            "spec": body,
            "status": {"phase": phase or ("Running" if node_name else "Pending"),
                       "qosClass": "Burstable"}}


def scheduled(pod_name, by, ns="default"):
    return {"apiVersion": "v1", "kind": "Event", "reason": "Scheduled", "type": "Normal",
            "metadata": {"name": f"{pod_name}.17f", "namespace": ns},
            "involvedObject": {"kind": "Pod", "namespace": ns, "name": pod_name},
            "source": {"component": by}, "reportingComponent": by,
            "message": f"Successfully assigned {ns}/{pod_name}"}


def listing(*items):
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
            "items": list(items)}


GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def clean():
    """Three nodes (one GPU node, tainted), a web Deployment spread over
    zones, a sidecar pod (KEP-753), a DaemonSet pod pinned by matchFields,
    a Succeeded job's pod, and a pending pod no node can take."""
    spread = [{"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule",
               "labelSelector": {"matchLabels": {"app": "web"}}}]
    return listing(
        node("node-a", cpu="4", memory="16Gi", zone="a"),
        node("node-b", cpu="4000m", memory="16384Mi", zone="b"),
        node("gpu-1", cpu="8", memory="64Gi", zone="a", taints=[GPU_TAINT],
             extra={"accelerator": "nvidia"}),
        pod("web-1", "node-a", cpu="1500m", memory="2Gi", topologySpreadConstraints=spread),
        pod("web-2", "node-b", cpu="1500m", memory="2Gi", topologySpreadConstraints=spread),
        pod("train-1", "gpu-1", cpu="6", memory="48Gi", tolerations=[GPU_TOLERATION],
            nodeSelector={"accelerator": "nvidia"}),
        pod("mesh-1", "node-b", cpu="1", memory="1e9", initContainers=[
            {"name": "proxy", "restartPolicy": "Always",
             "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}}},
            {"name": "migrate", "resources": {"requests": {"cpu": "2", "memory": "1Gi"}}}]),
        pod("agent-x", "node-a", cpu="100m", memory="128Mi", ns="kube-system",
            affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name",
                                                        "operator": "In",
                                                        "values": ["node-a"]}]}]}}}),
        pod("job-1", "node-a", cpu="3", phase="Succeeded"),
        pod("huge-1", cpu="16"),
    )


def write(tmp_path, doc, name="snap.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


def kinds(result):
    return sorted(f["kind"] for f in result["findings"])


# -- the snapshots ------------------------------------------------------------------

def test_the_committed_snapshot_is_the_generated_clean_one():
    assert json.loads((DATA / "clean.json").read_text()) == clean()


def test_clean_snapshot_has_no_finding(tmp_path, capsys):
    report = tmp_path / "report.json"
    assert main(["audit", "scheduling", str(DATA / "clean.json"), "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "0 finding(s)" in out and "3 nodes, 7 pods (6 bound)" in out
    assert not report.exists()


def test_bound_pod_failing_filters(tmp_path):
    doc = clean()
    doc["items"].append(pod("rogue-1", "gpu-1", cpu="100m", nodeSelector={"disk": "ssd"}))
    result = audit([write(tmp_path, doc)])
    (f,) = result["findings"]
    assert f["kind"] == "filter" and f["pod"] == "default/rogue-1" and f["node"] == "gpu-1"
    assert f["filters"][0] == "NodeAffinity" and f["filters"][1].startswith("TaintToleration")


def test_host_port_and_anti_affinity_conflicts(tmp_path):
    doc = clean()
    port = [{"name": "dns", "image": "coredns", "ports": [{"containerPort": 53,
                                                            "hostPort": 53}]}]
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"topologyKey": "kubernetes.io/hostname",
         "labelSelector": {"matchLabels": {"app": "cache"}}}]}}
    doc["items"] += [pod("dns-1", "node-b", containers=port),
                     pod("dns-2", "node-b", containers=port),
                     pod("cache-1", "node-a", labels={"app": "cache"}, affinity=anti),
                     pod("cache-2", "node-a", labels={"app": "cache"}, affinity=anti)]
    found = {(f["pod"], f["filters"][0].split()[0]) for f in audit([write(tmp_path, doc)])
             ["findings"] if f["kind"] == "filter"}
    assert found == {("default/dns-1", "NodePorts"), ("default/dns-2", "NodePorts"),
                     ("default/cache-1", "InterPodAffinity"),
                     ("default/cache-2", "InterPodAffinity")}


def test_overcommitted_node(tmp_path):
    doc = clean()
    doc["items"].append(pod("batch-1", "node-b", cpu="1", memory="1Gi"))
    result = audit([write(tmp_path, doc)])
    (f,) = result["findings"]
    # node-b: web-2 1500m + mesh-1 max(2000+500, 500+1000)=2500m + 1000m = 5000m > 4000m
    assert f == {"kind": "overcommit", "node": "node-b",
                 "requested_vs_allocatable": {"cpu_millicores": [5000, 4000]}}


def test_pending_pod_that_fits_names_the_node(tmp_path, capsys):
    doc = clean()
    doc["items"].append(pod("api-1", cpu="2", memory="4Gi"))
    path = write(tmp_path, doc)
    report = tmp_path / "r.json"
    assert main(["audit", "scheduling", path, "--report", str(report)]) == 1
    (f,) = json.loads(report.read_text())["findings"]
    # node-a has 4000m - 1500m - 100m free (job-1 Succeeded holds nothing); node-b is full
    assert f["kind"] == "pending_feasible" and f["feasible_node"] == "node-a"
    assert "pending pod default/api-1 (default-scheduler) fits node node-a" in \
        capsys.readouterr().out


def test_pod_bound_by_another_scheduler(tmp_path, capsys):
    doc = clean()
    doc["items"][3]["spec"]["schedulerName"] = "gang-scheduler"
    events = listing(scheduled("web-1", "default-scheduler"),
                     scheduled("web-2", "default-scheduler"))
    write(tmp_path, doc, "pods.json")
    write(tmp_path, events, "events.json")
    assert main(["audit", "scheduling", str(tmp_path), "--json",
                 "--report", str(tmp_path / "out.txt")]) == 1
    result = json.loads(capsys.readouterr().out)
    assert kinds(result) == ["wrong_scheduler"]
    assert result["findings"][0]["bound_by"] == "default-scheduler"
    assert result["findings"][0]["names"] == "gang-scheduler"


def test_without_events_the_scheduler_check_says_it_did_not_judge(tmp_path):
    result = audit([str(DATA / "clean.json")])
    assert any("no Scheduled events" in n for n in result["limitations"])


# -- quantities ---------------------------------------------------------------------

@pytest.mark.parametrize("text,value", [
    ("1500m", Fraction(3, 2)), ("2Gi", 2 * 2**30), ("1e3", 1000), ("1E3", 1000),
    ("1E", 10**18), (".5", Fraction(1, 2)), ("1.", 1), ("+1.5k", 1500), ("100n", Fraction(1, 10**7)),
    ("5e-1", Fraction(1, 2)), ("0", 0), (3, 3)])
def test_quantities_by_the_grammar(text, value):
    assert parse(text) == value


@pytest.mark.parametrize("text", ["1.5.5", "Infinity", "1_000", "1K", "1e3Mi", "", "e3",
                                  "1Gb", " 1", "1 ", "0x10", "NaN", "1e1.5", True, None])
def test_quantities_outside_the_grammar(text):
    with pytest.raises(QuantityError):
        parse(text)


def test_rounding_is_up_as_documented():
    assert milli("0.1m") == 1 and milli("1500m") == 1500 and whole("0.5") == 1


# -- bad input: one line, exit 2 ------------------------------------------------------

@pytest.mark.parametrize("doc,says", [
    ("{not json", "not JSON"),
    ("[1, 2]", "expected a Kubernetes List or object"),
    (json.dumps(listing({"kind": "Pod", "metadata": {"name": "p"}})), "without spec"),
    (json.dumps(listing(pod("p", cpu="1.5.5"))), "'1.5.5' is not a Kubernetes quantity"),
    (json.dumps(listing({"metadata": {}})), "without kind"),
    (json.dumps({"kind": "List", "items": {"a": 1}}), "items should be a list"),
    (json.dumps(listing(node("n", cpu="lots"))), "status.allocatable.cpu"),
])
def test_bad_input_is_one_line(tmp_path, capsys, doc, says):
    path = tmp_path / "bad.json"
    path.write_text(doc)
    assert main(["audit", "scheduling", str(path)]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1 and "Traceback" not in err


def test_missing_file_and_empty_directory(tmp_path, capsys):
    assert main(["audit", "scheduling", str(tmp_path / "nope.json")]) == 2
    assert main(["audit", "scheduling", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "no .json file" in err


def test_unknown_fields_and_kinds_are_ignored(tmp_path):
    doc = clean()
    doc["items"][0]["spec"]["futureField"] = {"x": [1]}
    doc["items"].append({"kind": "ConfigMap", "metadata": {"name": "c"}})
    result = audit([write(tmp_path, doc)])
    assert result["findings"] == [] and result["ignored_items"] == 1


# -- fuzz -------------------------------------------------------------------------------

FUZZ = dict(max_examples=150, deadline=None, derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _exit_and_err(tmp_path, capsys, data: bytes):
    path = tmp_path / "fuzz.json"
    path.write_bytes(data)
    code = main(["audit", "scheduling", str(path), "--report", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert code in (0, 1, 2), err
    if code == 2:
        assert err.count("\n") == 1 and "Traceback" not in err
    return code


@settings(**FUZZ)
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(tmp_path, capsys, data):
    _exit_and_err(tmp_path, capsys, data)


JUNK = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**12), st.text(max_size=6),
                 st.sampled_from(["1500m", "2Gi", "1e3", "-1", "1.5.5", "Exists", "In"]),
                 st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3),
                                                                      st.integers(), max_size=2))


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


BASE = clean()
PATHS = [p for p in _paths(BASE) if p]


@settings(**FUZZ)
@given(st.lists(st.tuples(st.sampled_from(PATHS), JUNK, st.booleans()), min_size=1,
                max_size=4))
def test_fuzz_mutated_snapshots(tmp_path, capsys, edits):
    doc = copy.deepcopy(BASE)
    for path, value, delete in edits:
        parent = doc
        try:
            for k in path[:-1]:
                parent = parent[k]
            if delete and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    _exit_and_err(tmp_path, capsys, json.dumps(doc).encode())

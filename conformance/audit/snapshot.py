"""Reading what ``kubectl get nodes,pods -A -o json`` prints into the
scheduler model's values (``model.scheduler.objects``).

Why convert rather than extend the model: the plugins and the oracle already
speak ``Node``/``Pod``; a snapshot is turned into them once, with two
encodings that keep the plugins' semantics exact:

* namespaces: topology spread and anti-affinity selectors select pods of
  the pod's own namespace (the default when ``namespaces`` and
  ``namespaceSelector`` are absent), so every pod carries the label
  ``NAMESPACE_LABEL`` and each selector adds it;
* ``matchFields`` on ``metadata.name`` (how DaemonSet pods pin a node) is a
  requirement on the label ``NODE_NAME_LABEL`` every node carries.

What the model cannot express is recorded as a note on the pod and that pod
is not judged on the filter involved (never silently dropped):
``matchExpressions`` in pod label selectors, node-affinity operators ``Gt``
and ``Lt``, required pod *affinity*, anti-affinity across namespaces.
Unknown fields are ignored, as the apiserver's clients do; a field of the
wrong type or a bad quantity is one line naming the file, the object and
the field.
"""

from __future__ import annotations

import json
from pathlib import Path

import attrs

from kubemc.checker.errors import BadInput
from kubemc.conformance.quantity import QuantityError, milli, whole
from kubemc.model.scheduler.objects import (
    AntiAffinityTerm, InitContainer, Node, Pod, Requirement, Resources, SpreadConstraint, Taint,
    Toleration,
)

NAMESPACE_LABEL = "kubemc.io/namespace"
NODE_NAME_LABEL = "kubemc.io/node-name"
FINISHED = ("Succeeded", "Failed")


@attrs.frozen(slots=True)
class PodRecord:
    """A pod as the snapshot shows it: the model's spec and its status."""

    pod: Pod
    node: str            # spec.nodeName, "" when pending
    phase: str
    terminating: bool    # metadata.deletionTimestamp set
    mirror: bool         # a static pod's mirror: the kubelet placed it, no scheduler did
    notes: tuple = ()


@attrs.frozen(slots=True)
class ClusterSnapshot:
    nodes: tuple         # Node
    pods: tuple          # PodRecord
    scheduled_by: dict   # "ns/name" -> the component of its Scheduled event
    sources: tuple       # the files read
    ignored: int         # items of other kinds


def _fail(where: str, message: str):
    raise BadInput(f"{where}: {message}")


def _get(obj, key, kind, where, default=None):
    value = obj.get(key, default) if isinstance(obj, dict) else default
    if value is None:
        return default
    if not isinstance(value, kind):
        _fail(where, f"{key} should be {_kind_name(kind)}, not {type(value).__name__}")
    return value


def _objects(obj, key, where) -> list:
    """A list of objects (containers, taints, terms): each must be one."""
    items = _get(obj, key, list, where, [])
    if not all(isinstance(x, dict) for x in items):
        _fail(where, f"every entry of {key} should be an object")
    return items


def _strings(obj, key, where) -> dict:
    """A string-to-string map (labels, matchLabels, nodeSelector)."""
    got = _get(obj, key, dict, where, {})
    if not all(isinstance(v, str) for v in got.values()):
        _fail(where, f"{key} values should be strings")
    return got


def _kind_name(kind) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true or false",
             int: "an integer"}
    return names.get(kind, "a value") if not isinstance(kind, tuple) else "a value"


def _quantity(value, where, field, convert):
    try:
        return convert(value)
    except QuantityError as exc:
        _fail(where, f"{field}: {exc}")


def _resources(obj, where, field) -> Resources:
    return _amounts(_get(obj, field, dict, where, {}), where, field)


def _amounts(req: dict, where, field) -> Resources:
    cpu = _quantity(req["cpu"], where, f"{field}.cpu", milli) if "cpu" in req else 0
    mem = _quantity(req["memory"], where, f"{field}.memory", whole) if "memory" in req else 0
    return Resources(cpu, mem)


def _labels(meta, where) -> dict:
    return _strings(meta, "labels", where)


def node_from(item, where) -> Node:
    meta = _get(item, "metadata", dict, where, {})
    name = _get(meta, "name", str, where)
    if not name:
        _fail(where, "a Node without metadata.name")
    where = f"{where} (Node {name})"
    spec = _get(item, "spec", dict, where, {})
    alloc = _get(_get(item, "status", dict, where, {}), "allocatable", dict, where, {})
    taints = tuple(Taint(_get(t, "key", str, where, ""), _get(t, "value", str, where, ""),
                         _get(t, "effect", str, where, ""))
                   for t in _objects(spec, "taints", where))
    pods = _quantity(alloc["pods"], where, "status.allocatable.pods", whole) \
        if "pods" in alloc else 110
    labels = {**_labels(meta, where), NODE_NAME_LABEL: name}
    return Node(name, _amounts(alloc, where, "status.allocatable"),
                max_pods=pods, labels=tuple(sorted(labels.items())), taints=taints,
                unschedulable=bool(_get(spec, "unschedulable", bool, where, False)))


def _selector(sel, where, ns, notes, what) -> tuple | None:
    sel = sel if isinstance(sel, dict) else {}
    if sel.get("matchExpressions"):
        notes.append(f"{what}: matchExpressions in a label selector are not modelled; "
                     "not judged")
        return None
    labels = _strings(sel, "matchLabels", where)
    return tuple(sorted({**labels, NAMESPACE_LABEL: ns}.items()))


def _node_affinity(spec, where, notes) -> tuple:
    aff = _get(_get(spec, "affinity", dict, where, {}), "nodeAffinity", dict, where, {})
    required = _get(aff, "requiredDuringSchedulingIgnoredDuringExecution", dict, where, {})
    terms = []
    for term in _objects(required, "nodeSelectorTerms", where):
        reqs = []
        for field, key_of in (("matchExpressions", lambda e: _get(e, "key", str, where, "")),
                              ("matchFields", lambda e: NODE_NAME_LABEL)):
            for e in _objects(term, field, where):
                op = _get(e, "operator", str, where, "")
                if field == "matchFields" and _get(e, "key", str, where, "") != "metadata.name":
                    notes.append("nodeAffinity matchFields other than metadata.name: not judged")
                    return ()
                if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
                    notes.append(f"nodeAffinity operator {op!r} is not modelled: not judged")
                    return ()
                values = _get(e, "values", list, where, [])
                if not all(isinstance(v, str) for v in values):
                    _fail(where, "nodeAffinity values should be strings")
                reqs.append(Requirement(key_of(e), op, tuple(values)))
        terms.append(tuple(reqs))
    return tuple(terms)


def _anti_affinity(spec, where, ns, notes) -> tuple:
    aff = _get(spec, "affinity", dict, where, {})
    if _get(_get(aff, "podAffinity", dict, where, {}),
            "requiredDuringSchedulingIgnoredDuringExecution", list, where, []):
        notes.append("required podAffinity is not modelled: not judged")
    out = []
    anti = _get(aff, "podAntiAffinity", dict, where, {})
    for term in _objects(anti, "requiredDuringSchedulingIgnoredDuringExecution", where):
        namespaces = _get(term, "namespaces", list, where, [])
        if not all(isinstance(n, str) for n in namespaces):
            _fail(where, "podAntiAffinity namespaces should be strings")
        if term.get("namespaceSelector") is not None or set(namespaces) - {ns}:
            notes.append("anti-affinity across namespaces is not modelled: term not judged")
            continue
        sel = _selector(term.get("labelSelector"), where, ns, notes, "podAntiAffinity")
        if sel is not None:
            out.append(AntiAffinityTerm(_get(term, "topologyKey", str, where, ""), sel))
    return tuple(out)


def pod_from(item, where) -> PodRecord:
    meta = _get(item, "metadata", dict, where, {})
    name = _get(meta, "name", str, where)
    if not name:
        _fail(where, "a Pod without metadata.name")
    ns = _get(meta, "namespace", str, where, "default")
    where = f"{where} (Pod {ns}/{name})"
    if not isinstance(item.get("spec"), dict):
        _fail(where, "a Pod without spec (print pods with -o json, not a partial view)")
    spec, notes = item["spec"], []
    containers = _objects(spec, "containers", where)
    apps = tuple(_resources(_get(c, "resources", dict, where, {}), where, "requests")
                 for c in containers)
    inits = tuple(InitContainer(_resources(_get(c, "resources", dict, where, {}), where,
                                           "requests"),
                                _get(c, "restartPolicy", str, where, "") == "Always")
                  for c in _objects(spec, "initContainers", where))
    ports = tuple(sorted({p["hostPort"] for c in containers
                          for p in _objects(c, "ports", where)
                          if isinstance(p.get("hostPort"), int) and not isinstance(p["hostPort"], bool)
                          and p["hostPort"] > 0}))
    tolerations = tuple(Toleration(_get(t, "key", str, where, ""),
                                   _get(t, "operator", str, where, "Equal"),
                                   _get(t, "value", str, where, ""),
                                   _get(t, "effect", str, where, ""))
                        for t in _objects(spec, "tolerations", where))
    spread = []
    for c in _objects(spec, "topologySpreadConstraints", where):
        sel = _selector(c.get("labelSelector"), where, ns, notes, "topologySpreadConstraints")
        if sel is not None:
            spread.append(SpreadConstraint(_get(c, "maxSkew", int, where, 1),
                                           _get(c, "topologyKey", str, where, ""), sel,
                                           _get(c, "whenUnsatisfiable", str, where,
                                                "DoNotSchedule")))
    selector = _strings(spec, "nodeSelector", where)
    pod = Pod(f"{ns}/{name}", containers=apps, init_containers=inits,
              overhead=_resources(spec, where, "overhead"),
              scheduler_name=_get(spec, "schedulerName", str, where, ""),
              priority=_get(spec, "priority", int, where, 0),
              labels=tuple(sorted({**_labels(meta, where), NAMESPACE_LABEL: ns}.items())),
              node_selector=tuple(sorted(selector.items())),
              affinity=_node_affinity(spec, where, notes),
              tolerations=tolerations, host_ports=ports, spread=tuple(spread),
              anti_affinity=_anti_affinity(spec, where, ns, notes))
    status = _get(item, "status", dict, where, {})
    annotations = _get(meta, "annotations", dict, where, {})
    return PodRecord(pod, _get(spec, "nodeName", str, where, ""),
                     _get(status, "phase", str, where, "Pending"),
                     meta.get("deletionTimestamp") is not None,
                     "kubernetes.io/config.mirror" in annotations, tuple(notes))


def _scheduled_event(item, where):
    """An Event with reason Scheduled names the profile that bound the pod:
    kube-scheduler records it with the profile's schedulerName as the
    reporting component (``reportingComponent``, or ``source.component`` for
    core/v1 events)."""
    if item.get("reason") != "Scheduled":
        return None
    obj = _get(item, "involvedObject", dict, where, {}) or _get(item, "regarding", dict, where, {})
    if obj.get("kind") != "Pod":
        return None
    by = item.get("reportingComponent") or item.get("reportingController") or \
        _get(item, "source", dict, where, {}).get("component")
    if not isinstance(by, str) or not by:
        return None
    return f"{obj.get('namespace', 'default')}/{obj.get('name', '')}", by


def files_of(paths) -> list[Path]:
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix == ".json" and q.is_file())
            if not found:
                raise BadInput(f"{p}: a directory with no .json file")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise BadInput(f"{p}: no such file or directory")
    if not out:
        raise BadInput("no input: give kubectl's JSON output files or a directory")
    return out


def load(paths) -> ClusterSnapshot:
    nodes, pods, scheduled, ignored = {}, {}, {}, 0
    files = files_of(paths)
    for path in files:
        try:
            doc = json.loads(path.read_bytes())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadInput(f"{path}: not JSON ({' '.join(str(exc).split())}); "
                           "expected `kubectl get nodes,pods -A -o json`") from None
        except OSError as exc:
            raise BadInput(f"{path}: cannot read ({exc.strerror})") from None
        if not isinstance(doc, dict):
            raise BadInput(f"{path}: expected a Kubernetes List or object, "
                           f"not a JSON {type(doc).__name__}")
        items = doc.get("items") if isinstance(doc.get("kind"), str) and \
            doc["kind"].endswith("List") else [doc]
        if not isinstance(items, list):
            raise BadInput(f"{path}: items should be a list")
        for i, item in enumerate(items):
            where = str(path) if doc is item else f"{path}: items[{i}]"
            if not isinstance(item, dict):
                raise BadInput(f"{where}: expected an object")
            kind = item.get("kind")
            if kind == "Node":
                node = node_from(item, where)
                nodes[node.name] = node
            elif kind == "Pod":
                rec = pod_from(item, where)
                pods[rec.pod.name] = rec
            elif kind == "Event":
                got = _scheduled_event(item, where)
                if got:
                    scheduled[got[0]] = got[1]
            elif isinstance(kind, str):
                ignored += 1
            else:
                raise BadInput(f"{where}: an item without kind")
    return ClusterSnapshot(tuple(nodes.values()), tuple(pods.values()), scheduled,
                           tuple(map(str, files)), ignored)

"""Services and EndpointSlices as ``kubectl get svc,endpointslices -A -o json``
prints them: a ``List`` whose ``items`` are ``v1 Service`` and
``discovery.k8s.io/v1 EndpointSlice`` objects.

What is read, and the API facts it rests on (kubernetes.io API reference,
Service v1 and EndpointSlice v1):

* ``spec.clusterIP`` (``None``: headless, no virtual IP, nothing for
  kube-proxy to do); ``spec.type`` (``ExternalName`` has no proxying);
  ``spec.ports[]``: ``name``, ``protocol`` (default TCP), ``port``,
  ``nodePort``; ``spec.externalTrafficPolicy`` (default Cluster);
  ``spec.sessionAffinity`` (``ClientIP`` or ``None``).
* An EndpointSlice belongs to the Service named by its
  ``kubernetes.io/service-name`` label in its namespace; its ``ports[]``
  carry the *target* port, matched to the Service port by name (and
  protocol); each endpoint's first address is the one proxies use.
* ``conditions``: ``ready`` nil means ready ("consumers should interpret
  this unknown state as ready"), ``serving`` nil means the value of
  ``ready``, ``terminating`` nil means not terminating.

Which endpoints must receive traffic is not decided here: that is
:func:`properties.proxy.usable_endpoints` (ready ones; serving terminating
ones when none is ready, KEP-1669).
"""

from __future__ import annotations

import json

import attrs

from kubemc.checker.errors import BadInput
from kubemc.model.network.addr import ip

PROTOCOLS = ("TCP", "UDP", "SCTP")
MAX_BYTES = 512 * 1024 * 1024


@attrs.frozen(slots=True)
class Endpoint:
    """``pod``: the name of the Pod its ``targetRef`` names ("" when it names
    none: the apiserver's own endpoints, a selector-less Service's)."""

    ip: int
    port: int
    ready: bool
    serving: bool
    terminating: bool
    pod: str = ""
    node: str = ""


@attrs.frozen(slots=True)
class ServicePort:
    """One port of one Service, with the endpoints its slices give it."""

    namespace: str
    name: str
    port_name: str
    vip: int
    port: int
    proto: str
    node_port: int = 0
    external_local: bool = False
    affinity: bool = False
    endpoints: tuple = ()

    @property
    def key(self) -> str:
        """kube-proxy's name for it in rule comments: ``ns/name:port``."""
        return f"{self.namespace}/{self.name}:{self.port_name}" if self.port_name \
            else f"{self.namespace}/{self.name}"


def read(path) -> tuple:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise BadInput(f"--objects {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise BadInput(f"{path}: larger than {MAX_BYTES >> 20} MiB")
    try:
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from None
    except RecursionError:
        raise BadInput(f"{path}: JSON nested too deeply") from None
    return from_json(doc, str(path))


class _Bad(Exception):
    pass


def _get(obj, key, kind, where, default=None, required=False):
    if not isinstance(obj, dict):
        raise _Bad(f"{where}: must be an object")
    if key not in obj or obj[key] is None:
        if required:
            raise _Bad(f"{where}.{key}: missing")
        return default
    v = obj[key]
    if kind is int and (isinstance(v, bool) or not isinstance(v, int)):
        raise _Bad(f"{where}.{key}: must be an integer, not {json.dumps(v)[:40]}")
    if kind is not int and not isinstance(v, kind):
        raise _Bad(f"{where}.{key}: must be {kind.__name__}, not {json.dumps(v)[:40]}")
    return v


def _port(v, where) -> int:
    if not 1 <= v <= 65535:
        raise _Bad(f"{where}: port {v} is outside 1..65535")
    return v


def _addr(text, where) -> int:
    try:
        return ip(text)
    except (ValueError, AttributeError):
        raise _Bad(f"{where}: {text!r} is not an IPv4 address") from None


def from_json(doc, source: str = "<objects>") -> tuple:
    """The Service ports (ClusterIP with an IPv4 virtual IP), sorted by key."""
    try:
        return _from_json(doc)
    except _Bad as exc:
        raise BadInput(f"{source}: {exc}") from None


def _from_json(doc) -> tuple:
    if isinstance(doc, dict) and isinstance(doc.get("items"), list):
        items = doc["items"]
    elif isinstance(doc, dict) and doc.get("kind") in ("Service", "EndpointSlice"):
        items = [doc]
    else:
        raise _Bad("expected a List with items (kubectl get svc,endpointslices -A -o json)")
    services, slices = [], []
    for k, item in enumerate(items):
        where = f"items[{k}]"
        kind = _get(item, "kind", str, where, required=True)
        if kind == "Service":
            services.append((where, item))
        elif kind == "EndpointSlice":
            slices.append((where, item))
    by_service: dict = {}
    for where, item in slices:
        meta = _get(item, "metadata", dict, where, required=True)
        labels = _get(meta, "labels", dict, where + ".metadata", {})
        owner = labels.get("kubernetes.io/service-name")
        fam = _get(item, "addressType", str, where, "IPv4")
        if not isinstance(owner, str) or fam != "IPv4":
            continue
        ns = _get(meta, "namespace", str, where + ".metadata", "default")
        ports = []
        for j, p in enumerate(_get(item, "ports", list, where, [])):
            pw = f"{where}.ports[{j}]"
            num = _get(p, "port", int, pw)
            ports.append((_get(p, "name", str, pw, ""), _get(p, "protocol", str, pw, "TCP"),
                          _port(num, pw + ".port") if num is not None else None))
        eps = []
        for j, e in enumerate(_get(item, "endpoints", list, where, [])):
            ew = f"{where}.endpoints[{j}]"
            addrs = _get(e, "addresses", list, ew, required=True)
            if not addrs or not isinstance(addrs[0], str):
                raise _Bad(f"{ew}.addresses: must list at least one address")
            cond = _get(e, "conditions", dict, ew, {})
            ready = _get(cond, "ready", bool, ew + ".conditions", True)
            serving = _get(cond, "serving", bool, ew + ".conditions", ready)
            term = _get(cond, "terminating", bool, ew + ".conditions", False)
            ref = _get(e, "targetRef", dict, ew, {})
            kind = _get(ref, "kind", str, ew + ".targetRef", "Pod")
            eps.append((_addr(addrs[0], ew + ".addresses[0]"), ready, serving, term,
                        _get(ref, "name", str, ew + ".targetRef", "") if kind == "Pod" else "",
                        _get(e, "nodeName", str, ew, "")))
        by_service.setdefault((ns, owner), []).append((ports, eps))
    out = []
    for where, item in services:
        meta = _get(item, "metadata", dict, where, required=True)
        name = _get(meta, "name", str, where + ".metadata", required=True)
        ns = _get(meta, "namespace", str, where + ".metadata", "default")
        spec = _get(item, "spec", dict, where, required=True)
        kind = _get(spec, "type", str, where + ".spec", "ClusterIP")
        vip_text = _get(spec, "clusterIP", str, where + ".spec", "")
        if kind == "ExternalName" or vip_text in ("", "None") or ":" in vip_text:
            continue
        vip = _addr(vip_text, where + ".spec.clusterIP")
        local = _get(spec, "externalTrafficPolicy", str, where + ".spec", "Cluster") == "Local"
        affinity = _get(spec, "sessionAffinity", str, where + ".spec", "None") == "ClientIP"
        for j, p in enumerate(_get(spec, "ports", list, where + ".spec", [])):
            pw = f"{where}.spec.ports[{j}]"
            proto = _get(p, "protocol", str, pw, "TCP")
            if proto not in PROTOCOLS:
                raise _Bad(f"{pw}.protocol: {proto!r} is not TCP, UDP or SCTP")
            port = _port(_get(p, "port", int, pw, required=True), pw + ".port")
            pname = _get(p, "name", str, pw, "")
            node_port = _get(p, "nodePort", int, pw, 0)
            if node_port:
                _port(node_port, pw + ".nodePort")
            if kind not in ("NodePort", "LoadBalancer"):
                node_port = 0
            seen, eps = set(), []
            for ports, entries in by_service.get((ns, name), ()):
                target = next((num for pn, pr, num in ports if pn == pname and pr == proto), None)
                if target is None:
                    continue
                for addr, ready, serving, term, pod, node in entries:
                    if addr not in seen:
                        seen.add(addr)
                        eps.append(Endpoint(addr, target, ready, serving, term, pod, node))
            out.append(ServicePort(ns, name, pname, vip, port, proto, node_port, local,
                                   affinity, tuple(eps)))
    keys = [(s.vip, s.port, s.proto) for s in out]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise _Bad(f"two Service ports share {'.'.join(str((dup[0] >> s) & 255) for s in (24, 16, 8, 0))}"
                   f":{dup[1]}/{dup[2]}")
    return tuple(sorted(out, key=lambda s: s.key))


def cover(addresses) -> tuple | None:
    """The smallest CIDR block holding every address (``None`` for none)."""
    addresses = list(addresses)
    if not addresses:
        return None
    lo, hi = min(addresses), max(addresses)
    plen = 32
    while plen and (lo >> (32 - plen)) != (hi >> (32 - plen)):
        plen -= 1
    base = (lo >> (32 - plen)) << (32 - plen) if plen else 0
    return (base, plen)

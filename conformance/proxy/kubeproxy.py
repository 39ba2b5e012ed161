"""Dumps in the layout kube-proxy's iptables mode gives a node, written from
Services and EndpointSlices: the tests' and the benchmark's inputs.

Written from the documented layout, not from kube-proxy's code
(kubernetes.io/docs/reference/networking/virtual-ips, "iptables proxy
mode"; the chain names and comments a real node's ``iptables-save`` shows):
nat PREROUTING and OUTPUT jump to KUBE-SERVICES; KUBE-SERVICES has one rule
per Service port matching its ClusterIP, protocol and port, jumping to that
port's KUBE-SVC-… chain, and last a jump to KUBE-NODEPORTS for packets to a
local address; KUBE-SVC-… marks traffic from outside the cluster CIDR for
masquerade, then picks endpoint i of n with ``-m statistic --mode random
--probability 1/(n-i)`` (the last unconditionally) and jumps to its
KUBE-SEP-…, which marks hairpin traffic (source = the endpoint) and DNATs;
KUBE-NODEPORTS jumps to KUBE-EXT-…, which marks and goes to KUBE-SVC-…;
KUBE-MARK-MASQ sets bit 0x4000 and nat POSTROUTING's KUBE-POSTROUTING
masquerades packets carrying it. A Service port without endpoints gets a
REJECT in the filter table's KUBE-SERVICES (ClusterIP) and
KUBE-EXTERNAL-SERVICES (NodePort). ClientIP affinity: ``-m recent``.

``fault`` seeds one known bug, each meant to be caught by one check
(:data:`FAULTS`).
"""

from __future__ import annotations

import base64
import hashlib
import json
from fractions import Fraction

from kubemc.conformance.proxy.dump import STAT_ONE, addr_show
from kubemc.model.network.addr import show_cidr

MASQ = 0x4000

#: seeded bugs: name -> what it does
FAULTS = {
    "stale_endpoint": "the first Service with endpoints keeps a KUBE-SEP for an endpoint that left",
    "probability_off_by_one": "KUBE-SVC rule i carries 1/(n-i-1): the last endpoint is never chosen",
    "missing_endpoint": "the first Service with two or more endpoints lacks its last one",
    "no_reject": "Services without endpoints get no REJECT rule",
    "masquerade_pods": "KUBE-SVC marks every packet, from pods too (no '! -s CLUSTER-CIDR')",
    "nodeport_unmarked": "KUBE-EXT chains do not mark NodePort traffic for masquerade",
    "postrouting_all": "KUBE-POSTROUTING masquerades without looking at the mark",
}


def chain_id(prefix: str, *parts) -> str:
    """``KUBE-SVC-`` and 16 base32 characters of a hash: chain names are at
    most 28 characters (iptables' limit) and must be stable per port."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return prefix + base64.b32encode(digest).decode()[:16]


def stat(n_left: int) -> str:
    """``--probability`` for 1/n_left as iptables-save prints it: the
    kernel's integer out of 2^31, with 11 decimals."""
    q = round(Fraction(1, n_left) * STAT_ONE)
    return f"{q / STAT_ONE:.11f}"


def _ready(port) -> tuple:
    ready = tuple(e for e in port.endpoints if e.ready)
    return ready or tuple(e for e in port.endpoints if e.serving and e.terminating)


def write_dump(ports, cluster_cidr, fault: str | None = None, stale_ip: int | None = None) -> str:
    """The ``iptables-save`` text for ``ports`` (:class:`.objects.ServicePort`)."""
    if fault is not None and fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}")
    cidr = show_cidr(cluster_cidr)
    fchains, frules = ["KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-SERVICES"], []
    nchains = ["KUBE-MARK-MASQ", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-SERVICES"]
    svc_rules, np_rules, chain_rules = [], [], []
    seeded = {"stale_endpoint": False, "missing_endpoint": False}
    for sp in ports:
        proto = sp.proto.lower()
        key = sp.key
        eps = list(_ready(sp))
        if fault == "stale_endpoint" and eps and not seeded["stale_endpoint"]:
            from kubemc.conformance.proxy.objects import Endpoint
            eps.append(Endpoint(stale_ip if stale_ip is not None else eps[-1].ip + 100,
                                eps[-1].port, True, True, False))
            seeded["stale_endpoint"] = True
        if fault == "missing_endpoint" and len(eps) >= 2 and not seeded["missing_endpoint"]:
            eps = eps[:-1]
            seeded["missing_endpoint"] = True
        vip = addr_show(sp.vip)
        if not eps:
            if fault != "no_reject":
                frules.append(f'-A KUBE-SERVICES -d {vip}/32 -p {proto} -m comment --comment '
                              f'"{key} has no endpoints" -m {proto} --dport {sp.port} '
                              f'-j REJECT --reject-with icmp-port-unreachable')
                if sp.node_port:
                    frules.append(f'-A KUBE-EXTERNAL-SERVICES -p {proto} -m comment --comment '
                                  f'"{key} has no endpoints" -m addrtype --dst-type LOCAL '
                                  f'-m {proto} --dport {sp.node_port} '
                                  f'-j REJECT --reject-with icmp-port-unreachable')
            continue
        svc = chain_id("KUBE-SVC-", key, sp.proto)
        nchains.append(svc)
        svc_rules.append(f'-A KUBE-SERVICES -d {vip}/32 -p {proto} -m comment --comment '
                         f'"{key} cluster IP" -m {proto} --dport {sp.port} -j {svc}')
        src = "" if fault == "masquerade_pods" else f"! -s {cidr} "
        chain_rules.append(f'-A {svc} {src}-d {vip}/32 -p {proto} -m comment --comment '
                           f'"{key} cluster IP" -m {proto} --dport {sp.port} -j KUBE-MARK-MASQ')
        if sp.node_port:
            ext = chain_id("KUBE-EXT-", key, sp.proto)
            nchains.append(ext)
            np_rules.append(f'-A KUBE-NODEPORTS -p {proto} -m comment --comment "{key}" '
                            f'-m {proto} --dport {sp.node_port} -j {ext}')
            if fault != "nodeport_unmarked":
                chain_rules.append(f'-A {ext} -m comment --comment "masquerade traffic for '
                                   f'{key} external destinations" -j KUBE-MARK-MASQ')
            chain_rules.append(f"-A {ext} -j {svc}")
        seps = [chain_id("KUBE-SEP-", key, sp.proto, e.ip, e.port) for e in eps]
        if sp.affinity:
            for e, sep in zip(eps, seps):
                chain_rules.append(
                    f'-A {svc} -m comment --comment "{key} -> {addr_show(e.ip)}:{e.port}" '
                    f'-m recent --rcheck --seconds 10800 --reap --name {sep} '
                    f'--mask 255.255.255.255 --rsource -j {sep}')
        n = len(eps)
        for i, (e, sep) in enumerate(zip(eps, seps)):
            dest = f"{addr_show(e.ip)}:{e.port}"
            left = n - i - 1 if fault == "probability_off_by_one" else n - i
            prob = f"-m statistic --mode random --probability {stat(left)} " \
                if i < n - 1 and left >= 1 else ""
            chain_rules.append(f'-A {svc} -m comment --comment "{key} -> {dest}" {prob}-j {sep}')
            nchains.append(sep)
            chain_rules.append(f'-A {sep} -s {addr_show(e.ip)}/32 -m comment --comment "{key}" '
                               f'-j KUBE-MARK-MASQ')
            recent = f"-m recent --set --name {sep} --mask 255.255.255.255 --rsource " \
                if sp.affinity else ""
            chain_rules.append(f'-A {sep} -p {proto} -m comment --comment "{key}" {recent}'
                               f'-m {proto} -j DNAT --to-destination {dest}')
    out = ["# Generated by kubemc's kube-proxy layout writer (iptables-save format)", "*filter",
           ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    out += [f":{c} - [0:0]" for c in fchains]
    out += [
        '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible '
        'service portals" -j KUBE-EXTERNAL-SERVICES',
        '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
        '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" '
        '-j KUBE-SERVICES',
        '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible '
        'service portals" -j KUBE-EXTERNAL-SERVICES',
        '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" '
        '-j KUBE-SERVICES',
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" '
        f'-m mark --mark {MASQ:#x}/{MASQ:#x} -j ACCEPT',
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" '
        "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    ]
    out += frules + ["COMMIT", "*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]",
                     ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]"]
    out += [f":{c} - [0:0]" for c in sorted(set(nchains))]
    out += [
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
        f"-A KUBE-MARK-MASQ -j MARK --set-xmark {MASQ:#x}/{MASQ:#x}",
    ]
    if fault != "postrouting_all":
        out.append(f"-A KUBE-POSTROUTING -m mark ! --mark {MASQ:#x}/{MASQ:#x} -j RETURN")
    out += [f"-A KUBE-POSTROUTING -j MARK --set-xmark {MASQ:#x}/0x0",
            '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
            "-j MASQUERADE --random-fully"]
    svc_rules.append('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: '
                     'this must be the last rule in this chain" -m addrtype --dst-type LOCAL '
                     '-j KUBE-NODEPORTS')
    # iptables-save prints a chain's rules together, chains in name order
    rest = np_rules + svc_rules + chain_rules
    out += sorted(rest, key=lambda r: r.split()[1])
    out += ["COMMIT", ""]
    return "\n".join(out)


def objects_doc(services) -> dict:
    """``kubectl get svc,endpointslices -A -o json`` for ``services``:
    dicts with ``name``, ``vip``, ``ports`` [(name, port, proto, target,
    node_port)], ``endpoints`` [(ip, ready, serving, terminating)], optional
    ``namespace``, ``affinity``, ``host`` (endpoints that are no Pod: the
    apiserver's, without ``targetRef``)."""
    items = []
    for s in services:
        ns = s.get("namespace", "default")
        node_port = any(p[4] for p in s["ports"])
        spec = {"type": "NodePort" if node_port else "ClusterIP", "clusterIP": s["vip"],
                "clusterIPs": [s["vip"]], "sessionAffinity": "ClientIP" if s.get("affinity") else "None",
                "ports": [{"name": n, "port": p, "protocol": pr, "targetPort": t,
                           **({"nodePort": np_} if np_ else {})}
                          for n, p, pr, t, np_ in s["ports"]]}
        if node_port:
            spec["externalTrafficPolicy"] = "Cluster"
        items.append({"apiVersion": "v1", "kind": "Service",
                      "metadata": {"name": s["name"], "namespace": ns}, "spec": spec})
        items.append({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": f"{s['name']}-abcde", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": s["name"]}},
            "ports": [{"name": n, "port": t, "protocol": pr} for n, _, pr, t, _ in s["ports"]],
            "endpoints": [{"addresses": [a], "conditions": {"ready": r, "serving": sv,
                                                            "terminating": tm},
                           **({} if s.get("host") else
                              {"targetRef": {"kind": "Pod", "name": f"{s['name']}-{k}",
                                             "namespace": ns}, "nodeName": "node-0"})}
                          for k, (a, r, sv, tm) in enumerate(s["endpoints"])]})
    return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}


def example_services(count: int = 4, endpoints: int = 3, base_vip=(10, 96), pod_net=(10, 244)):
    """``count`` Services: mostly ClusterIP over ``endpoints`` pods with one
    not ready; every third a NodePort; the last one without endpoints; a
    UDP one. Addresses: VIPs in 10.96/16, pods in 10.244/16."""
    out = []
    for k in range(count):
        hi, lo = divmod(k + 10, 250)
        vip = f"{base_vip[0]}.{base_vip[1]}.{hi}.{lo}"
        empty = k == count - 1 and count > 1
        eps = [] if empty else [
            (f"{pod_net[0]}.{pod_net[1]}.{(k * endpoints + j) // 250}.{(k * endpoints + j) % 250 + 2}",
             True, True, False) for j in range(endpoints)]
        if eps and endpoints > 1:
            # a pod being deleted: serving but terminating, so not used while others are ready
            eps.append((_next(eps[-1][0], 200), False, True, True))
        proto = "UDP" if k % 4 == 1 else "TCP"
        node_port = 30000 + k if k % 3 == 0 else 0
        out.append({"name": f"svc-{k}", "vip": vip, "endpoints": eps,
                    "ports": [("http", 80, proto, 8080, node_port)]})
    return out


def _next(address: str, plus: int) -> str:
    a, b, c, d = (int(x) for x in address.split("."))
    v = ((a << 24) | (b << 16) | (c << 8) | d) + plus
    return addr_show(v)


def write_pair(directory, services, cluster_cidr, fault=None, stale_ip=None):
    """Write ``objects.json`` and ``iptables-save.txt`` (or a fault's dump) into
    ``directory``; return their paths."""
    from pathlib import Path

    from kubemc.conformance.proxy.objects import from_json

    directory = Path(directory)
    doc = objects_doc(services)
    obj = directory / "objects.json"
    if not obj.exists():
        obj.write_text(json.dumps(doc, indent=1))
    ports = from_json(doc)
    dump = directory / (f"{fault}.iptables-save" if fault else "iptables-save.txt")
    dump.write_text(write_dump(ports, cluster_cidr, fault, stale_ip))
    return obj, dump

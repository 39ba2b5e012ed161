"""Address checks of a CNI run, replayed over the history in order.

``address-assigned``   every successful ADD gives the pod an address: its
                       result's ``ips`` lists at least one. "Every Pod in a
                       cluster gets its own unique cluster-wide IP address"
                       (kubernetes.io/docs/concepts/services-networking/,
                       "The Kubernetes network model"; the CRI runtime takes
                       the pod's IP from the ADD result), and the CNI spec
                       has the IPAM plugin "determine the interface
                       IP/subnet, Gateway and Routes and return this
                       information to the 'main' plugin to apply" (SPEC.md
                       "IP Allocation"), whose result's ``ips`` are the IPs
                       the attachment assigned. With ``address-in-podcidr``:
                       every live pod has an address, and each lies in its
                       node's podCIDR. (Found missing by an independent
                       audit: a plugin answering ADD with ``"ips": []``
                       passed, its pods left out of the probes.)
``address-unique``     no ADD hands out an address another live container
                       holds: "every pod gets its own unique cluster-wide IP
                       address" (kubernetes.io/docs/concepts/services-
                       networking/, "The Kubernetes network model"); the
                       model's ``pod_ip_unique``
``address-in-podcidr`` every address an ADD returns lies in the podCIDR of
                       the node it was made on (the node IPAM controller's
                       block, which the node's configuration names); the
                       model's ``pod_ip_in_node_podcidr``
``address-released``   at every quiet point (after each phase) host-local's
                       store on each node holds exactly the addresses of the
                       containers added and not yet deleted there: DEL
                       released what it should ("A delete operation should
                       release all resources held by the supplied
                       containerid", SPEC.md Section 2 'DEL'), and nothing
                       live was lost; the model's ``no_address_leak_after_del``
``ipam-matches-model`` host-local only: at the same points its store holds the
                       addresses the model's host-local allocator
                       (``model.cni.hostlocal``: round-robin after the last
                       reserved, skipping held ones) holds after the same
                       steps — as sets, since concurrent ADDs may pair
                       addresses and containers either way
"""

from __future__ import annotations

import ipaddress

from kubemc.conformance.validate.violation import Violation
from kubemc.conformance.validate.cni import CniHistory, succeeded

K8S_NET = "kubernetes.io/docs/concepts/services-networking/ ('The Kubernetes network model')"


def addresses(result) -> list[str]:
    """The bare addresses of a result's ``ips`` (those that parse)."""
    out = []
    for it in (result or {}).get("ips", []) if isinstance(result, dict) else []:
        try:
            out.append(str(ipaddress.ip_interface(it.get("address")).ip))
        except (ValueError, TypeError, AttributeError):
            continue
    return out


def replay(h: CniHistory):
    """Yield ``(op, live)`` in history order, ``live`` = container -> (node,
    addresses, the ADD op) before ``op`` is applied; then apply it."""
    live: dict = {}
    for op in h.ops:
        yield op, live
        if op.f == "ADD" and succeeded(op):
            live[op.key] = (op.input["node"], addresses(op.output.get("result")), op)
        elif op.f == "DEL" and succeeded(op):
            live.pop(op.key, None)


def check_unique(h: CniHistory):
    vs, n = [], 0
    for op, live in replay(h):
        if op.f != "ADD" or not succeeded(op):
            continue
        for a in addresses(op.output.get("result")):
            n += 1
            holder = next((c for c, (_, ips, _) in live.items() if a in ips and c != op.key), None)
            if holder is not None:
                vs.append(Violation("address-unique", f"ADD of {op.key} returned {a}, which {holder} "
                                    "still holds (added, not deleted)", (live[holder][2], op),
                                    (live[holder][2], op)))
    return vs, n, ""


def check_assigned(h: CniHistory):
    vs, n = [], 0
    for op in h.plugin_ops("ADD"):
        if not succeeded(op):
            continue
        n += 1
        result = op.output.get("result") if isinstance(op.output, dict) else None
        if not addresses(result):
            ips = result.get("ips") if isinstance(result, dict) else None
            vs.append(Violation("address-assigned", f"ADD of {op.key} (pod-{op.input.get('pod')}, "
                                f"node {op.input['node']}) succeeded but gave the pod no address "
                                f"(result ips: {ips!r}): a live pod without an IP",
                                (op,), h.of_container(op.key)))
    return vs, n, ""


def check_in_podcidr(h: CniHistory):
    vs, n = [], 0
    for op in h.plugin_ops("ADD"):
        if not succeeded(op):
            continue
        cidr = ipaddress.ip_network(h.node_cidr(op.input["node"]))
        for a in addresses(op.output.get("result")):
            n += 1
            if ipaddress.ip_address(a) not in cidr:
                vs.append(Violation("address-in-podcidr", f"ADD of {op.key} on node "
                                    f"{op.input['node']} returned {a}, outside the node's podCIDR "
                                    f"{cidr}", (op,), h.of_container(op.key)))
    return vs, n, ""


def check_released(h: CniHistory):
    vs, n = [], 0
    if not h.meta.get("host_local"):
        return [], 0, "not judged: the configuration's IPAM is not host-local"
    for op, live in replay(h):
        if op.f != "store" or not isinstance(op.output, dict) or "reservations" not in op.output:
            continue
        node = op.input["node"]
        held = op.output["reservations"]
        expect = {a: c for c, (nd, ips, _) in live.items() if nd == node for a in ips
                  if ipaddress.ip_address(a) in ipaddress.ip_network(h.node_cidr(node))}
        n += 1
        for a, c in sorted(held.items()):
            if expect.get(a) != c:
                gone = [d for d in h.plugin_ops("DEL") if d.key == c and d.index < op.index]
                why = "after its DEL" if gone else "though no live container holds it"
                vs.append(Violation("address-released", f"host-local's store on node {node} still "
                                    f"reserves {a} for {c} {why} ({op.input.get('label')})",
                                    (op, *gone[:1]), (*h.of_container(c), op)))
        for a, c in sorted(expect.items()):
            if held.get(a) != c:
                vs.append(Violation("address-released", f"host-local's store on node {node} lost "
                                    f"the reservation of {a} by live container {c} "
                                    f"({op.input.get('label')})", (op,), (*h.of_container(c), op)))
    return vs, n, ""


def check_matches_model(h: CniHistory):
    """host-local's store holds the addresses the model's host-local holds."""
    if not h.meta.get("host_local"):
        return [], 0, "not judged: the configuration's IPAM is not host-local"
    vs, n = [], 0
    for op in h.ops:
        if op.f != "store" or "model" not in (op.input or {}) or \
                "reservations" not in (op.output or {}):
            continue
        n += 1
        real, model = set(op.output["reservations"]), set(op.input["model"])
        if real != model:
            parts = []
            if real - model:
                parts.append(f"host-local holds {', '.join(sorted(real - model))} which the model does not")
            if model - real:
                parts.append(f"the model holds {', '.join(sorted(model - real))} which host-local does not")
            vs.append(Violation("ipam-matches-model", f"node {op.input['node']} "
                                f"({op.input.get('label')}): " + "; ".join(parts), (op,), (op,)))
    return vs, n, ""


K8S_POD_IP = ("kubernetes.io/docs/concepts/services-networking/ ('The Kubernetes network model': "
              "\"Every Pod in a cluster gets its own unique cluster-wide IP address\"); CNI SPEC.md "
              "'IP Allocation' (the IPAM plugin returns the interface's IP configuration to the main "
              "plugin) and the Success result's ips")

CHECKS = [
    ("address-assigned", "every successful ADD gives the pod an address: its result's ips lists "
     "at least one", K8S_POD_IP, check_assigned),
    ("address-unique", "no ADD returns an address that another added and not yet deleted "
     "container holds", K8S_NET, check_unique),
    ("address-in-podcidr", "every address an ADD returns lies in its node's podCIDR",
     "kube-controller-manager node IPAM (--allocate-node-cidrs): a node's pods take addresses "
     "from its podCIDR; the CNI model's pod_ip_in_node_podcidr", check_in_podcidr),
    ("address-released", "after every phase, host-local's store on each node holds exactly the "
     "addresses of live containers: DEL released the rest",
     "CNI SPEC.md Section 2 'DEL': a delete should release all resources held by the container",
     check_released),
    ("ipam-matches-model", "after every phase, the addresses host-local's store holds on each "
     "node are the ones the CNI model's host-local holds after the same steps",
     "cni.dev/plugins/current/ipam/host-local ('loosely round-robin within each range set'), as "
     "model/cni/hostlocal.py states it", check_matches_model),
]

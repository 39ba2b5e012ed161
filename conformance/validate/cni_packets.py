"""Packet checks of a CNI run: real TCP and UDP probes between namespaces.

``reachability``  every probe — pod to every other pod, same node and other
                  nodes, and every node to every pod — reached the pod it
                  was sent to: "pods can communicate with all other pods on
                  any other node without NAT; agents on a node … can
                  communicate with all pods on that node" (kubernetes.io/docs/
                  concepts/services-networking/, "The Kubernetes network
                  model"; seeds/000 and seeds/004)
``no-nat``        the receiver saw the sender's own address as the source
                  (the pod's address from its ADD result; the node's
                  address, which the prober binds): the same sentence's
                  "without NAT"; the model's ``pod_to_pod_without_nat`` and
                  ``node_to_pod_without_nat``
``model-agrees``  what each real packet did — delivered to whom, with which
                  source, or lost — is what the CNI model's forwarding
                  function (``model.network.forward.forward``) answers for
                  the same packet in the model's dataplane of the same state
                  (podCIDRs and routes as the model assigned them, pod
                  addresses as the plugin returned them, the bridge's
                  ``ipMasq`` as configured)

A pod whose ADD gave it no address (``address-assigned``) is still probed:
probes to it are recorded as lost (``reachability``), probes from it are sent
from its namespace. ``no-nat`` and ``model-agrees`` cannot judge a probe one
of whose ends has no address (no source to compare, no packet to forward in
the model) and say how many they left out.
"""

from __future__ import annotations

from kubemc.conformance.validate.violation import Violation
from kubemc.conformance.validate.cni import CniHistory
from kubemc.model.network.addr import ip, show
from kubemc.model.network.forward import DELIVERED, Packet, forward

K8S_NET = ("kubernetes.io/docs/concepts/services-networking/ ('The Kubernetes network model'); "
           "seeds/004 'Pod-to-Pod Communication'")


def _probes(h: CniHistory):
    return [op for op in h.ops if op.f == "probe" and isinstance(op.output, dict)]


def _what(op) -> str:
    p = op.input
    return (f"{p['proto']} {p['sender']} ({p['src'] or 'no address'}, node {p['src_node']}) -> "
            f"{p['receiver']} ({p['dst'] or 'no address'})")


def check_reachability(h: CniHistory):
    vs = []
    probes = _probes(h)
    for op in probes:
        got = op.output.get("delivered_to")
        if got != op.input["receiver"]:
            why = op.output.get("error") or "no answer within the timeout"
            vs.append(Violation("reachability", f"{_what(op)}: not delivered ({why})"
                                if got is None else f"{_what(op)}: delivered to {got} instead",
                                (op,), (op,)))
    return vs, len(probes), ""


def _unaddressed(op) -> bool:
    return op.input.get("src") is None or op.input.get("dst") is None


def _left_out(k: int) -> str:
    return (f"{k} probes not judged: an end has no address (see address-assigned, reachability)"
            if k else "")


def check_no_nat(h: CniHistory):
    vs, n, k = [], 0, 0
    for op in _probes(h):
        if op.output.get("delivered_to") is None:
            continue
        if _unaddressed(op):
            k += 1
            continue
        n += 1
        seen = op.output.get("seen_src")
        if seen != op.input["src"]:
            vs.append(Violation("no-nat", f"{_what(op)}: the receiver saw source {seen}, not the "
                                f"sender's address {op.input['src']} (NAT on the way)", (op,), (op,)))
    return vs, n, _left_out(k)


def expected(h: CniHistory, op):
    """(receiver pod or None, source it sees) by the model's forwarding function."""
    p = op.input
    try:
        pkt = Packet(ip(p["src"]), ip(p["dst"]), op.input.get("port", 0), p["proto"], p["src_node"])
    except ValueError:
        return None, None
    outcomes = forward(h.dataplane, pkt)
    delivered = [o for prob, o in outcomes if o.kind == DELIVERED and prob == 1]
    if delivered:
        return delivered[0].pod, show(delivered[0].src)
    return None, None


def check_model_agrees(h: CniHistory):
    if h.dataplane is None:
        return [], 0, "not judged: no model dataplane (the plan stopped before the probes)"
    vs, n, k = [], 0, 0
    for op in _probes(h):
        if _unaddressed(op):
            k += 1
            continue
        n += 1
        want_pod, want_src = expected(h, op)
        got_pod, got_src = op.output.get("delivered_to"), op.output.get("seen_src")
        if (want_pod, want_src if want_pod else None) != (got_pod, got_src if got_pod else None):
            model = f"delivered to {want_pod} with source {want_src}" if want_pod else "dropped"
            real = f"delivered to {got_pod} with source {got_src}" if got_pod else "lost"
            vs.append(Violation("model-agrees", f"{_what(op)}: the model says {model}; the real "
                                f"packet was {real}", (op,), (op,),
                                {"model": [want_pod, want_src], "real": [got_pod, got_src]}))
    return vs, n, _left_out(k)


CHECKS = [
    ("reachability", "every pod reaches every other pod on its own and other nodes, and every "
     "node reaches every pod, over TCP and UDP", K8S_NET, check_reachability),
    ("no-nat", "the receiver of every delivered probe sees the sender's own address as source",
     K8S_NET, check_no_nat),
    ("model-agrees", "every real packet's outcome (receiver and source seen, or loss) is what "
     "the CNI model's forwarding function predicts for the same state",
     "kubemc's CNI model (model/network/forward.py), the oracle the model checker proves "
     "no-NAT reachability on", check_model_agrees),
]

"""``kubemc conform proxy``: kube-proxy's iptables rules, as ``iptables-save``
prints them, judged against the Services and EndpointSlices they were built
from — symbolically with Z3 (:mod:`conformance.proxy.checks`), and with real
packets inside network namespaces the run creates (:mod:`conformance.proxy.live`).

One job per module: :mod:`.dump` reads the dump, :mod:`.objects` the kubectl
JSON, :mod:`.interp` is the concrete netfilter semantics, :mod:`.symbolic`
the same semantics as Z3 terms, :mod:`.checks` the properties,
:mod:`.kubeproxy` writes dumps in kube-proxy's layout (tests, bench).
"""

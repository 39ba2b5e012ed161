"""The checks of ``kubemc conform proxy``: kube-proxy's iptables rules, as
``iptables-save`` prints them, judged against the Services and EndpointSlices
they were built from — symbolically with Z3 (:mod:`conformance.proxy.checks`).
Running them against a real netfilter (``--live``: namespaces, real packets)
is the adapter's job, :mod:`conformance.adapters.proxy.live`, which compares
what it sees with :mod:`.interp`.

Why the checks are a package of their own and not under ``validate/``: they
read a dump and objects, not a history, and half of them are the netfilter
semantics (concrete and symbolic) that the proofs need.

One job per module: :mod:`.dump` reads the dump, :mod:`.objects` the kubectl
JSON, :mod:`.interp` is the concrete netfilter semantics, :mod:`.symbolic`
the same semantics as Z3 terms, :mod:`.checks` the properties,
:mod:`.kubeproxy` writes dumps in kube-proxy's layout (tests, bench),
:mod:`.stats` the chi-square test of the live run's landing counts.
"""

"""The systems under test, one package per system: how each is started (or
reached), driven with the model's operations and torn down.

``etcd/`` a real etcd cluster, ``maelstrom/`` any program speaking the
Maelstrom protocol (with example node programs), ``cri/`` containerd over
CRI, ``cni/`` CNI plugins in network namespaces, ``proxy/`` kube-proxy's
iptables rules applied in a namespace and probed with real packets. Each has
a ``cli`` module registered as a ``kubemc conform`` target in
``pyproject.toml``. What the adapters share to run at all (arguments,
signals, process trees, locks) is :mod:`conformance.runner`; workloads are
:mod:`conformance.traffic`, faults :mod:`conformance.failpoint`, checks
:mod:`conformance.validate`, reports :mod:`conformance.report`.
"""

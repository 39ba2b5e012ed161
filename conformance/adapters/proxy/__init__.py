"""The kube-proxy adapter: a node's ``iptables-save`` dump, judged by
:mod:`conformance.proxy`'s checks, and with ``--live`` applied inside a network
namespace and probed with real packets."""

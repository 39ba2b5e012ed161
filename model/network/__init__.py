"""The cluster network as data: addresses and CIDRs, the dataplane a model
state projects to (nodes, bridges, routes, pods, Services and each node's
kube-proxy rules), and :func:`model.network.forward.forward`, the one
definition of where a packet goes that the executable properties and the Z3
encoding are both tested against."""

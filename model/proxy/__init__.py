"""kube-proxy on every node: Services, EndpointSlices with their conditions,
and each node's iptables rules, synced from the API with a lag
(``model.proxy.machine.Proxy``; the rule compiler is ``model.proxy.rules``)."""

"""CNI on every node: the node IPAM controller, the host-local IPAM plugin,
pod sandboxes (the pause container's network namespace) and the bridge
plugin, as one state machine (``model.cni.machine.Cni``)."""

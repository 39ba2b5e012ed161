"""The kubelet: a pod worker driving the container runtime (``model.cri``)
to a pod's spec, with probes, back-off, graceful termination, status
written back, Lease heartbeats and restarts (``model.kubelet.machine``)."""

"""Properties of the controllers of kube-controller-manager and
cloud-controller-manager: one module per controller, each stating the
controller's desired state from the Kubernetes documentation and the seeds,
over the objects the *apiserver* holds (``ControllerLoop.objects``) — never
over the controller's cache or its own bookkeeping, so that a controller bug
cannot bend the yardstick.
"""

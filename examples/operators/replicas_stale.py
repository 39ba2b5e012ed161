"""The same ConfigMap-driven replica operator, with a stale-read bug.

It counts the pods in its informer cache and creates the missing ones with
``generateName`` (the server picks each name). That is the natural first
version, and it is wrong: the cache lags the controller's own writes, so a
reconcile that runs after its first pod was created but before the cache has
seen the second counts one pod, and creates another. With generated names
the apiserver has nothing to refuse: the duplicate is made. (Real
controllers that create with generated names keep *expectations* of the
creates they have not yet observed: kubernetes/kubernetes
pkg/controller/controller_utils.go, ControllerExpectations.)

kubemc finds it (docs/check-controller.md)::

    kubemc check-controller examples/operators/replicas_stale.py:reconcile
"""

from kubemc.model.controllers.requests import Create, Delete, Update

#: What ``kubemc check-controller`` checks by default (``--resource``,
#: ``--owns``, ``--invariant`` and ``--goal`` on the command line say the same).
RESOURCE, OWNS = "ConfigMap", "Pod"
INVARIANTS = ["never_more_pods_than_asked"]
GOALS = ["pods_match_the_config_map"]

DESIRED = [
    {"metadata": {"name": "web"}, "data": {"replicas": "2", "image": "nginx:1.25"}},
    {"metadata": {"name": "web"}, "data": {"replicas": "1", "image": "nginx:1.26"}},
]


def reconcile(config_map, pods):
    """Create what is missing by count, delete the surplus, roll the image."""
    prefix = config_map["metadata"]["name"]
    want = int(config_map["data"]["replicas"])
    image = config_map["data"]["image"]
    requests = []
    for pod in pods[:want]:
        if pod["spec"]["image"] != image:
            pod["spec"]["image"] = image
            requests.append(Update(pod))
    for _ in range(want - len(pods)):  # BUG: counts a cache that lags its own creates
        requests.append(Create({"metadata": {"generateName": f"{prefix}-"},
                                "spec": {"image": image}}))
    for pod in pods[want:]:
        requests.append(Delete(pod["metadata"]["name"]))
    return requests


MOST = max(int(version["data"]["replicas"]) for version in DESIRED)


def never_more_pods_than_asked(config_map, pods):
    """Never more pods than the most replicas the ConfigMap is ever set to."""
    return len(pods) <= MOST


def pods_match_the_config_map(config_map, pods):
    """As many pods as the ConfigMap asks for, each running its image."""
    return (len(pods) == int(config_map["data"]["replicas"])
            and all(pod["spec"]["image"] == config_map["data"]["image"] for pod in pods))

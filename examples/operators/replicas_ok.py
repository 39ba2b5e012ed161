"""A ConfigMap-driven replica operator, written to survive a stale cache.

The ConfigMap ``web`` says how many pods to run and which image they run::

    data: {"replicas": "2", "image": "nginx:1.25"}

and the operator keeps the pods ``web-0`` .. ``web-{n-1}`` running that image.

Why it is correct although it reads a cache that lags its own writes:

* pod names are deterministic, so a create sent from a view that has not yet
  seen the pod it created a moment ago is refused by the apiserver (409
  AlreadyExists) instead of making a second pod;
* an image update sends back the resourceVersion it read, so an update made
  from a stale view is refused (409 Conflict) and redone on a fresher one;
* a delete of a pod that is already gone is a 404.

Each refusal ends the reconcile and requeues the ConfigMap, and the next
reconcile sees more. Check it (docs/check-controller.md)::

    kubemc check-controller examples/operators/replicas_ok.py:reconcile
"""

from kubemc.model.controllers.requests import Create, Delete, Update

#: The ConfigMap as the user creates it, then the one edit they apply:
#: scale down to one pod and roll a new image.
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
    """The requests that make the pods match the ConfigMap, as seen now."""
    prefix = config_map["metadata"]["name"]
    want = int(config_map["data"]["replicas"])
    image = config_map["data"]["image"]
    have = {pod["metadata"]["name"]: pod for pod in pods}
    wanted = [f"{prefix}-{i}" for i in range(want)]
    requests = []
    for name in wanted:
        pod = have.get(name)
        if pod is None:
            requests.append(Create({"metadata": {"name": name}, "spec": {"image": image}}))
        elif pod["spec"]["image"] != image:
            pod["spec"]["image"] = image
            requests.append(Update(pod))  # carries the resourceVersion it read
    for name in sorted(set(have) - set(wanted)):
        requests.append(Delete(name))
    return requests


MOST = max(int(version["data"]["replicas"]) for version in DESIRED)


def never_more_pods_than_asked(config_map, pods):
    """Never more pods than the most replicas the ConfigMap is ever set to
    (between a scale-down and its deletes, more than the current number is
    expected; more than was ever asked for is a duplicate)."""
    return len(pods) <= MOST


def pods_match_the_config_map(config_map, pods):
    """As many pods as the ConfigMap asks for, each running its image."""
    return (len(pods) == int(config_map["data"]["replicas"])
            and all(pod["spec"]["image"] == config_map["data"]["image"] for pod in pods))

"""The nodes and pods the scheduler reads, reduced to what its plugins use.

Why a representation of its own rather than the apiserver model's objects:
the plugins and the later audit/oracle work (issue 11 items 4 and 5) need
the scheduling-relevant part of a Pod and a Node and nothing else, as
immutable values that hash cheaply. The model's *dynamic* pod state (bound
node, terminating, nominated node) lives in the machine's state; the specs
here never change during a run, so a state names a pod by its index.

Units: cpu in millicores, memory in bytes, both ints (a request of ``1500m``
is 1500). A label, a nodeSelector entry is a ``(key, value)`` pair.
"""

from __future__ import annotations

from typing import NamedTuple

#: the default scheduler's profile name; ``spec.schedulerName`` empty means it
DEFAULT_SCHEDULER = "default-scheduler"
HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
NO_SCHEDULE, PREFER_NO_SCHEDULE, NO_EXECUTE = "NoSchedule", "PreferNoSchedule", "NoExecute"
#: the taint the NodeUnschedulable plugin treats a cordoned node as having
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"


class Resources(NamedTuple):
    cpu: int = 0
    memory: int = 0

    def __add__(self, other):  # type: ignore[override]
        return Resources(self.cpu + other.cpu, self.memory + other.memory)

    def max(self, other) -> "Resources":
        """Per resource, the larger: the effective-request rules take maxima
        resource by resource, not of whole containers."""
        return Resources(max(self.cpu, other.cpu), max(self.memory, other.memory))


class InitContainer(NamedTuple):
    requests: Resources
    #: ``restartPolicy: Always`` — a sidecar (KEP-753): it keeps running
    #: while the init containers after it and the app containers run
    sidecar: bool = False


class Taint(NamedTuple):
    key: str
    value: str = ""
    effect: str = NO_SCHEDULE


class Toleration(NamedTuple):
    key: str = ""          # empty with operator Exists: tolerates every taint
    operator: str = "Equal"  # "Equal" or "Exists"
    value: str = ""
    effect: str = ""       # empty: every effect


class Requirement(NamedTuple):
    """One ``matchExpressions`` entry of required node affinity."""
    key: str
    operator: str          # In, NotIn, Exists, DoesNotExist
    values: tuple = ()


class SpreadConstraint(NamedTuple):
    max_skew: int
    topology_key: str
    selector: tuple        # matchLabels as (key, value) pairs
    when_unsatisfiable: str = "DoNotSchedule"


class AntiAffinityTerm(NamedTuple):
    """requiredDuringSchedulingIgnoredDuringExecution pod anti-affinity."""
    topology_key: str
    selector: tuple        # matchLabels as (key, value) pairs


class Pod(NamedTuple):
    name: str
    containers: tuple = ()           # Resources of each app container
    init_containers: tuple = ()      # InitContainer, in declaration order
    overhead: Resources = Resources()
    scheduler_name: str = ""         # "" = the default scheduler
    priority: int = 0
    labels: tuple = ()
    node_selector: tuple = ()
    #: required node affinity: a node must match one of the terms (OR), each
    #: term a tuple of Requirements (AND); () = no affinity
    affinity: tuple = ()
    tolerations: tuple = ()
    host_ports: tuple = ()
    spread: tuple = ()               # SpreadConstraint
    anti_affinity: tuple = ()        # AntiAffinityTerm

    @property
    def scheduler(self) -> str:
        """The scheduler responsible for the pod (seeds: 'if no such data is
        included, the default scheduler is selected instead')."""
        return self.scheduler_name or DEFAULT_SCHEDULER


class Node(NamedTuple):
    name: str
    allocatable: Resources
    max_pods: int = 110
    labels: tuple = ()
    taints: tuple = ()
    unschedulable: bool = False

    def label(self, key: str):
        return dict(self.labels).get(key)

    @property
    def all_labels(self) -> dict:
        """Labels plus the hostname label every node carries."""
        return {HOSTNAME: self.name, **dict(self.labels)}


def matches(selector: tuple, labels: tuple) -> bool:
    """matchLabels semantics: every (key, value) of the selector is a label."""
    have = dict(labels)
    return all(have.get(k) == v for k, v in selector)

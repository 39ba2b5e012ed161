"""The ``conform cni`` workload, taken from the CNI model (``model.cni.machine.Cni``).

Why from the model: the run is one path through the same state machine the
model checker explores — the node IPAM controller's ``AllocateCidr`` gives
each simulated node its podCIDR, ``RunPodSandbox`` / ``CniAdd`` /
``StopPodSandbox`` / ``SandboxCrash`` / ``CleanupSandbox`` are the steps a
kubelet and runtime take — so every real operation has a model step, the
model state after it is what the trace shows, and the model's dataplane at
the end is the oracle the packets are compared with (pod ``p`` on node
``p % nodes``, as in the model).

The plan, in order (:func:`plan`):

1. ``AllocateCidr`` for every node; routes between nodes as the model's
   ``flat_routes`` programs them;
2. the pods of node 0 are added *concurrently* (the spec allows parallel
   operations for different containers), the others one by one; every ADD is
   followed by CHECK;
3. on every node, DEL of a container that was never added;
4. ``deletions`` pods are deleted (DEL, then DEL again) and created anew
   (a new sandbox, a new container ID: ADD, CHECK);
5. ``crashes`` pods' sandboxes crash (their namespace vanishes under the
   plugin), the kubelet's cleanup runs DEL (and again), the pod is re-added;
6. packets: every pod to every other pod, every node to every pod, TCP and UDP;
7. teardown: every pod deleted (DEL twice); every address must be released
   and every interface gone.
"""

from __future__ import annotations

import threading

import attrs

from kubemc.model.cni.machine import Cni
from kubemc.model.kernel import Step

MAX_PODS = 16          # the CNI model's bound on pods (and container IDs pod*16+attempt)
MAX_NODES = 16


@attrs.frozen(slots=True)
class Phase:
    kind: str                 # cidrs | add | del-unknown | delete | crash | probe | teardown
    pods: tuple = ()
    concurrent: bool = False


def plan(nodes: int, pods: int, deletions: int = 2, crashes: int = 1) -> list[Phase]:
    first = tuple(p for p in range(pods) if p % nodes == 0)
    rest = tuple(p for p in range(pods) if p % nodes != 0)
    deleted = tuple(range(1, pods))[:deletions]
    crashed = tuple(p for p in range(pods - 1, 0, -1) if p not in deleted)[:crashes]
    out = [Phase("cidrs"), Phase("add", first, concurrent=len(first) > 1)]
    out += [Phase("add", (p,)) for p in rest]
    out.append(Phase("del-unknown"))
    out += [Phase("delete", (p,)) for p in deleted]
    out += [Phase("crash", (p,)) for p in crashed]
    out += [Phase("probe"), Phase("teardown", tuple(range(pods)))]
    return out


def model_for(nodes: int, pods: int, deletions: int, crashes: int) -> Cni:
    """The model with bounds that let the whole plan run: enough addresses
    per node, and a deletion for every planned delete, every pod at
    teardown, and every ADD that may fail (a failed ADD's sandbox is
    stopped: "A delete must still be executed even if the add fails")."""
    adds = pods + deletions + crashes
    return Cni(nodes=nodes, pods=pods, containers=1, addresses=200,
               deletions=adds + deletions + pods, crashes=crashes, restarts=0)


class ModelRun:
    """The model state along the run. ``step`` applies a step that must be
    enabled: a plan the model refuses is a bug in the plan, not in the plugin."""

    def __init__(self, machine: Cni):
        self.machine = machine
        (self.state,) = machine.init_states()
        self.steps: list[tuple[Step, tuple]] = []
        self._lock = threading.Lock()

    def step(self, name: str, *params) -> tuple:
        s = Step(name, tuple(params))
        with self._lock:        # read, apply, write: one step at a time, whoever calls
            nxt = self.machine.apply(self.state, s)
            if nxt is None:
                raise RuntimeError(f"the CNI model refuses {name}{params}: the workload plan is wrong")
            self.state = nxt
            self.steps.append((s, nxt))
        return nxt

    def pod_cidr(self, node: int):
        return self.machine.pod_cidr(self.state[1][node])

    def attempt(self, pod: int) -> int:
        return self.state[2][pod][1]

    def view(self) -> dict:
        return self.machine.view(self.state)

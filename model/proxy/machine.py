"""kube-proxy on every node of a small cluster, as a state machine.

State (plain tuples)::

    (api, synced, budget, probe, recent)

``api[p]`` is pod p's condition in the API (``model.proxy.cluster``: ready,
not ready, terminating and still serving, terminating, gone); the
EndpointSlices are a function of it. ``synced[n]`` is the ``api`` value node
n's kube-proxy last programmed its rules from: a node's rules lag the API,
and ``Sync(n)`` — the proxier's sync loop — is a step (seeds/000: "kube-
proxy is the network agent which runs on each node responsible for dynamic
updates and maintenance of all networking rules on the node").
``budget`` = (condition changes, pod deletions, connections) left.
``probe`` is ghost state written only by ``Probe`` (see
``model.cni.machine``). ``recent`` is the ClientIP-affinity memory of node
0's kernel (the ``-m recent`` list): ``(service, backend address)`` pairs
for the one external client, written by ``Connect`` — the client opens a
connection through node 0 and the node's rules pick a backend, which later
connections from that client return to while its affinity rule exists.

The pods start ready and every node in sync.
"""

from __future__ import annotations

from kubemc.model.kernel import ENVIRONMENT, SYSTEM, Machine, Mutant, Step, action
from kubemc.model.network import addr
from kubemc.model.network.dataplane import Bridge, Dataplane, Node, flat_routes
from kubemc.model.network.forward import backend_choices, forward, probe_packet, probe_record
from kubemc.model.proxy import cluster
from kubemc.model.proxy.cluster import (CONDITIONS, GONE, NOT_READY, READY, TERMINATING,
                                 TERMINATING_SERVING)
from kubemc.model.proxy import rules as rule_set
from kubemc.model.proxy.cluster import TERMINATING_ENDPOINT_READY
from kubemc.model.proxy.rules import (CLUSTER_CIDR_EVERYTHING, NODEPORT_ONLY_ON_ENDPOINT_NODES,
                                      NOT_READY_ENDPOINT_IN_RULES,
                                      PROBABILITY_OFF_BY_ONE, PROBABILITY_ONE_TOO_MANY,
                                      STALE_AFFINITY_RULES, compile_rules)

_READY = {NOT_READY: READY}
_UNREADY = {READY: NOT_READY, TERMINATING_SERVING: TERMINATING}
_TERMINATE = {READY: TERMINATING_SERVING, NOT_READY: TERMINATING}


class Proxy(Machine):
    """The actions are declared on their handlers (``@action``); ``steps`` is
    written out (pod by pod, by the pod's condition). The seeded bugs live in
    the rule compiler (``model.proxy.rules``), whose comparisons are checked
    against these mutants (``mutant_helpers``)."""

    name = "proxy"
    mutant_helpers = (rule_set, cluster)
    mutants = {
        STALE_AFFINITY_RULES: Mutant(
            "the ClientIP-affinity rules of endpoints that left the chain (not ready any "
            "more) are kept: a remembered client still reaches them",
            violates="service_reaches_only_usable_endpoints"),
        NOT_READY_ENDPOINT_IN_RULES: Mutant(
            "kube-proxy programs every endpoint of the slice, ready or not",
            violates="service_reaches_only_usable_endpoints"),
        PROBABILITY_OFF_BY_ONE: Mutant(
            "the statistic rule of endpoint i of n uses 1/(n-i-1): the next-to-last rule "
            "always matches and the last endpoint is never chosen",
            violates="ready_endpoints_all_chosen"),
        PROBABILITY_ONE_TOO_MANY: Mutant(
            "the statistic rule of endpoint i of n uses 1/(n-i+1) (the last rule still "
            "matches always): every endpoint is still chosen, but unevenly — of two, the "
            "first gets 1/3 and the second 2/3",
            violates="ready_endpoints_all_chosen"),
        NODEPORT_ONLY_ON_ENDPOINT_NODES: Mutant(
            "a NodePort is opened only on nodes that host one of its endpoints",
            violates="nodeport_on_every_node"),
        CLUSTER_CIDR_EVERYTHING: Mutant(
            "kube-proxy is given 0.0.0.0/0 as its --cluster-cidr, so every source looks like "
            "a pod: a connection from outside the cluster to a ClusterIP is not masqueraded "
            "and the endpoint's reply bypasses the node that translated it",
            violates="service_source_address"),
        TERMINATING_ENDPOINT_READY: Mutant(
            "the EndpointSlice controller keeps a terminating pod whose readiness probe "
            "passes marked ready (not only serving), so kube-proxy keeps sending it new "
            "connections next to the ready ones",
            violates="endpoint_slices_follow_pods"),
    }

    def __init__(self, nodes=3, pods=4, services=2, events=3, deletions=1, connections=1,
                 mutant=None):
        super().__init__(mutant)
        if not (1 <= nodes <= 16 and 1 <= pods <= 32 and 1 <= services <= 16):
            raise ValueError("need 1-16 nodes, 1-32 pods, 1-16 services")
        self.nodes, self.pods, self.services = nodes, pods, services
        self.events, self.deletions, self.connections = events, deletions, connections
        self._rules: dict = {}
        self._last = (None, None)

    def config(self):
        return {"nodes": self.nodes, "pods": self.pods, "services": self.services,
                "events": self.events, "deletions": self.deletions,
                "connections": self.connections}

    def init_states(self):
        api = (READY,) * self.pods
        yield (api, (api,) * self.nodes, (self.events, self.deletions, self.connections), (), ())

    def steps(self, state):
        api, synced, budget, _, _ = state
        for p, c in enumerate(api):
            if budget[0] > 0:
                if c in _READY:
                    yield Step("BecomeReady", (p,))
                if c in _UNREADY:
                    yield Step("BecomeUnready", (p,))
                if c in _TERMINATE:
                    yield Step("Terminate", (p,))
            if budget[1] > 0 and c in (TERMINATING, TERMINATING_SERVING):
                yield Step("DeletePod", (p,))
        for n in range(self.nodes):
            if synced[n] != api:
                yield Step("Sync", (n,))
        if budget[2] > 0:
            for s, rule in enumerate(self.rules_for(synced[0], 0).services):
                if rule.affinity:
                    for _, b in backend_choices(rule, cluster.EXTERNAL_CLIENT, None):
                        yield Step("Connect", (s, addr.show(b.ip)))

    # -- the actions: each declared once, on its handler ------------------------
    def _change(self, state, x, table):
        api, synced, budget, _, recent = state
        if not 0 <= x < self.pods or budget[0] <= 0 or api[x] not in table:
            return None
        budget = (budget[0] - 1, budget[1], budget[2])
        return (api[:x] + (table[api[x]],) + api[x + 1:], synced, budget, (), recent)

    @action("BecomeReady", tag=ENVIRONMENT)
    def become_ready(self, state, p):
        return self._change(state, p, _READY)

    @action("BecomeUnready", tag=ENVIRONMENT)
    def become_unready(self, state, p):
        return self._change(state, p, _UNREADY)

    @action("Terminate", tag=ENVIRONMENT)
    def terminate(self, state, p):
        return self._change(state, p, _TERMINATE)

    @action("DeletePod", tag=ENVIRONMENT)
    def delete_pod(self, state, p):
        api, synced, budget, _, recent = state
        if not 0 <= p < self.pods:
            return None
        if budget[1] <= 0 or api[p] not in (TERMINATING, TERMINATING_SERVING):
            return None
        return (api[:p] + (GONE,) + api[p + 1:], synced, (budget[0], budget[1] - 1, budget[2]),
                (), recent)

    @action("Sync", tag=SYSTEM)
    def sync(self, state, n):
        api, synced, budget, _, recent = state
        if not 0 <= n < self.nodes or synced[n] == api:
            return None
        return (api, synced[:n] + (api,) + synced[n + 1:], budget, (), recent)

    @action("Connect", tag=ENVIRONMENT)
    def connect(self, state, s, backend):
        """``Connect(service, backend)``: the external client opens a
        connection to the Service through node 0 and the node's rules send it
        to ``backend`` — enabled when that is a choice the rules can make
        (a remembered backend with an affinity rule takes every connection);
        the node's affinity memory then remembers it."""
        api, synced, budget, _, recent = state
        if budget[2] <= 0 or not 0 <= s < self.services:
            return None
        rule = self.rules_for(synced[0], 0).services[s]
        table = {(rule.service, cluster.EXTERNAL_CLIENT): dict(recent).get(s)}
        options = {addr.show(b.ip) for p, b in backend_choices(rule, cluster.EXTERNAL_CLIENT,
                                                               table) if p > 0}
        if not rule.affinity or backend not in options:
            return None
        entries = dict(recent)
        entries[s] = addr.ip(backend)
        return (api, synced, (budget[0], budget[1], budget[2] - 1), (),
                tuple(sorted(entries.items())))

    @action("Probe", tag=ENVIRONMENT)
    def probe(self, state, *params):
        return self._probe(state, params)

    def _probe(self, state, params):
        """Record one packet's outcomes (ghost state; see ``model.cni.machine``)."""
        pkt = probe_packet(params, self.nodes)
        if pkt is None:
            return None
        outcomes = forward(self.dataplane(state), pkt, self.recent_table(state, pkt.node))
        return state[:3] + (probe_record(pkt, outcomes),) + state[4:]

    # -- projection -------------------------------------------------------------
    def synced_nodes(self, state) -> list[int]:
        return [n for n in range(self.nodes) if state[1][n] == state[0]]

    def recent_table(self, state, node: int) -> dict:
        """The ``recent`` argument of ``forward`` for packets entering ``node``."""
        if node != 0:
            return {}
        names = [f"svc-{s}" for s in range(self.services)]
        return {(names[s], cluster.EXTERNAL_CLIENT): ip for s, ip in state[4]}

    def rules_for(self, snapshot, node: int):
        key = (snapshot, node)
        rules = self._rules.get(key)
        if rules is None:
            services = cluster.api_services(self.services, snapshot, self.nodes, self.mutant)
            rules = compile_rules(cluster.CLUSTER_CIDR, services, node, self.mutant)
            self._rules[key] = rules
        return rules

    def dataplane(self, state) -> Dataplane:
        if self._last[0] == state:
            return self._last[1]
        api, synced, _, _, _ = state
        blocks = [addr.subnet(cluster.CLUSTER_CIDR, 24, n) for n in range(self.nodes)]
        nodes = tuple(
            Node(n, f"node-{n}", cluster.node_ip(n), blocks[n],
                 Bridge("cni0", blocks[n], blocks[n][0] + 1), flat_routes(n, blocks),
                 self.rules_for(synced[n], n))
            for n in range(self.nodes))
        dp = Dataplane(cluster.CLUSTER_CIDR, nodes, cluster.running_pods(api, self.nodes),
                       cluster.api_services(self.services, api, self.nodes, self.mutant))
        self._last = (state, dp)
        return dp

    def view(self, state):
        api, synced, budget, probe, recent = state
        return {
            "pods": [CONDITIONS[c] for c in api],
            "rules_synced_from": [[CONDITIONS[c] for c in snap] for snap in synced],
            "in_sync": [snap == api for snap in synced],
            "budget": {"events": budget[0], "deletions": budget[1], "connections": budget[2]},
            "affinity_on_node_0": [(f"svc-{s}", addr.show(ip)) for s, ip in recent],
            "probe": probe,
        }

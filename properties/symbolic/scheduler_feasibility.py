"""A Z3 feasibility oracle for kube-scheduler's filters: given a snapshot of
nodes and the pods already on them, can a pending pod — or a batch of pods,
placed one after another in the order given — be placed so that every
filter passes at each pod's turn? If so, where?

The filters are the ones ``model.scheduler.plugins`` implements (the
executable plugins are the reference; ``tests/test_scheduler_oracle.py``
checks the two agree on thousands of random snapshots): NodeUnschedulable,
NodeAffinity and nodeSelector, TaintToleration, NodePorts, NodeResourcesFit
with KEP-753's effective request and the pod-count limit, PodTopologySpread
with ``DoNotSchedule``, and required inter-pod anti-affinity (both ways).

Why this shape, for scale (5,000 nodes, 150,000 pods: ``kubemc bench
scheduler``):

* the filters that depend on nothing placed (unschedulable, affinity,
  taints) are decided per (pod, node) by the plugins themselves, so a node
  that fails one never becomes a variable;
* what the pods already placed contribute is aggregated once per snapshot
  (:class:`Snapshot`: per node the requested resources, the pod count and
  the host ports; per selector the matching live pods per node; the
  anti-affinity terms of placed pods by topology value), never rescanned
  per question;
* the filters that are monotone in what is placed (resources, pod count,
  ports, anti-affinity) are folded against those aggregates before the
  solver sees a node: a node a pod cannot take even alone is no candidate;
* the rest is linear over one Boolean per (batch pod, candidate node):
  exactly one per pod (a pseudo-Boolean equality), resources and pod count
  as weighted pseudo-Boolean sums per node where the candidates could
  overflow it, ports and anti-affinity as pairwise exclusions, and the
  topology spread as linear constraints over per-domain counts with an
  existential minimum — ``count(own domain) + self − min ≤ maxSkew`` holds
  for the true minimum iff it holds for some lower bound of every domain's
  count, so no ``min`` is encoded. Domains no earlier batch pod can reach
  are constants and contribute one number.

Sequential semantics: a batch is placed pod by pod, each seeing the pods
before it (the scheduler's queue order). Resources, count and ports are
order-free (the last pod placed on a node sees the total); anti-affinity is
symmetric; the spread is the only order-dependent filter and is encoded
with the counts at each pod's turn.
"""

from __future__ import annotations

import time
from collections import defaultdict

import attrs
import z3

from kubemc.model.scheduler.objects import HOSTNAME, Node, Pod, Resources, matches
from kubemc.model.scheduler.plugins import (
    effective_request, node_affinity, node_unschedulable, taint_toleration,
)


@attrs.frozen(slots=True)
class Answer:
    """The oracle's verdict. ``placement`` gives each batch pod's node index
    (None when infeasible); ``blocked`` names a pod with no candidate node at
    all, when that is why; ``seconds`` the whole question, ``solver_seconds``
    the Z3 part; ``variables`` the Booleans the solver saw."""

    feasible: bool
    placement: tuple | None
    seconds: float
    solver_seconds: float
    variables: int
    blocked: int | None = None
    unknown: bool = False
    #: node classes the candidates were merged into (== candidate nodes when
    #: no two were interchangeable; see ``_classes``)
    classes: int = 0


class Snapshot:
    """Nodes and the pods on them, aggregated once for many questions.

    ``placed`` is the plugins' format: ``(index, Pod, node_index,
    terminating)``. Terminating pods hold resources, ports, a pod slot and
    count for anti-affinity, but not for the spread (as the plugins do)."""

    def __init__(self, nodes, placed):
        self.nodes = tuple(nodes)
        self.placed = tuple(placed)
        n = len(self.nodes)
        self.labels = [node.all_labels for node in self.nodes]
        self.used = [Resources()] * n
        self.count = [0] * n
        self.ports = [set() for _ in range(n)]
        #: key -> selector -> values of key on the nodes of placed pods with that term
        self._terms = defaultdict(lambda: defaultdict(set))
        cpu, mem = [0] * n, [0] * n
        for _, pod, at, _terminating in self.placed:
            r = effective_request(pod)
            cpu[at] += r.cpu
            mem[at] += r.memory
            self.count[at] += 1
            self.ports[at].update(pod.host_ports)
            for term in pod.anti_affinity:
                value = self.labels[at].get(term.topology_key)
                if value is not None:
                    self._terms[term.topology_key][term.selector].add(value)
        self.used = [Resources(c, m) for c, m in zip(cpu, mem)]
        self._per_selector: dict = {}
        self._occupied: dict = {}

    def matching_per_node(self, selector) -> list[int]:
        """Live placed pods matching ``selector``, per node (cached)."""
        got = self._per_selector.get(selector)
        if got is None:
            got = [0] * len(self.nodes)
            for _, pod, at, terminating in self.placed:
                if not terminating and matches(selector, pod.labels):
                    got[at] += 1
            self._per_selector[selector] = got
        return got

    def occupied_values(self, key, selector) -> frozenset:
        """Values of ``key`` on the nodes of placed pods matching ``selector``
        (terminating ones included, as the anti-affinity plugin counts them)."""
        got = self._occupied.get((key, selector))
        if got is None:
            got = frozenset(self.labels[at][key] for _, pod, at, _ in self.placed
                            if key in self.labels[at] and matches(selector, pod.labels))
            self._occupied[(key, selector)] = got
        return got

    def repelled(self, pod: Pod) -> set:
        """(key, value) pairs where a placed pod's anti-affinity term selects ``pod``."""
        return {(key, value) for key, by_selector in self._terms.items()
                for selector, values in by_selector.items() if matches(selector, pod.labels)
                for value in values}

    # -- the part of a question that needs no solver -------------------------------------

    def static(self, pod: Pod, i: int) -> bool:
        node = self.nodes[i]
        return node_unschedulable(pod, node) and node_affinity(pod, node) and \
            taint_toleration(pod, node)

    def alone(self, pod: Pod, i: int, request: Resources, blocked_terms, repelled) -> bool:
        """The monotone filters against the placed pods alone."""
        node, labels = self.nodes[i], self.labels[i]
        used = self.used[i]
        if used.cpu + request.cpu > node.allocatable.cpu or \
                used.memory + request.memory > node.allocatable.memory or \
                self.count[i] + 1 > node.max_pods:
            return False
        if self.ports[i].intersection(pod.host_ports):
            return False
        for key, values in blocked_terms:
            if key in labels and labels[key] in values:
                return False
        return not any(labels.get(key) == value for key, value in repelled)

    def candidates(self, pod: Pod) -> list[int]:
        request = effective_request(pod)
        blocked = [(t.topology_key, self.occupied_values(t.topology_key, t.selector))
                   for t in pod.anti_affinity]
        repelled = self.repelled(pod)
        keys = {c.topology_key for c in pod.spread if c.when_unsatisfiable == "DoNotSchedule"}
        out = []
        for i in range(len(self.nodes)):
            if not keys <= self.labels[i].keys():
                continue  # a node without a spread constraint's key fails the spread
            if self.static(pod, i) and self.alone(pod, i, request, blocked, repelled):
                out.append(i)
        return out

    # -- the question ------------------------------------------------------------------------

    def feasible(self, pods, *, timeout_ms: int | None = None,
                 collapse: bool = True, within=None) -> Answer:
        """Can ``pods`` be placed in this order, each passing every filter at
        its turn? One pod is a batch of one. ``collapse=False`` keeps one
        variable per (pod, node) even where nodes are interchangeable (the
        tests compare both); ``within`` (node indices) asks for a placement
        on those nodes only — "may this pod go to node n?"."""
        start = time.perf_counter()
        pods = tuple(pods)
        # a Deployment's replicas differ only in name: their candidates once
        by_spec: dict = {}
        cands = []
        for p in pods:
            spec = p._replace(name="")
            if spec not in by_spec:
                by_spec[spec] = self.candidates(p)
            cands.append(by_spec[spec] if within is None
                         else [n for n in by_spec[spec] if n in within])
        for k, c in enumerate(cands):
            if not c:
                return Answer(False, None, time.perf_counter() - start, 0.0, 0, blocked=k)
        enc = _Encoding(self, pods, cands, collapse)
        solver = z3.Solver()
        if timeout_ms:
            solver.set("timeout", timeout_ms)
        solver.add(*enc.constraints)
        t0 = time.perf_counter()
        verdict = solver.check()
        solver_seconds = time.perf_counter() - t0
        if verdict == z3.unknown:
            return Answer(False, None, time.perf_counter() - start, solver_seconds,
                          enc.variables, unknown=True)
        placement = None
        if verdict == z3.sat:
            model = solver.model()
            placement = enc.decode([next(n for n, b in enc.x[k].items()
                                         if z3.is_true(model.eval(b, model_completion=True)))
                                    for k in range(len(pods))])
        return Answer(verdict == z3.sat, placement, time.perf_counter() - start,
                      solver_seconds, enc.variables, classes=len(enc.members))


class _Encoding:
    """The solver's constraints for one batch over its candidates."""

    def __init__(self, snap: Snapshot, pods, cands, collapse: bool = True):
        self.snap, self.pods = snap, pods
        self.hostname_clique = _hostname_clique(pods)
        rep = _classes(snap, pods, cands, self.hostname_clique) if collapse else None
        if rep is None:
            rep = {n: n for c in cands for n in c}
        #: a class's representative node -> the interchangeable nodes it stands for
        self.members: dict = defaultdict(list)
        for n in sorted(rep):
            self.members[rep[n]].append(n)
        self.x = [{r: z3.Bool(f"x_{k}_{r}") for r in sorted({rep[n] for n in c})}
                  for k, c in enumerate(cands)]
        self.variables = sum(len(xs) for xs in self.x)
        self.constraints: list = []
        self._dom: dict = {}
        for k in range(len(pods)):
            self.constraints.append(z3.PbEq([(b, 1) for b in self.x[k].values()], 1))
        self._capacity()
        self._ports()
        self._anti_affinity()
        for k, pod in enumerate(pods):
            for m, c in enumerate(pod.spread):
                if c.when_unsatisfiable == "DoNotSchedule":
                    self._spread(k, m, c)

    def decode(self, chosen) -> tuple:
        """Each pod's class -> a node of it: the pods of the per-node clique
        take distinct nodes of their class (the solver kept them within its
        size), the others its first node (nothing overflows a merged class)."""
        taken: dict = defaultdict(int)
        out = []
        for k, r in enumerate(chosen):
            nodes = self.members[r]
            if self.hostname_clique and k in self.hostname_clique:
                out.append(nodes[taken[r]])
                taken[r] += 1
            else:
                out.append(nodes[0])
        return tuple(out)

    def _capacity(self):
        snap, on = self.snap, defaultdict(list)
        for k, xs in enumerate(self.x):
            r = effective_request(self.pods[k])
            for n, b in xs.items():
                on[n].append((b, r))
        for n, entries in on.items():
            if len(entries) < 2 or len(self.members[n]) > 1:
                # one candidate alone was checked against the node; a merged
                # class was merged only because nothing can overflow it
                continue
            node, used = snap.nodes[n], snap.used[n]
            for room, weight in ((node.allocatable.cpu - used.cpu, lambda r: r.cpu),
                                 (node.allocatable.memory - used.memory, lambda r: r.memory),
                                 (node.max_pods - snap.count[n], lambda r: 1)):
                terms = [(b, weight(r)) for b, r in entries if weight(r) > 0]
                if sum(w for _, w in terms) > room:
                    self.constraints.append(z3.PbLe(terms, room))

    def _ports(self):
        for k, a in enumerate(self.pods):
            for j in range(k):
                if set(a.host_ports).intersection(self.pods[j].host_ports):
                    for n in self.x[k].keys() & self.x[j].keys():
                        self.constraints.append(z3.Not(z3.And(self.x[k][n], self.x[j][n])))

    def _in(self, k, key, value, allowed=None):
        """Pod k lands where ``key`` is ``value`` (on a node of ``allowed``,
        when given): one shared expression per (pod, key, value), reused by
        every constraint that counts it, so a batch's spread costs batch² ×
        domains terms, not batch² × nodes."""
        cached = self._dom.get((k, key, value))
        if cached is None:
            labels = self.snap.labels
            nodes = [n for n in self.x[k] if labels[n].get(key) == value]
            cached = (frozenset(nodes), z3.Or([self.x[k][n] for n in nodes])
                      if len(nodes) != 1 else self.x[k][nodes[0]])
            self._dom[(k, key, value)] = cached
        nodes, expr = cached
        if not nodes:
            return None
        if allowed is None or nodes <= allowed:
            return expr
        inside = [self.x[k][n] for n in nodes if n in allowed]
        return z3.Or(inside) if inside else None

    def _anti_affinity(self):
        """A pair conflicts when one's term selects the other and both land
        in one value of the term's key. Per key, when every two of the pods
        involved conflict (a Deployment's replicas repelling each other, the
        common case) one at-most-one per value replaces the pairs."""
        pairs = defaultdict(set)
        for k, a in enumerate(self.pods):
            for j in range(k):
                b = self.pods[j]
                keys = {t.topology_key for t in a.anti_affinity if matches(t.selector, b.labels)}
                keys |= {t.topology_key for t in b.anti_affinity if matches(t.selector, a.labels)}
                for key in keys:
                    pairs[key].add((j, k))
        for key, conflicting in pairs.items():
            involved = sorted({p for pair in conflicting for p in pair})
            clique = len(conflicting) == len(involved) * (len(involved) - 1) // 2
            if clique and key == HOSTNAME:
                # at most one of them per node: per class, at most its size
                for r, nodes in self.members.items():
                    here = [self.x[p][r] for p in involved if r in self.x[p]]
                    if len(here) > len(nodes):
                        self.constraints.append(z3.AtMost(*here, len(nodes)))
                continue
            values = {self.snap.labels[n].get(key) for p in involved for n in self.x[p]} - {None}
            for v in values:
                if clique:
                    here = [e for e in (self._in(p, key, v) for p in involved) if e is not None]
                    if len(here) > 1:
                        self.constraints.append(z3.AtMost(*here, 1))
                    continue
                for j, k in conflicting:
                    here, there = self._in(k, key, v), self._in(j, key, v)
                    if here is not None and there is not None:
                        self.constraints.append(z3.Not(z3.And(here, there)))

    def _spread(self, k, m, c):
        """PodTopologySpread DoNotSchedule at pod k's turn: the domains are
        the values of the key on nodes passing the pod's node affinity; the
        counts are the live placed pods matching the selector there plus the
        earlier batch pods that land there and match."""
        snap, pod, key = self.snap, self.pods[k], c.topology_key
        per_node = snap.matching_per_node(c.selector)
        domain_nodes = defaultdict(list)
        for n, node in enumerate(snap.nodes):
            if key in snap.labels[n] and node_affinity(pod, node):
                domain_nodes[snap.labels[n][key]].append(n)
        base = {v: sum(per_node[n] for n in ns) for v, ns in domain_nodes.items()}
        allowed = {v: frozenset(ns) for v, ns in domain_nodes.items()}
        extra = defaultdict(list)   # domain -> earlier matching batch pods there
        for j in range(k):
            if matches(c.selector, self.pods[j].labels):
                for v, ns in domain_nodes.items():
                    e = self._in(j, key, v, allowed[v])
                    if e is not None:
                        extra[v].append(e)

        def count(v):
            return base[v] + z3.Sum([z3.If(b, 1, 0) for b in extra[v]]) if extra[v] else base[v]

        self_match = 1 if matches(c.selector, pod.labels) else 0
        inside = {n for ns in domain_nodes.values() for n in ns}
        if not any(extra.values()):
            # nothing earlier in the batch counts: the spread is a constant per
            # domain (a single pod's question), folded without the solver
            low = min(base.values(), default=0)
            failing = [b for n, b in self.x[k].items() if n not in inside
                       or base[snap.labels[n][key]] + self_match - low > c.max_skew]
            if failing:
                self.constraints.append(z3.Not(z3.Or(failing)))
            return
        lo = z3.Int(f"min_{k}_{m}")
        constant = [base[v] for v in base if not extra[v]]
        if constant:
            self.constraints.append(lo <= min(constant))
        for v in base:
            if extra[v]:
                self.constraints.append(lo <= count(v))
        for v, ns in domain_nodes.items():
            mine = [self.x[k][n] for n in ns if n in self.x[k]]
            if mine:
                self.constraints.append(z3.Implies(z3.Or(mine), count(v) + self_match - lo
                                                   <= c.max_skew))
        # a candidate outside every domain (no key, or failing the affinity) fails
        for n, b in self.x[k].items():
            if n not in inside:
                self.constraints.append(z3.Not(b))


def _conflicts(pods, key=None) -> dict:
    """key -> pairs (j, k) of batch pods that repel each other on that key."""
    pairs = defaultdict(set)
    for k, a in enumerate(pods):
        for j in range(k):
            b = pods[j]
            keys = {t.topology_key for t in a.anti_affinity if matches(t.selector, b.labels)}
            keys |= {t.topology_key for t in b.anti_affinity if matches(t.selector, a.labels)}
            for kk in keys:
                if key is None or kk == key:
                    pairs[kk].add((j, k))
    return pairs


def _hostname_clique(pods) -> frozenset | None:
    """The batch pods that repel each other per node, when every two of them
    do (a Deployment's replicas with hostname anti-affinity); None when the
    hostname conflicts are not such a clique, () when there are none."""
    pairs = _conflicts(pods, HOSTNAME).get(HOSTNAME, set())
    involved = frozenset(p for pair in pairs for p in pair)
    if len(pairs) != len(involved) * (len(involved) - 1) // 2:
        return None
    return involved


def _classes(snap, pods, cands, clique) -> dict | None:
    """Symmetry of interchangeable nodes: node -> the representative of its
    class, or None when the batch gives no room for merging.

    Two candidate nodes are interchangeable for a batch when every constraint
    treats them alike: the same batch pods have them as candidates, they carry
    the same value of every topology key a spread constraint or an
    anti-affinity between batch pods uses (hostname excepted when those pods
    form a per-node clique: then a class of m nodes takes at most m of them),
    they pass the node affinity of every pod with a spread constraint alike
    (its domains), and no set of batch pods that may share one of them can
    overflow it (resources, pod count; the clique counts once). Then which
    node of a class a pod takes does not matter to any filter, and the solver
    sees one variable per (pod, class). Batches with a host port in common
    are not merged (ports are per node)."""
    for k, a in enumerate(pods):
        for j in range(k):
            if set(a.host_ports) & set(pods[j].host_ports):
                return None
    if clique is None:
        clique = frozenset()
        keys = {HOSTNAME}
    else:
        keys = set()
    keys |= {kk for kk in _conflicts(pods) if kk != HOSTNAME or not clique}
    spreading = []
    for p in pods:
        for c in p.spread:
            if c.when_unsatisfiable == "DoNotSchedule":
                keys.add(c.topology_key)
                spreading.append(p)
    keys = sorted(keys)
    requests = [effective_request(p) for p in pods]
    on = defaultdict(list)
    for k, c in enumerate(cands):
        for n in c:
            on[n].append(k)
    rep, first = {}, {}
    for n, ks in on.items():
        labels, node, used = snap.labels[n], snap.nodes[n], snap.used[n]
        free = [k for k in ks if k not in clique]
        held = [k for k in ks if k in clique]

        def most(weight):
            return sum(weight(k) for k in free) + max((weight(k) for k in held), default=0)
        overflow = (most(lambda k: requests[k].cpu) > node.allocatable.cpu - used.cpu
                    or most(lambda k: requests[k].memory) > node.allocatable.memory - used.memory
                    or most(lambda k: 1) > node.max_pods - snap.count[n])
        if overflow:
            rep[n] = n
            continue
        signature = (tuple(ks), tuple(labels.get(key) for key in keys),
                     tuple(node_affinity(p, node) for p in spreading))
        rep[n] = first.setdefault(signature, n)
    return rep


def feasible(nodes, placed, pods, **kw) -> Answer:
    """One question on a fresh snapshot (tests and the audit's single use)."""
    return Snapshot(nodes, placed).feasible(pods, **kw)


__all__ = ["Answer", "Snapshot", "feasible", "Node", "Pod"]

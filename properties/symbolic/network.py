"""The forwarding function as Z3 formulas over a concrete dataplane and a
symbolic packet: proofs of no-NAT reachability and of Service correctness.

The dataplane (nodes, podCIDRs, bridges, route tables, kube-proxy chains,
pods, the API's EndpointSlices) is concrete — a state the CNI or kube-proxy
machine reached, or a generated cluster; the packet is symbolic: 32-bit
source and destination (bit-vectors, so a route is a prefix match on the
top bits), port, protocol, the node it enters at, and — for a Service — the
backend the statistic rules pick. A model of the negated property is a
concrete packet that :func:`model.network.forward.forward` (the executable
definition these formulas mirror, and against which they are tested) sends
somewhere it must not go; every such packet is re-run through ``forward``
before it is reported (:class:`EncodingMismatch` otherwise).

Size, and why nothing is quadratic: a query never enumerates pairs of pods.
Every table — a route table, "which pod holds this address", KUBE-SERVICES
by virtual IP, KUBE-NODEPORTS by port, a Service's backends by rule index,
what each node does by node index — is one *trie* over the bits of the
symbolic key (:func:`trie`): a tree of ``If`` on one bit at a time, with the
longest matching prefix winning, which is a route lookup's definition. Pods
enter as *intervals* of consecutive addresses per node (host-local hands
them out in order: a node with 30 pods is one interval; once pods have come
and gone a node's pods are several intervals, and ``kubemc bench network``
measures both), so "x is a pod address on node b" is one leaf per /24 block,
a node test and one range test per interval. The formula grows with the
number of table entries (times the key width), and the solver, once it has
fixed the high bits of an address, decides every other branch by
propagation: one query covers every pair of pods without naming a pair.
Nodes that share a route table (or rule set) share its trie; the ingress
node's index picks the copy.

A Service query is two queries (see :meth:`NetworkEncoding.backends_delivered`
for why the split is exact): the *header* query — which rule takes the
packet, which backends its statistic rules reach (exact rationals), whether
each is a usable endpoint of the Service the API says the packet is for —
and one routing query over every backend address. A ``packet=`` pinned
query (the differential tests) asks the header query alone.

Scope: delivery within two hops (the ingress node, then the node its route
points to), which is what flat routing and an overlay give; a dataplane that
needs longer paths is reported through a mismatch, never proved. A ClusterIP
packet is not also tried against KUBE-NODEPORTS: that would need a virtual
IP that is a node's own address, which the Service CIDR excludes.
"""

from __future__ import annotations

import time
from fractions import Fraction
from functools import lru_cache

import attrs
import z3

from kubemc.model.network.addr import show
from kubemc.model.network.dataplane import PROTOCOLS, Dataplane
from kubemc.model.network.forward import DELIVERED, REJECTED, Packet, forward
from kubemc.properties.proxy import usable_endpoints

NOROUTE = 0xFFFF
NONE_SVC = 0xFFFF          # "no rule takes the packet" (rule indices are 16-bit)
PROOF, FOUND = "proved", "violated"


class EncodingMismatch(AssertionError):
    """The solver's packet does not misbehave under ``forward``."""


@attrs.frozen
class Verdict:
    """A query's answer: ``proved``, or ``violated`` with the packet (and the
    expected receiver) that shows it."""

    query: str
    verdict: str
    seconds: float
    packet: Packet | None = None
    detail: str = ""

    @property
    def holds(self) -> bool:
        return self.verdict == PROOF


@lru_cache(maxsize=200_000)
def _bv(v: int, width: int = 32):
    return z3.BitVecVal(v, width)


def in_cidr(x, block):
    base, plen = block
    if plen == 0:
        return z3.BoolVal(True)
    return z3.Extract(31, 32 - plen, x) == _bv(base >> (32 - plen), plen)


def _ite(c, t, e):
    """``z3.If`` without the Python API's sort coercion: the tries below make
    hundreds of thousands of these, and the checks cost more than the node."""
    ctx = t.ctx
    cls = z3.BoolRef if z3.is_bool(t) else z3.BitVecRef
    return cls(z3.Z3_mk_ite(ctx.ref(), c.as_ast(), t.as_ast(), e.as_ast()), ctx)


_BITS: dict = {}


def _bit(x, i):
    key = (x.get_id(), i)
    b = _BITS.get(key)
    if b is None:
        if len(_BITS) > 100_000:
            _BITS.clear()
        b = _BITS[key] = (x, z3.Extract(i, i, x) == _bv(1, 1))
    return b[1]


def trie(x, width: int, entries, default):
    """A lookup table on the bits of ``x`` as a tree of ``If``: ``entries``
    are ``(base, prefix_length, value)``; the longest prefix that matches
    wins, and among equal prefixes the first entry (table order, as
    ``model.network.forward.lookup``). Why a tree: once the solver fixes the
    high bits of ``x`` every other branch is decided by propagation, where a
    flat disjunction over thousands of entries makes it search."""

    def build(depth, cands, best):
        for e in cands:
            if e[1] == depth:
                best = e[2]
                break
        deeper = [e for e in cands if e[1] > depth]
        if not deeper:
            return best
        i = width - 1 - depth
        ones = [e for e in deeper if (e[0] >> i) & 1]
        zeros = [e for e in deeper if not (e[0] >> i) & 1]
        hi = build(depth + 1, ones, best) if ones else best
        lo = build(depth + 1, zeros, best) if zeros else best
        if hi is lo:
            return hi
        return _ite(_bit(x, i), hi, lo)

    return build(0, list(entries), default)


def intervals(pods):
    """(lo, hi, node) runs of consecutive addresses on one node, never
    crossing a /24 boundary (so each run sits under one trie leaf)."""
    out = []
    for node, ip in sorted((p.node, p.ip) for p in pods):
        if out and out[-1][2] == node and ip <= out[-1][1] + 1 and ip >> 8 == out[-1][0] >> 8:
            out[-1][1] = max(out[-1][1], ip)
        else:
            out.append([ip, ip, node])
    return [tuple(r) for r in out]


def _groups(nodes, key):
    """Nodes sharing one object (route table, rule set), in first-seen order."""
    out: dict = {}
    for n in nodes:
        obj = key(n)
        out.setdefault(id(obj), (obj, []))[1].append(n.index)
    return list(out.values())


def _proto(name: str):
    return _bv(PROTOCOLS.index(name), 2)


class NetworkEncoding:
    """The formulas of one dataplane. Build once, ask many queries."""

    def __init__(self, dp: Dataplane):
        self.dp = dp
        self.n = len(dp.nodes)
        self.by_block: dict = {}
        for lo, hi, nd in intervals(dp.pods):
            self.by_block.setdefault(lo >> 8, []).append((lo, hi, nd))
        self.route_groups = _groups(dp.nodes, lambda n: n.routes)
        self.rule_groups = _groups(dp.nodes, lambda n: n.rules)
        self._delivered: dict = {}

    # -- building blocks ------------------------------------------------------
    def pod_at(self, x, node):
        """x is the address of a pod on ``node`` (a symbolic node index)."""
        low = z3.Extract(7, 0, x)
        entries = []
        for block, runs in self.by_block.items():
            # runs of one node share one comparison of the node index: a
            # fragmented block (pods churned) costs a range test per run only
            by_node: dict = {}
            for lo, hi, nd in runs:
                by_node.setdefault(nd, []).append((lo, hi))
            leaf = z3.Or([z3.And(node == _bv(nd, 16), z3.Or([
                z3.And(z3.ULE(_bv(lo & 255, 8), low), z3.ULE(low, _bv(hi & 255, 8)))
                for lo, hi in rs])) for nd, rs in by_node.items()])
            entries.append((block << 8, 24, leaf))
        return trie(x, 32, entries, z3.BoolVal(False))

    def by_node(self, node, leaf_of, members, default):
        """A value chosen by the (symbolic) node index: ``leaf_of(i)`` for
        each node i in ``members``."""
        return trie(node, 16, [(i, 16, leaf_of(i)) for i in members], default)

    def route_tables(self, dst):
        """Each distinct route table's next hop for ``dst``."""
        return [trie(dst, 32, [(r.dst[0], r.dst[1], _bv(r.via, 16)) for r in table],
                     _bv(NOROUTE, 16)) for table, _ in self.route_groups]

    def hop(self, node, dst, tables=None):
        """The next hop ``node``'s route table gives for ``dst``."""
        if tables is None:
            tables = self.route_tables(dst)
        if len(tables) == 1:
            return tables[0]
        entries = [(i, 16, t) for t, (_, members) in zip(tables, self.route_groups)
                   for i in members]
        return trie(node, 16, entries, _bv(NOROUTE, 16))

    def masq(self, node, src, dst):
        """The source after ``node``'s bridge ipMasq (unchanged off it)."""
        entries = []
        for nd in self.dp.nodes:
            if nd.bridge is not None and nd.bridge.ip_masq:
                sub = nd.bridge.subnet
                entries.append((nd.index, 16, z3.If(
                    z3.And(in_cidr(src, sub), z3.Not(in_cidr(dst, sub))), _bv(nd.ip), src)))
        return trie(node, 16, entries, src) if entries else src

    def deliver(self, ingress, src, dst):
        """(delivered?, receiving node, source as received) for a packet to
        ``dst`` leaving ``ingress`` (no kube-proxy masquerade)."""
        routed, final, seen = self.route_only(ingress, src, dst)
        return z3.And(routed, self.pod_at(dst, final)), final, seen

    def route_only(self, ingress, src, dst):
        """(reaches a bridge?, the node of that bridge, source as received)."""
        tables = self.route_tables(dst)
        h1 = self.hop(ingress, dst, tables)
        src1 = self.masq(ingress, src, dst)
        local1 = h1 == ingress
        h2 = self.hop(h1, dst, tables)
        src2 = self.masq(h1, src1, dst)
        final = z3.If(local1, ingress, h1)
        routed = z3.And(h1 != _bv(NOROUTE, 16), z3.Or(local1, h2 == h1))
        seen = z3.If(local1, src1, src2)
        return routed, final, seen

    def local_address(self, node, dst):
        owners: dict = {}
        for nd in self.dp.nodes:
            for a in nd.local_addresses():
                owners.setdefault(a, []).append(nd.index)
        return trie(dst, 32, [(a, 32, z3.Or([node == _bv(i, 16) for i in ns]))
                              for a, ns in owners.items()], z3.BoolVal(False))

    def kube_services(self, rules, node, dst, port, proto, local=None):
        """KUBE-SERVICES: the index of the rule that takes the packet, or
        NONE_SVC — ClusterIP rules first (exact virtual IP, port, protocol),
        then KUBE-NODEPORTS for a packet to one of the node's addresses."""
        none = _bv(NONE_SVC, 16)
        by_vip: dict = {}
        by_port: dict = {}
        for k, r in enumerate(rules.services):
            by_vip.setdefault(r.vip, []).append((k, r))
            if r.node_port:
                by_port.setdefault(r.node_port, []).append((k, r))

        def chain(cands, key):
            out = none
            for k, r in reversed(cands):
                out = z3.If(key(r), _bv(k, 16), out)
            return out
        cluster_ip = trie(dst, 32, [(vip, 32, chain(c, lambda r: z3.And(
            port == _bv(r.port, 16), proto == _proto(r.proto)))) for vip, c in by_vip.items()],
            none)
        if not by_port:
            return cluster_ip
        if local is None:
            local = self.local_address(node, dst)
        node_port = trie(port, 16, [(np_, 16, chain(c, lambda r: proto == _proto(r.proto)))
                                    for np_, c in by_port.items()], none)
        return z3.If(cluster_ip != none, cluster_ip, z3.If(local, node_port, none))

    # -- queries --------------------------------------------------------------
    def no_nat(self, sources: str = "pods", timeout_ms: int | None = None,
               packet: Packet | None = None) -> Verdict:
        """Every pod (``sources="pods"``) or every node (``"nodes"``) reaches
        every pod, delivered with its source address unchanged. ``packet``
        pins the symbolic packet to one concrete packet (differential tests:
        the formula's verdict on it against ``forward``'s)."""
        start = time.perf_counter()
        s, d, a, b = z3.BitVec("src", 32), z3.BitVec("dst", 32), z3.BitVec("ingress", 16), \
            z3.BitVec("owner", 16)
        port, proto = z3.BitVec("port", 16), z3.BitVec("proto", 2)
        facts = [z3.ULT(a, _bv(self.n, 16)), z3.ULT(proto, _bv(3, 2)), self.pod_at(d, b)]
        facts += _pin(packet, s, d, a, port, proto)
        if sources == "pods":
            facts += [self.pod_at(s, a), z3.Or(s != d, a != b)]
        else:
            facts.append(self.by_node(a, lambda i: s == _bv(self.dp.nodes[i].ip),
                                      range(self.n), z3.BoolVal(False)))
        hits = []
        for rules, members in self.rule_groups:
            if rules.services:
                sel = self.kube_services(rules, a, d, port, proto)
                hits.append(z3.And(self.by_node(a, lambda i: z3.BoolVal(True), members,
                                                z3.BoolVal(False)),
                                   sel != _bv(NONE_SVC, 16)))
        routed, final, seen = self.route_only(a, s, d)
        # delivered to the expected pod <=> routed to its node: pod_at(d, b)
        # is a fact, so the bridge of node b holds d
        bad = z3.Or(hits + [z3.Not(routed), final != b, seen != s])
        return self._solve(f"no_nat[{sources}]", facts, bad, timeout_ms, start,
                           lambda m: self._no_nat_packet(m, s, d, a, port, proto, b))

    def _no_nat_packet(self, m, s, d, a, port, proto, b):
        pkt = Packet(_val(m, s), _val(m, d), _val(m, port), PROTOCOLS[_val(m, proto)],
                     _val(m, a))
        target = self.dp.pod_index.get((_val(m, b), pkt.dst))
        out = forward(self.dp, pkt)
        good = target is not None and len(out) == 1 and out[0][1].kind == DELIVERED \
            and out[0][1].pod == target.name and out[0][1].src == pkt.src
        if good:
            raise EncodingMismatch(f"z3 says {pkt} misbehaves, forward delivers it unchanged")
        return pkt, f"expected delivery to {target.name if target else '?'}, forward gives " \
                    f"{', '.join(_outcome(p, o) for p, o in out)}"

    def services(self, nodes, mode: str, timeout_ms: int | None = None,
                 packet: Packet | None = None, recent=None) -> Verdict:
        """Service correctness on the (in-sync) ``nodes``, which must share
        one rule set. ``mode``: ``"cluster_ip"`` — a connection to a Service's
        VIP and port reaches only its usable endpoints, REJECT when it has
        none; ``"node_port"`` — the same through a NodePort on any of these
        nodes; ``"chosen"`` — every usable endpoint is chosen by its
        Service's chain with probability exactly 1/n (:meth:`_chosen`). ``recent`` is these nodes'
        ClientIP-affinity memory, as ``forward`` takes it: a remembered
        client whose backend still has an affinity rule goes there."""
        start = time.perf_counter()
        rules = self.dp.nodes[nodes[0]].rules
        if any(self.dp.nodes[n].rules is not rules for n in nodes):
            raise ValueError("services() wants nodes that share one rule set")
        if mode == "chosen":
            return self._chosen(rules, nodes[0], start, timeout_ms)
        recent = dict(recent or {})
        s, d, a = z3.BitVec("src", 32), z3.BitVec("dst", 32), z3.BitVec("ingress", 16)
        port, proto, j = z3.BitVec("port", 16), z3.BitVec("proto", 2), z3.BitVec("choice", 16)
        facts = [self.by_node(a, lambda i: z3.BoolVal(True), nodes, z3.BoolVal(False)),
                 z3.ULT(proto, _bv(3, 2))] + _pin(packet, s, d, a, port, proto)
        api = list(self.dp.services)
        # The packet's key: its virtual IP (ClusterIP), or its port on one of
        # the node's own addresses (NodePort, when no ClusterIP rule takes it
        # first). Rules and Services are sliced by key: a leaf of the key's
        # trie speaks only of the few rules and Services with that key.
        if mode == "cluster_ip":
            key, width = d, 32
            rule_key = api_key = lambda x: x.vip
            rule_cond = lambda r: z3.And(port == _bv(r.port, 16), proto == _proto(r.proto))
            guard = z3.BoolVal(True)
        else:
            key, width = port, 16
            rule_key = api_key = lambda x: x.node_port
            rule_cond = lambda r: proto == _proto(r.proto)
            cluster_ip = trie(d, 32, [(vip, 32, z3.Or([z3.And(port == _bv(r.port, 16),
                                                               proto == _proto(r.proto))
                                                        for r in rs]))
                                      for vip, rs in _by(rules.services, lambda r: r.vip).items()],
                              z3.BoolVal(False))
            guard = z3.And(self.local_address(a, d), z3.Not(cluster_ip))
        rules_by = _by([r for r in rules.services if rule_key(r)], rule_key)
        api_by = _by([x for x in api if api_key(x)], api_key)
        bad_leaves = []
        for value, ks in api_by.items():
            rs = rules_by.get(value, [])
            takes = _first_match([rule_cond(r) for r in rs])
            none_takes = z3.Not(z3.Or([rule_cond(r) for r in rs])) if rs else z3.BoolVal(True)
            aimed = _first_match([rule_cond(x) for x in ks])
            # the statistic rules pick backend j: one reached with probability > 0
            # (j = the number of backends: no statistic rule matched at all);
            # a client the affinity memory holds skips the statistic rules
            picks = [z3.Implies(z3.And(take, _not_sticky(s, r, recent)),
                                z3.Or([j == _bv(i, 16) for i, _ in _reached(r)]
                                      + ([j == _bv(len(r.backends), 16)]
                                         if _falls_through(r) else [])
                                      or [z3.BoolVal(False)]))
                     for r, take in zip(rs, takes) if r.backends]
            terms = []
            for svc, aim in zip(ks, aimed):
                usable = {e.ip for e in usable_endpoints(svc)}
                wrong = [none_takes]
                for r, take in zip(rs, takes):
                    if not usable:
                        if r.backends:
                            wrong.append(take)
                    elif not r.backends:
                        wrong.append(take)
                    else:
                        off = [j == _bv(i, 16) for i, b in _reached(r)
                               if b.ip not in usable or b.port != svc.target_port]
                        if _falls_through(r):
                            off.append(j == _bv(len(r.backends), 16))
                        stuck = [s == _bv(client) for client, b in _sticky(r, recent)
                                 if b.ip not in usable or b.port != svc.target_port]
                        if off:
                            wrong.append(z3.And(take, _not_sticky(s, r, recent), z3.Or(off)))
                        if stuck:
                            wrong.append(z3.And(take, z3.Or(stuck)))
                terms.append(z3.And(aim, z3.Or(wrong)))
            bad_leaves.append((value, width, z3.And(picks + [z3.Or(terms)])))
        bad = z3.And(guard, trie(key, width, bad_leaves, z3.BoolVal(False)))
        verdict = self._solve(f"services[{mode}]", facts, bad, timeout_ms, start,
                              lambda m: self._service_packet(m, s, d, a, port, proto, mode,
                                                             recent))
        if not verdict.holds or packet is not None:
            return verdict
        key = (id(rules), tuple(nodes), tuple(sorted(recent.items())))
        if key not in self._delivered:
            self._delivered[key] = self.backends_delivered(nodes, timeout_ms, recent)
        reach = self._delivered[key]
        return attrs.evolve(reach, query=f"services[{mode}]",
                            seconds=verdict.seconds + reach.seconds)

    def backends_delivered(self, nodes, timeout_ms=None, recent=None) -> Verdict:
        """Every backend address a rule can pick is delivered to its pod from
        every one of ``nodes``.

        Why this may be asked apart from the header query: after DNAT the
        packet's fate depends on the backend address and the ingress node
        only, not on the header that selected the backend. So "some packet
        is DNATed to t and t is not delivered" splits exactly into "t is a
        backend some packet reaches" (the KUBE-SERVICES rule taking it is
        the first with its key — exact equality, so decided per key) and "t
        is not delivered". One query over a symbolic t then replaces one
        routing formula per Service: the header query stays small."""
        start = time.perf_counter()
        rules = self.dp.nodes[nodes[0]].rules
        a, s, t = z3.BitVec("ingress", 16), z3.BitVec("src", 32), z3.BitVec("backend", 32)
        seen, picked = set(), {}
        for r in rules.services:
            for key in ((r.vip, r.port, r.proto), ("node", r.node_port, r.proto)):
                if key in seen or (key[0] == "node" and not r.node_port):
                    continue
                seen.add(key)
                if not r.backends:
                    continue
                for _, b in _reached(r):
                    picked.setdefault(b.ip, (r, key))
                for _, b in _sticky(r, recent or {}):
                    picked.setdefault(b.ip, (r, key))
        if not picked:
            return Verdict("backends_delivered", PROOF, time.perf_counter() - start)
        facts = [self.by_node(a, lambda i: z3.BoolVal(True), nodes, z3.BoolVal(False)),
                 trie(t, 32, [(ip, 32, z3.BoolVal(True)) for ip in picked], z3.BoolVal(False))]
        ok, _, _ = self.deliver(a, s, t)

        def decode(m):
            node, ip = _val(m, a), _val(m, t)
            r, key = picked[ip]
            nd = self.dp.nodes[node]
            pkt = Packet(nd.ip, r.vip, r.port, r.proto, node) if key[0] != "node" else \
                Packet(nd.ip, nd.ip, r.node_port, r.proto, node)
            return self._service_packet_of(pkt, "cluster_ip" if key[0] != "node" else "node_port",
                                           recent)
        return self._solve("backends_delivered", facts, z3.Not(ok), timeout_ms, start, decode)

    def _service_packet(self, m, s, d, a, port, proto, mode, recent=None):
        pkt = Packet(_val(m, s), _val(m, d), _val(m, port), PROTOCOLS[_val(m, proto)],
                     _val(m, a))
        return self._service_packet_of(pkt, mode, recent)

    def _service_packet_of(self, pkt, mode, recent=None):
        out = forward(self.dp, pkt, recent)
        node = self.dp.nodes[pkt.node]
        svc = next((x for x in self.dp.services
                    if (mode == "cluster_ip" and (x.vip, x.port, x.proto) == (pkt.dst, pkt.port, pkt.proto))
                    or (mode == "node_port" and x.node_port == pkt.port and x.proto == pkt.proto
                        and pkt.dst in node.local_addresses())), None)
        usable = {e.pod for e in usable_endpoints(svc)} if svc else set()
        wrong = True
        if svc is not None:
            if not usable:
                wrong = any(o.kind != REJECTED for p, o in out if p > 0)
            else:
                wrong = any(p > 0 and (o.kind != DELIVERED or o.pod not in usable
                                       or o.port != svc.target_port) for p, o in out) \
                    or sum(p for p, _ in out) != 1
        if not wrong:
            raise EncodingMismatch(f"z3 says {pkt} misbehaves, forward gives "
                                   f"{[(str(p), o.kind, o.pod) for p, o in out]}")
        return pkt, f"{svc.name if svc else '?'}: forward gives " \
                    f"{', '.join(_outcome(p, o) for p, o in out)}; usable {sorted(usable)}"

    def _chosen(self, rules, node, start, timeout_ms=None) -> Verdict:
        """Each usable endpoint of every Service is chosen by the Service's
        KUBE-SVC chain with probability exactly 1/n (n usable endpoints).

        What the query is: a symbolic rule index ``k`` (which of the node's
        KUBE-SERVICES rules) and a symbolic endpoint index ``j`` (which usable
        endpoint of that rule's Service, the API's EndpointSlice read through
        :func:`properties.proxy.usable_endpoints`). For each chain, the
        probability of reaching backend i is a real-arithmetic term — its
        statistic probability times ``1 - p`` of every rule before it, the
        rule probabilities exact rationals read from the compiled chain — and
        the share of endpoint j is the sum of the terms of the backends whose
        DNAT address is j's (which backend points at which endpoint is
        matched here, on concrete addresses). The solver looks for ``k`` and
        ``j`` with a share other than 1/n (``QF_LRA``); unsat is the proof for
        every Service of the rule set, and ``timeout_ms`` bounds it. The
        chains are concrete, so the solver's work is exact rational
        arithmetic over known constants plus the choice of ``k`` and ``j``:
        this proves the distribution of the rules as compiled, not of every
        conceivable chain."""
        by_name = {svc.name: svc for svc in self.dp.services}
        k, j = z3.Int("service"), z3.Int("endpoint")
        consts: dict = {}

        def real(q: Fraction):
            v = consts.get(q)
            if v is None:
                v = consts[q] = z3.RealVal(f"{q.numerator}/{q.denominator}")
            return v
        leaves, usable_of = [], {}
        for idx, r in enumerate(rules.services):
            svc = by_name.get(r.service)
            usable = usable_endpoints(svc) if svc is not None else ()
            if not usable:
                continue
            usable_of[idx] = usable
            reach, miss = [], real(Fraction(1))
            for b in r.backends:
                p = real(Fraction(b.probability))
                reach.append(miss * p)
                miss = miss * (real(Fraction(1)) - p)
            want = real(Fraction(1, len(usable)))
            per = []
            for jj, u in enumerate(usable):
                terms = [reach[i] for i, b in enumerate(r.backends) if b.ip == u.ip]
                share = z3.Sum(terms) if len(terms) > 1 else terms[0] if terms \
                    else real(Fraction(0))
                per.append(z3.And(j == jj, share != want))
            leaves.append(z3.And(k == idx, z3.Or(per)))
        bad = z3.Or(leaves) if leaves else z3.BoolVal(False)

        def decode(m):
            idx = _val(m, k)
            r, usable = rules.services[idx], usable_of[idx]
            u = usable[_val(m, j)]
            pkt = Packet(self.dp.nodes[node].ip, r.vip, r.port, r.proto, node)
            got = sum((p for p, o in forward(self.dp, pkt)
                       if o.kind == DELIVERED and o.pod == u.pod), Fraction(0))
            if got == Fraction(1, len(usable)):
                raise EncodingMismatch(f"z3 says {r.service} picks {show(u.ip)} unevenly; "
                                       f"forward gives it 1/{len(usable)}")
            return pkt, (f"{r.service}: usable endpoint {show(u.ip)} ({u.pod}) is chosen "
                         f"with probability {got}, not 1/{len(usable)}")
        return self._solve("services[chosen]", [], bad, timeout_ms, start, decode,
                           logic="QF_LRA")

    def _solve(self, name, facts, bad, timeout_ms, start, decode, logic="QF_BV") -> Verdict:
        solver = z3.SolverFor(logic)
        if timeout_ms:
            solver.set("timeout", timeout_ms)
        solver.add(*facts)
        solver.add(bad)
        r = solver.check()
        seconds = time.perf_counter() - start
        if r == z3.unsat:
            return Verdict(name, PROOF, seconds)
        if r == z3.unknown:
            return Verdict(name, "unknown", seconds, detail=solver.reason_unknown())
        pkt, detail = decode(solver.model())
        return Verdict(name, FOUND, seconds, pkt, detail)


def _pin(packet, s, d, a, port, proto) -> list:
    if packet is None:
        return []
    return [s == _bv(packet.src), d == _bv(packet.dst), a == _bv(packet.node, 16),
            port == _bv(packet.port, 16), proto == _proto(packet.proto)]


def _by(items, key) -> dict:
    out: dict = {}
    for x in items:
        out.setdefault(key(x), []).append(x)
    return out


def _first_match(conds):
    """For conditions in chain order: 'this one matches and none before'."""
    out, earlier = [], []
    for c in conds:
        out.append(z3.And([c] + [z3.Not(e) for e in earlier]) if earlier else c)
        earlier.append(c)
    return out


def _reached(rule):
    """(index, backend) of the KUBE-SEP rules reached with probability > 0:
    rule i is reached with its own probability times the misses of the rules
    before it (exact rationals: ``fractions.Fraction``)."""
    out = []
    miss = Fraction(1)
    for i, b in enumerate(rule.backends):
        if b.probability * miss > 0:
            out.append((i, b))
        miss *= 1 - b.probability
    return out




def _sticky(rule, recent):
    """(client, backend) for each client the affinity memory sends to a
    backend of ``rule`` that still has its affinity rule."""
    if not rule.affinity:
        return []
    out = []
    for (service, client), ip in recent.items():
        if service == rule.service:
            out += [(client, b) for b in rule.sticky if b.ip == ip][:1]
    return out


def _not_sticky(s, rule, recent):
    clients = [s != _bv(client) for client, _ in _sticky(rule, recent)]
    return z3.And(clients) if clients else z3.BoolVal(True)


def _outcome(p, o) -> str:
    where = o.pod if o.pod else o.reason or o.kind
    return f"{p}: {o.kind} ({where}, source {show(o.src)})"


def _falls_through(rule) -> bool:
    """Whether every statistic rule can miss (the chain's probabilities leave
    a remainder: the last rule of a correct chain matches always)."""
    miss = Fraction(1)
    for b in rule.backends:
        miss *= 1 - b.probability
    return miss > 0


def _val(m, v) -> int:
    return m.eval(v, model_completion=True).as_long()


def rule_groups(dp: Dataplane, nodes) -> list:
    """The given nodes grouped by the rule set they share."""
    return [members for _, members in _groups([dp.nodes[n] for n in nodes], lambda n: n.rules)]

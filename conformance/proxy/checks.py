"""The properties a node's kube-proxy rules must have, judged on a dump for a
symbolic packet (:mod:`.symbolic`), each stated from the Kubernetes
documentation rather than from the rules' author:

``cluster_ip_endpoints``   a connection to a ClusterIP:port whose Service
    has usable endpoints is DNATed to one of them (ready ones; serving
    terminating ones when none is ready, KEP-1669) and forwarded — from a
    pod, from outside, or from the node itself.
``node_port_endpoints``    the same for a NodePort on any local address
    (externalTrafficPolicy Cluster).
``endpoints_chosen_uniformly``  each of the n usable endpoints is chosen
    with probability 1/n (virtual-ips: "kube-proxy ... selects a backend at
    random"); exact rational arithmetic over the kernel's probabilities,
    within n·2^-31, the statistic match's rounding.
``no_endpoints_rejected``  a connection to a Service port without usable
    endpoints is rejected (virtual-ips: iptables mode "rejects" traffic for
    a Service with no endpoints, so clients fail at once).
``pod_to_pod_not_masqueraded``  a pod's packet to another pod, directly or
    through a ClusterIP, keeps its source address: neither MASQUERADE nor
    SNAT to another address (cluster networking: pods communicate "without
    NAT"; source-ip tutorial:
    "Packets sent to ClusterIP from within the cluster are never source
    NAT'd if you're running kube-proxy in iptables mode").
``masquerade_marked``      packets that must be masqueraded carry the
    masquerade mark after nat and are masqueraded: NodePort traffic
    (source-ip: "Packets sent to Services with Type=NodePort are source
    NAT'd by default"), ClusterIP traffic from outside the cluster CIDR
    (kube-proxy --cluster-cidr), and hairpin traffic (a pod reaching itself
    through its Service, which it could not answer unmasqueraded).

How they are asked: the symbolic checks go class of packets by class
(:class:`.symbolic.Slice`: one class per Service VIP, one per NodePort, one
for every other destination), each class's encoding built once and asked
every question about it; the classes cover every packet, so the proof is
for every packet. ``endpoints_chosen_uniformly`` is a QF_LRA query over the
exact path probabilities.

A violation is a model of the negated property: the packet (and random
draws) that shows it. It is replayed through :func:`.interp.replay`, which
names the rules it passed; the offending rule is the one that decided the
packet's fate. A model that the replay does not confirm raises
:class:`EncodingMismatch` (an internal error, exit 70 — never a verdict).
"""

from __future__ import annotations

import time
from fractions import Fraction

import attrs
import z3

from kubemc.conformance.proxy.dump import STAT_ONE, Dump, addr_show
from kubemc.conformance.proxy.interp import (FORWARDED, OUTPUT, PREROUTING, REJECTED, Packet,
                                      distribution, replay)
from kubemc.conformance.proxy.symbolic import (F_FORWARDED, F_REJECTED, PROTO_CODE, Encoding, Slice,
                                        bv, in_block)
from kubemc.model.network.addr import contains, show_cidr
from kubemc.properties.proxy import usable_endpoints

MAX_FINDINGS = 10
#: an address for "a node's own address" in representative packets (TEST-NET-3, RFC 5737)
NODE_ADDR = (203 << 24) | (0 << 16) | (113 << 8) | 10

STATEMENTS = {
    "cluster_ip_endpoints": (
        "a connection to a ClusterIP:port with usable endpoints is DNATed to one of them "
        "and forwarded",
        "kubernetes.io/docs/reference/networking/virtual-ips (iptables proxy mode); "
        "EndpointSlice conditions (discovery.k8s.io/v1); KEP-1669"),
    "node_port_endpoints": (
        "a connection to a NodePort on a local address is DNATed to a usable endpoint",
        "kubernetes.io/docs/concepts/services-networking/service (type NodePort): 'each node "
        "proxies that port into your Service'"),
    "endpoints_chosen_uniformly": (
        "each of the n usable endpoints is chosen with probability 1/n (within n*2^-31)",
        "virtual-ips: 'kube-proxy ... selects a backend at random'; iptables-extensions(8) "
        "statistic --probability; the kernel's xt_statistic rounds p to a multiple of 2^-31"),
    "no_endpoints_rejected": (
        "a connection to a Service port without usable endpoints is rejected",
        "virtual-ips (iptables mode): a Service with no endpoints gets a REJECT rule"),
    "pod_to_pod_not_masqueraded": (
        "a pod's packet to a pod, directly or through a ClusterIP, keeps its source address",
        "kubernetes.io/docs/tutorials/services/source-ip: 'Packets sent to ClusterIP from "
        "within the cluster are never source NAT'd' (iptables mode); seeds: pods communicate "
        "without NAT"),
    "masquerade_marked": (
        "NodePort traffic, ClusterIP traffic from outside the cluster CIDR and hairpin "
        "traffic carry the masquerade mark after nat and are masqueraded",
        "source-ip tutorial: 'Packets sent to Services with Type=NodePort are source NAT'd by "
        "default'; kube-proxy --cluster-cidr, --iptables-masquerade-bit (default 14)"),
}
CHECKS = tuple(STATEMENTS)


class EncodingMismatch(AssertionError):
    """Z3's counterexample does not misbehave when replayed concretely."""


@attrs.frozen
class Finding:
    check: str
    message: str
    packet: Packet | None
    rule: str = ""           # "nat KUBE-SEP-X line 57: -A ..." — the rule that decided
    path: tuple = ()         # refs of the rules the packet passed
    service: str = ""

    def to_json(self) -> dict:
        return {"check": self.check, "message": self.message, "service": self.service,
                "packet": self.packet.to_json() if self.packet else None, "rule": self.rule,
                "path": list(self.path)}


@attrs.frozen
class CheckResult:
    name: str
    ok: bool
    seconds: float
    checked: int
    findings: tuple = ()
    note: str = ""

    @property
    def statement(self) -> str:
        return STATEMENTS[self.name][0]

    @property
    def source(self) -> str:
        return STATEMENTS[self.name][1]

    def to_json(self) -> dict:
        return {"name": self.name, "ok": self.ok, "seconds": round(self.seconds, 4),
                "checked": self.checked, "statement": self.statement, "source": self.source,
                "note": self.note, "findings": [f.to_json() for f in self.findings]}


@attrs.frozen
class Verdict:
    checks: tuple
    services: int
    rules: int
    cluster_cidr: tuple
    build_seconds: float
    notes: tuple = ()

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_json(self) -> dict:
        return {"passed": self.passed, "service_ports": self.services, "rules": self.rules,
                "cluster_cidr": show_cidr(self.cluster_cidr),
                "encode_seconds": round(self.build_seconds, 4),
                "checks": [c.to_json() for c in self.checks], "notes": list(self.notes)}


def _rule_text(rule) -> str:
    return f"{rule.ref}: {rule.text}" if rule is not None else ""


class Checker:
    """Build the encoding of ``dump`` once; :meth:`run` asks every check."""

    def __init__(self, dump: Dump, ports, cluster_cidr, masq_mark: int = 0x4000,
                 timeout_ms: int | None = None, cidr_known: bool = True):
        """``cidr_known`` False: ``cluster_cidr`` is a guess that holds every
        pod address but may be narrower than kube-proxy's; checks that need
        to know what lies *outside* the cluster then leave that case out."""
        self.cidr_known = cidr_known
        self.dump, self.ports, self.cidr = dump, tuple(ports), cluster_cidr
        self.masq_mark, self.timeout_ms = masq_mark, timeout_ms
        #: seconds spent building encodings, summed over the packet classes
        self.build_seconds = 0.0
        self.classes = 0

    # -- packet classes ------------------------------------------------------------
    def _cls(self, sl: Slice):
        """The encoding of one class of packets (:class:`.symbolic.Slice`):
        (encoding, packet, outcome, facts). Facts: what the class pins, a
        local destination is no pod address, and — cosmetic, for readable
        packets — a client has an address and a port."""
        t = time.perf_counter()
        enc = Encoding(self.dump, sl)
        p = enc.packet()
        o = enc.outcome(p)
        facts = enc.well_formed(p) + [
            z3.Implies(p.dst_local, z3.Not(in_block(p.dst, self.cidr))),
            p.src != bv(0), p.sport != bv(0, 16)]
        self.build_seconds += time.perf_counter() - t
        self.classes += 1
        return enc, p, o, facts

    def _ask(self, acc, cls, bad, confirm, case):
        """One question to one class: a model of ``bad`` is a finding
        (confirmed by ``confirm(packet, coins, case)``)."""
        acc["checked"] += 1
        if len(acc["findings"]) >= MAX_FINDINGS:
            return
        t = time.perf_counter()
        enc, p, _, facts = cls
        solver = z3.SolverFor("QF_BV")
        if self.timeout_ms:
            solver.set("timeout", self.timeout_ms)
        solver.add(*facts)
        solver.add(bad)
        r = solver.check()
        if r == z3.sat:
            pkt, coins = enc.decode(solver.model(), p)
            acc["findings"].append(confirm(pkt, coins, case))
        elif r == z3.unknown:
            acc["note"] = f"UNDECIDED: the solver answered unknown ({solver.reason_unknown()})"
        acc["seconds"] += time.perf_counter() - t

    @staticmethod
    def _key(cls, sp, via_node_port=False):
        p = cls[1]
        proto = p.proto == bv(PROTO_CODE[sp.proto], 2)
        if via_node_port:
            return z3.And(p.dst_local, p.dport == bv(sp.node_port, 16), proto)
        return z3.And(p.dst == bv(sp.vip), p.dport == bv(sp.port, 16), proto,
                      z3.Not(p.dst_local))

    @staticmethod
    def _lands_in(cls, eps):
        o = cls[2]
        return z3.And(o.fate == bv(F_FORWARDED, 2),
                      z3.Or([z3.And(o.dst == bv(e.ip), o.dport == bv(e.port, 16)) for e in eps]))

    def _out(self, pkt, coins):
        return replay(self.dump, pkt, coins)

    # -- confirmations: the solver's packet replayed, then described --------------------
    def _confirm_endpoints(self, name):
        def confirm(pkt, coins, sp):
            out = self._out(pkt, coins)
            eps = usable_endpoints(sp)
            good = out.fate == FORWARDED and any((out.dst, out.dport) == (e.ip, e.port) for e in eps)
            if good:
                raise EncodingMismatch(f"{name}: z3's packet {pkt} lands on an endpoint")
            want = ", ".join(f"{addr_show(e.ip)}:{e.port}" for e in eps)
            dnat = out.nat_rule()
            via = next((r for r in reversed(out.path) if dnat is not None
                        and r.target == dnat.chain), None)
            how = f" (reached by {via.ref})" if via is not None else \
                "; no DNAT rule took it" if dnat is None else ""
            return Finding(name, f"{sp.key}: packet {pkt} is {out.describe()}{how}; the usable "
                                 f"endpoints are {want}", pkt,
                           _rule_text(dnat or out.decided_by), tuple(r.ref for r in out.path),
                           sp.key)
        return confirm

    def _confirm_rejected(self, pkt, coins, sp):
        out = self._out(pkt, coins)
        if out.fate == REJECTED:
            raise EncodingMismatch(f"no_endpoints_rejected: {pkt} is rejected")
        last = next((r for r in reversed(out.path) if r.table == "filter"), None) \
            or out.decided_by
        return Finding("no_endpoints_rejected",
                       f"{sp.key} has no usable endpoints, but packet {pkt} is "
                       f"{out.describe()}: no rule rejected it (the rule named is the last "
                       "filter rule it passed)", pkt, _rule_text(last),
                       tuple(r.ref for r in out.path), sp.key)

    def _confirm_pod_to_pod(self, pkt, coins, _):
        out = self._out(pkt, coins)
        if not (out.source_rewritten(pkt.src) and contains(self.cidr, out.dst)
                and out.dst != pkt.src):
            raise EncodingMismatch(f"pod_to_pod_not_masqueraded: {pkt} is {out.describe()}")
        masq = next((r for r in reversed(out.path) if r.target in ("MASQUERADE", "SNAT")), None)
        return Finding("pod_to_pod_not_masqueraded",
                       f"packet {pkt} from a pod to pod address {addr_show(out.dst)} is "
                       f"{out.describe()}", pkt, _rule_text(masq),
                       tuple(r.ref for r in out.path))

    def _confirm_marked(self, pkt, coins, case):
        kind, sp = case
        out = self._out(pkt, coins)
        if out.mark & self.masq_mark and out.masqueraded:
            raise EncodingMismatch(f"masquerade_marked: {pkt} is marked and masqueraded")
        why = {"outside": "from outside the cluster CIDR to a ClusterIP",
               "hairpin": "from an endpoint to itself through its Service (hairpin)",
               "nodeport": "to a NodePort"}[kind]
        state = ("not marked" if not out.mark & self.masq_mark else "marked") + \
            (", masqueraded" if out.masqueraded else ", not masqueraded")
        # the entry of the chain that should have marked it: the jump to the
        # NodePort's chain, to the Service's chain, or to the endpoint's chain
        prefix = {"nodeport": "KUBE-EXT", "outside": "KUBE-SVC", "hairpin": "KUBE-SEP"}[kind]
        jump = next((r for r in out.path if r.target.startswith(prefix)), None) \
            or out.nat_rule() or out.decided_by
        return Finding("masquerade_marked",
                       f"{sp.key}: packet {pkt} {why} must be marked {self.masq_mark:#x} and "
                       f"masqueraded; it is {state} ({out.describe()})", pkt,
                       _rule_text(jump), tuple(r.ref for r in out.path), sp.key)

    # -- the symbolic checks, one packet class at a time ------------------------------------
    def _symbolic(self, wanted) -> dict:
        """Every question of the wanted checks, asked class by class: a
        class's encoding is built once, asked everything, then dropped."""
        acc = {n: {"checked": 0, "findings": [], "note": "", "seconds": 0.0} for n in wanted}
        by_vip: dict = {}
        by_np: dict = {}
        for sp in self.ports:
            by_vip.setdefault(sp.vip, []).append(sp)
            if sp.node_port and not sp.external_local:
                by_np.setdefault(sp.node_port, []).append(sp)
        ep_confirm = {n: self._confirm_endpoints(n)
                      for n in ("cluster_ip_endpoints", "node_port_endpoints")}
        for vip, sps in by_vip.items():
            cls = self._cls(Slice(dst=vip, local=False))
            p, o = cls[1], cls[2]
            forwarded = o.fate == bv(F_FORWARDED, 2)
            marked = z3.And(o.mark & bv(self.masq_mark) != bv(0), o.masqueraded)
            for sp in sps:
                eps = usable_endpoints(sp)
                key = self._key(cls, sp)
                if eps and "cluster_ip_endpoints" in acc:
                    self._ask(acc["cluster_ip_endpoints"], cls,
                              z3.And(key, z3.Not(self._lands_in(cls, eps))),
                              ep_confirm["cluster_ip_endpoints"], sp)
                if not eps and "no_endpoints_rejected" in acc:
                    self._ask(acc["no_endpoints_rejected"], cls,
                              z3.And(key, o.fate != bv(F_REJECTED, 2)), self._confirm_rejected, sp)
                if eps and "masquerade_marked" in acc:
                    if self.cidr_known:
                        self._ask(acc["masquerade_marked"], cls, z3.And(
                            z3.Not(p.output), z3.Not(in_block(p.src, self.cidr)), key, forwarded,
                            z3.Not(marked)), self._confirm_marked, ("outside", sp))
                    self._ask(acc["masquerade_marked"], cls, z3.And(
                        z3.Not(p.output), in_block(p.src, self.cidr), key, forwarded,
                        o.dst == p.src, z3.Not(marked)), self._confirm_marked, ("hairpin", sp))
            if "pod_to_pod_not_masqueraded" in acc:
                self._ask(acc["pod_to_pod_not_masqueraded"], cls, self._pod_to_pod(cls),
                          self._confirm_pod_to_pod, None)
        if "pod_to_pod_not_masqueraded" in acc:
            cls = self._cls(Slice(other_dst=True, local=False))
            self._ask(acc["pod_to_pod_not_masqueraded"], cls, self._pod_to_pod(cls),
                      self._confirm_pod_to_pod, None)
        for np_, sps in by_np.items():
            if not ({"node_port_endpoints", "no_endpoints_rejected", "masquerade_marked"}
                    & set(acc)):
                break
            # a NodePort packet to a local address no rule names (TEST-NET-3)
            cls = self._cls(Slice(dst=NODE_ADDR, dport=np_, local=True))
            p, o = cls[1], cls[2]
            forwarded = o.fate == bv(F_FORWARDED, 2)
            marked = z3.And(o.mark & bv(self.masq_mark) != bv(0), o.masqueraded)
            for sp in sps:
                eps = usable_endpoints(sp)
                key = self._key(cls, sp, True)
                if eps and "node_port_endpoints" in acc:
                    self._ask(acc["node_port_endpoints"], cls,
                              z3.And(key, z3.Not(self._lands_in(cls, eps))),
                              ep_confirm["node_port_endpoints"], sp)
                if not eps and "no_endpoints_rejected" in acc:
                    # judged for packets that arrive ("externally-visible service
                    # portals"); the node's own packet to its own NodePort is
                    # delivered locally, where nothing listens
                    self._ask(acc["no_endpoints_rejected"], cls, z3.And(
                        z3.Not(p.output), key, o.fate != bv(F_REJECTED, 2)),
                        self._confirm_rejected, sp)
                if eps and "masquerade_marked" in acc:
                    self._ask(acc["masquerade_marked"], cls, z3.And(
                        z3.Not(p.output), key, forwarded, z3.Not(marked)),
                        self._confirm_marked, ("nodeport", sp))
        return acc

    def _pod_to_pod(self, cls):
        p, o = cls[1], cls[2]
        return z3.And(z3.Not(p.output), z3.Not(p.dst_local), in_block(p.src, self.cidr),
                      in_block(o.dst, self.cidr), o.dst != p.src, o.fate == bv(F_FORWARDED, 2),
                      o.src_rewritten)

    def endpoints_chosen_uniformly(self) -> CheckResult:
        """Shares as exact rational terms; a QF_LRA query for a Service port
        and endpoint whose share is off 1/n by more than n*2^-31.

        For each port, the packets judged are a ClusterIP packet that
        arrives and one the node sends, and a NodePort packet to a local
        address, each from one source of every class of sources the rules
        these packets can meet tell apart (:func:`source_classes`: every
        ``-s`` prefix, inside and outside — so a pod client, a client
        outside the cluster, an endpoint reaching its own Service are all
        judged); :func:`.interp.distribution` gives their paths
        with the draws on each, and a path's probability is the product of
        its draws' p or 1-p as Z3 real terms, built from the dump's rules."""
        start = time.perf_counter()
        src = _outside(self.cidr)
        pod = _inside(self.cidr)
        reals: dict = {}

        def real(q: Fraction):
            v = reals.get(q)
            if v is None:
                v = reals[q] = z3.RealVal(f"{q.numerator}/{q.denominator}")
            return v
        one = real(Fraction(1))
        leaves, table = [], []
        for sp in self.ports:
            eps = usable_endpoints(sp)
            if not eps:
                continue
            pkts = []
            targets = [(sp.vip, sp.port, False)]
            if sp.node_port and not sp.external_local:
                targets.append((NODE_ADDR, sp.node_port, True))
            seen = [(e.ip, e.port) for e in eps]
            for dst, dport, local in targets:
                srcs = source_classes(self.dump, [(dst, dport)] + seen,
                                      (src, pod, NODE_ADDR))
                for a in srcs:
                    pkts.append(Packet(a, dst, sp.proto, dport, PREROUTING, local))
                if not local:
                    pkts += [Packet(a, dst, sp.proto, dport, OUTPUT) for a in srcs]
            n = len(eps)
            want = real(Fraction(1, n))
            eps_ = real(Fraction(n, STAT_ONE))
            for pkt in pkts:
                dist = distribution(self.dump, pkt)
                k = len(table)
                table.append((sp, pkt, dist))
                per = []
                for j, e in enumerate(eps):
                    terms = []
                    for _, out in dist:
                        if out.fate == FORWARDED and (out.dst, out.dport) == (e.ip, e.port):
                            term = one
                            for _, hit, chance in out.coins:
                                term = term * (real(chance) if hit else one - real(chance))
                            terms.append(term)
                    share = z3.Sum(terms) if len(terms) > 1 else terms[0] if terms \
                        else real(Fraction(0))
                    per.append(z3.And(self._j == j, z3.Or(share - want > eps_,
                                                          want - share > eps_)))
                leaves.append(z3.And(self._k == k, z3.Or(per)))
        findings, note = [], ""
        solver = z3.SolverFor("QF_LRA")
        if self.timeout_ms:
            solver.set("timeout", self.timeout_ms)
        if leaves:
            solver.add(z3.Or(leaves))
        while leaves and len(findings) < MAX_FINDINGS:
            r = solver.check()
            if r == z3.unsat:
                break
            if r == z3.unknown:
                note = f"UNDECIDED: the solver answered unknown ({solver.reason_unknown()})"
                break
            m = solver.model()
            k, j = m.eval(self._k).as_long(), m.eval(self._j).as_long()
            findings.append(self._uneven(*table[k], j))
            sp = table[k][0]
            solver.add(z3.And([self._k != kk for kk, t in enumerate(table) if t[0] is sp]))
        return CheckResult("endpoints_chosen_uniformly", not findings and not note,
                           time.perf_counter() - start, len(table), tuple(findings), note)

    _k = z3.Int("port_case")
    _j = z3.Int("endpoint")

    def _uneven(self, sp, pkt, dist, j) -> Finding:
        eps = usable_endpoints(sp)
        e = eps[j]
        mine = [(p, o) for p, o in dist
                if o.fate == FORWARDED and (o.dst, o.dport) == (e.ip, e.port)]
        got = sum((p for p, _ in mine), Fraction(0))
        n = len(eps)
        if abs(got - Fraction(1, n)) <= Fraction(n, STAT_ONE):
            raise EncodingMismatch(f"z3 says {sp.key} picks {addr_show(e.ip)} unevenly")
        rule = None
        if mine:
            best = max(mine, key=lambda t: t[0])[1]
            rule = next((r for r in reversed(best.path) if r.probability is not None), None) \
                or best.nat_rule()
        else:
            # no path reaches the endpoint: name the chain's statistic rule, or
            # (a chain with one choice left) the jump that made the choice
            for _, o in dist:
                rule = next((r for r in o.path if r.probability is not None), None)
                if rule:
                    break
            if rule is None and dist:
                o = dist[0][1]
                dnat = o.nat_rule()
                rule = next((r for r in o.path if dnat is not None and r.target == dnat.chain),
                            dnat)
        others = ", ".join(f"{addr_show(o.dst)}:{o.dport} {float(p):.4f}" for p, o in dist)
        return Finding("endpoints_chosen_uniformly",
                       f"{sp.key}: endpoint {addr_show(e.ip)}:{e.port} is chosen with probability "
                       f"{float(got):.6f}, not 1/{n} ({1 / n:.6f}), for packet {pkt} "
                       f"(all outcomes: {others})", pkt, _rule_text(rule),
                       tuple(r.ref for r in (mine[0][1].path if mine else dist[0][1].path)),
                       sp.key)

    def run(self, only=None) -> Verdict:
        wanted = [n for n in CHECKS if not only or n in only]
        acc = self._symbolic([n for n in wanted if n != "endpoints_chosen_uniformly"])
        results = []
        for name in wanted:
            if name == "endpoints_chosen_uniformly":
                results.append(self.endpoints_chosen_uniformly())
                continue
            a = acc[name]
            note = a["note"]
            if name == "masquerade_marked" and not self.cidr_known and not note:
                note = "PARTLY: traffic from outside the cluster CIDR not judged: give --cluster-cidr"
            results.append(CheckResult(name, not a["findings"] and not note.startswith("UNDECIDED"),
                                       a["seconds"], a["checked"], tuple(a["findings"]), note))
        return Verdict(tuple(results), len(self.ports), sum(1 for _ in self.dump.rules()),
                       self.cidr, self.build_seconds)


def _inside(block) -> int:
    """An address inside ``block`` (a pod's, when it is the cluster CIDR)."""
    base, plen = block
    return base + (5 if plen <= 29 else 0)


def source_classes(dump: Dump, dests, prefer=()) -> list:
    """One source address per class of sources that the rules can tell
    apart, for packets to ``dests`` ([(address, port)]: the destination as
    sent and after DNAT).

    The source matches (``-s``, negated or not) of every rule such a packet
    can meet — in the nat and filter chains reachable from the built-in
    ones, the big chains cut to the rules for these destinations
    (:func:`.symbolic.sliced_rules`) — are intervals of addresses; their
    ends cut the address space into pieces inside each of which every
    ``-s`` match answers the same, so one address per piece stands for all
    (each piece's first address, or an address of ``prefer`` inside it)."""
    from kubemc.conformance.proxy.symbolic import sliced_rules

    cuts = {0}
    for tname, hooks in (("nat", ("PREROUTING", "OUTPUT", "POSTROUTING")),
                         ("filter", ("INPUT", "FORWARD", "OUTPUT"))):
        table = dump.tables.get(tname)
        if table is None:
            continue
        seen: set = set()
        todo = [h for h in hooks if h in table.chains]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            ch = table.chains[name]
            rules = {}
            for d, port in dests:
                for r in sliced_rules(ch, Slice(dst=d, dport=port)):
                    rules[r.line] = r
            for r in rules.values():
                if r.src is not None:
                    base, plen = r.src.block
                    size = 1 << (32 - plen)
                    lo = base & ~(size - 1) & 0xFFFFFFFF
                    cuts.add(lo)
                    if lo + size < 1 << 32:
                        cuts.add(lo + size)
                if r.target in table.chains:
                    todo.append(r.target)
    ends = sorted(cuts) + [1 << 32]
    out = []
    for lo, hi in zip(ends, ends[1:]):
        out.append(next((a for a in prefer if lo <= a < hi), lo))
    return out


def _outside(block) -> int:
    """An address outside ``block`` to stand for a client outside the cluster."""
    for cand in ((198 << 24) | (51 << 16) | (100 << 8) | 7, (192 << 24) | (0 << 16) | (2 << 8) | 7):
        if not contains(block, cand):
            return cand
    return 0x0A000001 if not contains(block, 0x0A000001) else 0xC0A80001

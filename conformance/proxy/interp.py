"""Netfilter's traversal of a parsed dump, for one concrete packet: the
executable semantics that the Z3 encoding (:mod:`.symbolic`) mirrors and is
tested against, and the answer the live run compares real packets with.

The order (netfilter's hooks, iptables(8) "TABLES", the packet flow of
netfilter.org's documentation; mangle and raw are not judged):

* a packet that arrives on an interface: nat PREROUTING, then the routing
  decision — an address of the node's own: filter INPUT; otherwise filter
  FORWARD, then nat POSTROUTING;
* a packet the node itself sends: nat OUTPUT, filter OUTPUT, nat POSTROUTING.

Inside a chain the rules are tried in order. A rule whose matches all hold
applies its target: a user chain is traversed and, when it ends or hits
RETURN, the calling chain goes on with its next rule; MARK and LOG go on;
ACCEPT ends the table for this hook; DNAT, SNAT, MASQUERADE end the nat
table for this hook (rewriting the packet); DROP and REJECT end the packet.
A built-in chain that runs out applies its policy.

``-m statistic --mode random`` is where the answer becomes a distribution:
:func:`distribution` follows both branches of every such rule it reaches,
weighting them with the kernel's probability (exact rationals, see
:mod:`.dump`); :func:`replay` follows the branches a given choice of
*coins* names (what a Z3 model gives). A coin is named by the rule and the
chain of rules that called it, so a rule reached twice draws twice.

What the node's state adds to a packet: ``dst_local`` (its destination is
one of the node's addresses, ``-m addrtype --dst-type LOCAL``), the
``-m recent`` lists that remember its source, its interfaces. A connection's
first packet is ``NEW`` to conntrack.
"""

from __future__ import annotations

from fractions import Fraction

import attrs

from kubemc.conformance.proxy.dump import STAT_ONE, Dump, Rule, addr_show
from kubemc.model.network.addr import contains

ONE = Fraction(1)
FORWARDED, LOCAL, REJECTED, DROPPED = "forwarded", "local", "rejected", "dropped"
PREROUTING, OUTPUT = "prerouting", "output"


@attrs.frozen(slots=True)
class Packet:
    """The first packet of a connection as the node sees it."""

    src: int
    dst: int
    proto: str
    dport: int
    hook: str = PREROUTING
    dst_local: bool = False
    sport: int = 40000
    in_iface: str = "eth0"
    out_iface: str = "eth0"
    recent: frozenset = frozenset()

    def __str__(self) -> str:
        where = "sent by the node" if self.hook == OUTPUT else f"arriving on {self.in_iface}"
        local = ", a local address" if self.dst_local else ""
        return (f"{addr_show(self.src)}:{self.sport} -> {addr_show(self.dst)}:{self.dport}/"
                f"{self.proto} ({where}{local})")

    def to_json(self) -> dict:
        return {"src": addr_show(self.src), "dst": addr_show(self.dst), "proto": self.proto,
                "sport": self.sport, "dport": self.dport, "hook": self.hook,
                "dst_local": self.dst_local, "in_iface": self.in_iface,
                "recent": sorted(self.recent)}


@attrs.frozen(slots=True)
class Flow:
    """The packet's header as the rules change it, and what each table said."""

    dst: int
    dport: int
    mark: int = 0
    dst_local: bool = False
    verdict: str = ""           # the current table's ending target, if any
    snat: int | None = None     # SNAT's address; -1 for MASQUERADE
    path: tuple = ()            # rules whose target applied, in order
    coins: tuple = ()           # (coin name, hit?) drawn on the way


@attrs.frozen(slots=True)
class Traversal:
    """One packet's way through the dump: its fate, where it ends up addressed,
    and the rules and coins that took it there (:class:`.symbolic.SymTraversal`
    is the same for a symbolic packet)."""

    fate: str                   # forwarded / local / rejected / dropped
    dst: int
    dport: int
    masqueraded: bool
    snat: int | None            # the SNAT address, -1 masquerade, None unchanged
    mark: int                   # the mark after nat PREROUTING / OUTPUT
    path: tuple
    coins: tuple

    @property
    def decided_by(self) -> Rule | None:
        """The last rule that ended a table's traversal (the DNAT, REJECT…)."""
        for r in reversed(self.path):
            if r.target in ("DNAT", "REJECT", "DROP", "MASQUERADE", "SNAT"):
                return r
        return self.path[-1] if self.path else None

    def source_rewritten(self, src: int) -> bool:
        """Whether the receiver sees a source other than ``src``: MASQUERADE
        (the outgoing interface's address), or SNAT to another address
        (iptables-extensions(8) SNAT: "the source address of the packet
        should be modified"; an address already in ``--to-source`` is kept)."""
        return self.masqueraded or (self.snat is not None and self.snat != src)

    def nat_rule(self) -> Rule | None:
        return next((r for r in reversed(self.path) if r.target == "DNAT"), None)

    def describe(self) -> str:
        where = {FORWARDED: f"forwarded to {addr_show(self.dst)}:{self.dport}",
                 LOCAL: f"delivered to the node at {addr_show(self.dst)}:{self.dport}",
                 REJECTED: "rejected", DROPPED: "dropped"}[self.fate]
        if self.masqueraded:
            where += ", masqueraded"
        elif self.snat is not None:
            where += f", SNAT to {addr_show(self.snat)}"
        return where


def _static(rule: Rule, pkt: Packet, flow: Flow, recent: frozenset) -> bool:
    """Every match of ``rule`` but the statistic one."""
    if rule.src is not None and contains(rule.src.block, pkt.src) == rule.src.negated:
        return False
    if rule.dst is not None and contains(rule.dst.block, flow.dst) == rule.dst.negated:
        return False
    if rule.proto is not None and (rule.proto[0] == pkt.proto) == rule.proto[1]:
        return False
    if rule.in_iface is not None and (pkt.hook == OUTPUT or not rule.in_iface.matches(pkt.in_iface)):
        return False
    if rule.out_iface is not None and not rule.out_iface.matches(pkt.out_iface):
        return False
    if rule.dport is not None and not rule.dport.matches(flow.dport):
        return False
    if rule.sport is not None and not rule.sport.matches(pkt.sport):
        return False
    if rule.mark is not None and not rule.mark.matches(flow.mark):
        return False
    if rule.dst_type is not None and (rule.dst_type[0] == "LOCAL" and flow.dst_local) \
            == rule.dst_type[1]:
        return False
    if rule.src_type is not None and (rule.src_type[0] == "LOCAL" and pkt.hook == OUTPUT) \
            == rule.src_type[1]:
        return False
    if rule.ctstate is not None and ("NEW" in rule.ctstate[0]) == rule.ctstate[1]:
        return False
    if rule.recent is not None:
        command, name, neg = rule.recent
        hit = True if command == "set" else name in recent
        if hit == neg:
            return False
    return True


_INDEX: dict = {}


def candidates(chain, dst: int) -> tuple:
    """The rules of ``chain`` that can match a packet to ``dst``, in order.

    Why: KUBE-SERVICES holds a rule per Service port; scanning 10,000 rules
    for each of 10,000 packets is 10^8 match tests. Rules with a
    non-negated ``-d ADDR/32`` are indexed by that address, the others kept
    for every destination; merging the two by line keeps the chain's order."""
    if len(chain.rules) < 32:
        return chain.rules
    idx = _INDEX.get(id(chain))
    if idx is None or idx[0] is not chain:
        exact: dict = {}
        rest = []
        for r in chain.rules:
            if r.dst is not None and not r.dst.negated and r.dst.block[1] == 32:
                exact.setdefault(r.dst.block[0], []).append(r)
            else:
                rest.append(r)
        idx = _INDEX[id(chain)] = (chain, exact, tuple(rest))
        if len(_INDEX) > 4096:
            _INDEX.clear()
            _INDEX[id(chain)] = idx
    _, exact, rest = idx
    hit = exact.get(dst)
    if not hit:
        return rest
    return tuple(sorted(hit + list(rest), key=lambda r: r.line))


def coin_name(stack: tuple, rule: Rule) -> str:
    """The name of the random draw ``rule`` makes when reached through ``stack``."""
    return "/".join(f"{r.table}:{r.line}" for r in stack + (rule,))


class _Run:
    def __init__(self, dump: Dump, pkt: Packet, coins: dict | None):
        self.dump, self.pkt, self.coins = dump, pkt, coins

    def chain(self, table: str, name: str, p, f: Flow, stack=()):
        """The branches leaving chain ``name`` entered with probability ``p``
        and flow ``f``: ``[(probability, flow, ended)]``. Branches are
        followed one at a time (they never meet again); the rules tried are
        :func:`candidates` for the flow's destination, in chain order."""
        t = self.dump.tables.get(table)
        chain = t.chains.get(name) if t else None
        if chain is None:
            return [(p, f, False)]
        rules = candidates(chain, f.dst)
        out = []
        self._walk(table, chain, rules, 0, p, f, stack, out)
        return out

    def _walk(self, table, chain, rules, i, p, f, stack, out):
        while i < len(rules):
            rule = rules[i]
            i += 1
            if not _static(rule, self.pkt, f, self.pkt.recent):
                continue
            draw = None
            if rule.probability is not None and rule.probability >= STAT_ONE:
                pass                    # p = 1: the kernel's test always holds
            elif rule.probability == 0:
                continue                # p = 0: never
            elif rule.probability is not None:
                cn = coin_name(stack, rule)
                chance = rule.chance()
                if self.coins is None:
                    hit_p, miss_p = p * chance, p * (1 - chance)
                else:
                    took = bool(self.coins.get(cn, False))
                    hit_p, miss_p = (p, Fraction(0)) if took else (Fraction(0), p)
                if miss_p:
                    self._walk(table, chain, rules, i, miss_p,
                               attrs.evolve(f, coins=f.coins + ((cn, False, chance),)), stack, out)
                if not hit_p:
                    return
                p, draw = hit_p, (cn, True, chance)
            g = attrs.evolve(f, path=f.path + (rule,), coins=f.coins + ((draw,) if draw else ()))
            results = self.target(table, rule, p, g, stack)
            cont = [(q, h) for q, h, ended in results if not ended]
            for q, h, ended in results:
                if ended:
                    out.append((q, self._policy(chain, h), True))
            if len(cont) == 1:
                p, f = cont[0]
                continue
            for q, h in cont:
                self._walk(table, chain, rules, i, q, h, stack, out)
            return
        if chain.policy is not None:
            out.append((p, attrs.evolve(f, verdict=chain.policy), True))
        else:
            out.append((p, f, False))

    @staticmethod
    def _policy(chain, f):
        """RETURN from a built-in chain applies the chain's policy."""
        if chain.policy is not None and f.verdict == "RETURN":
            return attrs.evolve(f, verdict=chain.policy)
        return f

    def target(self, table, rule, p, f, stack):
        t = rule.target
        if t in ("", "LOG"):
            return [(p, f, False)]
        if t == "MARK":
            return [(p, attrs.evolve(f, mark=rule.set_mark.apply(f.mark)), False)]
        if t == "RETURN":
            return [(p, attrs.evolve(f, verdict="RETURN"), True)]
        if t in ("ACCEPT", "DROP", "REJECT"):
            return [(p, attrs.evolve(f, verdict=t), True)]
        if t == "DNAT":
            port = rule.to_port if rule.to_port is not None else f.dport
            local = f.dst_local and rule.to_ip == f.dst
            return [(p, attrs.evolve(f, verdict=t, dst=rule.to_ip, dport=port, dst_local=local),
                     True)]
        if t == "SNAT":
            return [(p, attrs.evolve(f, verdict=t, snat=rule.to_ip), True)]
        if t == "MASQUERADE":
            return [(p, attrs.evolve(f, verdict=t, snat=-1), True)]
        out = []
        for q, h, ended in self.chain(table, t, p, f, stack + (rule,)):
            if ended and h.verdict == "RETURN":
                out.append((q, attrs.evolve(h, verdict=""), False))
            else:
                out.append((q, h, ended))
        return out

    def table(self, table, hook, br):
        """Run one built-in chain; the flows after it, the table's verdict
        cleared (ACCEPT and RETURN end the table, not the packet)."""
        out = []
        for q, f in br:
            for r, g, _ in self.chain(table, hook, q, f):
                out.append((r, g))
        return out

    def packet(self):
        pkt = self.pkt
        start = Flow(pkt.dst, pkt.dport, 0, pkt.dst_local)
        first = "PREROUTING" if pkt.hook == PREROUTING else "OUTPUT"
        results = []
        for p, f in self.table("nat", first, [(ONE, start)]):
            if f.verdict in ("DROP", "REJECT"):
                results.append((p, self._end(f, DROPPED if f.verdict == "DROP" else REJECTED, f.mark)))
                continue
            mark = f.mark
            f = attrs.evolve(f, verdict="")
            if pkt.hook == PREROUTING:
                fchain = "INPUT" if f.dst_local else "FORWARD"
            else:
                fchain = "OUTPUT"
            for q, g in self.table("filter", fchain, [(p, f)]):
                if g.verdict in ("DROP", "REJECT"):
                    results.append((q, self._end(g, DROPPED if g.verdict == "DROP" else REJECTED,
                                                 mark)))
                    continue
                g = attrs.evolve(g, verdict="")
                if pkt.hook == PREROUTING and g.dst_local:
                    results.append((q, self._end(g, LOCAL, mark)))
                    continue
                for r, h in self.table("nat", "POSTROUTING", [(q, g)]):
                    if h.verdict in ("DROP", "REJECT"):
                        results.append((r, self._end(h, DROPPED, mark)))
                    else:
                        results.append((r, self._end(h, LOCAL if h.dst_local else FORWARDED,
                                                     mark)))
        return results

    @staticmethod
    def _end(f: Flow, fate, mark) -> Traversal:
        return Traversal(fate, f.dst, f.dport, f.snat == -1, f.snat, mark, f.path, f.coins)


def distribution(dump: Dump, pkt: Packet) -> list:
    """``[(probability, Traversal)]`` over every branch of the statistic rules
    the packet reaches; the probabilities sum to 1."""
    return [(p, o) for p, o in _Run(dump, pkt, None).packet() if p]


def replay(dump: Dump, pkt: Packet, coins: dict) -> Traversal:
    """The one outcome when the statistic rules draw as ``coins`` says
    (a name missing from ``coins`` misses)."""
    out = [(p, o) for p, o in _Run(dump, pkt, coins).packet() if p]
    assert len(out) == 1, out
    return out[0][1]


def landing(outcomes) -> dict:
    """``(fate, dst, dport, masqueraded) -> probability``, summed."""
    out: dict = {}
    for p, o in outcomes:
        key = (o.fate, o.dst, o.dport, o.masqueraded)
        out[key] = out.get(key, 0) + p
    return out

"""The traversal of :mod:`.interp` as Z3 terms over a *symbolic* packet.

Every header field the rules can test is a variable: source and
destination (32-bit vectors), protocol, ports, whether the node sent the
packet (OUTPUT) or it arrived (PREROUTING), whether the destination is a
local address, the interfaces, the ``-m recent`` lists that remember the
source; each random draw of a statistic rule is a Boolean *coin*, named as
:func:`.interp.coin_name` names it. The dump is concrete, so the result is
a handful of terms — the packet's fate, its destination and port after
DNAT, its mark after the nat table, whether POSTROUTING masqueraded it or
SNATed it (and to what), so whether the receiver sees another source —
and a property is one satisfiability query: a model of "packet and coins
such that the property fails" is a counterexample, which
:mod:`.checks` replays through :func:`.interp.replay` before reporting it
(a disagreement is an internal error, never a verdict).

Why sequential ``If`` chains and not one formula per path: a chain is
walked once, each rule guarding its effect with "no earlier rule of this
chain ended or returned, and my matches hold"; the terms grow with the
number of rules, never with the number of paths.
"""

from __future__ import annotations

import attrs
import z3

from kubemc.conformance.proxy.dump import STAT_ONE, Dump, Rule
from kubemc.conformance.proxy.interp import coin_name

PROTO_CODE = {"TCP": 0, "UDP": 1, "SCTP": 2, "other": 3}
V_NONE, V_ACCEPT, V_DROP, V_REJECT, V_DNAT, V_SNAT, V_MASQ = range(7)
CODE = {"ACCEPT": V_ACCEPT, "DROP": V_DROP, "REJECT": V_REJECT}
FATES = ("forwarded", "local", "rejected", "dropped")
F_FORWARDED, F_LOCAL, F_REJECTED, F_DROPPED = range(4)
OTHER_IFACE = "kmc-other0"


def bv(v: int, w: int = 32):
    return z3.BitVecVal(v, w)


def in_block(x, block) -> z3.BoolRef:
    base, plen = block
    if plen == 0:
        return z3.BoolVal(True)
    if plen == 32:
        return x == bv(base)
    return z3.Extract(31, 32 - plen, x) == bv(base >> (32 - plen), plen)


@attrs.define
class SymPacket:
    src: z3.BitVecRef
    dst: z3.BitVecRef
    proto: z3.BitVecRef
    sport: z3.BitVecRef
    dport: z3.BitVecRef
    output: z3.BoolRef
    dst_local: z3.BoolRef
    in_iface: z3.BitVecRef
    out_iface: z3.BitVecRef
    recent: dict


@attrs.frozen
class Flow:
    dst: object
    dport: object
    mark: object
    dst_local: object
    verdict: object
    snat: object

    def ite(self, c, other: Flow) -> Flow:
        """``self`` where ``c`` holds, else ``other`` (fields that are the same
        Python object are not wrapped)."""
        return Flow(*(a if a is b else z3.If(c, a, b)
                      for a, b in zip(attrs.astuple(self, recurse=False),
                                      attrs.astuple(other, recurse=False))))


@attrs.frozen
class Slice:
    """A class of packets one encoding speaks of: ``dst`` / ``dport`` pinned
    to a value, ``local`` pinned, or ``other_dst``: the destination is none
    of the addresses the nat table's large chains match exactly (the
    Service VIPs). The classes used by :mod:`.checks` cover every packet.

    Why: in the nat table's first chain the packet's destination and port
    are still its own (only an ending rule rewrites them), so a rule whose
    ``-d``/``--dport`` cannot match the class, or that needs ``--dst-type
    LOCAL`` of a non-local packet, is left out — exactly, not as an
    approximation. KUBE-SERVICES with 10,000 Services then contributes the
    few rules of one VIP to each encoding, and the terms no longer grow
    with the number of Services."""

    dst: int | None = None
    dport: int | None = None
    local: bool | None = None
    other_dst: bool = False


_IDX: dict = {}
_TAILS: dict = {}


def _index(chain):
    """(by exact /32 destination, by exact destination port, the rest)."""
    got = _IDX.get(id(chain))
    if got is not None and got[0] is chain:
        return got[1:]
    by_dst, by_port, rest = {}, {}, []
    for r in chain.rules:
        if r.dst is not None and not r.dst.negated and r.dst.block[1] == 32:
            by_dst.setdefault(r.dst.block[0], []).append(r)
        elif r.dst is None and r.dport is not None and not r.dport.negated \
                and len(r.dport.ranges) == 1 and r.dport.ranges[0][0] == r.dport.ranges[0][1]:
            by_port.setdefault(r.dport.ranges[0][0], []).append(r)
        else:
            rest.append(r)
    if len(_IDX) > 8192:
        _IDX.clear()
    _IDX[id(chain)] = (chain, by_dst, by_port, rest)
    return by_dst, by_port, rest


def sliced_rules(chain, sl: Slice) -> list:
    """The rules of ``chain`` that packets of class ``sl`` can match, in order."""
    by_dst, by_port, rest = _index(chain)
    if sl.dst is not None:
        cands = list(by_dst.get(sl.dst, ()))
    elif sl.other_dst:
        cands = []
    else:
        cands = [r for rs in by_dst.values() for r in rs]
    cands += by_port.get(sl.dport, []) if sl.dport is not None else \
        [r for rs in by_port.values() for r in rs]
    cands += rest
    out = []
    for r in sorted(cands, key=lambda r: r.line):
        if sl.dst is not None and r.dst is not None and \
                ((sl.dst >> (32 - r.dst.block[1]) if r.dst.block[1] else 0)
                 == (r.dst.block[0] >> (32 - r.dst.block[1]) if r.dst.block[1] else 0)) \
                == r.dst.negated:
            continue
        if sl.dport is not None and r.dport is not None and not r.dport.matches(sl.dport):
            continue
        if sl.local is False and r.dst_type == ("LOCAL", False):
            continue
        if sl.local is True and r.dst_type == ("LOCAL", True):
            continue
        out.append(r)
    return out


def other_dst_keys(dump) -> list:
    """The addresses a packet of class ``other_dst`` is not sent to."""
    nat = dump.tables.get("nat")
    keys = set()
    for ch in (nat.chains.values() if nat else ()):
        keys.update(_index(ch)[0])
    return sorted(keys)


@attrs.frozen
class SymTraversal:
    fate: object            # BV2: index into FATES
    dst: object
    dport: object
    masqueraded: object     # Bool
    mark: object            # after nat PREROUTING / OUTPUT
    snatted: object         # Bool: POSTROUTING's verdict was SNAT
    snat: object            # BV32: SNAT's --to-source (meaningful when ``snatted``)
    src_rewritten: object   # Bool: the receiver sees another source (MASQUERADE, or
                            # SNAT to an address other than the packet's own)


class Encoding:
    """The terms of one dump; build once, then ask :meth:`outcome` per query
    (each query gets a packet of its own)."""

    def __init__(self, dump: Dump, sl: Slice | None = None):
        self.dump = dump
        self.slice = sl
        names = []
        for r in dump.rules():
            for i in (r.in_iface, r.out_iface):
                if i is not None:
                    n = i.name[:-1] + "kmc0" if i.name.endswith("+") else i.name
                    if n not in names:
                        names.append(n)
        self.ifaces = names + [OTHER_IFACE]
        self.recent_names = sorted({r.recent[1] for r in dump.rules() if r.recent})
        self.coins: dict = {}

    def packet(self, tag: str = "") -> SymPacket:
        s = tag
        return SymPacket(z3.BitVec(f"src{s}", 32), z3.BitVec(f"dst{s}", 32),
                         z3.BitVec(f"proto{s}", 2), z3.BitVec(f"sport{s}", 16),
                         z3.BitVec(f"dport{s}", 16), z3.Bool(f"output{s}"),
                         z3.Bool(f"dst_local{s}"), z3.BitVec(f"in_iface{s}", 8),
                         z3.BitVec(f"out_iface{s}", 8),
                         {n: z3.Bool(f"recent{s}:{n}") for n in self.recent_names})

    def well_formed(self, p: SymPacket) -> list:
        """What every real packet satisfies: an interface that exists; and
        what the packet's class (:class:`Slice`) says of it."""
        n = len(self.ifaces)
        out = [z3.ULT(p.in_iface, bv(n, 8)), z3.ULT(p.out_iface, bv(n, 8))]
        sl = self.slice
        if sl is not None:
            if sl.dst is not None:
                out.append(p.dst == bv(sl.dst))
            if sl.dport is not None:
                out.append(p.dport == bv(sl.dport, 16))
            if sl.local is not None:
                out.append(p.dst_local == sl.local)
            if sl.other_dst:
                out += [p.dst != bv(k) for k in other_dst_keys(self.dump)]
        return out

    # -- matches -----------------------------------------------------------------
    def _iface(self, var, iface):
        hits = [var == bv(k, 8) for k, n in enumerate(self.ifaces) if iface.matches(n)]
        return z3.Or(hits) if hits else z3.BoolVal(False)

    def _static(self, rule: Rule, p: SymPacket, f: Flow):
        c = []
        if rule.src is not None:
            c.append(in_block(p.src, rule.src.block) != rule.src.negated)
        if rule.dst is not None:
            c.append(in_block(f.dst, rule.dst.block) != rule.dst.negated)
        if rule.proto is not None:
            c.append((p.proto == bv(PROTO_CODE[rule.proto[0]], 2)) != rule.proto[1])
        if rule.in_iface is not None:
            c.append(z3.And(z3.Not(p.output), self._iface(p.in_iface, rule.in_iface)))
        if rule.out_iface is not None:
            c.append(self._iface(p.out_iface, rule.out_iface))
        for ports, var in ((rule.dport, f.dport), (rule.sport, p.sport)):
            if ports is not None:
                hit = z3.Or([z3.And(z3.ULE(bv(lo, 16), var), z3.ULE(var, bv(hi, 16)))
                             if lo != hi else var == bv(lo, 16) for lo, hi in ports.ranges])
                c.append(hit != ports.negated)
        if rule.mark is not None:
            c.append((f.mark & bv(rule.mark.mask) == bv(rule.mark.value)) != rule.mark.negated)
        if rule.dst_type is not None:
            hit = f.dst_local if rule.dst_type[0] == "LOCAL" else z3.BoolVal(False)
            c.append(hit != rule.dst_type[1])
        if rule.src_type is not None:
            hit = p.output if rule.src_type[0] == "LOCAL" else z3.BoolVal(False)
            c.append(hit != rule.src_type[1])
        if rule.ctstate is not None:
            c.append(z3.BoolVal(("NEW" in rule.ctstate[0]) != rule.ctstate[1]))
        if rule.recent is not None:
            command, name, neg = rule.recent
            hit = z3.BoolVal(True) if command == "set" else p.recent[name]
            c.append(hit != neg)
        return z3.And(c) if c else z3.BoolVal(True)

    # -- traversal -----------------------------------------------------------------
    def chain(self, table: str, name: str, p: SymPacket, f: Flow, stack=(), sliced=False):
        """(live, ends): ``live`` is the flow leaving chain ``name`` when no
        rule in it (or below) ended the table's traversal — only MARK changes
        it; ``ends`` are ``[(condition, flow)]``, one per rule that ends it
        (ACCEPT, DROP, REJECT, DNAT, SNAT, MASQUERADE), the conditions
        mutually exclusive (each says "no earlier rule ended or returned").

        Why the ends are kept apart and not threaded through the chain:
        an ending rule changes the destination, and a later rule's match
        would then be judged on an ``If`` over every earlier DNAT — at
        10,000 Services a term 10,000 deep under each of 10,000 matches.
        Kept apart, every match speaks of the live flow, whose destination
        nothing but an ending rule changes."""
        t = self.dump.tables.get(table)
        ch = t.chains.get(name) if t else None
        false = z3.BoolVal(False)
        if ch is None:
            return f, []
        ends: list = []
        ended, ret = false, false
        rules = sliced_rules(ch, self.slice) if sliced and self.slice is not None else ch.rules
        for rule in rules:
            if rule.probability == 0:
                continue
            tgt = rule.target
            if tgt in ("", "LOG"):
                continue
            active = z3.And(z3.Not(ended), z3.Not(ret), self._static(rule, p, f))
            if rule.probability is not None and rule.probability < STAT_ONE:
                cn = coin_name(stack, rule)
                coin = self.coins.get(cn)
                if coin is None:
                    coin = self.coins[cn] = z3.Bool(f"coin:{cn}")
                active = z3.And(active, coin)
            if tgt == "MARK":
                sm = rule.set_mark
                f = attrs.evolve(f, mark=z3.If(active, (f.mark & bv(~sm.mask & 0xFFFFFFFF))
                                               ^ bv(sm.value), f.mark))
            elif tgt == "RETURN":
                ret = z3.Or(ret, active)
            elif tgt in CODE:
                ends.append((active, attrs.evolve(f, verdict=bv(CODE[tgt], 3))))
                ended = z3.Or(ended, active)
            elif tgt == "DNAT":
                port = bv(rule.to_port, 16) if rule.to_port is not None else f.dport
                ends.append((active, attrs.evolve(
                    f, dst=bv(rule.to_ip), dport=port, verdict=bv(V_DNAT, 3),
                    dst_local=z3.And(f.dst_local, f.dst == bv(rule.to_ip)))))
                ended = z3.Or(ended, active)
            elif tgt in ("SNAT", "MASQUERADE"):
                ends.append((active, attrs.evolve(
                    f, verdict=bv(V_SNAT if tgt == "SNAT" else V_MASQ, 3),
                    snat=bv(rule.to_ip if tgt == "SNAT" else 0))))
                ended = z3.Or(ended, active)
            else:
                live, sub = self.chain(table, tgt, p, f, stack + (rule,), sliced)
                if sub:
                    ends += [(z3.And(active, c), g) for c, g in sub]
                    ended = z3.Or(ended, z3.And(active, z3.Or([c for c, _ in sub])))
                if live is not f:
                    f = live.ite(active, f)
        if ch.policy is not None:
            # a built-in chain that runs out (or RETURNs) applies its policy
            pol = bv(V_ACCEPT if ch.policy == "ACCEPT" else V_DROP, 3)
            f = attrs.evolve(f, verdict=pol)
        return f, ends

    def _table(self, table, hook, p, f, sliced=False):
        """The flow after the table's built-in chain ``hook``: its ends
        folded into one ``If`` per field, on top of the live flow."""
        live, ends = self.chain(table, hook, p, attrs.evolve(f, verdict=bv(V_NONE, 3)),
                                sliced=sliced)
        out = live
        for c, g in reversed(ends):
            out = g.ite(c, out)
        return out

    def _tail(self, p: SymPacket, output: bool):
        """The filter chains and nat POSTROUTING, which are not sliced and
        so the same for every class: built once per dump (and packet
        variables) over a flow of fresh variables ``fin``, which
        :meth:`outcome` replaces by the flow leaving the class's first nat
        chain (``z3.substitute``, in Z3's C++). Why: at 10,000 Services the
        filter table holds a rule per Service, and rebuilding its terms in
        Python for each of 13,000 classes was most of the encoding time.
        The coins the tail draws are this encoding's too."""
        key = (id(self.dump), output, str(p.src), str(p.output))
        got = _TAILS.get(key)
        if got is not None and got[0] is self.dump:
            self.coins.update(got[3])
            return got[1], got[2]
        side = "out" if output else "pre"
        fin = Flow(z3.BitVec(f"kmc:fin_dst:{side}", 32), z3.BitVec(f"kmc:fin_dport:{side}", 16),
                   z3.BitVec(f"kmc:fin_mark:{side}", 32), z3.Bool(f"kmc:fin_local:{side}"),
                   bv(V_NONE, 3), z3.BitVec(f"kmc:fin_snat:{side}", 32))
        before = set(self.coins)
        if output:
            fl = self._table("filter", "OUTPUT", p, fin)
        else:
            fi = self._table("filter", "INPUT", p, fin)
            ff = self._table("filter", "FORWARD", p, fin)
            fl = fi.ite(fin.dst_local, ff)
        post = self._table("nat", "POSTROUTING", p, fl)
        tail = (fl.dst, fl.dport, fl.dst_local, fl.verdict, post.verdict, post.dst_local,
                post.snat)
        coins = {k: v for k, v in self.coins.items() if k not in before}
        if len(_TAILS) > 16:
            _TAILS.clear()
        _TAILS[key] = (self.dump, fin, tail, coins)
        return fin, tail

    def outcome(self, p: SymPacket) -> SymTraversal:
        start = Flow(p.dst, p.dport, bv(0), p.dst_local, bv(V_NONE, 3), bv(0))
        outs = []
        for output in (False, True):
            # the first nat chain sees the packet's own destination: sliced
            n1 = self._table("nat", "OUTPUT" if output else "PREROUTING", p, start, sliced=True)
            v1 = n1.verdict
            fin, tail = self._tail(p, output)
            links = [(fin.dst, n1.dst), (fin.dport, n1.dport), (fin.mark, n1.mark),
                     (fin.dst_local, n1.dst_local), (fin.snat, n1.snat)]
            fl_dst, fl_dport, fl_local, v2, v3, post_local, post_snat = \
                (z3.substitute(t, *links) for t in tail)
            fl = attrs.evolve(n1, dst=fl_dst, dport=fl_dport, dst_local=fl_local)
            post = attrs.evolve(n1, dst_local=post_local, snat=post_snat)
            stop1 = z3.Or(v1 == bv(V_DROP, 3), v1 == bv(V_REJECT, 3))
            stop2 = z3.Or(v2 == bv(V_DROP, 3), v2 == bv(V_REJECT, 3))
            local_in = z3.BoolVal(False) if output else fl.dst_local
            fate = z3.If(v1 == bv(V_DROP, 3), bv(F_DROPPED, 2),
                   z3.If(v1 == bv(V_REJECT, 3), bv(F_REJECTED, 2),
                   z3.If(v2 == bv(V_DROP, 3), bv(F_DROPPED, 2),
                   z3.If(v2 == bv(V_REJECT, 3), bv(F_REJECTED, 2),
                   z3.If(local_in, bv(F_LOCAL, 2),
                   z3.If(z3.Or(v3 == bv(V_DROP, 3), v3 == bv(V_REJECT, 3)), bv(F_DROPPED, 2),
                   z3.If(post.dst_local, bv(F_LOCAL, 2), bv(F_FORWARDED, 2))))))))
            passed = z3.And(z3.Not(stop1), z3.Not(stop2), z3.Not(local_in))
            masq = z3.And(passed, v3 == bv(V_MASQ, 3))
            snatted = z3.And(passed, v3 == bv(V_SNAT, 3))
            rewritten = z3.Or(masq, z3.And(snatted, post.snat != p.src))
            outs.append(SymTraversal(fate, fl.dst, fl.dport, masq, n1.mark, snatted, post.snat,
                                   rewritten))
        pre, out = outs
        return SymTraversal(*(z3.If(p.output, b, a) for a, b in
                            zip(attrs.astuple(pre, recurse=False), attrs.astuple(out, recurse=False))))

    # -- models back to values ---------------------------------------------------------
    def decode(self, m, p: SymPacket):
        """The concrete :class:`.interp.Packet` and coins of a model."""
        from kubemc.conformance.proxy.interp import OUTPUT, PREROUTING, Packet

        def val(x):
            return m.eval(x, model_completion=True).as_long()

        def truth(x):
            return z3.is_true(m.eval(x, model_completion=True))
        proto = {v: k for k, v in PROTO_CODE.items()}[val(p.proto)]
        pkt = Packet(val(p.src), val(p.dst), proto, val(p.dport),
                     OUTPUT if truth(p.output) else PREROUTING, truth(p.dst_local), val(p.sport),
                     self.ifaces[min(val(p.in_iface), len(self.ifaces) - 1)],
                     self.ifaces[min(val(p.out_iface), len(self.ifaces) - 1)],
                     frozenset(n for n, b in p.recent.items() if truth(b)))
        coins = {name: truth(c) for name, c in self.coins.items()}
        return pkt, coins

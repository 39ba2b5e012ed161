"""An ``iptables-save`` dump, parsed into values.

The format (iptables-save(8), iptables-restore(8)): ``#`` lines are
comments; ``*TABLE`` opens a table; ``:CHAIN POLICY [PACKETS:BYTES]``
declares a chain (``-`` as policy for a user-defined chain); ``-A CHAIN
...`` appends a rule, optionally prefixed with ``[PACKETS:BYTES]``
(``iptables-save -c``); ``COMMIT`` closes the table. A rule's words are
iptables(8) options: ``[!] -s/-d ADDR[/MASK]``, ``[!] -p PROTO``, ``[!]
-i/-o IFACE`` (``+`` ends a prefix), ``-m MODULE`` followed by that
module's options (iptables-extensions(8)), ``-j TARGET`` followed by the
target's options. A word with spaces is double-quoted, ``\\"`` and ``\\\\``
escaped inside (how iptables-save prints ``--comment``).

What is understood is what kube-proxy's iptables mode writes: the match
modules comment, tcp/udp/sctp (``--dport``/``--sport``), statistic (random
mode), mark, addrtype, conntrack/state, recent, multiport; the targets
ACCEPT, DROP, RETURN, REJECT, DNAT, SNAT, MASQUERADE, MARK, LOG and jumps to
user chains. Anything else is refused with ``FILE:LINE: what`` (exit 2):
judging a rule whose meaning is not known would be a guess.

Why the statistic probability is kept as the kernel's integer: xt_statistic
stores ``--probability p`` as ``round(p * 2^31)`` and matches a packet when
a random 31-bit number is below it (libxt_statistic.c, xt_statistic.c);
iptables-save prints that integer / 2^31 with 11 decimals. So the
probability a rule really has is ``round(p * 2^31) / 2^31``, exactly.
"""

from __future__ import annotations

import shlex
from fractions import Fraction

import attrs

from kubemc.checker.errors import BadInput
from kubemc.model.network.addr import Cidr, cidr, ip

TABLES = ("filter", "nat", "mangle", "raw", "security")
BUILTIN = {
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "raw": ("PREROUTING", "OUTPUT"),
    "security": ("INPUT", "FORWARD", "OUTPUT"),
}
PROTOS = {"tcp": "TCP", "udp": "UDP", "sctp": "SCTP", "6": "TCP", "17": "UDP", "132": "SCTP"}
OTHER_PROTOS = ("all", "icmp", "0", "1")
STAT_ONE = 1 << 31
TERMINAL = ("ACCEPT", "DROP", "REJECT", "DNAT", "SNAT", "MASQUERADE")
BUILTIN_TARGETS = TERMINAL + ("RETURN", "MARK", "LOG")
MAX_LINES = 5_000_000


@attrs.frozen(slots=True)
class Addr:
    """``[!] -s/-d ADDR[/MASK]``."""

    block: Cidr
    negated: bool = False


@attrs.frozen(slots=True)
class Iface:
    """``[!] -i/-o NAME``; a name ending in ``+`` matches every interface
    whose name starts with the rest (iptables(8))."""

    name: str
    negated: bool = False

    def matches(self, name: str) -> bool:
        hit = name.startswith(self.name[:-1]) if self.name.endswith("+") else name == self.name
        return hit != self.negated


@attrs.frozen(slots=True)
class Ports:
    """``[!] --dport LO[:HI]`` (or a multiport list): ranges, inclusive."""

    ranges: tuple
    negated: bool = False

    def matches(self, port: int) -> bool:
        return any(lo <= port <= hi for lo, hi in self.ranges) != self.negated


@attrs.frozen(slots=True)
class Mark:
    """``-m mark [!] --mark VALUE[/MASK]``: matches when mark & MASK == VALUE."""

    value: int
    mask: int
    negated: bool = False

    def matches(self, mark: int) -> bool:
        return ((mark & self.mask) == self.value) != self.negated


@attrs.frozen(slots=True)
class SetMark:
    """MARK's operations, all as iptables-save prints them: ``--set-xmark
    V/M`` zeroes the bits of M and XORs V in (``--or-mark``, ``--xor-mark``,
    ``--and-mark`` and ``--set-mark`` are its special cases,
    iptables-extensions(8) "MARK")."""

    value: int
    mask: int

    def apply(self, mark: int) -> int:
        return ((mark & ~self.mask) ^ self.value) & 0xFFFFFFFF


@attrs.frozen(slots=True)
class Rule:
    """One ``-A`` line. ``probability`` is the kernel's integer out of 2^31
    (``None``: no statistic match). ``target`` is ``""`` for a rule without
    ``-j`` (it only counts packets)."""

    table: str
    chain: str
    line: int
    text: str
    src: Addr | None = None
    dst: Addr | None = None
    proto: tuple | None = None          # (name, negated); name "TCP"/"UDP"/"SCTP"/"other"
    in_iface: Iface | None = None
    out_iface: Iface | None = None
    dport: Ports | None = None
    sport: Ports | None = None
    comment: str = ""
    probability: int | None = None
    mark: Mark | None = None
    dst_type: tuple | None = None       # (type, negated)
    src_type: tuple | None = None
    ctstate: tuple | None = None        # (frozenset of states, negated)
    recent: tuple | None = None         # (command, name, negated)
    target: str = ""
    to_ip: int | None = None            # DNAT / SNAT
    to_port: int | None = None
    set_mark: SetMark | None = None
    reject_with: str = ""
    counters: tuple | None = None

    @property
    def ref(self) -> str:
        return f"{self.table} {self.chain} line {self.line}"

    def chance(self) -> Fraction:
        """The probability the statistic match has, exactly as the kernel uses it."""
        return Fraction(1) if self.probability is None else Fraction(self.probability, STAT_ONE)


@attrs.frozen(slots=True)
class Chain:
    name: str
    policy: str | None      # None for a user chain
    line: int
    counters: tuple | None = None
    rules: tuple = ()


@attrs.frozen(slots=True)
class Table:
    name: str
    line: int
    chains: dict = attrs.field(factory=dict)    # name -> Chain, declaration order

    def chain(self, name: str) -> Chain | None:
        return self.chains.get(name)


@attrs.frozen(slots=True)
class Dump:
    source: str
    tables: dict = attrs.field(factory=dict)    # name -> Table

    def table(self, name: str) -> Table:
        return self.tables.get(name) or Table(name, 0, {})

    def rules(self):
        for t in self.tables.values():
            for c in t.chains.values():
                yield from c.rules


class _Bad(Exception):
    pass


def read(path) -> Dump:
    """Parse the file at ``path``; :class:`BadInput` (``FILE:LINE: what``)
    when it is not a dump this module understands."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise BadInput(f"--iptables-save {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise BadInput(f"{path}:{line}: not UTF-8 text (byte {exc.start}); "
                       "give the output of iptables-save") from None
    return parse(text, str(path))


def parse(text: str, source: str = "<dump>") -> Dump:
    tables: dict = {}
    cur: dict | None = None        # chain name -> [Chain fields, rules]
    cur_name, cur_line = "", 0
    lines = text.split("\n")
    if len(lines) > MAX_LINES:
        raise BadInput(f"{source}: more than {MAX_LINES:,} lines")
    for no, raw in enumerate(lines, 1):
        line = raw.rstrip("\r")
        where = f"{source}:{no}"
        try:
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if "\x00" in line:
                raise _Bad("a NUL byte")
            if stripped.startswith("*"):
                if cur is not None:
                    raise _Bad(f"table {stripped[1:]!r} opened before {cur_name!r} was closed "
                               "with COMMIT")
                cur_name, cur_line = stripped[1:], no
                if cur_name not in TABLES:
                    raise _Bad(f"unknown table {cur_name!r} (known: {', '.join(TABLES)})")
                if cur_name in tables:
                    raise _Bad(f"table {cur_name!r} appears twice")
                cur = {}
            elif stripped == "COMMIT":
                if cur is None:
                    raise _Bad("COMMIT outside a table")
                tables[cur_name] = _close(cur_name, cur_line, cur, source)
                cur = None
            elif stripped.startswith(":"):
                if cur is None:
                    raise _Bad("a chain declared outside a table (no '*table' line before it)")
                name, chain = _chain(cur_name, stripped, no)
                if name in cur:
                    raise _Bad(f"chain {name} declared twice")
                cur[name] = [chain, []]
            else:
                if cur is None:
                    raise _Bad("a rule outside a table (no '*table' line before it)")
                rule = _rule(cur_name, stripped, no)
                if rule.chain not in cur:
                    raise _Bad(f"rule appended to undeclared chain {rule.chain}")
                cur[rule.chain][1].append(rule)
        except _Bad as exc:
            raise BadInput(f"{where}: {exc}") from None
    if cur is not None:
        raise BadInput(f"{source}:{cur_line}: table {cur_name!r} is never closed with COMMIT")
    dump = Dump(source, tables)
    _check_loops(dump)
    _check_source_nat(dump)
    return dump


def _close(name, line, chains, source) -> Table:
    out = {}
    for cname, (chain, rules) in chains.items():
        out[cname] = attrs.evolve(chain, rules=tuple(rules))
    for chain in out.values():
        for r in chain.rules:
            if r.target and r.target not in BUILTIN_TARGETS and r.target not in out:
                raise BadInput(f"{source}:{r.line}: jump to {r.target}: neither a chain table "
                               f"{name} declares nor a target this checker models (a target "
                               "such as NETMAP that may rewrite the packet is refused, not "
                               "ignored)")
    return Table(name, line, out)


def _check_source_nat(dump: Dump) -> None:
    """SNAT and MASQUERADE rewrite the source in nat POSTROUTING (and SNAT in
    nat INPUT, which no judged packet reaches); iptables-extensions(8): they
    are valid there only, and the kernel refuses a rule that reaches them
    from PREROUTING or OUTPUT. The model reads a source rewrite from
    POSTROUTING only, so such a dump is refused rather than misjudged."""
    nat = dump.tables.get("nat")
    if nat is None:
        return
    seen: set = set()
    todo = [c for c in ("PREROUTING", "OUTPUT") if c in nat.chains]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for r in nat.chains[name].rules:
            if r.target in ("SNAT", "MASQUERADE"):
                raise BadInput(f"{dump.source}:{r.line}: {r.target} is reached from nat "
                               "PREROUTING or OUTPUT; it is valid in POSTROUTING only")
            if r.target in nat.chains:
                todo.append(r.target)


def _check_loops(dump: Dump) -> None:
    """iptables refuses a chain that reaches itself ("Too many links"); a
    dump with one is not a real dump."""
    for table in dump.tables.values():
        state: dict = {}

        def visit(name, via):
            s = state.get(name)
            if s == 1:
                raise BadInput(f"{dump.source}:{via.line}: jump to {name} closes a loop of chains")
            if s == 2:
                return
            state[name] = 1
            for r in table.chains[name].rules:
                if r.target in table.chains:
                    visit(r.target, r)
            state[name] = 2
        for name in table.chains:
            visit(name, None)


def _counters(word: str) -> tuple:
    if not (word.startswith("[") and word.endswith("]")):
        raise _Bad(f"counters must look like [PACKETS:BYTES], not {word!r}")
    a, sep, b = word[1:-1].partition(":")
    if not sep or not a.isdigit() or not b.isdigit():
        raise _Bad(f"counters must look like [PACKETS:BYTES], not {word!r}")
    return int(a), int(b)


def _chain(table: str, text: str, no: int):
    words = text[1:].split()
    if len(words) not in (2, 3):
        raise _Bad(f"a chain line is ':NAME POLICY [PACKETS:BYTES]', not {text[:80]!r}")
    name, policy = words[0], words[1]
    if not name or len(name) > 28 or not name.isprintable():
        raise _Bad(f"bad chain name {name!r}")
    counters = _counters(words[2]) if len(words) == 3 else None
    builtin = name in BUILTIN[table]
    if builtin:
        if policy not in ("ACCEPT", "DROP"):
            raise _Bad(f"built-in chain {name} needs policy ACCEPT or DROP, not {policy!r}")
    elif policy != "-":
        raise _Bad(f"user chain {name} must have policy '-', not {policy!r} "
                   f"({table} has no built-in chain {name})")
    return name, Chain(name, policy if builtin else None, no, counters)


def _split(text: str) -> list:
    try:
        lexer = shlex.shlex(text, posix=True, punctuation_chars=False)
        lexer.whitespace_split = True
        lexer.commenters = ""
        return list(lexer)
    except ValueError as exc:
        raise _Bad(f"cannot split the rule into words: {exc}") from None


def _int(word: str, what: str, hi: int) -> int:
    try:
        v = int(word, 0)
    except ValueError:
        raise _Bad(f"{what} must be a number, not {word!r}") from None
    if not 0 <= v <= hi:
        raise _Bad(f"{what} {word!r} is out of range 0..{hi}")
    return v


def _port_range(word: str, what: str) -> tuple:
    lo, sep, hi = word.partition(":")
    a = _int(lo, what, 65535) if lo else 0
    b = _int(hi, what, 65535) if sep and hi else (65535 if sep else a)
    if a > b:
        raise _Bad(f"{what} range {word!r} is empty")
    return a, b


def _address(word: str, what: str) -> Addr:
    addr, sep, mask = word.partition("/")
    try:
        base = ip(addr)
        if not sep:
            return Addr((base, 32))
        if mask.isdigit():
            plen = int(mask)
        else:
            m = ip(mask)
            plen = bin(m).count("1")
            if m != ((0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF if plen else 0):
                raise ValueError("not a contiguous mask")
        if plen > 32:
            raise ValueError("prefix longer than 32")
        keep = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF if plen else 0
        return Addr(cidr(f"{addr_show(base & keep)}/{plen}"))
    except ValueError as exc:
        raise _Bad(f"{what} {word!r} is not an IPv4 address or block: {exc}") from None


def addr_show(v: int) -> str:
    return ".".join(str((v >> s) & 255) for s in (24, 16, 8, 0))


def _probability(word: str) -> int:
    try:
        p = Fraction(word)
    except (ValueError, ZeroDivisionError):
        raise _Bad(f"--probability must be a number, not {word!r}") from None
    if not 0 <= p <= 1:
        raise _Bad(f"--probability {word} is outside 0..1")
    return round(p * STAT_ONE)


def _mark_pair(word: str, what: str, default_mask: int) -> tuple:
    v, sep, m = word.partition("/")
    return _int(v, what, 0xFFFFFFFF), (_int(m, what, 0xFFFFFFFF) if sep else default_mask)


def _rule(table: str, text: str, no: int) -> Rule:
    words = _split(text)
    counters = None
    if words and words[0].startswith("["):
        counters = _counters(words.pop(0))
    if len(words) < 2 or words[0] not in ("-A", "--append"):
        raise _Bad(f"a rule line starts with '-A CHAIN', not {text[:60]!r}")
    f: dict = {"table": table, "chain": words[1], "line": no, "text": text, "counters": counters}
    modules: set = set()
    proto_name = None
    i, neg = 2, False

    def arg():
        nonlocal i
        i += 1
        if i >= len(words):
            raise _Bad(f"option {words[i - 1]} needs a value")
        return words[i]

    def once(key, value):
        if f.get(key) is not None:
            raise _Bad(f"{key} given twice")
        f[key] = value

    while i < len(words):
        w = words[i]
        if w == "!":
            if neg:
                raise _Bad("'!' twice")
            neg = True
            i += 1
            continue
        if w in ("-s", "--source", "-d", "--destination"):
            once("src" if w in ("-s", "--source") else "dst", attrs.evolve(_address(arg(), w), negated=neg))
        elif w in ("-p", "--protocol"):
            v = arg().lower()
            if v in PROTOS:
                proto_name = PROTOS[v]
            elif v in OTHER_PROTOS:
                proto_name = "other" if v not in ("all", "0") else "all"
            else:
                raise _Bad(f"protocol {v!r} is not understood (tcp, udp, sctp, icmp, all)")
            if proto_name == "all":
                if neg:
                    raise _Bad("'! -p all' matches nothing")
            else:
                once("proto", (proto_name, neg))
        elif w in ("-i", "--in-interface", "-o", "--out-interface"):
            once("in_iface" if w in ("-i", "--in-interface") else "out_iface", Iface(arg(), neg))
        elif w in ("-m", "--match"):
            if neg:
                raise _Bad("'!' before -m")
            m = arg()
            if m not in ("comment", "tcp", "udp", "sctp", "statistic", "mark", "addrtype",
                         "conntrack", "state", "recent", "multiport"):
                raise _Bad(f"match module -m {m} is not understood (kubemc judges the modules "
                           "kube-proxy's iptables mode writes)")
            if m in ("tcp", "udp", "sctp") and proto_name != PROTOS[m]:
                raise _Bad(f"-m {m} needs -p {m} before it")
            modules.add(m)
        elif w == "--comment" and "comment" in modules:
            f["comment"] = arg()
        elif w in ("--dport", "--destination-port", "--sport", "--source-port") \
                and modules & {"tcp", "udp", "sctp"}:
            key = "dport" if w in ("--dport", "--destination-port") else "sport"
            once(key, Ports((_port_range(arg(), w),), neg))
        elif w in ("--dports", "--destination-ports", "--sports", "--source-ports") \
                and "multiport" in modules:
            if proto_name not in ("TCP", "UDP", "SCTP"):
                raise _Bad("-m multiport needs -p tcp, udp or sctp")
            key = "dport" if w.startswith("--d") else "sport"
            once(key, Ports(tuple(_port_range(p, w) for p in arg().split(",")), neg))
        elif w == "--mode" and "statistic" in modules:
            if arg() != "random":
                raise _Bad("-m statistic: only --mode random is understood")
        elif w == "--probability" and "statistic" in modules:
            if neg:
                raise _Bad("'! --probability' is not understood")
            once("probability", _probability(arg()))
        elif w == "--mark" and "mark" in modules:
            v, m = _mark_pair(arg(), "--mark", 0xFFFFFFFF)
            once("mark", Mark(v & m, m, neg))
        elif w in ("--dst-type", "--src-type") and "addrtype" in modules:
            t = arg()
            if t not in ("LOCAL", "UNICAST", "BROADCAST", "MULTICAST"):
                raise _Bad(f"{w} {t} is not understood (LOCAL, UNICAST, BROADCAST, MULTICAST)")
            once("dst_type" if w == "--dst-type" else "src_type", (t, neg))
        elif w in ("--ctstate", "--state") and modules & {"conntrack", "state"}:
            states = frozenset(arg().split(","))
            if not states <= {"NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED", "SNAT", "DNAT"}:
                raise _Bad(f"{w} {','.join(sorted(states))}: unknown state")
            once("ctstate", (states, neg))
        elif w in ("--rcheck", "--update", "--set", "--remove") and "recent" in modules:
            once("recent", (w[2:], f.get("_recent_name", "DEFAULT"), neg))
        elif w == "--name" and "recent" in modules:
            name = arg()
            f["_recent_name"] = name
            if f.get("recent"):
                f["recent"] = (f["recent"][0], name, f["recent"][2])
        elif w in ("--seconds", "--hitcount", "--mask") and "recent" in modules:
            arg()
        elif w in ("--reap", "--rsource", "--rdest", "--rttl") and "recent" in modules:
            pass
        elif w in ("-j", "--jump"):
            if neg:
                raise _Bad("'!' before -j")
            once("target", arg())
            if f["target"] in ("-g", "--goto"):
                raise _Bad("-g (goto) is not understood")
        elif w in ("-g", "--goto"):
            raise _Bad("-g (goto) is not understood")
        elif w == "--to-destination" and f.get("target") == "DNAT" \
                or w == "--to-source" and f.get("target") == "SNAT":
            _nat_to(f, arg(), w)
        elif w in ("--random", "--persistent", "--random-fully") \
                and f.get("target") in ("DNAT", "SNAT", "MASQUERADE"):
            pass
        elif w == "--to-ports" and f.get("target") == "MASQUERADE":
            _port_range(arg(), w)
        elif w in ("--set-xmark", "--set-mark", "--or-mark", "--and-mark", "--xor-mark") \
                and f.get("target") == "MARK":
            once("set_mark", _set_mark(w, arg()))
        elif w == "--reject-with" and f.get("target") == "REJECT":
            f["reject_with"] = arg()
        elif w in ("--log-prefix", "--log-level") and f.get("target") == "LOG":
            arg()
        else:
            raise _Bad(f"option {w!r} is not understood here (after "
                       f"{' '.join(words[max(2, i - 3):i]) or 'the chain name'})")
        if neg and w not in ("-s", "--source", "-d", "--destination", "-p", "--protocol",
                             "-i", "--in-interface", "-o", "--out-interface", "--dport",
                             "--destination-port", "--sport", "--source-port", "--mark",
                             "--dst-type", "--src-type", "--ctstate", "--state", "--rcheck",
                             "--update", "--set", "--remove", "--dports", "--sports",
                             "--destination-ports", "--source-ports"):
            raise _Bad(f"'!' cannot negate {w}")
        neg = False
        i += 1
    if neg:
        raise _Bad("a trailing '!'")
    f.pop("_recent_name", None)
    t = f.get("target") or ""
    f["target"] = t
    if t == "DNAT" and f.get("to_ip") is None:
        raise _Bad("DNAT needs --to-destination")
    if t == "SNAT" and f.get("to_ip") is None:
        raise _Bad("SNAT needs --to-source")
    if t == "MARK" and f.get("set_mark") is None:
        raise _Bad("MARK needs --set-xmark (or --set-mark, --or-mark, --and-mark, --xor-mark)")
    if t in ("DNAT", "SNAT", "MASQUERADE") and table != "nat":
        raise _Bad(f"{t} is valid in the nat table only")
    if t == "REJECT" and table not in ("filter", "mangle"):
        raise _Bad("REJECT is valid in the filter table only")
    if t and not (t in BUILTIN_TARGETS or t.replace("-", "").replace("_", "").isalnum()):
        raise _Bad(f"target {t!r} is not understood")
    return Rule(**f)


def _nat_to(f: dict, word: str, what: str) -> None:
    addr, sep, port = word.partition(":")
    if "-" in addr:
        raise _Bad(f"{what} {word!r}: an address range is not understood")
    try:
        f["to_ip"] = ip(addr)
    except ValueError:
        raise _Bad(f"{what} {word!r} is not ADDRESS[:PORT]") from None
    if sep:
        lo, hi = _port_range(port.replace("-", ":"), what)
        if lo != hi:
            raise _Bad(f"{what} {word!r}: a port range is not understood")
        f["to_port"] = lo


def _set_mark(op: str, word: str) -> SetMark:
    if op == "--set-xmark":
        v, m = _mark_pair(word, op, 0xFFFFFFFF)
        return SetMark(v, m)
    if op == "--set-mark":
        v, m = _mark_pair(word, op, 0xFFFFFFFF)
        return SetMark(v, m | v)
    v = _int(word, op, 0xFFFFFFFF)
    if op == "--or-mark":
        return SetMark(v, v)
    if op == "--xor-mark":
        return SetMark(v, 0)
    return SetMark(0, ~v & 0xFFFFFFFF)          # --and-mark

"""``--live``: the dump applied with ``iptables-restore`` inside a network
namespace the run creates, real packets sent through it, and where they
land compared with the dump's own answer (:func:`conformance.proxy.interp.distribution`,
which the Z3 proofs are tested against) and with the proxy model's
forwarding function (:func:`model.network.forward.forward` over the rules
:func:`model.proxy.rules.compile_rules` builds from the same objects).

The namespaces (names start with the run's prefix ``kp`` + 6 hex digits,
unique per run, so parallel runs never collide):

* ``…n`` the node: the dump's rules, IP forwarding on, the node address
  203.0.113.10 (TEST-NET-3) on each of its veths, a route per endpoint, and
  a dummy default route (a packet nobody DNATs still reaches FORWARD);
* ``…e<k>`` one per endpoint address (those the objects list and those the
  dump DNATs to, a stale one included): the address, a route back through
  the node, and the prober serving every target port;
* ``…c`` a pod client (an unused address of the cluster CIDR), ``…x`` a
  client outside it (198.51.100.7); the node itself probes too (OUTPUT).

Each Service port is probed from the pod client, from outside, from the
node, and through its NodePort: ``samples × n`` connections. An address
*agrees* when every answer is one the dump predicts (endpoint, and source
address: the client's, or the node's when masqueraded; refused for a
REJECT) and the counts fit the dump's probabilities (chi-square at
``confidence``); it *conforms* when the answers are the ones the model
predicts, with the model's probabilities. The check fails when an address
does not conform, and says whether the symbolic verdict for that address
(dump answer == model answer) agreed with the live one.

Everything created is removed on success, failure, exception, Ctrl-C and
SIGTERM (``finally``): the processes (:class:`.proctree.ProcessTree`), then
the namespaces — deleting a namespace deletes its veths, routes and rules.
A run killed with SIGKILL runs no ``finally``: each run holds a lock named
after its prefix (:mod:`conformance.runner.run_lock`), and the next live run removes the namespaces and temporary
directories of every ``kp…`` run whose lock is free (:func:`reap_leftovers`).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import attrs

from kubemc.checker.errors import MissingEnvironment
from kubemc.conformance.proxy.dump import Dump, addr_show
from kubemc.conformance.proxy.interp import (DROPPED, FORWARDED, OUTPUT, PREROUTING, REJECTED,
                                             Packet,
                                      distribution)
from kubemc.conformance.proxy.stats import chi_square
from kubemc.conformance.runner import run_lock
from kubemc.conformance.runner.proctree import ProcessTree
from kubemc.model.network.addr import contains, last
from kubemc.properties.proxy import usable_endpoints

NODE = (203 << 24) | (113 << 8) | 10
OUTSIDE = (198 << 24) | (51 << 16) | (100 << 8) | 7
PROBER = Path(__file__).with_name("prober.py")


@attrs.frozen
class LiveOptions:
    samples: int = 40
    confidence: float = 0.999
    masq_mark: int = 0x4000


@attrs.frozen
class Probe:
    id: str
    client: str             # pod / outside / node
    service: str
    packet: Packet
    count: int
    predicted: dict         # answer -> probability (the dump)
    model: dict | None      # answer -> probability (the model); None: not comparable
    observed: dict = attrs.field(factory=dict)
    agrees: bool = False    # observed fits the dump's answer
    conforms: bool = False  # observed fits the model's answer
    symbolic_ok: bool = False
    note: str = ""
    rules: dict = attrs.field(factory=dict)     # answer -> the dump's rule deciding it

    def blamed(self) -> str:
        """The dump's rule behind an observed answer the model does not allow
        (else behind the most frequent answer)."""
        model = self.model or {}
        odd = [k for k in self.observed if not model.get(k)]
        for k in odd + sorted(self.observed, key=lambda k: -self.observed[k]):
            if self.rules.get(k):
                return self.rules[k]
        return ""

    def to_json(self) -> dict:
        return {"id": self.id, "client": self.client, "service": self.service,
                "packet": self.packet.to_json(), "count": self.count,
                "predicted": {k: str(v) for k, v in self.predicted.items()},
                "model": {k: str(v) for k, v in self.model.items()} if self.model is not None
                else None, "observed": self.observed, "agrees": self.agrees,
                "conforms": self.conforms, "symbolic_ok": self.symbolic_ok, "note": self.note}


@attrs.frozen
class LiveResult:
    prefix: str
    probes: tuple
    seconds: float
    confidence: float

    @property
    def passed(self) -> bool:
        return all(p.conforms and p.agrees for p in self.probes)

    def to_json(self) -> dict:
        findings = []
        for p in self.probes:
            if p.conforms and p.agrees:
                continue
            what = [] if p.conforms else ["does not match the model"]
            if not p.agrees:
                what.append("DISAGREES with the dump's symbolic answer")
            verdict = "agrees" if p.symbolic_ok == p.conforms else "disagrees"
            findings.append({
                "check": "live", "service": p.service, "packet": p.packet.to_json(),
                "message": f"{p.service}: {p.packet} from the {p.client} client: observed "
                           f"{_show(p.observed)}; dump predicts {_show(p.predicted)}; model "
                           f"predicts {_show(p.model) if p.model is not None else '-'} — "
                           f"{' and '.join(what)} (the symbolic verdict {verdict}){p.note}",
                "rule": p.blamed(), "path": []})
        agree = sum(1 for p in self.probes if p.symbolic_ok == p.conforms and p.agrees)
        check = {"name": "live", "ok": self.passed, "seconds": round(self.seconds, 3),
                 "checked": len(self.probes),
                 "statement": "real packets land where the dump and the model say, with the "
                              "source address they say, with their probabilities",
                 "source": f"Pearson chi-square, family-wise confidence {self.confidence} "
                           f"over the {len(self.probes)} addresses (Bonferroni); "
                           "kubernetes.io/docs/reference/networking/virtual-ips",
                 "note": f"live agrees with the symbolic verdict on {agree} of "
                         f"{len(self.probes)} probed addresses", "findings": findings}
        return {"check": check, "prefix": self.prefix,
                "probes": [p.to_json() for p in self.probes]}


def _show(d) -> str:
    return ", ".join(f"{k} {v if isinstance(v, int) else f'{float(v):.3f}'}"
                     for k, v in sorted(d.items())) or "nothing"


def require_environment() -> None:
    missing = []
    if os.geteuid() != 0:
        missing.append("root (network namespaces)")
    for tool, pkg in (("ip", "iproute2"), ("iptables-restore", "iptables")):
        if shutil.which(tool) is None:
            missing.append(f"{tool} (apt-get install {pkg})")
    if missing:
        raise MissingEnvironment("--live needs " + ", ".join(missing)
                                 + "; run as root after installing them, or drop --live")


def _sh(*cmd, check=True, stdin=None, timeout=30):
    """Run a setup command; its failure is the machine's (a kernel without
    veth or nf_tables, a namespace limit), said plainly: exit 3."""
    r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise MissingEnvironment(f"the live network could not be set up: {' '.join(cmd)}: "
                                 f"{' '.join((r.stderr or r.stdout).split())[:300]}")
    return r


class Namespaces:
    """The namespaces of one run; :meth:`remove` deletes every one of them
    (also those half set up), and is safe to call twice."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.names: list = []

    def add(self, suffix: str) -> str:
        name = self.prefix + suffix
        self.names.append(name)
        _sh("ip", "netns", "add", name)
        return name

    def remove(self) -> list:
        left = []
        for name in reversed(self.names):
            r = _sh("ip", "netns", "del", name, check=False)
            if r.returncode != 0 and name in leftovers(self.prefix):
                left.append(name)
        self.names = []
        return left


def leftovers(prefix: str) -> list:
    r = _sh("ip", "netns", "list", check=False)
    return [line.split()[0] for line in r.stdout.splitlines()
            if line.split() and line.split()[0].startswith(prefix)]


def _link(ns_node, ns_peer, name, peer_ip):
    """A veth from the node to ``ns_peer``; the peer holds ``peer_ip``."""
    _sh("ip", "link", "add", name, "netns", ns_node, "type", "veth", "peer", "name", "eth0",
        "netns", ns_peer)
    x = ("ip", "netns", "exec")
    _sh(*x, ns_node, "ip", "addr", "add", f"{addr_show(NODE)}/32", "dev", name)
    _sh(*x, ns_node, "ip", "link", "set", name, "up")
    _sh(*x, ns_node, "ip", "route", "add", f"{addr_show(peer_ip)}/32", "dev", name)
    _sh(*x, ns_peer, "ip", "link", "set", "lo", "up")
    _sh(*x, ns_peer, "ip", "addr", "add", f"{addr_show(peer_ip)}/32", "dev", "eth0")
    _sh(*x, ns_peer, "ip", "link", "set", "eth0", "up")
    _sh(*x, ns_peer, "ip", "route", "add", f"{addr_show(NODE)}/32", "dev", "eth0")
    _sh(*x, ns_peer, "ip", "route", "add", "default", "via", addr_show(NODE), "dev", "eth0")


def _answer_key(outcome, src: int, hosts) -> str:
    """What the prober reports for ``outcome``: the endpoint and the source
    it saw; a packet forwarded to an address no namespace holds is never
    answered (a time-out), as on the live network."""
    if outcome.fate == FORWARDED and outcome.dst in hosts:
        seen = NODE if outcome.masqueraded else src
        return f"{addr_show(outcome.dst)}:{outcome.dport} {addr_show(seen)}"
    return "refused" if outcome.fate == REJECTED else "timeout"


def predicted(dump: Dump, pkt: Packet, hosts, rules: dict | None = None) -> dict:
    """answer -> probability under the dump; ``rules`` gets, per answer, the
    rule that decided it (its DNAT, or the rule that ended its traversal)."""
    out: dict = {}
    for p, o in distribution(dump, pkt):
        k = _answer_key(o, pkt.src, hosts)
        out[k] = out.get(k, Fraction(0)) + p
        if rules is not None and k not in rules:
            r = o.nat_rule() or o.decided_by
            rules[k] = f"{r.ref}: {r.text}" if r is not None else ""
    return out


def model_answer(ports, cidr, pkt: Packet) -> dict | None:
    """The proxy model's answer for ``pkt`` at a one-node cluster holding
    the endpoints; None when the model cannot speak of it (a Service whose
    endpoints differ in target port)."""
    from kubemc.model.network import dataplane as dp_
    from kubemc.model.network.forward import DELIVERED, REJECTED as M_REJECTED
    from kubemc.model.network.forward import Packet as MPacket
    from kubemc.model.network.forward import forward
    from kubemc.model.proxy.rules import compile_rules

    services, pods, routes = [], {}, []
    for sp in ports:
        tports = {e.port for e in sp.endpoints}
        if len(tports) > 1:
            if (sp.vip, sp.port) == (pkt.dst, pkt.dport) or sp.node_port == pkt.dport:
                return None
            continue
        entries = tuple(dp_.EndpointEntry(addr_show(e.ip), e.ip, e.ready, e.serving,
                                          e.terminating, 0) for e in sp.endpoints)
        for e in sp.endpoints:
            pods[e.ip] = dp_.Pod(addr_show(e.ip), 0, e.ip)
        services.append(dp_.Service(sp.key, sp.vip, sp.port, sp.proto,
                                    next(iter(tports), sp.port), sp.node_port, False, False,
                                    entries))
    routes = tuple(dp_.Route((ip_, 32), 0) for ip_ in pods)
    rules = compile_rules(cidr, services, 0)
    node = dp_.Node(0, "node", NODE, None, None, routes, rules)
    plane = dp_.Dataplane(cidr, (node,), tuple(pods.values()), tuple(services))
    out: dict = {}
    for p, o in forward(plane, MPacket(pkt.src, pkt.dst, pkt.dport, pkt.proto, 0)):
        if o.kind == DELIVERED:
            k = f"{addr_show(o.ip)}:{o.port} {addr_show(o.src)}"
        elif o.kind == M_REJECTED:
            k = "refused"
        else:
            k = "timeout"
        out[k] = out.get(k, Fraction(0)) + p
    return out


def _fits(observed: dict, probs: dict, alpha: float, sticky: bool) -> tuple[bool, str]:
    """Every answer is one ``probs`` allows and the counts fit them."""
    extra = [k for k in observed if probs.get(k, 0) == 0]
    if extra:
        return False, f" (unexpected: {', '.join(extra)})"
    if sticky:
        return True, " (ClientIP affinity: distribution not tested)"
    keys = sorted(set(probs) | set(observed))
    stat, pvalue, dof = chi_square([observed.get(k, 0) for k in keys],
                                   [float(probs.get(k, 0)) for k in keys])
    if pvalue < alpha:
        return False, f" (chi-square {stat:.1f}, {dof} dof, p = {pvalue:.2g})"
    return True, ""


_RUN_NETNS = re.compile(r"^kp([0-9a-f]{6})[a-z]")
_RUN_TMP = re.compile(r"^kubemc-kp([0-9a-f]{6})-")
_LOCKS = run_lock.RunLocks("kubemc-run-kp")


def reap_leftovers() -> list:
    """Kill the probers left in, then remove, the namespaces and temporary
    directories of every ``kp…`` run killed with SIGKILL (its lock is free)."""
    return run_lock.reap(_LOCKS, _RUN_NETNS, _RUN_TMP)


def run_live(dump: Dump, ports, cidr, verdict, opts: LiveOptions) -> LiveResult:
    require_environment()
    start = time.monotonic()
    reaped = reap_leftovers()
    if reaped:
        print(f"kubemc: removed what a killed earlier run left: {', '.join(reaped)}",
              file=sys.stderr, flush=True)
    token = secrets.token_hex(3)
    prefix = "kp" + token
    lock = _LOCKS.hold(token)
    print(f"kubemc: live run {prefix}: namespaces {prefix}*", file=sys.stderr, flush=True)
    nss = Namespaces(prefix)
    tmp = tempfile.mkdtemp(prefix=f"kubemc-{prefix}-")
    try:
        with ProcessTree() as tree:
            try:
                return _run(dump, ports, cidr, opts, nss, tree, tmp, prefix, start)
            finally:
                tree.kill_all()
    finally:
        left = nss.remove()
        shutil.rmtree(tmp, ignore_errors=True)
        lock.close()
        if left:
            print(f"kubemc: could not remove namespaces {' '.join(left)}", file=sys.stderr)


def _run(dump, ports, cidr, opts, nss, tree, tmp, prefix, start) -> LiveResult:
    x = ("ip", "netns", "exec")
    node = nss.add("n")
    _sh(*x, node, "ip", "link", "set", "lo", "up")
    _sh(*x, node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    # a REJECT answers each probe with an ICMP error: the kernel's ICMP rate
    # limit would turn most of them into time-outs
    _sh(*x, node, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0")
    _sh(*x, node, "sysctl", "-qw", "net.ipv4.icmp_msgs_per_sec=100000", check=False)
    _sh(*x, node, "sysctl", "-qw", "net.ipv4.icmp_msgs_burst=100000", check=False)
    # a default route into a namespace that answers nothing: a packet no rule
    # DNATs is still routed (and so meets filter FORWARD), then goes nowhere
    sink = nss.add("s")
    _sh("ip", "link", "add", f"{prefix}s", "netns", node, "type", "veth", "peer", "name",
        "eth0", "netns", sink)
    _sh(*x, node, "ip", "link", "set", f"{prefix}s", "up")
    _sh(*x, sink, "ip", "link", "set", "eth0", "up")
    _sh(*x, node, "ip", "route", "add", "default", "dev", f"{prefix}s")
    rules = Path(tmp) / "rules"
    rules.write_text(Path(dump.source).read_text() if Path(dump.source).exists() else "")
    r = _sh(*x, node, "iptables-restore", str(rules), check=False)
    if r.returncode != 0:
        raise MissingEnvironment(f"iptables-restore refused the dump inside the namespace: "
                                 f"{' '.join(r.stderr.split())[:300]}")
    # endpoints: what the objects list and what the dump DNATs to
    targets: dict = {}
    for sp in ports:
        for e in sp.endpoints:
            targets.setdefault(e.ip, set()).add((sp.proto.lower(), e.port))
    for rule in dump.rules():
        if rule.target == "DNAT" and rule.to_port is not None:
            proto = (rule.proto[0] if rule.proto else "TCP").lower()
            targets.setdefault(rule.to_ip, set()).add((proto, rule.to_port))
    client_ip = next(a for a in range(last(cidr) - 1, cidr[0], -1) if a not in targets)
    for k, (ip_, specs) in enumerate(sorted(targets.items())):
        ns = nss.add(f"e{k}")
        _link(node, ns, f"{prefix}e{k}", ip_)
        proc = subprocess.Popen([*x, ns, sys.executable, str(PROBER), "serve", addr_show(ip_),
                                 *sorted(f"{p}:{port}" for p, port in specs)],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        tree.add(proc.pid)
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the endpoint server in {ns} did not start")
    clients = {"pod": (nss.add("c"), client_ip), "outside": (nss.add("x"), OUTSIDE),
               "node": (node, NODE)}
    _link(node, clients["pod"][0], f"{prefix}c", client_ip)
    _link(node, clients["outside"][0], f"{prefix}x", OUTSIDE)
    probes = []
    for sp in ports:
        n = max(1, len(usable_endpoints(sp)))
        count = opts.samples * n
        cases = [("pod", Packet(client_ip, sp.vip, sp.proto, sp.port, PREROUTING)),
                 ("outside", Packet(OUTSIDE, sp.vip, sp.proto, sp.port, PREROUTING)),
                 ("node", Packet(NODE, sp.vip, sp.proto, sp.port, OUTPUT))]
        if sp.node_port and not sp.external_local:
            cases.append(("outside", Packet(OUTSIDE, NODE, sp.proto, sp.node_port, PREROUTING,
                                            True)))
        for client, pkt in cases:
            if not contains(cidr, client_ip) and client == "pod":
                continue
            why: dict = {}
            pred = predicted(dump, pkt, targets, why)
            model = model_answer(ports, cidr, pkt)
            probes.append(Probe(f"p{len(probes)}", client, sp.key, pkt,
                                count if any(k != "refused" for k in pred) else
                                min(count, 3 * opts.samples), pred, model, rules=why))
    by_client: dict = {}
    for p in probes:
        by_client.setdefault(p.client, []).append(p)
    observed: dict = {}
    for client, ps in by_client.items():
        ns, _ = clients[client]
        req = [{"id": p.id, "proto": p.packet.proto, "dst": addr_show(p.packet.dst),
                "port": p.packet.dport, "count": p.count} for p in ps]
        proc = subprocess.Popen([*x, ns, sys.executable, str(PROBER), "probe"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        tree.add(proc.pid)
        out, err = proc.communicate(json.dumps(req), timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"the prober in {ns} failed: {err.strip()[-300:]}")
        observed.update(json.loads(out))
    # each address is tested at (1 - confidence) / addresses, so that a correct
    # dump fails the whole run by chance with probability at most 1 - confidence
    alpha = (1 - opts.confidence) / max(1, len(probes))
    done = []
    for p in probes:
        obs = observed.get(p.id, {})
        sticky = any(sp.affinity for sp in ports if sp.key == p.service)
        agrees, why_a = _fits(obs, p.predicted, alpha, sticky)
        if p.model is None:
            conforms, why_m, sym = agrees, " (model not comparable)", True
        else:
            conforms, why_m = _fits(obs, p.model, alpha, sticky)
            got = {k for k, v in p.predicted.items() if v}
            want = {k for k, v in p.model.items() if v}
            # under ClientIP affinity a client keeps its first endpoint: live can
            # only see that the answers are allowed ones, so judge the dump so too
            sym = got <= want if sticky else got == want and _close(p.predicted, p.model)
        done.append(attrs.evolve(p, observed=obs, agrees=agrees, conforms=conforms,
                                 symbolic_ok=sym, note=why_a if not agrees else why_m))
    return LiveResult(prefix, tuple(done), time.monotonic() - start, opts.confidence)


def _close(a: dict, b: dict) -> bool:
    """The two answers' probabilities agree within the statistic match's rounding."""
    keys = set(a) | set(b)
    n = max(1, len(keys))
    return all(abs(a.get(k, 0) - b.get(k, 0)) <= Fraction(n, 1 << 31) for k in keys)

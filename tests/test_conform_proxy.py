"""``kubemc conform proxy`` without packets: the dump parser, the objects
reader, the Z3 checks on realistic dumps — the correct one proved, each
seeded fault reported with the offending rule and a packet — and the Z3
encoding held to the concrete semantics it mirrors.

The dumps under ``tests/data/proxy/`` were written in kube-proxy's layout by
:mod:`conformance.proxy.kubeproxy` for ``objects.json``, applied with
``iptables-restore`` in a scratch network namespace and saved with
``iptables-save -c`` (iptables 1.8.9, nf_tables): the text is the tool's own.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
import z3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubemc.checker.cli import main
from kubemc.checker.errors import BadInput
from kubemc.conformance.proxy import objects
from kubemc.conformance.proxy.checks import Checker, source_classes
from kubemc.conformance.proxy.dump import STAT_ONE, parse, read
from kubemc.conformance.proxy.interp import (FORWARDED, OUTPUT, PREROUTING, REJECTED, Packet,
                                      distribution, replay)
from kubemc.conformance.proxy.kubeproxy import FAULTS, example_services, objects_doc, write_dump
from kubemc.conformance.proxy.symbolic import FATES, PROTO_CODE, Encoding, bv
from kubemc.model.network.addr import cidr, contains, ip

DATA = Path(__file__).parent / "data" / "proxy"
OBJECTS = DATA / "objects.json"
CIDR = "10.244.0.0/16"


def conform(capsys, dump, *extra):
    code = main(["conform", "proxy", "--iptables-save", str(dump), "--objects", str(OBJECTS),
                 "--cluster-cidr", CIDR, "--json", *extra])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, (json.loads(out) if out.strip().startswith("{") else None), err


# --- the parser ---------------------------------------------------------------


def test_the_real_dump_parses_with_what_each_rule_means():
    d = read(DATA / "good.iptables-save")
    assert set(d.tables) == {"filter", "nat"}
    nat = d.tables["nat"]
    assert nat.chains["PREROUTING"].policy == "ACCEPT" and nat.chains["KUBE-SERVICES"].policy is None
    mark = nat.chains["KUBE-MARK-MASQ"].rules[0]
    assert mark.target == "MARK" and (mark.set_mark.value, mark.set_mark.mask) == (0x4000, 0x4000)
    ret = nat.chains["KUBE-POSTROUTING"].rules[0]
    assert ret.target == "RETURN" and ret.mark.negated and ret.mark.mask == 0x4000
    stats = [r for r in d.rules() if r.probability is not None]
    # 1/3 as iptables-save prints it (0.33333333349) is the kernel's round(2^31 / 3)
    assert round(Fraction(STAT_ONE, 3)) in {r.probability for r in stats}
    dnat = [r for r in d.rules() if r.target == "DNAT"]
    assert {(r.to_ip, r.to_port) for r in dnat} >= {(ip("10.244.1.5"), 8080), (ip("192.168.49.2"), 8443)}
    svc = next(r for r in nat.chains["KUBE-SERVICES"].rules if r.dst and r.dst.block == (ip("10.96.12.40"), 32))
    assert svc.proto == ("TCP", False) and svc.dport.ranges == ((80, 80),)
    assert svc.comment == "shop/web:http cluster IP" and svc.counters == (0, 0)
    nodeports = nat.chains["KUBE-SERVICES"].rules[-1]
    assert nodeports.dst_type == ("LOCAL", False) and nodeports.target == "KUBE-NODEPORTS"
    assert all(r.line > 0 and r.text.startswith("[0:0] -A") for r in d.rules())


@pytest.mark.parametrize("text, says", [
    ("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j KUBE-NOPE\nCOMMIT\n", ":3: jump to KUBE-NOPE"),
    ("*nat\n:PREROUTING ACCEPT [0:0]\n", ":1: table 'nat' is never closed"),
    ("-A X -j ACCEPT\n", ":1: a rule outside a table"),
    ("*nat\n:FOO ACCEPT [0:0]\nCOMMIT\n", ":2: user chain FOO must have policy '-'"),
    ("*nat\n:X - [0:0]\n-A X -m bogus -j ACCEPT\nCOMMIT\n", ":3: match module -m bogus"),
    ("*nat\n:X - [0:0]\n-A X -m statistic --mode random --probability 1.5 -j ACCEPT\nCOMMIT\n",
     ":3: --probability 1.5 is outside 0..1"),
    ("*nat\n:X - [0:0]\n-A X -d 10.0.0.300/32 -j ACCEPT\nCOMMIT\n", ":3: -d '10.0.0.300/32'"),
    ("*nat\n:X - [0:0]\n-A X -j DNAT\nCOMMIT\n", ":3: DNAT needs --to-destination"),
    ("*filter\n:X - [0:0]\n-A X -j DNAT --to-destination 1.2.3.4\nCOMMIT\n", ":3: DNAT is valid in the nat"),
    ("*nat\n:X - [0:0]\n:Y - [0:0]\n-A X -j Y\n-A Y -j X\nCOMMIT\n", "closes a loop"),
    ("*nat\n:X - [0:0]\n-A X -m comment --comment \"open -j ACCEPT\nCOMMIT\n", ":3: cannot split"),
    ("*nat\n:X - [0:0]\n-A X -p tcp --dport 80 -j ACCEPT\nCOMMIT\n", ":3: option '--dport'"),
    ("*mangle\n*nat\n", ":2: table 'nat' opened before 'mangle' was closed"),
    ("*nat\n:X - [0:0]\n[1:x] -A X -j ACCEPT\nCOMMIT\n", ":3: counters must look like"),
    # a target that may rewrite the packet and is not modelled is refused, not ignored
    ("*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -j NETMAP --to 10.0.0.0/8\nCOMMIT\n",
     ":3: option '--to' is not understood here (after -j NETMAP)"),
    ("*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -j NETMAP\nCOMMIT\n",
     ":3: jump to NETMAP: neither a chain"),
    # the kernel takes SNAT / MASQUERADE in POSTROUTING only (iptables-extensions(8))
    ("*nat\n:PREROUTING ACCEPT [0:0]\n:X - [0:0]\n-A PREROUTING -j X\n"
     "-A X -j SNAT --to-source 10.0.0.1\nCOMMIT\n", ":5: SNAT is reached from nat PREROUTING"),
    ("*nat\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -j MASQUERADE\nCOMMIT\n",
     ":3: MASQUERADE is reached from nat PREROUTING or OUTPUT"),
])
def test_a_malformed_dump_is_one_line_naming_file_and_line(text, says):
    with pytest.raises(BadInput) as err:
        parse(text, "dump.txt")
    assert str(err.value).startswith("dump.txt:") and says in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_files_exit_2_with_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.iptables-save"
    bad.write_text("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j NOWHERE\nCOMMIT\n")
    code = main(["conform", "proxy", "--iptables-save", str(bad), "--objects", str(OBJECTS)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"{bad}:3: jump to NOWHERE" in err
    binary = tmp_path / "bin"
    binary.write_bytes(b"*nat\n\xff\xfe\n")
    assert main(["conform", "proxy", "--iptables-save", str(binary), "--objects", str(OBJECTS)]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    for content, says in (("{", "not JSON"), ('{"items": [{"kind": "Service"}]}', "metadata: missing"),
                          ('{"items": [{"kind": "Service", "metadata": {"name": "a"}, "spec": '
                           '{"clusterIP": "10.0.0.1", "ports": [{"port": 0}]}}]}', "outside 1..65535")):
        obj = tmp_path / "o.json"
        obj.write_text(content)
        assert main(["conform", "proxy", "--iptables-save", str(DATA / "good.iptables-save"),
                     "--objects", str(obj)]) == 2
        err = capsys.readouterr().err
        assert says in err and err.count("\n") == 1, err
    assert main(["conform", "proxy", "--iptables-save", str(tmp_path / "missing"),
                 "--objects", str(OBJECTS)]) == 2
    capsys.readouterr()


def test_outputs_are_never_overwritten(tmp_path, capsys):
    junit = tmp_path / "r.xml"
    junit.write_text("mine")
    code, _, err = conform(capsys, DATA / "good.iptables-save", "--junit", str(junit))
    assert code == 2 and "already exists" in err and junit.read_text() == "mine"
    out = tmp_path / "out"
    out.mkdir()
    (out / "x").write_text("mine")
    code, _, err = conform(capsys, DATA / "good.iptables-save", "--out", str(out))
    assert code == 2 and "already holds files" in err


def test_objects_reader_follows_the_api():
    ports = {sp.key: sp for sp in objects.read(OBJECTS)}
    web = ports["shop/web:http"]
    assert web.node_port == 30080 and web.vip == ip("10.96.12.40")
    assert [e.port for e in web.endpoints] == [8080] * 4
    assert [e.ready for e in web.endpoints] == [True, True, True, False]
    dns = [k for k in ports if k.startswith("kube-system/kube-dns")]
    assert sorted(dns) == ["kube-system/kube-dns:dns", "kube-system/kube-dns:dns-tcp",
                           "kube-system/kube-dns:metrics"]
    assert ports["kube-system/kube-dns:dns"].proto == "UDP"
    assert ports["shop/cart:grpc"].affinity
    # nil conditions: ready, serving = ready, not terminating (EndpointConditions v1)
    doc = objects_doc([{"name": "a", "vip": "10.96.0.5", "ports": [("", 80, "TCP", 80, 0)],
                        "endpoints": [("10.244.0.9", True, True, False)]}])
    doc["items"][1]["endpoints"][0]["conditions"] = {}
    (sp,) = objects.from_json(doc)
    assert (sp.endpoints[0].ready, sp.endpoints[0].serving, sp.endpoints[0].terminating) == \
        (True, True, False)


# --- the checks on the realistic dumps ------------------------------------------


def test_the_correct_dump_is_proved(capsys):
    code, doc, _ = conform(capsys, DATA / "good.iptables-save")
    assert code == 0 and doc["passed"]
    assert {c["name"] for c in doc["checks"]} == {
        "cluster_ip_endpoints", "node_port_endpoints", "endpoints_chosen_uniformly",
        "no_endpoints_rejected", "pod_to_pod_not_masqueraded", "masquerade_marked"}
    # every Service port with endpoints was a case, none was skipped
    assert next(c for c in doc["checks"] if c["name"] == "cluster_ip_endpoints")["checked"] == 7


@pytest.mark.parametrize("name, check, rule_in, packet_to", [
    ("stale-endpoint", "cluster_ip_endpoints", "DNAT --to-destination 10.244.2.99:8443",
     "10.96.0.1"),
    ("probability-off-by-one", "endpoints_chosen_uniformly", "-m statistic --mode random", None),
    ("missing-endpoint", "endpoints_chosen_uniformly", "-j KUBE-SEP-", None),
    ("no-reject", "no_endpoints_rejected", "filter", "10.96.12.43"),
    ("masquerade-pods", "pod_to_pod_not_masqueraded", "nat KUBE-POSTROUTING", None),
    ("nodeport-unmarked", "masquerade_marked", "-j KUBE-EXT-", None),
    # D1 of the audit: pod-to-pod traffic SNATed (not MASQUERADEd) in POSTROUTING
    ("snat-pods", "pod_to_pod_not_masqueraded", "-j SNAT --to-source 10.244.0.1", None),
    # D2 of the audit: every pod client of shop/web pinned to its first endpoint
    ("pods-pinned", "endpoints_chosen_uniformly", "-s 10.244.0.0/16 -j KUBE-SEP-2JOJAU3NJ2PVJYOJ",
     None),
])
def test_each_seeded_fault_names_the_rule_and_a_packet(tmp_path, capsys, name, check, rule_in,
                                                       packet_to):
    out = tmp_path / "out"
    code, doc, _ = conform(capsys, DATA / f"{name}.iptables-save", "--out", str(out))
    assert code == 1 and not doc["passed"]
    failed = {c["name"] for c in doc["checks"] if not c["ok"]}
    assert check in failed
    finding = next(c for c in doc["checks"] if c["name"] == check)["findings"][0]
    assert rule_in in finding["rule"], finding
    # the rule is named by table, chain and line; the line holds that rule
    table, chain, _, line = finding["rule"].split(":")[0].split()
    text = (DATA / f"{name}.iptables-save").read_text().splitlines()[int(line) - 1]
    assert f"-A {chain} " in text and finding["rule"].endswith(text)
    assert finding["packet"]["dst"] and finding["packet"]["dport"]
    if packet_to:
        assert finding["packet"]["dst"] == packet_to
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] is False
    traces = sorted(out.glob(f"proxy-{check}-*.itf.json"))
    assert traces
    trace = json.loads(traces[0].read_text())
    assert trace["#meta"]["property"] == check and trace["states"][-1]["#meta"]["action"] == "Violation"


def test_a_pod_to_pod_snat_is_reported_as_a_source_rewrite(capsys):
    """D1: the receiver sees 10.244.0.1, not the pod's address; only this
    check fails, the packet comes from and goes to the cluster CIDR."""
    code, doc, _ = conform(capsys, DATA / "snat-pods.iptables-save")
    assert code == 1
    assert {c["name"] for c in doc["checks"] if not c["ok"]} == {"pod_to_pod_not_masqueraded"}
    f = next(c for c in doc["checks"] if c["name"] == "pod_to_pod_not_masqueraded")["findings"]
    assert f and all("SNAT to 10.244.0.1" in x["message"] for x in f)
    for x in f:
        assert contains(cidr(CIDR), ip(x["packet"]["src"])) and x["packet"]["src"] != "10.244.0.1"


def test_a_pod_client_pinned_to_one_endpoint_is_judged(capsys):
    """D2: the dump is uniform for clients outside the cluster and for the
    node's own 203.0.113.10; only a source in the cluster CIDR is pinned."""
    code, doc, _ = conform(capsys, DATA / "pods-pinned.iptables-save")
    assert code == 1
    assert {c["name"] for c in doc["checks"] if not c["ok"]} == {"endpoints_chosen_uniformly"}
    f = next(c for c in doc["checks"] if c["name"] == "endpoints_chosen_uniformly")["findings"]
    assert [x["service"] for x in f] == ["shop/web:http"]
    assert contains(cidr(CIDR), ip(f[0]["packet"]["src"]))
    d = read(DATA / "pods-pinned.iptables-save")
    outside = distribution(d, Packet(ip("198.51.100.7"), ip("10.96.12.40"), "TCP", 80))
    assert sorted(o.dst for _, o in outside) == sorted(ip(a) for a in
                                                       ("10.244.1.5", "10.244.1.6", "10.244.2.7"))


def test_source_classes_cut_the_address_space_at_every_source_match():
    """Each -s prefix a Service's packets can meet gives its inside and its
    outside a source of their own; a prefix of another Service does not."""
    text = ("*nat\n:PREROUTING ACCEPT [0:0]\n:A - [0:0]\n"
            "-A PREROUTING -d 10.96.0.1/32 -j A\n"
            "-A PREROUTING -s 192.168.0.0/16 -d 10.96.0.2/32 -j A\n"
            "-A A -s 10.244.0.0/16 -j RETURN\n-A A ! -s 10.244.3.4/32 -j RETURN\nCOMMIT\n")
    got = source_classes(parse(text), [(ip("10.96.0.1"), 80)])
    assert got == [0, ip("10.244.0.0"), ip("10.244.3.4"), ip("10.244.3.5"), ip("10.245.0.0")]
    got = source_classes(parse(text), [(ip("10.96.0.2"), 80)], (ip("10.244.9.9"),))
    assert ip("192.168.0.0") in got and ip("192.169.0.0") in got and ip("10.244.9.9") in got


def test_the_human_summary_names_rule_and_packet(capsys):
    code = main(["conform", "proxy", "--iptables-save", str(DATA / "stale-endpoint.iptables-save"),
                 "--objects", str(OBJECTS), "--cluster-cidr", CIDR, "--out",
                 str(Path(pytest.importorskip("tempfile").mkdtemp()) / "o")])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL cluster_ip_endpoints" in out and "rule:     nat KUBE-SEP-" in out
    assert "10.244.2.99:8443" in out and "packet " in out


def test_every_fault_of_the_writer_is_caught_and_the_clean_dump_passes():
    """The writer's catalog, on generated Services (more of them, and a
    UDP one): the clean dump proves, each fault fails its own check."""
    svcs = example_services(7, 3)
    ports = objects.from_json(objects_doc(svcs))
    block = cidr(CIDR)
    assert Checker(parse(write_dump(ports, block)), ports, block).run().passed
    expect = {"stale_endpoint": "cluster_ip_endpoints", "probability_off_by_one":
              "endpoints_chosen_uniformly", "missing_endpoint": "endpoints_chosen_uniformly",
              "no_reject": "no_endpoints_rejected", "masquerade_pods":
              "pod_to_pod_not_masqueraded", "nodeport_unmarked": "masquerade_marked",
              "postrouting_all": "pod_to_pod_not_masqueraded"}
    assert set(expect) == set(FAULTS)
    for fault, check in expect.items():
        v = Checker(parse(write_dump(ports, block, fault)), ports, block).run()
        failed = {c.name for c in v.checks if not c.ok}
        assert check in failed, fault
        if fault == "stale_endpoint":
            # the first Service (the stale endpoint's) is a NodePort: caught there too
            assert ports[0].node_port and "node_port_endpoints" in failed


def test_a_guessed_cluster_cidr_is_said_and_narrows_the_masquerade_check(capsys):
    code = main(["conform", "proxy", "--iptables-save", str(DATA / "good.iptables-save"),
                 "--objects", str(OBJECTS), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert any("cluster CIDR assumed" in n for n in doc["notes"])
    assert next(c for c in doc["checks"] if c["name"] == "masquerade_marked")["note"].startswith("PARTLY")


# --- the distribution ---------------------------------------------------------------


def test_the_distribution_is_the_cascade_of_statistic_probabilities():
    d = read(DATA / "good.iptables-save")
    web = Packet(ip("198.51.100.7"), ip("10.96.12.40"), "TCP", 80)
    dist = distribution(d, web)
    assert sum(p for p, _ in dist) == 1
    shares = {(o.dst, o.dport): p for p, o in dist}
    assert set(shares) == {(ip(a), 8080) for a in ("10.244.1.5", "10.244.1.6", "10.244.2.7")}
    for p in shares.values():
        assert abs(p - Fraction(1, 3)) <= Fraction(3, STAT_ONE)
    off = read(DATA / "probability-off-by-one.iptables-save")
    shares = {(o.dst, o.dport): p for p, o in distribution(off, web)}
    assert sorted(shares.values()) == [Fraction(1, 2), Fraction(1, 2)]
    empty = distribution(d, Packet(ip("10.244.3.3"), ip("10.96.12.43"), "TCP", 80))
    assert [(p, o.fate) for p, o in empty] == [(1, REJECTED)]


# --- the encoding against the concrete semantics -------------------------------------

FUZZ = settings(max_examples=40, derandomize=True, deadline=None,
                suppress_health_check=list(HealthCheck))
_ENC: dict = {}


def _encoded(name):
    if name not in _ENC:
        d = read(DATA / f"{name}.iptables-save")
        enc = Encoding(d)
        p = enc.packet()
        _ENC[name] = (d, enc, p, enc.outcome(p))
    return _ENC[name]


def _addresses():
    known = ["10.96.0.1", "10.96.0.10", "10.96.12.40", "10.96.12.41", "10.96.12.43",
             "10.244.1.5", "10.244.2.99", "198.51.100.7", "203.0.113.10", "10.244.0.1",
             "10.244.2.7"]
    return st.sampled_from([ip(a) for a in known]) | st.integers(0, 2 ** 32 - 1)


@FUZZ
@given(name=st.sampled_from(["good", "stale-endpoint", "masquerade-pods", "no-reject",
                             "snat-pods", "pods-pinned"]),
       src=_addresses(), dst=_addresses(), proto=st.sampled_from(["TCP", "UDP", "SCTP"]),
       dport=st.sampled_from([53, 80, 443, 9000, 30080, 30081]) | st.integers(1, 65535),
       hook=st.sampled_from([PREROUTING, OUTPUT]), local=st.booleans(),
       recent=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_z3_outcome_equals_the_concrete_traversal(name, src, dst, proto, dport, hook, local,
                                                  recent, seed):
    """The Z3 terms pinned to one packet and one set of draws give exactly
    what :func:`replay` gives: fate, destination, port, mark, masquerade."""
    d, enc, p, o = _encoded(name)
    names = sorted(enc.coins)
    coins = {n: bool((seed >> (k % 16)) & 1) for k, n in enumerate(names)}
    pkt = Packet(src, dst, proto, dport, hook, local, 40000, "eth0", "eth0",
                 frozenset(enc.recent_names) if recent else frozenset())
    out = replay(d, pkt, coins)
    s = z3.Solver()
    s.add(p.src == bv(src), p.dst == bv(dst), p.proto == bv(PROTO_CODE[proto], 2),
          p.dport == bv(dport, 16), p.sport == bv(40000, 16), p.output == (hook == OUTPUT),
          p.dst_local == local, p.in_iface == bv(enc.ifaces.index("kmc-other0"), 8),
          p.out_iface == bv(enc.ifaces.index("kmc-other0"), 8))
    s.add([b == recent for b in p.recent.values()])
    s.add([enc.coins[n] == v for n, v in coins.items()])
    assert s.check() == z3.sat
    m = s.model()
    assert FATES[m.eval(o.fate).as_long()] == out.fate
    assert m.eval(o.dst).as_long() == out.dst and m.eval(o.dport).as_long() == out.dport
    assert m.eval(o.mark).as_long() == out.mark
    assert z3.is_true(m.eval(o.masqueraded, model_completion=True)) == out.masqueraded
    # the source rewrite (D1 of the audit): SNAT taken, its address, the source seen
    snatted = z3.is_true(m.eval(o.snatted, model_completion=True))
    assert snatted == (out.snat is not None and out.snat != -1)
    if snatted:
        assert m.eval(o.snat).as_long() == out.snat
    assert z3.is_true(m.eval(o.src_rewritten, model_completion=True)) == \
        out.source_rewritten(src)


def test_kernel_probability_and_replay_of_a_named_draw():
    d = read(DATA / "good.iptables-save")
    pkt = Packet(ip("198.51.100.7"), ip("10.96.12.40"), "TCP", 80)
    by_coins = {tuple(c[:2] for c in o.coins): o for _, o in distribution(d, pkt)}
    for draws, o in by_coins.items():
        again = replay(d, pkt, dict(draws))
        assert (again.fate, again.dst, again.dport) == (FORWARDED, o.dst, o.dport)


@FUZZ
@given(name=st.sampled_from(["good", "stale-endpoint", "nodeport-unmarked"]),
       which=st.integers(0, 50), src=_addresses(), proto=st.sampled_from(["TCP", "UDP"]),
       dport=st.sampled_from([53, 80, 443, 9000, 9153, 30080, 30081]) | st.integers(1, 65535),
       hook=st.sampled_from([PREROUTING, OUTPUT]), seed=st.integers(0, 2 ** 16))
def test_a_sliced_encoding_answers_as_the_whole_one(name, which, src, proto, dport, hook, seed):
    """The per-class encodings leave rules out; pinned to a packet of the
    class, each answers exactly as the concrete traversal does."""
    from kubemc.conformance.proxy.checks import NODE_ADDR
    from kubemc.conformance.proxy.symbolic import Slice, other_dst_keys

    d = read(DATA / f"{name}.iptables-save")
    vips = sorted({sp.vip for sp in objects.read(OBJECTS)})
    classes = [(Slice(dst=v, local=False), v, False) for v in vips]
    classes.append((Slice(dst=NODE_ADDR, dport=dport, local=True), NODE_ADDR, True))
    other = next(a for a in (ip("10.244.7.7"), ip("8.8.8.8")) if a not in other_dst_keys(d))
    classes.append((Slice(other_dst=True, local=False), other, False))
    sl, dst, local = classes[which % len(classes)]
    enc = Encoding(d, sl)
    p = enc.packet()
    o = enc.outcome(p)
    coins = {n: bool((seed >> (k % 16)) & 1) for k, n in enumerate(sorted(enc.coins))}
    pkt = Packet(src, dst, proto, dport, hook, local, 40000, "eth0", "eth0")
    out = replay(d, pkt, coins)
    s = z3.Solver()
    s.add(enc.well_formed(p))
    s.add(p.src == bv(src), p.dst == bv(dst), p.proto == bv(PROTO_CODE[proto], 2),
          p.dport == bv(dport, 16), p.sport == bv(40000, 16), p.output == (hook == OUTPUT),
          p.dst_local == local, p.in_iface == bv(enc.ifaces.index("kmc-other0"), 8),
          p.out_iface == bv(enc.ifaces.index("kmc-other0"), 8))
    s.add([b == False for b in p.recent.values()])  # noqa: E712
    s.add([enc.coins[n] == v for n, v in coins.items()])
    assert s.check() == z3.sat
    m = s.model()
    assert FATES[m.eval(o.fate).as_long()] == out.fate
    assert (m.eval(o.dst).as_long(), m.eval(o.dport).as_long()) == (out.dst, out.dport)
    assert m.eval(o.mark).as_long() == out.mark
    assert z3.is_true(m.eval(o.masqueraded, model_completion=True)) == out.masqueraded


def test_live_without_root_or_tools_is_exit_3_with_the_fix(monkeypatch, capsys):
    import kubemc.conformance.adapters.proxy.live as live

    monkeypatch.setattr(live.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(live.shutil, "which", lambda tool: None)
    code = main(["conform", "proxy", "--iptables-save", str(DATA / "good.iptables-save"),
                 "--objects", str(OBJECTS), "--live"])
    err = capsys.readouterr().err
    assert code == 3 and err.count("\n") == 1
    assert "root" in err and "apt-get install iproute2" in err and "apt-get install iptables" in err

"""The ``conform cni`` checks on recorded runs, without root: each check is
shown to pass on a conforming history and to fail on a seeded bug, and bad
input to the command is one line and exit 2.

The conforming pieces are what the real bridge + host-local plugins printed
(``tests/test_conform_cni.py`` runs them); the seeded ones change one thing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kubemc.checker.cli import main as kubemc
from kubemc.checker.errors import BadInput
from kubemc.conformance.history import Recorder
from kubemc.conformance.adapters.cni import conf as cni_conf
from kubemc.conformance.traffic.cni import ModelRun, model_for, plan
from kubemc.conformance.validate import cni_cleanup, cni_ipam, cni_packets, cni_protocol
from kubemc.conformance.validate.cni import CniHistory, check_availability, run_checks
from kubemc.conformance.validate.cni_spec import error_problems, success_problems, version_problems

REPO = Path(__file__).resolve().parents[1]
NETNS = "/run/netns/kcni000000-p0a0"
GOOD = {"cniVersion": "1.0.0",
        "interfaces": [{"name": "cni0", "mac": "b2:79:49:35:eb:ef"},
                       {"name": "veth02f1eb42", "mac": "72:89:55:d6:a2:40"},
                       {"name": "eth0", "mac": "12:2d:14:db:29:27", "sandbox": NETNS}],
        "ips": [{"interface": 2, "address": "10.22.0.2/24", "gateway": "10.22.0.1"}],
        "routes": [{"dst": "0.0.0.0/0"}], "dns": {}}


def _bad(**change):
    doc = json.loads(json.dumps(GOOD))
    for path, value in change.items():
        *head, last = path.split("__")
        target = doc
        for k in head:
            target = target[int(k)] if k.isdigit() else target[k]
        target[int(last) if last.isdigit() else last] = value
    return doc


# -- the spec's result and error types --------------------------------------------------


def test_a_real_bridge_result_conforms():
    assert success_problems(GOOD, "1.0.0", NETNS, "eth0") == []


@pytest.mark.parametrize("change, words", [
    ({"cniVersion": "0.4.0"}, "cniVersion"),
    ({"ips__0__address": "10.22.0.2"}, "CIDR"),
    ({"ips__0__interface": 3}, "no index"),
    ({"ips__0__gateway": "gw"}, "not an IP"),
    ({"routes__0__dst": "default"}, "routes[0].dst"),
    ({"interfaces__2__sandbox": "/run/netns/other"}, "sandbox"),
    ({"dns": {"nameservers": ["x"]}}, "nameservers"),
])
def test_seeded_result_defects_are_named(change, words):
    problems = success_problems(_bad(**change), "1.0.0", NETNS, "eth0")
    assert problems and any(words in p for p in problems), problems


def test_error_codes_as_the_spec_reserves_them():
    ok = {"code": 999, "msg": "failed to open netns"}          # what the real bridge prints
    assert error_problems(json.dumps(ok), ok, "1.0.0") == []
    assert error_problems("", {"code": 7, "msg": "x", "cniVersion": "1.0.0"}, "1.0.0") == []
    assert error_problems("", {"code": 8, "msg": "x"}, "1.0.0")           # reserved
    assert error_problems("", {"code": 50, "msg": "x"}, "1.0.0")          # 1.1 only
    assert error_problems("", {"code": 50, "msg": "x"}, "1.1.0") == []
    assert error_problems("", {"code": "7", "msg": "x"}, "1.0.0")
    assert error_problems("", {"code": 7, "msg": "x", "cniVersion": "0.4.0"}, "1.0.0")
    assert error_problems("oops", None, "1.0.0")


def test_version_result():
    good = {"cniVersion": "1.0.0", "supportedVersions": ["0.4.0", "1.0.0"]}
    assert version_problems(good, "1.0.0") == []
    assert version_problems({"cniVersion": "1.0.0", "supportedVersions": ["0.4.0"]}, "1.0.0")


# -- checks over a history ----------------------------------------------------------------

META = {"cniVersion": "1.0.0", "host_local": True, "nodes": [
    {"index": 0, "pod_cidr": "10.22.0.0/24", "ip": "192.168.0.10"},
    {"index": 1, "pod_cidr": "10.22.1.0/24", "ip": "192.168.0.11"}]}


class History:
    """Builds a CNI history the way the runner records it."""

    def __init__(self):
        self.rec = Recorder(meta=META)

    def plugin(self, f, container, node, purpose, ok=True, result=None, stdout="", code=0,
               **observed):
        tok = self.rec.invoke(0, f, container, {"node": node, "pod": 0, "netns": NETNS,
                                                "ifname": "eth0", "purpose": purpose})
        call = {"command": f, "plugin": "bridge", "exit_code": code if not ok else 0,
                "stdout": stdout or (json.dumps(result) if result else "")}
        self.rec.complete(tok, "ok" if ok else "fail", {"calls": [call], "result": result,
                                                        "error": "" if ok else stdout, **observed})

    def add(self, container, node, address):
        res = _bad(ips__0__address=address)
        self.plugin("ADD", container, node, "add", result=res)

    def other(self, f, key, inp, out):
        tok = self.rec.invoke(0, f, key, inp)
        self.rec.complete(tok, "ok", out)

    def history(self, dataplane=None):
        return CniHistory(self.rec.operations(), META, dataplane)


def _names(vs):
    return [v.check for v in vs]


def test_ipam_checks_pass_and_catch_duplicate_outside_and_leak():
    h = History()
    h.add("c0", 0, "10.22.0.2/24")
    h.add("c1", 1, "10.22.1.2/24")
    h.other("store", None, {"node": 0, "label": "x"}, {"reservations": {"10.22.0.2": "c0"}})
    h.plugin("DEL", "c0", 0, "delete")
    h.other("store", None, {"node": 0, "label": "y"}, {"reservations": {}})
    good = h.history()
    for fn in (cni_ipam.check_unique, cni_ipam.check_in_podcidr, cni_ipam.check_released):
        assert fn(good)[0] == [], fn
    bad = History()
    bad.add("c0", 0, "10.22.0.2/24")
    bad.add("c1", 0, "10.22.0.2/24")                      # the same address twice
    bad.add("c2", 1, "10.22.0.3/24")                      # node 1's pod in node 0's block
    bad.plugin("DEL", "c0", 0, "delete")
    bad.other("store", None, {"node": 0, "label": "z"},
              {"reservations": {"10.22.0.2": "c0"}})     # c0's address kept after its DEL
    h2 = bad.history()
    assert _names(cni_ipam.check_unique(h2)[0]) == ["address-unique"]
    assert _names(cni_ipam.check_in_podcidr(h2)[0]) == ["address-in-podcidr"]
    msgs = [v.message for v in cni_ipam.check_released(h2)[0]]
    assert any("after its DEL" in m for m in msgs), msgs


def test_address_assigned_catches_a_pod_given_no_address():
    h = History()
    h.add("c0", 0, "10.22.0.2/24")
    h.add("c1", 1, "10.22.1.2/24")
    assert cni_ipam.check_assigned(h.history()) == ([], 2, "")
    # the audit's plugin: ADD exits 0 with {"interfaces": [], "ips": [], "dns": {}}
    bad = History()
    bad.add("c0", 0, "10.22.0.2/24")
    bad.plugin("ADD", "c1", 1, "add", result={"cniVersion": "1.0.0", "interfaces": [],
                                              "ips": [], "dns": {}})
    bad.plugin("ADD", "c2", 1, "add", result={"cniVersion": "1.0.0"})     # no ips at all
    bad.plugin("ADD", "c3", 0, "add", ok=False, stdout='{"code": 11, "msg": "later"}', code=1)
    vs, checked, _ = cni_ipam.check_assigned(bad.history())
    assert checked == 3                                   # a failed ADD gives no live pod
    assert _names(vs) == ["address-assigned"] * 2
    assert "ADD of c1" in vs[0].message and "no address" in vs[0].message
    assert "ADD of c2" in vs[1].message
    # the other address checks see nothing wrong with it: this check is what catches it
    h2 = bad.history()
    assert cni_ipam.check_unique(h2)[0] == [] and cni_ipam.check_in_podcidr(h2)[0] == []


def test_a_pod_without_an_address_is_probed_and_lost():
    """Probes to a pod whose ADD gave it no address are recorded as lost, not left out:
    reachability fails; no-nat and model-agrees say they could not judge them."""
    h = History()
    h.other("probe", "t1", {"proto": "TCP", "sender": "pod-0", "src": "10.22.0.2", "src_node": 0,
                            "receiver": "pod-1", "dst": None, "port": 17171},
            {"delivered_to": None, "seen_src": None,
             "error": "pod-1 has no address (its ADD result lists none): nothing can reach it"})
    hist = h.history(_dataplane(False))
    (v,) = cni_packets.check_reachability(hist)[0]
    assert "pod-1 (no address)" in v.message and "nothing can reach it" in v.message
    vs, checked, note = cni_packets.check_model_agrees(hist)
    assert (vs, checked) == ([], 0) and note.startswith("1 probes not judged")


def test_ipam_matches_model():
    h = History()
    h.other("store", None, {"node": 0, "label": "x", "model": ["10.22.0.2", "10.22.0.3"]},
            {"reservations": {"10.22.0.3": "c1", "10.22.0.2": "c0"}})
    assert cni_ipam.check_matches_model(h.history()) == ([], 1, "")
    # host-local handed the freed .2 out again where round-robin takes .4 after the last (.3)
    bad = History()
    bad.other("store", None, {"node": 0, "label": "y", "model": ["10.22.0.3", "10.22.0.4"]},
              {"reservations": {"10.22.0.2": "c2", "10.22.0.3": "c1"}})
    (v,) = cni_ipam.check_matches_model(bad.history())[0]
    assert "host-local holds 10.22.0.2" in v.message and "model holds 10.22.0.4" in v.message


def test_protocol_checks():
    h = History()
    h.add("c0", 0, "10.22.0.2/24")
    h.plugin("CHECK", "c0", 0, "check")
    h.plugin("DEL", "c0", 0, "delete")
    h.plugin("DEL", "c0", 0, "repeat")
    h.plugin("DEL", "ghost", 0, "unknown", ok=False, stdout='{"code": 3, "msg": "unknown"}', code=1)
    good = h.history()
    for fn in (cni_protocol.check_result_schema, cni_protocol.check_error_codes,
               cni_protocol.check_after_add, cni_protocol.check_del_idempotent):
        assert fn(good)[0] == [], fn
    bad = History()
    bad.plugin("ADD", "c0", 0, "add", result=_bad(cniVersion="0.3.1"))
    bad.plugin("CHECK", "c0", 0, "check", ok=False, stdout='{"code": 8, "msg": "x"}', code=1)
    bad.plugin("DEL", "c0", 0, "repeat", ok=False, stdout='{"code": 100, "msg": "gone"}', code=1)
    h2 = bad.history()
    assert _names(cni_protocol.check_result_schema(h2)[0]) == ["result-schema"]
    assert _names(cni_protocol.check_error_codes(h2)[0]) == ["error-codes"]   # code 8 is reserved
    assert _names(cni_protocol.check_after_add(h2)[0]) == ["check-after-add"]
    assert _names(cni_protocol.check_del_idempotent(h2)[0]) == ["del-idempotent"]


# what the Debian bridge plugin (1.1.1) printed for a CHECK after a later ADD moved cni0's MAC
MAC_ERR = json.dumps({"code": 999, "msg": "Bridge interface cni0 Mac doesn't match: "
                      + GOOD["interfaces"][0]["mac"]})
LOWER = "02:00:00:00:00:01"


def _mac_history(host_macs, err=MAC_ERR, strict=False):
    h = History()
    h.add("c0", 0, "10.22.0.2/24")
    h.add("c1", 0, "10.22.0.3/24")
    h.plugin("CHECK", "c0", 0, "check", ok=False, stdout=err, code=1,
             **({"host_macs": host_macs} if host_macs is not None else {}))
    h.plugin("CHECK", "c1", 0, "check")
    return CniHistory(h.rec.operations(), META, None, strict=strict)


def test_a_bridge_mac_that_really_changed_is_the_documented_divergence():
    changed = {"cni0": LOWER, "veth02f1eb42": GOOD["interfaces"][1]["mac"]}
    h = _mac_history(changed)
    vs, checked, note = cni_protocol.check_after_add(h)
    assert vs == [] and checked == 2
    assert note.startswith("1 failed with the documented divergence bridge-mac-changed"), note
    assert [(name, op.key) for name, op in cni_protocol.divergences(h)] == [("bridge-mac-changed", "c0")]
    # the run's other checks see a CHECK that failed with code 999: allowed
    assert not any(c.violations for c in run_checks(h) if c.name in ("error-codes", "check-after-add"))
    # --strict: the same history fails check-after-add, naming the divergence and both MACs
    vs, _, note = cni_protocol.check_after_add(_mac_history(changed, strict=True))
    assert _names(vs) == ["check-after-add"] and note == ""
    assert "bridge-mac-changed" in vs[0].message and LOWER in vs[0].message
    assert GOOD["interfaces"][0]["mac"] in vs[0].message


@pytest.mark.parametrize("host_macs, err", [
    ({"cni0": GOOD["interfaces"][0]["mac"].upper()}, MAC_ERR),   # same message, MAC unchanged
    ({"cni0": None}, MAC_ERR),                                    # the bridge is gone
    ({}, MAC_ERR),                                                # the bridge not read
    (None, MAC_ERR),                                              # nothing observed
    ({"cni0": LOWER}, json.dumps({"code": 999, "msg": "Interface eth0 Mac doesn't match"})),
    ({"cni0": LOWER}, json.dumps({"code": 999, "msg": "Bridge interface cni1 Mac doesn't match: x"})),
])
def test_a_check_failure_that_is_not_the_divergence_is_a_violation(host_macs, err):
    h = _mac_history(host_macs, err)
    vs, _, note = cni_protocol.check_after_add(h)
    assert _names(vs) == ["check-after-add"] and note == "", (vs, note)
    assert cni_protocol.divergences(h) == []


def test_the_divergence_is_in_the_summary_json_and_junit(tmp_path):
    from kubemc.conformance.report.cni import summary, write_junit
    from kubemc.conformance.adapters.cni.suite import CniRunResult

    for strict in (False, True):
        h = _mac_history({"cni0": LOWER}, strict=strict)
        # the protocol checks (a history without probes fails availability, as it should)
        checks = [c for c in run_checks(h) if c.name in ("result-schema", "error-codes",
                                                         "check-after-add")]
        r = CniRunResult("000000", "bridge", "1.0.0", 1, 2, complete=True, strict=strict,
                      checks=checks)
        for name, _ in cni_protocol.divergences(h):
            r.divergences[name] = r.divergences.get(name, 0) + 1
        assert r.failed_checks == ([] if not strict else ["check-after-add"])
        assert r.passed is (not strict)
        text = summary(r)
        assert "divergence  bridge-mac-changed (1)" in text and "containernetworking/plugins#60" in text
        assert ("failed under --strict" in text) is strict
        doc = r.to_json()
        assert doc["divergences"]["bridge-mac-changed"]["count"] == 1 and doc["strict"] is strict
        assert "containernetworking/plugins#60" in doc["divergences"]["bridge-mac-changed"]["reference"]
        junit = tmp_path / f"junit-{strict}.xml"
        write_junit(r, junit)
        xml = junit.read_text()
        assert 'name="divergences" value="bridge-mac-changed=1"' in xml
        assert 'name="divergence.bridge-mac-changed"' in xml
        assert (f'failures="{int(strict)}"') in xml


def test_strict_is_an_option_of_conform_cni(capsys):
    with pytest.raises(SystemExit) as e:
        kubemc(["conform", "cni", "--help"])
    assert e.value.code == 0 and "--strict" in capsys.readouterr().out


def test_interfaces_removed():
    h = History()
    h.add("c0", 0, "10.22.0.2/24")
    # the node's own uplink is a veth too, but not one the ADD listed; cni0 is a bridge
    h.other("links", "c0", {"node": 0}, {"pod_links": ["lo"], "node_links": [["eth0", "veth"]]})
    assert cni_cleanup.check_removed(h.history())[0] == []
    bad = History()
    bad.add("c0", 0, "10.22.0.2/24")
    bad.other("links", "c0", {"node": 0}, {"pod_links": ["lo", "eth0"],
                                           "node_links": [["veth02f1eb42", "veth"]]})
    (v,) = cni_cleanup.check_removed(bad.history())[0]
    assert "eth0 in the sandbox" in v.message and "host veth veth02f1eb42" in v.message


def _dataplane(masq: bool):
    """The model's dataplane after AllocateCidr on 2 nodes, pods 0 (node 0) and 1 (node 1)."""
    import attrs

    from kubemc.model.network.dataplane import Pod
    run = ModelRun(model_for(2, 2, 0, 0))
    run.step("AllocateCidr", 0)
    run.step("AllocateCidr", 1)
    dp = run.machine.dataplane(run.state)
    nodes = tuple(attrs.evolve(n, bridge=attrs.evolve(n.bridge, ip_masq=masq)) for n in dp.nodes)
    pods = (Pod("pod-0", 0, 0x0A160002), Pod("pod-1", 1, 0x0A160102))
    return type(dp)(dp.cluster_cidr, nodes, pods)


def _probe(h, seen_src, delivered="pod-1"):
    h.other("probe", "t1", {"proto": "TCP", "sender": "pod-0", "src": "10.22.0.2", "src_node": 0,
                            "receiver": "pod-1", "dst": "10.22.1.2", "port": 17171},
            {"delivered_to": delivered, "seen_src": seen_src, "error": ""})


def test_packet_checks_against_the_model():
    h = History()
    _probe(h, "10.22.0.2")
    good = h.history(_dataplane(False))
    for fn in (cni_packets.check_reachability, cni_packets.check_no_nat,
               cni_packets.check_model_agrees):
        assert fn(good)[0] == [], fn
    nat = History()
    _probe(nat, "192.168.0.10")        # masqueraded to node 0's address
    assert _names(cni_packets.check_no_nat(nat.history(_dataplane(False)))[0]) == ["no-nat"]
    # the model without ipMasq predicts no NAT: the real packet disagrees
    assert _names(cni_packets.check_model_agrees(nat.history(_dataplane(False)))[0]) == ["model-agrees"]
    # the model with the configured ipMasq predicts exactly this NAT
    assert cni_packets.check_model_agrees(nat.history(_dataplane(True)))[0] == []
    lost = History()
    _probe(lost, None, delivered=None)
    assert _names(cni_packets.check_reachability(lost.history(_dataplane(False)))[0]) == ["reachability"]
    assert _names(cni_packets.check_model_agrees(lost.history(_dataplane(False)))[0]) == ["model-agrees"]


def test_a_run_that_did_nothing_does_not_pass():
    empty = CniHistory([], META, None, complete=True)
    assert _names(check_availability(empty)[0]) == ["availability"]
    cut = CniHistory([], META, None, complete=False)
    vs, _, note = check_availability(cut)
    assert vs == [] and note.startswith("UNDECIDED")
    assert len(run_checks(empty)) == 15


# -- the plan and the configuration -----------------------------------------------------


def test_plan_is_a_run_of_the_model():
    phases = plan(3, 12)
    kinds = [p.kind for p in phases]
    assert kinds[0] == "cidrs" and kinds[-2:] == ["probe", "teardown"]
    assert phases[1].concurrent and phases[1].pods == (0, 3, 6, 9)
    assert kinds.count("delete") == 2 and kinds.count("crash") == 1 and "del-unknown" in kinds
    run = ModelRun(model_for(3, 12, 2, 1))
    for n in range(3):
        run.step("AllocateCidr", n)
    assert [run.pod_cidr(n) for n in range(3)] == [(0x0A160000 + (n << 8), 24) for n in range(3)]
    with pytest.raises(RuntimeError, match="refuses"):
        run.step("CniAdd", 0)          # no sandbox yet: the model says no


@pytest.mark.parametrize("doc, words", [
    ([], "JSON object"),
    ({"cniVersion": "1.0.0", "name": "x", "plugins": []}, "non-empty"),
    ({"cniVersion": "9.9.9", "name": "x", "type": "bridge"}, "versions"),
    ({"cniVersion": "1.0.0", "plugins": [{"type": "bridge"}]}, "'name'"),
    ({"cniVersion": "1.0.0", "name": "x", "plugins": [{"type": "/bin/sh"}]}, "not a path"),
])
def test_bad_configurations_are_refused(doc, words):
    with pytest.raises(BadInput, match=words):
        cni_conf.normalize(doc)


def test_a_single_conf_is_a_list_of_one_and_nodes_get_their_podcidr():
    doc = cni_conf.normalize({"cniVersion": "1.0.0", "name": "n", "type": "bridge",
                              "ipam": {"type": "host-local", "subnet": "10.22.0.0/16"}})
    node = cni_conf.for_node(doc, (0x0A160100, 24), "store/n1")
    ipam = node["plugins"][0]["ipam"]
    assert ipam["ranges"] == [[{"subnet": "10.22.1.0/24", "gateway": "10.22.1.1"}]]
    assert "subnet" not in ipam and ipam["dataDir"] == "store/n1"


@pytest.mark.parametrize("argv, words", [
    (["--pods", "17"], "--pods"),
    (["--nodes", "0"], "--nodes"),
    (["--time-limit", "inf"], "finite"),
    (["--conf", "does-not-exist.conflist"], "no such file"),
    (["--plugin", "/nonexistent/plugin"], "not an executable"),
])
def test_bad_input_is_one_line_and_exit_2(argv, words, capsys):
    code = kubemc(["conform", "cni", *argv])
    err = capsys.readouterr().err
    assert code == 2, (code, err)
    assert words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_conf_that_is_not_json_is_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.conflist"
    bad.write_text("{not json")
    assert kubemc(["conform", "cni", "--conf", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "not JSON" in err and len(err.strip().splitlines()) == 1


def test_the_command_line_entry_point_exits_2_on_bad_input():
    p = subprocess.run([sys.executable, "-m", "kubemc.checker.cli", "conform", "cni", "--pods",
                        "0"],
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "--pods" in p.stderr and "Traceback" not in p.stderr


def test_without_root_it_is_exit_3_with_the_fix(monkeypatch, tmp_path, capsys):
    import kubemc.conformance.adapters.cni.netns as netns
    for name in ("bridge", "host-local"):       # plugins present (never run): root is what lacks
        (tmp_path / name).write_text("#!/bin/sh\nexit 1\n")
        (tmp_path / name).chmod(0o755)
    monkeypatch.setenv("CNI_PATH", str(tmp_path))
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    assert kubemc(["conform", "cni"]) == 3
    err = capsys.readouterr().err
    assert "needs root" in err and len(err.strip().splitlines()) == 1


def test_without_the_plugins_it_is_exit_3_with_the_fix(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("CNI_PATH", str(tmp_path))        # an empty plugin directory
    assert kubemc(["conform", "cni"]) == 3
    err = capsys.readouterr().err
    assert "apt-get install containernetworking-plugins" in err and "'bridge'" in err

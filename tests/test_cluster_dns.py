"""The cluster DNS addon (``model.cluster.dns``): the correct composition
holds with every cover reached, each mutant is caught by explore (the
liveness ones as lassos) and by hypothesis with a committed trace that
replays, the records are the specification's, the addon works on plain
tuples without the rest of the composition, and each property fails on a
state that breaks it."""

from __future__ import annotations

from pathlib import Path

import pytest
from controller_checks import (
    assert_caught_by_explore,
    assert_caught_by_hypothesis,
    assert_holds,
)
from helpers import run

from kubemc.checker import stateful, traces
from kubemc.checker.catalog.cluster import DNS_ADDON
from kubemc.model.cluster.dns import (
    API,
    DNS,
    NOERROR,
    NXDOMAIN,
    ClusterDns,
    DnsAddon,
    ServiceApiserver,
    key_of,
)
from kubemc.model.kernel import Step
from kubemc.properties import cluster_dns as props
from kubemc.properties.core import COVER

TRACES = Path(__file__).resolve().parents[1] / "traces" / "cluster"
MUTANTS = sorted(DNS_ADDON.mutants)
LIVENESS = {p.name for p in DNS_ADDON.properties if p.is_liveness}

LIST = Step("dns->apiserver.List")
DELIVER = Step("dns->apiserver.Deliver")
DROP = Step("dns.WatchDropped")


def create(name, families, ports):
    return Step("user->apiserver.Create", (name, families, ports))


def delete(name):
    return Step("user->apiserver.Delete", (name,))


A_NAME, B_NAME = "a.default.svc.cluster.local.", "b.default.svc.cluster.local."


# -- the catalog-wide checks ------------------------------------------------------


def test_the_correct_addon_holds_with_every_cover_reached():
    outcome = assert_holds(DNS_ADDON)
    assert outcome.stats.states > 5_000


def test_random_runs_of_the_correct_addon_find_nothing_and_reach_the_goals():
    outcome = stateful.check(DNS_ADDON.hypothesis_machine(), DNS_ADDON.properties,
                             profile="ci")
    assert outcome.counterexample is None
    for name in LIVENESS:
        assert outcome.convergence[name]["reached"] > 0, outcome.convergence[name]


@pytest.mark.parametrize("mutant", MUTANTS)
def test_each_mutant_is_caught_by_explore(mutant, tmp_path):
    cex = assert_caught_by_explore(DNS_ADDON, mutant, tmp_path)
    assert (cex.loop is not None) == (DNS_ADDON.mutants[mutant].violates in LIVENESS)


@pytest.mark.parametrize("mutant", MUTANTS)
def test_each_mutant_is_caught_by_hypothesis(mutant, tmp_path):
    assert_caught_by_hypothesis(DNS_ADDON, mutant, tmp_path)


@pytest.mark.parametrize("mutant", MUTANTS)
@pytest.mark.parametrize("engine", ["explore", "hypothesis"])
def test_each_mutant_has_a_committed_trace_that_still_reproduces(mutant, engine):
    target = DNS_ADDON.mutants[mutant].violates
    path = TRACES / f"{DNS_ADDON.name}-{target}-{engine}-{mutant}.itf.json"
    assert path.exists(), path.name
    trace = traces.load(path)
    assert trace["#meta"]["mutant"] == mutant and trace["#meta"]["property"] == target
    assert ("loop" in trace) == (target in LIVENESS)
    replay = traces.replay(trace)
    assert replay.reproduced, replay.message


def test_every_property_has_a_mutant_or_is_a_cover():
    targeted = {m.violates for m in DNS_ADDON.mutants.values()}
    checked = {p.name for p in DNS_ADDON.properties if p.kind != COVER}
    assert checked == targeted, checked ^ targeted


# -- the composition ------------------------------------------------------------------


def test_the_addon_and_the_user_talk_only_to_the_apiserver():
    machine = DNS_ADDON.machine()
    assert machine.talks_to() == {("user", "apiserver"), ("dns", "apiserver")}


def test_the_addon_lists_then_follows_the_watch_in_order():
    """Before its List the addon knows nothing (NXDOMAIN); a write is served
    only once its event is delivered; a delete is served until then, too
    (the lag the liveness properties allow), and NXDOMAIN after."""
    m = DNS_ADDON.machine()
    s = run(m)
    assert m.answer(s, A_NAME, "A") == (NXDOMAIN, ())
    s = run(m, LIST, create("b", "IPv6", "named"), state=s)
    assert m.answer(s, A_NAME, "A") == (NOERROR, ("10.96.0.10",))
    assert m.answer(s, A_NAME, "AAAA") == (NOERROR, ("fd00::10",))
    assert m.answer(s, B_NAME, "AAAA") == (NXDOMAIN, ())          # not delivered yet
    s = run(m, DELIVER, delete("a"), state=s)
    assert m.answer(s, B_NAME, "AAAA") == (NOERROR, ("fd00::11",))
    assert m.answer(s, B_NAME, "A") == (NOERROR, ())               # IPv6 only: no data
    assert m.answer(s, A_NAME, "A")[0] == NOERROR                  # delete not yet seen
    assert not props.deleted_services_nxdomain(m, s)
    s = run(m, DELIVER, state=s)
    for qtype in ("A", "AAAA", "SRV"):
        assert m.answer(s, A_NAME, qtype) == (NXDOMAIN, ())
    assert m.answer(s, "_http._tcp." + A_NAME, "SRV") == (NXDOMAIN, ())
    assert m.settled(s) and props.deleted_services_nxdomain(m, s)
    assert props.live_services_resolve(m, s) and props.srv_exactly_for_named_ports(m, s)


def test_a_dropped_watch_is_healed_by_a_relist_that_forgets_deleted_services():
    m = DNS_ADDON.machine()
    s = run(m, LIST, DROP, delete("a"))
    assert m.apply(s, DELIVER) is None            # no watch: nothing is delivered
    assert m.apply(s, DROP) is None               # the fault's budget is spent
    assert m.answer(s, A_NAME, "A")[0] == NOERROR  # served from the cache meanwhile
    s = run(m, LIST, state=s)
    assert m.zone(s) == () and props.relisted(m, s)
    stale = DNS_ADDON.machine("relist_keeps_stale")
    s = run(stale, LIST, DROP, delete("a"), LIST)
    assert stale.answer(s, A_NAME, "A")[1] and not props.deleted_services_nxdomain(stale, s)


def test_the_watch_delivers_in_resource_version_order():
    """A Service created then deleted before the addon hears of either: in
    order, the DELETED comes last and the name is NXDOMAIN; newest first (the
    composition's own mutant), the older ADDED re-adds it for good."""
    steps = (LIST, create("b", "IPv4", "named"), delete("b"), DELIVER, DELIVER)
    m = DNS_ADDON.machine()
    s = run(m, *steps)
    assert m.settled(s) and m.answer(s, B_NAME, "A") == (NXDOMAIN, ())
    bad = DNS_ADDON.machine("delivers_newest_first")
    assert bad.dns.mutant is None                  # the bug is the link's, not the addon's
    s = run(bad, *steps)
    assert bad.settled(s) and bad.answer(s, B_NAME, "A") == (NOERROR, ("10.96.0.11",))
    assert not props.deleted_services_nxdomain(bad, s)


def test_dual_stack_changes_keep_the_primary_address():
    """ServiceSpec.clusterIPs: a secondary address may be added or removed,
    the primary never changes."""
    m = DNS_ADDON.machine(updates=2)
    s = run(m, Step("user->apiserver.SetDualStack", ("a", False)), LIST)
    assert m.services(s)["a"][0] == ("10.96.0.10",)
    assert m.answer(s, A_NAME, "AAAA") == (NOERROR, ())
    s = run(m, Step("user->apiserver.SetDualStack", ("a", True)), DELIVER, state=s)
    assert m.services(s)["a"][0] == ("10.96.0.10", "fd00::10")   # freed, then taken again
    assert m.answer(s, A_NAME, "AAAA") == (NOERROR, ("fd00::10",))
    assert props.update_observed(m, s) and props.live_services_resolve(m, s)


def test_records_have_the_specifications_names_and_srv_only_for_named_ports():
    m = DNS_ADDON.machine()
    s = run(m, LIST)
    assert m.zone(s) == (
        ("_http._tcp.a.default.svc.cluster.local.", "SRV",
         (0, 100, 80, "a.default.svc.cluster.local.")),
        ("a.default.svc.cluster.local.", "A", "10.96.0.10"),
        ("a.default.svc.cluster.local.", "AAAA", "fd00::10"),
    )
    # the unnamed 53/UDP port has no SRV record; names compare case-insensitively
    assert m.answer(s, "_HTTP._TCP.A.Default.svc.cluster.local", "SRV")[1] == (
        (0, 100, 80, A_NAME),)
    assert m.answer(s, "_tcp." + A_NAME, "SRV") == (NOERROR, ())   # an empty non-terminal
    assert m.answer(s, "_53._udp." + A_NAME, "SRV") == (NXDOMAIN, ())


def test_each_srv_record_carries_its_own_ports_number():
    """A Service with two named ports (http/80, metrics/9090) has one SRV
    record per port, each with that port's number; the mutant that gives
    every record the first named port's number (a hard-coded 80 does the
    same here) serves 80 for metrics, which the property refuses."""
    def b_srv(machine, state, port):
        return machine.answer(state, f"_{port}._tcp." + B_NAME, "SRV")

    steps = (create("b", "IPv4", "named"), LIST)
    m = DNS_ADDON.machine()
    s = run(m, *steps)
    assert b_srv(m, s, "http") == (NOERROR, ((0, 100, 80, B_NAME),))
    assert b_srv(m, s, "metrics") == (NOERROR, ((0, 100, 9090, B_NAME),))
    assert props.srv_exactly_for_named_ports(m, s)
    bad = DNS_ADDON.machine("srv_number_of_first_named_port")
    s = run(bad, *steps)
    assert b_srv(bad, s, "http") == (NOERROR, ((0, 100, 80, B_NAME),))
    assert b_srv(bad, s, "metrics") == (NOERROR, ((0, 100, 80, B_NAME),))
    assert bad.settled(s) and not props.srv_exactly_for_named_ports(bad, s)


def test_the_addon_works_on_plain_tuples_without_the_composition():
    """What another apiserver part plugs in: the addon's state, its relist
    and its apply-a-watch-event, and its answers."""
    addon = DnsAddon(watch_drops=0)
    (state,) = addon.init_states()
    svc = (("10.96.0.10",), (("dns", "UDP", 53),))
    state = addon.relist(state, ((key_of("kube-dns"), 7, svc),))
    state = addon.apply_event(state, (8, key_of("web"), (("fd00::10",), ())))
    name = "kube-dns.default.svc.cluster.local."
    assert addon.answer(state, name, "A") == (NOERROR, ("10.96.0.10",))
    assert addon.answer(state, "_dns._udp." + name, "SRV")[1] == ((0, 100, 53, name),)
    assert addon.answer(state, "web.default.svc.cluster.local.", "AAAA")[1] == ("fd00::10",)
    state = addon.apply_event(state, (9, key_of("web"), None))
    assert addon.answer(state, "web.default.svc.cluster.local.", "AAAA") == (NXDOMAIN, ())
    assert addon.dropped(state) is None          # no budget for dropped watches


# -- the properties fail on states that break them ------------------------------------


def _with_cache(state, cache):
    dns = state[DNS]
    return state[:DNS] + ((dns[0], cache) + dns[2:],)


def test_the_properties_fail_on_states_that_break_them():
    m = DNS_ADDON.machine()
    s = run(m, LIST)
    assert all(p.check(m, s) for p in DNS_ADDON.properties if p.kind != COVER)
    (key, rv, (ips, ports)), = s[DNS][1]
    # the addon knows only the primary address: AAAA missing
    assert not props.live_services_resolve(m, _with_cache(s, ((key, rv, (ips[:1], ports)),)))
    # a cache still holding a Service the apiserver no longer has
    gone = s[:API] + (((),) + s[API][1:],) + s[API + 1:]
    assert not props.deleted_services_nxdomain(m, gone)
    # an SRV record for the unnamed port, or none for the named one
    named_only = ((key, rv, (ips, (("http", "TCP", 8080),))),)
    assert not props.srv_exactly_for_named_ports(m, _with_cache(s, named_only))
    # an address the Service never had
    foreign = ((key, rv, (("10.96.0.11", "fd00::10"), ports)),)
    assert not props.answers_only_addresses_the_service_had(m, _with_cache(s, foreign))
    # and the same cache under another name: b never had 10.96.0.10
    other = ((key_of("b"), rv, (ips, ports)),)
    assert not props.answers_only_addresses_the_service_had(m, _with_cache(s, other))


def test_an_aaaa_record_of_an_ipv4_address_names_an_address_never_had():
    """The mutant's AAAA answer, ::ffff:10.96.0.10, is a 128-bit address a
    ClusterIP never was; the A answer is then empty as well."""
    m = DNS_ADDON.machine("aaaa_from_ipv4")
    s = run(m, LIST)
    assert m.answer(s, A_NAME, "AAAA") == (NOERROR, ("::ffff:10.96.0.10", "fd00::10"))
    assert not props.answers_only_addresses_the_service_had(m, s)
    assert not props.live_services_resolve(m, s)


def test_a_bad_mutant_name_is_refused():
    with pytest.raises(ValueError, match="no mutant"):
        ClusterDns(mutant="nope")
    assert isinstance(DNS_ADDON.machine().api, ServiceApiserver)


def test_a_bound_past_its_ceiling_is_one_line_and_exit_2(capsys):
    from kubemc.checker.cli import main

    assert main(["check", "cluster", "--bound", "watch_drops=99"]) == 2
    err = capsys.readouterr().err
    assert "cluster-dns: watch_drops=99 is outside" in err and err.count("\n") == 1

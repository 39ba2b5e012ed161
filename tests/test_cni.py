"""host-local IPAM and the CNI machine: properties hold, every mutant is caught."""

import pytest

from kubemc.checker.catalog.network import CNI_FULL_RANGE_MODEL, CNI_MODEL
from kubemc.checker.explore import explore
from kubemc.checker.run import targeted
from kubemc.checker.stateful import check as stateful_check
from kubemc.model.cni import hostlocal
from kubemc.model.cni.machine import Cni, container_id
from kubemc.model.kernel import Step
from kubemc.model.network import addr
from kubemc.properties.cni import (ADD_REFUSED_ON_FULL_RANGE, PROPERTIES,
                                   add_takes_next_free_address, last_reserved_moves_only_on_add)

NET = addr.cidr("10.22.3.0/24")
GW = NET[0] + 1
RANGE = hostlocal.Range(NET, GW + 1, GW + 3, GW)


def test_host_local_allocates_round_robin_and_wraps():
    store = hostlocal.EMPTY
    got = []
    for cid in (1, 2, 3):
        store, ip = hostlocal.allocate(store, RANGE, cid, "eth0")
        got.append(ip)
    assert got == [GW + 1, GW + 2, GW + 3]
    _, full = hostlocal.allocate(store, RANGE, 4, "eth0")
    assert full == "no free address in the range"
    store = hostlocal.release(store, 2, "eth0")
    store, again = hostlocal.allocate(store, RANGE, 5, "eth0")
    assert again == GW + 2                               # after the last reserved, wrapping
    assert hostlocal.holder(store, GW + 2) == (5, "eth0")


def test_gateway_is_never_handed_out_and_range_bounds_hold():
    rng = hostlocal.Range(NET, GW, GW + 2, GW)
    assert list(hostlocal.candidates(rng, 0)) == [GW + 1, GW + 2]
    with pytest.raises(ValueError):
        hostlocal.Range(NET, GW + 5, GW + 1, GW)


def test_second_add_for_the_same_container_and_interface_is_an_error():
    store, ip = hostlocal.allocate(hostlocal.EMPTY, RANGE, 7, "eth0")
    again, err = hostlocal.allocate(store, RANGE, 7, "eth0")
    assert again == store and "already has an address" in err
    store2, other = hostlocal.allocate(store, RANGE, 7, "net1")   # another interface: fine
    assert other != ip and len(store2[1]) == 2


def test_del_is_idempotent_and_frees_the_address():
    store, ip = hostlocal.allocate(hostlocal.EMPTY, RANGE, 7, "eth0")
    freed = hostlocal.release(store, 7, "eth0")
    assert hostlocal.holder(freed, ip) is None
    assert hostlocal.release(freed, 7, "eth0") == freed
    assert hostlocal.release(hostlocal.EMPTY, 99, "eth0") == hostlocal.EMPTY


def test_the_correct_model_holds_at_small_bounds():
    out = explore(Cni(nodes=2, pods=3, deletions=1, crashes=1, restarts=1), PROPERTIES)
    assert out.complete and out.counterexample is None and out.stats.states > 1000


def test_a_pod_sandbox_lifecycle_shares_one_address():
    m = Cni(nodes=1, pods=1)
    s = next(iter(m.init_states()))
    for step in (Step("AllocateCidr", (0,)), Step("RunPodSandbox", (0,)), Step("CniAdd", (0,)),
                 Step("StartContainers", (0,))):
        s = m.apply(s, step)
    phase, _, ip, containers = s[2][0]
    assert ip == addr.ip("10.22.0.2") and containers == (1, 1)
    assert m.apply(s, Step("CniAdd", (0,))) is None           # no second ADD
    s = m.apply(s, Step("SandboxCrash", (0,)))
    s = m.apply(s, Step("CleanupSandbox", (0,)))
    assert s[3][0][1] == ()                                    # DEL after the crash freed it
    assert all(p.check(m, s) for p in PROPERTIES if p.kind == "invariant")


#: the seeded bugs of a refused ADD: visible only where ADDs are refused
REFUSAL_MUTANTS = ("refusal_resets_last_reserved", "refusal_tears_down_sandbox")


def _model_of(mutant):
    """The catalog model at whose defaults the mutant is visible."""
    return CNI_FULL_RANGE_MODEL if mutant in REFUSAL_MUTANTS else CNI_MODEL


@pytest.mark.parametrize("mutant", sorted(Cni.mutants))
def test_every_mutant_is_caught_by_exhaustive_search(mutant):
    model = _model_of(mutant)
    out = explore(model.machine(mutant), targeted(model, mutant))
    assert out.counterexample is not None
    assert out.counterexample.prop.name == Cni.mutants[mutant].violates


@pytest.mark.parametrize("mutant", ["bridge_ipmasq", "restart_forgets_cidrs", "ipam_first_fit",
                                    "ipam_no_wrap", "del_moves_last_reserved",
                                    *REFUSAL_MUTANTS])
def test_mutants_are_caught_by_the_hypothesis_engine(mutant):
    model = _model_of(mutant)
    out = stateful_check(model.hypothesis_machine(mutant), targeted(model, mutant),
                         max_examples=100)
    assert out.counterexample is not None
    assert out.counterexample.prop.name == Cni.mutants[mutant].violates


def test_the_full_range_model_refuses_adds_and_reaches_every_cover():
    """At cni's defaults no ADD is refused (no node has more pods than
    addresses), so the refusal branch would be judged only on mutants;
    the full-range model refuses, every cover of it reached."""
    out = explore(CNI_FULL_RANGE_MODEL.machine(), CNI_FULL_RANGE_MODEL.properties)
    assert out.complete and out.counterexample is None
    assert out.covers and all(out.covers.values()), out.covers
    assert out.covers["cni_cover_add_refused_on_full_range"]
    main = explore(Cni(**SMALL), (ADD_REFUSED_ON_FULL_RANGE,))
    assert main.complete and not main.covers["cni_cover_add_refused_on_full_range"]


def test_an_allocator_that_never_refuses_leaves_the_refusal_cover_unreached():
    """The allocator that hands out a held address instead of refusing
    (ipam_reuses_held_address) never refuses: the cover says so, while the
    correct one reaches it at the same bounds."""
    bounds = dict(CNI_FULL_RANGE_MODEL.bounds)
    out = explore(Cni(mutant="ipam_reuses_held_address", **bounds), (ADD_REFUSED_ON_FULL_RANGE,))
    assert out.complete and not out.covers["cni_cover_add_refused_on_full_range"]


def _two_held_on_node_zero(mutant=None, **bounds):
    """Pods 0 and 1 on one node hold .2 and .3 (.3 the last reserved)."""
    m = Cni(nodes=1, pods=2, mutant=mutant, **bounds)
    s = next(iter(m.init_states()))
    for step in (Step("AllocateCidr", (0,)), Step("RunPodSandbox", (0,)), Step("CniAdd", (0,)),
                 Step("RunPodSandbox", (1,)), Step("CniAdd", (1,))):
        s = m.apply(s, step)
    return m, s


def test_a_del_leaves_the_last_reserved_address_alone():
    """host-local writes the last reserved address on allocation only; the
    seeded bug's DEL moves it to the address it releases, which the ADD
    property (reading it before each ADD) could never see."""
    stop = Step("StopPodSandbox", (0,))
    m, s = _two_held_on_node_zero()
    after = m.apply(s, stop)
    assert after[3][0][0] == s[3][0][0] == addr.ip("10.22.0.3")
    assert last_reserved_moves_only_on_add(m, s, stop, after)
    m, s = _two_held_on_node_zero("del_moves_last_reserved")
    moved = m.apply(s, stop)
    assert moved[3][0][0] == addr.ip("10.22.0.2")
    assert not last_reserved_moves_only_on_add(m, s, stop, moved)
    # the ADD that follows is judged against the moved address, and passes
    waits = m.apply(moved, Step("RunPodSandbox", (0,)))
    add = Step("CniAdd", (0,))
    assert add_takes_next_free_address(m, waits, add, m.apply(waits, add))


def test_the_wrap_around_cover_is_not_fooled_by_a_del_that_moves_the_last_reserved():
    """The old cover — a state whose store holds an address above its last
    reserved one — is satisfied under del_moves_last_reserved by a run in
    which no ADD wrapped (.2, .3, then .2 deleted); the step-based cover is
    satisfied by no state of that run."""
    from kubemc.properties.cni import add_wrapped_around
    m, s = _two_held_on_node_zero("del_moves_last_reserved")
    run = [s, m.apply(s, Step("StopPodSandbox", (0,)))]
    last, held = run[-1][3][0]
    assert any(a > last for a, _, _ in held)                    # the old cover: "wrapped"
    prefix = next(iter(m.init_states()))
    for step in (Step("AllocateCidr", (0,)), Step("RunPodSandbox", (0,)), Step("CniAdd", (0,)),
                 Step("RunPodSandbox", (1,)), Step("CniAdd", (1,))):
        assert not add_wrapped_around(m, prefix)
        prefix = m.apply(prefix, step)
    assert not any(add_wrapped_around(m, state) for state in run)


def test_an_add_must_reserve_the_address_for_the_pods_attachment():
    """The reservation's owner is the pod's (container ID, eth0); another
    owner, or another interface, breaks the ADD property."""
    add = Step("CniAdd", (0,))
    m = Cni(nodes=1, pods=1)
    s = next(iter(m.init_states()))
    for step in (Step("AllocateCidr", (0,)), Step("RunPodSandbox", (0,))):
        s = m.apply(s, step)
    after = m.apply(s, add)
    assert add_takes_next_free_address(m, s, add, after)
    last, ((ip, cid, ifname),) = after[3][0]
    assert (cid, ifname) == (container_id(0, 0), "eth0")
    for owner in ((container_id(0, 1), "eth0"), (cid, "net1")):
        wrong = after[:3] + (((last, ((ip,) + owner,)),),) + after[4:]
        assert not add_takes_next_free_address(m, s, add, wrong)


def _waits_on_a_full_range(mutant=None):
    """One address: pod 0 holds it, pod 1 (same node) waits for its ADD."""
    m = Cni(nodes=1, pods=2, addresses=1, mutant=mutant)
    s = next(iter(m.init_states()))
    for step in (Step("AllocateCidr", (0,)), Step("RunPodSandbox", (0,)), Step("CniAdd", (0,)),
                 Step("RunPodSandbox", (1,))):
        s = m.apply(s, step)
    return m, s


@pytest.mark.parametrize("mutant, changed", [
    ("refusal_resets_last_reserved", 3), ("refusal_tears_down_sandbox", 2)])
def test_a_refusal_that_changes_anything_is_caught(mutant, changed):
    """A refused ADD changes nothing: neither the store (the mutant that
    forgets the last reserved address) nor the pod's sandbox (the one that
    tears it down)."""
    add = Step("CniAdd", (1,))
    m, s = _waits_on_a_full_range()
    assert m.apply(s, add) == s and add_takes_next_free_address(m, s, add, s)
    m, s = _waits_on_a_full_range(mutant)
    after = m.apply(s, add)
    assert after[changed] != s[changed]
    assert [i for i in range(6) if after[i] != s[i]] == [changed]
    assert not add_takes_next_free_address(m, s, add, after)


def test_probe_records_a_packet_without_changing_the_network():
    m = Cni(nodes=2, pods=2)
    s = next(iter(m.init_states()))
    for step in (Step("AllocateCidr", (0,)), Step("AllocateCidr", (1,)),
                 Step("RunPodSandbox", (1,)), Step("CniAdd", (1,))):
        s = m.apply(s, step)
    probed = m.apply(s, Step("Probe", ("192.168.0.10", "10.22.1.2", 80, "TCP", 0)))
    assert probed[:5] == s[:5] and probed[5][5][1:] == ("delivered", "pod-1", "192.168.0.10")
    assert Step("Probe", ()) not in [st for st in m.steps(s)]


class _Without(Cni):
    """A CNI machine that never takes one of its actions: what a model looks
    like when a step silently stops being offered (the mutation run found
    several such models that every invariant accepted)."""

    def __init__(self, actions, **bounds):
        super().__init__(**bounds)
        self.actions = actions

    def steps(self, state):
        return (s for s in super().steps(state) if s.name not in self.actions)


COVERS = [p for p in PROPERTIES if p.kind == "cover"]


SMALL = {"nodes": 2, "pods": 2, "deletions": 1, "crashes": 1, "restarts": 1}
#: two pods on one node: the least that lets an ADD wrap around while the
#: range's later address is still held
TWO_ON_A_NODE = {"nodes": 1, "pods": 2, "deletions": 1, "crashes": 1, "restarts": 1}
WRAPPED = "cni_cover_add_wrapped_around"


def test_every_cover_is_reached_by_the_correct_model():
    out = explore(Cni(**SMALL), COVERS)
    assert out.complete and out.counterexample is None
    assert len(out.covers) == 7, out.covers
    # one pod per node wraps too: its third sandbox's ADD searches past .3
    assert all(out.covers.values()), out.covers
    out = explore(Cni(**TWO_ON_A_NODE), COVERS)
    assert out.complete and out.covers[WRAPPED]


def test_an_allocator_that_never_wraps_leaves_the_wrap_around_cover_unreached():
    wrapped = [p for p in COVERS if p.name == WRAPPED]
    out = explore(Cni(mutant="ipam_no_wrap", **TWO_ON_A_NODE), wrapped)
    assert out.complete and out.counterexample is None and not out.covers[WRAPPED]


@pytest.mark.parametrize("actions, cover", [
    ({"StartContainers"}, "cni_cover_containers_started"),
    ({"RunPodSandbox"}, "cni_cover_containers_started"),
    ({"SandboxCrash"}, "cni_cover_crashed_sandbox_holds_address"),
    ({"StopPodSandbox", "SandboxCrash"}, "cni_cover_pod_running_again"),
    ({"CniAdd"}, "cni_cover_pods_running_on_every_node"),
    ({"CleanupSandbox"}, "cni_cover_pod_running_in_third_sandbox"),
    ({"RestartController"}, "cni_cover_podcidr_allocated_after_restart"),
])
def test_a_model_that_never_takes_an_action_leaves_a_cover_unreached(actions, cover):
    """Every invariant holds vacuously when the actions are gone; the cover
    that speaks of them does not."""
    out = explore(_Without(actions, **SMALL), PROPERTIES)
    assert out.complete and out.counterexample is None
    assert not out.covers[cover]


def test_add_takes_the_next_free_address_round_robin():
    """host-local: after the last reserved address, wrapping to rangeStart;
    first fit (the seeded bug's allocator) hands a just freed address out
    again and breaks the property."""
    from kubemc.properties.cni import add_takes_next_free_address
    m = Cni(nodes=1, pods=2, addresses=3)
    s = next(iter(m.init_states()))
    for step in (Step("AllocateCidr", (0,)), Step("RunPodSandbox", (0,)), Step("CniAdd", (0,)),
                 Step("StopPodSandbox", (0,)), Step("RunPodSandbox", (0,))):
        s = m.apply(s, step)
    add = Step("CniAdd", (0,))
    after = m.apply(s, add)
    assert after[2][0][2] == addr.ip("10.22.0.3")          # .2 was freed, .3 comes next
    assert add_takes_next_free_address(m, s, add, after)
    store, ip = hostlocal.allocate(s[3][0], m.ipam_range(m.pod_cidr(0)),
                                   container_id(0, 1), "eth0", round_robin=False)
    assert ip == addr.ip("10.22.0.2")
    first_fit = after[:2] + (((after[2][0][:2] + (ip,) + after[2][0][3:]),) + after[2][1:],
                             (store,)) + after[4:]
    assert not add_takes_next_free_address(m, s, add, first_fit)


def test_host_local_without_wrap_around_stops_at_range_end():
    """The seeded bug's allocator: after rangeEnd was handed out it refuses,
    although rangeStart is free again; the documented one wraps to it."""
    store = hostlocal.EMPTY
    for cid in (1, 2, 3):
        store, _ = hostlocal.allocate(store, RANGE, cid, "eth0")
    store = hostlocal.release(store, 1, "eth0")
    assert list(hostlocal.candidates(RANGE, GW + 3, wrap=False)) == []
    assert list(hostlocal.candidates(RANGE, GW + 1, wrap=False)) == [GW + 2, GW + 3]
    assert hostlocal.allocate(store, RANGE, 4, "eth0", wrap=False) == \
        (store, "no free address in the range")
    assert hostlocal.allocate(store, RANGE, 4, "eth0")[1] == GW + 1


def _pod_waits_after_its_own_second_add(mutant=None):
    """Pod 0 holds rangeStart, is deleted and comes back at the next address
    (the end of a two-address range); pod 1, on the same node, waits for its
    ADD: only rangeStart is free."""
    m = Cni(nodes=1, pods=2, mutant=mutant)
    s = next(iter(m.init_states()))
    for step in (Step("AllocateCidr", (0,)), Step("RunPodSandbox", (0,)), Step("CniAdd", (0,)),
                 Step("StopPodSandbox", (0,)), Step("RunPodSandbox", (0,)), Step("CniAdd", (0,)),
                 Step("RunPodSandbox", (1,))):
        s = m.apply(s, step)
    return m, s


def test_a_refused_add_is_judged():
    """A refused ADD is a step that changes nothing; the property accepts it
    only when the range has no free address."""
    from kubemc.properties.cni import add_takes_next_free_address
    add = Step("CniAdd", (1,))
    m, s = _pod_waits_after_its_own_second_add()
    after = m.apply(s, add)
    assert after[2][1][2] == addr.ip("10.22.0.2")           # wrapped around to rangeStart
    assert add_takes_next_free_address(m, s, add, after)
    m, s = _pod_waits_after_its_own_second_add("ipam_no_wrap")
    refused = m.apply(s, add)
    assert refused == s                                      # refused: nothing changed
    assert not add_takes_next_free_address(m, s, add, refused)
    # with one address, pod 0 holds the whole range: refusing pod 1 is right
    m = Cni(nodes=1, pods=2, addresses=1)
    s = next(iter(m.init_states()))
    for step in (Step("AllocateCidr", (0,)), Step("RunPodSandbox", (0,)), Step("CniAdd", (0,)),
                 Step("RunPodSandbox", (1,))):
        s = m.apply(s, step)
    full = m.apply(s, add)
    assert full == s and add_takes_next_free_address(m, s, add, full)


#: three addresses, three pods on one node, two deletions: round-robin and
#: first fit part ways in more orders than with two addresses
THREE_ADDRESSES = {"nodes": 1, "pods": 3, "containers": 1, "addresses": 3, "deletions": 2,
                   "crashes": 0, "restarts": 0}


@pytest.mark.parametrize("mutant", [None, "del_moves_last_reserved", "ipam_first_fit",
                                    "ipam_no_wrap"])
def test_three_addresses_hold_and_catch_the_allocator_mutants(mutant):
    """The audit's run with three addresses: the correct model holds (4,761
    states, the wrap-around reached), each allocator mutant is caught."""
    props = [p for p in PROPERTIES if p.kind != "cover" or p.name == WRAPPED]
    out = explore(Cni(mutant=mutant, **THREE_ADDRESSES), props)
    if mutant is None:
        assert out.complete and out.counterexample is None and out.covers[WRAPPED]
        assert out.stats.states == 4761
    else:
        assert out.counterexample.prop.name == Cni.mutants[mutant].violates

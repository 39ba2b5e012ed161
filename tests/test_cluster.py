"""The whole cluster end to end (``model.cluster``, issue 15): the correct
composition holds with its covers reached, each seeded bug is caught by
explore and by hypothesis with a trace that replays (lassos for the liveness
ones), only the apiserver talks to the store, and the parts do what their
modules say.

Bounds: the fast test runs the catalog's model with one replica (3,213
states, about 2 s): a worker dies, its pod is evicted and replaced on the
other worker, and every property is judged — only the cover "the Service
routes to two Ready pods after a failure" needs the second replica. The
default bounds (two replicas: 267,481 states) are explored once in the
suite, by ``tests/test_catalog_pinned.py::test_model_holds_with_its_pinned_counts[cluster]``:
it requires what a test here did (no violation, a complete search, liveness
decided, every cover reached) and the exact states, transitions and depth
pinned (issue 9: the two explored the very same machine, 28 CPU seconds
each). Three replicas without a failure (17,357 states), where
NodeResourcesFit decides, run in a fast one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from controller_checks import assert_caught_by_explore, assert_caught_by_hypothesis, assert_holds
from helpers import reachable, run

from kubemc.checker import stateful, traces
from kubemc.checker.catalog.cluster import END_TO_END
from kubemc.model.cluster import controlplane, spec, store
from kubemc.model.cluster.apiserver import IDLE
from kubemc.model.cluster.machine import Cluster
from kubemc.model.kernel import Step
from kubemc.model.network.addr import ip
from kubemc.properties import cluster as props

(MODEL,) = END_TO_END
TRACES = Path(__file__).resolve().parents[1] / "traces" / "cluster"
LIVENESS_MUTANTS = {mutant for mutant, bug in MODEL.mutants.items()
                    if next(p for p in MODEL.properties if p.name == bug.violates).is_liveness}
ROUTES_TO_TWO = "e2e_cover_service_routes_to_two_ready_pods"


def _up(m, state=None, worker=1):
    """Deployment -> ReplicaSet -> its missing pods on ``worker``, running,
    reported, published, and every kube-proxy in sync (from ``state``: the
    ReplicaSet's replacements)."""
    kubelet, runtime = f"kubelet-worker-{worker}", f"runtime-worker-{worker}"
    if state is None:
        state = run(m, Step("deployment-controller->apiserver.Sync"),
                    Step("apiserver->store.Commit"))
    s = run(m, Step("replicaset-controller->apiserver.Sync"), Step("apiserver->store.Commit"),
            state=state)
    slot = len(m.objects(s)[store.PODS]) - m.replicas
    for i in range(m.replicas):
        s = run(m, Step("scheduler->apiserver.Bind", (slot + i, worker)),
                Step("apiserver->store.Commit"), state=s)
    s = run(m, Step(f"{kubelet}->apiserver.Sync"), state=s)
    for i in range(m.replicas):
        s = run(m, Step(f"{kubelet}->{runtime}.RunPodSandbox", (slot + i,)), state=s)
    s = run(m, Step(f"{kubelet}->apiserver.Sync"), Step("apiserver->store.Commit"),
            Step("endpointslice-controller->apiserver.Sync"), Step("apiserver->store.Commit"),
            state=s)
    for n in range(m.nodes):
        s = run(m, Step(f"kube-proxy-{spec.node_name(n)}->apiserver.Sync"), state=s)
    return s


# -- the correct cluster ----------------------------------------------------------

def test_the_correct_cluster_holds_with_one_replica():
    outcome = assert_holds(MODEL, unreached=(ROUTES_TO_TWO,), replicas=1)
    assert outcome.stats.states > 1_000


def test_the_correct_cluster_passes_random_runs_and_each_liveness_property_is_judged():
    """Hypothesis' ci profile at the default bounds: no violation, and every
    liveness property's goal (and the leads-to's trigger) met in some run's
    convergence phase."""
    outcome = stateful.check(MODEL.hypothesis_machine(), MODEL.properties)
    assert outcome.counterexample is None, outcome.counterexample
    assert all(t["reached"] > 0 for t in outcome.convergence.values()), outcome.convergence
    assert outcome.convergence["e2e_dead_node_pods_replaced"]["triggered"] > 0


def test_a_pod_comes_up_and_is_reachable_without_nat_from_everywhere():
    m = Cluster(replicas=1)
    s = _up(m)
    assert props.replicas_ready(m, s)
    assert props.service_reachable_without_nat(m, s)
    (pod,) = m.objects(s)[store.PODS]
    assert pod == (1, ip("10.244.1.2"), True, False)
    assert m.objects(s)[store.SLICE] == ((0, ip("10.244.1.2"), 1, True, True, False),)


def test_the_masquerading_proxy_rewrites_pod_sources_but_the_correct_one_does_not():
    for mutant, fine in ((None, True), ("proxy_masquerade_all", False)):
        m = Cluster(replicas=2, failures=0, mutant=mutant)
        s = _up(m)
        assert props.replicas_ready(m, s)
        assert props.service_reachable_without_nat(m, s) == fine


def test_a_dead_worker_is_marked_its_pod_evicted_and_replaced_on_the_other():
    m = Cluster(replicas=1)
    s = _up(m)
    s = run(m, Step("nemesis->kubelet-worker-1.Kill"), state=s)
    assert props.dead_node_has_live_pods(m, s)
    assert not props.replicas_ready(m, s)             # its sandbox is gone
    assert m.apply(s, Step("apiserver->kubelet-worker-2.LeaseExpires")) is None
    s = run(m, Step("apiserver->kubelet-worker-1.LeaseExpires"), Step("apiserver->store.Commit"),
            Step("nodelifecycle-controller->apiserver.Monitor", (1,)),
            Step("apiserver->store.Commit"), state=s)
    node = m.objects(s)[store.NODES][1]
    assert node[0] == store.UNKNOWN and spec.UNREACHABLE_NO_EXECUTE in node[1]
    assert m.objects(s)[store.PODS][0][2] is False     # MarkPodsNotReady
    # the scheduler will not pick the NotReady worker for a new pod
    assert not controlplane.feasible(m.objects(s), 1, 1)
    s = run(m, Step("nodelifecycle-controller->apiserver.Evict", (1,)),
            Step("apiserver->store.Commit"), state=s)
    assert props.pod_evicted(m, s) and not props.dead_node_has_live_pods(m, s)
    s = _up(m, s, worker=2)
    assert props.dead_node_pods_replaced(m, s)
    assert props.replacement_ready_on_other_worker(m, s)
    assert props.no_routes_to_dead_node(m, s)
    assert props.service_reachable_without_nat(m, s)


def test_the_scheduler_never_picks_the_tainted_master_and_only_two_pods_fit_a_worker():
    m = Cluster()
    s = run(m, Step("deployment-controller->apiserver.Sync"), Step("apiserver->store.Commit"),
            Step("replicaset-controller->apiserver.Sync"), Step("apiserver->store.Commit"))
    view = m.objects(s)
    assert not controlplane.feasible(view, 0, spec.MASTER)
    assert controlplane.feasible(view, 0, spec.MASTER, (spec.CONTROL_PLANE_TAINT.key,))
    assert not props.node_fits(view, 0, spec.MASTER)
    full = view[:store.PODS] + (((1, 0, False, False),) * 2 + ((-1, 0, False, False),),) \
        + view[store.PODS + 1:]
    assert not controlplane.feasible(full, 2, 1) and not props.node_fits(full, 2, 1)
    assert controlplane.feasible(full, 2, 2) and props.node_fits(full, 2, 2)


def test_the_store_refuses_a_second_binding_and_the_apiserver_serves_one_request_at_a_time():
    objects = store.initial(3)
    objects = store.commit(objects, ((store.CREATE_POD,),))
    bound = store.commit(objects, ((store.BIND, 0, 1),))
    assert bound[store.PODS][0][0] == 1
    assert store.commit(bound, ((store.BIND, 0, 2),)) is None
    m = Cluster()
    s = run(m, Step("deployment-controller->apiserver.Sync"))
    assert m.apply(s, Step("replicaset-controller->apiserver.Sync")) is None  # busy
    assert m.part_state(s, "apiserver")[1][0] == "deployment-controller"


def test_the_apiservers_view_is_the_store_whenever_it_is_idle():
    """The atomic-read abstraction (``model.cluster.apiserver``), on every
    state the one-replica model reaches."""
    m = MODEL.machine(replicas=1)
    states = reachable(m)
    idle = [s for s in states if m.part_state(s, "apiserver")[1] == IDLE]
    assert idle and all(m.part_state(s, "apiserver")[0] == m.objects(s) for s in idle)


def test_a_nodes_runtime_hands_out_distinct_addresses_and_a_dead_node_takes_no_step():
    m = Cluster(replicas=2, failures=1)
    s = _up(m)
    assert m.sandboxes(s)[1] == ((0, ip("10.244.1.2")), (1, ip("10.244.1.3")))
    dead = run(m, Step("nemesis->kubelet-worker-1.Kill"), state=s)
    assert m.apply(dead, Step("nemesis->kubelet-worker-2.Kill")) is None  # budget spent
    # the dead kubelet takes no step; until its Lease expires nothing else notices
    assert m.apply(dead, Step("kubelet-worker-1->apiserver.Sync")) is None
    assert m.apply(dead, Step("replicaset-controller->apiserver.Sync")) is None
    assert m.apply(dead, Step("nodelifecycle-controller->apiserver.Monitor", (1,))) is None
    assert m.apply(dead, Step("apiserver->kubelet-worker-1.LeaseExpires")) is not None


def test_a_dead_nodes_pods_leave_the_wire():
    from kubemc.model.network.forward import DROPPED, Packet, forward

    m = Cluster(replicas=1)
    s = _up(m)
    to_pod = Packet(spec.node_ip(2), ip("10.244.1.2"), spec.TARGET_PORT, spec.PROTOCOL, 2)
    assert forward(m.dataplane(s), to_pod)[0][1].pod == "web-0"
    s = run(m, Step("nemesis->kubelet-worker-1.Kill"), state=s)
    assert forward(m.dataplane(s), to_pod)[0][1].kind == DROPPED
    # the rules still send the Service there until the slice and kube-proxy catch up
    assert not props.no_routes_to_dead_node(m, s)
    assert not props.service_reachable_without_nat(m, s)


def test_an_evicted_pod_of_a_dead_node_is_published_as_neither_ready_nor_serving():
    objects = store.initial(3)
    objects = store.commit(objects, ((store.CREATE_POD,), (store.BIND, 0, 1),
                                     (store.STATUS, 0, ip("10.244.1.2"), True)))
    assert controlplane.endpoints(objects) == ((0, ip("10.244.1.2"), 1, True, True, False),)
    gone = store.commit(objects, ((store.POD_READY, 0, False), (store.DELETE_POD, 0)))
    assert controlplane.endpoints(gone) == ((0, ip("10.244.1.2"), 1, False, False, True),)
    assert controlplane.endpoints(gone, ignore_conditions=True)[0][3:] == (True, True, False)


def test_the_fused_successors_are_the_compositions():
    from kubemc.model.kernel import Composition

    m = MODEL.machine(replicas=1)
    for s in reachable(m):
        assert list(m.successors(s)) == list(Composition.successors(m, s))


def test_three_replicas_without_a_failure_hold_and_fill_the_workers():
    """The bounds at which NodeResourcesFit matters (its mutant's): three
    pods, two workers of two pods each, nobody dying."""
    covers = tuple(p.name for p in MODEL.properties if p.kind == "cover")
    outcome = assert_holds(MODEL, unreached=covers, replicas=3, failures=0)
    assert outcome.stats.states > 10_000


def test_the_scheduler_without_resources_fit_binds_a_third_pod_to_a_full_worker():
    for mutant, fits in ((None, True), ("scheduler_ignores_resources", False)):
        m = Cluster(replicas=3, failures=0, mutant=mutant)
        s = run(m, Step("deployment-controller->apiserver.Sync"), Step("apiserver->store.Commit"),
                Step("replicaset-controller->apiserver.Sync"), Step("apiserver->store.Commit"),
                Step("scheduler->apiserver.Bind", (0, 1)), Step("apiserver->store.Commit"),
                Step("scheduler->apiserver.Bind", (1, 1)), Step("apiserver->store.Commit"))
        # worker-1's allocatable cpu holds two pods: a third fits only on worker-2
        assert not props.node_fits(m.objects(s), 2, 1) and props.node_fits(m.objects(s), 2, 2)
        third = m.apply(s, Step("scheduler->apiserver.Bind", (2, 1)))
        assert (third is None) == fits
        if not fits:
            step = Step("apiserver->store.Commit")
            after = m.apply(third, step)
            assert m.objects(after)[store.PODS][2][0] == 1
            assert not props.bound_to_fitting_node(m, third, step, after)


def test_a_node_marked_unknown_has_no_ready_pod_unless_the_controller_forgets_them():
    for mutant, marked in ((None, True), ("nodelifecycle_keeps_pods_ready", False)):
        m = Cluster(replicas=1, mutant=mutant)
        s = run(m, Step("nemesis->kubelet-worker-1.Kill"),
                Step("apiserver->kubelet-worker-1.LeaseExpires"),
                Step("apiserver->store.Commit"), state=_up(m))
        assert props.unreachable_node_pods_not_ready(m, s)   # Ready, still True
        s = run(m, Step("nodelifecycle-controller->apiserver.Monitor", (1,)),
                Step("apiserver->store.Commit"), state=s)
        assert m.objects(s)[store.NODES][1][0] == store.UNKNOWN
        assert m.objects(s)[store.PODS][0][2] is not marked
        assert props.unreachable_node_pods_not_ready(m, s) == marked
        check = props.UNREACHABLE_NODE_PODS_NOT_READY
        assert check.holds_in(m, s) == marked


def test_the_slice_is_judged_against_the_pods_when_it_is_written():
    for mutant, fine in ((None, True), ("endpoints_ready_ignores_pod_ready", False)):
        m = Cluster(replicas=1, mutant=mutant)
        s = run(m, Step("nemesis->kubelet-worker-1.Kill"),
                Step("apiserver->kubelet-worker-1.LeaseExpires"), Step("apiserver->store.Commit"),
                Step("nodelifecycle-controller->apiserver.Monitor", (1,)),
                Step("apiserver->store.Commit"),
                Step("endpointslice-controller->apiserver.Sync"), state=_up(m))
        step = Step("apiserver->store.Commit")
        after = m.apply(s, step)
        (endpoint,) = m.objects(after)[store.SLICE]
        # the pod is NotReady and not yet terminating: serving False, ready False
        assert endpoint[3:] == ((False, False, False) if fine else (True, False, False))
        assert props.slice_conditions_follow_pods(m, s, step, after) == fine
    # a write that leaves the slice as it was is not judged; one that changes it is
    m = Cluster(replicas=1)
    s = _up(m)
    assert props.slice_conditions_follow_pods(m, s, step, s)
    objects = m.objects(s)
    wrong = objects[:store.SLICE] + (((0, ip("10.244.1.9"), 1, True, True, False),),)
    assert m.index["store"] == 0
    assert not props.slice_conditions_follow_pods(m, s, step, (wrong,) + s[1:])


def test_a_kubelet_that_watches_every_pod_runs_another_nodes_pod():
    m = Cluster(replicas=1)
    s = _up(m)
    assert m.apply(s, Step("kubelet-master->apiserver.Sync")) is None  # nothing of its own
    assert props.pods_run_only_where_bound(m, s)
    bad = Cluster(replicas=1, mutant="kubelet_runs_every_pod")
    s = _up(bad)
    s = run(bad, Step("kubelet-master->apiserver.Sync"),
            Step("kubelet-master->runtime-master.RunPodSandbox", (0,)), state=s)
    assert [slot for slot, _ in bad.sandboxes(s)[spec.MASTER]] == [0]
    assert not props.pods_run_only_where_bound(bad, s)
    # it reports no status for a pod bound elsewhere: its next Sync has nothing to
    # write, and the store keeps worker-1's binding and address
    assert bad.apply(s, Step("kubelet-master->apiserver.Sync")) is None
    assert bad.objects(s)[store.PODS][0][:2] == (1, ip("10.244.1.2"))


def test_the_replicaset_creates_exactly_the_missing_pods():
    for mutant, created in ((None, 1), ("replicaset_creates_one_extra", 2)):
        m = Cluster(replicas=1, mutant=mutant)
        s = run(m, Step("deployment-controller->apiserver.Sync"), Step("apiserver->store.Commit"),
                Step("replicaset-controller->apiserver.Sync"), Step("apiserver->store.Commit"))
        assert len(m.objects(s)[store.PODS]) == created
        assert props.no_surplus_replicas(m, s) == (created == 1)


# -- only the apiserver talks to the store ------------------------------------------

def test_every_link_goes_through_the_apiserver_and_only_it_reaches_the_store():
    links = Cluster().talks_to()
    store_links = {pair for pair in links if "store" in pair}
    assert store_links == {("apiserver", "store")}
    for caller, callee in links:
        node_local = caller.startswith("kubelet-") and callee == "runtime-" + caller[8:]
        fault = caller == "nemesis" and callee.startswith("kubelet-worker-")
        assert "apiserver" in (caller, callee) or node_local or fault, (caller, callee)
    check = props.STORE_LINKED_ONLY_TO_APISERVER
    m = Cluster()
    assert check.holds_in(m, next(iter(m.init_states())))
    bypass = Cluster(mutant="kubelet_reads_store")
    assert ("kubelet-worker-1", "store") in bypass.talks_to()
    assert not check.holds_in(bypass, next(iter(bypass.init_states())))


# -- the seeded bugs ----------------------------------------------------------------

@pytest.mark.parametrize("mutant", sorted(MODEL.mutants))
def test_each_mutant_is_caught_by_explore(mutant, tmp_path):
    cex = assert_caught_by_explore(MODEL, mutant, tmp_path)
    assert (cex.loop is not None) == (mutant in LIVENESS_MUTANTS)


#: Bugs visible only in a window (after the failure, before the eviction)
#: that random runs seldom enter: one derandomized ci run of 300 caught each
#: in about 220 runs, another missed them in 2,294 (the run's seed differs
#: between processes). Explore catches each exhaustively (the test above);
#: hypothesis is not claimed for them, and the closing note says so.
WINDOW_MUTANTS = {"endpoints_ignore_pod_conditions", "endpoints_ready_ignores_pod_ready",
                  "nodelifecycle_keeps_pods_ready"}


@pytest.mark.parametrize("mutant", sorted(set(MODEL.mutants) - WINDOW_MUTANTS))
def test_each_mutant_is_caught_by_hypothesis(mutant, tmp_path):
    assert_caught_by_hypothesis(MODEL, mutant, tmp_path)


def test_every_mutant_has_committed_traces_that_replay():
    for mutant in MODEL.mutants:
        for engine in ("explore", "hypothesis"):
            (path,) = TRACES.glob(f"cluster-*-{engine}-{mutant}.itf.json")
            trace = json.loads(path.read_text())
            assert traces.replay(trace).reproduced, path.name
            if mutant in LIVENESS_MUTANTS:
                assert "loop" in trace, path.name


def test_bad_bounds_and_mutants_are_refused():
    with pytest.raises(ValueError):
        Cluster(workers=0)
    with pytest.raises(ValueError, match="a worker must survive"):
        Cluster(workers=2, failures=2)
    with pytest.raises(ValueError, match="do not fit"):
        Cluster(workers=2, replicas=3, failures=1)
    with pytest.raises(ValueError):
        Cluster(mutant="no_such_bug")


# -- through the command line ----------------------------------------------------------

def test_kubemc_check_cluster_runs_a_mutant_and_its_trace_replays(tmp_path, capsys):
    from kubemc.checker.cli import main

    rc = main(["check", "cluster", "--mutant", "proxy_masquerade_all", "--quiet", "--json",
               "--trace-dir", str(tmp_path), "--engine", "explore"])
    assert rc == 1
    (result,) = json.loads(capsys.readouterr().out)
    assert result["prop"] == "e2e_service_reachable_without_nat"
    assert main(["trace", "replay", result["trace"]]) == 1


def test_kubemc_check_cluster_refuses_bounds_where_no_worker_survives(capsys):
    from kubemc.checker.cli import main

    assert main(["check", "cluster", "--bound", "failures=2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "a worker must survive" in err and err.count("\n") == 1 and "Traceback" not in err


# -- what the mutation run of docs/mutation/cluster.md found ---------------------------------------

def test_pod_addresses_come_from_their_nodes_pod_cidr():
    """Node n's podCIDR is the n-th /24 of 10.244.0.0/16 (the node IPAM
    controller's default mask size): worker-1's pods get 10.244.1.x. A
    runtime whose host-local range is the whole cluster CIDR hands worker-1's
    pod 10.244.0.2 — the master's block — and the property refuses that
    state; so does a podCIDR of another mask size (a /23 mutation of
    ``spec.pod_cidr`` survived before the property)."""
    base, netmask = props.node_pod_cidr(1)
    assert (base, netmask) == (ip("10.244.1.0"), ip("255.255.255.0"))
    m = Cluster(replicas=1)
    s = _up(m)
    assert m.sandboxes(s)[1] == ((0, ip("10.244.1.2")),)
    assert props.pod_addresses_in_node_pod_cidr(m, s)
    bad = Cluster(replicas=1, mutant="ipam_subnet_is_cluster_cidr")
    s = _up(bad)
    assert bad.sandboxes(s)[1] == ((0, ip("10.244.0.2")),)
    assert not props.pod_addresses_in_node_pod_cidr(bad, s)
    # the store's address is judged too, not only the runtime's: worker-2's block
    good = _up(m)
    i = m.index["store"]
    moved = store.commit(m.objects(good), ((store.STATUS, 0, ip("10.244.2.2"), True),))
    assert moved[store.PODS][0][:2] == (1, ip("10.244.2.2"))
    assert not props.pod_addresses_in_node_pod_cidr(m, good[:i] + (moved,) + good[i + 1:])

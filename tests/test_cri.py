"""The CRI runtime model: the oracle's answers call by call (api.proto's
documented ones), the correct runtime holding every property with every
cover reached, each seeded bug caught by explore and hypothesis with a
replaying trace, and the committed traces replaying."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubemc.checker import traces
from kubemc.checker.catalog.cri import RUNTIME
from kubemc.model.cri import runtime as rt
from kubemc.model.cri.machine import CriRuntime
from kubemc.model.kernel import Step
from kubemc.properties import cri as props
from tests.controller_checks import (
    assert_caught_by_explore, assert_caught_by_hypothesis, assert_holds,
)

TRACES = Path(__file__).resolve().parents[1] / "traces" / "cri"


def _sandbox(state, uid="u", attempt=0):
    return rt.call(state, "RunPodSandbox", {"config": {"metadata": {"uid": uid,
                                                                     "attempt": attempt}}})


def _create(state, sid, name="c", attempt=0):
    return rt.call(state, "CreateContainer", {
        "pod_sandbox_id": sid, "config": {"metadata": {"name": name, "attempt": attempt}}})


def _running():
    state, answer = _sandbox(rt.INITIAL)
    sid = answer["pod_sandbox_id"]
    state, answer = _create(state, sid)
    cid = answer["container_id"]
    state, answer = rt.call(state, "StartContainer", {"container_id": cid})
    assert answer == {}
    return state, sid, cid


def test_a_sandbox_runs_ready_with_its_namespace_and_a_container_runs_in_it():
    state, sid, cid = _running()
    _, status = rt.call(state, "PodSandboxStatus", {"pod_sandbox_id": sid})
    assert status["status"]["state"] == rt.READY and status["status"]["network"]["namespace"]
    _, status = rt.call(state, "ContainerStatus", {"container_id": cid})
    assert status["status"]["state"] == rt.RUNNING
    assert status["status"]["metadata"] == {"name": "c", "attempt": 0}
    _, listed = rt.call(state, "ListContainers", {"filter": {"pod_sandbox_id": sid}})
    assert [c["id"] for c in listed["containers"]] == [cid]
    _, listed = rt.call(state, "ListContainers", {"filter": {"state": {"state": rt.EXITED}}})
    assert listed["containers"] == []


def test_stopping_a_sandbox_kills_its_containers_releases_the_namespace_and_is_idempotent():
    state, sid, cid = _running()
    state, answer = rt.call(state, "StopPodSandbox", {"pod_sandbox_id": sid})
    assert answer == {}
    assert rt.container(state, cid)[4:] == (rt.EXITED, rt.KILLED)
    assert rt.sandbox(state, sid)[3:] == (rt.NOTREADY, False)
    again, answer = rt.call(state, "StopPodSandbox", {"pod_sandbox_id": sid})
    assert answer == {} and again == state                    # a second stop succeeds
    gone, answer = rt.call(state, "RemovePodSandbox", {"pod_sandbox_id": sid})
    assert answer == {} and gone == rt.INITIAL                 # its containers go with it
    for method, key in (("RemovePodSandbox", "pod_sandbox_id"), ("StopPodSandbox",
                                                                 "pod_sandbox_id"),
                        ("RemoveContainer", "container_id")):
        assert rt.call(gone, method, {key: "0"}) == (gone, {})  # removing what is gone
    for method, key in (("PodSandboxStatus", "pod_sandbox_id"), ("ContainerStatus",
                                                                 "container_id"),
                        ("StopContainer", "container_id"), ("StartContainer",
                                                            "container_id")):
        assert rt.call(gone, method, {key: "0"})[1].code == rt.NOT_FOUND


def test_removing_a_running_container_or_its_sandbox_removes_it_forcibly():
    """api.proto: RemoveContainer 'If the container is running, the container must be
    forcibly removed'; RemovePodSandbox 'If there are any running containers in the
    sandbox, they must be forcibly terminated and removed'."""
    state, sid, cid = _running()
    gone, answer = rt.call(state, "RemoveContainer", {"container_id": cid})
    assert answer == {} and rt.container(gone, cid) is None
    assert rt.sandbox(gone, sid)[3] == rt.READY                 # the sandbox stays
    gone, answer = rt.call(state, "RemovePodSandbox", {"pod_sandbox_id": sid})
    assert answer == {} and gone == rt.INITIAL                  # running, yet removed


def test_a_container_is_started_once_and_stopped_idempotently():
    state, sid, cid = _running()
    assert rt.call(state, "StartContainer", {"container_id": cid})[1].code == \
        rt.FAILED_PRECONDITION
    state, answer = rt.call(state, "StopContainer", {"container_id": cid, "timeout": 5,
                                                      "exit_code": 143})
    assert answer == {} and rt.container(state, cid)[4:] == (rt.EXITED, 143)
    assert rt.call(state, "StopContainer", {"container_id": cid, "timeout": 5}) == (state, {})
    assert rt.call(state, "StartContainer", {"container_id": cid})[1].code == \
        rt.FAILED_PRECONDITION
    # the restart is a new container with the next attempt
    state, answer = _create(state, sid, attempt=1)
    assert answer == {"container_id": "1"}
    assert _create(state, sid, attempt=1)[1].code == rt.ALREADY_EXISTS


def test_containers_need_a_ready_sandbox():
    state, answer = _sandbox(rt.INITIAL)
    assert _create(state, "7")[1].code == rt.NOT_FOUND
    state, _ = rt.call(state, "StopPodSandbox", {"pod_sandbox_id": "0"})
    assert _create(state, "0")[1].code == rt.FAILED_PRECONDITION
    assert _sandbox(state)[1].code == rt.ALREADY_EXISTS
    assert "pod_sandbox_id" in _sandbox(state, attempt=1)[1]


def test_faults_and_timeouts():
    state, sid, cid = _running()
    died = rt.fault(state, "ContainerDied", {"container_id": cid, "exit_code": 3})
    assert rt.container(died, cid)[4:] == (rt.EXITED, 3)
    assert rt.fault(died, "ContainerDied", {"container_id": cid, "exit_code": 1}) is None
    assert rt.fault(died, "RuntimeRestart", {"lost": ()}) == died       # state survives
    lost = rt.fault(state, "RuntimeRestart", {"lost": (cid,)})
    assert rt.container(lost, cid)[4] == rt.UNKNOWN
    stopped, _ = rt.call(lost, "StopContainer", {"container_id": cid, "timeout": 0})
    assert rt.container(stopped, cid)[4] == rt.EXITED
    both = rt.timed_out(state, "StopContainer", {"container_id": cid, "timeout": 1})
    assert both[0] == state and rt.container(both[1], cid)[4] == rt.EXITED
    assert rt.timed_out(state, "ListContainers", {}) == (state,)


def test_bad_requests_are_refused_loudly():
    with pytest.raises(ValueError):
        rt.call(rt.INITIAL, "Exec", {})
    with pytest.raises(ValueError):
        rt.call(rt.INITIAL, "RunPodSandbox", {"config": {}})
    with pytest.raises(ValueError):
        rt.fault(rt.INITIAL, "Reboot", {})


def test_the_correct_runtime_holds_every_property_with_every_cover_reached():
    outcome = assert_holds(RUNTIME)
    # one state per runtime: the search forgets the last answer (``canonical``)
    assert outcome.stats.states > 3_000


def test_the_search_forgets_the_last_answer_and_nothing_else():
    """``canonical`` keeps the runtime and drops ``last``: a state after a call
    and the same runtime after no call are one state, and both propose the
    same steps with the same effects on the runtime."""
    m = CriRuntime()
    init = next(iter(m.init_states()))
    after = m.apply(init, Step("RunPodSandbox", (0, 0)))
    assert after[1][:3] == ("RunPodSandbox", (0, 0), "OK")
    assert json.loads(after[1][3]) == {"pod_sandbox_id": "0"}
    same = (after[0], ())
    assert m.canonical(after) == m.canonical(same) == same
    assert list(m.steps(after)) == list(m.steps(same))
    assert all(m.apply(after, s)[0] == m.apply(same, s)[0] for s in m.steps(after))


def test_the_read_only_calls_answer_what_the_runtime_holds():
    m = CriRuntime()
    state = next(iter(m.init_states()))
    for step in (Step("RunPodSandbox", (0, 0)), Step("RunPodSandbox", (0, 1)),
                 Step("CreateContainer", (1, "a", 0)), Step("StartContainer", (0,))):
        state = m.apply(state, step)
    reads = [s for s in m.steps(state) if s.name in ("PodSandboxStatus", "ContainerStatus",
                                                     "ListPodSandbox", "ListContainers")]
    assert len(reads) == 18
    for step in reads:
        after = m.apply(state, step)
        assert after[0] == state[0] and props.read_answers_describe_state(m, state, step, after)
    by_sandbox = m.apply(state, Step("ListContainers", ("pod_sandbox_id", 1)))
    assert [c["id"] for c in json.loads(by_sandbox[1][3])["containers"]] == ["0"]
    none_there = m.apply(state, Step("ListContainers", ("pod_sandbox_id", 0)))
    assert json.loads(none_there[1][3]) == {"containers": []}
    absent = m.apply(state, Step("ContainerStatus", (1,)))
    assert absent[1][2:] == ("NOT_FOUND", "")


@pytest.mark.parametrize("mutant", sorted(CriRuntime.mutants))
def test_every_mutant_is_caught_by_explore(tmp_path, mutant):
    assert_caught_by_explore(RUNTIME, mutant, tmp_path)


@pytest.mark.parametrize("mutant", sorted(CriRuntime.mutants))
def test_every_mutant_is_caught_by_hypothesis(tmp_path, mutant):
    assert_caught_by_hypothesis(RUNTIME, mutant, tmp_path)


def test_every_mutant_has_committed_traces_that_replay():
    for mutant in CriRuntime.mutants:
        for engine in ("explore", "hypothesis"):
            (path,) = TRACES.glob(f"cri-*-{engine}-{mutant}.itf.json")
            trace = json.loads(path.read_text())
            assert traces.replay(trace).reproduced, path.name


def test_the_properties_can_fail():
    """Hand-built bad states and steps each break their property."""
    m = CriRuntime()
    ok_state, sid, cid = _running()
    bad = ((((0, "u", 0, rt.NOTREADY, False),)), ok_state[1])
    assert props.no_running_outside_ready_sandbox(m, (ok_state, ()))
    assert not props.no_running_outside_ready_sandbox(m, (bad, ()))
    assert not props.sandbox_netns_matches_state(m, ((((0, "u", 0, rt.NOTREADY, True),), ()),
                                                     ()))
    before = ((((0, "u", 0, rt.NOTREADY, False),), ()), ())
    step = Step("StopPodSandbox", (0,))
    assert not props.idempotent_answers(m, before, step, (before[0], ("StopPodSandbox", (0,),
                                                                       "NOT_FOUND")))
    exited = (ok_state[0], ((0, 0, "c", 0, rt.EXITED, 1),))
    assert not props.container_lifecycle(m, (exited, ()), Step("StartContainer", (0,)),
                                         (ok_state, ()))
    assert not props.exit_code_kept(m, (exited, ()), Step("RuntimeRestart", (-1,)),
                                    ((ok_state[0], ((0, 0, "c", 0, rt.EXITED, 0),)), ()))


def test_the_remove_and_stop_properties_can_fail():
    """Each audit-found property judges the step against the states around it:
    the correct step holds, the seeded bug's step breaks it, other steps pass."""
    m = CriRuntime()
    running, sid, cid = _running()
    before = (running, ())
    empty = (rt.INITIAL, ())

    remove_c = Step("RemoveContainer", (0,))
    removed = ((running[0], ()), ("RemoveContainer", (0,), "OK"))
    refused = (running, ("RemoveContainer", (0,), "FAILED_PRECONDITION"))
    assert props.remove_container_removes(m, before, remove_c, removed)
    assert not props.remove_container_removes(m, before, remove_c, refused)
    assert not props.remove_container_removes(m, before, remove_c,
                                              (running, ("RemoveContainer", (0,), "OK")))
    assert props.remove_container_removes(m, empty, remove_c,
                                          (rt.INITIAL, ("RemoveContainer", (0,), "OK")))

    remove_s = Step("RemovePodSandbox", (0,))
    orphan = (((), ((0, 0, "c", 0, rt.EXITED, rt.KILLED),)), ("RemovePodSandbox", (0,), "OK"))
    assert props.remove_sandbox_removes_containers(
        m, before, remove_s, (rt.INITIAL, ("RemovePodSandbox", (0,), "OK")))
    assert not props.remove_sandbox_removes_containers(m, before, remove_s, orphan)
    assert not props.remove_sandbox_removes_containers(
        m, before, remove_s, (running, ("RemovePodSandbox", (0,), "FAILED_PRECONDITION")))
    # a container lost in a runtime restart may still run: it must go too
    unknown = (running[0], ((0, 0, "c", 0, rt.UNKNOWN, 0),))
    assert not props.remove_sandbox_removes_containers(m, (unknown, ()), remove_s, orphan)
    # an exited one api.proto does not speak of: left behind is not judged here
    exited = (running[0], ((0, 0, "c", 0, rt.EXITED, 1),))
    assert props.remove_sandbox_removes_containers(m, (exited, ()), remove_s, orphan)

    stop_s = Step("StopPodSandbox", (0,))
    stopped, answer = rt.call(running, "StopPodSandbox", {"pod_sandbox_id": sid})
    assert answer == {}
    assert props.stop_sandbox_makes_it_not_ready(
        m, before, stop_s, (stopped, ("StopPodSandbox", (0,), "OK")))
    still_ready = (((0, "u", 0, rt.READY, True),), stopped[1])
    assert not props.stop_sandbox_makes_it_not_ready(
        m, before, stop_s, (still_ready, ("StopPodSandbox", (0,), "OK")))
    assert not props.stop_sandbox_makes_it_not_ready(
        m, before, stop_s, (running, ("StopPodSandbox", (0,), "FAILED_PRECONDITION")))
    # other calls are not this property's business
    assert props.stop_sandbox_makes_it_not_ready(m, before, remove_c, refused)


def test_the_read_and_frame_properties_can_fail():
    """Hand-built wrong answers and wrong effects each break their property;
    the right ones hold."""
    m = CriRuntime()
    running, sid, cid = _running()
    before = (running, ())
    good = json.dumps({"containers": [rt.container_message(running[1][0])]})
    listing = Step("ListContainers", ("pod_sandbox_id", 0))
    assert props.read_answers_describe_state(
        m, before, listing, (running, ("ListContainers", ("pod_sandbox_id", 0), "OK", good)))
    # the filter selects nothing in sandbox 1, yet the container is answered
    other = Step("ListContainers", ("pod_sandbox_id", 1))
    assert not props.read_answers_describe_state(
        m, before, other, (running, ("ListContainers", ("pod_sandbox_id", 1), "OK", good)))
    # a status answering another id, and one of an absent sandbox answering OK
    wrong = json.dumps({"status": {**rt.sandbox_message(running[0][0]), "id": "1"}})
    status = Step("PodSandboxStatus", (0,))
    assert not props.read_answers_describe_state(
        m, before, status, (running, ("PodSandboxStatus", (0,), "OK", wrong)))
    assert not props.read_answers_describe_state(
        m, before, Step("PodSandboxStatus", (1,)),
        (running, ("PodSandboxStatus", (1,), "OK", wrong)))
    # a read that changes the runtime
    assert not props.read_answers_describe_state(
        m, before, listing, (rt.INITIAL, ("ListContainers", ("pod_sandbox_id", 0), "OK", good)))

    run = Step("RunPodSandbox", (0, 1))
    added = ((running[0][0], (1, 0, 1, rt.READY, True)), running[1])
    ok = ("RunPodSandbox", (0, 1), "OK", json.dumps({"pod_sandbox_id": "1"}))
    assert props.change_only_what_they_name(m, before, run, (added, ok))
    # the new sandbox took the old one's id: the old one is gone
    replaced = (((0, 0, 1, rt.READY, True),), running[1])
    reused = ("RunPodSandbox", (0, 1), "OK", json.dumps({"pod_sandbox_id": "0"}))
    assert not props.change_only_what_they_name(m, before, run, (replaced, reused))
    # a runtime restart that lost container 0 but marked nothing, or marked another
    restart = Step("RuntimeRestart", (0,))
    assert props.change_only_what_they_name(
        m, before, restart, ((running[0], ((0, 0, "c", 0, rt.UNKNOWN, 0),)), ()))
    assert not props.change_only_what_they_name(m, before, restart, (running, ()))
    # a stop kills with 137 (128 + SIGKILL); a kill that reads as success is wrong
    stop_c = Step("StopContainer", (0,))
    killed = ((running[0], ((0, 0, "c", 0, rt.EXITED, rt.KILLED),)), ("StopContainer", (0,),
                                                                      "OK", "{}"))
    as_success = ((running[0], ((0, 0, "c", 0, rt.EXITED, 0),)), killed[1])
    assert rt.KILLED == 137 and props.killed_container_exits_137(m, before, stop_c, killed)
    assert not props.killed_container_exits_137(m, before, stop_c, as_success)
    assert props.killed_container_exits_137(m, before, Step("ContainerDied", (0, 0)),
                                            as_success)
    assert not props.change_only_what_they_name(
        m, before, Step("StopContainer", (1,)),
        ((running[0], ((0, 0, "c", 0, rt.EXITED, rt.KILLED),)), ("StopContainer", (1,),
                                                                 "NOT_FOUND", "")))

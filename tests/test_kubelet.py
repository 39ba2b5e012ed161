"""The kubelet model: the correct pod worker holds every property under
every restartPolicy (covers reached, liveness decided; the ``kubelet`` model
at the catalog's bounds in tests/test_catalog_pinned.py); each seeded bug
is caught by explore and by hypothesis with a trace that replays (the
liveness ones as lassos); the committed traces replay; scenarios walk the
documented behaviour step by step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubemc.checker import traces
from kubemc.checker.catalog.kubelet import CRASHLOOP, KUBELET, LEASE, NEVER
from kubemc.checker.explore import explore
from kubemc.model.cri import runtime as rt
from kubemc.model.kernel import Step
from kubemc.model.kubelet import machine as km
from kubemc.model.kubelet.machine import Kubelet
from kubemc.properties import kubelet as props
from tests.controller_checks import (
    assert_caught_by_explore, assert_caught_by_hypothesis, assert_holds,
)

TRACES = Path(__file__).resolve().parents[1] / "traces" / "kubelet"
LIVENESS_MUTANTS = {"leaks_sandbox", "restart_stops_heartbeat", "sidecar_not_restarted"}


# The ``kubelet`` model itself at the catalog's bounds (one sidecar, one init
# container, two app containers; one kubelet restart, one runtime restart, an
# exit, a probe failure, a deletion: 152,093 states) is explored once in the
# suite, by tests/test_catalog_pinned.py::test_model_holds_with_its_pinned_counts
# [kubelet]: its verdict "holds" means no violation, a complete search, every
# cover reached and liveness decided (the lasso search ran), and its states,
# transitions and depth must equal the pins. A test here explored the very
# same machine again for less (issue 9).


@pytest.mark.parametrize("model", (CRASHLOOP, LEASE, NEVER), ids=lambda m: m.name)
def test_the_variants_hold_with_their_covers(model):
    assert_holds(model)


def test_the_never_model_carries_its_own_mutant():
    """``sidecar_waits_for_ready`` shows only where the sidecar has no startup
    probe: it is the ``kubelet-never`` model's, not the ``kubelet`` model's."""
    assert set(NEVER.mutants) == {km.SIDECAR_WAITS_FOR_READY}
    assert km.SIDECAR_WAITS_FOR_READY not in KUBELET.mutants


@pytest.mark.parametrize("engine", ("explore", "hypothesis"))
def test_the_sidecar_mutant_is_caught_with_a_replaying_trace(tmp_path, engine):
    mutant = km.SIDECAR_WAITS_FOR_READY
    if engine == "explore":
        cex = assert_caught_by_explore(NEVER, mutant, tmp_path)
        assert cex.loop is not None                  # a lasso: the kubelet waits forever
    else:
        assert_caught_by_hypothesis(NEVER, mutant, tmp_path)
    (path,) = TRACES.glob(f"kubelet-never-*-{engine}-{mutant}.itf.json")
    assert traces.replay(json.loads(path.read_text())).reproduced, path.name


def test_a_sidecar_without_a_startup_probe_is_started_as_soon_as_it_runs():
    """The next init container is created while the sidecar is not yet ready,
    also after a kubelet restart adopted the sidecar."""
    m = NEVER.machine()
    state = _run(m, next(iter(m.init_states())), "Admit", "RunSandbox", "Create", "Start")
    assert state[km.WORLD][km.PROBES][0] == 1                  # started, not ready
    assert props.NEXT_AFTER_SIDECAR.trigger(m, state)
    restarted = _run(m, m.apply(state, Step("KubeletRestart")), "Relist")
    for s in (state, restarted):
        after = _run(m, s, "Create")
        assert [c[2] for c in after[km.RUNTIME][1]] == ["sidecar", "init"]
        assert not props.NEXT_AFTER_SIDECAR.trigger(m, after)
        assert next(p for p in props.NEVER_COVERS
                    if p.name == "kubelet_cover_next_before_sidecar_ready").check(m, after)
    waits = NEVER.machine(km.SIDECAR_WAITS_FOR_READY)
    assert not any(s.name == "Create" for s in waits.plan(state))


def test_never_fails_the_pod_on_a_failed_app_and_succeeds_it_on_exit_0():
    m = NEVER.machine()
    state = _run(m, next(iter(m.init_states())), "Admit", "RunSandbox", "Create", "Start",
                 "Create", "Start")
    state = _run(m, m.apply(state, Step("Exit", (1, 0))), "Create", "Start")
    for code, phase in ((0, "Succeeded"), (1, "Failed")):
        done = _run(m, m.apply(state, Step("Exit", (2, code))), "Stop", "WriteStatus")
        assert done[km.POD][0] == phase
        assert props.phase_rules(m, state, Step("WriteStatus"), done)


@pytest.mark.parametrize("policy", ("Always", "Never"))
def test_every_restart_policy_holds(policy):
    """The default model is OnFailure; the others at a crash-looping pod."""
    outcome = explore(CRASHLOOP.machine(restart_policy=policy, sidecar=True),
                      props.SAFETY + (props.DELETED_CLEANED, props.SIDECAR_KEPT))
    assert outcome.counterexample is None, outcome.counterexample
    assert outcome.complete and not outcome.undecided


def test_a_rejected_pod_is_failed_and_never_run():
    m = KUBELET.machine(fits=False)
    outcome = explore(m, props.SAFETY)
    assert outcome.counterexample is None and outcome.complete
    state = next(iter(m.init_states()))
    for name in ("Admit", "WriteStatus"):
        state = m.apply(state, Step(name))
    assert state[km.POD][0] == "Failed" and state[km.RUNTIME] == rt.INITIAL
    assert [s.name for s in m.plan(state)] == []


@pytest.mark.parametrize("mutant", sorted(Kubelet.mutants))
def test_every_mutant_is_caught_by_explore(tmp_path, mutant):
    cex = assert_caught_by_explore(KUBELET, mutant, tmp_path)
    assert (cex.loop is not None) == (mutant in LIVENESS_MUTANTS)


@pytest.mark.parametrize("mutant", sorted(Kubelet.mutants))
def test_every_mutant_is_caught_by_hypothesis(tmp_path, mutant):
    assert_caught_by_hypothesis(KUBELET, mutant, tmp_path)


def test_every_mutant_has_committed_traces_that_replay():
    for mutant in Kubelet.mutants:
        for engine in ("explore", "hypothesis"):
            (path,) = TRACES.glob(f"kubelet-*-{engine}-{mutant}.itf.json")
            trace = json.loads(path.read_text())
            assert traces.replay(trace).reproduced, path.name


# -- scenarios ------------------------------------------------------------------------------
def _run(m, state, *names):
    """Take the named steps, each the first planned step of that name."""
    for name in names:
        step = next((s for s in m.steps(state) if s.name == name), None)
        assert step is not None, f"{name} not enabled; planned {m.plan(state)}"
        state = m.apply(state, step)
    return state


def _pod_running(m):
    state = next(iter(m.init_states()))
    state = _run(m, state, "Admit", "RunSandbox", "Create", "Start")   # the sidecar
    assert m.plan(state) == []                                         # waits for startup
    state = m.apply(state, Step("Probe", (0, "started")))
    state = _run(m, state, "Create", "Start")                          # the init container
    assert not any(s.name == "Create" for s in m.plan(state))          # apps wait for it
    state = m.apply(state, Step("Exit", (1, 0)))
    state = _run(m, state, "Create", "Start", "Create", "Start", "WriteStatus")
    return state



def test_a_pod_worker_step_is_enabled_only_when_planned():
    """The worker's guard is its plan (``apply``), not its handlers: a
    handler that would move on its own (RunSandbox before admission; Stop
    where Kill is planned, the same StopContainer under another name) is a
    disabled step; a step of the wrong shape is a bug, not a disabled step."""
    m = KUBELET.machine()
    state = next(iter(m.init_states()))
    assert m.plan(state) == [Step("Admit")]
    assert m._do_RunSandbox(state) is not None                 # the effect alone would run
    assert m.apply(state, Step("RunSandbox")) is None
    killed = m.apply(_pod_running(m), Step("Probe", (3, "liveness")))
    (kill,) = [s for s in m.plan(killed) if s.name == "Kill"]
    assert m.apply(killed, Step("Stop", kill.params)) is None
    assert m.apply(killed, kill) is not None
    with pytest.raises(TypeError, match="takes 2"):
        m.apply(state, Step("Exit", (0,)))

def test_the_pod_starts_in_order_and_becomes_ready_when_its_probe_says_so():
    m = KUBELET.machine()
    state = _pod_running(m)
    assert state[km.POD] == ("Running", False, False)
    state = m.apply(state, Step("Probe", (2, "ready")))
    state = _run(m, state, "WriteStatus")
    assert state[km.POD] == ("Running", True, False)
    state = m.apply(state, Step("Probe", (2, "unready")))
    state = _run(m, state, "WriteStatus")
    assert state[km.POD] == ("Running", False, False)


def test_a_kubelet_restart_adopts_the_running_containers():
    m = KUBELET.machine()
    state = _pod_running(m)
    before = state[km.RUNTIME]
    state = m.apply(state, Step("KubeletRestart"))
    assert m.plan(state) == [Step("Relist")]
    state = _run(m, state, "Relist")
    assert state[km.RUNTIME] == before
    known = [c[0] for c in state[km.KUBELET][2]]
    assert known == [c[0] for c in before[1]]                 # every container adopted
    assert not any(s.name == "Create" for s in m.plan(state))


def test_a_lost_create_answer_is_adopted_not_duplicated():
    """CreateContainer timed out after the runtime applied it: the kubelet's
    next sync adopts the container from the runtime's list; the mutant that
    adopts nothing creates a second container for the name."""
    bounds = dict(lost_answers=1, kubelet_restarts=0, runtime_restarts=0, probe_failures=0)
    outcome = explore(KUBELET.machine(**bounds), props.SAFETY + props.LIVENESS)
    assert outcome.counterexample is None and outcome.complete
    (dup,) = [p for p in props.SAFETY if p.name == "kubelet_no_duplicate_containers"]
    cex = explore(KUBELET.machine("restart_no_adopt", **bounds), [dup]).counterexample
    assert "CreateAnswerLost" in [s.name for s, _ in cex.steps]
    assert "KubeletRestart" not in [s.name for s, _ in cex.steps]


def test_deletion_runs_prestop_then_stops_with_the_rest_of_the_grace_period():
    m = KUBELET.machine()
    state = m.apply(_pod_running(m), Step("Delete"))
    plan = m.plan(state)
    assert Step("PreStop", (2,)) in plan
    assert not any(s.name == "Stop" and s.params[0] == 0 for s in plan)   # sidecar last
    state = m.apply(state, Step("PreStop", (2,)))
    stop = next(s for s in m.plan(state) if s.name == "Stop" and s.params[0] == 2)
    assert stop.params[2] == m.pod.grace - 1
    for _ in range(20):
        plan = [s for s in m.plan(state) if s.name != "WriteStatus"]
        if not plan:
            break
        state = m.apply(state, plan[0])
    assert state[km.POD] is None and state[km.RUNTIME] == rt.INITIAL


def test_crash_loop_back_off_doubles_and_resets_after_a_long_run():
    m = CRASHLOOP.machine(restart_policy="Always")
    state = _run(m, next(iter(m.init_states())), "Admit", "RunSandbox", "Create", "Start")
    slept = []
    for _ in range(2):
        state = m.apply(state, Step("Exit", (0, 1)))
        state = _run(m, state, "Backoff")
        slept.append(state[km.WORLD][km.SLEPT][0])
        state = _run(m, state, "Create", "Start")
    assert slept == [10, 20]
    state = m.apply(state, Step("RanLong", (0,)))
    state = m.apply(state, Step("Exit", (0, 1)))
    state = _run(m, state, "Backoff")
    assert state[km.WORLD][km.SLEPT][0] == 10


def test_the_back_off_reaches_its_cap_and_stays_there():
    """Six consecutive crashes: 10, 20, 40, 80, 160, then 300 s, never 320."""
    m = KUBELET.machine(**KUBELET.mutant_bounds["backoff_uncapped"])
    outcome = explore(m, props.SAFETY)
    assert outcome.counterexample is None and outcome.complete
    state = _run(m, next(iter(m.init_states())), "Admit", "RunSandbox", "Create", "Start")
    slept = []
    for _ in range(6):
        state = m.apply(state, Step("Exit", (0, 1)))
        state = _run(m, state, "Backoff")
        slept.append(state[km.WORLD][km.SLEPT][0])
        state = _run(m, state, "Create", "Start")
    assert slept == [10, 20, 40, 80, 160, 300]


def test_the_properties_can_fail():
    """Hand-made states and steps that each property must reject."""
    m = KUBELET.machine()
    state = _pod_running(m)
    dup = (state[0], (state[1][0], state[1][1] + ((9, 0, "app0", 5, rt.CREATED, 0),)),
           state[2], state[3])
    assert props.no_duplicate_containers(m, state)
    assert not props.no_duplicate_containers(m, dup)
    ready = (("Running", True, False),) + state[1:]
    assert not props.ready_only_when_containers_ready(m, state, Step("WriteStatus"), ready)
    assert not props.sandbox_first(m, next(iter(m.init_states())), Step("Create", (0, -1, 0)),
                                   state)
    deleting = (("Running", False, True),) + state[1:]
    assert not props.grace_period(m, deleting, Step("Stop", (2, 2, 0)), deleting)
    assert props.grace_period(m, deleting, Step("Stop", (2, 2, 3)), deleting)
    succeeded = (("Succeeded", False, False),) + state[1:]
    assert not props.phase_rules(m, state, Step("WriteStatus"), succeeded)
    assert not props.rejected_pod_not_run(KUBELET.machine(fits=False), state)
    assert props.expected_backoff(1) == 10 and props.expected_backoff(3) == 40
    assert props.expected_backoff(9) == 300


def test_the_sidecar_and_first_life_checks_can_fail():
    """The new liveness trigger and covers read the runtime and the world: a
    started sidecar with nothing after it triggers; a deleted pod or a sidecar
    with a startup probe does not; Ready after a kubelet restart is not the
    first-life cover."""
    m = NEVER.machine()
    state = _run(m, next(iter(m.init_states())), "Admit", "RunSandbox", "Create", "Start")
    trigger = props.NEXT_AFTER_SIDECAR.trigger
    assert trigger(m, state) and not props.NEXT_AFTER_SIDECAR.check(m, state)
    assert not trigger(m, (("Pending", False, True),) + state[1:])
    assert not trigger(KUBELET.machine(), _run(KUBELET.machine(), next(iter(
        KUBELET.machine().init_states())), "Admit", "RunSandbox", "Create", "Start"))
    liveness_kill = next(p for p in props.COVERS if p.name == "kubelet_cover_liveness_kill")
    running = _pod_running(KUBELET.machine())
    assert not liveness_kill.check(m, running)
    assert liveness_kill.check(m, KUBELET.machine().apply(running, Step("Probe", (3, "liveness"))))
    first_life = next(p for p in props.COVERS if p.name == "kubelet_cover_ready_first_life")
    ready = (("Running", True, False),) + _pod_running(KUBELET.machine())[1:]
    assert first_life.check(m, ready)
    spent = ready[km.WORLD][km.SPENT]
    later = ready[:km.WORLD] + ((spent[:4] + (1,) + spent[5:],) + ready[km.WORLD][1:],)
    assert not first_life.check(m, later)
    with pytest.raises(ValueError, match="sidecar_probe"):
        Kubelet(sidecar_probe="liveness")


def test_the_sandbox_goes_last_and_an_init_failure_under_never_fails_the_pod():
    """kubelet_sandbox_stopped_last judges StopSandbox / GarbageCollect against
    the containers still running in that sandbox; kubelet_cover_failed_in_init
    is a Failed pod no app container of which was ever created."""
    m = KUBELET.machine()
    state = _pod_running(m)
    stop = Step("StopSandbox", (0,))
    assert not props.sandbox_stopped_last(m, state, stop, state)
    emptied = state[:km.RUNTIME] + ((state[km.RUNTIME][0], tuple(
        c[:4] + (rt.EXITED, 0) for c in state[km.RUNTIME][1])),) + state[km.RUNTIME + 1:]
    assert props.sandbox_stopped_last(m, emptied, stop, emptied)
    assert props.sandbox_stopped_last(m, state, Step("WriteStatus"), state)
    n = NEVER.machine()
    failed_init = _run(n, next(iter(n.init_states())), "Admit", "RunSandbox", "Create",
                       "Start", "Create", "Start")
    failed_init = _run(n, n.apply(failed_init, Step("Exit", (1, 1))), "Stop", "WriteStatus")
    cover = next(p for p in props.NEVER_COVERS if p.name == "kubelet_cover_failed_in_init")
    assert failed_init[km.POD][0] == "Failed" and cover.check(n, failed_init)
    assert not cover.check(n, (("Failed", False, False),) + _pod_running(m)[1:])

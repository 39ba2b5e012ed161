"""``kubemc check-controller ... --replay TRACE``: re-execute a trace that
``check-controller`` wrote against the user's code as it is now.

Why a replay of its own rather than ``kubemc trace replay``: the machine is
built from the user's code, named again on the command line — a trace file
is input and must not get to import a module by naming it. The bounds come
from the trace (checked against the ceilings, as every bound is). After a
fix, the replay says the violation no longer reproduces (exit 0); while the
bug is there, it reproduces (exit 1).
"""

from __future__ import annotations

from kubemc.checker import itf, lasso, traces
from kubemc.checker.catalog import Model
from kubemc.checker.errors import BadInput
from kubemc.model.controllers.usercontroller import BadReconcile
from kubemc.model.kernel import Step
from kubemc.properties.controllers.usercontroller import COMPONENT
from kubemc.properties.core import INVARIANT


def replay(model: Model, path: str) -> traces.Replay:
    trace = traces.load(path)
    source = itf.shown(path)
    meta = trace.get("#meta") or {}
    if meta.get("model") != COMPONENT:
        raise BadInput(f"{source} was not written by kubemc check-controller (its model is "
                       f"{meta.get('model')!r}): use kubemc trace replay")
    prop = next((p for p in model.properties if p.name == meta.get("property")), None)
    if prop is None:
        raise BadInput(f"{source} is a counterexample to {meta.get('property')!r}, which is not "
                       f"checked here: pass --invariant {meta.get('property')}")
    config = traces.replay_config(model, meta, source)
    try:
        machine = model.machine(**config)
        return _run(trace, machine, prop, source)
    except BadReconcile as exc:
        raise BadInput(str(exc)) from None


def _run(trace: dict, machine, prop, source: str) -> traces.Replay:
    states = trace["states"]
    (state,) = machine.init_states()
    visited, taken, divergences = [state], [], []
    for k in range(1, len(states)):
        m = states[k].get("#meta") or {}
        if not isinstance(m.get("action"), str):
            raise BadInput(f"{source}: state {k} has no action in its #meta")
        step = Step(m["action"], tuple(itf.decode(p) for p in m.get("params", [])))
        nxt = traces.apply_proposed(machine, state, step, f"{source}: state {k}")
        if nxt is None:
            return traces.Replay(False, f"step {k} {step} is not enabled with the code as it is "
                                 "now: the violation no longer reproduces", k - 1,
                                 tuple(divergences))
        recorded = {key: v for key, v in states[k].items() if key != "#meta"}
        if itf.encode(dict(machine.view(nxt))) != recorded:
            divergences.append(k)
        state = nxt
        visited.append(nxt)
        taken.append(step)
    n = len(states) - 1
    if prop.kind == INVARIANT:
        if prop.check(machine, state):
            return traces.Replay(False, f"all {n} steps replayed; {prop.name} holds: the "
                                 "violation no longer reproduces", n, tuple(divergences))
        return traces.Replay(True, f"all {n} steps replayed; {prop.name} is violated: "
                             f"{prop.statement}", n, tuple(divergences))
    loop = trace.get("loop")
    back = (trace.get("#meta") or {}).get("loop_action")
    if not isinstance(loop, int) or isinstance(loop, bool) or not 0 <= loop <= n \
            or not isinstance(back, dict) or not isinstance(back.get("action"), str):
        raise BadInput(f"{source}: a liveness counterexample needs 'loop' and #meta "
                       "'loop_action'")
    closing = None if back["action"] == "stutter" else \
        Step(back["action"], tuple(itf.decode(p) for p in back.get("params", [])))
    verdict = lasso.judge(machine, prop, visited, taken, loop, closing)
    if not verdict.confirmed:
        return traces.Replay(False, f"all {n} steps replayed; the lasso does not reproduce: "
                             f"{verdict.reason}", n, tuple(divergences))
    return traces.Replay(True, f"all {n} steps replayed; the lasso (loop back to state "
                         f"{loop}) is quiet and fair, and {prop.name} is violated: "
                         f"{prop.statement}", n, tuple(divergences))

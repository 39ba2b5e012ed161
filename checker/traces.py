"""Turning counterexamples into ITF files, and reading them back: ``trace show``
prints what changed at each step; ``trace replay`` re-executes the steps on the
model as it is now and says whether the violation still happens.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import attrs

from kubemc.checker import itf, lasso
from kubemc.checker.components import UnknownName, all_properties, component_of, model_named
from kubemc.checker.counterexample import Counterexample
from kubemc.checker.errors import BadInput
from kubemc.model.kernel import Step
from kubemc.properties.core import INVARIANT, TRANSITION


def to_itf(cex: Counterexample, *, model: str, machine, engine: str,
           seed: Any = None, command: list[str] | str | None = None) -> dict:
    views = [machine.view(cex.init)] + [machine.view(s) for _, s in cex.steps]
    actions = [("Init", ())] + [(st.name, st.params) for st, _ in cex.steps]
    if isinstance(command, list):
        command = shlex.join(command)
    meta = {
        "description": f"{cex.prop.name} violated: {cex.prop.statement}",
        "property": cex.prop.name,
        "kind": cex.prop.kind,
        "provenance": cex.prop.provenance,
        "component": cex.prop.component,
        "model": model,
        "mutant": machine.mutant,
        "config": machine.config(),
        "engine": engine,
        "seed": seed,
        "command": command,
        "length": len(cex.steps),
    }
    if cex.is_lasso:
        # ADR-015's ``loop`` says which state the last one loops back to; the
        # step that does it is not a state of its own, so it is kept here
        meta["lasso"] = (f"the last state loops back to state {cex.loop}"
                         + (" by stuttering: no system step is enabled there"
                            if cex.closing is None else f" by {cex.closing}"))
        meta["loop_action"] = ({"action": "stutter", "params": []} if cex.closing is None
                               else {"action": cex.closing.name,
                                     "params": list(cex.closing.params)})
    if cex.note:
        meta["note"] = cex.note
    if cex.prop.is_liveness:
        meta["fairness"] = cex.prop.fairness
    meta = {k: (v if v is not None else "none") for k, v in meta.items()}
    return itf.build(itf.encode(meta), views, actions, loop=cex.loop)


def save(cex: Counterexample, directory: Path, **kwargs) -> Path:
    model = kwargs["model"]
    mutant = kwargs["machine"].mutant
    stem = "-".join(x for x in (model, cex.prop.name, kwargs["engine"], mutant) if x)
    path = itf.fresh_path(directory, stem)
    return itf.write(path, to_itf(cex, **kwargs))


# ---------------------------------------------------------------------------
# show
# ---------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if isinstance(value, dict) and value and set(value) <= {"#tup", "#set", "#map", "#bigint"}:
        if "#tup" in value:
            return "(" + ", ".join(_fmt(v) for v in value["#tup"]) + ")"
        if "#set" in value:
            return "{" + ", ".join(_fmt(v) for v in value["#set"]) + "}"
        if "#map" in value:
            return "{" + ", ".join(f"{_fmt(k)} ↦ {_fmt(v)}" for k, v in value["#map"]) + "}"
        return value["#bigint"]
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _changes(name: str, before: Any, after: Any) -> list[str]:
    """The changed parts of one variable: per index for a list of per-server
    values, so a reader sees 'log[2]' change rather than the whole vector."""
    if before == after:
        return []
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after) \
            and name != "messages":
        return [f"  {name}[{i}]: {_fmt(b)} → {_fmt(a)}"
                for i, (b, a) in enumerate(zip(before, after)) if b != a]
    if isinstance(before, list) and isinstance(after, list):
        gone = [x for x in before if x not in after]
        new = [x for x in after if x not in before]
        lines = [f"  {name} −{_fmt(x)}" for x in gone] + [f"  {name} +{_fmt(x)}" for x in new]
        return lines or [f"  {name}: {_fmt(before)} → {_fmt(after)}"]
    return [f"  {name}: {_fmt(before)} → {_fmt(after)}"]


def show(trace: dict) -> str:
    meta = trace.get("#meta", {})
    out = []
    if meta:
        out.append(f"property  {meta.get('property')} ({meta.get('kind')}): "
                   f"{meta.get('description', '')}")
        out.append(f"model     {meta.get('model')}  mutant {meta.get('mutant')}  "
                   f"engine {meta.get('engine')}  seed {meta.get('seed')}")
        out.append(f"bounds    {_fmt(meta.get('config', {}))}")
        out.append(f"reproduce {meta.get('command')}")
        out.append("")
    variables = trace["vars"]
    states = trace["states"]
    if not states:
        return "\n".join(out + ["(no states)"])
    loop = trace.get("loop")
    if isinstance(loop, int) and 0 <= loop < len(states):
        out.append(f"A lasso: states {loop}..{len(states) - 1} repeat forever "
                   f"({meta.get('lasso', 'the last state loops back')}).")
        out.append("")
    elif meta.get("note"):
        out.append(f"A finite liveness trace: {meta['note']}.")
        out.append("")
    out.append("State 0 (initial)" + ("   <- the loop begins here" if loop == 0 else ""))
    for v in variables:
        out.append(f"  {v} = {_fmt(states[0].get(v))}")
    for k in range(1, len(states)):
        m = states[k].get("#meta", {})
        params = ", ".join(_fmt(p) for p in m.get("params", []))
        mark = "   <- the loop begins here" if k == loop else ""
        out.append(f"Step {k}: {m.get('action', '?')}({params}){mark}")
        changed = []
        for v in variables:
            changed += _changes(v, states[k - 1].get(v), states[k].get(v))
        out.extend(changed or ["  (no change)"])
    if isinstance(loop, int):
        back = meta.get("loop_action") or {}
        name = back.get("action", "?") if isinstance(back, dict) else "?"
        if name == "stutter":
            out.append(f"(stutters in state {loop} forever: no system step is enabled)")
        else:
            params = ", ".join(_fmt(p) for p in back.get("params", []))
            out.append(f"Step {len(states)}: {name}({params}) — back to state {loop}, "
                       "and the loop repeats")
    return "\n".join(out)


# ---------------------------------------------------------------------------
# replay
# ---------------------------------------------------------------------------


@attrs.frozen
class Replay:
    reproduced: bool
    message: str
    steps_replayed: int
    divergences: tuple = ()


def replay(trace: dict, source: str = "trace") -> Replay:
    meta = trace.get("#meta") or {}
    for key in ("model", "property"):
        if key not in meta:
            raise BadInput(f"{source}: #meta has no {key!r}: not a kubemc trace")
    try:
        model = model_named(meta["model"])
        prop = next(p for p in all_properties() if p.name == meta["property"]
                    and p.component == component_of(model).name)
    except (UnknownName, StopIteration):
        raise BadInput(f"{source}: names model {meta['model']!r} / property "
                       f"{meta['property']!r}, which this kubemc does not have") from None
    mutant = meta.get("mutant")
    mutant = None if mutant in (None, "none") else mutant
    config = replay_config(model, meta, source)
    try:
        machine = model.build(mutant=mutant, **config)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"{source}: cannot rebuild the model from its #meta: {exc}") from None

    states = trace["states"]
    divergences = []
    inits = list(machine.init_states())
    recorded0 = {k: v for k, v in states[0].items() if k != "#meta"}
    state = next((s for s in inits if itf.encode(dict(machine.view(s))) == recorded0), inits[0])
    before = None
    last_step = None
    visited, taken = [state], []
    for k in range(1, len(states)):
        m = states[k].get("#meta") or {}
        try:
            step = Step(m["action"], tuple(itf.decode(p) for p in m.get("params", [])))
        except (KeyError, TypeError):
            raise BadInput(f"{source}: state {k} has no action in its #meta") from None
        nxt = apply_proposed(machine, state, step, f"{source}: state {k}")
        if nxt is None:
            return Replay(False, f"step {k} {step} is not enabled in the model as it is now: "
                          "the violation no longer reproduces", k - 1, tuple(divergences))
        recorded = {key: v for key, v in states[k].items() if key != "#meta"}
        if itf.encode(dict(machine.view(nxt))) != recorded:
            divergences.append(k)
        before, last_step, state = state, step, nxt
        visited.append(nxt)
        taken.append(step)
    if prop.kind == INVARIANT:
        holds = prop.check(machine, state)
    elif prop.kind == TRANSITION:
        holds = last_step is None or prop.check(machine, before, last_step, state)
    elif prop.is_liveness:
        return _replay_lasso(trace, machine, prop, visited, taken, tuple(divergences), source)
    else:
        raise BadInput(f"{source}: replay of {prop.kind} properties is not supported yet")
    n = len(states) - 1
    if holds:
        return Replay(False, f"all {n} steps replayed; {prop.name} holds: "
                      "the violation no longer reproduces", n, tuple(divergences))
    return Replay(True, f"all {n} steps replayed; {prop.name} is violated: "
                  f"{prop.statement}", n, tuple(divergences))


def _replay_lasso(trace, machine, prop, states, steps, divergences, source) -> Replay:
    """A liveness trace reproduces when it is a lasso whose closing step
    returns to its loop state, whose cycle is quiet and fair, and on which
    the property fails (``checker.lasso`` judges it on concrete states). A
    finite trace of the hypothesis engine's convergence phase is bounded
    evidence only: it reproduces when the goal still fails at its end."""
    n = len(states) - 1
    meta = trace.get("#meta") or {}
    loop = trace.get("loop")
    if loop is None:
        goal = prop.holds_in(machine, states[-1])
        if goal:
            return Replay(False, f"all {n} steps replayed; {prop.name}'s goal holds at the "
                          "end: the violation no longer reproduces", n, divergences)
        return Replay(True, f"all {n} steps replayed; {prop.name}'s goal does not hold at "
                      f"the end ({meta.get('note', 'a finite trace')}; bounded evidence, "
                      f"not a lasso): {prop.statement}", n, divergences)
    if not isinstance(loop, int) or isinstance(loop, bool) or not 0 <= loop <= n:
        raise BadInput(f"{source}: 'loop' is not the index of one of its {n + 1} states")
    back = meta.get("loop_action")
    if not isinstance(back, dict) or not isinstance(back.get("action"), str):
        raise BadInput(f"{source}: a lasso needs #meta 'loop_action' (the step back to "
                       "the loop state, or 'stutter')")
    closing = None
    if back["action"] != "stutter":
        closing = Step(back["action"], tuple(itf.decode(p) for p in back.get("params", [])))
    verdict = lasso.judge(machine, prop, states, steps, loop, closing)
    cycle = n - loop + (closing is not None)
    if not verdict.confirmed:
        return Replay(False, f"all {n} steps replayed; the lasso does not reproduce: "
                      f"{verdict.reason}", n, divergences)
    shape = (f"stem {loop} steps, then stuttering in state {loop}: no system step is "
             "enabled there" if closing is None
             else f"stem {loop} steps, cycle {cycle} steps back to state {loop}")
    return Replay(True, f"all {n} steps replayed; a lasso ({shape}) is quiet and fair, "
                  f"and {prop.name} is violated: {prop.statement}", n, divergences)


def load(path: str | Path) -> dict:
    """Read a trace for ``show`` or ``replay``: well-formed ITF (``itf.read``)
    whose kubemc fields, where present, have the types ``replay`` relies on.
    A trace from another tool (no kubemc fields) passes, for ``show``."""
    trace = itf.read(path)
    check_kubemc_fields(trace, itf.shown(path))
    return trace


_NAME_FIELDS = ("model", "property", "mutant", "kind", "engine", "command", "description")


def check_kubemc_fields(trace: dict, source: str) -> None:
    """The fields kubemc writes into ``#meta``: names are strings, ``config``
    is an object of ITF values, and every step's parameters decode."""
    meta = trace.get("#meta", {})
    for key in _NAME_FIELDS:
        if key in meta and not isinstance(meta[key], str):
            raise BadInput(f"{source}: #meta {key!r} is not a string")
    config = meta.get("config", {})
    if not isinstance(config, dict) or set(config) & set(itf.TAGS):
        raise BadInput(f"{source}: #meta 'config' is not an object of bounds")
    for key, value in config.items():
        itf.check_value(value, f"{source}: #meta config {itf.shown(key)!r}")
        _decoded(value, f"{source}: #meta config {itf.shown(key)!r}")
    for k, state in enumerate(trace["states"]):
        for i, param in enumerate(state.get("#meta", {}).get("params", [])):
            _decoded(param, f"{source}: state {k}, parameter {i}")


def _decoded(value: Any, where: str) -> Any:
    try:
        return itf.decode(value)
    except BadInput as exc:
        raise BadInput(f"{where}: {exc}") from None


def replay_config(model, meta: dict, source: str) -> dict:
    """The bounds a trace names, checked against the model's ceilings
    before the machine is built: a trace is input like any other, and huge
    bounds in its ``#meta`` would wedge the replay."""
    config = {k: (tuple(v) if isinstance(v, (list, tuple)) else v)
              for k, v in _decoded(meta.get("config") or {}, f"{source}: #meta").items()}
    try:
        return model.check_bounds(config)
    except BadInput as exc:
        raise BadInput(f"{source}: #meta config: {exc}") from None


def apply_proposed(machine, state, step: Step, where: str = "step"):
    """The state ``step`` leads to, or None when the machine does not
    propose that step from ``state`` (it is not enabled: the model changed).

    A recorded step is input: it is checked against the steps the machine
    proposes before it is applied, so no step reaches code written for
    well-typed ones. An action the machine does not have, or parameters of
    another arity or type than the machine's own steps of that action, are
    not a changed model but a broken trace: BadInput.
    """
    actions = getattr(machine, "tags", None) or {}
    if actions and step.name not in actions:
        raise BadInput(f"{where}: {_short(step.name)} is not an action of {machine.name} "
                       f"(its actions: {_short(', '.join(sorted(actions)), 200)})")
    same = [p for p in machine.steps(state) if p.name == step.name]
    if any(p == step for p in same):
        return machine.apply(state, step)
    if same and not any(_shape(p.params) == _shape(step.params) for p in same):
        raise BadInput(f"{where}: {_short(str(step))} has parameters of the wrong type "
                       f"or number: the model's own steps look like {_short(str(same[0]))}")
    # Not proposed here, but of the right shape: a machine may apply steps it
    # does not enumerate (a packet the z3 engine chose), so it is tried; as
    # the step is input, a failure to apply it is the trace's, not a crash.
    try:
        return machine.apply(state, step)
    except Exception as exc:
        raise BadInput(f"{where}: the model cannot apply {_short(str(step))} "
                       f"({type(exc).__name__}): the trace does not fit this model") from None


def _shape(value):
    """The types of a step's parameters, nested tuples element by element."""
    if isinstance(value, tuple):
        return tuple(_shape(v) for v in value)
    return type(value).__name__


def _short(text: str, limit: int = 80) -> str:
    text = itf.shown(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"

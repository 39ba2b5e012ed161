"""kubemc's models from a user's own tests: the small, stable surface.

Why a module of its own: ``checker.run`` is the CLI's machinery and may
change shape; a team's test suite needs a few calls that stay put — name a
model, build it with bounds, run an engine, assert that it holds or get the
counterexample — and a failure message that shows the trace's steps, as
``kubemc trace show`` prints them, so a red CI job explains itself.

Examples (``docs/pytest.md`` has more)::

    from kubemc.checker import api

    def test_mvcc_holds_with_three_keys(tmp_path):
        api.assert_holds("store", "mvcc", bounds={"keys": 3, "max_revision": 4},
                         trace_dir=tmp_path)

    def test_the_seeded_bug_is_caught(tmp_path):
        verdict = api.counterexample("store", "mvcc", mutant="delete_keeps_revision",
                                     trace_dir=tmp_path)
        assert verdict.prop == "revision_monotonic"
        assert verdict.trace()["states"][-1]["#meta"]["action"] == "Delete"

Verdicts are those of ``kubemc check``: ``holds``; ``violated`` (with a
trace); ``undecided`` (a budget ran out, random runs missed the mutant);
``vacuous`` (a cover never reached); ``unproved`` (z3 found a counterexample
to induction). Only ``holds`` passes :func:`assert_holds`; only
``violated`` with a trace satisfies :func:`counterexample`. Bad input — an
unknown name, a bound past its ceiling — raises :class:`BadInput` with one
line saying what is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from kubemc.checker import run, traces, verdicts
from kubemc.checker.catalog import Component, Model
from kubemc.checker.components import COMPONENTS, component
from kubemc.checker.errors import BadInput, KubemcError
from kubemc.model.kernel import Machine

__all__ = ["BadInput", "Case", "Verdict", "KubemcAssertionError", "ENGINES", "components",
           "models", "properties", "mutants", "machine", "cases", "check", "assert_holds",
           "counterexample"]

ENGINES = run.ENGINES


class KubemcAssertionError(AssertionError):
    """A model did not give the verdict a test asked for; the message holds
    the trace's steps when there is one."""


def components() -> list[str]:
    """The names ``kubemc check`` accepts (``store``, ``apiserver`` …)."""
    return list(COMPONENTS)


def models(comp: str) -> list[str]:
    return [m.name for m in component(comp).models]


def properties(comp: str, model: str) -> list[str]:
    """The properties the model is checked against, by name."""
    return [p.name for p in _model(comp, model).properties]


def mutants(comp: str, model: str) -> dict[str, str]:
    """The model's seeded bugs: mutant name -> the property it must violate."""
    return {name: m.violates for name, m in _model(comp, model).mutants.items()}


def machine(comp: str, model: str, *, mutant: str | None = None,
            bounds: dict[str, Any] | None = None) -> Machine:
    """The model as an executable machine at its default bounds, with
    ``bounds`` overriding them (checked against the model's ceilings), and a
    seeded bug when ``mutant`` names one: for tests that step it by hand."""
    return run.build(_model(comp, model), mutant, bounds, "explore")


@attrs.frozen
class Case:
    """One (component, model, engine) to check: a pytest item of the plugin,
    or a parameter of a user's own ``pytest.mark.parametrize``."""

    component: str
    model: str
    engine: str
    mutant: str | None = None

    @property
    def id(self) -> str:
        return f"{self.component}-{self.model}-{self.engine}" + (
            f"-{self.mutant}" if self.mutant else "")


def cases(comps: Sequence[str] = (), *, engines: Sequence[str] = ("explore",),
          mutant: str | None = None, bounds: dict[str, Any] | None = None) -> list[Case]:
    """Every (component, model, engine) that ``kubemc check COMPONENT ...
    --engine ... [--mutant] [--bound]`` runs, in that order, with nothing
    built or run: all components when ``comps`` is empty; with a mutant,
    the models that carry it (and z3 only where a symbolic check covers
    it); with bounds, the models that have them (z3's encodings have fixed
    bounds and are listed without them). Bad names and bounds past their
    ceilings raise BadInput here, before any work."""
    for engine in engines:
        if engine not in ENGINES:
            raise BadInput(f"unknown engine {engine!r} (known: {', '.join(ENGINES)}, all)")
    pairs = run.select(comps, mutant)
    if bounds:
        pairs = [(c, m) for c, m in pairs if set(bounds) <= _bound_names(m)]
        if not pairs:
            raise BadInput(f"no selected model has the bounds {', '.join(sorted(bounds))}")
        for _, m in pairs:
            m.check_bounds(bounds)
    out = []
    for engine in engines:
        for c, m in pairs:
            if engine == "z3" and not any(s.model == m.name and (mutant is None
                                                                or mutant in s.mutants)
                                          for s in c.symbolic):
                continue
            out.append(Case(c.name, m.name, engine, mutant))
    if not out:
        raise BadInput(f"no symbolic check of {', '.join(sorted({c.name for c, _ in pairs}))} "
                       f"covers {'mutant ' + repr(mutant) if mutant else 'these models'}")
    return out


@attrs.frozen
class Verdict:
    """What one (component, model, engine) run concluded. For z3, which runs
    several symbolic checks of one model, the worst of their rows (ranked as
    ``kubemc check`` ranks exit codes) speaks for all; ``rows`` keeps each."""

    component: str
    model: str
    engine: str
    verdict: str
    mutant: str | None
    #: the violated (or undecided, vacuous) property, when one is named
    prop: str | None
    #: the ITF file written for a violation
    trace_path: Path | None
    detail: str
    seconds: float
    rows: tuple = ()

    @property
    def holds(self) -> bool:
        return self.verdict == run.HOLDS

    @property
    def violated(self) -> bool:
        return self.verdict == run.VIOLATED

    @property
    def label(self) -> str:
        text = f"{self.component}/{self.model} [{self.engine}]"
        return text + (f" mutant {self.mutant}" if self.mutant else "")

    def trace(self) -> dict:
        """The counterexample as ITF JSON (``#meta``, ``vars``, ``states``)."""
        if self.trace_path is None:
            raise KubemcAssertionError(f"{self.label}: {self.verdict}, no trace was written")
        return traces.load(self.trace_path)

    def steps(self) -> str:
        """The trace step by step, as ``kubemc trace show`` prints it."""
        return traces.show(self.trace())

    def explain(self, relative_to: Path | None = None) -> str:
        """A failure message: the verdict in one line, then for a violation
        the trace's steps, where it was written and how to replay it."""
        head = f"{self.label}: {self.verdict.upper()}"
        if self.prop:
            head += f" {self.prop}"
        lines = [head + (f" — {self.detail}" if self.detail else "")]
        for row in self.rows:
            if row.verdict != run.HOLDS and len(self.rows) > 1:
                also = (f" (trace {_relative(Path(row.trace), relative_to)})"
                        if row.trace and Path(row.trace) != self.trace_path else "")
                lines.append(f"  {row.verdict}: {row.detail}{also}")
        if self.trace_path is not None:
            shown = _relative(self.trace_path, relative_to)
            try:
                steps = self.steps()
            except KubemcError as exc:  # removed or damaged since it was written
                steps = f"(the trace could not be read back: {exc})"
            lines += ["", steps, "", f"trace:  {shown}",
                      f"replay: kubemc trace replay {shown}"]
        elif self.verdict == run.VIOLATED:
            lines.append("no trace was written: " + next(
                (r.trace_error for r in self.rows if r.trace_error), "see the detail above"))
        return "\n".join(lines)


def check(comp: str, model: str, *, engine: str = "explore", mutant: str | None = None,
          bounds: dict[str, Any] | None = None, props: Sequence[str] | None = None,
          trace_dir: Path | str = "kubemc-traces", max_states: int | None = None,
          profile: str = "ci", seed: int | None = None) -> Verdict:
    """Run one engine on one model and return its verdict (never raises for
    a violation; see :func:`assert_holds`). ``props`` checks only the named
    properties; with ``mutant`` the property the mutant is meant to violate
    is checked, as ``kubemc check --mutant`` does."""
    if engine not in ENGINES:
        raise BadInput(f"unknown engine {engine!r} (known: {', '.join(ENGINES)})")
    if profile not in ("ci", "deep"):
        raise BadInput(f"unknown hypothesis profile {profile!r} (known: ci, deep)")
    if isinstance(props, str):
        props = (props,)
    c, m = component(comp), _model(comp, model)
    rows = run.check_model(c, m, engine, mutant=mutant, bounds=bounds, props=props,
                           profile=profile, seed=seed, trace_dir=Path(trace_dir),
                           max_states=max_states)
    return _verdict(c, m, engine, mutant, rows)


def assert_holds(comp: str, model: str, **options) -> Verdict:
    """:func:`check`, raising :class:`KubemcAssertionError` — with the trace's
    steps — unless every property holds. Undecided and vacuous runs fail
    too: a check that said nothing has not shown that anything holds."""
    verdict = check(comp, model, **options)
    if not verdict.holds:
        raise KubemcAssertionError(verdict.explain())
    return verdict


def counterexample(comp: str, model: str, **options) -> Verdict:
    """:func:`check`, expecting a violation: returns the verdict, whose
    :meth:`Verdict.trace` and :meth:`Verdict.steps` give the counterexample;
    raises :class:`KubemcAssertionError` when no trace was found."""
    verdict = check(comp, model, **options)
    if not verdict.violated or verdict.trace_path is None:
        raise KubemcAssertionError(f"expected a counterexample, got {verdict.explain()}")
    return verdict


def _model(comp: str, name: str) -> Model:
    c: Component = component(comp)
    found = next((m for m in c.models if m.name == name), None)
    if found is None:
        raise BadInput(f"component {comp} has no model {name!r} "
                       f"(its models: {', '.join(m.name for m in c.models)})")
    return found


def _bound_names(model: Model) -> set:
    """The bounds the catalog names for a model (``kubemc check --bound``
    applies to the models that have them)."""
    extra = {k for b in model.mutant_bounds.values() for k in b}
    return set(model.bounds) | set(model.hypothesis_bounds) | extra


def _verdict(comp: Component, model: Model, engine: str, mutant, rows) -> Verdict:
    if not rows:  # nothing ran: never a pass
        return Verdict(comp.name, model.name, engine, run.UNDECIDED, mutant, None, None,
                       "no check ran", 0.0, ())
    worst = min(rows, key=lambda r: verdicts.RANK.index(verdicts.code_of(r)))
    return Verdict(comp.name, model.name, engine, worst.verdict, mutant, worst.prop,
                   Path(worst.trace) if worst.trace else None, worst.detail,
                   sum(r.seconds for r in rows), tuple(rows))


def _relative(path: Path, base: Path | None) -> str:
    if base is not None:
        try:
            return str(Path(path).resolve().relative_to(Path(base).resolve()))
        except ValueError:
            pass
    return str(path)

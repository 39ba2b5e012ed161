"""The test items of ``pytest --kubemc``: one per (component, model, engine).

Loaded only when ``--kubemc`` is given (``checker.pytest_plugin``). The items
are added in ``pytest_collection_modifyitems`` (first, so that ``-k``, ``-m``,
``--lf`` and pytest-xdist's scheduling see them like any collected test);
their node ids are ``kubemc::COMPONENT::MODEL[ENGINE]`` (and
``[ENGINE-MUTANT]``), the same on every xdist worker. Each item carries the
marker ``kubemc(component=…, model=…, engine=…, mutant=…)`` and its model's
property names as keywords, so ``-m "kubemc(engine='z3')"`` and
``-k revision_monotonic`` select as one expects.

Verdicts: ``holds`` passes. Everything else fails — a violation with the
trace's steps (as ``kubemc trace show`` prints them), the trace's path and
the replay command; and also *undecided* (a budget ran out, random runs
missed the mutant), *vacuous* (a cover never reached) and *unproved* (a
counterexample to induction), each with its reason. Why fail rather than
xfail or skip: a CI job that runs a model wants to know it was checked; a
check that said nothing is a job not done, as ``kubemc check`` says with a
non-zero exit code. The report names the verdict first, so an undecided run
never reads like a bug.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from kubemc.checker import api
from kubemc.checker.check_options import APPLIES
from kubemc.checker.errors import BadInput, KubemcError
from kubemc.checker.itf import writable_directory
from kubemc.checker.run import parse_bound

#: the figures of ``kubemc check``'s rows an item records in the JUnit report
FIGURES = ("distinct_states", "transitions", "examples")

MARKER = ("kubemc(component, model, engine, mutant): a model of kubemc checked by "
          "`pytest --kubemc` (select with -m \"kubemc(engine='explore')\")")


@attrs.frozen
class Options:
    """What the command line asked for, checked before collection."""

    cases: tuple
    bounds: dict
    trace_dir: Path
    invocation_dir: Path
    max_states: int | None = None
    profile: str | None = None
    seed: int | None = None


class ModelItems:
    """The plugin object registered for one ``--kubemc`` session."""

    def __init__(self, options: Options):
        self.options = options

    @classmethod
    def from_config(cls, config: pytest.Config) -> ModelItems:
        try:
            options = _options(config)
        except KubemcError as exc:
            raise pytest.UsageError(f"--kubemc: {' '.join(str(exc).splitlines())}") from None
        config.addinivalue_line("markers", MARKER)
        return cls(options)

    def pytest_report_header(self, config: pytest.Config) -> str:
        cases = self.options.cases
        comps = sorted({c.component for c in cases})
        return (f"kubemc: {len(cases)} model check{'s' * (len(cases) != 1)} of "
                f"{', '.join(comps)}; traces to "
                f"{_shown(self.options.trace_dir, self.options.invocation_dir)}")

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, session: pytest.Session, config, items) -> None:
        root = KubemcCollector.from_parent(session, name="kubemc", nodeid="kubemc")
        parents: dict[str, pytest.Collector] = {}
        made = []
        for case in self.options.cases:
            parent = parents.get(case.component)
            if parent is None:
                parent = parents[case.component] = ComponentCollector.from_parent(
                    root, name=case.component)
            name = f"{case.model}[{case.engine}" + (f"-{case.mutant}]" if case.mutant else "]")
            made.append(ModelItem.from_parent(parent, name=name, case=case,
                                              options=self.options))
        # reported as collected, as pytest reports what its collectors find
        # ("collected N items", --collect-only); then -k, -m and the others
        # see them in ``items``
        session.ihook.pytest_collectreport(report=pytest.CollectReport(
            root.nodeid, "passed", None, made))
        items.extend(made)


class KubemcCollector(pytest.Collector):
    """The ``kubemc`` node every model item hangs under (never collected
    from a file: the items are made by :class:`ModelItems`)."""

    def collect(self):
        return []


class ComponentCollector(KubemcCollector):
    """One component's node: ``-k store`` selects its models."""


class ModelFailed(Exception):
    """A model check that did not hold; carries the report's text."""

    def __init__(self, summary: str, text: str):
        super().__init__(summary)
        self.summary, self.text = summary, text


class ModelItem(pytest.Item):
    """One (component, model, engine): runs ``checker.api.check`` and fails
    unless every property holds (module docstring: why undecided fails)."""

    def __init__(self, *, case: api.Case, options: Options, **kwargs):
        super().__init__(**kwargs)
        self.case, self.options = case, options
        self.properties = api.properties(case.component, case.model)
        if case.mutant:
            self.properties = [api.mutants(case.component, case.model)[case.mutant]]
        self.add_marker(pytest.mark.kubemc(component=case.component, model=case.model,
                                           engine=case.engine, mutant=case.mutant))
        self.extra_keyword_matches.update(self.properties)
        self.user_properties.append(("kubemc.properties", ",".join(self.properties)))

    def runtest(self) -> None:
        o, case = self.options, self.case
        verdict = api.check(case.component, case.model, engine=case.engine,
                            mutant=case.mutant,
                            bounds=o.bounds if case.engine != "z3" else None,
                            trace_dir=o.trace_dir,
                            max_states=o.max_states if case.engine == "explore" else None,
                            profile=o.profile or "ci", seed=o.seed)
        self.user_properties.append(("kubemc.verdict", verdict.verdict))
        for key in FIGURES:  # what the run covered, for a CI dashboard
            figures = [r.figures[key] for r in verdict.rows if key in r.figures]
            if figures:
                self.user_properties.append((f"kubemc.{key}", str(sum(figures))))
        if verdict.trace_path is not None:
            self.user_properties.append(("kubemc.trace",
                                         _shown(verdict.trace_path, o.invocation_dir)))
        if not verdict.holds:
            summary = f"{verdict.verdict.upper()} {verdict.prop or ''}".rstrip()
            if verdict.trace_path is not None:
                summary += f" (trace {_shown(verdict.trace_path, o.invocation_dir)})"
            elif verdict.detail:
                summary += f": {verdict.detail}"
            raise ModelFailed(summary, verdict.explain(relative_to=o.invocation_dir))

    def repr_failure(self, excinfo, style=None):
        exc = excinfo.value
        if isinstance(exc, ModelFailed):
            return _report(exc.text, exc.summary)
        if isinstance(exc, KubemcError):  # bad input met while running: one line
            return f"kubemc: {' '.join(str(exc).splitlines())}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        c = self.case
        return self.path, None, (f"kubemc check {c.component} --engine {c.engine}"
                                 + (f" --mutant {c.mutant}" if c.mutant else "")
                                 + f" ({c.model})")


def _report(text: str, summary: str):
    """The failure as pytest's own exception report, without a Python
    traceback: the body is ``text``, and ``summary`` is the one line that
    ``-ra`` and JUnit's ``message`` attribute show. pytest has no public
    constructor for it; should its private classes move, the whole text is
    the report (still correct, only the one-line summary is lost)."""
    try:
        from _pytest._code.code import (ReprExceptionInfo, ReprFileLocation,
                                        ReprTracebackNative)
    except ImportError:  # pragma: no cover - a pytest that moved them
        return text
    return ReprExceptionInfo(reprtraceback=ReprTracebackNative([text + "\n"]),
                             reprcrash=ReprFileLocation("kubemc", 0, summary))


def _shown(path: Path, base: Path) -> str:
    """A path as a reader finds it: relative to where pytest was started."""
    try:
        return str(Path(path).resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def _options(config: pytest.Config) -> Options:
    get = config.getoption
    comps = [n for word in get("kubemc") for n in word.split(",") if n]
    here = Path(config.invocation_params.dir)
    for name in comps:
        if name not in api.components() and (here / name).exists():
            # `pytest --kubemc store tests/`: --kubemc took the path too
            raise BadInput(f"{name!r} is a path, not a component: put paths before "
                           "--kubemc, or write --kubemc=store,…")
    engines = get("kubemc_engine") or ["explore"]
    if "all" in engines:
        engines = list(api.ENGINES)
    engines = list(dict.fromkeys(engines))
    given = {"--seed": get("kubemc_seed") is not None,
             "--profile": get("kubemc_profile") is not None,
             "--max-states": get("kubemc_max_states") is not None,
             "--bound": bool(get("kubemc_bound"))}
    for option, used in given.items():
        if used and not APPLIES[option] & set(engines):
            raise BadInput(f"--kubemc-{option[2:]} applies to --kubemc-engine "
                           f"{' or '.join(sorted(APPLIES[option] & set(api.ENGINES)))}, not "
                           f"{', '.join(engines)}")
    max_states = get("kubemc_max_states")
    if max_states is not None and max_states < 1:
        raise BadInput(f"--kubemc-max-states {max_states} is not a positive count")
    bounds = dict(parse_bound(b) for b in get("kubemc_bound"))
    try:
        trace_dir = writable_directory(here / get("kubemc_trace_dir"))
    except BadInput as exc:
        raise BadInput(f"--kubemc-trace-dir {exc}") from None
    cases = api.cases(comps, engines=engines, mutant=get("kubemc_mutant"), bounds=bounds)
    return Options(tuple(cases), bounds, trace_dir, here, max_states,
                   get("kubemc_profile"), get("kubemc_seed"))

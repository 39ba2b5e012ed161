"""``kubemc swarm``: many small, differently configured random-walk runs in
parallel instead of one large one (Holzmann, Joshi, Groce, "Swarm
Verification Techniques", IEEE TSE 37(6), 2011).

Why: one long run with one configuration keeps making the same choices —
the same depth, the same bounds — and so keeps missing what those choices
make rare. Runs that differ in seed, walk depth and bounds (a smaller bound
reaches its corner sooner, a larger one reaches states the catalog's never
holds) cover more between them, and each is cheap. Every run reports its
coverage — the actions it took at least once, the covers it reached, the
properties whose premise it reached — so the summary can say what *no* run
exercised, which is where to look next.

How a run is drawn (``plan``): run 1 of every model keeps the catalog's
bounds and the default depth, as an anchor; every other run gets its own
seed, a depth among ``DEPTHS``, and each whole-number bound redrawn between
half and twice its catalog value, within the model's ceiling
(``checker.bounds``) — bounds the model refuses are drawn again. A run is a
``kubemc check --engine simulate`` of one model (``checker.simulate_run``),
so its trace and the command in it are that engine's, and the command
repeats the run alone.

Processes: ``multiprocessing`` workers forked at the start; a worker gets a
plan (names and numbers) and rebuilds its machine from the catalog, so no
machine is ever pickled. Workers ignore Ctrl-C and die with their parent
(``PR_SET_PDEATHSIG``); the parent terminates and joins them on success, a
violation, Ctrl-C and SIGTERM alike.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from kubemc.checker import simulate
from kubemc.checker.errors import BadInput
from kubemc.checker.result import HOLDS, UNDECIDED, VIOLATED, Result

#: walk depths a run may draw (the default depth among them)
DEPTHS = (25, 50, simulate.DEFAULT_DEPTH, 200, 400)
#: walks per run when the swarm has no time budget
RUN_WALKS = 200
#: runs per model when ``--runs`` is not given
RUNS_PER_MODEL = 2
#: attempts at drawing bounds the model accepts before keeping the catalog's
DRAWS = 5


@attrs.frozen(slots=True)
class Plan:
    """One run: everything a worker needs to rebuild and run it."""

    index: int
    component: str
    model: str
    mutant: str | None
    seed: int
    depth: int
    walks: int | None
    seconds: float | None
    #: the bounds given to the model (catalog bounds, some redrawn)
    bounds: tuple  # of (name, value)
    #: the names of the bounds redrawn away from the catalog's value
    changed: tuple = ()


@attrs.frozen
class ModelTotal:
    """What all runs of one model covered together."""

    component: str
    model: str
    runs: int
    steps: int
    actions_never_taken: tuple
    covers_never_reached: tuple
    premises_never_reached: tuple
    violations: tuple  # of (run index, property, trace)
    verdict: str
    detail: str


@attrs.frozen
class SwarmOutcome:
    seed: int
    jobs: int
    seconds: float
    plans: tuple
    results: tuple  # of Result, in plan order
    totals: tuple   # of ModelTotal


def jobs_default() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def base_bounds(model, mutant: str | None) -> dict:
    """The bounds random walks use by default: the hypothesis bounds, as
    ``kubemc check --engine simulate`` builds them."""
    bounds = dict(model.bounds)
    if mutant is not None:
        bounds.update(model.mutant_bounds.get(mutant, {}))
    bounds.update(model.hypothesis_bounds)
    return bounds


def switchable(comp) -> frozenset:
    """The bounds some model of ``comp`` sets to 0 in the catalog: budgets
    (crashes, deletions, write failures) that may be switched off. Only
    these may be drawn as 0 — omitting a feature from some runs is what
    swarm testing gains most from (Groce et al., ISSTA 2012), while a
    count of servers or nodes at 0 is no model at all."""
    return frozenset(k for m in comp.models
                     for source in (m.bounds, m.hypothesis_bounds, *m.mutant_bounds.values())
                     for k, v in source.items() if v == 0 and not isinstance(v, bool))


def draw_bounds(model, mutant: str | None, rng: random.Random,
                zero: frozenset = frozenset()) -> tuple[dict, tuple]:
    """Catalog bounds with each whole-number bound redrawn between half and
    twice its value (0 may become 1; a bound in ``zero`` may become 0),
    within its ceiling; the bounds and the names changed. Bounds the model
    refuses are drawn again."""
    from kubemc.checker.bounds import ceiling

    base = base_bounds(model, mutant)
    reference = model._reference()
    for _ in range(DRAWS):
        drawn = {}
        for key, value in base.items():
            if isinstance(value, bool) or not isinstance(value, int):
                drawn[key] = value
                continue
            top = ceiling(key, reference.get(key, [value]), model.ceilings)
            low = value // 2 if key in zero else max(min(value, 1), value // 2)
            high = min(top, max(2 * value, value + 1))
            drawn[key] = rng.randint(low, max(low, high))
        try:
            drawn = model.check_bounds(drawn)
            model.build(mutant=mutant, **drawn)  # its constructor's own checks
        except (BadInput, ValueError):  # bounds its constructor refuses: draw again
            continue
        return drawn, tuple(sorted(k for k in drawn if drawn[k] != base[k]))
    return base, ()


def plan(pairs: Sequence, runs: int, seed: int, mutant: str | None,
         seconds: float | None, jobs: int) -> list[Plan]:
    """``runs`` plans spread round-robin over the (component, model) pairs;
    the first run of each model is the anchor (catalog bounds, default
    depth). A time budget is the swarm's: each run gets its share."""
    rng = random.Random(seed)
    share = None if seconds is None else seconds * min(jobs, runs) / runs
    walks = RUN_WALKS if seconds is None else None
    out = []
    for i in range(runs):
        comp, model = pairs[i % len(pairs)]
        run_seed = rng.randrange(2 ** 32)
        if i < len(pairs):
            bounds, changed, depth = base_bounds(model, mutant), (), simulate.DEFAULT_DEPTH
        else:
            bounds, changed = draw_bounds(model, mutant, rng, switchable(comp))
            depth = rng.choice(DEPTHS)
        out.append(Plan(i + 1, comp.name, model.name, mutant, run_seed, depth, walks, share,
                        tuple(sorted(bounds.items())), changed))
    return out


def run_plan(plan: Plan, trace_dir: Path) -> Result:
    """One run, in a worker: the machine rebuilt from the catalog by name."""
    from kubemc.checker import run as check_run
    from kubemc.checker.components import component
    from kubemc.checker.simulate_run import run_simulate

    comp = component(plan.component)
    model = next(m for m in comp.models if m.name == plan.model)
    bounds = dict(plan.bounds)
    machine = model.build(mutant=plan.mutant, **bounds)
    command = check_run._command(comp.name, "simulate", plan.mutant, bounds, None, "ci")
    results: list[Result] = []
    with check_run._unwritten_trace(results, comp):
        results.append(run_simulate(comp, model, machine, check_run.targeted(model, plan.mutant),
                                    trace_dir, command, plan.seed,
                                    simulate.Budget(plan.depth, plan.walks, plan.seconds),
                                    describe=check_run._shape))
    (result,) = results
    return result


def _worker_start() -> None:
    """Ctrl-C reaches the whole process group; only the parent acts on it.
    A worker whose parent dies (even by SIGKILL) is sent SIGTERM."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() == 1:  # the parent died before the call
            os._exit(1)


def _worker(args) -> tuple[int, Result]:
    plan, trace_dir = args
    return plan.index, run_plan(plan, trace_dir)


@contextlib.contextmanager
def _sigterm_exits():
    """SIGTERM unwinds the parent like Ctrl-C does (so ``finally`` cleans up),
    ending with the conventional 128 + 15."""
    if multiprocessing.current_process().name != "MainProcess" or \
            not _main_thread():
        yield
        return

    def stop(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: cleanup is not interrupted
        raise SystemExit(128 + signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _signals_held():
    """A second Ctrl-C or SIGTERM while the workers are being stopped would
    abandon them half-stopped: both wait until they are gone."""
    if not _main_thread():
        yield
        return
    held = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in held.items():
            signal.signal(sig, handler)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def swarm(names: Sequence[str], *, runs: int | None = None, jobs: int | None = None,
          seed: int | None = None, seconds: float | None = None, mutant: str | None = None,
          trace_dir: Path = Path("kubemc-traces"),
          progress: Callable[[str], None] | None = None) -> SwarmOutcome:
    """Plan ``runs`` runs of the models of ``names`` and run them on
    ``jobs`` processes; every worker is gone when this returns or raises."""
    from kubemc.checker.run import select

    pairs = select(names, mutant)
    jobs = jobs or jobs_default()
    if runs is None:
        runs = max(RUNS_PER_MODEL * len(pairs), jobs)
    if runs < len(pairs):
        raise BadInput(f"--runs {runs} is fewer than the {len(pairs)} models selected: "
                       f"give at least {len(pairs)}, or name fewer components")
    seed = simulate.fresh_seed() if seed is None else seed
    plans = plan(pairs, runs, seed, mutant, seconds, jobs)
    start = time.perf_counter()
    done: dict[int, Result] = {}
    ctx = multiprocessing.get_context("fork")
    with _sigterm_exits():
        pool = ctx.Pool(min(jobs, runs), initializer=_worker_start)
        try:
            work = [(p, trace_dir) for p in plans]
            for index, result in pool.imap_unordered(_worker, work):
                done[index] = result
                if progress is not None:
                    progress(_progress_line(done, runs, time.perf_counter() - start))
        finally:
            with _signals_held():
                pool.terminate()
                pool.join()
    results = tuple(done[p.index] for p in plans)
    return SwarmOutcome(seed, min(jobs, runs), time.perf_counter() - start, tuple(plans),
                        results, totals(pairs, plans, results))


def _progress_line(done: dict, runs: int, seconds: float) -> str:
    steps = sum(r.figures.get("steps", 0) for r in done.values())
    bad = sum(r.verdict == VIOLATED for r in done.values())
    return (f"swarm: {len(done)}/{runs} runs done  {bad} violated  {steps:,} steps  "
            f"{seconds:.0f} s")


def totals(pairs, plans, results) -> tuple:
    out = []
    for comp, model in pairs:
        mine = [(p, r) for p, r in zip(plans, results, strict=True) if p.model == model.name
                and p.component == comp.name]
        if not mine:
            continue
        mutant = mine[0][0].mutant
        taken, actions, covers_hit, premises = set(), set(), set(), set()
        steps = 0
        violations = []
        for p, r in mine:
            f = r.figures
            taken |= set(f.get("actions_taken", ()))
            actions |= set(f.get("actions_taken", ())) | set(f.get("actions_never_taken", ()))
            covers_hit |= set(f.get("covers_reached", ()))
            premises |= set(f.get("premises_reached", ()))
            steps += f.get("steps", 0)
            if r.verdict == VIOLATED:
                violations.append((p.index, r.prop, r.trace))
        props = [q for q in model.properties
                 if mutant is None or q.name == model.mutants[mutant].violates]
        covers = sorted(q.name for q in props if q.kind == "cover")
        never_covered = tuple(c for c in covers if c not in covers_hit)
        never_premised = tuple(sorted(q.name for q in props if q.name not in premises))
        liveness = sorted(q.name for q in props if q.is_liveness)
        if violations:
            verdict, detail = VIOLATED, f"{len(violations)} of {len(mine)} runs violated"
        elif mutant is not None:
            verdict, detail = UNDECIDED, f"no run of {len(mine)} reached the bug"
        elif never_covered:
            verdict, detail = UNDECIDED, ("covers never reached by any run (not exhaustive: "
                                          f"undecided): {', '.join(never_covered)}")
        elif liveness:
            verdict, detail = UNDECIDED, ("no violation; liveness not decided by random "
                                          f"walks: {', '.join(liveness)}")
        else:
            verdict, detail = HOLDS, f"no violation in {len(mine)} runs"
        out.append(ModelTotal(comp.name, model.name, len(mine), steps,
                              tuple(sorted(actions - taken)), never_covered, never_premised,
                              tuple(violations), verdict, detail))
    return tuple(out)


def exit_code(outcome: SwarmOutcome) -> int:
    """The runs' rows ranked as ``kubemc check`` ranks them (a violation with
    a trace first), with each model's undecided total in place of runs that
    were undecided alone (a cover one run missed and another reached)."""
    from kubemc.checker.verdicts import exit_code as ranked

    rows = [r for r in outcome.results if r.verdict == VIOLATED]
    rows += [Result(t.component, t.model, "simulate", t.verdict, 0.0)
             for t in outcome.totals if t.verdict != VIOLATED]
    return ranked(rows)

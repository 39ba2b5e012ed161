"""Mutation testing of ``model/``: do the properties notice small code changes?

A developer routine, not a ``kubemc`` command (docs/mutation-testing.md).
Each mutant is one small, machine-made change to one model file — a
statement deleted, a comparison or boolean operator swapped, a condition
negated, an integer constant or a constant subscript off by one, a
``return X`` made ``return None`` — checked with ``kubemc check COMPONENT``
as a user would: explore first, then hypothesis (``--profile ci``), then z3
where the component has an encoding. A mutant no engine notices is a gap in
the properties, covers or bounds, or an equivalent mutant; the report lists
every survivor with its diff so a person can judge which.

Why a tool of our own and not mutmut or cosmic-ray: those run a test
command per mutant and know nothing of kubemc's exit codes, which carry the
classification (1 violated, 5 a cover never reached, 70 a crash the checker
names, 4 undecided), nor of the seeded bugs already in the models — a
change inside ``if self.mutant == ...:`` only runs under that seeded bug,
so it is never a mutant worth checking, and this tool does not make it.

Why a private copy: the mutated file must never be seen by anyone else's
run, so the repository's committed HEAD is cloned under a temporary
directory, each mutant is written there, checked, and the original bytes put
back; the copy is removed at the end, on an error and on Ctrl-C. Uncommitted
changes of the working tree are not in the copy (the report names the commit).

Sampling is deterministic: the same commit, ``--sample N`` and ``--seed S``
give the same mutants, so a survivor can be found again and a fix re-checked.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The model files of each component, as packages under ``model/``. Declared
#: rather than derived from the catalog because a model's files are more than
#: its machine's module (the cri runtime's transition function, the
#: scheduler's plugins); a component not named here falls back to the
#: packages of its catalog models' classes (see :func:`component_files`).
#: ``model/kernel.py`` and ``model/channels.py`` are shared by every
#: component and belong to none.
PACKAGES: dict[str, tuple[str, ...]] = {
    "store": ("model/store",),
    "cni": ("model/cni",),
    "proxy": ("model/proxy", "model/network"),
    "apiserver": ("model/apiserver",),
    "informer": ("model/informer",),
    "controllers": ("model/controllers",),
    "scheduler": ("model/scheduler",),
    "cri": ("model/cri",),
    "kubelet": ("model/kubelet",),
    "cluster": ("model/cluster",),
}

#: Files under a component's packages that its catalog models never run:
#: ``usercontroller.py`` is the harness of ``kubemc check-controller`` (a
#: user's controller), not a model of the controllers component, so every
#: mutant of it survives ``kubemc check controllers`` (docs/mutation-results.md).
#: ``model/network/generate.py`` makes the synthetic clusters of ``kubemc
#: bench network``; no catalog model of proxy runs it (six of proxy's first
#: 30 mutants fell there, all equivalent by construction: docs/mutation/proxy.md).
#: ``model/controllers/requests.py`` is the harness's request language, imported
#: by ``usercontroller.py`` alone (docs/mutation/controllers.md), and
#: ``model/controllers/frozen.py`` the hashable JSON values of those two alone
#: (the controllers' second sample drew a mutant of it: equivalent by construction).
EXCLUDED = frozenset({"model/controllers/usercontroller.py", "model/controllers/requests.py",
                      "model/controllers/frozen.py", "model/network/generate.py"})

#: Functions that only render a state or a write for people (trace show, the
#: trace viewer): no property reads them, so their mutants are equivalent by
#: construction (5 of the first run's 17 equivalent survivors).
DISPLAY = re.compile(r"(view|describe|_describe|_\w*_view|_show\w*|__repr__|__str__)")

OPERATORS = ("delete", "compare", "boolop", "negate", "constant", "index", "return")

#: outcome classes, in the order of the report's columns
CLASSES = ("killed", "crashed", "vacuous", "undecided", "survived", "timeout", "error")
#: the classes that count as detected in the kill rate
DETECTED = ("killed", "crashed", "vacuous")

_SWAP = {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.LtE, ast.LtE: ast.Lt,
         ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.In: ast.NotIn, ast.NotIn: ast.In,
         ast.Is: ast.IsNot, ast.IsNot: ast.Is}

#: statements whose deletion (replaced by ``pass``) is a mutant
_DELETABLE = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.Raise, ast.Assert,
              ast.Return, ast.If, ast.For, ast.While, ast.Continue, ast.Break, ast.With)


# -- mutation sites ---------------------------------------------------------------------

@dataclass(frozen=True)
class Site:
    """One mutant: where (a span of the source) and what replaces it."""

    path: str          # relative to the repository, with forward slashes
    operator: str      # one of OPERATORS
    line: int
    col: int
    end_line: int
    end_col: int
    replacement: str   # the new text of the span
    original: str      # the old text of the span

    @property
    def id(self) -> str:
        return f"{self.path}:{self.line}:{self.col}:{self.operator}:{self.replacement}"

    def apply(self, source: str) -> str:
        """``source`` with this site's span replaced."""
        lines = source.splitlines(keepends=True)
        start = _offset(lines, self.line, self.col)
        end = _offset(lines, self.end_line, self.end_col)
        if source[start:end] != self.original:
            raise ValueError(f"{self.id}: the source changed since the site was found")
        return source[:start] + self.replacement + source[end:]

    def diff(self, source: str) -> str:
        return "".join(difflib.unified_diff(
            source.splitlines(keepends=True), self.apply(source).splitlines(keepends=True),
            f"a/{self.path}", f"b/{self.path}", n=1))


def _offset(lines: Sequence[str], line: int, col: int) -> int:
    """The character offset of an ast position (line 1-based, col in UTF-8 bytes)."""
    text = lines[line - 1] if line <= len(lines) else ""
    return sum(len(x) for x in lines[:line - 1]) + len(text.encode()[:col].decode())


def _mentions_mutant(node: ast.AST) -> bool:
    """Whether an expression reads the seeded-bug selector (``mutant`` or
    ``self.mutant``): such an expression is a constant when no seeded bug is
    chosen, and changing it only switches a seeded bug on."""
    return any((isinstance(n, ast.Name) and n.id == "mutant")
               or (isinstance(n, ast.Attribute) and n.attr == "mutant")
               for n in ast.walk(node))


def _selects_mutant(test: ast.expr) -> bool | None:
    """True when ``test`` can only hold under a seeded bug (``mutant == X``,
    ``mutant in (...)``, or an ``and`` with such a term); False when it always
    holds without one (``mutant != X``); None otherwise."""
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and _mentions_mutant(test):
        if isinstance(test.ops[0], (ast.Eq, ast.In, ast.Is)):
            return not (isinstance(test.ops[0], ast.Is) and _is_none(test.comparators[0]))
        if isinstance(test.ops[0], (ast.NotEq, ast.NotIn)):
            return False
        return None
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return True if any(_selects_mutant(v) is True for v in test.values) else None
    return None


def _is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


class _Finder(ast.NodeVisitor):
    """Every mutation site of one module, in a fixed order (source order of
    the ast walk, then operator)."""

    def __init__(self, path: str, source: str):
        self.path, self.source, self.sites = path, source, []
        self._lines = source.splitlines(keepends=True)
        self._mutant_only = 0     # >0 inside a body only a seeded bug runs
        self._in_mutant_expr = 0  # >0 inside a comparison of the selector
        self._functions: list[ast.AST] = []

    # helpers
    def _add(self, node: ast.AST, operator: str, replacement: str) -> None:
        original = ast.get_source_segment(self.source, node)
        if original is None or original == replacement:
            return
        self.sites.append(Site(self.path, operator, node.lineno, node.col_offset,
                               node.end_lineno, node.end_col_offset, replacement, original))

    def _live(self) -> bool:
        return not self._mutant_only and not self._in_mutant_expr

    def _body(self, stmts: list[ast.stmt], mutant_only: bool) -> None:
        self._mutant_only += mutant_only
        for stmt in stmts:
            self.visit(stmt)
        self._mutant_only -= mutant_only

    # statements
    def visit_Module(self, node: ast.Module) -> None:
        for stmt in _without_docstring(node.body):
            self.visit(stmt)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        # decorators and defaults are definitions, not behaviour: only the body
        if DISPLAY.fullmatch(node.name):
            return
        self._functions.append(node)
        for stmt in _without_docstring(node.body):
            self.visit(stmt)
        self._functions.pop()

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for stmt in _without_docstring(node.body):
            if _is_mutant_table(stmt):
                continue
            self.visit(stmt)

    def visit_Import(self, node: ast.AST) -> None:
        return

    visit_ImportFrom = visit_Import

    def visit_If(self, node: ast.If) -> None:
        self._statement(node)
        selects = _selects_mutant(node.test)
        self._test(node.test)
        self._body(node.body, selects is True)
        self._body(node.orelse, selects is False)

    def visit_While(self, node: ast.While) -> None:
        self._statement(node)
        self._test(node.test)
        self._body(node.body, False)
        self._body(node.orelse, False)

    def generic_visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.stmt):
            self._statement(node)
        if isinstance(node, ast.Return) and node.value is not None \
                and not _is_none(node.value) and self._live():
            self._add(node, "return", "return None")
        super().generic_visit(node)

    def _statement(self, node: ast.stmt) -> None:
        if not self._live() or not isinstance(node, _DELETABLE):
            return
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            return  # a string used as a comment
        segment = ast.get_source_segment(self.source, node) or ""
        if isinstance(node, ast.If) and segment.startswith("elif"):
            return  # an elif's span starts at the keyword: no `pass` fits there
        if isinstance(node, ast.If) and not node.orelse and _selects_mutant(node.test) is True:
            return  # `if mutant == X:` alone: deleting it only removes a seeded bug
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and _is_mutant_table(node):
            return
        if isinstance(node, ast.Assign) and self._functions \
                and _first_binding(self._functions[-1], node):
            return  # deleting it only makes a NameError: a crash, not a question
        self._add(node, "delete", "pass")

    def _test(self, test: ast.expr) -> None:
        """A condition: negated (unless it only reads the selector), then
        visited for its own sites."""
        if self._live() and _selects_mutant(test) is None and not (
                isinstance(test, ast.Compare) and _mentions_mutant(test)):
            text = ast.get_source_segment(self.source, test) or ""
            if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
                new = ast.get_source_segment(self.source, test.operand) or ""
                new = f"({new})" if isinstance(test.operand, (ast.BoolOp, ast.IfExp)) else new
            else:
                new = f"not ({text})" if "\n" in text or isinstance(
                    test, (ast.BoolOp, ast.IfExp, ast.Lambda, ast.NamedExpr)) else f"not {text}"
            if "\n" not in text:
                self._add(test, "negate", new)
        self.visit(test)

    # expressions
    def visit_IfExp(self, node: ast.IfExp) -> None:
        selects = _selects_mutant(node.test)
        self._test(node.test)
        self._mutant_only += selects is True
        self.visit(node.body)
        self._mutant_only -= selects is True
        self._mutant_only += selects is False
        self.visit(node.orelse)
        self._mutant_only -= selects is False

    def visit_comprehension(self, node: ast.comprehension) -> None:
        self.visit(node.target)
        self.visit(node.iter)
        for cond in node.ifs:
            self._test(cond)

    def visit_Compare(self, node: ast.Compare) -> None:
        selector = _mentions_mutant(node)
        if self._live() and not selector:
            for i, op in enumerate(node.ops):
                swapped = ast.Compare(node.left, list(node.ops), node.comparators)
                swapped.ops[i] = _SWAP.get(type(op), type(op))()
                if type(swapped.ops[i]) is not type(op):
                    self._add(node, "compare", self._unparse_inline(swapped, node))
        self._in_mutant_expr += selector
        super().generic_visit(node)
        self._in_mutant_expr -= selector

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        text = ast.get_source_segment(self.source, node) or ""
        if self._live() and "\n" not in text:
            other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
            self._add(node, "boolop", ast.unparse(ast.BoolOp(other, node.values)))
        super().generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        self.visit(node.value)
        index = _int_value(node.slice)
        if index is not None and self._live():
            for delta in (1, -1):
                self._add(node.slice, "index", str(index + delta))
        elif not isinstance(node.slice, ast.Constant):
            self.visit(node.slice)

    def visit_Constant(self, node: ast.Constant) -> None:
        if type(node.value) is int and self._live():
            for delta in (1, -1):
                self._add(node, "constant", str(node.value + delta))

    def _unparse_inline(self, new: ast.expr, old: ast.expr) -> str:
        text = ast.get_source_segment(self.source, old) or ""
        return ast.unparse(new) if "\n" in text else _swap_in_text(text, new, old)


def _swap_in_text(text: str, new: ast.Compare, old: ast.Compare) -> str:
    """The comparison's own text with the one changed operator replaced, so
    the diff shows the operator and nothing else (falls back to unparse)."""
    symbols = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">",
               ast.GtE: ">=", ast.In: "in", ast.NotIn: "not in", ast.Is: "is",
               ast.IsNot: "is not"}
    for i, (a, b) in enumerate(zip(old.ops, new.ops, strict=True)):
        if type(a) is not type(b):
            left_end = old.comparators[i - 1] if i else old.left
            right = old.comparators[i]
            # the operator lies between the end of the left operand and the
            # start of the right one; columns are relative to the node's line
            if left_end.end_lineno == right.lineno == old.lineno:
                base = old.col_offset
                raw = text.encode()
                lo, hi = left_end.end_col_offset - base, right.col_offset - base
                middle = raw[lo:hi].decode()
                # the ast's end column of a parenthesised operand stops inside
                # the parenthesis: keep it, replace only the operator word
                stripped = middle.strip()
                core = stripped.strip("()").strip()
                if core == symbols[type(a)]:
                    at = middle.index(core)
                    middle = middle[:at] + symbols[type(b)] + middle[at + len(core):]
                    return (raw[:lo].decode() + middle + raw[hi:].decode())
            break
    return ast.unparse(new)


def _first_binding(function: ast.AST, node: ast.Assign) -> bool:
    """Whether a name ``node`` assigns is bound there for the first time in
    ``function`` (not a parameter, not assigned on an earlier line)."""
    targets = [n for t in node.targets for n in ast.walk(t)]
    if not all(isinstance(n, (ast.Name, ast.Tuple, ast.List, ast.Starred, ast.Load,
                              ast.Store)) for n in targets):
        return False
    names = {n.id for n in targets if isinstance(n, ast.Name)}
    args = function.args  # type: ignore[attr-defined]
    bound = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
    bound |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
    bound |= {n.id for n in ast.walk(function) if isinstance(n, ast.Name)
              and isinstance(n.ctx, ast.Store) and n.lineno < node.lineno}
    return bool(names - bound)


def _int_value(node: ast.AST) -> int | None:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) \
            and isinstance(node.operand, ast.Constant) and type(node.operand.value) is int:
        return -node.operand.value
    return None


def _without_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        return body[1:]
    return body


def _is_mutant_table(stmt: ast.stmt) -> bool:
    """``mutants = {...}``: the seeded bugs' descriptions, not behaviour."""
    targets = stmt.targets if isinstance(stmt, ast.Assign) else \
        [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
    return any(isinstance(t, ast.Name) and t.id == "mutants" for t in targets)


def sites_of(path: str, source: str, operators: Sequence[str] = OPERATORS) -> list[Site]:
    """Every mutation site of one module's source, in a fixed order."""
    finder = _Finder(path, source)
    finder.visit(ast.parse(source))
    seen: set[str] = set()
    out = []
    for site in finder.sites:
        if site.operator in operators and site.id not in seen:
            seen.add(site.id)
            out.append(site)
    return out


# -- which files, which mutants ---------------------------------------------------------

def component_files(name: str, root: Path = ROOT) -> list[str]:
    """The model files of a component, relative to ``root``, sorted."""
    packages = PACKAGES.get(name)
    if packages is None:
        packages = _catalog_packages(name)
    files: list[str] = []
    for package in packages:
        base = root / package
        found = sorted(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]
        files += [p.relative_to(root).as_posix() for p in found
                  if p.exists() and "__pycache__" not in p.parts
                  and p.relative_to(root).as_posix() not in EXCLUDED]
    return sorted(set(files))


def _catalog_packages(name: str) -> tuple[str, ...]:
    from kubemc.checker.components import component

    modules = {m.build.__module__ for m in component(name).models}
    return tuple(sorted(m.removeprefix("kubemc.").rsplit(".", 1)[0].replace(".", "/")
                        for m in modules if m.startswith("kubemc.model.")))


def component_sites(name: str, root: Path = ROOT,
                    operators: Sequence[str] = OPERATORS) -> list[Site]:
    sites: list[Site] = []
    for path in component_files(name, root):
        sites += sites_of(path, (root / path).read_text(), operators)
    return sites


def sample(sites: Sequence[Site], n: int | None, seed: int, component: str) -> list[Site]:
    """``n`` sites drawn with ``seed`` (all of them when ``n`` is None), in
    source order. The component's name is part of the seed so that two
    components sampled with one seed do not draw the same positions."""
    if n is None or n >= len(sites):
        return list(sites)
    rng = random.Random(f"{seed}:{component}")
    picked = sorted(rng.sample(range(len(sites)), n))
    return [sites[i] for i in picked]


# -- re-checking an earlier report's survivors --------------------------------------------

#: the outcomes --recheck checks again: everything that was not detected
UNDETECTED = ("survived", "undecided", "timeout", "error")


def _read_report(path: Path) -> dict:
    try:
        report = json.loads(path.read_text())
        report["mutants"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadInput(f"{path} is not a report written by --json ({exc})") from None
    return report


def _report_meta(path: Path) -> dict:
    """The run settings an earlier report recorded (empty for a report that
    recorded none)."""
    meta = _read_report(path).get("meta")
    return meta if isinstance(meta, dict) else {}


def _report_components(path: Path) -> list[str]:
    return sorted({m["component"] for m in _read_report(path)["mutants"]})


def _hunk_body(diff: str) -> list[str]:
    """A diff's changed and context lines, without the headers and line
    numbers that move when code above the mutant changes."""
    return [line for line in diff.splitlines()
            if not line.startswith(("---", "+++", "@@"))]


def relocate(path: Path, root: Path) -> tuple[dict[str, list[Site]], list[dict]]:
    """The undetected mutants of the report at ``path``, found again in the
    current code: the site with the same operator, original and replacement
    whose diff has the same lines (so an edit elsewhere in the file, which
    only moves it, does not lose it). A mutant whose code is gone is
    returned apart, for a person to judge; it is never silently dropped."""
    chosen: dict[str, list[Site]] = {}
    gone: list[dict] = []
    for m in _read_report(path)["mutants"]:
        if m["outcome"] not in UNDETECTED:
            continue
        old = m["site"]
        file = root / old["path"]
        source = file.read_text() if file.exists() else ""
        same = [s for s in (sites_of(old["path"], source, (old["operator"],)) if source else [])
                if (s.original, s.replacement) == (old["original"], old["replacement"])]
        exact = [s for s in same if _hunk_body(s.diff(source)) == _hunk_body(m["diff"])]
        pick = exact or (same if len(same) == 1 else [])
        if pick:
            best = min(pick, key=lambda s: abs(s.line - old["line"]))
            chosen.setdefault(m["component"], []).append(best)
        else:
            gone.append(old)
    return chosen, gone


# -- running one mutant -----------------------------------------------------------------

@dataclass
class MutantOutcome:
    site: dict
    component: str
    outcome: str                       # one of CLASSES
    engine: str | None                 # the engine that decided it
    exits: dict[str, int | None] = field(default_factory=dict)
    seconds: float = 0.0
    message: str = ""                  # what the deciding run found (see Finding)
    diff: str = ""
    #: the properties (``model/property``) the deciding run reported violated,
    #: vacuous or undecided, read from ``kubemc check --json``
    properties: list[str] = field(default_factory=list)


def classify(code: int | None) -> str:
    """The class of one engine's exit code (None: the time limit hit)."""
    return {None: "timeout", 0: "survived", 1: "killed", 4: "undecided", 5: "vacuous",
            70: "crashed"}.get(code, "error")


#: run at the start of every check in the copy (as ``sitecustomize``)
CUT_EDITABLE_HOOKS = """import sys
sys.meta_path[:] = [f for f in sys.meta_path
                    if not getattr(f, "__module__", "").startswith("__editable__")]
sys.path_hooks[:] = [h for h in sys.path_hooks
                     if not getattr(h, "__module__", "").startswith("__editable__")]
sys.path[:] = [p for p in sys.path if not p.startswith("__editable__")]
"""


class Workspace:
    """A private clone of the repository's HEAD under a temporary
    directory, removed by :meth:`close` (also on Ctrl-C: use as a context
    manager)."""

    def __init__(self, repo: Path):
        self.repo = repo
        self.tmp = Path(tempfile.mkdtemp(prefix="kubemc-mutate-"))
        self.copy = self.tmp / "repo"
        self.child: subprocess.Popen | None = None
        try:  # a signal during the clone must not leave the directory behind
            subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(repo), str(self.copy)],
                           check=True, capture_output=True)
            (self.tmp / "tmp").mkdir()
            # The code imports itself as kubemc.model, kubemc.checker, ...
            # (setup.py maps the folders): a kubemc/ of links to the copy's
            # folders, first on PYTHONPATH, makes those names the copy's
            # code rather than the installed working tree's.
            self.names = self.tmp / "names"
            (self.names / "kubemc").mkdir(parents=True)
            for folder in ("model", "properties", "checker", "conformance"):
                (self.names / "kubemc" / folder).symlink_to(self.copy / folder)
            # ... and with the editable install's import hooks removed, so a
            # module HEAD lacks (an entry point of newer, uncommitted code) is
            # an ImportError in the copy, never the working tree's version.
            (self.names / "sitecustomize.py").write_text(CUT_EDITABLE_HOOKS)
            self.commit = subprocess.run(["git", "-C", str(self.copy), "rev-parse", "HEAD"],
                                         check=True, capture_output=True,
                                         text=True).stdout.strip()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def kill(self) -> None:
        if self.child is not None and self.child.poll() is None:
            try:
                os.killpg(self.child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.child.wait()
        self.child = None

    def check(self, component: str, engine: str, timeout: float) -> tuple[int | None, Finding]:
        """``kubemc check COMPONENT --engine ENGINE --json`` in the copy: its
        exit code (None when ``timeout`` seconds passed) and what it found."""
        args = [sys.executable, "-m", "kubemc.checker.cli", "check", component, "--engine", engine,
                "--quiet", "--json", "--trace-dir", str(self.tmp / "traces")]
        if engine == "hypothesis":
            args += ["--profile", "ci"]
        env = dict(os.environ, PYTHONPATH=f"{self.names}{os.pathsep}{self.copy}",
                   PYTHONDONTWRITEBYTECODE="1",
                   TMPDIR=str(self.tmp / "tmp"), PYTHONHASHSEED="0")
        self.child = subprocess.Popen(args, cwd=self.copy, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True,
                                      start_new_session=True)
        try:
            out, err = self.child.communicate(timeout=max(timeout, 1))
            code: int | None = self.child.returncode
        except subprocess.TimeoutExpired:
            self.kill()
            return None, Finding(engine, "time limit")
        self.child = None
        return code, finding(engine, code, out, err)


@dataclass(frozen=True)
class Finding:
    """What one check reported, for the report: the properties it found
    violated (or never reached, or left undecided) and a one-line message."""

    engine: str
    message: str
    properties: tuple[str, ...] = ()


#: the verdict of ``kubemc check --json``'s rows that each exit code stands for
_VERDICTS = {1: ("violated",), 5: ("vacuous",), 4: ("undecided", "unproved")}


def finding(engine: str, code: int | None, out: str, err: str) -> Finding:
    """Read one check's outcome from ``kubemc check --json`` (a list of rows
    with ``model``, ``verdict``, ``prop``, ``detail``: checker/result.py),
    not from its human summary, whose wording may change. A crash (70) or
    bad input prints no rows: its one stderr line is the message. Output
    that is no JSON (an interpreter dying before the CLI starts) falls back
    to the last lines of both streams, so nothing is hidden."""
    try:
        rows = json.loads(out) if out.strip() else None
    except ValueError:
        rows = None
    wanted = _VERDICTS.get(code) if code is not None else None
    if isinstance(rows, list) and wanted:
        hits = [r for r in rows if isinstance(r, dict) and r.get("verdict") in wanted]
        if hits:
            names = tuple(dict.fromkeys(f"{r.get('model')}/{r.get('prop') or '-'}"
                                        for r in hits))
            first = hits[0]
            said = {"violated": "violates", "vacuous": "never reaches",
                    "undecided": "left undecided", "unproved": "did not prove"}[first["verdict"]]
            message = f"{engine}: {first.get('model')} {said} {first.get('prop') or '-'}"
            if first.get("detail"):
                message += f" ({' '.join(str(first['detail']).split())})"
            if len(names) > 1:
                message += f"; also {', '.join(names[1:])}"
            return Finding(engine, message, names)
    lines = (err.strip().splitlines() if rows is not None or code == 70 else
             (out + "\n" + err).strip().splitlines())
    said = " / ".join(lines[-3:]) if lines else f"exit {code}"
    return Finding(engine, f"{engine}: {said}")


def engines_of(component: str, wanted: Sequence[str]) -> list[str]:
    """The engines to run, in order; z3 only where the component has an
    encoding."""
    from kubemc.checker.components import component as lookup

    has_z3 = bool(lookup(component).symbolic)
    return [e for e in wanted if e != "z3" or has_z3]


def run_mutant(ws: Workspace, component: str, site: Site, engines: Sequence[str],
               timeout: float) -> MutantOutcome:
    """Apply ``site`` in the copy, check, put the file back. The first engine
    whose verdict is not "holds" or "undecided" decides; a mutant every
    engine says holds survived."""
    target = ws.copy / site.path
    original = target.read_text()
    result = MutantOutcome(asdict(site), component, "survived", None, diff=site.diff(original))
    started = time.monotonic()
    undecided = None
    try:
        target.write_text(site.apply(original))
        for engine in engines:
            left = timeout - (time.monotonic() - started)
            code, found = ws.check(component, engine, left) if left > 0 else \
                (None, Finding(engine, "time limit"))
            result.exits[engine] = code
            verdict = classify(code)
            if verdict == "survived":
                continue
            if verdict == "undecided":
                undecided = undecided or found
                continue
            result.outcome = verdict
            _record(result, found)
            break
        else:
            if undecided:
                result.outcome = "undecided"
                _record(result, undecided)
    finally:
        target.write_text(original)
    result.seconds = round(time.monotonic() - started, 1)
    return result


def _record(result: MutantOutcome, found: Finding) -> None:
    result.engine, result.message = found.engine, found.message
    result.properties = list(found.properties)


# -- reports ----------------------------------------------------------------------------

def table(outcomes: Sequence[MutantOutcome], components: Sequence[str]) -> list[dict]:
    """One row per component: how many mutants fell in each class, and the
    kill rate (detected / tried, timeouts and errors left out of both)."""
    rows = []
    for name in components:
        mine = [o for o in outcomes if o.component == name]
        row: dict = {"component": name, "tried": len(mine)}
        for cls in CLASSES:
            row[cls] = sum(o.outcome == cls for o in mine)
        judged = row["tried"] - row["timeout"] - row["error"]
        detected = sum(row[c] for c in DETECTED)
        row["kill_rate"] = round(100 * detected / judged, 1) if judged else None
        rows.append(row)
    return rows


def markdown(outcomes: Sequence[MutantOutcome], components: Sequence[str], meta: dict) -> str:
    rows = table(outcomes, components)
    out = [f"Commit `{meta['commit']}`, seed {meta['seed']}, sample {meta['sample']}, "
           f"engines {', '.join(meta['engines'])}, time limit {meta['timeout']} s per "
           f"mutant, {meta['seconds']} s in all.", "",
           "| mutated component | tried | killed | crashed | vacuous | undecided | survived "
           "| timeout | error | kill rate |", "|---" * 10 + "|"]
    for r in rows:
        rate = "–" if r["kill_rate"] is None else f"{r['kill_rate']} %"
        out.append(f"| {r['component']} | {r['tried']} | " + " | ".join(
            str(r[c]) for c in CLASSES) + f" | {rate} |")
    out += ["", "### Every mutant", "",
            "| mutated component | mutant | outcome | engine | property | s |",
            "|---|---|---|---|---|---|"]
    for o in outcomes:
        s = o.site
        found = ", ".join(f"`{p}`" for p in o.properties) or "–"
        out.append(f"| {o.component} | `{s['path']}:{s['line']}` {s['operator']}: "
                   f"`{_cell(s['original'])}` → `{_cell(s['replacement'])}` | {o.outcome} "
                   f"| {o.engine or '–'} | {found} | {o.seconds} |")
    rest = [o for o in outcomes if o.outcome not in DETECTED]
    if rest:
        out += ["", "### Not detected", ""]
        for o in rest:
            s = o.site
            out += [f"**{o.component}** `{s['path']}:{s['line']}` ({s['operator']}, "
                    f"{o.outcome}; exits {o.exits})", "", "```diff", o.diff.rstrip(), "```", ""]
    return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else text
    first = first if len(first) <= 60 else first[:59] + "…"
    return first.replace("|", "\\|").replace("`", "'")


# -- command line -----------------------------------------------------------------------

def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="tools/mutate.py", description=__doc__.split("\n")[0])
    p.add_argument("components", nargs="*", metavar="COMPONENT")
    p.add_argument("--sample", type=int, metavar="N", help="mutants per component "
                   "(default: all of them)")
    p.add_argument("--seed", type=int, help="the sampling seed (default 0)")
    p.add_argument("--operators", default=",".join(OPERATORS),
                   help="comma-separated, from: " + ", ".join(OPERATORS))
    p.add_argument("--engines", help="in order; z3 is skipped where a component has no "
                   "encoding (default explore,hypothesis,z3)")
    p.add_argument("--timeout", type=float, metavar="S",
                   help="seconds per mutant, all engines together (default 600)")
    p.add_argument("--baseline", action=argparse.BooleanOptionalAction,
                   help="check the unmutated copy with explore first (default; "
                        "--no-baseline skips it)")
    p.add_argument("--list", action="store_true",
                   help="print the sampled mutants and their diffs; check nothing")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--out", metavar="FILE.md", help="also write the Markdown report here")
    p.add_argument("--recheck", type=Path, metavar="REPORT.json",
                   help="check again, against the current HEAD, the mutants an earlier "
                        "--json report did not detect (survived, undecided, timeout, error), "
                        "with the report's --timeout, --engines and baseline unless given "
                        "here; no COMPONENT or --sample")
    p.add_argument("--repo", type=Path, default=ROOT, help=argparse.SUPPRESS)
    return p.parse_args(argv)


class BadInput(Exception):
    """A wrong argument: one line, exit 2."""


def validate(args: argparse.Namespace) -> None:
    if args.recheck is not None:
        if args.components or args.sample is not None:
            raise BadInput("--recheck takes the mutants and components from its report: "
                           "give no COMPONENT and no --sample")
        args.components = _report_components(args.recheck)
    elif not args.components:
        raise BadInput("name at least one COMPONENT (or --recheck REPORT.json)")
    _settle_settings(args)
    if args.sample is not None and args.sample < 1:
        raise BadInput(f"--sample must be at least 1, not {args.sample}")
    if args.timeout <= 0:
        raise BadInput(f"--timeout must be positive, not {args.timeout:g}")
    ops = [o for o in args.operators.split(",") if o]
    bad = [o for o in ops if o not in OPERATORS]
    if bad or not ops:
        raise BadInput(f"unknown operator {', '.join(bad) or '(none)'}; "
                       f"known: {', '.join(OPERATORS)}")
    args.operators = ops
    engines = [e for e in args.engines.split(",") if e]
    bad = [e for e in engines if e not in ("explore", "hypothesis", "z3")]
    if bad or not engines:
        raise BadInput(f"unknown engine {', '.join(bad) or '(none)'}; "
                       "known: explore, hypothesis, z3")
    args.engines = engines
    for name in args.components:
        if name not in PACKAGES:
            _known_component(name)
        if not component_files(name, args.repo):
            raise BadInput(f"component {name!r} has no model files under model/")


#: the run settings a report's ``meta`` records and ``--recheck`` reuses,
#: with the default of each when neither the command line nor the report says
SETTINGS = {"timeout": 600.0, "engines": "explore,hypothesis,z3", "baseline": True, "seed": 0}


def _settle_settings(args: argparse.Namespace) -> None:
    """Fill each setting not given on the command line: with ``--recheck``
    from the report's ``meta`` (a survivor that timed out at 900 s must not
    be re-checked at 600 s and called a timeout again), else the default.
    ``args.from_report`` names the ones the report supplied."""
    meta = _report_meta(args.recheck) if args.recheck is not None else {}
    args.from_report = []
    for name, default in SETTINGS.items():
        if getattr(args, name) is not None:
            continue
        value = meta.get(name)
        if value is None:
            setattr(args, name, default)
            continue
        if name == "engines":
            value = ",".join(value) if isinstance(value, list) else value
        ok = {"timeout": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
              "engines": lambda v: isinstance(v, str),
              "baseline": lambda v: isinstance(v, bool),
              "seed": lambda v: isinstance(v, int) and not isinstance(v, bool)}[name](value)
        if not ok:
            raise BadInput(f"{args.recheck}: its meta.{name} is {value!r}, not a "
                           f"{name} this tool wrote; give --{name} on the command line")
        setattr(args, name, float(value) if name == "timeout" else value)
        args.from_report.append(name)


def _known_component(name: str) -> None:
    """A component not declared in PACKAGES must be one the catalog finds
    (an installed one). The catalog is imported only then: the working tree
    may be mid-edit, and the run itself uses a clean copy of HEAD."""
    from kubemc.checker.components import discover

    try:
        known = sorted(discover())
    except Exception as exc:  # a broken working tree: say so, in one line
        raise BadInput(f"unknown component {name!r}, and the catalog does not load to say "
                       f"which exist ({type(exc).__name__}: {exc}); known here: "
                       f"{', '.join(PACKAGES)}") from None
    if name not in known:
        raise BadInput(f"unknown component {name!r} (known: {', '.join(known)})")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    sys.path.insert(0, str(args.repo))
    try:
        validate(args)
    except BadInput as exc:
        print(f"mutate: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    outcomes: list[MutantOutcome] = []
    commit, interrupted = "", False
    # both signals explicitly: a job started in the background inherits
    # SIGINT ignored, and Python then raises no KeyboardInterrupt
    previous = {sig: signal.signal(sig, _interrupted) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with Workspace(args.repo) as ws:
            commit = ws.commit
            # Sites come from the copy of HEAD that is checked, never from the
            # working tree: an uncommitted edit there would move or change
            # them ("the source changed since the site was found").
            chosen = _choose(args, ws.copy)
            if args.list:
                for name, sites in chosen.items():
                    for site in sites:
                        print(f"## {name} {site.id}\n" +
                              site.diff((ws.copy / site.path).read_text()))
                return 0
            for name, sites in chosen.items():
                _check_component(ws, name, sites, args, outcomes)
    except KeyboardInterrupt:
        # the copy is gone (Workspace.__exit__); report what was checked
        print("mutate: interrupted; the temporary copy is removed", file=sys.stderr)
        interrupted = True
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    meta = {"commit": commit, "seed": args.seed, "sample": args.sample,
            "recheck": str(args.recheck) if args.recheck else None,
            "engines": args.engines, "timeout": args.timeout, "baseline": args.baseline,
            "from_report": args.from_report,
            "seconds": round(time.monotonic() - started), "interrupted": interrupted}
    report = markdown(outcomes, args.components, meta)
    if args.out:
        Path(args.out).write_text(report)
    if args.json:
        print(json.dumps({"meta": meta, "table": table(outcomes, args.components),
                          "mutants": [asdict(o) for o in outcomes]}, indent=1))
    else:
        print(report)
    return 130 if interrupted else 0


def _choose(args: argparse.Namespace, root: Path) -> dict[str, list[Site]]:
    """The mutants to check, found in the files under ``root``."""
    if args.recheck is None:
        return {c: sample(component_sites(c, root, args.operators), args.sample, args.seed, c)
                for c in args.components}
    chosen, gone = relocate(args.recheck, root)
    for old in gone:
        print(f"mutate: {old['path']}:{old['line']} {old['operator']} "
              f"{old['original']!r} -> {old['replacement']!r} is no longer in the code "
              "(the code around it changed): judge it by hand", file=sys.stderr)
    return chosen


def _check_component(ws: Workspace, name: str, sites: Sequence[Site],
                     args: argparse.Namespace, outcomes: list[MutantOutcome]) -> None:
    """The baseline (the unmutated copy must hold, or every mutant would
    look killed), then each mutant, with a progress line on stderr."""
    engines = engines_of(name, args.engines)
    if args.baseline:
        code, found = ws.check(name, "explore", args.timeout)
        if code != 0:
            print(f"mutate: {name} does not hold unmutated (explore exit {code}): "
                  f"{found.message}; skipped", file=sys.stderr)
            return
    for i, site in enumerate(sites, 1):
        o = run_mutant(ws, name, site, engines, args.timeout)
        outcomes.append(o)
        print(f"[{name} {i}/{len(sites)}] {o.outcome:9} {o.engine or '-':10} "
              f"{o.seconds:6.1f}s {site.path}:{site.line} {site.operator}"
              + (f" — {o.message}" if o.message else ""), file=sys.stderr, flush=True)


def _interrupted(signum, frame) -> None:
    raise KeyboardInterrupt



if __name__ == "__main__":
    sys.exit(main())

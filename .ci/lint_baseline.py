#!/usr/bin/env python3
"""ruff and mypy with a baseline that may only shrink (docs/layers.md).

The tree has lint and type errors older than the linters; fixing them all at
once is not the point. The baseline counts them per file and rule (ruff) or
error code (mypy) — counts, not line numbers, so an edit above an old error
does not move it — and a check fails when any file's count of any rule grows
above its baseline. New code is held to the rules; old code may only improve.

    python3 .ci/lint_baseline.py            check; exit 1 and print the errors
                                            of every count that grew
    python3 .ci/lint_baseline.py --update   rewrite the baselines from the tree

Run ``--update`` after fixing old errors, to lower the counts for good (the
check says when a count has shrunk), or once after a deliberate change to the
rules. tests/test_lint.py runs the check; the configuration of both tools is
in pyproject.toml, and their versions are pinned in its ``test`` extra, since
a new release brings new findings.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
BASELINES = {"ruff": ROOT / ".ci" / "ruff-baseline.txt",
             "mypy": ROOT / ".ci" / "mypy-baseline.txt"}
#: what ruff checks; mypy's files are pyproject.toml's [tool.mypy] files
RUFF_PATHS = ("model", "properties", "checker", "conformance", "tests", "examples", ".ci")
UPDATE = "python3 .ci/lint_baseline.py --update"


class Finding(NamedTuple):
    file: str   # relative to the repository, with forward slashes
    code: str   # ruff's rule (E501) or mypy's error code (arg-type)
    text: str   # the whole message, with its line, for a person to read


class ToolFailed(RuntimeError):
    """A linter that did not run (not installed, a bad configuration): never
    read as "no findings"."""


def _relative(path: str, root: Path) -> str:
    p = Path(path)
    return (p.resolve().relative_to(root.resolve()) if p.is_absolute() else p).as_posix()


def ruff_findings(paths: Iterable[str] = RUFF_PATHS, root: Path = ROOT,
                  config: Path = ROOT / "pyproject.toml") -> list[Finding]:
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--config", str(config),
                           "--output-format", "json", "--no-fix", "--exit-zero", *paths],
                          cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolFailed(f"ruff failed (exit {proc.returncode}): {proc.stderr.strip()}; "
                         "install the test extra: python3 -m pip install -e '.[test]'")
    return [Finding(_relative(f["filename"], root), f["code"] or "syntax",
                    f"{_relative(f['filename'], root)}:{f['location']['row']}:"
                    f"{f['location']['column']}: {f['code']} {f['message']}")
            for f in json.loads(proc.stdout or "[]")]


#: the folders that install as kubemc.<folder> (setup.py)
PACKAGE_FOLDERS = ("model", "properties", "checker", "conformance")


def mypy_findings(paths: Iterable[str] = (), root: Path = ROOT,
                  config: Path = ROOT / "pyproject.toml",
                  cache_dir: Path | None = None) -> list[Finding]:
    """mypy's errors (not its notes) on ``paths``, or on kubemc's packages.
    Its incremental cache (``.mypy_cache``, or ``cache_dir``) makes a second
    run take a second instead of ten; the results are the same.

    Why a temporary directory: the folders install as ``kubemc.model`` and
    so on (setup.py's package-dir mapping), and the code imports them by
    those names, which mypy cannot resolve from the folders themselves. A
    ``kubemc/`` of links to them gives mypy the installed layout; findings
    are reported against the folders again."""
    cache = ["--cache-dir", str(cache_dir or root / ".mypy_cache")]
    with tempfile.TemporaryDirectory(prefix="kubemc-mypy-") as tmp:
        if paths:
            cwd, targets, strip = root, list(paths), ""
        else:
            (Path(tmp) / "kubemc").mkdir()
            for folder in PACKAGE_FOLDERS:
                (Path(tmp) / "kubemc" / folder).symlink_to(root.resolve() / folder)
            cwd, strip = Path(tmp), "kubemc/"
            targets = [a for folder in PACKAGE_FOLDERS for a in ("-p", f"kubemc.{folder}")]
        proc = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(config),
                               "--output", "json", "--no-error-summary", *cache, *targets],
                              cwd=cwd, capture_output=True, text=True)
    if proc.returncode not in (0, 1):  # 2: mypy could not check (a crash, a bad option)
        raise ToolFailed(f"mypy failed (exit {proc.returncode}): "
                         f"{(proc.stderr or proc.stdout).strip()[-2000:]}; install the test "
                         "extra: python3 -m pip install -e '.[test]'")
    out = []
    for line in proc.stdout.splitlines():
        if not line.startswith("{"):
            continue
        e = json.loads(line)
        if e["severity"] != "error":
            continue
        file = e["file"].removeprefix(strip) if strip else _relative(e["file"], root)
        code = e["code"] or "misc"
        out.append(Finding(file, code, f"{file}:{e['line']}: {e['message']}  [{code}]"))
    return out


def counts(findings: Iterable[Finding]) -> Counter:
    return Counter((f.file, f.code) for f in findings)


def read_baseline(path: Path) -> Counter:
    """``FILE CODE COUNT`` per line; ``#`` starts a comment."""
    out: Counter = Counter()
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            file, code, n = line.split()
            out[file, code] = int(n)
    return out


def write_baseline(path: Path, tool: str, current: Counter) -> None:
    lines = [f"# {tool} errors per file and {'rule' if tool == 'ruff' else 'error code'}: "
             "a count may only shrink.",
             f"# Written by `{UPDATE}` (docs/layers.md); do not edit by hand.",
             *(f"{file} {code} {n}" for (file, code), n in sorted(current.items()))]
    path.write_text("\n".join(lines) + "\n")


class Verdict(NamedTuple):
    grown: dict      # (file, code) -> (baseline, now)
    shrunk: dict     # (file, code) -> (baseline, now)

    @property
    def ok(self) -> bool:
        return not self.grown


def compare(baseline: Counter, current: Counter) -> Verdict:
    keys = set(baseline) | set(current)
    return Verdict(
        {k: (baseline[k], current[k]) for k in sorted(keys) if current[k] > baseline[k]},
        {k: (baseline[k], current[k]) for k in sorted(keys) if current[k] < baseline[k]})


def report(tool: str, verdict: Verdict, findings: list[Finding]) -> str:
    """What grew, with every current error of each grown count (the new one
    is among them: without line numbers in the baseline, which one is new is
    the reader's call); then what shrank, and the command that lowers it."""
    lines = []
    for (file, code), (was, now) in verdict.grown.items():
        lines.append(f"{tool}: {file} {code}: {now} error(s), baseline {was}:")
        lines += [f"  {f.text}" for f in findings if (f.file, f.code) == (file, code)]
    if verdict.grown:
        lines.append(f"{tool}: fix the new error(s) above; the baseline may only shrink")
    if verdict.shrunk:
        lines.append(f"{tool}: {len(verdict.shrunk)} count(s) shrank below the baseline "
                     f"(e.g. {' '.join(next(iter(verdict.shrunk)))}): lower it with `{UPDATE}`")
    return "\n".join(lines)


def run_all(cache_dir: Path | None = None) -> dict[str, list[Finding]]:
    return {"ruff": ruff_findings(), "mypy": mypy_findings(cache_dir=cache_dir)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--update", action="store_true",
                        help="rewrite the baselines from the tree as it is")
    args = parser.parse_args(argv)
    try:
        found = run_all()
    except ToolFailed as exc:
        print(f"lint_baseline: {exc}", file=sys.stderr)
        return 3
    failed = False
    for tool, findings in found.items():
        current = counts(findings)
        path = BASELINES[tool]
        if args.update:
            before = read_baseline(path) if path.exists() else Counter()
            write_baseline(path, tool, current)
            print(f"{tool}: {sum(current.values())} error(s) in {len({f for f, _ in current})} "
                  f"file(s) written to {path.relative_to(ROOT)} "
                  f"(was {sum(before.values())})")
            continue
        verdict = compare(read_baseline(path), current)
        text = report(tool, verdict, findings)
        if text:
            print(text)
        failed |= not verdict.ok
        print(f"{tool}: {sum(current.values())} error(s), "
              f"{'over' if not verdict.ok else 'within'} the baseline")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

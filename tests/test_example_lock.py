"""examples/lock, the component built outside kubemc (docs/adding-a-component.md),
checked by this suite as its users would run it: installed next to kubemc.

Why it is installed into a throwaway site directory here rather than into
the environment: once installed, ``lock`` is one of the components of every
``kubemc check`` on the machine, and kubemc's own suite speaks of kubemc's
components. So the test installs the distribution as pip would leave it —
a dist-info whose entry points are those ``examples/lock/pyproject.toml``
declares, and the package on the path — and runs the example's own tests
and kubemc's CLI in a subprocess that sees it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "examples" / "lock"


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    """The environment of a process in which kubemc-lock is installed."""
    project = tomllib.loads((LOCK / "pyproject.toml").read_text())["project"]
    site = tmp_path_factory.mktemp("site")
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\n"
                                   f"Version: {project['version']}\n")
    lines = [f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items())
             for group, eps in project["entry-points"].items()]
    (info / "entry_points.txt").write_text("\n".join(lines))
    path = os.pathsep.join([str(site), str(LOCK), str(ROOT)])
    return dict(os.environ, PYTHONPATH=path, PYTHONDONTWRITEBYTECODE="1")


def _run(env, *args, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_the_example_registers_its_component_through_the_entry_point():
    project = tomllib.loads((LOCK / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["kubemc.components"] == {
        "lock": "kubemc_lock.catalog:COMPONENT"}


def test_kubemc_lists_the_installed_component_after_its_own(env):
    out = _run(env, "-m", "kubemc.checker.cli", "mutants", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    lock = [r for r in rows if r["component"] == "lock"]
    assert {r["name"] for r in lock} == {"no_holder_check", "wake_newest", "lost_wakeup"}
    assert rows[-len(lock):] == lock


def test_the_examples_own_tests_pass(env, tmp_path):
    # run from a scratch directory: hypothesis and plugins leave files in the
    # working directory, which must not land in the example's tree
    out = _run(env, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--rootdir", str(LOCK),
               "-c", str(LOCK / "pyproject.toml"), str(LOCK / "tests"), cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    summary = out.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary and "failed" not in summary

"""kubemc installs as one namespace: ``pip install .`` puts ``kubemc`` (and
its dist-info) into site-packages and nothing else, so a user's own
``model`` or ``checker`` package never collides with ours (setup.py maps the
folders ``model/``, ``properties/``, ``checker/``, ``conformance/`` to
``kubemc.model`` and so on).

The code must then name itself ``kubemc.*`` everywhere: one bare ``import
model`` would load a second copy of a module under another name (two
``Machine`` classes, two catalogs) in a source checkout and fail outright
once installed.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("model", "properties", "checker", "conformance")


def bare_imports(source: str) -> list[str]:
    """The imports in ``source`` of a folder by its bare name (``model.x``
    rather than ``kubemc.model.x``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [n for n in names if n.split(".")[0] in FOLDERS]
    return found


def test_bare_imports_are_found():
    source = "import model.kernel as k\nfrom checker import run\nfrom kubemc.model import x\n"
    assert bare_imports(source) == ["model.kernel", "checker"]


def test_no_module_imports_a_folder_by_its_bare_name():
    sources = [p for folder in (*FOLDERS, "tests", "examples", "tools", ".ci")
               for p in sorted((ROOT / folder).rglob("*.py")) if "data" not in p.parts]
    assert len(sources) > 300
    found = {str(p.relative_to(ROOT)): names for p in sources
             if (names := bare_imports(p.read_text()))}
    assert not found, f"import these as kubemc.<folder>...: {found}"


def test_a_wheel_holds_only_the_kubemc_namespace(tmp_path):
    """Build the wheel ``pip install .`` would install (from a copy of the
    tracked files, so no build/ or egg-info lands in the checkout) and look
    at its top-level names."""
    tracked = subprocess.run(["git", "ls-files", *FOLDERS, "setup.py", "pyproject.toml",
                              "README.md"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    src = tmp_path / "src"
    for name in tracked:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    # no build isolation: the test may not reach PyPI; setuptools is installed
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = (tmp_path / "dist").glob("kubemc-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"kubemc", wheel.name.split("-py")[0] + ".dist-info"}
    for folder in FOLDERS:
        assert f"kubemc/{folder}/__init__.py" in names
    assert "kubemc/checker/trace_view.html" in names
    assert "kubemc/model/kernel.py" in names and "kubemc/conformance/cli.py" in names
    entry_points = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "kubemc = kubemc.checker.cli:entry" in entry_points

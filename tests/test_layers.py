"""The import contract (docs/layers.md): ``model`` imports nothing of ours,
``properties`` imports ``model``, ``checker`` imports both, ``conformance``
may import all three; nothing imports the CLI (``checker.cli``), and
``checker.run`` calls ``checker.symbolic_run``, never the reverse.

The contracts live in pyproject.toml and import-linter checks them, imports
inside functions included. Each is shown to fail on a tree with a planted
violation, and to pass on the same tree without it, so a broken contract is
reported for the plant and not for a bad configuration.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"

LAYERS = "one-way layers: conformance > checker > properties > model"
CLI_ON_TOP = "the CLI sits on top: no module of ours imports it"
RUN_OVER_SYMBOLIC = "checker.run calls checker.symbolic_run, never the reverse"


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    """import-linter with this repository's contracts, on the packages found
    from ``cwd`` (put first on the path, ahead of the installed kubemc)."""
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()",
         "--config", str(PYPROJECT), "--no-cache"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_repository_keeps_its_import_contract():
    proc = lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for contract in (LAYERS, CLI_ON_TOP, RUN_OVER_SYMBOLIC):
        assert f"{contract} KEPT" in proc.stdout


#: a tree shaped like ours whose imports keep the contract
CLEAN = {
    "kubemc/model/__init__.py": "",
    "kubemc/model/kernel.py": "import attrs\n",
    "kubemc/properties/__init__.py": "",
    "kubemc/properties/core.py": "from kubemc.model import kernel\n",
    "kubemc/checker/__init__.py": "",
    "kubemc/checker/symbolic_run.py": "from kubemc.properties import core\n",
    "kubemc/checker/run.py": "def z3():\n    from kubemc.checker import symbolic_run\n",
    "kubemc/checker/bench.py": "from kubemc.checker import run\n",
    "kubemc/checker/cli.py": "from kubemc.checker import run\n",
    "kubemc/conformance/__init__.py": "",
    "kubemc/conformance/cli.py":
        "from kubemc.checker import run\nfrom kubemc.model import kernel\n",
    "kubemc/conformance/adapters/__init__.py": "",
    "kubemc/conformance/adapters/etcd/__init__.py": "",
    "kubemc/conformance/adapters/etcd/cli.py": "from kubemc.conformance import cli\n",
}

#: planted violations: (module, the line planted, the contract it breaks,
#: the edge import-linter must name)
PLANTS = [
    ("kubemc/model/kernel.py", "def f():\n    from kubemc.checker import run\n", LAYERS,
     "kubemc.model.kernel -> kubemc.checker.run"),
    ("kubemc/properties/core.py", "import kubemc.conformance.cli\n", LAYERS,
     "kubemc.properties.core -> kubemc.conformance.cli"),
    ("kubemc/checker/bench.py", "def f():\n    import kubemc.conformance.cli\n", LAYERS,
     "kubemc.checker.bench -> kubemc.conformance.cli"),
    ("kubemc/conformance/adapters/etcd/cli.py",
     "def main():\n    from kubemc.checker.cli import main\n",
     CLI_ON_TOP, "kubemc.conformance.adapters.etcd.cli -> kubemc.checker.cli"),
    ("kubemc/checker/symbolic_run.py", "def f():\n    from kubemc.checker.run import z3\n",
     RUN_OVER_SYMBOLIC, "kubemc.checker.symbolic_run -> kubemc.checker.run"),
]


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_tree_that_keeps_the_contract_passes(tmp_path):
    _write(tmp_path, CLEAN)
    proc = lint_imports(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_each_planted_violation_breaks_its_contract(tmp_path):
    """One tree with every plant: each contract is reported broken, and each
    planted edge, function-level imports included, is named."""
    files = dict(CLEAN)
    for module, line, _, _ in PLANTS:
        files[module] += line
    _write(tmp_path, files)
    proc = lint_imports(tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    for _, _, contract, edge in PLANTS:
        assert f"{contract} BROKEN" in out
        assert edge in out, f"{edge} not reported:\n{out}"


# ---------------------------------------------------------------------------
# Entry points are the one way up; a string naming a conformance module in a
# lower layer (a lazy-import table, as checker/bench.py had) is a hidden edge
# import-linter cannot see.

DOTTED_CONFORMANCE = re.compile(r"^kubemc\.conformance(\.[A-Za-z_]\w*)+(:[A-Za-z_]\w*)?$")


def hidden_edges(source: str) -> list[str]:
    """String constants in ``source`` that name a conformance module the way
    ``importlib.import_module`` or an entry point would."""
    return sorted({node.value for node in ast.walk(ast.parse(source))
                   if isinstance(node, ast.Constant) and isinstance(node.value, str)
                   and DOTTED_CONFORMANCE.match(node.value)})


def test_no_lower_layer_names_a_conformance_module_in_a_string():
    found = {str(path.relative_to(ROOT)): edges
             for package in ("model", "properties", "checker")
             for path in sorted((ROOT / package).rglob("*.py"))
             if (edges := hidden_edges(path.read_text()))}
    assert not found, (f"modules below conformance name conformance modules: {found}; "
                       "register them as entry points in pyproject.toml (docs/layers.md)")


def test_a_planted_lazy_import_table_is_found():
    source = textwrap.dedent('''
        """Docstrings may speak of conformance.adapters.etcd.cli freely."""
        TABLE = {"conform-etcd": ("kubemc.conformance.bench", "conform_etcd")}
        ENTRY = "kubemc.conformance.bench:linearizability"
    ''')
    assert hidden_edges(source) == ["kubemc.conformance.bench",
                                    "kubemc.conformance.bench:linearizability"]


# ---------------------------------------------------------------------------
# The registered commands, seen from the CLI.


def test_the_cli_finds_the_registered_commands():
    from kubemc.checker.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert {"audit", "check-history", "conform"} <= set(sub.choices)
    conform = next(a for a in sub.choices["conform"]._actions if a.dest == "target")
    assert {"etcd", "maelstrom", "cri", "cni", "proxy"} <= set(conform.choices)


def test_without_registered_commands_the_cli_says_to_reinstall(monkeypatch, capsys):
    """kubemc not installed, or installed before its entry points existed:
    one line that says what to do, exit 2, and ``check`` still works."""
    from kubemc.checker import plugins as checker_plugins
    from kubemc.checker.cli import main

    monkeypatch.setattr(checker_plugins, "entry_points", lambda group: [])
    assert main(["conform", "etcd"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert "invalid choice: 'conform'" in err and "pip install -e ." in err
    assert main(["properties", "--json"]) == 0


@pytest.mark.parametrize("name", ["etcd", "cni"])
def test_a_target_run_alone_answers_like_kubemc_conform(name):
    """``python -m kubemc.conformance.adapters.X.cli`` (no CLI above it) refuses bad
    usage as ``kubemc conform X`` does: one line naming the command's help,
    exit 2."""
    alone = subprocess.run([sys.executable, "-m", f"kubemc.conformance.adapters.{name}.cli",
                            "--nope"],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    via_cli = subprocess.run([sys.executable, "-m", "kubemc.checker.cli", "conform", name,
                              "--nope"],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert alone.returncode == via_cli.returncode == 2
    assert alone.stderr == (f"kubemc: unrecognized arguments: --nope "
                            f"(see kubemc conform {name} --help)\n")
    assert via_cli.stderr == "kubemc: unrecognized arguments: --nope (see kubemc --help)\n"

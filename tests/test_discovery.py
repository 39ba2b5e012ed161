"""The catalog is found, not listed: every module of ``checker.catalog`` that
declares a component, and every component an installed distribution
registers under the ``kubemc.components`` entry-point group — and a broken
declaration stops kubemc with its name instead of silently dropping it."""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

import kubemc.checker.catalog as checker_catalog
from kubemc.checker import components
from kubemc.checker.components import COMPONENTS, CatalogError, discover

ROOT = Path(__file__).resolve().parents[1]


def _package(tmp_path, monkeypatch, name: str, modules: dict[str, str]):
    """A throwaway catalog package ``name`` with the given modules, importable."""
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text('"""a test catalog"""\n')
    for module, body in modules.items():
        (pkg / f"{module}.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        monkeypatch.delitem(sys.modules, mod)
    return importlib.import_module(name)


def _distribution(site: Path, name: str, entry_points: dict[str, str],
                  modules: dict[str, str] = ()) -> Path:
    """An installed distribution in ``site`` as pip leaves one: a dist-info
    directory whose entry_points.txt registers ``entry_points`` in the
    kubemc.components group, and the modules they name."""
    site.mkdir(exist_ok=True)
    info = site / f"{name.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{components.ENTRY_POINT_GROUP}]\n{lines}")
    for module, body in dict(modules).items():
        (site / f"{module}.py").write_text(textwrap.dedent(body))
    return site


EMPTY = """
    from kubemc.checker.catalog import Component
    COMPONENT = Component("{name}", "a component with no models yet", ())
"""


# --- the built-ins --------------------------------------------------------


def test_the_listing_order_of_the_built_ins_is_kept():
    # the order `kubemc check`, `properties` and `mutants` printed when the
    # registry was a hand-kept list; `cluster` joined after it
    assert list(COMPONENTS)[:10] == ["store", "cni", "proxy", "apiserver", "informer",
                                     "controllers", "scheduler", "cri", "kubelet", "cluster"]


def test_every_catalog_module_that_declares_a_component_is_found():
    declared = set()
    for info in pkgutil.iter_modules(checker_catalog.__path__, "kubemc.checker.catalog."):
        module = importlib.import_module(info.name)
        for comp in (getattr(module, "COMPONENT", None), *getattr(module, "COMPONENTS", ())):
            if comp is not None:
                declared.add(comp.name)
                assert COMPONENTS[comp.name] is comp
                assert components.SOURCES[comp.name] == f"module {info.name}"
    assert declared >= {"store", "cni", "proxy", "cluster"}
    assert {n for n, s in components.SOURCES.items() if s.startswith("module ")} == declared


def test_a_new_module_is_found_without_a_list(tmp_path, monkeypatch):
    pkg = _package(tmp_path, monkeypatch, "kmc_cat_new", {
        "zeta": EMPTY.format(name="zeta"),
        "alpha": EMPTY.format(name="alpha"),
        "helper": "X = 1\n",
    })
    found = discover(pkg, entry_points=())
    assert list(found) == ["alpha", "zeta"]
    assert found["alpha"].source == "module kmc_cat_new.alpha" and found["alpha"].built_in


def test_a_module_that_does_not_import_is_named(tmp_path, monkeypatch):
    pkg = _package(tmp_path, monkeypatch, "kmc_cat_broken", {
        "good": EMPTY.format(name="good"),
        "broken": "import a_module_that_is_not_there\n",
    })
    with pytest.raises(CatalogError, match="catalog module kmc_cat_broken.broken does not "
                       "import .*a_module_that_is_not_there"):
        discover(pkg, entry_points=())


def test_two_components_of_one_name_are_refused_naming_both(tmp_path, monkeypatch):
    pkg = _package(tmp_path, monkeypatch, "kmc_cat_twice", {
        "one": EMPTY.format(name="same"),
        "two": EMPTY.format(name="same"),
    })
    with pytest.raises(CatalogError) as caught:
        discover(pkg, entry_points=())
    assert "module kmc_cat_twice.one" in str(caught.value)
    assert "module kmc_cat_twice.two" in str(caught.value)


def test_a_component_re_exported_by_another_module_is_one_component(tmp_path, monkeypatch):
    pkg = _package(tmp_path, monkeypatch, "kmc_cat_reexport", {
        "base": EMPTY.format(name="base"),
        "extra": "from kmc_cat_reexport.base import COMPONENT\n",
    })
    assert list(discover(pkg, entry_points=())) == ["base"]


def test_a_declaration_of_the_wrong_type_is_named(tmp_path, monkeypatch):
    pkg = _package(tmp_path, monkeypatch, "kmc_cat_wrong", {"odd": "COMPONENT = 'store'\n"})
    with pytest.raises(CatalogError, match="kmc_cat_wrong.odd declares an object of type str"):
        discover(pkg, entry_points=())


# --- installed distributions ------------------------------------------------


def _entry_points(site: Path, monkeypatch):
    monkeypatch.syspath_prepend(str(site))
    return metadata.entry_points(group=components.ENTRY_POINT_GROUP)


def test_an_installed_component_is_found_after_the_built_ins(tmp_path, monkeypatch):
    site = _distribution(tmp_path / "site", "kmc-extra",
                         {"extra": "kmc_extra_catalog:COMPONENT"},
                         {"kmc_extra_catalog": EMPTY.format(name="extra")})
    found = discover(entry_points=_entry_points(site, monkeypatch))
    assert list(found)[-1] == "extra"
    assert not found["extra"].built_in
    assert found["extra"].source == ("entry point extra = kmc_extra_catalog:COMPONENT of "
                                     "kmc-extra 0.1.0 (group kubemc.components)")
    assert list(found)[:-1] == list(COMPONENTS)


def test_an_installed_component_may_not_take_a_built_in_name(tmp_path, monkeypatch):
    site = _distribution(tmp_path / "site", "kmc-clash", {"store": "kmc_clash:COMPONENT"},
                         {"kmc_clash": EMPTY.format(name="store")})
    with pytest.raises(CatalogError) as caught:
        discover(entry_points=_entry_points(site, monkeypatch))
    message = str(caught.value)
    assert "module kubemc.checker.catalog.store" in message and "of kmc-clash 0.1.0" in message


@pytest.mark.parametrize("target, body, message", [
    ("kmc_missing_mod:COMPONENT", None, "does not load .*ModuleNotFoundError"),
    ("kmc_not_a_comp:COMPONENT", "COMPONENT = 3\n", "names an object of type int, not a"),
    ("kmc_misnamed:COMPONENT", EMPTY.format(name="other"), "names component 'other'"),
])
def test_a_broken_entry_point_is_named(tmp_path, monkeypatch, target, body, message):
    module = target.split(":")[0]
    site = _distribution(tmp_path / "site", "kmc-broken", {"broken": target},
                         {module: body} if body else {})
    with pytest.raises(CatalogError, match=f"entry point broken = {target} of kmc-broken "
                       f"0.1.0 .*{message}"):
        discover(entry_points=_entry_points(site, monkeypatch))


# --- through the CLI ----------------------------------------------------------


def _kubemc(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]))
    return subprocess.run([sys.executable, "-m", "kubemc.checker.cli", *args], cwd=site,
                          env=env, capture_output=True, text=True, timeout=120)


def test_a_broken_installed_component_is_an_internal_error_naming_it(tmp_path):
    site = _distribution(tmp_path / "site", "kmc-broken", {"broken": "kmc_gone:COMPONENT"})
    out = _kubemc(site, "mutants")
    assert out.returncode == 70, out.stderr
    assert out.stderr.count("\n") == 1
    assert "entry point broken = kmc_gone:COMPONENT of kmc-broken 0.1.0" in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_a_component_with_no_models_breaks_nothing(tmp_path):
    site = _distribution(tmp_path / "site", "kmc-empty", {"empty": "kmc_empty:COMPONENT"},
                         {"kmc_empty": EMPTY.format(name="empty")})
    listed = _kubemc(site, "properties", "--json")
    assert listed.returncode == 0, listed.stderr
    checked = _kubemc(site, "check", "empty", "--quiet")
    assert checked.returncode == 0, checked.stderr
    assert "Traceback" not in checked.stderr

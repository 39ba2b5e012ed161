"""The README's component table and the docs' tables of models agree with
the catalog (``checker.components``), so a component or model added to the
catalog cannot go unmentioned and a renamed one cannot linger in the docs.

Which tables are judged, read from the Markdown itself:

* the README's table whose header starts ``| component | what it models``:
  its first column names (in backticks, several to a row) exactly the
  catalog's own components — the built-ins, not those of distributions
  installed next to kubemc;
* every table in README.md and docs/*.md whose first header cell is
  ``model``: each row's first cell (up to a comma) names a model of the
  catalog;
* of those, a table whose second header cell speaks of ``bounds`` is a
  table of the models' default bounds: it lists every model of each
  component it names a model of;
* every other table whose first header cell is ``component``
  (docs/liveness.md's): each name in its first column is a component or a
  model, and the first name in backticks under a ``property`` or ``mutant``
  header is a property of that component, or a mutant of the catalog.

A failure says, for each problem, the file, the table's line and the row to
add or the name to fix, with the catalog's own words for the new row.
"""

from __future__ import annotations

import re
from pathlib import Path

import attrs

from kubemc.checker.components import BUILT_IN, COMPONENTS, component_of, model_named

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]


@attrs.frozen
class Table:
    path: Path
    line: int                    # 1-based line of the header
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    @property
    def where(self) -> str:
        shown = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path.name
        return f"{shown}, the table at line {self.line} (| {' | '.join(self.header)} |)"


def _cells(line: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in line.strip().strip("|").split("|"))


def tables(path: Path) -> list[Table]:
    lines = path.read_text().splitlines()
    found, k = [], 0
    while k < len(lines) - 1:
        if lines[k].startswith("|") and re.fullmatch(r"\|[\s:|-]+\|?", lines[k + 1].strip()):
            start, k = k, k + 2
            rows = []
            while k < len(lines) and lines[k].startswith("|"):
                rows.append(_cells(lines[k]))
                k += 1
            found.append(Table(path, start + 1, _cells(lines[start]), tuple(rows)))
        else:
            k += 1
    return found


def _names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell) or [cell]


def _model_name(cell: str) -> str:
    return cell.split(",")[0].replace("`", "").strip()


def _component_row(name: str) -> str:
    page = ROOT / "docs" / f"{name}.md"
    details = f"[docs/{name}.md](docs/{name}.md)" if page.exists() else "—"
    return f"| `{name}` | {COMPONENTS[name].summary} | {details} |"


def _model_row(model) -> str:
    bounds = ", ".join(f"{k}={v}" for k, v in model.bounds.items())
    return f"| {model.name} | {bounds} | … |"


def component_table_problems() -> list[str]:
    found = [t for t in tables(README)
             if t.header[:2] == ("component", "what it models")]
    if len(found) != 1:
        return [f"README.md: expected one table headed | component | what it models | …, "
                f"found {len(found)}"]
    table = found[0]
    listed = [n for row in table.rows for n in _names(row[0])]
    problems = [f"{table.where}: add the row\n    {_component_row(n)}"
                for n in BUILT_IN if n not in listed]
    problems += [f"{table.where}: `{n}` is not a component of the catalog "
                 f"(known: {', '.join(BUILT_IN)}): rename or remove it"
                 for n in listed if n not in BUILT_IN]
    problems += [f"{table.where}: `{n}` has more than one row: keep one"
                 for n in sorted({n for n in listed if listed.count(n) > 1})]
    return problems


def model_table_problems(pages: list[Path] = PAGES) -> list[str]:
    problems = []
    for path in pages:
        for table in tables(path):
            if table.header[0] != "model":
                continue
            named = [_model_name(row[0]) for row in table.rows]
            models = []
            for name in named:
                try:
                    models.append(model_named(name))
                except LookupError:
                    problems.append(f"{table.where}: `{name}` is not a model of the catalog: "
                                    "rename or remove its row")
            if len(table.header) < 2 or "bounds" not in table.header[1]:
                continue
            for comp in {component_of(m).name for m in models}:
                problems += [f"{table.where}: add a row for model `{m.name}` of component "
                             f"`{comp}`, e.g.\n    {_model_row(m)}"
                             for m in COMPONENTS[comp].models if m.name not in named]
    return problems


def _is_model(name: str) -> bool:
    try:
        model_named(name)
    except LookupError:
        return False
    return True


def component_mention_problems(pages: list[Path] = PAGES) -> list[str]:
    """Other tables whose first column names components (docs/liveness.md's):
    each name there is a component or a model, and the properties and
    mutants the row names in backticks are that component's."""
    problems = []
    mutants = {m for c in COMPONENTS.values() for model in c.models for m in model.mutants}
    for path in pages:
        for table in tables(path):
            if table.header[0] != "component" or table.header[1] == "what it models":
                continue
            for row in table.rows:
                names = [re.sub(r"\(.*?\)", "", n).replace("`", "").strip()
                         for n in row[0].split(",")]
                problems += [f"{table.where}: `{n}` is neither a component nor a model of "
                             "the catalog: rename or remove it"
                             for n in names if n not in COMPONENTS and not _is_model(n)]
                comp = COMPONENTS.get(names[0])
                for head, cell in zip(table.header[1:], row[1:], strict=False):
                    ticked = re.findall(r"`([^`]+)`", cell)
                    if not ticked:
                        continue
                    if head.startswith("property") and comp is not None and \
                            ticked[0] not in {p.name for p in comp.properties()}:
                        problems.append(f"{table.where}: `{ticked[0]}` is not a property of "
                                        f"component `{comp.name}`: rename it")
                    if head.startswith("mutant") and ticked[0] not in mutants:
                        problems.append(f"{table.where}: `{ticked[0]}` is not a mutant of the "
                                        "catalog: rename it")
    return problems


def test_the_readme_lists_every_component_of_the_catalog():
    problems = component_table_problems()
    assert not problems, "\n".join(problems)


def test_every_table_of_models_names_the_catalog_s_models():
    problems = model_table_problems()
    assert not problems, "\n".join(problems)


def test_tables_naming_components_name_the_catalog_s_components_properties_and_mutants():
    problems = component_mention_problems()
    assert not problems, "\n".join(problems)


def test_the_tables_are_read(tmp_path):
    """The parser finds what the checks rely on (so a reformatted README
    cannot make them pass by finding nothing)."""
    readme_tables = tables(README)
    assert any(t.header[:2] == ("component", "what it models") for t in readme_tables)
    assert sum(t.header[0] == "model" for p in PAGES for t in tables(p)) >= 5
    assert any(t.header[0] == "component" and t.path != README
               for p in PAGES for t in tables(p))
    page = tmp_path / "page.md"
    page.write_text("text\n\n| model | bounds |\n|---|---|\n| `a`, more | x |\n| b | y |\n\nend\n")
    (table,) = tables(page)
    assert table.line == 3 and table.header == ("model", "bounds")
    assert [_model_name(r[0]) for r in table.rows] == ["a", "b"]


def test_a_wrong_table_is_caught_with_what_to_do(tmp_path):
    page = tmp_path / "wrong.md"
    page.write_text("| model | default bounds |\n|---|---|\n| raft | x |\n| rafts | y |\n\n"
                    "| component | property | mutant |\n|---|---|---|\n"
                    "| store | `log_matching` | `figure8_commit` |\n"
                    "| stor | `no_such_property` | `no_such_mutant` |\n"
                    "| informer | `log_matching` | — |\n")
    models = "\n".join(model_table_problems([page]))
    assert "`rafts` is not a model of the catalog" in models
    assert "add a row for model `mvcc` of component `store`" in models
    mentions = component_mention_problems([page])
    assert mentions == [
        "wrong.md, the table at line 6 (| component | property | mutant |): `stor` is "
        "neither a component nor a model of the catalog: rename or remove it",
        "wrong.md, the table at line 6 (| component | property | mutant |): "
        "`no_such_mutant` is not a mutant of the catalog: rename it",
        "wrong.md, the table at line 6 (| component | property | mutant |): "
        "`log_matching` is not a property of component `informer`: rename it"]

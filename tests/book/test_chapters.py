"""The chapters read like sections of a methods paper, and stay thin: the package does the work.

Every chapter follows one template (the question, what you need and what it costs, the stage call,
figures and numbers, caveats, a summary); its code cells are short calls into the package (median
<= 5 lines, none over 15); every figure is drawn by a function of ``deepcycle_core.plots`` (no
plotting call in a chapter), and every such function has a test; plumbing cells are folded. The API
reference has one page for each wing's public face. All read from the notebooks' JSON: no kernel.
"""

from __future__ import annotations

import ast
import json
import re
import statistics
from pathlib import Path

import pytest
import yaml

import deepcycle_core
from deepcycle_core.book.profiles import toc_chapters

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = toc_chapters(ROOT)
#: The template's sections, in order (markdown headings; the question is the opening cell's lead-in).
TEMPLATE = ("**The question.**", "## What you need and what it costs", "## Caveats", "## Summary")
MAX_LINES = 15
MAX_MEDIAN_LINES = 5
#: Drawing calls that belong in deepcycle_core.plots, not in a chapter.
DRAWING = re.compile(r"\bplt\.(?!show\b)|\bax\.|\baxes\b|\bfig\.|\bhv\.|\.opts\(|\bimshow\(|\bsubplots\(")


def _cells(chapter: Path) -> list[dict]:
    return json.loads(chapter.read_text())["cells"]


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _code_cells(chapter: Path) -> list[dict]:
    return [c for c in _cells(chapter) if c["cell_type"] == "code"
            and "injected-parameters" not in c.get("metadata", {}).get("tags", [])]


def _lines(cell: dict) -> int:
    return sum(1 for line in _source(cell).splitlines() if line.strip() and not line.strip().startswith("#"))


def test_the_book_has_chapters():
    assert len(CHAPTERS) >= 7


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_each_chapter_follows_the_template(chapter):
    text = [_source(c) for c in _cells(chapter) if c["cell_type"] == "markdown"]
    assert text and text[0].lstrip().startswith("# "), f"{chapter.name}: the first cell is the chapter's title"
    assert TEMPLATE[0] in text[0], f"{chapter.name}: the opening cell states {TEMPLATE[0]}"
    where = []
    for part in TEMPLATE[1:]:
        hits = [i for i, t in enumerate(text) if any(line.strip() == part for line in t.splitlines())]
        assert hits, f"{chapter.name}: no section {part!r}"
        where.append(hits[0])
    assert where == sorted(where), f"{chapter.name}: the sections are out of order ({' < '.join(TEMPLATE[1:])})"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_code_cells_are_short(chapter):
    sizes = [_lines(c) for c in _code_cells(chapter)]
    long = [(i, n) for i, n in enumerate(sizes) if n > MAX_LINES]
    assert not long, f"{chapter.name}: code cells over {MAX_LINES} lines (index, lines): {long}"
    assert statistics.median(sizes) <= MAX_MEDIAN_LINES, f"{chapter.name}: median code cell {statistics.median(sizes)} lines"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_figures_are_drawn_by_the_package(chapter):
    for i, cell in enumerate(_code_cells(chapter)):
        code = "\n".join(line for line in _source(cell).splitlines() if not line.strip().startswith("#"))
        hit = DRAWING.search(code)
        assert hit is None, f"{chapter.name}: code cell {i} draws by hand ({hit.group(0)!r}); call deepcycle_core.plots"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_plumbing_cells_are_folded(chapter):
    """A cell that imports is set-up: folded (``hide-input``) so the reader sees the analysis first."""
    for i, cell in enumerate(_code_cells(chapter)):
        code = "\n".join(line for line in _source(cell).splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        if any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in tree.body):
            tags = cell.get("metadata", {}).get("tags", [])
            assert {"hide-input", "remove-input"} & set(tags), f"{chapter.name}: code cell {i} imports but is not folded"


def _plot_functions() -> list[str]:
    names = []
    for path in sorted((ROOT / "deepcycle_core" / "plots").glob("*.py")):
        if path.name == "__init__.py":
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                names.append(f"{path.stem}.{node.name}")
    return names


def test_every_plot_function_has_a_test():
    tests = "\n".join(p.read_text() for p in (ROOT / "tests" / "plots").glob("test_*.py"))
    missing = [n for n in _plot_functions() if not re.search(rf"\b{re.escape(n.split('.')[1])}\(", tests)]
    assert not missing, f"plot functions no test in tests/plots calls: {missing}"


def test_the_api_reference_has_a_page_for_each_wing():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    listed = json.dumps(toc)
    for wing in deepcycle_core.WINGS:
        page = ROOT / "book" / "api" / f"{wing}.md"
        assert page.is_file(), f"no API page for the {wing} wing"
        assert f"book/api/{wing}" in listed, f"_toc.yml does not list {page.name}"
        text = page.read_text()
        for module in sorted((ROOT / "deepcycle_core" / wing).glob("*.py")):
            if module.name != "__init__.py":
                assert f".. automodule:: deepcycle_core.{wing}.{module.stem}" in text, f"{page.name} misses {module.stem}"

"""Every chapter as the book build executed it.

``make test`` builds the book first (``jupyter-book build``), which executes every chapter
once, top to bottom, in a fresh kernel with ``allow_errors: false``: a failing ``assert`` in
any cell fails the build. These tests read the notebooks the build executed
(``_build/jupyter_execute/chapters/*.ipynb``) and check what a reader of the site depends on:
every code cell ran, none printed an error, every chapter drew its figures, and none took too
long. They fail, not skip, when the build is missing. (``make nbval`` runs the same chapters
under ``pytest --nbval-lax`` in a kernel of its own.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = ROOT / "_build" / "jupyter_execute" / "chapters"
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))


def executed(chapter: Path) -> dict:
    path = EXECUTED / chapter.name
    assert path.is_file(), f"{path} is missing: build the book first (make book or make test)"
    return json.loads(path.read_text(encoding="utf-8"))


def text(source) -> str:
    """A cell's source: nbformat stores it as one string or as a list of lines."""
    return source if isinstance(source, str) else "".join(source)


def code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code" and text(c["source"]).strip()]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_code_cell_ran_without_error(chapter):
    nb = executed(chapter)
    cells = code_cells(nb)
    assert cells, f"{chapter.name} has no code"
    source = [text(c["source"]) for c in code_cells(json.loads(chapter.read_text()))]
    built = [text(c["source"]) for c in cells]
    assert source == built, f"the build executed an older {chapter.name}: rebuild the book"
    for i, cell in enumerate(cells):
        assert cell.get("execution_count"), f"{chapter.name}: code cell {i} did not run"
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", (
                f"{chapter.name}: code cell {i} raised {out.get('ename')}: {out.get('evalue')}"
            )


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_draws_figures(chapter):
    nb = executed(chapter)
    images = sum(
        1
        for cell in code_cells(nb)
        for out in cell.get("outputs", [])
        if "image/png" in out.get("data", {}) or "image/svg+xml" in out.get("data", {})
    )
    assert images >= 1, f"{chapter.name} drew no figure"

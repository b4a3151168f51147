"""Student notebooks: every chapter with its answers replaced by stubs.

``python -m scanbook.course.assignments [--out DIR] [NOTEBOOK ...]`` (``make assignments``)
writes, for each chapter notebook (default: ``chapters/*.ipynb``), a student version into
``DIR`` (default ``_build/assignments``):

* every cell tagged ``solution``: each top-level function keeps its decorators, signature and
  docstring, and its body becomes ``raise NotImplementedError("chN-exK: write your answer
  here")``; the other top-level lines stay; the ``hide-input`` tag goes, so the stub shows;
* every ``{solution}`` block of a markdown cell and every cell tagged ``student-remove`` goes;
* grader cells stay; outputs and execution counts are emptied; the notebook's metadata gets
  ``scanbook.student = true`` and ``scanbook.chapter = N``.

Defined in chapter 1 (the layout of the exercises).
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import sys
from pathlib import Path

from ._notebook import (
    HIDE_INPUT,
    REMOVE,
    SOLUTION,
    SOLUTION_BLOCK,
    chapter_number,
    exercise_of,
    read,
    source,
    tags,
)

__all__ = ["main", "student_notebook", "stub_source", "write_assignments"]


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def stub_source(text: str, label: str) -> str:
    """``text`` with the body of every top-level function replaced by a ``NotImplementedError``
    naming the exercise ``label``; decorators, signatures, docstrings and other lines stay.

    Defined in chapter 1.
    """
    tree = ast.parse(text)
    lines = _lines(text)
    out: list[str] = []
    pos = 0  # next line (0-based) of ``lines`` not yet copied
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        body = node.body
        keep = body[0] if _is_docstring(body[0]) else None
        first = body[1] if keep is not None and len(body) > 1 else (None if keep else body[0])
        indent = " " * (node.col_offset + 4)
        if keep is not None:
            out.extend(lines[pos : keep.end_lineno])
        elif first.lineno == node.lineno:  # `def f(x): return x` on one line
            out.extend(lines[pos : node.lineno - 1])
            head = lines[node.lineno - 1][: first.col_offset].rstrip()
            out.append(head + "\n")
        else:
            out.extend(lines[pos : first.lineno - 1])
            # comments between the signature and the first statement belong to the answer
            while out and out[-1].strip().startswith("#") and out[-1].startswith(indent):
                out.pop()
        out.append(f'{indent}raise NotImplementedError("{label}: write your answer here")\n')
        pos = node.end_lineno
    out.extend(lines[pos:])
    result = "".join(out)
    ast.parse(result)  # the stub must still be Python
    return result


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _as_source_list(text: str) -> list[str]:
    return _lines(text.rstrip("\n"))


def student_notebook(nb: dict, chapter: int | None) -> dict:
    """The student version of a chapter notebook (a new dict; ``nb`` is not changed).

    Defined in chapter 1.
    """
    nb = copy.deepcopy(nb)
    cells = []
    for cell in nb["cells"]:
        t = tags(cell)
        if REMOVE in t:
            continue
        if cell.get("cell_type") == "markdown":
            text = SOLUTION_BLOCK.sub("", source(cell))
            if not text.strip():
                continue
            cell["source"] = _as_source_list(text)
        elif cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
            if SOLUTION in t:
                label = exercise_of(cell) or "exercise"
                cell["source"] = _as_source_list(stub_source(source(cell), label))
                cell["metadata"]["tags"] = [x for x in t if x != HIDE_INPUT]
        cells.append(cell)
    nb["cells"] = cells
    meta = nb.setdefault("metadata", {})
    meta["scanbook"] = {"student": True, "chapter": chapter}
    return nb


def write_assignments(notebooks: list[Path], out: Path) -> list[Path]:
    """Write the student version of each notebook into ``out``; returns the paths written.

    Defined in chapter 1.
    """
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        nb = read(path)
        student = student_notebook(nb, chapter_number(path, nb))
        target = out / Path(path).name
        target.write_text(json.dumps(student, indent=1, ensure_ascii=False) + "\n", "utf-8")
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scanbook.course.assignments",
        description="Write student notebooks: the chapters with their answers replaced by stubs.",
    )
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: chapters/*.ipynb")
    parser.add_argument("--out", type=Path, default=Path("_build/assignments"))
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted(Path("chapters").glob("*.ipynb"))
    if not notebooks:
        parser.error("no notebooks given and none in chapters/")
    for path in write_assignments(notebooks, args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

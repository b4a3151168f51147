"""Reading a chapter notebook the way the course tools see it: exercises, tags, grader calls.

Defined in chapter 1 (the exercises' layout). The layout (``solution``, ``grader`` and
``student-remove`` tags, ``metadata.scanbook.exercise``) is described in
:mod:`scanbook.course`.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

SOLUTION, GRADER, REMOVE, HIDE_INPUT = "solution", "grader", "student-remove", "hide-input"

#: The name under which the autograder hands ``scanbook.exercises`` to the grader calls (so that
#: an answer cell that rebinds ``sb`` cannot change the graders).
GRADERS_NAME = "__scanbook_graders__"

#: A ``{solution}`` block in a markdown cell, in either fence form (``` or ````), with the
#: blank lines before it.
SOLUTION_BLOCK = re.compile(r"\n*^(`{3,}|:{3,})\{solution\}[^\n]*\n.*?^\1[ \t]*$", re.S | re.M)


def source(cell: dict) -> str:
    """A cell's source as one string (nbformat stores a string or a list of lines)."""
    src = cell.get("source", "")
    return src if isinstance(src, str) else "".join(src)


def tags(cell: dict) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def exercise_of(cell: dict) -> str | None:
    """The exercise label in ``metadata.scanbook.exercise`` (``"ch1-ex2"``), or ``None``."""
    meta = cell.get("metadata", {}).get("scanbook", {})
    return meta.get("exercise") if isinstance(meta, dict) else None


def read(path: str | Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def chapter_number(path: str | Path, nb: dict | None = None) -> int | None:
    """The chapter of a notebook: ``metadata.scanbook.chapter``, else the file name's ``NN_``."""
    if nb is not None:
        meta = nb.get("metadata", {}).get("scanbook", {})
        if isinstance(meta, dict) and isinstance(meta.get("chapter"), int):
            return meta["chapter"]
    m = re.match(r"(\d+)_", Path(path).name)
    return int(m.group(1)) if m else None


@dataclass
class GraderCall:
    """One ``assert sb.exercises.check_x(answer, key=value)`` line of a grader cell."""

    grader: str
    answer: str
    code: str  # the call on GRADERS_NAME, with quiet=True, ready for eval


@dataclass
class Exercise:
    label: str
    solutions: list[str] = field(default_factory=list)  # sources of the solution cells
    calls: list[GraderCall] = field(default_factory=list)


def parse_grader_cell(text: str) -> list[GraderCall]:
    """The grader calls of a grader cell; raises ValueError for any other statement."""
    calls = []
    for node in ast.parse(text).body:
        call = node.test if isinstance(node, ast.Assert) else None
        func = call.func if isinstance(call, ast.Call) else None
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if not (isinstance(name, str) and name.startswith("check_")) or not call.args:
            raise ValueError(
                "a grader cell holds only lines `assert sb.exercises.check_x(answer)`; got "
                f"{ast.unparse(node)!r}"
            )
        keywords = [k for k in call.keywords if k.arg not in ("quiet", "raise_on_fail")]
        keywords.append(ast.keyword("quiet", ast.Constant(True)))
        new = ast.Call(
            ast.Attribute(ast.Name(GRADERS_NAME, ast.Load()), name, ast.Load()), call.args, keywords
        )
        calls.append(GraderCall(name, ast.unparse(call.args[0]), ast.unparse(new)))
    return calls


def exercises(nb: dict) -> list[Exercise]:
    """The exercises with code, in notebook order: their solution cells and grader calls."""
    found: dict[str, Exercise] = {}
    for cell in nb["cells"]:
        label = exercise_of(cell)
        if cell.get("cell_type") != "code" or label is None:
            continue
        ex = found.setdefault(label, Exercise(label))
        if SOLUTION in tags(cell):
            ex.solutions.append(source(cell))
        elif GRADER in tags(cell):
            ex.calls.extend(parse_grader_cell(source(cell)))
    return list(found.values())


def setup_source(nb: dict) -> str:
    """The imports a solution may rely on: the top-level ``import`` statements of the code cells
    before the first exercise's cells (not those tagged ``solution``, ``grader`` or
    ``student-remove``), and every cell tagged ``setup``."""
    lines = []
    before_first = True
    for cell in nb["cells"]:
        if cell.get("cell_type") != "code":
            continue
        if exercise_of(cell) is not None:
            before_first = False
        t = tags(cell)
        if "setup" in t:
            lines.append(source(cell))
            continue
        if not before_first or {SOLUTION, GRADER, REMOVE} & set(t):
            continue
        text = source(cell)
        try:
            tree = ast.parse(text)
        except SyntaxError:  # IPython magics: not ours to run
            continue
        for node in tree.body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                lines.append(ast.get_source_segment(text, node))
    return "\n".join(lines) + "\n"

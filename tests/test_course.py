"""scanbook.course: student notebooks keep no answer, the autograder scores what it should."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import numpy as np
import pytest
import scanbook as sb
from scanbook.course import _notebook as nbtools
from scanbook.course.assignments import stub_source, student_notebook, write_assignments
from scanbook.course.grade import grade_notebook, main

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
CH1 = ROOT / "chapters" / "01_serial_scans.ipynb"
CH10 = ROOT / "chapters" / "10_beyond_one_device.ipynb"


def _text(cell) -> str:
    return nbtools.source(cell)


def _answer_lines(nb: dict) -> set[str]:
    """Lines of the bodies of the functions in the solution cells (long enough to be telling)."""
    lines = set()
    for cell in nb["cells"]:
        if "solution" not in nbtools.tags(cell):
            continue
        text = _text(cell)
        for node in ast.parse(text).body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                first = node.body[0]
                is_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                start = first.end_lineno if is_doc else first.lineno - 1  # the stub keeps it
                body = text.splitlines()[start : node.end_lineno]
                lines |= {line.strip() for line in body if len(line.strip()) >= 16}
    return lines


def _visible_elsewhere(nb: dict) -> str:
    """The book's text outside answers: code cells not tagged solution, prose without dropdowns."""
    parts = []
    for cell in nb["cells"]:
        if "solution" in nbtools.tags(cell):
            continue
        text = _text(cell)
        if cell["cell_type"] == "markdown":
            text = nbtools.SOLUTION_BLOCK.sub("", text)
        parts.append(text)
    return "\n".join(parts)


@pytest.fixture(scope="module")
def assignments(tmp_path_factory):
    out = tmp_path_factory.mktemp("assignments")
    written = write_assignments(CHAPTERS, out)
    return {p.name: p for p in written}


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_student_notebook_keeps_no_answer(path, assignments):
    book = nbtools.read(path)
    student = nbtools.read(assignments[path.name])
    text = "\n".join(_text(c) for c in student["cells"])
    elsewhere = _visible_elsewhere(book)
    leaked = sorted(line for line in _answer_lines(book) if line in text and line not in elsewhere)
    assert not leaked, f"{path.name}: the student notebook still holds {leaked[:3]}"
    assert student["metadata"]["scanbook"] == {"student": True, "chapter": int(path.name[:2])}
    for cell in student["cells"]:
        tags = nbtools.tags(cell)
        assert "student-remove" not in tags
        if cell["cell_type"] == "markdown":
            assert "{solution}" not in _text(cell)
            continue
        assert cell["outputs"] == [] and cell["execution_count"] is None
        if "solution" in tags:
            assert "hide-input" not in tags
            label = nbtools.exercise_of(cell)
            if re.search(r"^\s*(async )?def ", _text(cell), re.M):
                assert f'NotImplementedError("{label}: write your answer here")' in _text(cell)
    book_graders = [_text(c) for c in book["cells"] if "grader" in nbtools.tags(c)]
    student_graders = [_text(c) for c in student["cells"] if "grader" in nbtools.tags(c)]
    assert student_graders == book_graders


def test_stub_keeps_signatures_docstrings_and_other_lines():
    src = (
        "from numba import cuda\n\n\n"
        "@cuda.jit\n"
        "def kernel(x, out):\n"
        '    """Add one."""\n'
        "    # a comment of the answer\n"
        "    i = cuda.grid(1)\n"
        "    out[i] = x[i] + 1\n\n\n"
        "def short(x): return x * 2\n\n\n"
        "op = sb.ops.Operator('op', short, None, '+')\n"
    )
    stub = stub_source(src, "ch3-ex9")
    assert "from numba import cuda" in stub and "@cuda.jit" in stub
    assert '"""Add one."""' in stub and "op = sb.ops.Operator('op', short" in stub
    assert "x[i] + 1" not in stub and "a comment of the answer" not in stub
    assert "return x * 2" not in stub and "def short(x):" in stub
    assert stub.count('raise NotImplementedError("ch3-ex9: write your answer here")') == 2
    ast.parse(stub)


def test_student_notebook_drops_both_fence_forms_and_removed_cells():
    nb = {
        "metadata": {},
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "Q\n\n```{solution} x\nA\n```\n"},
            {
                "cell_type": "markdown",
                "metadata": {},
                "source": "R\n\n````{solution} y\n:class: dropdown\n```python\nz = 1\n```\n````\nS",
            },
            {"cell_type": "code", "metadata": {"tags": ["student-remove"]}, "source": "print(1)"},
        ],
    }
    out = student_notebook(nb, 7)
    texts = [_text(c) for c in out["cells"]]
    assert texts == ["Q", "R\nS"] and out["metadata"]["scanbook"]["chapter"] == 7


def test_reference_scores_full_marks_and_stubs_zero(assignments, tmp_path, capsys):
    stub = assignments[CH1.name]
    js, cs = tmp_path / "grades.json", tmp_path / "grades.csv"
    assert main([str(CH1), str(stub), str(CH10), "--json", str(js), "--csv", str(cs)]) == 0
    table = capsys.readouterr().out
    results = json.loads(js.read_text())
    book1, stub1, book10 = results
    assert book1["score"] == 1.0 and book10["score"] == 1.0, table
    assert [e["exercise"] for e in book1["exercises"]] == [
        "ch1-ex1",
        "ch1-ex2",
        "ch1-ex3",
        "ch1-ex4",
    ]
    for e in book1["exercises"]:  # public and hidden cases, all run
        for g in e["graders"]:
            assert g["public"][0] == g["public"][1] > 0 and g["hidden"][0] == g["hidden"][1] > 0
    assert stub1["score"] == 0.0
    for e in stub1["exercises"]:
        assert e["passed"] == 0 and e["total"] > 0
        assert f"NotImplementedError: {e['exercise']}: write your answer here" in e["message"]
    assert "ch1-ex4" in table and "NotImplementedError" in table
    rows = cs.read_text().splitlines()
    assert rows[0].startswith("notebook,chapter,exercise,passed,total,score")
    assert len(rows) == 1 + 4 + 4 + 4


def _set_answer(nb: dict, label: str, text: str) -> None:
    cell = next(
        c for c in nb["cells"] if nbtools.exercise_of(c) == label and "solution" in nbtools.tags(c)
    )
    cell["source"] = text


def test_synthetic_submission_scores_each_answer_and_grades_the_rest(assignments, tmp_path):
    nb = nbtools.read(assignments[CH1.name])
    _set_answer(  # a loop in Python that never ends: the case's time limit stops it
        nb, "ch1-ex1", "def prefix_sum(xs):\n    while True:\n        pass\n"
    )
    _set_answer(  # a loop the case's alarm cannot stop (as in compiled code): killed
        nb,
        "ch1-ex2",
        "import signal\n\nsignal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])\n"
        "while True:\n    pass\n",
    )
    _set_answer(  # right, but prints megabytes
        nb,
        "ch1-ex3",
        "def affine_combine(first, then):\n    (a1, b1), (a2, b2) = first, then\n"
        "    print('x' * 3_000_000)\n    return a2 * a1, a2 * b1 + b2\n",
    )
    _set_answer(  # the library's answer, and a scan that forgets h0 (right only when h0 = 0)
        nb,
        "ch1-ex4",
        "def linear_recurrence(a, b, h0):\n"
        '    return sb.linear_recurrence(a, b, h0, backend="numpy")\n\n\n'
        "def linear_recurrence_scan(a, b, h0):\n"
        "    return sb.scan(sb.ops.affine, (np.asarray(a), np.asarray(b)))[1]\n",
    )
    path = tmp_path / "student.ipynb"
    path.write_text(json.dumps(nb))
    result = grade_notebook(path, time_limit=6, case_time_limit=2)
    by = {e.exercise: e for e in result.exercises}
    assert by["ch1-ex1"].score == 0 and "did not finish within 2 s" in by["ch1-ex1"].message
    assert by["ch1-ex2"].score == 0 and "did not finish within 6 s" in by["ch1-ex2"].message
    assert by["ch1-ex3"].score == 0 and "printed more than 100,000" in by["ch1-ex3"].message
    ex4 = by["ch1-ex4"]
    library, scan = ex4.graders
    assert library["passed"] == 0 and "calls sb.linear_recurrence" in library["message"]
    assert 0 < scan["passed"] < scan["total"], scan  # partial credit: the T = 0 cases pass
    assert 0 < ex4.score < 0.5


def test_hidden_cases_are_new_and_their_failures_show_no_data():
    def wrong(xs):
        return [2 * x for x in xs]

    public = sb.exercises.check_prefix_sum(wrong, quiet=True)
    assert "inputs:" in public.message and "expected:" in public.message
    salt = sb.exercises.course_salt("test")
    with sb.exercises.grading_mode(salt=salt, hidden=True) as mode:
        hidden = sb.exercises.check_prefix_sum(wrong, quiet=True)
        rng = sb.exercises.make_rng(11)
    assert "hidden case" in hidden.message
    assert "inputs:" not in hidden.message and "expected" not in hidden.message
    assert "got:" not in hidden.message
    assert mode.records == [hidden] and 0 < hidden.cases_passed < hidden.cases_total
    assert rng.random() != sb.exercises.make_rng(11).random()  # other cases with the salt


def test_forbidden_call_fails_the_case_and_is_restored():
    def library(a, b, h0):
        return sb.linear_recurrence(a, b, h0)

    fb = sb.exercises.check_linear_recurrence(library, quiet=True)
    assert not fb.passed and "calls sb.linear_recurrence in library" in fb.message
    assert "which is the answer" in fb.message
    a = np.array([0.5, 0.5])
    assert sb.linear_recurrence(a, a, 1.0).tolist() == [1.0, 1.0]  # put back after the call

    def wrong_library(a, b, h0):  # a wrong answer is reported for what is wrong with it
        return sb.linear_recurrence(a, b, 0.0)

    fb = sb.exercises.check_linear_recurrence(wrong_library, quiet=True)
    assert not fb.passed and "got:" in fb.message and "which is the answer" not in fb.message
    with pytest.raises(ValueError, match="does not exist"):
        sb.exercises.grade("g", library, [], forbid=("numpy.no_such_function",))

"""The API reference and the generated pages, checked without building the book.

The extensions in ``book/_ext`` generate the API pages (``scanbook_api``), the build status page
(``scanbook_status``) and the instructor page's tables (``scanbook_course``) from the code; these
tests call their functions directly. ``tests/test_site.py`` checks the same things in a built
site (links from the docstrings to the chapters and back).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))

import scanbook_api as api_ext  # noqa: E402
import scanbook_course as course_ext  # noqa: E402
import scanbook_status as status_ext  # noqa: E402

API_PAGES = sorted((ROOT / "book" / "api").glob("*.rst"))
DIRECTIVE = re.compile(r"^\.\. scanbook-api:: (\S+)\n((?:   :\w+:.*\n)*)", re.MULTILINE)
LABELS = {
    1: "ch-serial",
    2: "ch-parallel",
    3: "ch-numba-cuda",
    4: "ch-cupy",
    5: "ch-backprop",
    6: "ch-ls-rnns",
    7: "ch-long-deps",
    8: "ch-lmu",
    9: "ch-deer",
    10: "ch-devices",
}

# Public objects in files the docs do not own whose docstring does not yet say
# "Defined in chapter N" (or, for a grader, "Chapter N, exercise K"). Remove a name once its
# docstring says it (nothing fails if it is left); a new public object missing the line fails.
KNOWN_WITHOUT_CHAPTER = {
    "scanbook.bench.grad.main",
    "scanbook.bench.report.main",
    "scanbook.bench.report.report",
    "scanbook.bench.smoke.Check",
    "scanbook.bench.smoke.run",
    "scanbook.course.assignments.main",
    "scanbook.course.grade.ExerciseResult",
    "scanbook.course.grade.NotebookResult",
    "scanbook.course.grade.find_reference",
    "scanbook.course.grade.main",
    "scanbook.exercises.ExerciseFailed",
    "scanbook.exercises.ch05.check_linear_recurrence_vjp",
    "scanbook.kernels.cupy_raw.channel_group",
    "scanbook.kernels.cupy_raw.serial_steps",
    "scanbook.kernels.cupy_raw.single_pass_items",
    "scanbook.kernels.cupy_raw.stream_add",
    "scanbook.kernels.cupy_raw.three_phase_blocks",
    "scanbook.kernels.cupy_raw.three_phase_slices",
    "scanbook.kernels.numba_cuda.recurrence.RecurrencePlan",
    "scanbook.kernels.numba_cuda.scans.BankLevel",
}


@pytest.fixture(scope="module")
def api():
    return api_ext.public_api()


def documented_modules() -> dict[str, str]:
    """``{module: page}`` for every ``scanbook-api`` directive of the API pages (``:recursive:``
    directives cover their submodules too, as the directive does)."""
    out = {}
    for page in API_PAGES:
        for name, options in DIRECTIVE.findall(page.read_text(encoding="utf-8")):
            out[name] = page.name + (" recursive" if ":recursive:" in options else "")
    return out


# -- the API pages cover the public API ----------------------------------------------------


def test_every_public_module_has_an_api_page(api):
    pages = documented_modules()
    recursive = [m for m, p in pages.items() if p.endswith("recursive")]
    missing = [
        m
        for m in api.modules
        if m not in pages and not any(m.startswith(r + ".") for r in recursive)
    ]
    assert not missing, f"public modules on no page of book/api/ (add a scanbook-api): {missing}"
    assert "scanbook" in pages and "scanbook.exercises" in pages


def test_every_public_name_appears_in_its_module_documentation(api):
    labels = api_ext.chapter_labels()
    assert len(api.entries) > 300, f"only {len(api.entries)} public names found"
    for module in api.modules:
        rst = "\n".join(api_ext.module_rst(api, module, labels))
        assert rst.startswith(f".. automodule:: {module}")
        for entry in api.by_module(module):
            short = entry.name.rsplit(".", 1)[1]
            if entry.kind == "module":
                assert f":mod:`{entry.canonical}`" in rst, entry.name
            elif entry.is_alias:
                assert f"* ``{short}``: :" in rst and f"`{entry.canonical}`" in rst, entry.name
            else:
                auto = api_ext.AUTO.get(entry.kind, "py:data")
                assert f".. {auto}:: {entry.name}\n" in rst + "\n", entry.name


def test_each_object_is_documented_once_and_aliases_point_at_it(api):
    canonical = [e.canonical for e in api.canonical() if e.kind != "module"]
    duplicates = sorted({c for c in canonical if canonical.count(c) > 1})
    assert not duplicates, f"documented twice: {duplicates}"
    documented = set(canonical) | set(api.modules)
    dangling = [e.name for e in api.entries if e.canonical not in documented]
    assert not dangling, f"re-exports whose original is documented nowhere: {dangling}"
    top = {e.name: e.canonical for e in api.by_module("scanbook")}
    assert top["scanbook.scan"] == "scanbook.algorithms.scan"
    assert top["scanbook.linear_recurrence"] == "scanbook.recurrence.linear_recurrence"
    assert api_ext.kind_of(api_ext.importlib.import_module("scanbook.ops").add, "add") == "data"


def test_design_api_is_documented(api):
    """The public API of DESIGN.md, by name."""
    names = set(api.names())
    expected = [
        "scanbook.linear_recurrence",
        "scanbook.linear_recurrence_vjp",
        "scanbook.available_backends",
        "scanbook.scan",
        "scanbook.ops.add",
        "scanbook.ops.maximum",
        "scanbook.ops.affine",
        "scanbook.jax.linear_recurrence",
        "scanbook.jax.matrix_linear_recurrence",
        "scanbook.lti.lmu",
        "scanbook.lti.discretize",
        "scanbook.lti.apply",
        "scanbook.deer.solve",
        "scanbook.deer.sequential",
        "scanbook.distributed.linear_recurrence",
    ]
    expected += [
        f"scanbook.models.{m}.{f}"
        for m in ("gilr", "ls_lstm", "sru", "qrnn", "min_gru", "min_lstm", "lstm", "gru")
        for f in ("init", "apply")
    ]
    assert not [n for n in expected if n not in names]
    graders = [n for n in names if n.startswith("scanbook.exercises.check_")]
    import scanbook as sb

    assert sorted(g.rsplit(".", 1)[1] for g in graders) == sorted(sb.exercises.GRADERS)


def test_public_objects_name_their_chapter(api):
    missing = sorted(
        e.canonical
        for e in api.canonical()
        if e.kind in ("function", "class", "exception") and not e.defined_in and not e.exercise
    )
    new = [m for m in missing if m not in KNOWN_WITHOUT_CHAPTER]
    assert not new, f'public objects whose docstring lacks "Defined in chapter N": {new}'


# -- chapter links --------------------------------------------------------------------------


def test_chapter_labels_are_the_notebooks_first_lines():
    assert api_ext.chapter_labels() == LABELS
    docs = api_ext.chapter_docs()
    assert sorted(docs) == list(range(1, 11))
    assert docs[5] == "chapters/05_backprop"


def test_linkify_links_defined_in_and_chapter_mentions():
    link = api_ext.linkify
    assert link("Defined in chapter 5.", LABELS) == "Defined in :ref:`chapter 5 <ch-backprop>`."
    assert link("see Chapter 10", LABELS) == "see :ref:`Chapter 10 <ch-devices>`"
    assert link("chapters 1 and 2", LABELS) == (
        "chapters :ref:`1 <ch-serial>` and :ref:`2 <ch-parallel>`"
    )
    assert (
        link("chapters 3-5", LABELS) == "chapters :ref:`3 <ch-numba-cuda>`-:ref:`5 <ch-backprop>`"
    )
    assert link("Chapter 2, exercise 3.", LABELS, {"ch2-ex3"}) == (
        ":ref:`Chapter 2, exercise 3 <ch2-ex3>`."
    )
    # no exercise label: the chapter
    assert link("Chapter 2, exercise 9.", LABELS, set()) == (
        ":ref:`Chapter 2, exercise 9 <ch-parallel>`."
    )


@pytest.mark.parametrize(
    "text",
    [
        "GPU Gems 3, chapter 39 (Harris, Sengupta and Owens)",  # another book
        "Defined in chapter 42.",  # not a chapter of this book
        "``chapter 4`` in code",  # inline code
        ":ref:`chapter 4 <ch-cupy>` already a link",  # a role's text
        "chapters 1 and 12",  # one of them is not a chapter
    ],
)
def test_linkify_leaves_other_mentions_alone(text):
    assert api_ext.linkify(text, LABELS, {"ch2-ex3"}) == text


def test_docstrings_become_valid_rst():
    assert api_ext.literal_suffixes("top-level ``def``s and ``x`` y") == (
        "top-level ``def``\\ s and ``x`` y"
    )
    two_lines = "``a =\n b``: the ``def``s"
    assert api_ext.literal_suffixes(two_lines) == "``a =\n b``: the ``def``\\ s"
    assert api_ext.absolute_refs(
        "see :mod:`.scans` and :func:`.plan`", "scanbook.kernels.numba_cuda.registry"
    ) == (
        "see :mod:`~scanbook.kernels.numba_cuda.scans` and "
        ":func:`~scanbook.kernels.numba_cuda.plan`"
    )
    assert api_ext.first_sentence("The ``a. b`` thing. Next.") == "The ``a. b`` thing"
    assert api_ext.plain_summary(
        "The same scan as :func:`~scanbook.jax.linear_recurrence`, *without* ``x``. More."
    ) == ("The same scan as linear_recurrence, without x")


def test_each_chapter_lists_what_it_defines(api):
    for chapter in range(1, 11):
        defined, graders = api_ext.chapter_entries(api, chapter)
        assert defined, f"chapter {chapter} defines no public object"
        assert all(chapter in e.defined_in and not e.is_alias for e in defined)
        assert all(e.exercise[0] == chapter for e in graders)
    defined, graders = api_ext.chapter_entries(api, 1)
    names = {e.canonical for e in defined}
    assert "scanbook.recurrence.linear_recurrence" in names
    assert "scanbook.serial.scan_loop" in names
    assert [e.canonical.rsplit(".", 1)[1] for e in graders][:2] == [
        "check_prefix_sum",
        "check_exclusive_scan",
    ]


# -- the status and instructor pages ---------------------------------------------------------


def test_results_table_reads_every_file(tmp_path):
    assert status_ext.results_table(tmp_path) == []
    (tmp_path / "nvidia-h200.json").write_text(
        json.dumps(
            {
                "benchmark": "gpu",
                "date": "2026-11-30T10:00:00+00:00",
                "gpu": {"gpu": "NVIDIA H200", "memory_bytes": 1},
                "records": [{}, {}, {}],
            }
        )
    )
    (tmp_path / "grad-x.json").write_text(
        json.dumps({"benchmark": "grad", "device": "NVIDIA A100", "records": []})
    )
    (tmp_path / "broken.json").write_text("{not json")
    rows = {r["file"]: r for r in status_ext.results_table(tmp_path)}
    assert rows["nvidia-h200.json"] == {
        "file": "nvidia-h200.json",
        "benchmark": "gpu",
        "device": "NVIDIA H200",
        "date": "2026-11-30T10:00:00+00:00",
        "records": "3",
    }
    assert rows["grad-x.json"]["device"] == "NVIDIA A100"
    assert rows["grad-x.json"]["date"] == "not recorded"
    assert rows["broken.json"]["benchmark"] == "unreadable"


def test_machine_facts_name_the_hardware():
    facts = dict(status_ext.machine_facts("cache"))
    for key in ("Processor", "CPU cores", "GPU", "Numba CUDA kernels", "Python", "Libraries"):
        assert facts.get(key), key
    assert facts["Notebook execution"] == "cache"
    import scanbook.backends as backends

    assert facts["GPU"] == (backends.gpu_name() or "none")


def test_exercise_table_covers_every_grader():
    docs = course_ext.grader_docs()
    rows = course_ext.exercise_rows(ROOT, docs)
    assert len(rows) >= 40
    labels = [ex.label for ex, _ in rows]
    assert len(labels) == len(set(labels))
    assert {ex.chapter for ex, _ in rows} == set(range(1, 11))
    used = {g for _, graders in rows for g in graders}
    assert not sorted(set(docs) - used), "graders that no exercise of the table calls"
    first = dict((ex.label, graders) for ex, graders in rows)
    assert first["ch1-ex1"] == ["check_prefix_sum"]
    text = course_ext.what_it_checks(docs["check_hillis_steele"])
    assert text.startswith("Grade ``fn(xs, combine) -> inclusive scan``")
    assert "exercise 1" not in text


def test_launch_links_use_the_repository():
    assert course_ext._repository(ROOT) == ("scanbook/parallel-scans", "main")


def test_exec_rows_tell_cache_from_this_build():
    start = 1_000_000.0
    metadata = {
        "chapters/01_serial_scans": {
            "exec_data": {"mtime": start - 3600, "runtime": 12.34, "succeeded": True}
        },
        "chapters/02_parallel_scans": {
            "exec_data": {"mtime": start + 5, "runtime": 40.0, "succeeded": False, "error": "X"}
        },
        "book/intro": {},
        "chapters/03_numba_cuda": {"exec_data": None},
    }
    rows = status_ext.exec_rows(metadata, start)
    assert [r["doc"] for r in rows] == ["chapters/01_serial_scans", "chapters/02_parallel_scans"]
    assert rows[0]["source"] == "from the cache" and rows[0]["seconds"] == "12.3"
    assert rows[0]["ok"] == "succeeded"
    assert rows[1]["source"] == "executed in this build" and rows[1]["ok"] == "failed (X)"

"""Graders for the exercises: run a reader's function on random cases and explain the first failure.

Defined in chapter 1 (the machinery); each chapter's graders live in ``exercises/chNN.py``.

Every grader takes the reader's function, calls it on a fixed, seeded list of cases (random
values that are never zero, lengths that include 0, 1 and non-powers of two), compares each
answer with the scanbook reference at a tolerance chosen from the dtype, prints one message
and returns a :class:`Feedback`, which is truthy when every case passed::

    import scanbook as sb

    def prefix_sum(xs):
        ...

    assert sb.exercises.check_prefix_sum(prefix_sum)  # in a notebook cell
    sb.exercises.check_prefix_sum(prefix_sum, raise_on_fail=True)  # in an autograder

The message names the first failing case: its inputs, the expected and the actual answer, what
differs, and a hint. Whatever the reader's function does is reported the same way: an exception
(with the line of the reader's code that raised it), a case that runs past its time limit
(10 s; :func:`set_time_limit`), an answer of the wrong shape, type or precision. What it prints
is captured and summarised in one line, and a change it makes to its inputs is noted.

The contract for a chapter's graders (adding chapter N edits no shared file):

* Write ``lib/scanbook/exercises/chNN.py`` (two digits: ``ch06.py``). This package imports every
  module named ``chNN`` when it is imported, and re-exports the names in its ``__all__``, so
  ``sb.exercises.check_x`` works with no other change.
* ``__all__`` lists exactly the module's graders; every name starts with ``check_`` and is
  unique across chapters (a clash fails at import, naming both modules).
* Import the machinery from ``._grading`` only (never from a sibling chapter): :class:`Case`,
  :class:`Feedback`, :func:`grade`, :func:`compare`, :func:`tolerance`, :func:`format_value`,
  :func:`make_rng`, :func:`random_values`, :func:`recurrence_cases`, :data:`AWKWARD_LENGTHS`,
  :func:`same`, :func:`is_numeric`. Import heavy libraries (jax, later chapters' modules)
  inside the graders, not at the top.
* A grader is ``check_x(fn, *, raise_on_fail=False, quiet=False) -> Feedback`` and returns
  ``grade("check_x", fn, cases, hint=..., diagnose=..., raise_on_fail=raise_on_fail,
  quiet=quiet)``. Its docstring names what it grades and "Chapter N, exercise k".
* Anything handed to the reader's function that counts calls is a fresh closure per call,
  with no public attribute exposing the inner function or the counter.

:data:`GRADERS` maps every grader's name to the function, :data:`CHAPTERS` every chapter
module's name to the module, both in chapter order (the tests run every grader through the same
robustness checks).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable
from types import ModuleType

from ._grading import (
    AWKWARD_LENGTHS,
    Case,
    ExerciseFailed,
    Feedback,
    GradingMode,
    compare,
    course_salt,
    format_value,
    grade,
    grading_mode,
    grading_salt,
    is_numeric,
    make_rng,
    random_values,
    recurrence_cases,
    same,
    set_time_limit,
    tolerance,
)

__all__ = [
    "AWKWARD_LENGTHS",
    "CHAPTERS",
    "Case",
    "ExerciseFailed",
    "Feedback",
    "GRADERS",
    "GradingMode",
    "compare",
    "course_salt",
    "discover",
    "format_value",
    "grade",
    "grading_mode",
    "grading_salt",
    "is_numeric",
    "make_rng",
    "random_values",
    "recurrence_cases",
    "same",
    "set_time_limit",
    "tolerance",
]

_CHAPTER_MODULE = re.compile(r"ch\d\d")


def discover(package: str, path) -> tuple[dict[str, ModuleType], dict[str, Callable]]:
    """Import every module ``chNN`` of ``package`` (found on ``path``) and collect its graders.

    Returns ``(chapters, graders)``: ``{"ch01": module, ...}`` and ``{"check_x": function, ...}``,
    both in chapter order. Raises ImportError for a module without ``__all__``, a name in it that
    is not ``check_*``, or a grader defined by two chapters. Defined in chapter 1.
    """
    found = sorted(
        info.name for info in pkgutil.iter_modules(path) if _CHAPTER_MODULE.fullmatch(info.name)
    )
    chapters: dict[str, ModuleType] = {}
    graders: dict[str, Callable] = {}
    owner: dict[str, str] = {}
    for name in found:
        module = importlib.import_module(f"{package}.{name}")
        exported = getattr(module, "__all__", None)
        if exported is None:
            raise ImportError(
                f'{package}.{name} must list its graders in __all__ (e.g. __all__ = ["check_x"])'
            )
        for grader in exported:
            if not grader.startswith("check_"):
                raise ImportError(
                    f"{package}.{name}.__all__ names {grader!r}: "
                    "a chapter module exports only graders, named check_*"
                )
            if grader in owner:
                raise ImportError(
                    f"{grader} is defined by both {package}.{owner[grader]} and "
                    f"{package}.{name}: rename one"
                )
            owner[grader] = name
            graders[grader] = getattr(module, grader)
        chapters[name] = module
    return chapters, graders


CHAPTERS, GRADERS = discover(__name__, __path__)
globals().update(GRADERS)
__all__ += list(GRADERS)

"""Course tooling: student notebooks and an autograder for the chapters' exercises.

Defined in chapter 1 (the layout of the exercises). In a chapter notebook each exercise with
code has, after its ``{exercise}`` block (and a ``{solution}`` dropdown for the prose answer):

* a code cell tagged ``solution`` and ``hide-input`` with ``metadata.scanbook.exercise =
  "chN-exK"``: the reference answer (top-level ``def``s and the lines they need);
* a code cell tagged ``grader`` with the same metadata: only lines
  ``assert sb.exercises.check_x(answer)``.

Cells tagged ``student-remove`` are left out of the student version.

* :mod:`scanbook.course.assignments` (``make assignments``) writes the student notebooks, the
  answers replaced by stubs that raise ``NotImplementedError``;
* :mod:`scanbook.course.grade` (``scanbook-grade``) grades handed-in notebooks with partial
  credit, hidden cases and hard time limits.
"""

__all__: list[str] = []  # the tools are modules: scanbook.course.assignments, .grade

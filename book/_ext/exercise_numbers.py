"""Number the exercises of each chapter from 1, prefixed by the chapter: "Exercise 2.3".

sphinx-exercise numbers exercises through Sphinx's numfig, which counts across the whole
book when the table of contents is not numbered (this book numbers its chapters in their
titles instead). After Sphinx has assigned the numbers, this extension renumbers the
``exercise`` entries of every chapter page ``chapters/NN_*`` as ``(N, k)``: the k-th exercise
of chapter N, in the order they appear, which is how the graders in ``scanbook.exercises``
name them ("Chapter 2, exercise 3"). Titles, solution headers and ``{numref}`` links all read
these numbers.
"""

from __future__ import annotations

import re

_CHAPTER = re.compile(r"(?:^|/)(\d+)_[^/]*$")


def _renumber(app, env):
    for docname, numbers in env.toc_fignumbers.items():
        match = _CHAPTER.search(docname)
        exercises = numbers.get("exercise")
        if not match or not exercises:
            continue
        chapter = int(match.group(1))
        numbers["exercise"] = {
            node_id: (chapter, k)
            for k, node_id in enumerate(sorted(exercises, key=exercises.get), start=1)
        }
    return []


def setup(app):
    # after the toctree collector (priority 500) has assigned the book-wide numbers
    app.connect("env-get-updated", _renumber, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}

"""The tables of the instructor page (``book/instructor.md``), generated from the sources.

* ``{scanbook-exercise-table}``: every exercise of every chapter (the ``chN-exK`` labels of
  the ``{exercise}`` blocks), the graders its ``grader`` cell calls (or, for a chapter not yet
  in the course format, the graders whose docstring says "Chapter N, exercise K"), and what
  each grader checks (the first paragraph of its docstring). An exercise with no grader is a
  pencil-and-paper one.
* ``{scanbook-launch-links}``: each chapter's Colab and Binder links, from the repository in
  ``_config.yml``.
* ``{scanbook-cli-help} MODULE``: the ``--help`` of a command-line module of the library, run
  at build time so that the page shows the options the code has (``:optional:`` shows nothing
  while the module does not exist).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from scanbook_status import MarkdownDirective
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

CHAPTER_FILE = re.compile(r"^(\d+)_[^/]*\.ipynb$")
EXERCISE_LABEL = re.compile(r"^:label:\s*(ch(\d+)-ex(\d+))\s*$", re.MULTILINE)
GRADER_CALL = re.compile(r"\bsb\.exercises\.(check_\w+)\s*\(|\bexercises\.(check_\w+)\s*\(")
EXERCISE_OF = re.compile(r"\bChapter\s+(\d+),\s+exercise\s+(\d+)\b")


@dataclass
class Exercise:
    chapter: int
    number: int
    label: str
    notebook: str
    graders: list[str] = field(default_factory=list)


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def exercises(root: Path) -> list[Exercise]:
    """Every ``{exercise}`` of ``root/chapters/*.ipynb`` with the graders its grader cell
    calls, in chapter and exercise order."""
    out: list[Exercise] = []
    for path in sorted((root / "chapters").glob("*.ipynb")):
        if not CHAPTER_FILE.match(path.name):
            continue
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        found: dict[str, Exercise] = {}
        for cell in cells:
            if cell.get("cell_type") == "markdown":
                for label, n, k in EXERCISE_LABEL.findall(_source(cell)):
                    found.setdefault(label, Exercise(int(n), int(k), label, path.name))
        for cell in cells:
            meta = cell.get("metadata", {})
            label = (meta.get("scanbook") or {}).get("exercise")
            if cell.get("cell_type") != "code" or "grader" not in meta.get("tags", []):
                continue
            if label in found:
                for a, b in GRADER_CALL.findall(_source(cell)):
                    if (a or b) not in found[label].graders:
                        found[label].graders.append(a or b)
        out += sorted(found.values(), key=lambda e: (e.chapter, e.number))
    return out


def grader_docs() -> dict[str, str]:
    """``{name: docstring}`` of every grader in ``scanbook.exercises.GRADERS``."""
    import inspect

    import scanbook as sb

    return {name: inspect.getdoc(fn) or "" for name, fn in sb.exercises.GRADERS.items()}


def what_it_checks(doc: str) -> str:
    """The first paragraph of a grader's docstring, on one line, without its exercise tag."""
    para = doc.strip().split("\n\n")[0]
    text = " ".join(line.strip() for line in para.splitlines())
    return EXERCISE_OF.sub("", text).strip().rstrip(".").strip() + "."


def exercise_rows(root: Path, docs: dict[str, str]) -> list[tuple[Exercise, list[str]]]:
    """Each exercise with its graders: from the grader cell, else from the graders'
    docstrings ("Chapter N, exercise K")."""
    by_tag: dict[tuple[int, int], list[str]] = {}
    for name, doc in docs.items():
        m = EXERCISE_OF.search(doc)
        if m:
            by_tag.setdefault((int(m.group(1)), int(m.group(2))), []).append(name)
    rows = []
    for ex in exercises(root):
        graders = ex.graders or by_tag.get((ex.chapter, ex.number), [])
        rows.append((ex, [g for g in graders if g in docs]))
    return rows


def _escape_cell(text: str) -> str:
    return text.replace("|", "\\|")


class ExerciseTable(MarkdownDirective):
    has_content = False

    def run(self):
        root = Path(self.env.srcdir)
        for path in (root / "chapters").glob("*.ipynb"):
            self.env.note_dependency(str(path))
        docs = grader_docs()
        labels = {}
        for path in sorted((root / "chapters").glob("*.ipynb")):
            cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
            m = re.search(r"^\s*\(([\w.:-]+)\)=", _source(cells[0]) if cells else "", re.M)
            if m:
                labels[path.name] = m.group(1)
        lines = [
            ":::{list-table}",
            ":header-rows: 1",
            ":widths: 10 10 25 55",
            "",
            "* - Chapter",
            "  - Exercise",
            "  - Grader",
            "  - What it checks",
        ]
        for ex, graders in exercise_rows(root, docs):
            label = labels.get(ex.notebook)
            chapter = f"{{ref}}`{ex.chapter} <{label}>`" if label else str(ex.chapter)
            lines.append(f"* - {chapter}")
            lines.append(f"  - {{ref}}`{ex.chapter}.{ex.number} <{ex.label}>`")
            if graders:
                names = (f"{{py:func}}`~scanbook.exercises.{g}`" for g in graders)
                lines.append("  - " + ", ".join(names))
                checks = (_escape_cell(what_it_checks(docs[g])) for g in graders)
                lines.append("  - " + " ".join(checks))
            else:
                lines.append("  - none")
                lines.append("  - Pencil and paper: the answer is in the solution on the site.")
        lines.append(":::")
        return self.parse(lines)


class LaunchLinks(MarkdownDirective):
    has_content = False

    def run(self):
        root = Path(self.env.srcdir)
        repo = _repository(root)
        if repo is None:
            raise self.error("scanbook-launch-links: _config.yml has no repository.url on GitHub")
        owner_repo, branch = repo
        lines = [":::{list-table}", ":header-rows: 1", ""]
        lines += ["* - Chapter", "  - Colab (GPU)", "  - Binder (CPU)"]
        for path in sorted((root / "chapters").glob("*.ipynb")):
            if not CHAPTER_FILE.match(path.name):
                continue
            rel = f"chapters/{path.name}"
            colab = f"https://colab.research.google.com/github/{owner_repo}/blob/{branch}/{rel}"
            binder = f"https://mybinder.org/v2/gh/{owner_repo}/{branch}?labpath={rel}"
            lines += [f"* - `{path.stem}`", f"  - [Colab]({colab})", f"  - [Binder]({binder})"]
        lines.append(":::")
        return self.parse(lines)


def _repository(root: Path) -> tuple[str, str] | None:
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    repo = config.get("repository") or {}
    m = re.match(r"https://github\.com/([^/]+/[^/]+?)(?:\.git)?/?$", repo.get("url", ""))
    return (m.group(1), repo.get("branch", "main")) if m else None


class CliHelp(SphinxDirective):
    required_arguments = 1
    option_spec = {"optional": directives.flag}

    def run(self):
        module = self.arguments[0]
        import importlib.util

        if importlib.util.find_spec(module.rsplit(".", 1)[0]) is None or _spec(module) is None:
            if "optional" in self.options:
                return []
            raise self.error(f"scanbook-cli-help: no module {module}")
        done = subprocess.run(
            [sys.executable, "-m", module, "--help"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**__import__("os").environ, "COLUMNS": "90"},
        )
        if done.returncode != 0:
            raise self.error(f"scanbook-cli-help: python -m {module} --help failed:\n{done.stderr}")
        text = done.stdout.rstrip()
        block = nodes.literal_block(text, text, language="text")
        return [block]


def _spec(module: str):
    import importlib.util

    try:
        return importlib.util.find_spec(module)
    except ModuleNotFoundError:
        return None


def setup(app):
    app.add_directive("scanbook-exercise-table", ExerciseTable)
    app.add_directive("scanbook-launch-links", LaunchLinks)
    app.add_directive("scanbook-cli-help", CliHelp)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}

"""The autograder: ``scanbook-grade NOTEBOOK ... [--json F] [--csv F] [--course-seed S]``.

For each handed-in notebook (also ``python -m scanbook.course.grade``), in a fresh Python
process of its own:

1. the imports of the chapter's first cells (see :func:`scanbook.course._notebook.setup_source`);
2. for each exercise with code, its ``solution`` cell(s), then every grader named in the
   exercise's ``grader`` cell, on the public cases of the book and on hidden cases drawn with
   the course seed (:func:`scanbook.exercises.grading_mode`; their data is never printed).
   Score = passed cases / all cases (partial credit).

An exercise that runs past ``--time-limit`` seconds (an endless loop in Python or in compiled
code) has its process killed and scores 0; the remaining exercises go on in a new process. A
case that prints more than ``--max-print`` characters, raises, or calls a library function that
is the answer fails. The exercises and their grader calls are taken from the book's chapter
(``--reference``, default ``chapters/NN_*.ipynb`` found by the chapter number), so a changed
grader cell in a submission changes nothing; only the answer cells come from the submission.
Works offline; needs only scanbook. Defined in chapter 1 (the exercises' layout).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ._notebook import Exercise, chapter_number, exercises, read, setup_source

__all__ = ["ExerciseResult", "NotebookResult", "find_reference", "grade_notebook", "main"]

DEFAULT_SEED = "scanbook"


@dataclass
class ExerciseResult:
    """The outcome of one exercise of one notebook: ``score = passed / total``."""

    exercise: str
    passed: int = 0
    total: int = 0
    message: str = ""
    graders: list = field(default_factory=list)

    @property
    def score(self) -> float:
        return self.passed / self.total if self.total else 0.0


@dataclass
class NotebookResult:
    notebook: str
    chapter: int | None
    exercises: list[ExerciseResult] = field(default_factory=list)
    reference: str | None = None

    @property
    def score(self) -> float:
        """The mean of the exercises' scores (each exercise weighs the same)."""
        return sum(e.score for e in self.exercises) / len(self.exercises) if self.exercises else 0.0

    def as_dict(self) -> dict:
        d = asdict(self)
        d["score"] = self.score
        for e, res in zip(d["exercises"], self.exercises, strict=True):
            e["score"] = res.score
        return d


def find_reference(chapter: int | None, search: list[Path]) -> Path | None:
    """The book's notebook of a chapter: ``DIR/NN_*.ipynb`` in the first folder that has one."""
    if chapter is None:
        return None
    for folder in search:
        hits = sorted(Path(folder).glob(f"{chapter:02d}_*.ipynb"))
        if hits:
            return hits[0]
    return None


def _default_search() -> list[Path]:
    here = Path(__file__).resolve()
    return [Path.cwd() / "chapters", here.parents[3] / "chapters"]


class _Run:
    """One worker process and the pipe it reports on."""

    def __init__(self, job: dict):
        read_fd, write_fd = os.pipe()
        self.stderr = tempfile.TemporaryFile()
        env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scanbook.course._worker", "--fd", str(write_fd)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
            pass_fds=(write_fd,),
            start_new_session=True,
            env=env,
        )
        os.close(write_fd)
        self.pipe = os.fdopen(read_fd, "r", encoding="utf-8")
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.pipe, selectors.EVENT_READ)
        self._buf = ""
        try:
            self.proc.stdin.write(json.dumps(job).encode())
            self.proc.stdin.close()
        except BrokenPipeError:
            pass

    def next_event(self, deadline: float) -> dict | None:
        """The next event, or ``None`` on a time-out or when the process ended without one."""
        while "\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sel.select(timeout=left):
                return None
            chunk = os.read(self.pipe.fileno(), 1 << 16).decode("utf-8", "replace")
            if not chunk:
                return None
            self._buf += chunk
        line, self._buf = self._buf.split("\n", 1)
        return json.loads(line)

    def stop(self) -> str:
        """Kill the process (and anything it started); returns the tail of its stderr."""
        with _quiet():
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.sel.close()
        self.pipe.close()
        self.stderr.seek(0)
        tail = self.stderr.read()[-800:].decode("utf-8", "replace").strip()
        self.stderr.close()
        return tail


class _quiet:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], ProcessLookupError | PermissionError)


def grade_notebook(
    path: str | Path,
    *,
    reference: str | Path | None = None,
    course_seed: str = DEFAULT_SEED,
    time_limit: float = 120.0,
    case_time_limit: float = 10.0,
    max_print: int = 100_000,
    search: list[Path] | None = None,
) -> NotebookResult:
    """Grade one handed-in notebook (see the module docstring). Never raises for a bad answer.

    Defined in chapter 1.
    """
    from scanbook.exercises import course_salt

    path = Path(path)
    submission = read(path)
    chapter = chapter_number(path, submission)
    search = search or _default_search()
    ref_path = Path(reference) if reference else find_reference(chapter, search)
    ref = read(ref_path) if ref_path else submission
    mine = {e.label: e for e in exercises(submission)}
    todo: list[Exercise] = []
    for e in exercises(ref):
        if e.calls:
            answers = mine[e.label].solutions if e.label in mine else []
            todo.append(Exercise(e.label, answers, e.calls))
    result = NotebookResult(str(path), chapter, reference=str(ref_path) if ref_path else None)
    base = {
        "setup": setup_source(ref),
        "salt": course_salt(course_seed),
        "case_time_limit": min(case_time_limit, time_limit),
        "max_print_chars": max_print,
    }
    done: dict[str, ExerciseResult] = {}
    replay: list[str] = []
    while len(done) < len(todo):
        remaining = [e for e in todo if e.label not in done]
        job = {
            **base,
            "replay": replay,
            "exercises": [
                {"label": e.label, "solutions": e.solutions, "calls": [asdict(c) for c in e.calls]}
                for e in remaining
            ],
        }
        run = _Run(job)
        current = None
        deadline = time.monotonic() + max(time_limit, 60.0)  # the imports (jax takes seconds)
        while True:
            event = run.next_event(deadline)
            if event is None:
                timed_out = time.monotonic() >= deadline
                tail = run.stop()
                label = current or remaining[0].label
                if current is None and not timed_out:  # died before the first exercise
                    why = f"the notebook's imports could not run: {tail[-300:]}"
                    for e in remaining:
                        done[e.label] = ExerciseResult(e.label, 0, 1, why)
                elif timed_out:
                    why = (
                        f"did not finish within {time_limit:g} s, the time limit of an exercise: "
                        "its process was stopped (a loop that never ends?)"
                    )
                    done[label] = ExerciseResult(label, 0, 1, why)
                else:
                    why = f"the Python process running it died: {tail[-300:] or 'no message'}"
                    done[label] = ExerciseResult(label, 0, 1, why)
                break
            kind = event["event"]
            if kind == "setup-failed":
                run.stop()
                for e in remaining:
                    why = f"the notebook's imports failed: {event['message']}"
                    done[e.label] = ExerciseResult(e.label, 0, 1, why)
                break
            if kind == "start":
                current = event["label"]
                deadline = time.monotonic() + time_limit
            elif kind == "result":
                label = event["label"]
                total = event["total"] or 1
                done[label] = ExerciseResult(
                    label, event["passed"], total, event["message"], event["graders"]
                )
                replay.extend(next(e for e in todo if e.label == label).solutions)
                current = None
            elif kind == "done":
                run.stop()
                break
    result.exercises = [done[e.label] for e in todo]
    return result


# -- reporting -------------------------------------------------------------------------------


def _first_line(message: str) -> str:
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    problem = next(
        (line for line in lines if line.startswith(("problem:", "your function raised"))), None
    )
    problem = " ".join(problem.split()) if problem else problem
    return f"{lines[0]}: {problem}" if problem and problem != lines[0] else lines[0]


def table(results: list[NotebookResult]) -> str:
    """The gradebook as text: one row per notebook and exercise, then a total per notebook."""
    rows = []
    for r in results:
        name = r.notebook
        for e in r.exercises:
            why = _first_line(e.message) if e.passed < e.total else ""
            rows.append((name, e.exercise, f"{e.passed}/{e.total}", f"{e.score:.2f}", why))
        rows.append((name, "total", "", f"{r.score:.2f}", ""))
    head = ("notebook", "exercise", "cases", "score", "first failure")
    widths = [max(len(str(x[i])) for x in [head, *rows]) for i in range(4)]
    lines = []
    for row in [head, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(row[:4], widths, strict=True)]
        lines.append(("  ".join(cells) + "  " + row[4]).rstrip())
    return "\n".join(lines)


def write_csv(results: list[NotebookResult], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["notebook", "chapter", "exercise", "passed", "total", "score", "message"])
        for r in results:
            for e in r.exercises:
                w.writerow(
                    [
                        r.notebook,
                        r.chapter,
                        e.exercise,
                        e.passed,
                        e.total,
                        f"{e.score:.4f}",
                        _first_line(e.message),
                    ]
                )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scanbook-grade",
        description="Grade handed-in chapter notebooks: partial credit per exercise, hidden "
        "cases from a course seed, a time limit per exercise.",
    )
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--csv", type=Path, help="write one row per notebook and exercise here")
    parser.add_argument(
        "--course-seed",
        default=os.environ.get("SCANBOOK_COURSE_SEED", DEFAULT_SEED),
        help="any string: draws the hidden cases (keep it secret; default: $SCANBOOK_COURSE_SEED)",
    )
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per exercise")
    parser.add_argument("--case-time-limit", type=float, default=10.0, help="seconds per case")
    parser.add_argument("--max-print", type=int, default=100_000, help="characters per case")
    parser.add_argument("--reference", type=Path, help="the book's notebook (one chapter only)")
    parser.add_argument("--quiet", action="store_true", help="no table on stdout")
    args = parser.parse_args(argv)
    if args.time_limit <= 0 or args.case_time_limit <= 0:
        parser.error("time limits must be positive")
    results = [
        grade_notebook(
            nb,
            reference=args.reference,
            course_seed=args.course_seed,
            time_limit=args.time_limit,
            case_time_limit=args.case_time_limit,
            max_print=args.max_print,
        )
        for nb in args.notebooks
    ]
    if not args.quiet:
        print(table(results))
    if args.json:
        args.json.write_text(json.dumps([r.as_dict() for r in results], indent=1) + "\n")
    if args.csv:
        write_csv(results, args.csv)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The autograder's worker process: runs one notebook's answers and graders, reports in JSON.

``python -m scanbook.course._worker --fd N`` reads one job (JSON) from stdin and writes one JSON
line per event to file descriptor ``N``: ``{"event": "start", "label": ...}`` before an
exercise, ``{"event": "result", ...}`` after it, ``{"event": "done"}`` at the end. Anything the
answers print goes nowhere (file descriptors 1 and 2 point at ``/dev/null``; Python-level
printing is captured and limited). The parent (:mod:`scanbook.course.grade`) enforces the time
limit of an exercise by killing this process. Defined in chapter 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import traceback

from ._notebook import GRADERS_NAME


def _short(text: str, limit: int = 600) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + " ..."


def _error_line(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    for f in reversed(frames):
        if f.filename.startswith("<answer"):
            where = f" (line {f.lineno} of the answer cell)"
            break
    return f"{type(exc).__name__}: {_short(str(exc), 300)}{where}"


class Worker:
    def __init__(self, job: dict, emit):
        from scanbook.exercises import _sandbox

        self.job, self.emit, self._sandbox = job, emit, _sandbox
        self.ns: dict = {"__name__": "__main__"}

    def _capture(self):
        return self._sandbox._Capture(limit=self.job["max_print_chars"])

    def exec_cell(self, text: str, name: str) -> str | None:
        """Run a cell's source in the namespace; ``None``, or why it failed."""
        capture = self._capture()
        try:
            code = compile(text, name, "exec")
            with contextlib.redirect_stdout(capture), contextlib.redirect_stderr(capture):
                exec(code, self.ns)
        except self._sandbox.OutputLimit:
            return f"the cell printed more than {self.job['max_print_chars']:,} characters"
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - the student's error is the feedback
            return _error_line(exc)
        return None

    def run(self) -> None:
        import scanbook.exercises as ex

        ex.set_time_limit(self.job["case_time_limit"])
        self.ns[GRADERS_NAME] = ex
        why = self.exec_cell(self.job["setup"], "<setup>")
        if why is not None:
            self.emit({"event": "setup-failed", "message": why})
            return
        for text in self.job.get("replay", []):
            self.exec_cell(text, "<answer (earlier exercise)>")
        for item in self.job["exercises"]:
            self.emit({"event": "start", "label": item["label"]})
            self.emit({"event": "result", **self.exercise(item, ex)})
        self.emit({"event": "done"})

    def exercise(self, item: dict, ex) -> dict:
        label = item["label"]
        graders = []
        base = {"label": label, "passed": 0, "total": 0, "graders": graders}
        if not item["solutions"]:
            return {**base, "message": f"no answer cell for {label} (a code cell tagged solution)"}
        for k, text in enumerate(item["solutions"]):
            why = self.exec_cell(text, f"<answer {label}>" if k == 0 else f"<answer {label} {k}>")
            if why is not None:
                return {**base, "message": f"the answer cell of {label} raised {why}"}
        first = None
        passed = total = 0
        for call in item["calls"]:
            result = self.grade_call(call, ex)
            graders.append(result)
            passed += result["passed"]
            total += result["total"]
            if first is None and result["message"]:
                first = result["message"]
        return {**base, "passed": passed, "total": total, "message": first or ""}

    def _run_call(self, call: dict, ex, **mode) -> tuple[int, int, str | None, bool]:
        """``(passed, total, first failure, timed out)`` of one grader call in a grading mode."""
        with ex.grading_mode(max_print_chars=self.job["max_print_chars"], **mode) as m:
            try:
                capture = self._capture()
                with contextlib.redirect_stdout(capture), contextlib.redirect_stderr(capture):
                    eval(compile(call["code"], "<grader>", "eval"), self.ns)
            except NameError as exc:
                return 0, 0, f"{call['answer']} is not defined ({exc})", False
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - e.g. a grader refusing the answer's type
                return 0, 0, f"the grader could not run: {_error_line(exc)}", m.timed_out
        passed = sum(r.cases_passed for r in m.records)
        total = sum(r.cases_total for r in m.records)
        failed = next((r.message for r in m.records if not r.passed), None)
        return passed, total, failed, m.timed_out

    def grade_call(self, call: dict, ex) -> dict:
        p1, t1, why1, slow = self._run_call(call, ex, salt=None, hidden=False)
        if slow or t1 == 0:  # hidden cases would only run out of time too (or not at all)
            p2, t2, why2 = 0, t1, None
        else:
            p2, t2, why2, _ = self._run_call(call, ex, salt=self.job["salt"], hidden=True)
        message = why1 or why2 or ""
        if slow and not why1:
            message = "a case ran out of time"
        return {
            "grader": call["grader"],
            "answer": call["answer"],
            "public": [p1, t1],
            "hidden": [p2, t2],
            "passed": p1 + p2,
            "total": t1 + t2 if t1 else 1,  # a grader that could not run counts as one case
            "message": message,
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fd", type=int, required=True)
    args = parser.parse_args()
    out = os.fdopen(args.fd, "w", buffering=1, encoding="utf-8")

    def emit(event: dict) -> None:
        out.write(json.dumps(event) + "\n")
        out.flush()

    job = json.loads(sys.stdin.read())
    devnull = os.open(os.devnull, os.O_WRONLY)  # printing from C code or threads goes nowhere
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    Worker(job, emit).run()
    out.close()
    os._exit(0)  # do not wait for threads an answer may have left running


if __name__ == "__main__":
    main()

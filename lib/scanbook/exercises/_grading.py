"""The grading machinery, once: cases, comparison, the result, and :func:`grade`.

Defined in chapter 1. Every chapter's graders (``exercises/chNN.py``) build a list of
:class:`Case` (from :func:`make_rng`, :func:`random_values`, :data:`AWKWARD_LENGTHS`) and return
``grade("check_name", fn, cases, hint=..., raise_on_fail=raise_on_fail, quiet=quiet)``.

:func:`grade` calls ``fn(*case.args, **case.kwargs)`` on a deep copy of the arguments, under a
time limit, with its printing captured, and compares the answer with ``case.expected`` using
:func:`compare` (or a ``compare=`` function of the grader's own, which returns ``None`` on a
match and a sentence saying what differs otherwise). A ``diagnose`` function can recognise a
common mistake from the wrong answer and return a specific hint. Whatever the reader's function
does (raise, hang, print megabytes, return something of the wrong shape or type, change its
inputs), the grader answers with a :class:`Feedback`; only ``KeyboardInterrupt`` passes through.

For courses (``scanbook.course``), :func:`grading_mode` switches every grader to run all of its
cases and record ``passed / total`` (partial credit), mixes a course salt into every
:func:`make_rng` seed (hidden cases no reader has seen) and, for those, reports a failure without
its inputs or the expected answer. ``grade(..., forbid=("numpy.cumsum",))`` names library
functions that *are* the answer: calling one during the reader's function fails the case.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy as _copy
import hashlib
import html as _html
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _sandbox
from ._compare import _describe, compare, dtype_problem, format_value, is_numeric, same, tolerance

__all__ = [
    "AWKWARD_LENGTHS",
    "LINEAR_RECURRENCE_FUNCTIONS",
    "Case",
    "ExerciseFailed",
    "Feedback",
    "GradingMode",
    "compare",
    "course_salt",
    "counting_floats",
    "dtype_problem",
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

#: Lengths every sequence grader tries: empty, one element, powers of two and awkward sizes.
AWKWARD_LENGTHS: tuple[int, ...] = (0, 1, 2, 3, 5, 8, 13, 16, 31, 100)

#: The library's serial linear recurrences: ``forbid=`` for an exercise whose answer they are.
LINEAR_RECURRENCE_FUNCTIONS: tuple[str, ...] = (
    "scanbook.linear_recurrence",
    "scanbook.recurrence.linear_recurrence",
    "scanbook.serial.linear_recurrence_loop",
    "scanbook.serial.linear_recurrence_numpy",
    "scanbook.serial.linear_recurrence_numba",
)

#: Seconds one case may take before it counts as a failure (see :func:`set_time_limit`).
DEFAULT_TIME_LIMIT: float = 10.0


def set_time_limit(seconds: float | None) -> float | None:
    """Set the time limit of one case for every grader (``None``: no limit); returns the old one.

    A case that overruns is reported as a failure. Defined in chapter 1.
    """
    global DEFAULT_TIME_LIMIT
    if seconds is not None and not (isinstance(seconds, int | float) and seconds > 0):
        raise ValueError(f"seconds must be a positive number or None; got {seconds!r}")
    old, DEFAULT_TIME_LIMIT = DEFAULT_TIME_LIMIT, seconds
    return old


# -- the result ------------------------------------------------------------------------------


class ExerciseFailed(AssertionError):
    """Raised by a grader called with ``raise_on_fail=True`` when a case fails."""


@dataclass(frozen=True)
class Feedback:
    """The outcome of a grader: ``passed`` and a human-readable ``message``.

    Truthy exactly when the answer passed, so ``assert check_x(fn)`` works in a notebook.
    Defined in chapter 1.
    """

    passed: bool
    message: str
    exercise: str = ""
    cases_run: int = 0
    cases_passed: int = 0
    cases_total: int = 0

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return self.message

    def _repr_html_(self) -> str:
        colour, bg = ("#1a7f37", "#e6f4ea") if self.passed else ("#b3261e", "#fdecea")
        body = _html.escape(self.message)
        return (
            f'<pre style="border-left: 4px solid {colour}; background: {bg}; '
            f'padding: 0.5em 0.8em; white-space: pre-wrap;">{body}</pre>'
        )


@dataclass
class Case:
    """One test case: ``fn(*args, **kwargs)`` should return (approximately) ``expected``.

    Attributes:
        label: how the message names the case (``"length 5, float64"``).
        args: positional arguments for the reader's function (deep-copied before the call).
        expected: the reference answer.
        kwargs: keyword arguments.
        show: ``{name: value}`` shown as the inputs in a failure message (default: the args).
        rtol, atol: the tolerance (default: from the dtype of ``expected``, see :func:`tolerance`).
        time_limit: seconds this case may take (default: the graders' limit, 10 s).

    Defined in chapter 1.
    """

    label: str
    args: tuple
    expected: Any
    kwargs: dict = field(default_factory=dict)
    show: dict | None = None
    rtol: float | None = None
    atol: float | None = None
    time_limit: float | None = None


# -- grading mode (courses) ------------------------------------------------------------------


@dataclass
class GradingMode:
    """How graders behave inside :func:`grading_mode` (set by the course autograder).

    Attributes:
        salt: mixed into every :func:`make_rng` seed, so the cases are new ones (``None``: the
            public cases of the book).
        hidden: failure messages name the case but not its inputs, the expected value or the
            answer (hidden cases must stay hidden).
        run_all: run every case and count the passes (partial credit) instead of stopping at
            the first failure.
        max_print_chars: a case whose call prints more than this fails (``None``: no limit).
        records: every :class:`Feedback` returned by a grader in this mode, in order.
        timed_out: set when a case ran out of time (the grader's later cases then fail
            without running: a loop that never ends would cost the limit on every case).

    Defined in chapter 1.
    """

    salt: int | None = None
    hidden: bool = False
    run_all: bool = True
    max_print_chars: int | None = None
    records: list = field(default_factory=list)
    timed_out: bool = False


_MODE: contextvars.ContextVar[GradingMode | None] = contextvars.ContextVar(
    "scanbook_grading_mode", default=None
)


@contextlib.contextmanager
def grading_mode(
    *,
    salt: int | None = None,
    hidden: bool = False,
    run_all: bool = True,
    max_print_chars: int | None = None,
) -> Iterator[GradingMode]:
    """Within the block every grader runs in :class:`GradingMode` (partial credit, hidden cases).

    ``with grading_mode(salt=course_salt("fall-2026"), hidden=True) as mode: check_x(fn)``;
    afterwards ``mode.records`` holds the :class:`Feedback` of each grader called, with
    ``cases_passed`` and ``cases_total``. Defined in chapter 1.
    """
    if salt is not None and not (isinstance(salt, int) and salt >= 0):
        raise ValueError(f"salt must be a non-negative int or None; got {salt!r}")
    mode = GradingMode(salt, hidden, run_all, max_print_chars)
    token = _MODE.set(mode)
    try:
        yield mode
    finally:
        _MODE.reset(token)


def grading_salt() -> int | None:
    """The salt of the active :func:`grading_mode` (``None`` outside one, or for public cases).

    A grader that caches its cases keys the cache on it. Defined in chapter 1.
    """
    mode = _MODE.get()
    return None if mode is None else mode.salt


def course_salt(seed: str | int) -> int:
    """A salt for :func:`grading_mode` from a course seed (any string or int), stable across runs.

    Defined in chapter 1.
    """
    digest = hashlib.sha256(f"scanbook-course:{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


# -- random inputs ---------------------------------------------------------------------------


def make_rng(seed: int = 0) -> np.random.Generator:
    """The seeded generator every grader uses, so a failing case is the same on every run.

    Inside :func:`grading_mode` with a salt, the salt is mixed into the seed: the same grader
    then draws other (hidden) cases, the same ones for every submission. Defined in chapter 1.
    """
    salt = grading_salt()
    if salt is None:
        return np.random.default_rng(seed)
    return np.random.default_rng([int(seed) % 2**63, salt])


def random_values(
    rng: np.random.Generator,
    shape: int | tuple[int, ...],
    *,
    dtype=np.float64,
    low: float = 0.5,
    high: float = 2.0,
    signed: bool = True,
) -> np.ndarray:
    """Random numbers that are never zero: magnitude in ``[low, high)``, a random sign.

    Integer dtypes get integers in ``[max(1, low), high]`` with a random sign. Zeros hide
    mistakes (``0 * h`` forgets ``h``), so graders never feed them. Defined in chapter 1.
    """
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        mag = rng.integers(max(1, int(low)), max(2, int(high)) + 1, size=shape)
    else:
        mag = rng.uniform(low, high, size=shape)
    if signed:
        mag = mag * rng.choice(np.array([-1, 1]), size=shape)
    return np.asarray(mag).astype(dtype)


def recurrence_cases(seed: int, lengths: Sequence[int]) -> list[Case]:
    """Cases ``(a, b, h0)`` of the scalar recurrence ``h[t] = a[t] h[t-1] + b[t]``, one per length.

    Decays ``0.5 <= |a| < 1``; length 31 is float32 (at float32's tolerance), the others
    float64; the expected ``h`` is the float64 Python loop. Defined in chapter 1.
    """
    from .. import serial

    rng = make_rng(seed)
    cases = []
    for n in lengths:
        dtype = np.float32 if n == 31 else np.float64
        a = random_values(rng, n, low=0.5, high=1.0, dtype=dtype)
        b = random_values(rng, n, dtype=dtype)
        h0 = dtype(random_values(rng, ()))
        expected = np.array(
            serial.linear_recurrence_loop(a.astype(np.float64), b.astype(np.float64), float(h0)),
            dtype=np.float64,
        ).reshape(n)
        rtol, atol = tolerance(dtype)
        cases.append(
            Case(
                f"T={n}, {np.dtype(dtype).name}",
                (a, b, h0),
                expected,
                show={"a": a, "b": b, "h0": h0},
                rtol=rtol,
                atol=atol * 10,
            )
        )
    return cases


# -- reporting ------------------------------------------------------------------------------


def _finish(feedback: Feedback, raise_on_fail: bool, quiet: bool) -> Feedback:
    mode = _MODE.get()
    if mode is not None:
        mode.records.append(feedback)
    if not quiet:
        print(feedback.message)
    if raise_on_fail and not feedback.passed:
        raise ExerciseFailed(feedback.message)
    return feedback


# -- running the cases -----------------------------------------------------------------------


def _arg_names(case: Case, n_args: int) -> list[str]:
    shown = list(case.show) if case.show is not None else []
    names = shown if len(shown) == n_args else [f"argument {i + 1}" for i in range(n_args)]
    return names + list(case.kwargs)


def _judge(got, case: Case, compare_fn, diagnose) -> tuple[str | None, str | None, str]:
    """``(why, specific_hint, got_shown)``: runs inside the sandbox, since comparing and showing
    the answer may run the reader's code (``__array__``, ``__eq__``, ``__len__``, ``__repr__``)."""
    with warnings.catch_warnings():  # casting the reader's answer may warn: the message says it
        warnings.simplefilter("ignore")
        why, specific = _judge_quietly(got, case, compare_fn, diagnose)
        return why, specific, ("" if why is None else format_value(got))


def _judge_quietly(got, case: Case, compare_fn, diagnose) -> tuple[str | None, str | None]:
    try:
        if compare_fn is not None:
            why = compare_fn(got, case.expected, case)
        else:
            why = compare(got, case.expected, rtol=case.rtol, atol=case.atol)
    except Exception as exc:  # noqa: BLE001 - a wrong type or shape the grader did not foresee
        why = (
            f"your answer ({_describe(got)}) could not be checked: "
            f"{type(exc).__name__}: {_sandbox.safe_str(exc)}"
        )
    if why is None:
        return None, None
    try:
        specific = diagnose(case, got) if diagnose is not None else None
    except Exception:  # noqa: BLE001 - no specific hint for an answer of an unforeseen kind
        specific = None
    return why, specific


_FORBIDDEN = "\0forbidden\0"  # marks a right answer that called the library: reported last


def _run_case(
    name: str,
    fn: Callable,
    case: Case,
    k: int,
    n: int,
    *,
    hint: str,
    compare_fn,
    diagnose,
    time_limit: float | None,
    forbid: Sequence[str],
    mode: GradingMode | None,
) -> tuple[str | None, list[str]]:
    """Run one case: ``(failure message or None, notes)``."""
    hidden = mode is not None and mode.hidden
    args = _copy.deepcopy(case.args)
    kwargs = _copy.deepcopy(case.kwargs)
    if hidden:
        head = f"✗ {name}: hidden case {k} of {n} ({case.label}) failed\n"
    else:
        shown = case.show if case.show is not None else {f"arg{i}": a for i, a in enumerate(args)}
        inputs = "\n".join(f"    {key} = {format_value(v)}" for key, v in shown.items())
        head = (
            f"✗ {name}: case {k} of {n} ({case.label}) failed\n  inputs:\n{inputs}\n"
            f"  expected: {format_value(case.expected)}\n"
        )
    limit = case.time_limit or time_limit or DEFAULT_TIME_LIMIT
    print_limit = None if mode is None else mode.max_print_chars
    with _sandbox.forbidding(forbid) as forbidden:
        out = _sandbox.call(fn, args, kwargs, limit, print_limit=print_limit)
    extra = []
    if out.printed is not None and out.printed.chars:
        extra.append(f"  printed:  {out.printed.summary(hidden=hidden)}")
    changed = (
        None
        if hidden
        else _sandbox.changed_inputs(
            (*case.args, *case.kwargs.values()),
            (*args, *(kwargs.get(key) for key in case.kwargs)),
            _arg_names(case, len(case.args)),
        )
    )
    if changed:
        extra.append(
            f"  note:     your function changed its input {changed}; the grader passed a "
            "copy, but a caller may not expect its data to change"
        )
    tail = "".join(f"\n{line}" for line in extra)
    hint_line = f"\n  hint: {hint}" if hint and not hidden else ""
    if out.timed_out:
        msg = (
            f"{head}  problem:  your function did not finish within {limit:g} s, the time "
            "limit of one case: look for a loop that never ends or work that grows too fast"
        )
        if mode is not None:
            mode.timed_out = True
        return msg + hint_line + tail, extra
    if isinstance(out.error, _sandbox.OutputLimit):
        msg = (
            f"{head}  problem:  your function printed more than {print_limit:,} characters "
            "(the limit of one case): remove the printing from the function"
        )
        return msg + tail, extra
    if out.error is not None:
        exc = out.error
        text = _sandbox.safe_str(exc)
        if hidden and len(text) > 200:
            text = text[:200] + " ..."
        msg = (
            f"{head}  your function raised {type(exc).__name__}: {text}{_sandbox.where_raised(exc)}"
        )
        return msg + hint_line + tail, extra
    got = out.value
    judged = _sandbox.call(_judge, (got, case, compare_fn, diagnose), {}, limit)
    why, specific, shown_got = None, None, f"<{type(got).__name__} object>"
    if judged.timed_out:
        why = f"checking your answer ({type(got).__name__}) took over {limit:g} s"
    elif judged.error is not None:  # only if a grader's own compare fails very oddly
        err = judged.error
        why = f"your answer could not be checked: {type(err).__name__}: " + (_sandbox.safe_str(err))
    else:
        why, specific, shown_got = judged.value
    if why is None and forbidden:
        msg = (
            f"{head}  problem:  your function calls {forbidden[0]}, which is the answer: the "
            "exercise asks you to write it yourself"
        )
        return _FORBIDDEN + msg + tail, extra
    if why is None:
        return None, extra
    if hidden:
        return f"{head}  problem:  the answer differs from the reference{tail}", extra
    msg = f"{head}  got:      {shown_got}\n  problem:  {why}"
    if specific:
        msg += f"\n  hint: {specific}"
    elif hint:
        msg += f"\n  hint: {hint}"
    return msg + tail, extra


def grade(
    name: str,
    fn: Callable,
    cases: Sequence[Case],
    *,
    hint: str = "",
    compare: Callable[[Any, Any, Case], str | None] | None = None,
    diagnose: Callable[[Case, Any], str | None] | None = None,
    raise_on_fail: bool = False,
    quiet: bool = False,
    time_limit: float | None = None,
    forbid: Sequence[str] = (),
) -> Feedback:
    """Run ``fn`` on every case, stop at the first failure, and report it.

    Args:
        name: the grader's name, used in the message (``"check_prefix_sum"``).
        fn: the reader's function.
        cases: the cases, in the order they are tried (put the simplest first).
        hint: a general hint appended to a failure message.
        compare: ``compare(got, expected, case) -> None | reason``; default :func:`compare`
            at the case's tolerance.
        diagnose: ``diagnose(case, got) -> None | hint``: recognise a typical mistake.
        raise_on_fail: raise :class:`ExerciseFailed` instead of returning a failed result.
        quiet: do not print the message.
        time_limit: seconds per case (default: ``case.time_limit``, else the graders' limit,
            see :func:`set_time_limit`). A case over its limit fails.
        forbid: dotted names of callables that are the answer (``"scanbook.linear_recurrence"``,
            ``"numpy.cumsum"``): they are watched while ``fn`` runs, and a case whose answer is
            right but came from one of them fails with "calls sb.linear_recurrence, which is
            the answer" (reported after any other failure, whose message says more). A name
            imported under another name before the call (``from numpy import cumsum``) is not
            seen.

    Printing by ``fn`` is captured (one summarising line in the message), and a change ``fn``
    makes to its arguments is reported (the grader passes copies; the answer can still pass).
    Inside :func:`grading_mode` every case runs (the message is the first failure's, with the
    count of passed cases) and hidden cases are reported without their data.
    Defined in chapter 1.
    """
    mode = _MODE.get()
    for dotted in forbid:  # a misspelt name is the grader's bug: say so before any case runs
        _sandbox.resolve(dotted)
    if not callable(fn):
        fb = Feedback(
            False,
            f"✗ {name}: expected a function, got {type(fn).__name__}",
            name,
            cases_total=len(cases),
        )
        return _finish(fb, raise_on_fail, quiet)
    run_all = mode is not None and mode.run_all
    notes: dict[str, str] = {}
    failures: list[str] = []
    forbidden: list[str] = []
    passed = 0
    for k, case in enumerate(cases, start=1):
        if run_all and mode.timed_out and failures:
            failures.append(f"✗ {name}: case {k} not run (an earlier case ran out of time)")
            continue
        failure, extra = _run_case(
            name,
            fn,
            case,
            k,
            len(cases),
            hint=hint,
            compare_fn=compare,
            diagnose=diagnose,
            time_limit=time_limit,
            forbid=forbid,
            mode=mode,
        )
        if failure is not None and failure.startswith(_FORBIDDEN):
            forbidden.append(failure[len(_FORBIDDEN) :])  # later cases may say more
            continue
        if failure is not None:
            failures.append(failure)
            if not run_all:
                fb = Feedback(False, failure, name, k, passed, len(cases))
                return _finish(fb, raise_on_fail, quiet)
            continue
        passed += 1
        for line in extra:  # keep the first of each kind of note for the success message
            notes.setdefault(line.split(":")[0], f"{line} (case {k}, {case.label})")
    failures += forbidden
    if failures:
        msg = f"{failures[0]}\n  ({passed} of {len(cases)} cases passed)"
        fb = Feedback(False, msg, name, len(cases), passed, len(cases))
        return _finish(fb, raise_on_fail, quiet)
    span = cases[0].label if len(cases) == 1 else f"from {cases[0].label} to {cases[-1].label}"
    kind = "hidden cases" if mode is not None and mode.hidden else "cases"
    msg = f"✓ {name}: all {len(cases)} {kind} passed ({span})" if cases else f"✓ {name}: no cases"
    msg += "".join(f"\n{line}" for line in notes.values())
    fb = Feedback(True, msg, name, len(cases), len(cases), len(cases))
    return _finish(fb, raise_on_fail, quiet)


def counting_floats(*arrays) -> tuple[list[np.ndarray], list[int]]:
    """Copies of ``arrays`` as object arrays of floats that count the multiplications made with
    them: ``(arrays, count)``, with ``count[0]`` the number so far (fresh on every call).

    A grader passes these to a student's function to check its structure (a loop makes ``T``
    multiplications, a three-phase scan more) where a library call would not count at all.
    Defined in chapter 2.
    """
    count = [0]

    class Counted(float):
        def __mul__(self, other):
            count[0] += 1
            return Counted(float(self) * float(other))

        __rmul__ = __mul__

        def __add__(self, other):
            return Counted(float(self) + float(other))

        __radd__ = __add__

    out = []
    for x in arrays:
        x = np.asarray(x, dtype=np.float64)
        arr = np.empty(x.shape, dtype=object)
        arr.flat[:] = [Counted(v) for v in x.ravel()]
        out.append(arr)
    return out, count

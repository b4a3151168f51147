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
"""

from __future__ import annotations

import copy as _copy
import html as _html
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _sandbox

__all__ = [
    "AWKWARD_LENGTHS",
    "Case",
    "ExerciseFailed",
    "Feedback",
    "compare",
    "counting_floats",
    "format_value",
    "grade",
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


# -- random inputs ---------------------------------------------------------------------------


def make_rng(seed: int = 0) -> np.random.Generator:
    """The seeded generator every grader uses, so a failing case is the same on every run.

    Defined in chapter 1.
    """
    return np.random.default_rng(seed)


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


# -- comparing -------------------------------------------------------------------------------


def tolerance(dtype) -> tuple[float, float]:
    """``(rtol, atol)`` for comparing answers of this dtype: exact for integers.

    Defined in chapter 1.
    """
    dtype = np.dtype(dtype)
    if dtype.kind in "biu":
        return 0.0, 0.0
    if dtype in (np.dtype(np.float16),):
        return 1e-2, 1e-2
    if dtype in (np.dtype(np.float32), np.dtype(np.complex64)):
        return 1e-4, 1e-5
    return 1e-9, 1e-12


def _as_array(x) -> np.ndarray | None:
    """``np.asarray(x)`` when ``x`` is numbers; ``None`` otherwise (or when converting fails)."""
    if isinstance(x, str | bytes):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = np.asarray(x)
    except Exception:  # noqa: BLE001 - ragged lists, an __array__ that raises
        return None
    return arr if arr.dtype.kind in "biufc" else None


def is_numeric(x) -> bool:
    """Is ``x`` a number or an array (or nested list) of numbers? Never raises.

    Defined in chapter 1.
    """
    return _as_array(x) is not None


def _describe(x) -> str:
    """The type of ``x`` and, when it cannot be made an array, why not."""
    kind = type(x).__name__
    if isinstance(x, str | bytes | list | tuple | dict) or x is None:
        return kind
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            np.asarray(x)
    except Exception as exc:  # noqa: BLE001
        return f"{kind} (converting it to an array raised {type(exc).__name__}: " + (
            f"{_sandbox.safe_str(exc)})"
        )
    return kind


def format_value(x, *, max_items: int = 12, precision: int = 4) -> str:
    """A short, readable rendering of an input or an answer (long arrays are elided).

    Never raises: an object whose ``repr`` fails is shown by its type. Defined in chapter 1.
    """
    try:
        return _format(x, max_items, precision)
    except Exception:  # noqa: BLE001
        return f"<{type(x).__name__} object>"


def _format(x, max_items: int, precision: int) -> str:
    if isinstance(x, tuple):
        return "(" + ", ".join(format_value(v, max_items=max_items) for v in x) + ")"
    if isinstance(x, list) and x and not is_numeric(x):
        items = [format_value(v, max_items=max_items) for v in x[:max_items]]
        more = f", ... ({len(x)} items)" if len(x) > max_items else ""
        return "[" + ", ".join(items) + more + "]"
    arr = _as_array(x)
    if arr is not None:
        if arr.ndim == 0:
            v = arr.item()
            return f"{v:.{precision}g}" if isinstance(v, float) else repr(v)
        with np.printoptions(precision=precision, threshold=max_items, edgeitems=4):
            text = np.array2string(arr, separator=", ")
        kind = type(x).__name__
        extra = f" ({kind}, shape {arr.shape}, {arr.dtype})" if arr.size > max_items else ""
        return " ".join(text.split()) + extra
    text = repr(x)
    return text if len(text) <= 200 else text[:200] + " ..."


def _pair(e, g) -> str:
    """``expected E, got G`` with enough digits that E and G look different."""
    for digits in (4, 8, 17):
        fe, fg = format_value(e, precision=digits), format_value(g, precision=digits)
        if fe != fg:
            break
    return f"expected {fe}, got {fg}"


def _precision_note(g: np.ndarray, exp: np.ndarray, bad: np.ndarray) -> str | None:
    """A sentence when the wrong values are right up to the precision of a dtype."""
    if g.dtype.kind in "biu" and exp.dtype.kind in "fc":
        return (
            f"your answer has the integer dtype {g.dtype}, so fractions are lost: "
            "make the result a float array"
        )
    if g.dtype.kind not in "fc" or exp.dtype.kind not in "fc":
        return None
    gb = g[bad].astype(np.complex128 if g.dtype.kind == "c" else np.float64)
    eb = exp[bad]
    with np.errstate(all="ignore"):
        rel = np.max(np.abs(gb - eb) / np.maximum(np.abs(eb), 1e-30))
    if not np.isfinite(rel) or rel > 5e-3:
        return None
    if np.finfo(g.dtype).eps > np.finfo(exp.dtype).eps:
        return (
            f"the values are right to {g.dtype} precision (relative error {rel:.1g}), but your "
            f"answer is {g.dtype}: the exercise expects {exp.dtype} (compute and return "
            f"{exp.dtype})"
        )
    return (
        f"the values are right to about {max(1, int(-math.log10(max(rel, 1e-300))))} digits "
        f"only (relative error {rel:.1g}): precision is lost somewhere (a float32 or float16 "
        "array or conversion inside the function?)"
    )


def compare(got, expected, *, rtol: float | None = None, atol: float | None = None) -> str | None:
    """``None`` when ``got`` matches ``expected``; otherwise a sentence saying what differs.

    Numbers, lists and arrays are compared as arrays (shape first, then values within
    ``rtol``/``atol``, NaNs equal to NaNs); tuples (pairs such as ``(a, b)``) item by item;
    anything else (strings) with ``==``. A value that is right only to a lower precision is
    reported as a dtype/precision problem. Defined in chapter 1.
    """
    if isinstance(expected, tuple):
        if not isinstance(got, tuple | list) or len(got) != len(expected):
            return f"expected a tuple of {len(expected)} items, got {type(got).__name__}" + (
                f" of {len(got)}" if isinstance(got, tuple | list) else ""
            )
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            why = compare(g, e, rtol=rtol, atol=atol)
            if why is not None:
                return f"item {i} of the tuple: {why}"
        return None
    if is_numeric(expected):
        exp = np.asarray(expected)
        if got is None:
            return "got None: did the function forget to `return` its result?"
        g = _as_array(got)
        if g is None:
            return f"expected numbers, got {_describe(got)}"
        if g.shape != exp.shape:
            return f"expected shape {exp.shape}, got shape {g.shape}"
        if exp.size == 0:
            return None
        r, a = tolerance(exp.dtype)
        r = r if rtol is None else rtol
        a = a if atol is None else atol
        with np.errstate(invalid="ignore", over="ignore"):
            if exp.dtype.kind in "biu" and g.dtype.kind in "biu":
                ok = np.asarray(g == exp)
            else:
                ok = np.isclose(
                    g.astype(np.complex128 if g.dtype.kind == "c" else np.float64),
                    exp,
                    rtol=r,
                    atol=a,
                    equal_nan=True,
                )
        if np.all(ok):
            return None
        bad = ~np.asarray(ok)
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        note = _precision_note(g, exp, bad)
        note = f"; {note}" if note else ""
        if exp.ndim == 0:
            return _pair(exp, g) + note
        where = first[0] if len(first) == 1 else first
        return (
            f"{int(bad.sum())} of {exp.size} values differ; the first at index {where}: "
            f"{_pair(exp[first], g[first])}{note}"
        )
    if isinstance(expected, list):
        if not isinstance(got, list | tuple):
            return f"expected a list, got {type(got).__name__}"
        if len(got) != len(expected):
            return f"expected {len(expected)} items, got {len(got)}"
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            why = compare(g, e, rtol=rtol, atol=atol)
            if why is not None:
                return f"item {i}: {why}"
        return None
    try:
        equal = bool(got == expected)
    except Exception:  # noqa: BLE001 - an array compared with a string, an __eq__ that raises
        equal = False
    return None if equal else f"expected {format_value(expected)}, got {format_value(got)}"


def same(got, expected) -> bool:
    """Quietly: does ``got`` match ``expected``? Never raises (for ``diagnose`` functions).

    Defined in chapter 1.
    """
    try:
        return compare(got, expected) is None
    except Exception:  # noqa: BLE001
        return False


# -- running the cases -----------------------------------------------------------------------


def _finish(feedback: Feedback, raise_on_fail: bool, quiet: bool) -> Feedback:
    if not quiet:
        print(feedback.message)
    if raise_on_fail and not feedback.passed:
        raise ExerciseFailed(feedback.message)
    return feedback


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

    Printing by ``fn`` is captured (one summarising line in the message), and a change ``fn``
    makes to its arguments is reported (the grader passes copies; the answer can still pass).
    Defined in chapter 1.
    """
    if not callable(fn):
        fb = Feedback(False, f"✗ {name}: expected a function, got {type(fn).__name__}", name)
        return _finish(fb, raise_on_fail, quiet)
    notes: dict[str, str] = {}
    for k, case in enumerate(cases, start=1):
        args = _copy.deepcopy(case.args)
        kwargs = _copy.deepcopy(case.kwargs)
        shown = case.show if case.show is not None else {f"arg{i}": a for i, a in enumerate(args)}
        inputs = "\n".join(f"    {key} = {format_value(v)}" for key, v in shown.items())
        head = (
            f"✗ {name}: case {k} of {len(cases)} ({case.label}) failed\n  inputs:\n{inputs}\n"
            f"  expected: {format_value(case.expected)}\n"
        )
        limit = case.time_limit or time_limit or DEFAULT_TIME_LIMIT
        out = _sandbox.call(fn, args, kwargs, limit)
        extra = []
        if out.printed is not None and out.printed.chars:
            extra.append(f"  printed:  {out.printed.summary()}")
        changed = _sandbox.changed_inputs(
            (*case.args, *case.kwargs.values()),
            (*args, *(kwargs.get(key) for key in case.kwargs)),
            _arg_names(case, len(case.args)),
        )
        if changed:
            extra.append(
                f"  note:     your function changed its input {changed}; the grader passed a "
                "copy, but a caller may not expect its data to change"
            )
        tail = "".join(f"\n{line}" for line in extra)
        if out.timed_out:
            msg = (
                f"{head}  problem:  your function did not finish within {limit:g} s, the time "
                "limit of one case: look for a loop that never ends or work that grows too fast"
            )
            if hint:
                msg += f"\n  hint: {hint}"
            return _finish(Feedback(False, msg + tail, name, k), raise_on_fail, quiet)
        if out.error is not None:
            exc = out.error
            msg = (
                f"{head}  your function raised {type(exc).__name__}: {_sandbox.safe_str(exc)}"
                f"{_sandbox.where_raised(exc)}"
            )
            if hint:
                msg += f"\n  hint: {hint}"
            return _finish(Feedback(False, msg + tail, name, k), raise_on_fail, quiet)
        got = out.value
        judged = _sandbox.call(_judge, (got, case, compare, diagnose), {}, limit)
        why, specific, shown = None, None, f"<{type(got).__name__} object>"
        if judged.timed_out:
            why = f"checking your answer ({type(got).__name__}) took over {limit:g} s"
        elif judged.error is not None:  # only if a grader's own compare fails very oddly
            err = judged.error
            why = f"your answer could not be checked: {type(err).__name__}: " + (
                _sandbox.safe_str(err)
            )
        else:
            why, specific, shown = judged.value
        if why is not None:
            msg = f"{head}  got:      {shown}\n  problem:  {why}"
            if specific:
                msg += f"\n  hint: {specific}"
            elif hint:
                msg += f"\n  hint: {hint}"
            return _finish(Feedback(False, msg + tail, name, k), raise_on_fail, quiet)
        for line in extra:  # keep the first of each kind of note for the success message
            notes.setdefault(line.split(":")[0], f"{line} (case {k}, {case.label})")
    span = cases[0].label if len(cases) == 1 else f"from {cases[0].label} to {cases[-1].label}"
    msg = f"✓ {name}: all {len(cases)} cases passed ({span})" if cases else f"✓ {name}: no cases"
    msg += "".join(f"\n{line}" for line in notes.values())
    return _finish(Feedback(True, msg, name, len(cases)), raise_on_fail, quiet)


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

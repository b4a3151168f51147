"""Graders for the exercises: run a reader's function on random cases and explain the first failure.

Defined in chapter 1 (the machinery and the chapter 1 graders) and chapter 2 (its graders);
later chapters append their own ``check_*`` functions at the end of this file.

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
differs, and a hint. An exception raised by the reader's function is caught and reported the
same way (with the line of the reader's code that raised it).

Writing a new grader (for the authors of later chapters): build a list of :class:`Case` (use
:func:`make_rng`, :func:`random_values` and :data:`AWKWARD_LENGTHS`), then return
``grade("check_name", fn, cases, hint=..., raise_on_fail=raise_on_fail, quiet=quiet)``.
:func:`grade` calls ``fn(*case.args, **case.kwargs)`` on a deep copy of the arguments and
compares with ``case.expected`` using :func:`compare` (or a ``compare=`` function of your own,
which returns ``None`` on a match and a sentence saying what differs otherwise). A ``diagnose``
function can recognise a common mistake from the wrong answer and return a specific hint.
"""

from __future__ import annotations

import copy as _copy
import html as _html
import math
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "AWKWARD_LENGTHS",
    "Case",
    "ExerciseFailed",
    "Feedback",
    "compare",
    "format_value",
    "grade",
    "make_rng",
    "random_values",
    "tolerance",
    "check_prefix_sum",
    "check_exclusive_scan",
    "check_affine_combine",
    "check_linear_recurrence",
    "check_hillis_steele",
    "check_blelloch",
    "check_work_depth",
    "check_chunked",
]

#: Lengths every sequence grader tries: empty, one element, powers of two and awkward sizes.
AWKWARD_LENGTHS: tuple[int, ...] = (0, 1, 2, 3, 5, 8, 13, 16, 31, 100)


# -- the result ------------------------------------------------------------------------------


class ExerciseFailed(AssertionError):
    """Raised by a grader called with ``raise_on_fail=True`` when a case fails."""


@dataclass(frozen=True)
class Feedback:
    """The outcome of a grader: ``passed`` and a human-readable ``message``.

    Truthy exactly when the answer passed, so ``assert check_x(fn)`` works in a notebook.
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
    """

    label: str
    args: tuple
    expected: Any
    kwargs: dict = field(default_factory=dict)
    show: dict | None = None
    rtol: float | None = None
    atol: float | None = None


# -- random inputs ---------------------------------------------------------------------------


def make_rng(seed: int = 0) -> np.random.Generator:
    """The seeded generator every grader uses, so a failing case is the same on every run."""
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
    mistakes (``0 * h`` forgets ``h``), so graders never feed them.
    """
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        mag = rng.integers(max(1, int(low)), max(2, int(high)) + 1, size=shape)
    else:
        mag = rng.uniform(low, high, size=shape)
    if signed:
        mag = mag * rng.choice(np.array([-1, 1]), size=shape)
    return np.asarray(mag).astype(dtype)


# -- comparing -------------------------------------------------------------------------------


def tolerance(dtype) -> tuple[float, float]:
    """``(rtol, atol)`` for comparing answers of this dtype: exact for integers."""
    dtype = np.dtype(dtype)
    if dtype.kind in "biu":
        return 0.0, 0.0
    if dtype in (np.dtype(np.float16),):
        return 1e-2, 1e-2
    if dtype in (np.dtype(np.float32), np.dtype(np.complex64)):
        return 1e-4, 1e-5
    return 1e-9, 1e-12


def _is_numeric(x) -> bool:
    if isinstance(x, str | bytes):
        return False
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError):
        return False
    return arr.dtype.kind in "biufc"


def format_value(x, *, max_items: int = 12, precision: int = 4) -> str:
    """A short, readable rendering of an input or an answer (long arrays are elided)."""
    if isinstance(x, tuple):
        return "(" + ", ".join(format_value(v, max_items=max_items) for v in x) + ")"
    if isinstance(x, list) and x and not _is_numeric(x):
        items = [format_value(v, max_items=max_items) for v in x[:max_items]]
        more = f", ... ({len(x)} items)" if len(x) > max_items else ""
        return "[" + ", ".join(items) + more + "]"
    if _is_numeric(x):
        arr = np.asarray(x)
        if arr.ndim == 0:
            v = arr.item()
            return f"{v:.{precision}g}" if isinstance(v, float) else repr(v)
        with np.printoptions(precision=precision, threshold=max_items, edgeitems=4):
            text = np.array2string(arr, separator=", ")
        kind = type(x).__name__
        extra = f" ({kind}, shape {arr.shape}, {arr.dtype})" if arr.size > max_items else ""
        return " ".join(text.split()) + extra
    return repr(x)


def compare(got, expected, *, rtol: float | None = None, atol: float | None = None) -> str | None:
    """``None`` when ``got`` matches ``expected``; otherwise a sentence saying what differs.

    Numbers, lists and arrays are compared as arrays (shape first, then values within
    ``rtol``/``atol``, NaNs equal to NaNs); tuples (pairs such as ``(a, b)``) item by item;
    anything else (strings) with ``==``.
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
    if _is_numeric(expected):
        exp = np.asarray(expected)
        if got is None:
            return "got None: did the function forget to `return` its result?"
        if not _is_numeric(got):
            return f"expected numbers, got {type(got).__name__}"
        g = np.asarray(got)
        if g.shape != exp.shape:
            return f"expected shape {exp.shape}, got shape {g.shape}"
        if exp.size == 0:
            return None
        r, a = tolerance(exp.dtype)
        r = r if rtol is None else rtol
        a = a if atol is None else atol
        with np.errstate(invalid="ignore", over="ignore"):
            if exp.dtype.kind in "biu" and g.dtype.kind in "biu":
                ok = g == exp
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
        bad = np.argwhere(~np.asarray(ok))
        first = tuple(int(i) for i in bad[0])
        if exp.ndim == 0:
            return f"expected {format_value(exp)}, got {format_value(g)}"
        where = first[0] if len(first) == 1 else first
        return (
            f"{len(bad)} of {exp.size} values differ; the first at index {where}: "
            f"expected {format_value(exp[first])}, got {format_value(g[first])}"
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
    return None if got == expected else f"expected {expected!r}, got {got!r}"


# -- running the cases -----------------------------------------------------------------------


def _where_raised(exc: BaseException) -> str:
    """The last frame of the traceback that is not in this module (the reader's line)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    if not frames:
        return ""
    f = frames[-1]
    line = f" ({f.line.strip()})" if f.line else ""
    return f" in {f.name}, line {f.lineno}{line}"


def _finish(feedback: Feedback, raise_on_fail: bool, quiet: bool) -> Feedback:
    if not quiet:
        print(feedback.message)
    if raise_on_fail and not feedback.passed:
        raise ExerciseFailed(feedback.message)
    return feedback


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
    """
    if not callable(fn):
        fb = Feedback(False, f"✗ {name}: expected a function, got {type(fn).__name__}", name)
        return _finish(fb, raise_on_fail, quiet)
    for k, case in enumerate(cases, start=1):
        args = _copy.deepcopy(case.args)
        kwargs = _copy.deepcopy(case.kwargs)
        shown = case.show if case.show is not None else {f"arg{i}": a for i, a in enumerate(args)}
        inputs = "\n".join(f"    {key} = {format_value(v)}" for key, v in shown.items())
        head = f"✗ {name}: case {k} of {len(cases)} ({case.label}) failed"
        try:
            got = fn(*args, **kwargs)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - the reader's errors are feedback
            msg = (
                f"{head}\n  inputs:\n{inputs}\n"
                f"  expected: {format_value(case.expected)}\n"
                f"  your function raised {type(exc).__name__}: {exc}{_where_raised(exc)}"
            )
            if hint:
                msg += f"\n  hint: {hint}"
            return _finish(Feedback(False, msg, name, k), raise_on_fail, quiet)
        if compare is not None:
            why = compare(got, case.expected, case)
        else:
            why = globals()["compare"](got, case.expected, rtol=case.rtol, atol=case.atol)
        if why is not None:
            specific = diagnose(case, got) if diagnose is not None else None
            msg = (
                f"{head}\n  inputs:\n{inputs}\n"
                f"  expected: {format_value(case.expected)}\n"
                f"  got:      {format_value(got)}\n"
                f"  problem:  {why}"
            )
            if specific:
                msg += f"\n  hint: {specific}"
            elif hint:
                msg += f"\n  hint: {hint}"
            return _finish(Feedback(False, msg, name, k), raise_on_fail, quiet)
    span = cases[0].label if len(cases) == 1 else f"from {cases[0].label} to {cases[-1].label}"
    msg = f"✓ {name}: all {len(cases)} cases passed ({span})" if cases else f"✓ {name}: no cases"
    return _finish(Feedback(True, msg, name, len(cases)), raise_on_fail, quiet)


def _same(got, expected) -> bool:
    """Quietly: does ``got`` match ``expected``? (for diagnosing mistakes)."""
    try:
        return compare(got, expected) is None
    except Exception:  # noqa: BLE001
        return False


# -- chapter 1 -------------------------------------------------------------------------------


def _prefix_sum_cases(seed: int) -> list[Case]:
    from . import serial

    rng = make_rng(seed)
    cases = []
    for n in AWKWARD_LENGTHS:
        if n in (3, 13):  # a plain Python list of ints
            xs: Any = [int(v) for v in random_values(rng, n, dtype=np.int64, high=9)]
            label = f"length {n}, list of int"
            expected = serial.scan_loop(lambda x, y: x + y, xs)
        else:
            dtype = np.float32 if n == 31 else np.float64
            xs = random_values(rng, n, dtype=dtype)
            label = f"length {n}, {np.dtype(dtype).name}"
            expected = np.array(serial.scan_loop(lambda x, y: x + y, xs), dtype=dtype)
        if n == 0:
            expected = np.zeros(0, dtype=np.float64)
        cases.append(Case(label, (xs,), expected, show={"xs": xs}))
    return cases


def check_prefix_sum(fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False) -> Feedback:
    """Grade ``fn(xs) -> inclusive prefix sums`` (``[x0, x0+x1, x0+x1+x2, ...]``).

    ``xs`` is a list of ints or a 1-D NumPy float array, of length 0, 1, 2, 3, 5, 8, 13, 16, 31
    and 100. Any sequence of the right length and values is accepted as the answer.

    Chapter 1, exercise 1.
    """

    def diagnose(case: Case, got) -> str | None:
        xs = case.args[0]
        n = len(xs)
        if n and _same(got, np.concatenate([[0], np.asarray(case.expected)[:-1]])):
            return "that is the exclusive scan (0 first); the inclusive scan includes x[i] itself"
        if n and _is_numeric(got) and np.ndim(got) == 0:
            return "a single number came back: that is a reduction; a scan returns every prefix"
        return None

    return grade(
        "check_prefix_sum",
        fn,
        _prefix_sum_cases(1),
        hint="out[i] must be x[0] + ... + x[i]; check the first element and the empty input",
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


def _concat(x: str, y: str) -> str:
    return x + y


def _mul(x, y):
    return x * y


def _compose(f: tuple, g: tuple) -> tuple:
    """Affine maps as pairs: apply ``f = (a1, b1)`` and then ``g = (a2, b2)``."""
    return (g[0] * f[0], g[0] * f[1] + g[1])


def check_exclusive_scan(
    fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn(xs, combine, identity) -> list``, the exclusive scan of a Python sequence.

    ``out[0] = identity`` and ``out[i] = combine(out[i-1], xs[i-1])``; the result has
    ``len(xs)`` items. The operators include non-commutative ones (string concatenation,
    composition of affine maps), so ``combine(x_earlier, y_later)`` must keep its order.

    Chapter 1, exercise 2.
    """
    from . import serial

    rng = make_rng(2)
    specs: list[tuple[str, Callable, Any, Callable[[int], list]]] = [
        (
            "add",
            lambda x, y: x + y,
            0,
            lambda n: [int(v) for v in random_values(rng, n, dtype=int, high=9)],
        ),
        ("max", max, -math.inf, lambda n: [float(v) for v in random_values(rng, n)]),
        ("multiply", _mul, 1.0, lambda n: [float(v) for v in random_values(rng, n)]),
        (
            "concatenate strings",
            _concat,
            "",
            lambda n: [chr(97 + int(i)) for i in rng.integers(0, 26, size=n)],
        ),
        (
            "compose affine maps",
            _compose,
            (1.0, 0.0),
            lambda n: [
                (float(a), float(b))
                for a, b in zip(random_values(rng, n), random_values(rng, n), strict=True)
            ],
        ),
    ]
    cases = []
    lengths = (0, 1, 2, 5, 13)
    for k, (opname, combine, identity, gen) in enumerate(specs):
        for n in (lengths[k], 6):
            xs = gen(n)
            expected = serial.scan_loop(combine, xs, identity, exclusive=True)
            cases.append(
                Case(
                    f"{opname}, length {n}",
                    (xs, combine, identity),
                    expected,
                    show={"xs": xs, "combine": opname, "identity": identity},
                )
            )

    def diagnose(case: Case, got) -> str | None:
        xs, combine, identity = case.args
        if not isinstance(got, list | tuple | np.ndarray):
            return "return a list with one item per input element"
        if len(got) == len(xs) + 1:
            return "one item too many: the exclusive scan stops before the total"
        if xs and _same(list(got), serial.scan_loop(combine, xs)):
            return "that is the inclusive scan; the exclusive one starts with the identity"
        if xs and _same(
            list(got), serial.scan_loop(lambda x, y: combine(y, x), xs, identity, exclusive=True)
        ):
            return "the operands are swapped: call combine(accumulated, next), earlier first"
        return None

    return grade(
        "check_exclusive_scan",
        fn,
        cases,
        hint="out[0] is the identity and out[i] = combine(out[i-1], xs[i-1])",
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


def check_affine_combine(
    fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn((a1, b1), (a2, b2)) -> (a, b)``: the affine map "apply (a1, b1), then (a2, b2)".

    ``h -> a2 (a1 h + b1) + b2`` is the pair ``(a2 a1, a2 b1 + b2)``. Tried on Python floats
    and on NumPy arrays (elementwise, one map per channel).

    Chapter 1, exercise 3.
    """
    from . import ops

    rng = make_rng(3)
    cases = []
    for label, shape in (
        ("floats", None),
        ("floats", None),
        ("arrays of 4 channels", (4,)),
        ("arrays of shape (3, 2)", (3, 2)),
    ):
        if shape is None:
            f = (float(random_values(rng, ())), float(random_values(rng, ())))
            g = (float(random_values(rng, ())), float(random_values(rng, ())))
        else:
            f = (random_values(rng, shape), random_values(rng, shape))
            g = (random_values(rng, shape), random_values(rng, shape))
        expected = tuple(np.asarray(v) for v in ops.affine.combine(f, g))
        if shape is None:
            expected = tuple(float(v) for v in expected)
        cases.append(Case(label, (f, g), expected, show={"first (a1, b1)": f, "then (a2, b2)": g}))
    identity = (1.0, 0.0)
    f = (float(random_values(rng, ())), float(random_values(rng, ())))
    cases.append(Case("identity first", (identity, f), f, show={"first": identity, "then": f}))
    cases.append(Case("identity last", (f, identity), f, show={"first": f, "then": identity}))

    def diagnose(case: Case, got) -> str | None:
        f, g = case.args
        if _same(got, tuple(np.asarray(v) for v in ops.affine.combine(g, f))):
            return (
                "that is (a1, b1) applied AFTER (a2, b2): the order is reversed. "
                "Substitute h1 = a1 h + b1 into a2 h1 + b2"
            )
        return None

    return grade(
        "check_affine_combine",
        fn,
        cases,
        hint="expand a2 * (a1 * h + b1) + b2 and read off the coefficient of h and the constant",
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


def _recurrence_cases(seed: int, lengths: Sequence[int]) -> list[Case]:
    from . import serial

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


def check_linear_recurrence(
    fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn(a, b, h0) -> h`` with ``h[t] = a[t] h[t-1] + b[t]`` and ``h[-1] = h0``.

    ``a``, ``b``: 1-D NumPy arrays of length ``T`` (0, 1, 2, ... 100; decays ``|a| < 1``);
    ``h0``: a NumPy scalar. Compared with the float64 Python loop.

    Chapter 1, exercise 4.
    """

    def diagnose(case: Case, got) -> str | None:
        a, b, h0 = case.args
        if len(a) == 0 or not _is_numeric(got) or np.shape(got) != np.shape(case.expected):
            return None
        from . import serial

        if _same(got, np.array(serial.linear_recurrence_loop(a, b, 0.0))):
            return "h0 was ignored: the first step is h[0] = a[0] * h0 + b[0]"
        if _same(got, np.array([h0, *serial.linear_recurrence_loop(a, b, float(h0))[:-1]])):
            return "off by one: that is h[t-1]; the result at t must include b[t]"
        return None

    return grade(
        "check_linear_recurrence",
        fn,
        _recurrence_cases(4, AWKWARD_LENGTHS),
        hint="start from carry = h0 and, for each t, set carry = a[t] * carry + b[t], h[t] = carry",
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


# -- chapter 2 -------------------------------------------------------------------------------


class _CountingCombine:
    """Wraps a vectorised combine and counts its calls (one call per parallel level)."""

    def __init__(self, combine: Callable, name: str):
        self.combine, self.name, self.calls = combine, name, 0

    def __call__(self, x, y):
        self.calls += 1
        return self.combine(x, y)

    def __repr__(self) -> str:
        return self.name


def check_hillis_steele(
    fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn(xs, combine) -> inclusive scan`` by the Hillis-Steele algorithm.

    ``xs`` is a 1-D NumPy array and ``combine(x, y)`` a vectorised operator (``x`` the
    earlier operands, ``y`` the later ones, as in :mod:`scanbook.ops`): ``np.add``,
    ``np.maximum``, and "keep the earlier" (``x``), which is associative but not commutative.
    Besides the values, the grader counts the calls of ``combine``: one call per level, so at
    most ``ceil(log2 n)`` calls; a serial loop (``n - 1`` calls) does not pass.

    Chapter 2, exercise 1.
    """
    rng = make_rng(5)
    ops_: list[tuple[str, Callable]] = [
        ("add", np.add),
        ("maximum", np.maximum),
        ("keep the earlier", lambda x, y: np.asarray(x).copy()),
    ]
    cases = []
    for k, n in enumerate(AWKWARD_LENGTHS):
        name, comb = ops_[k % 3]
        xs = random_values(rng, n)
        if name == "add":
            expected = np.cumsum(xs)
        elif name == "maximum":
            expected = np.maximum.accumulate(xs) if n else xs.copy()
        else:
            expected = np.full(n, xs[0]) if n else xs.copy()
        cases.append(
            Case(
                f"{name}, length {n}",
                (xs, _CountingCombine(comb, name)),
                expected,
                show={"xs": xs, "combine": name},
            )
        )

    def check(got, expected, case: Case) -> str | None:
        why = compare(got, expected)
        if why is not None:
            return why
        n = len(case.args[0])
        levels = math.ceil(math.log2(n)) if n > 1 else 0
        calls = case.args[1].calls
        if calls > levels:
            return (
                f"the values are right, but combine was called {calls} times; Hillis-Steele "
                f"needs only ceil(log2 n) = {levels} levels, one vectorised call each"
            )
        return None

    def diagnose(case: Case, got) -> str | None:
        xs = case.args[0]
        if (
            len(xs) > 1
            and _is_numeric(got)
            and case.args[1].name == "keep the earlier"
            and _same(got, xs)
        ):
            return "the operands are swapped: combine(x[i - d], x[i]) keeps the earlier first"
        return None

    counted: list[Case] = []

    def run(xs, combine):  # a fresh counter for every call (grade deep-copies the args)
        counted.append(combine)
        return fn(xs, combine)

    def compare_counted(got, expected, case: Case) -> str | None:
        live = Case(case.label, (case.args[0], counted[-1]), case.expected)
        return check(got, expected, live)

    return grade(
        "check_hillis_steele",
        run,
        cases,
        hint="for d = 1, 2, 4, ... < n: x[d:] = combine(x[:-d], x[d:]) (all positions at once)",
        compare=compare_counted,
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


def check_blelloch(fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False) -> Feedback:
    """Grade ``fn(xs) -> exclusive prefix sums`` (``[0, x0, x0+x1, ...]``) for any length.

    Meant for Blelloch's up-sweep/down-sweep, which works on powers of two: pad the input
    with zeros (the identity) to the next power of two and cut the answer back. Lengths 0, 1,
    2, 3, 5, 8, 13, 16, 31, 100; ints and floats.

    Chapter 2, exercise 2.
    """
    rng = make_rng(6)
    cases = []
    for n in AWKWARD_LENGTHS:
        dtype = np.int64 if n in (5, 13) else np.float64
        xs = random_values(rng, n, dtype=dtype, high=9 if dtype == np.int64 else 2.0)
        expected = np.concatenate([np.zeros(1, dtype=dtype), np.cumsum(xs)[:-1]]) if n else xs
        cases.append(Case(f"length {n}, {np.dtype(dtype).name}", (xs,), expected, show={"xs": xs}))

    def diagnose(case: Case, got) -> str | None:
        xs = case.args[0]
        if len(xs) and _same(got, np.cumsum(xs)):
            return "that is the inclusive scan; the down-sweep leaves the exclusive one"
        if _is_numeric(got) and np.ndim(got) == 1 and len(got) > len(xs):
            return "the answer is still padded: cut it back to len(xs)"
        return None

    return grade(
        "check_blelloch",
        fn,
        cases,
        hint="pad to m = 2**ceil(log2 n) with zeros, up-sweep, set x[m-1] = 0, down-sweep, "
        "return x[:n]",
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


def check_work_depth(fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False) -> Feedback:
    """Grade ``fn(n) -> (work, depth)`` of Blelloch's scan on ``n = 2^k`` elements.

    Work is the number of operator applications, depth the number of levels, exactly as
    :class:`scanbook.algorithms.Trace` counts them for :func:`scanbook.algorithms.blelloch`
    (``n`` from 1 to 4096).

    Chapter 2, exercise 3.
    """
    from . import algorithms, ops

    cases = []
    for k in (1, 2, 3, 0, 5, 10, 12):
        n = 1 << k
        tr = algorithms.Trace()
        algorithms.blelloch(ops.add, np.ones(n), trace=tr)
        cases.append(Case(f"n={n}", (n,), (tr.work, tr.depth), show={"n": n}))

    def check(got, expected, case: Case) -> str | None:
        if not isinstance(got, tuple | list) or len(got) != 2:
            return f"expected a pair (work, depth), got {format_value(got)}"
        w, d = got
        if not (_is_numeric(w) and _is_numeric(d)):
            return f"expected numbers, got {format_value(got)}"
        if w != expected[0]:
            return f"work: expected {expected[0]}, got {format_value(w)}"
        if d != expected[1]:
            return f"depth: expected {expected[1]}, got {format_value(d)}"
        return None

    def diagnose(case: Case, got) -> str | None:
        n = case.args[0]
        if isinstance(got, tuple | list) and len(got) == 2:
            if got[0] == 2 * n and n > 1:
                return "2n is the rough count; each sweep does n/2 + n/4 + ... + 1 = n - 1"
            if got[1] == math.log2(n) and n > 1:
                return "that is one sweep; the up-sweep and the down-sweep have log2 n levels each"
        return None

    return grade(
        "check_work_depth",
        fn,
        cases,
        hint="count the operator applications per level of the up-sweep (n/2, n/4, ..., 1) "
        "and of the down-sweep, and the levels of both",
        compare=check,
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


def check_chunked(fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False) -> Feedback:
    """Grade ``fn(a, b, h0, n_chunks) -> h``: the linear recurrence by Algorithm 1 of chapter 2.

    ``a``, ``b``: 1-D arrays of length ``T``; ``h0`` a scalar; ``n_chunks = p`` the number of
    processors, which need not divide ``T`` and may exceed it (then use ``min(p, T)``).
    Compared with the float64 loop, for ``p`` = 1, 2, 3, ``sqrt(T)`` and ``T``.

    Chapter 2, exercise 4.
    """
    base = _recurrence_cases(7, (0, 1, 2, 5, 13, 31, 100, 100, 100, 64))
    chunks = (1, 3, 2, 2, 4, 5, 1, 7, 10, 64)
    cases = []
    for case, p in zip(base, chunks, strict=True):
        a, b, h0 = case.args
        cases.append(
            Case(
                f"{case.label}, n_chunks={p}",
                (a, b, h0, p),
                case.expected,
                show={**case.show, "n_chunks": p},
                rtol=case.rtol,
                atol=case.atol,
            )
        )

    def diagnose(case: Case, got) -> str | None:
        a, b, h0, p = case.args
        if len(a) and _is_numeric(got) and np.shape(got) == np.shape(case.expected):
            from . import serial

            if _same(got, np.array(serial.linear_recurrence_loop(a, b, 0.0))):
                return "h0 was lost: the carry-in of chunk 0 is h0"
        return None

    return grade(
        "check_chunked",
        fn,
        cases,
        hint="1) reduce each chunk to one affine pair (A_i, B_i); 2) scan the p pairs from h0 "
        "to get each chunk's carry-in; 3) run each chunk's recurrence from its carry-in",
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


# -- later chapters append their graders below this line -----------------------------------


# -- chapter 3 -------------------------------------------------------------------------------


def check_bank_conflict_degree(
    fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn(addresses) -> k``: the ``k``-way bank conflict of one warp's request.

    ``addresses`` is a list of up to 32 shared-memory word indices (4-byte words), one per
    thread of a warp. Word ``w`` lives in bank ``w % 32``; threads that read the *same* word
    share one broadcast, so ``k`` is the largest number of *distinct* words in any one bank
    (1: conflict-free). Compared with :func:`scanbook.kernels.numba_cuda.bank_conflicts`'s
    rule.

    Chapter 3, exercise 1.
    """

    def degree(addresses) -> int:
        per_bank: dict[int, set[int]] = {}
        for w in addresses:
            per_bank.setdefault(w % 32, set()).add(w)
        return max((len(s) for s in per_bank.values()), default=0)

    rng = make_rng(31)
    patterns = [
        ("consecutive words", list(range(32))),
        ("stride 2", list(range(0, 64, 2))),
        ("all threads read word 5 (broadcast)", [5] * 32),
        ("stride 32", list(range(0, 32 * 32, 32))),
        ("stride 33 (padded)", list(range(0, 33 * 32, 33))),
        ("16 threads, stride 64", list(range(0, 64 * 16, 64))),
        ("Blelloch up-sweep, stride 16", [16 * (2 * t + 1) - 1 for t in range(32)]),
        (
            "the same, padded",
            [(16 * (2 * t + 1) - 1) + ((16 * (2 * t + 1) - 1) >> 5) for t in range(32)],
        ),
        ("random words, some repeated", [int(v) for v in rng.integers(0, 96, 32)]),
    ]
    cases = [
        Case(label, (addr,), degree(addr), show={"addresses": addr}) for label, addr in patterns
    ]

    def diagnose(case: Case, got) -> str | None:
        addr = case.args[0]
        counts: dict[int, int] = {}
        for w in addr:
            counts[w % 32] = counts.get(w % 32, 0) + 1
        if got == max(counts.values()):
            return "threads reading the same word share one broadcast: count distinct words"
        return None

    return grade(
        "check_bank_conflict_degree",
        fn,
        cases,
        hint="group the distinct words by bank (word % 32); return the size of the largest group",
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


class _TileScanner:
    """An inclusive block scan that refuses tiles longer than its block (counts its calls)."""

    def __init__(self, block: int):
        self.block, self.calls = block, 0

    def __call__(self, tile):
        tile = np.asarray(tile)
        if tile.ndim != 1 or len(tile) > self.block:
            raise ValueError(
                f"block_scan scans at most block={self.block} elements; got shape {tile.shape}"
            )
        self.calls += 1
        return np.cumsum(tile)

    def __repr__(self) -> str:
        return f"block_scan (tiles of at most {self.block})"


def check_scan_with_block_sums(
    fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn(x, block, block_scan) -> inclusive scan of x`` for any length.

    ``block_scan(tile)`` returns the inclusive scan of a tile of at most ``block`` elements
    (and raises for a longer one), as one CUDA block would. Build the scan of any length from
    it as :func:`scanbook.kernels.numba_cuda.scan` does: scan the tiles, scan the tile totals
    (recursively: there may be more than ``block`` of them), add each tile's prefix back.
    Lengths 0, 1, ``block - 1``, ``block``, ``block + 1``, ``block**2 + 3`` (two levels).

    Chapter 3, exercise 2.
    """
    rng = make_rng(32)
    cases = []
    for block, n in ((4, 0), (4, 1), (4, 3), (4, 4), (4, 5), (4, 19), (8, 100), (4, 70)):
        x = random_values(rng, n)
        expected = np.cumsum(x) if n else x.copy()
        cases.append(
            Case(
                f"length {n}, block {block}",
                (x, block, _TileScanner(block)),
                expected,
                show={"x": x, "block": block},
            )
        )

    def diagnose(case: Case, got) -> str | None:
        x, block, _ = case.args
        n = len(x)
        if not _is_numeric(got) or np.shape(got) != (n,) or n <= block:
            return None
        tiles = np.concatenate([np.cumsum(x[i : i + block]) for i in range(0, n, block)])
        if _same(got, tiles):
            return "the tiles are scanned but their prefixes were never added back"
        return None

    return grade(
        "check_scan_with_block_sums",
        fn,
        cases,
        hint="totals = last element of each scanned tile; prefix = fn(totals) shifted right by "
        "one (0 first); add prefix[k] to tile k",
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


def check_carry_in(fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False) -> Feedback:
    """Grade ``fn(A, B, h0) -> carry``: phase 2 of the chunked recurrence kernel.

    ``A``, ``B``: shape ``(p, C)``, chunk ``k`` maps the state before it to
    ``A[k] * h + B[k]``; ``h0``: shape ``(C,)``. Return the state *entering* each chunk,
    shape ``(p, C)``: ``carry[0] = h0`` and ``carry[k] = A[k-1] * carry[k-1] + B[k-1]``.

    Chapter 3, exercise 3.
    """
    rng = make_rng(33)
    cases = []
    for p, C in ((1, 1), (2, 1), (5, 3), (13, 2), (100, 4)):
        A = random_values(rng, (p, C), low=0.5, high=1.0)
        B = random_values(rng, (p, C))
        h0 = random_values(rng, C)
        carry = np.empty((p, C))
        state = h0.copy()
        for k in range(p):
            carry[k] = state
            state = A[k] * state + B[k]
        shown = {"A": A, "B": B, "h0": h0}
        cases.append(Case(f"p={p} chunks, C={C}", (A, B, h0), carry, show=shown))

    def diagnose(case: Case, got) -> str | None:
        A, B, h0 = case.args
        from . import serial

        if _is_numeric(got) and _same(got, serial.linear_recurrence_numpy(A, B, h0)):
            return "that is the state leaving each chunk (inclusive): shift it, h0 enters chunk 0"
        return None

    return grade(
        "check_carry_in",
        fn,
        cases,
        hint="run the recurrence over the chunk pairs from h0 and keep the state *before* each",
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


class _Shuffler:
    """``shfl_up(v, d)``: lane ``i`` receives ``v[i - d]``; lanes below ``d`` keep ``v[i]``."""

    def __init__(self):
        self.calls = 0

    def __call__(self, v, d):
        v = np.asarray(v)
        if v.shape != (32,):
            raise ValueError(f"shfl_up moves one value per lane: shape (32,); got {v.shape}")
        d = int(d)
        if not 0 < d < 32:
            raise ValueError(f"delta must be between 1 and 31; got {d}")
        self.calls += 1
        out = v.copy()
        out[d:] = v[:-d]
        return out

    def __repr__(self) -> str:
        return "shfl_up"


def check_warp_scan(fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False) -> Feedback:
    """Grade ``fn(v, shfl_up) -> inclusive sums`` of the 32 lanes of a warp.

    ``v`` has shape ``(32,)``, one value per lane; ``shfl_up(v, d)`` is ``cuda.shfl_up_sync``
    for the whole warp at once: lane ``i`` receives ``v[i - d]``, and lanes ``i < d`` receive
    their own value back. A warp scan needs ``log2 32 = 5`` shuffles; more calls fail.

    Chapter 3, exercise 4.
    """
    rng = make_rng(34)
    cases = []
    for label in ("random", "random", "ones", "alternating signs"):
        if label == "ones":
            v = np.ones(32)
        elif label == "alternating signs":
            v = np.array([(-1.0) ** i * (i + 1) for i in range(32)])
        else:
            v = random_values(rng, 32)
        cases.append(Case(label, (v, _Shuffler()), np.cumsum(v), show={"v": v}))
    used: list[_Shuffler] = []

    def run(v, shfl_up):
        used.append(shfl_up)
        return fn(v, shfl_up)

    def check(got, expected, case: Case) -> str | None:
        why = compare(got, expected)
        if why is not None:
            return why
        if used[-1].calls > 5:
            return f"right values, but {used[-1].calls} shuffles: 5 (d = 1, 2, 4, 8, 16) suffice"
        return None

    def diagnose(case: Case, got) -> str | None:
        v = case.args[0]
        x = v.copy()
        for d in (1, 2, 4, 8, 16):
            y = x.copy()
            y[d:] = x[:-d]
            x = x + y
        if _same(got, x):
            return "lanes i < d got their own value back and added it: only lanes i >= d add"
        return None

    return grade(
        "check_warp_scan",
        run,
        cases,
        hint="for d in 1, 2, 4, 8, 16: up = shfl_up(x, d); x = where(lane >= d, x + up, x)",
        compare=check,
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


__all__ += [
    "check_bank_conflict_degree",
    "check_scan_with_block_sums",
    "check_carry_in",
    "check_warp_scan",
]
# -- chapter 4: CUDA C through CuPy RawKernel ------------------------------------------------


def _divide_work_reference(n_jobs: int, n_workers: int, w: int) -> tuple[int, int]:
    small, extra = divmod(n_jobs, n_workers)
    begin = w * small + min(w, extra)
    return begin, begin + small + (1 if w < extra else 0)


def check_divide_work(
    fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn(n_jobs, n_workers, w) -> (begin, end)``: worker ``w``'s contiguous range.

    As ``divide_work`` in ``three_phase.cu``: the ranges of workers ``0 .. n_workers - 1``
    cover ``0 .. n_jobs`` in order, their sizes differ by at most one, and the first
    ``n_jobs % n_workers`` workers take the longer ones. Sizes past ``2**31`` are included:
    the arithmetic must not wrap (in Python it cannot; in C it must be 64-bit).

    Chapter 4, exercise 1.
    """
    cases = []
    for n, p in ((10, 1), (0, 4), (3, 8), (10, 3), (31, 32), (1000, 264), ((1 << 33) + 5, 264)):
        for w in sorted(
            {0, min(1, p - 1), (n % p) - 1 if n % p else 0, n % p if n % p < p else 0, p - 1}
        ):
            if 0 <= w < p:
                cases.append(
                    Case(
                        f"n_jobs={n}, n_workers={p}, w={w}",
                        (n, p, w),
                        _divide_work_reference(n, p, w),
                        show={"n_jobs": n, "n_workers": p, "w": w},
                    )
                )

    def compare_ranges(got, expected, case):
        if not isinstance(got, tuple | list) or len(got) != 2:
            return f"expected a pair (begin, end), got {format_value(got)}"
        if tuple(int(x) for x in got) != expected:
            return f"expected {expected}, got {tuple(int(x) for x in got)}"
        return None

    def diagnose(case: Case, got) -> str | None:
        n, p, w = case.args
        try:
            b, e = (int(x) for x in got)
        except Exception:  # noqa: BLE001
            return None
        if (b, e) == (w * (-(-n // p)), min(n, (w + 1) * (-(-n // p)))):
            return "ceil(n/p) for every worker leaves the last workers short or empty"
        return None

    return grade(
        "check_divide_work",
        fn,
        cases,
        hint="small, extra = divmod(n_jobs, n_workers); worker w starts at "
        "w * small + min(w, extra)",
        compare=compare_ranges,
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


def _affine_warp_scan_reference(A, B, cg):
    A = np.asarray(A, dtype=np.float64).copy()
    B = np.asarray(B, dtype=np.float64).copy()
    outA, outB = A.copy(), B.copy()
    for ch in range(cg):
        acc_a, acc_b = 1.0, 0.0
        for lane in range(ch, 32, cg):
            acc_a, acc_b = A[lane] * acc_a, A[lane] * acc_b + B[lane]
            outA[lane], outB[lane] = acc_a, acc_b
    return outA, outB


def check_affine_warp_scan(
    fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn(A, B, cg) -> (A_incl, B_incl)``: a warp's inclusive scan of affine maps.

    ``A``, ``B``: arrays of 32 floats, one map ``x -> A[l] x + B[l]`` per lane ``l``. Lanes
    with the same ``l % cg`` hold one channel, in time order ``l = ch, ch + cg, ...``
    (``cg`` in 1, 2, 4, ..., 32). Lane ``l`` of the answer holds the composition of its
    channel's maps up to and including its own: what the ``__shfl_up_sync`` loop of
    ``single_pass.cu`` leaves in each lane.

    Chapter 4, exercise 2.
    """
    rng = make_rng(4)
    cases = []
    for cg in (32, 1, 2, 4, 8, 16, 1, 4):
        A = random_values(rng, 32, low=0.5, high=1.0)
        B = random_values(rng, 32)
        cases.append(
            Case(
                f"cg={cg}",
                (A, B, cg),
                _affine_warp_scan_reference(A, B, cg),
                show={"A": A, "B": B, "cg": cg},
            )  # fmt: skip
        )

    def diagnose(case: Case, got) -> str | None:
        A, B, cg = case.args
        wrong = _affine_warp_scan_reference(A, B, 1)
        if cg > 1 and isinstance(got, tuple | list) and len(got) == 2 and _same(got[1], wrong[1]):
            return "all 32 lanes were scanned as one sequence: step by cg lanes (o * cg)"
        return None

    return grade(
        "check_affine_warp_scan",
        fn,
        cases,
        hint="Hillis-Steele: for o = 1, 2, 4, ... < 32 // cg, lane l (if l >= o * cg) "
        "composes the value of lane l - o * cg (earlier) before its own",
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


def _lookback_reference(preds):
    acc_a, acc_b = 1.0, 0.0
    for flag, A, B, h in preds:
        if flag == 2:
            return acc_a * np.asarray(h, dtype=np.float64) + acc_b
        acc_a, acc_b = acc_a * np.asarray(A, dtype=np.float64), acc_a * np.asarray(B) + acc_b
    raise ValueError("no inclusive predecessor")


def check_lookback(fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False) -> Feedback:
    """Grade ``fn(preds) -> carry``: the state entering a tile, by decoupled look-back.

    ``preds`` lists the tile's predecessors nearest first, each ``(flag, A, B, h)``: flag 1
    means only the predecessor's aggregate map ``x -> A x + B`` is published; flag 2 means its
    inclusive state ``h`` (the state after its last step) is. Walk back to the first flag 2
    and apply the aggregates in between, in time order, to its ``h``. Values may be numbers or
    arrays over channels.

    Chapter 4, exercise 3.
    """
    rng = make_rng(5)
    cases = []
    for n_agg, channels in ((0, None), (1, None), (3, None), (6, 4), (2, 3), (0, 5)):
        preds = []
        for _ in range(n_agg):
            shape = () if channels is None else (channels,)
            A = random_values(rng, shape, low=0.5, high=1.0)
            B = random_values(rng, shape)
            preds.append((1, A, B, np.full(shape, np.nan)))
        shape = () if channels is None else (channels,)
        preds.append((2, np.full(shape, np.nan), np.full(shape, np.nan), random_values(rng, shape)))
        preds.append(
            (1, random_values(rng, shape), random_values(rng, shape), np.full(shape, np.nan))
        )
        cases.append(
            Case(
                f"{n_agg} aggregates, then an inclusive state",
                (preds,),
                _lookback_reference(preds),
                show={"preds": preds},
            )  # fmt: skip
        )

    def diagnose(case: Case, got) -> str | None:
        (preds,) = case.args
        k = next(i for i, p in enumerate(preds) if p[0] == 2)
        backwards = _lookback_reference(list(reversed(preds[:k])) + preds[k:])
        if k > 1 and _is_numeric(got) and _same(got, backwards):
            return (
                "the aggregates were applied nearest first; apply the farthest first (time order)"
            )
        return None

    return grade(
        "check_lookback",
        fn,
        cases,
        hint="acc = identity (1, 0); for each flag-1 predecessor (A, B), nearest first: "
        "acc = acc after (A, B), i.e. (acc_A * A, acc_A * B + acc_B); at flag 2: acc_A * h + acc_B",
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


__all__ += ["check_divide_work", "check_affine_warp_scan", "check_lookback"]


# -- chapter 5 -------------------------------------------------------------------------------


def _vjp_cases(seed: int, reverse: bool) -> list[Case]:
    from . import recurrence

    rng = make_rng(seed)
    cases = []
    for T, C in ((0, 2), (1, 1), (2, 3), (5, 1), (13, 4), (31, 2), (100, 3)):
        dtype = np.float32 if T == 31 else np.float64
        a = random_values(rng, (T, C), low=0.5, high=1.0, dtype=dtype)
        b = random_values(rng, (T, C), dtype=dtype)
        h0 = random_values(rng, C, dtype=dtype)
        g = random_values(rng, (T, C), dtype=dtype)
        h = recurrence.linear_recurrence(a, b, h0, reverse=reverse, backend="numpy")
        a64, b64, h064, h64, g64 = (np.asarray(x, np.float64) for x in (a, b, h0, h, g))
        expected = recurrence.linear_recurrence_vjp(
            a64, b64, h064, h64, g64, reverse=reverse, backend="numpy"
        )
        rtol, atol = tolerance(dtype)
        cases.append(
            Case(
                f"T={T}, C={C}, {np.dtype(dtype).name}",
                (a, b, h0, h, g),
                tuple(expected),
                show={"a": a, "b": b, "h0": h0, "h": h, "g": g},
                rtol=rtol * 10,
                atol=atol * 100,
            )
        )
    return cases


def check_linear_recurrence_vjp(
    fn: Callable, *, reverse: bool = False, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn(a, b, h0, h, g) -> (da, db, dh0)``: the gradients through the recurrence.

    ``h = linear_recurrence(a, b, h0, reverse=reverse)`` with ``a``, ``b``, ``h``, ``g`` of
    shape ``(T, C)`` and ``h0`` of shape ``(C,)``; ``g = dL/dh``. Forward, the answer is
    ``db[t] = g[t] + a[t+1] db[t+1]``, ``da[t] = db[t] h[t-1]``, ``dh0 = a[0] db[0]``; with
    ``reverse=True`` every index runs the other way. Compared with
    :func:`scanbook.linear_recurrence_vjp` in float64.

    Chapter 5, exercises 1 (``reverse=False``) and 2 (``reverse=True``).
    """
    cases = _vjp_cases(51 if not reverse else 52, reverse)
    step = -1 if not reverse else 1  # the neighbour whose decay multiplies db[t]

    def diagnose(case: Case, got) -> str | None:
        a, b, h0, h, g = (np.asarray(x, np.float64) for x in case.args)
        T = len(a)
        if T < 1 or not isinstance(got, tuple | list) or len(got) != 3:
            return None
        from . import recurrence

        # the most common slip: decays not shifted (a[t] instead of a[t+1])
        unshifted = recurrence.linear_recurrence(a, g, None, reverse=not reverse, backend="numpy")
        if T > 1 and _same(got[1], unshifted):
            return (
                f"db uses a[t] where it needs a[t{'+' if step < 0 else '-'}1]: h[t] reaches the "
                "loss through the NEXT step, whose decay is that of the next index"
            )
        if _same(got[1], case.expected[1]) and _same(got[0], case.expected[1] * h):
            return (
                "da[t] multiplies by the state the step started from (h0 at the first step), "
                "not by h[t]"
            )
        if _same(got[1], case.expected[1]) and not _same(got[2], case.expected[2]):
            first = 0 if not reverse else T - 1
            return f"dh0 flows through the first step: dh0 = a[{first}] * db[{first}]"
        return None

    name = "check_linear_recurrence_vjp" + ("(reverse=True)" if reverse else "")
    return grade(
        name,
        fn,
        cases,
        hint="run the loop the other way: carry = g[t] + (decay of the next step) * carry",
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


def _matrix_reference_vjp(A, b, h0, h, g):
    T = len(A)
    lam = np.zeros_like(g)
    carry = np.zeros_like(h0)
    for t in range(T - 1, -1, -1):
        carry = g[t] + (A[t + 1].T @ carry if t + 1 < T else 0.0)
        lam[t] = carry
    h_prev = np.concatenate([h0[None], h[:-1]]) if T else h
    dA = lam[:, :, None] * h_prev[:, None, :]
    dh0 = A[0].T @ lam[0] if T else np.zeros_like(h0)
    return dA, lam, dh0


def check_matrix_recurrence_vjp(
    fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn(A, b, h0, h, g) -> (dA, db, dh0)`` for ``h[t] = A[t] @ h[t-1] + b[t]``.

    ``A``: ``(T, n, n)``; ``b``, ``h``, ``g``: ``(T, n)``; ``h0``: ``(n,)``. The answer is
    ``lam[t] = g[t] + A[t+1].T @ lam[t+1]``, ``dA[t] = outer(lam[t], h[t-1])``, ``db = lam``,
    ``dh0 = A[0].T @ lam[0]``.

    Chapter 5, exercise 3.
    """
    rng = make_rng(53)
    cases = []
    for T, n in ((0, 2), (1, 2), (3, 1), (6, 3), (17, 4)):
        A = random_values(rng, (T, n, n), low=0.1, high=0.6)
        b = random_values(rng, (T, n))
        h0 = random_values(rng, n)
        h = np.zeros((T, n))
        carry = h0
        for t in range(T):
            carry = A[t] @ carry + b[t]
            h[t] = carry
        g = random_values(rng, (T, n))
        cases.append(
            Case(
                f"T={T}, n={n}",
                (A, b, h0, h, g),
                _matrix_reference_vjp(A, b, h0, h, g),
                show={"A": A, "b": b, "h0": h0, "h": h, "g": g},
            )
        )

    def diagnose(case: Case, got) -> str | None:
        A, b, h0, h, g = case.args
        if len(A) < 2 or not isinstance(got, tuple | list) or len(got) != 3:
            return None
        no_t = _matrix_reference_vjp(np.swapaxes(A, 1, 2), b, h0, h, g)
        if _same(got[1], no_t[1]):
            return (
                "the gradient flows back through A[t+1] TRANSPOSED: "
                "lam[t] = g[t] + A[t+1].T @ lam[t+1]"
            )
        dA_t = np.swapaxes(case.expected[0], 1, 2)
        if _same(got[1], case.expected[1]) and _same(got[0], dA_t):
            return "dA[t] is outer(lam[t], h[t-1]) (rows follow lam), not its transpose"
        return None

    return grade(
        "check_matrix_recurrence_vjp",
        fn,
        cases,
        hint="the scalar rule with matrices: transpose A where the scalar rule multiplies by a",
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


def check_shared_decay_grad(
    fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn(lam, b, h0, g) -> dlam`` for the filter ``h[t] = lam * h[t-1] + b[t]``.

    One decay ``lam`` (shape ``(C,)``) is shared by every step, as in an exponential moving
    average; ``g = dL/dh`` has the shape ``(T, C)`` of ``b``. Because ``lam`` is used at every
    step, its gradient is the sum over time of the per-step ``da``.

    Chapter 5, exercise 4.
    """
    from . import recurrence

    rng = make_rng(54)
    cases = []
    for T, C in ((1, 1), (2, 2), (9, 3), (50, 2)):
        lam = random_values(rng, C, low=0.5, high=0.95, signed=False)
        b = random_values(rng, (T, C))
        h0 = random_values(rng, C)
        g = random_values(rng, (T, C))
        a = np.broadcast_to(lam, (T, C)).copy()
        h = recurrence.linear_recurrence(a, b, h0, backend="numpy")
        da, _, _ = recurrence.linear_recurrence_vjp(a, b, h0, h, g, backend="numpy")
        cases.append(
            Case(
                f"T={T}, C={C}",
                (lam, b, h0, g),
                da.sum(axis=0),
                show={"lam": lam, "b": b, "h0": h0, "g": g},
            )
        )

    def diagnose(case: Case, got) -> str | None:
        if _is_numeric(got) and np.ndim(got) == 2:
            return "that is one gradient per step; lam is shared, so add them up over t"
        return None

    return grade(
        "check_shared_decay_grad",
        fn,
        cases,
        hint="compute da with the chapter's rule for a = lam at every step, then sum over time",
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


__all__ += [
    "check_linear_recurrence_vjp",
    "check_matrix_recurrence_vjp",
    "check_shared_decay_grad",
]

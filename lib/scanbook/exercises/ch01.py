"""Chapter 1's graders: prefix sums, the exclusive scan, affine maps, the linear recurrence.

Defined in chapter 1 (Serial scans).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ._grading import (
    AWKWARD_LENGTHS,
    LINEAR_RECURRENCE_FUNCTIONS,
    Case,
    Feedback,
    compare,
    dtype_problem,
    grade,
    is_numeric,
    make_rng,
    random_values,
    recurrence_cases,
    same,
)

__all__ = [
    "check_prefix_sum",
    "check_exclusive_scan",
    "check_affine_combine",
    "check_linear_recurrence",
]


def _float_dtype_problem(got, expected) -> str | None:
    """A sentence when a float answer has another float dtype than the reference."""
    if not is_numeric(expected) or not np.asarray(expected).size:
        return None
    return dtype_problem(
        got,
        np.asarray(expected).dtype,
        advice="allocate with dtype=... of the input, not np.empty(n), which is float64",
    )


def _compare_with_dtype(got, expected, case: Case) -> str | None:
    """The default comparison, then the dtype of every float array in the answer."""
    why = compare(got, expected, rtol=case.rtol, atol=case.atol)
    if why is not None:
        return why
    if isinstance(expected, tuple) and isinstance(got, tuple | list):
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            problem = _float_dtype_problem(g, e)
            if problem:
                return f"item {i} of the tuple: {problem}"
        return None
    return _float_dtype_problem(got, expected)


def _compare_input_dtype(got, expected, case: Case) -> str | None:
    """The default comparison, then: a float answer has the float dtype of the arrays given."""
    why = compare(got, expected, rtol=case.rtol, atol=case.atol)
    if why is not None or not is_numeric(got):
        return why
    arrays = [np.asarray(x) for x in case.args if isinstance(x, np.ndarray) and x.ndim]
    if not arrays:
        return None
    want = np.empty(1, np.result_type(*arrays))
    return _float_dtype_problem(got, want) if np.asarray(got).size else None


def _counting_floats(values) -> tuple[list, list[int]]:
    """``values`` as floats that count the additions made with them (fresh for every call)."""
    count = [0]

    class Counted(float):
        def __add__(self, other):
            count[0] += 1
            return Counted(float(self) + float(other))

        __radd__ = __add__

    return [Counted(v) for v in values], count


def _prefix_sum_counted(fn: Callable):
    """``fn`` called on plain values, or (``counted=True``) on floats that count additions.

    Returns ``(answer, additions)``; the answer is converted to float64 only for the counted
    case, whose values are counting floats.
    """

    def run(xs, counted=False):
        if not counted:
            return fn(xs), None
        values, count = _counting_floats(xs)
        got = fn(values)
        if got is not None and is_numeric(got):
            got = np.asarray(got, dtype=np.float64)
        return got, count[0]

    return run


def _prefix_sum_cases(seed: int) -> list[Case]:
    from .. import serial

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
    and 100. Any sequence of the right length and values is accepted as the answer, in the
    input's float dtype (float32 in, float32 out). Then, once more on a list of floats that
    count the additions made with them: the exercise asks for a loop, and ``np.cumsum`` (which
    converts the list to an array first) makes none of them.

    Chapter 1, exercise 1.
    """

    def diagnose(case: Case, got) -> str | None:
        xs, got = case.args[0], got[0]
        n = len(xs)
        if n and same(got, np.concatenate([[0], np.asarray(case.expected)[:-1]])):
            return "that is the exclusive scan (0 first); the inclusive scan includes x[i] itself"
        if n and is_numeric(got) and np.ndim(got) == 0:
            return "a single number came back: that is a reduction; a scan returns every prefix"
        return None

    def compare_answer(got, expected, case: Case) -> str | None:
        answer, additions = got
        why = _compare_with_dtype(answer, expected, case)
        if why is not None or additions is None:
            return why
        n = len(case.args[0])
        if additions < n - 1:
            return (
                f"the values are right, but your function made {additions} additions with the "
                f"elements, where a loop makes {n - 1} or {n}: a library call such as np.cumsum "
                f"converts the list to an array first and adds there. Write the loop"
            )
        return None

    values = [float(v) for v in random_values(make_rng(11), 9)]
    counted = Case(
        "length 9, floats that count the additions made with them",
        (values,),
        np.cumsum(values),
        kwargs={"counted": True},
        show={"xs": values},
    )
    return grade(
        "check_prefix_sum",
        _prefix_sum_counted(fn) if callable(fn) else fn,  # grade explains a non-function
        [*_prefix_sum_cases(1), counted],
        hint="out[i] must be x[0] + ... + x[i]: acc = 0; for x in xs: acc = acc + x; keep it",
        compare=compare_answer,
        diagnose=diagnose,
        forbid=(
            "scanbook.scan",
            "scanbook.algorithms.scan",
            "scanbook.serial.scan",
            "scanbook.serial.scan_loop",
        ),
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
    from .. import serial

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
        if xs and same(list(got), serial.scan_loop(combine, xs)):
            return "that is the inclusive scan; the exclusive one starts with the identity"
        if xs and same(
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
        forbid=(
            "scanbook.scan",
            "scanbook.algorithms.scan",
            "scanbook.serial.scan",
            "scanbook.serial.scan_loop",
        ),
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
    from .. import ops

    rng = make_rng(3)
    cases = []
    for label, shape in (
        ("floats", None),
        ("floats", None),
        ("arrays of 4 channels", (4,)),
        ("arrays of shape (3, 2)", (3, 2)),
        ("float32 arrays of 5 channels", (5,)),
    ):
        if shape is None:
            f = (float(random_values(rng, ())), float(random_values(rng, ())))
            g = (float(random_values(rng, ())), float(random_values(rng, ())))
        else:
            dtype = np.float32 if label.startswith("float32") else np.float64
            f = (random_values(rng, shape, dtype=dtype), random_values(rng, shape, dtype=dtype))
            g = (random_values(rng, shape, dtype=dtype), random_values(rng, shape, dtype=dtype))
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
        if same(got, tuple(np.asarray(v) for v in ops.affine.combine(g, f))):
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
        compare=_compare_with_dtype,
        diagnose=diagnose,
        forbid=("scanbook.ops._affine_combine",),
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


def check_linear_recurrence(
    fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn(a, b, h0) -> h`` with ``h[t] = a[t] h[t-1] + b[t]`` and ``h[-1] = h0``.

    ``a``, ``b``: 1-D NumPy arrays of length ``T`` (0, 1, 2, ... 100; decays ``|a| < 1``);
    ``h0``: a NumPy scalar. Compared with the float64 Python loop; the answer must keep the
    inputs' float dtype (float32 in, float32 out).

    Chapter 1, exercise 4.
    """

    def diagnose(case: Case, got) -> str | None:
        a, b, h0 = case.args
        if len(a) == 0 or not is_numeric(got) or np.shape(got) != np.shape(case.expected):
            return None
        from .. import serial

        if same(got, np.array(serial.linear_recurrence_loop(a, b, 0.0))):
            return "h0 was ignored: the first step is h[0] = a[0] * h0 + b[0]"
        if same(got, np.array([h0, *serial.linear_recurrence_loop(a, b, float(h0))[:-1]])):
            return "off by one: that is h[t-1]; the result at t must include b[t]"
        return None

    return grade(
        "check_linear_recurrence",
        fn,
        recurrence_cases(4, AWKWARD_LENGTHS),
        hint="start from carry = h0 and, for each t, set carry = a[t] * carry + b[t], h[t] = carry",
        compare=_compare_input_dtype,
        diagnose=diagnose,
        forbid=LINEAR_RECURRENCE_FUNCTIONS,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )

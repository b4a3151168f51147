"""Chapter 2's graders: Hillis-Steele, Blelloch, work and depth, the chunked scan.

Defined in chapter 2 (Parallel scan algorithms).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ._grading import (
    AWKWARD_LENGTHS,
    LINEAR_RECURRENCE_FUNCTIONS,
    Case,
    Feedback,
    compare,
    counting_floats,
    dtype_problem,
    format_value,
    grade,
    is_numeric,
    make_rng,
    random_values,
    recurrence_cases,
    same,
    tolerance,
)

__all__ = [
    "check_hillis_steele",
    "check_blelloch",
    "check_work_depth",
    "check_chunked",
    "check_maxplus",
]


def _counting(op: Callable, name: str) -> tuple[Callable, list[int]]:
    """A vectorised ``combine`` that counts its calls (one per parallel level), and its counter.

    A plain function made fresh for every call of the reader's code: no attribute exposes the
    operator it wraps or the count, so the count cannot be bypassed or reset.
    """
    count = [0]

    def combine(x, y):
        count[0] += 1
        return op(x, y)

    combine.__name__ = combine.__qualname__ = name.replace(" ", "_")
    return combine, count


def _dtype_problem(got, dtype) -> str | None:
    advice = "allocate with dtype=np.result_type(a, b), not np.empty(n), which is float64"
    return dtype_problem(got, dtype, advice=advice)


def check_hillis_steele(
    fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn(xs, combine) -> inclusive scan`` by the Hillis-Steele algorithm.

    ``xs`` is a 1-D NumPy array and ``combine(x, y)`` a vectorised operator (``x`` the
    earlier operands, ``y`` the later ones, as in :mod:`scanbook.ops`): ``np.add``,
    ``np.maximum``, and "keep the earlier" (``x``), which is associative but not commutative.
    Besides the values, the grader counts the calls of ``combine``: one call per level, so at
    most ``ceil(log2 n)`` calls; a serial loop (``n - 1`` calls) does not pass. A float32
    input gives a float32 answer.

    Chapter 2, exercise 1.
    """
    rng = make_rng(5)
    ops_: dict[str, Callable] = {
        "add": np.add,
        "maximum": np.maximum,
        "keep the earlier": lambda x, y: np.asarray(x).copy(),
    }
    cases = []
    for k, n in enumerate(AWKWARD_LENGTHS):
        name = list(ops_)[k % 3]
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
                (xs, name),
                expected,
                show={"xs": xs, "combine": name},
            )
        )
    xs32 = random_values(rng, 21, dtype=np.float32)
    rtol32, atol32 = tolerance(np.float32)
    cases.append(
        Case(
            "add, length 21, float32",
            (xs32, "add"),
            np.cumsum(xs32.astype(np.float64)),
            show={"xs": xs32, "combine": "add"},
            rtol=rtol32,
            atol=atol32 * 10,
        )
    )

    counts: list[list[int]] = []  # the counter of each call of the reader's function

    def run(xs, opname):
        combine, count = _counting(ops_[opname], opname)
        counts.append(count)
        return fn(xs, combine)

    def check(got, expected, case: Case) -> str | None:
        why = compare(got, expected, rtol=case.rtol, atol=case.atol)
        if why is None:
            why = _dtype_problem(got, case.args[0].dtype)
        if why is not None:
            return why
        n = len(case.args[0])
        levels = math.ceil(math.log2(n)) if n > 1 else 0
        calls = counts[-1][0]
        if calls > levels:
            return (
                f"the values are right, but combine was called {calls} times; Hillis-Steele "
                f"needs only ceil(log2 n) = {levels} levels, one vectorised call each"
            )
        return None

    def diagnose(case: Case, got) -> str | None:
        xs, opname = case.args
        if len(xs) > 1 and is_numeric(got) and opname == "keep the earlier" and same(got, xs):
            return "the operands are swapped: combine(x[i - d], x[i]) keeps the earlier first"
        return None

    return grade(
        "check_hillis_steele",
        run,
        cases,
        hint="for d = 1, 2, 4, ... < n: x[d:] = combine(x[:-d], x[d:]) (all positions at once)",
        compare=check,
        diagnose=diagnose,
        forbid=(
            "numpy.cumsum",
            "scanbook.algorithms.hillis_steele",
            "scanbook.scan",
            "scanbook.algorithms.scan",
            "scanbook.serial.scan",
        ),
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


def _counting_ints(values) -> tuple[np.ndarray, list[int]]:
    """An object array of ints that count the additions made with them (fresh for each call)."""
    count = [0]

    class Counted(int):
        def __add__(self, other):
            count[0] += 1
            return Counted(int(self) + int(other))

        __radd__ = __add__

    out = np.empty(len(values), dtype=object)
    out[:] = [Counted(int(v)) for v in values]
    return out, count


def _blelloch_run(fn: Callable):
    """``fn(xs)``, or (``counted=True``) ``fn`` on counting ints: ``(answer, additions)``."""

    def run(xs, counted=False):
        if not counted:
            return fn(xs), None
        values, count = _counting_ints(xs)
        got = fn(values)
        if got is not None and is_numeric(np.asarray(got, dtype=object).astype(np.int64)):
            got = np.asarray(got, dtype=object).astype(np.int64)
        return got, count[0]

    return run


def _blelloch_view_bug(xs: np.ndarray) -> np.ndarray:
    """Blelloch with the down-sweep's left half taken as a view (overwritten before use)."""
    n = len(xs)
    m = 1 << (n - 1).bit_length()
    x = np.zeros(m, dtype=xs.dtype)
    x[:n] = xs
    d = 1
    while d < m:
        x[2 * d - 1 :: 2 * d] += x[d - 1 :: 2 * d]
        d *= 2
    x[m - 1] = 0
    d = m // 2
    while d >= 1:
        left = x[d - 1 :: 2 * d]  # a view: the next line overwrites it
        x[d - 1 :: 2 * d] = x[2 * d - 1 :: 2 * d]
        x[2 * d - 1 :: 2 * d] += left
        d //= 2
    return x[:n]


def check_blelloch(fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False) -> Feedback:
    """Grade ``fn(xs) -> exclusive prefix sums`` (``[0, x0, x0+x1, ...]``) for any length.

    Meant for Blelloch's up-sweep/down-sweep, which works on powers of two: pad the input
    with zeros (the identity) to the next power of two and cut the answer back. Lengths 0, 1,
    2, 3, 5, 8, 13, 16, 31, 100; int64, float64 and float32 (the answer keeps the input's
    dtype). A last case passes an object array of integers that count the additions made
    with them: Blelloch's two sweeps make about ``2 m`` of them (``m`` the padded length), a
    serial loop or ``np.cumsum`` at most ``n``, so only the tree passes.

    Chapter 2, exercise 2.
    """
    rng = make_rng(6)
    cases = []
    for n in AWKWARD_LENGTHS:
        dtype = np.int64 if n in (5, 13) else np.float32 if n == 31 else np.float64
        xs = random_values(rng, n, dtype=dtype, high=9 if dtype == np.int64 else 2.0)
        expected = np.concatenate([np.zeros(1, dtype=dtype), np.cumsum(xs)[:-1]]) if n else xs
        cases.append(Case(f"length {n}, {np.dtype(dtype).name}", (xs,), expected, show={"xs": xs}))
    counted = [int(v) for v in random_values(rng, 12, dtype=np.int64, high=9)]
    cases.append(
        Case(
            "length 12, integers that count the additions made with them",
            (counted,),
            np.concatenate([[0], np.cumsum(counted)[:-1]]).astype(np.int64),
            kwargs={"counted": True},
            show={"xs": counted},
        )
    )

    def check(got, expected, case: Case) -> str | None:
        answer, additions = got
        why = compare(answer, expected, rtol=case.rtol, atol=case.atol)
        if why is not None:
            return why
        want = np.asarray(expected).dtype
        have = np.asarray(answer).dtype
        if additions is None and want.kind == "f" and have != want and len(case.args[0]):
            return f"the values are {have}, but the input was {want}: keep the input's dtype"
        if additions is not None and additions <= len(case.args[0]):
            return (
                f"the values are right, but only {additions} additions were made with the "
                f"elements: that is a serial loop or a library call (np.cumsum), not the tree. "
                f"Blelloch's up-sweep and down-sweep make about 2 m of them"
            )
        return None

    def diagnose(case: Case, got) -> str | None:
        xs, got = np.asarray(case.args[0]), got[0]
        if len(xs) and same(got, np.cumsum(xs)):
            return "that is the inclusive scan; the down-sweep leaves the exclusive one"
        if is_numeric(got) and np.ndim(got) == 1 and len(got) > len(xs):
            return "the answer is still padded: cut it back to len(xs)"
        if len(xs) > 1 and xs.dtype != object and same(got, _blelloch_view_bug(xs)):
            return (
                "x[d - 1::2*d] is a view, not a copy: assigning the right halves into it "
                "overwrites the left values you kept. Take left = x[d - 1::2*d].copy()"
            )
        return None

    return grade(
        "check_blelloch",
        _blelloch_run(fn) if callable(fn) else fn,  # grade explains a non-function
        cases,
        hint="pad to m = 2**ceil(log2 n) with zeros (dtype of xs), up-sweep, set x[m-1] = 0, "
        "down-sweep, return x[:n]",
        compare=check,
        diagnose=diagnose,
        forbid=(
            "numpy.cumsum",
            "scanbook.algorithms.blelloch",
            "scanbook.scan",
            "scanbook.algorithms.scan",
            "scanbook.serial.scan",
        ),
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


def check_work_depth(fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False) -> Feedback:
    """Grade ``fn(n) -> (work, depth)`` of Blelloch's scan on ``n = 2^k`` elements.

    Work is the number of operator applications, depth the number of levels, exactly as
    :class:`scanbook.algorithms.Trace` counts them for :func:`scanbook.algorithms.blelloch`
    (``n`` from 1 to 4096).

    Chapter 2, exercise 4.
    """
    from .. import algorithms, ops

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
        if not all(is_numeric(v) and np.ndim(v) == 0 for v in (w, d)):
            return f"expected two numbers (work, depth), got {format_value(got)}"
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


def _chunked_run(fn: Callable):
    """``fn(a, b, h0, n_chunks)``, or (``counted=True``) on counting floats: (answer, count)."""

    def run(a, b, h0, n_chunks, counted=False):
        if not counted:
            return fn(a, b, h0, n_chunks), None
        (a, b), count = counting_floats(a, b)
        got = fn(a, b, h0, n_chunks)
        if got is not None and is_numeric(np.asarray(got, dtype=object).astype(np.float64)):
            got = np.asarray(got, dtype=object).astype(np.float64)
        return got, count[0]

    return run


def check_chunked(fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False) -> Feedback:
    """Grade ``fn(a, b, h0, n_chunks) -> h``: the linear recurrence by Algorithm 1 of chapter 2.

    ``a``, ``b``: 1-D arrays of length ``T``; ``h0`` a scalar; ``n_chunks = p`` the number of
    processors, which need not divide ``T`` and may exceed it (then use ``min(p, T)``).
    Compared with the float64 loop, for ``p`` = 1, 2, 3, ``sqrt(T)`` and ``T``. A last case
    passes object arrays of floats that count the multiplications made with them: the three
    phases make about ``3 T`` (each chunk reduced, then rescanned), a serial loop or a library
    call at most ``T``, so only the chunked algorithm passes. The answer has the dtype of ``a``
    and ``b`` (float32 in, float32 out).

    Chapter 2, exercise 5.
    """
    base = recurrence_cases(7, (0, 1, 2, 5, 13, 31, 100, 100, 100, 64))
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

    counted = recurrence_cases(17, (60,))[0]
    a60, b60, h060 = counted.args
    cases.append(
        Case(
            "T=60, n_chunks=4, floats that count the multiplications made with them",
            (a60, b60, float(h060), 4),
            counted.expected,
            kwargs={"counted": True},
            show={"a": a60, "b": b60, "h0": float(h060), "n_chunks": 4},
            rtol=counted.rtol,
            atol=counted.atol,
        )
    )

    def check(got, expected, case: Case) -> str | None:
        answer, count = got
        why = compare(answer, expected, rtol=case.rtol, atol=case.atol)
        if why is None and count is None:
            why = _dtype_problem(answer, np.result_type(case.args[0], case.args[1]))
        if why is not None or count is None:
            return why
        T, p = len(case.args[0]), case.args[3]
        if count < 2 * (T - p):
            return (
                f"the values are right, but only {count} multiplications were made with the "
                f"{T} decays: that is one pass over the sequence (a serial loop or a library "
                f"call), not the three phases. Phase 1 reduces every chunk and phase 3 reruns it"
            )
        return None

    def diagnose(case: Case, got) -> str | None:
        a, b, h0, p = case.args
        got = got[0] if isinstance(got, tuple) and len(got) == 2 else got
        if len(a) and is_numeric(got) and np.shape(got) == np.shape(case.expected):
            from .. import serial

            if same(got, np.array(serial.linear_recurrence_loop(a, b, 0.0))):
                return "h0 was lost: the carry-in of chunk 0 is h0"
        return None

    return grade(
        "check_chunked",
        _chunked_run(fn) if callable(fn) else fn,  # grade explains a non-function
        cases,
        compare=check,
        hint="1) reduce each chunk to one affine pair (A_i, B_i); 2) scan the p pairs from h0 "
        "to get each chunk's carry-in; 3) run each chunk's recurrence from its carry-in",
        diagnose=diagnose,
        forbid=(
            *LINEAR_RECURRENCE_FUNCTIONS,
            "scanbook.algorithms.chunked",
            "scanbook.scan",
            "scanbook.algorithms.scan",
            "scanbook.serial.scan",
        ),
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


def _maxplus_loop(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """h[t] = max(a[t] + h[t-1], b[t]) from h[-1] = -inf, in float64."""
    h, out = -np.inf, []
    for t in range(len(a)):
        h = max(float(a[t]) + h, float(b[t]))
        out.append(h)
    return np.array(out, dtype=np.float64)


def _maxplus_parts(fn, identity):
    """``(combine, identity)`` from an Operator, or from a combine function and an identity."""
    if callable(getattr(fn, "combine", None)) and callable(getattr(fn, "identity", None)):
        return fn.combine, fn.identity
    return fn, identity


def _maxplus_run(fn, identity):
    """``combine(x, y)`` on rows ``[a, b]``, or (``algorithm=...``) h from a scan with it."""

    def run(x, y=None, *, algorithm=None, identity_test=False):
        from .. import algorithms, ops

        combine, ident = _maxplus_parts(fn, identity)
        if identity_test:  # e • x and x • e, stacked: both must be x
            e = ident(x, len(x))
            return np.concatenate([combine(e, x), combine(x, e)])
        if algorithm is None:
            return combine(x, y)
        if ident is None:
            ident = _maxplus_identity
        result = algorithms.scan(
            ops.Operator("maxplus", combine, ident, "•"), x, algorithm=algorithm
        )
        return np.asarray(result)[:, 1] if np.ndim(result) == 2 else result

    return run


def _maxplus_identity(like, n):
    return np.tile([0.0, -np.inf], (n, 1))


def _maxplus_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.stack([x[:, 0] + y[:, 0], np.maximum(y[:, 0] + x[:, 1], y[:, 1])], axis=1)


def check_maxplus(
    fn, *, identity: Callable | None = None, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade the max-plus operator on rows ``[a, b]``: ``fn`` is its ``combine(x, y)`` or a
    whole ``sb.ops.Operator`` (then its identity is graded too; or pass ``identity=``).

    First ``combine(x, y)`` on ``(n, 2)`` arrays, ``x`` the earlier rows: expected
    ``[x_a + y_a, max(y_a + x_b, y_b)]``. Then ``h[t] = max(a[t] + h[t-1], b[t])`` from
    ``h[-1] = -inf``, the second column of the inclusive scan of the rows under the operator,
    run by the serial loop, Hillis-Steele, Blelloch and the chunked algorithm (which regroup,
    and pad with the identity), against the float64 loop.

    Chapter 2, exercise 3.
    """
    rng = make_rng(9)
    cases = []
    for n in (1, 5, 13):
        x = np.stack([random_values(rng, n), random_values(rng, n)], axis=1)
        y = np.stack([random_values(rng, n), random_values(rng, n)], axis=1)
        cases.append(Case(f"combine, {n} rows", (x, y), _maxplus_rows(x, y), show={"x": x, "y": y}))
    if _maxplus_parts(fn, identity)[1] is not None:
        x = np.stack([random_values(rng, 6), random_values(rng, 6)], axis=1)
        cases.append(
            Case(
                "identity: e • x then x • e, stacked (both must give x)",
                (x,),
                np.concatenate([x, x]),
                kwargs={"identity_test": True},
                show={"x": x},
            )
        )
    algorithms = ("serial", "hillis_steele", "blelloch", "chunked")
    for k, n in enumerate(n for n in AWKWARD_LENGTHS if n > 1):
        a, b = random_values(rng, n), random_values(rng, n)
        algorithm = algorithms[k % len(algorithms)]
        cases.append(
            Case(
                f"scan of length {n}, algorithm={algorithm!r}",
                (np.stack([a, b], axis=1),),
                _maxplus_loop(a, b),
                kwargs={"algorithm": algorithm},
                show={"a": a, "b": b, "algorithm": algorithm},
            )
        )

    def diagnose(case: Case, got) -> str | None:
        if not case.kwargs:
            x, y = case.args
            if same(got, _maxplus_rows(y, x)):
                return (
                    "the operands are swapped: x is the earlier row, so the later decay y_a is "
                    "added to the earlier value x_b: max(y_a + x_b, y_b)"
                )
            return None
        _, ident = _maxplus_parts(fn, identity)
        if ident is None:
            return None
        try:
            e = np.asarray(ident(case.args[0], 1), dtype=np.float64)
        except Exception:  # noqa: BLE001 - the reader's identity may fail
            return None
        if e.shape != (1, 2) or e[0, 0] != 0 or e[0, 1] != -np.inf:
            return (
                f"the identity must be the row [0, -inf] (add nothing, keep any value); "
                f"got {format_value(e)}: padding with it changes the prefixes"
            )
        return None

    return grade(
        "check_maxplus",
        _maxplus_run(fn, identity),
        cases,
        hint="(a1, b1) • (a2, b2) = (a1 + a2, max(a2 + b1, b2)), identity (0, -inf); rows "
        "[a, b] of an (n, 2) array, x the earlier rows",
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )

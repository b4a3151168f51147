"""Chapter 5's graders: gradients through linear recurrences.

Defined in chapter 5 (Backprop through linear recurrences).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._grading import (
    Case,
    Feedback,
    compare,
    counting_floats,
    grade,
    is_numeric,
    make_rng,
    random_values,
    same,
    tolerance,
)

__all__ = [
    "check_linear_recurrence_vjp",
    "check_matrix_recurrence_vjp",
    "check_shared_decay_grad",
]


def _compare_keeping_dtype(got, expected, case: Case) -> str | None:
    """The default comparison; then every float array of the answer has the inputs' dtype."""
    why = compare(got, expected, rtol=case.rtol, atol=case.atol)
    if why is not None or not isinstance(got, tuple | list):
        return why
    want = np.asarray(case.args[0]).dtype
    for name, item in zip(("the first", "the second", "the third"), got, strict=False):
        have = np.asarray(item).dtype if is_numeric(item) else None
        if have is not None and have.kind == "f" and want.kind == "f" and have != want:
            return (
                f"{name} array is {have}, but the inputs were {want}: keep the inputs' dtype "
                f"(np.zeros_like(g), not np.zeros(g.shape), which is float64)"
            )
    return None


def _vjp_cases(seed: int, reverse: bool) -> list[Case]:
    from .. import recurrence

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


def _vjp_run(fn: Callable):
    """``fn(a, b, h0, h, g)``, or (``counted=True``) on counting floats: ``(answer, count)``."""

    def run(a, b, h0, h, g, counted=False):
        if not counted:
            return fn(a, b, h0, h, g), None
        args, count = counting_floats(a, b, h0, h, g)
        got = fn(*args)
        if isinstance(got, tuple | list) and len(got) == 3:
            try:
                got = tuple(np.asarray(x, dtype=object).astype(np.float64) for x in got)
            except (TypeError, ValueError):
                pass
        return got, count[0]

    return run


def check_linear_recurrence_vjp(
    fn: Callable, *, reverse: bool = False, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn(a, b, h0, h, g) -> (da, db, dh0)``: the gradients through the recurrence.

    ``h = linear_recurrence(a, b, h0, reverse=reverse)`` with ``a``, ``b``, ``h``, ``g`` of
    shape ``(T, C)`` and ``h0`` of shape ``(C,)``; ``g = dL/dh``. Forward, the answer is
    ``db[t] = g[t] + a[t+1] db[t+1]``, ``da[t] = db[t] h[t-1]``, ``dh0 = a[0] db[0]``; with
    ``reverse=True`` every index runs the other way. Compared with
    :func:`scanbook.linear_recurrence_vjp` in float64.

    The answer keeps the inputs' dtype. A last case passes object arrays of floats that count
    the multiplications made with them: the exercise asks for a loop of your own, and a loop
    makes at least one per channel and step (the library refuses such arrays).

    Chapter 5, exercises 1 (``reverse=False``) and 2 (``reverse=True``).
    """
    cases = _vjp_cases(51 if not reverse else 52, reverse)
    base = _vjp_cases(53 if not reverse else 54, reverse)[4]  # T=13, C=4, float64
    cases.append(
        Case(
            "T=13, C=4, floats that count the multiplications made with them",
            base.args,
            base.expected,
            kwargs={"counted": True},
            show=base.show,
            rtol=base.rtol,
            atol=base.atol,
        )
    )
    step = -1 if not reverse else 1  # the neighbour whose decay multiplies db[t]

    def check(got, expected, case: Case) -> str | None:
        answer, count = got
        why = _compare_keeping_dtype(answer, expected, case)
        if why is not None or count is None:
            return why
        T, C = np.shape(case.args[0])
        if count < (T - 1) * C:
            return (
                f"the values are right, but only {count} multiplications were made with the "
                f"inputs, fewer than one per channel and step: the exercise asks for your own "
                f"loop over time"
            )
        return None

    def diagnose(case: Case, got) -> str | None:
        got = got[0] if isinstance(got, tuple) and len(got) == 2 else got
        a, b, h0, h, g = (np.asarray(x, np.float64) for x in case.args)
        T = len(a)
        if T < 1 or not isinstance(got, tuple | list) or len(got) != 3:
            return None
        from .. import recurrence

        # the most common slip: decays not shifted (a[t] instead of a[t+1])
        unshifted = recurrence.linear_recurrence(a, g, None, reverse=not reverse, backend="numpy")
        if T > 1 and same(got[1], unshifted):
            return (
                f"db uses a[t] where it needs a[t{'+' if step < 0 else '-'}1]: h[t] reaches the "
                "loss through the NEXT step, whose decay is that of the next index"
            )
        if same(got[1], case.expected[1]) and same(got[0], case.expected[1] * h):
            return (
                "da[t] multiplies by the state the step started from (h0 at the first step), "
                "not by h[t]"
            )
        if same(got[1], case.expected[1]) and not same(got[2], case.expected[2]):
            first = 0 if not reverse else T - 1
            return f"dh0 flows through the first step: dh0 = a[{first}] * db[{first}]"
        return None

    name = "check_linear_recurrence_vjp" + ("(reverse=True)" if reverse else "")
    return grade(
        name,
        _vjp_run(fn) if callable(fn) else fn,  # grade explains a non-function
        cases,
        hint="run the loop the other way: carry = g[t] + (decay of the next step) * carry "
        "(your own loop: the library refuses the grader's counting numbers)",
        compare=check,
        diagnose=diagnose,
        forbid=(
            "scanbook.linear_recurrence_vjp",
            "scanbook.recurrence.linear_recurrence_vjp",
            "jax.vjp",
            "jax.grad",
        ),
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

    The answer keeps the inputs' dtype (one case is float32). A last case passes object arrays
    of floats that count the multiplications made with them: a loop of your own makes at least
    one per step, while ``jax.vjp`` or the library refuse such arrays.

    Chapter 5, exercise 3.
    """
    rng = make_rng(53)
    cases = []
    for T, n in ((0, 2), (1, 2), (3, 1), (6, 3), (11, 2), (17, 4)):
        dtype = np.float32 if T == 11 else np.float64
        A = random_values(rng, (T, n, n), low=0.1, high=0.6, dtype=dtype)
        b = random_values(rng, (T, n), dtype=dtype)
        h0 = random_values(rng, n, dtype=dtype)
        h64 = np.zeros((T, n))
        carry = h0.astype(np.float64)
        for t in range(T):
            carry = A[t].astype(np.float64) @ carry + b[t]
            h64[t] = carry
        h = h64.astype(dtype)
        g = random_values(rng, (T, n), dtype=dtype)
        rtol, atol = tolerance(dtype)
        cases.append(
            Case(
                f"T={T}, n={n}, {np.dtype(dtype).name}",
                (A, b, h0, h, g),
                _matrix_reference_vjp(*(np.asarray(x, np.float64) for x in (A, b, h0, h, g))),
                show={"A": A, "b": b, "h0": h0, "h": h, "g": g},
                rtol=rtol * 10,
                atol=atol * 100,
            )
        )
    base = cases[3]  # T=6, n=3, float64
    cases.append(
        Case(
            "T=6, n=3, floats that count the multiplications made with them",
            base.args,
            base.expected,
            kwargs={"counted": True},
            show=base.show,
        )
    )

    def check(got, expected, case: Case) -> str | None:
        answer, count = got
        why = _compare_keeping_dtype(answer, expected, case)
        if why is not None or count is None:
            return why
        T = len(case.args[0])
        if count < T - 1:
            return (
                f"the values are right, but only {count} multiplications were made with the "
                f"inputs, fewer than one per step: the exercise asks for your own loop over "
                f"time"
            )
        return None

    def diagnose(case: Case, got) -> str | None:
        got = got[0] if isinstance(got, tuple) and len(got) == 2 else got
        A, b, h0, h, g = (np.asarray(x, np.float64) for x in case.args)
        if len(A) < 2 or not isinstance(got, tuple | list) or len(got) != 3:
            return None
        no_t = _matrix_reference_vjp(np.swapaxes(A, 1, 2), b, h0, h, g)
        if same(got[1], no_t[1]):
            return (
                "the gradient flows back through A[t+1] TRANSPOSED: "
                "lam[t] = g[t] + A[t+1].T @ lam[t+1]"
            )
        dA_t = np.swapaxes(case.expected[0], 1, 2)
        if same(got[1], case.expected[1]) and same(got[0], dA_t):
            return "dA[t] is outer(lam[t], h[t-1]) (rows follow lam), not its transpose"
        return None

    return grade(
        "check_matrix_recurrence_vjp",
        _vjp_run(fn) if callable(fn) else fn,  # grade explains a non-function
        cases,
        hint="the scalar rule with matrices: transpose A where the scalar rule multiplies by a "
        "(your own loop: the grader's counting numbers are refused by library calls)",
        compare=check,
        diagnose=diagnose,
        forbid=("jax.vjp", "jax.grad"),
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


def check_shared_decay_grad(
    fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn(decay, b, h0, g) -> ddecay`` for the filter ``h[t] = decay * h[t-1] + b[t]``.

    One ``decay`` (shape ``(C,)``) is shared by every step, as in an exponential moving
    average; ``b`` and ``g = dL/dh`` have shape ``(T, C)``, ``h0`` shape ``(C,)``; the answer
    has shape ``(C,)``. Because ``decay`` is used at every step, its gradient is the sum over
    time of the per-step ``da``.

    Chapter 5, exercise 4.
    """
    from .. import recurrence

    rng = make_rng(54)
    cases = []
    for T, C in ((1, 1), (2, 2), (9, 3), (50, 2)):
        decay = random_values(rng, C, low=0.5, high=0.95, signed=False)
        b = random_values(rng, (T, C))
        h0 = random_values(rng, C)
        g = random_values(rng, (T, C))
        a = np.broadcast_to(decay, (T, C)).copy()
        h = recurrence.linear_recurrence(a, b, h0, backend="numpy")
        da, _, _ = recurrence.linear_recurrence_vjp(a, b, h0, h, g, backend="numpy")
        cases.append(
            Case(
                f"T={T}, C={C}",
                (decay, b, h0, g),
                da.sum(axis=0),
                show={"decay": decay, "b": b, "h0": h0, "g": g},
            )
        )

    def diagnose(case: Case, got) -> str | None:
        if is_numeric(got) and np.ndim(got) == 2:
            return "that is one gradient per step; decay is shared, so add them up over t"
        return None

    return grade(
        "check_shared_decay_grad",
        fn,
        cases,
        hint="compute da with the chapter's rule for a = decay at every step, then sum over time",
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )

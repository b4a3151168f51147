"""Chapter 10's graders: the chunked scan across devices, simulated with NumPy.

Every exercise runs on one machine: a "device" is a chunk of the sequence, and what a device
would send is counted, not sent. The expected answers are float64 loops.

Defined in chapter 10 (Beyond one device).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._grading import (
    LINEAR_RECURRENCE_FUNCTIONS,
    Case,
    Feedback,
    grade,
    make_rng,
    random_values,
    same,
)

__all__ = [
    "check_chunk_summaries",
    "check_carries",
    "check_sharded_recurrence",
    "check_bytes_sent",
]


# -- float64 references (the three phases written as loops) -------------------------------------


def _loop(a, b, h0):
    h, out = np.array(h0, np.float64), np.zeros(np.shape(b))
    for t in range(len(a)):
        h = a[t] * h + b[t]
        out[t] = h
    return out


def _summaries(a, b, p):
    """``(A, U)``, shape ``(p, *batch)``: each chunk's product of decays and state from zero."""
    T, batch = len(a), np.shape(a)[1:]
    L = -(-T // p) if T else 0
    A, U = np.ones((p, *batch)), np.zeros((p, *batch))
    for i in range(p):
        for t in range(i * L, min((i + 1) * L, T)):
            A[i] = a[t] * A[i]
            U[i] = a[t] * U[i] + b[t]
    return A, U


def _carries(A, U, h0):
    """``C[i]``, the state carried into chunk ``i``: ``C[0] = h0``, ``C[i] = A C[i-1] + U``."""
    C = np.zeros(np.shape(A))
    h = np.array(h0, np.float64)
    for i in range(len(A)):
        C[i] = h
        h = A[i] * h + U[i]
    return C


def _problem(rng, T, batch=()):
    a = random_values(rng, (T, *batch), low=0.5, high=1.0)
    b = random_values(rng, (T, *batch))
    h0 = random_values(rng, batch) if batch else float(random_values(rng, ()))
    return a, b, h0


# -- exercise 1: the summaries -------------------------------------------------------------------


def check_chunk_summaries(
    fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn(a, b, p) -> (A, U)``: the summary of each of ``p`` chunks.

    ``a``, ``b`` of shape ``(T, *batch)`` are split into ``p`` chunks of ``L = ceil(T / p)``
    steps (the last ones shorter or empty). ``A[i]`` is the product of chunk ``i``'s decays
    and ``U[i]`` its final state from a zero start, both of shape ``(p, *batch)``; an empty
    chunk is the identity map, ``A = 1, U = 0``. Compared with a float64 loop.

    Chapter 10, exercise 1.
    """
    rng = make_rng(1001)
    cases = []
    sizes = [(8, 2, ()), (7, 3, ()), (13, 4, (2,)), (1, 4, ()), (3, 8, (2,)), (37, 8, (3,))]
    for T, p, batch in [*sizes, (0, 2, ()), (5, 1, ())]:
        a, b, _ = _problem(rng, T, batch)
        show = {"a": a, "b": b, "p": p}
        cases.append(
            Case(f"T={T}, p={p}, batch={batch}", (a, b, p), _summaries(a, b, p), show=show)
        )

    def diagnose(case: Case, got) -> str | None:
        a, b, p = case.args
        if not isinstance(got, tuple | list) or len(got) != 2:
            return "return a pair (A, U)"
        A, U = case.expected
        if same(got[0], A) and not same(got[1], U):
            T = len(a)
            L = -(-T // p) if T else 0
            sums = np.stack([b[i * L : (i + 1) * L].sum(0) for i in range(p)]) if T else U
            if same(got[1], sums):
                return "U is not the sum of b: decay the running state, u = a[t] * u + b[t]"
            return "U[i] is the state at the end of chunk i, run from u = 0 over its steps"
        if np.shape(got[0]) != np.shape(A):
            return (
                "one summary per chunk, shape (p, *batch), even for chunks past the end of "
                "the sequence (they are the identity: A = 1, U = 0)"
            )
        return "A[i] is the product of the decays a[t] over chunk i's steps (1 if it is empty)"

    return grade(
        "check_chunk_summaries",
        fn,
        cases,
        hint="L = -(-T // p); for chunk i run u = a[t] * u + b[t] and P = a[t] * P over its steps",
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


# -- exercise 2: the carries -----------------------------------------------------------------------


def check_carries(fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False) -> Feedback:
    """Grade ``fn(A, U, h0) -> C``: the state carried into each chunk.

    ``A``, ``U`` of shape ``(p, *batch)`` are the chunk summaries; ``C[0] = h0`` and
    ``C[i] = A[i-1] * C[i-1] + U[i-1]`` (an exclusive scan), shape ``(p, *batch)``.
    Compared with a float64 loop.

    Chapter 10, exercise 2.
    """
    rng = make_rng(1002)
    cases = []
    for p, batch in ((1, ()), (2, ()), (3, (2,)), (8, ()), (8, (3,)), (5, (2, 2))):
        A = random_values(rng, (p, *batch), low=0.3, high=1.0)
        U = random_values(rng, (p, *batch))
        h0 = random_values(rng, batch)
        show = {"A": A, "U": U, "h0": h0}
        cases.append(Case(f"p={p}, batch={batch}", (A, U, h0), _carries(A, U, h0), show=show))

    def diagnose(case: Case, got) -> str | None:
        A, U, h0 = case.args
        C = case.expected
        after = np.array([A[i] * C[i] + U[i] for i in range(len(A))])
        if same(got, after):
            return (
                "those are the states AFTER each chunk; a device needs the state BEFORE its "
                "chunk: C[0] = h0 (an exclusive scan)"
            )
        if same(got, _carries(A, U, np.zeros_like(h0))):
            return "start from h0, not from zero: C[0] = h0"
        return None

    return grade(
        "check_carries",
        fn,
        cases,
        hint="h = h0; for each chunk i: C[i] = h, then h = A[i] * h + U[i]",
        diagnose=diagnose,
        forbid=LINEAR_RECURRENCE_FUNCTIONS,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


# -- exercise 3: the whole algorithm -------------------------------------------------------------


def check_sharded_recurrence(
    fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn(a, b, h0, p) -> h``: Algorithm 1 simulated on ``p`` devices in NumPy.

    ``h[t] = a[t] * h[t-1] + b[t]`` with ``h[-1] = h0``, shape ``(T, *batch)``, for any ``T``
    and ``p`` (``T`` not a multiple of ``p``, ``p > T``, ``T = 0``). Compared with the float64
    loop; a correct answer computes each chunk's part from its own steps and its carry.

    Chapter 10, exercise 3.
    """
    rng = make_rng(1003)
    cases = []
    sizes = [(12, 3, ()), (13, 4, ()), (37, 8, (2,)), (1, 2, ()), (5, 8, (3,)), (0, 4, ())]
    for T, p, batch in [*sizes, (64, 1, ())]:
        a, b, h0 = _problem(rng, T, batch)
        show = {"a": a, "b": b, "h0": h0, "p": p}
        label = f"T={T}, p={p}, batch={batch}"
        cases.append(Case(label, (a, b, h0, p), _loop(a, b, h0), show=show))

    def diagnose(case: Case, got) -> str | None:
        a, b, h0, p = case.args
        T = len(a)
        if T == 0 or np.shape(got) != np.shape(case.expected):
            return None
        L = -(-T // p) if T else 1
        local = np.concatenate([_loop(a[i : i + L], b[i : i + L], 0 * h0) for i in range(0, T, L)])
        if same(got, local):
            return "each chunk was scanned from zero but never fixed up with its carry"
        if T and same(got[:L], local[:L]) and not same(got[:L], case.expected[:L]):
            return "the first chunk starts from h0, not from zero"
        return None

    return grade(
        "check_sharded_recurrence",
        fn,
        cases,
        hint=(
            "phase 1: summaries of each chunk; phase 2: carries (exercise 2); phase 3: "
            "h[t] = u[t] + P[t] * carry, with P the running product of the chunk's decays"
        ),
        diagnose=diagnose,
        forbid=LINEAR_RECURRENCE_FUNCTIONS,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


# -- exercise 4: counting bytes ------------------------------------------------------------------


def check_bytes_sent(fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False) -> Feedback:
    """Grade ``fn(T, channels, p, itemsize) -> (sharded, gather_all)``: bytes a device sends.

    The ring all-gather model of chapter 10: a device passes on ``p - 1`` blocks. For the
    sharded scan a block is one summary, ``2 * channels`` numbers; to gather the whole
    sequence a block is a chunk of ``a`` and ``b``, ``2 * channels * ceil(T / p)`` numbers.
    Each number is ``itemsize`` bytes. Compared with
    :func:`scanbook.distributed.communication_bytes`.

    Chapter 10, exercise 4.
    """
    from .. import distributed

    cases = []
    sizes = [(4096, 16, 8, 4), (1000, 3, 4, 8), (10, 1, 3, 4), (7, 5, 1, 4), (1 << 20, 64, 64, 2)]
    for T, C, p, s in sizes:
        want = distributed.communication_bytes(T, C, p, s)
        expected = (want["sharded_scan"], want["gather_all"])
        cases.append(Case(f"T={T}, channels={C}, p={p}, itemsize={s}", (T, C, p, s), expected))

    def diagnose(case: Case, got) -> str | None:
        T, C, p, s = case.args
        if not isinstance(got, tuple | list) or len(got) != 2:
            return "return a pair (sharded, gather_all)"
        L = -(-T // p)
        if same(got[0], 2 * C * s * p) or same(got[1], 2 * C * L * s * p):
            return "a device passes on p - 1 blocks, not p: it already holds its own"
        if same(got[0], C * s * (p - 1)):
            return "a summary is two numbers per channel: the product of decays AND the state"
        if same(got[1], 2 * C * (T // p) * s * (p - 1)) and T % p:
            return "the chunk length is ceil(T / p) when p does not divide T"
        return None

    return grade(
        "check_bytes_sent",
        fn,
        cases,
        hint="(p - 1) blocks; a summary block 2*channels*itemsize, a data block L times that",
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )

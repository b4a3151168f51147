"""Chapter 4's graders: dividing work, the warp scan of affine maps (in NumPy and in CUDA C, run
on the emulated GPU), decoupled look-back.

Defined in chapter 4 (CUDA C through CuPy RawKernel).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from ._grading import (
    Case,
    Feedback,
    format_value,
    grade,
    is_numeric,
    make_rng,
    random_values,
    same,
)

__all__ = [
    "check_divide_work",
    "check_affine_warp_scan",
    "check_lookback",
    "check_warp_suffix_scan_cuda",
]


def _divide_work_reference(n_jobs: int, n_workers: int, w: int) -> tuple[int, int]:
    small, extra = divmod(n_jobs, n_workers)
    begin = w * small + min(w, extra)
    return begin, begin + small + (1 if w < extra else 0)


def _whole(x) -> bool:
    """Is ``x`` one real number with no fractional part?"""
    if not is_numeric(x) or np.ndim(x) != 0 or np.asarray(x).dtype.kind not in "biuf":
        return False
    return bool(np.isfinite(x)) and float(x) == int(x)


def check_divide_work(
    fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn(n_jobs, n_workers, w) -> (begin, end)``: worker ``w``'s contiguous range.

    As ``divide_work`` in ``three_phase.cu``: the ranges of workers ``0 .. n_workers - 1``
    cover ``0 .. n_jobs`` in order, their sizes differ by at most one, and the first
    ``n_jobs % n_workers`` workers take the longer ones. Sizes past ``2**31`` are included:
    the arithmetic must not wrap (in Python it cannot; in C it must be 64-bit).

    Chapter 4, exercise 2.
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
        if not all(_whole(x) for x in got):
            return f"expected a pair of whole numbers (begin, end), got {format_value(got)}"
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

    Chapter 4, exercise 4.
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
        if cg > 1 and isinstance(got, tuple | list) and len(got) == 2 and same(got[1], wrong[1]):
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

    Chapter 4, exercise 6.
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
                f"{n_agg} aggregates, then an inclusive state"
                + ("" if channels is None else f", {channels} channels"),
                (preds,),
                _lookback_reference(preds),
                show={"preds": preds},
            )  # fmt: skip
        )

    def diagnose(case: Case, got) -> str | None:
        (preds,) = case.args
        k = next(i for i, p in enumerate(preds) if p[0] == 2)
        backwards = _lookback_reference(list(reversed(preds[:k])) + preds[k:])
        if k > 1 and is_numeric(got) and same(got, backwards):
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


# ----------------------------------------------------------------------------------------------
# the CUDA C exercise: run on the emulated GPU (no GPU, no nvcc; g++ only)
# ----------------------------------------------------------------------------------------------


def _warp_variant(a, b, n_threads, *, direction="down", condition=True, swapped=False):
    """NumPy model of a warp's Hillis-Steele scan with a given mistake (for the diagnosis):
    lanes past ``a.size`` hold the identity; a lane whose shuffle partner is outside the warp
    gets its own value back, as ``__shfl_*_sync`` gives."""
    A = np.ones(n_threads)
    B = np.zeros(n_threads)
    A[: a.size], B[: b.size] = a, b
    lane = np.arange(n_threads) % 32
    o = 1
    while o < 32:
        inside = lane + o < 32 if direction == "down" else lane - o >= 0
        src = np.arange(n_threads) + (o if direction == "down" else -o)
        src = np.where(inside, src, np.arange(n_threads))
        A1, B1 = A[src], B[src]
        take = inside if condition else np.ones(n_threads, bool)
        if swapped:
            A, B = np.where(take, A1 * A, A), np.where(take, A1 * B + B1, B)
        else:
            A, B = np.where(take, A * A1, A), np.where(take, A * B1 + B, B)
        o *= 2
    return A[: a.size], B[: b.size]


class _NotRun:
    """What the grader got when the reader's source could not run: its reason."""

    def __init__(self, reason: str):
        self.reason = reason

    def __repr__(self) -> str:
        return f"a kernel that did not run: {self.reason}"

    __str__ = __repr__


def check_warp_suffix_scan_cuda(
    fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn() -> str``: the CUDA C of ``stages.SUFFIX_SCAN_TEMPLATE`` with its blank
    filled in, a kernel ``warp_suffix_scan(a, b, A_out, B_out, n)`` in which each warp scans its
    32 maps ``x -> a[i] x + b[i]`` from the last to the first.

    The source is compiled with g++ and launched on the emulated GPU
    (:mod:`scanbook.kernels.emulated`, in a process of its own) for lengths ``n`` that fill no,
    one or several warps and blocks exactly; ``(A_out, B_out)`` is compared with the float64
    reference ``stages.suffix_scan_reference``. An out-of-bounds write, lanes that skip a
    shuffle, an endless loop and a compile error are reported as such.

    Chapter 4, exercise 5.
    """
    from scanbook.kernels import emulated, stages

    from . import _grading

    rng = make_rng(44)
    cases = []
    # full warps first (the scan itself), then warps cut short by n (the identity padding)
    shapes = ((32, 32), (64, 64), (70, 64), (5, 64), (1, 32), (33, 64), (100, 96), (200, 64))
    for n, block in shapes:
        a = random_values(rng, n, low=0.5, high=1.0) * rng.choice([-1.0, 1.0], n)
        b = random_values(rng, n)
        grid = -(-n // block)
        cases.append(
            Case(
                f"n={n}, {grid} block(s) of {block} threads",
                (a, b, block),
                stages.suffix_scan_reference(a, b),
                show={"n": n, "block": block},
            )
        )

    def run(a, b, block):
        code = fn()
        if not isinstance(code, str):
            return code  # reported as what was got, with a hint (diagnose)
        if stages.BLANK in code:
            return _NotRun(f"the blank {stages.BLANK} is still in the source: replace it")
        if "__shfl" not in re.sub(r"//[^\n]*|/\*.*?\*/", "", code, flags=re.S):
            return _NotRun(
                "the source has no warp shuffle: the exercise asks for a warp scan with "
                "__shfl_down_sync, not a loop over the lanes' elements"
            )
        if not emulated.available():
            raise RuntimeError("the emulated GPU needs g++ (apt-get install g++)")
        n = a.size
        grid = -(-n // block)
        A_out, B_out = np.full(n, np.nan), np.full(n, np.nan)
        try:
            _, _, A_out, B_out = emulated.run_isolated(
                code,
                "warp_suffix_scan",
                grid,
                block,
                [a, b, A_out, B_out, np.int64(n)],
                timeout=15,
            )
        except RuntimeError as exc:
            if "does not compile" not in str(exc):
                raise
            return _NotRun(str(exc))
        except emulated.OutOfBoundsWrite:
            raise ValueError(
                f"the kernel wrote past the end of A_out or B_out (n = {n}, {grid * block} "
                "threads): store only where i < n"
            ) from None
        return A_out, B_out

    def diagnose(case: Case, got) -> str | None:
        a, b, block = case.args
        if isinstance(got, _NotRun):
            return str(got)
        if not (isinstance(got, tuple) and len(got) == 2):
            return "return the CUDA C source, the template with its blank filled in, as a str"

        n_threads = -(-a.size // block) * block
        variants = (
            (dict(swapped=True), "the maps are combined in the wrong order: the one received "
             "from the higher lane comes first in time, so B = A * B1 + B, then A = A * A1"),
            (dict(condition=False), "lanes near the top of the warp combined with their own "
             "value (__shfl_down_sync gives it back when lane + o >= 32): combine only if "
             "lane + o < 32"),
            (dict(direction="up"), "this scanned towards higher lanes (__shfl_up_sync); the "
             "suffix scan takes from the lane o above: __shfl_down_sync"),
        )  # fmt: skip
        for kw, message in variants:
            _, B = _warp_variant(a, b, n_threads, **kw)
            if same(got[1], B) and not same(B, case.expected[1]):
                return message
        full = (a.size // 32) * 32  # the warps that n does not cut short
        if a.size % 32 and same(got[1][:full], case.expected[1][:full]):
            return (
                "only the last warp, cut short by n, is wrong: its lanes at i >= n must hold "
                "the identity map (A, B) = (1, 0), not whatever lies past the arrays"
            )
        return None

    limit = _grading.DEFAULT_TIME_LIMIT
    if limit is not None and limit >= 10:  # room for g++ on a busy machine
        limit = max(limit, 60.0)
    return grade(
        "check_warp_suffix_scan_cuda",
        run,
        cases,
        hint="load the identity (1, 0) when i >= n; for o = 1, 2, 4, 8, 16 every lane "
        "shuffles A and B down by o (__shfl_down_sync(0xffffffffu, A, o)), and lanes with "
        "lane + o < 32 combine (A, B) after the received map; store only where i < n",
        diagnose=diagnose,
        time_limit=limit,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )

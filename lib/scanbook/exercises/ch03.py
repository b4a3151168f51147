"""Chapter 3's graders: bank conflicts, block sums, carry-in, the warp scan.

Defined in chapter 3 (Blelloch on the GPU with Numba CUDA).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._grading import (
    LINEAR_RECURRENCE_FUNCTIONS,
    Case,
    Feedback,
    compare,
    dtype_problem,
    grade,
    is_numeric,
    make_rng,
    random_values,
    same,
    tolerance,
)

__all__ = [
    "check_bank_conflict_degree",
    "check_scan_with_block_sums",
    "check_carry_in",
    "check_warp_scan",
    "check_recurrence_kernel",
    "check_uniform_add_kernel",
]


def check_bank_conflict_degree(
    fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn(addresses) -> k``: the ``k``-way bank conflict of one warp's request.

    ``addresses`` is a list of up to 32 shared-memory word indices (4-byte words), one per
    thread of a warp. Word ``w`` lives in bank ``w % 32``; threads that read the *same* word
    share one broadcast, so ``k`` is the largest number of *distinct* words in any one bank
    (1: conflict-free). Compared with :func:`scanbook.kernels.numba_cuda.bank_conflicts`'s
    rule.

    Chapter 3, exercise 2.
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


def _dtype_problem(got, dtype) -> str | None:
    advice = "np.asarray(x), not np.asarray(x, dtype=float), which makes float64"
    return dtype_problem(got, dtype, advice=advice)


def _block_scan_calls(n: int, block: int) -> int:
    """The calls of ``block_scan`` that the recursive scan of ``n`` elements makes: one per
    tile, then (while there is more than one tile) those of the scan of the tile totals."""
    tiles = -(-n // block)
    return tiles + _block_scan_calls(tiles, block) if tiles > 1 else tiles


def _tile_scanner(block: int) -> tuple[Callable, list[int]]:
    """An inclusive block scan that refuses tiles longer than ``block``, and its call counter.

    A plain function made fresh for every call of the reader's code (no attribute exposes
    the counter), like the counting operators of chapter 2's graders.
    """
    calls = [0]

    def block_scan(tile):
        tile = np.asarray(tile)
        if tile.ndim != 1 or len(tile) > block:
            raise ValueError(
                f"block_scan scans at most block={block} elements; got shape {tile.shape}"
            )
        calls[0] += 1
        return np.cumsum(tile)

    return block_scan, calls


def _scan_blocks_run(fn: Callable):
    """``fn(x, block, block_scan)`` with a fresh counting ``block_scan``: ``(answer, calls)``."""

    def run(x, block):
        block_scan, calls = _tile_scanner(block)
        got = fn(x, block, block_scan)
        return got, calls[0]

    return run


def check_scan_with_block_sums(
    fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn(x, block, block_scan) -> inclusive scan of x`` for any length.

    ``block_scan(tile)`` returns the inclusive scan of a tile of at most ``block`` elements
    (and raises for a longer one), as one CUDA block would. Build the scan of any length from
    it as :func:`scanbook.kernels.numba_cuda.scan` does: scan the tiles, scan the tile totals
    (recursively: there may be more than ``block`` of them), add each tile's prefix back.
    Lengths 0, 1, ``block - 1``, ``block``, ``block + 1``, ``block**2 + 3`` (two levels), and
    a float32 input (the answer stays float32). ``block_scan`` counts its calls: every tile
    goes through it, and so do the tile totals, recursively (``ceil(tiles / block)`` more
    calls, and so on while more than one tile remains), so neither ``np.cumsum`` of the whole
    array nor ``np.cumsum`` of the totals passes.

    Chapter 3, exercise 3.
    """
    rng = make_rng(32)
    cases = []
    for block, n in ((4, 0), (4, 1), (4, 3), (4, 4), (4, 5), (4, 19), (8, 100), (4, 70)):
        x = random_values(rng, n)
        expected = np.cumsum(x) if n else x.copy()
        cases.append(
            Case(
                f"length {n}, block {block}",
                (x, block),
                expected,
                show={"x": x, "block": block},
            )
        )
    x32 = random_values(rng, 45, dtype=np.float32)
    rtol32, atol32 = tolerance(np.float32)
    cases.append(
        Case(
            "length 45, block 4, float32",
            (x32, 4),
            np.cumsum(x32.astype(np.float64)),
            show={"x": x32, "block": 4},
            rtol=rtol32,
            atol=atol32 * 10,
        )
    )

    def check(got, expected, case: Case) -> str | None:
        answer, calls = got
        why = compare(answer, expected, rtol=case.rtol, atol=case.atol)
        if why is not None:
            return why
        x, block = case.args
        why = _dtype_problem(answer, x.dtype)
        if why is not None:
            return why
        tiles = -(-len(x) // block)
        if len(x) and calls < tiles:
            return (
                f"the values are right, but block_scan was called {calls} times for {tiles} "
                f"tiles: scan every tile with block_scan (one CUDA block each), not with a "
                f"library call such as np.cumsum over the whole array"
            )
        needed = _block_scan_calls(len(x), block)
        if calls < needed:
            return (
                f"the values are right, but block_scan was called {calls} times: the {tiles} "
                f"tiles take {tiles} calls, and scanning their totals with the same function "
                f"(recursively, {needed - tiles} calls for {tiles} totals in tiles of {block}) "
                f"takes the rest; the totals must be scanned by block_scan too, not by a "
                f"library call"
            )
        return None

    def diagnose(case: Case, got) -> str | None:
        x, block = case.args
        got = got[0] if isinstance(got, tuple) and len(got) == 2 else got
        n = len(x)
        if not is_numeric(got) or np.shape(got) != (n,) or n <= block:
            return None
        tiles = np.concatenate([np.cumsum(x[i : i + block]) for i in range(0, n, block)])
        if same(got, tiles):
            return "the tiles are scanned but their prefixes were never added back"
        return None

    return grade(
        "check_scan_with_block_sums",
        _scan_blocks_run(fn) if callable(fn) else fn,  # grade explains a non-function
        cases,
        compare=check,
        hint="totals = last element of each scanned tile; prefix = fn(totals) shifted right by "
        "one (0 first); add prefix[k] to tile k",
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


def check_carry_in(fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False) -> Feedback:
    """Grade ``fn(P, R, h0) -> carry``: phase 2 of the chunked recurrence kernel.

    ``P``, ``R``: shape ``(p, C)``, chunk ``k`` maps the state before it to
    ``P[k] * h + R[k]`` (the pair ``(P_k, R_k)`` of section 3.6); ``h0``: shape ``(C,)``.
    Return the state *entering* each chunk, shape ``(p, C)``: ``carry[0] = h0`` and
    ``carry[k] = P[k-1] * carry[k-1] + R[k-1]``.

    Chapter 3, exercise 5.
    """
    rng = make_rng(33)
    cases = []
    for p, C in ((1, 1), (2, 1), (5, 3), (13, 2), (100, 4)):
        P = random_values(rng, (p, C), low=0.5, high=1.0)
        R = random_values(rng, (p, C))
        h0 = random_values(rng, C)
        carry = np.empty((p, C))
        state = h0.copy()
        for k in range(p):
            carry[k] = state
            state = P[k] * state + R[k]
        shown = {"P": P, "R": R, "h0": h0}
        cases.append(Case(f"p={p} chunks, C={C}", (P, R, h0), carry, show=shown))

    def diagnose(case: Case, got) -> str | None:
        P, R, h0 = case.args
        from .. import serial

        if is_numeric(got) and same(got, serial.linear_recurrence_numpy(P, R, h0)):
            return "that is the state leaving each chunk (inclusive): shift it, h0 enters chunk 0"
        return None

    return grade(
        "check_carry_in",
        fn,
        cases,
        hint="run the recurrence over the chunk pairs from h0 and keep the state *before* each",
        diagnose=diagnose,
        forbid=LINEAR_RECURRENCE_FUNCTIONS,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


def _shuffler() -> tuple[Callable, list[int]]:
    """``shfl_up(v, d)``: lane ``i`` receives ``v[i - d]``; lanes below ``d`` keep ``v[i]``.

    A fresh plain function per call of the reader's code, and its call counter (kept out of
    the reader's reach: no attribute to reset).
    """
    count = [0]

    def shfl_up(v, d):
        v = np.asarray(v)
        if v.shape != (32,):
            raise ValueError(f"shfl_up moves one value per lane: shape (32,); got {v.shape}")
        d = int(d)
        if not 0 < d < 32:
            raise ValueError(f"delta must be between 1 and 31; got {d}")
        count[0] += 1
        out = v.copy()
        out[d:] = v[:-d]
        return out

    return shfl_up, count


def check_warp_scan(fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False) -> Feedback:
    """Grade ``fn(v, shfl_up) -> inclusive sums`` of the 32 lanes of a warp.

    ``v`` has shape ``(32,)``, one value per lane; ``shfl_up(v, d)`` is ``cuda.shfl_up_sync``
    for the whole warp at once: lane ``i`` receives ``v[i - d]``, and lanes ``i < d`` receive
    their own value back. A warp scan makes exactly ``log2 32 = 5`` shuffles (``d = 1, 2, 4,
    8, 16``); fewer (a library call makes none) or more fail. A float32 input gives a float32
    answer.

    Chapter 3, exercise 6.
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
        cases.append(Case(label, (v,), np.cumsum(v), show={"v": v}))
    v32 = random_values(rng, 32, dtype=np.float32)
    rtol32, atol32 = tolerance(np.float32)
    cases.append(
        Case(
            "random, float32",
            (v32,),
            np.cumsum(v32.astype(np.float64)),
            show={"v": v32},
            rtol=rtol32,
            atol=atol32 * 10,
        )
    )
    used: list[list[int]] = []

    def run(v):
        shfl_up, count = _shuffler()
        used.append(count)
        return fn(v, shfl_up)

    def check(got, expected, case: Case) -> str | None:
        why = compare(got, expected, rtol=case.rtol, atol=case.atol)
        if why is None:
            why = _dtype_problem(got, case.args[0].dtype)
        if why is not None:
            return why
        k = used[-1][0]
        if k < 5:
            return (
                f"right values, but a 32-lane scan needs log2(32) = 5 shuffle steps; your "
                f"function made {k}: the lanes must exchange their values with shfl_up"
            )
        if k > 5:
            return f"right values, but {k} shuffles: 5 (d = 1, 2, 4, 8, 16) suffice"
        return None

    def diagnose(case: Case, got) -> str | None:
        v = case.args[0]
        x = v.copy()
        for d in (1, 2, 4, 8, 16):
            y = x.copy()
            y[d:] = x[:-d]
            x = x + y
        if same(got, x):
            return "lanes i < d got their own value back and added it: only lanes i >= d add"
        return None

    return grade(
        "check_warp_scan",
        run,
        cases,
        hint="for d in 1, 2, 4, 8, 16: up = shfl_up(x, d); x = where(lane >= d, x + up, x)",
        compare=check,
        diagnose=diagnose,
        forbid=("numpy.cumsum",),
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


def _is_cuda_kernel(fn) -> bool:
    """A ``@cuda.jit`` kernel: a real one, or the CUDA simulator's stand-in."""
    return callable(getattr(fn, "__getitem__", None)) and hasattr(fn, "py_func")


def _launch(kernel, threads: int):
    """``run(a, b, h0) -> h``: allocate ``h``, launch ``kernel[blocks, threads](a, b, h0, h)``."""

    def run(a, b, h0):
        if not _is_cuda_kernel(kernel):
            # not a kernel: call it as a function, so that what it returns is reported
            return kernel(a, b, h0)
        from numba import cuda

        h = np.full_like(b, np.nan)
        C = a.shape[1]
        blocks = max(1, -(-C // threads))
        if cuda.is_available() and not getattr(cuda, "simulator_available", lambda: False)():
            d_h = cuda.to_device(h)
            kernel[blocks, threads](cuda.to_device(a), cuda.to_device(b), cuda.to_device(h0), d_h)
            cuda.synchronize()
            return d_h.copy_to_host()
        kernel[blocks, threads](a, b, h0, h)
        return h

    return run


def check_recurrence_kernel(
    kernel, *, threads: int = 32, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade a Numba CUDA kernel ``kernel(a, b, h0, h)``: one thread per channel, a serial loop.

    ``a``, ``b``, ``h``: time-major arrays of shape ``(T, C)``; ``h0``: shape ``(C,)``. The
    grader allocates ``h`` (filled with NaN, so a step the kernel never writes shows), launches
    ``kernel[ceil(C / threads), threads](a, b, h0, h)`` (in Numba's CUDA simulator when there
    is no GPU) and compares ``h`` with the float64 loop ``h[t] = a[t] h[t-1] + b[t]``,
    ``h[-1] = h0``. The channel counts are not multiples of ``threads``, so threads past the
    last channel must do nothing; ``T = 0`` must work; float32 and float64.

    Chapter 3, exercise 1.
    """
    from .. import serial

    rng = make_rng(35)
    cases = []
    for T, C, dtype in (
        (1, 1, np.float64),
        (9, 3, np.float64),
        (17, 37, np.float32),
        (0, 5, np.float64),
        (23, 64, np.float64),
        (12, 70, np.float32),
    ):
        a = random_values(rng, (T, C), low=0.5, high=1.0, dtype=dtype)
        b = random_values(rng, (T, C), dtype=dtype)
        h0 = random_values(rng, (C,), dtype=dtype)
        expected = serial.linear_recurrence_numpy(
            a.astype(np.float64), b.astype(np.float64), h0.astype(np.float64)
        )
        rtol, atol = (2e-5, 1e-5) if dtype == np.float32 else (1e-10, 1e-12)
        cases.append(
            Case(
                f"T={T}, C={C}, {np.dtype(dtype).name}",
                (a, b, h0),
                expected,
                show={"a": a, "b": b, "h0": h0},
                rtol=rtol,
                atol=atol,
            )
        )

    def diagnose(case: Case, got) -> str | None:
        if not _is_cuda_kernel(kernel):
            return (
                "this is not a CUDA kernel: decorate the function with @cuda.jit (from numba "
                "import cuda) and pass the kernel itself; it writes into h and returns nothing"
            )
        a, b, h0 = case.args
        if not is_numeric(got) or np.shape(got) != np.shape(case.expected) or not len(a):
            return None
        if np.isnan(got).any():
            t, c = (int(i) for i in np.argwhere(np.isnan(got))[0])
            return (
                f"h[{t}, {c}] was never written: every thread c < C must walk all T steps of "
                f"its channel (c = cuda.grid(1)) and store h[t, c] at every step"
            )
        from .. import serial

        if same(got, serial.linear_recurrence_numpy(a, b, np.zeros_like(h0))):
            return "h0 was ignored: the carry of channel c starts at h0[c]"
        return None

    hint = (
        "c = cuda.grid(1); threads with c >= C (the last block has more threads than "
        "channels) must do nothing; else carry = h0[c] and for each t: carry = a[t, c] * "
        "carry + b[t, c]; h[t, c] = carry"
    )
    if not _is_cuda_kernel(kernel):
        hint = (
            "pass a CUDA kernel: decorate the function with @cuda.jit (from numba import cuda); "
            "the grader launches it as kernel[blocks, threads](a, b, h0, h)"
        )
    return grade(
        "check_recurrence_kernel",
        _launch(kernel, threads),
        cases,
        hint=hint,
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


def _launch_uniform_add(kernel, threads: int):
    """``run(x, prefixes, tile) -> x`` after ``kernel[ceil(n / threads), threads]`` in place."""

    def run(x, prefixes, tile):
        if not _is_cuda_kernel(kernel):
            return kernel(x, prefixes, tile)  # not a kernel: report what it returns
        from numba import cuda

        blocks = max(1, -(-len(x) // threads))
        if cuda.is_available() and not getattr(cuda, "simulator_available", lambda: False)():
            d_x = cuda.to_device(x)
            kernel[blocks, threads](d_x, cuda.to_device(prefixes), tile)
            cuda.synchronize()
            return d_x.copy_to_host()
        kernel[blocks, threads](x, prefixes, tile)
        return x

    return run


def check_uniform_add_kernel(
    kernel, *, threads: int = 32, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade a Numba CUDA kernel ``kernel(x, prefixes, tile)``: the uniform add of section 3.5.

    ``x`` (1-D, length ``n``) holds the scanned tiles of ``tile`` elements each (the last may
    be shorter); ``prefixes[k]`` is the sum of everything before tile ``k``. The kernel adds
    ``prefixes[i // tile]`` to ``x[i]`` in place, one thread per element. The grader
    launches ``kernel[ceil(n / threads), threads](x, prefixes, tile)`` (in Numba's CUDA
    simulator when there is no GPU) with tiles that are not the size of the launch's blocks
    and lengths that are not multiples of either, and compares ``x``; float32 and float64.

    Chapter 3, exercise 4.
    """
    rng = make_rng(36)
    cases = []
    for n, tile, dtype in (
        (1, 4, np.float64),
        (7, 4, np.float64),
        (33, 8, np.float32),
        (100, 16, np.float64),
        (70, 64, np.float32),
        (130, 5, np.float64),
    ):
        x = random_values(rng, n, dtype=dtype)
        tiles = -(-n // tile)
        prefixes = random_values(rng, tiles, dtype=dtype)
        expected = x.astype(np.float64) + prefixes.astype(np.float64)[np.arange(n) // tile]
        rtol, atol = (1e-6, 1e-6) if dtype == np.float32 else (1e-12, 1e-12)
        cases.append(
            Case(
                f"n={n}, tile={tile}, {np.dtype(dtype).name}",
                (x, prefixes, tile),
                expected,
                show={"x": x, "prefixes": prefixes, "tile": tile},
                rtol=rtol,
                atol=atol,
            )
        )

    def diagnose(case: Case, got) -> str | None:
        if not _is_cuda_kernel(kernel):
            return None
        x, prefixes, tile = case.args
        if not is_numeric(got) or np.shape(got) != np.shape(case.expected):
            return None
        n = len(x)
        by_block = (
            x.astype(np.float64)
            + np.concatenate([prefixes.astype(np.float64), np.zeros(n)])[np.arange(n) // threads]
        )
        if tile != threads and same(got, by_block):
            return (
                "the tile of element i is i // tile, not cuda.blockIdx.x: the blocks of this "
                "launch and the tiles of the scan need not have the same size"
            )
        if same(got, x):
            return "x came back unchanged: add the prefix into x[i] in place (x[i] += ...)"
        return None

    hint = (
        "i = cuda.grid(1); if i < x.size: x[i] += prefixes[i // tile] (threads past the end "
        "must do nothing)"
    )
    if not _is_cuda_kernel(kernel):
        hint = (
            "pass a CUDA kernel: decorate the function with @cuda.jit (from numba import cuda); "
            "the grader launches it as kernel[blocks, threads](x, prefixes, tile)"
        )
    return grade(
        "check_uniform_add_kernel",
        _launch_uniform_add(kernel, threads),
        cases,
        hint=hint,
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )

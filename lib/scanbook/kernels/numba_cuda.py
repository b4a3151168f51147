"""Scan kernels in Numba CUDA: block scans, a scan of any length, the linear recurrence.

Defined in chapter 3.

The kernels follow GPU Gems 3, chapter 39 (Harris, Sengupta and Owens), one step at a time:

1. :func:`make_hillis_steele_kernel`: the naive block scan, ``log2 n`` levels over a
   double-buffered shared array; simple, but ``n log2 n`` additions.
2. :func:`make_blelloch_kernel`: the work-efficient block scan, an up-sweep and a down-sweep
   over a tree in shared memory, about ``2n`` additions.
3. :func:`make_blelloch_padded_kernel`: the same with one padding word every 32 words, so that
   the threads of a warp hit different shared-memory banks (:func:`bank_conflicts` counts them).
4. :func:`scan`: arrays of any length: every block scans its tile and writes its total, the
   totals are scanned by the same function (recursively), then added back to every tile.
5. :func:`linear_recurrence`: ``h[t] = a[t] h[t-1] + b[t]`` as a three-phase scan of
   ``(a, b)`` pairs (Martin & Cundy 2018, Algorithm 1), over a grid of channels and time chunks.
6. :func:`make_recurrence_shfl_kernel`: the block scan of pairs with warp shuffles instead of
   shared memory (real GPUs only: the simulator has no warp intrinsics).

Every kernel is built by a small ``make_*`` function that fixes the element type and the
shared-memory sizes (CUDA needs both at compile time) and returns the plain Python kernel;
:func:`kernel` compiles it once with ``cuda.jit``, and :func:`ptx` shows the PTX it becomes.

Without a GPU, :mod:`scanbook` has switched Numba's CUDA simulator on before this module
imports numba, so the same kernels run (slowly) on the CPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from collections.abc import Iterable
from functools import cache
from typing import NamedTuple

import numpy as np
from numba import boolean, cuda, float32, float64, int64

from .. import backends as _backends

__all__ = [
    "LOG_NUM_BANKS",
    "NUM_BANKS",
    "BankLevel",
    "KERNELS",
    "bank_conflicts",
    "compile_ptx_all",
    "blelloch_block_scan",
    "hillis_steele_block_scan",
    "kernel",
    "linear_recurrence",
    "linear_recurrence_shfl",
    "make_add_block_sums_kernel",
    "make_blelloch_kernel",
    "make_blelloch_padded_kernel",
    "make_hillis_steele_kernel",
    "make_recurrence_kernel",
    "make_recurrence_shfl_kernel",
    "plan",
    "ptx",
    "scan",
    "scan_levels",
]

# The upper levels of the recursive scans launch small grids on purpose: not worth a warning.
warnings.filterwarnings("ignore", message=r"Grid size \d+ will likely result in GPU under-util")

NUM_BANKS = 32  # shared memory has 32 banks, each 4 bytes wide
LOG_NUM_BANKS = 5
WARP = 32
FULL_MASK = 0xFFFFFFFF
MAX_BLOCK_THREADS = 1024  # the CUDA limit on threads in a block

_NUMBA_TYPES = {np.dtype(np.float32): float32, np.dtype(np.float64): float64}


def _numba_type(dtype):
    dt = np.dtype(dtype)
    if dt not in _NUMBA_TYPES:
        raise TypeError(f"dtype must be float32 or float64; got {dt.name}")
    return _NUMBA_TYPES[dt]


# --- 1. the naive block scan (Hillis & Steele) --------------------------------------------


def make_hillis_steele_kernel(dt, n_threads: int):
    """The naive inclusive block scan of ``n_threads`` elements, one per thread.

    Level ``d = 1, 2, 4, ...``: every thread ``t >= d`` adds the element ``d`` places to its
    left. Reading and writing one array in the same level would race, so two shared buffers
    take turns (double buffering): read from ``buf[src]``, write to ``buf[1 - src]``.

    Defined in chapter 3.
    """
    N = n_threads

    def hillis_steele_block_scan(x, out, n):
        buf = cuda.shared.array((2, N), dtype=dt)
        t = cuda.threadIdx.x
        buf[0, t] = x[t] if t < n else dt(0)  # pad with the identity, 0
        cuda.syncthreads()
        src = 0
        d = 1
        while d < N:
            if t >= d:
                buf[1 - src, t] = buf[src, t - d] + buf[src, t]
            else:
                buf[1 - src, t] = buf[src, t]
            cuda.syncthreads()  # the level is complete before anyone reads it
            src = 1 - src
            d *= 2
        if t < n:
            out[t] = buf[src, t]

    return hillis_steele_block_scan


# --- 2. the work-efficient block scan (Blelloch) -------------------------------------------


def make_blelloch_kernel(dt, n: int):
    """Blelloch's block scan: each block scans a tile of ``n`` elements with ``n/2`` threads.

    Thread ``t`` loads elements ``t`` and ``t + n/2`` of its block's tile. The up-sweep builds
    partial sums up a balanced tree in place, the root is saved as the block total and cleared,
    and the down-sweep pushes prefixes back down: the tree then holds the exclusive scan.
    ``sums[block]`` receives the tile's total (used by :func:`scan` for long arrays).

    Defined in chapter 3.
    """
    N = n
    HALF = n // 2

    def blelloch_scan_tiles(x, out, sums, size, exclusive):
        temp = cuda.shared.array(N, dtype=dt)
        t = cuda.threadIdx.x
        base = cuda.blockIdx.x * int64(N)  # 64-bit: arrays may hold more than 2^31 elements
        ai = t
        bi = t + HALF
        xa = x[base + ai] if base + ai < size else dt(0)
        xb = x[base + bi] if base + bi < size else dt(0)
        temp[ai] = xa
        temp[bi] = xb
        # up-sweep (reduce): at stride `offset`, d threads each add one left child to its parent
        offset = 1
        d = HALF
        while d > 0:
            cuda.syncthreads()
            if t < d:
                i = offset * (2 * t + 1) - 1
                j = offset * (2 * t + 2) - 1
                temp[j] += temp[i]
            offset *= 2
            d //= 2
        cuda.syncthreads()
        if t == 0:  # the root holds the tile's total: keep it, then clear it
            sums[cuda.blockIdx.x] = temp[N - 1]
            temp[N - 1] = dt(0)
        # down-sweep: each node passes its prefix to its left child, prefix + left to its right
        d = 1
        while d < N:
            offset //= 2
            cuda.syncthreads()
            if t < d:
                i = offset * (2 * t + 1) - 1
                j = offset * (2 * t + 2) - 1
                left = temp[i]
                temp[i] = temp[j]
                temp[j] += left
            d *= 2
        cuda.syncthreads()
        ya = temp[ai]
        yb = temp[bi]
        if not exclusive:
            ya += xa
            yb += xb
        if base + ai < size:
            out[base + ai] = ya
        if base + bi < size:
            out[base + bi] = yb

    return blelloch_scan_tiles


def make_blelloch_padded_kernel(dt, n: int):
    """Blelloch's block scan with padding against shared-memory bank conflicts.

    The same kernel as :func:`make_blelloch_kernel`, except that shared index ``i`` is stored
    at ``i + (i >> LOG_NUM_BANKS)`` (GPU Gems' ``CONFLICT_FREE_OFFSET``): one unused word
    after every 32, so the strided addresses of a warp spread over all 32 banks.

    Defined in chapter 3.
    """
    N = n
    HALF = n // 2
    PADDED = n + (n >> LOG_NUM_BANKS)  # room for the padding words

    def blelloch_padded_scan_tiles(x, out, sums, size, exclusive):
        temp = cuda.shared.array(PADDED, dtype=dt)
        t = cuda.threadIdx.x
        base = cuda.blockIdx.x * int64(N)  # 64-bit: arrays may hold more than 2^31 elements
        ai = t
        bi = t + HALF
        xa = x[base + ai] if base + ai < size else dt(0)
        xb = x[base + bi] if base + bi < size else dt(0)
        temp[ai + (ai >> LOG_NUM_BANKS)] = xa
        temp[bi + (bi >> LOG_NUM_BANKS)] = xb
        # up-sweep (reduce): at stride `offset`, d threads each add one left child to its parent
        offset = 1
        d = HALF
        while d > 0:
            cuda.syncthreads()
            if t < d:
                i = offset * (2 * t + 1) - 1
                j = offset * (2 * t + 2) - 1
                i += i >> LOG_NUM_BANKS
                j += j >> LOG_NUM_BANKS
                temp[j] += temp[i]
            offset *= 2
            d //= 2
        cuda.syncthreads()
        last = N - 1 + ((N - 1) >> LOG_NUM_BANKS)
        if t == 0:  # the root holds the tile's total: keep it, then clear it
            sums[cuda.blockIdx.x] = temp[last]
            temp[last] = dt(0)
        # down-sweep: each node passes its prefix to its left child, prefix + left to its right
        d = 1
        while d < N:
            offset //= 2
            cuda.syncthreads()
            if t < d:
                i = offset * (2 * t + 1) - 1
                j = offset * (2 * t + 2) - 1
                i += i >> LOG_NUM_BANKS
                j += j >> LOG_NUM_BANKS
                left = temp[i]
                temp[i] = temp[j]
                temp[j] += left
            d *= 2
        cuda.syncthreads()
        ya = temp[ai + (ai >> LOG_NUM_BANKS)]
        yb = temp[bi + (bi >> LOG_NUM_BANKS)]
        if not exclusive:
            ya += xa
            yb += xb
        if base + ai < size:
            out[base + ai] = ya
        if base + bi < size:
            out[base + bi] = yb

    return blelloch_padded_scan_tiles


# --- 3. bank conflicts, counted by analysis -------------------------------------------------


class BankLevel(NamedTuple):
    """One level of Blelloch's sweeps and its worst shared-memory bank conflict.

    Attributes:
        phase: ``"up-sweep"`` or ``"down-sweep"``.
        stride: the distance ``offset`` between the two nodes a thread combines.
        active: how many threads of the block work at this level.
        degree: the worst ``k`` of a ``k``-way conflict over all warps and accesses (1: none).
    """

    phase: str
    stride: int
    active: int
    degree: int


def _conflict_degree(addresses) -> int:
    """How many distinct 4-byte words one warp's request needs from the busiest bank."""
    per_bank: dict[int, set[int]] = {}
    for addr in addresses:
        per_bank.setdefault(addr % NUM_BANKS, set()).add(addr)
    return max((len(words) for words in per_bank.values()), default=0)


def bank_conflicts(n: int, padded: bool) -> list[BankLevel]:
    """The worst bank conflict of each level of Blelloch's block scan of ``n`` elements.

    By analysis, not measurement: for every level of the up-sweep and the down-sweep, take
    the shared-memory word each active thread reads or writes (``i`` and ``j`` of
    :func:`make_blelloch_kernel`, with :func:`make_blelloch_padded_kernel`'s offset when
    ``padded``), group the threads into warps of 32, and count how many *distinct* words of
    one request fall into the same bank (32 banks of 4 bytes; threads reading the same word
    share one broadcast). A degree of ``k`` means the request is served in ``k`` passes.
    The model is for 4-byte elements (float32).

    Defined in chapter 3.
    """
    if not isinstance(n, int | np.integer) or n < 2 or n & (n - 1):
        raise ValueError(f"n must be a power of two >= 2; got {n!r}")
    n = int(n)

    def word(i: int) -> int:
        return i + (i >> LOG_NUM_BANKS) if padded else i

    def level(phase: str, offset: int, active: int) -> BankLevel:
        worst = 0
        for w0 in range(0, active, WARP):
            threads = range(w0, min(w0 + WARP, active))
            left = [word(offset * (2 * t + 1) - 1) for t in threads]
            right = [word(offset * (2 * t + 2) - 1) for t in threads]
            worst = max(worst, _conflict_degree(left), _conflict_degree(right))
        return BankLevel(phase, offset, active, worst)

    out = []
    offset, d = 1, n // 2
    while d > 0:
        out.append(level("up-sweep", offset, d))
        offset, d = offset * 2, d // 2
    d = 1
    while d < n:
        offset //= 2
        out.append(level("down-sweep", offset, d))
        d *= 2
    return out


# --- 4. arrays of any size: scan the block sums, then add them back -------------------------


def make_add_block_sums_kernel(dt, n: int):
    """Add ``incr[block]`` to every element of each tile of ``n`` elements (``n/2`` threads).

    Defined in chapter 3.
    """
    N = n
    HALF = n // 2

    def add_block_sums(out, incr, size):
        base = cuda.blockIdx.x * int64(N)
        add = incr[cuda.blockIdx.x]
        i = base + cuda.threadIdx.x
        if i < size:
            out[i] += add
        if i + HALF < size:
            out[i + HALF] += add

    return add_block_sums


# --- 5. the linear recurrence: a three-phase scan of (a, b) pairs -------------------------


def make_recurrence_kernel(dt, lanes: int, steps: int):
    """One kernel for phases 1 and 3 of the chunked linear recurrence (Algorithm 1).

    A block has ``lanes`` threads across channels (``threadIdx.x``; neighbouring channels are
    neighbouring in memory, so a warp's loads coalesce) and ``steps`` threads along time
    (``threadIdx.y``, a power of two). Block ``group * chunks + chunk`` of the 1-D grid owns
    ``steps * K`` time steps of ``lanes`` channels; each thread owns ``K`` consecutive steps of
    one channel.

    * Every thread composes its ``K`` maps ``h -> a h + b`` serially into one pair
      ``(A, B)``; the ``steps`` pairs of a channel are then scanned with Blelloch's up-sweep
      in shared memory, combining with ``(a1, b1) then (a2, b2) = (a2 a1, a2 b1 + b2)``.
    * Phase 1 (``write_h`` false) stops there and stores the chunk's total pair.
    * Phase 3 (``write_h`` true) finishes with the down-sweep (each thread gets the pair of
      all the steps before its own in the chunk), starts from the chunk's carry-in state
      (``h0`` for the first chunk, else ``carries[chunk - 1]``) and walks its ``K`` steps
      again, writing ``h``.

    ``reverse`` runs time backwards by indexing ``t = T - 1 - s`` for the logical step ``s``.

    Defined in chapter 3.
    """
    LANES = lanes
    STEPS = steps

    def linear_recurrence_chunks(a, b, h0, carries, tot_a, tot_b, h, T, C, K, reverse, write_h):
        sa = cuda.shared.array((STEPS, LANES), dtype=dt)
        sb = cuda.shared.array((STEPS, LANES), dtype=dt)
        x = cuda.threadIdx.x
        y = cuda.threadIdx.y
        # a 1-D grid (gridDim.y would cap channel groups at 65535): block = group * chunks + chunk
        chunks = (T + STEPS * K - 1) // (STEPS * K)
        chunk = cuda.blockIdx.x % chunks
        c = (cuda.blockIdx.x // chunks) * LANES + x
        s0 = chunk * (STEPS * K) + y * K  # this thread's first logical step (int64)
        s1 = min(s0 + K, T)
        # serial: compose this thread's K maps into one pair (A, B); identity (1, 0) if none
        A = dt(1)
        B = dt(0)
        if c < C:
            for s in range(s0, s1):
                t = T - 1 - s if reverse else s
                at = a[t, c]
                A = at * A
                B = at * B + b[t, c]
        sa[y, x] = A
        sb[y, x] = B
        # up-sweep over the STEPS pairs of each channel: node j := node i, then node j
        offset = 1
        d = STEPS // 2
        while d > 0:
            cuda.syncthreads()
            if y < d:
                i = offset * (2 * y + 1) - 1
                j = offset * (2 * y + 2) - 1
                sb[j, x] = sa[j, x] * sb[i, x] + sb[j, x]
                sa[j, x] = sa[j, x] * sa[i, x]
            offset *= 2
            d //= 2
        cuda.syncthreads()
        if not write_h:  # phase 1: the chunk's total is all we need (same for all threads)
            if y == 0 and c < C:
                tot_a[chunk, c] = sa[STEPS - 1, x]
                tot_b[chunk, c] = sb[STEPS - 1, x]
            return
        if y == 0:
            sa[STEPS - 1, x] = dt(1)
            sb[STEPS - 1, x] = dt(0)
        # down-sweep: left child := prefix P; right child := P, then the left child's total L
        d = 1
        while d < STEPS:
            offset //= 2
            cuda.syncthreads()
            if y < d:
                i = offset * (2 * y + 1) - 1
                j = offset * (2 * y + 2) - 1
                la = sa[i, x]
                lb = sb[i, x]
                pa = sa[j, x]
                pb = sb[j, x]
                sa[i, x] = pa
                sb[i, x] = pb
                sa[j, x] = la * pa
                sb[j, x] = la * pb + lb
            d *= 2
        cuda.syncthreads()
        if c < C:  # phase 3: the state before my first step, then my K steps again
            carry = h0[c] if chunk == 0 else carries[chunk - 1, c]
            state = sa[y, x] * carry + sb[y, x]
            for s in range(s0, s1):
                t = T - 1 - s if reverse else s
                state = a[t, c] * state + b[t, c]
                h[t, c] = state

    return linear_recurrence_chunks


def make_recurrence_shfl_kernel(dt, warps: int):
    """The chunked recurrence kernel with a warp-shuffle block scan (real GPUs only).

    Same arguments and phases as :func:`make_recurrence_kernel`, but a block is ``32 * warps``
    threads along time for one channel (block ``channel * chunks + chunk`` of a 1-D grid). The
    pairs are scanned in registers: ``cuda.shfl_up_sync`` hands each lane the pair ``d`` lanes
    below it (``d = 1, 2, 4, 8, 16``: a Hillis-Steele scan inside the warp, no shared memory
    and no ``syncthreads``).
    Lane 31 of each warp stores the warp's total in shared memory, warp 0 scans those totals
    the same way, and each thread combines its warp's prefix with its own exclusive prefix.

    Defined in chapter 3.
    """
    WARPS = warps

    def linear_recurrence_chunks_shfl(
        a, b, h0, carries, tot_a, tot_b, h, T, C, K, reverse, write_h
    ):
        wa = cuda.shared.array(WARPS, dtype=dt)  # per warp: the prefix of earlier warps
        wb = cuda.shared.array(WARPS, dtype=dt)
        total = cuda.shared.array(2, dtype=dt)
        i = cuda.threadIdx.x
        lane = i % WARP
        warp = i // WARP
        chunks = (T + WARPS * WARP * K - 1) // (WARPS * WARP * K)  # 1-D grid, as above
        chunk = cuda.blockIdx.x % chunks
        c = cuda.blockIdx.x // chunks
        s0 = chunk * (WARPS * WARP * K) + i * K
        s1 = min(s0 + K, T)
        A = dt(1)
        B = dt(0)
        for s in range(s0, s1):
            t = T - 1 - s if reverse else s
            at = a[t, c]
            A = at * A
            B = at * B + b[t, c]
        # inclusive scan inside the warp: combine with the pair d lanes below
        d = 1
        while d < WARP:
            pa = cuda.shfl_up_sync(FULL_MASK, A, d)
            pb = cuda.shfl_up_sync(FULL_MASK, B, d)
            if lane >= d:
                B = A * pb + B
                A = A * pa
            d *= 2
        # exclusive prefix inside the warp: the inclusive pair of the lane below
        ea = cuda.shfl_up_sync(FULL_MASK, A, 1)
        eb = cuda.shfl_up_sync(FULL_MASK, B, 1)
        if lane == 0:
            ea = dt(1)
            eb = dt(0)
        if lane == WARP - 1:
            wa[warp] = A
            wb[warp] = B
        cuda.syncthreads()
        if warp == 0:  # the whole of warp 0 scans the warp totals (uniform branch per warp)
            ta = wa[lane] if lane < WARPS else dt(1)
            tb = wb[lane] if lane < WARPS else dt(0)
            d = 1
            while d < WARP:
                pa = cuda.shfl_up_sync(FULL_MASK, ta, d)
                pb = cuda.shfl_up_sync(FULL_MASK, tb, d)
                if lane >= d:
                    tb = ta * pb + tb
                    ta = ta * pa
                d *= 2
            xa = cuda.shfl_up_sync(FULL_MASK, ta, 1)
            xb = cuda.shfl_up_sync(FULL_MASK, tb, 1)
            if lane == WARP - 1:
                total[0] = ta
                total[1] = tb
            if lane < WARPS:  # each lane overwrites only the total it read itself
                wa[lane] = xa if lane > 0 else dt(1)
                wb[lane] = xb if lane > 0 else dt(0)
        cuda.syncthreads()
        if not write_h:
            if i == 0:
                tot_a[chunk, c] = total[0]
                tot_b[chunk, c] = total[1]
            return
        state = h0[c] if chunk == 0 else carries[chunk - 1, c]
        state = wa[warp] * state + wb[warp]  # the warps before mine
        state = ea * state + eb  # the lanes before me in my warp
        for s in range(s0, s1):
            t = T - 1 - s if reverse else s
            state = a[t, c] * state + b[t, c]
            h[t, c] = state

    return linear_recurrence_chunks_shfl


# --- the registry: compile once, show the PTX ----------------------------------------------


def _sig_tiles(dt):
    return (dt[::1], dt[::1], dt[::1], int64, boolean)


def _sig_recurrence(dt):
    m = dt[:, ::1]
    return (m, m, dt[::1], m, m, m, m, int64, int64, int64, boolean, boolean)


KERNELS = {
    # name: (maker, default sizes, signature of the kernel's arguments for a numba type)
    "hillis_steele": (make_hillis_steele_kernel, (1024,), lambda dt: (dt[::1], dt[::1], int64)),
    "blelloch": (make_blelloch_kernel, (1024,), _sig_tiles),
    "blelloch_padded": (make_blelloch_padded_kernel, (1024,), _sig_tiles),
    "add_block_sums": (make_add_block_sums_kernel, (1024,), lambda dt: (dt[::1], dt[::1], int64)),
    "linear_recurrence": (make_recurrence_kernel, (32, 8), _sig_recurrence),
    "linear_recurrence_shfl": (make_recurrence_shfl_kernel, (8,), _sig_recurrence),
}
"""Every kernel of the chapter: ``name -> (make_*, default sizes, signature)``."""


@cache
def _compiled(name: str, dtype_name: str, sizes: tuple):
    make = KERNELS[name][0]
    return cuda.jit(make(_numba_type(dtype_name), *sizes))


def kernel(name: str, dtype, *sizes: int):
    """The compiled kernel ``name`` (a key of :data:`KERNELS`) for ``dtype`` and sizes.

    Compiled once per ``(name, dtype, sizes)`` and cached; the sizes are those of the
    ``make_*`` function (default: :data:`KERNELS`' defaults).

    Defined in chapter 3.
    """
    if name not in KERNELS:
        raise ValueError(f"kernel name must be one of {sorted(KERNELS)}; got {name!r}")
    sizes = tuple(int(s) for s in sizes) or KERNELS[name][1]
    _check_sizes(name, sizes)
    return _compiled(name, np.dtype(dtype).name, sizes)


def _threads_per_block(name: str, sizes: tuple) -> int:
    if name == "hillis_steele":
        return sizes[0]
    if name == "linear_recurrence":
        return sizes[0] * sizes[1]
    if name == "linear_recurrence_shfl":
        return WARP * sizes[0]
    return sizes[0] // 2  # the Blelloch tiles and the uniform add: two elements a thread


def _check_sizes(name: str, sizes: tuple) -> None:
    """Refuse, on every machine, sizes a real GPU rejects (the simulator would run them)."""
    pow2 = all(v >= 1 and v & (v - 1) == 0 for v in sizes)
    threads = _threads_per_block(name, sizes)
    if (name != "linear_recurrence_shfl" and not pow2) or not 1 <= threads <= MAX_BLOCK_THREADS:
        raise ValueError(
            f"sizes of kernel {name!r} must be powers of two giving 1 to {MAX_BLOCK_THREADS} "
            f"threads a block; got {sizes} ({threads} threads)"
        )


def _ptx_here(name: str, dtype_name: str, cc: tuple[int, int]) -> str:
    make, sizes, signature = KERNELS[name]
    dt = _numba_type(dtype_name)
    text, _ = cuda.compile_ptx(make(dt, *sizes), signature(dt), cc=cc)
    return text


_PTX_CACHE: dict[tuple, str] = {}


def ptx(kernel_name: str, dtype, cc: tuple[int, int] = (9, 0)) -> str:
    """The PTX assembly of kernel ``kernel_name`` for ``dtype`` (compute capability ``cc``).

    Compiling needs Numba's real CUDA target, not the simulator, but no GPU: in the simulator
    the kernel is compiled in a fresh Python process (a few seconds; cached afterwards, and
    :func:`compile_ptx_all` compiles many in one process). Count instructions in the text,
    e.g. ``ptx("linear_recurrence_shfl", "float32").count("shfl.sync")``.

    Defined in chapter 3.
    """
    return compile_ptx_all([kernel_name], [dtype], cc)[(kernel_name, np.dtype(dtype).name)]


def compile_ptx_all(
    names: Iterable[str] | None = None,
    dtypes: Iterable = ("float32", "float64"),
    cc: tuple[int, int] = (9, 0),
) -> dict[tuple[str, str], str]:
    """PTX of several kernels: ``{(name, dtype name): text}`` (one process in the simulator).

    Defined in chapter 3.
    """
    names = list(KERNELS) if names is None else list(names)
    for name in names:
        if name not in KERNELS:
            raise ValueError(f"kernel_name must be one of {sorted(KERNELS)}; got {name!r}")
    dtype_names = []
    for dtype in dtypes:
        _numba_type(dtype)  # a TypeError for anything but float32 and float64
        dtype_names.append(np.dtype(dtype).name)
    cc = (int(cc[0]), int(cc[1]))
    keys = [(n, d) for n in names for d in dtype_names]
    missing = [k for k in keys if (*k, cc) not in _PTX_CACHE]
    if missing and _backends.cuda_simulator():
        _PTX_CACHE.update(_ptx_in_subprocess(missing, cc))
    for n, d in missing:
        if (n, d, cc) not in _PTX_CACHE:
            _PTX_CACHE[(n, d, cc)] = _ptx_here(n, d, cc)
    return {k: _PTX_CACHE[(*k, cc)] for k in keys}


def _ptx_in_subprocess(keys, cc: tuple[int, int]) -> dict[tuple, str]:
    code = (
        "import json, sys\n"
        "from scanbook.kernels import numba_cuda as m\n"
        f"keys, cc = {keys!r}, {cc!r}\n"
        "json.dump([[n, d, m._ptx_here(n, d, cc)] for n, d in keys], sys.stdout)\n"
    )
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0", SCANBOOK_DEVICE="cpu")
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"compiling the kernels to PTX failed:\n{proc.stderr[-3000:]}")
    return {(n, d, cc): text for n, d, text in json.loads(proc.stdout)}


# --- host functions --------------------------------------------------------------------------


def _is_device_array(x) -> bool:
    """True for a CUDA device array (the simulator's fake ones included)."""
    if hasattr(cuda, "is_cuda_array"):
        return cuda.is_cuda_array(x)
    return type(x).__name__ == "FakeCUDAArray"


def _device_view(x):
    return cuda.as_cuda_array(x) if hasattr(cuda, "as_cuda_array") else x


def _as_vector(name: str, x) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype not in _NUMBA_TYPES:
        raise TypeError(f"{name} must have dtype float32 or float64; got {x.dtype.name}")
    if x.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got shape {x.shape}")
    return np.ascontiguousarray(x)


def _pow2_at_least(n: int, low: int = 1) -> int:
    return max(low, 1 << max(0, int(n) - 1).bit_length())


def hillis_steele_block_scan(x) -> np.ndarray:
    """Inclusive sum scan of up to 1024 elements with the naive kernel, in one block.

    Defined in chapter 3.
    """
    x = _as_vector("x", x)
    n = x.shape[0]
    if not 1 <= n <= MAX_BLOCK_THREADS:
        raise ValueError(f"x must have 1 to {MAX_BLOCK_THREADS} elements (one block); got {n}")
    threads = _pow2_at_least(n, 32)
    d_x = cuda.to_device(x)
    d_out = cuda.device_array_like(d_x)
    kernel("hillis_steele", x.dtype, threads)[1, threads](d_x, d_out, n)
    return d_out.copy_to_host()


def blelloch_block_scan(x, *, exclusive: bool = False, padded: bool = False) -> np.ndarray:
    """Sum scan of up to 2048 elements with Blelloch's kernel, in one block.

    ``padded=True`` uses the kernel with bank-conflict padding; the result is the same.

    Defined in chapter 3.
    """
    x = _as_vector("x", x)
    n = x.shape[0]
    if not 1 <= n <= 2 * MAX_BLOCK_THREADS:
        raise ValueError(f"x must have 1 to {2 * MAX_BLOCK_THREADS} elements; got {n}")
    tile = _pow2_at_least(n, 64)
    d_x = cuda.to_device(x)
    d_out = cuda.device_array_like(d_x)
    d_sums = cuda.device_array(1, dtype=x.dtype)
    name = "blelloch_padded" if padded else "blelloch"
    kernel(name, x.dtype, tile)[1, tile // 2](d_x, d_out, d_sums, n, bool(exclusive))
    return d_out.copy_to_host()


def _scan_device(d_x, d_out, n: int, exclusive: bool, block: int, padded: bool = True) -> int:
    """Scan ``n`` elements on the device; returns the number of levels of the recursion."""
    blocks = -(-n // block)
    d_sums = cuda.device_array(blocks, dtype=d_x.dtype)
    name = "blelloch_padded" if padded else "blelloch"
    kernel(name, d_x.dtype, block)[blocks, block // 2](d_x, d_out, d_sums, n, exclusive)
    if blocks == 1:
        return 1
    # the tile totals, scanned (exclusive) by this same function, are what each tile lacks
    d_incr = cuda.device_array(blocks, dtype=d_x.dtype)
    depth = _scan_device(d_sums, d_incr, blocks, True, block, padded)
    kernel("add_block_sums", d_x.dtype, block)[blocks, block // 2](d_out, d_incr, n)
    return depth + 1


def scan(x, *, exclusive: bool = False, block: int = 1024, padded: bool = True):
    """Sum scan of a 1-D float32/float64 array of any length on the GPU (or the simulator).

    Every block scans a tile of ``block`` elements (a power of two from 2 to 2048) with the
    padded Blelloch kernel (``padded=False``: the unpadded one) and writes the tile's total;
    the totals are scanned (exclusive) by this same procedure, recursively, and each tile
    adds its tile's prefix back.

    ``x`` is a NumPy array (a NumPy array is returned) or a CUDA device array (a device
    array is returned, nothing is copied to the host).

    Defined in chapter 3.
    """
    if not isinstance(block, int | np.integer) or block < 2 or block & (block - 1):
        raise ValueError(f"block must be a power of two >= 2; got {block!r}")
    if block > 2 * MAX_BLOCK_THREADS:
        raise ValueError(f"block must be at most {2 * MAX_BLOCK_THREADS}; got {block}")
    on_device = _is_device_array(x)
    if on_device:
        d_x = _device_view(x)
        if d_x.ndim != 1 or np.dtype(d_x.dtype) not in _NUMBA_TYPES:
            raise TypeError(f"x must be a 1-D float32/float64 array; got {d_x.dtype}{d_x.shape}")
    else:
        d_x = cuda.to_device(_as_vector("x", x))
    n = d_x.shape[0]
    d_out = cuda.device_array(n, dtype=d_x.dtype)
    if n:
        _scan_device(d_x, d_out, n, bool(exclusive), int(block), bool(padded))
    return d_out if on_device else d_out.copy_to_host()


def scan_levels(n: int, block: int) -> int:
    """How many levels of kernels :func:`scan` launches for ``n`` elements in tiles of ``block``.

    Defined in chapter 3.
    """
    levels = 1
    while n > block:
        n = -(-n // block)
        levels += 1
    return levels


class RecurrencePlan(NamedTuple):
    """The launch geometry of :func:`linear_recurrence` at one level of its recursion.

    Attributes:
        lanes: threads across channels in a block (``threadIdx.x``).
        steps: threads along time in a block (``threadIdx.y``), a power of two.
        K: consecutive time steps each thread owns.
        chunks: time chunks; ``chunk = steps * K`` steps each.
        groups: channel groups. The grid is 1-D, ``chunks * groups`` blocks (``gridDim.y``
            would cap the groups at 65535): block ``i`` is chunk ``i % chunks`` of group
            ``i // chunks``.
    """

    lanes: int
    steps: int
    K: int
    chunks: int
    groups: int


def plan(
    T: int, C: int, *, threads: int | None = None, K: int | None = None, gpu: bool | None = None
) -> RecurrencePlan:
    """Choose the block shape and the steps per thread for a ``(T, C)`` recurrence.

    Up to 32 channel lanes (so a warp reads 32 neighbouring channels), the rest of the
    ``threads`` (default 256 on a GPU, 32 in the simulator) along time. ``K`` is chosen so the
    grid has about 2048 blocks on a GPU (4 in the simulator, where every block costs Python
    threads), with at most 32 steps per thread. ``gpu`` picks the defaults of a real GPU
    (True) or of the simulator (False); None: whichever is in use.

    Defined in chapter 3.
    """
    gpu = not _backends.cuda_simulator() if gpu is None else bool(gpu)
    if threads is None:
        threads = 256 if gpu else 32
    if threads < 1 or threads > MAX_BLOCK_THREADS or threads & (threads - 1):
        raise ValueError(f"threads must be a power of two from 1 to 1024; got {threads}")
    lanes = min(threads, WARP, _pow2_at_least(C))
    steps = threads // lanes
    groups = -(-C // lanes)
    if K is None:
        want_chunks = max(1, (2048 if gpu else 4) // groups)
        K = min(32, max(1, -(-T // (steps * want_chunks))))
    if K < 1:
        raise ValueError(f"K (steps per thread) must be >= 1; got {K}")
    if steps * K < 2:
        K = 2  # a chunk must hold at least two steps, or the recursion would not shrink
    return RecurrencePlan(lanes, steps, int(K), -(-T // (steps * K)), groups)


def _recurrence_device(d_a, d_b, d_h0, d_h, reverse, variant, threads, K) -> int:
    """Three-phase recurrence on device arrays; returns the depth of the recursion."""
    T, C = d_a.shape
    dtype = d_a.dtype
    if variant == "shfl":
        warps = (threads or 256) // WARP
        if K is None:
            K = min(32, max(1, -(-T // (warps * WARP * max(1, 2048 // C)))))
        chunks, groups = -(-T // (warps * WARP * K)), C
        kern, block = kernel("linear_recurrence_shfl", dtype, warps), warps * WARP
    else:
        p = plan(T, C, threads=threads, K=K)
        K, chunks, groups = p.K, p.chunks, p.groups
        kern, block = kernel("linear_recurrence", dtype, p.lanes, p.steps), (p.lanes, p.steps)
    if chunks * groups > 2**31 - 1:
        raise ValueError(f"T={T}, C={C} need more than 2**31 - 1 blocks; split the batch")
    grid = chunks * groups
    if chunks == 1:  # one chunk starts from h0: no totals and no carries are needed
        kern[grid, block](d_a, d_b, d_h0, d_h, d_h, d_h, d_h, T, C, K, reverse, True)
        return 1
    # phase 1: every chunk's total pair (A, B)
    d_ta = cuda.device_array((chunks, C), dtype=dtype)
    d_tb = cuda.device_array((chunks, C), dtype=dtype)
    kern[grid, block](d_a, d_b, d_h0, d_ta, d_ta, d_tb, d_ta, T, C, K, reverse, False)
    # phase 2: the totals are a recurrence `chunks` steps long: carries[k] = state after chunk k
    d_carries = cuda.device_array((chunks, C), dtype=dtype)
    depth = _recurrence_device(d_ta, d_tb, d_h0, d_carries, False, variant, threads, None)
    # phase 3: every chunk rescans its steps from its carry-in, writing h
    kern[grid, block](d_a, d_b, d_h0, d_carries, d_ta, d_tb, d_h, T, C, K, reverse, True)
    return depth + 1


def _check_recurrence_inputs(a, b, h0):
    for name, x in (("a", a), ("b", b), ("h0", h0)):
        if not hasattr(x, "dtype") or not hasattr(x, "shape"):
            raise TypeError(f"{name} must be an array; got {type(x).__name__}")
        if np.dtype(x.dtype) not in _NUMBA_TYPES:
            raise TypeError(f"{name} must have dtype float32 or float64; got {np.dtype(x.dtype)}")
    if a.dtype != b.dtype or a.dtype != h0.dtype:
        raise TypeError(f"a, b, h0 must share one dtype; got {a.dtype}, {b.dtype}, {h0.dtype}")
    if len(a.shape) != 2:
        raise ValueError(f"a must have shape (T, C); got {tuple(a.shape)}")
    if tuple(b.shape) != tuple(a.shape):
        raise ValueError(f"b must have the shape of a, {tuple(a.shape)}; got {tuple(b.shape)}")
    if tuple(h0.shape) != (a.shape[1],):
        raise ValueError(f"h0 must have shape ({a.shape[1]},); got {tuple(h0.shape)}")


def _run_recurrence(a, b, h0, reverse, variant, threads, K):
    if not isinstance(reverse, bool | np.bool_):
        raise TypeError(f"reverse must be True or False; got {reverse!r}")
    if K is not None and (not isinstance(K, int | np.integer) or K < 1):
        raise ValueError(f"K (steps per thread) must be a positive int; got {K!r}")
    if h0 is None and hasattr(a, "shape") and hasattr(a, "dtype"):
        h0 = np.zeros(a.shape[1:], dtype=a.dtype)
    _check_recurrence_inputs(a, b, h0)
    on_device = _is_device_array(a) and _is_device_array(b)  # then the result stays there, too
    d_a, d_b, d_h0 = (
        _device_view(x) if _is_device_array(x) else cuda.to_device(np.ascontiguousarray(x))
        for x in (a, b, h0)
    )
    T, C = d_a.shape
    d_h = cuda.device_array((T, C), dtype=d_a.dtype)
    if T and C:
        _recurrence_device(d_a, d_b, d_h0, d_h, bool(reverse), variant, threads, K)
    return d_h if on_device else d_h.copy_to_host()


def linear_recurrence(
    a, b, h0=None, *, reverse: bool = False, threads: int | None = None, K: int | None = None
):
    """``h[t] = a[t] h[t-1] + b[t]`` over ``(T, C)`` arrays: the ``numba_cuda`` backend.

    ``a``, ``b``: shape ``(T, C)``, float32 or float64; ``h0``: shape ``(C,)`` (None: zeros);
    ``reverse=True`` computes ``h[t] = a[t] h[t+1] + b[t]`` with ``h[T] = h0``. NumPy inputs
    give a NumPy result; CUDA device arrays a device array (no copies to the host).

    Three phases (Martin & Cundy's Algorithm 1) over a 1-D grid of ``chunks * groups`` blocks
    (one a time chunk of a channel group), see :func:`make_recurrence_kernel`: (1) every block
    reduces its chunk to one pair ``(A, B)``; (2) the chunk pairs are a linear recurrence
    ``T / chunk`` steps long, solved by this same function (recursively) from ``h0``; (3) every
    block rescans its chunk from its carry-in. ``threads`` (per block) and ``K`` (steps per
    thread) override :func:`plan`.

    Defined in chapter 3.
    """
    return _run_recurrence(a, b, h0, reverse, "blelloch", threads, K)


def linear_recurrence_shfl(
    a, b, h0=None, *, reverse: bool = False, threads: int | None = None, K: int | None = None
):
    """:func:`linear_recurrence` with the warp-shuffle block scan (a real GPU is needed).

    Defined in chapter 3.
    """
    if threads is not None and (threads % WARP or not WARP <= threads <= MAX_BLOCK_THREADS):
        raise ValueError(f"threads must be a multiple of 32 from 32 to 1024; got {threads}")
    if _backends.cuda_simulator():
        raise RuntimeError(
            "linear_recurrence_shfl needs a CUDA GPU: the simulator has no warp shuffles "
            "(compile it with ptx('linear_recurrence_shfl', dtype) instead)"
        )
    return _run_recurrence(a, b, h0, reverse, "shfl", threads, K)

"""Sum scans in Numba CUDA: block scans, bank conflicts, a scan of any length.

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

The linear recurrence, built from the same up-sweep and down-sweep, is in :mod:`.recurrence`;
the registry that compiles the kernels and shows their PTX is in :mod:`.registry`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import boolean, cuda, int64

from .registry import (
    _NUMBA_TYPES,
    MAX_BLOCK_THREADS,
    WARP,
    _device_view,
    _is_device_array,
    _pow2_at_least,
    kernel,
    register,
)

__all__ = [
    "LOG_NUM_BANKS",
    "NUM_BANKS",
    "BankLevel",
    "bank_conflicts",
    "blelloch_block_scan",
    "hillis_steele_block_scan",
    "make_add_block_sums_kernel",
    "make_blelloch_kernel",
    "make_blelloch_padded_kernel",
    "make_hillis_steele_kernel",
    "scan",
    "scan_levels",
]

NUM_BANKS = 32  # shared memory has 32 banks, each 4 bytes wide
LOG_NUM_BANKS = 5


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


def conflict_degree(addresses) -> int:
    """How many distinct 4-byte words one warp's request needs from the busiest bank.

    Defined in chapter 3.
    """
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
            worst = max(worst, conflict_degree(left), conflict_degree(right))
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


def _sig_vectors(dt):
    return (dt[::1], dt[::1], int64)


def _sig_tiles(dt):
    return (dt[::1], dt[::1], dt[::1], int64, boolean)


def _half(n: int) -> int:
    return n // 2  # the Blelloch tiles and the uniform add: two elements a thread


register("hillis_steele", make_hillis_steele_kernel, (1024,), _sig_vectors, threads=lambda n: n)
register("blelloch", make_blelloch_kernel, (1024,), _sig_tiles, threads=_half)
register("blelloch_padded", make_blelloch_padded_kernel, (1024,), _sig_tiles, threads=_half)
register("add_block_sums", make_add_block_sums_kernel, (1024,), _sig_vectors, threads=_half)


# --- host functions --------------------------------------------------------------------------


def _as_vector(name: str, x) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype not in _NUMBA_TYPES:
        raise TypeError(f"{name} must have dtype float32 or float64; got {x.dtype.name}")
    if x.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got shape {x.shape}")
    return np.ascontiguousarray(x)


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

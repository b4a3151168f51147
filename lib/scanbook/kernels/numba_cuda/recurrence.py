"""The linear recurrence in Numba CUDA: the ``numba_cuda`` backend of ``linear_recurrence``.

Defined in chapter 3.

``h[t] = a[t] h[t-1] + b[t]`` over ``(T, C)`` arrays, as a three-phase scan of ``(a, b)``
pairs (Martin & Cundy 2018, Algorithm 1) over a grid of channels and time chunks:

1. :func:`make_recurrence_kernel`: phases 1 and 3 in one kernel; each block loads its chunk
   into shared memory with coalesced reads and scans its pairs with Blelloch's up-sweep and
   down-sweep in shared memory (those of :mod:`.scans`).
2. :func:`make_recurrence_shfl_kernel`: the block scan of pairs with warp shuffles instead of
   shared memory (real GPUs only: the simulator has no warp intrinsics).
3. :func:`linear_recurrence`: the host function that :func:`scanbook.linear_recurrence` and
   :func:`scanbook.linear_recurrence_vjp` call for ``backend="numba_cuda"``; :func:`plan`
   chooses its launch geometry.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import boolean, cuda, int64

from ... import backends as _backends
from .registry import (
    _NUMBA_TYPES,
    FULL_MASK,
    MAX_BLOCK_THREADS,
    WARP,
    _device_view,
    _is_device_array,
    _pow2_at_least,
    kernel,
    register,
)

__all__ = [
    "RecurrencePlan",
    "linear_recurrence",
    "linear_recurrence_shfl",
    "make_recurrence_kernel",
    "make_recurrence_shfl_kernel",
    "plan",
    "tile_group",
    "tile_row",
]

# --- the linear recurrence: a three-phase scan of (a, b) pairs -------------------------


def tile_group(lanes: int, K: int, itemsize: int) -> int:
    """Rows between two spare rows of the recurrence kernel's tiles: ``lcm(n, K)``, or 0.

    ``n = 128 // (itemsize * lanes)`` is the number of tile rows that fill the 32 four-byte
    banks of shared memory once: the rows one warp stores in a round (float32), or one
    half-warp (float64: in the model the tests use, shared memory serves 8-byte words 16
    lanes at a time). A multiple of ``n`` keeps every round's rows side by side; a multiple
    of ``K`` puts the spare row between two threads' steps, never among them. For ``K`` a
    power of two this is ``max(n, K)``. With ``lanes * itemsize >= 128`` (``n < 2``) a
    request is one row of consecutive words, free of conflicts in any layout, and the tiles
    need no spare rows: 0.

    Defined in chapter 3.
    """
    n = 128 // (itemsize * lanes)
    return math.lcm(n, K) if n >= 2 else 0


def tile_row(r, group):
    """The row of the tile that holds row ``r`` of the chunk: one spare row after every ``group``.

    ``group`` is :func:`tile_group`'s (0: no spare rows). The kernel writes the same sum
    inline (Numba compiles a device function only with a GPU present, and the kernel must
    compile to PTX without one); the tests compute the banks of every warp's access to the
    tiles from this function and from the kernel itself.

    Defined in chapter 3.
    """
    return r + r // group if group else r


def make_recurrence_kernel(dt, lanes: int, steps: int, K: int):
    """One kernel for phases 1 and 3 of the chunked linear recurrence (Algorithm 1).

    A block has ``lanes`` threads across channels (``threadIdx.x``) and ``steps`` threads along
    time (``threadIdx.y``, a power of two). Block ``group * chunks + chunk`` of the 1-D grid owns
    a chunk of ``steps * K`` time steps of ``lanes`` channels; each thread owns ``K``
    consecutive steps of one channel.

    * Load: the block copies its chunk of ``a`` and ``b`` into shared memory in ``K`` rounds;
      in round ``j`` thread ``(x, y)`` loads row ``r = j * steps + y`` of the chunk, channel
      ``x``. A warp is 32 consecutive threads (``x`` fastest), so its lanes read neighbouring
      words of the time-major array: one row of 32 channels when ``lanes = 32`` (fewer in the
      last channel group when 32 does not divide ``C``), or ``32 / lanes`` consecutive rows of
      all ``C <= lanes`` channels, which follow each other in memory (lanes ``x >= C`` idle).
      Each thread loads its ``K`` rounds into a local array (registers, once the
      compiler has unrolled the loop of known length) before it stores any of them, so its
      ``2 K`` loads wait for memory together, not one after the other.
    * Every thread composes its ``K`` maps ``h -> a h + b``, now read from shared memory,
      serially into one pair ``(A, B)``; the ``steps`` pairs of a channel are then scanned with
      Blelloch's up-sweep in shared memory, combining with
      ``(a1, b1) then (a2, b2) = (a2 a1, a2 b1 + b2)``.
    * Phase 1 (``write_h`` false) stops there and stores the chunk's total pair.
    * Phase 3 (``write_h`` true) finishes with the down-sweep (each thread gets the pair of
      all the steps before its own in the chunk), starts from the chunk's carry-in state
      (``h0`` for the first chunk, else ``carries[chunk - 1]``), walks its ``K`` steps again
      in shared memory, writing each state over ``b``, and the block stores ``h`` the way it
      loaded ``a``: coalesced.

    Why the staging (section 3.6.1) and what it costs (section 3.6.2): a warp of few channels
    reading its threads' own steps would touch a 32-byte sector a lane; the rounds make every
    warp's loads one contiguous run of memory for every ``C``.

    Row ``r`` of the chunk is step ``r % K`` of thread ``r // K``. The tiles are
    ``[rows, lanes]``, row ``r`` of the chunk in tile row ``tile_row(r, G)``, one spare row
    after every ``G = tile_group(lanes, K, itemsize)`` rows, so that no warp request puts two
    words in one bank of shared memory (section 3.6.2). ``K``, like ``lanes`` and ``steps``, is
    a compile-time size: it sets the size of the tiles. Past the last step (and channel) the
    tiles hold the identity pair ``(1, 0)``. The tree's pairs ``sa``, ``sb`` are not padded.
    ``reverse`` runs time backwards by indexing ``t = T - 1 - s`` for the logical step ``s``.

    Defined in chapter 3.
    """
    LANES = lanes
    STEPS = steps
    GROUP = tile_group(lanes, K, dt.bitwidth // 8)  # one spare tile row after every GROUP
    ROWS = tile_row(steps * K - 1, GROUP) + 1  # the chunk's steps * K rows and the spare ones
    SPAN = GROUP or steps * K  # chunk row r is tile row r + r // SPAN (GROUP 0: r < SPAN)
    # when one of steps and SPAN divides the other (always, for powers of two), the tile row
    # of chunk row j * steps + y is a constant for round j plus y + y // SPAN: fewer registers
    SPLIT = steps % SPAN == 0 or SPAN % steps == 0

    def linear_recurrence_chunks(a, b, h0, carries, tot_a, tot_b, h, T, C, reverse, write_h):
        ta = cuda.shared.array((ROWS, LANES), dtype=dt)  # the chunk of a
        tb = cuda.shared.array((ROWS, LANES), dtype=dt)  # the chunk of b, then of h
        sa = cuda.shared.array((STEPS, LANES), dtype=dt)  # one pair a thread, for the tree
        sb = cuda.shared.array((STEPS, LANES), dtype=dt)
        x = cuda.threadIdx.x
        y = cuda.threadIdx.y
        # a 1-D grid (gridDim.y would cap channel groups at 65535): block = group * chunks + chunk
        chunks = (T + STEPS * K - 1) // (STEPS * K)
        chunk = cuda.blockIdx.x % chunks
        c = (cuda.blockIdx.x // chunks) * LANES + x
        first = chunk * (STEPS * K)  # the chunk's first logical step (int64)
        # load the chunk coalesced: in round j, the threads read rows j * STEPS .. + STEPS,
        # all K rounds into registers first, so that the 2K loads are in flight together
        va = cuda.local.array(K, dtype=dt)
        vb = cuda.local.array(K, dtype=dt)
        for j in range(K):
            s = first + j * STEPS + y
            va[j] = dt(1)  # past the end: the identity pair
            vb[j] = dt(0)
            if s < T and c < C:
                t = T - 1 - s if reverse else s
                va[j] = a[t, c]
                vb[j] = b[t, c]
        for j in range(K):  # then into the tiles: row r is step r % K of thread r // K
            r = j * STEPS + y
            q = r + r // SPAN  # its tile row, tile_row(r, GROUP)
            if SPLIT:  # the same row, computed in two parts
                q = j * STEPS + (j * STEPS) // SPAN + y + y // SPAN
            ta[q, x] = va[j]
            tb[q, x] = vb[j]
        cuda.syncthreads()
        # serial: compose this thread's K maps into one pair (A, B)
        mine = y * K + (y * K) // SPAN  # the tile row of my step 0 (K divides SPAN)
        A = dt(1)
        B = dt(0)
        for k in range(K):
            at = ta[mine + k, x]  # my step k
            A = at * A
            B = at * B + tb[mine + k, x]
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
            for k in range(K):
                state = ta[mine + k, x] * state + tb[mine + k, x]
                tb[mine + k, x] = state  # h replaces b in the tile
        cuda.syncthreads()
        for j in range(K):  # store h as the chunk was loaded: coalesced
            r = j * STEPS + y
            s = first + r
            if s < T and c < C:
                t = T - 1 - s if reverse else s
                h[t, c] = tb[r + r // SPAN, x]

    return linear_recurrence_chunks


def make_recurrence_shfl_kernel(dt, warps: int):
    """The chunked recurrence kernel with a warp-shuffle block scan (real GPUs only).

    Same phases as :func:`make_recurrence_kernel` (and its arguments, with ``K`` a run-time
    argument after ``C``), but a block is ``32 * warps`` threads along time for one channel
    (block ``channel * chunks + chunk`` of a 1-D grid), and every thread reads its ``K`` steps
    straight from global memory: lanes ``K * C`` elements apart for every ``C`` (one channel a
    block), strided loads that the shared-memory kernel stages away or, from 32 channels on,
    never has; a comparison of the two kernels therefore measures the loads as well as the
    scan. The
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


def _sig_recurrence(dt):  # a, b, h0, carries, tot_a, tot_b, h, T, C, reverse, write_h
    m = dt[:, ::1]
    return (m, m, dt[::1], m, m, m, m, int64, int64, boolean, boolean)


def _sig_recurrence_shfl(dt):  # the same with K (int64) after C
    sig = _sig_recurrence(dt)
    return (*sig[:9], int64, *sig[9:])


register(
    "linear_recurrence",
    make_recurrence_kernel,
    (32, 8, 8),
    _sig_recurrence,
    threads=lambda lanes, steps, K: lanes * steps,
    pow2=2,  # lanes and steps; K may be any number
)
register(
    "linear_recurrence_shfl",
    make_recurrence_shfl_kernel,
    (8,),
    _sig_recurrence_shfl,
    threads=lambda warps: WARP * warps,
    pow2=False,  # any number of warps
)


# --- host functions --------------------------------------------------------------------------


class RecurrencePlan(NamedTuple):
    """The launch geometry of :func:`linear_recurrence` at one level of its recursion.

    Attributes:
        lanes: threads across channels in a block (``threadIdx.x``).
        steps: threads along time in a block (``threadIdx.y``), a power of two.
        K: consecutive time steps each thread owns (a compile-time size of the kernel).
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


#: The most shared memory a block may declare statically, as Numba's shared arrays are.
_SHARED_BYTES = 48 * 1024


def _shared_bytes(lanes: int, steps: int, K: int, itemsize: int) -> int:
    """Shared memory of :func:`make_recurrence_kernel`: two tiles and the tree's pairs."""
    rows = tile_row(steps * K - 1, tile_group(lanes, K, itemsize)) + 1
    return 2 * (rows + steps) * lanes * itemsize


def plan(
    T: int,
    C: int,
    *,
    threads: int | None = None,
    K: int | None = None,
    gpu: bool | None = None,
    dtype=np.float64,
) -> RecurrencePlan:
    """Choose the block shape and the steps per thread for a ``(T, C)`` recurrence.

    Up to 32 channel lanes (so a warp reads 32 neighbouring channels), the rest of the
    ``threads`` (default 256 on a GPU, 32 in the simulator) along time. ``K`` is chosen so the
    grid has about 2048 blocks on a GPU (4 in the simulator, where every block costs Python
    threads), rounded up to a power of two (every ``K`` is a kernel of its own) and at most
    8: each thread then has 8 loads of ``a`` and 8 of ``b`` in flight, and the tiles and the
    tree's pairs of a block of 256 threads take at most 19 KB of shared memory in float32
    (38 KB in ``dtype`` float64), so that on an H200 (228 KB of shared memory an SM) several
    blocks share an SM; on a GPU with 64 KB an SM (a T4) a float64 block runs alone. An explicit
    ``K`` is kept if the block's shared memory fits in the 48 KB a block may declare (else a
    ValueError). ``gpu`` picks the defaults of a real GPU (True) or of the simulator (False);
    None: whichever is in use.

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
    itemsize = np.dtype(dtype).itemsize
    if K is None:
        want_chunks = max(1, (2048 if gpu else 4) // groups)
        K = min(8, _pow2_at_least(-(-T // (steps * want_chunks))))
        while K > 1 and _shared_bytes(lanes, steps, K, itemsize) > _SHARED_BYTES:
            K //= 2
    if K < 1:
        raise ValueError(f"K (steps per thread) must be >= 1; got {K}")
    if steps * K < 2:
        K = 2  # a chunk must hold at least two steps, or the recursion would not shrink
    need = _shared_bytes(lanes, steps, K, itemsize)
    if need > _SHARED_BYTES:
        raise ValueError(
            f"K={K} steps a thread with {threads} threads need {need:,} bytes of shared memory "
            f"in {np.dtype(dtype).name}, over the {_SHARED_BYTES:,} a block may declare; "
            "choose a smaller K or fewer threads"
        )
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
        p = plan(T, C, threads=threads, K=K, dtype=dtype)
        K, chunks, groups = p.K, p.chunks, p.groups
        kern = kernel("linear_recurrence", dtype, p.lanes, p.steps, p.K)
        block = (p.lanes, p.steps)
    sizes = (T, C, K) if variant == "shfl" else (T, C)  # the shared-memory kernel has K built in
    if chunks * groups > 2**31 - 1:
        raise ValueError(f"T={T}, C={C} need more than 2**31 - 1 blocks; split the batch")
    grid = chunks * groups
    if chunks == 1:  # one chunk starts from h0: no totals and no carries are needed
        kern[grid, block](d_a, d_b, d_h0, d_h, d_h, d_h, d_h, *sizes, reverse, True)
        return 1
    # phase 1: every chunk's total pair (A, B)
    d_ta = cuda.device_array((chunks, C), dtype=dtype)
    d_tb = cuda.device_array((chunks, C), dtype=dtype)
    kern[grid, block](d_a, d_b, d_h0, d_ta, d_ta, d_tb, d_ta, *sizes, reverse, False)
    # phase 2: the totals are a recurrence `chunks` steps long: carries[k] = state after chunk k
    d_carries = cuda.device_array((chunks, C), dtype=dtype)
    depth = _recurrence_device(d_ta, d_tb, d_h0, d_carries, False, variant, threads, None)
    # phase 3: every chunk rescans its steps from its carry-in, writing h
    kern[grid, block](d_a, d_b, d_h0, d_carries, d_ta, d_tb, d_h, *sizes, reverse, True)
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

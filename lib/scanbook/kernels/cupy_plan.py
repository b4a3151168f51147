"""Shapes, launch parameters, the bandwidth model and the NumPy twins of the CUDA C kernels.

Defined in chapter 4 (CUDA C through CuPy RawKernel). :mod:`scanbook.kernels.cupy_raw` launches
the kernels and re-exports everything here; this module needs no GPU and no CuPy: it decides
how a launch divides the work (:func:`choose_method`, :func:`three_phase_slices`, ...), predicts
each shape's fraction of copy bandwidth (:func:`bandwidth_model`), and carries out the kernels'
decompositions on the CPU (:func:`three_phase_twin`, :func:`single_pass_twin`).
"""

from __future__ import annotations

import math

import numpy as np

THREE_PHASE_WARPS = 32  # warps a block in the three-phase kernel (1024 threads, as in the paper)
THREE_PHASE_BLOCKS_PER_SM = 2  # as in the paper
SINGLE_PASS_BLOCK = 256  # threads a tile in single_pass.cu (SP_BLOCK)
SERIAL_BLOCK = 256  # threads a block in serial.cu (SERIAL_BLOCK, its launch bound)
LOOKBACK_WINDOW = 128  # predecessors single_pass.cu's look-back polls at once (32 * SP_POLLS)

# The bandwidth model of chapter 4 (an H200; see :func:`bandwidth_model`)
COPY_BYTES_PER_S = 4.3e12  # assumed: ~90% of the H200's 4.8 TB/s (the benchmark measures it)
H200_SMS = 132  # its multiprocessors: 33 GB/s of the copy's bandwidth each
DRAM_LATENCY_S = 0.7e-6  # a load from memory under load, issue to use
L2_LATENCY_S = 0.3e-6  # a round trip to L2 under load (the look-back's flags and values)
TILE_WORK_S = 0.5e-6  # a tile's own scan: shuffles, two barriers, the rescan


# ----------------------------------------------------------------------------------------------
# shapes, choices and launch parameters (shared by the GPU path and the twins)
# ----------------------------------------------------------------------------------------------


def channel_group(n_channels: int) -> int:
    """CG, the channels one single-pass tile holds (and one lane group of the three-phase
    kernel): the smallest power of two >= min(C, 32)."""
    return min(32, 1 << max(0, math.ceil(math.log2(max(1, n_channels)))))


def single_pass_items(dtype) -> int:
    """Time steps a thread keeps in registers: 16 floats or 8 doubles (64 bytes of a, of b)."""
    return 16 if np.dtype(dtype) == np.float32 else 8


def lookback_fetch(cg: int, dtype) -> int:
    """Predecessors one lane group of ``single_pass.cu``'s look-back fetches in a pass (``K``).

    A lane group of ``cg`` lanes loads the values of ``K`` adjacent predecessors at once, 64
    bytes of each array a lane at ``CG = 32`` (16 floats, 8 doubles), at least one: a warp
    covers ``K x 32 / cg`` predecessors, a block of :data:`SINGLE_PASS_BLOCK` threads at least
    128 in float32 and at least 64 in float64 a round trip. Defined in chapter 4.
    """
    return max(1, (64 // np.dtype(dtype).itemsize) * cg // 32)


def three_phase_blocks(n_steps: int, n_sm: int) -> int:
    """Blocks of the three-phase kernel: two an SM, but at least 32 steps a block."""
    return max(1, min(math.ceil(n_steps / 32), THREE_PHASE_BLOCKS_PER_SM * n_sm))


def three_phase_warps(n_steps: int, n_blocks: int) -> int:
    """Warps a block of the three-phase kernel: up to 32, but at least 32 steps a warp.

    Every warp adds one map (two numbers a channel) to the scratch, so a warp with a step or
    two would make the scratch as large as the input: at T = 8,448 on an H200, 264 blocks of
    32 warps of one step each. Defined in chapter 4.
    """
    return max(1, min(THREE_PHASE_WARPS, n_steps // (32 * n_blocks)))


def three_phase_steps(dtype) -> int:
    """Time steps a lane of the three-phase kernel loads before it composes them, the ``STEPS``
    of ``three_phase.cu``: 8 floats (32 bytes of ``a``, 32 of ``b``) or 2 doubles (16 of each;
    4 would not fit the 64 registers a thread of a 1024-thread block may have). Defined in
    chapter 4."""
    return 8 if np.dtype(dtype) == np.float32 else 2


def three_phase_scratch(n_channels: int, n_blocks: int, warps: int) -> int:
    """Elements of each of the three-phase kernel's scratch arrays ``P`` and ``R``.

    One map a block, warp and channel (slot ``warps``: the whole block), and below 32 channels
    one more a thread: the map of the lane groups before its own, which phase 1 leaves for
    phase 3. Defined in chapter 4.
    """
    C = int(n_channels)
    return n_blocks * (warps + 1) * C + (n_blocks * 32 * warps if C < 32 else 0)


def serial_steps(dtype) -> int:
    """Time steps a serial thread loads before it computes: 16 floats or 8 doubles (128 bytes
    of ``a`` and ``b``), the ``STEPS`` of ``serial.cu``."""
    return 16 if np.dtype(dtype) == np.float32 else 8


def serial_min_channels(n_sm: int, dtype=np.float32) -> int:
    """From this many channels "auto" picks the serial kernel (see :func:`choose_method`).

    By Little's law an SM streams at its share of the copy's speed when it has ``share x
    latency`` bytes of loads in flight (an H200: :data:`COPY_BYTES_PER_S` / 132 SMs x
    :data:`DRAM_LATENCY_S`; the loads are 8 of the 12 bytes an element, the stores need no
    waiting): about 15 KB. A serial thread keeps at least :func:`serial_steps` steps of ``a``
    and ``b`` in flight (128 bytes), so that takes 119 threads an SM, 128 in whole warps; one
    channel a thread. Defined in chapter 4.
    """
    itemsize = np.dtype(dtype).itemsize
    need = COPY_BYTES_PER_S / H200_SMS * DRAM_LATENCY_S * (8 / 12)  # bytes in flight an SM
    per_thread = serial_steps(dtype) * 2 * itemsize
    return 32 * math.ceil(need / per_thread / 32) * n_sm


def choose_method(n_steps: int, n_channels: int, n_sm: int = 132) -> str:
    """The kernel ``method="auto"`` runs for a ``(T, C)`` problem on a GPU with ``n_sm`` SMs.

    Both candidates move the minimum 12 bytes an element; the question is whether there is
    enough independent work to keep the memory system busy. The serial kernel has one thread a
    channel, each with 16 steps (128 bytes) of loads in flight, and reaches the copy's speed
    from :func:`serial_min_channels` channels (16,896 on an H200); it has no scratch and no
    look-back, so from there on it is the one to run. Below that the single-pass scan, which
    also splits time, is used. The three-phase kernel (20 bytes an element) is never chosen:
    it is the book's stepping stone. Defined in chapter 4.
    """
    return "serial" if n_channels >= serial_min_channels(n_sm) else "single_pass"


def bandwidth_model(method: str, n_steps: int, n_channels: int, dtype=np.float32, *,
                    n_sm: int = 132, resident_blocks: int = 2, lookback: str = "wide",
                    ) -> dict:  # fmt: skip
    """Chapter 4's model of a kernel's speed, as a fraction of the copy's bandwidth.

    Three numbers decide it: the **bytes** moved (12 an element in float32 for the serial and
    single-pass kernels, 20 for the three-phase kernel, which reads the input twice), the
    **round trips** to memory a unit of work waits for, one after another, and how many units
    are **resident** at once to hide them (Little's law: rate = work in flight / latency).

    * ``"serial"``: a thread (one channel) waits one DRAM latency a batch of
      :func:`serial_steps` steps; ``C`` threads in all, at most 512 an SM (two blocks of 256).
    * ``"single_pass"``: a tile (:data:`SINGLE_PASS_BLOCK` threads, :func:`single_pass_items`
      steps each) waits for its loads (one DRAM latency), its own scan (:data:`TILE_WORK_S`)
      and one look-back round (two round trips to L2: poll the flags, fetch the values); and
      the states entering the tiles of one channel group advance only as fast as a tile
      composes the aggregates of its unfinished predecessors. With ``lookback="wide"``
      (``single_pass.cu``: the flags of :data:`LOOKBACK_WINDOW` (128) predecessors in one
      round trip, then their values fetched by the whole block, :func:`lookback_fetch` a lane
      group: 128 predecessors a round trip in float32, 64 in float64 from 3 channels, CG = 4)
      the states advance by 128 tiles every two round trips (three in float64 from 3 channels);
      with ``"chunked"`` (the same poll, but only warp 0 fetches, ``32 / CG`` predecessors a
      load: one round trip a chunk, even with the next chunk's loads issued while one is
      composed) by ``32 / CG`` tiles a round trip; with ``"per_group"`` (one predecessor a lane
      group, polled and then fetched: two round trips a chunk) by ``32 / CG`` tiles every two.
      Publishing a found state costs the same in every design and is left out. Idle lanes
      (``C`` below the channel group, or a last group only partly filled) carry no data.
    * ``"three_phase"``: 20 bytes an element (16 of them loads), the ``THREE_PHASE_WARPS``
      warps of one block an SM resident (the host launches two, but its kernels take about 60
      registers a thread in the machine code of chapter 4, over the 32 that two blocks of 1024
      threads could have, so the second block of an SM waits for the first). All 32 lanes of a
      warp work at any ``C`` (below 32 channels, ``32 / CG`` lane groups split the warp's slice
      of time), less the lanes of a channel group that have no channel, and each keeps a batch
      of :func:`three_phase_steps` steps of ``a`` and ``b`` in flight (64 bytes in float32, 32
      in float64): one DRAM latency a batch.

    Returns ``{"bytes_per_element", "round_trips", "resident", "fraction", "bound"}``, the
    fraction of the copy's bandwidth (at most 1, scaled by 12 / bytes). Every constant is an
    assumption printed in the chapter, not a measurement. Defined in chapter 4.
    """
    if method not in ("serial", "single_pass", "three_phase"):
        raise ValueError(f"method must be 'serial', 'single_pass' or 'three_phase'; got {method!r}")
    if lookback not in ("wide", "chunked", "per_group"):
        raise ValueError(f"lookback must be 'wide', 'chunked' or 'per_group'; got {lookback!r}")
    T, C = int(n_steps), int(n_channels)
    isz = np.dtype(dtype).itemsize
    bpe = 3 * isz  # read a and b, write h
    if method == "serial":
        threads = min(C, n_sm * 2 * SERIAL_BLOCK)  # resident threads, one a channel
        in_flight = threads * serial_steps(dtype) * 2 * isz  # bytes of loads in flight
        rate = in_flight / DRAM_LATENCY_S * (bpe / (2 * isz))  # all bytes, per second
        trips, resident = math.ceil(T / serial_steps(dtype)), threads
    elif method == "single_pass":
        cg = channel_group(C)
        n_groups = -(-C // cg)
        L = SINGLE_PASS_BLOCK // cg * single_pass_items(dtype)
        tiles = n_groups * -(-T // L)
        resident = min(tiles, resident_blocks * n_sm)
        useful = C / (n_groups * cg)  # lanes that carry a channel
        # a look-back round: poll the flags, then fetch the values (two round trips to L2)
        round_s = 2 * L2_LATENCY_S
        trips = 2
        tau = DRAM_LATENCY_S + TILE_WORK_S + round_s  # a tile that finds its state at once
        rate = resident * L * cg * useful * bpe / tau
        # the chain: a tile learns the state entering it by composing the aggregates of the
        # predecessors that have none yet, so along one channel group the states advance by
        # at most `advance` tiles every `advance_s` seconds, however many tiles are resident
        # (with d unfinished predecessors a look-back takes about d / advance rounds, and d
        # grows with the tile rate: the look-back keeps up only below that rate)
        if lookback == "wide":  # the window polled, then fetched FETCH a round trip
            fetch = lookback_fetch(cg, dtype) * (32 // cg) * (SINGLE_PASS_BLOCK // 32)
            advance = LOOKBACK_WINDOW
            advance_s = (1 + math.ceil(LOOKBACK_WINDOW / fetch)) * L2_LATENCY_S
        else:  # chunks of 32 / CG: a round trip each, or a poll and a fetch each
            advance = 32 // cg
            advance_s = L2_LATENCY_S if lookback == "chunked" else round_s
        chain = n_groups * advance / advance_s * L * cg * useful * bpe
        rate = min(rate, chain)
        trips += 1  # the tile's own loads
    else:
        bpe = 5 * isz
        # one resident block of 1024 threads an SM: over 32 registers a thread (chapter 4)
        warps = min(THREE_PHASE_WARPS, math.ceil(T / 32)) * n_sm
        cg = channel_group(C)  # lanes a lane group: 32 / CG groups split a warp's slice
        useful = C / (-(-C // cg) * cg)  # lanes that carry a channel
        steps = three_phase_steps(dtype)
        in_flight = warps * 32 * useful * steps * 2 * isz  # bytes of loads, all SMs
        rate = in_flight / DRAM_LATENCY_S * (bpe / (4 * isz))  # all bytes, per second
        resident = warps * (32 // cg)  # lane groups, each a sub-slice of time
        trips = 2 * math.ceil(T / (resident * steps))  # a batch a round trip, in both passes
    copy = COPY_BYTES_PER_S * n_sm / H200_SMS  # the GPU's copy: each SM's share of an H200's
    fraction = min(rate, copy) / copy * (3 * isz / bpe)  # against the copy of the same elements
    bound = "bandwidth" if rate >= copy else "latency"
    return {"bytes_per_element": bpe, "round_trips": trips, "resident": resident,
            "fraction": fraction, "bound": bound}  # fmt: skip


def three_phase_slices(n_steps: int, n_blocks: int, warps: int) -> list[list[tuple[int, int]]]:
    """``[block][warp] -> (begin, end)``: the time slices of the three-phase kernel.

    The same arithmetic as ``divide_work`` in ``three_phase.cu``: contiguous ranges whose sizes
    differ by at most one, the first ``n % workers`` one longer.
    """

    out = []
    for k in range(n_blocks):
        b0, b1 = _divide(n_steps, n_blocks, k)
        out.append(
            [(b0 + w0, b0 + w1) for w0, w1 in (_divide(b1 - b0, warps, w) for w in range(warps))]
        )
    return out


def _divide(n, workers, w):
    """``divide_work`` of ``three_phase.cu``: worker ``w``'s range of ``n`` jobs."""
    small, extra = divmod(n, workers)
    begin = w * small + min(w, extra)
    return begin, begin + small + (1 if w < extra else 0)


# ----------------------------------------------------------------------------------------------
# the NumPy twins: the kernels' decompositions, step for step, on the CPU
# ----------------------------------------------------------------------------------------------


def _host_inputs(a, b, h0):
    for name, x in (("a", a), ("b", b)):
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array for the twin; got {type(x).__name__}")
        if x.ndim != 2:
            raise ValueError(f"{name} must have shape (T, C); got shape {x.shape}")
        if x.dtype not in (np.float32, np.float64):
            raise TypeError(f"{name} must be float32 or float64; got {x.dtype}")
    if a.shape != b.shape or a.dtype != b.dtype:
        raise ValueError(
            f"a and b must have the same shape and dtype; got {a.shape} {a.dtype} and "
            f"{b.shape} {b.dtype}"
        )
    if h0 is None:
        h0 = np.zeros(a.shape[1], a.dtype)
    h0 = np.asarray(h0, dtype=a.dtype)
    if h0.shape != (a.shape[1],):
        raise ValueError(f"h0 must have shape {(a.shape[1],)}; got {h0.shape}")
    return a, b, h0


def three_phase_twin(
    a: np.ndarray,
    b: np.ndarray,
    h0: np.ndarray | None = None,
    reverse: bool = False,
    *,
    n_blocks: int | None = None,
    warps: int | None = None,
    n_sm: int = 132,
) -> np.ndarray:
    """``three_phase.cu`` carried out in NumPy: the same slices, the same order of combination.

    Each (block, warp) slice of :func:`three_phase_slices` is split again among the warp's
    ``G = 32 / CG`` lane groups (``CG``: :func:`channel_group`; one group from 32 channels on);
    each group reduces its sub-slice to ``(P, R)``, and the groups of a warp are combined by
    the kernel's Hillis-Steele scan (its ``__shfl_up_sync`` loop), which also leaves each group
    the map of the groups before it. Each block combines its warps; the block maps are scanned
    from ``h0``; each block hands its carry to its warps, each warp to its lane groups (that map
    of the groups before), and each group rescans its sub-slice. The arithmetic is in the dtype
    of the inputs, as on the GPU (the channels are NumPy's vector lanes). ``n_blocks`` defaults
    to what the host code would launch on a GPU with ``n_sm`` multiprocessors, and ``warps`` to
    its :func:`three_phase_warps`. Defined in chapter 4.
    """
    a, b, h0 = _host_inputs(a, b, h0)
    T, C = a.shape
    if n_blocks is None:
        n_blocks = three_phase_blocks(T, n_sm)
    if warps is None:
        warps = three_phase_warps(T, n_blocks)
    if n_blocks < 1 or warps < 1:
        raise ValueError(f"n_blocks and warps must be >= 1; got {n_blocks} and {warps}")
    if reverse:  # logical time runs backwards through memory; the phases read as forward scans
        a, b = a[::-1], b[::-1]
    slices = three_phase_slices(T, n_blocks, warps)
    G = 32 // channel_group(C)  # lane groups a warp
    one, zero = np.ones(C, a.dtype), np.zeros(C, a.dtype)
    P = np.ones((n_blocks, warps + 1, C), a.dtype)
    R = np.zeros((n_blocks, warps + 1, C), a.dtype)
    before = {}  # (block, warp) -> the map of the lane groups before each group, shape (2, G, C)
    # phase 1: reduce every lane group's sub-slice, combine the groups of each warp, then each
    # block's warps
    for k in range(n_blocks):
        for w, (t0, t1) in enumerate(slices[k]):
            pg, rg = np.ones((G, C), a.dtype), np.zeros((G, C), a.dtype)
            for g in range(G):
                s0, s1 = _divide(t1 - t0, G, g)
                for t in range(t0 + s0, t0 + s1):
                    pg[g] = a[t] * pg[g]
                    rg[g] = a[t] * rg[g] + b[t]
            d = 1  # Hillis-Steele: group g takes in group g - d (lanes d * CG apart)
            while d < G:
                pg[d:], rg[d:] = pg[d:] * pg[:-d], pg[d:] * rg[:-d] + rg[d:]
                d *= 2
            before[k, w] = np.stack([np.vstack([one, pg[:-1]]), np.vstack([zero, rg[:-1]])])
            P[k, w], R[k, w] = pg[-1], rg[-1]  # the last group holds the warp's map
        p, r = one.copy(), zero.copy()
        for w in range(warps):
            p, r = P[k, w] * p, P[k, w] * r + R[k, w]
        P[k, warps], R[k, warps] = p, r
    # phase 2: scan the block maps from h0; R[k, W] becomes the state entering block k
    carry = h0.astype(a.dtype)
    for k in range(n_blocks):
        p, r = P[k, warps].copy(), R[k, warps].copy()
        R[k, warps] = carry
        carry = p * carry + r
    # phase 3: carries for the warps, then for their lane groups, then rescan
    h = np.empty_like(b)
    for k in range(n_blocks):
        carry = R[k, warps].copy()
        for w in range(warps):
            p, r = P[k, w].copy(), R[k, w].copy()
            R[k, w] = carry
            carry = p * carry + r
        for w, (t0, t1) in enumerate(slices[k]):
            for g in range(G):
                s0, s1 = _divide(t1 - t0, G, g)
                x = R[k, w].copy()
                if G > 1:
                    x = before[k, w][0, g] * x + before[k, w][1, g]
                for t in range(t0 + s0, t0 + s1):
                    x = a[t] * x + b[t]
                    h[t] = x
    return h[::-1].copy() if reverse else h


def _after(A, B, A0, B0):
    """``(A, B) after (A0, B0)``: first ``x -> A0 x + B0``, then ``x -> A x + B``."""
    return A * A0, A * B0 + B


def single_pass_twin(
    a: np.ndarray,
    b: np.ndarray,
    h0: np.ndarray | None = None,
    reverse: bool = False,
    *,
    block: int = SINGLE_PASS_BLOCK,
    items: int | None = None,
    lookback: str = "immediate",
    seed: int = 0,
    window: int = LOOKBACK_WINDOW,
) -> np.ndarray:
    """``single_pass.cu`` carried out in NumPy, tile by tile in the order tiles start.

    Per tile (``CG`` channels x ``L = block / CG * items`` steps): each "thread" composes its
    ``items`` maps; each "warp" scans its ``32 / CG`` segments by Hillis-Steele doubling (the
    ``__shfl_up_sync`` loop); the warp totals are scanned serially; the state entering the tile
    comes from the decoupled look-back: ``window`` predecessors' flags a round (128 in the
    kernel), then the values of those up to the nearest with its state (its state as the map
    ``(0, s)``), fetched ``FETCH`` a pass: each warp ``PW`` positions, each lane group ``K``
    (:func:`lookback_fetch`) composed in time order, the lane groups with the kernel's
    ``__shfl_down_sync`` tree and the warps' parts nearest first, positions without data left
    out rather than composed as the identity; then every thread rescans from its carry.

    ``lookback="immediate"`` lets every predecessor have finished (the look-back stops at the
    nearest); ``"random"`` makes each predecessor, at random (``seed``), show only its
    aggregate (flag 1), as when it has not yet finished its own look-back: the combining path
    of the kernel is then exercised (a small ``window`` makes it move to further windows too,
    a small ``block`` makes a window take several passes). The result must not depend on it.
    Defined in chapter 4.
    """
    a, b, h0 = _host_inputs(a, b, h0)
    if lookback not in ("immediate", "random"):
        raise ValueError(f"lookback must be 'immediate' or 'random'; got {lookback!r}")
    if block % 32 or block < 32:
        raise ValueError(f"block must be a positive multiple of 32; got {block}")
    T, C = a.shape
    if window < 1:
        raise ValueError(f"window must be >= 1; got {window}")
    items = single_pass_items(a.dtype) if items is None else int(items)
    if items < 1:
        raise ValueError(f"items must be >= 1; got {items}")
    dt = a.dtype
    CG = channel_group(C)
    WIN, SEGS, NW = 32 // CG, block // CG, block // 32
    K = lookback_fetch(CG, dt)  # the look-back's fetch: K a lane group, PW a warp, FETCH a pass
    PW = K * WIN
    FETCH = PW * NW
    L = SEGS * items
    n_groups, n_t = -(-C // CG), -(-T // L)
    n_tiles = n_groups * n_t
    if reverse:
        a, b = a[::-1], b[::-1]
    # pad with identity maps (a = 1, b = 0), as the kernel loads past the end
    ap = np.ones((n_t * L, n_groups * CG), dt)
    bp = np.zeros((n_t * L, n_groups * CG), dt)
    ap[:T, :C], bp[:T, :C] = a, b
    hp = np.zeros_like(ap)
    h0p = np.zeros(n_groups * CG, dt)
    h0p[:C] = h0
    agg_a = np.ones((n_tiles, CG), dt)
    agg_b = np.zeros((n_tiles, CG), dt)
    inc_h = np.zeros((n_tiles, CG), dt)
    flags = np.zeros(n_tiles, np.int32)
    rng = np.random.default_rng(seed)
    one, zero = np.ones(CG, dt), np.zeros(CG, dt)

    for tile in range(n_tiles):
        j, g = divmod(tile, n_groups)
        cs = slice(g * CG, (g + 1) * CG)
        ta = ap[j * L : (j + 1) * L, cs].reshape(SEGS, items, CG)
        tb = bp[j * L : (j + 1) * L, cs].reshape(SEGS, items, CG)
        # 1. each thread composes its items
        A, B = np.ones((SEGS, CG), dt), np.zeros((SEGS, CG), dt)
        for k in range(items):
            A, B = _after(ta[:, k], tb[:, k], A, B)
        # 2. Hillis-Steele within each warp over its WIN segments
        A, B = A.reshape(NW, WIN, CG), B.reshape(NW, WIN, CG)
        o = 1
        while o < WIN:
            A0, B0 = A[:, :-o].copy(), B[:, :-o].copy()
            A[:, o:], B[:, o:] = _after(A[:, o:], B[:, o:], A0, B0)
            o *= 2
        xa, xb = np.ones_like(A), np.zeros_like(B)  # exclusive within the warp
        xa[:, 1:], xb[:, 1:] = A[:, :-1], B[:, :-1]
        # 3. serial exclusive scan of the warp totals
        wa, wb = np.ones((NW, CG), dt), np.zeros((NW, CG), dt)
        sa, sb = A[0, WIN - 1].copy(), B[0, WIN - 1].copy()  # not composed after the identity
        for w in range(1, NW):
            wa[w], wb[w] = sa, sb
            sa, sb = _after(A[w, WIN - 1], B[w, WIN - 1], sa, sb)
        # 4. the decoupled look-back
        if j == 0:
            carry = h0p[cs].copy()
        else:
            agg_a[tile], agg_b[tile], flags[tile] = sa, sb, 1
            acc_a, acc_b = one.copy(), zero.copy()
            first = tile - n_groups
            while True:  # one round: poll `window` flags, then fetch and compose pass by pass
                preds = [first - q * n_groups for q in range(window)]
                seen = []
                for p in preds:
                    if p < 0:
                        seen.append(2)
                    elif lookback == "random" and p >= n_groups and rng.random() < 0.5:
                        seen.append(1)  # finished its aggregate, not yet its look-back
                    else:
                        seen.append(int(flags[p]))
                pstar = seen.index(2) if 2 in seen else window
                upto = pstar + 1 if pstar < window else window  # positions with data
                for pass_ in range(0, upto, FETCH):
                    for w in range(NW):  # warp w: positions pass_ + w * PW + lp * K + k
                        parts = []  # each lane group's composition, None without data
                        for lp in range(WIN):
                            m = None
                            for k in range(K - 1, -1, -1):  # the furthest back first
                                q = pass_ + w * PW + lp * K + k
                                if q >= upto:
                                    continue  # no data: left out, not the identity
                                if q < pstar:
                                    e = agg_a[preds[q]], agg_b[preds[q]]
                                else:  # the state s as the constant map (0, s)
                                    e = np.zeros(CG, dt), inc_h[preds[q]]
                                m = e if m is None else _after(*e, *m)
                            parts.append(m)
                        o = 1
                        while o < WIN:  # the __shfl_down_sync tree: lane lp after lane lp + o
                            for lp in range(WIN - o):
                                if parts[lp + o] is not None:
                                    parts[lp] = _after(*parts[lp], *parts[lp + o])
                            o *= 2
                        if parts[0] is not None:  # warp 0 composes the parts with data
                            acc_a, acc_b = _after(acc_a, acc_b, *parts[0])
                if pstar < window:
                    carry = acc_b
                    break
                first -= window * n_groups
        inc_h[tile], flags[tile] = sa * carry + sb, 2
        # 5. rescan from each thread's carry
        x = wa[:, None, :] * carry + wb[:, None, :]
        x = (xa * x + xb).reshape(SEGS, CG)
        out = np.empty_like(ta)
        for k in range(items):
            x = ta[:, k] * x + tb[:, k]
            out[:, k] = x
        hp[j * L : (j + 1) * L, cs] = out.reshape(L, CG)
    h = hp[:T, :C]
    return h[::-1].copy() if reverse else h.copy()

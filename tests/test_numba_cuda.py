"""The Numba CUDA kernels of chapter 3, checked against float64 serial references.

Without a GPU every kernel runs in Numba's CUDA simulator (about a second per thousand
elements, so sizes stay small), and each kernel is also compiled to PTX for a real GPU
(``cc=(9, 0)``), which catches code the simulator accepts but CUDA does not. Tests marked
``gpu`` run the kernels for real and are selected by ``make gpu-check`` only.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import scanbook as sb
from conftest import reference_recurrence
from hypothesis import given, settings
from hypothesis import strategies as st
from scanbook.kernels import numba_cuda as nc

DTYPES = (np.float32, np.float64)


def values(rng, shape, dtype=np.float64, low=0.5, high=1.5):
    """Random numbers that are never zero: magnitude in [low, high), a random sign."""
    mag = rng.uniform(low, high, size=shape)
    return (mag * rng.choice([-1.0, 1.0], size=shape)).astype(dtype)


def ref_scan(x, exclusive=False):
    return sb.serial.scan(sb.ops.add, np.asarray(x, dtype=np.float64), exclusive=exclusive)


def assert_close(got, expected, dtype):
    """Within float32/float64 rounding, relative to the largest value (sums cross zero)."""
    rtol, atol = (2e-4, 2e-5) if np.dtype(dtype) == np.float32 else (1e-10, 1e-12)
    scale = max(1.0, float(np.nanmax(np.abs(expected)))) if np.size(expected) else 1.0
    got = np.asarray(got, dtype=np.float64)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol * scale)


def recurrence_inputs(rng, T, C, dtype):
    a = values(rng, (T, C), dtype, low=0.5, high=1.0)  # decays: |a| < 1, never 0
    b = values(rng, (T, C), dtype)
    h0 = values(rng, (C,), dtype)
    return a, b, h0


# -- block scans ---------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "dtype"), [(1, np.float32), (33, np.float64), (300, np.float32)])
def test_hillis_steele_block_scan(rng, n, dtype):
    x = values(rng, n, dtype)
    got = nc.hillis_steele_block_scan(x)
    assert got.dtype == dtype and got.shape == (n,)
    assert_close(got, ref_scan(x), dtype)


@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize(
    ("n", "exclusive", "dtype"),
    [
        (1, False, np.float64),
        (63, True, np.float32),
        (64, False, np.float64),
        (65, True, np.float64),
        (1000, False, np.float32),
    ],
)
def test_blelloch_block_scan(rng, n, exclusive, dtype, padded):
    x = values(rng, n, dtype)
    got = nc.blelloch_block_scan(x, exclusive=exclusive, padded=padded)
    assert got.dtype == dtype
    assert_close(got, ref_scan(x, exclusive), dtype)


def test_block_scans_reject_too_long_inputs():
    with pytest.raises(ValueError, match="one block"):
        nc.hillis_steele_block_scan(np.ones(1025))
    with pytest.raises(ValueError, match="2048"):
        nc.blelloch_block_scan(np.ones(2049))
    with pytest.raises(ValueError, match="1 to"):
        nc.blelloch_block_scan(np.ones(0))


# -- scans of any length (block sums) --------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "block", "exclusive", "dtype"),
    [
        (1, 64, False, np.float32),
        (63, 64, True, np.float64),  # block - 1
        (64, 64, False, np.float32),  # block
        (65, 64, True, np.float32),  # block + 1: two blocks
        (300, 128, False, np.float64),
        (65, 8, False, np.float64),  # 9 blocks -> 2 -> 1: three levels of recursion
        (700, 256, True, np.float32),
    ],
)
def test_scan_any_length(rng, n, block, exclusive, dtype):
    x = values(rng, n, dtype)
    got = nc.scan(x, exclusive=exclusive, block=block)
    assert got.dtype == dtype and got.shape == (n,)
    assert_close(got, ref_scan(x, exclusive), dtype)


@settings(max_examples=6, deadline=None)
@given(
    n=st.integers(1, 70),
    block=st.sampled_from([2, 4, 16, 32]),
    exclusive=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_scan_property(n, block, exclusive, seed):
    x = values(np.random.default_rng(seed), n)
    assert_close(nc.scan(x, exclusive=exclusive, block=block), ref_scan(x, exclusive), np.float64)


def test_scan_empty_and_device_arrays(rng):
    from numba import cuda

    assert nc.scan(np.zeros(0, np.float32)).shape == (0,)
    x = values(rng, 40)
    d_out = nc.scan(cuda.to_device(x), block=16)
    assert not isinstance(d_out, np.ndarray)  # stays on the device
    assert_close(d_out.copy_to_host(), ref_scan(x), np.float64)


def test_scan_with_the_unpadded_kernel(rng):
    x = values(rng, 100, np.float32)
    assert_close(nc.scan(x, block=32, padded=False), ref_scan(x), np.float32)


def test_scan_levels():
    assert [nc.scan_levels(n, 64) for n in (1, 64, 65, 4096, 4097)] == [1, 1, 2, 2, 3]


@pytest.mark.parametrize(
    ("x", "kwargs", "error", "match"),
    [
        (np.ones(8, np.int32), {}, TypeError, "float32 or float64"),
        (np.ones(8, np.complex64), {}, TypeError, "float32 or float64"),
        (np.ones((2, 4)), {}, ValueError, "1-D"),
        (np.ones(8), {"block": 48}, ValueError, "power of two"),
        (np.ones(8), {"block": 4096}, ValueError, "at most 2048"),
    ],
)
def test_scan_rejects_bad_inputs(x, kwargs, error, match):
    with pytest.raises(error, match=match):
        nc.scan(x, **kwargs)


# -- bank conflicts ---------------------------------------------------------------------------


def test_bank_conflicts_before_and_after_padding():
    plain = nc.bank_conflicts(1024, padded=False)
    padded = nc.bank_conflicts(1024, padded=True)
    assert len(plain) == len(padded) == 20  # log2(1024) levels in each sweep
    up = [lv.degree for lv in plain if lv.phase == "up-sweep"]
    assert up == [2, 4, 8, 16, 32, 16, 8, 4, 2, 1]  # stride s: min(2s, 32, active threads)
    assert [lv.degree for lv in plain if lv.phase == "down-sweep"] == up[::-1]
    assert all(lv.degree == 1 for lv in padded)
    assert [lv.active for lv in plain[:3]] == [512, 256, 128]


def test_bank_conflict_degree_counts_distinct_words():
    assert nc.conflict_degree(range(32)) == 1
    assert nc.conflict_degree([0] * 32) == 1  # one word: a broadcast
    assert nc.conflict_degree(range(0, 64, 2)) == 2
    assert nc.conflict_degree(range(0, 32 * 32, 32)) == 32
    assert nc.conflict_degree(range(0, 33 * 32, 33)) == 1


def test_bank_conflicts_rejects_non_powers_of_two():
    with pytest.raises(ValueError, match="power of two"):
        nc.bank_conflicts(100, padded=False)


# -- the linear recurrence --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("T", "C", "reverse", "with_h0", "dtype"),
    [
        (1, 1, False, True, np.float64),  # T = 1
        (1, 5, True, False, np.float32),
        (37, 1, False, False, np.float64),  # one channel
        (300, 3, False, True, np.float32),  # the simulator's kernel_T x kernel_channels
        (300, 3, True, True, np.float64),
        (513, 2, True, False, np.float32),
        (45, 40, False, True, np.float64),  # many channels: two groups of 32 lanes
        (45, 40, True, True, np.float32),
    ],
)
def test_linear_recurrence_backend(rng, T, C, reverse, with_h0, dtype):
    a, b, h0 = recurrence_inputs(rng, T, C, dtype)
    h0 = h0 if with_h0 else None
    got = sb.linear_recurrence(a, b, h0, reverse=reverse, backend="numba_cuda")
    assert isinstance(got, np.ndarray) and got.dtype == dtype and got.shape == (T, C)
    assert_close(got, reference_recurrence(a, b, h0, reverse), dtype)


@pytest.mark.parametrize("reverse", [False, True])
def test_linear_recurrence_deep_recursion(rng, reverse):
    # 2 lanes x 2 steps x K=2: chunks of 4 steps, 130 -> 33 chunk totals -> 4 -> 2 -> 1
    from numba import cuda

    a, b, h0 = recurrence_inputs(rng, 130, 2, np.float64)
    d_h = cuda.device_array((130, 2))
    depth = nc._recurrence_device(
        cuda.to_device(a), cuda.to_device(b), cuda.to_device(h0), d_h, reverse, "blelloch", 4, 2
    )
    assert depth == 4
    assert_close(d_h.copy_to_host(), reference_recurrence(a, b, h0, reverse), np.float64)


def test_linear_recurrence_empty_and_batch_shapes(rng):
    a = values(rng, (0, 3))
    assert sb.linear_recurrence(a, a, backend="numba_cuda").shape == (0, 3)
    a, b = values(rng, (20, 2, 3), low=0.5, high=1.0), values(rng, (20, 2, 3))
    h0 = values(rng, (2, 3))
    got = sb.linear_recurrence(a, b, h0, backend="numba_cuda")
    expected = reference_recurrence(a.reshape(20, 6), b.reshape(20, 6), h0.reshape(6)).reshape(
        20, 2, 3
    )
    assert got.shape == (20, 2, 3)
    assert_close(got, expected, np.float64)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("which", ["a", "b"])
def test_linear_recurrence_nan_stays_in_its_channel_and_later_steps(rng, reverse, which):
    T, C, t0, c0 = 100, 3, 40, 1
    a, b, h0 = recurrence_inputs(rng, T, C, np.float64)
    (a if which == "a" else b)[t0, c0] = np.nan
    got = nc.linear_recurrence(a, b, h0, reverse=reverse)
    later = np.arange(T) <= t0 if reverse else np.arange(T) >= t0
    nan = np.zeros((T, C), bool)
    nan[later, c0] = True
    assert np.isnan(got[nan]).all()
    assert np.isfinite(got[~nan]).all()
    expected = reference_recurrence(a, b, h0, reverse)
    assert_close(got[~nan], expected[~nan], np.float64)


def test_linear_recurrence_device_arrays(rng):
    from numba import cuda

    a, b, h0 = recurrence_inputs(rng, 50, 2, np.float32)
    d_h = nc.linear_recurrence(cuda.to_device(a), cuda.to_device(b), cuda.to_device(h0))
    assert not isinstance(d_h, np.ndarray)
    assert_close(d_h.copy_to_host(), reference_recurrence(a, b, h0), np.float32)
    d_h = nc.linear_recurrence(cuda.to_device(a), cuda.to_device(b), None, reverse=True)
    assert_close(d_h.copy_to_host(), reference_recurrence(a, b, None, reverse=True), np.float32)


# the shapes of the staged kernel's corner cases: (T, C, threads, K) with a partial last chunk
STAGED_SHAPES = [
    (1, 1, 32, None),  # T = 1
    (0, 64, None, None),  # T = 0
    (33, 1, 32, None),  # chunks of 32 steps: the second holds one
    (100, 1, 8, 4),  # chunks of 32: 4 rows of the last are loaded, 28 are padding
    (45, 3, 16, 3),  # K odd: the chunk's 12 rows hold no spare row of the tiles
    (45, 3, 16, 4),  # K = 4: spare rows inside the chunk
    (21, 33, 64, 2),  # the second channel group holds one channel
    (29, 64, 64, 4),  # two full groups of 32 lanes, chunks of 8 steps: the last holds 5
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(("T", "C", "threads", "K"), STAGED_SHAPES)
def test_linear_recurrence_staged_chunks(rng, T, C, threads, K, reverse, dtype):
    a, b, h0 = recurrence_inputs(rng, T, C, dtype)
    got = nc.linear_recurrence(a, b, h0, reverse=reverse, threads=threads, K=K)
    assert got.dtype == dtype and got.shape == (T, C)
    assert_close(got, reference_recurrence(a, b, h0, reverse), dtype)


class _Recorder:
    """A ``(T, C)`` array for the simulator that logs which thread touches which element.

    Each access is logged as ``(block, warp, n, element)``: the ``n``-th access of this array
    by that thread, so that one ``(block, warp, n)`` is one load (or store) instruction of a
    warp, and ``element = t * C + c`` is its offset in the row-major array.
    """

    def __init__(self, x):
        self.x, self.log, self._count = x, [], {}

    def _element(self, index):
        import threading

        t, c = (int(i) for i in index)
        T, C = self.x.shape
        assert 0 <= t < T and 0 <= c < C, f"index {(t, c)} outside {(T, C)}"
        th = threading.current_thread()  # the simulator runs one Python thread a CUDA thread
        key = (th.blockIdx.x, th.thread_id)
        n = self._count[key] = self._count.get(key, -1) + 1
        self.log.append((th.blockIdx.x, th.thread_id // 32, n, t * C + c))
        return t, c

    def __getitem__(self, index):
        return self.x[self._element(index)]

    def __setitem__(self, index, value):
        self.x[self._element(index)] = value


def _warp_accesses(log):
    by = {}
    for block, warp, n, element in log:
        by.setdefault((block, warp, n), []).append(element)
    return by


@pytest.mark.skipif(not sb.backends.cuda_simulator(), reason="logs accesses in the simulator")
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(
    ("T", "C", "threads", "K"),
    [(70, 1, 32, 2), (45, 3, 32, 4), (10, 33, 32, 3), (11, 64, 64, 2)],
)
def test_linear_recurrence_warps_read_and_write_neighbouring_elements(
    rng, T, C, threads, K, reverse
):
    # Every load of a (and store of h) by a warp touches distinct, neighbouring elements of
    # the row-major array: one contiguous run. Lanes reading K * C elements apart fail.
    a, b, h0 = recurrence_inputs(rng, T, C, np.float64)
    want = reference_recurrence(a, b, h0, reverse)
    p = nc.plan(T, C, threads=threads, K=K)
    assert p.chunks >= 2 and T % (p.steps * K)  # a partial last chunk
    kern = nc.kernel("linear_recurrence", np.float64, p.lanes, p.steps, K)
    # phase 3 from the true carries: the state after each chunk's last step
    ends = np.minimum(np.arange(1, p.chunks + 1) * p.steps * K, T) - 1
    carries = np.ascontiguousarray(want[T - 1 - ends if reverse else ends])
    ra, h = _Recorder(a), _Recorder(np.full((T, C), np.nan))
    kern[p.chunks * p.groups, (p.lanes, p.steps)](
        ra, b, h0, carries, carries, carries, h, T, C, reverse, True
    )
    assert_close(h.x, want, np.float64)
    for name, log in (("load of a", ra.log), ("store of h", h.log)):
        assert sorted(e for *_, e in log) == list(range(T * C)), name  # each element once
        for (block, warp, n), elements in _warp_accesses(log).items():
            lo, hi = min(elements), max(elements)
            assert hi - lo + 1 == len(elements) == len(set(elements)), (
                f"{name} {n} of warp {warp} in block {block}: elements {sorted(elements)}"
            )


def _tile_request_degrees(requests, itemsize):
    """The k of the k-way bank conflict of each request, a list of (lane, element) pairs.

    32 banks of 4-byte words; an 8-byte element is words 2e and 2e + 1, and shared memory
    serves such a request one half-warp (16 lanes) at a time.
    """
    degrees = []
    for request in requests:
        if itemsize == 4:
            degrees.append(nc.conflict_degree([e for _, e in request]))
        else:
            for half in (0, 1):
                words = [2 * e + w for lane, e in request if lane // 16 == half for w in (0, 1)]
                if words:
                    degrees.append(nc.conflict_degree(words))
    return degrees


def _tile_requests(lanes, steps, K, row):
    """Every warp request to a tile, as (lane, element) pairs, for the tile row function row."""
    threads = lanes * steps
    requests = []
    for w0 in range(0, threads, 32):
        ids = range(w0, min(w0 + 32, threads))
        for j in range(K):  # the rounds' stores, and the block's reads of h: rows j * steps + y
            requests.append(
                [(i % 32, row(j * steps + i // lanes) * lanes + i % lanes) for i in ids]
            )
        for k in range(K):  # each thread's step k: rows y * K + k
            requests.append([(i % 32, row(i // lanes * K + k) * lanes + i % lanes) for i in ids])
    return requests


def test_tile_bank_analysis_finds_a_two_way_conflict():
    # rows padded to K | 1 a thread (lanes = 1, K = 8): a warp's round stores rows 0..31 at
    # 0-7, 9-16, 18-25, 27-34, and rows 32-34 share banks with rows 0-2
    requests = _tile_requests(1, 32, 8, lambda r: r // 8 * 9 + r % 8)
    assert max(_tile_request_degrees(requests, 4)) == 2


@pytest.mark.parametrize("itemsize", [4, 8])
@pytest.mark.parametrize("lanes", [1, 2, 4, 8, 16, 32])
def test_recurrence_tiles_have_no_bank_conflicts(lanes, itemsize):
    # every warp request of the tiles, for every block shape and K <= 8 the kernel takes
    for threads in (2**i for i in range(11)):
        if threads < lanes:
            continue
        for K in range(1, 9):
            group = nc.tile_group(lanes, K, itemsize)
            assert group % K == 0  # 0 (no spare rows) only where a request is one bank row
            assert (group == 0) == (lanes * itemsize >= 128)
            requests = _tile_requests(
                lanes, threads // lanes, K, lambda r, g=group: nc.tile_row(r, g)
            )
            degrees = _tile_request_degrees(requests, itemsize)
            assert max(degrees) == 1, (threads, lanes, K, itemsize)


class _SharedRecorder:
    """A simulator shared array that logs ``(thread, n, element)`` for each access."""

    def __init__(self, x):
        self.x, self.log, self._count = x, [], {}

    def _element(self, index):
        import threading

        index = tuple(int(i) for i in index)
        tid = threading.current_thread().thread_id
        n = self._count[tid] = self._count.get(tid, -1) + 1
        self.log.append((tid, n, int(np.ravel_multi_index(index, self.x.shape))))
        return index

    def __getitem__(self, index):
        return self.x[self._element(index)]

    def __setitem__(self, index, value):
        self.x[self._element(index)] = value


@pytest.mark.skipif(not sb.backends.cuda_simulator(), reason="logs accesses in the simulator")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("lanes", "steps", "K"),
    [(1, 256, 8), (1, 32, 8), (1, 64, 4), (2, 16, 8), (4, 8, 2), (1, 32, 3), (8, 4, 6), (32, 2, 4)],
)
def test_recurrence_kernel_tiles_have_no_bank_conflicts(rng, monkeypatch, lanes, steps, K, dtype):
    # the kernel's own accesses to its two tiles, logged in the simulator: the n-th access of
    # every thread of a warp is one request; none may put two words in one bank
    import sys
    import threading

    from numba.cuda.simulator import kernelapi
    from numba.np import numpy_support

    tiles, lock = [], threading.Lock()

    def array(self, shape, dtype, alignment=None):
        caller = sys._getframe(1)
        key = (caller.f_code.co_filename, caller.f_lineno)
        with lock:
            if key not in self._allocations:
                dt = dtype if isinstance(dtype, np.dtype) else numpy_support.as_dtype(dtype)
                self._allocations[key] = _SharedRecorder(np.empty(shape, dt))
                tiles.append(self._allocations[key])
            return self._allocations[key]

    monkeypatch.setattr(kernelapi.FakeCUDAShared, "array", array)
    T, C = steps * K, lanes  # one full chunk of one full channel group: no thread idles
    a, b, h0 = recurrence_inputs(rng, T, C, dtype)
    h = np.full((T, C), np.nan, dtype)
    kern = nc.kernel("linear_recurrence", dtype, lanes, steps, K)
    kern[1, (lanes, steps)](a, b, h0, h, h, h, h, T, C, False, True)
    assert_close(h, reference_recurrence(a, b, h0), dtype)
    itemsize = np.dtype(dtype).itemsize
    for name, tile in zip(("a", "b"), tiles[:2], strict=True):
        requests = {}
        for tid, n, element in tile.log:
            requests.setdefault((tid // 32, n), []).append((tid % 32, element))
        assert len(requests) >= 2 * K * -(-lanes * steps // 32)  # K stores and K reads a warp
        degrees = _tile_request_degrees(requests.values(), itemsize)
        assert max(degrees) == 1, f"tile of {name}: a {max(degrees)}-way conflict"


@pytest.mark.parametrize(
    ("T", "C", "threads", "K"), [(1, 1, None, None), (1000, 1, None, None), (10**6, 64, 256, None)]
)
def test_plan_shapes(T, C, threads, K):
    p = nc.plan(T, C, threads=threads, K=K)
    gpu = sb.backends.has_gpu()
    assert p.lanes * p.steps == (threads or (256 if gpu else 32))
    assert p.lanes == min(32, p.lanes * p.steps, 1 << (C - 1).bit_length())
    assert p.steps & (p.steps - 1) == 0
    assert p.steps * p.K >= 2 and p.chunks * p.steps * p.K >= T > (p.chunks - 1) * p.steps * p.K
    assert p.groups * p.lanes >= C
    if K is None:  # few kernels (K a power of two), tiles that fit in shared memory
        assert p.K & (p.K - 1) == 0 and p.K <= 8
        assert nc.recurrence._shared_bytes(p.lanes, p.steps, p.K, 8) <= 48 * 1024


def test_plan_keeps_the_tiles_within_48_kb():
    # long enough for K = 8 steps a thread: 2 tiles (steps * K rows, and a spare row after
    # every lcm(16 or 32 / lanes, K) but the last) + the tree (steps rows)
    assert nc.recurrence._shared_bytes(1, 256, 8, 8) == 2 * (2048 + 127 + 256) * 8  # 38 KB
    assert nc.recurrence._shared_bytes(32, 8, 8, 4) == 2 * (64 + 8) * 32 * 4  # 18 KB: no spare row
    assert nc.recurrence._shared_bytes(32, 8, 8, 8) == 2 * (64 + 8) * 32 * 8  # 36 KB
    assert nc.plan(2**26, 1, threads=256, gpu=True, dtype=np.float64).K == 8
    assert nc.plan(2**26, 1, threads=1024, gpu=True, dtype=np.float32).K == 4  # 41 KB; 8: 74 KB
    assert nc.plan(2**26, 1, threads=1024, gpu=True, dtype=np.float64).K == 1  # 33 KB; 2: 50 KB
    with pytest.raises(ValueError, match="shared memory"):
        nc.plan(100, 1, threads=256, K=16, dtype=np.float64)
    with pytest.raises(ValueError, match="shared memory"):
        nc.linear_recurrence(np.ones((100, 1)), np.ones((100, 1)), threads=1024, K=4)


@pytest.mark.parametrize(
    ("a", "b", "h0", "error", "match"),
    [
        (np.ones((4, 2), np.int32), np.ones((4, 2), np.int32), None, TypeError, "int32"),
        (np.ones((4, 2), np.complex64), np.ones((4, 2), np.complex64), None, TypeError, "complex"),
        (np.ones((4, 2)), np.ones((4, 3)), None, ValueError, "shape"),
        (np.ones((4, 2)), np.ones((4, 2)), np.ones(3), ValueError, "h0"),
        (np.ones((4, 2)), np.ones((4, 2), np.float32), None, TypeError, "dtype"),
    ],
)
def test_backend_rejects_bad_inputs(a, b, h0, error, match):
    with pytest.raises(error, match=match):
        sb.linear_recurrence(a, b, h0, backend="numba_cuda")
    with pytest.raises(error):  # the kernel module checks for itself, too
        nc.linear_recurrence(a, b, np.ones(a.shape[1], a.dtype) if h0 is None else h0)


def test_vjp_through_the_numba_cuda_backend(rng):
    a, b, h0 = recurrence_inputs(rng, 30, 2, np.float64)
    h = sb.linear_recurrence(a, b, h0, backend="numpy")
    g = values(rng, (30, 2))
    for reverse in (False, True):
        want = sb.linear_recurrence_vjp(a, b, h0, h, g, reverse=reverse, backend="numpy")
        got = sb.linear_recurrence_vjp(a, b, h0, h, g, reverse=reverse, backend="numba_cuda")
        for x, y in zip(got, want, strict=True):
            assert_close(x, y, np.float64)


def test_kernel_module_rejects_bad_inputs():
    with pytest.raises(ValueError, match=r"\(T, C\)"):
        nc.linear_recurrence(np.ones(4), np.ones(4), np.ones(()))
    with pytest.raises(TypeError, match="share one dtype"):
        nc.linear_recurrence(np.ones((4, 1)), np.ones((4, 1)), np.ones(1, np.float32))
    with pytest.raises(TypeError, match="reverse"):
        nc.linear_recurrence(np.ones((4, 1)), np.ones((4, 1)), np.ones(1), reverse="yes")
    with pytest.raises(ValueError, match="steps per thread"):
        nc.linear_recurrence(np.ones((4, 1)), np.ones((4, 1)), np.ones(1), K=0)
    with pytest.raises(ValueError, match="kernel name"):
        nc.kernel("no_such_kernel", np.float32)
    with pytest.raises(TypeError, match="float32 or float64"):
        nc.ptx("blelloch", np.int32)


@pytest.mark.parametrize(
    ("name", "sizes", "threads"),
    [
        ("hillis_steele", (2048,), 2048),  # one thread an element: over CUDA's 1024
        ("blelloch", (3000,), 1500),  # not a power of two
        ("add_block_sums", (96,), 48),
        ("linear_recurrence", (32, 64, 8), 2048),
        ("linear_recurrence", (24, 8, 8), 192),
        ("linear_recurrence", (32, 8, 0), 256),  # K = 0 steps a thread
        ("linear_recurrence_shfl", (33,), 1056),  # 33 warps
    ],
)
def test_kernel_refuses_sizes_a_gpu_rejects(name, sizes, threads):
    with pytest.raises(ValueError, match=rf"kernel {name!r}.*\({threads} threads\)"):
        nc.kernel(name, np.float32, *sizes)


def test_shfl_kernel_takes_any_number_of_warps():
    assert nc.kernel("linear_recurrence_shfl", np.float32, 3) is not None  # 96 threads


def test_recurrence_kernel_takes_any_number_of_steps_a_thread():
    assert nc.kernel("linear_recurrence", np.float32, 4, 8, 3) is not None  # K = 3


# -- the package: sum scans and the recurrence backend in separate modules ------------------


def test_package_layout():
    from pathlib import Path

    scan_kernels = ["hillis_steele", "blelloch", "blelloch_padded", "add_block_sums"]
    # the order of the chapter (its first table lists KERNELS)
    assert list(nc.KERNELS) == [*scan_kernels, "linear_recurrence", "linear_recurrence_shfl"]
    for name, (make, _, _) in nc.KERNELS.items():
        home = nc.scans if name in scan_kernels else nc.recurrence
        assert make.__module__ == home.__name__, name
    for name in nc.__all__:  # every name of the package is its module's own object
        obj = getattr(nc, name)
        homes = [m for m in (nc.scans, nc.recurrence, nc.registry) if getattr(m, name, None) is obj]
        assert homes or name in {"scans", "recurrence", "registry"}, name
    # the backend and its VJP dispatch to the recurrence module's function
    assert nc.linear_recurrence is nc.recurrence.linear_recurrence
    recurrence_source = Path(nc.recurrence.__file__).read_text()
    assert "blelloch_block_scan" not in recurrence_source and "from .scans" not in recurrence_source
    assert "def linear_recurrence" not in Path(nc.scans.__file__).read_text()
    for module in (nc, nc.scans, nc.recurrence, nc.registry):
        assert len(Path(module.__file__).read_text().splitlines()) < 600, module.__name__


@pytest.mark.skipif(not sb.backends.cuda_simulator(), reason="the simulator's refusal only")
def test_shfl_variant_refuses_the_simulator():
    with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
        nc.linear_recurrence_shfl(np.ones((4, 1)), np.ones((4, 1)), np.ones(1))


# -- PTX for a real GPU -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def all_ptx():
    return nc.compile_ptx_all(cc=(9, 0))  # one process for every kernel and dtype


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(nc.KERNELS))
def test_every_kernel_compiles_to_ptx(all_ptx, name, dtype):
    text = all_ptx[(name, dtype)]
    assert ".target sm_90" in text and ".entry" in text
    fp = "f32" if dtype == "float32" else "f64"
    assert f".{fp}" in text
    uses_shared = name != "add_block_sums"
    assert ("bar.sync" in text or "barrier.sync" in text) == uses_shared
    assert ("ld.shared" in text) == uses_shared
    shuffles = text.count("shfl.sync")
    if name == "linear_recurrence_shfl":
        assert shuffles >= 12 * (1 if dtype == "float32" else 2)  # 8 bytes: two 32-bit shuffles
    else:
        assert shuffles == 0


def _ptx_instructions(text):
    """(opcode, operands) of each PTX instruction, a leading predicate (``@%p1``) removed."""
    out = []
    for line in text.splitlines():
        line = re.sub(r"^@!?%p\d+\s+", "", line.strip())
        if line and not line.startswith(("//", ".", "$", "{", "}")):
            op, _, rest = line.partition(" ")
            out.append((op, rest.strip()))
    return out


def test_ptx_instructions_see_predicated_loads():
    text = "\t@%p3 ld.global.f32 \t%f1, [%rd2];\n\t@!%p1 bra $L__BB0_2;\n// ld.global\n"
    assert _ptx_instructions(text) == [("ld.global.f32", "%f1, [%rd2];"), ("bra", "$L__BB0_2;")]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_recurrence_kernel_issues_its_loads_before_its_stores(all_ptx, dtype):
    # In the PTX, the 2K loads of a thread's rounds all precede the first store into the
    # tiles, so that they wait for memory together (a load, then its store, K times, would
    # wait K times). The loop exists twice, once for each value of reverse: both copies are
    # checked. va and vb stay in registers: no local memory at all.
    K = nc.KERNELS["linear_recurrence"][1][2]
    text = all_ptx[("linear_recurrence", dtype)]
    assert ".local" not in text  # no ld.local / st.local, no local array
    ops = _ptx_instructions(text)
    barrier = next(i for i, (op, _) in enumerate(ops) if op.startswith(("bar.", "barrier.")))
    before = ops[:barrier]  # the loading of the chunk, up to the first barrier
    loads = [i for i, (op, _) in enumerate(before) if op.startswith("ld.global")]
    stores = [i for i, (op, _) in enumerate(before) if op.startswith("st.shared")]
    assert len(stores) == 2 * K  # K rounds of a and b into the tiles
    assert len(loads) == 2 * (2 * K)  # 2K loads, in a copy for each value of reverse
    assert max(loads) < min(stores)  # every load of both copies before the first store
    dest = [before[i][1].split(",")[0] for i in loads]
    assert len(set(dest[: 2 * K])) == 2 * K and set(dest[: 2 * K]) == set(dest[2 * K :])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sizes", [(32, 8, 8), (1, 256, 8), (4, 16, 3)])
def test_recurrence_kernel_resources(dtype, sizes):
    # ptxas, through nvJitLink, on the CPU: the shared memory it allots is the plan's, and
    # the local arrays of the rounds are registers (no local memory, no spills)
    pytest.importorskip("cuda.bindings.nvjitlink")
    text = nc.compile_ptx_all(["linear_recurrence"], [dtype], sizes=sizes)[
        ("linear_recurrence", dtype)
    ]
    got = nc.resources(text)
    itemsize = np.dtype(dtype).itemsize
    assert got["shared"] == nc.recurrence._shared_bytes(*sizes, itemsize) + 1024  # + reserved
    assert got["local"] == 0
    assert 16 <= got["registers"] <= 128


def test_ptx_function_matches_the_batch(all_ptx):
    assert nc.ptx("blelloch_padded", np.float32) == all_ptx[("blelloch_padded", "float32")]


# -- real GPU only ----------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("T", "C", "reverse"), [(1, 1, False), (5000, 3, True), (100_003, 40, False)]
)
def test_shfl_variant_on_gpu(rng, dtype, T, C, reverse):
    a, b, h0 = recurrence_inputs(rng, T, C, dtype)
    got = nc.linear_recurrence_shfl(a, b, h0, reverse=reverse)
    assert_close(got, reference_recurrence(a, b, h0, reverse), dtype)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_kernels_at_full_size_on_gpu(rng, dtype):
    x = values(rng, 3_000_001, dtype)
    assert_close(nc.scan(x, block=2048), ref_scan(x), dtype)
    for padded in (False, True):
        y = values(rng, 2048, dtype)
        assert_close(nc.blelloch_block_scan(y, padded=padded), ref_scan(y), dtype)
    z = values(rng, 1024, dtype)
    assert_close(nc.hillis_steele_block_scan(z), ref_scan(z), dtype)
    a, b, h0 = recurrence_inputs(rng, 1 << 20, 7, dtype)
    for reverse in (False, True):
        got = sb.linear_recurrence(a, b, h0, reverse=reverse, backend="numba_cuda")
        assert_close(got, reference_recurrence(a, b, h0, reverse), dtype)

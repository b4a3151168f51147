"""The single-pass scan built in stages (``cuda/stages.cu``), each run and checked on its own.

Defined in chapter 4, which shows the stages one at a time: :func:`source` prints one,
:func:`run` runs the kernel up to it on a GPU through CuPy or on the emulated GPU of
:mod:`scanbook.kernels.emulated` (no GPU needed), and :func:`reference` computes in float64
NumPy what it must give. :func:`time_stage` times one with CUDA events where a GPU is present.
"""

from __future__ import annotations

import importlib.resources
import re

import numpy as np

from .cupy_plan import channel_group

#: the stages in the order the chapter builds them (``load`` and ``store`` are one test)
STAGES = ("load", "store", "reduce", "warp_scan", "block_scan", "lookback", "rescan", "scan")
#: what each test kernel runs up to (the ``upto`` argument of ``scan_tile``)
UPTO = {"load": 0, "reduce": 1, "warp_scan": 2, "block_scan": 3, "lookback": 4, "scan": 5}
BLOCK = 256  # ST_BLOCK: threads a tile
ITEMS = 8  # ST_ITEMS: time steps a thread


def source(stage: str | None = None) -> str:
    """The CUDA C of one stage (``None``: the whole file ``stages.cu``). Defined in chapter 4."""
    text = (importlib.resources.files("scanbook.kernels") / "cuda" / "stages.cu").read_text(
        encoding="utf-8"
    )
    if stage is None:
        return text
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}; got {stage!r}")
    pattern = rf"// ---- stage: {stage} ----\n(.*?)(?=\n// ---- stage: |\n// extern)"
    m = re.search(pattern, text, re.S)
    return m.group(1).rstrip() + "\n"


_MODULES: dict = {}


def _module(xp):
    key = xp.__name__
    if key not in _MODULES:
        if key == "cupy":
            _MODULES[key] = xp.RawModule(code=source(), options=("-std=c++17",))
        else:
            _MODULES[key] = xp.RawModule(code=source())
    return _MODULES[key]


def _check(a, b, h0):
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"a and b must be (T, C) of one shape; got {a.shape} and {b.shape}")
    if a.dtype not in (np.float32, np.float64) or b.dtype != a.dtype:
        raise TypeError(f"a and b must be float32 or float64 alike; got {a.dtype}, {b.dtype}")
    h0 = np.zeros(a.shape[1], a.dtype) if h0 is None else np.asarray(h0, a.dtype)
    if h0.shape != (a.shape[1],):
        raise ValueError(f"h0 must have shape ({a.shape[1]},); got {h0.shape}")
    return a, b, h0


def _shape(T: int, C: int):
    cg = channel_group(C)
    n_groups = -(-C // cg)
    n_tiles = n_groups * max(1, -(-T // ((BLOCK // cg) * ITEMS)))
    return cg, n_groups, n_tiles


def _launcher(stage: str, a, b, h0, xp):
    """The arguments and the kernel of one stage's test; returns ``(launch, outputs)``."""
    if stage not in UPTO:
        raise ValueError(f"stage must be one of {tuple(UPTO)}; got {stage!r}")
    a, b, h0 = _check(a, b, h0)
    T, C = a.shape
    cg, n_groups, n_tiles = _shape(T, C)
    suffix = "f32" if a.dtype == np.float32 else "f64"
    kernel = _module(xp).get_function(f"scan_{suffix}_cg{cg}")
    d_a, d_b, d_h0 = (xp.asarray(np.ascontiguousarray(x)) for x in (a, b, h0))
    if stage in ("load", "scan"):
        out, out2 = xp.empty((T, C), a.dtype), xp.empty(1, a.dtype)
    elif stage == "lookback":
        out, out2 = xp.empty(n_tiles * cg, a.dtype), xp.empty(1, a.dtype)
    else:
        out, out2 = (xp.empty(n_tiles * BLOCK, a.dtype) for _ in range(2))
    flags = xp.zeros(n_tiles + 1, np.int32)
    scratch = [xp.empty(n_tiles * cg, a.dtype) for _ in range(3)]
    counter = xp.zeros(1, np.uint32)

    def launch():
        flags[...] = 0
        counter[...] = 0
        args = (np.int32(UPTO[stage]), d_a, d_b, d_h0, out, out2, np.int64(T), np.int64(C),
                np.int64(n_groups), flags, *scratch, counter)  # fmt: skip
        kernel((n_tiles,), (BLOCK,), args)

    return launch, (out, out2)


def run(stage: str, a, b, h0=None, *, xp):
    """Run the test kernel of ``stage`` on ``(T, C)`` inputs; NumPy arrays as :func:`reference`.

    ``xp``: ``cupy`` (a GPU) or :mod:`scanbook.kernels.emulated`. Stages: ``"load"`` (load and
    store: a copy of ``b``), ``"reduce"``, ``"warp_scan"``, ``"block_scan"`` (a pair of
    arrays, one value a thread: ``(A, B)`` or the exclusive ``(xa, xb)``), ``"lookback"`` (the
    state entering every tile, ``(time tiles, channels)``), ``"scan"`` (``h``). Defined in
    chapter 4.
    """
    launch, (out, out2) = _launcher(stage, a, b, h0, xp)
    launch()
    T, C = np.shape(a)
    cg, n_groups, n_tiles = _shape(T, C)
    got, got2 = np.asarray(xp.asnumpy(out)), np.asarray(xp.asnumpy(out2))
    if stage in ("load", "scan"):
        return got
    if stage == "lookback":
        return got.reshape(n_tiles // n_groups, n_groups * cg)[:, :C]
    return got, got2


def time_stage(stage: str, a, b, h0=None, *, xp, repeat: int = 20) -> float:
    """Seconds one launch of ``stage``'s test kernel takes, by CUDA events (a GPU only): the
    median of ``repeat`` launches after a warm-up. Defined in chapter 4."""
    launch, _ = _launcher(stage, a, b, h0, xp)
    launch()
    times = []
    for _ in range(repeat):
        start, stop = xp.cuda.Event(), xp.cuda.Event()
        start.record()
        launch()
        stop.record()
        stop.synchronize()
        times.append(xp.cuda.get_elapsed_time(start, stop) / 1e3)
    return float(np.median(times))


# ----------------------------------------------------------------------------------------------
# the float64 references
# ----------------------------------------------------------------------------------------------


def _thread_maps(a, b):
    """Every thread's own ITEMS maps composed: ``(A, B)`` of shape (tiles, BLOCK)."""
    T, C = a.shape
    cg, n_groups, n_tiles = _shape(T, C)
    tile = np.arange(n_tiles)[:, None]
    tid = np.arange(BLOCK)[None, :]
    c = (tile % n_groups) * cg + tid % cg
    t_first = (tile // n_groups) * (BLOCK // cg) * ITEMS + (tid // cg) * ITEMS
    A = np.ones((n_tiles, BLOCK))
    B = np.zeros((n_tiles, BLOCK))
    for k in range(ITEMS):
        t = t_first + k
        ok = (t < T) & (c < C)
        ak = np.where(ok, a[np.minimum(t, T - 1), np.minimum(c, C - 1)], 1.0)
        bk = np.where(ok, b[np.minimum(t, T - 1), np.minimum(c, C - 1)], 0.0)
        A, B = ak * A, ak * B + bk
    return A, B


def _scan_segments(A, B, cg: int, width: int, exclusive: bool = False):
    """Scan the maps of segments ``width`` apart... per channel along the thread axis.

    ``A``, ``B``: (tiles, threads) with threads grouped in runs of ``width * cg`` (a warp or a
    tile) whose lanes ``cg`` apart are consecutive segments of one channel."""
    n, m = A.shape
    A = A.reshape(n, m // (width * cg), width, cg)
    B = B.reshape(n, m // (width * cg), width, cg)
    outA, outB = np.empty_like(A), np.empty_like(B)
    acc_a, acc_b = np.ones_like(A[:, :, 0]), np.zeros_like(B[:, :, 0])
    for s in range(width):
        if exclusive:
            outA[:, :, s], outB[:, :, s] = acc_a, acc_b
        acc_a, acc_b = A[:, :, s] * acc_a, A[:, :, s] * acc_b + B[:, :, s]
        if not exclusive:
            outA[:, :, s], outB[:, :, s] = acc_a, acc_b
    return outA.reshape(n, m), outB.reshape(n, m)


def reference(stage: str, a, b, h0=None):
    """What :func:`run` must give for ``stage``, computed in float64 NumPy. Defined in chapter 4."""
    if stage not in UPTO:
        raise ValueError(f"stage must be one of {tuple(UPTO)}; got {stage!r}")
    a, b, h0 = (x.astype(np.float64) for x in _check(a, b, h0))
    T, C = a.shape
    cg, n_groups, n_tiles = _shape(T, C)
    if stage == "load":
        return b.copy()
    h = np.empty((T, C))
    x = h0.copy()
    for t in range(T):
        x = a[t] * x + b[t]
        h[t] = x
    if stage == "scan":
        return h
    if stage == "lookback":
        L = (BLOCK // cg) * ITEMS
        starts = np.arange(n_tiles // n_groups) * L
        return np.stack([h0 if s == 0 else h[s - 1] for s in starts])
    A, B = _thread_maps(a, b)
    if stage == "reduce":
        return A.ravel(), B.ravel()
    if stage == "warp_scan":
        A, B = _scan_segments(A, B, cg, 32 // cg)
        return A.ravel(), B.ravel()
    A, B = _scan_segments(A, B, cg, BLOCK // cg, exclusive=True)
    return A.ravel(), B.ravel()


# ----------------------------------------------------------------------------------------------
# the CUDA C exercise: a warp's suffix scan, for the reverse direction
# ----------------------------------------------------------------------------------------------

#: what the reader replaces in :data:`SUFFIX_SCAN_TEMPLATE`
BLANK = "/* ____ your code ____ */"

#: a kernel with a blank: each warp scans its 32 elements from the last to the first
SUFFIX_SCAN_TEMPLATE = r"""
// Element i is the map x -> a[i] x + b[i], and time runs from high i to low: the reverse
// recurrence h[i] = a[i] h[i + 1] + b[i]. Each warp scans its own 32 elements (a block has
// whole warps; the last warp may be cut short by n): lane l of the answer holds the
// composition of elements l, l + 1, ..., up to the warp's last element below n, the highest
// applied first. (A_out[i], B_out[i]) for every i < n, and nothing written at i >= n.
extern "C" __global__ void warp_suffix_scan(const double* a, const double* b, double* A_out,
                                            double* B_out, long long n) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const int lane = threadIdx.x % 32;
    /* ____ your code ____ */
}
"""


def suffix_scan_reference(a, b):
    """What ``warp_suffix_scan`` of :data:`SUFFIX_SCAN_TEMPLATE` gives, in float64: every run of
    32 elements scanned from its end, the later element's map applied first. Defined in
    chapter 4."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    A, B = np.empty_like(a), np.empty_like(b)
    for start in range(0, a.size, 32):
        acc_a, acc_b = 1.0, 0.0
        for i in range(min(start + 32, a.size) - 1, start - 1, -1):
            acc_a, acc_b = a[i] * acc_a, a[i] * acc_b + b[i]
            A[i], B[i] = acc_a, acc_b
    return A, B


def excerpt(file: str, name: str) -> str:
    """One function of a kernel file, with the comment above it: what the chapter discusses,
    not the whole file. ``file``: ``"serial.cu"``, ``"three_phase.cu"``, ``"single_pass.cu"``
    or ``"stages.cu"``. Defined in chapter 4."""
    from .cupy_raw import sources

    files = {**sources(), "stages.cu": source()}
    if file not in files:
        raise ValueError(f"file must be one of {tuple(files)}; got {file!r}")
    lines = files[file].splitlines()
    head = re.compile(rf"^(__device__|__global__|template|extern|\w).*\b{re.escape(name)}\s*\(")
    try:
        i = next(k for k, ln in enumerate(lines) if head.match(ln) and not ln.startswith("//"))
    except StopIteration:
        raise ValueError(f"no function {name!r} in {file}") from None
    start = i - 1 if i and lines[i - 1].startswith("template") else i
    while start and lines[start - 1].startswith("//"):
        start -= 1
    end = next(k for k in range(i, len(lines)) if lines[k].startswith("}"))
    return "\n".join(lines[start : end + 1]) + "\n"


def lines(file: str, first: str, last: str) -> str:
    """The lines of a kernel file from the first that contains ``first`` to the next that
    contains ``last`` (for a piece of a longer function). Defined in chapter 4."""
    from .cupy_raw import sources

    text = {**sources(), "stages.cu": source()}[file].splitlines()
    try:
        i = next(k for k, ln in enumerate(text) if first in ln)
        j = next(k for k in range(i, len(text)) if last in text[k])
    except StopIteration:
        raise ValueError(f"no lines from {first!r} to {last!r} in {file}") from None
    body = text[i : j + 1]  # dedented (a #pragma keeps its column 0)
    indent = min(len(ln) - len(ln.lstrip()) for ln in body if ln.strip() and ln[0] != "#")
    return "\n".join(ln if ln.startswith("#") else ln[indent:] for ln in body) + "\n"

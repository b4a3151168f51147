"""Adversarial tests of the fused gradient kernel (``single_pass_vjp_*`` in ``single_pass.cu``).

Checked through the emulated GPU (``tests/fake_gpu.py``) against the float64 NumPy gradient:

* ``scanbook.kernels.cupy_raw.linear_recurrence_vjp`` and the ``cupy`` backend of
  ``scanbook.linear_recurrence_vjp`` on shapes around the kernel's segment, warp and tile sizes,
  every channel group, both directions, with and without ``h0``, float32 and float64;
* the float4/double2 path for ``C == 1``: a spy on every launch checks that the host only asks
  for vector loads when all five pointers (a, g, h, db, da) are 16-byte aligned and, in the
  reverse direction, ``T`` is a multiple of the vector width (the emulation would not fault on
  a misaligned vector load; a GPU would);
* NaN in ``g``, ``h``, ``a``, ``h0``: NaN exactly where the loop has NaN;
* batch shapes, non-contiguous and misaligned inputs, empty shapes, bad arguments;
* a separate harness runs the kernel's entry points (real block size and ITEMS) under
  AddressSanitizer on the concurrent emulation (blocks side by side, stalls and delays before
  every flag), with the scratch poisoned with NaN: out-of-bounds *reads* (which guard bytes
  cannot see) and reads of a state that was never published both fail.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import scanbook as sb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scanbook.kernels import cupy_raw as cr

TOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-12}
DTYPES = (np.float32, np.float64)
HYP = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def geometry(C: int, dtype) -> dict:
    """The kernel's sizes in time: a thread's segment, a warp's span, a tile."""
    cg = cr.channel_group(C)
    items = cr.single_pass_items(dtype)
    return {
        "cg": cg,
        "items": items,
        "warp": (32 // cg) * items,
        "tile": (cr.SINGLE_PASS_BLOCK // cg) * items,
        "groups": -(-C // cg),
    }


def make(rng, T, C, dtype, reverse, batch=None):
    """a, b, h0, h (the forward states, computed in float64, then rounded), g."""
    shape = (T, C) if batch is None else (T, *batch)
    a = rng.uniform(0.5, 1.0, shape) * rng.choice([-1.0, 1.0], shape)
    b = rng.standard_normal(shape)
    h0 = rng.standard_normal(shape[1:])
    g = rng.standard_normal(shape)
    h = sb.linear_recurrence(a, b, h0, reverse=reverse, backend="numpy")
    return tuple(np.ascontiguousarray(x, dtype=dtype) for x in (a, b, h0, h, g))


def reference(a, b, h0, h, g, reverse):
    """The float64 NumPy gradient of the same (rounded) inputs."""
    f64 = [None if x is None else np.asarray(x, np.float64) for x in (a, b, h0, h, g)]
    return sb.linear_recurrence_vjp(*f64, reverse=reverse, backend="numpy")


def compare(got, want, dtype, what=""):
    """``max|x - w| / (1 + |w|) <= tol``, and NaN exactly where the reference has NaN."""
    tol = TOL[np.dtype(dtype)]
    for name, x, w in zip(("da", "db", "dh0"), got, want, strict=True):
        x = np.asarray(x)
        assert x.shape == np.shape(w), (what, name, x.shape, np.shape(w))
        assert x.dtype == np.dtype(dtype), (what, name, x.dtype)
        x = x.astype(np.float64)
        nan_x, nan_w = np.isnan(x), np.isnan(w)
        if not np.array_equal(nan_x, nan_w):
            extra = np.argwhere(nan_x & ~nan_w)[:5].tolist()
            missing = np.argwhere(nan_w & ~nan_x)[:5].tolist()
            raise AssertionError(f"{what} {name}: NaN where finite {extra}; finite where NaN "
                                 f"{missing}")  # fmt: skip
        ok = ~nan_w
        if ok.any():
            err = np.abs(x[ok] - w[ok]) / (1 + np.abs(w[ok]))
            worst = float(err.max())
            where = np.argwhere(ok)[int(err.argmax())].tolist()
            assert worst <= tol, f"{what} {name}: rel. error {worst:.3g} at {where}"


def run_low(fg, a, b, h0, h, g, reverse):
    d = [None if x is None else fg.asarray(x) for x in (a, b, h0, h, g)]
    out = cr.linear_recurrence_vjp(*d, reverse=reverse)
    assert all(isinstance(x, fg.ndarray) for x in out)
    return [fg.asnumpy(x) for x in out]


@pytest.fixture
def launches(fake_gpu, monkeypatch):
    """Every launch of the emulated GPU, recorded; vector loads checked against the pointers."""
    seen = []
    call = fake_gpu._Function.__call__

    def spy(self, grid, block, args, *rest, **kw):
        seen.append((self.name, grid, block, args))
        if self.name.startswith("single_pass_vjp_"):
            a, g, h0, hf, db, da, T, C, n_groups, rev, vec_ok = args[:11]
            vn = 16 // a.itemsize
            if int(vec_ok):
                assert int(C) == 1, "vector loads with C > 1"
                ptrs = {
                    n: x.data.ptr
                    for n, x in zip("a g hf db da".split(), (a, g, hf, db, da), strict=True)
                }
                bad = {n: p % 16 for n, p in ptrs.items() if p % 16}
                assert not bad, f"vec_ok=1 with misaligned pointers {bad}"
                assert not int(rev) or int(T) % vn == 0, "reverse vector loads, T % VN != 0"
            cg = int(self.name.rsplit("_cg", 1)[1])
            assert cg == cr.channel_group(int(C)), (self.name, C)
            items = cr.single_pass_items(a.dtype)
            tiles = -(-int(C) // cg) * -(-int(T) // (cr.SINGLE_PASS_BLOCK // cg * items))
            assert tuple(grid) == (tiles,) and tuple(block) == (cr.SINGLE_PASS_BLOCK,)
            assert int(n_groups) == -(-int(C) // cg)
        return call(self, grid, block, args, *rest, **kw)

    monkeypatch.setattr(fake_gpu._Function, "__call__", spy)
    return seen


# ----------------------------------------------------------------------------------------------
# random shapes around the kernel's boundaries
# ----------------------------------------------------------------------------------------------

CHANNELS = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 70]


@st.composite
def problems(draw):
    dtype = draw(st.sampled_from(DTYPES))
    C = draw(st.sampled_from(CHANNELS) | st.integers(1, 70))
    geo = geometry(C, dtype)
    unit = draw(st.sampled_from(["items", "warp", "tile", "tile", "any"]))
    max_tiles = 12 // geo["groups"] + 1  # keep the emulated launch to about a dozen blocks
    max_T = max(1, min(max_tiles * geo["tile"], 20_000 // C))
    if unit == "any":
        T = draw(st.integers(1, max_T))
    else:
        k = draw(st.integers(0, max(1, max_T // geo[unit])))
        T = k * geo[unit] + draw(st.integers(-2, 2))
    T = int(min(max(T, 1), max_T))
    reverse = draw(st.booleans())
    with_h0 = draw(st.booleans())
    api = draw(st.sampled_from(["low", "public"]))
    seed = draw(st.integers(0, 2**32 - 1))
    return dtype, T, C, reverse, with_h0, api, seed


@HYP
@given(problem=problems())
def test_random_shapes_match_the_float64_gradient(fake_gpu, launches, problem):
    dtype, T, C, reverse, with_h0, api, seed = problem
    launches.clear()
    rng = np.random.default_rng(seed)
    a, b, h0, h, g = make(rng, T, C, dtype, reverse)
    if not with_h0:  # h recomputed from zeros so that (a, b, None, h) is consistent
        h0 = None
        h = sb.linear_recurrence(
            a.astype(np.float64), b.astype(np.float64), reverse=reverse, backend="numpy"
        ).astype(dtype)
    want = reference(a, b, h0, h, g, reverse)
    d = [None if x is None else fake_gpu.asarray(x) for x in (a, b, h0, h, g)]
    if api == "low":
        got = cr.linear_recurrence_vjp(*d, reverse=reverse)
    else:
        got = sb.linear_recurrence_vjp(*d, reverse=reverse, backend="cupy")
    compare([fake_gpu.asnumpy(x) for x in got], want, dtype, what=problem)
    for x, y in zip(d, (a, b, h0, h, g), strict=True):  # the kernel writes no input
        assert x is None or np.array_equal(fake_gpu.asnumpy(x), y)
    assert [n for n, *_ in launches] == [f"single_pass_vjp_{cr._SUFFIX[np.dtype(dtype)]}"
                                         f"_cg{cr.channel_group(C)}"]  # fmt: skip


# ----------------------------------------------------------------------------------------------
# C == 1: the vector path, aligned and not, both directions
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_single_channel_vector_path_both_directions(fake_gpu, launches, dtype):
    rng = np.random.default_rng(1)
    geo = geometry(1, dtype)
    vn = 16 // np.dtype(dtype).itemsize
    L, S = geo["tile"], geo["items"]
    for T in (1, vn - 1, vn, S - 1, S, S + 1, geo["warp"] + 1, L - 1, L, L + 1, L + vn, 2 * L - 3):
        for reverse in (False, True):
            a, b, h0, h, g = make(rng, T, 1, dtype, reverse)
            got = run_low(fake_gpu, a, b, h0, h, g, reverse)
            compare(got, reference(a, b, h0, h, g, reverse), dtype, what=(T, reverse))
            vec_ok = int(launches[-1][3][10])
            # the gradient runs opposite to the forward pass: reverse in memory unless reverse
            want_vec = reverse or T % vn == 0
            assert vec_ok == int(want_vec), (T, reverse, vec_ok)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("which", ["a", "g", "h", "all"])
def test_single_channel_misaligned_views(fake_gpu, launches, dtype, which):
    """Contiguous (T, 1) views that start 1 .. VN elements into an allocation."""
    rng = np.random.default_rng(2)
    vn = 16 // np.dtype(dtype).itemsize
    L = geometry(1, dtype)["tile"]
    for T, off in ((L + 5, 1), (L, vn - 1), (2 * L + vn, vn), (37, 1), (L - vn, vn // 2)):
        for reverse in (False, True):
            a, b, h0, h, g = make(rng, T, 1, dtype, reverse)
            d = {k: fake_gpu.asarray(v) for k, v in dict(a=a, b=b, h0=h0, h=h, g=g).items()}
            for name in ("a", "g", "h") if which == "all" else (which,):
                big = fake_gpu.zeros((T + off, 1), dtype)
                big[off:] = d[name]
                d[name] = big[off:]
                assert d[name].flags.c_contiguous
            got = cr.linear_recurrence_vjp(d["a"], d["b"], d["h0"], d["h"], d["g"], reverse=reverse)
            got = [fake_gpu.asnumpy(x) for x in got]
            compare(got, reference(a, b, h0, h, g, reverse), dtype, what=(which, T, off, reverse))
            aligned = off % vn == 0
            assert int(launches[-1][3][10]) == int(aligned and (reverse or T % vn == 0))


# ----------------------------------------------------------------------------------------------
# NaN in, NaN out (exactly where the loop puts it)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("where", ["g", "h", "a", "h0"])
def test_nan_propagates_as_in_the_loop(fake_gpu, dtype, where):
    rng = np.random.default_rng(3)
    for T, C in ((1, 1), (5, 1), (geometry(1, dtype)["tile"] + 7, 1), (300, 3), (150, 33)):
        L = geometry(C, dtype)["tile"]
        for reverse in (False, True):
            # positions: the first and last steps, a tile boundary, random ones
            spots = {0, T - 1, min(T - 1, L - 1), min(T - 1, L), int(rng.integers(T))}
            for t in sorted(spots):
                c = int(rng.integers(C))
                a, b, h0, h, g = make(rng, T, C, dtype, reverse)
                arr = dict(a=a, h=h, g=g, h0=h0)[where]
                if where == "h0":
                    arr[c] = np.nan
                else:
                    arr[t, c] = np.nan
                got = run_low(fake_gpu, a, b, h0, h, g, reverse)
                compare(got, reference(a, b, h0, h, g, reverse), dtype, (where, T, C, t, reverse))


# ----------------------------------------------------------------------------------------------
# the public backend: batch shapes, layouts, empty shapes
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_public_backend_batch_shapes_and_layouts(fake_gpu, dtype):
    rng = np.random.default_rng(4)
    for T in (1, 7, geometry(6, dtype)["tile"] + 1):
        for reverse in (False, True):
            for with_h0 in (False, True):
                a, b, h0, h, g = make(rng, T, None, dtype, reverse, batch=(2, 3))
                if not with_h0:
                    h0 = None
                    h = sb.linear_recurrence(a, b, reverse=reverse, backend="numpy")
                want = reference(a, b, h0, h, g, reverse)
                d = [None if x is None else fake_gpu.asarray(x) for x in (a, b, h0, h, g)]
                got = sb.linear_recurrence_vjp(*d, reverse=reverse, backend="cupy")
                assert [x.shape for x in got] == [(T, 2, 3), (T, 2, 3), (2, 3)]
                compare([fake_gpu.asnumpy(x) for x in got], want, dtype, (T, reverse, with_h0))

                # non-contiguous: every second step of a longer array, channels transposed
                # (Fortran order), and a (2, 3) h0 taken from a (3, 2) array
                def strided(x):
                    big = fake_gpu.zeros((2 * x.shape[0], 3, 2), dtype)
                    big[::2] = np.swapaxes(x, 1, 2)
                    return np.swapaxes(big[::2], 1, 2)

                ds = [strided(x) for x in (a, b, h, g)]
                assert not any(x.flags.c_contiguous for x in ds)
                hs = None if h0 is None else fake_gpu.asarray(np.ascontiguousarray(h0.T)).T
                got = sb.linear_recurrence_vjp(ds[0], ds[1], hs, ds[2], ds[3], reverse=reverse,
                                               backend="cupy")  # fmt: skip
                compare([fake_gpu.asnumpy(x) for x in got], want, dtype, ("strided", T, reverse))


def test_low_level_non_contiguous_and_fortran(fake_gpu):
    rng = np.random.default_rng(5)
    for dtype in DTYPES:
        for reverse in (False, True):
            a, b, h0, h, g = make(rng, 2 * 301, 2 * 9, dtype, reverse)
            sl = (slice(None, None, 2), slice(None, None, 2))
            a, b, h, g = (np.ascontiguousarray(x[sl]) for x in (a, b, h, g))
            h0 = np.ascontiguousarray(h0[::2])
            want = reference(a, b, h0, h, g, reverse)
            fa = fake_gpu.asfortranarray(fake_gpu.asarray(a))
            fg_ = fake_gpu.asarray(np.concatenate([g, g], axis=1))[:, ::2]  # odd columns again
            fg_[...] = g
            fh0 = fake_gpu.asarray(np.repeat(h0, 2))[::2]
            assert not (fa.flags.c_contiguous or fg_.flags.c_contiguous or fh0.flags.c_contiguous)
            got = cr.linear_recurrence_vjp(fa, fake_gpu.asarray(b), fh0, fake_gpu.asarray(h), fg_,
                                           reverse=reverse)  # fmt: skip
            compare([fake_gpu.asnumpy(x) for x in got], want, dtype, ("layouts", reverse))


def test_empty_shapes(fake_gpu):
    for dtype in DTYPES:
        for T, C in ((0, 3), (4, 0), (0, 0)):
            z = fake_gpu.zeros((T, C), dtype)
            da, db, dh0 = cr.linear_recurrence_vjp(z, z, None, z, z)
            assert da.shape == db.shape == (T, C) and dh0.shape == (C,)
            assert not np.asarray(dh0).any()
        z = fake_gpu.zeros((0, 2, 3), dtype)
        out = sb.linear_recurrence_vjp(z, z, None, z, z, backend="cupy")
        assert [x.shape for x in out] == [(0, 2, 3), (0, 2, 3), (2, 3)]
        z = fake_gpu.zeros((5, 0, 3), dtype)
        out = sb.linear_recurrence_vjp(z, z, None, z, z, backend="cupy")
        assert [x.shape for x in out] == [(5, 0, 3), (5, 0, 3), (0, 3)]


def test_reverse_may_be_a_numpy_bool(fake_gpu):
    rng = np.random.default_rng(6)
    a, b, h0, h, g = make(rng, 40, 3, np.float64, True)
    got = run_low(fake_gpu, a, b, h0, h, g, np.True_)
    compare(got, reference(a, b, h0, h, g, True), np.float64)


# ----------------------------------------------------------------------------------------------
# bad arguments: clear errors naming the argument
# ----------------------------------------------------------------------------------------------


def test_bad_arguments_low_level(fake_gpu):
    rng = np.random.default_rng(7)
    host = dict(zip("a b h0 h g".split(), make(rng, 9, 4, np.float32, False), strict=True))
    dev = {k: fake_gpu.asarray(v) for k, v in host.items()}
    vjp = cr.linear_recurrence_vjp
    order = ("a", "b", "h0", "h", "g")
    for name in order:  # a NumPy host array in any position
        args = [host[k] if k == name else dev[k] for k in order]
        with pytest.raises(TypeError, match=rf"\b{name} must be a CuPy array"):
            vjp(*args)
    for name in ("a", "b", "h", "g"):  # lists, ints
        args = [[[1.0]] if k == name else dev[k] for k in order]
        with pytest.raises(TypeError, match=rf"\b{name}\b"):
            vjp(*args)
    for name in ("b", "h", "g"):  # wrong shape, wrong dtype
        args = [dev[k][:-1] if k == name else dev[k] for k in order]
        with pytest.raises(ValueError, match=rf"\b{name} must have the shape"):
            vjp(*args)
        args = [dev[k].astype(np.float64) if k == name else dev[k] for k in order]
        with pytest.raises(TypeError, match=rf"\b{name} must have the dtype of a, float32"):
            vjp(*args)
        args = [dev[k].astype(np.int32) if k == name else dev[k] for k in order]
        with pytest.raises(TypeError, match=rf"\b{name}\b"):
            vjp(*args)
    with pytest.raises(TypeError, match=r"\bh0\b"):
        vjp(dev["a"], dev["b"], host["h0"], dev["h"], dev["g"])
    with pytest.raises(ValueError, match=r"h0 must have shape \(4,\)"):
        vjp(dev["a"], dev["b"], dev["h0"][:3], dev["h"], dev["g"])
    with pytest.raises(ValueError, match=r"h0 .*float32"):
        vjp(dev["a"], dev["b"], dev["h0"].astype(np.float64), dev["h"], dev["g"])
    for rev in (1, 0, "yes", None, 1.0):
        with pytest.raises(TypeError, match="reverse"):
            vjp(*(dev[k] for k in order), reverse=rev)
    with pytest.raises(ValueError, match=r"a must have shape \(T, C\)"):
        vjp(*(dev[k][:, 0] if k != "h0" else dev[k] for k in order))
    # b does not enter the gradient: None is accepted and changes nothing
    with_b = vjp(*(dev[k] for k in order))
    without_b = vjp(dev["a"], None, dev["h0"], dev["h"], dev["g"])
    for x, y in zip(with_b, without_b, strict=True):
        assert np.array_equal(fake_gpu.asnumpy(x), fake_gpu.asnumpy(y))
    with pytest.raises(TypeError, match=r"\ba\b"):
        vjp(*(dev[k].astype(np.float16) if k != "h0" else dev[k] for k in order))


def test_bad_arguments_public_backend(fake_gpu):
    rng = np.random.default_rng(8)
    host = make(rng, 9, None, np.float64, False, batch=(2, 3))
    dev = [fake_gpu.asarray(x) for x in host]
    vjp = sb.linear_recurrence_vjp
    with pytest.raises(TypeError, match="cupy"):
        vjp(*host, backend="cupy")
    with pytest.raises(TypeError, match=r"\bh\b"):
        vjp(dev[0], dev[1], dev[2], host[3], dev[4], backend="cupy")
    with pytest.raises(TypeError, match=r"\bg\b"):
        vjp(dev[0], dev[1], dev[2], dev[3], host[4], backend="cupy")
    with pytest.raises(ValueError, match=r"\bg must have the shape"):
        vjp(dev[0], dev[1], dev[2], dev[3], dev[4][:, :1], backend="cupy")
    with pytest.raises(TypeError, match=r"\bh must have the dtype"):
        vjp(dev[0], dev[1], dev[2], dev[3].astype(np.float32), dev[4], backend="cupy")
    with pytest.raises(ValueError, match=r"\bh0\b"):
        vjp(dev[0], dev[1], dev[2][:1], dev[3], dev[4], backend="cupy")
    with pytest.raises(TypeError, match="reverse"):
        vjp(*dev, reverse=1, backend="cupy")
    with pytest.raises(TypeError, match=r"complex|float"):
        c = [x.astype(np.complex128) for x in dev]
        vjp(*c, backend="cupy")


# ----------------------------------------------------------------------------------------------
# the entry points under AddressSanitizer, with look-back windows and poisoned states
# ----------------------------------------------------------------------------------------------

HARNESS = r"""
// argv: dir dtype(f|d) CG T C reverse(forward pass) seed offset(elements) lookback(0|1)
// Reads dir/{a,g,hf,h0}.bin, runs single_pass_vjp_<dtype>_cg<CG> on the emulation, writes
// dir/{db,da}.bin. Every array is its own exact-size heap block (ASan sees any read past it),
// starting `offset` elements into the block. With lookback, 8 blocks run at once, stall at
// random and delay their flags (cuda_emu.h), so tiles wait for and combine their predecessors;
// the scratch starts as NaN, so a value read before it was published shows.
#include "cuda_emu.h"
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include "single_pass.cu"

template <class T>
T* load(const std::string& path, long long n, long long off) {
    T* base = new T[n + off];
    std::ifstream f(path, std::ios::binary);
    f.read(reinterpret_cast<char*>(base + off), n * sizeof(T));
    if (!f) { std::fprintf(stderr, "short read %s\n", path.c_str()); std::exit(3); }
    return base + off;
}

template <class T>
int run(int argc, char** argv) {
    std::string dir = argv[1];
    int CG = std::atoi(argv[3]);
    long long n = std::atoll(argv[4]), C = std::atoll(argv[5]);
    int fwd_reverse = std::atoi(argv[6]);
    unsigned seed = std::atoi(argv[7]);
    long long off = std::atoll(argv[8]);
    int lookback = std::atoi(argv[9]);
    int items = sizeof(T) == 4 ? 16 : 8;
    long long L = (SP_BLOCK / CG) * items, n_groups = (C + CG - 1) / CG;
    long long n_tiles = n_groups * ((n + L - 1) / L);
    T* a = load<T>(dir + "/a.bin", n * C, off);
    T* g = load<T>(dir + "/g.bin", n * C, off);
    T* hf = load<T>(dir + "/hf.bin", n * C, off);
    T* h0 = load<T>(dir + "/h0.bin", C, 0);
    T* db = new T[n * C + off] + off;
    T* da = new T[n * C + off] + off;
    for (long long i = 0; i < n * C; ++i) db[i] = da[i] = NAN;
    int* flags = new int[n_tiles + 1]();
    T* agg_a = new T[n_tiles * CG];
    T* agg_b = new T[n_tiles * CG];
    T* inc_h = new T[n_tiles * CG];
    for (long long i = 0; i < n_tiles * CG; ++i) agg_a[i] = agg_b[i] = inc_h[i] = NAN;
    unsigned* counter = reinterpret_cast<unsigned*>(flags + n_tiles);
    int krev = !fwd_reverse, vn = 16 / sizeof(T);
    auto al = [](const void* p) { return (uintptr_t)p % 16 == 0; };
    int vec_ok = C == 1 && al(a) && al(g) && al(hf) && al(db) && al(da) && (!krev || n % vn == 0);
    emu_config.seed = seed;
    emu_config.resident = lookback ? 8 : 1;
    emu_config.stall_us = lookback ? 3000 : 0;
    emu_config.jitter_us = lookback ? 300 : 0;
    using K = void (*)(const T*, const T*, const T*, const T*, T*, T*, long long, long long,
                       long long, int, int, int*, T*, T*, T*, unsigned*);
    K k = nullptr;
    if constexpr (sizeof(T) == 4) {
        switch (CG) {
            case 1: k = single_pass_vjp_f32_cg1; break;
            case 2: k = single_pass_vjp_f32_cg2; break;
            case 4: k = single_pass_vjp_f32_cg4; break;
            case 8: k = single_pass_vjp_f32_cg8; break;
            case 16: k = single_pass_vjp_f32_cg16; break;
            case 32: k = single_pass_vjp_f32_cg32; break;
        }
    } else {
        switch (CG) {
            case 1: k = single_pass_vjp_f64_cg1; break;
            case 2: k = single_pass_vjp_f64_cg2; break;
            case 4: k = single_pass_vjp_f64_cg4; break;
            case 8: k = single_pass_vjp_f64_cg8; break;
            case 16: k = single_pass_vjp_f64_cg16; break;
            case 32: k = single_pass_vjp_f64_cg32; break;
        }
    }
    if (!k) return 4;
    launch(n_tiles, SP_BLOCK, [&] {
        k(a, g, h0, hf, db, da, n, C, n_groups, krev, vec_ok, flags, agg_a, agg_b, inc_h,
          counter);
    });
    std::ofstream(dir + "/db.bin", std::ios::binary)
        .write(reinterpret_cast<char*>(db), n * C * sizeof(T));
    std::ofstream(dir + "/da.bin", std::ios::binary)
        .write(reinterpret_cast<char*>(da), n * C * sizeof(T));
    std::printf("%d\n", vec_ok);
    return 0;
}

int main(int argc, char** argv) {
    if (argc != 10) return 2;
    return argv[2][0] == 'f' ? run<float>(argc, argv) : run<double>(argc, argv);
}
"""


@pytest.fixture(scope="module")
def harness():
    if shutil.which("g++") is None:
        pytest.skip("needs g++")
    import fake_gpu

    src = fake_gpu.emulate_source(cr.sources()["single_pass.cu"])
    header = (Path(__file__).parent / "emulation" / "cuda_emu.h").read_text()
    key = hashlib.sha256((HARNESS + src + header).encode()).hexdigest()[:16]
    d = Path(tempfile.gettempdir()) / "scanbook-review-vjp" / key
    exe = d / "harness"
    if not exe.exists():
        d.mkdir(parents=True, exist_ok=True)
        (d / "single_pass.cu").write_text(src)
        (d / "cuda_emu.h").write_text(header)
        (d / "harness.cpp").write_text(HARNESS)
        base = ["g++", "-O1", "-g", "-std=c++20", "-pthread", "-w", f"-I{d}", "-DSP_BLOCK=256"]
        tmp = d / f"harness.{os.getpid()}.tmp"
        out = subprocess.run([*base, "-fsanitize=address", str(d / "harness.cpp"), "-o", str(tmp)],
                             capture_output=True, text=True)  # fmt: skip
        if out.returncode:  # no libasan: still run, without the out-of-bounds read check
            out = subprocess.run([*base, str(d / "harness.cpp"), "-o", str(tmp)],
                                 capture_output=True, text=True)  # fmt: skip
        assert out.returncode == 0, out.stderr[-3000:]
        tmp.replace(exe)
    return exe


def run_harness(exe, tmp_path, a, h0, hf, g, reverse, *, offset=0, lookback=1, seed=0):
    T, C = a.shape
    dtype = a.dtype
    for name, x in (("a", a), ("g", g), ("hf", hf), ("h0", h0)):
        np.ascontiguousarray(x, dtype).tofile(tmp_path / f"{name}.bin")
    cg = cr.channel_group(C)
    cmd = [str(exe), str(tmp_path), "f" if dtype == np.float32 else "d", str(cg), str(T), str(C),
           str(int(reverse)), str(seed), str(offset), str(lookback)]  # fmt: skip
    env = {"ASAN_OPTIONS": "detect_leaks=0"}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, (cmd, out.stderr[:4000])
    db = np.fromfile(tmp_path / "db.bin", dtype).reshape(T, C)
    da = np.fromfile(tmp_path / "da.bin", dtype).reshape(T, C)
    return da, db, int(out.stdout.strip())


@pytest.mark.parametrize("dtype", DTYPES)
def test_entry_points_under_asan_with_lookback_windows(harness, tmp_path, dtype):
    rng = np.random.default_rng(9)
    cases = []
    for C in (1, 2, 3, 5, 8, 9, 17, 33, 64):
        geo = geometry(C, dtype)
        # an exact number of tiles; a few steps more or less; T + 1 at a warp's first step
        # (where the decay is read from memory); for WIN = 1, 2: long walks back
        Ts = [
            3 * geo["tile"],
            2 * geo["tile"] + int(rng.choice([-3, -1, 1, 2])),
            3 * geo["warp"] - 1,
        ]
        if geo["cg"] >= 16:
            Ts.append(min(12 * geo["tile"] - 1, 40_000 // C))
        cases += [(T, C) for T in Ts]
    cases += [(1, 1), (2, 1), (1, 70), (17, 70)]
    vn = 16 // np.dtype(dtype).itemsize
    for i, (T, C) in enumerate(cases):
        reverse = bool(i % 2)
        a, b, h0, h, g = make(rng, T, C, dtype, reverse)
        want = reference(a, b, h0, h, g, reverse)
        offsets = (0, 1) if C == 1 else (0,)
        for off in offsets:
            da, db, vec_ok = run_harness(harness, tmp_path, a, h0, h, g, reverse, offset=off,
                                         seed=i)  # fmt: skip
            if C == 1:
                assert vec_ok == int(off % vn == 0 and (reverse or T % vn == 0)), (T, off)
            dh0 = a[T - 1 if reverse else 0] * db[T - 1 if reverse else 0]
            compare((da, db, dh0), want, dtype, what=(T, C, reverse, off))

"""Chapter 4: the CUDA C kernels (compiled on the CPU with NVRTC), their NumPy twins, and on a
GPU (``@pytest.mark.gpu``, run by ``make gpu-check``) the kernels themselves."""

import shutil
import subprocess

import numpy as np
import pytest
import scanbook as sb
from conftest import reference_recurrence
from hypothesis import given
from hypothesis import strategies as st
from scanbook.kernels import cupy_raw as cr

LENGTHS = (1, 2, 31, 32, 33, 1000, 4099)
CHANNELS = (1, 3, 64)


def inputs(rng, T, C, dtype=np.float64):
    """Decays of both signs with |a| in [0.5, 1), impulses and h0 standard normal: never zero."""
    a = rng.uniform(0.5, 1.0, (T, C)) * rng.choice([-1.0, 1.0], (T, C))
    b = rng.standard_normal((T, C))
    b[b == 0] = 0.5
    h0 = rng.standard_normal(C)
    return a.astype(dtype), b.astype(dtype), h0.astype(dtype)


# ---------------------------------------------------------------------------------------------
# the sources compile (no GPU needed)
# ---------------------------------------------------------------------------------------------

ENTRIES = {
    "serial.cu": ["serial_f32", "serial_f64", "stream_add_f32", "stream_add_f64"],
    "three_phase.cu": [
        f"three_phase_{phase}_{sfx}"
        for phase in ("reduce", "block_scan", "downsweep")
        for sfx in ("f32", "f64")
    ],
    "single_pass.cu": [
        f"single_pass{vjp}_{sfx}_cg{cg}"
        for vjp in ("", "_vjp")
        for sfx in ("f32", "f64")
        for cg in (1, 2, 4, 8, 16, 32)
    ],
}


@pytest.fixture(scope="module")
def ptx_sm90():
    return cr.compile_check("sm_90")


def test_sources_are_the_kernel_files():
    src = cr.sources()
    assert tuple(src) == cr.KERNEL_FILES
    for name, text in src.items():
        assert "#include" not in text, f"{name} must compile with NVRTC without headers"


def test_every_file_compiles_with_nvrtc_for_sm90_float_and_double(ptx_sm90):
    assert set(ptx_sm90) == set(cr.KERNEL_FILES)
    for name, ptx in ptx_sm90.items():
        assert ".target sm_90" in ptx
        stats = cr.ptx_stats(ptx)
        assert sorted(stats) == sorted(ENTRIES[name]), name
        assert all(s["instructions"] > 10 for s in stats.values())


def test_register_arrays_stay_in_registers(ptx_sm90):
    # a run-time index into the per-thread arrays would put them in local memory
    for name, ptx in ptx_sm90.items():
        assert "ld.local" not in ptx and "st.local" not in ptx, name


def test_single_pass_uses_shuffles_vector_loads_and_atomics(ptx_sm90):
    stats = cr.ptx_stats(ptx_sm90["single_pass.cu"])
    assert stats["single_pass_f32_cg1"]["shfl"] > 0
    assert stats["single_pass_f32_cg1"]["atom"] >= 1  # the tile counter and the flags
    assert "ld.global.nc.v4.f32" in ptx_sm90["single_pass.cu"]  # float4 loads for C == 1
    assert "ld.global.nc.v2.f64" in ptx_sm90["single_pass.cu"]  # double2 loads
    # the fused gradient: vector loads of a, g and h, vector stores of db and da
    body = ptx_sm90["single_pass.cu"].split(".entry single_pass_vjp_f32_cg1(")[1]
    body = body.split(".entry")[0]
    assert body.count("ld.global.nc.v4.f32") >= 12 and body.count("st.global.v4.f32") >= 8


def test_compiles_for_older_gpus_too():
    # Colab's T4 is sm_75; the kernels use nothing newer (__nanosleep needs sm_70)
    ptx = cr.compile_check("sm_75")
    assert all(".target sm_75" in p for p in ptx.values())


def test_compile_errors_carry_the_log(monkeypatch):
    monkeypatch.setattr(cr, "sources", lambda: {"broken.cu": "__global__ void k() { x = 1; }"})
    with pytest.raises(RuntimeError, match="broken.cu"):
        cr.compile_check()
    with pytest.raises(ValueError, match="arch"):
        cr.compile_check("hopper")


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed here")
def test_every_file_compiles_with_nvcc(tmp_path):
    for name, text in cr.sources().items():
        src = tmp_path / name
        src.write_text(text)
        out = subprocess.run(
            ["nvcc", "--ptx", "-arch=sm_90", "-std=c++17", str(src), "-o", str(tmp_path / "o.ptx")],
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stderr


# ---------------------------------------------------------------------------------------------
# the decompositions (shared by twins and host code)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("T", (0, 1, 7, 32, 1000, 4099))
@pytest.mark.parametrize("n_blocks,warps", [(1, 1), (3, 4), (7, 32), (264, 32)])
def test_three_phase_slices_tile_time(T, n_blocks, warps):
    slices = cr.three_phase_slices(T, n_blocks, warps)
    flat = [r for blk in slices for r in blk]
    assert flat[0][0] == 0 and flat[-1][1] == T
    assert all(r0[1] == r1[0] for r0, r1 in zip(flat, flat[1:], strict=False))
    sizes = [e - s for s, e in flat]
    assert min(sizes) >= 0
    # divide_work of the .cu file: blocks and warps differ by at most one step, larger first
    assert len(slices) == n_blocks and all(len(blk) == warps for blk in slices)
    assert max(sizes) - min(sizes) <= 1
    per_block = [blk[-1][1] - blk[0][0] for blk in slices]
    assert per_block == sorted(per_block, reverse=True) and max(per_block) - min(per_block) <= 1


def test_channel_group_and_choice():
    assert [cr.channel_group(c) for c in (1, 2, 3, 5, 31, 32, 33, 4096)] == [
        1, 2, 4, 8, 32, 32, 32, 32
    ]  # fmt: skip
    assert cr.choose_method(1 << 26, 1, n_sm=132) == "single_pass"
    assert cr.choose_method(1 << 20, 64, n_sm=132) == "single_pass"
    assert cr.choose_method(64, 1 << 20, n_sm=132) == "serial"
    assert cr.three_phase_blocks(16, 132) == 1
    assert cr.three_phase_blocks(1 << 20, 132) == 264
    # the scratch (two maps a warp and a block, per channel) stays a small part of the input
    for T in (1, 31, 32, 1000, 8448, 8449, 65536, 1 << 20, 1 << 26):
        nb = cr.three_phase_blocks(T, 132)
        W = cr.three_phase_warps(T, nb)
        assert 1 <= W <= 32 and (W == 1 or T // (nb * W) >= 32), (T, nb, W)
        assert 2 * nb * (W + 1) <= max(4, T / 4), (T, nb, W)
    assert cr.three_phase_warps(1 << 20, 264) == 32


# ---------------------------------------------------------------------------------------------
# the NumPy twins against the float64 serial reference
# ---------------------------------------------------------------------------------------------

THREE_PHASE_CONFIGS = [
    dict(n_blocks=1, warps=1),
    dict(n_blocks=3, warps=4),
    dict(),
    dict(n_blocks=9, warps=32),
]
SINGLE_PASS_CONFIGS = [
    dict(block=32, items=1),
    dict(block=64, items=4, lookback="random"),
    dict(),
    dict(block=128, items=2, lookback="random", seed=7),
    dict(block=32, items=1, lookback="random", seed=3, window=32),  # several windows a tile
]


@pytest.mark.parametrize("T", LENGTHS)
@pytest.mark.parametrize("C", CHANNELS)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("with_h0", [False, True])
def test_twins_match_the_serial_reference(rng, T, C, reverse, with_h0):
    a, b, h0 = inputs(rng, T, C)
    h0 = h0 if with_h0 else None
    want = reference_recurrence(a, b, h0, reverse)
    for kw in THREE_PHASE_CONFIGS:
        got = cr.three_phase_twin(a, b, h0, reverse, **kw)
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11, err_msg=str(kw))
    for kw in SINGLE_PASS_CONFIGS:
        got = cr.single_pass_twin(a, b, h0, reverse, **kw)
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11, err_msg=str(kw))


@pytest.mark.parametrize("C", CHANNELS)
def test_twins_in_float32(rng, C):
    a, b, h0 = inputs(rng, 4099, C, np.float32)
    want = reference_recurrence(a, b, h0)
    for got in (cr.three_phase_twin(a, b, h0), cr.single_pass_twin(a, b, h0, block=64, items=4)):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4)


@given(
    T=st.integers(1, 700),
    C=st.integers(1, 40),
    reverse=st.booleans(),
    block=st.sampled_from([32, 64, 256]),
    items=st.integers(1, 6),
    n_blocks=st.integers(1, 40),
    warps=st.integers(1, 33),
    seed=st.integers(0, 2**16),
)
def test_twins_any_decomposition(T, C, reverse, block, items, n_blocks, warps, seed):
    rng = np.random.default_rng(seed)
    a, b, h0 = inputs(rng, T, C)
    want = reference_recurrence(a, b, h0, reverse)
    got = cr.three_phase_twin(a, b, h0, reverse, n_blocks=n_blocks, warps=warps)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    window = 32 // cr.channel_group(C) * (1 + seed % 4)  # from one chunk to several
    got = cr.single_pass_twin(
        a, b, h0, reverse, block=block, items=items, lookback="random", seed=seed, window=window
    )
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_twins_with_no_steps():
    a = np.ones((0, 3))
    assert cr.three_phase_twin(a, a).shape == (0, 3)
    assert cr.single_pass_twin(a, a, reverse=True).shape == (0, 3)


def test_twins_reject_bad_arguments(rng):
    a, b, h0 = inputs(rng, 10, 2)
    with pytest.raises(ValueError, match="lookback"):
        cr.single_pass_twin(a, b, h0, lookback="sometimes")
    with pytest.raises(ValueError, match="block"):
        cr.single_pass_twin(a, b, h0, block=48)
    with pytest.raises(ValueError, match="shape"):
        cr.three_phase_twin(a, b[:, :1], h0)
    with pytest.raises(TypeError, match="float32 or float64"):
        cr.three_phase_twin(a.astype(np.int64), b.astype(np.int64))


# ---------------------------------------------------------------------------------------------
# the public entry points without a GPU
# ---------------------------------------------------------------------------------------------


def test_public_cupy_backend_with_numpy_arrays(rng):
    a, b, h0 = inputs(rng, 16, 3)
    if "cupy" in sb.available_backends():
        with pytest.raises(TypeError, match="cupy"):
            sb.linear_recurrence(a, b, h0, backend="cupy")
    else:
        with pytest.raises(ValueError, match="not available"):
            sb.linear_recurrence(a, b, h0, backend="cupy")


def test_module_entry_rejects_host_arrays(rng):
    a, b, h0 = inputs(rng, 16, 3)
    with pytest.raises(TypeError, match="NumPy host array"):
        cr.linear_recurrence(a, b, h0)
    with pytest.raises(ValueError, match="method"):
        cr.linear_recurrence(a, b, h0, method="fastest")


# ---------------------------------------------------------------------------------------------
# on a GPU: the kernels themselves
# ---------------------------------------------------------------------------------------------

METHODS = ("serial", "three_phase", "single_pass", "auto")


@pytest.mark.gpu
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_kernels_match_the_reference(rng, method, dtype):
    import cupy as cp

    tol = 2e-4 if dtype == np.float32 else 1e-11
    for T in LENGTHS:
        for C in CHANNELS:
            a, b, h0 = inputs(rng, T, C, dtype)
            for reverse in (False, True):
                for init in (None, h0):
                    want = reference_recurrence(a, b, init, reverse)
                    got = cr.linear_recurrence(
                        cp.asarray(a), cp.asarray(b), None if init is None else cp.asarray(init),
                        reverse=reverse, method=method,
                    )  # fmt: skip
                    assert got.dtype == dtype
                    np.testing.assert_allclose(
                        cp.asnumpy(got), want, rtol=tol, atol=tol,
                        err_msg=f"{method} T={T} C={C} reverse={reverse} h0={init is not None}",
                    )  # fmt: skip


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_lookback_under_concurrency_every_shape(dtype):
    # T a few tiles and never a whole number of them, the channel counts of every channel
    # group and of partly filled groups, both directions, the forward kernels and the gradient;
    # SCANBOOK_EMU_SEEDS rounds (new inputs, and on the emulated GPU new schedules, each)
    import os

    import cupy as cp

    tol = 2e-4 if dtype == np.float32 else 1e-11
    for seed in range(int(os.environ.get("SCANBOOK_EMU_SEEDS", "1"))):
        rng = np.random.default_rng(seed)
        for C in (1, 2, 3, 5, 17, 32, 33, 70):
            cg = cr.channel_group(C)
            tile = cr.SINGLE_PASS_BLOCK // cg * cr.single_pass_items(dtype)
            T = (2 + seed % 2) * tile + 1 + (7 * seed + C) % (tile - 1)
            a, b, h0 = inputs(rng, T, C, dtype)
            g = rng.standard_normal((T, C)).astype(dtype)
            for reverse in (False, True):
                want = reference_recurrence(a, b, h0, reverse)
                d = [cp.asarray(x) for x in (a, b, h0)]
                for method in ("serial", "three_phase", "single_pass"):
                    got = cr.linear_recurrence(*d, reverse=reverse, method=method)
                    what = f"{method} T={T} C={C} {reverse}"
                    np.testing.assert_allclose(cp.asnumpy(got), want, rtol=tol, atol=tol,
                                               err_msg=what)  # fmt: skip
                h = want.astype(dtype)
                exp = sb.linear_recurrence_vjp(a, b, h0, h, g, reverse=reverse, backend="numpy")
                got = cr.linear_recurrence_vjp(*d, cp.asarray(h), cp.asarray(g), reverse=reverse)
                for name, x, w in zip(("da", "db", "dh0"), got, exp, strict=True):
                    what = f"vjp {name} T={T} C={C} {reverse}"
                    np.testing.assert_allclose(cp.asnumpy(x), w, rtol=tol, atol=tol,
                                               err_msg=what)  # fmt: skip


@pytest.mark.gpu
@pytest.mark.parametrize("method", ("three_phase", "single_pass"))
def test_gpu_many_tiles_and_odd_shapes(rng, method):
    import cupy as cp

    for T, C in [(1 << 20, 1), ((1 << 20) + 3, 1), (100_003, 5), (4099, 33), (3, 70_001)]:
        a, b, h0 = inputs(rng, T, C, np.float64)
        for reverse in (False, True):
            got = cr.linear_recurrence(
                cp.asarray(a), cp.asarray(b), cp.asarray(h0), reverse=reverse, method=method
            )
            want = sb.serial.linear_recurrence_numpy(a, b, h0, reverse)
            np.testing.assert_allclose(cp.asnumpy(got), want, rtol=1e-10, atol=1e-10)


@pytest.mark.gpu
def test_gpu_public_backend_and_non_contiguous_inputs(rng):
    import cupy as cp

    a, b, h0 = inputs(rng, 2 * 1000, 2 * 7, np.float64)
    want = reference_recurrence(a[::2, ::2], b[::2, ::2], h0[::2])
    ga, gb, gh = cp.asarray(a)[::2, ::2], cp.asarray(b)[::2, ::2], cp.asarray(h0)[::2]
    assert not ga.flags.c_contiguous
    assert cr.linear_recurrence(cp.ones((0, 3)), cp.ones((0, 3))).shape == (0, 3)
    for method in METHODS:
        got = cr.linear_recurrence(ga, gb, gh, method=method)
        np.testing.assert_allclose(cp.asnumpy(got), want, rtol=1e-11, atol=1e-11)
    got = sb.linear_recurrence(cp.asfortranarray(cp.asarray(a)), cp.asarray(b), backend="cupy")
    np.testing.assert_allclose(cp.asnumpy(got), reference_recurrence(a, b), rtol=1e-11, atol=1e-11)
    # a contiguous view that starts 4 bytes into an allocation: no float4 loads there
    a32, b32 = cp.asarray(a[:, 0].astype(np.float32)), cp.asarray(b[:, 0].astype(np.float32))
    got = cr.linear_recurrence(a32[1:, None], b32[1:, None], method="single_pass")
    want = reference_recurrence(a[1:, :1], b[1:, :1])
    np.testing.assert_allclose(cp.asnumpy(got), want, rtol=2e-4, atol=2e-4)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_fused_gradient(rng, dtype):
    """The fused gradient kernel under real concurrency: many tiles, both directions."""
    import cupy as cp

    tol = 2e-4 if dtype == np.float32 else 1e-10
    for T, C in [(1, 1), (4099, 1), ((1 << 20) + 3, 1), (1 << 20, 1), (100_003, 5), (999, 64)]:
        a, b, h0 = inputs(rng, T, C, dtype)
        g = rng.standard_normal((T, C)).astype(dtype)
        for reverse in (False, True):
            h = sb.serial.linear_recurrence_numpy(a, b, h0, reverse)
            want = sb.linear_recurrence_vjp(a, b, h0, h, g, reverse=reverse, backend="numpy")
            got = sb.linear_recurrence_vjp(*(cp.asarray(x) for x in (a, b, h0, h, g)),
                                           reverse=reverse, backend="cupy")  # fmt: skip
            for x, w in zip(got, want, strict=True):
                np.testing.assert_allclose(cp.asnumpy(x), w, rtol=tol, atol=tol)


@pytest.mark.gpu
def test_gpu_stream_add(rng):
    import cupy as cp

    x, y = cp.asarray(rng.standard_normal(10_007)), cp.asarray(rng.standard_normal(10_007))
    cp.testing.assert_allclose(cr.stream_add(x, y), x + y)
    x32, y32 = x.astype(cp.float32), y.astype(cp.float32)
    cp.testing.assert_allclose(cr.stream_add(x32[1:], y32[1:]), x32[1:] + y32[1:])


@pytest.mark.gpu
@pytest.mark.parametrize(
    "method,T,C",
    [
        ("single_pass", (1 << 31) + 77, 1),
        ("three_phase", (1 << 31) + 77, 1),
        ("single_pass", (1 << 25) + 3, 65),
        ("three_phase", (1 << 25) + 3, 65),
        ("serial", (1 << 25) + 3, 65),  # (one thread walking 2^31 steps would take minutes)
    ],
)
def test_gpu_indices_past_two_to_the_31(method, T, C):
    """T * C > 2^31: 32-bit indices would wrap. Check windows against a float64 loop started
    from the kernel's own state just before each window (and that nothing is left as NaN)."""
    import cupy as cp

    a = cp.random.uniform(0.5, 1.0, (T, C), dtype=cp.float32)
    b = cp.random.standard_normal((T, C), dtype=cp.float32)
    for reverse in (False, True):
        h = cr.linear_recurrence(a, b, reverse=reverse, method=method)
        assert not bool(cp.isnan(h).any())
        for start in (T // 2, T - 5000):
            win = slice(start, start + 4000)
            ah, bh = cp.asnumpy(a[win]).astype(np.float64), cp.asnumpy(b[win]).astype(np.float64)
            if not reverse:
                state = cp.asnumpy(h[start - 1]).astype(np.float64)
                want = reference_recurrence(ah, bh, state)
            else:
                state = cp.asnumpy(h[start + 4000]).astype(np.float64)
                want = reference_recurrence(ah, bh, state, reverse=True)
            np.testing.assert_allclose(cp.asnumpy(h[win]), want, rtol=1e-3, atol=1e-3)
        del h


# ---------------------------------------------------------------------------------------------
# the chapter's graders accept the right answers and explain the usual mistakes
# ---------------------------------------------------------------------------------------------


def test_chapter4_graders():
    ex = sb.exercises

    def divide_work(n, p, w):
        small, extra = divmod(n, p)
        begin = w * small + min(w, extra)
        return begin, begin + small + (1 if w < extra else 0)

    def divide_work_ceil(n, p, w):
        c = -(-n // p)
        return w * c, min(n, (w + 1) * c)

    def warp_scan(A, B, cg):
        A, B = np.array(A, dtype=float), np.array(B, dtype=float)
        lane, o = np.arange(32), 1
        while o < 32 // cg:
            d = o * cg
            A_up, B_up = np.roll(A, d), np.roll(B, d)
            A, B = np.where(lane >= d, A * A_up, A), np.where(lane >= d, A * B_up + B, B)
            o *= 2
        return A, B

    def lookback(preds):
        acc_a, acc_b = 1.0, 0.0
        for flag, A, B, h in preds:
            if flag == 2:
                return acc_a * h + acc_b
            acc_a, acc_b = acc_a * A, acc_a * B + acc_b

    def lookback_backwards(preds):
        k = next(i for i, p in enumerate(preds) if p[0] == 2)
        x = preds[k][3]
        for _, A, B, _ in preds[:k]:
            x = A * x + B
        return x

    assert ex.check_divide_work(divide_work, quiet=True)
    fb = ex.check_divide_work(divide_work_ceil, quiet=True)
    assert not fb and "ceil" in fb.message
    assert ex.check_affine_warp_scan(warp_scan, quiet=True)
    fb = ex.check_affine_warp_scan(lambda A, B, cg: warp_scan(A, B, 1), quiet=True)
    assert not fb and "o * cg" in fb.message
    assert ex.check_lookback(lookback, quiet=True)
    fb = ex.check_lookback(lookback_backwards, quiet=True)
    assert not fb and "farthest first" in fb.message


# ---------------------------------------------------------------------------------------------
# the CUDA C itself, run on the CPU: the emulation of tests/emulation/cuda_emu.h (threads of a
# block as std::threads, barriers, warp shuffles and ballots, atomics, release/acquire flags;
# the blocks of a launch concurrent, in a random order, with random delays) drives
# tests/emulation/runner.cpp. tests/test_concurrent_emulation.py pushes the look-back harder;
# timing and the GPU's memory ordering are left to the @pytest.mark.gpu tests.
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulated():
    """The runner built for float and double, with small tiles (64 threads, 2 or 4 items)."""
    if shutil.which("g++") is None:
        pytest.skip("needs a C++20 compiler (g++)")
    import fake_gpu

    return {d: fake_gpu.build_runner(d, items, 64) for d, items in (("double", 2), ("float", 4))}


def run_emulated(exe, cases):
    import fake_gpu

    return [r["error"] for r in fake_gpu.run_cases(exe, cases, stall_us=2000)]


@pytest.mark.parametrize("dtype", ["double", "float"])
def test_kernel_source_runs_correctly_in_a_cpu_emulation(emulated, dtype):
    cases = []  # (kernel, T, C, reverse, with_h0, seed, p1, p2)
    for i, (T, C) in enumerate(
        [(1, 1), (33, 3), (301, 64), (1029, 1), (1028, 1), (700, 9), (16, 2), (32, 5)]
    ):
        for reverse in (0, 1):
            seed = 10 * i + reverse
            cases.append(("serial", T, C, reverse, 1, seed, 0, 0))
            cases.append(("three_phase", T, C, reverse, 1 - reverse, seed, 3, 4))
            cases.append(("single_pass", T, C, reverse, 1 - reverse, seed, cr.channel_group(C), 0))
            cg = cr.channel_group(C)
            cases.append(("single_pass_vjp", T, C, reverse, reverse, seed, cg, 0))
        cases.append(("three_phase", T, C, i % 2, 1, i, 2, 32))  # full 1024-thread blocks
    errors = run_emulated(emulated[dtype], cases)
    tol = 1e-12 if dtype == "double" else 2e-4
    bad = [(c, e) for c, e in zip(cases, errors, strict=True) if not e <= tol]
    assert not bad, bad


# ---------------------------------------------------------------------------------------------
# float32 overflow: the exact condition under which the kernels part from the loop
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["single_pass", "three_phase"])
def test_float32_overflow_condition(fake_gpu, method):
    # the loop: h stays 0 through four decays of 1e20 (b = 0, h0 = 0), then a reset (a = 0)
    T = 64
    a = np.full((T, 1), 0.5, np.float32)
    b = np.ones((T, 1), np.float32)
    a[:4], b[:4], a[4] = 1e20, 0.0, 0.0
    want = reference_recurrence(a, b)
    assert np.isfinite(want).all()
    got = fake_gpu.asnumpy(
        cr.linear_recurrence(fake_gpu.asarray(a), fake_gpu.asarray(b), method=method)
    )
    # the composed product 1e80 is inf in float32, and 0 x inf = NaN: the steps after the
    # segment that composed it are not finite (the docstring's condition)
    assert not np.isfinite(got).all()
    # before the product is used, the kernel agrees: a single-pass thread walks its first
    # steps from h0 one by one; the three-phase kernel's lane groups have one step each here
    # (32 steps a warp, 32 groups), so the product 1e40 of steps 0 and 1 enters step 2
    agree = 4 if method == "single_pass" else 2
    assert np.allclose(got[:agree], want[:agree])
    assert method == "single_pass" or np.isnan(got[2]).all()
    # an overflow the float32 loop meets too (h0 = 1: the state itself passes 3.4e38): the
    # kernels are not finite exactly where that loop is not, over tiles and channel groups
    for T2, C2 in ((9000, 1), (700, 3), (300, 33)):
        a2 = np.full((T2, C2), 0.5, np.float32)
        a2[:4] = a2[200:204] = 1e20
        b2, h2 = np.ones((T2, C2), np.float32), np.ones(C2, np.float32)
        with np.errstate(over="ignore", invalid="ignore"):
            want2 = sb.serial.linear_recurrence_numpy(a2, b2, h2)  # the loop in float32
            got2 = fake_gpu.asnumpy(
                cr.linear_recurrence(*map(fake_gpu.asarray, (a2, b2, h2)), method=method)
            )
        assert not np.isfinite(want2).all()
        np.testing.assert_array_equal(np.isfinite(got2), np.isfinite(want2))
    # the same decays with |a| <= 1 and the reset: the kernels agree with the loop everywhere
    a[:4] = -1.0
    want = reference_recurrence(a, b)
    got = fake_gpu.asnumpy(
        cr.linear_recurrence(fake_gpu.asarray(a), fake_gpu.asarray(b), method=method)
    )
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    # and in float64 the same 1e80 is finite: no NaN
    got = fake_gpu.asnumpy(
        cr.linear_recurrence(
            fake_gpu.asarray(np.where(np.arange(T)[:, None] < 4, 1e20, a).astype(np.float64)),
            fake_gpu.asarray(b.astype(np.float64)),
            method=method,
        )
    )
    assert np.isfinite(got).all()


# ---------------------------------------------------------------------------------------------
# the CUDA C exercise, graded on the emulated GPU
# ---------------------------------------------------------------------------------------------

SUFFIX_SCAN_BODY = r"""
    double A = 1.0, B = 0.0;  // the identity past the end
    if (i < n) {
        A = a[i];
        B = b[i];
    }
    for (int o = 1; o < 32; o <<= 1) {
        const double A1 = __shfl_down_sync(0xffffffffu, A, o);
        const double B1 = __shfl_down_sync(0xffffffffu, B, o);
        if (lane + o < 32) {
            B = A * B1 + B;
            A = A * A1;
        }
    }
    if (i < n) {
        A_out[i] = A;
        B_out[i] = B;
    }
"""


def _suffix_scan(body):
    from scanbook.kernels import stages

    return lambda: stages.SUFFIX_SCAN_TEMPLATE.replace(stages.BLANK, body)


@pytest.mark.skipif(shutil.which("g++") is None, reason="the emulated GPU needs g++")
def test_cuda_exercise_grader_accepts_the_answer_and_names_each_mistake():
    from scanbook.kernels import stages

    check = sb.exercises.check_warp_suffix_scan_cuda
    right = SUFFIX_SCAN_BODY
    fb = check(_suffix_scan(right), quiet=True)
    assert fb, fb.message
    combine = "B = A * B1 + B;\n            A = A * A1;"
    load = "if (i < n) {\n        A = a[i];\n        B = b[i];\n    }"
    wrong = {
        "wrong order": right.replace(combine, "B = A1 * B + B1;\n            A = A1 * A;"),
        "lane + o < 32": right.replace("if (lane + o < 32)", "if (true)"),
        "__shfl_down_sync": right.replace("__shfl_down_sync", "__shfl_up_sync").replace(
            "lane + o < 32", "lane >= o"
        ),
        "identity map": right.replace(load, "A = a[i];\n    B = b[i];"),
        "store only where i < n": right.replace("if (i < n) {\n        A_out", "{\n        A_out"),
        "does not compile": right.replace("B = A * B1 + B;", "B = A * B1 + B"),
        "no warp shuffle": (
            "if (i < n) { const long long e = (i / 32 + 1) * 32 < n ? (i / 32 + 1) * 32 : n;\n"
            "  double A = 1, B = 0;  // __shfl_down_sync in a comment does not count\n"
            "  for (long long j = e - 1; j >= i; --j) { B = a[j] * B + b[j]; A = a[j] * A; }\n"
            "  A_out[i] = A; B_out[i] = B; }"
        ),
        "still in the source": "",
    }
    for expect, body in wrong.items():
        code = _suffix_scan(body) if body else (lambda: stages.SUFFIX_SCAN_TEMPLATE)
        fb = check(code, quiet=True)
        assert not fb and expect in fb.message, (expect, fb.message)
    fb = check(lambda: 42, quiet=True)
    assert not fb and "as a str" in fb.message
    # CUDA's optional width argument of the shuffles is accepted
    with_width = right.replace(", A, o)", ", A, o, 32)").replace(", B, o)", ", B, o, 32)")
    assert with_width != right
    fb = check(_suffix_scan(with_width), quiet=True)
    assert fb, fb.message


@pytest.mark.skipif(shutil.which("g++") is None, reason="the emulated GPU needs g++")
def test_emulated_gpu_reports_divergence_and_endless_loops():
    from scanbook.kernels import emulated, stages

    diverge = SUFFIX_SCAN_BODY.replace(
        "        const double A1 = __shfl_down_sync(0xffffffffu, A, o);\n"
        "        const double B1 = __shfl_down_sync(0xffffffffu, B, o);\n"
        "        if (lane + o < 32) {",
        "        if (lane + o < 32) {\n"
        "        const double A1 = __shfl_down_sync(0xffffffffu, A, o);\n"
        "        const double B1 = __shfl_down_sync(0xffffffffu, B, o);",
    )
    args = [np.ones(40), np.ones(40), np.zeros(40), np.zeros(40), np.int64(40)]
    with pytest.raises(emulated.WarpDivergence, match="keep them out of an `if`"):
        emulated.run_isolated(
            _suffix_scan(diverge)(), "warp_suffix_scan", 1, 64, args, warp_timeout_ms=500
        )
    endless = SUFFIX_SCAN_BODY.replace("o <<= 1", "o << 1")
    with pytest.raises(TimeoutError, match="endless loop"):
        emulated.run_isolated(_suffix_scan(endless)(), "warp_suffix_scan", 1, 64, args, timeout=3)
    r = np.random.default_rng(4)
    args[:2] = r.uniform(0.5, 1.0, 40), r.standard_normal(40)
    code = _suffix_scan(SUFFIX_SCAN_BODY)()
    A, B = emulated.run_isolated(code, "warp_suffix_scan", 1, 64, args)[2:]
    want = stages.suffix_scan_reference(args[0], args[1])
    np.testing.assert_allclose(A, want[0])
    np.testing.assert_allclose(B, want[1])


def test_bandwidth_model_counts_the_lookback_composition_and_one_three_phase_block():
    """Along a channel group the single pass's states advance as fast as a look-back composes
    its predecessors: a whole window in two round trips (the kernel), ``32 / CG`` a round trip
    (warp 0 fetching chunk by chunk) or every two (one predecessor a lane group); the three-phase
    kernel has one resident block of 1024 threads an SM, every lane with a batch of loads in
    flight."""
    n = 1 << 26

    def frac(method, C, **kw):
        return cr.bandwidth_model(method, n // C, C, **kw)["fraction"]

    # the serial kernel: one thread a channel, C threads in all (one, at C = 1)
    assert frac("serial", 1) == pytest.approx(16 * 8 / cr.DRAM_LATENCY_S * 1.5 / 4.3e12)
    assert frac("serial", cr.serial_min_channels(132)) == 1.0
    # the block fetches 128 predecessors' values a round trip in float32, 64 in float64
    for cg in (1, 2, 4, 8, 16, 32):
        per_pass = cr.lookback_fetch(cg, np.float32) * (32 // cg) * cr.SINGLE_PASS_BLOCK // 32
        assert per_pass >= cr.LOOKBACK_WINDOW, cg
        per_pass = cr.lookback_fetch(cg, np.float64) * (32 // cg) * cr.SINGLE_PASS_BLOCK // 32
        assert per_pass >= cr.LOOKBACK_WINDOW // 2, cg
    for C in (1, 2, 4, 8, 32, 64, 256, 4096):
        for dt in (np.float32, np.float64):
            assert frac("single_pass", C, dtype=dt) == 1.0, (C, dt)
    # warp 0 alone, one chunk of 32 / CG a round trip: twice the channels, half the rate
    assert frac("single_pass", 1, lookback="chunked") == 1.0
    assert frac("single_pass", 2, lookback="chunked") == pytest.approx(
        2 * frac("single_pass", 4, lookback="chunked")
    )
    assert frac("single_pass", 32, lookback="chunked") < 0.1
    # one predecessor a lane group spends two round trips (poll, fetch) on every chunk
    narrow = frac("single_pass", 32, lookback="per_group")
    assert narrow == pytest.approx(frac("single_pass", 32, lookback="chunked") / 2)

    # on a GPU eight times an H200 the chain binds: float64 from 4 channels fetches the window
    # in two passes of 64 (three round trips a round), with 2 channels in one (two), as float32
    def big(C, dt):
        return cr.bandwidth_model("single_pass", 1 << 30, C, dt, n_sm=8 * 132)["fraction"]

    assert big(4, np.float32) < 1.0
    assert big(4, np.float64) == pytest.approx(big(4, np.float32) * 2 / 3)
    assert big(2, np.float64) == pytest.approx(big(2, np.float32))
    with pytest.raises(ValueError, match="lookback"):
        frac("single_pass", 32, lookback="narrow")
    assert frac("single_pass", 1 << 15) == 1.0  # enough groups to fill the copy
    # one block of 32 warps an SM, all 32 lanes busy at any C (lane groups below 32 channels),
    # each with a batch of 8 steps of a and b in flight (64 bytes, 16 of the 20 bytes an element
    # are loads): more than the copy needs, so at its 60% ceiling from one channel on
    for C in (1, 2, 4, 8, 32, 64, 256, 4096):
        model = cr.bandwidth_model("three_phase", n // C, C)
        assert model["fraction"] == pytest.approx(0.6) and model["bound"] == "bandwidth", C
        assert model["resident"] == 32 * 132 * (32 // cr.channel_group(C)), C  # lane groups
    # a short sequence: four warps an SM, 32 lanes each with a batch in flight (Little's law)
    rate = 4 * 132 * 32 * cr.three_phase_steps(np.float32) * 8 / cr.DRAM_LATENCY_S * 20 / 16
    assert cr.bandwidth_model("three_phase", 128, 1)["fraction"] == pytest.approx(
        rate / cr.COPY_BYTES_PER_S * 12 / 20
    )
    assert cr.bandwidth_model("three_phase", 128, 1)["bound"] == "latency"
    # idle lanes: three channels in a group of four lanes carry 3/4 of a full warp's bytes
    assert cr.bandwidth_model("three_phase", 128, 3)["fraction"] == pytest.approx(
        0.75 * cr.bandwidth_model("three_phase", 128, 4)["fraction"]
    )

"""Chapter 4's host code and the GPU benchmark, run on an emulated GPU (``tests/fake_gpu.py``).

The ``@pytest.mark.gpu`` tests need a real GPU, which this machine and CI do not have. These run
everything above the kernels (``scanbook.kernels.cupy_raw.linear_recurrence``, the ``cupy``
backend of ``scanbook.linear_recurrence`` and its gradient, ``python -m scanbook.bench gpu`` and
``grad``) against the real ``.cu`` sources, executed on CPU threads, with launches checked for
argument types, contiguity, launch bounds and out-of-bounds writes.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scanbook as sb
from conftest import reference_recurrence
from scanbook import _bench_gpu
from scanbook.kernels import cupy_raw as cr

RUNNER = Path(__file__).parent / "emulation" / "run_on_fake_gpu.py"
SHAPES = [(1, 1), (2, 3), (33, 1), (257, 5), (1000, 64), (4099, 1), (4100, 1), (700, 33)]


def inputs(rng, T, C, dtype):
    a = rng.uniform(0.5, 1.0, (T, C)) * rng.choice([-1.0, 1.0], (T, C))
    b = rng.standard_normal((T, C))
    h0 = rng.standard_normal(C)
    return a.astype(dtype), b.astype(dtype), h0.astype(dtype)


def rel_err(got, want):
    return float(np.max(np.abs(np.asarray(got, np.float64) - want) / (1 + np.abs(want))))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("method", ["serial", "three_phase", "single_pass", "auto"])
def test_kernels_through_the_host_code(fake_gpu, rng, method, dtype):
    tol = 1e-4 if dtype == np.float32 else 1e-12
    for T, C in SHAPES:
        for reverse in (False, True):
            a, b, h0 = inputs(rng, T, C, dtype)
            d = [fake_gpu.asarray(x) for x in (a, b, h0)]
            h = cr.linear_recurrence(*d, method=method, reverse=reverse)
            assert isinstance(h, fake_gpu.ndarray) and h.shape == (T, C) and h.dtype == dtype
            want = reference_recurrence(a, b, h0, reverse=reverse)
            assert rel_err(fake_gpu.asnumpy(h), want) <= tol, (method, T, C, reverse)


def test_auto_picks_serial_with_many_channels(fake_gpu, rng):
    n_sm = fake_gpu.N_SM
    C = cr.serial_min_channels(n_sm)
    assert cr.choose_method(3, C, n_sm) == "serial"
    assert cr.choose_method(3, C - 1, n_sm) == "single_pass"
    a, b, h0 = inputs(rng, 3, C, np.float32)
    h = cr.linear_recurrence(*(fake_gpu.asarray(x) for x in (a, b, h0)))
    assert rel_err(fake_gpu.asnumpy(h), reference_recurrence(a, b, h0)) <= 1e-5


def test_blocks_run_concurrently_through_the_host_code(fake_gpu, rng):
    # the emulated GPU runs a launch's blocks side by side: through the host code too, tiles
    # find predecessors that have published nothing yet (they wait) or only their aggregate
    T = 5 * cr.SINGLE_PASS_BLOCK * cr.single_pass_items(np.float32) + 3  # 6 tiles, C = 1
    a, b, h0 = inputs(rng, T, 1, np.float32)
    want = reference_recurrence(a, b, h0)
    d = [fake_gpu.asarray(x) for x in (a, b, h0)]
    fake_gpu.COUNTERS.update(dict.fromkeys(fake_gpu.COUNTERS, 0))
    for _ in range(4):
        h = cr.linear_recurrence(*d, method="single_pass")
        assert rel_err(fake_gpu.asnumpy(h), want) <= 1e-4
        seen = fake_gpu.COUNTERS
        if seen["waits"] and seen["flag1"]:
            break
    assert seen["max_resident"] >= 2 and seen["blocks"] >= 6, seen
    assert seen["waits"] > 0 and seen["flag1"] > 0, seen


def test_misaligned_and_strided_inputs(fake_gpu, rng):
    # C = 1 with pointers off the 16-byte grid: the kernel must take its scalar path
    a, b, h0 = inputs(rng, 4097, 1, np.float32)
    big_a = fake_gpu.asarray(np.concatenate([[1.5], a[:, 0]]).astype(np.float32))
    big_b = fake_gpu.asarray(np.concatenate([[2.5], b[:, 0]]).astype(np.float32))
    da, db = big_a[1:].reshape(-1, 1), big_b[1:].reshape(-1, 1)
    assert da.data.ptr % 16 != 0
    out = fake_gpu.full((4097, 1), np.nan, np.float32)
    cr.linear_recurrence(da, db, fake_gpu.asarray(h0), method="single_pass", out=out)
    assert rel_err(fake_gpu.asnumpy(out), reference_recurrence(a, b, h0)) <= 1e-4
    # every second channel of a wider array: made contiguous before the launch
    a, b, h0 = inputs(rng, 300, 8, np.float64)
    d = cr.linear_recurrence(fake_gpu.asarray(a)[:, ::2], fake_gpu.asarray(b)[:, ::2],
                             fake_gpu.asarray(h0[::2]), method="single_pass")  # fmt: skip
    assert rel_err(fake_gpu.asnumpy(d), reference_recurrence(a[:, ::2], b[:, ::2], h0[::2])) < 1e-12


def test_public_backend_gradient_and_batch_shapes(fake_gpu, rng):
    assert "cupy" in sb.available_backends()
    a, b, h0 = inputs(rng, 129, 6, np.float64)
    a3, b3, h03 = a.reshape(129, 2, 3), b.reshape(129, 2, 3), h0.reshape(2, 3)
    d = [fake_gpu.asarray(x) for x in (a3, b3, h03)]
    for reverse in (False, True):
        h = sb.linear_recurrence(*d, reverse=reverse)  # auto: cupy arrays -> the cupy backend
        assert type(h).__module__ == "cupy" and h.shape == (129, 2, 3)
        want = reference_recurrence(a3, b3, h03, reverse=reverse)
        assert rel_err(fake_gpu.asnumpy(h), want) < 1e-12
        g = rng.standard_normal(a3.shape)
        grads = sb.linear_recurrence_vjp(*d, h, fake_gpu.asarray(g), reverse=reverse,
                                         backend="cupy")  # fmt: skip
        ref = sb.linear_recurrence_vjp(a3, b3, h03, want, g, reverse=reverse, backend="numpy")
        for got, exp in zip(grads, ref, strict=True):
            assert type(got).__module__ == "cupy"
            assert rel_err(fake_gpu.asnumpy(got), exp) < 1e-12
    empty = sb.linear_recurrence(fake_gpu.zeros((0, 4)), fake_gpu.zeros((0, 4)))
    assert empty.shape == (0, 4)
    with pytest.raises(TypeError, match="cupy arrays"):
        sb.linear_recurrence(a, b, backend="cupy")
    with pytest.raises(TypeError, match="float32 or float64"):
        cr.linear_recurrence(fake_gpu.asarray(a.astype(np.float16)), fake_gpu.asarray(b))


def test_nan_in_nan_out(fake_gpu, rng):
    a, b, h0 = inputs(rng, 600, 3, np.float32)
    b[100, 1] = np.nan
    for method in ("serial", "three_phase", "single_pass"):
        h = fake_gpu.asnumpy(cr.linear_recurrence(*(fake_gpu.asarray(x) for x in (a, b, h0)),
                                                  method=method))  # fmt: skip
        assert np.isnan(h[100:, 1]).all() and not np.isnan(h[:100]).any()
        assert not np.isnan(h[:, [0, 2]]).any()


def test_stream_add(fake_gpu, rng):
    for n, dtype in ((1, np.float32), (1027, np.float32), (999, np.float64)):
        x, y = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
        out = cr.stream_add(fake_gpu.asarray(x), fake_gpu.asarray(y))
        assert np.array_equal(fake_gpu.asnumpy(out), x + y)
        # off the 16-byte grid: the scalar path
        big = fake_gpu.asarray(np.concatenate([[0.0], x]).astype(dtype))
        out = cr.stream_add(big[1:], fake_gpu.asarray(y))
        assert np.array_equal(fake_gpu.asnumpy(out), x + y)


def test_the_emulation_catches_launch_mistakes(fake_gpu, rng):
    """What a GPU would silently get wrong is an error here (so the tests above mean something)."""
    T, C = 100, 2
    a, b, h0 = (fake_gpu.asarray(x) for x in inputs(rng, T, C, np.float32))
    serial = cr._kernel("serial.cu", "serial_f32")
    h = fake_gpu.empty((T, C), np.float32)
    ok = (a, b, h0, h, np.int64(T), np.int64(C), np.int32(0))
    serial((1,), (64,), ok)
    with pytest.raises(TypeError, match="argument 6 is C type 'i'"):
        serial((1,), (64,), ok[:6] + (0,))  # a Python int travels as long long
    with pytest.raises(TypeError, match="argument 4 is C type 'q'"):
        serial((1,), (64,), ok[:4] + (np.int32(T),) + ok[5:])
    with pytest.raises(TypeError, match="points to 'f'"):
        serial((1,), (64,), (a.astype(np.float64),) + ok[1:])
    with pytest.raises(ValueError, match="non-contiguous"):
        serial((1,), (64,), (fake_gpu.asarray(np.ones((T, 2 * C), np.float32))[:, ::2],) + ok[1:])
    with pytest.raises(TypeError, match="takes 7 arguments"):
        serial((1,), (64,), ok[:6])
    single = cr._kernel("single_pass.cu", "single_pass_f32_cg1")
    with pytest.raises(ValueError, match="launch bound: 256"):
        single((1,), (512,), ())
    with pytest.raises(AttributeError, match="no kernel"):
        cr._module("serial.cu").get_function("serial_f16")
    # one row short: the last row lands in the guard bytes (a longer overrun would corrupt the
    # process's heap before it could be reported)
    small = fake_gpu.empty((T - 1, C), np.float32)
    with pytest.raises(AssertionError, match="out of bounds"):
        serial((1,), (64,), ok[:3] + (small,) + ok[4:])


def run_bench(tmp_path, *argv):
    env = {**os.environ, "SCANBOOK_RESULTS_DIR": str(tmp_path / "results")}
    env.pop("SCANBOOK_DEVICE", None)
    out = subprocess.run([sys.executable, str(RUNNER), *argv], capture_output=True, text=True,
                         env=env, timeout=900)  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def test_gpu_benchmark_runs_end_to_end(tmp_path):
    """``python -m scanbook.bench gpu`` on the emulated GPU: every record, checked outputs, and a
    file that ``load_results`` reads back (the chapters' figures are drawn from it)."""
    stdout = run_bench(tmp_path, "gpu", "--elements", "2048", "--repeat", "2", "--warmup", "1",
                       "--skip-numba", "--table1-max-T", "256")  # fmt: skip
    files = list((tmp_path / "results").glob("*.json"))
    assert [f.name for f in files] == ["emulated-gpu-cpu-threads.json"], stdout
    data = json.loads(files[0].read_text())
    assert data["benchmark"] == "gpu" and data["multiprocessors"] == 4
    assert {"date", "driver", "cupy", "compute_capability", "records"} <= set(data)
    records = _bench_gpu.load_results(files[0])
    targets = {(r["T"], r["channels"], r["dtype"]) for r in records if r["kernel"] == "copy"}
    assert targets == {(32, 64, "float32"), (2048, 1, "float32"), (16, 64, "float64"),
                       (1024, 1, "float64")}  # fmt: skip
    for T, C, dt in targets:
        mine = {r["kernel"]: r for r in records if (r["T"], r["channels"], r["dtype"]) == (T, C, dt)
                and not r["kernel"].startswith(("table1", "crossover"))}  # fmt: skip
        for k in ("copy", "stream_add (a+b->h)", "cupy_single_pass", "cupy_three_phase",
                  "cupy_serial", "cupy_auto"):  # fmt: skip
            assert mine[k]["gbps"] > 0 and mine[k]["pct_of_copy"] > 0, (k, T, C)
            assert mine[k]["bytes"] == 3 * T * C * np.dtype(dt).itemsize
        assert mine["copy"]["pct_of_copy"] == pytest.approx(100)
        assert mine["cupy_auto"]["chose"] == "single_pass"
        assert "pct_of_own_floor" in mine["cupy_three_phase"]
        assert "error" in mine["jax_associative_scan"]  # JAX runs on the CPU here: recorded
    table1 = [r for r in records if r["kernel"].startswith("table1_")]
    assert {(r["T"], r["channels"]) for r in table1} == {(T, C) for T in (16, 256)
                                                         for C in (4, 32, 128)}  # fmt: skip
    assert all(r["speedup_vs_serial"] > 0 for r in table1)
    assert any(r["kernel"].startswith("crossover_") for r in records)
    checked = {
        (c["kernel"], c["channels"], c["what"]): c for c in _bench_gpu.check_targets(records)
    }
    assert len(checked) == len(_bench_gpu.TARGETS)
    assert checked["cupy_single_pass", 64, "pct_of_copy"]["value"] > 0
    assert checked["cupy_single_pass", 64, "pct_of_copy"]["T"] == 32
    assert checked["cupy_three_phase", 1, "pct_of_own_floor"]["value"] > 0
    assert checked["numba_cuda", 1, "pct_of_copy"]["met"] is None  # skipped in this run
    assert checked["cupy_single_pass", 1, "x_over_jax"]["value"] is None  # JAX failed: no GPU
    assert "targets (float32" in stdout and "not measured" in stdout
    # nothing was written to the book's own results folder
    assert all(r["gpu"] != data["gpu"] for r in _bench_gpu.load_results())
    assert {r["kernel"] for r in records if "skipped" in r} <= {"cupy_serial"}
    # the chapters' figures draw from exactly this file
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for plot in (sb.viz.plot_gpu_bandwidth, sb.viz.plot_gpu_targets, sb.viz.plot_table1,
                 sb.viz.plot_crossover):  # fmt: skip
        fig = plot(records)
        assert fig is not None, plot.__name__
        assert data["gpu"] in " ".join(t.get_text() for t in fig.findobj(matplotlib.text.Text))
        plt.close(fig)
    text = sb.viz.describe_gpu_bandwidth(records, kernel="cupy_single_pass")
    assert "% of copy" in text and "not measured" not in text, text
    assert data["gpu"] in sb.viz.describe_gpu_results(records)
    fig = sb.viz.plot_crossover(records)
    ax = fig.axes[0]
    assert {ln.get_label() for ln in ax.get_lines()} >= {"serial", "single_pass", "three_phase"}
    c_auto = cr.serial_min_channels(4)  # the emulated GPU's 4 SMs
    assert any(ln.get_xdata()[0] == c_auto and ln.get_linestyle() == "--" for ln in ax.get_lines())
    plt.close(fig)


def test_gradient_benchmark_times_the_cupy_backend(tmp_path):
    out = tmp_path / "grad.json"
    run_bench(tmp_path, "grad", "--T", "300", "--channels", "3", "--repeat", "1",
              "--backends", "numpy", "cupy", "--json", str(out))  # fmt: skip
    records = {r["backend"]: r for r in json.loads(out.read_text())["records"]}
    assert records["cupy"]["kernel"] == "cupy_grad"
    assert records["cupy"]["device"] == "Emulated GPU (CPU threads)"
    assert records["cupy"]["ratio"] > 0 and "cuda events" in records["cupy"]["timing"]
    # chapter 5's figure: the GPU record is drawn, the CPU one is not
    os.environ["SCANBOOK_RESULTS_DIR"] = str(tmp_path)
    try:
        found = sb.viz.gradient_records()
    finally:
        del os.environ["SCANBOOK_RESULTS_DIR"]
    assert [r["kernel"] for r in found] == ["cupy_grad"]
    import matplotlib

    matplotlib.use("Agg")
    fig = sb.viz.plot_gradient_ratios(found)
    assert fig is not None
    matplotlib.pyplot.close(fig)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_gradient_kernel(fake_gpu, rng, dtype):
    """``cupy_raw.linear_recurrence_vjp``: one single-pass launch gives da, db and dh0."""
    tol = 1e-4 if dtype == np.float32 else 1e-12
    shapes = SHAPES + [(16, 1), (4096, 1), (300, 2), (129, 5)]  # vector path, tile edges, CG
    for T, C in shapes:
        for reverse in (False, True):
            a, b, h0 = inputs(rng, T, C, dtype)
            g = rng.standard_normal((T, C)).astype(dtype)
            h = reference_recurrence(a, b, h0, reverse=reverse)
            want = sb.linear_recurrence_vjp(a.astype(np.float64), b.astype(np.float64),
                                            h0.astype(np.float64), h, g.astype(np.float64),
                                            reverse=reverse, backend="numpy")  # fmt: skip
            d = [fake_gpu.asarray(x) for x in (a, b, h0, h.astype(dtype), g)]
            got = cr.linear_recurrence_vjp(*d, reverse=reverse)
            for name, x, w in zip(("da", "db", "dh0"), got, want, strict=True):
                assert isinstance(x, fake_gpu.ndarray) and x.dtype == dtype
                assert rel_err(fake_gpu.asnumpy(x), w) <= tol, (name, T, C, reverse)
    # h0=None, and C = 1 off the 16-byte grid (the scalar path of the same kernel)
    a, b, h0 = inputs(rng, 4096, 1, dtype)
    g = rng.standard_normal((4096, 1)).astype(dtype)
    h = reference_recurrence(a, b)
    want = sb.linear_recurrence_vjp(a, b, None, h.astype(dtype), g, backend="numpy")
    shifted = [fake_gpu.asarray(np.concatenate([[7.0], x[:, 0]]).astype(dtype))[1:, None]
               for x in (a, b, h.astype(dtype), g)]  # fmt: skip
    assert shifted[0].data.ptr % 16 != 0
    got = cr.linear_recurrence_vjp(shifted[0], shifted[1], None, shifted[2], shifted[3])
    for x, w in zip(got, want, strict=True):
        assert rel_err(fake_gpu.asnumpy(x), w) <= tol
    with pytest.raises(TypeError, match="NumPy host array"):
        cr.linear_recurrence_vjp(a, b, h0, h, g)
    with pytest.raises(ValueError, match="g must have the shape"):
        cr.linear_recurrence_vjp(*(fake_gpu.asarray(x) for x in (a, b, h0, h.astype(dtype))),
                                 fake_gpu.asarray(g[:-1]))  # fmt: skip


def test_targets_are_judged_from_the_records():
    def rec(kernel, C, **kw):
        return {"kernel": kernel, "T": 1 << 20, "channels": C, "dtype": "float32", **kw}

    records = [
        rec("cupy_single_pass", 64, pct_of_copy=88.0, median_s=1.0),
        rec("cupy_single_pass", 1, pct_of_copy=70.0, median_s=2.0),
        rec("jax_associative_scan", 64, median_s=6.0),
        rec("jax_associative_scan", 1, median_s=4.0),
        rec("cupy_three_phase", 64, pct_of_own_floor=61.0),
        rec("numba_cuda", 64, error="no numba"),
        {**rec("cupy_single_pass", 64, pct_of_copy=99.0), "dtype": "float64"},  # not a target
        rec("crossover_single_pass_vjp", 32, x_of_forward=1.7),  # a ceiling: met
        rec("crossover_single_pass_vjp", 64, x_of_forward=2.3),  # over it: missed
    ]
    got = {(c["kernel"], c["channels"], c["what"]): c for c in _bench_gpu.check_targets(records)}
    assert got["cupy_single_pass", 64, "pct_of_copy"]["met"] is True
    assert got["cupy_single_pass", 1, "pct_of_copy"]["met"] is False
    assert got["cupy_single_pass", 64, "x_over_jax"]["value"] == pytest.approx(6.0)
    assert got["cupy_single_pass", 1, "x_over_jax"]["met"] is False  # 2x, not 5x
    assert got["cupy_three_phase", 64, "pct_of_own_floor"]["met"] is True
    assert got["numba_cuda", 64, "pct_of_copy"]["value"] is None
    assert got["crossover_single_pass_vjp", 32, "x_of_forward"]["met"] is True
    assert got["crossover_single_pass_vjp", 64, "x_of_forward"]["met"] is False
    assert got["crossover_single_pass", 33792, "pct_of_copy"]["met"] is None
    text = _bench_gpu.format_targets(list(got.values()))
    assert text.count("MISSED") == 3 and text.count(" met") == 4 and "not measured" in text
    assert "<= 2 x the forward" in text


# ---------------------------------------------------------------------------------------------
# the stages of chapter 4 (kernels/cuda/stages.cu), each against its float64 reference
# ---------------------------------------------------------------------------------------------


def test_stages_each_match_their_reference(rng):
    from scanbook.kernels import emulated, stages

    if not emulated.available():
        pytest.skip("the emulated GPU needs g++")
    emulated.COUNTERS.update(dict.fromkeys(emulated.COUNTERS, 0))
    # one channel over 5 tiles, 3 channels (a group of 4, one idle), 33 (two groups), T = 1
    for T, C, dtype in ((9000, 1, np.float64), (700, 3, np.float32), (130, 33, np.float64),
                        (1, 1, np.float32)):  # fmt: skip
        a, b, h0 = inputs(rng, T, C, dtype)
        tol = 1e-4 if dtype == np.float32 else 1e-12
        for stage in stages.UPTO:
            got, want = stages.run(stage, a, b, h0, xp=emulated), stages.reference(stage, a, b, h0)
            for g, w in zip(
                *((x,) if not isinstance(x, tuple) else x for x in (got, want)), strict=True
            ):
                assert g.shape == w.shape and rel_err(g, w) <= tol, (stage, T, C)
    assert emulated.COUNTERS["blocks"] > 0


def test_stage_sources_and_bad_arguments():
    from scanbook.kernels import emulated, stages

    text = stages.source("warp_scan")
    assert "__shfl_up_sync" in text and "stage:" not in text and "extern" not in text
    assert all(stages.source(s).strip() for s in stages.STAGES)
    assert 'extern "C"' in stages.source()
    with pytest.raises(ValueError, match="stage must be one of"):
        stages.source("nope")
    with pytest.raises(ValueError, match="stage must be one of"):
        stages.reference("store", np.ones((2, 1)), np.ones((2, 1)))
    with pytest.raises(ValueError, match="h0 must have shape"):
        stages.run("scan", np.ones((2, 2)), np.ones((2, 2)), np.ones(3), xp=emulated)
    with pytest.raises(TypeError, match="float32 or float64"):
        stages.reference("scan", np.ones((2, 1), int), np.ones((2, 1), int))


def test_excerpts_show_one_function_or_a_piece():
    from scanbook.kernels import stages

    text = stages.excerpt("three_phase.cu", "divide_work")
    assert text.startswith("//") and "divide_work(" in text and text.rstrip().endswith("}")
    assert "reduce_phase" not in text
    assert stages.excerpt("stages.cu", "warp_scan").count("__device__") == 1
    load = stages.excerpt("single_pass.cu", "load_vec")
    assert load.splitlines()[-1] == "}" and "template <" in load
    piece = stages.lines("single_pass.cu", "// poll a window", "} while (waiting < pstar);")
    assert piece.startswith("// poll") and piece.rstrip().endswith("} while (waiting < pstar);")
    assert "load_acquire" in piece and "__syncthreads();" in piece
    with pytest.raises(ValueError, match="no function"):
        stages.excerpt("serial.cu", "nothing_here")
    with pytest.raises(ValueError, match="file must be one of"):
        stages.excerpt("other.cu", "x")
    with pytest.raises(ValueError, match="no lines"):
        stages.lines("serial.cu", "no such text", "}")

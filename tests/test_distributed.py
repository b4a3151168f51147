"""scanbook.distributed: the sharded recurrence on 1, 2, 4 and 8 simulated CPU devices.

JAX fixes its device count when its backend starts, and the pytest process has already
started it with one CPU device. So the multi-device checks run in one subprocess started
with ``XLA_FLAGS=--xla_force_host_platform_device_count=8``; it prints one line per check
and the tests here assert on those lines. Every check compares with a float64 loop and with
the single-device ``scanbook.jax`` function, forward and gradient.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import scanbook as sb

jax = pytest.importorskip("jax")
jnp = jax.numpy
distributed = sb.distributed

SCRIPT = textwrap.dedent(
    r"""
    import json, os
    import numpy as np
    import jax, jax.numpy as jnp
    import scanbook as sb
    from scanbook import distributed as D

    assert len(jax.devices()) == 8, jax.devices()
    rng = np.random.default_rng(7)
    out = []

    def loop(a, b, h0, reverse=False):  # the float64 serial reference
        a, b, h = np.asarray(a, float), np.asarray(b, float), np.array(h0, float)
        hs = np.zeros_like(b)
        for t in (range(len(a))[::-1] if reverse else range(len(a))):
            h = a[t] * h + b[t]
            hs[t] = h
        return hs

    def loop_c(a, b, h0, reverse=False):  # the complex128 serial reference
        a, b, h = np.asarray(a, complex), np.asarray(b, complex), np.array(h0, complex)
        hs = np.zeros_like(b)
        for t in (range(len(a))[::-1] if reverse else range(len(a))):
            h = a[t] * h + b[t]
            hs[t] = h
        return hs

    def mloop(A, b, h0):
        h, hs = np.array(h0, float), np.zeros(b.shape)
        for t in range(len(A)):
            h = np.asarray(A[t], float) @ h + b[t]
            hs[t] = h
        return hs

    def err(x, y):
        x, y = np.asarray(x, float), np.asarray(y, float)
        return float(np.max(np.abs(x - y), initial=0.0)) if x.shape == y.shape else 1e9

    def problem(T, batch):
        a = rng.uniform(0.6, 1.0, (T, *batch)).astype(np.float32)
        b = rng.normal(size=(T, *batch)).astype(np.float32)
        h0 = rng.normal(size=batch).astype(np.float32)
        w = rng.normal(size=(T, *batch)).astype(np.float32)
        return a, b, h0, w

    cases = [  # (devices, T, batch, reverse, grad)
        (1, 13, (3,), False, True),
        (2, 13, (3,), False, True),
        (4, 13, (3,), True, True),
        (8, 13, (3,), False, True),
        (8, 16, (2, 3), False, True),
        (8, 1, (2,), False, False),
        (8, 5, (), True, False),
        (4, 0, (3,), False, False),
    ]
    for p, T, batch, rev, grad in cases:
        mesh = D.make_mesh(p)
        a, b, h0, w = problem(T, batch)
        h = D.linear_recurrence(a, b, h0, mesh=mesh, reverse=rev)
        one = sb.jax.linear_recurrence(a, b, h0, reverse=rev)
        rec = dict(kind="scalar", p=p, T=T, batch=list(batch), reverse=rev,
                   shape=list(h.shape), dtype=str(h.dtype),
                   loop=err(h, loop(a, b, h0, rev)), single=err(h, one),
                   spec=[str(x) for x in getattr(h.sharding, "spec", ["?"])])
        if grad:
            loss = lambda f: (lambda a, b, h0: jnp.sum(w * f(a, b, h0)))
            dist = lambda a, b, h0: D.linear_recurrence(a, b, h0, mesh=mesh, reverse=rev)
            seq = lambda a, b, h0: sb.jax.linear_recurrence_sequential(a, b, h0, reverse=rev)
            g1 = jax.grad(loss(dist), argnums=(0, 1, 2))(a, b, h0)
            with jax.enable_x64(True):  # the gradient of the float64 loop
                g2 = jax.grad(loss(seq), argnums=(0, 1, 2))(
                    *(np.asarray(x, np.float64) for x in (a, b, h0)))
            rec["grad"] = max(err(x, y) for x, y in zip(g1, g2))
        out.append(rec)

    # float64 in, float64 out, on 8 devices
    a, b, h0, _ = problem(11, (2,))
    h = D.linear_recurrence(a.astype(np.float64), b.astype(np.float64), h0.astype(np.float64),
                            mesh=D.make_mesh(8))
    out.append(dict(kind="float64", dtype=str(h.dtype), loop=err(h, loop(a, b, h0))))

    # the matrix recurrence on 8 devices, T = 21 (not a multiple of 8), forward and gradient
    mesh = D.make_mesh(8)
    T, n = 21, 3
    A = (rng.normal(size=(T, n, n)) / 2).astype(np.float32)
    bm = rng.normal(size=(T, n)).astype(np.float32)
    hm0 = rng.normal(size=n).astype(np.float32)
    wm = rng.normal(size=(T, n)).astype(np.float32)
    h = D.matrix_linear_recurrence(A, bm, hm0, mesh=mesh)
    ml = lambda A, b, h0: jnp.sum(wm * D.matrix_linear_recurrence(A, b, h0, mesh=mesh))
    ms = lambda A, b, h0: jnp.sum(wm * sb.jax.matrix_linear_recurrence_sequential(A, b, h0))
    g1 = jax.grad(ml, argnums=(0, 1, 2))(A, bm, hm0)
    g2 = jax.grad(ms, argnums=(0, 1, 2))(A, bm, hm0)
    h_rev = D.matrix_linear_recurrence(A, bm, hm0, mesh=mesh, reverse=True)
    rev_err = err(h_rev, mloop(A[::-1], bm[::-1], hm0)[::-1])
    mlr = lambda A, b, h0: jnp.sum(
        wm * D.matrix_linear_recurrence(A, b, h0, mesh=mesh, reverse=True))
    msr = lambda A, b, h0: jnp.sum(
        wm * sb.jax.matrix_linear_recurrence_sequential(A, b, h0, reverse=True))
    g1r = jax.grad(mlr, argnums=(0, 1, 2))(A, bm, hm0)
    g2r = jax.grad(msr, argnums=(0, 1, 2))(A, bm, hm0)
    rel = lambda gs, hs: max(err(x, y) / (1 + float(np.max(np.abs(y)))) for x, y in zip(gs, hs))
    out.append(dict(kind="matrix", loop=err(h, mloop(A, bm, hm0)), reverse=rev_err,
                    single=err(h, sb.jax.matrix_linear_recurrence(A, bm, hm0)),
                    grad=rel(g1, g2), grad_reverse=rel(g1r, g2r)))

    # complex64 on 8 devices, T = 13, forward and gradient (of a real loss), both directions
    ac = (rng.uniform(0.6, 1.0, (13, 2)) * np.exp(1j * rng.uniform(-1, 1, (13, 2))))
    ac = ac.astype(np.complex64)
    bc = (rng.normal(size=(13, 2)) + 1j * rng.normal(size=(13, 2))).astype(np.complex64)
    hc0 = (rng.normal(size=2) + 1j * rng.normal(size=2)).astype(np.complex64)
    wc = rng.normal(size=(13, 2)).astype(np.float32)
    for rev in (False, True):
        hc = D.linear_recurrence(ac, bc, hc0, mesh=mesh, reverse=rev)
        cl = lambda f: (lambda a, b, h0: jnp.sum(wc * jnp.abs(f(a, b, h0)) ** 2))
        g1c = jax.grad(cl(lambda a, b, h0: D.linear_recurrence(a, b, h0, mesh=mesh,
                                                               reverse=rev)),
                       argnums=(0, 1, 2))(ac, bc, hc0)
        g2c = jax.grad(cl(lambda a, b, h0: sb.jax.linear_recurrence_sequential(a, b, h0,
                                                                               reverse=rev)),
                       argnums=(0, 1, 2))(ac, bc, hc0)
        out.append(dict(kind="complex", reverse=rev, dtype=str(hc.dtype),
                        loop=float(np.max(np.abs(np.asarray(hc) - loop_c(ac, bc, hc0, rev)))),
                        grad=rel(g1c, g2c)))

    # DEER's Newton iteration across 8 devices: a tanh RNN, T = 203, float64
    with jax.enable_x64(True):
        n, T = 3, 203
        Wh = jnp.asarray(rng.normal(size=(n, n)) / 2)
        Wx = jnp.asarray(rng.normal(size=(n, 2)))
        xs = jnp.asarray(rng.normal(size=(T, 2)))
        cell = lambda p, h, x: jnp.tanh(p[1] @ x + p[0] @ h)
        hs, res = D.deer_newton(cell, (Wh, Wx), xs, jnp.zeros(n), mesh=mesh)
        ref = sb.deer.sequential(cell, (Wh, Wx), xs, jnp.zeros(n))
        out.append(dict(kind="deer", err=err(hs, ref), iterations=len(res) - 1,
                        last=float(res[-1])))

    # bytes on the wire, read from the compiled program
    mesh = D.make_mesh(8)
    a = jnp.ones((4096, 16), jnp.float32)
    hlo = D._padded.lower(a, a, jnp.zeros(16, jnp.float32), mesh, "time", False, False)
    out.append(dict(kind="hlo", got=D.collective_bytes(hlo.compile().as_text()),
                    model=D.communication_bytes(4096, 16, 8)))
    print("RESULTS " + json.dumps(out))

    """
)


@pytest.fixture(scope="module")
def results():
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    ).strip()
    env["JAX_PLATFORMS"] = "cpu"
    env.pop("JAX_ENABLE_X64", None)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    print(f"subprocess: {time.perf_counter() - start:.1f} s")
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULTS ")]
    assert line, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(line[-1][len("RESULTS ") :])


def _scalar(results):
    return [r for r in results if r["kind"] == "scalar"]


def test_every_device_count_was_checked(results):
    assert {r["p"] for r in _scalar(results)} == {1, 2, 4, 8}
    assert {r["T"] for r in _scalar(results)} >= {0, 1, 5, 13, 16}


def test_forward_equals_the_loop_and_the_single_device_scan(results):
    for r in _scalar(results):
        assert r["shape"] == [r["T"], *r["batch"]], r
        assert r["dtype"] == "float32", r
        assert r["loop"] < 2e-5, r
        assert r["single"] < 2e-5, r


def test_gradient_equals_the_float64_loops(results):
    graded = [r for r in _scalar(results) if "grad" in r]
    assert {r["p"] for r in graded} == {1, 2, 4, 8}
    assert any(r["reverse"] for r in graded)
    for r in graded:
        assert r["grad"] < 1e-4, r


def test_result_stays_sharded_along_time_when_p_divides_T(results):
    r = next(r for r in _scalar(results) if r["p"] == 8 and r["T"] == 16)
    assert r["spec"] == ["time"], r


def test_result_is_replicated_when_p_does_not_divide_T(results):
    # the documented behaviour: padding, then slicing, leaves every device all of h
    r = next(r for r in _scalar(results) if r["p"] == 8 and r["T"] == 13)
    assert r["spec"] == [], r


def test_complex64_forward_and_gradient_both_directions(results):
    rs = [r for r in results if r["kind"] == "complex"]
    assert {r["reverse"] for r in rs} == {False, True}
    for r in rs:
        assert r["dtype"] == "complex64" and r["loop"] < 2e-5 and r["grad"] < 1e-4, r


def test_float64_stays_float64(results):
    r = next(r for r in results if r["kind"] == "float64")
    assert r["dtype"] == "float64" and r["loop"] < 1e-12, r


def test_matrix_recurrence(results):
    r = next(r for r in results if r["kind"] == "matrix")
    assert r["loop"] < 1e-4 and r["single"] < 1e-4 and r["grad"] < 1e-4, r
    assert r["reverse"] < 1e-4 and r["grad_reverse"] < 1e-4, r


def test_deer_newton_across_devices(results):
    r = next(r for r in results if r["kind"] == "deer")
    assert r["err"] < 1e-9, r
    assert 1 <= r["iterations"] < 30 and r["last"] <= 1e-10, r


def test_bytes_read_from_the_compiled_program_match_the_model(results):
    r = next(r for r in results if r["kind"] == "hlo")
    # two all-gathers of (8, 16) float32 summaries; a device sends 7 of the 8 blocks
    assert r["got"] == {"all-gather": 2 * 8 * 16 * 4}, r
    assert r["model"]["sharded_scan"] == 2 * 8 * 16 * 4 * 7 // 8, r
    assert r["model"]["gather_all"] == r["model"]["sharded_scan"] * 4096 // 8, r


# -- in this process (one device): the API's edges ---------------------------------------------


def test_one_device_in_process_matches_loop():
    rng = np.random.default_rng(3)
    a = rng.uniform(0.5, 1, (7, 2))
    b = rng.normal(size=(7, 2))
    h = distributed.linear_recurrence(a, b)
    ref = sb.linear_recurrence(a, b, backend="numpy")
    assert h.dtype == np.float64
    np.testing.assert_allclose(np.asarray(h), ref, atol=1e-12)


def test_nan_in_nan_out():
    a = np.full((4, 2), 0.5, np.float32)
    b = np.ones((4, 2), np.float32)
    b[1, 0] = np.nan
    h = np.asarray(distributed.linear_recurrence(a, b))
    assert np.isnan(h[1:, 0]).all() and np.isfinite(h[:, 1]).all() and np.isfinite(h[0, 0])


def test_errors_name_the_argument():
    a = np.ones((4, 2), np.float32)
    with pytest.raises(ValueError, match="a and b"):
        distributed.linear_recurrence(a, np.ones((5, 2), np.float32))
    with pytest.raises(ValueError, match="h0"):
        distributed.linear_recurrence(a, a, np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="mesh"):
        distributed.linear_recurrence(a, a, mesh="cpu")
    with pytest.raises(ValueError, match="axis"):
        distributed.linear_recurrence(a, a, axis="batch", mesh=distributed.make_mesh())
    with pytest.raises(TypeError, match="reverse"):
        distributed.linear_recurrence(a, a, reverse=1)
    with pytest.raises(ValueError, match="n_devices"):
        distributed.make_mesh(len(jax.devices()) + 1)
    with pytest.raises(ValueError, match="A must"):
        distributed.matrix_linear_recurrence(np.ones((3, 2, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="n_devices"):
        distributed.communication_bytes(10, 2, 0)
    with pytest.raises(TypeError, match="hlo_text"):
        distributed.collective_bytes(None)


def test_communication_bytes_formula():
    got = distributed.communication_bytes(1000, 16, 8, 4)
    assert got == {"sharded_scan": 7 * 32 * 4, "gather_all": 7 * 32 * 125 * 4}
    assert distributed.communication_bytes(1000, 16, 1) == {"sharded_scan": 0, "gather_all": 0}
    m = distributed.communication_bytes(64, 0, 4, 8, n=3)
    assert m == {"sharded_scan": 3 * 12 * 8, "gather_all": 3 * 12 * 16 * 8}


def test_collective_bytes_parser():
    text = (
        "  %ag = f32[8,16]{1,0} all-gather(%x), channel_id=1, dimensions={0}\n"
        "  %cp = bf16[1,4]{1,0} collective-permute(%y), source_target_pairs={{0,1}}\n"
        "  %s = (f64[2]{0}, f64[4]{0}) all-gather-start(%z)\n"
        "  %d = f64[4]{0} all-gather-done(%s)\n"
        "  %n = f32[8]{0} add(%a, %b)\n"
    )
    assert distributed.collective_bytes(text) == {
        "all-gather": 8 * 16 * 4 + 4 * 8,
        "collective-permute": 8,
    }


def test_collective_bytes_combined_and_async_forms():
    # one line of each form XLA emits; the result (not the operands) is what counts
    lines = {
        # two all-gathers combined into one, synchronous: a tuple of results
        "%g = (f32[8,16]{1,0}, f32[8,16]{1,0}) all-gather(f32[1,16]{1,0} %p, f32[1,16]{1,0} %u),"
        " dimensions={0}": ("all-gather", 2 * 8 * 16 * 4),
        # combined and asynchronous (XLA:GPU): ((operands), (results))
        "%s = ((f32[1,16]{1,0}, f32[1,16]{1,0}), (f32[8,16]{1,0}, f32[8,16]{1,0}))"
        " all-gather-start(f32[1,16]{1,0} %p, f32[1,16]{1,0} %u), dimensions={0}": (
            "all-gather",
            2 * 8 * 16 * 4,
        ),
        # one asynchronous all-gather: (operand, result)
        "%s = (f32[1,16]{1,0}, f32[8,16]{1,0}) all-gather-start(f32[1,16]{1,0} %p)": (
            "all-gather",
            8 * 16 * 4,
        ),
        # asynchronous permute: (operand, result, context scalars)
        "%c = (f32[1,16]{1,0}, f32[1,16]{1,0}, u32[]{:S(2)}, u32[]{:S(2)})"
        " collective-permute-start(f32[1,16]{1,0} %x), source_target_pairs={{0,1}}": (
            "collective-permute",
            16 * 4,
        ),
        # asynchronous all-reduce returns its result alone, or a tuple when combined
        "%r = f32[16]{0} all-reduce-start(f32[16]{0} %y), to_apply=%add": ("all-reduce", 64),
        "%r = (f32[16]{0}, f64[4]{0}) all-reduce-start(f32[16]{0} %y, f64[4]{0} %z)": (
            "all-reduce",
            64 + 32,
        ),
    }
    for line, (kind, n_bytes) in lines.items():
        assert distributed.collective_bytes("  " + line + "\n") == {kind: n_bytes}, line
    done = "  %d = (f32[8,16]{1,0}, f32[8,16]{1,0}) all-gather-done(%s)\n"
    assert distributed.collective_bytes(done) == {}


def test_deer_newton_in_process_edges():
    cell = lambda p, h, x: jnp.tanh(p @ h + x)
    W = jnp.eye(2, dtype=jnp.float32) / 2
    hs, res = distributed.deer_newton(cell, W, jnp.zeros((0, 2), jnp.float32), jnp.zeros(2))
    assert hs.shape == (0, 2) and res.shape == (1,)
    xs = jnp.asarray(np.random.default_rng(5).normal(size=(7, 2)), jnp.float32)
    hs, res = distributed.deer_newton(cell, W, xs, jnp.zeros(2, jnp.float32))
    ref = sb.deer.sequential(cell, W, xs, jnp.zeros(2, jnp.float32))
    np.testing.assert_allclose(np.asarray(hs), np.asarray(ref), atol=1e-5)
    assert res[-1] <= 1e-5 < res[0]
    with pytest.raises(ValueError, match="h0"):
        distributed.deer_newton(cell, W, xs, jnp.zeros((1, 2)))
    with pytest.raises(ValueError, match="max_iter"):
        distributed.deer_newton(cell, W, xs, jnp.zeros(2), max_iter=0)
    with pytest.raises(ValueError, match="init"):
        distributed.deer_newton(cell, W, xs, jnp.zeros(2), init=jnp.zeros((6, 2)))

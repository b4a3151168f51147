"""scanbook.jax: the differentiable JAX recurrences (chapter 5).

Forward results against the float64 serial reference; gradients with
``jax.test_util.check_grads`` (reverse mode: a ``custom_vjp`` function has no forward-mode
derivative, so ``modes=("rev",)`` for the custom rules and both modes for the plain autodiff
versions), under ``jit`` and ``vmap``; the matrix recurrence against finite differences.
64-bit JAX is switched on only inside the ``x64`` fixture, never globally.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scanbook as sb
from conftest import reference_recurrence
from jax.test_util import check_grads
from scanbook import jax as sjax

SHAPES = [(1,), (37,), (100, 3), (13, 2, 5)]
DTYPES = ["float32", "float64"]


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def _inputs(shape, dtype, seed=0, h0=True):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.6, 1.0, shape) * rng.choice([-1.0, 1.0], shape)
    b = rng.normal(size=shape)
    h = rng.normal(size=shape[1:]) if h0 else None
    cast = (lambda x: jnp.asarray(x, dtype=dtype)) if dtype else (lambda x: x)
    return cast(a), cast(b), (cast(h) if h0 else None), (a, b, h)


def _tol(dtype):
    return {"rtol": 1e-4, "atol": 1e-4} if dtype == "float32" else {"rtol": 1e-10, "atol": 1e-10}


# -- forward ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("with_h0", [False, True])
def test_forward_matches_serial(x64, dtype, shape, reverse, with_h0):
    a, b, h0, (a64, b64, h064) = _inputs(shape, dtype, seed=len(shape), h0=with_h0)
    h = sjax.linear_recurrence(a, b, h0, reverse=reverse)
    assert h.shape == shape and h.dtype == jnp.dtype(dtype)
    np.testing.assert_allclose(
        np.asarray(h), reference_recurrence(a64, b64, h064, reverse), **_tol(dtype)
    )


@pytest.mark.parametrize("reverse", [False, True])
def test_other_versions_match(x64, reverse):
    a, b, h0, (a64, b64, h064) = _inputs((37, 3), "float64", seed=3)
    ref = reference_recurrence(a64, b64, h064, reverse)
    for f in (sjax.linear_recurrence_autodiff, sjax.linear_recurrence_sequential):
        np.testing.assert_allclose(np.asarray(f(a, b, h0, reverse=reverse)), ref, rtol=1e-12)
    # the public dispatcher hands the original arrays to this module
    h = sb.linear_recurrence(a, b, h0, reverse=reverse, backend="jax")
    assert isinstance(h, jax.Array)
    np.testing.assert_allclose(np.asarray(h), ref, rtol=1e-12)


def test_empty_and_single_step(x64):
    for f in (sjax.linear_recurrence, sjax.linear_recurrence_autodiff):
        h = f(jnp.ones((0, 3)), jnp.ones((0, 3)))
        assert h.shape == (0, 3)
        h = f(jnp.array([[0.5, 2.0]]), jnp.array([[1.0, 1.0]]), jnp.array([2.0, 3.0]))
        np.testing.assert_allclose(np.asarray(h), [[2.0, 7.0]])
    # gradients at T=0 are zeros of the right shapes
    g = jax.grad(lambda a, b, h0: sjax.linear_recurrence(a, b, h0).sum(), argnums=(0, 1, 2))(
        jnp.ones((0, 2)), jnp.ones((0, 2)), jnp.ones(2)
    )
    assert [x.shape for x in g] == [(0, 2), (0, 2), (2,)]
    assert all(float(jnp.abs(x).sum()) == 0.0 for x in g)
    A = sjax.matrix_linear_recurrence(jnp.ones((0, 2, 2)), jnp.ones((0, 2)))
    assert A.shape == (0, 2)


def test_numpy_and_list_inputs():
    a = np.random.default_rng(5).uniform(0.6, 1.0, (4, 2)).astype(np.float32) * [1, -1]
    b = [[1.0, 2.0], [-0.5, 1.5], [2.0, -1.0], [0.25, 0.75]]
    h = sjax.linear_recurrence(a.astype(np.float32), b)
    np.testing.assert_allclose(
        np.asarray(h), reference_recurrence(a, np.asarray(b), None, False), rtol=1e-5
    )


@pytest.mark.parametrize("reverse", [False, True])
def test_nan_propagates(reverse):
    a, b, _, _ = _inputs((9, 2), "float32", seed=5, h0=False)
    b = b.at[4, 0].set(jnp.nan)
    h = np.asarray(sjax.linear_recurrence(a, b, reverse=reverse))
    reached = slice(0, 5) if reverse else slice(4, 9)
    untouched = slice(5, 9) if reverse else slice(0, 4)
    assert np.isnan(h[reached, 0]).all()
    assert np.isfinite(h[untouched, 0]).all() and np.isfinite(h[:, 1]).all()
    a = a.at[2, 1].set(jnp.nan)
    h = np.asarray(sjax.linear_recurrence(a, jnp.ones_like(a)))
    assert np.isnan(h[2:, 1]).all() and np.isfinite(h[:2, 1]).all()


# -- gradients -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype, reverse, transform",
    [("float32", False, "jit"), ("float64", True, "jit"), ("float64", False, "none")],
)
def test_check_grads(x64, dtype, reverse, transform):
    a, b, h0, _ = _inputs((11, 3), dtype, seed=7)
    f = lambda a, b, h0: sjax.linear_recurrence(a, b, h0, reverse=reverse)
    tol = {"atol": 5e-2, "rtol": 5e-2} if dtype == "float32" else {"atol": 1e-6, "rtol": 1e-6}
    eps = 1e-2 if dtype == "float32" else 1e-5
    # custom_vjp: reverse mode only; forward mode is not defined for it
    check_grads(
        jax.jit(f) if transform == "jit" else f, (a, b, h0), order=1, modes=("rev",), eps=eps, **tol
    )


def test_check_grads_autodiff_both_modes(x64):
    # autodiff through the scan (no custom rule) supports forward and reverse mode
    a, b, h0, _ = _inputs((11, 3), "float64", seed=7)
    g = lambda a, b, h0: sjax.linear_recurrence_autodiff(a, b, h0, reverse=True)
    check_grads(g, (a, b, h0), order=1, modes=("fwd", "rev"), eps=1e-5, atol=1e-6, rtol=1e-6)


def test_forward_mode_is_refused():
    with pytest.raises(TypeError, match="forward-mode"):
        jax.jvp(lambda a: sjax.linear_recurrence(a, jnp.ones(3)), (jnp.ones(3),), (jnp.ones(3),))


def test_second_order_reverse(x64):
    # the backward pass calls the same custom_vjp function, so grad-of-grad works too
    a, b, h0, _ = _inputs((6, 2), "float64", seed=8)
    check_grads(
        lambda a, b, h0: sjax.linear_recurrence(a, b, h0),
        (a, b, h0),
        order=2,
        modes=("rev",),
        eps=1e-5,
    )


@pytest.mark.parametrize("matrix", [False, True])
def test_second_derivative_never_differentiates_the_scan_tree(monkeypatch, matrix):
    # the forward rule computes h with the custom-VJP function itself, so the outer derivative
    # of a gradient is the custom rule again: the scan's combine only ever sees plain arrays
    # (autodiff through the tree would hand it tracers)
    name = "_matrix_combine" if matrix else "_affine_combine"
    original, seen = getattr(sjax, name), set()

    def spy(earlier, later):
        seen.update(type(x).__name__ for x in (*earlier, *later))
        return original(earlier, later)

    monkeypatch.setattr(sjax, name, spy)
    rng = np.random.default_rng(12)
    if matrix:
        a = jnp.asarray(rng.normal(size=(6, 2, 2)) / 2, jnp.float32)
        b, h0 = jnp.asarray(rng.normal(size=(6, 2)), jnp.float32), jnp.ones(2, jnp.float32)
        f = sjax._matrix_recurrence
    else:
        a = jnp.asarray(rng.uniform(0.5, 1.0, 6), jnp.float32)
        b, h0 = jnp.asarray(rng.normal(size=6), jnp.float32), jnp.float32(0.3)
        f = sjax._recurrence
    for reverse in (False, True):

        def loss(a, reverse=reverse):
            return jnp.sum(jnp.tanh(f(a, b, h0, reverse)))

        second = jax.grad(lambda a, loss=loss: jnp.sum(jax.grad(loss)(a) ** 2))(a)
        assert np.isfinite(np.asarray(second)).all()
    assert seen and all("Tracer" not in t for t in seen), seen


@pytest.mark.parametrize("reverse", [False, True])
def test_grad_matches_autodiff_of_loop(x64, reverse):
    a, b, h0, _ = _inputs((23, 2, 3), "float64", seed=9)
    w = jnp.asarray(np.random.default_rng(1).normal(size=(23, 2, 3)))

    def loss(f):
        return lambda a, b, h0: jnp.sum(w * jnp.tanh(f(a, b, h0, reverse=reverse)))

    got = jax.grad(loss(sjax.linear_recurrence), argnums=(0, 1, 2))(a, b, h0)
    want = jax.grad(loss(sjax.linear_recurrence_sequential), argnums=(0, 1, 2))(a, b, h0)
    for x, y in zip(got, want, strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-10, atol=1e-12)


def test_vmap_and_jit(x64):
    rng = np.random.default_rng(11)
    a = jnp.asarray(rng.uniform(0.5, 1.0, (4, 10, 3)))  # 4 independent sequences
    b = jnp.asarray(rng.normal(size=(4, 10, 3)))
    h0 = jnp.asarray(rng.normal(size=(4, 3)))
    batched = jax.jit(jax.vmap(lambda a, b, h0: sjax.linear_recurrence(a, b, h0, reverse=True)))
    h = batched(a, b, h0)
    for i in range(4):
        np.testing.assert_allclose(
            np.asarray(h[i]), reference_recurrence(a[i], b[i], h0[i], True), rtol=1e-12
        )
    check_grads(batched, (a, b, h0), order=1, modes=("rev",), eps=1e-5)  # jit + vmap
    gb = jax.vmap(jax.grad(lambda a, b: jnp.sum(sjax.linear_recurrence(a, b) ** 2), (0, 1)))(a, b)
    gs = jax.vmap(
        jax.grad(lambda a, b: jnp.sum(sjax.linear_recurrence_sequential(a, b) ** 2), (0, 1))
    )(a, b)
    for x, y in zip(gb, gs, strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-10)


def test_float32_gradient_close_to_float64():
    a, b, h0, (a64, b64, h064) = _inputs((50, 4), "float32", seed=12)
    g32 = jax.grad(lambda b: jnp.sum(sjax.linear_recurrence(a, b, h0) ** 2))(b)
    with jax.enable_x64(True):
        A, B, H = (jnp.asarray(x, jnp.float64) for x in (a64, b64, h064))
        g64 = jax.grad(lambda b: jnp.sum(sjax.linear_recurrence_sequential(A, b, H) ** 2))(B)
    assert g32.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(g32), np.asarray(g64), rtol=1e-3, atol=1e-3)


# -- matrix coefficients ---------------------------------------------------------------------


def _matrix_inputs(T, n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(T, n, n)) / np.sqrt(n)
    b = rng.normal(size=(T, n))
    h0 = rng.normal(size=n)
    return tuple(jnp.asarray(x, dtype) for x in (A, b, h0)) + ((A, b, h0),)


def _matrix_reference(A, b, h0, reverse=False):
    h = np.asarray(h0, np.float64).copy()
    out = np.zeros(np.shape(b))
    steps = range(len(b) - 1, -1, -1) if reverse else range(len(b))
    for t in steps:
        h = np.asarray(A[t], np.float64) @ h + np.asarray(b[t], np.float64)
        out[t] = h
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("T", [1, 7, 20])
@pytest.mark.parametrize("reverse", [False, True])
def test_matrix_forward(x64, dtype, T, reverse):
    A, b, h0, (A64, b64, h064) = _matrix_inputs(T, 3, dtype, seed=T)
    h = sjax.matrix_linear_recurrence(A, b, h0, reverse=reverse)
    assert h.dtype == jnp.dtype(dtype)
    np.testing.assert_allclose(
        np.asarray(h), _matrix_reference(A64, b64, h064, reverse), **_tol(dtype)
    )


@pytest.mark.parametrize("reverse", [False, True])
def test_matrix_grad_finite_differences(x64, reverse):
    A, b, h0, (A64, b64, h064) = _matrix_inputs(6, 3, "float64", seed=21)
    w = np.random.default_rng(2).normal(size=(6, 3))

    def loss_np(A, b, h0):
        return float(np.sum(w * _matrix_reference(A, b, h0, reverse)))

    grads = jax.grad(
        lambda A, b, h0: jnp.sum(w * sjax.matrix_linear_recurrence(A, b, h0, reverse=reverse)),
        argnums=(0, 1, 2),
    )(A, b, h0)
    eps = 1e-6
    for x, g in zip((A64, b64, h064), grads, strict=True):
        fd = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            plus, minus = x.copy(), x.copy()
            plus[idx] += eps
            minus[idx] -= eps
            args_p = [plus if y is x else y for y in (A64, b64, h064)]
            args_m = [minus if y is x else y for y in (A64, b64, h064)]
            fd[idx] = (loss_np(*args_p) - loss_np(*args_m)) / (2 * eps)
        np.testing.assert_allclose(np.asarray(g), fd, rtol=1e-6, atol=1e-8)


def test_matrix_check_grads(x64):
    A, b, h0, _ = _matrix_inputs(9, 2, "float64", seed=4)
    tol = {"atol": 1e-6, "rtol": 1e-6}
    eps = 1e-5
    f = lambda A, b, h0: sjax.matrix_linear_recurrence(A, b, h0)
    check_grads(f, (A, b, h0), order=1, modes=("rev",), eps=eps, **tol)
    check_grads(
        jax.vmap(f, in_axes=(None, 0, None)),
        (A, jnp.stack([b, 2 * b]), h0),
        order=1,
        modes=("rev",),
        eps=eps,
        **tol,
    )


def test_matrix_diagonal_equals_scalar(x64):
    a, b, h0, _ = _inputs((15, 4), "float64", seed=13)
    A = jax.vmap(jnp.diag)(a)
    np.testing.assert_allclose(
        np.asarray(sjax.matrix_linear_recurrence(A, b, h0)),
        np.asarray(sjax.linear_recurrence(a, b, h0)),
        rtol=1e-12,
    )


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"a": jnp.ones(3, jnp.int32), "b": jnp.ones(3)}, TypeError, "a must have dtype"),
        ({"a": jnp.ones(3), "b": jnp.ones(4)}, ValueError, "same shape"),
        ({"a": jnp.ones(()), "b": jnp.ones(())}, ValueError, "leading time axis"),
        ({"a": jnp.ones((3, 2)), "b": jnp.ones((3, 2)), "h0": jnp.ones(3)}, ValueError, "h0"),
        ({"a": jnp.ones(3), "b": jnp.ones(3), "reverse": 1}, TypeError, "reverse"),
        ({"a": jnp.ones(3), "b": jnp.ones(3, jnp.bfloat16)}, TypeError, "b must have dtype"),
        ({"a": jnp.ones(3), "b": jnp.ones(3, jnp.complex64)}, TypeError, "same dtype"),
        ({"a": jnp.ones(3), "b": ["x", "y", "z"]}, TypeError, "b must be an array"),
    ],
)
def test_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        sjax.linear_recurrence(**kwargs)


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((jnp.ones((3, 2, 3)), jnp.ones((3, 2))), ValueError, "A must have shape"),
        ((jnp.ones((3, 2, 2)), jnp.ones((3, 3))), ValueError, "b must have shape"),
        ((jnp.ones((3, 2, 2)), jnp.ones((3, 2)), jnp.ones(3)), ValueError, "h0 must have"),
        ((jnp.ones((3, 2, 2), jnp.int32), jnp.ones((3, 2))), TypeError, "A must have dtype"),
    ],
)
def test_matrix_errors(args, error, match):
    with pytest.raises(error, match=match):
        sjax.matrix_linear_recurrence(*args)


def test_reverse_must_be_static():
    f = jax.jit(lambda a, r: sjax.linear_recurrence(a, a, reverse=r))
    with pytest.raises(TypeError, match="static"):
        f(jnp.ones(3), True)


# -- the gradient benchmark (scanbook._bench_grad) ------------------------------------------


def test_bench_grad_backward_below_noise(capsys):
    from scanbook import _bench_grad as grad

    # rounds that agree: forward+backward 3 ms over a forward of 2 ms, give or take
    ok = grad.difference_summary([3.0, 3.1, 2.9, 3.0, 3.2], [2.0, 2.1, 1.9, 2.0, 2.1])
    assert not ok["backward_below_noise"]
    assert ok["backward_s"] == pytest.approx(1.0) and ok["ratio"] == pytest.approx(0.5)
    assert ok["backward_q1_s"] <= ok["backward_s"] <= ok["backward_q3_s"]
    assert grad.format_backward(ok).startswith("1000.000 ms ±")
    # the difference of a disturbed pair of rounds: negative median, or a lower quartile at 0
    for total, part in (([1.0, 1.1, 0.9], [1.2, 1.0, 1.3]), ([1.0, 2.0, 1.0, 2.0], [1.0] * 4)):
        r = grad.difference_summary(total, part)
        assert r["backward_below_noise"] and r["backward_s"] is None and r["ratio"] is None
        assert grad.format_backward(r) == "below noise"
    bad = grad.difference_summary([1.0, 1.1, 0.9], [1.2, 1.0, 1.3])
    with pytest.raises(ValueError, match="same, non-zero length"):
        grad.difference_summary([1.0, 2.0], [1.0])
    record = {"backend": "jax custom VJP", "T": 8, "channels": 2, "dtype": "float32",
              "device": "NVIDIA H200", "forward_s": 1e-3, "forward_spread": 0.1, "rounds": 3,
              **bad}  # fmt: skip
    grad._print_table([record])
    out = capsys.readouterr().out
    assert "below noise" in out and " n/a " in out and "-" not in out.split("\n")[3][:40]
    assert grad.check_targets([record])[0]["met"] is None


def test_bench_grad_records(tmp_path):
    import json

    from scanbook import _bench_grad

    records = _bench_grad.run(6, 2, repeat=1, backends=["numpy", "numba_cuda", "jax custom VJP"])
    by_name = {r["backend"]: r for r in records}
    assert set(by_name) == {"numpy", "numba_cuda", "jax custom VJP"}
    for r in records:
        assert r["kernel"].endswith("_grad") and r["T"] == 6 and r["channels"] == 2
    assert by_name["numpy"]["ratio"] > 0
    for name in ("numpy", "jax custom VJP"):  # medians over the rounds, with their quartiles
        r = by_name[name]
        assert r["forward_q1_s"] <= r["forward_s"] <= r["forward_q3_s"]
        assert isinstance(r["backward_below_noise"], bool) and r["rounds"] == 1
        assert (r["backward_s"] is None) == r["backward_below_noise"] == (r["ratio"] is None)
    if not sb.backends.has_gpu():
        assert "simulator" in by_name["numba_cuda"]["skipped"]
    jr = by_name["jax custom VJP"]
    # the custom rule saves a and h (6 x 2 float32 each) and h0: nothing of the scan tree
    assert jr["residual_bytes"] == (2 * 6 * 2 + 2) * 4
    for key in ("temp_size_in_bytes", "peak_memory_in_bytes"):
        assert isinstance(jr[key], int) and jr[key] >= 0, (key, jr[key])
    json.dumps(records)  # JSON-able
    path = tmp_path / "grad.json"
    assert (
        _bench_grad.main(
            [
                "--T",
                "5",
                "--channels",
                "2",
                "--repeat",
                "1",
                "--backends",
                "numpy",
                "numba",
                "--json",
                str(path),
            ]
        )
        == 0
    )
    saved = json.loads(path.read_text())
    assert [r["backend"] for r in saved["records"]] == ["numpy", "numba"]
    with pytest.raises(ValueError, match="backends"):
        _bench_grad.run(4, 1, backends=["cuda"])


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_half_precision_is_refused(dtype):
    with pytest.raises(TypeError, match="a must have dtype float32, float64"):
        sjax.linear_recurrence(jnp.ones((4, 2), dtype), jnp.ones((4, 2), dtype))

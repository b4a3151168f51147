"""scanbook.linear_recurrence_vjp (chapter 5): the gradient as a reverse recurrence.

For the host backends (numpy, numba) and the Numba CUDA kernel (in the simulator on a CPU:
sizes stay under a few hundred elements a call), the vector-Jacobian product must equal

* central finite differences of the float64 loop (every entry of ``a``, ``b``, ``h0``), and a
  directional finite difference through the backend's own forward pass;
* ``jax.grad`` of the plain loop (``jax.lax.scan``) in float64.

The seed repository's gradient test only printed TensorFlow's gradient error; these assert.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scanbook as sb
from conftest import reference_recurrence
from hypothesis import given
from hypothesis import strategies as st

HOST = ["numpy", "numba"]
BACKENDS = [*HOST, "numba_cuda"]
BATCHES = [(), (3,), (2, 5)]
# the Numba CUDA kernel runs in the simulator on a CPU (about a second a call): a few cases,
# each one forward and one backward call, covering T=1, every batch rank and both directions
CUDA_CASES = [
    ((), 1, False, True),
    ((3,), 9, True, False),
    ((2, 5), 7, False, True),
    ((2, 5), 7, True, True),
]


def _case(T, batch, with_h0, seed=0):
    """Random float64 inputs (never zeros), a loss weight ``w``, and the loss gradient ``g``."""
    rng = np.random.default_rng(seed + 100 * T + 10 * len(batch))
    shape = (T, *batch)
    a = rng.uniform(0.5, 1.0, shape) * rng.choice([-1.0, 1.0], shape)
    b = rng.normal(size=shape)
    h0 = rng.normal(size=batch) if with_h0 else None
    w = rng.normal(size=shape)
    return a, b, h0, w


def _loss(a, b, h0, w, reverse, forward=reference_recurrence):
    """``L = sum(w * h + h**2 / 2)``, so ``g = dL/dh = w + h``."""
    h = np.asarray(forward(a, b, h0, reverse=reverse))
    return float(np.sum(w * h + 0.5 * h * h))


def _finite_differences(a, b, h0, w, reverse, eps=1e-6):
    """Central differences of the float64 loop, one entry at a time."""
    h0_ = np.zeros(a.shape[1:]) if h0 is None else h0
    out = []
    for k, x in enumerate((a, b, h0_)):
        fd = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            args_p = [a.copy(), b.copy(), h0_.copy()]
            args_m = [a.copy(), b.copy(), h0_.copy()]
            args_p[k][idx] += eps
            args_m[k][idx] -= eps
            fd[idx] = (_loss(*args_p, w, reverse) - _loss(*args_m, w, reverse)) / (2 * eps)
        out.append(fd)
    return out


@functools.cache
def _jax_reference(T, batch, with_h0, reverse):
    """``jax.grad`` of the plain ``lax.scan`` loop in float64 (computed once per case)."""
    a, b, h0, w = _case(T, batch, with_h0)
    with jax.enable_x64(True):

        def loss(a, b, h0):
            def step(h, ab):
                h = ab[0] * h + ab[1]
                return h, h

            _, h = jax.lax.scan(step, h0, (a, b), reverse=reverse)
            return jnp.sum(w * h + 0.5 * h * h)

        h0_ = jnp.zeros(batch) if h0 is None else jnp.asarray(h0)
        grads = jax.grad(loss, argnums=(0, 1, 2))(jnp.asarray(a), jnp.asarray(b), h0_)
        return tuple(np.asarray(x) for x in grads)


def _vjp(backend, a, b, h0, w, reverse):
    h = sb.linear_recurrence(a, b, h0, reverse=reverse, backend=backend)
    g = w + h
    return sb.linear_recurrence_vjp(a, b, h0, h, g, reverse=reverse, backend=backend)


@pytest.mark.parametrize("backend", HOST)
@pytest.mark.parametrize("batch", BATCHES, ids=str)
@pytest.mark.parametrize("T", [1, 9])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("with_h0", [False, True])
def test_vjp_matches_jax_grad_of_loop(backend, batch, T, reverse, with_h0):
    a, b, h0, w = _case(T, batch, with_h0)
    got = _vjp(backend, a, b, h0, w, reverse)
    want = _jax_reference(T, batch, with_h0, reverse)
    for name, x, y in zip(("da", "db", "dh0"), got, want, strict=True):
        assert x.shape == y.shape, name
        assert x.dtype == np.float64, name
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("backend", HOST)
@pytest.mark.parametrize("batch", BATCHES, ids=str)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("with_h0", [False, True])
def test_vjp_matches_finite_differences(backend, batch, reverse, with_h0):
    T = 7
    a, b, h0, w = _case(T, batch, with_h0, seed=1)
    got = _vjp(backend, a, b, h0, w, reverse)
    fd = _finite_differences(a, b, h0, w, reverse)
    for name, x, y in zip(("da", "db", "dh0"), got, fd, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7, err_msg=name)
    _check_directional(backend, a, b, h0, w, reverse, got)


@pytest.mark.parametrize("case", CUDA_CASES, ids=str)
def test_numba_cuda_vjp(case):
    batch, T, reverse, with_h0 = case
    a, b, h0, w = _case(T, batch, with_h0)
    got = _vjp("numba_cuda", a, b, h0, w, reverse)
    want = _jax_reference(T, batch, with_h0, reverse)
    fd = _finite_differences(a, b, h0, w, reverse)
    for name, x, y, z in zip(("da", "db", "dh0"), got, want, fd, strict=True):
        assert x.shape == y.shape and x.dtype == np.float64, name
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(x, z, rtol=1e-6, atol=1e-7, err_msg=name)


def test_numba_cuda_vjp_directional():
    a, b, h0, w = _case(7, (3,), True, seed=1)
    got = _vjp("numba_cuda", a, b, h0, w, True)
    _check_directional("numba_cuda", a, b, h0, w, True, got)


def _check_directional(backend, a, b, h0, w, reverse, got):
    """One random direction, differenced through the backend's own forward pass."""
    batch = a.shape[1:]
    rng = np.random.default_rng(7)
    h0_ = np.zeros(batch) if h0 is None else h0
    v = [rng.normal(size=x.shape) for x in (a, b, h0_)]
    fwd = functools.partial(sb.linear_recurrence, backend=backend)
    eps = 1e-6
    plus = _loss(a + eps * v[0], b + eps * v[1], h0_ + eps * v[2], w, reverse, fwd)
    minus = _loss(a - eps * v[0], b - eps * v[1], h0_ - eps * v[2], w, reverse, fwd)
    directional = (plus - minus) / (2 * eps)
    predicted = sum(float(np.sum(x * y)) for x, y in zip(got, v, strict=True))
    assert abs(directional - predicted) <= 1e-6 * max(1.0, abs(predicted))


@given(
    T=st.integers(1, 12),
    batch=st.lists(st.integers(1, 3), max_size=2).map(tuple),
    reverse=st.booleans(),
    with_h0=st.booleans(),
    seed=st.integers(0, 2**16),
    backend=st.sampled_from(["numpy", "numba"]),
)
def test_vjp_random_shapes(T, batch, reverse, with_h0, seed, backend):
    a, b, h0, w = _case(T, batch, with_h0, seed=seed)
    got = _vjp(backend, a, b, h0, w, reverse)
    fd = _finite_differences(a, b, h0, w, reverse)
    for x, y in zip(got, fd, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_vjp_empty(backend):
    a = np.ones((0, 3))
    da, db, dh0 = sb.linear_recurrence_vjp(a, a, None, a, a, backend=backend)
    assert da.shape == (0, 3) and db.shape == (0, 3) and dh0.shape == (3,)
    assert not dh0.any()


@pytest.mark.parametrize("backend", HOST)
@pytest.mark.parametrize("reverse", [False, True])
def test_vjp_single_step(backend, reverse):
    # h[0] = a h0 + b: da = g h0, db = g, dh0 = a g
    a, b, h0, g = np.array([[0.5, -2.0]]), np.array([[1.0, 3.0]]), np.array([4.0, 5.0]), None
    h = a * h0 + b
    g = np.array([[2.0, -1.0]])
    da, db, dh0 = sb.linear_recurrence_vjp(a, b, h0, h, g, reverse=reverse, backend=backend)
    np.testing.assert_allclose(da, g * h0)
    np.testing.assert_allclose(db, g)
    np.testing.assert_allclose(dh0, (a * g)[0])


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_vjp_float32(backend):
    a, b, h0, w = _case(40, (4,), True, seed=3)
    got32 = _vjp(backend, *(x.astype(np.float32) for x in (a, b, h0, w)), False)
    got64 = _vjp(backend, a, b, h0, w, False)
    for x, y in zip(got32, got64, strict=True):
        assert x.dtype == np.float32
        np.testing.assert_allclose(x, y, rtol=1e-3, atol=1e-3)


def test_vjp_jax_backend_agrees():
    a, b, h0, w = _case(9, (3,), True)
    want = _vjp("numpy", a, b, h0, w, True)
    with jax.enable_x64(True):
        args = [jnp.asarray(x) for x in (a, b, h0, w)]
        got = _vjp("jax", *args, True)
        for x, y in zip(got, want, strict=True):
            assert isinstance(x, jax.Array)
            np.testing.assert_allclose(np.asarray(x), y, rtol=1e-12)


@pytest.mark.parametrize(
    "h, g, error, match",
    [
        (np.ones((5, 3)), np.ones((5, 2)), ValueError, "g must have the shape"),
        (np.ones((5, 3)), np.ones((4, 3)), ValueError, "g must have the shape"),
        (np.ones((5, 3)), np.ones((5, 3), np.float32), TypeError, "g must have the dtype"),
        (np.ones((5, 3)), [[1.0] * 3] * 5, TypeError, "g must be an array"),
        (np.ones((5,)), np.ones((5, 3)), ValueError, "h must have the shape"),
        (np.ones((5, 3), np.int64), np.ones((5, 3)), TypeError, "h must have the dtype"),
    ],
)
def test_vjp_errors(h, g, error, match):
    a = np.full((5, 3), 0.9)
    with pytest.raises(error, match=match):
        sb.linear_recurrence_vjp(a, a, None, h, g, backend="numpy")

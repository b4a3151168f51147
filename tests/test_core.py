"""The scanbook core: operators, serial and parallel scans, linear_recurrence and its VJP."""

import numpy as np
import pytest
import scanbook as sb
from conftest import reference_recurrence
from hypothesis import given
from hypothesis import strategies as st
from scanbook import algorithms, ops, serial

ALGORITHMS = ["serial", "hillis_steele", "blelloch", "chunked"]


def loop_scan(combine, items, identity, exclusive):
    """The definition, element by element, in float64 Python objects."""
    out, acc = [], identity
    for x in items:
        if exclusive:
            out.append(acc)
            acc = combine(acc, x)
        else:
            acc = combine(acc, x)
            out.append(acc)
    return out


def random_values(seed, n, low=-2.0, high=2.0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(low, high, n)
    x[np.abs(x) < 1e-3] = 0.5  # never zero
    return x


# -- every algorithm equals the serial scan: add, maximum, affine, lengths 0..300 -------------


@given(
    n=st.integers(0, 300),
    seed=st.integers(0, 2**31),
    algorithm=st.sampled_from(ALGORITHMS),
    exclusive=st.booleans(),
)
def test_add_scan_matches_loop(n, seed, algorithm, exclusive):
    x = random_values(seed, n)
    got = sb.scan(ops.add, x, algorithm=algorithm, exclusive=exclusive)
    want = loop_scan(lambda u, v: u + v, x.tolist(), 0.0, exclusive)
    assert got.shape == (n,)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@given(
    n=st.integers(0, 300),
    seed=st.integers(0, 2**31),
    algorithm=st.sampled_from(ALGORITHMS),
    exclusive=st.booleans(),
)
def test_maximum_scan_matches_loop(n, seed, algorithm, exclusive):
    x = random_values(seed, n)
    got = sb.scan(ops.maximum, x, algorithm=algorithm, exclusive=exclusive)
    want = loop_scan(max, x.tolist(), -np.inf, exclusive)
    np.testing.assert_array_equal(got, want)


@given(
    n=st.integers(0, 300),
    seed=st.integers(0, 2**31),
    algorithm=st.sampled_from(ALGORITHMS),
    exclusive=st.booleans(),
)
def test_affine_scan_matches_loop(n, seed, algorithm, exclusive):
    a = random_values(seed, n, 0.5, 1.1)
    b = random_values(seed + 1, n)
    got_a, got_b = sb.scan(ops.affine, (a, b), algorithm=algorithm, exclusive=exclusive)

    def compose(first, then):
        return (then[0] * first[0], then[0] * first[1] + then[1])

    want = loop_scan(compose, list(zip(a.tolist(), b.tolist(), strict=True)), (1.0, 0.0), exclusive)
    want_a = [w[0] for w in want]
    want_b = [w[1] for w in want]
    np.testing.assert_allclose(got_a, want_a, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got_b, want_b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("n", [0, 1, 2, 5, 17])
def test_matrix_affine_scan_is_the_matrix_recurrence(algorithm, n, rng):
    A = 0.5 * rng.standard_normal((n, 3, 3))
    b = rng.standard_normal((n, 3))
    _, hs = sb.scan(ops.matrix_affine, (A, b), algorithm=algorithm)
    h, want = np.zeros(3), []
    for t in range(n):
        h = A[t] @ h + b[t]
        want.append(h)
    np.testing.assert_allclose(hs, np.reshape(want, (n, 3)), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_scan_over_batched_elements(algorithm, rng):
    x = rng.standard_normal((37, 2, 3))
    got = sb.scan(ops.add, x, algorithm=algorithm)
    np.testing.assert_allclose(got, np.cumsum(x, axis=0), rtol=1e-12, atol=1e-12)


def test_scan_does_not_modify_its_input(rng):
    x = rng.standard_normal(20)
    keep = x.copy()
    for algorithm in ALGORITHMS:
        sb.scan(ops.add, x, algorithm=algorithm)
        assert np.array_equal(x, keep)


@pytest.mark.parametrize("op", [ops.add, ops.maximum, ops.affine, ops.matrix_affine])
def test_identity_is_neutral(op, rng):
    if op is ops.affine:
        x = (rng.uniform(0.5, 1, 4), rng.standard_normal(4))
    elif op is ops.matrix_affine:
        x = (rng.standard_normal((4, 2, 2)), rng.standard_normal((4, 2)))
    else:
        x = rng.standard_normal(4)
    e = op.identity(x, 4)

    def parts(y):
        return y if isinstance(y, tuple) else (y,)

    for combined in (op.combine(e, x), op.combine(x, e)):
        for got, want in zip(parts(combined), parts(x), strict=True):
            np.testing.assert_allclose(got, want)


@given(seed=st.integers(0, 2**31))
def test_affine_is_associative(seed):
    rng = np.random.default_rng(seed)
    x, y, z = ((rng.uniform(-2, 2, 3), rng.uniform(-2, 2, 3)) for _ in range(3))
    left = ops.affine.combine(ops.affine.combine(x, y), z)
    right = ops.affine.combine(x, ops.affine.combine(y, z))
    np.testing.assert_allclose(left, right, rtol=1e-12, atol=1e-12)


# -- traces: work and depth ------------------------------------------------------------------


@pytest.mark.parametrize("k", range(1, 11))
def test_blelloch_work_and_depth_for_powers_of_two(k):
    n = 2**k
    trace = algorithms.Trace()
    sb.scan(ops.add, np.ones(n), algorithm="blelloch", trace=trace)
    assert trace.work == 2 * (n - 1)
    assert trace.depth == 2 * k


@pytest.mark.parametrize("n", [3, 5, 12, 100, 257])
def test_blelloch_work_is_linear_for_any_length(n):
    trace = algorithms.Trace()
    sb.scan(ops.add, np.ones(n), algorithm="blelloch", trace=trace)
    m = 1 << (n - 1).bit_length()
    assert n - 1 <= trace.work <= 2 * (m - 1)
    assert trace.depth == 2 * int(np.log2(m))


@pytest.mark.parametrize("n", [1, 2, 7, 16, 100, 1000])
def test_hillis_steele_work_and_depth(n):
    trace = algorithms.Trace()
    sb.scan(ops.add, np.ones(n), algorithm="hillis_steele", trace=trace)
    levels = (n - 1).bit_length()
    assert trace.depth == levels
    assert trace.work == sum(n - 2**k for k in range(levels))


@given(
    n=st.integers(0, 120),
    n_chunks=st.sampled_from([1, 2, 3, 7, 10**6]),
    seed=st.integers(0, 2**31),
    exclusive=st.booleans(),
)
def test_chunked_affine_with_any_chunk_count(n, n_chunks, seed, exclusive):
    a = random_values(seed, n, 0.5, 1.1)
    b = random_values(seed + 1, n)
    _, got = algorithms.chunked(ops.affine, (a, b), n_chunks=n_chunks, exclusive=exclusive)
    want = reference_recurrence(a, b)
    if exclusive:
        want = np.concatenate([[0.0], want[:-1]])[:n]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("n,p", [(16, 4), (100, 10), (101, 7), (5, 5), (9, 1)])
def test_chunked_work_and_depth(n, p):
    trace = algorithms.Trace()
    got = algorithms.chunked(ops.add, np.arange(1.0, n + 1), n_chunks=p, trace=trace)
    np.testing.assert_allclose(got, np.cumsum(np.arange(1.0, n + 1)))
    L = -(-n // p)
    used = -(-n // L)  # chunks that hold data
    assert trace.work <= 2 * n + p
    assert trace.work >= 2 * (n - 1) - p
    assert trace.depth <= 2 * L + used


def test_trace_records_values_that_end_in_the_scan(rng):
    x = rng.integers(1, 9, 8).astype(float)
    trace = algorithms.Trace(record_values=True)
    sb.scan(ops.add, x, algorithm="hillis_steele", trace=trace)
    np.testing.assert_array_equal(trace.initial, x)
    np.testing.assert_array_equal(trace.levels[-1].values, np.cumsum(x))
    trace = algorithms.Trace(record_values=True)
    sb.scan(ops.add, x, algorithm="blelloch", exclusive=True, trace=trace)
    np.testing.assert_array_equal(trace.levels[-1].values, np.concatenate([[0], np.cumsum(x)[:-1]]))


# -- serial references -------------------------------------------------------------------------


def test_serial_loops_agree(rng):
    a = rng.uniform(-1, 1, 50)
    b = rng.standard_normal(50)
    want = reference_recurrence(a, b, np.float64(0.3))
    np.testing.assert_allclose(serial.linear_recurrence_loop(a.tolist(), b.tolist(), 0.3), want)
    assert serial.scan_loop(lambda x, y: x + y, [1, 2, 3]) == [1, 3, 6]
    assert serial.scan_loop(lambda x, y: x + y, [1, 2, 3], 0, exclusive=True) == [0, 1, 3]
    with pytest.raises(ValueError, match="identity"):
        serial.scan_loop(lambda x, y: x + y, [1], exclusive=True)


# -- linear_recurrence equals a float64 loop --------------------------------------------------

CPU_BACKENDS = ["numpy", "numba"]


@given(
    T=st.integers(0, 70),
    batch=st.sampled_from([(), (3,), (2, 5), (1,)]),
    reverse=st.booleans(),
    with_h0=st.booleans(),
    backend=st.sampled_from(CPU_BACKENDS),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31),
)
def test_linear_recurrence_matches_float64_loop(T, batch, reverse, with_h0, backend, dtype, seed):
    rng = np.random.default_rng(seed)
    shape = (T, *batch)
    a = rng.uniform(-1.0, 1.0, shape).astype(dtype)
    b = rng.standard_normal(shape).astype(dtype)
    h0 = rng.standard_normal(batch).astype(dtype) if with_h0 else None
    h = sb.linear_recurrence(a, b, h0, reverse=reverse, backend=backend)
    assert h.shape == shape and h.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(h, reference_recurrence(a, b, h0, reverse), rtol=tol, atol=tol)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_complex_recurrence(backend, rng):
    a = 0.9 * np.exp(1j * rng.uniform(0, np.pi, (40, 4)))
    b = rng.standard_normal((40, 4)) + 1j * rng.standard_normal((40, 4))
    h = sb.linear_recurrence(a, b, backend=backend)
    np.testing.assert_allclose(h, reference_recurrence(a, b), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_nan_in_means_nan_out(backend, rng):
    a = rng.uniform(0.1, 0.9, (10, 3))
    b = rng.standard_normal((10, 3))
    b[4, 1] = np.nan
    h = sb.linear_recurrence(a, b, backend=backend)
    assert np.isnan(h[4:, 1]).all()
    assert np.isfinite(h[:4, 1]).all()
    assert np.isfinite(h[:, [0, 2]]).all()
    h = sb.linear_recurrence(a, b, backend=backend, reverse=True)
    assert np.isnan(h[:5, 1]).all() and np.isfinite(h[5:, 1]).all()


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_empty_and_single_step(backend, rng):
    h = sb.linear_recurrence(np.ones((0, 2, 3)), np.ones((0, 2, 3)), backend=backend)
    assert h.shape == (0, 2, 3)
    a, b, h0 = rng.uniform(0.2, 1, (1, 4)), rng.standard_normal((1, 4)), rng.standard_normal(4)
    np.testing.assert_allclose(sb.linear_recurrence(a, b, h0, backend=backend), a * h0 + b)
    np.testing.assert_allclose(
        sb.linear_recurrence(a, b, h0, backend=backend, reverse=True), a * h0 + b
    )


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_maximum_uses_the_dtype_minimum(algorithm, dtype):
    x = np.array([-5, -3, -7, -2, -9], dtype=dtype)
    excl = sb.scan(ops.maximum, x, algorithm=algorithm, exclusive=True)
    assert excl[0] == np.iinfo(dtype).min and excl.dtype == dtype
    np.testing.assert_array_equal(excl[1:], np.maximum.accumulate(x)[:-1])
    incl = sb.scan(ops.maximum, x, algorithm=algorithm)
    np.testing.assert_array_equal(incl, np.maximum.accumulate(x))


def test_auto_backend_and_lists(rng):
    a = rng.uniform(0.2, 1, 6)
    b = rng.standard_normal(6)
    np.testing.assert_allclose(
        sb.linear_recurrence(a.tolist(), b.tolist(), 0.5), reference_recurrence(a, b, 0.5)
    )
    assert "numpy" in sb.available_backends() and "numba" in sb.available_backends()
    from scanbook import recurrence

    assert recurrence._choose_backend("auto", "numpy") == "numba"  # the fast CPU loop


def test_non_contiguous_input(rng):
    a = rng.uniform(0.2, 1, (8, 6))[:, ::2]
    b = rng.standard_normal((6, 8)).T[:, :3]
    for backend in CPU_BACKENDS:
        np.testing.assert_allclose(
            sb.linear_recurrence(a, b, backend=backend), reference_recurrence(a, b), rtol=1e-12
        )


# -- the VJP equals finite differences (float64) ----------------------------------------------


def numerical_grad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        up = f()
        x[i] = old - eps
        down = f()
        x[i] = old
        g[i] = (up - down) / (2 * eps)
    return g


@given(
    T=st.integers(1, 9),
    batch=st.sampled_from([(), (3,), (2, 2)]),
    reverse=st.booleans(),
    with_h0=st.booleans(),
    backend=st.sampled_from(CPU_BACKENDS),
    seed=st.integers(0, 2**31),
)
def test_vjp_matches_finite_differences(T, batch, reverse, with_h0, backend, seed):
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1, 1, (T, *batch))
    b = rng.standard_normal((T, *batch))
    h0 = rng.standard_normal(batch) if with_h0 else np.zeros(batch)
    g = rng.standard_normal((T, *batch))
    h = sb.linear_recurrence(a, b, h0 if with_h0 else None, reverse=reverse, backend=backend)
    da, db, dh0 = sb.linear_recurrence_vjp(
        a, b, h0 if with_h0 else None, h, g, reverse=reverse, backend=backend
    )

    def loss():
        return float(np.sum(reference_recurrence(a, b, h0, reverse) * g))

    np.testing.assert_allclose(da, numerical_grad(loss, a), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(db, numerical_grad(loss, b), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dh0, numerical_grad(loss, h0), rtol=1e-6, atol=1e-7)


def test_vjp_at_t_zero():
    z = np.zeros((0, 3))
    da, db, dh0 = sb.linear_recurrence_vjp(z, z, None, z, z)
    assert da.shape == (0, 3) and db.shape == (0, 3) and dh0.shape == (3,)
    assert not dh0.any()

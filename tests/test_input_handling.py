"""Input handling: float64 on the jax backend, and the inputs a careless caller passes.

The first part checks that NumPy float64 (complex128) inputs to the ``jax`` backend and to
``scanbook.jax`` are computed in 64 bits under a scoped x64 mode, against the float64 loop
at 1e-10, without touching JAX's global flag, and that float32 JAX code (``jax.grad``
through ``scanbook.jax.linear_recurrence``) is unaffected. The second part has one test (or
a few) for each kind of awkward input: big-endian arrays, lists of non-numbers, mixed array
kinds, a non-bool ``exclusive``, non-numeric scans, affine pairs of different shapes,
booleans under ``maximum``, non-associative operators, and arguments NumPy would otherwise
complain about without naming them.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scanbook as sb
from conftest import reference_recurrence
from scanbook import algorithms, ops

ALGORITHMS = ["serial", "hillis_steele", "blelloch", "chunked"]


@pytest.fixture(autouse=True)
def x64_flag_untouched():
    """Every test here runs with JAX's default 32 bits and must leave the flag as it was."""
    assert not jax.config.jax_enable_x64, "these tests expect JAX's default 32-bit mode"
    yield
    assert not jax.config.jax_enable_x64, "the global x64 flag was changed"


def _case(T, batch, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    shape = (T, *batch)
    a = rng.uniform(-1.0, 1.0, shape)
    b = rng.standard_normal(shape)
    h0 = rng.standard_normal(batch)
    if np.dtype(dtype).kind == "c":
        a = a * np.exp(1j * rng.uniform(0, 2 * np.pi, shape))
        b = b + 1j * rng.standard_normal(shape)
        h0 = h0 + 1j * rng.standard_normal(batch)
    return a.astype(dtype), b.astype(dtype), np.asarray(h0, dtype)


def _vjp_reference(a, h0, h, g, reverse):
    """``(da, db, dh0)`` by the float64 loop of chapter 5, written out once more."""
    T = a.shape[0]
    db = np.zeros_like(g)
    lam = np.zeros_like(h0)
    order = range(T) if reverse else range(T - 1, -1, -1)
    prev = None
    for t in order:
        lam = g[t] + (a[prev] * lam if prev is not None else 0)
        db[t] = lam
        prev = t
    if reverse:
        h_other = np.concatenate([h[1:], h0[None]])
        dh0 = a[T - 1] * db[T - 1] if T else np.zeros_like(h0)
    else:
        h_other = np.concatenate([h0[None], h[:-1]])
        dh0 = a[0] * db[0] if T else np.zeros_like(h0)
    return db * h_other, db, dh0


# -- A. float64 on the jax backend -----------------------------------------------------------

SHAPES = [(0, (2,)), (1, (3,)), (7, (2, 3)), (1000, ())]


@pytest.mark.parametrize("T, batch", SHAPES)
@pytest.mark.parametrize("reverse", [False, True])
def test_jax_backend_float64_matches_the_loop(T, batch, reverse):
    a, b, h0 = _case(T, batch, seed=T + len(batch))
    want = reference_recurrence(a, b, h0, reverse=reverse)
    for h in (
        sb.linear_recurrence(a, b, h0, reverse=reverse, backend="jax"),
        sb.jax.linear_recurrence(a, b, h0, reverse=reverse),
    ):
        assert isinstance(h, jax.Array)
        assert h.dtype == np.float64 and h.shape == a.shape
        np.testing.assert_allclose(np.asarray(h), want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("T, batch", SHAPES)
@pytest.mark.parametrize("reverse", [False, True])
def test_jax_backend_float64_vjp_matches_the_loop(T, batch, reverse):
    a, b, h0 = _case(T, batch, seed=100 + T)
    g = np.random.default_rng(T).standard_normal(a.shape)
    h = reference_recurrence(a, b, h0, reverse=reverse)
    got = sb.linear_recurrence_vjp(a, b, h0, h, g, reverse=reverse, backend="jax")
    want = _vjp_reference(a, h0, h, g, reverse)
    for x, y in zip(got, want, strict=True):
        assert isinstance(x, jax.Array) and x.dtype == np.float64
        np.testing.assert_allclose(np.asarray(x), y, rtol=1e-10, atol=1e-10)


def test_jax_backend_float64_without_h0_and_complex128():
    a, b, _ = _case(33, (2,), seed=4)
    h = sb.linear_recurrence(a, b, backend="jax")
    assert h.dtype == np.float64
    np.testing.assert_allclose(np.asarray(h), reference_recurrence(a, b), rtol=1e-10, atol=1e-10)
    a, b, h0 = _case(33, (2,), seed=5, dtype=np.complex128)
    for reverse in (False, True):
        h = sb.linear_recurrence(a, b, h0, reverse=reverse, backend="jax")
        assert h.dtype == np.complex128
        want = reference_recurrence(a, b, h0, reverse=reverse)
        np.testing.assert_allclose(np.asarray(h), want, rtol=1e-10, atol=1e-10)
        g = np.ones_like(b)
        got = sb.linear_recurrence_vjp(a, b, h0, want, g, reverse=reverse, backend="jax")
        for x, y in zip(got, _vjp_reference(a, h0, want, g, reverse), strict=True):
            assert x.dtype == np.complex128
            np.testing.assert_allclose(np.asarray(x), y, rtol=1e-10, atol=1e-10)


def test_scanbook_jax_float64_for_every_function():
    a, b, h0 = _case(25, (3,), seed=6)
    want = reference_recurrence(a, b, h0)
    for f in (sb.jax.linear_recurrence_autodiff, sb.jax.linear_recurrence_sequential):
        h = f(a, b, h0)
        assert h.dtype == np.float64
        np.testing.assert_allclose(np.asarray(h), want, rtol=1e-10, atol=1e-10)
    rng = np.random.default_rng(7)
    A = 0.5 * rng.standard_normal((25, 3, 3))
    loop = np.zeros((25, 3))
    state = h0
    for t in range(25):
        state = A[t] @ state + b[t]
        loop[t] = state
    for f in (sb.jax.matrix_linear_recurrence, sb.jax.matrix_linear_recurrence_sequential):
        h = f(A, b, h0)
        assert h.dtype == np.float64
        np.testing.assert_allclose(np.asarray(h), loop, rtol=1e-10, atol=1e-10)
    h = sb.jax.matrix_linear_recurrence(A.astype(np.complex128), b.astype(np.complex128))
    assert h.dtype == np.complex128


def test_jax_arrays_keep_their_dtype_and_grad_still_works_in_float32():
    a, b, h0 = _case(40, (3,), seed=8)
    A, B, H0 = (jnp.asarray(x, jnp.float32) for x in (a, b, h0))

    def loss(A, B, H0):
        return jnp.sum(sb.jax.linear_recurrence(A, B, H0) ** 2)

    grad = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
    before = grad(A, B, H0)
    sb.jax.linear_recurrence(a, b, h0)  # a float64 call in between (the scoped x64 mode)
    sb.linear_recurrence_vjp(a, b, h0, a, b, backend="jax")
    after = grad(A, B, H0)
    direct = jax.grad(loss, argnums=(0, 1, 2))(A, B, H0)
    with jax.enable_x64(True):
        want = jax.grad(
            lambda a, b, h0: jnp.sum(sb.jax.linear_recurrence_sequential(a, b, h0) ** 2),
            argnums=(0, 1, 2),
        )(jnp.asarray(a, jnp.float32).astype(jnp.float64), *(jnp.asarray(x) for x in (b, h0)))
    for x, y, z, w in zip(before, after, direct, want, strict=True):
        assert x.dtype == y.dtype == z.dtype == jnp.float32
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        np.testing.assert_allclose(np.asarray(z), np.asarray(w), rtol=2e-3, atol=2e-3)
    h = sb.linear_recurrence(A, B, H0)  # auto picks jax, stays float32
    assert isinstance(h, jax.Array) and h.dtype == jnp.float32


def test_float64_dtypes_must_still_match():
    a, b, h0 = _case(5, (2,), seed=9)
    with pytest.raises(TypeError, match="h0 must have the dtype of a, float64; got float32"):
        sb.linear_recurrence(a, b, h0.astype(np.float32), backend="jax")
    with pytest.raises(TypeError, match="h0 must have the dtype of a, float64; got float32"):
        sb.jax.linear_recurrence(a, b, h0.astype(np.float32))
    with pytest.raises(TypeError, match="a and b must have the same dtype"):
        sb.jax.linear_recurrence(a.astype(np.float32), b)
    with pytest.raises(ValueError, match="h0 must have the batch shape"):  # raised in the scope
        sb.jax.linear_recurrence(a, b, np.zeros(5))


# -- B. the inputs a careless caller passes ---------------------------------------------------


@pytest.mark.parametrize("order", [">f8", ">f4", ">c16"])
def test_big_endian_arrays(order):
    a, b, h0 = _case(9, (2,), seed=10, dtype=np.dtype(order).newbyteorder("="))
    a, b, h0 = (x.astype(order) for x in (a, b, h0))
    want = reference_recurrence(a, b, h0)
    tol = 1e-5 if order == ">f4" else 1e-10
    backends = ["numpy", "numba", "jax"] + (["numba_cuda"] if order != ">c16" else [])
    for backend in backends:
        h = sb.linear_recurrence(a, b, h0, backend=backend)
        assert np.dtype(h.dtype).isnative and np.dtype(h.dtype).name == np.dtype(order).name
        np.testing.assert_allclose(np.asarray(h), want, rtol=tol, atol=tol)
    h = np.asarray(want, np.dtype(order))
    want_vjp = _vjp_reference(*(np.asarray(x) for x in (a, h0, h, b)), False)
    for backend in ("numpy", "numba", "jax"):
        got = sb.linear_recurrence_vjp(a, b, h0, h, b, backend=backend)
        for x, y in zip(got, want_vjp, strict=True):
            np.testing.assert_allclose(np.asarray(x), y, rtol=tol, atol=tol)
    np.testing.assert_allclose(np.asarray(sb.jax.linear_recurrence(a, b, h0)), want, rtol=tol)


def _overflowing_decays():
    """Decays 1e10 four times, then 1e-10 four times: the loop's state peaks at 1, but the
    product of four decays, 1e40, is beyond float32's 3.4e38."""
    a = np.where((np.arange(16) // 4) % 2 == 0, 1e10, 1e-10)[:, None]
    b = np.zeros((16, 1))
    b[0] = 1e-30
    return a, b


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_range_condition_of_the_parallel_backends():
    # |a| <= 1 and sum |b| far below 3.4e38: every backend is finite in float32
    rng = np.random.default_rng(11)
    a = rng.uniform(-1.0, 1.0, (64, 2))
    b = rng.uniform(-1e35, 1e35, (64, 2))
    want = reference_recurrence(a, b)
    for backend in ("numpy", "numba", "numba_cuda", "jax"):
        h = np.asarray(sb.linear_recurrence(a.astype("f4"), b.astype("f4"), backend=backend))
        np.testing.assert_allclose(h, want, rtol=1e-4, atol=1e31)
    # decays above 1: the loop stays finite, a product over a run does not (documented)
    a, b = _overflowing_decays()
    for reverse in (False, True):
        want = reference_recurrence(a, b, reverse=reverse)
        assert np.abs(want).max() < 2
        for backend in ("numpy", "numba"):  # serial: only h is computed
            h = sb.linear_recurrence(
                a.astype("f4"), b.astype("f4"), reverse=reverse, backend=backend
            )
            np.testing.assert_allclose(h, want, rtol=1e-5)
        for backend in ("numba_cuda", "jax"):  # parallel: the products overflow
            h = sb.linear_recurrence(
                a.astype("f4"), b.astype("f4"), reverse=reverse, backend=backend
            )
            assert not np.isfinite(np.asarray(h)).all()
            h = sb.linear_recurrence(a, b, reverse=reverse, backend=backend)  # float64 is fine
            np.testing.assert_allclose(np.asarray(h), want, rtol=1e-10)
    doc = sb.linear_recurrence.__doc__
    assert "|a| <= 1" in doc and "3.4e38" in doc and "inf or NaN" in doc


def test_jax_flushes_subnormals_and_says_so():
    for dtype, tiny in ((np.float32, 1e-40), (np.float64, 1e-310)):
        a = np.full((3, 1), 0.5, dtype)
        b = np.zeros((3, 1), dtype)
        b[0] = tiny
        assert np.asarray(sb.linear_recurrence(a, b, backend="numpy"))[0, 0] == b[0, 0]
        assert np.asarray(sb.linear_recurrence(a, b, backend="jax"))[0, 0] == 0.0
    assert "flushes them to zero" in sb.linear_recurrence.__doc__
    assert "Subnormal numbers are flushed to zero" in sb.jax.linear_recurrence.__doc__


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"a": [None] * 5}, "a must be an array of numbers; got a list of NoneType"),
        (
            {"b": [None] * 5},
            "b must be an array of numbers of dtype float64; got a list of NoneType",
        ),
        ({"b": ["0.5"] * 5}, "b must be an array of numbers of dtype float64; got a list of str"),
        ({"b": [True] * 5}, "b must be an array of numbers of dtype float64; got a list of bool"),
        ({"a": [True] * 5}, "a must be an array of numbers; got a list of bool"),
        ({"h0": True}, "h0 must be an array of numbers of dtype float64; got a bool of bool"),
        ({"h0": "0.5"}, "h0 must be an array of numbers; got str"),
        ({"b": [1.0, None, 2.0, 3.0, 4.0]}, "got a list of NoneType, float"),
    ],
)
@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_lists_of_non_numbers_are_refused(kwargs, match, backend):
    args = {"a": np.full(5, 0.9), "b": np.ones(5), **kwargs}
    with pytest.raises(TypeError, match=match.replace("(", r"\(")):
        sb.linear_recurrence(**args, backend=backend)
    if "a" not in kwargs:  # scanbook.jax takes lists as b and h0 the same way
        with pytest.raises(TypeError, match=match.split(";")[0]):
            sb.jax.linear_recurrence(**args)


def test_scanbook_jax_h0_string_names_h0():
    with pytest.raises(TypeError, match="h0 must be an array of numbers; got str"):
        sb.jax.linear_recurrence(jnp.ones((3, 2)), jnp.ones((3, 2)), h0="0.5")


def test_mixed_array_kinds_convert_in_forward_and_vjp():
    a, b, h0 = _case(12, (3,), seed=12, dtype=np.float32)
    A, B, H0 = (jnp.asarray(x) for x in (a, b, h0))
    want = reference_recurrence(a, b, h0)
    # JAX a, b with a NumPy h0: auto picks jax and converts h0 as the forward pass does
    for h in (sb.linear_recurrence(A, B, h0), sb.jax.linear_recurrence(A, B, h0)):
        assert isinstance(h, jax.Array)
        np.testing.assert_allclose(np.asarray(h), want, rtol=1e-5, atol=1e-5)
    # JAX arrays to a host backend: the forward pass and the VJP both take them
    h = sb.linear_recurrence(A, B, H0, backend="numba")
    assert isinstance(h, np.ndarray)
    want_vjp = _vjp_reference(*(x.astype(np.float64) for x in (a, h0, want, b)), False)
    for backend in ("numba", "numpy"):
        got = sb.linear_recurrence_vjp(A, B, H0, jnp.asarray(h), B, backend=backend)
        for x, y in zip(got, want_vjp, strict=True):
            assert isinstance(x, np.ndarray)
            np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-4)
    # JAX a, b with NumPy h0, h and g on the jax backend
    got = sb.linear_recurrence_vjp(A, B, h0, np.asarray(h), b)
    for x, y in zip(got, want_vjp, strict=True):
        assert isinstance(x, jax.Array)
        np.testing.assert_allclose(np.asarray(x), y, rtol=1e-4, atol=1e-4)
    # and the dtype rule still holds after conversion
    with pytest.raises(TypeError, match="g must have the dtype of a, float32; got float64"):
        sb.linear_recurrence_vjp(A, B, None, h, b.astype(np.float64), backend="numba")


@pytest.mark.parametrize("exclusive", ["no", None, 1, 0.0])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_exclusive_must_be_a_bool(exclusive, algorithm):
    with pytest.raises(TypeError, match=f"exclusive must be True or False; got {exclusive!r}"):
        sb.scan(ops.add, np.ones(4), algorithm=algorithm, exclusive=exclusive)


@pytest.mark.parametrize(
    "xs, match",
    [
        (np.array(["a", "b", "c"]), "xs must be an array of numbers; got dtype <U1"),
        (np.array([object(), 1], dtype=object), "xs must be an array of numbers; got dtype object"),
        (np.array(["2020-01-01"] * 3, "datetime64[D]"), "got dtype datetime64"),
        (np.array([True, False, True]), "ops.add needs numbers, not booleans"),
    ],
)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_scan_refuses_non_numeric_dtypes(xs, match, algorithm):
    with pytest.raises(TypeError, match=match):
        sb.scan(ops.add, xs, algorithm=algorithm)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_affine_pairs_of_different_shapes_one_rule(algorithm):
    for a_shape, b_shape in (((4, 3), (4, 2)), ((4, 1), (4, 2)), ((4,), (4, 2))):
        with pytest.raises(
            ValueError, match=rf"a and b must have the same shape; got \({a_shape[0]},"
        ):
            sb.scan(ops.affine, (np.ones(a_shape), np.ones(b_shape)), algorithm=algorithm)
    with pytest.raises(TypeError, match="ops.affine needs numbers, not booleans; got a"):
        sb.scan(ops.affine, (np.ones(3, bool), np.ones(3)), algorithm=algorithm)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("exclusive", [False, True])
def test_maximum_on_bool_is_any_so_far_for_every_algorithm(algorithm, exclusive):
    x = np.random.default_rng(13).uniform(size=21) < 0.2
    want = np.logical_or.accumulate(x)
    if exclusive:
        want = np.concatenate([[False], want[:-1]])
    got = sb.scan(ops.maximum, x, algorithm=algorithm, exclusive=exclusive)
    assert got.dtype == np.bool_
    np.testing.assert_array_equal(got, want)


def test_check_associative():
    rng = np.random.default_rng(14)
    x = rng.standard_normal(50)
    a, b = rng.uniform(0.5, 1.0, 50), rng.standard_normal(50)
    A, v = 0.5 * rng.standard_normal((20, 3, 3)), rng.standard_normal((20, 3))
    assert ops.check_associative(ops.add, x)
    assert ops.check_associative(ops.add, np.arange(50))
    assert ops.check_associative(ops.maximum, x)
    assert ops.check_associative(ops.maximum, x > 0)
    assert ops.check_associative(ops.affine, (a, b))
    assert ops.check_associative(ops.matrix_affine, (A, v))
    assert ops.check_associative(ops.add, np.zeros(0))
    subtract = ops.Operator("subtract", lambda x, y: x - y, ops.add.identity, "-")
    average = ops.Operator("average", lambda x, y: (x + y) / 2, ops.add.identity, "avg")
    for op in (subtract, average):
        assert not ops.check_associative(op, x)
        assert not ops.check_associative(op, x, samples=5)
        results = [sb.scan(op, x, algorithm=alg) for alg in ALGORITHMS]
        assert not all(np.allclose(results[0], r) for r in results[1:])
    assert "check_associative" in ops.Operator.__doc__
    assert "*different* answer" in ops.Operator.__doc__
    with pytest.raises(ValueError, match="samples must be a positive integer; got 0"):
        ops.check_associative(ops.add, x, samples=0)
    with pytest.raises(TypeError, match="op must be a scanbook.ops.Operator"):
        ops.check_associative(np.add, x)


def test_raw_numpy_messages_now_name_the_argument():
    with pytest.raises(
        TypeError, match=r"algorithm must be a string, one of .*got list \['serial'\]"
    ):
        sb.scan(ops.add, np.ones(3), algorithm=["serial"])
    with pytest.raises(TypeError, match="xs must be an array of numbers of one shape"):
        sb.scan(ops.add, [[1, 2], [3]])
    with pytest.raises(TypeError, match="a must be an array of numbers of one shape"):
        sb.scan(ops.affine, ([[1, 2], [3]], [1, 2]))
    with pytest.raises(TypeError, match="a must be an array of numbers of one shape"):
        sb.linear_recurrence([[1.0, 2.0], [3.0]], [[1.0, 2.0], [3.0]])
    for alg in ALGORITHMS:
        with pytest.raises(ValueError, match=r"b must have shape \(n, \*batch, k\) = \(4, 3\)"):
            sb.scan(ops.matrix_affine, (np.ones((4, 3, 3)), np.ones((4, 2))), algorithm=alg)
        with pytest.raises(ValueError, match=r"A must have shape \(n, \*batch, k, k\)"):
            sb.scan(ops.matrix_affine, (np.ones((4, 3, 2)), np.ones((4, 3))), algorithm=alg)
    # a batch of matrix recurrences is one shape rule too, and works for every algorithm
    rng = np.random.default_rng(15)
    A, v = 0.5 * rng.standard_normal((9, 2, 3, 3)), rng.standard_normal((9, 2, 3))
    want = sb.scan(ops.matrix_affine, (A, v))
    for alg in ALGORITHMS[1:]:
        got = sb.scan(ops.matrix_affine, (A, v), algorithm=alg)
        for x, y in zip(got, want, strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12)
    assert algorithms.chunked(ops.add, [1, 2, 3]).tolist() == [1, 3, 6]

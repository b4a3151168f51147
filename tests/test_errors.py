"""Bad input gets a clear error naming the argument, what was expected and what was given."""

import re

import numpy as np
import pytest
import scanbook as sb
from conftest import reference_recurrence
from scanbook import algorithms, ops


@pytest.fixture
def ab(rng):
    return rng.uniform(0.5, 1, (6, 3)), rng.standard_normal((6, 3))


def test_shape_mismatch_between_a_and_b(ab):
    a, b = ab
    with pytest.raises(
        ValueError, match=r"a and b must have the same shape.*\(6, 3\) and \(6, 2\)"
    ):
        sb.linear_recurrence(a, b[:, :2])


def test_h0_with_wrong_shape(ab):
    a, b = ab
    with pytest.raises(ValueError, match=r"h0 must have the batch shape of a, \(3,\); got \(4,\)"):
        sb.linear_recurrence(a, b, np.zeros(4))


def test_scalar_input_has_no_time_axis():
    with pytest.raises(ValueError, match="a must have a leading time axis"):
        sb.linear_recurrence(np.float64(0.5), np.float64(1.0))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_, np.float16])
def test_wrong_dtype(ab, dtype):
    a, b = ab
    with pytest.raises(
        TypeError, match=rf"a must have dtype float32, float64.*got {np.dtype(dtype).name}"
    ):
        sb.linear_recurrence(a.astype(dtype), b.astype(dtype))


def test_mismatched_dtypes(ab):
    a, b = ab
    with pytest.raises(
        TypeError, match="a and b must have the same dtype; got float32 and float64"
    ):
        sb.linear_recurrence(a.astype(np.float32), b)
    with pytest.raises(TypeError, match="h0 must have the dtype of a, float64; got float32"):
        sb.linear_recurrence(a, b, np.zeros(3, np.float32))


def test_unknown_backend(ab):
    a, b = ab
    with pytest.raises(ValueError, match=r"backend must be 'auto' or one of .*got 'tpu'"):
        sb.linear_recurrence(a, b, backend="tpu")
    with pytest.raises(TypeError, match="backend must be a string"):
        sb.linear_recurrence(a, b, backend=3)


def test_unavailable_backend_says_what_is_available(ab, monkeypatch):
    # as on a machine without a GPU, whatever this one has
    monkeypatch.setattr(sb.backends, "available_backends", lambda: ["numpy", "numba"])
    a, b = ab
    with pytest.raises(
        ValueError, match=r"backend 'cupy' is not available on this machine; available: \["
    ):
        sb.linear_recurrence(a, b, backend="cupy")


def test_reverse_must_be_bool(ab):
    a, b = ab
    with pytest.raises(TypeError, match="reverse must be True or False; got 'yes'"):
        sb.linear_recurrence(a, b, reverse="yes")


def test_object_input():
    with pytest.raises(TypeError, match="a must be an array of numbers"):
        sb.linear_recurrence([object()], [1.0])


def test_vjp_checks_h_and_g(ab):
    a, b = ab
    h = sb.linear_recurrence(a, b)
    with pytest.raises(ValueError, match=r"g must have the shape of a, \(6, 3\); got \(5, 3\)"):
        sb.linear_recurrence_vjp(a, b, None, h, h[:5])
    with pytest.raises(TypeError, match="h must have the dtype of a, float64; got float32"):
        sb.linear_recurrence_vjp(a, b, None, h.astype(np.float32), h)
    with pytest.raises(TypeError, match="g must be an array"):
        sb.linear_recurrence_vjp(a, b, None, h, [1.0])


def test_scan_errors():
    with pytest.raises(ValueError, match=r"algorithm must be one of .*got 'bogus'"):
        sb.scan(ops.add, np.ones(3), algorithm="bogus")
    with pytest.raises(TypeError, match="op must be a scanbook.ops.Operator"):
        sb.scan(lambda x, y: x + y, np.ones(3))
    with pytest.raises(TypeError, match=r"ops.affine scans pairs \(a, b\)"):
        sb.scan(ops.affine, np.ones(3))
    with pytest.raises(ValueError, match="a and b must have the same length; got 3 and 2"):
        sb.scan(ops.affine, (np.ones(3), np.ones(2)))
    with pytest.raises(ValueError, match="xs must have a leading"):
        sb.scan(ops.add, np.float64(1.0))
    with pytest.raises(ValueError, match="n_chunks must be a positive integer or None; got 0"):
        algorithms.chunked(ops.add, np.ones(4), n_chunks=0)
    with pytest.raises(ValueError, match="trace is recorded by the parallel algorithms"):
        sb.scan(ops.add, np.ones(3), trace=algorithms.Trace())


@pytest.mark.parametrize(
    "bad, name",
    [
        ({"b": None}, "b must be an array of numbers; got NoneType"),
        ({"h0": "abc"}, "h0 must be an array of numbers; got str"),
        ({"h0": [1j, 2j, 3j]}, "h0 must be an array of numbers of dtype float64"),
        (
            {"b": [[1.0, 2.0, 3.0]] * 5 + [[1.0]]},
            "b must be an array of numbers of dtype float64 of one shape",
        ),
    ],
)
def test_unconvertible_inputs_name_the_argument(ab, bad, name):
    a, b = ab
    kwargs = {"a": a, "b": b, **bad}
    with pytest.raises(TypeError, match=re.escape(name)):
        sb.linear_recurrence(**kwargs)


def test_vjp_reverse_must_be_bool(ab):
    a, b = ab
    h = sb.linear_recurrence(a, b)
    with pytest.raises(TypeError, match="reverse must be True or False; got 'no'"):
        sb.linear_recurrence_vjp(a, b, None, h, h, reverse="no")


def test_jax_backend_computes_float64_without_touching_x64(ab):
    import jax

    a, b = ab
    if jax.config.jax_enable_x64:  # pragma: no cover - the suite runs with x64 off
        pytest.fail("this test expects JAX's default 32-bit mode")
    h = sb.linear_recurrence(a, b, backend="jax")
    assert h.dtype == np.float64 and not jax.config.jax_enable_x64
    np.testing.assert_allclose(np.asarray(h), reference_recurrence(a, b), rtol=1e-12)
    h = sb.linear_recurrence(a.astype(np.float32), b.astype(np.float32), backend="jax")
    assert h.dtype == np.float32
    np.testing.assert_allclose(h, reference_recurrence(a, b), rtol=1e-5, atol=1e-5)


def test_jax_arrays_to_a_host_backend_come_back_as_numpy(ab):
    import jax.numpy as jnp

    a, b = (jnp.asarray(x, dtype=jnp.float32) for x in ab)
    h = sb.linear_recurrence(a, b, backend="numba")
    assert isinstance(h, np.ndarray) and h.dtype == np.float32
    np.testing.assert_allclose(h, sb.linear_recurrence(np.asarray(a), np.asarray(b)), rtol=1e-6)


@pytest.mark.parametrize("n_chunks", [0, -1, 2.5, "3", True])
def test_chunked_checks_n_chunks_even_for_empty_input(n_chunks):
    for n in (0, 5):
        with pytest.raises(ValueError, match="n_chunks must be a positive integer or None"):
            algorithms.chunked(ops.add, np.ones(n), n_chunks=n_chunks)


def test_planned_modules_say_so(monkeypatch):
    monkeypatch.setitem(sb._LATER, "hyperscan", 11)  # a chapter module that does not exist
    assert not hasattr(sb, "hyperscan")
    with pytest.raises(AttributeError, match="chapter 11, which is not written yet"):
        sb.hyperscan  # noqa: B018
    assert sb.deer.solve  # a later chapter's module that exists loads on first use
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        sb.nonsense  # noqa: B018

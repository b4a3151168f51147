"""The public linear recurrence and its vector-Jacobian product, dispatched to a backend.

Defined in chapter 1 (the recurrence as a scan), chapter 3-4 (the GPU backends) and
chapter 5 (the gradient).

``h[t] = a[t] * h[t-1] + b[t]`` with ``h[-1] = h0`` (forward), or
``h[t] = a[t] * h[t+1] + b[t]`` with ``h[T] = h0`` (``reverse=True``), elementwise over any
batch shape: ``a`` and ``b`` have shape ``(T, *batch)``, ``h0`` shape ``batch``.

Every backend implements one function over 2-D, C-contiguous arrays,
``forward(a, b, h0, reverse) -> h`` with ``a, b, h`` of shape ``(T, C)``, ``T >= 1``,
``C >= 1``, and ``h0`` of shape ``(C,)`` (never None). This module does the checking, the
reshaping and the empty cases once, for all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import backends as _backends
from . import serial as _serial

__all__ = ["linear_recurrence", "linear_recurrence_vjp", "BACKENDS", "Array"]

Array = Any  # a NumPy, CuPy or JAX array (or, for NumPy backends, anything np.asarray takes)

_FLOAT_DTYPES = (np.float32, np.float64)
_COMPLEX_DTYPES = (np.complex64, np.complex128)


def _numba_cuda(a, b, h0, reverse):
    from .kernels import numba_cuda

    return numba_cuda.linear_recurrence(a, b, h0, reverse=reverse)


def _cupy(a, b, h0, reverse):
    from .kernels import cupy_raw

    return cupy_raw.linear_recurrence(a, b, h0, reverse=reverse)


def _jax(a, b, h0, reverse):
    from . import jax as _sbjax

    return _sbjax.linear_recurrence(a, b, h0, reverse=reverse)


BACKENDS: dict[str, Callable] = {
    "numpy": _serial.linear_recurrence_numpy,
    "numba": _serial.linear_recurrence_numba,
    "numba_cuda": _numba_cuda,
    "cupy": _cupy,
    "jax": _jax,
}

# which kind of array each backend takes and returns
_ARRAY_KIND = {
    "numpy": "numpy",
    "numba": "numpy",
    "numba_cuda": "numpy",
    "cupy": "cupy",
    "jax": "jax",
}
# backends whose kernels are written for real floating point only
_REAL_ONLY = {"numba_cuda", "cupy"}


def _array_kind(x) -> str:
    mod = type(x).__module__.split(".")[0]
    if mod == "cupy":
        return "cupy"
    if mod in ("jax", "jaxlib"):
        return "jax"
    return "numpy"


def _xp(kind: str):
    if kind == "cupy":
        import cupy

        return cupy
    if kind == "jax":
        import jax.numpy as jnp

        return jnp
    return np


def _choose_backend(backend: str, kind: str) -> str:
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a string; got {type(backend).__name__}")
    if backend == "auto":
        if kind == "cupy":
            return "cupy"
        if kind == "jax":
            return "jax"
        return "numba" if "numba" in _backends.available_backends() else "numpy"
    if backend not in BACKENDS:
        raise ValueError(f"backend must be 'auto' or one of {sorted(BACKENDS)}; got {backend!r}")
    if backend not in _backends.available_backends():
        raise ValueError(
            f"backend {backend!r} is not available on this machine; "
            f"available: {_backends.available_backends()}"
        )
    want = _ARRAY_KIND[backend]
    if want == "cupy" and kind != "cupy":
        raise TypeError(
            f"backend 'cupy' needs cupy arrays on the GPU (cupy.asarray(a)); got {kind} arrays"
        )
    return backend


def _check_dtype(name: str, x, backend: str) -> None:
    dt = np.dtype(x.dtype)
    allowed = _FLOAT_DTYPES if backend in _REAL_ONLY else _FLOAT_DTYPES + _COMPLEX_DTYPES
    if dt.type not in allowed:
        names = ", ".join(np.dtype(t).name for t in allowed)
        raise TypeError(f"{name} must have dtype {names} for backend {backend!r}; got {dt.name}")


def _describe(x, arr: np.ndarray) -> str:
    """What a non-numeric list holds, for an error message: ``"a list of str"``."""
    if arr.dtype == object:
        kinds = sorted({type(v).__name__ for v in arr.ravel()[:1000]})
        what = ", ".join(kinds) or "objects"
    elif arr.dtype.kind in "US":
        what = "str"
    else:
        what = arr.dtype.name
    return f"a {type(x).__name__} of {what}"


def _numbers(name: str, x, dtype=None) -> np.ndarray:
    """A Python number or (nested) list as a NumPy array of numbers, of ``dtype`` if given.

    Only numbers (int, float, complex) are accepted: ``None``, strings and booleans are
    refused with a TypeError naming the argument, rather than read as NaN, parsed, or taken
    as 0 and 1. Shared by :mod:`scanbook.jax`.
    """
    if x is None or isinstance(x, str | bytes | dict | set):
        raise TypeError(f"{name} must be an array of numbers; got {type(x).__name__}")
    expected = "an array of numbers" + ("" if dtype is None else f" of dtype {np.dtype(dtype)}")
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as err:  # a ragged list
        raise TypeError(f"{name} must be {expected} of one shape; got {x!r:.60} ({err})") from err
    if arr.dtype.kind not in "iufc":
        raise TypeError(f"{name} must be {expected}; got {_describe(x, arr)}")
    if dtype is not None:
        if not np.can_cast(arr.dtype, dtype, casting="same_kind"):
            raise TypeError(f"{name} must be {expected}; got {arr.dtype} values")
        arr = arr.astype(dtype)
    return arr


def _native(x):
    """Big-endian NumPy arrays (``'>f8'``) in native byte order; everything else unchanged."""
    if isinstance(x, np.ndarray | np.generic) and not x.dtype.isnative:
        return np.asarray(x).astype(x.dtype.newbyteorder("="))
    return x


def _as_array(name: str, x, kind: str, like=None):
    """Arrays pass through; Python numbers and lists become arrays (of ``like``'s dtype)."""
    if hasattr(x, "dtype") and hasattr(x, "shape"):
        return _native(x)
    arr = _numbers(name, x, None if like is None else np.dtype(like.dtype))
    return _to_kind(arr, kind)


def _to_kind(x, kind: str):
    """Move a NumPy or JAX array to ``kind`` (``"numpy"`` or ``"jax"``), as that kind converts."""
    if kind == "numpy":
        return np.asarray(x)
    if kind == "jax":
        import jax.numpy as jnp

        return jnp.asarray(x)
    return x


def _convert(name: str, x, kind: str, lead: str, like):
    """``h0``, ``h`` or ``g`` brought to the kind of array the computation uses.

    NumPy and JAX arrays convert into each other as the forward pass converts ``a`` and
    ``b``; CuPy arrays never move between host and device implicitly.
    """
    if not (hasattr(x, "dtype") and hasattr(x, "shape")):
        return _to_kind(_numbers(name, x, np.dtype(like.dtype)), kind)
    x = _native(x)
    have = _array_kind(x)
    if have == kind:
        return x
    if "cupy" in (have, kind):
        raise TypeError(f"{name} must be the same kind of array as {lead} ({kind}); got {have}")
    return _to_kind(x, kind)


def _check_reverse(reverse) -> None:
    if not isinstance(reverse, bool | np.bool_):
        raise TypeError(f"reverse must be True or False; got {reverse!r}")


def _prepare(a, b, h0, backend: str, *, names=("a", "b", "h0")):
    """Validate and bring inputs to the backend form: 2-D ``(T, C)``, contiguous, ``h0`` filled.

    ``kind`` in the result is the kind of array the backend is handed (NumPy for the host
    backends and for NumPy inputs to ``jax``, which computes them at their own precision).
    """
    na, nb, nh = names
    kind = _array_kind(a) if hasattr(a, "dtype") else _array_kind(b)
    a = _as_array(na, a, kind)
    b = _as_array(nb, b, kind, like=a if not hasattr(b, "dtype") else None)
    if _array_kind(a) != _array_kind(b):
        raise TypeError(
            f"{na} and {nb} must be the same kind of array; "
            f"got {_array_kind(a)} and {_array_kind(b)}"
        )
    backend = _choose_backend(backend, kind)
    if kind == "jax" and _ARRAY_KIND[backend] == "numpy":  # a host backend chosen by name
        a, b, kind = np.asarray(a), np.asarray(b), "numpy"
    _check_dtype(na, a, backend)
    _check_dtype(nb, b, backend)
    if a.dtype != b.dtype:
        raise TypeError(f"{na} and {nb} must have the same dtype; got {a.dtype} and {b.dtype}")
    if a.ndim < 1:
        raise ValueError(f"{na} must have a leading time axis, shape (T, *batch); got shape ()")
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(
            f"{na} and {nb} must have the same shape (T, *batch); "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    batch = tuple(a.shape[1:])
    if h0 is None:
        if backend != "jax":  # (jax makes its zeros at the precision it computes in)
            h0 = _xp(kind).zeros(batch, dtype=a.dtype)
    else:
        h0 = _convert(nh, h0, kind, na, like=a)
        if tuple(h0.shape) != batch:
            raise ValueError(
                f"{nh} must have the batch shape of {na}, {batch}; got {tuple(h0.shape)}"
            )
        if h0.dtype != a.dtype:
            raise TypeError(f"{nh} must have the dtype of {na}, {a.dtype}; got {h0.dtype}")
    return a, b, h0, backend, kind, batch


def _to_2d(x, kind, T, C):
    x = x.reshape(T, C)
    if kind == "numpy":
        return np.ascontiguousarray(x)
    if kind == "cupy":
        import cupy

        return cupy.ascontiguousarray(x)
    return x


def linear_recurrence(
    a: Array, b: Array, h0: Array | None = None, *, reverse: bool = False, backend: str = "auto"
) -> Array:
    """Compute ``h[t] = a[t] * h[t-1] + b[t]`` for all ``t`` (a first-order linear recurrence).

    Args:
        a: decays, shape ``(T, *batch)``, float32 or float64 (complex too on CPU backends).
            NumPy arrays of either byte order; lists and numbers of int, float or complex
            (not bool, str or None).
        b: inputs, same shape and dtype as ``a`` (a list takes ``a``'s dtype).
        h0: the initial state, shape ``batch``; None means zeros. Forward it is ``h[-1]``;
            with ``reverse=True`` it is ``h[T]``. A NumPy ``h0`` with JAX ``a`` and ``b`` (or
            the reverse, for a host backend) is converted the way ``a`` and ``b`` are.
        reverse: run from the end: ``h[t] = a[t] * h[t+1] + b[t]``.
        backend: ``"auto"`` (from the array type and hardware) or one of
            :func:`scanbook.available_backends`.

    Returns:
        ``h`` with the shape and dtype of ``b``, as an array of the backend's kind (NumPy for
        ``numpy``, ``numba`` and ``numba_cuda``; CuPy for ``cupy``; JAX for ``jax``).
        ``T = 0`` gives an empty ``(0, *batch)`` array. NaN in the inputs propagates as in
        the plain loop. Infinity does on the serial backends; the parallel ones (``numba_cuda``,
        ``cupy``, ``jax``) reassociate the products, and where the loop computes
        ``inf * (x + y)`` a scan may compute ``inf * x + inf * y``, which is NaN when the signs
        differ.

    Precision on the ``jax`` backend: arrays keep their dtype. NumPy float64 (complex128)
    inputs are computed under a scoped ``jax.enable_x64`` and come back as float64 JAX
    arrays, whatever JAX's global x64 flag says (the flag itself is never changed); JAX
    arrays follow JAX's mode (see :mod:`scanbook.jax`). Further JAX arithmetic on a float64
    result outside x64 mode is done in float32 by JAX; ``np.asarray(h)`` keeps float64.

    Range. The serial backends (``numpy``, ``numba``) compute only ``h``, and are finite
    wherever the loop is. The parallel ones (``numba_cuda``, ``cupy``, ``jax``) also compute,
    over runs of consecutive steps ``s..t`` that the algorithm chooses, the product of decays
    ``P = a[s] * ... * a[t]``, the state ``R`` the recurrence reaches from zero over the run,
    and ``P`` times the state before the run. Their results are finite exactly where those
    values are within the dtype's range (float32: ``|x| < 3.4e38``; float64: ``1.8e308``).
    With ``|a| <= 1`` everywhere (every stable recurrence) ``|P| <= 1`` and
    ``|R| <= sum |b|``, so float32 is safe while ``|h0| + sum |b| < 3.4e38``. With decays
    above 1 a product over a run can overflow while the loop stays finite (its state falls
    again before it gets that large): those backends then return inf or NaN. Use float64,
    or a serial backend, for such data.

    Subnormal numbers (float32 below ``1.2e-38``, float64 below ``2.2e-308``): the ``jax``
    backend flushes them to zero, as XLA's compiled code does (on CPU at both precisions); the
    other backends keep them.

    Raises:
        ValueError: a shape mismatch, an unknown or unavailable backend.
        TypeError: a non-floating or mismatched dtype, the wrong kind of array for the backend
            (CuPy with host arrays), lists of anything but numbers.

    Defined in chapter 1 (as a scan over affine maps); backends in chapters 1, 3 and 4.
    """
    _check_reverse(reverse)
    a, b, h0, backend, kind, batch = _prepare(a, b, h0, backend)
    if backend == "jax":  # JAX arrays back, NumPy float64 computed in a scoped x64 mode
        return BACKENDS["jax"](a, b, h0, bool(reverse))
    T = a.shape[0]
    C = int(np.prod(batch, dtype=np.int64))
    if T == 0 or C == 0:
        return _xp(kind).zeros(tuple(a.shape), dtype=a.dtype)
    h = BACKENDS[backend](
        _to_2d(a, kind, T, C), _to_2d(b, kind, T, C), _to_2d(h0, kind, 1, C)[0], bool(reverse)
    )
    return h.reshape(tuple(a.shape))


def linear_recurrence_vjp(
    a: Array,
    b: Array,
    h0: Array | None,
    h: Array,
    g: Array,
    *,
    reverse: bool = False,
    backend: str = "auto",
) -> tuple[Array, Array, Array]:
    """Gradients of a loss through ``h = linear_recurrence(a, b, h0, reverse=reverse)``.

    Given ``g = dL/dh`` (shape of ``h``), returns ``(da, db, dh0)``. The gradient is itself a
    linear recurrence run the other way, with the decays shifted by one step:

    * forward: ``db[t] = g[t] + a[t+1] * db[t+1]`` (``db[T-1] = g[T-1]``),
      ``da[t] = db[t] * h[t-1]`` (``h[-1] = h0``), ``dh0 = a[0] * db[0]``;
    * reverse: ``db[t] = g[t] + a[t-1] * db[t-1]``, ``da[t] = db[t] * h[t+1]``
      (``h[T] = h0``), ``dh0 = a[T-1] * db[T-1]``.

    So one call of the same backend's recurrence computes it: no autodiff through the scan.
    (The ``numba`` backend runs the same equations fused into a single loop,
    :func:`scanbook.serial.linear_recurrence_vjp_numba`, and the ``cupy`` backend into one
    single-pass kernel, :func:`scanbook.kernels.cupy_raw.linear_recurrence_vjp`, to read
    memory once.)
    ``h0=None`` means zeros, and ``dh0`` is still returned (the gradient at a zero state).

    Defined in chapter 5.
    """
    _check_reverse(reverse)
    a, b, h0, backend, kind, batch = _prepare(a, b, h0, backend)
    checked = []
    for name, x in (("h", h), ("g", g)):
        if not (hasattr(x, "shape") and hasattr(x, "dtype")):
            raise TypeError(
                f"{name} must be an array of shape {tuple(a.shape)}; got {type(x).__name__}"
            )
        x = _convert(name, x, kind, "a", like=a)
        if tuple(x.shape) != tuple(a.shape):
            raise ValueError(
                f"{name} must have the shape of a, {tuple(a.shape)}; got {tuple(x.shape)}"
            )
        if x.dtype != a.dtype:
            raise TypeError(f"{name} must have the dtype of a, {a.dtype}; got {x.dtype}")
        checked.append(x)
    h, g = checked
    if backend == "jax":  # the custom VJP's own rule, at the forward pass's precision
        from . import jax as _sbjax

        return _sbjax._linear_recurrence_vjp(a, b, h0, h, g, reverse=bool(reverse))
    xp = _xp(kind)
    T = a.shape[0]
    if T == 0:
        return xp.zeros(a.shape, a.dtype), xp.zeros(a.shape, a.dtype), xp.zeros(batch, a.dtype)
    if backend == "numba":  # the same equations, fused into one pass over memory
        C = int(np.prod(batch, dtype=np.int64))
        a2, h2, g2 = (_to_2d(x, kind, T, C) for x in (a, h, g))
        da, db, dh0 = _serial.linear_recurrence_vjp_numba(
            a2, _to_2d(h0, kind, 1, C)[0], h2, g2, bool(reverse)
        )
        return da.reshape(a.shape), db.reshape(a.shape), dh0.reshape(batch)
    if backend == "cupy":  # the same, fused into one single-pass kernel (chapter 4's)
        from .kernels import cupy_raw

        C = int(np.prod(batch, dtype=np.int64))
        a2, h2, g2 = (_to_2d(x, kind, T, C) for x in (a, h, g))  # (b is not needed)
        da, db, dh0 = cupy_raw.linear_recurrence_vjp(
            a2, None, _to_2d(h0, kind, 1, C)[0], h2, g2, reverse=bool(reverse)
        )
        return da.reshape(a.shape), db.reshape(a.shape), dh0.reshape(batch)
    one = xp.zeros((1,) + batch, dtype=a.dtype)
    if not reverse:
        a_next = xp.concatenate([a[1:], one])  # coefficient a[t+1]; the last never used
        db = linear_recurrence(a_next, g, None, reverse=True, backend=backend)
        h_prev = xp.concatenate([h0[None], h[:-1]])
        return db * h_prev, db, a[0] * db[0]
    a_prev = xp.concatenate([one, a[:-1]])  # coefficient a[t-1]
    db = linear_recurrence(a_prev, g, None, reverse=False, backend=backend)
    h_next = xp.concatenate([h[1:], h0[None]])
    return db * h_next, db, a[T - 1] * db[T - 1]

"""Differentiable linear recurrences in JAX, with the backward pass written by hand.

Defined in chapter 5.

The forward pass is a parallel scan over affine maps (``jax.lax.associative_scan``), as in
chapters 1 and 2. Left to itself, ``jax.grad`` would differentiate *through* that scan: it
would store the intermediate results of every level of the scan tree and run their
derivatives backwards. Chapter 5 derives something much better: the gradient of a linear
recurrence is another linear recurrence, run in the opposite direction with the decays
shifted by one step,

* ``db[t] = g[t] + a[t+1] * db[t+1]`` (so ``dL/db = dL/dh`` after the recurrence),
* ``da[t] = db[t] * h[t-1]``, ``dh0 = a[0] * db[0]``,

so the backward pass is one more scan of the same kind and stores only ``a``, ``h0`` and
``h``. :func:`linear_recurrence` installs exactly that rule with ``jax.custom_vjp``;
:func:`matrix_linear_recurrence` does the same for matrix coefficients (used by DEER in
chapter 9). :func:`linear_recurrence_autodiff` (autodiff straight through the scan) and
:func:`linear_recurrence_sequential` (the plain ``lax.scan`` loop) are kept for comparison
and testing.

Precision, one rule for every function here and for ``scanbook.linear_recurrence(...,
backend="jax")`` and its VJP: arrays keep the dtype they have. NumPy float64 or complex128
data (``a`` and ``b``, or ``A`` and ``b``) is computed under a scoped ``jax.enable_x64`` and
comes back as float64 (complex128), without touching JAX's global flag. JAX arrays keep
their dtype; NumPy arguments mixed with them are converted as ``jnp.asarray`` converts them
(float64 to float32 while x64 is off). Inside ``jit``, ``grad`` or ``vmap`` the mode of the
surrounding computation applies. Subnormal numbers are flushed to zero, as XLA's compiled
code does (on CPU, at both precisions); the NumPy and Numba backends keep them.

Inside this module ``import jax`` means the real JAX: absolute imports never pick up this
file, even though it is also called ``jax``.
"""

from __future__ import annotations

import contextlib
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "linear_recurrence",
    "linear_recurrence_autodiff",
    "linear_recurrence_sequential",
    "matrix_linear_recurrence",
    "matrix_linear_recurrence_sequential",
]


# -- input checking (runs at trace time: shapes and dtypes are static) ------------------------

_WIDE = ("float64", "complex128")


def _tracing() -> bool:
    """True inside ``jax.jit``, ``jax.grad``, ``jax.vmap`` ... (where JAX's own mode applies)."""
    try:
        from jax._src import core as _core

        return not _core.trace_state_clean()
    except (ImportError, AttributeError):  # pragma: no cover - a JAX without this helper
        return False


def _precision(lead, *others):
    """The context to compute in: a scoped ``jax.enable_x64(True)``, or nothing.

    The rule, one for every function of this module and for ``scanbook.linear_recurrence(...,
    backend="jax")`` and its VJP: arrays keep the dtype they have, and the data (``lead``:
    ``(a, b)`` or ``(A, b)``) decides.

    * ``a`` and ``b`` NumPy arrays (or lists): every argument keeps its dtype. If one of them
      is 64-bit (float64, complex128), the computation runs under a scoped x64 mode and
      returns 64 bits; a mismatch (float64 ``a`` with a float32 ``h0``) is a TypeError.
    * ``a`` or ``b`` a JAX array: JAX's own mode decides, and NumPy arguments are converted
      as ``jnp.asarray`` converts them (float64 to float32 while x64 is off). A JAX array is
      only 64-bit if it was made in x64 mode; it then stays 64-bit.
    * inside a traced function (``jit``, ``grad``, ``vmap``) the mode of the surrounding
      computation applies.

    JAX's global flag is never changed.
    """
    if jax.config.jax_enable_x64 or _tracing():
        return contextlib.nullcontext()
    args = [x for x in (*lead, *others) if hasattr(x, "dtype") and hasattr(x, "shape")]
    if any(isinstance(x, jax.Array) for x in lead):
        args = [x for x in args if isinstance(x, jax.Array)]
    if any(np.dtype(x.dtype).name in _WIDE for x in args):
        return jax.enable_x64(True)
    return contextlib.nullcontext()


def _as_jax(name: str, x, like=None) -> jax.Array:
    """Arrays become JAX arrays; Python numbers and lists take ``like``'s dtype."""
    if hasattr(x, "dtype") and hasattr(x, "shape"):
        if isinstance(x, np.ndarray) and not x.dtype.isnative:  # JAX has no big-endian arrays
            x = x.astype(x.dtype.newbyteorder("="))
        return jnp.asarray(x)
    from .recurrence import _numbers

    return jnp.asarray(_numbers(name, x, None if like is None else np.dtype(like.dtype)))


_DTYPES = ("float32", "float64", "complex64", "complex128")


def _check_dtype(name: str, x) -> None:
    if np.dtype(x.dtype).name not in _DTYPES:
        raise TypeError(
            f"{name} must have dtype float32, float64, complex64 or complex128; got {x.dtype}"
        )


def _check_reverse(reverse) -> bool:
    if not isinstance(reverse, bool | np.bool_):
        raise TypeError(
            f"reverse must be a Python bool (a static argument, not a traced value); "
            f"got {type(reverse).__name__}"
        )
    return bool(reverse)


def _prepare(a, b, h0):
    """Validate ``a``, ``b`` of shape ``(T, *batch)`` and ``h0`` of shape ``batch`` (or None)."""
    a = _as_jax("a", a)
    b = _as_jax("b", b, like=a)
    _check_dtype("a", a)
    _check_dtype("b", b)
    if a.dtype != b.dtype:
        raise TypeError(f"a and b must have the same dtype; got {a.dtype} and {b.dtype}")
    if a.ndim < 1:
        raise ValueError("a must have a leading time axis, shape (T, *batch); got shape ()")
    if a.shape != b.shape:
        raise ValueError(
            f"a and b must have the same shape (T, *batch); got {a.shape} and {b.shape}"
        )
    batch = a.shape[1:]
    if h0 is None:
        h0 = jnp.zeros(batch, dtype=a.dtype)
    else:
        h0 = _as_jax("h0", h0, like=a)
        if h0.shape != batch:
            raise ValueError(f"h0 must have the batch shape of a, {batch}; got {h0.shape}")
        if h0.dtype != a.dtype:
            raise TypeError(f"h0 must have the dtype of a, {a.dtype}; got {h0.dtype}")
    return a, b, h0


# -- the scalar (elementwise) recurrence ---------------------------------------------------


def _affine_combine(earlier, later):
    """Compose two affine maps, ``earlier`` applied first: ``(a2 a1, a2 b1 + b2)``."""
    a1, b1 = earlier
    a2, b2 = later
    return a2 * a1, a2 * b1 + b2


def _scan(a, b, h0, reverse: bool):
    """The recurrence as one ``associative_scan`` over the pairs ``(a[t], b[t])``.

    The initial state is folded into the first element: ``b[0] + a[0] * h0`` (forward),
    so the scan itself starts from zero. With ``reverse=True``, ``associative_scan`` runs from
    the end, and the same composition rule applies with "earlier" meaning a larger ``t``.
    """
    first = -1 if reverse else 0
    b = b.at[first].add(a[first] * h0)
    _, h = jax.lax.associative_scan(_affine_combine, (a, b), reverse=reverse)
    return h


@partial(jax.custom_vjp, nondiff_argnums=(3,))
def _recurrence(a, b, h0, reverse: bool):
    return _scan(a, b, h0, reverse)


def _recurrence_fwd(a, b, h0, reverse: bool):
    # h from the custom-VJP function itself, not from _scan: when the forward rule is
    # differentiated (a second derivative), its derivative is then this rule again, never
    # autodiff through the scan tree (the pattern of JAX's own custom_vjp examples)
    h = _recurrence(a, b, h0, reverse)
    return h, (a, h0, h)  # the residuals: no scan-tree intermediates are kept


def _recurrence_bwd(reverse: bool, residuals, g):
    """``(da, db, dh0)`` from ``g = dL/dh``: one reverse recurrence with shifted decays."""
    a, h0, h = residuals
    zero = jnp.zeros_like(a[:1])
    if not reverse:
        a_next = jnp.concatenate([a[1:], zero])  # db[t] = g[t] + a[t+1] db[t+1]
        db = _recurrence(a_next, g, jnp.zeros_like(h0), True)
        h_prev = jnp.concatenate([h0[None], h[:-1]])  # h[t-1], with h[-1] = h0
        return db * h_prev, db, a[0] * db[0]
    a_prev = jnp.concatenate([zero, a[:-1]])  # db[t] = g[t] + a[t-1] db[t-1]
    db = _recurrence(a_prev, g, jnp.zeros_like(h0), False)
    h_next = jnp.concatenate([h[1:], h0[None]])  # h[t+1], with h[T] = h0
    return db * h_next, db, a[-1] * db[-1]


_recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)

_recurrence_jit = jax.jit(_recurrence, static_argnums=3)
_scan_jit = jax.jit(_scan, static_argnums=3)


def linear_recurrence(a, b, h0=None, *, reverse: bool = False) -> jax.Array:
    """``h[t] = a[t] * h[t-1] + b[t]`` as a parallel scan, differentiable with a custom VJP.

    Args:
        a: decays, shape ``(T, *batch)``, a floating dtype (float32, float64, complex).
        b: inputs, the shape and dtype of ``a``.
        h0: the initial state, shape ``batch``; None means zeros. Forward it is ``h[-1]``,
            with ``reverse=True`` it is ``h[T]``.
        reverse: a static Python bool: run from the end, ``h[t] = a[t] * h[t+1] + b[t]``.

    Returns:
        ``h``, the shape and dtype of ``b``. ``T = 0`` gives an empty array. NaN in, NaN out.

    Precision: arrays keep their dtype. NumPy float64 or complex128 ``a`` and ``b`` are
    computed under a scoped ``jax.enable_x64`` and return float64 (complex128), without
    touching JAX's global flag; JAX arrays keep the dtype they have, and NumPy arguments
    mixed with them are converted as ``jnp.asarray`` does; inside ``jit``/``grad``/``vmap``
    the surrounding computation's mode applies (the rule in this module's docstring).
    Subnormal numbers are flushed to zero, as XLA does. The scan multiplies decays over
    runs of steps: its results are finite where those products and partial states are in
    range, which ``|a| <= 1`` guarantees (the exact condition is in
    :func:`scanbook.linear_recurrence`).

    The forward pass is ``jax.lax.associative_scan`` over the affine pairs ``(a[t], b[t])``.
    Its gradient (``jax.grad``, ``jax.vjp``) is not autodiff through the scan but the rule
    derived in chapter 5: ``db`` is the reverse recurrence ``db[t] = g[t] + a[t+1] db[t+1]``
    (computed by this same function), ``da[t] = db[t] h[t-1]`` and ``dh0 = a[0] db[0]``.
    Works under ``jax.jit``, ``jax.vmap`` and ``jax.grad`` (reverse mode only: a
    ``custom_vjp`` function has no forward-mode derivative, so ``jax.jvp`` raises).
    ``scanbook.linear_recurrence(a, b, h0, backend="jax")`` calls this function.

    Raises:
        ValueError: ``a`` and ``b`` of different shapes, no time axis, ``h0`` of the wrong shape.
        TypeError: a non-floating or mismatched dtype, a non-bool ``reverse``, a list (or
            ``h0``) of anything but numbers.

    Defined in chapter 5.
    """
    reverse = _check_reverse(reverse)
    with _precision((a, b), h0):
        a, b, h0 = _prepare(a, b, h0)
        if a.shape[0] == 0:
            return jnp.zeros(a.shape, a.dtype)
        return _recurrence_jit(a, b, h0, reverse)


_recurrence_bwd_jit = jax.jit(_recurrence_bwd, static_argnums=0)


def _linear_recurrence_vjp(a, b, h0, h, g, *, reverse: bool = False):
    """``(da, db, dh0)`` by the rule of :func:`linear_recurrence`'s custom VJP, called directly.

    What ``scanbook.linear_recurrence_vjp(..., backend="jax")`` runs, after checking ``h`` and
    ``g`` (same shape and dtype as ``a``). The same precision rule as the forward pass.
    """
    reverse = _check_reverse(reverse)
    with _precision((a, b), h0, h, g):
        a, b, h0 = _prepare(a, b, h0)
        h, g = _as_jax("h", h), _as_jax("g", g)
        if a.shape[0] == 0:
            return jnp.zeros(a.shape, a.dtype), jnp.zeros(a.shape, a.dtype), jnp.zeros_like(h0)
        return _recurrence_bwd_jit(reverse, (a, h0, h), g)


def linear_recurrence_autodiff(a, b, h0=None, *, reverse: bool = False) -> jax.Array:
    """The same parallel scan as :func:`linear_recurrence`, *without* the custom VJP.

    ``jax.grad`` then differentiates straight through ``associative_scan``, keeping the
    intermediates of every level of the scan tree. Chapter 5 compares its time and memory
    with the custom rule. Same arguments, checks and results as :func:`linear_recurrence`.

    Defined in chapter 5.
    """
    reverse = _check_reverse(reverse)
    with _precision((a, b), h0):
        a, b, h0 = _prepare(a, b, h0)
        if a.shape[0] == 0:
            return jnp.zeros(a.shape, a.dtype)
        return _scan_jit(a, b, h0, reverse)


def linear_recurrence_sequential(a, b, h0=None, *, reverse: bool = False) -> jax.Array:
    """The plain loop with ``jax.lax.scan``: one step after another, differentiated by JAX.

    The slow, obvious reference the scan and its custom gradient are checked against.
    Same arguments, checks and results as :func:`linear_recurrence`.

    Defined in chapter 5.
    """
    reverse = _check_reverse(reverse)

    def step(h, ab):
        a_t, b_t = ab
        h = a_t * h + b_t
        return h, h

    with _precision((a, b), h0):
        a, b, h0 = _prepare(a, b, h0)
        _, h = jax.lax.scan(step, h0, (a, b), reverse=reverse)
        return h


# -- matrix coefficients: h[t] = A[t] @ h[t-1] + b[t] ----------------------------------------


def _prepare_matrix(A, b, h0):
    A = _as_jax("A", A)
    b = _as_jax("b", b, like=A)
    _check_dtype("A", A)
    _check_dtype("b", b)
    if A.dtype != b.dtype:
        raise TypeError(f"A and b must have the same dtype; got {A.dtype} and {b.dtype}")
    if A.ndim != 3 or A.shape[1] != A.shape[2]:
        raise ValueError(f"A must have shape (T, n, n); got {A.shape}")
    T, n, _ = A.shape
    if b.shape != (T, n):
        raise ValueError(f"b must have shape (T, n) = {(T, n)} to match A; got {b.shape}")
    if h0 is None:
        h0 = jnp.zeros((n,), dtype=A.dtype)
    else:
        h0 = _as_jax("h0", h0, like=A)
        if h0.shape != (n,):
            raise ValueError(f"h0 must have shape (n,) = {(n,)}; got {h0.shape}")
        if h0.dtype != A.dtype:
            raise TypeError(f"h0 must have the dtype of A, {A.dtype}; got {h0.dtype}")
    return A, b, h0


def _matvec(A, x):
    return jnp.einsum("...ij,...j->...i", A, x)


def _matrix_combine(earlier, later):
    """Compose ``h -> A1 h + b1`` then ``h -> A2 h + b2``: ``(A2 A1, A2 b1 + b2)``."""
    A1, b1 = earlier
    A2, b2 = later
    return A2 @ A1, _matvec(A2, b1) + b2


def _matrix_scan(A, b, h0, reverse: bool):
    first = -1 if reverse else 0
    b = b.at[first].add(A[first] @ h0)
    _, h = jax.lax.associative_scan(_matrix_combine, (A, b), reverse=reverse)
    return h


@partial(jax.custom_vjp, nondiff_argnums=(3,))
def _matrix_recurrence(A, b, h0, reverse: bool):
    return _matrix_scan(A, b, h0, reverse)


def _matrix_recurrence_fwd(A, b, h0, reverse: bool):
    h = _matrix_recurrence(A, b, h0, reverse)  # as _recurrence_fwd: derivatives of any order
    return h, (A, h0, h)


def _matrix_recurrence_bwd(reverse: bool, residuals, g):
    """``lam[t] = g[t] + A[t+1]^T lam[t+1]``, ``dA[t] = lam[t] h[t-1]^T``, ``dh0 = A[0]^T lam[0]``.

    The scalar rule with the decays replaced by transposed matrices (reverse: ``t-1``, ``t+1``
    exchanged).
    """
    A, h0, h = residuals
    At = jnp.swapaxes(A, -1, -2)
    zero = jnp.zeros_like(A[:1])
    if not reverse:
        lam = _matrix_recurrence(jnp.concatenate([At[1:], zero]), g, jnp.zeros_like(h0), True)
        h_prev = jnp.concatenate([h0[None], h[:-1]])
        return lam[:, :, None] * h_prev[:, None, :], lam, At[0] @ lam[0]
    lam = _matrix_recurrence(jnp.concatenate([zero, At[:-1]]), g, jnp.zeros_like(h0), False)
    h_next = jnp.concatenate([h[1:], h0[None]])
    return lam[:, :, None] * h_next[:, None, :], lam, At[-1] @ lam[-1]


_matrix_recurrence.defvjp(_matrix_recurrence_fwd, _matrix_recurrence_bwd)
_matrix_recurrence_jit = jax.jit(_matrix_recurrence, static_argnums=3)


def matrix_linear_recurrence(A, b, h0=None, *, reverse: bool = False) -> jax.Array:
    """``h[t] = A[t] @ h[t-1] + b[t]`` as a parallel scan over matrix affine maps.

    Args:
        A: matrices, shape ``(T, n, n)``, a floating dtype.
        b: inputs, shape ``(T, n)``, the dtype of ``A``.
        h0: the initial state, shape ``(n,)``; None means zeros.
        reverse: a static Python bool: ``h[t] = A[t] @ h[t+1] + b[t]`` with ``h[T] = h0``.

    Returns:
        ``h`` of shape ``(T, n)``, the dtype of ``b``, under the precision rule of
        :func:`linear_recurrence` (NumPy float64 in, float64 out, JAX's flag untouched).

    The scan composes pairs ``(A, b)``: ``(A2 A1, A2 b1 + b2)``, which costs ``O(n^3)`` a
    combination (a matrix product), against ``O(n^2)`` a step for the loop. Its custom VJP
    is the reverse recurrence with transposed, shifted matrices:
    ``lam[t] = g[t] + A[t+1]^T lam[t+1]``, ``dA[t] = lam[t] h[t-1]^T``, ``db = lam``,
    ``dh0 = A[0]^T lam[0]``. Batch over several sequences with ``jax.vmap``. Chapter 9
    (DEER) solves non-linear recurrences with it.

    Raises:
        ValueError: ``A`` not ``(T, n, n)``, ``b`` not ``(T, n)``, ``h0`` not ``(n,)``.
        TypeError: a non-floating or mismatched dtype, a non-bool ``reverse``.

    Defined in chapter 5.
    """
    reverse = _check_reverse(reverse)
    with _precision((A, b), h0):
        A, b, h0 = _prepare_matrix(A, b, h0)
        if A.shape[0] == 0:
            return jnp.zeros(b.shape, b.dtype)
        return _matrix_recurrence_jit(A, b, h0, reverse)


def matrix_linear_recurrence_sequential(A, b, h0=None, *, reverse: bool = False) -> jax.Array:
    """The plain ``lax.scan`` loop for :func:`matrix_linear_recurrence` (the reference).

    Defined in chapter 5.
    """
    reverse = _check_reverse(reverse)

    def step(h, Ab):
        A_t, b_t = Ab
        h = A_t @ h + b_t
        return h, h

    with _precision((A, b), h0):
        A, b, h0 = _prepare_matrix(A, b, h0)
        _, h = jax.lax.scan(step, h0, (A, b), reverse=reverse)
        return h

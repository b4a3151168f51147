"""What every model in :mod:`scanbook.models` shares: input checks, initialisers, the recurrence.

Defined in chapter 6.

Each model module is a few lines of equations; the checks that give a clear error for a
wrong input, the Glorot initialiser and the switch between the parallel scan and the serial
loop live here, once.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .. import jax as sbjax

MODES = ("parallel", "serial")


# -- checks (they run at trace time: shapes and dtypes are static under jax.jit) ---------------


def check_mode(mode, model: str, *, serial_only: bool = False) -> str:
    """``mode`` is ``"parallel"`` or ``"serial"``; serial-only models refuse ``"parallel"``.

    Defined in chapter 6.
    """
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"mode must be 'parallel' or 'serial'; got {mode!r}")
    if serial_only and mode == "parallel":
        raise ValueError(
            f"mode='parallel' is not available for {model}: its recurrence is non-linear in the "
            f"state, so it is not a scan over affine maps. Use mode='serial', a linear-surrogate "
            f"model (chapter 6), or solve the non-linear recurrence in parallel with DEER "
            f"(chapter 9, scanbook.deer)"
        )
    return mode


def check_params(params, keys: tuple[str, ...], model: str) -> None:
    """``params`` is a dict holding at least ``keys`` (what ``<model>.init`` returns)."""
    if not isinstance(params, dict):
        raise TypeError(
            f"params must be the dict returned by scanbook.models.{model}.init; "
            f"got {type(params).__name__}"
        )
    missing = [k for k in keys if k not in params]
    if missing:
        raise ValueError(
            f"params lacks {missing} for {model}: pass what scanbook.models.{model}.init returns"
        )


def check_x(x, in_dim: int) -> jax.Array:
    """``x`` of shape ``(T, batch, in_dim)``, ``T >= 1``, a floating dtype.

    Defined in chapter 6.
    """
    if not (hasattr(x, "dtype") and hasattr(x, "shape")):
        try:
            x = np.asarray(x)
        except (TypeError, ValueError) as err:
            raise TypeError(f"x must be an array; got {type(x).__name__}") from err
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"x must have a floating dtype (float32 or float64); got {x.dtype}")
    if x.ndim != 3:
        raise ValueError(
            f"x must have shape (T, batch, in_dim) = (T, batch, {in_dim}) (time-major); "
            f"got shape {tuple(x.shape)}"
        )
    if x.shape[2] != in_dim:
        raise ValueError(
            f"x must have in_dim = {in_dim} features (its last axis), as the params were "
            f"initialised for; got shape {tuple(x.shape)}"
        )
    if x.shape[0] == 0:
        raise ValueError(f"x must hold at least one time step (T >= 1); got shape {tuple(x.shape)}")
    return jnp.asarray(x)


def check_state(value, name: str, batch: int, hidden: int, dtype) -> jax.Array:
    """One initial state: shape ``(batch, hidden)``, floating; cast to the model's dtype."""
    if not (hasattr(value, "dtype") and hasattr(value, "shape")):
        value = np.asarray(value)
    if not jnp.issubdtype(value.dtype, jnp.floating):
        raise TypeError(f"{name} must have a floating dtype; got {value.dtype}")
    if tuple(value.shape) != (batch, hidden):
        raise ValueError(
            f"{name} must have shape (batch, hidden) = {(batch, hidden)}; got {tuple(value.shape)}"
        )
    return jnp.asarray(value).astype(dtype)


def initial_state(h0, batch: int, hidden: int, dtype, *, pair: bool = False):
    """``h0`` as an array (or, with ``pair=True``, a pair of arrays), zeros when None.

    Models whose state has two parts (the LSTMs: a hidden state and a cell) accept either one
    array, the hidden state the gates read at ``t = 0`` (the cell then starts at zero), or a
    pair ``(h0, c0)``.

    Defined in chapter 6.
    """
    zeros = jnp.zeros((batch, hidden), dtype)
    if not pair:
        return zeros if h0 is None else check_state(h0, "h0", batch, hidden, dtype)
    if h0 is None:
        return zeros, zeros
    if isinstance(h0, tuple | list):
        if len(h0) != 2:
            raise ValueError(f"h0 must be one array or a pair (h0, c0); got {len(h0)} items")
        return (
            check_state(h0[0], "h0[0]", batch, hidden, dtype),
            check_state(h0[1], "h0[1]", batch, hidden, dtype),
        )
    return check_state(h0, "h0", batch, hidden, dtype), zeros


def compute_dtype(x, params: dict):
    """The dtype the model computes in: ``x``'s and the parameters' promoted together."""
    return jnp.result_type(x.dtype, *(p.dtype for p in jax.tree_util.tree_leaves(params)))


# -- initialisers ---------------------------------------------------------------------------


def check_sizes(in_dim, hidden) -> tuple[int, int]:
    for name, v in (("in_dim", in_dim), ("hidden", hidden)):
        if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive int; got {v!r}")
    return int(in_dim), int(hidden)


def glorot(key, fan_in: int, fan_out: int, dtype=jnp.float32, shape=None) -> jax.Array:
    """Glorot (Xavier) uniform: ``U(-s, s)``, ``s = sqrt(6 / (fan_in + fan_out))``.

    The initialisation Martin & Cundy used for their LSTM and LS-LSTM.

    Defined in chapter 6.
    """
    s = np.sqrt(6.0 / (fan_in + fan_out))
    shape = (fan_in, fan_out) if shape is None else shape
    return jax.random.uniform(key, shape, dtype, -s, s)


def gate_bias(hidden: int, n_gates: int, values: dict[int, float], dtype) -> jax.Array:
    """Biases of ``n_gates`` stacked gates, zero except gate ``j`` set to ``values[j]``."""
    b = np.zeros((n_gates, hidden))
    for j, v in values.items():
        b[j] = v
    return jnp.asarray(b.reshape(-1), dtype)


# -- the one linear recurrence every model runs ------------------------------------------


def recurrence(a, b, h0, mode: str) -> jax.Array:
    """``h[t] = a[t] * h[t-1] + b[t]``: the parallel scan or the ``lax.scan`` loop.

    ``mode="parallel"`` calls :func:`scanbook.jax.linear_recurrence` (``associative_scan``,
    custom VJP, chapter 5); ``mode="serial"`` calls
    :func:`scanbook.jax.linear_recurrence_sequential` (one step after another). The two give
    the same states up to rounding.

    Defined in chapter 6.
    """
    if mode == "parallel":
        return sbjax.linear_recurrence(a, b, h0)
    return sbjax.linear_recurrence_sequential(a, b, h0)


def log_space_recurrence(log_a, log_b, h0) -> jax.Array:
    """``h[t] = a[t] h[t-1] + b[t]`` for ``a, b > 0`` given as logarithms (Heinsen's scan).

    With ``A[t] = log a[0] + ... + log a[t]`` (a cumulative sum),
    ``h[t] = exp(A[t]) h0 + exp(A[t] + logcumsumexp_s(log b[s] - A[s]))``: two cumulative
    sums instead of a scan over pairs, computed in log space so that ``1 / (a[0]...a[s])``,
    which overflows for long sequences, is never formed. ``h0`` may have any sign.

    Defined in chapter 6.
    """
    A = jnp.cumsum(log_a, axis=0)
    carried = jnp.exp(A) * h0
    return carried + jnp.exp(A + jax.lax.cumlogsumexp(log_b - A, axis=0))


def previous(h, h0) -> jax.Array:
    """``h[t-1]`` for every ``t``, with ``h[-1] = h0``: the state shifted one step in time."""
    return jnp.concatenate([h0[None], h[:-1]], axis=0)

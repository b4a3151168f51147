r"""GRU: the non-linear baseline (Cho et al.), serial only.

.. math::

    z_t &= \sigma(x_t W_z + h_{t-1} U_z + b_z) \\
    r_t &= \sigma(x_t W_r + h_{t-1} U_r + b_r) \\
    \tilde h_t &= \tanh(x_t W_h + (r_t \odot h_{t-1}) U_h + b_h) \\
    h_t &= (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t

Drop ``h[t-1]`` from ``z`` and ``h~`` and this is :mod:`scanbook.models.min_gru`. As it
stands the step is non-linear in the state, so ``mode="parallel"`` raises: chapter 9 (DEER)
solves such recurrences in parallel.

Defined in chapter 6.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import _common as c

__all__ = ["apply", "init"]


def init(key, in_dim: int, hidden: int, *, dtype=jnp.float32) -> dict:
    """Parameters: ``W`` (in_dim, 3 hidden), ``U`` (hidden, 3 hidden), ``b``; gates ``z, r, h~``.

    Glorot uniform weights, zero biases.

    Defined in chapter 6.
    """
    in_dim, hidden = c.check_sizes(in_dim, hidden)
    k_w, k_u = jax.random.split(key)
    return {
        "W": c.glorot(k_w, in_dim + hidden, 3 * hidden, dtype, shape=(in_dim, 3 * hidden)),
        "U": c.glorot(k_u, in_dim + hidden, 3 * hidden, dtype, shape=(hidden, 3 * hidden)),
        "b": jnp.zeros(3 * hidden, dtype),
    }


def cell(params: dict, h, xw):
    """One step: ``h[t-1]`` and ``xw = x[t] W + b`` to ``h[t]``.

    Defined in chapter 6.
    """
    xz, xr, xh = jnp.split(xw, 3, axis=-1)
    Uz, Ur, Uh = jnp.split(params["U"], 3, axis=-1)
    z = jax.nn.sigmoid(xz + h @ Uz)
    r = jax.nn.sigmoid(xr + h @ Ur)
    return (1 - z) * h + z * jnp.tanh(xh + (r * h) @ Uh)


def apply(params: dict, x, h0=None, *, mode: str = "serial") -> jax.Array:
    """States ``h`` of shape ``(T, batch, hidden)``, a ``lax.scan`` over the steps.

    ``h0`` (``(batch, hidden)``, zeros if None) is ``h[-1]``. ``mode="parallel"`` raises
    ValueError (see chapter 9).

    Defined in chapter 6.
    """
    c.check_mode(mode, "gru", serial_only=True)
    c.check_params(params, ("W", "U", "b"), "gru")
    in_dim, hidden = params["W"].shape[0], params["U"].shape[0]
    x = c.check_x(x, in_dim)
    h0 = c.initial_state(h0, x.shape[1], hidden, c.compute_dtype(x, params))

    def step(h, xw):
        h = cell(params, h, xw)
        return h, h

    _, h = jax.lax.scan(step, h0, x @ params["W"] + params["b"])
    return h

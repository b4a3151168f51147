r"""GILR: the gated impulse linear recurrent layer of Martin & Cundy (2018).

.. math::

    g_t &= \sigma(x_t U + b_g) \\
    i_t &= \tanh(x_t V + b_i) \\
    h_t &= g_t \odot h_{t-1} + (1 - g_t) \odot i_t

The gate ``g`` and the impulse ``i`` depend on the input only, so both are computed for all
``T`` steps at once (two ``(T*batch, in_dim) x (in_dim, hidden)`` matrix products); what is
left, ``h[t] = a[t] h[t-1] + b[t]`` with ``a = g`` and ``b = (1 - g) i``, is a linear
recurrence. Stacked GILR layers depend non-linearly on the past.

Defined in chapter 6.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import _common as c

__all__ = ["apply", "init"]


def init(key, in_dim: int, hidden: int, *, gate_bias: float = 0.0, dtype=jnp.float32) -> dict:
    """Parameters of a GILR layer: ``W`` (in_dim, 2 hidden) = ``[U, V]``, ``b`` = ``[b_g, b_i]``.

    Weights are Glorot uniform, as in Martin & Cundy; ``gate_bias`` starts ``b_g`` (a larger
    value keeps more of the past: ``sigmoid(gate_bias)`` is the initial decay).

    Defined in chapter 6.
    """
    in_dim, hidden = c.check_sizes(in_dim, hidden)
    return {
        "W": c.glorot(key, in_dim, 2 * hidden, dtype),
        "b": c.gate_bias(hidden, 2, {0: gate_bias}, dtype),
    }


def apply(params: dict, x, h0=None, *, mode: str = "parallel") -> jax.Array:
    """States ``h``, shape ``(T, batch, hidden)``, for inputs ``x`` of shape ``(T, batch, in_dim)``.

    ``h0`` (shape ``(batch, hidden)``, zeros if None) is ``h[-1]``. ``mode="parallel"`` runs the
    recurrence as a parallel scan, ``mode="serial"`` as a ``lax.scan`` loop; both give the same
    states. Raises ValueError/TypeError naming the argument for a wrong shape, dtype or mode.

    Defined in chapter 6.
    """
    mode = c.check_mode(mode, "gilr")
    c.check_params(params, ("W", "b"), "gilr")
    in_dim, hidden = params["W"].shape[0], params["W"].shape[1] // 2
    x = c.check_x(x, in_dim)
    h0 = c.initial_state(h0, x.shape[1], hidden, c.compute_dtype(x, params))
    g_pre, i_pre = jnp.split(x @ params["W"] + params["b"], 2, axis=-1)
    g = jax.nn.sigmoid(g_pre)
    return c.recurrence(g, (1 - g) * jnp.tanh(i_pre), h0, mode)

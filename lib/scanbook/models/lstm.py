r"""LSTM: the non-linear baseline (Hochreiter & Schmidhuber), serial only.

.. math::

    f_t, i_t, o_t &= \sigma(h_{t-1} U_{f,i,o} + x_t V_{f,i,o} + b_{f,i,o}) \\
    z_t &= \tanh(h_{t-1} U_z + x_t V_z + b_z) \\
    c_t &= f_t \odot c_{t-1} + i_t \odot z_t \\
    h_t &= o_t \odot \tanh(c_t)

The gates read ``h[t-1]``, a non-linear function of ``h[t-2]``: the step is not an affine
map of the state, so there is no scan to run. ``x V`` is computed for all steps at once; the
``T`` products ``h[t-1] U`` of shape ``(batch, hidden) x (hidden, 4 hidden)`` must run one
after another. ``mode="parallel"`` raises: chapter 9 (DEER) solves such recurrences in
parallel by Newton's method.

Defined in chapter 6.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import _common as c

__all__ = ["apply", "init"]


def init(key, in_dim: int, hidden: int, *, forget_bias: float = 1.0, dtype=jnp.float32) -> dict:
    """Parameters: ``U`` (hidden, 4 hidden), ``V`` (in_dim, 4 hidden), ``b``; gates ``f, i, o, z``.

    Glorot uniform weights, the forget gate's bias at ``forget_bias`` (1.0, as TensorFlow's
    LSTM cell that Martin & Cundy's baseline used).

    Defined in chapter 6.
    """
    in_dim, hidden = c.check_sizes(in_dim, hidden)
    k_u, k_v = jax.random.split(key)
    return {
        "U": c.glorot(k_u, hidden + in_dim, 4 * hidden, dtype, shape=(hidden, 4 * hidden)),
        "V": c.glorot(k_v, hidden + in_dim, 4 * hidden, dtype, shape=(in_dim, 4 * hidden)),
        "b": c.gate_bias(hidden, 4, {0: forget_bias}, dtype),
    }


def cell(params: dict, state, xv):
    """One step: ``(h, c)`` and ``xv = x[t] V + b`` to the next ``(h, c)``.

    Defined in chapter 6.
    """
    h, cc = state
    f, i, o, z = jnp.split(h @ params["U"] + xv, 4, axis=-1)
    cc = jax.nn.sigmoid(f) * cc + jax.nn.sigmoid(i) * jnp.tanh(z)
    return jax.nn.sigmoid(o) * jnp.tanh(cc), cc


def apply(params: dict, x, h0=None, *, mode: str = "serial") -> jax.Array:
    """Outputs ``h`` of shape ``(T, batch, hidden)``, a ``lax.scan`` over the steps.

    ``h0`` is None (zeros), one array ``(batch, hidden)``, ``h[-1]`` (the cell starts at zero),
    or a pair ``(h[-1], c[-1])``. ``mode="parallel"`` raises ValueError (see chapter 9).

    Defined in chapter 6.
    """
    c.check_mode(mode, "lstm", serial_only=True)
    c.check_params(params, ("U", "V", "b"), "lstm")
    in_dim, hidden = params["V"].shape[0], params["U"].shape[0]
    x = c.check_x(x, in_dim)
    state = c.initial_state(h0, x.shape[1], hidden, c.compute_dtype(x, params), pair=True)

    def step(state, xv):
        state = cell(params, state, xv)
        return state, state[0]

    _, h = jax.lax.scan(step, state, x @ params["V"] + params["b"])
    return h

r"""LS-LSTM: the linear-surrogate LSTM of Martin & Cundy (2018).

An LSTM's gates read ``h[t-1]``, which depends non-linearly on ``h[t-2]``. The LS-LSTM gives
them a *linear surrogate* ``h~`` instead, computed by a GILR layer from the inputs alone:

.. math::

    g_t &= \sigma(x_t V_g + b_g) \\
    \tilde h_t &= g_t \odot \tilde h_{t-1} + (1 - g_t) \odot \tanh(x_t W + b_w)
        \quad\text{(a linear recurrence)} \\
    f_t, i_t, o_t &= \sigma(\tilde h_{t-1} U_{f,i,o} + x_t V_{f,i,o} + b_{f,i,o}) \\
    z_t &= \tanh(\tilde h_{t-1} U_z + x_t V_z + b_z) \\
    c_t &= f_t \odot c_{t-1} + i_t \odot z_t \quad\text{(a linear recurrence)} \\
    h_t &= o_t \odot c_t

Two linear recurrences (``h~``, then ``c``) and matrix products over all ``T`` steps at
once; nothing non-linear is left inside a recurrence. ``h = o * c`` follows the paper's
equations (a standard LSTM applies ``tanh`` to ``c``; see :mod:`scanbook.models.lstm`).

Defined in chapter 6.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import _common as c
from . import gilr

__all__ = ["apply", "init"]


def init(key, in_dim: int, hidden: int, *, forget_bias: float = 1.0, dtype=jnp.float32) -> dict:
    """Parameters: ``surrogate`` (a GILR layer), ``U`` (hidden, 4 hidden), ``V`` (in_dim, 4 hidden).

    And ``b``; gates are stacked in the order ``f, i, o, z``. Weights are Glorot uniform
    (Martin & Cundy); the forget gate's bias starts at ``forget_bias`` (1.0, as TensorFlow's
    LSTM cell; Martin & Cundy's code for long memorisation uses 5.0, ``sigmoid(5) = 0.993``).

    Defined in chapter 6.
    """
    in_dim, hidden = c.check_sizes(in_dim, hidden)
    k_s, k_u, k_v = jax.random.split(key, 3)
    return {
        "surrogate": gilr.init(k_s, in_dim, hidden, dtype=dtype),
        "U": c.glorot(k_u, hidden + in_dim, 4 * hidden, dtype, shape=(hidden, 4 * hidden)),
        "V": c.glorot(k_v, hidden + in_dim, 4 * hidden, dtype, shape=(in_dim, 4 * hidden)),
        "b": c.gate_bias(hidden, 4, {0: forget_bias}, dtype),
    }


def apply(params: dict, x, h0=None, *, mode: str = "parallel") -> jax.Array:
    """Outputs ``h`` of shape ``(T, batch, hidden)`` for ``x`` of shape ``(T, batch, in_dim)``.

    ``h0`` is None (zeros), one array ``(batch, hidden)``, the surrogate ``h~[-1]`` the gates
    read at ``t = 0`` (the cell starts at zero), or a pair ``(h~[-1], c[-1])``.
    ``mode="parallel"`` runs both recurrences as parallel scans, ``mode="serial"`` as
    ``lax.scan`` loops; both give the same outputs.

    Defined in chapter 6.
    """
    mode = c.check_mode(mode, "ls_lstm")
    c.check_params(params, ("surrogate", "U", "V", "b"), "ls_lstm")
    in_dim, hidden = params["V"].shape[0], params["U"].shape[0]
    x = c.check_x(x, in_dim)
    dtype = c.compute_dtype(x, params)
    s0, c0 = c.initial_state(h0, x.shape[1], hidden, dtype, pair=True)
    s = gilr.apply(params["surrogate"], x, s0, mode=mode)  # the surrogate h~
    pre = c.previous(s, s0) @ params["U"] + x @ params["V"] + params["b"]
    f, i, o, z = jnp.split(pre, 4, axis=-1)
    f, i, o = jax.nn.sigmoid(f), jax.nn.sigmoid(i), jax.nn.sigmoid(o)
    cell = c.recurrence(f, i * jnp.tanh(z), c0, mode)
    return o * cell

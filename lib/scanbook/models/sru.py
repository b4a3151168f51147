r"""SRU: the simple recurrent unit (Lei et al.), with the linear recurrence Martin & Cundy time.

.. math::

    \tilde x_t &= x_t W \\
    f_t &= \sigma(x_t W_f + b_f) \\
    r_t &= \sigma(x_t W_r + b_r) \\
    c_t &= f_t \odot c_{t-1} + (1 - f_t) \odot \tilde x_t \quad\text{(a linear recurrence)} \\
    h_t &= r_t \odot \tanh(c_t) + (1 - r_t) \odot x_t S

The gates read the input only, so the one recurrence is linear; ``h`` is a highway mix of
the state and the input (``S`` is the identity when ``in_dim == hidden``, a learned
projection otherwise). The ``tanh`` of ``c`` follows Lei et al.'s first preprint ("Training
RNNs as Fast as CNNs", 2017); Martin & Cundy's benchmark code leaves it out
(``h = r * c + (1 - r) * x``), which changes nothing in the recurrence. The later published
SRU adds ``v * c[t-1]`` inside the gates, which makes its recurrence non-linear; this module
keeps the linear form.

Defined in chapter 6.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import _common as c

__all__ = ["apply", "init"]


def init(key, in_dim: int, hidden: int, *, forget_bias: float = 1.0, dtype=jnp.float32) -> dict:
    """Parameters: ``W`` (in_dim, 3 hidden) stacks ``[W, W_f, W_r]``, ``b`` = ``[0, b_f, b_r]``.

    With ``in_dim != hidden`` a projection ``S`` (in_dim, hidden) carries the input to the
    highway. Glorot uniform weights; the forget gate's bias starts at ``forget_bias``.

    Defined in chapter 6.
    """
    in_dim, hidden = c.check_sizes(in_dim, hidden)
    k_w, k_s = jax.random.split(key)
    params = {
        "W": c.glorot(k_w, in_dim, 3 * hidden, dtype),
        "b": c.gate_bias(hidden, 3, {1: forget_bias}, dtype),
    }
    if in_dim != hidden:
        params["S"] = c.glorot(k_s, in_dim, hidden, dtype)
    return params


def apply(params: dict, x, h0=None, *, mode: str = "parallel") -> jax.Array:
    """Outputs ``h`` of shape ``(T, batch, hidden)``; ``h0`` is the initial cell ``c[-1]``.

    ``mode="parallel"`` runs the recurrence as a parallel scan, ``mode="serial"`` as a
    ``lax.scan`` loop; both give the same outputs.

    Defined in chapter 6.
    """
    mode = c.check_mode(mode, "sru")
    c.check_params(params, ("W", "b"), "sru")
    in_dim, hidden = params["W"].shape[0], params["W"].shape[1] // 3
    x = c.check_x(x, in_dim)
    c0 = c.initial_state(h0, x.shape[1], hidden, c.compute_dtype(x, params))
    x_tilde, f, r = jnp.split(x @ params["W"] + params["b"], 3, axis=-1)
    f, r = jax.nn.sigmoid(f), jax.nn.sigmoid(r)
    cell = c.recurrence(f, (1 - f) * x_tilde, c0, mode)
    skip = x @ params["S"] if "S" in params else x
    return r * jnp.tanh(cell) + (1 - r) * skip

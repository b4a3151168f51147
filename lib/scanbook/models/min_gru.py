r"""minGRU: the minimal GRU of Feng et al. (2024), "Were RNNs All We Needed?".

A GRU with the state removed from its gate and its candidate, which leaves a linear
recurrence:

.. math::

    z_t &= \sigma(x_t W_z + b_z) \\
    \tilde h_t &= x_t W_h + b_h \\
    h_t &= (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t

With ``log_space=True`` the candidate goes through Feng et al.'s positive activation
``g(v) = v + 1/2`` for ``v >= 0``, ``sigmoid(v)`` otherwise, so that ``h~ > 0`` and the
parallel mode can run in log space: ``log(1 - z) = -softplus(k)``, ``log z = -softplus(-k)``
(``k`` the gate's pre-activation), and Heinsen's scan of two cumulative sums
(:func:`scanbook.models._common.log_space_recurrence`). The serial mode runs the same
recurrence with a loop.

Defined in chapter 6.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import _common as c

__all__ = ["apply", "g", "init", "log_g"]


def init(key, in_dim: int, hidden: int, *, dtype=jnp.float32) -> dict:
    """Parameters: ``W`` (in_dim, 2 hidden) stacks ``[W_z, W_h]``; ``b`` (zeros). Glorot uniform.

    Defined in chapter 6.
    """
    in_dim, hidden = c.check_sizes(in_dim, hidden)
    return {"W": c.glorot(key, in_dim, 2 * hidden, dtype), "b": jnp.zeros(2 * hidden, dtype)}


def g(v) -> jax.Array:
    """Feng et al.'s positive activation: ``v + 1/2`` for ``v >= 0``, ``sigmoid(v)`` below.

    Defined in chapter 6.
    """
    return jnp.where(v >= 0, v + 0.5, jax.nn.sigmoid(v))


def log_g(v) -> jax.Array:
    """``log g(v)`` without forming ``g``: ``log(v + 1/2)`` or ``-softplus(-v)``.

    Defined in chapter 6.
    """
    return jnp.where(v >= 0, jnp.log(jax.nn.relu(v) + 0.5), -jax.nn.softplus(-v))


def apply(params: dict, x, h0=None, *, mode: str = "parallel", log_space: bool = False):
    """States ``h`` of shape ``(T, batch, hidden)``; ``h0`` (``(batch, hidden)``) is ``h[-1]``.

    ``mode="parallel"``: a parallel scan over affine pairs (or, with ``log_space=True``, the
    log-space scan); ``mode="serial"``: a ``lax.scan`` loop. Both give the same states.

    Defined in chapter 6.
    """
    mode = c.check_mode(mode, "min_gru")
    c.check_params(params, ("W", "b"), "min_gru")
    in_dim, hidden = params["W"].shape[0], params["W"].shape[1] // 2
    x = c.check_x(x, in_dim)
    h0 = c.initial_state(h0, x.shape[1], hidden, c.compute_dtype(x, params))
    k, v = jnp.split(x @ params["W"] + params["b"], 2, axis=-1)
    if log_space and mode == "parallel":
        return c.log_space_recurrence(-jax.nn.softplus(k), -jax.nn.softplus(-k) + log_g(v), h0)
    z = jax.nn.sigmoid(k)
    h_tilde = g(v) if log_space else v
    return c.recurrence(1 - z, z * h_tilde, h0, mode)

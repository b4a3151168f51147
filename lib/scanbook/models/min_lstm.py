r"""minLSTM: the minimal LSTM of Feng et al. (2024), "Were RNNs All We Needed?".

An LSTM with the state removed from its gates and candidate, the output gate dropped and the
two gates normalised to sum to one (so the state's scale does not drift with time):

.. math::

    f_t &= \sigma(x_t W_f + b_f), \quad i_t = \sigma(x_t W_i + b_i) \\
    f'_t &= \frac{f_t}{f_t + i_t}, \quad i'_t = \frac{i_t}{f_t + i_t} \\
    \tilde h_t &= x_t W_h + b_h \\
    h_t &= f'_t \odot h_{t-1} + i'_t \odot \tilde h_t

With ``log_space=True`` the candidate is ``g(x W_h + b_h) > 0`` (see
:func:`scanbook.models.min_gru.g`) and the parallel mode runs in log space, with
``log f' = -softplus(d)``, ``log i' = -softplus(-d)``, ``d = softplus(-p_f) - softplus(-p_i)``.

Defined in chapter 6.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import _common as c
from .min_gru import g, log_g

__all__ = ["apply", "init"]


def init(key, in_dim: int, hidden: int, *, forget_bias: float = 0.0, dtype=jnp.float32) -> dict:
    """Parameters: ``W`` (in_dim, 3 hidden) stacks ``[W_f, W_i, W_h]``; ``b`` = ``[b_f, 0, 0]``.

    Glorot uniform weights; ``forget_bias`` starts ``b_f`` (0: ``f' = i' = 1/2`` on average).

    Defined in chapter 6.
    """
    in_dim, hidden = c.check_sizes(in_dim, hidden)
    return {
        "W": c.glorot(key, in_dim, 3 * hidden, dtype),
        "b": c.gate_bias(hidden, 3, {0: forget_bias}, dtype),
    }


def apply(params: dict, x, h0=None, *, mode: str = "parallel", log_space: bool = False):
    """States ``h`` of shape ``(T, batch, hidden)``; ``h0`` (``(batch, hidden)``) is ``h[-1]``.

    ``mode="parallel"``: a parallel scan (or, with ``log_space=True``, the log-space scan);
    ``mode="serial"``: a ``lax.scan`` loop. Both give the same states.

    Defined in chapter 6.
    """
    mode = c.check_mode(mode, "min_lstm")
    c.check_params(params, ("W", "b"), "min_lstm")
    in_dim, hidden = params["W"].shape[0], params["W"].shape[1] // 3
    x = c.check_x(x, in_dim)
    h0 = c.initial_state(h0, x.shape[1], hidden, c.compute_dtype(x, params))
    p_f, p_i, v = jnp.split(x @ params["W"] + params["b"], 3, axis=-1)
    d = jax.nn.softplus(-p_f) - jax.nn.softplus(-p_i)  # log(i / f)
    if log_space and mode == "parallel":
        return c.log_space_recurrence(-jax.nn.softplus(d), -jax.nn.softplus(-d) + log_g(v), h0)
    f_norm, i_norm = jax.nn.sigmoid(-d), jax.nn.sigmoid(d)  # f / (f + i), i / (f + i)
    h_tilde = g(v) if log_space else v
    return c.recurrence(f_norm, i_norm * h_tilde, h0, mode)

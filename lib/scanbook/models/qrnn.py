r"""QRNN(k): the quasi-recurrent network of Bradbury et al. (2017), with fo-pooling.

A causal convolution of width ``k`` over time computes the candidate and the gates from the
last ``k`` inputs (``x[t] = 0`` for ``t < 0``); then one linear recurrence pools them:

.. math::

    z_t &= \tanh\Big(\sum_{j=0}^{k-1} x_{t-j} W_{z,j} + b_z\Big) \\
    f_t &= \sigma\Big(\sum_{j=0}^{k-1} x_{t-j} W_{f,j} + b_f\Big), \quad
    o_t = \sigma\Big(\sum_{j=0}^{k-1} x_{t-j} W_{o,j} + b_o\Big) \\
    c_t &= f_t \odot c_{t-1} + (1 - f_t) \odot z_t \quad\text{(a linear recurrence)} \\
    h_t &= o_t \odot c_t

In Martin & Cundy's terms it is a linear-surrogate RNN whose surrogate for ``h[t-1]`` is a
linear function of the ``k - 1`` inputs before ``x[t]``. QRNN(1) is an SRU-like layer; Martin &
Cundy time QRNN(2) and QRNN(10). (Their code's ``QRNN(X, n)`` reads shifts ``0 .. n - 2``,
``n - 1`` taps, through an ``n``-fold wider product whose ``n`` parts are summed: their QRNN(2)
has no time shift at all, and their QRNN(10) is a width-9 filter with about nine times the
matrix work of this module's width-10 one.)

Defined in chapter 6.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import _common as c

__all__ = ["apply", "init"]


def init(
    key, in_dim: int, hidden: int, k: int = 2, *, forget_bias: float = 1.0, dtype=jnp.float32
) -> dict:
    """Parameters: ``W`` (k, in_dim, 3 hidden), the filter (``W[j]`` multiplies ``x[t-j]``), ``b``.

    Gates stacked ``z, f, o``; Glorot uniform over the filter's fan-in ``k * in_dim``; the
    forget gate's bias starts at ``forget_bias``. The filter width ``k`` is read back from
    ``W``'s shape.

    Defined in chapter 6.
    """
    in_dim, hidden = c.check_sizes(in_dim, hidden)
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k (the filter width) must be a positive int; got {k!r}")
    return {
        "W": c.glorot(key, k * in_dim, 3 * hidden, dtype, shape=(k, in_dim, 3 * hidden)),
        "b": c.gate_bias(hidden, 3, {1: forget_bias}, dtype),
    }


def causal_conv(x, W) -> jax.Array:
    """``sum_j x[t-j] @ W[j]`` for every ``t``, with zeros before the start.

    Defined in chapter 6.
    """
    k, T = W.shape[0], x.shape[0]
    padded = jnp.concatenate([jnp.zeros((k - 1, *x.shape[1:]), x.dtype), x], axis=0)
    return sum(padded[k - 1 - j : k - 1 - j + T] @ W[j] for j in range(k))


def apply(params: dict, x, h0=None, *, mode: str = "parallel") -> jax.Array:
    """Outputs ``h`` of shape ``(T, batch, hidden)``; ``h0`` is the initial cell ``c[-1]``.

    ``mode="parallel"`` runs fo-pooling as a parallel scan, ``mode="serial"`` as a
    ``lax.scan`` loop (the convolution is parallel in both); both give the same outputs.

    Defined in chapter 6.
    """
    mode = c.check_mode(mode, "qrnn")
    c.check_params(params, ("W", "b"), "qrnn")
    if params["W"].ndim != 3:
        raise ValueError(
            f"params['W'] must have shape (k, in_dim, 3 hidden); got {params['W'].shape}"
        )
    in_dim, hidden = params["W"].shape[1], params["W"].shape[2] // 3
    x = c.check_x(x, in_dim)
    c0 = c.initial_state(h0, x.shape[1], hidden, c.compute_dtype(x, params))
    z, f, o = jnp.split(causal_conv(x, params["W"]) + params["b"], 3, axis=-1)
    f = jax.nn.sigmoid(f)
    cell = c.recurrence(f, (1 - f) * jnp.tanh(z), c0, mode)
    return jax.nn.sigmoid(o) * cell

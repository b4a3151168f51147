"""A linear readout: the states of the last layer to outputs (logits or predictions).

Defined in chapter 6.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import _common as c

__all__ = ["apply", "init"]


def init(key, hidden: int, out_dim: int, *, dtype=jnp.float32) -> dict:
    """Parameters ``W`` (hidden, out_dim), Glorot uniform, and ``b`` (zeros).

    Defined in chapter 6.
    """
    hidden, out_dim = c.check_sizes(hidden, out_dim)
    return {"W": c.glorot(key, hidden, out_dim, dtype), "b": jnp.zeros(out_dim, dtype)}


def apply(params: dict, h) -> jax.Array:
    """``h @ W + b`` over the last axis: ``(..., hidden)`` to ``(..., out_dim)``.

    Take ``h[-1]`` first to read out the last step only (one label a sequence).

    Defined in chapter 6.
    """
    c.check_params(params, ("W", "b"), "readout")
    hidden = params["W"].shape[0]
    if not hasattr(h, "shape") or h.ndim < 1 or h.shape[-1] != hidden:
        shape = getattr(h, "shape", type(h).__name__)
        raise ValueError(f"h must have hidden = {hidden} features on its last axis; got {shape}")
    return h @ params["W"] + params["b"]

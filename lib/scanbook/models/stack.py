"""Layers of one model stacked: each layer's outputs are the next layer's inputs.

A single linear-recurrence layer depends only linearly on its own past; stacked layers with
non-linear gates between them depend non-linearly on the past, with a non-linear depth equal
to the number of layers rather than the sequence length (Martin & Cundy). Martin & Cundy's
benchmarks use two layers of 256 units.

Defined in chapter 6.
"""

from __future__ import annotations

import types

import jax

__all__ = ["apply", "init"]


def _model(model) -> types.ModuleType:
    from . import get

    return get(model) if isinstance(model, str) else model


def init(key, model, in_dim: int, hidden: int, layers: int = 2, **init_kw) -> list[dict]:
    """A list of ``layers`` parameter dicts for ``model`` (a name like ``"ls_lstm"``, or a module).

    The first layer maps ``in_dim`` to ``hidden`` features, the others ``hidden`` to ``hidden``;
    ``init_kw`` (for example ``k=10`` for a QRNN, ``forget_bias=5.0``) goes to every layer.

    Defined in chapter 6.
    """
    if not isinstance(layers, int) or isinstance(layers, bool) or layers < 1:
        raise ValueError(f"layers must be a positive int; got {layers!r}")
    m = _model(model)
    keys = jax.random.split(key, layers)
    return [m.init(k, in_dim if i == 0 else hidden, hidden, **init_kw) for i, k in enumerate(keys)]


def apply(model, params: list, x, *, mode: str | None = None, **apply_kw) -> jax.Array:
    """The last layer's outputs, ``(T, batch, hidden)``, each layer started from zeros.

    ``mode`` (None: the model's default) and ``apply_kw`` go to every layer.

    Defined in chapter 6.
    """
    m = _model(model)
    if not isinstance(params, list | tuple) or not params:
        raise TypeError(
            f"params must be the non-empty list stack.init returns; got {type(params).__name__}"
        )
    kw = dict(apply_kw) if mode is None else {**apply_kw, "mode": mode}
    h = x
    for p in params:
        h = m.apply(p, h, **kw)
    return h

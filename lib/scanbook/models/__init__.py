"""Linear-surrogate RNNs and their non-linear baselines, pure JAX, parameters as dicts.

Defined in chapter 6.

One module per model, each with ``init(key, in_dim, hidden, ...) -> params`` and
``apply(params, x, h0=None, *, mode=...) -> h`` for time-major ``x`` of shape
``(T, batch, in_dim)`` and ``h`` of shape ``(T, batch, hidden)``:

* :mod:`gilr`, :mod:`ls_lstm` (Martin & Cundy 2018), :mod:`sru` (Lei et al.),
  :mod:`qrnn` (Bradbury et al., filter width ``k``), :mod:`min_gru`, :mod:`min_lstm`
  (Feng et al. 2024): every recurrence is linear, so ``mode="parallel"`` (the default) runs
  it as a parallel scan (:func:`scanbook.jax.linear_recurrence`) and ``mode="serial"`` as a
  ``lax.scan`` loop, with the same results;
* :mod:`lstm`, :mod:`gru`: non-linear recurrences, ``mode="serial"`` only.

:mod:`stack` stacks layers, :mod:`readout` maps states to outputs.
"""

from __future__ import annotations

import types

from . import gilr, gru, ls_lstm, lstm, min_gru, min_lstm, qrnn, readout, sru, stack

__all__ = [
    "MODELS",
    "PARALLEL",
    "get",
    "gilr",
    "gru",
    "ls_lstm",
    "lstm",
    "min_gru",
    "min_lstm",
    "qrnn",
    "readout",
    "sru",
    "stack",
]

MODELS = ("gilr", "ls_lstm", "sru", "qrnn", "min_gru", "min_lstm", "lstm", "gru")
"""Every model, by module name."""

PARALLEL = ("gilr", "ls_lstm", "sru", "qrnn", "min_gru", "min_lstm")
"""The models whose recurrences are linear: ``mode="parallel"`` works for these."""


def get(name: str) -> types.ModuleType:
    """The model module called ``name`` (one of :data:`MODELS`).

    Defined in chapter 6.
    """
    if name not in MODELS:
        raise ValueError(f"name must be one of {MODELS}; got {name!r}")
    return globals()[name]

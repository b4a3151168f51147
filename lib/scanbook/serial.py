"""Reference serial scans: the slow, obvious versions every fast one is checked against.

Defined in chapter 1.

Three ways to run the same loop:

* :func:`scan_loop` and :func:`linear_recurrence_loop`: plain Python, one element at a time,
  written to be read;
* :func:`linear_recurrence_numpy`: a Python loop over time, each step a NumPy operation over
  all channels at once;
* :func:`linear_recurrence_numba`: the same loop compiled by Numba, which runs at close to the
  speed at which memory delivers the bytes.

The array functions take ``a`` and ``b`` of shape ``(T, C)``, time-major, and ``h0`` of shape
``(C,)``; :func:`scanbook.linear_recurrence` validates inputs and reshapes any batch shape to
this form before calling them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import ops as _ops

__all__ = [
    "scan_loop",
    "scan",
    "linear_recurrence_loop",
    "linear_recurrence_numpy",
    "linear_recurrence_numba",
    "linear_recurrence_vjp_numba",
]


def scan_loop(combine, xs: Sequence, identity=None, *, exclusive: bool = False) -> list:
    """Scan a Python list with a binary function: the definition, one element at a time.

    ``scan_loop(lambda x, y: x + y, [1, 2, 3])`` is ``[1, 3, 6]`` (inclusive);
    with ``exclusive=True`` and ``identity=0`` it is ``[0, 1, 3]``.

    Defined in chapter 1.
    """
    out = []
    if exclusive:
        if identity is None:
            raise ValueError("an exclusive scan needs the operator's identity; got identity=None")
        acc = identity
        for x in xs:
            out.append(acc)
            acc = combine(acc, x)
        return out
    acc = None
    for i, x in enumerate(xs):
        acc = x if i == 0 else combine(acc, x)
        out.append(acc)
    return out


def scan(op: _ops.Operator, xs: _ops.Elements, *, exclusive: bool = False) -> _ops.Elements:
    """Serial scan of element sequence ``xs`` with operator ``op`` (see :mod:`scanbook.ops`).

    One operator application per element: work ``n - 1``, depth ``n - 1``.

    Defined in chapter 1.
    """
    n = _ops.length(xs)
    out = _ops.copy(xs)
    if n == 0:
        return out
    if exclusive:
        acc = op.identity(xs, 1)
        for i in range(n):
            here = _ops.take(xs, slice(i, i + 1))
            _ops.put(out, slice(i, i + 1), acc)
            acc = op.combine(acc, here)
        return out
    acc = _ops.take(xs, slice(0, 1))
    for i in range(1, n):
        acc = op.combine(acc, _ops.take(xs, slice(i, i + 1)))
        _ops.put(out, slice(i, i + 1), acc)
    return out


def linear_recurrence_loop(a: Sequence[float], b: Sequence[float], h0: float = 0.0) -> list:
    """``h[t] = a[t] * h[t-1] + b[t]`` with ``h[-1] = h0``, for Python lists of numbers.

    Defined in chapter 1.
    """
    h = h0
    out = []
    for a_t, b_t in zip(a, b, strict=True):
        h = a_t * h + b_t
        out.append(h)
    return out


def linear_recurrence_numpy(
    a: np.ndarray, b: np.ndarray, h0: np.ndarray, reverse: bool = False
) -> np.ndarray:
    """Serial recurrence over time; each step is one NumPy operation over all channels.

    ``a``, ``b``: shape ``(T, C)``; ``h0``: shape ``(C,)``. Forward: ``h[t] = a[t] h[t-1] + b[t]``
    with ``h[-1] = h0``; reverse: ``h[t] = a[t] h[t+1] + b[t]`` with ``h[T] = h0``.

    Defined in chapter 1.
    """
    T = a.shape[0]
    h = np.empty_like(b)
    carry = h0
    steps = range(T - 1, -1, -1) if reverse else range(T)
    for t in steps:
        carry = a[t] * carry + b[t]
        h[t] = carry
    return h


def _numba_kernel():
    """Compile the Numba recurrence on first use (importing numba is slow)."""
    global _NUMBA_KERNEL
    if _NUMBA_KERNEL is None:
        from numba import njit

        @njit(nogil=True)
        def recurrence(a, b, h0, h, reverse):
            T, C = a.shape
            if C == 1:  # one chain: keep the carry in a register
                state = h0[0]
                for step in range(T):
                    t = T - 1 - step if reverse else step
                    state = a[t, 0] * state + b[t, 0]
                    h[t, 0] = state
                return
            carry = h0.copy()  # one running state per channel, small enough to stay in cache
            for step in range(T):
                t = T - 1 - step if reverse else step
                for c in range(C):  # contiguous channels: this loop vectorises
                    carry[c] = a[t, c] * carry[c] + b[t, c]
                    h[t, c] = carry[c]

        _NUMBA_KERNEL = recurrence
    return _NUMBA_KERNEL


_NUMBA_KERNEL = None


def linear_recurrence_numba(
    a: np.ndarray, b: np.ndarray, h0: np.ndarray, reverse: bool = False
) -> np.ndarray:
    """The serial recurrence compiled with Numba ``@njit``: the fast CPU reference.

    Same arguments as :func:`linear_recurrence_numpy`. The inner loop runs over channels,
    which are contiguous in a time-major array, so memory is read in order.

    Defined in chapter 1.
    """
    h = np.empty_like(b)
    _numba_kernel()(a, b, h0, h, reverse)
    return h


def _numba_vjp_kernel():
    global _NUMBA_VJP_KERNEL
    if _NUMBA_VJP_KERNEL is None:
        from numba import njit

        @njit(nogil=True)
        def vjp(a, h0, h, g, da, db, reverse):
            T, C = a.shape
            lam = g[0 if reverse else T - 1].copy()  # dL/dh[t], carried back in time
            for step in range(T):
                t = step if reverse else T - 1 - step
                if step > 0:  # add what flows back from the step that followed t
                    after = t - 1 if reverse else t + 1
                    for c in range(C):
                        lam[c] = g[t, c] + a[after, c] * lam[c]
                if step < T - 1:  # h[t] was computed from its neighbour h[before]
                    before = t + 1 if reverse else t - 1
                    for c in range(C):  # branch-free inner loops vectorise
                        db[t, c] = lam[c]
                        da[t, c] = lam[c] * h[before, c]
                else:  # ... or, at the first step, from h0
                    for c in range(C):
                        db[t, c] = lam[c]
                        da[t, c] = lam[c] * h0[c]
            return lam

        _NUMBA_VJP_KERNEL = vjp
    return _NUMBA_VJP_KERNEL


_NUMBA_VJP_KERNEL = None


def linear_recurrence_vjp_numba(
    a: np.ndarray, h0: np.ndarray, h: np.ndarray, g: np.ndarray, reverse: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The VJP of the recurrence in one fused pass: ``(da, db, dh0)`` (chapter 5's equations).

    ``db`` is the reverse recurrence ``db[t] = g[t] + a[t+1] db[t+1]`` and ``da[t] = db[t] h[t-1]``
    (mirrored for ``reverse``), computed in the same loop, so the pass reads ``a``, ``h``, ``g``
    and writes ``da``, ``db``: 5 arrays against the forward pass's 3. Arguments are 2-D
    ``(T, C)`` with ``T >= 1``, as for :func:`linear_recurrence_numba`.

    Defined in chapter 5.
    """
    da = np.empty_like(a)
    db = np.empty_like(a)
    lam = _numba_vjp_kernel()(a, h0, h, g, da, db, reverse)
    t0 = a.shape[0] - 1 if reverse else 0
    return da, db, a[t0] * lam

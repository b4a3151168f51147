"""Associative operators for scans.

Defined in chapter 1 (``add``, ``maximum``, ``affine``) and chapter 2 (``matrix_affine``).

A scan needs only an associative binary operator and its identity. Here an operator acts
on *sequences of elements* stored with time as the leading axis, so one call combines many
pairs at once: ``op.combine(x, y)`` combines ``x[i]`` (earlier) with ``y[i]`` (later) for
every ``i``. That is exactly the "for all i in parallel" step of a parallel scan, written
as one NumPy expression.

Elements are

* ``add``, ``maximum``: arrays of shape ``(n, *shape)``;
* ``affine``: pairs ``(a, b)`` of arrays of shape ``(n, *shape)``, the map ``h -> a*h + b``;
* ``matrix_affine``: pairs ``(A, b)`` with ``A`` of shape ``(n, k, k)`` and ``b`` of shape
  ``(n, k)``, the map ``h -> A @ h + b``.

Composing affine maps is what makes the linear recurrence ``h_t = a_t h_{t-1} + b_t`` a scan:
applying ``(a1, b1)`` and then ``(a2, b2)`` gives ``h -> a2 (a1 h + b1) + b2``, that is the
pair ``(a2 a1, a2 b1 + b2)``. The book writes this operator ``•``, earlier operand on the left
like ``combine``: ``(a1, b1) • (a2, b2) = (a2 a1, a2 b1 + b2)`` (book/notation.md). Chapter 1
proves it is associative.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Operator",
    "add",
    "affine",
    "matrix_affine",
    "maximum",
    "length",
    "take",
    "put",
    "concat",
    "check_associative",
]

Elements = Any  # an array, or a tuple of arrays sharing the leading (time) axis


@dataclass(frozen=True)
class Operator:
    """An associative operator with its identity.

    Every scan in this book relies on associativity: the parallel algorithms regroup the
    combinations (Hillis-Steele by powers of two, Blelloch as a tree, the chunked scan by
    chunks), and only an associative operator gives the same answer under every grouping.
    Nothing here can prove that about the ``combine`` you pass: a non-associative one
    (subtraction, an average) runs without error and gives a *different* answer from each
    algorithm. :func:`check_associative` tests it on samples of your own data, cheaply.
    Floating-point addition and multiplication are associative only up to rounding, which
    is the difference the book's tests allow for. The parallel algorithms also pad with
    ``identity``, so it must be a true identity on both sides.

    Attributes:
        name: a short name (``"add"``).
        combine: ``combine(x, y)`` applies the operator elementwise over the leading axis,
            ``x`` holding the earlier operands and ``y`` the later ones.
        identity: ``identity(like, n)`` returns ``n`` identity elements shaped and typed like
            the elements of ``like``.
        symbol: how the book writes it (``"+"``).

    Defined in chapter 1.
    """

    name: str
    combine: Callable[[Elements, Elements], Elements]
    identity: Callable[[Elements, int], Elements]
    symbol: str

    def __repr__(self) -> str:
        return f"scanbook.ops.{self.name}"


# -- helpers that treat an array and a tuple of arrays alike -------------------------------


def length(xs: Elements) -> int:
    """The number of elements (the length of the leading axis). Defined in chapter 1."""
    return len(xs[0]) if isinstance(xs, tuple) else len(xs)


def take(xs: Elements, idx) -> Elements:
    """Elements at ``idx`` (an int array, slice or int) along the leading axis.

    Defined in chapter 1.
    """
    if isinstance(xs, tuple):
        return tuple(x[idx] for x in xs)
    return xs[idx]


def put(xs: Elements, idx, values: Elements) -> None:
    """Write ``values`` into ``xs`` at ``idx`` (in place). Defined in chapter 1."""
    if isinstance(xs, tuple):
        for x, v in zip(xs, values, strict=True):
            x[idx] = v
    else:
        xs[idx] = values


def concat(parts: list[Elements]) -> Elements:
    """Concatenate element sequences along the leading axis. Defined in chapter 1."""
    if isinstance(parts[0], tuple):
        return tuple(np.concatenate(p) for p in zip(*parts, strict=True))
    return np.concatenate(parts)


def copy(xs: Elements) -> Elements:
    """A copy that can be written to without touching ``xs``."""
    if isinstance(xs, tuple):
        return tuple(np.array(x, copy=True) for x in xs)
    return np.array(xs, copy=True)


# -- the operators -------------------------------------------------------------------------


def _add_identity(like, n):
    x = np.asarray(like)
    return np.zeros((n,) + x.shape[1:], dtype=x.dtype)


def _max_identity(like, n):
    x = np.asarray(like)
    if x.dtype == np.bool_:  # maximum of booleans is "any so far": identity False
        low = False
    elif np.issubdtype(x.dtype, np.floating):
        low = -np.inf
    elif np.issubdtype(x.dtype, np.integer):
        low = np.iinfo(x.dtype).min
    else:
        raise TypeError(f"maximum needs real numbers; got dtype {x.dtype}")
    return np.full((n,) + x.shape[1:], low, dtype=x.dtype)


add = Operator("add", lambda x, y: x + y, _add_identity, "+")

maximum = Operator("maximum", np.maximum, _max_identity, "max")


def _affine_combine(x, y):
    a1, b1 = x
    a2, b2 = y
    return (a2 * a1, a2 * b1 + b2)


def _affine_identity(like, n):
    a, b = like
    shape = (n,) + np.shape(a)[1:]
    return (np.ones(shape, dtype=np.asarray(a).dtype), np.zeros(shape, dtype=np.asarray(b).dtype))


affine = Operator("affine", _affine_combine, _affine_identity, "•")


def _matrix_affine_combine(x, y):
    A1, b1 = x
    A2, b2 = y
    return (A2 @ A1, (A2 @ b1[..., None])[..., 0] + b2)


def _matrix_affine_identity(like, n):
    A, b = like
    A = np.asarray(A)
    b = np.asarray(b)
    k = A.shape[-1]
    eye = np.broadcast_to(np.eye(k, dtype=A.dtype), (n,) + A.shape[1:]).copy()
    return (eye, np.zeros((n,) + b.shape[1:], dtype=b.dtype))


matrix_affine = Operator("matrix_affine", _matrix_affine_combine, _matrix_affine_identity, "•")

OPERATORS = {op.name: op for op in (add, maximum, affine, matrix_affine)}


# -- a spot-check of associativity -------------------------------------------------------------


def _close(u, v, rtol: float, atol: float) -> np.ndarray:
    """Elementwise ``u ≈ v`` reduced to one bool per sampled triple (NaN equal to NaN)."""
    parts = u if isinstance(u, tuple) else (u,)
    others = v if isinstance(v, tuple) else (v,)
    ok = None
    for p, q in zip(parts, others, strict=True):
        p, q = np.asarray(p), np.asarray(q)
        if p.dtype.kind in "fc" or q.dtype.kind in "fc":
            same = np.isclose(p, q, rtol=rtol, atol=atol, equal_nan=True)
        else:
            same = p == q
        same = same.reshape(len(same), -1).all(axis=1) if same.ndim > 1 else same
        ok = same if ok is None else ok & same
    return ok


def check_associative(
    op: Operator,
    xs: Elements,
    *,
    samples: int = 100,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    seed: int = 0,
) -> bool:
    """Spot-check that ``op`` is associative on the data ``xs``: a cheap test, not a proof.

    Draws ``samples`` random triples ``(x, y, z)`` of elements of ``xs`` and compares
    ``(x ⊕ y) ⊕ z`` with ``x ⊕ (y ⊕ z)``: two vectorised calls of ``op.combine`` each, so
    the cost is that of about four scan levels over ``samples`` elements. Floating-point
    results are compared up to ``rtol`` and ``atol`` (rounding makes even ``add`` differ in
    the last bits); integers and booleans exactly; NaN equals NaN.

    Returns True when every sampled triple agrees, False as soon as one does not. A True is
    evidence, not proof: the operator may still fail on data that was not sampled.

    ``check_associative(ops.add, x)`` is True; for ``Operator("subtract", lambda x, y: x - y,
    ops.add.identity, "-")`` it is False on almost any data, which is why the four algorithms
    of chapter 2 give four different answers for it.

    Defined in chapter 1 (where associativity is what makes a scan parallel).
    """
    if not isinstance(op, Operator):
        raise TypeError(f"op must be a scanbook.ops.Operator (e.g. ops.add); got {op!r}")
    if isinstance(samples, bool) or not isinstance(samples, int | np.integer) or samples < 1:
        raise ValueError(f"samples must be a positive integer; got {samples!r}")
    xs = tuple(np.asarray(x) for x in xs) if isinstance(xs, tuple) else np.asarray(xs)
    if np.ndim(xs[0] if isinstance(xs, tuple) else xs) == 0:
        raise ValueError("xs must have a leading (time) axis; got a scalar")
    n = length(xs)
    if n == 0:
        return True
    idx = np.random.default_rng(seed).integers(0, n, size=(3, int(samples)))
    x, y, z = (take(xs, i) for i in idx)
    left = op.combine(op.combine(x, y), z)
    right = op.combine(x, op.combine(y, z))
    return bool(np.all(_close(left, right, rtol, atol)))

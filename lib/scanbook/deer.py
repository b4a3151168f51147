"""DEER: a non-linear recurrence evaluated in parallel by Newton's method.

Defined in chapter 9.

A recurrent cell ``h[t] = f(h[t-1], x[t])`` with ``h[-1] = h0`` is a system of ``T``
equations in the ``T`` unknown states. Write the residual of a guess ``h``

    r[t] = h[t] - f(h[t-1], x[t]),

and linearise ``f`` around the guess, with ``J[t] = df/dh`` at ``(h[t-1], x[t])``. Setting the
linearised residual to zero gives the next guess as a *linear* recurrence (Lim et al. 2024):

    h_new[t] = J[t] @ h_new[t-1] + (f(h[t-1], x[t]) - J[t] @ h[t-1]),    h_new[-1] = h0,

which chapter 5's :func:`scanbook.jax.matrix_linear_recurrence` solves with a parallel scan.
Each iteration makes at least one more leading state exact (``h_new[0]`` is exact from the
first iteration on, because ``h[-1] = h0`` is known), so Newton's method converges in at most
``T`` iterations; near the solution it converges quadratically, in practice in a handful.

Three methods share that loop:

* ``"newton"``: full Jacobians (``jax.jacfwd`` of the cell, ``n x n`` a step): ``O(T n^2)``
  memory and ``O(T n^3)`` work a scan (each combination is a matrix product).
* ``"quasi"``: only the Jacobian's diagonal (Gonzalez et al. 2024, quasi-DEER): the scalar
  affine scan of chapters 1-5, ``O(T n)`` memory. Its fixed point is the same; it takes more
  iterations because the step is no longer Newton's.
* ``"damped"``: Newton's step with the Jacobians scaled down, ``A[t] = J[t] / (1 + lam)``:
  the step ``d = h_new - h`` solves ``d[t] = A[t] @ d[t-1] - r[t]``, again a linear
  recurrence. ``lam = 0`` is Newton; as ``lam`` grows the step tends to ``d = -r``, that is
  ``h_new[t] = f(h[t-1], x[t])``, the fixed-point (Picard) step, whose scan has no products
  of Jacobians and cannot overflow. ``lam`` starts at ``1e-3``; a step that overflows (a state
  inf, NaN or beyond ``1e8`` times the largest ``|f|``) is tried again with ``lam`` ten times
  larger (at most 12 tries), and after every iteration ``lam`` shrinks tenfold, back towards
  Newton. Whether a step lowers the residual is not tested: the damping only keeps the scan
  finite. This is a simple homotopy between Newton and Picard. It is *not*
  Levenberg-Marquardt or trust-region damping: a heavily damped Levenberg-Marquardt step
  shrinks towards no step at all, where this one tends to the full fixed-point step. ELK
  (Gonzalez et al. 2024) is that different method: each step a trust-region
  (Levenberg-Marquardt) problem, solved exactly with a parallel Kalman smoother.

Gradients do not flow through the Newton loop. At the solution ``h = F(h)`` (``F`` applies the
cell to the shifted states), so by the implicit function theorem the adjoint
``delta[t] = g[t] + J[t+1]^T delta[t+1]`` is one more linear recurrence, run in reverse with the
transposed Jacobians; the parameters', inputs' and ``h0``'s gradients are then one
vector-Jacobian product of the cell over all steps at once (:func:`_implicit_vjp`). This
assumes the solve converged: after a solve that stopped early the gradient is taken at the
wrong states.
"""

from __future__ import annotations

import warnings
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import jax as sbjax

__all__ = ["Info", "METHODS", "residual", "sequential", "solve", "newton_step"]

METHODS = ("newton", "quasi", "damped")


class Info(NamedTuple):
    """What :func:`solve` reports beside the states.

    The iteration stops when the largest residual ``|h[t] - f(h[t-1], x[t])|`` falls to
    ``tol`` OR when the last iteration changed no state by more than ``tol`` (in float32 the
    residual can stall at the rounding floor), or after ``max_iter`` iterations, or when a
    residual becomes NaN or infinite.

    Attributes:
        iterations: how many Newton (or damped / quasi) steps were taken.
        converged: whether the largest residual fell to ``tol``, or the last step changed no
            state by more than ``tol``, without failing. In the second case the residual is
            only bounded by ``(1 + max_t ||J[t]||) * tol`` (``r = -(I - L_J) d`` for the last
            step ``d``): read ``residual`` to see where it stopped.
        residuals: the largest residual before each step and after the last one, length
            ``max_iter + 1``; entries past ``iterations`` are NaN.
        failed: whether a residual became NaN or infinite (the iteration stopped there).
        damping: for ``method="damped"``, the ``lam`` each step was taken with (entry ``k``
            for step ``k``), length ``max_iter``, NaN past ``iterations``; all NaN for the
            other methods.
        tries: for ``method="damped"``, how many values of ``lam`` step ``k`` tried (1 when
            the first did not overflow); zero past ``iterations`` and for the other methods.

    Defined in chapter 9.
    """

    iterations: Any
    converged: Any
    residuals: Any
    failed: Any
    damping: Any = None
    tries: Any = None

    @property
    def residual(self):
        """The final residual (the entry of ``residuals`` at ``iterations``)."""
        return self.residuals[self.iterations]


# -- the cell over all steps ------------------------------------------------------------------


def _shift(hs, h0):
    """``h[t-1]`` for every ``t``: ``h0`` then ``hs[:-1]``."""
    return jnp.concatenate([h0[None], hs[:-1]], axis=0)


def _apply_all(cell, params, h_prev, xs):
    """``f(h[t-1], x[t])`` for every step at once (the steps are independent given ``h_prev``)."""
    return jax.vmap(cell, in_axes=(None, 0, 0))(params, h_prev, xs)


def residual(cell, params, xs, h0, hs):
    """``r[t] = h[t] - f(h[t-1], x[t])``: zero at the solution.

    Defined in chapter 9.
    """
    return hs - _apply_all(cell, params, _shift(hs, h0), xs)


def _jacobians(cell, params, h_prev, xs):
    """``J[t] = df/dh`` at ``(h[t-1], x[t])``: shape ``(T, n, n)``."""
    return jax.vmap(jax.jacfwd(cell, argnums=1), in_axes=(None, 0, 0))(params, h_prev, xs)


def _jacobian_diagonals(cell, params, h_prev, xs):
    """The diagonals of the ``J[t]``, shape ``(T, n)``, in ``O(T n)`` memory.

    One forward-mode product per state component ``i`` gives column ``i`` of every ``J[t]``;
    only its ``i``-th entry is kept, so no ``n x n`` matrix is ever stored.
    """
    n = h_prev.shape[-1]
    f_t = lambda h, x: cell(params, h, x)

    def column_entry(i):
        e = jnp.zeros((n,), h_prev.dtype).at[i].set(1)
        tangent = jnp.broadcast_to(e, h_prev.shape)
        _, col = jax.jvp(lambda h: jax.vmap(f_t)(h, xs), (h_prev,), (tangent,))
        return col[:, i]

    return jax.lax.map(column_entry, jnp.arange(n)).T


def newton_step(cell, params, xs, h0, hs, *, method: str = "newton", safeguard: bool = True):
    """One DEER iteration: the next guess from the guess ``hs`` (shape ``(T, n)``).

    ``newton``: ``h_new[t] = J[t] @ h_new[t-1] + f(h[t-1], x[t]) - J[t] @ h[t-1]``, solved by
    :func:`scanbook.jax.matrix_linear_recurrence`. ``quasi``: the same with ``J[t]`` replaced
    by its diagonal, solved by :func:`scanbook.jax.linear_recurrence`. With ``safeguard``,
    states where the step overflowed take the fixed-point step instead (:func:`_safeguard`).

    Defined in chapter 9.
    """
    h_prev = _shift(hs, h0)
    f = _apply_all(cell, params, h_prev, xs)
    if method == "quasi":
        d = _jacobian_diagonals(cell, params, h_prev, xs)
        h_new = sbjax.linear_recurrence(d, f - d * h_prev, h0)
    else:
        J = _jacobians(cell, params, h_prev, xs)
        h_new = sbjax.matrix_linear_recurrence(J, f - jnp.einsum("tij,tj->ti", J, h_prev), h0)
    return _safeguard(h_new, f) if safeguard else h_new


def _safeguard(h_new, f):
    """Where the linearised step overflowed, take the plain fixed-point step ``f`` instead.

    Far from the solution the products of Jacobians in the scan can exceed the floating-point
    range (Jacobians of norm 100 over 20 steps pass float32's 3e38), so some ``h_new[t]`` are
    inf or NaN. The states before the first such ``t`` are unaffected (a prefix of the scan
    depends only on earlier steps), and ``f[t] = cell(h[t-1], x[t])`` is exact wherever
    ``h[t-1]`` already is, so this substitution keeps the guarantee that every iteration
    makes at least one more leading state exact.
    """
    return jnp.where(_in_range(h_new, f), h_new, f)


_BOUND = 1e8  # a step of more than 1e8 times the largest |f| is taken to have overflowed


def _in_range(h_new, f):
    """Which states of a step did not overflow: finite and at most 1e8 times the largest |f|."""
    return jnp.abs(h_new) <= _BOUND * (1 + jnp.max(jnp.abs(f)))  # also false for NaN


def _linearise(cell, params, xs, h0, hs):
    """What every step from the guess ``hs`` needs: ``h[t-1]``, ``f(h[t-1], x[t])`` and ``J[t]``."""
    h_prev = _shift(hs, h0)
    return h_prev, _apply_all(cell, params, h_prev, xs), _jacobians(cell, params, h_prev, xs)


def _damped_solve(h_prev, f, J, h0, lam):
    """Newton's step with the Jacobians scaled by ``1 / (1 + lam)``; and whether it overflowed.

    ``h_new[t] = A[t] @ (h_new[t-1] - h[t-1]) + f(h[t-1], x[t])`` with ``A = J / (1 + lam)``:
    ``lam = 0`` is Newton, a large ``lam`` approaches the fixed-point step ``h_new = f``.
    For every ``lam`` the step keeps Newton's guarantee (a state whose predecessors are
    exact comes out exact), and shrinking ``A`` keeps the scan's products in range.
    """
    A = J / (1.0 + lam)
    h_new = sbjax.matrix_linear_recurrence(A, f - jnp.einsum("tij,tj->ti", A, h_prev), h0)
    return h_new, ~jnp.all(_in_range(h_new, f))


def _damped_step(cell, params, xs, h0, hs, lam):
    """:func:`_damped_solve` from the guess ``hs``: ``(h_new, f, overflowed)``."""
    h_prev, f, J = _linearise(cell, params, xs, h0, hs)
    h_new, overflowed = _damped_solve(h_prev, f, J, h0, lam)
    return h_new, f, overflowed


# -- the sequential reference -------------------------------------------------------------------


def sequential(cell, params, xs, h0):
    """The plain loop ``h[t] = cell(params, h[t-1], x[t])`` with ``lax.scan``: the reference.

    Args:
        cell: ``cell(params, h, x) -> h_next``, with ``h`` of shape ``(n,)``.
        params: any pytree, passed to the cell unchanged.
        xs: inputs, shape ``(T, ...)``: ``xs[t]`` is the cell's ``x`` at step ``t``.
        h0: the initial state, shape ``(n,)``.

    Returns:
        ``hs`` of shape ``(T, n)``.

    Defined in chapter 9.
    """
    h0, xs = _check(cell, params, xs, h0)

    def step(h, x):
        h = cell(params, h, x)
        return h, h

    _, hs = jax.lax.scan(step, h0, xs)
    return hs


# -- argument checks ---------------------------------------------------------------------------


def _check(cell, params, xs, h0):
    if not callable(cell):
        raise TypeError(f"cell must be a function cell(params, h, x) -> h; got {type(cell)}")
    h0 = jnp.asarray(h0) if hasattr(h0, "shape") else jnp.asarray(np.asarray(h0, float))
    if h0.ndim != 1:
        raise ValueError(f"h0 must be a vector of shape (n,); got shape {h0.shape}")
    if not jnp.issubdtype(h0.dtype, jnp.floating):
        raise TypeError(f"h0 must have a floating dtype; got {h0.dtype}")
    leaves = jax.tree_util.tree_leaves(xs)
    if not leaves:
        raise ValueError("xs must hold at least one array with a leading time axis")
    T = {np.shape(x)[0] if np.ndim(x) else None for x in leaves}
    if None in T or len(T) != 1:
        raise ValueError(
            f"xs must have a common leading time axis; got shapes {[np.shape(x) for x in leaves]}"
        )
    x0 = jax.tree.map(lambda v: jax.ShapeDtypeStruct(np.shape(v)[1:], jnp.result_type(v)), xs)
    out = jax.eval_shape(lambda h, x: cell(params, h, x), h0, x0)
    if out.shape != h0.shape or out.dtype != h0.dtype:
        raise ValueError(
            "cell(params, h0, xs[0]) must return a state of the shape and dtype of h0, "
            f"{h0.shape} {h0.dtype}; got {out.shape} {out.dtype}"
        )
    return h0, xs


def _default_tol(dtype) -> float:
    return 1e-10 if jnp.dtype(dtype) == jnp.float64 else 1e-5


# -- the solver --------------------------------------------------------------------------------


class _Carry(NamedTuple):
    k: Any  # iterations taken
    hs: Any
    res: Any  # largest residual of hs
    step: Any  # largest change of a state in the last iteration
    history: Any
    lam: Any  # the damping of the damped method
    lams: Any  # the lam each step was accepted with (damped)
    tries: Any  # how many lam each step tried (damped)


def _max_abs(x):
    return jnp.max(jnp.abs(x))


def _damped_update(cell, params, xs, h0, c: _Carry, safeguard):
    """Try ``lam``, ``10 lam``, ``100 lam``, ... until the step does not overflow (12 tries).

    The linearisation (``f`` and the Jacobians) does not depend on ``lam``: it is computed
    once, and each try only scales the Jacobians and runs the scan again.
    """
    h_prev, f, J = _linearise(cell, params, xs, h0, c.hs)

    def attempt(lam, tries):
        h_new, overflowed = _damped_solve(h_prev, f, J, h0, lam)
        return lam, h_new, overflowed, tries + 1

    def rejected(state):
        _, _, overflowed, tries = state
        return overflowed & (tries < 12)

    def next_try(state):
        return attempt(state[0] * 10.0, state[-1])

    first = attempt(c.lam, jnp.int32(0))
    lam, h_new, _, tries = jax.lax.while_loop(rejected, next_try, first)
    if safeguard:
        h_new = _safeguard(h_new, f)
    return h_new, lam, tries


@partial(jax.jit, static_argnums=(0, 5, 6, 8))
def _iterate(cell, params, xs, h0, init, method, max_iter, tol, safeguard):
    def res_of(hs):
        return _max_abs(residual(cell, params, xs, h0, hs))

    r0 = res_of(init)
    history = jnp.full((max_iter + 1,), jnp.nan, init.dtype).at[0].set(r0)
    lam0 = jnp.asarray(1e-3, init.dtype)
    inf = jnp.asarray(jnp.inf, init.dtype)
    lams = jnp.full((max_iter,), jnp.nan, init.dtype)
    tries = jnp.zeros((max_iter,), jnp.int32)
    carry = _Carry(jnp.int32(0), init, r0, inf, history, lam0, lams, tries)

    def keep_going(c):
        return (c.k < max_iter) & jnp.isfinite(c.res) & (c.res > tol) & (c.step > tol)

    def body(c):
        lams, tries = c.lams, c.tries
        if method == "damped":
            hs, used, n_tries = _damped_update(cell, params, xs, h0, c, safeguard)
            lams, tries = lams.at[c.k].set(used), tries.at[c.k].set(n_tries)
            lam = jnp.maximum(used / 10.0, 1e-8)  # start the next iteration nearer Newton
        else:
            hs = newton_step(cell, params, xs, h0, c.hs, method=method, safeguard=safeguard)
            lam = c.lam
        res, step = res_of(hs), _max_abs(hs - c.hs)
        history = c.history.at[c.k + 1].set(res)
        return _Carry(c.k + 1, hs, res, step, history, lam, lams, tries)

    out = jax.lax.while_loop(keep_going, body, carry)
    failed = ~jnp.isfinite(out.res)
    converged = ((out.res <= tol) | (out.step <= tol)) & ~failed
    return out.hs, Info(out.k, converged, out.history, failed, out.lams, out.tries)


def solve(
    cell,
    params,
    xs,
    h0,
    *,
    method: str = "newton",
    max_iter: int | None = None,
    tol: float | None = None,
    init=None,
    safeguard: bool = True,
    warn: bool = True,
):
    """Evaluate ``h[t] = cell(params, h[t-1], xs[t])`` for all ``t`` by DEER's iterations.

    Args:
        cell: ``cell(params, h, x) -> h_next``, ``h`` of shape ``(n,)``, a smooth function.
        params: any pytree (differentiable in reverse mode, ``jax.grad`` / ``jax.vjp``, by the
            implicit function theorem, at the returned states: the gradient is right only if
            the solve converged; ``jax.jvp`` / ``jax.jacfwd`` through ``solve`` raise).
        xs: inputs with a leading time axis ``T`` (an array or a pytree of arrays).
        h0: the initial state ``h[-1]``, shape ``(n,)``, a floating dtype.
        method: ``"newton"`` (full Jacobians), ``"quasi"`` (their diagonals) or ``"damped"``
            (Newton with Jacobians scaled by ``1/(1 + lam)``, between Newton and Picard).
        max_iter: the most iterations; default ``min(T, 100)`` (Newton needs at most ``T``).
        tol: stop when ``max |h[t] - cell(params, h[t-1], xs[t])| <= tol`` OR when an
            iteration changed no state by more than ``tol`` (the float32 rounding floor);
            default ``1e-10`` in float64 and ``1e-5`` in float32. "Converged" then means one
            of the two, so the final residual can exceed ``tol`` by up to a factor
            ``1 + max ||J[t]||`` (see :class:`Info`).
        init: a first guess for the states, shape ``(T, n)`` (a warm start, for example the
            previous training step's states); default zeros.
        safeguard: where a step overflows (inf, NaN, or more than 1e8 times the largest
            cell output), take the fixed-point step ``cell(params, h[t-1], x[t])`` there
            instead. ``False`` gives plain Newton, which can overflow and fail.
        warn: warn (``RuntimeWarning``) when the iteration did not converge or failed. Under
            ``jax.jit`` or ``jax.vmap`` nothing can be warned about: read ``info``.

    Returns:
        ``(hs, info)``: the states, shape ``(T, n)``, and an :class:`Info`. When
        ``info.converged`` is false the states are the last iterate, not the solution.

    Float32 matrix products run at full precision (no TF32 on a GPU). The solver is compiled
    once per ``cell`` object (a static argument of ``jax.jit``): pass the same function object
    to reuse it; a fresh ``lambda`` per call recompiles.

    Defined in chapter 9.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    h0, xs = _check(cell, params, xs, h0)
    T, n = jax.tree_util.tree_leaves(xs)[0].shape[0], h0.shape[0]
    if max_iter is None:
        max_iter = max(1, min(T, 100))
    if isinstance(max_iter, bool) or not isinstance(max_iter, int | np.integer) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int; got {max_iter!r}")
    if tol is None:
        tol = _default_tol(h0.dtype)
    if not np.isscalar(tol) or not tol >= 0:
        raise ValueError(f"tol must be a number >= 0; got {tol!r}")
    if init is None:
        init = jnp.zeros((T, n), h0.dtype)
    else:
        init = jnp.asarray(init, dtype=h0.dtype)
        if init.shape != (T, n):
            raise ValueError(f"init must have shape (T, n) = {(T, n)}; got {init.shape}")
    if T == 0:
        empty = jnp.zeros((0, n), h0.dtype)
        info = Info(
            jnp.int32(0),
            jnp.bool_(True),
            jnp.zeros((1,), h0.dtype),
            jnp.bool_(False),
            jnp.zeros((0,), h0.dtype),
            jnp.zeros((0,), jnp.int32),
        )
        return empty, info
    with jax.default_matmul_precision("highest"):
        hs_star, info = _iterate(
            cell,
            jax.lax.stop_gradient(params),
            jax.lax.stop_gradient(xs),
            jax.lax.stop_gradient(h0),
            jax.lax.stop_gradient(init),
            method,
            int(max_iter),
            tol,
            bool(safeguard),
        )
        hs = _implicit(cell, params, xs, h0, hs_star)
    if warn:
        _warn_if_needed(info, method, max_iter)
    return hs, info


def _warn_if_needed(info: Info, method: str, max_iter: int) -> None:
    try:
        failed, converged = bool(info.failed), bool(info.converged)
        res = float(info.residual)
    except jax.errors.ConcretizationTypeError:
        return  # under jit / vmap: the caller reads info
    if failed:
        warnings.warn(
            f"DEER ({method}) stopped: a residual became NaN or infinite after "
            f"{int(info.iterations)} iterations; the states returned are not a solution "
            "(try method='damped' or a better init)",
            RuntimeWarning,
            stacklevel=3,
        )
    elif not converged:
        warnings.warn(
            f"DEER ({method}) did not converge in {int(info.iterations)} of max_iter="
            f"{max_iter} iterations (residual {res:.3g}); the states returned are the last "
            "iterate, not the solution",
            RuntimeWarning,
            stacklevel=3,
        )


# -- gradients by the implicit function theorem --------------------------------------------------


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _implicit(cell, params, xs, h0, hs):
    """The identity on the solved states ``hs``, whose VJP is the implicit one."""
    return hs


def _implicit_fwd(cell, params, xs, h0, hs):
    return hs, (params, xs, h0, hs)


def _implicit_vjp(cell, residuals, g):
    """``delta[t] = g[t] + J[t+1]^T delta[t+1]``; then one VJP of the cell over every step.

    At the solution ``hs = F(params, xs, h0, hs)``, so ``d hs = (I - dF/dhs)^{-1} dF``; the
    transposed solve ``(I - dF/dhs)^T delta = g`` is the reverse recurrence above (``dF/dhs``
    is the block sub-diagonal of the ``J[t]``), and the adjoint ``delta`` (chapter 5's total
    derivative ``dL/dh[t]``) then pulls back through ``F``.
    """
    params, xs, h0, hs = residuals
    with jax.default_matmul_precision("highest"):  # as the forward solve: no TF32 on a GPU
        h_prev = _shift(hs, h0)
        J = _jacobians(cell, params, h_prev, xs)
        Jt_next = jnp.concatenate([jnp.swapaxes(J[1:], 1, 2), jnp.zeros_like(J[:1])])
        delta = sbjax.matrix_linear_recurrence(Jt_next, g, jnp.zeros_like(h0), reverse=True)
        _, pullback = jax.vjp(lambda p, x, hp: _apply_all(cell, p, hp, x), params, xs, h_prev)
        dparams, dxs, dh_prev = pullback(delta)
    return dparams, dxs, dh_prev[0], jnp.zeros_like(hs)


_implicit.defvjp(_implicit_fwd, _implicit_vjp)

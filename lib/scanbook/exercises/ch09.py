"""Chapter 9's graders: DEER's Newton step, its adjoint, and quasi-DEER's Jacobian diagonals.

Defined in chapter 9 (DEER: parallel evaluation of non-linear recurrences).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from ._grading import (
    Case,
    Feedback,
    grade,
    grading_salt,
    make_rng,
    random_values,
    same,
    tolerance,
)

__all__ = ["check_scalar_newton_step", "check_deer_adjoint", "check_jacobian_diagonal"]


# -- exercise 1: one Newton step of h[t] = tanh(w h[t-1] + u[t]) ---------------------------------


def _newton_reference(w, u, h0, h, *, shift=True, minus=True, chain=True):
    """The Newton step in float64 by a plain loop (the flags build the typical mistakes)."""
    w, u, h0, h = (np.asarray(x, np.float64) for x in (w, u, h0, h))
    T = len(u)
    h_prev = np.concatenate([h0[None], h[:-1]]) if shift else h
    f = np.tanh(w * h_prev + u)
    J = (1 - f**2) * (w if chain else 1.0)
    out = np.zeros_like(u)
    carry = h0
    for t in range(T):
        carry = J[t] * carry + f[t] - (J[t] * h_prev[t] if minus else 0.0)
        out[t] = carry
    return out


def check_scalar_newton_step(
    fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn(w, u, h0, h) -> h_new``: one Newton step of ``h[t] = tanh(w h[t-1] + u[t])``.

    ``w``, ``h0``: shape ``(C,)`` (one weight and one initial state per channel); ``u``, ``h``:
    ``(T, C)``, ``h`` the current guess of the states. The answer solves the linear
    recurrence ``h_new[t] = J[t] h_new[t-1] + f[t] - J[t] h_prev[t]`` with ``h_new[-1] = h0``,
    where ``h_prev[t] = h[t-1]`` (``h0`` at ``t = 0``), ``f[t] = tanh(w h_prev[t] + u[t])`` and
    ``J[t] = w (1 - f[t]^2)``. Compared with a float64 loop.

    Chapter 9, exercise 1.
    """
    rng = make_rng(91)
    cases = []
    for T, C in ((0, 2), (1, 1), (2, 3), (5, 2), (13, 4), (31, 3), (100, 2)):
        dtype = np.float32 if T == 31 else np.float64
        w = random_values(rng, C, low=0.3, high=1.5, dtype=dtype)
        u = random_values(rng, (T, C), low=0.1, high=1.0, dtype=dtype)
        h0 = random_values(rng, C, low=0.1, high=0.9, dtype=dtype)
        h = random_values(rng, (T, C), low=0.1, high=0.9, dtype=dtype)
        rtol, atol = tolerance(dtype)
        cases.append(
            Case(
                f"T={T}, C={C}, {np.dtype(dtype).name}",
                (w, u, h0, h),
                _newton_reference(w, u, h0, h),
                show={"w": w, "u": u, "h0": h0, "h": h},
                rtol=rtol * 10,
                atol=atol * 100,
            )
        )

    def diagnose(case: Case, got) -> str | None:
        w, u, h0, h = case.args
        if len(u) < 1:
            return None
        if same(got, _newton_reference(w, u, h0, h, shift=False)):
            return (
                "the step linearises around h[t-1], the state step t STARTS from (h0 at t = 0): "
                "use h_prev = concatenate([h0[None], h[:-1]]), not h itself"
            )
        if same(got, np.tanh(w * np.concatenate([h0[None], h[:-1]]) + u)):
            return (
                "that is the fixed-point (Picard) step f(h[t-1], u[t]); Newton's step feeds the "
                "NEW state back through the Jacobian: "
                "h_new[t] = J[t] h_new[t-1] + f[t] - J[t] h[t-1]"
            )
        if same(got, _newton_reference(w, u, h0, h, minus=False)):
            return (
                "the linearisation f(h_prev) + J (h_new[t-1] - h_prev) has a -J[t] h_prev[t] term "
                "in the input of the recurrence"
            )
        if same(got, _newton_reference(w, u, h0, h, chain=False)):
            return "d tanh(w h + u)/dh = w (1 - tanh^2): the chain rule brings a factor w"
        return None

    return grade(
        "check_scalar_newton_step",
        fn,
        cases,
        hint="compute f and J at the shifted guess, then run one linear recurrence "
        "(sb.linear_recurrence(J, f - J * h_prev, h0) does it)",
        diagnose=diagnose,
        forbid=("scanbook.deer.newton_step",),
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


# -- exercise 2: the adjoint recurrence -----------------------------------------------------------


def _adjoint_reference(J, g, *, transpose=True, shift=True):
    J, g = np.asarray(J, np.float64), np.asarray(g, np.float64)
    T = len(g)
    delta = np.zeros_like(g)
    carry = np.zeros(g.shape[1:])
    for t in range(T - 1, -1, -1):
        nxt = t + 1 if shift else t
        M = J[nxt] if nxt < T else None
        if M is not None and transpose:
            M = M.T
        carry = g[t] + (M @ carry if M is not None else 0.0)
        delta[t] = carry
    return delta


def check_deer_adjoint(
    fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn(J, g) -> delta``: the adjoint of the solved states, ``delta[t] = dL/dh[t]``.

    ``delta`` is chapter 5's total derivative. ``J``: ``(T, n, n)``, the Jacobians
    ``J[t] = df/dh`` at the solution; ``g``: ``(T, n)``, the direct derivatives ``dL/dh``.
    The answer is the reverse recurrence ``delta[t] = g[t] + J[t+1]^T delta[t+1]``,
    ``delta[T-1] = g[T-1]``. Compared with a float64 loop.

    Chapter 9, exercise 2.
    """
    rng = make_rng(92)
    cases = []
    for T, n in ((0, 2), (1, 2), (2, 1), (3, 3), (8, 2), (17, 4), (31, 3)):
        dtype = np.float32 if T == 31 else np.float64
        J = random_values(rng, (T, n, n), low=0.05, high=0.5, dtype=dtype)
        g = random_values(rng, (T, n), dtype=dtype)
        rtol, atol = tolerance(dtype)
        cases.append(
            Case(
                f"T={T}, n={n}, {np.dtype(dtype).name}",
                (J, g),
                _adjoint_reference(J, g),
                show={"J": J, "g": g},
                rtol=rtol * 10,
                atol=atol * 100,
            )
        )

    def diagnose(case: Case, got) -> str | None:
        J, g = case.args
        if len(g) < 2:
            return None
        if same(got, _adjoint_reference(J, g, transpose=False)):
            return "the adjoint runs through the TRANSPOSED Jacobians: J[t+1].T @ delta[t+1]"
        if same(got, _adjoint_reference(J, g, shift=False)):
            return (
                "h[t] reaches the loss through the NEXT step, h[t+1] = f(h[t], x[t+1]), whose "
                "Jacobian is J[t+1], not J[t]"
            )
        if same(got, _adjoint_reference(J, g, transpose=False, shift=False)):
            return "two slips: use J[t+1] (the next step's Jacobian), transposed"
        return None

    return grade(
        "check_deer_adjoint",
        fn,
        cases,
        hint="run backwards in time: carry = g[t] + J[t+1].T @ carry (no J term at t = T-1)",
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


# -- exercise 3: the diagonals of the Jacobians (quasi-DEER) --------------------------------------


def _cells():
    import jax
    import jax.numpy as jnp

    def tanh_rnn(params, h, x):
        W, U = params
        return jnp.tanh(h @ W + x @ U)

    def gated(params, h, x):
        W, U, b = params
        z = jax.nn.sigmoid(x @ U + b)
        return (1 - z) * h + z * jnp.tanh(h @ W + x)

    return {"tanh RNN": tanh_rnn, "gated cell": gated}


@functools.lru_cache(maxsize=2)
def _jacobian_cases(salt: int | None = None) -> tuple[Case, ...]:
    """The cases of :func:`check_jacobian_diagonal`, built once per course salt (``grade``
    copies the args; ``salt`` is :func:`grading_salt`, which :func:`make_rng` mixes in)."""
    import jax
    import jax.numpy as jnp

    rng = make_rng(93)
    cases = []
    for (label, cell), sizes in zip(
        _cells().items(), (((5, 3), (1, 2), (0, 2)), ((11, 4), (1, 2), (7, 1))), strict=True
    ):
        for T_, n_ in sizes:
            W = random_values(rng, (n_, n_), low=0.1, high=0.8, dtype=np.float32)
            U = random_values(rng, (n_, n_), low=0.1, high=0.8, dtype=np.float32)
            b = random_values(rng, n_, low=0.1, high=0.5, dtype=np.float32)
            params = (W, U) if label == "tanh RNN" else (W, U, b)
            h_prev = random_values(rng, (T_, n_), low=0.1, high=0.9, dtype=np.float32)
            xs = random_values(rng, (T_, n_), low=0.1, high=0.9, dtype=np.float32)
            jac = jax.vmap(jax.jacfwd(cell, argnums=1), in_axes=(None, 0, 0))
            full = np.asarray(jac(params, jnp.asarray(h_prev), jnp.asarray(xs)), np.float64)
            expected = np.diagonal(full, axis1=1, axis2=2).copy()
            cases.append(
                Case(
                    f"{label}, T={T_}, n={n_}",
                    (cell, params, h_prev, xs),
                    expected,
                    show={"cell": label, "params": params, "h_prev": h_prev, "xs": xs},
                    rtol=1e-4,
                    atol=1e-5,
                )
            )
    return tuple(cases)


def check_jacobian_diagonal(
    fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn(cell, params, h_prev, xs) -> d``: ``d[t, i] = d cell(params, h, xs[t])_i / d h_i``
    at ``h = h_prev[t]``, the diagonals quasi-DEER keeps.

    ``cell(params, h, x) -> h_next`` is a JAX function of ``h`` of shape ``(n,)``; ``h_prev``
    and ``xs``: ``(T, n)``, float32. Compared with the diagonals of the full Jacobians
    (``jax.jacfwd``), at float32's tolerance.

    Chapter 9, exercise 3.
    """
    import jax

    cases = _jacobian_cases(grading_salt())

    def diagnose(case: Case, got) -> str | None:
        cell, params, h_prev, xs = case.args
        arr = np.asarray(got) if hasattr(got, "shape") else None
        T, n = h_prev.shape
        if arr is not None and arr.shape == (T, n, n):
            return "return only the diagonal of each J[t]: shape (T, n), not the full (T, n, n)"
        if arr is not None and arr.shape == (T, n):
            jac_x = jax.vmap(jax.jacfwd(cell, argnums=2), in_axes=(None, 0, 0))
            dx = np.diagonal(np.asarray(jac_x(params, h_prev, xs)), axis1=1, axis2=2)
            if same(arr, dx):
                return "that is d cell / d x; quasi-DEER needs the derivative in the STATE h"
        return None

    return grade(
        "check_jacobian_diagonal",
        fn,
        cases,
        hint="jax.vmap(jax.jacfwd(cell, argnums=1), in_axes=(None, 0, 0)) gives every J[t]; or, "
        "without storing them, one jax.jvp per unit vector e_i keeps entry i of column i",
        diagnose=diagnose,
        forbid=("scanbook.deer._jacobian_diagonals", "scanbook.deer._jacobians"),
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )

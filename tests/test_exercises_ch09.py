"""Chapter 9's graders: the reference answers pass, typical mistakes fail with their hint."""

import jax
import jax.numpy as jnp
import numpy as np
import scanbook as sb
from scanbook.exercises import ch09


def newton_step(w, u, h0, h):
    h_prev = np.concatenate([h0[None], h[:-1]])
    f = np.tanh(w * h_prev + u)
    J = w * (1 - f**2)
    return sb.linear_recurrence(J, f - J * h_prev, h0)


def test_scalar_newton_step():
    assert ch09.check_scalar_newton_step(newton_step, quiet=True)

    def unshifted(w, u, h0, h):
        f = np.tanh(w * h + u)
        J = w * (1 - f**2)
        return sb.linear_recurrence(J, f - J * h, h0)

    def picard(w, u, h0, h):
        return np.tanh(w * np.concatenate([h0[None], h[:-1]]) + u)

    def no_chain(w, u, h0, h):
        h_prev = np.concatenate([h0[None], h[:-1]])
        f = np.tanh(w * h_prev + u)
        return sb.linear_recurrence(1 - f**2, f - (1 - f**2) * h_prev, h0)

    for wrong, words in ((unshifted, "h_prev"), (picard, "Picard"), (no_chain, "chain rule")):
        fb = ch09.check_scalar_newton_step(wrong, quiet=True)
        assert not fb and words in fb.message


def adjoint(J, g, transpose=True):
    delta, carry = np.zeros_like(g), np.zeros(g.shape[1:], g.dtype)
    for t in range(len(g) - 1, -1, -1):
        M = J[t + 1].T if transpose and t + 1 < len(g) else (J[t + 1] if t + 1 < len(g) else 0)
        carry = g[t] + (M @ carry if t + 1 < len(g) else 0)
        delta[t] = carry
    return delta


def test_deer_adjoint():
    assert ch09.check_deer_adjoint(adjoint, quiet=True)
    fb = ch09.check_deer_adjoint(lambda J, g: adjoint(J, g, transpose=False), quiet=True)
    assert not fb and "TRANSPOSED" in fb.message


def test_jacobian_diagonal():
    jac = jax.vmap(jax.jacfwd(lambda c, p, h, x: c(p, h, x), argnums=2), in_axes=(None, None, 0, 0))

    def diagonal(cell, params, h_prev, xs):
        return jnp.diagonal(jac(cell, params, h_prev, xs), axis1=1, axis2=2)

    assert ch09.check_jacobian_diagonal(diagonal, quiet=True)
    fb = ch09.check_jacobian_diagonal(lambda c, p, h, x: jac(c, p, h, x), quiet=True)
    assert not fb and "only the diagonal" in fb.message

"""scanbook.deer: Newton, quasi-Newton and damped DEER against the sequential loop."""

import warnings

import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import pytest
from scanbook import deer


def gru(params, h, x):
    """A GRU cell in the form of Lim et al.'s tests (reset gate inside the candidate)."""
    Wir, Whr, bhr, Wiz, Whz, bhz, Win, Whn, bhn = params
    r = jax.nn.sigmoid(Wir @ x + Whr @ h + bhr)
    z = jax.nn.sigmoid(Wiz @ x + Whz @ h + bhz)
    n = jnp.tanh(Win @ x + r * (Whn @ h + bhn))
    return (1 - z) * n + z * h


def gru_problem(seed, dtype, nh, nx, T=100, scale=1.0):
    """Uniform weights times ``scale``, inputs divided by it (scale 100 is the hard case)."""
    key = jax.random.PRNGKey(seed)
    params = []
    for _ in range(3):
        k1, k2, k3, key = jax.random.split(key, 4)
        uniform = lambda k, shape: jax.random.uniform(k, shape, dtype) * 2 - 1
        params += [
            uniform(k1, (nh, nx)) / nx**0.5 * scale,
            uniform(k2, (nh, nh)) / nh**0.5 * scale,
            uniform(k3, (nh,)) / nh**0.5,
        ]
    k1, k2 = jax.random.split(key)
    xs = jax.random.normal(k1, (T, nx), dtype) / scale
    h0 = jax.random.normal(k2, (nh,), dtype)
    return tuple(params), xs, h0


def tanh_rnn(params, h, x):
    Wh, Wx = params
    return jnp.tanh(Wx @ x + Wh @ h)


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


@pytest.mark.parametrize("method", deer.METHODS)
def test_gru_float64_agrees_with_the_loop(x64, method):
    params, xs, h0 = gru_problem(0, jnp.float64, nh=5, nx=3)
    ref = deer.sequential(gru, params, xs, h0)
    hs, info = deer.solve(gru, params, xs, h0, method=method)
    assert hs.dtype == jnp.float64 and hs.shape == (100, 5)
    assert bool(info.converged) and not bool(info.failed)
    assert 1 <= int(info.iterations) <= 30
    np.testing.assert_allclose(hs, ref, atol=1e-6, rtol=0)
    # the residual history is recorded up to the last iteration, NaN after it
    its = int(info.iterations)
    assert np.all(np.isfinite(info.residuals[: its + 1]))
    assert np.all(np.isnan(info.residuals[its + 1 :]))
    assert float(info.residual) <= 1e-10 or float(info.residuals[its]) < float(info.residuals[0])
    # converged means: residual <= tol, or the last step moved no state by more than tol
    assert float(info.residual) <= 1e-10 or float(jnp.max(jnp.abs(hs - ref))) < 1e-8
    if method == "damped":
        assert np.all(np.asarray(info.tries[:its]) == 1)  # a mild cell: no step overflowed
    else:
        assert np.all(np.isnan(info.damping)) and not np.any(info.tries)


def test_gru_float32_hard_case():
    """Weights times 100: plain Newton overflows; the safeguard and the damping recover."""
    params, xs, h0 = gru_problem(0, jnp.float32, nh=2, nx=2, scale=100.0)
    ref = deer.sequential(gru, params, xs, h0)
    hs, info = deer.solve(gru, params, xs, h0)
    assert bool(info.converged)
    np.testing.assert_allclose(hs, ref, atol=1e-5, rtol=0)

    with pytest.warns(RuntimeWarning, match="NaN or infinite"):
        hs, info = deer.solve(gru, params, xs, h0, safeguard=False)
    assert bool(info.failed) and not bool(info.converged)

    hs, info = deer.solve(gru, params, xs, h0, method="damped", safeguard=False)
    assert bool(info.converged) and not bool(info.failed)
    np.testing.assert_allclose(hs, ref, atol=1e-5, rtol=0)
    # the record of the damping: the first step overflowed at lam = 1e-3 and was retried with
    # lam ten times larger each time; every later step starts from a tenth of the last lam
    its = int(info.iterations)
    lams, tries = np.asarray(info.damping), np.asarray(info.tries)
    assert tries[0] > 1 and np.all(tries[:its] >= 1) and np.all(tries[its:] == 0)
    np.testing.assert_allclose(lams[0], 1e-3 * 10.0 ** (tries[0] - 1), rtol=1e-5)
    for k in range(1, its):
        start = max(lams[k - 1] / 10, 1e-8)
        np.testing.assert_allclose(lams[k], start * 10.0 ** (tries[k] - 1), rtol=1e-4)
    assert np.all(np.isnan(lams[its:]))


def test_quasi_and_damped_reach_the_same_states(x64):
    params, xs, h0 = gru_problem(3, jnp.float64, nh=4, nx=2, T=37)
    states = [deer.solve(gru, params, xs, h0, method=m)[0] for m in deer.METHODS]
    for hs in states[1:]:
        np.testing.assert_allclose(hs, states[0], atol=1e-8, rtol=0)


def test_jacobian_diagonals_match_the_full_jacobians(x64):
    params, xs, h0 = gru_problem(1, jnp.float64, nh=4, nx=3, T=9)
    h_prev = jax.random.normal(jax.random.PRNGKey(7), (9, 4), jnp.float64)
    full = deer._jacobians(gru, params, h_prev, xs)
    diag = deer._jacobian_diagonals(gru, params, h_prev, xs)
    np.testing.assert_allclose(diag, jnp.diagonal(full, axis1=1, axis2=2), rtol=1e-12)


def test_check_grads_tanh_rnn(x64):
    """Lim et al.'s gradient test: hidden 3, T = 5, reverse mode."""
    key = jax.random.PRNGKey(0)
    k1, k2, k3, k4 = jax.random.split(key, 4)
    nh, nx = 3, 2
    Wh = (jax.random.uniform(k1, (nh, nh), jnp.float64) * 2 - 1) / nh**0.5
    Wx = (jax.random.uniform(k2, (nh, nx), jnp.float64) * 2 - 1) / nx**0.5
    xs = jax.random.normal(k3, (5, nx), jnp.float64)
    h0 = jax.random.normal(k4, (nh,), jnp.float64)

    def states(h0, xs, params):
        return deer.solve(tanh_rnn, params, xs, h0, warn=False)[0]

    jax.test_util.check_grads(
        states, (h0, xs, (Wh, Wx)), order=1, modes=["rev"], atol=1e-5, rtol=1e-3, eps=1e-6
    )


@pytest.mark.parametrize("method", ["newton", "quasi"])
def test_grad_through_solve_equals_grad_through_sequential(x64, method):
    params, xs, h0 = gru_problem(2, jnp.float64, nh=3, nx=2, T=23)
    weights = jax.random.normal(jax.random.PRNGKey(5), (23, 3), jnp.float64)

    def loss(run, params, xs, h0):
        return jnp.sum(weights * jnp.sin(run(params, xs, h0)))

    seq = lambda p, x, h: deer.sequential(gru, p, x, h)
    par = lambda p, x, h: deer.solve(gru, p, x, h, method=method)[0]
    g_seq = jax.grad(loss, argnums=(1, 2, 3))(seq, params, xs, h0)
    g_par = jax.grad(loss, argnums=(1, 2, 3))(par, params, xs, h0)
    for a, b in zip(jax.tree.leaves(g_seq), jax.tree.leaves(g_par), strict=True):
        np.testing.assert_allclose(b, a, atol=1e-8, rtol=1e-7)


def test_non_convergence_is_reported_and_warned(x64):
    params, xs, h0 = gru_problem(0, jnp.float64, nh=5, nx=3)
    with pytest.warns(RuntimeWarning, match="did not converge in 2 of max_iter=2"):
        hs, info = deer.solve(gru, params, xs, h0, max_iter=2)
    assert not bool(info.converged) and int(info.iterations) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, info = deer.solve(gru, params, xs, h0, max_iter=2, warn=False)
    assert not bool(info.converged)


def test_nan_from_the_cell_is_reported_not_looped_on():
    def bad_cell(params, h, x):
        return jnp.sqrt(x - 0.5) + 0.1 * h  # NaN wherever x < 0.5

    xs = jnp.linspace(0.0, 1.0, 20)[:, None] * jnp.ones((1, 2))
    with pytest.warns(RuntimeWarning, match="NaN or infinite"):
        hs, info = deer.solve(bad_cell, None, xs, jnp.zeros(2), max_iter=50)
    assert bool(info.failed) and not bool(info.converged)
    assert int(info.iterations) <= 1


def test_warm_start_from_the_solution_takes_no_step(x64):
    params, xs, h0 = gru_problem(4, jnp.float64, nh=3, nx=2, T=31)
    ref = deer.sequential(gru, params, xs, h0)
    hs, info = deer.solve(gru, params, xs, h0, init=ref)
    assert int(info.iterations) == 0 and bool(info.converged)
    np.testing.assert_array_equal(hs, ref)


def test_vmap_over_a_batch_of_sequences(x64):
    params, _, h0 = gru_problem(5, jnp.float64, nh=3, nx=2, T=1)
    xb = jax.random.normal(jax.random.PRNGKey(9), (4, 17, 2), jnp.float64)
    hb, info = jax.vmap(lambda x: deer.solve(gru, params, x, h0))(xb)
    ref = jax.vmap(lambda x: deer.sequential(gru, params, x, h0))(xb)
    np.testing.assert_allclose(hb, ref, atol=1e-9, rtol=0)
    assert info.converged.shape == (4,) and bool(jnp.all(info.converged))


@pytest.mark.parametrize("T", [0, 1, 2])
def test_short_sequences(x64, T):
    params, xs, h0 = gru_problem(6, jnp.float64, nh=2, nx=2, T=T)
    hs, info = deer.solve(gru, params, xs, h0)
    assert hs.shape == (T, 2) and bool(info.converged)
    assert info.damping.shape == info.tries.shape == (max(T, 1) if T else 0,)
    if T:
        np.testing.assert_allclose(hs, deer.sequential(gru, params, xs, h0), atol=1e-12)


def test_errors_name_the_argument():
    params, xs, h0 = gru_problem(0, jnp.float32, nh=2, nx=2, T=5)
    with pytest.raises(ValueError, match="method must be one of"):
        deer.solve(gru, params, xs, h0, method="jacobi")
    with pytest.raises(ValueError, match="h0 must be a vector"):
        deer.solve(gru, params, xs, h0[None])
    with pytest.raises(TypeError, match="h0 must have a floating dtype"):
        deer.solve(gru, params, xs, jnp.zeros(2, jnp.int32))
    with pytest.raises(ValueError, match="must return a state of the shape"):
        deer.solve(lambda p, h, x: h[:1], params, xs, h0)
    with pytest.raises(ValueError, match="max_iter must be a positive int"):
        deer.solve(gru, params, xs, h0, max_iter=0)
    with pytest.raises(ValueError, match="tol must be a number"):
        deer.solve(gru, params, xs, h0, tol=-1.0)
    with pytest.raises(ValueError, match="init must have shape"):
        deer.solve(gru, params, xs, h0, init=jnp.zeros((4, 2)))
    with pytest.raises(TypeError, match="cell must be a function"):
        deer.solve("gru", params, xs, h0)
    with pytest.raises(ValueError, match="common leading time axis"):
        deer.solve(lambda p, h, x: h, params, (xs, xs[:3]), h0)


def test_damping_moves_the_step_from_newton_to_the_fixed_point(x64):
    """lam = 0 is Newton's step; a huge lam is the fixed-point step h_new[t] = f(h[t-1], x[t])."""
    params, xs, h0 = gru_problem(7, jnp.float64, nh=3, nx=2, T=9)
    guess = jax.random.normal(jax.random.PRNGKey(8), (9, 3), jnp.float64)
    newton = deer.newton_step(gru, params, xs, h0, guess, safeguard=False)
    at_zero, _, overflowed = deer._damped_step(gru, params, xs, h0, guess, 0.0)
    np.testing.assert_allclose(at_zero, newton, atol=1e-13)
    assert not bool(overflowed)
    picard = guess - deer.residual(gru, params, xs, h0, guess)
    at_huge, f, _ = deer._damped_step(gru, params, xs, h0, guess, 1e12)
    np.testing.assert_allclose(at_huge, picard, atol=1e-10)
    np.testing.assert_allclose(f, picard, atol=1e-13)

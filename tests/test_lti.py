"""scanbook.lti (chapter 8): the Legendre delay system, its discretisation, three ways to run it."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scanbook as sb
import scipy.special
from jax.test_util import check_grads

lti = sb.lti
RNG = np.random.default_rng(808)


def system(order=8, theta=20.0, dt=1.0):
    return lti.discretize(*lti.lmu(order, theta), dt=dt)


def loop_reference(Ad, Bd, u):
    """The recurrence written out once more, one signal and one step at a time, in float64."""
    T, batch = u.shape[0], u.shape[1:]
    flat = u.reshape(T, -1).astype(np.float64)
    out = np.zeros((T, flat.shape[1], Ad.shape[0]))
    for n in range(flat.shape[1]):
        m = np.zeros(Ad.shape[0])
        for t in range(T):
            m = Ad @ m + Bd.reshape(-1) * flat[t, n]
            out[t, n] = m
    return out.reshape(T, *batch, Ad.shape[0])


# -- the continuous system -------------------------------------------------------------------


def test_lmu_matrices_match_the_paper():
    A, B = lti.lmu(4, 2.0)
    # Voelker et al. 2019: a_ij = (2i+1) * (-1 if i < j else (-1)^(i-j+1)), b_i = (2i+1)(-1)^i,
    # here divided by theta = 2
    want_A = (
        np.array(
            [
                [-1, -1, -1, -1],
                [3, -3, -3, -3],
                [-5, 5, -5, -5],
                [7, -7, 7, -7],
            ]
        )
        / 2.0
    )
    assert np.array_equal(A, want_A)
    assert np.array_equal(B, np.array([1, -3, 5, -7]) / 2.0)
    assert A.dtype == B.dtype == np.float64


def test_lmu_is_stable_and_a_delay():
    # every eigenvalue in the left half plane, and the transfer function C (sI - A)^-1 B with
    # C = P(1) approximates exp(-theta s) at low frequency (Pade approximant of the delay)
    theta = 3.0
    A, B = lti.lmu(10, theta)
    assert np.linalg.eigvals(A).real.max() < 0
    C = lti.legendre(10, 1.0)
    for s in (0.05j, 0.2j, 0.5j):
        G = C @ np.linalg.solve(s * np.eye(10) - A, B)
        assert abs(G - np.exp(-theta * s)) < 1e-6


def test_discretize_equals_a_fine_runge_kutta_integration():
    A, B = lti.lmu(6, 4.0)
    dt = 0.7
    Ad, Bd = lti.discretize(A, B, dt=dt)
    # integrate dm/dt = A m + B u over one step with u held at 1, from a random state,
    # by classical RK4 with 2000 substeps
    m0 = RNG.standard_normal(6)
    m, h = m0.copy(), dt / 2000

    def f(x):
        return A @ x + B

    for _ in range(2000):
        k1 = f(m)
        k2 = f(m + h / 2 * k1)
        k3 = f(m + h / 2 * k2)
        k4 = f(m + h * k3)
        m = m + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    assert np.allclose(Ad @ m0 + Bd, m, rtol=1e-10, atol=1e-12)


def test_discretize_composes_and_keeps_the_shape_of_B():
    A, B = lti.lmu(5, 3.0)
    Ad1, Bd1 = lti.discretize(A, B, dt=1.0)
    Ad2, Bd2 = lti.discretize(A, B[:, None], dt=2.0)
    assert Bd1.shape == (5,) and Bd2.shape == (5, 1)
    assert np.allclose(Ad2, Ad1 @ Ad1, atol=1e-13)
    assert np.allclose(Bd2[:, 0], Ad1 @ Bd1 + Bd1, atol=1e-13)  # two held steps of u = 1


# -- three ways to run the memory ---------------------------------------------------------------


@pytest.mark.parametrize("T", [1, 7, 100, 257])
@pytest.mark.parametrize("batch", [(), (3,), (2, 4)])
def test_methods_agree_with_the_loop(T, batch):
    Ad, Bd = system(order=6, theta=15.0)
    u = RNG.standard_normal((T, *batch))
    want = loop_reference(Ad, Bd, u)
    scale = np.abs(want).max()
    for method in lti.METHODS:
        m = lti.apply(Ad, Bd, u, method=method)
        assert m.shape == (T, *batch, 6) and m.dtype == np.float64
        tol = 1e-12 if method != "diagonal" else 1e-10  # cond(V) ~ 3e2 at order 6
        assert np.max(np.abs(m - want)) <= tol * scale, method


def test_float32_input_gives_float32_and_matches():
    Ad, Bd = system(order=4, theta=10.0)
    Ad32, Bd32 = Ad.astype(np.float32), Bd.astype(np.float32)
    u = RNG.standard_normal((300, 5)).astype(np.float32)
    want = loop_reference(Ad, Bd, u)
    for method in lti.METHODS:
        m = lti.apply(Ad32, Bd32, u, method=method)
        assert m.dtype == np.float32
        assert np.max(np.abs(m - want)) < 1e-4 * np.abs(want).max(), method


def test_empty_and_nan():
    Ad, Bd = system(order=3)
    for method in lti.METHODS:
        assert lti.apply(Ad, Bd, np.zeros((0, 2)), method=method).shape == (0, 2, 3)
        u = RNG.standard_normal(9)
        u[4] = np.nan
        m = lti.apply(Ad, Bd, u, method=method)
        assert np.isnan(m[4:]).all(), method  # the loop keeps the past clean; FFT may not
        if method != "fft":
            assert np.isfinite(m[:4]).all()


def test_impulse_response_is_the_response_to_an_impulse():
    Ad, Bd = system(order=5, theta=7.0)
    for T in (1, 2, 3, 64, 100):
        u = np.zeros(T)
        u[0] = 1.0
        H = lti.impulse_response(Ad, Bd, T)
        assert H.shape == (T, 5)
        assert np.allclose(H, loop_reference(Ad, Bd, u), rtol=0, atol=1e-13)
    assert lti.impulse_response(Ad, Bd, 0).shape == (0, 5)


def test_eigenvector_basis_becomes_ill_conditioned():
    conds = {}
    for q in (4, 8, 16):
        _, V, _ = lti.diagonalize(*system(order=q, theta=50.0))
        conds[q] = np.linalg.cond(V)
    assert conds[4] < 1e2 < 1e3 < conds[8] < 1e5 < 1e6 < conds[16]


def test_diagonal_loses_accuracy_with_the_order_and_fft_does_not():
    u = RNG.standard_normal(200)
    err = {}
    for q in (4, 24):
        Ad, Bd = system(order=q, theta=50.0)
        want = loop_reference(Ad, Bd, u)
        for method in ("fft", "diagonal"):
            got = lti.apply(Ad, Bd, u, method=method)
            err[q, method] = np.abs(got - want).max() / np.abs(want).max()
    assert err[4, "fft"] < 1e-13 and err[24, "fft"] < 1e-13
    assert err[4, "diagonal"] < 1e-12
    assert err[24, "diagonal"] > 1e3 * err[4, "diagonal"]


# -- reading the delayed input back -------------------------------------------------------------


def test_legendre_polynomials():
    r = np.linspace(0, 1, 11)
    P = lti.legendre(7, r)
    want = np.stack([scipy.special.eval_sh_legendre(i, r) for i in range(7)], axis=-1)
    assert np.allclose(P, want, atol=1e-12)
    # Voelker et al.'s form: (-1)^i sum_j binom(i, j) binom(i + j, j) (-r)^j
    i = 5
    voelker = (-1) ** i * sum(
        scipy.special.comb(i, j) * scipy.special.comb(i + j, j) * (-r) ** j for j in range(i + 1)
    )
    assert np.allclose(P[:, i], voelker, atol=1e-12)
    assert lti.legendre(1, 0.3).shape == (1,)


def test_readout_reconstructs_a_delayed_smooth_signal():
    theta, order, T = 60.0, 12, 600
    t = np.arange(T)
    u = np.stack([np.sin(2 * np.pi * t / 200), np.cos(2 * np.pi * t / 150 + 1.0)], axis=1)
    m = lti.apply(*system(order, theta), u, method="fft")
    r = np.array([0.25, 0.5, 0.75, 1.0])
    est = lti.readout(m, r)
    assert est.shape == (T, 2, 4)
    start = 2 * int(theta)
    for k, frac in enumerate(r):
        # ZOH holds u[t] over the step (t-1, t] that ends at sample t, so the continuous
        # input at time s is u at s + 1/2 (interpolated)
        for c in range(2):
            target = np.interp(t[start:] - frac * theta + 0.5, t, u[:, c])
            assert np.max(np.abs(est[start:, c, k] - target)) < 2e-3, (frac, c)
            # half a step off is already a visible error: the test can fail
            wrong = np.interp(t[start:] - frac * theta, t, u[:, c])
            assert np.max(np.abs(est[start:, c, k] - wrong)) > 5e-3
    assert lti.readout(m, 0.5).shape == (T, 2)


# -- errors ----------------------------------------------------------------------------------


def test_errors_name_the_argument():
    Ad, Bd = system(order=3)
    cases = [
        (lambda: lti.lmu(0, 1.0), ValueError, "order"),
        (lambda: lti.lmu(2.5, 1.0), TypeError, "order"),
        (lambda: lti.lmu(True, 1.0), TypeError, "order"),
        (lambda: lti.lmu(3, 0.0), ValueError, "theta"),
        (lambda: lti.lmu(3, -2.0), ValueError, "theta"),
        (lambda: lti.lmu(3, float("nan")), ValueError, "theta"),
        (lambda: lti.discretize(np.eye(3), np.ones(3), dt=0), ValueError, "dt"),
        (lambda: lti.discretize(np.ones((3, 2)), np.ones(3)), ValueError, "A"),
        (lambda: lti.discretize(np.eye(3), np.ones(4)), ValueError, "B"),
        (lambda: lti.discretize(np.eye(3, dtype=int), np.ones(3)), TypeError, "A"),
        (lambda: lti.apply(Ad, Bd, np.ones(5), method="scan"), ValueError, "method"),
        (lambda: lti.apply(Ad, Bd, np.ones(5, dtype=np.int64)), TypeError, "u"),
        (lambda: lti.apply(Ad, Bd, np.ones(5, dtype=complex)), TypeError, "u"),
        (lambda: lti.apply(Ad, Bd, np.float64(1.0)), ValueError, "u"),
        (lambda: lti.apply(Ad, Bd[:2], np.ones(5)), ValueError, "Bd"),
        (lambda: lti.apply(Ad[:2], Bd, np.ones(5)), ValueError, "Ad"),
        (lambda: lti.impulse_response(Ad, Bd, -1), ValueError, "T"),
        (lambda: lti.readout(np.ones((4, 3), dtype=int), 0.5), TypeError, "m"),
        (lambda: lti.readout(np.ones((4, 3)), np.ones((2, 2))), ValueError, "r"),
        (lambda: lti.readout(np.ones((4, 3)), 1.5), ValueError, "r must lie"),
    ]
    for call, kind, name in cases:
        with pytest.raises(kind, match=name):
            call()


# -- the parallel LMU layer ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def layer64():
    with jax.enable_x64(True):
        params = lti.layer_init(jax.random.key(3), 3, 5, 6, 10.0, memory_dim=2, dtype=jnp.float64)
        x = jnp.asarray(RNG.standard_normal((13, 2, 3)))
    return params, x


def test_layer_equals_the_loop_written_out(layer64):
    params, x = layer64
    with jax.enable_x64(True):
        xn = np.asarray(x)
        enc, hid, mem = params["encoder"], params["hidden"], params["memory"]
        u = xn @ np.asarray(enc["We"]) + np.asarray(enc["be"])
        m = loop_reference(np.asarray(mem["Ad"]), np.asarray(mem["Bd"]), u).reshape(13, 2, -1)
        want = np.tanh(m @ np.asarray(hid["Wm"]) + xn @ np.asarray(hid["Wx"]) + hid["bh"])
        for method in lti.LAYER_METHODS:
            h = lti.layer_apply(params, x, method=method)
            assert h.shape == (13, 2, 5) and h.dtype == jnp.float64
            assert np.allclose(h, want, rtol=0, atol=1e-11), method
        with pytest.raises(ValueError, match="T >= 1"):
            lti.layer_apply(params, x[:0])


def test_layer_gradients(layer64):
    params, x = layer64
    with jax.enable_x64(True):
        trained = {"encoder": params["encoder"], "hidden": params["hidden"]}

        @partial(jax.jit, static_argnums=2)
        def loss(trained, x, method):
            p = dict(params, **trained)
            return jnp.sum(jnp.sin(lti.layer_apply(p, x, method=method)))

        check_grads(lambda tr, x: loss(tr, x, "fft"), (trained, x), order=1, modes=("rev",))
        g_fft = jax.grad(loss, argnums=(0, 1))(trained, x, "fft")
        g_diag = jax.grad(loss, argnums=(0, 1))(trained, x, "diagonal")
        for a, b in zip(jax.tree.leaves(g_fft), jax.tree.leaves(g_diag), strict=True):
            assert np.allclose(a, b, rtol=1e-9, atol=1e-11)
        # the fixed memory gets no gradient
        g_all = jax.grad(lambda p: jnp.sum(lti.layer_apply(p, x)))(params)
        assert all(float(jnp.abs(g).max()) == 0 for g in jax.tree.leaves(g_all["memory"]))


def test_layer_float32_and_errors():
    params = lti.layer_init(jax.random.key(0), 2, 4, 5, 8.0)
    x = jnp.asarray(RNG.standard_normal((20, 3, 2)), jnp.float32)
    apply = jax.jit(lti.layer_apply, static_argnames="method")
    h = apply(params, x)
    assert h.dtype == jnp.float32 and h.shape == (20, 3, 4)
    assert np.allclose(h, apply(params, x, method="diagonal"), atol=1e-4)
    with pytest.raises(ValueError, match="in_dim"):
        lti.layer_apply(params, jnp.ones((20, 3, 5)))
    with pytest.raises(ValueError, match="x"):
        lti.layer_apply(params, jnp.ones((20, 2)))
    with pytest.raises(TypeError, match="x"):
        lti.layer_apply(params, jnp.ones((20, 3, 2), jnp.int32))
    with pytest.raises(ValueError, match="method"):
        lti.layer_apply(params, x, method="scan")
    with pytest.raises(ValueError, match="h0"):
        lti.layer_apply(params, x, jnp.zeros((3, 4)))
    with pytest.raises(ValueError, match="order"):
        lti.layer_init(jax.random.key(0), 2, 4, 0, 8.0)
    with pytest.raises(ValueError, match="hidden"):
        lti.layer_init(jax.random.key(0), 2, 0, 3, 8.0)

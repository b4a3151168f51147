"""scanbook.models: every model's parallel mode against its serial mode and a NumPy loop.

Each (model, T, h0) case is one jitted function that returns both modes' states and their
gradients, so a case compiles once. 64-bit JAX is on only inside ``jax.enable_x64``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scanbook as sb

M = sb.models
PARALLEL = list(M.PARALLEL)
IN, HID, BATCH = 3, 4, 2


def _init(name, key, dtype, in_dim=IN, hidden=HID):
    kw = {"k": 3} if name == "qrnn" else {}
    params = M.get(name).init(key, in_dim, hidden, dtype=dtype, **kw)
    # random biases too (init's are mostly zero), so that every term is exercised
    rng = np.random.default_rng(int(jax.random.randint(key, (), 0, 2**30)))
    return jax.tree_util.tree_map(
        lambda p: p + jnp.asarray(0.3 * rng.standard_normal(p.shape), dtype), params
    )


def _inputs(T, dtype, seed, with_h0):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal((T, BATCH, IN)), dtype)
    h0 = jnp.asarray(rng.standard_normal((BATCH, HID)), dtype) if with_h0 else None
    w = jnp.asarray(rng.standard_normal((T, BATCH, HID)), dtype)  # dL/dh: a random direction
    return x, h0, w


def _both_modes(name, params, x, h0, w, **kw):
    """States and gradients (params, x, h0) of sum(w * h) in both modes, one compile."""
    m = M.get(name)

    def run(mode):
        def loss(p, x, h0):
            h = m.apply(p, x, h0, mode=mode, **kw)
            return jnp.sum(w * h), h

        argnums = (0, 1) if h0 is None else (0, 1, 2)
        (_, h), grads = jax.value_and_grad(loss, argnums=argnums, has_aux=True)(params, x, h0)
        return h, grads

    return jax.jit(lambda: (run("parallel"), run("serial")))()


def _assert_close(a, b, rtol, atol, what):
    for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=atol, err_msg=what)


@pytest.mark.parametrize("name", PARALLEL)
@pytest.mark.parametrize(("T", "with_h0"), [(1, True), (7, False), (33, True)])
def test_parallel_equals_serial_float64(name, T, with_h0):
    with jax.enable_x64(True):
        params = _init(name, jax.random.key(T), jnp.float64)
        x, h0, w = _inputs(T, jnp.float64, seed=100 + T, with_h0=with_h0)
        (hp, gp), (hs, gs) = _both_modes(name, params, x, h0, w)
        assert hp.shape == (T, BATCH, HID) and hp.dtype == jnp.float64
        assert np.all(np.isfinite(np.asarray(hp))) and float(jnp.max(jnp.abs(hp))) > 1e-3
        _assert_close(hp, hs, 1e-10, 1e-12, f"{name} states")
        _assert_close(gp, gs, 1e-10, 1e-12, f"{name} gradients")
        ref = _numpy_model(name, params, np.asarray(x), h0)  # the equations, written again
        _assert_close(hp, ref, 1e-10, 1e-12, f"{name} against the NumPy loop")


@pytest.mark.parametrize("name", PARALLEL)
def test_parallel_equals_serial_float32(name):
    params = _init(name, jax.random.key(5), jnp.float32)
    x, h0, w = _inputs(7, jnp.float32, seed=5, with_h0=True)
    (hp, gp), (hs, gs) = _both_modes(name, params, x, h0, w)
    assert hp.dtype == jnp.float32
    _assert_close(hp, hs, 1e-5, 1e-6, f"{name} states")
    _assert_close(gp, gs, 1e-5, 1e-5, f"{name} gradients")


@pytest.mark.parametrize("name", ["min_gru", "min_lstm"])
def test_log_space_equals_serial(name):
    with jax.enable_x64(True):
        params = _init(name, jax.random.key(9), jnp.float64)
        x, h0, w = _inputs(33, jnp.float64, seed=9, with_h0=True)  # h0 of both signs
        (hp, gp), (hs, gs) = _both_modes(name, params, x, h0, w, log_space=True)
        _assert_close(hp, hs, 1e-10, 1e-12, f"{name} log-space states")
        _assert_close(gp, gs, 1e-9, 1e-11, f"{name} log-space gradients")
        plain = M.get(name).apply(params, x, h0, mode="serial")
        assert not np.allclose(np.asarray(plain), np.asarray(hs))  # g(v) changes the model


# -- an independent NumPy loop, written from the papers' equations -------------------------


def _sig(v):
    return 1 / (1 + np.exp(-v))


def _numpy_model(name, p, x, h0):
    p = jax.tree_util.tree_map(np.asarray, p)
    T, n = x.shape[0], HID
    h0 = np.zeros((x.shape[1], n)) if h0 is None else np.asarray(h0)
    out, h, cell, s = [], h0, h0, h0  # h0 is the cell for SRU and QRNN
    if name in ("ls_lstm", "lstm"):
        cell = np.zeros_like(h0)  # one array h0 is the state the gates read; the cell starts at 0
    for t in range(T):
        xt = x[t]
        if name == "gilr":
            pre = xt @ p["W"] + p["b"]
            g = _sig(pre[:, :n])
            h = g * h + (1 - g) * np.tanh(pre[:, n:])
        elif name == "ls_lstm":
            q = p["surrogate"]
            pre = xt @ q["W"] + q["b"]
            gs = _sig(pre[:, :n])
            s_prev, s = s, gs * s + (1 - gs) * np.tanh(pre[:, n:])
            z = s_prev @ p["U"] + xt @ p["V"] + p["b"]
            f, i, o, zz = (z[:, j * n : (j + 1) * n] for j in range(4))
            cell = _sig(f) * cell + _sig(i) * np.tanh(zz)
            h = _sig(o) * cell
        elif name == "sru":
            pre = xt @ p["W"] + p["b"]
            xt_, f, r = pre[:, :n], _sig(pre[:, n : 2 * n]), _sig(pre[:, 2 * n :])
            cell = f * cell + (1 - f) * xt_
            h = r * np.tanh(cell) + (1 - r) * (xt @ p["S"])
        elif name == "qrnn":
            k = p["W"].shape[0]
            pre = p["b"] + sum(x[t - j] @ p["W"][j] for j in range(k) if t - j >= 0)
            z, f, o = np.tanh(pre[:, :n]), _sig(pre[:, n : 2 * n]), _sig(pre[:, 2 * n :])
            cell = f * cell + (1 - f) * z
            h = o * cell
        elif name == "min_gru":
            pre = xt @ p["W"] + p["b"]
            z = _sig(pre[:, :n])
            h = (1 - z) * h + z * pre[:, n:]
        elif name == "min_lstm":
            pre = xt @ p["W"] + p["b"]
            f, i = _sig(pre[:, :n]), _sig(pre[:, n : 2 * n])
            h = f / (f + i) * h + i / (f + i) * pre[:, 2 * n :]
        elif name == "lstm":
            z = h @ p["U"] + xt @ p["V"] + p["b"]
            f, i, o, zz = (z[:, j * n : (j + 1) * n] for j in range(4))
            cell = _sig(f) * cell + _sig(i) * np.tanh(zz)
            h = _sig(o) * np.tanh(cell)
        elif name == "gru":
            a, u = xt @ p["W"] + p["b"], p["U"]
            z = _sig(a[:, :n] + h @ u[:, :n])
            r = _sig(a[:, n : 2 * n] + h @ u[:, n : 2 * n])
            h = (1 - z) * h + z * np.tanh(a[:, 2 * n :] + (r * h) @ u[:, 2 * n :])
        out.append(h)
    return np.stack(out)


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_serial_models_match_numpy_loop(name):
    with jax.enable_x64(True):
        params = _init(name, jax.random.key(3), jnp.float64)
        x, h0, _ = _inputs(7, jnp.float64, seed=3, with_h0=True)
        h = M.get(name).apply(params, x, h0)
        ref = _numpy_model(name, params, np.asarray(x), h0)
        np.testing.assert_allclose(np.asarray(h), ref, rtol=1e-10, atol=1e-12)


def test_sru_without_projection_and_cells_start_from_h0():
    with jax.enable_x64(True):
        p = M.sru.init(jax.random.key(0), 4, 4, dtype=jnp.float64)
        assert "S" not in p
        x = jax.random.normal(jax.random.key(1), (5, 2, 4), jnp.float64)
        h0 = jnp.ones((2, 4))
        a = M.sru.apply(p, x, h0, mode="parallel")
        b = M.sru.apply(p, x, h0, mode="serial")
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12)
        assert not np.allclose(np.asarray(a), np.asarray(M.sru.apply(p, x)))


def test_two_part_state_accepts_a_pair():
    with jax.enable_x64(True):
        x, h0, _ = _inputs(6, jnp.float64, seed=4, with_h0=True)
        c0 = jnp.full_like(h0, 0.5)
        p = _init("ls_lstm", jax.random.key(4), jnp.float64)
        one = M.ls_lstm.apply(p, x, h0)
        pair0 = M.ls_lstm.apply(p, x, (h0, jnp.zeros_like(h0)))
        pair = M.ls_lstm.apply(p, x, (h0, c0))
        np.testing.assert_allclose(np.asarray(one), np.asarray(pair0), rtol=1e-12)
        assert not np.allclose(np.asarray(one), np.asarray(pair))
        serial = M.ls_lstm.apply(p, x, (h0, c0), mode="serial")
        np.testing.assert_allclose(np.asarray(pair), np.asarray(serial), rtol=1e-10)
        p = _init("lstm", jax.random.key(4), jnp.float64)
        assert not np.allclose(np.asarray(M.lstm.apply(p, x, h0)), M.lstm.apply(p, x, (h0, c0)))


def test_nan_in_nan_out():
    p = M.gilr.init(jax.random.key(0), IN, HID)
    x = np.ones((5, BATCH, IN), np.float32)
    x[2, 0, 0] = np.nan
    h = np.asarray(M.gilr.apply(p, x))
    assert np.all(np.isnan(h[2:, 0])) and np.all(np.isfinite(h[:2]))
    assert np.all(np.isfinite(h[:, 1]))


def test_stack_and_readout():
    key = jax.random.key(0)
    params = M.stack.init(key, "qrnn", IN, HID, layers=2, k=2)
    assert len(params) == 2 and params[1]["W"].shape == (2, HID, 3 * HID)
    x, _, _ = _inputs(9, jnp.float32, seed=1, with_h0=False)
    hp = M.stack.apply("qrnn", params, x, mode="parallel")
    hs = M.stack.apply(M.qrnn, params, x, mode="serial")
    np.testing.assert_allclose(np.asarray(hp), np.asarray(hs), rtol=1e-5, atol=1e-6)
    layer1 = M.qrnn.apply(params[0], x)
    np.testing.assert_allclose(
        np.asarray(hp), np.asarray(M.qrnn.apply(params[1], layer1)), rtol=1e-6
    )
    lstm = M.stack.init(key, "lstm", IN, HID, layers=2)
    assert M.stack.apply("lstm", lstm, x).shape == (9, BATCH, HID)  # the model's default mode
    r = M.readout.init(key, HID, 5)
    y = M.readout.apply(r, hp[-1])
    assert y.shape == (BATCH, 5)
    np.testing.assert_allclose(np.asarray(y), np.asarray(hp[-1] @ r["W"]), rtol=1e-6)
    with pytest.raises(ValueError, match="h must have hidden = 4"):
        M.readout.apply(r, x)
    with pytest.raises(ValueError, match="layers must be a positive int"):
        M.stack.init(key, "gilr", IN, HID, layers=0)


def test_initialisation_follows_the_papers():
    key = jax.random.key(0)
    for name in ("lstm", "ls_lstm"):
        b = np.asarray(M.get(name).init(key, IN, HID, forget_bias=5.0)["b"])
        assert np.all(b[:HID] == 5.0) and np.all(b[HID:] == 0.0)
    assert np.all(np.asarray(M.sru.init(key, IN, HID)["b"])[HID : 2 * HID] == 1.0)
    W = np.asarray(M.gilr.init(key, 300, 200)["W"])
    bound = np.sqrt(6 / (300 + 400))
    assert W.max() <= bound and W.max() > 0.95 * bound and abs(W.mean()) < 0.01
    assert M.qrnn.init(key, IN, HID, k=10)["W"].shape == (10, IN, 3 * HID)


# -- errors name the argument ---------------------------------------------------------------


@pytest.mark.parametrize("name", M.MODELS)
def test_bad_inputs_name_the_argument(name):
    m = M.get(name)
    p = m.init(jax.random.key(0), IN, HID)
    mode = "parallel" if name in PARALLEL else "serial"
    good = np.ones((4, BATCH, IN), np.float32)
    with pytest.raises(ValueError, match=r"x must have in_dim = 3 .*\(4, 2, 5\)"):
        m.apply(p, np.ones((4, BATCH, 5), np.float32), mode=mode)
    with pytest.raises(ValueError, match=r"x must hold at least one time step .*\(0, 2, 3\)"):
        m.apply(p, np.ones((0, BATCH, IN), np.float32), mode=mode)
    with pytest.raises(ValueError, match=r"mode must be 'parallel' or 'serial'; got 'fast'"):
        m.apply(p, good, mode="fast")
    with pytest.raises(TypeError, match="x must have a floating dtype .* got int32"):
        m.apply(p, np.ones((4, BATCH, IN), np.int32), mode=mode)
    with pytest.raises(ValueError, match=r"x must have shape \(T, batch, in_dim\) .*\(4, 3\)"):
        m.apply(p, np.ones((4, IN), np.float32), mode=mode)
    with pytest.raises(ValueError, match=r"h0 must have shape \(batch, hidden\) = \(2, 4\)"):
        m.apply(p, good, np.zeros((BATCH, HID + 1), np.float32), mode=mode)
    with pytest.raises(TypeError, match="params must be the dict"):
        m.apply([p], good, mode=mode)


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_nonlinear_models_refuse_parallel(name):
    m = M.get(name)
    p = m.init(jax.random.key(0), IN, HID)
    with pytest.raises(ValueError, match=r"not available for .*chapter 9.*deer"):
        m.apply(p, np.ones((4, BATCH, IN), np.float32), mode="parallel")


def test_init_checks():
    with pytest.raises(ValueError, match="hidden must be a positive int; got 0"):
        M.gilr.init(jax.random.key(0), IN, 0)
    with pytest.raises(ValueError, match="k .* must be a positive int; got 0"):
        M.qrnn.init(jax.random.key(0), IN, HID, k=0)
    with pytest.raises(ValueError, match="name must be one of"):
        M.get("transformer")

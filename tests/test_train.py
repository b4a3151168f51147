"""scanbook.train: a real learning check, determinism, the log, argument errors.

The model here is a tiny gated linear recurrence of the tests' own (a one-layer GILR with the
signature of :mod:`scanbook.models`), so these tests check the loop, not a model module.
Compilations are few: one training step shape per task, shared through the loop's cache.
"""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scanbook as sb
from scanbook import tasks, train


def _init(key, in_dim, hidden, *, gate_bias=2.0):
    kg, ki = jax.random.split(key)
    scale = 1.0 / np.sqrt(in_dim)
    return {
        "Wg": jax.random.uniform(kg, (in_dim, hidden), minval=-scale, maxval=scale),
        "bg": jnp.full((hidden,), gate_bias),
        "Wi": jax.random.uniform(ki, (in_dim, hidden), minval=-scale, maxval=scale),
        "bi": jnp.zeros((hidden,)),
    }


def _apply(params, x, h0=None, *, mode="parallel"):
    g = jax.nn.sigmoid(x @ params["Wg"] + params["bg"])
    i = jnp.tanh(x @ params["Wi"] + params["bi"])
    if mode == "parallel":
        return sb.jax.linear_recurrence(g, (1 - g) * i, h0)
    if mode == "serial":
        return sb.jax.linear_recurrence_sequential(g, (1 - g) * i, h0)
    raise ValueError(f"mode must be 'parallel' or 'serial'; got {mode!r}")


TINY = types.SimpleNamespace(init=_init, apply=_apply)
T, BATCH, IN_DIM, HIDDEN = 24, 32, 6, 16


def _memorise(seed, steps, **kwargs):
    params = train.init(jax.random.key(seed), TINY, IN_DIM, HIDDEN, 2)
    gen = np.random.default_rng(seed)
    kwargs.setdefault("learning_rate", 1e-2)
    return train.train(
        TINY,
        params,
        lambda step: tasks.memorisation(gen, T, BATCH, in_dim=IN_DIM),
        steps=steps,
        progress=False,
        **kwargs,
    )


def test_learns_the_memorisation_task():
    """A real learning check: fails if the gradient, the optimiser or the readout breaks."""
    run = _memorise(0, 400, target_accuracy=0.99, window=10)
    assert run.stopped == "target", f"no convergence in 400 steps: last {run.log[-1]}"
    step, wall = train.steps_to_accuracy(run, 0.95, window=10)
    assert step is not None and step <= 400 and wall > 0
    first = np.mean([r["accuracy"] for r in run.log[:10]])
    assert first < 0.8  # it was not solved before training
    # held-out sequences, a fresh seed: the model has learned the rule, not the batches
    x, y = tasks.memorisation(12345, T, 256, in_dim=IN_DIM)
    result = train.evaluate(TINY, run.params, x, y, mode="parallel")
    assert result["accuracy"] >= 0.95, result
    # its predictions are the memorised bit itself
    logits = train.predict(TINY, run.params, x, mode="parallel")
    np.testing.assert_array_equal(np.argmax(np.asarray(logits), -1), tasks.memorisation_bit(x))


def test_same_seed_same_losses_and_the_log():
    a = _memorise(1, 25)
    b = _memorise(1, 25)
    c = _memorise(2, 25)
    la = [r["loss"] for r in a.log]
    assert la == [r["loss"] for r in b.log]  # bit for bit
    assert la != [r["loss"] for r in c.log]
    assert a.stopped == "steps" and len(a.log) == 25 and a.compile_s >= 0
    hist = a.history()
    assert set(hist) == {"step", "loss", "accuracy", "grad_norm", "seconds", "wall"}
    np.testing.assert_array_equal(hist["step"], np.arange(1, 26))
    assert np.all(np.diff(hist["wall"]) > 0)
    np.testing.assert_allclose(hist["wall"], np.cumsum(hist["seconds"]))
    assert np.all((hist["accuracy"] >= 0) & (hist["accuracy"] <= 1))
    for leaf_a, leaf_b in zip(
        jax.tree_util.tree_leaves(a.params), jax.tree_util.tree_leaves(b.params), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(leaf_a), np.asarray(leaf_b))


def test_training_changes_params_and_lowers_the_loss():
    params = train.init(jax.random.key(3), TINY, IN_DIM, HIDDEN, 2)
    gen = np.random.default_rng(3)
    run = train.train(
        TINY,
        params,
        lambda s: tasks.memorisation(gen, T, BATCH, in_dim=IN_DIM),
        steps=60,
        learning_rate=1e-2,
        progress=False,
    )
    losses = run.history()["loss"]
    assert losses[-10:].mean() < losses[:10].mean() - 0.01
    assert not np.allclose(np.asarray(run.params["readout"]["W"]), params["readout"]["W"])


def test_time_budget_stops_the_loop():
    run = _memorise(4, 10_000, time_budget=1e-9)
    assert run.stopped == "time" and len(run.log) == 1


def test_forecasting_regression_with_a_per_step_readout():
    params = train.init(jax.random.key(5), TINY, 1, HIDDEN, 1)
    x0, y0 = tasks.forecasting(99, 40, 16, horizon=1, noise=0.1)
    before = train.evaluate(TINY, params, x0, y0, task="regress")
    gen = np.random.default_rng(5)
    run = train.train(
        TINY,
        params,
        lambda s: tasks.forecasting(gen, 40, 16, horizon=1, noise=0.1),
        steps=150,
        task="regress",
        learning_rate=1e-2,
        progress=False,
    )
    after = train.evaluate(TINY, run.params, x0, y0, task="regress")
    assert after["loss"] < 0.8 * before["loss"], (before, after)
    assert np.isnan(after["accuracy"]) and np.isnan(run.log[-1]["accuracy"])
    out = train.predict(TINY, run.params, x0, readout="all")
    assert out.shape == (40, 16, 1)


def test_init_reads_the_state_width_and_shapes_the_readout():
    params = train.init(jax.random.key(0), TINY, 3, 5, 7)
    assert set(params) == {"model", "readout"}
    assert params["readout"]["W"].shape == (5, 7) and params["readout"]["b"].shape == (7,)
    assert np.all(np.asarray(params["readout"]["b"]) == 0)


def test_steps_to_accuracy_on_a_handmade_log():
    log = [{"step": i + 1, "accuracy": a, "wall": 0.5 * (i + 1)} for i, a in enumerate([0, 1, 1])]
    assert train.steps_to_accuracy(log, 0.9, window=2) == (3, 1.5)
    assert train.steps_to_accuracy(log, 0.9, window=1) == (2, 1.0)
    assert train.steps_to_accuracy(log, 1.1, window=1) == (None, None)


@pytest.mark.parametrize(
    "kwargs, error, word",
    [
        (dict(steps=0), ValueError, "steps"),
        (dict(steps=2.5), TypeError, "steps"),
        (dict(task="rank"), ValueError, "task"),
        (dict(window=0), ValueError, "window"),
        (dict(target_accuracy=1.5), ValueError, "target_accuracy"),
        (dict(time_budget=0), ValueError, "time_budget"),
        (dict(learning_rate=-1.0), ValueError, "learning_rate"),
        (dict(clip=0), ValueError, "clip"),
        (dict(data=42), TypeError, "data"),
    ],
)
def test_train_argument_errors(kwargs, error, word):
    params = train.init(jax.random.key(0), TINY, IN_DIM, HIDDEN, 2)
    args = dict(steps=3, progress=False)
    args.update(kwargs)
    data = args.pop("data", lambda s: tasks.memorisation(0, 4, 2, in_dim=IN_DIM))
    with pytest.raises(error, match=word):
        train.train(TINY, params, data, **args)


def test_model_and_params_errors():
    with pytest.raises(TypeError, match="model"):
        train.init(jax.random.key(0), object(), 2, 2, 2)
    with pytest.raises(ValueError, match="model"):
        train.init(jax.random.key(0), "no_such_model", 2, 2, 2)
    with pytest.raises(ValueError, match="out_dim"):
        train.init(jax.random.key(0), TINY, 2, 2, 0)
    with pytest.raises(ValueError, match="params"):
        train.train(TINY, {"W": 1}, lambda s: None, steps=1, progress=False)
    with pytest.raises(ValueError, match="readout"):
        train.predict(TINY, train.init(jax.random.key(0), TINY, 2, 2, 2), np.ones((3, 1, 2)),
                      readout="first")  # fmt: skip


def test_minibatches_of_changing_shape_are_refused():
    params = train.init(jax.random.key(0), TINY, IN_DIM, HIDDEN, 2)
    shapes = iter([(5, 2), (5, 3)])

    def data(step):
        t, b = next(shapes)
        return tasks.memorisation(step, t, b, in_dim=IN_DIM)

    with pytest.raises(ValueError, match="one shape"):
        train.train(TINY, params, data, steps=2, progress=False)


def test_stacked_layers_and_models_by_name():
    model = train.stacked(TINY, 2)
    params = train.init(jax.random.key(0), model, 3, 5, 4)
    assert isinstance(params["model"], list) and len(params["model"]) == 2
    assert params["model"][1]["Wg"].shape == (5, 5)  # the second layer reads the first's states
    x = np.asarray(tasks.memorisation(0, 7, 2, in_dim=3)[0])
    h1 = _apply(params["model"][0], x)
    h2 = _apply(params["model"][1], h1)
    expected = np.asarray(h2[-1] @ params["readout"]["W"] + params["readout"]["b"])
    np.testing.assert_allclose(np.asarray(train.predict(model, params, x)), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="layers"):
        train.stacked(TINY, 0)
    by_name = train.init(jax.random.key(0), "gilr", 3, 5, 2)  # a module of scanbook.models
    assert by_name["readout"]["W"].shape == (5, 2)

"""scanbook.tasks: shapes, determinism, labels recoverable from the inputs, argument errors."""

import jax
import numpy as np
import pytest
import scanbook as sb
from scanbook import tasks


@pytest.mark.parametrize("T, batch, in_dim", [(1, 1, 2), (7, 5, 3), (33, 64, 8)])
def test_memorisation_shapes_and_construction(T, batch, in_dim):
    x, y = tasks.memorisation(3, T, batch, in_dim=in_dim)
    assert x.shape == (T, batch, in_dim) and x.dtype == np.float32
    assert y.shape == (batch,) and y.dtype == np.int32
    assert set(np.unique(y)) <= {0, 1}
    # x[0] = +e_0 for class 1, -e_0 for class 0: the fixed direction, its sign the class
    expected_first = np.zeros((batch, in_dim), np.float32)
    expected_first[:, 0] = 2.0 * y - 1.0
    np.testing.assert_array_equal(x[0], expected_first)
    # every later input is a one-hot vector away from the class direction
    rest = x[1:]
    assert np.all(rest.sum(-1) == 1.0) and np.all((rest == 0) | (rest == 1))
    assert np.all(rest[..., 0] == 0)
    # the label is recoverable from the input, and only from its first step
    np.testing.assert_array_equal(tasks.memorisation_bit(x), y)


def test_memorisation_is_balanced_and_noise_uniform():
    x, y = tasks.memorisation(np.random.default_rng(1), 200, 500, in_dim=5)
    assert 0.45 < y.mean() < 0.55
    counts = x[1:].sum(axis=(0, 1))
    assert counts[0] == 0
    share = counts[1:] / counts[1:].sum()
    np.testing.assert_allclose(share, 0.25, atol=0.01)  # uniform over the 4 noise directions
    # the noise is the same for both classes: it carries no information about the label
    for c in (0, 1):
        sub = x[1:, y == c].sum(axis=(0, 1))[1:]
        np.testing.assert_allclose(sub / sub.sum(), 0.25, atol=0.015)


def test_memorisation_is_deterministic():
    x1, y1 = tasks.memorisation(7, 20, 9)
    x2, y2 = tasks.memorisation(np.random.default_rng(7), 20, 9)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    x3, _ = tasks.memorisation(8, 20, 9)
    assert not np.array_equal(x1, x3)


def test_memorisation_with_a_jax_key_is_jittable_and_correct():
    key = jax.random.key(0)
    x, y = jax.jit(lambda k: tasks.memorisation(k, 12, 6, in_dim=4))(key)  # one compilation
    assert x.shape == (12, 6, 4) and x.dtype == np.float32 and y.dtype == np.int32
    x, y = np.asarray(x), np.asarray(y)
    np.testing.assert_array_equal(tasks.memorisation_bit(x), y)
    assert np.all(x[1:, :, 0] == 0) and np.all(x[1:].sum(-1) == 1)
    assert tasks._is_jax_key(jax.random.PRNGKey(0))  # raw uint32 keys are keys too
    assert not tasks._is_jax_key(np.zeros(2, np.uint32))


@pytest.mark.parametrize(
    "kwargs, error, word",
    [
        (dict(T=0, batch=2), ValueError, "T"),
        (dict(T=2.0, batch=2), TypeError, "T"),
        (dict(T=3, batch=0), ValueError, "batch"),
        (dict(T=3, batch=True), TypeError, "batch"),
        (dict(T=3, batch=2, in_dim=1), ValueError, "in_dim"),
    ],
)
def test_memorisation_argument_errors(kwargs, error, word):
    with pytest.raises(error, match=word):
        tasks.memorisation(0, **kwargs)


def test_bad_rng_is_named():
    with pytest.raises(TypeError, match="rng"):
        tasks.memorisation("seed", 3, 2)
    with pytest.raises(ValueError, match="rng"):
        tasks.memorisation(-1, 3, 2)
    with pytest.raises(TypeError, match="rng"):
        tasks.forecasting(np.random.RandomState(0), 3, 2)
    with pytest.raises(ValueError, match="x must have shape"):
        tasks.memorisation_bit(np.zeros((3, 2)))


def test_forecasting_targets_are_the_clean_signal_ahead():
    T, batch, h = 40, 6, 3
    x, y = tasks.forecasting(5, T, batch, horizon=h, noise=0.0)
    assert x.shape == y.shape == (T, batch, 1) and x.dtype == y.dtype == np.float32
    # without noise the input is the signal, so the target is the input h steps later
    np.testing.assert_allclose(y[: T - h], x[h:], atol=1e-6)
    assert np.abs(x).max() <= np.sqrt(3) + 1e-6 and x.std() > 0.1  # 3 components
    xn, yn = tasks.forecasting(5, T, batch, horizon=h, noise=0.5)
    np.testing.assert_array_equal(yn, y)  # same seed, same signal; noise only on the input
    assert 0.3 < np.std(xn - x) < 0.7
    x0, y0 = tasks.forecasting(5, T, batch, horizon=0, noise=0.0)
    np.testing.assert_allclose(x0, y0, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, error, word",
    [
        (dict(horizon=-1), ValueError, "horizon"),
        (dict(noise=-0.1), ValueError, "noise"),
        (dict(noise=float("nan")), ValueError, "noise"),
        (dict(noise="0.1"), TypeError, "noise"),
        (dict(components=0), ValueError, "components"),
    ],
)
def test_forecasting_argument_errors(kwargs, error, word):
    with pytest.raises(error, match=word):
        tasks.forecasting(0, 10, 2, **kwargs)


def test_digits_split_is_stratified_disjoint_and_complete():
    from sklearn.datasets import load_digits

    data = tasks.digits_dataset()
    assert data.n_classes == tasks.DIGITS_CLASSES == 10
    assert data.x_train.shape == (64, 1347, 1) and data.x_test.shape == (64, 450, 1)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int32
    assert 0.0 <= data.x_train.min() and data.x_train.max() == 1.0
    # every image lands in exactly one split, with its own label
    ref = load_digits()
    flat = np.concatenate([data.x_train[:, :, 0].T, data.x_test[:, :, 0].T]) * 16.0
    labels = np.concatenate([data.y_train, data.y_test])
    ref_rows = {row.tobytes(): [] for row in ref.data.astype(np.float32)}
    for row, label in zip(ref.data.astype(np.float32), ref.target, strict=True):
        ref_rows[row.tobytes()].append(label)
    assert flat.shape[0] == ref.data.shape[0] == 1797
    for row, label in zip(flat, labels, strict=True):
        assert label in ref_rows[row.astype(np.float32).tobytes()]
    counts_test = np.bincount(data.y_test, minlength=10)
    counts_all = np.bincount(ref.target, minlength=10)
    np.testing.assert_array_equal(counts_test, np.round(0.25 * counts_all).astype(int))


def test_digits_layouts_and_permutation():
    x_pix, y_pix = tasks.digits("test")
    x_rows, y_rows = tasks.digits("test", layout="rows")
    np.testing.assert_array_equal(y_pix, y_rows)
    assert x_rows.shape == (8, 450, 8)
    # rows of 8 and pixels one by one hold the same image in the same order
    np.testing.assert_array_equal(x_rows.transpose(1, 0, 2).reshape(450, 64), x_pix[:, :, 0].T)
    x_perm, y_perm = tasks.digits("test", permute=True)
    np.testing.assert_array_equal(y_perm, y_pix)
    assert not np.array_equal(x_perm, x_pix)
    # one fixed permutation of the pixel positions, the same for every image
    perm = np.random.default_rng(0).permutation(64)
    np.testing.assert_array_equal(x_perm[:, :, 0], x_pix[perm, :, 0])
    x_perm2, _ = tasks.digits("test", permute=True, permutation_seed=1)
    assert not np.array_equal(x_perm2, x_perm)


def test_digits_is_deterministic_and_seeded():
    a = tasks.digits_dataset(seed=3)
    b = tasks.digits_dataset(seed=3)
    c = tasks.digits_dataset(seed=4)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_test, c.y_test)
    small = tasks.digits_dataset(test_fraction=0.1)
    counts = np.bincount(tasks.digits_dataset().y_train.tolist() + tasks.digits("test")[1].tolist())
    assert small.x_test.shape[1] == np.round(0.1 * counts).sum()
    x, y = tasks.digits("train")
    x[0, 0, 0] = 99.0  # a caller's copy: the cached images stay untouched
    assert tasks.digits("train")[0][0, 0, 0] != 99.0


@pytest.mark.parametrize(
    "kwargs, error, word",
    [
        (dict(split="validation"), ValueError, "split"),
        (dict(layout="columns"), ValueError, "layout"),
        (dict(permute="yes"), TypeError, "permute"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(test_fraction=0.0), ValueError, "test_fraction"),
        (dict(test_fraction=1.0), ValueError, "test_fraction"),
        (dict(permutation_seed=1.5), TypeError, "permutation_seed"),
    ],
)
def test_digits_argument_errors(kwargs, error, word):
    with pytest.raises(error, match=word):
        tasks.digits(**kwargs)


def test_minibatches_cover_each_epoch_once_and_repeat_by_seed():
    x = np.arange(10, dtype=np.float32).reshape(1, 10, 1)
    y = np.arange(10, dtype=np.int32)
    it = tasks.minibatches(0, x, y, 3)
    first_epoch = [next(it) for _ in range(3)]  # 10 // 3 = 3 full batches
    seen = np.concatenate([yb for _, yb in first_epoch])
    assert len(set(seen.tolist())) == 9
    for xb, yb in first_epoch:
        assert xb.shape == (1, 3, 1)
        np.testing.assert_array_equal(xb[0, :, 0], yb)
    again = tasks.minibatches(0, x, y, 3)
    for _, yb in first_epoch:
        np.testing.assert_array_equal(next(again)[1], yb)
    it_all = tasks.minibatches(0, x, y, 4, drop_last=False)
    sizes = [next(it_all)[1].size for _ in range(3)]
    assert sizes == [4, 4, 2]
    with pytest.raises(ValueError, match="batch"):
        tasks.minibatches(0, x, y, 11)
    with pytest.raises(ValueError, match="y must have one label"):
        tasks.minibatches(0, x, y[:5], 2)


def test_tasks_is_reachable_from_the_package():
    assert sb.tasks.memorisation is tasks.memorisation

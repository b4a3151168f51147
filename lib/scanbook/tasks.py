"""Tasks to train sequence models on: one-bit memorisation, noisy forecasting, sequential digits.

Defined in chapter 7 (:ref:`ch-long-deps`); chapter 8 trains the LMU on :func:`digits`, chapter 9
uses :func:`forecasting`.

Every function returns **time-major** arrays, as the rest of the book does: inputs ``x`` of shape
``(T, batch, in_dim)`` (float32) and labels ``y`` of shape ``(batch,)`` (int32 classes) or
``(T, batch, out_dim)`` (float32 targets, for forecasting).

* :func:`memorisation`: Martin & Cundy's synthetic task (their section 4.2, after problem 2b of
  Hochreiter & Schmidhuber 1997). The first input ``x[0]`` is ``+e_0`` or ``-e_0``, a fixed
  direction whose sign is the class; every later input is a one-hot vector drawn uniformly at
  random with replacement. The class must be carried over all ``T`` steps to the last one.
* :func:`forecasting`: a noisy sum of sinusoids; the target is the clean signal ``horizon`` steps
  ahead, at every step.
* :func:`digits`: scikit-learn's bundled 8x8 digits (1,797 images shipped inside the package, no
  download) read as sequences: 64 pixels one at a time, or 8 rows of 8, optionally in a fixed
  random pixel order (permuted digits); a seeded, stratified train/test split.
* :func:`minibatches`: shuffled time-major minibatches of a fixed data set, seeded.

Randomness is explicit: ``rng`` is an ``int`` seed, a :class:`numpy.random.Generator`, or (for
:func:`memorisation`) a JAX PRNG key, in which case the sample is drawn with ``jax.random`` on the
default device and the function can be called inside ``jax.jit`` (``T``, ``batch`` and
``in_dim`` static).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

__all__ = [
    "Dataset",
    "memorisation",
    "memorisation_bit",
    "forecasting",
    "digits",
    "digits_dataset",
    "minibatches",
    "DIGITS_CLASSES",
]

DIGITS_CLASSES = 10
_LAYOUTS = {"pixels": (64, 1), "rows": (8, 8)}


# ----------------------------------------------------------------------------------------------
# argument checks
# ----------------------------------------------------------------------------------------------


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int >= {minimum}; got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value}")
    return int(value)


def _check_float(name: str, value, *, minimum: float = 0.0, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number; got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < minimum or (strict and value == minimum):
        bound = f"> {minimum}" if strict else f">= {minimum}"
        raise ValueError(f"{name} must be a finite number {bound}; got {value}")
    return value


def _is_jax_key(rng) -> bool:
    mod = type(rng).__module__ or ""
    if not (mod.startswith("jax") or mod.startswith("jaxlib")):
        return False
    import jax

    if jax.dtypes.issubdtype(rng.dtype, jax.dtypes.prng_key):
        return True
    return rng.dtype == np.uint32 and rng.shape == (2,)  # a raw jax.random.PRNGKey


def _generator(rng, name: str = "rng") -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"{name} must be a seed >= 0 or a numpy Generator; got {rng}")
        return np.random.default_rng(int(rng))
    raise TypeError(
        f"{name} must be an int seed or a numpy.random.Generator; got {type(rng).__name__}"
    )


# ----------------------------------------------------------------------------------------------
# one-bit memorisation (Martin & Cundy 2018, section 4.2)
# ----------------------------------------------------------------------------------------------


def memorisation(rng, T: int, batch: int, *, in_dim: int = 8):
    """A variant of Martin & Cundy's one-bit memorisation task: remember the first input's sign.

    Each sequence is ``T`` one-hot vectors of width ``in_dim``. The first, ``x[0]``, points
    along the fixed direction ``e_0`` with sign ``+1`` (class 1) or ``-1`` (class 0), the class
    drawn uniformly. Every later ``x[t]`` is a one-hot vector ``e_k`` with ``k`` drawn uniformly
    (with replacement) from ``1 .. in_dim - 1``: noise that says nothing about the class, in
    directions apart from the class direction, as in problem 2b of Hochreiter & Schmidhuber
    (1997). A model reads the whole sequence and must name the class at the end, ``T - 1`` steps
    after the only informative input.

    Args:
        rng: an ``int`` seed or a :class:`numpy.random.Generator` (NumPy arrays back), or a JAX
            PRNG key (JAX arrays back, drawn on the default device; jittable).
        T: sequence length, at least 1.
        batch: number of sequences, at least 1.
        in_dim: width of the one-hot inputs, at least 2 (the class direction and at least one
            noise direction).

    Returns:
        ``(x, y)``: ``x`` float32 of shape ``(T, batch, in_dim)``, ``y`` int32 of shape
        ``(batch,)`` with values 0 and 1 (``y == (x[0, :, 0] > 0)``).

    Defined in chapter 7.
    """
    T = _check_int("T", T, 1)
    batch = _check_int("batch", batch, 1)
    in_dim = _check_int("in_dim", in_dim, 2)
    if _is_jax_key(rng):
        return _memorisation_jax(rng, T, batch, in_dim)
    gen = _generator(rng)
    y = gen.integers(0, 2, size=batch).astype(np.int32)
    k = gen.integers(1, in_dim, size=(T, batch))
    x = np.zeros((T, batch, in_dim), np.float32)
    np.put_along_axis(x, k[..., None], 1.0, axis=-1)
    x[0] = 0.0
    x[0, :, 0] = 2.0 * y - 1.0
    return x, y


def _memorisation_jax(key, T: int, batch: int, in_dim: int):
    import jax
    import jax.numpy as jnp

    key_y, key_x = jax.random.split(key)
    y = jax.random.bernoulli(key_y, 0.5, (batch,)).astype(jnp.int32)
    k = jax.random.randint(key_x, (T, batch), 1, in_dim)
    x = jax.nn.one_hot(k, in_dim, dtype=jnp.float32)
    first = jnp.zeros((batch, in_dim), jnp.float32).at[:, 0].set(2.0 * y - 1.0)
    x = x.at[0].set(first)
    return x, y


def memorisation_bit(x):
    """Read the class back from a memorisation input: ``1`` where ``x[0, :, 0] > 0``, else 0.

    The check that the label is recoverable from the input (and a perfect, non-learned
    solution to compare with). Defined in chapter 7.
    """
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[0] < 1:
        raise ValueError(f"x must have shape (T, batch, in_dim) with T >= 1; got {x.shape}")
    return (x[0, :, 0] > 0).astype(np.int32)


# ----------------------------------------------------------------------------------------------
# noisy forecasting
# ----------------------------------------------------------------------------------------------


def forecasting(
    rng,
    T: int,
    batch: int,
    *,
    horizon: int = 1,
    noise: float = 0.1,
    components: int = 3,
):
    """A noisy forecasting task: predict the clean signal ``horizon`` steps ahead, at every step.

    Each sequence is a sum of ``components`` sinusoids, ``s(t) = sum_k A_k sin(w_k t + p_k)``,
    with amplitudes ``A_k`` uniform in [0.5, 1] (scaled so the sum stays near unit size),
    angular frequencies ``w_k`` log-uniform between ``2 pi / 64`` and ``2 pi / 4`` (periods of
    4 to 64 steps) and phases uniform. The model sees ``x[t] = s(t) + noise * e[t]`` with
    standard normal ``e``; the target is ``y[t] = s(t + horizon)``.

    Args:
        rng: an ``int`` seed or a :class:`numpy.random.Generator`.
        T: sequence length, at least 1.
        batch: number of sequences, at least 1.
        horizon: how many steps ahead to predict, at least 0 (0: denoise the present).
        noise: standard deviation of the added noise, at least 0.
        components: number of sinusoids per sequence, at least 1.

    Returns:
        ``(x, y)``, both float32 of shape ``(T, batch, 1)``.

    Defined in chapter 7's library and used in chapter 9.
    """
    T = _check_int("T", T, 1)
    batch = _check_int("batch", batch, 1)
    horizon = _check_int("horizon", horizon, 0)
    components = _check_int("components", components, 1)
    noise = _check_float("noise", noise)
    gen = _generator(rng)
    amp = gen.uniform(0.5, 1.0, size=(batch, components)) / np.sqrt(components)
    freq = np.exp(gen.uniform(np.log(2 * np.pi / 64), np.log(2 * np.pi / 4), (batch, components)))
    phase = gen.uniform(0.0, 2 * np.pi, size=(batch, components))
    t = np.arange(T + horizon, dtype=np.float64)[:, None, None]
    signal = (amp * np.sin(freq * t + phase)).sum(-1)  # (T + horizon, batch)
    x = signal[:T] + noise * gen.standard_normal((T, batch))
    y = signal[horizon:]
    return x[..., None].astype(np.float32), y[..., None].astype(np.float32)


# ----------------------------------------------------------------------------------------------
# sequential digits (scikit-learn's bundled 8x8 digits)
# ----------------------------------------------------------------------------------------------


class Dataset(NamedTuple):
    """A fixed classification data set, time-major: ``x`` (T, N, in_dim), ``y`` (N,).

    Defined in chapter 7.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int


def _digits_file():
    """The file ``sklearn.datasets.load_digits`` reads, found without importing scikit-learn
    (``import sklearn.datasets`` takes seconds: it loads SciPy)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("sklearn")
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return path
    return None


@functools.lru_cache(maxsize=1)
def _load_digits():
    path = _digits_file()
    if path is not None:  # 1797 rows: 64 pixel values (0..16), then the label
        table = np.loadtxt(path, delimiter=",")
        pixels, target = table[:, :-1].reshape(-1, 8, 8), table[:, -1]
    else:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        pixels, target = bunch.images, bunch.target
    images = (pixels / 16.0).astype(np.float32)  # (1797, 8, 8)
    images.setflags(write=False)
    labels = target.astype(np.int32)
    labels.setflags(write=False)
    return images, labels


def _split_indices(labels: np.ndarray, test_fraction: float, seed: int):
    """A stratified split: each class contributes ``round(test_fraction * count)`` test images."""
    gen = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[gen.permutation(idx.size)]
        n_test = int(round(test_fraction * idx.size))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    train, test = np.concatenate(train), np.concatenate(test)
    return train[gen.permutation(train.size)], test[gen.permutation(test.size)]


def _digit_sequences(images: np.ndarray, layout: str, permute: bool, permutation_seed: int):
    n = images.shape[0]
    flat = images.reshape(n, 64)
    if permute:
        flat = flat[:, np.random.default_rng(permutation_seed).permutation(64)]
    T, in_dim = _LAYOUTS[layout]
    return np.ascontiguousarray(flat.reshape(n, T, in_dim).transpose(1, 0, 2))


def digits(
    split: str = "train",
    *,
    layout: str = "pixels",
    permute: bool = False,
    seed: int = 0,
    test_fraction: float = 0.25,
    permutation_seed: int = 0,
):
    """Sequential digits: scikit-learn's bundled 8x8 digit images read as sequences.

    The 1,797 images of ``sklearn.datasets.load_digits`` (pixel values 0-16, scaled to [0, 1])
    ship inside scikit-learn, so nothing is downloaded. ``layout="pixels"`` reads an image one
    pixel at a time, row by row (``T = 64``, ``in_dim = 1``: the small cousin of sequential
    MNIST); ``layout="rows"`` one row at a time (``T = 8``, ``in_dim = 8``). ``permute=True``
    first shuffles the 64 pixel positions by one fixed permutation (seeded by
    ``permutation_seed``, the same for every image), which breaks the locality a model could
    lean on. The split is stratified by class and seeded by ``seed``: the same arguments give the
    same images in the same order, every time.

    Args:
        split: ``"train"`` or ``"test"``.
        layout: ``"pixels"`` or ``"rows"``.
        permute: read the pixels in a fixed random order.
        seed: seed of the train/test split (an int >= 0).
        test_fraction: share of each class held out for testing, strictly between 0 and 1.
        permutation_seed: seed of the pixel permutation (an int >= 0).

    Returns:
        ``(x, y)``: ``x`` float32 of shape ``(T, N, in_dim)``, ``y`` int32 of shape ``(N,)``
        with classes 0-9.

    Defined in chapter 7.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    data = digits_dataset(
        layout=layout,
        permute=permute,
        seed=seed,
        test_fraction=test_fraction,
        permutation_seed=permutation_seed,
    )
    return (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)


def digits_dataset(
    *,
    layout: str = "pixels",
    permute: bool = False,
    seed: int = 0,
    test_fraction: float = 0.25,
    permutation_seed: int = 0,
) -> Dataset:
    """Both splits of :func:`digits` at once, as a :class:`Dataset`. Defined in chapter 7."""
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be one of {sorted(_LAYOUTS)}; got {layout!r}")
    if not isinstance(permute, (bool, np.bool_)):
        raise TypeError(f"permute must be a bool; got {type(permute).__name__} {permute!r}")
    seed = _check_int("seed", seed, 0)
    permutation_seed = _check_int("permutation_seed", permutation_seed, 0)
    test_fraction = _check_float("test_fraction", test_fraction, strict=True)
    if test_fraction >= 1.0:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1; got {test_fraction}")
    images, labels = _load_digits()
    train, test = _split_indices(labels, test_fraction, seed)
    seqs = _digit_sequences(images, layout, bool(permute), permutation_seed)
    return Dataset(
        seqs[:, train], labels[train].copy(), seqs[:, test], labels[test].copy(), DIGITS_CLASSES
    )


def minibatches(rng, x, y, batch: int, *, drop_last: bool = True):
    """Shuffled minibatches of a time-major data set, forever: yields ``(x[:, idx], y[idx])``.

    Each pass (epoch) visits every sequence once in a fresh random order drawn from ``rng``
    (an ``int`` seed or a numpy Generator), so the same seed gives the same stream. With
    ``drop_last`` every minibatch has exactly ``batch`` sequences (one jit compilation); the
    few left over at the end of an epoch are skipped in that epoch.

    Defined in chapter 7.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 3:
        raise ValueError(f"x must have shape (T, N, in_dim); got shape {x.shape}")
    if y.shape[:1] != x.shape[1:2]:
        raise ValueError(
            f"y must have one label per sequence, shape ({x.shape[1]}, ...); got shape {y.shape}"
        )
    batch = _check_int("batch", batch, 1)
    n = x.shape[1]
    if batch > n:
        raise ValueError(f"batch must be at most the number of sequences {n}; got {batch}")
    gen = _generator(rng)

    def stream():
        while True:
            order = gen.permutation(n)
            stop = n - n % batch if drop_last else n
            for start in range(0, stop, batch):
                idx = order[start : start + batch]
                yield x[:, idx], y[idx]

    return stream()

"""Chapter 7's graders: the reference answers pass, typical mistakes fail with their hint."""

import math

import numpy as np
import scanbook as sb
from scanbook.exercises import ch07


def _memorisation(rng, T, batch, in_dim):
    return sb.tasks.memorisation(rng, T, batch, in_dim=in_dim)


def test_memorisation_batch():
    assert ch07.check_memorisation_batch(_memorisation, quiet=True)

    def batch_major(rng, T, batch, in_dim):
        x, y = _memorisation(rng, T, batch, in_dim)
        return x.transpose(1, 0, 2), y

    def flipped(rng, T, batch, in_dim):
        x, y = _memorisation(rng, T, batch, in_dim)
        return x, 1 - y

    def noisy_class_direction(rng, T, batch, in_dim):
        x, y = _memorisation(rng, T, batch, in_dim)
        x[1:] = 0.0
        x[1:, :, 0] = 1.0
        return x, y

    def all_ones(rng, T, batch, in_dim):
        x, y = _memorisation(rng, T, batch, in_dim)
        return x, np.ones_like(y) if batch >= 400 else y

    fb = ch07.check_memorisation_batch(batch_major, quiet=True)
    assert not fb and "shape" in fb.message
    fb = ch07.check_memorisation_batch(flipped, quiet=True)
    assert not fb and "+e_0" in fb.message
    fb = ch07.check_memorisation_batch(noisy_class_direction, quiet=True)
    assert not fb and "direction 0" in fb.message
    fb = ch07.check_memorisation_batch(all_ones, quiet=True)
    assert not fb


def _sigmoid(v):
    return 1.0 / (1.0 + math.exp(-v))


def test_retention():
    assert ch07.check_retention(lambda bias, T: _sigmoid(bias) ** T, quiet=True)
    fb = ch07.check_retention(lambda bias, T: _sigmoid(bias) ** max(T - 1, 0), quiet=True)
    assert not fb and "off by one" in fb.message
    fb = ch07.check_retention(lambda bias, T: (1 - _sigmoid(bias)) ** T, quiet=True)
    assert not fb and "1 - sigmoid" in fb.message


def test_bias_for_retention():
    def right(T, keep):
        a = keep ** (1 / T)
        return math.log(a / (1 - a))

    assert ch07.check_bias_for_retention(right, quiet=True)
    fb = ch07.check_bias_for_retention(lambda T, keep: keep ** (1 / T), quiet=True)
    assert not fb and "logit" in fb.message
    # the answer at T = 1000, keep = 0.5 is the bias chapter 7 discusses: about 7.2
    assert 7.0 < right(1000, 0.5) < 7.4


def test_steps_to_target():
    def right(accs, target, window):
        for i in range(window - 1, len(accs)):
            if np.mean(accs[i - window + 1 : i + 1]) >= target:
                return i + 1
        return None

    assert ch07.check_steps_to_target(right, quiet=True)
    fb = ch07.check_steps_to_target(lambda a, t, w: (right(a, t, w) or 1) - 1, quiet=True)
    assert not fb

    def single_steps(accs, target, window):
        for i, a in enumerate(accs):
            if a >= target:
                return i + 1
        return None

    fb = ch07.check_steps_to_target(single_steps, quiet=True)
    assert not fb and "last `window`" in fb.message


def test_digit_sequences():
    def right(images, layout):
        n = images.shape[0]
        return (
            images.reshape(n, 64).T[:, :, None] if layout == "pixels" else images.transpose(1, 0, 2)
        )

    assert ch07.check_digit_sequences(right, quiet=True)
    fb = ch07.check_digit_sequences(lambda im, lay: im.reshape(im.shape[0], 64, 1), quiet=True)
    assert not fb and "time-major" in fb.message
    fb = ch07.check_digit_sequences(
        lambda im, lay: im.transpose(0, 2, 1).reshape(im.shape[0], 64).T[:, :, None], quiet=True
    )
    assert not fb and "row by row" in fb.message


def test_graders_are_reachable_from_the_package():
    assert sb.exercises.check_retention is ch07.check_retention

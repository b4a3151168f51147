"""Chapter 6's graders: the reference answers pass, typical mistakes fail with their hint."""

import jax.numpy as jnp
import numpy as np
import scanbook as sb
from scanbook.models import _common

E = sb.exercises


def test_min_gru_grader():
    assert E.check_min_gru(lambda x, p, h0: sb.models.min_gru.apply(p, x, h0), quiet=True).passed

    def swapped(x, p, h0):
        n = p["W"].shape[1] // 2
        pre = np.asarray(x) @ p["W"] + p["b"]
        z = 1 / (1 + np.exp(-pre[..., :n]))
        return sb.jax.linear_recurrence(z, (1 - z) * pre[..., n:], h0)

    fb = E.check_min_gru(swapped, quiet=True)
    assert not fb.passed and "exchanged" in fb.message

    def no_h0(x, p, h0):
        return sb.models.min_gru.apply(p, x)

    fb = E.check_min_gru(no_h0, quiet=True)
    assert not fb.passed and "h0 is ignored" in fb.message


def test_causal_conv_grader():
    assert E.check_causal_conv(
        lambda x, W: sb.models.qrnn.causal_conv(jnp.asarray(x), jnp.asarray(W)), quiet=True
    ).passed
    rolled = E.check_causal_conv(
        lambda x, W: sum(np.roll(x, j, axis=0) @ W[j] for j in range(len(W))), quiet=True
    )
    assert not rolled.passed and "wraps around" in rolled.message

    def future(x, W):
        T, k = len(x), len(W)
        pad = np.concatenate([x, np.zeros((k - 1, *x.shape[1:]))])
        return sum(pad[j : j + T] @ W[j] for j in range(k))

    fb = E.check_causal_conv(future, quiet=True)
    assert not fb.passed and "future" in fb.message


def test_log_space_scan_grader():
    f32 = lambda v: jnp.asarray(v, jnp.float32)  # noqa: E731
    ok = E.check_log_space_scan(
        lambda la, lb, h0: _common.log_space_recurrence(f32(la), f32(lb), f32(h0)), quiet=True
    )
    assert ok.passed

    def naive(la, lb, h0):
        with np.errstate(all="ignore"):
            A = np.cumprod(np.exp(la), axis=0)
            return A * (h0 + np.cumsum(np.exp(lb) / A, axis=0))

    fb = E.check_log_space_scan(naive, quiet=True)
    assert not fb.passed and "case 4 of 4" in fb.message and "overflows" in fb.message

    def no_h0(la, lb, h0):
        return _common.log_space_recurrence(la, lb, np.zeros_like(h0))

    fb = E.check_log_space_scan(no_h0, quiet=True)
    assert not fb.passed and "h0 is missing" in fb.message

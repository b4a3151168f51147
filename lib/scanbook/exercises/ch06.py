"""Chapter 6's graders: linear-surrogate RNNs.

Defined in chapter 6 (Linear-surrogate RNNs).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._grading import Case, Feedback, compare, grade, make_rng, random_values


def same(got, expected) -> bool:
    """Quietly: does ``got`` match ``expected`` at float32's tolerance? Never raises."""
    try:
        return compare(got, expected, rtol=1e-4, atol=1e-5) is None
    except Exception:  # noqa: BLE001 - a diagnosis must not fail on a strange answer
        return False


__all__ = ["check_causal_conv", "check_log_space_scan", "check_min_gru"]


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def _min_gru_loop(x, params, h0):
    W, b = (np.asarray(params[k], np.float64) for k in ("W", "b"))
    n = W.shape[1] // 2
    h, out = np.asarray(h0, np.float64), []
    for xt in np.asarray(x, np.float64):
        pre = xt @ W + b
        z = _sigmoid(pre[:, :n])
        h = (1 - z) * h + z * pre[:, n:]
        out.append(h)
    return np.stack(out)


def check_min_gru(fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False) -> Feedback:
    """Grade ``fn(x, params, h0) -> h``: minGRU, its gates for all steps, then one scan.

    ``x`` has shape ``(T, batch, in_dim)``; ``params`` is what
    :func:`scanbook.models.min_gru.init` returns (``W`` of shape ``(in_dim, 2 hidden)``
    holding ``[W_z, W_h]``, ``b`` of shape ``(2 hidden,)``); ``h0`` has shape
    ``(batch, hidden)``. The answer ``h[t] = (1 - z[t]) h[t-1] + z[t] h~[t]`` with
    ``z = sigmoid(x W_z + b_z)`` and ``h~ = x W_h + b_h`` is compared with a float64 loop, at
    float32's tolerance (JAX computes in float32 unless told otherwise).

    Chapter 6, exercise 1.
    """
    rng = make_rng(61)
    cases = []
    for T, batch, m, n in ((1, 1, 2, 3), (2, 3, 1, 2), (7, 2, 3, 4), (33, 3, 2, 5)):
        x = random_values(rng, (T, batch, m))
        params = {
            "W": random_values(rng, (m, 2 * n), low=0.1, high=1.0),
            "b": random_values(rng, 2 * n, low=0.1, high=1.0),
        }
        h0 = random_values(rng, (batch, n))
        cases.append(
            Case(
                f"T={T}, batch={batch}, in_dim={m}, hidden={n}",
                (x, params, h0),
                _min_gru_loop(x, params, h0),
                show={"x": x, "params['W']": params["W"], "params['b']": params["b"], "h0": h0},
                rtol=1e-4,
                atol=1e-5,
            )
        )

    def diagnose(case: Case, got) -> str | None:
        x, params, h0 = case.args
        n = params["W"].shape[1] // 2
        swapped = {"W": np.roll(params["W"], n, axis=1), "b": np.roll(params["b"], n)}
        if same(got, _min_gru_loop(x, swapped, h0)):
            return "the gate and the candidate are swapped: W[:, :hidden] is W_z, the gate"
        if same(got, _min_gru_loop(x, params, np.zeros_like(h0))):
            return "h0 is ignored: the first step is h[0] = (1 - z[0]) h0 + z[0] h~[0]"
        W, b = np.asarray(params["W"]), np.asarray(params["b"])
        pre = np.asarray(x) @ W + b
        z, v = _sigmoid(pre[..., :n]), pre[..., n:]
        h, out = np.asarray(h0, np.float64), []
        for t in range(len(z)):
            h = z[t] * h + (1 - z[t]) * v[t]
            out.append(h)
        if same(got, np.stack(out)):
            return "z and 1 - z are exchanged: z is the share of the new candidate h~"
        return None

    return grade(
        "check_min_gru",
        fn,
        cases,
        hint="a = 1 - z and b = z * h~ for every step at once, then one linear recurrence",
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


def _conv(x, W, shift=lambda t, j: t - j):
    x, W = np.asarray(x, np.float64), np.asarray(W, np.float64)
    T, k = x.shape[0], W.shape[0]
    out = np.zeros((T, x.shape[1], W.shape[2]))
    for t in range(T):
        for j in range(k):
            s = shift(t, j)
            if 0 <= s < T:
                out[t] += x[s] @ W[j]
    return out


def check_causal_conv(
    fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn(x, W) -> y``: the QRNN's causal convolution over time.

    ``x`` of shape ``(T, batch, in_dim)``, ``W`` of shape ``(k, in_dim, out_dim)``;
    ``y[t] = sum_j x[t-j] @ W[j]`` for ``j = 0 .. k-1``, with ``x[s] = 0`` for ``s < 0``:
    ``y[t]`` may read the present and the past, never the future. Compared with a float64
    loop at float32's tolerance; widths ``k`` from 1 to 4, also longer than the sequence.

    Chapter 6, exercise 2.
    """
    rng = make_rng(62)
    cases = []
    for T, batch, m, n, k in ((4, 1, 1, 1, 1), (5, 2, 2, 3, 2), (1, 2, 3, 2, 3), (13, 3, 2, 2, 4)):
        x = random_values(rng, (T, batch, m))
        W = random_values(rng, (k, m, n))
        cases.append(
            Case(f"T={T}, k={k}", (x, W), _conv(x, W), show={"x": x, "W": W}, rtol=1e-4, atol=1e-5)
        )

    def diagnose(case: Case, got) -> str | None:
        x, W = case.args
        T, k = len(x), len(W)
        if same(got, _conv(x, W, lambda t, j: t + j)):
            return "y[t] reads the future x[t+j]: a causal filter reads x[t-j]"
        if same(got, _conv(x, W, lambda t, j: (t - j) % T)):
            return "the start wraps around to the end (np.roll?): before t = 0 the input is zero"
        if same(got, _conv(x, W[::-1])):
            return "the filter is reversed: W[0] multiplies the present x[t], W[j] x[t-j]"
        if k > 1 and same(got, _conv(x, W, lambda t, j: t - j - 1)):
            return "off by one step: W[0] multiplies x[t] itself, not x[t-1]"
        return None

    return grade(
        "check_causal_conv",
        fn,
        cases,
        hint="pad k - 1 zero steps in front of x, then add k shifted matrix products",
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


def _loop(a, b, h0):
    h, out = np.asarray(h0, np.float64), []
    for t in range(len(a)):
        h = a[t] * h + b[t]
        out.append(h)
    return np.stack(out) if out else np.zeros((0, *np.shape(h0)))


def check_log_space_scan(
    fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn(log_a, log_b, h0) -> h``: ``h[t] = a[t] h[t-1] + b[t]`` from logarithms.

    ``log_a``, ``log_b`` of shape ``(T, C)`` are the logarithms of positive ``a``, ``b``;
    ``h0`` of shape ``(C,)`` has either sign. Compared with the float64 loop at float32's
    tolerance. The last case is long (``T = 3000``, ``a`` about 1/2): there the cumulative
    product ``a[0] ... a[t]`` underflows to zero, and an answer that divides by it gives
    ``inf`` or ``nan``. Its tolerance is ``1e-3`` relative: in float32,
    ``A[t] + logcumsumexp(...)`` cancels two large numbers and loses about ``T * 1e-7``.

    Chapter 6, exercise 3.
    """
    rng = make_rng(63)
    cases = []
    for T, C in ((1, 2), (5, 3), (40, 2), (3000, 2)):
        a = rng.uniform(0.3, 0.7, (T, C))
        b = rng.uniform(0.5, 2.0, (T, C))
        h0 = random_values(rng, C)
        cases.append(
            Case(
                f"T={T}, C={C}",
                (np.log(a), np.log(b), h0),
                _loop(a, b, h0),
                show={"log_a": np.log(a), "log_b": np.log(b), "h0": h0},
                rtol=1e-4 if T < 1000 else 1e-3,  # float32 in log space loses ~T * 1e-7
                atol=1e-6,
            )
        )

    def diagnose(case: Case, got) -> str | None:
        try:
            arr = np.asarray(got, np.float64)
        except (TypeError, ValueError):
            return None
        if arr.shape == case.expected.shape and not np.all(np.isfinite(arr)):
            return (
                "the answer overflows: a cumulative product of decays below 1 reaches zero, and "
                "dividing by it gives inf. Stay in log space: exp(A[t] + logcumsumexp(log_b - A))"
            )
        log_a, log_b, h0 = case.args
        if same(got, _loop(np.exp(log_a), np.exp(log_b), np.zeros_like(h0))):
            return "h0 is missing: it adds exp(A[t]) * h0, A the cumulative sum of log_a"
        return None

    return grade(
        "check_log_space_scan",
        fn,
        cases,
        hint="A = cumsum(log_a); h = exp(A) h0 + exp(A + logcumsumexp(log_b - A))",
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )

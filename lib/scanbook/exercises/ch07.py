"""Chapter 7's graders: the memorisation task, how long a gate remembers, when a run converged,
and digits as sequences.

Defined in chapter 7 (Learning long dependencies).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ._grading import Case, Feedback, grade, make_rng, same

__all__ = [
    "check_memorisation_batch",
    "check_retention",
    "check_bias_for_retention",
    "check_steps_to_target",
    "check_digit_sequences",
]


# -- exercise 1: the task ----------------------------------------------------------------------


def _memorisation_compare(got, expected, case: Case) -> str | None:
    """A sample is right when it has the task's structure; its random draws are the reader's."""
    T, batch, in_dim = expected
    if not isinstance(got, tuple | list) or len(got) != 2:
        return f"expected a pair (x, y), got {type(got).__name__}"
    try:
        x, y = np.asarray(got[0], dtype=np.float64), np.asarray(got[1])
    except (TypeError, ValueError):
        return "x and y must be arrays of numbers"
    if x.shape != (T, batch, in_dim):
        return f"x must have shape (T, batch, in_dim) = {(T, batch, in_dim)}; got {x.shape}"
    if y.shape != (batch,):
        return f"y must have shape (batch,) = ({batch},); got {y.shape}"
    if not np.all((y == 0) | (y == 1)):
        return f"y must hold classes 0 and 1; got values {np.unique(y)[:5]}"
    first = np.zeros((batch, in_dim))
    first[:, 0] = 2.0 * y - 1.0
    if not np.array_equal(x[0], first):
        return "x[0] must be +e_0 for class 1 and -e_0 for class 0 (the sign of the first input)"
    rest = x[1:]
    if rest.size and not (np.all(rest.sum(-1) == 1) and np.all((rest == 0) | (rest == 1))):
        return "every x[t] for t >= 1 must be a one-hot vector (one 1, the rest 0)"
    if rest.size and np.any(rest[..., 0] != 0):
        return "the noise must avoid direction 0, which only the first input uses"
    if batch >= 400:
        share = y.mean()
        if not 0.4 < share < 0.6:
            return f"the classes must be drawn with equal chances; class 1 has share {share:.2f}"
    if batch * (T - 1) >= 4000:
        counts = rest.sum(axis=(0, 1))[1:]
        share = counts / counts.sum()
        if share.min() < 0.5 / (in_dim - 1):
            return f"the noise must use the directions 1..in_dim-1 uniformly; shares {share}"
    return None


def check_memorisation_batch(
    fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn(rng, T, batch, in_dim) -> (x, y)``: a sample of the one-bit memorisation task.

    ``rng`` is a :class:`numpy.random.Generator`; ``x`` has shape ``(T, batch, in_dim)`` with
    ``x[0] = +e_0`` (class ``y = 1``) or ``-e_0`` (``y = 0``) and every later ``x[t]`` a one-hot
    vector ``e_k``, ``k`` uniform in ``1 .. in_dim - 1``; ``y`` has shape ``(batch,)``. The draws
    are the reader's own, so the structure is checked, not the values (and, on large samples,
    that classes and noise directions are drawn evenly).

    Chapter 7, exercise 1.
    """
    cases = []
    for seed, (T, batch, in_dim) in enumerate(
        ((1, 3, 2), (2, 5, 3), (7, 4, 8), (13, 1, 5), (50, 400, 4), (100, 64, 6))
    ):
        cases.append(
            Case(
                f"T={T}, batch={batch}, in_dim={in_dim}",
                (make_rng(70 + seed), T, batch, in_dim),
                (T, batch, in_dim),
                show={"T": T, "batch": batch, "in_dim": in_dim},
            )
        )
    return grade(
        "check_memorisation_batch",
        fn,
        cases,
        hint=(
            "draw y with rng.integers(0, 2, batch), the noise directions with "
            "rng.integers(1, in_dim, (T, batch)), one-hot them, then overwrite x[0]"
        ),
        compare=_memorisation_compare,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


# -- exercises 2 and 3: how long a gate remembers ----------------------------------------------


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def check_retention(fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False) -> Feedback:
    """Grade ``fn(bias, T) -> float``: the share of ``h[0]`` left in ``h[T]`` when every step
    multiplies the state by the gate ``sigmoid(bias)`` (``h[t] = a h[t-1] + b[t]``, constant
    ``a = sigmoid(bias)``, and the gradient shrinks by the same factor): ``sigmoid(bias)**T``.

    Chapter 7, exercise 2.
    """
    cases = []
    for bias, T in ((0.0, 1), (1.0, 0), (1.0, 10), (5.0, 1000), (-2.0, 3), (9.0, 65536)):
        expected = _sigmoid(bias) ** T
        show = {"bias": bias, "T": T}
        cases.append(Case(f"bias={bias}, T={T}", (bias, T), expected, show=show, rtol=1e-9, atol=0))

    def diagnose(case: Case, got) -> str | None:
        bias, T = case.args
        if not isinstance(got, int | float | np.floating):
            return None
        s = _sigmoid(bias)
        if T >= 1 and math.isclose(got, s ** (T - 1), rel_tol=1e-9):
            return "off by one: h[T] is T multiplications away from h[0]"
        if T > 0 and math.isclose(got, (1 - s) ** T, rel_tol=1e-9):
            return "the gate keeps sigmoid(bias) of the state, not 1 - sigmoid(bias)"
        if T > 0 and bias != 0 and math.isclose(got, bias**T, rel_tol=1e-9):
            return "the bias goes through the sigmoid first: a = 1 / (1 + exp(-bias))"
        return None

    return grade(
        "check_retention",
        fn,
        cases,
        hint="a = 1 / (1 + exp(-bias)); the share left after T steps is a ** T",
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


def check_bias_for_retention(
    fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn(T, keep) -> float``: the gate bias whose gate keeps the share ``keep`` of the
    state after ``T`` steps, ``sigmoid(bias)**T = keep``: ``bias = logit(keep**(1/T))``.

    Chapter 7, exercise 3.
    """
    cases = []
    for T, keep in ((1, 0.5), (10, 0.5), (1000, 0.5), (1000, 0.9), (65536, 0.5), (1, 0.99)):
        a = keep ** (1.0 / T)
        expected = math.log(a / (1 - a))
        show = {"T": T, "keep": keep}
        cases.append(Case(f"T={T}, keep={keep}", (T, keep), expected, show=show, rtol=1e-7, atol=0))

    def diagnose(case: Case, got) -> str | None:
        T, keep = case.args
        if not isinstance(got, int | float | np.floating):
            return None
        a = keep ** (1.0 / T)
        if math.isclose(got, a, rel_tol=1e-7):
            return "that is the gate a itself; the bias is its logit, log(a / (1 - a))"
        if 0 < keep / T < 1 and math.isclose(got, math.log((keep / T) / (1 - keep / T))):
            return "take the T-th root of keep, not keep / T: a ** T = keep"
        return None

    return grade(
        "check_bias_for_retention",
        fn,
        cases,
        hint="solve a ** T = keep for a, then invert the sigmoid: bias = log(a / (1 - a))",
        diagnose=diagnose,
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


# -- exercise 4: when did a run converge? ------------------------------------------------------


def check_steps_to_target(
    fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn(accuracies, target, window) -> int | None``: the first step (counting from
    1) at which the mean of the last ``window`` accuracies reaches ``target``; ``None`` if it
    never does (also when fewer than ``window`` steps were taken). As
    :func:`scanbook.train.steps_to_accuracy`.

    Chapter 7, exercise 4.
    """
    from .. import train

    rng = make_rng(77)
    noisy = list(np.clip(np.linspace(0.4, 1.0, 60) + rng.uniform(-0.1, 0.1, 60), 0, 1))
    inputs = [
        ([1.0, 1.0, 1.0], 0.9, 1),
        ([0.5, 1.0, 1.0], 0.9, 2),
        ([0.5, 0.5, 1.0], 0.9, 3),
        ([], 0.5, 1),
        ([1.0], 0.5, 2),
        (noisy, 0.95, 10),
        (noisy, 0.8, 5),
        (noisy[:20], 0.99, 10),
    ]
    cases = []
    for accs, target, window in inputs:
        log = [{"step": i + 1, "accuracy": a, "wall": float(i)} for i, a in enumerate(accs)]
        expected = train.steps_to_accuracy(log, target, window)[0]
        label = f"{len(accs)} steps, target={target}, window={window}"
        show = {"accuracies": np.array(accs), "target": target, "window": window}
        cases.append(Case(label, (list(accs), target, window), expected, show=show))

    def compare(got, expected, case: Case) -> str | None:
        if expected is None:
            return None if got is None else f"expected None (never reached), got {got!r}"
        if isinstance(got, bool) or not isinstance(got, int | np.integer):
            return f"expected the step {expected} as an int, got {got!r}"
        return None if got == expected else f"expected step {expected}, got {got}"

    def diagnose(case: Case, got) -> str | None:
        accs, target, window = case.args
        if isinstance(got, bool) or not isinstance(got, int | np.integer):
            return None
        single = next((i + 1 for i, a in enumerate(accs) if a >= target), None)
        if window > 1 and got == single:
            return "average the last `window` accuracies; one lucky step is not convergence"
        if case.expected is not None and got == case.expected - 1:
            return "steps count from 1: the first step is step 1, not 0"
        return None

    return grade(
        "check_steps_to_target",
        fn,
        cases,
        hint="for i from window-1 on, mean(accuracies[i-window+1 : i+1]) >= target -> step i+1",
        compare=compare,
        diagnose=diagnose,
        forbid=("scanbook.train.steps_to_accuracy",),
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )


# -- exercise 5: images as sequences -----------------------------------------------------------


def check_digit_sequences(
    fn: Callable, *, raise_on_fail: bool = False, quiet: bool = False
) -> Feedback:
    """Grade ``fn(images, layout) -> x``: 8x8 images ``(N, 8, 8)`` as time-major sequences,
    read row by row: ``layout="pixels"`` gives ``(64, N, 1)`` (one pixel a step),
    ``layout="rows"`` gives ``(8, N, 8)`` (one row a step). As :func:`scanbook.tasks.digits`.

    Chapter 7, exercise 5.
    """
    rng = make_rng(78)
    cases = []
    for n in (1, 3, 10):
        images = rng.integers(0, 17, size=(n, 8, 8)).astype(np.float64)
        pixels = images.reshape(n, 64).T[:, :, None]
        rows = images.transpose(1, 0, 2)
        for layout, expected in (("pixels", pixels), ("rows", rows)):
            show = {"images": images, "layout": layout}
            label = f"{n} images, {layout}"
            cases.append(Case(label, (images, layout), expected, show=show, rtol=0, atol=0))

    def diagnose(case: Case, got) -> str | None:
        images, layout = case.args
        g = np.asarray(got) if got is not None else None
        if g is None or g.dtype == object:
            return None
        n = images.shape[0]
        if layout == "pixels":
            if same(g, images.reshape(n, 64, 1)):
                return "time-major: time is the first axis, (T, N, in_dim), not (N, T, in_dim)"
            if same(g, images.transpose(0, 2, 1).reshape(n, 64).T[:, :, None]):
                return "read the image row by row (C order), not column by column"
        elif same(g, images) or same(g, images.transpose(0, 2, 1).transpose(1, 0, 2)):
            return "time is the row index: x[t, n] = images[n, t], i.e. images.transpose(1, 0, 2)"
        return None

    return grade(
        "check_digit_sequences",
        fn,
        cases,
        hint="pixels: images.reshape(N, 64).T[:, :, None]; rows: images.transpose(1, 0, 2)",
        diagnose=diagnose,
        forbid=("scanbook.tasks._digit_sequences",),
        raise_on_fail=raise_on_fail,
        quiet=quiet,
    )

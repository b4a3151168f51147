"""Figures of the Legendre Memory Unit: its basis, its impulse response, the delayed input read
back from its state, its eigenvalues, and the cost and accuracy of the three ways to run it.

Defined in chapter 8.
"""

from __future__ import annotations

import numpy as np

from .common import HIGHLIGHT, OTHER_COLORS, new_axes

__all__ = [
    "plot_conditioning",
    "plot_costs",
    "plot_delay",
    "plot_eigenvalues",
    "plot_impulse_response",
    "plot_legendre_basis",
]


def plot_legendre_basis(order: int = 6, ax=None):
    """The shifted Legendre polynomials ``P_0 .. P_{order-1}`` on ``r`` in ``[0, 1]``.

    Returns the Figure. Defined in chapter 8.
    """
    from .. import lti

    ax = new_axes(ax, figsize=(6.0, 3.2))
    r = np.linspace(0, 1, 401)
    P = lti.legendre(order, r)
    for i in range(order):
        ax.plot(r, P[:, i], color=OTHER_COLORS[i % len(OTHER_COLORS)], label=f"$P_{i}$")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel(r"$r$ (delay as a fraction of the window: $u(t - r\theta)$)")
    ax.set_ylabel(r"$P_i(r)$")
    ax.set_title("shifted Legendre polynomials", fontsize=9)
    ax.legend(fontsize=8, ncol=min(order, 6), loc="upper center", bbox_to_anchor=(0.5, -0.2))
    return ax.figure


def plot_impulse_response(H, theta: float, rows=(0, 1, 2, 3), ax=None):
    """Rows ``i`` of the impulse response ``H[k, i]`` against ``(2i+1)/theta * P_i(r)``.

    ``H``: shape ``(T, q)`` from :func:`scanbook.lti.impulse_response`. Each row is divided by
    ``(2i+1)/theta`` so that it should follow ``P_i``. The dashed lines are the ideal
    sliding-window Legendre projection (zero beyond ``theta``) at ``r = (k + 1/2)/theta``, the
    midpoint of the step over which the zero-order hold holds the impulse. Returns the Figure,
    or None when ``H`` is empty. Defined in chapter 8.
    """
    from .. import lti

    H = np.asarray(H)
    if H.ndim != 2 or H.shape[0] == 0:
        return None
    ax = new_axes(ax, figsize=(6.5, 3.2))
    k = np.arange(H.shape[0])
    q = H.shape[1]
    ideal = lti.legendre(q, np.clip((k + 0.5) / theta, 0, 1)) * (2 * np.arange(q) + 1) / theta
    ideal[k + 0.5 > theta] = 0.0
    for n, i in enumerate(r for r in rows if r < q):
        color = OTHER_COLORS[n % len(OTHER_COLORS)]
        ax.plot(k, H[:, i] * theta / (2 * i + 1), color=color, label=f"$H[k, {i}]$")
        ax.plot(k, ideal[:, i] * theta / (2 * i + 1), color=color, ls="--", lw=0.8)
    ax.axvline(theta, color="k", lw=0.6, ls=":")
    ax.set_xlabel("steps since the impulse, $k$")
    ax.set_ylabel(r"$H[k, i]\;\theta / (2i+1)$")
    ax.set_title(
        rf"impulse response, order {q}, $\theta$ = {theta:g} (dashed: $P_i((k+1/2)/\theta)$)",
        fontsize=9,
    )
    ax.legend(fontsize=8, loc="lower right")
    return ax.figure


def plot_delay(t, u, estimates: dict, ax=None):
    """A signal and its delayed copies read back from the memory.

    ``estimates`` maps a label to ``(estimate, truth)``: two arrays over ``t``, the readout
    and the delayed input it should match. Returns the Figure. Defined in chapter 8.
    """
    ax = new_axes(ax, figsize=(7.0, 3.2))
    ax.plot(t, u, color="0.6", lw=1.0, label="input $u(t)$")
    for n, (label, (est, truth)) in enumerate(estimates.items()):
        color = HIGHLIGHT if n == 0 else OTHER_COLORS[n % len(OTHER_COLORS)]
        ax.plot(t, truth, color="k", lw=0.8, ls="--")
        ax.plot(t, est, color=color, lw=1.4, alpha=0.85, label=label)
    ax.set_xlabel("step $t$")
    ax.set_title("the memory read back (dashed: the true delayed input)", fontsize=9)
    ax.legend(fontsize=8, loc="upper left", ncol=len(estimates) + 1)
    return ax.figure


def plot_eigenvalues(eigs: dict, ax=None):
    """Eigenvalues of ``Ad`` in the complex plane, one set per label, with the unit circle.

    Returns the Figure. Defined in chapter 8.
    """
    ax = new_axes(ax, figsize=(4.2, 4.0))
    phi = np.linspace(0, 2 * np.pi, 400)
    ax.plot(np.cos(phi), np.sin(phi), color="k", lw=0.6, ls=":")
    for n, (label, lam) in enumerate(eigs.items()):
        lam = np.asarray(lam)
        ax.scatter(lam.real, lam.imag, s=14, color=OTHER_COLORS[n % len(OTHER_COLORS)], label=label)
    ax.set_aspect("equal")
    ax.set_xlabel("real part")
    ax.set_ylabel("imaginary part")
    ax.set_title("eigenvalues of $A_d$ (dotted: $|\\lambda| = 1$)", fontsize=9)
    ax.legend(fontsize=8, loc="lower left")
    return ax.figure


def plot_costs(Ts, times: dict, ax=None, title: str = ""):
    """Seconds per call against ``T`` (log-log), one line per method, with a dashed ``T`` slope.

    ``times`` maps a method's name to a list of seconds, one per entry of ``Ts`` (None or NaN
    where not measured). Returns the Figure, or None when nothing was measured.
    Defined in chapter 8.
    """
    Ts = np.asarray(Ts, dtype=float)
    if Ts.size == 0 or not times:
        return None
    ax = new_axes(ax, figsize=(6.0, 3.6))
    for n, (name, secs) in enumerate(times.items()):
        secs = np.array([np.nan if s is None else s for s in secs], dtype=float)
        ax.plot(Ts, secs * 1e3, marker="o", color=OTHER_COLORS[n % len(OTHER_COLORS)], label=name)
        finite = np.isfinite(secs)
        if n == 0 and finite.any():
            i = np.flatnonzero(finite)[-1]
            ax.plot(
                Ts, secs[i] * 1e3 * Ts / Ts[i], color="k", ls="--", lw=0.7, label="$\\propto T$"
            )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length $T$")
    ax.set_ylabel("time per call (ms)")
    ax.set_title(title or "cost as T grows", fontsize=9)
    ax.legend(fontsize=8)
    return ax.figure


def plot_conditioning(orders, conds, errors: dict):
    """Two panels against the order ``q``: ``cond(V)`` of the eigenvector basis, and the
    relative error of each method (``errors`` maps a label to a list over ``orders``) against
    the float64 loop, with the float64 and float32 machine epsilons. Returns the Figure.
    Defined in chapter 8.
    """
    import matplotlib.pyplot as plt

    orders = np.asarray(orders)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    ax1.semilogy(orders, conds, marker="o", color=HIGHLIGHT)
    ax1.axhline(1 / np.finfo(np.float64).eps, color="k", ls="--", lw=0.7)
    ax1.text(orders[0], 0.2 / np.finfo(np.float64).eps, "1 / eps (float64)", fontsize=8)
    ax1.set_xlabel("order $q$")
    ax1.set_ylabel("cond($V$)")
    ax1.set_title("condition number of the eigenvector basis", fontsize=9)
    for n, (label, errs) in enumerate(errors.items()):
        style = "-" if "float64" in label else ":"
        color = HIGHLIGHT if "diagonal" in label else OTHER_COLORS[n % len(OTHER_COLORS)]
        ax2.semilogy(orders, errs, marker="o", ms=3, ls=style, color=color, label=label)
    for dt in (np.float64, np.float32):
        eps = np.finfo(dt).eps
        ax2.axhline(eps, color="k", lw=0.5, ls="--")
        ax2.text(orders[-1], 2 * eps, f"eps ({np.dtype(dt).name})", fontsize=8, ha="right")
    ax2.set_xlabel("order $q$")
    ax2.set_ylabel("max relative error against the loop")
    ax2.set_title("accuracy of the parallel methods", fontsize=9)
    ax2.legend(fontsize=8)
    return fig

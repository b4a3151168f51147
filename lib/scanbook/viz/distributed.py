"""Figures of chapter 10: the chunked scan across devices, and what it sends.

Defined in chapter 10.
"""

from __future__ import annotations

import numpy as np

from .common import HIGHLIGHT, OTHER_COLORS, PHASE_COLORS, new_axes

__all__ = ["draw_devices", "plot_bytes", "plot_phases"]


def draw_devices(p: int = 4, L: int = 6, ax=None):
    """A diagram of Algorithm 1 on ``p`` devices, chunks of ``L`` steps, left to right.

    One row per device: its chunk scanned from zero (phase 1, purple), the summary
    ``(P_i, U_i)`` sent to the all-gather (phase 2, orange; drawn as one exchange, counted
    in chapter 10 as a ring of ``p - 1`` steps), the carry ``C_{i-1}`` it picks out, and the
    chunk fixed up with it (phase 3, teal). Returns the Figure.

    Defined in chapter 10.
    """
    import matplotlib.patches as mpatches

    if p < 1 or L < 1:
        return None
    ax = new_axes(ax, figsize=(11.0, 0.8 * p + 1.2))
    x_sum = L + 0.8
    x_gather = x_sum + 2.6
    x_carry = x_gather + 1.6
    x_fix = x_carry + 2.2
    purple, orange, teal = PHASE_COLORS["reduce"], PHASE_COLORS["carry"], PHASE_COLORS["scan"]

    def box(x, y, w, colour, text, alpha=0.3):
        ax.add_patch(
            mpatches.FancyBboxPatch(
                (x, y + 0.2), w, 0.6, boxstyle="round,pad=0.02", fc=colour, alpha=alpha, ec=colour
            )
        )
        ax.text(x + w / 2, y + 0.5, text, ha="center", va="center", fontsize=8)

    def arrow(x0, y0, x1, y1, colour):
        ax.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            arrowprops=dict(arrowstyle="-|>", color=colour, lw=0.9),
        )

    mid = (p - 1) / 2 + 0.5
    for i in range(p):
        y = p - 1 - i
        ax.text(-0.3, y + 0.5, f"device {i}", ha="right", va="center", fontsize=9)
        for t in range(L):
            for x0, colour in ((0, purple), (x_fix, teal)):
                ax.add_patch(
                    mpatches.Rectangle(
                        (x0 + t, y + 0.2), 0.9, 0.6, fc=colour, alpha=0.25, ec="none"
                    )
                )
                name = "u" if x0 == 0 else "h"
                ax.text(
                    x0 + t + 0.45,
                    y + 0.5,
                    f"${name}_{{{i * L + t}}}$",
                    ha="center",
                    va="center",
                    fontsize=7,
                )
        box(x_sum, y, 1.6, orange, f"$(P_{i}, U_{i})$")
        arrow(L - 0.05, y + 0.5, x_sum - 0.05, y + 0.5, purple)
        arrow(x_sum + 1.65, y + 0.5, x_gather - 0.05, mid, orange)
        box(x_carry, y, 1.4, teal, "$h_{-1}$" if i == 0 else f"$C_{{{i - 1}}}$")
        arrow(x_gather + 0.65, mid, x_carry - 0.05, y + 0.5, teal)
        arrow(x_carry + 1.45, y + 0.5, x_fix - 0.05, y + 0.5, teal)
    ax.add_patch(
        mpatches.FancyBboxPatch(
            (x_gather, 0.2), 0.6, p - 0.4, boxstyle="round,pad=0.02", fc="white", ec=orange
        )
    )
    top = p + 0.15
    ax.text(
        L / 2,
        top,
        "1. local scan from zero: $u_t$ and $P_t$\n(no communication)",
        ha="center",
        fontsize=8,
    )
    ax.text(
        x_gather + 0.3,
        top,
        f"2. all-gather: every device\nreceives all {p} summaries",
        ha="center",
        fontsize=8,
    )
    ax.text(
        x_carry + 0.7,
        -0.25,
        f"carry $C_{{i-1}}$: each device\nscans the {p} summaries itself",
        ha="center",
        va="top",
        fontsize=8,
        color=teal,
    )
    ax.text(
        x_fix + L / 2,
        top,
        "3. fix-up: $h_t = u_t + P_t C_{i-1}$\n(no communication)",
        ha="center",
        fontsize=8,
    )
    ax.set_xlim(-1.6, x_fix + L + 0.2)
    ax.set_ylim(-0.9, p + 0.9)
    ax.set_axis_off()
    return ax.figure


def plot_phases(u, h, p: int, carries=None, ax=None):
    """The states of one channel: each chunk from zero (``u``), then fixed up (``h``).

    ``u`` and ``h`` have shape ``(T,)``; the chunks are ``ceil(T / p)`` steps long.
    ``carries`` (length ``p``), if given, are drawn at each chunk's start. Returns the Figure.

    Defined in chapter 10.
    """
    u, h = np.asarray(u, float), np.asarray(h, float)
    T = len(h)
    if T == 0 or u.shape != h.shape:
        return None
    L = -(-T // p)
    ax = new_axes(ax, figsize=(8.0, 3.4))
    t = np.arange(T)
    for i in range(p):
        s = slice(i * L, min(i * L + L, T))
        ax.plot(
            t[s],
            u[s],
            color=PHASE_COLORS["reduce"],
            lw=1.2,
            label="1. each chunk from zero" if i == 0 else None,
        )
        if i:
            ax.axvline(i * L - 0.5, color="0.7", lw=0.8, ls=":")
    ax.plot(t, h, color=HIGHLIGHT, lw=1.6, alpha=0.8, label="3. fixed up: $u_t + P_t C$")
    if carries is not None:
        c = np.asarray(carries, float)
        starts = np.arange(len(c)) * L - 1
        ok = starts < T
        ax.plot(
            starts[ok],
            c[ok],
            "o",
            color=PHASE_COLORS["carry"],
            ms=6,
            label="2. carry into each chunk",
        )
    ax.set_xlabel("time step $t$ (dotted: device boundaries)")
    ax.set_ylabel("state")
    ax.legend(loc="best", fontsize=8)
    return ax.figure


def plot_bytes(Ts, sharded, gather_all, *, measured=None, p=None, ax=None):
    """Bytes one device sends against ``T``: the sharded scan and the all-gather of the data.

    ``sharded`` and ``gather_all`` are sequences of bytes, one per ``T`` (the model);
    ``measured`` (optional) is ``(Ts, sharded, gather_all)``: the bytes the compiled
    programs' all-gathers produce, times ``(p - 1) / p`` (a ring), drawn as crosses.
    Returns the Figure.

    Defined in chapter 10.
    """
    Ts = np.asarray(Ts, float)
    if Ts.size == 0:
        return None
    ax = new_axes(ax, figsize=(6.5, 3.8))
    ax.loglog(Ts, gather_all, "-", color=OTHER_COLORS[0], label="all-gather the whole sequence")
    ax.loglog(Ts, sharded, "-", color=HIGHLIGHT, label="sharded scan (summaries only)")
    if measured is not None:
        mT, ms, mg = (np.asarray(x, float) for x in measured)
        ax.loglog(mT, ms, "x", color="k", ms=9, label="HLO result $\\times (p-1)/p$")
        ax.loglog(mT, mg, "x", color="k", ms=9)
    ax.set_xlabel("sequence length $T$")
    ax.set_ylabel("bytes sent per device")
    if p is not None:
        ax.set_title(f"{p} devices, forward pass", fontsize=10)
    ax.legend(fontsize=8)
    return ax.figure

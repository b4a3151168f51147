"""Figures of chapter 9 (DEER): residual per iteration, cost against the hidden size, speed
against the sequential loop as ``T`` grows (this machine's or a GPU's result file), and the
loss curves of a GRU trained through DEER and through the loop.

Defined in chapter 9.
"""

from __future__ import annotations

import math
import re

from .common import HIGHLIGHT, OTHER_COLORS, is_num, new_axes, read_results

__all__ = [
    "deer_records",
    "plot_cost",
    "plot_losses",
    "plot_residuals",
    "plot_speed",
]

_METHOD_COLORS = {"newton": HIGHLIGHT, "quasi": OTHER_COLORS[0], "damped": OTHER_COLORS[1]}
_METHOD_STYLES = {"newton": "-", "quasi": "--", "damped": "-."}


def _color(name: str, i: int) -> str:
    return _METHOD_COLORS.get(name, OTHER_COLORS[(i + 2) % len(OTHER_COLORS)])


def _method_of(label) -> str:
    m = re.match(r"[a-z]+", str(label))
    return m.group(0) if m else ""


def plot_residuals(histories: dict, *, tol=None, failed=(), ax=None, title=None):
    """The largest residual ``max_t |h[t] - f(h[t-1], x[t])|`` after each iteration, log scale.

    ``histories``: ``{label: residuals}``, e.g. ``info.residuals`` of :func:`scanbook.deer.solve`
    (entries past the last iteration are NaN and are not drawn). A run whose label is in
    ``failed`` (or whose residual became infinite) ends with a cross at the top of the axes.
    A label starting with a method's name gets that method's colour (the first time; red for
    newton). ``tol``: a dashed line. Returns the Figure, or None when there is nothing to draw.
    Defined in chapter 9.
    """
    import numpy as np

    series = {}
    for label, res in histories.items():
        res = np.asarray(res, dtype=float).ravel()
        if res.size:
            series[label] = res
    if not series:
        return None
    ax = new_axes(ax, figsize=(6.5, 3.6))
    used, crosses = set(), []
    for i, (label, res) in enumerate(series.items()):
        finite = np.isfinite(res)
        last = int(np.nonzero(finite)[0][-1]) if finite.any() else -1
        method = _method_of(label)
        if method in _METHOD_COLORS and method not in used:
            color = _METHOD_COLORS[method]
            used.add(method)
        else:
            color = OTHER_COLORS[(i + 2) % len(OTHER_COLORS)]
        style = _METHOD_STYLES.get(method, "-")
        k = np.arange(last + 1)
        ax.semilogy(
            k, np.maximum(res[: last + 1], 1e-300), style, marker="o", ms=3, color=color,
            label=str(label) + (" (failed)" if label in failed else ""),
        )  # fmt: skip
        if label in failed or np.isinf(res).any():
            crosses.append((last + 1, color))
    if tol is not None and is_num(float(tol)) and tol > 0:
        ax.axhline(float(tol), color="k", ls="--", lw=0.8, label=f"tol = {float(tol):g}")
    top = ax.get_ylim()[1]
    for x, color in crosses:
        ax.plot([x], [top], "x", color=color, ms=9, mew=2, clip_on=False)
    ax.set_xlabel("iteration")
    ax.set_ylabel(r"max$_t\,|h_t - f(h_{t-1}, x_t)|$")
    ax.set_title(title or "DEER: residual per iteration", fontsize=9)
    ax.legend(fontsize=8)
    return ax.figure


def plot_cost(records: list[dict], *, axes=None, title=None):
    """Time of one iteration and bytes of its Jacobians against the hidden size ``n``.

    ``records``: dicts with ``method``, ``hidden``, ``step_s`` (seconds of one iteration)
    and ``jacobian_bytes``. Two panels, log-log, with dotted slopes through the largest ``n``
    (where the work, not overhead, dominates): ``n^3`` for newton's time (quasi's has no
    single power: an ``O(n^3)`` diagonal, an ``O(n)`` scan), ``n^2`` and ``n`` for the bytes.
    Returns the Figure (None for no records).
    Defined in chapter 9.
    """
    import numpy as np

    rows = [r for r in records if is_num(r.get("hidden")) and r.get("method")]
    if not rows:
        return None
    if axes is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    ax_t, ax_b = axes
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for i, m in enumerate(methods):
        mine = sorted((r for r in rows if r["method"] == m), key=lambda r: r["hidden"])
        n = np.array([r["hidden"] for r in mine], float)
        for ax, key, power in (
            (ax_t, "step_s", 3 if m != "quasi" else None),
            (ax_b, "jacobian_bytes", 2 if m != "quasi" else 1),
        ):
            y = np.array([r.get(key) if is_num(r.get(key)) else np.nan for r in mine], float)
            if not np.isfinite(y).any():
                continue
            scale = 1e3 if key == "step_s" else 1 / 2**20
            ax.loglog(
                n, y * scale, _METHOD_STYLES.get(m, "-"), marker="o", color=_color(m, i), label=m
            )
            if power is None:
                continue
            j = int(np.nonzero(np.isfinite(y))[0][-1])  # through the largest n: work dominates
            ref = y[j] * scale * (n / n[j]) ** power
            ax.loglog(n, ref, ":", color=_color(m, i), lw=0.9, label=f"$\\propto n^{power}$")
    ns = sorted({float(r["hidden"]) for r in rows})
    for ax in axes:
        ax.set_xticks(ns, [f"{v:g}" for v in ns])
        ax.minorticks_off()
    ax_t.set_xlabel("hidden size n")
    ax_t.set_ylabel("ms per iteration")
    ax_t.set_title("time of one iteration", fontsize=9)
    ax_b.set_xlabel("hidden size n")
    ax_b.set_ylabel("MiB")
    ax_b.set_title("the Jacobians of one iteration", fontsize=9)
    for ax in axes:
        ax.legend(fontsize=7)
    fig = ax_t.figure
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def deer_records(paths=None, *, gpu_only: bool = True) -> list[dict]:
    """The timed records of the DEER benchmark's result files (``python -m scanbook.bench
    deer --save``).

    ``paths``: files to read; default every ``*.json`` of the results folder. Skipped and
    failed records and those without a number in ``median_s`` are left out; with
    ``gpu_only`` so are records measured on a CPU. Each record gets ``device``, ``date`` and
    ``file``; of records with the same device, ``T``, ``hidden``, ``batch`` and method only
    the newest is kept. Defined in chapter 9.
    """
    newest: dict[tuple, dict] = {}
    for f, data in read_results("deer", paths):
        records = data.get("records")
        for r in records if isinstance(records, list) else []:
            if not isinstance(r, dict) or "skipped" in r or "error" in r:
                continue
            if not is_num(r.get("median_s")) or not is_num(r.get("T")):
                continue
            device = r.get("device") or data.get("device")
            if not isinstance(device, str) or (gpu_only and device.startswith("CPU")):
                continue
            rec = {**r, "device": device, "file": f.name, "date": data.get("date")}
            key = (device, r.get("T"), r.get("hidden"), r.get("batch"), r.get("method"))
            if key not in newest or str(rec["date"] or "") > str(newest[key]["date"] or ""):
                newest[key] = rec
    return sorted(
        newest.values(),
        key=lambda r: (r["device"], r.get("hidden") or 0, r.get("method") or "", r["T"]),
    )


def plot_speed(records: list[dict], *, axes=None, title=None):
    """Seconds against ``T`` (left) and the speed-up over the loop (right), log-log.

    ``records``: the benchmark's (``T``, ``hidden``, ``batch``, ``method``, ``median_s``,
    ``speedup``), from :func:`scanbook.bench.deer.run` or :func:`deer_records`. One line per
    method and hidden size; on the right a dashed line at 1 (no gain). Returns the Figure, or
    None when no record has a time. Defined in chapter 9.
    """
    rows = [r for r in records if is_num(r.get("median_s")) and is_num(r.get("T"))]
    if not rows:
        return None
    if axes is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    ax_t, ax_s = axes
    hiddens = sorted({r.get("hidden") for r in rows if is_num(r.get("hidden"))})
    markers = "os^vDP*X"
    methods = list(dict.fromkeys(r.get("method") for r in rows))
    for i, m in enumerate(methods):
        for j, n in enumerate(hiddens):
            mine = sorted(
                (r for r in rows if r.get("method") == m and r.get("hidden") == n),
                key=lambda r: r["T"],
            )
            if not mine:
                continue
            T = [r["T"] for r in mine]
            color = "k" if m == "sequential" else _color(m, i)
            style = ":" if m == "sequential" else _METHOD_STYLES.get(m, "-")
            label = f"{m}, n={n}"
            ax_t.loglog(
                T,
                [r["median_s"] * 1e3 for r in mine],
                style,
                color=color,
                marker=markers[j % len(markers)],
                ms=4,
                label=label,
            )
            sp = [(r["T"], r["speedup"]) for r in mine if is_num(r.get("speedup"))]
            if sp:
                ax_s.loglog(
                    *zip(*sp, strict=True),
                    style,
                    color=color,
                    marker=markers[j % len(markers)],
                    ms=4,
                    label=label,
                )
    ax_s.axhline(1.0, color="k", ls="--", lw=0.8)
    ax_t.set_xlabel("sequence length T")
    ax_t.set_ylabel("ms per call (median)")
    ax_t.set_title("time of the whole sequence", fontsize=9)
    ax_s.set_xlabel("sequence length T")
    ax_s.set_ylabel("loop time / DEER time")
    ax_s.set_title("speed-up over the sequential loop (above 1: DEER wins)", fontsize=9)
    ax_t.legend(fontsize=7, ncol=2)
    if ax_s.get_legend_handles_labels()[0]:
        ax_s.legend(fontsize=7, ncol=2)
    fig = ax_t.figure
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def plot_losses(curves: dict, *, ax=None, title=None):
    """Training loss against step for each run: ``{label: losses}`` or ``{label: (steps,
    losses)}``. The first run is drawn thick and the others thin on top of it, so that
    matching curves are seen to match. Returns the Figure (None for no curves).
    Defined in chapter 9.
    """
    import numpy as np

    if not curves:
        return None
    ax = new_axes(ax, figsize=(6.5, 3.6))
    for i, (label, curve) in enumerate(curves.items()):
        if isinstance(curve, tuple) and len(curve) == 2:
            steps, losses = (np.asarray(c, float) for c in curve)
        else:
            losses = np.asarray(curve, float)
            steps = np.arange(losses.size)
        color = HIGHLIGHT if i == 1 else OTHER_COLORS[i % len(OTHER_COLORS)]
        ax.plot(
            steps,
            losses,
            "-" if i == 0 else "--",
            lw=4 if i == 0 else 1.4,
            alpha=0.5 if i == 0 else 1.0,
            color=color,
            label=str(label),
        )
    ax.set_xlabel("training step")
    ax.set_ylabel("loss")
    ax.set_title(title or "training loss", fontsize=9)
    ax.legend(fontsize=8)
    if all(math.isfinite(v) for v in ax.get_ylim()):
        ax.set_ylim(bottom=0)
    return ax.figure

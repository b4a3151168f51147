"""Figures of chapter 9 (DEER): residual per iteration, cost against the hidden size, speed
against the sequential loop as ``T`` grows (this machine's or a GPU's result file), and the
loss curves of a GRU trained through DEER and through the loop.

Defined in chapter 9.
"""

from __future__ import annotations

import math

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


def plot_residuals(histories: dict, *, tol=None, ax=None, title=None):
    """The largest residual ``max_t |h[t] - f(h[t-1], x[t])|`` after each iteration, log scale.

    ``histories``: ``{label: residuals}``, e.g. ``info.residuals`` of :func:`scanbook.deer.solve`
    (entries past the last iteration are NaN and are not drawn; a residual that became
    infinite or NaN ends the line with a cross). ``tol``: a dashed line. Returns the Figure,
    or None when there is nothing to draw. Defined in chapter 9.
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
    for i, (label, res) in enumerate(series.items()):
        finite = np.isfinite(res)
        last = int(np.nonzero(finite)[0][-1]) if finite.any() else -1
        k = np.arange(last + 1)
        color = _color(str(label).split()[0], i)
        style = _METHOD_STYLES.get(str(label).split()[0], "-")
        ax.semilogy(
            k,
            np.maximum(res[: last + 1], 1e-300),
            style,
            marker="o",
            ms=3,
            color=color,
            label=str(label),
        )
        bad = np.nonzero(~np.isfinite(res) & ~np.isnan(res))[0]
        if bad.size or (last + 1 < res.size and not np.isnan(res[last + 1 :]).all()):
            ax.plot([last + 1], [ax.get_ylim()[1]], "x", color=color, ms=8)
    if tol is not None and is_num(float(tol)) and tol > 0:
        ax.axhline(float(tol), color="k", ls="--", lw=0.8, label=f"tol = {float(tol):g}")
    ax.set_xlabel("iteration")
    ax.set_ylabel(r"max$_t\,|h_t - f(h_{t-1}, x_t)|$")
    ax.set_title(title or "DEER: residual per iteration", fontsize=9)
    ax.legend(fontsize=8)
    return ax.figure


def plot_cost(records: list[dict], *, axes=None, title=None):
    """Time of one iteration and bytes of its Jacobians against the hidden size ``n``.

    ``records``: dicts with ``method``, ``hidden``, ``step_s`` (seconds of one iteration)
    and ``jacobian_bytes``. Two panels, log-log, with dotted ``n^3`` and ``n`` slopes through
    the first point of newton and of quasi. Returns the Figure (None for no records).
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
            (ax_t, "step_s", 3 if m != "quasi" else 1),
            (ax_b, "jacobian_bytes", 2 if m != "quasi" else 1),
        ):
            y = np.array([r.get(key) if is_num(r.get(key)) else np.nan for r in mine], float)
            if not np.isfinite(y).any():
                continue
            scale = 1e3 if key == "step_s" else 1 / 2**20
            ax.loglog(
                n, y * scale, _METHOD_STYLES.get(m, "-"), marker="o", color=_color(m, i), label=m
            )
            j = int(np.nonzero(np.isfinite(y))[0][0])
            ref = y[j] * scale * (n / n[j]) ** power
            ax.loglog(n, ref, ":", color=_color(m, i), lw=0.9, label=f"$\\propto n^{power}$")
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

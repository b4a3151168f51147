"""Figures of the gradient benchmark's results (``python -m scanbook.bench grad --json``):
how much longer the backward pass takes than the forward one, on each GPU measured.

Defined in chapter 5.
"""

from __future__ import annotations

from .common import (
    HIGHLIGHT,
    OTHER_COLORS,
    day_of,
    is_num,
    new_axes,
    read_results,
    record_shape,
    shape_text,
)

__all__ = ["gradient_records", "plot_gradient_ratios"]


def gradient_records(paths=None) -> list[dict]:
    """The GPU records of the gradient benchmark (``python -m scanbook.bench grad --json``).

    ``paths``: result files to read; default every ``*.json`` in
    :func:`scanbook.viz.common.results_dir` (``benchmarks/results``, or the folder named by
    ``SCANBOOK_RESULTS_DIR``). Keeps the records whose ``kernel`` ends in ``"_grad"``, that
    were not skipped, have a backward/forward ``ratio`` (computed from ``backward_s`` and
    ``forward_s`` where missing) and ran on a device other than the CPU. Each gets the
    ``file`` and ``date`` it came from; of records with the same device, kernel and shape only
    the newest is kept. Files of other benchmarks and unreadable files are ignored.
    Defined in chapter 5.
    """
    newest: dict[tuple, dict] = {}
    for f, data in read_results("grad", paths, default="grad"):
        records = data.get("records")
        for r in records if isinstance(records, list) else []:
            if not isinstance(r, dict) or "skipped" in r:
                continue
            if not str(r.get("kernel", "")).endswith("_grad"):
                continue
            ratio = r.get("ratio")
            fwd, bwd = r.get("forward_s"), r.get("backward_s")
            if not is_num(ratio) and is_num(fwd) and is_num(bwd) and fwd > 0:
                ratio = bwd / fwd
            device = r.get("device") or data.get("device")
            if not is_num(ratio) or not isinstance(device, str) or device.startswith("CPU"):
                continue
            rec = {**r, "ratio": ratio, "device": device, "file": f.name, "date": data.get("date")}
            key = (device, rec["kernel"], *record_shape(rec))
            if key not in newest or str(rec["date"] or "") > str(newest[key]["date"] or ""):
                newest[key] = rec
    return sorted(newest.values(), key=lambda r: (r["device"], record_shape(r), r["kernel"]))


def plot_gradient_ratios(records: list[dict], *, ax=None):
    """Backward over forward time of each gradient record, as bars, against the targets.

    ``records``: :func:`gradient_records`'s. One bar per record, coloured by device and
    labelled with the backend and shape; a dashed line at 2 (backward twice the forward pass)
    and a dotted one at 5/3 (what a fused backward kernel's bytes
    allow). The title names the devices and dates. Returns the matplotlib ``Figure``, or
    ``None`` when no record has a ratio. Defined in chapter 5.
    """
    from matplotlib.patches import Patch

    rows = [
        r
        for r in records
        if isinstance(r, dict) and is_num(r.get("ratio")) and abs(r["ratio"]) < 1e6
    ]
    if not rows:
        return None
    devices = sorted({str(r.get("device") or "?") for r in rows})
    color = {d: OTHER_COLORS[k % len(OTHER_COLORS)] for k, d in enumerate(devices)}
    ax = new_axes(ax, (max(6.0, 0.9 * len(rows) + 2), 3.8))
    several_dtypes = len({record_shape(r)[2] for r in rows}) > 1
    labels = []
    for x, r in enumerate(rows):
        ax.bar(x, r["ratio"], color=color[str(r.get("device") or "?")])
        ax.text(x, r["ratio"], f"{r['ratio']:.2f}", ha="center", va="bottom", fontsize=7)
        name = r.get("backend") or str(r.get("kernel", "?")).removesuffix("_grad")
        labels.append(f"{name}\n{shape_text(record_shape(r), dtype=several_dtypes)}")
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    ax.axhline(2.0, color=HIGHLIGHT, ls="--", lw=1, label="backward = 2 × forward")
    ax.axhline(5 / 3, color="0.4", ls=":", lw=1, label="fused kernel's bytes: 5/3")
    ax.set_ylabel("backward / forward time")
    # records whose backward time was below the noise carry no ratio and are not drawn
    ratios = [r["ratio"] for r in rows]
    ax.set_ylim(1.15 * min(0.0, *ratios), 1.15 * max(2.2, *ratios))
    handles = ax.get_legend_handles_labels()[0]
    if len(devices) > 1:
        handles += [Patch(color=color[d], label=d) for d in devices]
    ax.legend(handles=handles, fontsize=7)
    dates = sorted({day_of(r.get("date")) for r in rows})
    ax.set_title(f"Gradient kernels on {', '.join(devices)} ({', '.join(dates)})", fontsize=9)
    return ax.figure

"""Figures of the GPU benchmark's results (``python -m scanbook.bench gpu``): achieved
bandwidth against a copy of the same bytes, the targets, Martin & Cundy's Table 1 again, and
where the serial kernel catches up with the parallel ones.

Defined in chapters 3 and 4.

The records are :func:`scanbook._bench_gpu.load_results`'s, read from ``benchmarks/results``
and written on some GPU, possibly years and machines away, so nothing here trusts them (see
:mod:`scanbook.viz.common`); one folder may hold several GPUs and several runs, and every
figure draws one GPU's newest run (:func:`select_gpu`). Every function draws what it can and
returns ``None`` when that is nothing.
"""

from __future__ import annotations

import itertools

from .common import (
    HIGHLIGHT,
    OTHER_COLORS,
    day_of,
    gpu_of,
    int_or_none,
    is_num,
    kernel_label,
    new_axes,
    pct_text,
    record_gbps,
    record_shape,
    shape_text,
)

__all__ = [
    "describe_gpu_bandwidth",
    "describe_gpu_results",
    "plot_crossover",
    "plot_gpu_bandwidth",
    "plot_gpu_targets",
    "plot_table1",
    "select_gpu",
]

_SWEEPS = ("table1_", "crossover_")  # the GPU benchmark's sweeps; the rest is bandwidth


def select_gpu(records: list[dict], gpu: str | None = None) -> tuple[str | None, list[dict]]:
    """The records of one GPU's newest run: ``(gpu name, records)``.

    ``records`` are :func:`scanbook._bench_gpu.load_results`'s, each carrying the ``gpu`` and
    ``date`` of its file. ``gpu=None`` picks the GPU measured most recently; of that GPU only
    the newest date is kept, so two runs are never mixed in one figure. Returns
    ``(None, [])`` for no records. Defined in chapter 4.
    """
    records = [r for r in records if isinstance(r, dict)]
    if not records:
        return None, []
    newest: dict[str, str] = {}
    for r in records:
        name = gpu_of(r)
        newest[name] = max(newest.get(name, ""), str(r.get("date") or ""))
    if gpu is None:
        gpu = max(newest, key=lambda name: (newest[name], name))
    elif gpu not in newest:
        raise ValueError(f"gpu must be one of the recorded GPUs {sorted(newest)}; got {gpu!r}")
    return gpu, [r for r in records if gpu_of(r) == gpu and str(r.get("date") or "") == newest[gpu]]


def _provenance(records: list[dict], gpu: str, mine: list[dict]) -> str:
    """``"NVIDIA H200, 2026-01-05"`` and what was left out: other GPUs, older runs."""
    gpus = {gpu_of(r) for r in records if isinstance(r, dict)}
    runs = {str(r.get("date") or "") for r in records if isinstance(r, dict) and gpu_of(r) == gpu}
    text = f"{gpu}, {day_of(mine[0].get('date') if mine else None)}"
    notes = []
    if len(gpus) > 1:
        notes.append(f"the newest of {len(gpus)} GPUs recorded")
    if len(runs) > 1:
        notes.append(f"the newest of {len(runs)} runs")
    return text + (f" ({'; '.join(notes)})" if notes else "")


def _bandwidth_records(mine: list[dict]) -> list[dict]:
    return [r for r in mine if not str(r.get("kernel", "")).startswith(_SWEEPS)]


def describe_gpu_results(records: list[dict]) -> str:
    """One line per GPU with results: its newest date, records measured and failed.

    ``""`` for no records. Defined in chapter 4.
    """
    records = [r for r in records if isinstance(r, dict)]
    gpu, _ = select_gpu(records)
    if gpu is None:
        return ""
    lines = ["GPU results recorded for:"]
    for name in sorted({gpu_of(r) for r in records}):
        _, mine = select_gpu(records, name)
        measured = sum(record_gbps(r) is not None for r in mine)
        failed = [r for r in mine if "error" in r]
        line = f"  {name}, {day_of(mine[0].get('date'))}: {measured} measurements"
        if failed:
            kernels = sorted({str(r.get("kernel", "?")) for r in failed})
            line += f", {len(failed)} failed ({', '.join(kernels)})"
        lines.append(line)
    if len(lines) > 2:
        lines.append(f"The figures show {gpu}, the GPU measured most recently.")
    return "\n".join(lines)


def describe_gpu_bandwidth(
    records: list[dict], kernel: str = "numba", *, gpu: str | None = None
) -> str:
    """One line per target shape for the kernels whose name contains ``kernel``: GB/s and
    percentage of the copy, or why it was not measured. ``""`` when there is none.

    ``gpu``: as for :func:`select_gpu`. Defined in chapter 3.
    """
    gpu, mine = select_gpu(records, gpu)
    rows = [r for r in _bandwidth_records(mine) if kernel in str(r.get("kernel", ""))]
    if not rows:
        return ""
    lines = [f"On {_provenance(records, gpu, mine)}:"]
    order = lambda r: (str(r.get("kernel")), record_shape(r)[2], record_shape(r))
    for r in sorted(rows, key=order):
        head = f"  {r.get('kernel')} {shape_text(record_shape(r))}: "
        if record_gbps(r) is not None:
            pct = r.get("pct_of_copy")
            line = head + f"{record_gbps(r):,.0f} GB/s"
            line += f" = {pct_text(pct)} of copy" if is_num(pct) else " (no copy measured)"
            if r.get("timing"):
                line += f" [{r['timing']}]"
        else:
            line = head + f"not measured: {r.get('error') or r.get('skipped') or 'no GB/s'}"
        lines.append(line)
    return "\n".join(lines)


def plot_gpu_bandwidth(
    records: list[dict], highlight: str | None = "numba", *, gpu: str | None = None, ax=None
):
    """Achieved bandwidth of every kernel on each target shape of the GPU benchmark.

    One line per kernel over the benchmark's target shapes (``T``, channels, dtype), GB/s on a
    log scale; the kernels whose name contains ``highlight`` are drawn thick and red, the copy
    of the same bytes (the ceiling) black and dashed. Only one GPU's newest run is drawn (see
    :func:`select_gpu`); the title names it. Kernels that failed (records with ``error``) are
    left out; :func:`describe_gpu_bandwidth` prints why. Returns the matplotlib ``Figure``,
    or ``None`` when no bandwidth was measured. Defined in chapter 3.
    """
    gpu, mine = select_gpu(records, gpu)
    rows = [r for r in _bandwidth_records(mine) if record_gbps(r) is not None]
    if not rows:
        return None
    targets = sorted({record_shape(r) for r in rows}, key=lambda s: (s[2], -s[1], s[0]))
    x_of = {s: i for i, s in enumerate(targets)}
    kernels = sorted({kernel_label(r) for r in rows}, key=lambda k: (k != "copy", k))
    ax = new_axes(ax, (8, 4.4))
    others = itertools.cycle(OTHER_COLORS)
    for kernel in kernels:
        pts = sorted(
            (x_of[record_shape(r)], record_gbps(r)) for r in rows if kernel_label(r) == kernel
        )
        if kernel == "copy":
            style = dict(color="k", ls="--", lw=1.5, label="copy (the ceiling)")
        elif highlight and highlight in kernel:
            style = dict(color=HIGHLIGHT, lw=2.5, zorder=3, label=kernel)
        else:
            style = dict(color=next(others), lw=1, alpha=0.75, label=kernel)
        ax.plot(*zip(*pts, strict=True), marker="o", ms=4, **style)
    ax.set_xticks(range(len(targets)), [shape_text(s, "\n") for s in targets], fontsize=8)
    ax.set_xlim(-0.4, len(targets) - 0.6)
    ax.set_yscale("log")
    ax.set_ylabel("achieved bandwidth (GB/s)")
    ax.set_xlabel("target shape")
    red = f"; {highlight}: red" if highlight and any(highlight in k for k in kernels) else ""
    ax.set_title(f"Linear recurrence kernels on {_provenance(records, gpu, mine)}{red}", fontsize=9)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return ax.figure


def plot_crossover(records: list[dict], *, gpu: str | None = None, n_sm: int | None = None,
                   ax=None):  # fmt: skip
    """The serial, single-pass and three-phase kernels' GB/s at a fixed ``T * C``, against the
    channel count ``C``: where the serial kernel catches up, ``method="auto"`` should switch.

    Reads the GPU benchmark's ``crossover_*`` records of one GPU's newest run (see
    :func:`select_gpu`) and, with ``n_sm`` (the GPU's multiprocessor count; by default the
    one recorded with the results), marks the channel count from which
    :func:`scanbook.kernels.cupy_raw.choose_method` picks the serial kernel.
    Returns the matplotlib ``Figure``, or ``None`` when no crossover record has a bandwidth.
    Defined in chapter 4.
    """
    gpu, mine = select_gpu(records, gpu)
    rows = [
        r
        for r in mine
        if str(r.get("kernel", "")).startswith("crossover_")
        and record_gbps(r) is not None
        and (int_or_none(r.get("channels")) or 0) > 0
    ]
    if not rows:
        return None
    ax = new_axes(ax, (7.0, 4.0))
    methods = sorted({str(r["kernel"]).removeprefix("crossover_") for r in rows})
    for j, method in enumerate(methods):
        pts = sorted(
            (int(r["channels"]), record_gbps(r))
            for r in rows
            if str(r["kernel"]).removeprefix("crossover_") == method
        )
        color = "k" if method == "serial" else OTHER_COLORS[j % len(OTHER_COLORS)]
        ax.plot(*zip(*pts, strict=True), marker="o", ms=4, color=color, label=method)
    if n_sm is None:
        n_sm = next((r["multiprocessors"] for r in rows if is_num(r.get("multiprocessors"))), None)
    if is_num(n_sm) and n_sm > 0:
        from ..kernels.cupy_raw import serial_min_channels

        c_auto = serial_min_channels(int(n_sm))
        ax.axvline(c_auto, color=HIGHLIGHT, ls="--", lw=1)
        ax.text(c_auto, ax.get_ylim()[1], '"auto": serial from here ', color=HIGHLIGHT, fontsize=7,
                va="top", ha="right")  # fmt: skip
    elements = sorted({(int_or_none(r.get("T")) or 0) * int(r["channels"]) for r in rows})
    size = f"T x C = {elements[-1]:,}" if len(elements) == 1 else "T x C fixed"
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("channels C (T = elements / C)")
    ax.set_ylabel("GB/s (12 bytes an element)")
    ax.set_title(f"Serial vs parallel by shape, {size}, {_provenance(records, gpu, mine)}",
                 fontsize=9)  # fmt: skip
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    return ax.figure


def plot_gpu_targets(records: list[dict], *, gpu: str | None = None):
    """One panel per target shape: each kernel's GB/s as a bar, labelled with its % of copy.

    The copy of the same bytes is the black bar; a kernel that failed on a shape keeps its row,
    marked "failed". Only one GPU's newest run is drawn (see :func:`select_gpu`); the title
    names it. Returns the matplotlib ``Figure``, or ``None`` when no bandwidth was measured.
    Defined in chapter 4.
    """
    import matplotlib.pyplot as plt

    gpu, mine = select_gpu(records, gpu)
    bandwidth = _bandwidth_records(mine)
    measured = {record_shape(r) for r in bandwidth if record_gbps(r) is not None}
    targets = sorted(measured, key=lambda s: (s[2], -s[1], s[0]))
    if not targets:
        return None
    ncols = min(2, len(targets))
    nrows = -(-len(targets) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(5.4 * ncols, 3.3 * nrows), layout="constrained", squeeze=False
    )
    for ax in axes.flat[len(targets) :]:
        ax.axis("off")
    for ax, target in zip(axes.flat, targets, strict=False):
        rows = [r for r in bandwidth if record_shape(r) == target]
        rows.sort(key=lambda r: r.get("kernel") != "copy")  # stable: the bench's order after
        labels = []
        for y, r in enumerate(rows):
            kernel = kernel_label(r)
            labels.append(f"{kernel} ({r['chose']})" if r.get("chose") else kernel)
            gbps = record_gbps(r)
            if gbps is None:
                why = " failed" if r.get("error") else " not measured"
                ax.text(0, y, why, va="center", fontsize=7, color=HIGHLIGHT)
                continue
            ax.barh(y, gbps, color="k" if kernel == "copy" else "C0")
            pct = r.get("pct_of_copy")
            note = f" {pct_text(pct)}" if is_num(pct) else f" {gbps:,.0f} GB/s"
            ax.text(gbps, y, note, va="center", fontsize=7)
        ax.set_yticks(range(len(rows)), labels, fontsize=8)
        ax.set_ylim(len(rows) - 0.5, -0.5)  # the first row on top
        ax.set_xlim(0, 1.2 * max(record_gbps(r) or 0.0 for r in rows))
        ax.set_title(shape_text(target), fontsize=9)
        ax.set_xlabel("GB/s (label: % of copy)")
    fig.suptitle(
        f"Linear recurrence kernels vs a copy of the same bytes, {_provenance(records, gpu, mine)}",
        fontsize=10,
    )
    return fig


def plot_table1(records: list[dict], *, gpu: str | None = None, ax=None):
    """Martin & Cundy's Table 1 again: parallel kernels' speedup over the serial kernel against
    ``T`` (batch 1), one colour per channel count, with the paper's K80 numbers as crosses.

    Reads the GPU benchmark's ``table1_*`` records of one GPU's newest run (see
    :func:`select_gpu`; the title names it) and the paper's numbers from
    :data:`scanbook._bench_gpu.PAPER_TABLE1`. Returns the matplotlib ``Figure``, or ``None``
    when no Table 1 record has a speedup. Defined in chapter 4.
    """
    from .._bench_gpu import PAPER_TABLE1

    gpu, mine = select_gpu(records, gpu)
    rows = [
        r
        for r in mine
        if str(r.get("kernel", "")).startswith("table1_")
        and is_num(r.get("speedup_vs_serial"))
        and r["speedup_vs_serial"] > 0
        and is_num(r.get("T"))
        and r["T"] > 0
    ]
    if not rows:
        return None
    ax = new_axes(ax, (7.5, 4.4))
    channels = sorted({int_or_none(r.get("channels")) or 0 for r in rows})
    kernels = sorted({str(r["kernel"]) for r in rows}, key=lambda k: (k != "table1_single_pass", k))
    styles = ("-", "--", ":", "-.")
    for j, C in enumerate(channels):
        color = f"C{j % 10}"
        for kernel, ls in zip(kernels, styles * len(kernels), strict=False):
            pts = sorted(
                (r["T"], r["speedup_vs_serial"])
                for r in rows
                if r["kernel"] == kernel and (int_or_none(r.get("channels")) or 0) == C
            )
            if pts:
                ax.plot(
                    *zip(*pts, strict=True),
                    ls=ls,
                    marker="o",
                    ms=4,
                    color=color,
                    label=f"{kernel.removeprefix('table1_')}, C={C}",
                )
        paper = sorted((T, s) for (T, c), s in PAPER_TABLE1.items() if c == C and is_num(s))
        if paper:
            ax.plot(*zip(*paper, strict=True), "x", ms=9, color=color, label=f"paper (K80), C={C}")
    ax.axhline(1, color="k", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length T (batch 1)")
    ax.set_ylabel("speedup over the serial kernel")
    ax.set_title(
        f"Martin & Cundy's Table 1 again, on {_provenance(records, gpu, mine)}", fontsize=9
    )
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return ax.figure

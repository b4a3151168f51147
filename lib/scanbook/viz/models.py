"""Figures of the LS-RNN throughput benchmark (``python -m scanbook.bench models``).

Martin & Cundy's Table 2 (parallel over serial speedup against sequence length, at a fixed
number of events) as lines beside the paper's numbers, and the LS-LSTM against LSTM throughput
ratio over batch size and sequence length as a heatmap. The records come straight from
:func:`scanbook.bench.models.table2` / :func:`~scanbook.bench.models.heatmap` (a CPU run in
the chapter) or from result files recorded on a GPU (:func:`model_records`).

Defined in chapter 6.
"""

from __future__ import annotations

from .common import OTHER_COLORS, day_of, is_num, new_axes, read_results

__all__ = [
    "LABELS",
    "describe_model_results",
    "format_table2",
    "model_records",
    "plot_heatmap",
    "plot_table2",
]

LABELS = {
    "sru": "SRU",
    "qrnn2": "QRNN(2)",
    "qrnn10": "QRNN(10)",
    "gilr_lstm": "GILR-LSTM",
    "gilr": "GILR",
    "min_gru": "minGRU",
    "min_lstm": "minLSTM",
    "lstm": "LSTM",
    "ls_lstm": "LS-LSTM",
}


def _paper():
    from ..bench.models import PAPER_TABLE2

    return PAPER_TABLE2


def _paper_events() -> int:
    from ..bench.models import PAPER_EVENTS

    return PAPER_EVENTS


def _at_paper_sizes(rows) -> bool:
    """Were these Table 2 rows measured at the paper's batch x T (so each T has its batch)?"""
    return bool(rows) and all(r.get("events") == _paper_events() for r in rows)


def model_records(paths=None, *, gpu_only: bool = True) -> list[dict]:
    """The records of the newest ``models`` result file (per device), each with its file's
    ``device`` and ``date``.

    ``paths``: files to read; default every ``*.json`` in ``benchmarks/results`` (or
    ``SCANBOOK_RESULTS_DIR``). With ``gpu_only`` files measured on a CPU are passed over.
    Failed (``error``) and skipped records are dropped. ``[]`` when nothing is recorded.
    Defined in chapter 6.
    """
    newest: dict[str, tuple[str, list]] = {}
    for f, data in read_results("models", paths):
        device = str(data.get("device") or "unknown device")
        if gpu_only and device.startswith("CPU"):
            continue
        date = str(data.get("date") or "")
        records = data.get("records")
        rows = [
            {**r, "device": device, "date": date, "file": f.name}
            for r in (records if isinstance(records, list) else [])
            if isinstance(r, dict) and "error" not in r and "skipped" not in r
        ]
        if rows and (device not in newest or date > newest[device][0]):
            newest[device] = (date, rows)
    return [r for _, rows in newest.values() for r in rows]


def _table2(records):
    return [
        r
        for r in records
        if isinstance(r, dict)
        and r.get("table", "table2") == "table2"
        and is_num(r.get("speedup"))
        and is_num(r.get("T"))
    ]


def format_table2(records) -> str:
    """Table 2 as text: one row per ``T``, per model the measured speedup.

    ``records``: :func:`scanbook.bench.models.table2`'s (or :func:`model_records`'s). Measured
    at the paper's batch x T (65,536), each cell reads ``measured (paper)``, the paper's value
    at the same ``T`` and batch (``-`` where it has none). At other sizes the same ``T`` would
    mean another batch, so the paper's rows are listed below instead, each with its batch.
    Defined in chapter 6.
    """
    rows = _table2(records)
    if not rows:
        return "(no Table 2 records)"
    paper = _paper()
    beside = _at_paper_sizes(rows)
    models = list(dict.fromkeys(r["model"] for r in rows))
    width = 18 if beside else 11
    lines = [f"{'T':>7} {'batch':>6} " + "".join(f"{LABELS.get(m, m):>{width}}" for m in models)]
    for T in sorted({int(r["T"]) for r in rows}):
        by_model = {r["model"]: r for r in rows if int(r["T"]) == T}
        batch = next(iter(by_model.values())).get("batch", "?")
        cells = []
        for m in models:
            r = by_model.get(m)
            ours = "-" if r is None else f"{r['speedup']:.2f}x"
            if beside:
                theirs = paper.get(T, {}).get(m)
                ours = f"{ours} ({'-' if theirs is None else f'{theirs:.2f}x'})"
            cells.append(ours)
        lines.append(f"{T:>7} {batch:>6} " + "".join(f"{c:>{width}}" for c in cells))
    if not beside:
        events = _paper_events()
        lines.append(f"Martin & Cundy, K80 GPU, 2 x 256, batch x T = {events:,}:")
        for T in sorted(paper):
            cells = ["-" if paper[T].get(m) is None else f"{paper[T][m]:.2f}x" for m in models]
            lines.append(f"{T:>7} {events // T:>6} " + "".join(f"{c:>{width}}" for c in cells))
    return "\n".join(lines)


def plot_table2(records, *, ax=None, title: str | None = None):
    """Speedup of the parallel mode over the serial one against ``T``, a line per model.

    When the records were measured at the paper's batch x T, the paper's Table 2 (K80 GPU) is
    drawn in the same colours, dashed with open markers (at other sizes the same ``T`` means
    another batch, and the paper's lines are left out). A grey line at 1 separates "the scan
    wins" from "the loop wins"; the y ticks are labelled ratios. Returns the ``Figure``, or
    ``None`` when no record has a speedup. Defined in chapter 6.
    """
    rows = _table2(records)
    if not rows:
        return None
    paper = _paper()
    ax = new_axes(ax, (6.5, 4.0))
    beside = _at_paper_sizes(rows)
    models = list(dict.fromkeys(r["model"] for r in rows))
    shown = []
    for k, m in enumerate(models):
        color = OTHER_COLORS[k % len(OTHER_COLORS)]
        mine = sorted((int(r["T"]), r["speedup"]) for r in rows if r["model"] == m)
        ax.plot(*zip(*mine, strict=True), "o-", color=color, label=f"{LABELS.get(m, m)}")
        shown += [v for _, v in mine]
        theirs = sorted((T, v[m]) for T, v in paper.items() if m in v) if beside else []
        if theirs:
            ax.plot(*zip(*theirs, strict=True), "o--", color=color, mfc="none", alpha=0.7)
            shown += [v for _, v in theirs]
    ax.axhline(1.0, color="0.5", lw=1)
    if beside:
        ax.plot([], [], "o--", color="0.4", mfc="none", label="Martin & Cundy, K80 (dashed)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    lo, hi = min(min(shown), 1.0), max(max(shown), 1.0)
    ticks = [2.0**e for e in range(-8, 9)]
    ticks = [t for t in ticks if lo / 2 <= t <= hi * 2]
    ax.set_yticks(ticks, [f"{t:g}x" for t in ticks])
    ax.set_yticks([], minor=True)
    ax.set_ylim(lo / 1.25, hi * 1.25)
    ax.set_xlabel("sequence length T (batch = events / T)")
    ax.set_ylabel("speedup: serial time / parallel time")
    ax.legend(fontsize=7)
    if title is None:
        device = rows[0].get("device")
        events = rows[0].get("events", "?")
        title = f"Table 2 at batch x T = {events}" + (f" on {device}" if device else "")
    ax.set_title(title, fontsize=9)
    return ax.figure


def plot_heatmap(records, *, ax=None, title: str | None = None):
    """LS-LSTM over LSTM throughput, a cell per (batch, T), annotated with the ratio.

    ``records``: :func:`scanbook.bench.models.heatmap`'s (or :func:`model_records`'s): the
    ``ls_lstm`` records with a ``ratio``. Cells not measured (memory) are grey and say so.
    Colours on a log scale centred on 1 (red: the LS-LSTM is faster); each label is white or
    black, whichever reads better on its cell. Returns the ``Figure``, or ``None``
    when there is nothing to draw. Defined in chapter 6.
    """
    import matplotlib
    import matplotlib.colors as mcolors
    import numpy as np

    rows = [
        r
        for r in records
        if isinstance(r, dict)
        and r.get("model") == "ls_lstm"
        and is_num(r.get("ratio"))
        and r["ratio"] > 0
        and is_num(r.get("batch"))
        and is_num(r.get("T"))
    ]
    if not rows:
        return None
    batches = sorted({int(r["batch"]) for r in rows})
    Ts = sorted({int(r["T"]) for r in rows})
    grid = np.full((len(batches), len(Ts)), np.nan)
    for r in rows:
        grid[batches.index(int(r["batch"])), Ts.index(int(r["T"]))] = r["ratio"]
    ax = new_axes(ax, (1.2 * len(Ts) + 2.5, 0.6 * len(batches) + 1.8))
    top = max(2.0, float(np.nanmax(grid)), 1 / float(np.nanmin(grid)))
    norm = mcolors.LogNorm(vmin=1 / top, vmax=top)
    cmap = matplotlib.colormaps["RdBu_r"]
    ax.set_facecolor("0.8")  # cells not measured show the background
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, norm=norm, aspect="auto")
    for i in range(len(batches)):
        for j in range(len(Ts)):
            if np.isfinite(grid[i, j]):
                r, g, b, _ = cmap(norm(grid[i, j]))
                color = "k" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "w"
                ax.text(
                    j, i, f"{grid[i, j]:.3g}x", ha="center", va="center", fontsize=8, color=color
                )
            else:
                ax.text(j, i, "not\nmeasured", ha="center", va="center", fontsize=7, color="0.3")
    ax.set_xticks(range(len(Ts)), [f"{T:,}" for T in Ts])
    ax.set_yticks(range(len(batches)), [str(b) for b in batches])
    ax.set_xlabel("sequence length T")
    ax.set_ylabel("batch size")
    ax.figure.colorbar(image, ax=ax, label="LS-LSTM / LSTM throughput")
    if title is None:
        device = rows[0].get("device")
        title = "LS-LSTM (parallel) over LSTM (serial)" + (f" on {device}" if device else "")
    ax.set_title(title, fontsize=9, color="k")
    return ax.figure


def describe_model_results(records) -> str:
    """One sentence on the GPU results at hand: where and when, the largest Table 2 speedup
    and the largest LS-LSTM/LSTM ratio; or that none is recorded and how to record one.

    Defined in chapter 6.
    """
    rows = [r for r in records if isinstance(r, dict)] if records else []
    if not rows:
        return (
            "No GPU result of the models benchmark is recorded yet: run "
            "`python -m scanbook.bench models --save` on a machine with a GPU and the figures "
            "below appear from benchmarks/results/."
        )
    devices = sorted({str(r.get("device") or "an unknown device") for r in rows})
    dates = sorted({day_of(r.get("date")) for r in rows})
    parts = [f"Recorded on {', '.join(devices)} ({', '.join(dates)})"]
    t2 = _table2(rows)
    if t2:
        longest = max(int(r["T"]) for r in t2)
        best = max((r for r in t2 if int(r["T"]) == longest), key=lambda r: r["speedup"])
        parts.append(
            f"at T = {longest:,} the largest parallel-over-serial speedup is "
            f"{best['speedup']:.2f}x ({LABELS.get(best['model'], best['model'])})"
        )
    ratios = [r for r in rows if r.get("model") == "ls_lstm" and is_num(r.get("ratio"))]
    if ratios:
        top = max(ratios, key=lambda r: r["ratio"])
        parts.append(
            f"the LS-LSTM reaches {top['ratio']:.3g}x the LSTM's throughput "
            f"(batch {top['batch']}, T = {int(top['T']):,})"
        )
    return "; ".join(parts) + "."

"""Figures of the parallel scans and the scan-tree explorer.

Defined in chapter 2.

Everything here reads a :class:`scanbook.algorithms.Trace`: the levels an algorithm
executed, the pairs of positions each level combined, and (with ``record_values=True``) the
working array after every level. Four views of it:

* :func:`draw_trace`: the whole scan tree as one matplotlib figure;
* :func:`scan_explorer`: an ipywidgets slider that steps through the levels one at a time,
  each frame a small SVG drawn here, so it keeps working on a static web page with no kernel;
* :func:`work_depth` and :func:`plot_work_depth`: work and depth measured from traces (and,
  for the serial loop, by counting operator applications) against ``2n``, ``n log2 n``,
  ``2 log2 n`` and ``n``.

:func:`counting` wraps an operator so that it counts how many elements it combines: an
independent check of the work each trace reports.

The GPU benchmarks' figures are here too (chapters 3 to 5), tested on synthetic result files:
:func:`plot_gpu_bandwidth`, :func:`plot_gpu_targets` and :func:`plot_table1` draw the records
of :func:`scanbook._bench_gpu.load_results` (one GPU's newest run, :func:`select_gpu`), and
:func:`plot_gradient_ratios` those of :func:`gradient_records`.
"""

from __future__ import annotations

import html
import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from . import algorithms as _alg
from . import ops as _ops
from . import serial as _serial

__all__ = [
    "PHASE_COLORS",
    "Count",
    "Frame",
    "bounds",
    "counting",
    "describe_gpu_bandwidth",
    "describe_gpu_results",
    "draw_trace",
    "frame_svg",
    "frames",
    "gradient_records",
    "plot_crossover",
    "plot_gpu_bandwidth",
    "plot_gpu_targets",
    "plot_gradient_ratios",
    "plot_table1",
    "plot_work_depth",
    "scan_explorer",
    "select_gpu",
    "trace_of",
    "work_depth",
]

PHASE_COLORS = {
    "sweep": "#1f77b4",
    "up-sweep": "#2ca02c",
    "clear-root": "#7f7f7f",
    "down-sweep": "#d62728",
    "reduce": "#9467bd",
    "carry": "#ff7f0e",
    "scan": "#17a2b8",
    "shift": "#8c564b",
}
"""One colour per phase, shared by every figure of the book."""

PHASE_NOTES = {
    "input": "the input; grey cells are identity padding",
    "sweep": "every position i ≥ d combines in position i − d, all at once",
    "up-sweep": "each right child absorbs its left sibling: a tree of partial sums",
    "clear-root": "the root is replaced by the identity: no operator application",
    "down-sweep": "left ← parent's prefix; right ← prefix ∘ left total (a swap)",
    "reduce": "each chunk folds its next element into a running total (a scratch copy)",
    "carry": "the chunk totals are scanned one after another: each chunk's carry-in",
    "scan": "each chunk is rescanned from the input, from its carry-in (kept apart)",
    "shift": "shift by one to turn an inclusive scan into an exclusive one",
}

NAMES = {
    "serial": "Serial",
    "hillis_steele": "Hillis–Steele",
    "blelloch": "Blelloch",
    "chunked": "Chunked (three-phase)",
}

EXPLORER_MAX_N = 32


# -- traces and the frames drawn from them ---------------------------------------------------


def trace_of(algorithm: str, values, op: _ops.Operator = _ops.add, **kwargs) -> _alg.Trace:
    """Run ``algorithm`` on ``values`` and return its trace, with the values after each level.

    ``kwargs`` go to the algorithm (``n_chunks=`` for ``"chunked"``). Defined in chapter 2.
    """
    if algorithm not in ("hillis_steele", "blelloch", "chunked"):
        raise ValueError(
            f"algorithm must be 'hillis_steele', 'blelloch' or 'chunked'; got {algorithm!r}"
        )
    trace = _alg.Trace(record_values=True)
    _alg.ALGORITHMS[algorithm](op, values, trace=trace, **kwargs)
    return trace


@dataclass
class Frame:
    """The state after one level, as the explorer shows it (step 0 is the input).

    Attributes:
        step: ``0`` for the input, ``k`` for the state after the k-th level
            (``trace.levels[k - 1]``).
        phase: the level's phase (``"input"`` for step 0).
        pairs, kind: the level's ``(src, dst)`` pairs and ``"combine"`` or ``"swap"``.
        written: positions this level wrote.
        before, values: the working array before and after the level (1-D arrays), or
            ``None`` when the trace holds no printable values.
        work, depth: operator applications and levels so far, including this one.

    Defined in chapter 2.
    """

    step: int
    phase: str
    pairs: list[tuple[int, int]] = field(default_factory=list)
    kind: str = "combine"
    written: list[int] = field(default_factory=list)
    before: np.ndarray | None = None
    values: np.ndarray | None = None
    work: int = 0
    depth: int = 0

    @property
    def level_work(self) -> int:
        return len(self.pairs)


def _printable(values) -> bool:
    return (
        isinstance(values, np.ndarray)
        and values.ndim == 1
        and (np.issubdtype(values.dtype, np.integer) or np.issubdtype(values.dtype, np.floating))
    )


def _states(trace: _alg.Trace) -> list[np.ndarray | None]:
    """The working array before the first level and after each level (1-D), as drawn.

    The chunked scan keeps its carries outside the working array (phase 2 scans the chunk
    totals in a separate array), so its trace shows no change during the carry levels. Here
    each carry level writes the carry into the slot at the end of its chunk, which is the
    inclusive prefix up to that slot: the value the finished scan holds there.
    """
    raw = [trace.initial] + [level.values for level in trace.levels]
    if not all(_printable(v) for v in raw):
        return [None] * len(raw)
    states = [np.array(v, copy=True) for v in raw]
    if trace.algorithm == "chunked" and trace.levels:
        final = states[-1]
        for k, level in enumerate(trace.levels, start=1):
            if level.phase == "carry":
                states[k] = states[k - 1].copy()
                for _, dst in level.pairs:
                    states[k][dst] = final[min(dst, trace.n - 1)]
    return states


def _phase3_start(level: _alg.Level, initial: np.ndarray, carried: np.ndarray) -> np.ndarray:
    """What the chunked scan's phase 3 reads: the input, and each chunk's carry-in.

    The carry-in of a chunk sits at the end of the chunk before it (the ``src`` of its
    first pair). With one element per chunk that slot is also an element to update; the
    picture then shows the element, and the carry lives only in the library's carry array.
    """
    before = initial.copy()
    dsts = {dst for _, dst in level.pairs}
    for src, _ in level.pairs:
        if src not in dsts:
            before[src] = carried[src]
    return before


def _written(level: _alg.Level, n_padded: int) -> list[int]:
    if level.phase == "clear-root":
        return [n_padded - 1]
    if level.kind == "swap":
        return sorted({i for pair in level.pairs for i in pair})
    return sorted({dst for _, dst in level.pairs})


def frames(trace: _alg.Trace) -> list[Frame]:
    """One :class:`Frame` for the input and one for the state after each level of ``trace``.

    ``len(frames(trace)) == len(trace.levels) + 1``; the last frame's ``values`` are the
    inclusive scan (Blelloch: the exclusive scan, before the final shift). Defined in chapter 2.
    """
    states = _states(trace)
    out = [Frame(step=0, phase="input", values=states[0])]
    work = depth = 0
    for k, level in enumerate(trace.levels, start=1):
        work += level.work
        depth += level.work > 0
        before = states[k - 1]
        first_scan = level.phase == "scan" and trace.levels[k - 2].phase != "scan"
        if trace.algorithm == "chunked" and first_scan and before is not None:
            before = _phase3_start(level, states[0], states[k - 1])
        out.append(
            Frame(
                step=k,
                phase=level.phase,
                pairs=list(level.pairs),
                kind=level.kind,
                written=_written(level, trace.n_padded),
                before=before,
                values=states[k],
                work=work,
                depth=depth,
            )
        )
    return out


def bounds(algorithm: str, n: int, n_chunks: int | None = None) -> dict[str, tuple[str, float]]:
    """The textbook work and depth of ``algorithm`` on ``n`` elements, with how to write them.

    Returns ``{"work": (label, value), "depth": (label, value)}``, plus ``"p": ("p", chunks)``
    for the chunked scan. Defined in chapter 2.
    """
    lg = math.ceil(math.log2(n)) if n > 1 else 0
    if algorithm == "serial":
        return {"work": ("n − 1", n - 1), "depth": ("n − 1", n - 1)}
    if algorithm == "hillis_steele":
        return {"work": ("n log₂ n", n * math.log2(max(n, 1))), "depth": ("⌈log₂ n⌉", lg)}
    if algorithm == "blelloch":
        return {"work": ("2n", 2 * n), "depth": ("2 ⌈log₂ n⌉", 2 * lg)}
    if algorithm == "chunked":
        p = min(_alg.default_chunks(n) if n_chunks is None else n_chunks, max(n, 1))
        chunk = -(-n // p)
        return {"work": ("2n", 2 * n), "depth": ("2⌈n/p⌉ + p", 2 * chunk + p), "p": ("p", p)}
    raise ValueError(f"algorithm must be one of {sorted(NAMES)}; got {algorithm!r}")


def _fmt(v) -> str:
    v = float(v)
    if math.isinf(v):
        return "−∞" if v < 0 else "∞"
    if v == round(v) and abs(v) < 1e6:
        return str(int(round(v)))
    return f"{v:.2f}" if abs(v) < 100 else f"{v:.3g}"


# -- the static figure -----------------------------------------------------------------------


def draw_trace(trace: _alg.Trace, *, ax=None, show_values: bool = True, title: str | None = None):
    """Draw a recorded scan: one row per level (row 0 the input), one column per position.

    Each arrow goes from ``src`` in the row above to ``dst`` in this row and is coloured by
    phase; Blelloch's down-sweep swaps are drawn as a solid arrow (left total into the right
    child) and a dashed one (the prefix moving left). Written cells are tinted, identity
    padding is grey, each level's work is written at the right, and the title gives the
    totals. Values are printed when the trace recorded 1-D values (``Trace(record_values=True)``
    with ``ops.add`` or ``ops.maximum``). Returns the matplotlib ``Axes``. Defined in chapter 2.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    cols, n, levels = trace.n_padded, trace.n, trace.levels
    rows = len(levels) + 1
    if ax is None:
        _, ax = plt.subplots(figsize=(min(16, 1.8 + 0.42 * max(cols, 4)), 0.9 + 0.46 * rows))
    states = _states(trace) if show_values else [None] * rows
    printable = [s for s in states if s is not None]
    widest = max((len(_fmt(v)) for s in printable for v in s), default=1)
    base = 9 if cols <= 8 else 7.5 if cols <= 16 else 5.5 if cols <= 40 else 0
    fontsize = base * min(1.0, 4 / widest)  # shrink long numbers to fit their cell
    values_fit = bool(printable) and fontsize >= 4.5

    for r in range(rows):
        level = levels[r - 1] if r else None
        written = set(_written(level, cols)) if level else set()
        color = PHASE_COLORS.get(level.phase, "#444") if level else "#444"
        for i in range(cols):
            pad = i >= n
            face = "#e6e6e6" if pad else "white"
            if i in written:
                face = color
            ax.add_patch(
                Rectangle(
                    (i - 0.42, -r - 0.27),
                    0.84,
                    0.54,
                    facecolor=face,
                    alpha=0.25 if i in written else 1.0,
                    edgecolor="#999" if pad else "#555",
                    lw=0.6,
                    zorder=1,
                )
            )
            if values_fit and states[r] is not None:
                ax.text(
                    i,
                    -r,
                    _fmt(states[r][i]),
                    ha="center",
                    va="center",
                    fontsize=fontsize,
                    color="#999" if pad else "black",
                    zorder=3,
                )
        if level is None:
            continue
        for src, dst in level.pairs:
            ax.annotate(
                "",
                xy=(dst, -r + 0.27),
                xytext=(src, -r + 1 - 0.27),
                arrowprops=dict(arrowstyle="-|>", color=color, lw=1.0, shrinkA=0, shrinkB=0),
                zorder=2,
            )
            if level.kind == "swap":
                ax.annotate(
                    "",
                    xy=(src, -r + 0.27),
                    xytext=(dst, -r + 1 - 0.27),
                    arrowprops=dict(
                        arrowstyle="-|>", color=color, lw=1.0, ls="--", shrinkA=0, shrinkB=0
                    ),
                    zorder=2,
                )
        ax.text(cols - 0.2, -r, f"w={level.work}", ha="left", va="center", fontsize=8, color=color)

    ax.set_xlim(-0.7, cols + 0.9)
    ax.set_ylim(-rows + 0.5, 0.75)
    ax.set_yticks([-r for r in range(rows)])
    ax.set_yticklabels(["input"] + [f"{k} {lv.phase}" for k, lv in enumerate(levels, start=1)])
    step = 1 if cols <= 16 else 2 if cols <= 32 else 4
    ax.set_xticks(range(0, cols, step))
    ax.xaxis.tick_top()
    ax.tick_params(length=0, labelsize=8)
    for spine in ax.spines.values():
        spine.set_visible(False)
    name = title or f"{NAMES.get(trace.algorithm, trace.algorithm)} scan, n = {n}"
    padded = f" (padded to {cols})" if cols != n else ""
    ax.set_title(f"{name}{padded}: work {trace.work}, depth {trace.depth}", fontsize=10, pad=14)

    handles = [
        Line2D([], [], color=PHASE_COLORS.get(p, "#444"), lw=2, label=p)
        for p in trace.phases()
        if trace.phases()[p][0] > 0
    ]
    if any(lv.kind == "swap" for lv in levels):
        handles.append(Line2D([], [], color="#555", lw=1, ls="--", label="swap: prefix moves left"))
    if cols > n:
        handles.append(
            Rectangle((0, 0), 1, 1, facecolor="#e6e6e6", edgecolor="#999", label="padding")
        )
    if handles:
        ax.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            ncol=min(len(handles), 4),
            fontsize=8,
            frameon=False,
        )
    return ax


# -- the explorer: one SVG per frame ---------------------------------------------------------


def _arrow(x1, y1, x2, y2, color, dashed=False, width=1.3) -> str:
    """An SVG line with a triangular head drawn as a polygon (no <marker>: ids would clash)."""
    length = math.hypot(x2 - x1, y2 - y1) or 1.0
    ux, uy = (x2 - x1) / length, (y2 - y1) / length
    head, half = 7.0, 3.2
    bx, by = x2 - head * ux, y2 - head * uy
    pts = f"{x2:.1f},{y2:.1f} {bx - half * uy:.1f},{by + half * ux:.1f} "
    pts += f"{bx + half * uy:.1f},{by - half * ux:.1f}"
    dash = ' stroke-dasharray="4 3"' if dashed else ""
    return (
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{bx:.1f}" y2="{by:.1f}" stroke="{color}" '
        f'stroke-width="{width}"{dash}/><polygon points="{pts}" fill="{color}"/>'
    )


def _text(x, y, s, size=12, anchor="start", color="#222", weight="normal") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="{color}" font-weight="{weight}">{html.escape(s)}</text>'
    )


def frame_svg(
    trace: _alg.Trace, step: int, *, all_frames: list[Frame] | None = None, n_chunks=None
) -> str:
    """The explorer's picture of ``step`` (0 = the input) as an SVG string.

    Two rows of cells, the array before and after the level, with an arrow for every pair
    the level combined; counters of work and depth so far against the textbook bounds; and
    a strip of all levels coloured by phase with the current one outlined. Defined in
    chapter 2.
    """
    all_frames = frames(trace) if all_frames is None else all_frames
    f = all_frames[step]
    cols, n = trace.n_padded, trace.n
    cell = max(20, min(40, 560 // max(cols, 1)))
    left, right = 64, 16
    width = left + cols * cell + right
    width = max(width, 520)
    color = PHASE_COLORS.get(f.phase, "#444")
    b = bounds(trace.algorithm, n, n_chunks)
    total_steps = len(all_frames) - 1
    out: list[str] = []
    y = 18
    name = "Chunked" if trace.algorithm == "chunked" else NAMES.get(trace.algorithm, "")
    padded = f", padded to {cols}" if cols != n else ""
    chunks = f" in p = {b['p'][1]} chunks" if "p" in b else ""
    out.append(_text(8, y, f"{name} scan of n = {n}{chunks}{padded}", 14, weight="bold"))
    y += 20
    if f.step == 0:
        head = f"step 0 of {total_steps}: input"
    else:
        many = "s at once" if f.level_work > 1 else "" if f.level_work == 1 else "s"
        head = (
            f"step {f.step} of {total_steps}: {f.phase}, {f.level_work} operator application{many}"
        )
    out.append(_text(8, y, head, 12.5, color=color, weight="bold"))
    y += 17
    out.append(_text(8, y, PHASE_NOTES.get(f.phase, ""), 11.5, color="#444"))

    # counters: work and depth so far, as bars against the bound
    y += 12
    bar_w = (width - 24) / 2 - 8
    for j, (key, so_far, total) in enumerate(
        (("work", f.work, trace.work), ("depth", f.depth, trace.depth))
    ):
        label, bound = b[key]
        x0 = 8 + j * (bar_w + 16)
        scale = bar_w / max(bound, total, 1)
        out.append(
            f'<rect x="{x0:.1f}" y="{y}" width="{bar_w:.1f}" height="10" fill="#eee" '
            f'stroke="#bbb" stroke-width="0.6"/>'
        )
        out.append(
            f'<rect x="{x0:.1f}" y="{y}" width="{so_far * scale:.1f}" height="10" '
            f'fill="{"#333" if key == "work" else "#777"}"/>'
        )
        bx = x0 + bound * scale
        out.append(
            f'<line x1="{bx:.1f}" y1="{y - 3}" x2="{bx:.1f}" y2="{y + 13}" stroke="#c00" '
            f'stroke-width="1.5"/>'
        )
        out.append(_text(x0, y + 25, f"{key} so far {so_far} / bound {label} = {_fmt(bound)}", 11))
    y += 42

    # the array before and after this level
    def cells(row_y, values, highlight, label):
        out.append(_text(left - 8, row_y + cell * 0.45 + 4, label, 11, "end", "#555"))
        for i in range(cols):
            pad = i >= n
            fill = "#e6e6e6" if pad else "#ffffff"
            if i in highlight:
                fill = color
            opacity = ' fill-opacity="0.28"' if i in highlight else ""
            x = left + i * cell
            out.append(
                f'<rect x="{x + 1}" y="{row_y}" width="{cell - 2}" height="{cell * 0.9:.1f}" '
                f'fill="{fill}"{opacity} stroke="{"#aaa" if pad else "#555"}" '
                f'stroke-width="0.8"/>'
            )
            if values is not None:
                s = _fmt(values[i])
                size = min(13, cell * 0.5, 1.9 * cell / max(len(s), 1))
                out.append(
                    _text(
                        x + cell / 2,
                        row_y + cell * 0.45 + size * 0.36,
                        s,
                        round(size, 1),
                        "middle",
                        "#999" if pad else "#111",
                    )
                )

    for i in range(0, cols, 1 if cols <= 16 else 2):  # position numbers
        out.append(_text(left + i * cell + cell / 2, y + 10, str(i), 9, "middle", "#888"))
    y += 14
    gap = 2.2 * cell if cols <= 16 else 3.0 * cell
    top, bottom = y, y + cell * 0.9 + gap  # every frame has the same height: no jumping
    if f.step == 0:
        hint = "move the slider or press play to run the levels"
        out.append(_text(left, top + cell * 0.9 + gap / 2, hint, 11.5, color="#777"))
        cells(bottom, f.values, set(), "input")
    else:
        srcs = {s for s, _ in f.pairs} | (set(f.written) if f.kind == "swap" else set())
        cells(top, f.before, srcs, "before")
        cells(bottom, f.values, set(f.written), "after")
        y0, y1 = top + cell * 0.9, bottom
        cx = lambda i: left + i * cell + cell / 2
        for src, dst in f.pairs:
            if f.kind == "swap":
                out.append(_arrow(cx(src) + 3, y0, cx(dst) - 3, y1 - 1, color))
                out.append(_arrow(cx(dst) - 3, y0, cx(src) + 3, y1 - 1, color, dashed=True))
            else:
                out.append(_arrow(cx(src), y0, cx(dst), y1 - 1, color))
                if src != dst:  # the other operand stays where it is
                    out.append(
                        f'<line x1="{cx(dst):.1f}" y1="{y0:.1f}" x2="{cx(dst):.1f}" '
                        f'y2="{y1:.1f}" stroke="{color}" stroke-width="0.8" '
                        f'stroke-opacity="0.45"/>'
                    )
    y = bottom + cell * 0.9 + 10

    # the strip of all levels, the current one outlined
    y += 4
    out.append(_text(8, y + 11, "levels", 11, color="#555"))
    n_levels = len(trace.levels)
    box = min(26.0, (width - left - right) / max(n_levels, 1))
    for k, level in enumerate(trace.levels, start=1):
        x = left + (k - 1) * box
        c = PHASE_COLORS.get(level.phase, "#444")
        current = k == f.step
        out.append(
            f'<rect x="{x + 1:.1f}" y="{y}" width="{box - 2:.1f}" height="16" fill="{c}" '
            f'fill-opacity="{0.95 if current else 0.35}" '
            f'stroke="{"#000" if current else "none"}" stroke-width="2"/>'
        )
        if box >= 14:
            out.append(
                _text(
                    x + box / 2, y + 12, str(level.work), 9, "middle", "#fff" if current else "#333"
                )
            )
    y += 22
    x = left
    for phase in dict.fromkeys(level.phase for level in trace.levels):
        c = PHASE_COLORS.get(phase, "#444")
        out.append(f'<rect x="{x}" y="{y}" width="10" height="10" fill="{c}"/>')
        out.append(_text(x + 13, y + 9, phase, 10.5, color="#333"))
        x += 20 + 6.2 * len(phase)
    if any(level.kind == "swap" for level in trace.levels):
        out.append(_text(x, y + 9, "(dashed: prefix moves left)", 10.5, color="#333"))
    height = int(y + 18)
    body = "".join(out)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height}" '
        f'viewBox="0 0 {width:.0f} {height}" font-family="sans-serif">'
        f'<rect width="100%" height="100%" fill="white"/>{body}</svg>'
    )


def scan_explorer(
    n: int | None = None,
    algorithm: str = "blelloch",
    values=None,
    op: _ops.Operator | None = None,
    *,
    n_chunks: int | None = None,
):
    """Step through a parallel scan level by level: a slider and a play button over frames.

    Args:
        n: number of elements (default 8; taken from ``values`` when given), at most 32.
        algorithm: ``"hillis_steele"``, ``"blelloch"`` or ``"chunked"``.
        values: the 1-D input; default a fixed array of small random integers.
        op: ``ops.add`` (default) or ``ops.maximum``: one number per cell.
        n_chunks: the chunk count for ``"chunked"``.

    Every frame (the input, then the state after each level) is drawn here as an SVG inside
    an ``ipywidgets.HTML``, and the frames sit in an ``ipywidgets.Stack`` whose
    ``selected_index`` is linked to the slider in the browser (``jslink``). So the explorer
    also works on the static book, with no Python kernel behind it. Returns a ``VBox``.

    Defined in chapter 2.
    """
    import ipywidgets as widgets

    op = _ops.add if op is None else op
    if not isinstance(op, _ops.Operator) or op.name not in ("add", "maximum"):
        raise TypeError(f"op must be ops.add or ops.maximum (one number per cell); got {op!r}")
    if values is None:
        n = 8 if n is None else n
        if not isinstance(n, int | np.integer) or not 1 <= n <= EXPLORER_MAX_N:
            raise ValueError(f"n must be an integer from 1 to {EXPLORER_MAX_N}; got {n!r}")
        values = np.random.default_rng(2).integers(1, 10, size=n)
    else:
        values = np.asarray(values)
        if values.ndim != 1 or not 1 <= len(values) <= EXPLORER_MAX_N:
            raise ValueError(
                f"values must be a 1-D array of 1 to {EXPLORER_MAX_N} numbers; "
                f"got shape {values.shape}"
            )
        if n is not None and n != len(values):
            raise ValueError(f"n must equal len(values) = {len(values)}; got {n}")
    kwargs = {"n_chunks": n_chunks} if algorithm == "chunked" and n_chunks is not None else {}
    trace = trace_of(algorithm, values, op, **kwargs)
    all_frames = frames(trace)
    pages = [
        widgets.HTML(frame_svg(trace, k, all_frames=all_frames, n_chunks=n_chunks))
        for k in range(len(all_frames))
    ]
    last = len(pages) - 1
    stack = widgets.Stack(pages, selected_index=0)
    slider = widgets.IntSlider(value=0, min=0, max=last, description="step", continuous_update=True)
    play = widgets.Play(value=0, min=0, max=last, step=1, interval=1200, description="play")
    widgets.jslink((play, "value"), (slider, "value"))
    widgets.jslink((slider, "value"), (stack, "selected_index"))
    return widgets.VBox([widgets.HBox([play, slider]), stack])


# -- work and depth, measured ----------------------------------------------------------------


@dataclass
class Count:
    """What a :func:`counting` operator has done: ``calls`` to combine, ``elements`` combined.

    Defined in chapter 2.
    """

    calls: int = 0
    elements: int = 0


def counting(op: _ops.Operator) -> tuple[_ops.Operator, Count]:
    """``op`` with a counter: every ``combine`` call adds the number of pairs it combined.

    One call combines many pairs at once (a whole parallel level), so ``elements`` is the
    work and, for the serial loop where every call waits for the one before, ``calls`` is
    the depth. Defined in chapter 2.
    """
    count = Count()

    def combine(x, y):
        count.calls += 1
        count.elements += _ops.length(x)
        return op.combine(x, y)

    return _ops.Operator(op.name, combine, op.identity, op.symbol), count


def _example(op: _ops.Operator, n: int, rng: np.random.Generator):
    if op.name == "affine":
        return (rng.uniform(0.5, 1.0, n), rng.standard_normal(n))
    if op.name == "matrix_affine":
        return (0.5 * rng.standard_normal((n, 2, 2)), rng.standard_normal((n, 2)))
    return rng.standard_normal(n)


DEFAULT_NS = tuple(2**k for k in range(1, 11))


def work_depth(
    algorithms=("serial", "hillis_steele", "blelloch", "chunked"),
    ns=DEFAULT_NS,
    op: _ops.Operator = _ops.add,
) -> dict[str, dict[str, list[int]]]:
    """Measure work and depth of each algorithm for each ``n``.

    The parallel algorithms report them in their :class:`~scanbook.algorithms.Trace`; the
    serial loop has no trace, so it runs with a :func:`counting` operator. Every run is also
    counted, so ``counted`` (elements through ``op.combine``) can be checked against the
    trace's ``work``.

    Returns ``{algorithm: {"n": [...], "work": [...], "depth": [...], "counted": [...]}}``.
    Defined in chapter 2.
    """
    rng = np.random.default_rng(0)
    out: dict[str, dict[str, list[int]]] = {}
    for name in algorithms:
        if name not in _alg.ALGORITHMS:
            raise ValueError(f"algorithms must be among {sorted(_alg.ALGORITHMS)}; got {name!r}")
        rows: dict[str, list[int]] = {"n": [], "work": [], "depth": [], "counted": []}
        for n in ns:
            xs = _example(op, int(n), rng)
            counted_op, count = counting(op)
            if name == "serial":
                _serial.scan(counted_op, xs)
                work, depth = count.elements, count.calls
            else:
                trace = _alg.Trace()
                _alg.scan(counted_op, xs, algorithm=name, trace=trace)
                work, depth = trace.work, trace.depth
            rows["n"].append(int(n))
            rows["work"].append(work)
            rows["depth"].append(depth)
            rows["counted"].append(count.elements)
        out[name] = rows
    return out


MARKERS = {"serial": "o", "hillis_steele": "s", "blelloch": "^", "chunked": "D"}


def plot_work_depth(results: dict, *, ax_work=None, ax_depth=None):
    """Plot :func:`work_depth` results on log-log axes, with the textbook curves.

    Work is drawn against ``2n`` and ``n log2 n``, depth against ``2 log2 n`` and ``n``.
    Returns ``(ax_work, ax_depth)``. Defined in chapter 2.
    """
    import matplotlib.pyplot as plt

    if ax_work is None or ax_depth is None:
        _, (ax_work, ax_depth) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    ns = np.array(sorted({n for r in results.values() for n in r["n"] if n > 1}), dtype=float)
    for k, (name, r) in enumerate(results.items()):
        n = np.asarray(r["n"], dtype=float)
        keep = n > 1
        style = dict(marker=MARKERS.get(name, "o"), color=f"C{k}", label=NAMES.get(name, name))
        if name == "chunked":  # its work lies on Blelloch's: draw it hollow and dashed
            style.update(markerfacecolor="none", ls="--", markersize=8)
        ax_work.plot(n[keep], np.asarray(r["work"])[keep], **style)
        ax_depth.plot(n[keep], np.asarray(r["depth"])[keep], **style)
    if len(ns):
        lg = np.log2(ns)
        ref = dict(color="0.3", lw=1)
        ax_work.plot(ns, 2 * ns, ls="--", label="2n", **ref)
        ax_work.plot(ns, ns * lg, ls=":", label="n log₂ n", **ref)
        ax_depth.plot(ns, 2 * lg, ls="--", label="2 log₂ n", **ref)
        ax_depth.plot(ns, ns, ls=":", label="n", **ref)
    for ax, what in ((ax_work, "work (operator applications)"), (ax_depth, "depth (levels)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xlabel("n")
        ax.set_ylabel(what)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
    ax_work.set_title("Work")
    ax_depth.set_title("Depth")
    return ax_work, ax_depth


# -- GPU benchmark results: the figures of chapters 3, 4 and 5 -------------------------------
#
# The records come from JSON files written on a GPU (``python -m scanbook.bench gpu`` and
# ``python -m scanbook.bench grad --json``), possibly years and machines away from the one
# building the book, so nothing here trusts them: a key may be missing, a kernel may have
# failed (``error``) or been skipped (``skipped``), and one folder may hold several GPUs and
# several runs. Every function draws what it can and returns ``None`` when that is nothing.

_SWEEPS = ("table1_", "crossover_")  # the GPU benchmark's sweeps; the rest is bandwidth
_OTHER_COLORS = ("C0", "C1", "C2", "C4", "C5", "C6", "C8", "C9", "C7")  # C3 (red) is reserved


def _is_num(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _int_or_none(x) -> int | None:
    return int(x) if _is_num(x) else None


def _shape(r: dict) -> tuple:
    """(T, channels, dtype) of a record, with sortable stand-ins for missing values."""
    T, C = _int_or_none(r.get("T")), _int_or_none(r.get("channels"))
    return (-1 if T is None else T, -1 if C is None else C, str(r.get("dtype") or "?"))


def _shape_text(shape: tuple, sep: str = ", ", dtype: bool = True) -> str:
    T, C, dt = shape
    text = f"T={'?' if T < 0 else f'{T:,}'}{sep}C={'?' if C < 0 else f'{C:,}'}"
    return f"{text}{sep}{dt}" if dtype else text


def _kernel(r: dict) -> str:
    """A record's kernel name, fit for a legend (matplotlib hides labels starting with "_")."""
    return str(r.get("kernel") or "").lstrip("_") or "?"


def _gbps(r: dict) -> float | None:
    """A record's measured GB/s, or ``None`` (failed, missing, not a plausible number)."""
    x = r.get("gbps")
    return float(x) if _is_num(x) and 0 < x < 1e9 else None


def _pct(x: float) -> str:
    return f"{x:.0f}%" if abs(x) < 1e5 else f"{x:.2g}%"


def _gpu_of(r: dict) -> str:
    return str(r.get("gpu") or "unknown GPU")


def _day(date) -> str:
    return str(date)[:10] if date else "undated"


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
        name = _gpu_of(r)
        newest[name] = max(newest.get(name, ""), str(r.get("date") or ""))
    if gpu is None:
        gpu = max(newest, key=lambda name: (newest[name], name))
    elif gpu not in newest:
        raise ValueError(f"gpu must be one of the recorded GPUs {sorted(newest)}; got {gpu!r}")
    return gpu, [
        r for r in records if _gpu_of(r) == gpu and str(r.get("date") or "") == newest[gpu]
    ]


def _provenance(records: list[dict], gpu: str, mine: list[dict]) -> str:
    """``"NVIDIA H200, 2026-01-05"`` and what was left out: other GPUs, older runs."""
    gpus = {_gpu_of(r) for r in records if isinstance(r, dict)}
    runs = {str(r.get("date") or "") for r in records if isinstance(r, dict) and _gpu_of(r) == gpu}
    text = f"{gpu}, {_day(mine[0].get('date') if mine else None)}"
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
    for name in sorted({_gpu_of(r) for r in records}):
        _, mine = select_gpu(records, name)
        measured = sum(_gbps(r) is not None for r in mine)
        failed = [r for r in mine if "error" in r]
        line = f"  {name}, {_day(mine[0].get('date'))}: {measured} measurements"
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
    for r in sorted(rows, key=lambda r: (str(r.get("kernel")), _shape(r)[2], _shape(r))):
        head = f"  {r.get('kernel')} {_shape_text(_shape(r))}: "
        if _gbps(r) is not None:
            pct = r.get("pct_of_copy")
            line = head + f"{_gbps(r):,.0f} GB/s"
            line += f" = {_pct(pct)} of copy" if _is_num(pct) else " (no copy measured)"
            if r.get("timing"):
                line += f" [{r['timing']}]"
        else:
            line = head + f"not measured: {r.get('error') or r.get('skipped') or 'no GB/s'}"
        lines.append(line)
    return "\n".join(lines)


def _new_axes(ax, figsize):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


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
    rows = [r for r in _bandwidth_records(mine) if _gbps(r) is not None]
    if not rows:
        return None
    targets = sorted({_shape(r) for r in rows}, key=lambda s: (s[2], -s[1], s[0]))
    x_of = {s: i for i, s in enumerate(targets)}
    kernels = sorted({_kernel(r) for r in rows}, key=lambda k: (k != "copy", k))
    ax = _new_axes(ax, (8, 4.4))
    others = itertools.cycle(_OTHER_COLORS)
    for kernel in kernels:
        pts = sorted((x_of[_shape(r)], _gbps(r)) for r in rows if _kernel(r) == kernel)
        if kernel == "copy":
            style = dict(color="k", ls="--", lw=1.5, label="copy (the ceiling)")
        elif highlight and highlight in kernel:
            style = dict(color="C3", lw=2.5, zorder=3, label=kernel)
        else:
            style = dict(color=next(others), lw=1, alpha=0.75, label=kernel)
        ax.plot(*zip(*pts, strict=True), marker="o", ms=4, **style)
    ax.set_xticks(range(len(targets)), [_shape_text(s, "\n") for s in targets], fontsize=8)
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
        and _gbps(r) is not None
        and (_int_or_none(r.get("channels")) or 0) > 0
    ]
    if not rows:
        return None
    ax = _new_axes(ax, (7.0, 4.0))
    methods = sorted({str(r["kernel"]).removeprefix("crossover_") for r in rows})
    for j, method in enumerate(methods):
        pts = sorted(
            (int(r["channels"]), _gbps(r))
            for r in rows
            if str(r["kernel"]).removeprefix("crossover_") == method
        )
        color = "k" if method == "serial" else _OTHER_COLORS[j % len(_OTHER_COLORS)]
        ax.plot(*zip(*pts, strict=True), marker="o", ms=4, color=color, label=method)
    if n_sm is None:
        n_sm = next((r["multiprocessors"] for r in rows if _is_num(r.get("multiprocessors"))), None)
    if _is_num(n_sm) and n_sm > 0:
        from .kernels.cupy_raw import serial_min_channels

        c_auto = serial_min_channels(int(n_sm))
        ax.axvline(c_auto, color="C3", ls="--", lw=1)
        ax.text(c_auto, ax.get_ylim()[1], '"auto": serial from here ', color="C3", fontsize=7,
                va="top", ha="right")  # fmt: skip
    elements = sorted({(_int_or_none(r.get("T")) or 0) * int(r["channels"]) for r in rows})
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
    targets = sorted(
        {_shape(r) for r in bandwidth if _gbps(r) is not None}, key=lambda s: (s[2], -s[1], s[0])
    )
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
        rows = [r for r in bandwidth if _shape(r) == target]
        rows.sort(key=lambda r: r.get("kernel") != "copy")  # stable: the bench's order after
        labels = []
        for y, r in enumerate(rows):
            kernel = _kernel(r)
            labels.append(f"{kernel} ({r['chose']})" if r.get("chose") else kernel)
            gbps = _gbps(r)
            if gbps is None:
                why = " failed" if r.get("error") else " not measured"
                ax.text(0, y, why, va="center", fontsize=7, color="C3")
                continue
            ax.barh(y, gbps, color="k" if kernel == "copy" else "C0")
            pct = r.get("pct_of_copy")
            note = f" {_pct(pct)}" if _is_num(pct) else f" {gbps:,.0f} GB/s"
            ax.text(gbps, y, note, va="center", fontsize=7)
        ax.set_yticks(range(len(rows)), labels, fontsize=8)
        ax.set_ylim(len(rows) - 0.5, -0.5)  # the first row on top
        ax.set_xlim(0, 1.2 * max(_gbps(r) or 0.0 for r in rows))
        ax.set_title(_shape_text(target), fontsize=9)
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
    from ._bench_gpu import PAPER_TABLE1

    gpu, mine = select_gpu(records, gpu)
    rows = [
        r
        for r in mine
        if str(r.get("kernel", "")).startswith("table1_")
        and _is_num(r.get("speedup_vs_serial"))
        and r["speedup_vs_serial"] > 0
        and _is_num(r.get("T"))
        and r["T"] > 0
    ]
    if not rows:
        return None
    ax = _new_axes(ax, (7.5, 4.4))
    channels = sorted({_int_or_none(r.get("channels")) or 0 for r in rows})
    kernels = sorted({str(r["kernel"]) for r in rows}, key=lambda k: (k != "table1_single_pass", k))
    styles = ("-", "--", ":", "-.")
    for j, C in enumerate(channels):
        color = f"C{j % 10}"
        for kernel, ls in zip(kernels, styles * len(kernels), strict=False):
            pts = sorted(
                (r["T"], r["speedup_vs_serial"])
                for r in rows
                if r["kernel"] == kernel and (_int_or_none(r.get("channels")) or 0) == C
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
        paper = sorted((T, s) for (T, c), s in PAPER_TABLE1.items() if c == C and _is_num(s))
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


def gradient_records(paths=None) -> list[dict]:
    """The GPU records of the gradient benchmark (``python -m scanbook.bench grad --json``).

    ``paths``: result files to read; default every ``*.json`` in
    :func:`scanbook._bench_gpu.results_dir` (``benchmarks/results``, or the folder named by
    ``SCANBOOK_RESULTS_DIR``). Keeps the records whose ``kernel`` ends in ``"_grad"``, that
    were not skipped, have a backward/forward ``ratio`` (computed from ``backward_s`` and
    ``forward_s`` where missing) and ran on a device other than the CPU. Each gets the
    ``file`` and ``date`` it came from; of records with the same device, kernel and shape only
    the newest is kept. Files of other benchmarks and unreadable files are ignored.
    Defined in chapter 5.
    """
    import json
    from pathlib import Path

    from ._bench_gpu import results_dir

    files = [Path(p) for p in paths] if paths is not None else sorted(results_dir().glob("*.json"))
    newest: dict[tuple, dict] = {}
    for f in files:
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or data.get("benchmark", "grad") != "grad":
            continue
        records = data.get("records")
        for r in records if isinstance(records, list) else []:
            if not isinstance(r, dict) or "skipped" in r:
                continue
            if not str(r.get("kernel", "")).endswith("_grad"):
                continue
            ratio = r.get("ratio")
            fwd, bwd = r.get("forward_s"), r.get("backward_s")
            if not _is_num(ratio) and _is_num(fwd) and _is_num(bwd) and fwd > 0:
                ratio = bwd / fwd
            device = r.get("device") or data.get("device")
            if not _is_num(ratio) or not isinstance(device, str) or device.startswith("CPU"):
                continue
            rec = {**r, "ratio": ratio, "device": device, "file": f.name, "date": data.get("date")}
            key = (device, rec["kernel"], *_shape(rec))
            if key not in newest or str(rec["date"] or "") > str(newest[key]["date"] or ""):
                newest[key] = rec
    return sorted(newest.values(), key=lambda r: (r["device"], _shape(r), r["kernel"]))


def plot_gradient_ratios(records: list[dict], *, ax=None):
    """Backward over forward time of each gradient record, as bars, against the targets.

    ``records``: :func:`gradient_records`'s. One bar per record, coloured by device and
    labelled with the backend and shape; a dashed line at 2 (the target: backward at most
    twice the forward pass) and a dotted one at 5/3 (what a fused backward kernel's bytes
    allow). The title names the devices and dates. Returns the matplotlib ``Figure``, or
    ``None`` when no record has a ratio. Defined in chapter 5.
    """
    from matplotlib.patches import Patch

    rows = [
        r
        for r in records
        if isinstance(r, dict) and _is_num(r.get("ratio")) and abs(r["ratio"]) < 1e6
    ]
    if not rows:
        return None
    devices = sorted({str(r.get("device") or "?") for r in rows})
    color = {d: _OTHER_COLORS[k % len(_OTHER_COLORS)] for k, d in enumerate(devices)}
    ax = _new_axes(ax, (max(6.0, 0.9 * len(rows) + 2), 3.8))
    several_dtypes = len({_shape(r)[2] for r in rows}) > 1
    labels = []
    for x, r in enumerate(rows):
        ax.bar(x, r["ratio"], color=color[str(r.get("device") or "?")])
        ax.text(x, r["ratio"], f"{r['ratio']:.2f}", ha="center", va="bottom", fontsize=7)
        name = r.get("backend") or str(r.get("kernel", "?")).removesuffix("_grad")
        labels.append(f"{name}\n{_shape_text(_shape(r), dtype=several_dtypes)}")
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    ax.axhline(2.0, color="C3", ls="--", lw=1, label="target: backward ≤ 2 × forward")
    ax.axhline(5 / 3, color="0.4", ls=":", lw=1, label="fused kernel's bytes: 5/3")
    ax.set_ylabel("backward / forward time")
    # JAX's backward time is a difference of two medians: noise can make it negative
    ratios = [r["ratio"] for r in rows]
    ax.set_ylim(1.15 * min(0.0, *ratios), 1.15 * max(2.2, *ratios))
    handles = ax.get_legend_handles_labels()[0]
    if len(devices) > 1:
        handles += [Patch(color=color[d], label=d) for d in devices]
    ax.legend(handles=handles, fontsize=7)
    dates = sorted({_day(r.get("date")) for r in rows})
    ax.set_title(f"Gradient kernels on {', '.join(devices)} ({', '.join(dates)})", fontsize=9)
    return ax.figure

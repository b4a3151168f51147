"""The scan-tree explorer: a slider and a play button that step through a scan's levels.

Defined in chapter 2.

Each frame (the input, then the state after each level of a
:class:`scanbook.algorithms.Trace`) is a small SVG drawn here as a string, not a matplotlib
figure, and the frames sit in an ``ipywidgets.Stack`` linked to the slider in the browser: so
the explorer keeps working on a static web page with no Python kernel behind it.
"""

from __future__ import annotations

import html
import math

import numpy as np

from .. import algorithms as _alg
from .. import ops as _ops
from .common import NAMES, PHASE_COLORS, fmt_number
from .trees import Frame, bounds, frames, trace_of

__all__ = ["EXPLORER_MAX_N", "PHASE_NOTES", "frame_svg", "scan_explorer"]

PHASE_NOTES = {
    "input": "the input; grey cells are identity padding",
    "sweep": "every position i ≥ d combines in position i − d, all at once",
    "up-sweep": "each right child absorbs its left sibling: a tree of partial sums",
    "clear-root": "the root is replaced by the identity: no operator application",
    "down-sweep": "left ← parent's prefix; right ← prefix ⊕ left total (a swap)",
    "reduce": "each chunk folds its next element into a running total (a scratch copy)",
    "carry": "the chunk totals are scanned one after another: each chunk's carry-in",
    "scan": "each chunk is rescanned from the input, from its carry-in (kept apart)",
    "shift": "shift by one to turn an inclusive scan into an exclusive one",
}

EXPLORER_MAX_N = 32
"""The most elements the explorer draws (the cells must stay readable)."""


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

    Defined in chapter 2.
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
        head = f"step 0 of {total_steps}: input (move the slider or press play)"
    else:
        many = "s at once" if f.level_work > 1 else "" if f.level_work == 1 else "s"
        head = (
            f"step {f.step} of {total_steps}: {f.phase}, {f.level_work} operator application{many}"
        )
    out.append(_text(8, y, head, 12.5, color=color, weight="bold"))
    y += 17
    note = PHASE_NOTES.get(f.phase, "")
    if f.step == 0 and total_steps > 0:
        note += f"; dashed below: what level 1 ({all_frames[1].phase}) will combine"
    out.append(_text(8, y, note, 11.5, color="#444"))

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
        text = f"{key} so far {so_far} / bound {label} = {fmt_number(bound)}"
        out.append(_text(x0, y + 25, text, 11))
    y += 42

    # the array before and after this level
    def cells(row_y, values, highlight, label, hue=color, unknown=frozenset()):
        out.append(_text(left - 8, row_y + cell * 0.45 + 4, label, 11, "end", "#555"))
        for i in range(cols):
            pad = i >= n
            fill = "#e6e6e6" if pad else "#ffffff"
            if i in highlight:
                fill = hue
            opacity = ' fill-opacity="0.28"' if i in highlight else ""
            dash = ' stroke-dasharray="3 2"' if i in unknown else ""
            x = left + i * cell
            out.append(
                f'<rect x="{x + 1}" y="{row_y}" width="{cell - 2}" height="{cell * 0.9:.1f}" '
                f'fill="{fill}"{opacity} stroke="{"#aaa" if pad else "#555"}" '
                f'stroke-width="0.8"{dash}/>'
            )
            if values is not None or i in unknown:
                s = "?" if i in unknown else fmt_number(values[i])
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
    cx = lambda i: left + i * cell + cell / 2
    if f.step == 0:
        # no blank band: the input on top, and below it what the first level will do, faded
        # (its pairs as dashed arrows, the cells it will write as "?")
        cells(top, f.values, set(), "input")
        if total_steps == 0:
            hint = "one element: it is its own scan, no level runs"
            out.append(_text(left, top + cell * 0.9 + gap / 2, hint, 11.5, color="#777"))
            cells(bottom, f.values, set(), "output")
        else:
            nxt = all_frames[1]
            hue = PHASE_COLORS.get(nxt.phase, "#444")
            will = set(nxt.written) | {d for _, d in nxt.pairs}
            if nxt.kind == "swap":
                will |= {s for s, _ in nxt.pairs}
            cells(bottom, f.values, will, "level 1", hue=hue, unknown=will)
            y0, y1 = top + cell * 0.9, bottom
            for src, dst in nxt.pairs:
                line = _arrow(cx(src), y0, cx(dst), y1 - 1, hue, dashed=True, width=1.0)
                out.append(f'<g opacity="0.45">{line}</g>')
    else:
        srcs = {s for s, _ in f.pairs} | (set(f.written) if f.kind == "swap" else set())
        cells(top, f.before, srcs, "before")
        cells(bottom, f.values, set(f.written), "after")
        y0, y1 = top + cell * 0.9, bottom
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

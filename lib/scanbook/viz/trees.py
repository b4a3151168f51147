"""Scan trees: the levels a parallel scan executed, and the figure of all of them at once.

Defined in chapter 2.

Everything here reads a :class:`scanbook.algorithms.Trace`: the levels an algorithm
executed, the pairs of positions each level combined, and (with ``record_values=True``) the
working array after every level. :func:`trace_of` records one, :func:`frames` turns it into
one :class:`Frame` per level (what :mod:`scanbook.viz.explorer` draws one at a time), and
:func:`draw_trace` draws the whole scan tree as one matplotlib figure. :func:`bounds` gives
the textbook work and depth to hold them against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import algorithms as _alg
from .. import ops as _ops
from .common import NAMES, PHASE_COLORS, fmt_number

__all__ = ["Frame", "bounds", "draw_trace", "frames", "trace_of"]


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
    widest = max((len(fmt_number(v)) for s in printable for v in s), default=1)
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
                    fmt_number(states[r][i]),
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

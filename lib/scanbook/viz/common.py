"""What every figure module of :mod:`scanbook.viz` shares: colours, names, axes, saving, and
reading the result files the benchmarks write.

A figure module imports from here (``from .common import new_axes, OTHER_COLORS``) and from
no other figure module it does not draw on. Nothing here imports matplotlib at import time.

Result records come from JSON files written on some GPU (``python -m scanbook.bench gpu`` and
``python -m scanbook.bench grad --json``), possibly years and machines away from the one
building the book, so the record helpers trust nothing: a key may be missing or not a number,
a kernel may have failed (``error``) or been skipped (``skipped``). Each returns a usable
stand-in instead of raising.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

__all__ = [
    "HIGHLIGHT",
    "NAMES",
    "OTHER_COLORS",
    "PHASE_COLORS",
    "day_of",
    "fmt_number",
    "gpu_of",
    "int_or_none",
    "is_num",
    "kernel_label",
    "new_axes",
    "pct_text",
    "read_results",
    "record_gbps",
    "record_shape",
    "results_dir",
    "savefig",
    "shape_text",
]

# -- colours and names -----------------------------------------------------------------------

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

HIGHLIGHT = "C3"
"""Red: the kernel or model a figure is about. No other line of a results figure uses it."""

OTHER_COLORS = ("C0", "C1", "C2", "C4", "C5", "C6", "C8", "C9", "C7")
"""The colour cycle of everything else in a results figure: matplotlib's, without red."""

NAMES = {
    "serial": "Serial",
    "hillis_steele": "Hillis–Steele",
    "blelloch": "Blelloch",
    "chunked": "Chunked (three-phase)",
}
"""How the figures name the scan algorithms."""


def fmt_number(v) -> str:
    """A number short enough for a cell of a figure: ``3``, ``0.25``, ``1.23e+04``, ``−∞``.

    Defined in chapter 2.
    """
    v = float(v)
    if math.isinf(v):
        return "−∞" if v < 0 else "∞"
    if v == round(v) and abs(v) < 1e6:
        return str(int(round(v)))
    return f"{v:.2f}" if abs(v) < 100 else f"{v:.3g}"


# -- axes and files --------------------------------------------------------------------------


def new_axes(ax=None, figsize=(7.0, 4.0)):
    """``ax`` itself, or the axes of a new constrained-layout figure of ``figsize`` inches.

    Defined in chapter 3.
    """
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def savefig(fig, path, *, dpi: int = 150) -> Path:
    """Write ``fig`` (a ``Figure``, or an ``Axes`` of one) to ``path`` (any format matplotlib
    knows from the suffix), creating the folder; returns the path. Defined in chapter 3.
    """
    fig = getattr(fig, "figure", fig)
    if not hasattr(fig, "savefig"):
        raise TypeError(f"fig must be a matplotlib Figure or Axes; got {type(fig).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


# -- result files ----------------------------------------------------------------------------


def results_dir() -> Path:
    """The folder the benchmarks write their JSON results to: ``benchmarks/results``, or the
    folder named by ``SCANBOOK_RESULTS_DIR``. Defined in chapter 3.
    """
    from .._bench_gpu import results_dir as bench_results_dir

    return bench_results_dir()


def read_results(benchmark: str, paths=None, *, default: str | None = None):
    """``[(file, contents), ...]`` of every readable JSON result file of ``benchmark``.

    ``paths``: the files to read; default every ``*.json`` in :func:`results_dir`, in name
    order. A file counts when it holds a JSON object whose ``"benchmark"`` is ``benchmark``
    (``default``: what a file without that key counts as). Missing, unreadable and other
    benchmarks' files are skipped, so a figure of no results is a figure of nothing.
    Defined in chapter 3.
    """
    files = [Path(p) for p in paths] if paths is not None else sorted(results_dir().glob("*.json"))
    out = []
    for f in files:
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("benchmark", default) == benchmark:
            out.append((f, data))
    return out


# -- one record's fields, checked ------------------------------------------------------------


def is_num(x) -> bool:
    """Whether ``x`` is a finite int or float (not a bool, not a string). Defined in chapter 3."""
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def int_or_none(x) -> int | None:
    """``int(x)`` for a finite number, else ``None``. Defined in chapter 3."""
    return int(x) if is_num(x) else None


def record_shape(r: dict) -> tuple:
    """``(T, channels, dtype)`` of a record, with sortable stand-ins (-1, ``"?"``) for missing
    values. Defined in chapter 3.
    """
    T, C = int_or_none(r.get("T")), int_or_none(r.get("channels"))
    return (-1 if T is None else T, -1 if C is None else C, str(r.get("dtype") or "?"))


def shape_text(shape: tuple, sep: str = ", ", dtype: bool = True) -> str:
    """``"T=4,096, C=64, float32"`` for a :func:`record_shape`. Defined in chapter 3."""
    T, C, dt = shape
    text = f"T={'?' if T < 0 else f'{T:,}'}{sep}C={'?' if C < 0 else f'{C:,}'}"
    return f"{text}{sep}{dt}" if dtype else text


def kernel_label(r: dict) -> str:
    """A record's kernel name, fit for a legend (matplotlib hides labels starting with "_").

    Defined in chapter 3.
    """
    return str(r.get("kernel") or "").lstrip("_") or "?"


def record_gbps(r: dict) -> float | None:
    """A record's measured GB/s, or ``None`` (failed, missing, not a plausible number).

    Defined in chapter 3.
    """
    x = r.get("gbps")
    return float(x) if is_num(x) and 0 < x < 1e9 else None


def pct_text(x: float) -> str:
    """``"87%"``; huge values in short form. Defined in chapter 3."""
    return f"{x:.0f}%" if abs(x) < 1e5 else f"{x:.2g}%"


def gpu_of(r: dict) -> str:
    """The GPU a record was measured on, or ``"unknown GPU"``. Defined in chapter 3."""
    return str(r.get("gpu") or "unknown GPU")


def day_of(date) -> str:
    """The day of an ISO date (``"2026-01-05"``), or ``"undated"``. Defined in chapter 3."""
    return str(date)[:10] if date else "undated"

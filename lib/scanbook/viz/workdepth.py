"""Work and depth, measured: by the traces of the parallel scans, and by counting operator
applications, against the textbook bounds ``2n``, ``n log2 n``, ``2 log2 n`` and ``n``.

Defined in chapter 2.

:func:`counting` wraps an operator so that it counts how many elements it combines: an
independent check of the work each trace reports, and the only measure of the serial loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import algorithms as _alg
from .. import ops as _ops
from .. import serial as _serial
from .common import NAMES

__all__ = ["DEFAULT_NS", "MARKERS", "Count", "counting", "plot_work_depth", "work_depth"]


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

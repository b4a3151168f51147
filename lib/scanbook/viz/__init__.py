"""The book's figures, one module per kind of figure.

* :mod:`~scanbook.viz.trees`: a parallel scan's levels (:func:`trace_of`, :func:`frames`) and
  the whole scan tree as one figure (:func:`draw_trace`); chapter 2.
* :mod:`~scanbook.viz.explorer`: the scan-tree explorer, a slider over one SVG per level that
  also works on a static page (:func:`scan_explorer`); chapter 2.
* :mod:`~scanbook.viz.workdepth`: work and depth measured (:func:`work_depth`,
  :func:`counting`) and plotted against the textbook bounds; chapter 2.
* :mod:`~scanbook.viz.gpu`: the GPU benchmark's results in ``benchmarks/results``: bandwidth,
  targets, Table 1, the serial/parallel crossover; chapters 3 and 4.
* :mod:`~scanbook.viz.gradients`: the gradient benchmark's backward/forward ratios; chapter 5.
* :mod:`~scanbook.viz.common`: what they share: colours, names, axes, saving, result files.

The names chapters 2-5 use are also here, flat: ``sb.viz.draw_trace``, ``sb.viz.plot_table1``.

Adding a chapter's figures (the contract)
-----------------------------------------
A chapter's new figures go in a new module of this package, ``viz/<topic>.py``, and nothing
else changes: ``sb.viz.<topic>`` imports it on first use (this module's ``__getattr__``), so a
notebook calls ``sb.viz.models.plot_throughput(...)`` with no import of its own and no line
added here. New modules are not re-exported flat. A figure module

* imports shared things from :mod:`.common` and, only when it draws on one, a sibling
  (``explorer`` draws ``trees``' frames); never in a circle;
* imports matplotlib inside its functions, not at import time;
* takes ``ax=None`` where it draws one panel, returns the ``Figure`` (or the ``Axes`` where
  its docstring says so) or ``None`` when there is nothing to draw, and reads result files
  through :func:`common.read_results`, trusting none of their fields;
* names its chapter in every public docstring ("Defined in chapter N") and stays under about
  600 lines. ``tests/test_viz.py`` checks these rules for every module in this folder.
"""

import importlib as _importlib
import pkgutil as _pkgutil

from .common import NAMES, PHASE_COLORS
from .explorer import EXPLORER_MAX_N, PHASE_NOTES, frame_svg, scan_explorer
from .gpu import (
    describe_gpu_bandwidth,
    describe_gpu_results,
    plot_crossover,
    plot_gpu_bandwidth,
    plot_gpu_targets,
    plot_table1,
    select_gpu,
)
from .gradients import gradient_records, plot_gradient_ratios
from .trees import Frame, bounds, draw_trace, frames, trace_of
from .workdepth import DEFAULT_NS, MARKERS, Count, counting, plot_work_depth, work_depth
from .workdepth import _example as _example  # the tests draw their inputs with it

__all__ = [
    "DEFAULT_NS",
    "EXPLORER_MAX_N",
    "MARKERS",
    "NAMES",
    "PHASE_COLORS",
    "PHASE_NOTES",
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


def submodules() -> list[str]:
    """The figure modules of this package, written or added later (``"models"``, ...).

    Defined in chapter 2.
    """
    return sorted(m.name for m in _pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def __getattr__(name: str):
    # `sb.viz.models.plot_x(...)` works without `import scanbook.viz.models`
    if name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        return _importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":
            raise  # the module exists but needs something missing: say what
        raise AttributeError(
            f"module {__name__!r} has no attribute {name!r}: no figure module "
            f"viz/{name}.py (the modules are {', '.join(submodules())})"
        ) from None


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(submodules()))

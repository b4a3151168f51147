"""Scan kernels in Numba CUDA: block scans, a scan of any length, the linear recurrence.

Defined in chapter 3.

Three modules, re-exported here so that every name is ``scanbook.kernels.numba_cuda.<name>``:

* :mod:`.scans`: the sum scans of GPU Gems 3, chapter 39, one step at a time: the naive
  block scan (Hillis & Steele), Blelloch's work-efficient block scan, the same padded against
  shared-memory bank conflicts (:func:`bank_conflicts` counts them), and :func:`scan` for
  arrays of any length (scan the tiles, scan their totals, add them back).
* :mod:`.recurrence`: ``h[t] = a[t] h[t-1] + b[t]`` as a three-phase scan of ``(a, b)``
  pairs (Martin & Cundy 2018, Algorithm 1), with shared memory or with warp shuffles: the
  ``numba_cuda`` backend of :func:`scanbook.linear_recurrence`.
* :mod:`.registry`: every kernel by name (:data:`KERNELS`), compiled once by :func:`kernel`,
  shown as PTX by :func:`ptx`.

Without a GPU, :mod:`scanbook` has switched Numba's CUDA simulator on before this package
imports numba, so the same kernels run (slowly) on the CPU.
"""

from __future__ import annotations

# The modules register their kernels as they are imported: this order (the chapter's) is the
# order of KERNELS.
# isort: off
from . import registry, scans, recurrence

# isort: on
from .recurrence import (
    RecurrencePlan,
    linear_recurrence,
    linear_recurrence_shfl,
    make_recurrence_kernel,
    make_recurrence_shfl_kernel,
    plan,
    tile_group,
    tile_row,
)
from .registry import (
    FULL_MASK,
    KERNELS,
    MAX_BLOCK_THREADS,
    WARP,
    compile_ptx_all,
    kernel,
    ptx,
    register,
    resources,
)
from .scans import (
    LOG_NUM_BANKS,
    NUM_BANKS,
    BankLevel,
    bank_conflicts,
    blelloch_block_scan,
    conflict_degree,
    hillis_steele_block_scan,
    make_add_block_sums_kernel,
    make_blelloch_kernel,
    make_blelloch_padded_kernel,
    make_hillis_steele_kernel,
    scan,
    scan_levels,
)

# private helpers that chapter 3 shows (inspect.getsource) and the tests call
_check_recurrence_inputs = recurrence._check_recurrence_inputs
_recurrence_device = recurrence._recurrence_device
_run_recurrence = recurrence._run_recurrence
_check_sizes = registry._check_sizes
_ptx_here = registry._ptx_here
_scan_device = scans._scan_device

__all__ = [
    "FULL_MASK",
    "LOG_NUM_BANKS",
    "MAX_BLOCK_THREADS",
    "WARP",
    "NUM_BANKS",
    "BankLevel",
    "KERNELS",
    "RecurrencePlan",
    "bank_conflicts",
    "compile_ptx_all",
    "conflict_degree",
    "blelloch_block_scan",
    "hillis_steele_block_scan",
    "kernel",
    "linear_recurrence",
    "linear_recurrence_shfl",
    "make_add_block_sums_kernel",
    "make_blelloch_kernel",
    "make_blelloch_padded_kernel",
    "make_hillis_steele_kernel",
    "make_recurrence_kernel",
    "make_recurrence_shfl_kernel",
    "plan",
    "ptx",
    "recurrence",
    "register",
    "registry",
    "resources",
    "scan",
    "scan_levels",
    "scans",
    "tile_group",
    "tile_row",
]

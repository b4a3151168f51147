"""The kernels of chapter 3 by name: compile once, check the launch sizes, show the PTX.

Defined in chapter 3.

Every kernel is built by a small ``make_*`` function that fixes the element type and the
shared-memory sizes (CUDA needs both at compile time) and returns the plain Python kernel.
:mod:`.scans` and :mod:`.recurrence` add theirs to :data:`KERNELS` with :func:`register`;
:func:`kernel` compiles one once with ``cuda.jit``, and :func:`ptx` shows the PTX it becomes.
The host helpers shared by both modules (device arrays, powers of two) are here as well.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterable
from functools import cache

import numpy as np
from numba import cuda, float32, float64

from ... import backends as _backends

__all__ = [
    "FULL_MASK",
    "KERNELS",
    "MAX_BLOCK_THREADS",
    "WARP",
    "compile_ptx_all",
    "kernel",
    "ptx",
    "register",
    "resources",
]

# The upper levels of the recursive scans launch small grids on purpose: not worth a warning.
warnings.filterwarnings("ignore", message=r"Grid size \d+ will likely result in GPU under-util")

WARP = 32
FULL_MASK = 0xFFFFFFFF
MAX_BLOCK_THREADS = 1024  # the CUDA limit on threads in a block

_NUMBA_TYPES = {np.dtype(np.float32): float32, np.dtype(np.float64): float64}


def _numba_type(dtype):
    dt = np.dtype(dtype)
    if dt not in _NUMBA_TYPES:
        raise TypeError(f"dtype must be float32 or float64; got {dt.name}")
    return _NUMBA_TYPES[dt]


KERNELS: dict[str, tuple[Callable, tuple[int, ...], Callable]] = {}
"""Every kernel of the chapter: ``name -> (make_*, default sizes, signature)``."""

# name -> (threads a block for the make_* sizes, how many leading sizes must be powers of two)
_LAUNCH: dict[str, tuple[Callable[..., int], int]] = {}


def register(name, make, sizes, signature, *, threads, pow2: bool | int = True) -> None:
    """Add kernel ``name`` to :data:`KERNELS`.

    ``make(dt, *sizes)`` returns the Python kernel for the Numba type ``dt``; ``sizes`` are
    its defaults; ``signature(dt)`` is the tuple of the kernel's argument types (for
    :func:`ptx`); ``threads(*sizes)`` is the number of threads a block launches with, checked
    against CUDA's limit, and ``pow2`` asks that every size be a power of two (True), none
    (False), or the first ``pow2`` sizes (an int).

    Defined in chapter 3.
    """
    KERNELS[name] = (make, tuple(sizes), signature)
    _LAUNCH[name] = (threads, len(sizes) if pow2 is True else int(pow2))


@cache
def _compiled(name: str, dtype_name: str, sizes: tuple):
    make = KERNELS[name][0]
    return cuda.jit(make(_numba_type(dtype_name), *sizes))


def kernel(name: str, dtype, *sizes: int):
    """The compiled kernel ``name`` (a key of :data:`KERNELS`) for ``dtype`` and sizes.

    Compiled once per ``(name, dtype, sizes)`` and cached; the sizes are those of the
    ``make_*`` function (default: :data:`KERNELS`' defaults).

    Defined in chapter 3.
    """
    if name not in KERNELS:
        raise ValueError(f"kernel name must be one of {sorted(KERNELS)}; got {name!r}")
    sizes = tuple(int(s) for s in sizes) or KERNELS[name][1]
    _check_sizes(name, sizes)
    return _compiled(name, np.dtype(dtype).name, sizes)


def _check_sizes(name: str, sizes: tuple) -> None:
    """Refuse, on every machine, sizes a real GPU rejects (the simulator would run them)."""
    threads_of, n_pow2 = _LAUNCH[name]
    pow2 = all(v >= 1 and v & (v - 1) == 0 for v in sizes[:n_pow2])
    threads = threads_of(*sizes)
    if not pow2 or min(sizes) < 1 or not 1 <= threads <= MAX_BLOCK_THREADS:
        rule = {0: "positive", len(sizes): "powers of two"}.get(
            n_pow2, f"positive, the first {n_pow2} powers of two"
        )
        raise ValueError(
            f"sizes of kernel {name!r} must be {rule}, giving 1 to {MAX_BLOCK_THREADS} "
            f"threads a block; got {sizes} ({threads} threads)"
        )


def _ptx_here(name: str, dtype_name: str, cc: tuple[int, int], sizes: tuple = ()) -> str:
    make, default, signature = KERNELS[name]
    sizes = tuple(sizes) or default
    dt = _numba_type(dtype_name)
    text, _ = cuda.compile_ptx(make(dt, *sizes), signature(dt), cc=cc)
    return text


_PTX_CACHE: dict[tuple, str] = {}


def ptx(kernel_name: str, dtype, cc: tuple[int, int] = (9, 0)) -> str:
    """The PTX assembly of kernel ``kernel_name`` for ``dtype`` (compute capability ``cc``).

    Compiling needs Numba's real CUDA target, not the simulator, but no GPU: in the simulator
    the kernel is compiled in a fresh Python process (a few seconds; cached afterwards, and
    :func:`compile_ptx_all` compiles many in one process). Count instructions in the text,
    e.g. ``ptx("linear_recurrence_shfl", "float32").count("shfl.sync")``.

    Defined in chapter 3.
    """
    return compile_ptx_all([kernel_name], [dtype], cc)[(kernel_name, np.dtype(dtype).name)]


def compile_ptx_all(
    names: Iterable[str] | None = None,
    dtypes: Iterable = ("float32", "float64"),
    cc: tuple[int, int] = (9, 0),
    sizes: tuple[int, ...] = (),
) -> dict[tuple[str, str], str]:
    """PTX of several kernels: ``{(name, dtype name): text}`` (one process in the simulator).

    ``sizes``: those of the ``make_*`` function, for every name (default: :data:`KERNELS`').

    Defined in chapter 3.
    """
    names = list(KERNELS) if names is None else list(names)
    sizes = tuple(int(v) for v in sizes)
    for name in names:
        if name not in KERNELS:
            raise ValueError(f"kernel_name must be one of {sorted(KERNELS)}; got {name!r}")
        if sizes:
            _check_sizes(name, sizes)
    dtype_names = []
    for dtype in dtypes:
        _numba_type(dtype)  # a TypeError for anything but float32 and float64
        dtype_names.append(np.dtype(dtype).name)
    cc = (int(cc[0]), int(cc[1]))
    keys = [(n, d) for n in names for d in dtype_names]
    missing = [k for k in keys if (*k, cc, sizes) not in _PTX_CACHE]
    if missing and _backends.cuda_simulator():
        _PTX_CACHE.update(_ptx_in_subprocess(missing, cc, sizes))
    for n, d in missing:
        if (n, d, cc, sizes) not in _PTX_CACHE:
            _PTX_CACHE[(n, d, cc, sizes)] = _ptx_here(n, d, cc, sizes)
    return {k: _PTX_CACHE[(*k, cc, sizes)] for k in keys}


def resources(ptx_text: str, arch: str = "sm_90") -> dict[str, int]:
    """What ``ptxas`` allots one PTX kernel on ``arch``: ``{"registers", "shared", "local"}``.

    Registers a thread, bytes of shared memory a block (on sm_90 the kernel's arrays and the
    1 KB every block reserves) and of local memory a thread, as NVIDIA's PTX assembler
    reports them when nvJitLink (the ``nvidia-nvjitlink`` wheel, through ``cuda.bindings``)
    turns the PTX into machine code: on the CPU, no GPU needed.
    Raises ``RuntimeError`` when nvJitLink is not installed.

    Defined in chapter 3.
    """
    try:
        from cuda.bindings import nvjitlink
    except ImportError as exc:
        raise RuntimeError("resources needs nvJitLink: pip install cuda-bindings") from exc
    handle = nvjitlink.create(2, [f"-arch={arch}", "-verbose"])
    try:
        data = ptx_text.encode()
        nvjitlink.add_data(handle, nvjitlink.InputType.PTX, data, len(data), "kernel.ptx")
        nvjitlink.complete(handle)
        log = bytearray(nvjitlink.get_info_log_size(handle))
        nvjitlink.get_info_log(handle, log)
    finally:
        nvjitlink.destroy(handle)
    m = re.search(r"used (\d+) registers.*?(\d+) bytes smem.*?(\d+) bytes lmem", log.decode())
    if m is None:
        raise RuntimeError(f"no resource usage in the assembler's log:\n{log.decode()}")
    return {"registers": int(m[1]), "shared": int(m[2]), "local": int(m[3])}


def _ptx_in_subprocess(keys, cc: tuple[int, int], sizes: tuple = ()) -> dict[tuple, str]:
    code = (
        "import json, sys\n"
        "from scanbook.kernels.numba_cuda import _ptx_here\n"  # the package registers every kernel
        f"keys, cc, sizes = {keys!r}, {cc!r}, {sizes!r}\n"
        "json.dump([[n, d, _ptx_here(n, d, cc, sizes)] for n, d in keys], sys.stdout)\n"
    )
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0", SCANBOOK_DEVICE="cpu")
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"compiling the kernels to PTX failed:\n{proc.stderr[-3000:]}")
    return {(n, d, cc, sizes): text for n, d, text in json.loads(proc.stdout)}


# --- host helpers shared by the scans and the recurrence -------------------------------------


def _is_device_array(x) -> bool:
    """True for a CUDA device array (the simulator's fake ones included)."""
    if hasattr(cuda, "is_cuda_array"):
        return cuda.is_cuda_array(x)
    return type(x).__name__ == "FakeCUDAArray"


def _device_view(x):
    return cuda.as_cuda_array(x) if hasattr(cuda, "as_cuda_array") else x


def _pow2_at_least(n: int, low: int = 1) -> int:
    return max(low, 1 << max(0, int(n) - 1).bit_length())

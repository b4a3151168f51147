"""Which backends exist on this machine, and how big the problems should be.

Defined in chapter 1 (the device banner) and used by every chapter.

Importing :mod:`scanbook` calls :func:`configure` first thing. It looks for a CUDA GPU
*without* importing numba or cupy (it asks the driver library directly through
``ctypes``), and when there is none it switches Numba's CUDA simulator on by setting
``NUMBA_ENABLE_CUDASIM=1``. The simulator can only be chosen before numba is first
imported, which is why this happens at import time and why notebooks import
``scanbook`` before anything that imports numba.

Set ``SCANBOOK_DEVICE=cpu`` to ignore a GPU that is present (the simulator is used),
or ``SCANBOOK_DEVICE=gpu`` to insist on one (an error if there is none).
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import sys
from dataclasses import dataclass
from functools import cache, lru_cache

__all__ = [
    "Profile",
    "available_backends",
    "banner",
    "configure",
    "cuda_simulator",
    "gpu_name",
    "has_gpu",
    "profile",
]

ALL_BACKENDS = ("numpy", "numba", "numba_cuda", "cupy", "jax")


@lru_cache(maxsize=1)
def _driver_gpus() -> tuple[str, ...]:
    """Names of the CUDA devices the driver reports, or () with no driver or no GPU."""
    for lib in ("libcuda.so.1", "libcuda.so", "nvcuda.dll", "libcuda.dylib"):
        try:
            cuda = ctypes.CDLL(lib)
            break
        except OSError:
            continue
    else:
        return ()
    try:
        if cuda.cuInit(0) != 0:
            return ()
        count = ctypes.c_int(0)
        if cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return ()
        names = []
        for i in range(count.value):
            dev = ctypes.c_int(0)
            buf = ctypes.create_string_buffer(256)
            if cuda.cuDeviceGet(ctypes.byref(dev), i) == 0 and (
                cuda.cuDeviceGetName(buf, 256, dev) == 0
            ):
                names.append(buf.value.decode(errors="replace"))
            else:
                names.append(f"CUDA device {i}")
        return tuple(names)
    except (AttributeError, OSError):  # a broken or partial driver install
        return ()


def has_gpu() -> bool:
    """True when a CUDA GPU is present and not switched off with ``SCANBOOK_DEVICE=cpu``.

    Defined in chapter 1.
    """
    if os.environ.get("SCANBOOK_DEVICE", "").lower() == "cpu":
        return False
    return bool(_driver_gpus())


def gpu_name() -> str | None:
    """The name of the first GPU (``"NVIDIA H200"``), or None without one. Defined in chapter 1."""
    return _driver_gpus()[0] if has_gpu() else None


def configure() -> None:
    """Switch the Numba CUDA simulator on when there is no GPU (before numba is imported).

    Safe to call many times. Respects an explicit ``NUMBA_ENABLE_CUDASIM`` chosen by the user.

    Defined in chapter 1.
    """
    want = os.environ.get("SCANBOOK_DEVICE", "").lower()
    if want not in ("", "auto", "cpu", "gpu"):
        raise ValueError(f"SCANBOOK_DEVICE must be 'cpu', 'gpu' or 'auto'; got {want!r}")
    if want == "gpu" and not _driver_gpus():
        raise RuntimeError("SCANBOOK_DEVICE=gpu, but no CUDA GPU was found by the driver")
    if "NUMBA_ENABLE_CUDASIM" in os.environ:
        return
    if not has_gpu() and "numba" not in sys.modules:
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"


def cuda_simulator() -> bool:
    """True when Numba CUDA kernels run in the simulator (on the CPU). Defined in chapter 1."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


@cache
def _installed(module: str) -> bool:  # asked on every linear_recurrence call: look once
    return importlib.util.find_spec(module) is not None


@lru_cache(maxsize=1)
def _numba_cuda_ok() -> bool:
    if not _installed("numba"):
        return False
    if not cuda_simulator() and not has_gpu():
        # numba was imported before scanbook could switch the simulator on
        return False
    try:
        from numba import cuda

        return bool(cuda.is_available())
    except Exception:  # noqa: BLE001 - any import failure means "not available"
        return False


def available_backends() -> list[str]:
    """The backends :func:`scanbook.linear_recurrence` can use here, in order of preference.

    ``numpy`` always; ``numba`` when numba is installed; ``numba_cuda`` on a GPU or in the
    CUDA simulator; ``cupy`` only with a GPU and cupy installed; ``jax`` when jax is installed.

    Defined in chapter 1.
    """
    out = ["numpy"]
    if _installed("numba"):
        out.append("numba")
    if _numba_cuda_ok():
        out.append("numba_cuda")
    if has_gpu() and _installed("cupy"):
        out.append("cupy")
    if _installed("jax"):
        out.append("jax")
    return out


@dataclass(frozen=True)
class Profile:
    """Problem sizes for the hardware at hand (small on a CPU, full on a GPU).

    Attributes:
        device: ``"gpu"``, or ``"cpu"`` (kernels then run in the CUDA simulator).
        name: a human-readable name of the device.
        T: a sequence length for demonstrations and timings on the host.
        channels: a channel count to go with ``T``.
        kernel_T: a sequence length for the CUDA kernels (small in the simulator).
        kernel_channels: channels for the CUDA kernels.
        bench_elements: the element count of the bandwidth benchmarks.
        repeat: how many timed repetitions a chapter makes.

    Defined in chapter 1.
    """

    device: str
    name: str
    T: int
    channels: int
    kernel_T: int
    kernel_channels: int
    bench_elements: int
    repeat: int


def profile() -> Profile:
    """The one setting that scales every chapter's problem sizes to the hardware present.

    Defined in chapter 1.
    """
    if has_gpu():
        return Profile(
            device="gpu",
            name=gpu_name() or "GPU",
            T=1 << 16,
            channels=64,
            kernel_T=1 << 20,
            kernel_channels=64,
            bench_elements=1 << 26,
            repeat=20,
        )
    return Profile(
        device="cpu",
        name="CPU (CUDA kernels in the Numba simulator)",
        T=1 << 12,
        channels=16,
        kernel_T=300,
        kernel_channels=3,
        bench_elements=1 << 22,
        repeat=5,
    )


def banner() -> Profile:
    """Print which device this chapter runs on and the problem sizes chosen for it.

    Every chapter's first code cell calls this (one shared banner, as in STYLE.md).

    Defined in chapter 1.
    """
    p = profile()
    print(f"device : {p.name}")
    if p.device == "cpu":
        print(
            "         no CUDA GPU found: Numba CUDA kernels run in the simulator, sizes are small"
        )
    print(f"backends available: {', '.join(available_backends())}")
    print(
        f"sizes  : T={p.T}, channels={p.channels}; "
        f"kernels T={p.kernel_T}, channels={p.kernel_channels}"
    )
    return p

"""CUDA C linear-recurrence kernels launched through CuPy's ``RawModule``, and their NumPy twins.

Defined in chapter 4 (CUDA C through CuPy RawKernel).

The CUDA C sources live next to this file in ``cuda/*.cu``:

* ``serial.cu``: one thread per channel walks the sequence (the serial baseline of Martin &
  Cundy's Table 1), and ``stream_add``, the same memory traffic with no recurrence (the ceiling);
* ``three_phase.cu``: Martin & Cundy's three-phase kernel (Algorithm 1 with warps as the
  processors), rebuilt: multiprocessor count from the device, 64-bit indices, scratch from
  CuPy's memory pool, reverse direction, ``h0``, float and double; below 32 channels the lanes
  of a warp split its slice of time (lane groups), and each lane keeps a batch of loads in flight;
* ``single_pass.cu``: a one-pass scan with a register/shuffle/shared-memory tile scan and a
  decoupled look-back across tiles (Merrill & Garland 2016): 12 bytes an element in float32.

:func:`linear_recurrence` runs them on CuPy arrays (the ``"cupy"`` backend of
:func:`scanbook.linear_recurrence`). Without a GPU two things still work and the chapter uses
them: :func:`compile_check` compiles every source to PTX with NVRTC, and the NumPy *twins*
:func:`three_phase_twin` and :func:`single_pass_twin` carry out the kernels' decompositions
(the same slices of time, the same tiles, the same order of combination) on the CPU.
"""

from __future__ import annotations

import importlib.resources
import re
from functools import cache
from pathlib import Path

import numpy as np

from .cupy_plan import (  # noqa: F401  (re-exported: the shapes, the model and the twins)
    COPY_BYTES_PER_S,
    DRAM_LATENCY_S,
    H200_SMS,
    L2_LATENCY_S,
    LOOKBACK_WINDOW,
    SERIAL_BLOCK,
    SINGLE_PASS_BLOCK,
    THREE_PHASE_BLOCKS_PER_SM,
    THREE_PHASE_WARPS,
    TILE_WORK_S,
    _after,
    _host_inputs,
    bandwidth_model,
    channel_group,
    choose_method,
    lookback_fetch,
    serial_min_channels,
    serial_steps,
    single_pass_items,
    single_pass_twin,
    three_phase_blocks,
    three_phase_scratch,
    three_phase_slices,
    three_phase_steps,
    three_phase_twin,
    three_phase_warps,
)

__all__ = [
    "KERNEL_FILES",
    "SINGLE_PASS_BLOCK",
    "THREE_PHASE_WARPS",
    "channel_group",
    "choose_method",
    "compile_check",
    "linear_recurrence",
    "linear_recurrence_vjp",
    "lookback_fetch",
    "ptx_stats",
    "bandwidth_model",
    "compile_cubin",
    "sass",
    "serial_min_channels",
    "serial_steps",
    "single_pass_items",
    "single_pass_twin",
    "sources",
    "stream_add",
    "three_phase_blocks",
    "three_phase_scratch",
    "three_phase_slices",
    "three_phase_steps",
    "three_phase_twin",
    "three_phase_warps",
]

KERNEL_FILES = ("serial.cu", "three_phase.cu", "single_pass.cu")
METHODS = ("auto", "serial", "three_phase", "single_pass")

# no --use_fast_math: these kernels must be exact; SP_BLOCK sizes single_pass.cu's shared arrays
COMPILE_OPTIONS = (
    "-std=c++17",
    f"-DSP_BLOCK={SINGLE_PASS_BLOCK}",
    f"-DSP_POLLS={LOOKBACK_WINDOW // 32}",
    f"-DSERIAL_BLOCK={SERIAL_BLOCK}",
)


_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}


# ----------------------------------------------------------------------------------------------
# sources and the compile check (no GPU needed)
# ----------------------------------------------------------------------------------------------


def sources() -> dict[str, str]:
    """The CUDA C sources of the kernels, ``{"serial.cu": text, ...}``. Defined in chapter 4."""
    root = importlib.resources.files("scanbook.kernels") / "cuda"
    return {name: (root / name).read_text(encoding="utf-8") for name in KERNEL_FILES}


def _nvrtc_compile_cuda_bindings(src: str, name: str, options: list[str]) -> str:
    from cuda.bindings import nvrtc

    def check(result, what):
        err = result[0] if isinstance(result, tuple) else result
        if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            raise RuntimeError(f"NVRTC {what} failed for {name}: {err}")
        return result[1:] if isinstance(result, tuple) else ()

    (prog,) = check(nvrtc.nvrtcCreateProgram(src.encode(), name.encode(), 0, [], []), "create")
    try:
        opts = [o.encode() for o in options]
        err = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)[0]
        (log_size,) = check(nvrtc.nvrtcGetProgramLogSize(prog), "log size")
        log = b" " * log_size
        check(nvrtc.nvrtcGetProgramLog(prog, log), "log")
        if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            text = log.decode(errors="replace").rstrip("\x00 ")
            raise RuntimeError(f"NVRTC could not compile {name} ({' '.join(options)}):\n{text}")
        (ptx_size,) = check(nvrtc.nvrtcGetPTXSize(prog), "PTX size")
        ptx = b" " * ptx_size
        check(nvrtc.nvrtcGetPTX(prog, ptx), "PTX")
        return ptx.decode().rstrip("\x00")
    finally:
        nvrtc.nvrtcDestroyProgram(prog)


def _nvrtc_compile_cupy(src: str, name: str, options: list[str]) -> str:
    from cupy_backends.cuda.libs import nvrtc

    prog = nvrtc.createProgram(src, name, (), ())
    try:
        try:
            nvrtc.compileProgram(prog, options)
        except nvrtc.NVRTCError as exc:
            log = nvrtc.getProgramLog(prog)
            raise RuntimeError(f"NVRTC could not compile {name}:\n{log}") from exc
        ptx = nvrtc.getPTX(prog)
        return ptx.decode() if isinstance(ptx, bytes) else ptx
    finally:
        nvrtc.destroyProgram(prog)


def compile_check(arch: str = "sm_90", *, options: tuple[str, ...] = COMPILE_OPTIONS) -> dict:
    """Compile every ``.cu`` file with NVRTC, on the CPU, and return ``{file: PTX text}``.

    No GPU is needed: NVRTC is a library (the ``nvidia-cuda-nvrtc`` wheel, called through
    ``cuda.bindings.nvrtc``, or CuPy's own binding when CuPy is installed). ``arch`` is
    ``"sm_90"`` (Hopper) or any ``sm_XX``/``compute_XX``. A compile error raises
    ``RuntimeError`` with NVRTC's log.
    Defined in chapter 4.
    """
    if not isinstance(arch, str) or not re.fullmatch(r"(sm|compute)_\d+[a-z]?", arch):
        raise ValueError(f"arch must look like 'sm_90' or 'compute_90'; got {arch!r}")
    virtual = "compute_" + arch.split("_", 1)[1]  # PTX is generated for the virtual architecture
    opts = [f"--gpu-architecture={virtual}", *options]
    try:
        import cuda.bindings.nvrtc  # noqa: F401

        compile_one = _nvrtc_compile_cuda_bindings
    except ImportError:
        try:
            import cupy_backends.cuda.libs.nvrtc  # noqa: F401

            compile_one = _nvrtc_compile_cupy
        except ImportError as exc:
            raise RuntimeError(
                "compile_check needs NVRTC: pip install cuda-bindings (or cupy-cuda13x)"
            ) from exc
    return {name: compile_one(src, name, opts) for name, src in sources().items()}


def compile_cubin(name: str, arch: str = "sm_90", *, options: tuple[str, ...] = COMPILE_OPTIONS,
                  ) -> bytes:  # fmt: skip
    """Compile one ``.cu`` file with NVRTC to machine code (a cubin) for ``arch``, on the CPU.

    Needs ``cuda.bindings`` (the ``nvidia-cuda-nvrtc`` wheel); :func:`sass` disassembles it.
    Defined in chapter 4.
    """
    if not isinstance(arch, str) or not re.fullmatch(r"sm_\d+[a-z]?", arch):
        raise ValueError(f"arch must look like 'sm_90' (a real GPU, not compute_XX); got {arch!r}")
    src = sources()
    if name not in src:
        raise ValueError(f"name must be one of {tuple(src)}; got {name!r}")
    from cuda.bindings import nvrtc

    opts = [o.encode() for o in (f"--gpu-architecture={arch}", *options)]
    err, prog = nvrtc.nvrtcCreateProgram(src[name].encode(), name.encode(), 0, [], [])
    try:
        if nvrtc.nvrtcCompileProgram(prog, len(opts), opts)[0] != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            _, n = nvrtc.nvrtcGetProgramLogSize(prog)
            log = b" " * n
            nvrtc.nvrtcGetProgramLog(prog, log)
            raise RuntimeError(f"NVRTC could not compile {name}:\n{log.decode(errors='replace')}")
        _, n = nvrtc.nvrtcGetCUBINSize(prog)
        cubin = b" " * n
        nvrtc.nvrtcGetCUBIN(prog, cubin)
        return cubin
    finally:
        nvrtc.nvrtcDestroyProgram(prog)


def _cuobjdump() -> str | None:
    import shutil

    found = shutil.which("cuobjdump")
    if found:
        return found
    try:
        import nvidia  # the nvidia-cuda-cuobjdump wheel puts it under nvidia/cu13/bin
    except ImportError:
        return None
    for root in getattr(nvidia, "__path__", []):
        for tool in sorted(Path(root).glob("cu*/bin/cuobjdump")):
            return str(tool)
    return None


def sass(name: str, arch: str = "sm_90") -> dict[str, dict]:
    """The machine code (SASS) of every kernel in one ``.cu`` file, compiled on the CPU.

    Returns ``{kernel: {"sass": [instructions], "registers": n, "local": bytes,
    "shared": bytes}}`` from ``cuobjdump --dump-sass`` and ``--dump-resource-usage`` (``pip
    install nvidia-cuda-cuobjdump``). Raises ``RuntimeError`` when cuobjdump is not installed.
    Defined in chapter 4.
    """
    import subprocess
    import tempfile

    tool = _cuobjdump()
    if tool is None:
        raise RuntimeError("sass needs cuobjdump: pip install nvidia-cuda-cuobjdump")
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / (Path(name).stem + ".cubin")
        path.write_bytes(compile_cubin(name, arch))
        dump = subprocess.run([tool, "--dump-sass", str(path)], capture_output=True, text=True,
                              check=True).stdout  # fmt: skip
        usage = subprocess.run([tool, "--dump-resource-usage", str(path)], capture_output=True,
                               text=True, check=True).stdout  # fmt: skip
    out: dict[str, dict] = {}
    for m in re.finditer(r"Function (\w+):\s*\n\s*REG:(\d+) STACK:\d+ SHARED:(\d+) LOCAL:(\d+)",
                         usage):  # fmt: skip
        out[m.group(1)] = {"registers": int(m.group(2)), "shared": int(m.group(3)),
                           "local": int(m.group(4)), "sass": []}  # fmt: skip
    current = None
    for line in dump.splitlines():
        m = re.match(r"\s*Function : (\w+)", line)
        if m:
            current = out.setdefault(m.group(1), {"sass": []})["sass"]
            continue
        m = re.match(r"\s*/\*[0-9a-f]{4,}\*/\s+(.*?)\s*;", line)
        if m and current is not None:
            current.append(m.group(1))
    return out


def ptx_stats(ptx: str) -> dict[str, dict[str, int]]:
    """Per kernel entry in a PTX text: instructions, global loads/stores, shuffles, barriers.

    Counts are of PTX (virtual) instructions, a rough picture of the code; the machine code
    (SASS) that ``ptxas`` makes from it differs. Defined in chapter 4.
    """
    out: dict[str, dict[str, int]] = {}
    for m in re.finditer(r"\.entry\s+(\w+)\s*\((.*?)\)[^{]*\{(.*?)\n\}", ptx, re.S):
        name, body = m.group(1), m.group(3)
        lines = [ln.strip() for ln in body.splitlines()]
        instr = [
            ln
            for ln in lines
            if ln and not ln.startswith(("//", ".", "$", "{", "}")) and not ln.endswith(":")
        ]
        out[name] = {
            "instructions": len(instr),
            "ld.global": sum("ld.global" in ln for ln in instr),
            "st.global": sum("st.global" in ln for ln in instr),
            "shfl": sum(ln.startswith("shfl") for ln in instr),
            "bar": sum(ln.startswith(("bar.", "barrier")) for ln in instr),
            "atom": sum(ln.startswith("atom") for ln in instr),
        }
    return out


# ----------------------------------------------------------------------------------------------
# the GPU path (CuPy)
# ----------------------------------------------------------------------------------------------


def _cupy():
    try:
        import cupy
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise RuntimeError(
            "scanbook.kernels.cupy_raw needs CuPy and a CUDA GPU: pip install 'scanbook[gpu]'"
        ) from exc
    return cupy


@cache
def _module(name: str):
    """The compiled ``RawModule`` of one ``.cu`` file (compiled on first use, then cached)."""
    cp = _cupy()
    return cp.RawModule(code=sources()[name], options=COMPILE_OPTIONS)


def _kernel(file: str, name: str):
    return _module(file).get_function(name)


@cache
def _n_sm(device_id: int) -> int:
    cp = _cupy()
    return int(cp.cuda.Device(device_id).attributes["MultiProcessorCount"])


def _is_host_array(x) -> bool:
    return isinstance(x, np.ndarray) and type(x).__module__.split(".")[0] == "numpy"


def _reject_host_arrays(**arrays) -> None:
    """A NumPy array where a CuPy array belongs is the commonest mistake: say so, by name, even
    before CuPy is imported (it may not be installed)."""
    for name, x in arrays.items():
        if _is_host_array(x):
            raise TypeError(
                f"{name} must be a CuPy array on the GPU (cupy.asarray({name})); got a NumPy "
                "host array"
            )


def _check_device_array(cp, name: str, x):
    _reject_host_arrays(**{name: x})
    if not isinstance(x, cp.ndarray):
        raise TypeError(f"{name} must be a cupy.ndarray; got {type(x).__name__}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must have dtype float32 or float64; got {x.dtype}")


def _initial_state(cp, h0, a, reverse):
    """``h0`` checked against ``a`` (zeros for None); ``reverse`` must be a bool."""
    C = int(a.shape[1])
    if not isinstance(reverse, bool | np.bool_):
        raise TypeError(f"reverse must be True or False; got {reverse!r}")
    if h0 is None:
        return cp.zeros(C, a.dtype)
    _check_device_array(cp, "h0", h0)
    if h0.shape != (C,) or h0.dtype != a.dtype:
        raise ValueError(
            f"h0 must have shape {(C,)} and dtype {a.dtype}; got {h0.shape} {h0.dtype}"
        )
    return h0


def linear_recurrence(a, b, h0=None, *, reverse: bool = False, method: str = "auto", out=None):
    """``h[t] = a[t] * h[t-1] + b[t]`` (or from the end with ``reverse``) on the GPU.

    Args:
        a, b: CuPy arrays of shape ``(T, C)``, float32 or float64 (made contiguous here:
            RawKernel ignores strides).
        h0: shape ``(C,)`` or None (zeros).
        reverse: ``h[t] = a[t] * h[t+1] + b[t]`` with ``h[T] = h0``.
        method: ``"auto"`` (:func:`choose_method`), ``"single_pass"``, ``"three_phase"`` or
            ``"serial"``.
        out: optional C-contiguous CuPy array ``(T, C)`` of the dtype of ``a`` to write ``h``
            into (the benchmark fills it with NaN first, to see that every element is written).

    Returns:
        ``h`` (``out`` when given, else a new CuPy array of shape ``(T, C)``).

    Overflow: the parallel kernels compose decays before they apply them, so they agree with
    the loop (up to rounding) as long as no product of ``|a|`` over a run of consecutive steps
    overflows the dtype. Such a product is inf, and ``0 x inf`` is NaN: with ``|a| > 1`` over
    a run whose product passes ~3.4e38 (float32) followed by a zero decay (a reset), or applied
    to a zero state, the kernels give NaN or inf from the next composed segment on where the
    loop stays finite. With ``|a| <= 1`` (a stable recurrence) it cannot happen.

    Defined in chapter 4; it is the ``"cupy"`` backend of :func:`scanbook.linear_recurrence`.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    _reject_host_arrays(a=a, b=b, h0=h0)
    cp = _cupy()
    _check_device_array(cp, "a", a)
    _check_device_array(cp, "b", b)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape (T, C); got {a.shape} and {b.shape}")
    if a.dtype != b.dtype:
        raise TypeError(f"a and b must have the same dtype; got {a.dtype} and {b.dtype}")
    T, C = (int(n) for n in a.shape)
    h0 = _initial_state(cp, h0, a, reverse)
    if out is None:
        h = cp.empty((T, C), a.dtype)
    else:
        _check_device_array(cp, "out", out)
        if out.shape != (T, C) or out.dtype != a.dtype or not out.flags.c_contiguous:
            raise ValueError(
                f"out must be a C-contiguous {a.dtype} array of shape {(T, C)}; got "
                f"{out.dtype} {out.shape} (contiguous: {out.flags.c_contiguous})"
            )
        h = out
    if T == 0 or C == 0:
        return h
    a, b, h0 = cp.ascontiguousarray(a), cp.ascontiguousarray(b), cp.ascontiguousarray(h0)
    n_sm = _n_sm(a.device.id)
    if method == "auto":
        method = choose_method(T, C, n_sm)
    sfx = _SUFFIX[np.dtype(a.dtype)]
    rev = np.int32(1 if reverse else 0)
    if method == "serial":
        threads = SERIAL_BLOCK
        grid = max(1, min(-(-C // threads), 32 * n_sm))
        _kernel("serial.cu", f"serial_{sfx}")(
            (grid,), (threads,), (a, b, h0, h, np.int64(T), np.int64(C), rev)
        )
    elif method == "three_phase":
        nb = three_phase_blocks(T, n_sm)
        W = three_phase_warps(T, nb)
        scratch = cp.empty((2, three_phase_scratch(C, nb, W)), a.dtype)  # P and R (memory pool)
        P, R = scratch[0], scratch[1]
        args = (np.int64(T), np.int64(C), rev)
        _kernel("three_phase.cu", f"three_phase_reduce_{sfx}")(
            (nb,), (32 * W,), (a, b, P, R, *args)
        )
        grid = max(1, min(-(-C // 256), 32 * n_sm))
        _kernel("three_phase.cu", f"three_phase_block_scan_{sfx}")(
            (grid,), (256,), (h0, P, R, np.int64(C), np.int64(nb), np.int32(W))
        )
        _kernel("three_phase.cu", f"three_phase_downsweep_{sfx}")(
            (nb,), (32 * W,), (a, b, P, R, h, *args)
        )
    else:
        _single_pass(cp, a, b, h0, h, reverse=bool(reverse))
    return h


def _single_pass(cp, a, b, h0, h, *, reverse: bool, grad=None) -> None:
    """Launch ``single_pass.cu`` on contiguous ``(T, C)`` arrays; ``grad=(hf, da)`` runs the
    fused gradient kernel (``b`` is then ``g`` and ``h`` receives ``db``)."""
    T, C = (int(n) for n in a.shape)
    CG = channel_group(C)
    items = single_pass_items(a.dtype)
    L = SINGLE_PASS_BLOCK // CG * items
    n_groups = -(-C // CG)
    n_tiles = n_groups * -(-T // L)
    if n_tiles >= 2**31:
        raise ValueError(f"too many tiles for one launch: {n_tiles} (T={T}, C={C})")
    status = cp.zeros(n_tiles + 1, np.int32)  # flags, then the tile counter (unsigned)
    values = cp.empty((3, n_tiles * CG), a.dtype)  # aggregate A, aggregate B, inclusive h
    arrays = (a, b, h) if grad is None else (a, b, h, *grad)
    vn = 16 // a.itemsize
    vec_ok = C == 1 and all(x.data.ptr % 16 == 0 for x in arrays) and (not reverse or T % vn == 0)
    sizes = (np.int64(T), np.int64(C), np.int64(n_groups), np.int32(1 if reverse else 0))
    scratch = (
        np.int32(vec_ok), status[:n_tiles], values[0], values[1], values[2],
        status[n_tiles:].view(np.uint32),  # the tile counter: unsigned int*
    )  # fmt: skip
    sfx = _SUFFIX[np.dtype(a.dtype)]
    if grad is None:
        name, args = f"single_pass_{sfx}_cg{CG}", (a, b, h0, h, *sizes, *scratch)
    else:
        name, args = f"single_pass_vjp_{sfx}_cg{CG}", (a, b, h0, grad[0], h, grad[1])
        args += (*sizes, *scratch)
    _kernel("single_pass.cu", name)((n_tiles,), (SINGLE_PASS_BLOCK,), args)


def linear_recurrence_vjp(a, b, h0, h, g, *, reverse: bool = False):
    """The gradient of :func:`linear_recurrence` in one fused pass: ``(da, db, dh0)``.

    ``h`` is the forward result and ``g = dL/dh``. One launch of the single-pass kernel scans
    ``db[t] = a[t+1] db[t+1] + g[t]`` (the other way for ``reverse``) and writes
    ``da[t] = db[t] h[t-1]`` on the way out, reading ``a``, ``g``, ``h`` and writing ``da``,
    ``db``: 20 bytes an element in float32, 5/3 of the forward pass's 12, where the unfused rule
    of chapter 5 (shift ``a``, scan, shift ``h``, multiply) moves about 40. ``dh0`` is
    ``a[0] db[0]`` (``a[T-1] db[T-1]`` for ``reverse``). CuPy arrays of shape ``(T, C)``;
    ``h0`` may be None (zeros). The gradient does not depend on ``b``: it is checked when
    given and may be None. Defined in chapter 5; the kernel is chapter 4's.
    """
    _reject_host_arrays(a=a, b=b, h0=h0, h=h, g=g)
    cp = _cupy()
    _check_device_array(cp, "a", a)
    if a.ndim != 2:
        raise ValueError(f"a must have shape (T, C); got shape {a.shape}")
    for name, x in (("b", b), ("h", h), ("g", g)):
        if x is None and name == "b":
            continue  # the gradient does not depend on b
        _check_device_array(cp, name, x)
        if x.shape != a.shape:
            raise ValueError(f"{name} must have the shape of a, {a.shape}; got {x.shape}")
        if x.dtype != a.dtype:
            raise TypeError(f"{name} must have the dtype of a, {a.dtype}; got {x.dtype}")
    T, C = (int(n) for n in a.shape)
    h0 = _initial_state(cp, h0, a, reverse)
    da, db = cp.empty((T, C), a.dtype), cp.empty((T, C), a.dtype)
    if T == 0 or C == 0:
        return da, db, cp.zeros(C, a.dtype)
    a, g, h, h0 = (cp.ascontiguousarray(x) for x in (a, g, h, h0))
    _single_pass(cp, a, g, h0, db, reverse=not reverse, grad=(h, da))
    last = T - 1 if reverse else 0
    return da, db, a[last] * db[last]


def stream_add(a, b, out=None):
    """``out = a + b`` with ``stream_add`` of ``serial.cu``: the recurrence's memory traffic
    (read two arrays, write one) with no recurrence, the bandwidth ceiling of chapter 4."""
    cp = _cupy()
    _check_device_array(cp, "a", a)
    _check_device_array(cp, "b", b)
    if not (a.flags.c_contiguous and b.flags.c_contiguous) or a.shape != b.shape:
        raise ValueError("a and b must be C-contiguous arrays of one shape")
    if b.dtype != a.dtype or np.dtype(a.dtype) not in _SUFFIX:
        raise TypeError(f"a and b must both be float32 or float64; got {a.dtype} and {b.dtype}")
    if out is None:
        out = cp.empty_like(a)
    else:
        _check_device_array(cp, "out", out)
        if out.shape != a.shape or out.dtype != a.dtype or not out.flags.c_contiguous:
            raise ValueError(
                f"out must be a C-contiguous {a.dtype} array of shape {a.shape}; "
                f"got {out.dtype} {out.shape}"
            )
    n = a.size
    vec_ok = all(x.data.ptr % 16 == 0 for x in (a, b, out))
    n_sm = _n_sm(a.device.id)
    _kernel("serial.cu", f"stream_add_{_SUFFIX[np.dtype(a.dtype)]}")(
        (8 * n_sm,), (512,), (a, b, out, np.int64(n), np.int32(vec_ok))
    )
    return out

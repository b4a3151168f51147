"""An emulated GPU made of CPU threads: a NumPy-backed stand-in for ``cupy`` whose ``RawModule``
runs CUDA C on the CPU.

Defined in chapter 4 (CUDA C through CuPy RawKernel), where it runs the stages of the
single-pass kernel and the CUDA C exercise on a machine without a GPU or ``nvcc`` (it needs
only ``g++``, which Colab and Binder have). The book's tests use it too (``tests/fake_gpu.py``
installs it as ``cupy``), so that the host code of chapter 4 and the GPU benchmark run on the
real ``.cu`` sources, and these mistakes fail loudly instead of giving a GPU garbage:

* a scalar of the wrong C type (CuPy passes a Python ``int`` as ``long long``; a kernel taking
  ``int`` would read half of it) or an array of the wrong dtype for a pointer argument;
* a non-contiguous array handed to a kernel (``RawKernel`` ignores strides);
* a launch with more threads than a block may have;
* a kernel that writes outside an array allocated here (each allocation is fenced by guard
  bytes that are checked after every launch: :class:`OutOfBoundsWrite`).

``RawModule(code=..., options=...)`` compiles ``code`` with g++ against the emulation in
``cuda/cuda_emu.h`` (with the ``-D`` options it was given), into a shared library with one
``launch_<kernel>`` wrapper per ``extern "C"`` kernel; the wrapper also reports the kernel's
parameter types, which the launch checks. The blocks of a launch run concurrently, as on a
GPU: up to ``THREADS // block`` of them at once, started in a random order, each block's
threads as ``std::thread``s, with random short delays before a block starts and before every
flag it publishes, so that a look-back really waits for predecessors that have not finished.
Every launch gets the next seed (``SCANBOOK_EMU_SEED`` sets the first); what the look-back did
is added up in :data:`COUNTERS`. Keep sizes small (a few thousand elements): every thread is
an operating-system thread. Timing and the GPU's memory ordering (weaker than x86's) are not
emulated.
"""

from __future__ import annotations

import ctypes
import hashlib
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import types
import weakref
from pathlib import Path

import numpy as np

__version__ = "0.0+emulated"
N_SM = 4  # multiprocessors this "GPU" reports: small, so that launches stay small
NAME = "Emulated GPU (CPU threads)"
GUARD = 4096  # bytes of guard on each side of every allocation
_GUARD_BYTE = 0xA5
_HEADER = Path(__file__).parent / "cuda" / "cuda_emu.h"
_BUILD = Path(tempfile.gettempdir()) / "scanbook-fake-gpu"
THREADS = int(os.environ.get("SCANBOOK_EMU_THREADS", "1024"))  # threads resident at once
JITTER_US = 2000  # the longest random delay before a block starts or a flag is published
STALL_US = 30000  # the longest stall of a block that has just taken a tile
#: the longest wait at a warp collective before the launch is declared divergent (ms; 0: no
#: limit, and a divergent launch hangs); run_isolated sets it
WARP_TIMEOUT_MS = int(os.environ.get("SCANBOOK_EMU_WARP_TIMEOUT_MS", "0"))
_SEEDS = itertools.count(int(os.environ.get("SCANBOOK_EMU_SEED", "1")))
COUNTER_NAMES = ("flag0", "flag1", "flag2", "waits", "max_distance", "blocks", "max_resident")
COUNTERS = dict.fromkeys(COUNTER_NAMES, 0)  # summed over launches (maxima: the largest)


# ----------------------------------------------------------------------------------------------
# arrays
# ----------------------------------------------------------------------------------------------


class _Pointer:
    def __init__(self, ptr: int):
        self.ptr = ptr


class _DeviceRef:
    id = 0


class ndarray(np.ndarray):  # noqa: N801 - the name CuPy uses
    """A NumPy array that scanbook takes for a CuPy array (its type's module is ``cupy``)."""

    __module__ = "cupy"

    @property
    def data(self):  # CuPy: x.data.ptr is the device address
        return _Pointer(self.__array_interface__["data"][0])

    @property
    def device(self):
        return _DeviceRef()

    def get(self):
        return np.array(self, copy=True).view(np.ndarray)


_LIVE: list[weakref.ref] = []  # guarded buffers, checked after every launch


def _alloc(shape, dtype) -> ndarray:
    dtype = np.dtype(dtype)
    shape = (shape,) if np.isscalar(shape) else tuple(int(n) for n in shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.full(nbytes + 2 * GUARD, _GUARD_BYTE, np.uint8)
    _LIVE.append(weakref.ref(raw))
    return raw[GUARD : GUARD + nbytes].view(dtype).reshape(shape).view(ndarray)


class WarpDivergence(RuntimeError):
    """Some lanes of a warp skipped a warp collective that the others waited at.

    Defined in chapter 4."""


class OutOfBoundsWrite(AssertionError):
    """A kernel wrote into the guard bytes before or after an array (see :func:`check_guards`).

    Defined in chapter 4."""


def check_guards() -> None:
    """Raise :class:`OutOfBoundsWrite` if any live allocation's guard bytes were overwritten.

    The guards are restored, so that the next launch is checked afresh. Defined in chapter 4."""
    alive = []
    for ref in _LIVE:
        raw = ref()
        if raw is None:
            continue
        alive.append(ref)
        head, tail = raw[:GUARD], raw[raw.size - GUARD :]
        if (head != _GUARD_BYTE).any() or (tail != _GUARD_BYTE).any():
            where = "before" if (head != _GUARD_BYTE).any() else "after"
            head[...] = _GUARD_BYTE
            tail[...] = _GUARD_BYTE
            raise OutOfBoundsWrite(
                f"a kernel wrote {where} an array of {raw.size - 2 * GUARD} bytes (out of bounds)"
            )
    _LIVE[:] = alive


def _wrap(x):
    if isinstance(x, np.ndarray) and not isinstance(x, ndarray):
        return x.view(ndarray)
    return x


def empty(shape, dtype=np.float64) -> ndarray:
    out = _alloc(shape, dtype)
    out.view(np.uint8)[...] = 0xFF  # NaN-like garbage, as fresh device memory may hold
    return out


def zeros(shape, dtype=np.float64) -> ndarray:
    out = _alloc(shape, dtype)
    out[...] = 0
    return out


def ones(shape, dtype=np.float64) -> ndarray:
    out = _alloc(shape, dtype)
    out[...] = 1
    return out


def full(shape, fill_value, dtype=None) -> ndarray:
    dtype = np.asarray(fill_value).dtype if dtype is None else dtype
    out = _alloc(shape, dtype)
    out[...] = fill_value
    return out


def empty_like(x, dtype=None) -> ndarray:
    return empty(np.shape(x), x.dtype if dtype is None else dtype)


def zeros_like(x, dtype=None) -> ndarray:
    return zeros(np.shape(x), x.dtype if dtype is None else dtype)


def full_like(x, fill_value, dtype=None) -> ndarray:
    return full(np.shape(x), fill_value, x.dtype if dtype is None else dtype)


def asarray(x, dtype=None) -> ndarray:
    if isinstance(x, ndarray) and (dtype is None or np.dtype(dtype) == x.dtype):
        return x
    x = np.asarray(x, dtype=dtype)
    out = _alloc(x.shape, x.dtype)
    out[...] = x
    return out


array = asarray


def ascontiguousarray(x, dtype=None) -> ndarray:
    if isinstance(x, ndarray) and x.flags.c_contiguous and dtype in (None, x.dtype):
        return x
    x = np.asarray(x, dtype=dtype)
    out = _alloc(x.shape, x.dtype)
    out[...] = x
    return out


def asnumpy(x) -> np.ndarray:
    return np.array(x, copy=True).view(np.ndarray)


def __getattr__(name):  # everything else: NumPy's function, with arrays wrapped
    obj = getattr(np, name)
    if callable(obj) and not isinstance(obj, type):

        def wrapped(*args, **kwargs):
            out = obj(*args, **kwargs)
            if isinstance(out, tuple):
                return tuple(_wrap(o) for o in out)
            return _wrap(out)

        return wrapped
    return obj


class _RandomState:
    def __init__(self, seed=None):
        self._rs = np.random.RandomState(seed)

    def uniform(self, low=0.0, high=1.0, size=None, dtype=np.float64):
        return asarray(self._rs.uniform(low, high, size).astype(dtype))

    def standard_normal(self, size=None, dtype=np.float64):
        return asarray(self._rs.standard_normal(size).astype(dtype))


random = types.SimpleNamespace(RandomState=_RandomState)


class _Pool:
    def free_all_blocks(self):
        pass

    def used_bytes(self):
        return 0


def get_default_memory_pool():
    return _Pool()


# ----------------------------------------------------------------------------------------------
# cupy.cuda
# ----------------------------------------------------------------------------------------------


class _Device:
    def __init__(self, device_id: int = 0):
        self.id = int(device_id)
        self.attributes = {"MultiProcessorCount": N_SM}

    def synchronize(self):
        pass


class _Event:
    def __init__(self):
        self.t = None

    def record(self, stream=None):
        self.t = time.perf_counter()

    def synchronize(self):
        pass


def _get_elapsed_time(start: _Event, stop: _Event) -> float:
    return (stop.t - start.t) * 1e3  # milliseconds, as CuPy returns


def _memcpy_async(dst: int, src: int, nbytes: int, kind: int, stream=0):
    ctypes.memmove(dst, src, nbytes)


runtime = types.SimpleNamespace(
    memcpyDeviceToDevice=3,
    memcpyAsync=_memcpy_async,
    getDeviceProperties=lambda i: {
        "name": NAME.encode(),
        "major": 9,
        "minor": 0,
        "totalGlobalMem": 1 << 30,
    },
    driverGetVersion=lambda: 0,
    runtimeGetVersion=lambda: 0,
)
cuda = types.SimpleNamespace(
    Device=_Device,
    Event=_Event,
    get_elapsed_time=_get_elapsed_time,
    runtime=runtime,
    is_available=lambda: True,
)


# ----------------------------------------------------------------------------------------------
# RawModule: the CUDA C compiled by g++ against the emulation
# ----------------------------------------------------------------------------------------------

_WRAPPER_HEAD = r"""
#include "cuda_emu.h"
#include <cstring>
#include <string>
#include <type_traits>
#include "kernel.cu"

extern "C" void emu_configure(unsigned resident, unsigned long long seed, unsigned jitter_us,
                              unsigned hold_us, unsigned stall_us, unsigned warp_timeout_ms) {
    emu_config = EmuConfig{resident, seed, jitter_us, hold_us, stall_us, warp_timeout_ms};
    emu_counters.reset();
    emu_diverged = 0;
}
extern "C" int emu_divergence() { return emu_diverged; }
extern "C" void emu_read_counters(long long* out) {
    auto& c = emu_counters;
    long long v[] = {c.flag_reads[0], c.flag_reads[1], c.flag_reads[2], c.waits, c.max_distance,
                     c.blocks, c.max_resident};
    for (int i = 0; i < 7; ++i) out[i] = v[i];
}

namespace fake_gpu {
struct Arg {  // converts to whatever the kernel's parameter is, from the bytes it points to
    void* p;
    template <class T>
    operator T() const {
        T v;
        std::memcpy(&v, p, sizeof(T));
        return v;
    }
};
template <class T>
std::string code() {
    if constexpr (std::is_pointer_v<T>)
        return "*" + code<std::remove_cv_t<std::remove_pointer_t<T>>>();
    else if constexpr (std::is_same_v<T, int>) return "i";
    else if constexpr (std::is_same_v<T, unsigned>) return "I";
    else if constexpr (std::is_same_v<T, long long>) return "q";
    else if constexpr (std::is_same_v<T, float>) return "f";
    else if constexpr (std::is_same_v<T, double>) return "d";
    else return "?";
}
template <class... P>
std::string describe(void (*)(P...)) {
    std::string s;
    ((s += code<P>() + ","), ...);
    return s;
}
}  // namespace fake_gpu
"""

_WRAPPER_ONE = r"""
extern "C" const char* signature_{name}() {{
    static std::string s = fake_gpu::describe(&{name});
    return s.c_str();
}}
extern "C" void launch_{name}(unsigned grid, unsigned block, void** args) {{
    using fake_gpu::Arg;
    launch(grid, block, [&] {{ {name}({args}); }});
}}
"""

_ENTRY = re.compile(
    r"FAKEGPU_KERNEL\s+void\s+(?:FAKEGPU_BOUNDS\((\d+)(?:\s*,\s*\d+)?\)\s+)?(\w+)\s*\(([^)]*)\)"
)
_TYPE_CODE = {"f": np.float32, "d": np.float64, "i": np.int32, "I": np.uint32}
_LIBS: dict[str, tuple[ctypes.CDLL, dict]] = {}


def _gxx() -> str:
    gxx = shutil.which("g++")
    if gxx is None:
        raise RuntimeError("the emulated GPU needs a C++20 compiler (g++)")
    return gxx


def _build(code: str, options: tuple[str, ...]) -> tuple[ctypes.CDLL, dict]:
    defines = [o for o in options if o.startswith("-D")]
    key = hashlib.sha256((code + "\0".join(defines) + _HEADER.read_text()).encode()).hexdigest()
    if key in _LIBS:
        return _LIBS[key]
    d = _BUILD / key[:16]
    d.mkdir(parents=True, exist_ok=True)
    so, known = d / "module.so", d / "entries.json"
    if so.exists() and known.exists():  # built before, by this process or another
        return _load(key, so, {n: tuple(v) for n, v in json.loads(known.read_text()).items()})
    src = Path(tempfile.mkdtemp(dir=d))  # this process's sources (another may build too)
    (src / "cuda_emu.h").write_text(_HEADER.read_text())
    (src / "kernel.cu").write_text(emulate_source(code))
    flags = ["-std=c++20", "-pthread", "-w", f"-I{src}", *defines]
    # the kernels' names and parameter counts, from the preprocessed source
    (src / "probe.cpp").write_text('#include "cuda_emu.h"\n#include "kernel.cu"\n')
    probe = ["-D__global__=FAKEGPU_KERNEL", "-D__launch_bounds__(...)=FAKEGPU_BOUNDS(__VA_ARGS__)"]
    pre = subprocess.run([_gxx(), "-E", *flags, *probe, str(src / "probe.cpp")],
                         capture_output=True, text=True)  # fmt: skip
    if pre.returncode:
        raise RuntimeError(f"g++ -E failed:\n{pre.stderr[-3000:]}")
    mine, current = [], None  # the preprocessed lines that come from kernel.cu itself
    for line in pre.stdout.splitlines():
        marker = re.match(r'# \d+ "([^"]*)"', line)
        if marker:
            current = Path(marker.group(1)).name
        elif current == "kernel.cu":
            mine.append(line)
    entries = {}  # name -> (number of parameters, launch bound or 1024)
    for bound, name, params in _ENTRY.findall("\n".join(mine)):
        n_params = 0 if not params.strip() else params.count(",") + 1
        entries[name] = (n_params, int(bound) if bound else 1024)
    if not entries:
        raise RuntimeError('no extern "C" kernel found in the module\'s code')
    body = _WRAPPER_HEAD + "".join(
        _WRAPPER_ONE.format(name=n, args=", ".join(f"Arg{{args[{i}]}}" for i in range(k)))
        for n, (k, _) in entries.items()
    )
    (src / "wrap.cpp").write_text(body)
    if not so.exists():  # built once, then renamed into place in one step
        tmp = src / "module.so"
        cmd = [_gxx(), "-O1", "-shared", "-fPIC", *flags, str(src / "wrap.cpp"), "-o", str(tmp)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(f"g++ could not build the emulated module:\n{out.stderr[-3000:]}")
        tmp.replace(so)
    shutil.rmtree(src, ignore_errors=True)
    tmp_known = d / f"entries.{os.getpid()}.json"
    tmp_known.write_text(json.dumps(entries))
    tmp_known.replace(known)
    return _load(key, so, entries)


def _load(key: str, so: Path, entries: dict) -> tuple[ctypes.CDLL, dict]:
    lib = ctypes.CDLL(str(so))
    lib.emu_configure.argtypes = [ctypes.c_uint, ctypes.c_ulonglong] + [ctypes.c_uint] * 4
    lib.emu_read_counters.argtypes = [ctypes.c_void_p]
    for n in entries:
        getattr(lib, f"signature_{n}").restype = ctypes.c_char_p
        getattr(lib, f"launch_{n}").argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p]
    _LIBS[key] = (lib, entries)
    return _LIBS[key]


_SHARED = re.compile(r"__shared__\s+([A-Za-z_][\w\s:<>,]*?)\s+(\w+)\s*((?:\[[^\];]+\]\s*)*);")


def emulate_source(code: str) -> str:
    """``code`` with each ``__shared__`` declaration made per block for ``cuda_emu.h``.

    Several blocks run at once in the emulation, so a ``static`` variable (what ``__shared__``
    would otherwise become) would be shared by all of them. ``__shared__ T name[N][M];`` becomes
    ``auto& name = emu_shared<T[N][M], __COUNTER__>();``, a reference into the storage of the
    calling thread's block. The header defines ``__shared__`` as an undeclared name, so a
    declaration this misses does not compile.
    """

    def one(m: re.Match) -> str:
        dims = re.sub(r"\s+", "", m.group(3))
        return f"auto& {m.group(2)} = emu_shared<{m.group(1)}{dims}, __COUNTER__>();"

    return _SHARED.sub(one, code)


def _add_counters(lib) -> None:
    out = (ctypes.c_longlong * len(COUNTER_NAMES))()
    lib.emu_read_counters(out)
    for name, v in zip(COUNTER_NAMES, out, strict=True):
        COUNTERS[name] = max(COUNTERS[name], v) if name.startswith("max") else COUNTERS[name] + v


class _Function:
    def __init__(self, lib, name: str, bound: int):
        self.name, self.bound = name, bound
        self._lib = lib
        if not hasattr(lib, name):  # a C++ (mangled) name: CuPy's get_function would not find it
            raise AttributeError(f'kernel {name!r} is not declared extern "C"')
        self._launch = getattr(lib, f"launch_{name}")
        self.signature = getattr(lib, f"signature_{name}")().decode().rstrip(",").split(",")

    def _marshal(self, i: int, want: str, x):
        where = f"{self.name}: argument {i}"
        if want.startswith("*"):
            if not isinstance(x, ndarray):
                raise TypeError(f"{where} is a pointer; got {type(x).__name__}, not a cupy array")
            dt = _TYPE_CODE.get(want[1:])
            if dt is None or x.dtype != np.dtype(dt):
                raise TypeError(f"{where} points to {want[1:]!r}; got an array of {x.dtype}")
            if not x.flags.c_contiguous:
                raise ValueError(f"{where}: a non-contiguous array (RawKernel ignores strides)")
            return ctypes.c_void_p(x.data.ptr)
        if isinstance(x, np.ndarray):
            raise TypeError(f"{where} is a scalar {want!r}; got an array")
        if isinstance(x, bool | np.bool_):
            raise TypeError(f"{where}: pass bools as np.int32, not {type(x).__name__}")
        if isinstance(x, int):
            x = np.int64(x)  # CuPy passes a Python int as long long
        elif isinstance(x, float):
            x = np.float64(x)
        given = {
            np.dtype(np.int32): "i",
            np.dtype(np.uint32): "I",
            np.dtype(np.int64): "q",
            np.dtype(np.float32): "f",
            np.dtype(np.float64): "d",
        }.get(np.asarray(x).dtype)
        if given != want:
            raise TypeError(f"{where} is C type {want!r}; got {type(x).__name__} ({given!r})")
        ctype = {"i": ctypes.c_int32, "I": ctypes.c_uint32, "q": ctypes.c_int64,
                 "f": ctypes.c_float, "d": ctypes.c_double}[want]  # fmt: skip
        return ctype(x.item())

    def __call__(self, grid, block, args, shared_mem=0, stream=None):
        grid = tuple(grid) if isinstance(grid, tuple | list) else (grid,)
        block = tuple(block) if isinstance(block, tuple | list) else (block,)
        if len(grid) != 1 or len(block) != 1:
            raise ValueError(f"{self.name}: the emulation launches 1-D grids only")
        g, b = int(grid[0]), int(block[0])
        if not 1 <= b <= self.bound:
            raise ValueError(f"{self.name}: {b} threads a block (its launch bound: {self.bound})")
        if not 1 <= g < 2**31:
            raise ValueError(f"{self.name}: grid of {g} blocks")
        if len(args) != len(self.signature):
            raise TypeError(f"{self.name} takes {len(self.signature)} arguments; got {len(args)}")
        values = [
            self._marshal(i, w, x)
            for i, (w, x) in enumerate(zip(self.signature, args, strict=True))
        ]
        argv = (ctypes.c_void_p * len(values))(
            *(ctypes.cast(ctypes.pointer(v), ctypes.c_void_p) for v in values)
        )
        resident = max(1, THREADS // b)
        self._lib.emu_configure(resident, next(_SEEDS), JITTER_US, 0, STALL_US, WARP_TIMEOUT_MS)
        self._launch(g, b, argv)
        _add_counters(self._lib)
        diverged = self._lib.emu_divergence()
        try:
            check_guards()
        finally:
            if diverged:  # the first thing to fix (it replaces an out-of-bounds error)
                raise WarpDivergence(
                    f"{self.name}: the lanes of a warp did not all reach the same __shfl_*_sync, "
                    f"__ballot_sync or __syncwarp (some waited {WARP_TIMEOUT_MS / 1000:g} s for "
                    "the others); with the full mask 0xffffffff every lane must call each of them, "
                    "so "
                    "keep them out of an `if` that only some lanes take"
                )


class RawModule:
    def __init__(self, code: str, options: tuple[str, ...] = (), **kwargs):
        self._lib, self.kernels = _build(code, tuple(options))

    def get_function(self, name: str) -> _Function:
        if name not in self.kernels:
            raise AttributeError(f"no kernel {name!r} in the module; it has {self.kernels}")
        return _Function(self._lib, name, self.kernels[name][1])


# ----------------------------------------------------------------------------------------------
# installing it
# ----------------------------------------------------------------------------------------------


def install(setattr_=setattr, setitem=None) -> None:
    """Make scanbook take this module for CuPy on a GPU: ``cupy`` in ``sys.modules``, a GPU
    found, CuPy installed, and ``cupy_raw``'s compiled modules forgotten. The ``fake_gpu``
    fixture passes ``monkeypatch.setattr``/``setitem`` so that all of it is undone after a test;
    the plugin of ``make gpu-emulated`` leaves it in place."""
    import sys

    from scanbook import backends

    if setitem is None:
        setitem = dict.__setitem__
    installed = backends._installed
    setitem(sys.modules, "cupy", sys.modules[__name__])
    setattr_(backends, "has_gpu", lambda: True)
    setattr_(backends, "gpu_name", lambda: NAME)
    setattr_(backends, "_installed", lambda m: m == "cupy" or installed(m))
    forget_modules()


def forget_modules() -> None:
    """Clear ``cupy_raw``'s caches of compiled modules and multiprocessor counts."""
    from scanbook.kernels import cupy_raw

    cupy_raw._module.cache_clear()
    cupy_raw._n_sm.cache_clear()


def available() -> bool:
    """Whether the emulated GPU can run here: it needs a C++20 compiler, ``g++``.

    Defined in chapter 4."""
    return shutil.which("g++") is not None


# ----------------------------------------------------------------------------------------------
# a launch in a process of its own (for code that may never finish: a reader's kernel)
# ----------------------------------------------------------------------------------------------

_ERRORS = {"OutOfBoundsWrite": OutOfBoundsWrite, "WarpDivergence": WarpDivergence,
           "TypeError": TypeError, "ValueError": ValueError}  # fmt: skip


def run_isolated(code: str, kernel: str, grid: int, block: int, args: list, *,
                 timeout: float = 30.0, warp_timeout_ms: int = 3000) -> list:  # fmt: skip
    """Compile ``code`` and launch ``kernel`` on the emulated GPU in a child process.

    ``args``: the kernel's arguments, NumPy arrays (copied to emulated device arrays) and
    NumPy scalars. Returns the arrays after the launch, in the order given. A kernel that
    runs past ``timeout`` seconds (an endless loop) raises ``TimeoutError``, one whose lanes
    diverge at a warp collective raises :class:`WarpDivergence` after ``warp_timeout_ms``, an
    out-of-bounds write :class:`OutOfBoundsWrite`, and code that does not compile
    ``RuntimeError`` with the compiler's messages. Defined in chapter 4 (its CUDA C exercise).
    """
    with tempfile.TemporaryDirectory(prefix="scanbook-emu-") as tmp:
        tmp = Path(tmp)
        (tmp / "kernel.cu").write_text(code)
        arrays = {}  # raw bytes, with dtype and shape in the spec
        for i, x in enumerate(args):
            if isinstance(x, np.ndarray):
                x = np.ascontiguousarray(x)
                (tmp / f"a{i}.in").write_bytes(x.tobytes())
                arrays[f"a{i}"] = [x.dtype.str, list(x.shape)]
        scalars = [None if isinstance(x, np.ndarray) else [np.asarray(x).dtype.str, x.item()]
                   for x in args]  # fmt: skip
        spec = {"kernel": kernel, "grid": int(grid), "block": int(block), "scalars": scalars,
                "arrays": arrays, "warp_timeout_ms": int(warp_timeout_ms)}  # fmt: skip
        (tmp / "spec.json").write_text(json.dumps(spec))
        child = subprocess.Popen([sys.executable, __file__, str(tmp)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        try:
            _, err = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            raise TimeoutError(
                f"{kernel} did not finish in {timeout:g} s on the emulated GPU: an endless loop? "
                "(a loop variable that never changes, e.g. `o << 1` for `o <<= 1`)"
            ) from None
        finally:
            if child.poll() is None:  # interrupted (the grader's time limit): no orphan
                child.kill()
                child.communicate()
        result = tmp / "result.json"
        if not result.exists():
            if child.returncode == -11:  # SIGSEGV
                raise OutOfBoundsWrite(f"{kernel} read or wrote far outside an array (a crash)")
            raise RuntimeError(f"the emulated GPU crashed ({child.returncode}):\n{err[-2000:]}")
        outcome = json.loads(result.read_text())
        if outcome["error"]:
            raise _ERRORS.get(outcome["error"], RuntimeError)(outcome["message"])
        return [
            np.frombuffer((tmp / f"{k}.out").read_bytes(), np.dtype(dt)).reshape(shape).copy()
            for k, (dt, shape) in arrays.items()
        ]


def _compile_errors(message: str) -> str:
    """g++'s error lines, without the temporary paths."""
    lines = [re.sub(r"^\S*kernel\.cu:", "line ", ln) for ln in message.splitlines()]
    errors = [ln for ln in lines if "error" in ln]
    return "\n".join(errors[:8]) if errors else message[-1500:]


def _isolated_main(tmp: Path) -> None:
    spec = json.loads((tmp / "spec.json").read_text())
    global WARP_TIMEOUT_MS
    WARP_TIMEOUT_MS = spec["warp_timeout_ms"]
    outcome = {"error": None, "message": ""}
    try:
        inputs = {
            k: asarray(np.frombuffer((tmp / f"{k}.in").read_bytes(), np.dtype(dt)).reshape(shape))
            for k, (dt, shape) in spec["arrays"].items()
        }
        args = [inputs[f"a{i}"] if sc is None else np.dtype(sc[0]).type(sc[1])
                for i, sc in enumerate(spec["scalars"])]  # fmt: skip
        try:
            module = RawModule(code=(tmp / "kernel.cu").read_text())
        except RuntimeError as exc:
            raise RuntimeError(f"the code does not compile:\n{_compile_errors(str(exc))}") from None
        module.get_function(spec["kernel"])((spec["grid"],), (spec["block"],), tuple(args))
        for k, v in inputs.items():
            (tmp / f"{k}.out").write_bytes(asnumpy(v).tobytes())
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        outcome = {"error": type(exc).__name__, "message": str(exc)}
    (tmp / "result.json").write_text(json.dumps(outcome))


if __name__ == "__main__":
    _isolated_main(Path(sys.argv[1]))

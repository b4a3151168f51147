"""The emulated GPU of the tests: :mod:`scanbook.kernels.emulated` (chapter 4), plus the
stand-alone runner of ``emulation/runner.cpp`` (the kernels without the host code).

Everything else (``asarray``, ``RawModule``, ``COUNTERS``, ``install``, ...) is the library
module's: an attribute this module lacks is looked up there, so ``fake_gpu.X`` and
``scanbook.kernels.emulated.X`` are the same object. Use it through the ``fake_gpu`` fixture of
``conftest.py``, which installs it as ``cupy``.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from scanbook.kernels import emulated as _emulated
from scanbook.kernels.emulated import _BUILD, _HEADER, COUNTER_NAMES, _gxx, emulate_source

_RUNNER = Path(__file__).parent / "emulation" / "runner.cpp"


def __getattr__(name):
    return getattr(_emulated, name)


# ----------------------------------------------------------------------------------------------
# the stand-alone runner (emulation/runner.cpp): the kernels without the host code
# ----------------------------------------------------------------------------------------------

RUNNER_COLUMNS = ("error", *COUNTER_NAMES[:5], "max_resident")


def build_runner(dtype: str, items: int, block: int, defines: tuple[str, ...] = ()) -> Path:
    """Compile ``emulation/runner.cpp`` with the three ``.cu`` files for ``dtype`` ("float" or
    "double"), ``items`` steps a thread and ``block`` threads a tile (and ``-D`` ``defines``
    such as ``"SP_POLLS=1"``); cached by content."""
    from scanbook.kernels import cupy_raw

    runner = _RUNNER.read_text()
    files = {name: emulate_source(text) for name, text in cupy_raw.sources().items()}
    key = hashlib.sha256(
        "\0".join(
            [runner, _HEADER.read_text(), dtype, str(items), str(block), *files.values()]
        ).encode()
    ).hexdigest()[:16]
    d = _BUILD / f"runner-{key}"
    exe = d / "runner"
    if exe.exists():
        return exe
    d.mkdir(parents=True, exist_ok=True)
    src = Path(tempfile.mkdtemp(dir=d))
    for name, text in {**files, "cuda_emu.h": _HEADER.read_text(), "runner.cpp": runner}.items():
        (src / name).write_text(text)
    cmd = [_gxx(), "-O1", "-std=c++20", "-pthread", "-w", f"-I{src}", f"-DDTYPE={dtype}",
           f"-DITEMSV={items}", f"-DSP_BLOCK={block}", *(f"-D{d}" for d in defines),
           str(src / "runner.cpp"), "-o", str(src / "runner")]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"g++ could not build the runner:\n{out.stderr[-3000:]}")
    (src / "runner").replace(exe)
    shutil.rmtree(src, ignore_errors=True)
    return exe


def run_cases(exe: Path, cases, *, resident=4, jitter_us=200, hold_us=0, stall_us=0):
    """Run ``(kernel, T, C, reverse, with_h0, seed, p1, p2)`` cases; one dict a case with the
    error against the float64 loop and the emulation's counters (:data:`RUNNER_COLUMNS`)."""
    lines = "".join(" ".join(str(x) for x in c) + "\n" for c in cases)
    argv = [str(exe), *(str(int(x)) for x in (resident, jitter_us, hold_us, stall_us))]
    out = subprocess.run(argv, input=lines, capture_output=True, text=True, timeout=900)
    if out.returncode:
        raise RuntimeError(f"the runner failed ({out.returncode}):\n{out.stderr[-3000:]}")
    rows = [line.split() for line in out.stdout.splitlines()]
    if len(rows) != len(cases):
        raise RuntimeError(f"{len(cases)} cases, {len(rows)} results:\n{out.stderr[-3000:]}")
    return [
        {k: float(v) if k == "error" else int(v) for k, v in zip(RUNNER_COLUMNS, r, strict=True)}
        for r in rows
    ]

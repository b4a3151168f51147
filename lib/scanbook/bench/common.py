"""What every benchmark shares: timing, statistics over repeats, device names, result files.

Defined in chapter 1 (timing with warm-up and medians); chapters 3-5 add the device timers and
the result files. Nothing here imports another module of :mod:`scanbook.bench`: each benchmark
module imports this one, and this one imports none of them (no import circle).

* timing: :func:`time_fn`, :func:`time_interleaved` (host clock), :func:`time_device` (CUDA
  events through CuPy), :func:`time_host_sync` (host clock around a call and a synchronisation,
  for JAX and host-array backends), :func:`time_batched` (sub-millisecond calls, repeated
  inside each sample);
* statistics: :class:`Timing` (median, fastest, quartiles, spread, every sample),
  :func:`summarize`, :func:`round_ratios` (per-round ratios of interleaved timings);
* names: :func:`cpu_name`, :func:`device_name`, :func:`gpu_slug`, :func:`gpu_info`;
* result files: :func:`results_dir` (``benchmarks/results``, or ``$SCANBOOK_RESULTS_DIR``),
  :func:`slug`, :func:`header`, :func:`write_json`, :func:`read_json`, :func:`load_records`.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

__all__ = [
    "Timing",
    "summarize",
    "time_fn",
    "time_interleaved",
    "round_ratios",
    "time_batched",
    "time_device",
    "time_host_sync",
    "bytes_per_element",
    "cpu_name",
    "device_name",
    "gpu_slug",
    "gpu_info",
    "slug",
    "results_dir",
    "header",
    "write_json",
    "read_json",
    "load_records",
]


# ----------------------------------------------------------------------------------------------
# statistics over repeats
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """Seconds per call: the median, the fastest, and every timed repetition.

    ``quartiles`` are the first and third quartiles of the samples (both the median for fewer
    than two); ``spread`` is the interquartile range over the median (0.05: the middle half of
    the samples spans 5% of the median); 0 for fewer than two samples.

    Defined in chapter 1.
    """

    median: float
    best: float
    times: tuple[float, ...]

    @property
    def quartiles(self) -> tuple[float, float]:
        if len(self.times) < 2:
            return self.median, self.median
        q1, _, q3 = statistics.quantiles(self.times, n=4, method="inclusive")
        return q1, q3

    @property
    def spread(self) -> float:
        if len(self.times) < 2 or self.median <= 0:
            return 0.0
        q1, q3 = self.quartiles
        return (q3 - q1) / self.median


def summarize(times) -> Timing:
    """A :class:`Timing` of a sequence of seconds (at least one). Defined in chapter 1."""
    times = tuple(float(t) for t in times)
    if not times:
        raise ValueError("times must hold at least one sample; got none")
    return Timing(statistics.median(times), min(times), times)


def _check_repeat(repeat: int) -> None:
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1; got {repeat}")


# ----------------------------------------------------------------------------------------------
# timers
# ----------------------------------------------------------------------------------------------


def time_fn(fn: Callable[[], object], *, warmup: int = 1, repeat: int = 5) -> Timing:
    """Time ``fn()``: ``warmup`` untimed calls (compilation, caches), then ``repeat`` timed ones.

    The median is the number to report: it ignores the odd slow run caused by the machine.
    Defined in chapter 1.
    """
    _check_repeat(repeat)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return summarize(times)


def time_interleaved(
    fns: dict[str, Callable[[], object]], *, warmup: int = 1, repeat: int = 5
) -> dict[str, Timing]:
    """Time several functions in turns: one call of each per round, ``repeat`` rounds.

    On a shared machine the load changes from second to second; taking turns exposes the
    candidates of one round to nearly the same conditions, so the ratio of their times *in
    the same round* wanders far less than the times themselves. A busy machine still disturbs
    single calls, so compare them with :func:`round_ratios` (a median and a spread over the
    rounds), never as the ratio of two medians. The ``times`` of every :class:`Timing`
    returned are in round order. Defined in chapter 1.
    """
    _check_repeat(repeat)
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {n: summarize(t) for n, t in times.items()}


def round_ratios(numerator: Timing, denominator: Timing) -> Timing:
    """The ratio ``numerator / denominator`` of two :func:`time_interleaved` timings, round by
    round, summarised like a timing: its ``median``, ``quartiles`` and ``spread`` say how far
    the rounds agree. Defined in chapter 1.
    """
    if len(numerator.times) != len(denominator.times):
        raise ValueError(
            "numerator and denominator must come from the same interleaved rounds; got "
            f"{len(numerator.times)} and {len(denominator.times)} samples"
        )
    return summarize(n / d for n, d in zip(numerator.times, denominator.times, strict=True))


def time_batched(
    fn: Callable[[], object], repeat: int, warmup: int = 1, *, sample_s: float = 0.02
) -> Timing:
    """Seconds per call over ``repeat`` samples, after ``warmup`` untimed calls.

    Each sample runs ``fn`` enough times to last about ``sample_s`` (at least once) and
    divides, so that sub-millisecond calls are not at the mercy of the timer and of other
    processes. Defined in chapter 5.
    """
    _check_repeat(repeat)
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    number = max(1, min(1000, int(sample_s / max(once, 1e-9))))
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
    return summarize(times)


def time_device(cp, fn, *, warmup: int, repeat: int, budget_s: float = 2.0) -> Timing:
    """Seconds of ``fn()`` on the GPU by CUDA events (``cp`` is the ``cupy`` module).

    ``warmup`` untimed calls, then up to ``repeat`` timed ones; after three, it stops once the
    samples add up to ``budget_s`` (slow kernels get fewer). Defined in chapter 4.
    """
    _check_repeat(repeat)
    for _ in range(warmup):
        fn()
    cp.cuda.Device().synchronize()
    times = []
    start, stop = cp.cuda.Event(), cp.cuda.Event()
    for i in range(repeat):
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, stop) / 1e3)
        if i >= 2 and sum(times) > budget_s:
            break
    return summarize(times)


def time_host_sync(sync, fn, *, warmup: int, repeat: int, budget_s: float = 2.0) -> Timing:
    """Wall-clock seconds of ``sync(fn())`` (JAX: ``sync`` blocks until the result is ready).

    Same warm-up, repeat and budget rules as :func:`time_device`. Defined in chapter 4.
    """
    _check_repeat(repeat)
    for _ in range(warmup):
        sync(fn())
    times = []
    for i in range(repeat):
        t0 = time.perf_counter()
        sync(fn())
        times.append(time.perf_counter() - t0)
        if i >= 2 and sum(times) > budget_s:
            break
    return summarize(times)


def bytes_per_element(dtype=np.float32) -> int:
    """Bytes a linear recurrence moves per element: read ``a`` and ``b``, write ``h``.

    Defined in chapter 1.
    """
    return 3 * np.dtype(dtype).itemsize


# ----------------------------------------------------------------------------------------------
# names of the hardware
# ----------------------------------------------------------------------------------------------


def cpu_name() -> str:
    """The processor's model name (from /proc/cpuinfo on Linux), for labelling results.

    Defined in chapter 1.
    """
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name() -> str:
    """The GPU's name with a GPU, else ``"CPU (<model>)"``. Defined in chapter 5."""
    from .. import backends

    if backends.has_gpu():
        return backends.gpu_name() or "GPU"
    return f"CPU ({cpu_name()})"


def slug(name: str) -> str:
    """``"NVIDIA H200"`` -> ``"nvidia-h200"``: the file name of a GPU's results.

    Defined in chapter 4.
    """
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "gpu"


def gpu_slug() -> str:
    """:func:`slug` of this machine's GPU (``"gpu"`` without one): the result files' stem.

    Defined in chapter 4.
    """
    from .. import backends

    return slug(backends.gpu_name() or "gpu")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def gpu_info(cp) -> dict:
    """The current CUDA device and the software around it, through CuPy (``cp``): ``gpu``,
    ``compute_capability``, ``multiprocessors``, ``memory_bytes``, ``driver``,
    ``cuda_runtime`` and the versions of CuPy, JAX and Numba. Defined in chapter 4.
    """
    rt = cp.cuda.runtime
    dev = cp.cuda.Device()
    props = rt.getDeviceProperties(dev.id)
    name = props["name"]
    name = name.decode() if isinstance(name, bytes) else str(name)
    return {
        "gpu": name,
        "compute_capability": f"{props['major']}.{props['minor']}",
        "multiprocessors": int(dev.attributes["MultiProcessorCount"]),
        "memory_bytes": int(props["totalGlobalMem"]),
        "driver": rt.driverGetVersion(),
        "cuda_runtime": rt.runtimeGetVersion(),
        "cupy": cp.__version__,
        "jax": _version("jax"),
        "jaxlib": _version("jaxlib"),
        "numba": _version("numba"),
        "numba_cuda": _version("numba-cuda"),
    }


# ----------------------------------------------------------------------------------------------
# result files
# ----------------------------------------------------------------------------------------------


def results_dir() -> Path:
    """``benchmarks/results`` of the book's repository (next to ``lib/``), or the folder named
    by the environment variable ``SCANBOOK_RESULTS_DIR`` (the tests and the GPU run point it
    elsewhere). When scanbook is installed from a wheel rather than used from a checkout, a
    ``benchmarks/results`` in or above the working directory is used if there is one.

    Defined in chapter 4.
    """
    override = os.environ.get("SCANBOOK_RESULTS_DIR")
    if override:
        return Path(override)
    # lib/scanbook/bench/common.py -> the repository root is three folders up from bench/
    beside_lib = Path(__file__).resolve().parents[3] / "benchmarks" / "results"
    if beside_lib.is_dir():
        return beside_lib
    # installed from a wheel (Colab): a checkout of the book next to the notebook, if any
    for candidate in (Path("benchmarks", "results"), Path("..", "benchmarks", "results")):
        if candidate.is_dir():
            return candidate.resolve()
    return beside_lib


def header(benchmark: str, **extra) -> dict:
    """The fields every result file starts with: ``benchmark`` (the sub-command's name, which
    the loaders select on), ``date`` (UTC), ``python``, ``numpy`` and ``scanbook`` versions,
    then ``extra``. Defined in chapter 4."""
    from .. import __version__

    return {
        "benchmark": benchmark,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scanbook": __version__,
        **extra,
    }


def write_json(path, result: dict, *, quiet: bool = False) -> Path:
    """Write a benchmark result to ``path`` (indented JSON; folders made) and say so.

    Defined in chapter 1.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, default=float))
    if not quiet:
        print(f"wrote {path}")
    return path


def read_json(path) -> dict | None:
    """One result file as a dict; ``None`` when it is missing, unreadable or not an object.

    Defined in chapter 4.
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def load_records(benchmark: str, path=None, *, keys=("date",)) -> list[dict]:
    """The records of every result file written by ``benchmark``, for plotting.

    ``path``: one file; default: every ``*.json`` in :func:`results_dir`. Files of other
    benchmarks, unreadable files and missing folders are passed over (``[]`` when nothing is
    recorded). Each record is merged over the file's fields named in ``keys`` (the GPU's name,
    the date...), so that a record knows where it was measured. Defined in chapter 4.
    """
    files = [Path(path)] if path is not None else sorted(results_dir().glob("*.json"))
    records: list[dict] = []
    for f in files:
        data = read_json(f) if f.is_file() else None
        if data is None or data.get("benchmark") != benchmark:
            continue
        file_info = {k: data.get(k) for k in keys}
        records += [{**file_info, **r} for r in data.get("records", []) if isinstance(r, dict)]
    return records

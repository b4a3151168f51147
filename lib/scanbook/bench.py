"""Benchmarks: timing with warm-up and medians, achieved bandwidth, results as JSON.

Defined in chapter 1 (the CPU bandwidth benchmark); the GPU benchmark of chapters 3-4 and the
gradient benchmark of chapter 5 run from the same command line::

    python -m scanbook.bench cpu [--elements N] [--channels C] [--repeat R] [--json PATH]
    python -m scanbook.bench gpu  ...   (needs a GPU; see scanbook._bench_gpu)
    python -m scanbook.bench grad ...   (backward/forward time ratios; see scanbook._bench_grad)

Performance is reported as ratios measured in one run: a serial recurrence against a copy of
the same bytes. A float32 linear recurrence reads ``a`` and ``b`` and writes ``h``: 12 bytes an
element, and no implementation can move them faster than memory copies them.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

import scanbook

from . import serial as _serial

__all__ = [
    "Timing",
    "time_fn",
    "time_interleaved",
    "cpu_benchmark",
    "bytes_per_element",
    "write_json",
    "cpu_name",
    "main",
]


@dataclass(frozen=True)
class Timing:
    """Seconds per call: the median, the fastest, and every timed repetition."""

    median: float
    best: float
    times: tuple[float, ...]


def time_fn(fn: Callable[[], object], *, warmup: int = 1, repeat: int = 5) -> Timing:
    """Time ``fn()``: ``warmup`` untimed calls (compilation, caches), then ``repeat`` timed ones.

    The median is the number to report: it ignores the odd slow run caused by the machine.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1; got {repeat}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return Timing(statistics.median(times), min(times), tuple(times))


def time_interleaved(
    fns: dict[str, Callable[[], object]], *, warmup: int = 1, repeat: int = 5
) -> dict[str, Timing]:
    """Time several functions in turns: one call of each per round, ``repeat`` rounds.

    On a shared machine the load changes from second to second; taking turns exposes every
    candidate to the same conditions, so their *ratio* is trustworthy even when the absolute
    times wander. This is how a copy and a recurrence are compared.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1; got {repeat}")
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {n: Timing(statistics.median(t), min(t), tuple(t)) for n, t in times.items()}


def cpu_name() -> str:
    """The processor's model name (from /proc/cpuinfo on Linux), for labelling results."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def bytes_per_element(dtype=np.float32) -> int:
    """Bytes a linear recurrence moves per element: read ``a`` and ``b``, write ``h``."""
    return 3 * np.dtype(dtype).itemsize


def _inputs(T: int, C: int, dtype, seed: int = 0):
    """Random inputs, never zeros: decays in (0.5, 1), impulses standard normal."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 1.0, size=(T, C)).astype(dtype)
    b = rng.standard_normal(size=(T, C)).astype(dtype)
    h0 = rng.standard_normal(size=C).astype(dtype)
    return a, b, h0


def cpu_benchmark(
    n_elements: int = 1 << 24,
    channels: int = 16,
    *,
    repeat: int = 5,
    dtype=np.float32,
    include_numpy: bool = True,
) -> dict:
    """Achieved bandwidth of each serial recurrence against a NumPy copy of the same bytes.

    The copy reads two arrays and writes one, as the recurrence does (``np.add(a, b, out=h)``
    is exactly that traffic and the cheapest arithmetic on it), so both move
    ``12 * n_elements`` bytes for float32. The copy and the Numba recurrence are timed in
    turns (:func:`time_interleaved`), so their ratio holds even on a busy machine. The NumPy
    loop over time (one Python step per time step, slow for few channels) is timed once, and
    only with ``include_numpy``. Every recurrence is checked against the NumPy loop first.

    Returns a JSON-able dict with one record per implementation: median seconds, GB/s and the
    ratio to the copy's GB/s.

    Defined in chapter 1.
    """
    if channels < 1 or n_elements < channels or n_elements % channels:
        raise ValueError(
            f"n_elements must be a positive multiple of channels={channels}; got {n_elements}"
        )
    T = n_elements // channels
    a, b, h0 = _inputs(T, channels, dtype)
    nbytes = bytes_per_element(dtype) * n_elements
    h = np.empty_like(b)

    check = min(T, 4096)
    reference = _serial.linear_recurrence_numpy(a[:check], b[:check], h0)
    got = _serial.linear_recurrence_numba(a[:check], b[:check], h0)
    if not np.allclose(got, reference, rtol=1e-4, atol=1e-4):
        raise AssertionError("the numba recurrence disagrees with the numpy loop")

    timings = time_interleaved(
        {
            "copy (a + b -> h)": lambda: np.add(a, b, out=h),
            "numba @njit": lambda: _serial.linear_recurrence_numba(a, b, h0),
        },
        repeat=repeat,
    )
    if include_numpy:
        timings["numpy loop over T"] = time_fn(
            lambda: _serial.linear_recurrence_numpy(a, b, h0), warmup=0, repeat=1
        )
    records = [
        {"name": name, "median_s": t.median, "bytes": nbytes, "gbps": nbytes / t.median / 1e9}
        for name, t in timings.items()
    ]
    copy_gbps = records[0]["gbps"]
    for r in records:
        r["ratio_to_copy"] = r["gbps"] / copy_gbps
    return {
        "benchmark": "cpu",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": cpu_name(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scanbook": scanbook.__version__,
        "T": T,
        "channels": channels,
        "dtype": np.dtype(dtype).name,
        "n_elements": n_elements,
        "repeat": repeat,
        "records": records,
    }


def write_json(path: str, result: dict) -> None:
    """Write a benchmark result to ``path`` (indented JSON) and say so."""
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {path}")


def _print_table(result: dict) -> None:
    print(
        f"{result['n_elements']:,} {result['dtype']} elements as (T={result['T']:,}, "
        f"channels={result['channels']}), {bytes_per_element(result['dtype'])} bytes an element"
    )
    print(f"{'implementation':34s} {'median ms':>10s} {'GB/s':>8s} {'of copy':>8s}")
    for r in result["records"]:
        print(
            f"{r['name']:34s} {r['median_s'] * 1e3:10.2f} {r['gbps']:8.2f} "
            f"{r['ratio_to_copy']:8.0%}"
        )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "gpu":
        from . import _bench_gpu

        return _bench_gpu.main(argv[1:])
    if argv and argv[0] == "grad":
        from . import _bench_grad

        return _bench_grad.main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m scanbook.bench", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="which", required=True)
    cpu = sub.add_parser("cpu", help="serial recurrences against a copy of the same bytes")
    cpu.add_argument("--elements", type=int, default=1 << 24)
    cpu.add_argument("--channels", type=int, default=16)
    cpu.add_argument("--repeat", type=int, default=5)
    cpu.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    cpu.add_argument("--json", metavar="PATH", help="also write the results to this file")
    cpu.add_argument("--no-numpy", action="store_true", help="skip the slow NumPy loop")
    sub.add_parser("gpu", help="GPU kernels against a device copy (needs a GPU)")
    sub.add_parser("grad", help="backward/forward time ratio of each backend")
    args = parser.parse_args(argv)
    try:
        result = cpu_benchmark(
            args.elements,
            args.channels,
            repeat=args.repeat,
            dtype=args.dtype,
            include_numpy=not args.no_numpy,
        )
    except ValueError as err:
        cpu.error(str(err))  # exits with status 2 and the usage line
    _print_table(result)
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Serial recurrences on the CPU against a copy of the same bytes (chapter 1).

Run it with ``python -m scanbook.bench cpu [--elements N] [--channels C] [--repeat R]
[--dtype float32|float64] [--json PATH] [--no-numpy]``.
"""

from __future__ import annotations

import argparse

import numpy as np

from .. import serial as _serial
from .common import bytes_per_element, cpu_name, header, time_fn, time_interleaved, write_json

__all__ = ["cpu_benchmark", "main"]


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
        {
            "name": name,
            "median_s": t.median,
            "spread": t.spread,
            "bytes": nbytes,
            "gbps": nbytes / t.median / 1e9,
        }
        for name, t in timings.items()
    ]
    copy_gbps = records[0]["gbps"]
    for r in records:
        r["ratio_to_copy"] = r["gbps"] / copy_gbps
    return header(
        "cpu",
        machine=cpu_name(),
        T=T,
        channels=channels,
        dtype=np.dtype(dtype).name,
        n_elements=n_elements,
        repeat=repeat,
        records=records,
    )


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
    """``python -m scanbook.bench cpu``: print the table, optionally write JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m scanbook.bench cpu", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--elements", type=int, default=1 << 24)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--json", metavar="PATH", help="also write the results to this file")
    parser.add_argument("--no-numpy", action="store_true", help="skip the slow NumPy loop")
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
        parser.error(str(err))  # exits with status 2 and the usage line
    _print_table(result)
    if args.json:
        write_json(args.json, result)
    return 0

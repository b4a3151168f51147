"""Serial recurrences on the CPU against a copy of the same bytes (chapter 1).

Run it with ``python -m scanbook.bench cpu [--elements N] [--channels C] [--repeat R]
[--dtype float32|float64] [--json PATH] [--no-numpy]``.
"""

from __future__ import annotations

import argparse

import numpy as np

from .. import serial as _serial
from .common import (
    bytes_per_element,
    cpu_name,
    header,
    round_ratios,
    summarize,
    time_fn,
    time_interleaved,
    write_json,
)

__all__ = ["COPY_LIMIT", "MAX_SPREAD", "cpu_benchmark", "main"]


def _inputs(T: int, C: int, dtype, seed: int = 0):
    """Random inputs, never zeros: decays in (0.5, 1), impulses standard normal."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 1.0, size=(T, C)).astype(dtype)
    b = rng.standard_normal(size=(T, C)).astype(dtype)
    h0 = rng.standard_normal(size=C).astype(dtype)
    return a, b, h0


#: No loop that moves the copy's bytes can beat the copy: a median ratio above this means the
#: copy was disturbed (the margin allows for the timer and for the two loops' code).
COPY_LIMIT = 1.10
#: Rounds whose ratios spread by more than this (interquartile range over the median) disagree
#: too much for their median to be read as a property of the loop.
MAX_SPREAD = 0.25

COPY, NUMBA, NUMPY = "copy (a + b -> h)", "numba @njit", "numpy loop over T"


def cpu_benchmark(
    n_elements: int = 1 << 24,
    channels: int = 16,
    *,
    repeat: int = 15,
    dtype=np.float32,
    include_numpy: bool = True,
) -> dict:
    """Achieved bandwidth of each serial recurrence against a NumPy copy of the same bytes.

    The copy reads two arrays and writes one, as the recurrence does (``np.add(a, b, out=h)``
    is exactly that traffic and the cheapest arithmetic on it), so both move
    ``12 * n_elements`` bytes for float32. Both write into an output allocated once, outside
    the timing, so neither pays for fresh memory pages. The copy and the Numba recurrence are
    timed in turns, ``repeat`` rounds (:func:`time_interleaved`), and compared round by round
    (:func:`round_ratios`): ``ratio_to_copy`` is the median over the rounds of the copy's time
    over the recurrence's, ``ratio_q1`` and ``ratio_q3`` its quartiles. The NumPy loop over
    time (one Python step per time step, slow for few channels) is timed once, and only with
    ``include_numpy``; its ratio is one of medians. Every recurrence is checked against the
    NumPy loop first.

    Nothing that moves the copy's bytes is faster than the copy, so a ratio above
    :data:`COPY_LIMIT`, or per-round ratios spread by more than :data:`MAX_SPREAD`, mean that
    the machine disturbed the measurement; ``warnings`` then says which (it is empty for a
    clean run), and the numbers are not to be read as properties of the loops.

    Returns a JSON-able dict: one record per implementation (median seconds, spread, GB/s,
    ratio to the copy) and the ``warnings``.

    Defined in chapter 1.
    """
    if channels < 1 or n_elements < channels or n_elements % channels:
        raise ValueError(
            f"n_elements must be a positive multiple of channels={channels}; got {n_elements}"
        )
    T = n_elements // channels
    a, b, h0 = _inputs(T, channels, dtype)
    nbytes = bytes_per_element(dtype) * n_elements

    check = min(T, 4096)
    reference = _serial.linear_recurrence_numpy(a[:check], b[:check], h0)
    got = _serial.linear_recurrence_numba(a[:check], b[:check], h0)
    if not np.allclose(got, reference, rtol=1e-4, atol=1e-4):
        raise AssertionError("the numba recurrence disagrees with the numpy loop")

    kernel = _serial._numba_kernel()  # linear_recurrence_numba without its allocation
    h_copy, h_numba = np.empty_like(b), np.empty_like(b)
    timings = time_interleaved(
        {
            COPY: lambda: np.add(a, b, out=h_copy),
            NUMBA: lambda: kernel(a, b, h0, h_numba, False),
        },
        repeat=repeat,
    )
    ratios = {COPY: round_ratios(timings[COPY], timings[COPY])}
    ratios[NUMBA] = round_ratios(timings[COPY], timings[NUMBA])  # fraction of the copy's speed
    if include_numpy:
        timings[NUMPY] = time_fn(
            lambda: _serial.linear_recurrence_numpy(a, b, h0), warmup=0, repeat=1
        )
        ratios[NUMPY] = summarize([timings[COPY].median / timings[NUMPY].median])
    records = []
    for name, t in timings.items():
        r = ratios[name]
        q1, q3 = r.quartiles
        records.append(
            {
                "name": name,
                "median_s": t.median,
                "spread": t.spread,
                "bytes": nbytes,
                "gbps": nbytes / t.median / 1e9,
                "ratio_to_copy": r.median,
                "ratio_q1": q1,
                "ratio_q3": q3,
                "rounds": len(r.times),
            }
        )
    return header(
        "cpu",
        machine=cpu_name(),
        T=T,
        channels=channels,
        dtype=np.dtype(dtype).name,
        n_elements=n_elements,
        repeat=repeat,
        records=records,
        warnings=_warnings(records[1]),
    )


def _warnings(r: dict) -> list[str]:
    """What disturbed an interleaved comparison with the copy (``[]``: nothing seen)."""
    found = []
    if r["ratio_to_copy"] > COPY_LIMIT:
        found.append(
            f"{r['name']} at {r['ratio_to_copy']:.0%} of the copy: faster than a copy of the "
            "same bytes can be, so the copy was slowed down by something else on the machine"
        )
    spread = (r["ratio_q3"] - r["ratio_q1"]) / r["ratio_to_copy"]
    if spread > MAX_SPREAD:
        found.append(
            f"{r['name']}: the middle half of the rounds lies between {r['ratio_q1']:.0%} and "
            f"{r['ratio_q3']:.0%} of the copy, a spread of {spread:.0%}: the machine was busy"
        )
    return found


def _print_table(result: dict) -> None:
    print(
        f"{result['n_elements']:,} {result['dtype']} elements as (T={result['T']:,}, "
        f"channels={result['channels']}), {bytes_per_element(result['dtype'])} bytes an element"
    )
    head = f"{'implementation':24s} {'median ms':>10s} {'GB/s':>8s} {'of copy':>8s}"
    print(f"{head} {'middle half':>14s}")
    for r in result["records"]:
        middle = f"{r['ratio_q1']:.0%}-{r['ratio_q3']:.0%}" if r["rounds"] > 1 else "(one run)"
        print(
            f"{r['name']:24s} {r['median_s'] * 1e3:10.2f} {r['gbps']:8.2f} "
            f"{r['ratio_to_copy']:8.0%} {middle:>14s}"
        )
    print(f"(ratios to the copy: per round, median and middle half of {result['repeat']} rounds)")
    for w in result["warnings"]:
        print("DISTURBED:", w)


def main(argv: list[str] | None = None) -> int:
    """``python -m scanbook.bench cpu``: print the table, optionally write JSON.

    Defined in chapter 1.
    """
    parser = argparse.ArgumentParser(
        prog="python -m scanbook.bench cpu", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--elements", type=int, default=1 << 24)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=15)
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

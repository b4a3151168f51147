"""How much each backend's backward pass costs next to its forward pass (chapter 5).

Defined in chapter 5. Run it with ``python -m scanbook.bench grad [--T N] [--channels C]
[--repeat R] [--json PATH | --save]`` (``--save``: ``benchmarks/results/grad-<device>.json``,
which chapter 5 plots).

For every backend the forward pass ``h = linear_recurrence(a, b, h0)`` and the backward pass
``(da, db, dh0) = vjp(g)`` are timed **in alternating rounds** (:func:`timed_rounds`: one
sample of each per round, after a warm-up call, so both see the same load), and the record
holds the median over the rounds with its quartiles, and the median of the per-round ratio.
Chapter 5 shows that the backward pass is one more recurrence plus two elementwise products,
so where memory bandwidth sets the pace a fused backward pass moves 5 arrays against the
forward pass's 3; the report holds a GPU record against a ratio of at most 2.

* ``numpy``, ``numba``, ``numba_cuda``: :func:`scanbook.linear_recurrence` and
  :func:`scanbook.linear_recurrence_vjp` with that backend (``numba_cuda`` only on a real GPU:
  in the CUDA simulator its timings would measure the simulator, so its record says so);
* ``jax custom VJP``: :func:`scanbook.jax.linear_recurrence`, whose backward pass is the
  reverse recurrence;
* ``jax autodiff``: :func:`scanbook.jax.linear_recurrence_autodiff`, the same scan
  differentiated by JAX itself, straight through ``associative_scan``.

For JAX, two programs are compiled ahead of time (``jax.jit(...).lower(...).compile()``): the
forward pass alone, and the forward pass followed by the pullback of ``g`` (what a training
step runs). They are timed in alternating rounds, and the backward time of a round is the
difference of that round's two samples; ``backward_s`` is the median of these differences
(:func:`difference_summary`). Where that median is not above zero, or the lower quartile of
the differences is not (the rounds do not agree that the backward pass costs anything
measurable), the backward time is **below noise**: ``backward_s`` and ``ratio`` are None,
``backward_below_noise`` is True, and the raw median difference is kept in
``backward_difference_s``. ``residual_bytes`` counts what ``jax.vjp`` keeps from the forward
pass for the backward pass (from shapes, with ``jax.eval_shape``). XLA's
``compiled.memory_analysis()`` of the forward-and-backward program gives
``temp_size_in_bytes`` and ``peak_memory_in_bytes`` (``forward_...`` for the forward program
alone; None where this JAX version does not report them).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np

import scanbook

from .. import backends as _backends
from .common import (
    cpu_name,
    device_name,
    header,
    results_dir,
    slug,
    time_device,
    write_json,
)

__all__ = [
    "ALL",
    "TARGET_RATIO",
    "check_targets",
    "difference_summary",
    "format_backward",
    "run",
    "main",
    "timed_rounds",
]

ALL = ("numpy", "numba", "numba_cuda", "cupy", "jax custom VJP", "jax autodiff")
#: What the report holds a GPU record against: a backward pass of at most this many forward
#: passes (a fused backward pass moves 5 arrays against the forward pass's 3).
TARGET_RATIO = 2.0
#: ``benchmarks/device_run.sh`` runs it so, at chapter 5's sizes (see the contract in
#: :mod:`scanbook.bench`), into ``benchmarks/results/grad-<gpu>.json``.
DEVICE_RUN = ["--save"]
DEVICE_RUN_TIMEOUT_S = 60


def check_targets(records: list[dict]) -> list[dict]:
    """The GPU records of a gradient run held against :data:`TARGET_RATIO`.

    For each backend that runs on a GPU (``numba_cuda``, ``cupy``, the JAX versions) returns
    ``{"kernel", "T", "channels", "what": "bwd/fwd", "need", "value", "met"}`` as
    :func:`scanbook.bench.gpu.check_targets` does; ``value`` and ``met`` are None for a
    skipped backend, one measured on a CPU, and one whose backward time is below noise.
    Defined in chapter 5.
    """
    out = []
    for r in records:
        if r.get("backend") in ("numpy", "numba"):
            continue
        on_gpu = "ratio" in r and not str(r.get("device", "")).startswith("CPU")
        value = float(r["ratio"]) if on_gpu and r["ratio"] is not None else None
        out.append({"kernel": r.get("backend"), "T": r.get("T"), "channels": r.get("channels"),
                    "what": "bwd/fwd", "need": TARGET_RATIO, "value": value,
                    "met": None if value is None else value <= TARGET_RATIO})  # fmt: skip
    return out


def timed_rounds(
    fns: dict[str, Callable[[], object]],
    rounds: int,
    *,
    warmup: int = 1,
    sample_s: float = 0.02,
) -> dict[str, np.ndarray]:
    """Seconds per call of each function, one sample of each per round, ``rounds`` rounds.

    After ``warmup`` untimed calls of each, every function gets a number of calls per sample
    that lasts about ``sample_s`` (at least one; sub-millisecond calls are not at the mercy of
    the timer), and the rounds take the functions in turns, so that all of them see the same
    load (:func:`scanbook.bench.time_interleaved`'s idea, with batched samples). Returns one
    array of ``rounds`` seconds-per-call for each name, in round order: entry ``i`` of two
    arrays comes from the same round. Defined in chapter 5.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1; got {rounds}")
    numbers = {}
    for name, fn in fns.items():
        for _ in range(warmup):
            fn()
        start = time.perf_counter()
        fn()
        once = time.perf_counter() - start
        numbers[name] = max(1, min(1000, int(sample_s / max(once, 1e-9))))
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(numbers[name]):
                fn()
            times[name].append((time.perf_counter() - start) / numbers[name])
    return {name: np.array(t) for name, t in times.items()}


def difference_summary(total, part) -> dict:
    """The backward time from paired samples: ``total - part``, round by round.

    ``total`` and ``part`` are seconds per call from the same rounds (:func:`timed_rounds`):
    the forward-plus-backward program and the forward program. Returns
    ``backward_difference_s`` (median of the differences, whatever its sign),
    ``backward_q1_s`` and ``backward_q3_s`` (their quartiles), ``backward_below_noise``
    (True when the median or the lower quartile is not above zero: the rounds do not agree
    that the backward pass costs anything measurable), ``backward_s`` (the median, or None
    when below noise), ``backward_spread`` (interquartile range over the median, None when
    below noise), and ``ratio`` with ``ratio_q1`` and ``ratio_q3``: the per-round
    ``difference / part``, its median and quartiles (``ratio`` None when below noise).
    Defined in chapter 5.
    """
    total, part = np.asarray(total, dtype=float), np.asarray(part, dtype=float)
    if total.shape != part.shape or total.ndim != 1 or total.size == 0:
        raise ValueError(
            f"total and part must be 1-D arrays of the same, non-zero length; got shapes "
            f"{total.shape} and {part.shape}"
        )
    diff = total - part
    q1, med, q3 = (float(x) for x in np.percentile(diff, [25, 50, 75]))
    r1, rmed, r3 = (float(x) for x in np.percentile(diff / part, [25, 50, 75]))
    below = not (med > 0 and q1 > 0)
    return {
        "backward_difference_s": med,
        "backward_q1_s": q1,
        "backward_q3_s": q3,
        "backward_below_noise": below,
        "backward_s": None if below else med,
        "backward_spread": None if below else (q3 - q1) / med,
        "ratio": None if below else rmed,
        "ratio_q1": r1,
        "ratio_q3": r3,
    }


def _summary(forward, backward) -> dict:
    """Medians, quartiles and the per-round ratio of directly timed passes (host backends)."""
    fq1, fmed, fq3 = (float(x) for x in np.percentile(forward, [25, 50, 75]))
    bq1, bmed, bq3 = (float(x) for x in np.percentile(backward, [25, 50, 75]))
    r1, rmed, r3 = (float(x) for x in np.percentile(backward / forward, [25, 50, 75]))
    return {
        "forward_s": fmed,
        "forward_q1_s": fq1,
        "forward_q3_s": fq3,
        "forward_spread": (fq3 - fq1) / fmed,
        "backward_s": bmed,
        "backward_q1_s": bq1,
        "backward_q3_s": bq3,
        "backward_spread": (bq3 - bq1) / bmed,
        "backward_below_noise": False,
        "ratio": rmed,
        "ratio_q1": r1,
        "ratio_q3": r3,
    }


def format_backward(record: dict) -> str:
    """A record's backward time for a table: ``"0.341 ms ±27%"`` or ``"below noise"``.

    ``±`` gives the spread (interquartile range over the median). Defined in chapter 5.
    """
    if record.get("backward_below_noise") or record.get("backward_s") is None:
        return "below noise"
    spread = record.get("backward_spread")
    text = f"{record['backward_s'] * 1e3:.3f} ms"
    return text if spread is None else f"{text} ±{spread:.0%}"


def _inputs(T: int, C: int, dtype, seed: int = 0):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 1.0, (T, C)).astype(dtype)
    b = rng.standard_normal((T, C)).astype(dtype)
    h0 = rng.standard_normal(C).astype(dtype)
    g = rng.standard_normal((T, C)).astype(dtype)
    return a, b, h0, g


def _cpu_name() -> str:
    return f"CPU ({cpu_name()})"


def _device_name() -> str:
    """The GPU's name with a GPU, else the CPU's."""
    return device_name()


def _host_record(backend: str, a, b, h0, g, repeat: int) -> dict:
    """Forward and backward of one :mod:`scanbook.recurrence` backend on host arrays."""
    fwd = lambda: scanbook.linear_recurrence(a, b, h0, backend=backend)
    h = fwd()
    bwd = lambda: scanbook.linear_recurrence_vjp(a, b, h0, h, g, backend=backend)
    t = timed_rounds({"forward": fwd, "backward": bwd}, repeat)
    return {**_summary(t["forward"], t["backward"]), "rounds": repeat}


def _cupy_record(a, b, h0, g, repeat: int) -> dict:
    """Forward and backward of the ``cupy`` backend on arrays already on the GPU, timed on the
    device with CUDA events (as ``python -m scanbook.bench gpu`` times the kernels)."""
    import cupy as cp

    a, b, h0, g = (cp.asarray(x) for x in (a, b, h0, g))
    h = scanbook.linear_recurrence(a, b, h0, backend="cupy")

    def fwd():
        return scanbook.linear_recurrence(a, b, h0, backend="cupy")

    def bwd():
        return scanbook.linear_recurrence_vjp(a, b, h0, h, g, backend="cupy")

    n = max(repeat, 20)
    forward = time_device(cp, fwd, warmup=2, repeat=n)
    backward = time_device(cp, bwd, warmup=2, repeat=n)
    return {
        "forward_s": forward.median,
        "forward_spread": forward.spread,
        "backward_s": backward.median,
        "backward_spread": backward.spread,
        "backward_below_noise": False,
        "ratio": backward.median / forward.median,
        "timing": "cuda events, arrays on the GPU",
    }


def _jax_record(name: str, a, b, h0, g, repeat: int) -> dict:
    """Forward, and forward plus backward, of a JAX version; residuals and XLA's memory."""
    import jax

    from .. import jax as sbjax

    f = sbjax.linear_recurrence if name == "jax custom VJP" else sbjax.linear_recurrence_autodiff
    a, b, h0, g = (jax.device_put(x) for x in (a, b, h0, g))

    def gradient(a, b, h0, g):  # what a training step runs: forward, then the pullback of g
        _, pullback = jax.vjp(f, a, b, h0)
        return pullback(g)

    def pullback_only(a, b, h0):
        return jax.vjp(f, a, b, h0)[1]

    start = time.perf_counter()
    forward = jax.jit(f).lower(a, b, h0).compile()
    both = jax.jit(gradient).lower(a, b, h0, g).compile()
    compile_s = time.perf_counter() - start
    # the residuals the forward pass hands to the backward pass, from shapes alone
    residuals = jax.tree_util.tree_leaves(jax.eval_shape(pullback_only, a, b, h0))

    t = timed_rounds(
        {
            "forward": lambda: jax.block_until_ready(forward(a, b, h0)),
            "both": lambda: jax.block_until_ready(both(a, b, h0, g)),
        },
        repeat,
    )
    fq1, fmed, fq3 = (float(x) for x in np.percentile(t["forward"], [25, 50, 75]))
    dev = jax.devices()[0]
    record = {
        "forward_s": fmed,
        "forward_q1_s": fq1,
        "forward_q3_s": fq3,
        "forward_spread": (fq3 - fq1) / fmed,
        "forward_backward_s": float(np.median(t["both"])),
        **difference_summary(t["both"], t["forward"]),
        "rounds": repeat,
        "compile_s": compile_s,
        "residual_arrays": len(residuals),
        "residual_bytes": int(sum(x.size * np.dtype(x.dtype).itemsize for x in residuals)),
        "device": _cpu_name() if dev.platform == "cpu" else str(dev.device_kind),
    }
    for prefix, compiled in (("", both), ("forward_", forward)):
        try:
            stats = compiled.memory_analysis()
        except Exception as err:  # noqa: BLE001 - memory analysis is optional in XLA backends
            record["memory_note"] = f"memory_analysis() failed: {type(err).__name__}: {err}"
            continue
        keys = ["temp_size_in_bytes", "peak_memory_in_bytes"]
        if not prefix:
            keys += ["argument_size_in_bytes", "output_size_in_bytes"]
        for key in keys:
            value = None if stats is None else getattr(stats, key, None)
            record[prefix + key] = None if value is None else int(value)
    return record


def run(
    T: int,
    C: int,
    repeat: int = 5,
    backends: Sequence[str] | None = None,
    *,
    dtype: str = "float32",
) -> list[dict]:
    """Time the forward and backward pass of each backend; one JSON-able record each.

    Args:
        T: sequence length; C: channels (the recurrence runs on ``(T, C)`` arrays).
        repeat: rounds, each timing the forward and the backward pass once (in turns,
            :func:`timed_rounds`), after one warm-up call; medians over the rounds are
            reported.
        backends: a subset of :data:`ALL` (default: all of them that this machine has).
        dtype: ``"float32"`` or ``"float64"`` (float64 JAX needs ``jax.enable_x64``).

    Returns:
        Records with ``kernel`` (``"<backend>_grad"``), ``backend``, ``device``, ``T``,
        ``channels``, ``dtype``, ``forward_s`` with ``forward_q1_s``/``forward_q3_s`` (its
        quartiles; not for ``cupy``) and ``forward_spread``, ``backward_s``,
        ``backward_spread``, ``backward_q1_s``/``backward_q3_s``, ``ratio`` (median over the
        rounds of backward over forward) with ``ratio_q1``/``ratio_q3``,
        ``backward_below_noise``, and for JAX ``backward_difference_s``, the residual bytes
        and XLA's memory analysis. A JAX backward time below noise has ``backward_s`` and
        ``ratio`` None (:func:`difference_summary`). A backend that cannot be timed here has
        ``skipped`` with the reason and no timings.

    Defined in chapter 5.
    """
    if T < 1 or C < 1:
        raise ValueError(f"T and C must be at least 1; got T={T}, C={C}")
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1; got {repeat}")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64'; got {dtype!r}")
    wanted = list(ALL if backends is None else backends)
    for name in wanted:
        if name not in ALL:
            raise ValueError(f"backends must be drawn from {list(ALL)}; got {name!r}")
    available = _backends.available_backends()
    a, b, h0, g = _inputs(T, C, dtype)
    device = _device_name()
    records = []
    for name in wanted:
        base = name.split()[0]
        record = {
            "benchmark": "grad",
            "kernel": name.replace(" ", "_") + "_grad",
            "backend": name,
            "device": _cpu_name() if base in ("numpy", "numba") else device,
            "T": T,
            "channels": C,
            "dtype": dtype,
            "repeat": repeat,
        }
        if base not in available:
            record["skipped"] = f"backend {base!r} is not available on this machine"
        elif name == "numba_cuda" and not _backends.has_gpu():
            record["skipped"] = (
                "no GPU: numba_cuda runs in the CUDA simulator, whose timings measure the "
                "simulator, not a GPU"
            )
        elif base == "jax":
            record.update(_jax_record(name, a, b, h0, g, repeat))
        elif base == "cupy":
            record.update(_cupy_record(a, b, h0, g, repeat))
        else:
            record.update(_host_record(name, a, b, h0, g, repeat))
        records.append(record)
    return records


def _mib(x) -> str:
    return "-" if x is None else f"{x / 2**20:.2f}"


def _print_table(records: list[dict]) -> None:
    r0 = records[0]
    print(f"linear recurrence gradients, T={r0['T']:,}, channels={r0['channels']}, {r0['dtype']}")
    rounds = next((r["rounds"] for r in records if "rounds" in r), None)
    if rounds is not None:
        print(
            f"medians over {rounds} rounds (forward and backward timed in turns); ±: the spread, "
            "interquartile range over the median"
        )
    head = f"{'backend':16s} {'fwd ms':>14s} {'bwd ms':>16s} {'bwd/fwd':>8s} {'saved MiB':>10s}"
    print(head + f" {'XLA temp MiB':>13s}  device")
    notes = []
    for r in records:
        if "skipped" in r:
            print(f"{r['backend']:16s} skipped: {r['skipped']}")
            continue
        fwd = f"{r['forward_s'] * 1e3:.3f}"
        if r.get("forward_spread") is not None:
            fwd += f" ±{r['forward_spread']:.0%}"
        ratio = "n/a" if r.get("ratio") is None else f"{r['ratio']:.2f}"
        print(
            f"{r['backend']:16s} {fwd:>14s} {format_backward(r).replace(' ms', ''):>16s} "
            f"{ratio:>8s} {_mib(r.get('residual_bytes')):>10s} "
            f"{_mib(r.get('temp_size_in_bytes')):>13s}  {r['device']}"
        )
        if r.get("backward_below_noise"):
            notes.append(
                f"{r['backend']}: the per-round difference (forward+backward) - forward has "
                f"median {r['backward_difference_s'] * 1e3:.3f} ms, lower quartile "
                f"{r['backward_q1_s'] * 1e3:.3f} ms: not above zero, so no backward time is "
                "measured"
            )
    for note in notes:
        print("  below noise, " + note)


def main(argv: list[str] | None = None) -> int:
    """``python -m scanbook.bench grad``: print the table, optionally write JSON."""
    argv = list(sys.argv[1:] if argv is None else argv)
    p = _backends.profile()
    parser = argparse.ArgumentParser(
        prog="python -m scanbook.bench grad", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--T", type=int, default=p.T, help=f"sequence length (default {p.T})")
    parser.add_argument("--channels", type=int, default=p.channels)
    parser.add_argument("--repeat", type=int, default=p.repeat)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument(
        "--backends", nargs="+", default=None, metavar="NAME", help=f"a subset of {list(ALL)}"
    )
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", metavar="PATH", help="also write the records to this file")
    out.add_argument(
        "--save",
        action="store_true",
        help="also write them to benchmarks/results/grad-<device>.json (what chapter 5 plots)",
    )
    args = parser.parse_args(argv)
    backends = None
    if args.backends:
        backends = [
            n.replace("_custom_vjp", " custom VJP").replace("_autodiff", " autodiff")
            for n in args.backends
        ]
    if args.dtype == "float64":
        import jax

        with jax.enable_x64(True):
            records = run(args.T, args.channels, args.repeat, backends, dtype=args.dtype)
    else:
        records = run(args.T, args.channels, args.repeat, backends, dtype=args.dtype)
    _print_table(records)
    if args.json or args.save:
        device = _device_name()
        path = args.json or results_dir() / f"grad-{slug(device)}.json"
        write_json(path, header("grad", device=device, records=records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How much each backend's backward pass costs next to its forward pass (chapter 5).

Defined in chapter 5. Run it with ``python -m scanbook.bench grad [--T N] [--channels C]
[--repeat R] [--json PATH | --save]`` (``--save``: ``benchmarks/results/grad-<device>.json``,
which chapter 5 plots).

For every backend the forward pass ``h = linear_recurrence(a, b, h0)`` and the backward pass
``(da, db, dh0) = vjp(g)`` are timed separately (median of ``repeat`` runs after a warm-up
call), and their ratio is reported. Chapter 5 shows that the backward pass is one more
recurrence plus two elementwise products, so the ratio should be a little above 1; a GPU
target is at most 2.

* ``numpy``, ``numba``, ``numba_cuda``: :func:`scanbook.linear_recurrence` and
  :func:`scanbook.linear_recurrence_vjp` with that backend (``numba_cuda`` only on a real GPU:
  in the CUDA simulator its timings would measure the simulator, so its record says so);
* ``jax custom VJP``: :func:`scanbook.jax.linear_recurrence`, whose backward pass is the
  reverse recurrence;
* ``jax autodiff``: :func:`scanbook.jax.linear_recurrence_autodiff`, the same scan
  differentiated by JAX itself, straight through ``associative_scan``.

For JAX, two programs are compiled ahead of time (``jax.jit(...).lower(...).compile()``): the
forward pass alone, and the forward pass followed by the pullback of ``g`` (what a training
step runs). The backward time is the difference of their medians (``forward_backward_s -
forward_s``). ``residual_bytes`` counts what ``jax.vjp`` keeps from the forward pass for the
backward pass (from shapes, with ``jax.eval_shape``). XLA's ``compiled.memory_analysis()`` of
the forward-and-backward program gives ``temp_size_in_bytes`` and ``peak_memory_in_bytes``
(``forward_...`` for the forward program alone; None where this JAX version does not report
them).
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
    time_batched,
    time_device,
    write_json,
)

__all__ = ["ALL", "TARGET_RATIO", "check_targets", "run", "main"]

ALL = ("numpy", "numba", "numba_cuda", "cupy", "jax custom VJP", "jax autodiff")
#: The book's target on a GPU: a backward pass costs at most this many forward passes.
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
    skipped backend or one measured on a CPU. Defined in chapter 5.
    """
    out = []
    for r in records:
        if r.get("backend") in ("numpy", "numba"):
            continue
        on_gpu = "ratio" in r and not str(r.get("device", "")).startswith("CPU")
        value = float(r["ratio"]) if on_gpu else None
        out.append({"kernel": r.get("backend"), "T": r.get("T"), "channels": r.get("channels"),
                    "what": "bwd/fwd", "need": TARGET_RATIO, "value": value,
                    "met": None if value is None else value <= TARGET_RATIO})  # fmt: skip
    return out


def _median_time(fn: Callable[[], object], repeat: int, warmup: int = 1) -> float:
    """Median seconds per call (:func:`common.time_batched`: ~20 ms samples)."""
    return time_batched(fn, repeat, warmup).median


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
    forward_s = _median_time(fwd, repeat)
    backward_s = _median_time(bwd, repeat)
    return {"forward_s": forward_s, "backward_s": backward_s}


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
    return {
        "forward_s": time_device(cp, fwd, warmup=2, repeat=n).median,
        "backward_s": time_device(cp, bwd, warmup=2, repeat=n).median,
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

    forward_s = _median_time(lambda: jax.block_until_ready(forward(a, b, h0)), repeat)
    both_s = _median_time(lambda: jax.block_until_ready(both(a, b, h0, g)), repeat)
    dev = jax.devices()[0]
    record = {
        "forward_s": forward_s,
        "backward_s": both_s - forward_s,
        "forward_backward_s": both_s,
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
        repeat: timed repetitions after one warm-up call; the median is reported.
        backends: a subset of :data:`ALL` (default: all of them that this machine has).
        dtype: ``"float32"`` or ``"float64"`` (float64 JAX needs ``jax.enable_x64``).

    Returns:
        Records with ``kernel`` (``"<backend>_grad"``), ``backend``, ``device``, ``T``,
        ``channels``, ``dtype``, ``forward_s``, ``backward_s``, ``ratio`` (backward over
        forward), and for JAX the residual bytes and XLA's memory analysis. A backend that
        cannot be timed here has ``skipped`` with the reason and no timings.

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
        if "forward_s" in record:
            record["ratio"] = record["backward_s"] / record["forward_s"]
        records.append(record)
    return records


def _mib(x) -> str:
    return "-" if x is None else f"{x / 2**20:.2f}"


def _print_table(records: list[dict]) -> None:
    r0 = records[0]
    print(f"linear recurrence gradients, T={r0['T']:,}, channels={r0['channels']}, {r0['dtype']}")
    head = f"{'backend':16s} {'fwd ms':>9s} {'bwd ms':>9s} {'bwd/fwd':>8s} {'saved MiB':>10s}"
    print(head + f" {'XLA temp MiB':>13s}  device")
    for r in records:
        if "skipped" in r:
            print(f"{r['backend']:16s} skipped: {r['skipped']}")
            continue
        print(
            f"{r['backend']:16s} {r['forward_s'] * 1e3:9.3f} {r['backward_s'] * 1e3:9.3f} "
            f"{r['ratio']:8.2f} {_mib(r.get('residual_bytes')):>10s} "
            f"{_mib(r.get('temp_size_in_bytes')):>13s}  {r['device']}"
        )


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

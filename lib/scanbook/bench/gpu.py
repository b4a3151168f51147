"""Each GPU kernel's bandwidth against a device copy of the same bytes (chapters 3 and 4).

Run on a machine with a CUDA GPU, CuPy (and optionally JAX with CUDA)::

    python -m scanbook.bench gpu [--quick] [--repeat 50] [--out PATH]

It writes ``benchmarks/results/<gpu-name-slug>.json`` (after each of its three parts, so that
a run stopped early leaves what it measured), which the chapters plot with :func:`load_results`.
Every kernel is timed on the device with CUDA events (warm-up calls first, then the median of
many timed calls); inputs are random and never zero; each output array is filled with NaN
before the kernel writes it, and after the timing it is checked: no NaN left anywhere, the
first 2048 steps of every channel against a float64 loop, and a window at the end against a
float64 loop started from the kernel's own state.

Records (one per kernel and shape) carry ``kernel``, ``T``, ``channels``, ``dtype``, ``bytes``
(12 an element in float32: read ``a`` and ``b``, write ``h``), ``median_s``, ``gbps`` and
``pct_of_copy`` (against a device-to-device copy of the same number of bytes, measured in the
same run). Defined in chapter 4.
"""

from __future__ import annotations

import argparse
import os
import sys
from functools import partial
from pathlib import Path

import numpy as np

from .. import backends as _backends
from .common import (
    gpu_info,
    header,
    load_records,
    results_dir,
    slug,
    time_device,
    time_host_sync,
    write_json,
)

__all__ = [
    "PAPER_TABLE1",
    "AT_MOST",
    "SINGLE_PASS_TARGET_C",
    "TARGETS",
    "check_targets",
    "format_targets",
    "load_results",
    "main",
    "results_dir",
    "slug",
]

#: Martin & Cundy (2018), Table 1 (K80, batch 1): speedup of their parallel kernel over their
#: serial kernel, {(T, channels): speedup}; the cells the book quotes.
PAPER_TABLE1: dict[tuple[int, int], float] = {
    (16, 4): 0.06,
    (16, 32): 0.06,
    (16, 128): 0.06,
    (4096, 4): 1.02,
    (4096, 32): 2.94,
    (4096, 128): 3.36,
    (65536, 4): 38.5,
    (65536, 32): 41.8,
    (65536, 128): 17.5,
}
TABLE1_T = (16, 256, 4096, 65536, 1 << 20)
TABLE1_C = (4, 32, 128)
#: ``benchmarks/device_run.sh`` runs it so: every part at the sizes chapters 3 and 4 plot
#: (see the contract in :mod:`scanbook.bench`), into ``benchmarks/results/<gpu>.json``.
DEVICE_RUN: list[str] = []
DEVICE_RUN_TIMEOUT_S = 150


def load_results(path=None) -> list[dict]:
    """The records of the GPU benchmark, for plotting; ``[]`` when none are recorded.

    ``path``: one result file; default: every ``benchmarks/results/*.json`` written by this
    benchmark. Each record gets the ``gpu`` name, ``date`` and ``multiprocessors`` of its file.
    Defined in chapter 4.
    """
    return load_records("gpu", path, keys=("gpu", "date", "multiprocessors"))


#: The channel counts at which the single pass must reach the target, forward and backward
#: (the crossover sweep's shapes, T x C = 2^26 float32 elements).
SINGLE_PASS_TARGET_C = (1, 2, 4, 8, 32, 64, 256, 4096, 33792)
#: The book's targets for an H200: (kernel, channels, what, need). ``need`` is a floor, except
#: for the measures in :data:`AT_MOST`, where it is a ceiling.
TARGETS = (
    ("cupy_single_pass", 64, "pct_of_copy", 85.0),
    ("cupy_single_pass", 1, "pct_of_copy", 85.0),
    ("cupy_single_pass", 64, "x_over_jax", 5.0),
    ("cupy_single_pass", 1, "x_over_jax", 5.0),
    *(("crossover_single_pass", C, "pct_of_copy", 85.0) for C in SINGLE_PASS_TARGET_C),
    ("crossover_single_pass_sliced", 1, "pct_of_copy", 85.0),
    *(("crossover_single_pass_vjp", C, "x_of_forward", 2.0) for C in SINGLE_PASS_TARGET_C),
    ("cupy_three_phase", 64, "pct_of_own_floor", 60.0),
    ("cupy_three_phase", 1, "pct_of_own_floor", 60.0),
    ("numba_cuda", 64, "pct_of_copy", 50.0),
    ("numba_cuda", 1, "pct_of_copy", 50.0),
)
#: Measures whose target is a ceiling: the fused gradient's time over the forward pass's.
AT_MOST = frozenset({"x_of_forward"})


def check_targets(records: list[dict]) -> list[dict]:
    """The benchmark's float32 target shapes held against :data:`TARGETS`, for one GPU's run.

    ``records``: one run's records (see ``scanbook.viz.select_gpu``). For each target returns
    ``{"kernel", "T", "channels", "what", "need", "value", "met"}``; ``value`` and ``met`` are
    None where the run has no measurement (a failed or skipped kernel). ``x_over_jax`` is
    ``jax.lax.associative_scan``'s time over the kernel's on the same data;
    ``pct_of_own_floor`` is the three-phase kernel's speed against a copy of its 20 bytes an
    element; ``x_of_forward`` (the crossover sweep's fused gradient) is met at or below its
    ``need`` (:data:`AT_MOST`), every other measure at or above. Defined in chapter 4.
    """
    by = {}
    for r in records:
        if r.get("dtype") == "float32" and "kernel" in r:
            by[(r["kernel"], r.get("channels"))] = r
    out = []
    for kernel, C, what, need in TARGETS:
        r = by.get((kernel, C), {})
        value = None
        if what == "x_over_jax":
            jax_r = by.get(("jax_associative_scan", C), {})
            if r.get("median_s") and jax_r.get("median_s"):
                value = jax_r["median_s"] / r["median_s"]
        elif isinstance(r.get(what), int | float):
            value = float(r[what])
        met = None if value is None else value <= need if what in AT_MOST else value >= need
        out.append({"kernel": kernel, "T": r.get("T"), "channels": C, "what": what,
                    "need": need, "value": value, "met": met})  # fmt: skip
    return out


def format_targets(checked: list[dict]) -> str:
    """:func:`check_targets` as a table of text. Defined in chapter 4."""
    unit = {"pct_of_copy": "% of copy", "pct_of_own_floor": "% of own floor (20 B)",
            "x_over_jax": "x faster than associative_scan",
            "x_of_forward": "x the forward pass's time"}  # fmt: skip
    lines = []
    for c in checked:
        T = "-" if c["T"] is None else f"{c['T']:,}"  # "-": no record of the shape
        need = f"{'<=' if c['what'] in AT_MOST else '>='} {c['need']:g} {unit[c['what']]}"
        got = "not measured" if c["value"] is None else f"{c['value']:.3g}"
        verdict = {True: "met", False: "MISSED", None: "-"}[c["met"]]
        lines.append(f"{c['kernel']:<28} T={T:<11} C={c['channels']:<5} {need:<40} "
                     f"{got:>12}  {verdict}")  # fmt: skip
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# timing and checking on the device
# ----------------------------------------------------------------------------------------------


def _time_device(cp, fn, *, warmup: int, repeat: int, budget_s: float = 2.0) -> float:
    """Median seconds of ``fn()`` by CUDA events (:func:`common.time_device`)."""
    return time_device(cp, fn, warmup=warmup, repeat=repeat, budget_s=budget_s).median


def _time_host(sync, fn, *, warmup: int, repeat: int, budget_s: float = 2.0) -> float:
    """Median wall-clock seconds of ``sync(fn())`` (:func:`common.time_host_sync`)."""
    return time_host_sync(sync, fn, warmup=warmup, repeat=repeat, budget_s=budget_s).median


def _inputs(cp, T: int, C: int, dtype, seed: int = 0):
    """Decays in [0.5, 1) with random signs, impulses and h0 standard normal: never zero."""
    rs = cp.random.RandomState(seed)
    a = rs.uniform(0.5, 1.0, (T, C), dtype=np.float64)
    a *= cp.where(rs.uniform(0, 1, (T, C)) < 0.5, -1.0, 1.0)
    b = rs.standard_normal((T, C), dtype=np.float64)
    b[b == 0] = 0.5
    h0 = rs.standard_normal(C, dtype=np.float64)
    return a.astype(dtype), b.astype(dtype), h0.astype(dtype)


def _check(cp, name, h, a, b, h0, tol) -> None:
    """No NaN left; the first steps and a final window agree with a float64 loop."""
    if bool(cp.isnan(h).any()):
        raise AssertionError(f"{name}: NaN left in the output (an element was not written)")
    T = h.shape[0]
    n = min(T, 2048)
    ah, bh = (cp.asnumpy(x[:n]).astype(np.float64) for x in (a, b))
    want = np.empty_like(ah)
    x = cp.asnumpy(h0).astype(np.float64)
    for t in range(n):
        x = ah[t] * x + bh[t]
        want[t] = x
    got = cp.asnumpy(h[:n]).astype(np.float64)
    err = np.max(np.abs(got - want) / (1 + np.abs(want)))
    if T > n:
        start = T - n
        ah, bh = (cp.asnumpy(x[start:]).astype(np.float64) for x in (a, b))
        x = cp.asnumpy(h[start - 1]).astype(np.float64)
        want = np.empty_like(ah)
        for t in range(n):
            x = ah[t] * x + bh[t]
            want[t] = x
        got = cp.asnumpy(h[start:]).astype(np.float64)
        err = max(err, np.max(np.abs(got - want) / (1 + np.abs(want))))
    if not err <= tol:
        raise AssertionError(f"{name}: relative error {err:.3g} against float64 exceeds {tol:g}")


# ----------------------------------------------------------------------------------------------
# the measurements
# ----------------------------------------------------------------------------------------------


def _bandwidth_records(cp, T, C, dtype, args, log) -> list[dict]:
    from .. import linear_recurrence as sb_linear_recurrence
    from ..kernels import cupy_raw

    itemsize = np.dtype(dtype).itemsize
    n = T * C
    moved = 3 * itemsize * n  # read a, b; write h
    a, b, h0 = _inputs(cp, T, C, dtype)
    tol = 1e-3 if dtype == np.float32 else 1e-9
    out = cp.empty((T, C), dtype)
    records = []

    def record(kernel, seconds, nbytes=moved, **extra):
        r = {
            "kernel": kernel,
            "T": T,
            "channels": C,
            "dtype": np.dtype(dtype).name,
            "bytes": nbytes,
            "median_s": seconds,
            "gbps": nbytes / seconds / 1e9,
            **extra,
        }
        records.append(r)
        log(f"  {kernel:<28} T={T:<9} C={C:<6} {dtype.__name__:<8} {r['gbps']:8.1f} GB/s")
        return r

    # the ceiling: a device-to-device copy moving the same bytes (half read, half written)
    half = moved // 2
    src, dst = cp.empty(half, np.uint8), cp.empty(half, np.uint8)
    rt = cp.cuda.runtime

    def copy():
        rt.memcpyAsync(dst.data.ptr, src.data.ptr, half, rt.memcpyDeviceToDevice, 0)

    t_copy = _time_device(cp, copy, warmup=args.warmup, repeat=args.repeat)
    copy_rec = record("copy", t_copy)
    t = _time_device(cp, lambda: cupy_raw.stream_add(a, b, out), warmup=args.warmup,
                     repeat=args.repeat)  # fmt: skip
    record("stream_add (a+b->h)", t)

    for method in ("single_pass", "three_phase", "serial", "auto"):
        if method == "serial" and C < 32 and T > (1 << 22):
            # one thread walking 2^26 steps: seconds a call, and nothing to learn
            why = "one thread a channel walks all T steps: seconds a call"
            records.append({"kernel": "cupy_serial", "T": T, "channels": C,
                            "dtype": np.dtype(dtype).name, "skipped": why})  # fmt: skip
            continue
        out.fill(np.nan)

        def run(method=method):
            return cupy_raw.linear_recurrence(a, b, h0, method=method, out=out)

        t = _time_device(cp, run, warmup=args.warmup, repeat=args.repeat)
        _check(cp, method, out, a, b, h0, tol)
        extra = {}
        if method == "three_phase":
            extra["floor_gbps_at_20_bytes"] = moved * 5 / 3 / t / 1e9
            extra["pct_of_own_floor"] = 100 * (moved * 5 / 3 / t / 1e9) / copy_rec["gbps"]
        if method == "auto":
            extra["chose"] = cupy_raw.choose_method(T, C, cupy_raw._n_sm(a.device.id))
        record(f"cupy_{method}", t, **extra)

    # numba_cuda (chapter 3), through the public function
    if not args.skip_numba:
        try:
            if "numba_cuda" not in _backends.available_backends():
                raise RuntimeError("numba_cuda backend not available")
            try:  # device arrays first (no transfers); host arrays if that is not supported
                h = sb_linear_recurrence(a, b, h0, backend="numba_cuda")
                h = cp.asarray(h)
                _check(cp, "numba_cuda", h, a, b, h0, tol)

                def run_nb():
                    return sb_linear_recurrence(a, b, h0, backend="numba_cuda")

                t = _time_device(cp, run_nb, warmup=args.warmup, repeat=args.repeat)
                record("numba_cuda", t, timing="cuda events, device arrays")
            except Exception:  # noqa: BLE001 - fall back to host arrays
                ah, bh, h0h = cp.asnumpy(a), cp.asnumpy(b), cp.asnumpy(h0)

                def run_nb_host():
                    return sb_linear_recurrence(ah, bh, h0h, backend="numba_cuda")

                h = cp.asarray(run_nb_host())
                _check(cp, "numba_cuda", h, a, b, h0, tol)
                t = _time_host(lambda _: None, run_nb_host, warmup=1, repeat=args.repeat)
                record("numba_cuda", t, timing="wall clock, host arrays (includes transfers)")
        except Exception as exc:  # noqa: BLE001 - a missing backend must not stop the run
            log(f"  numba_cuda skipped: {type(exc).__name__}: {exc}")
            records.append({"kernel": "numba_cuda", "T": T, "channels": C,
                            "dtype": np.dtype(dtype).name, "error": f"{exc}"[:300]})  # fmt: skip

    # jax.lax.associative_scan on the same data
    if not args.skip_jax:
        try:
            import jax
            import jax.numpy as jnp

            jax.config.update("jax_enable_x64", True)  # float64 inputs stay float64

            if jax.devices()[0].platform != "gpu":
                raise RuntimeError(f"jax runs on {jax.devices()[0].platform}, not on the GPU")

            def combine(x, y):
                return x[0] * y[0], y[0] * x[1] + y[1]

            @jax.jit
            def assoc(a, b, h0):
                b = b.at[0].add(a[0] * h0)
                return jax.lax.associative_scan(combine, (a, b), axis=0)[1]

            ja, jb, jh0 = (jnp.asarray(cp.asnumpy(x)) for x in (a, b, h0))
            h = cp.asarray(np.asarray(assoc(ja, jb, jh0)))
            _check(cp, "jax", h, a, b, h0, tol)
            t = _time_host(lambda x: x.block_until_ready(), lambda: assoc(ja, jb, jh0),
                           warmup=2, repeat=args.repeat)  # fmt: skip
            record("jax_associative_scan", t, timing="wall clock, block_until_ready")
            del ja, jb, jh0, h
        except Exception as exc:  # noqa: BLE001
            log(f"  jax skipped: {type(exc).__name__}: {exc}")
            records.append({"kernel": "jax_associative_scan", "T": T, "channels": C,
                            "dtype": np.dtype(dtype).name, "error": f"{exc}"[:300]})  # fmt: skip

    for r in records:
        if "gbps" in r:
            r["pct_of_copy"] = 100 * r["gbps"] / copy_rec["gbps"]
    return records


def _table1_records(cp, args, log) -> list[dict]:
    """Martin & Cundy's Table 1 again: parallel over serial kernel, batch 1, float32."""
    from ..kernels import cupy_raw

    records = []
    for T in (T for T in TABLE1_T if T <= args.table1_max_T):
        for C in TABLE1_C:
            a, b, h0 = _inputs(cp, T, C, np.float32, seed=T + C)
            times = {}
            for method in ("serial", "three_phase", "single_pass"):
                out = cp.full((T, C), np.nan, np.float32)

                run = partial(cupy_raw.linear_recurrence, a, b, h0, method=method, out=out)
                times[method] = _time_device(cp, run, warmup=args.warmup, repeat=args.repeat)
                _check(cp, method, out, a, b, h0, 1e-3)
            for method in ("three_phase", "single_pass"):
                records.append(
                    {
                        "kernel": f"table1_{method}",
                        "T": T,
                        "channels": C,
                        "dtype": "float32",
                        "bytes": 12 * T * C,
                        "median_s": times[method],
                        "serial_s": times["serial"],
                        "gbps": 12 * T * C / times[method] / 1e9,
                        "speedup_vs_serial": times["serial"] / times[method],
                        "paper_speedup_k80": PAPER_TABLE1.get((T, C)),
                    }
                )
            log(
                f"  Table 1  T={T:<8} C={C:<4} serial {times['serial'] * 1e6:9.1f} us  "
                f"three_phase x{times['serial'] / times['three_phase']:6.2f}  "
                f"single_pass x{times['serial'] / times['single_pass']:6.2f}  "
                f"(paper, K80: {PAPER_TABLE1.get((T, C))})"
            )
    return records


#: The channel counts of the crossover sweep (T = elements / C): the shapes chapter 4's
#: bandwidth model predicts, from one long sequence to 33,792 channels (256 an SM of an H200)
#: and past where "auto" switches to the serial kernel.
CROSSOVER_C = (1, 2, 4, 8, 32, 64, 256, 1024, 4096, 16384, 33792, 65536, 262144)


def _crossover_records(cp, args, log, n_elements: int) -> list[dict]:
    """serial vs single_pass vs three_phase vs auto at fixed T*C for each C of
    :data:`CROSSOVER_C`, each against a copy of the same bytes (``pct_of_copy``); the fused
    gradient (``crossover_single_pass_vjp``: its time over the forward pass's,
    ``x_of_forward``) and, for C = 1, a sliced input whose pointers are not 16-byte aligned
    (``crossover_single_pass_sliced``). Those two carry no ``gbps`` (they are not on the
    12-byte axis of the crossover figure)."""
    from ..kernels import cupy_raw

    records = []
    n_sm = cupy_raw._n_sm(0)
    for C in CROSSOVER_C:
        if C > n_elements // 32:  # sequences of fewer than 32 steps time launches, not kernels
            break
        T = n_elements // C
        moved = 12 * T * C
        a, b, h0 = _inputs(cp, T, C, np.float32, seed=C)
        out = cp.empty((T, C), np.float32)
        src, dst = cp.empty(moved // 2, np.uint8), cp.empty(moved // 2, np.uint8)
        rt = cp.cuda.runtime

        def copy(src=src, dst=dst, half=moved // 2, rt=rt):
            rt.memcpyAsync(dst.data.ptr, src.data.ptr, half, rt.memcpyDeviceToDevice, 0)

        t_copy = _time_device(cp, copy, warmup=args.warmup, repeat=args.repeat)
        base = {"T": T, "channels": C, "dtype": "float32", "bytes": moved}
        records.append({"kernel": "crossover_copy", **base, "median_s": t_copy,
                        "gbps": moved / t_copy / 1e9, "pct_of_copy": 100.0})  # fmt: skip
        times = {}
        for method in ("serial", "single_pass", "three_phase", "auto"):
            if method == "serial" and T > (1 << 20):
                continue
            run = partial(cupy_raw.linear_recurrence, a, b, h0, method=method, out=out)
            out.fill(np.nan)
            run()
            _check(cp, f"crossover {method}", out, a, b, h0, 1e-3)
            t = times[method] = _time_device(cp, run, warmup=args.warmup, repeat=args.repeat)
            extra = {"chose": cupy_raw.choose_method(T, C, n_sm)} if method == "auto" else {}
            records.append({"kernel": f"crossover_{method}", **base, "median_s": t,
                            "gbps": moved / t / 1e9, "pct_of_copy": 100 * t_copy / t,
                            **extra})  # fmt: skip
            log(f"  crossover C={C:<7} {method:<12} {moved / t / 1e9:8.1f} GB/s "
                f"({100 * t_copy / t:5.1f}% of copy)")  # fmt: skip
        # the fused gradient: reads a, g, h and writes da, db (20 bytes an element)
        g = b
        da, db, _ = cupy_raw.linear_recurrence_vjp(a, None, h0, out, g)
        a_next = cp.concatenate([a[1:], cp.zeros((1, C), np.float32)])
        want = cupy_raw.linear_recurrence(a_next, g, reverse=True, method="single_pass")
        if not bool(cp.allclose(db, want, rtol=1e-3, atol=1e-3)) or bool(cp.isnan(da).any()):
            raise AssertionError(f"crossover vjp: wrong gradient at T={T}, C={C}")
        del a_next, want, da, db
        vjp = partial(cupy_raw.linear_recurrence_vjp, a, None, h0, out, g)
        t = _time_device(cp, vjp, warmup=args.warmup, repeat=args.repeat)
        records.append({"kernel": "crossover_single_pass_vjp", **base, "bytes": 20 * T * C,
                        "median_s": t, "pct_of_copy": 100 * t_copy * 20 / 12 / t,
                        "x_of_forward": t / times["single_pass"]})  # fmt: skip
        log(f"  crossover C={C:<7} vjp          {t / times['single_pass']:8.2f} x forward")
        if C == 1:  # views one element into their arrays: no 16-byte vector loads at first
            big = [cp.concatenate([x[:1], x]) for x in (a, b)]
            sa, sb = big[0][1:], big[1][1:]
            sout = cp.empty((T + 1, 1), np.float32)[1:]
            run = partial(cupy_raw.linear_recurrence, sa, sb, h0, method="single_pass", out=sout)
            run()
            _check(cp, "crossover sliced", sout, a, b, h0, 1e-3)
            t = _time_device(cp, run, warmup=args.warmup, repeat=args.repeat)
            records.append({"kernel": "crossover_single_pass_sliced", **base, "median_s": t,
                            "pct_of_copy": 100 * t_copy / t, "offset_bytes": 4})  # fmt: skip
            log(f"  crossover C=1 (sliced)  single_pass {100 * t_copy / t:5.1f}% of copy")
            del big, sa, sb, sout
        cp.get_default_memory_pool().free_all_blocks()
    return records


def main(argv: list[str] | None = None) -> int:
    """``python -m scanbook.bench gpu``: run the GPU benchmark and write the JSON results.

    Defined in chapter 4.
    """
    p = argparse.ArgumentParser(prog="python -m scanbook.bench gpu", description=__doc__)
    p.add_argument("--elements", type=int, default=1 << 26, help="elements of the targets")
    p.add_argument("--repeat", type=int, default=50, help="timed calls (median reported)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="small sizes, few repeats (a smoke test)")
    p.add_argument("--skip-jax", action="store_true")
    p.add_argument("--skip-numba", action="store_true")
    p.add_argument("--skip-table1", action="store_true")
    p.add_argument("--skip-crossover", action="store_true")
    p.add_argument("--table1-max-T", type=int, default=max(TABLE1_T),
                   help="longest sequence of the Table 1 sweep")  # fmt: skip
    p.add_argument("--out", help="result file (default benchmarks/results/<gpu-slug>.json)")
    args = p.parse_args(argv)
    # JAX takes 75% of the GPU's memory at start by default, which would starve CuPy
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    os.environ.setdefault("JAX_ENABLE_X64", "1")  # the float64 targets stay float64 in JAX
    if args.quick:
        args.elements, args.repeat, args.warmup = min(args.elements, 1 << 22), 5, 1

    if not _backends.has_gpu():
        print(
            "scanbook.bench gpu: no CUDA GPU found (or SCANBOOK_DEVICE=cpu); nothing measured. "
            "Run it on a machine with an NVIDIA GPU and `pip install 'scanbook[gpu]'`.",
            file=sys.stderr,
        )
        return 2
    try:
        import cupy as cp
    except ImportError:
        print("scanbook.bench gpu: CuPy is not installed: pip install 'scanbook[gpu]'",
              file=sys.stderr)  # fmt: skip
        return 2

    def log(msg):
        print(msg, flush=True)

    info = gpu_info(cp)
    log(f"GPU benchmark on {info['gpu']} ({info['multiprocessors']} SMs), CuPy {info['cupy']}")
    n = args.elements
    records: list[dict] = []
    path = Path(args.out) if args.out else results_dir() / f"{slug(info['gpu'])}.json"

    def save(part: str) -> None:  # after each part: a run stopped early keeps what it measured
        result = header("gpu", **info, elements=n, repeat=args.repeat, warmup=args.warmup,
                        bytes_per_element="read a, b and write h: 3 x itemsize (12 for float32)",
                        complete=part == "crossover", last_part=part, records=records)  # fmt: skip
        write_json(path, result, quiet=True)
        log(f"wrote {path} ({len(records)} records, through {part})")

    targets = [(max(1, n // 64), 64, np.float32), (n, 1, np.float32),
               (max(1, n // 128), 64, np.float64), (n // 2, 1, np.float64)]  # fmt: skip
    for T, C, dtype in targets:
        records += _bandwidth_records(cp, T, C, dtype, args, log)
        cp.get_default_memory_pool().free_all_blocks()
    save("targets")
    if not args.skip_table1:
        records += _table1_records(cp, args, log)
        save("table1")
    if not args.skip_crossover:
        records += _crossover_records(cp, args, log, n)
    save("crossover")
    log(f"targets (float32, {n:,} elements; the book sets them for 2^26 on an H200):")
    log(format_targets(check_targets(records)))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))

"""DEER (newton, quasi, damped) against the sequential loop as T grows (chapter 9).

Defined in chapter 9. Run it with ``python -m scanbook.bench deer [--preset cpu|gpu|tiny]
[--T N ...] [--hidden n ...] [--methods newton quasi ...] [--batch B] [--repeat R]
[--budget-s S] [--json PATH | --save]`` (``--save``: ``benchmarks/results/deer-<device>.json``,
whose GPU records chapter 9 plots).

The workload follows Lim et al. (2024)'s cell and sizes, with our own random initialisation
(uniform, scaled by ``1/sqrt(fan_in)``; flax uses other initialisers, and the iteration
counts, so the speed-ups, depend on the weights' scale): an untrained GRU cell (reset gate
inside the candidate, as in ``flax.linen.GRUCell``) with hidden size ``n`` and input size
``n``, float32, random inputs, a batch of ``B`` sequences of length ``T`` (``jax.vmap`` over
the batch). For each ``(n, T)``:

* ``sequential``: :func:`scanbook.deer.sequential`, the ``lax.scan`` loop, jitted;
* one record per DEER method: :func:`scanbook.deer.solve` with ``warn=False``, jitted.

Each program is compiled ahead of time (``jax.jit(f).lower(...).compile()``; ``compile_s``)
and run once untimed; DEER's states are then checked against the sequential loop's
(``max_abs_err``; where ``T * B * n`` is small also the loop against a float64 loop,
``ref_err``), and only then timed: ``median_s``, ``best_s`` and ``spread`` (IQR / median) over
``repeat`` runs (fewer once the runs add up to two seconds). ``speedup`` is the sequential
median over the method's. ``jacobian_bytes`` is the size of one iteration's Jacobians
(``B T n^2`` floats for newton and damped, ``B T n`` for quasi); ``xla_temp_bytes`` is XLA's
own count of the compiled program's scratch memory, and ``peak_bytes`` the device's peak
allocation so far in the process (GPUs only; None elsewhere).

Targets on a GPU (:func:`check_targets`): the GRU forward pass at ``T = 100,000`` with hidden
sizes 1 to 8 at least :data:`TARGET_SPEEDUP` times faster by ``newton`` than the sequential
loop; ``quasi`` with hidden 64 at ``T = 1,000,000`` runs within the device's memory.
The million-step ``quasi`` run is not compared with a loop (a million sequential steps would
take most of the time box); its residual, which ``converged`` certifies to be below ``tol``
at every step, is the check, and it is timed once. Configurations are run in order of
priority (the targets first) and those that would start after ``--budget-s`` seconds are
recorded as skipped; the file is rewritten after each one, so a time-boxed run still leaves
its results.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from .common import device_name, header, results_dir, slug, time_host_sync, write_json

__all__ = [
    "PRESETS",
    "TARGET_SPEEDUP",
    "check_targets",
    "gru_cell",
    "gru_problem",
    "main",
    "plan",
    "run",
    "run_one",
    "target_table",
]

METHODS = ("newton", "quasi", "damped")
#: The book's target on a GPU: newton at T = 100,000, hidden 1-8, this many times the loop.
TARGET_SPEEDUP = 100.0
TARGET_T, TARGET_HIDDEN = 100_000, (1, 2, 4, 8)
MEMORY_T, MEMORY_HIDDEN = 1_000_000, 64

#: Sizes per preset: ``(T, hidden, methods)`` configurations in order of priority, the batch,
#: the repeats, the time budget in seconds.
PRESETS = {
    "gpu": {
        "configs": [(TARGET_T, 1, ("newton", "quasi")), (MEMORY_T, MEMORY_HIDDEN, ("quasi",))]
        + [(TARGET_T, n, ("newton", "quasi")) for n in (8, 2, 4)]
        + [(T, n, ("newton", "quasi")) for T in (1_000, 10_000) for n in TARGET_HIDDEN]
        + [(T, 32, ("newton", "quasi")) for T in (1_000, 10_000)],
        "batch": 16,
        "memory_batch": 1,
        "repeat": 5,
        "budget_s": 75.0,
    },
    "cpu": {
        "configs": [(T, n, ("newton", "quasi")) for n in (1, 4) for T in (300, 3_000, 30_000)],
        "batch": 1,
        "memory_batch": 1,
        "repeat": 5,
        "budget_s": 120.0,
    },
    "tiny": {
        "configs": [(T, n, METHODS) for T in (17, 40) for n in (1, 2)],
        "batch": 2,
        "memory_batch": 1,
        "repeat": 2,
        "budget_s": 60.0,
    },
}

#: ``benchmarks/device_run.sh`` runs it so on the GPU machine (see :mod:`scanbook.bench`).
DEVICE_RUN = ["--preset", "gpu", "--save"]
DEVICE_RUN_TIMEOUT_S = 90


# -- the workload ------------------------------------------------------------------------------


def gru_cell(params, h, x):
    """One GRU step in the form of Lim et al.'s benchmark (``flax.linen.GRUCell``).

    ``params = (Wi, Wh, b, bhn)`` with ``Wi`` (n_in, 3n), ``Wh`` (n, 3n), ``b`` (3n,), ``bhn``
    (n,); gates in the order reset, update, candidate. Defined in chapter 9.
    """
    import jax
    import jax.numpy as jnp

    Wi, Wh, b, bhn = params
    xr, xz, xn = jnp.split(x @ Wi + b, 3)
    hr, hz, hn = jnp.split(h @ Wh, 3)
    r = jax.nn.sigmoid(xr + hr)
    z = jax.nn.sigmoid(xz + hz)
    n = jnp.tanh(xn + r * (hn + bhn))
    return (1 - z) * n + z * h


def gru_problem(seed: int, T: int, hidden: int, batch: int, dtype="float32"):
    """``(params, xs, h0)``: uniform weights of scale ``1/sqrt(fan_in)``, normal inputs
    ``xs`` of shape ``(batch, T, hidden)`` and a normal ``h0`` of shape ``(batch, hidden)``.

    Defined in chapter 9.
    """
    import jax
    import jax.numpy as jnp

    key = jax.random.PRNGKey(seed)
    k1, k2, k3, k4, k5, k6 = jax.random.split(key, 6)
    u = lambda k, shape, fan: (jax.random.uniform(k, shape, dtype) * 2 - 1) / fan**0.5
    params = (
        u(k1, (hidden, 3 * hidden), hidden),
        u(k2, (hidden, 3 * hidden), hidden),
        u(k3, (3 * hidden,), hidden),
        u(k4, (hidden,), hidden),
    )
    xs = jax.random.normal(k5, (batch, T, hidden), dtype)
    h0 = jax.random.normal(k6, (batch, hidden), dtype)
    return params, xs, jnp.asarray(h0)


# -- one configuration -------------------------------------------------------------------------


def _compile(fn, *args):
    import jax

    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    seconds = time.perf_counter() - t0
    temp = None
    try:
        analysis = compiled.memory_analysis()
        temp = int(getattr(analysis, "temp_size_in_bytes", None))
    except Exception:  # not every backend reports it
        temp = None
    return compiled, seconds, temp


def _peak_bytes():
    import jax

    try:
        stats = jax.devices()[0].memory_stats() or {}
    except Exception:
        return None
    peak = stats.get("peak_bytes_in_use")
    return int(peak) if peak is not None else None


def _time(fn, repeat):
    import jax

    return time_host_sync(jax.block_until_ready, fn, warmup=0, repeat=repeat, budget_s=2.0)


def _float64_error(params, xs, h0, hs32):
    """Largest difference between the float32 loop and the loop in float64."""
    import jax
    import jax.numpy as jnp

    from .. import deer

    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda a: jnp.asarray(np.asarray(a), jnp.float64), params)
        x64, h64 = (jnp.asarray(np.asarray(a), jnp.float64) for a in (xs, h0))
        ref = jax.jit(jax.vmap(lambda x, h: deer.sequential(gru_cell, p64, x, h)))(x64, h64)
        return float(np.max(np.abs(np.asarray(ref) - np.asarray(hs32, np.float64))))


def run_one(
    T: int,
    hidden: int,
    methods=("newton", "quasi"),
    *,
    batch: int = 1,
    repeat: int = 5,
    sequential: bool = True,
    seed: int = 0,
) -> list[dict]:
    """Records of the sequential loop and of each DEER ``method`` at one size.

    ``sequential=False`` skips the loop (used for the memory target, where one loop of a
    million steps would take most of the time budget); then ``speedup`` is None. A method
    that fails (out of memory, for example) gets a record with ``error``. Defined in chapter 9.
    """
    import jax

    from .. import deer

    for name, value in (("T", T), ("hidden", hidden), ("batch", batch), ("repeat", repeat)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be a positive int; got {value!r}")
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ValueError(f"methods must be a subset of {METHODS}; got {bad}")
    params, xs, h0 = gru_problem(seed, T, hidden, batch)
    base = {"T": int(T), "hidden": int(hidden), "batch": int(batch), "dtype": "float32"}
    records, seq_hs, seq_s = [], None, None

    with jax.default_matmul_precision("highest"):
        if sequential:
            fn = jax.vmap(lambda x, h: deer.sequential(gru_cell, params, x, h))
            compiled, compile_s, temp = _compile(fn, xs, h0)
            seq_hs = jax.block_until_ready(compiled(xs, h0))
            ref_err = None
            if T * batch * hidden <= 200_000:
                try:
                    ref_err = _float64_error(params, xs, h0, seq_hs)
                except Exception:  # a JAX without float64 here: the check is left out
                    ref_err = None
            timing = _time(lambda: compiled(xs, h0), repeat)
            seq_s = timing.median
            records.append(
                {
                    **base,
                    "method": "sequential",
                    "median_s": timing.median,
                    "best_s": timing.best,
                    "spread": timing.spread,
                    "repeats": len(timing.times),
                    "compile_s": compile_s,
                    "xla_temp_bytes": temp,
                    "ref_err": ref_err,
                    "us_per_step": 1e6 * timing.median / T,
                    "peak_bytes": _peak_bytes(),
                }
            )
        for method in methods:

            def fn(x, h, method=method):
                return deer.solve(gru_cell, params, x, h, method=method, warn=False)

            per = hidden if method == "quasi" else hidden * hidden
            rec = {**base, "method": method, "jacobian_bytes": 4 * batch * T * per}
            try:
                compiled, compile_s, temp = _compile(jax.vmap(fn), xs, h0)
                hs, info = jax.block_until_ready(compiled(xs, h0))
                rec.update(
                    compile_s=compile_s,
                    xla_temp_bytes=temp,
                    iterations=int(np.max(np.asarray(info.iterations))),
                    converged=bool(np.all(np.asarray(info.converged))),
                    failed=bool(np.any(np.asarray(info.failed))),
                )
                if seq_hs is not None:
                    rec["max_abs_err"] = float(np.max(np.abs(np.asarray(hs) - np.asarray(seq_hs))))
                timing = _time(lambda compiled=compiled: compiled(xs, h0), repeat)
                rec.update(
                    median_s=timing.median,
                    best_s=timing.best,
                    spread=timing.spread,
                    repeats=len(timing.times),
                    speedup=(seq_s / timing.median) if seq_s else None,
                    peak_bytes=_peak_bytes(),
                )
            except Exception as err:  # out of memory on the device, typically
                rec["error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
            records.append(rec)
    return records


# -- a whole run -------------------------------------------------------------------------------


def plan(preset: str = "cpu", *, T=None, hidden=None, methods=None) -> list[tuple]:
    """The ``(T, hidden, methods, sequential)`` configurations of a run, in priority order.

    Explicit ``T``/``hidden`` lists replace the preset's grid (every combination, with
    ``methods``, default newton and quasi). Defined in chapter 9.
    """
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}; got {preset!r}")
    if T is None and hidden is None:
        configs = PRESETS[preset]["configs"]
        if methods is not None:
            configs = [(t, n, tuple(methods)) for t, n, _ in configs]
    else:
        Ts = list(T) if T is not None else sorted({c[0] for c in PRESETS[preset]["configs"]})
        ns = (
            list(hidden)
            if hidden is not None
            else sorted({c[1] for c in PRESETS[preset]["configs"]})
        )
        configs = [(t, n, tuple(methods or ("newton", "quasi"))) for n in ns for t in Ts]
    # the loop of a million steps is not timed: its speed-up is not a target, its memory is
    return [(t, n, m, not (t >= MEMORY_T and n >= MEMORY_HIDDEN)) for t, n, m in configs]


def run(
    configs,
    *,
    batch: int = 1,
    memory_batch: int = 1,
    repeat: int = 5,
    budget_s: float | None = None,
    on_record=None,
    progress: bool = False,
) -> list[dict]:
    """Every configuration of :func:`plan`; those that would start after ``budget_s`` seconds
    are recorded as ``skipped``. ``on_record(records)`` is called after each configuration
    (to write the file as the run goes). Defined in chapter 9.
    """
    start = time.perf_counter()
    records: list[dict] = []
    for T, n, methods, sequential in configs:
        b = batch if sequential else memory_batch
        if budget_s is not None and time.perf_counter() - start > budget_s:
            records += [
                {"T": T, "hidden": n, "batch": b, "method": m, "skipped": "time budget"}
                for m in (("sequential",) if sequential else ()) + tuple(methods)
            ]
            continue
        if progress:
            print(f"  T={T:,} hidden={n} batch={b} {'/'.join(methods)} ...", flush=True)
        # the memory target is run and timed once: its question is whether it fits
        reps = repeat if sequential else 1
        new = run_one(T, n, methods, batch=b, repeat=reps, sequential=sequential)
        records += new
        if on_record is not None:
            on_record(records)
    return records


# -- targets -----------------------------------------------------------------------------------


def _on_gpu(r: dict) -> bool:
    device = str(r.get("device") or "")
    return bool(device) and not device.startswith("CPU")


def check_targets(records: list[dict]) -> list[dict]:
    """Each GPU target with ``status`` ``"met"``, ``"MISSED"`` or ``"not run"``.

    Rows: ``{"target", "need", "value", "status"}``. Records measured on a CPU count as not
    run. Defined in chapter 9.
    """
    rows = []
    for n in TARGET_HIDDEN:
        match = [
            r
            for r in records
            if r.get("method") == "newton" and r.get("T") == TARGET_T and r.get("hidden") == n
        ]
        r = match[-1] if match else None
        value, status = None, "not run"
        if r is not None and _on_gpu(r) and "skipped" not in r:
            if "error" in r or r.get("speedup") is None:
                status = "MISSED"
            else:
                value = float(r["speedup"])
                ok = value >= TARGET_SPEEDUP and r.get("converged", False)
                status = "met" if ok else "MISSED"
        rows.append(
            {
                "target": f"newton GRU T={TARGET_T:,} hidden {n}: speed-up over the loop",
                "need": f">= {TARGET_SPEEDUP:g}x",
                "value": value,
                "status": status,
            }
        )
    match = [
        r
        for r in records
        if r.get("method") == "quasi"
        and r.get("T") == MEMORY_T
        and r.get("hidden") == MEMORY_HIDDEN
    ]
    r = match[-1] if match else None
    value, status = None, "not run"
    if r is not None and _on_gpu(r) and "skipped" not in r:
        if "error" in r:
            status, value = "MISSED", r["error"]
        elif not r.get("converged", False):
            status, value = "MISSED", "not converged"
        else:
            status, value = "met", r.get("peak_bytes")
    rows.append(
        {
            "target": f"quasi GRU T={MEMORY_T:,} hidden {MEMORY_HIDDEN}: runs in device memory",
            "need": "fits, converges",
            "value": value,
            "status": status,
        }
    )
    return rows


def target_table(rows: list[dict]) -> str:
    """:func:`check_targets`'s rows as text. Defined in chapter 9."""
    lines = [f"{'target':<62s} {'need':>17s} {'value':>12s}  status"]
    for row in rows:
        v = row["value"]
        if isinstance(v, float):
            text = f"{v:.1f}x"
        elif isinstance(v, int):
            text = f"{v / 2**30:.2f} GiB peak"
        else:
            text = "-" if v is None else str(v)[:12]
        lines.append(f"{row['target']:<62s} {row['need']:>17s} {text:>12s}  {row['status']}")
    return "\n".join(lines)


def _print_table(records: list[dict]) -> None:
    print(
        f"{'T':>9s} {'n':>3s} {'B':>3s} {'method':>10s} {'median ms':>10s} {'spread':>7s} "
        f"{'iters':>5s} {'speedup':>8s} {'max err':>8s} {'compile s':>9s}"
    )
    for r in records:
        head = f"{r['T']:>9,} {r['hidden']:>3} {r['batch']:>3} {r['method']:>10s}"
        if "skipped" in r or "error" in r:
            print(f"{head} {r.get('skipped') or r.get('error')}")
            continue
        sp = r.get("speedup")
        err = r.get("max_abs_err")
        print(
            f"{head} {1e3 * r['median_s']:>10.3f} {r['spread']:>7.2f} "
            f"{r.get('iterations', ''):>5} {'' if sp is None else f'{sp:.2f}x':>8s} "
            f"{'' if err is None else f'{err:.1e}':>8s} {r['compile_s']:>9.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    """``python -m scanbook.bench deer``: print the tables, optionally write JSON.

    Defined in chapter 9.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m scanbook.bench deer", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help="sizes: gpu (the targets), cpu, tiny (default: gpu with a GPU, else cpu)",
    )
    parser.add_argument("--T", type=int, nargs="+", default=None, help="sequence lengths")
    parser.add_argument("--hidden", type=int, nargs="+", default=None, help="hidden sizes")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=None)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help="start no configuration after this many seconds",
    )
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", metavar="PATH", help="also write the records to this file")
    out.add_argument(
        "--save",
        action="store_true",
        help="also write them to benchmarks/results/deer-<device>.json",
    )
    args = parser.parse_args(argv)

    import jax

    from .. import backends

    preset = args.preset or ("gpu" if backends.has_gpu() else "cpu")
    settings = PRESETS[preset]
    configs = plan(preset, T=args.T, hidden=args.hidden, methods=args.methods)
    device = device_name()
    platform = jax.devices()[0].platform
    path = None
    if args.json or args.save:
        path = args.json or results_dir() / f"deer-{slug(device)}.json"

    def stamp(records):
        return [{"device": device, "platform": platform, **r} for r in records]

    def save(records, quiet=True):
        if path is not None:
            result = header(
                "deer", device=device, platform=platform, preset=preset, records=stamp(records)
            )
            write_json(path, result, quiet=quiet)

    print(f"DEER against the sequential loop on {device} (JAX on {platform}), preset {preset}")
    records = run(
        configs,
        batch=args.batch or settings["batch"],
        memory_batch=settings["memory_batch"],
        repeat=args.repeat or settings["repeat"],
        budget_s=args.budget_s if args.budget_s is not None else settings["budget_s"],
        on_record=save,
        progress=True,
    )
    _print_table(records)
    save(records, quiet=False)
    print()
    print(target_table(check_targets(stamp(records))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

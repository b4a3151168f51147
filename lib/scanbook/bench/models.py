"""Throughput of the linear-surrogate RNNs: parallel scan against serial loop (chapter 6).

Two measurements, both of training throughput (a forward and a backward pass, events a
second, an event being one time step of one sequence):

* ``table2``: Martin & Cundy's Table 2. For each model (SRU, QRNN(2), QRNN(10), GILR-LSTM,
  which is :mod:`scanbook.models.ls_lstm`), the time of ``mode="serial"`` over the time of
  ``mode="parallel"`` at a fixed number of events ``batch * T`` (65,536 in the paper), with
  ``T`` from 16 to 65,536: the same work, spread over fewer and longer sequences.
* ``heatmap``: LS-LSTM (parallel) against the LSTM (serial) over batch size and ``T``.

Both modes of a model are timed in turns (:func:`common.time_interleaved`), so their ratio holds
even on a busy machine, and their losses are compared before timing. On a GPU (the result files
chapter 6 plots; the paper's sizes, 2 layers of 256)::

    python -m scanbook.bench models --save

On a CPU, small: ``python -m scanbook.bench models --quick``.
"""

from __future__ import annotations

import argparse
import functools
import time

from .common import device_name, header, results_dir, slug, time_interleaved, write_json

__all__ = [
    "DEVICE_RUN",
    "DEVICE_RUN_TIMEOUT_S",
    "PAPER_EVENTS",
    "PAPER_HEATMAP_MAX",
    "PAPER_TABLE2",
    "TABLE2_MODELS",
    "heatmap",
    "main",
    "table2",
    "training_step",
]

# name in the tables -> (module of scanbook.models, init keywords)
TABLE2_MODELS = {
    "sru": ("sru", {}),
    "qrnn2": ("qrnn", {"k": 2}),
    "qrnn10": ("qrnn", {"k": 10}),
    "gilr_lstm": ("ls_lstm", {}),
    "gilr": ("gilr", {}),
    "min_gru": ("min_gru", {}),
    "min_lstm": ("min_lstm", {}),
    "lstm": ("lstm", {}),
}

PAPER_EVENTS = 65536  # batch * T of every row of Martin & Cundy's Table 2
PAPER_TABLE2 = {  # Martin & Cundy (2018), parallel over serial speedup, K80, 2 x 256, bT = 65,536
    16: {"sru": 0.28, "qrnn2": 0.38, "qrnn10": 0.78, "gilr_lstm": 0.61},
    256: {"sru": 0.84, "qrnn2": 0.86, "qrnn10": 0.99, "gilr_lstm": 0.91},
    4096: {"sru": 1.38, "qrnn2": 1.18, "qrnn10": 1.05, "gilr_lstm": 0.98},
    65536: {"sru": 9.21, "qrnn2": 6.68, "qrnn10": 2.05, "gilr_lstm": 1.41},
}
# LS-LSTM over LSTM throughput, at most (small batch, long T): arXiv 1709.04057v1, against
# TensorFlow's BasicLSTMCell (which that version notes is slower than cuDNN's LSTM)
PAPER_HEATMAP_MAX = 175.0

DEVICE_RUN = ["--save", "--repeat", "2", "--batches", "1", "64"]
DEVICE_RUN_TIMEOUT_S = 120


def training_step(
    name: str,
    T: int,
    batch: int,
    *,
    hidden: int,
    layers: int,
    in_dim: int,
    mode: str,
    seed: int = 0,
):
    """A jitted training step of model ``name`` (a key of :data:`TABLE2_MODELS`) and its inputs.

    Returns ``(step, args)``: ``step(*args)`` computes the loss (the mean square of the last
    layer's outputs) and its gradient with respect to every parameter, and blocks until they
    are ready. Random inputs and parameters (never zero). Defined in chapter 6.
    """
    import jax
    import jax.numpy as jnp

    from .. import models

    module, init_kw = TABLE2_MODELS[name]
    k_p, k_x = jax.random.split(jax.random.key(seed))
    params = models.stack.init(k_p, module, in_dim, hidden, layers, **init_kw)
    x = jax.random.normal(k_x, (T, batch, in_dim), jnp.float32)
    grad = _loss_and_grad(module, mode)

    def step(params, x):
        return jax.block_until_ready(grad(params, x))

    return step, (params, x)


@functools.lru_cache(maxsize=64)
def _loss_and_grad(module: str, mode: str):
    """The jitted loss and gradient of a stack of ``module``, one per (module, mode): a size
    measured twice (Table 2, then the heatmap) is compiled once."""
    import jax
    import jax.numpy as jnp

    from .. import models

    def loss(params, x):
        h = models.stack.apply(module, params, x, mode=mode)
        return jnp.mean(h * h)

    return jax.jit(jax.value_and_grad(loss))


def _time_modes(name, T, batch, *, hidden, layers, in_dim, modes, repeat, warmup):
    """Time the modes of one model in turns; the record, with the losses compared."""
    steps, compile_s = {}, {}
    for mode in modes:
        step, args = training_step(
            name, T, batch, hidden=hidden, layers=layers, in_dim=in_dim, mode=mode
        )
        t0 = time.perf_counter()
        loss, _ = step(*args)
        compile_s[mode] = time.perf_counter() - t0
        steps[mode] = (step, args, float(loss))
    losses = [v[2] for v in steps.values()]
    rel = abs(losses[0] - losses[-1]) / max(abs(losses[0]), 1e-30)
    if not rel < 1e-3:
        raise AssertionError(f"{name} T={T}: the modes disagree, losses {losses}")
    timed = {m: (lambda s=s, a=a: s(*a)) for m, (s, a, _) in steps.items()}
    timings = time_interleaved(timed, warmup=warmup - 1 if warmup > 0 else 0, repeat=repeat)
    rec = {
        "model": name,
        "T": T,
        "batch": batch,
        "hidden": hidden,
        "layers": layers,
        "in_dim": in_dim,
        "events": T * batch,
        "loss_rel_diff": rel,
    }
    for m, t in timings.items():
        rec[f"{m}_s"] = t.median
        rec[f"{m}_spread"] = t.spread
        rec[f"{m}_events_per_s"] = T * batch / t.median
        rec[f"{m}_compile_s"] = compile_s[m]
    return rec


def table2(
    models=("sru", "qrnn2", "qrnn10", "gilr_lstm"),
    Ts=(16, 256, 4096, 65536),
    *,
    events: int = 65536,
    hidden: int = 256,
    layers: int = 2,
    in_dim: int | None = None,
    repeat: int = 5,
    warmup: int = 1,
    verbose: bool = True,
) -> list[dict]:
    """Martin & Cundy's Table 2: serial time over parallel time, ``batch = events // T``.

    One record per (model, T) with ``parallel_s``, ``serial_s`` (medians), ``speedup``
    (serial over parallel: above 1, the scan wins), the throughputs and compile times, and the
    paper's speedup at the same ``T`` and batch (``paper_speedup``; None unless ``events`` is
    the paper's :data:`PAPER_EVENTS`, so that a number is only ever put beside one measured at
    the same batch size). ``in_dim`` defaults to ``hidden``. Defined in chapter 6.
    """
    in_dim = hidden if in_dim is None else in_dim
    records = []
    for T in Ts:
        if events % T:
            raise ValueError(f"Ts must divide events = {events}; got T = {T}")
        for name in models:
            rec = _time_modes(
                name,
                T,
                events // T,
                hidden=hidden,
                layers=layers,
                in_dim=in_dim,
                modes=("parallel", "serial"),
                repeat=repeat,
                warmup=warmup,
            )
            rec["speedup"] = rec["serial_s"] / rec["parallel_s"]
            same_sizes = events == PAPER_EVENTS
            rec["paper_speedup"] = PAPER_TABLE2.get(T, {}).get(name) if same_sizes else None
            records.append(rec)
            if verbose:
                paper = rec["paper_speedup"]
                print(
                    f"{name:>10} {T:>7} {rec['batch']:>6} {rec['parallel_s'] * 1e3:>10.2f} "
                    f"{rec['serial_s'] * 1e3:>10.2f} {rec['speedup']:>8.2f} "
                    f"{'-' if paper is None else paper:>6}"
                )
    return records


def heatmap(
    batches=(1, 4, 16, 64, 256),
    Ts=(16, 256, 4096, 65536),
    *,
    hidden: int = 256,
    layers: int = 2,
    in_dim: int | None = None,
    max_events: int = 2**21,
    lstm_T: int | None = None,
    repeat: int = 5,
    warmup: int = 1,
    verbose: bool = True,
) -> list[dict]:
    """Throughput of the LS-LSTM (parallel) at every (batch, T) against the LSTM (serial).

    An LSTM's throughput does not depend on ``T`` (twice the steps take twice the time), so it
    is measured once a batch size, at ``lstm_T`` (default: the smallest of ``Ts`` times 16,
    at most the largest, and at most ``max_events // batch`` so that the LSTM obeys the same
    cap), as in Martin & Cundy's figure. Cells with more than ``max_events`` events are left
    out (memory). Records: ``model`` ("ls_lstm" or "lstm"), ``batch``, ``T``,
    ``events_per_s``, ``median_s``; the LS-LSTM records carry ``ratio`` (over the LSTM at that
    batch size). Defined in chapter 6.
    """
    in_dim = hidden if in_dim is None else in_dim
    records = []
    for batch in batches:
        T_lstm = lstm_T
        if T_lstm is None:
            T_lstm = max(1, min(max(Ts), min(Ts) * 16, max_events // batch))
        lstm = _time_modes(
            "lstm",
            T_lstm,
            batch,
            hidden=hidden,
            layers=layers,
            in_dim=in_dim,
            modes=("serial",),
            repeat=repeat,
            warmup=warmup,
        )
        base = lstm["serial_events_per_s"]
        records.append(
            {
                "model": "lstm",
                "batch": batch,
                "T": T_lstm,
                "events_per_s": base,
                "median_s": lstm["serial_s"],
                "hidden": hidden,
                "layers": layers,
            }
        )
        for T in Ts:
            if batch * T > max_events:
                continue
            rec = _time_modes(
                "gilr_lstm",
                T,
                batch,
                hidden=hidden,
                layers=layers,
                in_dim=in_dim,
                modes=("parallel",),
                repeat=repeat,
                warmup=warmup,
            )
            eps = rec["parallel_events_per_s"]
            records.append(
                {
                    "model": "ls_lstm",
                    "batch": batch,
                    "T": T,
                    "events_per_s": eps,
                    "median_s": rec["parallel_s"],
                    "ratio": eps / base,
                    "hidden": hidden,
                    "layers": layers,
                }
            )
            if verbose:
                print(
                    f"{batch:>6} {T:>7} {eps / 1e3:>12.1f} {base / 1e3:>12.1f} {eps / base:>8.2f}"
                )
    return records


def main(argv: list[str] | None = None) -> int:
    """``python -m scanbook.bench models``: Table 2 and the heat map. Defined in chapter 6."""
    parser = argparse.ArgumentParser(
        prog="python -m scanbook.bench models",
        description="Parallel against serial training throughput of the LS-RNNs (Table 2) "
        "and LS-LSTM against LSTM over batch size and sequence length.",
    )
    parser.add_argument("--what", choices=["table2", "heatmap", "both"], default="both")
    parser.add_argument(
        "--models",
        nargs="+",
        default=["sru", "qrnn2", "qrnn10", "gilr_lstm"],
        choices=sorted(TABLE2_MODELS),
    )
    parser.add_argument("--T", type=int, nargs="+", default=None, help="sequence lengths")
    parser.add_argument("--events", type=int, default=None, help="batch * T for table2")
    parser.add_argument("--batches", type=int, nargs="+", default=None, help="for the heatmap")
    parser.add_argument("--hidden", type=int, default=None)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--max-events", type=int, default=2**21, help="heatmap memory cap")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="CPU sizes: seconds, not minutes")
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--save", action="store_true", help="write to benchmarks/results/")
    args = parser.parse_args(argv)
    quick = args.quick
    Ts = args.T or ([16, 256, 4096] if quick else [16, 256, 4096, 65536])
    events = args.events or (4096 if quick else 65536)
    batches = args.batches or ([1, 16, 256] if quick else [1, 4, 16, 64, 256])
    hidden = args.hidden or (32 if quick else 256)
    if min(Ts) < 1 or events < 1 or min(batches) < 1 or hidden < 1:
        parser.error("--T, --events, --batches and --hidden must be positive")
    if args.what != "heatmap" and any(events % T for T in Ts):
        parser.error(f"every --T must divide --events = {events}; got {Ts}")

    device = device_name()
    path = args.json or (results_dir() / f"models-{slug(device)}.json" if args.save else None)
    settings = {"device": device, "hidden": hidden, "layers": args.layers, "events": events}
    print(f"LS-RNN training throughput on {device}: {args.layers} layers x {hidden}")
    records: list[dict] = []

    def save():  # after each table: a time-out in the second keeps the first
        if path is not None:
            write_json(path, header("models", **settings, records=records), quiet=True)

    if args.what in ("table2", "both"):
        print(f"Table 2: batch x T = {events}; speedup = serial time / parallel time")
        print(
            f"{'model':>10} {'T':>7} {'batch':>6} {'par. ms':>10} {'ser. ms':>10} "
            f"{'speedup':>8} {'paper':>6}"
        )
        for rec in table2(
            args.models, Ts, events=events, hidden=hidden, layers=args.layers, repeat=args.repeat
        ):
            records.append({"table": "table2", **rec})
        save()
    if args.what in ("heatmap", "both"):
        print("LS-LSTM (parallel) against LSTM (serial), thousand events a second")
        print(f"{'batch':>6} {'T':>7} {'LS-LSTM':>12} {'LSTM':>12} {'ratio':>8}")
        for rec in heatmap(
            batches,
            Ts,
            hidden=hidden,
            layers=args.layers,
            max_events=args.max_events,
            repeat=args.repeat,
        ):
            records.append({"table": "heatmap", **rec})
        save()
    if path is not None:
        print(f"wrote {path}")
    return 0

"""Learning the one-bit memorisation task: accuracy against wall-clock time (chapter 7).

LS-LSTM against LSTM (and minGRU). Each model trains on fresh minibatches of Martin & Cundy's
task (:func:`scanbook.tasks.memorisation`) at each sequence length ``T`` until the mean
training accuracy over the last ``window`` steps reaches ``--target``, or ``--budget`` seconds
of training (compilation excluded) have passed. A record per (model, T) says whether and when
it converged (steps and seconds), the time a step takes, and the learning curve (accuracy
against step and wall-clock time, thinned to at most ``--points`` points) for chapter 7.

On a GPU (the result files the chapter plots)::

    python -m scanbook.bench memorise --save                       # T = 1,024 ... 65,536
    python -m scanbook.bench memorise --save --T 65536 262144 --budget 300

On a CPU, small: ``python -m scanbook.bench memorise --T 64 256 --budget 10``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from .common import device_name, header, results_dir, slug, write_json

__all__ = ["MODELS", "race", "main", "DEVICE_RUN", "DEVICE_RUN_TIMEOUT_S"]

# (module of scanbook.models, mode, init keywords): the models chapter 7 compares
MODELS = {
    "ls_lstm": ("ls_lstm", "parallel", {"forget_bias": 5.0}),
    "lstm": ("lstm", "serial", {"forget_bias": 5.0}),
    "min_gru": ("min_gru", "parallel", {}),
}
MIN_GRU_GATE_BIAS = -4.0  # minGRU has no forget gate; its update gate's bias plays the part

DEVICE_RUN = ["--save", "--require-gpu", "--T", "65536", "--budget", "20"]  # about a minute
DEVICE_RUN_TIMEOUT_S = 80


def _thin(values, points: int):
    idx = np.unique(np.linspace(0, len(values) - 1, min(points, len(values))).astype(int))
    return [float(values[i]) for i in idx]


def _moving(acc: np.ndarray, window: int) -> np.ndarray:
    c = np.cumsum(np.insert(acc, 0, 0.0))
    n = np.minimum(np.arange(1, acc.size + 1), window)
    return (c[1:] - c[np.arange(1, acc.size + 1) - n]) / n


def race(
    name: str,
    T: int,
    *,
    batch: int = 32,
    hidden: int = 32,
    in_dim: int = 8,
    layers: int = 1,
    learning_rate: float = 3e-3,
    target: float = 0.95,
    window: int = 10,
    max_steps: int = 20_000,
    budget: float = 30.0,
    seed: int = 0,
    points: int = 200,
    progress: bool = False,
) -> dict:
    """Train model ``name`` (a key of :data:`MODELS`) on the memorisation task at length ``T``.

    Returns a flat record: the settings, ``converged``, ``steps`` taken, ``steps_to_target``
    and ``seconds_to_target`` (None if the target was not reached), ``step_s`` (median seconds a
    step), ``compile_s``, ``final_accuracy`` (mean over the last ``window`` steps), and the
    thinned curve ``curve_step``, ``curve_wall``, ``curve_accuracy`` (the moving mean over
    ``window`` steps). Minibatches are drawn with ``jax.random`` on the device, one key per
    step, so the input never crosses from the host. Defined in chapter 7.
    """
    import jax

    from .. import tasks, train

    if name not in MODELS:
        raise ValueError(f"name must be one of {sorted(MODELS)}; got {name!r}")
    module, mode, init_kw = MODELS[name]
    model = train.stacked(module, layers) if layers > 1 else module
    key_init, key_data = jax.random.split(jax.random.key(seed))
    params = train.init(key_init, model, in_dim, hidden, 2, **init_kw)
    if name == "min_gru":
        params = _min_gru_gate_bias(params, hidden)
    sample = jax.jit(lambda k: tasks.memorisation(k, T, batch, in_dim=in_dim))

    run = train.train(
        model,
        params,
        lambda step: sample(jax.random.fold_in(key_data, step)),
        steps=max_steps,
        mode=mode,
        learning_rate=learning_rate,
        target_accuracy=target,
        window=window,
        time_budget=budget,
        progress=progress,
        desc=f"{name} T={T}",
    )
    hist = run.history()
    smooth = _moving(hist["accuracy"], window)
    step_to, wall_to = train.steps_to_accuracy(run, target, window)
    return {
        "model": name,
        "mode": mode,
        "T": T,
        "batch": batch,
        "hidden": hidden,
        "in_dim": in_dim,
        "layers": layers,
        "learning_rate": learning_rate,
        "target": target,
        "window": window,
        "budget_s": budget,
        "seed": seed,
        "converged": step_to is not None,
        "stopped": run.stopped,
        "steps": len(run.log),
        "steps_to_target": step_to,
        "seconds_to_target": wall_to,
        "step_s": float(np.median(hist["seconds"])),
        "compile_s": run.compile_s,
        "final_accuracy": float(smooth[-1]),
        "curve_step": _thin(hist["step"], points),
        "curve_wall": _thin(hist["wall"], points),
        "curve_accuracy": _thin(smooth, points),
    }


def _min_gru_gate_bias(params: dict, hidden: int) -> dict:
    """Start minGRU's update gate nearly shut (bias :data:`MIN_GRU_GATE_BIAS`), so that its
    state keeps ``1 - sigmoid(-4) = 98%`` of itself a step, as a forget-gate bias does."""
    layers = params["model"] if isinstance(params["model"], list) else [params["model"]]
    for p in layers:
        p["b"] = p["b"].at[:hidden].set(MIN_GRU_GATE_BIAS)
    return params


def main(argv: list[str] | None = None) -> int:
    """``python -m scanbook.bench memorise``: the race to accuracy. Defined in chapter 7."""
    parser = argparse.ArgumentParser(
        prog="python -m scanbook.bench memorise",
        description="Accuracy against wall-clock time on the one-bit memorisation task.",
    )
    parser.add_argument("--T", type=int, nargs="+", default=[1024, 8192, 65536])
    parser.add_argument("--models", nargs="+", default=["ls_lstm", "lstm"], choices=sorted(MODELS))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--max-steps", type=int, default=20_000)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds of training a run")
    parser.add_argument("--points", type=int, default=200, help="points kept of each curve")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--save", action="store_true", help="write to benchmarks/results/")
    parser.add_argument(
        "--require-gpu", action="store_true", help="exit with status 2 unless JAX runs on a GPU"
    )
    args = parser.parse_args(argv)
    if min(args.T) < 1:
        parser.error(f"--T must be at least 1; got {args.T}")
    if args.require_gpu:
        import jax

        if jax.default_backend() != "gpu":
            print(f"JAX runs on {jax.default_backend()}, not a GPU: nothing measured")
            return 2

    device = device_name()
    path = args.json or (results_dir() / f"memorise-{slug(device)}.json" if args.save else None)
    print(f"memorisation task on {device}: budget {args.budget:g} s a run, target {args.target}")
    print(f"{'model':>8} {'T':>8} {'steps':>6} {'to target':>10} {'seconds':>8} {'step ms':>8}")
    records = []
    for T in args.T:
        for name in args.models:
            t0 = time.perf_counter()
            try:
                rec = race(
                    name,
                    T,
                    batch=args.batch,
                    hidden=args.hidden,
                    layers=args.layers,
                    learning_rate=args.lr,
                    target=args.target,
                    max_steps=args.max_steps,
                    budget=args.budget,
                    seed=args.seed,
                    points=args.points,
                )
            except Exception as err:  # one failed run (memory) must not lose the others
                rec = {"model": name, "T": T, "error": f"{type(err).__name__}: {err}"[:300]}
                print(f"{name:>8} {T:>8} failed: {rec['error']}")
            else:
                to = rec["steps_to_target"]
                secs = rec["seconds_to_target"]
                print(
                    f"{name:>8} {T:>8} {rec['steps']:>6} {to if to else '-':>10} "
                    f"{secs if secs is None else round(secs, 2)!s:>8} {rec['step_s'] * 1e3:>8.2f}"
                )
            rec["total_s"] = time.perf_counter() - t0
            records.append(rec)
            if path is not None:  # after every run: a time-out later keeps what is done
                result = header("memorise", device=device, records=records)
                write_json(path, result, quiet=True)
    if path is not None:
        print(f"wrote {path}")
    return 0

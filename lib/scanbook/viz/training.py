"""Figures of training runs: accuracy against wall-clock time (or steps), and the memorisation
benchmark's result files (``python -m scanbook.bench memorise``) as a grid over ``T``.

Defined in chapter 7.
"""

from __future__ import annotations

import numpy as np

from .common import HIGHLIGHT, OTHER_COLORS, day_of, is_num, new_axes, read_results

__all__ = [
    "MODEL_NAMES",
    "curve",
    "plot_accuracy",
    "memorise_records",
    "plot_memorise",
    "describe_memorise",
]

MODEL_NAMES = {
    "ls_lstm": "LS-LSTM",
    "lstm": "LSTM",
    "min_gru": "minGRU",
    "gilr": "GILR",
    "gru": "GRU",
    "sru": "SRU",
    "qrnn": "QRNN",
    "min_lstm": "minLSTM",
}
"""How the figures name the models."""


def _label(name) -> str:
    return MODEL_NAMES.get(str(name), str(name))


def _color(name, i: int) -> str:
    return HIGHLIGHT if name == "ls_lstm" else OTHER_COLORS[i % len(OTHER_COLORS)]


def curve(run, *, x: str = "wall", window: int = 10):
    """``(xs, accuracy)`` of one run: a :class:`scanbook.train.Run`, its ``log`` (a list of
    records), or a benchmark record with ``curve_*`` lists. The accuracy is the moving mean over
    ``window`` steps (benchmark records are already smoothed). ``x``: ``"wall"`` (seconds of
    training) or ``"step"``. Defined in chapter 7.
    """
    if x not in ("wall", "step"):
        raise ValueError(f"x must be 'wall' or 'step'; got {x!r}")
    if isinstance(run, dict):
        xs, acc = run.get(f"curve_{x}"), run.get("curve_accuracy")
        if not isinstance(xs, list) or not isinstance(acc, list) or len(xs) != len(acc):
            return np.array([]), np.array([])
        return np.asarray(xs, float), np.asarray(acc, float)
    log = getattr(run, "log", run)
    if not log:
        return np.array([]), np.array([])
    xs = np.array([r[x] for r in log], float)
    acc = np.array([r["accuracy"] for r in log], float)
    c = np.cumsum(np.insert(acc, 0, 0.0))
    n = np.minimum(np.arange(1, acc.size + 1), window)
    return xs, (c[1:] - c[np.arange(1, acc.size + 1) - n]) / n


def plot_accuracy(runs: dict, *, x: str = "wall", window: int = 10, target=0.95, ax=None):
    """Accuracy against wall-clock time (``x="wall"``) or steps (``x="step"``) of several runs.

    ``runs``: ``{label: run}``, each run as :func:`curve` takes it; a label containing
    ``"LS-LSTM"`` is drawn in the book's highlight colour. ``target`` draws a dashed line
    (None: none). Returns the Figure, or None when no run has a point. Defined in chapter 7.
    """
    curves = {label: curve(r, x=x, window=window) for label, r in runs.items()}
    curves = {k: v for k, v in curves.items() if v[0].size}
    if not curves:
        return None
    ax = new_axes(ax)
    for i, (label, (xs, acc)) in enumerate(curves.items()):
        color = HIGHLIGHT if "LS-LSTM" in label else OTHER_COLORS[i % len(OTHER_COLORS)]
        ax.plot(xs, acc, color=color, label=label)
    if target is not None:
        ax.axhline(target, color="k", ls="--", lw=1, label=f"target {target:.0%}")
    ax.set_ylim(0.4, 1.02)
    ax.set_xlabel("training time (s, compilation excluded)" if x == "wall" else "step")
    ax.set_ylabel(f"accuracy (mean of {window} steps)")
    ax.legend(fontsize="small")
    return ax.figure


def memorise_records(paths=None, *, gpu_only: bool = True) -> list[dict]:
    """The records of the memorisation benchmark's result files, each with its file's
    ``device`` and ``date``; failed records (``error``) and records without a curve are left
    out, and with ``gpu_only`` those measured on a CPU. Of records with the same device, model
    and ``T``, only the newest is kept. Defined in chapter 7.
    """
    newest: dict[tuple, dict] = {}
    for _, data in read_results("memorise", paths):
        device = str(data.get("device") or "unknown device")
        if gpu_only and device.startswith("CPU"):
            continue
        for r in data.get("records") or []:
            if not isinstance(r, dict) or "error" in r or not is_num(r.get("T")):
                continue
            if not curve(r)[0].size:
                continue
            rec = {**r, "device": device, "date": data.get("date")}
            key = (device, rec.get("model"), int(rec["T"]))
            if key not in newest or str(rec["date"]) >= str(newest[key]["date"]):
                newest[key] = rec
    return sorted(newest.values(), key=lambda r: (r["device"], int(r["T"]), str(r.get("model"))))


def plot_memorise(records: list[dict], *, x: str = "wall"):
    """One panel per sequence length ``T``: each model's accuracy against wall-clock time
    (or steps), from :func:`memorise_records`. Returns the Figure, or None with no records.
    Defined in chapter 7.
    """
    records = [r for r in records if curve(r, x=x)[0].size]
    if not records:
        return None
    import matplotlib.pyplot as plt

    Ts = sorted({int(r["T"]) for r in records})
    fig, axes = plt.subplots(
        1, len(Ts), figsize=(3.6 * len(Ts), 3.4), layout="constrained", squeeze=False
    )
    models = sorted({str(r.get("model")) for r in records}, key=lambda m: m != "ls_lstm")
    for ax, T in zip(axes[0], Ts, strict=True):
        for i, m in enumerate(models):
            for r in (r for r in records if int(r["T"]) == T and str(r.get("model")) == m):
                xs, acc = curve(r, x=x)
                ax.plot(xs, acc, color=_color(m, i), label=_label(m))
        ax.axhline(records[0].get("target", 0.95), color="k", ls="--", lw=1)
        ax.set_title(f"T = {T:,}")
        ax.set_ylim(0.4, 1.02)
        ax.set_xlabel("training time (s, log scale)" if x == "wall" else "step")
        if x == "wall":
            from matplotlib.ticker import NullFormatter

            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
    window = records[0].get("window", 10)
    axes[0][0].set_ylabel(f"accuracy (mean of {window} steps)")
    axes[0][0].legend(fontsize="small")
    devices = sorted({str(r.get("device") or "this machine") for r in records})
    date = records[0].get("date")
    fig.suptitle(", ".join(devices) + (f" ({day_of(date)})" if date else ""), fontsize="medium")
    return fig


def describe_memorise(records: list[dict]) -> str:
    """Sentences for the page: for each ``T``, how many steps and seconds each model took to
    reach the target, or that it did not within its budget; or that nothing is recorded.
    Defined in chapter 7.
    """
    if not records:
        return (
            "No GPU result of the memorisation benchmark is recorded yet: run "
            "`python -m scanbook.bench memorise --save` on a GPU and commit the file it writes "
            "to benchmarks/results/."
        )
    lines = []
    for device in sorted({r["device"] for r in records}):
        mine = [r for r in records if r["device"] == device]
        date = mine[0].get("date")
        lines.append(f"On {device}" + (f" ({day_of(date)}):" if date else ":"))
        for T in sorted({int(r["T"]) for r in mine}):
            parts = []
            for r in (r for r in mine if int(r["T"]) == T):
                name = _label(r.get("model"))
                step_ms = r.get("step_s", float("nan")) * 1e3
                if r.get("converged") and is_num(r.get("seconds_to_target")):
                    parts.append(
                        f"{name} reached {r.get('target', 0.95):.0%} after "
                        f"{r['steps_to_target']:,} steps in {r['seconds_to_target']:.1f} s "
                        f"({step_ms:.1f} ms a step)"
                    )
                else:
                    parts.append(
                        f"{name} did not within {r.get('steps', 0):,} steps "
                        f"({r.get('budget_s', float('nan')):g} s; accuracy "
                        f"{r.get('final_accuracy', float('nan')):.2f}, {step_ms:.1f} ms a step)"
                    )
            lines.append(f"- T = {T:,}: " + "; ".join(parts) + ".")
    return "\n".join(lines)

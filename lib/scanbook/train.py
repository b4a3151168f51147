"""A small training loop: a recurrent model, a linear readout, Adam with gradient clipping.

Defined in chapter 7 (:ref:`ch-long-deps`); chapter 8 trains the LMU with it.

The model is any module of :mod:`scanbook.models` (or any object with the same two functions)::

    params = model.init(key, in_dim, hidden, ...)
    h = model.apply(params, x, h0=None, *, mode="parallel" | "serial")   # x, h: (T, batch, .)

:func:`init` puts a linear readout on top: on the **last** state for classification (one label
per sequence, as in the memorisation task and the digits) or on **every** state for
forecasting (a target per step). :func:`train` runs a jitted step (loss, gradient, clipped Adam
update) over a stream of minibatches and logs, for every step, the loss, the accuracy on that
minibatch and the wall-clock time, synchronising after each step so that the times are real.
Compilation happens once, before the first step, and is timed apart (``Run.compile_s``).
The same seed, data and arguments give the same losses, step for step.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Run",
    "init",
    "stacked",
    "predict",
    "loss_fn",
    "make_optimizer",
    "make_step",
    "train",
    "evaluate",
    "steps_to_accuracy",
]

_TASKS = ("classify", "regress")
_READOUTS = ("last", "all")


# ----------------------------------------------------------------------------------------------
# the model and its readout
# ----------------------------------------------------------------------------------------------


def _resolve(model):
    """A model module: one of :mod:`scanbook.models` by name, or anything with init and apply."""
    if isinstance(model, str):
        try:
            return importlib.import_module(f"scanbook.models.{model}")
        except ModuleNotFoundError as err:
            raise ValueError(f"model must name a module of scanbook.models; got {model!r}") from err
    if not (callable(getattr(model, "init", None)) and callable(getattr(model, "apply", None))):
        raise TypeError(
            "model must be a module of scanbook.models (or a name of one, or an object with "
            f"init and apply functions); got {type(model).__name__}"
        )
    return model


def _check_choice(name: str, value, choices) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def _check_positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int >= {minimum}; got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value}")
    return int(value)


def init(key, model, in_dim: int, hidden: int, out_dim: int, **model_kwargs) -> dict:
    """Parameters of ``model`` with a linear readout: ``{"model": ..., "readout": {"W", "b"}}``.

    ``model`` is a module of :mod:`scanbook.models` (``sb.models.ls_lstm``), its name
    (``"ls_lstm"``), or any object with ``init`` and ``apply`` of the same signatures;
    ``model_kwargs`` go to its ``init``. The readout maps the model's state width (read off one
    traced call, so models whose output width is not ``hidden`` work too) to ``out_dim``: the
    number of classes, or the width of a forecast. Its weights start small (Glorot-uniform)
    and its bias at zero. Defined in chapter 7.
    """
    import jax
    import jax.numpy as jnp

    model = _resolve(model)
    in_dim = _check_positive_int("in_dim", in_dim)
    hidden = _check_positive_int("hidden", hidden)
    out_dim = _check_positive_int("out_dim", out_dim)
    key_model, key_out = jax.random.split(key)
    params = model.init(key_model, in_dim, hidden, **model_kwargs)
    probe = jax.ShapeDtypeStruct((1, 1, in_dim), jnp.float32)
    width = jax.eval_shape(lambda p, x: _apply(model, p, x, None), params, probe).shape[-1]
    limit = float(np.sqrt(6.0 / (width + out_dim)))
    W = jax.random.uniform(key_out, (width, out_dim), jnp.float32, -limit, limit)
    return {"model": params, "readout": {"W": W, "b": jnp.zeros((out_dim,), jnp.float32)}}


def _apply(model, params, x, mode):
    """``model.apply`` with ``mode`` passed on, or the model's own default when it is None."""
    if mode is None:
        return model.apply(params, x)
    return model.apply(params, x, mode=mode)


class _Stacked:
    """``layers`` layers of one model behind the one-layer ``init``/``apply`` signature."""

    def __init__(self, model, layers: int):
        self.model = _resolve(model)
        self.layers = layers
        self.__name__ = f"{getattr(self.model, '__name__', 'model').split('.')[-1]} x {layers}"

    def init(self, key, in_dim, hidden, **kw):
        from .models import stack

        return stack.init(key, self.model, in_dim, hidden, layers=self.layers, **kw)

    def apply(self, params, x, h0=None, *, mode=None):
        from .models import stack

        if h0 is not None:
            raise ValueError("h0 must be None for a stacked model (every layer starts at zero)")
        return stack.apply(self.model, params, x, mode=mode)


def stacked(model, layers: int = 2):
    """``layers`` layers of ``model`` (a :mod:`scanbook.models` module or name), each layer's
    states the next one's inputs (:mod:`scanbook.models.stack`), usable wherever a model is:
    ``sb.train.init(key, sb.train.stacked("ls_lstm", 2), ...)``. Defined in chapter 7."""
    layers = _check_positive_int("layers", layers)
    return _Stacked(model, layers)


def predict(model, params, x, *, mode: str | None = None, readout: str = "last"):
    """The readout of the model's states: logits ``(batch, out)`` from the last state
    (``readout="last"``) or outputs ``(T, batch, out)`` from every state (``"all"``).
    Defined in chapter 7."""
    model = _resolve(model)
    _check_choice("readout", readout, _READOUTS)
    h = _apply(model, params["model"], x, mode)
    if readout == "last":
        h = h[-1]
    return h @ params["readout"]["W"] + params["readout"]["b"]


def loss_fn(model, params, x, y, *, mode: str | None = None, task: str = "classify"):
    """``(loss, accuracy)`` on one minibatch.

    ``task="classify"``: softmax cross-entropy of the last state's logits against the integer
    labels ``y`` (batch,), and the share of correct argmax predictions. ``task="regress"``:
    mean squared error of the per-step outputs against ``y`` (T, batch, out); the accuracy is
    NaN (there is none). Defined in chapter 7.
    """
    import jax.numpy as jnp
    import optax

    _check_choice("task", task, _TASKS)
    if task == "classify":
        logits = predict(model, params, x, mode=mode, readout="last")
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        accuracy = jnp.mean(jnp.argmax(logits, axis=-1) == y)
        return loss, accuracy
    out = predict(model, params, x, mode=mode, readout="all")
    return jnp.mean((out - y) ** 2), jnp.float32(jnp.nan)


# ----------------------------------------------------------------------------------------------
# the optimiser and one jitted step
# ----------------------------------------------------------------------------------------------


def make_optimizer(learning_rate: float = 3e-3, clip: float | None = 1.0):
    """Adam (Kingma & Ba 2015), after clipping the gradient's global norm to ``clip``
    (``None``: no clipping). Defined in chapter 7."""
    import optax

    if not (isinstance(learning_rate, (int, float)) and learning_rate > 0):
        raise ValueError(f"learning_rate must be a number > 0; got {learning_rate!r}")
    if clip is None:
        return optax.adam(learning_rate)
    if not (isinstance(clip, (int, float)) and clip > 0):
        raise ValueError(f"clip must be a number > 0 or None; got {clip!r}")
    return optax.chain(optax.clip_by_global_norm(clip), optax.adam(learning_rate))


def make_step(model, optimizer, *, mode: str | None = None, task: str = "classify") -> Callable:
    """One training step, jitted: ``(params, opt_state, x, y) -> (params, opt_state, loss,
    accuracy, grad_norm)``. Defined in chapter 7."""
    import jax
    import optax

    model = _resolve(model)
    _check_choice("task", task, _TASKS)

    def step(params, opt_state, x, y):
        def objective(p):
            return loss_fn(model, p, x, y, mode=mode, task=task)

        (loss, accuracy), grads = jax.value_and_grad(objective, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return params, opt_state, loss, accuracy, optax.tree.norm(grads)

    return jax.jit(step)


# ----------------------------------------------------------------------------------------------
# the loop
# ----------------------------------------------------------------------------------------------


_COMPILED: dict = {}  # (model, settings, argument shapes) -> compiled step; a few entries


def _compiled_step(model, optimizer, settings, opt_state, x, y):
    """The compiled step for these settings and shapes, from a small cache (a second run with
    the same model and shapes, as a determinism check makes, does not compile again)."""
    import jax

    def get(params):
        args = (params, opt_state, x, y)
        spec = jax.tree_util.tree_map(lambda a: (np.shape(a), str(getattr(a, "dtype", ""))), args)
        key = (id(model), settings, str(jax.tree_util.tree_structure(args)), str(spec))
        if key not in _COMPILED:
            if len(_COMPILED) >= 8:
                _COMPILED.pop(next(iter(_COMPILED)))
            step = make_step(model, optimizer, mode=settings[0], task=settings[1])
            _COMPILED[key] = (model, step.lower(*args).compile())  # keep model: id stays unique
        return _COMPILED[key][1]

    return get


@dataclass
class Run:
    """What :func:`train` returns: the trained parameters and one record per step.

    ``log`` is a list of dicts with keys ``step`` (1, 2, ...), ``loss``, ``accuracy`` (NaN for
    regression), ``grad_norm``, ``seconds`` (that step's wall-clock time) and ``wall`` (the
    time since the first step began, compilation excluded). ``compile_s`` is the compilation
    time; ``stopped`` says why the loop ended: ``"steps"``, ``"target"`` (the moving accuracy
    reached ``target_accuracy``) or ``"time"`` (``time_budget`` spent). Defined in chapter 7.
    """

    params: dict
    log: list[dict] = field(default_factory=list)
    compile_s: float = 0.0
    stopped: str = "steps"

    def history(self) -> dict[str, np.ndarray]:
        """The log as columns: ``{"step": array, "loss": array, ...}`` (easy to plot)."""
        if not self.log:
            return {}
        return {k: np.array([r[k] for r in self.log]) for k in self.log[0]}


def _batches(data) -> Callable[[int], tuple]:
    if callable(data):
        return data
    if isinstance(data, Iterator) or isinstance(data, Iterable):
        iterator = iter(data)
        return lambda step: next(iterator)
    raise TypeError(
        "data must be a function step -> (x, y) or an iterator of (x, y) minibatches; "
        f"got {type(data).__name__}"
    )


def _moving(values: list[float], window: int) -> float:
    return float(np.mean(values[-window:]))


def train(
    model,
    params: dict,
    data,
    *,
    steps: int,
    task: str = "classify",
    mode: str | None = None,
    learning_rate: float = 3e-3,
    clip: float | None = 1.0,
    target_accuracy: float | None = None,
    window: int = 10,
    time_budget: float | None = None,
    progress: bool = True,
    desc: str | None = None,
) -> Run:
    """Train ``params`` (from :func:`init`) on minibatches from ``data`` for up to ``steps`` steps.

    Args:
        model: a :mod:`scanbook.models` module, its name, or an object with init and apply.
        params: ``{"model": ..., "readout": ...}`` as :func:`init` makes them.
        data: a function ``step -> (x, y)`` (step counts from 0) or an iterator of ``(x, y)``.
            Every minibatch must have the same shapes (one compilation); ``x`` is
            ``(T, batch, in_dim)``, ``y`` integer labels ``(batch,)`` or targets ``(T, batch,
            out)``.
        steps: the most steps to take (>= 1).
        task: ``"classify"`` (cross-entropy on the last state) or ``"regress"`` (mean squared
            error at every step).
        mode: passed to the model's ``apply``: ``"parallel"`` (a scan over time) or
            ``"serial"`` (a loop over time); None: the model's default.
        learning_rate, clip: Adam's step size and the global gradient-norm clip
            (:func:`make_optimizer`).
        target_accuracy: stop once the mean accuracy over the last ``window`` steps reaches it.
        time_budget: stop once this many seconds of training (compilation excluded) have passed.
        progress: show a progress bar (``tqdm.auto``: a widget in notebooks, text elsewhere).
        desc: the progress bar's label.

    Returns:
        a :class:`Run`: trained parameters, a record per step, the compile time, why it stopped.

    Defined in chapter 7.
    """
    import jax
    from tqdm.auto import tqdm

    model = _resolve(model)
    steps = _check_positive_int("steps", steps)
    window = _check_positive_int("window", window)
    _check_choice("task", task, _TASKS)
    if target_accuracy is not None and not (0.0 < float(target_accuracy) <= 1.0):
        raise ValueError(f"target_accuracy must lie in (0, 1] or be None; got {target_accuracy}")
    if time_budget is not None and not float(time_budget) > 0:
        raise ValueError(f"time_budget must be a number of seconds > 0 or None; got {time_budget}")
    if not isinstance(params, dict) or set(params) != {"model", "readout"}:
        raise ValueError("params must be the dict {'model': ..., 'readout': ...} made by init")
    next_batch = _batches(data)

    optimizer = make_optimizer(learning_rate, clip)
    opt_state = optimizer.init(params)
    x, y = next_batch(0)
    start = time.perf_counter()
    compiled = _compiled_step(model, optimizer, (mode, task, learning_rate, clip), opt_state, x, y)
    compiled = compiled(params)
    run = Run(params, compile_s=time.perf_counter() - start)
    shapes = (np.shape(x), np.shape(y))

    bar = tqdm(total=steps, desc=desc, disable=not progress, leave=True)
    accuracies: list[float] = []
    wall = 0.0
    try:
        for step in range(steps):
            if step > 0:
                x, y = next_batch(step)
                if (np.shape(x), np.shape(y)) != shapes:
                    raise ValueError(
                        f"data must give minibatches of one shape; step 0 gave x {shapes[0]}, "
                        f"y {shapes[1]}, step {step} gave x {np.shape(x)}, y {np.shape(y)}"
                    )
            jax.block_until_ready((x, y))  # drawing the minibatch is not part of the step time
            t0 = time.perf_counter()
            params, opt_state, loss, acc, gnorm = compiled(params, opt_state, x, y)
            loss, acc, gnorm = jax.device_get((loss, acc, gnorm))  # waits for the step to finish
            seconds = time.perf_counter() - t0
            wall += seconds
            record = {
                "step": step + 1,
                "loss": float(loss),
                "accuracy": float(acc),
                "grad_norm": float(gnorm),
                "seconds": seconds,
                "wall": wall,
            }
            run.log.append(record)
            accuracies.append(float(acc))
            bar.update(1)
            if step % 10 == 0 or step == steps - 1:
                post = {"loss": f"{float(loss):.3f}"}
                if task == "classify":
                    post["acc"] = f"{_moving(accuracies, window):.2f}"
                bar.set_postfix(post, refresh=False)
            if (
                target_accuracy is not None
                and len(accuracies) >= window
                and _moving(accuracies, window) >= target_accuracy
            ):
                run.stopped = "target"
                break
            if time_budget is not None and wall >= time_budget:
                run.stopped = "time"
                break
    finally:
        bar.close()
    run.params = params
    return run


def evaluate(model, params: dict, x, y, *, mode: str | None = None, task: str = "classify"):
    """Loss and accuracy of ``params`` on a whole data set at once (no gradient):
    ``{"loss": float, "accuracy": float}``. Defined in chapter 7."""
    import jax

    model = _resolve(model)
    _check_choice("task", task, _TASKS)
    key = (id(model), mode, task)
    if key not in _EVALUATORS:
        fn = jax.jit(lambda p, x, y: loss_fn(model, p, x, y, mode=mode, task=task))
        _EVALUATORS[key] = (model, fn)  # keep model: its id stays unique
    loss, acc = _EVALUATORS[key][1](params, x, y)
    return {"loss": float(loss), "accuracy": float(acc)}


_EVALUATORS: dict = {}


def steps_to_accuracy(run_or_log, target: float = 0.95, window: int = 10):
    """The first step (and its wall-clock time) at which the mean accuracy over the last
    ``window`` steps reaches ``target``: ``(step, wall)``, or ``(None, None)`` if it never does.
    Defined in chapter 7."""
    log = run_or_log.log if isinstance(run_or_log, Run) else list(run_or_log)
    window = _check_positive_int("window", window)
    accs = [r["accuracy"] for r in log]
    for i in range(window - 1, len(accs)):
        if np.mean(accs[i - window + 1 : i + 1]) >= target:
            return log[i]["step"], log[i]["wall"]
    return None, None

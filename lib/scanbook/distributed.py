"""A linear recurrence sharded along time across the devices of a JAX mesh.

Defined in chapter 10.

Chapter 2's chunked scan (Martin & Cundy 2018, Algorithm 1) splits a sequence of ``T``
steps into ``p`` contiguous chunks and needs only ``p`` numbers per channel to cross between
the workers. Here the workers are devices (GPUs, or simulated CPU devices), the chunks are
the shards of a time-sharded array, and the three phases are:

1. **local scan**: every device scans its own chunk from a zero state, keeping the running
   product of its decays: ``P[t] = a[t] ... a[s]`` and ``u[t]`` (the chunk's states from
   zero), with ``s`` the chunk's first step. The chunk as a whole is the affine map
   ``h -> P[-1] h + u[-1]``: its **summary**, two numbers per channel.
2. **exchange**: the ``p`` summaries are all-gathered (every device receives all of them)
   and every device scans them, ``C[i] = P_i C[i-1] + U_i`` with ``C[-1] = h0``, to find
   the state carried into its chunk, ``C[i-1]``.
3. **fix-up**: ``h[t] = u[t] + P[t] * C[i-1]``: one multiply-add per element, no
   communication.

Only the summaries travel: ``2 x channels`` numbers per device, against ``2 x channels x
T / p`` to gather the whole sequence on one device. :func:`communication_bytes` counts both
and :func:`collective_bytes` reads them off the compiled program.

The gradient (a custom VJP) is the reverse recurrence of chapter 5,
``db[t] = g[t] + a[t+1] db[t+1]``, run by the same sharded algorithm from the other end;
``da[t] = db[t] h[t-1]``, ``dh0 = a[0] db[0]``. :func:`matrix_linear_recurrence` does the
same for ``h[t] = A[t] @ h[t-1] + b[t]`` (summaries are ``n x n`` matrices), which is what
one Newton step of DEER (chapter 9) solves; :func:`deer_newton` runs DEER's plain Newton
iteration with it, every step of the sequence on its own device's shard.

When ``T`` is not a multiple of the device count the sequence is padded with identity steps;
the result then comes back replicated on every device, at the cost of an all-gather of the
whole result (see :func:`linear_recurrence`).
"""

from __future__ import annotations

import re
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from . import jax as sbjax

__all__ = [
    "collective_bytes",
    "communication_bytes",
    "deer_newton",
    "linear_recurrence",
    "make_mesh",
    "matrix_linear_recurrence",
]

DEFAULT_AXIS = "time"


# -- the mesh --------------------------------------------------------------------------------


def make_mesh(n_devices: int | None = None, axis: str = DEFAULT_AXIS, *, devices=None) -> Mesh:
    """A 1-D mesh named ``axis`` over the first ``n_devices`` of ``devices`` (all: None).

    ``devices`` defaults to ``jax.devices()`` (the default backend's: the GPUs where there
    are any); ``jax.devices("cpu")`` gives the (simulated) CPU devices.

    Defined in chapter 10.
    """
    devices = list(jax.devices() if devices is None else devices)
    if n_devices is None:
        n_devices = len(devices)
    if isinstance(n_devices, bool) or not isinstance(n_devices, int | np.integer):
        raise TypeError(f"n_devices must be an int or None; got {type(n_devices).__name__}")
    if not 1 <= n_devices <= len(devices):
        raise ValueError(
            f"n_devices must be between 1 and the {len(devices)} devices JAX sees; got {n_devices}"
        )
    if not isinstance(axis, str):
        raise TypeError(f"axis must be a str (a mesh axis name); got {type(axis).__name__}")
    return Mesh(np.array(devices[: int(n_devices)]), (axis,))


def _resolve_mesh(mesh, axis) -> tuple[Mesh, str]:
    if mesh is None:
        mesh = make_mesh(axis=DEFAULT_AXIS if axis is None else axis)
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh or None; got {type(mesh).__name__}")
    names = tuple(mesh.axis_names)
    if axis is None:
        if len(names) != 1:
            raise ValueError(
                f"axis must name the mesh axis to shard time along; the mesh has axes {names}"
            )
        axis = names[0]
    if axis not in names:
        raise ValueError(f"axis must be one of the mesh's axes {names}; got {axis!r}")
    return mesh, axis


# -- the three phases, on one device's chunk (inside shard_map) --------------------------------


def _scalar_compose(earlier, later):
    return sbjax._affine_combine(earlier, later)


def _matrix_compose(earlier, later):
    return sbjax._matrix_combine(earlier, later)


def _apply(matrix: bool, Pm, x):
    """``P @ x`` (matrices) or ``P * x`` (elementwise), for every step of a chunk at once."""
    return sbjax._matvec(Pm, x) if matrix else Pm * x


def _chunk(a, b, h0, *, axis: str, reverse: bool, matrix: bool):
    """One device's part of Algorithm 1: local scan, exchange of summaries, fix-up."""
    compose = _matrix_compose if matrix else _scalar_compose
    # 1. local scan from a zero state: P[t] (product of decays so far), u[t] (state from zero)
    Pm, u = jax.lax.associative_scan(compose, (a, b), reverse=reverse)
    end = 0 if reverse else -1  # the chunk's last step in the direction of travel
    summary = (Pm[end], u[end])  # the whole chunk as one affine map
    # 2. exchange: every device gets all p summaries (p x 2 numbers per channel) ...
    P_all, U_all = jax.lax.all_gather(summary, axis)
    # ... and scans them from h0: C[i] is the state after chunk i
    C = (sbjax._matrix_scan if matrix else sbjax._scan)(P_all, U_all, h0, reverse)
    # the carry into chunk i is the state after the chunk before it (h0 for the first)
    carries = jnp.concatenate([C[1:], h0[None]]) if reverse else jnp.concatenate([h0[None], C[:-1]])
    carry = carries[jax.lax.axis_index(axis)]
    # 3. fix-up: one multiply-add per element
    return u + _apply(matrix, Pm, carry)


def _constrain(x, mesh: Mesh, axis: str):
    """Ask XLA to keep ``x`` split along time (its leading axis) over ``axis``."""
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, P(axis)))


def _sharded(a, b, h0, mesh: Mesh, axis: str, reverse: bool, matrix: bool):
    """Algorithm 1 across the devices of ``mesh`` (``a``, ``b`` already padded to ``p L``)."""
    spec = P(axis)
    a, b = _constrain(a, mesh, axis), _constrain(b, mesh, axis)
    run = jax.shard_map(
        partial(_chunk, axis=axis, reverse=reverse, matrix=matrix),
        mesh=mesh,
        in_specs=(spec, spec, P()),
        out_specs=spec,
    )
    return run(a, b, h0)


# -- the gradient: the same sharded algorithm, run from the other end --------------------------


@partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5, 6))
def _recurrence(a, b, h0, mesh, axis, reverse, matrix):
    return _sharded(a, b, h0, mesh, axis, reverse, matrix)


def _recurrence_fwd(a, b, h0, mesh, axis, reverse, matrix):
    h = _sharded(a, b, h0, mesh, axis, reverse, matrix)
    return h, (a, h0, h)


def _shift_chunk(x, fill, *, axis: str, p: int, up: bool):
    """One device's part of a shift by one step: ``y[t] = x[t+1]`` (``up``) or ``x[t-1]``.

    The row that crosses a chunk boundary is sent to the neighbouring device (``ppermute``);
    the end of the whole sequence gets ``fill``.
    """
    i = jax.lax.axis_index(axis)
    if up:  # device j sends its first row to device j - 1
        row = jax.lax.ppermute(x[:1], axis, perm=[(j, j - 1) for j in range(1, p)])
        row = jnp.where(i == p - 1, fill[None], row)
        return jnp.concatenate([x[1:], row])
    row = jax.lax.ppermute(x[-1:], axis, perm=[(j, j + 1) for j in range(p - 1)])
    row = jnp.where(i == 0, fill[None], row)
    return jnp.concatenate([row, x[:-1]])


def _shift(x, fill, mesh: Mesh, axis: str, *, up: bool):
    """``x`` shifted by one step along time, each device sending one row to a neighbour."""
    run = jax.shard_map(
        partial(_shift_chunk, axis=axis, p=mesh.shape[axis], up=up),
        mesh=mesh,
        in_specs=(P(axis), P()),
        out_specs=P(axis),
    )
    return run(_constrain(x, mesh, axis), fill)


def _recurrence_bwd(mesh, axis, reverse, matrix, residuals, g):
    """Chapter 5's rule: ``db[t] = g[t] + a[t+1] db[t+1]`` (transposed matrices), sharded.

    The shifts by one step cross device boundaries: each device sends one row (its first
    decay, its last state) to a neighbour.
    """
    a, h0, h = residuals
    if matrix:
        a = jnp.swapaxes(a, -1, -2)
    # forward: a[t+1] and h[t-1]; reverse: a[t-1] and h[t+1]
    a_shift = _shift(a, jnp.zeros_like(a[0]), mesh, axis, up=not reverse)
    h_other = _shift(h, h0, mesh, axis, up=reverse)
    db = _recurrence(a_shift, g, jnp.zeros_like(h0), mesh, axis, not reverse, matrix)
    first = -1 if reverse else 0
    if matrix:
        dA = db[:, :, None] * h_other[:, None, :]  # lam[t] h[t-1]^T
        return _constrain(dA, mesh, axis), db, a[first] @ db[first]  # a holds A^T here
    return _constrain(db * h_other, mesh, axis), db, a[first] * db[first]


_recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


@partial(jax.jit, static_argnums=(3, 4, 5, 6))
def _padded(a, b, h0, mesh, axis, reverse, matrix):
    """Pad ``T`` up to a multiple of the device count with identity steps, run, slice."""
    p = mesh.shape[axis]
    T = a.shape[0]
    pad = -T % p
    if pad:
        eye = jnp.eye(a.shape[-1], dtype=a.dtype) if matrix else jnp.ones(a.shape[1:], a.dtype)
        a = jnp.concatenate([a, jnp.broadcast_to(eye, (pad, *a.shape[1:]))])
        b = jnp.concatenate([b, jnp.zeros((pad, *b.shape[1:]), b.dtype)])
    # identity steps (a = 1, b = 0) at the end pass any state through unchanged, so they
    # change no real step, forward (they come after) or reverse (they carry h0 through)
    return _recurrence(a, b, h0, mesh, axis, reverse, matrix)[:T]


def linear_recurrence(a, b, h0=None, *, mesh=None, axis=None, reverse: bool = False):
    """``h[t] = a[t] * h[t-1] + b[t]``, sharded along time across the devices of ``mesh``.

    Args:
        a: decays, shape ``(T, *batch)``, float32/float64/complex (as
            :func:`scanbook.jax.linear_recurrence`).
        b: inputs, the shape and dtype of ``a``.
        h0: the initial state, shape ``batch``; None means zeros.
        mesh: a ``jax.sharding.Mesh``; None builds a 1-D mesh over all of ``jax.devices()``.
        axis: the name of the mesh axis to shard time along; None means the mesh's only
            axis. Other mesh axes (if any) hold copies.
        reverse: ``h[t] = a[t] * h[t+1] + b[t]`` with ``h[T] = h0``.

    Returns:
        ``h``, shape and dtype of ``b`` (``T = 0``: an empty array). When ``T`` is a
        multiple of the device count, ``h`` is sharded along time over ``mesh`` and the
        forward pass communicates only the chunk summaries. Otherwise ``h`` is
        **replicated**: every device holds all of it. It equals
        :func:`scanbook.jax.linear_recurrence` up to rounding.

    Each device scans its chunk, the chunk summaries are all-gathered and scanned, and each
    device fixes up its chunk with the state carried into it (the module docstring).
    ``T`` need not be a multiple of the device count: the sequence is padded at the end with
    identity steps (``a = 1, b = 0``) and the padding sliced off. That has a cost: a JAX
    array is laid out in equal blocks, so XLA moves the inputs to lay out the padded arrays
    (an all-to-all) and all-gathers the whole result to slice it, far more traffic than the
    summaries. For long sequences choose ``T`` as a multiple of the device count.
    ``jax.grad`` works: the gradient is chapter 5's reverse recurrence, run by the same
    sharded algorithm.

    Raises:
        ValueError: shapes that do not match, an ``axis`` the mesh does not have.
        TypeError: a non-floating or mismatched dtype, a ``mesh`` that is not a Mesh.

    Defined in chapter 10.
    """
    reverse = sbjax._check_reverse(reverse)
    mesh, axis = _resolve_mesh(mesh, axis)
    with sbjax._precision((a, b), h0):
        a, b, h0 = sbjax._prepare(a, b, h0)
        if a.shape[0] == 0:
            return jnp.zeros(a.shape, a.dtype)
        return _padded(a, b, h0, mesh, axis, reverse, False)


def matrix_linear_recurrence(A, b, h0=None, *, mesh=None, axis=None, reverse: bool = False):
    """``h[t] = A[t] @ h[t-1] + b[t]``, sharded along time across the devices of ``mesh``.

    The matrix form of :func:`linear_recurrence`: ``A`` of shape ``(T, n, n)``, ``b`` of
    shape ``(T, n)``, ``h0`` of shape ``(n,)`` (None: zeros). The chunk summaries are the
    products of a chunk's matrices, ``n x n``, and its final state from zero, ``n``: so each
    device sends ``n^2 + n`` numbers, whatever ``T``. As for :func:`linear_recurrence`, the
    result is sharded along time when ``T`` is a multiple of the device count and replicated
    (every device holds all of it, after an all-gather) otherwise. Differentiable (custom VJP: the
    transposed, shifted matrices run in reverse, sharded the same way). DEER's Newton step
    (chapter 9) is this recurrence; :func:`deer_newton` uses it.

    Raises:
        ValueError: ``A`` not ``(T, n, n)``, ``b`` not ``(T, n)``, ``h0`` not ``(n,)``, an
            ``axis`` the mesh does not have.
        TypeError: a non-floating or mismatched dtype, a ``mesh`` that is not a Mesh.

    Defined in chapter 10.
    """
    reverse = sbjax._check_reverse(reverse)
    mesh, axis = _resolve_mesh(mesh, axis)
    with sbjax._precision((A, b), h0):
        A, b, h0 = sbjax._prepare_matrix(A, b, h0)
        if A.shape[0] == 0:
            return jnp.zeros(b.shape, b.dtype)
        return _padded(A, b, h0, mesh, axis, reverse, True)


# -- DEER's Newton iteration across devices ------------------------------------------------------


@partial(jax.jit, static_argnums=(0, 5, 6))
def _deer_step(cell, params, xs, h0, hs, mesh, axis):
    """One Newton step (chapter 9): the Jacobians per step, then the sharded matrix recurrence."""
    h_prev = _shift(hs, h0, mesh, axis, up=False)  # h[t-1]: one row from the device before
    f = jax.vmap(cell, in_axes=(None, 0, 0))(params, h_prev, xs)
    J = jax.vmap(jax.jacfwd(cell, argnums=1), in_axes=(None, 0, 0))(params, h_prev, xs)
    rhs = f - jnp.einsum("tij,tj->ti", J, h_prev)
    return _padded(J, rhs, h0, mesh, axis, False, True)


def deer_newton(cell, params, xs, h0, *, mesh=None, axis=None, max_iter=20, tol=None, init=None):
    """DEER's Newton iteration (chapter 9) with every linear solve sharded across devices.

    ``h[t] = cell(params, h[t-1], xs[t])`` for a long sequence whose steps are split along
    time over ``mesh``: the cell and its Jacobians are evaluated where each step's shard
    lives, and the Newton step ``h_new[t] = J[t] h_new[t-1] + f[t] - J[t] h[t-1]`` is
    :func:`matrix_linear_recurrence`. Stops when the largest residual
    (:func:`scanbook.deer.residual`) is at most ``tol`` (default 1e-10 in float64, 1e-5 in
    float32) or after ``max_iter`` steps.

    This is plain Newton: no damping, no quasi-Newton diagonal, no implicit gradient (the
    iteration is a Python loop, not differentiable). Those are in :func:`scanbook.deer.solve`,
    which runs on one device: it calls the single-device scans of :mod:`scanbook.jax` and has
    no argument to pass in another linear solver.

    Returns:
        ``(hs, residuals)``: the states ``(T, n)`` and the largest residual before each step
        and after the last (a NumPy array, one entry longer than the number of steps taken).

    Defined in chapter 10.
    """
    from . import deer

    mesh, axis = _resolve_mesh(mesh, axis)
    h0 = jnp.asarray(h0)
    if h0.ndim != 1:
        raise ValueError(f"h0 must be a vector of shape (n,); got shape {h0.shape}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int; got {max_iter!r}")
    T = jax.tree_util.tree_leaves(xs)[0].shape[0]
    if tol is None:
        tol = 1e-10 if h0.dtype == jnp.float64 else 1e-5
    hs = jnp.zeros((T, h0.shape[0]), h0.dtype) if init is None else jnp.asarray(init, h0.dtype)
    if hs.shape != (T, h0.shape[0]):
        raise ValueError(f"init must have shape (T, n) = {(T, h0.shape[0])}; got {hs.shape}")
    if T == 0:
        return hs, np.zeros(1)
    # pad to a multiple of the device count with steps after the last one (repeating the
    # last input): they come after every real step, so they change none of them
    pad = -T % mesh.shape[axis]
    if pad:
        edge = lambda x: jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1), mode="edge")
        xs, hs = jax.tree.map(edge, xs), edge(hs)
    res_of = jax.jit(lambda p, x, h, s: jnp.max(jnp.abs(deer.residual(cell, p, x, h, s)[:T])))
    residuals = [float(res_of(params, xs, h0, hs))]
    with jax.default_matmul_precision("highest"):
        for _ in range(max_iter):
            if not residuals[-1] > tol:  # converged (or NaN: stop, the caller sees it)
                break
            hs = _deer_step(cell, params, xs, h0, hs, mesh, axis)
            residuals.append(float(res_of(params, xs, h0, hs)))
    hs = hs[:T]
    return hs, np.array(residuals)


# -- what crosses between devices ------------------------------------------------------------------


def communication_bytes(T: int, channels: int, n_devices: int, itemsize: int = 4, *, n=None):
    """Bytes each device sends: the sharded scan against all-gathering the whole sequence.

    Counted for a ring all-gather, in which every device passes on ``p - 1`` blocks (its own
    and the ones it received) of the block size:

    * sharded scan: a block is one summary, ``2 x channels`` numbers (``n^2 + n`` for the
      matrix recurrence with ``n`` given, ``channels`` ignored);
    * gather the whole sequence (every device gets all of ``a`` and ``b`` and scans it
      alone): a block is a chunk of ``a`` and ``b``, ``2 x channels x ceil(T / p)`` numbers
      (``(n^2 + n) x ceil(T / p)``).

    Returns ``{"sharded_scan": bytes, "gather_all": bytes}``, per device, forward pass only.

    Defined in chapter 10.
    """
    for name, v in (("T", T), ("channels", channels), ("n_devices", n_devices)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
            raise ValueError(f"{name} must be an int >= 0; got {v!r}")
    if n_devices < 1:
        raise ValueError(f"n_devices must be at least 1; got {n_devices}")
    per_step = 2 * channels if n is None else n * n + n
    L = -(-T // n_devices)
    hops = n_devices - 1
    return {
        "sharded_scan": hops * per_step * itemsize,
        "gather_all": hops * per_step * L * itemsize,
    }


_COLLECTIVE = re.compile(
    r"=\s*(\(?[^=]*?\)?)\s+(all-gather|all-reduce|collective-permute|all-to-all|"
    r"reduce-scatter)(-start)?\("
)
_SHAPE = re.compile(r"(pred|[suf]\d+|bf16|c64|c128)\[([\d,]*)\]")
_LAYOUT = re.compile(r"\{[^{}]*\}")
_CONTEXT = re.compile(r"^[su]32\[\]$")
_BITS = {"pred": 8, "bf16": 16, "c64": 64, "c128": 128}


def _shape_bytes(text: str) -> int:
    total = 0
    for dtype, dims in _SHAPE.findall(text):
        bits = _BITS.get(dtype) or int(dtype[1:])
        total += int(np.prod([int(d) for d in dims.split(",") if d])) * bits // 8
    return total


def _tuple_elements(text: str) -> list[str]:
    """The top-level elements of an HLO result type ``(x, (y, z), ...)`` (layouts removed)."""
    text = _LAYOUT.sub("", text).strip()
    if not (text.startswith("(") and text.endswith(")")):
        return [text]
    parts, depth, start = [], 0, 1
    for k, ch in enumerate(text[1:-1], start=1):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:k].strip())
            start = k + 1
    parts.append(text[start:-1].strip())
    return [x for x in parts if x]


def _result_of_start(kind: str, shapes: str) -> str:
    """The part of an asynchronous ``-start``'s result type that is the collective's result.

    ``all-reduce-start`` returns the result itself (one array, or a tuple of them when XLA
    combined several all-reduces). ``all-gather-start`` and ``collective-permute-start``
    return ``(operands, results)``, possibly followed by ``u32[]`` context scalars; when
    several collectives were combined into one, the operands and the results are tuples
    themselves: ``((f32[1,16], f32[1,16]), (f32[8,16], f32[8,16]))``.
    """
    if kind == "all-reduce":
        return shapes
    parts = [x for x in _tuple_elements(shapes) if not _CONTEXT.match(x)]
    return parts[1] if len(parts) >= 2 else " ".join(parts)


def collective_bytes(hlo_text: str) -> dict[str, int]:
    """The bytes each collective of a compiled program *produces* on one device, by kind.

    Reads the HLO text of ``jax.jit(f).lower(...).compile().as_text()``: every
    ``all-gather``, ``all-reduce``, ``collective-permute``, ``all-to-all`` and
    ``reduce-scatter`` and the size of its result, per device (the text of an SPMD program
    is one device's). A collective that XLA combined from several returns a tuple, and every
    element counts. An asynchronous ``-start`` (the form XLA:GPU emits) counts only its
    result: for ``all-gather-start`` and ``collective-permute-start`` the second top-level
    element of the ``(operands, results[, contexts])`` tuple it returns, for
    ``all-reduce-start`` all of it; the matching ``-done`` is not counted again. Collectives
    that XLA wraps in a generic ``async-start`` are counted at the instruction inside the
    wrapped computation.

    These are the bytes a collective *delivers*, not the bytes a device *sends*: that depends
    on the algorithm the runtime picks (a ring all-gather over ``p`` devices sends ``p - 1``
    of the ``p`` blocks it produces; a tree or a direct exchange differs). Returns
    ``{kind: bytes}``; kinds that do not occur are absent.

    Defined in chapter 10.
    """
    if not isinstance(hlo_text, str):
        raise TypeError(f"hlo_text must be a str (HLO text); got {type(hlo_text).__name__}")
    out: dict[str, int] = {}
    for line in hlo_text.splitlines():
        if "-done(" in line:
            continue  # the -start op already counted the transfer
        m = _COLLECTIVE.search(line)
        if m:
            shapes, kind = m.group(1), m.group(2)
            if m.group(3):  # an async start: count only the result, not the operands
                shapes = _result_of_start(kind, shapes)
            out[kind] = out.get(kind, 0) + _shape_bytes(shapes)
    return out

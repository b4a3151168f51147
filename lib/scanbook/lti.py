"""Linear time-invariant recurrences: the Legendre Memory Unit's memory, run three ways.

Defined in chapter 8.

The Legendre Memory Unit (LMU) of Voelker, Kajić and Eliasmith (2019) keeps a sliding window
of its input, the last ``theta`` time units of a signal ``u(t)``, in ``q`` numbers: the
coefficients ``m(t)`` of the window in the shifted Legendre polynomials. They obey a fixed
linear system of differential equations, ``dm/dt = A m + B u`` (:func:`lmu`), which a zero-order
hold turns into the linear time-invariant (LTI) recurrence

    ``m[t] = Ad @ m[t-1] + Bd * u[t]``,  ``m[-1] = 0``      (:func:`discretize`)

with the *same* matrix ``Ad`` at every step. Because nothing in it depends on ``t`` or on the
state, the recurrence can be computed in three ways (:func:`apply`):

* ``"loop"``: the recurrence itself, one matrix-vector product per step (the reference);
* ``"fft"``: ``m[t] = sum_k H[k] u[t-k]``, a convolution with the impulse response
  ``H[k] = Ad^k Bd`` (:func:`impulse_response`), computed by the fast Fourier transform in
  ``O(T log T)`` work;
* ``"diagonal"``: in the eigenvector basis of ``Ad`` the recurrence splits into ``q`` scalar
  recurrences with complex decays, ``z[t] = lam * z[t-1] + w * u[t]``, which is the linear
  recurrence of chapters 1-5 and runs as a parallel scan (:func:`diagonalize`). The basis
  becomes ill-conditioned as the order grows (chapter 8 measures ``cond(V)``: about 2e1 at
  ``q = 4``, 3e3 at ``q = 8``, 1e8 at ``q = 16`` and the limit of float64, about
  ``1/eps = 5e15``, from ``q = 32`` on, where it no longer grows monotonically), so this
  method is only accurate for small orders.

:func:`legendre` and :func:`readout` decode the delayed input ``u(t - r theta)``, ``0 <= r <= 1``,
from the state. :func:`layer_init` and :func:`layer_apply` are the parallel LMU layer of
Chilkuri and Eliasmith (2021) in JAX: an input projection ``u = x We + be``, the fixed memory
computed for all steps at once (FFT or diagonal), and a non-linear hidden readout
``h = tanh(m Wm + x Wx + bh)``. The hidden state never feeds back into the memory, which is
what makes the whole layer parallel over time.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import scipy.fft
import scipy.linalg

__all__ = [
    "LAYER_METHODS",
    "METHODS",
    "apply",
    "diagonalize",
    "discretize",
    "impulse_response",
    "layer",
    "layer_apply",
    "layer_init",
    "legendre",
    "lmu",
    "memory",
    "readout",
]

METHODS = ("loop", "fft", "diagonal")


# -- input checks ---------------------------------------------------------------------------


def _check_order(order) -> int:
    if isinstance(order, bool) or not isinstance(order, Integral):
        raise TypeError(f"order must be an integer >= 1; got {type(order).__name__} {order!r}")
    if order < 1:
        raise ValueError(f"order must be an integer >= 1; got {order}")
    return int(order)


def _check_positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a positive number; got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number; got {value}")
    return float(value)


def _float_array(name: str, x) -> np.ndarray:
    """A NumPy float32/float64 array; integer, bool, complex and object input is refused."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "f" or arr.dtype.itemsize < 4:
        raise TypeError(f"{name} must have dtype float32 or float64; got {arr.dtype}")
    return arr


def _check_system(A, B, names=("A", "B")) -> tuple[np.ndarray, np.ndarray, bool]:
    """``A`` of shape (q, q), ``B`` of shape (q,) or (q, 1); returns them with B flat."""
    A = _float_array(names[0], A)
    B = _float_array(names[1], B)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] == 0:
        raise ValueError(f"{names[0]} must be a square matrix of shape (q, q); got {A.shape}")
    q = A.shape[0]
    if B.shape not in ((q,), (q, 1)):
        raise ValueError(f"{names[1]} must have shape ({q},) or ({q}, 1) to match A; got {B.shape}")
    return A, B.reshape(q), B.ndim == 2


def _check_method(method, allowed=METHODS) -> str:
    if method not in allowed:
        raise ValueError(f"method must be one of {allowed}; got {method!r}")
    return method


# -- the continuous system and its discretisation --------------------------------------------


def lmu(order: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """The Legendre delay system ``dm/dt = A m + B u`` of order ``q``, window ``theta``.

    With ``i, j = 0 .. q-1`` (Voelker, Kajić and Eliasmith 2019, equation 2, their ``A`` and
    ``B`` divided by ``theta``)::

        A[i, j] = (2i + 1) / theta * (-1            if i < j,
                                      (-1)^(i-j+1)  if i >= j)

        B[i] = (2i + 1) (-1)^i / theta

    so the diagonal of ``A`` is ``-(2i+1)/theta``. The state ``m(t)`` holds the coefficients of
    the window ``u(t - r theta)``, ``0 <= r <= 1``, in the shifted Legendre polynomials:
    ``u(t - r theta) ~ sum_i m_i(t) P_i(r)`` (:func:`legendre`). The system is the order
    ``[q-1/q]`` Padé approximant of the delay ``exp(-theta s)``.

    Args:
        order: ``q >= 1``, the number of Legendre coefficients kept.
        theta: the length of the window, ``> 0``, in the time units of ``dt`` in
            :func:`discretize` (in steps when ``dt = 1``).

    Returns:
        ``(A, B)``: float64 arrays of shape ``(q, q)`` and ``(q,)``.

    Raises:
        TypeError: ``order`` not an integer, ``theta`` not a real number.
        ValueError: ``order < 1``, ``theta <= 0`` or not finite.

    Defined in chapter 8.
    """
    q = _check_order(order)
    theta = _check_positive("theta", theta)
    i = np.arange(q)[:, None]
    j = np.arange(q)[None, :]
    A = (2 * i + 1) / theta * np.where(i < j, -1.0, (-1.0) ** (i - j + 1))
    B = (2 * np.arange(q) + 1) * (-1.0) ** np.arange(q) / theta
    return A, B


def discretize(A, B, dt: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Zero-order hold: the exact step of ``dm/dt = A m + B u`` over ``dt``, ``u`` held constant.

    ``m(t + dt) = Ad m(t) + Bd u(t)`` with ``Ad = exp(A dt)`` and
    ``Bd = (integral_0^dt exp(A s) ds) B``. Both come from one matrix exponential of the
    augmented ``(q+1, q+1)`` block matrix (chapter 8 derives why):

        ``expm([[A, B], [0, 0]] * dt) = [[Ad, Bd], [0, 1]]``

    which needs no inverse of ``A`` and stays exact when ``A`` is singular.

    Args:
        A: shape ``(q, q)``, float32 or float64.
        B: shape ``(q,)`` or ``(q, 1)``.
        dt: the step, ``> 0``.

    Returns:
        ``(Ad, Bd)`` in float64, ``Bd`` shaped like ``B``.

    Defined in chapter 8.
    """
    A, B, column = _check_system(A, B)
    dt = _check_positive("dt", dt)
    q = A.shape[0]
    M = np.zeros((q + 1, q + 1))
    M[:q, :q] = A
    M[:q, q] = B
    E = scipy.linalg.expm(M * dt)
    Ad, Bd = E[:q, :q], E[:q, q]
    return Ad, (Bd[:, None] if column else Bd)


# -- three ways to run the memory -------------------------------------------------------------


def _powers_times(Ad, Bd, T: int, xp):
    """``H[k] = Ad^k Bd`` for ``k < T`` by doubling: ``H[n:2n] = H[0:n] @ (Ad^n)^T``."""
    H = Bd[None, :]
    P = Ad  # Ad^n, n = len(H)
    while H.shape[0] < T:
        H = xp.concatenate([H, H @ P.T], axis=0)
        P = P @ P
    return H[:T]


def impulse_response(Ad, Bd, T: int) -> np.ndarray:
    """The first ``T`` steps of the impulse response: ``H[k] = Ad^k Bd``, shape ``(T, q)``.

    ``H[k]`` is the state ``k`` steps after a unit impulse ``u = (1, 0, 0, ...)``, and by
    linearity ``m[t] = sum_{k <= t} H[k] u[t-k]``. Computed by doubling: from ``H[0:n]`` and
    ``Ad^n``, ``H[n:2n] = Ad^n H[0:n]`` and ``Ad^{2n} = (Ad^n)^2``, so ``log2 T`` matrix
    products instead of ``T`` matrix-vector products in sequence.

    Defined in chapter 8.
    """
    Ad, Bd, _ = _check_system(Ad, Bd, ("Ad", "Bd"))
    if isinstance(T, bool) or not isinstance(T, Integral) or T < 0:
        raise ValueError(f"T must be an integer >= 0; got {T!r}")
    dtype = np.result_type(Ad, Bd)
    if T == 0:
        return np.zeros((0, Ad.shape[0]), dtype)
    return _powers_times(Ad.astype(dtype), Bd.astype(dtype), int(T), np)


def diagonalize(Ad, Bd) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigen-decomposition ``Ad = V diag(lam) V^-1`` and ``w = V^-1 Bd``, all complex128.

    In the coordinates ``z = V^-1 m`` the recurrence decouples:
    ``z[t] = lam * z[t-1] + w * u[t]`` (elementwise), and ``m = V z``. The columns of ``V``
    have unit length (``numpy.linalg.eig``). ``numpy.linalg.cond(V)`` measures how much the
    change of basis can amplify rounding errors; for the LMU it grows exponentially with the
    order (chapter 8), so in float64 this route's error exceeds 1e-6 from about ``q = 24``
    and is of order 1e-1 (useless) from about ``q = 28`` on; in float32 it exceeds 1e-3 from
    about ``q = 12``.

    Defined in chapter 8.
    """
    Ad, Bd, _ = _check_system(Ad, Bd, ("Ad", "Bd"))
    lam, V = np.linalg.eig(Ad.astype(np.float64))
    w = np.linalg.solve(V, Bd.astype(np.complex128))
    return lam.astype(np.complex128), V.astype(np.complex128), w


def _loop(Ad, Bd, u2):
    """The reference: ``m[t] = Ad m[t-1] + Bd u[t]``; ``u2`` of shape (T, N) -> (T, N, q)."""
    T, N = u2.shape
    m = np.zeros((N, Ad.shape[0]), u2.dtype)
    out = np.empty((T, N, Ad.shape[0]), u2.dtype)
    for t in range(T):
        m = m @ Ad.T + u2[t][:, None] * Bd
        out[t] = m
    return out


def _fft(Ad, Bd, u2):
    """``m[t] = sum_k H[k] u[t-k]`` by FFT, zero-padded to avoid wrap-around."""
    T = u2.shape[0]
    H = _powers_times(Ad, Bd, T, np)  # (T, q)
    n = scipy.fft.next_fast_len(2 * T - 1, real=True)
    U = scipy.fft.rfft(u2, n, axis=0)  # (n//2 + 1, N)
    Hf = scipy.fft.rfft(H, n, axis=0)  # (n//2 + 1, q)
    return scipy.fft.irfft(U[:, :, None] * Hf[:, None, :], n, axis=0)[:T].astype(u2.dtype)


def _diagonal(Ad, Bd, u2, backend):
    """Diagonalise, run ``q`` complex scalar recurrences as one scan, change basis back."""
    from .recurrence import linear_recurrence

    lam, V, w = diagonalize(Ad, Bd)
    ctype = np.complex64 if u2.dtype == np.float32 else np.complex128
    T, N = u2.shape
    q = lam.shape[0]
    a = np.broadcast_to(lam.astype(ctype), (T, N, q)).reshape(T, N * q)
    b = (u2[:, :, None] * w.astype(ctype)).reshape(T, N * q)
    z = linear_recurrence(np.ascontiguousarray(a), b, backend=backend).reshape(T, N, q)
    return (z @ V.astype(ctype).T).real.astype(u2.dtype)


def apply(Ad, Bd, u, *, method: str = "loop", backend: str = "auto") -> np.ndarray:
    """Run the memory ``m[t] = Ad m[t-1] + Bd u[t]`` (``m[-1] = 0``) over a whole sequence.

    Args:
        Ad: shape ``(q, q)``, float32 or float64 (from :func:`discretize`).
        Bd: shape ``(q,)`` or ``(q, 1)``.
        u: the input, shape ``(T, *batch)``, float32 or float64; each batch entry is an
            independent scalar signal. ``T = 0`` gives an empty result.
        method: ``"loop"`` (the recurrence, ``T`` dependent steps of ``O(q^2)`` work),
            ``"fft"`` (convolution with the impulse response by FFT, ``O(q T log T)`` work
            per signal plus ``log2 T`` matrix products for the impulse response) or
            ``"diagonal"`` (a parallel scan of ``q`` complex scalar recurrences in the
            eigenvector basis of ``Ad``; accurate only while ``cond(V)`` is small, see
            :func:`diagonalize`).
        backend: the backend of :func:`scanbook.linear_recurrence` for ``"diagonal"``.

    Returns:
        ``m`` of shape ``(T, *batch, q)`` in the dtype of ``u`` (float64 when ``u`` is
        float64). The computation runs in the wider of the dtypes of ``u``, ``Ad``, ``Bd``.
        NaN in ``u`` gives NaN in ``m``: from that step on for the loop and the diagonal scan,
        at every step of that signal for the FFT (a Fourier transform mixes all steps).

    Raises:
        TypeError: an integer, bool or complex ``Ad``, ``Bd`` or ``u``.
        ValueError: ``Ad`` not square, ``Bd`` not of length ``q``, ``u`` without a time axis,
            an unknown ``method``.

    Defined in chapter 8.
    """
    Ad, Bd, _ = _check_system(Ad, Bd, ("Ad", "Bd"))
    u = _float_array("u", u)
    method = _check_method(method)
    if u.ndim < 1:
        raise ValueError(f"u must have a leading time axis, shape (T, *batch); got shape {u.shape}")
    T, batch, q = u.shape[0], u.shape[1:], Ad.shape[0]
    dtype = np.result_type(Ad, Bd, u)
    if T == 0 or math.prod(batch) == 0:
        return np.zeros((T, *batch, q), u.dtype)
    u2 = u.reshape(T, -1).astype(dtype)
    Ad, Bd = Ad.astype(dtype), Bd.astype(dtype)
    if method == "loop":
        m = _loop(Ad, Bd, u2)
    elif method == "fft":
        m = _fft(Ad, Bd, u2)
    else:
        m = _diagonal(Ad, Bd, u2, backend)
    return m.reshape(T, *batch, q).astype(u.dtype, copy=False)


# -- reading the window back --------------------------------------------------------------------


def legendre(order: int, r) -> np.ndarray:
    """The shifted Legendre polynomials ``P_0 .. P_{q-1}`` at ``r``, shape ``(*r.shape, q)``.

    ``P_i(r) = L_i(2r - 1)`` with ``L_i`` the Legendre polynomials, by Bonnet's recurrence
    ``(n+1) P_{n+1} = (2n+1)(2r-1) P_n - n P_{n-1}``, ``P_0 = 1``, ``P_1 = 2r - 1``.
    (Voelker et al. write the same polynomials as
    ``P_i(r) = (-1)^i sum_j binom(i, j) binom(i+j, j) (-r)^j``.)

    Defined in chapter 8.
    """
    q = _check_order(order)
    r = np.asarray(r, dtype=np.float64)
    x = 2 * r - 1
    out = np.empty((*r.shape, q))
    out[..., 0] = 1.0
    if q > 1:
        out[..., 1] = x
    for n in range(1, q - 1):
        out[..., n + 1] = ((2 * n + 1) * x * out[..., n] - n * out[..., n - 1]) / (n + 1)
    return out


def readout(m, r) -> np.ndarray:
    """Decode the delayed input from the memory: ``u(t - r theta) ~ sum_i m_i(t) P_i(r)``.

    Args:
        m: states of shape ``(..., q)`` (for example ``(T, *batch, q)`` from :func:`apply`).
        r: the delays as fractions of the window, a number or a 1-D array in ``[0, 1]``
            (``r = 0``: the present input, ``r = 1``: the input ``theta`` ago).

    Returns:
        shape ``m.shape[:-1]`` for a scalar ``r``, ``(*m.shape[:-1], len(r))`` otherwise.

    Defined in chapter 8.
    """
    m = _float_array("m", m)
    if m.ndim < 1:
        raise ValueError(f"m must have the order as its last axis, shape (..., q); got {m.shape}")
    r = np.asarray(r, dtype=np.float64)
    if r.ndim > 1:
        raise ValueError(f"r must be a number or a 1-D array; got shape {r.shape}")
    if np.any((r < 0) | (r > 1)):
        raise ValueError(f"r must lie in [0, 1] (a delay inside the window); got {r}")
    P = legendre(m.shape[-1], r).astype(m.dtype)
    return m @ P.T if r.ndim == 1 else m @ P


# -- the parallel LMU layer in JAX ----------------------------------------------------------


def layer_init(
    key,
    in_dim: int,
    hidden: int,
    order: int,
    theta: float,
    *,
    memory_dim: int = 1,
    dt: float = 1.0,
    dtype=jnp.float32,
) -> dict:
    """Parameters of a parallel LMU layer (Chilkuri and Eliasmith 2021).

    ``params["encoder"]`` (``We`` of shape ``(in_dim, memory_dim)``, ``be``),
    ``params["hidden"]`` (``Wm`` of shape ``(memory_dim * order, hidden)``, ``Wx`` of shape
    ``(in_dim, hidden)``, ``bh``) are trained. ``params["memory"]`` holds the fixed system:
    ``Ad``, ``Bd`` of :func:`discretize` and the eigen-decomposition of :func:`diagonalize`
    (``lam``, ``V``, ``w``, complex); :func:`layer_apply` reads them through
    ``jax.lax.stop_gradient``, so their gradient is zero and an optimiser leaves them alone.

    Weights are drawn as ``N(0, 1/fan_in)`` (LeCun normal), biases start at zero.

    Defined in chapter 8.
    """
    for name, value in (("in_dim", in_dim), ("hidden", hidden), ("memory_dim", memory_dim)):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
    Ad, Bd = discretize(*lmu(order, theta), dt=dt)
    lam, V, w = diagonalize(Ad, Bd)
    dtype = jnp.dtype(dtype)
    if dtype not in (jnp.float32, jnp.float64):
        raise TypeError(f"dtype must be float32 or float64; got {dtype}")
    ctype = jnp.complex64 if dtype == jnp.float32 else jnp.complex128
    k1, k2, k3 = jax.random.split(key, 3)
    q = Ad.shape[0]
    return {
        "encoder": {
            "We": jax.random.normal(k1, (in_dim, memory_dim), dtype) / math.sqrt(in_dim),
            "be": jnp.zeros(memory_dim, dtype),
        },
        "memory": {
            "Ad": jnp.asarray(Ad, dtype),
            "Bd": jnp.asarray(Bd, dtype),
            "lam": jnp.asarray(lam, ctype),
            "V": jnp.asarray(V, ctype),
            "w": jnp.asarray(w, ctype),
        },
        "hidden": {
            "Wm": jax.random.normal(k2, (memory_dim * q, hidden), dtype)
            / math.sqrt(memory_dim * q),
            "Wx": jax.random.normal(k3, (in_dim, hidden), dtype) / math.sqrt(in_dim),
            "bh": jnp.zeros(hidden, dtype),
        },
    }


def _memory_fft(Ad, Bd, u):
    """``u`` (T, ...) -> ``m`` (T, ..., q) by FFT convolution, in JAX."""
    T = u.shape[0]
    H = _powers_times(Ad, Bd, T, jnp)
    n = 1 << (2 * T - 1).bit_length()  # a power of two >= 2T - 1: no wrap-around
    U = jnp.fft.rfft(u, n, axis=0)
    Hf = jnp.fft.rfft(H, n, axis=0)
    Hf = Hf.reshape(Hf.shape[0], *([1] * (u.ndim - 1)), Hf.shape[1])
    return jnp.fft.irfft(U[..., None] * Hf, n, axis=0)[:T].astype(u.dtype)


def _memory_diagonal(lam, V, w, u):
    """``u`` (T, ...) -> ``m`` (T, ..., q) by a parallel scan in the eigenvector basis."""
    from . import jax as _sbjax

    b = u[..., None].astype(w.dtype) * w
    a = jnp.broadcast_to(lam, b.shape)
    z = _sbjax.linear_recurrence(a, b)
    return (z @ V.T).real.astype(u.dtype)


def _memory_loop(Ad, Bd, u):
    """``u`` (T, ...) -> ``m`` (T, ..., q), one step at a time (``lax.scan``): the RNN form."""

    def step(m, u_t):
        m = m @ Ad.T + u_t[..., None] * Bd
        return m, m

    m0 = jnp.zeros((*u.shape[1:], Ad.shape[0]), u.dtype)
    return jax.lax.scan(step, m0, u)[1]


LAYER_METHODS = ("fft", "diagonal", "loop")


def memory(params, u, *, method: str = "fft") -> jax.Array:
    """The layer's memory for an encoded input ``u`` of shape ``(T, ...)``: ``(T, ..., q)``.

    ``method``: ``"fft"`` (convolution), ``"diagonal"`` (parallel scan in the eigenvector
    basis) or ``"loop"`` (``lax.scan``, one step after another: how the trained layer runs as an
    RNN on a stream, one input at a time). Defined in chapter 8.
    """
    method = _check_method(method, LAYER_METHODS)
    mem = jax.tree_util.tree_map(jax.lax.stop_gradient, params["memory"])
    if method == "fft":
        return _memory_fft(mem["Ad"], mem["Bd"], u)
    if method == "loop":
        return _memory_loop(mem["Ad"], mem["Bd"], u)
    return _memory_diagonal(mem["lam"], mem["V"], mem["w"], u)


def layer_apply(params, x, h0=None, *, method: str = "fft") -> jax.Array:
    """The parallel LMU layer: ``x`` ``(T, batch, in_dim)`` -> ``h`` ``(T, batch, hidden)``.

    For every step at once:

        ``u[t] = x[t] We + be``                          (memory_dim scalar signals)
        ``m[t] = sum_k H[k] u[t-k]``, ``H[k] = Ad^k Bd``  (the LMU memory of each signal)
        ``h[t] = tanh(m[t] Wm + x[t] Wx + bh)``          (m flattened to memory_dim * q)

    ``method="fft"`` computes the memory by FFT convolution, ``"diagonal"`` by a parallel scan
    (``scanbook.jax.linear_recurrence``) in the eigenvector basis, ``"loop"`` step by step
    (``lax.scan``, the reference and the RNN form); they agree while the eigenvector basis is
    well conditioned (small ``order``). Differentiable with ``jax.grad`` in ``x`` and in the
    trained parameters; the memory's matrices are constants (``stop_gradient``).

    ``h0`` is accepted for the signature of :mod:`scanbook.models` and must be None: the
    memory starts at zero. ``layer`` bundles ``layer_init`` and ``layer_apply`` as a model for
    :mod:`scanbook.train`.

    Raises:
        ValueError: ``x`` not 3-D, of the wrong input width or with ``T = 0`` (as the models
            of chapter 6); an unknown ``method``; ``h0`` not None.
        TypeError: ``x`` not float32/float64.

    Defined in chapter 8.
    """
    method = _check_method(method, LAYER_METHODS)
    if h0 is not None:
        raise ValueError("h0 must be None: the LMU memory starts at zero")
    x = jnp.asarray(x)
    if x.dtype not in (jnp.float32, jnp.float64):
        raise TypeError(f"x must have dtype float32 or float64; got {x.dtype}")
    in_dim = params["encoder"]["We"].shape[0]
    if x.ndim != 3 or x.shape[2] != in_dim:
        raise ValueError(f"x must have shape (T, batch, in_dim={in_dim}); got {x.shape}")
    enc, hid = params["encoder"], params["hidden"]
    T, batch = x.shape[0], x.shape[1]
    if T == 0:
        raise ValueError(f"x must hold at least one time step (T >= 1); got shape {x.shape}")
    u = x @ enc["We"] + enc["be"]  # (T, batch, memory_dim)
    m = memory(params, u, method=method)  # (T, batch, memory_dim, q)
    m = m.reshape(T, batch, -1)
    return jnp.tanh(m @ hid["Wm"] + x @ hid["Wx"] + hid["bh"])


layer = SimpleNamespace(init=layer_init, apply=layer_apply, __name__="lmu")
"""The parallel LMU layer as a model for :mod:`scanbook.train`:
``sb.train.init(key, sb.lti.layer, in_dim, hidden, n_classes, order=..., theta=...)``.
Defined in chapter 8."""

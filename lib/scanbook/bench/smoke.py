"""Every GPU kernel and backend against a float64 reference, in seconds (before any timing).

Defined for chapters 3-5: the first step of the GPU run (``benchmarks/device_run.sh``). Run
it with ``python -m scanbook.bench smoke [--quick] [--only GROUP ...] [--json PATH]``.

One line a check: ``ok``, ``FAIL`` or ``not run`` (with the reason), the kernel, the dtype,
the shape, the direction and the error ``max |got - want| / (1 + |want|)`` against a float64
loop on random inputs (decays of both signs in [0.5, 1), never zero). The shapes include
``T = 1``, lengths that are no multiple of any block (1000, 4099, 65537, 100003) and ``C = 1``.

Groups (``--only``):

* ``cupy``: :func:`scanbook.kernels.cupy_raw.linear_recurrence` with every ``method``
  (serial, three_phase, single_pass, auto) into an output first filled with NaN, forward and
  reverse, float32 and float64; its fused gradient ``linear_recurrence_vjp``; ``stream_add``;
  and NVRTC's compile of every ``.cu`` file for ``sm_90`` (``compile_check``);
* ``numba``: chapter 3's kernels: the one-block scans (Hillis & Steele, Blelloch, padded),
  the scan of any length, the recurrence with shared memory and with warp shuffles;
* ``backends``: :func:`scanbook.linear_recurrence` and :func:`scanbook.linear_recurrence_vjp`
  with ``backend="numba_cuda"``, ``"cupy"`` and ``"jax"``;
* ``jax``: :func:`scanbook.jax.linear_recurrence` and its two gradients (the custom VJP and
  autodiff through ``associative_scan``), on the GPU (``not run`` when JAX has none).

The exit status is 1 when a check failed, else 0.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial

import numpy as np

from .. import backends as _backends
from .common import device_name, header, write_json

__all__ = ["Check", "GROUPS", "SHAPES", "QUICK_SHAPES", "reference", "reference_vjp", "run"]

GROUPS = ("cupy", "numba", "backends", "jax")
#: (T, C) on a GPU: T = 1, T no multiple of any block, C = 1, several blocks of every kernel
SHAPES = ((1, 1), (1000, 1), (4099, 3), (5000, 64), (65537, 33), (100003, 1))
#: (T, C) on the emulated GPU and in Numba's simulator, where every thread is a CPU thread
QUICK_SHAPES = ((1, 1), (33, 1), (300, 3), (1000, 1))
TOL = {"float32": 1e-4, "float64": 1e-10}


@dataclass
class Check:
    """One line of the smoke test: ``status`` is ``"ok"``, ``"FAIL"`` or ``"not run"``.

    Defined for chapters 3-5.
    """

    group: str
    name: str
    dtype: str = ""
    T: int | None = None
    C: int | None = None
    direction: str = ""
    err: float | None = None
    tol: float | None = None
    status: str = "ok"
    detail: str = ""
    seconds: float = 0.0

    def line(self) -> str:
        shape = "" if self.T is None else f"T={self.T:<6} C={self.C:<3}"
        err = "" if self.err is None else f"err {self.err:.1e} (tol {self.tol:.0e})"
        text = f"{self.status:<8}{self.group + '.' + self.name:<34}{self.dtype:<8}{shape:<16}"
        text += f"{self.direction:<10}{err:<24}{self.detail}"
        return text.rstrip()


# ----------------------------------------------------------------------------------------------
# float64 references
# ----------------------------------------------------------------------------------------------


def reference(a, b, h0, reverse: bool = False) -> np.ndarray:
    """``h[t] = a[t] h[t-1] + b[t]`` (``h[t+1]`` with ``reverse``) in float64, on the host.

    Defined in chapter 1 (the loop); used by the GPU run of chapters 3-5.
    """
    a, b = (np.asarray(x, np.float64) for x in (a, b))
    x = np.array(h0, np.float64)
    h = np.empty_like(b)
    steps = range(a.shape[0] - 1, -1, -1) if reverse else range(a.shape[0])
    for t in steps:
        x = a[t] * x + b[t]
        h[t] = x
    return h


def reference_vjp(a, b, h0, g, reverse: bool = False):
    """``(da, db, dh0)`` of ``sum(g * h)`` in float64: ``db`` runs the recurrence of ``g``
    backwards with the decays shifted by one step, ``da[t] = db[t] h[t-1]``, ``dh0 = a[0]
    db[0]`` (mirrored for ``reverse``). Defined in chapter 5."""
    a, b, g = (np.asarray(x, np.float64) for x in (a, b, g))
    h0 = np.asarray(h0, np.float64)
    if reverse:
        da, db, dh0 = reference_vjp(a[::-1], b[::-1], h0, g[::-1])
        return da[::-1], db[::-1], dh0
    h = reference(a, b, h0)
    shifted = np.concatenate([a[1:], np.ones_like(a[:1])])
    db = reference(shifted, g, np.zeros_like(h0), reverse=True)
    before = np.concatenate([h0[None], h[:-1]])
    return db * before, db, a[0] * db[0]


def _err(got, want, scale: float = 1.0) -> float:
    got = np.asarray(got, np.float64)
    if got.shape != want.shape:
        return float("inf")
    if not np.isfinite(got).all():
        return float("nan")
    if got.size == 0:
        return 0.0
    return float(np.max(np.abs(got - want) / (scale + np.abs(want))))


def _inputs(T: int, C: int, dtype, seed: int):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 1.0, (T, C)) * rng.choice([-1.0, 1.0], (T, C))
    b, g = rng.standard_normal((T, C)), rng.standard_normal((T, C))
    h0 = rng.standard_normal(C)
    return tuple(x.astype(dtype) for x in (a, b, h0, g))


# ----------------------------------------------------------------------------------------------
# running checks
# ----------------------------------------------------------------------------------------------


class _Runner:
    def __init__(self, log: Callable[[str], None]):
        self.log = log
        self.checks: list[Check] = []

    def add(self, check: Check) -> Check:
        self.checks.append(check)
        self.log(check.line())
        return check

    def not_run(self, group: str, name: str, why: str) -> None:
        self.add(Check(group, name, status="not run", detail=why))

    def compare(self, group, name, fn, want, *, dtype, T=None, C=None, direction="", scale=1.0):
        """Run ``fn()`` (one array or a tuple) against ``want`` (the float64 truth); the error
        of each element is relative to ``scale + |want|``."""
        tol = TOL[np.dtype(dtype).name]
        check = Check(group, name, np.dtype(dtype).name, T, C, direction, tol=tol)
        start = time.perf_counter()
        try:
            got = fn()
            got, want = (x if isinstance(x, tuple) else (x,) for x in (got, want))
            pairs = zip(got, want, strict=True)
            check.err = max(_err(_host(g), w, scale) for g, w in pairs)
            check.status = "ok" if check.err <= tol else "FAIL"
        except Exception as exc:  # noqa: BLE001 - a broken kernel is a failed check, not a crash
            check.status, check.detail = "FAIL", f"{type(exc).__name__}: {exc}"[:200]
        check.seconds = time.perf_counter() - start
        self.add(check)


def _host(x):
    """A NumPy array of a NumPy, CuPy, Numba device or JAX array."""
    if hasattr(x, "copy_to_host"):
        return x.copy_to_host()
    if type(x).__module__.startswith("cupy") or hasattr(x, "get") and hasattr(x, "data"):
        return x.get()
    return np.asarray(x)


def _poisoned(cp, kernel, a, b, h0, *, reverse, method):
    out = cp.full(a.shape, np.nan, a.dtype)  # poisoned: is every element written?
    kernel(a, b, h0, reverse=reverse, method=method, out=out)
    return out


def _cupy_vjp(cp, cupy_raw, a, b, h0, g, *, reverse):
    h = cupy_raw.linear_recurrence(a, b, h0, reverse=reverse, method="single_pass")
    return cupy_raw.linear_recurrence_vjp(a, b, h0, h, g, reverse=reverse)


def _cupy_checks(run: _Runner, shapes, directions) -> None:
    try:
        import cupy as cp

        from ..kernels import cupy_raw
    except ImportError as exc:
        run.not_run("cupy", "*", f"CuPy cannot be imported ({exc})")
        return
    if not _backends.has_gpu():
        run.not_run("cupy", "*", "no CUDA GPU")
        return
    for dtype in (np.float32, np.float64):
        for i, (T, C) in enumerate(shapes):
            a, b, h0, g = _inputs(T, C, dtype, seed=i)
            dev = tuple(cp.asarray(x) for x in (a, b, h0, g))
            for reverse in directions:
                kw = {"dtype": dtype, "T": T, "C": C, "direction": _direction(reverse)}
                want = reference(a, b, h0, reverse)
                for method in ("serial", "three_phase", "single_pass", "auto"):
                    fwd = partial(_poisoned, cp, cupy_raw.linear_recurrence, *dev[:3],
                                  reverse=reverse, method=method)  # fmt: skip
                    run.compare("cupy", method, fwd, want, **kw)
                vjp = partial(_cupy_vjp, cp, cupy_raw, *dev, reverse=reverse)
                run.compare("cupy", "linear_recurrence_vjp", vjp,
                            reference_vjp(a, b, h0, g, reverse), **kw)  # fmt: skip
            add = partial(cupy_raw.stream_add, *dev[:2])
            run.compare("cupy", "stream_add", add, a.astype(np.float64) + b, dtype=dtype, T=T, C=C)
    start = time.perf_counter()
    try:
        ptx = cupy_raw.compile_check("sm_90")
        check = Check("cupy", "compile_check sm_90", detail=f"{len(ptx)} files to PTX")
    except RuntimeError as exc:
        status = "not run" if "needs NVRTC" in str(exc) else "FAIL"
        check = Check("cupy", "compile_check sm_90", status=status, detail=str(exc)[:200])
    check.seconds = time.perf_counter() - start
    run.add(check)


def _direction(reverse: bool) -> str:
    return "reverse" if reverse else "forward"


def _numba_checks(run: _Runner, shapes, directions) -> None:
    if "numba_cuda" not in _backends.available_backends():
        run.not_run("numba", "*", "Numba CUDA is not available")
        return
    from ..kernels import numba_cuda as nc

    simulator = _backends.cuda_simulator()
    rng = np.random.default_rng(7)
    for dtype in (np.float32, np.float64):
        for n in (1, 1000) if simulator else (1, 1000, 1024):
            x = rng.standard_normal(n).astype(dtype)
            cum = np.cumsum(x.astype(np.float64))
            kw = {"dtype": dtype, "T": n, "C": 1}
            run.compare("numba", "hillis_steele_block_scan",
                        partial(nc.hillis_steele_block_scan, x), cum, **kw)  # fmt: skip
            for padded in (False, True):
                for exclusive in (False, True):
                    name = "blelloch_block_scan" + (" padded" if padded else "")
                    scan = partial(nc.blelloch_block_scan, x, exclusive=exclusive, padded=padded)
                    direction = "exclusive" if exclusive else "inclusive"
                    want = cum - x if exclusive else cum
                    run.compare("numba", name, scan, want, direction=direction, **kw)
        for n in (3000,) if simulator else (3000, 1_000_003):
            x = rng.standard_normal(n).astype(dtype)
            # a running sum of n terms is about sqrt(n) in size: the error is relative to that
            scan = partial(nc.scan, x, block=256 if simulator else 1024)
            run.compare("numba", "scan", scan, np.cumsum(x.astype(np.float64)),
                        dtype=dtype, T=n, C=1, scale=np.sqrt(n))  # fmt: skip
        for i, (T, C) in enumerate(shapes):
            a, b, h0, _ = _inputs(T, C, dtype, seed=100 + i)
            for reverse in directions:
                kw = {"dtype": dtype, "T": T, "C": C, "direction": _direction(reverse)}
                want = reference(a, b, h0, reverse)
                kernels = [nc.linear_recurrence] + (
                    [] if simulator else [nc.linear_recurrence_shfl]
                )
                for f in kernels:
                    run.compare("numba", f.__name__, partial(f, a, b, h0, reverse=reverse),
                                want, **kw)  # fmt: skip
    if simulator:
        run.not_run("numba", "linear_recurrence_shfl", "Numba's simulator has no warp shuffles")


def _forward_and_vjp(sb, a, b, h0, g, *, reverse, backend):
    h = sb.linear_recurrence(a, b, h0, reverse=reverse, backend=backend)
    return tuple(sb.linear_recurrence_vjp(a, b, h0, h, g, reverse=reverse, backend=backend))


def _backend_checks(run: _Runner, shapes, directions) -> None:
    import scanbook as sb

    available = _backends.available_backends()
    for backend in ("numba_cuda", "cupy", "jax"):
        if backend not in available:
            run.not_run("backends", backend, "backend not available on this machine")
            continue
        for dtype in (np.float32, np.float64):
            for i, (T, C) in enumerate(shapes[:3]):
                a, b, h0, g = _inputs(T, C, dtype, seed=200 + i)
                args = (a, b, h0, g)
                if backend == "cupy":
                    import cupy as cp

                    args = tuple(cp.asarray(x) for x in args)
                for reverse in directions:
                    kw = {"dtype": dtype, "T": T, "C": C, "direction": _direction(reverse)}
                    fwd = partial(sb.linear_recurrence, *args[:3], reverse=reverse,
                                  backend=backend)  # fmt: skip
                    run.compare("backends", f"{backend} forward", fwd,
                                reference(a, b, h0, reverse), **kw)  # fmt: skip
                    vjp = partial(_forward_and_vjp, sb, *args, reverse=reverse, backend=backend)
                    run.compare("backends", f"{backend} vjp", vjp,
                                reference_vjp(a, b, h0, g, reverse), **kw)  # fmt: skip


def _jax_grads(jax, f, a, b, h0, g, *, reverse):
    h, pullback = jax.vjp(jax.jit(partial(f, reverse=reverse)), a, b, h0)
    return (h, *pullback(g))


def _jax_checks(run: _Runner, shapes, directions) -> None:
    try:
        import jax
    except ImportError as exc:
        run.not_run("jax", "*", f"JAX cannot be imported ({exc})")
        return
    platform = jax.devices()[0].platform
    if platform != "gpu":
        run.not_run("jax", "*", f"JAX runs on {platform}, not on a GPU")
        return
    from .. import jax as sbjax

    for i, (T, C) in enumerate(shapes[:4]):
        a, b, h0, g = _inputs(T, C, np.float32, seed=300 + i)
        for reverse in directions:
            kw = {"dtype": np.float32, "T": T, "C": C, "direction": _direction(reverse)}
            want = (reference(a, b, h0, reverse), *reference_vjp(a, b, h0, g, reverse))
            for name, f in (("custom VJP", sbjax.linear_recurrence),
                            ("autodiff", sbjax.linear_recurrence_autodiff)):  # fmt: skip
                grads = partial(_jax_grads, jax, f, a, b, h0, g, reverse=reverse)
                run.compare("jax", name, grads, want, **kw)


def run(groups=GROUPS, *, quick: bool = False, log: Callable[[str], None] = print) -> list[Check]:
    """Run the checks of ``groups`` (see :data:`GROUPS`); one :class:`Check` each, logged as
    it finishes. ``quick``: the small :data:`QUICK_SHAPES` (for the emulated GPU and Numba's
    simulator) instead of :data:`SHAPES`. Defined for chapters 3-5."""
    for g in groups:
        if g not in GROUPS:
            raise ValueError(f"groups must be drawn from {list(GROUPS)}; got {g!r}")
    shapes = QUICK_SHAPES if quick else SHAPES
    directions = (False, True)
    runner = _Runner(log)
    table = {"cupy": _cupy_checks, "numba": _numba_checks, "backends": _backend_checks,
             "jax": _jax_checks}  # fmt: skip
    for g in groups:
        try:
            table[g](runner, shapes, directions)
        except Exception as exc:  # noqa: BLE001 - one group's crash must not hide the others
            runner.add(Check(g, "*", status="FAIL", detail=f"{type(exc).__name__}: {exc}"[:200]))
    return runner.checks


def main(argv: list[str] | None = None) -> int:
    """``python -m scanbook.bench smoke``: one line a check, a count, exit 1 on a failure."""
    parser = argparse.ArgumentParser(
        prog="python -m scanbook.bench smoke", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small shapes (emulated GPU)")
    parser.add_argument("--only", nargs="+", choices=GROUPS, default=list(GROUPS),
                        metavar="GROUP", help=f"some of {list(GROUPS)}")  # fmt: skip
    parser.add_argument("--json", metavar="PATH", help="also write every check to this file")
    args = parser.parse_args(argv)

    def log(line: str) -> None:
        print(line, flush=True)

    log(f"smoke test on {device_name()}: every kernel against a float64 loop")
    start = time.perf_counter()
    checks = run(args.only, quick=args.quick, log=log)
    counts = {s: sum(c.status == s for c in checks) for s in ("ok", "FAIL", "not run")}
    log(f"smoke: {counts['ok']} ok, {counts['FAIL']} FAILED, {counts['not run']} not run "
        f"({time.perf_counter() - start:.0f} s)")  # fmt: skip
    if args.json:
        write_json(args.json, header("smoke", device=device_name(),
                                     records=[asdict(c) for c in checks]))  # fmt: skip
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

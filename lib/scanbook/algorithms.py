"""Parallel scan algorithms, generic in the operator, with an optional trace.

Defined in chapter 2.

Each algorithm is written as a sequence of *levels*. Within a level every operator
application is independent of the others, so a machine with enough processors does a whole
level in one step: the number of levels is the **depth** (span) of the algorithm and the
number of operator applications is its **work**. Here a level is one vectorised NumPy
expression over all its pairs at once, which is both the "for all i in parallel" of the
pseudocode and a fair picture of what a GPU does.

Pass a :class:`Trace` to record, level by level, which pairs of positions were combined (and,
optionally, the values after each level). Chapter 2 counts work and depth from it, and the
scan-tree explorer in :mod:`scanbook.viz` draws it.

* :func:`hillis_steele`: ``ceil(log2 n)`` levels, ``n log2 n`` work (not work-efficient).
* :func:`blelloch`: up-sweep then down-sweep, ``2 log2 n`` levels, about ``2n`` work.
* :func:`chunked`: the three-phase scan of Martin & Cundy (2018), Algorithm 1: reduce ``p``
  chunks in parallel, scan the ``p`` chunk totals, then scan each chunk from its carry-in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import ops as _ops
from . import serial as _serial
from .ops import Elements, Operator

__all__ = ["Level", "Trace", "hillis_steele", "blelloch", "chunked", "scan", "ALGORITHMS"]


@dataclass
class Level:
    """One parallel step: every pair in it is combined at the same time.

    Attributes:
        phase: which part of the algorithm (``"sweep"``, ``"up-sweep"``, ``"clear-root"``,
            ``"down-sweep"``, ``"reduce"``, ``"carry"``, ``"scan"``).
        pairs: ``(src, dst)`` position pairs. For ``kind == "combine"`` the step is
            ``x[dst] = x[src] ⊕ x[dst]`` (``src`` earlier); for ``kind == "swap"`` (Blelloch's
            down-sweep) it is ``x[src], x[dst] = x[dst], x[dst] ⊕ x[src]``.
        kind: ``"combine"`` or ``"swap"``.
        values: the whole working array after this level, when the trace records values.

    Defined in chapter 2.
    """

    phase: str
    pairs: list[tuple[int, int]]
    kind: str = "combine"
    values: object = None

    @property
    def work(self) -> int:
        return len(self.pairs)


@dataclass
class Trace:
    """A record of the levels an algorithm executed.

    Args:
        record_values: also keep a copy of the working array after every level (for the
            explorer; costs memory, so keep ``n`` small).

    Attributes:
        n: the input length; ``n_padded`` the length of the working array (Blelloch pads to a
            power of two, the chunked scan to a multiple of the chunk count).
        levels: the levels in execution order; ``initial`` the working array before them.

    Defined in chapter 2.
    """

    record_values: bool = False
    algorithm: str = ""
    n: int = 0
    n_padded: int = 0
    levels: list[Level] = field(default_factory=list)
    initial: object = None

    @property
    def work(self) -> int:
        """Total operator applications (identity-padding moves excluded, see Blelloch)."""
        return sum(level.work for level in self.levels)

    @property
    def depth(self) -> int:
        """Number of levels that apply the operator at least once."""
        return sum(1 for level in self.levels if level.work > 0)

    def phases(self) -> dict[str, tuple[int, int]]:
        """``{phase: (work, depth)}`` in order of first appearance."""
        out: dict[str, tuple[int, int]] = {}
        for level in self.levels:
            w, d = out.get(level.phase, (0, 0))
            out[level.phase] = (w + level.work, d + (level.work > 0))
        return out

    def _start(self, algorithm: str, n: int, n_padded: int, xs) -> None:
        self.algorithm, self.n, self.n_padded = algorithm, n, n_padded
        self.levels = []
        self.initial = _ops.copy(xs) if self.record_values else None

    def _add(self, phase: str, pairs, kind: str, xs) -> None:
        values = _ops.copy(xs) if self.record_values else None
        self.levels.append(Level(phase, [(int(s), int(d)) for s, d in pairs], kind, values))


# -- the shared level operations -----------------------------------------------------------


def _combine_level(op: Operator, x, src: np.ndarray, dst: np.ndarray) -> None:
    """``x[dst] = x[src] ⊕ x[dst]`` for all pairs at once (reads happen before writes)."""
    if len(dst):
        _ops.put(x, dst, op.combine(_ops.take(x, src), _ops.take(x, dst)))


def _swap_level(op: Operator, x, left: np.ndarray, right: np.ndarray) -> None:
    """Blelloch's down-sweep step: ``x[left], x[right] = x[right], x[right] ⊕ x[left]``."""
    if len(right):
        total_left = _ops.take(x, left)
        prefix = _ops.take(x, right)
        _ops.put(x, left, prefix)
        _ops.put(x, right, op.combine(prefix, total_left))


def _shift_right(op: Operator, inclusive, xs):
    """Exclusive result from an inclusive one: identity first, then all but the last."""
    n = _ops.length(xs)
    return _ops.concat([op.identity(xs, 1), _ops.take(inclusive, slice(0, n - 1))])


def _check_exclusive(exclusive) -> None:
    if not isinstance(exclusive, bool | np.bool_):
        raise TypeError(f"exclusive must be True or False; got {exclusive!r}")


def _as_numbers(name: str, x) -> np.ndarray:
    """``x`` as a NumPy array of numbers (bool, int, float, complex), or a TypeError naming it."""
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as err:  # a ragged list
        raise TypeError(
            f"{name} must be an array of numbers of one shape; got {x!r:.60} ({err})"
        ) from err
    if arr.dtype.kind not in "biufc":
        raise TypeError(f"{name} must be an array of numbers; got dtype {arr.dtype}")
    return arr


_NO_BOOL = {"add": "xs", "affine": "a, b", "matrix_affine": "A, b"}


def _validate(op, xs, exclusive=False) -> tuple[int, Elements]:
    """Check ``op``, ``xs`` and ``exclusive``; return the length and the elements as arrays.

    One set of rules for every algorithm: numbers only; for the affine operators, ``a`` and
    ``b`` of one shape (``A`` of shape ``(n, *batch, k, k)`` with ``b`` ``(n, *batch, k)``);
    ``add`` and the affine operators refuse booleans, which NumPy would add as a logical or.
    """
    if not isinstance(op, Operator):
        raise TypeError(f"op must be a scanbook.ops.Operator (e.g. ops.add); got {op!r}")
    _check_exclusive(exclusive)
    if op.name in ("affine", "matrix_affine"):
        if not (isinstance(xs, tuple) and len(xs) == 2):
            raise TypeError(f"ops.{op.name} scans pairs (a, b) of arrays; got {type(xs).__name__}")
        na = "A" if op.name == "matrix_affine" else "a"
        a, b = _as_numbers(na, xs[0]), _as_numbers("b", xs[1])
        for name, x in ((na, a), ("b", b)):
            if x.ndim == 0:
                raise ValueError(f"{name} must have a leading (time) axis; got shape ()")
            if x.dtype == np.bool_:
                raise TypeError(
                    f"ops.{op.name} needs numbers, not booleans; got {name} of dtype bool"
                )
        if a.shape[0] != b.shape[0]:
            raise ValueError(
                f"{na} and b must have the same length; got {a.shape[0]} and {b.shape[0]}"
            )
        if op.name == "affine" and a.shape != b.shape:
            raise ValueError(f"a and b must have the same shape; got {a.shape} and {b.shape}")
        if op.name == "matrix_affine":
            if a.ndim < 3 or a.shape[-1] != a.shape[-2]:
                raise ValueError(f"A must have shape (n, *batch, k, k); got {a.shape}")
            if b.shape != a.shape[:-1]:
                raise ValueError(
                    f"b must have shape (n, *batch, k) = {a.shape[:-1]} to match A "
                    f"{a.shape}; got {b.shape}"
                )
        return int(a.shape[0]), (a, b)
    if isinstance(xs, tuple):
        raise TypeError(f"ops.{op.name} scans one array; got a tuple of {len(xs)}")
    x = _as_numbers("xs", xs)
    if x.ndim == 0:
        raise ValueError(f"xs must have a leading (time) axis; got shape {x.shape}")
    if op.name == "add" and x.dtype == np.bool_:
        raise TypeError(
            "ops.add needs numbers, not booleans (NumPy adds them as a logical or); "
            "got xs of dtype bool: count with xs.astype(int)"
        )
    return len(x), x


# -- Hillis & Steele -----------------------------------------------------------------------


def hillis_steele(
    op: Operator, xs: Elements, *, exclusive: bool = False, trace: Trace | None = None
) -> Elements:
    """Hillis & Steele (1986): at level ``k`` every position ``i >= 2^k`` adds in ``i - 2^k``.

    ``ceil(log2 n)`` levels; level ``k`` does ``n - 2^k`` applications, so the work is
    ``n ceil(log2 n) - 2^ceil(log2 n) + 1``: more than the serial ``n - 1`` by a factor ``log n``.

    Defined in chapter 2.
    """
    n, xs = _validate(op, xs, exclusive)
    x = _ops.copy(xs)
    if trace is not None:
        trace._start("hillis_steele", n, n, x)
    d = 1
    while d < n:
        dst = np.arange(d, n)
        _combine_level(op, x, dst - d, dst)
        if trace is not None:
            trace._add("sweep", zip(dst - d, dst, strict=True), "combine", x)
        d *= 2
    return _shift_right(op, x, xs) if exclusive and n else x


# -- Blelloch ------------------------------------------------------------------------------


def blelloch(
    op: Operator, xs: Elements, *, exclusive: bool = False, trace: Trace | None = None
) -> Elements:
    """Blelloch (1990): the work-efficient scan, an up-sweep (reduce) then a down-sweep.

    The input is padded with identity elements to a power of two ``m``. The up-sweep builds
    a tree of partial reductions in place (``log2 m`` levels); the root is replaced by the
    identity and the down-sweep pushes prefixes back down (``log2 m`` levels), leaving the
    exclusive scan. Operations whose left subtree lies wholly in the padding combine
    identities and are skipped, so the work counts only applications that touch real data
    (``2(n - 1)`` when ``n`` is a power of two).
    The inclusive scan is the exclusive one shifted left by one, with the total last.

    Defined in chapter 2.
    """
    n, xs = _validate(op, xs, exclusive)
    if n == 0:
        return _ops.copy(xs)
    m = 1 << (n - 1).bit_length()
    x = _ops.concat([_ops.copy(xs), op.identity(xs, m - n)]) if m > n else _ops.copy(xs)
    if trace is not None:
        trace._start("blelloch", n, m, x)

    d = 1  # up-sweep: right child of each pair absorbs its left sibling
    while d < m:
        right = np.arange(2 * d - 1, m, 2 * d)
        left = right - d
        real = left - d + 1 < n  # left subtree all padding: identity ⊕ identity, skipped
        _combine_level(op, x, left[real], right[real])
        if trace is not None:
            trace._add("up-sweep", zip(left[real], right[real], strict=True), "combine", x)
        d *= 2

    total = _ops.copy(_ops.take(x, slice(m - 1, m)))  # a copy: the root is cleared next
    _ops.put(x, slice(m - 1, m), op.identity(xs, 1))
    if trace is not None:
        trace._add("clear-root", [], "combine", x)

    d = m // 2  # down-sweep: left gets the prefix, right gets prefix ⊕ left total
    while d >= 1:
        right = np.arange(2 * d - 1, m, 2 * d)
        left = right - d
        real = left - d + 1 < n
        _swap_level(op, x, left[real], right[real])
        if trace is not None:
            trace._add("down-sweep", zip(left[real], right[real], strict=True), "swap", x)
        d //= 2

    excl = _ops.take(x, slice(0, n))
    if exclusive:
        return _ops.copy(excl)
    return _ops.concat([_ops.take(excl, slice(1, n)), total])


# -- chunked three-phase (Martin & Cundy, Algorithm 1) -------------------------------------


def default_chunks(n: int) -> int:
    """About ``sqrt(n)`` chunks: balances the ``2n/p`` chunk steps against ``p`` carry steps."""
    return max(1, int(round(np.sqrt(n))))


def chunked(
    op: Operator,
    xs: Elements,
    *,
    exclusive: bool = False,
    n_chunks: int | None = None,
    trace: Trace | None = None,
) -> Elements:
    """The three-phase scan of Martin & Cundy (2018), Algorithm 1, on ``p = n_chunks`` processors.

    1. **reduce**: each processor reduces its own contiguous chunk of ``L = ceil(n / p)``
       elements (``L - 1`` levels of ``p`` applications);
    2. **carry**: the chunk totals are scanned serially (``p - 2`` levels of one
       application), giving each chunk the reduction of everything before it;
    3. **scan**: each processor scans its chunk again, starting from its carry-in
       (``L`` levels of up to ``p`` applications).

    Work about ``2n + p``, depth about ``2n/p + p``. On a GPU each chunk is read twice but
    from contiguous memory by one worker, and only ``p`` values cross between workers, which
    is why this shape suits GPUs (chapter 2, section 2.7; the kernels of chapters 3 and 4).
    The last chunk is padded with identities; those applications are not counted.

    Defined in chapter 2.
    """
    n, xs = _validate(op, xs, exclusive)
    if n_chunks is not None and (
        isinstance(n_chunks, bool) or not isinstance(n_chunks, int | np.integer) or n_chunks < 1
    ):
        raise ValueError(f"n_chunks must be a positive integer or None; got {n_chunks!r}")
    if n == 0:
        return _ops.copy(xs)
    p = min(default_chunks(n) if n_chunks is None else int(n_chunks), n)
    L = -(-n // p)
    m = p * L
    x = _ops.concat([_ops.copy(xs), op.identity(xs, m - n)]) if m > n else _ops.copy(xs)
    if trace is not None:
        trace._start("chunked", n, m, x)
    starts = np.arange(p) * L

    # Phase 1: reduce each chunk into its last slot, in a scratch copy (the input stays).
    red = _ops.copy(x)
    for j in range(1, L):
        src, dst = starts + j - 1, starts + j
        real = dst < n
        _combine_level(op, red, src[real], dst[real])
        # the padding slots carry the running total forward untouched
        pad = ~real & (src < m)
        if pad.any():
            _ops.put(red, dst[pad], _ops.take(red, src[pad]))
        if trace is not None:
            trace._add("reduce", zip(src[real], dst[real], strict=True), "combine", red)
    totals = _ops.take(red, starts + L - 1)

    # Phase 2: serial scan of the chunk totals: chunk k's carry-in is the reduction of chunks
    # 0..k-1 (chunk 0 needs none, chunk 1's is total 0 as it is): p - 2 applications.
    running = _serial.scan(op, _ops.take(totals, slice(0, p - 1)))
    carry = _ops.concat([op.identity(xs, 1), running])
    if trace is not None:
        for k in range(1, p - 1):
            trace._add(
                "carry", [(int(starts[k - 1] + L - 1), int(starts[k] + L - 1))], "combine", red
            )

    # Phase 3: scan each chunk from its carry-in (chunk 0 starts from the identity).
    for j in range(L):
        dst = starts + j
        real = dst < n
        prev = carry if j == 0 else _ops.take(x, dst - 1)
        has_prev = real.copy()
        if j == 0:
            has_prev[0] = False  # chunk 0's carry-in is the identity: nothing to apply
        ks = np.nonzero(has_prev)[0]
        if len(ks):
            _ops.put(x, dst[ks], op.combine(_ops.take(prev, ks), _ops.take(x, dst[ks])))
        if trace is not None:
            src = dst - 1  # at j == 0 that is the end of the previous chunk: its carry
            trace._add("scan", zip(src[ks], dst[ks], strict=True), "combine", x)

    incl = _ops.take(x, slice(0, n))
    return _shift_right(op, incl, xs) if exclusive else incl


ALGORITHMS = {
    "serial": None,
    "hillis_steele": hillis_steele,
    "blelloch": blelloch,
    "chunked": chunked,
}


def scan(
    op: Operator,
    xs: Elements,
    *,
    algorithm: str = "serial",
    exclusive: bool = False,
    trace: Trace | None = None,
) -> Elements:
    """Scan ``xs`` with operator ``op`` using the named algorithm.

    Args:
        op: an operator from :mod:`scanbook.ops` (``add``, ``maximum``, ``affine``,
            ``matrix_affine``).
        xs: an array with time as its leading axis, or a pair ``(a, b)`` for the affine
            operators.
        algorithm: ``"serial"``, ``"hillis_steele"``, ``"blelloch"`` or ``"chunked"``.
        exclusive: exclusive scan (identity first) instead of inclusive.
        trace: a :class:`Trace` to record levels in (not for ``"serial"``).

    Defined in chapter 2; the serial definition in chapter 1.
    """
    if not isinstance(algorithm, str):
        raise TypeError(
            f"algorithm must be a string, one of {sorted(ALGORITHMS)}; "
            f"got {type(algorithm).__name__} {algorithm!r:.60}"
        )
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {sorted(ALGORITHMS)}; got {algorithm!r}")
    if algorithm == "serial":
        _, xs = _validate(op, xs, exclusive)
        if trace is not None:
            raise ValueError("trace is recorded by the parallel algorithms; got algorithm='serial'")
        return _serial.scan(op, xs, exclusive=exclusive)
    return ALGORITHMS[algorithm](op, xs, exclusive=exclusive, trace=trace)

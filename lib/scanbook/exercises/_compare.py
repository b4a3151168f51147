"""Comparing a reader's answer with the expected one: :func:`compare`, :func:`tolerance`,
:func:`format_value`, :func:`is_numeric`, :func:`same`.

Defined in chapter 1 (with the rest of the grading machinery, which re-exports these from
``scanbook.exercises._grading``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from . import _sandbox

# -- comparing -------------------------------------------------------------------------------


def tolerance(dtype) -> tuple[float, float]:
    """``(rtol, atol)`` for comparing answers of this dtype: exact for integers.

    Defined in chapter 1.
    """
    dtype = np.dtype(dtype)
    if dtype.kind in "biu":
        return 0.0, 0.0
    if dtype in (np.dtype(np.float16),):
        return 1e-2, 1e-2
    if dtype in (np.dtype(np.float32), np.dtype(np.complex64)):
        return 1e-4, 1e-5
    return 1e-9, 1e-12


def _as_array(x) -> np.ndarray | None:
    """``np.asarray(x)`` when ``x`` is numbers; ``None`` otherwise (or when converting fails)."""
    if isinstance(x, str | bytes):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = np.asarray(x)
    except Exception:  # noqa: BLE001 - ragged lists, an __array__ that raises
        return None
    return arr if arr.dtype.kind in "biufc" else None


def is_numeric(x) -> bool:
    """Is ``x`` a number or an array (or nested list) of numbers? Never raises.

    Defined in chapter 1.
    """
    return _as_array(x) is not None


def _describe(x) -> str:
    """The type of ``x`` and, when it cannot be made an array, why not."""
    kind = type(x).__name__
    if isinstance(x, str | bytes | list | tuple | dict) or x is None:
        return kind
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            np.asarray(x)
    except Exception as exc:  # noqa: BLE001
        return f"{kind} (converting it to an array raised {type(exc).__name__}: " + (
            f"{_sandbox.safe_str(exc)})"
        )
    return kind


def format_value(x, *, max_items: int = 12, precision: int = 4) -> str:
    """A short, readable rendering of an input or an answer (long arrays are elided).

    Never raises: an object whose ``repr`` fails is shown by its type. Defined in chapter 1.
    """
    try:
        return _format(x, max_items, precision)
    except Exception:  # noqa: BLE001
        return f"<{type(x).__name__} object>"


def _format(x, max_items: int, precision: int) -> str:
    if isinstance(x, tuple):
        return "(" + ", ".join(format_value(v, max_items=max_items) for v in x) + ")"
    if isinstance(x, list) and x and not is_numeric(x):
        items = [format_value(v, max_items=max_items) for v in x[:max_items]]
        more = f", ... ({len(x)} items)" if len(x) > max_items else ""
        return "[" + ", ".join(items) + more + "]"
    arr = _as_array(x)
    if arr is not None:
        if arr.ndim == 0:
            v = arr.item()
            return f"{v:.{precision}g}" if isinstance(v, float) else repr(v)
        with np.printoptions(precision=precision, threshold=max_items, edgeitems=4):
            text = np.array2string(arr, separator=", ")
        kind = type(x).__name__
        extra = f" ({kind}, shape {arr.shape}, {arr.dtype})" if arr.size > max_items else ""
        return " ".join(text.split()) + extra
    text = repr(x)
    return text if len(text) <= 200 else text[:200] + " ..."


def _pair(e, g) -> str:
    """``expected E, got G`` with enough digits that E and G look different."""
    for digits in (4, 8, 17):
        fe, fg = format_value(e, precision=digits), format_value(g, precision=digits)
        if fe != fg:
            break
    return f"expected {fe}, got {fg}"


def _precision_note(g: np.ndarray, exp: np.ndarray, bad: np.ndarray) -> str | None:
    """A sentence when the wrong values are right up to the precision of a dtype."""
    if g.dtype.kind in "biu" and exp.dtype.kind in "fc":
        return (
            f"your answer has the integer dtype {g.dtype}, so fractions are lost: "
            "make the result a float array"
        )
    if g.dtype.kind not in "fc" or exp.dtype.kind not in "fc":
        return None
    gb = g[bad].astype(np.complex128 if g.dtype.kind == "c" else np.float64)
    eb = exp[bad]
    with np.errstate(all="ignore"):
        rel = np.max(np.abs(gb - eb) / np.maximum(np.abs(eb), 1e-30))
    if not np.isfinite(rel) or rel > 5e-3:
        return None
    if np.finfo(g.dtype).eps > np.finfo(exp.dtype).eps:
        return (
            f"the values are right to {g.dtype} precision (relative error {rel:.1g}), but your "
            f"answer is {g.dtype}: the exercise expects {exp.dtype} (compute and return "
            f"{exp.dtype})"
        )
    return (
        f"the values are right to about {max(1, int(-math.log10(max(rel, 1e-300))))} digits "
        f"only (relative error {rel:.1g}): precision is lost somewhere (a float32 or float16 "
        "array or conversion inside the function?)"
    )


def compare(got, expected, *, rtol: float | None = None, atol: float | None = None) -> str | None:
    """``None`` when ``got`` matches ``expected``; otherwise a sentence saying what differs.

    Numbers, lists and arrays are compared as arrays (shape first, then values within
    ``rtol``/``atol``, NaNs equal to NaNs); tuples (pairs such as ``(a, b)``) item by item;
    anything else (strings) with ``==``. A value that is right only to a lower precision is
    reported as a dtype/precision problem. Defined in chapter 1.
    """
    if isinstance(expected, tuple):
        if not isinstance(got, tuple | list) or len(got) != len(expected):
            return f"expected a tuple of {len(expected)} items, got {type(got).__name__}" + (
                f" of {len(got)}" if isinstance(got, tuple | list) else ""
            )
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            why = compare(g, e, rtol=rtol, atol=atol)
            if why is not None:
                return f"item {i} of the tuple: {why}"
        return None
    if is_numeric(expected):
        exp = np.asarray(expected)
        if got is None:
            return "got None: did the function forget to `return` its result?"
        g = _as_array(got)
        if g is None:
            return f"expected numbers, got {_describe(got)}"
        if g.shape != exp.shape:
            return f"expected shape {exp.shape}, got shape {g.shape}"
        if exp.size == 0:
            return None
        r, a = tolerance(exp.dtype)
        r = r if rtol is None else rtol
        a = a if atol is None else atol
        with np.errstate(invalid="ignore", over="ignore"):
            if exp.dtype.kind in "biu" and g.dtype.kind in "biu":
                ok = np.asarray(g == exp)
            else:
                ok = np.isclose(
                    g.astype(np.complex128 if g.dtype.kind == "c" else np.float64),
                    exp,
                    rtol=r,
                    atol=a,
                    equal_nan=True,
                )
        if np.all(ok):
            return None
        bad = ~np.asarray(ok)
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        note = _precision_note(g, exp, bad)
        note = f"; {note}" if note else ""
        if exp.ndim == 0:
            return _pair(exp, g) + note
        where = first[0] if len(first) == 1 else first
        return (
            f"{int(bad.sum())} of {exp.size} values differ; the first at index {where}: "
            f"{_pair(exp[first], g[first])}{note}"
        )
    if isinstance(expected, list):
        if not isinstance(got, list | tuple):
            return f"expected a list, got {type(got).__name__}"
        if len(got) != len(expected):
            return f"expected {len(expected)} items, got {len(got)}"
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            why = compare(g, e, rtol=rtol, atol=atol)
            if why is not None:
                return f"item {i}: {why}"
        return None
    try:
        equal = bool(got == expected)
    except Exception:  # noqa: BLE001 - an array compared with a string, an __eq__ that raises
        equal = False
    return None if equal else f"expected {format_value(expected)}, got {format_value(got)}"


def same(got, expected) -> bool:
    """Quietly: does ``got`` match ``expected``? Never raises (for ``diagnose`` functions).

    Defined in chapter 1.
    """
    try:
        return compare(got, expected) is None
    except Exception:  # noqa: BLE001
        return False


def dtype_problem(got, dtype, *, advice: str = "") -> str | None:
    """A sentence when a float answer does not have the float ``dtype`` of the inputs.

    ``advice`` (e.g. ``"allocate with dtype=x.dtype"``) is added in parentheses. ``None`` when
    the answer is not numeric, is empty, or either dtype is not a float. Defined in chapter 1.
    """
    want = np.dtype(dtype)
    if not is_numeric(got) or not np.asarray(got).size:
        return None
    have = np.asarray(got).dtype
    if want.kind == "f" and have.kind == "f" and have != want:
        tail = f" ({advice})" if advice else ""
        return f"the values are {have}, but the inputs were {want}: keep the inputs' dtype{tail}"
    return None

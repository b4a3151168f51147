"""How :func:`scanbook.exercises.grade` calls the reader's function: with a time limit, with its
printing captured, and with a note when it changed its inputs.

Defined in chapter 1 (with the rest of the grading machinery). Chapter modules do not import
this module; :func:`~scanbook.exercises.grade` uses it for every case.

The time limit uses ``SIGALRM`` (a timer interrupts the reader's Python code, even inside
``time.sleep``) when the grader runs in the main thread of a POSIX process: a plain Python
session, a Jupyter or Colab kernel on Linux or macOS. Elsewhere (Windows, or a grader called from
another thread, or while someone else's ``ITIMER_REAL`` timer is running) the function runs in a
daemon thread that is abandoned when it overruns: the grader returns on time, the abandoned call
finishes (or not) in the background. Only ``KeyboardInterrupt`` passes through; every other
exception of the reader's code is returned as the outcome of the call.

:func:`forbidding` watches library functions that *are* the answer (``grade(..., forbid=...)``)
while the reader's function runs.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import math
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))


class _CaseTimeout(BaseException):
    """Raised inside the reader's code when its time is up (a BaseException: ``except
    Exception`` in the reader's code does not swallow it)."""


class OutputLimit(BaseException):
    """Raised inside the reader's code when it prints more than the grading mode allows."""


# -- captured printing -------------------------------------------------------------------------


class _Capture(io.TextIOBase):
    """A stand-in for stdout/stderr that keeps the first ``keep`` characters and counts the rest."""

    encoding = "utf-8"

    def __init__(self, keep: int = 2000, limit: int | None = None):
        super().__init__()
        self.keep, self.head, self.chars, self.lines = keep, [], 0, 0
        self.limit = limit
        self._kept = 0

    def writable(self) -> bool:
        return True

    def write(self, s) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        self.chars += len(s)
        self.lines += s.count("\n")
        if self._kept < self.keep:
            piece = s[: self.keep - self._kept]
            self.head.append(piece)
            self._kept += len(piece)
        if self.limit is not None and self.chars > self.limit:
            raise OutputLimit(f"printed more than {self.limit:,} characters")
        return len(s)

    def summary(self, width: int = 160, *, hidden: bool = False) -> str:
        """One line: how much was printed and how it starts (not with ``hidden``: the printing
        of a hidden case may show its data)."""
        lines = max(self.lines, 1)
        if hidden:
            return f"your function printed {self.chars:,} characters in {lines:,} lines"
        text = "".join(self.head)
        shown = text.strip().replace("\n", " | ")
        cut = len(shown) > width or self.chars > len(text)
        shown = shown[:width] + (" ..." if cut else "")
        return (
            f"your function printed {self.chars:,} characters in {lines:,} line"
            f"{'s' if lines != 1 else ''}, starting: {shown!r}"
        )


# -- calling with a time limit ---------------------------------------------------------------


@dataclass
class Outcome:
    """What one call of the reader's function did."""

    value: object = None
    error: BaseException | None = None
    timed_out: bool = False
    printed: _Capture | None = None
    seconds: float = 0.0


def _can_use_alarm() -> bool:
    if not hasattr(signal, "setitimer") or not hasattr(signal, "SIGALRM"):
        return False
    if threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGALRM) is None:  # a handler installed outside Python
        return False
    return signal.getitimer(signal.ITIMER_REAL)[0] == 0.0  # nobody else's timer is running


def _call_with_alarm(fn: Callable, args: tuple, kwargs: dict, limit: float, out: Outcome) -> None:
    state = {"armed": False}  # the handler raises only while the reader's code runs

    def on_alarm(signum, frame):
        if state["armed"]:
            raise _CaseTimeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        # fires again every 0.25 s, in case the reader's code catches the first one
        signal.setitimer(signal.ITIMER_REAL, limit, 0.25)
        try:
            try:
                state["armed"] = True
                out.value = fn(*args, **kwargs)
            finally:
                state["armed"] = False
        except _CaseTimeout:
            out.timed_out = True
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - the reader's errors are feedback
            out.error = exc
    finally:
        state["armed"] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _call_in_thread(fn: Callable, args: tuple, kwargs: dict, limit: float, out: Outcome) -> None:
    box: dict = {}

    def target():
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc

    worker = threading.Thread(target=target, name="scanbook-grader-case", daemon=True)
    worker.start()
    worker.join(limit)
    if worker.is_alive():
        out.timed_out = True
        return
    if isinstance(box.get("error"), KeyboardInterrupt):
        raise box["error"]
    out.value, out.error = box.get("value"), box.get("error")


def call(
    fn: Callable, args: tuple, kwargs: dict, limit: float | None, *, print_limit: int | None = None
) -> Outcome:
    """Call ``fn(*args, **kwargs)`` within ``limit`` seconds, capturing what it prints (more than
    ``print_limit`` characters end the call with :class:`OutputLimit` as its error)."""
    out = Outcome(printed=_Capture(limit=print_limit))
    start = time.perf_counter()
    with contextlib.redirect_stdout(out.printed), contextlib.redirect_stderr(out.printed):
        if limit is None or not math.isfinite(limit):
            try:
                out.value = fn(*args, **kwargs)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001
                out.error = exc
        elif _can_use_alarm():
            _call_with_alarm(fn, args, kwargs, limit, out)
        else:
            _call_in_thread(fn, args, kwargs, limit, out)
    out.seconds = time.perf_counter() - start
    return out


# -- forbidden calls -------------------------------------------------------------------------


_SHORT = (("scanbook.", "sb."), ("jax.numpy.", "jnp."), ("numpy.", "np."))


def _short_name(name: str) -> str:
    for long, short in _SHORT:
        if name.startswith(long):
            return short + name[len(long) :]
    return name


def resolve(name: str) -> tuple[Any, str]:
    """``(owner, attribute)`` for a dotted name such as ``"scanbook.serial.cumsum"``: the
    longest importable module prefix, then attributes."""
    if not isinstance(name, str) or "." not in name:
        raise ValueError(f"forbid names a callable by its dotted path (numpy.cumsum); got {name!r}")
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:-1]:
            owner = getattr(owner, attr)
        if not hasattr(owner, parts[-1]):
            raise ValueError(f"forbid: {name} does not exist")
        return owner, parts[-1]
    raise ValueError(f"forbid: no module in {name!r} can be imported")


@contextlib.contextmanager
def forbidding(names: Sequence[str]) -> Iterator[list[str]]:
    """Watch each named callable while the block runs: the yielded list receives where the
    first call of one came from (``"sb.linear_recurrence in f, line 3 (...)"``). The calls go
    through, so that a wrong answer is still reported for what is wrong with it."""
    calls: list[str] = []
    saved = []
    try:
        for name in names:
            owner, attr = resolve(name)
            original, short = getattr(owner, attr), _short_name(name)

            def watch(*args, _name=short, _original=original, **kwargs):
                if not calls:
                    calls.append(_name + _where_called())
                return _original(*args, **kwargs)

            setattr(owner, attr, watch)
            saved.append((owner, attr, original))
        yield calls
    finally:
        for owner, attr, original in reversed(saved):
            setattr(owner, attr, original)


def _readers_line(frames) -> str:
    """ " in fn, line k (source)" for the last of ``frames`` outside this package, else ""."""
    try:
        outside = [f for f in frames if os.path.dirname(os.path.abspath(f.filename)) != _HERE]
    except Exception:  # noqa: BLE001
        return ""
    if not outside:
        return ""
    f = outside[-1]
    line = f" ({f.line.strip()})" if f.line else ""
    return f" in {f.name}, line {f.lineno}{line}"


def _where_called() -> str:
    return _readers_line(traceback.extract_stack()[:-2])


# -- describing what went wrong --------------------------------------------------------------


def safe_str(obj) -> str:
    """``str(obj)``, or a placeholder when its ``__str__`` itself raises."""
    try:
        return str(obj)
    except Exception:  # noqa: BLE001
        try:
            return object.__repr__(obj)
        except Exception:  # noqa: BLE001
            return "<unprintable>"


def where_raised(exc: BaseException) -> str:
    """The last frame of the traceback outside this package (the reader's line)."""
    return _readers_line(traceback.extract_tb(exc.__traceback__))


def _show(x) -> str:
    from ._grading import format_value

    return format_value(x)


def first_change(before, after) -> str | None:
    """How ``after`` differs from ``before`` (plain data only: arrays, lists, tuples, dicts,
    numbers and strings); ``None`` when it does not, or when it is not plain data."""
    if isinstance(before, np.ndarray):
        if not isinstance(after, np.ndarray) or after.shape != before.shape:
            return "its shape"
        if before.dtype.kind not in "biufc" or after.dtype != before.dtype:
            return None if before.dtype.kind not in "biufc" else "its dtype"
        same = np.array_equal(before, after, equal_nan=before.dtype.kind in "fc")
        if same:
            return None
        diff = before != after
        if before.dtype.kind in "fc":
            diff &= ~(np.isnan(before) & np.isnan(after))
        where = tuple(int(i) for i in np.argwhere(diff)[0])
        idx = where[0] if len(where) == 1 else where
        return f"at index {idx}: was {_show(before[where])}, now {_show(after[where])}"
    if isinstance(before, list | tuple):
        if type(after) is not type(before) or len(after) != len(before):
            n = len(after) if isinstance(after, list | tuple) else "?"
            return f"its length (was {len(before)}, now {n})"
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            why = first_change(b, a)
            if why is not None:
                return f"item {i}: {why}"
        return None
    if isinstance(before, dict):
        if not isinstance(after, dict) or set(after) != set(before):
            return "its keys"
        for key in before:
            why = first_change(before[key], after[key])
            if why is not None:
                return f"key {key!r}: {why}"
        return None
    if isinstance(before, int | float | complex | str | bytes | np.generic):
        try:
            return None if bool(before == after) else f"was {before!r}, now {after!r}"
        except Exception:  # noqa: BLE001
            return None
    return None


def changed_inputs(before: tuple, after: tuple, names: list[str]) -> str | None:
    """A phrase naming the first argument the reader's function changed, or ``None``."""
    for name, b, a in zip(names, before, after, strict=False):
        try:
            why = first_change(b, a)
        except Exception:  # noqa: BLE001
            why = None
        if why is not None:
            return f"`{name}` ({why})"
    return None

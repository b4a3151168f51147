"""scanbook.exercises against careless and hostile answers, and the package's contract.

Whatever the reader's function does (sleep, loop, raise an exception that cannot be printed,
return the wrong shape, type or precision, an object whose ``__array__`` raises, print
megabytes, change its inputs, reach around a call counter), every grader answers with a
failed :class:`Feedback` naming the problem, never with an exception of its own; only
``KeyboardInterrupt`` passes through. Every grader that ``scanbook.exercises`` discovers is
run through the same checks, so a later chapter's graders are checked too.
"""

from __future__ import annotations

import ast
import itertools
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import scanbook as sb
from scanbook import exercises as ex

GRADERS = list(ex.GRADERS)
PACKAGE = Path(ex.__file__).parent

# the names chapters 1-5 and their tests used before the package existed: all must stay
OLD_NAMES = [
    "AWKWARD_LENGTHS", "Case", "ExerciseFailed", "Feedback", "compare", "format_value", "grade",
    "make_rng", "random_values", "tolerance", "check_prefix_sum", "check_exclusive_scan",
    "check_affine_combine", "check_linear_recurrence", "check_hillis_steele", "check_blelloch",
    "check_work_depth", "check_chunked", "check_bank_conflict_degree",
    "check_scan_with_block_sums", "check_carry_in", "check_warp_scan", "check_divide_work",
    "check_affine_warp_scan", "check_lookback", "check_linear_recurrence_vjp",
    "check_matrix_recurrence_vjp", "check_shared_decay_grad",
]  # fmt: skip


def _loop_prefix_sum(xs):
    """A right answer written as the exercise asks (a loop; np.cumsum is refused)."""
    return list(itertools.accumulate(xs))


@pytest.fixture
def short_limit():
    old = ex.set_time_limit(0.3)
    yield 0.3
    ex.set_time_limit(old)


def _no_timer_left():
    if hasattr(signal, "setitimer"):
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
        assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL


# -- the package: every old name, discovery, the size of its modules -------------------------


def test_every_old_name_is_still_there():
    missing = [n for n in OLD_NAMES if not hasattr(sb.exercises, n)]
    assert not missing
    assert set(OLD_NAMES) <= set(ex.__all__)
    assert ex.check_prefix_sum is ex.CHAPTERS["ch01"].check_prefix_sum


def test_chapter_modules_follow_the_contract():
    assert list(ex.CHAPTERS) == sorted(ex.CHAPTERS) and "ch01" in ex.CHAPTERS
    for name, module in ex.CHAPTERS.items():
        n = int(name[2:])
        assert module.__all__ and all(g.startswith("check_") for g in module.__all__)
        source = Path(module.__file__).read_text()
        for node in ast.parse(source).body:  # import the machinery, not a sibling chapter
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                assert node.module == "_grading", f"{name} imports .{node.module}"
        for grader in module.__all__:
            doc = getattr(module, grader).__doc__ or ""
            assert f"Chapter {n}" in doc, f"{name}.{grader}: say 'Chapter {n}, exercise k'"


def test_no_module_of_the_package_is_long():
    for path in PACKAGE.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 620, f"{path.name}: split it"


def _fake_package(tmp_path, monkeypatch, name, files):
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for fname, text in files.items():
        (pkg / fname).write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name, [str(pkg)]


def test_discover_finds_new_chapters_in_order(tmp_path, monkeypatch):
    files = {
        "ch10.py": '__all__ = ["check_ten"]\ndef check_ten(fn):\n    "Chapter 10."\n',
        "ch06.py": '__all__ = ["check_six"]\ndef check_six(fn):\n    "Chapter 6."\n',
        "helpers.py": '__all__ = ["not_a_grader"]\n',  # not a chapter: ignored
    }
    name, path = _fake_package(tmp_path, monkeypatch, "fake_ex_ok", files)
    chapters, graders = ex.discover(name, path)
    assert list(chapters) == ["ch06", "ch10"]
    assert list(graders) == ["check_six", "check_ten"]


@pytest.mark.parametrize(
    "files, words",
    [
        ({"ch06.py": "def check_a(fn): pass\n"}, "__all__"),
        ({"ch06.py": '__all__ = ["helper"]\nhelper = 1\n'}, "check_*"),
        (
            {
                "ch06.py": '__all__ = ["check_a"]\ncheck_a = print\n',
                "ch07.py": '__all__ = ["check_a"]\ncheck_a = print\n',
            },
            "both",
        ),
    ],
    ids=["no __all__", "not a grader", "clash"],
)
def test_discover_refuses_a_broken_chapter(tmp_path, monkeypatch, files, words):
    pkg = f"fake_ex_{abs(hash(words))}"
    name, path = _fake_package(tmp_path, monkeypatch, pkg, files)
    with pytest.raises(ImportError, match=words):
        ex.discover(name, path)


# -- item 13: a time limit per case ----------------------------------------------------------


def _sleeper(*args, **kwargs):
    time.sleep(30)


@pytest.mark.parametrize("name", GRADERS)
def test_a_sleeping_function_fails_on_time(name, short_limit):
    fb = getattr(ex, name)(_sleeper, quiet=True)
    assert not fb and "did not finish within 0.3 s" in fb.message, fb.message
    assert "case 1 of" in fb.message
    _no_timer_left()


def test_an_endless_loop_that_catches_everything_once_is_stopped(short_limit):
    def stubborn(xs):
        try:
            while True:
                pass
        except BaseException:  # noqa: BLE001 - a careless reader
            pass
        while True:
            pass

    fb = ex.check_prefix_sum(stubborn, quiet=True)
    assert not fb and "did not finish" in fb.message
    _no_timer_left()


def test_time_limit_from_another_thread(short_limit):
    """Off the main thread (no SIGALRM there) the case runs in a thread that is abandoned."""
    box = {}
    worker = threading.Thread(target=lambda: box.update(fb=ex.check_blelloch(_sleeper, quiet=True)))
    worker.start()
    worker.join(20)
    assert not worker.is_alive()
    assert not box["fb"] and "did not finish within 0.3 s" in box["fb"].message
    # and a right answer still passes there
    ok = {}
    t = threading.Thread(
        target=lambda: ok.update(fb=ex.check_prefix_sum(_loop_prefix_sum, quiet=True))
    )
    t.start()
    t.join(20)
    assert ok["fb"], ok["fb"].message


def test_case_and_grade_time_limits_and_set_time_limit():
    cases = [ex.Case("slow", (1,), 1, time_limit=0.2)]
    fb = ex.grade("check_slow", _sleeper, cases, quiet=True, time_limit=60)
    assert not fb and "within 0.2 s" in fb.message
    fb = ex.grade("check_slow", _sleeper, [ex.Case("slow", (1,), 1)], quiet=True, time_limit=0.2)
    assert not fb and "within 0.2 s" in fb.message
    with pytest.raises(ValueError, match="seconds"):
        ex.set_time_limit(-1)
    _no_timer_left()


def test_a_timer_of_someone_else_is_left_alone(short_limit):
    if not hasattr(signal, "setitimer"):
        pytest.skip("no interval timers on this platform")
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *a: fired.append(1))
    signal.setitimer(signal.ITIMER_REAL, 30.0)
    try:
        fb = ex.check_blelloch(_sleeper, quiet=True)  # falls back to a thread
        assert not fb and "did not finish" in fb.message
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 20  # still running, untouched
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert not fired


# -- item 14: any wrong return is a failed Feedback ------------------------------------------


class _Raises:
    """An answer whose every hook raises."""

    def __array__(self, dtype=None, copy=None):
        raise ValueError("no array here")

    def __len__(self):
        raise RuntimeError("no length")

    def __iter__(self):
        raise RuntimeError("no items")

    def __eq__(self, other):
        raise RuntimeError("no equality")

    __hash__ = None

    def __bool__(self):
        raise RuntimeError("no truth")

    def __repr__(self):
        raise RuntimeError("no repr")

    def __getitem__(self, i):
        raise RuntimeError("no items")


BAD_RETURNS = {
    "0-d array": np.array(1.0),
    "None": None,
    "string": "text",
    "object": object(),
    "ragged list": [[1.0, 2.0], [3.0]],
    "dict": {"a": 1},
    "3-d array": np.ones((2, 2, 2)),
    "tuple with an array": (np.array([1.0, 2.0]), 3),
    "list of None": [None] * 5,
    "NaN": float("nan"),
    "generator": (i for i in range(3)),
    "complex": np.ones(3, dtype=complex),
    "hostile object": _Raises(),
    "tuple of hostile": (_Raises(), _Raises()),
    "bool array": np.ones(4, dtype=bool),
}


@pytest.mark.parametrize("what", list(BAD_RETURNS))
def test_every_grader_fails_a_wrong_return_without_raising(what):
    value = BAD_RETURNS[what]
    for name in GRADERS:
        fb = getattr(ex, name)(lambda *a, value=value, **k: value, quiet=True)
        assert isinstance(fb, ex.Feedback), name
        assert not fb, f"{name} passed {what}"
        assert fb.message.startswith(f"✗ {name}") and "got:" in fb.message, fb.message


def test_the_two_returns_of_the_issue():
    fb = ex.check_exclusive_scan(lambda xs, combine, identity: np.array(1.0), quiet=True)
    assert not fb and "expected shape (0,), got shape ()" in fb.message
    fb = ex.check_work_depth(lambda n: (np.array([1, 2]), 3), quiet=True)
    assert not fb and "expected two numbers (work, depth)" in fb.message
    # a fraction is not truncated into a right answer
    fb = ex.check_divide_work(lambda n, p, w: (0, n + 0.5) if p == 1 else (0, 0), quiet=True)
    assert not fb and "whole numbers" in fb.message


# -- item 15: right values, wrong dtype ------------------------------------------------------


def test_float32_answer_is_called_a_precision_problem():
    def rec32(a, b, h0):
        h, carry = np.empty(len(a), dtype=np.float32), np.float32(h0)
        for t in range(len(a)):
            carry = np.float32(a[t]) * carry + np.float32(b[t])
            h[t] = carry
        return h

    fb = ex.check_linear_recurrence(rec32, quiet=True)
    assert not fb
    assert "float32 precision" in fb.message and "expects float64" in fb.message, fb.message
    # the two numbers are shown with enough digits to differ
    line = next(x for x in fb.message.splitlines() if "problem:" in x)
    expected, got = line.split("expected ")[1].split(", got ")
    assert expected.strip() != got.split(";")[0].strip()


def test_precision_lost_inside_a_float64_answer():
    fb = ex.check_prefix_sum(
        lambda xs: np.cumsum(np.asarray(xs, dtype=np.float32)).astype(np.float64), quiet=True
    )
    assert not fb and "precision is lost" in fb.message, fb.message


def test_integer_answer_to_a_float_exercise():
    fb = ex.check_prefix_sum(lambda xs: np.cumsum(xs).astype(np.int64), quiet=True)
    assert not fb and "integer dtype int64" in fb.message, fb.message


def test_a_real_mistake_is_not_called_a_precision_problem():
    fb = ex.check_prefix_sum(lambda xs: np.cumsum(xs) * 1.5, quiet=True)
    assert not fb and "precision" not in fb.message


# -- item 16: hostile answers and exceptions are the reader's failure ------------------------


def test_return_whose_array_raises():
    fb = ex.check_prefix_sum(lambda xs: _Raises(), quiet=True)
    assert not fb and "no array here" in fb.message, fb.message


def test_exception_whose_str_raises():
    class Unprintable(Exception):
        def __str__(self):
            raise RuntimeError("cannot print me")

    def bad(xs):
        raise Unprintable

    fb = ex.check_prefix_sum(bad, quiet=True)
    assert not fb and "raised Unprintable" in fb.message and "in bad" in fb.message


def test_system_exit_and_base_exceptions_are_failures():
    def leaves(xs):
        sys.exit(3)

    fb = ex.check_prefix_sum(leaves, quiet=True)
    assert not fb and "raised SystemExit" in fb.message


def test_keyboard_interrupt_propagates():
    def interrupted(xs):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ex.check_prefix_sum(interrupted, quiet=True)
    _no_timer_left()

    class InterruptsWhenCompared:
        def __array__(self, dtype=None, copy=None):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ex.check_prefix_sum(lambda xs: InterruptsWhenCompared(), quiet=True)
    _no_timer_left()


def test_comparing_a_slow_answer_is_limited_too(short_limit):
    class SlowArray:
        def __array__(self, dtype=None, copy=None):
            time.sleep(30)

    fb = ex.check_prefix_sum(lambda xs: SlowArray(), quiet=True)
    assert not fb and "checking your answer" in fb.message


# -- item 17: the call counter cannot be bypassed --------------------------------------------


def test_hillis_steele_exposes_no_inner_function():
    seen = []

    def peek(xs, combine):
        seen.append([a for a in dir(combine) if not a.startswith("__")])
        return np.cumsum(xs)

    ex.check_hillis_steele(peek, quiet=True)
    assert seen and all(attrs == [] for attrs in seen)

    def bypass(xs, combine):  # the cheat of the issue: a serial loop on the inner function
        inner = combine.combine
        x = np.array(xs, copy=True)
        for i in range(1, len(x)):
            x[i : i + 1] = inner(x[i - 1 : i], x[i : i + 1])
        return x

    fb = ex.check_hillis_steele(bypass, quiet=True)
    assert not fb and "AttributeError" in fb.message


def test_warp_scan_counter_cannot_be_reset():
    def serial(v, shfl_up):
        assert not [a for a in dir(shfl_up) if not a.startswith("__")]
        x = np.asarray(v, dtype=float)
        for _ in range(31):  # one lane per shuffle: far too many shuffles
            x = np.where(np.arange(32) >= 1, shfl_up(x, 1) + np.asarray(v), x)
        return np.cumsum(v)

    fb = ex.check_warp_scan(serial, quiet=True)
    assert not fb and "31 shuffles" in fb.message


# -- the "Also": printing is captured, a mutated input is reported ---------------------------


def test_printing_is_captured_and_summarised(capsys):
    def chatty(xs):
        print("x" * 10_000_000)
        print("debug", file=sys.stderr)
        return _loop_prefix_sum(xs)

    fb = ex.check_prefix_sum(chatty)
    assert fb, fb.message
    out, err = capsys.readouterr()
    assert len(out) < 2000 and err == ""
    assert "printed 10,000,007 characters" in fb.message and "'xxxx" in fb.message

    fb = ex.check_prefix_sum(lambda xs: print("hello") or [], quiet=True)
    assert not fb and "printed:" in fb.message and "hello" in fb.message


def test_a_mutated_input_is_reported():
    def in_place(xs):
        if isinstance(xs, np.ndarray):
            np.cumsum(xs, out=xs)
            return xs
        for i in range(1, len(xs)):  # a loop, as the exercise asks, that overwrites its input
            xs[i] += xs[i - 1]
        return xs

    fb = ex.check_prefix_sum(in_place, quiet=True)
    assert fb  # the grader passed a copy: the answer is still right
    assert "changed its input `xs`" in fb.message and "index 1" in fb.message, fb.message

    def wrong_and_mutating(xs, combine, identity):
        if xs:
            xs.pop()
        return []

    fb = ex.check_exclusive_scan(wrong_and_mutating, quiet=True)
    assert not fb and "changed its input `xs` (its length" in fb.message


def test_a_clean_answer_gets_no_notes():
    fb = ex.check_prefix_sum(_loop_prefix_sum, quiet=True)
    assert fb and "\n" not in fb.message

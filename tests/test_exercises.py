"""scanbook.exercises: the graders of chapters 1, 2, 3 and 5 (chapter 4's: tests/test_cupy_raw.py).

Every grader must pass a correct reference answer and fail, naming the failing case, on a
plausible wrong one (off by one, inclusive for exclusive, composition in the wrong order, a
crash, a serial loop where a parallel algorithm was asked for). The shared machinery
(``Feedback``, ``compare``, ``random_values``, ``grade``) is tested directly.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import scanbook as sb
from numba import cuda  # after scanbook, which picks the CUDA simulator without a GPU
from scanbook import exercises as ex

# -- correct reference answers ---------------------------------------------------------------


def prefix_sum(xs):
    out, acc = [], 0
    for x in xs:
        acc = acc + x
        out.append(acc)
    return out


def exclusive_scan(xs, combine, identity):
    out, acc = [], identity
    for x in xs:
        out.append(acc)
        acc = combine(acc, x)
    return out


def affine_combine(first, then):
    (a1, b1), (a2, b2) = first, then
    return a2 * a1, a2 * b1 + b2


def linear_recurrence(a, b, h0):
    h = np.empty(len(a), dtype=np.result_type(a, b))
    carry = h0
    for t in range(len(a)):
        carry = a[t] * carry + b[t]
        h[t] = carry
    return h


def hillis_steele(xs, combine):
    x = np.array(xs, copy=True)
    d = 1
    while d < len(x):
        x[d:] = combine(x[:-d], x[d:])
        d *= 2
    return x


def blelloch(xs):
    xs = np.asarray(xs)
    n = len(xs)
    if n == 0:
        return xs.copy()
    m = 1 << (n - 1).bit_length()
    x = np.zeros(m, dtype=xs.dtype)
    x[:n] = xs
    d = 1
    while d < m:
        x[2 * d - 1 :: 2 * d] += x[d - 1 :: 2 * d]
        d *= 2
    x[m - 1] = 0
    d = m // 2
    while d >= 1:
        left = x[d - 1 :: 2 * d].copy()
        x[d - 1 :: 2 * d] = x[2 * d - 1 :: 2 * d]
        x[2 * d - 1 :: 2 * d] += left
        d //= 2
    return x[:n]


def work_depth(n):
    return 2 * (n - 1), 2 * int(math.log2(n))


def chunked(a, b, h0, n_chunks):
    T = len(a)
    if T == 0:
        return np.zeros(0, dtype=np.result_type(a, b))
    p = min(n_chunks, T)
    L = -(-T // p)
    starts = range(0, T, L)
    totals = []
    for s in starts:  # phase 1: each chunk reduced to one affine map
        A, B = 1.0, 0.0
        for t in range(s, min(s + L, T)):
            A, B = a[t] * A, a[t] * B + b[t]
        totals.append((A, B))
    carry = [h0]  # phase 2: carry-in of every chunk
    for A, B in totals[:-1]:
        carry.append(A * carry[-1] + B)
    h = np.empty(T, dtype=np.result_type(a, b))  # phase 3: each chunk from its carry-in
    for s, c in zip(starts, carry, strict=True):
        h[s : min(s + L, T)] = linear_recurrence(a[s : s + L], b[s : s + L], c)
    return h


# -- plausible wrong answers -----------------------------------------------------------------


def prefix_sum_exclusive(xs):
    return [0, *prefix_sum(xs)[:-1]] if len(xs) else []


def prefix_sum_off_by_one(xs):
    return prefix_sum(xs[1:]) + [0] * min(1, len(xs))


def prefix_sum_crash(xs):
    return [xs[0], *prefix_sum(xs)[1:]]  # IndexError on the empty input


def exclusive_scan_inclusive(xs, combine, identity):
    return sb.serial.scan_loop(combine, xs)


def exclusive_scan_swapped(xs, combine, identity):
    out, acc = [], identity
    for x in xs:
        out.append(acc)
        acc = combine(x, acc)
    return out


def exclusive_scan_too_long(xs, combine, identity):
    return [*exclusive_scan(xs, combine, identity), sb.serial.scan_loop(combine, xs, identity)]


def affine_combine_reversed(first, then):
    return affine_combine(then, first)


def affine_combine_forgets_b2(first, then):
    (a1, b1), (a2, _) = first, then
    return a2 * a1, a2 * b1


def linear_recurrence_no_h0(a, b, h0):
    return linear_recurrence(a, b, 0.0)


def linear_recurrence_shifted(a, b, h0):
    h = linear_recurrence(a, b, h0)
    return np.concatenate([[h0], h[:-1]]) if len(h) else h


def linear_recurrence_float32_loop(a, b, h0):
    return linear_recurrence(a.astype(np.float16), b.astype(np.float16), h0)


def hillis_steele_serial(xs, combine):
    x = np.array(xs, copy=True)
    for i in range(1, len(x)):
        x[i : i + 1] = combine(x[i - 1 : i], x[i : i + 1])
    return x


def hillis_steele_swapped(xs, combine):
    x = np.array(xs, copy=True)
    d = 1
    while d < len(x):
        x[d:] = combine(x[d:], x[:-d])
        d *= 2
    return x


def blelloch_inclusive(xs):
    return np.cumsum(xs)


def blelloch_powers_of_two_only(xs):
    n = len(xs)
    if n and n & (n - 1):
        raise ValueError(f"length {n} is not a power of two")
    return blelloch(xs)


def work_depth_rough(n):
    return 2 * n, 2 * int(math.log2(n))


def work_depth_one_sweep(n):
    return 2 * (n - 1), int(math.log2(n))


def chunked_forgets_h0(a, b, h0, n_chunks):
    return chunked(a, b, 0.0, n_chunks)


def chunked_no_carry(a, b, h0, n_chunks):
    T = len(a)
    if T == 0:
        return np.zeros(0)
    L = -(-T // min(n_chunks, T))
    return np.concatenate(
        [linear_recurrence(a[s : s + L], b[s : s + L], h0) for s in range(0, T, L)]
    )


def chunked_p_must_divide(a, b, h0, n_chunks):
    if len(a) % n_chunks:
        raise ValueError("n_chunks must divide T")
    return chunked(a, b, h0, n_chunks)


GRADERS = {
    "check_prefix_sum": (
        prefix_sum,
        [prefix_sum_exclusive, prefix_sum_off_by_one, prefix_sum_crash],
    ),
    "check_exclusive_scan": (
        exclusive_scan,
        [exclusive_scan_inclusive, exclusive_scan_swapped, exclusive_scan_too_long],
    ),
    "check_affine_combine": (affine_combine, [affine_combine_reversed, affine_combine_forgets_b2]),
    "check_linear_recurrence": (
        linear_recurrence,
        [linear_recurrence_no_h0, linear_recurrence_shifted, linear_recurrence_float32_loop],
    ),
    "check_hillis_steele": (hillis_steele, [hillis_steele_serial, hillis_steele_swapped]),
    "check_blelloch": (blelloch, [blelloch_inclusive, blelloch_powers_of_two_only]),
    "check_work_depth": (work_depth, [work_depth_rough, work_depth_one_sweep]),
    "check_chunked": (chunked, [chunked_forgets_h0, chunked_no_carry, chunked_p_must_divide]),
}

WRONG = [(name, wrong) for name, (_, wrongs) in GRADERS.items() for wrong in wrongs]


@pytest.mark.parametrize("name", list(GRADERS))
def test_grader_passes_reference(name, capsys):
    right, _ = GRADERS[name]
    fb = getattr(ex, name)(right)
    assert fb, fb.message
    assert fb.passed and fb.message.startswith(f"✓ {name}")
    assert fb.cases_run >= 5
    assert fb.message in capsys.readouterr().out  # printed as well as returned
    getattr(ex, name)(right, raise_on_fail=True, quiet=True)


@pytest.mark.parametrize("name, wrong", WRONG, ids=[w.__name__ for _, w in WRONG])
def test_grader_fails_wrong_answer(name, wrong, capsys):
    fb = getattr(ex, name)(wrong)
    assert not fb
    assert fb.message.startswith(f"✗ {name}")
    # the message names the failing case, its inputs and what came out
    m = re.search(r"case (\d+) of (\d+) \(([^)]*)\) failed", fb.message)
    assert m, fb.message
    assert 1 <= int(m.group(1)) <= int(m.group(2))
    assert "inputs:" in fb.message and "expected:" in fb.message
    assert ("got:" in fb.message) or ("raised" in fb.message)
    assert "hint:" in fb.message
    assert fb.message in capsys.readouterr().out
    with pytest.raises(ex.ExerciseFailed, match=name):
        getattr(ex, name)(wrong, raise_on_fail=True, quiet=True)


def test_crash_is_reported_with_the_case_and_the_line():
    fb = ex.check_prefix_sum(prefix_sum_crash, quiet=True)
    assert "case 1 of" in fb.message and "length 0" in fb.message
    assert "raised IndexError" in fb.message
    assert "prefix_sum_crash" in fb.message  # the reader's function and line


@pytest.mark.parametrize(
    "grader, wrong, words",
    [
        ("check_prefix_sum", prefix_sum_exclusive, "exclusive scan"),
        ("check_exclusive_scan", exclusive_scan_inclusive, "inclusive scan"),
        ("check_exclusive_scan", exclusive_scan_swapped, "swapped"),
        ("check_exclusive_scan", exclusive_scan_too_long, "too many"),
        ("check_affine_combine", affine_combine_reversed, "order is reversed"),
        ("check_linear_recurrence", linear_recurrence_no_h0, "h0 was ignored"),
        ("check_linear_recurrence", linear_recurrence_shifted, "off by one"),
        ("check_hillis_steele", hillis_steele_serial, "called"),
        ("check_hillis_steele", hillis_steele_swapped, "swapped"),
        ("check_blelloch", blelloch_inclusive, "inclusive scan"),
        ("check_work_depth", work_depth_rough, "n - 1"),
        ("check_work_depth", work_depth_one_sweep, "one sweep"),
        ("check_chunked", chunked_forgets_h0, "h0 was lost"),
    ],
)
def test_typical_mistakes_get_a_specific_hint(grader, wrong, words):
    fb = getattr(ex, grader)(wrong, quiet=True)
    assert not fb
    assert words in fb.message, fb.message


def _maxplus_combine(x, y):
    return np.stack([x[:, 0] + y[:, 0], np.maximum(y[:, 0] + x[:, 1], y[:, 1])], axis=1)


def _maxplus_identity(like, n):
    return np.tile([0.0, -np.inf], (n, 1))


def test_maxplus_grader_passes_the_operator_and_names_mistakes():
    op = sb.ops.Operator("maxplus", _maxplus_combine, _maxplus_identity, "⊕")
    assert ex.check_maxplus(op, quiet=True)
    zero_identity = sb.ops.Operator(
        "maxplus", _maxplus_combine, lambda like, n: np.zeros((n, 2)), "⊕"
    )
    fb = ex.check_maxplus(zero_identity, quiet=True)
    assert not fb and "[0, -inf]" in fb.message
    swapped = sb.ops.Operator(
        "maxplus", lambda x, y: _maxplus_combine(y, x), _maxplus_identity, "⊕"
    )
    fb = ex.check_maxplus(swapped, quiet=True)
    assert not fb and "swapped" in fb.message
    assert ex.check_maxplus(_maxplus_combine, identity=_maxplus_identity, quiet=True)
    assert ex.check_maxplus(_maxplus_combine, quiet=True)  # combine alone: identity supplied


def test_library_calls_do_not_pass_where_a_loop_or_an_algorithm_is_asked_for():
    fb = ex.check_prefix_sum(lambda xs: np.cumsum(xs) if len(xs) else [], quiet=True)
    assert not fb and "additions" in fb.message and "np.cumsum" in fb.message

    def blelloch_by_cumsum(xs):
        xs = np.asarray(xs)
        return np.concatenate([np.zeros(1, xs.dtype), np.cumsum(xs)[:-1]])[: len(xs)]

    fb = ex.check_blelloch(blelloch_by_cumsum, quiet=True)
    assert not fb and "additions" in fb.message and "not the tree" in fb.message


def test_float32_must_stay_float32():
    def linear_recurrence_float64(a, b, h0):
        return linear_recurrence(a.astype(np.float64), b.astype(np.float64), float(h0))

    fb = ex.check_linear_recurrence(linear_recurrence_float64, quiet=True)
    assert not fb and "float32" in fb.message and "dtype" in fb.message

    def affine_combine_float64(first, then):
        a, b = affine_combine(first, then)
        return np.asarray(a, np.float64), np.asarray(b, np.float64)

    fb = ex.check_affine_combine(affine_combine_float64, quiet=True)
    assert not fb and "float32" in fb.message

    def blelloch_float64(xs):
        return blelloch(
            np.asarray(xs, dtype=np.float64) if np.asarray(xs).dtype.kind == "f" else xs
        )

    fb = ex.check_blelloch(blelloch_float64, quiet=True)
    assert not fb and "float32" in fb.message


def test_blelloch_view_bug_gets_its_own_hint():
    from scanbook.exercises.ch02 import _blelloch_view_bug

    fb = ex.check_blelloch(_blelloch_view_bug, quiet=True)
    assert not fb and "view" in fb.message and ".copy()" in fb.message


def test_not_a_function():
    fb = ex.check_blelloch(42, quiet=True)
    assert not fb and "expected a function" in fb.message


def test_returning_none_is_explained():
    fb = ex.check_prefix_sum(lambda xs: None, quiet=True)
    assert not fb and "return" in fb.message


def test_graders_are_deterministic():
    a = ex.check_chunked(chunked_no_carry, quiet=True).message
    b = ex.check_chunked(chunked_no_carry, quiet=True).message
    assert a == b


def test_reader_cannot_corrupt_later_cases():
    def mutating(xs):
        out = prefix_sum(xs)
        if isinstance(xs, np.ndarray):
            xs[:] = 0  # writes into its input: the grader passed a copy
        return out

    assert ex.check_prefix_sum(mutating, quiet=True)


# -- the machinery ---------------------------------------------------------------------------


def test_feedback_truthiness_and_reprs():
    ok = ex.Feedback(True, "✓ fine")
    bad = ex.Feedback(False, "✗ <broken> & wrong")
    assert ok and not bad
    assert repr(bad) == "✗ <broken> & wrong"
    html = bad._repr_html_()
    assert "&lt;broken&gt; &amp; wrong" in html and "<pre" in html


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.int32])
def test_random_values_never_zero(dtype):
    rng = ex.make_rng(0)
    x = ex.random_values(rng, 10_000, dtype=dtype)
    assert x.dtype == np.dtype(dtype)
    assert np.all(x != 0)
    assert (x < 0).any() and (x > 0).any()
    assert np.all(ex.random_values(rng, 100, signed=False) > 0)


def test_awkward_lengths_cover_the_edges():
    lengths = ex.AWKWARD_LENGTHS
    assert 0 in lengths and 1 in lengths
    assert any(n & (n - 1) for n in lengths if n > 2)  # a non-power of two
    assert any(n > 2 and not n & (n - 1) for n in lengths)  # and a power of two


def test_compare():
    assert ex.compare([1, 3, 6], np.array([1, 3, 6])) is None
    assert "shape" in ex.compare([1, 3], np.array([1, 3, 6]))
    assert "index 2" in ex.compare([1.0, 3.0, 7.0], np.array([1.0, 3.0, 6.0]))
    assert ex.compare(np.float32(1.00001), np.float32(1.0)) is None  # float32 tolerance
    assert ex.compare(1.00001, 1.0) is not None  # float64 is stricter
    assert ex.compare([np.nan], [np.nan]) is None
    assert ex.compare((1.0, 2.0), (1.0, 2.0)) is None
    assert "item 1" in ex.compare((1.0, 2.5), (1.0, 2.0))
    assert "tuple" in ex.compare(3.0, (1.0, 2.0))
    assert ex.compare(["", "a", "ab"], ["", "a", "ab"]) is None
    assert "item 2" in ex.compare(["", "a", "ba"], ["", "a", "ab"])
    assert "None" in ex.compare(None, np.zeros(3))
    assert ex.compare([], np.zeros(0)) is None


def test_tolerance_by_dtype():
    assert ex.tolerance(np.int64) == (0.0, 0.0)
    r32, _ = ex.tolerance(np.float32)
    r64, _ = ex.tolerance(np.float64)
    assert r64 < r32


def test_format_value_elides_long_arrays():
    text = ex.format_value(np.arange(1000.0))
    assert "..." in text and "shape (1000,)" in text
    assert ex.format_value((1.5, 2.0)) == "(1.5, 2)"
    assert ex.format_value(["a", "b"]) == "['a', 'b']"


def test_grade_with_custom_cases():
    cases = [ex.Case("double 2", (2,), 4), ex.Case("double 3", (3,), 6)]
    assert ex.grade("check_double", lambda x: 2 * x, cases, quiet=True)
    fb = ex.grade("check_double", lambda x: x * x, cases, hint="multiply by two", quiet=True)
    assert not fb and "case 2 of 2 (double 3)" in fb.message and "multiply by two" in fb.message


# -- chapters 3 and 5: the notebooks' answers pass, a typical mistake gets its hint ----------


def degree(addresses):
    banks = {}
    for w in addresses:
        banks.setdefault(w % 32, set()).add(w)
    return max(len(words) for words in banks.values())


def degree_counts_threads(addresses):
    banks = {}
    for w in addresses:
        banks[w % 32] = banks.get(w % 32, 0) + 1
    return max(banks.values())


def scan_blocks(x, block, block_scan):
    x = np.asarray(x)
    if len(x) <= block:
        return block_scan(x) if len(x) else x.copy()
    tiles = [block_scan(x[i : i + block]) for i in range(0, len(x), block)]
    totals = np.array([t[-1] for t in tiles])
    before = scan_blocks(totals, block, block_scan) - totals
    return np.concatenate([t + s for t, s in zip(tiles, before, strict=True)])


def scan_blocks_no_prefix(x, block, block_scan):
    x = np.asarray(x, dtype=float)
    if len(x) == 0:
        return x.copy()
    return np.concatenate([block_scan(x[i : i + block]) for i in range(0, len(x), block)])


def carry_in(P, R, h0):
    out, state = np.empty_like(P), h0.copy()
    for k in range(len(P)):
        out[k] = state
        state = P[k] * state + R[k]
    return out


def carry_in_inclusive(P, R, h0):
    return sb.serial.linear_recurrence_numpy(P, R, h0)


def warp_scan(v, shfl_up):
    lane, x = np.arange(32), np.asarray(v)
    for d in (1, 2, 4, 8, 16):
        x = np.where(lane >= d, shfl_up(x, d) + x, x)
    return x


def warp_scan_adds_own(v, shfl_up):
    x = np.asarray(v, dtype=float)
    for d in (1, 2, 4, 8, 16):
        x = x + shfl_up(x, d)
    return x


def vjp(a, b, h0, h, g):
    T = len(a)
    db, carry = np.zeros_like(g), np.zeros_like(h0)
    for t in range(T - 1, -1, -1):
        carry = g[t] + (a[t + 1] * carry if t + 1 < T else 0)
        db[t] = carry
    h_prev = np.concatenate([h0[None], h[:-1]])
    return db * h_prev, db, (a[0] * db[0] if T else np.zeros_like(h0))


def vjp_unshifted(a, b, h0, h, g):
    db, carry = np.zeros_like(g), np.zeros_like(h0)
    for t in range(len(a) - 1, -1, -1):
        carry = g[t] + a[t] * carry
        db[t] = carry
    h_prev = np.concatenate([h0[None], h[:-1]])
    return db * h_prev, db, (a[0] * db[0] if len(a) else np.zeros_like(h0))


def matrix_vjp(A, b, h0, h, g):
    T = len(A)
    lam, carry = np.zeros_like(g), np.zeros_like(h0)
    for t in range(T - 1, -1, -1):
        carry = g[t] + (A[t + 1].T @ carry if t + 1 < T else 0)
        lam[t] = carry
    h_prev = np.concatenate([h0[None], h[:-1]])
    return lam[:, :, None] * h_prev[:, None, :], lam, (A[0].T @ lam[0] if T else np.zeros_like(h0))


def matrix_vjp_no_transpose(A, b, h0, h, g):
    return matrix_vjp(np.swapaxes(A, 1, 2), b, h0, h, g)


def shared_decay_grad(decay, b, h0, g):
    a = np.broadcast_to(decay, b.shape).copy()
    h = sb.linear_recurrence(a, b, h0, backend="numpy")
    da, _, _ = sb.linear_recurrence_vjp(a, b, h0, h, g, backend="numpy")
    return da.sum(axis=0)


def shared_decay_per_step(decay, b, h0, g):
    a = np.broadcast_to(decay, b.shape).copy()
    h = sb.linear_recurrence(a, b, h0, backend="numpy")
    return sb.linear_recurrence_vjp(a, b, h0, h, g, backend="numpy")[0]


@pytest.mark.parametrize(
    "grader, right, wrong, words",
    [
        ("check_bank_conflict_degree", degree, degree_counts_threads, "distinct words"),
        ("check_scan_with_block_sums", scan_blocks, scan_blocks_no_prefix, "never added back"),
        ("check_carry_in", carry_in, carry_in_inclusive, "inclusive"),
        ("check_warp_scan", warp_scan, warp_scan_adds_own, "only lanes i >= d add"),
        ("check_linear_recurrence_vjp", vjp, vjp_unshifted, "NEXT step"),
        ("check_matrix_recurrence_vjp", matrix_vjp, matrix_vjp_no_transpose, "ranspose"),
        ("check_shared_decay_grad", shared_decay_grad, shared_decay_per_step, "add them up"),
    ],
)
def test_later_chapters_graders(grader, right, wrong, words):
    fb = getattr(ex, grader)(right, quiet=True)
    assert fb, fb.message
    fb = getattr(ex, grader)(wrong, quiet=True)
    assert not fb and words in fb.message, fb.message


# -- chapter 3, exercise 1: a Numba CUDA kernel, graded in the simulator ----------------------


def test_recurrence_kernel_grader_runs_a_kernel_and_names_mistakes():
    # `cuda` must be a global of the kernels' module: the simulator swaps it for its own
    @cuda.jit
    def recurrence_kernel(a, b, h0, h):
        c = cuda.grid(1)
        if c < a.shape[1]:
            carry = h0[c]
            for t in range(a.shape[0]):
                carry = a[t, c] * carry + b[t, c]
                h[t, c] = carry

    @cuda.jit
    def no_bounds_check(a, b, h0, h):
        c = cuda.grid(1)
        carry = h0[c]
        for t in range(a.shape[0]):
            carry = a[t, c] * carry + b[t, c]
            h[t, c] = carry

    @cuda.jit
    def forgets_h0(a, b, h0, h):
        c = cuda.grid(1)
        if c < a.shape[1]:
            carry = 0.0
            for t in range(a.shape[0]):
                carry = a[t, c] * carry + b[t, c]
                h[t, c] = carry

    @cuda.jit
    def skips_the_last_step(a, b, h0, h):
        c = cuda.grid(1)
        if c < a.shape[1]:
            carry = h0[c]
            for t in range(a.shape[0] - 1):
                carry = a[t, c] * carry + b[t, c]
                h[t, c] = carry

    def host_loop(a, b, h0, h):  # right loop, but not a kernel
        h[:] = sb.serial.linear_recurrence_numpy(a, b, h0)

    assert ex.check_recurrence_kernel(recurrence_kernel, quiet=True)
    fb = ex.check_recurrence_kernel(no_bounds_check, quiet=True)
    assert not fb and "c >= C" in fb.message
    fb = ex.check_recurrence_kernel(forgets_h0, quiet=True)
    assert not fb and "h0 was ignored" in fb.message
    fb = ex.check_recurrence_kernel(skips_the_last_step, quiet=True)
    assert not fb and "never written" in fb.message
    fb = ex.check_recurrence_kernel(host_loop, quiet=True)
    assert not fb and "@cuda.jit" in fb.message


def test_vjp_grader_wants_the_inputs_dtype():
    def vjp_float64(a, b, h0, h, g):
        return tuple(np.asarray(x, np.float64) for x in vjp(a, b, h0, h, g))

    assert ex.check_linear_recurrence_vjp(vjp, quiet=True)
    fb = ex.check_linear_recurrence_vjp(vjp_float64, quiet=True)
    assert not fb and "float32" in fb.message and "dtype" in fb.message


def test_scan_with_block_sums_must_use_block_scan():
    def whole_array_cumsum(x, block, block_scan):
        return np.cumsum(np.asarray(x, dtype=float))

    fb = ex.check_scan_with_block_sums(whole_array_cumsum, quiet=True)
    assert not fb and "block_scan was called 0 times" in fb.message


def test_scan_with_block_sums_must_recurse_and_keep_the_dtype():
    def totals_by_cumsum(x, block, block_scan):  # every tile scanned, the totals not
        x = np.asarray(x)
        if len(x) == 0:
            return x.copy()
        tiles = [block_scan(x[i : i + block]) for i in range(0, len(x), block)]
        totals = np.array([t[-1] for t in tiles])
        before = np.cumsum(totals) - totals
        return np.concatenate([t + s for t, s in zip(tiles, before, strict=True)])

    def scan_blocks_float64(x, block, block_scan):
        return scan_blocks(np.asarray(x, dtype=float), block, block_scan)

    fb = ex.check_scan_with_block_sums(totals_by_cumsum, quiet=True)
    assert not fb and "recursively" in fb.message, fb.message
    fb = ex.check_scan_with_block_sums(scan_blocks_float64, quiet=True)
    assert not fb and "float32" in fb.message and "dtype" in fb.message, fb.message


def test_warp_scan_needs_five_shuffles_and_keeps_the_dtype():
    def by_library(v, shfl_up):
        return np.add.accumulate(np.asarray(v))

    def warp_scan_float64(v, shfl_up):
        return warp_scan(np.asarray(v, dtype=float), shfl_up)

    fb = ex.check_warp_scan(by_library, quiet=True)
    assert not fb and "log2(32) = 5 shuffle steps; your function made 0" in fb.message
    fb = ex.check_warp_scan(warp_scan_float64, quiet=True)
    assert not fb and "float32" in fb.message and "dtype" in fb.message, fb.message


def test_chapter_2_graders_want_the_inputs_dtype():
    def hillis_steele_float64(xs, combine):
        return hillis_steele(np.asarray(xs, dtype=float), combine)

    def chunked_float64(a, b, h0, n_chunks):
        return np.asarray(chunked(a, b, h0, n_chunks), dtype=np.float64)

    for grader, wrong in (
        (ex.check_hillis_steele, hillis_steele_float64),
        (ex.check_chunked, chunked_float64),
    ):
        fb = grader(wrong, quiet=True)
        assert not fb and "float32" in fb.message and "dtype" in fb.message, fb.message


def test_matrix_vjp_grader_wants_a_loop_and_the_dtype():
    def matrix_vjp_float64(A, b, h0, h, g):
        return tuple(np.asarray(x, np.float64) for x in matrix_vjp(A, b, h0, h, g))

    def matrix_vjp_elsewhere(A, b, h0, h, g):  # right values, computed outside the inputs
        dtype = np.asarray(A).dtype
        args = (np.asarray(x, dtype=np.float64) for x in (A, b, h0, h, g))
        return tuple(np.asarray(x).astype(dtype) for x in matrix_vjp(*args))

    fb = ex.check_matrix_recurrence_vjp(matrix_vjp_float64, quiet=True)
    assert not fb and "float32" in fb.message and "dtype" in fb.message, fb.message
    fb = ex.check_matrix_recurrence_vjp(matrix_vjp_elsewhere, quiet=True)
    assert not fb and "own loop" in fb.message, fb.message


def test_chunked_must_run_the_three_phases():
    def chunked_by_loop(a, b, h0, n_chunks):  # one pass: T multiplications
        a, b = np.asarray(a), np.asarray(b)
        h, carry = np.empty(len(a), dtype=np.result_type(a, b)), float(h0)
        for t in range(len(a)):
            carry = a[t] * carry + b[t]
            h[t] = carry
        return h

    def chunked_by_library(a, b, h0, n_chunks):
        dtype = np.result_type(a, b) if np.asarray(a).dtype.kind == "f" else np.float64
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        return sb.linear_recurrence(a, b, np.float64(h0)).astype(dtype)

    for wrong in (chunked_by_loop, chunked_by_library):
        fb = ex.check_chunked(wrong, quiet=True)
        assert not fb and "three phases" in fb.message, fb.message


def test_vjp_grader_wants_a_loop_of_ones_own():
    def vjp_by_library(a, b, h0, h, g):
        return sb.linear_recurrence_vjp(a, b, h0, h, g)

    fb = ex.check_linear_recurrence_vjp(vjp_by_library, quiet=True)
    assert not fb and "counting numbers" in fb.message


def test_uniform_add_kernel_grader():
    @cuda.jit
    def add_prefixes(x, prefixes, tile):
        i = cuda.grid(1)
        if i < x.size:
            x[i] += prefixes[i // tile]

    @cuda.jit
    def by_block_index(x, prefixes, tile):
        i = cuda.grid(1)
        if i < x.size:
            x[i] += prefixes[cuda.blockIdx.x]

    @cuda.jit
    def no_bounds_check(x, prefixes, tile):
        i = cuda.grid(1)
        x[i] += prefixes[i // tile]

    assert ex.check_uniform_add_kernel(add_prefixes, quiet=True)
    fb = ex.check_uniform_add_kernel(by_block_index, quiet=True)
    assert not fb and "i // tile" in fb.message and "blockIdx" in fb.message
    fb = ex.check_uniform_add_kernel(no_bounds_check, quiet=True)
    assert not fb and "threads past the end" in fb.message

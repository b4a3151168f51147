"""Tests of scanbook.viz: the explorer's frames, the trace figure, and measured work/depth."""

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scanbook as sb  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from scanbook import algorithms, ops, serial, viz  # noqa: E402

PARALLEL = ["hillis_steele", "blelloch", "chunked"]
SIZES = [1, 5, 8, 13]


def small_ints(n, seed=0):
    return np.random.default_rng(seed).integers(1, 10, size=n)


@pytest.mark.parametrize("algorithm", PARALLEL)
@pytest.mark.parametrize("n", SIZES)
def test_explorer_has_one_frame_per_level_plus_input(algorithm, n):
    xs = small_ints(n)
    box = viz.scan_explorer(algorithm=algorithm, values=xs)
    controls, stack = box.children
    play, slider = controls.children
    trace = viz.trace_of(algorithm, xs)
    assert len(stack.children) == len(trace.levels) + 1
    assert slider.max == play.max == len(trace.levels)
    assert stack.selected_index == 0
    for page in stack.children:  # each frame is a self-contained SVG
        assert page.value.startswith("<svg") and page.value.endswith("</svg>")
        assert "<marker" not in page.value  # ids would clash between frames on one page


@pytest.mark.parametrize("algorithm", PARALLEL)
def test_explorer_works_from_the_embedded_widget_state(algorithm):
    """What a static page gets: the frames and the browser-side links slider -> stack."""
    from ipywidgets.embed import embed_data

    box = viz.scan_explorer(n=8, algorithm=algorithm)
    (play, slider), stack = box.children[0].children, box.children[1]
    state = embed_data(views=[box])["manager_state"]["state"]
    links = {
        (
            m["state"]["source"][0],
            m["state"]["source"][1],
            m["state"]["target"][0],
            m["state"]["target"][1],
        )
        for m in state.values()
        if m["model_name"] == "LinkModel"
    }
    ref = lambda widget: f"IPY_MODEL_{widget.model_id}"
    assert (ref(play), "value", ref(slider), "value") in links
    assert (ref(slider), "value", ref(stack), "selected_index") in links
    assert state[stack.model_id]["model_name"] == "StackModel"
    assert len(state[stack.model_id]["state"]["children"]) == len(stack.children)


@pytest.mark.parametrize("algorithm", PARALLEL)
@pytest.mark.parametrize("n", SIZES)
def test_last_frame_holds_the_prefix_sums(algorithm, n):
    xs = small_ints(n, seed=n)
    frames = viz.frames(viz.trace_of(algorithm, xs))
    inclusive = np.cumsum(xs)
    # Blelloch's down-sweep ends in the exclusive scan; the others in the inclusive one
    expected = inclusive - xs if algorithm == "blelloch" else inclusive
    np.testing.assert_array_equal(frames[-1].values[:n], expected)
    np.testing.assert_array_equal(frames[0].values[:n], xs)
    trace = viz.trace_of(algorithm, xs)
    assert frames[-1].work == trace.work and frames[-1].depth == trace.depth


@pytest.mark.parametrize("n", [5, 8, 13])
def test_each_frame_follows_from_the_one_before(n):
    """Every written cell is the operator applied to the cells the arrows point from."""
    for algorithm in PARALLEL:
        frames = viz.frames(viz.trace_of(algorithm, small_ints(n, seed=3)))
        for f in frames[1:]:
            for src, dst in f.pairs:
                if f.kind == "swap":
                    assert f.values[src] == f.before[dst]
                    assert f.values[dst] == f.before[dst] + f.before[src]
                else:
                    assert f.values[dst] == f.before[src] + f.before[dst]


@settings(max_examples=40, deadline=None)
@given(
    xs=st.lists(st.integers(-9, 9), min_size=1, max_size=32),
    algorithm=st.sampled_from(PARALLEL),
    chunks=st.integers(1, 8),
)
def test_frames_tell_a_consistent_story(xs, algorithm, chunks):
    xs = np.array(xs)
    kwargs = {"n_chunks": chunks} if algorithm == "chunked" else {}
    trace = viz.trace_of(algorithm, xs, **kwargs)
    frames = viz.frames(trace)
    assert len(frames) == len(trace.levels) + 1
    expected = np.cumsum(xs) - (xs if algorithm == "blelloch" else 0)
    np.testing.assert_array_equal(frames[-1].values[: len(xs)], expected)
    for f in frames[1:]:
        shared = {dst for _, dst in f.pairs} if f.phase == "scan" else set()
        for src, dst in f.pairs:
            if src in shared:  # chunked, one element per chunk: carry and element share a slot
                continue
            if f.kind == "swap":
                assert f.values[src] == f.before[dst]
                assert f.values[dst] == f.before[dst] + f.before[src]
            else:
                assert f.values[dst] == f.before[src] + f.before[dst]


def test_explorer_with_maximum_and_own_values():
    xs = np.array([3, -1, 4, 1, -5, 9, 2])
    frames = viz.frames(viz.trace_of("hillis_steele", xs, ops.maximum))
    np.testing.assert_array_equal(frames[-1].values, np.maximum.accumulate(xs))
    box = viz.scan_explorer(algorithm="chunked", values=xs, op=ops.maximum, n_chunks=3)
    assert len(box.children[1].children) == len(viz.trace_of("chunked", xs, n_chunks=3).levels) + 1


def test_explorer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="algorithm"):
        viz.scan_explorer(algorithm="serial")
    with pytest.raises(ValueError, match="n must"):
        viz.scan_explorer(n=33)
    with pytest.raises(ValueError, match="n must equal"):
        viz.scan_explorer(n=4, values=[1, 2, 3])
    with pytest.raises(TypeError, match="op must"):
        viz.scan_explorer(op=ops.affine)


@pytest.mark.parametrize("algorithm", PARALLEL)
def test_frames_keep_one_size_so_the_page_does_not_jump(algorithm):
    trace = viz.trace_of(algorithm, small_ints(13))
    sizes = {
        re.search(r'width="([\d.]+)" height="(\d+)"', viz.frame_svg(trace, k)).groups()
        for k in range(len(trace.levels) + 1)
    }
    assert len(sizes) == 1


def test_frame_svg_shows_counters_and_values():
    trace = viz.trace_of("blelloch", np.arange(1, 9))
    svg = viz.frame_svg(trace, len(trace.levels))
    assert f"work so far {trace.work} / bound 2n = 16" in svg
    assert f"depth so far {trace.depth} / bound 2 ⌈log₂ n⌉ = 6" in svg
    numbers = re.findall(r">(\d+)</text>", svg)
    for v in np.cumsum(np.arange(1, 9)) - np.arange(1, 9):  # the exclusive sums are drawn
        assert str(v) in numbers
    hs = viz.trace_of("hillis_steele", np.arange(1, 9))
    assert "bound n log₂ n = 24" in viz.frame_svg(hs, 1)


@pytest.mark.parametrize("algorithm", PARALLEL)
@pytest.mark.parametrize("n", [1, 8, 13, 32])
def test_draw_trace_runs_headless(algorithm, n):
    trace = viz.trace_of(algorithm, small_ints(n))
    ax = viz.draw_trace(trace)
    assert f"work {trace.work}, depth {trace.depth}" in ax.get_title()
    assert len(ax.get_yticks()) == len(trace.levels) + 1
    ax.figure.canvas.draw()
    plt.close(ax.figure)


def test_draw_trace_without_values_and_on_given_axes():
    trace = algorithms.Trace()  # no values recorded
    algorithms.scan(ops.affine, (np.full(6, 0.5), np.ones(6)), algorithm="blelloch", trace=trace)
    fig, ax = plt.subplots()
    assert viz.draw_trace(trace, ax=ax, title="affine") is ax
    assert ax.get_title().startswith("affine")
    plt.close(fig)


def test_serial_work_and_depth_are_counted_as_n_minus_1():
    results = viz.work_depth(algorithms=("serial",), ns=(1, 2, 7, 64))
    assert results["serial"]["work"] == [0, 1, 6, 63]
    assert results["serial"]["depth"] == [0, 1, 6, 63]


@pytest.mark.parametrize("op", [ops.add, ops.affine, ops.matrix_affine], ids=lambda o: o.name)
def test_work_depth_equals_the_traces(op):
    ns = (1, 2, 5, 8, 13, 100)
    results = viz.work_depth(ns=ns, op=op)
    for name in PARALLEL:
        assert results[name]["n"] == list(ns)
        for n, work, depth in zip(ns, results[name]["work"], results[name]["depth"], strict=True):
            trace = algorithms.Trace()
            algorithms.scan(
                op, viz._example(op, n, np.random.default_rng(1)), algorithm=name, trace=trace
            )
            assert (work, depth) == (trace.work, trace.depth)
        # counted by wrapping the operator, independently of the trace
        assert results[name]["counted"] == results[name]["work"]
    blelloch = results["blelloch"]
    for n, work in zip(ns, blelloch["work"], strict=True):
        if n & (n - 1) == 0:  # powers of two: exactly 2(n - 1)
            assert work == 2 * (n - 1)


@pytest.mark.parametrize(
    "name",
    [
        "serial",
        "hillis_steele",
        "blelloch",
        "chunked",
    ],
)
@pytest.mark.parametrize("n", [1, 2, 5, 8, 13, 64])
def test_counted_operator_applications_equal_trace_work(name, n):
    xs = np.random.default_rng(n).standard_normal(n)
    counted_op, count = viz.counting(ops.add)
    if name == "serial":
        out = serial.scan(counted_op, xs)
        expected_work = n - 1
    else:
        trace = algorithms.Trace()
        out = algorithms.scan(counted_op, xs, algorithm=name, trace=trace)
        expected_work = trace.work
    np.testing.assert_allclose(out, np.cumsum(xs))
    assert count.elements == expected_work


def test_plot_work_depth_draws_measurements_and_bounds():
    results = viz.work_depth(ns=(2, 4, 8, 16))
    ax_work, ax_depth = viz.plot_work_depth(results)
    work_labels = [line.get_label() for line in ax_work.get_lines()]
    depth_labels = [line.get_label() for line in ax_depth.get_lines()]
    assert {"2n", "n log₂ n", "Serial", "Blelloch"} <= set(work_labels)
    assert {"2 log₂ n", "n", "Hillis–Steele"} <= set(depth_labels)
    assert ax_work.get_xscale() == ax_work.get_yscale() == "log"
    plt.close(ax_work.figure)


def test_library_exposes_viz():
    assert sb.viz is viz

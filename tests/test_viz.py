"""Tests of scanbook.viz: the explorer's frames, the trace figure, and measured work/depth."""

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

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


@pytest.mark.parametrize("algorithm", PARALLEL)
@pytest.mark.parametrize("n", [1, 8, 13])
def test_explorer_first_frame_has_no_blank_band(algorithm, n):
    """Step 0 draws the input in the top row and, below it, what level 1 will do: the cells
    it writes as dashed "?" boxes and its pairs as dashed arrows (no empty "before" row)."""
    xs = small_ints(n, seed=5)
    trace = viz.trace_of(algorithm, xs)
    all_frames = viz.frames(trace)
    svg = viz.frame_svg(trace, 0, all_frames=all_frames)
    labels = {
        m.group(2): float(m.group(1))
        for m in re.finditer(r'<text x="[\d.]+" y="([\d.]+)"[^>]*>([^<]*)</text>', svg)
    }
    assert "input" in labels, "step 0 labels the top row 'input'"
    cell_tops = sorted({float(y) for y in re.findall(r'<rect x="[\d.]+" y="([\d.]+)" width', svg)})
    if len(all_frames) == 1:
        assert "output" in labels and labels["input"] < labels["output"]
        return
    nxt = all_frames[1]
    will = set(nxt.written) | {d for _, d in nxt.pairs}
    if nxt.kind == "swap":
        will |= {s for s, _ in nxt.pairs}
    assert labels["input"] < labels["level 1"]
    assert svg.count(">?</text>") == len(will)
    assert will or not nxt.pairs
    assert svg.count('stroke-dasharray="3 2"') == len(will)
    assert svg.count('<g opacity="0.45"><line') == len(nxt.pairs)
    assert f"level 1 ({nxt.phase})" in svg
    # the input's cells sit in the first row of cells under the position numbers
    first_row = [
        float(y)
        for y in re.findall(
            r'<rect x="[\d.]+" y="([\d.]+)" width="[\d.]+" '
            r'height="[\d.]+" fill="#ffffff"',
            svg,
        )
    ]
    assert min(first_row) == pytest.approx(labels["input"] - 18, abs=12)
    assert cell_tops  # the frame draws its cells
    # every frame of an explorer has the same height: nothing jumps while it plays
    heights = {
        re.search(r'height="(\d+)"', viz.frame_svg(trace, k, all_frames=all_frames)).group(1)
        for k in range(len(all_frames))
    }
    assert len(heights) == 1


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


# -- the package: the names chapters 2-5 use, and the contract for new figure modules --------

VIZ_DIR = Path(viz.__file__).parent
FIGURE_MODULES = sorted(p.stem for p in VIZ_DIR.glob("*.py") if p.stem != "__init__")
# what chapters 2-5 and the tests call as sb.viz.<name>: it must keep working, flat
FLAT = {
    "trees": ["Frame", "bounds", "draw_trace", "frames", "trace_of"],
    "explorer": ["EXPLORER_MAX_N", "PHASE_NOTES", "frame_svg", "scan_explorer"],
    "workdepth": ["DEFAULT_NS", "MARKERS", "Count", "counting", "plot_work_depth", "work_depth"],
    "gpu": [
        "describe_gpu_bandwidth",
        "describe_gpu_results",
        "plot_crossover",
        "plot_gpu_bandwidth",
        "plot_gpu_targets",
        "plot_table1",
        "select_gpu",
    ],
    "gradients": ["gradient_records", "plot_gradient_ratios"],
    "common": ["NAMES", "PHASE_COLORS"],
}


def test_flat_names_are_the_modules_objects():
    for module, names in FLAT.items():
        for name in names:
            assert getattr(viz, name) is getattr(getattr(viz, module), name), name
    assert set(viz.__all__) == {n for names in FLAT.values() for n in names}
    assert viz._example is viz.workdepth._example
    assert {"common", "trees", "explorer", "workdepth", "gpu", "gradients"} <= set(FIGURE_MODULES)
    assert viz.submodules() == FIGURE_MODULES
    assert set(FIGURE_MODULES) <= set(dir(viz))


def test_a_new_figure_module_needs_no_edit_of_the_package(tmp_path, monkeypatch):
    """What chapter 6 does: one new file, then sb.viz.<topic>.<function> with no import."""
    (tmp_path / "zz_heatmap.py").write_text(
        "from .common import HIGHLIGHT, new_axes\n"
        "def plot_x(ax=None):\n"
        "    ax = new_axes(ax, (3, 2))\n"
        "    ax.plot([1, 2], color=HIGHLIGHT)\n"
        "    return ax.figure\n"
    )
    (tmp_path / "zz_broken.py").write_text("import no_such_package_for_viz_tests\n")
    monkeypatch.setattr(viz, "__path__", [*viz.__path__, str(tmp_path)])
    try:
        assert "zz_heatmap" in viz.submodules() and "zz_heatmap" in dir(viz)
        fig = sb.viz.zz_heatmap.plot_x()
        assert sys.modules["scanbook.viz.zz_heatmap"] is viz.zz_heatmap
        assert fig.axes[0].lines[0].get_color() == "C3"
        plt.close(fig)
        # a module that exists but cannot import says what is missing
        with pytest.raises(ModuleNotFoundError, match="no_such_package_for_viz_tests"):
            sb.viz.zz_broken  # noqa: B018
    finally:
        for name in ("zz_heatmap", "zz_broken"):
            sys.modules.pop(f"scanbook.viz.{name}", None)
            viz.__dict__.pop(name, None)


def test_a_missing_figure_module_is_an_attribute_error():
    with pytest.raises(AttributeError, match=r"no figure module viz/models_of_ch6\.py"):
        sb.viz.models_of_ch6  # noqa: B018
    assert not hasattr(viz, "models_of_ch6") and not hasattr(viz, "__wrapped__")
    assert "scanbook.viz.models_of_ch6" not in sys.modules


def _imports(tree: ast.Module) -> tuple[set[str], set[str]]:
    """(sibling viz modules, top-level packages) that a module imports at module level."""
    siblings, packages = set(), set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                siblings.add(node.module.split(".")[0])
            else:
                siblings |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            packages.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            packages |= {a.name.split(".")[0] for a in node.names}
    return siblings, packages


def test_figure_modules_import_each_other_without_a_circle():
    graph = {m: _imports(ast.parse((VIZ_DIR / f"{m}.py").read_text()))[0] for m in FIGURE_MODULES}
    assert graph["common"] == set()
    assert all(dep in FIGURE_MODULES for deps in graph.values() for dep in deps), graph
    done: set[str] = set()

    def visit(m, path):
        assert m not in path, f"import circle: {' -> '.join([*path, m])}"
        if m not in done:
            for dep in graph[m]:
                visit(dep, [*path, m])
            done.add(m)

    for m in FIGURE_MODULES:
        visit(m, [])


@pytest.mark.parametrize("module", FIGURE_MODULES)
def test_figure_module_follows_the_contract(module):
    path = VIZ_DIR / f"{module}.py"
    source = path.read_text()
    assert len(source.splitlines()) <= 650, f"{path.name}: split it (the contract: ~600 lines)"
    tree = ast.parse(source)
    heavy = _imports(tree)[1] & {"matplotlib", "ipywidgets", "jax", "cupy", "numba"}
    assert not heavy, f"{path.name} imports {heavy} at import time: import inside functions"
    mod = getattr(viz, module)
    assert mod.__all__ and all(hasattr(mod, name) for name in mod.__all__)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_"):
            doc = ast.get_docstring(node) or ""
            assert re.search(r"Defined\s+in\s+chapters?\s+\d", doc), f"{path.name}: {node.name}"


def test_importing_viz_imports_no_matplotlib():
    code = (
        "import sys, scanbook.viz; print(sorted({'matplotlib', 'ipywidgets'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- common: the helpers every figure module shares -------------------------------------------


def test_savefig_writes_the_figure_of_a_figure_or_axes(tmp_path):
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [1, 0])
    png = viz.common.savefig(ax, tmp_path / "new" / "folder" / "f.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = viz.common.savefig(fig, str(tmp_path / "f.svg"))
    assert "<svg" in svg.read_text()
    plt.close(fig)
    with pytest.raises(TypeError, match="fig must be a matplotlib Figure or Axes; got list"):
        viz.common.savefig([1], tmp_path / "x.png")


def test_new_axes_reuses_or_makes_axes():
    ax = viz.common.new_axes(None, (3, 2))
    assert tuple(ax.figure.get_size_inches()) == (3, 2)
    assert viz.common.new_axes(ax) is ax
    plt.close(ax.figure)


def test_read_results_keeps_one_benchmarks_readable_files(tmp_path, monkeypatch):
    monkeypatch.setenv("SCANBOOK_RESULTS_DIR", str(tmp_path))
    assert viz.common.results_dir() == tmp_path
    (tmp_path / "a.json").write_text(json.dumps({"benchmark": "models", "records": [1]}))
    (tmp_path / "b.json").write_text(json.dumps({"records": [2]}))  # no "benchmark" key
    (tmp_path / "c.json").write_text(json.dumps({"benchmark": "gpu"}))
    (tmp_path / "d.json").write_text("{not json")
    (tmp_path / "e.json").write_text("[1, 2]")  # JSON, not an object
    (tmp_path / "f.txt").write_text(json.dumps({"benchmark": "models"}))  # not *.json
    read = viz.common.read_results
    assert [(f.name, d["records"]) for f, d in read("models")] == [("a.json", [1])]
    assert [f.name for f, _ in read("models", default="models")] == ["a.json", "b.json"]
    assert [f.name for f, _ in read("gpu")] == ["c.json"]
    paths = [tmp_path / "f.txt", tmp_path / "missing.json", tmp_path / "d.json"]
    assert [f.name for f, _ in read("models", paths)] == ["f.txt"]
    assert read("deer") == []


def test_record_helpers_trust_nothing():
    c = viz.common
    assert [c.is_num(x) for x in (1, 2.5, True, float("nan"), float("inf"), "3", None)] == [
        True,
        True,
        False,
        False,
        False,
        False,
        False,
    ]
    assert c.record_shape({"T": 4096.0, "channels": 64, "dtype": "float32"}) == (
        4096,
        64,
        "float32",
    )
    assert c.record_shape({"T": "many", "channels": None}) == (-1, -1, "?")
    assert c.shape_text((4096, 64, "float32")) == "T=4,096, C=64, float32"
    assert c.shape_text((-1, 1, "?"), "\n", dtype=False) == "T=?\nC=1"
    assert [c.record_gbps({"gbps": x}) for x in (812.5, 0, -3, "9", 1e12)] == [812.5] + [None] * 4
    assert c.kernel_label({"kernel": "_private"}) == "private" and c.kernel_label({}) == "?"
    assert c.pct_text(87.4) == "87%" and c.pct_text(3e6) == "3e+06%"
    assert c.gpu_of({}) == "unknown GPU" and c.day_of(None) == "undated"
    assert c.day_of("2026-03-02T10:00:00+00:00") == "2026-03-02"
    assert [c.fmt_number(x) for x in (3.0, 0.25, 12345.678, -np.inf, 2e7)] == [
        "3",
        "0.25",
        "1.23e+04",
        "−∞",
        "2e+07",
    ]
    assert "C3" not in c.OTHER_COLORS and c.HIGHLIGHT == "C3"


# -- the GPU benchmarks' figures (chapters 3-5), on synthetic result files -------------------
#
# No GPU has recorded results yet, so these tests write files of the benchmarks' exact schema
# (scanbook._bench_gpu.main and scanbook._bench_grad.main) into a temporary folder, point
# SCANBOOK_RESULTS_DIR at it and draw from what the loaders read back: measured records,
# failed kernels (``error``), skipped gradients (``skipped``), two GPUs and two runs.


from scanbook import _bench_gpu, _bench_grad  # noqa: E402

H200, T4 = "NVIDIA H200", "Tesla T4"
BANDWIDTH_KERNELS = [
    "copy",
    "stream_add (a+b->h)",
    "cupy_single_pass",
    "cupy_three_phase",
    "cupy_serial",
    "cupy_auto",
    "numba_cuda",
    "jax_associative_scan",
]


def gpu_records(n=1 << 26, copy_gbps=4000.0, numba_fails_on=((1 << 26, 1, "float32"),)):
    """The records of ``_bench_gpu.main``: bandwidth per target, Table 1, crossover."""
    rng = np.random.default_rng(n)
    records = []
    targets = [
        (n // 64, 64, "float32"),
        (n, 1, "float32"),
        (n // 128, 64, "float64"),
        (n // 2, 1, "float64"),
    ]
    for T, C, dtype in targets:
        itemsize = 4 if dtype == "float32" else 8
        moved = 3 * itemsize * T * C
        rows = []
        for kernel in BANDWIDTH_KERNELS:
            if kernel == "cupy_serial" and C < 32 and T > (1 << 22):
                continue  # the bench skips it silently
            if kernel == "numba_cuda" and (T, C, dtype) in numba_fails_on:
                rows.append(
                    {
                        "kernel": kernel,
                        "T": T,
                        "channels": C,
                        "dtype": dtype,
                        "error": "CUDA_ERROR_OUT_OF_MEMORY",
                    }
                )
                continue
            gbps = copy_gbps if kernel == "copy" else copy_gbps * rng.uniform(0.05, 0.95)
            r = {
                "kernel": kernel,
                "T": T,
                "channels": C,
                "dtype": dtype,
                "bytes": moved,
                "median_s": moved / gbps / 1e9,
                "gbps": gbps,
            }
            if kernel == "cupy_three_phase":
                r["floor_gbps_at_20_bytes"] = gbps * 5 / 3
                r["pct_of_own_floor"] = 100 * gbps * 5 / 3 / copy_gbps
            if kernel == "cupy_auto":
                r["chose"] = "single_pass" if C < 32 else "three_phase"
            if kernel == "numba_cuda":
                r["timing"] = "cuda events, device arrays"
            if kernel == "jax_associative_scan":
                r["timing"] = "wall clock, block_until_ready"
            rows.append(r)
        for r in rows:
            if "gbps" in r:
                r["pct_of_copy"] = 100 * r["gbps"] / copy_gbps
        records += rows
    for T in _bench_gpu.TABLE1_T:
        for C in _bench_gpu.TABLE1_C:
            serial_s = 1e-6 * T
            for method, speedup in (("three_phase", 2.0), ("single_pass", 3.0)):
                s = speedup * np.log2(T) / 4
                records.append(
                    {
                        "kernel": f"table1_{method}",
                        "T": T,
                        "channels": C,
                        "dtype": "float32",
                        "bytes": 12 * T * C,
                        "median_s": serial_s / s,
                        "serial_s": serial_s,
                        "gbps": 12 * T * C / (serial_s / s) / 1e9,
                        "speedup_vs_serial": s,
                        "paper_speedup_k80": _bench_gpu.PAPER_TABLE1.get((T, C)),
                    }
                )
    for C in (1, 4, 16, 64):
        T = (1 << 24) // C
        for method in ("serial", "single_pass", "three_phase"):
            records.append(
                {
                    "kernel": f"crossover_{method}",
                    "T": T,
                    "channels": C,
                    "dtype": "float32",
                    "bytes": 12 * T * C,
                    "median_s": 1e-3,
                    "gbps": 12 * T * C / 1e-3 / 1e9,
                }
            )
    return records


def write_gpu_file(folder, gpu, date, records, name=None):
    """A result file as ``_bench_gpu.main`` writes it."""
    result = {
        "benchmark": "gpu",
        "date": date,
        "gpu": gpu,
        "compute_capability": "9.0",
        "multiprocessors": 132,
        "memory_bytes": 150 << 30,
        "driver": 13000,
        "cuda_runtime": 13000,
        "cupy": "14.0.0",
        "jax": None,
        "jaxlib": None,
        "numba": "0.68.0",
        "numba_cuda": "0.30.4",
        "scanbook": "0.1.0",
        "elements": 1 << 26,
        "repeat": 50,
        "warmup": 5,
        "bytes_per_element": "read a, b and write h: 3 x itemsize (12 for float32)",
        "records": records,
    }
    path = folder / (name or f"{_bench_gpu.slug(gpu)}.json")
    path.write_text(json.dumps(result, indent=1, default=float))
    return path


def grad_gpu_record(backend, ratio, T=1 << 20, C=64, device=H200):
    """A record of ``_bench_grad.run`` timed on a GPU."""
    r = {
        "benchmark": "grad",
        "kernel": backend.replace(" ", "_") + "_grad",
        "backend": backend,
        "device": device,
        "T": T,
        "channels": C,
        "dtype": "float32",
        "repeat": 5,
        "forward_s": 1e-3,
        "backward_s": ratio * 1e-3,
    }
    if backend == "cupy":
        r["timing"] = "cuda events"
    if backend.startswith("jax"):
        r.update(
            forward_backward_s=(1 + ratio) * 1e-3,
            compile_s=0.5,
            residual_arrays=3,
            residual_bytes=3 * 4 * T * C,
            temp_size_in_bytes=None,
            peak_memory_in_bytes=None,
        )
    r["ratio"] = r["backward_s"] / r["forward_s"]
    return r


@pytest.fixture
def results(tmp_path, monkeypatch, capsys):
    """Two GPUs (the H200 measured last, twice), and a gradient file of ``bench grad``."""
    monkeypatch.setenv("SCANBOOK_RESULTS_DIR", str(tmp_path))
    write_gpu_file(tmp_path, H200, "2026-03-02T10:00:00+00:00", gpu_records())
    write_gpu_file(
        tmp_path,
        H200,
        "2026-01-05T09:00:00+00:00",
        gpu_records(n=1 << 22),
        name="nvidia-h200-quick.json",
    )
    write_gpu_file(tmp_path, T4, "2025-12-24T08:00:00+00:00", gpu_records(n=1 << 24, copy_gbps=250))
    # the gradient file, written by the benchmark itself (numpy: a CPU record), then the
    # records a GPU run adds: two JAX versions, numba_cuda, cupy, and one skipped backend
    grad = tmp_path / "grad-nvidia-h200.json"
    assert (
        _bench_grad.main(
            [
                "--T",
                "64",
                "--channels",
                "2",
                "--repeat",
                "1",
                "--backends",
                "numpy",
                "--json",
                str(grad),
            ]
        )
        == 0
    )
    data = json.loads(grad.read_text())
    assert [r["device"][:3] for r in data["records"]] == ["CPU"]
    data["records"] += [
        grad_gpu_record("jax custom VJP", 1.4),
        grad_gpu_record("jax autodiff", 3.1),
        grad_gpu_record("numba_cuda", 2.6),
        grad_gpu_record("cupy", 1.7),
        {**grad_gpu_record("cupy", 1.0, T=16), "skipped": "cupy is not installed"},
    ]
    for r in data["records"][-1:]:  # a skipped record has no timings
        for key in ("forward_s", "backward_s", "ratio", "timing"):
            r.pop(key)
    grad.write_text(json.dumps(data, indent=2))
    (tmp_path / "notes.json").write_text("[1, 2")  # not JSON: ignored
    capsys.readouterr()
    return tmp_path


def texts(ax):
    return [t.get_text() for t in ax.texts]


def test_load_results_reads_only_gpu_benchmark_files(results):
    records = _bench_gpu.load_results()
    assert {r["gpu"] for r in records} == {H200, T4}
    assert not any(str(r["kernel"]).endswith("_grad") for r in records)
    assert all(r["date"] for r in records)


def test_gradient_records_reads_only_gpu_gradients(results):
    records = viz.gradient_records()
    assert {r["file"] for r in records} == {"grad-nvidia-h200.json"}
    assert sorted(r["backend"] for r in records) == [
        "cupy",
        "jax autodiff",
        "jax custom VJP",
        "numba_cuda",
    ]  # not the CPU record of numpy, not the skipped one
    assert all(r["device"] == H200 and r["date"].startswith("20") for r in records)
    cupy = next(r for r in records if r["backend"] == "cupy")
    assert cupy["kernel"] == "cupy_grad" and cupy["ratio"] == pytest.approx(1.7)
    # an explicit list of files; a file of the GPU benchmark gives nothing
    assert viz.gradient_records([results / "nvidia-h200.json", results / "missing.json"]) == []


def test_gradient_records_keeps_the_newest_run_and_computes_a_missing_ratio(results):
    older = {
        "benchmark": "grad",
        "date": "2025-01-01T00:00:00+00:00",
        "device": H200,
        "records": [
            grad_gpu_record("cupy", 9.0),
            {k: v for k, v in grad_gpu_record("cupy", 1.5, T=4096).items() if k != "ratio"},
        ],
    }
    (results / "grad-old.json").write_text(json.dumps(older))
    records = viz.gradient_records()
    cupy = sorted((r["T"], r["ratio"], r["file"]) for r in records if r["backend"] == "cupy")
    assert cupy == [
        (4096, pytest.approx(1.5), "grad-old.json"),
        (1 << 20, pytest.approx(1.7), "grad-nvidia-h200.json"),
    ]


def test_select_gpu_takes_the_newest_run_of_the_newest_gpu(results):
    records = _bench_gpu.load_results()
    gpu, mine = viz.select_gpu(records)
    assert gpu == H200
    assert {r["date"] for r in mine} == {"2026-03-02T10:00:00+00:00"}
    gpu, mine = viz.select_gpu(records, T4)
    assert gpu == T4 and mine and all(r["gpu"] == T4 for r in mine)
    with pytest.raises(ValueError, match="gpu must be one of"):
        viz.select_gpu(records, "GeForce 256")
    assert viz.select_gpu([]) == (None, [])


def test_plot_gpu_bandwidth_highlights_numba_and_names_the_gpu(results):
    records = _bench_gpu.load_results()
    fig = viz.plot_gpu_bandwidth(records, highlight="numba")
    (ax,) = fig.axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"copy (the ceiling)"} | set(BANDWIDTH_KERNELS[1:])
    numba = lines["numba_cuda"]
    assert numba.get_color() == "C3" and numba.get_linewidth() == 2.5
    assert len(numba.get_xdata()) == 3  # it failed on one of the four targets
    assert len(lines["cupy_serial"].get_xdata()) == 2  # the bench skips it for C=1, T > 2^22
    assert len(ax.get_xticks()) == 4
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert "T=1,048,576\nC=64\nfloat32" in labels
    assert H200 in ax.get_title() and "2026-03-02" in ax.get_title()
    assert "newest of 2 GPUs" in ax.get_title() and "newest of 2 runs" in ax.get_title()
    fig.canvas.draw()
    plt.close(fig)
    # the older GPU on request: its own numbers
    fig = viz.plot_gpu_bandwidth(records, gpu=T4)
    copy = next(line for line in fig.axes[0].get_lines() if line.get_label().startswith("copy"))
    assert set(copy.get_ydata()) == {250.0}
    assert T4 in fig.axes[0].get_title()
    plt.close(fig)


def test_describe_gpu_bandwidth_reports_percent_of_copy_and_failures(results):
    records = _bench_gpu.load_results()
    text = viz.describe_gpu_bandwidth(records, "numba")
    lines = text.splitlines()
    assert H200 in lines[0] and len(lines) == 5
    assert sum("% of copy" in line for line in lines) == 3
    assert "numba_cuda T=67,108,864, C=1, float32: not measured: CUDA_ERROR" in text
    assert viz.describe_gpu_bandwidth(records, "no such kernel") == ""
    summary = viz.describe_gpu_results(records)
    assert H200 in summary and T4 in summary and "2026-03-02" in summary
    assert "1 failed (numba_cuda)" in summary and f"The figures show {H200}" in summary


def test_plot_gpu_targets_draws_one_panel_per_target(results):
    records = _bench_gpu.load_results()
    fig = viz.plot_gpu_targets(records)
    visible = [ax for ax in fig.axes if ax.axison]
    assert len(visible) == 4
    assert H200 in fig.get_suptitle() and "newest of 2 GPUs" in fig.get_suptitle()
    for ax in visible:
        rows = [t.get_text() for t in ax.get_yticklabels()]
        assert rows[0] == "copy"
        failed = texts(ax).count(" failed")
        assert len(ax.patches) == len(rows) - failed  # one bar per measured kernel
        assert ax.patches[0].get_facecolor()[:3] == (0.0, 0.0, 0.0)  # the copy is black
        assert " 100%" in texts(ax)
        auto = [row for row in rows if row.startswith("cupy_auto")]
        assert auto and auto[0] in ("cupy_auto (single_pass)", "cupy_auto (three_phase)")
    titles = {ax.get_title(): ax for ax in visible}
    assert texts(titles["T=67,108,864, C=1, float32"]).count(" failed") == 1
    fig.canvas.draw()
    plt.close(fig)


def test_plot_table1_draws_each_width_and_the_papers_points(results):
    records = _bench_gpu.load_results()
    fig = viz.plot_table1(records)
    (ax,) = fig.axes
    labels = [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]
    for C in _bench_gpu.TABLE1_C:
        assert {f"single_pass, C={C}", f"three_phase, C={C}", f"paper (K80), C={C}"} <= set(labels)
    assert len(labels) == 3 * len(_bench_gpu.TABLE1_C)
    paper = next(line for line in ax.get_lines() if line.get_label() == "paper (K80), C=32")
    assert list(paper.get_xdata()) == [16, 4096, 65536]
    single = next(line for line in ax.get_lines() if line.get_label() == "single_pass, C=4")
    assert list(single.get_xdata()) == list(_bench_gpu.TABLE1_T)
    assert H200 in ax.get_title() and "2026-03-02" in ax.get_title()
    fig.canvas.draw()
    plt.close(fig)


def test_plot_gradient_ratios_draws_one_bar_per_gpu_record(results):
    records = viz.gradient_records()
    fig = viz.plot_gradient_ratios(records)
    (ax,) = fig.axes
    assert len(ax.patches) == 4
    heights = sorted(p.get_height() for p in ax.patches)
    assert heights == pytest.approx([1.4, 1.7, 2.6, 3.1])
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert "cupy\nT=1,048,576, C=64" in ticks
    assert H200 in ax.get_title()
    assert sorted(line.get_ydata()[0] for line in ax.get_lines()) == pytest.approx([5 / 3, 2])
    fig.canvas.draw()
    plt.close(fig)
    # two devices: one colour each, named in the legend and the title
    other = {**records[0], "device": "Tesla T4", "ratio": 1.9}
    fig = viz.plot_gradient_ratios(records + [other])
    ax = fig.axes[0]
    assert "Tesla T4" in ax.get_title()
    assert {"Tesla T4", H200} <= {t.get_text() for t in ax.get_legend().get_texts()}
    plt.close(fig)


def test_gpu_figures_with_no_results(tmp_path, monkeypatch):
    monkeypatch.setenv("SCANBOOK_RESULTS_DIR", str(tmp_path / "nothing here"))
    assert _bench_gpu.load_results() == [] and viz.gradient_records() == []
    before = plt.get_fignums()
    for draw in (viz.plot_gpu_bandwidth, viz.plot_gpu_targets, viz.plot_table1, viz.plot_crossover):
        assert draw([]) is None
    assert viz.plot_gradient_ratios([]) is None
    assert viz.describe_gpu_bandwidth([]) == viz.describe_gpu_results([]) == ""
    # only failed kernels: nothing to draw either
    failed = [
        {
            "gpu": H200,
            "date": None,
            "kernel": "numba_cuda",
            "T": 8,
            "channels": 1,
            "dtype": "float32",
            "error": "no GPU",
        }
    ]
    assert viz.plot_gpu_bandwidth(failed) is None and viz.plot_gpu_targets(failed) is None
    assert viz.plot_table1(failed) is None
    assert "not measured: no GPU" in viz.describe_gpu_bandwidth(failed)
    assert plt.get_fignums() == before  # and no empty figure was left open


def test_gpu_figures_without_optional_keys():
    """Old or partial files: no pct_of_copy, no date, no gpu name, no paper number."""
    records = [
        {
            "gpu": None,
            "date": None,
            "kernel": "cupy_single_pass",
            "T": 1024,
            "channels": 8,
            "dtype": "float32",
            "gbps": 900.0,
        },
        {"gpu": None, "date": None, "kernel": "copy", "T": 1024, "channels": 8, "gbps": 1000.0},
        {
            "gpu": None,
            "date": None,
            "kernel": "table1_single_pass",
            "T": 256,
            "channels": 4,
            "speedup_vs_serial": 0.5,
            "paper_speedup_k80": None,
        },
    ]
    fig = viz.plot_gpu_targets(records)
    labels = [t for ax in fig.axes for t in texts(ax)]
    assert " 900 GB/s" in labels and " 1,000 GB/s" in labels
    assert "unknown GPU, undated" in fig.get_suptitle()
    plt.close(fig)
    fig = viz.plot_table1(records)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert "single_pass, C=4" in labels and "paper (K80), C=4" in labels
    plt.close(fig)
    fig = viz.plot_gpu_bandwidth(records, highlight=None)
    assert "red" not in fig.axes[0].get_title()
    plt.close(fig)
    assert "(no copy measured)" in viz.describe_gpu_bandwidth(records, "cupy")


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 1 << 30),
    st.floats(-1e12, 1e12),
    st.sampled_from([float("nan"), float("inf"), -float("inf")]),
    st.text(alphabet="abc xyz_", max_size=8),
    st.just([1, 2]),
)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "kernel": st.sampled_from(
                    BANDWIDTH_KERNELS
                    + ["table1_single_pass", "x_grad", "crossover_serial", "crossover_single_pass"]
                )
            },
            optional={
                key: JUNK
                for key in (
                    "gpu",
                    "date",
                    "T",
                    "channels",
                    "dtype",
                    "gbps",
                    "pct_of_copy",
                    "speedup_vs_serial",
                    "error",
                    "chose",
                    "ratio",
                    "device",
                    "multiprocessors",
                )
            },
        ),
        max_size=6,
    )
)
def test_gpu_figures_never_crash_on_odd_records(records):
    for draw in (
        viz.plot_gpu_bandwidth,
        viz.plot_gpu_targets,
        viz.plot_table1,
        viz.plot_crossover,
        viz.plot_gradient_ratios,
    ):
        fig = draw(records)
        if fig is not None:
            fig.canvas.draw()
            plt.close(fig)
    viz.describe_gpu_bandwidth(records)
    viz.describe_gpu_results(records)

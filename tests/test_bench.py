"""scanbook.bench as a package: the plug-in contract, the shared timers and result files, the
smoke test's references and verdicts, the target report. No GPU needed; no timed assertions."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scanbook as sb
from scanbook import bench
from scanbook.bench import common, report, smoke

BENCH_DIR = Path(bench.__file__).parent


def imported_siblings(path: Path) -> set[str]:
    """The modules of scanbook.bench that ``path`` imports (relative or absolute)."""
    siblings = {p.stem for p in BENCH_DIR.glob("*.py")} - {"__init__", "__main__"}
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level == 1:  # from . import x / from .x import y
                names = [mod.split(".")[0]] if mod else [a.name for a in node.names]
            elif mod.startswith("scanbook.bench."):
                names = [mod.split(".")[2]]
            elif mod == "scanbook.bench" or (node.level == 2 and mod == "bench"):
                names = [a.name for a in node.names]
            else:
                names = []
            found |= {n for n in names if n in siblings}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[2] for a in node.names
                      if a.name.startswith("scanbook.bench.")} & siblings  # fmt: skip
    return found


def test_commands_are_discovered_from_the_modules():
    found = bench.commands()
    assert {"cpu", "gpu", "grad", "smoke", "report"} <= set(found)
    assert "common" not in found and not any(n.startswith("_") for n in found)
    assert "chapter 1" in found["cpu"] and "chapter 5" in found["grad"]


@pytest.mark.parametrize("name", sorted(bench.commands()))
def test_every_command_keeps_the_contract(name):
    path = BENCH_DIR / f"{name}.py"
    tree = ast.parse(path.read_text())
    assert ast.get_docstring(tree), f"{name}.py needs a docstring (its help line)"
    assert any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body)
    siblings = imported_siblings(path) - {"common"}
    if name != "report":  # the summary reads every benchmark's results; nothing imports it
        assert not siblings, f"{name}.py imports {siblings}: share code through common.py"


def test_no_import_circle():
    assert imported_siblings(BENCH_DIR / "common.py") == set()
    for path in BENCH_DIR.glob("*.py"):
        if path.stem not in ("__init__", "__main__", "report"):
            assert "report" not in imported_siblings(path), path.name
    init = imported_siblings(BENCH_DIR / "__init__.py")
    assert init <= {"common", "cpu"}, init  # the chapters' names; nothing heavy


def test_a_new_module_plugs_in_without_touching_a_shared_file(tmp_path):
    (tmp_path / "models.py").write_text(
        '"""Throughput of the sequence models (chapter 6)."""\n'
        'DEVICE_RUN = ["--save", "--quick"]\nDEVICE_RUN_TIMEOUT_S = 40\n'
        "def main(argv=None):\n    return 0\n"
    )
    (tmp_path / "helpers.py").write_text('"""No main: a library module."""\nX = 1\n')
    (tmp_path / "_private.py").write_text('"""Private."""\ndef main(argv=None):\n    return 0\n')
    (tmp_path / "deer.py").write_text("def main(argv=None):\n    return 0\n")
    assert bench.commands(tmp_path) == {
        "deer": "(no description)",
        "models": "Throughput of the sequence models (chapter 6).",
    }
    assert bench.device_run_plan(tmp_path) == [("models", 40, ["--save", "--quick"])]


def test_device_run_plan_runs_gpu_then_grad():
    plan = bench.device_run_plan()
    assert [p[0] for p in plan[:2]] == ["gpu", "grad"]
    assert plan[1][2] == ["--save"] and all(p[1] > 0 for p in plan)


def test_dispatch_and_errors(capsys):
    assert bench.main(["--help"]) == 0
    assert "grad" in capsys.readouterr().out
    assert bench.main([]) == 2
    assert bench.main(["nonsense"]) == 2
    assert "COMMAND must be one of" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        bench.main(["cpu", "--help"])
    assert exit_.value.code == 0
    capsys.readouterr()
    assert bench.main(["--device-run-plan"]) == 0
    assert capsys.readouterr().out.splitlines()[:2] == ["gpu 150", "grad 60 --save"]


def test_python_dash_m_lists_the_commands():
    out = subprocess.run([sys.executable, "-m", "scanbook.bench", "--help"], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    for name in ("cpu", "gpu", "grad", "smoke", "report"):
        assert f"\n  {name} " in out.stdout


def test_the_chapters_names_still_work():
    from scanbook import _bench_gpu, _bench_grad

    assert _bench_gpu is bench.gpu and _bench_grad is bench.grad
    assert sb.bench.time_fn is common.time_fn and sb.bench.cpu_benchmark is bench.cpu.cpu_benchmark
    assert sb.bench.bytes_per_element() == 12 and sb.bench.bytes_per_element(np.float64) == 24
    assert isinstance(sb.bench.cpu_name(), str) and sb.bench.cpu_name()
    assert callable(sb.bench.time_interleaved)
    assert _bench_gpu.slug("NVIDIA H200") == "nvidia-h200" and _bench_gpu.PAPER_TABLE1
    assert callable(_bench_grad.run) and callable(_bench_grad._print_table)


# -- common: statistics, timers, result files ---------------------------------------------------


def test_timing_statistics():
    t = common.summarize([3.0, 1.0, 2.0, 2.0, 10.0])
    assert (t.median, t.best, t.times) == (2.0, 1.0, (3.0, 1.0, 2.0, 2.0, 10.0))
    assert t.spread == pytest.approx((3.0 - 2.0) / 2.0)
    assert t.quartiles == (2.0, 3.0)
    assert common.summarize([4.0]).spread == 0.0 and common.summarize([4.0]).quartiles == (4, 4)
    with pytest.raises(ValueError, match="at least one"):
        common.summarize([])


def test_round_ratios_pair_the_rounds():
    # round 3 was disturbed for both: the ratio of two medians (2.0 / 4.0) hides nothing here,
    # but the per-round ratios show that every round agrees on one half
    num, den = common.summarize([1.0, 2.0, 9.0, 2.0]), common.summarize([2.0, 4.0, 18.0, 4.0])
    r = common.round_ratios(num, den)
    assert r.times == (0.5, 0.5, 0.5, 0.5) and r.median == 0.5 and r.spread == 0.0
    skew = common.round_ratios(common.summarize([1.0, 3.0]), common.summarize([3.0, 1.0]))
    assert skew.median == pytest.approx(5 / 3) and skew.spread > 0.5  # rounds that disagree
    with pytest.raises(ValueError, match="same interleaved rounds; got 2 and 1"):
        common.round_ratios(num.__class__(1.0, 1.0, (1.0, 1.0)), common.summarize([1.0]))


def test_timers_count_calls_and_reject_bad_repeat():
    calls = []
    t = common.time_fn(lambda: calls.append(1), warmup=2, repeat=3)
    assert len(calls) == 5 and len(t.times) == 3 and t.best <= t.median
    ts = common.time_interleaved({"x": lambda: calls.append("x"), "y": lambda: None}, repeat=2)
    assert set(ts) == {"x", "y"} and calls.count("x") == 3
    assert len(common.time_batched(lambda: None, repeat=2).times) == 2
    for timer in (common.time_fn, common.time_batched):
        with pytest.raises(ValueError, match="repeat must be at least 1; got 0"):
            timer(lambda: None, repeat=0)


def test_time_device_uses_events():
    class FakeEvent:
        clock = 0.0

        def record(self):
            FakeEvent.clock += 2.0
            self.t = FakeEvent.clock

        def synchronize(self):
            pass

    class Cuda:
        Event = FakeEvent

        @staticmethod
        def Device():  # noqa: N802 - CuPy's name
            return type("D", (), {"synchronize": lambda self: None})()

        @staticmethod
        def get_elapsed_time(start, stop):
            return stop.t - start.t  # milliseconds

    cp = type("cp", (), {"cuda": Cuda})
    t = common.time_device(cp, lambda: None, warmup=1, repeat=4)
    assert t.median == pytest.approx(2e-3) and len(t.times) == 4


def test_result_files(tmp_path, monkeypatch):
    monkeypatch.setenv("SCANBOOK_RESULTS_DIR", str(tmp_path / "res"))
    assert common.results_dir() == tmp_path / "res"
    head = common.header("models", device="X", records=[{"T": 4, "median_s": 1.0}])
    assert head["benchmark"] == "models" and head["scanbook"] == sb.__version__
    assert {"date", "python", "numpy"} <= set(head)
    path = common.write_json(common.results_dir() / "models-x.json", head, quiet=True)
    common.write_json(tmp_path / "res" / "other.json", {"benchmark": "grad", "records": [{}]})
    (tmp_path / "res" / "broken.json").write_text("{")
    assert common.read_json(path)["device"] == "X"
    assert common.read_json(tmp_path / "res" / "broken.json") is None
    records = common.load_records("models", keys=("device", "date"))
    assert records == [{"device": "X", "date": head["date"], "T": 4, "median_s": 1.0}]
    assert common.load_records("gpu") == []
    assert common.slug("Emulated GPU (CPU threads)") == "emulated-gpu-cpu-threads"
    assert common.slug("***") == "gpu"


def test_cpu_benchmark_command_writes_its_file(tmp_path, capsys):
    path = tmp_path / "cpu.json"
    argv = ["cpu", "--elements", "64", "--channels", "4", "--repeat", "1", "--json", str(path)]
    assert bench.main(argv) == 0
    data = json.loads(path.read_text())
    assert data["benchmark"] == "cpu" and data["T"] == 16 and data["channels"] == 4
    assert [r["name"] for r in data["records"]] == [
        "copy (a + b -> h)",
        "numba @njit",
        "numpy loop over T",
    ]
    assert all(r["gbps"] > 0 and r["spread"] >= 0 for r in data["records"])
    for r in data["records"]:
        assert r["ratio_q1"] <= r["ratio_to_copy"] <= r["ratio_q3"]
    assert data["records"][0]["ratio_to_copy"] == 1.0 and isinstance(data["warnings"], list)
    assert "rounds" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        bench.main(["cpu", "--elements", "10", "--channels", "4"])
    assert "multiple of channels=4" in capsys.readouterr().err


def test_cpu_benchmark_flags_a_disturbed_comparison():
    from scanbook.bench import cpu

    def record(median, q1, q3):
        return {"name": "numba @njit", "ratio_to_copy": median, "ratio_q1": q1, "ratio_q3": q3}

    assert cpu._warnings(record(0.9, 0.88, 0.93)) == []
    faster = cpu._warnings(record(1.6, 1.55, 1.7))
    assert len(faster) == 1 and "160% of the copy" in faster[0]
    busy = cpu._warnings(record(0.8, 0.5, 1.2))
    assert len(busy) == 1 and "between 50% and 120%" in busy[0]
    assert len(cpu._warnings(record(1.3, 0.7, 1.8))) == 2
    assert cpu.COPY_LIMIT > 1 and 0 < cpu.MAX_SPREAD < 1


# -- the smoke test ---------------------------------------------------------------------------


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(("T", "C"), [(1, 1), (7, 1), (50, 3)])
def test_smoke_references_agree_with_the_library(rng, T, C, reverse):
    a, b, h0, g = smoke._inputs(T, C, np.float64, seed=T + C)
    h = smoke.reference(a, b, h0, reverse)
    assert np.allclose(h, sb.linear_recurrence(a, b, h0, reverse=reverse, backend="numpy"))
    want = sb.linear_recurrence_vjp(a, b, h0, h, g, reverse=reverse, backend="numpy")
    for got, exp in zip(smoke.reference_vjp(a, b, h0, g, reverse), want, strict=True):
        assert np.allclose(got, exp, rtol=1e-12, atol=1e-12)
    assert np.all(a != 0) and np.all(b != 0)


def test_smoke_verdicts(capsys):
    runner = smoke._Runner(print)
    want = np.arange(1.0, 5.0)
    runner.compare("g", "exact", lambda: want.astype(np.float32), want, dtype=np.float32)
    runner.compare("g", "off", lambda: want + 1, want, dtype=np.float64)
    runner.compare("g", "nan", lambda: np.full(4, np.nan), want, dtype=np.float64)
    runner.compare("g", "shape", lambda: want[:3], want, dtype=np.float64)
    runner.compare("g", "raises", lambda: 1 / 0, want, dtype=np.float64)
    assert [c.status for c in runner.checks] == ["ok", "FAIL", "FAIL", "FAIL", "FAIL"]
    assert "ZeroDivisionError" in runner.checks[-1].detail
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and lines[0].startswith("ok") and lines[1].startswith("FAIL")
    with pytest.raises(ValueError, match="groups must be drawn from"):
        smoke.run(["cuda"])


def test_smoke_without_a_gpu_says_not_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sb.backends, "has_gpu", lambda: False)
    path = tmp_path / "smoke.json"
    assert smoke.main(["--only", "cupy", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "not run" in out and "0 ok, 0 FAILED, 1 not run" in out
    assert json.loads(path.read_text())["records"][0]["status"] == "not run"


# -- the report of targets --------------------------------------------------------------------


def test_report_counts_targets(tmp_path):
    def rec(kernel, C, **kw):
        return {"kernel": kernel, "T": 1 << 20, "channels": C, "dtype": "float32", **kw}

    records = [
        rec("cupy_single_pass", 64, pct_of_copy=90.0, median_s=1.0),
        rec("cupy_single_pass", 1, pct_of_copy=50.0, median_s=1.0),
    ]
    gpu_file = {"benchmark": "gpu", "gpu": "NVIDIA H200", "date": "2026-01-01", "records": records}
    grad_file = {"benchmark": "grad", "device": "NVIDIA H200", "date": "2026-01-01",
                 "records": [{"backend": "cupy", "T": 8, "channels": 2, "ratio": 1.4,
                              "device": "NVIDIA H200"},
                             {"backend": "numpy", "ratio": 9.0, "device": "CPU (x)"},
                             {"backend": "jax autodiff", "T": 8, "channels": 2, "ratio": 2.5,
                              "device": "NVIDIA H200"}]}  # fmt: skip
    (tmp_path / "nvidia-h200.json").write_text(json.dumps(gpu_file))
    (tmp_path / "grad-nvidia-h200.json").write_text(json.dumps(grad_file))
    text, counts = report.report(tmp_path)
    n_targets = len(bench.gpu.TARGETS)
    assert counts == {"met": 2, "missed": 2, "not run": n_targets - 2}
    assert "MISSED" in text and "NVIDIA H200" in text and "bwd/fwd" in text
    none = tmp_path / "none"
    assert report.report(none) == (f"no GPU results in {none}", dict.fromkeys(counts, 0))

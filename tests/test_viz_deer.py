"""scanbook.viz.deer: chapter 9's figures from synthetic records and result files."""

import json

import matplotlib
import numpy as np

matplotlib.use("Agg")

import scanbook as sb  # noqa: E402


def test_plots_draw_and_return_none_for_nothing():
    viz = sb.viz.deer
    res = np.array([1.0, 1e-2, 1e-6, 1e-12, np.nan, np.nan])
    assert viz.plot_residuals({"newton": res, "quasi": res[::-1]}, tol=1e-10) is not None
    assert viz.plot_residuals({}) is None
    cost = [{"method": m, "hidden": n, "step_s": 1e-3 * n, "jacobian_bytes": 4 * n * n}
            for m in ("newton", "quasi") for n in (2, 8)]  # fmt: skip
    assert viz.plot_cost(cost) is not None and viz.plot_cost([]) is None
    speed = [{"method": m, "T": T, "hidden": 1, "median_s": 1e-3 * T, "speedup": 2.0}
             for m in ("sequential", "newton") for T in (10, 100)]  # fmt: skip
    assert viz.plot_speed(speed) is not None and viz.plot_speed([{"T": 3}]) is None
    assert viz.plot_losses({"loop": [3.0, 2.0], "DEER": ([0, 1], [3.0, 2.0])}) is not None
    assert viz.plot_losses({}) is None
    matplotlib.pyplot.close("all")


def test_deer_records_keeps_gpu_timings_only(tmp_path, monkeypatch):
    monkeypatch.setenv("SCANBOOK_RESULTS_DIR", str(tmp_path))
    records = [
        {"method": "newton", "T": 1000, "hidden": 1, "batch": 16, "median_s": 0.01},
        {"method": "quasi", "T": 1000, "hidden": 1, "batch": 16, "skipped": "time budget"},
        {"method": "quasi", "T": 10, "hidden": 1, "batch": 16, "error": "oom"},
        {"method": "quasi", "T": 10, "hidden": 1, "batch": 16, "median_s": "fast"},
    ]
    gpu = {"benchmark": "deer", "device": "NVIDIA H200", "date": "2026-01-02", "records": records}
    cpu = {**gpu, "device": "CPU (x)"}
    (tmp_path / "deer-h200.json").write_text(json.dumps(gpu))
    (tmp_path / "deer-cpu.json").write_text(json.dumps(cpu))
    (tmp_path / "other.json").write_text(json.dumps({"benchmark": "grad", "records": records}))
    (tmp_path / "broken.json").write_text("{")
    got = sb.viz.deer.deer_records()
    assert [(r["device"], r["method"], r["T"]) for r in got] == [("NVIDIA H200", "newton", 1000)]
    assert len(sb.viz.deer.deer_records(gpu_only=False)) == 2

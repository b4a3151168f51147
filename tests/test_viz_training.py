"""scanbook.viz.training: curves of runs and of the memorisation benchmark's result files."""

import json

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scanbook.viz import training  # noqa: E402


def _record(model, T, converged=True):
    return {
        "model": model,
        "T": T,
        "target": 0.95,
        "converged": converged,
        "steps": 40,
        "steps_to_target": 30 if converged else None,
        "seconds_to_target": 1.5 if converged else None,
        "step_s": 0.05,
        "budget_s": 2.0,
        "final_accuracy": 0.97 if converged else 0.5,
        "curve_step": [1, 20, 40],
        "curve_wall": [0.05, 1.0, 2.0],
        "curve_accuracy": [0.5, 0.7, 0.97],
    }


def _write(folder, name, device, records, date="2026-11-30T10:00:00+00:00"):
    data = {"benchmark": "memorise", "device": device, "date": date, "records": records}
    (folder / name).write_text(json.dumps(data))


def test_curve_smooths_a_log_and_reads_a_record():
    log = [{"step": i + 1, "wall": 0.1 * (i + 1), "accuracy": a} for i, a in enumerate([0, 1, 1])]
    xs, acc = training.curve(log, x="step", window=2)
    np.testing.assert_array_equal(xs, [1, 2, 3])
    np.testing.assert_allclose(acc, [0, 0.5, 1.0])
    xs, acc = training.curve(_record("lstm", 8))
    np.testing.assert_allclose(xs, [0.05, 1.0, 2.0])
    assert training.curve({"curve_wall": [1.0]})[0].size == 0  # broken record: no curve
    with pytest.raises(ValueError, match="x"):
        training.curve(log, x="epoch")


def test_plot_accuracy_draws_each_run_and_nothing_for_no_runs():
    log = [{"step": i + 1, "wall": 0.1 * (i + 1), "accuracy": 0.5} for i in range(5)]
    fig = training.plot_accuracy({"LS-LSTM": log, "LSTM": log})
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels[:2] == ["LS-LSTM", "LSTM"] and fig.axes[0].get_lines()[0].get_color() == "C3"
    assert training.plot_accuracy({"empty": []}) is None


def test_memorise_records_from_files(tmp_path, monkeypatch):
    monkeypatch.setenv("SCANBOOK_RESULTS_DIR", str(tmp_path))
    assert training.memorise_records() == []
    assert "No GPU result" in training.describe_memorise([])
    assert training.plot_memorise([]) is None
    _write(tmp_path, "memorise-cpu.json", "CPU (x)", [_record("lstm", 8)])
    bad = [{"model": "lstm", "T": 16, "error": "OOM"}, {"model": "lstm"}, "junk"]
    _write(tmp_path, "memorise-gpu-old.json", "H200", [_record("lstm", 64, False)], "2026-01-01")
    _write(
        tmp_path, "memorise-gpu.json", "H200", [_record("ls_lstm", 64), _record("lstm", 64)] + bad
    )
    (tmp_path / "broken.json").write_text("{")
    records = training.memorise_records()
    assert [(r["model"], r["T"]) for r in records] == [("ls_lstm", 64), ("lstm", 64)]
    assert all(r["device"] == "H200" and r["converged"] for r in records)  # the newest kept
    assert len(training.memorise_records(gpu_only=False)) == 3
    text = training.describe_memorise(records)
    assert "T = 64" in text and "LS-LSTM reached 95% after 30 steps in 1.5 s" in text
    assert "did not" in training.describe_memorise([{**_record("lstm", 64, False), "device": "G"}])
    fig = training.plot_memorise(records)
    assert len(fig.axes) == 1 and fig.axes[0].get_title() == "T = 64"
    assert fig.axes[0].get_xscale() == "log" and "log scale" in fig.axes[0].get_xlabel()
    assert fig.axes[0].get_ylabel().startswith("accuracy (mean of")

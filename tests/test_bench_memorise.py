"""python -m scanbook.bench memorise: one tiny run end to end, its result file, its errors."""

import json

import pytest
from scanbook.bench import common, memorise


def test_memorise_writes_a_result_file_the_chapter_can_read(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SCANBOOK_RESULTS_DIR", str(tmp_path))
    status = memorise.main(
        ["--T", "6", "--models", "lstm", "--hidden", "8", "--budget", "20", "--save"]
    )
    assert status == 0
    files = list(tmp_path.glob("memorise-*.json"))
    assert len(files) == 1
    data = json.loads(files[0].read_text())
    assert data["benchmark"] == "memorise" and data["device"]
    (rec,) = common.load_records("memorise", keys=("device",))
    assert rec["model"] == "lstm" and rec["T"] == 6 and rec["mode"] == "serial"
    assert rec["converged"] and rec["steps_to_target"] <= rec["steps"]
    assert rec["final_accuracy"] >= 0.95
    assert len(rec["curve_step"]) == len(rec["curve_wall"]) == len(rec["curve_accuracy"])
    assert rec["curve_step"][-1] == rec["steps"] and rec["step_s"] > 0
    assert "lstm" in capsys.readouterr().out


def test_memorise_refuses_unknown_models_and_lengths():
    with pytest.raises(ValueError, match="name"):
        memorise.race("transformer", 8)
    with pytest.raises(SystemExit):
        memorise.main(["--T", "0"])


def test_the_gpu_run_needs_a_gpu_for_jax(tmp_path, monkeypatch, capsys):
    import jax

    monkeypatch.setenv("SCANBOOK_RESULTS_DIR", str(tmp_path))
    monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
    assert memorise.main(memorise.DEVICE_RUN) == 2
    assert "not a GPU" in capsys.readouterr().out and not list(tmp_path.iterdir())

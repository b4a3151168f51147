"""python -m scanbook.bench models: one tiny run end to end, its result file, its errors."""

import json

import pytest
from scanbook.bench import common
from scanbook.bench import models as bm


def test_models_benchmark_writes_what_the_chapter_reads(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SCANBOOK_RESULTS_DIR", str(tmp_path))
    argv = ["--models", "sru", "--T", "4", "--events", "8", "--batches", "2", "--hidden", "4"]
    status = bm.main([*argv, "--layers", "1", "--repeat", "1", "--save"])
    assert status == 0
    (path,) = tmp_path.glob("models-*.json")
    data = json.loads(path.read_text())
    assert data["benchmark"] == "models" and data["device"] and data["hidden"] == 4
    records = common.load_records("models", keys=("device",))
    (t2,) = [r for r in records if r["table"] == "table2"]
    assert t2["model"] == "sru" and t2["T"] == 4 and t2["batch"] == 2
    assert t2["speedup"] == pytest.approx(t2["serial_s"] / t2["parallel_s"])
    assert t2["loss_rel_diff"] < 1e-3 and t2["paper_speedup"] is None
    heat = [r for r in records if r["table"] == "heatmap"]
    assert {r["model"] for r in heat} == {"lstm", "ls_lstm"}
    (ls,) = [r for r in heat if r["model"] == "ls_lstm"]
    (lstm,) = [r for r in heat if r["model"] == "lstm"]
    assert ls["ratio"] == pytest.approx(ls["events_per_s"] / lstm["events_per_s"])
    assert "Table 2" in capsys.readouterr().out


def test_lstm_baseline_obeys_the_event_cap_and_paper_numbers_need_the_papers_sizes():
    heat = bm.heatmap([2], [1, 4], hidden=2, layers=1, max_events=4, repeat=1, verbose=False)
    (lstm,) = [r for r in heat if r["model"] == "lstm"]
    assert lstm["T"] == 2 and {r["T"] for r in heat if r["model"] == "ls_lstm"} == {1}
    (rec,) = bm.table2(["sru"], [16], events=32, hidden=2, layers=1, repeat=1, verbose=False)
    assert rec["batch"] == 2 and rec["paper_speedup"] is None  # the paper's T = 16 is batch 4096


def test_paper_numbers_and_arguments():
    assert bm.PAPER_TABLE2[65536] == {"sru": 9.21, "qrnn2": 6.68, "qrnn10": 2.05, "gilr_lstm": 1.41}
    with pytest.raises(ValueError, match="Ts must divide events = 8; got T = 3"):
        bm.table2(["sru"], [3], events=8, hidden=2, layers=1, verbose=False)
    with pytest.raises(SystemExit):
        bm.main(["--T", "3", "--events", "8", "--what", "table2"])
    with pytest.raises(SystemExit):
        bm.main(["--models", "transformer"])

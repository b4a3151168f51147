"""scanbook.viz.models: the Table 2 text and figure, the heatmap, the GPU results sentence."""

import json

import matplotlib

matplotlib.use("Agg")

import scanbook as sb  # noqa: E402

V = sb.viz.models


def _records():
    t2 = [
        {"table": "table2", "model": m, "T": T, "batch": 64 // T, "events": 64, "speedup": s}
        for m, T, s in (("sru", 16, 0.5), ("sru", 64, 2.0), ("gilr_lstm", 16, 0.8))
    ]
    heat = [
        {"table": "heatmap", "model": "lstm", "batch": 1, "T": 16, "events_per_s": 10.0},
        {"table": "heatmap", "model": "ls_lstm", "batch": 1, "T": 16, "ratio": 3.0},
        {"table": "heatmap", "model": "ls_lstm", "batch": 4, "T": 64, "ratio": 0.5},
    ]
    return t2 + heat


def test_format_table2_puts_the_paper_beside_only_at_the_papers_sizes():
    at_paper = [
        {**r, "events": 65536, "batch": 65536 // r["T"]}
        for r in _records()
        if r.get("table") == "table2"
    ]
    lines = V.format_table2(at_paper).splitlines()
    assert "SRU" in lines[0] and "GILR-LSTM" in lines[0]
    assert "0.50x (0.28x)" in lines[1] and "0.80x (0.61x)" in lines[1]
    assert "4096" in lines[1] and "2.00x (-)" in lines[2] and len(lines) == 3
    # at batch x T = 64 the same T is another batch: the paper's rows come below, with theirs
    lines = V.format_table2(_records()).splitlines()
    assert "(" not in "".join(lines[:3]) and "0.50x" in lines[1] and "2.00x" in lines[2]
    assert "65,536" in lines[3]
    assert lines[4].split()[:4] == ["16", "4096", "0.28x", "0.61x"]
    assert lines[-1].split()[:4] == ["65536", "1", "9.21x", "1.41x"]
    assert V.format_table2([]) == "(no Table 2 records)"


def test_figures_draw_and_return_none_for_nothing():
    fig = V.plot_table2(_records())  # not the paper's sizes: no dashed paper lines
    assert fig is not None and len(fig.axes[0].lines) == 3
    assert "1x" in [t.get_text() for t in fig.axes[0].get_yticklabels()]
    at_paper = [{**r, "events": 65536} for r in _records() if r.get("table") == "table2"]
    assert len(V.plot_table2(at_paper).axes[0].lines) == 6
    fig = V.plot_heatmap(_records())
    texts = {t.get_text(): t.get_color() for t in fig.axes[0].texts}
    assert "3x" in texts and "0.5x" in texts and len(texts) == 3
    assert texts["not\nmeasured"] == "0.3"  # the two cells not measured say so
    assert V.plot_table2([{"model": "sru"}]) is None
    assert V.plot_heatmap([{"model": "lstm", "ratio": 2}]) is None


def test_model_records_reads_the_newest_gpu_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SCANBOOK_RESULTS_DIR", str(tmp_path))
    assert V.model_records() == []
    assert "No GPU result" in V.describe_model_results([])
    base = {"benchmark": "models", "device": "NVIDIA H200"}
    old = {**base, "date": "2026-01-01", "records": [{"model": "sru", "speedup": 1.0, "T": 16}]}
    new = {**base, "date": "2026-02-01", "records": _records() + [{"model": "x", "error": "oom"}]}
    cpu = {**base, "device": "CPU (AMD)", "date": "2026-03-01", "records": _records()}
    for name, data in (("a", old), ("b", new), ("c", cpu)):
        (tmp_path / f"models-{name}.json").write_text(json.dumps(data))
    (tmp_path / "broken.json").write_text("{")
    recs = V.model_records()
    assert len(recs) == len(_records()) and all(r["date"] == "2026-02-01" for r in recs)
    sentence = V.describe_model_results(recs)
    assert "NVIDIA H200 (2026-02-01)" in sentence and "2.00x (SRU)" in sentence
    assert "3x the LSTM" in sentence

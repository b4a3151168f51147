"""scanbook.bench.deer: DEER against the sequential loop, at tiny sizes (seconds)."""

import json

import pytest
from scanbook.bench import deer as bench


def test_main_writes_checked_records_and_a_target_table(tmp_path, capsys):
    path = tmp_path / "deer.json"
    argv = ["--T", "9", "--hidden", "2", "--methods", "newton", "quasi", "--batch", "2"]
    assert bench.main([*argv, "--repeat", "1", "--json", str(path)]) == 0
    data = json.loads(path.read_text())
    assert data["benchmark"] == "deer" and data["preset"] in bench.PRESETS
    by = {r["method"]: r for r in data["records"]}
    assert set(by) == {"sequential", "newton", "quasi"}
    seq = by["sequential"]
    assert seq["T"] == 9 and seq["hidden"] == 2 and seq["batch"] == 2
    assert seq["median_s"] > 0 and seq["ref_err"] < 1e-5  # float32 loop against float64
    for m in ("newton", "quasi"):
        r = by[m]
        assert r["converged"] and not r["failed"] and 1 <= r["iterations"] <= 9
        assert r["max_abs_err"] < 1e-5
        assert r["speedup"] == pytest.approx(seq["median_s"] / r["median_s"])
        assert r["device"] == seq["device"]
    assert by["newton"]["jacobian_bytes"] == 4 * 2 * 9 * 2 * 2
    assert by["quasi"]["jacobian_bytes"] == 4 * 2 * 9 * 2
    out = capsys.readouterr().out
    assert "newton GRU T=100,000 hidden 8" in out and "not run" in out


def _rec(method, T, n, **kw):
    return {"device": "NVIDIA H200", "method": method, "T": T, "hidden": n, **kw}


def test_check_targets_met_missed_and_not_run():
    records = [
        _rec("newton", 100_000, 1, speedup=250.0, converged=True),
        _rec("newton", 100_000, 2, speedup=40.0, converged=True),
        _rec("newton", 100_000, 4, error="XlaRuntimeError: out of memory"),
        {**_rec("newton", 100_000, 8, speedup=900.0, converged=True), "device": "CPU (x)"},
        _rec("quasi", 1_000_000, 64, peak_bytes=3 * 2**30, converged=True),
    ]
    rows = bench.check_targets(records)
    assert [r["status"] for r in rows] == ["met", "MISSED", "MISSED", "not run", "met"]
    assert rows[0]["value"] == 250.0
    table = bench.target_table(rows)
    assert "250.0x" in table and "3.00 GiB peak" in table
    rows = bench.check_targets([_rec("quasi", 1_000_000, 64, error="RESOURCE_EXHAUSTED")])
    assert rows[-1]["status"] == "MISSED"
    rows = bench.check_targets([_rec("quasi", 1_000_000, 64, converged=False, peak_bytes=9)])
    assert rows[-1]["status"] == "MISSED" and rows[-1]["value"] == "not converged"
    assert all(r["status"] == "not run" for r in bench.check_targets([]))


def test_plan_orders_the_targets_first_and_times_no_million_step_loop():
    configs = bench.plan("gpu")
    assert configs[0][:2] == (100_000, 1) and configs[1][:2] == (1_000_000, 64)
    assert {c[1] for c in configs[:5] if c[0] == 100_000} == {1, 2, 4, 8}
    million = [c for c in configs if c[0] == 1_000_000]
    assert million == [(1_000_000, 64, ("quasi",), False)]
    assert all(c[3] for c in configs if c[0] < 1_000_000)
    assert bench.plan("cpu", T=[5, 7], hidden=[3]) == [
        (5, 3, ("newton", "quasi"), True),
        (7, 3, ("newton", "quasi"), True),
    ]


def test_budget_skips_configurations_and_bad_arguments_are_named():
    records = bench.run([(9, 1, ("newton",), True)], budget_s=-1.0)
    assert [r["skipped"] for r in records] == ["time budget", "time budget"]
    with pytest.raises(ValueError, match="preset must be one of"):
        bench.plan("tpu")
    with pytest.raises(ValueError, match="methods must be a subset"):
        bench.run_one(5, 1, ("jacobi",))
    with pytest.raises(ValueError, match="T must be a positive int"):
        bench.run_one(0, 1)


def test_the_memory_configuration_runs_without_the_loop_and_once():
    records = bench.run([(12, 2, ("quasi",), False)], batch=4, memory_batch=1, repeat=3)
    assert [r["method"] for r in records] == ["quasi"]
    r = records[0]
    assert r["batch"] == 1 and r["repeats"] == 1 and r["speedup"] is None
    assert r["converged"] and "max_abs_err" not in r and r["jacobian_bytes"] == 4 * 12 * 2

"""benchmarks/device_run.sh, the GPU run for a short-lived GPU machine, checked without a GPU.

The full dry run on the emulated GPU takes minutes (`make gpu-device-dry-run`); here the script
runs once on this CPU with the real command line but small arguments: every step under its own
time limit, one that hangs stopped by it, a benchmark that cannot run here marked FAILED, the
sanitizer "not run", the summary, the logs archived, at most 8 files left in $OUT.
"""

import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "device_run.sh"


def test_steps_come_in_order_each_under_a_time_limit():
    text = SCRIPT.read_text()
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    order = ["step smoke", "--device-run-plan", 'step "bench-', 'step "$tool"', "step tests",
             "step nbval", "report --dir"]  # fmt: skip
    where = [text.index(s) for s in order]
    assert where == sorted(where), dict(zip(order, where, strict=True))
    assert 'timeout -k 5 "$limit"' in text  # inside step(): every step is bounded
    calls = re.findall(r"^\s*step (\S+) (\S+)", text, flags=re.M)
    assert len(calls) == 5 and all(limit.startswith('"$') for _, limit in calls), calls
    assert '--tool "$tool"' in text and "memcheck racecheck" in text
    assert "not run: $2" in text and "no compute-sanitizer" in text


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("device_run")
    out = tmp / "out"
    hang = tmp / "test_hang.py"
    hang.write_text("import time\n\ndef test_hangs():\n    time.sleep(120)\n")
    notebook = tmp / "tiny.ipynb"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "dry_run_notebook.py"),
                    str(notebook)], check=True)  # fmt: skip
    env = {
        **os.environ,
        "OUT": str(out),
        "PYTHON": sys.executable,
        "SCANBOOK_DEVICE": "cpu",
        "SANITIZER": "/nonexistent",
        "SMOKE_ARGS": "--only cupy",
        "EXTRA_ARGS_gpu": "--quick",
        "EXTRA_ARGS_grad": "--T 8 --channels 2 --repeat 1 --backends numpy",
        "T_TESTS": "4",
        "TEST_ARGS": str(hang),
        "NBVAL_NOTEBOOKS": str(notebook),
        "BUDGET_S": "240",
        "BENCH_ONLY": "gpu grad",  # the models, memorise and deer benchmarks run minutes here
    }
    proc = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True,
                          timeout=300, cwd=tmp)  # fmt: skip
    return proc, out


def test_dry_run_on_the_cpu(dry_run):
    proc, out = dry_run
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]  # gpu, tests failed
    summary = (out / "summary.txt").read_text()
    status = dict(re.findall(r"^(\S+)\s+(ok|FAILED|TIMEOUT|not run)\s", summary, flags=re.M))
    assert status == {"smoke": "ok", "bench-gpu": "FAILED", "bench-grad": "ok",
                      "memcheck": "not run", "racecheck": "not run", "tests": "TIMEOUT",
                      "nbval": "ok"}, summary  # fmt: skip
    assert "no compute-sanitizer" in summary and "collect_results.sh" in summary
    assert "targets: 0 met, 0 missed, 0 not run" in summary  # a CPU records no GPU targets
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert len(files) <= 8, files  # what the device tool brings back
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)?", f) for f in files), files
    assert {"summary.txt", "smoke.json", "logs.tar.gz"} <= set(files)
    assert any(f.startswith("results/grad-") for f in files), files
    with tarfile.open(out / "logs.tar.gz") as tar:
        names = set(tar.getnames())
    for step in ("smoke", "bench-gpu", "bench-grad", "tests", "nbval", "machine"):
        assert f"logs/{step}.log" in names, names


def test_the_collect_command_refuses_cpu_results(dry_run, tmp_path):
    _, out = dry_run
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "collect_results.sh"), str(out)],
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert proc.returncode == 1 and "skipped grad-cpu-" in proc.stdout, proc.stdout + proc.stderr

"""The book's GPU targets, met / MISSED / not run, from the result files of a GPU run.

Run it with ``python -m scanbook.bench report [--dir DIR]`` (default: ``benchmarks/results``
or ``$SCANBOOK_RESULTS_DIR``): for the newest run of each GPU, every target of
:data:`scanbook.bench.gpu.TARGETS` and the backward/forward ratio of every GPU backend of the
gradient benchmark. ``benchmarks/device_run.sh`` prints it in its summary. Defined for
chapters 4 and 5.

This module reads the other benchmarks' results: it is the one module of the package that
imports its siblings, and none imports it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from . import gpu, grad
from .common import load_records, results_dir

__all__ = ["report", "main"]


def _newest(records: list[dict], key: str) -> dict[str, list[dict]]:
    """{name: the records of its newest date}."""
    newest: dict[str, str] = {}
    for r in records:
        name = str(r.get(key) or "?")
        newest[name] = max(newest.get(name, ""), str(r.get("date") or ""))
    return {
        name: [
            r
            for r in records
            if str(r.get(key) or "?") == name and str(r.get("date") or "") == date
        ]  # fmt: skip
        for name, date in sorted(newest.items())
    }


def _line(c: dict) -> str:
    verdict = {True: "met", False: "MISSED", None: "not run"}[c["met"]]
    T = "?" if c["T"] is None else f"{c['T']:,}"
    got = "-" if c["value"] is None else f"{c['value']:.3g}"
    return (
        f"  {verdict:<8} {c['kernel']:<18} T={T:<11} C={c['channels']!s:<3} {c['what']:<17} {got}"
    )


def report(folder=None) -> tuple[str, dict[str, int]]:
    """The targets of every result file in ``folder`` as text, and the counts
    ``{"met", "missed", "not run"}``. Defined for chapters 4 and 5."""
    folder = Path(folder) if folder is not None else results_dir()
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    lines, counts = [], {"met": 0, "missed": 0, "not run": 0}

    def tally(checked):
        for c in checked:
            counts[{True: "met", False: "missed", None: "not run"}[c["met"]]] += 1
            lines.append(_line(c))

    gpu_records = [r for f in files for r in load_records("gpu", f, keys=("gpu", "date"))]
    for name, records in _newest(gpu_records, "gpu").items():
        lines.append(
            f"GPU benchmark, {name}, {records[0].get('date')} (need: scanbook.bench.gpu.TARGETS)"
        )
        tally(gpu.check_targets(records))
    grad_records = [r for f in files for r in load_records("grad", f, keys=("date",))]
    for name, records in _newest(grad_records, "device").items():
        if name.startswith("CPU"):
            continue
        lines.append(f"gradient benchmark, {name}: backward/forward <= {grad.TARGET_RATIO:g}")
        tally(grad.check_targets(records))
    if not lines:
        lines.append(f"no GPU results in {folder}")
    return "\n".join(lines), counts


def main(argv: list[str] | None = None) -> int:
    """``python -m scanbook.bench report``: print the targets; exit 0 (a report, not a test)."""
    parser = argparse.ArgumentParser(
        prog="python -m scanbook.bench report", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--dir", default=None, help="folder of result files")
    args = parser.parse_args(argv)
    text, counts = report(args.dir or os.environ.get("SCANBOOK_RESULTS_DIR"))
    print(text)
    print(f"targets: {counts['met']} met, {counts['missed']} missed, {counts['not run']} not run")
    return 0

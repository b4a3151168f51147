"""What the build page (``book/status.md``) reports about the build that made this site.

* ``{scanbook-build-machine}``: the machine that built the pages and executed the chapters
  (operating system, processor, cores, memory, GPU or none, where Numba's CUDA kernels ran,
  the versions of the numerical libraries), read when the page is built.
* ``{scanbook-gpu-results}``: the GPU results files committed in ``benchmarks/results/*.json``
  (written by ``python -m scanbook.bench gpu|grad`` on a GPU): one row a file, with its
  benchmark, device, date and number of records; a sentence saying so when there are none.

The times and cache state of each chapter come from myst-nb's ``{nb-exec-table}``. The page is
rebuilt on every build (its content is the build's own state).
"""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

STATUS_DOC = "book/status"
LIBRARIES = (
    "numpy",
    "jax",
    "jaxlib",
    "numba",
    "numba-cuda",
    "cupy-cuda12x",
    "optax",
    "jupyter-book",
)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _memory_gib() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (AttributeError, ValueError, OSError):
        return None


def machine_facts(execution_mode: str | None = None) -> list[tuple[str, str]]:
    """``[(what, value)]`` describing this machine, for the build page."""
    import scanbook.backends as backends
    from scanbook.bench.common import cpu_name

    facts = [
        ("Built", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("Operating system", f"{platform.system()} {platform.release()} ({platform.machine()})"),
        ("Processor", cpu_name()),
        ("CPU cores", str(os.cpu_count() or "unknown")),
    ]
    memory = _memory_gib()
    if memory is not None:
        facts.append(("Memory", f"{memory:.0f} GiB"))
    gpu = backends.gpu_name()
    facts.append(("GPU", gpu or "none"))
    facts.append(
        (
            "Numba CUDA kernels",
            "the CUDA simulator (on the CPU)" if backends.cuda_simulator() else f"the GPU ({gpu})",
        )
    )
    facts.append(("Backends", ", ".join(backends.available_backends())))
    facts.append(("Python", platform.python_version()))
    versions = [f"{d} {v}" for d in LIBRARIES if (v := _version(d))]
    facts.append(("Libraries", ", ".join(versions)))
    if execution_mode is not None:
        facts.append(("Notebook execution", execution_mode))
    return facts


def _device(data: dict) -> str:
    for key in ("gpu", "device", "gpu_name"):
        value = data.get(key)
        if isinstance(value, dict):
            value = value.get("gpu") or value.get("name")
        if value:
            return str(value)
    info = data.get("gpu_info")
    if isinstance(info, dict) and info.get("gpu"):
        return str(info["gpu"])
    return "not recorded"


def results_table(folder: Path) -> list[dict]:
    """One row per ``*.json`` in ``folder``: ``file``, ``benchmark``, ``device``, ``date``,
    ``records`` (``"unreadable"`` rows for files that are not a JSON object)."""
    rows = []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        if not isinstance(data, dict):
            rows.append(
                {
                    "file": path.name,
                    "benchmark": "unreadable",
                    "device": "",
                    "date": "",
                    "records": "",
                }
            )
            continue
        records = data.get("records")
        rows.append(
            {
                "file": path.name,
                "benchmark": str(data.get("benchmark", "unknown")),
                "device": _device(data),
                "date": str(data.get("date", "not recorded")),
                "records": str(len(records)) if isinstance(records, list) else "",
            }
        )
    return rows


def _table(header: list[str], rows: list[list[str]], widths: str | None = None) -> list[str]:
    lines = [":::{list-table}", ":header-rows: 1"]
    if widths:
        lines.append(f":widths: {widths}")
    lines.append("")
    for row in [header, *rows]:
        lines.append(f"* - {row[0]}")
        lines += [f"  - {cell}" for cell in row[1:]]
    lines.append(":::")
    return lines


class _Markdown(SphinxDirective):
    """A directive that writes MyST Markdown and parses it in place."""

    def parse(self, lines: list[str]) -> list[nodes.Node]:
        node = nodes.container()
        node.document = self.state.document
        self.state.nested_parse(StringList(lines, source=self.get_source_info()[0]), 0, node)
        return node.children


class BuildMachine(_Markdown):
    has_content = False

    def run(self):
        mode = self.config.nb_execution_mode if hasattr(self.config, "nb_execution_mode") else None
        facts = machine_facts(mode)
        return self.parse(_table(["", "This build"], [[k, v] for k, v in facts], "30 70"))


class GpuResults(_Markdown):
    has_content = False

    def run(self):
        folder = Path(self.env.srcdir) / "benchmarks" / "results"
        rows = results_table(folder)
        for path in folder.glob("*.json"):
            self.env.note_dependency(str(path))
        if not rows:
            return self.parse(
                [
                    "No GPU results are committed yet: `benchmarks/results/` holds no `*.json` "
                    "file. The GPU figures of chapters 3 to 5 fill in from these files once a "
                    "run on a GPU is recorded (`benchmarks/README.md`)."
                ]
            )
        keys = ("benchmark", "device", "date", "records")
        table = [[f"`{r['file']}`", *(r[k] for k in keys)] for r in rows]
        return self.parse(_table(["File", "Benchmark", "Device", "Date", "Records"], table))


def _always(app, env, added, changed, removed):
    return [STATUS_DOC] if STATUS_DOC in env.found_docs else []


def setup(app):
    app.add_directive("scanbook-build-machine", BuildMachine)
    app.add_directive("scanbook-gpu-results", GpuResults)
    app.connect("env-get-outdated", _always)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}

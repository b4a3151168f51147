"""What the build page (``book/status.md``) reports about the build that made this site.

* ``{scanbook-build-machine}``: the machine that built the pages and executed the chapters
  (operating system, processor, cores, memory, GPU or none, where Numba's CUDA kernels ran,
  the versions of the numerical libraries), read when the page is built.
* ``{scanbook-gpu-results}``: the GPU results files committed in ``benchmarks/results/*.json``
  (written by ``python -m scanbook.bench gpu|grad`` on a GPU): one row a file, with its
  benchmark, device, date and number of records; a sentence saying so when there are none.

* ``{scanbook-exec-table}``: one row per chapter from myst-nb's execution records: when it was
  executed, how long it took, whether it succeeded, and whether this build executed it or took
  its outputs from the execution cache (a cached record is older than the build).

The page is rebuilt on every build (its content is the build's own state).
"""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx import addnodes
from sphinx.transforms.post_transforms import SphinxPostTransform
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


class MarkdownDirective(SphinxDirective):
    """A directive that writes MyST Markdown and parses it in place."""

    def parse(self, lines: list[str]) -> list[nodes.Node]:
        node = nodes.container()
        node.document = self.state.document
        self.state.nested_parse(StringList(lines, source=self.get_source_info()[0]), 0, node)
        return node.children


class BuildMachine(MarkdownDirective):
    has_content = False

    def run(self):
        mode = self.config.nb_execution_mode if hasattr(self.config, "nb_execution_mode") else None
        facts = machine_facts(mode)
        return self.parse(_table(["", "This build"], [[k, v] for k, v in facts], "30 70"))


class GpuResults(MarkdownDirective):
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


class exec_table(nodes.General, nodes.Element):  # noqa: N801 (docutils node names)
    """Where the chapter execution table goes, once every chapter has been read."""


class ExecTable(SphinxDirective):
    has_content = False

    def run(self):
        return [exec_table()]


def exec_rows(metadata: dict, build_start: float) -> list[dict]:
    """One row per chapter document with an execution record: ``doc``, ``when`` (UTC),
    ``seconds``, ``source`` (``"executed in this build"`` or ``"from the cache"``), ``ok``."""
    rows = []
    for docname in sorted(metadata):
        data = (metadata[docname] or {}).get("exec_data")
        if not docname.startswith("chapters/") or not data:
            continue
        mtime = data.get("mtime")
        fresh = mtime is not None and mtime >= build_start
        runtime = data.get("runtime")
        rows.append(
            {
                "doc": docname,
                "when": datetime.fromtimestamp(mtime, UTC).strftime("%Y-%m-%d %H:%M UTC")
                if mtime
                else "",
                "seconds": "-" if runtime is None else f"{runtime:.1f}",
                "source": "executed in this build" if fresh else "from the cache",
                "ok": "succeeded" if data.get("succeeded") else f"failed ({data.get('error')})",
            }
        )
    return rows


def _cell(*children) -> nodes.entry:
    return nodes.entry("", nodes.paragraph("", "", *children))


class ExecTableTransform(SphinxPostTransform):
    default_priority = 8  # before the references are resolved (10)

    def run(self, **kwargs) -> None:
        from myst_nb.sphinx_ import NbMetadataCollector

        for node in list(self.document.findall(exec_table)):
            metadata = NbMetadataCollector.get_doc_data(self.env)
            start = getattr(self.app, "_scanbook_build_start", 0.0)
            rows = exec_rows(metadata, start)
            if not rows:
                mode = getattr(self.config, "nb_execution_mode", "off")
                node.replace_self(
                    nodes.paragraph(
                        "", f"No chapter was executed in this build (notebook execution: {mode})."
                    )
                )
                continue
            header = ["Chapter", "Executed", "Seconds", "Outputs", "Status"]
            table = nodes.table(classes=["colwidths-auto"])
            group = nodes.tgroup(cols=len(header))
            table += group
            group += [nodes.colspec(colwidth=20) for _ in header]
            head = nodes.thead()
            head += nodes.row("", *(_cell(nodes.Text(h)) for h in header))
            group += head
            body = nodes.tbody()
            for row in rows:
                link = addnodes.pending_xref(
                    "",
                    nodes.literal("", row["doc"].split("/")[-1]),
                    refdoc=self.env.docname,
                    refdomain="std",
                    reftype="doc",
                    reftarget="/" + row["doc"],
                    refexplicit=True,
                    refwarn=True,
                )
                cells = [row[k] for k in ("when", "seconds", "source", "ok")]
                body += nodes.row("", _cell(link), *(_cell(nodes.Text(c)) for c in cells))
            group += body
            node.replace_self(table)


def _start(app):
    app._scanbook_build_start = time.time()


def _always(app, env, added, changed, removed):
    return [STATUS_DOC] if STATUS_DOC in env.found_docs else []


def setup(app):
    app.add_directive("scanbook-build-machine", BuildMachine)
    app.add_directive("scanbook-gpu-results", GpuResults)
    app.add_directive("scanbook-exec-table", ExecTable)
    app.add_node(exec_table)
    app.add_post_transform(ExecTableTransform)
    app.connect("builder-inited", _start)
    app.connect("env-get-outdated", _always)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}

"""Benchmarks: timing with warm-up and medians, achieved bandwidth, results as JSON.

Defined in chapter 1 (the CPU bandwidth benchmark); the GPU benchmark of chapters 3-4 and the
gradient benchmark of chapter 5 run from the same command line::

    python -m scanbook.bench cpu  [--elements N] [--channels C] [--repeat R] [--json PATH]
    python -m scanbook.bench gpu  ...   (needs a GPU; scanbook.bench.gpu)
    python -m scanbook.bench grad ...   (backward/forward time ratios; scanbook.bench.grad)
    python -m scanbook.bench smoke ...  (every GPU kernel against float64, in seconds)
    python -m scanbook.bench            (lists every sub-command)

Performance is reported as ratios measured in one run: a serial recurrence against a copy of
the same bytes. A float32 linear recurrence reads ``a`` and ``b`` and writes ``h``: 12 bytes an
element, and no implementation can move them faster than memory copies them.

Adding a benchmark (the plug-in contract)
-----------------------------------------
A new benchmark is ONE new module ``lib/scanbook/bench/<name>.py``; no shared file changes.

1. Its name is the sub-command: ``python -m scanbook.bench <name>``. Names starting with ``_``
   are private and never sub-commands.
2. It defines a top-level ``def main(argv: list[str] | None = None) -> int``, which parses
   ``argv`` (build ``argparse.ArgumentParser(prog=f"python -m scanbook.bench {name}")``), runs,
   prints a table and returns the exit status (0 on success, 2 when it cannot run here, for
   example without a GPU). Discovery reads the source (it does not import the module): a
   module without a top-level ``main`` is a library module, not a sub-command (``common``).
3. The first line of its docstring is the one-line help shown by ``python -m scanbook.bench``.
4. It imports shared code from :mod:`scanbook.bench.common` only (timers, :class:`Timing`,
   names, result files), never from a sibling benchmark module, and imports heavy packages
   (JAX, CuPy) inside functions, so that listing the sub-commands stays cheap.
5. Result files: a JSON object built on ``common.header("<name>", ...)`` (so its
   ``"benchmark"`` field is the sub-command's name) with a ``"records"`` list of flat dicts,
   written with ``common.write_json`` to ``--json PATH`` or to
   ``common.results_dir() / f"<name>-{common.gpu_slug()}.json"`` (the GPU benchmark keeps its
   historical ``<gpu-slug>.json``). ``common.results_dir()`` honours ``SCANBOOK_RESULTS_DIR``,
   which the tests and ``benchmarks/device_run.sh`` set. Readers select files with
   ``common.load_records("<name>")``.
6. Record the inputs of a measurement (``T``, ``channels``, ``dtype``...), the median seconds
   (``median_s``) and, where it helps, the spread (``Timing.spread``); inputs are random and
   never zero; outputs are checked against a float64 reference before they are timed.
7. Optional, for the short GPU run (``benchmarks/device_run.sh`` runs every module that asks,
   with no edit of the script): module-level literals ``DEVICE_RUN = ["--save", ...]`` (the
   arguments to run it with on the GPU machine; results must go to ``common.results_dir()``)
   and ``DEVICE_RUN_TIMEOUT_S = 60`` (its own time limit in seconds). The whole run has about
   eight minutes: ask for little. ``python -m scanbook.bench --device-run-plan`` lists them.
8. Tests go in ``tests/test_bench_<name>.py``; ``tests/test_bench.py`` checks the contract for
   every discovered module (help line, ``main``, no sibling imports).

``scanbook.bench`` itself re-exports the names the chapters use (``sb.bench.time_fn``,
``time_interleaved``, ``cpu_benchmark``, ``bytes_per_element``, ``cpu_name``...).
"""

from __future__ import annotations

import ast
import importlib
import shlex
import sys
from pathlib import Path

from .common import (
    Timing,
    bytes_per_element,
    cpu_name,
    load_records,
    read_json,
    results_dir,
    slug,
    summarize,
    time_batched,
    time_fn,
    time_interleaved,
    write_json,
)
from .cpu import cpu_benchmark

__all__ = [
    "Timing",
    "bytes_per_element",
    "commands",
    "cpu_benchmark",
    "cpu_name",
    "device_run_plan",
    "load_records",
    "main",
    "read_json",
    "results_dir",
    "slug",
    "summarize",
    "time_batched",
    "time_fn",
    "time_interleaved",
    "write_json",
]


def _parse(path: Path):
    try:
        return ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None


def _help_line(path: Path) -> str | None:
    """The first docstring line of a module that defines a top-level ``main``; else None."""
    tree = _parse(path)
    if tree is None:
        return "(cannot be read)"
    has_main = any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "main"
        for node in tree.body
    )
    if not has_main:
        return None
    doc = ast.get_docstring(tree) or ""
    return doc.strip().split("\n")[0] if doc.strip() else "(no description)"


def commands(folder=None) -> dict[str, str]:
    """Every sub-command of ``python -m scanbook.bench``: {name: one-line help}, sorted.

    A sub-command is a public module of this package (or of ``folder``) with a top-level
    ``main`` (see the contract above); the modules are read, not imported. Defined in chapter 1.
    """
    found = {}
    for path in sorted(Path(folder or Path(__file__).parent).glob("*.py")):
        name = path.stem
        if name.startswith("_"):
            continue
        line = _help_line(path)
        if line is not None:
            found[name] = line
    return found


def _literal(path: Path, name: str, default=None):
    """The value of a module-level ``name = <literal>`` in ``path``, read without importing."""
    tree = _parse(path)
    for node in tree.body if tree is not None else ():
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            try:
                return ast.literal_eval(node.value)
            except ValueError:
                return default
    return default


def device_run_plan(folder=None) -> list[tuple[str, int, list[str]]]:
    """The benchmarks that ``benchmarks/device_run.sh`` runs on a GPU machine: (name, time
    limit in seconds, arguments) for every sub-command whose module sets ``DEVICE_RUN`` (the
    contract's item 7), in the order ``gpu``, ``grad``, then the others by name. Defined in
    chapter 4."""
    plan = []
    here = Path(folder or Path(__file__).parent)
    for name in commands(here):
        args = _literal(here / f"{name}.py", "DEVICE_RUN")
        if isinstance(args, list | tuple) and all(isinstance(a, str) for a in args):
            limit = _literal(here / f"{name}.py", "DEVICE_RUN_TIMEOUT_S", 60)
            plan.append((name, int(limit) if isinstance(limit, int | float) else 60, list(args)))
    order = {"gpu": 0, "grad": 1}
    return sorted(plan, key=lambda p: (order.get(p[0], 2), p[0]))


def _usage(found: dict[str, str]) -> str:
    width = max(map(len, found), default=4)
    lines = [
        "usage: python -m scanbook.bench COMMAND [options]   (COMMAND --help for its options)",
        "",
        __doc__.split("\n")[0],
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {line}" for name, line in found.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m scanbook.bench COMMAND ...``: run the sub-command's ``main`` on the rest.

    Defined in chapter 1.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    found = commands()
    if argv[:1] == ["--device-run-plan"]:  # one line a benchmark: NAME SECONDS ARGS...
        for name, limit, args in device_run_plan():
            print(shlex.join([name, str(limit), *args]))
        return 0
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage(found))
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in found:
        print(_usage(found), file=sys.stderr)
        print(
            f"\npython -m scanbook.bench: error: COMMAND must be one of {sorted(found)}; "
            f"got {name!r}",
            file=sys.stderr,
        )
        return 2
    module = importlib.import_module(f".{name}", __name__)
    return int(module.main(rest) or 0)

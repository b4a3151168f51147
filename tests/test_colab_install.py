"""The chapters' Colab install cell: one repository setting, and a Colab-like Python it must keep.

The last test builds a fresh virtual environment holding NumPy and JAX older than the lock's
(as a Colab image brings its own), runs the install cell there against this checkout, checks
that nothing that was installed got replaced, and executes chapter 1 top to bottom in a kernel
of that environment. It needs PyPI (~1-2 minutes, most of it chapter 1).
"""

import ast
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
import scanbook_colab as sc

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
UV = Path(sys.executable).parent / "uv"

# What the Colab-like environment holds before the install cell runs: supported versions older
# than requirements.lock's (pyproject.toml's lower bounds say these are tested), and ipykernel.
PREINSTALLED = {"numpy": "2.0.2", "jax": "0.8.0", "jaxlib": "0.8.0"}


def _load_install_cell():
    spec = importlib.util.spec_from_file_location("install_cell", ROOT / "book" / "install_cell.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ic = _load_install_cell()


# -- one setting ------------------------------------------------------------------------------
def test_install_cells_agree_with_config():
    url, branch = ic.repository()
    assert ic.pip_spec(url, branch) == f"git+{url}@{branch}"
    stale = ic.rewrite(CHAPTERS, ic.install_cell(url, branch), check=True)
    assert not stale, (
        f"install cells differ from _config.yml's repository in {[p.name for p in stale]}: "
        "run `.venv/bin/python book/install_cell.py`"
    )


def test_install_cell_is_short_and_colab_only():
    url, branch = ic.repository()
    cell = ic.install_cell(url, branch)
    lines = [line for line in cell.splitlines() if line.strip()]
    assert len(lines) <= 6
    assert lines[1].startswith('if "google.colab" in sys.modules:')
    assert all(line.startswith("    ") for line in lines[2:]), "everything runs on Colab only"
    assert '--no-deps "scanbook @ git+https://github.com/' in cell
    assert "scanbook_colab.install()" in cell


def test_readme_gives_the_addresses_derived_from_config():
    url, branch = ic.repository()
    readme = (ROOT / "README.md").read_text()
    for address in (
        ic.pages_url(url),
        ic.colab_url(url, branch, "chapters/01_serial_scans.ipynb"),
        ic.binder_url(url, branch),
    ):
        assert address in readme, f"README.md does not give {address}"


def test_every_address_in_the_docs_is_the_configured_repository():
    # a Colab, Binder, GitHub or Pages address in README.md or the front matter names the one
    # repository of _config.yml
    url, branch = ic.repository()
    owner, name = ic.owner_and_name(url)
    patterns = {
        r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/([\w.-]+)": f"{owner}/{name}",
        r"mybinder\.org/v2/gh/([\w.-]+/[\w.-]+)/([\w.-]+)": f"{owner}/{name}",
        r"https://github\.com/([\w.-]+/[\w.-]+?)(?:\.git)?(?=[/@\s)\"'`>]|$)()": f"{owner}/{name}",
        r"https://([\w-]+\.github\.io/[\w.-]+)/()": f"{owner.lower()}.github.io/{name}",
    }
    docs = [ROOT / "README.md", *sorted((ROOT / "book").glob("*.md"))]
    found = 0
    for doc in docs:
        for pattern, want in patterns.items():
            for m in re.finditer(pattern, doc.read_text()):
                if re.fullmatch(r"[A-Z_]+/[A-Z_]+", m.group(1)):
                    continue  # a placeholder, OWNER/REPO: a reader's own copy of the book
                found += 1
                assert m.group(1) == want, f"{doc.name}: {m.group(0)} is not {url}"
                assert m.group(2) in ("", branch), f"{doc.name}: {m.group(0)}: branch {branch}"
    assert found >= 4


def test_pages_address_is_derived_from_the_repository(tmp_path):
    assert ic.pages_url("https://github.com/Ann/book") == "https://ann.github.io/book/"
    assert ic.pages_url("https://github.com/ann/ann.github.io") == "https://ann.github.io/"
    (tmp_path / "_config.yml").write_text("repository:\n  url: git@github.com:a/b.git\n")
    with pytest.raises(ValueError, match="repository.url must be https://github.com/OWNER/NAME"):
        ic.repository(tmp_path)


def test_rewrite_replaces_or_inserts_the_first_code_cell(tmp_path):
    cell = 'if "google.colab" in sys.modules:\n    print("new")'
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("(ch-x)=\n# X"),
        nbformat.v4.new_code_cell('import sys\nif "google.colab" in sys.modules:\n    pass'),
        nbformat.v4.new_code_cell("x = 1"),
    ]
    old, new = tmp_path / "old.ipynb", tmp_path / "new.ipynb"
    nbformat.write(nb, old)
    nb.cells.pop(1)
    nbformat.write(nb, new)
    assert ic.rewrite([old, new], cell, check=True) == [old, new]
    assert nbformat.read(old, 4).cells[1].source != cell  # --check writes nothing
    assert ic.rewrite([old, new], cell) == [old, new]
    for path in (old, new):
        cells = nbformat.read(path, 4).cells
        assert [c.source for c in cells[1:]] == [cell, "x = 1"]
    assert ic.rewrite([old, new], cell) == []


# -- scanbook_colab, the cell's helper ---------------------------------------------------------
def test_helper_uses_the_standard_library_only():
    tree = ast.parse((ROOT / "lib" / "scanbook_colab.py").read_text())
    imported = {
        a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)
    code = (
        "import sys; before = set(sys.modules); import scanbook_colab; "
        "print(sorted({m.split('.')[0] for m in set(sys.modules) - before}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout.replace("'", '"'))) - {"scanbook_colab"}
    assert loaded <= set(sys.stdlib_module_names), loaded


@pytest.mark.parametrize(
    ("major", "extra"), [(None, None), (11, None), (12, "cu12"), (13, "cu13"), (14, "cu13")]
)
def test_binding_matches_the_driver(major, extra):
    assert sc.binding_extra(major) == extra


def test_binding_rejects_a_non_integer():
    with pytest.raises(TypeError, match="major must be an int or None; got str"):
        sc.binding_extra("12")


def test_driver_version_override(monkeypatch):
    monkeypatch.setenv("SCANBOOK_CUDA_MAJOR", "12")
    assert sc.cuda_driver_major() == 12
    monkeypatch.setenv("SCANBOOK_CUDA_MAJOR", "0")
    assert sc.cuda_driver_major() is None
    monkeypatch.setenv("SCANBOOK_CUDA_MAJOR", "twelve")
    with pytest.raises(ValueError, match="SCANBOOK_CUDA_MAJOR.*'twelve'"):
        sc.cuda_driver_major()


def test_driver_version_from_nvidia_smi(monkeypatch, tmp_path):
    smi = tmp_path / "nvidia-smi"
    smi.write_text(
        "#!/bin/sh\necho '| NVIDIA-SMI 550.54.15   Driver Version: 550.54.15   "
        "CUDA Version: 12.4     |'\n"
    )
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("SCANBOOK_CUDA_MAJOR", raising=False)
    monkeypatch.setattr(sc, "_driver_version_ctypes", lambda: None)
    assert sc.cuda_driver_major() == 12
    smi.unlink()
    assert sc.cuda_driver_major() is None


@pytest.mark.parametrize(
    ("version", "spec", "ok"),
    [
        ("2.0.2", ">=2.0,<3", True),
        ("1.26.4", ">=2.0,<3", False),
        ("3.0", ">=2.0,<3", False),
        ("0.7.2", ">=0.7", True),
        ("0.6.2", ">=0.7", False),
        ("0.30.4", "==0.30.*", True),
        ("0.31.0", "==0.30.*", False),
        ("2.4.0rc1", "<2.4", False),
        ("12.9.1", "~=12.9", True),
        ("13.0.0", "~=12.9", False),
        ("1.0", "!=1.0.0", False),
        ("2.5.1+cu121", ">2.5", True),
    ],
)
def test_version_ranges(version, spec, ok):
    assert sc.satisfies(version, spec) is ok


REQS = ["numpy<3,>=2.0", "numba-cuda>=0.30", "jax>=0.7", "tqdm>=4.66"]


def test_plan_installs_only_what_is_missing():
    p = sc.plan(REQS, {"numpy": "2.0.2", "jax": "0.7.2", "jaxlib": "0.7.2"}, None)
    assert p.keep == {"numpy": "2.0.2", "jax": "0.7.2"} and not p.outside
    assert p.install == ["numba-cuda>=0.30", "tqdm>=4.66"]


def test_plan_keeps_a_version_outside_the_range_and_says_so():
    p = sc.plan(REQS, {"numpy": "1.26.4", "jax": "0.11.0"}, None)
    assert p.keep == {"numpy": "1.26.4", "jax": "0.11.0"}
    assert p.outside == {"numpy": ("1.26.4", "<3,>=2.0")}
    assert "numpy" not in " ".join(p.install)


def test_plan_adds_the_binding_for_the_driver():
    p = sc.plan(REQS, {"numpy": "2.3.5"}, 12)
    assert p.binding == "cu12" and "numba-cuda[cu12]>=0.30" in p.install
    # numba-cuda already there: its binding is still installed, numba-cuda itself is kept
    p = sc.plan(REQS, {"numba-cuda": "0.30.4"}, 13)
    assert p.keep["numba-cuda"] == "0.30.4" and "numba-cuda[cu13]" in p.install


def test_plan_rejects_an_unreadable_requirement():
    with pytest.raises(ValueError, match="cannot read the requirement '@@'"):
        sc.plan(["@@"], {}, None)


def _fake_installer(monkeypatch, exits, before, after):
    """install() with pip replaced: each call exits with the next of `exits`; returns the calls
    as (requirements, constraints file text)."""
    calls = []

    def run(cmd, **kwargs):
        i = cmd.index("-c")
        calls.append((cmd[i + 2 :], Path(cmd[i + 1]).read_text()))
        return subprocess.CompletedProcess(cmd, exits[len(calls) - 1], "pip says", "why")

    versions = iter([before, after])
    monkeypatch.setattr(sc.subprocess, "run", run)
    monkeypatch.setattr(sc, "installed_versions", lambda: next(versions))
    monkeypatch.setattr(sc, "requirements", lambda dist="scanbook": REQS)
    monkeypatch.setenv("SCANBOOK_CUDA_MAJOR", "12")
    return calls


def test_install_falls_back_to_the_bare_binding(monkeypatch, capsys):
    before = {"numpy": "2.0.2", "jax": "0.8.0"}
    calls = _fake_installer(monkeypatch, [1, 0], before, {**before, "numba-cuda": "0.30.4"})
    sc.install(quiet=False)
    (first, pins), (second, _) = calls
    assert first == ["numba-cuda[cu12]>=0.30", "tqdm>=4.66"]
    assert second == ["numba-cuda>=0.30", "cuda-bindings==12.*", "tqdm>=4.66"]
    assert pins.splitlines() == ["jax==0.8.0", "numpy==2.0.2"]
    out = capsys.readouterr().out
    assert "a CUDA 12 driver: Numba CUDA with its cu12 binding" in out
    assert "keeping jax 0.8.0, numpy 2.0.2" in out and "installed numba-cuda 0.30.4" in out


def test_install_fails_loudly(monkeypatch):
    before = {"numpy": "2.0.2"}
    _fake_installer(monkeypatch, [1, 1], before, before)
    with pytest.raises(RuntimeError, match=r"failed \(exit 1\):\npip sayswhy"):
        sc.install()
    _fake_installer(monkeypatch, [0], before, {"numpy": "2.3.5"})
    with pytest.raises(RuntimeError, match=r"replaced .*'numpy': \('2.0.2', '2.3.5'\)"):
        sc.install()


def test_constraints_pin_what_is_installed():
    pins = sc._constraints(
        {"numpy": "2.0.2", "scanbook": "0.1.0", "odd": "1.0-fix", "t": "2.1+cu1"}
    )
    assert pins.splitlines() == ["numpy==2.0.2", "t==2.1+cu1"]


def test_library_requirements_are_ranges_and_the_locks_pin_them():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for req in project["dependencies"]:
        name, extras, spec, marker = sc._REQ.match(req).groups()
        ops = {op for op, _ in sc._SPEC.findall(spec)}
        assert ">=" in ops and ops <= {">=", "<"}, f"{req}: a range (>=, <), not a pin"
        assert not extras and not marker, f"{req}: no CUDA binding or platform in the library"
    # the book's build and CI get numba-cuda's cu13 binding from the dev extra, pinned
    assert any(r.startswith("numba-cuda[cu13]") for r in project["optional-dependencies"]["dev"])
    lock = (ROOT / "requirements.lock").read_text()
    assert "\nnumba-cuda==" in lock and "\ncuda-bindings==13." in lock


def test_preinstalled_versions_are_in_the_library_ranges():
    # pyproject.toml's lower bounds are the versions the Colab-like environment below tests
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    ranges = {sc.normalize(m[0]): m[2] for m in (sc._REQ.match(r).groups() for r in deps)}
    for name in ("numpy", "jax"):
        assert sc.satisfies(PREINSTALLED[name], ranges[name]), (name, ranges[name])
        lower = next(v for op, v in sc._SPEC.findall(ranges[name]) if op == ">=")
        assert PREINSTALLED[name].startswith(lower), f"{name}: test {lower}, the lower bound"


# -- a Colab-like environment ------------------------------------------------------------------
def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


def _versions(python: Path) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json; "
        "print(json.dumps({d.metadata['Name'].lower().replace('_', '-'): d.version "
        "for d in m.distributions()}))"
    )
    return json.loads(subprocess.check_output([str(python), "-c", code], text=True))


def _copy_library(dest: Path) -> None:
    """What pip gets from the repository: pyproject.toml, README.md and lib/ (tracked files)."""
    files = subprocess.check_output(["git", "ls-files", "lib"], cwd=ROOT, text=True).split()
    for rel in ["pyproject.toml", "README.md", *files]:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)


@pytest.mark.skipif(not _pypi_reachable(), reason="needs PyPI (pypi.org) for the fresh venv")
def test_install_cell_keeps_colab_packages_and_chapter_1_runs(tmp_path):
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    venv, src = tmp_path / "venv", tmp_path / "src"
    python = venv / "bin" / "python"
    subprocess.run([str(UV), "venv", "-q", "--seed", "-p", sys.executable, str(venv)], check=True)
    kernel = re.search(r"^ipykernel==\S+", (ROOT / "requirements.lock").read_text(), re.M)
    pre = [f"{n}=={v}" for n, v in PREINSTALLED.items()] + [kernel.group(0)]
    subprocess.run([str(UV), "pip", "install", "-q", "--python", str(python), *pre], check=True)
    before = _versions(python)
    assert "numba" not in before and "scanbook" not in before
    _copy_library(src)

    # chapter 1, its install cell as generated, pointed at this checkout. Colab's kernel has
    # imported google.colab before the first cell runs; a stand-in does for the install cell and
    # goes again after it (JAX would import google.colab.output from it)
    url, branch = ic.repository()
    cell = ic.install_cell(url, branch).replace(ic.pip_spec(url, branch), src.as_uri())
    nb = nbformat.read(ROOT / "chapters" / "01_serial_scans.ipynb", as_version=4)
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    colab = 'import sys, types\n\nsys.modules["google.colab"] = types.ModuleType("google.colab")'
    nb.cells[first : first + 1] = [
        nbformat.v4.new_code_cell(colab),
        nbformat.v4.new_code_cell(cell),
        nbformat.v4.new_code_cell('del sys.modules["google.colab"]'),
    ]
    first += 1
    report = (
        "import jax, numpy, scanbook\nprint(scanbook.__file__, numpy.__version__, jax.__version__)"
    )
    nb.cells.append(nbformat.v4.new_code_cell(report))

    kernels = tmp_path / "kernels"
    (kernels / "colab").mkdir(parents=True)
    (kernels / "colab" / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Colab-like",
                "language": "python",
                "env": {"PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "PYTHONPATH": ""},
            }
        )
    )
    km = KernelManager(
        kernel_name="colab", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)])
    )
    work = tmp_path / "content"  # Colab's working folder: no checkout there
    work.mkdir()
    NotebookClient(nb, km=km, timeout=600, resources={"metadata": {"path": str(work)}}).execute()

    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "every cell of chapter 1 ran"
    printed = "".join(o.get("text", "") for o in nb.cells[first].outputs)
    assert "keeping jax 0.8.0, numpy 2.0.2" in printed, printed
    after = _versions(python)
    replaced = {n: (v, after.get(n)) for n, v in before.items() if after.get(n) != v}
    assert not replaced, f"the install cell replaced (before, after): {replaced}"
    assert {"scanbook", "numba", "numba-cuda", "matplotlib", "optax"} <= set(after)
    where, np_version, jax_version = "".join(nb.cells[-1].outputs[0]["text"]).split()
    assert where.startswith(str(venv)) and (np_version, jax_version) == ("2.0.2", "0.8.0")

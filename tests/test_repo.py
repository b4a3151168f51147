"""The repository: pins agree, notebooks are committed clean and run on Colab."""

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
COLAB_INSTALL = 'if "google.colab" in sys.modules'


def read_lock(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def requirement_name(req: str) -> str:
    return re.match(r"^([A-Za-z0-9_.\-]+)", req).group(1).lower()


@pytest.fixture(scope="module")
def lock():
    return read_lock(ROOT / "requirements.lock")


@pytest.fixture(scope="module")
def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def env_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    pins = {}
    for req in pip:
        m = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==(\S+)$", req)
        assert m, f"environment.yml pins every package exactly (name==version); got {req!r}"
        pins[m.group(1).lower()] = m.group(3)
    return pins


def test_lock_pins_every_direct_dependency(lock, pyproject):
    direct = (
        pyproject["project"]["dependencies"] + pyproject["project"]["optional-dependencies"]["dev"]
    )
    missing = [r for r in direct if requirement_name(r) not in lock]
    assert not missing, f"requirements.lock lacks {missing}: re-run uv pip compile (see its header)"


def test_environment_yml_agrees_with_lock(lock, pyproject, env_pins):
    direct = (
        pyproject["project"]["dependencies"] + pyproject["project"]["optional-dependencies"]["dev"]
    )
    names = {requirement_name(r) for r in direct}
    assert names <= set(env_pins), f"environment.yml lacks {sorted(names - set(env_pins))}"
    wrong = {n: (v, lock.get(n)) for n, v in env_pins.items() if lock.get(n) != v}
    assert not wrong, f"environment.yml pins differ from requirements.lock (env, lock): {wrong}"


def test_gpu_lock_extends_the_cpu_lock(lock):
    gpu = read_lock(ROOT / "requirements-gpu.lock")
    differ = {n: (v, gpu[n]) for n, v in lock.items() if n in gpu and gpu[n] != v}
    assert not differ, f"requirements-gpu.lock disagrees with requirements.lock: {differ}"
    assert "cupy-cuda13x" in gpu and "cupy-cuda13x" not in lock


def test_jupyter_book_stays_on_1x(lock):
    assert lock["jupyter-book"].startswith("1."), "Jupyter Book 2.x cannot build offline"


def test_there_are_chapters():
    assert len(CHAPTERS) >= 2


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_notebook_is_committed_clean(path):
    nb = json.loads(path.read_text())
    dirty = [
        i
        for i, cell in enumerate(nb["cells"])
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count"))
    ]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; commit notebooks without outputs"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_notebook_runs_on_colab(path):
    nb = json.loads(path.read_text())
    meta = nb["metadata"]
    assert meta.get("accelerator") == "GPU" and "colab" in meta, (
        f"{path.name}: no Colab GPU metadata"
    )
    assert meta["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    first = "".join(code[0]["source"])
    assert COLAB_INSTALL in first and "pip install" in first, (
        f"{path.name}: the first code cell must install scanbook on Colab only"
    )
    second = "".join(code[1]["source"])
    assert "import scanbook" in second and "banner()" in second, (
        f"{path.name}: the second code cell must import scanbook and print the device banner"
    )


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_notebook_has_exercises_and_a_label(path):
    nb = json.loads(path.read_text())
    text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert re.match(r"\(ch-[a-z0-9-]+\)=", text), f"{path.name}: start with a (ch-...)= label"
    assert text.count("{exercise}") >= 3, f"{path.name}: needs 3 or more exercises"
    assert text.count("{solution}") >= text.count("{exercise}"), f"{path.name}: a solution each"
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "exercises.check_" in code, f"{path.name}: run a scanbook.exercises grader"


def test_readme_gives_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make book" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def _cell_text(cell) -> str:
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


def _grader_lines_ok(text: str) -> bool:
    import ast

    for node in ast.parse(text).body:
        call = node.test if isinstance(node, ast.Assert) else None
        func = getattr(call, "func", None)
        if not (isinstance(func, ast.Attribute) and func.attr.startswith("check_") and call.args):
            return False
    return bool(text.strip())


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_exercises_follow_the_course_layout(path):
    """/work/notes/COURSE_CONTRACT.md: per exercise with code a `solution` cell (folded) and a
    `grader` cell, answers not repeated in the dropdowns, no grader cell at the chapter's end."""
    nb = json.loads(path.read_text())
    md = "\n".join(_cell_text(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    labels = re.findall(r"```\{exercise\}[^\n]*\n(?::[^\n]*\n)*?:label: (\S+)", md)
    blocks = re.findall(r"(`{3,})\{exercise\}[^\n]*\n(.*?)\n\1", md, re.S)
    with_code = {
        re.search(r":label: (\S+)", body).group(1) for _, body in blocks if "check_" in body
    }
    seen: dict[str, list[str]] = {}
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        tags = cell["metadata"].get("tags", [])
        label = cell["metadata"].get("scanbook", {}).get("exercise")
        text = _cell_text(cell)
        if label is None:
            assert "exercises.check_" not in text or "student-remove" in tags, (
                f"{path.name}: code cell {i} runs a grader outside a `grader` cell (tag it "
                "grader with metadata scanbook.exercise, or student-remove)"
            )
            continue
        assert label in labels, f"{path.name}: cell {i} names exercise {label}, not in the text"
        if "solution" in tags:
            assert "hide-input" in tags, f"{path.name}: solution cell {i} must be hide-input"
            assert "exercises.check_" not in text, f"{path.name}: cell {i} grades in a solution"
            seen.setdefault(label, []).append("solution")
        elif "grader" in tags:
            assert _grader_lines_ok(text), (
                f"{path.name}: grader cell {i} holds only `assert sb.exercises.check_x(answer)`"
            )
            seen.setdefault(label, []).append("grader")
        else:
            raise AssertionError(f"{path.name}: cell {i} of {label} is tagged neither way")
    for label, kinds in seen.items():
        assert "solution" in kinds and "grader" in kinds, f"{path.name}: {label} has {kinds}"
        assert kinds.index("solution") < kinds.index("grader"), f"{path.name}: {label} order"
    missing = sorted(with_code - set(seen))
    assert not missing, (
        f"{path.name}: exercises with a grader but no solution/grader cells: {missing}"
    )
    for _fence, body in re.findall(r"(`{3,})\{solution\}[^\n]*\n(.*?)\n\1", md, re.S):
        assert "```python" not in body, (
            f"{path.name}: a {{solution}} dropdown repeats code; it belongs in the solution cell"
        )

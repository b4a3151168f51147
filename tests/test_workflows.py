"""The GitHub Actions workflows: actionlint finds nothing, and each does what README.md says."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which(
    "actionlint"
)


def actionlint(*paths: Path) -> subprocess.CompletedProcess:
    assert ACTIONLINT, "actionlint is missing: it comes with the dev extra (make venv)"
    return subprocess.run(
        [ACTIONLINT, "-no-color", *map(str, paths)], cwd=ROOT, capture_output=True, text=True
    )


def load(name: str) -> dict:
    wf = yaml.safe_load((WORKFLOWS / name).read_text())
    wf["on"] = wf.pop(True, wf.get("on"))  # YAML 1.1 reads the key `on` as True
    return wf


def steps(wf: dict) -> list[dict]:
    return [s for job in wf["jobs"].values() for s in job.get("steps", [])]


def uses(wf: dict, action: str) -> list[dict]:
    return [s for s in steps(wf) if s.get("uses", "").split("@")[0] == action]


def runs(wf: dict) -> str:
    return "\n".join(s.get("run", "") for s in steps(wf))


def test_actionlint_finds_nothing():
    files = sorted(WORKFLOWS.glob("*.y*ml"))
    assert {p.name for p in files} >= {"pages.yml", "tests.yml"}
    done = actionlint(*files)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_actionlint_reports_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.no_such_thing }}\n      - uses: actions/checkout\n"
    )
    done = actionlint(bad)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "no_such_thing" in done.stdout and "actions/checkout" in done.stdout


def test_pages_workflow_builds_the_book_from_main_and_deploys_it():
    wf = load("pages.yml")
    assert wf["on"]["push"]["branches"] == ["main"]
    assert wf["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    assert "make book" in runs(wf)
    for action in ("actions/configure-pages", "actions/deploy-pages"):
        assert uses(wf, action), f"pages.yml does not use {action}"
    (upload,) = uses(wf, "actions/upload-pages-artifact")
    assert upload["with"]["path"] == "_build/html"
    caches = [s["with"] for s in uses(wf, "actions/cache")]
    (jupyter,) = [c for c in caches if c["path"] == "_build/.jupyter_cache"]
    # outputs never come from an older library: its hash is in every key that may be restored
    assert (
        "hashFiles('lib/**'" in jupyter["key"] and "hashFiles('lib/**'" in jupyter["restore-keys"]
    )
    deploy = wf["jobs"]["deploy"]
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"


@pytest.mark.parametrize("name", ["tests.yml", "pages.yml"])
def test_workflows_run_on_debian_with_python_311(name):
    # the machine .ci/run and README.md describe: Debian, Python 3.11, packages from apt
    wf = load(name)
    job = wf["jobs"]["test" if name == "tests.yml" else "build"]
    assert job["container"].startswith("python:3.11-")


def test_tests_workflow_runs_ci_run_on_pull_requests():
    wf = load("tests.yml")
    assert "pull_request" in wf["on"]
    assert "bash .ci/run" in runs(wf)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "apt-get install" in ci and "chromium" in ci


def test_pages_workflow_installs_node_for_the_assets():
    assert "apt-get install -y --no-install-recommends nodejs npm" in runs(load("pages.yml"))

"""The book's repository address is one setting, `repository.url` (and `branch`) in _config.yml.

Jupyter Book makes the Colab and Binder launch buttons from it; this script derives the rest:
the first code cell of every chapter (the Colab install cell), and the addresses the README
gives (the published site on GitHub Pages, Colab, Binder).

    python book/install_cell.py            rewrite the install cell of every chapters/*.ipynb
    python book/install_cell.py NB...      the same for the notebooks named
    python book/install_cell.py --check    exit 1 when a chapter's install cell is out of date
    python book/install_cell.py --urls     print the derived addresses

tests/test_colab_install.py checks that the chapters and the README agree with _config.yml.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The first code cell of every chapter. On Colab it installs scanbook alone (--no-deps), then
# scanbook_colab installs what is missing without replacing the image's NumPy, JAX or CUDA
# packages, choosing Numba CUDA's binding for the driver (lib/scanbook_colab.py).
CELL = """\
import sys

if "google.colab" in sys.modules:  # on Colab: add scanbook, keep Colab's NumPy, JAX and CUDA
    %pip install -q --no-deps "scanbook @ {spec}"
    import scanbook_colab

    scanbook_colab.install()"""


def repository(root: Path = ROOT) -> tuple[str, str]:
    """(url, branch) from _config.yml's `repository` section."""
    import yaml

    repo = yaml.safe_load((root / "_config.yml").read_text())["repository"]
    url = repo["url"].rstrip("/")
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise ValueError(f"repository.url must be https://github.com/OWNER/NAME; got {url!r}")
    return url, repo.get("branch", "main")


def owner_and_name(url: str) -> tuple[str, str]:
    owner, name = url.removeprefix("https://github.com/").split("/")
    return owner, name


def pages_url(url: str) -> str:
    """Where GitHub Pages publishes the repository's site."""
    owner, name = owner_and_name(url)
    if name.lower() == f"{owner.lower()}.github.io":
        return f"https://{owner.lower()}.github.io/"
    return f"https://{owner.lower()}.github.io/{name}/"


def colab_url(url: str, branch: str, notebook: str = "") -> str:
    owner, name = owner_and_name(url)
    return f"https://colab.research.google.com/github/{owner}/{name}/blob/{branch}/{notebook}"


def binder_url(url: str, branch: str) -> str:
    owner, name = owner_and_name(url)
    return f"https://mybinder.org/v2/gh/{owner}/{name}/{branch}"


def pip_spec(url: str, branch: str) -> str:
    """What pip installs scanbook from: the repository's branch."""
    return f"git+{url}@{branch}"


def install_cell(url: str, branch: str) -> str:
    """The source of every chapter's first code cell."""
    return CELL.format(spec=pip_spec(url, branch))


def _lines(source: str) -> list[str]:
    return source.splitlines(keepends=True)  # how nbformat stores a cell's source


def rewrite(paths: list[Path], source: str, check: bool = False) -> list[Path]:
    """Make the first code cell of each notebook `source`; return the notebooks that differed.

    A first code cell that is not an install cell (no "google.colab") gets one put before it.
    Only that cell changes: the rest of the file is written back as it was read (plain JSON,
    key order kept). With check=True nothing is written.
    """
    differ = []
    for path in paths:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
        cells = nb["cells"]
        code = [i for i, c in enumerate(cells) if c["cell_type"] == "code"]
        first = cells[code[0]] if code else None
        text = "".join(first["source"]) if first else ""
        if first is not None and "google.colab" in text:
            if text == source:
                continue
            first.update(source=_lines(source), outputs=[], execution_count=None)
        else:
            new = {
                "cell_type": "code",
                "execution_count": None,
                "id": f"install-{uuid.uuid4().hex[:8]}",
                "metadata": {},
                "outputs": [],
                "source": _lines(source),
            }
            cells.insert(code[0] if code else len(cells), new)
        differ.append(path)
        if not check:
            text = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
            Path(path).write_text(text, encoding="utf-8")
    return differ


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", type=Path, help="default: chapters/*.ipynb")
    ap.add_argument("--check", action="store_true", help="only report out-of-date cells")
    ap.add_argument("--urls", action="store_true", help="print the derived addresses")
    args = ap.parse_args(argv)
    url, branch = repository()
    if args.urls:
        print(f"repository : {url} (branch {branch})")
        print(f"site       : {pages_url(url)}")
        print(f"colab      : {colab_url(url, branch, 'chapters/01_serial_scans.ipynb')}")
        print(f"binder     : {binder_url(url, branch)}")
        print(f"pip        : scanbook @ {pip_spec(url, branch)}")
        return 0
    paths = args.notebooks or sorted((ROOT / "chapters").glob("*.ipynb"))
    differ = rewrite(paths, install_cell(url, branch), check=args.check)
    for path in differ:
        print(f"{'out of date' if args.check else 'rewrote'}: {path}")
    return 1 if args.check and differ else 0


if __name__ == "__main__":
    sys.exit(main())

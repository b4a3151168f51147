"""Checks of the book's sources and of the built site.

The first group needs no build: the table of contents names only files that exist, and every
citation key used in the chapters and pages is in ``book/references.bib``.

The second group checks a site already built into ``_build/html`` (``make book``; ``make test``
runs these right after the build). They fail, not skip, when the site is missing. They check
that the pages load MathJax, RequireJS and the Jupyter widget manager from the copies shipped
with the site (``book/vendor.sh``), never from a CDN, so the book renders offline.
"""

from __future__ import annotations

import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[1]
# the site built by make book; SCANBOOK_SITE=DIR checks a site built elsewhere (--path-output)
SITE = Path(os.environ.get("SCANBOOK_SITE", ROOT / "_build" / "html"))
TOC = ROOT / "_toc.yml"
BIB = ROOT / "book" / "references.bib"

CDN_HOSTS = ("cdn.jsdelivr", "unpkg.com", "cdnjs")
SOURCE_SUFFIXES = (".md", ".ipynb", ".rst")
CITE_ROLE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]*)`")
BIB_KEY = re.compile(r"^\s*@\s*(\w+)\s*\{\s*([^,\s]+)\s*,", re.MULTILINE)
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"

# The keys the chapters are told to cite with (CONVENTIONS.md).
BOOK_KEYS = {
    "blelloch1990prefix",
    "hillis1986data",
    "ladner1980parallel",
    "harris2007parallel",
    "merrill2016single",
    "martin2018parallelizing",
    "lim2024parallelizing",
    "chilkuri2021parallelizing",
    "voelker2019legendre",
    "lei2018simple",
    "bradbury2017quasi",
    "feng2024were",
    "gonzalez2024towards",
}


# -- helpers --------------------------------------------------------------------------------


def toc_docs() -> list[str]:
    """Every document the table of contents names (root first), without suffix."""
    toc = yaml.safe_load(TOC.read_text(encoding="utf-8"))
    docs = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                docs.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    walk(toc.get("sections"))
    return docs


def source_of(doc: str) -> Path | None:
    for suffix in SOURCE_SUFFIXES:
        path = ROOT / f"{doc}{suffix}"
        if path.is_file():
            return path
    return None


def markdown_text(path: Path) -> str:
    """The Markdown a page or notebook contributes (notebooks: their markdown cells)."""
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text(encoding="utf-8"))
        return "\n".join(
            "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            for cell in nb["cells"]
            if cell["cell_type"] == "markdown"
        )
    return path.read_text(encoding="utf-8")


def cited_keys(paths) -> dict[str, set[str]]:
    """``{key: {files citing it}}`` for every {cite}-style role in ``paths``."""
    out: dict[str, set[str]] = {}
    for path in paths:
        for match in CITE_ROLE.finditer(markdown_text(path)):
            for key in match.group(1).split(","):
                if key.strip():
                    out.setdefault(key.strip(), set()).add(str(path.relative_to(ROOT)))
    return out


def bib_keys() -> list[str]:
    return [
        key
        for kind, key in BIB_KEY.findall(BIB.read_text(encoding="utf-8"))
        if kind.lower() not in ("comment", "string", "preamble")
    ]


def book_sources() -> list[Path]:
    return sorted((ROOT / "chapters").glob("*.ipynb")) + sorted((ROOT / "book").glob("*.md"))


class _Scripts(HTMLParser):
    """Collects the attributes of every <script> tag, in document order."""

    def __init__(self):
        super().__init__()
        self.scripts: list[dict[str, str]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self.scripts.append({k: v or "" for k, v in attrs})


def scripts(page: Path) -> list[dict[str, str]]:
    parser = _Scripts()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.scripts


def local_target(page: Path, src: str) -> Path | None:
    """The file under the site that a relative ``src`` on ``page`` points at (None if remote)."""
    parts = urlsplit(src)
    if parts.scheme or parts.netloc:
        return None
    return (page.parent / parts.path).resolve()


def require_site() -> None:
    assert (SITE / "index.html").is_file(), (
        f"no built site: {SITE / 'index.html'} is missing. Build the book first "
        "(make book, or: bash book/vendor.sh && .venv/bin/jupyter-book build . -W -n --keep-going)"
    )


def site_pages() -> list[Path]:
    require_site()
    skip = {SITE / "vendor", SITE / "_static", SITE / "_sources", SITE / "_images"}
    return [
        p for p in sorted(SITE.rglob("*.html")) if not any(parent in skip for parent in p.parents)
    ]


def toc_pages() -> list[Path]:
    return [SITE / f"{doc}.html" for doc in toc_docs()]


# -- sources (no build needed) --------------------------------------------------------------


def test_toc_lists_only_existing_files():
    missing = [doc for doc in toc_docs() if source_of(doc) is None]
    assert not missing, f"_toc.yml lists files that do not exist (.md/.ipynb): {missing}"


def test_bibliography_has_the_book_keys_once():
    keys = bib_keys()
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    assert not duplicates, f"duplicate keys in {BIB.name}: {duplicates}"
    missing = sorted(BOOK_KEYS - set(keys))
    assert not missing, f"{BIB.name} lacks the keys CONVENTIONS.md lists: {missing}"


def test_every_cited_key_is_in_the_bibliography():
    known = set(bib_keys())
    unknown = {
        key: sorted(files) for key, files in cited_keys(book_sources()).items() if key not in known
    }
    assert not unknown, f"cited keys missing from book/references.bib: {unknown}"


# -- the built site --------------------------------------------------------------------------


def test_site_index_exists():
    require_site()
    index = (SITE / "index.html").read_text(encoding="utf-8")
    assert "book/intro.html" in index, "index.html should lead to the introduction"
    assert (SITE / "book" / "intro.html").is_file()


def test_every_toc_page_is_built():
    require_site()
    missing = [str(p.relative_to(SITE)) for p in toc_pages() if not p.is_file()]
    assert not missing, f"pages in _toc.yml with no HTML in {SITE}: {missing}"


def test_no_script_comes_from_a_cdn():
    offenders = {}
    for page in site_pages():
        remote = [
            s["src"] for s in scripts(page) if any(host in s.get("src", "") for host in CDN_HOSTS)
        ]
        if remote:
            offenders[str(page.relative_to(SITE))] = remote
    assert not offenders, f"pages load scripts from a CDN (the site must work offline): {offenders}"


def test_local_scripts_exist():
    missing = {}
    for page in site_pages():
        for s in scripts(page):
            target = local_target(page, s.get("src", ""))
            if s.get("src") and target is not None and not target.is_file():
                missing.setdefault(str(page.relative_to(SITE)), []).append(s["src"])
    assert not missing, f"scripts referenced by pages but absent from the site: {missing}"


def test_math_pages_load_the_shipped_mathjax():
    require_site()
    fonts = SITE / "vendor" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2"
    assert (fonts / "MathJax_Main-Regular.woff").is_file(), f"MathJax fonts missing in {fonts}"
    math_pages = [p for p in toc_pages() if p.is_file() and 'class="math' in p.read_text("utf-8")]
    assert math_pages, "no page with math found; expected at least book/notation.html"
    for page in math_pages:
        mathjax = [
            local_target(page, s["src"])
            for s in scripts(page)
            if "mathjax" in s.get("src", "").lower()
        ]
        assert mathjax, f"{page.relative_to(SITE)} has math but loads no MathJax"
        for target in mathjax:
            assert target is not None, f"{page.relative_to(SITE)} loads MathJax from the web"
            assert target.is_file(), f"{page.relative_to(SITE)}: MathJax file {target} missing"
            assert (SITE / "vendor" / "mathjax") in target.parents


def test_widget_pages_load_the_shipped_manager():
    manager = SITE / "vendor" / "html-manager" / "embed-amd.js"
    requirejs = SITE / "vendor" / "require.js"
    for page in site_pages():
        html = page.read_text(encoding="utf-8")
        if WIDGET_STATE not in html:
            continue
        name = page.relative_to(SITE)
        targets = [local_target(page, s["src"]) for s in scripts(page) if s.get("src")]
        assert manager in targets, f"{name} embeds widget state but does not load {manager}"
        assert requirejs in targets, f"{name} embeds widget state but does not load {requirejs}"
        assert targets.index(requirejs) < targets.index(manager), (
            f"{name}: require.js must load before embed-amd.js"
        )
        assert manager.is_file() and requirejs.is_file()


def test_bibliography_page_lists_entries():
    require_site()
    page = SITE / "book" / "bibliography.html"
    assert page.is_file(), f"{page} missing"
    entries = page.read_text(encoding="utf-8").count('role="doc-biblioentry"')
    built_sources = [p for p in map(source_of, toc_docs()) if p is not None]
    cited = cited_keys(built_sources)
    assert entries > 0, "the bibliography page lists no entries"
    assert entries >= len(cited), (
        f"the bibliography lists {entries} entries, but the pages cite {len(cited)} keys"
    )


# -- the API reference and the chapters, linked both ways (book/_ext/scanbook_api.py) --------


def _api_extension():
    import sys

    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    import scanbook_api

    return scanbook_api


def test_api_docstrings_link_the_chapter_that_defines_them():
    """Every documented object whose docstring says "Defined in chapter N" links, in its entry,
    to chapter N's label at the top of the chapter's page."""
    require_site()
    ext = _api_extension()
    api, docs, labels = ext.public_api(), ext.chapter_docs(), ext.chapter_labels()
    pages = {p: p.read_text(encoding="utf-8") for p in (SITE / "book" / "api").glob("*.html")}
    assert pages, f"no API pages in {SITE / 'book' / 'api'}"
    problems, checked = [], 0
    for entry in api.canonical():
        if entry.kind == "module" or not entry.defined_in:
            continue
        anchor = f'id="{entry.canonical}"'
        found = [html for html in pages.values() if anchor in html]
        if len(found) != 1:
            problems.append(f"{entry.canonical}: documented on {len(found)} pages")
            continue
        html = found[0]
        start = html.index(anchor)
        end = html.find('class="sig sig-object py"', start + len(anchor))  # the next entry
        entry_html = html[start : end if end > 0 else len(html)]
        for n in entry.defined_in:
            href = f'href="../../{docs[n]}.html#{labels[n]}"'
            if href not in entry_html:
                problems.append(f"{entry.canonical}: no link to chapter {n} ({href})")
        checked += 1
    assert checked > 200, f"only {checked} entries say which chapter defines them"
    assert not problems, "\n".join(problems)


def test_each_chapter_links_back_to_the_objects_it_defines():
    require_site()
    ext = _api_extension()
    api = ext.public_api()
    problems = []
    for n, doc in ext.chapter_docs().items():
        html = (SITE / f"{doc}.html").read_text(encoding="utf-8")
        start = html.find('id="library-reference"')
        if start < 0:
            problems.append(f"{doc}: no 'Library reference for this chapter' section")
            continue
        section = html[start:]
        defined, graders = ext.chapter_entries(api, n)
        for entry in defined + graders:
            if f'.html#{entry.canonical}"' not in section:
                problems.append(f"{doc}: no link to {entry.canonical}")
    assert not problems, "\n".join(problems)

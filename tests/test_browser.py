"""Every page of the built site, opened in headless Chromium with no network.

``make test`` builds the book into ``_build/html`` and then runs pytest, so these checks see the
site a reader gets. The site is served from 127.0.0.1 (``python -m http.server``); Chromium
resolves no other host, so nothing can come from a CDN. ``book/check_site.mjs`` (Node and the
DevTools protocol over a pipe, ``book/cdp.mjs``; no packages) opens every page in a 1300 px
wide window, waits for MathJax and the widgets, and reports; the tests below judge the report:

* no JavaScript error: no uncaught exception, no ``console.error``, no failed request;
* every formula typeset by MathJax, none with a TeX error, and no MyST role or TeX left
  unrendered in the prose;
* every image loaded (``naturalWidth > 0``); every embedded widget view drawn;
* every same-site link served, and its ``#anchor`` an id on the target page;
* nothing clipped at 1300 px: no box in the article with ``overflow`` hidden or clip whose
  visible content is larger than the box, no element reaching past the text column unless an
  ancestor inside the column scrolls it, the page itself no wider than the window, and no
  stray vertical scrollbar; boxes that scroll sideways are allowed for code and display maths,
  never for a cell's printed output (it wraps);
* one search field, not two;
* every chapter's download button gives its ``.ipynb``, a notebook the site serves;
* chapter 2's scan-tree explorer follows its slider and Play button (``book/check_explorer.mjs``).

Chromium and Node are required: without them the tests fail (``.ci/run`` installs both).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# SCANBOOK_SITE: another built site (a private build) instead of _build/html
SITE = Path(os.environ.get("SCANBOOK_SITE") or ROOT / "_build" / "html").resolve()
CHECK_SITE = ROOT / "book" / "check_site.mjs"
CHECK_EXPLORER = ROOT / "book" / "check_explorer.mjs"
EXPLORER_PAGE = "chapters/02_parallel_scans.html"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
STYLESHEET = "_static/scanbook.css"
# Chromium asks every site for /favicon.ico on its own; the book has none
BROWSER_OWN = re.compile(r"/favicon\.ico$")


def _chromium() -> str:
    found = (
        os.environ.get("SCANBOOK_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
        or shutil.which("google-chrome")
    )
    if not found:
        pytest.fail(
            "Chromium is needed for the browser tests and was not found on PATH "
            "(apt-get install chromium; .ci/run installs it; or set SCANBOOK_CHROMIUM)"
        )
    return found


def _node() -> list[str]:
    node = shutil.which("node") or shutil.which("nodejs")
    if not node:
        pytest.fail(
            "Node.js (18 or later) is needed for the browser tests and was not found on PATH "
            "(apt-get install nodejs; .ci/run installs it)"
        )
    return [node]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    assert (SITE / "index.html").is_file(), (
        f"no built site: {SITE / 'index.html'} is missing. Build the book first (make book)"
    )
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=SITE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base, timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(f"python -m http.server did not answer on {base}")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def report(server):
    chromium, node = _chromium(), _node()
    run = subprocess.run(
        [*node, str(CHECK_SITE), chromium, server, str(SITE)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, f"check_site.mjs failed:\n{run.stderr[-3000:]}"
    data = json.loads(run.stdout)
    return {p["page"]: p for p in data["pages"]}


def _site_pages() -> list[str]:
    skip = {"_static", "_sources", "_images", "vendor", "_sphinx_design_static"}
    return sorted(
        p.relative_to(SITE).as_posix()
        for p in SITE.rglob("*.html")
        if p.relative_to(SITE).parts[0] not in skip
    )


def _opened(report) -> dict:
    """The pages the browser opened (not the redirect at the site's root)."""
    return {name: page for name, page in report.items() if "redirect" not in page}


def _offenders(report, pick) -> dict:
    out = {}
    for name, page in _opened(report).items():
        found = pick(page)
        if found:
            out[name] = found
    return out


def _fmt(offenders: dict) -> str:
    return json.dumps(offenders, indent=1, ensure_ascii=False)[:6000]


# -- the tests ---------------------------------------------------------------------------------


def test_every_page_was_opened(report):
    pages = _site_pages()
    assert len(pages) >= 15, f"expected the book's pages in {SITE}, found {pages}"
    assert sorted(report) == pages
    failed = {name: p["error"] for name, p in report.items() if "error" in p}
    assert not failed, f"pages the browser could not inspect:\n{_fmt(failed)}"
    slow = {name: p["seconds"] for name, p in _opened(report).items() if not p["loaded"]}
    assert not slow, f"pages whose load event never fired (30 s): {slow}"


def test_every_page_links_the_stylesheet(report):
    missing = [
        name
        for name in _opened(report)
        if STYLESHEET not in (SITE / name).read_text(encoding="utf-8")
    ]
    assert not missing, (
        f"pages without {STYLESHEET} (book/_static/scanbook.css, linked by the Sphinx extension "
        f"book/_ext/site_layout.py; _config.yml must list it under sphinx.local_extensions as "
        f"'site_layout: book/_ext'): {missing}"
    )


def test_no_javascript_errors(report):
    def errors(page):
        return [
            f"{e['source']}: {e['text']}"
            for e in page["errors"]
            if not (e["source"].startswith("log.network") and BROWSER_OWN.search(e["url"]))
        ]

    offenders = _offenders(report, errors)
    assert not offenders, f"JavaScript errors, by page:\n{_fmt(offenders)}"


def test_no_failed_requests(report):
    def failed(page):
        return [
            f"{f['status'] or f.get('error')} {f['url']}"
            for f in page["failed"]
            if not BROWSER_OWN.search(f["url"])
        ]

    offenders = _offenders(report, failed)
    assert not offenders, f"requests the site could not serve, by page:\n{_fmt(offenders)}"


def test_maths_typeset(report):
    def untypeset(page):
        m = page["math"]
        out = []
        if m["untypeset"]:
            out.append(
                f"{m['untypeset']} of {m['elements']} formulas not typeset, e.g. "
                f"{m['untypeset_examples']}"
            )
        if m["merrors"]:
            out.append(f"TeX errors: {m['merrors']}")
        return out

    offenders = _offenders(report, untypeset)
    assert not offenders, f"maths MathJax did not typeset, by page:\n{_fmt(offenders)}"
    typeset = sum(p["math"]["containers"] for p in _opened(report).values())
    with_math = [n for n, p in _opened(report).items() if p["math"]["elements"]]
    assert typeset > 0 and "book/notation.html" in with_math


def test_no_markup_left_unrendered(report):
    def markup(page):
        return [f"{m['kind']}: {m['found']!r} in {m['text']!r}" for m in page["markup"]]

    offenders = _offenders(report, markup)
    assert not offenders, (
        "MyST roles or TeX shown as text, or prose typeset as a formula (a $ or $$ that "
        f"did not pair up), by page:\n{_fmt(offenders)}"
    )


def test_figures_load(report):
    def broken(page):
        return [img["src"] for img in page["images"] if not img["ok"]]

    offenders = _offenders(report, broken)
    assert not offenders, f"images that did not load, by page:\n{_fmt(offenders)}"
    for name, page in _opened(report).items():
        in_html = (SITE / name).read_text(encoding="utf-8").count("<img ")
        assert len(page["images"]) >= in_html, f"{name}: {in_html} <img> in the HTML"
    chapters = {
        n: len(p["images"]) for n, p in _opened(report).items() if n.startswith("chapters/")
    }
    assert chapters and all(chapters.values()), f"chapters without a figure: {chapters}"


def test_widgets_drawn(report):
    with_state = [n for n in _opened(report) if WIDGET_STATE in (SITE / n).read_text("utf-8")]
    assert EXPLORER_PAGE in with_state, f"{EXPLORER_PAGE} should embed its explorer's widgets"

    def undrawn(page):
        w = page["widgets"]
        return f"{w['drawn']} of {w['views']} widget views drawn" if w["drawn"] < w["views"] else ""

    offenders = _offenders(report, undrawn)
    for name in with_state:
        if report[name]["widgets"]["views"] == 0:
            offenders[name] = "widget state embedded, but no widget view on the page"
    assert not offenders, f"widgets not drawn, by page:\n{_fmt(offenders)}"


def test_internal_links_and_anchors_resolve(report):
    offenders = {
        name: page["links"]["broken"] for name, page in report.items() if page["links"]["broken"]
    }
    assert not offenders, f"broken same-site links, by page:\n{_fmt(offenders)}"
    checked = sum(page["links"]["checked"] for page in report.values())
    assert checked > 100


def test_nothing_clipped_at_1300_px(report):
    def clipped(page):
        out = list(page["clipped"])
        scroll = page["page_scroll"]
        if scroll["scrollWidth"] > scroll["width"]:
            out.append({"kind": "page scrolls sideways", **scroll})
        return out

    offenders = _offenders(report, clipped)
    assert not offenders, (
        "content cut, running past the text column, or with a stray scrollbar at a 1300 px "
        f"window (book/_static/scanbook.css), by page:\n{_fmt(offenders)}"
    )


def test_outputs_wrap_instead_of_scrolling(report):
    def scrolling(page):
        return [s["text"][:80] for s in page["scrollers"] if s["output"]]

    offenders = _offenders(report, scrolling)
    assert not offenders, f"cell outputs that scroll sideways at 1300 px:\n{_fmt(offenders)}"


def test_one_search_field(report):
    def searches(page):
        return page["search"] if len(page["search"]) != 1 else []

    offenders = _offenders(report, searches)
    assert not offenders, (
        f"pages not showing exactly one search field (outside the text):\n{_fmt(offenders)}"
    )


def test_chapters_offer_their_notebook(report):
    chapters = {n: p for n, p in _opened(report).items() if n.startswith("chapters/")}
    assert len(chapters) >= 10
    problems = {}
    for name, page in chapters.items():
        stem = Path(name).stem
        mine = [d for d in page["ipynb"] if d["href"].endswith(f"/{stem}.ipynb")]
        if not mine:
            problems[name] = f"no download link to {stem}.ipynb (links: {page['ipynb']})"
        elif not all(d["status"] == 200 and d["notebook"] for d in mine):
            problems[name] = mine
    assert not problems, f"chapters whose .ipynb cannot be downloaded:\n{_fmt(problems)}"


def test_explorer_follows_slider_and_play(server):
    chromium, node = _chromium(), _node()
    run = subprocess.run(
        [*node, str(CHECK_EXPLORER), chromium, server + EXPLORER_PAGE],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, f"check_explorer.mjs:\n{run.stdout}\n{run.stderr}"
    assert run.stdout.count("ok  ") == 4, run.stdout


def test_launch_links_name_files_in_the_repository(report):
    """The Colab, Binder and repository links of each chapter open its own notebook."""
    pattern = re.compile(
        r'href="https://(?:colab\.research\.google\.com/github|mybinder\.org/v2/gh)/[^"]*?'
        r'(?:/blob/[^/"]+/|urlpath=tree/)([^"?#]+\.ipynb)"'
    )
    problems = {}
    for name in _opened(report):
        if not name.startswith("chapters/"):
            continue
        targets = set(pattern.findall((SITE / name).read_text(encoding="utf-8")))
        stem = Path(name).stem
        if not targets:
            problems[name] = "no Colab or Binder link"
        elif (
            targets != {f"chapters/{stem}.ipynb"}
            or not (ROOT / "chapters" / f"{stem}.ipynb").is_file()
        ):
            problems[name] = sorted(targets)
    assert not problems, f"launch links that do not open the chapter's notebook:\n{_fmt(problems)}"

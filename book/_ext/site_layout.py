"""The book's page layout: its stylesheet, one search field, and no script declared twice.

A Sphinx extension (``_config.yml``: ``sphinx.local_extensions``). It

* serves ``book/_static/`` and links ``scanbook.css`` from every page: a wider text column at
  1300 px, wrapped output text, display maths that scroll inside their own box
  (tests/test_browser.py checks the result in Chromium);
* leaves the theme's top navbar empty (``navbar_persistent: []``): PyData Sphinx Theme 0.17
  fills it with a search field unless told otherwise, and the Book Theme already has one in
  the sidebar, so every page showed two. With nothing in it the navbar is not drawn;
* names the colour mode the theme starts in (``default_mode``: ``auto``, which follows the
  reader's system), so the theme no longer logs "Got invalid theme mode" on a first visit;
* drops repeated inline scripts from each page: sphinx-thebe adds its settings script twice
  under Jupyter Book 1.x, and the second copy's ``const THEBE_JS_URL`` throws a SyntaxError.
"""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).resolve().parents[1] / "_static"
STYLESHEET = "scanbook.css"


def _configure(app, config):
    static = str(STATIC)
    if static not in config.html_static_path:
        config.html_static_path.append(static)
    options = dict(config.html_theme_options or {})
    options.setdefault("navbar_persistent", [])
    config.html_theme_options = options
    context = dict(config.html_context or {})
    context.setdefault("default_mode", "auto")
    config.html_context = context


def _drop_repeated_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen = set()
    kept = []
    for script in scripts:
        attributes = getattr(script, "attributes", {}) or {}
        # an inline script's filename is None or "" depending on who added it
        key = (str(getattr(script, "filename", script) or ""), attributes.get("body"))
        if key in seen:
            continue
        seen.add(key)
        kept.append(script)
    scripts[:] = kept


def setup(app):
    app.connect("config-inited", _configure)
    app.add_css_file(STYLESHEET)
    app.connect("html-page-context", _drop_repeated_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

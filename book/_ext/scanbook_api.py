"""The API reference of ``scanbook``, linked both ways with the chapters that derive it.

Three things, all computed from the code at build time so that the reference cannot drift
from the library:

* The ``scanbook-api`` directive (``.. scanbook-api:: scanbook.ops`` on a page of
  ``book/api/``) documents one module: its docstring, then every name of its ``__all__`` with
  autodoc (functions, classes) or as data. An object that several modules export (``sb.scan`` is
  ``sb.algorithms.scan``) is documented once, where it is defined (:func:`public_api` picks the
  place), and listed as a re-export everywhere else, linked to that entry.
* Every docstring autodoc renders has its chapter references turned into links
  (:func:`linkify`): "Defined in chapter 5" links to the label at the top of
  ``chapters/05_*.ipynb`` (``(ch-backprop)=``), "Chapter 2, exercise 3" to the exercise
  ``ch2-ex3`` when the chapter has that label.
* Every chapter page gets a last section, "Library reference for this chapter", listing (with
  links) the public objects whose docstring says "Defined in chapter N", and the graders of the
  chapter's exercises (docstring "Chapter N, exercise k"). The notebooks are not edited.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import pkgutil
import re
from dataclasses import dataclass, field
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx import addnodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

logger = logging.getLogger(__name__)

PACKAGE = "scanbook"
ROOT = Path(__file__).resolve().parents[2]
CHAPTER_FILE = re.compile(r"^(\d+)_[^/]*\.ipynb$")
CHAPTER_DOC = re.compile(r"^chapters/(\d+)_[^/]*$")
LABEL = re.compile(r"^\s*\(([A-Za-z0-9_.:-]+)\)=\s*$", re.MULTILINE)
EXERCISE_LABEL = re.compile(r"^:label:\s*(ch\d+-ex\d+)\s*$", re.MULTILINE)

# "Defined in chapter 5": the chapter that derives an object (the back-links use only this).
DEFINED_IN = re.compile(r"\bDefined\s+in\s+chapter\s+(\d+)\b")
# "Chapter 2, exercise 3": what a grader grades.
EXERCISE_OF = re.compile(r"\bChapter\s+(\d+),\s+exercise\s+(\d+)\b")
# Any mention of one chapter or several: "chapter 5", "chapters 1 and 2", "chapters 3-5",
# "chapters 1, 3 and 4". Group 1 is the word, group 2 the numbers.
MENTION = re.compile(
    r"\b([Cc]hapters?)(\s+)(\d+(?:(?:\s*[-\u2013]\s*|,\s*|\s+and\s+|\s+or\s+)\d+)*)"
    r"(?:,\s+exercise\s+(\d+))?\b"
)
# A chapter of some other work, not of this book.
FOREIGN = re.compile(r"(?:GPU\s+Gems(?:\s+\d+)?|[Tt]hesis|[Bb]ook\s+of)\W{0,3}$")
NUMBER = re.compile(r"\d+")


# -- chapters and their labels ---------------------------------------------------------------


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8")).get("cells", [])


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def chapter_labels(root: Path = ROOT) -> dict[int, str]:
    """``{N: label}``: the ``(label)=`` target at the top of each ``chapters/NN_*.ipynb``."""
    labels: dict[int, str] = {}
    for path in sorted((root / "chapters").glob("*.ipynb")):
        match = CHAPTER_FILE.match(path.name)
        if not match:
            continue
        for cell in _cells(path):
            if cell.get("cell_type") != "markdown":
                continue
            found = LABEL.search(_source(cell))
            if found:
                labels[int(match.group(1))] = found.group(1)
            break
    return labels


def chapter_docs(root: Path = ROOT) -> dict[int, str]:
    """``{N: docname}``: ``{1: "chapters/01_serial_scans", ...}``."""
    out = {}
    for path in sorted((root / "chapters").glob("*.ipynb")):
        match = CHAPTER_FILE.match(path.name)
        if match:
            out[int(match.group(1))] = f"chapters/{path.stem}"
    return out


def exercise_labels(root: Path = ROOT) -> set[str]:
    """Every ``chN-exK`` label of an ``{exercise}`` block in the chapters."""
    found: set[str] = set()
    for path in sorted((root / "chapters").glob("*.ipynb")):
        for cell in _cells(path):
            if cell.get("cell_type") == "markdown":
                found.update(EXERCISE_LABEL.findall(_source(cell)))
    return found


# -- chapter mentions into links -------------------------------------------------------------


ROLE_SPAN = re.compile(r":[\w:.+-]+:`[^`]*`")


def _code_spans(text: str) -> list[tuple[int, int]]:
    """Where ``text`` has inline code (``...``, over lines too) or a role (:ref:`...`)."""
    spans = [m.span() for m in INLINE_LITERAL.finditer(text)]
    return spans + [m.span() for m in ROLE_SPAN.finditer(text)]


def _ref(number: str, labels: dict[int, str]) -> str:
    return f":ref:`{number} <{labels[int(number)]}>`"


def linkify(text: str, labels: dict[int, str], exercises: set[str] = frozenset()) -> str:
    """Turn the chapter mentions of reStructuredText ``text`` into ``:ref:`` links.

    "Defined in chapter 5" becomes "Defined in :ref:`chapter 5 <ch-backprop>`";
    "chapters 1 and 2" links each number; "Chapter 2, exercise 3" links to ``ch2-ex3`` when
    that label is in ``exercises`` (else to the chapter). A mention is left alone when the
    number is not a chapter of the book, when it is inside inline code, or when it names a
    chapter of another work ("GPU Gems 3, chapter 39").
    """

    spans = _code_spans(text)

    def replace(match: re.Match) -> str:
        word, space, numbers, exercise = match.groups()
        start = match.start()
        if any(a <= start < b for a, b in spans) or FOREIGN.search(
            text[max(0, start - 40) : start]
        ):
            return match.group(0)
        found = [int(n) for n in NUMBER.findall(numbers)]
        if not found or any(n not in labels for n in found):
            return match.group(0)
        if exercise is not None and len(found) == 1:
            n, k = found[0], int(exercise)
            label = f"ch{n}-ex{k}"
            target = label if label in exercises else labels[n]
            return f":ref:`{word} {n}, exercise {k} <{target}>`"
        if len(found) == 1:
            linked = f":ref:`{word} {found[0]} <{labels[found[0]]}>`"
        else:
            linked = word + space + NUMBER.sub(lambda m: _ref(m.group(0), labels), numbers)
        if exercise is not None:
            linked += match.group(0)[len(word) + len(space) + len(numbers) :]
        return linked

    return MENTION.sub(replace, text)


# -- the public API --------------------------------------------------------------------------


@dataclass
class Entry:
    """One public name: ``name`` (``scanbook.viz.plot_work_depth``), the module whose
    ``__all__`` lists it, where it is documented (``canonical``), its kind (``module``,
    ``function``, ``class``, ``exception`` or ``data``) and the chapters its docstring says
    define it (``Defined in chapter N``) or whose exercise it grades."""

    name: str
    module: str
    canonical: str
    kind: str
    defined_in: tuple[int, ...] = ()
    exercise: tuple[int, int] | None = None
    summary: str = ""

    @property
    def is_alias(self) -> bool:
        return self.name != self.canonical


@dataclass
class Api:
    modules: list[str]
    entries: list[Entry] = field(default_factory=list)

    def by_module(self, module: str) -> list[Entry]:
        return [e for e in self.entries if e.module == module]

    def canonical(self) -> list[Entry]:
        return [e for e in self.entries if not e.is_alias]

    def names(self) -> list[str]:
        return [e.name for e in self.entries]


def _public(name: str) -> bool:
    return not any(part.startswith("_") for part in name.split("."))


def public_modules(package: str = PACKAGE) -> list[str]:
    """Every module of ``package`` with no ``_`` in its dotted name, imported, sorted."""
    pkg = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(pkg.__path__, f"{package}."):
        if _public(info.name):
            names.append(info.name)
    for name in names:
        importlib.import_module(name)
    return sorted(set(names))


def kind_of(obj, name: str) -> str:
    if inspect.ismodule(obj):
        return "module" if obj.__name__.split(".")[0] == PACKAGE else "data"
    owner = getattr(obj, "__module__", None) or ""
    if inspect.isclass(obj) and owner.split(".")[0] == PACKAGE:
        return "exception" if issubclass(obj, BaseException) else "class"
    if (inspect.isroutine(obj) or callable(obj)) and not inspect.isclass(obj):
        if owner.split(".")[0] == PACKAGE and hasattr(obj, "__name__"):
            return "function"
    return "data"


def docstring(obj, kind: str) -> str:
    if kind == "data":
        return ""
    return inspect.getdoc(obj) or ""


def summary_of(doc: str) -> str:
    """The first sentence-ish line of a docstring (its first paragraph, joined, one line)."""
    para = doc.strip().split("\n\n")[0]
    return " ".join(line.strip() for line in para.splitlines())


def public_api(package: str = PACKAGE) -> Api:
    """Every name in the ``__all__`` of every public module, and where each is documented.

    An object exported by several modules is documented once: in the public module that
    defines it (its ``__module__``) when that module exports it, else in the deepest module
    exporting it (packages re-export their submodules' names). Modules are documented under
    their own name.
    """
    api = Api(public_modules(package))
    exported: dict[tuple, list[tuple[str, str]]] = {}
    rows = []
    for modname in api.modules:
        module = importlib.import_module(modname)
        # from the module's namespace: a module-level __getattr__ may answer for "__all__"
        for attr in module.__dict__.get("__all__", []):
            obj = getattr(module, attr)
            kind = kind_of(obj, attr)
            if kind == "module" and not (_public(obj.__name__) and obj.__name__ in api.modules):
                continue
            rows.append((modname, attr, obj, kind))
            # equal constants may be one object (small ints): data is the same name too
            key = (id(obj), attr) if kind == "data" else (id(obj),)
            exported.setdefault(key, []).append((modname, attr))
    for modname, attr, obj, kind in rows:
        if kind == "module":
            canonical = obj.__name__
        else:
            places = exported[(id(obj), attr) if kind == "data" else (id(obj),)]
            home = getattr(obj, "__module__", None) if kind != "data" else None
            at_home = [p for p in places if p[0] == home]
            chosen = at_home[0] if at_home else max(places, key=lambda p: (p[0].count("."), p[0]))
            canonical = f"{chosen[0]}.{chosen[1]}"
        doc = docstring(obj, kind) if kind != "module" else (obj.__doc__ or "")
        defined = tuple(sorted({int(n) for n in DEFINED_IN.findall(doc)}))
        ex = EXERCISE_OF.search(doc) if kind == "function" else None
        api.entries.append(
            Entry(
                name=f"{modname}.{attr}",
                module=modname,
                canonical=canonical,
                kind=kind,
                defined_in=defined if kind != "module" else (),
                exercise=(int(ex.group(1)), int(ex.group(2))) if ex else None,
                summary=summary_of(doc),
            )
        )
    return api


def first_sentence(text: str) -> str:
    """``text`` up to its first ". " outside inline code, without the full stop."""
    for m in re.finditer(r"\.\s", text + " "):
        if text.count("``", 0, m.start()) % 2 == 0:
            return text[: m.start()]
    return text.rstrip(".")


def chapter_entries(api: Api, chapter: int) -> tuple[list[Entry], list[Entry]]:
    """``(defined, graders)``: the documented objects defined in ``chapter`` and the graders of
    its exercises (by exercise number)."""
    defined = [e for e in api.canonical() if chapter in e.defined_in and e.exercise is None]
    graders = sorted(
        (e for e in api.canonical() if e.exercise and e.exercise[0] == chapter),
        key=lambda e: (e.exercise, e.name),
    )
    return defined, graders


def api_fingerprint(api: Api) -> str:
    text = "\n".join(
        f"{e.name} {e.canonical} {e.kind} {e.defined_in} {e.exercise} {e.summary}"
        for e in api.entries
    )
    text += Path(__file__).read_text(encoding="utf-8")  # and how this extension renders it
    return hashlib.sha256(text.encode()).hexdigest()


# -- rST for one module ----------------------------------------------------------------------

ROLE = {"function": "func", "class": "class", "exception": "exc", "data": "data", "module": "mod"}
AUTO = {"function": "autofunction", "class": "autoclass", "exception": "autoexception"}


def _data_comment(modname: str, attr: str) -> list[str]:
    """The ``#:`` comment above a module-level name, if any."""
    from sphinx.pycode import ModuleAnalyzer

    try:
        docs = ModuleAnalyzer.for_module(modname).find_attr_docs()
    except Exception:  # noqa: BLE001 (no source: nothing to show)
        return []
    return list(docs.get(("", attr), []))


def _source_comment(modname: str, attr: str) -> list[str]:
    """The ``#`` comment lines right above ``attr = ...`` in the module's source, if any."""
    try:
        lines = inspect.getsource(importlib.import_module(modname)).splitlines()
    except (OSError, TypeError):
        return []
    assign = re.compile(rf"^{re.escape(attr)}\s*(?::[^=]*)?=")
    for i, line in enumerate(lines):
        if assign.match(line):
            block = []
            for above in reversed(lines[:i]):
                if not above.startswith("#"):
                    break
                block.insert(0, above.lstrip("#").strip())
            return block
    return []


def _value_text(obj) -> str:
    """A short description of a module-level value for its entry."""
    import dataclasses

    cls = type(obj)
    if dataclasses.is_dataclass(obj) and cls.__module__.split(".")[0] == PACKAGE:
        shown = [
            f"{f.name} ``{getattr(obj, f.name)!r}``"
            for f in dataclasses.fields(obj)
            if isinstance(getattr(obj, f.name), str | int | float | bool)
        ]
        return f"a :class:`~{cls.__module__}.{cls.__qualname__}`" + (
            f" ({', '.join(shown)})" if shown else ""
        )
    if isinstance(obj, dict) and obj and all(isinstance(k, str) for k in obj):
        keys = ", ".join(f"``{k!r}``" for k in list(obj)[:12])
        more = ", ..." if len(obj) > 12 else ""
        return f"a ``dict`` of {len(obj)} entries, keys {keys}{more}"
    text = repr(obj)
    if len(text) <= 90 and "\n" not in text and "`" not in text:
        return f"``{text}``"
    size = f" of {len(obj)} entries" if hasattr(obj, "__len__") else ""
    return f"a ``{cls.__name__}``{size}"


def module_rst(
    api: Api, modname: str, labels: dict[int, str] | None = None, exercises: set[str] = frozenset()
) -> list[str]:
    """The reStructuredText that documents ``modname`` (what ``scanbook-api`` parses)."""
    labels = chapter_labels() if labels is None else labels
    module = importlib.import_module(modname)
    lines = [f".. automodule:: {modname}", ""]
    entries = api.by_module(modname)
    subs = [e for e in entries if e.kind == "module"]
    aliases = [e for e in entries if e.kind != "module" and e.is_alias]
    own = [e for e in entries if e.kind != "module" and not e.is_alias]
    if subs:
        lines += ["**Submodules:** " + ", ".join(f":mod:`{e.canonical}`" for e in subs), ""]
    if aliases:
        lines += [f"**Also importable from** ``{modname}``:", ""]
        for e in aliases:
            short = e.name.rsplit(".", 1)[1]
            lines.append(f"* ``{short}``: :{ROLE[e.kind]}:`{e.canonical}`")
        lines.append("")
    for e in own:
        attr = e.name.rsplit(".", 1)[1]
        if e.kind in AUTO:
            lines.append(f".. {AUTO[e.kind]}:: {e.name}")
            if e.kind in ("class", "exception"):
                lines += ["   :members:", "   :show-inheritance:"]
            lines.append("")
        else:
            value = getattr(module, attr)
            lines += [f".. py:data:: {e.name}", ""]
            comment = _data_comment(modname, attr) or _source_comment(modname, attr)
            body = [*comment, "", f"Value: {_value_text(value)}."] if comment else []
            body = body or [f"Value: {_value_text(value)}."]
            body = linkify("\n".join(body), labels, exercises).split("\n")
            lines += [f"   {line}" if line else "" for line in body]
            lines.append("")
    return lines


def _title(text: str, char: str = "-") -> list[str]:
    return [text, char * len(text), ""]


class ScanbookApi(SphinxDirective):
    """``.. scanbook-api:: scanbook.ops``: document one module of the library under a section
    of its own (a subsection of the page). ``:recursive:`` also documents every public
    submodule, each in its own section; ``:optional:`` produces nothing when the module does not
    exist (a package that is not written yet)."""

    required_arguments = 1
    has_content = False
    option_spec = {"recursive": directives.flag, "optional": directives.flag}

    def run(self):
        modname = self.arguments[0].strip()
        app = self.env.app
        api = _api(app)
        if modname not in api.modules:
            if "optional" in self.options:
                return []
            raise self.error(f"scanbook-api: {modname!r} is not a public module of {PACKAGE}")
        todo = [modname]
        if "recursive" in self.options:
            todo += [m for m in api.modules if m.startswith(modname + ".")]
        rst: list[str] = []
        documented = self.env.__dict__.setdefault("scanbook_documented", {})
        for mod in todo:
            source = inspect.getsourcefile(importlib.import_module(mod))
            if source:
                self.env.note_dependency(source)
            documented[mod] = self.env.docname
            rst += _title(f"``{mod}``")
            rst += module_rst(api, mod, app._scanbook_labels, app._scanbook_exercises)
        node = nodes.section()
        node.document = self.state.document
        nested_parse_with_titles(
            self.state, StringList(rst, source=f"<scanbook-api {modname}>"), node
        )
        return node.children


class ScanbookApiIndex(SphinxDirective):
    """``.. scanbook-api-index::``: a table of every public module, what it holds (the first
    sentence of its docstring) and the chapters that define its objects, linked."""

    has_content = False

    def run(self):
        api = _api(self.env.app)
        labels = self.env.app._scanbook_labels
        rows = [
            ".. list-table::",
            "   :header-rows: 1",
            "   :widths: 30 55 15",
            "",
            "   * - Module",
            "     - What it holds",
            "     - Chapters",
        ]
        for mod in api.modules:
            doc = importlib.import_module(mod).__doc__ or ""
            chapters = sorted(
                {n for e in api.entries if e.module == mod and not e.is_alias for n in e.defined_in}
                | {int(n) for n in DEFINED_IN.findall(doc)}
            )
            first = first_sentence(summary_of(doc))
            links = ", ".join(f":ref:`{n} <{labels[n]}>`" for n in chapters if n in labels)
            rows += [f"   * - :mod:`{mod}`", f"     - {first}", f"     - {links}"]
        node = nodes.container()
        node.document = self.state.document
        nested_parse_with_titles(self.state, StringList(rows, source="<scanbook-api-index>"), node)
        return node.children


# -- Sphinx events ---------------------------------------------------------------------------


def _api(app) -> Api:
    api = getattr(app, "_scanbook_api", None)
    if api is None:
        api = public_api()
        app._scanbook_api = api
        app._scanbook_labels = chapter_labels(Path(app.srcdir))
        app._scanbook_exercises = exercise_labels(Path(app.srcdir))
    return api


INLINE_LITERAL = re.compile(r"``.+?``", re.DOTALL)


def literal_suffixes(text: str) -> str:
    """``def``s (a plural of inline code) is not valid reStructuredText: the literal must end at
    a word boundary. Write it ``def``\\ s, which renders as "defs" with ``def`` in code."""
    out, pos = [], 0
    for m in INLINE_LITERAL.finditer(text):
        out.append(text[pos : m.end()])
        if m.end() < len(text) and text[m.end()].isalnum():
            out.append("\\ ")
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


MULTI_IVAR = re.compile(r"^(\s*):ivar (\w+(?:,\s*\w+)+):(?: (.*))?$", re.MULTILINE)


def _skip_member(app, what, name, obj, skip, options):
    """A NamedTuple's fields ("Alias for field number 0"): the class docstring describes them."""
    if what in ("class", "exception") and (getattr(obj, "__doc__", None) or "").startswith(
        "Alias for field number"
    ):
        return True
    return None


def _split_ivar(m: re.Match) -> str:
    indent, names, text = m.groups()
    if not text:
        return m.group(0)
    return "\n".join(f"{indent}:ivar {n.strip()}: {text}" for n in names.split(","))


def _process_docstring(app, what, name, obj, options, lines):
    if not name.startswith(PACKAGE):
        return
    _api(app)
    text = "\n".join(lines)
    module = name if what == "module" else getattr(obj, "__module__", None)
    module = module or name.rsplit(".", 1)[0]
    new = linkify(absolute_refs(text, module), app._scanbook_labels, app._scanbook_exercises)
    new = literal_suffixes(new)
    # napoleon writes "Attributes: rtol, atol: ..." as ":ivar rtol, atol:", which Sphinx reads as
    # the type "rtol," of "atol": one field per name instead
    new = MULTI_IVAR.sub(_split_ivar, new)
    if new != text:
        lines[:] = new.split("\n")


ROLE_TEXT = re.compile(r":[\w:]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`")


def plain_summary(summary: str) -> str:
    """A docstring's first sentence as plain text: roles by their text, no inline markup, no
    "Defined in chapter N"."""
    text = first_sentence(summary)
    text = ROLE_TEXT.sub(
        lambda m: m.group(1).rsplit(".", 1)[-1] if "." in m.group(1) else m.group(1), text
    )
    text = text.replace("``", "").replace("**", "")
    text = re.sub(r"(?<![\w*])\*(?=\w)([^*]+)\*", r"\1", text)
    text = DEFINED_IN.sub("", text).strip()
    return text.rstrip(".:;, ")


AREAS_LAST = ("scanbook.viz", "scanbook.bench")


def _library_section(app, chapter: int, document) -> nodes.section | None:
    api = _api(app)
    defined, graders = chapter_entries(api, chapter)
    if not defined and not graders:
        return None
    tools = [e for e in defined if e.canonical.startswith(AREAS_LAST)]
    defined = [e for e in defined if e not in tools]
    section = nodes.section(ids=["library-reference"], names=["library reference for this chapter"])
    section += nodes.title("", "Library reference for this chapter")
    intro = nodes.paragraph("", "The public objects of scanbook that this chapter derives, as the ")
    intro += addnodes.pending_xref(
        "",
        nodes.inline("", "API reference"),
        refdomain="std",
        reftype="doc",
        reftarget="/book/api/index",
        refexplicit=True,
        refwarn=True,
    )
    intro += nodes.Text(" documents them, and the graders of its exercises.")
    section += intro
    groups = (
        ("Defined in this chapter", defined),
        ("Its figures and benchmarks", tools),
        ("The graders of its exercises", graders),
    )
    public = public_names(api)
    for heading, group in groups:
        if not group:
            continue
        section += nodes.rubric("", heading)
        items = nodes.bullet_list()
        for e in group:
            classes = ["xref", "py", f"py-{ROLE[e.kind]}"]
            shown = public.get(e.canonical, e.canonical)
            ref = addnodes.pending_xref(
                "",
                nodes.literal(shown, shown, classes=classes),
                refdomain="py",
                reftype=ROLE[e.kind],
                reftarget=e.canonical,
                refexplicit=True,
                refwarn=True,
            )
            para = nodes.paragraph("", "", ref)
            if e.exercise:
                n, k = e.exercise
                para += nodes.Text(" (")
                label = f"ch{n}-ex{k}"
                if label in app._scanbook_exercises:
                    para += addnodes.pending_xref(
                        "",
                        nodes.inline("", f"exercise {n}.{k}"),
                        refdomain="std",
                        reftype="ref",
                        reftarget=label,
                        refexplicit=True,
                        refwarn=True,
                    )
                else:
                    para += nodes.Text(f"exercise {n}.{k}")
                para += nodes.Text(")")
            summary = plain_summary(e.summary)
            if summary:
                para += nodes.Text(": " + summary + ".")
            items += nodes.list_item("", para)
        section += items
    return section


def public_names(api: Api) -> dict[str, str]:
    """``{canonical: the shortest public name of the object}``: ``scanbook.linear_recurrence``
    for ``scanbook.recurrence.linear_recurrence``, ``scanbook.exercises.check_blelloch`` for
    ``scanbook.exercises.ch02.check_blelloch``."""
    out: dict[str, str] = {}
    for e in api.entries:
        best = out.get(e.canonical)
        if best is None or (e.name.count("."), len(e.name)) < (best.count("."), len(best)):
            out[e.canonical] = e.name
    return out


def _add_library_section(app, doctree):
    match = CHAPTER_DOC.match(app.env.docname)
    if not match:
        return
    top = next(iter(doctree.findall(nodes.section)), None)
    if top is None:
        return
    section = _library_section(app, int(match.group(1)), doctree)
    if section is not None:
        top += section
        doctree.note_implicit_target(section, section)


def _outdated(app, env, added, changed, removed):
    """Re-read the chapters and the API pages when the public API or its docstrings changed."""
    fingerprint = api_fingerprint(_api(app))
    if getattr(env, "scanbook_api_fingerprint", None) == fingerprint:
        return []
    env.scanbook_api_fingerprint = fingerprint
    return [
        doc
        for doc in env.found_docs
        if CHAPTER_DOC.match(doc) or doc.startswith("book/api/") or doc == "book/instructor"
    ]


# Names a docstring or a type annotation may mention that this site does not document: other
# libraries (no intersphinx: the site is built offline) and Python's built-ins.
EXTERNAL_ROOTS = frozenset(
    """numpy np jax jnp optax numba cuda cupy matplotlib plt mpl ipywidgets scipy sklearn tqdm
    typing collections abc dataclasses functools itertools pathlib Path os sys subprocess
    contextlib concurrent types enum re json io ctypes argparse builtins threading weakref
    int float complex str bytes bool None list tuple dict set frozenset object type slice
    range Exception ValueError TypeError RuntimeError NotImplementedError AssertionError
    TimeoutError KeyError IndexError OSError ImportError ModuleNotFoundError Ellipsis
    Callable Iterable Iterator Sequence Mapping Any Optional Union Literal ArrayLike NDArray
    Array Generator PRNGKey Mesh PartitionSpec NamedSharding Figure Axes""".split()
)


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a.split("."), b.split("."), strict=False):
        if x != y:
            break
        n += 1
    return n


def _resolve_by_suffix(app, env, node, contnode):
    """A short Python reference the domain did not find (``:func:`time_fn``` in a module that
    re-exports it, ``:mod:`.scans```): the documented object whose full name ends with it,
    closest to the current module; none when two are equally close (``apply`` of which model?)."""
    if node.get("refdomain") != "py":
        return None
    from sphinx.util.nodes import make_refnode

    name = node["reftarget"].lstrip(".~")
    if not name or any(part.startswith("_") for part in name.split(".")):
        return None
    domain = env.get_domain("py")
    aliases = {e.name: e.canonical for e in _api(app).entries if e.is_alias}
    if name in aliases and aliases[name] in domain.objects:  # sb.scan is sb.algorithms.scan
        obj = domain.objects[aliases[name]]
        return make_refnode(app.builder, node["refdoc"], obj.docname, obj.node_id, contnode, name)
    found = [full for full in domain.objects if full == name or full.endswith("." + name)]
    if not found:
        return None
    here = node.get("py:module") or ""
    score = {full: _common_prefix(full, here) for full in found}
    best = max(score.values())
    top = [full for full in found if score[full] == best]
    if len(top) != 1:
        return None
    obj = domain.objects[top[0]]
    return make_refnode(app.builder, node["refdoc"], obj.docname, obj.node_id, contnode, top[0])


def _quiet_unresolvable(app, domain, node):
    """No warning for a Python reference to another library, a built-in, or a private name of
    scanbook (docstrings may mention ``_damped_solve``; the reference documents only the public
    API): they stay as code. Any other unresolved reference warns (and fails the -W build)."""
    if domain is None or domain.name != "py":
        return None
    target = node["reftarget"].lstrip(".~")
    parts = target.split(".")
    if parts[0] in EXTERNAL_ROOTS or any(part.startswith("_") for part in parts):
        return True
    if _lookup(target, node.get("py:module") or "") is not None:
        return True  # a real object of scanbook outside every __all__: not in the reference
    return None


_MISSING = object()


def _lookup(target: str, module: str):
    """The object ``target`` names, seen from ``module`` (absolute, then relative to the module
    and its packages), or None."""
    bases = [""]
    parts = module.split(".") if module else []
    bases += [".".join(parts[:k]) for k in range(len(parts), 0, -1)]
    for base in bases:
        full = f"{base}.{target}" if base else target
        if full.split(".")[0] != PACKAGE:
            continue
        obj = _import_path(full)
        if obj is not _MISSING:
            return full
    return None


def _import_path(full: str):
    parts = full.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr, _MISSING)
            if obj is _MISSING:
                return _MISSING
        return obj
    return _MISSING


RELATIVE_ROLE = re.compile(r"(:(?:py:)?(?:mod|func|class|data|obj|exc|meth|attr):`)(~?)(\.[\w.]+)`")


def absolute_refs(text: str, module: str) -> str:
    """``:mod:`.scans``` in a docstring of ``scanbook.kernels.numba_cuda.registry`` becomes
    ``:mod:`~scanbook.kernels.numba_cuda.scans``` (the sibling module, as ``from .scans``
    would import it), so that it cannot match another module of the same name."""
    package = module.rsplit(".", 1)[0] if "." in module else module

    def fix(match: re.Match) -> str:
        role, tilde, target = match.groups()
        for base in (package, module):
            full = base + target
            if _import_path(full) is not _MISSING:
                return f"{role}~{full}`"
        return match.group(0)

    return RELATIVE_ROLE.sub(fix, text)


def _purge(app, env, docname):
    documented = getattr(env, "scanbook_documented", {})
    for mod in [m for m, doc in documented.items() if doc == docname]:
        del documented[mod]


def _merge(app, env, docnames, other):
    env.__dict__.setdefault("scanbook_documented", {}).update(
        {m: d for m, d in getattr(other, "scanbook_documented", {}).items() if d in docnames}
    )


def _check(app, env):
    """Every public module is documented on some API page (warns, so the -W build fails)."""
    if not any(doc.startswith("book/api/") for doc in env.found_docs):
        return  # a build of some pages only (another table of contents)
    documented = getattr(env, "scanbook_documented", {})
    missing = [m for m in _api(app).modules if m not in documented]
    if missing:
        logger.warning(
            "scanbook modules documented on no API page (add a scanbook-api directive to a page "
            "of book/api/): %s",
            ", ".join(missing),
        )


def setup(app):
    app.setup_extension("sphinx.ext.autodoc")
    app.add_directive("scanbook-api", ScanbookApi)
    app.add_directive("scanbook-api-index", ScanbookApiIndex)
    app.connect("autodoc-process-docstring", _process_docstring, priority=600)  # after napoleon
    # before the collectors (priority 500) so that the page's table of contents lists it
    app.connect("doctree-read", _add_library_section, priority=400)
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("env-get-outdated", _outdated)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.connect("env-check-consistency", _check)
    app.connect("missing-reference", _resolve_by_suffix)
    app.connect("warn-missing-reference", _quiet_unresolvable)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}

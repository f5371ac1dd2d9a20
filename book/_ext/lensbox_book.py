"""The book's own Sphinx extension: what Jupyter Book does not do by itself.

* Marks the build (``LENSBOX_BOOK_BUILD=1``, so :func:`lensbox.runtime.plotting.glue` stores values for
  myst-nb) and sets ``LENSBOX_CLAIMS_DIR`` (where :func:`lensbox.claim` records the claims each
  executed chapter checks), for every kernel the build starts.
* ``{lensbox-claims}``: the "Paper vs this book" table, filled at write time from the claim
  records of the chapters this build (or an earlier one, for chapters not re-executed) ran.
* Resolves a link to one of lensbox's re-exports (``lensbox.scale``) to where autosummary
  documented it (``lensbox.runtime.scale.scale``); the API pages themselves are autosummary's.
* Drops ipywidgets views and their saved state from the static pages (the page has no kernel;
  each widget's default figure is drawn above it), and loads no widget JavaScript.
* With ``LENSBOX_PARALLEL_EXECUTION=1`` executes the chapters side by side, one per core
  (jupyter-cache's parallel executor), before Sphinx reads them.
* Writes a Colab-ready notebook per chapter (``lensbox_colab``) into ``<html>/colab/`` and points
  the pages' Colab buttons at them, on branch ``lensbox_colab_branch`` of the repository in
  ``_config.yml`` (where the publishing workflow puts the site).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import nbformat
from docutils import nodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

import kernel_wakeups
import lensbox_colab

LOGGER = logging.getLogger(__name__)
BUILD_ENV = "LENSBOX_BOOK_BUILD"  # read by lensbox.runtime.plotting.in_book_build
CLAIMS_ENV = "LENSBOX_CLAIMS_DIR"
SMOKE_TIMEOUT = 300  # seconds per cell at smoke scale; every smoke cell takes seconds


# ----------------------------------------------------------------------------- claims


def claims_dir(app) -> Path:
    return Path(os.environ[CLAIMS_ENV])


class claims_node(nodes.General, nodes.Element):
    """Placeholder replaced by the claims table once every chapter has run."""


class ClaimsDirective(SphinxDirective):
    """``{lensbox-claims}``: the table of every claim the executed chapters checked."""

    def run(self):
        self.env.lensbox_claims_docs = getattr(
            self.env, "lensbox_claims_docs", set()
        ) | {self.env.docname}
        return [claims_node()]


def read_claims(directory: Path, chapters: list[str]) -> list[dict]:
    """Every claim record in ``directory``: the files of ``chapters`` (notebook names, in book
    order) first, then any other record file (a chapter named differently in ``lensbox.setup``)."""
    files = {p.stem: p for p in directory.glob("*.jsonl")}
    order = [c for c in chapters if c in files] + sorted(set(files) - set(chapters))
    rows = []
    for stem in order:
        for line in files[stem].read_text().splitlines():
            if line.strip():
                rows.append({**json.loads(line), "_doc": stem})
    return rows


def _entry(*children) -> nodes.entry:
    entry = nodes.entry()
    entry += nodes.paragraph("", "", *children)
    return entry


def claims_table(
    app, fromdocname: str, rows: list[dict], docs: dict[str, str]
) -> nodes.Node:
    if not rows:
        return nodes.paragraph(text="No chapter recorded a claim in this build.")
    heads = [
        "chapter",
        "the paper",
        "this book (measured)",
        "scale",
        "read from",
        "reproduces",
    ]
    table = nodes.table(classes=["lensbox-claims"])
    group = nodes.tgroup(cols=len(heads))
    table += group
    for width in (12, 30, 30, 8, 10, 10):
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    group += head
    row = nodes.row()
    head += row
    for h in heads:
        row += _entry(nodes.Text(h))
    body = nodes.tbody()
    group += body
    for claim in rows:
        docname = docs.get(claim["_doc"])
        title = (
            str(app.env.titles[docname].astext())
            if docname in app.env.titles
            else claim["_doc"]
        )
        link = (
            nodes.reference(
                "",
                title,
                internal=True,
                refuri=app.builder.get_relative_uri(fromdocname, docname),
            )
            if docname
            else nodes.Text(title)
        )
        holds, expect = bool(claim.get("holds")), bool(claim.get("expect", True))
        verdict = "yes" if holds else ("no (as stated)" if not expect else "no")
        if not claim.get("judged", True):
            verdict = "not judged (smoke budget)"
        row = nodes.row()
        for child in (
            link,
            nodes.Text(str(claim.get("paper", ""))),
            nodes.Text(str(claim.get("ours", ""))),
            nodes.Text(str(claim.get("scale", ""))),
            nodes.Text(str(claim.get("source", ""))),
            nodes.Text(verdict),
        ):
            row += _entry(child)
        body += row
    return table


def fill_claims(app, doctree, fromdocname):
    found = list(doctree.findall(claims_node))
    if not found:
        return
    docs = {Path(d).name: d for d in app.env.found_docs if _is_notebook(app, d)}
    order = [Path(d).name for d in _book_order(app) if Path(d).name in docs]
    rows = read_claims(claims_dir(app), order)
    for node in found:
        node.replace_self(claims_table(app, fromdocname, rows, docs))


def always_rewrite_claims(app, env, added, changed, removed):
    """The claims page depends on every chapter: rebuild it on every build."""
    return sorted(getattr(env, "lensbox_claims_docs", set()) - set(removed))


# ----------------------------------------------------------------------------- API


def resolve_reexports(app, env, node, contnode):
    """``lensbox.scale`` in a docstring links to where it is documented: ``lensbox.runtime.scale.scale``."""
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or not target.startswith("lensbox."):
        return None
    import importlib

    parts = target.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr, None)
        break
    else:
        return None
    module, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not module or not name or f"{module}.{name}" == target:
        return None
    domain = env.get_domain("py")
    node = node.deepcopy()
    node["reftarget"] = f"{module}.{name}"
    return domain.resolve_xref(
        env,
        node["refdoc"],
        app.builder,
        node["reftype"],
        node["reftarget"],
        node,
        contnode,
    )


# ----------------------------------------------------------------------------- widgets


def drop_widgets(app, doctree):
    """No widget views nor widget state in static pages: there is no kernel behind them."""
    for raw in list(doctree.findall(nodes.raw)):
        if "application/vnd.jupyter.widget-view+json" in raw.astext():
            parent = raw.parent
            parent.remove(raw)
            while (
                parent is not None and not parent.children and parent.parent is not None
            ):
                grand = parent.parent
                grand.remove(parent)
                parent = grand
    meta = getattr(app.env, "nb_metadata", {}).get(app.env.docname, {})
    for key in [k for k in meta.get("js_files", {}) if k.startswith("ipywidgets")]:
        del meta["js_files"][key]


# ----------------------------------------------------------------------------- Colab


def _is_notebook(app, docname: str) -> bool:
    return Path(app.env.doc2path(docname)).suffix == ".ipynb"


def _book_order(app) -> list[str]:
    order = [app.config.root_doc]
    seen = set(order)
    for docname in order:
        for child in app.env.toctree_includes.get(docname, []):
            if child not in seen:
                seen.add(child)
                order.append(child)
    return order + sorted(d for d in app.env.found_docs if d not in seen)


def repository(app) -> tuple[str, str]:
    """``(org, repo)`` of the repository URL in ``_config.yml``."""
    url = app.config.html_theme_options.get("repository_url", "")
    m = re.match(r"https?://github\.com/([^/]+)/([^/#?]+?)(?:\.git)?/?$", url)
    if not m:
        raise ValueError(
            f"repository.url in _config.yml must be a GitHub URL, got {url!r}"
        )
    return m[1], m[2]


def site_url(app) -> str:
    if app.config.html_baseurl:
        return app.config.html_baseurl.rstrip("/") + "/"
    org, repo = repository(app)
    return f"https://{org.lower()}.github.io/{repo}/"


def colab_url(app, docname: str) -> str:
    org, repo = repository(app)
    base = app.config.html_theme_options.get("launch_buttons", {}).get(
        "colab_url", "https://colab.research.google.com"
    )
    path = f"{app.config.lensbox_colab_dir}/{docname}.ipynb"
    return f"{base.rstrip('/')}/github/{org}/{repo}/blob/{app.config.lensbox_colab_branch}/{path}"


def point_colab_buttons(app, pagename, templatename, context, doctree):
    """Rewrite the theme's Colab button to open the generated notebook of this page."""
    if pagename not in app.env.found_docs or not _is_notebook(app, pagename):
        return

    def walk(buttons):
        for button in buttons:
            if isinstance(button, dict):
                if "colab" in str(button.get("url", "")):
                    button["url"] = colab_url(app, pagename)
                walk(button.get("buttons", []))

    walk(context.get("header_buttons", []))


class SphinxResolver:
    """The :class:`lensbox_colab.Resolver` of one chapter, over the Sphinx build environment."""

    def __init__(self, app, docname: str, bib: dict):
        self.app, self.env, self.docname, self.bib = app, app.env, docname, bib
        self.std = app.env.get_domain("std")
        self.site = site_url(app)

    def url(self, docname: str, anchor: str | None = None) -> str:
        page = self.app.builder.get_target_uri(docname)
        return self.site + page + (f"#{anchor}" if anchor else "")

    def page_url(self) -> str:
        return self.url(self.docname)

    def _label(self, label: str):
        if label in self.std.labels:
            return self.std.labels[label][:2]
        if label in self.std.anonlabels:
            return self.std.anonlabels[label]
        return None, None

    def _number(self, docname, node_id):
        for figtype, ids in self.env.toc_fignumbers.get(docname, {}).items():
            if node_id in ids:
                return figtype, ".".join(map(str, ids[node_id]))
        return None, None

    def number(self, label: str) -> str | None:
        docname, node_id = self._label(label)
        if docname is None:
            eq = self.env.get_domain("math").equations.get(label)
            if eq:
                return str(self._equation_number(label))
            return None
        return self._number(docname, node_id)[1]

    def _equation_number(self, label):
        docname, number = self.env.get_domain("math").equations[label]
        secnum = self.env.toc_secnumbers.get(docname, {}).get(
            ""
        )  # chapter-prefixed, as on the site
        if self.app.config.math_numfig and self.app.config.numfig and secnum:
            return (
                ".".join(map(str, secnum[: self.app.config.numfig_secnum_depth]))
                + f".{number}"
            )
        return number

    def reference(self, role: str, target: str) -> tuple[str, str | None]:
        if role == "doc":
            docname = os.path.normpath(
                os.path.join(os.path.dirname(self.docname), target)
            ).lstrip("/")
            if target.startswith("/"):
                docname = target.lstrip("/")
            title = (
                self.env.titles[docname].astext()
                if docname in self.env.titles
                else target
            )
            return title, self.url(docname)
        if role == "eq":
            eq = self.env.get_domain("math").equations.get(target)
            if not eq:
                return f"({target})", None
            return f"({self._equation_number(target)})", self.url(
                eq[0], f"equation-{target}"
            )
        docname, node_id = (
            self._label(target.lower()) if role != "term" else (None, None)
        )
        if docname is None:
            return target, None
        figtype, number = self._number(docname, node_id)
        if role == "numref" or (role == "ref" and figtype == "exercise"):
            # sphinx-exercise turns a {ref} to a numbered exercise into a {numref}
            if figtype is None:
                secnum = self.env.toc_secnumbers.get(docname, {}).get(f"#{node_id}")
                figtype, number = "section", ".".join(map(str, secnum or ()))
            fmt = self.app.config.numfig_format.get(
                figtype, figtype.capitalize() + " %s"
            )
            return fmt % number, self.url(docname, node_id)
        title = self.std.labels.get(target.lower(), (None, None, ""))[2] or target
        return title, self.url(docname, node_id)

    def cite(self, keys: list[str], textual: bool) -> str:
        parts = []
        for key in keys:
            authors, year = (
                self.bib.get(key, {}).get("short", key),
                self.bib.get(key, {}).get("year", ""),
            )
            parts.append(f"{authors} ({year})" if textual else f"{authors}, {year}")
        return "; ".join(parts) if textual else "(" + "; ".join(parts) + ")"

    def bibliography(self, keys: list[str]) -> list[str]:
        return [self.bib.get(k, {}).get("full", k) for k in keys]


_ACCENTS = {"'": "\u0301", '"': "\u0308", "`": "\u0300", "^": "\u0302", "~": "\u0303"}


def _clean(text: str) -> str:
    """BibTeX field text as plain Unicode: accents (``{\\'e}``) combined, escapes and braces gone."""
    import unicodedata

    text = re.sub(
        r"\{?\\(['\"`^~])\{?(\w)\}?\}?",
        lambda m: unicodedata.normalize("NFC", m[2] + _ACCENTS[m[1]]),
        text,
    )
    text = re.sub(r"\\([&%$#_])", r"\1", text)
    return re.sub(r"[{}]", "", text)


def _short_authors(last: list[str], key: str) -> str:
    if not last:
        return key
    if len(last) == 1:
        return last[0]
    if len(last) == 2:
        return f"{last[0]} and {last[1]}"
    return f"{last[0]} et al."


def read_bib(paths: list[Path]) -> dict:
    """``{key: {short, year, full}}`` of the BibTeX entries, for author-year citations."""
    from pybtex.database import parse_file

    out = {}
    for path in paths:
        for key, entry in parse_file(str(path)).entries.items():
            people = entry.persons.get("author", []) or entry.persons.get("editor", [])
            last = [_clean(" ".join(p.prelast_names + p.last_names)) for p in people]
            fields = entry.fields
            year = fields.get("year", "")
            venue = (
                fields.get("journal")
                or fields.get("booktitle")
                or fields.get("publisher")
            )
            link = fields.get("url") or (
                f"https://doi.org/{fields['doi']}" if "doi" in fields else ""
            )
            if not link and "eprint" in fields:
                link = f"https://arxiv.org/abs/{fields['eprint']}"
            names = ", ".join(last[:6]) + (" et al." if len(last) > 6 else "")
            title = _clean(fields.get("title", ""))
            full = f"{names} ({year}). {title}" + ("" if title[-1:] in ".?!" else ".")
            full += f" *{_clean(venue)}*." if venue else ""
            full += f" {link}" if link else ""
            out[key] = {"short": _short_authors(last, key), "year": year, "full": full}
    return out


def write_colab_notebooks(app, exc):
    if exc is not None or app.builder.format != "html":
        return
    executed = Path(app.outdir).parent / "jupyter_execute"
    target = Path(app.outdir) / app.config.lensbox_colab_dir
    bib = read_bib(
        [Path(app.srcdir) / p for p in getattr(app.config, "bibtex_bibfiles", [])]
    )
    written = 0
    for docname in _book_order(app):
        if docname not in app.env.found_docs or not _is_notebook(app, docname):
            continue
        source = executed / f"{docname}.ipynb"
        if not source.exists():
            LOGGER.warning(
                f"no executed notebook for {docname} at {source}",
                type="lensbox",
                subtype="colab",
            )
            continue
        nb = nbformat.read(source, as_version=4)
        glue_file = source.with_name(source.name[:-6] + ".glue.json")
        glue = json.loads(glue_file.read_text()) if glue_file.exists() else None
        resolver = SphinxResolver(app, docname, bib)
        title = (
            app.env.titles[docname].astext() if docname in app.env.titles else docname
        )
        header = (
            f"*This notebook is the chapter [{title}]({resolver.page_url()}) of the book "
            f"[{app.config.project}]({site_url(app)}), made to run in Colab or plain Jupyter. "
            f"Numbers quoted in the text are those measured when the book was built, at "
            f"`{os.environ.get('LENSBOX_SCALE', 'book')}` scale.*"
        )
        out = lensbox_colab.convert(nb, resolver, header=header, glue=glue)
        left = lensbox_colab.leftover_myst(out)
        if left:
            LOGGER.warning(
                f"MyST left in the Colab notebook of {docname}: {left[:5]}",
                type="lensbox",
                subtype="colab",
            )
        path = target / f"{docname}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(out, path)
        written += 1
    LOGGER.info(f"lensbox: wrote {written} Colab notebooks to {target}")


# ----------------------------------------------------------------------------- execution

PARALLEL_ENV = (
    "LENSBOX_PARALLEL_EXECUTION"  # "1": run the chapters side by side, one per core
)


def parallel_execution() -> bool:
    """Whether this build executes its notebooks side by side (``LENSBOX_PARALLEL_EXECUTION=1``).

    ``scripts/test.sh`` sets it for the smoke build; the website build leaves it off."""
    value = os.environ.get(PARALLEL_ENV, "").strip()
    if value not in ("", "0", "1"):
        raise ValueError(
            f"{PARALLEL_ENV}={value!r}: use 1 (side by side) or 0 (in turn)"
        )
    return value == "1"


def execute_side_by_side(app, env, docnames):
    """Execute every notebook this build reads before reading it, one per core.

    jupyter-cache's ``local-parallel`` executor runs them into myst-nb's cache, emptied first, so
    every chapter is executed afresh, as with ``execute_notebooks: force``; myst-nb, switched to
    ``cache`` mode (:func:`configure`), then reads each result instead of executing it again. A
    notebook that fails here is not cached: myst-nb executes it once more while reading and the
    build fails there, naming the cell, as a serial build does.
    """
    if not parallel_execution() or env.mystnb_config.execution_mode != "cache":
        return
    from jupyter_cache import get_cache
    from jupyter_cache.executors import load_executor

    env.lensbox_side_by_side = [d for d in docnames if _is_notebook(app, d)]
    notebooks = [env.doc2path(d) for d in env.lensbox_side_by_side]
    if not notebooks:
        return
    cache = get_cache(env.mystnb_config.execution_cache_path)
    cache.clear_cache()  # the folder and database are made anew on first use
    for path in notebooks:
        cache.add_nb_to_project(str(path))
    executor = load_executor("local-parallel", cache=cache)
    result = executor.run_and_cache(
        timeout=env.mystnb_config.execution_timeout, allow_errors=False
    )
    LOGGER.info(
        f"lensbox: executed {len(result.succeeded)} of {len(notebooks)} notebooks side "
        f"by side ({os.cpu_count()} processes); failed: "
        f"{sorted(Path(u).stem for u in result.excepted + result.errored)}"
    )


def complete_executed_copies(app, env):
    """Put the outputs into the executed copies (``jupyter_execute/<doc>.ipynb``) of the
    notebooks executed side by side.

    In ``cache`` mode myst-nb renders the cached outputs but writes that copy from the notebook
    as read, without them; the Colab notebooks and the tests read the copy.
    """
    docnames = getattr(env, "lensbox_side_by_side", [])
    if not docnames:
        return []
    from jupyter_cache import get_cache

    cache = get_cache(env.mystnb_config.execution_cache_path)
    folder = Path(env.mystnb_config.output_folder)
    for docname in docnames:
        path = folder / f"{docname}.ipynb"
        if path.exists():
            _, merged = cache.merge_match_into_notebook(
                nbformat.read(path, as_version=4)
            )
            nbformat.write(merged, path)
    env.lensbox_side_by_side = []
    return []


# ----------------------------------------------------------------------------- pages


def caption_words(node: nodes.Node) -> str:
    """The plain text of a caption, its math in words (:func:`lensbox_colab.tex_words`)."""
    if isinstance(node, nodes.math):
        return lensbox_colab.tex_words(node.astext())
    if isinstance(node, nodes.Text):
        return node.astext()
    return "".join(caption_words(child) for child in node.children)


def alt_text(app, doctree):
    """Every image gets alt text: its figure's caption (math in words), or a description of the
    output."""
    for image in doctree.findall(nodes.image):
        if image.get("alt"):
            continue
        figure = image.parent
        while figure is not None and not isinstance(figure, nodes.figure):
            figure = figure.parent
        caption = (
            next(iter(figure.findall(nodes.caption)), None)
            if figure is not None
            else None
        )
        text = " ".join(caption_words(caption).split()) if caption is not None else ""
        image["alt"] = text[:400] or "A figure drawn by the code cell above."


def number_unnumbered_pages(app, env):
    """Pages outside the numbered parts (the introduction, Data) number their figures and
    exercises from 1 on their own, instead of continuing one counter shared between them."""
    for docname, kinds in env.toc_fignumbers.items():
        if env.toc_secnumbers.get(docname):
            continue
        for figtype, ids in kinds.items():
            ordered = sorted(ids, key=lambda node_id: ids[node_id])
            kinds[figtype] = {node_id: (i + 1,) for i, node_id in enumerate(ordered)}
    return []


def configure(app, config):
    """Serve the static files of the extension. At ``smoke`` scale a stuck cell fails within minutes (naming the cell), not after 30."""
    config.html_static_path = [
        *config.html_static_path,
        str(Path(__file__).parent / "static"),
    ]
    # The API page's signatures name types of other packages (jax.Array, numpy.ndarray) and
    # type variables; offline there is no inventory to link them (intersphinx needs the
    # network), so only references to lensbox's own names must resolve.
    # Dataclass "Attributes:" sections as fields, so :undoc-members: does not describe them twice.
    config.napoleon_use_ivar = True
    config.nitpick_ignore_regex = [
        *getattr(config, "nitpick_ignore_regex", []),
        (r"py:.*", r"(?!lensbox\.).*"),
        (r"py:.*", r"lensbox(\.\w+)*\.[A-Z]"),
    ]
    if os.environ.get("LENSBOX_SCALE") == "smoke":
        config.nb_execution_timeout = min(config.nb_execution_timeout, SMOKE_TIMEOUT)
    if parallel_execution() and config.nb_execution_mode == "force":
        # read the results that execute_side_by_side puts in the (emptied) cache
        config.nb_execution_mode = "cache"


# ----------------------------------------------------------------------------- setup


def setup(app):
    kernel_wakeups.install()  # a lost wake-up costs a second, not the cell timeout
    os.environ[BUILD_ENV] = "1"
    os.environ.setdefault(CLAIMS_ENV, str(Path(app.outdir).parent / "claims"))
    Path(os.environ[CLAIMS_ENV]).mkdir(parents=True, exist_ok=True)
    app.add_config_value("lensbox_colab_branch", "gh-pages", "html")
    app.add_config_value("lensbox_colab_dir", "colab", "html")
    app.setup_extension("sphinx.ext.autodoc")
    app.setup_extension("sphinx.ext.napoleon")
    app.add_node(claims_node)
    app.add_directive("lensbox-claims", ClaimsDirective)
    app.add_css_file("lensbox.css")
    app.add_js_file("lensbox.js")
    app.connect("config-inited", configure)
    app.connect("env-get-updated", number_unnumbered_pages, priority=900)
    app.connect("doctree-read", alt_text)
    app.connect("env-get-outdated", always_rewrite_claims)
    app.connect("env-before-read-docs", execute_side_by_side)
    app.connect("env-updated", complete_executed_copies)
    app.connect("doctree-read", drop_widgets)
    app.connect("missing-reference", resolve_reexports)
    app.connect("doctree-resolved", fill_claims)
    app.connect("html-page-context", point_colab_buttons, priority=600)
    app.connect("build-finished", write_colab_notebooks)
    return {"parallel_read_safe": False, "parallel_write_safe": True}

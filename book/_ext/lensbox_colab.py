"""Turn an executed chapter (a MyST notebook) into a plain-Jupyter notebook for Colab.

Plain Jupyter and Colab render neither MyST roles nor directives. This converter rewrites a
chapter's Markdown so they are not needed:

* ``{glue:text}`` and the other glue roles become the values the build measured, and
  ``{glue:figure}`` its numbered caption: with the stored figure (a cell attachment) only when no
  code cell of the notebook draws it (:func:`lensbox.runtime.plotting.glue` shows a figure in
  place outside the book build, so a stored copy would show it twice, with other numbers);
* ``{numref}``, ``{ref}``, ``{doc}``, ``{eq}`` become their text (numbers included, as on the
  website) with a link: to an anchor of the notebook when the target is in this chapter, to the
  website otherwise; ``{cite:p}`` / ``{cite:t}`` become author-year text with a reference list at
  the end;
* exercises become Markdown, and solutions move to a "Solutions" section at the end, their code
  cells guarded so "Run all" skips them;
* other directives (admonitions, dropdowns, ``math``, ``figure``) become Markdown or HTML.

The code cells are kept as they are (the first one installs lensbox when it is missing), without
their outputs. A :class:`Resolver` answers the questions only the Sphinx build can answer
(figure numbers, titles, URLs, citations); ``book/_ext/lensbox_book.py`` implements one over the
build environment. :func:`leftover_myst` lists any MyST syntax that survived.

It is here because no library does it: jupytext and nbconvert change a notebook's format but
leave MyST roles and directives in its Markdown, and Jupyter Book's download button gives the
source notebook, MyST and all.
"""

from __future__ import annotations

import base64
import re
from ast import literal_eval
from dataclasses import dataclass, field
from typing import Protocol

import nbformat

ROLE = re.compile(r"\{(?P<name>[A-Za-z][\w:+.-]*)\}`(?P<content>[^`]*)`")
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,}|:{3,})(?P<rest>.*)$")
DIRECTIVE = re.compile(r"^\{(?P<name>[^}\s]+)\}\s*(?P<arg>.*)$")
LABEL_LINE = re.compile(r"^\((?P<label>[^)\s]+)\)=\s*$")
EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)
# The shell command `true` receives the cell as input and ignores it: the cell does nothing, in
# every IPython version (Colab ships IPython 7, where `%%script false` options differ).
SOLUTION_GUARD = "%%script true"
# A call of lensbox's glue naming its key literally: glue("fig-a", fig) or glue('fig-a', ...)
GLUE_CALL = re.compile(r"""\bglue\(\s*(?P<quote>["'])(?P<key>[^"'\n]+)(?P=quote)""")
LOCAL_LINK = re.compile(r"\]\(#(?P<anchor>[^)\s]+)\)")
ANCHOR = re.compile(r'<a id="(?P<anchor>[^"]+)"')
ADMONITIONS = {
    "note",
    "warning",
    "tip",
    "important",
    "caution",
    "attention",
    "danger",
    "error",
    "hint",
    "seealso",
    "admonition",
    "margin",
    "sidebar",
    "epigraph",
    "topic",
}
DROPPED = {
    "bibliography",
    "tableofcontents",
    "contents",
    "nb-exec-table",
    "toctree",
    "eval-rst",
    "raw",
    "only",
    "lensbox-claims",
    "lensbox-api",
    "glossary",
    "index",
}


class Resolver(Protocol):
    """What the converter asks the build: numbers, titles and links of labels, and citations."""

    def reference(self, role: str, target: str) -> tuple[str, str | None]:
        """Text and URL of ``{role}`target``` as the website shows it: ``numref`` text, and
        ``ref`` text of a numbered exercise, carry the number ("Exercise 1.3"). A target on
        this chapter's page has the URL ``page_url() + "#" + anchor``."""

    def number(self, label: str) -> str | None:
        """The number of a numbered object (figure, exercise, equation) by label, if any."""

    def cite(self, keys: list[str], textual: bool) -> str:
        """Author-year text of citation ``keys`` (``textual``: "A (2020)", else "(A, 2020)")."""

    def bibliography(self, keys: list[str]) -> list[str]:
        """One Markdown line per cited key, for the notebook's reference list."""

    def page_url(self) -> str:
        """The website URL of this chapter."""


@dataclass
class _State:
    glue: dict
    resolver: Resolver
    cited: list[str] = field(default_factory=list)
    attachments: dict = field(default_factory=dict)
    exercises: int = 0
    page: str = ""  # the website URL of this chapter, without fragment
    drawn: set[str] = field(default_factory=set)  # glue keys a code cell draws in place
    # the website URL of every target linked inside the notebook, by anchor
    local: dict[str, str] = field(default_factory=dict)


def glue_outputs(nb) -> dict:
    """``{key: mime bundle}`` of every value ``glue`` stored in the executed notebook ``nb``.

    myst-nb stores a glued value as an output whose metadata carry ``scrapbook.name`` and whose
    MIME types carry the prefix ``scrapbook.mime_prefix``.
    """
    found = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            meta = output.get("metadata", {}).get("scrapbook")
            if meta:
                prefix = len(meta.get("mime_prefix", ""))
                found[meta["name"]] = {
                    k[prefix:]: v for k, v in output.get("data", {}).items()
                }
    return found


def drawn_by_code(nb) -> set[str]:
    """The glue keys that a code cell of ``nb`` passes, literally, to ``glue``.

    Outside the book build :func:`lensbox.runtime.plotting.glue` shows a glued figure under its
    code cell, so a reader running the notebook sees those figures there.
    """
    return {
        m["key"]
        for cell in nb.cells
        if cell.cell_type == "code"
        for m in GLUE_CALL.finditer(cell.source)
    }


def _format_plain(text: str, spec: str) -> str:
    try:
        value = literal_eval(text)
    except (SyntaxError, ValueError):
        value = text
    if not spec:
        return str(value)
    kind = spec[-1]
    if kind == "s":
        value = str(value)
    elif kind in "bcdoxX":
        value = int(value)
    elif kind in "eEfFgGn%":
        value = float(value)
    return format(value, spec)


def _glue_text(state: _State, content: str, markdown: bool = False) -> str:
    # `key`, `key:spec`, `doc::key` or `doc::key:spec` (myst-nb's forms)
    key, _, spec = content.rpartition("::")[2].partition(":")
    if key not in state.glue:
        raise KeyError(f"glue key {key!r} not found in the executed notebook")
    data = state.glue[key]
    if markdown and "text/markdown" in data:
        return data["text/markdown"]
    if "text/plain" not in data:
        raise KeyError(f"glue key {key!r} has no text/plain value")
    return _format_plain(data["text/plain"], spec)


def _anchor(label: str) -> str:
    """An HTML anchor a link ``#label`` of the notebook scrolls to."""
    return f'<a id="{label}" name="{label}"></a>'


def _link(state: _State, text: str, url: str | None, target: str) -> str:
    """``text`` linked to ``url``, or to the notebook's anchor ``target`` when ``url`` is on this
    chapter's page (:func:`convert` restores the URL if the notebook has no such anchor)."""
    if not url:
        return text
    page, _, fragment = url.partition("#")
    if fragment and state.page and page == state.page:
        state.local[target] = url
        return f"[{text}](#{target})"
    return f"[{text}]({url})"


def _role(state: _State, match: re.Match) -> str:
    name, content = match["name"], match["content"]
    if name in ("glue", "glue:", "glue:any", "glue:text"):
        return _glue_text(state, content)
    if name == "glue:md":
        return _glue_text(state, content, markdown=True)
    if name.startswith("cite"):
        keys = [k.strip() for k in content.split(",") if k.strip()]
        state.cited.extend(k for k in keys if k not in state.cited)
        return state.resolver.cite(
            keys, textual=name in ("cite:t", "cite:ts", "cite:ct")
        )
    if name in ("numref", "ref", "doc", "eq", "any", "term", "download", "std:ref"):
        explicit = EXPLICIT.match(content)
        target = explicit["target"] if explicit else content
        text, url = state.resolver.reference(name, target)
        if explicit and explicit["text"]:
            number = text.split(" ", 1)[-1] if name == "numref" else text
            text = explicit["text"].replace("%s", number).replace("{number}", number)
        return _link(state, text, url, target)
    if name == "math":
        return f"${content}$"
    if name in ("sub", "sup"):
        return f"<{name}>{content}</{name}>"
    if name == "kbd":
        return f"<kbd>{content}</kbd>"
    if name == "abbr":
        return content.split(" (")[0]
    # code-like roles ({code}, {func}, {py:class}, {mod}, {file}, ...): show the name as code
    explicit = EXPLICIT.match(content)
    return f"`{(explicit['target'] if explicit else content).lstrip('~')}`"


def _inline(state: _State, text: str) -> str:
    """Rewrite every role in ``text``."""
    return ROLE.sub(lambda m: _role(state, m), text)


def _blocks(lines: list[str]):
    """Split Markdown lines into ("text", lines), ("code", lines) and ("directive", ...) blocks."""
    i, text = 0, []
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            text.append(lines[i])
            i += 1
            continue
        fence, rest = m["fence"], m["rest"].strip()
        close = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            j += 1
        body = lines[i + 1 : j]
        if text:
            yield ("text", text)
            text = []
        d = DIRECTIVE.match(rest)
        if d:
            yield ("directive", d["name"], d["arg"].strip(), *_options(body))
        else:
            yield ("code", [lines[i], *body, fence])
        i = j + 1
    if text:
        yield ("text", text)


def _options(body: list[str]) -> tuple[dict, list[str]]:
    options: dict[str, str] = {}
    if body and body[0].strip() == "---":
        end = next((k for k in range(1, len(body)) if body[k].strip() == "---"), 0)
        for line in body[1:end]:
            key, _, value = line.partition(":")
            options[key.strip()] = value.strip()
        return options, body[end + 1 :]
    k = 0
    while k < len(body) and re.match(r"^\s*:[\w-]+:", body[k]):
        key, _, value = body[k].strip()[1:].partition(":")
        options[key] = value.strip()
        k += 1
    return options, body[k:]


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.split("\n"))


def _text(state: _State, lines: list[str]) -> str:
    kept = []
    for line in lines:
        label = LABEL_LINE.match(line)
        if label:
            kept.append(_anchor(label["label"]))
        elif re.match(r"^%( |$)", line) or line.strip() == "+++":
            continue  # MyST comments and block breaks
        else:
            kept.append(line)
    text = "\n".join(kept)
    text = re.sub(
        r"\{\{\s*([\w.-]+)\s*\}\}", r"\1", text
    )  # substitutions: the name as text
    return _inline(state, text)


def _image(state: _State, key: str, alt: str) -> str:
    data = state.glue.get(key, {})
    if "image/png" not in data:
        return ""
    name = f"{key}.png"
    png = data["image/png"]
    state.attachments[name] = {
        "image/png": png if isinstance(png, str) else base64.b64encode(png).decode()
    }
    alt = re.sub(r"[\[\]\n]", " ", alt).strip() or key
    return f"![{alt}](attachment:{name})"


def _caption_number(state: _State, label: str | None, kind: str) -> str:
    number = state.resolver.number(label) if label else None
    return f"{kind} {number}" if number else kind


# TeX commands read as words or symbols in alt text; any other command reads as its name
# (\gamma: gamma). Fonts keep their argument (\mathbf{k}: k), accents name themselves (\tilde f:
# tilde f).
TEX_SYMBOLS = {
    "leq": "≤",
    "le": "≤",
    "geq": "≥",
    "ge": "≥",
    "neq": "≠",
    "ne": "≠",
    "approx": "≈",
    "sim": "~",
    "propto": "∝",
    "times": "×",
    "cdot": "·",
    "pm": "±",
    "to": "→",
    "rightarrow": "→",
    "mapsto": "→",
    "infty": "infinity",
    "ldots": "...",
    "dots": "...",
    "cdots": "...",
    "mid": "|",
    "vert": "|",
    "lvert": "|",
    "rvert": "|",
    "Vert": "||",
    "lVert": "||",
    "rVert": "||",
    "top": "T",
    "prime": "'",
    "varepsilon": "epsilon",
    "vartheta": "theta",
    "varphi": "phi",
    "quad": " ",
    "qquad": " ",
}
TEX_DROPPED = {
    "left",
    "right",
    "big",
    "Big",
    "bigg",
    "Bigg",
    "bigl",
    "bigr",
    "Bigl",
    "Bigr",
    "displaystyle",
    "limits",
    "nolimits",
}
TEX_FONTS = (
    "mathbf|mathrm|mathit|mathsf|mathtt|mathcal|mathbb|mathfrak|boldsymbol|bm|text|textrm|"
    "textit|textbf|mathnormal|operatorname"
)
TEX_ACCENTS = "tilde|widetilde|hat|widehat|bar|overline|vec|dot|ddot|check|breve"
TEX_STRUCTURE = set(f"{TEX_FONTS}|{TEX_ACCENTS}|frac|dfrac|tfrac|sqrt".split("|"))
TEX_SIMPLE = re.compile(r"^-?[\w.']+$")


def _tex_group(text: str) -> str:
    """A sub- or superscript, or a fraction's part: bare when one token, else in brackets."""
    return text if TEX_SIMPLE.match(text) else f"({text})"


def tex_words(tex: str) -> str:
    """TeX math as plain text for alt text: ``\\gamma \\leq 10^{-3}`` reads "gamma ≤ 10^-3",
    ``f_{\\theta_0}(x)`` "f_theta_0(x)", ``\\tilde{f}`` "tilde f"."""
    text = tex.replace("\\{", "\x00").replace("\\}", "\x01").replace("\\|", "||")
    text = re.sub(r"\\[,;:! ]|~", " ", text)
    text = re.sub(r"\\[&%$#_]", lambda m: m[0][1], text)

    def command(m: re.Match) -> str:
        name = m[1]
        if name in TEX_STRUCTURE:
            return m[0]
        word = "" if name in TEX_DROPPED else TEX_SYMBOLS.get(name, name)
        if not word.isalpha():
            return word
        before, after = text[m.start() - 1 : m.start()], text[m.end() : m.end() + 1]
        space_before = " " if before.isalnum() or before == "}" else ""
        space_after = " " if after.isalnum() or after == "\\" else ""
        return f"{space_before}{word}{space_after}"

    text = re.sub(r"\\([A-Za-z]+)", command, text)
    rules = [
        (rf"\\(?:{TEX_FONTS})\s*\{{([^{{}}]*)\}}", lambda m: m[1]),
        (rf"\\({TEX_ACCENTS})\s*\{{([^{{}}]*)\}}", lambda m: f"{m[1]} {m[2]}"),
        (
            r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}",
            lambda m: f"{_tex_group(m[1])}/{_tex_group(m[2])}",
        ),
        (r"\\sqrt\s*\{([^{}]*)\}", lambda m: f"sqrt({m[1]})"),
        (r"([_^])\{([^{}]*)\}", lambda m: m[1] + _tex_group(m[2].strip())),
    ]
    changed = True
    while changed:
        changed = False
        for pattern, replace in rules:
            text, n = re.subn(pattern, replace, text)
            changed = changed or n > 0
    text = re.sub(rf"\\({TEX_ACCENTS})\b\s*", r"\1 ", text)
    text = re.sub(rf"\\({TEX_FONTS}|[A-Za-z]+)\b\s*", "", text)
    text = re.sub(r"[{}\\]", "", text).replace("\x00", "{").replace("\x01", "}")
    return " ".join(text.split())


def _plain(markdown: str) -> str:
    """Rough plain text of a Markdown caption, for alt text: no markup, its math in words."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    parts = re.split(r"(\$\$?[^$]+\$\$?)", text)
    text = "".join(
        tex_words(part.strip("$"))
        if part.startswith("$")
        else re.sub(r"[*`\\]|(?<!\w)_|_(?!\w)", "", part)
        for part in parts
    )
    return " ".join(text.split())[:300]


def _directive(
    state: _State, name: str, arg: str, options: dict, body: list[str]
) -> str:
    inner = _render(state, body)
    if name in ("glue:figure", "glue", "glue:", "glue:any"):
        label = options.get("name")
        caption = inner.strip()
        drawn = arg in state.drawn and "image/png" in state.glue.get(arg, {})
        image = (
            "" if drawn else _image(state, arg, options.get("alt") or _plain(caption))
        )
        if not image and not drawn and arg in state.glue:
            return _glue_text(state, arg)
        number = _caption_number(state, label, "Figure")
        head = f"**{number}.** " if caption or label else ""
        if (
            drawn
        ):  # the figure is under the code cell that glues it, when the reader runs it
            head = f"**{number}** (drawn by the code above). "
        anchor = f"{_anchor(label)}\n" if label else ""
        return "\n\n".join(p for p in (f"{anchor}{image}".strip(), head + caption) if p)
    if name in ("glue:md",):
        return _glue_text(state, arg, markdown=True)
    if name in ("glue:math", "math"):
        tex = _glue_text(state, arg) if name == "glue:math" else inner.strip()
        label = options.get("label") or options.get("name")
        number = state.resolver.number(label) if label else None
        tag = f" \\tag{{{number}}}" if number else ""
        anchor = f"{_anchor(label)}\n\n" if label else ""
        return f"{anchor}$$\n{tex}{tag}\n$$"
    if name in ("figure", "image"):
        alt = options.get("alt") or _plain(inner)
        return f"![{alt}]({arg})\n\n{inner}".rstrip()
    if name == "exercise":
        state.exercises += 1
        label = options.get("label")
        number = state.resolver.number(label) if label else None
        title = f" ({_inline(state, arg)})" if arg else ""
        anchor = f"{_anchor(label)}\n" if label else ""
        return f"{anchor}**Exercise {number or state.exercises}{title}.**\n\n{inner}".rstrip()
    if name in ADMONITIONS:
        title = _inline(state, arg) if arg else name.capitalize()
        return _quote(f"**{title}.** {inner}".rstrip())
    if name in ("dropdown", "toggle", "details"):
        title = _inline(state, arg) or "Details"
        return f"<details><summary>{title}</summary>\n\n{inner}\n\n</details>"
    if name in ("code-block", "code", "sourcecode", "code-cell"):
        return "\n".join([f"```{arg}", *body, "```"])
    if name in DROPPED:
        return ""
    title = f"**{_inline(state, arg)}**\n\n" if arg else ""
    return f"{title}{inner}".rstrip()


def _render(state: _State, lines: list[str]) -> str:
    out = []
    for block in _blocks(lines):
        if block[0] == "text":
            out.append(_text(state, block[1]))
        elif block[0] == "code":
            out.append("\n".join(block[1]))
        else:
            out.append(_directive(state, *block[1:]))
    return "\n".join(out)


def _split_cell(state: _State, source: str):
    """Yield ("main" | "solution" | "start" | "end", text) pieces of one Markdown cell."""
    lines = source.split("\n")
    for block in _blocks(lines):
        if block[0] == "directive" and block[1] == "solution-start":
            yield ("start", block[2])
        elif block[0] == "directive" and block[1] == "solution-end":
            yield ("end", "")
        elif block[0] == "directive" and block[1] == "solution":
            yield ("start", block[2])
            yield ("main", _render(state, block[4]))
            yield ("end", "")
        elif block[0] == "text":
            yield ("main", _text(state, block[1]))
        elif block[0] == "code":
            yield ("main", "\n".join(block[1]))
        else:
            yield ("main", _directive(state, *block[1:]))


def _solution_title(state: _State, label: str) -> str:
    number = state.resolver.number(label) if label else None
    return f"### Solution to Exercise {number}" if number else f"### Solution ({label})"


def convert(
    executed, resolver: Resolver, *, header: str = "", glue: dict | None = None
) -> nbformat.NotebookNode:
    """The Colab notebook of one executed chapter ``executed`` (an nbformat v4 notebook).

    ``glue``: the glued values as myst-nb saves them beside the executed notebook
    (``NAME.glue.json``: ``{key: output}``); by default they are read from its outputs.
    """
    values = glue_outputs(executed)
    for key, output in (glue or {}).items():
        values.setdefault(key, output.get("data", output))
    state = _State(
        glue=values,
        resolver=resolver,
        page=resolver.page_url().partition("#")[0],
        drawn=drawn_by_code(executed),
    )
    main: list = []
    solutions: list = []
    target = main
    for cell in executed.cells:
        if cell.cell_type == "code":
            source = cell.source
            if target is solutions:
                source = (
                    f'{SOLUTION_GUARD}\n# "Run all" skips this solution: delete the line '
                    f"above to run it.\n{source}"
                )
            target.append(nbformat.v4.new_code_cell(source))
            continue
        if cell.cell_type != "markdown":
            continue
        state.attachments = {}
        pieces: list[str] = []

        def flush():
            text = "\n".join(p for p in pieces if p is not None).strip()
            if text:
                md = nbformat.v4.new_markdown_cell(text)
                used = {
                    k: v
                    for k, v in state.attachments.items()
                    if f"attachment:{k}" in text
                }
                if used:
                    md["attachments"] = used
                target.append(md)
            pieces.clear()

        for kind, text in _split_cell(state, cell.source):
            if kind == "main":
                pieces.append(text)
            elif kind == "start":
                flush()
                target = solutions
                pieces.append(_solution_title(state, text))
            else:
                flush()
                target = main
        flush()
    cells = []
    if header:
        cells.append(nbformat.v4.new_markdown_cell(header))
    cells += main
    if solutions:
        cells.append(
            nbformat.v4.new_markdown_cell(
                '## Solutions\n\nThe solutions to the exercises above. "Run all" skips their code '
                "cells; delete a cell's first line to run it (they use the variables of the chapter)."
            )
        )
        cells += solutions
    if state.cited:
        refs = resolver.bibliography(state.cited)
        cells.append(
            nbformat.v4.new_markdown_cell(
                "## References\n\n" + "\n".join(f"* {r}" for r in refs)
            )
        )
    _unlink_missing_anchors(state, cells)
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {
        "kernelspec": {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        },
        "language_info": {"name": "python"},
        "colab": {"provenance": []},
    }
    return nb


def _unlink_missing_anchors(state: _State, cells: list) -> None:
    """Point a link to a target of this chapter that has no anchor in the notebook (a label the
    converter does not anchor) back at the website."""
    anchors = {
        m["anchor"]
        for cell in cells
        if cell.cell_type == "markdown"
        for m in ANCHOR.finditer(cell.source)
    }
    missing = {k: url for k, url in state.local.items() if k not in anchors}
    if not missing:
        return
    for cell in cells:
        if cell.cell_type == "markdown":
            cell.source = LOCAL_LINK.sub(
                lambda m: (
                    f"]({missing[m['anchor']]})"
                    if m["anchor"] in missing
                    else m.group(0)
                ),
                cell.source,
            )


MYST_LEFT = [
    ("role", re.compile(r"\{[A-Za-z][\w:+.-]*\}`")),
    ("directive", re.compile(r"^ {0,3}(`{3,}|~{3,}|:{3,})\s*\{[^}]+\}", re.M)),
    ("label", re.compile(r"^\([^)\s]+\)=\s*$", re.M)),
    ("substitution", re.compile(r"\{\{[^}]*\}\}")),
]


def leftover_myst(nb) -> list[str]:
    """Every piece of MyST syntax left in the Markdown cells of ``nb``, as "kind: text" lines."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        for kind, pattern in MYST_LEFT:
            for m in pattern.finditer(cell.source):
                found.append(f"cell {index}: {kind}: {m.group(0)!r}")
    return found

"""The Colab notebooks the build writes: no MyST left, values filled in, solutions not run.

The converter is tested here on small notebooks; the generated notebooks of a built site are
tested when ``LENSBOX_SITE`` names its HTML folder (``scripts/test.sh`` builds the smoke-scale
site first and sets it; with ``LENSBOX_REQUIRE_SITE=1`` a missing site fails instead of skipping).
That each one runs alone in plain Jupyter (no myst-nb, in a folder with nothing else) is checked
by nbval: ``scripts/test.sh`` hands it the generated notebooks (``scripts/colab_for_nbval.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "book" / "_ext"))

import lensbox_book
import lensbox_colab as colab  # noqa: E402
from docutils import nodes
from fixtures import built_site

CHAPTERS = sorted(p.stem for p in (ROOT / "book").glob("*.ipynb"))


class FakeResolver:
    def reference(self, role, target):
        if role == "numref":
            return "Fig. 2.1", f"https://site/{target}"
        return f"Title of {target}", f"https://site/{target}"

    def number(self, label):
        return {"fig-a": "2.1", "ex-one": "2.3"}.get(label)

    def cite(self, keys, textual):
        return "Smith (2020)" if textual else "(Smith, 2020)"

    def bibliography(self, keys):
        return [f"entry {k}" for k in keys]

    def page_url(self):
        return "https://site/page.html"


def _executed(cells):
    return nbformat.v4.new_notebook(cells=cells)


def _chapter():
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    glue_out = nbformat.v4.new_output(
        "display_data",
        data={"application/papermill.record/text/plain": "0.123456"},
        metadata={
            "scrapbook": {"name": "err", "mime_prefix": "application/papermill.record/"}
        },
    )
    first = code("x = 1")
    first.outputs = [glue_out]
    return _executed(
        [
            first,
            md(
                "(sec-x)=\n# Title\n\nError {glue:text}`err:.2f` ({glue:text}`doc::err`, "
                "{glue:text}`doc::err:.1f`), see {numref}`fig-a` and "
                "{cite:p}`smith2020`; {cite:t}`smith2020` said so. Back to {ref}`sec-x`, "
                "{doc}`other`, {eq}`eq-1`.\n% a comment\n"
            ),
            md(":::{note}\nA note with {math}`a^2`.\n:::\n"),
            md("```{exercise} Do it\n:label: ex-one\n\nProve it.\n```\n"),
            md("```{solution-start} ex-one\n:class: dropdown\n```\nThe proof."),
            code("assert 1 + 1 == 2"),
            md("```{solution-end}\n```\nAfter the solution."),
            code("y = 2"),
        ]
    )


def test_converter_resolves_roles_and_moves_solutions_to_the_end():
    out = colab.convert(_chapter(), FakeResolver(), header="header")
    assert colab.leftover_myst(out) == []
    text = "\n".join(c.source for c in out.cells if c.cell_type == "markdown")
    assert "Error 0.12 (0.123456, 0.1)," in text
    assert "[Fig. 2.1](https://site/fig-a)" in text
    assert "(Smith, 2020)" in text and "Smith (2020) said so" in text
    assert "$a^2$" in text and "**Note.**" in text and "% a comment" not in text
    assert "**Exercise 2.3 (Do it).**" in text
    codes = [c.source for c in out.cells if c.cell_type == "code"]
    assert codes[:2] == [
        "x = 1",
        "y = 2",
    ]  # the chapter's own cells, in order, before solutions
    assert codes[2].startswith(colab.SOLUTION_GUARD) and codes[2].endswith(
        "assert 1 + 1 == 2"
    )
    titles = [c.source.splitlines()[0] for c in out.cells if c.cell_type == "markdown"]
    assert titles.index("## Solutions") < titles.index("### Solution to Exercise 2.3")
    assert titles[-1] == "## References" and "entry smith2020" in out.cells[-1].source
    assert "After the solution." in text.split("## Solutions")[0]
    assert all(c.get("outputs", []) == [] for c in out.cells if c.cell_type == "code")


def test_converter_embeds_glued_figures_with_their_number_and_caption():
    png = "iVBORw0KGgo="
    out_cell = nbformat.v4.new_code_cell("fig")
    nb = _executed(
        [
            out_cell,
            nbformat.v4.new_markdown_cell(
                "```{glue:figure} fig-a\n:name: fig-a\n\nA *caption*.\n```"
            ),
        ]
    )
    out = colab.convert(
        nb, FakeResolver(), glue={"fig-a": {"data": {"image/png": png}}}
    )
    figure = out.cells[1]
    assert figure.attachments == {"fig-a.png": {"image/png": png}}
    assert "![A caption.](attachment:fig-a.png)" in figure.source
    assert "**Figure 2.1.** A *caption*." in figure.source


def test_leftover_myst_finds_roles_directives_and_labels():
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("a {glue:text}`k` b"),
            nbformat.v4.new_markdown_cell("```{note}\nx\n```"),
            nbformat.v4.new_markdown_cell("(label)=\n# T"),
            nbformat.v4.new_markdown_cell("plain `code` and $x^{2}$"),
        ]
    )
    kinds = [line.split(": ")[1] for line in colab.leftover_myst(nb)]
    assert kinds == ["role", "directive", "label"]


def test_a_missing_glue_key_is_an_error_naming_it():
    nb = _executed(
        [
            nbformat.v4.new_code_cell("x"),
            nbformat.v4.new_markdown_cell("{glue:text}`nope`"),
        ]
    )
    with pytest.raises(KeyError, match="nope"):
        colab.convert(nb, FakeResolver())


class SamePageResolver(FakeResolver):
    """Targets named ``here-*`` or ``ex-one`` are on this chapter's page, the rest elsewhere."""

    def reference(self, role, target):
        if target == "ex-one":
            return "Exercise 2.3", "https://site/page.html#ex-one"
        if target.startswith("here-"):
            return f"Title of {target}", f"https://site/page.html#{target}"
        return super().reference(role, target)


def test_a_reference_keeps_its_number_and_links_inside_the_notebook_when_the_target_is_here():
    """ "(Exercise 2.3 checks this)" links to the exercise in the notebook, as the website's
    text does; a target on another page keeps its website link."""
    md = nbformat.v4.new_markdown_cell
    nb = _executed(
        [
            md(
                "({ref}`ex-one` checks this; see {numref}`fig-a`, {ref}`here-sec`, "
                "{ref}`here-nowhere`)\n\n(here-sec)=\n## A section"
            ),
            md("```{exercise} Do it\n:label: ex-one\n\nProve it.\n```\n"),
        ]
    )
    out = colab.convert(nb, SamePageResolver())
    text = "\n".join(c.source for c in out.cells if c.cell_type == "markdown")
    assert "([Exercise 2.3](#ex-one) checks this;" in text
    assert '<a id="ex-one"' in out.cells[1].source
    assert out.cells[1].source.index('<a id="ex-one"') < out.cells[1].source.index(
        "**Exercise 2.3"
    )
    assert "[Fig. 2.1](https://site/fig-a)" in text  # another page: the website
    assert "[Title of here-sec](#here-sec)" in text and '<a id="here-sec"' in text
    # a target of this page that the notebook has no anchor for keeps the website link
    assert "[Title of here-nowhere](https://site/page.html#here-nowhere)" in text


def _sphinx_resolver() -> lensbox_book.SphinxResolver:
    """A SphinxResolver over a stand-in build: chapter ``book/ch`` with Exercise 1.3 and Fig. 1.2."""
    resolver = lensbox_book.SphinxResolver.__new__(lensbox_book.SphinxResolver)
    resolver.docname = "book/ch"
    resolver.site = "https://site/"
    resolver.bib = {}
    resolver.std = SimpleNamespace(
        labels={
            "ex-error-sum": ("book/ch", "ex-error-sum", "Exercise"),
            "fig-a": ("book/ch", "fig-a", ""),
            "sec-x": ("book/ch", "sec-x", "A section"),
        },
        anonlabels={},
    )
    resolver.env = SimpleNamespace(
        toc_fignumbers={
            "book/ch": {
                "exercise": {"ex-error-sum": (1, 3)},
                "figure": {"fig-a": (1, 2)},
            }
        },
        toc_secnumbers={"book/ch": {"": (1,)}},
        titles={},
    )
    resolver.app = SimpleNamespace(
        config=SimpleNamespace(
            numfig_format={"figure": "Fig. %s", "exercise": "Exercise %s"}
        ),
        builder=SimpleNamespace(get_target_uri=lambda docname: f"{docname}.html"),
    )
    return resolver


def test_the_sphinx_resolver_numbers_a_ref_to_an_exercise_as_the_website_does():
    resolver = _sphinx_resolver()
    assert resolver.reference("ref", "ex-error-sum") == (
        "Exercise 1.3",
        "https://site/book/ch.html#ex-error-sum",
    )
    assert resolver.reference("numref", "fig-a")[0] == "Fig. 1.2"
    assert resolver.reference("ref", "sec-x")[0] == "A section"  # a section: its title


def test_a_figure_a_code_cell_draws_is_shown_once_with_its_caption_below():
    """Run in Jupyter, ``glue("fig-a", fig)`` shows the figure under its cell: the caption keeps
    its number and anchor, without a stored copy of the figure."""
    png = "iVBORw0KGgo="
    nb = _executed(
        [
            nbformat.v4.new_code_cell('fig = plot()\nglue("fig-a", fig)'),
            nbformat.v4.new_markdown_cell(
                "```{glue:figure} fig-a\n:name: fig-a\n\nA *caption*.\n```"
            ),
        ]
    )
    out = colab.convert(
        nb, FakeResolver(), glue={"fig-a": {"data": {"image/png": png}}}
    )
    figure = out.cells[1]
    assert "attachments" not in figure and "attachment:" not in figure.source
    assert figure.source.startswith('<a id="fig-a"')
    assert "**Figure 2.1** (drawn by the code above). A *caption*." in figure.source
    assert colab.leftover_myst(out) == []


def test_figure_alt_text_reads_tex_as_words():
    png = "iVBORw0KGgo="
    caption = (
        r"The slope for $\gamma \leq 10^{-3}$ is 2; the model starts at "
        r"$f_{\theta_0}(x)$ and adds $\Delta\tilde f_t(x)$ per step."
    )
    nb = _executed(
        [
            nbformat.v4.new_code_cell("fig"),
            nbformat.v4.new_markdown_cell(
                f"```{{glue:figure}} fig-a\n:name: fig-a\n\n{caption}\n```"
            ),
        ]
    )
    out = colab.convert(
        nb, FakeResolver(), glue={"fig-a": {"data": {"image/png": png}}}
    )
    alt = out.cells[1].source.split("](attachment:")[0].split("![", 1)[1]
    assert alt == (
        "The slope for gamma ≤ 10^-3 is 2; the model starts at f_theta_0(x) and adds "
        "Delta tilde f_t(x) per step."
    )
    assert colab.tex_words(r"\alpha \in \{5, 6\}, \frac{1}{n}, \mathbf{k}_t") == (
        "alpha in {5, 6}, 1/n, k_t"
    )


def test_the_website_alt_text_of_a_figure_reads_its_math_as_words():
    image = nodes.image(uri="fig.png")
    caption = nodes.caption(
        "",
        "",
        nodes.Text("Slope for "),
        nodes.math(text=r"\gamma \leq 10^{-3}"),
        nodes.Text(", from "),
        nodes.math(text=r"f_{\theta_0}(x)"),
    )
    doctree = nodes.document(None, None)
    doctree += nodes.figure("", image, caption)
    lensbox_book.alt_text(None, doctree)
    assert image["alt"] == "Slope for gamma ≤ 10^-3, from f_theta_0(x)"


# --------------------------------------------------------------------------- built site


def _site() -> Path:
    return built_site("colab", "built site with Colab notebooks")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_generated_colab_notebook_has_no_myst_and_every_code_cell(chapter):
    site = _site()
    path = site / "colab" / "book" / f"{chapter}.ipynb"
    assert path.exists(), f"the build wrote no Colab notebook for {chapter}"
    out = nbformat.read(path, as_version=4)
    assert colab.leftover_myst(out) == []
    source = nbformat.read(ROOT / "book" / f"{chapter}.ipynb", as_version=4)
    n_code = sum(c.cell_type == "code" for c in source.cells)
    assert sum(c.cell_type == "code" for c in out.cells) == n_code
    # The first cell names the book, as _config.yml titles it, and links its site.
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    header = out.cells[0]
    assert header.cell_type == "markdown"
    assert f"[{config['title']}](https://" in header.source, header.source
    assert "not set" not in header.source.lower()
    codes = [c for c in out.cells if c.cell_type == "code"]
    first = codes[0].source
    assert (
        "%pip install" in first and "import lensbox" in first
    )  # the install cell is kept

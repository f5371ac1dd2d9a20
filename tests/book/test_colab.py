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

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "book" / "_ext"))

import lensbox_colab as colab  # noqa: E402
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

"""Every chapter's ``paper`` code path, executed end to end on a CPU.

The chapters run with ``LENSBOX_SCALE=paper`` (the paper's data sets, branches and figures) under
the test-only override ``LENSBOX_PAPER_BUDGET=smoke`` (smoke-sized steps, widths and seeds), with
the downloads replaced by small files in the official formats (``LENSBOX_DATA_FIXTURES``, written
by ``tests/fixtures.py``). A chapter passes when every cell runs and every figure its text places
(``{glue:figure}``) was drawn as an image, so each paper-scale figure is drawn at least once in CI.
The numbers are meaningless: claims are not checked at this budget (``lensbox.claim`` still runs).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from fixtures import write_paper_fixtures

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import kernel_wakeups  # noqa: E402

kernel_wakeups.install()  # as in the build: a lost wake-up costs a second, not the cell timeout
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))
CELL_TIMEOUT_S = 600
_GLUE_FIGURE = re.compile(r"[`:]{3,}\{glue:figure\}\s+(\S+)")


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory):
    return write_paper_fixtures(tmp_path_factory.mktemp("paper-data"))


def placed_figures(nb) -> set[str]:
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    return set(_GLUE_FIGURE.findall(text))


def glued_images(nb) -> set[str]:
    names = set()
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            record = out.get("metadata", {}).get("scrapbook", {})
            if record and any(k.endswith("image/png") for k in out.get("data", {})):
                names.add(record["name"])
    return names


@pytest.mark.chapters
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_paper_branch_runs_and_draws_every_figure(
    path, fixture_dir, monkeypatch, tmp_path
):
    monkeypatch.setenv("LENSBOX_SCALE", "paper")
    monkeypatch.setenv("LENSBOX_PAPER_BUDGET", "smoke")
    monkeypatch.setenv("LENSBOX_DATA_FIXTURES", str(fixture_dir))
    monkeypatch.setenv("LENSBOX_DATA", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv(
        "LENSBOX_BOOK_BUILD", "1"
    )  # glue stores named records, as in the build
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute(env=dict(os.environ))
    missing = placed_figures(nb) - glued_images(nb)
    assert not missing, f"{path.name} at paper scale did not draw: {sorted(missing)}"

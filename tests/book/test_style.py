"""Code style the website relies on: 88-column formatting and the tags that hide plumbing cells.

The whole repository (lensbox, tests, scripts, chapters) is formatted with ``ruff format`` at 88
columns (``pyproject.toml`` [tool.ruff]) and every chapter carries the tags of
``scripts/tag_cells.py``. Both are applied by running the two commands below.

    ruff format .
    python scripts/tag_cells.py book/*.ipynb
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import tag_cells  # noqa: E402

CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))


def _ruff() -> str:
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.fail("ruff is missing: pip install -r requirements.txt")
    return ruff


def _unformatted(*paths: str) -> list[str]:
    result = subprocess.run(
        [_ruff(), "format", "--check", "--output-format", "concise", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode in (0, 1), result.stderr  # 2: ruff itself failed
    return [
        line for line in result.stdout.splitlines() if "would be reformatted" in line
    ]


def test_everything_is_formatted_to_88_columns():
    assert _unformatted(".") == []


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_every_chapter_tags_its_plumbing_cells(path):
    assert tag_cells.missing(json.loads(path.read_text())) == []


def test_tagging_is_idempotent_and_only_adds():
    """On a chapter stripped of the tags the rules require, ``tag`` puts back exactly those,
    keeps every other tag, and a second pass changes nothing."""
    nb = json.loads(CHAPTERS[0].read_text())
    required = tag_cells.required_tags(nb["cells"])
    assert any(required), "the first chapter has no plumbing cell to tag"
    stripped = []
    for cell, tags in zip(nb["cells"], required):
        kept = set(cell.get("metadata", {}).get("tags", [])) - tags | {"reader-tag"}
        cell.setdefault("metadata", {})["tags"] = sorted(kept)
        stripped.append(kept)
    assert tag_cells.tag(nb) == sum(1 for tags in required if tags)
    for cell, kept, tags in zip(nb["cells"], stripped, required):
        assert set(cell["metadata"]["tags"]) == kept | tags
    assert tag_cells.missing(nb) == [] and tag_cells.tag(nb) == 0


def test_tag_rules():
    cells = [
        {
            "cell_type": "code",
            "source": "try:\n    import lensbox\nexcept ImportError:\n"
            "    %pip install -q lensbox\n",
        },  # fmt: skip
        {"cell_type": "code", "source": "fig, ax = plt.subplots()\nglue('fig-a', fig)"},
        {"cell_type": "code", "source": 'if lensbox.scale() != "smoke":\n    assert x'},
        {
            "cell_type": "code",
            "source": "widgets.interactive(f, x=widgets.IntSlider(1, 0, 3))",
        },
        {"cell_type": "code", "source": "y = glue_like(x)"},
        {"cell_type": "markdown", "source": "glue('x', 1)"},
    ]
    assert tag_cells.required_tags(cells) == [
        {"hide-cell"},
        {"hide-input"},
        {"hide-input"},
        {"remove-output"},
        set(),
        set(),
    ]

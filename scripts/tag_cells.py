"""Tag the plumbing cells of the chapters by rule, so the website hides or folds them.

Rules (a cell may match several; tags are only ever added, never removed, so running this twice
changes nothing the second time):

* the install cell (the first code cell, which imports lensbox and ``%pip install``s it when
  missing) -> ``hide-cell``: folded on the website, kept in Colab;
* a cell that stores a figure or value with ``glue(...)`` -> ``hide-input``: the website shows the
  figure where ``{glue:figure}`` places it and folds the code that drew it;
* a smoke-scale guard (a cell that starts with ``if lensbox.scale() != "smoke":`` or
  ``if lensbox.scale() == "smoke":``) -> ``hide-input``;
* a cell that builds an ipywidgets widget (``widgets.interactive``, ``interact``) ->
  ``remove-output``: a static page has no kernel behind a slider (the build also drops widget
  views; the tag keeps the page free of them when another tool renders it).

Usage: ``python scripts/tag_cells.py book/*.ipynb`` (rewrites the notebooks that need tags);
``python scripts/tag_cells.py --check book/*.ipynb`` lists the missing tags and exits 1 if any.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

INSTALL = re.compile(r"^\s*%pip install", re.M)
GLUE = re.compile(r"(^|[^\w.])(glue|plotting\.glue)\(", re.M)
GUARD = re.compile(
    r"^\s*if\s+(lensbox\.)?scale\(\)\s*(!=|==)\s*[\"']smoke[\"']\s*:", re.S
)
WIDGET = re.compile(r"\bwidgets\.interact(ive)?\(|^\s*@?(interact|interactive)\(", re.M)


def required_tags(cells: list[dict]) -> list[set[str]]:
    """The tags each cell must carry by the rules above (empty sets for Markdown cells)."""
    out: list[set[str]] = []
    first_code = True
    for cell in cells:
        tags: set[str] = set()
        if cell["cell_type"] == "code":
            source = (
                "".join(cell["source"])
                if isinstance(cell["source"], list)
                else cell["source"]
            )
            if first_code and "import lensbox" in source and INSTALL.search(source):
                tags.add("hide-cell")
            elif GLUE.search(source) or GUARD.match(source):
                tags.add("hide-input")
            if WIDGET.search(source):
                tags.add("remove-output")
            first_code = False
        out.append(tags)
    return out


def missing(notebook: dict) -> list[tuple[int, set[str]]]:
    """``(cell index, tags)`` of every cell that lacks a tag the rules require."""
    gaps = []
    for index, (cell, tags) in enumerate(
        zip(notebook["cells"], required_tags(notebook["cells"]))
    ):
        absent = tags - set(cell.get("metadata", {}).get("tags", []))
        if absent:
            gaps.append((index, absent))
    return gaps


def tag(notebook: dict) -> int:
    """Add the missing tags in place; return how many cells changed."""
    gaps = missing(notebook)
    for index, absent in gaps:
        meta = notebook["cells"][index].setdefault("metadata", {})
        meta["tags"] = list(meta.get("tags", [])) + sorted(absent)
    return len(gaps)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="only report missing tags")
    args = parser.parse_args(argv)
    bad = 0
    for path in args.notebooks:
        notebook = json.loads(path.read_text())
        if args.check:
            for index, absent in missing(notebook):
                print(f"{path}: cell {index} needs tags {sorted(absent)}")
                bad += 1
            continue
        if tag(notebook):
            # the chapters' own layout (one-space indent, sources as strings), so diffs stay small
            path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
            print(f"tagged {path}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

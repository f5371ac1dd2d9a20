"""Lay out a built site's Colab notebooks for nbval, the chapters' test runner.

``scripts/test.sh`` calls this after the strict smoke-scale build, then hands the folder to
pytest: nbval runs each generated Colab notebook, cell by cell, in a plain Jupyter kernel whose
working directory holds nothing but these notebooks (no repository files, no MyST, no glue). One
execution checks both that the chapter runs and that its Colab version runs alone.

Each copy gets one last cell that fails if anything imported myst-nb: Colab does not have it.

Usage: ``python scripts/colab_for_nbval.py SITE_HTML_DIR DEST_DIR``
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import nbformat

NO_MYST_CELL = (
    "import sys\n\nassert 'myst_nb' not in sys.modules, 'myst-nb was imported'"
)


def prepare(site: Path, dest: Path) -> list[Path]:
    """Copy every notebook of ``site/colab/`` into ``dest`` (emptied first); return the copies."""
    notebooks = sorted((site / "colab").rglob("*.ipynb"))
    if not notebooks:
        raise SystemExit(
            f"{site / 'colab'} holds no Colab notebooks: build the site first"
        )
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    written = []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        nb.cells.append(nbformat.v4.new_code_cell(NO_MYST_CELL))
        target = dest / path.name
        nbformat.write(nb, target)
        written.append(target)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="the built site's HTML folder")
    parser.add_argument(
        "dest", type=Path, help="where to write the notebooks for nbval"
    )
    args = parser.parse_args()
    written = prepare(args.site, args.dest)
    print(f"{len(written)} Colab notebooks for nbval in {args.dest}")


if __name__ == "__main__":
    main()

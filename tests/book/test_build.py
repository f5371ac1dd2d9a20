"""The book's Sphinx extension executing chapters: real (tiny) Sphinx builds with myst-nb.

At smoke scale a stuck cell fails the build within the smoke timeout, naming the cell; with
``LENSBOX_PARALLEL_EXECUTION=1`` the notebooks are executed side by side before Sphinx reads
them, every one afresh, and a failing cell still fails the build.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
EXT = ROOT / "book" / "_ext"
sys.path.insert(0, str(EXT))

import lensbox_book  # noqa: E402

CONF = """
import sys
sys.path.insert(0, {ext!r})
import lensbox_book
lensbox_book.SMOKE_TIMEOUT = {timeout}  # the test's stand-in for the real 300 s
extensions = ["myst_nb", "lensbox_book"]
nb_execution_mode = "force"
nb_execution_timeout = 1800  # the book's own setting (_config.yml)
nb_execution_raise_on_error = True
nb_execution_show_tb = True  # as the book sets it: the log names the cell
html_theme_options = {{"repository_url": "https://github.com/example/book"}}
"""


def _notebook(*sources: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# A chapter")]
        + [nbformat.v4.new_code_cell(s) for s in sources],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )


def _build(tmp_path: Path, notebooks: dict, *, timeout=300, **env_update):
    """Build a project of ``notebooks`` (name: notebook) with the book's extension, reading
    every source afresh (``-E``)."""
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "conf.py").write_text(CONF.format(ext=str(EXT), timeout=timeout))
    toc = "\n".join(notebooks)
    (src / "index.md").write_text(f"# Index\n\n```{{toctree}}\n{toc}\n```\n")
    for name, nb in notebooks.items():
        nbformat.write(nb, src / f"{name}.ipynb")
    env = {**os.environ, "LENSBOX_SCALE": "smoke", "LENSBOX_CLAIMS_DIR": str(tmp_path)}
    env.pop(lensbox_book.PARALLEL_ENV, None)
    env.update(env_update)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-T", "-E", "-b", "html", str(src),
         str(tmp_path / "out" / "html")],
        env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    return result, time.perf_counter() - start


def test_a_stuck_cell_fails_the_smoke_build_naming_the_cell(tmp_path):
    """A cell that never ends fails the build after the smoke timeout, not after the
    configured 1800 s."""
    assert lensbox_book.SMOKE_TIMEOUT <= 300
    result, seconds = _build(
        tmp_path, {"stuck": _notebook("import time\ntime.sleep(600)")}, timeout=5
    )
    assert result.returncode != 0, "the build went on past a stuck cell"
    log = result.stdout + result.stderr
    assert "time.sleep(600)" in log and "timed out" in log.lower(), log[-2000:]
    assert seconds < 120


def _executed(tmp_path: Path, name: str) -> dict:
    """The build's executed copy of a notebook (what the Colab notebooks are made from)."""
    return json.loads(
        (tmp_path / "out" / "jupyter_execute" / f"{name}.ipynb").read_text()
    )


def test_side_by_side_execution_runs_every_notebook_afresh_in_its_own_process(tmp_path):
    cell = "import os, time\nprint(os.getpid(), time.time())  # {}"
    notebooks = {n: _notebook(cell.format(n)) for n in ("one", "two")}
    result, _ = _build(tmp_path, notebooks, LENSBOX_PARALLEL_EXECUTION="1")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    log = result.stdout + result.stderr
    assert "executed 2 of 2 notebooks side by side" in log
    assert (
        "Using cached notebook" in log
    )  # myst-nb read the results, did not execute again
    printed = [
        "".join(_executed(tmp_path, n)["cells"][1]["outputs"][0]["text"]).split()
        for n in notebooks
    ]
    assert printed[0][0] != printed[1][0]  # two kernels
    # A second build executes afresh (the cache is emptied), like execute_notebooks: force.
    result, _ = _build(tmp_path, notebooks, LENSBOX_PARALLEL_EXECUTION="1")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    again = "".join(
        _executed(tmp_path, "one")["cells"][1]["outputs"][0]["text"]
    ).split()
    assert again != printed[0]


def test_a_failing_cell_fails_the_side_by_side_build_naming_it(tmp_path):
    notebooks = {
        "fine": _notebook("x = 1"),
        "broken": _notebook("raise RuntimeError('a chapter broke here')"),
    }
    result, _ = _build(tmp_path, notebooks, LENSBOX_PARALLEL_EXECUTION="1")
    assert result.returncode != 0
    log = result.stdout + result.stderr
    assert "failed: ['broken']" in log
    assert "a chapter broke here" in log

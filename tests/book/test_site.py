"""The built website, opened in a real browser (headless Chromium).

Every page loads and typesets its maths (no raw TeX delimiters left in the rendered text), no
local link or image is broken, every Colab button opens a notebook that exists in the build, and
no page prints a path of the build machine. A screenshot of every page is saved beside the site
(``<site>/../screenshots/``) for review, and the counts in ``<site>/../browser-report.json``.

Runs when ``LENSBOX_SITE`` names a built site's HTML folder (``scripts/test.sh`` builds the
smoke-scale site, installs Debian's ``chromium`` when missing, and sets it).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from fixtures import built_site

# One worker renders every page, once (the module-scoped fixture below), under pytest-xdist.
pytestmark = pytest.mark.xdist_group("browser")

ROOT = Path(__file__).resolve().parents[2]
RAW_TEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$|\\begin\{")


class Page(HTMLParser):
    """Links, images, ids and the visible text (outside scripts, styles and code) of a page."""

    SKIP = {"script", "style", "pre", "code", "kbd", "samp", "textarea"}

    def __init__(self):
        super().__init__()
        self.links, self.images, self.ids, self.text = [], [], set(), []
        self.no_alt: list[str] = []
        self.math = 0
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "img" and a.get("src"):
            self.images.append(a["src"])
            if not (a.get("alt") or "").strip():
                self.no_alt.append(a["src"])
        if tag == "mjx-container":
            self.math += 1
        if tag in self.SKIP:
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in self.SKIP and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


@functools.lru_cache(maxsize=None)
def _ids(path: Path) -> frozenset[str]:
    return frozenset(parse(path.read_text()).ids)


def _site() -> Path:
    return built_site("index.html", "built site")


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    if os.environ.get("LENSBOX_REQUIRE_SITE") == "1":
        pytest.fail("no chromium: scripts/test.sh installs Debian's package `chromium`")
    pytest.skip("no chromium installed")


def _pages(site: Path) -> list[Path]:
    skip = ("_static", "_sources", "_images", "colab", "genindex", "search")
    pages = [
        p
        for p in site.rglob("*.html")
        if not p.relative_to(site).parts[0].startswith(skip)
    ]
    return sorted(p for p in pages if not _redirect(p))


def _redirect(path: Path) -> bool:
    """A page that only redirects (Jupyter Book's index.html); its target must exist."""
    head = path.read_text()[:2000]
    m = re.search(r'http-equiv="refresh" content="0; url=([^"]+)"', head, re.I)
    if m:
        assert (path.parent / m[1]).exists(), (
            f"{path.name} redirects to a missing {m[1]}"
        )
    return bool(m)


def _browser(chromium: str, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--allow-file-access-from-files", "--hide-scrollbars"]  # fmt: skip
    return subprocess.run(
        [chromium, *flags, *args], capture_output=True, text=True, timeout=180
    )


@pytest.fixture(scope="module")
def rendered():
    """Every page as the browser renders it (DOM after scripts ran), with a screenshot each."""
    site, chromium = _site(), _chromium()
    shots = site.parent / "screenshots"
    shots.mkdir(exist_ok=True)
    out = {}
    for path in _pages(site):
        url = path.as_uri()
        dom = _browser(chromium, "--virtual-time-budget=20000", "--dump-dom", url)
        assert dom.returncode == 0 and "</html>" in dom.stdout, (
            f"{path.name} did not load"
        )
        name = str(path.relative_to(site)).replace("/", "_").removesuffix(".html")
        shot = shots / f"{name}.png"
        _browser(chromium, "--virtual-time-budget=20000", "--window-size=1280,1600",
                 f"--screenshot={shot}", url)  # fmt: skip
        assert shot.exists() and shot.stat().st_size > 10_000, (
            f"no screenshot of {path.name}"
        )
        out[path] = dom.stdout
    return out


def test_every_page_loads_typesets_its_maths_and_has_no_broken_link_or_image(rendered):
    site = _site()
    counts = {
        "pages": 0,
        "local links": 0,
        "images": 0,
        "typeset formulas": 0,
    }
    broken, raw = [], []
    for path, dom in rendered.items():
        page = parse(dom)
        counts["pages"] += 1
        counts["typeset formulas"] += page.math
        text = " ".join(page.text)
        for m in RAW_TEX.finditer(text):
            raw.append(
                f"{path.name}: ...{text[max(0, m.start() - 40) : m.end() + 40]}..."
            )
        for ref in page.links + page.images:
            parsed = urlparse(ref)
            if parsed.scheme in ("http", "https", "mailto", "data", "javascript"):
                continue
            counts["images" if ref in page.images else "local links"] += 1
            target = (
                (path.parent / unquote(parsed.path)).resolve() if parsed.path else path
            )
            if not target.exists():
                broken.append(f"{path.name} -> {ref}")
            elif (
                parsed.fragment
                and target.suffix == ".html"
                and parsed.fragment != "top"
            ):
                if parsed.fragment not in _ids(target) | page.ids:
                    broken.append(f"{path.name} -> {ref} (no such anchor)")
    assert raw == [], f"raw TeX left after typesetting: {raw[:5]}"
    assert broken == [], f"broken local links or images: {broken[:10]}"
    assert counts["typeset formulas"] > 0
    _report(site, counts)


def _report(site: Path, counts: dict) -> None:
    """Add ``counts`` to ``browser-report.json`` beside the site, whichever test runs first."""
    report = site.parent / "browser-report.json"
    merged = json.loads(report.read_text()) if report.exists() else {}
    report.write_text(json.dumps({**merged, **counts}, indent=1))


def test_every_colab_button_opens_a_generated_notebook(rendered):
    site = _site()
    found = 0
    for path, dom in rendered.items():
        for ref in parse(dom).links:
            m = re.match(
                r"https://colab\.research\.google\.com/github/[^/]+/[^/]+/blob/[^/]+/(.+)$",
                ref,
            )
            if m:
                found += 1
                assert (site / unquote(m[1])).exists(), (
                    f"{path.name}: {ref} names no generated notebook"
                )
    chapters = list((ROOT / "book").glob("*.ipynb"))
    assert found >= len(chapters), f"{found} Colab links for {len(chapters)} chapters"
    _report(site, {"colab links": found})


def test_no_page_and_no_notebook_prints_a_path_of_the_build_machine():
    site = _site()
    machine = {str(ROOT), str(Path.home()) + "/", "/site-packages/", "/tmp/", "/work/"}
    leaks = []
    for path in [*_pages(site), *site.joinpath("colab").rglob("*.ipynb")]:
        text = path.read_text(errors="replace")
        if path.suffix == ".html":
            text = " ".join(parse(text).text)
        leaks += [f"{path.relative_to(site)}: {p}" for p in machine if p in text]
    assert leaks == [], leaks[:10]


def test_maths_and_widgets_need_no_cdn():
    site = _site()
    cdn = re.compile(
        r"<script[^>]+src=\"https?://[^\"]*(mathjax|require|jupyter-widgets|cdn)", re.I
    )
    for path in _pages(site):
        html = path.read_text()
        assert not cdn.search(html), f"{path.name} loads a script from a CDN"
        assert "application/vnd.jupyter.widget-state+json" not in html, path.name
        assert "application/vnd.jupyter.widget-view+json" not in html, path.name
    assert (site / "_static" / "mathjax" / "tex-chtml.js").exists()


def test_paper_vs_book_lists_every_recorded_claim_and_the_execution_table():
    site = _site()
    records = sum(
        1
        for path in (site.parent / "claims").glob("*.jsonl")
        for line in path.read_text().splitlines()
        if line.strip()
    )
    html = (site / "book" / "paper_vs_book.html").read_text()
    tables = re.findall(r"<table[^>]*lensbox-claims.*?</table>", html, re.S)
    rows = sum(t.count("<tr") - 1 for t in tables)  # minus each table's header row
    assert rows == records, f"{rows} rows for {records} recorded claims"
    if records == 0:
        assert "No chapter recorded a claim" in html
    assert (
        "book/telescoping_model" in html or "telescoping_model.html" in html
    )  # exec table


def test_api_reference_documents_every_public_module():
    import pkgutil

    import lensbox

    site = _site()
    index = (site / "book" / "api.html").read_text()
    assert 'href="api/lensbox.html"' in index
    for module in pkgutil.walk_packages(lensbox.__path__, prefix="lensbox."):
        if not any(part.startswith("_") for part in module.name.split(".")):
            page = site / "book" / "api" / f"{module.name}.html"
            assert page.exists(), module.name
            assert f'id="module-{module.name}"' in page.read_text(), module.name
    # a module's page documents its functions in full, not only in the summary table
    models = (site / "book" / "api" / "lensbox.engine.models.html").read_text()
    assert 'id="lensbox.engine.models.count_parameters"' in models


def test_figures_have_alt_text_and_open_at_full_size_and_wide_outputs_scroll():
    site = _site()
    missing = []
    for path in _pages(site):
        html = path.read_text()
        page = parse(html)
        missing += [f"{path.name}: {src}" for src in page.no_alt]
        assert "lensbox.css" in html and "lensbox.js" in html, path.name
    assert missing == [], missing[:10]
    css = (site / "_static" / "lensbox.css").read_text()
    assert "overflow-x: auto" in css
    assert "lensbox-enlarge" in (site / "_static" / "lensbox.js").read_text()


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?")


def _repeats(claim_numbers: set[str], other_numbers: set[str]) -> bool:
    """Whether a printed line repeats a claim's numbers: it carries all of them and either two
    or more measured (non-integer) values, or nothing else but integers (labels and counts).
    One measured value alone may equal another quantity by chance (two rounding-level errors)."""
    if not claim_numbers or not claim_numbers <= other_numbers:
        return False
    measured = {x for x in claim_numbers if not x.lstrip("-").isdigit()}
    extra = other_numbers - claim_numbers
    return len(measured) >= 2 or all(x.lstrip("-").isdigit() for x in extra)


def test_no_claim_line_repeats_a_line_printed_beside_it():
    """A cell's ``[claim ...]`` line is the only place its measured numbers are printed: no
    other line of the same cell's output carries them again."""
    site = _site()
    executed = sorted((site.parent / "jupyter_execute").rglob("*.ipynb"))
    assert executed, "the build kept no executed notebooks"
    repeats, claims = [], 0
    for path in executed:
        cells = json.loads(path.read_text())["cells"]
        for cell in cells:
            lines = "".join(
                "".join(out.get("text", ""))
                for out in cell.get("outputs", [])
                if out.get("output_type") == "stream"
            ).splitlines()
            for line in lines:
                if not line.startswith("[claim "):
                    continue
                claims += 1
                numbers = set(_NUMBER.findall(line.split("| ours:", 1)[-1]))
                for other in lines:
                    if not other.startswith("[claim ") and _repeats(
                        numbers, set(_NUMBER.findall(other))
                    ):
                        repeats.append(f"{path.stem}: {other!r} repeats {line!r}")
    assert claims > 0, "no executed chapter printed a claim line"
    assert repeats == [], repeats[:5]

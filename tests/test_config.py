import os

import pytest

import lensbox
from lensbox.runtime import chapter
from lensbox.runtime import scale as scales


def test_smoke_scale_is_in_force():
    # Sentinel: the test suite (and the notebooks nbval runs) must be at smoke scale.
    assert os.environ["LENSBOX_SCALE"] == "smoke"
    assert lensbox.scale() == "smoke"
    assert lensbox.by_scale(smoke=1, book=2, paper=3) == 1


@pytest.mark.parametrize(
    "value, expected",
    [("book", "book"), ("PAPER", "paper"), ("", "book"), (" smoke ", "smoke")],
)
def test_scale_values(monkeypatch, value, expected):
    monkeypatch.setenv("LENSBOX_SCALE", value)
    assert scales.scale() == expected


def test_scale_defaults_to_book(monkeypatch):
    monkeypatch.delenv("LENSBOX_SCALE")
    assert scales.scale() == "book"
    assert scales.by_scale(smoke="s", book="b", paper="p") == "b"


def test_unknown_scale_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("LENSBOX_SCALE", "huge")
    with pytest.raises(ValueError, match="LENSBOX_SCALE='huge'.*smoke, book, paper"):
        scales.scale()


def test_setup_sets_precision_and_seed():
    import jax
    import numpy as np

    key = lensbox.setup(seed=3, x64=True)
    assert jax.config.read("jax_enable_x64")
    first = np.random.rand()
    lensbox.setup(seed=3)
    assert np.random.rand() == first
    # The key is the seed's own: equal to PRNGKey(3), different from another seed's.
    np.testing.assert_array_equal(key, jax.random.PRNGKey(3))
    assert not np.array_equal(lensbox.setup(seed=4), key)
    assert "scale: smoke" in chapter.describe()


def test_precision_context_switches_float64_inside_only():
    import jax
    import jax.numpy as jnp

    lensbox.setup(seed=0, x64=False)
    try:
        assert jnp.zeros(()).dtype == jnp.float32
        with chapter.precision(True):
            assert jnp.zeros(()).dtype == jnp.float64
        assert jnp.zeros(()).dtype == jnp.float32
    finally:
        jax.config.update("jax_enable_x64", True)


def test_tests_cannot_open_a_network_connection():
    import socket
    import urllib.request

    with pytest.raises(OSError, match="tried to open a network connection"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    with pytest.raises(OSError):
        urllib.request.urlopen("http://example.org", timeout=1)


def test_budget_follows_the_scale_and_the_paper_override(monkeypatch):
    sizes = dict(smoke=1, book=2, paper=3)
    for scale_name, expected in (("smoke", 1), ("book", 2), ("paper", 3)):
        monkeypatch.setenv("LENSBOX_SCALE", scale_name)
        assert scales.budget(**sizes) == expected
    monkeypatch.setenv("LENSBOX_PAPER_BUDGET", "smoke")
    # the paper code path (choices) with smoke sizes
    assert scales.scale() == "paper" and scales.by_scale(**sizes) == 3
    assert scales.budget(**sizes) == 1
    assert "test override" in chapter.describe()


def test_paper_budget_override_is_checked(monkeypatch):
    monkeypatch.setenv("LENSBOX_PAPER_BUDGET", "smoke")
    monkeypatch.setenv("LENSBOX_SCALE", "book")
    with pytest.raises(ValueError, match="only applies with LENSBOX_SCALE=paper"):
        scales.budget(smoke=1, book=2, paper=3)
    monkeypatch.setenv("LENSBOX_SCALE", "paper")
    monkeypatch.setenv("LENSBOX_PAPER_BUDGET", "tiny")
    with pytest.raises(ValueError, match="only override is 'smoke'"):
        scales.budget(smoke=1, book=2, paper=3)


def test_claim_passes_fails_and_records(monkeypatch, tmp_path, capsys):
    import json

    from lensbox.runtime import claims

    monkeypatch.setenv("LENSBOX_CLAIMS_DIR", str(tmp_path))
    lensbox.setup(seed=0, chapter="toy", style=False)
    lensbox.claim("Fig. 1: the error falls", "error 0.1 -> 0.01", 0.01 < 0.1)
    lensbox.claim(
        "Fig. 2: a peak appears", "no peak: max 0.2 at width 1", False, expect=False
    )
    assert "[claim reproduces] paper: Fig. 1" in capsys.readouterr().out
    with pytest.raises(lensbox.ClaimError, match="states that this finding reproduces"):
        lensbox.claim("Fig. 3: p falls", "p rises 120 -> 130", 130 < 120)
    with pytest.raises(
        lensbox.ClaimError, match="does not reproduce, but in this run it reproduces"
    ):
        lensbox.claim("Fig. 4", "holds now", True, expect=False)
    records = [
        json.loads(line) for line in (tmp_path / "toy.jsonl").read_text().splitlines()
    ]
    assert [(r["holds"], r["expect"]) for r in records] == [
        (True, True),
        (False, False),
        (False, True),
        (True, False),
    ]
    assert {r["chapter"] for r in records} == {"toy"} and records[0]["scale"] == "smoke"
    # a new setup of the same chapter starts its record afresh
    lensbox.setup(seed=0, chapter="toy", style=False)
    assert not (tmp_path / "toy.jsonl").exists()
    claims.set_chapter(None)


@pytest.mark.parametrize(
    "bad",
    [
        dict(paper="", ours="x", holds=True),
        dict(paper="p", ours=None, holds=True),
        dict(paper="p", ours="x", holds=[True, False]),
    ],
)
def test_claim_rejects_malformed_input(bad):
    import numpy as np

    if isinstance(bad["holds"], list):
        bad = {**bad, "holds": np.array(bad["holds"])}
    with pytest.raises(TypeError, match="claim:"):
        lensbox.claim(**bad)


def test_every_submodule_resolves_after_a_bare_import():
    """``lensbox.X.Y`` works for every public module file of the package, at any depth, with only
    ``import lensbox`` run, in a fresh interpreter (no other test has imported them)."""
    import pkgutil
    import subprocess
    import sys

    files = sorted(
        m.name
        for m in pkgutil.walk_packages(lensbox.__path__, prefix="lensbox.")
        if not any(part.startswith("_") for part in m.name.split("."))
    )
    code = (
        "import functools, lensbox\n"
        f"for name in {files!r}:\n"
        "    parts = name.split('.')[1:]\n"
        "    module = functools.reduce(getattr, parts, lensbox)\n"
        "    assert module.__name__ == name, name\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert {"lensbox.engine.smoother", "lensbox.data.catalogue"} <= set(files)

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


def test_scale_in_force_sets_the_scale_for_a_block_and_restores_both_variables(
    monkeypatch,
):
    monkeypatch.setenv("LENSBOX_SCALE", "paper")
    monkeypatch.setenv("LENSBOX_PAPER_BUDGET", "smoke")
    with scales.scale_in_force("book"):
        assert scales.scale() == "book" and not scales.paper_budget_is_smoke()
        assert scales.budget(smoke=1, book=2, paper=3) == 2
    assert scales.scale() == "paper" and scales.paper_budget_is_smoke()
    monkeypatch.delenv("LENSBOX_SCALE")
    monkeypatch.delenv("LENSBOX_PAPER_BUDGET")
    with pytest.raises(RuntimeError), scales.scale_in_force("smoke"):
        assert scales.scale() == "smoke"
        raise RuntimeError  # restored on the way out of an error too
    assert "LENSBOX_SCALE" not in os.environ and scales.scale() == "book"
    with pytest.raises(ValueError, match="scale must be one of"):
        with scales.scale_in_force("long"):
            pass

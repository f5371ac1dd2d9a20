"""Tests of lensbox.runtime.claims: a claim passes, fails and records, and refuses malformed input."""

import pytest

import lensbox


def test_claim_passes_fails_and_records(monkeypatch, tmp_path, capsys):
    import json

    from lensbox.runtime import claims

    monkeypatch.setenv("LENSBOX_CLAIMS_DIR", str(tmp_path))
    monkeypatch.setenv("LENSBOX_SCALE", "book")
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
    assert {r["chapter"] for r in records} == {"toy"} and records[0]["scale"] == "book"
    assert all(r["judged"] for r in records)
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


def test_each_record_names_its_rule_and_the_results_it_read(monkeypatch, tmp_path):
    import json

    from lensbox.runtime import claims
    from lensbox.runtime.results import Results

    monkeypatch.setenv("LENSBOX_CLAIMS_DIR", str(tmp_path))
    lensbox.setup(seed=0, chapter="toy", style=False)
    live = Results("toy", "book", {}, {}, "live")
    stored = Results("toy", "long", {}, {}, "stored", tmp_path / "abc123")
    lensbox.claim("Fig. 1", "read live", True, source=live, rule=claims.RULE)
    lensbox.claim("Fig. 2", "read stored", True, source=stored)
    lensbox.claim("Fig. 3", "own numbers", True, rule="binomial: 2 standard errors")
    records = [
        json.loads(line) for line in (tmp_path / "toy.jsonl").read_text().splitlines()
    ]
    assert [r["source"] for r in records] == [
        "computed live (book)",
        "results/toy/abc123/ (long)",
        "computed in the chapter",
    ]
    assert [r["rule"] for r in records] == [
        claims.RULE,
        "the chapter's own bound (stated in its text)",
        "binomial: 2 standard errors",
    ]
    claims.set_chapter(None)


def test_the_rule_needs_three_seeds_twice_the_standard_error_and_the_resolution():
    import numpy as np

    from lensbox.runtime.claims import exceeds

    assert exceeds([0.9, 1.0, 1.1])  # mean 1.0, standard error 0.058
    assert not exceeds([0.9, 1.0])  # two seeds are too few
    assert not exceeds([-1.0, 0.2, 1.1])  # mean 0.1, standard error 0.61
    assert not exceeds([0.9, 1.0, 1.1], resolution=1.0)  # within the recording's step
    assert exceeds(-np.array([-0.9, -1.0, -1.1]))  # a fall, negated
    assert not exceeds([0.9, np.nan, 1.1, 1.0])
    # spread [-1, 0, 1] has standard error 1/sqrt(3): the mean must pass 2/sqrt(3)
    edge = 2 / np.sqrt(3) + np.array([-1.0, 0.0, 1.0])
    assert exceeds(edge + 1e-9) and not exceeds(edge - 1e-9)
    with pytest.raises(lensbox.ShapeError, match="one value per seed"):
        exceeds(np.ones((3, 2)))
    with pytest.raises(lensbox.ArgumentError, match="resolution"):
        exceeds([1.0, 1.0, 1.0], resolution=-1.0)


def test_the_book_states_the_rule_once_in_the_words_of_the_code():
    from pathlib import Path

    from lensbox.runtime.claims import RULE

    root = Path(__file__).resolve().parents[2]
    page = " ".join((root / "book" / "paper_vs_book.md").read_text().split())
    assert RULE in page


def test_smoke_budgets_do_not_judge_a_claim_unless_it_holds_at_any_budget(
    monkeypatch, tmp_path, capsys
):
    import json

    from lensbox.runtime import claims

    monkeypatch.setenv("LENSBOX_CLAIMS_DIR", str(tmp_path))
    monkeypatch.setenv("LENSBOX_SCALE", "smoke")
    lensbox.setup(seed=0, chapter="toy", style=False)
    assert not claims.judged()
    lensbox.claim("Fig. 3: a peak", "no peak in 5 steps", False)  # raises nothing
    lensbox.claim("Fig. 3: a peak", "a peak in 5 steps", True, expect=False)
    assert (
        "[claim not judged at smoke budgets] paper: Fig. 3" in capsys.readouterr().out
    )
    with pytest.raises(lensbox.ClaimError, match="states that this finding reproduces"):
        lensbox.claim("Eq. 4: exact", "error 1e-3", False, any_budget=True)
    lensbox.check("the order matters", False)  # not judged either
    records = [
        json.loads(line) for line in (tmp_path / "toy.jsonl").read_text().splitlines()
    ]
    assert [r["judged"] for r in records] == [False, False, True]
    # the paper code path at smoke sizes is not judged; book and paper are
    monkeypatch.setenv("LENSBOX_SCALE", "paper")
    monkeypatch.setenv("LENSBOX_PAPER_BUDGET", "smoke")
    assert not claims.judged()
    monkeypatch.delenv("LENSBOX_PAPER_BUDGET")
    assert claims.judged()
    with pytest.raises(lensbox.ClaimError, match="states that the order matters.*: 3"):
        lensbox.check("the order matters", False, detail=3)
    lensbox.check("the order matters", True)
    with pytest.raises(TypeError, match="check: statement"):
        lensbox.check("", True)
    with pytest.raises(TypeError, match="check: holds"):
        lensbox.check("x", [True, False])
    claims.set_chapter(None)

"""Tests of lensbox.runtime.claims: a claim passes, fails and records, and refuses malformed input."""

import pytest
import lensbox


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

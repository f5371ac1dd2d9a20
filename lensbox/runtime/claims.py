"""The paper's findings as executed checks: one :func:`claim` per finding a chapter reproduces.

A chapter states each finding of the paper next to what its own run measured, and calls
:func:`claim` with the boolean test that decides whether the finding holds here. The call

* raises :class:`ClaimError` when the outcome differs from what the chapter states (a finding
  the chapter says reproduces stopped holding, or one it says does not reproduce started to),
  so a change that breaks a finding fails the website build instead of silently changing a
  figure;
* prints one line, so a reader running the chapter in Colab sees every check;
* appends a record to ``$LENSBOX_CLAIMS_DIR/<chapter>.jsonl`` when that variable is set (the
  book's build sets it), from which the "Paper vs this book" page is generated.

The bound inside ``holds`` must be fixed from a stated principle before the run, never tuned to
the value observed. The book's one principle is :data:`RULE`, applied by :func:`exceeds`; a check
that needs another says so in ``rule``. Each record names the rule and the results it read
(``source``: a stored result's folder, or a live run).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from lensbox.errors import ArgumentError, ArgumentTypeError, ShapeError
from lensbox.runtime.scale import scale

ENV_VAR = "LENSBOX_CLAIMS_DIR"
#: The fewest seeds a difference is judged on.
MIN_SEEDS = 3
#: The book's one rule for a difference, stated on the "Paper vs this book" page.
RULE = (
    "a difference counts when its mean over at least 3 seeds exceeds twice its standard error "
    "and the resolution of what was recorded"
)
_chapter: str | None = None


class ClaimError(AssertionError):
    """A finding of the paper did not come out as the chapter states."""


def set_chapter(name: str | None) -> None:
    """Name the chapter whose claims follow (called by :func:`lensbox.setup`); clears its record file."""
    global _chapter
    _chapter = name
    path = _record_path()
    if path is not None and path.exists():
        path.unlink()


def current_chapter() -> str | None:
    return _chapter


def _record_path() -> Path | None:
    folder = os.environ.get(ENV_VAR, "").strip()
    if not folder or _chapter is None:
        return None
    return Path(folder) / f"{_chapter}.jsonl"


def exceeds(differences, resolution: float = 0.0) -> bool:
    """:data:`RULE`: whether the per-seed ``differences`` (one value per seed, each the same
    seed's "after" minus "before") are positive beyond chance: their mean exceeds twice its
    standard error and ``resolution`` (the recording's own step: a recording interval, one test
    image's share of the accuracy), with at least :data:`MIN_SEEDS` seeds. For a fall, pass the
    negated differences.
    """
    values = np.asarray(differences, dtype=float)
    if values.ndim != 1:
        raise ShapeError(
            f"exceeds: differences must hold one value per seed (1-D); got shape {values.shape}."
        )
    if not np.isfinite(resolution) or resolution < 0:
        raise ArgumentError(
            f"exceeds: resolution must be a finite number >= 0; got {resolution!r}."
        )
    if len(values) < MIN_SEEDS or not np.all(np.isfinite(values)):
        return False
    mean = values.mean()
    se = values.std(ddof=1) / np.sqrt(len(values))
    return bool(mean > 2 * se and mean > resolution)


def claim(
    paper: str,
    ours: str,
    holds: bool,
    *,
    expect: bool = True,
    rule: str | None = None,
    source=None,
) -> None:
    """Check one finding of the paper against this run.

    Args:
        paper: the paper's statement, short, naming its figure or section.
        ours: what this run measured, with the numbers (an f-string).
        holds: whether the finding holds in this run, computed from the run's numbers with a
            bound fixed beforehand from a stated principle.
        expect: ``True`` when the chapter states the finding reproduces; ``False`` when it
            states plainly that it does not reproduce here (the check then fails if it starts
            to hold, so the text is revisited).
        rule: the principle ``holds`` applies: :data:`RULE` when the check uses :func:`exceeds`;
            ``None`` records that the chapter states its own bound in its text.
        source: the results the check read: a :class:`lensbox.runtime.results.Results` (its
            ``label``) or a short text; ``None`` for numbers computed in the chapter itself.

    Raises:
        ClaimError: ``holds`` differs from ``expect``; the message gives both statements.
        TypeError: ``paper`` or ``ours`` is not a non-empty string, or ``holds`` not a boolean.

    Examples:
        The bound (here 0.05) is fixed before the run; the check prints one line.

        >>> import numpy as np
        >>> import lensbox
        >>> errors = np.array([0.02, 0.03, 0.025])  # one per seed
        >>> lensbox.claim(
        ...     "Fig. 2: telescoping tracks the network",
        ...     f"max error {errors.max():.3f}",
        ...     holds=errors.max() < 0.05,
        ... )
        [claim reproduces] paper: Fig. 2: telescoping tracks the network | ours: max error 0.030

        A finding that stops coming out as the chapter states raises :class:`ClaimError`:

        >>> lensbox.claim("Fig. 2: ...", "max error 0.300", holds=False)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        lensbox.runtime.claims.ClaimError: The chapter states that this finding reproduces, ...
          paper: Fig. 2: ...
          ours:  max error 0.300

        A chapter that states a finding does not reproduce here passes ``expect=False``:

        >>> lensbox.claim("Fig. 2: ...", "max error 0.300", holds=False, expect=False)
        [claim does not reproduce] paper: Fig. 2: ... | ours: max error 0.300
    """
    for name, text in (("paper", paper), ("ours", ours)):
        if not isinstance(text, str) or not text.strip():
            raise ArgumentTypeError(
                f"claim: {name} must be a non-empty string; got {text!r}."
            )
    if not hasattr(holds, "__bool__") or getattr(holds, "shape", ()) not in ((), None):
        raise ArgumentTypeError(
            f"claim: holds must be a single boolean; got {holds!r}."
        )
    holds, expect = bool(holds), bool(expect)
    record = {
        "chapter": _chapter,
        "scale": scale(),
        "paper": paper,
        "ours": ours,
        "holds": holds,
        "expect": expect,
        "rule": "the chapter's own bound (stated in its text)"
        if rule is None
        else str(rule),
        "source": "computed in the chapter"
        if source is None
        else str(getattr(source, "label", source)),
    }
    path = _record_path()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
    verdict = "reproduces" if holds else "does not reproduce"
    print(f"[claim {verdict}] paper: {paper} | ours: {ours}")
    if holds != expect:
        stated = "reproduces" if expect else "does not reproduce"
        raise ClaimError(
            f"The chapter states that this finding {stated}, but in this run it {verdict}.\n"
            f"  paper: {paper}\n  ours:  {ours}"
        )

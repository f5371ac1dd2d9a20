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

Numbers from ``smoke`` budgets (a few steps, a couple of widths) say nothing about a finding, so
at those budgets a claim is printed and recorded as not judged, and raises nothing; chapters call
:func:`claim` unguarded. A claim that holds at any budget (an identity of the mathematics, an
exactness check) passes ``any_budget=True`` and is judged at every scale. :func:`check` does the
same for a statement of the chapter's own text that is not a finding of the paper.

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
from lensbox.runtime.scale import budget, scale

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


def judged() -> bool:
    """Whether this run's sizes can judge a finding: ``False`` at ``smoke`` budgets (including the
    test-only ``paper`` code path at ``smoke`` sizes), ``True`` at ``book`` and ``paper``."""
    return budget(smoke=False, book=True, paper=True)


def _single_bool(caller: str, holds) -> bool:
    if not hasattr(holds, "__bool__") or getattr(holds, "shape", ()) not in ((), None):
        raise ArgumentTypeError(
            f"{caller}: holds must be a single boolean; got {holds!r}."
        )
    return bool(holds)


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
    any_budget: bool = False,
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
        any_budget: ``True`` for a finding that holds at any budget (an identity, an exactness
            check), judged at ``smoke`` too; by default a claim is judged only where
            :func:`judged` (at ``smoke`` it is printed and recorded as not judged).

    Raises:
        ClaimError: the claim is judged and ``holds`` differs from ``expect``; the message gives
            both statements.
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
        ...     any_budget=True,
        ... )
        [claim reproduces] paper: Fig. 2: telescoping tracks the network | ours: max error 0.030

        A finding that stops coming out as the chapter states raises :class:`ClaimError`:

        >>> lensbox.claim("Fig. 2: ...", "max error 0.300", False, any_budget=True)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        lensbox.runtime.claims.ClaimError: The chapter states that this finding reproduces, ...
          paper: Fig. 2: ...
          ours:  max error 0.300

        A chapter that states a finding does not reproduce here passes ``expect=False``:

        >>> lensbox.claim("Fig. 2: ...", "max error 0.300", False, expect=False, any_budget=True)
        [claim does not reproduce] paper: Fig. 2: ... | ours: max error 0.300

        By default a claim is not judged at ``smoke`` budgets, whatever ``holds`` says:

        >>> from lensbox.runtime.scale import scale_in_force
        >>> with scale_in_force("smoke"):
        ...     lensbox.claim("Fig. 3: the peak", "no peak after 5 steps", False)
        [claim not judged at smoke budgets] paper: Fig. 3: the peak | ours: no peak after 5 steps
    """
    for name, text in (("paper", paper), ("ours", ours)):
        if not isinstance(text, str) or not text.strip():
            raise ArgumentTypeError(
                f"claim: {name} must be a non-empty string; got {text!r}."
            )
    holds, expect = _single_bool("claim", holds), bool(expect)
    judge = bool(any_budget) or judged()
    record = {
        "chapter": _chapter,
        "scale": scale(),
        "paper": paper,
        "ours": ours,
        "holds": holds,
        "expect": expect,
        "judged": judge,
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
    if not judge:
        print(f"[claim not judged at smoke budgets] paper: {paper} | ours: {ours}")
        return
    print(f"[claim {verdict}] paper: {paper} | ours: {ours}")
    if holds != expect:
        stated = "reproduces" if expect else "does not reproduce"
        raise ClaimError(
            f"The chapter states that this finding {stated}, but in this run it {verdict}.\n"
            f"  paper: {paper}\n  ours:  {ours}"
        )


def check(statement: str, holds: bool, detail=None) -> None:
    """Check a statement of the chapter's own text (not a finding of the paper) on this run.

    Like :func:`claim`, it is judged only where :func:`judged` (not at ``smoke`` budgets), and
    it prints nothing when the statement holds.

    Args:
        statement: what the chapter's text states, short.
        holds: whether it holds in this run, from a bound fixed beforehand.
        detail: the numbers behind ``holds``, shown when it fails.

    Raises:
        ClaimError: the run is judged and ``holds`` is false.
        TypeError: ``statement`` is not a non-empty string, or ``holds`` not a single boolean.

    Examples:
        >>> import lensbox
        >>> from lensbox.runtime.scale import scale_in_force
        >>> with scale_in_force("book"):
        ...     lensbox.check("the error falls with the step", 0.01 < 0.1)
        ...     lensbox.check("the error falls", 0.2 < 0.1, detail=(0.2, 0.1))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        lensbox.runtime.claims.ClaimError: The chapter states that the error falls, but in this run it does not: (0.2, 0.1)
    """
    if not isinstance(statement, str) or not statement.strip():
        raise ArgumentTypeError(
            f"check: statement must be a non-empty string; got {statement!r}."
        )
    if judged() and not _single_bool("check", holds):
        raise ClaimError(
            f"The chapter states that {statement}, but in this run it does not"
            + ("" if detail is None else f": {detail}")
        )

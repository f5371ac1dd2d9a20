"""The ``LENSBOX_SCALE`` switch: the one place the book's three sizes are read.

Every experiment in the book comes in three sizes, chosen by the environment variable
``LENSBOX_SCALE``:

``smoke``
    Tests and CI: each chapter executes in seconds. Numbers are not meaningful.
``book``
    The default, used to build the website: minutes per chapter on two CPU cores, offline data.
``paper``
    The paper's own settings and data sets, meant for a GPU.

Chapters read the scale through :func:`scale` and :func:`by_scale` (choices: which data set,
which branch) and :func:`budget` (sizes: steps, widths, seeds, rows), so one variable changes
every experiment at once.

A test-only override, ``LENSBOX_SCALE=paper LENSBOX_PAPER_BUDGET=smoke``, runs the ``paper`` code
path (its data, branches and figures) with ``smoke`` sizes: :func:`scale` and :func:`by_scale`
say ``paper`` while :func:`budget` returns the ``smoke`` value. With small real-format data files
(``LENSBOX_DATA_FIXTURES``, see :mod:`lensbox.data`) this executes every chapter's ``paper``
branch end to end on a CPU in the tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from lensbox.errors import ArgumentError

SCALES: tuple[str, ...] = ("smoke", "book", "paper")
DEFAULT_SCALE = "book"
ENV_VAR = "LENSBOX_SCALE"
BUDGET_ENV_VAR = "LENSBOX_PAPER_BUDGET"

T = TypeVar("T")


def scale() -> str:
    """The scale in force: the value of ``LENSBOX_SCALE``, or ``"book"`` when it is unset.

    Raises:
        ValueError: if the variable holds anything other than ``smoke``, ``book`` or ``paper``.
    """
    value = os.environ.get(ENV_VAR, "").strip().lower() or DEFAULT_SCALE
    if value not in SCALES:
        raise ArgumentError(
            f"{ENV_VAR}={os.environ.get(ENV_VAR)!r} is not a scale lensbox knows; "
            f"expected one of {', '.join(SCALES)} (unset means {DEFAULT_SCALE!r})."
        )
    return value


def by_scale(*, smoke: T, book: T, paper: T) -> T:
    """Pick the value for the scale in force.

    Example:
        >>> steps = by_scale(smoke=50, book=2_000, paper=100_000)
    """
    return {"smoke": smoke, "book": book, "paper": paper}[scale()]


def budget(*, smoke: T, book: T, paper: T) -> T:
    """Pick a size (steps, widths, seeds, rows, search runs) for the scale in force.

    The same as :func:`by_scale`, except under the test-only override
    ``LENSBOX_SCALE=paper LENSBOX_PAPER_BUDGET=smoke``, where it returns the ``smoke`` value so
    that the ``paper`` code path runs in seconds.

    Examples:
        >>> import lensbox
        >>> widths = lensbox.budget(smoke=[2, 10], book=[2, 5, 10, 50], paper=[1, 10, 100])

        The value follows ``LENSBOX_SCALE``; :func:`scale_in_force` fixes a scale for a block:

        >>> from lensbox.runtime.scale import scale_in_force
        >>> for name in ("smoke", "book", "paper"):
        ...     with scale_in_force(name):
        ...         print(name, lensbox.budget(smoke=50, book=2_000, paper=100_000))
        smoke 50
        book 2000
        paper 100000
    """
    return (
        smoke
        if paper_budget_is_smoke()
        else by_scale(smoke=smoke, book=book, paper=paper)
    )


def paper_budget_is_smoke() -> bool:
    """Whether the test-only override (``paper`` code path at ``smoke`` sizes) is in force.

    Raises:
        ValueError: ``LENSBOX_PAPER_BUDGET`` holds anything but ``smoke`` or nothing, or is set
            while the scale is not ``paper``.
    """
    value = os.environ.get(BUDGET_ENV_VAR, "").strip().lower()
    if not value:
        return False
    if value != "smoke":
        raise ArgumentError(
            f"{BUDGET_ENV_VAR}={value!r}: the only override is 'smoke' (or unset)."
        )
    if scale() != "paper":
        raise ArgumentError(
            f"{BUDGET_ENV_VAR}=smoke only applies with {ENV_VAR}=paper; "
            f"the scale is {scale()!r}."
        )
    return True


@contextmanager
def scale_in_force(name: str) -> Iterator[None]:
    """Run a block at scale ``name`` whatever ``LENSBOX_SCALE`` says (and without the test-only
    budget override), restoring both variables after it: how the experiment runner loads each
    configuration's own data sets (:func:`lensbox.data.load` follows :func:`scale`)."""
    if name not in SCALES:
        raise ArgumentError(f"scale must be one of {', '.join(SCALES)}; got {name!r}.")
    saved = {var: os.environ.get(var) for var in (ENV_VAR, BUDGET_ENV_VAR)}
    os.environ[ENV_VAR] = name
    os.environ.pop(BUDGET_ENV_VAR, None)
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value

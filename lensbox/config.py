"""Scale, seeds, precision and plotting style: the one place the book's switches are read.

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
import random
from typing import TypeVar

import numpy as np

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

    Example:
        >>> widths = budget(smoke=[2, 10], book=[2, 5, 10, 50], paper=list(range(1, 101)))
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


def setup(
    seed: int = 0, *, chapter: str | None = None, x64: bool = True, style: bool = True
):
    """Prepare a chapter: seeds, float precision and plotting style in one call.

    Args:
        seed: seeds Python's and NumPy's global generators; the returned JAX key derives from it.
        x64: enable float64 in JAX. The book's accuracy claims (an approximation error orders of
            magnitude below another) need it; float32 rounding would otherwise dominate.
        chapter: the chapter's notebook name (``"double_descent"``); names the records of its
            :func:`lensbox.claim` checks.
        style: apply the book's matplotlib style.

    Returns:
        A ``jax.random`` key built from ``seed``, for the chapter's own randomness.
    """
    import jax

    jax.config.update("jax_enable_x64", bool(x64))
    random.seed(seed)
    np.random.seed(seed)
    from lensbox import claims

    claims.set_chapter(chapter)
    if style:
        from lensbox import plotting

        plotting.use_style()
    return jax.random.PRNGKey(seed)


def precision(x64: bool = True):
    """A context manager that switches JAX's float64 mode for the code inside it.

    Uses ``jax.enable_x64`` (JAX 0.8 and later) or ``jax.experimental.enable_x64`` (older JAX, as
    Colab may ship), so chapters run on either.

    Example:
        >>> with precision(True):
        ...     run_in_float64()
    """
    import jax

    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(bool(x64))
    from jax import experimental

    return experimental.enable_x64() if x64 else experimental.disable_x64()


def describe() -> str:
    """One line for a chapter's first output: scale, precision and JAX backend."""
    import jax

    bits = 64 if jax.config.read("jax_enable_x64") else 32
    override = " (smoke-sized budget: test override)" if paper_budget_is_smoke() else ""
    return (
        f"lensbox scale: {scale()}{override} | float{bits} | JAX {jax.__version__} on "
        f"{jax.default_backend()} ({jax.device_count()} device(s))"
    )
